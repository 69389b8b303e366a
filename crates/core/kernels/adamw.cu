// AdamW's update of f32 master weights and both moments in place, and the
// compute-dtype copy of the weights (ABI.md: lean_adamw_*). CPU twin:
// train/adamw_cpu.rs, the same operations in the same order.
#include "common.cuh"

namespace {

using namespace lean;

template <typename T>
__device__ __forceinline__ void adamw(float* w, const float* g, float* m, float* v, T* half,
                                      uint32_t n, float beta1, float beta2, float eps,
                                      float step_size, float bias_correction2_sqrt, float decay,
                                      float grad_scale) {
    for (size_t i = grid_first(); i < n; i += grid_stride()) {
        const float gi = grad_scale == 1.0f ? g[i] : g[i] * grad_scale;
        const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) / bias_correction2_sqrt + eps;
        const float wi = w[i] * decay - step_size * (mi / denom);
        w[i] = wi;
        if (half != nullptr) store(half, i, wi);
    }
}

}  // namespace

extern "C" __global__ void lean_adamw_f32(float* w, const float* g, float* m, float* v,
                                          float* half, uint32_t n, float beta1, float beta2,
                                          float eps, float step_size,
                                          float bias_correction2_sqrt, float decay,
                                          float grad_scale) {
    adamw(w, g, m, v, half, n, beta1, beta2, eps, step_size, bias_correction2_sqrt, decay,
          grad_scale);
}

extern "C" __global__ void lean_adamw_bf16(float* w, const float* g, float* m, float* v,
                                           __nv_bfloat16* half, uint32_t n, float beta1,
                                           float beta2, float eps, float step_size,
                                           float bias_correction2_sqrt, float decay,
                                           float grad_scale) {
    adamw(w, g, m, v, half, n, beta1, beta2, eps, step_size, bias_correction2_sqrt, decay,
          grad_scale);
}
