// LayerNorm over the last dimension, one block per row. Rows are at most a few thousand
// elements, so the three passes (mean, Σ(x − mean)², write) re-read the row from L1/L2
// rather than DRAM; the statistics are the exact two-pass ones, as on the CPU.
#include "common.cuh"

extern "C" __global__ void layer_norm(const T* __restrict__ x, const T* __restrict__ weight,
                                      const T* __restrict__ bias, T* __restrict__ y, int width,
                                      float eps) {
    __shared__ float scratch[32];
    const i64 base = (i64)blockIdx.x * width;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < width; i += blockDim.x) sum += load(x, base + i);
    const float mean = block_sum(sum, scratch) / (float)width;
    float m2 = 0.0f;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        const float d = load(x, base + i) - mean;
        m2 += d * d;
    }
    const float rstd = rsqrtf(block_sum(m2, scratch) / (float)width + eps);
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        float v = (load(x, base + i) - mean) * rstd;
        if (weight) v *= load(weight, i);
        if (bias) v += load(bias, i);
        store(y, base + i, v);
    }
}
