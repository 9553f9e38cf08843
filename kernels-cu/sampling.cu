// Spatial resampling of the frame-interpolation and face-detection models: transposed
// convolution, bilinear grid sampling and max pooling. Each thread owns its outputs and
// gathers what reaches them, so no output is written twice and no atomics are needed.
#include "common.cuh"

struct TransposedConv {
    int in_channels, out_channels;
    int in_h, in_w, kernel_h, kernel_w, out_h, out_w;
    int stride, pad;
};

// Taps along one axis that reach output `o`: input o' = q − t meets kernel index
// r + stride·t, where q and r are the quotient and remainder of (o + pad) by the stride.
// Returns q and r and the range [t0, t1) of t that stays inside the input and the kernel.
struct TapRange {
    int q, r, t0, t1;
};

__device__ __forceinline__ TapRange tap_range(int o, int pad, int stride, int in, int kernel) {
    TapRange t;
    t.q = (o + pad) / stride;
    t.r = (o + pad) % stride;
    t.t0 = max(0, t.q - in + 1);
    // r + stride·t < kernel, written so that a stride near INT_MAX cannot overflow.
    const int in_kernel = t.r < kernel ? (kernel - 1 - t.r) / stride + 1 : 0;
    t.t1 = min(t.q + 1, in_kernel);
    return t;
}

// One thread per output element of y [n, o, out_h, out_w], x [n, c, in_h, in_w] and
// w [c, o, kh, kw] (PyTorch's layout). Gathering over the taps of the output's phase skips
// the stride² − 1 of every stride² kernel taps that would meet the zeros between inputs.
extern "C" __global__ void conv_transpose2d(const T* __restrict__ x, const T* __restrict__ w,
                                            const T* __restrict__ bias, T* __restrict__ y,
                                            i64 n, TransposedConv g) {
    const i64 in_plane = (i64)g.in_h * g.in_w;
    const i64 kernel_plane = (i64)g.kernel_h * g.kernel_w;
    GRID_STRIDE(i, n) {
        const int ox = (int)(i % g.out_w);
        const int oy = (int)(i / g.out_w % g.out_h);
        const i64 plane = i / ((i64)g.out_w * g.out_h);
        const int o = (int)(plane % g.out_channels);
        const i64 image = plane / g.out_channels;
        const TapRange ty = tap_range(oy, g.pad, g.stride, g.in_h, g.kernel_h);
        const TapRange tx = tap_range(ox, g.pad, g.stride, g.in_w, g.kernel_w);
        const T* xs = x + image * g.in_channels * in_plane;
        const T* ws = w + (i64)o * kernel_plane;
        const i64 w_channel = (i64)g.out_channels * kernel_plane;
        float acc = bias ? load(bias, o) : 0.0f;
        for (int t = ty.t0; t < ty.t1; ++t) {
            const i64 x_row = (i64)(ty.q - t) * g.in_w;
            const i64 w_row = (i64)(ty.r + g.stride * t) * g.kernel_w;
            for (int u = tx.t0; u < tx.t1; ++u) {
                const T* xp = xs + x_row + (tx.q - u);
                const T* wp = ws + w_row + (tx.r + g.stride * u);
                for (int c = 0; c < g.in_channels; ++c)
                    acc += load(xp, c * in_plane) * load(wp, c * w_channel);
            }
        }
        store(y, i, acc);
    }
}

// PyTorch's grid_sampler_compute_source_index (bilinear) in the CPU reference's f32
// operation order; the products are rounded on their own (no FMA contraction) so that the
// floor below picks the same taps as the reference.
__device__ __forceinline__ float source_index(float coord, int size, int border,
                                              int align_corners) {
    const float size_f = (float)size;
    const float ix = align_corners ? __fmul_rn((coord + 1.0f) / 2.0f, size_f - 1.0f)
                                   : (__fmul_rn(coord + 1.0f, size_f) - 1.0f) / 2.0f;
    if (!border) return ix;
    // Comparisons rather than fminf/fmaxf, which would turn a NaN into an edge
    // coordinate; the reference keeps it NaN, and a NaN point reads as out of range.
    if (ix < 0.0f) return 0.0f;
    return ix > size_f - 1.0f ? size_f - 1.0f : ix;
}

// One thread per sample point of grid [n, ho, wo, 2] (x then y, f32 whatever the storage
// dtype of x), looping over the channels of x [n, c, h, w] into y [n, c, ho, wo]: the
// coordinates and taps are worked out once per point. Taps outside the input read zero.
extern "C" __global__ void grid_sample(const T* __restrict__ x, const float* __restrict__ grid,
                                       T* __restrict__ y, i64 points, int channels, int h,
                                       int w, i64 out_plane, int border, int align_corners) {
    const i64 in_plane = (i64)h * w;
    GRID_STRIDE(i, points) {
        const float ix = source_index(grid[2 * i], w, border, align_corners);
        const float iy = source_index(grid[2 * i + 1], h, border, align_corners);
        const float x0 = floorf(ix), y0 = floorf(iy);
        const float tx = ix - x0, ty = iy - y0;
        // Corners in the reference's order: (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1).
        const float cx[4] = {x0, x0 + 1.0f, x0, x0 + 1.0f};
        const float cy[4] = {y0, y0, y0 + 1.0f, y0 + 1.0f};
        const float weight[4] = {(1.0f - tx) * (1.0f - ty), tx * (1.0f - ty), (1.0f - tx) * ty,
                                 tx * ty};
        i64 offset[4];
        bool inside[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            // Compared as floats, before any conversion: NaN and huge coordinates are out.
            inside[k] = cx[k] >= 0.0f && cy[k] >= 0.0f && cx[k] < (float)w && cy[k] < (float)h;
            offset[k] = inside[k] ? (i64)cy[k] * w + (i64)cx[k] : 0;
        }
        const i64 image = i / out_plane, p = i % out_plane;
        const T* xs = x + image * channels * in_plane;
        T* ys = y + image * channels * out_plane + p;
        for (int c = 0; c < channels; ++c) {
            const T* plane = xs + c * in_plane;
            float acc = 0.0f;
#pragma unroll
            for (int k = 0; k < 4; ++k)
                if (inside[k]) acc += load(plane, offset[k]) * weight[k];
            store(ys, c * out_plane, acc);
        }
    }
}

// One thread per output of y [planes, oh, ow] from x [planes, h, w]: the max over the
// window's in-range taps, which is reading −∞ for the padding (every window holds at
// least one real tap since padding ≤ kernel/2). A NaN in the window is the result, as in
// PyTorch.
extern "C" __global__ void max_pool2d(const T* __restrict__ x, T* __restrict__ y, i64 n, int h,
                                      int w, int oh, int ow, int kernel, int stride, int pad) {
    GRID_STRIDE(i, n) {
        const int ox = (int)(i % ow), oy = (int)(i / ow % oh);
        const T* plane = x + i / ((i64)ow * oh) * h * w;
        const int y0 = oy * stride - pad, x0 = ox * stride - pad;
        const int y1 = min(y0 + kernel, h), x1 = min(x0 + kernel, w);
        float m = -INFINITY;
        for (int r = max(y0, 0); r < y1; ++r)
            for (int c = max(x0, 0); c < x1; ++c) {
                const float v = load(plane, (i64)r * w + c);
                if (v > m || v != v) m = v;
            }
        store(y, i, m);
    }
}
