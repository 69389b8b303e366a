// Squared gradient norms in double, for gradient clipping (ABI.md:
// lean_squared_norms): one block per range of the concatenated gradients,
// a fixed reduction order, so the clipping coefficient is the same run to
// run. The launcher cuts each gradient into ranges of at most 2^18
// elements (so a large one spreads over many SMs) and adds each gradient's
// ranges in order on the host.
#include "common.cuh"

using namespace lean;

extern "C" __global__ void lean_squared_norms(const float* g, const uint64_t* offsets,
                                              uint32_t params, double* out) {
    __shared__ double red[MAX_WARPS];
    const uint32_t i = blockIdx.x;
    if (i >= params) return;  // uniform across the block
    const uint64_t first = offsets[i];
    const uint64_t last = offsets[i + 1];
    double acc = 0.0;
    for (uint64_t j = first + threadIdx.x; j < last; j += blockDim.x) {
        const double v = (double)g[j];
        acc += v * v;
    }
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) out[i] = acc;
}
