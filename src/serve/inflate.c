/* inflate.c: request bodies of `blockbox serve`: plain or gzip, decoded as they arrive,
 * with the cap on the decoded size enforced while inflating (no decompression bombs). */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "serve.h"

struct sv_body {
    int gzip;
    int z_ready;
    int ended;        /* the gzip member ended */
    int state;        /* SV_BODY_OK, _BAD, _TOO_BIG */
    const char *why;
    size_t max;
    sv_budget *g;
    size_t reserved;  /* bytes of g this body holds */
    z_stream z;
    unsigned char *out;
    size_t len, cap;
};

int sv_budget_take(sv_budget *g, size_t n)
{
    pthread_mutex_lock(&g->mu);
    int ok = g->used <= g->max && n <= g->max - g->used;
    if (ok)
        g->used += n;
    pthread_mutex_unlock(&g->mu);
    return ok ? 0 : -1;
}

void sv_budget_give(sv_budget *g, size_t n)
{
    pthread_mutex_lock(&g->mu);
    g->used -= n < g->used ? n : g->used;
    pthread_mutex_unlock(&g->mu);
}

size_t sv_budget_used(sv_budget *g)
{
    pthread_mutex_lock(&g->mu);
    size_t n = g->used;
    pthread_mutex_unlock(&g->mu);
    return n;
}

static const char busy_why[] = "the server holds too many request bytes in flight; retry later";

int sv_body_reserve(sv_body *b, size_t n)
{
    if (sv_budget_take(b->g, n) < 0)
        return -1;
    b->reserved += n;
    return 0;
}

/* Grows the buffer to cap (+1 for the NUL), reserving the growth from the budget first. */
static int grow(sv_body *b, size_t cap)
{
    if (cap > b->cap && sv_body_reserve(b, cap - b->cap) < 0) {
        b->state = SV_BODY_BUSY;
        b->why = busy_why;
        return -1;
    }
    unsigned char *o = realloc(b->out, cap + 1);
    if (!o) {
        b->state = SV_BODY_TOO_BIG;
        b->why = "out of memory reading the request body";
        return -1;
    }
    b->out = o;
    b->cap = cap;
    return 0;
}

sv_body *sv_body_new(int gzip, size_t max, sv_budget *g)
{
    sv_body *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->gzip = gzip;
    b->max = max;
    b->g = g;
    if (gzip) {
        /* 16 + MAX_WBITS: the gzip wrapper only (no raw deflate, no zlib header) */
        if (inflateInit2(&b->z, 16 + MAX_WBITS) != Z_OK) {
            free(b);
            return NULL;
        }
        b->z_ready = 1;
    }
    return b;
}

static int fail(sv_body *b, int state, const char *why)
{
    if (b->state == SV_BODY_OK) {
        b->state = state;
        b->why = why;
    }
    return b->state;
}

/* Makes room for at least one more byte, never beyond max + 1 (the +1 is how an
 * over-long body is seen without storing it). */
static int room(sv_body *b)
{
    if (b->len < b->cap)
        return 0;
    if (b->len > b->max)
        return fail(b, SV_BODY_TOO_BIG, "the request body is over the size limit");
    size_t cap = b->cap ? b->cap * 2 : 16384;
    if (cap > b->max + 1)
        cap = b->max + 1;
    if (cap <= b->len)
        return fail(b, SV_BODY_TOO_BIG, "the request body is over the size limit");
    return grow(b, cap);
}

int sv_body_feed(sv_body *b, const void *data, size_t n)
{
    if (b->state != SV_BODY_OK)
        return b->state;
    if (n == 0)
        return SV_BODY_OK;
    if (!b->gzip) {
        if (b->len > b->max || n > b->max - b->len)
            return fail(b, SV_BODY_TOO_BIG, "the request body is over the size limit");
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 16384;
            if (cap < b->len + n)
                cap = b->len + n;
            if (cap > b->max)
                cap = b->max;
            if (grow(b, cap) < 0)
                return b->state;
        }
        memcpy(b->out + b->len, data, n);
        b->len += n;
        return SV_BODY_OK;
    }
    if (n == 0)
        return SV_BODY_OK;
    if (b->ended)
        return fail(b, SV_BODY_BAD, "data after the end of the gzip stream");
    b->z.next_in = (unsigned char *)data;
    b->z.avail_in = (uInt)n;
    while (b->z.avail_in > 0 && !b->ended) {
        if (room(b) < 0)
            return b->state;
        b->z.next_out = b->out + b->len;
        b->z.avail_out = (uInt)(b->cap - b->len);
        int rc = inflate(&b->z, Z_NO_FLUSH);
        b->len = b->cap - b->z.avail_out;
        if (b->len > b->max)
            return fail(b, SV_BODY_TOO_BIG, "the inflated request body is over the size limit");
        if (rc == Z_STREAM_END) {
            b->ended = 1;
            if (b->z.avail_in > 0)
                return fail(b, SV_BODY_BAD, "data after the end of the gzip stream");
        } else if (rc == Z_BUF_ERROR) {
            continue;   /* no room: room() grows the buffer */
        } else if (rc != Z_OK) {
            return fail(b, SV_BODY_BAD, "the request body is not valid gzip");
        }
    }
    return SV_BODY_OK;
}

int sv_body_finish(sv_body *b, const char **out, size_t *len)
{
    if (b->state != SV_BODY_OK)
        return b->state;
    if (b->gzip && !b->ended)
        return fail(b, SV_BODY_BAD, b->len || b->z.total_in ? "the gzip request body is truncated"
                                                            : "the gzip request body is empty");
    if (!b->out) {
        b->out = malloc(1);
        if (!b->out)
            return fail(b, SV_BODY_TOO_BIG, "out of memory reading the request body");
    }
    b->out[b->len] = '\0';
    *out = (const char *)b->out;
    *len = b->len;
    return SV_BODY_OK;
}

const char *sv_body_why(const sv_body *b)
{
    return b->why ? b->why : "";
}

void sv_body_free(sv_body *b)
{
    if (!b)
        return;
    if (b->z_ready)
        inflateEnd(&b->z);
    sv_budget_give(b->g, b->reserved);
    free(b->out);
    free(b);
}
