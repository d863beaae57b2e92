/* test_local_instances.c: block instance semantics on the real local sandbox through
 * the public API: state, init, max_inputs recycling, timeouts, crashes, forged frames. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local_test_util.h"
#include "check_main.h"

/* Module state (RUNS, MODULE_TOKEN), an init counter and an init token. Modes make
 * the run misbehave. `self._init_results["token"]` is new whenever init ran. */
static const char STATE_RUN[] =
    "RUNS = 0\n"
    "INITS = 0\n"
    "MODULE_TOKEN = os.urandom(8).hex()\n"
    "def run(self, x=0, mode=''):\n"
    "    global RUNS\n"
    "    RUNS += 1\n"
    "    if mode == 'sleep':\n"
    "        time.sleep(60)\n"
    "    if mode == 'segv':\n"
    "        import ctypes\n"
    "        ctypes.string_at(0)\n"
    "    if mode == 'abort':\n"
    "        os.abort()\n"
    "    if mode == 'exit':\n"
    "        os._exit(7)\n"
    "    return {'runs': RUNS, 'inits': INITS, 'token': self._init_results['token'],\n"
    "            'module': MODULE_TOKEN, 'x': x}\n";
static const char STATE_INIT[] =
    "def init():\n"
    "    global INITS\n"
    "    INITS += 1\n"
    "    return {'token': os.urandom(8).hex()}\n";

/* One run of the state block: checks runs/inits/x and returns the init token. */
static char *state_run(bb_block *blk, int x, int want_runs)
{
    char inputs[64];
    snprintf(inputs, sizeof inputs, "{\"x\": %d}", x);
    cJSON *out = run_ok(blk, inputs);
    ck_assert_int_eq((int)num(out, "x"), x);
    ck_assert_msg((int)num(out, "runs") == want_runs, "run %d: module counter %d, wanted %d", x,
                  (int)num(out, "runs"), want_runs);
    ck_assert_msg((int)num(out, "inits") == 1, "init ran %d times in this worker", (int)num(out, "inits"));
    char *token = str_of(out, "token");
    cJSON_Delete(out);
    return token;
}

static bb_result *run_mode(bb_block *blk, const char *mode)
{
    char inputs[96];
    snprintf(inputs, sizeof inputs, "{\"x\": 0, \"mode\": \"%s\"}", mode);
    return bb_block_run(blk, inputs, NULL);
}

/* ---- state and init ----------------------------------------------------- */

START_TEST(module_state_persists_across_runs_of_one_instance)
{
    local_block b = local_block_on(local_executor(NULL), STATE_RUN, STATE_INIT, 0);
    char *first = state_run(b.blk, 1, 1);
    for (int i = 2; i <= 6; i++) {
        char *token = state_run(b.blk, i, i);   /* runs counts up; init ran once */
        ck_assert_str_eq(token, first);
        free(token);
    }
    free(first);
    local_block_free(b);
}
END_TEST

START_TEST(two_instances_of_the_same_code_share_nothing)
{
    bb_executor *ex = local_executor(NULL);
    bb_block *a = load_block(ex, STATE_RUN, STATE_INIT, 0);
    bb_block *b = load_block(ex, STATE_RUN, STATE_INIT, 0);
    ck_assert_str_eq(bb_block_code_hash(a), bb_block_code_hash(b));
    /* a runs three times before b's first run: b's counter still starts at 1. */
    char *ta = NULL, *tb = NULL;
    for (int i = 1; i <= 3; i++) {
        char *t = state_run(a, i, i);
        free(ta);
        ta = t;
    }
    for (int i = 1; i <= 2; i++) {
        char *t = state_run(b, 10 + i, i);
        free(tb);
        tb = t;
    }
    char *t = state_run(a, 4, 4);
    ck_assert_str_eq(t, ta);
    free(t);
    ck_assert_str_ne(ta, tb);   /* each instance ran its own init */
    cJSON *oa = run_ok(a, "{\"x\": 5}"), *ob = run_ok(b, "{\"x\": 13}");
    char *ma = str_of(oa, "module"), *mb = str_of(ob, "module");
    ck_assert_str_ne(ma, mb);   /* separate module objects, separate processes */
    ck_assert_int_eq((int)num(oa, "runs"), 5);
    ck_assert_int_eq((int)num(ob, "runs"), 3);
    free(ma);
    free(mb);
    cJSON_Delete(oa);
    cJSON_Delete(ob);
    free(ta);
    free(tb);
    bb_block_free(a);
    bb_block_free(b);
    bb_executor_free(ex);
}
END_TEST

/* A witness that a global written by one instance is invisible to another. */
START_TEST(a_global_written_by_one_instance_is_invisible_to_another)
{
    static const char code[] =
        "SEEN = []\n"
        "def run(self, put=None):\n"
        "    if put is not None:\n"
        "        SEEN.append(put)\n"
        "    import builtins\n"
        "    if put == 'builtin':\n"
        "        builtins.LEAK = 1\n"
        "    return {'seen': len(SEEN), 'leak': hasattr(builtins, 'LEAK')}\n";
    bb_executor *ex = local_executor(NULL);
    bb_block *a = load_block(ex, code, NULL, 0);
    bb_block *b = load_block(ex, code, NULL, 0);
    cJSON_Delete(run_ok(a, "{\"put\": \"x\"}"));
    cJSON *oa = run_ok(a, "{\"put\": \"builtin\"}");
    ck_assert_int_eq((int)num(oa, "seen"), 2);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(oa, "leak")));
    cJSON *ob = run_ok(b, "{}");
    ck_assert_int_eq((int)num(ob, "seen"), 0);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(ob, "leak")));
    cJSON_Delete(oa);
    cJSON_Delete(ob);
    bb_block_free(a);
    bb_block_free(b);
    bb_executor_free(ex);
}
END_TEST

START_TEST(max_inputs_one_gives_a_fresh_worker_per_run)
{
    local_block b = local_block_on(local_executor(NULL), STATE_RUN, STATE_INIT, 1);
    char *tokens[5];
    char *modules[5];
    for (int i = 0; i < 5; i++) {
        cJSON *out = run_ok(b.blk, "{\"x\": 1}");
        ck_assert_msg((int)num(out, "runs") == 1, "run %d saw module counter %d", i, (int)num(out, "runs"));
        ck_assert_int_eq((int)num(out, "inits"), 1);
        tokens[i] = str_of(out, "token");
        modules[i] = str_of(out, "module");
        cJSON_Delete(out);
        for (int j = 0; j < i; j++) {
            ck_assert_str_ne(tokens[i], tokens[j]);   /* init ran again */
            ck_assert_str_ne(modules[i], modules[j]); /* a new module, a new process */
        }
    }
    for (int i = 0; i < 5; i++) {
        free(tokens[i]);
        free(modules[i]);
    }
    local_block_free(b);
}
END_TEST

START_TEST(max_inputs_three_recycles_after_three_runs_and_reruns_init)
{
    local_block b = local_block_on(local_executor(NULL), STATE_RUN, STATE_INIT, 3);
    char *gen[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 7; i++) {
        char *token = state_run(b.blk, i, i % 3 + 1);   /* 1 2 3 1 2 3 1 */
        int g = i / 3;
        if (!gen[g]) {
            gen[g] = token;
        } else {
            ck_assert_str_eq(token, gen[g]);
            free(token);
        }
    }
    ck_assert_str_ne(gen[0], gen[1]);
    ck_assert_str_ne(gen[1], gen[2]);
    for (int g = 0; g < 3; g++)
        free(gen[g]);
    local_block_free(b);
}
END_TEST

START_TEST(executor_max_inputs_applies_when_the_block_leaves_it_unset)
{
    const char *const cfg[] = {"max_inputs", "2", NULL};
    local_block b = local_block_on(local_executor(cfg), STATE_RUN, STATE_INIT, 0);
    for (int i = 0; i < 4; i++)
        free(state_run(b.blk, i, i % 2 + 1));   /* 1 2 1 2 */
    local_block_free(b);
}
END_TEST

/* ---- timeouts and crashes ------------------------------------------------ */

START_TEST(timeout_replaces_the_worker_and_init_runs_again)
{
    const char *const cfg[] = {"timeout", "1", NULL};
    local_block b = local_block_on(local_executor(cfg), STATE_RUN, STATE_INIT, 0);
    char *before = state_run(b.blk, 1, 1);
    /* The run (a 60 s sleep) is ended by this executor's 1 s limit, not by the default
     * 20 s one nor by the sleep: the error names the limit that fired. */
    expect_failure(run_mode(b.blk, "sleep"), BB_ERR_TIMEOUT, "its 1 s timeout");
    /* The message says init runs again; it does. */
    bb_result *res = run_mode(b.blk, "sleep");
    ck_assert_ptr_nonnull(res);
    ck_assert_msg(mentions(bb_error_message(bb_result_error(res)), "init will run again"), "%s",
                  bb_error_message(bb_result_error(res)));
    ck_assert_int_eq(bb_error_exit_code(bb_result_error(res)), 3);
    bb_result_free(res);
    char *after = state_run(b.blk, 2, 1);   /* a fresh worker: counter restarts */
    ck_assert_str_ne(before, after);
    char *again = state_run(b.blk, 3, 2);   /* and it persists again */
    ck_assert_str_eq(after, again);
    free(before);
    free(after);
    free(again);
    local_block_free(b);
}
END_TEST

static void crash_then_recover(const char *mode, unsigned kinds)
{
    local_block b = local_block_on(local_executor(NULL), STATE_RUN, STATE_INIT, 0);
    char *before = state_run(b.blk, 1, 1);
    bb_result *res = run_mode(b.blk, mode);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(bb_error_exit_code(bb_result_error(res)), 3);
    expect_failure_in(res, kinds, "replaced");
    char *after = state_run(b.blk, 2, 1);
    ck_assert_str_ne(before, after);
    free(before);
    free(after);
    local_block_free(b);
}

START_TEST(segfault_is_a_crash_and_the_next_run_works)
{
    crash_then_recover("segv", KIND(BB_ERR_SANDBOX_CRASH) | KIND(BB_ERR_SANDBOX_VIOLATION));
}
END_TEST

START_TEST(abort_is_a_crash_and_the_next_run_works)
{
    crash_then_recover("abort", KIND(BB_ERR_SANDBOX_CRASH) | KIND(BB_ERR_SANDBOX_VIOLATION));
}
END_TEST

START_TEST(exit_without_answer_is_a_crash_and_the_next_run_works)
{
    crash_then_recover("exit", KIND(BB_ERR_SANDBOX_CRASH));
}
END_TEST

/* ---- a block cannot claim the trusted side's error kinds --------------------- */

START_TEST(a_block_raising_its_own_Timeout_is_a_block_error)
{
    static const char *const names[] = {"Timeout", "MemoryLimit", "SandboxCrash", "BackendUnavailable",
                                        "ExecutionDisabled", "AuthenticationFailed", "InternalError"};
    bb_executor *ex = local_executor(NULL);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char code[512];
        snprintf(code, sizeof code,
                 "class %s(Exception):\n    pass\n"
                 "N = 0\n"
                 "def run(self):\n"
                 "    global N\n"
                 "    N += 1\n"
                 "    if N == 1:\n"
                 "        raise %s('forged by the block')\n"
                 "    return {'n': N}\n",
                 names[i], names[i]);
        bb_block *blk = load_block(ex, code, NULL, 0);
        bb_result *res = bb_block_run(blk, "{}", NULL);
        const bb_error *e = bb_result_error(res);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(bb_error_get_kind(e) == BB_ERR_BLOCK, "%s raised by the block became kind %s", names[i],
                      bb_error_kind_name(bb_error_get_kind(e)));
        /* a blockbox type name is shown qualified, so it never reads as ours (issue 8) */
        char shown[64];
        snprintf(shown, sizeof shown, "block.%s", names[i]);
        ck_assert_str_eq(bb_error_type_name(e), shown);
        ck_assert_int_eq(bb_error_exit_code(e), 1);
        ck_assert_int_eq(bb_error_line(e), 8);
        bb_result_free(res);
        /* A block error does not cost the worker: its state is still there. */
        run_expect(blk, "{}", "n", 2);
        bb_block_free(blk);
    }
    bb_executor_free(ex);
}
END_TEST

/* ---- forged frames on the response pipe (fd 4) ------------------------------ */

/* Runs a block whose run writes `payload` (a Python bytes expression) to fd 4 before
 * returning, and returns the result. The block runs once on a fresh instance. */
static bb_result *forge(bb_executor *ex, const char *payload, const char *after)
{
    char code[2048];
    snprintf(code, sizeof code,
             "def run(self):\n"
             "    payload = %s\n"
             "    os.write(4, payload)\n"
             "    %s\n"
             "    return {'real': 1}\n",
             payload, after ? after : "pass");
    bb_block *blk = load_block(ex, code, NULL, 0);
    bb_result *res = bb_block_run(blk, "{}", NULL);
    bb_block_free(blk);
    return res;
}

/* The host is fine afterwards: a new block on the same executor runs. */
static void host_still_serves(bb_executor *ex)
{
    bb_block *blk = load_block(ex, "def run(self, x):\n    return {'y': x + 1}\n", NULL, 0);
    run_expect(blk, "{\"x\": 41}", "y", 42);
    bb_block_free(blk);
}

#define FRAME(body) "len(" body ").to_bytes(4, 'little') + " body

START_TEST(forged_frame_claiming_Timeout_is_not_a_Timeout)
{
    bb_executor *ex = local_executor(NULL);
    static const char *const kinds[] = {"Timeout", "MemoryLimit", "SandboxCrash", "BackendUnavailable"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char body[512], payload[1024];
        snprintf(body, sizeof body,
                 "b'{\"success\": false, \"error_type\": \"%s\", \"error\": \"forged\", "
                 "\"stdout\": \"\", \"stderr\": \"\"}'",
                 kinds[i]);
        snprintf(payload, sizeof payload, "len(%s).to_bytes(4, 'little') + %s", body, body);
        bb_result *res = forge(ex, payload, NULL);
        const bb_error *e = bb_result_error(res);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(bb_error_get_kind(e) == BB_ERR_BLOCK || bb_error_get_kind(e) == BB_ERR_INVALID_RESPONSE,
                      "a forged %s frame became kind %s", kinds[i], bb_error_kind_name(bb_error_get_kind(e)));
        ck_assert_int_ne(bb_error_exit_code(e), 3);
        bb_result_free(res);
    }
    host_still_serves(ex);
    bb_executor_free(ex);
}
END_TEST

START_TEST(forged_garbage_frames_are_refused)
{
    static const char *const payloads[] = {
        FRAME("b'hello'"),                              /* not JSON */
        FRAME("b'[1, 2, 3]'"),                          /* JSON, not an envelope */
        FRAME("b'{\"success\": true, \"result\": 5}'"), /* result not a string */
        FRAME("b'{\"success\": true, \"result\": \"{\\\\\"y\\\\\": \"}'"), /* result not JSON */
        FRAME("b'\\xff\\xfe\\x00garbage'"),             /* not UTF-8 */
        FRAME("b'{\"success\": true, \"result\": \"' + b'[' * 100000 + b'\"}'"), /* deep */
        "b'\\x00\\x00\\x00\\x00'",                      /* an empty frame */
    };
    bb_executor *ex = local_executor(NULL);
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        bb_result *res = forge(ex, payloads[i], NULL);
        ck_assert_ptr_nonnull(res);
        if (bb_result_ok(res)) {
            ck_abort_msg("forged frame %zu was accepted: %s", i, bb_result_outputs(res));
        }
        expect_failure_in(res, KIND(BB_ERR_INVALID_RESPONSE) | KIND(BB_ERR_BLOCK) | KIND(BB_ERR_SANDBOX_CRASH) |
                          KIND(BB_ERR_OUTPUT_LIMIT), NULL);
    }
    host_still_serves(ex);
    bb_executor_free(ex);
}
END_TEST

START_TEST(forged_huge_frame_header_is_an_output_limit_at_once)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "N = 0\n"
                                   "def run(self, forge=False):\n"
                                   "    global N\n"
                                   "    N += 1\n"
                                   "    if forge:\n"
                                   "        os.write(4, b'\\xff\\xff\\xff\\xff')\n"
                                   "        time.sleep(30)\n"
                                   "    return {'n': N}\n",
                                   NULL, 0);
    cJSON_Delete(run_ok(b.blk, "{}"));
    /* Refused at the header: an OutputLimit saying so. Read on, the call would have
     * waited for the body and ended as a Timeout (the block sleeps 30 s). */
    bb_result *res = bb_block_run(b.blk, "{\"forge\": true}", NULL);
    ck_assert_ptr_nonnull(res);
    ck_assert_msg(mentions(bb_error_message(bb_result_error(res)), "response exceeded"), "%s",
                  bb_error_message(bb_result_error(res)));
    expect_failure(res, BB_ERR_OUTPUT_LIMIT, "replaced");
    cJSON *out = run_ok(b.blk, "{}");
    ck_assert_int_eq((int)num(out, "n"), 1);   /* a new worker */
    cJSON_Delete(out);
    local_block_free(b);
}
END_TEST

START_TEST(forged_truncated_frame_then_exit_is_a_crash)
{
    bb_executor *ex = local_executor(NULL);
    bb_result *res = forge(ex, "(100).to_bytes(4, 'little') + b'{\"success\"'", "os._exit(0)");
    expect_failure(res, BB_ERR_SANDBOX_CRASH, NULL);
    host_still_serves(ex);
    bb_executor_free(ex);
}
END_TEST

START_TEST(forged_truncated_frame_then_silence_is_a_timeout)
{
    /* Scaled: the block's load must fit in it too (under TCG it did not fit in 1 s). */
    const char *const cfg[] = {"timeout", SCALED_SECONDS(1), NULL};
    bb_executor *ex = local_executor(cfg);
    bb_result *res = forge(ex, "(100).to_bytes(4, 'little') + b'{\"success\"'", "time.sleep(300)");
    /* ended by its own limit (not the block's 300 s of silence): the error names it */
    char limit[64];
    snprintf(limit, sizeof limit, "its %s s timeout", cfg[1]);
    expect_failure(res, BB_ERR_TIMEOUT, limit);
    host_still_serves(ex);
    bb_executor_free(ex);
}
END_TEST

/* ---- bad input never reaches a worker ------------------------------------------ */

START_TEST(oversized_input_is_refused_before_the_worker_sees_it)
{
    const char *const cfg[] = {"max_input_bytes", "4096", NULL};
    local_block b = local_block_on(local_executor(cfg), STATE_RUN, STATE_INIT, 0);
    char *big = malloc(8192);
    ck_assert_ptr_nonnull(big);
    int n = snprintf(big, 8192, "{\"x\": 1, \"mode\": \"");
    memset(big + n, 'a', 6000);
    strcpy(big + n + 6000, "\"}");
    expect_failure(bb_block_run(b.blk, big, NULL), BB_ERR_INVALID_REQUEST, NULL);
    free(big);
    /* Malformed inputs are refused the same way. */
    static const char *const bad[] = {"{\"x\": ", "[1, 2]", "{\"x\": 1} trailing", "\"x\"", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_failure(bb_block_run(b.blk, bad[i], NULL), BB_ERR_INVALID_REQUEST, NULL);
    char *token = state_run(b.blk, 1, 1);   /* the worker's first run is this one */
    free(token);
    local_block_free(b);
}
END_TEST

START_TEST(secret_in_the_executor_config_never_reaches_a_block)
{
    const char *const cfg[] = {"modal_token_secret", "api-secret-4f1d2c", "modal_token_id", "api-token-9a8b7c",
                               NULL};
    setenv("MODAL_TOKEN_SECRET", "env-secret-77aa11", 1);
    bb_executor *ex = local_executor(cfg);
    bb_block *blk = load_block(ex,
                               "def run(self):\n"
                               "    seen = repr(dict(os.environ))\n"
                               "    for p in ('/proc/self/environ', '/proc/1/environ'):\n"
                               "        try:\n"
                               "            seen += open(p, 'rb').read().decode('latin-1')\n"
                               "        except OSError:\n"
                               "            pass\n"
                               "    print(seen)\n"
                               "    return {'seen': seen, 'n': len(os.environ)}\n",
                               NULL, 0);
    bb_result *res = bb_block_run(blk, "{}", NULL);
    ck_assert(bb_result_ok(res));
    const char *texts[] = {bb_result_outputs(res), bb_result_stdout(res), bb_result_stderr(res)};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_ptr_null(strstr(texts[i], "secret-"));
        ck_assert_ptr_null(strstr(texts[i], "api-token"));
        ck_assert_ptr_null(strstr(texts[i], "MODAL"));
    }
    ck_assert_ptr_nonnull(strstr(bb_result_outputs(res), "\"n\":0"));
    bb_result_free(res);
    char *desc = bb_executor_describe(ex);
    ck_assert_ptr_null(strstr(desc, "secret-"));
    free(desc);
    bb_block_free(blk);
    bb_executor_free(ex);
    unsetenv("MODAL_TOKEN_SECRET");
}
END_TEST

/* ---- regressions: bugs these tests found in local.c, fixed since ---- */

/* A block that writes a complete forged frame is answered from it (harmless: it could
 * have returned those outputs), but the runtime's real frame stays in the pipe and is
 * read as the answer to the NEXT run: run N+1 returns run N's outputs. */
START_TEST(regression_stale_frame_answers_the_next_run)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "def run(self, x, forge=False):\n"
                                   "    if forge:\n"
                                   "        body = b'{\"success\": true, \"result\": \"{}\", \"stdout\": \"\", \"stderr\": \"\"}'\n"
                                   "        os.write(4, len(body).to_bytes(4, 'little') + body)\n"
                                   "    return {'x': x}\n",
                                   NULL, 0);
    bb_result *res = bb_block_run(b.blk, "{\"x\": 1, \"forge\": true}", NULL);
    bb_result_free(res);
    usleep(100 * 1000);   /* the real frame of run 1 is in the pipe by now */
    res = bb_block_run(b.blk, "{\"x\": 2}", NULL);
    ck_assert_ptr_nonnull(res);
    if (bb_result_ok(res)) {
        cJSON *out = cJSON_Parse(bb_result_outputs(res));
        ck_assert_ptr_nonnull(out);
        ck_assert_msg((int)num(out, "x") == 2, "run 2 was answered with run 1's frame: %s",
                      bb_result_outputs(res));
        cJSON_Delete(out);
    }
    bb_result_free(res);
    local_block_free(b);
}
END_TEST

/* A worker that dies between runs (here: the block closes its request pipe, so the
 * runtime exits after answering) makes the next run write into a pipe without a
 * reader. The library does not block SIGPIPE around that write, so the HOST process
 * (this test, with SIGPIPE at its default action) is killed. The CLI ignores SIGPIPE
 * and is not affected; every other API user is. */
START_TEST(regression_worker_death_between_runs_kills_the_host_with_SIGPIPE)
{
    signal(SIGPIPE, SIG_DFL);
    local_block b = local_block_on(local_executor(NULL),
                                   "def run(self):\n    os.close(3)\n    return {'ok': 1}\n", NULL, 0);
    cJSON_Delete(run_ok(b.blk, "{}"));
    usleep(200 * 1000);   /* the worker has exited by now */
    bb_result *res = bb_block_run(b.blk, "{}", NULL);   /* SIGPIPE killed us here */
    /* Issue 9: the worker died idle (nothing of this call was sent), so the call is
     * run on a new worker and succeeds, saying the instance was restarted. */
    ck_assert_ptr_nonnull(res);
    ck_assert_msg(bb_result_ok(res), "%s", bb_error_message(bb_result_error(res)));
    ck_assert_int_eq(bb_result_restarted(res), 1);
    bb_result_free(res);
    res = bb_block_run(b.blk, "{}", NULL);   /* that worker closed fd 3 too */
    ck_assert(bb_result_ok(res));
    ck_assert_int_eq(bb_result_restarted(res), 1);
    bb_result_free(res);
    local_block_free(b);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("semantics", module_state_persists_across_runs_of_one_instance),
        BB_CHECK_TEST("semantics", two_instances_of_the_same_code_share_nothing),
        BB_CHECK_TEST("semantics", a_global_written_by_one_instance_is_invisible_to_another),
        BB_CHECK_TEST("semantics", max_inputs_one_gives_a_fresh_worker_per_run),
        BB_CHECK_TEST("semantics", max_inputs_three_recycles_after_three_runs_and_reruns_init),
        BB_CHECK_TEST("semantics", executor_max_inputs_applies_when_the_block_leaves_it_unset),
        BB_CHECK_TEST("failures", timeout_replaces_the_worker_and_init_runs_again),
        BB_CHECK_TEST("failures", segfault_is_a_crash_and_the_next_run_works),
        BB_CHECK_TEST("failures", abort_is_a_crash_and_the_next_run_works),
        BB_CHECK_TEST("failures", exit_without_answer_is_a_crash_and_the_next_run_works),
        BB_CHECK_TEST("failures", a_block_raising_its_own_Timeout_is_a_block_error),
        BB_CHECK_TEST("forged_frames", forged_frame_claiming_Timeout_is_not_a_Timeout),
        BB_CHECK_TEST("forged_frames", forged_garbage_frames_are_refused),
        BB_CHECK_TEST("forged_frames", forged_huge_frame_header_is_an_output_limit_at_once),
        BB_CHECK_TEST("forged_frames", forged_truncated_frame_then_exit_is_a_crash),
        BB_CHECK_TEST("forged_frames", forged_truncated_frame_then_silence_is_a_timeout),
        BB_CHECK_TEST("input_and_secrets", oversized_input_is_refused_before_the_worker_sees_it),
        BB_CHECK_TEST("input_and_secrets", secret_in_the_executor_config_never_reaches_a_block),
        BB_CHECK_TEST("regressions", regression_stale_frame_answers_the_next_run),
        BB_CHECK_TEST("regressions", regression_worker_death_between_runs_kills_the_host_with_SIGPIPE),
    };
    return bb_check_run("local_instances", 60, rows, BB_CHECK_COUNT(rows));
}
