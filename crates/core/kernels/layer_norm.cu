// LayerNorm over each row with the residual branch's dropout before it and
// the output dropout after it, forward and backward (ABI.md: lean_norm_*).
// The CPU twin is Cpu::norm / norm_backward in model/lean/cpu.rs with
// moments / row_backward from model/kernels/layer_norm.rs. The backward
// writes per-64-row-block weight partials that lean_norm_bwd_reduce sums in
// block order, so the weight gradients are deterministic.
#include "common.cuh"

namespace {

using namespace lean;

// Rows per backward block, the CPU's BLOCK_ROWS.
constexpr uint32_t BWD_ROWS = 64;
// Columns per thread whose weight partials stay in registers (width up to
// 256 * REG_COLS with 256 threads); any wider columns accumulate in the output itself.
constexpr uint32_t REG_COLS = 16;

template <typename T>
__device__ __forceinline__ void norm_fwd(const void* a, bool a_is_f32, const T* residual,
                                         float* r_out, const float* weight, const float* bias,
                                         T* y, float* stats, uint32_t width, float eps,
                                         float p_in, float p_out, uint32_t k0, uint32_t k1,
                                         uint32_t round, uint32_t site_in, uint32_t site_out) {
    __shared__ float red[MAX_WARPS];
    const size_t row = blockIdx.x;
    const size_t base = row * width;
    const bool has_residual = residual != nullptr && r_out != nullptr;
    const DropSite drop_in = drop_site(p_in, k0, k1, round, site_in);
    const DropSite drop_out = drop_site(p_out, k0, k1, round, site_out);

    // r = dropout_in(a) + residual, kept in r_out; each thread reads back
    // only what it wrote itself.
    float total = 0.0f;
    for (uint32_t c = threadIdx.x; c < width; c += blockDim.x) {
        const size_t k = base + c;
        float r = load_either<T>(a, a_is_f32, k);
        if (has_residual) {
            r = drop_apply(drop_in, r, k) + load(residual, k);
            r_out[k] = r;
        }
        total += r;
    }
#define LEAN_R(k) (has_residual ? r_out[(k)] : load_either<T>(a, a_is_f32, (k)))
    const float n = (float)width;
    const float mean = block_sum(total, red) / n;

    float dev = 0.0f;
    for (uint32_t c = threadIdx.x; c < width; c += blockDim.x) {
        const float d = LEAN_R(base + c) - mean;
        dev += d * d;
    }
    const float var = block_sum(dev, red) / n;
    const float rstd = 1.0f / sqrtf(var + eps);
    if (threadIdx.x == 0) {
        stats[2 * row] = mean;
        stats[2 * row + 1] = rstd;
    }

    for (uint32_t c = threadIdx.x; c < width; c += blockDim.x) {
        const size_t k = base + c;
        const float v = (LEAN_R(k) - mean) * rstd * weight[c] + bias[c];
        store(y, k, drop_apply(drop_out, v, k));
    }
#undef LEAN_R
}

// One column's part of a row's backward: g = dropout_out'(dy), x̂, g·w.
struct Col {
    float g, xhat, gw;
};

template <typename T>
__device__ __forceinline__ Col bwd_col(const void* x, bool x_is_f32, const T* dy,
                                       const float* weight, const DropSite& drop_out, size_t k,
                                       uint32_t c, float mean, float rstd) {
    Col col;
    col.g = drop_apply(drop_out, load(dy, k), k);
    col.xhat = (load_either<T>(x, x_is_f32, k) - mean) * rstd;
    col.gw = col.g * weight[c];
    return col;
}

template <typename T>
__device__ __forceinline__ void norm_bwd_rows(const void* x, bool x_is_f32, const T* dy,
                                              const float* weight, const float* stats, void* d_a,
                                              bool d_a_is_f32, T* d_residual, float* partial_w,
                                              float* partial_b, uint32_t rows, uint32_t width,
                                              float p_in, float p_out, uint32_t k0, uint32_t k1,
                                              uint32_t round, uint32_t site_in,
                                              uint32_t site_out) {
    __shared__ float red[MAX_WARPS];
    const DropSite drop_in = drop_site(p_in, k0, k1, round, site_in);
    const DropSite drop_out = drop_site(p_out, k0, k1, round, site_out);
    const uint32_t first = blockIdx.x * BWD_ROWS;
    const uint32_t last = min(rows, first + BWD_ROWS);
    const size_t pbase = (size_t)blockIdx.x * width;
    const float n = (float)width;
    const uint32_t tid = threadIdx.x;
    const uint32_t stride = blockDim.x;

    float acc_w[REG_COLS];
    float acc_b[REG_COLS];
#pragma unroll
    for (uint32_t t = 0; t < REG_COLS; ++t) {
        acc_w[t] = 0.0f;
        acc_b[t] = 0.0f;
    }

    for (uint32_t row = first; row < last; ++row) {
        const size_t base = (size_t)row * width;
        const float mean = stats[2 * (size_t)row];
        const float rstd = stats[2 * (size_t)row + 1];

        float sum_gw = 0.0f;
        float sum_gw_xhat = 0.0f;
        for (uint32_t c = tid; c < width; c += stride) {
            const Col col = bwd_col(x, x_is_f32, dy, weight, drop_out, base + c, c, mean, rstd);
            sum_gw += col.gw;
            sum_gw_xhat += col.gw * col.xhat;
        }
        const float mean_gw = block_sum(sum_gw, red) / n;
        const float mean_gw_xhat = block_sum(sum_gw_xhat, red) / n;

        // Columns tid + t·stride: the first REG_COLS in registers, any
        // others straight into the partials (this thread alone owns them).
        uint32_t t = 0;
        for (uint32_t c = tid; c < width; c += stride, ++t) {
            const size_t k = base + c;
            const Col col = bwd_col(x, x_is_f32, dy, weight, drop_out, k, c, mean, rstd);
            const float dr = rstd * (col.gw - mean_gw - col.xhat * mean_gw_xhat);
            if (d_residual != nullptr) store(d_residual, k, dr);
            store_either<T>(d_a, d_a_is_f32, k, drop_apply(drop_in, dr, k));
            const float gx = col.g * col.xhat;
            if (t < REG_COLS) {
                // A switch keeps the indices static, so the arrays stay in
                // registers.
#pragma unroll
                for (uint32_t u = 0; u < REG_COLS; ++u) {
                    if (u == t) {
                        acc_w[u] += gx;
                        acc_b[u] += col.g;
                    }
                }
            } else {
                const size_t at = pbase + c;
                partial_w[at] = (row == first ? 0.0f : partial_w[at]) + gx;
                partial_b[at] = (row == first ? 0.0f : partial_b[at]) + col.g;
            }
        }
    }

    // The register columns' partials; zero when the block has no rows.
    uint32_t t = 0;
    for (uint32_t c = tid; c < width && t < REG_COLS; c += stride, ++t) {
        float w = 0.0f, b = 0.0f;
#pragma unroll
        for (uint32_t u = 0; u < REG_COLS; ++u) {
            if (u == t) {
                w = acc_w[u];
                b = acc_b[u];
            }
        }
        partial_w[pbase + c] = w;
        partial_b[pbase + c] = b;
    }
}

}  // namespace

extern "C" __global__ void lean_norm_fwd_f32(const void* a, uint32_t a_is_f32,
                                             const float* residual, float* r_out,
                                             const float* weight, const float* bias, float* y,
                                             float* stats, uint32_t rows, uint32_t width,
                                             float eps, float p_in, float p_out, uint32_t k0,
                                             uint32_t k1, uint32_t round, uint32_t site_in,
                                             uint32_t site_out) {
    (void)rows;
    norm_fwd(a, a_is_f32 != 0, residual, r_out, weight, bias, y, stats, width, eps, p_in, p_out,
             k0, k1, round, site_in, site_out);
}

extern "C" __global__ void lean_norm_fwd_bf16(const void* a, uint32_t a_is_f32,
                                              const __nv_bfloat16* residual, float* r_out,
                                              const float* weight, const float* bias,
                                              __nv_bfloat16* y, float* stats, uint32_t rows,
                                              uint32_t width, float eps, float p_in, float p_out,
                                              uint32_t k0, uint32_t k1, uint32_t round,
                                              uint32_t site_in, uint32_t site_out) {
    (void)rows;
    norm_fwd(a, a_is_f32 != 0, residual, r_out, weight, bias, y, stats, width, eps, p_in, p_out,
             k0, k1, round, site_in, site_out);
}

extern "C" __global__ void lean_norm_bwd_rows_f32(const void* x, uint32_t x_is_f32,
                                                  const float* dy, const float* weight,
                                                  const float* stats, void* d_a,
                                                  uint32_t d_a_is_f32, float* d_residual,
                                                  float* partial_w, float* partial_b,
                                                  uint32_t rows, uint32_t width, float p_in,
                                                  float p_out, uint32_t k0, uint32_t k1,
                                                  uint32_t round, uint32_t site_in,
                                                  uint32_t site_out) {
    norm_bwd_rows(x, x_is_f32 != 0, dy, weight, stats, d_a, d_a_is_f32 != 0, d_residual,
                  partial_w, partial_b, rows, width, p_in, p_out, k0, k1, round, site_in,
                  site_out);
}

extern "C" __global__ void lean_norm_bwd_rows_bf16(const void* x, uint32_t x_is_f32,
                                                   const __nv_bfloat16* dy, const float* weight,
                                                   const float* stats, void* d_a,
                                                   uint32_t d_a_is_f32, __nv_bfloat16* d_residual,
                                                   float* partial_w, float* partial_b,
                                                   uint32_t rows, uint32_t width, float p_in,
                                                   float p_out, uint32_t k0, uint32_t k1,
                                                   uint32_t round, uint32_t site_in,
                                                   uint32_t site_out) {
    norm_bwd_rows(x, x_is_f32 != 0, dy, weight, stats, d_a, d_a_is_f32 != 0, d_residual,
                  partial_w, partial_b, rows, width, p_in, p_out, k0, k1, round, site_in,
                  site_out);
}

// d_weight[c] += Σ_k partial_w[k·width + c], added one block at a time in
// block order as the CPU adds its partials; likewise d_bias.
extern "C" __global__ void lean_norm_bwd_reduce(const float* partial_w, const float* partial_b,
                                                uint32_t blocks, uint32_t width, float* d_weight,
                                                float* d_bias) {
    for (size_t c = grid_first(); c < width; c += grid_stride()) {
        float w = d_weight[c];
        float b = d_bias[c];
        for (uint32_t k = 0; k < blocks; ++k) {
            w += partial_w[(size_t)k * width + c];
            b += partial_b[(size_t)k * width + c];
        }
        d_weight[c] = w;
        d_bias[c] = b;
    }
}
