/* error.c: error values (kind, type name, message, line) and the mapping from
 * kinds to DESIGN §3 names and CLI exit statuses. */
#include "error.h"

#include <blockbox/driver.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[] = {
    [BB_OK] = "OK",
    [BB_ERR_BLOCK] = "BlockError",
    [BB_ERR_TIMEOUT] = "Timeout",
    [BB_ERR_MEMORY_LIMIT] = "MemoryLimit",
    [BB_ERR_OUTPUT_LIMIT] = "OutputLimit",
    [BB_ERR_SANDBOX_VIOLATION] = "SandboxViolation",
    [BB_ERR_SANDBOX_CRASH] = "SandboxCrash",
    [BB_ERR_INVALID_REQUEST] = "InvalidRequest",
    [BB_ERR_INVALID_RESPONSE] = "InvalidResponse",
    [BB_ERR_UNKNOWN_CODE_HASH] = "UnknownCodeHash",
    [BB_ERR_BACKEND_UNAVAILABLE] = "BackendUnavailable",
    [BB_ERR_AUTHENTICATION_FAILED] = "AuthenticationFailed",
    [BB_ERR_CONFIGURATION] = "ConfigurationError",
    [BB_ERR_EXECUTION_DISABLED] = "ExecutionDisabled",
    [BB_ERR_INTERNAL] = "InternalError",
};

/* Returned when even an error cannot be allocated; bb_error_free ignores it. */
static bb_error oom_error = {BB_ERR_INTERNAL, "InternalError", "out of memory", 0, NULL, NULL};

bb_error *bb_error_oom(void) { return &oom_error; }

const char *bb_error_kind_name(bb_error_kind kind)
{
    if ((unsigned)kind < sizeof kind_names / sizeof kind_names[0])
        return kind_names[kind];
    return "InternalError";
}

bb_error_kind bb_error_kind_from_name(const char *name)
{
    if (!name)
        return BB_ERR_BLOCK;
    for (unsigned k = BB_ERR_TIMEOUT; k < sizeof kind_names / sizeof kind_names[0]; k++)
        if (strcmp(kind_names[k], name) == 0)
            return (bb_error_kind)k;
    return BB_ERR_BLOCK;
}

/* Whether a name is one of blockbox's own error types (DESIGN §3, plus BlockError and
 * InternalError). */
static int reserved_name(const char *name)
{
    for (unsigned k = BB_ERR_BLOCK; k < sizeof kind_names / sizeof kind_names[0]; k++)
        if (strcmp(kind_names[k], name) == 0)
            return 1;
    return 0;
}

static bb_error *error_vnew(bb_error_kind kind, const char *fmt, va_list ap)
{
    bb_error *e = calloc(1, sizeof *e);
    if (!e)
        return bb_error_oom();
    e->kind = kind;
    e->type_name = strdup(bb_error_kind_name(kind));
    if (vasprintf(&e->message, fmt, ap) < 0)
        e->message = NULL;
    if (!e->type_name || !e->message) {
        bb_error_free(e);
        return bb_error_oom();
    }
    return e;
}

bb_error *bb_error_new(bb_error_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bb_error *e = error_vnew(kind, fmt, ap);
    va_end(ap);
    return e;
}

int bb_fail(bb_error **err, bb_error_kind kind, const char *fmt, ...)
{
    if (err && !*err) {
        va_list ap;
        va_start(ap, fmt);
        *err = error_vnew(kind, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

bb_error *bb_error_block(const char *type_name, const char *message, int line,
                         const char *function, const char *traceback)
{
    bb_error *e = calloc(1, sizeof *e);
    if (!e)
        return bb_error_oom();
    /* A response comes from the sandbox side, where block code can write anything:
     * whatever it calls its error, the error is the block's own (exit 1). A name that
     * spells one of blockbox's own types is shown as "block.<name>", so a block's
     * `class ConfigurationError(Exception)` never reads as a host fault. Timeout,
     * MemoryLimit, OutputLimit, SandboxCrash and SandboxViolation are reported only
     * from what the trusted side saw itself (deadline, OOM, cap, signal, denial). */
    e->kind = BB_ERR_BLOCK;
    if (!type_name || !*type_name)
        type_name = "Exception";
    if (reserved_name(type_name) && asprintf(&e->type_name, "block.%s", type_name) < 0)
        e->type_name = NULL;
    else if (!reserved_name(type_name))
        e->type_name = strdup(type_name);
    e->message = strdup(message ? message : "");
    e->line = line;
    e->function = dup_or_null(function);
    e->traceback = dup_or_null(traceback);
    if (!e->type_name || !e->message || (function && !e->function) || (traceback && !e->traceback)) {
        bb_error_free(e);
        return bb_error_oom();
    }
    return e;
}

void bb_error_free(bb_error *err)
{
    if (!err || err == &oom_error)
        return;
    free(err->type_name);
    free(err->message);
    free(err->function);
    free(err->traceback);
    free(err);
}

bb_error_kind bb_error_get_kind(const bb_error *err) { return err ? err->kind : BB_OK; }
const char *bb_error_type_name(const bb_error *err) { return err ? err->type_name : NULL; }
const char *bb_error_message(const bb_error *err) { return err ? err->message : NULL; }
int bb_error_line(const bb_error *err) { return err ? err->line : 0; }
const char *bb_error_function(const bb_error *err) { return err ? err->function : NULL; }
const char *bb_error_traceback(const bb_error *err) { return err ? err->traceback : NULL; }

int bb_error_exit_code(const bb_error *err)
{
    if (!err)
        return 0;
    switch (err->kind) {
    case BB_OK:
        return 0;
    case BB_ERR_BLOCK:
        return 1;
    case BB_ERR_INVALID_REQUEST:
        return 2;
    case BB_ERR_TIMEOUT:
    case BB_ERR_MEMORY_LIMIT:
    case BB_ERR_OUTPUT_LIMIT:
    case BB_ERR_SANDBOX_VIOLATION:
    case BB_ERR_SANDBOX_CRASH:
        return 3;
    default:
        return 4;
    }
}
