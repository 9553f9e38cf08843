// Runs the kernels of kernels-cu on the CPU with CUDA's execution model, so their logic
// (indexing, masking, barriers, warp collectives, tensor-core fragment layouts) is checked
// on machines without a GPU. A translation unit includes this header, then one kernel
// source compiled with the same -D definitions NVRTC gets, then EMU_EXPORT(entry) for each
// entry point; sonic-kernels/tests/emulated_kernels.rs builds and drives them.
//
// Every CUDA thread of a block is a fiber (ucontext) on the launching OS thread; blocks run
// one after another. Fibers switch only at barriers and warp collectives, and each warp
// runs as far as it can before the next one starts: a read that a missing barrier leaves
// unordered sees the stale value under one of the two orders a test runs (warps and lanes
// first to last, or last to first). Shared memory, static and dynamic, is refilled with NaN
// bytes for each block; cp.async copies land either when issued or only at the wait that
// covers them.
//
// The PTX instructions the kernels use through inline assembly (cvt to and from f16/bf16,
// cp.async, ldmatrix, mma.sync m16n8k16) are implemented here from the PTX ISA's
// definitions, independently of how the kernels use them; the kernels select these
// versions when SONIC_EMULATOR is defined.
#pragma once

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#define SONIC_EMULATOR 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Blocks run one at a time, so a function-local static is exactly one block's shared array.
// All of them live in one section, refilled with NaN bytes before each block like the
// dynamic part.
#define __shared__ static __attribute__((section("emu_shared")))
extern "C" char __start_emu_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_emu_shared[] __attribute__((weak, visibility("hidden")));
// Dynamic shared memory: the kernels declare it through this macro (see common.cuh).
#define SONIC_DYNAMIC_SHARED(align, type, name) type* name = (type*)emu::dynamic_shared()

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
struct alignas(16) float4 {
    float x, y, z, w;
};

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

template <typename A, typename B> inline auto min(A a, B b) -> std::common_type_t<A, B> {
    return a < b ? a : b;
}
template <typename A, typename B> inline auto max(A a, B b) -> std::common_type_t<A, B> {
    return a < b ? b : a;
}

inline float __int_as_float(int x) {
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}
inline float __uint_as_float(unsigned x) {
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}
inline unsigned __float_as_uint(float x) {
    unsigned u;
    std::memcpy(&u, &x, 4);
    return u;
}
// Built with -ffp-contract=off, so a product is never fused into a later add.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __expf(float x) { return expf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }

namespace emu {

// Thrown inside fibers to unwind them once the launch has failed.
struct Abort {};

struct Launch {
    unsigned grid[3];
    unsigned block[3];
    unsigned long long shared_bytes;
    // 1: threads start last to first. 1 in late_copies: cp.async lands at its wait.
    int reverse;
    int late_copies;
};

enum Collective { SyncThreads, SyncWarp, Shuffle, LdMatrix, Mma };

inline const char* collective_name(Collective c) {
    static const char* names[] = {"__syncthreads", "__syncwarp", "__shfl_xor_sync",
                                  "ldmatrix", "mma.sync"};
    return names[c];
}

struct PendingCopy {
    void* dst;
    const void* src;
    int bytes;
    int group; // -1 until committed
};

struct Fiber {
    ucontext_t context;
    std::vector<char> stack;
    unsigned linear = 0;
    bool done = false;
    std::vector<PendingCopy> copies;
    int next_group = 0;
};

// A barrier over a set of fibers. Fibers that exit leave it, as exited threads stop
// counting for __syncthreads; all arrivals of one generation must be the same collective.
struct Barrier {
    unsigned expected = 0, arrived = 0;
    unsigned long long generation = 0;
    Collective kind = SyncThreads;
};

struct Warp {
    Barrier barrier;
    unsigned lanes = 0; // threads of the block in this warp (32 but for a ragged last warp)
    unsigned long long slot[32][8];
};

struct State {
    Launch launch;
    std::vector<Fiber> fibers;
    std::vector<Warp> warps;
    Barrier block;
    std::vector<unsigned char> dynamic;
    ucontext_t scheduler;
    Fiber* current = nullptr;
    unsigned long long progress = 0;
    std::string error;
    std::function<void()> body;
};

inline thread_local State* state = nullptr;

// Dynamic shared memory starts 128-byte aligned, as it does on the device.
inline void* dynamic_shared() {
    const uintptr_t p = (uintptr_t)state->dynamic.data();
    return (void*)((p + 127) & ~(uintptr_t)127);
}

[[noreturn]] inline void fail(const std::string& what) {
    if (state->error.empty()) {
        char where[96];
        std::snprintf(where, sizeof where, " (block %u,%u,%u thread %u,%u,%u)", blockIdx.x,
                      blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
        state->error = what + where;
    }
    throw Abort{};
}

inline void yield() {
    Fiber* self = state->current;
    swapcontext(&self->context, &state->scheduler);
    if (!state->error.empty()) throw Abort{};
}

inline void arrive(Barrier& b, Collective kind) {
    if (b.arrived == 0)
        b.kind = kind;
    else if (b.kind != kind)
        fail(std::string("divergent collectives: ") + collective_name(kind) + " meets " +
             collective_name(b.kind));
    const unsigned long long generation = b.generation;
    ++state->progress;
    if (++b.arrived == b.expected) {
        b.arrived = 0;
        ++b.generation;
        return;
    }
    while (b.generation == generation) yield();
}

inline void leave(Barrier& b) {
    --b.expected;
    if (b.arrived > 0 && b.arrived == b.expected) {
        b.arrived = 0;
        ++b.generation;
    }
}

inline Fiber& self() { return *state->current; }
inline unsigned lane() { return self().linear & 31; }
inline Warp& warp() { return state->warps[self().linear >> 5]; }

// Every lane of a full warp, as the kernels' 0xffffffff masks promise.
inline Warp& full_warp(Collective kind, unsigned mask) {
    Warp& w = warp();
    if (mask != 0xffffffffu) fail(std::string(collective_name(kind)) + " with a partial mask");
    if (w.lanes != 32 || w.barrier.expected != 32)
        fail(std::string(collective_name(kind)) + " in a warp of " +
             std::to_string(w.barrier.expected) + " live threads");
    return w;
}

// Publishes this lane's words, waits for the warp, runs `read` on the published slots,
// and waits again so no lane overwrites a slot another is still reading.
template <typename Read>
inline void exchange(Collective kind, const unsigned long long* words, int count, Read read) {
    Warp& w = full_warp(kind, 0xffffffffu);
    std::memcpy(w.slot[lane()], words, sizeof(unsigned long long) * count);
    arrive(w.barrier, kind);
    read(w.slot);
    arrive(w.barrier, kind);
}

// ---- conversions (PTX cvt, round to nearest even) --------------------------------------

inline float f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    if (exponent == 0x1f) return __uint_as_float(sign | 0x7f800000u | (mantissa << 13));
    if (exponent == 0) {
        const float v = std::ldexp((float)mantissa, -24);
        return sign ? -v : v;
    }
    return __uint_as_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

inline uint16_t f32_to_f16(float f) {
    const uint32_t u = __float_as_uint(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    const float a = std::fabs(f);
    if (std::isnan(f)) return sign | 0x7e00;
    if (a >= 65520.0f) return sign | 0x7c00; // rounds to infinity
    if (a < 6.103515625e-05f) {
        // Subnormal: multiples of 2^-24, nearest even by the FPU's own rounding.
        const float q = std::nearbyint(std::ldexp(a, 24));
        return sign | (uint16_t)q;
    }
    const uint32_t au = __float_as_uint(a);
    uint32_t exponent = (au >> 23) - 112, mantissa = au & 0x7fffff;
    uint32_t h = (exponent << 10) | (mantissa >> 13);
    const uint32_t rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
    return sign | (uint16_t)h;
}

inline uint16_t f32_to_bf16(float f) {
    const uint32_t u = __float_as_uint(f);
    if (std::isnan(f)) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

inline float bf16_to_f32(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }

// cvt.rn.{f16,bf16}x2.f32 d, a, b: a goes to the upper half, b to the lower.
template <bool BF16> inline uint32_t cvt_x2(float a, float b) {
    const uint32_t hi = BF16 ? f32_to_bf16(a) : f32_to_f16(a);
    const uint32_t lo = BF16 ? f32_to_bf16(b) : f32_to_f16(b);
    return (hi << 16) | lo;
}

// ---- warp shuffle ------------------------------------------------------------------------

template <typename V> inline V shfl_xor(unsigned mask, V v, int lane_mask) {
    static_assert(sizeof(V) <= 8, "shuffled values are at most 64 bits");
    full_warp(Shuffle, mask);
    unsigned long long word = 0;
    std::memcpy(&word, &v, sizeof(V));
    V out;
    const unsigned source = (lane() ^ (unsigned)lane_mask) & 31;
    exchange(Shuffle, &word, 1, [&](auto slot) {
        std::memcpy(&out, &slot[source][0], sizeof(V));
    });
    return out;
}

// ---- cp.async ----------------------------------------------------------------------------

inline void copy_now(const PendingCopy& c) {
    unsigned char* dst = (unsigned char*)c.dst;
    std::memcpy(dst, c.src, c.bytes);
    std::memset(dst + c.bytes, 0, 16 - c.bytes);
}

inline void cp_async_16(void* dst, const void* src, int bytes) {
    if (((uintptr_t)dst & 15) || ((uintptr_t)src & 15))
        fail("cp.async of 16 bytes at an address not 16-byte aligned");
    if (bytes != 0 && bytes != 16) fail("cp.async src-size must be 0 or 16 here");
    if (src == nullptr) fail("cp.async from a null address");
    PendingCopy c{dst, src, bytes, -1};
    if (state->launch.late_copies)
        self().copies.push_back(c);
    else
        copy_now(c);
}

inline void cp_async_commit() {
    Fiber& f = self();
    for (PendingCopy& c : f.copies)
        if (c.group < 0) c.group = f.next_group;
    ++f.next_group;
}

// cp.async.wait_group n: all but the n most recent committed groups are complete.
inline void cp_async_wait(int n) {
    Fiber& f = self();
    const int limit = f.next_group - n;
    std::vector<PendingCopy> keep;
    for (const PendingCopy& c : f.copies) {
        if (c.group >= 0 && c.group < limit)
            copy_now(c);
        else
            keep.push_back(c);
    }
    f.copies.swap(keep);
}

// ---- ldmatrix ----------------------------------------------------------------------------

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: lanes 8i..8i+7 give the row
// addresses of matrix i; lane t receives, from each matrix, elements (t/4, 2(t%4)) and
// (t/4, 2(t%4)+1), or with .trans (2(t%4), t/4) and (2(t%4)+1, t/4).
inline void ldmatrix(uint32_t* r, const uint16_t* row, int matrices, bool trans) {
    if ((uintptr_t)row & 15) fail("ldmatrix row address not 16-byte aligned");
    const unsigned long long word = (unsigned long long)(uintptr_t)row;
    const unsigned t = lane();
    exchange(LdMatrix, &word, 1, [&](auto slot) {
        for (int i = 0; i < matrices; ++i) {
            uint16_t e[2];
            for (int k = 0; k < 2; ++k) {
                const unsigned rr = trans ? 2 * (t % 4) + k : t / 4;
                const unsigned cc = trans ? t / 4 : 2 * (t % 4) + k;
                const uint16_t* p = (const uint16_t*)(uintptr_t)slot[8 * i + rr][0];
                e[k] = p[cc];
            }
            r[i] = (uint32_t)e[0] | ((uint32_t)e[1] << 16);
        }
    });
}

// ---- mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32 -----------------------
// With g = lane/4 and c = lane%4: A (16×16) a0 = (g, 2c..2c+1), a1 = (g+8, 2c..), a2 =
// (g, 2c+8..), a3 = (g+8, 2c+8..); B (16×8) b0 = rows 2c..2c+1 of column g, b1 = rows
// 2c+8..2c+9; C/D (16×8) c0,c1 = (g, 2c..2c+1), c2,c3 = (g+8, 2c..2c+1).

template <bool BF16> inline float half_of(uint32_t reg, int high) {
    const uint16_t bits = (uint16_t)(high ? reg >> 16 : reg);
    return BF16 ? bf16_to_f32(bits) : f16_to_f32(bits);
}

template <bool BF16> inline void mma_m16n8k16(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
    const unsigned long long words[6] = {a[0], a[1], a[2], a[3], b0, b1};
    const unsigned t = lane();
    float out[4];
    exchange(Mma, words, 6, [&](auto slot) {
        auto a_at = [&](unsigned row, unsigned k) {
            const unsigned owner = (row % 8) * 4 + (k % 8) / 2;
            const unsigned reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
            return half_of<BF16>((uint32_t)slot[owner][reg], k % 2);
        };
        auto b_at = [&](unsigned k, unsigned n) {
            const unsigned owner = n * 4 + (k % 8) / 2;
            return half_of<BF16>((uint32_t)slot[owner][k >= 8 ? 5 : 4], k % 2);
        };
        for (int e = 0; e < 4; ++e) {
            const unsigned row = t / 4 + (e >= 2 ? 8 : 0), col = 2 * (t % 4) + e % 2;
            // Products of 16-bit values are exact in f32; the sum is formed in f64 and
            // rounded once, within the hardware's accumulation error.
            double sum = 0.0;
            for (unsigned k = 0; k < 16; ++k) sum += (double)a_at(row, k) * b_at(k, col);
            out[e] = (float)((double)d[e] + sum);
        }
    });
    std::memcpy(d, out, sizeof out);
}

// ---- launch ------------------------------------------------------------------------------

inline void fiber_entry() {
    Fiber& f = *state->current;
    try {
        // A thread first scheduled after the launch failed never starts.
        if (state->error.empty()) state->body();
    } catch (const Abort&) {
    } catch (const std::exception& e) {
        if (state->error.empty()) state->error = e.what();
    }
    // An exiting thread's copies still land; it leaves every barrier.
    for (const PendingCopy& c : f.copies) copy_now(c);
    f.copies.clear();
    f.done = true;
    ++state->progress;
    leave(state->block);
    leave(state->warps[f.linear >> 5].barrier);
}

inline std::string check_launch(const Launch& l) {
    const unsigned long long threads = (unsigned long long)l.block[0] * l.block[1] * l.block[2];
    if (threads == 0 || threads > 1024) return "block of " + std::to_string(threads) + " threads";
    if (l.block[2] > 64) return "block z above 64";
    if (l.grid[0] == 0 || l.grid[1] == 0 || l.grid[2] == 0) return "empty grid";
    if (l.grid[0] > 0x7fffffffu) return "grid x above 2^31 - 1";
    if (l.grid[1] > 65535 || l.grid[2] > 65535) return "grid y or z above 65535";
    // Shared memory of one H100 SM block at most (227 KiB), static arrays not counted.
    if (l.shared_bytes > 227 * 1024) return "dynamic shared memory above 227 KiB";
    return "";
}

// Runs `body` as the kernel over the launch's grid. Returns "" or what went wrong.
inline std::string run(const Launch& launch, std::function<void()> body) {
    const std::string bad = check_launch(launch);
    if (!bad.empty()) return "invalid launch: " + bad;
    State s;
    s.launch = launch;
    s.body = std::move(body);
    const unsigned threads = launch.block[0] * launch.block[1] * launch.block[2];
    const unsigned warps = (threads + 31) / 32;
    s.fibers.resize(threads);
    s.warps.resize(warps);
    s.dynamic.resize(launch.shared_bytes + 128);
    State* outer = state;
    state = &s;
    blockDim = dim3{launch.block[0], launch.block[1], launch.block[2]};
    gridDim = dim3{launch.grid[0], launch.grid[1], launch.grid[2]};
    constexpr size_t STACK = 256 * 1024;
    for (Fiber& f : s.fibers) f.stack.resize(STACK);

    for (unsigned bz = 0; bz < launch.grid[2] && s.error.empty(); ++bz)
        for (unsigned by = 0; by < launch.grid[1] && s.error.empty(); ++by)
            for (unsigned bx = 0; bx < launch.grid[0] && s.error.empty(); ++bx) {
                std::memset(s.dynamic.data(), 0xff, s.dynamic.size());
                if (__start_emu_shared != nullptr)
                    std::memset(__start_emu_shared, 0xff, __stop_emu_shared - __start_emu_shared);
                s.block = Barrier{};
                s.block.expected = threads;
                for (unsigned w = 0; w < warps; ++w) {
                    s.warps[w].barrier = Barrier{};
                    s.warps[w].lanes = std::min(32u, threads - 32 * w);
                    s.warps[w].barrier.expected = s.warps[w].lanes;
                }
                for (unsigned i = 0; i < threads; ++i) {
                    Fiber& f = s.fibers[i];
                    f.linear = i;
                    f.done = false;
                    f.copies.clear();
                    f.next_group = 0;
                    getcontext(&f.context);
                    f.context.uc_stack.ss_sp = f.stack.data();
                    f.context.uc_stack.ss_size = f.stack.size();
                    f.context.uc_link = &s.scheduler;
                    makecontext(&f.context, fiber_entry, 0);
                }
                // Each warp runs as far as it can (until every lane waits at a block-wide
                // barrier or has exited) before the next warp starts, so a warp that races
                // ahead of the others meets whatever a missing barrier leaves unordered.
                // A pass over all warps with no arrival, release or exit is a deadlock.
                unsigned live = threads;
                auto resume = [&](unsigned i) {
                    Fiber& f = s.fibers[i];
                    if (f.done) return;
                    s.current = &f;
                    blockIdx = dim3{bx, by, bz};
                    threadIdx = dim3{i % launch.block[0], i / launch.block[0] % launch.block[1],
                                     i / (launch.block[0] * launch.block[1])};
                    swapcontext(&s.scheduler, &f.context);
                };
                while (live > 0 && s.error.empty()) {
                    const unsigned long long pass = s.progress;
                    for (unsigned n = 0; n < warps && s.error.empty(); ++n) {
                        const unsigned w = launch.reverse ? warps - 1 - n : n;
                        const unsigned first = 32 * w, lanes = s.warps[w].lanes;
                        for (;;) {
                            const unsigned long long before = s.progress;
                            for (unsigned l = 0; l < lanes && s.error.empty(); ++l)
                                resume(first + (launch.reverse ? lanes - 1 - l : l));
                            if (s.progress == before || !s.error.empty()) break;
                        }
                    }
                    live = 0;
                    for (const Fiber& f : s.fibers) live += !f.done;
                    if (live > 0 && s.progress == pass && s.error.empty())
                        s.error = "deadlock: " + std::to_string(live) +
                                  " threads wait at a barrier the others never reach (block " +
                                  std::to_string(bx) + "," + std::to_string(by) + "," +
                                  std::to_string(bz) + ")";
                }
                // Unwind fibers still parked at a barrier after a failure.
                for (unsigned i = 0; i < threads && !s.error.empty(); ++i) {
                    Fiber& f = s.fibers[i];
                    if (f.done) continue;
                    s.current = &f;
                    swapcontext(&s.scheduler, &f.context);
                }
            }
    state = outer;
    return s.error;
}

template <typename V> struct Type {
    using type = V;
};

// Calls `kernel` with its arguments read from `args`, as cuLaunchKernel passes them: one
// pointer per parameter to a value of that parameter's type.
template <typename... A, size_t... I>
inline void call(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    auto read = [](void* p, auto tag) {
        using V = typename decltype(tag)::type;
        V v;
        std::memcpy((void*)&v, p, sizeof(V));
        return v;
    };
    kernel(read(args[I], Type<std::decay_t<A>>{})...);
}

// The byte size of each of the kernel's parameters, so a caller can check its arguments
// before the kernel reads them. Returns how many there are.
template <typename... A>
inline unsigned long long parameter_sizes(void (*)(A...), unsigned long long* sizes,
                                          unsigned long long capacity) {
    const unsigned long long all[] = {sizeof(std::decay_t<A>)..., 0};
    for (unsigned long long i = 0; i < sizeof...(A) && i < capacity; ++i) sizes[i] = all[i];
    return sizeof...(A);
}

template <typename... A> inline std::string launch(void (*kernel)(A...), const Launch& l, void** args) {
    return run(l, [=] { call(kernel, args, std::index_sequence_for<A...>{}); });
}

} // namespace emu

// CUDA's spellings, routed to the emulator.
inline void __syncthreads() { emu::arrive(emu::state->block, emu::SyncThreads); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    emu::Warp& w = emu::warp();
    if (mask != 0xffffffffu) emu::fail("__syncwarp with a partial mask");
    emu::arrive(w.barrier, emu::SyncWarp);
}
template <typename V> inline V __shfl_xor_sync(unsigned mask, V v, int lane_mask) {
    return emu::shfl_xor(mask, v, lane_mask);
}

// Two exports per entry point: `emu_<entry>(launch, args, error, capacity)` returns 0, or 1
// with the failure written to `error`; `emu_<entry>_parameters(sizes, capacity)` gives the
// parameters' byte sizes and returns their count.
// Built with -fvisibility=hidden, so each library keeps its own statics (the kernels'
// shared arrays) and only these launchers are visible; one launch at a time per library.
namespace emu {
inline std::mutex serial;
}
#define EMU_EXPORT(entry)                                                                  \
    extern "C" __attribute__((visibility("default"))) int emu_##entry(                     \
        const emu::Launch* l, void** args, char* error, unsigned long long capacity) {     \
        std::lock_guard<std::mutex> guard(emu::serial);                                    \
        const std::string why = emu::launch(entry, *l, args);                              \
        if (why.empty()) return 0;                                                         \
        std::snprintf(error, capacity, "%s", why.c_str());                                 \
        return 1;                                                                          \
    }                                                                                      \
    extern "C" __attribute__((visibility("default"))) unsigned long long                   \
        emu_##entry##_parameters(unsigned long long* sizes, unsigned long long capacity) { \
        return emu::parameter_sizes(entry, sizes, capacity);                               \
    }
