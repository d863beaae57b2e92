#!/bin/sh
# soak.sh: the long soak of one long-lived block instance (tests/local/test_local_soak.c):
# mixed runs (1 % timeouts of 2 s, 2 % memory kills, 3 % crashes, 10 % raises), every answer
# checked against its injection; prints fd and host RSS slopes per 10k runs and the
# error-type counts. Usage: scripts/soak.sh [RUNS | SECONDSs] [BUILD_DIR]
# (default 100000 runs; "3600s" runs for an hour; BUILD_DIR default build).
# Not niced on purpose: on a loaded host a niced worker can be starved so long that a
# memory blow-up has not reached its cap when its timeout ends, and Timeout is then
# the true answer, not the injected one.
set -eu
arg=${1:-100000}
build=${2:-build}
bin="$build/bin/test_local_soak"
[ -d "$build/bin" ] || { echo "soak.sh: no $build/bin (scripts/build.sh $build)" >&2; exit 2; }
worker="$(cd "$build/bin" && pwd)/blockbox-worker"
[ -x "$bin" ] && [ -x "$worker" ] || { echo "soak.sh: build first (scripts/build.sh $build)" >&2; exit 2; }
case $arg in
*s) seconds=${arg%s}; runs=1000
    mult=$(( seconds / 600 + 2 )) ;;
*)  seconds=; runs=$arg
    # ~17 ms per run on average on a shared 2-core machine (timeouts dominate): give Check room.
    mult=$(( runs / 20000 + 1 )) ;;
esac
# CK_FORK=no: in fork mode Check packs a test's duration as an int of microseconds,
# which overflows after 2147 s ("too big to pack", exit 2 after a clean one-hour soak);
# the soak's own checks and its run count bound it, not Check's timer.
CK_FORK=no BB_SOAK_RUNS=$runs BB_SOAK_SECONDS=$seconds BB_TEST_WORKER=$worker CK_TIMEOUT_MULTIPLIER=$mult \
    CK_DEFAULT_TIMEOUT=600 exec "$bin"
