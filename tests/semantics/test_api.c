/* test_api.c: Check tests of the Roboflow semantics through the C API, in local mode
 * (real zygote) and modal mode (emulator): bb_result_debug_traces and `globals` lifetime. */
#include <blockbox.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "check_main.h"

static emu the_emu;
static int emu_up;

static bb_executor *executor(int modal)
{
    bb_config *cfg;
    bb_error *err = NULL;
    if (modal) {
        if (!emu_up) {
            ck_assert_int_eq(emu_start(&the_emu, "wk-api-sem-id", "ws-api-sem-secret", NULL), 0);
            emu_up = 1;
        }
        cfg = emu_config(&the_emu, 60);
    } else {
        cfg = bb_config_new();
        ck_assert_int_eq(bb_config_set(cfg, "mode", "local", &err), 0);
        const char *worker = getenv("BB_TEST_WORKER");
        if (worker && *worker)
            ck_assert_int_eq(bb_config_set(cfg, "worker_path", worker, &err), 0);
    }
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    ck_assert_msg(ex != NULL, "executor: %s", err ? bb_error_message(err) : "?");
    return ex;
}

static const char *const CODE =
    "def run(self, x):\n"
    "    seen = globals.get('runs', 0)\n"
    "    globals['runs'] = seen + 1\n"
    "    debug_traces.append({'x': x, 'seen': seen}, add_timestamp=True, timezone='Asia/Tokyo')\n"
    "    return {'y': 10 // x, 'seen': seen}\n";

/* The one trace entry of a run: step, value.x and the time zone label. */
static void expect_entry(const bb_result *res, const char *step, int x)
{
    cJSON *traces = cJSON_Parse(bb_result_debug_traces(res));
    ck_assert_msg(cJSON_IsArray(traces) && cJSON_GetArraySize(traces) == 1, "traces %s",
                  bb_result_debug_traces(res));
    const cJSON *entry = cJSON_GetArrayItem(traces, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(entry, "step")->valuestring, step);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(entry, "value"), "x")->valueint, x);
    ck_assert_str_eq(cJSON_GetObjectItem(entry, "timestamp_timezone")->valuestring, "Asia/Tokyo");
    ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(entry, "timestamp")->valuestring, "+09:00"));
    cJSON_Delete(traces);
}

static int seen_of(const bb_result *res)
{
    cJSON *out = cJSON_Parse(bb_result_outputs(res));
    ck_assert_ptr_nonnull(out);
    int seen = cJSON_GetObjectItem(out, "seen")->valueint;
    cJSON_Delete(out);
    return seen;
}

static void traces_and_globals(int modal)
{
    bb_executor *ex = executor(modal);
    bb_block_spec spec = {.run_code = CODE, .workspace_id = "ws1"};
    bb_error *err = NULL;
    bb_block *blk = bb_block_load(ex, &spec, &err);
    ck_assert_msg(blk != NULL, "load: %s", err ? bb_error_message(err) : "?");
    const char *ctx = "{\"step_name\": \"s1\", \"step_selector\": \"$steps.s1\"}";

    bb_result *first = bb_block_run(blk, "{\"x\": 2}", ctx);
    ck_assert_msg(bb_result_ok(first), "%s", bb_error_message(bb_result_error(first)));
    expect_entry(first, "s1", 2);
    ck_assert_int_eq(seen_of(first), 0);

    bb_result *second = bb_block_run(blk, "{\"x\": 5}", ctx);
    ck_assert(bb_result_ok(second));
    /* local: one worker serves the instance, so its globals dict lives on; modal:
     * max_inputs=1, a fresh container (and dict) per call (src/runtime/README.md) */
    ck_assert_int_eq(seen_of(second), modal ? 0 : 1);

    bb_result *failed = bb_block_run(blk, "{\"x\": 0}", "{\"step_selector\": \"$steps.s2\"}");
    ck_assert(!bb_result_ok(failed));
    ck_assert_str_eq(bb_error_type_name(bb_result_error(failed)), "ZeroDivisionError");
    expect_entry(failed, "s2", 0); /* the entry written before the error is kept */

    bb_result_free(first);
    bb_result_free(second);
    bb_result_free(failed);
    bb_block_free(blk);
    bb_executor_free(ex);
}

START_TEST(local_traces_and_globals) { traces_and_globals(0); }
END_TEST

START_TEST(modal_traces_and_globals) { traces_and_globals(1); }
END_TEST

START_TEST(no_result_no_traces)
{
    ck_assert_str_eq(bb_result_debug_traces(NULL), "[]");
    bb_executor *ex = executor(0);
    bb_block_spec spec = {.run_code = "def run(self):\n    return {}\n"};
    bb_error *err = NULL;
    bb_block *blk = bb_block_load(ex, &spec, &err);
    ck_assert_ptr_nonnull(blk);
    bb_result *res = bb_block_run(blk, "not json", NULL); /* refused before any backend */
    ck_assert(!bb_result_ok(res));
    ck_assert_str_eq(bb_result_debug_traces(res), "[]");
    bb_result_free(res);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* After the suite's tests (they share one process and one emulator). */
static void stop_the_emulator(void)
{
    if (emu_up)
        emu_stop(&the_emu);
}

int main(void)
{
    const bb_check_case rows[] = {
        {"api", local_traces_and_globals, 0, 0},
        {"api", modal_traces_and_globals, 0, 0},
        {"api", no_result_no_traces, 0, 0},
    };
    const bb_check_suite suite = {.name = "semantics_api", .timeout = 120,
                                  .teardown = stop_the_emulator, .nofork = 1};
    return bb_check_run_suite(&suite, rows, BB_CHECK_COUNT(rows));
}
