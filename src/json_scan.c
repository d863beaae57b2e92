/* json_scan.c: the strict JSON reader. Checks RFC 8259 text in one non-recursive pass
 * under byte, depth, value and time limits; writes it back canonically or decodes strings. */
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include "json_scan.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"

/* How often (in bytes read) the deadline is looked at. */
#define CLOCK_EVERY ((size_t)1 << 20)
/* Containers tracked on the stack before the tracker is allocated. */
#define SMALL_STACK 512

/* ---- UTF-8 ------------------------------------------------------------------ */

size_t bb_wire_utf8_sequence(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0; /* continuation byte, C0/C1 (always overlong) or F5..FF */
    }
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

size_t bb_wire_utf8_scan(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = bb_wire_utf8_sequence(s + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

long long bb_json_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t bb_json_skip_space(const char *text, size_t len, size_t pos)
{
    while (pos < len && is_space((unsigned char)text[pos]))
        pos++;
    return pos;
}

/* Bytes that need no attention inside a JSON string: printable ASCII but the quote,
 * the backslash and DEL. A table and an unrolled loop: payloads are megabytes. */
static const unsigned char plain_byte[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0),                                   /* 0x00-0x1f: control */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 0x20-0x2f: '"' is 0x22 */
    R16(1), R16(1),                                   /* 0x30-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,   /* 0x50-0x5f: '\\' is 0x5c */
    R16(1),                                           /* 0x60-0x6f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,   /* 0x70-0x7f: DEL is 0x7f */
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), /* 0x80-0xff */
#undef R16
};

static size_t skip_plain(const unsigned char *s, size_t i, size_t len)
{
#ifdef __SSE2__
    /* 16 bytes a step: stop at a quote, a backslash, DEL, a control byte or a byte
     * >= 0x80 (negative as a signed byte, so one signed compare catches both). */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    while (i + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                    _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)));
        int mask = _mm_movemask_epi8(stop);
        if (mask)
            return i + (size_t)__builtin_ctz((unsigned)mask);
        i += 16;
    }
#endif
    while (i + 8 <= len && plain_byte[s[i]] & plain_byte[s[i + 1]] & plain_byte[s[i + 2]] &
                               plain_byte[s[i + 3]] & plain_byte[s[i + 4]] & plain_byte[s[i + 5]] &
                               plain_byte[s[i + 6]] & plain_byte[s[i + 7]])
        i += 8;
    while (i < len && plain_byte[s[i]])
        i++;
    return i;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of a \uXXXX escape starting at s[i] (the backslash), or -1. */
static long unicode_escape(const unsigned char *s, size_t len, size_t i)
{
    if (len - i < 6 || s[i] != '\\' || s[i + 1] != 'u')
        return -1;
    long v = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = hex_value(s[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

typedef struct reader {
    const unsigned char *s;
    size_t len;
    const bb_json_rules *r;
    bb_error **err;
    size_t next_clock;
} reader;

static int timed_out(reader *rd, size_t at)
{
    if (at < rd->next_clock)
        return 0;
    rd->next_clock = at + CLOCK_EVERY;
    if (rd->r->deadline_ms > 0 && bb_json_now_ms() > rd->r->deadline_ms)
        return bb_fail(rd->err, BB_ERR_TIMEOUT,
                       "%s: the reply could not be checked before the call's deadline", rd->r->what);
    return 0;
}

static int canon_over(reader *rd, const bb_buf *canon)
{
    if (!canon || !rd->r->max_canon || canon->len <= rd->r->max_canon)
        return 0;
    return bb_fail(rd->err, rd->r->limit_kind, "%s: over the limit of %zu bytes", rd->r->what,
                   rd->r->max_canon);
}

static void put_utf8(bb_buf *out, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    bb_buf_append(out, b, n);
}

/*
 * One string starting at s[*pos] (the quote). Exactly one of the two outputs is
 * used: canon gets the canonical literal (quotes included); decoded gets at most
 * keep bytes of its value, with *full its whole decoded length.
 */
static int read_string(reader *rd, size_t *pos, bb_buf *canon, bb_buf *decoded, size_t keep,
                       size_t *full)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = rd->s;
    size_t len = rd->len, start = *pos, i = start + 1;
    size_t total = 0;
    const char *what = rd->r->what;
    bb_error_kind kind = rd->r->kind;
    if (canon)
        bb_buf_putc(canon, '"');
    for (;;) {
        size_t run = skip_plain(s, i, len);
        if (run > i) {
            if (canon)
                bb_buf_append(canon, s + i, run - i);
            if (decoded && total < keep)
                bb_buf_append(decoded, s + i, run - i < keep - total ? run - i : keep - total);
            total += run - i;
            i = run;
        }
        if (timed_out(rd, i) < 0 || canon_over(rd, canon) < 0)
            return -1;
        if (i >= len)
            return bb_fail(rd->err, kind, "%s: string starting at byte %zu never ends", what, start);
        unsigned char c = s[i];
        if (c == '"') {
            if (canon)
                bb_buf_putc(canon, '"');
            i++;
            break;
        }
        if (c == '\\') {
            if (i + 1 >= len)
                return bb_fail(rd->err, kind, "%s: escape cut off at byte %zu", what, i);
            unsigned char e = s[i + 1];
            const char *simple = e ? strchr("\"\\/bfnrt", e) : NULL;
            if (simple) {
                static const char values[] = "\"\\/\b\f\n\r\t";
                if (canon)
                    bb_buf_append(canon, s + i, 2);
                if (decoded && total < keep)
                    bb_buf_putc(decoded, values[simple - "\"\\/bfnrt"]);
                total++;
                i += 2;
                continue;
            }
            long unit = unicode_escape(s, len, i);
            if (unit < 0)
                return bb_fail(rd->err, kind, "%s: invalid escape at byte %zu", what, i);
            if (unit >= 0xDC00 && unit <= 0xDFFF)
                return bb_fail(rd->err, kind, "%s: unpaired surrogate escape at byte %zu", what, i);
            uint32_t cp = (uint32_t)unit;
            size_t used = 6;
            if (unit >= 0xD800 && unit <= 0xDBFF) {
                long low = unicode_escape(s, len, i + 6);
                if (low < 0xDC00 || low > 0xDFFF)
                    return bb_fail(rd->err, kind, "%s: unpaired surrogate escape at byte %zu", what, i);
                cp = 0x10000 + (((uint32_t)unit - 0xD800) << 10) + ((uint32_t)low - 0xDC00);
                used = 12;
            }
            if (cp == 0) {
                if (!rd->r->nul_to_fffd)
                    return bb_fail(rd->err, kind, "%s: NUL character (\\u0000) at byte %zu", what, i);
                cp = 0xFFFD;
                if (canon)
                    bb_buf_puts(canon, "\\ufffd");
            } else if (canon) {
                bb_buf_append(canon, s + i, used);
            }
            size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            if (decoded && total + n <= keep)
                put_utf8(decoded, cp);
            else if (decoded)
                keep = total;   /* a cut never splits a character */
            total += n;
            i += used;
            continue;
        }
        if (c == 0)
            return bb_fail(rd->err, kind, "%s: NUL byte at byte %zu", what, i);
        if (c < 0x20)
            return bb_fail(rd->err, kind, "%s: raw control character 0x%02x in a string at byte %zu",
                           what, c, i);
        size_t n = c == 0x7f ? 1 : bb_wire_utf8_sequence(s + i, len - i);
        if (n == 0)
            return bb_fail(rd->err, kind, "%s: invalid UTF-8 at byte %zu", what, i);
        /* DEL and the C1 controls (U+0080-U+009F) are written escaped: a terminal
         * may act on them. */
        int control = c == 0x7f || (c == 0xC2 && s[i + 1] < 0xA0);
        if (canon && control) {
            unsigned v = c == 0x7f ? 0x7f : s[i + 1];
            char esc[6] = {'\\', 'u', '0', '0', hex[v >> 4], hex[v & 15]};
            bb_buf_append(canon, esc, 6);
        } else if (canon) {
            bb_buf_append(canon, s + i, n);
        }
        if (decoded && total + n <= keep)
            bb_buf_append(decoded, s + i, n);
        else if (decoded)
            keep = total;
        total += n;
        i += n;
    }
    *pos = i;
    if (full)
        *full = total;
    return 0;
}

/*
 * A number at s[*pos] by the RFC 8259 grammar. Its magnitude must fit a double:
 * the decimal exponent of its first significant digit decides, and only the border
 * case (exponent 308) is settled by strtod.
 */
static int read_number(reader *rd, size_t *pos, bb_buf *canon)
{
    const unsigned char *s = rd->s;
    size_t len = rd->len, start = *pos, i = start;
    const char *what = rd->r->what;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || s[i] < '0' || s[i] > '9')
        return bb_fail(rd->err, rd->r->kind, "%s: invalid number at byte %zu", what, start);
    long long lead = 0;       /* position of the first significant digit, as a power of ten */
    int significant = 0;
    if (s[i] == '0') {
        i++;
        if (i < len && s[i] >= '0' && s[i] <= '9')
            return bb_fail(rd->err, rd->r->kind, "%s: number with a leading zero at byte %zu", what,
                           start);
    } else {
        size_t digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
        lead = (long long)digits - 1;
        significant = 1;
    }
    if (i < len && s[i] == '.') {
        i++;
        size_t first = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (!significant && s[i] != '0') {
                lead = -(long long)(i - first) - 1;
                significant = 1;
            }
            i++;
        }
        if (i == first)
            return bb_fail(rd->err, rd->r->kind, "%s: number without digits after '.' at byte %zu", what,
                           start);
    }
    long long exponent = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int negative = 0;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            negative = s[i++] == '-';
        size_t first = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (exponent < 1000000000)
                exponent = exponent * 10 + (s[i] - '0');
            i++;
        }
        if (i == first)
            return bb_fail(rd->err, rd->r->kind, "%s: number without exponent digits at byte %zu", what,
                           start);
        if (negative)
            exponent = -exponent;
    }
    if (significant) {
        long long magnitude = lead + exponent;
        int overflow = magnitude > DBL_MAX_10_EXP;
        if (magnitude == DBL_MAX_10_EXP) {
            char *copy = malloc(i - start + 1);
            if (!copy)
                return bb_fail(rd->err, BB_ERR_INTERNAL, "%s: out of memory", what);
            memcpy(copy, s + start, i - start);
            copy[i - start] = '\0';
            double v = strtod(copy, NULL);
            free(copy);
            overflow = v > DBL_MAX || v < -DBL_MAX;
        }
        if (overflow)
            return bb_fail(rd->err, rd->r->kind,
                           "%s: the number at byte %zu is too large for a double (JSON numbers must "
                           "stay below 1.8e308 in magnitude)",
                           what, start);
    }
    if (canon)
        bb_buf_append(canon, s + start, i - start);
    *pos = i;
    return 0;
}

static int count_value(reader *rd, size_t *values, size_t at)
{
    if (++*values > rd->r->max_values)
        return bb_fail(rd->err, rd->r->limit_kind,
                       "%s: more than %zu JSON values (at byte %zu); send large arrays as numpy "
                       "arrays (base64) or raise BLOCKBOX_MAX_JSON_VALUES",
                       rd->r->what, rd->r->max_values, at);
    return 0;
}

static int unexpected(reader *rd, size_t i, const char *wanted)
{
    if (i >= rd->len)
        return bb_fail(rd->err, rd->r->kind, "%s: not valid JSON (cut off at byte %zu, %s expected)",
                       rd->r->what, i, wanted);
    unsigned char c = rd->s[i];
    if (c == 0)
        return bb_fail(rd->err, rd->r->kind, "%s: NUL byte at byte %zu", rd->r->what, i);
    if (c == ']' || c == '}')
        return bb_fail(rd->err, rd->r->kind, "%s: unbalanced '%c' at byte %zu (%s expected)",
                       rd->r->what, c, i, wanted);
    if (c >= 0x80 && !bb_wire_utf8_sequence(rd->s + i, rd->len - i))
        return bb_fail(rd->err, rd->r->kind, "%s: invalid UTF-8 at byte %zu", rd->r->what, i);
    if (c < 0x20 || c >= 0x7f)
        return bb_fail(rd->err, rd->r->kind, "%s: not valid JSON (byte 0x%02x at byte %zu, %s expected)",
                       rd->r->what, c, i, wanted);
    return bb_fail(rd->err, rd->r->kind, "%s: not valid JSON (near byte %zu: '%c', %s expected)",
                   rd->r->what, i, c, wanted);
}

static int read_literal(reader *rd, size_t *pos, bb_buf *canon)
{
    static const char *const words[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(words[k]);
        if (rd->len - *pos >= n && memcmp(rd->s + *pos, words[k], n) == 0) {
            if (canon)
                bb_buf_append(canon, words[k], n);
            *pos += n;
            return 0;
        }
    }
    return unexpected(rd, *pos, "a value");
}

int bb_json_scan_value(const char *text, size_t len, size_t *pos, int depth,
                       const bb_json_rules *rules, size_t *values, bb_buf *canon, bb_error **err)
{
    if (!text)
        return bb_fail(err, rules->kind, "%s: missing", rules->what);
    reader rd = {(const unsigned char *)text, len, rules, err, *pos + CLOCK_EVERY};
    const unsigned char *s = rd.s;
    /* is_object[k]: whether the k-th open container (from this value's) is an object */
    unsigned char small[SMALL_STACK], *is_object = small;
    size_t room = rules->max_depth > depth ? (size_t)(rules->max_depth - depth) : 0;
    if (room > SMALL_STACK && !(is_object = malloc(room)))
        return bb_fail(err, BB_ERR_INTERNAL, "%s: out of memory", rules->what);
    size_t open = 0, i = *pos;
    int rc = -1;
    for (;;) {
        /* a value */
        i = bb_json_skip_space(text, len, i);
        if (i >= len) {
            unexpected(&rd, i, "a value");
            goto done;
        }
        unsigned char c = s[i];
        if (count_value(&rd, values, i) < 0)
            goto done;
        if (c == '{' || c == '[') {
            if (open >= room) {
                bb_fail(err, rules->kind, "%s: nested deeper than %d levels (at byte %zu)", rules->what,
                        rules->max_depth, i);
                goto done;
            }
            is_object[open++] = c == '{';
            if (canon)
                bb_buf_putc(canon, (char)c);
            i = bb_json_skip_space(text, len, i + 1);
            if (i < len && s[i] == (c == '{' ? '}' : ']')) {
                open--;
                if (canon)
                    bb_buf_putc(canon, (char)s[i]);
                i++;
                goto after_value;
            }
            if (c == '[')
                continue;
            goto key;
        }
        if (c == '"') {
            if (read_string(&rd, &i, canon, NULL, 0, NULL) < 0)
                goto done;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (read_number(&rd, &i, canon) < 0)
                goto done;
        } else if (read_literal(&rd, &i, canon) < 0) {
            goto done;
        }
    after_value:
        if (timed_out(&rd, i) < 0 || canon_over(&rd, canon) < 0)
            goto done;
        if (open == 0)
            break;
        i = bb_json_skip_space(text, len, i);
        if (i < len && s[i] == ',') {
            if (canon)
                bb_buf_putc(canon, ',');
            i++;
            if (!is_object[open - 1])
                continue;
            goto key;
        }
        if (i < len && s[i] == (is_object[open - 1] ? '}' : ']')) {
            open--;
            if (canon)
                bb_buf_putc(canon, (char)s[i]);
            i++;
            goto after_value;
        }
        unexpected(&rd, i, is_object[open - 1] ? "',' or '}'" : "',' or ']'");
        goto done;
    key:
        i = bb_json_skip_space(text, len, i);
        if (i >= len || s[i] != '"') {
            unexpected(&rd, i, "a key");
            goto done;
        }
        if (read_string(&rd, &i, canon, NULL, 0, NULL) < 0)
            goto done;
        i = bb_json_skip_space(text, len, i);
        if (i >= len || s[i] != ':') {
            unexpected(&rd, i, "':'");
            goto done;
        }
        if (canon)
            bb_buf_putc(canon, ':');
        i++;
    }
    if (canon && canon->failed) {
        bb_fail(err, BB_ERR_INTERNAL, "%s: out of memory", rules->what);
        goto done;
    }
    *pos = i;
    rc = 0;
done:
    if (is_object != small)
        free(is_object);
    return rc;
}

int bb_json_scan_text(const char *text, size_t len, const bb_json_rules *rules, size_t *values,
                      bb_buf *canon, bb_error **err)
{
    size_t pos = 0;
    if (bb_json_scan_value(text, len, &pos, 0, rules, values, canon, err) < 0)
        return -1;
    pos = bb_json_skip_space(text, len, pos);
    if (pos < len) {
        if (text[pos] == '\0')
            return bb_fail(err, rules->kind, "%s: NUL byte at byte %zu", rules->what, pos);
        if (text[pos] == ']' || text[pos] == '}')
            return bb_fail(err, rules->kind, "%s: unbalanced '%c' at byte %zu", rules->what, text[pos], pos);
        return bb_fail(err, rules->kind, "%s: unexpected text after the JSON value at byte %zu",
                       rules->what, pos);
    }
    return 0;
}

int bb_json_decode_string(const char *text, size_t len, size_t *pos, size_t keep, bb_buf *out,
                          size_t *full, const bb_json_rules *rules, bb_error **err)
{
    reader rd = {(const unsigned char *)text, len, rules, err, *pos + CLOCK_EVERY};
    if (*pos >= len || text[*pos] != '"')
        return unexpected(&rd, *pos, "a string");
    bb_buf_append(out, "", 0);   /* data is never NULL and always NUL-terminated, even for "" */
    if (read_string(&rd, pos, NULL, out, keep, full) < 0)
        return -1;
    if (out->failed)
        return bb_fail(err, BB_ERR_INTERNAL, "%s: out of memory", rules->what);
    return 0;
}
