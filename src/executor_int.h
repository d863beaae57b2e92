/* executor_int.h: the executor's objects (executor, block, call, result), shared by
 * the core's executor.c (executors, blocks, runs), call.c and result.c. */
#ifndef BB_EXECUTOR_INT_H
#define BB_EXECUTOR_INT_H

#include <blockbox/driver.h>
#include <pthread.h>

#include "config.h"
#include "frames.h"
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
    /* The texts the caller reads, taken from the checked response (wire.h): result (the
     * outputs), stdout_text, stderr_text, denied_syscalls and debug_traces; the other
     * fields stay NULL (a failure is `error`). */
    bb_wire_response text;
    int restarted;
    bb_error *error;
    bb_reply_buffer *bufs;  /* the driver's, checked against the outputs */
    size_t n_bufs;
};

/* ---- result.c ---- */
bb_result *bb_result_new_empty(void);      /* NULL when out of memory */
/* Makes r a failure with e (an Internal error when e is NULL); returns r. */
bb_result *bb_result_fail(bb_result *r, bb_error *e);
/* Turns a checked response envelope into a result (taking its strings). */
bb_result *bb_result_from_response(bb_result *r, bb_wire_response *resp);
/* SandboxViolation when the driver saw a denial and the block failed as a denied call
 * makes it fail (docs/SECURITY.md); NULL otherwise. */
bb_error *bb_denial_verdict(const char *observed, const bb_wire_response *resp);
void bb_reply_buffers_release(bb_reply_buffer *bufs, size_t n);
/* The reply's buffers, before its text is read: count, total and memory. */
int bb_reply_buffers_check(const bb_executor *ex, const bb_reply *reply, bb_frames *frames, bb_error **err);
/* For a JSON-only caller: result buffers written into the data form. */
bb_result *bb_result_without_buffers(bb_result *r);
/* For a caller that reads buffers: arrays in the data form moved into buffers. */
bb_result *bb_result_with_buffers(bb_result *r);

#endif
