/* test_api.c: the public API end to end on the test-only echo driver plugin: driver
 * selection, the core's checks on both sides of a driver, errors, frees, threads. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_test_util.h"
#include "check_main.h"

/* ---- helpers ------------------------------------------------------------ */

static cJSON *outputs_of(const bb_result *res)
{
    ck_assert_msg(bb_result_ok(res), "run failed: %s: %s",
                  bb_error_type_name(bb_result_error(res)), bb_error_message(bb_result_error(res)));
    ck_assert_ptr_null(bb_result_error(res));
    cJSON *out = cJSON_Parse(bb_result_outputs(res));
    ck_assert_msg(out != NULL, "outputs are not JSON: %s", bb_result_outputs(res));
    return out;
}

static double number_at(const cJSON *root, const char *a, const char *b)
{
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(root, a);
    if (b)
        node = cJSON_GetObjectItemCaseSensitive(node, b);
    ck_assert_msg(cJSON_IsNumber(node), "%s.%s is not a number", a, b ? b : "");
    return node->valuedouble;
}

/* A config of mode and, unless NULL, the plugins of driver_path (nothing else set). */
static bb_config *plugin_config(const char *mode, const char *driver_path)
{
    bb_config *cfg = bb_config_new();
    bb_error *err = NULL;
    ck_assert_int_eq(bb_config_set(cfg, "mode", mode, &err), 0);
    if (driver_path)
        ck_assert_int_eq(bb_config_set(cfg, "driver_path", driver_path, &err), 0);
    return cfg;
}

/* The executor of cfg (NULL: the environment's), which must open on driver want;
 * cfg is freed (the executor keeps its own copy). */
static bb_executor *executor_of(bb_config *cfg, const char *want)
{
    bb_error *err = NULL;
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    ck_assert_msg(ex != NULL, "driver %s: %s", want, err ? bb_error_message(err) : "?");
    ck_assert_str_eq(bb_executor_driver(ex), want);
    return ex;
}

/* cfg must not open an executor: returns the error (the caller frees it); cfg is freed. */
static bb_error *executor_refused(bb_config *cfg)
{
    bb_error *err = NULL;
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    ck_assert_msg(ex == NULL, "the executor opened on driver %s", bb_executor_driver(ex));
    ck_assert_ptr_nonnull(err);
    return err;
}

/* ---- driver selection ---------------------------------------------------- */

START_TEST(env_selects_the_plugin_driver)
{
    setenv("WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE", "echo", 1);
    setenv("BLOCKBOX_DRIVER_PATH", echo_path(), 1);
    bb_executor *ex = executor_of(NULL, "echo");
    bb_result *res = run_plain(ex, "{\"x\": 41}", NULL);
    cJSON *out = outputs_of(res);
    ck_assert_double_eq(number_at(out, "inputs", "x"), 41);
    ck_assert_double_eq(number_at(out, "calls", NULL), 1);
    ck_assert_str_eq(bb_result_stdout(res), "echo: 1\n");
    ck_assert_str_eq(bb_result_stderr(res), "");
    ck_assert_str_eq(bb_result_denied_syscalls(res), "");
    cJSON_Delete(out);
    bb_result_free(res);
    char *desc = bb_executor_describe(ex);
    ck_assert_ptr_nonnull(desc);
    ck_assert_ptr_nonnull(strstr(desc, "\"echo\""));
    free(desc);
    bb_executor_free(ex);
}
END_TEST

START_TEST(mode_is_case_insensitive)
{
    static const char *const spellings[] = {"ECHO", "Echo", "  eChO  ", "'echo'", "\"ECHO\""};
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++)
        bb_executor_free(executor_of(echo_config("mode", spellings[i]), "echo"));
}
END_TEST

START_TEST(unknown_mode_lists_known_drivers)
{
    bb_error *err = executor_refused(echo_config("mode", "quantum"));
    ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_CONFIGURATION);
    ck_assert_str_eq(bb_error_type_name(err), "ConfigurationError");
    ck_assert_int_eq(bb_error_exit_code(err), 4);
    const char *msg = bb_error_message(err);
    ck_assert_ptr_nonnull(strstr(msg, "quantum"));
    ck_assert_ptr_nonnull(strstr(msg, "local"));
    ck_assert_ptr_nonnull(strstr(msg, "modal"));
    ck_assert_ptr_nonnull(strstr(msg, "echo"));
    bb_error_free(err);
}
END_TEST

START_TEST(plugin_driver_needs_its_plugin)
{
    bb_error *err = executor_refused(plugin_config("echo", NULL));
    ck_assert_ptr_nonnull(strstr(bb_error_message(err), "local"));
    ck_assert_ptr_null(strstr(bb_error_message(err), "known drivers: local, modal, echo"));
    expect_err(err, BB_ERR_CONFIGURATION, "echo");
}
END_TEST

/* Each broken plugin is refused with a ConfigurationError that says why. */
static void expect_plugin_refused(const char *path, const char *mode, const char *needle)
{
    bb_error *err = executor_refused(plugin_config(mode, path));
    expect_err(err, BB_ERR_CONFIGURATION, needle);
}

START_TEST(plugin_with_wrong_abi_is_refused)
{
    expect_plugin_refused(plugin_path("BB_TEST_ECHO_BADABI"), "echo", "ABI");
}
END_TEST

START_TEST(plugin_without_entry_point_is_refused)
{
    expect_plugin_refused(plugin_path("BB_TEST_ECHO_NOENTRY"), "echo", "blockbox_driver_entry");
}
END_TEST

START_TEST(plugin_with_duplicate_name_is_refused)
{
    /* It registers "LOCAL": names are compared case-insensitively. */
    expect_plugin_refused(plugin_path("BB_TEST_ECHO_DUP"), "local", "already registered");
    /* The same plugin twice registers "echo" twice. */
    char *twice = NULL;
    ck_assert_int_ge(asprintf(&twice, "%s:%s", echo_path(), echo_path()), 0);
    expect_plugin_refused(twice, "echo", "already registered");
    free(twice);
}
END_TEST

START_TEST(plugin_that_refuses_is_refused)
{
    expect_plugin_refused(plugin_path("BB_TEST_ECHO_REFUSES"), "echo", "refusing to register on purpose");
}
END_TEST

START_TEST(missing_plugin_file_is_refused)
{
    expect_plugin_refused("/nonexistent/blockbox-driver.so", "local", "cannot load");
    expect_plugin_refused("/etc/passwd", "local", "cannot load");
}
END_TEST

START_TEST(two_plugins_register_two_drivers)
{
    char *both = NULL;
    ck_assert_int_ge(asprintf(&both, "%s:%s", echo_path(), plugin_path("BB_TEST_ECHO_OTHER")), 0);
    static const char *const modes[] = {"echo", "ECHO2"};
    for (int i = 0; i < 2; i++) {
        bb_executor *ex = executor_of(plugin_config(modes[i], both), i == 0 ? "echo" : "echo2");
        expect_ok(run_plain(ex, "{\"k\": true}", NULL));
        bb_executor_free(ex);
    }
    free(both);
}
END_TEST

/* ---- what the core sends ------------------------------------------------- */

START_TEST(code_hash_and_request_reach_the_driver)
{
    bb_executor *ex = echo_executor();
    static const char *const imports[] = {"import math", "import json"};
    bb_block_spec spec = {.run_code = "def run(self):\n    return {}\n", .imports = imports,
                          .n_imports = 2, .run_function_name = "run"};
    bb_error *err = NULL;
    bb_block *blk = bb_block_load(ex, &spec, &err);
    ck_assert_ptr_nonnull(blk);
    /* md5("def run(self):\n    return {}\n" + "\n" + "import math\nimport json") */
    ck_assert_str_eq(bb_block_code_hash(blk), "c2bd8a51896795c09d0d35fc4b4bfe4a");
    bb_result *res = bb_block_run(blk, "{}", "{\"workflow_execution_id\": \"exec-42\"}");
    cJSON *out = outputs_of(res);
    ck_assert_str_eq(cJSON_GetObjectItem(out, "code_hash")->valuestring,
                     "c2bd8a51896795c09d0d35fc4b4bfe4a");
    ck_assert_str_eq(cJSON_GetObjectItem(out, "function")->valuestring, "run");
    const cJSON *ctx = cJSON_GetObjectItem(out, "context");
    ck_assert_str_eq(cJSON_GetObjectItem(ctx, "workflow_execution_id")->valuestring, "exec-42");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(out, "imports")), 2);
    cJSON_Delete(out);
    bb_result_free(res);
    /* No context: the driver is sent an empty object. */
    res = bb_block_run(blk, NULL, NULL);
    out = outputs_of(res);
    ck_assert(cJSON_IsObject(cJSON_GetObjectItem(out, "context")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(out, "context")), 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(out, "inputs")), 0);
    cJSON_Delete(out);
    bb_result_free(res);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

START_TEST(no_code_hash_without_imports)
{
    bb_executor *ex = echo_executor();
    bb_block *blk = load_code(ex, "def run(self):\n    return {}\n");
    ck_assert_str_eq(bb_block_code_hash(blk), "e171515ecc8bb2f32bbcca50dcfc09a0");
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* ---- the core refuses bad requests before the driver sees them ----------- */

static char *deep_inputs(size_t depth)
{
    char *s = malloc(depth * 2 + 16);
    ck_assert_ptr_nonnull(s);
    char *p = s + sprintf(s, "{\"a\": ");
    memset(p, '[', depth);
    memset(p + depth, ']', depth);
    strcpy(p + 2 * depth, "}");
    return s;
}

START_TEST(invalid_inputs_never_reach_the_driver)
{
    echo_block b = echo_block_with("max_input_bytes", "4096");
    bb_block *blk = b.blk;
    char *deep = deep_inputs(100000);
    char big[8192];
    memset(big, 'a', sizeof big);
    memcpy(big, "{\"s\": \"", 7);
    strcpy(big + sizeof big - 3, "\"}");
    static const char *const bad[] = {
        "{not json",
        "[1, 2, 3]",
        "\"a string\"",
        "42",
        "",
        "{\"a\": 1} trailing",
        "{\"a\": 1}{\"b\": 2}",
        "{\"x\": {\"_type\": \"quantum\", \"value\": 1}}",
        "{\"x\": {\"_type\": \"bytes\", \"value\": \"!!!\"}}",
        "{\"x\": {\"_type\": \"workflow_image\", \"type\": \"base64\", \"value\": \"!!not*base64!!\"}}",
        "{\"x\": {\"_type\": \"ndarray\", \"dtype\": \"float32\", \"shape\": [2, 2], \"data\": \"AAAA\"}}",
        "{\"x\": \"\xff\xfe\"}",
        "{\"x\": \"\xc0\xaf\"}",
    };
    long before = echo_runs();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bb_result *res = bb_block_run(blk, bad[i], NULL);
        ck_assert_msg(!bb_result_ok(res), "accepted inputs #%zu: %s", i, bad[i]);
        ck_assert_int_eq(bb_error_exit_code(bb_result_error(res)), 2);
        expect_failed_result(res, BB_ERR_INVALID_REQUEST, NULL);
    }
    expect_failed_result(bb_block_run(blk, deep, NULL), BB_ERR_INVALID_REQUEST, NULL);
    expect_failed_result(bb_block_run(blk, big, NULL), BB_ERR_INVALID_REQUEST, NULL);
    /* A context that is not an object, or too deep. */
    expect_failed_result(bb_block_run(blk, "{}", "[1]"), BB_ERR_INVALID_REQUEST, NULL);
    expect_failed_result(bb_block_run(blk, "{}", "{oops"), BB_ERR_INVALID_REQUEST, NULL);
    expect_failed_result(bb_block_run(blk, "{}", deep), BB_ERR_INVALID_REQUEST, NULL);
    ck_assert_int_eq(echo_runs(), before);
    /* The counter does count: a good run reaches the driver. */
    expect_ok(bb_block_run(blk, "{\"ok\": 1}", NULL));
    ck_assert_int_eq(echo_runs(), before + 1);
    free(deep);
    echo_block_free(b);
}
END_TEST

START_TEST(invalid_blocks_are_refused_at_load)
{
    bb_executor *ex = echo_executor();
    static const char *const bad_imports[] = {"import os\nimport sys"};
    static const char *const null_import[] = {NULL};
    char *huge = malloc((2u << 20) + 1);
    ck_assert_ptr_nonnull(huge);
    memset(huge, '#', 2u << 20);
    huge[2u << 20] = '\0';
    const bb_block_spec bad[] = {
        {.run_code = NULL},
        {.run_code = ""},
        {.run_code = "  \n\t\n"},
        {.run_code = "def run(self):\n    return {'x': '\xff\xfe'}\n"},
        {.run_code = huge},
        {.run_code = PLAIN_CODE, .init_code = "def init():\n    return '\xc3'\n"},
        {.run_code = PLAIN_CODE, .run_function_name = "run; import os"},
        {.run_code = PLAIN_CODE, .run_function_name = ""},
        {.run_code = PLAIN_CODE, .init_function_name = "init()"},
        {.run_code = PLAIN_CODE, .imports = bad_imports, .n_imports = 1},
        {.run_code = PLAIN_CODE, .imports = null_import, .n_imports = 1},
        {.run_code = PLAIN_CODE, .max_inputs = -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bb_error *err = NULL;
        bb_block *blk = bb_block_load(ex, &bad[i], &err);
        ck_assert_msg(blk == NULL, "spec #%zu was accepted", i);
        ck_assert_msg(err != NULL, "spec #%zu: no error", i);
        ck_assert_int_eq(bb_error_exit_code(err), 2);
        expect_err(err, BB_ERR_INVALID_REQUEST, NULL);
    }
    bb_error *err = NULL;
    ck_assert_ptr_null(bb_block_load(ex, NULL, &err));
    expect_err(err, BB_ERR_INVALID_REQUEST, NULL);
    ck_assert_ptr_null(bb_block_load(NULL, &bad[1], &err));
    ck_assert_ptr_nonnull(err);
    bb_error_free(err);
    free(huge);
    bb_executor_free(ex);
}
END_TEST

/* ---- the core refuses hostile responses ---------------------------------- */

static void expect_hostile(bb_block *blk, const char *variant, bb_error_kind kind)
{
    bb_result *res = run_echo(blk, "hostile:", variant);
    ck_assert_msg(!bb_result_ok(res), "hostile response '%s' was accepted: %s", variant,
                  bb_result_outputs(res));
    ck_assert_msg(bb_error_get_kind(bb_result_error(res)) == kind, "'%s': kind %s, wanted %s: %s",
                  variant, bb_error_type_name(bb_result_error(res)), bb_error_kind_name(kind),
                  bb_error_message(bb_result_error(res)));
    ck_assert_int_eq(bb_error_exit_code(bb_result_error(res)), kind == BB_ERR_OUTPUT_LIMIT ? 3 : 4);
    bb_result_free(res);
}

START_TEST(hostile_responses_are_refused)
{
    echo_block b = echo_block_with("max_output_bytes", "1048576");
    static const char *const invalid[] = {
        "not_json", "truncated", "not_object", "no_success", "success_not_bool",
        "result_not_string", "result_not_json", "result_scalar", "unknown_tag", "bad_base64",
        "line_negative", "line_string", "denied_not_list", "denied_bad_name", "stdout_not_string",
        "invalid_utf8", "empty", "nul_byte", "len_past_body", "deep", "deep_result",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        expect_hostile(b.blk, invalid[i], BB_ERR_INVALID_RESPONSE);
    expect_hostile(b.blk, "huge_result", BB_ERR_OUTPUT_LIMIT);
    expect_hostile(b.blk, "runtime_mismatch", BB_ERR_CONFIGURATION);
    /* The block still works afterwards. */
    expect_ok(bb_block_run(b.blk, "{}", NULL));
    echo_block_free(b);
}
END_TEST

/* ---- errors: block errors, names mapped to kinds, driver failures -------- */

START_TEST(block_error_keeps_line_function_traceback)
{
    echo_block b = echo_block_with(NULL, NULL);
    bb_result *res = bb_block_run(b.blk, "{\"__echo\": \"block_error\"}", NULL);
    ck_assert(!bb_result_ok(res));
    const bb_error *e = bb_result_error(res);
    ck_assert_int_eq(bb_error_get_kind(e), BB_ERR_BLOCK);
    ck_assert_str_eq(bb_error_type_name(e), "ValueError");
    ck_assert_int_eq(bb_error_line(e), 3);
    ck_assert_str_eq(bb_error_function(e), "run");
    ck_assert_ptr_nonnull(strstr(bb_error_traceback(e), "line 3"));
    ck_assert_ptr_nonnull(strstr(bb_error_message(e), "Error in line 3, in run"));
    ck_assert_int_eq(bb_error_exit_code(e), 1);
    ck_assert_str_eq(bb_result_stdout(res), "before the error\n");
    ck_assert_ptr_null(bb_result_outputs(res));
    bb_result_free(res);
    echo_block_free(b);
}
END_TEST

/* What a response may call its error, and how it is shown. A response comes from
 * the sandbox side, where block code writes what it likes, so every reported error
 * is the block's own (exit 1) and a name that spells one of blockbox's own types is
 * shown as "block.<name>" (issue 8). Verified failing without the defence by
 * restoring the old claimable-kinds table in src/error.c: "ConfigurationError"
 * exited 4, "InvalidRequest" 2 and "SandboxViolation" 3. */
static const struct {
    const char *name, *shown;
} reported_names[] = {
    {"Timeout", "block.Timeout"},
    {"MemoryLimit", "block.MemoryLimit"},
    {"OutputLimit", "block.OutputLimit"},
    {"SandboxViolation", "block.SandboxViolation"},
    {"SandboxCrash", "block.SandboxCrash"},
    {"InvalidRequest", "block.InvalidRequest"},
    {"InvalidResponse", "block.InvalidResponse"},
    {"UnknownCodeHash", "block.UnknownCodeHash"},
    {"BackendUnavailable", "block.BackendUnavailable"},
    {"AuthenticationFailed", "block.AuthenticationFailed"},
    {"ConfigurationError", "block.ConfigurationError"},
    {"ExecutionDisabled", "block.ExecutionDisabled"},
    {"InternalError", "block.InternalError"},
    {"BlockError", "block.BlockError"},
    {"ZeroDivisionError", "ZeroDivisionError"},
    {"MemoryError", "MemoryError"},
    {"SyntaxError", "SyntaxError"},
    {"my.Timeout", "my.Timeout"},
};

START_TEST(reported_errors_are_the_blocks_own)
{
    echo_block b = echo_block_with(NULL, NULL);
    for (size_t i = 0; i < sizeof reported_names / sizeof reported_names[0]; i++) {
        bb_result *res = run_echo(b.blk, "error:", reported_names[i].name);
        const bb_error *e = bb_result_error(res);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(bb_error_get_kind(e) == BB_ERR_BLOCK, "%s -> %s", reported_names[i].name,
                      bb_error_kind_name(bb_error_get_kind(e)));
        ck_assert_str_eq(bb_error_type_name(e), reported_names[i].shown);
        ck_assert_int_eq(bb_error_exit_code(e), 1);
        bb_result_free(res);
    }
    echo_block_free(b);
}
END_TEST

/* What the trusted side (here the driver) reports keeps its kind and exit class. */
static const struct {
    const char *name;
    bb_error_kind kind;
    int exit_code;
} trusted_names[] = {
    {"Timeout", BB_ERR_TIMEOUT, 3},
    {"MemoryLimit", BB_ERR_MEMORY_LIMIT, 3},
    {"OutputLimit", BB_ERR_OUTPUT_LIMIT, 3},
    {"SandboxViolation", BB_ERR_SANDBOX_VIOLATION, 3},
    {"SandboxCrash", BB_ERR_SANDBOX_CRASH, 3},
    {"InvalidRequest", BB_ERR_INVALID_REQUEST, 2},
    {"InvalidResponse", BB_ERR_INVALID_RESPONSE, 4},
    {"UnknownCodeHash", BB_ERR_UNKNOWN_CODE_HASH, 4},
    {"BackendUnavailable", BB_ERR_BACKEND_UNAVAILABLE, 4},
    {"ConfigurationError", BB_ERR_CONFIGURATION, 4},
};

START_TEST(driver_failures_keep_their_kind)
{
    echo_block b = echo_block_with(NULL, NULL);
    for (size_t i = 0; i < sizeof trusted_names / sizeof trusted_names[0]; i++) {
        bb_result *res = run_echo(b.blk, "fail:", trusted_names[i].name);
        ck_assert_int_eq(bb_error_exit_code(bb_result_error(res)), trusted_names[i].exit_code);
        ck_assert_str_eq(bb_error_kind_name(trusted_names[i].kind), trusted_names[i].name);
        expect_failed_result(res, trusted_names[i].kind, "echo: run failed");
    }
    echo_block_free(b);
}
END_TEST

START_TEST(load_failure_keeps_its_kind)
{
    bb_executor *ex = echo_executor();
    bb_block_spec spec = {.run_code = "# ECHO_LOAD_FAIL:BackendUnavailable\n" PLAIN_CODE};
    bb_error *err = NULL;
    ck_assert_ptr_null(bb_block_load(ex, &spec, &err));
    ck_assert_int_eq(bb_error_exit_code(err), 4);
    expect_err(err, BB_ERR_BACKEND_UNAVAILABLE, "load refused");
    spec.run_code = "# ECHO_LOAD_FAIL:Timeout\n" PLAIN_CODE;
    ck_assert_ptr_null(bb_block_load(ex, &spec, &err));
    expect_err(err, BB_ERR_TIMEOUT, "load refused");
    bb_executor_free(ex);
}
END_TEST

START_TEST(execution_disabled_is_refused_at_open)
{
    bb_error *err = executor_refused(echo_config("allow_execution", "False"));
    ck_assert_str_eq(bb_error_type_name(err), "ExecutionDisabled");
    ck_assert_int_eq(bb_error_exit_code(err), 4);
    expect_err(err, BB_ERR_EXECUTION_DISABLED, "ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS");
}
END_TEST

START_TEST(denied_syscalls_are_reported)
{
    bb_executor *ex = echo_executor();
    bb_result *res = run_plain(ex, "{\"__echo\": \"denied\"}", NULL);
    ck_assert(bb_result_ok(res));
    ck_assert_str_eq(bb_result_denied_syscalls(res), "socket,ptrace");
    bb_result_free(res);
    bb_executor_free(ex);
}
END_TEST

START_TEST(secrets_stay_out_of_errors)
{
    const char *secret = "bbsecret-0123456789abcdef";
    setenv("MODAL_TOKEN_SECRET", secret, 1);
    setenv("MODAL_TOKEN_ID", "ak-tokenid-0123456789", 1);
    setenv("WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE", "quantum", 1);
    bb_error *err = NULL;
    bb_config *cfg = bb_config_from_env(&err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(bb_config_get(cfg, "modal_token_secret"), "(set)");
    ck_assert_str_eq(bb_config_get(cfg, "modal_token_id"), "(set)");
    ck_assert_ptr_null(bb_executor_new(cfg, &err));
    ck_assert_ptr_null(strstr(bb_error_message(err), secret));
    bb_error_free(err);
    err = NULL;
    bb_config_free(cfg);
    setenv("BLOCKBOX_TIMEOUT", secret, 1);   /* a bad value is quoted, but it is no secret */
    ck_assert_ptr_null(bb_config_from_env(&err));
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_CONFIGURATION);
    bb_error_free(err);
    unsetenv("BLOCKBOX_TIMEOUT");
    /* Through the echo driver: the driver is told "(set)", never the value. */
    bb_executor *ex = echo_executor();
    bb_result *res = run_plain(ex, "{}", NULL);
    ck_assert(bb_result_ok(res));
    ck_assert_ptr_null(strstr(bb_result_outputs(res), secret));
    bb_result_free(res);
    bb_executor_free(ex);
}
END_TEST

/* ---- lifetimes ----------------------------------------------------------- */

START_TEST(every_object_is_freed_once_and_null_is_fine)
{
    bb_result_free(NULL);
    bb_block_free(NULL);
    bb_executor_free(NULL);
    bb_config_free(NULL);
    bb_error_free(NULL);
    ck_assert(!bb_result_ok(NULL));
    ck_assert_ptr_null(bb_result_outputs(NULL));
    ck_assert_ptr_null(bb_result_error(NULL));
    ck_assert_ptr_null(bb_executor_driver(NULL));
    ck_assert_ptr_null(bb_block_code_hash(NULL));
    ck_assert_int_eq(bb_error_exit_code(NULL), 0);
    /* A run without a block is a failed result, not a crash. */
    expect_failed_result(bb_block_run(NULL, "{}", NULL), BB_ERR_INVALID_REQUEST, NULL);
    /* Results outlive their block and executor (ASan checks the frees). */
    echo_block b = echo_block_with(NULL, NULL);
    bb_result *ok = bb_block_run(b.blk, "{\"a\": [1, 2, 3]}", NULL);
    bb_result *failed = bb_block_run(b.blk, "{\"__echo\": \"block_error\"}", NULL);
    bb_result *hostile = bb_block_run(b.blk, "{\"__echo\": \"hostile:not_json\"}", NULL);
    echo_block_free(b);
    cJSON *out = outputs_of(ok);
    cJSON_Delete(out);
    ck_assert_str_eq(bb_error_type_name(bb_result_error(failed)), "ValueError");
    ck_assert_int_eq(bb_error_get_kind(bb_result_error(hostile)), BB_ERR_INVALID_RESPONSE);
    bb_result_free(ok);
    bb_result_free(failed);
    bb_result_free(hostile);
}
END_TEST

START_TEST(many_runs_and_blocks)
{
    bb_executor *ex = echo_executor();
    for (int b = 0; b < 20; b++) {
        bb_block *blk = load_code(ex, PLAIN_CODE);
        for (int i = 0; i < 20; i++) {
            char inputs[64];
            snprintf(inputs, sizeof inputs, "{\"i\": %d}", i);
            bb_result *res = bb_block_run(blk, inputs, NULL);
            cJSON *out = outputs_of(res);
            ck_assert_double_eq(number_at(out, "inputs", "i"), i);
            cJSON_Delete(out);
            bb_result_free(res);
        }
        bb_block_free(blk);
    }
    bb_executor_free(ex);
}
END_TEST

/* ---- threads --------------------------------------------------------------- */

#define THREADS 8
#define RUNS_PER_THREAD 40

typedef struct worker_arg {
    bb_executor *ex;
    bb_block *shared;
    int id;
    int failures;
    char why[256];
} worker_arg;

static int check_echo(bb_block *blk, int id, int i, char *why, size_t whylen)
{
    char inputs[128];
    snprintf(inputs, sizeof inputs, "{\"t\": %d, \"i\": %d, \"__echo\": \"sleep:%d\"}", id, i, i % 3);
    bb_result *res = bb_block_run(blk, inputs, NULL);
    int bad = 1;
    if (res && bb_result_ok(res)) {
        cJSON *out = cJSON_Parse(bb_result_outputs(res));
        const cJSON *in = cJSON_GetObjectItem(out, "inputs");
        bad = !(cJSON_GetObjectItem(in, "t") && cJSON_GetObjectItem(in, "t")->valueint == id &&
                cJSON_GetObjectItem(in, "i") && cJSON_GetObjectItem(in, "i")->valueint == i);
        if (bad)
            snprintf(why, whylen, "thread %d run %d got %s", id, i, bb_result_outputs(res));
        cJSON_Delete(out);
    } else {
        snprintf(why, whylen, "thread %d run %d failed: %s", id, i,
                 res ? bb_error_message(bb_result_error(res)) : "NULL result");
    }
    bb_result_free(res);
    return bad;
}

/* load_code for the threads below, which must not call Check: NULL with *err set. */
static bb_block *load_plain_quietly(bb_executor *ex, bb_error **err)
{
    bb_block_spec spec = {.run_code = PLAIN_CODE};
    return bb_block_load(ex, &spec, err);
}

static void *worker(void *p)
{
    worker_arg *a = p;
    bb_error *err = NULL;
    bb_block *own = load_plain_quietly(a->ex, &err);
    if (!own) {
        a->failures++;
        snprintf(a->why, sizeof a->why, "load: %s", err ? bb_error_message(err) : "?");
        bb_error_free(err);
        return NULL;
    }
    for (int i = 0; i < RUNS_PER_THREAD; i++) {
        a->failures += check_echo(own, a->id, i, a->why, sizeof a->why);
        a->failures += check_echo(a->shared, a->id, i, a->why, sizeof a->why);
    }
    bb_block_free(own);
    return NULL;
}

START_TEST(eight_threads_share_one_executor)
{
    echo_block b = echo_block_with(NULL, NULL);
    long before = echo_runs();
    pthread_t threads[THREADS];
    worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_arg){.ex = b.ex, .shared = b.blk, .id = t};
        ck_assert_int_eq(pthread_create(&threads[t], NULL, worker, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        ck_assert_msg(args[t].failures == 0, "%d failures, e.g. %s", args[t].failures, args[t].why);
    }
    ck_assert_int_eq(echo_runs() - before, THREADS * RUNS_PER_THREAD * 2);
    echo_block_free(b);
}
END_TEST

/* Executors made, used and freed on many threads at once: no shared state. */
static void *executor_worker(void *p)
{
    int *failures = p;
    for (int round = 0; round < 10; round++) {
        bb_config *cfg = bb_config_new();
        bb_error *err = NULL;
        bb_config_set(cfg, "mode", "echo", &err);
        bb_config_set(cfg, "driver_path", getenv("BB_TEST_ECHO_DRIVER"), &err);
        bb_executor *ex = bb_executor_new(cfg, &err);
        bb_config_free(cfg);
        if (!ex) {
            (*failures)++;
            bb_error_free(err);
            continue;
        }
        bb_block *blk = load_plain_quietly(ex, &err);
        bb_result *res = blk ? bb_block_run(blk, "{\"a\": 1}", NULL) : NULL;
        if (!res || !bb_result_ok(res))
            (*failures)++;
        bb_error_free(err);
        bb_result_free(res);
        bb_block_free(blk);
        bb_executor_free(ex);
    }
    return NULL;
}

START_TEST(executors_on_many_threads)
{
    (void)echo_path();
    pthread_t threads[THREADS];
    int failures[THREADS] = {0};
    for (int t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, executor_worker, &failures[t]), 0);
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        ck_assert_int_eq(failures[t], 0);
    }
}
END_TEST

/* driver.h rules 3 and 4: a plugin built against the ABI 1 struct, and one whose ABI 2
 * struct ends before `settings`, still load blocks and run them. */
START_TEST(older_plugins_load_and_run)
{
    static const char *const plugins[][2] = {{"BB_TEST_ECHO_ABI1", "echo_v1"}, {"BB_TEST_ECHO_SMALL", "echo_small"}};
    for (size_t i = 0; i < 2; i++) {
        bb_executor *ex = executor_of(plugin_config(plugins[i][1], plugin_path(plugins[i][0])), plugins[i][1]);
        bb_result *res = run_plain(ex, "{\"x\": 1}", NULL);
        ck_assert_msg(bb_result_ok(res), "%s", bb_result_error(res) ? bb_error_message(bb_result_error(res)) : "?");
        ck_assert_ptr_nonnull(strstr(bb_result_outputs(res), "\"x\":1"));
        bb_result_free(res);
        bb_executor_free(ex);
    }
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("driver selection", env_selects_the_plugin_driver),
        BB_CHECK_TEST("driver selection", mode_is_case_insensitive),
        BB_CHECK_TEST("driver selection", older_plugins_load_and_run),
        BB_CHECK_TEST("driver selection", unknown_mode_lists_known_drivers),
        BB_CHECK_TEST("driver selection", plugin_driver_needs_its_plugin),
        BB_CHECK_TEST("driver selection", plugin_with_wrong_abi_is_refused),
        BB_CHECK_TEST("driver selection", plugin_without_entry_point_is_refused),
        BB_CHECK_TEST("driver selection", plugin_with_duplicate_name_is_refused),
        BB_CHECK_TEST("driver selection", plugin_that_refuses_is_refused),
        BB_CHECK_TEST("driver selection", missing_plugin_file_is_refused),
        BB_CHECK_TEST("driver selection", two_plugins_register_two_drivers),
        BB_CHECK_TEST("requests", code_hash_and_request_reach_the_driver),
        BB_CHECK_TEST("requests", no_code_hash_without_imports),
        BB_CHECK_TEST("requests", invalid_inputs_never_reach_the_driver),
        BB_CHECK_TEST("requests", invalid_blocks_are_refused_at_load),
        BB_CHECK_TEST("responses and errors", hostile_responses_are_refused),
        BB_CHECK_TEST("responses and errors", block_error_keeps_line_function_traceback),
        BB_CHECK_TEST("responses and errors", reported_errors_are_the_blocks_own),
        BB_CHECK_TEST("responses and errors", driver_failures_keep_their_kind),
        BB_CHECK_TEST("responses and errors", load_failure_keeps_its_kind),
        BB_CHECK_TEST("responses and errors", execution_disabled_is_refused_at_open),
        BB_CHECK_TEST("responses and errors", denied_syscalls_are_reported),
        BB_CHECK_TEST("responses and errors", secrets_stay_out_of_errors),
        {"lifetimes and threads", every_object_is_freed_once_and_null_is_fine, 0, 60},
        BB_CHECK_TEST("lifetimes and threads", many_runs_and_blocks),
        BB_CHECK_TEST("lifetimes and threads", eight_threads_share_one_executor),
        BB_CHECK_TEST("lifetimes and threads", executors_on_many_threads),
    };
    return bb_check_run("api", 0, rows, BB_CHECK_COUNT(rows));
}
