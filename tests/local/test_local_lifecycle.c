/* test_local_lifecycle.c: the zygote's death and restart, and that nothing outlives an
 * executor: no process, no cgroup directory, no file descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local_marker.h"
#include "check_main.h"

/* ---- zygote death --------------------------------------------------------------- */

START_TEST(killing_the_zygote_is_survived_and_it_restarts)
{
    /* Works around regression_worker_death_between_runs_kills_the_host_with_SIGPIPE
     * (test_local_instances.c): the block's worker dies with its zygote. */
    signal(SIGPIPE, SIG_IGN);
    make_marker();
    bb_executor *ex = marked_executor(NULL, NULL);
    bb_block *blk = load_block(ex, COUNTER, NULL, 0);
    cJSON_Delete(run_ok(blk, "{\"x\": 1}"));
    pid_t zygote = zygote_pid_of(ex);
    long starts = describe_long(ex, "zygote_starts");
    ck_assert_int_gt(zygote, 1);
    ck_assert_int_eq(starts, 1);
    ck_assert(process_alive(zygote));
    ck_assert_int_eq(kill(zygote, SIGKILL), 0);
    ck_assert(wait_gone(zygote, 5));
    settle_us(100 * 1000);   /* PDEATHSIG takes the workers with it */
    /* Issue 9: the worker died with its zygote while idle (its input was never sent),
     * so the next run gets a new worker on the restarted zygote and succeeds; the
     * result says the instance was restarted. */
    bb_result *res = bb_block_run(blk, "{\"x\": 2}", NULL);
    ck_assert_ptr_nonnull(res);
    ck_assert_msg(bb_result_ok(res), "the first run after an idle zygote death failed: %s",
                  bb_error_message(bb_result_error(res)));
    ck_assert_int_eq(bb_result_restarted(res), 1);
    cJSON *out = cJSON_Parse(bb_result_outputs(res));
    bb_result_free(res);
    ck_assert_int_eq((int)num(out, "y"), 3);
    ck_assert_int_eq((int)num(out, "n"), 1);   /* a new worker: init and state afresh */
    cJSON_Delete(out);
    res = bb_block_run(blk, "{\"x\": 2}", NULL);
    ck_assert(bb_result_ok(res));
    ck_assert_int_eq(bb_result_restarted(res), 0);   /* the same worker again */
    bb_result_free(res);
    ck_assert_int_gt(describe_long(ex, "zygote_starts"), starts);
    pid_t again = zygote_pid_of(ex);
    ck_assert_int_ne(again, zygote);
    ck_assert(process_alive(again));
    /* New blocks work on the new zygote. */
    bb_block *other = load_block(ex, COUNTER, NULL, 0);
    cJSON_Delete(run_ok(other, "{\"x\": 5}"));
    /* The dead zygote's groups (blockbox-<pid> and its slot-0, whose worker died by
     * PDEATHSIG) were removed by its successor's sweeps (at its set-up, then at each
     * worker it added or removed while one was still busy), under v1 and under v2
     * delegation alike, while the executor still runs: nothing else would remove
     * them. Without the sweep they stay (seen failing with bb_cgroup_sweep a no-op). */
    ck_assert_msg(zygote_cgroups(zygote) == 0, "the killed zygote's group blockbox-%d (%d worker groups) is "
                  "still there after its successor ran two workers", (int)zygote, worker_groups(zygote, 0));
    bb_block_free(other);
    bb_block_free(blk);
    bb_executor_free(ex);
    assert_executor_left_nothing(again);
}
END_TEST

/* The zygote's start limit is a setting (zygote_start_seconds, 1-3600 s; 60 s by
 * default): a zygote slower than its limit (a worker that takes 3 s before it even
 * starts, under a 1 s limit) fails the executor's start clearly, naming the variable,
 * while the same zygote within a longer limit starts and runs. With the fixed limit of
 * before (60 s) the first executor started: the test fails without the setting. */
START_TEST(the_zygote_start_limit_is_a_setting)
{
    const char *worker = getenv("BB_TEST_WORKER");
    ck_assert_msg(worker && *worker, "BB_TEST_WORKER is not set: run this test through ctest");
    char dir[64], slow[128];
    snprintf(dir, sizeof dir, "/tmp/bb-slow-zygote-%d", (int)getpid());
    ck_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
    snprintf(slow, sizeof slow, "%s/blockbox-worker", dir);
    FILE *f = fopen(slow, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\n/bin/sleep 3\nexec '%s' \"$@\"\n", worker);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(slow, 0755), 0);
    /* out of range: refused as configuration */
    const char *bad[] = {"0.5", "3601", "soon"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bb_config *cfg = bb_config_new();
        bb_error *err = NULL;
        ck_assert_int_ne(bb_config_set(cfg, "zygote_start_seconds", bad[i], &err), 0);
        ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_CONFIGURATION);
        bb_error_free(err);
        bb_config_free(cfg);
    }
    const char *const tight[] = {"worker_path", slow, "zygote_start_seconds", "1", NULL};
    bb_config *cfg = local_config(tight);
    bb_error *err = NULL;
    double t0 = monotonic_s();
    bb_executor *ex = bb_executor_new(cfg, &err);
    double took = monotonic_s() - t0;
    bb_config_free(cfg);
    ck_assert_msg(ex == NULL, "a zygote 3 s slow started under a 1 s limit");
    fprintf(stderr, "a slow zygote under a 1 s limit (%.2f s): %s: %s\n", took, bb_error_type_name(err),
            bb_error_message(err));
    ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_BACKEND_UNAVAILABLE);
    ck_assert_msg(strstr(bb_error_message(err), "BLOCKBOX_ZYGOTE_START_SECONDS"),
                  "the error does not name the setting: %s", bb_error_message(err));
    bb_error_free(err);
    const char *const roomy[] = {"worker_path", slow, "zygote_start_seconds", "600", NULL};
    ex = local_executor(roomy);
    bb_block *blk = load_block(ex, COUNTER, NULL, 0);
    cJSON_Delete(run_ok(blk, "{}"));
    bb_block_free(blk);
    bb_executor_free(ex);
    unlink(slow);
    rmdir(dir);
}
END_TEST

/* The zygote dies while a run is in flight: that run fails clearly, the next works. */
static pid_t victim;
static void *kill_soon(void *arg)
{
    (void)arg;
    settle_us(300 * 1000);   /* the run is in flight by then */
    kill(victim, SIGKILL);
    return NULL;
}

START_TEST(zygote_death_during_a_run_fails_that_run_only)
{
    signal(SIGPIPE, SIG_IGN);   /* see above */
    make_marker();
    bb_executor *ex = marked_executor(NULL, NULL);
    bb_block *blk = load_block(ex, COUNTER, NULL, 0);
    victim = zygote_pid_of(ex);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, kill_soon, NULL), 0);
    bb_result *res = bb_block_run(blk, "{\"x\": 1, \"nap\": 10}", NULL);
    pthread_join(t, NULL);
    /* The worker went down with its zygote and the run says so: a worker left alive
     * would answer after its 10 s nap (a success), a run left waiting for it would end
     * as a Timeout; both fail the kinds below. */
    fprintf(stderr, "the run in flight when the zygote died: %s: %s\n",
            bb_error_type_name(bb_result_error(res)), bb_error_message(bb_result_error(res)));
    expect_failure_in(res, KIND(BB_ERR_BACKEND_UNAVAILABLE) | KIND(BB_ERR_SANDBOX_CRASH), NULL);
    run_expect(blk, "{\"x\": 2}", "y", 3);
    ck_assert_int_ge(describe_long(ex, "zygote_starts"), 2);
    bb_block_free(blk);
    bb_executor_free(ex);
    assert_processes_gone();
}
END_TEST

START_TEST(zygote_death_with_only_spares_then_load_works)
{
    signal(SIGPIPE, SIG_IGN);   /* see above */
    make_marker();
    bb_executor *ex = marked_executor("spare_workers", "2");
    settle_us(300 * 1000);   /* let the keeper fork its spares */
    pid_t zygote = zygote_pid_of(ex);
    kill(zygote, SIGKILL);
    ck_assert(wait_gone(zygote, 5));
    settle_us(100 * 1000);
    /* A spare of the dead zygote may be handed out once: that load may fail clearly. */
    int loaded = 0;
    for (int attempt = 0; attempt < 3 && !loaded; attempt++) {
        bb_block_spec spec = {.run_code = COUNTER};
        bb_error *err = NULL;
        bb_block *blk = bb_block_load(ex, &spec, &err);
        if (!blk) {
            fprintf(stderr, "load after the zygote died: %s: %s\n", bb_error_type_name(err), bb_error_message(err));
            ck_assert_msg(bb_error_get_kind(err) == BB_ERR_BACKEND_UNAVAILABLE ||
                              bb_error_get_kind(err) == BB_ERR_SANDBOX_CRASH,
                          "unclear error %s", bb_error_type_name(err));
            bb_error_free(err);
            continue;
        }
        cJSON_Delete(run_ok(blk, "{\"x\": 1}"));
        bb_block_free(blk);
        loaded = 1;
    }
    ck_assert_msg(loaded, "no block could be loaded after the zygote's restart");
    bb_executor_free(ex);
    assert_processes_gone();
}
END_TEST

/* ---- nothing outlives the executor ------------------------------------------------ */

START_TEST(no_process_or_cgroup_outlives_the_executor)
{
    make_marker();
    const char *const pairs[] = {"worker_path", marker_path, "timeout", SCALED_SECONDS(1), "spare_workers", "2", NULL};
    bb_executor *ex = local_executor(pairs);
    pid_t zygote = zygote_pid_of(ex);
    /* Blocks of every kind: live, recycled each run, timed out, with a stray thread. */
    bb_block *live = load_block(ex, COUNTER, NULL, 0);
    bb_block *fresh = load_block(ex, COUNTER, NULL, 1);
    bb_block *slow = load_block(ex, COUNTER, NULL, 0);
    bb_block *threaded = load_block(ex,
                                    "import threading\n"
                                    "def run(self):\n"
                                    "    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
                                    "    return {'ok': 1}\n",
                                    NULL, 0);
    for (int i = 0; i < 3; i++) {
        cJSON_Delete(run_ok(live, "{}"));
        cJSON_Delete(run_ok(fresh, "{}"));
    }
    cJSON_Delete(run_ok(threaded, "{}"));
    expect_failure(bb_block_run(slow, "{\"nap\": 30}", NULL), BB_ERR_TIMEOUT, NULL);
    pid_t pids[64];
    int alive = marked_processes(pids, 64);
    /* zygote + live + fresh(retired or not) + threaded + spares: the marker works. */
    ck_assert_msg(alive >= 4, "only %d marked processes: the marker does not mark them", alive);
    int groups = zygote_cgroups(zygote);
    char *desc = bb_executor_describe(ex);
    int has_cgroup = strstr(desc, "\"cgroup\"") != NULL;
    free(desc);
    if (has_cgroup)
        ck_assert_msg(groups > 0, "the cgroup layer is on but no blockbox-%d group was found", (int)zygote);
    bb_block_free(live);
    bb_block_free(fresh);
    bb_block_free(slow);
    bb_block_free(threaded);
    bb_executor_free(ex);
    int left = marked_after(5);
    ck_assert_msg(left == 0, "%d processes of the executor outlived it", left);
    ck_assert_msg(!process_alive(zygote), "the zygote %d outlived its executor", (int)zygote);
    ck_assert_msg(zygote_cgroups(zygote) == 0, "cgroup blockbox-%d outlived its executor", (int)zygote);
    drop_marker();
}
END_TEST

START_TEST(no_fd_leaks_over_100_load_run_free_cycles)
{
    int before = count_fds();
    bb_executor *ex = local_executor(NULL);
    for (int i = 0; i < 100; i++) {
        bb_block *blk = load_block(ex, COUNTER, NULL, i % 4 == 0 ? 1 : 0);
        cJSON *out = run_ok(blk, "{\"x\": 1}");
        cJSON_Delete(out);
        if (i % 10 == 0)
            cJSON_Delete(run_ok(blk, "{\"x\": 2}"));
        bb_block_free(blk);
    }
    /* A failing block and a failing load leave nothing either. */
    bb_block_spec broken = {.run_code = "def run(self):\n    return 1 +\n"};
    bb_error *err = NULL;
    bb_block *none = bb_block_load(ex, &broken, &err);
    ck_assert_ptr_null(none);
    ck_assert_ptr_nonnull(err);
    bb_error_free(err);
    bb_executor_free(ex);
    for (int i = 0; i < 3; i++) {
        ex = local_executor(NULL);
        bb_block *blk = load_block(ex, COUNTER, NULL, 0);
        cJSON_Delete(run_ok(blk, "{}"));
        bb_block_free(blk);
        bb_executor_free(ex);
    }
    int after = count_fds();
    ck_assert_msg(after == before, "%d fds before, %d after", before, after);
}
END_TEST

/* ---- regressions: bugs these tests found in local.c, fixed since ---- */

/* After the zygote dies, the block's next run fails as SandboxCrash with a misleading
 * message ("the worker stopped answering" / "exited with status 0"): local.c reaps the
 * dead worker through the NEW zygote, which answers "no such worker" with status -1,
 * and that -1 is read as a wait status. The error should be BackendUnavailable and
 * say that the sandbox zygote died and was restarted. */
START_TEST(regression_zygote_death_is_reported_as_backend_unavailable)
{
    signal(SIGPIPE, SIG_IGN);   /* see above */
    local_block b = local_block_on(local_executor(NULL), COUNTER, NULL, 0);
    cJSON_Delete(run_ok(b.blk, "{}"));
    pid_t zygote = zygote_pid_of(b.ex);
    kill(zygote, SIGKILL);
    ck_assert(wait_gone(zygote, 5));
    settle_us(100 * 1000);
    bb_result *res = bb_block_run(b.blk, "{}", NULL);
    if (!bb_result_ok(res))
        expect_failure(res, BB_ERR_BACKEND_UNAVAILABLE, "zygote");
    else
        bb_result_free(res);
    local_block_free(b);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        {"zygote_death", killing_the_zygote_is_survived_and_it_restarts, 0, 60},
        BB_CHECK_TEST("zygote_death", zygote_death_during_a_run_fails_that_run_only),
        BB_CHECK_TEST("zygote_death", zygote_death_with_only_spares_then_load_works),
        {"zygote_start", the_zygote_start_limit_is_a_setting, 0, 60},
        {"leftovers", no_process_or_cgroup_outlives_the_executor, 0, 80},
        BB_CHECK_TEST("leftovers", no_fd_leaks_over_100_load_run_free_cycles),
        {"regressions", regression_zygote_death_is_reported_as_backend_unavailable, 0, 60},
    };
    return bb_check_run("local_lifecycle", 0, rows, BB_CHECK_COUNT(rows));
}
