/* frames.c: buffers beside the JSON: the claims typed values make on them, the checks
 * of a run's inputs with buffers, and the rewrites between `buffer` and `data` forms. */
#include "frames.h"

#include <cjson/cJSON.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json_scan.h"

int bb_frames_init(bb_frames *f, const size_t *lens, size_t n)
{
    memset(f, 0, sizeof *f);
    if (n > BB_MAX_BUFFERS)
        return -1;
    f->n = n;
    for (size_t i = 0; i < n; i++)
        f->len[i] = lens[i];
    return 0;
}

size_t bb_frames_total(const bb_frames *f)
{
    size_t total = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (f->len[i] > SIZE_MAX - total)
            return SIZE_MAX;
        total += f->len[i];
    }
    return total;
}

int bb_frames_claim(bb_frames *f, const cJSON *index, double need, char *why, size_t cap)
{
    if (!cJSON_IsNumber(index) || !isfinite(index->valuedouble) ||
        index->valuedouble != floor(index->valuedouble) || index->valuedouble < 0) {
        snprintf(why, cap, "'buffer' must be a non-negative integer (an index into the buffers)");
        return -1;
    }
    if (!f || f->n == 0) {
        snprintf(why, cap, "'buffer' names buffer %.0f, but no buffers came with the text",
                 index->valuedouble);
        return -1;
    }
    if (index->valuedouble >= (double)f->n) {
        snprintf(why, cap, "'buffer' %.0f is out of range (%zu buffers)", index->valuedouble, f->n);
        return -1;
    }
    size_t i = (size_t)index->valuedouble;
    if (f->used[i]) {
        snprintf(why, cap, "buffer %zu is named twice", i);
        return -1;
    }
    if ((double)f->len[i] != need) {
        snprintf(why, cap, "buffer %zu is %zu bytes, the shape needs %.0f", i, f->len[i], need);
        return -1;
    }
    f->used[i] = 1;
    return 0;
}

long bb_frames_unclaimed(const bb_frames *f)
{
    for (size_t i = 0; f && i < f->n; i++)
        if (!f->used[i])
            return (long)i;
    return -1;
}

int bb_frames_check_inputs(const char *inputs_json, size_t len, const bb_buffer *bufs, size_t n,
                           const bb_limits *limits, bb_error **err)
{
    if (n > BB_MAX_BUFFERS)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "inputs: %zu buffers, at most %d are allowed", n,
                       BB_MAX_BUFFERS);
    if (n && !bufs)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "inputs: %zu buffers announced, none given", n);
    bb_frames frames;
    size_t lens[BB_MAX_BUFFERS];
    for (size_t i = 0; i < n; i++) {
        if (!bufs[i].data && bufs[i].len)
            return bb_fail(err, BB_ERR_INVALID_REQUEST, "inputs: buffer %zu has no data", i);
        lens[i] = bufs[i].len;
    }
    bb_frames_init(&frames, lens, n);
    size_t total = bb_frames_total(&frames);
    if (total > limits->max_input_bytes || len > limits->max_input_bytes - total)
        return bb_fail(err, BB_ERR_INVALID_REQUEST,
                       "inputs: %zu bytes of text and %zu bytes of buffers, over the input limit of "
                       "%zu bytes", len, total, limits->max_input_bytes);
    bb_limits with = *limits;
    with.buffers = &frames;
    return bb_wire_check_inputs(inputs_json, len, &with, err);
}

/* ---- finding the members to rewrite ---------------------------------------------- */

/* The members of a typed value the walks tell apart by key (shape and data in the forms
 * walk only); any other key is M_OTHER. */
enum { M_NONE, M_TAG, M_TYPE, M_TARGET, M_SHAPE, M_DATA, M_COUNT, M_OTHER = -1 };

/* What a typed value's `_type` says, as far as the walks care. */
enum { TAG_OTHER, TAG_NDARRAY, TAG_IMAGE };

typedef struct member_span {
    int have;
    size_t start, end;
} member_span;

typedef struct frame {
    int is_object;
    int tag;             /* TAG_NDARRAY, TAG_IMAGE (workflow_image) or TAG_OTHER */
    int raw;             /* its "type" is "raw" */
    int member;          /* the key of the member being read (M_NONE between members) */
    size_t member_start;
    member_span at[M_COUNT];   /* the spans of the members read, from M_TYPE on */
    double target_index; /* as cJSON reads the number (strtod), so as the checks saw it */
} frame;

typedef struct walker {
    const char *text;
    size_t len, pos;
    const char *target;     /* "buffer" or "data" */
    int forms;              /* the forms walk: raw images' type, shape and data members too */
    bb_json_rules rules;
    bb_buf scratch;
    frame *stack;
    size_t depth, cap;
    bb_frames_span *spans;
    size_t nspans, spans_cap;
    bb_error **err;
} walker;

static int decode_short(walker *w, char *out, size_t cap)
{
    w->scratch.len = 0;
    size_t full = 0;
    if (bb_json_decode_string(w->text, w->len, &w->pos, cap - 1, &w->scratch, &full, &w->rules, w->err) < 0)
        return -1;
    if (full >= cap) {
        out[0] = '\0';
        return 0;
    }
    memcpy(out, w->scratch.data ? w->scratch.data : "", full);
    out[full] = '\0';
    return 0;
}

/* Skips a (validated) string whose quote is at pos. */
static void skip_string(walker *w)
{
    size_t p = w->pos + 1;
    for (;;) {
        const char *q = memchr(w->text + p, '"', w->len - p);
        if (!q) {
            w->pos = w->len;
            return;
        }
        size_t at = (size_t)(q - w->text), back = 0;
        while (at - back > p && w->text[at - back - 1] == '\\')
            back++;
        p = at + 1;
        if (back % 2 == 0)
            break;
    }
    w->pos = p;
}

/* A JSON number as cJSON reads it (its bytes copied, '.' as the locale's decimal point,
 * strtod), so a `buffer` index is the one the typed-value checks claimed: "0.1e1" is 1
 * to both (strtol read 0: a [1] array carried 1000 bytes; attack note F1). */
static int number_value(const char *p, size_t n, double *out)
{
    char small[64], *digits = n < sizeof small ? small : malloc(n + 1);
    if (!digits)
        return -1;
    const char *point = localeconv()->decimal_point;
    for (size_t i = 0; i < n; i++)
        digits[i] = p[i] == '.' && point && point[0] ? point[0] : p[i];
    digits[n] = '\0';
    *out = strtod(digits, NULL);
    if (digits != small)
        free(digits);
    return 0;
}

static void skip_space(walker *w) { w->pos = bb_json_skip_space(w->text, w->len, w->pos); }

/* Room for one more item of a doubling array (n used of *cap, size bytes each; the first
 * allocation holds `first`): the array, moved or not, or NULL (out of memory, reported). */
static void *room_for_one(walker *w, void *items, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return items;
    size_t want = *cap ? *cap * 2 : first;
    void *grown = realloc(items, want * size);
    if (!grown) {
        bb_fail(w->err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    *cap = want;
    return grown;
}

static int push(walker *w, int is_object)
{
    frame *s = room_for_one(w, w->stack, w->depth, &w->cap, sizeof *s, 16);
    if (!s)
        return -1;
    w->stack = s;
    w->stack[w->depth++] = (frame){.is_object = is_object, .target_index = -1};
    return 0;
}

static int add_span(walker *w, size_t start, size_t end, double target_index, int kind, size_t aux_start,
                    size_t aux_end)
{
    if (!w->forms && w->nspans == BB_MAX_BUFFERS * 4 + 1)
        return 0;   /* past any legal count: the caller refuses the text by its count */
    bb_frames_span *s = room_for_one(w, w->spans, w->nspans, &w->spans_cap, sizeof *s, 8);
    if (!s)
        return -1;
    w->spans = s;
    long index = -1;   /* not an index the checks could have claimed: refused below */
    if (target_index >= 0 && target_index < (double)(BB_MAX_BUFFERS * 4) &&
        target_index == (double)(long)target_index)
        index = (long)target_index;
    w->spans[w->nspans++] = (bb_frames_span){start, end, index, kind, aux_start, aux_end};
    return 0;
}

/* The spans of one typed value that closed: its target member (every walk); in the forms
 * walk, a raw image's `type` member and its pixels (`buffer` or `data`, with `shape`). */
static int value_spans(walker *w, const frame *f)
{
    if (!f->is_object || !(f->tag == TAG_NDARRAY || (f->tag == TAG_IMAGE && f->raw)))
        return 0;
    const member_span *target = &f->at[M_TARGET], *type = &f->at[M_TYPE], *shape = &f->at[M_SHAPE],
                      *data = &f->at[M_DATA];
    if (!w->forms || f->tag == TAG_NDARRAY)
        return target->have ? add_span(w, target->start, target->end, f->target_index, BB_FRAMES_TARGET, 0, 0)
                            : 0;
    if (!target->have && !data->have)
        return 0;
    if (!type->have || !shape->have)
        return bb_fail(w->err, BB_ERR_INTERNAL, "frames: a checked raw image lacks its type or shape");
    if (add_span(w, type->start, type->end, -1, BB_FRAMES_TYPE, 0, 0) < 0)
        return -1;
    if (target->have)
        return add_span(w, target->start, target->end, f->target_index, BB_FRAMES_PIXELS, shape->start,
                        shape->end);
    return add_span(w, data->start, data->end, -1, BB_FRAMES_PIXELS_DATA, shape->start, shape->end);
}

/* A value of the innermost object ended at w->pos. */
static void value_done(walker *w)
{
    if (!w->depth || !w->stack[w->depth - 1].is_object)
        return;
    frame *f = &w->stack[w->depth - 1];
    if (f->member >= M_TYPE)
        f->at[f->member] = (member_span){1, f->member_start, w->pos};
    f->member = M_NONE;
}

static int compare_spans(const void *a, const void *b)
{
    const bb_frames_span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Every `target` member of an ndarray or raw workflow_image, in text order. */
static int find_spans(walker *w)
{
    while (w->pos < w->len) {
        skip_space(w);
        if (w->pos >= w->len)
            break;
        char c = w->text[w->pos];
        frame *top = w->depth ? &w->stack[w->depth - 1] : NULL;
        if (c == ',' || c == ':') {
            w->pos++;
            continue;
        }
        if (c == '}' || c == ']') {
            w->pos++;
            if (!top)
                break;
            frame done = *top;
            w->depth--;
            if (value_spans(w, &done) < 0)
                return -1;
            value_done(w);
            continue;
        }
        if (top && top->is_object && top->member == M_NONE && c == '"') {
            /* a key: the member it starts is remembered until its value ends */
            size_t start = w->pos;
            char key[16];
            if (decode_short(w, key, sizeof key) < 0)
                return -1;
            top->member_start = start;
            top->member = strcmp(key, "_type") == 0 ? M_TAG : strcmp(key, "type") == 0 ? M_TYPE
                          : strcmp(key, w->target) == 0 ? M_TARGET : !w->forms ? M_OTHER
                          : strcmp(key, "shape") == 0 ? M_SHAPE : strcmp(key, "data") == 0 ? M_DATA : M_OTHER;
            continue;
        }
        if (c == '{' || c == '[') {
            w->pos++;
            if (push(w, c == '{') < 0)
                return -1;
            continue;
        }
        if (c == '"') {
            if (top && top->is_object && (top->member == M_TAG || top->member == M_TYPE)) {
                char value[24];
                if (decode_short(w, value, sizeof value) < 0)
                    return -1;
                if (top->member == M_TAG)
                    top->tag = strcmp(value, "ndarray") == 0          ? TAG_NDARRAY
                               : strcmp(value, "workflow_image") == 0 ? TAG_IMAGE
                                                                      : TAG_OTHER;
                else
                    top->raw = strcmp(value, "raw") == 0;
            } else {
                skip_string(w);
            }
            value_done(w);
            continue;
        }
        /* a number or a literal */
        size_t start = w->pos;
        while (w->pos < w->len && strchr("-+.eE0123456789truefalsn", w->text[w->pos]) && w->text[w->pos])
            w->pos++;
        if (w->pos == start)
            return bb_fail(w->err, BB_ERR_INTERNAL, "frames: unexpected byte at %zu", start);
        if (top && top->is_object && top->member == M_TARGET &&
            number_value(w->text + start, w->pos - start, &top->target_index) < 0)
            return bb_fail(w->err, BB_ERR_INTERNAL, "out of memory");
        value_done(w);
    }
    if (w->nspans > 1)
        qsort(w->spans, w->nspans, sizeof *w->spans, compare_spans);
    return 0;
}

static void walker_init(walker *w, const char *text, size_t len, const char *target, bb_error **err)
{
    memset(w, 0, sizeof *w);
    w->text = text;
    w->len = len;
    w->target = target;
    w->err = err;
    w->rules = (bb_json_rules){.max_depth = INT32_MAX, .max_values = SIZE_MAX,
                               .kind = BB_ERR_INTERNAL, .limit_kind = BB_ERR_INTERNAL, .what = "buffers"};
}

static void walker_free(walker *w)
{
    bb_buf_free(&w->scratch);
    free(w->stack);
    free(w->spans);
}

/* ---- the rewrites ---------------------------------------------------------------- */

/* A span's buffer index as the checks claimed it: in range, and each buffer once (a second
 * span naming one is a span the checks never saw: F2). */
static int claim_index(const bb_frames_span *s, size_t n, unsigned char seen[BB_MAX_BUFFERS], bb_error **err)
{
    if (s->index < 0 || (size_t)s->index >= n || n > BB_MAX_BUFFERS)
        return bb_fail(err, BB_ERR_INTERNAL, "frames: a checked text names buffer %ld of %zu", s->index, n);
    if (seen[s->index]++)
        return bb_fail(err, BB_ERR_INTERNAL, "frames: a checked text names buffer %ld twice", s->index);
    return 0;
}

/* The base64 of a checked `"data": "<base64>"` member: the string after the colon, read as
 * the checks read it, as cJSON decodes it. Base64 may come with JSON escapes ("\/", as PHP
 * and some JS encoders write '/'; "\u0041": attack note A1): such a string is decoded into
 * w->scratch; the raw text is read as base64 otherwise. Errors go to err (NULL: none). */
static int data_base64(walker *w, const bb_frames_span *s, const char **b64, size_t *b64_len, bb_error **err)
{
    const char *text = w->text;
    const char *colon = memchr(text + s->start, ':', s->end - s->start);
    const char *open = colon ? memchr(colon, '"', (size_t)(text + s->end - colon)) : NULL;
    const char *close = text + s->end - 1;
    if (!open || close <= open || *close != '"')
        return bb_fail(err, BB_ERR_INTERNAL, "frames: a checked `data` member is not a string");
    *b64 = open + 1;
    *b64_len = (size_t)(close - open - 1);
    if (!memchr(*b64, '\\', *b64_len))
        return 0;
    size_t pos = (size_t)(open - text), full = 0;
    w->scratch.len = 0;
    if (bb_json_decode_string(text, w->len, &pos, SIZE_MAX, &w->scratch, &full, &w->rules, err) < 0)
        return -1;
    *b64 = w->scratch.data ? w->scratch.data : "";
    *b64_len = w->scratch.len;
    return 0;
}

/* The end of a rewrite of the text: what follows the last span, copied (unless it failed),
 * an out-of-memory report, the walker freed. */
static int rewrite_done(walker *w, int rc, size_t at, bb_buf *out)
{
    if (rc == 0) {
        bb_buf_append(out, w->text + at, w->len - at);
        if (out->failed)
            rc = bb_fail(w->err, BB_ERR_INTERNAL, "out of memory");
    }
    walker_free(w);
    return rc;
}

int bb_frames_to_data(const char *text, size_t len, const bb_buffer *bufs, size_t n, bb_buf *out,
                      bb_error **err)
{
    walker w;
    walker_init(&w, text, len, "buffer", err);
    int rc = find_spans(&w);
    size_t at = 0;
    unsigned char seen[BB_MAX_BUFFERS] = {0};
    for (size_t i = 0; rc == 0 && i < w.nspans; i++) {
        const bb_frames_span *s = &w.spans[i];
        if ((rc = claim_index(s, n, seen, err)) < 0)
            break;
        bb_buf_append(out, text + at, s->start - at);
        bb_buf_puts(out, "\"data\":\"");
        if (bb_base64_encode(bufs[s->index].data, bufs[s->index].len, out) < 0)
            out->failed = 1;
        bb_buf_putc(out, '"');
        at = s->end;
    }
    return rewrite_done(&w, rc, at, out);
}

int bb_frames_from_data(const char *text, size_t len, size_t first, bb_frames_alloc_fn alloc,
                        void *ctx, bb_buf *out, void **data, size_t *lens, size_t *n_new,
                        bb_error **err)
{
    *n_new = 0;
    walker w;
    walker_init(&w, text, len, "data", err);
    int rc = find_spans(&w);
    if (rc == 0 && first + w.nspans > BB_MAX_BUFFERS)
        rc = bb_fail(err, BB_ERR_INVALID_REQUEST, "inputs: %zu arrays in buffers and `data`, at most %d",
                     first + w.nspans, BB_MAX_BUFFERS);
    size_t at = 0;
    for (size_t i = 0; rc == 0 && i < w.nspans; i++) {
        const bb_frames_span *s = &w.spans[i];
        const char *b64;
        size_t b64_len;
        if ((rc = data_base64(&w, s, &b64, &b64_len, err)) < 0)
            break;
        /* its length from the text's; bb_base64_decode_into checks every byte (one pass
         * over megabytes of base64, not two) */
        long long need = b64_len % 4 ? -1
                         : (long long)(b64_len / 4 * 3) - (b64_len && b64[b64_len - 1] == '=') -
                               (b64_len > 1 && b64[b64_len - 2] == '=');
        if (need < 0) {
            rc = bb_fail(err, BB_ERR_INTERNAL, "frames: a checked `data` member is not base64");
            break;
        }
        void *dst = alloc(ctx, (size_t)need);
        if (!dst && need > 0) {
            rc = bb_fail(err, BB_ERR_INVALID_REQUEST, "inputs: no room for %lld bytes of array data", need);
            break;
        }
        size_t got = 0;
        if (bb_base64_decode_into(b64, b64_len, dst, (size_t)need, &got) < 0 || got != (size_t)need) {
            rc = bb_fail(err, BB_ERR_INTERNAL, "frames: a checked `data` member did not decode");
            break;
        }
        data[*n_new] = dst;
        lens[*n_new] = got;
        bb_buf_append(out, text + at, s->start - at);
        bb_buf_printf(out, "\"buffer\":%zu", first + *n_new);
        (*n_new)++;
        at = s->end;
    }
    return rewrite_done(&w, rc, at, out);
}

/* ---- the forms for a driver that sends JSON only ---------------------------------- */

/* base64 written as the bytes come (a few pending between writes). */
typedef struct b64_sink {
    bb_buf *out;
    unsigned char pend[3];
    size_t npend;
} b64_sink;

static int b64_write(void *sink, const void *bytes, size_t n)
{
    b64_sink *s = sink;
    const unsigned char *p = bytes;
    if (s->npend) {
        while (s->npend < 3 && n) {
            s->pend[s->npend++] = *p++;
            n--;
        }
        if (s->npend < 3)
            return 0;
        if (bb_base64_encode(s->pend, 3, s->out) < 0)
            return -1;
        s->npend = 0;
    }
    size_t whole = n / 3 * 3;
    if (whole && bb_base64_encode(p, whole, s->out) < 0)
        return -1;
    memcpy(s->pend, p + whole, n - whole);
    s->npend = n - whole;
    return 0;
}

/* [h, w] or [h, w, c] of a checked `shape` member (its value parsed as the checks parse it). */
static int image_shape(const char *text, const bb_frames_span *s, size_t dims[3])
{
    const char *open = memchr(text + s->aux_start, '[', s->aux_end - s->aux_start);
    if (!open)
        return -1;
    cJSON *a = cJSON_ParseWithLength(open, (size_t)(text + s->aux_end - open));
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0, ok = n == 2 || n == 3;
    dims[2] = 1;
    for (int i = 0; ok && i < n; i++) {
        const cJSON *d = cJSON_GetArrayItem(a, i);
        ok = cJSON_IsNumber(d) && d->valuedouble >= 1 && d->valuedouble < 2147483648.0 &&
             d->valuedouble == floor(d->valuedouble);
        if (ok)
            dims[i] = (size_t)d->valuedouble;
    }
    cJSON_Delete(a);
    return ok && (dims[2] == 1 || dims[2] == 3 || dims[2] == 4) ? 0 : -1;
}

/* The bytes of a checked `"data": "<base64>"` member (malloc'd). */
static unsigned char *data_bytes(walker *w, const bb_frames_span *s, size_t *len)
{
    const char *b64;
    size_t b64_len;
    unsigned char *out = NULL;
    if (data_base64(w, s, &b64, &b64_len, NULL) < 0)
        return NULL;
    if (bb_base64_decode(b64, b64_len, &out, len) < 0)
        return NULL;
    return out ? out : malloc(1);
}

static int write_image(walker *w, const bb_frames_span *s, const bb_buffer *bufs, size_t n,
                       bb_frames_image_fn encode, void *ctx, bb_buf *out, bb_error **err)
{
    const char *text = w->text;
    size_t dims[3], len = 0;
    if (image_shape(text, s, dims) < 0)
        return bb_fail(err, BB_ERR_INTERNAL, "frames: a checked raw image has no shape");
    unsigned char *owned = NULL;
    const unsigned char *pixels;
    if (s->kind == BB_FRAMES_PIXELS) {
        if (s->index < 0 || (size_t)s->index >= n)
            return bb_fail(err, BB_ERR_INTERNAL, "frames: a checked text names buffer %ld of %zu", s->index, n);
        pixels = bufs[s->index].data;
        len = bufs[s->index].len;
    } else if (!(pixels = owned = data_bytes(w, s, &len))) {
        return bb_fail(err, BB_ERR_INTERNAL, "frames: a checked raw image's data did not decode");
    }
    int rc = 0;
    if ((double)dims[0] * (double)dims[1] * (double)dims[2] != (double)len)
        rc = bb_fail(err, BB_ERR_INTERNAL, "frames: a checked raw image is %zu bytes, not its shape", len);
    b64_sink sink = {out, {0}, 0};
    bb_buf_puts(out, "\\\"value\\\":\\\"");
    if (rc == 0 && (encode(ctx, pixels, dims[0], dims[1], dims[2], b64_write, &sink) < 0 ||
                    (sink.npend && bb_base64_encode(sink.pend, sink.npend, out) < 0)))
        rc = out->failed ? bb_fail(err, BB_ERR_INTERNAL, "out of memory")
                         : bb_fail(err, BB_ERR_INTERNAL, "a raw image of %zux%zux%zu could not be encoded",
                                   dims[0], dims[1], dims[2]);
    bb_buf_puts(out, "\\\"");
    free(owned);
    return rc;
}

int bb_frames_write_forms(const char *text, size_t len, const bb_buffer *bufs, size_t n,
                          bb_frames_image_fn encode, void *ctx, bb_buf *out, size_t *n_images,
                          bb_error **err)
{
    *n_images = 0;
    walker w;
    walker_init(&w, text, len, "buffer", err);
    w.forms = 1;
    int rc = find_spans(&w);
    size_t at = 0;
    unsigned char seen[BB_MAX_BUFFERS] = {0};
    bb_buf_putc(out, '"');
    for (size_t i = 0; rc == 0 && i < w.nspans; i++) {
        const bb_frames_span *s = &w.spans[i];
        if (s->start < at) {
            rc = bb_fail(err, BB_ERR_INTERNAL, "frames: overlapping members at %zu", s->start);
            break;
        }
        if ((s->kind == BB_FRAMES_TARGET || s->kind == BB_FRAMES_PIXELS) &&
            (rc = claim_index(s, n, seen, err)) < 0)
            break;
        bb_buf_json_chars(out, text + at, s->start - at);
        at = s->end;
        if (s->kind == BB_FRAMES_TYPE) {
            bb_buf_puts(out, "\\\"type\\\":\\\"base64\\\"");
        } else if (s->kind == BB_FRAMES_TARGET) {
            bb_buf_puts(out, "\\\"data\\\":\\\"");
            if (bb_base64_encode(bufs[s->index].data, bufs[s->index].len, out) < 0)
                out->failed = 1;
            bb_buf_puts(out, "\\\"");
        } else {
            rc = write_image(&w, s, bufs, n, encode, ctx, out, err);
            (*n_images)++;
        }
    }
    if (rc == 0) {
        bb_buf_json_chars(out, text + at, len - at);
        bb_buf_putc(out, '"');
        if (out->failed)
            rc = bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    walker_free(&w);
    return rc;
}
