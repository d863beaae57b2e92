/* buf.c: the text toolkit of blockbox/text.h: the growable byte buffer, the JSON string
 * escaper and the JSON span skippers that the serializer, the drivers and the programs share. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bb_buf_reserve(bb_buf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (extra > (size_t)-1 / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int bb_buf_append(bb_buf *b, const void *data, size_t len)
{
    if (bb_buf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int bb_buf_puts(bb_buf *b, const char *s) { return bb_buf_append(b, s, strlen(s)); }

int bb_buf_putc(bb_buf *b, char c) { return bb_buf_append(b, &c, 1); }

int bb_buf_vprintf(bb_buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0 || bb_buf_reserve(b, (size_t)n) < 0) {
        va_end(again);
        b->failed = 1;
        return -1;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    va_end(again);
    b->len += (size_t)n;
    return 0;
}

int bb_buf_printf(bb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = bb_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not valid. */
static size_t utf8_sequence(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    unsigned int cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return 0;
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

int bb_buf_json_string(bb_buf *b, const char *s, size_t len)
{
    if (bb_buf_reserve(b, len + 2) < 0)
        return -1;
    bb_buf_putc(b, '"');
    bb_buf_json_chars(b, s, len);
    bb_buf_putc(b, '"');
    return b->failed ? -1 : 0;
}

int bb_buf_json_chars(bb_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        while (run < len && p[run] >= 0x20 && p[run] < 0x7F && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            bb_buf_append(b, p + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t n = utf8_sequence(p + i, len - i);
            if (n == 0) {
                bb_buf_puts(b, "\\ufffd");
                i++;
            } else if (n == 2 && p[i] == 0xC2 && p[i + 1] < 0xA0) {
                /* C1 controls (U+0080-U+009F; U+009B is an 8-bit CSI) are escaped like
                 * C0 and DEL, so no text a block wrote can drive a terminal. */
                char esc[6] = {'\\', 'u', '0', '0', hex[p[i + 1] >> 4], hex[p[i + 1] & 15]};
                bb_buf_append(b, esc, 6);
                i += 2;
            } else {
                bb_buf_append(b, p + i, n);
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"': bb_buf_puts(b, "\\\""); break;
        case '\\': bb_buf_puts(b, "\\\\"); break;
        case '\n': bb_buf_puts(b, "\\n"); break;
        case '\r': bb_buf_puts(b, "\\r"); break;
        case '\t': bb_buf_puts(b, "\\t"); break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            bb_buf_append(b, esc, 6);
        }
        }
        i++;
    }
    return b->failed ? -1 : 0;
}

char *bb_buf_steal(bb_buf *b, size_t *len)
{
    char *out = NULL;
    if (!b->failed) {
        if (!b->data)
            bb_buf_reserve(b, 0);
        out = b->data;
        if (out)
            out[b->len] = '\0';
        if (len)
            *len = b->len;
    } else {
        free(b->data);
    }
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
    return out;
}

void bb_buf_free(bb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

/* ---- JSON spans (text.h) ------------------------------------------------------------ */

size_t bb_json_skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

size_t bb_json_skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (s[i] == '"')
        return bb_json_skip_string(s, i, n);
    if (s[i] != '{' && s[i] != '[') {
        while (i < n && !strchr(",]} \t\r\n", s[i]))
            i++;
        return i;
    }
    size_t depth = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            i = bb_json_skip_string(s, i, n);
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return i + 1;
        i++;
    }
    return n;
}
