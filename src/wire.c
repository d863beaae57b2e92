/* wire.c: the request side of DESIGN §3: code, import, name, inputs and context checks,
 * the code hash, and building request envelopes (responses are wire_reply.c). */
#include "wire.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json_text.h"
#include "wire_internal.h"

#define IMPORT_LINE_MAX 4096
#define IDENTIFIER_MAX 128

static int is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

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

typedef struct text_inputs {
    const char *text;
    size_t len;
} text_inputs;

static int write_text_inputs(void *ctx, bb_buf *out, bb_error **err)
{
    const text_inputs *t = ctx;
    (void)err;
    return bb_buf_json_string(out, t->text, t->len);
}

int bb_wire_build_request(const bb_wire_block *block, int with_code, const char *inputs_json,
                          size_t inputs_len, const char *context_json, bb_buf *out,
                          bb_error **err)
{
    if (inputs_json && inputs_len > ((size_t)-1) / 8)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "inputs: too large");
    text_inputs t = {inputs_json, inputs_len};
    return bb_wire_build_request_with(block, with_code, inputs_json ? write_text_inputs : NULL, &t,
                                      inputs_json ? inputs_len + inputs_len / 8 : 0, context_json, out,
                                      err);
}

int bb_wire_build_request_with(const bb_wire_block *wire, int with_code, bb_wire_inputs_fn inputs,
                               void *ctx, size_t inputs_hint, const char *context_json, bb_buf *out,
                               bb_error **err)
{
    if (!wire || !out)
        return bb_fail(err, BB_ERR_INTERNAL, "request: no block or buffer");
    const bb_block_info *block = &wire->info;
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
    /* Reserve once for the big parts so a tens-of-MB input is not copied by doubling. */
    size_t code_len = strlen(block->run_code), rest = (context_json ? strlen(context_json) : 2) + 1024;
    if (inputs_hint > (size_t)-1 / 2 - code_len - rest)
        return bb_fail(err, BB_ERR_INVALID_REQUEST, "inputs: too large");
    bb_buf_reserve(out, code_len + inputs_hint + rest);

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
    if (inputs) {
        put_key(out, &first, "inputs_json");
        if (inputs(ctx, out, err) < 0)
            return out->failed ? bb_fail(err, BB_ERR_INTERNAL, "request: out of memory") : -1;
    }
    put_key(out, &first, "workflow_context");
    bb_buf_puts(out, context_json ? context_json : "{}");
    put_string_field(out, &first, "runtime_version", BLOCKBOX_RUNTIME_VERSION);
    if (wire->max_depth > 0) {
        /* extension: the runtime refuses outputs nested deeper as the block's own error */
        put_key(out, &first, "limits");
        bb_buf_printf(out, "{\"max_depth\":%d}", wire->max_depth);
    }
    bb_buf_putc(out, '}');
    if (out->failed)
        return bb_fail(err, BB_ERR_INTERNAL, "request: out of memory");
    return 0;
}

/* ---- inputs and context ----------------------------------------------------------- */

static int check_object_text(const char *text, size_t len, const bb_limits *limits, const char *what,
                             bb_error **err)
{
    bb_limits defaults;
    if (!limits) {
        bb_limits_default(&defaults);
        limits = &defaults;
    }
    cJSON *tree = NULL;
    if (bb_wire_parse_json(text, len, limits->max_input_bytes, limits->max_depth, limits->max_values,
                           BB_ERR_INVALID_REQUEST, what, &tree, err) < 0)
        return -1;
    int rc;
    if (!cJSON_IsObject(tree))
        rc = bb_fail(err, BB_ERR_INVALID_REQUEST, "%s: must be a JSON object {name: value}", what);
    else
        rc = bb_wire_check_values(tree, limits, BB_ERR_INVALID_REQUEST, what, err);
    cJSON_Delete(tree);
    return rc;
}

int bb_wire_check_inputs(const char *inputs_json, size_t len, const bb_limits *limits, bb_error **err)
{
    return check_object_text(inputs_json, len, limits, "inputs", err);
}

int bb_wire_check_context(const char *context_json, const bb_limits *limits, bb_error **err)
{
    if (!context_json)
        return 0;
    return check_object_text(context_json, strlen(context_json), limits, "workflow_context", err);
}
