/* common.c: what every benchmark shares: the clock, latency samples and their
 * percentiles, /proc readers, and the test blocks with their inputs and checks. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <blockbox/driver.h>
#include <blockbox/text.h>

#include "bench_internal.h"

/* Sets *err to a new error (the public API's) and returns -1. */
int bench_fail(bb_error **err, bb_error_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (err && !*err)
        *err = bb_error_new(kind, "%s", n < 0 ? "out of memory" : msg);
    free(msg);
    return -1;
}

int bench_result_failed(const bb_result *res, const char *what, bb_error **err)
{
    if (!res)
        return bench_fail(err, BB_ERR_INTERNAL, "out of memory");
    const bb_error *e = bb_result_error(res);
    if (!bb_result_ok(res))
        return bench_fail(err, bb_error_get_kind(e), "%s failed: %s: %s", what, bb_error_type_name(e),
                          bb_error_message(e));
    return 0;
}

/* ---- clock and samples ---------------------------------------------------- */

long long bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int bench_samples_add(bench_samples *s, long long ns, bb_error **err)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        long long *grown = realloc(s->ns, cap * sizeof *grown);
        if (!grown)
            return bench_fail(err, BB_ERR_INTERNAL, "out of memory");
        s->ns = grown;
        s->cap = cap;
    }
    s->ns[s->n++] = ns;
    return 0;
}

static int compare_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of the samples at or below it. */
static double rank_us(const bench_samples *s, double p)
{
    size_t rank = (size_t)(p * (double)s->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > s->n)
        rank = s->n;
    return (double)s->ns[rank - 1] / 1000.0;
}

void bench_samples_summarize(bench_samples *s, bench_summary *out)
{
    memset(out, 0, sizeof *out);
    if (s->n == 0)
        return;
    qsort(s->ns, s->n, sizeof *s->ns, compare_ll);
    double total = 0;
    for (size_t i = 0; i < s->n; i++)
        total += (double)s->ns[i];
    out->n = s->n;
    out->p50_us = rank_us(s, 0.50);
    out->p90_us = rank_us(s, 0.90);
    out->p99_us = rank_us(s, 0.99);
    out->mean_us = total / (double)s->n / 1000.0;
    out->min_us = (double)s->ns[0] / 1000.0;
    out->max_us = (double)s->ns[s->n - 1] / 1000.0;
}

void bench_samples_free(bench_samples *s)
{
    free(s->ns);
    memset(s, 0, sizeof *s);
}

/* ---- /proc ------------------------------------------------------------------ */

/* The value in KiB of a "Name:   123 kB" line of a /proc file; -1 if absent. */
static long proc_kib(const char *path, const char *field)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[256];
    size_t flen = strlen(field);
    long value = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            value = strtol(line + flen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return value;
}

long bench_rss_kib(pid_t pid)
{
    char path[64];
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    return proc_kib(path, "VmRSS");
}

int bench_smaps_kib(pid_t pid, long *private_kib, long *pss_kib)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    long clean = proc_kib(path, "Private_Clean");
    long dirty = proc_kib(path, "Private_Dirty");
    long pss = proc_kib(path, "Pss");
    if (clean < 0 || dirty < 0 || pss < 0)
        return -1;
    *private_kib = clean + dirty;
    *pss_kib = pss;
    return 0;
}

size_t bench_children(pid_t pid, pid_t *out, size_t max)
{
    char dirpath[64];
    snprintf(dirpath, sizeof dirpath, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dirpath);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (e->d_name[0] == '.')
            continue;
        char path[400];
        snprintf(path, sizeof path, "%s/%s/children", dirpath, e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        int child;
        while (n < max && fscanf(f, "%d", &child) == 1)
            out[n++] = (pid_t)child;
        fclose(f);
    }
    closedir(d);
    return n;
}

long bench_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;   /* the directory's own descriptor */
}

/* ---- the test blocks -------------------------------------------------------- */

const char bench_trivial_code[] = "def run(self, x):\n    return {\"y\": x + 1}\n";
const char bench_trivial_inputs[] = "{\"x\": 41}";
const char bench_image_code[] = "def run(self, image):\n    return {\"image\": cv2.bitwise_not(image)}\n";

#define IMAGE_BYTES ((size_t)BENCH_IMAGE_H * BENCH_IMAGE_W * BENCH_IMAGE_C)

unsigned char bench_image_byte(size_t i) { return (unsigned char)((i * 7u + i / 5760u) & 0xffu); }

char *bench_image_inputs(size_t *len, bb_error **err)
{
    unsigned char *pixels = malloc(IMAGE_BYTES);
    if (!pixels) {
        bench_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < IMAGE_BYTES; i++)
        pixels[i] = bench_image_byte(i);
    bb_buf b = {0};
    bb_buf_printf(&b, "{\"image\": {\"_type\": \"ndarray\", \"dtype\": \"uint8\", \"shape\": [%d, %d, %d], "
                      "\"data\": \"", BENCH_IMAGE_H, BENCH_IMAGE_W, BENCH_IMAGE_C);
    bb_base64_encode(pixels, IMAGE_BYTES, &b);
    bb_buf_puts(&b, "\"}}");
    free(pixels);
    char *text = bb_buf_steal(&b, len);
    if (!text)
        bench_fail(err, BB_ERR_INTERNAL, "out of memory");
    return text;
}

int bench_check_trivial(const char *outputs, bb_error **err)
{
    cJSON *root = cJSON_Parse(outputs);
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(root, "y");
    int ok = cJSON_IsNumber(y) && y->valuedouble == 42.0;
    cJSON_Delete(root);
    return ok ? 0 : bench_fail(err, BB_ERR_INVALID_RESPONSE, "the trivial block returned %.200s, not {\"y\": 42}",
                            outputs ? outputs : "(null)");
}

/* The bytes of a uint8 [h, w, c] ndarray in the data form (h 0: any shape of three
 * dimensions) into *raw (malloc'd); NULL, or why it is not one. */
static const char *uint8_data(const cJSON *nd, int h, int w, unsigned char **raw, size_t *raw_len)
{
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(nd, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(nd, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(nd, "data");
    *raw = NULL;
    *raw_len = 0;
    if (!cJSON_IsString(dtype) || strcmp(dtype->valuestring, "uint8") != 0 || cJSON_GetArraySize(shape) != 3 ||
        (h && (cJSON_GetArrayItem(shape, 0)->valuedouble != h || cJSON_GetArrayItem(shape, 1)->valuedouble != w)))
        return h ? "not a uint8 ndarray of the frame's shape" : "not a uint8 ndarray";
    if (!cJSON_IsString(data))
        return "not in the data (base64) form";
    if (bb_base64_decode(data->valuestring, strlen(data->valuestring), raw, raw_len) < 0)
        return "bad base64";
    return NULL;
}

int bench_check_image(const char *outputs, bb_error **err)
{
    cJSON *root = cJSON_Parse(outputs);
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(root, "image");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(img, "_type");
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    const char *why = !cJSON_IsString(type) || strcmp(type->valuestring, "ndarray") != 0
                          ? "not a uint8 ndarray"
                          : uint8_data(img, 0, 0, &raw, &raw_len);
    if (!why && raw_len != IMAGE_BYTES)
        why = "the wrong size";
    for (size_t i = 0; !why && i < raw_len; i++)
        if (raw[i] != (unsigned char)(255u - bench_image_byte(i)))
            why = "not the inverted image";
    free(raw);
    cJSON_Delete(root);
    return why ? bench_fail(err, BB_ERR_INVALID_RESPONSE, "the image block's output is %s", why) : 0;
}

/* ---- a frame in the JSON data form (the frame scenarios are in frames.c) ----------- */

char *bench_frame_data_inputs(const bench_frame *f, size_t *len, bb_error **err)
{
    bb_buf b = {0};
    bb_buf_printf(&b, "{\"f\": {\"_type\": \"ndarray\", \"dtype\": \"uint8\", \"shape\": [%d, %d, %d], \"data\": \"",
                  f->h, f->w, f->c);
    bb_base64_encode(f->pixels, f->bytes, &b);
    bb_buf_puts(&b, "\"}}");
    char *text = bb_buf_steal(&b, len);
    if (!text)
        bench_fail(err, BB_ERR_INTERNAL, "out of memory");
    return text;
}

/* The outputs {"g": ndarray} of the frame block, in the data form, equal to f->expected. */
int bench_check_frame_data(const bench_frame *f, const char *outputs, bb_error **err)
{
    cJSON *root = cJSON_Parse(outputs);
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    const char *why = uint8_data(cJSON_GetObjectItemCaseSensitive(root, "g"), f->h, f->w, &raw, &raw_len);
    if (!why && (raw_len != f->bytes || memcmp(raw, f->expected, f->bytes) != 0))
        why = "not the inverted frame";
    free(raw);
    cJSON_Delete(root);
    return why ? bench_fail(err, BB_ERR_INVALID_RESPONSE, "the frame block's output is %s", why) : 0;
}
