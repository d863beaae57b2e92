/* wire.c: the envelopes of DESIGN §3 — builds requests, prechecks JSON text before
 * any parser sees it, and validates responses field by field (a backend is hostile). */
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include "wire.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errtext.h"
#include "error.h"
#include "wire_internal.h"

/* Caps on failure details: long ones are cut (with a marker), never refused. */
#define ERROR_TEXT_MAX ((size_t)64 * 1024)
#define TRACEBACK_MAX ((size_t)256 * 1024)
#define FUNCTION_NAME_MAX ((size_t)1024)
#define ERROR_TYPE_MAX 128
#define IMPORT_LINE_MAX 4096
#define IDENTIFIER_MAX 128
#define SYSCALL_NAME_MAX 32
#define RUNTIME_VERSION_MAX 64
/* Room for the envelope's keys, small fields and denied syscall names. */
#define ENVELOPE_OVERHEAD ((size_t)1024 * 1024)

void bb_limits_default(bb_limits *limits)
{
    limits->max_input_bytes = (size_t)64 << 20;
    limits->max_code_bytes = (size_t)1 << 20;
    limits->max_result_bytes = (size_t)64 << 20;
    limits->max_stream_bytes = (size_t)1 << 20;
    limits->max_depth = 64;
}

static size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }
static size_t sat_mul(size_t a, size_t b) { return b && a > SIZE_MAX / b ? SIZE_MAX : a * b; }

/*
 * The result travels as a JSON string inside the envelope, so its quotes and
 * backslashes are escaped: at most 2 bytes per byte when the runtime writes the
 * envelope with raw UTF-8 (ensure_ascii=False). Streams and error texts may hold
 * control characters, which become \u00XX: at most 6 bytes per byte. Streams may
 * arrive uncut (this side cuts them), but only up to this bound.
 */
size_t bb_limits_max_response(const bb_limits *limits)
{
    size_t total = sat_mul(limits->max_result_bytes, 2);
    size_t texts = sat_add(sat_mul(limits->max_stream_bytes, 2), ERROR_TEXT_MAX + TRACEBACK_MAX);
    total = sat_add(total, sat_mul(texts, 6));
    total = sat_add(total, BB_TRACE_MAX_BYTES + 2 * (BB_TRACE_MAX_ENTRIES + 1)); /* + commas */
    return sat_add(total, ENVELOPE_OVERHEAD);
}

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

/* ---- precheck --------------------------------------------------------------- */

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

/*
 * One pass, no recursion, no copy: tracks only "inside a string" and the current
 * depth. Beyond what the header promises it also refuses what would make the C
 * view of a value differ from Python's: \u0000 escapes (C strings end there),
 * unpaired surrogate escapes, raw control characters inside strings, and bad
 * escapes. Anything else malformed is left to the parser.
 */
/* Bytes that need no attention inside a JSON string: printable ASCII but the quote
 * and the backslash. A table and an unrolled loop: payloads are megabytes of base64. */
static const unsigned char plain_string_byte[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0),                                   /* 0x00-0x1f: control */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 0x20-0x2f: '"' is 0x22 */
    R16(1), R16(1),                                   /* 0x30-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,   /* 0x50-0x5f: '\\' is 0x5c */
    R16(1), R16(1),                                   /* 0x60-0x7f */
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), /* 0x80-0xff */
#undef R16
};

static size_t skip_plain_string_bytes(const unsigned char *s, size_t i, size_t len)
{
#ifdef __SSE2__
    /* 16 bytes at a time: stop at a quote, a backslash, a control byte or a byte
     * >= 0x80 (negative as a signed byte, so one signed compare catches both). */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (i + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                    _mm_cmplt_epi8(v, space));
        int mask = _mm_movemask_epi8(stop);
        if (mask)
            return i + (size_t)__builtin_ctz((unsigned)mask);
        i += 16;
    }
#endif
    while (i + 8 <= len && plain_string_byte[s[i]] & plain_string_byte[s[i + 1]] &
                               plain_string_byte[s[i + 2]] & plain_string_byte[s[i + 3]] &
                               plain_string_byte[s[i + 4]] & plain_string_byte[s[i + 5]] &
                               plain_string_byte[s[i + 6]] & plain_string_byte[s[i + 7]])
        i += 8;
    while (i < len && plain_string_byte[s[i]])
        i++;
    return i;
}

static int precheck_text(const char *text, size_t len, size_t max_bytes, int max_depth,
                         bb_error_kind kind, const char *what, size_t *nul_escapes, bb_error **err)
{
    if (!text)
        return bb_fail(err, kind, "%s: missing", what);
    if (len > max_bytes)
        return bb_fail(err, kind, "%s: %zu bytes, over the limit of %zu bytes", what, len, max_bytes);
    const unsigned char *s = (const unsigned char *)text;
    int depth = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == '"') {
            size_t start = i++;
            for (;;) {
                i = skip_plain_string_bytes(s, i, len);
                if (i >= len)
                    return bb_fail(err, kind, "%s: string starting at byte %zu never ends", what,
                                   start);
                c = s[i];
                if (c == '"') {
                    i++;
                    break;
                }
                if (c == '\\') {
                    if (i + 1 >= len)
                        return bb_fail(err, kind, "%s: escape cut off at byte %zu", what, i);
                    unsigned char e = s[i + 1];
                    if (strchr("\"\\/bfnrt", e) && e) {
                        i += 2;
                        continue;
                    }
                    long unit = unicode_escape(s, len, i);
                    if (unit < 0)
                        return bb_fail(err, kind, "%s: invalid escape at byte %zu", what, i);
                    if (unit == 0 && !nul_escapes)
                        return bb_fail(err, kind, "%s: NUL character (\\u0000) at byte %zu", what, i);
                    if (unit == 0)
                        ++*nul_escapes;
                    if (unit >= 0xDC00 && unit <= 0xDFFF)
                        return bb_fail(err, kind, "%s: unpaired surrogate escape at byte %zu", what, i);
                    if (unit >= 0xD800 && unit <= 0xDBFF) {
                        long low = unicode_escape(s, len, i + 6);
                        if (low < 0xDC00 || low > 0xDFFF)
                            return bb_fail(err, kind, "%s: unpaired surrogate escape at byte %zu",
                                           what, i);
                        i += 12;
                    } else {
                        i += 6;
                    }
                    continue;
                }
                if (c == 0)
                    return bb_fail(err, kind, "%s: NUL byte at byte %zu", what, i);
                if (c < 0x20)
                    return bb_fail(err, kind, "%s: raw control character 0x%02x in a string at byte %zu",
                                   what, c, i);
                size_t n = bb_wire_utf8_sequence(s + i, len - i);
                if (n == 0)
                    return bb_fail(err, kind, "%s: invalid UTF-8 at byte %zu", what, i);
                i += n;
            }
            continue;
        }
        if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return bb_fail(err, kind, "%s: nested deeper than %d levels (at byte %zu)", what,
                               max_depth, i);
        } else if (c == ']' || c == '}') {
            if (depth == 0)
                return bb_fail(err, kind, "%s: unbalanced '%c' at byte %zu", what, c, i);
            depth--;
        } else if (c == 0) {
            return bb_fail(err, kind, "%s: NUL byte at byte %zu", what, i);
        } else if (c >= 0x80) {
            size_t n = bb_wire_utf8_sequence(s + i, len - i);
            if (n == 0)
                return bb_fail(err, kind, "%s: invalid UTF-8 at byte %zu", what, i);
            i += n;
            continue;
        }
        i++;
    }
    return 0;
}

int bb_wire_precheck(const char *text, size_t len, size_t max_bytes, int max_depth,
                     bb_error_kind kind, const char *what, bb_error **err)
{
    return precheck_text(text, len, max_bytes, max_depth, kind, what, NULL, err);
}

/*
 * Text from a backend may carry \u0000 escapes (Python's json spells a NUL
 * character so); a C string would end there. They become \ufffd, the same length,
 * in place: the text must have passed the precheck.
 */
static void replace_nul_escapes(char *text, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = text[i] == '"';
        } else if (text[i] == '"') {
            in_string = 0;
        } else if (text[i] == '\\') {
            if (text[i + 1] == 'u' && memcmp(text + i + 2, "0000", 4) == 0)
                memcpy(text + i + 2, "fffd", 4);
            i++; /* the escaped character; hex digits after it are plain text */
        }
    }
}

static int is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* cJSON on text that passed the precheck, with a check that only whitespace follows. */
static int parse_checked(const char *text, size_t len, bb_error_kind kind, const char *what,
                         cJSON **out, bb_error **err)
{
    const char *end = NULL;
    cJSON *tree = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!tree) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return bb_fail(err, kind, "%s: not valid JSON (near byte %zu)", what, at);
    }
    size_t at = (size_t)(end - text);
    while (at < len && is_json_space(text[at]))
        at++;
    if (at < len) {
        cJSON_Delete(tree);
        return bb_fail(err, kind, "%s: unexpected text after the JSON value at byte %zu", what, at);
    }
    *out = tree;
    return 0;
}

int bb_wire_parse_json(const char *text, size_t len, size_t max_bytes, int max_depth,
                       bb_error_kind kind, const char *what, cJSON **out, bb_error **err)
{
    *out = NULL;
    if (bb_wire_precheck(text, len, max_bytes, max_depth, kind, what, err) < 0)
        return -1;
    return parse_checked(text, len, kind, what, out, err);
}

/* Text from a backend: as bb_wire_parse_json, but \u0000 escapes become \ufffd
 * (in `writable` when the caller owns the text, else in a copy made only then). */
static int parse_backend_json(const char *text, char *writable, size_t len, size_t max_bytes,
                              int max_depth, const char *what, cJSON **out, bb_error **err)
{
    *out = NULL;
    size_t nul_escapes = 0;
    if (precheck_text(text, len, max_bytes, max_depth, BB_ERR_INVALID_RESPONSE, what, &nul_escapes,
                      err) < 0)
        return -1;
    if (nul_escapes == 0)
        return parse_checked(text, len, BB_ERR_INVALID_RESPONSE, what, out, err);
    char *copy = writable;
    if (!copy) {
        if (!(copy = malloc(len + 1)))
            return bb_fail(err, BB_ERR_INTERNAL, "%s: out of memory", what);
        memcpy(copy, text, len);
        copy[len] = '\0';
    }
    replace_nul_escapes(copy, len);
    int rc = parse_checked(copy, len, BB_ERR_INVALID_RESPONSE, what, out, err);
    if (copy != writable)
        free(copy);
    return rc;
}

/* ---- code, imports, names ----------------------------------------------------- */

int bb_wire_check_code(const char *code, const char *what, const bb_limits *limits, bb_error **err)
{
    if (!code)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "%s: missing", what);
    size_t len = strnlen(code, limits->max_code_bytes + 1);
    if (len > limits->max_code_bytes)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "%s: over the limit of %zu bytes", what,
                       limits->max_code_bytes);
    size_t bad = bb_wire_utf8_scan((const unsigned char *)code, len);
    if (bad < len) {
        size_t line = 1;
        for (size_t i = 0; i < bad; i++)
            line += code[i] == '\n';
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "%s: invalid UTF-8 at byte %zu (line %zu)", what,
                       bad, line);
    }
    return 0;
}

/* U+0085, U+2028 and U+2029 are line breaks to Python's str.splitlines. */
static int is_unicode_line_break(const unsigned char *s, size_t left)
{
    return (left >= 2 && s[0] == 0xC2 && s[1] == 0x85) ||
           (left >= 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9));
}

int bb_wire_check_import(const char *line, bb_error **err)
{
    if (!line)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "imports: missing line");
    size_t len = strnlen(line, IMPORT_LINE_MAX + 1);
    if (len > IMPORT_LINE_MAX)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "imports: a line is over %d bytes",
                       IMPORT_LINE_MAX);
    const unsigned char *s = (const unsigned char *)line;
    for (size_t i = 0; i < len;) {
        if (s[i] == '\n' || s[i] == '\r')
            return bb_fail(err, BB_ERR_INVALID_REQUEST,
                           "imports: a line contains a line break at byte %zu (one import per line)", i);
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7F || is_unicode_line_break(s + i, len - i))
            return bb_fail(err, BB_ERR_INVALID_REQUEST,
                           "imports: a line contains a control character at byte %zu", i);
        size_t n = bb_wire_utf8_sequence(s + i, len - i);
        if (n == 0)
            return bb_fail(err, BB_ERR_INVALID_REQUEST, "imports: invalid UTF-8 at byte %zu", i);
        i += n;
    }
    return 0;
}

int bb_wire_check_identifier(const char *name, const char *what, bb_error **err)
{
    if (!name || !*name)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "%s: empty name", what);
    size_t len = strnlen(name, IDENTIFIER_MAX + 1);
    if (len > IDENTIFIER_MAX)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "%s: name longer than %d characters", what,
                       IDENTIFIER_MAX);
    if (name[0] >= '0' && name[0] <= '9')
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "%s: name starts with a digit", what);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return bb_fail(err, BB_ERR_INVALID_REQUEST,
                           "%s: not a Python identifier (only ASCII letters, digits and '_'; byte %zu)",
                           what, i);
    }
    return 0;
}

/* ---- code hash -------------------------------------------------------------- */

void bb_wire_code_hash(const char *run_code, const char *const *imports, size_t n_imports,
                       char out[33])
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '\0';
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1;
    if (ok && run_code)
        ok = EVP_DigestUpdate(ctx, run_code, strlen(run_code)) == 1;
    if (ok)
        ok = EVP_DigestUpdate(ctx, "\n", 1) == 1;
    for (size_t i = 0; ok && i < n_imports; i++) {
        if (i > 0)
            ok = EVP_DigestUpdate(ctx, "\n", 1) == 1;
        if (ok && imports[i])
            ok = EVP_DigestUpdate(ctx, imports[i], strlen(imports[i])) == 1;
    }
    if (ok)
        ok = EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1 && digest_len == 16;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return; /* md5 unavailable (e.g. a FIPS-only provider): out stays "" */
    for (unsigned int i = 0; i < 16; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[32] = '\0';
}

/* ---- request ------------------------------------------------------------------ */

static int is_md5_hex(const char *s)
{
    size_t n = strnlen(s, 33);
    if (n != 32)
        return 0;
    for (size_t i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/*
 * The context is embedded as raw text, so it must be exactly one JSON object:
 * otherwise text like `{}, "code_str": "…"` would add keys to the envelope. This
 * is a cheap structural scan (strings skipped, brackets counted) that backs up the
 * full check the caller has already made with bb_wire_check_context.
 */
static int is_single_object_text(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (is_json_space((char)s[i]))
        i++;
    if (s[i] != '{')
        return 0;
    long depth = 0;
    for (; s[i]; i++) {
        unsigned char c = s[i];
        if (c == '"') {
            for (i++; s[i] && s[i] != '"'; i++)
                if (s[i] == '\\' && s[i + 1])
                    i++;
            if (!s[i])
                return 0;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth < 0)
                return 0;
            if (depth == 0) {
                for (i++; is_json_space((char)s[i]); i++)
                    ;
                return s[i] == '\0';
            }
        }
    }
    return 0;
}

static int put_key(bb_buf *out, int *first, const char *key)
{
    if (!*first)
        bb_buf_putc(out, ',');
    *first = 0;
    return bb_buf_json_string(out, key, strlen(key)) < 0 || bb_buf_putc(out, ':') < 0 ? -1 : 0;
}

static int put_string_field(bb_buf *out, int *first, const char *key, const char *value)
{
    put_key(out, first, key);
    return bb_buf_json_string(out, value, strlen(value));
}

int bb_wire_build_request(const bb_wire_block *block, int with_code, const char *inputs_json,
                          size_t inputs_len, const char *context_json, bb_buf *out,
                          bb_error **err)
{
    if (!block || !out)
        return bb_fail(err, BB_ERR_INTERNAL, "request: no block or buffer");
    if (!block->run_code)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "request: no run code");
    const char *run_name = block->run_function_name ? block->run_function_name : "run";
    const char *init_name = block->init_function_name ? block->init_function_name : "init";
    if (bb_wire_check_identifier(run_name, "run_function_name", err) < 0 ||
        bb_wire_check_identifier(init_name, "init_function_name", err) < 0)
        return -1;
    if (block->n_imports && !block->imports)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "request: imports missing");
    char hash[33];
    if (block->code_hash) {
        if (!is_md5_hex(block->code_hash))
            return bb_fail(err, BB_ERR_INVALID_REQUEST, "request: code_hash is not 32 lowercase hex digits");
        memcpy(hash, block->code_hash, 33);
    } else {
        bb_wire_code_hash(block->run_code, block->imports, block->n_imports, hash);
        if (!hash[0])
            return bb_fail(err, BB_ERR_INTERNAL, "request: md5 is not available from OpenSSL");
    }
    if (context_json && !is_single_object_text(context_json))
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "workflow_context: must be one JSON object");
    if (inputs_json && inputs_len > ((size_t)-1) / 8)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "inputs: too large");

    /* Reserve once for the big parts so a tens-of-MB input is not copied by doubling. */
    size_t guess = strlen(block->run_code) + (inputs_json ? inputs_len + inputs_len / 8 : 0) +
                   (context_json ? strlen(context_json) : 2) + 1024;
    bb_buf_reserve(out, guess);

    int first = 1;
    bb_buf_putc(out, '{');
    put_string_field(out, &first, "code_hash", hash);
    put_string_field(out, &first, "run_function_name", run_name);
    if (with_code) {
        put_string_field(out, &first, "code_str", block->run_code);
        put_key(out, &first, "imports");
        bb_buf_putc(out, '[');
        for (size_t i = 0; i < block->n_imports; i++) {
            if (!block->imports[i])
                return bb_fail(err, BB_ERR_INVALID_REQUEST, "imports: line %zu missing", i);
            if (i)
                bb_buf_putc(out, ',');
            bb_buf_json_string(out, block->imports[i], strlen(block->imports[i]));
        }
        bb_buf_putc(out, ']');
        if (block->init_code)
            put_string_field(out, &first, "init_function_code", block->init_code);
        /* without init code too: an init function of the run code is looked up by it */
        if (block->init_code || strcmp(init_name, "init") != 0)
            put_string_field(out, &first, "init_function_name", init_name);
    }
    if (inputs_json) {
        put_key(out, &first, "inputs_json");
        bb_buf_json_string(out, inputs_json, inputs_len);
    }
    put_key(out, &first, "workflow_context");
    bb_buf_puts(out, context_json ? context_json : "{}");
    put_string_field(out, &first, "runtime_version", BLOCKBOX_RUNTIME_VERSION);
    bb_buf_putc(out, '}');
    if (out->failed)
        return bb_fail(err, BB_ERR_INTERNAL, "request: out of memory");
    return 0;
}

/* ---- response ----------------------------------------------------------------- */

void bb_wire_response_clear(bb_wire_response *r)
{
    if (!r)
        return;
    free(r->result);
    free(r->stdout_text);
    free(r->stderr_text);
    free(r->error_type);
    free(r->error);
    free(r->function_name);
    free(r->traceback);
    free(r->denied_syscalls);
    free(r->debug_traces);
    free(r->runtime_version);
    memset(r, 0, sizeof *r);
}

/* A copy of s of at most limit bytes: a longer s is cut at a UTF-8 boundary and
 * ends with the marker "\n[blockbox: output cut at N bytes]" (N = bytes kept), as
 * the runtime cuts its streams. s is valid UTF-8 (the envelope passed the precheck). */
static char *copy_cut(const char *s, size_t limit)
{
    size_t len = strlen(s);
    if (len <= limit)
        return strdup(s);
    char marker[64];
    /* the marker for `limit` is at least as long as the one for any smaller keep */
    int m = snprintf(marker, sizeof marker, "\n[blockbox: output cut at %zu bytes]", limit);
    size_t keep = limit > (size_t)m ? limit - (size_t)m : 0;
    while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
        keep--;
    m = snprintf(marker, sizeof marker, "\n[blockbox: output cut at %zu bytes]", keep);
    char *out = malloc(keep + (size_t)m + 1);
    if (!out)
        return NULL;
    memcpy(out, s, keep);
    memcpy(out + keep, marker, (size_t)m + 1);
    return out;
}

typedef struct field_ctx {
    const cJSON *root;
    bb_error **err;
} field_ctx;

/* The field if it is absent/null (NULL) or a string (its node); -1 if another type. */
static int get_optional_string(const field_ctx *f, const char *key, const cJSON **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(f->root, key);
    *out = NULL;
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsString(item) || !item->valuestring)
        return bb_fail(f->err, BB_ERR_INVALID_RESPONSE, "response: '%s' must be a string or null", key);
    *out = item;
    return 0;
}

static int valid_error_type(const char *s)
{
    size_t n = strnlen(s, ERROR_TYPE_MAX + 1);
    if (n == 0 || n > ERROR_TYPE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.'))
            return 0;
    }
    return 1;
}

static int valid_syscall_name(const char *s)
{
    size_t n = strnlen(s, SYSCALL_NAME_MAX + 1);
    if (n == 0 || n > SYSCALL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

static int valid_runtime_version(const char *s)
{
    size_t n = strnlen(s, RUNTIME_VERSION_MAX + 1);
    if (n == 0 || n > RUNTIME_VERSION_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("._+-", s[i])))
            return 0;
    return 1;
}

static int parse_denied(const field_ctx *f, bb_wire_response *out)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(f->root, "denied_syscalls");
    bb_buf joined = {0};
    bb_buf_puts(&joined, "");
    if (list && !cJSON_IsNull(list)) {
        if (!cJSON_IsArray(list)) {
            bb_buf_free(&joined);
            return bb_fail(f->err, BB_ERR_INVALID_RESPONSE,
                           "response: 'denied_syscalls' must be a list of syscall names");
        }
        int index = 0;
        for (const cJSON *name = list->child; name; name = name->next, index++) {
            if (!cJSON_IsString(name) || !name->valuestring || !valid_syscall_name(name->valuestring)) {
                bb_buf_free(&joined);
                return bb_fail(f->err, BB_ERR_INVALID_RESPONSE,
                               "response: 'denied_syscalls'[%d] is not a syscall name ([a-z0-9_]{1,32})",
                               index);
            }
            if (joined.len)
                bb_buf_putc(&joined, ',');
            bb_buf_puts(&joined, name->valuestring);
        }
    }
    out->denied_syscalls = bb_buf_steal(&joined, NULL);
    return out->denied_syscalls ? 0 : bb_fail(f->err, BB_ERR_INTERNAL, "response: out of memory");
}

/* Checks the result text, which the caller owns (NUL escapes are replaced in it). */
static int check_result(char *text, const bb_limits *limits, bb_error **err)
{
    size_t len = strlen(text);
    if (len > limits->max_result_bytes)
        return bb_fail(err, BB_ERR_OUTPUT_LIMIT, "result: %zu bytes, over the limit of %zu bytes", len,
                       limits->max_result_bytes);
    cJSON *tree = NULL;
    if (parse_backend_json(text, text, len, limits->max_result_bytes, limits->max_depth, "result", &tree,
                           err) < 0)
        return -1;
    int rc = 0;
    if (cJSON_IsArray(tree)) {
        int index = 0;
        for (const cJSON *item = tree->child; item && rc == 0; item = item->next, index++)
            if (!cJSON_IsObject(item))
                rc = bb_fail(err, BB_ERR_INVALID_RESPONSE,
                             "result: [%d] must be an object (a batch result is a list of objects)", index);
    } else if (!cJSON_IsObject(tree)) {
        rc = bb_fail(err, BB_ERR_INVALID_RESPONSE, "result: must be a JSON object or a list of objects");
    }
    if (rc == 0)
        rc = bb_wire_check_values(tree, limits, BB_ERR_INVALID_RESPONSE, "result", err);
    cJSON_Delete(tree);
    return rc;
}

static int parse_fields(const cJSON *root, const bb_limits *limits, bb_wire_response *out,
                        bb_error **err)
{
    field_ctx f = {root, err};
    if (!cJSON_IsObject(root))
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: must be a JSON object");
    const char *twice = NULL;
    int dup = bb_wire_duplicate_key(root, &twice);
    if (dup < 0)
        return bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    if (dup > 0) {
        char shown[48];
        bb_wire_printable(twice, shown, sizeof shown);
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: key '%s' appears twice", shown);
    }
    const cJSON *success = cJSON_GetObjectItemCaseSensitive(root, "success");
    /* A Roboflow deployment leaves `success` out of some failures (its NameError for a
     * missing function): no `success` but an `error_type` string reads as a failure. */
    if (!success && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "error_type")))
        out->success = 0;
    else if (!cJSON_IsBool(success))
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: 'success' must be true or false");
    else
        out->success = cJSON_IsTrue(success);

    const cJSON *result, *out_text, *err_text, *error, *error_type, *function, *traceback, *version;
    if (get_optional_string(&f, "result", &result) < 0 || get_optional_string(&f, "stdout", &out_text) < 0 ||
        get_optional_string(&f, "stderr", &err_text) < 0 || get_optional_string(&f, "error", &error) < 0 ||
        get_optional_string(&f, "error_type", &error_type) < 0 ||
        get_optional_string(&f, "function_name", &function) < 0 ||
        get_optional_string(&f, "traceback", &traceback) < 0 ||
        get_optional_string(&f, "runtime_version", &version) < 0)
        return -1;
    const cJSON *line = cJSON_GetObjectItemCaseSensitive(root, "line_number");
    if (line && !cJSON_IsNull(line)) {
        double v = cJSON_IsNumber(line) ? line->valuedouble : -1;
        if (!cJSON_IsNumber(line) || v != (double)(long long)v || v < 0 || v > INT_MAX)
            return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                           "response: 'line_number' must be a non-negative integer or null");
        out->line_number = (int)v;
    }
    if (version) {
        if (!valid_runtime_version(version->valuestring))
            return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                           "response: 'runtime_version' is not a version string");
        if (!(out->runtime_version = strdup(version->valuestring)))
            return bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    }
    if (parse_denied(&f, out) < 0)
        return -1;

    out->stdout_text = copy_cut(out_text ? out_text->valuestring : "", limits->max_stream_bytes);
    out->stderr_text = copy_cut(err_text ? err_text->valuestring : "", limits->max_stream_bytes);
    if (!out->stdout_text || !out->stderr_text)
        return bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");

    if (out->success) {
        if (!result)
            return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: success without a 'result' string");
        /* Take the text from the tree instead of copying up to 64 MiB; out owns it
         * now, and bb_wire_parse_response clears out on failure. */
        out->result = result->valuestring;
        ((cJSON *)result)->valuestring = NULL;
        return check_result(out->result, limits, err);
    }
    if (!error_type || !valid_error_type(error_type->valuestring))
        return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                       "response: failure without a valid 'error_type' (1-%d of [A-Za-z0-9_.])",
                       ERROR_TYPE_MAX);
    if (!error)
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: failure without an 'error' string");
    out->error_type = strdup(error_type->valuestring);
    /* The bare str(e) becomes "Error in line N, in F: T: msg" (errtext.c). */
    char *text = bb_errtext_block(error->valuestring, error_type->valuestring, out->line_number,
                                  function ? function->valuestring : NULL);
    out->error = text ? copy_cut(text, ERROR_TEXT_MAX) : NULL;
    free(text);
    if (function)
        out->function_name = copy_cut(function->valuestring, FUNCTION_NAME_MAX);
    if (traceback)
        out->traceback = copy_cut(traceback->valuestring, TRACEBACK_MAX);
    if (!out->error_type || !out->error || (function && !out->function_name) ||
        (traceback && !out->traceback))
        return bb_fail(err, BB_ERR_INTERNAL, "response: out of memory");
    return 0;
}

int bb_wire_parse_response(const char *body, size_t len, const bb_limits *limits,
                           bb_wire_response *out, bb_error **err)
{
    memset(out, 0, sizeof *out);
    bb_limits defaults;
    if (!limits) {
        bb_limits_default(&defaults);
        limits = &defaults;
    }
    size_t max = bb_limits_max_response(limits);
    if (body && len > max)
        return bb_fail(err, BB_ERR_OUTPUT_LIMIT, "response: %zu bytes, over the limit of %zu bytes", len,
                       max);
    cJSON *root = NULL;
    /* The envelope is flat; its list extensions (denied_syscalls, debug_traces of
     * {value: …} entries) hold values of the usual depth one or two levels down. */
    int depth = limits->max_depth < INT_MAX - 2 ? limits->max_depth + 2 : INT_MAX;
    if (parse_backend_json(body, NULL, len, max, depth, "response", &root, err) < 0)
        return -1;
    int rc = parse_fields(root, limits, out, err);
    if (rc == 0)
        rc = bb_wire_take_traces(body, len, root, &out->debug_traces, err);
    cJSON_Delete(root);
    if (rc < 0)
        bb_wire_response_clear(out);
    return rc;
}
