/* test_api_trust.c: the trust boundary of issue 8 through the public C API, on the echo
 * driver: reply keys, value counts, strict and canonical outputs, overflowing numbers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_test_util.h"
#include "check_main.h"

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
    echo_block b = echo_block_with(NULL, NULL);
    expect_failure(run_echo(b.blk, "hostile:pad", NULL), BB_ERR_INVALID_RESPONSE, "unknown key 'pad'");
    expect_failure(run_echo(b.blk, "hostile:escape_between_tokens", NULL), BB_ERR_INVALID_RESPONSE, "not valid JSON");
    expect_failure(run_echo(b.blk, "hostile:lenient_result", NULL), BB_ERR_INVALID_RESPONSE, "leading zero");
    expect_ok(run_echo(b.blk, "", NULL));   /* the block still works */
    echo_block_free(b);
}
END_TEST

/* Outputs come back as this side wrote them. Verified failing without the defence:
 * the old API returned the backend's text with its whitespace and raw DEL byte. */
START_TEST(outputs_are_written_by_the_trusted_side)
{
    echo_block b = echo_block_with(NULL, NULL);
    bb_result *res = run_echo(b.blk, "outputs: {\"a\" : [1, 2.5e-3] ,\n\"s\": \"\x7f\\u0000\"}", NULL);
    ck_assert_msg(bb_result_ok(res), "%s", bb_error_message(bb_result_error(res)));
    ck_assert_str_eq(bb_result_outputs(res), "{\"a\":[1,2.5e-3],\"s\":\"\\u007f\\ufffd\"}");
    bb_result_free(res);
    expect_failure(run_echo(b.blk, "outputs:{\"a\": 1.}", NULL), BB_ERR_INVALID_RESPONSE, "after '.'");
    expect_failure(run_echo(b.blk, "outputs:{\"a\": 1e400}", NULL), BB_ERR_INVALID_RESPONSE, "too large for a double");
    echo_block_free(b);
}
END_TEST

/* The value limit is a setting; past it a result is an OutputLimit and inputs are an
 * InvalidRequest that never reaches the driver. */
START_TEST(the_value_limit_applies_to_inputs_and_results)
{
    echo_block b = echo_block_with("max_json_values", "1024");
    char *list = malloc(64 + 2 * 1100);
    ck_assert_ptr_nonnull(list);
    strcpy(list, "outputs:{\"a\":[0");
    for (int i = 1; i < 1100; i++)
        strcat(list, ",0");
    strcat(list, "]}");
    expect_failure(run_echo(b.blk, list, NULL), BB_ERR_OUTPUT_LIMIT, "more than 1024 JSON values");
    char *inputs = strdup(list + strlen("outputs:"));
    free(list);
    bb_result *res = bb_block_run(b.blk, inputs, NULL);
    free(inputs);
    expect_failure(res, BB_ERR_INVALID_REQUEST, "inputs: more than 1024 JSON values");
    echo_block_free(b);
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
    static const char *const overflowing[] = {"{\"x\": 1e400}", "{\"x\": [1, 2, -1e309]}"};
    echo_block b = echo_block_with(NULL, NULL);
    for (size_t i = 0; i < BB_CHECK_COUNT(overflowing); i++)
        expect_failure(bb_block_run(b.blk, overflowing[i], NULL), BB_ERR_INVALID_REQUEST, "too large for a double");
    /* an underflow is a zero and 1e308 fits: both are numbers a double holds */
    expect_ok(bb_block_run(b.blk, "{\"x\": 1e-400, \"y\": 1e308}", NULL));
    echo_block_free(b);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("trust boundary", a_reply_with_an_unknown_key_is_refused),
        BB_CHECK_TEST("trust boundary", outputs_are_written_by_the_trusted_side),
        BB_CHECK_TEST("trust boundary", the_value_limit_applies_to_inputs_and_results),
        BB_CHECK_TEST("trust boundary", overflowing_inputs_are_refused),
    };
    return bb_check_run("api_trust", 0, rows, BB_CHECK_COUNT(rows));
}
