// Attention over a short axis (the UNet's temporal layers: ≤ 32 frames) for a huge batch
// of independent sequences, read straight from the spatial layout.
//
// In SVD's temporal transformer the tokens of one sequence (one pixel across F frames) sit
// `hw·c` elements apart in the [b·F, hw, c] activations; diffusers permutes them into
// [b·hw, F, c] first. Here each sequence n = (outer, inner) = (n / inner, n % inner) is
// addressed as base + outer·s_outer + inner·s_inner + frame·s_frame, so no permute copy is
// made on the way in or out.
//
// One warp per (sequence, head): Q, K, V (a few KB) are staged in shared memory with
// coalesced row loads, lane i computes query frame i's scores against every key (K rows
// are broadcast reads), a plain softmax (the whole row is in registers) and the weighted
// sum of V, which it writes over its own Q row before the warp stores all rows coalesced.
// The kernel is memory-bound, so the goal is one read of Q, K, V and one write of O.
#include "common.cuh"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined"
#endif
#define MAX_FRAMES 32
#define PAIRS (HEAD_DIM / 2)
// One pair of padding per Q/O row: lanes then walk distinct banks when each reads its row.
#define QO_STRIDE (PAIRS + 1)

struct Strides {
    i64 outer, inner, frame;
};

__device__ __forceinline__ i64 sequence_base(int n, int inner, Strides s) {
    return (i64)(n / inner) * s.outer + (i64)(n % inner) * s.inner;
}

// Copies `rows` rows of one head into shared memory, one row per step, lanes along the row.
__device__ __forceinline__ void stage(pair_t* dst, int dst_stride, const T* src, Strides s,
                                      int rows, int lane) {
    for (int r = 0; r < rows; ++r) {
        const pair_t* row = (const pair_t*)(src + r * s.frame);
        for (int p = lane; p < PAIRS; p += 32) dst[r * dst_stride + p] = row[p];
    }
}

extern "C" __global__ void temporal_attention(const T* __restrict__ q, const T* __restrict__ k,
                                              const T* __restrict__ v, T* __restrict__ o,
                                              int sequences, int inner, int heads, int lq,
                                              int lk, Strides qo_strides, Strides kv_strides,
                                              float scale_log2) {
    SONIC_DYNAMIC_SHARED(16, unsigned char, smem_raw);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int warps = blockDim.x >> 5;
    const long long task = (long long)blockIdx.x * warps + warp;
    if (task >= (long long)sequences * heads) return;
    const int n = (int)(task / heads), h = (int)(task % heads);

    pair_t* s_qo = (pair_t*)smem_raw + warp * (MAX_FRAMES * QO_STRIDE + 2 * lk * PAIRS);
    pair_t* s_k = s_qo + MAX_FRAMES * QO_STRIDE;
    pair_t* s_v = s_k + lk * PAIRS;

    const i64 qo_base = sequence_base(n, inner, qo_strides) + h * HEAD_DIM;
    const i64 kv_base = sequence_base(n, inner, kv_strides) + h * HEAD_DIM;
    stage(s_qo, QO_STRIDE, q + qo_base, qo_strides, lq, lane);
    stage(s_k, PAIRS, k + kv_base, kv_strides, lk, lane);
    stage(s_v, PAIRS, v + kv_base, kv_strides, lk, lane);
    __syncwarp();

    if (lane < lq) {
        float s[MAX_FRAMES];
#pragma unroll
        for (int j = 0; j < MAX_FRAMES; ++j) s[j] = 0.0f;
        const pair_t* q_row = s_qo + lane * QO_STRIDE;
        for (int p = 0; p < PAIRS; ++p) {
            float qa, qb;
            unpack(q_row[p], qa, qb);
#pragma unroll
            for (int j = 0; j < MAX_FRAMES; ++j) {
                if (j < lk) {
                    float ka, kb;
                    unpack(s_k[j * PAIRS + p], ka, kb);
                    s[j] = fmaf(qa, ka, fmaf(qb, kb, s[j]));
                }
            }
        }
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < MAX_FRAMES; ++j)
            if (j < lk) mx = fmaxf(mx, s[j] * scale_log2);
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < MAX_FRAMES; ++j) {
            s[j] = j < lk ? exp2f(s[j] * scale_log2 - mx) : 0.0f;
            sum += s[j];
        }
        const float inv = 1.0f / sum;
        pair_t* o_row = s_qo + lane * QO_STRIDE;
        for (int p = 0; p < PAIRS; ++p) {
            float a = 0.0f, b = 0.0f;
#pragma unroll
            for (int j = 0; j < MAX_FRAMES; ++j) {
                if (j < lk) {
                    float va, vb;
                    unpack(s_v[j * PAIRS + p], va, vb);
                    a = fmaf(s[j], va, a);
                    b = fmaf(s[j], vb, b);
                }
            }
            o_row[p] = pack(a * inv, b * inv);
        }
    }
    __syncwarp();
    T* out = o + qo_base;
    for (int r = 0; r < lq; ++r) {
        pair_t* row = (pair_t*)(out + r * qo_strides.frame);
        for (int p = lane; p < PAIRS; p += 32) row[p] = s_qo[r * QO_STRIDE + p];
    }
}
