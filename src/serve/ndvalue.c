/* ndvalue.c: rewrites ndarrays in a block's outputs from blockbox's raw "data" form
 * (base64 of little-endian C-order bytes) to Roboflow's nested-list "value" form. */
#include <endian.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "serve.h"

#define SV_MAX_DIMS 32

typedef enum { K_BOOL, K_INT, K_UINT, K_FLOAT } kind_t;

typedef struct nd {
    kind_t kind;
    int size;                 /* bytes per item */
    const unsigned char *raw;
    size_t n_raw;
    long long shape[SV_MAX_DIMS];
    int ndim;
    size_t at;                /* next item */
} nd;

static int dtype_of(const char *name, kind_t *kind, int *size)
{
    static const struct { const char *name; kind_t kind; int size; } t[] = {
        {"bool", K_BOOL, 1},   {"int8", K_INT, 1},     {"int16", K_INT, 2},   {"int32", K_INT, 4},
        {"int64", K_INT, 8},   {"uint8", K_UINT, 1},   {"uint16", K_UINT, 2}, {"uint32", K_UINT, 4},
        {"uint64", K_UINT, 8}, {"float16", K_FLOAT, 2}, {"float32", K_FLOAT, 4},
        {"float64", K_FLOAT, 8},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(name, t[i].name) == 0) {
            *kind = t[i].kind;
            *size = t[i].size;
            return 0;
        }
    return -1;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Canonical base64 (the core has checked it); NULL if it is not. */
static unsigned char *b64decode(const char *s, size_t *out_len)
{
    size_t n = strlen(s);
    if (n % 4)
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)s[i + j];
            if (c == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad || (v[j] = b64val(c)) < 0) {
                free(out);
                return NULL;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    *out_len = o;
    return out;
}

static float half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexpf((float)(mant | 0x400), exp - 25);
    return sign ? -v : v;
}

/* Floats as Python's json.dumps writes them (NaN, Infinity), which is what
 * Roboflow's server sends and its client's json.loads reads. */
static void put_float(sv_buf *b, double v, int digits)
{
    if (isnan(v))
        sv_buf_puts(b, "NaN");
    else if (isinf(v))
        sv_buf_puts(b, v > 0 ? "Infinity" : "-Infinity");
    else {
        char t[40];
        int n = snprintf(t, sizeof t, "%.*g", digits, v);
        /* keep it a float literal, as Python's tolist() gives floats */
        if (n > 0 && !strpbrk(t, ".eEn"))
            snprintf(t + n, sizeof t - (size_t)n, ".0");
        sv_buf_puts(b, t);
    }
}

static void put_item(sv_buf *b, nd *a)
{
    const unsigned char *p = a->raw + a->at * (size_t)a->size;
    a->at++;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    switch (a->size) {
    case 1: u64 = p[0]; break;
    case 2: memcpy(&u16, p, 2); u64 = le16toh(u16); break;
    case 4: memcpy(&u32, p, 4); u64 = le32toh(u32); break;
    default: memcpy(&u64, p, 8); u64 = le64toh(u64); break;
    }
    switch (a->kind) {
    case K_BOOL:
        sv_buf_puts(b, u64 ? "true" : "false");
        break;
    case K_UINT:
        sv_buf_printf(b, "%llu", (unsigned long long)u64);
        break;
    case K_INT: {
        long long v;
        if (a->size == 1) v = (int8_t)u64;
        else if (a->size == 2) v = (int16_t)u64;
        else if (a->size == 4) v = (int32_t)u64;
        else v = (int64_t)u64;
        sv_buf_printf(b, "%lld", v);
        break;
    }
    case K_FLOAT:
        if (a->size == 2) {
            put_float(b, half_to_float((uint16_t)u64), 5);
        } else if (a->size == 4) {
            float f;
            u32 = (uint32_t)u64;
            memcpy(&f, &u32, 4);
            put_float(b, f, 9);
        } else {
            double d;
            memcpy(&d, &u64, 8);
            put_float(b, d, 17);
        }
        break;
    }
}

static void put_dim(sv_buf *b, nd *a, int dim)
{
    if (dim == a->ndim) {
        put_item(b, a);
        return;
    }
    sv_buf_add(b, "[", 1);
    for (long long i = 0; i < a->shape[dim] && !b->text.failed; i++) {
        if (i)
            sv_buf_add(b, ", ", 2);
        put_dim(b, a, dim + 1);
    }
    sv_buf_add(b, "]", 1);
}

/* The value form of one ndarray object; NULL when it is not a well-formed data form
 * (then it is left as it is) or when the text would pass the cap (*over set). */
static char *value_text(const cJSON *obj, size_t max_bytes, int *over)
{
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(obj, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(obj, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
    nd a = {0};
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsString(data) ||
        dtype_of(dt->valuestring, &a.kind, &a.size) < 0)
        return NULL;
    double items = 1;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 2147483647.0 ||
            a.ndim >= SV_MAX_DIMS)
            return NULL;
        a.shape[a.ndim++] = (long long)d->valuedouble;
        items *= d->valuedouble;
    }
    /* The least text the value form can take, counted before any is written: every
     * list its brackets and separators (empty dimensions included: (60000000, 0) is 60
     * million "[]"), every item a byte. Over the cap: refused without the work. */
    double least = 0, lists = 1;
    for (int d = 0; d < a.ndim; d++) {
        least += lists * (2.0 + 2.0 * (a.shape[d] > 0 ? (double)a.shape[d] - 1 : 0));
        lists *= (double)a.shape[d];
    }
    least += lists;   /* the items */
    if (least > (double)max_bytes) {
        *over = 1;
        return NULL;
    }
    unsigned char *raw = b64decode(data->valuestring, &a.n_raw);
    if (!raw)
        return NULL;
    if ((double)a.n_raw != items * a.size) {
        free(raw);
        return NULL;
    }
    a.raw = raw;
    sv_buf b = {.max = max_bytes};
    put_dim(&b, &a, 0);
    free(raw);
    if (b.text.failed) {
        *over = 1;
        sv_buf_free(&b);
        return NULL;
    }
    return sv_buf_steal(&b, NULL);
}

/* Walks the tree; returns -1 when a conversion passed the cap. */
static int rewrite(cJSON *node, size_t max_bytes, size_t *used)
{
    for (cJSON *c = node->child; c; c = c->next) {
        if (cJSON_IsObject(c)) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "_type");
            if (cJSON_IsString(t) && strcmp(t->valuestring, "ndarray") == 0 &&
                cJSON_GetObjectItemCaseSensitive(c, "data")) {
                int over = 0;
                char *text = value_text(c, max_bytes - *used, &over);
                if (over)
                    return -1;
                if (text) {
                    *used += strlen(text);
                    cJSON *v = cJSON_CreateRaw(text);
                    free(text);
                    if (!v)
                        return -1;
                    cJSON_DeleteItemFromObjectCaseSensitive(c, "data");
                    cJSON_AddItemToObject(c, "value", v);
                }
                continue;
            }
        }
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && rewrite(c, max_bytes, used) < 0)
            return -1;
    }
    return 0;
}

char *sv_ndarray_to_value(const char *outputs_json, size_t max_bytes, const char **why)
{
    cJSON *root = cJSON_Parse(outputs_json);
    if (!root) {
        *why = "out of memory reading the outputs";
        return NULL;
    }
    size_t used = 0;
    if (rewrite(root, max_bytes, &used) < 0) {
        cJSON_Delete(root);
        *why = "the outputs' ndarrays in the nested-list value form are over the reply limit; "
               "a client that reads the data form can ask for it with \"ndarray_form\": \"data\"";
        return NULL;
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        *why = "out of memory writing the outputs";
    return text;
}
