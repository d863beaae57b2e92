#!/usr/bin/env bash
# test.sh: the whole test suite (Quick start, second command; CI runs it): installs
# what is missing, builds, runs ctest (unit, runtime, jail, modal, CLI, acceptance,
# benchmark smoke), then the sanitizer build's suites.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/build.sh build
(cd build && ctest --output-on-failure -j2 --timeout 900)
# The sanitizer build runs every suite except those
# that mean nothing under ASan: the benchmarks (timings; bench.quick_json mirrors the
# zygote's mappings, which ASan's shadow makes huge), the differentials (modal_cli: the
# same blocks as acceptance, twice; semantics_blocks: CLI runs that the C API suite
# semantics_api covers under ASan; serve_differential: the serve path is covered by
# serve_live; all slow under ASan's fork cost), the serve fuzzer (clang's own ASan;
# it ran in the build above) and the shared acceptance floor: it is a floor for the
# product binary and ran against the release build above; under ASan it took 6 of CI's
# 25 minutes, serially (its own time limits cannot be scaled), while the CLI's C paths
# it drives are the project's own CLI suites' too (cli_integration, cli_npy,
# cli_host_bound, local_cli_py), which run here.
scripts/build.sh build-asan -DBLOCKBOX_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j2 --timeout 900 \
    -E '^(acceptance|bench\.quick_json|modal_cli|semantics_blocks|serve_differential|serve_fuzz|serve_bench_quick)$')
echo "blockbox: all suites passed in $(( $(date +%s) - start )) s"
