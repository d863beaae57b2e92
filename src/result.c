/* result.c: a run's result: made from a checked response envelope and the driver's
 * own record (denials, buffers), and read by the caller (blockbox.h bb_result_*). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "executor_int.h"

bb_result *bb_result_new_empty(void)
{
    bb_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    bb_wire_response *t = &r->text;
    t->stdout_text = strdup("");
    t->stderr_text = strdup("");
    t->denied_syscalls = strdup("");
    t->debug_traces = strdup("[]");
    if (!t->stdout_text || !t->stderr_text || !t->denied_syscalls || !t->debug_traces) {
        bb_result_free(r);
        return NULL;
    }
    return r;
}

bb_result *bb_result_fail(bb_result *r, bb_error *e)
{
    r->ok = 0;
    bb_error_free(r->error);
    r->error = e ? e : bb_error_new(BB_ERR_INTERNAL, "unknown failure");
    return r;
}

static void take(char **slot, char **value)
{
    if (*value) {
        free(*slot);
        *slot = *value;
        *value = NULL;
    }
}

/* The rule for SandboxViolation (docs/SECURITY.md): the driver itself saw a denial in
 * this call (trusted record) and the block failed with what a denied call raises,
 * PermissionError with errno EPERM ("[Errno 1] ..."). Any other failure keeps the
 * block's own type, with the denials beside it in denied_syscalls. */
bb_error *bb_denial_verdict(const char *observed, const bb_wire_response *resp)
{
    if (!observed || !observed[0] || resp->success || !resp->error_type || !resp->error ||
        strcmp(resp->error_type, "PermissionError") != 0)
        return NULL;
    /* the bare message, or the runtime's "Error in line N, in F: T: message" */
    if (strncmp(resp->error, "[Errno 1] ", 10) == 0)
        return bb_error_new(BB_ERR_SANDBOX_VIOLATION, "blocked system call: %.200s (PermissionError: %.300s)",
                            observed, resp->error);
    if (strstr(resp->error, "PermissionError: [Errno 1] "))
        return bb_error_new(BB_ERR_SANDBOX_VIOLATION, "blocked system call: %.200s (%.300s)", observed,
                            resp->error);
    return NULL;
}

/* Turns a checked response envelope into a result. */
bb_result *bb_result_from_response(bb_result *r, bb_wire_response *resp)
{
    take(&r->text.stdout_text, &resp->stdout_text);
    take(&r->text.stderr_text, &resp->stderr_text);
    take(&r->text.denied_syscalls, &resp->denied_syscalls);
    take(&r->text.debug_traces, &resp->debug_traces);
    if (resp->runtime_version && strcmp(resp->runtime_version, BLOCKBOX_RUNTIME_VERSION) != 0)
        return bb_result_fail(r, bb_error_new(BB_ERR_CONFIGURATION,
                                            "the backend runs blockbox runtime %.32s, this library "
                                            "needs %s: redeploy the backend",
                                            resp->runtime_version, BLOCKBOX_RUNTIME_VERSION));
    if (resp->success) {
        r->ok = 1;
        take(&r->text.result, &resp->result);
        return r;
    }
    /* resp->error already reads "Error in line N, in F: T: msg" (wire_reply.c, errtext.c). */
    return bb_result_fail(r, bb_error_block(resp->error_type, resp->error, resp->line_number,
                                          resp->function_name, resp->traceback));
}

void bb_reply_buffers_release(bb_reply_buffer *bufs, size_t n)
{
    for (size_t i = 0; bufs && i < n; i++) {
        if (bufs[i].release)
            bufs[i].release(bufs[i].data, bufs[i].len, bufs[i].ctx);
        else
            free(bufs[i].data);
    }
    free(bufs);
}

/* The reply's buffers, before its text is read: a count and a total the limits
 * allow (OutputLimit past max_result_bytes), each with memory behind it. */
int bb_reply_buffers_check(const bb_executor *ex, const bb_reply *reply, bb_frames *frames,
                               bb_error **err)
{
    if (reply->n_buffers > BB_MAX_BUFFERS)
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "result: %zu buffers, at most %d are allowed",
                       reply->n_buffers, BB_MAX_BUFFERS);
    if (reply->n_buffers && !reply->buffers)
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "result: %zu buffers announced, none given",
                       reply->n_buffers);
    size_t lens[BB_MAX_BUFFERS];
    for (size_t i = 0; i < reply->n_buffers; i++) {
        if (!reply->buffers[i].data && reply->buffers[i].len)
            return bb_fail(err, BB_ERR_INVALID_RESPONSE, "result: buffer %zu has no memory", i);
        lens[i] = reply->buffers[i].len;
    }
    bb_frames_init(frames, lens, reply->n_buffers);
    size_t total = bb_frames_total(frames);
    if (total > ex->limits.max_result_bytes)
        return bb_fail(err, BB_ERR_OUTPUT_LIMIT, "result: %zu bytes of buffers, over the limit of %zu bytes",
                       total, ex->limits.max_result_bytes);
    return 0;
}

/* For a caller that reads JSON only: result buffers written into the data form, as
 * the worker would have written them itself. */
bb_result *bb_result_without_buffers(bb_result *r)
{
    if (!r || !r->ok || !r->n_bufs)
        return r;
    bb_buffer views[BB_MAX_BUFFERS];
    for (size_t i = 0; i < r->n_bufs; i++)
        views[i] = (bb_buffer){r->bufs[i].data, r->bufs[i].len};
    bb_buf text = {0};
    bb_error *err = NULL;
    if (bb_frames_to_data(r->text.result, strlen(r->text.result), views, r->n_bufs, &text, &err) < 0) {
        bb_buf_free(&text);
        return bb_result_fail(r, err);
    }
    char *converted = bb_buf_steal(&text, NULL);
    if (!converted)
        return bb_result_fail(r, bb_error_new(BB_ERR_INTERNAL, "out of memory"));
    free(r->text.result);
    r->text.result = converted;
    bb_reply_buffers_release(r->bufs, r->n_bufs);
    r->bufs = NULL;
    r->n_bufs = 0;
    return r;
}

static void *aligned_block(void *ctx, size_t len)
{
    (void)ctx;
    return aligned_alloc(64, (len + 63) / 64 * 64 + 64);
}

/* For a caller that reads buffers: arrays a driver sent in the data form (a backend
 * without shared memory, e.g. Modal; an output too large for the arena) come as
 * buffers too. Left as they are when there are more than BB_MAX_BUFFERS of them. */
bb_result *bb_result_with_buffers(bb_result *r)
{
    if (!r || !r->ok || r->n_bufs || !strstr(r->text.result, "\"data\""))
        return r;
    void *data[BB_MAX_BUFFERS];
    size_t lens[BB_MAX_BUFFERS], n = 0;
    bb_buf text = {0};
    bb_error *err = NULL;
    int rc = bb_frames_from_data(r->text.result, strlen(r->text.result), 0, aligned_block, NULL, &text, data, lens,
                                 &n, &err);
    bb_error_free(err);
    bb_reply_buffer *bufs = rc == 0 && n ? calloc(n, sizeof *bufs) : NULL;
    char *converted = bufs ? bb_buf_steal(&text, NULL) : NULL;
    if (!converted) {
        for (size_t i = 0; i < n; i++)
            free(data[i]);
        free(bufs);
        bb_buf_free(&text);
        return r;   /* the data form stays: still a correct answer */
    }
    for (size_t i = 0; i < n; i++)
        bufs[i] = (bb_reply_buffer){.data = data[i], .len = lens[i]};
    free(r->text.result);
    r->text.result = converted;
    r->bufs = bufs;
    r->n_bufs = n;
    return r;
}

int bb_result_ok(const bb_result *res) { return res && res->ok; }
const char *bb_result_outputs(const bb_result *res) { return res && res->ok ? res->text.result : NULL; }
const char *bb_result_stdout(const bb_result *res) { return res ? res->text.stdout_text : ""; }
const char *bb_result_stderr(const bb_result *res) { return res ? res->text.stderr_text : ""; }
const char *bb_result_denied_syscalls(const bb_result *res) { return res ? res->text.denied_syscalls : ""; }
const char *bb_result_debug_traces(const bb_result *res) { return res ? res->text.debug_traces : "[]"; }
const bb_error *bb_result_error(const bb_result *res) { return res ? res->error : NULL; }
int bb_result_restarted(const bb_result *res) { return res && res->restarted; }
size_t bb_result_buffer_count(const bb_result *res) { return res && res->ok ? res->n_bufs : 0; }

const void *bb_result_buffer(const bb_result *res, size_t i, size_t *len)
{
    if (!res || !res->ok || i >= res->n_bufs) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = res->bufs[i].len;
    return res->bufs[i].data;
}

void bb_result_free(bb_result *res)
{
    if (!res)
        return;
    bb_wire_response_clear(&res->text);
    bb_error_free(res->error);
    bb_reply_buffers_release(res->bufs, res->n_bufs);
    free(res);
}
