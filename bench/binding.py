#!/usr/bin/python3
# binding.py: overhead of the Python binding over the C API, measured in one run:
# a trivial block (binding vs a C program calling bb_block_run, alternating rounds) and a
# 1080p uint8 frame round trip (binding vs numpy's own copy, with the time split by stage).
"""Usage: bench/binding.py [--build BUILD_DIR] [--rounds N] [--iters N] [--frames N] [--json]

Needs cc and the build tree (for the C baseline, linked against BUILD/lib/libblockbox.so).
Figures are p50/p99 over all samples; "added" is binding p50 minus C p50 (median over rounds).
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bindings", "python"))   # the package

import numpy as np  # noqa: E402

C_BENCH = r"""
#include <blockbox.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    bb_error *err = NULL;
    bb_config *cfg = bb_config_new();
    bb_config_set(cfg, "mode", "local", &err);
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    if (!ex) { fprintf(stderr, "%s\n", bb_error_message(err)); return 2; }
    bb_block_spec spec = { .run_code = "def run(self, x):\n    return {'y': x}\n" };
    bb_block *blk = bb_block_load(ex, &spec, &err);
    if (!blk) { fprintf(stderr, "%s\n", bb_error_message(err)); return 3; }
    for (int i = 0; i < 50; i++) bb_result_free(bb_block_run(blk, "{\"x\": 1}", NULL));
    for (int i = 0; i < n; i++) {
        double t0 = now();
        bb_result *r = bb_block_run(blk, "{\"x\": 1}", NULL);
        int ok = bb_result_ok(r);
        const char *o = bb_result_outputs(r);
        (void)o;
        bb_result_free(r);
        double t1 = now();
        if (!ok) return 4;
        printf("%.3f\n", t1 - t0);
    }
    bb_block_free(blk); bb_executor_free(ex);
    return 0;
}
"""


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "..", "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--frames", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    libdir = os.path.join(build, "lib")
    os.environ.setdefault("BLOCKBOX_LIBRARY", os.path.join(libdir, "libblockbox.so"))
    import blockbox
    from blockbox import _lib

    tmp = tempfile.mkdtemp(prefix="bb-pybench-")
    src, exe = os.path.join(tmp, "cbench.c"), os.path.join(tmp, "cbench")
    with open(src, "w") as f:
        f.write(C_BENCH)
    inc = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "include")
    subprocess.run(["cc", "-O2", "-o", exe, src, "-I", inc, "-L", libdir, "-Wl,-rpath," + libdir,
                    "-lblockbox"], check=True)

    report = {}
    with blockbox.Executor(mode="local") as ex:
        block = ex.load("def run(self, x):\n    return {'y': x}\n")
        lib = _lib.library()
        for _ in range(50):
            block.run(x=1)
        c_all, py_all, raw_all, added, added_raw = [], [], [], [], []
        for _ in range(args.rounds):
            out = subprocess.run([exe, str(args.iters)], capture_output=True, text=True, check=True).stdout
            c = [float(v) for v in out.split()]
            py, raw = [], []
            for _ in range(args.iters):   # the same call through ctypes alone, no encode/decode
                t0 = time.perf_counter()
                r = lib.bb_block_run(block._handle, b'{"x": 1}', None)
                lib.bb_result_ok(r)
                lib.bb_result_outputs(r)
                lib.bb_result_free(r)
                raw.append((time.perf_counter() - t0) * 1e6)
            for _ in range(args.iters):
                t0 = time.perf_counter()
                block.run(x=1)
                py.append((time.perf_counter() - t0) * 1e6)
            c_all += c
            py_all += py
            raw_all += raw
            added.append(statistics.median(py) - statistics.median(c))
            added_raw.append(statistics.median(py) - statistics.median(raw))
        report["trivial"] = {
            "c_api_us": {"p50": pct(c_all, 50), "p99": pct(c_all, 99)},
            "ctypes_raw_us": {"p50": pct(raw_all, 50), "p99": pct(raw_all, 99)},
            "binding_us": {"p50": pct(py_all, 50), "p99": pct(py_all, 99)},
            "added_p50_us": statistics.median(added),
            "added_over_ctypes_raw_p50_us": statistics.median(added_raw), "rounds": args.rounds, "iters": args.iters}

        frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
        inv = ex.load("def run(self, f):\n    return {'g': 255 - f}\n")
        copies = []
        for _ in range(50):
            t0 = time.perf_counter()
            frame.copy()
            copies.append((time.perf_counter() - t0) * 1e3)
        trips, stages = [], []
        expected = 255 - frame
        from blockbox.values import encode
        for i in range(args.frames + 2):
            before = inv.stats
            t0 = time.perf_counter()
            out = inv.run(f=frame)["g"]
            dt = (time.perf_counter() - t0) * 1e3
            after = inv.stats
            if i < 2:
                continue   # warm-up
            assert np.array_equal(out, expected), "the inverted frame is wrong"   # every byte
            trips.append(dt)
            stages.append({k: (after[k + "_s_total"] - before[k + "_s_total"]) * 1e3
                           for k in ("encode", "call", "decode")})
        text = encode({"f": frame}).encode()
        c_json = []
        for _ in range(max(3, args.frames // 3)):   # the C API alone on the JSON data form
            t0 = time.perf_counter()
            r = lib.bb_block_run(inv._handle, text, None)
            assert lib.bb_result_ok(r)
            lib.bb_result_free(r)
            c_json.append((time.perf_counter() - t0) * 1e3)
        c_bufs = []
        if lib.has_buffers:   # the C API alone through the binary path: the frame as buffer 0
            ref = b'{"f": {"_type": "ndarray", "dtype": "uint8", "shape": [1080, 1920, 3], "buffer": 0}}'
            buf = (_lib.Buffer * 1)()
            buf[0].data, buf[0].len = frame.__array_interface__["data"][0], frame.nbytes
            for i in range(args.frames + 2):
                t0 = time.perf_counter()
                r = lib.bb_block_run_buffers(inv._handle, ref, None, buf, 1)
                assert lib.bb_result_ok(r)
                lib.bb_result_free(r)
                if i >= 2:
                    c_bufs.append((time.perf_counter() - t0) * 1e3)
        copy50 = pct(copies, 50)
        report["frame_1080p"] = {
            "binding_ms": {"p50": pct(trips, 50), "p99": pct(trips, 99)},
            "numpy_copy_ms": {"p50": copy50},
            "ratio_to_copy_p50": pct(trips, 50) / copy50,
            "stages_ms_p50": {k: statistics.median(s[k] for s in stages) for k in ("encode", "call", "decode")},
            "c_api_json_data_form_ms": {"p50": pct(c_json, 50)},
            "c_api_buffers_ms": {"p50": pct(c_bufs, 50), "p99": pct(c_bufs, 99)} if c_bufs else None,
            "added_over_c_api_buffers_p50_ms": pct(trips, 50) - pct(c_bufs, 50) if c_bufs else None,
            "json_bytes": len(text), "frames": args.frames}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    t, f = report["trivial"], report["frame_1080p"]
    print("trivial block   C API p50 %.1f us  p99 %.1f | ctypes raw p50 %.1f | binding p50 %.1f us  p99 %.1f"
          % (t["c_api_us"]["p50"], t["c_api_us"]["p99"], t["ctypes_raw_us"]["p50"], t["binding_us"]["p50"],
             t["binding_us"]["p99"]))
    print("  added by the binding (median over %d rounds of p50 differences): %.1f us over the C program,"
          " %.1f us over the raw ctypes call (target <= 15)"
          % (t["rounds"], t["added_p50_us"], t["added_over_ctypes_raw_p50_us"]))
    print("1080p frame     binding p50 %.1f ms p99 %.1f | numpy copy p50 %.3f ms | ratio %.0fx (target <= 5 ms, <= 25x)"
          % (f["binding_ms"]["p50"], f["binding_ms"]["p99"], copy50, f["ratio_to_copy_p50"]))
    s = f["stages_ms_p50"]
    print("  stages p50: encode %.2f ms | C call %.2f ms | decode %.2f ms"
          % (s["encode"], s["call"], s["decode"]))
    if f["c_api_buffers_ms"]:
        print("  C API alone, frame as a buffer: p50 %.2f ms p99 %.2f ms; the binding adds %.2f ms"
              % (f["c_api_buffers_ms"]["p50"], f["c_api_buffers_ms"]["p99"], f["added_over_c_api_buffers_p50_ms"]))
    print("  C API alone, frame in the JSON data form: p50 %.1f ms (request %.1f MB)"
          % (f["c_api_json_data_form_ms"]["p50"], f["json_bytes"] / 1e6))


if __name__ == "__main__":
    main()
