/* fuzz_serve.c: libFuzzer target for the request path of `blockbox serve`: the auth
 * headers, capped gzip inflation in hostile chunks, the envelope checks, ndarray rewriting. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockbox.h"
#include "serve.h"

#define MAX_BODY (256u << 10)

static sv_auth *auth;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("MODAL_TOKEN_ID", "fuzz-key", 1);
    setenv("MODAL_TOKEN_SECRET", "fuzz-secret", 1);
    char why[256];
    auth = sv_auth_load(NULL, why, sizeof why);
    if (!auth || sv_auth_count(auth) != 1)
        abort();
    return 0;
}

/* Layout: [flags][key len][secret len][chunk size][key][secret][body...]
 * flags bit 0: gzip. Headers are NUL-terminated copies, as libmicrohttpd hands them. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    int gzip = data[0] & 1;
    size_t klen = data[1] % 32, slen = data[2] % 32, chunk = (size_t)data[3] * 37 + 1;
    data += 4;
    size -= 4;
    if (klen + slen > size)
        return 0;
    char key[33], secret[33];
    memcpy(key, data, klen);
    key[klen] = '\0';
    memcpy(secret, data + klen, slen);
    secret[slen] = '\0';
    data += klen + slen;
    size -= klen + slen;

    sv_auth_result a = sv_auth_check(auth, key, secret, "ws");
    int right = strcmp(key, "fuzz-key") == 0 && strcmp(secret, "fuzz-secret") == 0;
    if ((a == SV_AUTH_OK) != right)
        abort();
    if ((!klen || !slen || !key[0] || !secret[0]) && a != SV_AUTH_MISSING)
        abort();

    static sv_budget budget = {PTHREAD_MUTEX_INITIALIZER, 0, 2 * MAX_BODY};
    sv_body *b = sv_body_new(gzip, MAX_BODY, &budget);
    if (!b)
        return 0;
    int rc = SV_BODY_OK;
    for (size_t off = 0; off < size && rc == SV_BODY_OK; off += chunk)
        rc = sv_body_feed(b, data + off, size - off < chunk ? size - off : chunk);
    const char *body = NULL;
    size_t len = 0;
    if (rc == SV_BODY_OK)
        rc = sv_body_finish(b, &body, &len);
    if (rc == SV_BODY_OK) {
        if (len > MAX_BODY || body[len] != '\0')
            abort();
        if (!gzip && (len != size || memcmp(body, data, len) != 0))
            abort();
        sv_request rq;
        char why[256];
        int prc = sv_request_parse(body, len, &rq, why, sizeof why);
        if (prc == 0) {
            if (!sv_is_md5(rq.code_hash) || !rq.run_function_name || !rq.inputs_json || !rq.init_name)
                abort();
            if (rq.init_code && !sv_is_md5(rq.init_hash))
                abort();
        } else if (!why[0]) {
            abort();
        }
        sv_request_free(&rq);
        const char *nwhy = NULL;
        char *text = sv_ndarray_to_value(body, 1u << 20, &nwhy);
        if (!text && !nwhy)
            abort();
        free(text);
    } else if (!sv_body_why(b)[0]) {
        abort();
    }
    sv_body_free(b);
    if (sv_budget_used(&budget) != 0)   /* every reserved byte is given back */
        abort();
    return 0;
}
