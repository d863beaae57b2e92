/* test_wire_traces.c: Check tests of a response's debug_traces: entries kept exactly
 * as sent (success and failure), and every cap and shape a hostile backend could break. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "wire.h"
#include "wire_internal.h"
#include "wire_test_util.h"
#include "check_main.h"

static int parse(const char *text, bb_wire_response *r, bb_error **err)
{
    bb_limits l;
    bb_limits_default(&l);
    return bb_wire_parse_response(text, strlen(text), &l, r, err);
}

/* A success envelope whose debug_traces member is `traces` (raw JSON text). */
static char *success_with_traces(const char *traces)
{
    bb_buf b = {0};
    bb_buf_printf(&b, "{\"success\": true, \"result\": \"{\\\"y\\\": 1}\", \"stdout\": \"a, b\","
                      " \"debug_traces\": %s, \"stderr\": \"\"}", traces);
    return bb_buf_steal(&b, NULL);
}

START_TEST(entries_are_written_again_canonically)
{
    /* numbers past 2^53 survive (tokens are kept as validated); spacing does not: the
     * text is written by the trusted side (issue 8), never the backend's bytes */
    const char *traces = "[ {\"step\":\"s1\",\"value\":{\"big\":12345678901234567890,\"f\":0.1}} ,"
                         "{\"step\":null,\"value\":\"x\",\"timestamp\":\"2024-01-02T03:04:05+09:00\","
                         "\"timestamp_timezone\":\"Asia/Tokyo\"}]";
    char *text = success_with_traces(traces);
    bb_wire_response r;
    bb_error *err = NULL;
    expect_ok(parse(text, &r, &err), err);
    ck_assert_str_eq(r.debug_traces,
                     "[{\"step\":\"s1\",\"value\":{\"big\":12345678901234567890,\"f\":0.1}},"
                     "{\"step\":null,\"value\":\"x\",\"timestamp\":\"2024-01-02T03:04:05+09:00\","
                     "\"timestamp_timezone\":\"Asia/Tokyo\"}]");
    ck_assert_str_eq(r.result, "{\"y\":1}");
    bb_wire_response_clear(&r);
    free(text);
}
END_TEST

START_TEST(absent_null_or_empty_is_an_empty_list)
{
    const char *texts[] = {"{\"success\": true, \"result\": \"{}\"}",
                           "{\"success\": true, \"result\": \"{}\", \"debug_traces\": null}",
                           "{\"success\": true, \"result\": \"{}\", \"debug_traces\": [ ]}"};
    for (size_t i = 0; i < 3; i++) {
        bb_wire_response r;
        bb_error *err = NULL;
        expect_ok(parse(texts[i], &r, &err), err);
        ck_assert_str_eq(r.debug_traces, "[]");
        bb_wire_response_clear(&r);
    }
}
END_TEST

START_TEST(failure_keeps_its_traces)
{
    const char *text = "{\"debug_traces\": [{\"step\": \"s\", \"value\": [1, \"a\\u0000b\"]}],"
                       " \"success\": false, \"error_type\": \"ZeroDivisionError\","
                       " \"error\": \"division by zero\", \"line_number\": 3}";
    bb_wire_response r;
    bb_error *err = NULL;
    expect_ok(parse(text, &r, &err), err);
    ck_assert_int_eq(r.success, 0);
    /* a NUL escape becomes U+FFFD, as in results: callers hold C strings */
    ck_assert_str_eq(r.debug_traces, "[{\"step\":\"s\",\"value\":[1,\"a\\ufffdb\"]}]");
    bb_wire_response_clear(&r);
}
END_TEST

static void expect_refused(const char *traces, const char *needle)
{
    char *text = success_with_traces(traces);
    bb_wire_response r;
    bb_error *err = NULL;
    expect_error(parse(text, &r, &err), err, BB_ERR_INVALID_RESPONSE, needle);
    ck_assert_ptr_null(r.debug_traces);
    ck_assert_ptr_null(r.result);
    free(text);
}

START_TEST(hostile_shapes_are_refused)
{
    expect_refused("{\"step\": null, \"value\": 1}", "must be a list");
    expect_refused("\"[]\"", "must be a list");
    expect_refused("[1]", "[0] must be an object");
    expect_refused("[{\"step\": null, \"value\": 1}, []]", "[1] must be an object");
    expect_refused("[{\"value\": 1}]", "needs step and value");
    expect_refused("[{\"step\": null}]", "needs step and value");
    expect_refused("[{\"step\": null, \"value\": 1, \"value\": 2}]", "twice");
    expect_refused("[{\"step\": null, \"value\": {\"k\": 1, \"k\": 2}}]", "twice");
    expect_refused("[{\"step\": 5, \"value\": 1}]", "step must be a string or null");
    expect_refused("[{\"step\": null, \"value\": 1, \"timestamp\": \"t\"}]", "timestamp_timezone");
    expect_refused("[{\"step\": null, \"value\": 1, \"timestamp\": 7, \"timestamp_timezone\": \"UTC\"}]",
                   "timestamp must be a string");
    expect_refused("[{\"step\": null, \"value\": 1, \"secret\": \"x\"}]", "unknown key 'secret'");
}
END_TEST

/* `count` entries, each `value_bytes` of value text. */
static char *many_entries(int count, size_t value_bytes)
{
    bb_buf b = {0};
    bb_buf_putc(&b, '[');
    char *value = malloc(value_bytes + 1);
    memset(value, 'v', value_bytes);
    value[value_bytes] = '\0';
    for (int i = 0; i < count; i++)
        bb_buf_printf(&b, "%s{\"step\":null,\"value\":\"%s\"}", i ? "," : "", value);
    bb_buf_putc(&b, ']');
    free(value);
    return bb_buf_steal(&b, NULL);
}

static size_t entry_overhead(void) { return strlen("{\"step\":null,\"value\":\"\"}"); }

/* Each cap at its limit is kept as sent; one past it is refused by name. */
START_TEST(caps_hold_at_their_limits)
{
    size_t full = BB_TRACE_MAX_ENTRY_BYTES - entry_overhead(); /* the value of a full entry */
    const struct {
        int count;
        size_t value_bytes;
        const char *refused; /* NULL: kept as sent */
    } caps[] = {
        /* the largest honest trace the runtime sends: 1000 entries, then the marker */
        {BB_TRACE_MAX_ENTRIES + 1, 10, NULL},
        {BB_TRACE_MAX_ENTRIES + 2, 1, "entries, over the limit of 1000"},
        {1, full, NULL},
        {1, full + 1, "[0] is 16385 bytes, over the limit of 16384"},
        /* 65 full entries are 1040 KiB: the run's cap (1 MiB and one marker) is 1040 KiB */
        {65, full, NULL},
        {66, full, "over the limit of 1064960 bytes"},
    };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        char *entries = many_entries(caps[i].count, caps[i].value_bytes);
        if (caps[i].refused) {
            expect_refused(entries, caps[i].refused);
        } else {
            char *text = success_with_traces(entries);
            bb_wire_response r;
            bb_error *err = NULL;
            expect_ok(parse(text, &r, &err), err);
            ck_assert_str_eq(r.debug_traces, entries);
            bb_wire_response_clear(&r);
            free(text);
        }
        free(entries);
    }
}
END_TEST

START_TEST(max_response_has_room_for_traces)
{
    bb_limits l;
    bb_limits_default(&l);
    l.max_result_bytes = 16;
    l.max_stream_bytes = 16;
    /* the largest honest envelope's traces fit the body cap even with tiny other limits */
    ck_assert_uint_ge(bb_limits_max_response(&l), (size_t)BB_TRACE_MAX_BYTES + 4096);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("traces", entries_are_written_again_canonically),
        BB_CHECK_TEST("traces", absent_null_or_empty_is_an_empty_list),
        BB_CHECK_TEST("traces", failure_keeps_its_traces),
        BB_CHECK_TEST("traces", hostile_shapes_are_refused),
        BB_CHECK_TEST("traces", caps_hold_at_their_limits),
        BB_CHECK_TEST("traces", max_response_has_room_for_traces),
    };
    return bb_check_run("wire_traces", 60, rows, BB_CHECK_COUNT(rows));
}
