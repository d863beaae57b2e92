/* modal_http.c: the modal driver's HTTPS transport. One request to the endpoint with
 * libcurl: verified TLS, no proxy, shared DNS and TLS sessions, kept-alive handles. */
#include "modal_http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modal_util.h"

#define POOL_KEEP 64            /* idle easy handles (each with its live connections) kept */
#define CONN_MAX_AGE_S 25L      /* reuse an idle connection at most this old */
#define USER_AGENT "blockbox/" BLOCKBOX_VERSION " (modal driver)"

struct bb_modal_http {
    char *ca_file;
    size_t max_response;
    /* [auth][gzip]: prebuilt, read-only header lists (the auth ones carry the secret) */
    struct curl_slist *headers[2][2];
    CURLSH *share;              /* DNS cache and TLS sessions shared by all handles */
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_lock;  /* guards the idle handle pool */
    CURL *pool[POOL_KEEP];
    size_t n_pool;
    bb_modal_counters *count;   /* the driver's */
};

/* ---- set-up ------------------------------------------------------------- */

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

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;
/* libcurl's global state belongs to the process: initialised once, never cleaned up
 * (another part of the program may use libcurl too). */
static void curl_init_once(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
    bb_modal_http *d = user;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&d->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
    bb_modal_http *d = user;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&d->share_locks[data]);
}

int bb_modal_http_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
    return curl_init_result == CURLE_OK ? 0 : -1;
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

void bb_modal_http_close(bb_modal_http *d)
{
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
    free(d->ca_file);
    free(d);
}

bb_modal_http *bb_modal_http_open(const char *token_id, const char *token_secret, const char *ca_file,
                                  size_t max_response, bb_modal_counters *count)
{
    bb_modal_http *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->pool_lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&d->share_locks[i], NULL);
    d->max_response = max_response;
    d->count = count;
    int oom = ca_file && !(d->ca_file = strdup(ca_file));
    for (int a = 0; a < 2; a++)
        for (int g = 0; g < 2; g++)
            if (!(d->headers[a][g] = build_headers(a ? token_id : NULL, token_secret, g)))
                oom = 1;
    d->share = curl_share_init();
    if (!d->share || oom) {
        bb_modal_http_close(d);
        return NULL;
    }
    curl_share_setopt(d->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(d->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(d->share, CURLSHOPT_USERDATA, d);
    curl_share_setopt(d->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(d->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return d;
}

/* ---- one request ------------------------------------------------------ */

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

static CURL *pool_get(bb_modal_http *d)
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

static void pool_put(bb_modal_http *d, CURL *h)
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

void bb_modal_attempt_clear(bb_modal_attempt *r)
{
    free(r->location);
    bb_buf_free(&r->body);
    memset(r, 0, sizeof *r);
}

void bb_modal_http_send(bb_modal_http *d, const char *url, const bb_modal_url_info *target, int with_auth,
                        const char *body, size_t body_len, int gz, long budget_ms, bb_modal_attempt *r)
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
    atomic_fetch_add(&d->count->requests, 1);
    long connects = 0, request_size = 0;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    atomic_fetch_add(&d->count->connections, connects);
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
                atomic_fetch_add(&d->count->server_time_us, us);
                atomic_store(&d->count->last_server_time_us, us);
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
