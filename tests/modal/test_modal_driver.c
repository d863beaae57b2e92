/* test_modal_driver.c: the modal driver against the HTTPS emulator: every injected fault
 * ends in bounded time with the right error, retries only where no run can have happened. */
#include <check.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockbox.h"
#include "emu.h"
#include "check_main.h"

#define TOKEN_ID "wk-TOKENID-4f1c9a"
#define TOKEN_SECRET "ws-SECRET-77d2e0b5"

static emu E;

static void start_emulator(void) { emu_start_or_exit(&E, TOKEN_ID, TOKEN_SECRET); }

static void stop_emulator(void) { emu_stop(&E); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *ADD = "def run(self, a, b):\n    return {'sum': a + b}\n";

/* Secrets must never show in any error text: every failure is checked here. */
static void assert_no_secret(const bb_error *e)
{
    const char *texts[] = {bb_error_message(e), bb_error_type_name(e), bb_error_traceback(e),
                           bb_error_function(e)};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (!texts[i])
            continue;
        ck_assert_msg(!strstr(texts[i], TOKEN_SECRET), "token secret in error text: %s", texts[i]);
        ck_assert_msg(!strstr(texts[i], TOKEN_ID), "token id in error text: %s", texts[i]);
    }
}

static bb_executor *executor_with(bb_config *cfg)
{
    bb_error *err = NULL;
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    ck_assert_msg(ex, "executor: %s", err ? bb_error_message(err) : "?");
    char *d = bb_executor_describe(ex);
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(!strstr(d, TOKEN_SECRET) && !strstr(d, TOKEN_ID), "describe leaks a token: %s", d);
    free(d);
    return ex;
}

static bb_executor *executor(double timeout_s)
{
    emu_reset(&E);
    return executor_with(emu_config(&E, timeout_s));
}

static bb_block *load(bb_executor *ex, const char *code)
{
    bb_error *err = NULL;
    bb_block_spec spec = {.run_code = code};
    bb_block *b = bb_block_load(ex, &spec, &err);
    ck_assert_msg(b, "load: %s", err ? bb_error_message(err) : "?");
    return b;
}

/* The end of most tests: the block, then the executor it was loaded in. */
static void free_block_and_executor(bb_block *b, bb_executor *ex)
{
    bb_block_free(b);
    bb_executor_free(ex);
}

/* Runs once and expects success with outputs == want. */
static void run_ok(bb_block *b, const char *inputs, const char *want)
{
    bb_result *r = bb_block_run(b, inputs, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(bb_result_ok(r), "run failed: %s: %s", bb_error_type_name(bb_result_error(r)),
                  bb_error_message(bb_result_error(r)));
    if (want)
        ck_assert_str_eq(bb_result_outputs(r), want);
    bb_result_free(r);
}

/* Runs once and expects an error of `kind` that mentions needle and not absent (each
 * when not NULL); returns seconds taken. */
static double run_fails_unless(bb_block *b, bb_error_kind kind, const char *needle, const char *absent)
{
    double t0 = now_s();
    bb_result *r = bb_block_run(b, "{\"a\": 1, \"b\": 2}", NULL);
    double took = now_s() - t0;
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(!bb_result_ok(r), "run succeeded but should have failed");
    const bb_error *e = bb_result_error(r);
    ck_assert_msg(bb_error_get_kind(e) == kind, "error %s (%s), expected %s", bb_error_type_name(e),
                  bb_error_message(e), bb_error_kind_name(kind));
    if (needle)
        ck_assert_msg(strstr(bb_error_message(e), needle), "error '%s' does not mention '%s'",
                      bb_error_message(e), needle);
    if (absent)
        ck_assert_msg(!strstr(bb_error_message(e), absent), "error '%s' shows '%s'", bb_error_message(e), absent);
    assert_no_secret(e);
    bb_result_free(r);
    return took;
}

/* Asserts counters, each list "name=N name=N ..." (NULL: none): the emulator's stats, then
 * the driver's describe fields. */
static void expect_counts(bb_executor *ex, const char *stats, const char *described)
{
    for (int pass = 0; pass < 2; pass++) {
        const char *p = pass ? described : stats;
        char name[64];
        long want;
        int used;
        while (p && sscanf(p, " %63[^=]=%ld%n", name, &want, &used) == 2) {
            long got = pass ? emu_describe_field(ex, name) : emu_stat(&E, name);
            ck_assert_msg(got == want, "%s %s is %ld, not %ld", pass ? "driver" : "emulator", name, got, want);
            p += used;
        }
    }
}

/* ---- the happy path ---------------------------------------------------- */

START_TEST(runs_a_block)
{
    bb_executor *ex = executor(10);
    bb_block *b = load(ex, ADD);
    run_ok(b, "{\"a\": 2, \"b\": 40}", "{\"sum\":42}");
    expect_counts(ex, "executions=1 requests=1 code_requests=1 accept_gzip=1", "connections_made=1");
    cJSON *s = emu_stats(&E);
    const cJSON *ws = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "workspace_ids"), 0);
    ck_assert(cJSON_IsString(ws));
    ck_assert_str_eq(ws->valuestring, "ws1");
    cJSON_Delete(s);
    free_block_and_executor(b, ex);
}
END_TEST

START_TEST(block_error_comes_back)
{
    bb_executor *ex = executor(10);
    bb_block *b = load(ex, "def run(self, a, b):\n    y = 1\n    return {'z': a / 0}\n");
    bb_result *r = bb_block_run(b, "{\"a\": 1, \"b\": 2}", NULL);
    ck_assert(!bb_result_ok(r));
    ck_assert_str_eq(bb_error_type_name(bb_result_error(r)), "ZeroDivisionError");
    ck_assert_int_eq(bb_error_line(bb_result_error(r)), 3);
    bb_result_free(r);
    free_block_and_executor(b, ex);
}
END_TEST

START_TEST(connections_are_reused_and_code_sent_once)
{
    bb_executor *ex = executor(10);
    bb_block *b = load(ex, ADD);
    for (int i = 0; i < 6; i++)
        run_ok(b, "{\"a\": 1, \"b\": 2}", "{\"sum\":3}");
    expect_counts(ex, "connections=1 requests=6 code_requests=1 hash_only_requests=5",
                  "connections_made=1 connections_reused=5 hash_only_requests=5");
    free_block_and_executor(b, ex);
}
END_TEST

START_TEST(large_bodies_are_gzipped_both_ways)
{
    bb_executor *ex = executor(10);
    bb_block *b = load(ex, "def run(self, s):\n    return {'n': len(s), 'echo': s}\n");
    size_t n = 20000;
    char *inputs = malloc(n + 32), *want = malloc(2 * n + 64);
    int k = sprintf(inputs, "{\"s\": \"");
    memset(inputs + k, 'q', n);
    strcpy(inputs + k + n, "\"}");
    k = sprintf(want, "{\"n\":%zu,\"echo\":\"", n);
    memset(want + k, 'q', n);
    strcpy(want + k + n, "\"}");
    run_ok(b, inputs, want);
    ck_assert_int_eq(emu_stat(&E, "gzip_requests"), 1);
    ck_assert_int_eq(emu_describe_field(ex, "gzip_requests"), 1);
    /* a small body is sent as it is */
    bb_block *small = load(ex, ADD);
    run_ok(small, "{\"a\": 1, \"b\": 2}", "{\"sum\":3}");
    ck_assert_int_eq(emu_stat(&E, "gzip_requests"), 1);
    free(inputs);
    free(want);
    bb_block_free(small);
    free_block_and_executor(b, ex);
}
END_TEST

START_TEST(per_block_workspace_and_anonymous)
{
    emu_reset(&E);
    bb_config *cfg = emu_config(&E, 10);
    bb_config_set(cfg, "workspace_id", "", NULL);
    bb_executor *ex = executor_with(cfg);
    bb_error *err = NULL;
    bb_block_spec spec = {.run_code = ADD};
    ck_assert_ptr_null(bb_block_load(ex, &spec, &err));
    ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_CONFIGURATION);
    ck_assert(strstr(bb_error_message(err), "MODAL_ALLOW_ANONYMOUS_EXECUTION"));
    bb_error_free(err);
    err = NULL;
    spec.workspace_id = "other-ws";
    bb_block *b = bb_block_load(ex, &spec, &err);
    ck_assert_ptr_nonnull(b);
    run_ok(b, "{\"a\": 1, \"b\": 1}", "{\"sum\":2}");
    bb_block_free(b);
    spec.workspace_id = "../../etc";
    ck_assert_ptr_null(bb_block_load(ex, &spec, &err));
    ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_CONFIGURATION);
    bb_error_free(err);
    bb_executor_free(ex);

    cfg = emu_config(&E, 10);
    bb_config_set(cfg, "workspace_id", "", NULL);
    bb_config_set(cfg, "modal_allow_anonymous", "True", NULL);
    ex = executor_with(cfg);
    spec.workspace_id = NULL;
    b = load(ex, ADD);
    run_ok(b, "{\"a\": 1, \"b\": 1}", "{\"sum\":2}");
    cJSON *s = emu_stats(&E);
    const cJSON *ids = cJSON_GetObjectItem(s, "workspace_ids");
    ck_assert_int_eq(cJSON_GetArraySize(ids), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(ids, 0)->valuestring, "other-ws");
    ck_assert_str_eq(cJSON_GetArrayItem(ids, 1)->valuestring, "anonymous");
    cJSON_Delete(s);
    free_block_and_executor(b, ex);
}
END_TEST

/* ---- the table of faults: one call against one injected fault ---------------- */

#define S(code) "{\"kind\": \"status\", \"status\": " #code "}"
#define FAULT_STATS 4

/* One row: an executor (timeout, config changes), the ADD block, with warm one good
 * call first (code sent, connection open), the faults queued, one call; then the answer
 * (outputs {"sum":3}, or an error of kind mentioning needle and never absent), the call's
 * time within [min_s, max_s) where given, counters of the emulator (stats) and of the
 * driver (describe) where listed (the warm call counts), and with again one more good
 * call (the driver recovered). */
typedef struct fault_case {
    const char *name;
    double timeout_s;
    const char *config[2][2];
    const char *faults;
    int ok;
    bb_error_kind kind;
    const char *needle, *absent;
    double min_s, max_s;
    struct { const char *name; long want; } stats[FAULT_STATS], describe[2];
    long status, status_seen;   /* emulator stats "status": {status: seen} */
    int warm, again;
} fault_case;

static const fault_case FAULTS[] = {
    /* retried: the block cannot have run */
    {.name = "retry_502", .faults = "[" S(502) ", " S(502) "]", .ok = 1, .status = 502, .status_seen = 2,
     .stats = {{"requests", 3}, {"executions", 1}}, .describe = {{"retries_done", 2}}},
    {.name = "retry_503", .faults = "[" S(503) ", " S(503) "]", .ok = 1, .status = 503, .status_seen = 2,
     .stats = {{"requests", 3}, {"executions", 1}}, .describe = {{"retries_done", 2}}},
    {.name = "retry_504", .faults = "[" S(504) ", " S(504) "]", .ok = 1, .status = 504, .status_seen = 2,
     .stats = {{"requests", 3}, {"executions", 1}}, .describe = {{"retries_done", 2}}},
    {.name = "retry_429_honours_retry_after", .ok = 1, .min_s = 0.95, .max_s = 3.0,
     .faults = "[{\"kind\": \"status\", \"status\": 429, \"retry_after\": 1}]",
     .stats = {{"requests", 2}, {"executions", 1}}},
    {.name = "retry_after_too_long_fails_at_once", .kind = BB_ERR_BACKEND_UNAVAILABLE, .needle = "429",
     .faults = "[{\"kind\": \"status\", \"status\": 429, \"retry_after\": 3600}]", .max_s = 2.0,
     .stats = {{"requests", 1}}},
    {.name = "retries_are_bounded", .kind = BB_ERR_BACKEND_UNAVAILABLE, .needle = "503", .max_s = 8.0,
     .faults = "[" S(503) "," S(503) "," S(503) "," S(503) "," S(503) "," S(503) "]",
     .stats = {{"requests", 4} /* 1 + BLOCKBOX_MODAL_RETRIES (3) */, {"executions", 0}}},
    {.name = "connect_refused_is_retried_then_unavailable", .timeout_s = 5,
     .config = {{"modal_endpoint_url", "https://127.0.0.1:1/"}}, .kind = BB_ERR_BACKEND_UNAVAILABLE,
     .needle = "connect", .max_s = 6.0, .describe = {{"retries_done", 3}}},
    /* not retried: the block may have run */
    /* libcurl silently resends a request whose reused connection died before any answer
     * byte; the driver must stop that for a POST that may have run the block */
    {.name = "drop_on_reused_connection_not_resent", .warm = 1, .faults = "[{\"kind\": \"drop_after\"}]",
     .kind = BB_ERR_BACKEND_UNAVAILABLE, .needle = "not repeated", .stats = {{"requests", 2}, {"executions", 2}},
     .again = 1 /* on a fresh connection */},
    {.name = "status_500_not_retried", .faults = "[" S(500) "]", .kind = BB_ERR_BACKEND_UNAVAILABLE,
     .needle = "may have run", .max_s = 5.0, .stats = {{"requests", 1}, {"executions", 1}},
     .describe = {{"retries_done", 0}}},
    {.name = "drop_before_body_not_retried", .faults = "[{\"kind\": \"drop_before\"}]",
     .kind = BB_ERR_BACKEND_UNAVAILABLE, .needle = "not repeated", .max_s = 5.0,
     .stats = {{"requests", 1}, {"executions", 0}}, .describe = {{"retries_done", 0}}},
    {.name = "drop_after_run_not_retried", .faults = "[{\"kind\": \"drop_after\"}]",
     .kind = BB_ERR_BACKEND_UNAVAILABLE, .needle = "not repeated", .max_s = 5.0,
     .stats = {{"requests", 1}, {"executions", 1}}, .describe = {{"retries_done", 0}}},
    {.name = "truncated_body_is_invalid", .faults = "[{\"kind\": \"truncate\"}]",
     .kind = BB_ERR_INVALID_RESPONSE, .needle = "cut short", .max_s = 5.0,
     .stats = {{"requests", 1}, {"executions", 1}}, .describe = {{"retries_done", 0}}},
    {.name = "non_json_body_is_invalid", .faults = "[{\"kind\": \"nonjson\"}]",
     .kind = BB_ERR_INVALID_RESPONSE, .max_s = 5.0,
     .stats = {{"requests", 1}, {"executions", 0}}, .describe = {{"retries_done", 0}}},
    {.name = "status_401_is_authentication", .faults = "[" S(401) "]",
     .kind = BB_ERR_AUTHENTICATION_FAILED, .needle = "MODAL_TOKEN_ID", .max_s = 5.0,
     .stats = {{"requests", 1}, {"executions", 0}}, .describe = {{"retries_done", 0}}},
    {.name = "status_403_is_authentication", .faults = "[" S(403) "]",
     .kind = BB_ERR_AUTHENTICATION_FAILED, .needle = "403", .max_s = 5.0,
     .stats = {{"requests", 1}, {"executions", 0}}, .describe = {{"retries_done", 0}}},
    {.name = "status_404_says_not_deployed", .faults = "[" S(404) "]",
     .kind = BB_ERR_BACKEND_UNAVAILABLE, .needle = "inference-workspace-ws1 is not deployed", .max_s = 5.0,
     .stats = {{"requests", 1}, {"executions", 0}}, .describe = {{"retries_done", 0}}},
    {.name = "wrong_token_is_authentication_failed",
     .config = {{"modal_token_secret", "ws-SECRET-wrong-one"}}, .kind = BB_ERR_AUTHENTICATION_FAILED,
     .absent = "ws-SECRET-wrong-one", .stats = {{"auth_failures", 1}, {"executions", 0}}},
    /* UnknownCodeHash: a new container has forgotten the hash (the code is sent again,
     * once), or keeps answering it (an error, not a loop) */
    {.name = "unknown_hash_resends_code_once", .warm = 1, .faults = "[{\"kind\": \"forget\"}]", .ok = 1,
     .stats = {{"unknown_hash_answers", 1}, {"code_requests", 2}, {"executions", 2}},
     .describe = {{"code_resends", 1}}},
    {.name = "unknown_hash_twice_is_an_error_not_a_loop", .warm = 1,
     .faults = "[{\"kind\": \"unknown_hash\"}, {\"kind\": \"unknown_hash\"}, {\"kind\": \"unknown_hash\"}]",
     .kind = BB_ERR_UNKNOWN_CODE_HASH,
     .stats = {{"requests", 3} /* the warm call + hash-only + one resend */}, .describe = {{"code_resends", 1}}},
    /* timeouts and caps */
    {.name = "slow_answer_times_out", .timeout_s = 1, .faults = "[{\"kind\": \"slow\", \"seconds\": 20}]",
     .kind = BB_ERR_TIMEOUT, .needle = "did not answer",
     /* timeout 1 s + margin min(10, 2 + 0.5) s = 3.5 s; libcurl's timer may fire a few
      * ms early (CI measured 3.4996 s), so the floor keeps 50 ms of slack: what it
      * guards is that the driver does not give up at the block's own 1 s */
     .min_s = 3.45, .max_s = 4.5, .stats = {{"requests", 1}}},
    {.name = "response_over_the_cap_is_refused",
     .config = {{"max_output_bytes", "1024"}, {"max_stream_bytes", "1024"}},
     .faults = "[{\"kind\": \"big\", \"bytes\": 8000000}]", .kind = BB_ERR_OUTPUT_LIMIT, .needle = "exceeds"},
    /* ~200 kB on the wire, 200 MB once inflated: the cap applies to inflated bytes */
    {.name = "gzip_bomb_is_refused_while_inflating",
     .config = {{"max_output_bytes", "1024"}, {"max_stream_bytes", "1024"}},
     .faults = "[{\"kind\": \"gzip_bomb\", \"bytes\": 200000000}]", .kind = BB_ERR_OUTPUT_LIMIT,
     .needle = "exceeds"},
    /* The app's own verdicts (header Blockbox-Error) are believed; the same error type in
     * a body without the header is what a block can forge, and stays the block's own
     * error. (Without the header check in modal.c the first three come back BB_ERR_BLOCK.) */
    {.name = "trusted_memory_limit_is_believed", .kind = BB_ERR_MEMORY_LIMIT, .needle = "memory limit (1024 MiB)",
     .faults = "[{\"kind\": \"trusted\", \"error_type\": \"MemoryLimit\", "
               "\"error\": \"the block exceeded its memory limit (1024 MiB) and was killed\"}]"},
    {.name = "trusted_timeout_is_believed", .kind = BB_ERR_TIMEOUT,
     .faults = "[{\"kind\": \"trusted\", \"error_type\": \"Timeout\", \"error\": \"t\"}]"},
    {.name = "trusted_crash_is_believed", .kind = BB_ERR_SANDBOX_CRASH,
     .faults = "[{\"kind\": \"trusted\", \"error_type\": \"SandboxCrash\", \"error\": \"c\"}]"},
    {.name = "an_untrusted_verdict_is_the_blocks_error", .kind = BB_ERR_BLOCK, .needle = "forged",
     .faults = "[{\"kind\": \"reply\", \"body\": {\"success\": false, \"error_type\": \"MemoryLimit\", "
               "\"error\": \"forged\"}}]"},
    /* redirects */
    {.name = "redirect_to_plain_http_is_refused", .kind = BB_ERR_INVALID_RESPONSE, .needle = "plain http",
     .faults = "[{\"kind\": \"location\", \"url\": \"http://example.com/steal\"}]",
     .describe = {{"redirects_followed", 0}}},
    {.name = "redirect_to_a_file_url_is_refused", .kind = BB_ERR_INVALID_RESPONSE, .needle = "redirect target",
     .faults = "[{\"kind\": \"location\", \"url\": \"file:///etc/passwd\"}]",
     .describe = {{"redirects_followed", 0}}},
    {.name = "redirect_303_is_polled_with_auth", .faults = "[{\"kind\": \"redirect\", \"hops\": 3}]", .ok = 1,
     .stats = {{"polls", 3}, {"poll_auth_seen", 3}, {"executions", 1}},
     .describe = {{"redirects_followed", 3}}},
    {.name = "redirect_to_other_host_drops_auth", .ok = 1,
     .faults = "[{\"kind\": \"redirect\", \"hops\": 1, \"host\": \"localhost\"}]",
     .stats = {{"polls", 1}, {"poll_auth_seen", 0}}},
    /* TLS and transport */
    {.name = "untrusted_certificate_is_refused", .timeout_s = 5,
     .config = {{"ca_file", ""}} /* the system store does not know the test CA */,
     .kind = BB_ERR_BACKEND_UNAVAILABLE, .needle = "BLOCKBOX_CA_FILE", .stats = {{"requests", 0}}},
    /* nothing listens on port 1: what matters is that the plain-http URL is accepted */
    {.name = "plain_http_to_loopback_is_allowed", .timeout_s = 2,
     .config = {{"modal_endpoint_url", "http://127.0.0.1:1/"}}, .kind = BB_ERR_BACKEND_UNAVAILABLE,
     .needle = "connect"},
};

START_TEST(faults_end_as_the_table_says)
{
    const fault_case *c = &FAULTS[_i];
    emu_reset(&E);
    bb_config *cfg = emu_config(&E, c->timeout_s > 0 ? c->timeout_s : 10);
    for (size_t k = 0; k < 2 && c->config[k][0]; k++)
        bb_config_set(cfg, c->config[k][0], c->config[k][1], NULL);
    bb_executor *ex = executor_with(cfg);
    bb_block *b = load(ex, ADD);
    if (c->warm)
        run_ok(b, "{\"a\": 1, \"b\": 2}", "{\"sum\":3}");
    if (c->faults)
        emu_faults(&E, c->faults);
    double took;
    if (c->ok) {
        double t0 = now_s();
        run_ok(b, "{\"a\": 1, \"b\": 2}", "{\"sum\":3}");
        took = now_s() - t0;
    } else {
        took = run_fails_unless(b, c->kind, c->needle, c->absent);
    }
    ck_assert_msg(took >= c->min_s, "%s: took %.2fs, at least %.2fs expected", c->name, took, c->min_s);
    ck_assert_msg(c->max_s <= 0 || took < c->max_s, "%s: took %.2fs, under %.2fs expected", c->name, took,
                  c->max_s);
    for (size_t k = 0; k < FAULT_STATS && c->stats[k].name; k++)
        ck_assert_msg(emu_stat(&E, c->stats[k].name) == c->stats[k].want, "%s: emulator %s is %ld, not %ld",
                      c->name, c->stats[k].name, emu_stat(&E, c->stats[k].name), c->stats[k].want);
    for (size_t k = 0; k < 2 && c->describe[k].name; k++)
        ck_assert_msg(emu_describe_field(ex, c->describe[k].name) == c->describe[k].want,
                      "%s: driver %s is %ld, not %ld", c->name, c->describe[k].name,
                      emu_describe_field(ex, c->describe[k].name), c->describe[k].want);
    if (c->status) {
        cJSON *s = emu_stats(&E);
        char key[8];
        snprintf(key, sizeof key, "%ld", c->status);
        const cJSON *seen = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "status"), key);
        ck_assert_msg(seen && seen->valueint == c->status_seen, "%s: status %ld seen %d times", c->name,
                      c->status, seen ? seen->valueint : 0);
        cJSON_Delete(s);
    }
    if (c->again)
        run_ok(b, "{\"a\": 1, \"b\": 2}", "{\"sum\":3}");
    free_block_and_executor(b, ex);
}
END_TEST

/* A current Roboflow deployment: bare str(e), no `success` on its NameError. The text
 * must read exactly as local mode's (the same runtime formats it there). */
START_TEST(roboflow_replies_read_as_local_mode)
{
    bb_executor *ex = executor(10);
    bb_block *b = load(ex, "def run(self, a, b):\n    x = a\n    return {'q': a / 0}\n");
    emu_faults(&E, "[{\"kind\": \"roboflow\"}]");
    bb_result *r = bb_block_run(b, "{\"a\": 1, \"b\": 2}", NULL);
    const bb_error *e = bb_result_error(r);
    ck_assert_int_eq(bb_error_get_kind(e), BB_ERR_BLOCK);
    ck_assert_str_eq(bb_error_type_name(e), "ZeroDivisionError");
    ck_assert_str_eq(bb_error_message(e), "Error in line 3, in run: ZeroDivisionError: division by zero");
    ck_assert_int_eq(bb_error_line(e), 3);
    bb_result_free(r);
    /* the same block from the blockbox-style server: the same text */
    r = bb_block_run(b, "{\"a\": 1, \"b\": 2}", NULL);
    ck_assert_str_eq(bb_error_message(bb_result_error(r)),
                     "Error in line 3, in run: ZeroDivisionError: division by zero");
    bb_result_free(r);
    bb_block_free(b);

    b = load(ex, "def other(self):\n    return {}\n");
    emu_faults(&E, "[{\"kind\": \"roboflow\"}]");
    r = bb_block_run(b, "{}", NULL);
    e = bb_result_error(r);
    ck_assert_msg(bb_error_get_kind(e) == BB_ERR_BLOCK, "%s: %s", bb_error_type_name(e), bb_error_message(e));
    ck_assert_str_eq(bb_error_type_name(e), "NameError");
    ck_assert_str_eq(bb_error_message(e), "Function 'run' not found in code");
    bb_result_free(r);
    bb_block_free(b);

    b = load(ex, "def run(self):\n    print('hi')\n    return {'m': np.arange(4, dtype=np.int16).reshape(2, 2)}\n");
    emu_faults(&E, "[{\"kind\": \"roboflow\"}]");
    run_ok(b, "{}", "{\"m\":{\"_type\":\"ndarray\",\"dtype\":\"int16\",\"shape\":[2,2],"
                    "\"value\":[[0,1],[2,3]]}}");
    free_block_and_executor(b, ex);
}
END_TEST

/* Init code is not part of code_hash: a block with init always sends its code, so a
 * server can never run it with another block's init (or none). */
START_TEST(init_blocks_never_go_hash_only)
{
    bb_executor *ex = executor(10);
    bb_error *err = NULL;
    bb_block_spec spec = {.run_code = "def run(self):\n    return {'v': self._init_results['v']}\n",
                          .init_code = "def init():\n    return {'v': 7}\n"};
    bb_block *b = bb_block_load(ex, &spec, &err);
    ck_assert_msg(b, "load: %s", err ? bb_error_message(err) : "?");
    for (int i = 0; i < 3; i++)
        run_ok(b, "{}", "{\"v\":7}");
    expect_counts(ex, "hash_only_requests=0 code_requests=3", NULL);
    free_block_and_executor(b, ex);
}
END_TEST

/* ---- TLS and configuration ------------------------------------------------- */

static bb_error *open_error(const char *key, const char *value)
{
    bb_config *cfg = emu_config(&E, 5);
    bb_config_set(cfg, key, value, NULL);
    bb_error *err = NULL;
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    ck_assert_ptr_null(ex);
    ck_assert_ptr_nonnull(err);
    assert_no_secret(err);
    return err;
}

START_TEST(configuration_errors_at_open)
{
    bb_error *e = open_error("modal_token_id", "");
    ck_assert_int_eq(bb_error_get_kind(e), BB_ERR_CONFIGURATION);
    ck_assert(strstr(bb_error_message(e), "MODAL_TOKEN_ID"));
    ck_assert(strstr(bb_error_message(e), "MODAL_TOKEN_SECRET"));
    bb_error_free(e);
    e = open_error("modal_token_secret", "");
    ck_assert(strstr(bb_error_message(e), "missing: MODAL_TOKEN_SECRET"));
    bb_error_free(e);
    /* header injection through a token */
    e = open_error("modal_token_secret", "ws-x\r\nX-Evil: 1");
    ck_assert_int_eq(bb_error_get_kind(e), BB_ERR_CONFIGURATION);
    bb_error_free(e);
    /* plain http to the network */
    e = open_error("modal_endpoint_url", "http://example.com/run");
    ck_assert(strstr(bb_error_message(e), "plain http"));
    bb_error_free(e);
    e = open_error("modal_endpoint_url", "ftp://127.0.0.1/");
    bb_error_free(e);
    /* credentials inside the URL are refused and not echoed */
    e = open_error("modal_endpoint_url", "https://user:hunter2@example.com/");
    ck_assert(!strstr(bb_error_message(e), "hunter2"));
    bb_error_free(e);
    e = open_error("ca_file", "/nonexistent/ca.pem");
    bb_error_free(e);
    e = open_error("workspace_id", "ws1/../../x");
    bb_error_free(e);
    /* without the override, MODAL_WORKSPACE_NAME goes into the host name */
    bb_config *cfg = emu_config(&E, 5);
    bb_config_set(cfg, "modal_endpoint_url", "", NULL);
    bb_config_set(cfg, "modal_workspace_name", "evil.com/x", NULL);
    bb_error *err = NULL;
    ck_assert_ptr_null(bb_executor_new(cfg, &err));
    ck_assert(strstr(bb_error_message(err), "MODAL_WORKSPACE_NAME"));
    bb_error_free(err);
    bb_config_free(cfg);
}
END_TEST

/* ---- concurrency ------------------------------------------------------------- */

typedef struct worker_arg {
    bb_executor *ex;
    int index;
    int ok;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    char code[128], inputs[64], want[64];
    snprintf(code, sizeof code, "def run(self, a):\n    return {'v': a * %d}\n", w->index + 1);
    bb_block_spec spec = {.run_code = code};
    bb_block *b = bb_block_load(w->ex, &spec, NULL);
    for (int i = 0; b && i < 5; i++) {
        snprintf(inputs, sizeof inputs, "{\"a\": %d}", i);
        snprintf(want, sizeof want, "{\"v\":%d}", i * (w->index + 1));
        bb_result *r = bb_block_run(b, inputs, NULL);
        if (bb_result_ok(r) && strcmp(bb_result_outputs(r), want) == 0)
            w->ok++;
        bb_result_free(r);
    }
    bb_block_free(b);
    return NULL;
}

START_TEST(many_threads_share_the_driver)
{
    bb_executor *ex = executor(20);
    enum { N = 8 };
    pthread_t t[N];
    worker_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (worker_arg){ex, i, 0};
        pthread_create(&t[i], NULL, worker, &a[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].ok, 5);
    }
    long connections = emu_stat(&E, "connections");
    ck_assert_msg(connections >= 1 && connections <= N, "%ld connections for %d threads", connections, N);
    ck_assert_int_eq(emu_describe_field(ex, "connections_made"), connections);
    bb_executor_free(ex);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("emulator", runs_a_block),
        BB_CHECK_TEST("emulator", block_error_comes_back),
        BB_CHECK_TEST("emulator", connections_are_reused_and_code_sent_once),
        BB_CHECK_TEST("emulator", large_bodies_are_gzipped_both_ways),
        BB_CHECK_TEST("emulator", per_block_workspace_and_anonymous),
        BB_CHECK_LOOP("emulator", faults_end_as_the_table_says, FAULTS),
        BB_CHECK_TEST("emulator", roboflow_replies_read_as_local_mode),
        BB_CHECK_TEST("emulator", init_blocks_never_go_hash_only),
        BB_CHECK_TEST("emulator", configuration_errors_at_open),
        BB_CHECK_TEST("emulator", many_threads_share_the_driver),
    };
    const bb_check_suite suite = {.name = "modal_driver", .timeout = 60,
                                  .setup = start_emulator, .teardown = stop_emulator};
    return bb_check_run_suite(&suite, rows, BB_CHECK_COUNT(rows));
}
