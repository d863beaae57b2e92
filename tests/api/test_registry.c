/* test_registry.c: the driver registry: built-ins, case-insensitive lookup, and every
 * refusal (wrong ABI, missing functions, duplicates, a full table, broken plugins). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_test_util.h"
#include "registry.h"
#include "check_main.h"
#include "driver_stubs.h"

static int d_run(void *st, void *bs, const bb_call *c, bb_reply *r, bb_error **err)
{
    (void)st;
    (void)bs;
    (void)c;
    (void)r;
    (void)err;
    return -1;
}

#define DRIVER(name_)                                                                               \
    {BB_DRIVER_HEAD, .name = name_, .summary = "test", .open = stub_open, .load = stub_load,        \
     .run = d_run, .unload = stub_unload, .close = stub_close}

/* Opens a registry of the built-in drivers and the plugins of path (NULL: none), which
 * must open. */
static void open_registry(bb_registry *reg, const char *path)
{
    bb_error *err = NULL;
    ck_assert_msg(bb_registry_init(reg, path, &err) == 0, "%s", err ? bb_error_message(err) : "?");
}

/* bb_registry_add must refuse d (reg or d may be NULL) with a ConfigurationError whose
 * message contains needle (NULL: any). */
static void expect_refused(bb_registry *reg, const bb_driver *d, const char *needle)
{
    bb_error *err = NULL;
    ck_assert_msg(bb_registry_add(reg, d, &err) == -1, "driver %s accepted", d && d->name ? d->name : "(null)");
    expect_err(err, BB_ERR_CONFIGURATION, needle);
}

static void expect_added(bb_registry *reg, const bb_driver *d)
{
    bb_error *err = NULL;
    ck_assert_msg(bb_registry_add(reg, d, &err) == 0, "driver %s refused: %s", d->name,
                  err ? bb_error_message(err) : "?");
}

/* The drivers bb_registry_add refuses: DRIVER(name) with one field changed, and what the
 * refusal says (NULL: anything). */
enum { KEEP = -1 };
typedef enum { ALL_FUNCTIONS, NO_RUN, NO_CLOSE, NO_LOAD } missing_function;
static const struct {
    const char *name;
    long abi;            /* KEEP: BB_DRIVER_ABI_VERSION */
    long struct_size;    /* KEEP: BB_DRIVER_SIZE */
    missing_function missing;
    const char *needle;
} BAD_DRIVERS[] = {
    {"wrong", BB_DRIVER_ABI_VERSION + 1, KEEP, ALL_FUNCTIONS, "ABI"},
    {NULL, KEEP, KEEP, ALL_FUNCTIONS, NULL},
    {"", KEEP, KEEP, ALL_FUNCTIONS, NULL},
    {"norun", KEEP, KEEP, NO_RUN, "required function"},
    {"noclose", KEEP, KEEP, NO_CLOSE, "required function"},
    {"MODAL", KEEP, KEEP, ALL_FUNCTIONS, "already registered"},
    /* driver.h rules 1 and 3: a newer major, major 0, and an ABI 2 struct_size that does
     * not even hold struct_size */
    {"newer", 3, KEEP, ALL_FUNCTIONS, "ABI 3, this library speaks ABI 1 to 2"},
    {"zero", 0, KEEP, ALL_FUNCTIONS, "ABI 0"},
    {"tiny", KEEP, 8, ALL_FUNCTIONS, "struct_size of 8 bytes"},
    /* An ABI 2 driver may load with load_reply alone, not with neither. */
    {"neither", KEEP, KEEP, NO_LOAD, "required function"},
};

START_TEST(builtins_are_there)
{
    bb_registry reg;
    open_registry(&reg, NULL);
    bb_error *err = NULL;
    ck_assert_ptr_nonnull(bb_registry_find(&reg, "local"));
    ck_assert_ptr_nonnull(bb_registry_find(&reg, "modal"));
    ck_assert_ptr_eq(bb_registry_find(&reg, "LoCaL"), bb_registry_find(&reg, "local"));
    ck_assert_ptr_null(bb_registry_find(&reg, "echo"));
    ck_assert_ptr_null(bb_registry_find(&reg, ""));
    ck_assert_ptr_null(bb_registry_find(&reg, "loca"));
    ck_assert_ptr_null(bb_registry_find(&reg, "locall"));
    char *names = bb_registry_names(&reg);
    ck_assert_ptr_nonnull(strstr(names, "local"));
    ck_assert_ptr_nonnull(strstr(names, "modal"));
    free(names);
    for (size_t i = 0; i < reg.n; i++)
        ck_assert_uint_eq(reg.drivers[i]->abi_version, BB_DRIVER_ABI_VERSION);
    bb_registry_close(&reg);
    /* An empty plugin path is no plugin. */
    ck_assert_int_eq(bb_registry_init(&reg, "", &err), 0);
    ck_assert_uint_eq(reg.nhandles, 0);
    bb_registry_close(&reg);
}
END_TEST

START_TEST(add_refuses_bad_drivers)
{
    bb_registry reg;
    open_registry(&reg, NULL);
    size_t before = reg.n;
    for (size_t i = 0; i < BB_CHECK_COUNT(BAD_DRIVERS); i++) {
        bb_driver d = DRIVER(BAD_DRIVERS[i].name);
        if (BAD_DRIVERS[i].abi != KEEP)
            d.abi_version = (unsigned)BAD_DRIVERS[i].abi;
        if (BAD_DRIVERS[i].struct_size != KEEP)
            d.struct_size = (size_t)BAD_DRIVERS[i].struct_size;
        if (BAD_DRIVERS[i].missing == NO_RUN)
            d.run = NULL;
        if (BAD_DRIVERS[i].missing == NO_CLOSE)
            d.close = NULL;
        if (BAD_DRIVERS[i].missing == NO_LOAD)
            d.load = NULL;
        expect_refused(&reg, &d, BAD_DRIVERS[i].needle);
    }
    bb_driver dup = DRIVER("MODAL");
    expect_refused(&reg, NULL, NULL);
    expect_refused(NULL, &dup, NULL);
    /* None of them got in; describe may be NULL. */
    ck_assert_uint_eq(reg.n, before);
    bb_driver fine = DRIVER("fine");
    expect_added(&reg, &fine);
    ck_assert_uint_eq(reg.n, before + 1);
    ck_assert_ptr_eq(bb_registry_find(&reg, "FINE"), &fine);
    bb_registry_close(&reg);
}
END_TEST

START_TEST(a_full_registry_refuses_more)
{
    bb_registry reg;
    open_registry(&reg, NULL);
    static char names[BB_REGISTRY_MAX + 1][16];
    static bb_driver drivers[BB_REGISTRY_MAX + 1];
    size_t room = BB_REGISTRY_MAX - reg.n;
    for (size_t i = 0; i <= room; i++) {
        snprintf(names[i], sizeof names[i], "d%zu", i);
        drivers[i] = (bb_driver)DRIVER(names[i]);
        if (i < room)
            expect_added(&reg, &drivers[i]);
        else
            expect_refused(&reg, &drivers[i], "too many");
    }
    ck_assert_uint_eq(reg.n, BB_REGISTRY_MAX);
    bb_registry_close(&reg);
}
END_TEST

START_TEST(plugins_load_from_a_colon_list)
{
    char *path = NULL;
    ck_assert_int_ge(asprintf(&path, ":%s::%s:", echo_path(), plugin_path("BB_TEST_ECHO_OTHER")), 0);
    bb_registry reg;
    open_registry(&reg, path);
    ck_assert_ptr_nonnull(bb_registry_find(&reg, "echo"));
    ck_assert_ptr_nonnull(bb_registry_find(&reg, "Echo2"));
    ck_assert_uint_eq(reg.nhandles, 2);
    char *names = bb_registry_names(&reg);
    ck_assert_ptr_nonnull(strstr(names, "echo, echo2"));
    free(names);
    bb_registry_close(&reg);
    ck_assert_uint_eq(reg.n, 0);
    free(path);
}
END_TEST

/* A failed init leaves a registry that close() still cleans up (ASan: no leak). */
static void expect_init_fails(const char *path, const char *needle)
{
    bb_registry reg;
    bb_error *err = NULL;
    ck_assert_int_eq(bb_registry_init(&reg, path, &err), -1);
    expect_err(err, BB_ERR_CONFIGURATION, needle);
    bb_registry_close(&reg);
}

START_TEST(broken_plugins_fail_init)
{
    expect_init_fails(plugin_path("BB_TEST_ECHO_BADABI"), "ABI 999");
    expect_init_fails(plugin_path("BB_TEST_ECHO_NOENTRY"), BB_DRIVER_ENTRY);
    expect_init_fails(plugin_path("BB_TEST_ECHO_DUP"), "already registered");
    expect_init_fails(plugin_path("BB_TEST_ECHO_REFUSES"), "on purpose");
    expect_init_fails("/nonexistent.so", "cannot load");
    expect_init_fails("relative-name-not-found.so", "cannot load");
    /* A good plugin before a bad one does not save it. */
    char *path = NULL;
    ck_assert_int_ge(asprintf(&path, "%s:%s", echo_path(), plugin_path("BB_TEST_ECHO_BADABI")), 0);
    expect_init_fails(path, "ABI");
    free(path);
}
END_TEST

/* driver.h rules 1, 3, 4: an ABI 1 struct and an ABI 2 struct smaller than this
 * library's are accepted, their missing slots absent (what is refused: BAD_DRIVERS). */
START_TEST(older_structs_are_accepted_newer_majors_refused)
{
    char *path = NULL;
    ck_assert_int_ge(asprintf(&path, "%s:%s", plugin_path("BB_TEST_ECHO_ABI1"), plugin_path("BB_TEST_ECHO_SMALL")), 0);
    bb_registry reg;
    open_registry(&reg, path);
    free(path);
    const bb_driver *v1 = bb_registry_find(&reg, "echo_v1"), *small = bb_registry_find(&reg, "echo_small");
    ck_assert_ptr_nonnull(v1);
    ck_assert_ptr_nonnull(small);
    ck_assert_uint_eq(v1->abi_version, 1);
    ck_assert(!BB_DRIVER_HAS(v1, settings));
    ck_assert(!BB_DRIVER_HAS(small, settings));
    ck_assert(!BB_DRIVER_HAS(small, load_reply));
    ck_assert(BB_DRIVER_HAS(bb_registry_find(&reg, "local"), load_reply));
    bb_registry_close(&reg);
}
END_TEST

/* A driver's declared settings are checked when it registers. */
START_TEST(bad_setting_declarations_are_refused)
{
    static const struct {
        bb_setting s;
        const char *needle;
    } bad[] = {
        {{"timeout", NULL, BB_SETTING_LONG, "1", 0, 9, 0, "x"}, "which the core already has"},
        {{"memory_mb", NULL, BB_SETTING_LONG, "32", 0, 99, 0, "x"}, "which driver local already has"},
        {{"Bad-Key", NULL, BB_SETTING_STRING, NULL, 0, 0, 0, "x"}, "[a-z][a-z0-9_]"},
        {{"ok_key", "lower_env", BB_SETTING_STRING, NULL, 0, 0, 0, "x"}, "its variable"},
        {{"ok_key", NULL, (bb_setting_type)77, NULL, 0, 0, 0, "x"}, "unknown type"},
        {{"ok_key", NULL, BB_SETTING_LONG, NULL, 5, 4, 0, "x"}, "empty range"},
        {{"ok_key", NULL, BB_SETTING_SECONDS, NULL, 0, 4, 0, "x"}, "empty range"},
        {{"ok_key", NULL, BB_SETTING_LONG, "11", 1, 10, 0, "x"}, "its default is invalid"},
        {{"ok_key", NULL, BB_SETTING_LONG, "1", 1, 10, 0, NULL}, "no help"},
    };
    bb_registry reg;
    open_registry(&reg, NULL);
    size_t before = reg.n;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bb_driver d = DRIVER("decl");
        d.settings = &bad[i].s;
        d.n_settings = 1;
        expect_refused(&reg, &d, bad[i].needle);
    }
    static const bb_setting twice[] = {
        {"same_key", NULL, BB_SETTING_BOOL, "True", 0, 0, 0, "x"},
        {"same_key", NULL, BB_SETTING_BOOL, "True", 0, 0, 0, "x"},
    };
    bb_driver d = DRIVER("twice");
    d.settings = twice;
    d.n_settings = 2;
    expect_refused(&reg, &d, "which driver twice already has");
    ck_assert_uint_eq(reg.n, before);
    d.n_settings = 1;
    expect_added(&reg, &d);
    bb_registry_close(&reg);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("registry", builtins_are_there),
        BB_CHECK_TEST("registry", add_refuses_bad_drivers),
        BB_CHECK_TEST("registry", a_full_registry_refuses_more),
        BB_CHECK_TEST("registry", plugins_load_from_a_colon_list),
        BB_CHECK_TEST("registry", broken_plugins_fail_init),
        BB_CHECK_TEST("registry", older_structs_are_accepted_newer_majors_refused),
        BB_CHECK_TEST("registry", bad_setting_declarations_are_refused),
    };
    return bb_check_run("registry", 0, rows, BB_CHECK_COUNT(rows));
}
