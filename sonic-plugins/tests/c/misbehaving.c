/* A C plugin that misbehaves on purpose, one way per MODE, to test that the host survives. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sonic_plugin.h"

#define WRITES_NAN 1
#define WRITES_HALF 2
#define WRITES_PAST_END 3
#define RETURNS_ERROR 4
#define ABI_MAJOR_2 5
#define NO_ENTRY 6

#ifndef MODE
#error "compile with -DMODE=<n>"
#endif

static size_t count_of(const sonic_tensor_view_t *v) {
    size_t n = 1;
    for (uint32_t i = 0; i < v->ndim; i++) n *= (size_t)v->shape[i];
    return n;
}

static uint32_t model_calls(sonic_sampler_t *s, uint32_t i, const float *g, uint32_t n) { (void)s; (void)i; (void)g; (void)n; return 1; }
static sonic_status_t reset(sonic_sampler_t *s) { (void)s; return SONIC_OK; }

static sonic_status_t step(sonic_sampler_t *s, uint32_t i, const float *sigmas, uint32_t n_sigmas,
                           const sonic_tensor_view_t *x, const sonic_sampler_host_calls_t *host,
                           const sonic_tensor_view_t *out) {
    (void)s; (void)i; (void)sigmas; (void)n_sigmas; (void)host;
    size_t n = count_of(x);
    float *y = (float *)out->data;
    const float *xs = (const float *)x->data;
    size_t written = n;
    if (MODE == WRITES_HALF) written = n / 2;
    if (MODE == WRITES_PAST_END) written = n + 3;
    if (MODE == RETURNS_ERROR) return SONIC_ERR_INTERNAL;
    for (size_t k = 0; k < written; k++) y[k] = (MODE == WRITES_NAN && k == 1) ? NAN : (k < n ? xs[k] : 0.0f);
    return SONIC_OK;
}

static const char *last_error(sonic_sampler_t *s) { (void)s; return MODE == RETURNS_ERROR ? "deliberate failure" : NULL; }
static void destroy(sonic_sampler_t *s) { free(s); }

static const sonic_sampler_vtable_t vtable = {sizeof(sonic_sampler_vtable_t), model_calls, reset, step, last_error, destroy};
static const sonic_descriptor_t descriptors[] = {{sizeof(sonic_descriptor_t), "misbehaving", "Misbehaving", "0", "tests", "fails on purpose"}};
static uint32_t count(void) { return 1; }
static const sonic_descriptor_t *descriptor(uint32_t i) { return i == 0 ? &descriptors[0] : NULL; }
static sonic_sampler_t *create(const sonic_host_t *h, const char *id, const char *c) {
    (void)h; (void)id; (void)c;
    sonic_sampler_t *s = malloc(sizeof *s);
    if (s) { s->vtable = &vtable; s->plugin_data = NULL; }
    return s;
}
static const sonic_sampler_factory_t factory = {sizeof(sonic_sampler_factory_t), count, descriptor, create};
static sonic_status_t init(const sonic_host_t *h) { (void)h; return SONIC_OK; }
static void deinit(void) {}
static const void *get_factory(const char *id) { return strcmp(id, SONIC_SAMPLER_FACTORY_ID) == 0 ? (const void *)&factory : NULL; }

#if MODE == NO_ENTRY
const sonic_plugin_entry_t some_other_symbol =
#else
const sonic_plugin_entry_t sonic_plugin_entry =
#endif
    {sizeof(sonic_plugin_entry_t), MODE == ABI_MAJOR_2 ? 2u : SONIC_ABI_MAJOR, SONIC_ABI_MINOR, "0.1.0", init, deinit, get_factory};
