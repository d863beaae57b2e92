/* executor.c: the core. Picks a driver from the registry, checks every request
 * before a backend sees it and every response before the caller does. */
#include <blockbox/driver.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "frames.h"
#include "json_scan.h"
#include "registry.h"
#include "wire.h"

struct bb_executor {
    bb_config *cfg;
    bb_registry registry;
    const bb_driver *driver;
    void *state;
    bb_limits limits;
    long timeout_ms;
    long max_inputs;
    const char *workspace_id;   /* in cfg */
};

struct bb_block {
    bb_executor *ex;
    void *state;
    pthread_mutex_t lock;   /* runs of one block are serialised */
    char code_hash[33];
    char *run_code, *run_name, *init_code, *init_name, *workspace_id;
    char **imports;
    size_t n_imports;
    bb_wire_block wire;
};

/* What a call builds on demand while the driver reads it: the driver holds a const
 * bb_call, so this lives beside it, not in it. */
typedef struct call_cache {
    char *envelope[2];      /* [0] hash-only, [1] with code */
    size_t envelope_len[2];
    int takes_buffers;      /* the driver asked for them before its first envelope */
    char *converted;        /* otherwise: the inputs with buffers in the data form */
    size_t converted_len;
} call_cache;

struct bb_call {
    const bb_block *blk;
    const char *inputs;
    size_t inputs_len;
    const char *context;
    long timeout_ms;
    const bb_buffer *bufs;  /* checked against the inputs (frames.c) */
    size_t n_bufs;
    int result_buffers;     /* the caller reads result buffers (bb_block_run_buffers) */
    call_cache *cache;
};

struct bb_result {
    int ok;
    char *outputs;
    char *stdout_text;
    char *stderr_text;
    char *denied;
    char *traces;
    int restarted;
    bb_error *error;
    bb_reply_buffer *bufs;  /* the driver's, checked against the outputs */
    size_t n_bufs;
};

const char *bb_version(void) { return BLOCKBOX_VERSION; }

/* ---- executor ---------------------------------------------------------- */

bb_executor *bb_executor_new(const bb_config *cfg_in, bb_error **err)
{
    bb_config *cfg = cfg_in ? bb_config_clone(cfg_in) : bb_config_from_env(err);
    if (!cfg) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    bb_executor *ex = calloc(1, sizeof *ex);
    if (!ex) {
        bb_config_free(cfg);
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    ex->cfg = cfg;
    bb_limits_from_config(cfg, &ex->limits);
    ex->timeout_ms = (long)(bb_setting_seconds(cfg, "timeout") * 1000.0);
    ex->max_inputs = bb_setting_long(cfg, "max_inputs");
    ex->workspace_id = bb_setting_string(cfg, "workspace_id");
    if (bb_registry_init(&ex->registry, bb_setting_string(cfg, "driver_path"), err) < 0 ||
        bb_config_bind(cfg, &ex->registry, err) < 0)
        goto fail;
    const char *mode = bb_setting_string(cfg, "mode");
    if (!mode)
        mode = "local";
    ex->driver = bb_registry_find(&ex->registry, mode);
    if (!ex->driver) {
        char *names = bb_registry_names(&ex->registry);
        bb_fail(err, BB_ERR_CONFIGURATION,
                "unknown WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE '%s'; known drivers: %s", mode,
                names ? names : "?");
        free(names);
        goto fail;
    }
    if (ex->driver->open(ex->cfg, &ex->state, err) < 0) {
        bb_fail(err, BB_ERR_CONFIGURATION, "driver '%s' failed to open", ex->driver->name);
        goto fail;
    }
    return ex;
fail:
    bb_config_free(ex->cfg);   /* before the plugins whose tables it may point into */
    bb_registry_close(&ex->registry);
    free(ex);
    return NULL;
}

const char *bb_executor_driver(const bb_executor *ex) { return ex ? ex->driver->name : NULL; }

char *bb_executor_describe(bb_executor *ex)
{
    if (!ex)
        return NULL;
    if (ex->driver->describe)
        return ex->driver->describe(ex->state);
    bb_buf b = {0};
    bb_buf_puts(&b, "{\"driver\":");
    bb_buf_json_string(&b, ex->driver->name, strlen(ex->driver->name));
    bb_buf_puts(&b, "}");
    return bb_buf_steal(&b, NULL);
}

void bb_executor_free(bb_executor *ex)
{
    if (!ex)
        return;
    ex->driver->close(ex->state);
    bb_config_free(ex->cfg);   /* before the plugins whose tables it may point into */
    bb_registry_close(&ex->registry);
    free(ex);
}

/* ---- blocks ------------------------------------------------------------ */

static void block_strings_free(bb_block *b)
{
    free(b->run_code);
    free(b->run_name);
    free(b->init_code);
    free(b->init_name);
    free(b->workspace_id);
    for (size_t i = 0; i < b->n_imports; i++)
        free(b->imports[i]);
    free(b->imports);
}

static char *dup_opt(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

static int check_spec(const bb_executor *ex, const bb_block_spec *spec, bb_error **err)
{
    if (!spec || !spec->run_code)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "the block has no run code");
    if (bb_wire_check_code(spec->run_code, "run code", &ex->limits, err) < 0)
        return -1;
    const char *p = spec->run_code;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (!*p)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "the run code is empty");
    if (spec->init_code && bb_wire_check_code(spec->init_code, "init code", &ex->limits, err) < 0)
        return -1;
    if (spec->run_function_name &&
        bb_wire_check_identifier(spec->run_function_name, "run function name", err) < 0)
        return -1;
    if (spec->init_function_name &&
        bb_wire_check_identifier(spec->init_function_name, "init function name", err) < 0)
        return -1;
    if (spec->n_imports > 1024)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "too many import lines (%zu)", spec->n_imports);
    for (size_t i = 0; i < spec->n_imports; i++)
        if (bb_wire_check_import(spec->imports[i], err) < 0)
            return -1;
    if (spec->max_inputs < 0)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "max_inputs must not be negative");
    return 0;
}

static void reply_buffers_release(bb_reply_buffer *bufs, size_t n);

/* Loads through the driver. An eager driver's answer to the load envelope
 * (load_reply, driver.h) is checked here like a run's: a block whose init failed, or
 * an invalid envelope, is unloaded and its error returned. */
static int driver_load(bb_executor *ex, const bb_block_info *info, void **state, bb_error **err)
{
    const bb_driver *d = ex->driver;
    if (!BB_DRIVER_HAS(d, load_reply) || !d->load_reply)
        return d->load(ex->state, info, state, err);
    bb_reply reply = {0};
    if (d->load_reply(ex->state, info, state, &reply, err) < 0)
        return -1;
    free(reply.denied);
    reply_buffers_release(reply.buffers, reply.n_buffers);
    bb_wire_response resp = {0};
    int rc = bb_wire_parse_response_owned(reply.body, reply.len, &ex->limits, &resp, err);   /* frees it */
    if (rc == 0 && !resp.success) {
        bb_error *e = bb_error_block(resp.error_type, resp.error, resp.line_number, resp.function_name,
                                     resp.traceback);
        if (err && !*err)
            *err = e;
        else
            bb_error_free(e);
        rc = -1;
    }
    bb_wire_response_clear(&resp);
    if (rc < 0) {
        d->unload(ex->state, *state);
        *state = NULL;
    }
    return rc;
}

bb_block *bb_block_load(bb_executor *ex, const bb_block_spec *spec, bb_error **err)
{
    if (!ex) {
        bb_fail(err, BB_ERR_CONFIGURATION, "no executor");
        return NULL;
    }
    if (check_spec(ex, spec, err) < 0)
        return NULL;
    bb_block *b = calloc(1, sizeof *b);
    if (!b) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    int oom = 0;
    b->ex = ex;
    b->run_code = dup_opt(spec->run_code, &oom);
    b->run_name = dup_opt(spec->run_function_name ? spec->run_function_name : "run", &oom);
    b->init_code = dup_opt(spec->init_code, &oom);
    b->init_name = dup_opt(spec->init_function_name ? spec->init_function_name : "init", &oom);
    b->workspace_id = dup_opt(spec->workspace_id ? spec->workspace_id : ex->workspace_id, &oom);
    if (spec->n_imports) {
        b->imports = calloc(spec->n_imports, sizeof *b->imports);
        if (!b->imports)
            oom = 1;
        else
            for (; b->n_imports < spec->n_imports; b->n_imports++)
                b->imports[b->n_imports] = dup_opt(spec->imports[b->n_imports], &oom);
    }
    if (oom) {
        block_strings_free(b);
        free(b);
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    bb_wire_code_hash(b->run_code, (const char *const *)b->imports, b->n_imports, b->code_hash);
    b->wire = (bb_wire_block){
        .code_hash = b->code_hash,
        .run_code = b->run_code,
        .run_function_name = b->run_name,
        .init_code = b->init_code,
        .init_function_name = b->init_name,
        .imports = (const char *const *)b->imports,
        .n_imports = b->n_imports,
        .max_depth = ex->limits.max_depth,   /* the runtime refuses deeper outputs itself */
    };
    bb_buf load = {0};
    if (bb_wire_build_request(&b->wire, 1, NULL, 0, NULL, &load, err) < 0) {
        bb_buf_free(&load);
        block_strings_free(b);
        free(b);
        return NULL;
    }
    bb_block_info info = {
        .code_hash = b->code_hash,
        .run_code = b->run_code,
        .run_function_name = b->run_name,
        .init_code = b->init_code,
        .init_function_name = b->init_name,
        .imports = (const char *const *)b->imports,
        .n_imports = b->n_imports,
        .workspace_id = b->workspace_id,
        .max_inputs = spec->max_inputs ? spec->max_inputs : (int)ex->max_inputs,
        .load_envelope = load.data,
        .load_envelope_len = load.len,
    };
    int rc = driver_load(ex, &info, &b->state, err);
    bb_buf_free(&load);
    if (rc < 0) {
        bb_fail(err, BB_ERR_INTERNAL, "driver '%s' failed to load the block", ex->driver->name);
        block_strings_free(b);
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

const char *bb_block_code_hash(const bb_block *blk) { return blk ? blk->code_hash : NULL; }

void bb_block_free(bb_block *blk)
{
    if (!blk)
        return;
    blk->ex->driver->unload(blk->ex->state, blk->state);
    pthread_mutex_destroy(&blk->lock);
    block_strings_free(blk);
    free(blk);
}

/* ---- calls ------------------------------------------------------------- */

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

/* ---- results ----------------------------------------------------------- */

static bb_result *result_new(void)
{
    bb_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->stdout_text = strdup("");
    r->stderr_text = strdup("");
    r->denied = strdup("");
    r->traces = strdup("[]");
    if (!r->stdout_text || !r->stderr_text || !r->denied || !r->traces) {
        bb_result_free(r);
        return NULL;
    }
    return r;
}

static bb_result *result_error(bb_result *r, bb_error *e)
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
static bb_error *denial_verdict(const char *observed, const bb_wire_response *resp)
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
static bb_result *result_from_response(bb_result *r, bb_wire_response *resp)
{
    take(&r->stdout_text, &resp->stdout_text);
    take(&r->stderr_text, &resp->stderr_text);
    take(&r->denied, &resp->denied_syscalls);
    take(&r->traces, &resp->debug_traces);
    if (resp->runtime_version && strcmp(resp->runtime_version, BLOCKBOX_RUNTIME_VERSION) != 0)
        return result_error(r, bb_error_new(BB_ERR_CONFIGURATION,
                                            "the backend runs blockbox runtime %.32s, this library "
                                            "needs %s: redeploy the backend",
                                            resp->runtime_version, BLOCKBOX_RUNTIME_VERSION));
    if (resp->success) {
        r->ok = 1;
        take(&r->outputs, &resp->result);
        return r;
    }
    /* resp->error already reads "Error in line N, in F: T: msg" (wire_reply.c, errtext.c). */
    return result_error(r, bb_error_block(resp->error_type, resp->error, resp->line_number,
                                          resp->function_name, resp->traceback));
}

static void reply_buffers_release(bb_reply_buffer *bufs, size_t n)
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
static int reply_buffers_check(const bb_executor *ex, const bb_reply *reply, bb_frames *frames,
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

static bb_result *run(bb_block *blk, const char *inputs_json, const char *context_json,
                      const bb_buffer *bufs, size_t n_bufs, int result_buffers);

/* For a caller that reads JSON only: result buffers written into the data form, as
 * the worker would have written them itself. */
static bb_result *outputs_without_buffers(bb_result *r)
{
    if (!r || !r->ok || !r->n_bufs)
        return r;
    bb_buffer views[BB_MAX_BUFFERS];
    for (size_t i = 0; i < r->n_bufs; i++)
        views[i] = (bb_buffer){r->bufs[i].data, r->bufs[i].len};
    bb_buf text = {0};
    bb_error *err = NULL;
    if (bb_frames_to_data(r->outputs, strlen(r->outputs), views, r->n_bufs, &text, &err) < 0) {
        bb_buf_free(&text);
        return result_error(r, err);
    }
    char *converted = bb_buf_steal(&text, NULL);
    if (!converted)
        return result_error(r, bb_error_new(BB_ERR_INTERNAL, "out of memory"));
    free(r->outputs);
    r->outputs = converted;
    reply_buffers_release(r->bufs, r->n_bufs);
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
static bb_result *outputs_with_buffers(bb_result *r)
{
    if (!r || !r->ok || r->n_bufs || !strstr(r->outputs, "\"data\""))
        return r;
    void *data[BB_MAX_BUFFERS];
    size_t lens[BB_MAX_BUFFERS], n = 0;
    bb_buf text = {0};
    bb_error *err = NULL;
    int rc = bb_frames_from_data(r->outputs, strlen(r->outputs), 0, aligned_block, NULL, &text, data, lens,
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
    free(r->outputs);
    r->outputs = converted;
    r->bufs = bufs;
    r->n_bufs = n;
    return r;
}

bb_result *bb_block_run(bb_block *blk, const char *inputs_json, const char *context_json)
{
    return outputs_without_buffers(run(blk, inputs_json, context_json, NULL, 0, 0));
}

bb_result *bb_block_run_buffers(bb_block *blk, const char *inputs_json, const char *context_json,
                                const bb_buffer *bufs, size_t n_bufs)
{
    return outputs_with_buffers(run(blk, inputs_json, context_json, bufs, n_bufs, 1));
}

static bb_result *run(bb_block *blk, const char *inputs_json, const char *context_json,
                      const bb_buffer *bufs, size_t n_bufs, int result_buffers)
{
    bb_result *r = result_new();
    if (!r)
        return NULL;
    if (!blk)
        return result_error(r, bb_error_new(BB_ERR_INVALID_REQUEST, "no block"));
    bb_executor *ex = blk->ex;
    bb_error *err = NULL;
    if (!inputs_json)
        inputs_json = "{}";
    size_t inputs_len = strlen(inputs_json);
    if (bb_frames_check_inputs(inputs_json, inputs_len, bufs, n_bufs, &ex->limits, &err) < 0 ||
        (context_json && bb_wire_check_context(context_json, &ex->limits, &err) < 0))
        return result_error(r, err);

    call_cache cache = {0};
    bb_call call = {
        .blk = blk,
        .inputs = inputs_json,
        .inputs_len = inputs_len,
        .context = context_json,
        .timeout_ms = ex->timeout_ms,
        .bufs = bufs,
        .n_bufs = n_bufs,
        .result_buffers = result_buffers,
        .cache = &cache,
    };
    bb_reply reply = {0};
    pthread_mutex_lock(&blk->lock);
    /* The call's deadline covers reading and checking the reply, not only the run. */
    bb_limits limits = ex->limits;
    limits.deadline_ms = bb_json_now_ms() + call.timeout_ms;
    int rc = ex->driver->run(ex->state, blk->state, &call, &reply, &err);
    pthread_mutex_unlock(&blk->lock);
    free(cache.envelope[0]);
    free(cache.envelope[1]);
    free(cache.converted);
    r->restarted = reply.restarted != 0;
    if (rc < 0) {
        free(reply.body);
        free(reply.denied);
        return result_error(r, err ? err : bb_error_new(BB_ERR_INTERNAL, "the driver failed silently"));
    }
    bb_wire_response resp = {0};
    bb_frames out_frames;
    if (reply_buffers_check(ex, &reply, &out_frames, &err) < 0) {
        free(reply.body);
        free(reply.denied);
        reply_buffers_release(reply.buffers, reply.n_buffers);
        return result_error(r, err);
    }
    limits.buffers = &out_frames;
    /* the body is freed inside, once the envelope is read */
    if (bb_wire_parse_response_owned(reply.body, reply.len, &limits, &resp, &err) < 0) {
        free(reply.denied);
        bb_wire_response_clear(&resp);
        reply_buffers_release(reply.buffers, reply.n_buffers);
        return result_error(r, err);
    }
    if (resp.success && resp.result &&
        strlen(resp.result) > ex->limits.max_result_bytes - bb_frames_total(&out_frames)) {
        free(reply.denied);
        bb_wire_response_clear(&resp);
        reply_buffers_release(reply.buffers, reply.n_buffers);
        return result_error(r, bb_error_new(BB_ERR_OUTPUT_LIMIT,
                                            "result: its text and buffers together are over the limit "
                                            "of %zu bytes", ex->limits.max_result_bytes));
    }
    if (resp.success) {
        r->bufs = reply.buffers;
        r->n_bufs = reply.n_buffers;
    } else {
        reply_buffers_release(reply.buffers, reply.n_buffers);
    }
    bb_error *violation = denial_verdict(reply.denied, &resp);
    if (reply.denied) {   /* the driver's own record replaces what the worker claimed */
        free(resp.denied_syscalls);
        resp.denied_syscalls = reply.denied;
        reply.denied = NULL;
    }
    result_from_response(r, &resp);
    bb_wire_response_clear(&resp);
    if (violation)
        result_error(r, violation);
    return r;
}

int bb_result_ok(const bb_result *res) { return res && res->ok; }
const char *bb_result_outputs(const bb_result *res) { return res && res->ok ? res->outputs : NULL; }
const char *bb_result_stdout(const bb_result *res) { return res ? res->stdout_text : ""; }
const char *bb_result_stderr(const bb_result *res) { return res ? res->stderr_text : ""; }
const char *bb_result_denied_syscalls(const bb_result *res) { return res ? res->denied : ""; }
const char *bb_result_debug_traces(const bb_result *res) { return res ? res->traces : "[]"; }
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
    free(res->outputs);
    free(res->stdout_text);
    free(res->stderr_text);
    free(res->denied);
    free(res->traces);
    bb_error_free(res->error);
    reply_buffers_release(res->bufs, res->n_bufs);
    free(res);
}
