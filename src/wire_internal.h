/* wire_internal.h: what the serializer's own files share beyond wire.h (the traces
 * check); not an interface for anything else. */
#ifndef BB_WIRE_INTERNAL_H
#define BB_WIRE_INTERNAL_H

#include <stddef.h>

#include "wire.h"

/* Checks a response's `debug_traces` list, given as the canonical text the strict
 * scanner wrote of it (json_scan.h), entry by entry and against the caps in wire_limits.h; *out
 * is that text (malloc'd), or "[]" for NULL (absent or null). wire_traces.c. */
int bb_wire_check_traces(const char *list, size_t len, char **out, bb_error **err);

#endif
