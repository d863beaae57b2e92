/* buf.h: a growable byte buffer that remembers allocation failure, so callers can
 * append freely and check once. */
#ifndef BB_BUF_H
#define BB_BUF_H

#include <stdarg.h>
#include <stddef.h>

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
/* Appends s as a JSON string literal (quotes included); invalid UTF-8 is escaped as \ufffd,
 * C0 and C1 controls and DEL as \u00XX (nothing that can drive a terminal is left raw). */
int bb_buf_json_string(bb_buf *b, const char *s, size_t len);
/* Hands the storage to the caller (NULL if failed) and resets the buffer. */
char *bb_buf_steal(bb_buf *b, size_t *len);
void bb_buf_free(bb_buf *b);

#endif
