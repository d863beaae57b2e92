/* wire_traces.c: the `debug_traces` list of a response envelope — checks each entry
 * ({step, value[, timestamp, timestamp_timezone]}) and its caps on its canonical text. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "wire.h"
#include "wire_internal.h"

/* Sizes are bytes of an entry's canonical text (compact, as the strict scanner writes
 * it back). The runtime measures characters of json.dumps(entry) (ASCII, ", " and ": "
 * separators), which is never smaller, so an honest entry always fits the caps of
 * wire_internal.h. */

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

int bb_wire_check_traces(const char *text, size_t len, char **out, bb_error **err)
{
    *out = NULL;
    if (!text)
        return (*out = strdup("[]")) ? 0 : bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    /* canonical text of at most max_values values: the tree is bounded */
    cJSON *list = cJSON_ParseWithLength(text, len);
    if (!list)
        return bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    int rc = 0;
    if (!cJSON_IsArray(list))
        rc = bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: 'debug_traces' must be a list");
    int count = rc == 0 ? cJSON_GetArraySize(list) : 0;
    if (rc == 0 && count > BB_TRACE_MAX_ENTRIES + 1)
        rc = bb_fail(err, BB_ERR_INVALID_RESPONSE,
                     "response: 'debug_traces' has %d entries, over the limit of %d and a marker",
                     count, BB_TRACE_MAX_ENTRIES);
    size_t i = 1, total = 0;   /* after the '[' */
    const cJSON *entry = rc == 0 ? list->child : NULL;
    for (int k = 0; entry && rc == 0; k++, entry = entry->next) {
        if (check_entry(entry, k, err) < 0) {
            rc = -1;
            break;
        }
        size_t end = bb_json_skip_value(text, i, len);   /* canonical text: no white space */
        size_t size = end - i;
        if (size > BB_TRACE_MAX_ENTRY_BYTES)
            rc = bb_fail(err, BB_ERR_INVALID_RESPONSE,
                         "response: 'debug_traces'[%d] is %zu bytes, over the limit of %d", k, size,
                         BB_TRACE_MAX_ENTRY_BYTES);
        else if ((total += size) > BB_TRACE_MAX_BYTES)
            rc = bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: 'debug_traces' is over the limit of %d bytes",
                         BB_TRACE_MAX_BYTES);
        i = end + 1;   /* past the ',' (canonical text has no spaces) */
    }
    cJSON_Delete(list);
    if (rc < 0)
        return -1;
    if (!(*out = malloc(len + 1)))
        return bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    memcpy(*out, text, len);
    (*out)[len] = '\0';
    return 0;
}
