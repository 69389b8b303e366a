// Philox 4x32-10 and the per-element dropout every lean kernel applies: the
// device twin of crates/core/src/rng/philox.rs and model/kernels/masks.rs
// (ABI.md, "Dropout"). Host C++ can include it too (tests/it/philox_cuda_host.rs
// checks it against the Rust generator word for word).
#pragma once

#ifndef __CUDACC__
#ifndef __host__
#define __host__
#endif
#ifndef __device__
#define __device__
#endif
#ifndef __forceinline__
#define __forceinline__ inline
#endif
#endif

#include <stdint.h>

namespace lean {

// Random123's constants: the multipliers and the key's Weyl increments.
#define LEAN_PHILOX_M0 0xD2511F53u
#define LEAN_PHILOX_M1 0xCD9E8D57u
#define LEAN_PHILOX_W0 0x9E3779B9u
#define LEAN_PHILOX_W1 0xBB67AE85u

__host__ __device__ __forceinline__ uint32_t mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);
#else
    return (uint32_t)(((uint64_t)a * (uint64_t)b) >> 32);
#endif
}

struct Philox4 {
    uint32_t v[4];
};

// The 4 words of block `counter` under `key` (philox4x32_R(10, ...)).
__host__ __device__ __forceinline__ Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2,
                                                          uint32_t c3, uint32_t k0, uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += LEAN_PHILOX_W0;
            k1 += LEAN_PHILOX_W1;
        }
        const uint32_t hi0 = mulhi32(LEAN_PHILOX_M0, c0);
        const uint32_t lo0 = LEAN_PHILOX_M0 * c0;
        const uint32_t hi1 = mulhi32(LEAN_PHILOX_M1, c2);
        const uint32_t lo1 = LEAN_PHILOX_M1 * c2;
        const uint32_t n0 = hi1 ^ c1 ^ k0;
        const uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    Philox4 out;
    out.v[0] = c0;
    out.v[1] = c1;
    out.v[2] = c2;
    out.v[3] = c3;
    return out;
}

// Word `index` of the stream (key, round, site): word index % 4 of block
// index / 4, whose counter is [lo32(block), hi32(block), site, round].
__host__ __device__ __forceinline__ uint32_t philox_word(uint32_t k0, uint32_t k1, uint32_t round,
                                                         uint32_t site, uint64_t index) {
    const uint64_t block = index >> 2;
    const Philox4 w = philox4x32_10((uint32_t)block, (uint32_t)(block >> 32), site, round, k0, k1);
    // Selects rather than w.v[index & 3], which would put w in local memory.
    const uint32_t j = (uint32_t)(index & 3u);
    return j == 0u ? w.v[0] : (j == 1u ? w.v[1] : (j == 2u ? w.v[2] : w.v[3]));
}

// The word below which an element drops: min(p * 2^32, 2^32 - 1) in double,
// p clamped to [0, 1] (drop_threshold; a NaN p gives 2^32 - 1 as in Rust).
__host__ __device__ __forceinline__ uint32_t drop_threshold(float p) {
    if (p != p) return 0xFFFFFFFFu;
    const float c = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
    double t = (double)c * 4294967296.0;
    if (t > 4294967295.0) t = 4294967295.0;
    return (uint32_t)t;
}

// One dropout site of one launch. `on` is p > 0: p == 0 draws nothing and
// scales nothing.
struct DropSite {
    uint32_t k0, k1, round, site, threshold;
    float keep;
    bool on;
};

__host__ __device__ __forceinline__ DropSite drop_site(float p, uint32_t k0, uint32_t k1,
                                                       uint32_t round, uint32_t site) {
    DropSite d;
    d.k0 = k0;
    d.k1 = k1;
    d.round = round;
    d.site = site;
    d.on = p > 0.0f;
    d.threshold = d.on ? drop_threshold(p) : 0u;
    d.keep = d.on ? 1.0f / (1.0f - p) : 1.0f;
    return d;
}

// Whether element `index` survives (always, at a site that is off).
__host__ __device__ __forceinline__ bool drop_keeps(const DropSite& d, uint64_t index) {
    return !d.on || philox_word(d.k0, d.k1, d.round, d.site, index) >= d.threshold;
}

// The factor element `index` is multiplied by: 1/(1-p) if kept, else 0.
__host__ __device__ __forceinline__ float drop_factor(const DropSite& d, uint64_t index) {
    if (!d.on) return 1.0f;
    return drop_keeps(d, index) ? d.keep : 0.0f;
}

// Inverted dropout of one value `v` at flat index `index` (masks.rs's
// apply_mask: kept values times 1/(1-p), the rest 0).
__host__ __device__ __forceinline__ float drop_apply(const DropSite& d, float v, uint64_t index) {
    if (!d.on) return v;
    return drop_keeps(d, index) ? v * d.keep : 0.0f;
}

}  // namespace lean
