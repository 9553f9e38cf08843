// Cross-attention to a single key (SVD's image embedding: encoder_hidden_states of length
// 1). softmax over one key is exactly 1, so the output is V broadcast to every query:
// one read of V, one write of O, and Q and K are never touched.
#include "common.cuh"

// v is [b, 1, width], o is [b, lq, width].
extern "C" __global__ void single_key_attention(const T* __restrict__ v, T* __restrict__ o,
                                                int lq, i64 width, i64 total) {
    GRID_STRIDE(i, total) {
        const i64 c = i % width, b = i / (width * lq);
        o[i] = v[b * width + c];
    }
}
