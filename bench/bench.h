/* bench.h: the entry of the program blockbox-bench (bench/main.c; `blockbox bench` runs
 * that program): benchmarks compared against baselines in the same run. */
#ifndef BB_BENCH_H
#define BB_BENCH_H

/* argv[0] is the program; the options follow ([--quick] [--json] …). Returns the exit
 * status of the command. */
int bb_bench_main(int argc, char **argv);

#endif
