# harness.py: starts `blockbox serve` for the tests (readiness line, port 0), keeps its
# stderr log, and speaks Roboflow inference's remote-executor client protocol to it.
"""Test helpers for `blockbox serve`.

Server(bin, args, env) starts the server on 127.0.0.1:0 and waits for the readiness line
`blockbox serve: listening on http://HOST:PORT`; .log() is its stderr so far; .stop()
sends SIGTERM and returns the exit status. `with serving(test, bin, args, ...) as s:` is a
Server for the block, stopped after it with `test` asserting exit status 0;
`with tokens_file(text) as path:` a file for --tokens-file.

RoboflowClient mirrors what inference's ModalExecutor (HTTP transport) sends:
`POST {MODAL_WEB_ENDPOINT_URL}?workspace_id=ID`, a gzip (level 1) JSON body with
code_hash / run_function_name / inputs_json / workflow_context, code_str + imports until
one success for that hash, then the hash alone and a single resend on UnknownCodeHash;
headers Modal-Key, Modal-Secret, Content-Type and Content-Encoding: gzip, on one
keep-alive connection. Inputs and results are (de)serialised the way its
serialize_for_modal_remote_execution / deserialize_for_modal_remote_execution do, and
errors are built as its execute_remote builds them.
"""
import base64
import contextlib
import datetime
import gzip
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import numpy as np

READY = re.compile(r"blockbox serve: listening on (https?)://([^ ]+):(\d+)$")


class Server:
    def __init__(self, bin_path, args=(), env=None, tokens=("tok-id-1f3a", "tok-secret-9b7c"),
                 ready_timeout=60):
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith(("MODAL_", "BLOCKBOX_", "WORKFLOWS_")):
                del self.env[k]
        if tokens:
            self.env["MODAL_TOKEN_ID"], self.env["MODAL_TOKEN_SECRET"] = tokens
        self.env.update(env or {})
        self.tokens = tokens
        cmd = [bin_path, "serve", "--listen", "127.0.0.1:0"] + list(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=self.env, text=True)
        self.lines = []
        self.ready = threading.Event()
        self.port = None
        self.scheme = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(ready_timeout) or self.port is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("server did not start: %s" % "".join(self.lines)[-2000:])

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            m = READY.search(line.strip())
            if m and not self.ready.is_set():
                self.scheme, self.port = m.group(1), int(m.group(3))
                self.ready.set()
        self.ready.set()

    def log(self):
        return "".join(self.lines)

    @property
    def url(self):
        return "%s://127.0.0.1:%d/execute" % (self.scheme, self.port)

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def children(self):
        """Pids of the server's direct children (the zygote and friends)."""
        out = set()
        try:
            for tid in os.listdir("/proc/%d/task" % self.proc.pid):
                with open("/proc/%d/task/%s/children" % (self.proc.pid, tid)) as f:
                    out.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            pass
        return out

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body.decode()


@contextlib.contextmanager
def serving(test, bin_path, args=(), **kwargs):
    """A Server (same arguments) for the `with` block; stopped after it, whatever the block
    did, with `test` (a TestCase) asserting that it exited with status 0."""
    server = Server(bin_path, args, **kwargs)
    try:
        yield server
    finally:
        test.assertEqual(server.stop(), 0)


@contextlib.contextmanager
def tokens_file(text):
    """A --tokens-file (`KEY SECRET [WORKSPACE,...]` lines) holding `text`, mode 0600 as
    serve wants it, for the `with` block: yields its path."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tokens")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        yield path


def code_hash(code, imports):
    return hashlib.md5(((code or "") + "\n" + "\n".join(imports or [])).encode("utf-8")).hexdigest()


def serialize_inputs(inputs):
    """inputs -> inputs_json, as Roboflow's serialize_for_modal_remote_execution writes it
    (its JSONEncoder default: datetime, bytes, ndarray in the value form)."""
    class Enc(json.JSONEncoder):
        def default(self, obj):
            if isinstance(obj, datetime.datetime):
                return {"_type": "datetime", "value": obj.isoformat()}
            if isinstance(obj, bytes):
                return {"_type": "bytes", "value": base64.b64encode(obj).decode("utf-8")}
            if isinstance(obj, np.ndarray):
                return {"_type": "ndarray", "value": obj.tolist(), "dtype": str(obj.dtype),
                        "shape": obj.shape}
            return super().default(obj)
    return json.dumps(inputs, cls=Enc)


def decode_result(obj):
    """Roboflow's deserialize_for_modal_remote_execution, minus the inference classes:
    ndarrays are read from "value" only, as its decoder does."""
    if isinstance(obj, dict):
        t = obj.get("_type")
        if t == "datetime":
            return datetime.datetime.fromisoformat(obj["value"])
        if t == "bytes":
            return base64.b64decode(obj["value"])
        if t == "ndarray":
            return np.array(obj["value"], dtype=obj["dtype"]).reshape(obj["shape"])
        if t == "object":
            return obj["value"]
        return {k: decode_result(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_result(v) for v in obj]
    return obj


class BlockError(Exception):
    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


class HTTPStatusError(Exception):
    def __init__(self, status, body, headers):
        super().__init__("status %d: %s" % (status, body[:200]))
        self.status, self.body, self.headers = status, body, headers


class RoboflowClient:
    def __init__(self, server, workspace="acme", tokens=None, timeout=60):
        self.server = server
        self.workspace = workspace
        self.tokens = server.tokens if tokens is None else tokens
        self.timeout = timeout
        self.known = set()
        self.conn = None
        self.requests = []   # (send_full_code, payload keys) per POST
        self.connections_made = 0

    def _connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=self.timeout)
            self.connections_made += 1
        return self.conn

    def post_raw(self, body, headers):
        """One POST; returns (status, parsed or raw body, headers)."""
        for attempt in range(2):
            c = self._connection()
            try:
                c.request("POST", "/execute?workspace_id=%s" % self.workspace, body=body,
                          headers=headers)
                r = c.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    self.conn = None
                return r.status, data, dict(r.getheaders())
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # a kept-alive connection the server closed before this request (as
                # requests/urllib3 retry it)
                c.close()
                self.conn = None
                if attempt:
                    raise

    def headers(self):
        h = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if self.tokens:
            h["Modal-Key"], h["Modal-Secret"] = self.tokens
        return h

    def _post_execute(self, code, fn, imports, inputs_json, chash, full, context, extra=None):
        payload = {"code_hash": chash, "run_function_name": fn, "inputs_json": inputs_json,
                   "workflow_context": context}
        if full:
            payload["code_str"] = code
            payload["imports"] = imports or []
        if extra:
            payload.update(extra)
        self.requests.append(full)
        body = gzip.compress(json.dumps(payload).encode("utf-8"), compresslevel=1)
        status, data, headers = self.post_raw(body, self.headers())
        if status != 200:
            raise HTTPStatusError(status, data.decode("utf-8", "replace"), headers)
        return json.loads(data)

    def execute(self, code, inputs=None, fn="run", imports=None, context=None, extra=None,
                raw=False):
        inputs_json = serialize_inputs(inputs or {})
        chash = code_hash(code, imports)
        full = chash not in self.known
        result = self._post_execute(code, fn, imports, inputs_json, chash, full, context or {}, extra)
        if not full and not result.get("success", False) and \
                result.get("error_type") == "UnknownCodeHash":
            self.known.discard(chash)
            result = self._post_execute(code, fn, imports, inputs_json, chash, True, context or {},
                                        extra)
        if result.get("success", False):
            self.known.add(chash)
        if raw:
            return result
        if not result.get("success", False):
            error_msg = result.get("error", "Unknown error")
            error_type = result.get("error_type", "RuntimeError")
            line_number = result.get("line_number")
            function_name = result.get("function_name") or "run"
            message = ("Error in line %s, in %s: %s: %s" % (line_number, function_name, error_type,
                                                             error_msg)
                       if line_number else "%s: %s" % (error_type, error_msg))
            raise BlockError(message, result)
        return decode_result(json.loads(result.get("result", "{}"))), result

    def validate(self, run_code, init_code=None):
        """validate_code_in_modal: the self-less validate_syntax() call."""
        full_code = run_code + ("\n\n" + init_code if init_code else "")
        validation = (
            "\nimport ast\n\ndef validate_syntax():\n    try:\n"
            "        # Try to compile the user code\n"
            "        code = %s\n"
            "        compile(code, \"<string>\", \"exec\")\n"
            "        # Try to parse as AST to check structure\n"
            "        ast.parse(code)\n"
            "        return {\"valid\": True}\n"
            "    except SyntaxError as e:\n"
            "        return {\"valid\": False, \"error\": str(e), \"line\": e.lineno}\n"
            "    except Exception as e:\n"
            "        return {\"valid\": False, \"error\": str(e)}\n") % repr(full_code)
        out, _ = self.execute(validation, {}, fn="validate_syntax", imports=[])
        return out

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None
