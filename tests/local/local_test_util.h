/* local_test_util.h: helpers for the local driver's end-to-end Check tests: executors
 * on the real zygote, a block on one, reading outputs and describe(), asserting errors. */
#ifndef LOCAL_TEST_UTIL_H
#define LOCAL_TEST_UTIL_H

#include <blockbox.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline double time_factor(void);

/* A config on the local driver with the test's worker (BB_TEST_WORKER, set by ctest)
 * and up to three extra key/value settings (NULL-terminated pairs). Under a time
 * multiplier (below) the zygote's start limit and the default timeout scale too: 60 s
 * and 20 s x N, at most 3600 s (a call waits for a restarting zygote only until its
 * deadline); a test that sets its own timeout keeps it. */
static inline bb_config *local_config(const char *const *pairs)
{
    bb_config *cfg = bb_config_new();
    bb_error *err = NULL;
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(bb_config_set(cfg, "mode", "local", &err), 0);
    if (time_factor() > 1.0) {
        char start[24], timeout[24];
        double s = 60.0 * time_factor(), t = 20.0 * time_factor();
        snprintf(start, sizeof start, "%.0f", s < 3600.0 ? s : 3600.0);
        snprintf(timeout, sizeof timeout, "%.0f", t < 3600.0 ? t : 3600.0);
        ck_assert_int_eq(bb_config_set(cfg, "zygote_start_seconds", start, &err), 0);
        ck_assert_int_eq(bb_config_set(cfg, "timeout", timeout, &err), 0);
    }
    const char *worker = getenv("BB_TEST_WORKER");
    if (worker && *worker)
        ck_assert_int_eq(bb_config_set(cfg, "worker_path", worker, &err), 0);
    for (size_t i = 0; pairs && pairs[i]; i += 2)
        ck_assert_msg(bb_config_set(cfg, pairs[i], pairs[i + 1], &err) == 0, "setting %s=%s: %s",
                      pairs[i], pairs[i + 1], err ? bb_error_message(err) : "?");
    return cfg;
}

static inline bb_executor *local_executor(const char *const *pairs)
{
    bb_config *cfg = local_config(pairs);
    bb_error *err = NULL;
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    ck_assert_msg(ex != NULL, "local executor: %s: %s", err ? bb_error_type_name(err) : "?",
                  err ? bb_error_message(err) : "?");
    ck_assert_ptr_null(err);
    ck_assert_str_eq(bb_executor_driver(ex), "local");
    return ex;
}

/* Loads run code (+ optional init code) with max_inputs; asserts success. */
static inline bb_block *load_block(bb_executor *ex, const char *run_code, const char *init_code,
                                   int max_inputs)
{
    bb_block_spec spec = {.run_code = run_code, .init_code = init_code, .max_inputs = max_inputs};
    bb_error *err = NULL;
    bb_block *blk = bb_block_load(ex, &spec, &err);
    ck_assert_msg(blk != NULL, "load: %s: %s", err ? bb_error_type_name(err) : "?",
                  err ? bb_error_message(err) : "?");
    ck_assert_ptr_null(err);
    return blk;
}

/* The usual fixture: an executor (local_executor's or marked_executor's, owned from here
 * on) and one block on it (as load_block); local_block_free frees both. */
typedef struct local_block {
    bb_executor *ex;
    bb_block *blk;
} local_block;

static inline local_block local_block_on(bb_executor *ex, const char *run_code, const char *init_code,
                                         int max_inputs)
{
    local_block b = {.ex = ex, .blk = load_block(ex, run_code, init_code, max_inputs)};
    return b;
}

static inline void local_block_free(local_block b)
{
    bb_block_free(b.blk);
    bb_executor_free(b.ex);
}

/* Runs and asserts success; returns the parsed outputs (caller deletes). */
static inline cJSON *run_ok(bb_block *blk, const char *inputs)
{
    bb_result *res = bb_block_run(blk, inputs, NULL);
    ck_assert_ptr_nonnull(res);
    const bb_error *e = bb_result_error(res);
    ck_assert_msg(bb_result_ok(res), "run(%s) failed: %s: %s", inputs, e ? bb_error_type_name(e) : "?",
                  e ? bb_error_message(e) : "?");
    cJSON *out = cJSON_Parse(bb_result_outputs(res));
    ck_assert_msg(out != NULL, "outputs are not JSON: %s", bb_result_outputs(res));
    bb_result_free(res);
    return out;
}

static inline double num(const cJSON *obj, const char *key)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, key);
    ck_assert_msg(cJSON_IsNumber(n), "output %s is not a number", key);
    return n->valuedouble;
}

/* Runs (asserting success) and asserts that output key is the number want. */
static inline void run_expect(bb_block *blk, const char *inputs, const char *key, double want)
{
    cJSON *out = run_ok(blk, inputs);
    double got = num(out, key);
    cJSON_Delete(out);
    ck_assert_msg(got == want, "run(%s): output %s is %g, not %g", inputs, key, got, want);
}

/* The string output `key`, copied (caller frees). */
static inline char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, key);
    ck_assert_msg(cJSON_IsString(s), "output %s is not a string", key);
    return strdup(s->valuestring);
}

static inline int mentions(const char *text, const char *needle)
{
    return !needle || (text && strstr(text, needle) != NULL);
}

/* A failed result whose kind is one of `kinds` (a mask of 1u << kind) and whose
 * message contains needle (NULL: any). Frees the result; returns the kind seen. */
static inline bb_error_kind expect_failure_in(bb_result *res, unsigned kinds, const char *needle)
{
    ck_assert_ptr_nonnull(res);
    ck_assert_msg(!bb_result_ok(res), "the run succeeded: %s", bb_result_outputs(res));
    ck_assert_ptr_null(bb_result_outputs(res));
    const bb_error *e = bb_result_error(res);
    ck_assert_ptr_nonnull(e);
    bb_error_kind k = bb_error_get_kind(e);
    ck_assert_msg((kinds >> k) & 1u, "unexpected kind %s (%s): %s", bb_error_kind_name(k),
                  bb_error_type_name(e), bb_error_message(e));
    ck_assert_msg(mentions(bb_error_message(e), needle), "message \"%s\" lacks \"%s\"",
                  bb_error_message(e), needle ? needle : "");
    bb_result_free(res);
    return k;
}
#define KIND(k) (1u << (k))
#define expect_failure(res, kind, needle) expect_failure_in((res), KIND(kind), (needle))

/* An integer field of bb_executor_describe's JSON. */
static inline long describe_long(bb_executor *ex, const char *key)
{
    char *desc = bb_executor_describe(ex);
    ck_assert_ptr_nonnull(desc);
    cJSON *d = cJSON_Parse(desc);
    ck_assert_msg(d != NULL, "describe is not JSON: %s", desc);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, key);
    ck_assert_msg(cJSON_IsNumber(v), "describe has no number %s: %s", key, desc);
    long n = (long)v->valuedouble;
    cJSON_Delete(d);
    free(desc);
    return n;
}

static inline double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits and bounds on the wall clock are multiplied by BB_TEST_TIME_MULTIPLIER (>= 1;
 * the VM of scripts/vm-test.sh sets it under software emulation, where everything is
 * ~10x slower). Only how long a test waits for something scales, never what it checks. */
static inline double time_factor(void)
{
    const char *e = getenv("BB_TEST_TIME_MULTIPLIER");
    double f = e && *e ? strtod(e, NULL) : 1.0;
    return f >= 1.0 && f <= 1000.0 ? f : 1.0;
}

static inline double scaled_s(double seconds) { return seconds * time_factor(); }

/* usleep(us) scaled: a pause that lets something happen (a spare fork, PDEATHSIG). */
static inline void settle_us(long us) { usleep((useconds_t)((double)us * time_factor())); }

/* A config value in whole seconds, scaled ("1" -> "10" at 10x), in a buffer that lives
 * as long as the enclosing block. */
#define SCALED_SECONDS(n) scaled_seconds_text((n), (char[24]){0})
static inline const char *scaled_seconds_text(double seconds, char *buf)
{
    snprintf(buf, 24, "%.0f", scaled_s(seconds));
    return buf;
}

/* Is pid a live process (not a zombie)? */
static inline int process_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z' && close_paren[2] != 'X';
}

/* Waits up to seconds for pid to be gone (or a zombie). */
static inline int wait_gone(pid_t pid, double seconds)
{
    double until = monotonic_s() + scaled_s(seconds);
    while (process_alive(pid)) {
        if (monotonic_s() > until)
            return 0;
        usleep(2000);
    }
    return 1;
}


#endif
