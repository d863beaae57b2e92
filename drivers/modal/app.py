# app.py: the deployable Modal app of blockbox for one workspace: a trusted, proxy-auth
# web endpoint that checks each envelope and runs it in a restricted, single-use function.
"""blockbox on Modal: one app per workspace, `inference-workspace-{workspace_id}`.

Deploy (see drivers/modal/README.md):

    BLOCKBOX_WORKSPACE_ID=acme modal deploy drivers/modal/app.py

Two functions:

* `execute` (trusted): the web endpoint, `fastapi_endpoint(method="POST",
  requires_proxy_auth=True)`, so Modal's proxy refuses any request without a valid
  Modal-Key / Modal-Secret before a container starts. It decompresses (gzip) and
  validates the DESIGN §3 envelope, checks the runtime version, keeps the code of each
  block by its md5 (`block-{md5}`, in a per-app modal.Dict, so later calls may send the
  hash only), and hands the request to `run_block`. It never runs user code.
* `run_block` (untrusted code): `restrict_modal_access=True` (no Modal API, no other
  functions, no Dicts), `max_inputs=1` (a fresh container per call: no state leaks
  between calls or tenants), `timeout=20`, `region="us-central1"`, `block_network=True`,
  on debian_slim Python 3.11 with numpy, opencv-python-headless and the project's
  runtime module baked in at the library's runtime version (the image is tagged with
  it through the BLOCKBOX_RUNTIME_VERSION variable).

Logs name blocks only as `block-{md5}`: never code, inputs, outputs or headers.
"""
import hashlib
import json
import os
import re
import sys
import time
import zlib

import modal

HERE = os.path.dirname(os.path.abspath(__file__))
LOCAL_RUNTIME = os.path.join(HERE, "..", "..", "src", "runtime", "blockbox_runtime.py")
REMOTE_DIR = "/opt/blockbox"
REMOTE_RUNTIME = REMOTE_DIR + "/blockbox_runtime.py"

MAX_REQUEST_BYTES = 96 << 20       # decompressed envelope (inputs are capped at 64 MiB)
MAX_CODE_BYTES = 1 << 20
MAX_IMPORTS = 1024
CACHE_ENTRIES = 512                # code kept in each endpoint container's memory
REQUEST_KEYS = {"code_hash", "run_function_name", "code_str", "imports", "init_function_code",
                "init_function_name", "inputs_json", "workflow_context", "runtime_version",
                "ndarray_form"}
CODE_KEYS = ("code_str", "imports", "init_function_code", "init_function_name")
_SLUG = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _runtime_version_of(path):
    """RUNTIME_VERSION of the runtime file, read as text (the deploy host may lack numpy)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'^RUNTIME_VERSION\s*=\s*"([^"]+)"', line)
            if m:
                return m.group(1)
    raise RuntimeError("no RUNTIME_VERSION in %s" % path)


def _settings():
    """(workspace id, runtime version): from the deploy environment on the deploy host,
    from the image's environment inside a container."""
    workspace = os.environ.get("BLOCKBOX_WORKSPACE_ID", "")
    if not _SLUG.match(workspace):
        raise RuntimeError("set BLOCKBOX_WORKSPACE_ID to the workspace id (letters, digits, - and _, "
                           "at most 128) when deploying: one app per workspace")
    version = os.environ.get("BLOCKBOX_RUNTIME_VERSION")
    if not version:
        version = _runtime_version_of(LOCAL_RUNTIME)
    return workspace, version


WORKSPACE_ID, RUNTIME_VERSION = _settings()
APP_NAME = "inference-workspace-%s" % WORKSPACE_ID

# The image of untrusted code: the runtime is copied into a layer, and the version
# variable tags the image so a mismatch is visible in Modal's image list and in errors.
block_image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install("numpy>=1.24,<2", "opencv-python-headless>=4.6,<5", "shapely>=1.8,<3")
    .env({"BLOCKBOX_RUNTIME_VERSION": RUNTIME_VERSION, "BLOCKBOX_WORKSPACE_ID": WORKSPACE_ID,
          "PYTHONPATH": REMOTE_DIR, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    .add_local_file(LOCAL_RUNTIME if os.path.exists(LOCAL_RUNTIME) else REMOTE_RUNTIME,
                    REMOTE_RUNTIME, copy=True)
)
endpoint_image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install("fastapi[standard]")
    .env({"BLOCKBOX_RUNTIME_VERSION": RUNTIME_VERSION, "BLOCKBOX_WORKSPACE_ID": WORKSPACE_ID})
)

app = modal.App(APP_NAME)


def _failure(error_type, message):
    return {"success": False, "error_type": error_type, "error": message, "line_number": None,
            "function_name": None, "traceback": None, "stdout": "", "stderr": "",
            "runtime_version": RUNTIME_VERSION}


def _encode(obj):
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")


def log(event, code_hash=None, **fields):
    """One line per event, naming the block only by its md5."""
    parts = ["blockbox", event]
    if code_hash and _MD5.match(code_hash):
        parts.append("block-%s" % code_hash)
    parts += ["%s=%s" % (k, v) for k, v in sorted(fields.items())]
    print(" ".join(parts), file=sys.stderr, flush=True)


# ---- the restricted function: untrusted code runs only here ----------------------

@app.function(image=block_image, restrict_modal_access=True, max_inputs=1, timeout=20,
              region="us-central1", block_network=True)
def run_block(request_json: bytes) -> bytes:
    """Runs one checked envelope with the runtime baked into the image."""
    import blockbox_runtime
    if blockbox_runtime.RUNTIME_VERSION != RUNTIME_VERSION:
        return _encode(_failure("ConfigurationError",
                                "the image runs blockbox runtime %s but the app was deployed for %s: "
                                "redeploy drivers/modal/app.py"
                                % (blockbox_runtime.RUNTIME_VERSION, RUNTIME_VERSION)))
    return blockbox_runtime.Runtime().handle_bytes(request_json)


# ---- the trusted endpoint ------------------------------------------------------------

class RequestRefused(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def decode_body(raw, content_encoding):
    """The envelope bytes: gzip bodies are inflated with a cap (no decompression bombs)."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        body = raw
    elif encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(raw, MAX_REQUEST_BYTES + 1)
        except zlib.error:
            raise RequestRefused("InvalidRequest", "the gzip request body is corrupt") from None
        if len(body) > MAX_REQUEST_BYTES or inflater.unconsumed_tail:
            raise RequestRefused("InvalidRequest", "the request is over %d bytes" % MAX_REQUEST_BYTES)
        if not inflater.eof:
            raise RequestRefused("InvalidRequest", "the gzip request body is truncated")
    else:
        raise RequestRefused("InvalidRequest", "unsupported Content-Encoding")
    if len(body) > MAX_REQUEST_BYTES:
        raise RequestRefused("InvalidRequest", "the request is over %d bytes" % MAX_REQUEST_BYTES)
    return body


def _check_text(request, key, limit):
    value = request.get(key)
    if value is None:
        return
    if not isinstance(value, str):
        raise RequestRefused("InvalidRequest", "%s must be a string" % key)
    if len(value.encode("utf-8", "surrogatepass")) > limit or "\x00" in value:
        raise RequestRefused("InvalidRequest", "%s is too long or holds a NUL" % key)


def validate(body):
    """Parses and checks an envelope; returns the request dict or raises RequestRefused."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        raise RequestRefused("InvalidRequest", "the request is not JSON") from None
    if type(request) is not dict:
        raise RequestRefused("InvalidRequest", "the request must be a JSON object")
    unknown = sorted(set(request) - REQUEST_KEYS)
    if unknown:
        raise RequestRefused("InvalidRequest", "unknown request keys: %s" % ", ".join(unknown)[:200])
    version = request.get("runtime_version")
    if version is not None and version != RUNTIME_VERSION:
        raise RequestRefused("ConfigurationError",
                             "runtime version mismatch: the client speaks blockbox runtime %s, this "
                             "app (%s) runs %s: redeploy the app or upgrade the client"
                             % (str(version)[:32], APP_NAME, RUNTIME_VERSION))
    code_hash = request.get("code_hash")
    if not isinstance(code_hash, str) or not _MD5.match(code_hash):
        raise RequestRefused("InvalidRequest", "code_hash must be 32 lowercase hex digits")
    for key in ("run_function_name", "init_function_name"):
        name = request.get(key)
        if name is not None and (not isinstance(name, str) or not _IDENT.match(name)):
            raise RequestRefused("InvalidRequest", "%s must be a Python identifier" % key)
    _check_text(request, "code_str", MAX_CODE_BYTES)
    _check_text(request, "init_function_code", MAX_CODE_BYTES)
    _check_text(request, "inputs_json", MAX_REQUEST_BYTES)
    imports = request.get("imports")
    if imports is not None:
        if (type(imports) is not list or len(imports) > MAX_IMPORTS
                or not all(isinstance(i, str) and "\n" not in i and "\x00" not in i for i in imports)):
            raise RequestRefused("InvalidRequest", "imports must be a list of single lines")
    context = request.get("workflow_context")
    if context is not None and type(context) is not dict:
        raise RequestRefused("InvalidRequest", "workflow_context must be an object")
    if request.get("code_str") is not None:
        digest = hashlib.md5((request["code_str"] + "\n" + "\n".join(imports or []))
                             .encode("utf-8", "surrogatepass")).hexdigest()
        if digest != code_hash:
            raise RequestRefused("InvalidRequest", "code_hash does not match the code")
    return request


class CodeCache:
    """Code by block md5: a small in-memory LRU in front of the app's modal.Dict."""

    def __init__(self, store):
        self.store = store
        self.local = {}

    def put(self, code_hash, fields):
        self.local.pop(code_hash, None)
        self.local[code_hash] = fields
        while len(self.local) > CACHE_ENTRIES:
            self.local.pop(next(iter(self.local)))
        if self.store is not None:
            self.store.put("block-" + code_hash, fields)

    def get(self, code_hash):
        fields = self.local.get(code_hash)
        if fields is None and self.store is not None:
            fields = self.store.get("block-" + code_hash)
            if fields is not None:
                self.local[code_hash] = fields
        return fields


def handle(raw, content_encoding, workspace_param, cache, run_remote):
    """The endpoint's whole logic, free of FastAPI: bytes in, (status, bytes) out."""
    started = time.monotonic()
    code_hash = None
    try:
        if workspace_param is not None and workspace_param != WORKSPACE_ID:
            raise RequestRefused("ConfigurationError",
                                 "this endpoint serves workspace %s, not %s"
                                 % (WORKSPACE_ID, str(workspace_param)[:128]))
        request = validate(decode_body(raw, content_encoding))
        code_hash = request["code_hash"]
        if request.get("code_str") is not None:
            cache.put(code_hash, {k: request[k] for k in CODE_KEYS if request.get(k) is not None})
        else:
            fields = cache.get(code_hash)
            if fields is None:
                log("unknown-hash", code_hash)
                return 200, _encode(_failure("UnknownCodeHash",
                                             "this app does not know code hash %s: send the code"
                                             % code_hash))
            request = {k: v for k, v in request.items() if v is not None}
            request.update(fields)
        try:
            response = run_remote(_encode(request))
        except Exception as exc:  # noqa: BLE001 - Modal's errors become envelope errors
            kind = type(exc).__name__
            error_type = "Timeout" if "Timeout" in kind else "BackendUnavailable"
            log("run-failed", code_hash, error=kind)
            return 200, _encode(_failure(error_type, "the restricted function failed: %s" % kind))
        log("ran", code_hash, ms=int((time.monotonic() - started) * 1000))
        return 200, response
    except RequestRefused as refused:
        log("refused", code_hash, error=refused.error_type)
        return 200, _encode(_failure(refused.error_type, refused.message))


_cache = None


def _code_cache():
    global _cache  # one per endpoint container, which owns it for its whole life
    if _cache is None:
        _cache = CodeCache(modal.Dict.from_name(APP_NAME + "-code", create_if_missing=True))
    return _cache


try:
    from fastapi import Request, Response
except ImportError:  # the deploy host and the tests need not have FastAPI
    Request = Response = None


@app.function(image=endpoint_image, region="us-central1", timeout=60)
@modal.fastapi_endpoint(method="POST", requires_proxy_auth=True)
async def execute(request: Request):
    # One request per endpoint container at a time: the blocking .remote() call is fine.
    raw = await request.body()
    status, body = handle(raw, request.headers.get("content-encoding"),
                          request.query_params.get("workspace_id"), _code_cache(),
                          run_block.remote)
    if Response is None:
        return status, body
    return Response(content=body, status_code=status, media_type="application/json")


__all__ = ["app", "run_block", "execute", "handle", "validate", "decode_body", "CodeCache",
           "APP_NAME", "RUNTIME_VERSION"]
