/*
 * sonic_plugin.h: the Sonic SDK plugin ABI, version 1.0.
 *
 * This header is the one source of truth for the ABI. The Rust side (sonic-plugins/src/abi.rs)
 * mirrors it, and a test checks that both agree on every struct's size and field offsets.
 *
 * A plugin is a shared library that exports one data symbol, `sonic_plugin_entry`, of type
 * `sonic_plugin_entry_t`. The host reads `abi_major` first and refuses the library if it differs
 * from its own; a plugin with a newer minor version is accepted and only the fields the host
 * knows (up to its own `struct_size`) are read. Plugins provide factories, looked up by string id
 * ("sonic.sampler/1", "sonic.audio-encoder/1"); new kinds of plugins are new ids, so they need no
 * major version change. Every instance is driven through a vtable whose last entry is `destroy`.
 *
 * General rules
 *  - Only C types cross the boundary. Strings are UTF-8 and NUL-terminated.
 *  - Status codes: SONIC_OK (0) or a negative SONIC_ERR_*. After an error, `last_error` on the
 *    same instance returns a message owned by the plugin, valid until the next call on it.
 *  - Ownership: whoever allocates frees. Tensor views passed into a call are borrowed for that
 *    call only. Output tensors are allocated by the host; the plugin writes their elements.
 *  - A plugin must never let a C++ exception or Rust panic unwind into the host: catch it and
 *    return SONIC_ERR_PANIC (the Rust SDK does this for you).
 *  - The host never unloads a plugin library once loaded.
 *
 * Threading
 *  - `init`/`deinit` and factory calls: called from one thread, the host's main thread.
 *  - `create`/`destroy`: any thread, never concurrently for the same factory.
 *  - Instance calls: one thread at a time per instance; different instances may run in parallel.
 */
#ifndef SONIC_PLUGIN_H
#define SONIC_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SONIC_ABI_MAJOR 1u
#define SONIC_ABI_MINOR 0u

#define SONIC_ENTRY_SYMBOL "sonic_plugin_entry"
#define SONIC_SAMPLER_FACTORY_ID "sonic.sampler/1"
#define SONIC_AUDIO_ENCODER_FACTORY_ID "sonic.audio-encoder/1"

typedef int32_t sonic_status_t;
#define SONIC_OK 0
#define SONIC_ERR_INVALID_ARGUMENT (-1)
#define SONIC_ERR_UNSUPPORTED (-2)
#define SONIC_ERR_OUT_OF_MEMORY (-3)
#define SONIC_ERR_INTERNAL (-4)
#define SONIC_ERR_PANIC (-5)
/* Returned by a host callback when the host failed (e.g. the denoiser errored); the plugin
 * should stop and return it. */
#define SONIC_ERR_HOST (-6)

/* Element types, as codes. */
#define SONIC_DTYPE_F32 0u
#define SONIC_DTYPE_F16 1u
#define SONIC_DTYPE_BF16 2u

/* Devices, as DLPack's device type codes. */
#define SONIC_DEVICE_CPU 1u
#define SONIC_DEVICE_CUDA 2u

#define SONIC_LOG_ERROR 0
#define SONIC_LOG_WARN 1
#define SONIC_LOG_INFO 2
#define SONIC_LOG_DEBUG 3

/* A borrowed view of a dense tensor. `strides` are in elements; NULL means contiguous
 * row-major. The data pointer is valid for the duration of the call it is passed to. */
typedef struct sonic_tensor_view {
    uint32_t dtype;
    uint32_t device_type;
    int32_t device_id;
    uint32_t ndim;
    const int64_t *shape;
    const int64_t *strides;
    void *data;
} sonic_tensor_view_t;

typedef struct sonic_host sonic_host_t;

/* What the host offers every plugin. Passed to `init` and `create`; valid until `deinit`. */
struct sonic_host {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    const char *host_version;
    void *host_data;
    /* Logs one message at a SONIC_LOG_* level. Thread-safe. */
    void (*log)(const sonic_host_t *host, int32_t level, const char *message);
    /* Allocates `size` bytes aligned to `align` (a power of two); NULL when out of memory.
     * Memory from `alloc` is released with `free` with the same size and alignment. Thread-safe. */
    void *(*alloc)(const sonic_host_t *host, size_t size, size_t align);
    void (*free)(const sonic_host_t *host, void *ptr, size_t size, size_t align);
};

/* Describes one component a factory can create. Strings live until `deinit`. */
typedef struct sonic_descriptor {
    uint32_t struct_size;
    const char *id;          /* the name users select it by, e.g. "dpmpp-2m-sde" */
    const char *name;        /* human readable */
    const char *version;
    const char *vendor;
    const char *description;
} sonic_descriptor_t;

/* The exported entry point. */
typedef struct sonic_plugin_entry {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    /* Oldest host version this plugin works with, e.g. "0.1.0". */
    const char *host_min_version;
    /* Called once after loading, before any factory is used. Must be cheap; heavy work goes
     * in `create`. A second call after `deinit` re-initialises. */
    sonic_status_t (*init)(const sonic_host_t *host);
    /* Called once when the host no longer needs the plugin (the library stays loaded). */
    void (*deinit)(void);
    /* The factory for `factory_id`, or NULL when the plugin provides none of that kind. */
    const void *(*get_factory)(const char *factory_id);
} sonic_plugin_entry_t;

/* ---------------------------------------------------------------- samplers (sonic.sampler/1)
 * k-diffusion convention: a sampler moves the whole latent sequence x (axis 0 = frames) from
 * sigmas[step] to sigmas[step + 1]. It obtains denoised estimates (and, if stochastic, noise)
 * through the host's callbacks. */

typedef struct sonic_sampler_host_calls {
    uint32_t struct_size;
    void *ctx;
    /* Writes the denoised estimate of `x` at noise level `sigma` into `out` (same shape).
     * Returns SONIC_OK or SONIC_ERR_HOST. Only valid during the `step` call it was given to. */
    sonic_status_t (*denoise)(void *ctx, const sonic_tensor_view_t *x, float sigma, const sonic_tensor_view_t *out);
    /* Fills `out` with standard normal noise for this step: per-frame streams keyed by the run's
     * seed and the step, so results are reproducible. */
    sonic_status_t (*noise)(void *ctx, const sonic_tensor_view_t *out);
} sonic_sampler_host_calls_t;

typedef struct sonic_sampler sonic_sampler_t;

typedef struct sonic_sampler_vtable {
    uint32_t struct_size;
    /* Model evaluations step `step` will make, for the cost model. */
    uint32_t (*model_calls)(sonic_sampler_t *self, uint32_t step, const float *sigmas, uint32_t n_sigmas);
    /* Clears state carried between steps; called before step 0 of every run. */
    sonic_status_t (*reset)(sonic_sampler_t *self);
    /* Writes x moved from sigmas[step] to sigmas[step + 1] into `out` (host-allocated, same shape
     * and dtype as x). `x` and `out` are contiguous CPU f32 tensors in version 1. */
    sonic_status_t (*step)(sonic_sampler_t *self, uint32_t step, const float *sigmas, uint32_t n_sigmas,
                           const sonic_tensor_view_t *x, const sonic_sampler_host_calls_t *host_calls,
                           const sonic_tensor_view_t *out);
    /* The message of the last failed call on this instance, or NULL. */
    const char *(*last_error)(sonic_sampler_t *self);
    /* Releases the instance. Always last. */
    void (*destroy)(sonic_sampler_t *self);
} sonic_sampler_vtable_t;

struct sonic_sampler {
    const sonic_sampler_vtable_t *vtable;
    void *plugin_data;
};

typedef struct sonic_sampler_factory {
    uint32_t struct_size;
    uint32_t (*count)(void);
    const sonic_descriptor_t *(*descriptor)(uint32_t index);
    /* Creates the sampler `id` with an optional JSON configuration (NULL for defaults).
     * Returns NULL on failure, after logging why through the host. */
    sonic_sampler_t *(*create)(const sonic_host_t *host, const char *id, const char *config_json);
} sonic_sampler_factory_t;

/* ------------------------------------------------------ audio encoders (sonic.audio-encoder/1)
 * 16 kHz mono PCM in, frame-level hidden states out: `layers` tensors of [frames, hidden_size],
 * at `frames_per_second`, in the layout the audio conditioner takes. */

typedef struct sonic_audio_encoder_info {
    uint32_t struct_size;
    uint32_t sample_rate;
    float frames_per_second;
    uint32_t layers;
    uint32_t hidden_size;
} sonic_audio_encoder_info_t;

typedef struct sonic_audio_encoder sonic_audio_encoder_t;

typedef struct sonic_audio_encoder_vtable {
    uint32_t struct_size;
    /* Fills `out`. The host sets `out->struct_size` to the size it allocated; the plugin writes
     * no more than that and sets `struct_size` to the size of the struct it filled. Asked once,
     * when the instance is created. In version 1 the host accepts sample_rate 16000 only (it
     * feeds 16 kHz mono PCM), a finite frames_per_second > 0, layers >= 1, hidden_size >= 1. */
    sonic_status_t (*info)(sonic_audio_encoder_t *self, sonic_audio_encoder_info_t *out);
    /* Frames the encoder produces for `n_samples` samples. The host refuses counts far beyond
     * the audio's duration at frames_per_second (a minute of padding is allowed). */
    sonic_status_t (*frames_for)(sonic_audio_encoder_t *self, uint64_t n_samples, uint64_t *out_frames);
    /* Encodes `n_samples` samples into `out`: a host-allocated contiguous CPU f32 tensor of
     * shape [layers, frames, hidden_size] with frames = frames_for(n_samples). */
    sonic_status_t (*encode)(sonic_audio_encoder_t *self, const float *samples, uint64_t n_samples,
                             const sonic_tensor_view_t *out);
    const char *(*last_error)(sonic_audio_encoder_t *self);
    void (*destroy)(sonic_audio_encoder_t *self);
} sonic_audio_encoder_vtable_t;

struct sonic_audio_encoder {
    const sonic_audio_encoder_vtable_t *vtable;
    void *plugin_data;
};

typedef struct sonic_audio_encoder_factory {
    uint32_t struct_size;
    uint32_t (*count)(void);
    const sonic_descriptor_t *(*descriptor)(uint32_t index);
    sonic_audio_encoder_t *(*create)(const sonic_host_t *host, const char *id, const char *config_json);
} sonic_audio_encoder_factory_t;

#ifdef __cplusplus
}
#endif

#endif /* SONIC_PLUGIN_H */
