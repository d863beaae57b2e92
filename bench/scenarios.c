/* scenarios.c: the measurements through the public C API with the local driver:
 * timed series of one block, throughput with one instance per thread, memory. */
#include <cjson/cJSON.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_internal.h"

bb_executor *bench_executor_new(bb_error **err)
{
    bb_config *cfg = bb_config_from_env(err);
    if (!cfg)
        return NULL;
    bb_executor *ex = NULL;
    /* The benchmark is of the local driver; instances live unless a spec says otherwise. */
    if (bb_config_set(cfg, "mode", "local", err) == 0 && bb_config_set(cfg, "max_inputs", "0", err) == 0)
        ex = bb_executor_new(cfg, err);
    bb_config_free(cfg);
    return ex;
}

bb_block *bench_load(bb_executor *ex, const char *code, int max_inputs, bb_error **err)
{
    bb_block_spec spec = {.run_code = code, .max_inputs = max_inputs};
    return bb_block_load(ex, &spec, err);
}

pid_t bench_zygote_pid(bb_executor *ex)
{
    char *text = bb_executor_describe(ex);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(root, "zygote_pid");
    pid_t out = cJSON_IsNumber(pid) && pid->valuedouble > 0 ? (pid_t)pid->valuedouble : -1;
    cJSON_Delete(root);
    return out;
}

static void sleep_ns(long long ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000LL), .tv_nsec = (long)(ns % 1000000000LL)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* One call; its failure becomes *err (with the run's own error message). */
static int run_once(bb_block *blk, const char *inputs, long long *elapsed, int check_it,
                    int (*check)(const char *, bb_error **), bb_error **err)
{
    long long start = bench_now_ns();
    bb_result *res = bb_block_run(blk, inputs, NULL);
    *elapsed = bench_now_ns() - start;
    int rc = bench_result_failed(res, "a benchmark run", err);
    if (rc == 0 && check_it && check)
        rc = check(bb_result_outputs(res), err);
    bb_result_free(res);
    return rc;
}

int bench_series(bb_block *blk, const char *inputs, int runs, int warmup, long long pause_ns,
                 int (*check)(const char *, bb_error **), bench_samples *out, bb_error **err)
{
    for (int i = 0; i < warmup + runs; i++) {
        long long elapsed;
        /* Outputs are checked on the first and the last call (the image check decodes
         * 6 MB, which would slow the benchmark, not the measurement). */
        if (run_once(blk, inputs, &elapsed, i == 0 || i == warmup + runs - 1, check, err) < 0)
            return -1;
        if (i >= warmup && bench_samples_add(out, elapsed, err) < 0)
            return -1;
        if (pause_ns > 0)
            sleep_ns(pause_ns);
    }
    return 0;
}

/* ---- throughput: one instance per thread ------------------------------------------- */

/* The start line: threads wait until `go`, then run until `deadline`. */
typedef struct start_line {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int go;
    long long deadline;
} start_line;

typedef struct worker_thread {
    pthread_t thread;
    bb_block *blk;
    start_line *line;
    long long finished_ns;
    long long runs;
    bench_samples latencies;
    bb_error *err;
} worker_thread;

static void *throughput_thread(void *arg)
{
    worker_thread *t = arg;
    pthread_mutex_lock(&t->line->lock);
    while (!t->line->go)
        pthread_cond_wait(&t->line->cond, &t->line->lock);
    long long deadline = t->line->deadline;
    pthread_mutex_unlock(&t->line->lock);
    while (bench_now_ns() < deadline) {
        long long elapsed;
        if (run_once(t->blk, bench_trivial_inputs, &elapsed, t->runs == 0, bench_check_trivial, &t->err) < 0 ||
            bench_samples_add(&t->latencies, elapsed, &t->err) < 0)
            break;
        t->runs++;
    }
    t->finished_ns = bench_now_ns();
    return NULL;
}

int bench_throughput_run(bb_executor *ex, int threads, double seconds, bench_throughput *out,
                         bb_error **err)
{
    memset(out, 0, sizeof *out);
    out->threads = threads;
    worker_thread *ts = calloc((size_t)threads, sizeof *ts);
    if (!ts)
        return bench_fail(err, BB_ERR_INTERNAL, "out of memory");
    int rc = 0, loaded = 0;
    for (; loaded < threads; loaded++) {
        ts[loaded].blk = bench_load(ex, bench_trivial_code, 0, err);
        if (!ts[loaded].blk) {
            rc = -1;
            break;
        }
        /* warm each instance: its first runs pay for lazy paths */
        bench_samples scratch = {0};
        rc = bench_series(ts[loaded].blk, bench_trivial_inputs, 0, 20, 0, bench_check_trivial, &scratch, err);
        bench_samples_free(&scratch);
        if (rc < 0) {
            bb_block_free(ts[loaded].blk);
            break;
        }
    }
    start_line line = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    int started = 0;
    for (; rc == 0 && started < threads; started++) {
        ts[started].line = &line;
        if (pthread_create(&ts[started].thread, NULL, throughput_thread, &ts[started]) != 0) {
            rc = bench_fail(err, BB_ERR_INTERNAL, "cannot start benchmark threads");
            break;
        }
    }
    pthread_mutex_lock(&line.lock);
    long long begin = bench_now_ns();
    line.deadline = rc == 0 ? begin + (long long)(seconds * 1e9) : 0;   /* 0: stop at once */
    line.go = 1;
    pthread_cond_broadcast(&line.cond);
    pthread_mutex_unlock(&line.lock);
    long long end = begin;
    for (int i = 0; i < started; i++) {
        pthread_join(ts[i].thread, NULL);
        if (ts[i].finished_ns > end)
            end = ts[i].finished_ns;
        out->runs += ts[i].runs;
        for (size_t k = 0; k < ts[i].latencies.n; k++)
            if (rc == 0 && bench_samples_add(&out->latencies, ts[i].latencies.ns[k], err) < 0)
                rc = -1;
        if (ts[i].err && rc == 0)
            rc = bench_fail(err, bb_error_get_kind(ts[i].err), "%s", bb_error_message(ts[i].err));
        bb_error_free(ts[i].err);
        bench_samples_free(&ts[i].latencies);
    }
    out->seconds = (double)(end - begin) / 1e9;
    out->runs_per_s = out->seconds > 0 ? (double)out->runs / out->seconds : 0;
    for (int i = 0; i < loaded; i++)
        bb_block_free(ts[i].blk);
    free(ts);
    return rc;
}

/* ---- memory --------------------------------------------------------------------- */

static int compare_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int bench_memory_run(bb_executor *ex, const bench_plan *plan, bench_memory *out, bb_error **err)
{
    memset(out, 0, sizeof *out);
    out->worker_private_kib = out->worker_pss_kib = -1;
    int n = plan->memory_instances;
    bb_block **blocks = calloc((size_t)n, sizeof *blocks);
    if (!blocks)
        return bench_fail(err, BB_ERR_INTERNAL, "out of memory");
    /* One instance first, so the growth measured is per instance, not the first
     * use of code paths and allocator arenas. */
    bb_block *first = bench_load(ex, bench_trivial_code, 0, err);
    if (!first) {
        free(blocks);
        return -1;
    }
    out->rss_before_kib = bench_rss_kib(0);
    struct mallinfo2 heap_before = mallinfo2();
    long fds_before = bench_open_fds();
    int rc = 0, loaded = 0;
    for (; loaded < n; loaded++) {
        blocks[loaded] = bench_load(ex, bench_trivial_code, 0, err);
        if (!blocks[loaded]) {
            rc = -1;
            break;
        }
    }
    if (rc == 0) {
        out->instances = n;
        out->rss_after_kib = bench_rss_kib(0);
        out->host_kib_per_instance = (double)(out->rss_after_kib - out->rss_before_kib) / (double)n;
        struct mallinfo2 heap_after = mallinfo2();
        out->heap_bytes_per_instance =
            ((double)(heap_after.uordblks + heap_after.hblkhd) - (double)(heap_before.uordblks + heap_before.hblkhd)) /
            (double)n;
        out->fds_per_instance = (double)(bench_open_fds() - fds_before) / (double)n;
        pid_t zygote = bench_zygote_pid(ex);
        out->zygote_rss_kib = zygote > 0 ? bench_rss_kib(zygote) : -1;
        pid_t kids[256];
        size_t nkids = zygote > 0 ? bench_children(zygote, kids, 256) : 0;
        long priv[256], pss[256];
        size_t m = 0;
        for (size_t i = 0; i < nkids; i++)
            if (bench_smaps_kib(kids[i], &priv[m], &pss[m]) == 0)
                m++;
        if (m > 0) {
            qsort(priv, m, sizeof *priv, compare_long);
            qsort(pss, m, sizeof *pss, compare_long);
            out->worker_private_kib = priv[m / 2];
            out->worker_pss_kib = pss[m / 2];
        }
    }
    for (int i = 0; i < loaded; i++)
        bb_block_free(blocks[i]);
    bb_block_free(first);
    free(blocks);
    return rc;
}
