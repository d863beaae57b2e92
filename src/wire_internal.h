/* wire_internal.h: helpers shared by the serializer's own files (wire.c and
 * wire_values.c); not an interface for anything else. */
#ifndef BB_WIRE_INTERNAL_H
#define BB_WIRE_INTERNAL_H

#include <stddef.h>

#include "wire.h"

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

/* Length (1..4) of the valid, shortest-form UTF-8 sequence at s, or 0 if the bytes
 * there are not one (overlong forms, surrogates and code points past U+10FFFF are
 * invalid). left is the number of bytes available at s (at least 1). */
size_t bb_wire_utf8_sequence(const unsigned char *s, size_t left);

/* Index of the first byte that is not part of valid UTF-8, or len if all is valid. */
size_t bb_wire_utf8_scan(const unsigned char *s, size_t len);

/* bb_wire_precheck, then cJSON with a check that nothing but whitespace follows the
 * value. *out is the parsed tree (caller deletes). */
int bb_wire_parse_json(const char *text, size_t len, size_t max_bytes, int max_depth,
                       size_t max_values, bb_error_kind kind, const char *what, struct cJSON **out,
                       bb_error **err);

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

/* Checks a response's `debug_traces` list, given as the canonical text the strict
 * scanner wrote of it (json_scan.h), entry by entry and against the caps above; *out
 * is that text (malloc'd), or "[]" for NULL (absent or null). wire_traces.c. */
int bb_wire_check_traces(const char *list, size_t len, char **out, bb_error **err);

#endif
