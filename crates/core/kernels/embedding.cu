// A BERT-family encoder's embeddings, forward and backward (ABI.md:
// lean_embed_*): the sum of a token's word, token-type and position rows
// (positions as the family numbers them, from the host), and its gradient
// scattered back into the three tables but for their padding_idx rows. CPU twin: Cpu::embed / embed_backward in
// model/lean/cpu.rs. The backward's atomicAdd order is not fixed.
#include "common.cuh"

using namespace lean;

extern "C" __global__ void lean_embed_fwd(const uint32_t* ids, const uint32_t* types,
                                          const uint32_t* positions, const float* word, const float* position,
                                          const float* token_type, float* out, uint32_t b,
                                          uint32_t s, uint32_t hidden) {
    const size_t n = (size_t)b * s * hidden;
    for (size_t i = grid_first(); i < n; i += grid_stride()) {
        const size_t tok = i / hidden;
        const size_t c = i % hidden;
        const float wv = word[(size_t)ids[tok] * hidden + c];
        const float tv = token_type[(size_t)types[tok] * hidden + c];
        const float pv = position[(size_t)positions[tok] * hidden + c];
        out[i] = (wv + tv) + pv;
    }
}

// `position_pad` is the position row that gets no gradient (RoBERTa's
// padding_idx), 0xFFFFFFFF for none.
extern "C" __global__ void lean_embed_bwd(const float* d, const uint32_t* ids,
                                          const uint32_t* types, const uint32_t* positions,
                                          float* g_word, float* g_position, float* g_type,
                                          uint32_t b, uint32_t s, uint32_t hidden, uint32_t pad,
                                          uint32_t position_pad) {
    const size_t n = (size_t)b * s * hidden;
    for (size_t i = grid_first(); i < n; i += grid_stride()) {
        const size_t tok = i / hidden;
        const size_t c = i % hidden;
        const float v = d[i];
        const uint32_t id = ids[tok];
        if (id != pad) atomicAdd(&g_word[(size_t)id * hidden + c], v);
        atomicAdd(&g_type[(size_t)types[tok] * hidden + c], v);
        const uint32_t pos = positions[tok];
        if (pos != position_pad) atomicAdd(&g_position[(size_t)pos * hidden + c], v);
    }
}
