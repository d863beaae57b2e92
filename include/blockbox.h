/* blockbox.h: the public C API of blockbox, which runs untrusted Roboflow custom
 * Python blocks in a sandbox (a local seccomp jail, or Modal over HTTPS). */
#ifndef BLOCKBOX_H
#define BLOCKBOX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Ten-line tour:
 *
 *   bb_error *err = NULL;
 *   bb_executor *ex = bb_executor_new(NULL, &err);          // config from the environment
 *   bb_block_spec spec = { .run_code = "def run(self, x):\n    return {'y': x + 1}\n" };
 *   bb_block *blk = bb_block_load(ex, &spec, &err);         // runs init once
 *   bb_result *res = bb_block_run(blk, "{\"x\": 41}", NULL); // inputs JSON, context JSON
 *   if (bb_result_ok(res)) puts(bb_result_outputs(res));    // {"y": 42}
 *   else puts(bb_error_message(bb_result_error(res)));
 *   bb_result_free(res); bb_block_free(blk); bb_executor_free(ex);
 *
 * Thread safety: an executor may be shared by any number of threads; a block may be
 * run from several threads (runs of one block are serialised, since they share one
 * Python interpreter). Every object is freed by exactly one call (NULL is accepted).
 */

#define BLOCKBOX_VERSION_STRING "0.1.0"
/* The version of the Python runtime (src/runtime, RUNTIME_VERSION in base.py) this library
 * speaks to; a backend answering with another version is a ConfigurationError. */
#define BLOCKBOX_RUNTIME_VERSION "1"

/* What went wrong. BB_ERR_BLOCK is the block's own exception (its class name is in
 * bb_error_type_name); the others are blockbox's, named as in DESIGN §3. */
typedef enum bb_error_kind {
    BB_OK = 0,
    BB_ERR_BLOCK,
    BB_ERR_TIMEOUT,
    BB_ERR_MEMORY_LIMIT,
    BB_ERR_OUTPUT_LIMIT,
    BB_ERR_SANDBOX_VIOLATION,
    BB_ERR_SANDBOX_CRASH,
    BB_ERR_INVALID_REQUEST,
    BB_ERR_INVALID_RESPONSE,
    BB_ERR_UNKNOWN_CODE_HASH,
    BB_ERR_BACKEND_UNAVAILABLE,
    BB_ERR_AUTHENTICATION_FAILED,
    BB_ERR_CONFIGURATION,
    BB_ERR_EXECUTION_DISABLED,
    BB_ERR_INTERNAL /* out of memory or a broken invariant inside blockbox */
} bb_error_kind;

typedef struct bb_error bb_error;
typedef struct bb_config bb_config;
typedef struct bb_executor bb_executor;
typedef struct bb_block bb_block;
typedef struct bb_result bb_result;

/* ---- errors: values that carry a kind, a type name and a message ---------- */
bb_error_kind bb_error_get_kind(const bb_error *err);
/* "Timeout", "InvalidRequest", … or, for BB_ERR_BLOCK, the exception class. */
const char *bb_error_type_name(const bb_error *err);
const char *bb_error_message(const bb_error *err);
/* Line in the user's own code (0 if unknown), function name and user-only traceback
 * (NULL if unknown). */
int bb_error_line(const bb_error *err);
const char *bb_error_function(const bb_error *err);
const char *bb_error_traceback(const bb_error *err);
/* The exit status the CLI uses for this error: 1 block, 2 bad input, 3 sandbox
 * limit or violation, 4 backend or configuration. */
int bb_error_exit_code(const bb_error *err);
/* The DESIGN §3 name of a kind ("Timeout", …); "BlockError" for BB_ERR_BLOCK. */
const char *bb_error_kind_name(bb_error_kind kind);
void bb_error_free(bb_error *err);

/* ---- configuration --------------------------------------------------------
 * A config is a set of named settings. bb_config_from_env reads the environment
 * variables of DESIGN §4 and README ("Configuration"); bb_config_set sets one
 * setting by key with the same parser. Keys and their variables:
 *   mode                WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE   local | modal | plugin name
 *   allow_execution     ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS
 *   timeout             BLOCKBOX_TIMEOUT          seconds per run (default 20)
 *   memory_mb           BLOCKBOX_MEMORY_MB        per worker (default 512)
 *   max_inputs          BLOCKBOX_MAX_INPUTS       runs per worker, 0 = unlimited
 *   …                   see README for the complete table.
 */
bb_config *bb_config_new(void);                 /* every setting at its default */
bb_config *bb_config_from_env(bb_error **err);  /* defaults overridden by the environment */
int bb_config_set(bb_config *cfg, const char *key, const char *value, bb_error **err);
/* The value of a setting as text (NULL if unset); secrets read back as "(set)". */
const char *bb_config_get(const bb_config *cfg, const char *key);
void bb_config_free(bb_config *cfg);

/* ---- executors ------------------------------------------------------------- */
/* cfg NULL: read from the environment. The executor copies what it needs. */
bb_executor *bb_executor_new(const bb_config *cfg, bb_error **err);
/* Name of the driver in use ("local", "modal", …). */
const char *bb_executor_driver(const bb_executor *ex);
/* A JSON object describing the backend (used by `blockbox doctor`); caller frees. */
char *bb_executor_describe(bb_executor *ex);
void bb_executor_free(bb_executor *ex);

/* ---- blocks ---------------------------------------------------------------- */
typedef struct bb_block_spec {
    const char *run_code;            /* required, UTF-8 */
    const char *run_function_name;   /* NULL: "run" */
    const char *init_code;           /* optional */
    const char *init_function_name;  /* NULL: "init" */
    const char *const *imports;      /* optional extra import lines */
    size_t n_imports;
    const char *workspace_id;        /* optional; modal uses it for the endpoint */
    int max_inputs;                  /* runs per worker; 0: the executor's setting */
} bb_block_spec;

/* Loads a block and runs its init. A NULL return sets *err; a block whose code is
 * broken is loaded anyway where the backend compiles lazily, and then fails on run. */
bb_block *bb_block_load(bb_executor *ex, const bb_block_spec *spec, bb_error **err);
/* md5 hex of the block (DESIGN §3 code_hash). */
const char *bb_block_code_hash(const bb_block *blk);
/* Runs the block once. inputs_json: a JSON object {name: value}; context_json: a
 * JSON object or NULL. Never returns NULL except when out of memory. */
bb_result *bb_block_run(bb_block *blk, const char *inputs_json, const char *context_json);
void bb_block_free(bb_block *blk);

/* ---- buffers: arrays and frames outside the JSON text (docs/wire.md "Buffers") ----
 * Large arrays and raw images travel beside the inputs JSON instead of inside it.
 * The JSON names them by index:
 *   {"_type": "ndarray", "dtype": "uint8", "shape": [1080, 1920, 3], "buffer": 0}
 *   {"_type": "workflow_image", "type": "raw", "shape": [1080, 1920, 3], "buffer": 1,
 *    "video_metadata": null, "parent_id": …}          (raw frame: uint8, BGR, C order)
 * Every buffer must be named exactly once, its length must be exactly
 * prod(shape) x itemsize, and the inputs text plus all buffers must fit in the input
 * limit (BLOCKBOX_MAX_INPUT_BYTES); otherwise the run is an InvalidRequest. The library
 * copies what it needs before bb_block_run_buffers returns: the caller may reuse its
 * memory at once. Results name buffers the same way (bb_result_buffer). The local driver
 * moves buffers through memory shared with its worker; the modal driver sends them in the
 * wire's JSON forms (arrays as base64 `data`, raw frames as lossless base64 PNG images, so
 * the block sees the same pixels in both modes; docs/wire.md "Buffers"). */
#define BB_MAX_BUFFERS 64   /* buffers per run, in either direction */

typedef struct bb_buffer {
    const void *data;   /* may be NULL only when len is 0 */
    size_t len;
} bb_buffer;

/* bb_block_run with buffers; bb_block_run(blk, in, ctx) is this call with none. */
bb_result *bb_block_run_buffers(bb_block *blk, const char *inputs_json, const char *context_json,
                                const bb_buffer *bufs, size_t n_bufs);

/* ---- results --------------------------------------------------------------- */
int bb_result_ok(const bb_result *res);
/* The outputs as JSON text (an object, or an array for batch blocks); NULL on failure. */
const char *bb_result_outputs(const bb_result *res);
const char *bb_result_stdout(const bb_result *res);   /* never NULL */
const char *bb_result_stderr(const bb_result *res);   /* never NULL */
/* Names of system calls the sandbox denied during the run, comma separated ("" if none). */
const char *bb_result_denied_syscalls(const bb_result *res);
/* The run's debug_traces.append(...) entries as JSON text: a list of objects
 * {"step", "value"} (+ "timestamp", "timestamp_timezone" when asked for), "[]" if none.
 * Kept on a failed run too (the entries written before the failure). Never NULL. */
const char *bb_result_debug_traces(const bb_result *res);
const bb_error *bb_result_error(const bb_result *res); /* NULL on success */
/* 1 if the block instance was restarted for this call: its previous process was lost
 * (it died between calls, or a failed call replaced it), so module state is fresh
 * and init ran again before this run. Not set for planned recycling (max_inputs). */
int bb_result_restarted(const bb_result *res);
/* Buffers the outputs name ({"_type": "ndarray", …, "buffer": i}); 0 when none. Each
 * was checked like an input's (exactly once, length = prod(shape) x itemsize, text +
 * buffers within BLOCKBOX_MAX_OUTPUT_BYTES). The memory is owned by the result, read-only
 * (aligned to 64 bytes by the built-in drivers), valid until bb_result_free: read it in
 * place, no copy. Only bb_block_run_buffers returns buffers, and to it every output
 * ndarray comes as one (a backend that answered in the JSON `data` form, such as Modal,
 * included; up to BB_MAX_BUFFERS of them); for bb_block_run the library writes them into
 * the outputs in the `data` form.
 * NULL (and *len 0) for an index out of range. */
size_t bb_result_buffer_count(const bb_result *res);
const void *bb_result_buffer(const bb_result *res, size_t i, size_t *len);
void bb_result_free(bb_result *res);

/* Library version, e.g. "0.1.0". */
const char *bb_version(void);

#ifdef __cplusplus
}
#endif
#endif
