/* base64.c: strict base64 (RFC 4648 standard alphabet, '=' padding) for images,
 * bytes and ndarray data; decoding accepts exactly one spelling of each byte string. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/*
 * Decisions (documented in wire.h's comment and docs): the decoder accepts only the
 * canonical encoding. That means: length a multiple of 4; characters A-Z a-z 0-9 + /;
 * '=' only as the last one or two characters; no whitespace or line breaks anywhere;
 * the unused low bits of the last data character must be zero. The empty string is
 * valid and decodes to nothing. A validator that accepts exactly what it would
 * produce cannot be fooled by a consumer that reads lax input differently.
 */

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Decoding table: the sextet of each alphabet byte, 0xFF for any other; filled once,
 * from the alphabet, by decode_table_ready. */
static unsigned char decode_table[256];

static void decode_table_fill(void)
{
    for (int i = 0; i < 256; i++)
        decode_table[i] = 0xFF;
    for (int i = 0; i < 64; i++)
        decode_table[(unsigned char)alphabet[i]] = (unsigned char)i;
}

static void decode_table_ready(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, decode_table_fill);
}

/* Value of a base64 character, or -1 (decode_table_ready first). */
static int sextet(unsigned char c) { return decode_table[c] == 0xFF ? -1 : decode_table[c]; }

/* Two characters for each 12 bits: a frame's data form is encoded with half the
 * lookups and stores (a 1080p result for a JSON-only caller is 8.3 MB of base64). */
static char encode_pairs[4096][2];

static void encode_pairs_fill(void)
{
    for (int i = 0; i < 4096; i++) {
        encode_pairs[i][0] = alphabet[i >> 6];
        encode_pairs[i][1] = alphabet[i & 63];
    }
}

int bb_base64_encode(const unsigned char *in, size_t len, bb_buf *out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, encode_pairs_fill);
    if (len > ((size_t)-1 / 4) * 3 - 3)
        return -1;
    size_t out_len = (len + 2) / 3 * 4;
    if (bb_buf_reserve(out, out_len) < 0)
        return -1;
    char *dst = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        memcpy(dst, encode_pairs[v >> 12], 2);
        memcpy(dst + 2, encode_pairs[v & 0xFFF], 2);
        dst += 4;
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *dst++ = alphabet[v >> 18];
        *dst++ = alphabet[(v >> 12) & 63];
        *dst++ = '=';
        *dst++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *dst++ = alphabet[v >> 18];
        *dst++ = alphabet[(v >> 12) & 63];
        *dst++ = alphabet[(v >> 6) & 63];
        *dst++ = '=';
    }
    out->len += out_len;
    out->data[out->len] = '\0';
    return 0;
}

/* Shared by check and decode: validates the text and, when dst is non-NULL, writes
 * the bytes. Returns the decoded length or -1. */
static long long base64_walk(const char *in, size_t len, unsigned char *dst)
{
    decode_table_ready();
    const unsigned char *s = (const unsigned char *)in;
    if (len % 4 != 0 || len / 4 > (size_t)(LLONG_MAX / 3))
        return -1;
    size_t written = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int a = sextet(s[i]), b = sextet(s[i + 1]);
        if (a < 0 || b < 0)
            return -1;
        int c, d, n = 3;
        if (last && s[i + 2] == '=' && s[i + 3] == '=') {
            if (b & 15) /* non-zero padding bits: not the canonical encoding */
                return -1;
            c = d = 0;
            n = 1;
        } else if (last && s[i + 3] == '=') {
            c = sextet(s[i + 2]);
            if (c < 0 || (c & 3))
                return -1;
            d = 0;
            n = 2;
        } else {
            c = sextet(s[i + 2]);
            d = sextet(s[i + 3]);
            if (c < 0 || d < 0)
                return -1;
        }
        if (dst) {
            uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
            dst[written] = (unsigned char)(v >> 16);
            if (n > 1)
                dst[written + 1] = (unsigned char)(v >> 8);
            if (n > 2)
                dst[written + 2] = (unsigned char)v;
        }
        written += (size_t)n;
    }
    return (long long)written;
}

/* 1 for a byte of the base64 alphabet (padding excluded), branch-free so the
 * compiler can vectorise the scan of multi-megabyte payloads. */
static inline unsigned alphabet_byte(unsigned char c)
{
    return (unsigned)(((unsigned)c - 'A' < 26u) | ((unsigned)c - 'a' < 26u) | ((unsigned)c - '0' < 10u) |
                      (c == '+') | (c == '/'));
}

long long bb_base64_check(const char *in, size_t len)
{
    if (!in || len % 4 != 0)
        return -1;
    if (len <= 4)
        return base64_walk(in, len, NULL);
    /* Every quartet but the last holds four alphabet bytes; only the last may pad. */
    const unsigned char *s = (const unsigned char *)in;
    size_t body = len - 4;
    unsigned ok = 1;
    size_t i = 0;
#ifdef __SSE2__
    /* 16 bytes at a time: every byte must be in A-Z, a-z, 0-9, '+' or '/'. */
    for (; i + 16 <= body; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
        __m128i lower = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('a' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('z' + 1)));
        __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        __m128i sign = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('+')),
                                    _mm_cmpeq_epi8(v, _mm_set1_epi8('/')));
        __m128i good = _mm_or_si128(_mm_or_si128(upper, lower), _mm_or_si128(digit, sign));
        if (_mm_movemask_epi8(good) != 0xFFFF)
            return -1;
    }
#endif
    for (; i < body; i++)
        ok &= alphabet_byte(s[i]);
    if (!ok)
        return -1;
    long long tail = base64_walk(in + body, 4, NULL);
    return tail < 0 ? -1 : (long long)(body / 4 * 3) + tail;
}

int bb_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!in || len % 4 != 0)
        return -1;
    unsigned char *dst = malloc(len / 4 * 3 + 1);
    if (!dst)
        return -1;
    long long n = base64_walk(in, len, dst);
    if (n < 0) {
        free(dst);
        return -1;
    }
    *out = dst;
    *out_len = (size_t)n;
    return 0;
}

int bb_base64_decode_into(const char *in, size_t len, void *out, size_t cap, size_t *out_len)
{
    decode_table_ready();
    *out_len = 0;
    long long n = bb_base64_check(in, len);   /* the canonical form, vectorised */
    if (n < 0 || (unsigned long long)n > cap)
        return -1;
    if (len == 0)
        return 0;
    const unsigned char *s = (const unsigned char *)in;
    unsigned char *dst = out;
    size_t body = len - 4, w = 0;
    /* every byte of the body is an alphabet byte (checked above): a table lookup each */
    for (size_t i = 0; i < body; i += 4, w += 3) {
        uint32_t v = (uint32_t)decode_table[s[i]] << 18 | (uint32_t)decode_table[s[i + 1]] << 12 |
                     (uint32_t)decode_table[s[i + 2]] << 6 | (uint32_t)decode_table[s[i + 3]];
        dst[w] = (unsigned char)(v >> 16);
        dst[w + 1] = (unsigned char)(v >> 8);
        dst[w + 2] = (unsigned char)v;
    }
    long long tail = base64_walk(in + body, 4, dst + w);
    if (tail < 0)
        return -1;
    *out_len = w + (size_t)tail;
    return 0;
}
