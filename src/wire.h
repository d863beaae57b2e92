/* wire.h: the one serializer. Builds and validates the DESIGN §3 request and
 * response envelopes; everything that comes back from a backend is hostile. */
#ifndef BB_WIRE_H
#define BB_WIRE_H

#include <stddef.h>

#include <blockbox/driver.h>

#include "blockbox.h"
#include "buf.h"
#include "json_text.h"
#include "wire_limits.h"

struct cJSON;

/* Checks every typed value (DESIGN §3 `_type` tags, the untagged {type: base64}
 * image) inside a parsed JSON value: known tags, required fields with the right
 * types, valid base64, ndarray dtype/shape/data length agreement, depth. */
int bb_wire_check_values(const struct cJSON *value, const bb_limits *limits, bb_error_kind kind,
                         const char *what, bb_error **err);

/* Validates the inputs text (object of name -> value) and context text (object, or
 * NULL). Errors are InvalidRequest. */
int bb_wire_check_inputs(const char *inputs_json, size_t len, const bb_limits *limits,
                         bb_error **err);
int bb_wire_check_context(const char *context_json, const bb_limits *limits, bb_error **err);

/* Code must be valid UTF-8 without NUL bytes and at most max_code_bytes. */
int bb_wire_check_code(const char *code, const char *what, const bb_limits *limits, bb_error **err);
/* An import line: one line of UTF-8, no NUL, no newline. */
int bb_wire_check_import(const char *line, bb_error **err);
/* A function name: a Python identifier (ASCII letters, digits, underscore). */
int bb_wire_check_identifier(const char *name, const char *what, bb_error **err);

/* md5 hex of run_code + "\n" + "\n".join(imports). */
void bb_wire_code_hash(const char *run_code, const char *const *imports, size_t n_imports,
                       char out[33]);

/* A block as the envelopes carry it: the fields drivers are told (driver.h; the wire
 * reads code_hash, run_code, the names, init_code and the imports, not workspace_id,
 * max_inputs or the load envelope) and the depth limit the runtime is sent. */
typedef struct bb_wire_block {
    bb_block_info info;              /* code_hash NULL: computed; names NULL: run, init */
    int max_depth;                   /* > 0: sent as limits.max_depth, so the runtime refuses
                                      * deeper outputs as the block's own error */
} bb_wire_block;

/* Appends a request envelope to out. with_code = 0 leaves out code_str, imports and
 * the init code (hash-only). inputs_json NULL leaves out inputs_json (a load-only
 * request: compile and run init). context_json NULL sends {}. The texts must have
 * been checked already; inputs_json is embedded as a JSON string without reparsing. */
int bb_wire_build_request(const bb_wire_block *block, int with_code, const char *inputs_json,
                          size_t inputs_len, const char *context_json, bb_buf *out,
                          bb_error **err);
/* The same with the inputs_json value written by inputs(ctx, out, err): it appends the
 * whole JSON string literal, quotes included (src/frames.c writes buffers into it as it
 * goes). inputs NULL: a load-only request. inputs_hint: its expected size, reserved. */
typedef int (*bb_wire_inputs_fn)(void *ctx, bb_buf *out, bb_error **err);
int bb_wire_build_request_with(const bb_wire_block *block, int with_code, bb_wire_inputs_fn inputs,
                               void *ctx, size_t inputs_hint, const char *context_json, bb_buf *out,
                               bb_error **err);

typedef struct bb_wire_response {
    int success;
    char *result;            /* success: the JSON text of the outputs (checked) */
    char *stdout_text;       /* never NULL after a successful parse */
    char *stderr_text;       /* never NULL after a successful parse */
    char *error_type;        /* failure: never NULL */
    char *error;             /* failure: never NULL */
    int line_number;
    char *function_name;
    char *traceback;
    char *denied_syscalls;   /* extension: comma-joined syscall names, "" if none */
    char *debug_traces;      /* extension: canonical JSON text of the checked list, "[]" if none */
    char *runtime_version;   /* extension: NULL if the server did not say */
} bb_wire_response;

/*
 * Parses and validates a response envelope without building a tree of it
 * (wire_reply.c): keys outside the allowlist are refused before their value is read;
 * strings are decoded straight into their (capped) fields. Any deviation is
 * InvalidResponse; a result over max_result_bytes or with more than max_values
 * values is OutputLimit; past limits->deadline_ms it is Timeout; streams over
 * max_stream_bytes are cut (with a marker), not refused. On success `result` is the
 * canonical text of the checked value, written by this side, never the bytes received.
 */
int bb_wire_parse_response(const char *body, size_t len, const bb_limits *limits,
                           bb_wire_response *out, bb_error **err);
/* The same, taking ownership of body (malloc'd): it is freed as soon as the envelope
 * is read, before the result is checked, so the two never weigh on memory at once. */
int bb_wire_parse_response_owned(char *body, size_t len, const bb_limits *limits,
                                 bb_wire_response *out, bb_error **err);
void bb_wire_response_clear(bb_wire_response *r);

/* base64 beyond text.h's encode and decode (the typed-value checks and the buffers). */
/* Decodes canonical base64 into out (cap bytes at most): 0 with *out_len, or -1. */
int bb_base64_decode_into(const char *in, size_t len, void *out, size_t cap, size_t *out_len);
/* Validates base64 text without decoding; returns the decoded length or -1. */
long long bb_base64_check(const char *in, size_t len);

#endif
