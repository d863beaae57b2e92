/* bench_internal.h: what the files of `blockbox bench` share: latency samples and
 * their percentiles, the run plan (quick or full), the baselines and the scenarios. */
#ifndef BB_BENCH_INTERNAL_H
#define BB_BENCH_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "blockbox.h"

/* Sets *err (if it is not set yet) to a new error of the public API's (bb_error_new) and
 * returns -1. */
int bench_fail(bb_error **err, bb_error_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* 0 for a result that succeeded; else -1 with *err: "<what> failed: <type>: <message>"
 * with the run's own kind (out of memory when res is NULL). */
int bench_result_failed(const bb_result *res, const char *what, bb_error **err);

/* ---- samples ------------------------------------------------------------- */

typedef struct bench_samples {
    long long *ns;   /* one latency per run, in nanoseconds */
    size_t n, cap;
} bench_samples;

typedef struct bench_summary {
    size_t n;
    double p50_us, p90_us, p99_us, mean_us, min_us, max_us;
} bench_summary;

long long bench_now_ns(void);
/* 0, or -1 with *err set when out of memory. */
int bench_samples_add(bench_samples *s, long long ns, bb_error **err);
/* Sorts the samples and fills out (nearest-rank percentiles); all zero when empty. */
void bench_samples_summarize(bench_samples *s, bench_summary *out);
void bench_samples_free(bench_samples *s);

/* ---- the plan ------------------------------------------------------------ */

typedef struct bench_plan {
    int quick;
    int warmup_runs;          /* untimed runs before each timed series */
    int live_runs;            /* (a), in total */
    int live_rounds;          /* (a) split over this many instances */
    int fresh_runs;           /* (b), back to back */
    int fresh_paced_runs;     /* (b) with a pause, so a spare worker is ready */
    int image_runs;           /* (c) */
    double throughput_seconds;/* (d), per configuration, split over the rounds */
    int throughput_rounds;    /* alternating one instance / one per core */
    int python_fresh_runs;
    int fork_wait_runs;
    int pipe_rtt_runs;
    int inproc_runs;          /* in-process trivial block */
    int inproc_image_runs;    /* in-process image invert */
    int memory_instances;     /* instances loaded to measure host memory per instance */
    int memcpy_runs;          /* memcpy of a 1080p frame */
    int numpy_runs;           /* in-process numpy 255 - f */
    int frame_runs;           /* 1080p frame through the binary path */
    int frame_data_runs;      /* the same in the JSON data form */
    int frame_4k_runs;        /* a 4K frame through the binary path */
    double fps_seconds;       /* frames per second on one instance, for this long */
    double frame_budget_s;    /* a frame series stops past this (after one timed run); 0: none */
} bench_plan;

/* ---- process facts --------------------------------------------------------- */

/* VmRSS of a process in KiB (pid 0: this process); -1 if unreadable. */
long bench_rss_kib(pid_t pid);
/* Private (Private_Clean + Private_Dirty) and Pss of a process from smaps_rollup,
 * in KiB; -1 if unreadable. */
int bench_smaps_kib(pid_t pid, long *private_kib, long *pss_kib);
/* Up to max pids of the direct children of pid; returns the count (0 if none). */
size_t bench_children(pid_t pid, pid_t *out, size_t max);
/* Open descriptors of this process; -1 if unknown. */
long bench_open_fds(void);

/* ---- blocks and inputs used by every scenario and by the in-process baseline - */

extern const char bench_trivial_code[];
extern const char bench_trivial_inputs[];
extern const char bench_image_code[];
#define BENCH_IMAGE_H 1080
#define BENCH_IMAGE_W 1920
#define BENCH_IMAGE_C 3
/* The pixel at byte offset i of the test image. */
unsigned char bench_image_byte(size_t i);
/* Builds the inputs JSON {"image": ndarray in the data form}; malloc'd text. */
char *bench_image_inputs(size_t *len, bb_error **err);
/* Checks a trivial block's outputs ({"y": 42}); 0 or -1 with *err. */
int bench_check_trivial(const char *outputs, bb_error **err);
/* Checks an image block's outputs (the inverted image, data form); 0 or -1. */
int bench_check_image(const char *outputs, bb_error **err);

/* ---- baselines (baselines.c) ---------------------------------------------- */

/* A small message (64 bytes) to a child process and back through two pipes; each
 * side pinned to the given CPU, or left to the scheduler where the CPU is -1. */
int bench_pipe_rtt(const bench_plan *plan, int parent_cpu, int child_cpu, bench_samples *out,
                   bb_error **err);
/* posix_spawn `/usr/bin/python3 -c 'import numpy, cv2'` and wait, per call. */
int bench_python_fresh(const bench_plan *plan, bench_samples *out, bb_error **err);
/* fork + _exit + wait from a process grown to target_rss_kib resident. */
int bench_fork_wait(const bench_plan *plan, long target_rss_kib, bench_samples *out,
                    long *grown_to_kib, bb_error **err);
/* fork + _exit + wait from this process after mapping what the zygote maps: each of
 * its file mappings (same file and range, pages read; private pages written) and its
 * anonymous mappings (touched as far as the zygote's). *vmas: mappings mirrored. */
int bench_fork_wait_mirror(const bench_plan *plan, pid_t zygote, bench_samples *out, long *vmas,
                           long *grown_to_kib, bb_error **err);
/* One /usr/bin/python3 helper that imports the runtime and times
 * Runtime().handle_bytes of the very envelopes the C side sends, and numpy's own
 * `255 - f` on a 1080p frame (numpy_invert, plan->numpy_runs). */
int bench_in_process(const bench_plan *plan, bench_samples *trivial, bench_samples *image,
                     bench_samples *numpy_invert, bb_error **err);

/* ---- scenarios through the C API (scenarios.c) ----------------------------- */

/* A new local executor (the environment's settings, mode forced to local). */
bb_executor *bench_executor_new(bb_error **err);
/* Loads a block (max_inputs as given); NULL with *err. */
bb_block *bench_load(bb_executor *ex, const char *code, int max_inputs, bb_error **err);
/* The zygote's pid from bb_executor_describe; -1 if unknown. */
pid_t bench_zygote_pid(bb_executor *ex);

/* Runs `runs` timed calls (after the plan's warm-up) of one block. pause_ns > 0
 * sleeps between calls. check: the output checker. */
int bench_series(bb_block *blk, const char *inputs, int runs, int warmup, long long pause_ns,
                 int (*check)(const char *, bb_error **), bench_samples *out, bb_error **err);

typedef struct bench_throughput {
    int threads;
    long long runs;
    double seconds;
    double runs_per_s;
    bench_samples latencies;
} bench_throughput;

/* `threads` threads, each with its own trivial block instance, for `seconds`. */
int bench_throughput_run(bb_executor *ex, int threads, double seconds, bench_throughput *out,
                         bb_error **err);

typedef struct bench_memory {
    int instances;
    long rss_before_kib, rss_after_kib;
    double host_kib_per_instance;    /* RSS growth of this process / instances */
    double heap_bytes_per_instance;  /* malloc'd bytes in use (mallinfo2) / instances */
    double fds_per_instance;         /* open descriptors / instances (pipes: kernel memory) */
    long zygote_rss_kib;
    long worker_private_kib;   /* median private memory of one loaded worker; -1 unknown */
    long worker_pss_kib;
} bench_memory;

/* Loads plan->memory_instances trivial instances and measures this process's RSS
 * growth, the zygote's RSS and the workers' private memory. */
int bench_memory_run(bb_executor *ex, const bench_plan *plan, bench_memory *out, bb_error **err);

/* ---- frames (frames.c, issue 12) -------------------------------------------- */

#define BENCH_4K_H 2160
#define BENCH_4K_W 3840

/* A uint8 BGR frame (the bench_image_byte pattern) and its inverse, 255 - pixel. */
typedef struct bench_frame {
    int h, w, c;
    size_t bytes;
    unsigned char *pixels, *expected;
} bench_frame;

extern const char bench_frame_code[];   /* def run(self, f): return {"g": 255 - f} */
int bench_frame_make(bench_frame *f, int h, int w, bb_error **err);
void bench_frame_free(bench_frame *f);
/* One memcpy of the frame per sample (into a resident buffer). */
int bench_memcpy_frame(const bench_plan *plan, const bench_frame *f, bench_samples *out, bb_error **err);
/* {"f": ndarray in the data form}; malloc'd text. */
char *bench_frame_data_inputs(const bench_frame *f, size_t *len, bb_error **err);
/* outputs {"g": ndarray, data form} equal to the inverted frame; 0 or -1 with *err. */
int bench_check_frame_data(const bench_frame *f, const char *outputs, bb_error **err);
/* Timed bb_block_run calls with the data-form inputs (outputs checked first and last). */
int bench_frame_data_series(bb_block *blk, const bench_frame *f, const char *inputs, int runs, int warmup,
                            double budget_s, bench_samples *out, bb_error **err);
/* {"f": {"_type": "ndarray", …, "buffer": 0}}; malloc'd text. */
char *bench_frame_raw_inputs(const bench_frame *f, bb_error **err);
/* The "g" output is the inverted frame: a result buffer (*as_buffer 1) or, from a driver
 * that returns no buffers, the data form (*as_buffer 0). */
int bench_check_frame_raw(const bench_frame *f, const bb_result *res, int *as_buffer, bb_error **err);
/* Timed bb_block_run_buffers calls with the frame as buffer 0 (every output checked). A
 * series stops early once budget_s (> 0) has passed and one run is timed (--quick). */
int bench_frame_raw_series(bb_block *blk, const bench_frame *f, int runs, int warmup, double budget_s,
                           bench_samples *out, int *as_buffer, bb_error **err);
/* The same back to back for `seconds`: latencies into out, frames per second into *fps. */
int bench_frames_per_second(bb_block *blk, const bench_frame *f, double seconds, bench_samples *out,
                            double *fps, bb_error **err);

#endif
