// Shared helpers for every Sonic kernel. Header-free on purpose: NVRTC ships no CUDA
// headers, so half types are raw 16-bit storage converted with inline PTX, and kernels
// compile with nothing but libnvrtc (CI installs it from the Python package index).
//
// A module is compiled with -DSONIC_DTYPE=0|1|2 (f32, f16, bf16) selecting `T`, the
// storage type of its tensors. Arithmetic is always f32.
#pragma once

typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// Dynamic shared memory, declared one way for NVRTC and another for the CPU emulator.
#ifndef SONIC_DYNAMIC_SHARED
#define SONIC_DYNAMIC_SHARED(align, type, name) extern __shared__ __align__(align) type name[]
#endif

#define SONIC_F32 0
#define SONIC_F16 1
#define SONIC_BF16 2

struct half_t {
    u16 bits;
};
struct bfloat_t {
    u16 bits;
};

__device__ __forceinline__ float to_f32(float x) { return x; }
#ifdef SONIC_EMULATOR
// The CPU emulator (kernels-cu/emulator) stands in for each instruction below.
__device__ __forceinline__ float to_f32(half_t x) { return emu::f16_to_f32(x.bits); }
#else
__device__ __forceinline__ float to_f32(half_t x) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
    return f;
}
#endif
// bf16 is the top half of an f32, so widening is a shift and exact.
__device__ __forceinline__ float to_f32(bfloat_t x) { return __uint_as_float(((u32)x.bits) << 16); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ half_t from_f32<half_t>(float x) {
    half_t h;
#ifdef SONIC_EMULATOR
    h.bits = emu::f32_to_f16(x);
#else
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(x));
#endif
    return h;
}
template <> __device__ __forceinline__ bfloat_t from_f32<bfloat_t>(float x) {
    bfloat_t h;
#ifdef SONIC_EMULATOR
    h.bits = emu::f32_to_bf16(x);
#else
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h.bits) : "f"(x));
#endif
    return h;
}

#if SONIC_DTYPE == SONIC_F32
typedef float T;
#elif SONIC_DTYPE == SONIC_F16
typedef half_t T;
#elif SONIC_DTYPE == SONIC_BF16
typedef bfloat_t T;
#else
#error "SONIC_DTYPE must be 0 (f32), 1 (f16) or 2 (bf16)"
#endif

// Two adjacent elements: the unit of the vectorised loads of the half-precision kernels.
#if SONIC_DTYPE == SONIC_F32
struct __align__(8) pair_t {
    float a, b;
};
__device__ __forceinline__ void unpack(pair_t p, float& a, float& b) { a = p.a; b = p.b; }
__device__ __forceinline__ pair_t pack(float a, float b) { return pair_t{a, b}; }
#else
struct __align__(4) pair_t {
    T a, b;
};
__device__ __forceinline__ void unpack(pair_t p, float& a, float& b) {
    a = to_f32(p.a);
    b = to_f32(p.b);
}
__device__ __forceinline__ pair_t pack(float a, float b) {
    return pair_t{from_f32<T>(a), from_f32<T>(b)};
}
#endif

__device__ __forceinline__ float load(const T* p, i64 i) { return to_f32(p[i]); }
__device__ __forceinline__ void store(T* p, i64 i, float v) { p[i] = from_f32<T>(v); }

// Grid-stride loop over 64-bit indices: tensors of the VAE decoder exceed 2^31 elements.
#define GRID_STRIDE(i, n)                                                          \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (i64)(n);         \
         i += (i64)blockDim.x * gridDim.x)

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

struct SumOp {
    static __device__ __forceinline__ float warp(float v) { return warp_sum(v); }
    static __device__ __forceinline__ float identity() { return 0.0f; }
};
struct MaxOp {
    static __device__ __forceinline__ float warp(float v) { return warp_max(v); }
    static __device__ __forceinline__ float identity() { return -INFINITY; }
};

// Block-wide reduction; every thread gets the result. `scratch` holds 32 floats. The
// leading barrier lets callers reuse the same scratch for consecutive reductions.
template <typename Op> __device__ __forceinline__ float block_reduce(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
    v = Op::warp(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : Op::identity();
    return Op::warp(v);
}

__device__ __forceinline__ float block_sum(float v, float* scratch) {
    return block_reduce<SumOp>(v, scratch);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
    return block_reduce<MaxOp>(v, scratch);
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + __expf(-x)); }
__device__ __forceinline__ float siluf_(float x) { return x * sigmoidf_(x); }
__device__ __forceinline__ float gelu_erf_(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
