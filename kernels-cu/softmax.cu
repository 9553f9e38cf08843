// Softmax over the last dimension, one block per row: max, Σ exp, then the write. The
// generic attention path (head dims without a specialised kernel) runs it on the scores.
#include "common.cuh"

extern "C" __global__ void softmax_rows(const T* __restrict__ x, T* __restrict__ y, int width) {
    __shared__ float scratch[32];
    const i64 base = (i64)blockIdx.x * width;
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < width; i += blockDim.x) mx = fmaxf(mx, load(x, base + i));
    mx = block_max(mx, scratch);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < width; i += blockDim.x) sum += __expf(load(x, base + i) - mx);
    const float inv = 1.0f / block_sum(sum, scratch);
    for (int i = threadIdx.x; i < width; i += blockDim.x)
        store(y, base + i, __expf(load(x, base + i) - mx) * inv);
}
