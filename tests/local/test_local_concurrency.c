/* test_local_concurrency.c: many threads, each with its own block instance on one
 * local executor, run at once; every answer must be its own (isolation, thread safety). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local_test_util.h"
#include "check_main.h"

#define THREADS 8
#define RUNS 50

/* Each instance keeps its own call counter and owner; a mix-up between instances or
 * threads shows as a wrong value, a wrong count or a wrong owner. */
static const char CODE[] =
    "CALLS = 0\n"
    "OWNER = None\n"
    "def run(self, tid, n, pad):\n"
    "    global CALLS, OWNER\n"
    "    CALLS += 1\n"
    "    if OWNER is None:\n"
    "        OWNER = tid\n"
    "    return {'v': tid * 100000 + n * 7 + len(pad), 'calls': CALLS, 'owner': OWNER,\n"
    "            'echo': pad[::-1]}\n";

typedef struct thread_job {
    bb_executor *ex;
    int tid;
    int failures;
    char first_failure[512];
} thread_job;

/* Counts a failure and keeps the text of the first one. */
#define note_failure(job, ...)                                                              \
    do {                                                                                    \
        if ((job)->failures++ == 0)                                                         \
            snprintf((job)->first_failure, sizeof (job)->first_failure, __VA_ARGS__);       \
    } while (0)

static void *worker_thread(void *arg)
{
    thread_job *job = arg;
    bb_block_spec spec = {.run_code = CODE};
    bb_error *err = NULL;
    bb_block *blk = bb_block_load(job->ex, &spec, &err);
    if (!blk) {
        note_failure(job, "load: %s", err ? bb_error_message(err) : "?");
        bb_error_free(err);
        return NULL;
    }
    for (int n = 0; n < RUNS; n++) {
        /* A payload unique to (thread, run): its reverse must come back. */
        char pad[64], inputs[256], want_echo[64];
        int plen = snprintf(pad, sizeof pad, "t%d-r%d-%s", job->tid, n, n % 2 ? "odd" : "even");
        for (int i = 0; i < plen; i++)
            want_echo[i] = pad[plen - 1 - i];
        want_echo[plen] = '\0';
        snprintf(inputs, sizeof inputs, "{\"tid\": %d, \"n\": %d, \"pad\": \"%s\"}", job->tid, n, pad);
        bb_result *res = bb_block_run(blk, inputs, NULL);
        if (!res || !bb_result_ok(res)) {
            note_failure(job, "run failed: %s (thread %d run %d)",
                         res ? bb_error_message(bb_result_error(res)) : "NULL", job->tid, n);
            bb_result_free(res);
            continue;
        }
        cJSON *out = cJSON_Parse(bb_result_outputs(res));
        const cJSON *v = cJSON_GetObjectItem(out, "v"), *calls = cJSON_GetObjectItem(out, "calls"),
                    *owner = cJSON_GetObjectItem(out, "owner"), *echo = cJSON_GetObjectItem(out, "echo");
        long want_v = (long)job->tid * 100000 + n * 7 + plen;
        if (!cJSON_IsNumber(v) || (long)v->valuedouble != want_v)
            note_failure(job, "%s: v %ld, wanted %ld", bb_result_outputs(res),
                         cJSON_IsNumber(v) ? (long)v->valuedouble : -1, want_v);
        else if (!cJSON_IsNumber(calls) || (long)calls->valuedouble != n + 1)
            note_failure(job, "%s: calls %ld, wanted %d", bb_result_outputs(res),
                         cJSON_IsNumber(calls) ? (long)calls->valuedouble : -1, n + 1);
        else if (!cJSON_IsNumber(owner) || (long)owner->valuedouble != job->tid)
            note_failure(job, "%s: owner %ld, wanted %d", bb_result_outputs(res),
                         cJSON_IsNumber(owner) ? (long)owner->valuedouble : -1, job->tid);
        else if (!cJSON_IsString(echo) || strcmp(echo->valuestring, want_echo) != 0)
            note_failure(job, "%s: wrong echo (thread %d run %d)", bb_result_outputs(res), job->tid, n);
        cJSON_Delete(out);
        bb_result_free(res);
    }
    bb_block_free(blk);
    return NULL;
}

START_TEST(eight_threads_each_with_its_own_instance_get_their_own_answers)
{
    bb_executor *ex = local_executor(NULL);
    pthread_t threads[THREADS];
    thread_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (thread_job){.ex = ex, .tid = i + 1};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, worker_thread, &jobs[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        if (jobs[i].failures)
            fprintf(stderr, "thread %d: %d failures; first: %s\n", jobs[i].tid, jobs[i].failures,
                    jobs[i].first_failure);
        failures += jobs[i].failures;
    }
    ck_assert_msg(failures == 0, "%d of %d runs went wrong (see stderr)", failures, THREADS * RUNS);
    bb_executor_free(ex);
}
END_TEST

/* One instance shared by threads: runs are serialised, so the counter sees every run
 * exactly once (no lost update, no interleaved frames). */
static bb_block *shared_block;
static void *shared_runner(void *arg)
{
    long *bad = arg;
    for (int n = 0; n < 25; n++) {
        bb_result *res = bb_block_run(shared_block, "{\"tid\": 0, \"n\": 0, \"pad\": \"\"}", NULL);
        if (!res || !bb_result_ok(res))
            (*bad)++;
        bb_result_free(res);
    }
    return NULL;
}

START_TEST(one_instance_shared_by_four_threads_serialises_its_runs)
{
    bb_executor *ex = local_executor(NULL);
    shared_block = load_block(ex, CODE, NULL, 0);
    pthread_t threads[4];
    long bad[4] = {0};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, shared_runner, &bad[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(bad[i], 0);
    }
    run_expect(shared_block, "{\"tid\": 0, \"n\": 0, \"pad\": \"\"}", "calls", 101);
    bb_block_free(shared_block);
    bb_executor_free(ex);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("threads", eight_threads_each_with_its_own_instance_get_their_own_answers),
        BB_CHECK_TEST("threads", one_instance_shared_by_four_threads_serialises_its_runs),
    };
    return bb_check_run("local_concurrency", 80, rows, BB_CHECK_COUNT(rows));
}
