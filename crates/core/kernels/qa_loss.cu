// SQuAD's span loss and its gradient (ABI.md: lean_qa_loss): per window,
// log-softmax of the start and of the end logits over its positions, the
// cross-entropy at the target, averaged over windows and the two columns.
// One block does it all in a fixed order, so the loss is deterministic.
// CPU twin: Cpu::qa_loss in model/lean/cpu.rs.
#include "common.cuh"

using namespace lean;

extern "C" __global__ void lean_qa_loss(const float* logits, const uint32_t* start,
                                        const uint32_t* end, float* d_logits, float* loss,
                                        uint32_t b, uint32_t s, float scale) {
    __shared__ float red[MAX_WARPS];
    const float g = scale / (2.0f * (float)b);
    float means[2];
    for (uint32_t column = 0; column < 2; ++column) {
        const uint32_t* targets = column == 0 ? start : end;
        float total = 0.0f;
        for (uint32_t window = 0; window < b; ++window) {
            const size_t base = (size_t)window * s;
            const uint32_t target = targets[window];
#define LEAN_Z(j) logits[(base + (j)) * 2 + column]
            float top = -INFINITY;
            for (uint32_t j = threadIdx.x; j < s; j += blockDim.x) top = fmaxf(top, LEAN_Z(j));
            top = block_max(top, red);
            float sum_exp = 0.0f;
            for (uint32_t j = threadIdx.x; j < s; j += blockDim.x) sum_exp += expf(LEAN_Z(j) - top);
            const float log_sum = logf(block_sum(sum_exp, red));
            // A target outside the window (the host checks) makes the loss NaN.
            total += target < s ? -((LEAN_Z(target) - top) - log_sum) : NAN;
            for (uint32_t j = threadIdx.x; j < s; j += blockDim.x) {
                const float p = expf((LEAN_Z(j) - top) - log_sum);
                const float onehot = j == target ? 1.0f : 0.0f;
                d_logits[(base + j) * 2 + column] = (p - onehot) * g;
            }
#undef LEAN_Z
        }
        means[column] = total / (float)b;
    }
    if (threadIdx.x == 0) loss[0] = (means[0] + means[1]) / 2.0f;
}
