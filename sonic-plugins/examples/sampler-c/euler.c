/*
 * An example sonic plugin in plain C: Euler on the probability-flow ODE, the same update as
 * sonic's built-in `euler` sampler, under the id "euler-c".
 *
 *   cc -std=c99 -shared -fPIC -I sonic-plugins/include sonic-plugins/examples/sampler-c/euler.c -o libsonic_euler_c.so
 */
#include <stdlib.h>
#include <string.h>

#include "sonic_plugin.h"

static const sonic_host_t *g_host;

typedef struct {
    char last_error[256];
} euler_state;

static size_t element_count(const sonic_tensor_view_t *v) {
    size_t n = 1;
    for (uint32_t i = 0; i < v->ndim; i++) n *= (size_t)v->shape[i];
    return n;
}

static sonic_status_t fail(sonic_sampler_t *self, sonic_status_t status, const char *message) {
    euler_state *state = (euler_state *)self->plugin_data;
    strncpy(state->last_error, message, sizeof state->last_error - 1);
    return status;
}

static uint32_t model_calls(sonic_sampler_t *self, uint32_t step, const float *sigmas, uint32_t n) {
    (void)self; (void)step; (void)sigmas; (void)n;
    return 1;
}

static sonic_status_t reset(sonic_sampler_t *self) {
    ((euler_state *)self->plugin_data)->last_error[0] = '\0';
    return SONIC_OK;
}

static sonic_status_t step(sonic_sampler_t *self, uint32_t i, const float *sigmas, uint32_t n_sigmas,
                           const sonic_tensor_view_t *x, const sonic_sampler_host_calls_t *host,
                           const sonic_tensor_view_t *out) {
    if (i + 1 >= n_sigmas) return fail(self, SONIC_ERR_INVALID_ARGUMENT, "step index past the last sigma");
    if (x->dtype != SONIC_DTYPE_F32 || x->device_type != SONIC_DEVICE_CPU)
        return fail(self, SONIC_ERR_UNSUPPORTED, "only CPU f32 tensors are supported");
    size_t n = element_count(x);
    /* The denoised estimate is written straight into `out`, then updated in place. */
    sonic_status_t status = host->denoise(host->ctx, x, sigmas[i], out);
    if (status != SONIC_OK) return status;
    const float *xs = (const float *)x->data;
    float *ys = (float *)out->data;
    float sigma = sigmas[i], dt = sigmas[i + 1] - sigmas[i];
    for (size_t k = 0; k < n; k++) {
        float d = (xs[k] - ys[k]) / sigma;
        ys[k] = xs[k] + d * dt;
    }
    return SONIC_OK;
}

static const char *last_error(sonic_sampler_t *self) {
    euler_state *state = (euler_state *)self->plugin_data;
    return state->last_error[0] ? state->last_error : NULL;
}

static void destroy(sonic_sampler_t *self) {
    free(self->plugin_data);
    free(self);
}

static const sonic_sampler_vtable_t vtable = {
    sizeof(sonic_sampler_vtable_t), model_calls, reset, step, last_error, destroy,
};

static const sonic_descriptor_t descriptors[] = {
    {sizeof(sonic_descriptor_t), "euler-c", "Euler (C example)", "1.0.0", "Sonic SDK examples",
     "First-order Euler on the probability-flow ODE, written in C"},
};

static uint32_t count(void) { return 1; }

static const sonic_descriptor_t *descriptor(uint32_t index) { return index == 0 ? &descriptors[0] : NULL; }

static sonic_sampler_t *create(const sonic_host_t *host, const char *id, const char *config) {
    (void)config;
    if (strcmp(id, "euler-c") != 0) {
        if (host && host->log) host->log(host, SONIC_LOG_ERROR, "euler-c: unknown sampler id");
        return NULL;
    }
    sonic_sampler_t *self = malloc(sizeof *self);
    euler_state *state = calloc(1, sizeof *state);
    if (!self || !state) { free(self); free(state); return NULL; }
    self->vtable = &vtable;
    self->plugin_data = state;
    return self;
}

static const sonic_sampler_factory_t factory = {sizeof(sonic_sampler_factory_t), count, descriptor, create};

static sonic_status_t init(const sonic_host_t *host) { g_host = host; return SONIC_OK; }

static void deinit(void) { g_host = NULL; }

static const void *get_factory(const char *id) {
    return strcmp(id, SONIC_SAMPLER_FACTORY_ID) == 0 ? (const void *)&factory : NULL;
}

const sonic_plugin_entry_t sonic_plugin_entry = {
    sizeof(sonic_plugin_entry_t), SONIC_ABI_MAJOR, SONIC_ABI_MINOR, "0.1.0", init, deinit, get_factory,
};
