/* wire_limits.h: the serializer's limits: their defaults, the bound of a whole response
 * under them, and the one place configuration is turned into limits. */
#ifndef BB_WIRE_LIMITS_H
#define BB_WIRE_LIMITS_H

#include <stddef.h>

#include "blockbox.h"

typedef struct bb_limits {
    size_t max_input_bytes;    /* inputs JSON text (default 64 MiB) */
    size_t max_code_bytes;     /* each code string (default 1 MiB) */
    size_t max_result_bytes;   /* the result string of a response (default 64 MiB) */
    size_t max_stream_bytes;   /* stdout, stderr each (default 1 MiB) */
    int max_depth;             /* JSON nesting of inputs and results (default 64) */
    size_t max_values;         /* JSON values in inputs, a result, a reply (default 2^20) */
    long long deadline_ms;     /* reading a reply stops here (bb_json_now_ms clock); 0 none */
    /* The buffers the checked text may name ("buffer": i, frames.h); NULL: none, and a
     * value naming one is refused. Each must be named exactly once. */
    struct bb_frames *buffers;
} bb_limits;

#define BB_DEFAULT_MAX_VALUES ((size_t)1 << 20)

/* Caps on failure details: long ones are cut (with a marker), never refused. */
#define BB_ERROR_TEXT_MAX ((size_t)64 * 1024)
#define BB_TRACEBACK_MAX ((size_t)256 * 1024)
#define BB_FUNCTION_NAME_MAX ((size_t)1024)
#define BB_ERROR_TYPE_MAX 128
#define BB_SYSCALL_NAME_MAX 32
#define BB_RUNTIME_VERSION_MAX 64
/* Room in a reply for its keys and small fields (booleans, line number, version,
 * denied syscall names) besides the result, streams and error texts. */
#define BB_ENVELOPE_MARGIN ((size_t)64 * 1024)

/* Caps of a response's debug_traces (Roboflow's: workflow_debug.py), in bytes of each
 * entry's text as sent; the run's total may exceed 1 MiB by the one marker entry. */
#define BB_TRACE_MAX_ENTRIES 1000
#define BB_TRACE_MAX_ENTRY_BYTES 16384
#define BB_TRACE_MAX_BYTES ((1 << 20) + BB_TRACE_MAX_ENTRY_BYTES)

void bb_limits_default(bb_limits *limits);
/* Upper bound of a whole response envelope under these limits (2 x result + 6 x
 * (streams + error fields) + a 64 KiB margin), for readers that must cap before reading. */
size_t bb_limits_max_response(const bb_limits *limits);
/* The defaults with the configured sizes (BLOCKBOX_MAX_*): the executor's and every
 * driver's limits come from here. */
void bb_limits_from_config(const bb_config *cfg, bb_limits *limits);

#endif
