/* A C audio encoder, well-behaved (MODE 0) or misbehaving in one way per MODE, to test the
 * host's checks: 2 layers of width 3 at 50 frames/s, one frame per 320 samples, where
 * layer l, frame f, element h = (l + 1) * samples[320 f] + h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sonic_plugin.h"

#define GOOD 0
#define WRITES_NAN 1
#define WRITES_HALF 2
#define WRITES_PAST_END 3
#define RETURNS_ERROR 4
#define RATE_44100 5
#define ZERO_LAYERS 6
#define ABSURD_FRAMES 7
#define INFINITE_FPS 8
#define SMALL_INFO 9
#define FRAMES_FOR_FAILS 10

#ifndef MODE
#error "compile with -DMODE=<n>"
#endif

#define LAYERS 2u
#define HIDDEN 3u
#define HOP 320u

static sonic_status_t info(sonic_audio_encoder_t *self, sonic_audio_encoder_info_t *out) {
    (void)self;
    out->struct_size = MODE == SMALL_INFO ? 8u : (uint32_t)sizeof *out;
    out->sample_rate = MODE == RATE_44100 ? 44100u : 16000u;
    out->frames_per_second = MODE == INFINITE_FPS ? INFINITY : 50.0f;
    out->layers = MODE == ZERO_LAYERS ? 0u : LAYERS;
    out->hidden_size = HIDDEN;
    return SONIC_OK;
}

static sonic_status_t frames_for(sonic_audio_encoder_t *self, uint64_t n, uint64_t *out) {
    (void)self;
    if (MODE == FRAMES_FOR_FAILS) return SONIC_ERR_UNSUPPORTED;
    *out = MODE == ABSURD_FRAMES ? (uint64_t)1 << 40 : (n + HOP - 1) / HOP;
    return SONIC_OK;
}

static sonic_status_t encode(sonic_audio_encoder_t *self, const float *samples, uint64_t n,
                             const sonic_tensor_view_t *out) {
    (void)self;
    if (MODE == RETURNS_ERROR) return SONIC_ERR_INTERNAL;
    if (out->ndim != 3 || out->shape[0] != LAYERS || out->shape[2] != HIDDEN) return SONIC_ERR_INVALID_ARGUMENT;
    uint64_t frames = (uint64_t)out->shape[1];
    if (frames != (n + HOP - 1) / HOP) return SONIC_ERR_INVALID_ARGUMENT;
    float *y = (float *)out->data;
    size_t total = (size_t)(LAYERS * frames * HIDDEN), written = total;
    if (MODE == WRITES_HALF) written = total / 2;
    if (MODE == WRITES_PAST_END) written = total + 2;
    for (size_t k = 0; k < written; k++) {
        size_t l = k / (frames * HIDDEN), f = (k / HIDDEN) % frames, h = k % HIDDEN;
        y[k] = k < total ? (float)(l + 1) * samples[f * HOP] + (float)h : 0.0f;
    }
    if (MODE == WRITES_NAN && total > 4) y[4] = NAN;
    return SONIC_OK;
}

static const char *last_error(sonic_audio_encoder_t *self) {
    (void)self;
    return MODE == RETURNS_ERROR ? "deliberate encoder failure" : NULL;
}

static void destroy(sonic_audio_encoder_t *self) { free(self); }

static const sonic_audio_encoder_vtable_t vtable = {
    sizeof(sonic_audio_encoder_vtable_t), info, frames_for, encode, last_error, destroy,
};
static const sonic_descriptor_t descriptors[] = {
    {sizeof(sonic_descriptor_t), "c-encoder", "C encoder", "0", "tests", "an audio encoder in C"},
};
static uint32_t count(void) { return 1; }
static const sonic_descriptor_t *descriptor(uint32_t i) { return i == 0 ? &descriptors[0] : NULL; }
static sonic_audio_encoder_t *create(const sonic_host_t *host, const char *id, const char *config) {
    (void)config;
    if (strcmp(id, "c-encoder") != 0) {
        if (host && host->log) host->log(host, SONIC_LOG_ERROR, "c-encoder: unknown id");
        return NULL;
    }
    sonic_audio_encoder_t *self = malloc(sizeof *self);
    if (self) { self->vtable = &vtable; self->plugin_data = NULL; }
    return self;
}
static const sonic_audio_encoder_factory_t factory = {sizeof(sonic_audio_encoder_factory_t), count, descriptor, create};
static sonic_status_t init(const sonic_host_t *h) { (void)h; return SONIC_OK; }
static void deinit(void) {}
static const void *get_factory(const char *id) {
    return strcmp(id, SONIC_AUDIO_ENCODER_FACTORY_ID) == 0 ? (const void *)&factory : NULL;
}

const sonic_plugin_entry_t sonic_plugin_entry = {
    sizeof(sonic_plugin_entry_t), SONIC_ABI_MAJOR, SONIC_ABI_MINOR, "0.1.0", init, deinit, get_factory,
};
