#!/usr/bin/python3
# test_blocks.py: Roboflow-shaped blocks (issue 15) through `blockbox run` in local mode
# and in modal mode against the emulator: the same report both ways, and Roboflow's.
"""Differential tests of the Roboflow semantics blockbox keeps.

    /usr/bin/python3 tests/semantics/test_blocks.py --bin build/bin/blockbox [-k NAME]

Each test runs one block in both modes, requires identical reports and exit statuses
(timestamps aside: they are the clock's), then checks what Roboflow's local mode gives:
debug traces (shape, step, timestamps with time zones, value serialisation, caps, kept
on failure), `globals`, init lookup in all four cases, the preamble names (`requests`,
`shapely`), `Batch.iter_with_indices`, `WorkflowImageData.declare_numpy_image_mutated`,
the workflow context keys, and error text from a bare-message (Roboflow-style) server.
"""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
from harness import Emulator  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cli_args  # noqa: E402  (tests/cli_args.py)

BINARY = None
CONTEXT = {"step_name": "count_people", "step_selector": "$steps.count_people",
           "block_type": "CountPeople", "workflow_execution_id": "5e1b0c1e-exec"}
MARKER = "[debug trace limit reached - further entries of this run were dropped]"
STAMP = re.compile(r'"timestamp": "[^"]*"')
ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def png_2x2():
    import zlib
    import struct

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + bytes([200, 100, 50] * 2) for _ in range(2))
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
        ">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")).decode()


def comparable(report):
    """The report without what differs between any two runs (clock, addresses)."""
    text = json.dumps(report, sort_keys=True)
    return json.loads(ADDRESS.sub(" at 0x?", STAMP.sub('"timestamp": "?"', text)))


class BlocksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(token_id="wk-semTOKEN-1d2e", token_secret="ws-semSECRET-9f8e7d")
        cls.work = tempfile.mkdtemp(prefix="bbsem-")

    @classmethod
    def tearDownClass(cls):
        cls.emu.close()
        subprocess.run(["rm", "-rf", cls.work], check=False)

    def write(self, name, text):
        path = os.path.join(self.work, "%s.%s" % (self.id().rsplit(".", 1)[-1], name))
        with open(path, "w", encoding="utf-8") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))
        return path

    def invoke(self, args, mode):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MODAL_", "BLOCKBOX_", "WORKFLOWS_", "ALLOW_CUSTOM"))}
        extra = []
        if mode == "modal":
            env.update(self.emu.env("ws1"))
            extra = ["--mode", "modal", "--workspace", "ws1"]
        else:
            env["WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE"] = "local"
        proc = subprocess.run([BINARY] + args + extra, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120, cwd=self.work)
        try:
            report = json.loads(proc.stdout.decode("utf-8"))
        except ValueError:
            self.fail("%s mode printed no JSON report (exit %d): %r" % (
                mode, proc.returncode, proc.stderr[-400:]))
        return proc.returncode, report

    def args(self, code, inputs=None, init=None, context=None, extra=()):
        args = ["run", "--code", self.write("py", code),
                "--inputs", self.write("inputs.json", inputs or {})]
        if init is not None:
            args += ["--init", self.write("init.py", init)]
        if context is not None:
            args += ["--context", self.write("ctx.json", context)]
        return args + list(extra)

    def both(self, code, inputs=None, init=None, context=None, extra=(), exit_code=0):
        """Runs the block in both modes; returns the (identical) report."""
        args = self.args(code, inputs, init, context, extra)
        local_exit, local = self.invoke(args, "local")
        before = self.emu.stats()["executions"]
        modal_exit, modal = self.invoke(args, "modal")
        self.assertGreater(self.emu.stats()["executions"], before, "modal mode ran on the emulator")
        self.assertEqual(comparable(local), comparable(modal), "local and modal reports differ")
        self.assertEqual((local_exit, modal_exit), (exit_code, exit_code), local)
        self.assertIn("debug_traces", local, "the report always has debug_traces")
        return local

    # ---- debug traces ---------------------------------------------------------------
    def test_traces_on_success(self):
        code = ("import datetime\n\nclass Box:\n    def __repr__(self):\n        return 'Box()'\n\n"
                "def run(self, n):\n"
                "    debug_traces.append({'n': n, 'pair': (1, 2)})\n"
                "    debug_traces.append(np.array([1, 2]), add_timestamp=True)\n"
                "    debug_traces.append(Box(), add_timestamp=True, timezone='America/New_York')\n"
                "    debug_traces.append(float('nan'))\n"
                "    return {'n': n}\n")
        report = self.both(code, {"n": 3}, context=CONTEXT)
        self.assertEqual(report["outputs"], {"n": 3})
        first, array, box, nan = report["debug_traces"]
        self.assertEqual(first, {"step": "count_people", "value": {"n": 3, "pair": [1, 2]}})
        self.assertEqual(array["value"], "array([1, 2])")
        self.assertEqual(array["timestamp_timezone"], "UTC")
        self.assertTrue(array["timestamp"].endswith("+00:00"))
        self.assertEqual(box["value"], "Box()")
        self.assertEqual(box["timestamp_timezone"], "America/New_York")
        self.assertRegex(box["timestamp"], r"-0[45]:00$")
        self.assertEqual(nan, {"step": "count_people", "value": None})

    def test_traces_kept_on_failure(self):
        code = ("def run(self, items):\n    for i, item in enumerate(items):\n"
                "        debug_traces.append({'i': i, 'item': item})\n"
                "        total = 10 / item\n    return {'t': total}\n")
        report = self.both(code, {"items": [5, 2, 0, 1]}, exit_code=1)
        self.assertEqual(report["error_type"], "ZeroDivisionError")
        self.assertEqual(report["line_number"], 4)
        self.assertEqual([t["value"]["item"] for t in report["debug_traces"]], [5, 2, 0])

    def test_init_and_module_code_are_not_traced(self):
        code = ("debug_traces.append('module')\n\ndef run(self):\n"
                "    debug_traces.append('run')\n    return {}\n")
        init = "def init():\n    debug_traces.append('init')\n    return {}\n"
        report = self.both(code, init=init, context=CONTEXT)
        self.assertEqual(report["debug_traces"], [{"step": "count_people", "value": "run"}])

    def test_trace_caps(self):
        code = ("def run(self, kind):\n"
                "    if kind == 'count':\n        for i in range(1200):\n"
                "            debug_traces.append(i)\n"
                "    elif kind == 'entry':\n        debug_traces.append('x' * 50000)\n"
                "    else:\n        for i in range(100):\n"
                "            debug_traces.append('y' * 16000)\n"
                "    return {}\n")
        count = self.both(code, {"kind": "count"}, context=CONTEXT)["debug_traces"]
        self.assertEqual(len(count), 1001)
        self.assertEqual(count[-1], {"step": "count_people", "value": MARKER})
        entry = self.both(code, {"kind": "entry"})["debug_traces"]
        self.assertEqual(len(entry), 1)
        self.assertTrue(entry[0]["value"].endswith("... [entry truncated]"))
        self.assertLessEqual(len(json.dumps(entry[0])), 16384)
        total = self.both(code, {"kind": "total"})["debug_traces"]
        self.assertEqual(total[-1]["value"], MARKER)
        self.assertLessEqual(sum(len(json.dumps(t)) for t in total[:-1]), 1 << 20)
        self.assertEqual(len(total), 66, "65 entries of 16 kB fit in 1 MiB, then the marker")

    def test_bad_timezone_is_the_blocks_error(self):
        code = ("def run(self):\n    debug_traces.append('before')\n"
                "    debug_traces.append(1, add_timestamp=True, timezone='Nowhere/City')\n"
                "    return {}\n")
        report = self.both(code, exit_code=1)
        self.assertEqual(report["error_type"], "ValueError")
        self.assertIn("Invalid timezone: 'Nowhere/City'", report["error"])
        self.assertEqual(report["debug_traces"], [{"step": None, "value": "before"}])

    # ---- globals, init, preamble, helpers, context ----------------------------------
    def test_globals_is_a_dict(self):
        code = ("globals['loaded'] = globals.get('loaded', 0) + 1\n\n"
                "def run(self):\n    globals.setdefault('runs', []).append(1)\n"
                "    return {'loaded': globals['loaded'], 'keys': sorted(globals),"
                " 'is_dict': isinstance(globals, dict)}\n")
        report = self.both(code)
        self.assertEqual(report["outputs"], {"loaded": 1, "keys": ["loaded", "runs"],
                                             "is_dict": True})

    RUN = "def run(self):\n    return {'init': self._init_results}\n"

    def test_init_sent_and_defined(self):
        report = self.both(self.RUN, init="def init():\n    return {'model': 'loaded'}\n")
        self.assertEqual(report["outputs"], {"init": {"model": "loaded"}})

    def test_init_sent_but_not_defined(self):
        report = self.both(self.RUN, init="def start():\n    return {}\n", exit_code=1)
        self.assertEqual(report["error_type"], "NameError")
        self.assertIn("no function 'init'", report["error"])

    def test_init_defined_by_run_code_only(self):
        code = self.RUN + "\ndef init():\n    return {'from': 'run code'}\n"
        self.assertEqual(self.both(code)["outputs"], {"init": {"from": "run code"}})
        custom = self.RUN + "\ndef setup():\n    return {'from': 'setup'}\n"
        report = self.both(custom, extra=["--init-function", "setup"])
        self.assertEqual(report["outputs"], {"init": {"from": "setup"}})
        self.assertEqual(self.both(self.RUN)["outputs"], {"init": {}})

    def test_empty_init_is_not_no_init(self):
        report = self.both(self.RUN, init="", exit_code=1)
        self.assertEqual(report["error_type"], "NameError")
        code = self.RUN + "\ndef init():\n    return {'k': 1}\n"
        self.assertEqual(self.both(code, init="")["outputs"], {"init": {"k": 1}})

    def test_requests_and_shapely(self):
        code = ("import requests\nfrom shapely.geometry import Point, Polygon\n\n"
                "def run(self, url):\n    area = Polygon([(0, 0), (4, 0), (4, 4)]).area\n"
                "    try:\n        requests.get(url, timeout=2)\n"
                "    except requests.exceptions.ConnectionError as e:\n"
                "        return {'area': area, 'error': str(e),"
                " 'inside': Point(3, 1).within(shapely.geometry.box(0, 0, 4, 4))}\n")
        report = self.both(code, {"url": "https://api.example.com/v1"})
        self.assertEqual(report["outputs"]["area"], 8.0)
        self.assertTrue(report["outputs"]["inside"])
        self.assertIn("no network access", report["outputs"]["error"])
        self.assertIn("https://api.example.com/v1", report["outputs"]["error"])
        failing = self.both("def run(self):\n    requests.post('http://h/')\n    return {}\n",
                            exit_code=1)
        self.assertEqual(failing["error_type"], "ConnectionError")
        self.assertEqual(failing["line_number"], 2)

    def test_batch_and_image_helpers(self):
        code = ("def run(self, images, factor):\n    out = []\n"
                "    for index, image in images.iter_with_indices():\n"
                "        pixels = image.numpy_image\n        pixels //= factor\n"
                "        image.declare_numpy_image_mutated()\n"
                "        out.append({'index': list(index), 'max': int(image.numpy_image.max()),"
                " 'image': image})\n    return out\n")
        image = {"_type": "workflow_image", "type": "base64", "value": png_2x2(),
                 "video_metadata": None}
        report = self.both(code, {"images": {"_type": "batch", "value": [image, image]},
                                  "factor": 4})
        self.assertEqual([o["index"] for o in report["outputs"]], [[0], [1]])
        self.assertEqual([o["max"] for o in report["outputs"]], [50, 50])
        self.assertNotEqual(report["outputs"][0]["image"]["value"], image["value"],
                            "the declared mutation is what goes out")

    def test_error_text_from_a_bare_message_server(self):
        # A Roboflow deployment answers with the bare str(e) and no traces: the client
        # builds the same "Error in line N, in F: T: msg" as local mode prints.
        for code, text in (
                ("def run(self, x):\n    y = 1\n    return {'y': y / x}\n",
                 "Error in line 3, in run: ZeroDivisionError: division by zero"),
                ("def helper():\n    raise KeyError('k')\n\ndef run(self, x):\n"
                 "    debug_traces.append(x)\n    return helper()\n",
                 "Error in line 2, in helper: KeyError: 'k'")):
            args = self.args(code, {"x": 0})
            local_exit, local = self.invoke(args, "local")
            used = self.emu.stats()["faults_used"]
            self.emu.faults({"kind": "roboflow"})
            modal_exit, modal = self.invoke(args, "modal")
            self.assertEqual(self.emu.stats()["faults_used"], used + 1, "answered Roboflow-style")
            self.assertEqual((local_exit, modal_exit), (1, 1))
            self.assertEqual(local["error"], text)
            for key in ("success", "error_type", "error", "line_number", "function_name",
                        "outputs"):
                self.assertEqual(modal.get(key), local.get(key), key)
            self.assertEqual(modal["debug_traces"], [], "a Roboflow deployment sends none")

    def test_workflow_context_keys_come_back_unchanged(self):
        code = "def run(self):\n    return {'ctx': self.get_workflow_context()}\n"
        self.assertEqual(self.both(code, context=CONTEXT)["outputs"], {"ctx": CONTEXT})


def main():
    global BINARY
    BINARY, argv = cli_args.binary_and_rest()
    worker = os.path.join(os.path.dirname(BINARY), "blockbox-worker")
    if not os.path.exists(BINARY) or not os.path.exists(worker):
        print("skipped: %s or its worker is not built" % BINARY)
        return 77
    program = unittest.main(argv=argv, exit=False, verbosity=2)
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
