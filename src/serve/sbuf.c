/* sbuf.c: growable text for `blockbox serve`: the library's bb_buf with an optional cap;
 * a failed append marks the buffer failed instead of returning an error at every call site. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "serve.h"

/* 0 if n more bytes stay within the cap; past it the buffer is failed, as when out of
 * memory, and nothing more is appended. */
static int fits(sv_buf *b, size_t n)
{
    if (b->max && (n > b->max || b->text.len > b->max - n))
        b->text.failed = 1;
    return b->text.failed ? -1 : 0;
}

void sv_buf_add(sv_buf *b, const void *p, size_t n)
{
    if (fits(b, n) == 0)
        bb_buf_append(&b->text, p, n);
}

void sv_buf_puts(sv_buf *b, const char *s) { sv_buf_add(b, s, strlen(s)); }

void sv_buf_printf(sv_buf *b, const char *fmt, ...)
{
    char small[256];   /* most texts (a number, a metrics line) are formatted once, here */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->text.failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        sv_buf_add(b, small, (size_t)n);
        return;
    }
    if (fits(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    bb_buf_vprintf(&b->text, fmt, ap);
    va_end(ap);
}

char *sv_buf_steal(sv_buf *b, size_t *len) { return bb_buf_steal(&b->text, len); }

void sv_buf_free(sv_buf *b) { bb_buf_free(&b->text); }
