# blockbox_modal_endpoint.py: the trusted logic of blockbox's Modal app, free of Modal: checks
# each request, routes it by workspace, keeps verified code, runs it, checks what comes back.
"""The trusted endpoint's whole logic (drivers/modal/README.md, "The Modal app").

`handle()` takes the raw body, its Content-Encoding and the `workspace_id` query value;
it returns (HTTP status, body bytes, extra headers). It never runs user code and never
unpickles anything: the block runs in a fresh sandbox (`runner`, app.py) that is fed
the checked request as JSON bytes on stdin and whose stdout bytes are the only thing
that comes back; they are checked here like any reply (`check_reply`).

Trust marks: an error this endpoint decides itself (the sandbox died, was killed at the
deadline, ran out of memory, sent a reply that is not one) carries the response header
`Blockbox-Error: <error_type>`; the block cannot set headers, so the C driver believes
those (Timeout, MemoryLimit, ...) and treats every other failure as the block's own.
"""
import asyncio
import collections
import hashlib
import json
import re
import sys
import time
import zlib

MAX_REQUEST_BYTES = 96 << 20       # inflated envelope (inputs are capped at 64 MiB)
MAX_REPLY_BYTES = 80 << 20         # a sandbox's stdout: 64 MiB result + streams + traces
MAX_CODE_BYTES = 1 << 20
MAX_IMPORTS = 1024
CACHE_ENTRIES = 2048               # code entries kept in one endpoint container's memory
CACHE_BYTES = 64 << 20
MODAL_NAME_MAX = 64                # Modal's limit on app, Dict, function names
REQUEST_KEYS = {"code_hash", "run_function_name", "code_str", "imports", "init_function_code",
                "init_function_name", "inputs_json", "workflow_context", "runtime_version",
                "ndarray_form", "init_code_hash",
                "limits"}   # limits: {max_depth}, read by the runtime (issue 8)
CODE_KEYS = ("code_str", "imports", "init_function_code", "init_function_name")
REPLY_STRINGS = ("result", "stdout", "stderr", "error", "error_type", "function_name",
                 "traceback", "runtime_version")
REPLY_KEYS = set(REPLY_STRINGS) | {"success", "line_number", "denied_syscalls", "debug_traces"}
TRUST_HEADER = "Blockbox-Error"
_WORKSPACE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_ERROR_TYPE = re.compile(r"^[A-Za-z0-9_.]{1,128}$")


class Refused(Exception):
    """An answer decided here; `trusted` ones carry the trust header."""

    def __init__(self, error_type, message, trusted=False):
        super().__init__(message)
        self.error_type, self.message, self.trusted = error_type, message, trusted


class Outcome:
    """What a runner saw of one sandbox: its stdout (None if it sent none, or too much),
    its exit code, and whether the endpoint killed it at the deadline."""

    def __init__(self, stdout=None, exit_code=None, timed_out=False, oversize=False, failure=None):
        self.stdout, self.exit_code, self.timed_out = stdout, exit_code, timed_out
        self.oversize, self.failure = oversize, failure


def failure(error_type, message, runtime_version):
    return {"success": False, "error_type": error_type, "error": message, "line_number": None,
            "function_name": None, "traceback": None, "stdout": "", "stderr": "",
            "runtime_version": runtime_version}


def encode(obj):
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")


def log(event, workspace=None, code_hash=None, **fields):
    """One line per event: the workspace by its Modal-safe name, the block only by md5."""
    parts = ["blockbox", event]
    if workspace:
        parts.append("ws=%s" % modal_name("", workspace))
    if code_hash and _MD5.match(code_hash):
        parts.append("block-%s" % code_hash)
    parts += ["%s=%s" % (k, v) for k, v in sorted(fields.items())]
    print(" ".join(parts), file=sys.stderr, flush=True)


def modal_name(prefix, workspace):
    """A Modal object name (<= 64 characters) unique to `workspace`: prefix + id when it
    fits, else prefix + the id's first characters + "-h" + 24 hex digits of sha256(id).
    An id that itself ends like that is hashed too, so no two ids share a name."""
    name = prefix + workspace
    if len(name) <= MODAL_NAME_MAX and not re.search(r"-h[0-9a-f]{24}$", workspace):
        return name
    digest = hashlib.sha256(workspace.encode("ascii")).hexdigest()[:24]
    keep = MODAL_NAME_MAX - len(prefix) - 26
    return "%s%s-h%s" % (prefix, workspace[:max(keep, 0)], digest)


def block_md5(code, imports):
    return hashlib.md5((code + "\n" + "\n".join(imports or []))
                       .encode("utf-8", "surrogatepass")).hexdigest()


def init_digest(init_code, init_name):
    """The init part of a cache key: "none" without init code, else docs/wire.md's
    init_code_hash, md5(init_function_code + "\n" + init_function_name)."""
    if init_code is None:
        return "none"
    return hashlib.md5((init_code + "\n" + (init_name or "init"))
                       .encode("utf-8", "surrogatepass")).hexdigest()


def cache_key(code_hash, init_code, init_name):
    return "block-%s-init-%s" % (code_hash, init_digest(init_code, init_name))


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
            raise Refused("InvalidRequest", "the gzip request body is corrupt") from None
        if len(body) > MAX_REQUEST_BYTES or inflater.unconsumed_tail:
            raise Refused("InvalidRequest", "the request is over %d bytes" % MAX_REQUEST_BYTES)
        if not inflater.eof:
            raise Refused("InvalidRequest", "the gzip request body is truncated")
    else:
        raise Refused("InvalidRequest", "unsupported Content-Encoding")
    if len(body) > MAX_REQUEST_BYTES:
        raise Refused("InvalidRequest", "the request is over %d bytes" % MAX_REQUEST_BYTES)
    return body


def check_workspace(value, allow_anonymous):
    if value is None or value == "":
        if allow_anonymous:
            return "anonymous"
        raise Refused("ConfigurationError", "the request names no workspace: append "
                      "?workspace_id=ID to the endpoint URL")
    if not isinstance(value, str) or not _WORKSPACE.match(value):
        raise Refused("InvalidRequest", "workspace_id must be 1-128 of [A-Za-z0-9_-]")
    return value


def _check_text(request, key, limit):
    value = request.get(key)
    if value is None:
        return
    if not isinstance(value, str):
        raise Refused("InvalidRequest", "%s must be a string" % key)
    if len(value) > limit or len(value.encode("utf-8", "surrogatepass")) > limit or "\x00" in value:
        raise Refused("InvalidRequest", "%s is too long or holds a NUL" % key)


def validate(body, runtime_version):
    """Parses and checks an envelope; returns the request dict or raises Refused."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused("InvalidRequest", "the request is not JSON") from None
    if type(request) is not dict:
        raise Refused("InvalidRequest", "the request must be a JSON object")
    unknown = sorted(set(request) - REQUEST_KEYS)
    if unknown:
        raise Refused("InvalidRequest", "unknown request keys: %s" % ", ".join(unknown)[:200])
    version = request.get("runtime_version")
    if version is not None and version != runtime_version:
        raise Refused("ConfigurationError",
                      "runtime version mismatch: the client speaks blockbox runtime %s, this app "
                      "runs %s: redeploy the app or upgrade the client"
                      % (str(version)[:32], runtime_version))
    code_hash = request.get("code_hash")
    if not isinstance(code_hash, str) or not _MD5.match(code_hash.lower()):
        raise Refused("InvalidRequest", "code_hash must be 32 hex digits")
    request["code_hash"] = code_hash.lower()
    for key in ("run_function_name", "init_function_name"):
        name = request.get(key)
        if name is not None and (not isinstance(name, str) or not _IDENT.match(name)):
            raise Refused("InvalidRequest", "%s must be a Python identifier" % key)
    _check_text(request, "code_str", MAX_CODE_BYTES)
    _check_text(request, "init_function_code", MAX_CODE_BYTES)
    _check_text(request, "inputs_json", MAX_REQUEST_BYTES)
    imports = request.get("imports")
    if imports is not None:
        if (type(imports) is not list or len(imports) > MAX_IMPORTS
                or not all(isinstance(i, str) and "\n" not in i and "\x00" not in i for i in imports)):
            raise Refused("InvalidRequest", "imports must be a list of single lines")
    context = request.get("workflow_context")
    if context is not None and type(context) is not dict:
        raise Refused("InvalidRequest", "workflow_context must be an object")
    if request.get("ndarray_form") not in (None, "value", "data"):
        raise Refused("InvalidRequest", "ndarray_form must be \"value\" or \"data\"")
    if request.get("code_str") is not None:
        if block_md5(request["code_str"], imports) != request["code_hash"]:
            raise Refused("InvalidRequest", "code_hash does not match the code")
    elif request.get("init_function_code") is not None:
        raise Refused("InvalidRequest", "init_function_code needs the code_str it belongs to")
    init_hash = request.get("init_code_hash")
    if init_hash is not None and (not isinstance(init_hash, str) or not _MD5.match(init_hash)):
        raise Refused("InvalidRequest", "init_code_hash must be 32 lowercase hex digits")
    return request


class CodeCache:
    """Verified code by (workspace, block md5, init digest): an LRU in this container's
    memory in front of one store per workspace (a modal.Dict named by modal_name). Every
    entry, from memory or a store, is re-hashed against its key before use."""

    def __init__(self, store_for):
        self.store_for = store_for           # workspace -> object with async get/put
        self.local = collections.OrderedDict()
        self.local_bytes = 0

    @staticmethod
    def _verified(key, blob):
        try:
            fields = json.loads(blob)
        except (ValueError, TypeError, RecursionError):
            return None
        if type(fields) is not dict or set(fields) - set(CODE_KEYS):
            return None
        code, imports = fields.get("code_str"), fields.get("imports") or []
        if (not isinstance(code, str) or type(imports) is not list
                or not all(isinstance(i, str) for i in imports)):
            return None
        init_code, init_name = fields.get("init_function_code"), fields.get("init_function_name")
        if init_code is not None and not isinstance(init_code, str):
            return None
        if init_name is not None and (not isinstance(init_name, str) or not _IDENT.match(init_name)):
            return None
        if cache_key(block_md5(code, imports), init_code, init_name) != key[1]:
            return None
        return fields

    def _remember(self, key, blob):
        old = self.local.pop(key, None)
        if old is not None:
            self.local_bytes -= len(old)
        self.local[key] = blob
        self.local_bytes += len(blob)
        while self.local and (len(self.local) > CACHE_ENTRIES or self.local_bytes > CACHE_BYTES):
            _, dropped = self.local.popitem(last=False)
            self.local_bytes -= len(dropped)

    async def put(self, workspace, key, fields):
        blob = encode(fields)
        self._remember((workspace, key), blob)
        store = self.store_for(workspace)
        if store is not None:
            await store.put(key, blob)

    async def get(self, workspace, key):
        full = (workspace, key)
        blob = self.local.get(full)
        if blob is not None:
            self.local.move_to_end(full)
        else:
            store = self.store_for(workspace)
            blob = await store.get(key) if store is not None else None
            if blob is None:
                return None
        fields = self._verified(full, blob)
        if fields is None:
            log("cache-entry-refused", workspace, key[6:38])
            self.local.pop(full, None)
            return None
        self._remember(full, blob)
        return fields


def check_reply(stdout, runtime_version):
    """A sandbox's stdout as a reply dict, checked like any reply (types, sizes, names),
    or None when it is not one. Unknown keys are dropped, not passed on."""
    if isinstance(stdout, str):
        stdout = stdout.encode("utf-8", "surrogatepass")
    if not isinstance(stdout, bytes) or not stdout or len(stdout) > MAX_REPLY_BYTES:
        return None
    try:
        reply = json.loads(stdout.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if type(reply) is not dict or type(reply.get("success")) is not bool:
        return None
    out = {}
    for key in REPLY_KEYS & set(reply):
        value = reply[key]
        if key in REPLY_STRINGS and value is not None and not isinstance(value, str):
            return None
        if key == "line_number" and value is not None and (
                type(value) is not int or not 0 <= value < 1 << 31):
            return None
        if key in ("denied_syscalls", "debug_traces") and type(value) is not list:
            return None
        out[key] = value
    if out["success"]:
        if not isinstance(out.get("result"), str):
            return None
    elif not isinstance(out.get("error"), str) or not _ERROR_TYPE.match(out.get("error_type") or ""):
        return None
    if out.get("runtime_version") not in (None, runtime_version):
        return None
    return out


def bare_error(reply):
    """Roboflow's protocol: `error` is the bare str(e). The runtime formats block errors
    as "Error in line N, in F: T: msg" (what local mode shows); that exact prefix, built
    from the reply's own fields, is taken off again. Clients rebuild it."""
    line, function, kind = reply.get("line_number"), reply.get("function_name"), reply.get("error_type")
    text = reply.get("error")
    if not line or not function or not kind or not isinstance(text, str):
        return reply
    head = "Error in line %d, in %s: %s" % (line, function, kind)
    if text == head:
        reply["error"] = ""
    elif text.startswith(head + ": "):
        reply["error"] = text[len(head) + 2:]
    return reply


def outcome_reply(outcome, workspace, code_hash, runtime_version, memory_mb, timeout_s):
    """(reply dict, trusted?) for what the runner saw."""
    if outcome.failure is not None:
        return failure("BackendUnavailable", "the sandbox could not be started: %s"
                       % outcome.failure, runtime_version), True
    if outcome.timed_out:
        return failure("Timeout", "the block ran past its %g s timeout and was killed" % timeout_s,
                       runtime_version), True
    if outcome.oversize:
        return failure("OutputLimit", "the block's reply exceeded %d bytes and was refused"
                       % MAX_REPLY_BYTES, runtime_version), True
    reply = check_reply(outcome.stdout, runtime_version) if outcome.stdout else None
    if reply is not None:
        return bare_error(reply), False
    if outcome.exit_code in (137, -9):
        # Killed without our asking (we kill only at the deadline): the memory limit.
        return failure("MemoryLimit", "the block exceeded its memory limit (%d MiB) and was killed"
                       % memory_mb, runtime_version), True
    if outcome.stdout:
        log("bad-reply", workspace, code_hash, exit=outcome.exit_code)
        return failure("InvalidResponse", "the sandbox's reply is not a valid response envelope",
                       runtime_version), True
    return failure("SandboxCrash", "the sandbox exited (status %s) without a reply"
                   % outcome.exit_code, runtime_version), True


class Settings:
    def __init__(self, runtime_version, allow_anonymous=False, memory_mb=1024, timeout_s=20):
        self.runtime_version = runtime_version
        self.allow_anonymous = allow_anonymous
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s


async def handle(raw, content_encoding, workspace_param, cache, runner, settings):
    """The endpoint: bytes in, (status, bytes, headers) out. `runner(workspace, body)` is
    an async callable returning an Outcome; one fresh sandbox per call."""
    started = time.monotonic()
    code_hash = workspace = None
    version = settings.runtime_version
    try:
        workspace = check_workspace(workspace_param, settings.allow_anonymous)
        request = validate(decode_body(raw, content_encoding), version)
        code_hash = request["code_hash"]
        key = cache_key(code_hash, request.get("init_function_code"), request.get("init_function_name"))
        if request.get("code_str") is None and request.get("init_code_hash"):
            key = "block-%s-init-%s" % (code_hash, request["init_code_hash"])
        if request.get("code_str") is not None:
            await cache.put(workspace, key, {k: request[k] for k in CODE_KEYS if request.get(k) is not None})
        else:
            fields = await cache.get(workspace, key)
            if fields is None:
                log("unknown-hash", workspace, code_hash)
                return 200, encode(failure("UnknownCodeHash", "this app does not know code hash %s "
                                           "in this workspace: send the code" % code_hash,
                                           version)), {}
            request = {k: v for k, v in request.items() if v is not None and k != "init_code_hash"}
            request.update(fields)
        try:
            outcome = await runner(workspace, encode(request))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Modal's errors become envelope errors
            outcome = Outcome(failure=type(exc).__name__)
        reply, trusted = outcome_reply(outcome, workspace, code_hash, version, settings.memory_mb,
                                       settings.timeout_s)
        log("ran", workspace, code_hash, ms=int((time.monotonic() - started) * 1000),
            result=reply["error_type"] if not reply["success"] else "ok")
        return 200, encode(reply), ({TRUST_HEADER: reply["error_type"]} if trusted else {})
    except Refused as refused:
        log("refused", workspace, code_hash, error=refused.error_type)
        headers = {TRUST_HEADER: refused.error_type} if refused.trusted else {}
        return 200, encode(failure(refused.error_type, refused.message, version)), headers

