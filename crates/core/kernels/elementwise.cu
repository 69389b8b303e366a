// Elementwise ops of the lean step (ABI.md): a GEMM's bias rows, GELU (the
// erf form BERT uses) forward and backward, and bias gradients as column
// sums. CPU twins: Cpu::gemm's bias epilogue, gelu_backward_in_place in
// model/lean/cpu.rs, model/kernels/gelu.rs, linear::column_sums.
#include "common.cuh"

namespace {

using namespace lean;

constexpr float FRAC_1_SQRT_2 = 0.70710678118654752440f;
constexpr float INV_SQRT_2PI = 0.3989423f;

template <typename T>
__device__ __forceinline__ void bias_rows(T* c, const float* bias, uint32_t rows, uint32_t width,
                                          bool accumulate) {
    const size_t n = (size_t)rows * width;
    for (size_t i = grid_first(); i < n; i += grid_stride()) {
        const float b = bias[i % width];
        store(c, i, accumulate ? load(c, i) + b : b);
    }
}

template <typename T>
__device__ __forceinline__ void gelu_fwd(const T* u, T* g, uint32_t n) {
    for (size_t i = grid_first(); i < n; i += grid_stride()) {
        const float x = load(u, i);
        store(g, i, 0.5f * x * (1.0f + erff(x * FRAC_1_SQRT_2)));
    }
}

template <typename T>
__device__ __forceinline__ void gelu_bwd(const T* u, T* d, uint32_t n) {
    for (size_t i = grid_first(); i < n; i += grid_stride()) {
        const float x = load(u, i);
        const float cdf = 0.5f * (1.0f + erff(x * FRAC_1_SQRT_2));
        const float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        store(d, i, load(d, i) * (cdf + x * pdf));
    }
}

// Rows summed in order within blocks of 256 rows, the blocks' sums added in
// order, the total added to `into`: the CPU's column_sums grouping.
template <typename T>
__device__ __forceinline__ void column_sums(const T* m, float* into, uint32_t rows, uint32_t cols) {
    constexpr uint32_t BLOCK_ROWS = 256;
    for (size_t j = grid_first(); j < cols; j += grid_stride()) {
        float total = 0.0f;
        for (uint32_t first = 0; first < rows; first += BLOCK_ROWS) {
            const uint32_t last = min(rows, first + BLOCK_ROWS);
            float acc = 0.0f;
            for (uint32_t r = first; r < last; ++r) acc += load(m, (size_t)r * cols + j);
            total += acc;
        }
        into[j] += total;
    }
}

}  // namespace

extern "C" __global__ void lean_bias_rows_f32(float* c, const float* bias, uint32_t rows,
                                              uint32_t width, uint32_t accumulate) {
    bias_rows(c, bias, rows, width, accumulate != 0);
}
extern "C" __global__ void lean_bias_rows_bf16(__nv_bfloat16* c, const float* bias, uint32_t rows,
                                               uint32_t width, uint32_t accumulate) {
    bias_rows(c, bias, rows, width, accumulate != 0);
}

extern "C" __global__ void lean_gelu_fwd_f32(const float* u, float* g, uint32_t n) {
    gelu_fwd(u, g, n);
}
extern "C" __global__ void lean_gelu_fwd_bf16(const __nv_bfloat16* u, __nv_bfloat16* g,
                                              uint32_t n) {
    gelu_fwd(u, g, n);
}

extern "C" __global__ void lean_gelu_bwd_f32(const float* u, float* d, uint32_t n) {
    gelu_bwd(u, d, n);
}
extern "C" __global__ void lean_gelu_bwd_bf16(const __nv_bfloat16* u, __nv_bfloat16* d,
                                              uint32_t n) {
    gelu_bwd(u, d, n);
}

extern "C" __global__ void lean_column_sums_f32(const float* m, float* into, uint32_t rows,
                                                uint32_t cols) {
    column_sums(m, into, rows, cols);
}
extern "C" __global__ void lean_column_sums_bf16(const __nv_bfloat16* m, float* into,
                                                 uint32_t rows, uint32_t cols) {
    column_sums(m, into, rows, cols);
}
