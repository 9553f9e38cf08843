// Elementwise ops: unary maps, affine, clamp, PReLU, broadcasting binary ops and dtype
// conversion. Memory-bound one-liners; f32 arithmetic with precise libm functions so that
// results match the CPU reference to rounding.
#include "common.cuh"

#define MAX_RANK 8

// Op codes follow the order of sonic-core's `UnaryOp`.
__device__ __forceinline__ float unary_op(float x, int op) {
    switch (op) {
    case 0: return -x;
    case 1: return fabsf(x);
    case 2: return expf(x);
    case 3: return logf(x);
    case 4: return sqrtf(x);
    case 5: return x * x;
    case 6: return 1.0f / x;
    case 7: return tanhf(x);
    case 8: return sinf(x);
    case 9: return cosf(x);
    case 10: return x < 0.0f ? 0.0f : x; // keeps NaN, as PyTorch's relu
    case 11: return 1.0f / (1.0f + expf(-x));
    case 12: return x / (1.0f + expf(-x));
    case 13: return gelu_erf_(x);
    case 14: {
        const float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(inner));
    }
    default: return x / (1.0f + expf(-1.702f * x)); // 15: QuickGELU
    }
}

extern "C" __global__ void unary(const T* __restrict__ x, T* __restrict__ y, i64 n, int op) {
    GRID_STRIDE(i, n) store(y, i, unary_op(load(x, i), op));
}

extern "C" __global__ void affine(const T* __restrict__ x, T* __restrict__ y, i64 n, float mul,
                                  float add) {
    GRID_STRIDE(i, n) store(y, i, load(x, i) * mul + add);
}

extern "C" __global__ void clamp(const T* __restrict__ x, T* __restrict__ y, i64 n, float lo,
                                 float hi) {
    GRID_STRIDE(i, n) store(y, i, fminf(fmaxf(load(x, i), lo), hi));
}

// PReLU with the slope of element i at (i / inner) % channels: one per channel of axis 1,
// or a single shared slope with channels = 1. NaN passes through, as in the reference.
extern "C" __global__ void prelu(const T* __restrict__ x, const T* __restrict__ slope,
                                 T* __restrict__ y, i64 n, i64 inner, int channels) {
    GRID_STRIDE(i, n) {
        const float v = load(x, i);
        const float a = load(slope, channels == 1 ? 0 : i / inner % channels);
        store(y, i, v < 0.0f ? a * v : v);
    }
}

// Output shape and each operand's strides over it (0 where the operand broadcasts).
struct Broadcast {
    int rank;
    i64 shape[MAX_RANK];
    i64 a_stride[MAX_RANK];
    i64 b_stride[MAX_RANK];
};

// Op codes follow the order of sonic-core's `BinaryOp`.
__device__ __forceinline__ float binary_op(float a, float b, int op) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return fmaxf(a, b);
    default: return fminf(a, b);
    }
}

extern "C" __global__ void binary_broadcast(const T* __restrict__ a, const T* __restrict__ b,
                                            T* __restrict__ y, i64 n, int op, Broadcast shape) {
    GRID_STRIDE(i, n) {
        i64 rest = i, ai = 0, bi = 0;
        for (int d = shape.rank - 1; d >= 0; --d) {
            const i64 c = rest % shape.shape[d];
            rest /= shape.shape[d];
            ai += c * shape.a_stride[d];
            bi += c * shape.b_stride[d];
        }
        store(y, i, binary_op(load(a, ai), load(b, bi), op));
    }
}

extern "C" __global__ void convert_to_f32(const T* __restrict__ x, float* __restrict__ y, i64 n) {
    GRID_STRIDE(i, n) y[i] = load(x, i);
}

extern "C" __global__ void convert_to_f16(const T* __restrict__ x, half_t* __restrict__ y, i64 n) {
    GRID_STRIDE(i, n) y[i] = from_f32<half_t>(load(x, i));
}

extern "C" __global__ void convert_to_bf16(const T* __restrict__ x, bfloat_t* __restrict__ y,
                                           i64 n) {
    GRID_STRIDE(i, n) y[i] = from_f32<bfloat_t>(load(x, i));
}
