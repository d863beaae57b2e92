/* api_test_util.h: helpers shared by the API, config and registry tests: where the
 * echo plugins are, an executor (and a block) on the echo driver, assertions on errors. */
#ifndef API_TEST_UTIL_H
#define API_TEST_UTIL_H

#include <blockbox.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The path of a test plugin, from the environment ctest sets (BB_TEST_ECHO_*). */
static inline const char *plugin_path(const char *var)
{
    const char *p = getenv(var);
    ck_assert_msg(p && *p, "%s is not set: run this test through ctest", var);
    return p;
}

static inline const char *echo_path(void) { return plugin_path("BB_TEST_ECHO_DRIVER"); }

/* A config on the echo driver, with one extra setting (key may be NULL). */
static inline bb_config *echo_config(const char *key, const char *value)
{
    bb_config *cfg = bb_config_new();
    bb_error *err = NULL;
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(bb_config_set(cfg, "mode", "echo", &err), 0);
    ck_assert_int_eq(bb_config_set(cfg, "driver_path", echo_path(), &err), 0);
    if (key)
        ck_assert_msg(bb_config_set(cfg, key, value, &err) == 0, "setting %s: %s", key,
                      err ? bb_error_message(err) : "?");
    return cfg;
}

static inline bb_executor *echo_executor_with(const char *key, const char *value)
{
    bb_config *cfg = echo_config(key, value);
    bb_error *err = NULL;
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);   /* the executor keeps its own copy */
    ck_assert_msg(ex != NULL, "echo executor: %s", err ? bb_error_message(err) : "?");
    ck_assert_ptr_null(err);
    return ex;
}

static inline bb_executor *echo_executor(void) { return echo_executor_with(NULL, NULL); }

static inline bb_block *load_code(bb_executor *ex, const char *code)
{
    bb_block_spec spec = {.run_code = code};
    bb_error *err = NULL;
    bb_block *blk = bb_block_load(ex, &spec, &err);
    ck_assert_msg(blk != NULL, "load: %s", err ? bb_error_message(err) : "?");
    return blk;
}

#define PLAIN_CODE "def run(self, **kw):\n    return {}\n"

/* The usual fixture: an echo executor (with one extra setting, key may be NULL) and one
 * block of PLAIN_CODE on it; echo_block_free frees both. */
typedef struct echo_block {
    bb_executor *ex;
    bb_block *blk;
} echo_block;

static inline echo_block echo_block_with(const char *key, const char *value)
{
    echo_block b = {.ex = echo_executor_with(key, value)};
    b.blk = load_code(b.ex, PLAIN_CODE);
    return b;
}

static inline void echo_block_free(echo_block b)
{
    bb_block_free(b.blk);
    bb_executor_free(b.ex);
}

/* Runs inputs (and context) on a new block of PLAIN_CODE on ex; returns the result. */
static inline bb_result *run_plain(bb_executor *ex, const char *inputs, const char *context)
{
    bb_block *blk = load_code(ex, PLAIN_CODE);
    bb_result *res = bb_block_run(blk, inputs, context);
    bb_block_free(blk);
    return res;
}

/* Runs the echo driver's command verb + arg (arg may be NULL): inputs {"__echo": ...}. */
static inline bb_result *run_echo(bb_block *blk, const char *verb, const char *arg)
{
    cJSON *inputs = cJSON_CreateObject();
    char *command = NULL;
    ck_assert_int_ge(asprintf(&command, "%s%s", verb, arg ? arg : ""), 0);
    cJSON_AddStringToObject(inputs, "__echo", command);
    free(command);
    char *text = cJSON_PrintUnformatted(inputs);
    cJSON_Delete(inputs);
    bb_result *res = bb_block_run(blk, text, NULL);
    free(text);
    ck_assert_ptr_nonnull(res);
    return res;
}

/* The result must be a success; freed. */
static inline void expect_ok(bb_result *res)
{
    ck_assert_ptr_nonnull(res);
    ck_assert_msg(bb_result_ok(res), "the run failed: %s: %s", bb_error_type_name(bb_result_error(res)),
                  bb_error_message(bb_result_error(res)));
    bb_result_free(res);
}

/* The process-wide run counter of the echo plugin (the same dlopen handle as the
 * registry's, so the same counter). */
static inline long echo_runs(void)
{
    void *h = dlopen(echo_path(), RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "dlopen %s: %s", echo_path(), dlerror());
    long (*runs)(void);
    *(void **)&runs = dlsym(h, "blockbox_test_echo_runs");
    ck_assert_ptr_nonnull(runs);
    long n = runs();
    dlclose(h);
    return n;
}

/* needle NULL matches anything. */
static inline int mentions(const char *text, const char *needle)
{
    return !needle || (text && strstr(text, needle) != NULL);
}

/* err must be set, of kind, with a message containing needle (NULL: any); freed. */
#define expect_err(err, want_kind, needle)                                                         \
    do {                                                                                           \
        ck_assert_msg((err) != NULL, "no error set");                                              \
        ck_assert_msg(bb_error_get_kind(err) == (want_kind), "kind %s, wanted %s: %s",             \
                      bb_error_kind_name(bb_error_get_kind(err)), bb_error_kind_name(want_kind),   \
                      bb_error_message(err));                                                      \
        ck_assert_msg(mentions(bb_error_message(err), (needle)), "message \"%s\" lacks \"%s\"",   \
                      bb_error_message(err), (needle) ? (const char *)(needle) : "");             \
        bb_error_free(err);                                                                        \
        (err) = NULL;                                                                              \
    } while (0)

/* A failed result of kind whose message contains needle (NULL: any); freed. */
#define expect_failed_result(res, want_kind, needle)                                               \
    do {                                                                                           \
        bb_result *r_ = (res);                                                                     \
        ck_assert_ptr_nonnull(r_);                                                                 \
        ck_assert_msg(!bb_result_ok(r_), "the run succeeded: %s", bb_result_outputs(r_));          \
        ck_assert_ptr_null(bb_result_outputs(r_));                                                 \
        const bb_error *e_ = bb_result_error(r_);                                                  \
        ck_assert_ptr_nonnull(e_);                                                                 \
        ck_assert_msg(bb_error_get_kind(e_) == (want_kind), "kind %s, wanted %s: %s",              \
                      bb_error_kind_name(bb_error_get_kind(e_)), bb_error_kind_name(want_kind),    \
                      bb_error_message(e_));                                                       \
        ck_assert_msg(mentions(bb_error_message(e_), (needle)), "message \"%s\" lacks \"%s\"",    \
                      bb_error_message(e_), (needle) ? (const char *)(needle) : "");              \
        ck_assert_ptr_nonnull(bb_result_stdout(r_));                                               \
        ck_assert_ptr_nonnull(bb_result_stderr(r_));                                               \
        bb_result_free(r_);                                                                        \
    } while (0)


#endif
