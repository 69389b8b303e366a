// Shared device helpers for the lean kernels (ABI.md): f32/bf16 loads and
// stores (arithmetic is f32, bf16 rounds to nearest even), grid-stride
// indexing, and 256-thread block reductions in a fixed order.
#pragma once

#include <cuda_bf16.h>
#include <stdint.h>
#include <stddef.h>

#include "philox.cuh"

namespace lean {

__device__ __forceinline__ float load(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* p, size_t i) {
    return __bfloat162float(p[i]);
}
__device__ __forceinline__ void store(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, size_t i, float v) {
    p[i] = __float2bfloat16_rn(v);
}

// An operand that is f32 when `is_f32` is set, else the compute dtype T.
template <typename T>
__device__ __forceinline__ float load_either(const void* p, bool is_f32, size_t i) {
    return is_f32 ? static_cast<const float*>(p)[i] : load(static_cast<const T*>(p), i);
}
template <typename T>
__device__ __forceinline__ void store_either(void* p, bool is_f32, size_t i, float v) {
    if (is_f32) {
        static_cast<float*>(p)[i] = v;
    } else {
        store(static_cast<T*>(p), i, v);
    }
}

// First index and stride of a grid-stride loop, 64-bit.
__device__ __forceinline__ size_t grid_first() {
    return (size_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ size_t grid_stride() { return (size_t)blockDim.x * gridDim.x; }

struct SumOp {
    template <typename V>
    __device__ __forceinline__ V operator()(V a, V b) const { return a + b; }
};
struct MaxOp {
    __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

constexpr int MAX_WARPS = 32;

// Reduces `v` over the block (blockDim.x a multiple of 32, every thread
// calling) and returns the result to every thread: each warp reduces by
// butterfly shuffles, then every thread folds the warps' values in warp
// order. The order is fixed, so the result is the same run to run. `shared`
// holds MAX_WARPS values; it may be reused by the next call.
template <typename V, typename Op>
__device__ __forceinline__ V block_reduce(V v, V* shared, Op op) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = threadIdx.x >> 5;
    const unsigned warps = (blockDim.x + 31u) >> 5;
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
    }
    __syncthreads();  // every reader of the previous call is done with `shared`
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    V r = shared[0];
    for (unsigned w = 1; w < warps; ++w) r = op(r, shared[w]);
    return r;
}

__device__ __forceinline__ float block_sum(float v, float* shared) {
    return block_reduce(v, shared, SumOp());
}
__device__ __forceinline__ double block_sum(double v, double* shared) {
    return block_reduce(v, shared, SumOp());
}
__device__ __forceinline__ float block_max(float v, float* shared) {
    return block_reduce(v, shared, MaxOp());
}

}  // namespace lean
