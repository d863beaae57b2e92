/* test_config.c: every setting type of the config table (string, secret, bool,
 * whole number, seconds) from the environment and by key, bad values, quotes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_test_util.h"
#include "config.h"
#include "check_main.h"

static const bb_setting *key_named(const char *name)
{
    for (size_t i = 0; i < bb_config_known_count(); i++)
        if (strcmp(bb_config_known(i)->key, name) == 0)
            return bb_config_known(i);
    ck_abort_msg("no key %s", name);
    return NULL;
}

static void expect_value(const bb_config *cfg, const char *key, const char *want)
{
    const char *got = bb_config_get(cfg, key);
    if (!want)
        ck_assert_msg(got == NULL, "%s: '%s', wanted unset", key, got);
    else
        ck_assert_msg(got && strcmp(got, want) == 0, "%s: '%s', wanted '%s'", key,
                      got ? got : "(null)", want);
}

/* The config of the environment, which must be valid. */
static bb_config *env_config(void)
{
    bb_error *err = NULL;
    bb_config *cfg = bb_config_from_env(&err);
    ck_assert_msg(cfg != NULL, "the environment's config: %s", err ? bb_error_message(err) : "?");
    return cfg;
}

static void expect_bad(const char *key, const char *value, const char *needle)
{
    bb_config *cfg = bb_config_new();
    bb_error *err = NULL;
    ck_assert_msg(bb_config_set(cfg, key, value, &err) == -1, "%s='%s' was accepted", key, value);
    ck_assert_str_eq(bb_error_type_name(err), "ConfigurationError");
    expect_err(err, BB_ERR_CONFIGURATION, needle);
    bb_config_free(cfg);
}

/* A value given to a config: READS, read back as text (NULL: unset); or REFUSED
 * (expect_bad, on a new config) with a message that contains text. */
typedef enum { READS, REFUSED } value_outcome;
typedef struct {
    value_outcome outcome;
    const char *key, *value, *text;
} value_case;

/* The cases in order; the accepted ones go to one config (NULL restores a default). */
static void expect_values(const value_case *cases, size_t n)
{
    bb_config *cfg = bb_config_new();
    for (size_t i = 0; i < n; i++) {
        if (cases[i].outcome == REFUSED) {
            expect_bad(cases[i].key, cases[i].value, cases[i].text);
            continue;
        }
        bb_error *err = NULL;
        ck_assert_msg(bb_config_set(cfg, cases[i].key, cases[i].value, &err) == 0, "%s='%s': %s", cases[i].key,
                      cases[i].value ? cases[i].value : "(null)", err ? bb_error_message(err) : "?");
        expect_value(cfg, cases[i].key, cases[i].text);
    }
    bb_config_free(cfg);
}

START_TEST(defaults)
{
    bb_config *cfg = bb_config_new();
    expect_value(cfg, "mode", "local");
    expect_value(cfg, "allow_execution", "True");
    expect_value(cfg, "timeout", "20");
    expect_value(cfg, "memory_mb", "512");
    expect_value(cfg, "max_inputs", "0");
    expect_value(cfg, "max_input_bytes", "67108864");
    expect_value(cfg, "modal_workspace_name", "roboflow");
    expect_value(cfg, "modal_allow_anonymous", "False");
    expect_value(cfg, "modal_token_id", NULL);
    expect_value(cfg, "modal_token_secret", NULL);
    expect_value(cfg, "policy_file", NULL);
    expect_value(cfg, "driver_path", NULL);
    /* Every key of the table reads back its documented default. */
    for (size_t i = 0; i < bb_config_known_count(); i++) {
        const bb_setting *k = bb_config_known(i);
        ck_assert_msg(k->env && *k->env && k->help && *k->help, "%s lacks env or help", k->key);
        const char *got = bb_config_get(cfg, k->key);
        if (!k->default_value)
            ck_assert_msg(got == NULL, "%s default", k->key);
        else if (k->type == BB_SETTING_SECRET)
            ck_assert_str_eq(got, "(set)");
        else
            ck_assert_msg(got != NULL, "%s has no default text", k->key);
    }
    bb_config_free(cfg);
}
END_TEST

START_TEST(every_key_reads_its_variable)
{
    for (size_t i = 0; i < bb_config_known_count(); i++) {
        const bb_setting *k = bb_config_known(i);
        const char *value, *want;
        char number[32];
        switch (k->type) {
        case BB_SETTING_STRING:
            value = want = strcmp(k->key, "mode") == 0 ? "modal" : "/some/path-or-name";
            break;
        case BB_SETTING_SECRET:
            value = "s3cr3t-value";
            want = "(set)";
            break;
        case BB_SETTING_BOOL:
            value = strcmp(k->default_value, "True") == 0 ? "no" : "yes";
            want = strcmp(k->default_value, "True") == 0 ? "False" : "True";
            break;
        case BB_SETTING_SECONDS:   /* its range is in milliseconds */
            snprintf(number, sizeof number, "%ld", k->max / 1000);
            value = want = number;
            break;
        case BB_SETTING_LONG:
        default:
            snprintf(number, sizeof number, "%ld", k->max);
            value = want = number;
            break;
        }
        setenv(k->env, value, 1);
        bb_config *cfg = env_config();
        expect_value(cfg, k->key, want);
        bb_config_free(cfg);
        unsetenv(k->env);
    }
}
END_TEST

START_TEST(bools)
{
    static const char *const yes[] = {"True", "true", "TRUE", "1", "yes", "on", " On ", "'true'", "\"YES\""};
    static const char *const no[] = {"False", "false", "0", "no", "off", "OFF", "\"False\"", "'0'"};
    bb_config *cfg = bb_config_new();
    bb_error *err = NULL;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        ck_assert_int_eq(bb_config_set(cfg, "allow_execution", "False", &err), 0);
        ck_assert_msg(bb_config_set(cfg, "allow_execution", yes[i], &err) == 0, "%s", yes[i]);
        expect_value(cfg, "allow_execution", "True");
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        ck_assert_int_eq(bb_config_set(cfg, "allow_execution", "True", &err), 0);
        ck_assert_msg(bb_config_set(cfg, "allow_execution", no[i], &err) == 0, "%s", no[i]);
        expect_value(cfg, "allow_execution", "False");
    }
    bb_config_free(cfg);
}
END_TEST

/* The ends of memory_mb's range, from the table (its other values: VALUES). */
START_TEST(whole_numbers)
{
    const bb_setting *mem = key_named("memory_mb");
    char min[32], below[32], above[32];
    snprintf(min, sizeof min, "%ld", mem->min);
    snprintf(below, sizeof below, "%ld", mem->min - 1);
    snprintf(above, sizeof above, "%ld", mem->max + 1);
    const value_case ends[] = {
        {READS, "memory_mb", min, min},
        {REFUSED, "memory_mb", below, "BLOCKBOX_MEMORY_MB"},
        {REFUSED, "memory_mb", above, "whole number"},
    };
    expect_values(ends, BB_CHECK_COUNT(ends));
}
END_TEST

/* Values by type: what each reads back as, or what its refusal names. */
static const value_case VALUES[] = {
    /* bools (their spellings: the test bools) */
    {REFUSED, "allow_execution", "maybe", "ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS"},
    {REFUSED, "allow_execution", "", "True or False"},
    {REFUSED, "allow_execution", "truee", "truee"},
    {REFUSED, "modal_allow_anonymous", "2", "MODAL_ALLOW_ANONYMOUS_EXECUTION"},
    /* whole numbers */
    {READS, "memory_mb", " '256' ", "256"},
    {READS, "memory_mb", "\"1024\"", "1024"},
    {REFUSED, "memory_mb", "12abc", "12abc"},
    {REFUSED, "memory_mb", "0x100", "0x100"},
    {REFUSED, "memory_mb", "1e3", "1e3"},
    {REFUSED, "memory_mb", "", "whole number"},
    {REFUSED, "memory_mb", "99999999999999999999999999", "whole number"},
    {REFUSED, "max_inputs", "-1", "BLOCKBOX_MAX_INPUTS"},
    {REFUSED, "max_input_bytes", "10", "BLOCKBOX_MAX_INPUT_BYTES"},
    /* seconds */
    {READS, "timeout", "1.5", "1.5"},
    {READS, "timeout", "'3'", "3"},
    {READS, "cpu_seconds", "0", "0"},
    {REFUSED, "timeout", "0", "BLOCKBOX_TIMEOUT"},
    {REFUSED, "timeout", "-1", "seconds"},
    {REFUSED, "timeout", "nan", "nan"},
    {REFUSED, "timeout", "inf", "inf"},
    {REFUSED, "timeout", "1e400", "seconds"},
    {REFUSED, "timeout", "3601", "seconds"},
    {REFUSED, "timeout", "20s", "20s"},
    {REFUSED, "cpu_seconds", "-0.5", "BLOCKBOX_CPU_SECONDS"},
    /* Issue 9: what cannot be applied as given is refused, naming the range; its ends apply. */
    {REFUSED, "timeout", "0.0001", "from 0.001 to 3600"},
    {REFUSED, "timeout", "0.0015", "whole milliseconds"},
    {REFUSED, "cpu_seconds", "0.05", "from 0.1 to 86400"},
    {REFUSED, "max_input_bytes", "4294967296", "BLOCKBOX_MAX_INPUT_BYTES"},
    {READS, "timeout", "0.001", "0.001"},
    {READS, "timeout", "0.25", "0.25"},
    {READS, "cpu_seconds", "0.1", "0.1"},
    /* strings and quotes */
    {READS, "mode", "  \"MoDaL\"  ", "modal"},
    {READS, "policy_file", "'/etc/blockbox/p.json'", "/etc/blockbox/p.json"},
    /* Unmatched quotes are kept: only one surrounding pair is stripped. */
    {READS, "policy_file", "'/a\"", "'/a\""},
    {READS, "policy_file", "\"\"x\"\"", "\"x\""},
    /* Other names keep their case; an empty value unsets. */
    {READS, "workspace_id", "MyWorkspace", "MyWorkspace"},
    {READS, "workspace_id", "\"\"", NULL},
    /* NULL restores the default. */
    {READS, "mode", NULL, "local"},
    {READS, "timeout", "5", "5"},
    {READS, "timeout", NULL, "20"},
};

START_TEST(values_read_back_or_are_refused)
{
    expect_values(VALUES, BB_CHECK_COUNT(VALUES));
}
END_TEST

START_TEST(secrets_read_back_as_set)
{
    const char *secret = "very-secret-token-value-42";
    setenv("MODAL_TOKEN_SECRET", secret, 1);
    setenv("MODAL_TOKEN_ID", "'ak-1234567'", 1);
    bb_config *cfg = env_config();
    expect_value(cfg, "modal_token_secret", "(set)");
    expect_value(cfg, "modal_token_id", "(set)");
    /* The value is kept (the modal driver needs it), just never read back. */
    ck_assert_str_eq(bb_setting_string(cfg, "modal_token_secret"), secret);
    ck_assert_str_eq(bb_setting_string(cfg, "modal_token_id"), "ak-1234567");
    bb_error *err = NULL;
    ck_assert_int_eq(bb_config_set(cfg, "modal_token_secret", "", &err), 0);
    expect_value(cfg, "modal_token_secret", NULL);
    bb_config_free(cfg);
}
END_TEST

START_TEST(env_errors_name_the_variable)
{
    setenv("MODAL_TOKEN_SECRET", "bbsecret-abcdef", 1);
    setenv("BLOCKBOX_MEMORY_MB", "lots", 1);
    bb_error *err = NULL;
    ck_assert_ptr_null(bb_config_from_env(&err));
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(strstr(bb_error_message(err), "bbsecret-abcdef"));
    ck_assert_int_eq(bb_error_exit_code(err), 4);
    expect_err(err, BB_ERR_CONFIGURATION, "BLOCKBOX_MEMORY_MB");
    unsetenv("BLOCKBOX_MEMORY_MB");
    setenv("ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS", "nope", 1);
    ck_assert_ptr_null(bb_config_from_env(&err));
    expect_err(err, BB_ERR_CONFIGURATION, "ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS");
}
END_TEST

START_TEST(env_then_set_overrides)
{
    setenv("BLOCKBOX_TIMEOUT", "7", 1);
    setenv("WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE", "MODAL", 1);
    bb_config *cfg = env_config();
    expect_value(cfg, "timeout", "7");
    expect_value(cfg, "mode", "modal");
    bb_error *err = NULL;
    ck_assert_int_eq(bb_config_set(cfg, "timeout", "2", &err), 0);
    ck_assert_int_eq(bb_config_set(cfg, "mode", "local", &err), 0);
    expect_value(cfg, "timeout", "2");
    expect_value(cfg, "mode", "local");
    /* A failed set keeps the old value. */
    ck_assert_int_eq(bb_config_set(cfg, "timeout", "never", &err), -1);
    bb_error_free(err);
    err = NULL;
    expect_value(cfg, "timeout", "2");
    bb_config_free(cfg);
}
END_TEST

START_TEST(unknown_keys)
{
    bb_config *cfg = bb_config_new();
    bb_error *err = NULL;
    ck_assert_int_eq(bb_config_set(cfg, "no_such_key", "1", &err), -1);
    expect_err(err, BB_ERR_CONFIGURATION, "no_such_key");
    ck_assert_int_eq(bb_config_set(cfg, NULL, "1", &err), -1);
    expect_err(err, BB_ERR_CONFIGURATION, "unknown setting");
    ck_assert_int_eq(bb_config_set(NULL, "mode", "local", &err), -1);
    expect_err(err, BB_ERR_CONFIGURATION, NULL);
    /* Environment names are not keys. */
    ck_assert_int_eq(bb_config_set(cfg, "BLOCKBOX_TIMEOUT", "1", &err), -1);
    expect_err(err, BB_ERR_CONFIGURATION, NULL);
    ck_assert_ptr_null(bb_config_get(cfg, "no_such_key"));
    ck_assert_ptr_null(bb_config_get(cfg, NULL));
    ck_assert_ptr_null(bb_config_get(NULL, "mode"));
    bb_config_free(cfg);
}
END_TEST

START_TEST(the_executor_copies_its_config)
{
    bb_config *cfg = echo_config("timeout", "3");
    bb_error *err = NULL;
    bb_executor *ex = bb_executor_new(cfg, &err);
    ck_assert_ptr_nonnull(ex);
    /* Changing or freeing the caller's config afterwards changes nothing. */
    ck_assert_int_eq(bb_config_set(cfg, "mode", "local", &err), 0);
    bb_config_free(cfg);
    ck_assert_str_eq(bb_executor_driver(ex), "echo");
    expect_ok(run_plain(ex, "{}", NULL));
    bb_executor_free(ex);
}
END_TEST

START_TEST(bad_env_fails_executor_creation)
{
    setenv("BLOCKBOX_TIMEOUT", "forever", 1);
    bb_error *err = NULL;
    ck_assert_ptr_null(bb_executor_new(NULL, &err));
    expect_err(err, BB_ERR_CONFIGURATION, "BLOCKBOX_TIMEOUT");
}
END_TEST

/* An executor on the echo plugin with one setting; NULL when refused (*err set). */
static bb_executor *echo_with(const char *key, const char *value, bb_error **err)
{
    bb_config *cfg = echo_config(key, value);   /* a plugin's key is kept until the plugin is loaded */
    bb_executor *ex = bb_executor_new(cfg, err);
    bb_config_free(cfg);
    return ex;
}

static void expect_level(bb_executor *ex, const char *want)
{
    ck_assert_ptr_nonnull(ex);
    char *desc = bb_executor_describe(ex);
    ck_assert_msg(desc && strstr(desc, want), "describe: %s, wanted %s", desc ? desc : "(null)", want);
    free(desc);
    bb_executor_free(ex);
}

/* A plugin's own setting is checked by the core against the plugin's declaration:
 * the value in range reaches the driver, out of range and an undeclared key are
 * refused (ConfigurationError) before the driver opens. */
START_TEST(a_driver_setting_is_checked_from_its_declaration)
{
    bb_error *err = NULL;
    expect_level(echo_with(NULL, NULL, &err), "\"level\": 1}");   /* the declared default */
    expect_level(echo_with("echo_level", "'7'", &err), "\"level\": 7}");
    ck_assert_ptr_null(echo_with("echo_level", "11", &err));
    ck_assert_str_eq(bb_error_type_name(err), "ConfigurationError");
    expect_err(err, BB_ERR_CONFIGURATION, "BB_TEST_ECHO_LEVEL must be a whole number from 1 to 10, not '11'");
    ck_assert_ptr_null(echo_with("echo_level", "0", &err));
    expect_err(err, BB_ERR_CONFIGURATION, "BB_TEST_ECHO_LEVEL");
    ck_assert_ptr_null(echo_with("echo_levle", "3", &err));
    ck_assert_str_eq(bb_error_type_name(err), "ConfigurationError");
    expect_err(err, BB_ERR_CONFIGURATION, "unknown setting 'echo_levle': no registered driver declares it");
    /* A built-in driver's setting is checked at once, plugins or not. */
    bb_config *cfg = echo_config(NULL, NULL);
    ck_assert_int_eq(bb_config_set(cfg, "modal_retries", "11", &err), -1);
    expect_err(err, BB_ERR_CONFIGURATION, "BLOCKBOX_MODAL_RETRIES");
    ck_assert_int_eq(bb_config_set(cfg, "memory_mb", "1", &err), -1);
    expect_err(err, BB_ERR_CONFIGURATION, "BLOCKBOX_MEMORY_MB");
    /* Not checked yet, so not read back. */
    ck_assert_int_eq(bb_config_set(cfg, "echo_level", "3", &err), 0);
    ck_assert_ptr_null(bb_config_get(cfg, "echo_level"));
    bb_config_free(cfg);
    /* From the environment: the plugin's variable is read once the plugin is loaded. */
    setenv("WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE", "echo", 1);
    setenv("BLOCKBOX_DRIVER_PATH", echo_path(), 1);
    setenv("BB_TEST_ECHO_LEVEL", "9", 1);
    expect_level(bb_executor_new(NULL, &err), "\"level\": 9}");
    setenv("BB_TEST_ECHO_LEVEL", "99", 1);
    ck_assert_ptr_null(bb_executor_new(NULL, &err));
    expect_err(err, BB_ERR_CONFIGURATION, "BB_TEST_ECHO_LEVEL");
    unsetenv("BB_TEST_ECHO_LEVEL");
    unsetenv("BLOCKBOX_DRIVER_PATH");
    unsetenv("WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE");
}
END_TEST

/* bb_config_get neither writes the config nor invalidates an earlier answer. */
START_TEST(get_is_read_only)
{
    bb_config *cfg = bb_config_new();
    const char *timeout = bb_config_get(cfg, "timeout"), *mem = bb_config_get(cfg, "memory_mb");
    ck_assert_str_eq(bb_config_get(cfg, "max_depth"), "64");
    ck_assert_str_eq(timeout, "20");
    ck_assert_str_eq(mem, "512");
    bb_config_free(cfg);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("config", defaults),
        BB_CHECK_TEST("config", every_key_reads_its_variable),
        BB_CHECK_TEST("config", bools),
        BB_CHECK_TEST("config", whole_numbers),
        BB_CHECK_TEST("config", values_read_back_or_are_refused),
        BB_CHECK_TEST("config", secrets_read_back_as_set),
        BB_CHECK_TEST("config", env_errors_name_the_variable),
        BB_CHECK_TEST("config", env_then_set_overrides),
        BB_CHECK_TEST("config", unknown_keys),
        BB_CHECK_TEST("config", the_executor_copies_its_config),
        BB_CHECK_TEST("config", bad_env_fails_executor_creation),
        BB_CHECK_TEST("config", a_driver_setting_is_checked_from_its_declaration),
        BB_CHECK_TEST("config", get_is_read_only),
    };
    return bb_check_run("config", 0, rows, BB_CHECK_COUNT(rows));
}
