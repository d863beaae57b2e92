/* stats.h: the clock and percentiles of the standalone benchmarks (bench_modal,
 * bench_serve), which keep their samples as microseconds in plain arrays, and the
 * options every benchmark program takes (blockbox bench too). */
#ifndef BB_BENCH_STATS_H
#define BB_BENCH_STATS_H

#include <math.h>
#include <string.h>
#include <time.h>

/* Now on this clock, in microseconds. */
static inline double bench_clock_us(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* qsort order of doubles. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank p-th percentile of n sorted values. */
static inline double bench_pct(const double *v, int n, double p)
{
    int i = (int)ceil(p / 100.0 * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* The options every benchmark takes: --quick (the short plan) and --json (the report as
 * JSON). 1 when arg is one of them (its flag is set), 0 for anything else. */
static inline int bench_mode_option(const char *arg, int *quick, int *json)
{
    if (strcmp(arg, "--quick") == 0)
        *quick = 1;
    else if (strcmp(arg, "--json") == 0)
        *json = 1;
    else
        return 0;
    return 1;
}

#endif
