"""block.py: one loaded block instance: the preamble's names, the block's module
namespace with `debug_traces` and `globals`, the `self` it receives, and the error
of the block's own code (syntax errors, whether a function takes `self`)."""

import builtins
import json
import math
import os
import time
import traceback
import types

import cv2
import numpy as np


class _BlockSelf:
    """The `self` a block's run function receives."""

    def __init__(self):
        self._init_results = {}
        self._workflow_context = {}

    def get_workflow_context(self):
        return dict(self._workflow_context)   # a fresh dict per call, as in Roboflow


def _preamble_template():
    import typing
    names = {
        "__builtins__": builtins,
        "Any": typing.Any, "List": typing.List, "Dict": typing.Dict, "Set": typing.Set,
        "Optional": typing.Optional,
        "np": np, "math": math, "time": time, "json": json, "os": os, "cv2": cv2,
        "Batch": Batch, "WorkflowImageData": WorkflowImageData, "BlockResult": BlockResult,
        "sv": sv, "requests": requests,
    }
    if shapely is not None:
        names["shapely"] = shapely
    return names


_PREAMBLE = _preamble_template()


class _Block:
    """One loaded block instance: its module, sources, self and debug traces."""

    __slots__ = ("key", "code_hash", "module", "sources", "self_obj", "traces")

    def __init__(self, key, code_hash, shared_globals):
        self.key = key
        self.code_hash = code_hash
        self.module = types.ModuleType(_BLOCK_MODULE_NAME)
        self.module.__dict__.update(_PREAMBLE)
        self.traces = _DebugTraces()
        self.module.__dict__["debug_traces"] = self.traces
        # Roboflow's `globals`: a dict every block of the process shares. Here it is
        # the Runtime's (one worker process, one block instance; see README).
        self.module.__dict__["globals"] = shared_globals
        self.sources = {}
        self.self_obj = _BlockSelf()


class _BlockFailure(Exception):
    """The block's own error, already formatted as response fields."""

    def __init__(self, fields):
        Exception.__init__(self, fields.get("error"))
        self.fields = fields


def _wants_self(function):
    """As Roboflow's remote executor decides (DESIGN §2): a self only when the first
    parameter is named self (its validation call sends a self-less validate_syntax())."""
    code = getattr(function, "__code__", None)
    if type(function) is types.FunctionType and code is not None and code.co_argcount:
        return code.co_varnames[0] == "self"  # the fast path: inspect costs ~30 us a call
    import inspect
    try:
        params = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return True
    return bool(params) and params[0] == "self"


def _syntax_error_fields(exc):
    line_number = exc.lineno
    message = "%s: %s" % (type(exc).__name__, exc.msg)
    try:
        formatted = "".join(traceback.format_exception_only(type(exc), exc))
    except Exception:  # noqa: BLE001
        formatted = message + "\n"
    return {"error_type": type(exc).__name__,
            "error": "Error in line %s, in <module>: %s" % (line_number, message),
            "line_number": line_number, "function_name": "<module>", "traceback": formatted}
