// Data movement: permute, row copies (concat, narrow), index_select, axis sums, nearest
// and bilinear/bicubic resizing, and im2col for convolutions run as a GEMM.
#include "common.cuh"
#include "conv.cuh"

#define MAX_RANK 8

// Output shape and, per output axis, the stride of the input axis it reads.
struct Permutation {
    int rank;
    i64 shape[MAX_RANK];
    i64 in_stride[MAX_RANK];
};

extern "C" __global__ void permute(const T* __restrict__ x, T* __restrict__ y, i64 n,
                                   Permutation p) {
    GRID_STRIDE(i, n) {
        i64 rest = i, src = 0;
        for (int d = p.rank - 1; d >= 0; --d) {
            src += (rest % p.shape[d]) * p.in_stride[d];
            rest /= p.shape[d];
        }
        y[i] = x[src];
    }
}

// y[r·dst_pitch + dst_offset + c] = x[r·src_pitch + src_offset + c] for c < width.
extern "C" __global__ void copy_rows(const T* __restrict__ x, T* __restrict__ y, i64 rows,
                                     i64 width, i64 src_pitch, i64 src_offset, i64 dst_pitch,
                                     i64 dst_offset) {
    GRID_STRIDE(i, rows * width) {
        const i64 r = i / width, c = i % width;
        y[r * dst_pitch + dst_offset + c] = x[r * src_pitch + src_offset + c];
    }
}

// x is [outer, size, inner]; y is [outer, count, inner] with y[:, j] = x[:, index[j]].
extern "C" __global__ void index_select(const T* __restrict__ x, const i64* __restrict__ index,
                                        T* __restrict__ y, i64 outer, i64 count, i64 size,
                                        i64 inner) {
    GRID_STRIDE(i, outer * count * inner) {
        const i64 in = i % inner, j = (i / inner) % count, o = i / (inner * count);
        y[i] = x[(o * size + index[j]) * inner + in];
    }
}

// x is [outer, size, inner]; y is [outer, 1, inner], summed in f64 as on the CPU.
extern "C" __global__ void sum_axis(const T* __restrict__ x, T* __restrict__ y, i64 outer,
                                    i64 size, i64 inner) {
    GRID_STRIDE(i, outer * inner) {
        const i64 o = i / inner, in = i % inner;
        double acc = 0.0;
        for (i64 j = 0; j < size; ++j) acc += (double)load(x, (o * size + j) * inner + in);
        store(y, i, (float)acc);
    }
}

extern "C" __global__ void upsample_nearest2d(const T* __restrict__ x, T* __restrict__ y,
                                              i64 planes, int h, int w, int sh, int sw) {
    const int oh = h * sh, ow = w * sw;
    GRID_STRIDE(i, planes * oh * ow) {
        const i64 p = i / ((i64)oh * ow);
        const int r = (int)(i / ow % oh), c = (int)(i % ow);
        y[i] = x[(p * h + r / sh) * w + c / sw];
    }
}

// PyTorch's area_pixel_compute_scale and source index for a size-given resize.
__device__ __forceinline__ double source_coordinate(int out, int in, int out_len,
                                                    int align_corners) {
    if (align_corners)
        return out_len > 1 ? out * ((double)(in - 1) / (double)(out_len - 1)) : 0.0;
    return (out + 0.5) * ((double)in / (double)out_len) - 0.5;
}

// Keys' cubic convolution kernel, a = −0.75.
__device__ __forceinline__ double cubic(double x) {
    const double a = -0.75;
    x = fabs(x);
    if (x <= 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    return 0.0;
}

// Taps along one axis: up to 4 (index, weight) pairs; returns how many.
__device__ __forceinline__ int taps(int out, int in, int out_len, int bicubic, int align_corners,
                                    int* index, float* weight) {
    double src = source_coordinate(out, in, out_len, align_corners);
    const int last = in - 1;
    if (!bicubic) {
        // Linear modes clamp negative coordinates to 0; cubic does not.
        src = fmax(src, 0.0);
        const int i0 = min((int)floor(src), last);
        const double t = src - i0;
        index[0] = min(max(i0, 0), last);
        index[1] = min(max(i0 + 1, 0), last);
        weight[0] = (float)(1.0 - t);
        weight[1] = (float)t;
        return 2;
    }
    const int i0 = (int)floor(src);
    const double t = src - i0;
    for (int k = -1; k <= 2; ++k) {
        index[k + 1] = min(max(i0 + k, 0), last);
        weight[k + 1] = (float)cubic(t - k);
    }
    return 4;
}

extern "C" __global__ void resize2d(const T* __restrict__ x, T* __restrict__ y, i64 planes,
                                    int h, int w, int oh, int ow, int bicubic,
                                    int align_corners) {
    GRID_STRIDE(i, planes * oh * ow) {
        const i64 p = i / ((i64)oh * ow);
        const int r = (int)(i / ow % oh), c = (int)(i % ow);
        int iy[4], ix[4];
        float wy[4], wx[4];
        const int ny = taps(r, h, oh, bicubic, align_corners, iy, wy);
        const int nx = taps(c, w, ow, bicubic, align_corners, ix, wx);
        const T* plane = x + p * h * w;
        float acc = 0.0f;
        // Rows first, then columns, in the CPU reference's order.
        for (int kx = 0; kx < nx; ++kx) {
            float line = 0.0f;
            for (int ky = 0; ky < ny; ++ky) line += wy[ky] * load(plane, (i64)iy[ky] * w + ix[kx]);
            acc += wx[kx] * line;
        }
        store(y, i, acc);
    }
}

// Columns for output positions [p0, p0 + tile) of one image: cols[k][p − p0] with
// k = ((c·kd + kz)·kh + ky)·kw + kx, zero where the tap falls in the padding.
extern "C" __global__ void im2col(const T* __restrict__ x, T* __restrict__ cols, ConvGeometry g,
                                  i64 p0, i64 tile) {
    const i64 taps = (i64)g.kernel[0] * g.kernel[1] * g.kernel[2];
    GRID_STRIDE(i, (i64)g.channels * taps * tile) {
        const i64 pl = i % tile, row = i / tile;
        const i64 p = p0 + pl;
        const int kx = (int)(row % g.kernel[2]);
        const int ky = (int)(row / g.kernel[2] % g.kernel[1]);
        const int kz = (int)(row / ((i64)g.kernel[2] * g.kernel[1]) % g.kernel[0]);
        const i64 c = row / taps;
        const int ox = (int)(p % g.out[2]);
        const int oy = (int)(p / g.out[2] % g.out[1]);
        const int oz = (int)(p / ((i64)g.out[2] * g.out[1]));
        const int iz = oz * g.stride[0] - g.pad[0] + kz * g.dilation[0];
        const int iy = oy * g.stride[1] - g.pad[1] + ky * g.dilation[1];
        const int ix = ox * g.stride[2] - g.pad[2] + kx * g.dilation[2];
        const bool inside = iz >= 0 && iz < g.in[0] && iy >= 0 && iy < g.in[1] && ix >= 0 &&
                            ix < g.in[2];
        cols[i] = inside ? x[((c * g.in[0] + iz) * g.in[1] + iy) * (i64)g.in[2] + ix]
                         : from_f32<T>(0.0f);
    }
}
