/* modal_bench.c: measures the modal driver against the HTTPS emulator: client overhead
 * per call (minus the server's own time) and throughput with 32 calls in flight. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockbox.h"
#include "stats.h"
#include "emu.h"

#define THREADS 32


typedef struct series {
    const char *name;
    double *v;
    int n;
} series;

static void report(const series *s, int json)
{
    qsort(s->v, (size_t)s->n, sizeof *s->v, bench_cmp_double);
    if (json)
        printf("{\"metric\":\"%s\",\"unit\":\"us\",\"n\":%d,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f}\n",
               s->name, s->n, bench_pct(s->v, s->n, 50), bench_pct(s->v, s->n, 90), bench_pct(s->v, s->n, 99));
    else
        printf("  %-38s p50 %8.1f us   p90 %8.1f us   p99 %8.1f us   (n=%d)\n", s->name,
               bench_pct(s->v, s->n, 50), bench_pct(s->v, s->n, 90), bench_pct(s->v, s->n, 99), s->n);
}

static const char *ADD = "def run(self, a, b):\n    return {'sum': a + b}\n";
static const char *INPUTS = "{\"a\": 2, \"b\": 40}";

/* ---- baseline: the bare HTTP round trip with plain libcurl -------------- */

static size_t discard(char *p, size_t s, size_t n, void *u) { return s * n; }

/* A POST of a prebuilt envelope with libcurl alone (reuse on or off): the floor the
 * driver stands on. Returns the server-reported time through *server_us. */
static double raw_post(CURL *h, const emu *e, const char *body, int reuse, double *server_us)
{
    struct curl_slist *hdr = NULL;
    char key[128], secret[128];
    snprintf(key, sizeof key, "Modal-Key: %s", e->token_id);
    snprintf(secret, sizeof secret, "Modal-Secret: %s", e->token_secret);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, key);
    hdr = curl_slist_append(hdr, secret);
    curl_easy_setopt(h, CURLOPT_URL, e->url);
    curl_easy_setopt(h, CURLOPT_CAINFO, e->ca);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, reuse ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    double t0 = bench_clock_us(CLOCK_MONOTONIC);
    curl_easy_perform(h);
    double took = bench_clock_us(CLOCK_MONOTONIC) - t0;
    struct curl_header *st = NULL;
    *server_us = 0;
    if (curl_easy_header(h, "X-Emulator-Time-Us", 0, CURLH_HEADER, -1, &st) == CURLHE_OK)
        *server_us = atof(st->value);
    curl_slist_free_all(hdr);
    return took;
}

/* ---- throughput ------------------------------------------------------------ */

typedef struct worker {
    bb_executor *ex;
    int index, calls, ok;
} worker;

static void *throughput_worker(void *p)
{
    worker *w = p;
    char code[128];
    snprintf(code, sizeof code, "def run(self, a):\n    return {'v': a + %d}\n", w->index);
    bb_block_spec spec = {.run_code = code};
    bb_block *b = bb_block_load(w->ex, &spec, NULL);
    for (int i = 0; b && i < w->calls; i++) {
        bb_result *r = bb_block_run(b, "{\"a\": 1}", NULL);
        w->ok += bb_result_ok(r);
        bb_result_free(r);
    }
    bb_block_free(b);
    return NULL;
}

int main(int argc, char **argv)
{
    int quick = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!bench_mode_option(argv[i], &quick, &json)) {
            fprintf(stderr, "usage: bench_modal [--quick] [--json]\n");
            return 2;
        }
    }
    int n = quick ? 300 : 3000, per_thread = quick ? 10 : 100;
    emu e;
    if (emu_start(&e, "wk-bench", "ws-bench", NULL) < 0)
        return 1;
    int failed = 0;
    bb_error *err = NULL;
    bb_config *cfg = emu_config(&e, 20);
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    if (!ex) {
        fprintf(stderr, "executor: %s\n", bb_error_message(err));
        emu_stop(&e);
        return 1;
    }
    bb_block_spec spec = {.run_code = ADD};
    bb_block *blk = bb_block_load(ex, &spec, &err);

    /* 1. per call, one thread: wall time, minus the server's time, and client CPU */
    double *wall = calloc((size_t)n, sizeof *wall), *over = calloc((size_t)n, sizeof *over),
           *cpu = calloc((size_t)n, sizeof *cpu), *server = calloc((size_t)n, sizeof *server);
    for (int i = 0; i < 30; i++)
        bb_result_free(bb_block_run(blk, INPUTS, NULL));   /* warm-up, hash-only from here */
    for (int i = 0; i < n; i++) {
        double c0 = bench_clock_us(CLOCK_THREAD_CPUTIME_ID), t0 = bench_clock_us(CLOCK_MONOTONIC);
        bb_result *r = bb_block_run(blk, INPUTS, NULL);
        double t1 = bench_clock_us(CLOCK_MONOTONIC), c1 = bench_clock_us(CLOCK_THREAD_CPUTIME_ID);
        if (!bb_result_ok(r))
            failed++;
        bb_result_free(r);
        long srv = emu_describe_field(ex, "last_server_time_us");
        wall[i] = t1 - t0;
        server[i] = (double)srv;
        over[i] = wall[i] - (double)srv;
        cpu[i] = c1 - c0;
    }
    long made = emu_describe_field(ex, "connections_made"), reqs = emu_describe_field(ex, "requests");

    /* baselines in the same run: bare libcurl POST of the same envelope */
    double *raw_reuse = calloc((size_t)n, sizeof *raw_reuse), *raw_fresh = calloc((size_t)n, sizeof *raw_fresh);
    char hash[33];
    snprintf(hash, sizeof hash, "%s", bb_block_code_hash(blk));
    char body[512];
    snprintf(body, sizeof body, "{\"code_hash\":\"%s\",\"run_function_name\":\"run\",\"inputs_json\":"
             "\"{\\\"a\\\": 2, \\\"b\\\": 40}\",\"workflow_context\":{},\"runtime_version\":\"1\"}", hash);
    CURL *h = curl_easy_init();
    int nraw = quick ? n / 3 : n / 3;
    for (int i = 0; i < nraw; i++) {
        double srv;
        double t = raw_post(h, &e, body, 1, &srv);
        raw_reuse[i] = t - srv;
    }
    for (int i = 0; i < nraw; i++) {
        double srv;
        double t = raw_post(h, &e, body, 0, &srv);
        raw_fresh[i] = t - srv;
    }
    curl_easy_cleanup(h);

    /* 2. throughput: 32 threads, one block each, calls in flight at once */
    emu_reset(&e);
    cfg = emu_config(&e, 20);
    bb_executor *ex32 = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    pthread_t t[THREADS];
    worker w[THREADS];
    double t0 = bench_clock_us(CLOCK_MONOTONIC);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){ex32, i, per_thread, 0};
        pthread_create(&t[i], NULL, throughput_worker, &w[i]);
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
    }
    double secs = (bench_clock_us(CLOCK_MONOTONIC) - t0) / 1e6;
    long made32 = emu_describe_field(ex32, "connections_made");
    long reqs32 = emu_describe_field(ex32, "requests");
    long emu_conns = emu_stat(&e, "connections");
    if (ok != THREADS * per_thread)
        failed += THREADS * per_thread - ok;

    series s[] = {{"driver call, wall", wall, n},
                  {"emulator's own time (Server-Timing)", server, n},
                  {"client overhead (wall - server)", over, n},
                  {"client CPU per call (this thread)", cpu, n},
                  {"baseline: bare libcurl, reused (- srv)", raw_reuse, nraw},
                  {"baseline: bare libcurl, new TLS (- srv)", raw_fresh, nraw}};
    if (!json)
        printf("modal driver against the emulator (%s, %d calls, loopback TLS 1.3, HTTP/1.1)\n",
               quick ? "quick" : "full", n);
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        report(&s[i], json);
    if (json)
        printf("{\"metric\":\"sequential_connections\",\"requests\":%ld,\"connections\":%ld}\n"
               "{\"metric\":\"throughput_32\",\"calls\":%d,\"seconds\":%.3f,\"calls_per_s\":%.1f,"
               "\"requests\":%ld,\"connections_made\":%ld,\"emulator_connections\":%ld}\n",
               reqs, made, THREADS * per_thread, secs, THREADS * per_thread / secs, reqs32, made32, emu_conns);
    else
        printf("  sequential: %ld requests over %ld connection(s)\n"
               "  throughput, 32 threads x %d calls: %.0f calls/s (%.2f s), %ld requests over %ld "
               "connections (emulator saw %ld)\n",
               reqs, made, per_thread, THREADS * per_thread / secs, secs, reqs32, made32, emu_conns);

    int reuse_ok = made == 1 && made32 <= THREADS + 2;
    if (!reuse_ok)
        fprintf(stderr, "connections were not reused (%ld sequential, %ld for 32 threads)\n", made, made32);
    if (failed)
        fprintf(stderr, "%d calls failed\n", failed);
    bb_block_free(blk);
    bb_executor_free(ex);
    bb_executor_free(ex32);
    emu_stop(&e);
    free(wall), free(over), free(cpu), free(server), free(raw_reuse), free(raw_fresh);
    return failed || !reuse_ok ? 1 : 0;
}
