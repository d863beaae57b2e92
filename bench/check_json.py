#!/usr/bin/python3
# check_json.py: the benchmark smoke test: runs `blockbox bench --quick --json`, checks
# the JSON's shape, draws the chart from it, and proves the checker rejects bad shapes.
"""Usage: check_json.py --bin BLOCKBOX [--timeout SECONDS] | --file RESULTS.json"""

import copy
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REQUIRED = ("live_instance", "fresh_worker", "image_1080p", "throughput_per_core",
            "python_fresh", "fork_wait", "in_process", "memcpy_frame", "numpy_invert_in_process",
            "frame_1080p_json_data", "frame_1080p_raw", "frame_4k_raw", "frames_per_second")
TARGET_KEYS = ("value", "limit", "met")


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def problems(doc):
    """Every way doc deviates from the documented shape (empty list: fine)."""
    found = []
    if not isinstance(doc, dict):
        return ["the output is not a JSON object"]
    scenarios = doc.get("scenarios")
    if not isinstance(scenarios, dict):
        return ["no 'scenarios' object"]
    for name in REQUIRED:
        s = scenarios.get(name)
        if not isinstance(s, dict):
            found.append("scenario %s is missing" % name)
            continue
        values = [s.get(k) for k in ("p50_us", "p90_us", "p99_us")]
        if not all(_number(v) for v in values):
            found.append("scenario %s lacks numeric p50_us/p90_us/p99_us" % name)
        elif not 0 < values[0] <= values[1] <= values[2]:
            found.append("scenario %s: percentiles not 0 < p50 <= p90 <= p99: %r" % (name, values))
        if not (_number(s.get("runs")) and s["runs"] >= 1):
            found.append("scenario %s has no runs" % name)
    tput = scenarios.get("throughput_per_core")
    if isinstance(tput, dict) and not (_number(tput.get("runs_per_s")) and tput["runs_per_s"] > 0):
        found.append("throughput_per_core lacks a positive runs_per_s")
    ratios = doc.get("ratios")
    if not isinstance(ratios, dict) or not ratios or not all(_number(v) for v in ratios.values()):
        found.append("'ratios' is not an object of numbers")
    targets = doc.get("targets")
    if not isinstance(targets, dict) or len(targets) < 6:
        found.append("'targets' is missing or incomplete")
    else:
        for name, t in targets.items():
            if not isinstance(t, dict) or not all(k in t for k in TARGET_KEYS) or \
                    not _number(t["value"]) or not _number(t["limit"]) or not isinstance(t["met"], bool):
                found.append("target %s lacks value/limit/met" % name)
    if not isinstance(doc.get("machine"), dict) or not _number(doc["machine"].get("cores")):
        found.append("'machine' lacks cores")
    memory = doc.get("memory")
    if not isinstance(memory, dict) or not (_number(memory.get("zygote_rss_kib"))
                                            and memory["zygote_rss_kib"] > 0):
        found.append("'memory' lacks the zygote's RSS")
    return found


def self_test(doc):
    """The checker must reject broken documents, or it checks nothing."""
    def broken(edit):
        d = copy.deepcopy(doc)
        edit(d)
        return d
    cases = {
        "a missing scenario": broken(lambda d: d["scenarios"].pop("fork_wait")),
        "p99 below p50": broken(lambda d: d["scenarios"]["live_instance"].update(p99_us=0.001)),
        "no runs_per_s": broken(lambda d: d["scenarios"]["throughput_per_core"].pop("runs_per_s")),
        "a target without met": broken(lambda d: next(iter(d["targets"].values())).pop("met")),
        "a string percentile": broken(lambda d: d["scenarios"]["in_process"].update(p50_us="1")),
        "not an object": [],
    }
    failures = [name for name, d in cases.items() if not problems(d)]
    return ["the checker accepted %s" % name for name in failures]


def chart_problems(doc):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import chart  # noqa: E402 - bench/chart.py beside this file
    svg = chart.render(doc)
    root = ET.fromstring(svg)
    bars = [e for e in root.iter("{http://www.w3.org/2000/svg}rect")]
    if len(bars) < len(REQUIRED):
        return ["the chart has %d bars for %d scenarios" % (len(bars), len(doc["scenarios"]))]
    return []


def main(argv):
    args = argv[1:]
    if "--file" in args:
        with open(args[args.index("--file") + 1], encoding="utf-8") as f:
            text = f.read()
    elif "--bin" in args:
        binary = args[args.index("--bin") + 1]
        timeout = float(args[args.index("--timeout") + 1]) if "--timeout" in args else 50
        proc = subprocess.run([binary, "bench", "--quick", "--json"], capture_output=True, text=True,
                              timeout=timeout, check=False)
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            print("FAIL: blockbox bench exited with %d" % proc.returncode)
            return 1
        text = proc.stdout
    else:
        print(__doc__)
        return 2
    try:
        doc = json.loads(text)
    except ValueError as exc:
        print("FAIL: not JSON: %s\n%s" % (exc, text[:2000]))
        return 1
    found = problems(doc) or self_test(doc) or chart_problems(doc)
    for p in found:
        print("FAIL: %s" % p)
    if found:
        return 1
    for name, t in doc["targets"].items():
        print("%-36s %12.3f %s %-8g %s" % (name, t["value"], t.get("op", ""), t["limit"],
                                           "met" if t["met"] else "missed"))
    print("ok: %d scenarios, %d ratios, %d targets" % (len(doc["scenarios"]), len(doc["ratios"]),
                                                     len(doc["targets"])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
