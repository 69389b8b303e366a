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

// Column sums in two launches with the CPU's column_sums grouping: rows
// summed in order within chunks of COLUMN_CHUNK_ROWS rows (the last chunk
// may be short), the chunks' sums added in chunk order, the total added to
// `into`. Fixed order, so the result is the same run to run.
constexpr uint32_t COLUMN_CHUNK_ROWS = 256;
constexpr uint32_t COLUMN_TILE = 256;  // columns per block of the partial pass (= blockDim.x)

// Pass 1: block b takes row chunk b / tiles and the column tile b % tiles
// (tiles = ceil(cols / COLUMN_TILE)); its threads take consecutive columns,
// so each row's read is coalesced. Writes partial[chunk·cols + j].
template <typename T>
__device__ __forceinline__ void column_sums_partial(const T* m, float* partial, uint32_t rows,
                                                    uint32_t cols) {
    // ceil(cols / COLUMN_TILE), ceil(rows / COLUMN_CHUNK_ROWS), without overflow.
    const uint32_t tiles = cols / COLUMN_TILE + (cols % COLUMN_TILE != 0);
    if (tiles == 0) return;
    const uint32_t chunks = rows / COLUMN_CHUNK_ROWS + (rows % COLUMN_CHUNK_ROWS != 0);
    const uint32_t chunk = blockIdx.x / tiles;
    if (chunk >= chunks) return;
    const uint32_t first = chunk * COLUMN_CHUNK_ROWS;
    // Without overflow when rows is near 2^32.
    const uint32_t last = rows - first < COLUMN_CHUNK_ROWS ? rows : first + COLUMN_CHUNK_ROWS;
    const size_t tile_first = (size_t)(blockIdx.x % tiles) * COLUMN_TILE;
    // One pass when blockDim.x == COLUMN_TILE (ABI.md); correct for any block.
    for (uint32_t t = threadIdx.x; t < COLUMN_TILE; t += blockDim.x) {
        const size_t j = tile_first + t;
        if (j >= cols) break;
        float acc = 0.0f;
#pragma unroll 8
        for (uint32_t r = first; r < last; ++r) acc += load(m, (size_t)r * cols + j);
        partial[(size_t)chunk * cols + j] = acc;
    }
}

// Pass 2: per column, the chunks' partials added in chunk order, then into `into`.
__device__ __forceinline__ void column_sums_reduce(const float* partial, uint32_t chunks,
                                                   uint32_t cols, float* into) {
    for (size_t j = grid_first(); j < cols; j += grid_stride()) {
        float total = 0.0f;
        for (uint32_t k = 0; k < chunks; ++k) total += partial[(size_t)k * cols + j];
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

extern "C" __global__ void lean_column_sums_partial_f32(const float* m, float* partial,
                                                        uint32_t rows, uint32_t cols) {
    column_sums_partial(m, partial, rows, cols);
}
extern "C" __global__ void lean_column_sums_partial_bf16(const __nv_bfloat16* m, float* partial,
                                                         uint32_t rows, uint32_t cols) {
    column_sums_partial(m, partial, rows, cols);
}
extern "C" __global__ void lean_column_sums_reduce(const float* partial, uint32_t chunks,
                                                   uint32_t cols, float* into) {
    column_sums_reduce(partial, chunks, cols, into);
}
