/* wire_reply.c: reads a response envelope (DESIGN §3) from a hostile backend without
 * building a tree: allowlisted keys only, each value decoded straight into a capped field. */
#include <blockbox/driver.h>
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errtext.h"
#include "error.h"
#include "json_scan.h"
#include "wire.h"
#include "wire_internal.h"

#define MAX_DENIED_NAMES 512

typedef enum {
    K_SUCCESS, K_RESULT, K_STDOUT, K_STDERR, K_ERROR_TYPE, K_ERROR, K_LINE_NUMBER,
    K_FUNCTION_NAME, K_TRACEBACK, K_DENIED, K_RUNTIME_VERSION, K_DEBUG_TRACES, K_COUNT
} reply_key;

/*
 * THE REPLY KEY ALLOWLIST. A reply holding any other key is refused (InvalidResponse)
 * before that key's value is read, so no part of a reply costs this side more than
 * the field it fills. To accept a new key (e.g. the call id of issue 8 item 5): add
 * an enum value above, a row here, a field in bb_wire_response (wire.h), and its
 * reading in read_member below. Every row's value is bounded by bb_limits_max_response.
 */
static const char *const reply_keys[K_COUNT] = {
    [K_SUCCESS] = "success",               /* true | false */
    [K_RESULT] = "result",                 /* string (JSON text of the outputs) | null */
    [K_STDOUT] = "stdout",                 /* string | null, cut at max_stream_bytes */
    [K_STDERR] = "stderr",                 /* string | null, cut at max_stream_bytes */
    [K_ERROR_TYPE] = "error_type",         /* string | null */
    [K_ERROR] = "error",                   /* string | null, cut at 64 KiB */
    [K_LINE_NUMBER] = "line_number",       /* non-negative integer | null */
    [K_FUNCTION_NAME] = "function_name",   /* string | null, cut at 1 KiB */
    [K_TRACEBACK] = "traceback",           /* string | null, cut at 256 KiB */
    [K_DENIED] = "denied_syscalls",        /* list of syscall names | null */
    [K_RUNTIME_VERSION] = "runtime_version", /* string | null */
    [K_DEBUG_TRACES] = "debug_traces",     /* list | null of trace entries (wire_traces.c) */
};

void bb_wire_response_clear(bb_wire_response *r)
{
    if (!r)
        return;
    free(r->result);
    free(r->stdout_text);
    free(r->stderr_text);
    free(r->error_type);
    free(r->error);
    free(r->function_name);
    free(r->traceback);
    free(r->denied_syscalls);
    free(r->runtime_version);
    free(r->debug_traces);
    memset(r, 0, sizeof *r);
}

typedef struct envelope {
    const char *text;
    size_t len;
    size_t pos;
    const bb_limits *limits;
    bb_json_rules rules;   /* for the envelope's own tokens */
    size_t values;         /* values read in the envelope (the result counts apart) */
    bb_error **err;
    int have_success;
    bb_buf result;         /* the decoded result text, checked after the envelope */
    int result_null;
} envelope;

static int fail(envelope *e, bb_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(envelope *e, bb_error_kind kind, const char *fmt, ...)
{
    if (e->err && !*e->err) {
        char message[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(message, sizeof message, fmt, ap);
        va_end(ap);
        *e->err = bb_error_new(kind, "response: %s", message);
    }
    return -1;
}

static int at_null(envelope *e)
{
    if (e->len - e->pos >= 4 && memcmp(e->text + e->pos, "null", 4) == 0) {
        e->pos += 4;
        return 1;
    }
    return 0;
}

static int is_string_start(const envelope *e) { return e->pos < e->len && e->text[e->pos] == '"'; }

/* A string value into b (1; its first `cap` bytes, *full its whole length), or null (0,
 * b untouched), or -1 (not a string, or the decoder refused it). */
static int read_string_or_null(envelope *e, const char *key, size_t cap, bb_buf *b, size_t *full)
{
    if (at_null(e))
        return 0;
    if (!is_string_start(e))
        return fail(e, BB_ERR_INVALID_RESPONSE, "'%s' must be a string or null", key);
    if (bb_json_decode_string(e->text, e->len, &e->pos, cap, b, full, &e->rules, e->err) < 0) {
        bb_buf_free(b);
        return -1;
    }
    return 1;
}

/* A string (or null: *out stays NULL) cut at `cap` bytes with the marker the runtime
 * uses for its streams: "\n[blockbox: output cut at N bytes]" (N = bytes kept). */
static int read_cut_string(envelope *e, const char *key, size_t cap, char **out)
{
    bb_buf b = {0};
    size_t full = 0;
    int rc = read_string_or_null(e, key, cap, &b, &full);
    if (rc <= 0)
        return rc;
    if (full > cap) {
        char marker[64];
        /* the marker for `cap` is at least as long as the one for any smaller keep */
        size_t m = (size_t)snprintf(marker, sizeof marker, "\n[blockbox: output cut at %zu bytes]", cap);
        size_t keep = cap > m ? cap - m : 0;
        if (keep > b.len)
            keep = b.len;
        while (keep > 0 && keep < b.len && ((unsigned char)b.data[keep] & 0xC0) == 0x80)
            keep--;
        b.len = keep;
        b.data[keep] = '\0';
        snprintf(marker, sizeof marker, "\n[blockbox: output cut at %zu bytes]", keep);
        bb_buf_puts(&b, marker);
    }
    *out = bb_buf_steal(&b, NULL);
    return *out ? 0 : fail(e, BB_ERR_INTERNAL, "out of memory");
}

/* A short string that must match `valid` entirely (never cut). */
static int read_name(envelope *e, const char *key, size_t cap, int (*valid)(const char *), char **out,
                     const char *shape)
{
    bb_buf b = {0};
    size_t full = 0;
    int rc = read_string_or_null(e, key, cap, &b, &full);
    if (rc <= 0)
        return rc;
    if (full > cap || strlen(b.data) != b.len || !valid(b.data)) {
        bb_buf_free(&b);
        return fail(e, BB_ERR_INVALID_RESPONSE, "'%s' is not %s", key, shape);
    }
    *out = bb_buf_steal(&b, NULL);
    return *out ? 0 : fail(e, BB_ERR_INTERNAL, "out of memory");
}

/* A non-empty word of lowercase letters, digits, uppercase letters if upper, and the
 * characters of extra. */
static int is_word(const char *s, int upper, const char *extra)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || (upper && *s >= 'A' && *s <= 'Z') ||
              strchr(extra, *s)))
            return 0;
    return 1;
}

static int valid_error_type(const char *s) { return is_word(s, 1, "_."); }
static int valid_syscall_name(const char *s) { return is_word(s, 0, "_"); }
static int valid_runtime_version(const char *s) { return is_word(s, 1, "._+-"); }

static int read_success(envelope *e, bb_wire_response *out)
{
    const char *s = e->text + e->pos;
    size_t left = e->len - e->pos;
    if (left >= 4 && memcmp(s, "true", 4) == 0) {
        out->success = 1;
        e->pos += 4;
    } else if (left >= 5 && memcmp(s, "false", 5) == 0) {
        out->success = 0;
        e->pos += 5;
    } else {
        return fail(e, BB_ERR_INVALID_RESPONSE, "'success' must be true or false");
    }
    e->have_success = 1;
    return 0;
}

static int read_line_number(envelope *e, bb_wire_response *out)
{
    if (at_null(e))
        return 0;
    size_t start = e->pos;
    if (start < e->len && (e->text[start] == '-' || (e->text[start] >= '0' && e->text[start] <= '9'))) {
        size_t end = start;
        size_t values = 0;
        if (bb_json_scan_value(e->text, e->len, &end, 1, &e->rules, &values, NULL, e->err) < 0)
            return -1;
        long long v = 0;
        int ok = end - start <= 10;
        for (size_t i = start; ok && i < end; i++) {
            ok = e->text[i] >= '0' && e->text[i] <= '9';
            v = v * 10 + (e->text[i] - '0');
        }
        if (ok && v <= INT_MAX) {
            out->line_number = (int)v;
            e->pos = end;
            return 0;
        }
    }
    return fail(e, BB_ERR_INVALID_RESPONSE, "'line_number' must be a non-negative integer or null");
}

static int read_denied(envelope *e, bb_wire_response *out)
{
    bb_buf joined = {0};
    bb_buf_puts(&joined, "");
    if (!at_null(e)) {
        if (e->pos >= e->len || e->text[e->pos] != '[') {
            bb_buf_free(&joined);
            return fail(e, BB_ERR_INVALID_RESPONSE, "'denied_syscalls' must be a list of syscall names");
        }
        e->pos = bb_json_skip_space(e->text, e->len, e->pos + 1);
        int index = 0;
        while (e->pos < e->len && e->text[e->pos] != ']') {
            char *name = NULL;
            if (index >= MAX_DENIED_NAMES || !is_string_start(e) ||
                read_name(e, "denied_syscalls", BB_SYSCALL_NAME_MAX, valid_syscall_name, &name,
                          "a syscall name") < 0) {
                bb_buf_free(&joined);
                if (e->err && *e->err)
                    return -1;
                return fail(e, BB_ERR_INVALID_RESPONSE,
                            "'denied_syscalls'[%d] is not a syscall name ([a-z0-9_]{1,32}; at most %d)",
                            index, MAX_DENIED_NAMES);
            }
            if (joined.len)
                bb_buf_putc(&joined, ',');
            bb_buf_puts(&joined, name);
            free(name);
            index++;
            e->pos = bb_json_skip_space(e->text, e->len, e->pos);
            if (e->pos < e->len && e->text[e->pos] == ',')
                e->pos = bb_json_skip_space(e->text, e->len, e->pos + 1);
            else if (e->pos >= e->len || e->text[e->pos] != ']') {
                bb_buf_free(&joined);
                return fail(e, BB_ERR_INVALID_RESPONSE, "'denied_syscalls' is not a valid list");
            }
        }
        if (e->pos >= e->len) {
            bb_buf_free(&joined);
            return fail(e, BB_ERR_INVALID_RESPONSE, "'denied_syscalls' is not a valid list");
        }
        e->pos++;
    }
    out->denied_syscalls = bb_buf_steal(&joined, NULL);
    return out->denied_syscalls ? 0 : fail(e, BB_ERR_INTERNAL, "out of memory");
}

/* debug_traces (issue 15): written again canonically under the traces' byte cap, then
 * checked entry by entry (wire_traces.c). */
static int read_traces(envelope *e, char **out)
{
    if (at_null(e))
        return 0;
    if (e->pos >= e->len || e->text[e->pos] != '[')
        return fail(e, BB_ERR_INVALID_RESPONSE, "'debug_traces' must be a list");
    bb_buf canon = {0};
    bb_json_rules rules = e->rules;
    rules.limit_kind = BB_ERR_INVALID_RESPONSE;
    rules.what = "response: 'debug_traces'";
    /* room for the one entry that crosses the total, so the entry checks name it */
    rules.max_canon = BB_TRACE_MAX_BYTES + BB_TRACE_MAX_ENTRY_BYTES + 2 * (BB_TRACE_MAX_ENTRIES + 1) + 2;
    int rc = bb_json_scan_value(e->text, e->len, &e->pos, 1, &rules, &e->values, &canon, e->err);
    if (rc == 0)
        rc = bb_wire_check_traces(canon.data, canon.len, out, e->err);
    bb_buf_free(&canon);
    return rc;
}

static int read_result(envelope *e)
{
    if (at_null(e)) {
        e->result_null = 1;
        return 0;
    }
    if (!is_string_start(e))
        return fail(e, BB_ERR_INVALID_RESPONSE, "'result' must be a string or null");
    size_t full = 0;
    size_t max = e->limits->max_result_bytes;
    if (bb_json_decode_string(e->text, e->len, &e->pos, max, &e->result, &full, &e->rules, e->err) < 0)
        return -1;
    if (full > max)
        return bb_fail(e->err, BB_ERR_OUTPUT_LIMIT, "result: %zu bytes, over the limit of %zu bytes", full,
                       max);
    return 0;
}

static int read_member(envelope *e, reply_key k, bb_wire_response *out)
{
    const char *key = reply_keys[k];
    if (++e->values > e->rules.max_values)
        return fail(e, BB_ERR_OUTPUT_LIMIT, "more than %zu JSON values", e->rules.max_values);
    switch (k) {
    case K_SUCCESS: return read_success(e, out);
    case K_RESULT: return read_result(e);
    case K_STDOUT: return read_cut_string(e, key, e->limits->max_stream_bytes, &out->stdout_text);
    case K_STDERR: return read_cut_string(e, key, e->limits->max_stream_bytes, &out->stderr_text);
    case K_ERROR: return read_cut_string(e, key, BB_ERROR_TEXT_MAX, &out->error);
    case K_FUNCTION_NAME: return read_cut_string(e, key, BB_FUNCTION_NAME_MAX, &out->function_name);
    case K_TRACEBACK: return read_cut_string(e, key, BB_TRACEBACK_MAX, &out->traceback);
    case K_ERROR_TYPE:
        return read_name(e, key, BB_ERROR_TYPE_MAX, valid_error_type, &out->error_type,
                         "an error type name (1-128 of [A-Za-z0-9_.])");
    case K_RUNTIME_VERSION:
        return read_name(e, key, BB_RUNTIME_VERSION_MAX, valid_runtime_version, &out->runtime_version,
                         "a version string");
    case K_LINE_NUMBER: return read_line_number(e, out);
    case K_DENIED: return read_denied(e, out);
    case K_DEBUG_TRACES: return read_traces(e, &out->debug_traces);
    case K_COUNT: break;
    }
    return fail(e, BB_ERR_INTERNAL, "unhandled key");
}

/* The top-level object, member by member; nothing outside the allowlist is read. */
static int read_envelope(envelope *e, bb_wire_response *out)
{
    unsigned seen = 0;
    const char *t = e->text;
    e->pos = bb_json_skip_space(t, e->len, 0);
    if (e->pos >= e->len || t[e->pos] != '{') {
        size_t values = 0;
        if (bb_json_scan_text(t, e->len, &e->rules, &values, NULL, e->err) < 0)
            return -1;
        return fail(e, BB_ERR_INVALID_RESPONSE, "must be a JSON object");
    }
    e->values = 1;
    e->pos = bb_json_skip_space(t, e->len, e->pos + 1);
    int first = 1;
    while (!(e->pos < e->len && t[e->pos] == '}')) {
        if (!first) {
            if (e->pos >= e->len || t[e->pos] != ',')
                return fail(e, BB_ERR_INVALID_RESPONSE, "not valid JSON (near byte %zu: ',' or '}' expected)",
                            e->pos);
            e->pos = bb_json_skip_space(t, e->len, e->pos + 1);
        }
        first = 0;
        if (!is_string_start(e))
            return fail(e, BB_ERR_INVALID_RESPONSE, "not valid JSON (near byte %zu: a key expected)", e->pos);
        bb_buf name = {0};
        size_t full = 0;
        if (bb_json_decode_string(t, e->len, &e->pos, 32, &name, &full, &e->rules, e->err) < 0) {
            bb_buf_free(&name);
            return -1;
        }
        reply_key k = K_COUNT;
        for (int i = 0; i < K_COUNT && full <= 32; i++)
            if (strlen(name.data) == name.len && strcmp(name.data, reply_keys[i]) == 0)
                k = (reply_key)i;
        if (k == K_COUNT) {
            char shown[48];
            bb_wire_printable(name.data, shown, sizeof shown);
            bb_buf_free(&name);
            return fail(e, BB_ERR_INVALID_RESPONSE, "unknown key '%s' (refused unread)", shown);
        }
        bb_buf_free(&name);
        if (seen & (1u << k))
            return fail(e, BB_ERR_INVALID_RESPONSE, "key '%s' appears twice", reply_keys[k]);
        seen |= 1u << k;
        e->pos = bb_json_skip_space(t, e->len, e->pos);
        if (e->pos >= e->len || t[e->pos] != ':')
            return fail(e, BB_ERR_INVALID_RESPONSE, "not valid JSON (near byte %zu: ':' expected)", e->pos);
        e->pos = bb_json_skip_space(t, e->len, e->pos + 1);
        if (read_member(e, k, out) < 0)
            return -1;
        e->pos = bb_json_skip_space(t, e->len, e->pos);
        if (e->rules.deadline_ms > 0 && bb_json_now_ms() > e->rules.deadline_ms)
            return bb_fail(e->err, BB_ERR_TIMEOUT,
                           "response: the reply could not be checked before the call's deadline");
    }
    e->pos = bb_json_skip_space(t, e->len, e->pos + 1);
    if (e->pos < e->len) {
        if (t[e->pos] == '\0')
            return fail(e, BB_ERR_INVALID_RESPONSE, "NUL byte at byte %zu", e->pos);
        return fail(e, BB_ERR_INVALID_RESPONSE, "unexpected text after the JSON value at byte %zu", e->pos);
    }
    /* A Roboflow deployment leaves `success` out of some failures (its NameError for a
     * missing function): no `success` but an `error_type` string reads as a failure. */
    if (!e->have_success && !out->error_type)
        return fail(e, BB_ERR_INVALID_RESPONSE, "'success' must be true or false");
    return 0;
}

/* The rules a response's text is read by (json_scan.h): hostile, so NUL is read as
 * U+FFFD, the values are counted against the limits and the deadline holds; nested to
 * max_depth at the most. */
static bb_json_rules response_rules(const bb_limits *limits, const char *what, int max_depth)
{
    return (bb_json_rules){
        .max_depth = max_depth,
        .max_values = limits->max_values,
        .kind = BB_ERR_INVALID_RESPONSE,
        .limit_kind = BB_ERR_OUTPUT_LIMIT,
        .what = what,
        .nul_to_fffd = 1,
        .deadline_ms = limits->deadline_ms,
    };
}

/*
 * The result text: checked strictly and written again by this side (the canonical
 * text replaces what came), then parsed once for the shape and typed-value checks.
 * Its value count and depth are bounded first, so the tree is too.
 */
static int check_result(bb_buf *decoded, const bb_limits *limits, char **out, bb_error **err)
{
    bb_json_rules rules = response_rules(limits, "result", limits->max_depth);
    rules.max_canon = limits->max_result_bytes;   /* escaping DEL/C1 may grow it */
    bb_buf canon = {0};
    size_t values = 0;
    int rc = bb_json_scan_text(decoded->data, decoded->len, &rules, &values, &canon, err);
    bb_buf_free(decoded);
    if (rc < 0) {
        bb_buf_free(&canon);
        return -1;
    }
    cJSON *tree = cJSON_ParseWithLength(canon.data, canon.len);
    if (!tree) {
        bb_buf_free(&canon);
        return bb_fail(err, BB_ERR_INTERNAL, "result: out of memory");
    }
    if (cJSON_IsArray(tree)) {
        int index = 0;
        for (const cJSON *item = tree->child; item && rc == 0; item = item->next, index++)
            if (!cJSON_IsObject(item))
                rc = bb_fail(err, BB_ERR_INVALID_RESPONSE,
                             "result: [%d] must be an object (a batch result is a list of objects)", index);
    } else if (!cJSON_IsObject(tree)) {
        rc = bb_fail(err, BB_ERR_INVALID_RESPONSE, "result: must be a JSON object or a list of objects");
    }
    if (rc == 0)
        rc = bb_wire_check_values(tree, limits, BB_ERR_INVALID_RESPONSE, "result", err);
    cJSON_Delete(tree);
    if (rc < 0) {
        bb_buf_free(&canon);
        return -1;
    }
    *out = bb_buf_steal(&canon, NULL);
    return *out ? 0 : bb_fail(err, BB_ERR_INTERNAL, "result: out of memory");
}

/* The bare str(e) becomes "Error in line N, in F: T: msg" (errtext.c), cut as any error. */
static int full_error_text(bb_wire_response *out, bb_error **err)
{
    char *text = bb_errtext_block(out->error, out->error_type, out->line_number, out->function_name);
    if (!text)
        return bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    size_t n = strlen(text);
    if (n > BB_ERROR_TEXT_MAX) {
        n = BB_ERROR_TEXT_MAX;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
        text[n] = '\0';
    }
    free(out->error);
    out->error = text;
    return 0;
}

static int parse(const char *body, size_t len, char *owned, const bb_limits *limits,
                 bb_wire_response *out, bb_error **err)
{
    memset(out, 0, sizeof *out);
    bb_limits defaults;
    if (!limits) {
        bb_limits_default(&defaults);
        limits = &defaults;
    }
    envelope e = {.text = body, .len = len, .limits = limits, .err = err};
    /* The envelope is flat; its list extensions (denied_syscalls, debug_traces of
     * {value: …} entries) hold values of the usual depth one or two levels down. */
    e.rules = response_rules(limits, "response",
                             limits->max_depth < INT_MAX - 2 ? limits->max_depth + 2 : INT_MAX);
    size_t max = bb_limits_max_response(limits);
    int rc;
    if (!body)
        rc = bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: missing");
    else if (len > max)
        rc = bb_fail(err, BB_ERR_OUTPUT_LIMIT, "response: %zu bytes, over the limit of %zu bytes", len, max);
    else
        rc = read_envelope(&e, out);
    free(owned);   /* everything needed is decoded: the body goes before the result is checked */
    if (rc == 0 && !out->stdout_text && !(out->stdout_text = strdup("")))
        rc = bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    if (rc == 0 && !out->stderr_text && !(out->stderr_text = strdup("")))
        rc = bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    if (rc == 0 && !out->denied_syscalls && !(out->denied_syscalls = strdup("")))
        rc = bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    if (rc == 0 && out->success) {
        if (!e.result.data || e.result_null)
            rc = bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: success without a 'result' string");
        else
            rc = check_result(&e.result, limits, &out->result, err);
    } else if (rc == 0) {
        if (!out->error_type)
            rc = bb_fail(err, BB_ERR_INVALID_RESPONSE,
                         "response: failure without a valid 'error_type' (1-%d of [A-Za-z0-9_.])",
                         BB_ERROR_TYPE_MAX);
        else if (!out->error)
            rc = bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: failure without an 'error' string");
        else
            rc = full_error_text(out, err);
    }
    if (rc == 0 && !out->debug_traces && !(out->debug_traces = strdup("[]")))
        rc = bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    bb_buf_free(&e.result);
    if (rc < 0)
        bb_wire_response_clear(out);
    return rc;
}

int bb_wire_parse_response(const char *body, size_t len, const bb_limits *limits,
                           bb_wire_response *out, bb_error **err)
{
    return parse(body, len, NULL, limits, out, err);
}

int bb_wire_parse_response_owned(char *body, size_t len, const bb_limits *limits,
                                 bb_wire_response *out, bb_error **err)
{
    return parse(body, len, body, limits, out, err);
}
