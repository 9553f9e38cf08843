// Implicit-GEMM convolution: y[o, q] = Σ_k W[o, k] · cols[k, q] + bias[o], the product
// im2col + GEMM computes, without materialising the column matrix. k runs over (channel,
// kz, ky, kx) in the order of W [O, C, kd, kh, kw], so W is a plain row-major [O, K]
// matrix. Images are folded into the columns (q = image·P + position), so the 8×8 latents
// of the UNet's inner levels still fill whole tiles.
//
// A block computes one BM × BN tile of y and walks K in slices of BK, double-buffered in
// shared memory: while one slice is multiplied, the next slice of W arrives by cp.async
// (16-byte rows when K % 8 == 0, else element by element) and the next slice of columns is
// gathered from the input into registers. Half precision multiplies on tensor cores
// (mma.sync m16n8k16 fed by ldmatrix from XOR-swizzled tiles, f32 accumulators); f32 runs
// 4×4 register tiles on the FMA units, true f32 with no TF32.
//
// Gathering a column element needs no division: `conv_gather_table` lists per k its offset
// in the image and its kernel offsets (dz, dy, dx), and per column the thread keeps the
// corner (z0, y0, x0) of its receptive field. The element is x[origin + offset] when
// (z0 + dz, y0 + dy, x0 + dx) lies inside the input, else a zero of the padding.
//
// Offsets within one image are 32-bit: the launcher keeps the channels times the padded
// extents widened by the dilated kernel below 2^31, and images·P a tile short of it.
#include "common.cuh"
#include "conv.cuh"

// A coordinate this far below zero fails every bounds test, and two of them still add up
// to no less than INT_MIN: table entries past K and columns past the last image use it.
#define OUTSIDE (-(1 << 30))

// One row k of the column matrix: channel c at kernel tap (kz, ky, kx).
struct __align__(16) Tap {
    int offset;     // ((c·D + dz)·H + dy)·W + dx
    int dz, dy, dx; // kz, ky, kx times the dilation
};

// The K = C·kd·kh·kw taps, then OUTSIDE entries up to `k_padded` (whole K slices of every
// variant), so the K loop reads the table without bounds tests.
extern "C" __global__ void conv_gather_table(Tap* __restrict__ table, ConvGeometry g,
                                             int k_total, int k_padded) {
    GRID_STRIDE(k, k_padded) {
        Tap t;
        if (k < k_total) {
            const i64 area = (i64)g.kernel[1] * g.kernel[2];
            const int kx = (int)(k % g.kernel[2]);
            const int ky = (int)(k / g.kernel[2] % g.kernel[1]);
            const int kz = (int)(k / area % g.kernel[0]);
            const i64 c = k / (area * g.kernel[0]);
            t.dz = kz * g.dilation[0];
            t.dy = ky * g.dilation[1];
            t.dx = kx * g.dilation[2];
            t.offset = (int)(((c * g.in[0] + t.dz) * g.in[1] + t.dy) * g.in[2] + t.dx);
        } else {
            t.offset = 0;
            t.dz = t.dy = t.dx = OUTSIDE;
        }
        table[k] = t;
    }
}

// Where output column q reads its input.
struct Column {
    i64 origin;     // element index of (image, channel 0, z0, y0, x0), possibly outside
    int z0, y0, x0; // output position times stride, minus padding
};

__device__ __forceinline__ Column column(const ConvGeometry& g, int q, int columns) {
    Column c;
    if (q >= columns) {
        c.origin = 0;
        c.z0 = c.x0 = 0;
        c.y0 = OUTSIDE;
        return c;
    }
    const int positions = g.out[0] * g.out[1] * g.out[2];
    const int image = q / positions, p = q - image * positions;
    const int ox = p % g.out[2], oy = p / g.out[2] % g.out[1], oz = p / (g.out[2] * g.out[1]);
    c.z0 = oz * g.stride[0] - g.pad[0];
    c.y0 = oy * g.stride[1] - g.pad[1];
    c.x0 = ox * g.stride[2] - g.pad[2];
    const i64 volume = (i64)g.channels * g.in[0] * g.in[1] * g.in[2];
    c.origin = image * volume + ((i64)c.z0 * g.in[1] + c.y0) * g.in[2] + c.x0;
    return c;
}

// Whether tap t of column c reads the input rather than the padding. Without DEPTH the
// geometry has depth 1 everywhere (1d and 2d), so z is always inside.
template <bool DEPTH>
__device__ __forceinline__ bool inside(const Column& c, const Tap& t, const ConvGeometry& g) {
    return (!DEPTH || (unsigned)(c.z0 + t.dz) < (unsigned)g.in[0]) &&
           (unsigned)(c.y0 + t.dy) < (unsigned)g.in[1] &&
           (unsigned)(c.x0 + t.dx) < (unsigned)g.in[2];
}

// Offset of output column q within the output ([images, O, P]); add o·P for channel o.
__device__ __forceinline__ i64 output_offset(int q, int positions, int out_channels) {
    const int image = q / positions;
    return (i64)image * out_channels * positions + (q - image * positions);
}

#if SONIC_DTYPE == SONIC_F32

// ---------------------------------------------------------------------------------------
// f32: 64 × 64 tiles, 16-deep K slices, 256 threads of 4 × 4 outputs each.

#define BM 64
#define BN 64
#define BK 16
#define THREADS 256
#define MIN_BLOCKS 2
// Rows of the transposed W tile stay 16-byte aligned for float4 reads.
#define A_PITCH (BM + 4)

// The double-buffered tiles, declared by the entry points (see the end of the file).
struct Tiles {
    __align__(16) float a[2][BK][A_PITCH];
    __align__(16) float b[2][BK][BN];
};

template <bool DEPTH>
__device__ __forceinline__ void conv_tile(Tiles& smem, const float* __restrict__ x,
                                          const float* __restrict__ w,
                                          const float* __restrict__ bias, float* __restrict__ y,
                                          const Tap* __restrict__ table, const ConvGeometry& g,
                                          int out_channels, int columns) {
    float(&s_a)[2][BK][A_PITCH] = smem.a;
    float(&s_b)[2][BK][BN] = smem.b;
    const int k_total = g.channels * g.kernel[0] * g.kernel[1] * g.kernel[2];
    const int m_tiles = (out_channels + BM - 1) / BM;
    const int m0 = (int)(blockIdx.x % m_tiles) * BM;
    const int n0 = (int)(blockIdx.x / m_tiles) * BN;
    // Loading: W rows a_row + 16·i at k a_k (16 threads read 16 consecutive k of a row);
    // column b_col of the tile at k rows 4·b_group + j.
    const int a_k = threadIdx.x & 15, a_row = threadIdx.x >> 4;
    const int b_col = threadIdx.x & 63, b_group = threadIdx.x >> 6;
    // Computing: output channels m0 + 4·ty + i, columns n0 + 4·tx + j.
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const Column col = column(g, n0 + b_col, columns);
    const int tiles = (k_total + BK - 1) / BK;

    float wa[4], xb[4];
    auto load = [&](int k0) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int o = m0 + a_row + 16 * i, k = k0 + a_k;
            wa[i] = o < out_channels && k < k_total ? w[(i64)o * k_total + k] : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const Tap t = table[k0 + 4 * b_group + j];
            xb[j] = inside<DEPTH>(col, t, g) ? x[col.origin + t.offset] : 0.0f;
        }
    };
    auto stage = [&](int s) {
#pragma unroll
        for (int i = 0; i < 4; ++i) s_a[s][a_k][a_row + 16 * i] = wa[i];
#pragma unroll
        for (int j = 0; j < 4; ++j) s_b[s][4 * b_group + j][b_col] = xb[j];
    };

    load(0);
    stage(0);
    __syncthreads();
    float acc[4][4] = {};
    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        const bool more = t + 1 < tiles;
        if (more) load((t + 1) * BK);
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            const float4 a = *(const float4*)&s_a[cur][kk][4 * ty];
            const float4 b = *(const float4*)&s_b[cur][kk][4 * tx];
            const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        // The other buffer was last read before the previous barrier.
        if (more) stage(cur ^ 1);
        __syncthreads();
    }

    const int positions = g.out[0] * g.out[1] * g.out[2];
    i64 at[4];
    bool ok[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int q = n0 + 4 * tx + j;
        ok[j] = q < columns;
        at[j] = ok[j] ? output_offset(q, positions, out_channels) : 0;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int o = m0 + 4 * ty + i;
        if (o >= out_channels) continue;
        const float add = bias ? bias[o] : 0.0f;
        const i64 row = (i64)o * positions;
#pragma unroll
        for (int j = 0; j < 4; ++j)
            if (ok[j]) y[at[j] + row] = acc[i][j] + add;
    }
}

#else

// ---------------------------------------------------------------------------------------
// f16/bf16: 128 × 128 tiles, 32-deep K slices, 8 warps in a 2 × 4 grid of 64 × 32 warp
// tiles (4 × 4 mma tiles each).
#include "tensor_core.cuh"

#define BM 128
#define BN 128
#define BK 32
#define THREADS 256
#define MIN_BLOCKS 2

// Element offset of 16-byte chunk `chunk` of row `row` in the W tile: rows of BK halves
// (4 chunks), two to a 128-byte line, so the XOR takes row bits 1-2 and any 8 consecutive
// rows at one chunk, as ldmatrix reads them, fall in 8 different bank groups.
__device__ __forceinline__ int a_offset(int row, int chunk) {
    return row * BK + ((chunk ^ ((row >> 1) & 3)) << 3);
}
// The same for the column tile: rows of BN halves (16 chunks), XOR with row bits 0-2.
__device__ __forceinline__ int b_offset(int row, int chunk) {
    return row * BN + ((chunk ^ (row & 7)) << 3);
}

struct __align__(16) Chunk {
    u32 v[4];
};

// Loads W[m0 .. m0 + BM, k0 .. k0 + BK) into a tile, zero past the last output channel and
// past K: by cp.async when `vector` (K % 8 == 0 and W 16-byte aligned), else synchronously.
__device__ __forceinline__ void load_weights(u16* tile, const u16* __restrict__ w, int m0, int k0,
                                             int out_channels, int k_total, bool vector) {
#pragma unroll
    for (int i = 0; i < BM * BK / 8 / THREADS; ++i) {
        const int id = threadIdx.x + i * THREADS;
        const int row = id >> 2, chunk = id & 3;
        const int k = k0 + chunk * 8;
        const bool row_ok = m0 + row < out_channels;
        const u16* src = w + (i64)(m0 + row) * k_total + k;
        u16* dst = tile + a_offset(row, chunk);
        if (vector) {
            const bool valid = row_ok && k < k_total;
            cp_async_16(dst, valid ? src : w, valid ? 16 : 0);
        } else {
            Chunk c;
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const u32 lo = row_ok && k + 2 * e < k_total ? src[2 * e] : 0;
                const u32 hi = row_ok && k + 2 * e + 1 < k_total ? src[2 * e + 1] : 0;
                c.v[e] = lo | (hi << 16);
            }
            *(Chunk*)dst = c;
        }
    }
}

// The double-buffered tiles, declared by the entry points (see the end of the file).
struct Tiles {
    __align__(128) u16 a[2][BM * BK];
    __align__(128) u16 b[2][BK * BN];
};

template <bool DEPTH>
__device__ __forceinline__ void conv_tile(Tiles& smem, const T* __restrict__ x_,
                                          const T* __restrict__ w_, const T* __restrict__ bias,
                                          T* __restrict__ y, const Tap* __restrict__ table,
                                          const ConvGeometry& g, int out_channels, int columns) {
    u16(&s_a)[2][BM * BK] = smem.a;
    u16(&s_b)[2][BK * BN] = smem.b;
    const u16* __restrict__ x = (const u16*)x_;
    const u16* __restrict__ w = (const u16*)w_;
    const int k_total = g.channels * g.kernel[0] * g.kernel[1] * g.kernel[2];
    const bool vector = k_total % 8 == 0 && ((unsigned long long)w & 15) == 0;
    const int m_tiles = (out_channels + BM - 1) / BM;
    const int m0 = (int)(blockIdx.x % m_tiles) * BM;
    const int n0 = (int)(blockIdx.x / m_tiles) * BN;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp >> 2, wn = warp & 3;
    // Gathering: columns 2·pair and 2·pair + 1 of the tile, k rows 8·group .. 8·group + 7,
    // two columns to a register as the column tile holds them.
    const int pair = threadIdx.x & 63, group = threadIdx.x >> 6;
    const Column c0 = column(g, n0 + 2 * pair, columns);
    const Column c1 = column(g, n0 + 2 * pair + 1, columns);
    const int tiles = (k_total + BK - 1) / BK;

    u32 staged[8];
    auto gather = [&](int k0) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const Tap t = table[k0 + 8 * group + j];
            const u32 lo = inside<DEPTH>(c0, t, g) ? x[c0.origin + t.offset] : 0;
            const u32 hi = inside<DEPTH>(c1, t, g) ? x[c1.origin + t.offset] : 0;
            staged[j] = lo | (hi << 16);
        }
    };
    auto stage = [&](u16* tile) {
        const int n = 2 * pair;
#pragma unroll
        for (int j = 0; j < 8; ++j)
            *(u32*)(tile + b_offset(8 * group + j, n >> 3) + (n & 7)) = staged[j];
    };

    load_weights(s_a[0], w, m0, 0, out_channels, k_total, vector);
    cp_async_commit();
    gather(0);
    stage(s_b[0]);
    cp_async_wait<0>();
    __syncthreads();

    float acc[4][4][4] = {};
    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        const bool more = t + 1 < tiles;
        if (more) {
            // The other buffers were last read before the previous barrier.
            load_weights(s_a[cur ^ 1], w, m0, (t + 1) * BK, out_channels, k_total, vector);
            cp_async_commit();
            gather((t + 1) * BK);
        }
        const u16* a = s_a[cur];
        const u16* b = s_b[cur];
#pragma unroll
        for (int ks = 0; ks < BK / 16; ++ks) {
            u32 af[4][4], bf[4][2];
#pragma unroll
            for (int i = 0; i < 4; ++i)
                ldmatrix_x4(af[i], a + a_offset(wm * 64 + i * 16 + (lane & 15), ks * 2 + (lane >> 4)));
#pragma unroll
            for (int jp = 0; jp < 2; ++jp) {
                u32 r[4];
                const int k = ks * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
                ldmatrix_x4_trans(r, b + b_offset(k, wn * 4 + jp * 2 + (lane >> 4)));
                bf[2 * jp][0] = r[0];
                bf[2 * jp][1] = r[1];
                bf[2 * jp + 1][0] = r[2];
                bf[2 * jp + 1][1] = r[3];
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) mma(acc[i][j], af[i], bf[j][0], bf[j][1]);
        }
        if (more) {
            stage(s_b[cur ^ 1]);
            cp_async_wait<0>();
        }
        __syncthreads();
    }

    // Accumulator (i, j) holds rows lane/4 and lane/4 + 8 of m16 tile i, columns
    // 2·(lane % 4) and + 1 of n8 tile j. Adjacent columns share a 4-byte store when they
    // are adjacent in memory (same image) and the address is aligned.
    const int positions = g.out[0] * g.out[1] * g.out[2];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int q = n0 + wn * 32 + j * 8 + 2 * (lane & 3);
        const bool ok0 = q < columns, ok1 = q + 1 < columns;
        const i64 at0 = ok0 ? output_offset(q, positions, out_channels) : 0;
        const i64 at1 = ok1 ? output_offset(q + 1, positions, out_channels) : 0;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int o = m0 + wm * 64 + i * 16 + h * 8 + (lane >> 2);
                if (o >= out_channels) continue;
                const float add = bias ? to_f32(bias[o]) : 0.0f;
                const float v0 = acc[i][j][2 * h] + add, v1 = acc[i][j][2 * h + 1] + add;
                const i64 row = (i64)o * positions;
                const i64 y0 = at0 + row, y1 = at1 + row;
                if (ok1 && y1 == y0 + 1 && ((unsigned long long)(y + y0) & 3) == 0) {
                    *(pair_t*)(y + y0) = pack(v0, v1);
                } else {
                    if (ok0) store(y, y0, v0);
                    if (ok1) store(y, y1, v1);
                }
            }
        }
    }
}

#endif

// Grid: one block per (M tile, N tile), M fastest, so the blocks that share a slice of
// the input run together and find it in L2. 1d and 2d convolutions take the entry without
// the depth test. The shared tiles are declared here, in the kernels themselves, rather
// than in the inlined template (same layout on the device; the CPU emulator can then
// refill them for each block).
#define CONV_PARAMS                                                                          \
    const T *__restrict__ x, const T *__restrict__ w, const T *__restrict__ bias,            \
        T *__restrict__ y, const Tap *__restrict__ table, ConvGeometry g, int out_channels, \
        int columns

extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)
conv_implicit_gemm(CONV_PARAMS) {
    __shared__ Tiles smem;
    conv_tile<false>(smem, x, w, bias, y, table, g, out_channels, columns);
}

extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)
conv_implicit_gemm_3d(CONV_PARAMS) {
    __shared__ Tiles smem;
    conv_tile<true>(smem, x, w, bias, y, table, g, out_channels, columns);
}
