/* wire_traces.c: the `debug_traces` list of a response envelope — checks each entry
 * ({step, value[, timestamp, timestamp_timezone]}) and its caps, and keeps its exact text. */
#include <cjson/cJSON.h>
#include <string.h>

#include "error.h"
#include "wire.h"
#include "wire_internal.h"

/* Sizes are bytes of an entry's text as sent. The runtime measures characters of
 * json.dumps(entry) (ASCII, ", " and ": " separators), which is never smaller than the
 * compact text it sends, so an honest entry always fits the caps of wire_internal.h. */

/* ---- a scanner over JSON text that has passed the precheck and cJSON --------- */

typedef struct span {
    size_t at, end;
} span;

static size_t skip_space(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[i] is '"': the index after the closing quote (n if there is none). */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

/* The index after the value that starts at s[i]. */
static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (s[i] == '"')
        return skip_string(s, i, n);
    if (s[i] != '{' && s[i] != '[') {
        while (i < n && !strchr(",]} \t\r\n", s[i]))
            i++;
        return i;
    }
    size_t depth = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, i, n);
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return i + 1;
        i++;
    }
    return n;
}

/* The text of the value of the index-th member of the object that is the whole text
 * (cJSON keeps members in text order, so no key needs decoding here). */
static int member_span(const char *s, size_t n, int index, span *out)
{
    size_t i = skip_space(s, 0, n);
    if (i >= n || s[i] != '{')
        return -1;
    i++;
    for (int k = 0;; k++) {
        i = skip_space(s, i, n);
        if (i >= n || s[i] != '"')
            return -1;
        i = skip_space(s, skip_string(s, i, n), n);
        if (i >= n || s[i] != ':')
            return -1;
        i = skip_space(s, i + 1, n);
        size_t end = skip_value(s, i, n);
        if (k == index) {
            out->at = i;
            out->end = end;
            return end <= n ? 0 : -1;
        }
        i = skip_space(s, end, n);
        if (i >= n || s[i] != ',')
            return -1;
        i++;
    }
}

/* Appends text with \u0000 escapes inside strings spelled \ufffd (as the result's are):
 * callers hold C strings. */
static void append_without_nul(bb_buf *b, const char *s, size_t n)
{
    size_t from = 0;
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_string) {
            in_string = s[i] == '"';
        } else if (s[i] == '"') {
            in_string = 0;
        } else if (s[i] == '\\') {
            if (i + 5 < n && memcmp(s + i + 1, "u0000", 5) == 0) {
                bb_buf_append(b, s + from, i - from);
                bb_buf_puts(b, "\\ufffd");
                from = i + 6;
            }
            i++;
        }
    }
    bb_buf_append(b, s + from, n - from);
}

/* ---- entry checks -------------------------------------------------------------- */

/* Objects anywhere inside a value must not repeat a key (a reader keeping the first
 * and one keeping the last would see different traces). Depth is bounded by the
 * envelope's parse. */
static int no_duplicate_keys(const cJSON *item, bb_error **err)
{
    if (cJSON_IsObject(item)) {
        const char *key = NULL;
        int dup = bb_wire_duplicate_key(item, &key);
        if (dup < 0)
            return bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
        if (dup > 0) {
            char shown[48];
            bb_wire_printable(key, shown, sizeof shown);
            return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                           "response: 'debug_traces' has an object with key '%s' twice", shown);
        }
    }
    if (cJSON_IsObject(item) || cJSON_IsArray(item))
        for (const cJSON *child = item->child; child; child = child->next)
            if (no_duplicate_keys(child, err) < 0)
                return -1;
    return 0;
}

/* Texts are bounded by the entry's size cap. */
static int is_text(const cJSON *item, int null_ok)
{
    return (null_ok && cJSON_IsNull(item)) || (cJSON_IsString(item) && item->valuestring);
}

static int check_entry(const cJSON *entry, int index, bb_error **err)
{
    if (!cJSON_IsObject(entry))
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: 'debug_traces'[%d] must be an object",
                       index);
    if (no_duplicate_keys(entry, err) < 0)
        return -1;
    int has_step = 0, has_value = 0, has_stamp = 0, has_zone = 0;
    for (const cJSON *f = entry->child; f; f = f->next) {
        const char *k = f->string ? f->string : "";
        int ok;
        if (strcmp(k, "step") == 0)
            ok = is_text(f, 1), has_step++;
        else if (strcmp(k, "value") == 0)
            ok = 1, has_value++;
        else if (strcmp(k, "timestamp") == 0)
            ok = is_text(f, 0), has_stamp++;
        else if (strcmp(k, "timestamp_timezone") == 0)
            ok = is_text(f, 0), has_zone++;
        else {
            char shown[48];
            bb_wire_printable(k, shown, sizeof shown);
            return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                           "response: 'debug_traces'[%d] has an unknown key '%s' (step, value, "
                           "timestamp, timestamp_timezone)", index, shown);
        }
        if (!ok)
            return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                           "response: 'debug_traces'[%d].%s must be a string%s", index, k,
                           strcmp(k, "step") == 0 ? " or null" : "");
    }
    if (has_step != 1 || has_value != 1 || has_stamp > 1 || has_zone != has_stamp)
        return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                       "response: 'debug_traces'[%d] needs step and value once (and timestamp with "
                       "timestamp_timezone, or neither)", index);
    return 0;
}

int bb_wire_take_traces(const char *body, size_t len, const cJSON *root, char **out, bb_error **err)
{
    *out = NULL;
    int index = 0;
    const cJSON *list = NULL;
    for (const cJSON *f = root->child; f; f = f->next, index++)
        if (f->string && strcmp(f->string, "debug_traces") == 0) {
            list = f;
            break;
        }
    if (list && !cJSON_IsNull(list) && !cJSON_IsArray(list))
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: 'debug_traces' must be a list");
    int count = list ? cJSON_GetArraySize(list) : 0;
    if (count > BB_TRACE_MAX_ENTRIES + 1)
        return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                       "response: 'debug_traces' has %d entries, over the limit of %d and a marker",
                       count, BB_TRACE_MAX_ENTRIES);
    span whole = {0, 0};
    if (count > 0 && (member_span(body, len, index, &whole) < 0 || whole.at >= len ||
                      body[whole.at] != '['))
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: 'debug_traces' could not be read");
    bb_buf b = {0};
    bb_buf_putc(&b, '[');
    if (count > 0) {
        size_t i = whole.at + 1, total = 0;
        const cJSON *entry = list->child;
        for (int k = 0; entry; k++, entry = entry->next) {
            if (check_entry(entry, k, err) < 0) {
                bb_buf_free(&b);
                return -1;
            }
            i = skip_space(body, i, whole.end);
            if (i >= whole.end || body[i] != '{') { /* cJSON saw an object here */
                bb_buf_free(&b);
                return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                               "response: 'debug_traces'[%d] could not be read", k);
            }
            size_t end = skip_value(body, i, whole.end);
            size_t size = end - i;
            if (size > BB_TRACE_MAX_ENTRY_BYTES) {
                bb_buf_free(&b);
                return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                               "response: 'debug_traces'[%d] is %zu bytes, over the limit of %d", k,
                               size, BB_TRACE_MAX_ENTRY_BYTES);
            }
            total += size;
            if (total > BB_TRACE_MAX_BYTES) {
                bb_buf_free(&b);
                return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                               "response: 'debug_traces' is over the limit of %d bytes",
                               BB_TRACE_MAX_BYTES);
            }
            if (k)
                bb_buf_putc(&b, ',');
            append_without_nul(&b, body + i, size);
            i = skip_space(body, end, whole.end);
            if (i < whole.end && body[i] == ',')
                i++;
        }
    }
    bb_buf_putc(&b, ']');
    if (b.failed) {
        bb_buf_free(&b);
        return bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    }
    *out = bb_buf_steal(&b, NULL);
    return *out ? 0 : bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
}
