# test_runtime.py: unit tests of the runtime blockbox_runtime.py (stdlib unittest, with
# /usr/bin/python3; the file amalgamated from src/runtime): codecs, semantics, errors, limits.
import base64
import datetime
import hashlib
import importlib.util
import json
import os
import struct
import subprocess
import sys
import time
import types
import unittest
import zlib

import numpy as np
import cv2

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# The build's runtime ($BLOCKBOX_RUNTIME_DIR, ctest sets it), else one amalgamated now.
_spec = importlib.util.spec_from_file_location("amalgamate", os.path.join(ROOT, "src", "runtime",
                                                                          "amalgamate.py"))
amalgamate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(amalgamate)
RUNTIME_DIR = amalgamate.runtime_dir()
if RUNTIME_DIR not in sys.path:
    sys.path.insert(0, RUNTIME_DIR)

import blockbox_runtime as rt  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "cases"))
import blocks  # noqa: E402  (the project's own cases)

# The shared acceptance suite beside the repository (as in CI), when it is there.
ACCEPTANCE_CASES = os.environ.get("BB_ACCEPTANCE_CASES", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "shared", "acceptance", "cases.py"))
# The functional and block-error acceptance cases, whose work is the runtime's.
RUNTIME_CASES = frozenset((
    "add", "preamble_names", "custom_function_name", "init_results", "extra_imports_in_code",
    "stdout_captured", "workflow_context", "ndarray_list_form", "ndarray_data_form",
    "ndarray_output", "bytes_and_datetime", "image_invert", "untagged_base64_image",
    "detections_filter", "batch_of_detections", "state_is_module_scoped", "runtime_error_line",
    "syntax_error", "missing_function", "empty_code", "raises_custom", "non_serialisable_output"))


def png(pixels):
    """A tiny RGB PNG from rows of (r, g, b) tuples (as the acceptance suite builds it)."""
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + b"".join(bytes(p) for p in row) for row in pixels)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


PNG_B64 = base64.b64encode(png([[(10, 20, 30), (40, 50, 60)],
                                [(70, 80, 90), (100, 110, 120)]])).decode()
IMAGE = {"_type": "workflow_image", "type": "base64", "value": PNG_B64, "video_metadata": None}


def detections(classes):
    return {
        "_type": "sv_detections",
        "image": {"width": 640, "height": 480},
        "predictions": [
            {"x": 100.0 + 10 * i, "y": 100.0, "width": 20.0, "height": 30.0,
             "confidence": 0.5 + 0.1 * i, "class_id": i, "class": name,
             "detection_id": "d%d" % i}
            for i, name in enumerate(classes)
        ],
    }


def code_hash(code, imports=()):
    return hashlib.md5((code + "\n" + "\n".join(imports)).encode("utf-8")).hexdigest()


def request(code, inputs=None, imports=(), init=None, function=None, init_function=None,
            context=None, with_code=True, inputs_text=None, **extra):
    req = {"code_hash": code_hash(code, imports), "run_function_name": function or "run"}
    if with_code:
        req["code_str"] = code
        req["imports"] = list(imports)
        if init is not None:
            req["init_function_code"] = init
            req["init_function_name"] = init_function or "init"
    if inputs_text is not None:
        req["inputs_json"] = inputs_text
    elif inputs is not None:
        req["inputs_json"] = json.dumps(inputs)
    if context is not None:
        req["workflow_context"] = context
    req.update(extra)
    return req


class RuntimeCase(unittest.TestCase):
    def run_block(self, code, inputs=None, runtime=None, **kw):
        runtime = runtime or rt.Runtime()
        if inputs is None:
            inputs = {}
        frame = json.dumps(request(code, inputs, **kw)).encode()
        out = runtime.handle_bytes(frame)
        self.assertIsInstance(out, bytes)
        response = json.loads(out.decode("utf-8"))
        self.assertEqual(response["runtime_version"], rt.RUNTIME_VERSION)
        return response

    def outputs(self, code, inputs=None, **kw):
        response = self.run_block(code, inputs, **kw)
        self.assertTrue(response["success"], response)
        return json.loads(response["result"])

    def failure(self, code, inputs=None, **kw):
        response = self.run_block(code, inputs, **kw)
        self.assertFalse(response["success"], response)
        return response

    def assert_block_error(self, response, error_type, line_number):
        """The response is the block's error `error_type` at `line_number` of the user's code."""
        self.assertEqual(response["error_type"], error_type)
        self.assertEqual(response["line_number"], line_number)


# ---------------------------------------------------------------------------------------
class BasicsTest(RuntimeCase):
    def test_version_constant_matches_c_header(self):
        header = os.path.join(ROOT, "include", "blockbox.h")
        with open(header) as f:
            text = f.read()
        self.assertIn('#define BLOCKBOX_RUNTIME_VERSION "%s"' % rt.RUNTIME_VERSION, text)

    def test_add(self):
        self.assertEqual(self.outputs("def run(self, a, b):\n    return {'sum': a + b}\n",
                                      {"a": 2, "b": 40}), {"sum": 42})

    def test_preamble_names(self):
        code = ("def run(self):\n"
                "    names = [np, math, time, json, os, cv2, sv, Batch, WorkflowImageData,"
                " BlockResult, Any, List, Dict, Set, Optional]\n"
                "    return {'n': len(names), 'det': sv.Detections.__name__,"
                " 'traces': type(debug_traces).__name__}\n")
        out = self.outputs(code)
        self.assertEqual(out["n"], 15)
        self.assertEqual(out["det"], "Detections")

    def test_batch_generic_annotation(self):
        code = ("def run(self, predictions: Batch[sv.Detections]) -> BlockResult:\n"
                "    return [{'max_confidence': round(float(np.max(p.confidence)), 3)}"
                " for p in predictions]\n")
        out = self.outputs(code, {"predictions": {"_type": "batch", "value": [
            detections(["a", "b"]), detections(["c"])]}})
        self.assertEqual(out, [{"max_confidence": 0.6}, {"max_confidence": 0.5}])

    def test_custom_function_name(self):
        self.assertEqual(self.outputs("def process(self, a):\n    return {'b': a * 2}\n",
                                      {"a": 21}, function="process"), {"b": 42})

    def test_init_results_and_custom_init_name(self):
        out = self.outputs("def run(self, x):\n    return {'y': x * self._init_results['k']}\n",
                           {"x": 3}, init="def setup():\n    return {'k': 5}\n",
                           init_function="setup")
        self.assertEqual(out, {"y": 15})

    def test_init_runs_once_and_state_persists(self):
        runtime = rt.Runtime()
        code = ("counter = 10\n\ndef run(self):\n    global counter\n    counter += 1\n"
                "    return {'c': counter, 'inits': self._init_results['n']}\n")
        init = "calls = []\n\ndef init():\n    calls.append(1)\n    return {'n': len(calls)}\n"
        first = self.outputs(code, runtime=runtime, init=init)
        second = self.outputs(code, runtime=runtime, init=init)  # full code resent: no reload
        third = self.outputs(code, runtime=runtime, init=init, with_code=False)
        self.assertEqual([first["c"], second["c"], third["c"]], [11, 12, 13])
        self.assertEqual(third["inits"], 1)

    def test_new_code_replaces_the_loaded_block(self):
        runtime = rt.Runtime()
        a = "x = 1\n\ndef run(self):\n    global x\n    x += 1\n    return {'x': x}\n"
        b = ("def run(self):\n    try:\n        x\n    except NameError:\n"
             "        return {'other': False}\n    return {'other': True}\n")
        self.assertEqual(self.outputs(a, runtime=runtime), {"x": 2})
        self.assertEqual(self.outputs(b, runtime=runtime), {"other": False})
        self.assertEqual(self.run_block(a, runtime=runtime, with_code=False)["error_type"],
                         "UnknownCodeHash")

    def test_workflow_context(self):
        ctx = {"workflow_execution_id": "exec-42", "step_name": "custom"}
        out = self.outputs("def run(self):\n    return {'ctx': self.get_workflow_context()}\n",
                           context=ctx)
        self.assertEqual(out["ctx"], ctx)
        out = self.outputs("def run(self):\n    return {'ctx': self.get_workflow_context()}\n")
        self.assertEqual(out["ctx"], {})

    def test_imports_lines(self):
        out = self.outputs("def run(self, xs):\n    return {'m': statistics.median(xs),"
                           " 'p': fractions.Fraction(1, 2).denominator}\n",
                           {"xs": [3, 1, 2]}, imports=("import statistics", "import fractions"))
        self.assertEqual(out, {"m": 2, "p": 2})

    def test_stdout_and_stderr_captured(self):
        response = self.run_block("import sys\n\ndef run(self):\n    print('hello from block')\n"
                                  "    print('oops', file=sys.stderr)\n"
                                  "    sys.stdout.buffer.write(b'raw\\n')\n    return {}\n")
        self.assertTrue(response["success"])
        self.assertEqual(response["stdout"], "hello from block\nraw\n")
        self.assertEqual(response["stderr"], "oops\n")

    def test_streams_restored_after_run(self):
        before = (sys.stdout, sys.stderr)
        self.run_block("def run(self):\n    print('x')\n    return {}\n")
        self.failure("def run(self):\n    print('x')\n    raise KeyError('k')\n")
        self.assertIs(sys.stdout, before[0])
        self.assertIs(sys.stderr, before[1])

    def test_init_output_is_captured(self):
        response = self.run_block("def run(self):\n    print('run')\n    return {}\n",
                                  init="def init():\n    print('init')\n    return {}\n")
        self.assertEqual(response["stdout"], "init\nrun\n")

    def test_load_only_request(self):
        runtime = rt.Runtime()
        response = runtime.handle(request("def run(self):\n    return {'a': 1}\n",
                                          init="def init():\n    print('loaded')\n"))
        self.assertTrue(response["success"], response)
        self.assertEqual(response["result"], "{}")
        self.assertEqual(response["stdout"], "loaded\n")
        follow = runtime.handle(request("def run(self):\n    return {'a': 1}\n", {},
                                        with_code=False))
        self.assertEqual(json.loads(follow["result"]), {"a": 1})

    def test_execute_request_is_fresh_each_time(self):
        code = "n = 0\n\ndef run(self):\n    global n\n    n += 1\n    return {'n': n}\n"
        for _ in range(2):
            response = rt.execute_request(request(code, {}))
            self.assertEqual(json.loads(response["result"]), {"n": 1})
        self.assertEqual(rt.execute_request(request(code, {}, with_code=False))["error_type"],
                         "UnknownCodeHash")

    def test_execute_request_bad_limits(self):
        response = rt.execute_request(request("def run(self):\n    return {}\n", {}),
                                      limits={"max_stream_bytes": -1})
        self.assertFalse(response["success"])
        self.assertEqual(response["error_type"], "ConfigurationError")

    def test_debug_traces(self):
        runtime = rt.Runtime()
        code = ("def run(self, n):\n    debug_traces.append({'step': n})\n"
                "    debug_traces.append(np.int64(7), add_timestamp=True)\n    return {'n': n}\n")
        response = self.run_block(code, {"n": 1}, runtime=runtime)
        self.assertTrue(response["success"])
        self.assertEqual(json.loads(response["result"]), {"n": 1})
        traces = response["debug_traces"]
        self.assertEqual(traces[0], {"step": None, "value": {"step": 1}})
        self.assertEqual(traces[1]["value"], repr(np.int64(7)), "not JSON: kept as repr")
        self.assertEqual(traces[1]["timestamp_timezone"], "UTC")
        datetime.datetime.fromisoformat(traces[1]["timestamp"])
        again = self.run_block(code, {"n": 2}, runtime=runtime, with_code=False)
        self.assertEqual(len(again["debug_traces"]), 2, "traces are cleared between runs")
        plain = self.run_block("def run(self):\n    return {}\n")
        self.assertEqual(plain["debug_traces"], [])

    def test_block_system_exit_does_not_end_the_runtime(self):
        runtime = rt.Runtime()
        response = self.run_block("import sys\n\ndef run(self):\n    sys.exit(3)\n",
                                  runtime=runtime)
        self.assert_block_error(response, "SystemExit", 4)
        self.assertEqual(self.outputs("def run(self):\n    return {'ok': 1}\n", runtime=runtime),
                         {"ok": 1})

    def test_block_can_define_classes_and_dataclasses(self):
        code = ("from dataclasses import dataclass\n\n@dataclass\nclass P:\n    x: int\n\n"
                "def run(self):\n    return {'x': P(3).x, 'mod': P.__module__}\n")
        self.assertEqual(self.outputs(code), {"x": 3, "mod": "blockbox_block"})


# ---------------------------------------------------------------------------------------
class ErrorsTest(RuntimeCase):
    def test_runtime_error_line(self):
        r = self.failure("def run(self, x):\n    y = 1\n    return {'z': x / 0}\n", {"x": 1})
        self.assert_block_error(r, "ZeroDivisionError", 3)
        self.assertEqual(r["function_name"], "run")
        self.assertEqual(r["error"], "Error in line 3, in run: ZeroDivisionError: division by zero")
        self.assertIn('File "<run_code>", line 3, in run', r["traceback"])
        self.assertIn("return {'z': x / 0}", r["traceback"])

    def test_syntax_error(self):
        r = self.failure("def run(self):\n    return {'a': (}\n")
        self.assert_block_error(r, "SyntaxError", 2)
        self.assertTrue(r["error"].startswith("Error in line 2, in <module>: SyntaxError: "),
                        r["error"])
        self.assertIn("<run_code>", r["traceback"])

    def test_indentation_error(self):
        r = self.failure("def run(self):\nreturn {}\n")
        self.assert_block_error(r, "IndentationError", 2)

    def test_raise_in_nested_helper(self):
        code = ("def helper(v):\n    def inner(w):\n        raise ValueError('negative input %d' % w)\n"
                "    return inner(v)\n\ndef run(self, v):\n    if v < 0:\n        helper(v)\n"
                "    return {}\n")
        r = self.failure(code, {"v": -1})
        self.assert_block_error(r, "ValueError", 3)
        self.assertEqual(r["function_name"], "inner")
        self.assertEqual(r["error"], "Error in line 3, in inner: ValueError: negative input -1")
        tb = r["traceback"]
        self.assertTrue(tb.startswith("Traceback (most recent call last):\n"))
        order = [tb.index("line 8, in run"), tb.index("line 4, in helper"),
                 tb.index("line 3, in inner")]
        self.assertEqual(order, sorted(order))

    def test_traceback_shows_only_user_frames(self):
        code = ("def run(self):\n    a = np.zeros((2, 2))\n    return {'x': np.dot(a, np.zeros((3, 3)))}\n")
        r = self.failure(code)
        self.assertEqual(r["line_number"], 3)
        self.assertNotIn("blockbox_runtime", r["traceback"])
        self.assertNotIn(".py\"", r["traceback"], "no library or runtime file frames")
        self.assertIn("<run_code>", r["traceback"])

    def test_error_in_init(self):
        init = "def init():\n    data = {}\n    return {'k': data['missing']}\n"
        r = self.failure("def run(self):\n    return {}\n", init=init)
        self.assert_block_error(r, "KeyError", 3)
        self.assertEqual(r["function_name"], "init")
        self.assertIn('File "<init_code>", line 3, in init', r["traceback"])

    def test_syntax_error_in_init(self):
        r = self.failure("def run(self):\n    return {}\n", init="def init(:\n    pass\n")
        self.assert_block_error(r, "SyntaxError", 1)
        self.assertIn("<init_code>", r["traceback"])

    def test_failed_init_is_retried_not_cached(self):
        runtime = rt.Runtime()
        init = "import os\n\ndef init():\n    raise RuntimeError('flaky')\n"
        self.failure("def run(self):\n    return {}\n", init=init, runtime=runtime)
        r = self.run_block("def run(self):\n    return {}\n", init=init, runtime=runtime,
                           with_code=False)
        self.assertEqual(r["error_type"], "UnknownCodeHash")

    def test_init_result_is_kept_as_returned(self):
        # Roboflow stores whatever init returns (no dict check, None stays None).
        code = "def run(self):\n    return {'i': self._init_results}\n"
        self.assertEqual(self.outputs(code, init="def init():\n    return 5\n"), {"i": 5})
        self.assertEqual(self.outputs(code, init="def init():\n    pass\n"), {"i": None})

    def test_error_in_module_level_code(self):
        r = self.failure("x = 1\ny = undefined_name\n\ndef run(self):\n    return {}\n")
        self.assert_block_error(r, "NameError", 2)
        self.assertEqual(r["function_name"], "<module>")

    def test_error_in_imports(self):
        r = self.failure("def run(self):\n    return {}\n",
                         imports=("import json", "import no_such_module_blockbox"))
        self.assert_block_error(r, "ModuleNotFoundError", 2)
        self.assertIn("<imports>", r["traceback"])

    def test_missing_function(self):
        r = self.failure("def go(self):\n    return {}\n")
        self.assertIn("run", r["error"])
        self.assertIn("no function 'run'", r["error"])
        self.assertIn("go", r["error"], "the message lists what the block defines")

    def test_missing_custom_function(self):
        r = self.failure("def run(self):\n    return {}\n", function="process")
        self.assertIn("no function 'process'", r["error"])

    def test_missing_init_function(self):
        r = self.failure("def run(self):\n    return {}\n", init="def start():\n    return {}\n")
        self.assertIn("no function 'init'", r["error"])

    def test_empty_code(self):
        r = self.failure("")
        self.assertIn("run", r["error"])

    def test_wrong_arguments(self):
        r = self.failure("def run(self, a):\n    return {}\n", {"b": 1})
        self.assert_block_error(r, "TypeError", 1)
        self.assertEqual(r["function_name"], "run")
        self.assertIn("unexpected keyword argument 'b'", r["error"])

    def test_return_type_checked(self):
        for value in ("5", "[1, 2]", "None", "({'a': 1},)"):
            r = self.failure("def run(self):\n    return %s\n" % value)
            self.assertEqual(r["error_type"], "TypeError", value)
            self.assertIn("run returned", r["error"])
            self.assertIn("must return a dict", r["error"])

    def test_custom_exception_class(self):
        code = ("class BlockProblem(Exception):\n    pass\n\n"
                "def run(self):\n    raise BlockProblem('custom trouble')\n")
        r = self.failure(code)
        self.assertEqual(r["error_type"], "BlockProblem")
        self.assertIn("custom trouble", r["error"])
        self.assertEqual(r["line_number"], 5)

    def test_unprintable_exception(self):
        code = ("class Bad(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\n\n"
                "def run(self):\n    raise Bad()\n")
        r = self.failure(code)
        self.assert_block_error(r, "Bad", 6)

    def test_recursion_error_is_the_blocks(self):
        r = self.failure("def run(self):\n    return run(self)\n")
        self.assert_block_error(r, "RecursionError", 2)


# ---------------------------------------------------------------------------------------
class RequestTest(RuntimeCase):
    def test_unknown_code_hash_flow(self):
        runtime = rt.Runtime()
        code = "def run(self, a):\n    return {'a': a}\n"
        first = runtime.handle(request(code, {"a": 1}, with_code=False))
        self.assertEqual(first["error_type"], "UnknownCodeHash")
        self.assertFalse(first["success"])
        self.assertEqual(json.loads(runtime.handle(request(code, {"a": 2}))["result"]), {"a": 2})
        third = runtime.handle(request(code, {"a": 3}, with_code=False))
        self.assertEqual(json.loads(third["result"]), {"a": 3})
        other = runtime.handle(request("def run(self):\n    return {}\n", {}, with_code=False))
        self.assertEqual(other["error_type"], "UnknownCodeHash")

    def test_hash_mismatch_is_refused(self):
        """A request cannot run code under another block's hash (cache poisoning)."""
        runtime = rt.Runtime()
        good = "def run(self):\n    return {'who': 'good'}\n"
        req = request("def run(self):\n    return {'who': 'evil'}\n", {})
        req["code_hash"] = code_hash(good)
        r = runtime.handle(req)
        self.assertEqual(r["error_type"], "InvalidRequest")
        self.assertIn("does not match", r["error"])
        later = runtime.handle(request(good, {}, with_code=False))
        self.assertEqual(later["error_type"], "UnknownCodeHash")

    def test_hash_covers_imports(self):
        req = request("def run(self):\n    return {}\n", {}, imports=("import json",))
        req["imports"] = ["import os"]
        self.assertEqual(rt.Runtime().handle(req)["error_type"], "InvalidRequest")

    def test_runtime_version(self):
        r = rt.Runtime().handle(request("def run(self):\n    return {}\n", {},
                                        runtime_version="99"))
        self.assertEqual(r["error_type"], "ConfigurationError")
        self.assertIn("99", r["error"])
        self.assertIn(rt.RUNTIME_VERSION, r["error"])
        ok = rt.Runtime().handle(request("def run(self):\n    return {}\n", {},
                                         runtime_version=rt.RUNTIME_VERSION))
        self.assertTrue(ok["success"])

    def test_bad_frames(self):
        runtime = rt.Runtime()
        for frame in (b"{not json", b"[1, 2]", b"\xff\xfe", b"", b"null", b"42",
                      b"[" * 100000 + b"]" * 100000):
            r = json.loads(runtime.handle_bytes(frame))
            self.assertFalse(r["success"])
            self.assertEqual(r["error_type"], "InvalidRequest", frame[:20])
        self.assertEqual(runtime.handle([1])["error_type"], "InvalidRequest")
        self.assertEqual(runtime.handle(None)["error_type"], "InvalidRequest")

    def test_bad_fields(self):
        runtime = rt.Runtime()
        code = "def run(self):\n    return {}\n"
        cases = [
            dict(code_hash=None),
            dict(code_hash=5),
            dict(run_function_name="not an identifier"),
            dict(run_function_name="__import__('os')"),
            dict(imports="import os"),
            dict(imports=[1]),
            dict(workflow_context=[1]),
            dict(inputs_json={"a": 1}),
            dict(inputs_json="[1, 2, 3]"),
            dict(inputs_json="{not json"),
            dict(inputs_json='{"a": ' + "[" * 100000 + "]" * 100000 + "}"),
            dict(init_function_code=5),
        ]
        for change in cases:
            req = request(code, {})
            req.update(change)
            r = runtime.handle(req)
            self.assertEqual(r["error_type"], "InvalidRequest", change)

    def test_code_with_surrogates_is_refused(self):
        code = "def run(self):\n    return {'x': '\ud800'}\n"
        req = {"code_hash": "0" * 32, "run_function_name": "run", "code_str": code,
               "imports": [], "inputs_json": "{}"}
        r = json.loads(rt.Runtime().handle_bytes(json.dumps(req).encode()))
        self.assertEqual(r["error_type"], "InvalidRequest")

    def test_response_is_valid_utf8_even_with_lone_surrogates(self):
        code = "def run(self):\n    print('\\ud800')\n    return {'s': '\\udcff'}\n"
        out = rt.Runtime().handle_bytes(json.dumps(request(code, {})).encode())
        response = json.loads(out.decode("utf-8"))  # strict UTF-8
        self.assertTrue(response["success"])
        self.assertEqual(json.loads(response["result"]), {"s": "?"})


# ---------------------------------------------------------------------------------------
class DecodeTest(RuntimeCase):
    def decode(self, value):
        return rt._decode_inputs(json.dumps({"v": value}))["v"]

    def refused(self, value):
        with self.assertRaises(rt._RequestError) as ctx:
            self.decode(value)
        self.assertEqual(ctx.exception.error_type, "InvalidRequest")

    def test_plain_values_untouched(self):
        value = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
        self.assertEqual(self.decode(value), value)

    def test_ndarray_value_form(self):
        arr = self.decode({"_type": "ndarray", "value": [[1, 2], [3, 4]], "dtype": "int64",
                           "shape": [2, 2]})
        self.assertEqual(arr.dtype, np.int64)
        self.assertEqual(arr.tolist(), [[1, 2], [3, 4]])
        empty = self.decode({"_type": "ndarray", "value": [], "dtype": "float32", "shape": [0, 4]})
        self.assertEqual(empty.shape, (0, 4))
        self.refused({"_type": "ndarray", "value": [[1, 2], [3]], "dtype": "int64", "shape": [2, 2]})
        self.refused({"_type": "ndarray", "value": [1, 2, 3], "dtype": "int64", "shape": [2, 2]})
        self.refused({"_type": "ndarray", "value": ["a"], "dtype": "int64", "shape": [1]})

    def test_ndarray_data_form(self):
        arr = self.decode({"_type": "ndarray", "dtype": "float32", "shape": [2, 2],
                           "data": base64.b64encode(struct.pack("<4f", 1, 2, 3, 4)).decode()})
        self.assertEqual(arr.dtype, np.float32)
        self.assertEqual(arr.tolist(), [[1, 2], [3, 4]])
        arr[0, 0] = 9  # writable
        big = self.decode({"_type": "ndarray", "dtype": "uint16", "shape": [2],
                           "data": base64.b64encode(struct.pack("<2H", 1, 513)).decode()})
        self.assertEqual(big.tolist(), [1, 513], "data is little-endian")

    def test_ndarray_data_form_refusals(self):
        data = base64.b64encode(struct.pack("<4f", 1, 2, 3, 4)).decode()
        self.refused({"_type": "ndarray", "dtype": "float32", "shape": [3], "data": data})
        self.refused({"_type": "ndarray", "dtype": "object", "shape": [2], "data": data})
        self.refused({"_type": "ndarray", "dtype": "U4", "shape": [1], "data": data})
        self.refused({"_type": "ndarray", "dtype": "no_such", "shape": [4], "data": data})
        self.refused({"_type": "ndarray", "dtype": "float32", "shape": [-4], "data": data})
        self.refused({"_type": "ndarray", "dtype": "float32", "shape": "4", "data": data})
        self.refused({"_type": "ndarray", "dtype": "float32", "shape": [4], "data": "!!"})
        self.refused({"_type": "ndarray", "dtype": "float32",
                      "shape": [2 ** 40, 2 ** 40], "data": data})
        self.refused({"_type": "ndarray", "dtype": "float32", "shape": [4]})

    def test_bytes_datetime_object(self):
        self.assertEqual(self.decode({"_type": "bytes", "value": "aGk="}), b"hi")
        self.refused({"_type": "bytes", "value": "a*b"})
        self.refused({"_type": "bytes", "value": "aGk"})  # unpadded, as the C side refuses
        self.refused({"_type": "bytes", "value": "aG k="})
        when = self.decode({"_type": "datetime", "value": "2024-05-06T07:08:09"})
        self.assertEqual(when, datetime.datetime(2024, 5, 6, 7, 8, 9))
        aware = self.decode({"_type": "datetime", "value": "2024-05-06T07:08:09+02:00"})
        self.assertEqual(aware.utcoffset(), datetime.timedelta(hours=2))
        self.refused({"_type": "datetime", "value": "yesterday"})
        self.assertEqual(self.decode({"_type": "object", "class": "Foo", "value": "<Foo>"}),
                         "<Foo>")

    def test_video_metadata(self):
        vm = self.decode({"_type": "video_metadata", "video_identifier": "cam1",
                          "frame_number": 7, "frame_timestamp": "2024-05-06T07:08:09",
                          "fps": 25, "extra_field": 1})
        self.assertIsInstance(vm, rt.VideoMetadata)
        self.assertEqual(vm.video_identifier, "cam1")
        self.assertEqual(vm.frame_number, 7)
        self.assertEqual(vm.frame_timestamp.year, 2024)
        self.assertEqual(vm.extra, {"extra_field": 1})

    def test_batch(self):
        batch = self.decode({"_type": "batch", "value": [1, {"_type": "bytes", "value": "aGk="}]})
        self.assertIsInstance(batch, rt.Batch)
        self.assertEqual(list(batch), [1, b"hi"])
        self.assertEqual(len(batch), 2)
        self.assertEqual(batch[1], b"hi")
        self.refused({"_type": "batch", "value": "x"})

    def test_unknown_tag_refused(self):
        self.refused({"_type": "quantum", "value": 1})
        self.refused({"_type": 5})
        self.refused([{"nested": {"_type": "quantum"}}])

    def test_nested_tags_decoded(self):
        value = self.decode({"list": [{"_type": "bytes", "value": "aGk="}]})
        self.assertEqual(value, {"list": [b"hi"]})

    def test_escaped_tag_is_still_decoded(self):
        text = '{"v": {"\\u005ftype": "bytes", "value": "aGk="}}'
        self.assertEqual(rt._decode_inputs(text)["v"], b"hi")

    def test_workflow_image(self):
        image = self.decode(dict(IMAGE, parent_id="cam", parent_origin={
            "offset_x": 5, "offset_y": 6, "width": 100, "height": 80}, root_parent_id="root"))
        self.assertIsInstance(image, rt.WorkflowImageData)
        self.assertIsNone(image._numpy_image, "pixels are decoded lazily")
        pixels = image.numpy_image
        self.assertEqual(pixels.shape, (2, 2, 3))
        self.assertEqual(pixels.dtype, np.uint8)
        self.assertEqual(pixels[0, 0].tolist(), [30, 20, 10], "BGR order")
        self.assertEqual(image.parent_metadata.parent_id, "cam")
        self.assertEqual(image.parent_metadata.origin_coordinates.left_top_x, 5)
        self.assertEqual(image.workflow_root_ancestor_metadata.parent_id, "root")
        self.assertEqual(image.base64_image, PNG_B64)

    def test_untagged_base64_image(self):
        out = self.outputs("def run(self, image):\n    return {'shape': list(image.numpy_image.shape)}\n",
                           {"image": {"type": "base64", "value": PNG_B64}})
        self.assertEqual(out, {"shape": [2, 2, 3]})

    def test_broken_image_fails_lazily(self):
        code = ("def run(self, image, touch):\n    if touch:\n"
                "        return {'s': list(image.numpy_image.shape)}\n    return {'ok': 1}\n")
        broken = {"_type": "workflow_image", "type": "base64", "value": "!!not*base64!!"}
        self.assertEqual(self.outputs(code, {"image": broken, "touch": False}), {"ok": 1})
        r = self.failure(code, {"image": broken, "touch": True})
        self.assert_block_error(r, "ValueError", 3)
        self.assertIn("base64", r["error"])
        garbage = {"_type": "workflow_image", "type": "base64",
                   "value": base64.b64encode(b"not an image at all").decode()}
        r = self.failure(code, {"image": garbage, "touch": True})
        self.assertEqual(r["error_type"], "ValueError")
        self.assertIn("could not be decoded", r["error"])

    def test_image_with_video_metadata(self):
        image = self.decode(dict(IMAGE, video_metadata={
            "video_identifier": "v", "frame_number": 3, "frame_timestamp": "2024-01-01T00:00:00"}))
        self.assertEqual(image.video_metadata.frame_number, 3)
        plain = self.decode(IMAGE)
        self.assertEqual(plain.video_metadata.frame_number, 0, "a default is made up on access")

    def test_detections(self):
        det = self.decode(detections(["car", "dog", "car"]))
        self.assertIsInstance(det, rt.Detections)
        self.assertEqual(len(det), 3)
        self.assertEqual(det.xyxy[0].tolist(), [90.0, 85.0, 110.0, 115.0])
        self.assertEqual(det.class_id.tolist(), [0, 1, 2])
        self.assertEqual(det.data["class_name"].tolist(), ["car", "dog", "car"])
        self.assertEqual(det.data["detection_id"].tolist(), ["d0", "d1", "d2"])
        np.testing.assert_allclose(det.confidence, [0.5, 0.6, 0.7])
        self.assertIsNone(det.tracker_id)
        self.assertIsNone(det.mask)

    def test_detections_extra_fields_and_polygons(self):
        value = detections(["a"])
        value["predictions"][0].update(tracker_id=4, parent_id="img",
                                       points=[{"x": 90, "y": 85}, {"x": 110, "y": 85},
                                               {"x": 110, "y": 115}, {"x": 90, "y": 115}])
        det = self.decode(value)
        self.assertEqual(det.tracker_id.tolist(), [4])
        self.assertEqual(det.data["parent_id"].tolist(), ["img"])
        self.assertEqual(det.mask.shape, (1, 480, 640))
        self.assertTrue(det.mask[0, 100, 100])
        self.assertFalse(det.mask[0, 10, 10])

    def test_detections_refusals(self):
        self.refused({"_type": "sv_detections", "image": {"width": 1, "height": 1},
                      "predictions": [{"x": "a", "y": 1, "width": 1, "height": 1}]})
        self.refused({"_type": "sv_detections", "predictions": "none"})
        self.refused({"_type": "sv_detections", "predictions": [5]})

    def test_empty_detections(self):
        det = self.decode({"_type": "sv_detections", "image": {"width": 4, "height": 4},
                           "predictions": []})
        self.assertEqual(len(det), 0)
        self.assertEqual(det.xyxy.shape, (0, 4))
        self.assertEqual(len(det[det.data["class_name"] == "x"]), 0)


# ---------------------------------------------------------------------------------------
class EncodeTest(RuntimeCase):
    def encode(self, value):
        return json.loads(rt._encode_json({"v": value}))["v"]

    def raw_array(self, tagged):
        self.assertEqual(tagged["_type"], "ndarray")
        return np.frombuffer(base64.b64decode(tagged["data"]),
                             dtype=np.dtype(tagged["dtype"]).newbyteorder("<")
                             ).reshape(tagged["shape"])

    def test_ndarray_fast_form(self):
        for array in (np.eye(2), np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
                      np.array([True, False]), np.arange(10, dtype=np.int32)[::2],
                      np.arange(6, dtype=">i4").reshape(2, 3), np.zeros((0, 3), np.float32),
                      np.float16([1.5]), np.array(7, dtype=np.int8)):
            tagged = self.encode(array)
            self.assertIn("data", tagged)
            self.assertEqual(tagged["shape"], list(array.shape))
            back = self.raw_array(tagged)
            np.testing.assert_array_equal(back, array)
        self.assertEqual(self.encode(np.eye(2))["dtype"], "float64")
        self.assertEqual(self.encode(np.arange(6, dtype=">i4"))["dtype"], "int32")

    def test_other_dtypes_become_plain_lists(self):
        """The wire's ndarray allows bool/int/uint/float16-64 only (C validator)."""
        self.assertEqual(self.encode(np.array([["car"], ["dog"]])), [["car"], ["dog"]])
        self.assertEqual(self.encode(np.array([{"a": 1}, None], dtype=object)), [{"a": 1}, None])
        complex_items = self.encode(np.array([1 + 2j]))
        self.assertEqual(complex_items[0]["_type"], "object")
        self.assertEqual(self.encode(np.array([b"x"], dtype="S1")),
                         [{"_type": "bytes", "value": "eA=="}])
        for array in (np.eye(2), np.arange(3, dtype=np.uint64), np.array([True])):
            self.assertIn(self.encode(array)["dtype"], ("float64", "uint64", "bool"))

    def test_numpy_scalars(self):
        out = self.encode([np.int64(3), np.float32(0.5), np.bool_(True), np.str_("s"),
                           np.uint8(255)])
        self.assertEqual(out, [3, 0.5, True, "s", 255])

    def test_non_finite_floats_become_null(self):
        out = self.encode([float("nan"), float("inf"), -float("inf"), np.float64("nan"),
                           np.float32("inf"), 1.5])
        self.assertEqual(out, [None, None, None, None, None, 1.5])
        arr = self.raw_array(self.encode(np.array([np.nan, np.inf])))
        self.assertTrue(np.isnan(arr[0]) and np.isinf(arr[1]), "raw bytes keep them")

    def test_containers_and_keys(self):
        self.assertEqual(self.encode((1, 2)), [1, 2])
        self.assertEqual(sorted(self.encode({3, 1, 2})), [1, 2, 3])
        self.assertEqual(self.encode(frozenset(["a"])), ["a"])
        self.assertEqual(self.encode({1: "a", (1, 2): "b", None: "c", 2.5: "e"}),
                         {"1": "a", "(1, 2)": "b", "null": "c", "2.5": "e"})
        self.assertEqual(self.encode({True: "d", (0,): np.nan}), {"true": "d", "(0,)": None})

    def test_bytes_datetime(self):
        self.assertEqual(self.encode(b"hi"), {"_type": "bytes", "value": "aGk="})
        self.assertEqual(self.encode(bytearray(b"hi")), {"_type": "bytes", "value": "aGk="})
        when = datetime.datetime(2024, 5, 6, 7, 8, 9)
        self.assertEqual(self.encode(when), {"_type": "datetime", "value": "2024-05-06T07:08:09"})

    def test_object_fallback(self):
        tagged = self.encode(lambda: 1)
        self.assertEqual(tagged["_type"], "object")
        self.assertEqual(tagged["class"], "function")
        self.assertIn("lambda", tagged["value"])

        class Weird:
            def __str__(self):
                raise RuntimeError("no")
        tagged = self.encode(Weird())
        self.assertEqual(tagged["class"], "Weird")

    def test_image_unchanged_keeps_original_string(self):
        image = rt._decode_inputs(json.dumps({"i": IMAGE}))["i"]
        image.numpy_image  # decoded, but not replaced
        tagged = self.encode(image)
        self.assertEqual(tagged["_type"], "workflow_image")
        self.assertEqual(tagged["type"], "base64")
        self.assertEqual(tagged["value"], PNG_B64)
        self.assertIsNone(tagged["video_metadata"])
        self.assertEqual(tagged["parent_id"], "image")

    def test_image_replaced_is_jpeg_with_metadata(self):
        source = rt._decode_inputs(json.dumps({"i": dict(IMAGE, parent_id="cam", parent_origin={
            "offset_x": 1, "offset_y": 2, "width": 30, "height": 40})}))["i"]
        pixels = np.full((16, 16, 3), 200, dtype=np.uint8)
        image = rt.WorkflowImageData.copy_and_replace(origin_image_data=source, numpy_image=pixels)
        tagged = self.encode(image)
        raw = base64.b64decode(tagged["value"])
        self.assertTrue(raw.startswith(b"\xff\xd8"), "JPEG")
        decoded = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        self.assertEqual(decoded.shape, (16, 16, 3))
        self.assertLessEqual(abs(int(decoded.mean()) - 200), 2)
        self.assertEqual(tagged["parent_id"], "cam")
        self.assertEqual(tagged["parent_origin"], {"offset_x": 1, "offset_y": 2,
                                                   "width": 30, "height": 40})
        self.assertEqual(tagged["root_parent_id"], "cam")

    def test_float_image_is_clipped(self):
        image = rt.WorkflowImageData(numpy_image=np.full((4, 4), 300.0))
        tagged = self.encode(image)
        decoded = cv2.imdecode(np.frombuffer(base64.b64decode(tagged["value"]), np.uint8),
                               cv2.IMREAD_GRAYSCALE)
        self.assertEqual(int(decoded.min()), 255)

    def test_empty_image_refused(self):
        with self.assertRaises(ValueError):
            rt.WorkflowImageData()

    def test_detections_encoded(self):
        det = rt._decode_inputs(json.dumps({"d": detections(["car", "dog"])}))["d"]
        tagged = self.encode(det)
        self.assertEqual(tagged["_type"], "sv_detections")
        self.assertEqual(tagged["image"], {"width": 640, "height": 480})
        self.assertEqual(tagged["predictions"], detections(["car", "dog"])["predictions"])

    def test_detections_made_by_block(self):
        det = rt.Detections(xyxy=np.array([[0, 0, 10, 20]]), confidence=np.array([0.9]),
                            class_id=np.array([2]), tracker_id=np.array([7]))
        tagged = self.encode(det)
        p = tagged["predictions"][0]
        self.assertEqual((p["x"], p["y"], p["width"], p["height"]), (5.0, 10.0, 10.0, 20.0))
        self.assertEqual(p["class"], "2")
        self.assertEqual(p["tracker_id"], 7)
        self.assertEqual(len(p["detection_id"]), 36, "a uuid is made up")
        self.assertEqual(tagged["image"], {"width": 10, "height": 20})

    def test_detection_masks_become_points(self):
        mask = np.zeros((1, 20, 20), dtype=bool)
        mask[0, 5:10, 5:10] = True
        det = rt.Detections(xyxy=[[5, 5, 10, 10]], mask=mask, class_id=[0], confidence=[1.0])
        points = self.encode(det)["predictions"][0]["points"]
        xs = sorted({pt["x"] for pt in points})
        self.assertEqual((xs[0], xs[-1]), (5.0, 9.0))

    def test_batch_and_video_metadata(self):
        self.assertEqual(self.encode(rt.Batch([1, b"hi"])),
                         {"_type": "batch", "value": [1, {"_type": "bytes", "value": "aGk="}]})
        vm = rt.VideoMetadata("cam", 3, datetime.datetime(2024, 1, 1), fps=30)
        tagged = self.encode(vm)
        self.assertEqual(tagged["_type"], "video_metadata")
        self.assertEqual(tagged["frame_timestamp"], "2024-01-01T00:00:00")
        self.assertEqual(tagged["video_identifier"], "cam")

    def test_circular_output_is_an_error_not_a_crash(self):
        r = self.failure("def run(self):\n    a = []\n    a.append(a)\n    return {'a': a}\n")
        self.assertIn("nested too deeply", r["error"])

    def test_round_trips_through_a_block(self):
        value = {
            "arr": {"_type": "ndarray", "dtype": "int16", "shape": [2, 2],
                    "data": base64.b64encode(struct.pack("<4h", -1, 2, -3, 4)).decode()},
            "b": {"_type": "bytes", "value": "AAEC"},
            "t": {"_type": "datetime", "value": "2024-05-06T07:08:09"},
            "batch": {"_type": "batch", "value": [1, "x"]},
            "det": detections(["car", "dog"]),
            "image": dict(IMAGE, parent_id="cam"),
            "vm": {"_type": "video_metadata", "video_identifier": "v", "frame_number": 1,
                   "frame_timestamp": "2024-05-06T07:08:09", "fps": 30.0, "measured_fps": None,
                   "comes_from_video_file": True},
            "plain": {"x": [1, 2.5, None, "s"]},
        }
        out = self.outputs("def run(self, **kw):\n    return kw\n", value)
        self.assertEqual(out["arr"], value["arr"])
        self.assertEqual(out["b"], value["b"])
        self.assertEqual(out["t"], value["t"])
        self.assertEqual(out["batch"], value["batch"])
        self.assertEqual(out["det"], value["det"])
        self.assertEqual(out["image"]["value"], PNG_B64)
        self.assertEqual(out["image"]["parent_id"], "cam")
        self.assertEqual(out["vm"], value["vm"])
        self.assertEqual(out["plain"], value["plain"])
        again = self.outputs("def run(self, **kw):\n    return kw\n", out)
        self.assertEqual(again, out, "decode(encode(x)) is stable")


# ---------------------------------------------------------------------------------------
class CompatClassesTest(unittest.TestCase):
    def make(self):
        return rt._decode_inputs(json.dumps({"d": detections(["car", "dog", "car"])}))["d"]

    def test_iteration(self):
        items = list(self.make())
        self.assertEqual(len(items), 3)
        xyxy, mask, confidence, class_id, tracker_id, data = items[2]
        self.assertEqual(xyxy.tolist(), [110.0, 85.0, 130.0, 115.0])
        self.assertIsNone(mask)
        self.assertAlmostEqual(float(confidence), 0.7)
        self.assertEqual(int(class_id), 2)
        self.assertIsNone(tracker_id)
        self.assertEqual(data, {"class_name": "car", "detection_id": "d2"})

    def test_selection(self):
        det = self.make()
        cars = det[det.data["class_name"] == "car"]
        self.assertEqual(len(cars), 2)
        self.assertEqual([d[-1]["detection_id"] for d in cars], ["d0", "d2"])
        self.assertEqual(len(det[1]), 1)
        self.assertEqual(det[1].data["class_name"].tolist(), ["dog"])
        self.assertEqual(det[np.int64(1)].class_id.tolist(), [1])
        self.assertEqual(det[1:].class_id.tolist(), [1, 2])
        self.assertEqual(det[np.array([2, 0])].class_id.tolist(), [2, 0])
        self.assertEqual(det[[True, False, True]].class_id.tolist(), [0, 2])
        self.assertEqual(det["class_name"].tolist(), ["car", "dog", "car"])
        self.assertEqual(cars.metadata, det.metadata)

    def test_equality_and_data(self):
        self.assertEqual(self.make(), self.make())
        other = self.make()
        other.confidence = other.confidence + 0.01
        self.assertNotEqual(self.make(), other)
        det = self.make()
        det["score"] = [1, 2, 3]
        self.assertEqual(det[det.class_id > 0]["score"].tolist(), [2, 3])
        with self.assertRaises(ValueError):
            rt.Detections(xyxy=[[0, 0, 1, 1]], confidence=[0.1, 0.2])

    def test_merge_empty_area(self):
        det = self.make()
        merged = rt.Detections.merge([det[:1], rt.Detections.empty(), det[2:]])
        self.assertEqual(merged.data["detection_id"].tolist(), ["d0", "d2"])
        self.assertTrue(rt.Detections.empty().is_empty())
        self.assertEqual(det.box_area.tolist(), [600.0, 600.0, 600.0])

    def test_batch(self):
        batch = rt.Batch([1, None, 3])
        self.assertEqual(list(batch.iter_nonempty()), [1, 3])
        self.assertEqual(list(batch[1:]), [None, 3])
        self.assertEqual(len(rt.Batch([5]).broadcast(3)), 3)
        self.assertIs(rt.Batch[rt.Detections].__origin__, rt.Batch)


# ---------------------------------------------------------------------------------------
class AcceptanceShapesTest(RuntimeCase):
    def test_detections_filter(self):
        code = ("def run(self, predictions: sv.Detections) -> BlockResult:\n"
                "    cars = predictions[predictions.data['class_name'] == 'car']\n"
                "    ids = [d[-1]['detection_id'] for d in cars]\n"
                "    return {'cars': len(cars), 'ids': ids, 'xyxy0': [float(v) for v in cars.xyxy[0]]}\n")
        out = self.outputs(code, {"predictions": detections(["car", "dog", "car"])})
        self.assertEqual(out, {"cars": 2, "ids": ["d0", "d2"], "xyxy0": [90.0, 85.0, 110.0, 115.0]})

    def test_image_invert(self):
        code = ("def run(self, image: WorkflowImageData) -> BlockResult:\n"
                "    inverted = 255 - image.numpy_image\n"
                "    out = WorkflowImageData.copy_and_replace(origin_image_data=image, numpy_image=inverted)\n"
                "    return {'inverted': out, 'sum': int(inverted.astype(int).sum())}\n")
        out = self.outputs(code, {"image": IMAGE})
        self.assertEqual(out["sum"], 2280)
        self.assertEqual(out["inverted"]["_type"], "workflow_image")
        raw = base64.b64decode(out["inverted"]["value"])
        pixels = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        self.assertEqual(pixels.shape, (2, 2, 3))

    def check_cases(self, cases, names=None):
        """Runs each case (only those named, when names is given) through the runtime and
        checks its expectations; returns how many ran."""
        checked = 0
        for case in cases:
            # Only these, by name: the attack cases must never run outside the sandbox.
            if names is not None and case["name"] not in names:
                continue
            expect = case["expect"]
            with self.subTest(case=case["name"]):
                kw = {}
                for key, arg in (("init", "init"), ("function", "function"), ("context", "context"),
                                 ("imports", "imports")):
                    if case.get(key):
                        kw[arg] = case[key]
                response = self.run_block(case["code"], case.get("inputs", {}), **kw)
                report = {"success": response["success"], "stdout": response["stdout"],
                          "stderr": response["stderr"]}
                if response["success"]:
                    report["outputs"] = json.loads(response["result"])
                else:
                    for key in ("error_type", "error", "line_number", "function_name"):
                        report[key] = response[key]
                if "success" in expect:
                    self.assertEqual(report["success"], expect["success"], report)
                if "kind" in case:   # the project's own: functional or block_error
                    self.assertEqual(report["success"], case["kind"] == "functional", report)
                for key in ("outputs", "line_number", "function_name", "stdout", "stderr"):
                    if key in expect:
                        self.assertEqual(report[key], expect[key], key)
                if "error_type" in expect:
                    wanted = expect["error_type"]
                    wanted = wanted if isinstance(wanted, list) else [wanted]
                    self.assertIn(report["error_type"], wanted)
                for text in expect.get("error_contains", []):
                    self.assertIn(text, report["error"])
                if expect.get("check"):
                    self.assertIsNone(expect["check"](report, None))
                checked += 1
        return checked

    def test_own_functional_and_block_error_cases(self):
        """The project's own cases (tests/cases/blocks.json) whose work is the runtime's."""
        own = blocks.load("functional", "block_error")
        self.assertGreaterEqual(len(own), 30)
        self.assertEqual(self.check_cases(own), len(own))

    @unittest.skipUnless(os.path.exists(ACCEPTANCE_CASES), "acceptance suite not present")
    def test_functional_and_block_error_cases(self):
        """Every functional / block-error acceptance case whose work is the runtime's."""
        spec = importlib.util.spec_from_file_location("acceptance_cases", ACCEPTANCE_CASES)
        cases = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cases)
        self.assertEqual(self.check_cases(cases.CASES, RUNTIME_CASES), len(RUNTIME_CASES))


# ---------------------------------------------------------------------------------------
class LimitsTest(RuntimeCase):
    def test_stdout_cap_on_a_50_mb_flood(self):
        runtime = rt.Runtime({"max_stream_bytes": 1 << 20})
        code = ("import sys\n\ndef run(self):\n    line = 'x' * (1 << 20)\n"
                "    for _ in range(50):\n        print(line)\n        sys.stderr.write(line)\n"
                "    return {'done': True}\n")
        start = time.monotonic()
        response = self.run_block(code, runtime=runtime)
        self.assertLess(time.monotonic() - start, 10)
        self.assertTrue(response["success"])
        for stream in ("stdout", "stderr"):
            text = response[stream]
            self.assertLessEqual(len(text.encode()), 1 << 20)
            self.assertGreater(len(text.encode()), (1 << 20) - 100)
            self.assertEqual(text.count("[blockbox: output cut at"), 1)
            self.assertTrue(text.endswith(" bytes]"))

    def test_cap_counts_utf8_bytes_and_keeps_whole_characters(self):
        runtime = rt.Runtime({"max_stream_bytes": 1000})
        response = self.run_block("def run(self):\n    print('\u00e9' * 5000)\n    return {}\n",
                                  runtime=runtime)
        text = response["stdout"]
        self.assertLessEqual(len(text.encode("utf-8")), 1000)
        self.assertTrue(text.startswith("\u00e9" * 400))

    def test_writer_drops_excess_as_it_arrives(self):
        writer = rt._CappedWriter(200, "<stdout>")
        for _ in range(10000):
            writer.write("y" * 1000)
        self.assertLessEqual(sum(len(p) for p in writer._parts), 200)
        self.assertLessEqual(len(writer._parts), 3)
        with self.assertRaises(TypeError):
            writer.write(b"bytes")

    def test_output_limit_is_the_callers(self):
        # An OutputLimit must be seen by the trusted side (issue 8): the runtime sends an
        # oversized result as it is and the C side refuses it by its own cap.
        runtime = rt.Runtime({"max_result_bytes": 1000})
        r = self.run_block("def run(self):\n    return {'x': 'a' * 2000}\n", runtime=runtime)
        self.assertTrue(r["success"])
        self.assertEqual(len(r["result"]), len('{"x":""}') + 2000)
        traced = self.run_block("def run(self):\n    debug_traces.append('t' * 900)\n"
                                "    return {'x': 'a' * 500}\n", runtime=runtime)
        self.assertTrue(traced["success"], "debug traces have their own caps (1 MiB a run)")
        self.assertEqual(traced["debug_traces"][0]["value"], "t" * 900)

    def test_outputs_nested_past_the_callers_limit_are_the_blocks_error(self):
        # The request's "limits" extension tells the runtime BLOCKBOX_MAX_DEPTH (issue 8).
        code = "def run(self):\n    v = []\n    for _ in range(70):\n        v = [v]\n    return {'d': v}\n"
        r = self.run_block(code, limits={"max_depth": 64})
        self.assertFalse(r["success"])
        self.assertEqual(r["error_type"], "ValueError")
        self.assertIn("nested 72 levels deep, over the limit of 64", r["error"])
        self.assertTrue(self.run_block(code, limits={"max_depth": 80})["success"])
        self.assertTrue(self.run_block(code)["success"], "no limit sent: none applied")
        bad = self.run_block(code, limits={"max_depth": "64"})
        self.assertEqual(bad["error_type"], "InvalidRequest")

    def test_default_limits(self):
        runtime = rt.Runtime()
        self.assertEqual(runtime._max_stream, 1 << 20)
        self.assertEqual(runtime._max_result, 64 << 20)
        for bad in ({"max_result_bytes": 0}, {"max_stream_bytes": "1"}):
            with self.assertRaises(ValueError):
                rt.Runtime(bad)

    def test_many_trivial_calls(self):
        # (speed is measured by bench/, against baselines of the same run, not here)
        runtime = rt.Runtime()
        code = "def run(self, a):\n    return {'a': a}\n"
        runtime.handle_bytes(json.dumps(request(code, {"a": 1})).encode())
        frame = json.dumps(request(code, {"a": 1}, with_code=False)).encode()
        for _ in range(2000):
            out = runtime.handle_bytes(frame)
        self.assertIn(b'"success":true', out)


# ---------------------------------------------------------------------------------------
class JailHookTest(RuntimeCase):
    """The runtime knows nothing of the jail (issue 8 item 3): the host records denials
    outside the worker, so nothing in the block's process can erase or invent them."""

    def test_no_hook_module_is_consulted(self):
        fake = types.ModuleType("_blockbox_jail")
        fake.denied = lambda: ["socket"]
        fake.reset = lambda: None
        sys.modules["_blockbox_jail"] = fake
        try:
            runtime = rt.Runtime()
            self.assertFalse(hasattr(runtime, "_jail"))
            r = runtime.handle(request("def run(self):\n    raise PermissionError(1, 'x')\n", {}))
        finally:
            sys.modules.pop("_blockbox_jail", None)
        # a block's own exception keeps its own type; the reply claims no denial
        self.assertEqual(r["error_type"], "PermissionError")
        self.assertEqual(r["denied_syscalls"], [])

    def test_fresh_entropy_reseeds_the_global_generators(self):
        import random
        np.random.seed(1)
        random.seed(1)
        before = (np.random.get_state()[1][:4].tolist(), random.getstate())
        rt.fresh_entropy()
        self.assertNotEqual(np.random.get_state()[1][:4].tolist(), before[0])
        self.assertNotEqual(random.getstate(), before[1])


# ---------------------------------------------------------------------------------------
class WarmUpTest(unittest.TestCase):
    def test_warm_up_starts_no_thread(self):
        script = (
            "import os, sys, threading\n"
            "sys.path.insert(0, %r)\n"
            "import blockbox_runtime\n"
            "blockbox_runtime.warm_up()\n"
            "print(len(os.listdir('/proc/self/task')), threading.active_count(),"
            " 'numpy' in sys.modules, 'cv2' in sys.modules, 'blockbox_block' in sys.modules)\n"
        ) % RUNTIME_DIR
        env = {"PATH": "/usr/bin:/bin"}
        out = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True,
                             env=env, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(), ["1", "1", "True", "True", "False"])

    def test_warm_up_is_repeatable(self):
        rt.warm_up()
        rt.warm_up()


if __name__ == "__main__":
    unittest.main()
