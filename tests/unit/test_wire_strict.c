/* test_wire_strict.c: Check tests of the trust boundary in the serializer (issue 8): the
 * reply key allowlist, value counts, strict RFC 8259 text, canonical output, deadlines. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "wire.h"
#include "wire_internal.h"
#include "wire_test_util.h"
#include "check_main.h"

/* A success envelope around result text (escaped here, as a backend would). */
static char *success_with(const char *result)
{
    bb_buf b = {0};
    bb_buf_puts(&b, "{\"success\": true, \"result\": ");
    bb_buf_json_string(&b, result, strlen(result));
    bb_buf_puts(&b, "}");
    return bb_buf_steal(&b, NULL);
}

static char *repeat(const char *head, const char *unit, size_t times, const char *tail)
{
    size_t h = strlen(head), u = strlen(unit), t = strlen(tail);
    char *s = malloc(h + u * times + t + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, head, h);
    for (size_t i = 0; i < times; i++)
        memcpy(s + h + i * u, unit, u);
    memcpy(s + h + u * times, tail, t + 1);
    return s;
}

/* ---- the reply key allowlist ------------------------------------------------------------ */

/* The attack of issue 8: a forged frame with a huge ignored "pad" array, which the old
 * parser built into a cJSON tree (80 bytes a value). The key is refused before its
 * value is read: the garbage after it (invalid UTF-8, unclosed) is never seen.
 * Verified failing without the defence: with unknown keys skipped (their value
 * scanned) instead of refused in read_envelope, the first case reports "invalid
 * UTF-8" and the owned-body case "'success' must be true or false". */
START_TEST(unknown_keys_are_refused_unread)
{
    bb_limits l = limits();
    bb_wire_response r;
    parse_refused("{\"success\": true, \"result\": \"{}\", \"pad\": [0,0,\xff\xfe",
                  &l, &r, BB_ERR_INVALID_RESPONSE, "unknown key 'pad' (refused unread)");
    parse_refused("{\"pad\": 1, \"success\": true, \"result\": \"{}\"}",
                  &l, &r, BB_ERR_INVALID_RESPONSE, "unknown key 'pad'");
    /* an escaped spelling of a known key is that key; of an unknown one, still unknown */
    parse_ok("{\"\\u0073uccess\": true, \"result\": \"{}\"}", &l, &r);
    ck_assert_int_eq(r.success, 1);
    bb_wire_response_clear(&r);
    parse_refused("{\"success\": true, \"result\": \"{}\", \"Success\": 1}",
                  &l, &r, BB_ERR_INVALID_RESPONSE, "unknown key 'Success'");
    parse_refused("{\"success\": true, \"result\": \"{}\", \"stdout\\u0000\": 1}",
                  &l, &r, BB_ERR_INVALID_RESPONSE, "unknown key");
    /* found by the fuzzer: an empty key (its decoded text was not NUL-terminated) */
    parse_refused("{\"\": 1}", &l, &r, BB_ERR_INVALID_RESPONSE, "unknown key ''");

    /* a large one is refused as fast as a small one: 8 MiB of pad */
    char *pad = repeat("{\"success\": true, \"result\": \"{}\", \"pad\": [", "0,", 4 << 20, "0]}");
    parse_refused(pad, &l, &r, BB_ERR_INVALID_RESPONSE, "unknown key 'pad'");
    free(pad);
}
END_TEST

/* Every allowlisted key parses; debug_traces is kept as canonical text. */
START_TEST(every_allowlisted_key)
{
    bb_limits l = limits();
    bb_wire_response r;
    parse_ok("{\"success\": true, \"result\": \"{}\", \"stdout\": \"o\", \"stderr\": \"e\", "
             "\"error_type\": null, \"error\": null, \"line_number\": null, "
             "\"function_name\": null, \"traceback\": null, \"denied_syscalls\": [\"socket\"], "
             "\"runtime_version\": \"1\", \"debug_traces\": [ {\"step\": null, \"value\" : 1.5e3} ]}", &l, &r);
    ck_assert_str_eq(r.result, "{}");
    ck_assert_str_eq(r.denied_syscalls, "socket");
    ck_assert_str_eq(r.debug_traces, "[{\"step\":null,\"value\":1.5e3}]");
    bb_wire_response_clear(&r);
    parse_refused("{\"success\": true, \"result\": \"{}\", \"debug_traces\": {}}",
                  &l, &r, BB_ERR_INVALID_RESPONSE, "'debug_traces' must be a list");
    /* absent: an empty list */
    parse_ok("{\"success\": true, \"result\": \"{}\"}", &l, &r);
    ck_assert_str_eq(r.debug_traces, "[]");
    bb_wire_response_clear(&r);
}
END_TEST

/* ---- value counts ------------------------------------------------------------------------ */

/* The other attack of issue 8: return {'a': [0]*33_000_000} (66 MB, under the result
 * cap) became a 2.6 GB tree. Past max_values the result is refused (OutputLimit) while
 * it is scanned, before any tree. Verified failing without the defence by setting
 * max_values to SIZE_MAX in check_result: the call succeeds. */
START_TEST(results_past_the_value_limit_are_an_output_limit)
{
    bb_limits l = limits();
    l.max_values = 1000;
    bb_wire_response r;
    bb_error *err = NULL;
    char *ok = repeat("{\"a\": [", "0,", 998, "0]}");   /* object + list + 999 = 1001 > 1000 */
    char *body = success_with(ok);
    parse_refused(body, &l, &r, BB_ERR_OUTPUT_LIMIT, "result: more than 1000 JSON values");
    free(body);
    free(ok);
    ok = repeat("{\"a\": [", "0,", 997, "0]}");          /* exactly 1000 */
    body = success_with(ok);
    parse_ok(body, &l, &r);
    bb_wire_response_clear(&r);
    free(body);
    free(ok);
    /* the same limit on inputs, where it is the caller's error */
    char *inputs = repeat("{\"a\": [", "0,", 998, "0]}");
    expect_error(bb_wire_check_inputs(inputs, strlen(inputs), &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "inputs: more than 1000 JSON values");
    free(inputs);
}
END_TEST

START_TEST(the_default_limits_and_the_reply_cap)
{
    bb_limits l = limits();
    ck_assert_uint_eq(l.max_values, (size_t)1 << 20);
    /* 2 x result + 6 x (2 streams + error + traceback) + traces (1 MiB + 16 KiB + commas) + 64 KiB */
    size_t want = 2 * ((size_t)64 << 20) + 6 * (2 * ((size_t)1 << 20) + 64 * 1024 + 256 * 1024) +
                  BB_TRACE_MAX_BYTES + 2 * (BB_TRACE_MAX_ENTRIES + 1) + 64 * 1024;
    ck_assert_uint_eq(bb_limits_max_response(&l), want);
    bb_wire_response r;
    bb_error *err = NULL;
    char small[] = "{\"success\": true, \"result\": \"{}\"}";
    expect_error(bb_wire_parse_response(small, want + 1, &l, &r, &err), err, BB_ERR_OUTPUT_LIMIT,
                 "over the limit of");
}
END_TEST

/* ---- strict text ------------------------------------------------------------------------- */

/* What cJSON's lenient parser let through and the CLI then printed as it came. Each is
 * refused in inputs (InvalidRequest) and in results (InvalidResponse). The old precheck
 * left grammar to cJSON, which took them: tests/integration/test_cli.py
 * (StrictOutput) shows the old binary printing them with exit 0. */
START_TEST(lenient_json_is_refused_both_ways)
{
    static const char *const bad[] = {
        "{\"a\": 1.}", "{\"a\": 01}", "{\"a\": -0.e5}", "{\"a\": +1}", "{\"a\": .5}", "{\"a\": 1e}",
        "{\"a\": 0x10}", "{\"a\": Infinity}", "{\"a\": NaN}", "{\"a\": -}", "{\"a\": tru}",
        "{\"a\": 1,}", "{\"a\": [1,]}", "{,}", "{\"a\" 1}", "{'a': 1}", "{\"a\": 1} {}",
        "{\"a\":\x1b[31m 1}", "{\"a\": 1}\x0b", "\x0c{\"a\": 1}", "{\"a\":\xc2\xa0" "1}",
        "{\"a\": 1e400}", "{\"a\": -1e309}", "{\"a\": 1.8e308}", "{\"a\": 1234567890e300}",
    };
    bb_limits l = limits();
    bb_error *err = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(bb_wire_check_inputs(bad[i], strlen(bad[i]), &l, &err) < 0, "inputs %s accepted", bad[i]);
        ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_INVALID_REQUEST);
        bb_error_free(err);
        err = NULL;
        char *body = success_with(bad[i]);
        bb_wire_response r;
        ck_assert_msg(parse_text(body, &l, &r, &err) < 0, "result %s accepted", bad[i]);
        ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_INVALID_RESPONSE);
        bb_error_free(err);
        err = NULL;
        free(body);
    }
}
END_TEST

/* Overflow is decided by magnitude: the largest double passes, the next decade not. */
START_TEST(numbers_at_the_edges)
{
    static const char *const good[] = {
        "{\"a\": -0}", "{\"a\": 0.5e-3}", "{\"a\": 1E+2}", "{\"a\": 1e-400}", "{\"a\": 0.0001e310}",
        "{\"a\": 1.7976931348623157e308}", "{\"a\": -1.7976931348623157E+308}",
        "{\"a\": 123456789012345678901234567890}", "{\"a\": 0e999999999999}",
    };
    bb_limits l = limits();
    bb_error *err = NULL;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ck_assert_msg(bb_wire_check_inputs(good[i], strlen(good[i]), &l, &err) == 0, "inputs %s: %s", good[i],
                      err ? bb_error_message(err) : "");
        char *body = success_with(good[i]);
        bb_wire_response r;
        parse_ok(body, &l, &r);
        bb_wire_response_clear(&r);
        free(body);
    }
    const char *big = "{\"a\": 1e400}";
    expect_error(bb_wire_check_inputs(big, strlen(big), &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "too large for a double");
}
END_TEST

/* ---- canonical output -------------------------------------------------------------------- */

/* The result handed on is written by this side from the checked tokens: no whitespace,
 * \u0000 as \ufffd, DEL and C1 controls escaped, everything else as validated (big
 * integers keep every digit). The old parser handed on the worker's text byte for
 * byte (see StrictOutput in tests/integration/test_cli.py, failing on the old binary). */
START_TEST(results_are_written_again_canonically)
{
    bb_limits l = limits();
    bb_wire_response r;
    char *body = success_with(" {\r\n\t\"a\" : [ 1 , -2.5e+3 ,true,null ] ,"
                              "\"b\":\"x\\u0000y\x7f\xc2\x9b[31m\xc3\xa9\\u00e9\\n\","
                              "\"c\": 123456789012345678901234567890 } ");
    parse_ok(body, &l, &r);
    ck_assert_str_eq(r.result, "{\"a\":[1,-2.5e+3,true,null],\"b\":\"x\\ufffdy\\u007f\\u009b[31m\xc3\xa9\\u00e9\\n\","
                               "\"c\":123456789012345678901234567890}");
    bb_wire_response_clear(&r);
    free(body);
}
END_TEST

START_TEST(scanner_writes_what_it_reads)
{
    static const char *const texts[] = {
        "{}", "[]", "0", "\"\"", "[[],{},[{}]]", "{\"k\":{\"k\":[1,2,{\"z\":null}]}}", "[\"\\ud83d\\ude00\"]",
    };
    bb_json_rules rules = {.max_depth = 8, .max_values = 100, .kind = BB_ERR_INVALID_RESPONSE,
                           .limit_kind = BB_ERR_OUTPUT_LIMIT, .what = "t"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        bb_buf out = {0};
        size_t values = 0;
        bb_error *err = NULL;
        expect_ok(bb_json_scan_text(texts[i], strlen(texts[i]), &rules, &values, &out, &err), err);
        ck_assert_str_eq(out.data, texts[i]);
        bb_buf_free(&out);
    }
}
END_TEST

/* ---- decoded strings --------------------------------------------------------------------- */

START_TEST(strings_decode_and_cut_on_character_boundaries)
{
    bb_json_rules rules = {.max_depth = 8, .max_values = 100, .kind = BB_ERR_INVALID_RESPONSE,
                           .limit_kind = BB_ERR_OUTPUT_LIMIT, .what = "t", .nul_to_fffd = 1};
    const char *text = "\"a\\n\\u00e9\\ud83d\\ude00\\u0000\xe2\x82\xac\"";
    bb_buf out = {0};
    size_t pos = 0, full = 0;
    bb_error *err = NULL;
    expect_ok(bb_json_decode_string(text, strlen(text), &pos, 100, &out, &full, &rules, &err), err);
    ck_assert_str_eq(out.data, "a\n\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd\xe2\x82\xac");
    ck_assert_uint_eq(full, out.len);
    ck_assert_uint_eq(pos, strlen(text));
    bb_buf_free(&out);
    /* keep 5: "a\n" + é (2) = 4, the emoji (4) does not fit, nothing after it is kept */
    pos = 0;
    expect_ok(bb_json_decode_string(text, strlen(text), &pos, 5, &out, &full, &rules, &err), err);
    ck_assert_str_eq(out.data, "a\n\xc3\xa9");
    ck_assert_uint_eq(full, 14);
    bb_buf_free(&out);
}
END_TEST

/* ---- the deadline covers checking -------------------------------------------------------- */

/* Verified failing without the defence by dropping the clock checks (it then succeeds). */
START_TEST(checking_stops_at_the_deadline)
{
    bb_limits l = limits();
    l.deadline_ms = bb_json_now_ms() - 1;
    bb_wire_response r;
    parse_refused("{\"success\": true, \"result\": \"{}\"}", &l, &r, BB_ERR_TIMEOUT, "before the call's deadline");
    /* a big result is checked in steps and stops in the middle */
    char *result = repeat("{\"a\": \"", "x", 8 << 20, "\"}");
    char *body = success_with(result);
    l.deadline_ms = bb_json_now_ms() - 1;
    parse_refused(body, &l, &r, BB_ERR_TIMEOUT, "deadline");
    l.deadline_ms = 0;
    parse_ok(body, &l, &r);
    bb_wire_response_clear(&r);
    free(body);
    free(result);
}
END_TEST

/* The owned variant frees the body itself, on success and on failure (ASan checks). */
START_TEST(owned_bodies_are_freed)
{
    bb_limits l = limits();
    bb_wire_response r;
    bb_error *err = NULL;
    char *good = strdup("{\"success\": true, \"result\": \"{\\\"y\\\": 1}\"}");
    expect_ok(bb_wire_parse_response_owned(good, strlen(good), &l, &r, &err), err);
    ck_assert_str_eq(r.result, "{\"y\":1}");
    bb_wire_response_clear(&r);
    char *bad = strdup("{\"pad\": 1}");
    expect_error(bb_wire_parse_response_owned(bad, strlen(bad), &l, &r, &err), err, BB_ERR_INVALID_RESPONSE,
                 "unknown key");
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("trust boundary", unknown_keys_are_refused_unread),
        BB_CHECK_TEST("trust boundary", every_allowlisted_key),
        BB_CHECK_TEST("trust boundary", results_past_the_value_limit_are_an_output_limit),
        BB_CHECK_TEST("trust boundary", the_default_limits_and_the_reply_cap),
        BB_CHECK_TEST("trust boundary", lenient_json_is_refused_both_ways),
        BB_CHECK_TEST("trust boundary", numbers_at_the_edges),
        BB_CHECK_TEST("trust boundary", results_are_written_again_canonically),
        BB_CHECK_TEST("trust boundary", scanner_writes_what_it_reads),
        BB_CHECK_TEST("trust boundary", strings_decode_and_cut_on_character_boundaries),
        BB_CHECK_TEST("trust boundary", checking_stops_at_the_deadline),
        BB_CHECK_TEST("trust boundary", owned_bodies_are_freed),
    };
    return bb_check_run("wire_strict", 60, rows, BB_CHECK_COUNT(rows));
}
