/* executor.c: the core. Picks a driver from the registry, checks every request
 * before a backend sees it and every response before the caller does (executors,
 * blocks and the run path; a call's view for drivers is call.c, results result.c). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "executor_int.h"
#include "json_scan.h"

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
    bb_reply_buffers_release(reply.buffers, reply.n_buffers);
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
        .info = {
            .code_hash = b->code_hash,
            .run_code = b->run_code,
            .run_function_name = b->run_name,
            .init_code = b->init_code,
            .init_function_name = b->init_name,
            .imports = (const char *const *)b->imports,
            .n_imports = b->n_imports,
            .workspace_id = b->workspace_id,
            .max_inputs = spec->max_inputs ? spec->max_inputs : (int)ex->max_inputs,
        },
        .max_depth = ex->limits.max_depth,   /* the runtime refuses deeper outputs itself */
    };
    bb_buf load = {0};
    if (bb_wire_build_request(&b->wire, 1, NULL, 0, NULL, &load, err) < 0) {
        bb_buf_free(&load);
        block_strings_free(b);
        free(b);
        return NULL;
    }
    bb_block_info info = b->wire.info;   /* what the driver is told: the block and its load envelope */
    info.load_envelope = load.data;
    info.load_envelope_len = load.len;
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

static bb_result *run(bb_block *blk, const char *inputs_json, const char *context_json,
                      const bb_buffer *bufs, size_t n_bufs, int result_buffers);

bb_result *bb_block_run(bb_block *blk, const char *inputs_json, const char *context_json)
{
    return bb_result_without_buffers(run(blk, inputs_json, context_json, NULL, 0, 0));
}

bb_result *bb_block_run_buffers(bb_block *blk, const char *inputs_json, const char *context_json,
                                const bb_buffer *bufs, size_t n_bufs)
{
    return bb_result_with_buffers(run(blk, inputs_json, context_json, bufs, n_bufs, 1));
}

static bb_result *run(bb_block *blk, const char *inputs_json, const char *context_json,
                      const bb_buffer *bufs, size_t n_bufs, int result_buffers)
{
    bb_result *r = bb_result_new_empty();
    if (!r)
        return NULL;
    if (!blk)
        return bb_result_fail(r, bb_error_new(BB_ERR_INVALID_REQUEST, "no block"));
    bb_executor *ex = blk->ex;
    bb_error *err = NULL;
    if (!inputs_json)
        inputs_json = "{}";
    size_t inputs_len = strlen(inputs_json);
    if (bb_frames_check_inputs(inputs_json, inputs_len, bufs, n_bufs, &ex->limits, &err) < 0 ||
        (context_json && bb_wire_check_context(context_json, &ex->limits, &err) < 0))
        return bb_result_fail(r, err);

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
        return bb_result_fail(r, err ? err : bb_error_new(BB_ERR_INTERNAL, "the driver failed silently"));
    }
    bb_wire_response resp = {0};
    bb_frames out_frames;
    if (bb_reply_buffers_check(ex, &reply, &out_frames, &err) < 0) {
        free(reply.body);
        free(reply.denied);
        bb_reply_buffers_release(reply.buffers, reply.n_buffers);
        return bb_result_fail(r, err);
    }
    limits.buffers = &out_frames;
    /* the body is freed inside, once the envelope is read */
    if (bb_wire_parse_response_owned(reply.body, reply.len, &limits, &resp, &err) < 0) {
        free(reply.denied);
        bb_wire_response_clear(&resp);
        bb_reply_buffers_release(reply.buffers, reply.n_buffers);
        return bb_result_fail(r, err);
    }
    if (resp.success && resp.result &&
        strlen(resp.result) > ex->limits.max_result_bytes - bb_frames_total(&out_frames)) {
        free(reply.denied);
        bb_wire_response_clear(&resp);
        bb_reply_buffers_release(reply.buffers, reply.n_buffers);
        return bb_result_fail(r, bb_error_new(BB_ERR_OUTPUT_LIMIT,
                                            "result: its text and buffers together are over the limit "
                                            "of %zu bytes", ex->limits.max_result_bytes));
    }
    if (resp.success) {
        r->bufs = reply.buffers;
        r->n_bufs = reply.n_buffers;
    } else {
        bb_reply_buffers_release(reply.buffers, reply.n_buffers);
    }
    bb_error *violation = bb_denial_verdict(reply.denied, &resp);
    if (reply.denied) {   /* the driver's own record replaces what the worker claimed */
        free(resp.denied_syscalls);
        resp.denied_syscalls = reply.denied;
        reply.denied = NULL;
    }
    bb_result_from_response(r, &resp);
    bb_wire_response_clear(&resp);
    if (violation)
        bb_result_fail(r, violation);
    return r;
}
