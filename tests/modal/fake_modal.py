# fake_modal.py: a stub of the `modal` package whose every API takes exactly the parameters of
# the pinned modal version (modal_signatures.json); its Sandbox runs the command locally.
"""Stub of `modal` for tests/modal/test_app.py.

Every call the app makes (App, App.function, fastapi_endpoint, concurrent, Image steps,
Sandbox.create/wait/terminate, stream reads and writes, Dict) is bound against the
signature extracted from that modal version's source: an unknown parameter, a missing
one, or one that version marks deprecated raises TypeError, as `modal deploy` would
fail. Sandbox.create runs its command as a local subprocess, with BLOCK_DIR mapped to
the checkout, so tests run the real sandbox program; `memory` becomes RLIMIT_AS.
"""
import asyncio
import json
import os
import resource
import subprocess
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import modal_signatures  # noqa: E402

SIGS = modal_signatures.load_stored()["signatures"]
VERSION = modal_signatures.load_stored()["modal_version"]


def check_call(api, args, kwargs):
    """Binds (args, kwargs) to `api`'s signature in the pinned version, or raises."""
    sig = SIGS[api]
    positional = [p for p in sig["positional"] if not p.startswith("_warn")]
    if len(args) > len(positional) and not sig["var_positional"]:
        raise TypeError("%s takes %d positional arguments in modal %s, got %d"
                        % (api, len(positional), VERSION, len(args)))
    allowed = set(sig["positional"]) | set(sig["keyword_only"])
    for key in kwargs:
        if key not in allowed and not sig["var_keyword"]:
            raise TypeError("%s got an unexpected keyword argument %r (modal %s)" % (api, key, VERSION))
        if key in sig["deprecated"]:
            raise TypeError("%s: %r is deprecated in modal %s" % (api, key, VERSION))
        if key in positional[:len(args)]:
            raise TypeError("%s got multiple values for %r" % (api, key))


class _Aio:
    """A method with the `.aio` variant synchronicity gives every async Modal method."""

    def __init__(self, api, fn):
        self.api, self.fn = api, fn

    def __call__(self, *args, **kwargs):
        check_call(self.api, args, kwargs)
        result = self.fn(*args, **kwargs)
        if asyncio.iscoroutine(result):
            result.close()
            raise RuntimeError("blocking call of %s from async code: use .aio" % self.api)
        return result

    async def aio(self, *args, **kwargs):
        check_call(self.api, args, kwargs)
        result = self.fn(*args, **kwargs)
        if asyncio.iscoroutine(result):
            result = await result
        return result


class Image:
    def __init__(self, steps):
        self.steps = steps

    @classmethod
    def from_registry(cls, *args, **kwargs):
        check_call("Image.from_registry", args, kwargs)
        return cls([("from_registry", args, kwargs)])

    @classmethod
    def debian_slim(cls, *args, **kwargs):
        check_call("Image.debian_slim", args, kwargs)
        return cls([("debian_slim", args, kwargs)])

    def __getattr__(self, name):
        api = "Image." + name
        if api not in SIGS:
            raise AttributeError(name)

        def step(*args, **kwargs):
            check_call(api, args, kwargs)
            return Image(self.steps + [(name, args, kwargs)])
        return step


class Dict:
    created = {}

    def __init__(self, name):
        self.name, self.data = name, {}
        self.get = _Aio("Dict.get", lambda key, default=None: self.data.get(key, default))
        self.put = _Aio("Dict.put", self._put)

    def _put(self, key, value, skip_if_exists=False):
        if not isinstance(value, (bytes, str)):
            raise TypeError("the app stores JSON bytes only")
        self.data[key] = value
        return True

    @classmethod
    def from_name(cls, *args, **kwargs):
        check_call("Dict.from_name", args, kwargs)
        name = args[0] if args else kwargs["name"]
        if len(name) > 64:
            raise ValueError("Modal names are at most 64 characters: %r" % name)
        return cls.created.setdefault(name, cls(name))


class _Stdin:
    def __init__(self, proc):
        self.proc, self.buffer, self.eof = proc, [], False
        self.write = _Aio("StreamWriter.write", lambda data: self.buffer.append(bytes(data)))
        self.write_eof = _Aio("StreamWriter.write_eof", self._write_eof)
        self.drain = _Aio("StreamWriter.drain", self._drain)

    def _write_eof(self):
        self.eof = True

    async def _drain(self):
        if sum(len(b) for b in self.buffer) > 2 << 20:
            raise RuntimeError("more than 2 MiB buffered before drain (Modal's limit)")
        data, self.buffer = b"".join(self.buffer), []
        loop = asyncio.get_running_loop()
        if data:
            await loop.run_in_executor(None, self.proc.stdin.write, data)
            await loop.run_in_executor(None, self.proc.stdin.flush)
        if self.eof and not self.proc.stdin.closed:
            self.proc.stdin.close()


class _Stdout:
    def __init__(self, proc):
        self.proc = proc
        self.read = _Aio("StreamReader.read", self._read)

    async def _read(self):
        return "".join([c async for c in self])

    def __aiter__(self):
        return self._chunks()

    async def _chunks(self):
        loop = asyncio.get_running_loop()
        while True:
            chunk = await loop.run_in_executor(None, self.proc.stdout.read1, 1 << 16)
            if not chunk:
                return
            yield chunk.decode("utf-8", "replace")


class Sandbox:
    created = []
    block_dir = "/opt/blockbox"
    local_dir = None            # set by the test: where BLOCK_DIR's files are
    python = "/usr/bin/python3"

    def __init__(self, args, kwargs):
        self.args, self.kwargs = args, kwargs
        cmd = [a.replace(self.block_dir, self.local_dir) for a in args]
        memory = kwargs.get("memory")
        limit = (memory[1] if isinstance(memory, tuple) else memory) or 0

        def limits():
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit << 20, limit << 20))
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "OPENBLAS_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, cwd="/tmp",
                                     preexec_fn=limits)
        self.stdin, self.stdout = _Stdin(self.proc), _Stdout(self.proc)
        self.wait = _Aio("Sandbox.wait", self._wait)
        self.terminate = _Aio("Sandbox.terminate", self._terminate)
        self.poll = _Aio("Sandbox.poll", lambda: self.returncode)
        self.terminated = False

    @property
    def returncode(self):
        code = self.proc.poll()
        if code is not None and code < 0:
            return 128 - code          # Modal reports a signal as 128 + signal number
        return code

    async def _wait(self, raise_on_termination=True):
        await asyncio.get_running_loop().run_in_executor(None, self.proc.wait)

    def _terminate(self, wait=False):
        self.terminated = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass


async def _sandbox_create(*args, **kwargs):
    sandbox = Sandbox(args, kwargs)
    Sandbox.created.append(sandbox)
    return sandbox


class _Function:
    def __init__(self, fn, options, endpoint, concurrency):
        self.fn, self.options, self.endpoint, self.concurrency = fn, options, endpoint, concurrency


def _marker(api, attr):
    """modal.<api>(...), a decorator of a function App.function registers: checks its call
    against the pinned signature and keeps its options on the function as `attr`."""
    def decorator(*args, **kwargs):
        check_call(api, args, kwargs)

        def wrap(fn):
            setattr(fn, attr, kwargs)
            return fn
        return wrap
    return decorator


def make():
    modal = types.ModuleType("modal")
    modal.__version__ = VERSION
    modal.Image, modal.Dict = Image, Dict
    modal.Sandbox = types.SimpleNamespace(create=_Aio("Sandbox.create", _sandbox_create))
    modal.functions = []
    modal.fastapi_endpoint = _marker("fastapi_endpoint", "_endpoint")
    modal.concurrent = _marker("concurrent", "_concurrency")

    class App:
        def __init__(self, *args, **kwargs):
            check_call("App", args, kwargs)
            self.name = args[0] if args else kwargs.get("name")
            self.kwargs = kwargs
            if self.name and len(self.name) > 64:
                raise ValueError("app name over 64 characters")

        def function(self, *args, **kwargs):
            check_call("App.function", args, kwargs)

            def wrap(fn):
                f = _Function(fn, kwargs, getattr(fn, "_endpoint", None), getattr(fn, "_concurrency", None))
                modal.functions.append(f)
                return f
            return wrap

    modal.App = App
    return modal


def steps_json(image):
    return json.dumps([(n, list(a), k) for n, a, k in image.steps], default=str)
