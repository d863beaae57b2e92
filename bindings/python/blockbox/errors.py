# errors.py: the exception hierarchy of the binding, one class per DESIGN §3 error_type,
# all under blockbox.Error; BlockError is the block's own exception.


class Error(Exception):
    """Any failure reported by blockbox. Attributes are those of the C bb_error plus the
    run's captured streams (empty when the failure happened before a run)."""

    def __init__(self, error_type, message, line_number=None, function_name=None, traceback=None,
                 stdout="", stderr="", debug_traces=None, denied_syscalls=(), exit_code=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.line_number = line_number
        self.function_name = function_name
        self.traceback = traceback
        self.stdout = stdout
        self.stderr = stderr
        self.debug_traces = debug_traces if debug_traces is not None else []
        self.denied_syscalls = list(denied_syscalls)
        self.exit_code = exit_code

    def __str__(self):
        return self.message


class BlockError(Error):
    """The block raised: error_type is its exception class, line_number is in the user's code."""


class SandboxError(Error):
    """A limit or a violation of the sandbox (CLI exit status 3)."""


class Timeout(SandboxError, TimeoutError):
    pass


class MemoryLimit(SandboxError):
    pass


class OutputLimit(SandboxError):
    pass


class SandboxViolation(SandboxError):
    """A denied system call; denied_syscalls names it."""


class SandboxCrash(SandboxError):
    pass


class InvalidRequest(Error, ValueError):
    pass


class InvalidResponse(Error):
    pass


class UnknownCodeHash(Error):
    pass


class BackendUnavailable(Error):
    pass


class AuthenticationFailed(Error):
    pass


class ConfigurationError(Error):
    pass


class ExecutionDisabled(Error):
    pass


class InternalError(Error):
    pass


# bb_error_kind order of include/blockbox.h (BB_OK = 0 is not an error).
BY_KIND = (None, BlockError, Timeout, MemoryLimit, OutputLimit, SandboxViolation, SandboxCrash,
           InvalidRequest, InvalidResponse, UnknownCodeHash, BackendUnavailable,
           AuthenticationFailed, ConfigurationError, ExecutionDisabled, InternalError)


def class_for_kind(kind):
    if 0 < kind < len(BY_KIND):
        return BY_KIND[kind]
    return InternalError
