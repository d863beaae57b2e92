/* serve.h: what the files of `blockbox serve` share: options, the request and reply of
 * the Roboflow remote-executor protocol, auth, the instance pool and the metrics. */
#ifndef BB_SERVE_H
#define BB_SERVE_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "blockbox.h"
#include <blockbox/text.h>

/* The command: `blockbox serve [options]`; returns the process exit status. */
int bb_serve_main(int argc, char **argv);

/* ---- growable text (sbuf.c) ------------------------------------------------- */
typedef struct sv_buf {
    bb_buf text;  /* the library's buffer (blockbox/text.h); failed: an allocation failed
                   * or the cap was passed, the text is unusable */
    size_t max;   /* 0: no cap */
} sv_buf;
void sv_buf_add(sv_buf *b, const void *p, size_t n);
void sv_buf_puts(sv_buf *b, const char *s);
void sv_buf_printf(sv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *sv_buf_steal(sv_buf *b, size_t *len);   /* NUL-terminated; NULL if failed */
void sv_buf_free(sv_buf *b);

/* ---- request bodies: capped gzip inflation (inflate.c) ---------------------- */
typedef struct sv_body sv_body;
enum { SV_BODY_OK = 0, SV_BODY_BAD = -1, SV_BODY_TOO_BIG = -2, SV_BODY_BUSY = -3 };
/* The budget of decoded request bytes held by all connections together (a server's,
 * shared by its bodies; every byte a body allocates is reserved here first). */
typedef struct sv_budget {
    pthread_mutex_t mu;
    size_t used, max;
} sv_budget;
/* Reserves n bytes; -1 (nothing reserved) when that would pass max. */
int sv_budget_take(sv_budget *g, size_t n);
void sv_budget_give(sv_budget *g, size_t n);
size_t sv_budget_used(sv_budget *g);
/* gzip: the body carries Content-Encoding: gzip. max: the cap on the bytes of the
 * decoded body (the inflated ones for gzip), enforced while inflating. g: the shared
 * budget its buffer is reserved from (SV_BODY_BUSY when it is spent). */
sv_body *sv_body_new(int gzip, size_t max, sv_budget *g);
/* Reserves n more bytes for this body's lifetime (e.g. the parsed copy of it). */
int sv_body_reserve(sv_body *b, size_t n);
int sv_body_feed(sv_body *b, const void *data, size_t n);
/* Ends the body; on success *out and *len are the decoded text (owned by b, NUL-terminated). */
int sv_body_finish(sv_body *b, const char **out, size_t *len);
const char *sv_body_why(const sv_body *b);
void sv_body_free(sv_body *b);

/* ---- the protocol (protocol.c, ndvalue.c) ----------------------------------- */
#define SV_MAX_IMPORTS 1024

/* 1 if s is an md5 in hex as the protocol spells it: 32 lowercase hex digits. */
int sv_is_md5(const char *s);

typedef struct sv_request {
    void *root;                    /* the parsed cJSON envelope (owns the strings below) */
    char code_hash[33];            /* the hash the call names (computed when code is sent) */
    const char *run_function_name; /* "run" when absent */
    const char *code_str;          /* NULL: a hash-only call */
    const char *imports[SV_MAX_IMPORTS];
    size_t n_imports;
    const char *init_code;         /* NULL: none */
    const char *init_name;         /* "init" when absent */
    char init_hash[33];            /* md5 of init code and name; "" when no init code */
    const char *inputs_json;       /* "{}" when absent */
    char *context_json;            /* the workflow_context object as text, or NULL */
    int data_form;                 /* the client reads ndarrays in blockbox's data form */
} sv_request;

/* Parses and checks an envelope. Returns 0, or -1 with a message in why. */
int sv_request_parse(const char *body, size_t len, sv_request *rq, char *why, size_t why_len);
void sv_request_free(sv_request *rq);

/* Reply envelopes (malloc'd JSON text). */
char *sv_reply_result(const bb_result *res, int data_form, size_t max_value_bytes, size_t *len);
char *sv_reply_error(const bb_error *err, size_t *len);
char *sv_reply_simple(const char *error_type, const char *message, size_t *len);
/* The bare str(exception) of a block error: bb_error_message without the
 * "Error in line N, in F: T: " prefix the core adds. Points into the message. */
const char *sv_bare_error(const bb_error *err);

/* ndarray translation: the outputs JSON with every {"_type":"ndarray","data":…}
 * rewritten to Roboflow's nested-list "value" form. Returns malloc'd text, or NULL
 * with why set (the value form would exceed max_bytes, or out of memory). */
char *sv_ndarray_to_value(const char *outputs_json, size_t max_bytes, const char **why);

/* ---- authentication (auth.c) ------------------------------------------------- */
typedef struct sv_auth sv_auth;
typedef enum { SV_AUTH_OK, SV_AUTH_MISSING, SV_AUTH_WRONG, SV_AUTH_FORBIDDEN } sv_auth_result;
/* Credentials from MODAL_TOKEN_ID/MODAL_TOKEN_SECRET (when both are set) and from a
 * tokens file (may be NULL). NULL on error, with the reason in why (never a secret). */
sv_auth *sv_auth_load(const char *tokens_file, char *why, size_t why_len);
size_t sv_auth_count(const sv_auth *a);
/* A workspace name: 1 to 128 of A-Z a-z 0-9 _ - (NULL is not one). */
int sv_workspace_ok(const char *s);
sv_auth_result sv_auth_check(const sv_auth *a, const char *key, const char *secret,
                             const char *workspace);
void sv_auth_free(sv_auth *a);

/* ---- the instance pool (pool.c) ---------------------------------------------- */
typedef struct sv_limits {
    int max_runs;            /* concurrent runs (and loads), all workspaces */
    int max_queue;           /* calls waiting for a run slot or an instance */
    int max_runs_per_ws;     /* concurrent runs of one workspace */
    int max_queue_per_ws;    /* running + queued calls of one workspace */
    int max_instances;       /* live instances, all workspaces */
    int max_per_block;       /* instances of one (workspace, code, init) */
    int max_instances_per_ws; /* live instances of one workspace (0: no quota) */
    long memory_budget_mb;   /* live instances x per-worker memory limit */
    long worker_memory_mb;   /* the per-worker memory limit (BLOCKBOX_MEMORY_MB) */
    int max_inputs;          /* runs per worker (0: the executor's setting) */
    int max_code_entries;    /* blocks whose code is kept for hash-only calls */
    long queue_wait_ms;      /* longest wait in the queue before 503 */
} sv_limits;

typedef struct sv_pool sv_pool;
typedef struct sv_lease sv_lease;
typedef enum {
    SV_POOL_OK,
    SV_POOL_UNKNOWN_HASH,   /* a hash-only call for code this server does not hold */
    SV_POOL_BUSY,           /* queue or the workspace's share full: 429 */
    SV_POOL_UNAVAILABLE,    /* draining, or waited too long: 503 */
    SV_POOL_LOAD_FAILED,    /* bb_block_load failed: *err says why */
    SV_POOL_COLLISION       /* same hash, different code: refused */
} sv_pool_status;

typedef struct sv_pool_stats {
    long live, loading, idle, running, queued, code_entries, evictions, loads;
} sv_pool_stats;

sv_pool *sv_pool_new(bb_executor *ex, const sv_limits *lim);
sv_pool_status sv_pool_acquire(sv_pool *p, const char *workspace, const sv_request *rq,
                               sv_lease **out, bb_error **err);
bb_block *sv_lease_block(sv_lease *l);
void sv_pool_release(sv_pool *p, sv_lease *l);
/* Refuses new calls from now on; waits up to timeout_ms for the running ones.
 * Returns the number of calls still running. */
long sv_pool_drain(sv_pool *p, long timeout_ms);
void sv_pool_stats_get(sv_pool *p, sv_pool_stats *st);
void sv_pool_free(sv_pool *p);

/* ---- metrics and the call log (metrics.c) ------------------------------------- */
typedef struct sv_metrics sv_metrics;
sv_metrics *sv_metrics_new(void);
/* One finished execute call: HTTP status, the error kind (BB_OK on success), its time. */
void sv_metrics_call(sv_metrics *m, int status, bb_error_kind kind, double seconds);
char *sv_metrics_render(sv_metrics *m, sv_pool *p, size_t *len);
void sv_metrics_free(sv_metrics *m);
/* The one log line of a call; names the block only by its hash. */
void sv_log_call(const char *workspace, const char *code_hash, int status, const char *outcome,
                 double seconds);
void sv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- the HTTP server (http.c) -------------------------------------------------- */
typedef struct sv_server_opts {
    const char *host;
    int port;
    const char *tls_cert, *tls_key;   /* PEM files, both or neither */
    size_t max_body;                  /* decoded request bytes */
    size_t max_value_bytes;           /* ndarray value-form text in one reply */
    unsigned max_connections;
    unsigned max_connections_per_ip;  /* open connections from one address */
    unsigned idle_timeout_s;          /* a connection silent this long is closed */
    unsigned body_deadline_s;         /* a request body still arriving after this is cut */
    size_t max_request_bytes;         /* decoded request bytes of all connections together */
} sv_server_opts;

typedef struct sv_server sv_server;
/* Starts listening; NULL with why on failure. *port receives the bound port. */
sv_server *sv_server_start(const sv_server_opts *o, sv_auth *auth, sv_pool *pool,
                           sv_metrics *metrics, int *port, char *why, size_t why_len);
/* Stops accepting new connections (in-flight ones continue). */
void sv_server_quiesce(sv_server *s);
/* Waits up to timeout_ms until every begun call has had its reply sent; returns how
 * many have not. */
long sv_server_drain(sv_server *s, long timeout_ms);
void sv_server_stop(sv_server *s);

#endif
