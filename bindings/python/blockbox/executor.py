# executor.py: Executor and Block, the Python faces of bb_executor and bb_block; runs go
# through ctypes, which releases the GIL for the whole foreign call.
import ctypes
import threading
import time
import weakref

from . import _lib
from .errors import Error, InvalidRequest, class_for_kind
from .values import decode, encode, encode_run


_now = time.perf_counter


def _s(value):
    return value.decode("utf-8", "replace") if value is not None else None


def _raise_error(lib, err, stdout="", stderr="", traces=None, denied=()):
    """Turns a bb_error* (not freed here) into the matching exception."""
    kind = lib.bb_error_get_kind(err)
    line = lib.bb_error_line(err)
    cls = class_for_kind(kind)
    raise cls(_s(lib.bb_error_type_name(err)), _s(lib.bb_error_message(err)),
              line_number=line if line > 0 else None,
              function_name=_s(lib.bb_error_function(err)),
              traceback=_s(lib.bb_error_traceback(err)), stdout=stdout, stderr=stderr,
              debug_traces=traces, denied_syscalls=denied, exit_code=lib.bb_error_exit_code(err))


def _take_error(lib, errp):
    err = errp.value
    try:
        _raise_error(lib, err)
    finally:
        lib.bb_error_free(err)


def _setting(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _free_executor(lib, handle):
    lib.bb_executor_free(handle)


def _free_block(lib, handle):
    lib.bb_block_free(handle)


class Executor:
    """One blockbox executor (a backend and its settings). Executor(**settings) starts from the
    defaults; Executor.from_env(**overrides) from the environment (DESIGN §4). Settings are the
    keys of bb_config_set (mode, timeout, memory_mb, max_inputs, …; see README). Use it as a
    context manager, or call close(): that frees its blocks too."""

    def __init__(self, _from_env=False, **settings):
        lib = self._lib = _lib.library()
        errp = ctypes.c_void_p()
        cfg = lib.bb_config_from_env(ctypes.byref(errp)) if _from_env else lib.bb_config_new()
        if not cfg:
            if errp.value:
                _take_error(lib, errp)
            raise MemoryError("bb_config_new")
        try:
            for key, value in settings.items():
                if value is None:
                    continue
                if lib.bb_config_set(cfg, key.encode(), _setting(value).encode(), ctypes.byref(errp)) != 0:
                    _take_error(lib, errp)
            handle = lib.bb_executor_new(cfg, ctypes.byref(errp))
            if not handle:
                _take_error(lib, errp)
        finally:
            lib.bb_config_free(cfg)
        self._handle = handle
        self._blocks = weakref.WeakSet()
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _free_executor, lib, handle)

    @classmethod
    def from_env(cls, **overrides):
        return cls(_from_env=True, **overrides)

    @property
    def driver(self):
        self._check()
        return _s(self._lib.bb_executor_driver(self._handle))

    def describe(self):
        """The backend's description (what `blockbox doctor` shows), as JSON text."""
        self._check()
        ptr = self._lib.bb_executor_describe(self._handle)
        if not ptr:
            raise MemoryError("bb_executor_describe")
        try:
            return ctypes.string_at(ptr).decode("utf-8", "replace")
        finally:
            _lib.free(ptr)

    def _check(self):
        if not self._finalizer.alive:
            raise Error("ConfigurationError", "this executor is closed")

    def load(self, code, init=None, imports=None, function="run", init_function="init",
             workspace=None, max_inputs=0):
        """Loads a block (runs its init once) and returns a Block."""
        self._check()
        if isinstance(imports, str):
            raise TypeError("imports is a list of import lines")
        imports = list(imports or [])
        enc = [i.encode("utf-8") for i in imports]
        arr = (ctypes.c_char_p * max(1, len(enc)))(*enc)
        spec = _lib.BlockSpec(code.encode("utf-8"), function.encode(),
                              init.encode("utf-8") if init is not None else None,
                              init_function.encode(), arr, len(enc),
                              workspace.encode() if workspace else None, int(max_inputs))
        errp = ctypes.c_void_p()
        t0 = time.perf_counter()
        handle = self._lib.bb_block_load(self._handle, ctypes.byref(spec), ctypes.byref(errp))
        load_s = time.perf_counter() - t0
        if not handle:
            _take_error(self._lib, errp)
        block = Block(self, handle, load_s)
        with self._lock:
            self._blocks.add(block)
        return block

    def close(self):
        """Frees every block of this executor, then the executor (waits for runs in flight)."""
        with self._lock:
            blocks = list(self._blocks)
        for b in blocks:
            b.close()
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _ResultBuffers:
    """Owns a bb_result whose outputs name buffers: the arrays over those buffers keep it
    (through their memoryviews) until the last of them is gone, then it is freed."""
    __slots__ = ("__weakref__",)


def _result_views(lib, res):
    """Read-only memoryviews over the result's buffers, each keeping the result alive."""
    n = lib.bb_result_buffer_count(res)
    owner = _ResultBuffers()
    weakref.finalize(owner, lib.bb_result_free, res)
    views = []
    size = ctypes.c_size_t()
    for i in range(n):
        ptr = lib.bb_result_buffer(res, i, ctypes.byref(size))
        if not ptr or not size.value:
            views.append(memoryview(b""))
            continue
        raw = (ctypes.c_ubyte * size.value).from_address(ptr)
        raw._owner = owner   # the ctypes array keeps the result; the view keeps the array
        # Read-only at the Python level too: the mapping is, and numpy cannot make an array
        # over a read-only view writable again.
        views.append(memoryview(raw).cast("B").toreadonly())
    return views


class Result:
    """One run: outputs (decoded), stdout, stderr, debug_traces, seconds spent."""
    __slots__ = ("outputs", "stdout", "stderr", "debug_traces", "seconds")

    def __init__(self, outputs, stdout, stderr, debug_traces, seconds):
        self.outputs, self.stdout, self.stderr = outputs, stdout, stderr
        self.debug_traces, self.seconds = debug_traces, seconds


class Block:
    """A loaded block instance. run() may be called from many threads: the GIL is released while
    the block runs; runs of one block are serialised by the C library (one interpreter)."""

    def __init__(self, executor, handle, load_s):
        self._executor = executor   # keeps the executor alive as long as the block
        self._lib = executor._lib
        self._handle = handle
        self._lock = threading.Lock()
        self._idle = threading.Event()   # set when closing and no run is in flight
        self._active = 0
        self._closing = False
        self._finalizer = weakref.finalize(self, _free_block, self._lib, handle)
        self._load_s = load_s
        # runs, errors, encode, call, decode, last (seconds), under _lock
        self._acc = [0, 0, 0.0, 0.0, 0.0, None]
        self.code_hash = _s(self._lib.bb_block_code_hash(handle))

    @property
    def stats(self):
        """Timings: load_s, runs, errors, and totals of encode (Python -> JSON), call (the C
        bb_block_run: transport + sandbox + block), decode (JSON -> Python), last_run_s."""
        with self._lock:
            runs, errors, enc, call, dec, last = self._acc
        return {"load_s": self._load_s, "runs": runs, "errors": errors, "encode_s_total": enc,
                "call_s_total": call, "decode_s_total": dec, "run_s_total": enc + call + dec,
                "last_run_s": last}

    def _enter(self):
        with self._lock:
            if self._closing:
                raise Error("ConfigurationError", "this block is closed")
            self._active += 1

    def _leave(self, enc, call, dec, failed):
        with self._lock:
            self._active -= 1
            acc = self._acc
            acc[0] += 1
            acc[1] += failed
            acc[2] += enc
            acc[3] += call
            acc[4] += dec
            acc[5] = enc + call + dec
            if self._closing and not self._active:
                self._idle.set()

    def run(self, context=None, **inputs):
        """Runs the block once; returns its outputs as Python objects (a dict, or a list for
        batch blocks). Raises BlockError or another blockbox.Error on failure (with the run's
        stdout, stderr and debug_traces)."""
        return self._run(context, inputs, False)

    def run_result(self, context=None, inputs=None):
        """Like run(), with the run's stdout, stderr and debug_traces (a Result)."""
        return self._run(context, inputs or {}, True)

    def _run(self, context, inputs, full):
        lib = self._lib
        t0 = _now()
        if lib.has_buffers:
            text, arrays = encode_run(inputs)
            text = text.encode("utf-8")
        else:
            text, arrays = encode(inputs).encode("utf-8"), ()
        ctx = None
        if context is not None:
            if not isinstance(context, dict):
                raise InvalidRequest("InvalidRequest", "context must be a dict")
            ctx = encode(context).encode("utf-8")
        bufs = None
        if arrays:
            bufs = (_lib.Buffer * len(arrays))()
            for i, a in enumerate(arrays):   # the arrays stay referenced until the call returns
                bufs[i].data = a.__array_interface__["data"][0] if a.nbytes else None
                bufs[i].len = a.nbytes
        self._enter()
        t1 = t2 = t0
        failed = 1
        try:
            t1 = _now()
            if bufs is not None:   # the GIL is released for the whole foreign call
                res = lib.bb_block_run_buffers(self._handle, text, ctx, bufs, len(arrays))
            else:
                res = lib.bb_block_run(self._handle, text, ctx)
            t2 = _now()
            if not res:
                raise MemoryError("bb_block_run")
            owned = False   # True once result buffers (and so the result) belong to arrays
            try:
                if not lib.bb_result_ok(res):
                    traces = decode(lib.bb_result_debug_traces(res))
                    denied = _s(lib.bb_result_denied_syscalls(res))
                    _raise_error(lib, lib.bb_result_error(res), _s(lib.bb_result_stdout(res)),
                                 _s(lib.bb_result_stderr(res)), traces,
                                 [d for d in denied.split(",") if d] if denied else ())
                raw = lib.bb_result_outputs(res)
                views = None
                # A buffer is named by a typed value: outputs without "_type" name none, so
                # a plain run skips the extra foreign call.
                if lib.has_buffers and b'"_type"' in raw and lib.bb_result_buffer_count(res):
                    views = _result_views(lib, res)
                    owned = True
                outputs = decode(raw, views)
                if full:   # streams and traces only when asked for: a trivial run stays cheap
                    traces_text = lib.bb_result_debug_traces(res)
                    outputs = Result(outputs, _s(lib.bb_result_stdout(res)), _s(lib.bb_result_stderr(res)),
                                     decode(traces_text) if traces_text != b"[]" else [], 0.0)
                del views
            finally:
                if not owned:
                    lib.bb_result_free(res)
            failed = 0
            if full:
                outputs.seconds = _now() - t0
            return outputs
        finally:
            self._leave(t1 - t0, t2 - t1, _now() - t2, failed)

    def close(self):
        """Waits for runs in flight, then frees the block (its worker ends)."""
        with self._lock:
            self._closing = True
            busy = self._active > 0
        if busy:
            self._idle.wait()
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
