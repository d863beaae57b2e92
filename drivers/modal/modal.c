/* modal.c: the modal driver, which runs a block by POSTing its DESIGN §3 envelope to the
 * workspace's Modal web endpoint over verified TLS, with retries only where no run happened. */
#include <blockbox/driver.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "error.h"
#include "modal_url.h"
#include "modal_util.h"
#include "wire.h"

#define MAX_TOKEN_LEN 512
#define POOL_KEEP 64            /* idle easy handles (each with its live connections) kept */
#define CONN_MAX_AGE_S 25L      /* reuse an idle connection at most this old */
#define USER_AGENT "blockbox/" BLOCKBOX_VERSION " (modal driver)"

typedef struct modal_counters {
    atomic_long calls;          /* run() calls */
    atomic_long requests;       /* HTTP requests sent (attempts, redirects, resends) */
    atomic_long connections;    /* new connections made (CURLINFO_NUM_CONNECTS) */
    atomic_long retries;        /* attempts repeated after 429/502/503/504 or a connect failure */
    atomic_long resends;        /* full-code resends after UnknownCodeHash */
    atomic_long redirects;      /* 303 hops followed */
    atomic_long gzip_requests;  /* request bodies sent gzip-compressed */
    atomic_long hash_only;      /* requests sent without the code */
    atomic_long server_time_us; /* sum of Server-Timing dur= reported by the server */
    atomic_long last_server_time_us;
} modal_counters;

typedef struct modal_driver {
    char *override_url;         /* MODAL_WEB_ENDPOINT_URL, checked */
    char *workspace_name;       /* MODAL_WORKSPACE_NAME */
    char *default_workspace;    /* may be NULL */
    char *ca_file;
    int allow_anonymous;
    long retries;
    size_t max_response;
    /* [auth][gzip]: prebuilt, read-only header lists (the auth ones carry the secret) */
    struct curl_slist *headers[2][2];
    CURLSH *share;              /* DNS cache and TLS sessions shared by all handles */
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_lock;  /* guards the idle handle pool */
    CURL *pool[POOL_KEEP];
    size_t n_pool;
    modal_counters count;
} modal_driver;

typedef struct modal_block {
    char *url;                  /* the endpoint of this block's workspace */
    char origin[300];           /* scheme://host:port, for messages (no query, no secrets) */
    char app[BB_MODAL_MAX_WORKSPACE_ID + 32];
    char code_hash[33];
    int server_knows_code;      /* a call with the code was answered: send hash-only */
    int has_init;               /* init code is not in the hash: such a block always sends its code */
} modal_block;

/* ---- small helpers ---------------------------------------------------- */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

static unsigned random32(void)
{
    unsigned r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (unsigned)now_ms() * 2654435761u;
    return r;
}

/* Wipes and frees a string that held a secret. */
static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void free_secret_list(struct curl_slist *list)
{
    for (struct curl_slist *p = list; p; p = p->next)
        if (p->data)
            explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(list);
}

/* A token must be printable ASCII without blanks: anything else could split headers. */
static int check_token(const char *value, const char *var, bb_error **err)
{
    size_t n = strlen(value);
    if (n > MAX_TOKEN_LEN)
        return bb_fail(err, BB_ERR_CONFIGURATION, "%s is longer than %d characters", var, MAX_TOKEN_LEN);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] <= 0x20 || (unsigned char)value[i] >= 0x7f)
            return bb_fail(err, BB_ERR_CONFIGURATION,
                           "%s holds a blank, control or non-ASCII character (character %zu)", var, i + 1);
    return 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;
/* libcurl's global state belongs to the process: initialised once, never cleaned up
 * (another part of the program may use libcurl too). */
static void curl_init_once(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
    modal_driver *d = user;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&d->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
    modal_driver *d = user;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&d->share_locks[data]);
}

/* ---- open / close ------------------------------------------------------ */

static void modal_close(void *state)
{
    modal_driver *d = state;
    if (!d)
        return;
    for (size_t i = 0; i < d->n_pool; i++)
        curl_easy_cleanup(d->pool[i]);
    if (d->share)
        curl_share_cleanup(d->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&d->share_locks[i]);
    pthread_mutex_destroy(&d->pool_lock);
    for (int a = 0; a < 2; a++)
        for (int g = 0; g < 2; g++)
            free_secret_list(d->headers[a][g]);
    free(d->override_url);
    free(d->workspace_name);
    free(d->default_workspace);
    free(d->ca_file);
    free(d);
}

static struct curl_slist *build_headers(const char *token_id, const char *token_secret, int gzip)
{
    struct curl_slist *list = NULL, *next;
    char *line = NULL;
    const char *fixed[] = {"Content-Type: application/json", "Accept: application/json",
                           "Expect:", gzip ? "Content-Encoding: gzip" : NULL};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (!fixed[i])
            continue;
        if (!(next = curl_slist_append(list, fixed[i])))
            goto fail;
        list = next;
    }
    if (token_id) {
        for (int k = 0; k < 2; k++) {
            if (asprintf(&line, "%s: %s", k ? "Modal-Secret" : "Modal-Key", k ? token_secret : token_id) < 0) {
                line = NULL;
                goto fail;
            }
            next = curl_slist_append(list, line);
            free_secret(line);
            line = NULL;
            if (!next)
                goto fail;
            list = next;
        }
    }
    return list;
fail:
    free_secret_list(list);
    return NULL;
}

static int modal_open(const bb_config *cfg, void **state, bb_error **err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK)
        return bb_fail(err, BB_ERR_INTERNAL, "libcurl failed to initialise");
    int no_id = !cfg->modal_token_id || !*cfg->modal_token_id;
    int no_secret = !cfg->modal_token_secret || !*cfg->modal_token_secret;
    if (no_id || no_secret)
        return bb_fail(err, BB_ERR_CONFIGURATION,
                       "modal mode needs a Modal proxy-auth token: set MODAL_TOKEN_ID and "
                       "MODAL_TOKEN_SECRET (missing: %s)",
                       no_id && no_secret ? "MODAL_TOKEN_ID, MODAL_TOKEN_SECRET"
                                          : no_id ? "MODAL_TOKEN_ID" : "MODAL_TOKEN_SECRET");
    if (check_token(cfg->modal_token_id, "MODAL_TOKEN_ID", err) < 0 ||
        check_token(cfg->modal_token_secret, "MODAL_TOKEN_SECRET", err) < 0)
        return -1;
    if (cfg->modal_endpoint_url &&
        bb_modal_check_url(cfg->modal_endpoint_url, "MODAL_WEB_ENDPOINT_URL", BB_ERR_CONFIGURATION, NULL,
                           err) < 0)
        return -1;
    if (cfg->workspace_id && bb_modal_check_workspace_id(cfg->workspace_id, err) < 0)
        return -1;
    if (cfg->ca_file && access(cfg->ca_file, R_OK) != 0)
        return bb_fail(err, BB_ERR_CONFIGURATION, "BLOCKBOX_CA_FILE '%s' cannot be read", cfg->ca_file);
    if (!cfg->modal_endpoint_url) {
        /* validates MODAL_WORKSPACE_NAME now rather than at the first load */
        char *probe = bb_modal_endpoint_url(NULL, cfg->modal_workspace_name ? cfg->modal_workspace_name
                                                                            : "roboflow",
                                            "probe", err);
        if (!probe)
            return -1;
        free(probe);
    }

    modal_driver *d = calloc(1, sizeof *d);
    if (!d)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    pthread_mutex_init(&d->pool_lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&d->share_locks[i], NULL);
    d->allow_anonymous = cfg->modal_allow_anonymous;
    d->retries = cfg->modal_retries < 0 ? 0 : cfg->modal_retries;
    bb_limits limits;
    bb_limits_default(&limits);
    limits.max_result_bytes = (size_t)cfg->max_output_bytes;
    limits.max_stream_bytes = (size_t)cfg->max_stream_bytes;
    d->max_response = bb_limits_max_response(&limits);
    int oom = 0;
#define DUP(field, value)                                                                          \
    do {                                                                                           \
        if ((value) && !(d->field = strdup(value)))                                                  \
            oom = 1;                                                                               \
    } while (0)
    DUP(override_url, cfg->modal_endpoint_url);
    DUP(workspace_name, cfg->modal_workspace_name ? cfg->modal_workspace_name : "roboflow");
    DUP(default_workspace, cfg->workspace_id);
    DUP(ca_file, cfg->ca_file);
#undef DUP
    for (int a = 0; a < 2; a++)
        for (int g = 0; g < 2; g++)
            if (!(d->headers[a][g] = build_headers(a ? cfg->modal_token_id : NULL, cfg->modal_token_secret, g)))
                oom = 1;
    d->share = curl_share_init();
    if (!d->share || oom) {
        modal_close(d);
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    curl_share_setopt(d->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(d->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(d->share, CURLSHOPT_USERDATA, d);
    curl_share_setopt(d->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(d->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *state = d;
    return 0;
}

/* ---- load / unload ----------------------------------------------------- */

static void origin_of(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    snprintf(out, size, "(endpoint)");
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port)
            snprintf(out, size, "%s://%s:%s", scheme, host, port);
        else
            snprintf(out, size, "%s://%s", scheme, host);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

static int modal_load(void *state, const bb_block_info *info, void **block_state, bb_error **err)
{
    modal_driver *d = state;
    const char *ws = info->workspace_id && *info->workspace_id ? info->workspace_id : d->default_workspace;
    if (!ws) {
        if (!d->allow_anonymous)
            return bb_fail(err, BB_ERR_CONFIGURATION,
                           "modal mode needs a workspace id (--workspace, BLOCKBOX_WORKSPACE_ID or the "
                           "block's workspace_id); set MODAL_ALLOW_ANONYMOUS_EXECUTION=True to run without one");
        ws = "anonymous";
    }
    modal_block *b = calloc(1, sizeof *b);
    if (!b)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    b->url = bb_modal_endpoint_url(d->override_url, d->workspace_name, ws, err);
    if (!b->url) {
        free(b);
        return -1;
    }
    bb_modal_app_name(ws, b->app, sizeof b->app);
    origin_of(b->url, b->origin, sizeof b->origin);
    snprintf(b->code_hash, sizeof b->code_hash, "%s", info->code_hash ? info->code_hash : "");
    b->has_init = info->init_code != NULL;
    *block_state = b;
    return 0;
}

static void modal_unload(void *state, void *block_state)
{
    modal_block *b = block_state;
    if (!b)
        return;
    free(b->url);
    free(b);
}

/* ---- one HTTP exchange ------------------------------------------------- */

typedef struct upload {
    const char *data;
    size_t len, pos;
} upload;

/* No seek callback on purpose: libcurl silently resends a request whose reused
 * connection died before any answer byte; without a way to rewind the body it fails
 * with CURLE_SEND_FAIL_REWIND instead, so a block that may have run is not run twice. */
static size_t read_body(char *dst, size_t size, size_t nmemb, void *user)
{
    upload *u = user;
    size_t n = size * nmemb, left = u->len - u->pos;
    if (n > left)
        n = left;
    memcpy(dst, u->data + u->pos, n);
    u->pos += n;
    return n;
}

typedef struct sink {
    bb_buf buf;
    size_t cap;
    int over;   /* the body passed the cap: refused while receiving */
    int oom;
} sink;

static size_t write_body(char *src, size_t size, size_t nmemb, void *user)
{
    sink *s = user;
    size_t n = size * nmemb;
    if (n > s->cap || s->buf.len > s->cap - n) {
        s->over = 1;
        return 0;
    }
    if (bb_buf_append(&s->buf, src, n) < 0) {
        s->oom = 1;
        return 0;
    }
    return n;
}

static CURL *pool_get(modal_driver *d)
{
    CURL *h = NULL;
    pthread_mutex_lock(&d->pool_lock);
    if (d->n_pool)
        h = d->pool[--d->n_pool];
    pthread_mutex_unlock(&d->pool_lock);
    if (h)
        curl_easy_reset(h);   /* keeps live connections, drops every option */
    else
        h = curl_easy_init();
    return h;
}

static void pool_put(modal_driver *d, CURL *h)
{
    pthread_mutex_lock(&d->pool_lock);
    if (d->n_pool < POOL_KEEP) {
        d->pool[d->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&d->pool_lock);
    if (h)
        curl_easy_cleanup(h);
}

/* What one request came back with. */
typedef struct attempt_result {
    CURLcode code;
    long status;
    int sent;               /* request bytes went out: the server may have acted on it */
    int over;               /* response over the cap */
    int oom;
    long retry_after_ms;    /* -1 if none */
    char trusted[40];       /* Blockbox-Error header: a failure the app itself decided */
    char *location;         /* 303 target (malloc'd) */
    bb_buf body;
} attempt_result;

static void attempt_clear(attempt_result *r)
{
    free(r->location);
    bb_buf_free(&r->body);
    memset(r, 0, sizeof *r);
}

/* Sends one request: POST of body (gzip when gz) or, with body NULL, a GET. */
static void send_request(modal_driver *d, const char *url, const bb_modal_url_info *target, int with_auth,
                         const char *body, size_t body_len, int gz, long budget_ms, attempt_result *r)
{
    memset(r, 0, sizeof *r);
    r->retry_after_ms = -1;
    r->status = 0;
    CURL *h = pool_get(d);
    if (!h) {
        r->code = CURLE_OUT_OF_MEMORY;
        return;
    }
    upload up = {body, body_len, 0};
    sink sk = {.cap = d->max_response};
    const char *protocols = target->plain_http ? "http" : "https";
    long connect_ms = budget_ms < BB_MODAL_CONNECT_MAX_MS ? budget_ms : BB_MODAL_CONNECT_MAX_MS;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  /* 303s are followed by hand */
    curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");           /* no proxy from the environment */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (d->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, d->ca_file);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_SHARE, d->share);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, CONN_MAX_AGE_S);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms > 0 ? connect_ms : 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, budget_ms > 0 ? budget_ms : 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, d->headers[with_auth ? 1 : 0][body && gz ? 1 : 0]);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sk);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }

    r->code = curl_easy_perform(h);
    atomic_fetch_add(&d->count.requests, 1);
    long connects = 0, request_size = 0;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    atomic_fetch_add(&d->count.connections, connects);
    r->sent = request_size > 0;
    r->over = sk.over;
    r->oom = sk.oom;
    struct curl_header *hdr = NULL;
    if (r->code == CURLE_OK) {
        if (curl_easy_header(h, "Retry-After", 0, CURLH_HEADER, -1, &hdr) == CURLHE_OK)
            r->retry_after_ms = bb_modal_parse_retry_after(hdr->value);
        if (curl_easy_header(h, "Blockbox-Error", 0, CURLH_HEADER, -1, &hdr) == CURLHE_OK)
            snprintf(r->trusted, sizeof r->trusted, "%s", hdr->value);
        if (curl_easy_header(h, "Server-Timing", 0, CURLH_HEADER, -1, &hdr) == CURLHE_OK) {
            long us = bb_modal_parse_server_timing(hdr->value);
            if (us >= 0) {
                atomic_fetch_add(&d->count.server_time_us, us);
                atomic_store(&d->count.last_server_time_us, us);
            }
        }
        char *loc = NULL;
        if (r->status >= 300 && r->status < 400 &&
            curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
            r->location = strdup(loc);
    }
    r->body = sk.buf;
    pool_put(d, h);
}

/* ---- the call ------------------------------------------------------------ */

typedef struct exchange {
    modal_driver *d;
    modal_block *b;
    long deadline;          /* monotonic ms */
    long timeout_ms;        /* the block's own timeout, for messages */
} exchange;

static int same_origin(const bb_modal_url_info *a, const bb_modal_url_info *b)
{
    return a->plain_http == b->plain_http && a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

static int fail_timeout(const exchange *x, bb_error **err)
{
    return bb_fail(err, BB_ERR_TIMEOUT,
                   "the Modal endpoint %s did not answer within %.1f s (block timeout %.1f s plus the "
                   "cold-start margin)",
                   x->b->origin, (double)bb_modal_deadline_ms(x->timeout_ms) / 1000.0,
                   (double)x->timeout_ms / 1000.0);
}

/* Whether a failed attempt can be repeated: only when the block cannot have run. */
static int retryable(const attempt_result *r)
{
    if (r->code == CURLE_OK)
        return r->status == 429 || r->status == 502 || r->status == 503 || r->status == 504;
    switch (r->code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        return 1;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return !r->sent;   /* failed before a request byte left */
    default:
        return 0;
    }
}

/* Maps a final (not retried) attempt to an error. */
static int fail_attempt(const exchange *x, const attempt_result *r, int retried, bb_error **err)
{
    const char *origin = x->b->origin;
    if (r->oom)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory while receiving the response");
    if (r->over)
        return bb_fail(err, BB_ERR_OUTPUT_LIMIT, "the response of %s exceeds %zu bytes", origin,
                       x->d->max_response);
    if (r->code == CURLE_OK) {
        long s = r->status;
        if (s == 401 || s == 403)
            return bb_fail(err, BB_ERR_AUTHENTICATION_FAILED,
                           "the Modal endpoint %s refused the proxy-auth token (HTTP %ld): check "
                           "MODAL_TOKEN_ID and MODAL_TOKEN_SECRET",
                           origin, s);
        if (s == 404)
            return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE,
                           "the Modal app %s is not deployed (HTTP 404 from %s): deploy "
                           "drivers/modal/app.py for this workspace",
                           x->b->app, origin);
        if (s == 429 || s == 502 || s == 503 || s == 504)
            return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE,
                           "the Modal endpoint %s answered HTTP %ld%s%s", origin, s,
                           s == 429 ? " (rate limited)" : " (unavailable)",
                           retried ? " on every attempt" : "");
        if (s >= 500)
            return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE,
                           "the Modal endpoint %s failed with HTTP %ld; the block may have run, so the "
                           "call was not repeated",
                           origin, s);
        if (s == 400 || s == 413 || s == 422)
            return bb_fail(err, BB_ERR_INVALID_REQUEST, "the Modal endpoint %s refused the request (HTTP %ld)",
                           origin, s);
        if (s >= 300 && s < 400)
            return bb_fail(err, BB_ERR_INVALID_RESPONSE, "the Modal endpoint %s answered an unexpected "
                           "redirect (HTTP %ld)", origin, s);
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "the Modal endpoint %s answered HTTP %ld", origin, s);
    }
    switch (r->code) {
    case CURLE_OPERATION_TIMEDOUT:
        if (!r->sent)
            return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "could not connect to the Modal endpoint %s "
                           "in time%s", origin, retried ? " (after retries)" : "");
        return fail_timeout(x, err);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "could not connect to the Modal endpoint %s: %s%s",
                       origin, curl_easy_strerror(r->code), retried ? " (after retries)" : "");
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE,
                       "the TLS certificate of %s could not be verified (%s); set BLOCKBOX_CA_FILE to "
                       "trust a private CA",
                       origin, curl_easy_strerror(r->code));
    case CURLE_PARTIAL_FILE:
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "the response of %s was cut short", origin);
    case CURLE_BAD_CONTENT_ENCODING:
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "the response of %s is not valid gzip", origin);
    case CURLE_UNSUPPORTED_PROTOCOL:
        return bb_fail(err, BB_ERR_CONFIGURATION, "the URL of %s uses a refused protocol", origin);
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        if (r->sent)
            return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE,
                           "the connection to %s was lost before a complete answer (%s); the block may "
                           "have run, so the call was not repeated",
                           origin, curl_easy_strerror(r->code));
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "could not reach the Modal endpoint %s: %s%s",
                       origin, curl_easy_strerror(r->code), retried ? " (after retries)" : "");
    case CURLE_OUT_OF_MEMORY:
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    default:
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "the request to %s failed: %s", origin,
                       curl_easy_strerror(r->code));
    }
}

/* POSTs one envelope (retrying where no run can have happened, following 303s) and
 * leaves the 200 body in *out. */
static int post_envelope(exchange *x, const char *body, size_t len, int gz, bb_buf *out, char *trusted,
                         bb_error **err)
{
    modal_driver *d = x->d;
    bb_modal_url_info origin_info, target;
    if (bb_modal_check_url(x->b->url, "the endpoint URL", BB_ERR_CONFIGURATION, &origin_info, err) < 0)
        return -1;
    target = origin_info;
    char *url = strdup(x->b->url);
    if (!url)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    int attempt = 0, redirects = 0, is_get = 0, rc = -1;
    attempt_result r = {0};
    for (;;) {
        long budget = x->deadline - now_ms();
        if (budget <= 0) {
            rc = fail_timeout(x, err);
            break;
        }
        int with_auth = same_origin(&origin_info, &target);
        send_request(d, url, &target, with_auth, is_get ? NULL : body, len, gz, budget, &r);
        if (r.code == CURLE_OK && r.status == 200 && !r.over && !r.oom) {
            *out = r.body;
            memset(&r.body, 0, sizeof r.body);
            memcpy(trusted, r.trusted, sizeof r.trusted);
            rc = 0;
            break;
        }
        if (r.code == CURLE_OK && (r.status == 303 || (is_get && r.status == 302))) {
            if (++redirects > BB_MODAL_MAX_REDIRECTS) {
                rc = bb_fail(err, BB_ERR_INVALID_RESPONSE, "the Modal endpoint %s redirected more than %d "
                             "times", x->b->origin, BB_MODAL_MAX_REDIRECTS);
                break;
            }
            if (!r.location || bb_modal_check_url(r.location, "the redirect target", BB_ERR_INVALID_RESPONSE,
                                                  &target, err) < 0) {
                if (!r.location)
                    bb_fail(err, BB_ERR_INVALID_RESPONSE, "the Modal endpoint %s redirected without a "
                            "Location", x->b->origin);
                break;
            }
            atomic_fetch_add(&d->count.redirects, 1);
            free(url);
            url = r.location;
            r.location = NULL;
            is_get = 1;   /* 303 See Other: fetch the result with GET */
            attempt_clear(&r);
            continue;
        }
        if (retryable(&r) && attempt < d->retries) {
            long wait = r.retry_after_ms >= 0 ? r.retry_after_ms : bb_modal_backoff_ms(attempt, random32());
            long left = x->deadline - now_ms();
            if (r.retry_after_ms > BB_MODAL_RETRY_AFTER_MAX_MS || wait >= left) {
                rc = fail_attempt(x, &r, attempt > 0, err);
                break;
            }
            attempt++;
            atomic_fetch_add(&d->count.retries, 1);
            attempt_clear(&r);
            sleep_ms(wait);
            continue;
        }
        rc = fail_attempt(x, &r, attempt > 0, err);
        break;
    }
    attempt_clear(&r);
    free(url);
    return rc;
}

static int modal_run(void *state, void *block_state, const bb_call *call, bb_reply *reply, bb_error **err)
{
    modal_driver *d = state;
    modal_block *b = block_state;
    atomic_fetch_add(&d->count.calls, 1);
    long timeout_ms = bb_call_timeout_ms(call);
    exchange x = {d, b, now_ms() + bb_modal_deadline_ms(timeout_ms), timeout_ms};
    int with_code = !b->server_knows_code || b->has_init;
    int resent = 0;
    bb_buf gz = {0}, body = {0}, req = {0};
    int rc = -1;
    for (;;) {
        size_t len = 0;
        const char *env = bb_call_envelope(call, with_code, &len);
        if (!env) {
            rc = bb_fail(err, BB_ERR_INTERNAL, "out of memory building the request");
            break;
        }
        /* blockbox reads ndarrays in its raw data form: the request says so (docs/wire.md,
         * "ndarray_form"); a server that ignores the key answers in the value form */
        bb_buf_free(&req);
        if (len < 2 || env[len - 1] != '}' || bb_buf_append(&req, env, len - 1) < 0 ||
            bb_buf_puts(&req, ",\"ndarray_form\":\"data\"}") < 0) {
            rc = bb_fail(err, BB_ERR_INTERNAL, "out of memory building the request");
            break;
        }
        env = req.data;
        len = req.len;
        const char *send = env;
        size_t send_len = len;
        int use_gz = 0;
        if (len >= BB_MODAL_GZIP_MIN_BYTES && bb_modal_gzip(env, len, &gz) == 0 && gz.len < len) {
            send = gz.data;
            send_len = gz.len;
            use_gz = 1;
            atomic_fetch_add(&d->count.gzip_requests, 1);
        }
        if (!with_code)
            atomic_fetch_add(&d->count.hash_only, 1);
        char trusted[40] = "";
        if (post_envelope(&x, send, send_len, use_gz, &body, trusted, err) < 0)
            break;
        bb_error *decided = bb_modal_trusted_error(trusted[0] ? trusted : NULL, body.data, body.len);
        if (decided) {
            if (err)
                *err = decided;
            else
                bb_error_free(decided);
            break;
        }
        if (bb_modal_is_unknown_code_hash(body.data, body.len)) {
            b->server_knows_code = 0;
            if (!with_code && !resent) {
                /* the server lost the block (a new container): send the code once more */
                resent = 1;
                with_code = 1;
                atomic_fetch_add(&d->count.resends, 1);
                bb_buf_free(&body);
                continue;
            }
            /* Seen by this driver, not claimed by a reply (a reply's error kinds are
             * never trusted, issue 8): the server does not take the block's code. */
            rc = bb_fail(err, BB_ERR_UNKNOWN_CODE_HASH,
                         "the server answered UnknownCodeHash to a request with the full code "
                         "(code hash %s)", b->code_hash);
            break;
        } else {
            b->server_knows_code = 1;
        }
        size_t n = 0;
        reply->body = bb_buf_steal(&body, &n);
        if (!reply->body)
            reply->body = calloc(1, 1);
        reply->len = n;
        rc = reply->body ? 0 : bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        break;
    }
    bb_buf_free(&gz);
    bb_buf_free(&body);
    bb_buf_free(&req);
    return rc;
}

/* ---- describe ------------------------------------------------------------ */

static char *modal_describe(void *state)
{
    modal_driver *d = state;
    bb_buf b = {0};
    char origin[300];
    if (d->override_url)
        origin_of(d->override_url, origin, sizeof origin);
    else if (d->default_workspace) {
        char *url = bb_modal_endpoint_url(NULL, d->workspace_name, d->default_workspace, NULL);
        snprintf(origin, sizeof origin, "%s", url ? url : "?");
        free(url);
    } else
        snprintf(origin, sizeof origin, "https://%s--inference-workspace-{workspace_id}-execute.modal.run",
                 d->workspace_name);
    long requests = atomic_load(&d->count.requests), connections = atomic_load(&d->count.connections);
    bb_buf_puts(&b, "{\"driver\":\"modal\",\"endpoint\":");
    bb_buf_json_string(&b, origin, strlen(origin));
    bb_buf_puts(&b, ",\"endpoint_override\":");
    bb_buf_puts(&b, d->override_url ? "true" : "false");
    bb_buf_puts(&b, ",\"modal_workspace\":");
    bb_buf_json_string(&b, d->workspace_name, strlen(d->workspace_name));
    bb_buf_puts(&b, ",\"ca_file\":");
    if (d->ca_file)
        bb_buf_json_string(&b, d->ca_file, strlen(d->ca_file));
    else
        bb_buf_puts(&b, "null");
    bb_buf_printf(&b,
                  ",\"tls_verified\":true,\"proxy\":\"none\",\"auth\":\"Modal-Key/Modal-Secret (set)\","
                  "\"retries\":%ld,\"gzip_min_bytes\":%d,\"connect_timeout_max_ms\":%d,"
                  "\"max_response_bytes\":%zu,"
                  "\"calls\":%ld,\"requests\":%ld,\"connections_made\":%ld,\"connections_reused\":%ld,"
                  "\"retries_done\":%ld,\"code_resends\":%ld,\"hash_only_requests\":%ld,"
                  "\"redirects_followed\":%ld,\"gzip_requests\":%ld,\"server_time_us\":%ld,"
                  "\"last_server_time_us\":%ld}",
                  d->retries, BB_MODAL_GZIP_MIN_BYTES, BB_MODAL_CONNECT_MAX_MS, d->max_response,
                  atomic_load(&d->count.calls), requests, connections,
                  requests > connections ? requests - connections : 0L, atomic_load(&d->count.retries),
                  atomic_load(&d->count.resends), atomic_load(&d->count.hash_only),
                  atomic_load(&d->count.redirects), atomic_load(&d->count.gzip_requests),
                  atomic_load(&d->count.server_time_us), atomic_load(&d->count.last_server_time_us));
    return bb_buf_steal(&b, NULL);
}

const bb_driver bb_modal_driver = {
    .abi_version = BB_DRIVER_ABI_VERSION,
    .name = "modal",
    .summary = "blocks run on Modal (restricted single-use functions) over verified HTTPS",
    .open = modal_open,
    .load = modal_load,
    .run = modal_run,
    .unload = modal_unload,
    .describe = modal_describe,
    .close = modal_close,
};
