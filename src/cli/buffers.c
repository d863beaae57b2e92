/* buffers.c: the CLI's side of the binary path: `--input NAME=@FILE.npy` becomes a buffer
 * passed by reference, and output buffers become the JSON data form again (or .npy files). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buffers.h"
#include "cli.h"

int bb_cli_npy_input(const char *path, size_t max, bb_buf *json, bb_cli_buffers *b, bb_error **err)
{
    if (b->n == BB_MAX_BUFFERS)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "more than %d .npy inputs", BB_MAX_BUFFERS);
    size_t used = json->len + b->total;
    if (used >= max)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the inputs are larger than %zu bytes", max);
    bb_npy *a = &b->arrays[b->n];
    if (bb_npy_read(path, max - used, a, err) < 0)
        return -1;
    b->bufs[b->n] = (bb_buffer){.data = a->data, .len = a->len};
    bb_buf_printf(json, "{\"_type\": \"ndarray\", \"dtype\": \"%s\", \"shape\": [", a->dtype);
    for (int i = 0; i < a->ndim; i++)
        bb_buf_printf(json, "%s%lld", i ? ", " : "", a->shape[i]);
    bb_buf_printf(json, "], \"buffer\": %zu}", b->n);
    b->total += a->len;
    b->n++;
    return json->failed ? bb_cli_fail(err, BB_ERR_INTERNAL, "out of memory") : 0;
}

void bb_cli_buffers_free(bb_cli_buffers *b)
{
    for (size_t i = 0; i < b->n; i++)
        bb_npy_free(&b->arrays[i]);
    b->n = b->total = 0;
}

/* ---- outputs: a walk over the canonical outputs text ---------------------------------
 * The core has checked the outputs and written them canonically (no whitespace, strict
 * JSON, every buffer named once by an ndarray whose shape and dtype match its length),
 * so the walk only finds spans; it still never reads past the text. */

#define WALK_MAX_DEPTH 1024   /* above the core's own depth limit (at most 512) */

typedef struct walk {
    const char *s;
    size_t n;
    const bb_result *res;
    const char *out_dir;
    bb_buf *out;
    int replaced;
    size_t written;   /* .npy files written */
    bb_buf names;     /* their paths, each NUL-terminated */
    /* The value's place in the outputs, for a file name: "g", "a.0"; cut so that
     * "<path>.<tag>.npy" stays within a file name's 255 bytes (a longer key is the
     * block's right; two keys cut to one name get a tag, as any collision does). */
    char path[255 - sizeof ".18446744073709551615.npy" + 2];
    bb_error **err;
} walk;

static int span_is(const char *s, size_t a, size_t b, const char *lit)
{
    size_t len = strlen(lit);
    return b - a == len && memcmp(s + a, lit, len) == 0;
}

/* Appends the part of a key usable in a file name (letters, digits, '_', '-'). */
static void path_push(walk *w, const char *s, size_t a, size_t b, size_t *saved)
{
    size_t len = strlen(w->path);
    *saved = len;
    if (len && len + 1 < sizeof w->path)
        w->path[len++] = '.';
    for (size_t i = a; i < b && len + 1 < sizeof w->path; i++) {
        char c = s[i];
        w->path[len++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')
                             ? c : '_';
    }
    w->path[len] = '\0';
}

static int walk_value(walk *w, size_t *i, int depth);

/* Walks the value at *at one level down, as the member s[a..b) (a name or an index) of
 * the current path. */
static int walk_child(walk *w, const char *s, size_t a, size_t b, size_t *at, int depth)
{
    size_t saved;
    path_push(w, s, a, b, &saved);
    int rc = walk_value(w, at, depth + 1);
    w->path[saved] = '\0';
    return rc;
}

/* Writes one output array to out_dir/<path>.npy and puts "file": PATH in its place.
 * tag tells apart two outputs whose names differ only in characters a file name cannot hold. */
static int write_npy(walk *w, unsigned long tag, size_t dtype_a, size_t dtype_b, size_t shape_a, size_t shape_b,
                     const void *data, size_t len)
{
    /* dtype: a quoted allowlisted name (no escapes), uint8 for a raw image; shape: [d0,d1,…]. */
    char dtype[16] = "uint8";
    if (dtype_b > dtype_a + 2 && dtype_b - dtype_a - 2 < sizeof dtype) {
        memcpy(dtype, w->s + dtype_a + 1, dtype_b - dtype_a - 2);
        dtype[dtype_b - dtype_a - 2] = '\0';
    }
    long long shape[BB_NPY_MAX_DIMS];
    int ndim = 0;
    for (size_t k = shape_a + 1; k < shape_b && w->s[k] != ']';) {
        if (ndim == BB_NPY_MAX_DIMS)
            return bb_cli_fail(w->err, BB_ERR_INVALID_RESPONSE, "an output ndarray has too many dimensions");
        char *stop = NULL;
        shape[ndim++] = strtoll(w->s + k, &stop, 10);
        k = (size_t)(stop - w->s);
        if (k < shape_b && w->s[k] == ',')
            k++;
        else if (stop == w->s + k && w->s[k] != ']')
            return bb_cli_fail(w->err, BB_ERR_INVALID_RESPONSE, "an output ndarray has a bad shape");
    }
    char file[4352];
    int fl = snprintf(file, sizeof file, "%s/%s.npy", w->out_dir, w->path[0] ? w->path : "output");
    if (fl < 0 || (size_t)fl >= sizeof file)
        return bb_cli_fail(w->err, BB_ERR_INVALID_REQUEST, "--output-dir path is too long");
    /* Two outputs of this run whose names differ only in characters a file name cannot
     * hold get a tag; a file that was there before is never replaced (O_EXCL). */
    struct stat st;
    int taken = 0;
    for (size_t at = 0; lstat(file, &st) == 0 && at < w->names.len; at += strlen(w->names.data + at) + 1)
        taken |= strcmp(w->names.data + at, file) == 0;
    if (taken && snprintf(file, sizeof file, "%s/%s.%lu.npy", w->out_dir, w->path[0] ? w->path : "output", tag) >=
                     (int)sizeof file)
        return bb_cli_fail(w->err, BB_ERR_INVALID_REQUEST, "--output-dir path is too long");
    if (bb_npy_write(file, dtype, shape, ndim, data, len, w->err) < 0)
        return -1;
    w->written++;
    bb_buf_append(&w->names, file, strlen(file) + 1);
    bb_buf_puts(w->out, "\"file\":");
    bb_buf_json_string(w->out, file, strlen(file));
    return 0;
}


/* An ndarray's bytes member ("buffer": i, or "data": base64 with --output-dir) becomes
 * "data" or "file". */
static int put_buffer_member(walk *w, int is_data, size_t idx_a, size_t idx_b, size_t dtype_a, size_t dtype_b,
                             size_t shape_a, size_t shape_b)
{
    unsigned char *decoded = NULL;
    if (is_data) {   /* the data form, from a driver that returns no buffers: only with out_dir */
        size_t dlen = 0;
        if (idx_b < idx_a + 2 || bb_base64_decode(w->s + idx_a + 1, idx_b - idx_a - 2, &decoded, &dlen) < 0)
            return bb_cli_fail(w->err, BB_ERR_INVALID_RESPONSE, "an output ndarray has bad base64");
        int rc = write_npy(w, (unsigned long)w->written, dtype_a, dtype_b, shape_a, shape_b, decoded, dlen);
        free(decoded);
        return rc;
    }
    char num[24];
    size_t nlen = idx_b - idx_a;
    if (nlen == 0 || nlen >= sizeof num)
        return bb_cli_fail(w->err, BB_ERR_INVALID_RESPONSE, "an output names a bad buffer index");
    memcpy(num, w->s + idx_a, nlen);
    num[nlen] = '\0';
    char *end = NULL;
    unsigned long idx = strtoul(num, &end, 10);
    if (*end != '\0' || idx >= bb_result_buffer_count(w->res))
        return bb_cli_fail(w->err, BB_ERR_INVALID_RESPONSE, "an output names buffer %s, which the result lacks", num);
    size_t len = 0;
    const void *data = bb_result_buffer(w->res, idx, &len);
    if (!w->out_dir) {
        bb_buf_puts(w->out, "\"data\":\"");
        bb_base64_encode(data, len, w->out);
        bb_buf_putc(w->out, '"');
        return 0;
    }
    return write_npy(w, idx, dtype_a, dtype_b, shape_a, shape_b, data, len);
}

static int walk_object(walk *w, size_t *i, int depth)
{
    const char *s = w->s;
    size_t n = w->n, start = *i, end = bb_json_skip_value(s, start, n);
    /* First pass: is this a buffer-naming ndarray? */
    size_t k = start + 1, type_a = 0, type_b = 0, idx_a = 0, idx_b = 0, dt_a = 0, dt_b = 0, sh_a = 0, sh_b = 0;
    size_t key_a = 0;   /* where the replaced member ("buffer" or "data") starts */
    int is_data = 0;
    while (k < end && s[k] == '"') {
        size_t ka = k, kb = bb_json_skip_string(s, k, n);
        if (kb >= end || s[kb] != ':')
            return bb_cli_fail(w->err, BB_ERR_INVALID_RESPONSE, "the outputs are not canonical JSON");
        size_t va = kb + 1, vb = bb_json_skip_value(s, va, n);
        if (span_is(s, ka, kb, "\"_type\""))
            type_a = va, type_b = vb;
        else if (span_is(s, ka, kb, "\"buffer\""))
            idx_a = va, idx_b = vb, key_a = ka, is_data = 0;
        else if (w->out_dir && span_is(s, ka, kb, "\"data\""))
            idx_a = va, idx_b = vb, key_a = ka, is_data = 1;
        else if (span_is(s, ka, kb, "\"dtype\""))
            dt_a = va, dt_b = vb;
        else if (span_is(s, ka, kb, "\"shape\""))
            sh_a = va, sh_b = vb;
        k = vb < end && s[vb] == ',' ? vb + 1 : vb;
    }
    /* an ndarray, or a raw workflow_image (uint8 pixels: written as the dtype uint8) */
    int is_image = type_b > type_a && span_is(s, type_a, type_b, "\"workflow_image\"");
    int is_ref = idx_b > idx_a && type_b > type_a && (span_is(s, type_a, type_b, "\"ndarray\"") || is_image);
    if (is_image)
        dt_a = dt_b = 0;   /* no dtype member: uint8 */
    bb_buf_putc(w->out, '{');
    k = start + 1;
    int first = 1;
    while (k < end && s[k] == '"') {
        size_t ka = k, kb = bb_json_skip_string(s, k, n), va = kb + 1, vb = bb_json_skip_value(s, va, n);
        if (!first)
            bb_buf_putc(w->out, ',');
        first = 0;
        if (is_ref && ka == key_a) {
            if (put_buffer_member(w, is_data, idx_a, idx_b, dt_a, dt_b, sh_a, sh_b) < 0)
                return -1;
            w->replaced++;
        } else {
            bb_buf_append(w->out, s + ka, va - ka);
            size_t at = va;
            if (is_ref)
                bb_buf_append(w->out, s + va, vb - va);
            else if (walk_child(w, s, ka + 1, kb - 1, &at, depth) < 0)
                return -1;
        }
        k = vb < end && s[vb] == ',' ? vb + 1 : vb;
    }
    bb_buf_putc(w->out, '}');
    *i = end;
    return 0;
}

static int walk_value(walk *w, size_t *i, int depth)
{
    if (depth > WALK_MAX_DEPTH)
        return bb_cli_fail(w->err, BB_ERR_INVALID_RESPONSE, "the outputs nest too deeply");
    const char *s = w->s;
    size_t n = w->n, start = *i;
    if (start >= n)
        return bb_cli_fail(w->err, BB_ERR_INVALID_RESPONSE, "the outputs end early");
    if (s[start] == '{')
        return walk_object(w, i, depth);
    if (s[start] != '[') {
        size_t end = bb_json_skip_value(s, start, n);
        bb_buf_append(w->out, s + start, end - start);
        *i = end;
        return 0;
    }
    size_t end = bb_json_skip_value(s, start, n), k = start + 1;
    bb_buf_putc(w->out, '[');
    for (unsigned long item = 0; k < end && s[k] != ']'; item++) {
        if (item)
            bb_buf_putc(w->out, ',');
        char index[24];
        int il = snprintf(index, sizeof index, "%lu", item);
        size_t at = k;
        if (walk_child(w, index, 0, (size_t)il, &at, depth) < 0)
            return -1;
        k = at < end && s[at] == ',' ? at + 1 : at;
    }
    bb_buf_putc(w->out, ']');
    *i = end;
    return 0;
}

int bb_cli_output_dir_check(const char *dir, bb_error **err)
{
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "--output-dir %s is not a directory", dir);
    return 0;
}

int bb_cli_outputs_inline(const bb_result *res, const char *out_dir, char **text, bb_error **err)
{
    *text = NULL;
    const char *outputs = bb_result_outputs(res);
    if (!outputs || (!out_dir && bb_result_buffer_count(res) == 0))
        return 0;
    if (out_dir && bb_cli_output_dir_check(out_dir, err) < 0)
        return -1;
    bb_buf out = {0};
    walk w = {.s = outputs, .n = strlen(outputs), .res = res, .out_dir = out_dir, .out = &out, .err = err};
    size_t at = 0;
    int rc = walk_value(&w, &at, 1);
    if (rc < 0)   /* nothing left behind: the files this run wrote go too */
        for (size_t k = 0; k < w.names.len; k += strlen(w.names.data + k) + 1)
            unlink(w.names.data + k);
    bb_buf_free(&w.names);
    if (rc < 0) {
        bb_buf_free(&out);
        return -1;
    }
    if (out.failed) {
        bb_buf_free(&out);
        return bb_cli_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    *text = bb_buf_steal(&out, NULL);
    return 0;
}
