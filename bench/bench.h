/* bench.h: `blockbox bench`, benchmarks compared against baselines in the same run.
 * Declared here for the CLI (src/cli); implemented in bench/ by its owner. */
#ifndef BB_BENCH_H
#define BB_BENCH_H

/* argv[0] is "bench"; the options follow ([--quick] [--json] …). Returns the exit
 * status of the command. */
int bb_bench_main(int argc, char **argv);

#endif
