# _lib.py: finds libblockbox and declares the C API (include/blockbox.h) to ctypes.
# Order: $BLOCKBOX_LIBRARY (a path), the installed library, then a build tree beside the source.
import ctypes
import ctypes.util
import os
import threading

from .errors import ConfigurationError

_lock = threading.Lock()
_lib = None
_path = None

_STANDARD_DIRS = ("/usr/local/lib", "/usr/local/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64",
                  "/usr/lib")


def _candidates():
    env = os.environ.get("BLOCKBOX_LIBRARY")
    if env:
        # An explicit path is the only candidate: never fall back to another library.
        return [env], True
    found = []
    name = ctypes.util.find_library("blockbox")   # ldconfig's cache (an installed library)
    if name:
        found.append(name)
    for d in _STANDARD_DIRS:
        found.append(os.path.join(d, "libblockbox.so"))
    # The source tree: bindings/python/blockbox -> <repo>/build/lib (tests, development).
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    found.append(os.path.join(repo, "build", "lib", "libblockbox.so"))
    return found, False


def _accessors(prefix, **restypes):
    """The prototypes of bb_<prefix>_<name>(handle) for each name=restype: a call on one
    object (a void pointer) returning its field (None: a void function)."""
    return {"bb_%s_%s" % (prefix, name): (restype, [ctypes.c_void_p]) for name, restype in restypes.items()}


def _prototype(lib, sigs):
    """Gives each function of `lib` named in sigs its (restype, argtypes)."""
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes


def _declare(lib):
    c_char_p, c_void_p, c_int, c_size_t = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    pp = ctypes.POINTER(c_void_p)
    sigs = {
        **_accessors("error", get_kind=c_int, type_name=c_char_p, message=c_char_p,
                     line=c_int, function=c_char_p, traceback=c_char_p, exit_code=c_int, free=None),
        "bb_config_new": (c_void_p, []),
        "bb_config_from_env": (c_void_p, [pp]),
        "bb_config_set": (c_int, [c_void_p, c_char_p, c_char_p, pp]),
        "bb_config_get": (c_char_p, [c_void_p, c_char_p]),
        **_accessors("config", free=None),
        "bb_executor_new": (c_void_p, [c_void_p, pp]),
        **_accessors("executor", driver=c_char_p, describe=c_void_p, free=None),
        "bb_block_load": (c_void_p, [c_void_p, c_void_p, pp]),
        "bb_block_run": (c_void_p, [c_void_p, c_char_p, c_char_p]),
        **_accessors("block", code_hash=c_char_p, free=None),
        **_accessors("result", ok=c_int, outputs=c_char_p, stdout=c_char_p, stderr=c_char_p,
                     denied_syscalls=c_char_p, debug_traces=c_char_p, error=c_void_p, free=None),
        "bb_version": (c_char_p, []),
    }
    _prototype(lib, sigs)
    # The binary path (issue 12). A library without it still works: arrays then travel in
    # the JSON data form.
    optional = {
        "bb_block_run_buffers": (c_void_p, [c_void_p, c_char_p, c_char_p, ctypes.POINTER(Buffer), c_size_t]),
        **_accessors("result", buffer_count=c_size_t),
        "bb_result_buffer": (c_void_p, [c_void_p, c_size_t, ctypes.POINTER(c_size_t)]),
    }
    lib.has_buffers = all(hasattr(lib, name) for name in optional)
    if lib.has_buffers:
        _prototype(lib, optional)


class Buffer(ctypes.Structure):
    """struct bb_buffer of blockbox.h."""
    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class BlockSpec(ctypes.Structure):
    """struct bb_block_spec of blockbox.h."""
    _fields_ = [("run_code", ctypes.c_char_p), ("run_function_name", ctypes.c_char_p),
                ("init_code", ctypes.c_char_p), ("init_function_name", ctypes.c_char_p),
                ("imports", ctypes.POINTER(ctypes.c_char_p)), ("n_imports", ctypes.c_size_t),
                ("workspace_id", ctypes.c_char_p), ("max_inputs", ctypes.c_int)]


def library():
    """The loaded libblockbox (ctypes.CDLL: foreign calls release the GIL)."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        candidates, explicit = _candidates()
        errors = []
        for path in candidates:
            if os.path.isabs(path) and not os.path.exists(path):
                continue
            try:
                lib = ctypes.CDLL(path)
                _declare(lib)
            except (OSError, AttributeError) as exc:
                errors.append("%s: %s" % (path, exc))
                continue
            _lib, _path = lib, path
            return lib
        where = "BLOCKBOX_LIBRARY=%s" % candidates[0] if explicit else \
            "the installed library or a build tree (set BLOCKBOX_LIBRARY to its path)"
        raise ConfigurationError("ConfigurationError", "libblockbox not found via %s%s" %
                                 (where, (": " + "; ".join(errors)) if errors else ""))


def library_path():
    library()
    return _path


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None
free = _libc.free
