/* test_wire_response.c: Check tests of response parsing: what a well-behaved backend
 * sends, and every way a hostile one might deviate (types, sizes, bytes, names). */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "wire_internal.h"
#include "wire_test_util.h"
#include "check_main.h"

/* Parses the printed form of a cJSON tree (and deletes the tree). */
static int parse_tree(cJSON *tree, const bb_limits *l, bb_wire_response *r, bb_error **err)
{
    char *text = cJSON_PrintUnformatted(tree);
    ck_assert_ptr_nonnull(text);
    int rc = parse_text(text, l, r, err);
    free(text);
    cJSON_Delete(tree);
    return rc;
}

static cJSON *success_with(const char *result)
{
    cJSON *tree = cJSON_CreateObject();
    cJSON_AddBoolToObject(tree, "success", 1);
    cJSON_AddStringToObject(tree, "result", result);
    return tree;
}

static cJSON *failure_with(const char *error_type, const char *error)
{
    cJSON *tree = cJSON_CreateObject();
    cJSON_AddBoolToObject(tree, "success", 0);
    cJSON_AddStringToObject(tree, "error_type", error_type);
    cJSON_AddStringToObject(tree, "error", error);
    return tree;
}

static void assert_all_null(const bb_wire_response *r)
{
    ck_assert_ptr_null(r->result);
    ck_assert_ptr_null(r->stdout_text);
    ck_assert_ptr_null(r->stderr_text);
    ck_assert_ptr_null(r->error_type);
    ck_assert_ptr_null(r->error);
    ck_assert_ptr_null(r->function_name);
    ck_assert_ptr_null(r->traceback);
    ck_assert_ptr_null(r->denied_syscalls);
    ck_assert_ptr_null(r->runtime_version);
}

/* ---- well-formed ------------------------------------------------------------------------- */

START_TEST(test_success)
{
    bb_limits l = limits();
    bb_wire_response r;
    parse_ok("{\"success\": true, \"result\": \"{\\\"y\\\": 42}\", \"stdout\": \"hi\\n\", "
             "\"stderr\": null}", &l, &r);
    ck_assert_int_eq(r.success, 1);
    ck_assert_str_eq(r.result, "{\"y\":42}");   /* written again by this side, canonically */
    ck_assert_str_eq(r.stdout_text, "hi\n");
    ck_assert_str_eq(r.stderr_text, "");
    ck_assert_str_eq(r.denied_syscalls, "");
    ck_assert_ptr_null(r.runtime_version);
    ck_assert_ptr_null(r.error_type);
    ck_assert_ptr_null(r.error);
    bb_wire_response_clear(&r);
    assert_all_null(&r);
    bb_wire_response_clear(&r); /* twice is harmless */

    /* the runtime's own shape: extensions, compact separators, unknown keys ignored */
    parse_ok("{\"success\":true,\"result\":\"[{\\\"a\\\":1},{\\\"a\\\":2}]\",\"stdout\":\"\","
             "\"stderr\":\"warn\",\"runtime_version\":\"1\",\"denied_syscalls\":[\"socket\","
             "\"connect\",\"io_uring_setup\"],\"debug_traces\":[{\"step\":null,\"value\":1}]}", &l, &r);
    ck_assert_str_eq(r.result, "[{\"a\":1},{\"a\":2}]");
    ck_assert_str_eq(r.stderr_text, "warn");
    ck_assert_str_eq(r.runtime_version, "1");
    ck_assert_str_eq(r.denied_syscalls, "socket,connect,io_uring_setup");
    ck_assert_str_eq(r.debug_traces, "[{\"step\":null,\"value\":1}]");
    bb_wire_response_clear(&r);
}
END_TEST

START_TEST(test_success_typed_result)
{
    bb_limits l = limits();
    bb_wire_response r;
    bb_error *err = NULL;
    expect_ok(parse_tree(success_with("{\"m\": {\"_type\": \"ndarray\", \"dtype\": \"float64\", \"shape\": [2, 2],"
                                      " \"data\": \"AAAAAAAA8D8AAAAAAAAAAAAAAAAAAAAAAAAAAAAA8D8=\"}}"),
                         &l, &r, &err),
              err);
    bb_wire_response_clear(&r);
    expect_error(parse_tree(success_with("{\"m\": {\"_type\": \"ndarray\", \"dtype\": \"float64\", \"shape\": [2, 2],"
                                         " \"data\": \"AAAAAAAA8D8=\"}}"),
                            &l, &r, &err),
                 err, BB_ERR_INVALID_RESPONSE, "result: 'm': ndarray data is 8 bytes, shape [2,2] float64 needs 32");
    assert_all_null(&r);
    expect_error(parse_tree(success_with("{\"x\": {\"_type\": \"pickle\", \"value\": \"gASV\"}}"), &l, &r, &err),
                 err, BB_ERR_INVALID_RESPONSE, "result: 'x': unknown _type 'pickle'");
}
END_TEST

START_TEST(test_failure)
{
    bb_limits l = limits();
    bb_wire_response r;
    parse_ok("{\"success\": false, \"error_type\": \"ZeroDivisionError\", \"error\": \"division by zero\","
             " \"line_number\": 3, \"function_name\": \"run\", \"traceback\": \"  File \\\"<block>\\\", "
             "line 3\\n\", \"stdout\": \"before\", \"stderr\": \"\", \"result\": null}", &l, &r);
    ck_assert_int_eq(r.success, 0);
    ck_assert_str_eq(r.error_type, "ZeroDivisionError");
    /* the bare str(e) of the wire reads as local mode's text (errtext.c) */
    ck_assert_str_eq(r.error, "Error in line 3, in run: ZeroDivisionError: division by zero");
    ck_assert_int_eq(r.line_number, 3);
    ck_assert_str_eq(r.function_name, "run");
    ck_assert_str_eq(r.traceback, "  File \"<block>\", line 3\n");
    ck_assert_str_eq(r.stdout_text, "before");
    ck_assert_ptr_null(r.result);
    bb_wire_response_clear(&r);

    parse_ok("{\"success\": false, \"error_type\": \"json.decoder.JSONDecodeError\", \"error\": \"\","
             " \"line_number\": null, \"function_name\": null, \"traceback\": null}", &l, &r);
    ck_assert_str_eq(r.error_type, "json.decoder.JSONDecodeError");
    ck_assert_str_eq(r.error, "");
    ck_assert_int_eq(r.line_number, 0);
    ck_assert_ptr_null(r.function_name);
    ck_assert_ptr_null(r.traceback);
    ck_assert_str_eq(r.stdout_text, "");
    ck_assert_str_eq(r.stderr_text, "");
    bb_wire_response_clear(&r);
}
END_TEST

/* Every server's block error reads as local mode's: a bare str(e) (Roboflow's servers,
 * blockbox's app), a text the server formatted itself, an empty message, a reply with
 * no `success` (Roboflow's NameError), no line number (text unchanged). */
START_TEST(test_failure_text_any_server)
{
    bb_limits l = limits();
    static const struct {
        const char *reply, *text;
    } cases[] = {
        {"{\"success\": false, \"error_type\": \"ValueError\", \"error\": \"bad\", \"line_number\": 7,"
         " \"function_name\": \"helper\"}",
         "Error in line 7, in helper: ValueError: bad"},
        {"{\"success\": false, \"error_type\": \"ValueError\", \"error\": \"Error in line 7, in helper: "
         "ValueError: bad\", \"line_number\": 7, \"function_name\": \"helper\"}",
         "Error in line 7, in helper: ValueError: bad"},
        /* a message that merely looks formatted (another line) is still prefixed */
        {"{\"success\": false, \"error_type\": \"ValueError\", \"error\": \"Error in line 9, in run: x\","
         " \"line_number\": 7, \"function_name\": \"run\"}",
         "Error in line 7, in run: ValueError: Error in line 9, in run: x"},
        {"{\"success\": false, \"error_type\": \"KeyError\", \"error\": \"\", \"line_number\": 2}",
         "Error in line 2, in run: KeyError"},
        {"{\"success\": false, \"error_type\": \"StopIteration\", \"error\": \"Error in line 2, in run: "
         "StopIteration\", \"line_number\": 2, \"function_name\": \"run\"}",
         "Error in line 2, in run: StopIteration"},
        {"{\"error\": \"Function 'run' not found in code\", \"error_type\": \"NameError\"}",
         "Function 'run' not found in code"},
        {"{\"success\": false, \"error\": \"timed out\", \"error_type\": \"Timeout\", \"line_number\": null,"
         " \"stdout\": null, \"stderr\": null}",
         "timed out"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bb_wire_response r;
        parse_ok(cases[i].reply, &l, &r);
        ck_assert_int_eq(r.success, 0);
        ck_assert_str_eq(r.error, cases[i].text);
        bb_wire_response_clear(&r);
    }
    /* no `success` and no error_type is still not a reply */
    bb_wire_response r;
    parse_refused("{\"error\": \"x\"}", &l, &r, BB_ERR_INVALID_RESPONSE, "'success' must be true or false");
}
END_TEST

/* ---- missing fields and wrong types ----------------------------------------------------------- */

START_TEST(test_missing_and_wrong_types)
{
    static const refusal bad[] = {
        {"{}", "'success' must be true or false"},
        {"{\"success\": \"true\", \"result\": \"{}\"}", "'success' must be true or false"},
        {"{\"success\": 1, \"result\": \"{}\"}", "'success'"},
        {"{\"success\": true}", "success without a 'result' string"},
        {"{\"success\": true, \"result\": null}", "success without a 'result'"},
        {"{\"success\": true, \"result\": {\"y\": 1}}", "'result' must be a string or null"},
        {"{\"success\": true, \"result\": \"{}\", \"stdout\": 5}", "'stdout' must be a string or null"},
        {"{\"success\": true, \"result\": \"{}\", \"stderr\": []}", "'stderr' must be a string or null"},
        {"{\"success\": true, \"result\": \"{}\", \"runtime_version\": 1}", "'runtime_version' must be a string"},
        {"{\"success\": true, \"result\": \"{}\", \"runtime_version\": \"1; rm -rf\"}", "not a version string"},
        {"{\"success\": true, \"result\": \"{}\", \"runtime_version\": \"\"}", "not a version string"},
        {"{\"success\": false, \"error\": \"x\"}", "failure without a valid 'error_type'"},
        {"{\"success\": false, \"error_type\": \"\", \"error\": \"x\"}", "'error_type'"},
        {"{\"success\": false, \"error_type\": \"Bad Type\", \"error\": \"x\"}", "'error_type'"},
        {"{\"success\": false, \"error_type\": \"<script>\", \"error\": \"x\"}", "'error_type'"},
        {"{\"success\": false, \"error_type\": \"E\\u00e9\", \"error\": \"x\"}", "'error_type'"},
        {"{\"success\": false, \"error_type\": 3, \"error\": \"x\"}", "'error_type' must be a string"},
        {"{\"success\": false, \"error_type\": \"ValueError\"}", "failure without an 'error' string"},
        {"{\"success\": false, \"error_type\": \"ValueError\", \"error\": 3}", "'error' must be a string"},
        {"{\"success\": false, \"error_type\": \"E\", \"error\": \"x\", \"line_number\": \"3\"}",
         "'line_number' must be a non-negative integer or null"},
        {"{\"success\": false, \"error_type\": \"E\", \"error\": \"x\", \"line_number\": 1.5}", "'line_number'"},
        {"{\"success\": false, \"error_type\": \"E\", \"error\": \"x\", \"line_number\": -1}", "'line_number'"},
        {"{\"success\": false, \"error_type\": \"E\", \"error\": \"x\", \"line_number\": 1e12}", "'line_number'"},
        {"{\"success\": false, \"error_type\": \"E\", \"error\": \"x\", \"function_name\": 3}",
         "'function_name' must be a string"},
        {"{\"success\": false, \"error_type\": \"E\", \"error\": \"x\", \"traceback\": {}}",
         "'traceback' must be a string"},
        {"[]", "response: must be a JSON object"},
        {"\"success\"", "response: must be a JSON object"},
        {"", "response: not valid JSON"},
        {"{\"success\": true, \"result\": \"{}\"", "not valid JSON"},
        {"{\"success\": true, \"result\": \"{}\"} trailing", "unexpected text after the JSON value"},
        /* duplicate keys: a checker reading the first copy must not be fooled by the second */
        {"{\"success\": false, \"success\": true, \"result\": \"{}\"}", "key 'success' appears twice"},
        {"{\"success\": true, \"result\": \"{}\", \"stdout\": \"\xff\"}", "response: invalid UTF-8"},
        {"{\"success\": true, \"result\": \"{}\", \"stdout\": \"\\ud800\"}", "unpaired surrogate"},
        {"{\"success\": true, \"result\": 1e999}", "'result' must be a string"},
    };
    expect_refusals(bad, BB_CHECK_COUNT(bad), BB_ERR_INVALID_RESPONSE, parse_text, assert_all_null);
    bb_limits l = limits();
    bb_wire_response r;
    bb_error *err = NULL;
    expect_error(bb_wire_parse_response("{\"success\": true, \"result\": \"{}\"}\0", 35, &l, &r, &err), err,
                 BB_ERR_INVALID_RESPONSE, "NUL byte");
    expect_error(bb_wire_parse_response(NULL, 0, &l, &r, &err), err, BB_ERR_INVALID_RESPONSE, "missing");
}
END_TEST

/* A reply of success whose result is the text. */
static int parse_result(const char *result, const bb_limits *l, bb_wire_response *r, bb_error **err)
{
    return parse_tree(success_with(result), l, r, err);
}

START_TEST(test_bad_results)
{
    static const refusal bad[] = {
        {"[1, 2]", "result: [0] must be an object"},
        {"[{}, \"x\"]", "result: [1] must be an object"},
        {"42", "result: must be a JSON object or a list of objects"},
        {"null", "must be a JSON object or a list"},
        {"{\"a\": 1} {\"b\": 2}", "result: unexpected text after the JSON value"},
        {"{\"a\": NaN}", "result: not valid JSON"},
        {"{\"a\": \"\\udc00\"}", "result: unpaired surrogate"},
        {"{\"a\": 1, \"a\": 2}", "result: key 'a' appears twice"},
        {"", "result: not valid JSON"},
    };
    expect_refusals(bad, BB_CHECK_COUNT(bad), BB_ERR_INVALID_RESPONSE, parse_result, assert_all_null);
}
END_TEST

START_TEST(test_denied_syscalls)
{
    bb_limits l = limits();
    bb_wire_response r;
    parse_ok("{\"success\": true, \"result\": \"{}\", \"denied_syscalls\": []}", &l, &r);
    ck_assert_str_eq(r.denied_syscalls, "");
    bb_wire_response_clear(&r);
    parse_ok("{\"success\": false, \"error_type\": \"SandboxViolation\", \"error\": \"socket\", "
             "\"denied_syscalls\": [\"socket\"]}", &l, &r);
    ck_assert_str_eq(r.denied_syscalls, "socket");
    ck_assert_str_eq(r.error_type, "SandboxViolation");
    bb_wire_response_clear(&r);
    parse_ok("{\"success\": true, \"result\": \"{}\", \"denied_syscalls\": null}", &l, &r);
    ck_assert_str_eq(r.denied_syscalls, "");
    bb_wire_response_clear(&r);
    /* the attack: names that would forge list entries or smuggle text into reports */
    static const char *const bad[] = {
        "\"socket\"", "[1]", "[\"Socket\"]", "[\"\"]", "[\"sock et\"]", "[\"a,b\"]", "[\"socket\\n\"]",
        "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]", "[null]", "[[\"socket\"]]", "{\"socket\": 1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[200];
        snprintf(text, sizeof text, "{\"success\": true, \"result\": \"{}\", \"denied_syscalls\": %s}", bad[i]);
        parse_refused(text, &l, &r, BB_ERR_INVALID_RESPONSE, "'denied_syscalls'");
        assert_all_null(&r);
    }
    parse_ok("{\"success\": true, \"result\": \"{}\", \"denied_syscalls\": "
             "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"x86_64_1\"]}", &l, &r);
    ck_assert_str_eq(r.denied_syscalls, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,x86_64_1");
    bb_wire_response_clear(&r);
}
END_TEST

/* ---- sizes ---------------------------------------------------------------------------------- */

static char *repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *out = malloc(n * times + 1);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < times; i++)
        memcpy(out + i * n, unit, n);
    out[n * times] = '\0';
    return out;
}

START_TEST(test_result_over_limit)
{
    bb_limits l = limits();
    l.max_result_bytes = 100;
    bb_error *err = NULL;
    bb_wire_response r;
    char *big = repeat("a", 200);
    char *result = NULL;
    ck_assert_int_ge(asprintf(&result, "{\"x\": \"%s\"}", big), 0);
    expect_error(parse_tree(success_with(result), &l, &r, &err), err, BB_ERR_OUTPUT_LIMIT,
                 "result: 209 bytes, over the limit of 100 bytes");
    assert_all_null(&r);
    free(result);
    /* exactly at the limit passes */
    big[100 - 9] = '\0';
    ck_assert_int_ge(asprintf(&result, "{\"x\": \"%s\"}", big), 0);
    ck_assert_uint_eq(strlen(result), 100);
    expect_ok(parse_tree(success_with(result), &l, &r, &err), err);
    bb_wire_response_clear(&r);
    free(result);
    free(big);

    /* a whole envelope past bb_limits_max_response is refused before it is read: not
     * one of its bytes is readable, so a parser that looked at any would crash */
    size_t max = bb_limits_max_response(&l);
    fenced_text body = fenced_text_new("", 0, max + 1);
    expect_error(bb_wire_parse_response(body.text, max + 1, &l, &r, &err), err, BB_ERR_OUTPUT_LIMIT,
                 "response:");
    fenced_text_free(&body);
}
END_TEST

static void assert_cut(const char *text, size_t limit, size_t original)
{
    size_t len = strlen(text);
    ck_assert_msg(len <= limit, "%zu bytes, limit %zu", len, limit);
    ck_assert_uint_lt(len, original);
    ck_assert_uint_eq(bb_wire_utf8_scan((const unsigned char *)text, len), len); /* still UTF-8 */
    const char *marker = strstr(text, "\n[blockbox: output cut at ");
    ck_assert_ptr_nonnull(marker);
    char expect[64];
    snprintf(expect, sizeof expect, "\n[blockbox: output cut at %zu bytes]", (size_t)(marker - text));
    ck_assert_str_eq(marker, expect); /* N = the bytes kept, and the marker ends the text */
}

START_TEST(test_streams_cut)
{
    bb_limits l = limits();
    l.max_stream_bytes = 100;
    bb_error *err = NULL;
    bb_wire_response r;
    char *out_text = repeat("a", 1000);
    char *err_text = repeat("\xc3\xa9", 500); /* é: a cut must not split one */
    for (int shift = 0; shift < 2; shift++) {
        cJSON *tree = success_with("{}");
        cJSON_AddStringToObject(tree, "stdout", out_text);
        cJSON_AddStringToObject(tree, "stderr", err_text);
        expect_ok(parse_tree(tree, &l, &r, &err), err);
        assert_cut(r.stdout_text, 100, 1000);
        assert_cut(r.stderr_text, 100, 1000);
        ck_assert(strncmp(r.stdout_text, "aaaaaaaaaa", 10) == 0);
        bb_wire_response_clear(&r);
        l.max_stream_bytes = 101; /* an odd limit lands inside an é */
    }
    /* exactly at the limit is not cut */
    l.max_stream_bytes = 1000;
    cJSON *tree = success_with("{}");
    cJSON_AddStringToObject(tree, "stdout", out_text);
    expect_ok(parse_tree(tree, &l, &r, &err), err);
    ck_assert_str_eq(r.stdout_text, out_text);
    bb_wire_response_clear(&r);
    free(out_text);
    free(err_text);
}
END_TEST

START_TEST(test_error_and_traceback_cut)
{
    bb_limits l = limits();
    bb_error *err = NULL;
    bb_wire_response r;
    char *message = repeat("m", 100 * 1024);
    char *traceback = repeat("\xe2\x82\xac", 100 * 1024); /* 300 KiB of euro signs */
    char *function = repeat("f", 5000);
    cJSON *tree = failure_with("RuntimeError", message);
    cJSON_AddStringToObject(tree, "traceback", traceback);
    cJSON_AddStringToObject(tree, "function_name", function);
    expect_ok(parse_tree(tree, &l, &r, &err), err);
    assert_cut(r.error, 64 * 1024, 100 * 1024);
    assert_cut(r.traceback, 256 * 1024, 300 * 1024);
    assert_cut(r.function_name, 1024, 5000);
    ck_assert_str_eq(r.error_type, "RuntimeError");
    bb_wire_response_clear(&r);
    free(message);
    free(traceback);
    free(function);
}
END_TEST

/* ---- hostile bytes ------------------------------------------------------------------------------ */

/* A NUL character (Python's json spells it \u0000) must not cut the C string short:
 * it comes back as U+FFFD and the text after it survives. */
START_TEST(test_nul_escapes_replaced)
{
    bb_limits l = limits();
    bb_wire_response r;
    parse_ok("{\"success\": true, \"result\": \"{\\\"s\\\": \\\"a\\\\u0000b\\\"}\", "
             "\"stdout\": \"x\\u0000y\", \"stderr\": \"\\\\u0000 is not an escape here\"}", &l, &r);
    ck_assert_str_eq(r.stdout_text, "x\xef\xbf\xbdy");
    ck_assert_str_eq(r.stderr_text, "\\u0000 is not an escape here");
    ck_assert_str_eq(r.result, "{\"s\":\"a\\ufffdb\"}");
    bb_wire_response_clear(&r);
    parse_ok("{\"success\": false, \"error_type\": \"E\", \"error\": \"\\u0000\\u0000tail\"}", &l, &r);
    ck_assert_str_eq(r.error, "\xef\xbf\xbd\xef\xbf\xbdtail");
    bb_wire_response_clear(&r);
}
END_TEST

START_TEST(test_hostile_nesting)
{
    bb_limits l = limits();
    bb_error *err = NULL;
    bb_wire_response r;
    size_t n = 100000;
    char *open = repeat("[", n), *close = repeat("]", n);
    char *text = NULL;
    ck_assert_int_ge(asprintf(&text, "{\"success\": true, \"result\": \"{}\", \"debug_traces\": %s%s}", open, close), 0);
    parse_refused(text, &l, &r, BB_ERR_INVALID_RESPONSE, "nested deeper than 66 levels");
    free(text);
    /* the same inside the result string */
    char *result = NULL;
    ck_assert_int_ge(asprintf(&result, "{\"a\": %s%s}", open, close), 0);
    expect_error(parse_tree(success_with(result), &l, &r, &err), err, BB_ERR_INVALID_RESPONSE,
                 "result: nested deeper than 64 levels");
    free(result);
    free(open);
    free(close);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("responses", test_success),
        BB_CHECK_TEST("responses", test_success_typed_result),
        BB_CHECK_TEST("responses", test_failure),
        BB_CHECK_TEST("responses", test_failure_text_any_server),
        BB_CHECK_TEST("responses", test_missing_and_wrong_types),
        BB_CHECK_TEST("responses", test_bad_results),
        BB_CHECK_TEST("responses", test_denied_syscalls),
        BB_CHECK_TEST("responses", test_result_over_limit),
        BB_CHECK_TEST("responses", test_streams_cut),
        BB_CHECK_TEST("responses", test_error_and_traceback_cut),
        BB_CHECK_TEST("responses", test_nul_escapes_replaced),
        BB_CHECK_TEST("responses", test_hostile_nesting),
    };
    return bb_check_run("wire_response", 60, rows, BB_CHECK_COUNT(rows));
}
