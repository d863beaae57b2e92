"""runtime.py: the request loop: Runtime checks a request envelope (DESIGN §3),
loads the block (compile, init once) unless it is the loaded one, runs it on the
decoded inputs under capture, and answers with one response; it never raises."""

import json
import sys
import traceback


class _Call:
    """What one request collects: captured streams and denied system calls."""

    __slots__ = ("stdout", "stderr", "denied", "traces", "step", "max_depth")

    def __init__(self, cap, fds=(None, None)):
        self.stdout = _CappedWriter(cap, "<stdout>", fds[0])
        self.stderr = _CappedWriter(cap, "<stderr>", fds[1])
        self.denied = []
        self.traces = None   # the _DebugTraces user code of this request wrote to
        self.step = None     # the step name trace entries carry
        self.max_depth = None   # the caller's nesting limit of outputs (request "limits")

    def trace_entries(self):
        if self.traces is None:
            return []
        try:
            return _normalize(self.traces._snapshot())
        except Exception:  # noqa: BLE001 - entries the block tampered with
            return []


def _exception_text(exc):
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001
        message = "<unprintable message>"
    name = type(exc).__name__
    return "%s: %s" % (name, message) if message else name


def _limit(limits, key, default):
    value = (limits or {}).get(key, default)
    if value is None:
        return default
    if type(value) is not int or value <= 0:
        raise ValueError("limit %s must be a positive int" % key)
    return value


def _request_limits(request):
    """The caller's limits (extension "limits": {"max_depth": n}); None when absent."""
    limits = request.get("limits")
    if limits is None:
        return None
    if type(limits) is not dict or set(limits) - {"max_depth"}:
        raise _RequestError("InvalidRequest", "limits must be an object {max_depth}")
    depth = limits.get("max_depth")
    if depth is not None and (type(depth) is not int or not 1 <= depth <= 100000):
        raise _RequestError("InvalidRequest", "limits.max_depth must be an int in 1..100000")
    return depth


def _clean_text(text):
    """The text, with lone surrogates replaced so it is valid UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


class Runtime:
    """Serves one block instance: load (compile + init once) and runs."""

    def __init__(self, limits=None):
        self._max_stream = _limit(limits, "max_stream_bytes", DEFAULT_MAX_STREAM_BYTES)
        # the caller enforces it (an OutputLimit must be seen by the trusted side); read
        # here so a bad value is still refused
        self._max_result = _limit(limits, "max_result_bytes", DEFAULT_MAX_RESULT_BYTES)
        self._block = None
        self._globals = {}
        # `import requests` in a block finds the network-less stand-in.
        sys.modules["requests"] = requests
        sys.modules.update(requests._submodules)
        # Files the local worker put on fds 1 and 2 for C-level output (fileno()).
        self._fds = tuple(_stream_fd(limits, k) for k in ("stdout_fd", "stderr_fd"))
        # The local worker's shared memory for buffers (frames.py), when it has one.
        arenas = [limits.get(k) if isinstance(limits, dict) else None
                  for k in ("frames_in", "frames_out")]
        self._frames = _FrameCall(*arenas) if all(isinstance(a, memoryview) for a in arenas) \
            else None

    # -- public ---------------------------------------------------------------------
    def handle_bytes(self, frame):
        global _FRAMES
        try:
            return self._frames_finish(self._handle_bytes(frame))
        finally:
            _FRAMES = None

    def _frames_finish(self, body):
        return body if self._frames is None else self._frames.finish(body)

    def _handle_bytes(self, frame):
        global _FRAMES
        try:
            if isinstance(frame, (bytearray, memoryview)):
                frame = bytes(frame)
            if isinstance(frame, bytes) and self._frames is not None:
                frame = self._frames.begin(frame)  # a buffer table first (frames.py)
                _FRAMES = self._frames
            if isinstance(frame, bytes):
                try:
                    frame = frame.decode("utf-8")
                except UnicodeDecodeError:
                    raise _RequestError("InvalidRequest", "a request must be UTF-8 JSON") \
                        from None
            if not isinstance(frame, str):
                raise _RequestError("InvalidRequest", "a request must be bytes of JSON")
            try:
                request = json.loads(frame)
            except RecursionError:
                raise _RequestError("InvalidRequest", "the request is nested too deeply") \
                    from None
            except ValueError as exc:
                raise _RequestError("InvalidRequest", "the request is not JSON: %s" % exc) \
                    from None
            response = self.handle(request)
        except _RequestError as exc:
            response = self._failure(exc.error_type, exc.message)
        except BaseException as exc:  # noqa: BLE001 - never raise
            response = self._failure(type(exc).__name__, "blockbox runtime: %s"
                                     % _exception_text(exc))
        try:
            text = _RESPONSE_ENCODER.encode(response)
            # `result` is ASCII JSON already checked by _encode_json: only the other
            # fields (short) can hold a surrogate escape.
            if any(k != "result" and not _plain_ascii(v) for k, v in response.items()):
                text = _no_lone_surrogates(text)
            return text.encode("utf-8", "replace")
        except BaseException as exc:  # noqa: BLE001
            fallback = self._failure(type(exc).__name__,
                                     "blockbox runtime: the response could not be encoded: %s"
                                     % _exception_text(exc))
            return _RESPONSE_ENCODER.encode(fallback).encode("utf-8", "replace")

    def handle(self, request):
        call = None
        try:
            call = _Call(self._max_stream, self._fds)
            return self._handle(request, call)
        except _RequestError as exc:
            return self._failure(exc.error_type, exc.message, call)
        except _BlockFailure as exc:
            return self._block_failure(exc.fields, call)
        except MemoryError:
            return self._failure("MemoryError", "the runtime ran out of memory", call)
        except BaseException as exc:  # noqa: BLE001 - never raise
            return self._failure(type(exc).__name__, "blockbox runtime: %s"
                                 % _exception_text(exc), call)

    # -- responses ------------------------------------------------------------------
    @staticmethod
    def _streams(call):
        if call is None:
            return "", ""
        return _clean_text(call.stdout.getvalue()), _clean_text(call.stderr.getvalue())

    def _failure(self, error_type, message, call=None):
        stdout, stderr = self._streams(call)
        return {"success": False, "error_type": error_type, "error": _clean_text(message),
                "line_number": None, "function_name": None, "traceback": None,
                "stdout": stdout, "stderr": stderr, "runtime_version": RUNTIME_VERSION,
                "denied_syscalls": list(call.denied) if call is not None else [],
                "debug_traces": call.trace_entries() if call is not None else []}

    def _block_failure(self, fields, call):
        stdout, stderr = self._streams(call)
        response = {"success": False, "error_type": fields["error_type"],
                    "error": _clean_text(fields["error"]),
                    "line_number": fields.get("line_number"),
                    "function_name": fields.get("function_name"),
                    "traceback": _clean_text(fields.get("traceback") or ""),
                    "stdout": stdout, "stderr": stderr, "runtime_version": RUNTIME_VERSION,
                    "denied_syscalls": list(call.denied), "debug_traces": call.trace_entries()}
        return response

    def _success(self, result_text, call):
        stdout, stderr = self._streams(call)
        return {"success": True, "result": _clean_text(result_text), "stdout": stdout,
                "stderr": stderr, "runtime_version": RUNTIME_VERSION,
                "denied_syscalls": list(call.denied), "debug_traces": call.trace_entries()}

    # -- request handling -----------------------------------------------------------
    def _handle(self, request, call):
        if type(request) is not dict:
            raise _RequestError("InvalidRequest", "a request must be a JSON object")
        version = request.get("runtime_version")
        if version is not None and version != RUNTIME_VERSION:
            raise _RequestError("ConfigurationError",
                                "runtime version mismatch: the caller speaks runtime version %s, "
                                "this runtime is version %s" % (str(version)[:32], RUNTIME_VERSION))
        code_hash = request.get("code_hash")
        if not isinstance(code_hash, str) or not code_hash:
            raise _RequestError("InvalidRequest", "code_hash must be a non-empty string")
        run_name = _identifier(request.get("run_function_name"), "run", "run_function_name")
        context = request.get("workflow_context")
        if context is None:
            context = {}
        elif type(context) is not dict:
            raise _RequestError("InvalidRequest", "workflow_context must be an object")
        call.step = _step_name(context)

        call.max_depth = _request_limits(request)
        code = request.get("code_str")
        if code is not None:
            self._ensure_loaded(request, code, code_hash, run_name, call)
        elif self._block is None or self._block.code_hash != code_hash.lower():
            raise _RequestError("UnknownCodeHash", "this runtime does not know code hash %s; "
                                "send the code" % code_hash[:64])
        block = self._block

        inputs_text = request.get("inputs_json")
        if inputs_text is None:
            return self._success("{}", call)
        inputs = _decode_inputs(inputs_text)
        block.self_obj._workflow_context = context
        function = self._find_function(block, run_name, "block code")
        result_text = self._run(block, function, run_name, inputs, call)
        return self._success(result_text, call)

    def _ensure_loaded(self, request, code, code_hash, run_name, call):
        imports = request.get("imports")
        if imports is None:
            imports = []
        if not isinstance(code, str):
            raise _RequestError("InvalidRequest", "code_str must be a string")
        if type(imports) is not list or not all(isinstance(line, str) for line in imports):
            raise _RequestError("InvalidRequest", "imports must be a list of strings")
        init_code = request.get("init_function_code")
        if init_code is not None and not isinstance(init_code, str):
            raise _RequestError("InvalidRequest", "init_function_code must be a string")
        init_name = _identifier(request.get("init_function_name"), "init", "init_function_name")
        try:
            digest = _md5((code + "\n" + "\n".join(imports)).encode("utf-8")).hexdigest()
        except UnicodeEncodeError:
            raise _RequestError("InvalidRequest", "the code is not valid UTF-8") from None
        if digest != code_hash.lower():
            raise _RequestError("InvalidRequest", "code_hash %s does not match the code (md5 %s)"
                                % (code_hash[:64], digest))
        key = (digest, code, tuple(imports), init_code, init_name)
        if self._block is not None and self._block.key == key:
            return
        self._block = None
        block = _Block(key, digest, self._globals)
        self._load(block, code, imports, init_code, init_name, run_name, call)
        self._block = block

    def _load(self, block, code, imports, init_code, init_name, run_name, call):
        namespace = block.module.__dict__
        sys.modules[_BLOCK_MODULE_NAME] = block.module
        pieces = [(_IMPORTS_FILE, "\n".join(imports)), (_RUN_FILE, code)]
        if init_code is not None:
            pieces.append((_INIT_FILE, init_code))
        compiled = []
        for filename, source in pieces:
            block.sources[filename] = source.splitlines()
            try:
                compiled.append(compile(source, filename, "exec", dont_inherit=True))
            except SyntaxError as exc:
                raise _BlockFailure(_syntax_error_fields(exc)) from None
            except (ValueError, TypeError) as exc:  # e.g. NUL bytes
                raise _BlockFailure({"error_type": type(exc).__name__,
                                     "error": "Error in %s: %s" % (filename, _exception_text(exc)),
                                     "function_name": "<module>", "traceback": ""}) from None
        init_function = None
        with _Capture(self, call, block, traced=False):
            for code_object in compiled:
                try:
                    exec(code_object, namespace)
                except BaseException as exc:  # noqa: BLE001 - the block's own error
                    raise _BlockFailure(self._error_fields(exc, block, None, "<module>")) \
                        from None
            # As Roboflow: init code sent (even "") must define the init function;
            # without init code, an init function the run code defines is called.
            if init_code is not None or init_name in namespace:
                init_function = self._find_function(
                    block, init_name, "init code" if init_code else "block code")
                try:
                    init_results = init_function()
                except BaseException as exc:  # noqa: BLE001
                    raise _BlockFailure(self._error_fields(exc, block, init_function, init_name)) \
                        from None
                block.self_obj._init_results = init_results  # any value, kept as returned
        self._find_function(block, run_name, "block code")

    def _find_function(self, block, name, where):
        function = block.module.__dict__.get(name)
        if function is None or not callable(function):
            defined = sorted(k for k, v in block.module.__dict__.items()
                             if callable(v) and getattr(v, "__module__", None) == _BLOCK_MODULE_NAME
                             and not k.startswith("_"))
            message = "no function '%s' in the %s" % (name, where)
            if defined:
                message += " (it defines: %s)" % ", ".join(defined[:10])
            raise _BlockFailure({"error_type": "NameError", "error": message,
                                 "function_name": name, "traceback": ""})
        return function

    def _run(self, block, function, run_name, inputs, call):
        with _Capture(self, call, block):
            try:
                if _wants_self(function):
                    result = function(block.self_obj, **inputs)
                else:
                    result = function(**inputs)
            except BaseException as exc:  # noqa: BLE001 - the block's own error
                raise _BlockFailure(self._error_fields(exc, block, function, run_name)) from None
            if not isinstance(result, dict) and not (
                    isinstance(result, list) and all(isinstance(r, dict) for r in result)):
                raise _BlockFailure(self._return_type_fields(
                    block, function, run_name, result, "a dict (or a list of dicts)"))
            # No size check here: an OutputLimit is the caller's to see (issue 8), so an
            # oversized result is sent and refused by the trusted side's cap; one too
            # large to encode is the block's MemoryError (or the worker's memory limit).
            try:
                text = _encode_json(result)
            except MemoryError:
                raise _BlockFailure({"error_type": "MemoryError", "error":
                                     "the outputs of %s are too large to encode" % run_name,
                                     "function_name": run_name, "traceback": ""}) from None
            except RecursionError:
                raise _BlockFailure({"error_type": "ValueError", "error":
                                     "the outputs of %s are nested too deeply (or circular)"
                                     % run_name, "function_name": run_name, "traceback": ""}) \
                    from None
            except Exception as exc:  # noqa: BLE001
                raise _BlockFailure({"error_type": type(exc).__name__, "error":
                                     "the outputs of %s could not be encoded: %s"
                                     % (run_name, _exception_text(exc)),
                                     "function_name": run_name, "traceback": ""}) from None
        if call.max_depth is not None:
            # The caller refuses deeper text; say so here, as the block's own error.
            depth = _json_depth_over(text, call.max_depth)
            if depth:
                raise _BlockFailure({"error_type": "ValueError", "error":
                                     "the outputs of %s are nested %d levels deep, over the "
                                     "limit of %d (BLOCKBOX_MAX_DEPTH)"
                                     % (run_name, depth, call.max_depth),
                                     "function_name": run_name, "traceback": ""})
        return text

    # -- error formatting -----------------------------------------------------------
    def _error_fields(self, exc, block, function, function_name):
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename in block.sources:
                lines = block.sources[code.co_filename]
                lineno = tb.tb_lineno
                text = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
                frames.append(traceback.FrameSummary(code.co_filename, lineno, code.co_name,
                                                     lookup_line=False, line=text))
            tb = tb.tb_next
        if frames:
            line_number, where = frames[-1].lineno, frames[-1].name
        else:
            code = getattr(function, "__code__", None)
            line_number = code.co_firstlineno if code is not None else None
            where = function_name
        text = _exception_text(exc)
        try:
            tail = "".join(traceback.format_exception_only(type(exc), exc))
        except Exception:  # noqa: BLE001
            tail = text + "\n"
        formatted = ""
        if frames:
            formatted = ("Traceback (most recent call last):\n"
                         + "".join(traceback.StackSummary.from_list(frames).format()))
        return {"error_type": type(exc).__name__,
                "error": "Error in line %s, in %s: %s" % (line_number, where, text),
                "line_number": line_number, "function_name": where,
                "traceback": formatted + tail, "raised": True, "exception_text": text}

    @staticmethod
    def _return_type_fields(block, function, name, value, wanted):
        code = getattr(function, "__code__", None)
        line_number = code.co_firstlineno if code is not None else None
        message = "TypeError: %s returned %s; it must return %s" % (
            name, type(value).__name__, wanted)
        return {"error_type": "TypeError",
                "error": "Error in line %s, in %s: %s" % (line_number, name, message),
                "line_number": line_number, "function_name": name, "traceback": message + "\n"}


def _step_name(context):
    """The step a trace entry names: workflow_context step_name, else the last part of
    step_selector ("$steps.name"), as Roboflow's engine names the running step."""
    name = context.get("step_name")
    if isinstance(name, str):
        return name
    selector = context.get("step_selector")
    if isinstance(selector, str):
        return selector.rsplit(".", 1)[-1]
    return None


def _identifier(value, default, what):
    if value is None or value == "":
        return default
    if not isinstance(value, str) or not value.isidentifier() or len(value) > 256:
        raise _RequestError("InvalidRequest", "%s must be a Python identifier" % what)
    return value


def execute_request(request, limits=None):
    """One request on a fresh Runtime (what the single-use Modal function calls)."""
    try:
        runtime = Runtime(limits)
    except Exception as exc:  # noqa: BLE001
        return {"success": False, "error_type": "ConfigurationError",
                "error": _exception_text(exc), "line_number": None, "function_name": None,
                "traceback": None, "stdout": "", "stderr": "",
                "runtime_version": RUNTIME_VERSION, "denied_syscalls": []}
    return runtime.handle(request)
