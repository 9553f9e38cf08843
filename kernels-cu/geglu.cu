// GEGLU: the two halves (a, gate) of the last dimension give a · gelu_erf(gate).
#include "common.cuh"

extern "C" __global__ void geglu(const T* __restrict__ x, T* __restrict__ y, i64 half, i64 total) {
    GRID_STRIDE(i, total) {
        const i64 row = i / half, j = i % half;
        const i64 base = row * 2 * half;
        store(y, i, load(x, base + j) * gelu_erf_(load(x, base + half + j)));
    }
}
