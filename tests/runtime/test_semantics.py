# test_semantics.py: unit tests of the Roboflow semantics of the runtime (issue 15):
# debug traces, `globals`, init lookup, preamble names and helpers, workflow context.
import datetime
import json
import os
import sys
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_runtime import IMAGE, RuntimeCase, rt  # noqa: E402

CONTEXT = {"step_name": "my_step", "step_selector": "$steps.my_step",
           "block_type": "custom_block", "workflow_execution_id": "exec-1f3a"}


def entry_size(entry):
    return len(json.dumps(entry, default=str))


class TraceEntriesTest(RuntimeCase):
    def traces(self, body, inputs=None, context=None, **kw):
        code = "def run(self):\n" + "".join("    %s\n" % line for line in body.splitlines())
        response = self.run_block(code, inputs, context=context, **kw)
        return response, response.get("debug_traces")

    def good_traces(self, body, **kw):
        """The debug_traces of a run of `body` that must succeed."""
        response, traces = self.traces(body, **kw)
        self.assertTrue(response["success"], response)
        return traces

    def test_entry_shape_and_step(self):
        traces = self.good_traces("debug_traces.append({'a': (1, 2)})\nreturn {}", context=CONTEXT)
        self.assertEqual(traces, [{"step": "my_step", "value": {"a": [1, 2]}}])
        traces = self.good_traces("debug_traces.append(1)\nreturn {}",
                                   context={"step_selector": "$steps.other"})
        self.assertEqual(traces, [{"step": "other", "value": 1}])
        traces = self.good_traces("debug_traces.append(1)\nreturn {}")
        self.assertEqual(traces, [{"step": None, "value": 1}])

    def test_timestamps_with_timezones(self):
        body = ("import datetime as d\n"
                "debug_traces.append('u', add_timestamp=True)\n"
                "debug_traces.append('p', add_timestamp=True, timezone='Europe/Paris')\n"
                "debug_traces.append('f', add_timestamp=True, "
                "timezone=d.timezone(d.timedelta(hours=5)))\n"
                "debug_traces.append('n', timezone='Europe/Paris')\nreturn {}")
        traces = self.good_traces(body)
        utc, paris, fixed, plain = traces
        self.assertEqual(utc["timestamp_timezone"], "UTC")
        self.assertEqual(datetime.datetime.fromisoformat(utc["timestamp"]).utcoffset(),
                         datetime.timedelta(0))
        self.assertEqual(paris["timestamp_timezone"], "Europe/Paris")
        self.assertIn(datetime.datetime.fromisoformat(paris["timestamp"]).utcoffset(),
                      (datetime.timedelta(hours=1), datetime.timedelta(hours=2)))
        self.assertEqual(fixed["timestamp_timezone"], "UTC+05:00")
        self.assertEqual(plain, {"step": None, "value": "n"}, "no timestamp unless asked")

    def test_bad_timezone_and_positional_flag_are_the_blocks_errors(self):
        response, traces = self.traces("debug_traces.append('a')\n"
                                       "debug_traces.append('b', add_timestamp=True, "
                                       "timezone='Mars/Olympus')\nreturn {}")
        self.assertEqual(response["error_type"], "ValueError")
        self.assertIn("Invalid timezone: 'Mars/Olympus'", response["error"])
        self.assertEqual(response["line_number"], 3)
        self.assertEqual(traces, [{"step": None, "value": "a"}], "partial traces kept")
        response, _ = self.traces("debug_traces.append('b', True)\nreturn {}")
        self.assertEqual(response["error_type"], "TypeError", "add_timestamp is keyword-only")

    def test_values_serialised_as_roboflow_does(self):
        body = ("class Thing:\n    def __repr__(self):\n        return 'Thing!'\n"
                "loop = []\nloop.append(loop)\ndeep = 1\n"
                "for _ in range(40):\n    deep = [deep]\n"
                "for v in [Thing(), np.array([1, 2]), {1: 'int key'}, float('nan'), loop, deep,"
                " 'é', None]:\n    debug_traces.append(v)\nreturn {}")
        traces = self.good_traces(body)
        values = [t["value"] for t in traces]
        self.assertEqual(values[:5], ["Thing!", repr(np.array([1, 2])), {"1": "int key"}, None,
                                      "[[...]]"])
        self.assertEqual(values[5], repr(json.loads("[" * 40 + "1" + "]" * 40)),
                         "too deep for the reply: kept as repr text")
        self.assertEqual(values[6:], ["é", None])

    def test_entry_cap_truncates_the_value(self):
        traces = self.good_traces("debug_traces.append('x' * 100000, add_timestamp=True)\n"
                                   "debug_traces.append({'k': 'y' * 20000})\nreturn {}")
        first, second = traces
        for entry in traces:
            self.assertLessEqual(entry_size(entry), rt.TRACE_MAX_ENTRY_CHARS)
            self.assertGreater(entry_size(entry), rt.TRACE_MAX_ENTRY_CHARS - 16, "longest fit")
            self.assertTrue(entry["value"].endswith("... [entry truncated]"))
        self.assertTrue(first["value"].startswith("xxxx"))
        self.assertIn("timestamp", first)
        self.assertTrue(second["value"].startswith("{'k': 'yyy"), "repr of the JSON value")

    def test_count_cap_adds_one_marker(self):
        traces = self.good_traces("for i in range(1500):\n    debug_traces.append(i)\nreturn {}",
                                   context=CONTEXT)
        self.assertEqual(len(traces), rt.TRACE_MAX_ENTRIES + 1)
        self.assertEqual(traces[-2]["value"], rt.TRACE_MAX_ENTRIES - 1)
        self.assertEqual(traces[-1], {"step": "my_step", "value": rt.TRACE_LIMIT_MARKER})

    def test_total_cap_adds_one_marker(self):
        traces = self.good_traces("for i in range(200):\n    debug_traces.append('z' * 15000)\n"
                                   "return {}")
        self.assertEqual(traces[-1]["value"], rt.TRACE_LIMIT_MARKER)
        self.assertEqual(sum(1 for t in traces if t["value"] == rt.TRACE_LIMIT_MARKER), 1)
        kept = traces[:-1]
        self.assertLessEqual(sum(entry_size(t) for t in kept), rt.TRACE_MAX_TOTAL_CHARS)
        self.assertGreater(sum(entry_size(t) for t in kept) + 15100, rt.TRACE_MAX_TOTAL_CHARS)

    def test_huge_step_name_ends_the_trace(self):
        traces = self.good_traces("debug_traces.append(1)\ndebug_traces.append(2)\nreturn {}",
                                   context={"step_name": "s" * 20000})
        self.assertEqual(traces, [{"step": None, "value": rt.TRACE_LIMIT_MARKER}])

    def test_traces_of_the_run_only_and_kept_on_failure(self):
        runtime = rt.Runtime()
        code = "def run(self, n):\n    debug_traces.append(n)\n    return {'n': 1 / n}\n"
        init = "def init():\n    debug_traces.append('init')\n    return {}\n"
        first = self.run_block(code, {"n": 1}, runtime=runtime, init=init)
        self.assertEqual([t["value"] for t in first["debug_traces"]], [1],
                         "init runs outside the run's trace (Roboflow: at compile time)")
        failed = self.run_block(code, {"n": 0}, runtime=runtime, with_code=False)
        self.assertEqual(failed["error_type"], "ZeroDivisionError")
        self.assertEqual([t["value"] for t in failed["debug_traces"]], [0], "partial, this run")
        load_failed = self.run_block("debug_traces.append('module')\nundefined\n"
                                     "def run(self):\n    return {}\n")
        self.assertEqual(load_failed["error_type"], "NameError")
        self.assertEqual(load_failed["debug_traces"], [], "module code is not traced either")

    def test_debug_traces_is_read_only_list_like(self):
        body = ("debug_traces.append(5)\n"
                "return {'n': len(debug_traces), 'first': debug_traces[0]['value'],"
                " 'has_extend': hasattr(debug_traces, 'extend')}")
        response, _ = self.traces(body)
        self.assertEqual(json.loads(response["result"]),
                         {"n": 1, "first": 5, "has_extend": False})


class GlobalsTest(RuntimeCase):
    def test_globals_is_a_dict_kept_per_instance(self):
        runtime = rt.Runtime()
        code = ("def run(self):\n    seen = globals.get('n')\n    globals['n'] = (seen or 0) + 1\n"
                "    return {'seen': seen, 'in': 'n' in globals, 'type': type(globals).__name__}\n")
        self.assertEqual(self.outputs(code, runtime=runtime),
                         {"seen": None, "in": True, "type": "dict"})
        self.assertEqual(self.outputs(code, runtime=runtime, with_code=False)["seen"], 1)
        other = "def run(self):\n    return {'n': globals.get('n')}\n"
        self.assertEqual(self.outputs(other, runtime=runtime), {"n": 2},
                         "the blocks one process serves share it")
        self.assertEqual(self.outputs(code)["seen"], None, "another instance: its own dict")

    def test_globals_call_fails_as_in_roboflow(self):
        r = self.failure("def run(self):\n    return {'g': globals()}\n")
        self.assertEqual(r["error_type"], "TypeError")
        self.assertIn("'dict' object is not callable", r["error"])


class InitLookupTest(RuntimeCase):
    RUN = "def run(self):\n    return {'i': self._init_results}\n"

    def test_init_code_defines_the_name(self):
        self.assertEqual(self.outputs(self.RUN, init="def init():\n    return {'k': 1}\n"),
                         {"i": {"k": 1}})

    def test_init_code_without_the_name_fails_at_load(self):
        runtime = rt.Runtime()
        load = self.run_block(self.RUN, None, runtime=runtime,
                              init="def start():\n    return {}\n", inputs_text=None)
        self.assertFalse(load["success"])
        self.assertEqual(load["error_type"], "NameError")
        self.assertIn("no function 'init'", load["error"])

    def test_no_init_code_but_run_code_defines_init(self):
        code = self.RUN + "\ndef init():\n    return {'from': 'run code'}\n"
        self.assertEqual(self.outputs(code), {"i": {"from": "run code"}})
        custom = self.RUN + "\ndef setup():\n    return {'from': 'setup'}\n"
        self.assertEqual(self.outputs(custom, init_function_name="setup"),
                         {"i": {"from": "setup"}}, "init_function_name without init code")
        self.assertEqual(self.outputs(self.RUN), {"i": {}}, "no init anywhere: {}")

    def test_empty_init_string_is_not_no_init(self):
        r = self.failure(self.RUN, init="")
        self.assertEqual(r["error_type"], "NameError")
        code = self.RUN + "\ndef init():\n    return {'k': 'run code'}\n"
        self.assertEqual(self.outputs(code, init=""), {"i": {"k": "run code"}})


class PreambleTest(RuntimeCase):
    def test_requests_is_importable_and_fails_clearly(self):
        code = ("import requests\nimport requests.exceptions\nfrom requests import Session\n"
                "from requests.adapters import HTTPAdapter\nfrom requests.auth import HTTPBasicAuth\n"
                "session = Session()\nsession.mount('https://', HTTPAdapter(max_retries=3))\n"
                "session.auth = HTTPBasicAuth('u', 'p')\n\n"
                "def run(self):\n    out = []\n"
                "    for call in (lambda: requests.get('http://example.com/x'),"
                " lambda: requests.post(url='https://h/'), lambda: Session().get('http://s/'),"
                " lambda: requests.request('GET', 'http://r/')):\n"
                "        try:\n            call()\n"
                "        except requests.exceptions.RequestException as e:\n"
                "            out.append([type(e).__name__, str(e), isinstance(e, IOError),"
                " isinstance(e, requests.ConnectionError)])\n"
                "    return {'out': out, 'same': requests is sys.modules['requests']}\n")
        out = self.outputs(code, imports=["import sys"])
        self.assertTrue(out["same"])
        self.assertEqual(len(out["out"]), 4)
        for (name, message, is_ioerror, is_conn), url in zip(
                out["out"], ("http://example.com/x", "https://h/", "http://s/", "http://r/")):
            self.assertEqual((name, is_ioerror, is_conn), ("ConnectionError", True, True))
            self.assertIn("no network access", message)
            self.assertIn(url, message)
        r = self.failure("def run(self):\n    requests.get('http://x/')\n    return {}\n")
        self.assert_block_error(r, "ConnectionError", 2)

    def test_shapely_from_the_preamble(self):
        # python3-shapely is a dependency (scripts/deps.sh): its absence is a failure here.
        code = ("from shapely.geometry import Polygon\n\ndef run(self):\n"
                "    square = Polygon([(0, 0), (2, 0), (2, 2), (0, 2)])\n"
                "    return {'area': square.area, 'mod': shapely.__name__,"
                " 'hit': square.contains(shapely.geometry.Point(1, 1))}\n")
        self.assertEqual(self.outputs(code), {"area": 4.0, "mod": "shapely", "hit": True})

    def test_batch_iter_with_indices(self):
        code = ("def run(self, xs):\n"
                "    return {'pairs': [[list(i), x] for i, x in xs.iter_with_indices()],"
                " 'own': [list(i) for i, _ in Batch.init(['a', 'b'], [(3, 1), (3, 2)])"
                ".iter_with_indices()]}\n")
        out = self.outputs(code, {"xs": {"_type": "batch", "value": [10, 20]}})
        self.assertEqual(out, {"pairs": [[[0], 10], [[1], 20]], "own": [[3, 1], [3, 2]]})

    def test_declare_numpy_image_mutated_reencodes(self):
        code = ("def run(self, image, declare):\n    pixels = image.numpy_image\n"
                "    pixels[:] = 0\n    if declare:\n        image.declare_numpy_image_mutated()\n"
                "    return {'image': image}\n")
        declared = self.outputs(code, {"image": IMAGE, "declare": True})["image"]
        undeclared = self.outputs(code, {"image": IMAGE, "declare": False})["image"]
        self.assertEqual(undeclared["value"], IMAGE["value"], "undeclared: stale base64")
        self.assertNotEqual(declared["value"], IMAGE["value"])
        pixels = rt._decode_image_bytes(declared["value"])
        self.assertEqual(int(pixels.max()), 0, "re-encoded from the mutated pixels")
        r = self.failure("def run(self, image):\n    image.declare_numpy_image_mutated()\n"
                         "    return {}\n", {"image": IMAGE})
        self.assertEqual(r["error_type"], "ValueError")
        self.assertIn("numpy_image", r["error"])


class SelfRuleTest(RuntimeCase):
    def test_self_only_when_the_first_parameter_is_named_self(self):
        self.assertEqual(self.outputs("def validate_syntax():\n    return {'valid': True}\n",
                                      function="validate_syntax"), {"valid": True})
        self.assertEqual(self.outputs("def run(a):\n    return {'a': a}\n", {"a": 1}), {"a": 1})
        self.assertEqual(self.outputs("def run(self, a):\n    return {'ctx': type(self).__name__}\n",
                                      {"a": 1}), {"ctx": "_BlockSelf"})
        wrapped = ("import functools\n\ndef deco(f):\n    @functools.wraps(f)\n"
                   "    def inner(*args, **kwargs):\n        return f(*args, **kwargs)\n"
                   "    return inner\n\n@deco\ndef run(self, a):\n"
                   "    return {'self': self is not None, 'a': a}\n")
        self.assertEqual(self.outputs(wrapped, {"a": 2}), {"self": True, "a": 2},
                         "a decorated function is judged by the function it wraps")


class WorkflowContextTest(RuntimeCase):
    def test_roboflow_keys_come_back_unchanged(self):
        code = ("def run(self):\n    first = self.get_workflow_context()\n"
                "    first['step_name'] = 'changed by the block'\n"
                "    return {'ctx': self.get_workflow_context()}\n")
        self.assertEqual(self.outputs(code, context=CONTEXT), {"ctx": CONTEXT})
        self.assertEqual(self.outputs(code), {"ctx": {}}, "nothing sent: nothing filled in")


if __name__ == "__main__":
    unittest.main()
