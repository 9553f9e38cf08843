// Fused flash-attention forward (non-causal) for long sequences: the UNet's spatial
// self-attention (1k-4k tokens) and CLIP/VAE-sized problems.
//
// FlashAttention-2 layout: a block of 4 warps owns 64 queries (16 per warp) and streams
// 64-key tiles of K and V through shared memory. Tiles arrive by cp.async into two
// buffers, so the next tile loads while this one is multiplied. Q·Kᵀ and P·V run on
// tensor cores (mma.sync m16n8k16, f32 accumulators) fed by ldmatrix from XOR-swizzled
// shared memory (conflict-free for ldmatrix's 8-row phases). The softmax is online and in
// exp2 form: scores are pre-multiplied by scale·log2(e), so each exponential is one ex2.
//
// Layout: q/o are [b, lq, heads·HEAD_DIM] and k/v [b, lk, heads·HEAD_DIM] with the given
// batch and token strides (elements); rows and strides must be 16-byte aligned.
#include "tensor_core.cuh"

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined"
#endif
#if HEAD_DIM % 8 != 0 || HEAD_DIM > 128
#error "HEAD_DIM must be a multiple of 8, at most 128"
#endif

#define BLOCK_M 64
#define BLOCK_N 64
#define WARPS 4
#define THREADS (WARPS * 32)
// The MMA contracts over 16 elements: d=40 is computed as 48 with zero padding.
#define D_MMA (((HEAD_DIM + 15) / 16) * 16)
// Shared rows are whole 128-byte lines, so the XOR swizzle never leaves its row.
#define D_SMEM (((HEAD_DIM + 63) / 64) * 64)
#define LOAD_CHUNKS (D_MMA / 8)   // 16-byte chunks loaded per row (padding zero-filled)
#define DATA_CHUNKS (HEAD_DIM / 8)
#define O_TILES (HEAD_DIM / 8)    // n8 tiles of the output row

#if SONIC_DTYPE == SONIC_F16
#define CVT_X2 "cvt.rn.f16x2.f32"
#else
#define CVT_X2 "cvt.rn.bf16x2.f32"
#endif

// Element offset of 16-byte chunk `chunk` of row `row` in a swizzled tile.
__device__ __forceinline__ int swizzle(int row, int chunk) {
    return row * D_SMEM + ((chunk ^ (row & 7)) << 3);
}

// Starts the copy of rows [row0, row0 + 64) of a [len, ·] matrix into a swizzled tile.
// Rows past `len` and the head-dim padding are zero-filled (cp.async with src-size 0),
// so they add nothing to either product.
__device__ __forceinline__ void load_tile(u16* tile, const T* base, i64 row_stride, int row0,
                                          int len) {
    for (int idx = threadIdx.x; idx < BLOCK_N * LOAD_CHUNKS; idx += THREADS) {
        const int row = idx / LOAD_CHUNKS, chunk = idx % LOAD_CHUNKS;
        const bool valid = row0 + row < len && chunk < DATA_CHUNKS;
        const T* src = valid ? base + (i64)(row0 + row) * row_stride + chunk * 8 : base;
        cp_async_16(tile + swizzle(row, chunk), src, valid ? 16 : 0);
    }
}

// Two f32 values as one register of two 16-bit values, `lo` in the low half.
__device__ __forceinline__ u32 pack2(float lo, float hi) {
    u32 r;
#ifdef SONIC_EMULATOR
    r = emu::cvt_x2<SONIC_DTYPE == SONIC_BF16>(hi, lo);
#else
    asm(CVT_X2 " %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#endif
    return r;
}

extern "C" __global__ void __launch_bounds__(THREADS)
flash_attention_fwd(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                    T* __restrict__ o, int heads, int lq, int lk, i64 q_batch, i64 q_row,
                    i64 kv_batch, i64 kv_row, i64 o_batch, i64 o_row, float scale_log2) {
    SONIC_DYNAMIC_SHARED(128, u16, smem);
    u16* s_q = smem;
    u16* s_k = s_q + BLOCK_M * D_SMEM;   // two buffers
    u16* s_v = s_k + 2 * BLOCK_N * D_SMEM; // two buffers

    const int b = blockIdx.y / heads, h = blockIdx.y % heads;
    const int m0 = blockIdx.x * BLOCK_M;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const T* q_base = q + b * q_batch + h * HEAD_DIM;
    const T* k_base = k + b * kv_batch + h * HEAD_DIM;
    const T* v_base = v + b * kv_batch + h * HEAD_DIM;

    load_tile(s_q, q_base, q_row, m0, lq);
    load_tile(s_k, k_base, kv_row, 0, lk);
    load_tile(s_v, v_base, kv_row, 0, lk);
    cp_async_commit();

    u32 q_frag[D_MMA / 16][4];
    float acc[O_TILES][4];
#pragma unroll
    for (int t = 0; t < O_TILES; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
    // Running max (in the exp2 domain) and this thread's share of the row sums, for its
    // two rows: lane/4 and lane/4 + 8 of the warp's 16.
    float row_max[2] = {-INFINITY, -INFINITY};
    float row_sum[2] = {0.0f, 0.0f};

    const int tiles = (lk + BLOCK_N - 1) / BLOCK_N;
    for (int j = 0; j < tiles; ++j) {
        const int buf = j & 1;
        if (j + 1 < tiles) {
            const int next = (j + 1) & 1;
            load_tile(s_k + next * BLOCK_N * D_SMEM, k_base, kv_row, (j + 1) * BLOCK_N, lk);
            load_tile(s_v + next * BLOCK_N * D_SMEM, v_base, kv_row, (j + 1) * BLOCK_N, lk);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (j == 0) {
#pragma unroll
            for (int ks = 0; ks < D_MMA / 16; ++ks)
                ldmatrix_x4(q_frag[ks], s_q + swizzle(warp * 16 + (lane & 15), ks * 2 + (lane >> 4)));
        }
        const u16* tk = s_k + buf * BLOCK_N * D_SMEM;
        const u16* tv = s_v + buf * BLOCK_N * D_SMEM;

        // S = Q·Kᵀ for 16 queries × 64 keys: eight n8 tiles.
        float s[8][4];
#pragma unroll
        for (int t = 0; t < 8; ++t) s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < D_MMA / 16; ++ks) {
#pragma unroll
            for (int np = 0; np < 4; ++np) {
                u32 kb[4];
                const int key = np * 16 + (lane & 7) + ((lane >> 4) << 3);
                ldmatrix_x4(kb, tk + swizzle(key, ks * 2 + ((lane >> 3) & 1)));
                mma(s[2 * np], q_frag[ks], kb[0], kb[1]);
                mma(s[2 * np + 1], q_frag[ks], kb[2], kb[3]);
            }
        }

        // Online softmax. Keys past lk get -inf; every tile holds at least one real key,
        // so the new maximum is finite.
        const int key0 = j * BLOCK_N + 2 * (lane & 3);
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float mx = -INFINITY;
#pragma unroll
            for (int t = 0; t < 8; ++t) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    float x = s[t][2 * r + e] * scale_log2;
                    if (key0 + t * 8 + e >= lk) x = -INFINITY;
                    s[t][2 * r + e] = x;
                    mx = fmaxf(mx, x);
                }
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(row_max[r], mx);
            const float alpha = exp2f(row_max[r] - m_new);
            row_max[r] = m_new;
            float sum = 0.0f;
#pragma unroll
            for (int t = 0; t < 8; ++t) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const float p = exp2f(s[t][2 * r + e] - m_new);
                    s[t][2 * r + e] = p;
                    sum += p;
                }
            }
            row_sum[r] = row_sum[r] * alpha + sum;
#pragma unroll
            for (int t = 0; t < O_TILES; ++t) {
                acc[t][2 * r] *= alpha;
                acc[t][2 * r + 1] *= alpha;
            }
        }

        // O += P·V: the score accumulators are already laid out as A fragments.
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
            u32 pa[4];
            pa[0] = pack2(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = pack2(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = pack2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
            const int key = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
#pragma unroll
            for (int dp = 0; dp < O_TILES / 2; ++dp) {
                u32 vb[4];
                ldmatrix_x4_trans(vb, tv + swizzle(key, dp * 2 + (lane >> 4)));
                mma(acc[2 * dp], pa, vb[0], vb[1]);
                mma(acc[2 * dp + 1], pa, vb[2], vb[3]);
            }
#if O_TILES % 2 == 1
            {
                u32 vb[2];
                ldmatrix_x2_trans(vb, tv + swizzle(key, O_TILES - 1));
                mma(acc[O_TILES - 1], pa, vb[0], vb[1]);
            }
#endif
        }
        // The next iteration refills the buffer just read.
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float l = row_sum[r];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const float inv = 1.0f / l;
        const int row = m0 + warp * 16 + (lane >> 2) + r * 8;
        if (row < lq) {
            u32* out = (u32*)(o + b * o_batch + row * o_row + h * HEAD_DIM);
#pragma unroll
            for (int t = 0; t < O_TILES; ++t)
                out[t * 4 + (lane & 3)] = pack2(acc[t][2 * r] * inv, acc[t][2 * r + 1] * inv);
        }
    }
}
