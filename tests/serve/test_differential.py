#!/usr/bin/python3
# test_differential.py: the same blocks through `blockbox run` in local mode and in modal
# mode against `blockbox serve` (MODAL_WEB_ENDPOINT_URL) must print identical reports.
"""Differential suite: local mode vs the modal driver through `blockbox serve`.

    /usr/bin/python3 tests/serve/test_differential.py --bin build/bin/blockbox [--only NAME]

Every case below (functional, block errors, sandbox limits, bad inputs; all defined here,
nothing borrowed from ../shared) runs through the CLI twice: WORKFLOWS_CUSTOM_PYTHON_
EXECUTION_MODE=local, and =modal with MODAL_WEB_ENDPOINT_URL pointing at a live `blockbox
serve` on loopback. The JSON reports (object addresses blanked) and exit statuses must
be identical, the expected values must hold, an invalid input must never reach the
server, and the tokens must never appear in any output.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from harness import Server  # noqa: E402
from cli_run import clean_env, normalized, write_case  # noqa: E402  (tests/cli_run.py)

TOKENS = ("dk-diffTOKEN-41c2", "ds-diffSECRET-77e0a1")


def png_b64(h=3, w=5):
    import cv2
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0] = 10
    img[..., 1] = 100
    img[..., 2] = 250
    ok, buf = cv2.imencode(".png", img)
    return base64.b64encode(buf.tobytes()).decode()


def image(b64=None, **extra):
    v = {"_type": "workflow_image", "type": "base64", "value": b64 or png_b64(), "video_metadata": None}
    v.update(extra)
    return v


DETS = {"_type": "sv_detections", "image": {"width": 64, "height": 48}, "predictions": [
    {"x": 10, "y": 12, "width": 6, "height": 8, "confidence": 0.91, "class_id": 0, "class": "cat",
     "detection_id": "d1"},
    {"x": 40, "y": 30, "width": 12, "height": 10, "confidence": 0.35, "class_id": 1, "class": "dog",
     "detection_id": "d2"}]}

CASES = [
    # ---- functional ----
    dict(name="add", code="def run(self, a, b):\n    return {'sum': a + b}\n",
         inputs={"a": 2, "b": 40}, expect={"exit": 0, "outputs": {"sum": 42}}),
    dict(name="preamble", code=("def run(self):\n    return {'pi': round(math.pi, 3), 'np': np.__name__,"
                                " 'cv2': hasattr(cv2, 'imdecode'), 'j': json.dumps([1]),"
                                " 'sv': hasattr(sv, 'Detections')}\n"),
         expect={"exit": 0, "outputs": {"pi": 3.142, "np": "numpy", "cv2": True, "j": "[1]", "sv": True}}),
    dict(name="function_name", code="def go(self, x):\n    return {'x': x * 2}\n", function="go",
         inputs={"x": 4}, expect={"exit": 0, "outputs": {"x": 8}}),
    dict(name="selfless", code="def run(x):\n    return {'x': -x}\n", inputs={"x": 4},
         expect={"exit": 0, "outputs": {"x": -4}}),
    dict(name="init_and_context",
         code="def run(self, x):\n    return {'y': x + self._init_results['k'], 'c': self.get_workflow_context()}\n",
         init="def init():\n    return {'k': 7}\n", inputs={"x": 1}, context={"step_name": "s1"},
         expect={"exit": 0}),
    dict(name="imports_file", code="def run(self):\n    return {'c': collections.Counter('aab')['a']}\n",
         imports=["import collections"], expect={"exit": 0, "outputs": {"c": 2}}),
    dict(name="streams_unicode",
         code="import sys\ndef run(self, s):\n    print('out', s)\n    print('err ✓', file=sys.stderr)\n    return {'s': s + ' ✓'}\n",
         inputs={"s": "héllo 🙂"}, expect={"exit": 0}),
    dict(name="ndarray_value_in", code="def run(self, a):\n    return {'sum': float(a.sum()), 'dt': str(a.dtype)}\n",
         inputs={"a": {"_type": "ndarray", "dtype": "float32", "shape": [2, 2], "value": [[1, 2], [3, 4.5]]}},
         expect={"exit": 0, "outputs": {"sum": 10.5, "dt": "float32"}}),
    dict(name="ndarray_data_in", code="def run(self, a):\n    return {'l': a.tolist()}\n",
         inputs={"a": {"_type": "ndarray", "dtype": "uint8", "shape": [3], "data": "AQID"}},
         expect={"exit": 0, "outputs": {"l": [1, 2, 3]}}),
    dict(name="ndarray_out", code=("def run(self):\n    return {'a': np.arange(6, dtype=np.int16).reshape(2, 3),"
                                   " 'f': np.array([0.1, np.inf], dtype=np.float64), 'e': np.zeros((0, 2))}\n"),
         expect={"exit": 0}),
    dict(name="bytes_datetime", code="def run(self, b, t):\n    return {'b': b[::-1], 't': t, 'y': t.year}\n",
         inputs={"b": {"_type": "bytes", "value": "YWJj"}, "t": {"_type": "datetime", "value": "2024-05-06T07:08:09"}},
         expect={"exit": 0}),
    dict(name="image_invert", code=("def run(self, image):\n    px = image.numpy_image\n"
                                    "    return {'b': int(px[0, 0, 0]), 'out': WorkflowImageData.copy_and_replace(image, numpy_image=255 - px)}\n"),
         inputs={"image": image()}, expect={"exit": 0}),
    dict(name="untagged_image", code="def run(self, image):\n    return {'shape': list(image.numpy_image.shape)}\n",
         inputs={"image": {"type": "base64", "value": png_b64(4, 2)}},
         expect={"exit": 0, "outputs": {"shape": [4, 2, 3]}}),
    dict(name="detections", code=("def run(self, d):\n    keep = d[d.confidence > 0.5]\n"
                                  "    return {'n': len(keep), 'kept': keep, 'names': list(keep.data['class_name'])}\n"),
         inputs={"d": DETS}, expect={"exit": 0}),
    dict(name="batch", code="def run(self, xs):\n    return {'n': len(xs), 'first': xs[0]}\n",
         inputs={"xs": {"_type": "batch", "value": [5, 6, 7]}}, expect={"exit": 0}),
    dict(name="debug_traces", code="def run(self):\n    debug_traces.append({'k': 1})\n    return {}\n",
         expect={"exit": 0}),
    dict(name="lossy_object", code="class Thing:\n    pass\n\ndef run(self):\n    return {'t': Thing()}\n",
         expect={"exit": 0}),
    dict(name="list_of_dicts", code="def run(self):\n    return [{'a': 1}, {'a': 2}]\n", expect={"exit": 0}),
    # ---- the block's own errors ----
    dict(name="zero_division", code="def run(self, x):\n    y = 1\n    return {'y': y / x}\n", inputs={"x": 0},
         expect={"exit": 1, "error_type": "ZeroDivisionError", "line_number": 3}),
    dict(name="syntax_error", code="def run(self)\n    return {}\n",
         expect={"exit": 1, "error_type": "SyntaxError", "line_number": 1}),
    dict(name="missing_function", code="def run(self):\n    return {}\n", function="nope",
         expect={"exit": 1, "error_type": "NameError"}),
    dict(name="custom_exception", code="class Boom(Exception):\n    pass\n\ndef run(self):\n    raise Boom('bad: thing')\n",
         expect={"exit": 1, "error_type": "Boom", "line_number": 5}),
    dict(name="empty_message", code="def run(self):\n    raise ValueError()\n",
         expect={"exit": 1, "error_type": "ValueError"}),
    dict(name="message_like_prefix", code="def run(self):\n    raise KeyError('Error in line 9, in x: y')\n",
         expect={"exit": 1, "error_type": "KeyError"}),
    dict(name="nested_error", code="def helper(v):\n    return v['missing']\n\ndef run(self):\n    return helper({})\n",
         expect={"exit": 1, "error_type": "KeyError", "line_number": 2}),
    dict(name="init_error", code="def run(self):\n    return {}\n", init="def init():\n    return undefined_name\n",
         expect={"exit": 1, "error_type": "NameError"}),
    dict(name="not_a_dict", code="def run(self):\n    return 5\n", expect={"exit": 1, "error_type": "TypeError"}),
    dict(name="stdout_then_error", code="def run(self):\n    print('partial')\n    raise RuntimeError('late')\n",
         expect={"exit": 1, "error_type": "RuntimeError"}),
    # ---- sandbox limits ----
    # Timeout is measured by the trusted side: serve marks it with Blockbox-Error, which
    # the modal driver trusts, so both modes exit 3 (without the mark: exit 1).
    dict(name="timeout", code="def run(self):\n    while True:\n        pass\n",
         env={"BLOCKBOX_TIMEOUT": "1"}, expect={"exit": 3, "error_type": "Timeout"}),
    dict(name="socket_denied", code=("import socket\ndef run(self):\n    try:\n        socket.socket()\n"
                                     "    except OSError as e:\n        return {'denied': True}\n    return {'denied': False}\n"),
         expect={"exit": 0}),
    dict(name="output_flood", code="def run(self):\n    for _ in range(4000):\n        print('y' * 1000)\n    return {}\n",
         env={"BLOCKBOX_MAX_STREAM_BYTES": "65536"}, expect={"exit": 0}),
    # ---- bad input (refused before any server sees it) ----
    dict(name="inputs_not_object", code="def run(self):\n    return {}\n", inputs_raw="[1, 2]",
         expect={"exit": 2, "error_type": "InvalidRequest"}),
    dict(name="unknown_tag", code="def run(self, v):\n    return {}\n", inputs={"v": {"_type": "mystery"}},
         expect={"exit": 2, "error_type": "InvalidRequest"}),
    dict(name="bad_image_base64", code="def run(self, image):\n    return {}\n",
         inputs={"image": image("not base64!")}, expect={"exit": 2, "error_type": "InvalidRequest"}),
    dict(name="ndarray_shape_mismatch", code="def run(self, a):\n    return {}\n",
         inputs={"a": {"_type": "ndarray", "dtype": "int32", "shape": [3], "value": [1, 2]}},
         expect={"exit": 2, "error_type": "InvalidRequest"}),
    dict(name="non_utf8_code", code_bytes=b"def run(self):\n    return {'x': '\xff'}\n",
         expect={"exit": 2, "error_type": "InvalidRequest"}),
]

def served(srv):
    """Calls the server has answered (its metrics are counted before each reply)."""
    _, text = srv.get("/metrics")
    return sum(int(line.split()[-1]) for line in text.splitlines()
               if line.startswith("blockbox_serve_responses_total{"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--only")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    failures = []
    cases = [c for c in CASES if not args.only or c["name"] == args.only]
    # one server per distinct environment (limits are the server's settings)
    envs = sorted({json.dumps(c.get("env", {}), sort_keys=True) for c in cases})
    servers = {e: Server(binary, env=json.loads(e), tokens=TOKENS) for e in envs}
    try:
        with tempfile.TemporaryDirectory() as work:
            for case in cases:
                name = case["name"]
                key = json.dumps(case.get("env", {}), sort_keys=True)
                srv = servers[key]
                cli_args = write_case(case, work)
                outs = {}
                for mode in ("local", "modal"):
                    env = clean_env(case.get("env"))
                    env["WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE"] = mode
                    extra = []
                    if mode == "modal":
                        env["MODAL_WEB_ENDPOINT_URL"] = srv.url
                        env["MODAL_TOKEN_ID"], env["MODAL_TOKEN_SECRET"] = TOKENS
                        extra = ["--workspace", "diff-ws"]
                    calls_before = served(srv)
                    p = subprocess.run([binary] + cli_args + extra, env=env, capture_output=True,
                                       timeout=180, cwd=work)
                    for stream in (p.stdout, p.stderr):
                        if any(t.encode() in stream for t in TOKENS):
                            failures.append("%s: a token reached the CLI output" % name)
                    try:
                        report = json.loads(p.stdout)
                    except ValueError:
                        report = None
                    outs[mode] = (p.returncode, report, p.stderr.decode("utf-8", "replace"),
                                  served(srv) - calls_before)
                (lc, lr, le, _), (mc, mr, me, calls) = outs["local"], outs["modal"]
                problem = None
                exp = case.get("expect", {})
                if lr is None or mr is None:
                    problem = "no JSON report (local %d %s | modal %d %s)" % (lc, le[-200:], mc, me[-200:])
                elif lc != mc:
                    problem = "exit %d locally, %d through serve: %s" % (lc, mc, json.dumps(mr)[:400])
                elif normalized(lr) != normalized(mr):
                    diff = {k: (lr.get(k), mr.get(k)) for k in set(lr) | set(mr) if lr.get(k) != mr.get(k)}
                    problem = "reports differ: %s" % json.dumps(diff)[:700]
                elif "exit" in exp and mc != exp["exit"]:
                    problem = "exit %d, expected %d: %s" % (mc, exp["exit"], json.dumps(mr)[:300])
                else:
                    for k in ("outputs", "error_type", "line_number"):
                        if k in exp and mr.get(k) != exp[k]:
                            problem = "%s=%r, expected %r" % (k, mr.get(k), exp[k])
                if not problem and mc == 2 and calls:
                    problem = "an invalid input reached the server"
                if not problem and mc != 2 and not calls:
                    problem = "the modal run never reached the server"
                if problem:
                    failures.append("%s: %s" % (name, problem))
                    print("FAIL %-24s %s" % (name, problem), flush=True)
                else:
                    print("ok   %-24s exit %d, identical" % (name, mc), flush=True)
    finally:
        for srv in servers.values():
            if srv.stop() != 0:
                failures.append("a server did not exit 0")
            if any(t in srv.log() for t in TOKENS):
                failures.append("a token reached the server log")
    print("%d cases, %d failures" % (len(cases), len(failures)))
    for f in failures:
        print("  " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
