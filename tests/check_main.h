/* check_main.h: the one Check runner of the project's C suites: a table of tests (tcase
 * name, test, optional loop count) built into one Suite, run, and turned into an exit status. */
#ifndef BB_CHECK_MAIN_H
#define BB_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* One row: the test joins the TCase named tcase (consecutive rows with the same name
 * share one); loops > 0 makes it a loop test over _i in [0, loops); timeout > 0 on the
 * row that opens a TCase sets that TCase's timeout in seconds over the suite's. */
typedef struct {
    const char *tcase;
    const TTest *test;
    int loops;
    int timeout;
} bb_check_case;

/* The suite: its name, each TCase's timeout in seconds (0: Check's default, which
 * CK_DEFAULT_TIMEOUT sets), an unchecked fixture run around each TCase (NULL: none), and
 * nofork (CK_NOFORK: the tests share the process, e.g. one emulator for the suite). */
typedef struct {
    const char *name;
    int timeout;
    void (*setup)(void);
    void (*teardown)(void);
    int nofork;
} bb_check_suite;

#define BB_CHECK_COUNT(rows) (sizeof(rows) / sizeof((rows)[0]))

/* The two usual rows: BB_CHECK_TEST(tcase, test), a test of its own with the suite's
 * timeout; BB_CHECK_LOOP(tcase, test, table), a loop test with _i over table's indices
 * (one run a row of the table it walks). A row that sets a timeout is written in full. */
#define BB_CHECK_TEST(tcase, test) {(tcase), (test), 0, 0}
#define BB_CHECK_LOOP(tcase, test, table) {(tcase), (test), (int)BB_CHECK_COUNT(table), 0}

/* Builds the suite from the rows (the table may live on main's stack: a test's name is
 * a pointer variable, not a constant), runs it and returns EXIT_SUCCESS or EXIT_FAILURE. */
static inline int bb_check_run_suite(const bb_check_suite *spec, const bb_check_case *rows, size_t n)
{
    Suite *s = suite_create(spec->name);
    TCase *tc = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!tc || strcmp(rows[i].tcase, rows[i - 1].tcase) != 0) {
            tc = tcase_create(rows[i].tcase);
            int timeout = rows[i].timeout > 0 ? rows[i].timeout : spec->timeout;
            if (timeout > 0)
                tcase_set_timeout(tc, timeout);
            if (spec->setup || spec->teardown)
                tcase_add_unchecked_fixture(tc, spec->setup, spec->teardown);
            suite_add_tcase(s, tc);
        }
        if (rows[i].loops > 0)
            tcase_add_loop_test(tc, rows[i].test, 0, rows[i].loops);
        else
            tcase_add_test(tc, rows[i].test);
    }
    SRunner *sr = srunner_create(s);
    if (spec->nofork)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* The usual case: a suite name and each TCase's timeout (0: Check's default). */
static inline int bb_check_run(const char *name, int timeout, const bb_check_case *rows, size_t n)
{
    const bb_check_suite spec = {.name = name, .timeout = timeout};
    return bb_check_run_suite(&spec, rows, n);
}

#endif
