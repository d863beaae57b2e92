#!/bin/sh
# soak.sh: the long soak of one long-lived block instance (tests/local/test_local_soak.c):
# mixed runs (1 % timeouts, 2 % memory kills, 3 % crashes, 10 % raises), every answer
# checked against its injection; prints fd and host RSS slopes per 10k runs and the
# error-type counts. Usage: scripts/soak.sh [RUNS] [BUILD_DIR]   (default 100000, build)
set -eu
runs=${1:-100000}
build=${2:-build}
bin="$build/bin/test_local_soak"
[ -d "$build/bin" ] || { echo "soak.sh: no $build/bin (scripts/build.sh $build)" >&2; exit 2; }
worker="$(cd "$build/bin" && pwd)/blockbox-worker"
[ -x "$bin" ] && [ -x "$worker" ] || { echo "soak.sh: build first (scripts/build.sh $build)" >&2; exit 2; }
# ~17 ms per run on average on a shared 2-core machine (timeouts dominate): give Check room.
mult=$(( runs / 20000 + 1 ))
BB_SOAK_RUNS=$runs BB_TEST_WORKER=$worker CK_TIMEOUT_MULTIPLIER=$mult CK_DEFAULT_TIMEOUT=600 \
    exec nice "$bin"
