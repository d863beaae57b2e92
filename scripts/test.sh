#!/usr/bin/env bash
# test.sh: the whole test suite (Quick start, second command; CI runs it): installs
# what is missing, builds, runs ctest (unit, runtime, jail, modal, CLI, acceptance,
# benchmark smoke), then the sanitizer build's suites.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/build.sh build
(cd build && ctest --output-on-failure -j2 --timeout 900)
scripts/build.sh build-asan -DBLOCKBOX_SANITIZE=ON
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j2 --timeout 900 -L sanitize)
echo "blockbox: all suites passed in $(( $(date +%s) - start )) s"
