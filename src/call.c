/* call.c: what a driver reads of one run (driver.h bb_call_*): the request envelope
 * built on demand in its forms (hash-only, with code, buffers or the data form). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "executor_int.h"

static int call_inputs(const bb_call *call, const char **text, size_t *len);

const char *bb_call_envelope(const bb_call *call, int with_code, size_t *len)
{
    call_cache *c = call->cache;
    int k = with_code ? 1 : 0;
    if (!c->envelope[k]) {
        bb_buf b = {0};
        bb_error *e = NULL;
        const char *inputs;
        size_t inputs_len;
        if (call_inputs(call, &inputs, &inputs_len) < 0)
            return NULL;
        if (bb_wire_build_request(&call->blk->wire, k, inputs, inputs_len,
                                  call->context, &b, &e) < 0) {
            bb_error_free(e);
            bb_buf_free(&b);
            return NULL;
        }
        c->envelope[k] = bb_buf_steal(&b, &c->envelope_len[k]);
        if (!c->envelope[k])
            return NULL;
    }
    if (len)
        *len = c->envelope_len[k];
    return c->envelope[k];
}

long bb_call_timeout_ms(const bb_call *call) { return call->timeout_ms; }

size_t bb_call_buffer_count(const bb_call *call)
{
    if (!call || call->cache->converted)
        return 0;
    call->cache->takes_buffers = 1;
    return call->n_bufs;
}

int bb_call_result_buffers(const bb_call *call) { return call && call->result_buffers; }

/* The inputs a driver is sent: the data form for one that does not take buffers. */
static int call_inputs(const bb_call *call, const char **text, size_t *len)
{
    call_cache *c = call->cache;
    *text = call->inputs;
    *len = call->inputs_len;
    if (!call->n_bufs || c->takes_buffers)
        return 0;
    if (!c->converted) {
        bb_buf b = {0};
        bb_error *e = NULL;
        if (bb_frames_to_data(call->inputs, call->inputs_len, call->bufs, call->n_bufs, &b, &e) < 0) {
            bb_error_free(e);
            bb_buf_free(&b);
            return -1;
        }
        c->converted = bb_buf_steal(&b, &c->converted_len);
        if (!c->converted)
            return -1;
    }
    *text = c->converted;
    *len = c->converted_len;
    return 0;
}

static char *envelope_with(const bb_call *call, int with_code, const char *inputs, size_t len, size_t *out_len)
{
    bb_buf b = {0};
    bb_error *e = NULL;
    if (bb_wire_build_request(&call->blk->wire, with_code ? 1 : 0, inputs, len, call->context, &b, &e) < 0) {
        bb_error_free(e);
        bb_buf_free(&b);
        return NULL;
    }
    return bb_buf_steal(&b, out_len);
}

char *bb_call_envelope_arrays(const bb_call *call, int with_code, bb_call_alloc_fn alloc, void *ctx,
                              size_t *n_moved, size_t *len, bb_error **err)
{
    *n_moved = 0;
    const char *text = call->inputs;
    size_t text_len = call->inputs_len;
    if (!call->cache->takes_buffers || !(memmem(text, text_len, "data", 4) || memmem(text, text_len, "\\u", 2)))
        return NULL;
    bb_buf rewritten = {0};
    void *data[BB_MAX_BUFFERS];
    size_t lens[BB_MAX_BUFFERS];
    if (bb_frames_from_data(text, text_len, call->n_bufs, alloc, ctx, &rewritten, data, lens, n_moved, err) < 0) {
        bb_buf_free(&rewritten);
        *n_moved = 0;
        return NULL;
    }
    char *env = *n_moved ? envelope_with(call, with_code, rewritten.data, rewritten.len, len) : NULL;
    bb_buf_free(&rewritten);
    if (*n_moved && !env) {
        *n_moved = 0;
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    return env;
}

char *bb_call_envelope_data(const bb_call *call, int with_code, size_t *len)
{
    if (!call->n_bufs)
        return envelope_with(call, with_code, call->inputs, call->inputs_len, len);
    bb_buf text = {0};
    bb_error *e = NULL;
    if (bb_frames_to_data(call->inputs, call->inputs_len, call->bufs, call->n_bufs, &text, &e) < 0) {
        bb_error_free(e);
        bb_buf_free(&text);
        return NULL;
    }
    char *env = envelope_with(call, with_code, text.data, text.len, len);
    bb_buf_free(&text);
    return env;
}

const void *bb_call_buffer(const bb_call *call, size_t i, size_t *len)
{
    if (!call || !call->cache->takes_buffers || i >= call->n_bufs) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = call->bufs[i].len;
    return call->bufs[i].data;
}

typedef struct forms_inputs {
    const bb_call *call;
    bb_call_image_fn encode;
    void *ctx;
    size_t n_images;
} forms_inputs;

static int write_forms(void *ctx, bb_buf *out, bb_error **err)
{
    forms_inputs *f = ctx;
    const bb_call *call = f->call;
    return bb_frames_write_forms(call->inputs, call->inputs_len, call->bufs, call->n_bufs, f->encode, f->ctx,
                                 out, &f->n_images, err);
}

char *bb_call_envelope_encoded(const bb_call *call, int with_code, bb_call_image_fn encode, void *ctx,
                               size_t *len, bb_error **err)
{
    *len = 0;
    const char *text = call->inputs;
    size_t text_len = call->inputs_len;
    /* nothing to write: no buffer, and no raw image in the data form ("raw" or an escape) */
    if (!call->n_bufs && !memmem(text, text_len, "raw", 3) && !memmem(text, text_len, "\\u", 2))
        return NULL;
    if (!encode) {
        bb_fail(err, BB_ERR_INTERNAL, "bb_call_envelope_encoded: no image encoder");
        return NULL;
    }
    size_t total = 0;
    for (size_t i = 0; i < call->n_bufs; i++)
        total += call->bufs[i].len;   /* within max_input_bytes: checked before the run */
    forms_inputs f = {call, encode, ctx, 0};
    bb_buf b = {0};
    /* room for the data form (base64, a third more) with a margin for PNG's own */
    size_t hint = text_len + text_len / 8 + total / 3 * 4 + total / 64 + 4096;
    if (bb_wire_build_request_with(&call->blk->wire, with_code ? 1 : 0, write_forms, &f, hint, call->context,
                                   &b, err) < 0) {
        bb_buf_free(&b);
        return NULL;
    }
    char *env = bb_buf_steal(&b, len);
    if (!env)
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    return env;
}
