# inprocess.py: the in-process baseline of `blockbox bench` (no isolation at all): one
# interpreter times Runtime().handle_bytes on the very envelopes the C side sends.
"""Usage: python3 inprocess.py DIR WARMUP TRIVIAL_RUNS IMAGE_RUNS (PYTHONPATH has the runtime).

DIR holds trivial.load, trivial.run, image.load, image.run: request envelopes as the
executor builds them (load = code and no inputs; run = hash-only with inputs). Prints
one JSON object {"trivial": [ns, ...], "image": [ns, ...]} of per-call latencies.
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


def main(argv):
    if len(argv) != 5:
        raise SystemExit(__doc__)
    directory = argv[1]
    warmup, trivial_runs, image_runs = (int(a) for a in argv[2:5])
    runtime_module.warm_up()
    result = {
        "trivial": _series(directory, "trivial", warmup, trivial_runs),
        "image": _series(directory, "image", min(warmup, 3), image_runs),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
