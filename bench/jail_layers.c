/* jail_layers.c: the cost of each jail layer per worker start (before_fork → fork →
 * unshare → after_clone → child_setup → exit → reap → worker_gone), medians over N runs,
 * plus the once-per-zygote costs (netns creation, whole setup). Prints a Markdown table. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jailtest.h"
#include "jail.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int exit_now(void *arg)
{
    (void)arg;
    return 0;
}

typedef struct stats {
    double median, p90, setup_us;
    int ok;
    char err[1200];
} stats;

/* In a fresh process (a zygote of its own): setup once, then `runs` worker starts. */
static stats measure(unsigned keep, int runs)
{
    stats st;
    memset(&st, 0, sizeof st);
    int p[2];
    if (pipe(p) < 0)
        return st;
    pid_t z = fork();
    if (z == 0) {
        close(p[0]);
        stats out;
        memset(&out, 0, sizeof out);
        bb_jail_config c = jt_config();
        c.disable = jt_only(keep) | BB_LAYER_SECCOMP;
        char err[512] = "";
        double t0 = now_us();
        bb_layers *L = bb_layers_zygote_setup(&c, err, sizeof err);
        out.setup_us = now_us() - t0;
        if (!L) {
            snprintf(out.err, sizeof out.err, "%s", err);
        } else if ((bb_layers_active(L) & ~(unsigned)BB_LAYER_SECCOMP) != keep) {
            snprintf(out.err, sizeof out.err, "layer not available here: %s", bb_layers_warnings(L));
        } else {
            double *t = calloc((size_t)runs, sizeof *t);
            int good = 0;
            for (int i = 0; i < runs && t; i++) {
                jt_result r;
                double a = now_us();
                jt_run(L, exit_now, NULL, &r);
                t[i] = now_us() - a;
                if (r.err[0] || !r.exited || r.code != 0) {
                    snprintf(out.err, sizeof out.err, "run %d: %s (exit %d sig %d)", i, r.err, r.code, r.sig);
                    break;
                }
                good++;
            }
            if (good == runs) {
                qsort(t, (size_t)runs, sizeof *t, cmp_double);
                out.median = t[runs / 2];
                out.p90 = t[(runs * 9) / 10 < runs ? (runs * 9) / 10 : runs - 1];
                out.ok = 1;
            }
            free(t);
        }
        bb_layers_free(L);
        _exit(write(p[1], &out, sizeof out) == (ssize_t)sizeof out ? 0 : 1);
    }
    close(p[1]);
    if (read(p[0], &st, sizeof st) != (ssize_t)sizeof st)
        snprintf(st.err, sizeof st.err, "bench process died");
    close(p[0]);
    waitpid(z, NULL, 0);
    return st;
}

/* unshare(CLONE_NEWNET) (as the zygote does once), timed in throwaway children. */
static double netns_cost(int runs)
{
    double *t = calloc((size_t)runs, sizeof *t);
    int n = 0;
    for (int i = 0; i < runs && t; i++) {
        int p[2];
        if (pipe(p) < 0)
            break;
        pid_t c = fork();
        if (c == 0) {
            double a = now_us();
            int flags = CLONE_NEWNET | (geteuid() == 0 ? 0 : CLONE_NEWUSER);
            double d = unshare(flags) == 0 ? now_us() - a : -1;
            _exit(write(p[1], &d, sizeof d) == (ssize_t)sizeof d ? 0 : 1);
        }
        close(p[1]);
        double d = -1;
        if (read(p[0], &d, sizeof d) == (ssize_t)sizeof d && d >= 0)
            t[n++] = d;
        close(p[0]);
        waitpid(c, NULL, 0);
    }
    double m = -1;
    if (n) {
        qsort(t, (size_t)n, sizeof *t, cmp_double);
        m = t[n / 2];
    }
    free(t);
    return m;
}

int main(int argc, char **argv)
{
    int runs = 200, rounds = 3;
    long ballast_mb = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ballast-mb") == 0 && i + 1 < argc)
            ballast_mb = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--runs N] [--rounds R] [--ballast-mb MB]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1)
        runs = 1;
    if (rounds < 1)
        rounds = 1;
    if (geteuid() != 0) {
        printf("jail_bench_layers measures every layer, which takes root here\n");
        return 77;
    }
    /* Ballast: a zygote with numpy and cv2 warm has a few hundred MB mapped, which
     * makes fork() itself dearer; this reproduces that size if asked. */
    if (ballast_mb > 0) {
        size_t len = (size_t)ballast_mb << 20;
        char *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED)
            return 1;
        for (size_t i = 0; i < len; i += 4096)
            b[i] = 1;
    }
    static const struct {
        unsigned keep;
        const char *name;
    } rows[] = {
        {0, "none (fork + pipes + reap)"},
        {BB_LAYER_USERNS, "userns"},
        {BB_LAYER_PIDNS, "pidns"},
        {BB_LAYER_NETNS, "netns (made once per zygote)"},
        {BB_LAYER_MNTNS, "mntns + fs"},
        {BB_LAYER_IPCNS, "ipcns"},
        {BB_LAYER_UTSNS, "utsns"},
        {BB_LAYER_CGROUP, "cgroup"},
        {BB_LAYER_UID, "uid"},
        {BB_LAYER_CAPS, "caps"},
        {BB_LAYER_RLIMITS, "rlimits"},
        {BB_LAYER_ALL & ~(unsigned)BB_LAYER_SECCOMP, "all of the above"},
    };
    printf("Worker start cost per layer: %d runs x %d rounds each, ballast %ld MB, microseconds\n\n", runs,
           rounds, ballast_mb);
    printf("| layer | median µs | p90 µs | + vs none (median) | zygote setup µs |\n|---|---:|---:|---:|---:|\n");
    /* Rounds: every configuration is measured `rounds` times, interleaved, after one
     * warm-up; the table shows the median of the per-round medians (p90: the same). */
    enum { N_ROWS = sizeof rows / sizeof rows[0], MAX_ROUNDS = 9 };
    static stats got[N_ROWS][MAX_ROUNDS];
    if (rounds > MAX_ROUNDS)
        rounds = MAX_ROUNDS;
    (void)measure(0, runs < 20 ? runs : 20);
    int failed = 0;
    for (int round = 0; round < rounds; round++)
        for (size_t i = 0; i < N_ROWS; i++)
            got[i][round] = measure(rows[i].keep, runs);
    double base = 0;
    for (size_t i = 0; i < N_ROWS; i++) {
        double med[MAX_ROUNDS], p90[MAX_ROUNDS], setup[MAX_ROUNDS];
        int ok = 1;
        for (int round = 0; round < rounds; round++) {
            if (!got[i][round].ok) {
                printf("| %s | failed: %s | | | |\n", rows[i].name, got[i][round].err);
                ok = 0;
                failed = 1;
                break;
            }
            med[round] = got[i][round].median;
            p90[round] = got[i][round].p90;
            setup[round] = got[i][round].setup_us;
        }
        if (!ok)
            continue;
        qsort(med, (size_t)rounds, sizeof med[0], cmp_double);
        qsort(p90, (size_t)rounds, sizeof p90[0], cmp_double);
        qsort(setup, (size_t)rounds, sizeof setup[0], cmp_double);
        double m = med[rounds / 2];
        if (i == 0)
            base = m;
        printf("| %s | %.0f | %.0f | %+.0f | %.0f |\n", rows[i].name, m, p90[rounds / 2], m - base,
               setup[rounds / 2]);
    }
    double net = netns_cost(runs < 50 ? runs : 50);
    printf("\nunshare(CLONE_NEWNET) once per zygote: median %.0f µs (over %d runs)\n", net, runs < 50 ? runs : 50);
    return failed;
}
