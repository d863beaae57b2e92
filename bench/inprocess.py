# inprocess.py: the in-process baseline of `blockbox bench` (no isolation at all): one
# interpreter times Runtime().handle_bytes on the very envelopes the C side sends.
"""Usage: python3 inprocess.py DIR WARMUP TRIVIAL_RUNS IMAGE_RUNS NUMPY_RUNS H W
(PYTHONPATH has the runtime).

DIR holds trivial.load, trivial.run, image.load, image.run: request envelopes as the
executor builds them (load = code and no inputs; run = hash-only with inputs). Prints
one JSON object {"trivial": [ns, ...], "image": [ns, ...], "numpy_invert": [ns, ...]} of
per-call latencies; numpy_invert is numpy's own `255 - f` on an HxWx3 uint8 frame.
"""

import json
import os
import sys
import time

import blockbox_runtime as runtime_module


def _succeeds(reply, what):
    response = json.loads(reply)
    if not response.get("success"):
        raise SystemExit("in-process %s failed: %s: %s" % (
            what, response.get("error_type"), response.get("error")))


def _series(directory, name, warmup, runs):
    with open(os.path.join(directory, name + ".load"), "rb") as f:
        load = f.read()
    with open(os.path.join(directory, name + ".run"), "rb") as f:
        run = f.read()
    runtime = runtime_module.Runtime()
    _succeeds(runtime.handle_bytes(load), name + " load")
    handle = runtime.handle_bytes
    for _ in range(max(1, warmup)):
        _succeeds(handle(run), name + " run")
    clock = time.perf_counter_ns
    samples = []
    for _ in range(runs):
        start = clock()
        handle(run)
        samples.append(clock() - start)
    _succeeds(handle(run), name + " run")
    return samples


def _numpy_invert(warmup, runs, h, w):
    import numpy as np
    i = np.arange(h * w * 3, dtype=np.uint64)
    f = ((i * 7 + i // 5760) & 255).astype(np.uint8).reshape(h, w, 3)   # bench_image_byte
    clock = time.perf_counter_ns
    samples = []
    for k in range(warmup + runs):
        start = clock()
        g = 255 - f
        elapsed = clock() - start
        if k >= warmup:
            samples.append(elapsed)
        del g
    g = 255 - f
    if g.dtype != np.uint8 or int(g[0, 1, 0]) != 255 - int(f[0, 1, 0]):
        raise SystemExit("the numpy invert baseline computed the wrong thing")
    return samples


def main(argv):
    if len(argv) != 8:
        raise SystemExit(__doc__)
    directory = argv[1]
    warmup, trivial_runs, image_runs, numpy_runs, h, w = (int(a) for a in argv[2:8])
    runtime_module.warm_up()
    result = {
        "trivial": _series(directory, "trivial", warmup, trivial_runs),
        "image": _series(directory, "image", min(warmup, 3), image_runs),
        "numpy_invert": _numpy_invert(warmup, numpy_runs, h, w),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
