/* metrics.c: counters of `blockbox serve` in the Prometheus text format (calls by
 * outcome and error type, latency histogram, pool gauges) and the one log line per call. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"

#define N_KINDS (BB_ERR_INTERNAL + 1)
#define N_STATUS 6   /* 200, 400, 401/403, 413, 429, 503 and the rest */

static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25, 0.5, 1, 2.5, 5, 10, 20, 30};
#define N_BUCKETS (sizeof bucket_le / sizeof bucket_le[0])

struct sv_metrics {
    atomic_long by_kind[N_KINDS];     /* calls answered 200, by error kind (BB_OK: success) */
    atomic_long by_status[N_STATUS];
    atomic_long buckets[N_BUCKETS + 1];
    pthread_mutex_t sum_lock;
    double sum_seconds;
    long count;
};

static const int status_codes[N_STATUS] = {200, 400, 401, 413, 429, 503};

static int status_slot(int status)
{
    if (status == 403)
        return 2;
    for (int i = 0; i < N_STATUS; i++)
        if (status_codes[i] == status)
            return i;
    return -1;
}

sv_metrics *sv_metrics_new(void)
{
    sv_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->sum_lock, NULL);
    return m;
}

void sv_metrics_call(sv_metrics *m, int status, bb_error_kind kind, double seconds)
{
    int s = status_slot(status);
    if (s >= 0)
        atomic_fetch_add(&m->by_status[s], 1);
    if (status == 200 && kind >= 0 && kind < N_KINDS)
        atomic_fetch_add(&m->by_kind[kind], 1);
    size_t b = 0;
    while (b < N_BUCKETS && seconds > bucket_le[b])
        b++;
    atomic_fetch_add(&m->buckets[b], 1);
    pthread_mutex_lock(&m->sum_lock);
    m->sum_seconds += seconds;
    m->count++;
    pthread_mutex_unlock(&m->sum_lock);
}

char *sv_metrics_render(sv_metrics *m, sv_pool *p, size_t *len)
{
    sv_buf b = {0};
    sv_buf_puts(&b, "# HELP blockbox_serve_calls_total Execute calls answered with 200, by outcome "
                    "and error type (BlockError: the block's own exception).\n"
                    "# TYPE blockbox_serve_calls_total counter\n");
    for (int k = 0; k < N_KINDS; k++) {
        long v = atomic_load(&m->by_kind[k]);
        if (k == BB_OK)
            sv_buf_printf(&b, "blockbox_serve_calls_total{outcome=\"success\",error_type=\"\"} %ld\n", v);
        else
            sv_buf_printf(&b, "blockbox_serve_calls_total{outcome=\"%s\",error_type=\"%s\"} %ld\n",
                          k == BB_ERR_BLOCK ? "block_error" : "error", bb_error_kind_name(k), v);
    }
    sv_buf_puts(&b, "# HELP blockbox_serve_responses_total Execute calls by HTTP status.\n"
                    "# TYPE blockbox_serve_responses_total counter\n");
    for (int i = 0; i < N_STATUS; i++)
        sv_buf_printf(&b, "blockbox_serve_responses_total{code=\"%d\"} %ld\n",
                      status_codes[i] == 401 ? 401 : status_codes[i], atomic_load(&m->by_status[i]));
    sv_buf_puts(&b, "# HELP blockbox_serve_call_seconds Time from the request to the reply.\n"
                    "# TYPE blockbox_serve_call_seconds histogram\n");
    long cum = 0;
    for (size_t i = 0; i <= N_BUCKETS; i++) {
        cum += atomic_load(&m->buckets[i]);
        if (i < N_BUCKETS)
            sv_buf_printf(&b, "blockbox_serve_call_seconds_bucket{le=\"%g\"} %ld\n", bucket_le[i], cum);
        else
            sv_buf_printf(&b, "blockbox_serve_call_seconds_bucket{le=\"+Inf\"} %ld\n", cum);
    }
    pthread_mutex_lock(&m->sum_lock);
    sv_buf_printf(&b, "blockbox_serve_call_seconds_sum %.6f\nblockbox_serve_call_seconds_count %ld\n",
                  m->sum_seconds, m->count);
    pthread_mutex_unlock(&m->sum_lock);
    sv_pool_stats st;
    sv_pool_stats_get(p, &st);
    sv_buf_printf(&b,
                  "# HELP blockbox_serve_instances Live block instances (workers).\n"
                  "# TYPE blockbox_serve_instances gauge\nblockbox_serve_instances %ld\n"
                  "# HELP blockbox_serve_instances_idle Live instances not running a call.\n"
                  "# TYPE blockbox_serve_instances_idle gauge\nblockbox_serve_instances_idle %ld\n"
                  "# HELP blockbox_serve_instances_loading Instances being loaded (init running).\n"
                  "# TYPE blockbox_serve_instances_loading gauge\nblockbox_serve_instances_loading %ld\n"
                  "# HELP blockbox_serve_running Calls holding a run slot.\n"
                  "# TYPE blockbox_serve_running gauge\nblockbox_serve_running %ld\n"
                  "# HELP blockbox_serve_queue_depth Calls waiting for a run slot or an instance.\n"
                  "# TYPE blockbox_serve_queue_depth gauge\nblockbox_serve_queue_depth %ld\n"
                  "# HELP blockbox_serve_code_entries Blocks whose code is held for hash-only calls.\n"
                  "# TYPE blockbox_serve_code_entries gauge\nblockbox_serve_code_entries %ld\n"
                  "# HELP blockbox_serve_evictions_total Idle instances evicted (LRU).\n"
                  "# TYPE blockbox_serve_evictions_total counter\nblockbox_serve_evictions_total %ld\n"
                  "# HELP blockbox_serve_loads_total Instances loaded.\n"
                  "# TYPE blockbox_serve_loads_total counter\nblockbox_serve_loads_total %ld\n",
                  st.live, st.idle, st.loading, st.running, st.queued, st.code_entries, st.evictions,
                  st.loads);
    return sv_buf_steal(&b, len);
}

void sv_metrics_free(sv_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->sum_lock);
    free(m);
}

static void write_line(const char *text, size_t n)
{
    /* one write(2) per line, so lines of concurrent calls never interleave */
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, text, n);
        if (w <= 0)
            return;
        text += w;
        n -= (size_t)w;
    }
}

static void stamp(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

void sv_log(const char *fmt, ...)
{
    char line[1024], when[40];
    stamp(when, sizeof when);
    int k = snprintf(line, sizeof line, "%s blockbox serve: ", when);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + k, sizeof line - (size_t)k - 1, fmt, ap);
    va_end(ap);
    size_t total = (size_t)k + (n < 0 ? 0 : (size_t)n);
    if (total > sizeof line - 2)
        total = sizeof line - 2;
    line[total++] = '\n';
    write_line(line, total);
}

void sv_log_call(const char *workspace, const char *code_hash, int status, const char *outcome,
                 double seconds)
{
    /* workspace and code_hash were checked ([A-Za-z0-9_-], md5 hex) before they get here */
    sv_log("call workspace=%s block=block-%s status=%d outcome=%s ms=%.3f", workspace,
           code_hash && *code_hash ? code_hash : "-", status, outcome, seconds * 1000.0);
}
