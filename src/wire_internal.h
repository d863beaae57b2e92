/* wire_internal.h: helpers shared by the serializer's own files (wire.c and
 * wire_values.c); not an interface for anything else. */
#ifndef BB_WIRE_INTERNAL_H
#define BB_WIRE_INTERNAL_H

#include <stddef.h>

#include "wire.h"

/* Length (1..4) of the valid, shortest-form UTF-8 sequence at s, or 0 if the bytes
 * there are not one (overlong forms, surrogates and code points past U+10FFFF are
 * invalid). left is the number of bytes available at s (at least 1). */
size_t bb_wire_utf8_sequence(const unsigned char *s, size_t left);

/* Index of the first byte that is not part of valid UTF-8, or len if all is valid. */
size_t bb_wire_utf8_scan(const unsigned char *s, size_t len);

/* bb_wire_precheck, then cJSON with a check that nothing but whitespace follows the
 * value. *out is the parsed tree (caller deletes). */
int bb_wire_parse_json(const char *text, size_t len, size_t max_bytes, int max_depth,
                       bb_error_kind kind, const char *what, struct cJSON **out, bb_error **err);

/* Whether an object has a key twice (cJSON keeps both; Python keeps the last, so a
 * validator reading the first would check the wrong one). O(n log n). Returns 1 and
 * sets *key, 0, or -1 when out of memory. */
int bb_wire_duplicate_key(const struct cJSON *object, const char **key);

/* A short, printable-ASCII rendering of a hostile string for error messages: other
 * bytes become '?', and a long string is cut with "...". */
void bb_wire_printable(const char *s, char *out, size_t cap);

/* Caps of a response's debug_traces (Roboflow's: workflow_debug.py), in bytes of each
 * entry's text as sent; the run's total may exceed 1 MiB by the one marker entry. */
#define BB_TRACE_MAX_ENTRIES 1000
#define BB_TRACE_MAX_ENTRY_BYTES 16384
#define BB_TRACE_MAX_BYTES ((1 << 20) + BB_TRACE_MAX_ENTRY_BYTES)

/* The checked `debug_traces` of a parsed envelope (root) as JSON text, "[]" when absent
 * or null, each entry's text exactly as in body (wire_traces.c). *out is malloc'd. */
int bb_wire_take_traces(const char *body, size_t len, const struct cJSON *root, char **out,
                        bb_error **err);

#endif
