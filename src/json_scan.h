/* json_scan.h: the strict JSON reader of the serializer. One non-recursive pass that
 * checks RFC 8259 text under limits (bytes, depth, values, deadline) and can write it back. */
#ifndef BB_JSON_SCAN_H
#define BB_JSON_SCAN_H

#include <stddef.h>

#include "blockbox.h"
#include "buf.h"

/*
 * What a text must satisfy. Beyond RFC 8259 (strict numbers: no leading zeros, no
 * bare '.', no '+'; only space, tab, CR and LF between tokens; valid UTF-8; no raw
 * control characters in strings; valid escapes) it refuses what would make the C view
 * of a value differ from Python's: numbers whose magnitude overflows a double (1e400:
 * Python reads inf, which JSON cannot say back), \u0000 (C strings end there) unless
 * nul_to_fffd, and unpaired surrogate escapes.
 */
typedef struct bb_json_rules {
    int max_depth;            /* containers nested at most this deep (the outermost is 1) */
    size_t max_values;        /* values counted into *values beyond this are refused */
    bb_error_kind kind;       /* kind of a malformed-text error */
    bb_error_kind limit_kind; /* kind of a value-count error */
    const char *what;         /* names the text in messages ("inputs", "result", …) */
    int nul_to_fffd;          /* \u0000 becomes \ufffd (text from a backend) */
    long long deadline_ms;    /* bb_json_now_ms() clock; 0: none (Timeout past it) */
    size_t max_canon;         /* canonical output past this many bytes is refused
                               * (limit_kind) while it is written; 0: no cap */
} bb_json_rules;

/* Length (1..4) of the valid, shortest-form UTF-8 sequence at s, or 0 if the bytes
 * there are not one (overlong forms, surrogates and code points past U+10FFFF are
 * invalid). left is the number of bytes available at s (at least 1). */
size_t bb_wire_utf8_sequence(const unsigned char *s, size_t left);

/* Index of the first byte that is not part of valid UTF-8, or len if all is valid. */
size_t bb_wire_utf8_scan(const unsigned char *s, size_t len);

/* Milliseconds of CLOCK_MONOTONIC (the clock of deadline_ms). */
long long bb_json_now_ms(void);

/* Index of the first byte at or after pos that is not JSON whitespace. */
size_t bb_json_skip_space(const char *text, size_t len, size_t pos);

/*
 * Reads one value at text[*pos] (after optional whitespace) whose containers sit
 * below `depth` open ones; on success *pos is just past it. Every value read (scalars
 * and containers, not keys) adds one to *values. When canon is non-NULL the value is
 * appended to it in canonical form: no whitespace, tokens as validated, \u0000 as
 * \ufffd, and DEL and C1 control characters escaped. Returns 0 or -1 with *err.
 */
int bb_json_scan_value(const char *text, size_t len, size_t *pos, int depth,
                       const bb_json_rules *rules, size_t *values, bb_buf *canon, bb_error **err);

/* A whole text: one value with optional whitespace around it, nothing else. */
int bb_json_scan_text(const char *text, size_t len, const bb_json_rules *rules, size_t *values,
                      bb_buf *canon, bb_error **err);

/*
 * Decodes the JSON string whose opening quote is at text[*pos] (checked as above):
 * escapes resolved, \u0000 as U+FFFD when nul_to_fffd. At most `keep` decoded bytes
 * are appended to out (a cut never splits a UTF-8 sequence); *full gets the decoded
 * length of the whole string. On success *pos is just past the closing quote.
 */
int bb_json_decode_string(const char *text, size_t len, size_t *pos, size_t keep, bb_buf *out,
                          size_t *full, const bb_json_rules *rules, bb_error **err);

#endif
