#!/usr/bin/python3
# test_serve.py: `blockbox serve` against a Roboflow-shaped client: protocol, auth,
# tenancy, concurrency, hostile tenants and bodies, back-pressure, SIGTERM, operations.
"""Live-server tests of `blockbox serve`.

    /usr/bin/python3 tests/serve/test_serve.py --bin build/bin/blockbox [-k NAME]

How the defences were shown to matter (each was switched off once locally and its test
failed): auth (sv_auth_check replaced by SV_AUTH_OK: the 401 and 403 tests fail), the
inflation cap (sv_body max raised to 1 TiB: the gzip-bomb test fails; the huge plain body
is still refused by the Content-Length check), the workspace in the tenancy key (pool.c
find() ignoring it: the two-workspace test sees a shared counter, 3 != 1), the
per-workspace run cap (max_runs_per_ws = max_runs: the good tenant's calls wait behind
the hangs).
"""
import datetime
import gzip
import http.client
import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import (BlockError, HTTPStatusError, RoboflowClient, Server,  # noqa: E402
                     code_hash, serving, tokens_file)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cli_args  # noqa: E402  (tests/cli_args.py)

BIN = None
TOKENS = ("tok-id-1f3a", "tok-secret-9b7c")
JPEG_1x1 = ("/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////"
            "////////////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAA"
            "AAAAAP/aAAgBAQABPxA=")


def png_bytes(h=4, w=6):
    import cv2
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:, :, 2] = 200
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


class Shared(unittest.TestCase):
    """One server for the protocol tests."""
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(BIN, env={"BLOCKBOX_TIMEOUT": "10"})

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        assert rc == 0, cls.server.log()[-2000:]
        for secret in TOKENS:
            assert secret not in cls.server.log(), "a token reached the server log"

    def client(self, ws="acme"):
        c = RoboflowClient(self.server, ws)
        self.addCleanup(c.close)
        return c


class Protocol(Shared):
    def test_add_then_hash_only(self):
        c = self.client()
        code = "def run(self, x):\n    return {'y': x + 1}\n"
        out, raw = c.execute(code, {"x": 41})
        self.assertEqual(out, {"y": 42})
        self.assertIsInstance(raw["result"], str)          # result is a JSON string
        self.assertIsNone(raw["stdout"])                   # null when empty
        self.assertIsNone(raw["stderr"])
        out, _ = c.execute(code, {"x": 1})
        self.assertEqual(out, {"y": 2})
        self.assertEqual(c.requests, [True, False])        # code once, then the hash alone
        self.assertEqual(c.connections_made, 1)            # one keep-alive connection

    def test_unknown_hash_then_resend(self):
        c = self.client()
        code = "def run(self):\n    return {'ok': 1}\n"
        c.known.add(code_hash(code, []))                   # as if a replica had seen it
        out, _ = c.execute(code)
        self.assertEqual(out, {"ok": 1})
        self.assertEqual(c.requests, [False, True])
        raw = RoboflowClient(self.server, "acme")._post_execute(
            None, "run", None, "{}", "0" * 32, False, {})
        self.assertEqual(raw["error_type"], "UnknownCodeHash")
        self.assertFalse(raw["success"])

    def test_validation_call(self):
        c = self.client()
        self.assertEqual(c.validate("def run(self, a):\n    return {'a': a}\n"), {"valid": True})
        bad = c.validate("def run(self, a)\n    return {}\n")
        self.assertFalse(bad["valid"])
        self.assertEqual(bad["line"], 1)

    def test_self_rule(self):
        c = self.client()
        out, _ = c.execute("def run(a, b):\n    return {'s': a + b}\n", {"a": 1, "b": 2})
        self.assertEqual(out, {"s": 3})
        out, _ = c.execute("def run(self, a):\n    return {'ctx': self.get_workflow_context()}\n",
                           {"a": 1}, context={"step_name": "s1"})
        self.assertEqual(out["ctx"]["step_name"], "s1")

    def test_missing_function_is_name_error(self):
        c = self.client()
        with self.assertRaises(BlockError) as cm:
            c.execute("def run(self):\n    return {}\n", fn="nope")
        self.assertEqual(cm.exception.result["error_type"], "NameError")
        self.assertIs(cm.exception.result["success"], False)

    def test_block_error_bare_message(self):
        c = self.client()
        code = "def run(self, x):\n    y = 1\n    return {'y': y / x}\n"
        with self.assertRaises(BlockError) as cm:
            c.execute(code, {"x": 0})
        r = cm.exception.result
        self.assertEqual(r["error"], "division by zero")   # bare str(e)
        self.assertEqual(r["line_number"], 3)
        self.assertEqual(r["function_name"], "run")
        self.assertEqual(str(cm.exception), "Error in line 3, in run: ZeroDivisionError: division by zero")

    def test_streams(self):
        c = self.client()
        out, raw = c.execute("import sys\ndef run(self):\n    print('héllo')\n    "
                             "print('warn', file=sys.stderr)\n    return {}\n")
        self.assertEqual(raw["stdout"], "héllo\n")
        self.assertEqual(raw["stderr"], "warn\n")

    def test_ndarray_value_form(self):
        c = self.client()
        code = ("def run(self, a):\n    return {'b': a * 2, 'f': np.array([0.5, np.nan], dtype=np.float32),"
                " 'i': np.arange(6, dtype=np.int64).reshape(2, 3), 'z': np.zeros((2, 0)),"
                " 'u': np.array(7, dtype=np.uint16), 'k': np.array([True, False])}\n")
        out, raw = c.execute(code, {"a": np.arange(4, dtype=np.float32).reshape(2, 2)})
        self.assertNotIn('"data"', raw["result"])
        np.testing.assert_array_equal(out["b"], np.arange(4, dtype=np.float32).reshape(2, 2) * 2)
        self.assertEqual(out["b"].dtype, np.float32)
        self.assertEqual(out["f"][0], 0.5)
        self.assertTrue(np.isnan(out["f"][1]))
        np.testing.assert_array_equal(out["i"], np.arange(6).reshape(2, 3))
        self.assertEqual(out["z"].shape, (2, 0))
        self.assertEqual(out["u"].shape, ())
        self.assertEqual(int(out["u"]), 7)
        self.assertEqual(out["k"].tolist(), [True, False])

    def test_ndarray_data_form_on_request(self):
        c = self.client()
        raw = c.execute("def run(self):\n    return {'a': np.arange(3, dtype=np.uint8)}\n",
                        extra={"ndarray_form": "data"}, raw=True)
        a = json.loads(raw["result"])["a"]
        self.assertEqual(a["data"], "AAEC")
        self.assertNotIn("value", a)

    def test_image_roundtrip(self):
        import base64
        c = self.client()
        img = {"_type": "workflow_image", "type": "base64",
               "value": base64.b64encode(png_bytes()).decode(), "video_metadata": None}
        code = ("def run(self, image):\n    px = image.numpy_image\n"
                "    return {'shape': list(px.shape), 'red': int(px[0, 0, 2]),"
                " 'out': WorkflowImageData.copy_and_replace(image, numpy_image=255 - px)}\n")
        out, _ = c.execute(code, {"image": img})
        self.assertEqual(out["shape"], [4, 6, 3])
        self.assertEqual(out["red"], 200)
        self.assertEqual(out["out"]["_type"], "workflow_image")
        self.assertEqual(out["out"]["type"], "base64")

    def test_detections(self):
        c = self.client()
        det = {"_type": "sv_detections", "image": {"width": 100, "height": 80}, "predictions": [
            {"x": 10, "y": 10, "width": 4, "height": 4, "confidence": 0.9, "class_id": 1,
             "class": "cat", "detection_id": "a"},
            {"x": 50, "y": 40, "width": 10, "height": 8, "confidence": 0.2, "class_id": 2,
             "class": "dog", "detection_id": "b"}]}
        code = ("def run(self, predictions):\n    keep = predictions[predictions.confidence > 0.5]\n"
                "    return {'n': len(keep), 'kept': keep}\n")
        out, _ = c.execute(code, {"predictions": det})
        self.assertEqual(out["n"], 1)
        self.assertEqual(out["kept"]["_type"], "sv_detections")
        self.assertEqual([p["class"] for p in out["kept"]["predictions"]], ["cat"])

    def test_datetime_bytes(self):
        c = self.client()
        when = datetime.datetime(2024, 5, 6, 7, 8, 9)
        out, _ = c.execute("def run(self, t, b):\n    return {'t': t, 'b': b[::-1], 'y': t.year}\n",
                           {"t": when, "b": b"abc"})
        self.assertEqual(out["t"], when)
        self.assertEqual(out["b"], b"cba")
        self.assertEqual(out["y"], 2024)

    def test_module_state_persists(self):
        c = self.client("state-ws")
        code = "N = [0]\ndef run(self):\n    N[0] += 1\n    return {'n': N[0]}\n"
        got = [c.execute(code)[0]["n"] for _ in range(3)]
        self.assertEqual(got, [1, 2, 3])

    def test_two_workspaces_separate_state(self):
        code = ("import os\nN = [0]\ndef run(self):\n    N[0] += 1\n"
                "    return {'n': N[0], 'pid': os.getpid()}\n")
        a, b = self.client("tenant-a"), self.client("tenant-b")
        self.assertEqual(a.execute(code)[0]["n"], 1)
        self.assertEqual(a.execute(code)[0]["n"], 2)
        self.assertEqual(b.execute(code)[0]["n"], 1)       # not 3: another instance
        # b's client never sent the code to b's workspace before: a hash-only call for
        # a's block from workspace c misses
        c = self.client("tenant-c")
        c.known.add(code_hash(code, []))
        c.execute(code)
        self.assertEqual(c.requests, [False, True])

    def test_init_code_keyed(self):
        c = self.client()
        run = "def run(self):\n    return {'v': self._init_results['v']}\n"
        r1 = c.execute(run, extra={"init_function_code": "def init():\n    return {'v': 1}\n"}, raw=True)
        r2 = c.execute(run, extra={"init_function_code": "def init():\n    return {'v': 2}\n"}, raw=True)
        self.assertEqual(json.loads(r1["result"]), {"v": 1})
        self.assertEqual(json.loads(r2["result"]), {"v": 2})

    def test_init_code_hash_for_hash_only(self):
        import hashlib
        c = self.client("init-ws")
        run = "def run(self):\n    return {'v': self._init_results['v']}\n"
        init = "def init():\n    return {'v': 5}\n"
        r = c.execute(run, extra={"init_function_code": init}, raw=True)
        self.assertEqual(json.loads(r["result"]), {"v": 5})
        h = code_hash(run, [])
        bare = c._post_execute(None, "run", None, "{}", h, False, {})
        self.assertEqual(bare["error_type"], "UnknownCodeHash")   # no init named: no match
        ih = hashlib.md5((init + "\n" + "init").encode()).hexdigest()
        named = c._post_execute(None, "run", None, "{}", h, False, {}, {"init_code_hash": ih})
        self.assertEqual(json.loads(named["result"]), {"v": 5})

    def test_secrets_not_visible_to_blocks(self):
        c = self.client()
        out, _ = c.execute("def run(self):\n    env = dict(os.environ)\n    try:\n"
                           "        raw = open('/proc/self/environ', 'rb').read().decode('latin-1')\n"
                           "    except OSError:\n        raw = ''\n    return {'env': env, 'raw': raw}\n")
        text = json.dumps(out)
        for secret in TOKENS:
            self.assertNotIn(secret, text)

    def test_hash_mismatch_refused(self):
        c = self.client()
        body = gzip.compress(json.dumps({"code_hash": "0" * 32, "code_str": "def run(self):\n  return {}\n",
                                         "imports": [], "inputs_json": "{}",
                                         "workflow_context": {}}).encode(), 1)
        status, data, _ = c.post_raw(body, c.headers())
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(data)["error_type"], "InvalidRequest")

    def test_plain_json_body_accepted(self):
        c = self.client()
        code = "def run(self):\n    return {'p': 1}\n"
        body = json.dumps({"code_hash": code_hash(code, []), "code_str": code, "imports": [],
                           "run_function_name": "run", "inputs_json": "{}"}).encode()
        h = c.headers()
        del h["Content-Encoding"]
        status, data, _ = c.post_raw(body, h)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(json.loads(data)["result"]), {"p": 1})

    def test_healthz_metrics_log(self):
        c = self.client("metrics-ws")
        c.execute("def run(self):\n    return {}\n")
        status, body = self.server.get("/healthz")
        self.assertEqual(status, 200)
        status, text = self.server.get("/metrics")
        self.assertEqual(status, 200)
        for name in ("blockbox_serve_calls_total{outcome=\"success\"", "blockbox_serve_call_seconds_bucket",
                     "blockbox_serve_instances ", "blockbox_serve_queue_depth ",
                     "blockbox_serve_calls_total{outcome=\"block_error\",error_type=\"BlockError\"}"):
            self.assertIn(name, text)
        ok = [l for l in text.splitlines() if l.startswith('blockbox_serve_calls_total{outcome="success"')]
        self.assertGreater(int(ok[0].split()[-1]), 0)
        h = code_hash("def run(self):\n    return {}\n", [])
        time.sleep(0.2)
        lines = [l for l in self.server.log().splitlines() if "workspace=metrics-ws" in l]
        self.assertTrue(any("block=block-%s" % h in l and "status=200" in l for l in lines), lines)
        self.assertNotIn("return {}", self.server.log())   # code never logged


class Concurrency(unittest.TestCase):
    def test_32_keepalive_clients_matched(self):
        with serving(self, BIN, ["--max-runs", "8", "--max-runs-per-workspace", "8"]) as s:
            code = "def run(self, who, i):\n    return {'who': who, 'i': i, 'sq': i * i}\n"
            errors = []

            def worker(k):
                c = RoboflowClient(s, "conc")
                try:
                    for i in range(15):
                        out, _ = c.execute(code, {"who": "c%d" % k, "i": i * 1000 + k})
                        if out != {"who": "c%d" % k, "i": i * 1000 + k, "sq": (i * 1000 + k) ** 2}:
                            errors.append((k, i, out))
                    if c.connections_made != 1:
                        errors.append((k, "connections", c.connections_made))
                except Exception as e:  # noqa: BLE001
                    errors.append((k, repr(e)))
                finally:
                    c.close()
            threads = [threading.Thread(target=worker, args=(k,)) for k in range(32)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(300)
            self.assertEqual(errors, [])
            _, text = s.get("/metrics")
            inst = [l for l in text.splitlines() if l.startswith("blockbox_serve_instances ")]
            live = int(inst[0].split()[-1])
            self.assertGreaterEqual(live, 2)   # concurrent calls of one block got more instances
            self.assertLessEqual(live, 4)      # up to --max-instances-per-block (default 4)

    def test_hostile_tenants_do_not_block_others(self):
        with serving(self, BIN, ["--max-runs", "4", "--max-runs-per-workspace", "2"],
                     env={"BLOCKBOX_TIMEOUT": "8"}) as s:
            hang = "import time\ndef run(self):\n    time.sleep(60)\n    return {}\n"
            flood = "def run(self):\n    while True:\n        print('x' * 65536)\n"
            crash = "import ctypes\ndef run(self):\n    ctypes.string_at(0)\n    return {}\n"
            results = {}
            done_order = []
            lock = threading.Lock()

            def bad(name, code):
                c = RoboflowClient(s, "evil")
                try:
                    c.execute(code)
                    r = "ok"
                except BlockError as e:
                    r = e.result["error_type"]
                except HTTPStatusError as e:
                    r = "HTTP%d" % e.status
                with lock:
                    results[name] = r
                    done_order.append(name)
                c.close()
            # four hangs, as many as all run slots: only the workspace's share (2) runs
            bads = [threading.Thread(target=bad, args=("hang%d" % i, hang)) for i in range(4)]
            for t in bads:
                t.start()
            time.sleep(1.5)
            c = RoboflowClient(s, "good")
            for i in range(10):
                out, _ = c.execute("def run(self, i):\n    return {'i': i}\n", {"i": i})
                self.assertEqual(out, {"i": i})
            with lock:
                done_order.append("good")
            more = [threading.Thread(target=bad, args=(n, code)) for n, code in
                    (("flood", flood), ("crash", crash))]
            for t in more:
                t.start()
            for t in bads + more:
                t.join(120)
            # the good tenant finished while both hangs were still running
            self.assertEqual(done_order[0], "good", done_order)
            hangs = [results[h] for h in ("hang0", "hang1", "hang2", "hang3")]
            self.assertGreaterEqual(hangs.count("Timeout"), 2, hangs)
            self.assertTrue(set(hangs) <= {"Timeout", "HTTP503"}, hangs)
            # flood and crash queue behind the evil workspace's own hangs: they may run, or
            # wait past --queue-wait (503) or find its share full (429), never delaying "good"
            self.assertIn(results["flood"], ("OutputLimit", "Timeout", "HTTP429", "HTTP503"))
            self.assertIn(results["crash"], ("SandboxCrash", "SandboxViolation", "HTTP429", "HTTP503"))
            out, _ = c.execute("def run(self, i):\n    return {'i': i}\n", {"i": 99})
            self.assertEqual(out, {"i": 99})
            c.close()

    def test_backpressure_429_retry_after(self):
        with serving(self, BIN, ["--max-runs", "1", "--max-queue", "0"]) as s:
            slow = "import time\ndef run(self):\n    time.sleep(3)\n    return {}\n"
            warm = RoboflowClient(s, "bp")
            warm.execute("def run(self):\n    return {}\n")
            t = threading.Thread(target=lambda: RoboflowClient(s, "bp").execute(slow))
            t.start()
            time.sleep(1.5)
            with self.assertRaises(HTTPStatusError) as cm:
                RoboflowClient(s, "bp2").execute("def run(self):\n    return {}\n")
            self.assertEqual(cm.exception.status, 429)
            self.assertEqual(cm.exception.headers.get("Retry-After"), "1")
            t.join(60)
            warm.close()


class Instances(unittest.TestCase):
    def test_lru_eviction_and_max_inputs(self):
        with serving(self, BIN, ["--max-instances", "2", "--max-instances-per-workspace", "2"]) as s:
            def block(k):
                return "N = [0]\ndef run(self):\n    N[0] += 1\n    return {'k': %d, 'n': N[0]}\n" % k
            c = RoboflowClient(s, "lru")
            self.assertEqual(c.execute(block(1))[0], {"k": 1, "n": 1})
            self.assertEqual(c.execute(block(2))[0], {"k": 2, "n": 1})
            self.assertEqual(c.execute(block(1))[0], {"k": 1, "n": 2})   # block 2 is now LRU
            self.assertEqual(c.execute(block(3))[0], {"k": 3, "n": 1})   # evicts block 2
            self.assertEqual(c.execute(block(1))[0], {"k": 1, "n": 3})   # kept
            self.assertEqual(c.execute(block(2))[0], {"k": 2, "n": 1})   # fresh instance
            _, text = s.get("/metrics")
            self.assertIn("blockbox_serve_evictions_total 2\n", text)
            self.assertIn("blockbox_serve_instances 2\n", text)
            c.close()
        with serving(self, BIN, ["--max-inputs", "1"]) as s:
            c = RoboflowClient(s, "recycle")
            code = "N = [0]\ndef run(self):\n    N[0] += 1\n    return {'n': N[0]}\n"
            self.assertEqual([c.execute(code)[0]["n"] for _ in range(3)], [1, 1, 1])
            c.close()

    def test_memory_budget_limits_instances(self):
        with serving(self, BIN, ["--instance-memory-mb", "1024"], env={"BLOCKBOX_MEMORY_MB": "512"}) as s:
            c = RoboflowClient(s, "mem")
            for k in range(4):
                c.execute("def run(self):\n    return {'k': %d}\n" % k)
            _, text = s.get("/metrics")
            self.assertIn("blockbox_serve_instances 2\n", text)   # 1024 MB / 512 MB
            c.close()


class Auth(unittest.TestCase):
    def post(self, s, headers, ws="acme"):
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        code = "def run(self):\n    return {}\n"
        body = gzip.compress(json.dumps({"code_hash": code_hash(code, []), "code_str": code,
                                         "imports": [], "inputs_json": "{}"}).encode(), 1)
        h = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        h.update(headers)
        c.request("POST", "/execute?workspace_id=%s" % ws, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def test_missing_and_wrong_credentials(self):
        with serving(self, BIN) as s:
            status, data = self.post(s, {})
            self.assertEqual(status, 401)
            self.assertEqual(json.loads(data)["error_type"], "AuthenticationFailed")
            status, data = self.post(s, {"Modal-Key": TOKENS[0], "Modal-Secret": "wrong"})
            self.assertEqual(status, 401)
            status, data = self.post(s, {"Modal-Key": TOKENS[0]})
            self.assertEqual(status, 401)
            status, data = self.post(s, {"Modal-Key": TOKENS[0], "Modal-Secret": TOKENS[1]})
            self.assertEqual(status, 200, data)
            self.assertNotIn(TOKENS[1], s.log())

    def test_tokens_file_workspace_binding(self):
        with tokens_file("# key secret workspaces\nkey-a sec-a ws-a,ws-b\nkey-any sec-any\n") as path:
            with serving(self, BIN, ["--tokens-file", path], tokens=None) as s:
                self.assertEqual(self.post(s, {"Modal-Key": "key-a", "Modal-Secret": "sec-a"}, "ws-b")[0], 200)
                self.assertEqual(self.post(s, {"Modal-Key": "key-a", "Modal-Secret": "sec-a"}, "ws-c")[0], 403)
                self.assertEqual(self.post(s, {"Modal-Key": "key-any", "Modal-Secret": "sec-any"}, "ws-c")[0], 200)
                self.assertEqual(self.post(s, {"Modal-Key": "key-a", "Modal-Secret": "sec-any"}, "ws-a")[0], 401)
                for secret in ("sec-a", "sec-any"):
                    self.assertNotIn(secret, s.log())
            os.chmod(path, 0o644)
            with self.assertRaises(RuntimeError) as cm:
                Server(BIN, ["--tokens-file", path], tokens=None)
            self.assertIn("readable by group or others", str(cm.exception))

    def test_fail_closed_start(self):
        def start(args, tokens=TOKENS):
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "BLOCKBOX_"))}
            if tokens:
                env["MODAL_TOKEN_ID"], env["MODAL_TOKEN_SECRET"] = tokens
            p = subprocess.run([BIN, "serve"] + args, env=env, capture_output=True, text=True, timeout=60)
            return p.returncode, p.stderr
        rc, err = start(["--listen", "127.0.0.1:0"], tokens=None)
        self.assertEqual(rc, 4)
        self.assertIn("no credentials", err)
        rc, err = start(["--listen", "0.0.0.0:0", "--insecure-no-auth"], tokens=None)
        self.assertEqual(rc, 4)
        self.assertIn("loopback", err)
        rc, err = start(["--listen", "0.0.0.0:0"])
        self.assertEqual(rc, 4)
        self.assertIn("plain HTTP", err)
        rc, err = start(["--listen", "127.0.0.1:0"], tokens=("only-id", ""))
        self.assertEqual(rc, 4)
        rc, err = start(["--listen", "nonsense"])
        self.assertEqual(rc, 2)

    def test_insecure_no_auth_on_loopback(self):
        with serving(self, BIN, ["--insecure-no-auth"], tokens=None) as s:
            self.assertEqual(self.post(s, {})[0], 200)

    def test_tls(self):
        with tempfile.TemporaryDirectory() as d:
            key, cert = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                            "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                           check=True, capture_output=True)
            with serving(self, BIN, ["--tls-cert", cert, "--tls-key", key]) as s:
                self.assertEqual(s.scheme, "https")
                ctx = ssl.create_default_context(cafile=cert)
                c = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=30)
                c.request("GET", "/healthz")
                self.assertEqual(c.getresponse().status, 200)
                c.close()


class BadBodies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server(BIN, ["--max-body-mb", "1"])

    @classmethod
    def tearDownClass(cls):
        assert cls.s.stop() == 0

    def send(self, body, gz=True, extra=None):
        c = RoboflowClient(self.s, "bodies")
        h = c.headers()
        if not gz:
            del h["Content-Encoding"]
        h.update(extra or {})
        try:
            status, data, _ = c.post_raw(body, h)
        finally:
            c.close()
        return status, json.loads(data)

    def test_not_gzip(self):
        status, r = self.send(b'{"code_hash": "x"}')
        self.assertEqual(status, 400)
        self.assertIn("gzip", r["error"])

    def test_gzip_bomb(self):
        bomb = gzip.compress(b"{" + b" " * (200 << 20) + b"}", 9)   # 200 MiB -> ~200 KiB
        self.assertLess(len(bomb), 1 << 20)
        status, r = self.send(bomb)
        self.assertEqual(status, 413)
        self.assertIn("inflated", r["error"])

    def test_not_json(self):
        status, r = self.send(gzip.compress(b"this is not json", 1))
        self.assertEqual(status, 400)
        status, r = self.send(gzip.compress(b"[1, 2]", 1))
        self.assertEqual(status, 400)
        status, r = self.send(gzip.compress(b'{"code_hash": 5}', 1))
        self.assertEqual(status, 400)

    def test_nul_escape_refused(self):
        # cJSON would hand the C side "def run(self):\n  return {}" while Python sees more
        body = json.dumps({"code_str": "def run(self):\n  return {}\u0000\nimport os",
                           "imports": [], "inputs_json": "{}"}).encode()
        self.assertIn(b"\\u0000", body)
        status, r = self.send(gzip.compress(body, 1))
        self.assertEqual(status, 400)
        self.assertIn("u0000", r["error"])
        ok = json.dumps({"code_hash": "0" * 32, "inputs_json": "{\"a\": \"\\\\u0000\"}"}).encode()
        status, r = self.send(gzip.compress(ok, 1))   # an escaped backslash, then text
        self.assertEqual((status, r["error_type"]), (200, "UnknownCodeHash"))

    def test_huge_plain(self):
        status, r = self.send(b"{" + b" " * (2 << 20) + b"}", gz=False)
        self.assertEqual(status, 413)

    def test_truncated_and_trailing_gzip(self):
        good = gzip.compress(b'{"code_hash": "' + b"0" * 32 + b'"}', 1)
        status, r = self.send(good[:-6])
        self.assertEqual(status, 400)
        status, r = self.send(good + b"junk")
        self.assertEqual(status, 400)
        status, r = self.send(good)
        self.assertEqual((status, r["error_type"]), (200, "UnknownCodeHash"))

    def test_other_encoding_and_paths(self):
        status, r = self.send(b"x", extra={"Content-Encoding": "br"})
        self.assertEqual(status, 415)
        self.assertEqual(self.s.get("/nope")[0], 404)


class Shutdown(unittest.TestCase):
    def test_sigterm_mid_call(self):
        s = Server(BIN)
        slow = "import time\ndef run(self):\n    time.sleep(2)\n    return {'done': True}\n"
        got = {}

        def call():
            try:
                got["out"] = RoboflowClient(s, "drain").execute(slow)[0]
            except Exception as e:  # noqa: BLE001
                got["err"] = repr(e)
        t = threading.Thread(target=call)
        t.start()
        deadline = time.time() + 60
        while time.time() < deadline:   # until the call holds a run slot
            _, text = s.get("/metrics")
            if "\nblockbox_serve_running 1\n" in text:
                break
            time.sleep(0.05)
        kids = s.children()
        self.assertTrue(kids)
        s.proc.send_signal(signal.SIGTERM)
        t.join(60)
        self.assertEqual(got.get("out"), {"done": True}, got)
        self.assertEqual(s.proc.wait(60), 0)
        time.sleep(0.5)
        for pid in kids:
            self.assertFalse(os.path.exists("/proc/%d" % pid) and
                             open("/proc/%d/stat" % pid).read().split()[2] != "Z",
                             "child %d outlived the server" % pid)
        self.assertIn("draining", s.log())


if __name__ == "__main__":
    cli_args.main(sys.modules[__name__], verbosity=2)
