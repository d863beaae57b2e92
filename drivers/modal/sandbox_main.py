#!/usr/bin/python3
# sandbox_main.py: the one program of a blockbox Modal sandbox: reads one request on stdin,
# runs it with the blockbox runtime, writes one reply on stdout and exits.
"""Runs inside a fresh `modal.Sandbox` (no Modal client, no network, no credentials).

    /usr/bin/python3 -I /opt/blockbox/sandbox_main.py            # serve one request
    /usr/bin/python3 -I /opt/blockbox/sandbox_main.py --self-check VERSION

The runtime (numpy, cv2) is imported before stdin is read, so a sandbox started ahead
of a call (the endpoint's warm pool) has paid for the imports already; the byte 0x06
on stdout says so, and the endpoint's deadline for the block starts there. The reply is
written to a private copy of fd 1; the block's own fds 1 and 2 point to /dev/null (its
prints are captured by the runtime). Nothing here is trusted by the endpoint: it checks
the bytes that come back like any reply. Self-check (run when the image is built):
the runtime version and Debian's numpy 1.24.2 / OpenCV 4.6.0, the local runtime's.
"""
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_REQUEST_BYTES = 96 << 20
PINNED = {"numpy": "1.24.2", "cv2": "4.6.0"}
READY_MARK = b"\x06"   # first byte on stdout: imported, about to read the request


def _value_form(value):
    """Data-form ndarrays (blockbox's fast form) as Roboflow's value form: nested lists;
    NaN and +-Inf become null, as they do everywhere else in JSON outputs."""
    import blockbox_runtime as rt
    if isinstance(value, list):
        return [_value_form(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("_type") == "ndarray" and "data" in value:
        array = rt._decode_ndarray(value)
        return {"_type": "ndarray", "dtype": value["dtype"], "shape": list(array.shape),
                "value": _finite(array.tolist())}
    return {k: _value_form(v) for k, v in value.items()}


def _finite(items):
    if isinstance(items, list):
        return [_finite(v) for v in items]
    if isinstance(items, float) and not math.isfinite(items):
        return None
    return items


def _to_value_form(reply_bytes):
    reply = json.loads(reply_bytes)
    if reply.get("success") is not True or '"ndarray"' not in reply.get("result", ""):
        return reply_bytes
    reply["result"] = json.dumps(_value_form(json.loads(reply["result"])), separators=(",", ":"),
                                 allow_nan=False)
    return json.dumps(reply, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _read_request(fd):
    parts, size = [], 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        parts.append(chunk)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def self_check(version):
    import cv2
    import numpy
    import blockbox_runtime
    found = {"numpy": numpy.__version__, "cv2": cv2.__version__}
    problems = ["%s %s (want %s)" % (k, found[k], v) for k, v in PINNED.items() if found[k] != v]
    if blockbox_runtime.RUNTIME_VERSION != version:
        problems.append("runtime %s (want %s)" % (blockbox_runtime.RUNTIME_VERSION, version))
    if problems:
        print("sandbox image self-check failed: " + ", ".join(problems), file=sys.stderr)
        return 1
    print("sandbox image ok: runtime %s, numpy %s, cv2 %s" % (version, found["numpy"], found["cv2"]))
    return 0


def main(argv):
    sys.path.insert(0, HERE)
    if len(argv) == 3 and argv[1] == "--self-check":
        return self_check(argv[2])
    reply_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    import blockbox_runtime
    blockbox_runtime.warm_up()
    _write_all(reply_fd, READY_MARK)        # the endpoint starts the block's clock here
    request = _read_request(0)
    os.dup2(devnull, 0)
    runtime = blockbox_runtime.Runtime()
    if request is None:
        reply = json.dumps(runtime._failure("InvalidRequest", "the request is over %d bytes"
                                            % MAX_REQUEST_BYTES)).encode()
    else:
        reply = runtime.handle_bytes(request)
        try:
            form = json.loads(request).get("ndarray_form")
        except (ValueError, AttributeError, RecursionError):
            form = None
        if form != "data":
            try:
                reply = _to_value_form(reply)
            except (ValueError, TypeError, KeyError, RecursionError, MemoryError) as exc:
                reply = json.dumps(runtime._failure("OutputLimit" if isinstance(exc, MemoryError)
                                                    else "ValueError", "the outputs could not be "
                                                    "sent in the value form: %s" % type(exc).__name__)
                                   ).encode()
    _write_all(reply_fd, reply)
    os.close(reply_fd)
    os._exit(0)   # no atexit hook or thread of the block runs after the reply


if __name__ == "__main__":
    sys.exit(main(sys.argv))
