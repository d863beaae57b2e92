# app.py: blockbox's deployable Modal app: one trusted, proxy-authenticated endpoint for every
# workspace, which runs each call's block in a fresh network-less modal.Sandbox.
"""blockbox on Modal (drivers/modal/README.md has the whole story; deploy with deploy.py).

    BLOCKBOX_MODAL_APP=blockbox modal deploy drivers/modal/app.py     # via deploy.py

* `execute` (trusted; `fastapi_endpoint(method="POST", requires_proxy_auth=True)`):
  one URL for all workspaces, `?workspace_id=` picks the workspace. It inflates and
  checks the envelope (blockbox_modal_endpoint.py), keeps verified code per workspace,
  and runs the block in a new sandbox. It never runs user code and never unpickles
  anything the block could have written: the sandbox is fed JSON bytes on stdin and
  its stdout bytes are the only thing read back, checked like any reply.
* The sandbox (untrusted code): `modal.Sandbox.create(...)` per call on the block image
  (Debian bookworm's python3 with numpy 1.24.2 and OpenCV 4.6.0, exactly local mode's,
  plus the runtime of this checkout, amalgamated from src/runtime), `block_network=True`,
  cpu and memory hard limits, the block timeout, region. A sandbox runs `sandbox_main.py` and nothing of
  Modal's client: no runtime to tamper with, no credentials, no Modal API access. One
  sandbox serves one call and is terminated: workspaces never share one.

Knobs (environment at deploy time, recorded in the image): BLOCKBOX_MODAL_APP,
BLOCKBOX_MODAL_REGION, BLOCKBOX_MODAL_MEMORY_MB, BLOCKBOX_MODAL_CPU,
BLOCKBOX_MODAL_TIMEOUT, BLOCKBOX_MODAL_WARM_SANDBOXES, BLOCKBOX_MODAL_MIN_CONTAINERS,
BLOCKBOX_MODAL_SCALEDOWN, BLOCKBOX_MODAL_CONCURRENCY, BLOCKBOX_MODAL_ALLOW_ANONYMOUS.
"""
import asyncio
import importlib.util
import os
import re
import sys
import time

import modal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import blockbox_modal_endpoint as ep  # noqa: E402

BLOCK_DIR = "/opt/blockbox"
SANDBOX_CMD = ("/usr/bin/python3", "-I", BLOCK_DIR + "/sandbox_main.py")
READY_MARK = "\x06"    # sandbox_main.py's first stdout byte
# Debian bookworm (12.11) packages of local mode: `dpkg-query -W` on the CI image.
BLOCK_APT = ("python3=3.11.2-1+b1", "python3.11=3.11.2-6+deb12u6",
             "python3-numpy=1:1.24.2-1+deb12u1", "python3-opencv=4.6.0+dfsg-12",
             "python3-shapely=1.8.5-2+b1")
ENDPOINT_PIP = ("fastapi[standard]==0.115.12",)


def _local_runtime():
    """The runtime file the block image ships: blockbox_runtime.py in $BLOCKBOX_RUNTIME_DIR
    (a build's, e.g. build/runtime), else the checkout's src/runtime modules amalgamated
    into a temporary directory (src/runtime/amalgamate.py, removed at exit). Where there
    is no checkout (this file imported inside Modal's container, which reads no runtime
    file) only the name is returned."""
    tool = os.path.join(HERE, "..", "..", "src", "runtime", "amalgamate.py")
    if not os.path.isfile(tool):
        return os.path.join(HERE, "blockbox_runtime.py")
    amalgamate = sys.modules.get("blockbox_amalgamate")   # one temporary file a process
    if amalgamate is None:
        spec = importlib.util.spec_from_file_location("blockbox_amalgamate", tool)
        amalgamate = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(amalgamate)
        sys.modules["blockbox_amalgamate"] = amalgamate
    return os.path.join(amalgamate.runtime_dir(), amalgamate.OUTPUT_NAME)


def _runtime_version_of(path):
    """RUNTIME_VERSION of the runtime file, read as text (the deploy host may lack numpy)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'^RUNTIME_VERSION\s*=\s*"([^"]+)"', line)
            if m:
                return m.group(1)
    raise RuntimeError("no RUNTIME_VERSION in %s" % path)


def _knob(name, default, kind=int, low=None, high=None):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise RuntimeError("%s must be a number, not %r" % (name, raw)) from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise RuntimeError("%s must be in [%s, %s]" % (name, low, high))
    return value


APP_NAME = os.environ.get("BLOCKBOX_MODAL_APP") or "blockbox"
if not re.match(r"^[a-z0-9][a-z0-9-]{0,47}$", APP_NAME):
    raise RuntimeError("BLOCKBOX_MODAL_APP must be 1-48 of [a-z0-9-] (the endpoint label "
                       "'{app}-execute' must stay within Modal's limits)")
LOCAL_RUNTIME = _local_runtime()
RUNTIME_VERSION = os.environ.get("BLOCKBOX_RUNTIME_VERSION") or _runtime_version_of(LOCAL_RUNTIME)
# Modal's control plane is in us-east: the endpoint and the sandboxes are kept in one
# region (us-east by default) so a call makes no cross-region hop; override per deployment.
REGION = os.environ.get("BLOCKBOX_MODAL_REGION") or "us-east"
MEMORY_MB = _knob("BLOCKBOX_MODAL_MEMORY_MB", 1024, int, 128, 32768)
CPU = _knob("BLOCKBOX_MODAL_CPU", 1.0, float, 0.125, 16)
TIMEOUT_S = _knob("BLOCKBOX_MODAL_TIMEOUT", 20, int, 1, 600)
WARM_SANDBOXES = _knob("BLOCKBOX_MODAL_WARM_SANDBOXES", 2, int, 0, 64)
WARM_IDLE_S = _knob("BLOCKBOX_MODAL_WARM_IDLE", 240, int, 10, 3600)
MIN_CONTAINERS = _knob("BLOCKBOX_MODAL_MIN_CONTAINERS", 0, int, 0, 100)
SCALEDOWN_S = _knob("BLOCKBOX_MODAL_SCALEDOWN", 300, int, 2, 3600)
CONCURRENCY = _knob("BLOCKBOX_MODAL_CONCURRENCY", 16, int, 1, 1000)
ALLOW_ANONYMOUS = os.environ.get("BLOCKBOX_MODAL_ALLOW_ANONYMOUS", "").lower() in ("1", "true")
SETTINGS = ep.Settings(RUNTIME_VERSION, ALLOW_ANONYMOUS, MEMORY_MB, TIMEOUT_S)
KNOBS = {"BLOCKBOX_MODAL_APP": APP_NAME, "BLOCKBOX_RUNTIME_VERSION": RUNTIME_VERSION,
         "BLOCKBOX_MODAL_REGION": REGION, "BLOCKBOX_MODAL_MEMORY_MB": str(MEMORY_MB),
         "BLOCKBOX_MODAL_CPU": str(CPU), "BLOCKBOX_MODAL_TIMEOUT": str(TIMEOUT_S),
         "BLOCKBOX_MODAL_WARM_SANDBOXES": str(WARM_SANDBOXES),
         "BLOCKBOX_MODAL_WARM_IDLE": str(WARM_IDLE_S),
         "BLOCKBOX_MODAL_ALLOW_ANONYMOUS": "1" if ALLOW_ANONYMOUS else ""}

# The image of untrusted code: Debian's python3 and libraries, nothing of Modal's client.
# The build fails unless the versions are exactly local mode's (sandbox_main --self-check).
block_image = (
    modal.Image.from_registry("debian:12.11-slim")
    .apt_install(*BLOCK_APT)
    .env({"BLOCKBOX_RUNTIME_VERSION": RUNTIME_VERSION, "OPENBLAS_NUM_THREADS": "1",
          "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp"})
    .add_local_file(LOCAL_RUNTIME, BLOCK_DIR + "/blockbox_runtime.py", copy=True)
    .add_local_file(os.path.join(HERE, "sandbox_main.py"), BLOCK_DIR + "/sandbox_main.py", copy=True)
    .run_commands("/usr/bin/python3 -I %s/sandbox_main.py --self-check %s" % (BLOCK_DIR, RUNTIME_VERSION))
    .workdir("/tmp")
)
endpoint_image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install(*ENDPOINT_PIP)
    .env(KNOBS)
    .add_local_file(os.path.join(HERE, "blockbox_modal_endpoint.py"), "/root/blockbox_modal_endpoint.py",
                    copy=True)
)

app = modal.App(APP_NAME, tags={"blockbox-runtime": RUNTIME_VERSION})


async def _create_sandbox(lifetime_s):
    return await modal.Sandbox.create.aio(
        *SANDBOX_CMD, image=block_image, timeout=lifetime_s, block_network=True,
        cpu=(CPU, CPU), memory=(MEMORY_MB, MEMORY_MB), region=REGION, workdir="/tmp")


class SandboxPool:
    """Blank sandboxes started ahead of calls (runtime imported, waiting on stdin): the
    warm start. A sandbox has seen no request when it is taken; each is used once."""

    def __init__(self, size, create):
        self.size, self.create = size, create
        self.idle = []            # (sandbox, started at)
        self.filling = None

    async def take(self):
        while self.idle:
            sandbox, started = self.idle.pop()
            if time.monotonic() - started < WARM_IDLE_S - TIMEOUT_S - 5:
                self.refill()
                return sandbox
            asyncio.ensure_future(_terminate(sandbox))
        self.refill()
        return await self.create(TIMEOUT_S + 10)

    def refill(self):
        if self.size and (self.filling is None or self.filling.done()):
            self.filling = asyncio.ensure_future(self._fill())

    async def _fill(self):
        while len(self.idle) < self.size:
            try:
                sandbox = await self.create(WARM_IDLE_S)
            except Exception as exc:  # noqa: BLE001 - a full pool is an optimisation only
                ep.log("warm-pool-failed", error=type(exc).__name__)
                return
            self.idle.append((sandbox, time.monotonic()))


async def _terminate(sandbox):
    try:
        await sandbox.terminate.aio()
    except Exception:  # noqa: BLE001 - it may be gone already
        pass


READY_TIMEOUT_S = 120   # a cold sandbox: scheduling, image, imports (not the block's time)


async def _wait_ready(chunks):
    """The first stdout byte is sandbox_main's READY mark, written after its imports and
    before it reads the request: the block's clock starts there. Returns the rest of
    that chunk, or None if the sandbox ended without the mark."""
    async for chunk in chunks:
        if chunk:
            return chunk[1:] if chunk[0] == READY_MARK else None
    return None


async def _read_capped(chunks, first, cap):
    parts, size = [first], len(first)
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            return None
        parts.append(chunk)
    return "".join(parts)


async def run_in_sandbox(pool, workspace, body):
    """One call in one fresh sandbox: request on stdin, reply from stdout, deadline here."""
    try:
        sandbox = await pool.take()
    except Exception as exc:  # noqa: BLE001
        return ep.Outcome(failure=type(exc).__name__)
    try:
        step = 1 << 20                           # Modal buffers at most 2 MiB of stdin
        for offset in range(0, len(body), step):
            sandbox.stdin.write(body[offset:offset + step])
            await sandbox.stdin.drain.aio()
        sandbox.stdin.write_eof()
        await sandbox.stdin.drain.aio()
        try:
            chunks = sandbox.stdout.__aiter__()
            first = await asyncio.wait_for(_wait_ready(chunks), READY_TIMEOUT_S)
        except asyncio.TimeoutError:
            return ep.Outcome(failure="the sandbox did not start within %d s" % READY_TIMEOUT_S)
        if first is None:
            return ep.Outcome(exit_code=sandbox.returncode)
        try:
            stdout = await asyncio.wait_for(_read_capped(chunks, first, ep.MAX_REPLY_BYTES), TIMEOUT_S)
        except asyncio.TimeoutError:
            return ep.Outcome(timed_out=True)
        if stdout is None:
            return ep.Outcome(oversize=True)
        try:
            await asyncio.wait_for(sandbox.wait.aio(raise_on_termination=False), 5)
        except asyncio.TimeoutError:
            pass
        return ep.Outcome(stdout=stdout, exit_code=sandbox.returncode)
    finally:
        await _terminate(sandbox)


class _DictStore:
    """The code store of one workspace: a modal.Dict of JSON bytes, async calls only."""

    def __init__(self, workspace):
        self.dict = modal.Dict.from_name(ep.modal_name("bbx-code-", workspace), create_if_missing=True)

    async def get(self, key):
        return await self.dict.get.aio(key)

    async def put(self, key, value):
        await self.dict.put.aio(key, value)


_state = {}


def _endpoint_state():
    """Per endpoint container: the code cache (keyed by workspace) and the warm pool."""
    if not _state:
        stores = {}

        def store_for(workspace):
            if workspace not in stores:
                stores[workspace] = _DictStore(workspace)
            return stores[workspace]
        _state["cache"] = ep.CodeCache(store_for)
        _state["pool"] = SandboxPool(WARM_SANDBOXES, _create_sandbox)
    return _state["cache"], _state["pool"]


try:
    from fastapi import Request, Response
except ImportError:  # the deploy host and the tests need not have FastAPI
    Request = Response = None


@app.function(image=endpoint_image, region=REGION, timeout=TIMEOUT_S + 60, cpu=1.0, memory=2048,
              min_containers=MIN_CONTAINERS, scaledown_window=SCALEDOWN_S,
              enable_memory_snapshot=True)
@modal.concurrent(max_inputs=CONCURRENCY)
@modal.fastapi_endpoint(method="POST", requires_proxy_auth=True, label=APP_NAME + "-execute")
async def execute(request: Request):
    cache, pool = _endpoint_state()
    pool.refill()
    raw = await request.body()
    status, body, headers = await ep.handle(
        raw, request.headers.get("content-encoding"), request.query_params.get("workspace_id"),
        cache, lambda ws, b: run_in_sandbox(pool, ws, b), SETTINGS)
    if Response is None:
        return status, body, headers
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


__all__ = ["app", "execute", "run_in_sandbox", "SandboxPool", "APP_NAME", "RUNTIME_VERSION"]
