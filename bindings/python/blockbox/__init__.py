# blockbox: run untrusted Roboflow custom Python blocks in blockbox's sandbox from Python
# (a ctypes binding over libblockbox; see bindings/python/README.md).
"""Run Roboflow custom Python blocks in blockbox's sandbox.

    import blockbox, numpy as np
    with blockbox.Executor.from_env() as ex:
        block = ex.load("def run(self, a):\\n    return {'b': a * 2}\\n")
        print(block.run(a=np.arange(3)))     # {'b': array([0, 2, 4])}
"""
from .errors import (AuthenticationFailed, BackendUnavailable, BlockError, ConfigurationError, Error,
                     ExecutionDisabled, InternalError, InvalidRequest, InvalidResponse, MemoryLimit,
                     OutputLimit, SandboxCrash, SandboxError, SandboxViolation, Timeout,
                     UnknownCodeHash)
from .executor import Block, Executor, Result
from .values import Batch, Detections, Image, Opaque, VideoMetadata

__version__ = "0.1.0"


def library_version():
    """Version of the loaded libblockbox."""
    from . import _lib
    return _lib.library().bb_version().decode()


__all__ = ["Executor", "Block", "Result", "Image", "Detections", "Batch", "VideoMetadata", "Opaque",
           "Error", "BlockError", "SandboxError", "Timeout", "MemoryLimit", "OutputLimit",
           "SandboxViolation", "SandboxCrash", "InvalidRequest", "InvalidResponse", "UnknownCodeHash",
           "BackendUnavailable", "AuthenticationFailed", "ConfigurationError", "ExecutionDisabled",
           "InternalError", "library_version"]
