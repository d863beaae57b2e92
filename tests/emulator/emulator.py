#!/usr/bin/python3
# emulator.py: an HTTPS emulator of the blockbox Modal web endpoint on loopback, which
# checks proxy auth, runs blocks with the real runtime and injects faults on request.
"""Modal endpoint emulator for tests and benchmarks.

    /usr/bin/python3 emulator.py --cert-dir DIR [--token-id ID --token-secret S]

Prints one line "READY port=N ca=DIR/ca.pem" when listening on 127.0.0.1:N.
Tokens may also come from EMULATOR_TOKEN_ID / EMULATOR_TOKEN_SECRET.

Endpoints
  POST <any path not starting with /_>   the execution endpoint (DESIGN §3 envelope)
  POST /_faults    JSON list of faults appended to the queue; each execution request
                   consumes one. {"clear": true} empties the queue.
  GET  /_stats     JSON counters (connections, requests, executions, ...; input_forms:
                   how many ndarrays and images of each form the executed inputs held)
  POST /_reset     counters, faults and known code hashes back to zero
  GET  /_poll/ID   where 303 redirects point

Faults ({"kind": ..., parameters}):
  slow {seconds}              wait, then answer normally
  status {status, retry_after, run}
                              answer that HTTP status; run=true runs the block first
  drop_before                 close the connection without reading the body
  drop_after {run}            read the body (run the block unless run=false), close
  truncate                    run, then send half of the body and close
  nonjson                     200 with an HTML body
  redirect {hops, host}       run, then 303 to /_poll/ID (hops times); host "localhost"
                              redirects to another host name (auth must not follow)
  unknown_hash                answer UnknownCodeHash without running
  forget                      forget every known code hash, then answer normally
  big {bytes}                 200 with a JSON body of about that many bytes
  gzip_bomb {bytes}           200 with a small gzip body that inflates to that many bytes
  location {url}              303 to an arbitrary URL (e.g. plain http to another host)
  roboflow                    run, then answer as a current Roboflow deployment does:
                              bare str(e) errors, no `success` on its NameError for a
                              missing function, null streams, value-form ndarrays
  trusted {error_type, error} 200 with that failure and the app's trust header
                              `Blockbox-Error: <error_type>` (a failure the app decided)
  reply {body}                200 with this JSON body (e.g. a block forging a trusted type)
"""
import argparse
import gzip
import hashlib
import http.server
import importlib.util
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
import time
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import certs  # noqa: E402

MAX_BODY = 512 << 20
CONTROL = "/_"


class State:
    """Everything the emulator remembers; one lock guards it all."""

    def __init__(self, token_id, token_secret, runtime):
        self.lock = threading.Lock()
        self.run_lock = threading.Lock()   # the runtime swaps sys.stdout: one run at a time
        self.token_id = token_id
        self.token_secret = token_secret
        self.runtime = runtime
        self.reset()

    def reset(self):
        with self.lock:
            self.faults = []
            self.known = {}          # code hash -> code fields
            self.polls = {}          # id -> [hops left, body, require auth]
            self.stats = {
                "connections": 0, "requests": 0, "executions": 0, "hash_only_requests": 0,
                "code_requests": 0, "unknown_hash_answers": 0, "gzip_requests": 0,
                "auth_failures": 0, "faults_used": 0, "polls": 0, "poll_auth_seen": 0,
                "status": {}, "workspace_ids": [], "accept_gzip": 0, "bad_requests": 0,
                "user_agents": [], "input_forms": {},
            }

    def bump(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def next_fault(self):
        with self.lock:
            if self.faults:
                self.stats["faults_used"] += 1
                return self.faults.pop(0)
        return None


def load_runtime(path=None):
    """blockbox_runtime from `path` (a directory with the file), else the build's
    ($BLOCKBOX_RUNTIME_DIR) or the checkout's modules amalgamated in memory."""
    if path:
        sys.path.insert(0, path)
        import blockbox_runtime  # noqa: E402
        return blockbox_runtime
    spec = importlib.util.spec_from_file_location(
        "amalgamate", os.path.join(HERE, "..", "..", "src", "runtime", "amalgamate.py"))
    amalgamate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(amalgamate)
    return amalgamate.load()


def roboflow_style(body):
    """A blockbox runtime reply as a current Roboflow deployment would send it."""
    sys.path.insert(0, os.path.join(HERE, "..", "..", "drivers", "modal"))
    import sandbox_main  # noqa: E402 - its value-form conversion
    reply = json.loads(sandbox_main._to_value_form(body))
    streams = {"stdout": reply.get("stdout") or None, "stderr": reply.get("stderr") or None}
    if reply.get("success"):
        return json.dumps(dict(success=True, result=reply["result"], **streams)).encode()
    line, function, kind = reply.get("line_number"), reply.get("function_name"), reply.get("error_type")
    text = reply.get("error") or ""
    if kind == "NameError" and not line:
        return json.dumps({"error": "Function '%s' not found in code" % function, "error_type": kind}).encode()
    head = "Error in line %s, in %s: %s" % (line, function, kind)
    if line and text.startswith(head):
        text = text[len(head) + 2:]
    out = dict(success=False, error=text, error_type=kind, **streams)
    if line:
        out.update(line_number=line, function_name=function)
    return json.dumps(out).encode()


PNG_BASE64 = "iVBORw0KGgo"    # base64 of the PNG signature's first 8 bytes
JPEG_BASE64 = "/9j/"


def input_forms(value, counts):
    """Counts the forms of the typed values in decoded inputs: ndarray_data, ndarray_value,
    ndarray_buffer, image_png, image_jpeg, image_raw, image_other (for /_stats)."""
    if isinstance(value, list):
        for item in value:
            input_forms(item, counts)
        return
    if not isinstance(value, dict):
        return
    kind, form = value.get("_type"), None
    if kind == "ndarray":
        form = "ndarray_" + next((k for k in ("data", "value", "buffer") if k in value), "other")
    elif kind == "workflow_image" or (kind is None and value.get("type") == "base64"):
        text = value.get("value") if isinstance(value.get("value"), str) else ""
        form = ("image_raw" if value.get("type") == "raw" else "image_png" if text.startswith(PNG_BASE64)
                else "image_jpeg" if text.startswith(JPEG_BASE64) else "image_other")
    if form:
        counts[form] = counts.get(form, 0) + 1
    for key, item in value.items():
        if not form or key not in ("value", "data"):
            input_forms(item, counts)


def envelope_md5(code, imports):
    return hashlib.md5((code + "\n" + "\n".join(imports)).encode("utf-8")).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    server_version = "blockbox-emulator"
    sys_version = ""

    # -- plumbing ---------------------------------------------------------------
    def setup(self):
        self.counted = False
        self.request.settimeout(30)
        # headers and body go out in separate writes: without this, Nagle + delayed ACK
        # add 40 ms to every keep-alive answer
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw = self.request
        try:
            self.request = self.server.tls.wrap_socket(raw, server_side=True)
        except BaseException:
            raw.close()   # a handshake cut short: finish() will not run
            raise
        super().setup()

    def parse_request(self):
        # the request line is in: the server's own time starts here (headers, body, run)
        self.started = time.perf_counter()
        return super().parse_request()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        finally:
            # the TLS socket owns the fd now; the server's shutdown_request closes only the
            # detached plain socket, so without this every connection ended unclosed
            self.request.close()

    def log_message(self, fmt, *args):  # quiet: tests read stats, not logs
        pass

    @property
    def st(self):
        return self.server.state

    def count_connection(self):
        if not self.counted:
            self.counted = True
            self.st.bump("connections")

    def send_bytes(self, status, body, content_type="application/json", extra=None, started=None):
        headers = dict(extra or {})
        if len(body) > 1024 and "gzip" in (self.headers.get("Accept-Encoding") or ""):
            body = gzip.compress(body, 1)
            headers["Content-Encoding"] = "gzip"
        if started is not None:
            elapsed_us = int((time.perf_counter() - started) * 1e6)
            headers["X-Emulator-Time-Us"] = str(elapsed_us)
            headers["Server-Timing"] = "app;dur=%.3f" % (elapsed_us / 1000.0)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        with self.st.lock:
            key = str(status)
            self.st.stats["status"][key] = self.st.stats["status"].get(key, 0) + 1

    def send_json(self, status, obj, **kw):
        self.send_bytes(status, json.dumps(obj).encode(), **kw)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("body too large")
        raw = self.rfile.read(length)
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            self.st.bump("gzip_requests")
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            raw = d.decompress(raw, MAX_BODY)
            if d.unconsumed_tail or not d.eof:
                raise ValueError("bad or oversized gzip body")
        return raw

    def auth_ok(self):
        key, secret = self.headers.get("Modal-Key"), self.headers.get("Modal-Secret")
        return key == self.st.token_id and secret == self.st.token_secret

    # -- control endpoints --------------------------------------------------------
    def do_GET(self):
        if self.path == "/_stats":
            with self.st.lock:
                stats = json.loads(json.dumps(self.st.stats))
                stats["faults_pending"] = len(self.st.faults)
                stats["known_hashes"] = len(self.st.known)
            stats["runtime_version"] = getattr(self.st.runtime, "RUNTIME_VERSION", None)
            return self.send_json(200, stats)
        if self.path.startswith("/_poll/"):
            return self.poll()
        self.count_connection()
        self.st.bump("requests")
        self.send_json(405, {"detail": "Method Not Allowed"})

    def do_POST(self):
        if self.path.startswith(CONTROL):
            body = self.read_body()
            if self.path == "/_faults":
                faults = json.loads(body or b"[]")
                with self.st.lock:
                    if isinstance(faults, dict) and faults.get("clear"):
                        self.st.faults = []
                    else:
                        self.st.faults.extend(faults)
                    n = len(self.st.faults)
                return self.send_json(200, {"pending": n})
            if self.path == "/_reset":
                self.st.reset()
                return self.send_json(200, {"reset": True})
            return self.send_json(404, {"detail": "Not Found"})
        self.execute()

    # -- the endpoint ---------------------------------------------------------------
    def poll(self):
        self.count_connection()
        self.st.bump("polls")
        has_auth = self.headers.get("Modal-Key") is not None
        if has_auth:
            self.st.bump("poll_auth_seen")
        poll_id = self.path[len("/_poll/"):].split("?")[0]
        with self.st.lock:
            entry = self.st.polls.get(poll_id)
        if entry is None:
            return self.send_json(404, {"detail": "unknown function call"})
        if entry[2] and not self.auth_ok():
            self.st.bump("auth_failures")
            return self.send_bytes(401, b"modal-http: missing credentials for proxy authorization",
                                   content_type="text/plain")
        if entry[0] > 0:
            entry[0] -= 1
            return self.redirect_to(poll_id, entry[3])
        with self.st.lock:
            self.st.polls.pop(poll_id, None)
        self.send_bytes(200, entry[1])

    def redirect_to(self, poll_id, host):
        location = "https://%s:%d/_poll/%s" % (host, self.server.server_address[1], poll_id)
        self.send_bytes(303, b"", extra={"Location": location})

    def execute(self):
        started = getattr(self, "started", None) or time.perf_counter()
        self.count_connection()
        self.st.bump("requests")
        with self.st.lock:
            ua = self.headers.get("User-Agent") or ""
            if ua not in self.st.stats["user_agents"]:
                self.st.stats["user_agents"].append(ua[:80])
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                self.st.stats["accept_gzip"] += 1
            query = self.path.partition("?")[2]
            for part in query.split("&"):
                if part.startswith("workspace_id="):
                    self.st.stats["workspace_ids"] = (self.st.stats["workspace_ids"] + [part[13:]])[-10:]
        if not self.auth_ok():
            # Modal's proxy answers before any container sees the request
            self.st.bump("auth_failures")
            self.read_body()
            return self.send_bytes(401, b"modal-http: invalid credentials for proxy authorization",
                                   content_type="text/plain")
        fault = self.st.next_fault() or {}
        kind = fault.get("kind")
        if kind == "drop_before":
            return self.drop()
        try:
            raw = self.read_body()
            request = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.st.bump("bad_requests")
            return self.send_json(400, {"detail": "the body is not JSON"})
        if kind == "slow":
            time.sleep(float(fault.get("seconds", 1)))
        elif kind == "forget":
            with self.st.lock:
                self.st.known.clear()
        elif kind == "status":
            status = int(fault.get("status", 500))
            if fault.get("run", status == 500):
                self.run_block(request)
            extra = {}
            if fault.get("retry_after") is not None:
                extra["Retry-After"] = str(fault["retry_after"])
            return self.send_json(status, {"detail": "injected %d" % status}, extra=extra)
        elif kind == "unknown_hash":
            return self.answer_unknown(request, started)
        elif kind == "nonjson":
            return self.send_bytes(200, b"<html><body>502 Bad Gateway</body></html>",
                                   content_type="text/html")
        elif kind == "gzip_bomb":
            size = int(fault.get("bytes", 64 << 20))
            body = gzip.compress(b"{\"stdout\": \"" + b" " * size + b"\"}", 9)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        elif kind == "location":
            return self.send_bytes(303, b"", extra={"Location": fault["url"]})
        elif kind == "trusted":
            body = json.dumps({"success": False, "error_type": fault["error_type"], "error": fault.get("error", ""),
                               "line_number": None, "function_name": None, "traceback": None,
                               "stdout": "", "stderr": ""}).encode()
            return self.send_bytes(200, body, extra={"Blockbox-Error": fault["error_type"]})
        elif kind == "reply":
            return self.send_bytes(200, json.dumps(fault["body"]).encode())
        elif kind == "big":
            size = int(fault.get("bytes", 1 << 20))
            body = json.dumps({"success": True, "result": "{}", "stdout": "x" * size,
                               "stderr": ""}).encode()
            return self.send_bytes(200, body)

        if not isinstance(request, dict) or not isinstance(request.get("code_hash"), str):
            self.st.bump("bad_requests")
            return self.send_json(422, {"detail": "code_hash missing"})
        body = self.run_block(request)
        if body is None:
            return self.answer_unknown(request, started)
        if kind == "drop_after":
            return self.drop()
        if kind == "roboflow":
            body = roboflow_style(body)
        if kind == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            return self.drop()
        if kind == "redirect":
            poll_id = uuid.uuid4().hex
            host = fault.get("host") or "127.0.0.1"
            same = host == "127.0.0.1"
            with self.st.lock:
                self.st.polls[poll_id] = [int(fault.get("hops", 1)) - 1, body, same, host]
            return self.redirect_to(poll_id, host)
        self.send_bytes(200, body, started=started)

    def answer_unknown(self, request, started):
        self.st.bump("unknown_hash_answers")
        code_hash = request.get("code_hash") if isinstance(request, dict) else None
        self.send_json(200, {"success": False, "error_type": "UnknownCodeHash",
                             "error": "unknown code hash %s" % str(code_hash)[:64],
                             "line_number": None, "function_name": None, "traceback": None,
                             "stdout": "", "stderr": ""}, started=started)

    def run_block(self, request):
        """Runs the block the way the Modal function does; None if the hash is unknown."""
        if not isinstance(request, dict):
            return None
        code_hash = request.get("code_hash")
        if isinstance(request.get("code_str"), str):
            self.st.bump("code_requests")
            imports = request.get("imports") or []
            if isinstance(imports, list) and all(isinstance(i, str) for i in imports):
                if envelope_md5(request["code_str"], imports) == str(code_hash).lower():
                    with self.st.lock:
                        self.st.known[code_hash] = {k: request[k] for k in (
                            "code_str", "imports", "init_function_code", "init_function_name")
                            if k in request}
        else:
            self.st.bump("hash_only_requests")
            with self.st.lock:
                fields = self.st.known.get(code_hash)
            if fields is None:
                return None
            request = dict(request, **fields)
        try:
            counts = {}
            input_forms(json.loads(request.get("inputs_json") or "{}"), counts)
            with self.st.lock:
                for form, n in counts.items():
                    self.st.stats["input_forms"][form] = self.st.stats["input_forms"].get(form, 0) + n
        except (ValueError, TypeError):
            pass   # the runtime answers a bad inputs_json itself
        with self.st.run_lock:
            self.st.bump("executions")
            runtime = self.st.runtime.Runtime()
            return runtime.handle_bytes(json.dumps(request).encode())


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # handshakes cut short and dropped connections are expected here


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert-dir", required=True)
    parser.add_argument("--cert", help="serve this certificate instead of the CA-signed one")
    parser.add_argument("--key")
    parser.add_argument("--token-id", default=os.environ.get("EMULATOR_TOKEN_ID", "wk-test"))
    parser.add_argument("--token-secret", default=os.environ.get("EMULATOR_TOKEN_SECRET", "ws-test"))
    parser.add_argument("--runtime-dir", help="a directory with blockbox_runtime.py (default: "
                        "$BLOCKBOX_RUNTIME_DIR, else the modules of src/runtime amalgamated)")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()

    paths = certs.make_certs(options.cert_dir)
    runtime = load_runtime(options.runtime_dir and os.path.abspath(options.runtime_dir))
    if hasattr(runtime, "warm_up"):
        runtime.warm_up()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(options.cert or paths["server.pem"], options.key or paths["server.key"])
    tls.set_alpn_protocols(["http/1.1"])

    server = Server(("127.0.0.1", options.port), Handler)
    server.tls = tls
    server.state = State(options.token_id, options.token_secret, runtime)
    print("READY port=%d ca=%s" % (server.server_address[1], paths["ca.pem"]), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
