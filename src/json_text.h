/* json_text.h: JSON as text, the serializer's bottom layer above the strict reader
 * (json_scan.h): precheck, cJSON on checked text, duplicate keys, printable echoes. */
#ifndef BB_JSON_TEXT_H
#define BB_JSON_TEXT_H

#include <stddef.h>

#include "blockbox.h"
#include "json_scan.h"

struct cJSON;

/* A strict, non-recursive check of JSON text before any parser sees it (json_scan.h):
 * size at most max_bytes, RFC 8259 grammar, valid UTF-8, no NUL, numbers that fit a
 * double, nesting at most max_depth, at most max_values values. `what` names the
 * text in the error ("inputs", "response", …). Returns 0, or -1 with *err of kind. */
int bb_wire_precheck(const char *text, size_t len, size_t max_bytes, int max_depth, size_t max_values,
                     bb_error_kind kind, const char *what, bb_error **err);

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

#endif
