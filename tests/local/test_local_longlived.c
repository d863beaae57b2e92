/* test_local_longlived.c: an instance lives as long as it is loaded (issue 9): CPU
 * limited per run, not per lifetime; threads run between calls; frames carry ids. */
#include <pthread.h>

#include "local_test_util.h"
#include "check_main.h"

/* Runs `n` from the environment variable `var` (a documented longer form), else dflt. */
static long count_from_env(const char *var, long dflt)
{
    const char *v = getenv(var);
    long n = v && *v ? strtol(v, NULL, 10) : 0;
    return n > 0 ? n : dflt;
}

static const char BURNER[] =
    "N = 0\n"
    "def run(self, ms=0):\n"
    "    global N\n"
    "    N += 1\n"
    "    end = time.process_time() + ms / 1000.0\n"
    "    while time.process_time() < end:\n"
    "        pass\n"
    "    return {'n': N}\n";

/* Before issue 9 the worker's RLIMIT_CPU (timeout + 1 s) was set once, so CPU summed
 * over every run: 400 ms runs under a 1 s timeout died at run 5-8 as SandboxCrash
 * (SIGKILL) and init ran again. Verified failing by setting cpu_seconds to the old
 * lifetime semantics (reverting local.c to send cpu_seconds = timeout + 1 as the
 * RLIMIT_CPU of each worker: run 7 fails as SandboxCrash). */
START_TEST(cpu_heavy_runs_do_not_add_up_to_a_lifetime_limit)
{
    /* A generous wall clock (a loaded CI machine may take seconds for 400 ms of CPU)
     * and a per-run CPU budget of 1.5 s: as a lifetime limit (the old RLIMIT_CPU) that
     * budget ended the instance at run 7 (SandboxCrash, SIGKILL; verified). */
    const char *const cfg[] = {"timeout", "20", "cpu_seconds", "1.5", NULL};
    local_block b = local_block_on(local_executor(cfg), BURNER, NULL, 0);
    int runs = (int)count_from_env("BB_TEST_CPU_RUNS", 15);
    for (int i = 1; i <= runs; i++) {
        bb_result *res = bb_block_run(b.blk, "{\"ms\": 400}", NULL);
        ck_assert_msg(bb_result_ok(res), "CPU-heavy run %d failed: %s: %s", i,
                      bb_error_type_name(bb_result_error(res)), bb_error_message(bb_result_error(res)));
        ck_assert_int_eq(bb_result_restarted(res), 0);
        cJSON *out = cJSON_Parse(bb_result_outputs(res));
        ck_assert_int_eq((int)num(out, "n"), i);   /* one worker, module state kept */
        cJSON_Delete(out);
        bb_result_free(res);
    }
    local_block_free(b);
}
END_TEST

/* The per-run budget holds: a run over it is a Timeout naming CPU time, well before
 * the wall clock, and the instance is replaced (init again). */
START_TEST(a_run_over_its_cpu_budget_is_a_timeout_and_the_worker_is_replaced)
{
    const char *const cfg[] = {"timeout", "20", "cpu_seconds", "0.5", NULL};
    bb_executor *ex = local_executor(cfg);
    ck_assert_int_eq(describe_long(ex, "cpu_ms_per_run"), 500);
    bb_block *blk = load_block(ex, BURNER, NULL, 0);
    cJSON_Delete(run_ok(blk, "{\"ms\": 300}"));   /* under budget: fine, and again: */
    cJSON_Delete(run_ok(blk, "{\"ms\": 300}"));   /* budgets do not add up */
    /* ended by the 0.5 s CPU budget, not by the 20 s wall clock: the error names it */
    expect_failure(bb_block_run(blk, "{\"ms\": 10000}", NULL), BB_ERR_TIMEOUT, "its 0.5 s of CPU time");
    bb_result *res = bb_block_run(blk, "{}", NULL);
    ck_assert(bb_result_ok(res));
    ck_assert_int_eq(bb_result_restarted(res), 1);   /* after a failure: fresh state */
    cJSON *out = cJSON_Parse(bb_result_outputs(res));
    ck_assert_int_eq((int)num(out, "n"), 1);
    cJSON_Delete(out);
    bb_result_free(res);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* Many trivial runs on one instance (the default settings): a lifetime CPU limit of
 * 21 s used to end such an instance after ~600,000 runs. CI runs a short form; the
 * full form is BB_TEST_TRIVIAL_RUNS=1000000 (see tests/local/README.md). */
START_TEST(many_trivial_runs_on_one_instance)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "N = 0\ndef run(self):\n    global N\n    N += 1\n    return {'n': N}\n",
                                   NULL, 0);
    long runs = count_from_env("BB_TEST_TRIVIAL_RUNS", 20000);
    double t0 = monotonic_s();
    for (long i = 1; i <= runs; i++) {
        bb_result *res = bb_block_run(b.blk, "{}", NULL);
        ck_assert_msg(bb_result_ok(res), "trivial run %ld failed: %s: %s", i,
                      bb_error_type_name(bb_result_error(res)), bb_error_message(bb_result_error(res)));
        const char *o = bb_result_outputs(res);
        char want[48];
        snprintf(want, sizeof want, "{\"n\":%ld}", i);
        ck_assert_msg(strcmp(o, want) == 0, "run %ld answered %s", i, o);
        bb_result_free(res);
    }
    fprintf(stderr, "%ld trivial runs on one instance: %.1f s (%.0f us per run)\n", runs,
            monotonic_s() - t0, (monotonic_s() - t0) * 1e6 / (double)runs);
    local_block_free(b);
}
END_TEST

/* A block's own thread keeps running while the worker waits for the next request:
 * the worker releases the GIL there. Verified failing by removing the
 * Py_BEGIN_ALLOW_THREADS around the request read (the count stays put). */
START_TEST(threads_keep_running_between_calls)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "import threading\n"
                                   "TICKS = [0]\n"
                                   "def tick():\n"
                                   "    while True:\n"
                                   "        TICKS[0] += 1\n"
                                   "        time.sleep(0.01)\n"
                                   "threading.Thread(target=tick, daemon=True).start()\n"
                                   "def run(self):\n"
                                   "    return {'ticks': TICKS[0]}\n",
                                   NULL, 0);
    cJSON *out = run_ok(b.blk, "{}");
    int before = (int)num(out, "ticks");
    cJSON_Delete(out);
    usleep(600 * 1000);
    out = run_ok(b.blk, "{}");
    int after = (int)num(out, "ticks");
    cJSON_Delete(out);
    ck_assert_msg(after - before >= 20, "the block's thread ticked %d times in 0.6 s between calls",
                  after - before);
    local_block_free(b);
}
END_TEST

/* ---- frames with identity (issue 8 item 5) ---------------------------------- */

/* A block whose thread forges reply frames on fd 4 at random moments, while calls
 * run. Before request ids, forged frames made later calls succeed with a previous
 * request's outputs (6-217 calls in 13 of 20 trials). Now a call either returns its
 * own outputs or fails cleanly (InvalidResponse; the worker is replaced), and the
 * next call is served. Verified failing by accepting any id in exchange(). */
START_TEST(forged_frames_never_answer_another_call)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "import threading, random\n"
                                   "def forger():\n"
                                   "    body = b'{\"success\": true, \"result\": \"{\\\\\"x\\\\\": -1}\", \"stdout\": \"\", \"stderr\": \"\"}'\n"
                                   "    while True:\n"
                                   "        time.sleep(random.random() * 0.02)\n"
                                   "        fid = os.urandom(16)\n"
                                   "        try:\n"
                                   "            os.write(4, len(body).to_bytes(4, 'little') + fid + body)\n"
                                   "        except OSError:\n"
                                   "            return\n"
                                   "STARTED = []\n"
                                   "def run(self, x, forge=False):\n"
                                   "    if forge and not STARTED:\n"
                                   "        STARTED.append(1)\n"
                                   "        threading.Thread(target=forger, daemon=True).start()\n"
                                   "    time.sleep(random.random() * 0.01)\n"
                                   "    return {'x': x}\n",
                                   NULL, 0);
    int ok = 0, refused = 0;
    for (int i = 0; i < 200; i++) {
        char in[64];
        snprintf(in, sizeof in, "{\"x\": %d, \"forge\": %s}", i, i % 10 == 0 ? "true" : "false");
        bb_result *res = bb_block_run(b.blk, in, NULL);
        ck_assert_ptr_nonnull(res);
        if (bb_result_ok(res)) {
            cJSON *out = cJSON_Parse(bb_result_outputs(res));
            ck_assert_msg((int)num(out, "x") == i, "call %d was answered with %s", i, bb_result_outputs(res));
            cJSON_Delete(out);
            ok++;
        } else {
            const bb_error *e = bb_result_error(res);
            ck_assert_msg(bb_error_get_kind(e) == BB_ERR_INVALID_RESPONSE, "call %d: %s: %s", i,
                          bb_error_type_name(e), bb_error_message(e));
            refused++;
        }
        bb_result_free(res);
    }
    fprintf(stderr, "forging block: %d calls answered with their own outputs, %d refused\n", ok, refused);
    ck_assert_int_gt(refused, 0);   /* the forger was caught */
    ck_assert_int_gt(ok, 0);        /* and the instance kept serving */
    local_block_free(b);
}
END_TEST

/* A complete frame forged inside the call (valid length, a made-up id) is refused at
 * once, and the worker's real reply, left in the pipe, never answers the next call. */
START_TEST(a_forged_frame_with_a_made_up_id_is_refused)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "N = 0\n"
                                   "def run(self, x, forge=False):\n"
                                   "    global N\n"
                                   "    N += 1\n"
                                   "    if forge:\n"
                                   "        body = b'{\"success\": true, \"result\": \"{}\", \"stdout\": \"\", \"stderr\": \"\"}'\n"
                                   "        os.write(4, len(body).to_bytes(4, 'little') + bytes(16) + body)\n"
                                   "    return {'x': x, 'n': N}\n",
                                   NULL, 0);
    cJSON_Delete(run_ok(b.blk, "{\"x\": 0}"));
    expect_failure(bb_block_run(b.blk, "{\"x\": 1, \"forge\": true}", NULL), BB_ERR_INVALID_RESPONSE, "replaced");
    cJSON *out = run_ok(b.blk, "{\"x\": 2}");
    ck_assert_int_eq((int)num(out, "x"), 2);
    ck_assert_int_eq((int)num(out, "n"), 1);   /* a new worker */
    cJSON_Delete(out);
    local_block_free(b);
}
END_TEST

/* The real reply followed by a second frame in the same call: two replies to one
 * request fail that call; the next call is served by a new worker. */
START_TEST(two_replies_to_one_request_fail_that_call_only)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "import threading\n"
                                   "def late():\n"
                                   "    time.sleep(0.2)\n"
                                   "    os.write(4, (2).to_bytes(4, 'little') + bytes(16) + b'{}')\n"
                                   "def run(self, x, late_frame=False):\n"
                                   "    if late_frame:\n"
                                   "        threading.Thread(target=late).start()\n"
                                   "    return {'x': x}\n",
                                   NULL, 0);
    cJSON_Delete(run_ok(b.blk, "{\"x\": 1, \"late_frame\": true}"));   /* its own reply came first */
    usleep(400 * 1000);   /* the extra frame is in the pipe, out of turn */
    expect_failure(bb_block_run(b.blk, "{\"x\": 2}", NULL), BB_ERR_INVALID_RESPONSE, "out of turn");
    run_expect(b.blk, "{\"x\": 3}", "x", 3);
    local_block_free(b);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        {"cpu", cpu_heavy_runs_do_not_add_up_to_a_lifetime_limit, 0, 120},
        BB_CHECK_TEST("cpu", a_run_over_its_cpu_budget_is_a_timeout_and_the_worker_is_replaced),
        BB_CHECK_TEST("cpu", many_trivial_runs_on_one_instance),
        {"threads", threads_keep_running_between_calls, 0, 60},
        {"frames", forged_frames_never_answer_another_call, 0, 60},
        BB_CHECK_TEST("frames", a_forged_frame_with_a_made_up_id_is_refused),
        BB_CHECK_TEST("frames", two_replies_to_one_request_fail_that_call_only),
    };
    return bb_check_run("local_longlived", 0, rows, BB_CHECK_COUNT(rows));
}
