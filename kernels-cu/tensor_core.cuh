// Tensor-core building blocks of the half-precision kernels (flash attention, implicit-GEMM
// convolution): cp.async into shared memory, ldmatrix, and mma.sync m16n8k16 with f32
// accumulators on the module's storage type (f16 or bf16).
#pragma once
#include "common.cuh"

#if SONIC_DTYPE == SONIC_F16
#define MMA_TYPES "f16.f16"
#elif SONIC_DTYPE == SONIC_BF16
#define MMA_TYPES "bf16.bf16"
#else
#error "tensor-core kernels are built for f16 and bf16 only"
#endif

#ifdef SONIC_EMULATOR
// The CPU emulator (kernels-cu/emulator) stands in for each instruction below.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int bytes) {
    emu::cp_async_16(dst, src, bytes);
}
__device__ __forceinline__ void cp_async_commit() { emu::cp_async_commit(); }
template <int N> __device__ __forceinline__ void cp_async_wait() { emu::cp_async_wait(N); }
__device__ __forceinline__ void ldmatrix_x4(u32* r, const u16* p) { emu::ldmatrix(r, p, 4, false); }
__device__ __forceinline__ void ldmatrix_x4_trans(u32* r, const u16* p) {
    emu::ldmatrix(r, p, 4, true);
}
__device__ __forceinline__ void ldmatrix_x2_trans(u32* r, const u16* p) {
    emu::ldmatrix(r, p, 2, true);
}
__device__ __forceinline__ void mma(float* c, const u32* a, u32 b0, u32 b1) {
    emu::mma_m16n8k16<SONIC_DTYPE == SONIC_BF16>(c, a, b0, b1);
}
#else
__device__ __forceinline__ u32 shared_address(const void* p) {
    u32 a;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
    return a;
}

// Copies `bytes` (16 or 0) from global `src` to shared `dst` and zero-fills the rest of the
// 16; with 0, `src` is not read but must still be a valid address.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                 :: "r"(shared_address(dst)), "l"(src), "r"(bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" :: "n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(u32* r, const u16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(u32* r, const u16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(p)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(u32* r, const u16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(shared_address(p)));
}

// c += a · b for one m16n8k16 tile.
__device__ __forceinline__ void mma(float* c, const u32* a, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." MMA_TYPES ".f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif
