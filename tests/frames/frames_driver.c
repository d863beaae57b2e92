/* frames_driver.c: a test-only driver plugin ("frames") that takes buffers and returns
 * them, honestly or in every hostile way a worker could, so the core's checks are seen. */
#include <blockbox/driver.h>
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_stubs.h"

/*
 * Two drivers: "framesjson" never asks for buffers and answers {"inputs": the
 * inputs_json text it was sent} (what a driver unaware of buffers sees). "frames" asks
 * for them first, as a driver that takes them must, and inputs {"__frames": "<mode>"}
 * pick its answer:
 *   (absent)   takes the buffers; answers {"n": buffers seen, "y": ndarray uint8 [len]
 *              in buffer 0 = 255 - input buffer 0} (an empty buffer if none came)
 *   "unnamed"  two buffers, the result names one
 *   "twice"    one buffer named by two values
 *   "range"    one buffer, the result names buffer 5
 *   "short"    a buffer one byte shorter than its shape
 *   "many"     BB_MAX_BUFFERS + 1 buffers
 *   "big:<n>"  one buffer of n bytes, named correctly (for the result limit)
 *   "overflow" shape [4294967296, 4294967296] uint8 (2^64: 0 in 64-bit arithmetic), 0 bytes
 *   "error"    a block error, with a buffer beside it
 * Every buffer handed back is released through a counter the tests read.
 */

static atomic_long released;
static atomic_long made;

__attribute__((visibility("default"))) long blockbox_test_frames_live(void)
{
    return atomic_load(&made) - atomic_load(&released);
}

static void release(void *data, size_t len, void *ctx)
{
    (void)len;
    (void)ctx;
    free(data);
    atomic_fetch_add(&released, 1);
}

static int add_buffer(bb_reply *reply, size_t len, unsigned char fill)
{
    void *p = malloc(len ? len : 1);
    if (!p)
        return -1;
    memset(p, fill, len);
    reply->buffers[reply->n_buffers++] = (bb_reply_buffer){.data = p, .len = len, .release = release};
    atomic_fetch_add(&made, 1);
    return 0;
}

static int bb_fail_text(bb_error **err)
{
    if (err && !*err)
        *err = bb_error_new(BB_ERR_INTERNAL, "frames driver: out of memory");
    return -1;
}

static char *answer(const char *result)
{
    cJSON *env = cJSON_CreateObject();
    cJSON_AddBoolToObject(env, "success", 1);
    cJSON_AddStringToObject(env, "result", result);
    cJSON_AddStringToObject(env, "stdout", "");
    cJSON_AddStringToObject(env, "stderr", "");
    char *text = cJSON_PrintUnformatted(env);
    cJSON_Delete(env);
    return text;
}

/* The inputs object the envelope carries (a string inside it), parsed. */
static cJSON *inputs_of(const bb_call *call, char **inputs_text)
{
    size_t len = 0;
    const char *env = bb_call_envelope(call, 0, &len);
    cJSON *e = env ? cJSON_ParseWithLength(env, len) : NULL;
    cJSON *text = cJSON_GetObjectItemCaseSensitive(e, "inputs_json");
    cJSON *inputs = cJSON_IsString(text) ? cJSON_Parse(text->valuestring) : NULL;
    if (inputs_text)
        *inputs_text = cJSON_IsString(text) ? strdup(text->valuestring) : NULL;
    cJSON_Delete(e);
    return inputs;
}

static int json_run(void *state, void *block_state, const bb_call *call, bb_reply *reply,
                    bb_error **err)
{
    (void)state;
    (void)block_state;
    char *text = NULL;
    cJSON_Delete(inputs_of(call, &text));
    if (!text)
        return bb_fail_text(err);
    cJSON *result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "inputs", text);
    cJSON_AddNumberToObject(result, "buffers_after", (double)bb_call_buffer_count(call));
    free(text);
    char *r = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
    reply->body = answer(r);
    free(r);
    reply->len = strlen(reply->body);
    return 0;
}

static int frames_run(void *state, void *block_state, const bb_call *call, bb_reply *reply,
                      bb_error **err)
{
    (void)state;
    (void)block_state;
    size_t n_in = bb_call_buffer_count(call);   /* first: this driver takes buffers */
    cJSON *inputs = inputs_of(call, NULL);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(inputs, "__frames");
    char mode[64] = "";
    if (cJSON_IsString(m))
        snprintf(mode, sizeof mode, "%s", m->valuestring);
    cJSON_Delete(inputs);
    reply->buffers = calloc(BB_MAX_BUFFERS + 1, sizeof *reply->buffers);
    if (!reply->buffers)
        return bb_fail_text(err);
    char result[512];
    if (!mode[0]) {
        size_t len = 0;
        const unsigned char *in = n_in ? bb_call_buffer(call, 0, &len) : NULL;
        add_buffer(reply, len, 0);
        unsigned char *out = reply->buffers[0].data;
        for (size_t i = 0; i < len; i++)
            out[i] = (unsigned char)(255 - in[i]);
        snprintf(result, sizeof result,
                 "{\"n\":%zu,\"y\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[%zu],\"buffer\":0}}",
                 n_in, len);
    } else if (strcmp(mode, "unnamed") == 0) {
        add_buffer(reply, 4, 1);
        add_buffer(reply, 4, 2);
        snprintf(result, sizeof result, "{\"y\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[4],\"buffer\":1}}");
    } else if (strcmp(mode, "twice") == 0) {
        add_buffer(reply, 4, 1);
        snprintf(result, sizeof result,
                 "{\"y\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[4],\"buffer\":0},"
                 "\"z\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[2,2],\"buffer\":0}}");
    } else if (strcmp(mode, "range") == 0) {
        add_buffer(reply, 4, 1);
        snprintf(result, sizeof result, "{\"y\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[4],\"buffer\":5}}");
    } else if (strcmp(mode, "short") == 0) {
        add_buffer(reply, 15, 1);
        snprintf(result, sizeof result, "{\"y\":{\"_type\":\"ndarray\",\"dtype\":\"float32\",\"shape\":[2,2],\"buffer\":0}}");
    } else if (strcmp(mode, "many") == 0) {
        for (int i = 0; i <= BB_MAX_BUFFERS; i++)
            add_buffer(reply, 1, 0);
        snprintf(result, sizeof result, "{\"y\":1}");
    } else if (strncmp(mode, "big:", 4) == 0) {
        size_t n = (size_t)strtoull(mode + 4, NULL, 10);
        add_buffer(reply, n, 7);
        snprintf(result, sizeof result, "{\"y\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[%zu],\"buffer\":0}}", n);
    } else if (strcmp(mode, "overflow") == 0) {
        add_buffer(reply, 0, 0);
        snprintf(result, sizeof result,
                 "{\"y\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[4294967296,4294967296],\"buffer\":0}}");
    } else if (strcmp(mode, "error") == 0) {
        add_buffer(reply, 4, 1);
        reply->body = strdup("{\"success\":false,\"error_type\":\"ValueError\",\"error\":\"no\",\"stdout\":\"\",\"stderr\":\"\"}");
        reply->len = strlen(reply->body);
        return 0;
    } else {
        snprintf(result, sizeof result, "{\"unknown_mode\":true}");
    }
    reply->body = answer(result);
    reply->len = strlen(reply->body);
    return 0;
}

/* The two drivers: the same do-nothing slots around their own run. */
#define FRAMES_DRIVER(name_, summary_, run_)                                                      \
    {.abi_version = BB_DRIVER_ABI_VERSION, .name = name_, .summary = summary_, .open = stub_open, \
     .load = stub_load, .run = run_, .unload = stub_unload, .close = stub_close}

static const bb_driver frames_driver =
    FRAMES_DRIVER("frames", "test driver: takes and returns buffers, honestly or not", frames_run);
static const bb_driver json_driver = FRAMES_DRIVER("framesjson", "test driver: knows nothing of buffers", json_run);

__attribute__((visibility("default"))) int blockbox_driver_entry(bb_registry *reg, unsigned abi,
                                                                 bb_error **err)
{
    (void)abi;
    if (bb_registry_add(reg, &frames_driver, err) < 0)
        return -1;
    return bb_registry_add(reg, &json_driver, err);
}
