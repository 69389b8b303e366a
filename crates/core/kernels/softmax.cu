// Attention's masked softmax over key positions with its dropout, forward and
// backward, one block per score row (ABI.md: lean_softmax_*). The CPU twin is
// softmax_rows / softmax_backward_rows in model/kernels/attention.rs; a key
// the mask hides gets -FLT_MAX added, as the CPU adds f32::MIN, so a fully
// masked row stays finite and comes out uniform.
#include <float.h>

#include "common.cuh"

namespace {

using namespace lean;

template <typename T>
__device__ __forceinline__ void softmax_fwd(const T* scores, T* probs, T* dropped,
                                            const uint32_t* key_mask, uint32_t heads, uint32_t s,
                                            float scale, float p, uint32_t k0, uint32_t k1,
                                            uint32_t round, uint32_t site) {
    __shared__ float red[MAX_WARPS];
    const size_t row = blockIdx.x;
    const size_t window = row / ((size_t)heads * s);
    const size_t base = row * s;
    const uint32_t* mask = key_mask + window * s;
    const DropSite drop = drop_site(p, k0, k1, round, site);

    // Masked, scaled score of column j.
#define LEAN_SCORE(j) (scale * load(scores, base + (j)) + (mask[(j)] != 0u ? 0.0f : -FLT_MAX))
    float top = -INFINITY;
    for (uint32_t j = threadIdx.x; j < s; j += blockDim.x) top = fmaxf(top, LEAN_SCORE(j));
    top = block_max(top, red);

    float total = 0.0f;
    for (uint32_t j = threadIdx.x; j < s; j += blockDim.x) total += expf(LEAN_SCORE(j) - top);
    total = block_sum(total, red);
    const float inv = 1.0f / total;

    for (uint32_t j = threadIdx.x; j < s; j += blockDim.x) {
        const float pr = expf(LEAN_SCORE(j) - top) * inv;
        store(probs, base + j, pr);
        if (dropped != probs) store(dropped, base + j, drop_apply(drop, pr, base + j));
    }
#undef LEAN_SCORE
}

template <typename T>
__device__ __forceinline__ void softmax_bwd(const T* probs, T* grad, uint32_t s, float scale,
                                            float p, uint32_t k0, uint32_t k1, uint32_t round,
                                            uint32_t site) {
    __shared__ float red[MAX_WARPS];
    const size_t base = (size_t)blockIdx.x * s;
    const DropSite drop = drop_site(p, k0, k1, round, site);

    // g' = dropout'(grad): the forward's mask and 1/(1-p).
    float dot = 0.0f;
    for (uint32_t j = threadIdx.x; j < s; j += blockDim.x) {
        const size_t k = base + j;
        dot += drop_apply(drop, load(grad, k), k) * load(probs, k);
    }
    dot = block_sum(dot, red);

    // Each thread rewrites only the elements it read above.
    for (uint32_t j = threadIdx.x; j < s; j += blockDim.x) {
        const size_t k = base + j;
        const float g = drop_apply(drop, load(grad, k), k);
        store(grad, k, scale * (load(probs, k) * (g - dot)));
    }
}

}  // namespace

extern "C" __global__ void lean_softmax_fwd_f32(const float* scores, float* probs, float* dropped,
                                                const uint32_t* key_mask, uint32_t b,
                                                uint32_t heads, uint32_t s, float scale, float p,
                                                uint32_t k0, uint32_t k1, uint32_t round,
                                                uint32_t site) {
    (void)b;
    softmax_fwd(scores, probs, dropped, key_mask, heads, s, scale, p, k0, k1, round, site);
}

extern "C" __global__ void lean_softmax_fwd_bf16(const __nv_bfloat16* scores, __nv_bfloat16* probs,
                                                 __nv_bfloat16* dropped, const uint32_t* key_mask,
                                                 uint32_t b, uint32_t heads, uint32_t s,
                                                 float scale, float p, uint32_t k0, uint32_t k1,
                                                 uint32_t round, uint32_t site) {
    (void)b;
    softmax_fwd(scores, probs, dropped, key_mask, heads, s, scale, p, k0, k1, round, site);
}

extern "C" __global__ void lean_softmax_bwd_f32(const float* probs, float* grad, uint32_t b,
                                                uint32_t heads, uint32_t s, float scale, float p,
                                                uint32_t k0, uint32_t k1, uint32_t round,
                                                uint32_t site) {
    (void)b;
    (void)heads;
    softmax_bwd(probs, grad, s, scale, p, k0, k1, round, site);
}

extern "C" __global__ void lean_softmax_bwd_bf16(const __nv_bfloat16* probs, __nv_bfloat16* grad,
                                                 uint32_t b, uint32_t heads, uint32_t s,
                                                 float scale, float p, uint32_t k0, uint32_t k1,
                                                 uint32_t round, uint32_t site) {
    (void)b;
    (void)heads;
    softmax_bwd(probs, grad, s, scale, p, k0, k1, round, site);
}
