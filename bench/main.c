/* main.c: bin/blockbox-bench, the benchmark as a program of its own (the same code as
 * `blockbox bench`), so it can be profiled without the rest of the CLI. */
#include "bench.h"

int main(int argc, char **argv) { return bb_bench_main(argc, argv); }
