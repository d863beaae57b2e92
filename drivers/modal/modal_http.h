/* modal_http.h: the modal driver's HTTPS transport. One request to the endpoint with
 * libcurl: verified TLS, no proxy, shared DNS and TLS sessions, kept-alive handles. */
#ifndef BB_MODAL_HTTP_H
#define BB_MODAL_HTTP_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stddef.h>

#include "buf.h"
#include "modal_url.h"

/* What the driver counts (describe); the transport adds its requests and connections. */
typedef struct bb_modal_counters {
    atomic_long calls;          /* run() calls */
    atomic_long requests;       /* HTTP requests sent (attempts, redirects, resends) */
    atomic_long connections;    /* new connections made (CURLINFO_NUM_CONNECTS) */
    atomic_long retries;        /* attempts repeated after 429/502/503/504 or a connect failure */
    atomic_long resends;        /* full-code resends after UnknownCodeHash */
    atomic_long redirects;      /* 303 hops followed */
    atomic_long gzip_requests;  /* request bodies sent gzip-compressed */
    atomic_long encoded_requests; /* bodies with buffers or raw frames written into JSON forms */
    atomic_long hash_only;      /* requests sent without the code */
    atomic_long server_time_us; /* sum of Server-Timing dur= reported by the server */
    atomic_long last_server_time_us;
} bb_modal_counters;

/* What one request came back with. */
typedef struct bb_modal_attempt {
    CURLcode code;
    long status;
    int sent;               /* request bytes went out: the server may have acted on it */
    int over;               /* response over the cap */
    int oom;
    long retry_after_ms;    /* -1 if none */
    char trusted[40];       /* Blockbox-Error header: a failure the app itself decided */
    char *location;         /* 303 target (malloc'd) */
    bb_buf body;
} bb_modal_attempt;

typedef struct bb_modal_http bb_modal_http;

/* libcurl's process-wide initialisation, once: 0, or -1 if libcurl failed to start. */
int bb_modal_http_global_init(void);

/* A transport with prebuilt header lists (the auth ones carry the token; wiped on
 * close), ca_file (NULL: the system's CAs) and a cap of max_response bytes on every
 * response body. count is the driver's and must outlive it. NULL: out of memory. */
bb_modal_http *bb_modal_http_open(const char *token_id, const char *token_secret, const char *ca_file,
                                  size_t max_response, bb_modal_counters *count);
void bb_modal_http_close(bb_modal_http *t);

/* Sends one request to url (target: its checked facts): POST of body (gzip when gz)
 * or, with body NULL, a GET; the Modal auth headers only when with_auth. The whole
 * request ends within budget_ms. *r is overwritten; free it with bb_modal_attempt_clear. */
void bb_modal_http_send(bb_modal_http *t, const char *url, const bb_modal_url_info *target, int with_auth,
                        const char *body, size_t body_len, int gz, long budget_ms, bb_modal_attempt *r);
void bb_modal_attempt_clear(bb_modal_attempt *r);

#endif
