#!/usr/bin/python3
# test_limits.py: `blockbox serve` against the red team's resource attacks: request bytes
# held across connections, value-form reply blow-up, per-address connections and trickled
# bodies, NUL bytes and duplicates in credentials, workspace and framing headers.
"""Resource-bound tests of `blockbox serve`.

    /usr/bin/python3 tests/serve/test_limits.py --bin build/bin/blockbox [-k NAME]

How each defence was shown to matter (switched off once locally, the test failed):
  * the request-byte budget (sv_budget_take always succeeding): the second connection's
    body is parsed (200 UnknownCodeHash) instead of 503 + Retry-After;
  * the value-form precount (removed from ndvalue.c value_text, --max-reply-mb 256 as the
    old fixed cap): the (60000000, 0) array comes back as a 240 MB success reply;
  * MHD_OPTION_PER_IP_CONNECTION_LIMIT (option dropped): the fifth socket from 127.0.0.1
    is answered 200 instead of closed;
  * the body deadline (check removed in http.c handle): the trickled body is read and
    answered instead of the connection being cut;
  * the per-workspace instance quota (at_quota forced 0 and the global LRU victim, as
    before, in pool.c): ws-a's counter restarts at 1 after ws-b's five blocks;
  * the Blockbox-Error mark (trusted_type returning NULL): the Timeout call has no header;
  * the NUL / duplicate checks (http.c begin count_value not consulted): key-a\\0junk
    authenticates, workspace_id=ws-a%00x runs as ws-a, duplicates are accepted (200).
"""
import gzip
import json
import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import RoboflowClient, Server, code_hash, serving, tokens_file  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cli_args  # noqa: E402  (tests/cli_args.py)

BIN = None


def metric(server, name):
    _, text = server.get("/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric %s in %s" % (name, text[-500:]))


def wait_for(pred, what, limit=60):
    """Polls a condition (not a timing assertion: the deadline only ends a hung test)."""
    deadline = time.time() + limit
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("never happened: " + what)


def raw_request(port, head, body=b"", source="127.0.0.1", timeout=30):
    """Sends bytes on a fresh socket; returns (status or None if closed, response bytes)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    data = b""
    try:
        s.sendall(head + body)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                hdr, _, rest = data.partition(b"\r\n\r\n")
                for line in hdr.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(rest) >= int(line.split(b":")[1]):
                            s.close()
                            return int(data.split()[1]), data
    except (ConnectionResetError, BrokenPipeError):
        pass
    s.close()
    return (int(data.split()[1]) if data.startswith(b"HTTP/") else None), data


def spaces_body(mib):
    """The red team's body: a hash-only call whose inputs_json is MiB of spaces (gzip 1)."""
    return gzip.compress(b'{"code_hash": "' + b"0" * 32 + b'", "inputs_json": "' +
                         b" " * (mib << 20) + b'"}', 1)


def post_head(port, length, tokens, ws="ws", extra=b""):
    return (b"POST /execute?workspace_id=" + ws.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Modal-Key: " + tokens[0].encode() + b"\r\nModal-Secret: " + tokens[1].encode() +
            b"\r\n" + extra + b"Content-Length: %d\r\n\r\n" % length)


class RequestBudget(unittest.TestCase):
    def test_bytes_in_flight_bounded_across_connections(self):
        with serving(self, BIN, ["--max-body-mb", "8", "--max-request-mb", "16"]) as s:
            self.assertEqual(metric(s, "blockbox_serve_request_bytes_limit"), 16 << 20)
            body = spaces_body(7)
            self.assertLess(len(body), 64 << 10)
            held = socket.create_connection(("127.0.0.1", s.port), timeout=30)
            held.sendall(post_head(s.port, len(body), s.tokens) + body[:-32])   # never ends
            wait_for(lambda: metric(s, "blockbox_serve_request_bytes") >= 6 << 20,
                     "the held body's bytes counted")
            status, data = raw_request(s.port, post_head(s.port, len(body), s.tokens), body)
            self.assertEqual(status, 503, data[:300])
            self.assertIn(b"Retry-After: 1", data)
            self.assertIn(b"BackendUnavailable", data)
            held.close()
            wait_for(lambda: metric(s, "blockbox_serve_request_bytes") == 0, "bytes given back")
            status, data = raw_request(s.port, post_head(s.port, len(body), s.tokens), body)
            self.assertEqual(status, 200, data[:300])
            self.assertIn(b"UnknownCodeHash", data)
            # given back when the connection's request ends (after the reply is sent)
            wait_for(lambda: metric(s, "blockbox_serve_request_bytes") == 0, "bytes given back")

    def test_budget_below_two_bodies_refused_at_start(self):
        with self.assertRaises(RuntimeError) as cm:
            Server(BIN, ["--max-body-mb", "8", "--max-request-mb", "15"])
        self.assertIn("twice", str(cm.exception))


class ReplyBound(unittest.TestCase):
    def test_empty_dims_value_form_refused(self):
        with serving(self, BIN) as s:   # the default reply cap
            code = ("import numpy as np\ndef run(self):\n"
                    "    return {'a': np.zeros((60000000, 0), dtype=np.uint8)}\n")
            r = RoboflowClient(s, "big").execute(code, raw=True)
            self.assertFalse(r["success"], str(r)[:300])
            self.assertEqual(r["error_type"], "OutputLimit")
            self.assertIn("ndarray_form", r["error"])
            # the data form stays available, and small arrays still convert
            out = RoboflowClient(s, "big").execute(code, raw=True, extra={"ndarray_form": "data"})
            self.assertTrue(out["success"], str(out)[:300])
            ok, _ = RoboflowClient(s, "big").execute(
                "import numpy as np\ndef run(self):\n    return {'a': np.zeros((3, 0))}\n")
            self.assertEqual(ok["a"].shape, (3, 0))


class Connections(unittest.TestCase):
    def test_per_address_limit(self):
        with serving(self, BIN, ["--max-connections-per-ip", "4"]) as s:
            socks = []
            try:
                for _ in range(4):   # slowloris: a header that never ends
                    c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
                    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    socks.append(c)
                status, data = raw_request(s.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertIsNone(status, data[:200])   # closed at accept
                status, _ = raw_request(s.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                                        source="127.0.0.2")
                self.assertEqual(status, 200)
                for c in socks:
                    c.close()
                socks = []
                wait_for(lambda: raw_request(s.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0]
                         == 200, "the address's slots given back")
            finally:
                for c in socks:
                    c.close()

    def test_trickled_body_cut_at_deadline(self):
        with serving(self, BIN, ["--body-deadline", "1"]) as s:
            body = gzip.compress(b'{"code_hash": "' + b"0" * 32 + b'"}', 1)
            c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
            c.sendall(post_head(s.port, len(body), s.tokens) + body[:4])
            time.sleep(1.5)   # past the deadline (the trickle; nothing is timed)
            try:
                c.sendall(body[4:])
                data = c.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            c.close()
            self.assertEqual(data, b"", data[:200])
            wait_for(lambda: "RequestTimeout" in s.log(), "the cut logged")
            status, data = raw_request(s.port, post_head(s.port, len(body), s.tokens), body)
            self.assertEqual(status, 200, data[:200])


class Tenancy(unittest.TestCase):
    def test_other_workspace_cannot_evict_warm_instances(self):
        with serving(self, BIN, ["--max-instances", "4", "--max-instances-per-workspace", "2"]) as s:
            counter = "n = 0\ndef run(self):\n    global n\n    n += 1\n    return {'n': n}\n"
            a = RoboflowClient(s, "ws-a")
            self.assertEqual(a.execute(counter)[0], {"n": 1})
            b = RoboflowClient(s, "ws-b")
            for i in range(5):   # more distinct blocks than the whole pool holds
                self.assertEqual(b.execute("def run(self):\n    return {'i': %d}\n" % i)[0], {"i": i})
            self.assertEqual(a.execute(counter)[0], {"n": 2})   # still warm
            _, text = s.get("/metrics")
            self.assertIn("\nblockbox_serve_instances 3\n", text)


class TrustedVerdicts(unittest.TestCase):
    def test_blockbox_error_header_only_for_server_verdicts(self):
        with serving(self, BIN, env={"BLOCKBOX_TIMEOUT": "1"}) as s:
            c = RoboflowClient(s, "verdicts")

            def call(code):
                body = gzip.compress(json.dumps({
                    "code_hash": code_hash(code, []), "code_str": code, "imports": [],
                    "inputs_json": "{}"}).encode(), 1)
                status, data, headers = c.post_raw(body, c.headers())
                self.assertEqual(status, 200, data[:200])
                return json.loads(data)["error_type"], headers.get("Blockbox-Error")
            self.assertEqual(call("def run(self):\n    while True:\n        pass\n"),
                             ("Timeout", "Timeout"))
            # a block's own exception named like a verdict is not marked
            self.assertEqual(call("class Timeout(Exception):\n    pass\n"
                                  "def run(self):\n    raise Timeout('mine')\n"), ("block.Timeout", None))
            self.assertEqual(call("def run(self):\n    return 1 // 0\n"),
                             ("ZeroDivisionError", None))
            c.close()


class HeaderIdentity(unittest.TestCase):
    def test_nul_and_duplicates_refused(self):
        with tokens_file("key-a sec-a ws-a\nkey-b sec-b ws-b\n") as path:
            with serving(self, BIN, ["--tokens-file", path], tokens=None) as s:
                body = gzip.compress(b'{"code_hash": "' + b"0" * 32 + b'"}', 1)

                def send(head):
                    return raw_request(s.port, head, body)[0]

                def head(ws=b"ws-a", key=b"key-a", secret=b"sec-a", extra=b""):
                    return (b"POST /execute?workspace_id=" + ws + b" HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Encoding: gzip\r\nModal-Key: " + key +
                            b"\r\nModal-Secret: " + secret + b"\r\n" + extra +
                            b"Content-Length: %d\r\n\r\n" % len(body))
                self.assertEqual(send(head()), 200)
                self.assertEqual(send(head(ws=b"ws-a%00x")), 400)
                self.assertEqual(send(head(ws=b"ws-a&workspace_id=ws-b")), 400)
                self.assertEqual(send(head(ws=b"ws-b&workspace_id=ws-a", key=b"key-b",
                                           secret=b"sec-b")), 400)
                self.assertEqual(send(head(extra=b"Modal-Key: key-b\r\n")), 401)
                self.assertEqual(send(head(extra=b"Modal-Secret: sec-b\r\n")), 401)
                self.assertIn(send(head(extra=b"Content-Length: %d\r\n" % len(body))), (400, None))


if __name__ == "__main__":
    cli_args.main(sys.modules[__name__], verbosity=2)
