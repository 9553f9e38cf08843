// GroupNorm over NCHW (or any [n, c, spatial…]) with per-channel affine, optional SiLU and
// an optional residual added before normalising (the SkipGroupNorm pattern:
// y = act(GN(x + r))). The residual is either a tensor of x's shape or one value per
// (n, c) broadcast over the spatial dims (the resnet blocks' time embedding).
//
// In this layout group (n, g) is one contiguous run of (c/groups)·hw elements, so a block
// can own a whole group: it reads the group once into shared memory, computes the exact
// two-pass statistics there (mean first, then Σ(x − mean)², no E[x²] − E[x]²
// cancellation), and writes the normalised group once. Groups too large for shared memory
// (the VAE decoder at full resolution) take the split path: `group_norm_partial` gives each
// chunk's mean and M2 (two-pass within the chunk, on chip), `group_norm_apply` merges them
// with Chan's formula and normalises its chunk: two reads and one write in all.
#include "common.cuh"

struct float2_t {
    float a, b;
};

// residual_inner: how many consecutive elements of x share one residual element, 1 for a
// full residual and hw for a per-channel one.
struct GroupShape {
    int channels, groups;
    i64 hw, residual_inner;
};

// x + residual at flat index i of x.
__device__ __forceinline__ float with_residual(const T* x, const T* residual, i64 i,
                                               i64 residual_inner) {
    float v = load(x, i);
    if (residual) v += load(residual, residual_inner == 1 ? i : i / residual_inner);
    return v;
}

__device__ __forceinline__ float affine_act(float x, float mean, float rstd, int ch,
                                            const T* weight, const T* bias, int silu) {
    float y = (x - mean) * rstd;
    if (weight) y *= load(weight, ch);
    if (bias) y += load(bias, ch);
    return silu ? siluf_(y) : y;
}

// Stages `count` elements of x (+ residual) from `base` into shared memory as f32 and
// returns their mean and M2 = Σ(x − mean)², both computed on chip in two passes.
__device__ __forceinline__ float2_t stage_moments(const T* x, const T* residual,
                                                  i64 residual_inner, i64 base, i64 count,
                                                  float* staged, float* scratch) {
    float sum = 0.0f;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) {
        const float v = with_residual(x, residual, base + i, residual_inner);
        staged[i] = v;
        sum += v;
    }
    const float mean = block_sum(sum, scratch) / (float)count;
    float m2 = 0.0f;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) {
        const float d = staged[i] - mean;
        m2 += d * d;
    }
    return float2_t{mean, block_sum(m2, scratch)};
}

// One block of 1024 threads per (n, g); dynamic shared memory holds the group as f32.
extern "C" __global__ void __launch_bounds__(1024) group_norm_fused(const T* __restrict__ x, const T* __restrict__ residual,
                                            const T* __restrict__ weight, const T* __restrict__ bias,
                                            T* __restrict__ y, GroupShape shape, float eps,
                                            int silu) {
    SONIC_DYNAMIC_SHARED(16, float, s_group);
    __shared__ float scratch[32];
    const int cpg = shape.channels / shape.groups;
    const i64 len = (i64)cpg * shape.hw;
    const i64 base = (i64)blockIdx.x * len;
    const int g = blockIdx.x % shape.groups;
    const float2_t moments =
        stage_moments(x, residual, shape.residual_inner, base, len, s_group, scratch);
    const float mean = moments.a;
    const float rstd = rsqrtf(moments.b / (float)len + eps);
    for (i64 i = threadIdx.x; i < len; i += blockDim.x) {
        const int ch = g * cpg + (int)(i / shape.hw);
        store(y, base + i, affine_act(s_group[i], mean, rstd, ch, weight, bias, silu));
    }
}

// Grid (chunks, n·groups). Writes (mean, M2) of chunk blockIdx.x of each group.
extern "C" __global__ void group_norm_partial(const T* __restrict__ x, const T* __restrict__ residual,
                                              float* __restrict__ stats, GroupShape shape,
                                              i64 chunk_len) {
    SONIC_DYNAMIC_SHARED(16, float, s_chunk);
    __shared__ float scratch[32];
    const i64 len = (i64)(shape.channels / shape.groups) * shape.hw;
    const i64 start = (i64)blockIdx.x * chunk_len;
    const i64 count = min(chunk_len, len - start);
    const i64 base = (i64)blockIdx.y * len + start;
    const float2_t moments =
        stage_moments(x, residual, shape.residual_inner, base, count, s_chunk, scratch);
    if (threadIdx.x == 0) {
        float* out = stats + ((i64)blockIdx.y * gridDim.x + blockIdx.x) * 2;
        out[0] = moments.a;
        out[1] = moments.b;
    }
}

// Grid (chunks, n·groups). Merges the group's chunk statistics, then normalises one chunk.
extern "C" __global__ void group_norm_apply(const T* __restrict__ x, const T* __restrict__ residual,
                                            const float* __restrict__ stats,
                                            const T* __restrict__ weight, const T* __restrict__ bias,
                                            T* __restrict__ y, GroupShape shape, i64 chunk_len,
                                            float eps, int silu) {
    __shared__ float s_moments[2];
    const int cpg = shape.channels / shape.groups;
    const i64 len = (i64)cpg * shape.hw;
    const int chunks = gridDim.x;
    if (threadIdx.x == 0) {
        // Chan et al.'s pairwise update, in f64: a few hundred chunks at most.
        const float* st = stats + (i64)blockIdx.y * chunks * 2;
        double n_a = 0.0, mean_a = 0.0, m2_a = 0.0;
        for (int c = 0; c < chunks; ++c) {
            const double n_b = (double)min(chunk_len, len - (i64)c * chunk_len);
            const double delta = (double)st[2 * c] - mean_a;
            const double n = n_a + n_b;
            mean_a += delta * n_b / n;
            m2_a += (double)st[2 * c + 1] + delta * delta * n_a * n_b / n;
            n_a = n;
        }
        s_moments[0] = (float)mean_a;
        s_moments[1] = (float)(1.0 / sqrt(m2_a / (double)len + (double)eps));
    }
    __syncthreads();
    const float mean = s_moments[0], rstd = s_moments[1];
    const int g = blockIdx.y % shape.groups;
    const i64 start = (i64)blockIdx.x * chunk_len;
    const i64 count = min(chunk_len, len - start);
    const i64 base = (i64)blockIdx.y * len + start;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) {
        const float v = with_residual(x, residual, base + i, shape.residual_inner);
        const int ch = g * cpg + (int)((start + i) / shape.hw);
        store(y, base + i, affine_act(v, mean, rstd, ch, weight, bias, silu));
    }
}
