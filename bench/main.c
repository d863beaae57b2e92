/* main.c: the program blockbox-bench (also `blockbox bench`, which runs it): the
 * benchmarks against their in-run baselines (bench.c). */
#include "bench.h"

int main(int argc, char **argv) { return bb_bench_main(argc, argv); }
