/* blockbox/text.h: the library's small text toolkit, public so that programs (the CLI,
 * the benchmark) and drivers write JSON as the core does instead of keeping copies. */
#ifndef BLOCKBOX_TEXT_H
#define BLOCKBOX_TEXT_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a growable byte buffer that remembers allocation failure ------------------------
 * Callers append freely and check `failed` once. Zero-initialise to start. */
typedef struct bb_buf {
    char *data;   /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    int failed;   /* an allocation failed: contents are incomplete */
} bb_buf;

int bb_buf_reserve(bb_buf *b, size_t extra);
int bb_buf_append(bb_buf *b, const void *data, size_t len);
int bb_buf_puts(bb_buf *b, const char *s);
int bb_buf_putc(bb_buf *b, char c);
int bb_buf_printf(bb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int bb_buf_vprintf(bb_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string literal (quotes included); invalid UTF-8 is escaped as \ufffd,
 * C0 and C1 controls and DEL as \u00XX (nothing that can drive a terminal is left raw). */
int bb_buf_json_string(bb_buf *b, const char *s, size_t len);
/* Hands the storage to the caller (NULL if failed) and resets the buffer. */
char *bb_buf_steal(bb_buf *b, size_t *len);
void bb_buf_free(bb_buf *b);

/* ---- JSON text ------------------------------------------------------------------------
 * Spans of a JSON text the library has checked (results' outputs, envelopes): never read
 * past n, but no validation either. */

/* s[i] is '"': the index after the closing quote (n if there is none). */
size_t bb_json_skip_string(const char *s, size_t i, size_t n);
/* The index after the value that starts at s[i] (a scalar ends at , ] } or white space). */
size_t bb_json_skip_value(const char *s, size_t i, size_t n);

/* Appends a workflow_image typed value (DESIGN §3) for raw image file bytes: base64 of
 * the bytes, which the library never decodes into pixels. -1 if out failed. */
int bb_json_image_value(const unsigned char *bytes, size_t len, bb_buf *out);

/* ---- base64 (RFC 4648 standard alphabet, '=' padding) --------------------------------
 * encode appends to out; decode accepts only the canonical spelling (length a multiple
 * of 4, no whitespace, zero unused bits) and mallocs *out. Both return 0 or -1. */
int bb_base64_encode(const unsigned char *in, size_t len, bb_buf *out);
int bb_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif
