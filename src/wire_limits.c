/* wire_limits.c: the serializer's limits: their defaults, the bound of a whole response
 * under them, and the one place configuration is turned into limits. */
#include "wire_limits.h"

#include <stdint.h>

#include "config.h"

void bb_limits_default(bb_limits *limits)
{
    limits->max_input_bytes = (size_t)64 << 20;
    limits->max_code_bytes = (size_t)1 << 20;
    limits->max_result_bytes = (size_t)64 << 20;
    limits->max_stream_bytes = (size_t)1 << 20;
    limits->max_depth = 64;
    limits->max_values = BB_DEFAULT_MAX_VALUES;
    limits->deadline_ms = 0;
    limits->buffers = NULL;
}

static size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }
static size_t sat_mul(size_t a, size_t b) { return b && a > SIZE_MAX / b ? SIZE_MAX : a * b; }

/*
 * The result travels as a JSON string inside the envelope, so its quotes and
 * backslashes are escaped: at most 2 bytes per byte. debug_traces count towards the
 * result's limit and travel as plain JSON. Streams and error texts may hold control
 * or non-ASCII characters, which an ASCII encoder writes as \u00XX (6 bytes for 1) or
 * a surrogate pair (12 for 4): at most 6 bytes per byte. Streams may arrive uncut
 * (this side cuts them), but only up to this bound. The rest of the envelope (keys,
 * booleans, line number, version, denied syscall names) fits BB_ENVELOPE_MARGIN.
 */
size_t bb_limits_max_response(const bb_limits *limits)
{
    size_t total = sat_mul(limits->max_result_bytes, 2);
    size_t texts = sat_add(sat_mul(limits->max_stream_bytes, 2), BB_ERROR_TEXT_MAX + BB_TRACEBACK_MAX);
    total = sat_add(total, sat_mul(texts, 6));
    total = sat_add(total, BB_TRACE_MAX_BYTES + 2 * (BB_TRACE_MAX_ENTRIES + 1)); /* + commas */
    return sat_add(total, BB_ENVELOPE_MARGIN);
}

void bb_limits_from_config(const bb_config *cfg, bb_limits *limits)
{
    bb_limits_default(limits);
    limits->max_input_bytes = (size_t)bb_setting_long(cfg, "max_input_bytes");
    limits->max_result_bytes = (size_t)bb_setting_long(cfg, "max_output_bytes");
    limits->max_stream_bytes = (size_t)bb_setting_long(cfg, "max_stream_bytes");
    limits->max_depth = (int)bb_setting_long(cfg, "max_depth");
    limits->max_values = (size_t)bb_setting_long(cfg, "max_json_values");
}

size_t bb_driver_max_response(const bb_config *cfg)
{
    bb_limits limits;
    bb_limits_from_config(cfg, &limits);
    return bb_limits_max_response(&limits);
}
