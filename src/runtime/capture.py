"""capture.py: a block's stdout and stderr: text streams capped at max_stream_bytes
(marker included, the excess dropped as it arrives), the worker's fd 1 and 2 files
behind fileno(), and the context that swaps them in around user code."""

import io
import os
import sys


_MARKER_RESERVE = 64


class _CappedWriter(io.TextIOBase):
    """A text stream that keeps at most `cap` bytes (marker included) and drops the
    rest as it arrives."""

    def __init__(self, cap, name, fd=None):
        io.TextIOBase.__init__(self)
        self._fd = fd  # a real file behind fileno() (local worker: fd 1 / fd 2), or None
        self._cap = cap
        self._budget = max(0, cap - _MARKER_RESERVE)
        self._parts = []
        self._size = 0
        self._cut = False
        self.name = name
        self.buffer = _BytesToText(self)

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        # faulthandler, C extensions and os.write(sys.stderr.fileno(), ...) need one
        if self._fd is None:
            raise io.UnsupportedOperation("fileno")
        return self._fd

    def flush(self):
        pass

    def drain_fd(self):
        """What was written to fileno() during the call joins the captured text (after
        what was printed; at most the cap is read), and the file starts empty again."""
        if self._fd is None:
            return
        try:
            size = os.fstat(self._fd).st_size
            if size:
                data = os.pread(self._fd, min(size, self._cap), 0)
                os.ftruncate(self._fd, 0)
                self.write(data.decode("utf-8", "replace"))
        except OSError:
            pass

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        if self._cut:
            return len(text)
        size = _utf8_size(text)
        room = self._budget - self._size
        if size <= room:
            self._parts.append(text)
            self._size += size
            return len(text)
        if text.isascii():
            kept = text[:room]
        else:
            kept = text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
        self._parts.append(kept)
        self._size += _utf8_size(kept)
        marker = "\n[blockbox: output cut at %d bytes]" % self._size
        if self._size + len(marker) <= self._cap:
            self._parts.append(marker)
        self._cut = True
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def getvalue(self):
        return "".join(self._parts)


class _BytesToText:
    """sys.stdout.buffer of a capped writer: bytes are decoded as UTF-8 (replacing)."""

    def __init__(self, writer):
        self._writer = writer

    def write(self, data):
        self._writer.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self):
        pass


def _utf8_size(text):
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _stream_fd(limits, key):
    value = (limits or {}).get(key)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise ValueError("%s must be a file descriptor" % key)
    return value


class _Capture:
    """Around user code: capped stdout/stderr and cleared debug traces."""

    __slots__ = ("_runtime", "_call", "_block", "_saved", "_traced")

    def __init__(self, runtime, call, block, traced=True):
        self._runtime = runtime
        self._call = call
        self._block = block
        self._saved = None
        self._traced = traced   # False at load: module code and init trace into the void

    def __enter__(self):
        traces = self._block.traces
        traces._reset(self._call.step)
        self._call.traces = traces if self._traced else None
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = self._call.stdout, self._call.stderr
        return self

    def __exit__(self, *exc_info):
        sys.stdout, sys.stderr = self._saved
        self._call.stdout.drain_fd()
        self._call.stderr.drain_fd()
        return False
