/* test_api_trust.c: the trust boundary of issue 8 through the public C API, on the echo
 * driver: reply keys, value counts, strict and canonical outputs, overflowing numbers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_test_util.h"
#include "check_main.h"

static bb_result *run_echo(bb_block *blk, const char *command)
{
    cJSON *inputs = cJSON_CreateObject();
    cJSON_AddStringToObject(inputs, "__echo", command);
    char *text = cJSON_PrintUnformatted(inputs);
    cJSON_Delete(inputs);
    bb_result *res = bb_block_run(blk, text, NULL);
    free(text);
    ck_assert_ptr_nonnull(res);
    return res;
}

static void expect_failure(bb_result *res, bb_error_kind kind, const char *needle)
{
    const bb_error *e = bb_result_error(res);
    ck_assert_msg(!bb_result_ok(res), "accepted: %s", bb_result_outputs(res));
    ck_assert_msg(bb_error_get_kind(e) == kind, "kind %s, wanted %s: %s", bb_error_kind_name(bb_error_get_kind(e)),
                  bb_error_kind_name(kind), bb_error_message(e));
    ck_assert_msg(strstr(bb_error_message(e), needle), "message \"%s\" lacks \"%s\"", bb_error_message(e), needle);
    bb_result_free(res);
}

/* A reply with an ignored "pad" member (issue 8's forged frame): refused unread.
 * Verified failing without the defence: the old parser answered success with {}. */
START_TEST(a_reply_with_an_unknown_key_is_refused)
{
    bb_executor *ex = echo_executor();
    bb_block *blk = load_code(ex, PLAIN_CODE);
    expect_failure(run_echo(blk, "hostile:pad"), BB_ERR_INVALID_RESPONSE, "unknown key 'pad'");
    expect_failure(run_echo(blk, "hostile:escape_between_tokens"), BB_ERR_INVALID_RESPONSE, "not valid JSON");
    expect_failure(run_echo(blk, "hostile:lenient_result"), BB_ERR_INVALID_RESPONSE, "leading zero");
    bb_result *res = run_echo(blk, "");   /* the block still works */
    ck_assert(bb_result_ok(res));
    bb_result_free(res);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* Outputs come back as this side wrote them. Verified failing without the defence:
 * the old API returned the backend's text with its whitespace and raw DEL byte. */
START_TEST(outputs_are_written_by_the_trusted_side)
{
    bb_executor *ex = echo_executor();
    bb_block *blk = load_code(ex, PLAIN_CODE);
    bb_result *res = run_echo(blk, "outputs: {\"a\" : [1, 2.5e-3] ,\n\"s\": \"\x7f\\u0000\"}");
    ck_assert_msg(bb_result_ok(res), "%s", bb_error_message(bb_result_error(res)));
    ck_assert_str_eq(bb_result_outputs(res), "{\"a\":[1,2.5e-3],\"s\":\"\\u007f\\ufffd\"}");
    bb_result_free(res);
    expect_failure(run_echo(blk, "outputs:{\"a\": 1.}"), BB_ERR_INVALID_RESPONSE, "after '.'");
    expect_failure(run_echo(blk, "outputs:{\"a\": 1e400}"), BB_ERR_INVALID_RESPONSE, "too large for a double");
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* The value limit is a setting; past it a result is an OutputLimit and inputs are an
 * InvalidRequest that never reaches the driver. */
START_TEST(the_value_limit_applies_to_inputs_and_results)
{
    bb_executor *ex = echo_executor_with("max_json_values", "1024");
    bb_block *blk = load_code(ex, PLAIN_CODE);
    char *list = malloc(64 + 2 * 1100);
    ck_assert_ptr_nonnull(list);
    strcpy(list, "outputs:{\"a\":[0");
    for (int i = 1; i < 1100; i++)
        strcat(list, ",0");
    strcat(list, "]}");
    expect_failure(run_echo(blk, list), BB_ERR_OUTPUT_LIMIT, "more than 1024 JSON values");
    char *inputs = strdup(list + strlen("outputs:"));
    free(list);
    bb_result *res = bb_block_run(blk, inputs, NULL);
    free(inputs);
    expect_failure(res, BB_ERR_INVALID_REQUEST, "inputs: more than 1024 JSON values");
    bb_block_free(blk);
    bb_executor_free(ex);
    bb_config *cfg = bb_config_new();
    bb_error *err = NULL;
    ck_assert_int_lt(bb_config_set(cfg, "max_json_values", "10", &err), 0);   /* below 1024 */
    bb_error_free(err);
    bb_config_free(cfg);
}
END_TEST

/* 1e400 was read as inf by the block while Infinity was refused: now both directions
 * refuse a number a double cannot hold. */
START_TEST(overflowing_inputs_are_refused)
{
    bb_executor *ex = echo_executor();
    bb_block *blk = load_code(ex, PLAIN_CODE);
    bb_result *res = bb_block_run(blk, "{\"x\": 1e400}", NULL);
    expect_failure(res, BB_ERR_INVALID_REQUEST, "too large for a double");
    res = bb_block_run(blk, "{\"x\": [1, 2, -1e309]}", NULL);
    expect_failure(res, BB_ERR_INVALID_REQUEST, "too large for a double");
    res = bb_block_run(blk, "{\"x\": 1e-400, \"y\": 1e308}", NULL);
    ck_assert_msg(bb_result_ok(res), "%s", bb_error_message(bb_result_error(res)));
    bb_result_free(res);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        {"trust boundary", a_reply_with_an_unknown_key_is_refused, 0, 0},
        {"trust boundary", outputs_are_written_by_the_trusted_side, 0, 0},
        {"trust boundary", the_value_limit_applies_to_inputs_and_results, 0, 0},
        {"trust boundary", overflowing_inputs_are_refused, 0, 0},
    };
    return bb_check_run("api_trust", 0, rows, BB_CHECK_COUNT(rows));
}
