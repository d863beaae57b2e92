#!/usr/bin/python3
# test_app_vs_serve.py: Roboflow's client protocol against blockbox's Modal app (its endpoint
# logic over loopback HTTP, local sandboxes) and against `blockbox serve`: the same answers.
"""Differential test of issue 11 item 5, the Roboflow-client direction.

The app's endpoint (`blockbox_modal_endpoint.handle` + `app.run_in_sandbox` with the stub
Sandbox that runs sandbox_main.py locally) is put behind a tiny HTTP server on loopback
that checks Modal-Key/Modal-Secret as Modal's proxy would; `blockbox serve` runs from the
build. tests/serve/harness.py's RoboflowClient (what inference's ModalExecutor sends and
how it builds errors) calls both with the same blocks; results, streams, error types
and error texts must agree. Exit 77 (skipped) when `blockbox serve` cannot run here.
"""
import argparse
import asyncio
import http.server
import json
import os
import socketserver
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "serve"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import test_app  # noqa: E402

TOKENS = ("tok-id-1f3a", "tok-secret-9b7c")
SKIP = 77

CASES = [
    ("add", "def run(self, a, b):\n    return {'s': a + b}\n", {"a": 2, "b": 40}, "run"),
    ("no_self", "def run(a):\n    return {'a': a}\n", {"a": 5}, "run"),
    ("stdout", "def run(self):\n    print('hello')\n    return {}\n", {}, "run"),
    ("ndarray", "def run(self):\n    return {'m': np.arange(6, dtype=np.float32).reshape(2, 3)}\n", {}, "run"),
    ("ndarray_input", "def run(self, m):\n    return {'t': float(m.sum()), 'shape': list(m.shape)}\n",
     {"m": "NDARRAY"}, "run"),
    ("zero_division", "def run(self, a):\n    x = 1\n    return {'q': a / 0}\n", {"a": 1}, "run"),
    ("empty_message", "def run(self):\n    raise KeyError()\n", {}, "run"),
    ("helper_error", "def helper(v):\n    return v['missing']\n\ndef run(self):\n    return helper({})\n",
     {}, "run"),
    ("custom_name", "def go(self, a):\n    return {'a': a * 2}\n", {"a": 4}, "go"),
    ("missing_function", "def other(self):\n    return {}\n", {}, "run"),
    ("context", "def run(self):\n    return {'c': self.get_workflow_context()}\n", {}, "run"),
]


class AppServer:
    """The app's endpoint logic behind HTTP on loopback, proxy auth checked first."""

    def __init__(self):
        self.app, _ = test_app.load_app({"BLOCKBOX_MODAL_WARM_SANDBOXES": "0"})
        self.cache, self.pool = self.app._endpoint_state()
        self.tokens = TOKENS
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if (self.headers.get("Modal-Key"), self.headers.get("Modal-Secret")) != TOKENS:
                    return self.answer(401, b"modal-http: invalid credentials", {})
                query = dict(p.split("=", 1) for p in self.path.partition("?")[2].split("&") if "=" in p)
                status, body, headers = asyncio.run_coroutine_threadsafe(outer.app.ep.handle(
                    raw, self.headers.get("Content-Encoding"), query.get("workspace_id"), outer.cache,
                    lambda ws, b: outer.app.run_in_sandbox(outer.pool, ws, b), outer.app.SETTINGS),
                    outer.loop).result(120)
                self.answer(status, body, headers)

            def answer(self, status, body, headers):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


def outcome(client, name, code, inputs, fn):
    import numpy as np
    if inputs.get("m") == "NDARRAY":
        inputs = {"m": np.arange(4, dtype=np.int32).reshape(2, 2)}
    try:
        result, raw = client.execute(code, inputs, fn=fn, context={"step_name": "s1"})
    except harness.BlockError as exc:
        return {"error": str(exc), "error_type": exc.result.get("error_type"),
                "line_number": exc.result.get("line_number")}
    def plain(v):
        if isinstance(v, np.ndarray):
            return {"ndarray": v.tolist(), "dtype": str(v.dtype)}
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return {"result": plain(result), "stdout": raw.get("stdout") or ""}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "blockbox"))
    options = parser.parse_args()
    try:
        serve = harness.Server(options.bin, tokens=TOKENS)
    except (RuntimeError, OSError) as exc:
        print("skipped: blockbox serve does not start here: %s" % str(exc)[-300:])
        return SKIP
    app = AppServer()
    failures = 0
    try:
        clients = {"app": harness.RoboflowClient(app, workspace="acme"),
                   "serve": harness.RoboflowClient(serve, workspace="acme")}
        for name, code, inputs, fn in CASES:
            for round_ in (1, 2):       # the second round goes hash-only
                got = {k: outcome(c, name, code, dict(inputs), fn) for k, c in clients.items()}
                if name == "missing_function":
                    same = got["app"].get("error_type") == got["serve"].get("error_type") == "NameError"
                else:
                    same = got["app"] == got["serve"]
                if not same:
                    failures += 1
                    print("FAIL %-18s round %d: app %s | serve %s" % (name, round_, json.dumps(got["app"])[:300],
                                                                      json.dumps(got["serve"])[:300]))
                elif round_ == 2:
                    print("ok   %-18s %s" % (name, json.dumps(got["app"])[:100]))
        checks = {k: c.validate("def run(self):\n    return {}\n") for k, c in clients.items()}
        if checks["app"] != checks["serve"] or checks["app"].get("valid") is not True:
            failures += 1
            print("FAIL validate_syntax: %s" % checks)
        else:
            print("ok   validate_syntax    %s" % checks["app"])
        text = outcome(clients["app"], "zero_division", CASES[5][1], {"a": 1}, "run").get("error")
        if text != "Error in line 3, in run: ZeroDivisionError: division by zero":
            failures += 1
            print("FAIL Roboflow's client reads the app's error as %r" % text)
    finally:
        app.stop()
        serve.stop()
    print("%d failed" % failures if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
