/* bench.c: `blockbox bench [--quick] [--json]`: runs every scenario and baseline in one
 * process, side by side, and reports percentiles, ratios and the issue-4 targets. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_internal.h"
#include "stats.h"

enum { EXIT_OK = 0, EXIT_USAGE = 2, EXIT_BACKEND = 4 };

static const bench_plan quick_plan = {
    .quick = 1, .warmup_runs = 10, .live_runs = 400, .live_rounds = 2, .fresh_runs = 40, .fresh_paced_runs = 10,
    .image_runs = 10, .throughput_seconds = 1.0, .throughput_rounds = 2, .python_fresh_runs = 3, .fork_wait_runs = 50,
    .pipe_rtt_runs = 1000, .inproc_runs = 300, .inproc_image_runs = 10, .memory_instances = 50,
    .memcpy_runs = 200, .numpy_runs = 20, .frame_runs = 10, .frame_data_runs = 2, .frame_4k_runs = 2,
    .fps_seconds = 0.5, .frame_budget_s = 1.0,
};

static const bench_plan full_plan = {
    .quick = 0, .warmup_runs = 50, .live_runs = 4000, .live_rounds = 8, .fresh_runs = 1000, .fresh_paced_runs = 200,
    .image_runs = 100, .throughput_seconds = 6.0, .throughput_rounds = 6, .python_fresh_runs = 20, .fork_wait_runs = 1000,
    .pipe_rtt_runs = 10000, .inproc_runs = 4000, .inproc_image_runs = 100, .memory_instances = 50,
    .memcpy_runs = 2000, .numpy_runs = 300, .frame_runs = 500, .frame_data_runs = 50,
    .frame_4k_runs = 100, .fps_seconds = 5.0, .frame_budget_s = 30.0,
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: blockbox bench [--quick] [--json]\n"
            "  Measures, in one run: a trivial block through a live instance, a fresh worker\n"
            "  per run (max_inputs=1), a 1920x1080x3 image invert, throughput with one instance\n"
            "  per core; and the baselines: fresh python3 with numpy+cv2, a bare fork+wait of a\n"
            "  process as large as the zygote, in-process exec, a pipe round trip.\n"
            "  --quick  a few hundred runs (seconds), for CI\n"
            "  --json   one JSON object: scenarios, ratios, targets, memory, machine\n");
}

/* ---- results ------------------------------------------------------------------ */

typedef struct bench_report {
    cJSON *root, *scenarios, *ratios, *targets, *machine, *memory;
} bench_report;

static double round1(double x) { return round(x * 10.0) / 10.0; }
static double round3(double x) { return round(x * 1000.0) / 1000.0; }

/* Summarizes samples into scenarios[name]; returns the object (NULL when out of memory). */
static cJSON *add_scenario(bench_report *r, const char *name, const char *what, bench_samples *s,
                           bench_summary *sum)
{
    bench_samples_summarize(s, sum);
    cJSON *o = cJSON_AddObjectToObject(r->scenarios, name);
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "what", what);
    cJSON_AddNumberToObject(o, "runs", (double)sum->n);
    cJSON_AddNumberToObject(o, "p50_us", round1(sum->p50_us));
    cJSON_AddNumberToObject(o, "p90_us", round1(sum->p90_us));
    cJSON_AddNumberToObject(o, "p99_us", round1(sum->p99_us));
    cJSON_AddNumberToObject(o, "mean_us", round1(sum->mean_us));
    cJSON_AddNumberToObject(o, "min_us", round1(sum->min_us));
    cJSON_AddNumberToObject(o, "max_us", round1(sum->max_us));
    return o;
}

/* A timed run's samples, as a scenario when the run went well (rc 0), freed either way;
 * the scenario's object, or NULL. */
static cJSON *keep_scenario(bench_report *r, int rc, const char *name, const char *what,
                            bench_samples *s, bench_summary *sum)
{
    cJSON *o = rc == 0 ? add_scenario(r, name, what, s, sum) : NULL;
    bench_samples_free(s);
    return o;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

static void add_ratio(bench_report *r, const char *name, double value)
{
    cJSON_AddNumberToObject(r->ratios, name, round3(value));
}

static void add_target(bench_report *r, const char *name, const char *what, double value, const char *op,
                       double limit)
{
    cJSON *o = cJSON_AddObjectToObject(r->targets, name);
    if (!o)
        return;
    int met = strcmp(op, "<=") == 0 ? value <= limit : value >= limit;
    cJSON_AddStringToObject(o, "what", what);
    cJSON_AddNumberToObject(o, "value", round3(value));
    cJSON_AddStringToObject(o, "op", op);
    cJSON_AddNumberToObject(o, "limit", limit);
    cJSON_AddBoolToObject(o, "met", met);
}

static void add_machine(bench_report *r, const bench_plan *plan, bb_executor *ex)
{
    cJSON *m = r->machine;
    cJSON_AddStringToObject(m, "mode", plan->quick ? "quick" : "full");
    cJSON_AddNumberToObject(m, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    struct utsname u;
    if (uname(&u) == 0) {
        cJSON_AddStringToObject(m, "kernel", u.release);
        cJSON_AddStringToObject(m, "arch", u.machine);
    }
    FILE *f = fopen("/proc/cpuinfo", "re");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon += strspn(colon + 1, " \t") + 1;
                colon[strcspn(colon, "\n")] = '\0';
                cJSON_AddStringToObject(m, "cpu", colon);
            }
            break;
        }
    if (f)
        fclose(f);
    cJSON_AddStringToObject(m, "blockbox_version", bb_version());
    char *describe = ex ? bb_executor_describe(ex) : NULL;
    cJSON *backend = describe ? cJSON_Parse(describe) : NULL;
    free(describe);
    if (backend)
        cJSON_AddItemToObject(m, "backend", backend);
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) && strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm))
        cJSON_AddStringToObject(m, "date", when);
}

/* ---- the run ------------------------------------------------------------------- */

typedef struct bench_state {
    const bench_plan *plan;
    int verbose;   /* progress on stderr */
    bench_report report;
    bb_executor *ex;
} bench_state;

static void progress(const bench_state *b, const char *what)
{
    if (b->verbose)
        fprintf(stderr, "blockbox bench: %s\n", what);
}

/* Times one block in `rounds` series of runs/rounds calls, each round with an
 * instance of its own (the scheduler places each worker anew), and summarizes them
 * together; the p50 of each round is kept beside the summary. */
static int block_scenario(bench_state *b, const char *name, const char *what, const char *code,
                          int max_inputs, const char *inputs, int runs, int rounds, long long pause_ns,
                          int (*check)(const char *, bb_error **), bench_summary *sum, bb_error **err)
{
    progress(b, name);
    bench_samples all = {0};
    cJSON *round_p50 = cJSON_CreateArray();
    int rc = 0;
    for (int round = 0; rc == 0 && round < rounds; round++) {
        bb_block *blk = bench_load(b->ex, code, max_inputs, err);
        if (!blk) {
            rc = -1;
            break;
        }
        bench_samples s = {0};
        rc = bench_series(blk, inputs, runs / rounds, b->plan->warmup_runs, pause_ns, check, &s, err);
        bb_block_free(blk);
        for (size_t k = 0; rc == 0 && k < s.n; k++)
            rc = bench_samples_add(&all, s.ns[k], err);
        bench_summary one;
        bench_samples_summarize(&s, &one);
        cJSON_AddItemToArray(round_p50, cJSON_CreateNumber(round1(one.p50_us)));
        bench_samples_free(&s);
    }
    cJSON *o = rc == 0 ? add_scenario(&b->report, name, what, &all, sum) : NULL;
    if (rc == 0 && !o)
        rc = bench_fail(err, BB_ERR_INTERNAL, "out of memory");
    if (o && rounds > 1) {
        cJSON_AddItemToObject(o, "p50_us_per_round", round_p50);
        round_p50 = NULL;
    }
    cJSON_Delete(round_p50);
    bench_samples_free(&all);
    return rc;
}

typedef struct bench_numbers {
    bench_summary pipe, pipe_cross, python_fresh, fork_wait, fork_mirror, inproc, inproc_image;
    bench_summary live, fresh, fresh_paced, image, tput_single, tput_all;
    bench_summary memcpy_frame, numpy_invert, frame_data, frame_raw, frame_4k, fps_lat;
    double fps;
    double rps_single, rps_all;
    int threads;
    long zygote_rss_kib, fork_process_kib;
    bench_memory memory;
} bench_numbers;

/* The frame scenarios of issue 12, each on a live instance of the invert block. */
static int run_frames(bench_state *b, bench_numbers *n, bb_error **err)
{
    const bench_plan *plan = b->plan;
    bench_report *r = &b->report;
    bench_frame frame, big;
    if (bench_frame_make(&frame, BENCH_IMAGE_H, BENCH_IMAGE_W, err) < 0)
        return -1;
    bench_samples s = {0};
    int as_buffer = 0;
    int warmup = plan->quick ? 1 : 5;   /* 6-25 MB per call: few warm-ups */
    bb_block *blk = bench_load(b->ex, bench_frame_code, 0, err);
    int rc = blk ? 0 : -1;
    if (rc == 0) {
        progress(b, "frame_1080p_raw");
        rc = bench_frame_raw_series(blk, &frame, plan->frame_runs, warmup, plan->frame_budget_s, &s, &as_buffer,
                                    err);
    }
    if (rc == 0) {
        cJSON *o = add_scenario(r, "frame_1080p_raw",
                                "1920x1080x3 uint8 frame as a buffer (bb_block_run_buffers) into a live 255 - f "
                                "block, the inverted frame back as a result buffer, checked byte for byte",
                                &s, &n->frame_raw);
        /* "data": the driver returned the frame in the JSON data form, not as a buffer */
        cJSON_AddStringToObject(o, "output_form", as_buffer ? "buffer" : "data");
    }
    bench_samples_free(&s);
    if (rc == 0) {
        progress(b, "frames_per_second");
        rc = bench_frames_per_second(blk, &frame, plan->fps_seconds, &s, &n->fps, err);
    }
    if (rc == 0) {
        cJSON *o = add_scenario(r, "frames_per_second",
                                "frame_1080p_raw back to back on one instance for a fixed time", &s, &n->fps_lat);
        cJSON_AddNumberToObject(o, "frames_per_s", round1(n->fps));
        cJSON_AddNumberToObject(o, "runs_per_s", round1(n->fps));
    }
    bench_samples_free(&s);

    /* The same frame in the JSON data form (base64 inside the inputs, bb_block_run). */
    size_t len = 0;
    char *inputs = NULL;
    if (rc == 0) {
        progress(b, "frame_1080p_json_data");
        inputs = bench_frame_data_inputs(&frame, &len, err);
        rc = inputs ? bench_frame_data_series(blk, &frame, inputs, plan->frame_data_runs, warmup,
                                              plan->frame_budget_s, &s, err) : -1;
    }
    if (rc == 0)
        add_scenario(r, "frame_1080p_json_data",
                     "the frame_1080p_raw call with the ndarray in the JSON data form (base64) instead of a "
                     "buffer; bb_block_run, live instance", &s, &n->frame_data);
    bench_samples_free(&s);
    free(inputs);
    bench_frame_free(&frame);

    if (rc == 0 && bench_frame_make(&big, BENCH_4K_H, BENCH_4K_W, err) == 0) {
        progress(b, "frame_4k_raw");
        /* no warm-up in --quick: the instance is warm from the 1080p calls */
        rc = bench_frame_raw_series(blk, &big, plan->frame_4k_runs, plan->quick ? 0 : warmup, plan->frame_budget_s,
                                    &s, &as_buffer, err);
        if (rc == 0)
            add_scenario(r, "frame_4k_raw", "as frame_1080p_raw with a 3840x2160x3 frame (24.9 MB)", &s,
                         &n->frame_4k);
        bench_samples_free(&s);
        bench_frame_free(&big);
    } else if (rc == 0) {
        rc = -1;
    }
    bb_block_free(blk);
    return rc;
}

static int run_all(bench_state *b, bench_numbers *n, bb_error **err)
{
    const bench_plan *plan = b->plan;
    bench_report *r = &b->report;
    bench_samples s = {0}, s2 = {0};
    int rc;

    /* Baselines that need no executor: nothing else runs while they are timed. */
    progress(b, "pipe_rtt");
    rc = bench_pipe_rtt(plan, -1, -1, &s, err);
    keep_scenario(r, rc, "pipe_rtt", "64-byte message to a child process and back through two pipes", &s,
                  &n->pipe);
    if (rc < 0)
        return -1;
    if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
        progress(b, "pipe_rtt_cross_cpu");
        rc = bench_pipe_rtt(plan, 0, 1, &s, err);
        keep_scenario(r, rc, "pipe_rtt_cross_cpu",
                      "pipe_rtt with the two processes pinned to different CPUs (cross-CPU wake-ups)", &s,
                      &n->pipe_cross);
        if (rc < 0)
            return -1;
    }

    progress(b, "python_fresh");
    rc = bench_python_fresh(plan, &s, err);
    keep_scenario(r, rc, "python_fresh", "posix_spawn /usr/bin/python3 -c 'import numpy, cv2' and wait", &s,
                  &n->python_fresh);
    if (rc < 0)
        return -1;

    progress(b, "in_process");
    bench_samples s3 = {0};
    rc = bench_in_process(plan, &s, &s2, &s3, err);
    if (rc == 0) {
        add_scenario(r, "numpy_invert_in_process",
                     "255 - f on a 1920x1080x3 uint8 frame inside one python3 (numpy's own time)", &s3,
                     &n->numpy_invert);
        add_scenario(r, "in_process",
                     "Runtime().handle_bytes(envelope) of the trivial block inside one python3, no isolation",
                     &s, &n->inproc);
        add_scenario(r, "in_process_image",
                     "Runtime().handle_bytes(envelope) of the image invert block inside one python3, "
                     "no isolation (decode + invert + encode)",
                     &s2, &n->inproc_image);
    }
    bench_samples_free(&s);
    bench_samples_free(&s2);
    bench_samples_free(&s3);
    if (rc < 0)
        return -1;

    bench_frame frame;
    if (bench_frame_make(&frame, BENCH_IMAGE_H, BENCH_IMAGE_W, err) < 0)
        return -1;
    progress(b, "memcpy_frame");
    rc = bench_memcpy_frame(plan, &frame, &s, err);
    keep_scenario(r, rc, "memcpy_frame", "one memcpy of a 1920x1080x3 uint8 frame (6.2 MB)", &s, &n->memcpy_frame);
    bench_frame_free(&frame);
    if (rc < 0)
        return -1;

    progress(b, "starting the local executor");
    b->ex = bench_executor_new(err);
    if (!b->ex)
        return -1;
    /* A first block makes sure the zygote and a spare are up before anything is timed. */
    bb_block *first = bench_load(b->ex, bench_trivial_code, 0, err);
    if (!first)
        return -1;
    bb_block_free(first);
    usleep(200 * 1000);

    pid_t zygote = bench_zygote_pid(b->ex);
    n->zygote_rss_kib = zygote > 0 ? bench_rss_kib(zygote) : -1;
    if (n->zygote_rss_kib <= 0)
        return bench_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "cannot read the zygote's RSS (pid %d)", (int)zygote);

    progress(b, "fork_wait");
    rc = bench_fork_wait(plan, n->zygote_rss_kib, &s, &n->fork_process_kib, err);
    cJSON *fork_o = keep_scenario(r, rc, "fork_wait",
                                  "fork + _exit + waitpid from a process grown to the zygote's RSS", &s,
                                  &n->fork_wait);
    if (fork_o)
        cJSON_AddNumberToObject(fork_o, "process_rss_kib", (double)n->fork_process_kib);
    if (rc < 0)
        return -1;

    progress(b, "fork_wait_mirror");
    long vmas = 0, mirror_kib = 0;
    rc = bench_fork_wait_mirror(plan, zygote, &s, &vmas, &mirror_kib, err);
    cJSON *mirror_o = keep_scenario(r, rc, "fork_wait_mirror",
                                    "fork + _exit + waitpid after mapping what the zygote maps (its files, "
                                    "its anonymous memory)", &s, &n->fork_mirror);
    if (mirror_o) {
        cJSON_AddNumberToObject(mirror_o, "mappings", (double)vmas);
        cJSON_AddNumberToObject(mirror_o, "process_rss_kib", (double)mirror_kib);
    }
    if (rc < 0)
        return -1;

    if (block_scenario(b, "live_instance", "trivial block, one live instance (max_inputs 0), bb_block_run",
                       bench_trivial_code, 0, bench_trivial_inputs, plan->live_runs, plan->live_rounds, 0,
                       bench_check_trivial, &n->live, err) < 0)
        return -1;
    if (block_scenario(b, "fresh_worker",
                       "trivial block, max_inputs=1: a fresh jailed worker per run, runs back to back",
                       bench_trivial_code, 1, bench_trivial_inputs, plan->fresh_runs, 1, 0,
                       bench_check_trivial, &n->fresh, err) < 0)
        return -1;
    /* Paced: long enough between runs for the keeper to have a spare ready. */
    long long pause = (long long)(n->fresh.p90_us * 2000.0) + 2000000LL;
    if (pause > 100000000LL)
        pause = 100000000LL;
    if (block_scenario(b, "fresh_worker_paced",
                       "as fresh_worker, with a pause between runs so a pre-forked spare is ready",
                       bench_trivial_code, 1, bench_trivial_inputs, plan->fresh_paced_runs, 1, pause,
                       bench_check_trivial, &n->fresh_paced, err) < 0)
        return -1;
    cJSON_AddNumberToObject(cJSON_GetObjectItem(r->scenarios, "fresh_worker_paced"), "pause_us",
                            round1((double)pause / 1000.0));

    size_t image_len;
    char *image_inputs = bench_image_inputs(&image_len, err);
    if (!image_inputs)
        return -1;
    rc = block_scenario(b, "image_1080p",
                        "1920x1080x3 uint8 ndarray (data form) in, cv2.bitwise_not, ndarray out; live instance",
                        bench_image_code, 0, image_inputs, plan->image_runs, 1, 0, bench_check_image, &n->image,
                        err);
    free(image_inputs);
    if (rc < 0)
        return -1;

    if (run_frames(b, n, err) < 0)
        return -1;

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    n->threads = cores > 0 ? (int)cores : 1;
    /* Rounds alternate one instance and one per core, so load from elsewhere on the
     * host falls on both alike; the scaling is the ratio of the totals. */
    bench_samples lat_one = {0}, lat_all = {0};
    long long runs_one = 0, runs_all = 0;
    double secs_one = 0, secs_all = 0;
    cJSON *round_ratios = cJSON_CreateArray();
    int rounds = plan->throughput_rounds;
    for (int round = 0; rc == 0 && round < rounds; round++) {
        bench_throughput one = {0}, all = {0};
        progress(b, "throughput: one instance, then one per core");
        rc = bench_throughput_run(b->ex, 1, plan->throughput_seconds / rounds, &one, err);
        if (rc == 0)
            rc = bench_throughput_run(b->ex, n->threads, plan->throughput_seconds / rounds, &all, err);
        for (size_t k = 0; rc == 0 && k < one.latencies.n; k++)
            rc = bench_samples_add(&lat_one, one.latencies.ns[k], err);
        for (size_t k = 0; rc == 0 && k < all.latencies.n; k++)
            rc = bench_samples_add(&lat_all, all.latencies.ns[k], err);
        if (rc == 0) {
            runs_one += one.runs;
            secs_one += one.seconds;
            runs_all += all.runs;
            secs_all += all.seconds;
            cJSON_AddItemToArray(round_ratios, cJSON_CreateNumber(round3(ratio(all.runs_per_s, one.runs_per_s))));
        }
        bench_samples_free(&one.latencies);
        bench_samples_free(&all.latencies);
    }
    if (rc == 0) {
        n->rps_single = secs_one > 0 ? (double)runs_one / secs_one : 0;
        n->rps_all = secs_all > 0 ? (double)runs_all / secs_all : 0;
        cJSON *o = add_scenario(r, "throughput_single",
                                "trivial block, one instance on one thread, for a fixed time", &lat_one,
                                &n->tput_single);
        cJSON_AddNumberToObject(o, "threads", 1);
        cJSON_AddNumberToObject(o, "runs_per_s", round1(n->rps_single));
        o = add_scenario(r, "throughput_per_core",
                         "trivial block, one instance per core, each on its own thread, for a fixed time",
                         &lat_all, &n->tput_all);
        cJSON_AddNumberToObject(o, "threads", n->threads);
        cJSON_AddNumberToObject(o, "runs_per_s", round1(n->rps_all));
        cJSON_AddNumberToObject(o, "single_instance_runs_per_s", round1(n->rps_single));
        cJSON_AddItemToObject(o, "scaling_per_round", round_ratios);
        round_ratios = NULL;
    }
    cJSON_Delete(round_ratios);
    bench_samples_free(&lat_one);
    bench_samples_free(&lat_all);
    if (rc < 0)
        return -1;

    progress(b, "memory");
    if (bench_memory_run(b->ex, plan, &n->memory, err) < 0)
        return -1;
    cJSON *m = r->memory;
    cJSON_AddNumberToObject(m, "instances", n->memory.instances);
    cJSON_AddNumberToObject(m, "host_rss_before_kib", (double)n->memory.rss_before_kib);
    cJSON_AddNumberToObject(m, "host_rss_after_kib", (double)n->memory.rss_after_kib);
    cJSON_AddNumberToObject(m, "host_kib_per_instance", round1(n->memory.host_kib_per_instance));
    cJSON_AddNumberToObject(m, "host_heap_bytes_per_instance", round1(n->memory.heap_bytes_per_instance));
    cJSON_AddNumberToObject(m, "host_fds_per_instance", round1(n->memory.fds_per_instance));
    cJSON_AddNumberToObject(m, "zygote_rss_kib", (double)n->zygote_rss_kib);
    cJSON_AddNumberToObject(m, "zygote_rss_kib_with_instances", (double)n->memory.zygote_rss_kib);
    cJSON_AddNumberToObject(m, "worker_private_kib", (double)n->memory.worker_private_kib);
    cJSON_AddNumberToObject(m, "worker_pss_kib", (double)n->memory.worker_pss_kib);
    return 0;
}

static void add_ratios_and_targets(bench_report *r, const bench_numbers *n)
{
    double inproc_pipe = n->inproc.p50_us + n->pipe.p50_us;
    double live_over = ratio(n->live.p50_us, inproc_pipe);
    double fresh_over_fork = ratio(n->fresh.p50_us, n->fork_wait.p50_us);
    double paced_over_fork = ratio(n->fresh_paced.p50_us, n->fork_wait.p50_us);
    double speedup = ratio(n->python_fresh.p50_us, n->fresh.p50_us);
    double image_over = ratio(n->image.p50_us, n->inproc_image.p50_us);
    double scaling = ratio(n->rps_all, n->rps_single);
    add_ratio(r, "live_over_in_process_plus_pipe", live_over);
    add_ratio(r, "live_over_in_process", ratio(n->live.p50_us, n->inproc.p50_us));
    add_ratio(r, "fresh_over_fork_wait", fresh_over_fork);
    add_ratio(r, "fresh_paced_over_fork_wait", paced_over_fork);
    add_ratio(r, "fresh_over_fork_wait_mirror", ratio(n->fresh.p50_us, n->fork_mirror.p50_us));
    add_ratio(r, "fresh_paced_over_fork_wait_mirror", ratio(n->fresh_paced.p50_us, n->fork_mirror.p50_us));
    add_ratio(r, "live_over_in_process_plus_cross_cpu_pipe",
              ratio(n->live.p50_us, n->inproc.p50_us + n->pipe_cross.p50_us));
    add_ratio(r, "python_fresh_over_fresh", speedup);
    add_ratio(r, "python_fresh_over_live", ratio(n->python_fresh.p50_us, n->live.p50_us));
    add_ratio(r, "image_over_in_process_image", image_over);
    add_ratio(r, "throughput_scaling", scaling);
    add_ratio(r, "numpy_invert_over_memcpy_frame", ratio(n->numpy_invert.p50_us, n->memcpy_frame.p50_us));
    add_ratio(r, "frame_json_data_over_memcpy_frame", ratio(n->frame_data.p50_us, n->memcpy_frame.p50_us));
    double raw_over_memcpy = ratio(n->frame_raw.p50_us, n->memcpy_frame.p50_us);
    add_ratio(r, "frame_raw_over_memcpy_frame", raw_over_memcpy);
    add_ratio(r, "frame_raw_over_numpy_invert", ratio(n->frame_raw.p50_us, n->numpy_invert.p50_us));
    add_ratio(r, "frame_json_data_over_frame_raw", ratio(n->frame_data.p50_us, n->frame_raw.p50_us));
    add_ratio(r, "frame_4k_raw_over_frame_1080p_raw", ratio(n->frame_4k.p50_us, n->frame_raw.p50_us));

    add_target(r, "a_live_p50_us", "(a) live instance p50, microseconds", n->live.p50_us, "<=", 150);
    add_target(r, "a_live_over_in_process_plus_pipe", "(a) live p50 / (in_process p50 + pipe_rtt p50)",
               live_over, "<=", 3);
    add_target(r, "b_fresh_over_fork_wait", "(b) fresh_worker p50 / fork_wait p50", fresh_over_fork, "<=", 1.3);
    add_target(r, "b_python_fresh_over_fresh", "(b) python_fresh p50 / fresh_worker p50 (speed-up)", speedup,
               ">=", 30);
    add_target(r, "c_image_over_in_process", "(c) image_1080p p50 / in_process_image p50", image_over, "<=",
               1.5);
    add_target(r, "d_throughput_scaling", "(d) runs/s with one instance per core / runs/s with one instance",
               scaling, ">=", n->threads >= 2 ? 1.7 : 1.0);
    add_target(r, "frame_raw_p50_ms", "issue 12: frame_1080p_raw p50, milliseconds", n->frame_raw.p50_us / 1000.0,
               "<=", 3);
    add_target(r, "frame_raw_over_memcpy_frame", "issue 12: frame_1080p_raw p50 / memcpy_frame p50", raw_over_memcpy,
               "<=", 20);
    add_target(r, "frame_json_data_p50_ms", "issue 12: frame_1080p_json_data p50, milliseconds",
               n->frame_data.p50_us / 1000.0, "<=", 25);
    add_target(r, "host_kib_per_instance", "host-side memory per loaded block instance, KiB",
               n->memory.host_kib_per_instance, "<=", 1024);
}

/* ---- output ---------------------------------------------------------------------- */

static void print_table(const bench_report *r)
{
    printf("%-22s %10s %10s %10s %10s %7s\n", "scenario", "p50 us", "p90 us", "p99 us", "mean us", "runs");
    const cJSON *s;
    cJSON_ArrayForEach(s, r->scenarios) {
        printf("%-22s %10.1f %10.1f %10.1f %10.1f %7.0f", s->string,
               cJSON_GetObjectItem(s, "p50_us")->valuedouble, cJSON_GetObjectItem(s, "p90_us")->valuedouble,
               cJSON_GetObjectItem(s, "p99_us")->valuedouble, cJSON_GetObjectItem(s, "mean_us")->valuedouble,
               cJSON_GetObjectItem(s, "runs")->valuedouble);
        const cJSON *rps = cJSON_GetObjectItem(s, "runs_per_s");
        if (cJSON_IsNumber(rps))
            printf("  %.0f runs/s", rps->valuedouble);
        printf("\n");
    }
    printf("\nratios\n");
    cJSON_ArrayForEach(s, r->ratios)
        printf("  %-34s %10.3f\n", s->string, s->valuedouble);
    printf("\ntargets\n");
    cJSON_ArrayForEach(s, r->targets)
        printf("  %-34s %10.3f %s %-8g %s\n", s->string, cJSON_GetObjectItem(s, "value")->valuedouble,
               cJSON_GetObjectItem(s, "op")->valuestring, cJSON_GetObjectItem(s, "limit")->valuedouble,
               cJSON_IsTrue(cJSON_GetObjectItem(s, "met")) ? "met" : "MISSED");
    printf("\nmemory\n");
    cJSON_ArrayForEach(s, r->memory)
        printf("  %-34s %10.1f\n", s->string, s->valuedouble);
}

int bb_bench_main(int argc, char **argv)
{
    int quick = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (bench_mode_option(argv[i], &quick, &json))
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else {
            fprintf(stderr, "blockbox bench: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    bench_state b = {.plan = quick ? &quick_plan : &full_plan, .verbose = !json || isatty(2)};
    bench_report *r = &b.report;
    r->root = cJSON_CreateObject();
    r->scenarios = cJSON_AddObjectToObject(r->root, "scenarios");
    r->ratios = cJSON_AddObjectToObject(r->root, "ratios");
    r->targets = cJSON_AddObjectToObject(r->root, "targets");
    r->memory = cJSON_AddObjectToObject(r->root, "memory");
    r->machine = cJSON_AddObjectToObject(r->root, "machine");
    if (!r->machine) {
        cJSON_Delete(r->root);
        fprintf(stderr, "blockbox bench: out of memory\n");
        return EXIT_BACKEND;
    }
    bench_numbers n;
    memset(&n, 0, sizeof n);
    bb_error *err = NULL;
    int rc = run_all(&b, &n, &err);
    int status = EXIT_OK;
    if (rc < 0) {
        fprintf(stderr, "blockbox bench: %s\n", err ? bb_error_message(err) : "failed");
        status = EXIT_BACKEND;
    } else {
        add_ratios_and_targets(r, &n);
        add_machine(r, b.plan, b.ex);
        cJSON_AddNumberToObject(r->memory, "fork_wait_process_rss_kib", (double)n.fork_process_kib);
        if (json) {
            char *text = cJSON_Print(r->root);
            if (text)
                printf("%s\n", text);
            else
                status = EXIT_BACKEND;
            free(text);
        } else {
            print_table(r);
        }
    }
    bb_error_free(err);
    bb_executor_free(b.ex);
    cJSON_Delete(r->root);
    fflush(stdout);
    return status;
}
