/* protocol.c: the envelope of Roboflow's remote executor as `blockbox serve` reads and
 * answers it: request checks, md5 code hashes, reply envelopes with bare errors. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "serve.h"

static int fail(char *why, size_t n, const char *msg)
{
    snprintf(why, n, "%s", msg);
    return -1;
}

static void md5_hex(const char *const *parts, const size_t *lens, size_t n_parts, char out[33])
{
    unsigned char d[16];
    unsigned int dn = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_md5(), NULL);
    for (size_t i = 0; ok && i < n_parts; i++)
        ok = EVP_DigestUpdate(c, parts[i], lens[i]);
    ok = ok && EVP_DigestFinal_ex(c, d, &dn) && dn == 16;
    EVP_MD_CTX_free(c);
    if (!ok) {
        out[0] = '\0';
        return;
    }
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int sv_is_md5(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

/* A string, absent or null; anything else is an error. */
static int opt_string(const cJSON *root, const char *key, const char **out, char *why, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || !v->valuestring) {
        snprintf(why, n, "'%s' must be a string", key);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

/* cJSON keeps both copies of a duplicate key and finds the first; Python's json keeps
 * the last. Refusing duplicates means every reader sees the same envelope. */
static int has_duplicate_keys(const cJSON *root)
{
    for (const cJSON *a = root->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return 1;
    return 0;
}

#define SV_MAX_TOP_KEYS 64

/* A \u0000 escape decodes to a NUL that ends the C string: the server would check and
 * run less of a field than a Python reader of the same body sees. Refused. */
static int has_nul_escape(const char *body, size_t len)
{
    for (const char *p = body; (p = memmem(p, len - (size_t)(p - body), "u0000", 5)) != NULL; p += 5) {
        size_t slashes = 0;
        while (p - (ptrdiff_t)slashes > body && p[-1 - (ptrdiff_t)slashes] == '\\')
            slashes++;
        if (slashes % 2)
            return 1;
    }
    return 0;
}

int sv_request_parse(const char *body, size_t len, sv_request *rq, char *why, size_t why_len)
{
    memset(rq, 0, sizeof *rq);
    if (len == 0)
        return fail(why, why_len, "the request body is empty");
    if (memchr(body, '\0', len))
        return fail(why, why_len, "the request body holds a NUL byte");
    if (has_nul_escape(body, len))
        return fail(why, why_len, "the request body holds a \\u0000 escape");
    const char *end = NULL;
    /* len + 1: the body is NUL-terminated (checked above to hold no other NUL), and
     * cJSON requires that NUL inside the length it is given */
    cJSON *root = cJSON_ParseWithLengthOpts(body, len + 1, &end, 1);
    if (!root)
        return fail(why, why_len, "the request body is not JSON");
    rq->root = root;
    if (!cJSON_IsObject(root))
        return fail(why, why_len, "the request body is not a JSON object");
    if (cJSON_GetArraySize(root) > SV_MAX_TOP_KEYS || has_duplicate_keys(root))
        return fail(why, why_len, "the request object has duplicate or too many keys");

    const char *hash = NULL, *fn = NULL, *rv = NULL, *form = NULL;
    if (opt_string(root, "code_hash", &hash, why, why_len) < 0 ||
        opt_string(root, "run_function_name", &fn, why, why_len) < 0 ||
        opt_string(root, "code_str", &rq->code_str, why, why_len) < 0 ||
        opt_string(root, "init_function_code", &rq->init_code, why, why_len) < 0 ||
        opt_string(root, "init_function_name", &rq->init_name, why, why_len) < 0 ||
        opt_string(root, "inputs_json", &rq->inputs_json, why, why_len) < 0 ||
        opt_string(root, "runtime_version", &rv, why, why_len) < 0 ||
        opt_string(root, "ndarray_form", &form, why, why_len) < 0)
        return -1;
    if (rq->code_str && !*rq->code_str)
        rq->code_str = NULL;   /* Roboflow's server reads "" as "no code": hash-only */
    rq->run_function_name = fn && *fn ? fn : "run";
    rq->init_name = rq->init_name && *rq->init_name ? rq->init_name : "init";
    if (!rq->inputs_json)
        rq->inputs_json = "{}";
    if (rv && strcmp(rv, BLOCKBOX_RUNTIME_VERSION) != 0) {
        snprintf(why, why_len, "runtime_version %.32s is not this server's (%s)", rv,
                 BLOCKBOX_RUNTIME_VERSION);
        return -2;   /* a ConfigurationError, not a malformed request */
    }
    if (form && strcmp(form, "data") != 0 && strcmp(form, "value") != 0)
        return fail(why, why_len, "'ndarray_form' must be \"data\" or \"value\"");
    rq->data_form = form && strcmp(form, "data") == 0;

    const cJSON *imports = cJSON_GetObjectItemCaseSensitive(root, "imports");
    if (imports && !cJSON_IsNull(imports)) {
        if (!cJSON_IsArray(imports))
            return fail(why, why_len, "'imports' must be a list of strings");
        for (const cJSON *it = imports->child; it; it = it->next) {
            if (!cJSON_IsString(it) || !it->valuestring)
                return fail(why, why_len, "'imports' must be a list of strings");
            if (rq->n_imports >= SV_MAX_IMPORTS)
                return fail(why, why_len, "more than 1024 import lines");
            rq->imports[rq->n_imports++] = it->valuestring;
        }
    }
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(root, "workflow_context");
    if (ctx && !cJSON_IsNull(ctx)) {
        if (!cJSON_IsObject(ctx))
            return fail(why, why_len, "'workflow_context' must be an object");
        rq->context_json = cJSON_PrintUnformatted(ctx);
        if (!rq->context_json)
            return fail(why, why_len, "out of memory");
    }
    if (rq->init_code && !*rq->init_code)
        rq->init_code = NULL;
    if (rq->init_code) {
        const char *parts[] = {rq->init_code, "\n", rq->init_name};
        size_t lens[] = {strlen(rq->init_code), 1, strlen(rq->init_name)};
        md5_hex(parts, lens, 3, rq->init_hash);
    } else {
        const char *ih = NULL;
        if (opt_string(root, "init_code_hash", &ih, why, why_len) < 0)
            return -1;
        if (ih && !sv_is_md5(ih))
            return fail(why, why_len, "'init_code_hash' must be 32 lowercase hex digits");
        if (ih && !rq->code_str)
            snprintf(rq->init_hash, sizeof rq->init_hash, "%s", ih);
    }

    if (rq->code_str) {
        /* The server's own hash names the block: md5(code + "\n" + "\n".join(imports)). */
        const char *parts[2 * SV_MAX_IMPORTS + 2];
        size_t lens[2 * SV_MAX_IMPORTS + 2], k = 0;
        parts[k] = rq->code_str;
        lens[k++] = strlen(rq->code_str);
        parts[k] = "\n";
        lens[k++] = 1;
        for (size_t i = 0; i < rq->n_imports; i++) {
            if (i) {
                parts[k] = "\n";
                lens[k++] = 1;
            }
            parts[k] = rq->imports[i];
            lens[k++] = strlen(rq->imports[i]);
        }
        md5_hex(parts, lens, k, rq->code_hash);
        if (!rq->code_hash[0])
            return fail(why, why_len, "md5 is not available");
        if (hash && strcmp(hash, rq->code_hash) != 0)
            return fail(why, why_len, "'code_hash' is not the md5 of the code and imports");
    } else {
        if (!hash)
            return fail(why, why_len, "the request must include either 'code_str' or 'code_hash'");
        if (!sv_is_md5(hash))
            return fail(why, why_len, "'code_hash' must be 32 lowercase hex digits");
        memcpy(rq->code_hash, hash, 33);
    }
    return 0;
}

void sv_request_free(sv_request *rq)
{
    cJSON_Delete(rq->root);
    free(rq->context_json);
    memset(rq, 0, sizeof *rq);
}

const char *sv_bare_error(const bb_error *err)
{
    const char *msg = bb_error_message(err);
    if (!msg)
        return "";
    if (bb_error_get_kind(err) != BB_ERR_BLOCK || bb_error_line(err) <= 0 ||
        strncmp(msg, "Error in line ", 14) != 0)
        return msg;
    const char *fn = bb_error_function(err);
    const char *type = bb_error_type_name(err);
    const char *p = msg + 14;
    p += strcspn(p, ",");
    if (strncmp(p, ", in ", 5) != 0)
        return msg;
    p += 5;
    if (!fn || strncmp(p, fn, strlen(fn)) != 0 || strncmp(p + strlen(fn), ": ", 2) != 0)
        return msg;
    p += strlen(fn) + 2;
    size_t tn = type ? strlen(type) : 0;
    if (tn && strncmp(p, type, tn) == 0) {
        if (p[tn] == '\0')
            return p + tn;             /* str(e) was empty */
        if (strncmp(p + tn, ": ", 2) == 0)
            return p + tn + 2;
    }
    return p;
}

static char *finish(cJSON *o, size_t *len)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (text && len)
        *len = strlen(text);
    return text;
}

static void add_stream(cJSON *o, const char *key, const char *text)
{
    if (text && *text)
        cJSON_AddStringToObject(o, key, text);
    else
        cJSON_AddNullToObject(o, key);
}

static void add_denied(cJSON *o, const bb_result *res)
{
    const char *d = bb_result_denied_syscalls(res);
    if (!d || !*d)
        return;
    cJSON *list = cJSON_AddArrayToObject(o, "denied_syscalls");
    char name[64];
    for (const char *p = d; list && *p;) {
        size_t n = strcspn(p, ",");
        if (n > 0 && n < sizeof name) {
            memcpy(name, p, n);
            name[n] = '\0';
            cJSON_AddItemToArray(list, cJSON_CreateString(name));
        }
        p += n;
        if (*p == ',')
            p++;
    }
}

static void add_error_fields(cJSON *o, const bb_error *err)
{
    cJSON_AddStringToObject(o, "error", sv_bare_error(err));
    cJSON_AddStringToObject(o, "error_type", bb_error_type_name(err));
    int line = bb_error_line(err);
    if (line > 0)
        cJSON_AddNumberToObject(o, "line_number", line);
    else
        cJSON_AddNullToObject(o, "line_number");
    const char *fn = bb_error_function(err);
    if (fn)
        cJSON_AddStringToObject(o, "function_name", fn);
    else
        cJSON_AddNullToObject(o, "function_name");
    const char *tb = bb_error_traceback(err);
    if (tb)
        cJSON_AddStringToObject(o, "traceback", tb);
}

char *sv_reply_result(const bb_result *res, int data_form, size_t max_value_bytes, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (bb_result_ok(res)) {
        const char *outputs = bb_result_outputs(res);
        char *translated = NULL;
        if (!data_form && strstr(outputs, "\"ndarray\"")) {
            const char *why = NULL;
            translated = sv_ndarray_to_value(outputs, max_value_bytes, &why);
            if (!translated) {
                cJSON_AddFalseToObject(o, "success");
                cJSON_AddStringToObject(o, "error", why ? why : "out of memory");
                cJSON_AddStringToObject(o, "error_type", "OutputLimit");
                cJSON_AddNullToObject(o, "line_number");
                cJSON_AddNullToObject(o, "function_name");
                add_stream(o, "stdout", bb_result_stdout(res));
                add_stream(o, "stderr", bb_result_stderr(res));
                return finish(o, len);
            }
        }
        cJSON_AddTrueToObject(o, "success");
        cJSON_AddStringToObject(o, "result", translated ? translated : outputs);
        free(translated);
    } else {
        cJSON_AddFalseToObject(o, "success");
        add_error_fields(o, bb_result_error(res));
    }
    add_stream(o, "stdout", bb_result_stdout(res));
    add_stream(o, "stderr", bb_result_stderr(res));
    add_denied(o, res);
    /* blockbox's extension (Roboflow's client ignores it): checked by the core already */
    const char *traces = bb_result_debug_traces(res);
    if (traces && strcmp(traces, "[]") != 0)
        cJSON_AddRawToObject(o, "debug_traces", traces);
    cJSON_AddStringToObject(o, "runtime_version", BLOCKBOX_RUNTIME_VERSION);
    return finish(o, len);
}

char *sv_reply_error(const bb_error *err, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddFalseToObject(o, "success");
    add_error_fields(o, err);
    cJSON_AddNullToObject(o, "stdout");
    cJSON_AddNullToObject(o, "stderr");
    cJSON_AddStringToObject(o, "runtime_version", BLOCKBOX_RUNTIME_VERSION);
    return finish(o, len);
}

char *sv_reply_simple(const char *error_type, const char *message, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddFalseToObject(o, "success");
    cJSON_AddStringToObject(o, "error", message);
    cJSON_AddStringToObject(o, "error_type", error_type);
    cJSON_AddNullToObject(o, "line_number");
    cJSON_AddNullToObject(o, "function_name");
    cJSON_AddNullToObject(o, "stdout");
    cJSON_AddNullToObject(o, "stderr");
    return finish(o, len);
}
