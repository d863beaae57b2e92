/* json_text.c: JSON as text, on the strict reader (json_scan.c): the precheck before any
 * parser sees a text, cJSON on checked text, duplicate keys, safe echoes of hostile text. */
#include "json_text.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json_scan.h"

/* ---- precheck --------------------------------------------------------------- */

int bb_wire_precheck(const char *text, size_t len, size_t max_bytes, int max_depth, size_t max_values,
                     bb_error_kind kind, const char *what, bb_error **err)
{
    if (!text)
        return bb_fail(err, kind, "%s: missing", what);
    if (len > max_bytes)
        return bb_fail(err, kind, "%s: %zu bytes, over the limit of %zu bytes", what, len, max_bytes);
    bb_json_rules rules = {.max_depth = max_depth, .max_values = max_values, .kind = kind,
                           .limit_kind = kind, .what = what};
    size_t values = 0;
    return bb_json_scan_text(text, len, &rules, &values, NULL, err);
}

/* cJSON on text that passed the precheck: it is strict JSON, so cJSON reads it as
 * Python does; only running out of memory can make it fail. */
static int parse_checked(const char *text, size_t len, bb_error_kind kind, const char *what,
                         cJSON **out, bb_error **err)
{
    cJSON *tree = cJSON_ParseWithLength(text, len);
    if (!tree)
        return bb_fail(err, kind == BB_ERR_INVALID_REQUEST ? BB_ERR_INTERNAL : kind,
                       "%s: could not be parsed (out of memory?)", what);
    *out = tree;
    return 0;
}

int bb_wire_parse_json(const char *text, size_t len, size_t max_bytes, int max_depth,
                       size_t max_values, bb_error_kind kind, const char *what, cJSON **out,
                       bb_error **err)
{
    *out = NULL;
    if (bb_wire_precheck(text, len, max_bytes, max_depth, max_values, kind, what, err) < 0)
        return -1;
    return parse_checked(text, len, kind, what, out, err);
}

/* ---- keys and echoes ------------------------------------------------------------ */

void bb_wire_printable(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    if (!s)
        s = "";
    for (; *s && n + 1 < cap; s++)
        out[n++] = (*s >= 0x20 && *s < 0x7F) ? *s : '?';
    if (*s && cap >= 4) {
        n = cap - 4;
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int bb_wire_duplicate_key(const cJSON *object, const char **key)
{
    size_t n = 0;
    for (const cJSON *c = object->child; c; c = c->next)
        n++;
    if (n < 2)
        return 0;
    if (n <= 8) {
        for (const cJSON *a = object->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string ? a->string : "", b->string ? b->string : "") == 0) {
                    *key = a->string;
                    return 1;
                }
        return 0;
    }
    const char **keys = malloc(n * sizeof *keys);
    if (!keys)
        return -1;
    size_t i = 0;
    for (const cJSON *c = object->child; c; c = c->next)
        keys[i++] = c->string ? c->string : "";
    qsort(keys, n, sizeof *keys, compare_keys);
    int found = 0;
    for (i = 1; i < n && !found; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            *key = keys[i];
            found = 1;
        }
    free(keys);
    return found;
}
