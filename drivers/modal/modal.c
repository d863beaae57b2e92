/* modal.c: the modal driver, which runs a block by POSTing its DESIGN §3 envelope to the
 * workspace's Modal web endpoint (modal_http.c), with retries only where no run happened. */
#include <blockbox/driver.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "modal_http.h"
#include "modal_png.h"
#include "modal_url.h"
#include "modal_util.h"

#define MAX_TOKEN_LEN 512

typedef struct modal_driver {
    char *override_url;         /* MODAL_WEB_ENDPOINT_URL, checked */
    char *workspace_name;       /* MODAL_WORKSPACE_NAME */
    char *default_workspace;    /* may be NULL */
    char *ca_file;
    int allow_anonymous;
    long retries;
    size_t max_response;
    bb_modal_http *http;        /* the transport (modal_http.c) */
    bb_modal_counters count;
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

/* ---- open / close ------------------------------------------------------ */

static void modal_close(void *state)
{
    modal_driver *d = state;
    if (!d)
        return;
    bb_modal_http_close(d->http);
    free(d->override_url);
    free(d->workspace_name);
    free(d->default_workspace);
    free(d->ca_file);
    free(d);
}

/* The modal driver's own settings (the core checks them against this table). */
static const bb_setting modal_settings[] = {
    {"modal_token_id", "MODAL_TOKEN_ID", BB_SETTING_SECRET, NULL, 0, 0, 0, "sent as Modal-Key"},
    {"modal_token_secret", "MODAL_TOKEN_SECRET", BB_SETTING_SECRET, NULL, 0, 0, 0, "sent as Modal-Secret"},
    {"modal_workspace_name", "MODAL_WORKSPACE_NAME", BB_SETTING_STRING, "roboflow", 0, 0, 0,
     "Modal workspace in the endpoint host"},
    {"modal_endpoint_url", "MODAL_WEB_ENDPOINT_URL", BB_SETTING_STRING, NULL, 0, 0, 0,
     "full endpoint URL override (?workspace_id= is appended)"},
    {"modal_allow_anonymous", "MODAL_ALLOW_ANONYMOUS_EXECUTION", BB_SETTING_BOOL, "False", 0, 0, 0,
     "allow modal calls without a workspace id"},
    {"ca_file", "BLOCKBOX_CA_FILE", BB_SETTING_STRING, NULL, 0, 0, 0,
     "extra CA bundle to trust for the modal endpoint"},
    {"modal_retries", "BLOCKBOX_MODAL_RETRIES", BB_SETTING_LONG, "3", 0, 10, 0,
     "retries where the block cannot have run (connect errors, 429, 502-504)"},
};

/* The settings this driver reads, from the checked config. */
typedef struct modal_config {
    const char *token_id, *token_secret, *workspace_name, *endpoint_url, *workspace_id, *ca_file;
    int allow_anonymous;
    long retries;
} modal_config;

static int modal_open(const bb_config *config, void **state, bb_error **err)
{
    if (bb_modal_http_global_init() < 0)
        return bb_fail(err, BB_ERR_INTERNAL, "libcurl failed to initialise");
    const modal_config c = {
        .token_id = bb_setting_string(config, "modal_token_id"),
        .token_secret = bb_setting_string(config, "modal_token_secret"),
        .workspace_name = bb_setting_string(config, "modal_workspace_name"),
        .endpoint_url = bb_setting_string(config, "modal_endpoint_url"),
        .workspace_id = bb_setting_string(config, "workspace_id"),
        .ca_file = bb_setting_string(config, "ca_file"),
        .allow_anonymous = bb_setting_bool(config, "modal_allow_anonymous"),
        .retries = bb_setting_long(config, "modal_retries"),
    };
    const modal_config *cfg = &c;
    int no_id = !cfg->token_id || !*cfg->token_id;
    int no_secret = !cfg->token_secret || !*cfg->token_secret;
    if (no_id || no_secret)
        return bb_fail(err, BB_ERR_CONFIGURATION,
                       "modal mode needs a Modal proxy-auth token: set MODAL_TOKEN_ID and "
                       "MODAL_TOKEN_SECRET (missing: %s)",
                       no_id && no_secret ? "MODAL_TOKEN_ID, MODAL_TOKEN_SECRET"
                                          : no_id ? "MODAL_TOKEN_ID" : "MODAL_TOKEN_SECRET");
    if (check_token(cfg->token_id, "MODAL_TOKEN_ID", err) < 0 ||
        check_token(cfg->token_secret, "MODAL_TOKEN_SECRET", err) < 0)
        return -1;
    if (cfg->endpoint_url &&
        bb_modal_check_url(cfg->endpoint_url, "MODAL_WEB_ENDPOINT_URL", BB_ERR_CONFIGURATION, NULL,
                           err) < 0)
        return -1;
    if (cfg->workspace_id && bb_modal_check_workspace_id(cfg->workspace_id, err) < 0)
        return -1;
    if (cfg->ca_file && access(cfg->ca_file, R_OK) != 0)
        return bb_fail(err, BB_ERR_CONFIGURATION, "BLOCKBOX_CA_FILE '%s' cannot be read", cfg->ca_file);
    if (!cfg->endpoint_url) {
        /* validates MODAL_WORKSPACE_NAME now rather than at the first load */
        char *probe = bb_modal_endpoint_url(NULL, cfg->workspace_name ? cfg->workspace_name
                                                                            : "roboflow",
                                            "probe", err);
        if (!probe)
            return -1;
        free(probe);
    }

    modal_driver *d = calloc(1, sizeof *d);
    if (!d)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    d->allow_anonymous = cfg->allow_anonymous;
    d->retries = cfg->retries < 0 ? 0 : cfg->retries;
    d->max_response = bb_driver_max_response(config);   /* uses result and streams */
    int oom = 0;
#define DUP(field, value)                                                                          \
    do {                                                                                           \
        if ((value) && !(d->field = strdup(value)))                                                  \
            oom = 1;                                                                               \
    } while (0)
    DUP(override_url, cfg->endpoint_url);
    DUP(workspace_name, cfg->workspace_name ? cfg->workspace_name : "roboflow");
    DUP(default_workspace, cfg->workspace_id);
    DUP(ca_file, cfg->ca_file);
#undef DUP
    if (!oom)
        d->http = bb_modal_http_open(cfg->token_id, cfg->token_secret, cfg->ca_file,
                                     d->max_response, &d->count);
    if (!d->http) {
        modal_close(d);
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    *state = d;
    return 0;
}

/* ---- load / unload ----------------------------------------------------- */

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
    bb_modal_origin_of(b->url, b->origin, sizeof b->origin);
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

/* ---- the call ------------------------------------------------------------ */

/* The request body: the envelope in the wire's JSON forms (buffers as base64 `data`, raw
 * frames as base64 PNG images, written by the core as the encoder goes: one copy of the
 * pixels' text), plus `"ndarray_form": "data"` (docs/wire.md): blockbox reads ndarrays in
 * its raw data form, and a server that ignores the key answers in the value form. */
static int build_body(modal_driver *d, const bb_call *call, int with_code, bb_buf *req, bb_error **err)
{
    bb_buf_free(req);
    size_t len = 0;
    bb_error *failure = NULL;
    char *owned = bb_call_envelope_encoded(call, with_code, bb_modal_png_encode, NULL, &len, &failure);
    if (failure) {
        if (err && !*err)
            *err = failure;
        else
            bb_error_free(failure);
        return -1;
    }
    if (owned) {
        *req = (bb_buf){.data = owned, .len = len, .cap = len + 1};   /* appended to in place */
        atomic_fetch_add(&d->count.encoded_requests, 1);
    } else {
        const char *env = bb_call_envelope(call, with_code, &len);
        if (!env || bb_buf_append(req, env, len) < 0)
            return bb_fail(err, BB_ERR_INTERNAL, "out of memory building the request");
    }
    if (req->len < 2 || req->data[req->len - 1] != '}')
        return bb_fail(err, BB_ERR_INTERNAL, "the request envelope is not an object");
    req->len--;
    if (bb_buf_puts(req, ",\"ndarray_form\":\"data\"}") < 0)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory building the request");
    return 0;
}

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
static int retryable(const bb_modal_attempt *r)
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
static int fail_attempt(const exchange *x, const bb_modal_attempt *r, int retried, bb_error **err)
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
    bb_modal_attempt r = {0};
    for (;;) {
        long budget = x->deadline - now_ms();
        if (budget <= 0) {
            rc = fail_timeout(x, err);
            break;
        }
        int with_auth = same_origin(&origin_info, &target);
        bb_modal_http_send(d->http, url, &target, with_auth, is_get ? NULL : body, len, gz, budget, &r);
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
            bb_modal_attempt_clear(&r);
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
            bb_modal_attempt_clear(&r);
            sleep_ms(wait);
            continue;
        }
        rc = fail_attempt(x, &r, attempt > 0, err);
        break;
    }
    bb_modal_attempt_clear(&r);
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
    /* This driver takes buffers (asked before any envelope): it writes them into the
     * wire's JSON forms itself, raw frames as PNG (build_body). */
    (void)bb_call_buffer_count(call);
    bb_buf gz = {0}, body = {0}, req = {0};
    int rc = -1;
    for (;;) {
        if (build_body(d, call, with_code, &req, err) < 0)
            break;
        const char *env = req.data;
        size_t len = req.len;
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
        bb_modal_origin_of(d->override_url, origin, sizeof origin);
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
                  "\"redirects_followed\":%ld,\"gzip_requests\":%ld,\"encoded_requests\":%ld,"
                  "\"server_time_us\":%ld,\"last_server_time_us\":%ld}",
                  d->retries, BB_MODAL_GZIP_MIN_BYTES, BB_MODAL_CONNECT_MAX_MS, d->max_response,
                  atomic_load(&d->count.calls), requests, connections,
                  requests > connections ? requests - connections : 0L, atomic_load(&d->count.retries),
                  atomic_load(&d->count.resends), atomic_load(&d->count.hash_only),
                  atomic_load(&d->count.redirects), atomic_load(&d->count.gzip_requests),
                  atomic_load(&d->count.encoded_requests), atomic_load(&d->count.server_time_us),
                  atomic_load(&d->count.last_server_time_us));
    return bb_buf_steal(&b, NULL);
}

const bb_driver bb_modal_driver = {
    BB_DRIVER_HEAD,
    .settings = modal_settings,
    .n_settings = sizeof modal_settings / sizeof modal_settings[0],
    .name = "modal",
    .summary = "blocks run on Modal (restricted single-use functions) over verified HTTPS",
    .open = modal_open,
    .load = modal_load,
    .run = modal_run,
    .unload = modal_unload,
    .describe = modal_describe,
    .close = modal_close,
};
