#!/usr/bin/env bash
# example.sh: builds blockbox if needed and runs the example block of examples/
# through the local sandbox (Quick start, first command).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/bin/blockbox ] && [ -x build/bin/blockbox-worker ] || scripts/build.sh build
set -x
build/bin/blockbox run --code examples/invert/run.py --input image=@examples/invert/image.png \
    --input threshold=128
