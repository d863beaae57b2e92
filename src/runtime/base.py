"""blockbox runtime: runs Roboflow-style custom Python blocks inside the sandbox.

This file is generated: src/runtime/amalgamate.py assembles it from the modules of
src/runtime (their order is amalgamate.MODULES; src/runtime/README.md documents the
semantics). It is one self-contained module (stdlib + numpy + cv2): embedded into the
local worker (the zygote imports it and calls warm_up() before forking), shipped to
the Modal sandbox, and used by the test emulator, so all backends behave alike. It is
not a security boundary: the block can tamper with it; the C side validates all.

API
---
RUNTIME_VERSION            "1", equal to BLOCKBOX_RUNTIME_VERSION in blockbox.h.
warm_up()                  import and exercise numpy/cv2/codecs once; starts no thread.
fresh_entropy()            reseed numpy's and random's global generators (per worker).
Runtime(limits=None)       one loaded block instance; limits: max_stream_bytes (1 MiB),
                           max_result_bytes (64 MiB), stdout_fd/stderr_fd.
Runtime.handle(dict)       request -> response dict; never raises.
Runtime.handle_bytes(b)    JSON frame -> JSON frame (UTF-8); never raises.
execute_request(dict)      a fresh Runtime handles one request (single-use Modal calls).

base.py, the first module (its docstring is the runtime's): the process set-up before
numpy loads, numpy/cv2/shapely, the version and default limits, the names of the
user's code files, the error of a request (not the block's), strict base64.
"""

import os
import sys

if "numpy" not in sys.modules:  # keep BLAS single-threaded: the zygote must not own threads
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import binascii
import hashlib
import math

import numpy as np
import cv2

cv2.setNumThreads(0)

try:  # Roboflow's preamble imports shapely (Debian: python3-shapely)
    import shapely
    import shapely.geometry
except ImportError:  # then blocks see no `shapely`, as `import shapely` would fail
    shapely = None

RUNTIME_VERSION = "1"
DEFAULT_MAX_STREAM_BYTES = 1 << 20
DEFAULT_MAX_RESULT_BYTES = 64 << 20

_RUN_FILE = "<run_code>"
_INIT_FILE = "<init_code>"
_IMPORTS_FILE = "<imports>"
_USER_FILES = (_RUN_FILE, _INIT_FILE, _IMPORTS_FILE)
_BLOCK_MODULE_NAME = "blockbox_block"

_b64encode = binascii.b2a_base64
_md5 = hashlib.md5
_isfinite = math.isfinite


class _RequestError(Exception):
    """A problem that is not the block's own: carries a DESIGN §3 error_type."""

    def __init__(self, error_type, message):
        Exception.__init__(self, message)
        self.error_type = error_type
        self.message = message


def _b64decode(text, what):
    """Strict base64 (standard alphabet, padded, no whitespace), as the C side checks."""
    if not isinstance(text, str):
        raise ValueError("%s must be a base64 string" % what)
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("%s is not valid base64 (%s)" % (what, exc)) from None


def _b64text(raw):
    return _b64encode(raw, newline=False).decode("ascii")
