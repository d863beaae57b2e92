/* http.c: the HTTP side of `blockbox serve` on libmicrohttpd (a thread per connection,
 * keep-alive, optional TLS): routes, auth before the body is read, capped bodies, replies. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "serve.h"

struct sv_server {
    struct MHD_Daemon *d;
    sv_auth *auth;
    sv_pool *pool;
    sv_metrics *metrics;
    sv_server_opts o;
    char *cert, *key;    /* PEM text handed to libmicrohttpd */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long inflight;       /* POSTs begun whose reply has not been sent yet */
    sv_budget budget;    /* decoded request bytes held by all connections */
};

typedef struct call {
    sv_body *body;
    int answered;        /* the reply is queued */
    /* A refusal is answered once the body has been read (and dropped): a reply queued
     * while the client still sends would reach it as a reset connection. */
    int refused_status, refused_retry;
    const char *refused_type, *refused_msg;
    size_t dropped, drop_cap;
    struct timespec start;
    char workspace[129];
} call;

#define SV_DROP_UNAUTHENTICATED (1u << 20)   /* body bytes read from a refused caller */

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The kinds this server (the trusted side) decides; a reply carrying one is marked
 * with Blockbox-Error, which block code cannot set (a body's error_type it can). */
static const char *trusted_type(bb_error_kind kind)
{
    switch (kind) {
    case BB_ERR_TIMEOUT:
    case BB_ERR_MEMORY_LIMIT:
    case BB_ERR_SANDBOX_CRASH:
    case BB_ERR_OUTPUT_LIMIT:
    case BB_ERR_BACKEND_UNAVAILABLE:
    case BB_ERR_INVALID_RESPONSE:
        return bb_error_kind_name(kind);
    default:
        return NULL;
    }
}

static enum MHD_Result reply_marked(struct MHD_Connection *c, int status, char *json, size_t len,
                                    int retry_after, const char *trusted);

static enum MHD_Result reply(struct MHD_Connection *c, int status, char *json, size_t len,
                             int retry_after)
{
    return reply_marked(c, status, json, len, retry_after, NULL);
}

static enum MHD_Result reply_marked(struct MHD_Connection *c, int status, char *json, size_t len,
                                    int retry_after, const char *trusted)
{
    if (!json) {
        static const char oom[] = "{\"success\": false, \"error_type\": \"BackendUnavailable\", "
                                  "\"error\": \"out of memory\"}";
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        json = strdup(oom);
        len = json ? strlen(json) : 0;
        if (!json)
            return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, json, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(json);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (retry_after)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (trusted)
        MHD_add_response_header(r, "Blockbox-Error", trusted);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_simple(struct MHD_Connection *c, int status, const char *type,
                                    const char *msg, int retry_after)
{
    size_t len = 0;
    char *j = sv_reply_simple(type, msg, &len);
    return reply(c, status, j, len, retry_after);
}

static enum MHD_Result reply_text(struct MHD_Connection *c, int status, char *text, size_t len,
                                  const char *type)
{
    if (!text)
        return reply(c, 503, NULL, 0, 0);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

/* What the headers and query arguments say about the credentials and the workspace,
 * with their real lengths: a value with a NUL in it, or a second copy of a name that
 * decides who the caller is, is refused rather than read as a C string or first-wins. */
typedef struct seen {
    int key, secret, workspace, length, nul_cred, nul_ws;
} seen;

static enum MHD_Result count_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    seen *w = cls;
    int *slot = NULL;
    if (kind == MHD_HEADER_KIND) {
        if (strcasecmp(key, "Modal-Key") == 0)
            slot = &w->key;
        else if (strcasecmp(key, "Modal-Secret") == 0)
            slot = &w->secret;
        else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
            slot = &w->length;
    } else if (kind == MHD_GET_ARGUMENT_KIND && strcmp(key, "workspace_id") == 0) {
        slot = &w->workspace;
    }
    if (slot) {
        (*slot)++;
        if (strlen(key) != key_size || (value && strlen(value) != value_size))
            *(slot == &w->workspace ? &w->nul_ws : &w->nul_cred) = 1;
    }
    return MHD_YES;
}

/* Refusals: counted and logged (without a block name) now, answered when the body has
 * been read. The message must be a string literal or owned by the body. */
static enum MHD_Result refuse(sv_server *s, call *k, int status, const char *type, const char *msg,
                              int retry_after)
{
    if (k->refused_status)
        return MHD_YES;
    k->refused_status = status;
    k->refused_type = type;
    k->refused_msg = msg;
    k->refused_retry = retry_after;
    k->drop_cap = status == MHD_HTTP_UNAUTHORIZED || status == MHD_HTTP_FORBIDDEN
                      ? SV_DROP_UNAUTHENTICATED
                      : 4 * s->o.max_body + SV_DROP_UNAUTHENTICATED;
    sv_metrics_call(s->metrics, status, BB_OK, since(&k->start));
    sv_log_call(k->workspace[0] ? k->workspace : "-", NULL, status, type, since(&k->start));
    return MHD_YES;
}

/* The first call for a POST: everything that can be decided from the headers. */
static enum MHD_Result begin(sv_server *s, struct MHD_Connection *c, call *k)
{
    seen w = {0};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, count_value, &w);
    if (w.key > 1 || w.secret > 1 || (w.nul_cred && s->auth))
        return refuse(s, k, MHD_HTTP_UNAUTHORIZED, "AuthenticationFailed",
                      "Modal-Key / Modal-Secret must each come once, without NUL bytes", 0);
    if (w.workspace > 1 || w.nul_ws)
        return refuse(s, k, MHD_HTTP_BAD_REQUEST, "InvalidRequest",
                      "workspace_id must come once, without NUL bytes", 0);
    if (w.length > 1)
        return refuse(s, k, MHD_HTTP_BAD_REQUEST, "InvalidRequest",
                      "more than one Content-Length header", 0);
    const char *ws = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "workspace_id");
    if (sv_workspace_ok(ws))
        snprintf(k->workspace, sizeof k->workspace, "%s", ws);
    if (s->auth) {
        const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Modal-Key");
        const char *secret = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Modal-Secret");
        sv_auth_result a = sv_auth_check(s->auth, key, secret, k->workspace[0] ? k->workspace : NULL);
        if (a == SV_AUTH_MISSING)
            return refuse(s, k, MHD_HTTP_UNAUTHORIZED, "AuthenticationFailed",
                          "missing Modal-Key / Modal-Secret headers", 0);
        if (a == SV_AUTH_WRONG)
            return refuse(s, k, MHD_HTTP_UNAUTHORIZED, "AuthenticationFailed",
                          "invalid Modal-Key / Modal-Secret", 0);
        if (a == SV_AUTH_FORBIDDEN)
            return refuse(s, k, MHD_HTTP_FORBIDDEN, "AuthenticationFailed",
                          "these credentials are not valid for this workspace", 0);
    }
    if (!k->workspace[0])
        return refuse(s, k, MHD_HTTP_BAD_REQUEST, "InvalidRequest",
                      ws ? "workspace_id must be [A-Za-z0-9_-]{1,128}"
                         : "the workspace_id query parameter is required", 0);
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (len && strtoull(len, NULL, 10) > s->o.max_body) {
        refuse(s, k, MHD_HTTP_CONTENT_TOO_LARGE, "InvalidRequest",
               "the request body is over the size limit", 0);
        if (strtoull(len, NULL, 10) > k->drop_cap) {   /* not worth reading: answer now */
            k->answered = 1;
            return reply_simple(c, k->refused_status, k->refused_type, k->refused_msg, 0);
        }
        return MHD_YES;
    }
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    int gzip = 0;
    if (enc && strcasecmp(enc, "gzip") == 0)
        gzip = 1;
    else if (enc && *enc && strcasecmp(enc, "identity") != 0)
        return refuse(s, k, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "InvalidRequest",
                      "Content-Encoding must be gzip or identity", 0);
    k->body = sv_body_new(gzip, s->o.max_body, &s->budget);
    if (!k->body)
        return refuse(s, k, MHD_HTTP_SERVICE_UNAVAILABLE, "BackendUnavailable", "out of memory", 1);
    return MHD_YES;
}

static enum MHD_Result execute(sv_server *s, struct MHD_Connection *c, call *k, const char *body,
                               size_t len)
{
    sv_request rq;
    char why[256];
    int prc = sv_request_parse(body, len, &rq, why, sizeof why);
    int status = 200;
    bb_error_kind kind = BB_OK;
    const char *outcome = "ok";
    char *out = NULL;
    size_t out_len = 0;
    int retry = 0;
    if (prc == -1) {
        status = MHD_HTTP_BAD_REQUEST;
        outcome = "InvalidRequest";
        out = sv_reply_simple(outcome, why, &out_len);
    } else if (prc == -2) {
        kind = BB_ERR_CONFIGURATION;
        outcome = "ConfigurationError";
        out = sv_reply_simple(outcome, why, &out_len);
    } else {
        sv_lease *l = NULL;
        bb_error *err = NULL;
        switch (sv_pool_acquire(s->pool, k->workspace, &rq, &l, &err)) {
        case SV_POOL_OK: {
            bb_result *res = bb_block_run(sv_lease_block(l), rq.inputs_json, rq.context_json);
            if (!res) {
                sv_pool_release(s->pool, l);
                status = MHD_HTTP_SERVICE_UNAVAILABLE;
                outcome = "BackendUnavailable";
                out = sv_reply_simple(outcome, "out of memory", &out_len);
                retry = 1;
                break;
            }
            /* the reply is built while the call still holds its run slot: building it
             * costs as much as the run may (the value form), so it is bounded by the same
             * --max-runs */
            out = sv_reply_result(res, rq.data_form, s->o.max_value_bytes, &out_len);
            sv_pool_release(s->pool, l);
            const bb_error *e = bb_result_error(res);
            if (e) {
                kind = bb_error_get_kind(e);
                outcome = bb_error_type_name(e);
            } else if (out && strncmp(out, "{\"success\":false", 16) == 0) {
                kind = BB_ERR_OUTPUT_LIMIT;
                outcome = "OutputLimit";
            }
            /* outcome must outlive res: copy before freeing */
            snprintf(why, sizeof why, "%s", outcome);
            outcome = why;
            bb_result_free(res);
            break;
        }
        case SV_POOL_UNKNOWN_HASH:
            kind = BB_ERR_UNKNOWN_CODE_HASH;
            outcome = "UnknownCodeHash";
            out = sv_reply_simple(outcome, "this server does not hold the code of this hash; "
                                           "resend the full code", &out_len);
            break;
        case SV_POOL_BUSY:
            status = MHD_HTTP_TOO_MANY_REQUESTS;
            outcome = "Busy";
            out = sv_reply_simple("BackendUnavailable", "too many calls in flight; retry later", &out_len);
            retry = 1;
            break;
        case SV_POOL_UNAVAILABLE:
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
            outcome = "Unavailable";
            out = sv_reply_simple("BackendUnavailable", "the server is shutting down or overloaded; "
                                                        "retry later", &out_len);
            retry = 1;
            break;
        case SV_POOL_COLLISION:
            status = MHD_HTTP_BAD_REQUEST;
            outcome = "InvalidRequest";
            out = sv_reply_simple(outcome, "another code with this md5 is loaded in this workspace",
                                  &out_len);
            break;
        case SV_POOL_LOAD_FAILED:
            kind = bb_error_get_kind(err);
            snprintf(why, sizeof why, "%s", bb_error_type_name(err));
            outcome = why;
            out = sv_reply_error(err, &out_len);
            bb_error_free(err);
            break;
        }
    }
    double secs = since(&k->start);
    sv_metrics_call(s->metrics, status, kind, secs);
    sv_log_call(k->workspace, rq.code_hash[0] ? rq.code_hash : NULL, status, outcome, secs);
    sv_request_free(&rq);
    return reply_marked(c, status, out, out_len, retry, status == 200 ? trusted_type(kind) : NULL);
}

static char *add_budget_metrics(sv_server *s, char *t, size_t *n)
{
    if (!t)
        return NULL;
    char line[256];
    int k = snprintf(line, sizeof line,
                     "# TYPE blockbox_serve_request_bytes gauge\n"
                     "blockbox_serve_request_bytes %zu\n"
                     "blockbox_serve_request_bytes_limit %zu\n",
                     sv_budget_used(&s->budget), s->budget.max);
    char *u = realloc(t, *n + (size_t)k + 1);
    if (!u) {
        free(t);
        return NULL;
    }
    memcpy(u + *n, line, (size_t)k + 1);
    *n += (size_t)k;
    return u;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    sv_server *s = cls;
    call *k = *con_cls;
    if (!k) {
        if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
            if (strcmp(url, "/healthz") == 0) {
                char *t = strdup("{\"status\": \"ok\"}\n");
                return reply_text(c, 200, t, t ? strlen(t) : 0, "application/json");
            }
            if (strcmp(url, "/metrics") == 0) {
                size_t n = 0;
                char *t = sv_metrics_render(s->metrics, s->pool, &n);
                t = add_budget_metrics(s, t, &n);
                return reply_text(c, 200, t, n, "text/plain; version=0.0.4");
            }
            return reply_simple(c, MHD_HTTP_NOT_FOUND, "InvalidRequest", "no such path", 0);
        }
        if (strcmp(method, "POST") != 0)
            return reply_simple(c, MHD_HTTP_METHOD_NOT_ALLOWED, "InvalidRequest",
                                "only POST executes a block", 0);
        if (strcmp(url, "/") != 0 && strcmp(url, "/execute") != 0)
            return reply_simple(c, MHD_HTTP_NOT_FOUND, "InvalidRequest",
                                "POST to / or /execute", 0);
        k = calloc(1, sizeof *k);
        if (!k)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &k->start);
        *con_cls = k;
        pthread_mutex_lock(&s->mu);
        s->inflight++;
        pthread_mutex_unlock(&s->mu);
        return begin(s, c, k);
    }
    if (k->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (k->refused_status) {
        if (*upload_size) {
            k->dropped += *upload_size;
            *upload_size = 0;
            /* a caller that keeps sending after a refusal loses the connection */
            return k->dropped > k->drop_cap ? MHD_NO : MHD_YES;
        }
        k->answered = 1;
        return reply_simple(c, k->refused_status, k->refused_type, k->refused_msg, k->refused_retry);
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (s->o.body_deadline_s && since(&k->start) > (double)s->o.body_deadline_s) {
            sv_log_call(k->workspace[0] ? k->workspace : "-", NULL, 408, "RequestTimeout",
                        since(&k->start));
            return MHD_NO;   /* a trickled body: the connection is closed */
        }
        int rc = sv_body_feed(k->body, upload, n);
        if (rc == SV_BODY_BUSY)
            return refuse(s, k, MHD_HTTP_SERVICE_UNAVAILABLE, "BackendUnavailable",
                          sv_body_why(k->body), 1);
        if (rc == SV_BODY_TOO_BIG)
            return refuse(s, k, MHD_HTTP_CONTENT_TOO_LARGE, "InvalidRequest", sv_body_why(k->body), 0);
        if (rc != SV_BODY_OK)
            return refuse(s, k, MHD_HTTP_BAD_REQUEST, "InvalidRequest", sv_body_why(k->body), 0);
        return MHD_YES;
    }
    const char *body = NULL;
    size_t len = 0;
    int rc = sv_body_finish(k->body, &body, &len);
    if (rc == SV_BODY_OK && sv_body_reserve(k->body, len) < 0) {   /* the parsed copy */
        refuse(s, k, MHD_HTTP_SERVICE_UNAVAILABLE, "BackendUnavailable",
               "the server holds too many request bytes in flight; retry later", 1);
        k->answered = 1;
        return reply_simple(c, k->refused_status, k->refused_type, k->refused_msg, 1);
    }
    if (rc == SV_BODY_BUSY) {
        k->answered = 1;
        refuse(s, k, MHD_HTTP_SERVICE_UNAVAILABLE, "BackendUnavailable", sv_body_why(k->body), 1);
        return reply_simple(c, k->refused_status, k->refused_type, k->refused_msg, 1);
    }
    if (rc == SV_BODY_TOO_BIG || rc != SV_BODY_OK) {
        refuse(s, k, rc == SV_BODY_TOO_BIG ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST,
               "InvalidRequest", sv_body_why(k->body), 0);
        k->answered = 1;
        return reply_simple(c, k->refused_status, k->refused_type, k->refused_msg, 0);
    }
    k->answered = 1;
    return execute(s, c, k, body, len);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    sv_server *s = cls;
    call *k = *con_cls;
    if (!k)
        return;
    sv_body_free(k->body);
    free(k);
    *con_cls = NULL;
    pthread_mutex_lock(&s->mu);
    if (--s->inflight == 0)
        pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static char *read_pem(const char *path, char *why, size_t why_len)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, why_len, "cannot open %s", path);
        return NULL;
    }
    sv_buf b = {.max = 1 << 20};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sv_buf_add(&b, chunk, n);
    fclose(f);
    char *t = sv_buf_steal(&b, NULL);
    if (!t)
        snprintf(why, why_len, "cannot read %s (over 1 MiB?)", path);
    return t;
}

sv_server *sv_server_start(const sv_server_opts *o, sv_auth *auth, sv_pool *pool,
                           sv_metrics *metrics, int *port, char *why, size_t why_len)
{
    sv_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    s->auth = auth;
    s->pool = pool;
    s->metrics = metrics;
    s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->budget.mu, NULL);
    s->budget.max = o->max_request_bytes;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ITC | MHD_USE_POLL;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    const char *host = strcmp(o->host, "localhost") == 0 ? "127.0.0.1" : o->host;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)o->port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)o->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(why, why_len, "--listen host must be an IPv4 or IPv6 address or localhost");
        free(s);
        return NULL;
    }
    if (o->tls_cert) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(why, why_len, "this libmicrohttpd has no TLS support");
            free(s);
            return NULL;
        }
        if (!(s->cert = read_pem(o->tls_cert, why, why_len)) ||
            !(s->key = read_pem(o->tls_key, why, why_len))) {
            free(s->cert);
            free(s);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_CONNECTION_LIMIT, o->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->max_connections_per_ip, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout_s, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, s},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 256, NULL},
        {s->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->cert},
        {s->cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, s->key},
        {MHD_OPTION_END, 0, NULL},
    };
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->d) {
        snprintf(why, why_len, "cannot listen on %s port %d (in use, or a bad TLS key/certificate)",
                 o->host, o->port);
        free(s->cert);
        free(s->key);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : o->port;
    return s;
}

void sv_server_quiesce(sv_server *s)
{
    if (s && s->d) {
        MHD_socket fd = MHD_quiesce_daemon(s->d);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

long sv_server_drain(sv_server *s, long timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->inflight > 0)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT)
            break;
    long left = s->inflight;
    pthread_mutex_unlock(&s->mu);
    return left;
}

void sv_server_stop(sv_server *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->budget.mu);
    free(s->cert);
    free(s->key);
    free(s);
}
