/* auth.c: who may call `blockbox serve`: Modal-Key/Modal-Secret pairs from the
 * environment and a tokens file, compared in constant time, optionally per workspace. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "serve.h"

#define SV_MAX_TOKENS 4096
#define SV_MAX_TOKEN_LEN 512
#define SV_MAX_TOKENS_FILE (4u << 20)

/* Only digests of the secrets are kept: comparing digests of equal length in
 * constant time leaks neither the content nor the length of a configured token. */
typedef struct sv_token {
    unsigned char key[32], secret[32];
    char **workspaces;   /* NULL: every workspace */
    size_t n_workspaces;
} sv_token;

struct sv_auth {
    sv_token *tokens;
    size_t n;
};

static void digest(const char *s, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

/* A token travels in an HTTP header: printable ASCII without blanks. */
static int token_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SV_MAX_TOKEN_LEN)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return 0;
    return 1;
}

int sv_workspace_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static int add_token(sv_auth *a, const char *key, const char *secret, char *why, size_t why_len,
                     const char *where)
{
    if (!token_ok(key) || !token_ok(secret)) {
        snprintf(why, why_len, "%s: a token must be 1-%d printable ASCII characters without blanks",
                 where, SV_MAX_TOKEN_LEN);
        return -1;
    }
    if (a->n >= SV_MAX_TOKENS) {
        snprintf(why, why_len, "%s: more than %d tokens", where, SV_MAX_TOKENS);
        return -1;
    }
    sv_token *t = realloc(a->tokens, (a->n + 1) * sizeof *t);
    if (!t) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    a->tokens = t;
    memset(&t[a->n], 0, sizeof t[a->n]);
    digest(key, t[a->n].key);
    digest(secret, t[a->n].secret);
    a->n++;
    return 0;
}

static int bind_workspaces(sv_token *t, char *list, char *why, size_t why_len, const char *where)
{
    for (char *save = NULL, *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (!sv_workspace_ok(w)) {
            snprintf(why, why_len, "%s: a workspace id must be [A-Za-z0-9_-]{1,128}", where);
            return -1;
        }
        char **ws = realloc(t->workspaces, (t->n_workspaces + 1) * sizeof *ws);
        if (!ws || !(ws[t->n_workspaces] = strdup(w))) {
            if (ws)
                t->workspaces = ws;
            snprintf(why, why_len, "out of memory");
            return -1;
        }
        t->workspaces = ws;
        t->n_workspaces++;
    }
    if (t->n_workspaces == 0) {
        snprintf(why, why_len, "%s: an empty workspace list", where);
        return -1;
    }
    return 0;
}

/* Format: one "KEY SECRET [WORKSPACE,WORKSPACE...]" a line; '#' starts a comment line.
 * The file must not be readable by group or others (it holds secrets). */
static int load_file(sv_auth *a, const char *path, char *why, size_t why_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(why, why_len, "cannot open the tokens file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "the tokens file %s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(why, why_len, "the tokens file %s is readable by group or others (mode %03o); "
                 "chmod 600 it", path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    if (st.st_size > (off_t)SV_MAX_TOKENS_FILE) {
        snprintf(why, why_len, "the tokens file %s is over %u bytes", path, SV_MAX_TOKENS_FILE);
        close(fd);
        return -1;
    }
    char *text = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (text && got < (size_t)st.st_size) {
        ssize_t r = read(fd, text + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!text || got != (size_t)st.st_size) {
        free(text);
        snprintf(why, why_len, "cannot read the tokens file %s", path);
        return -1;
    }
    text[got] = '\0';
    int rc = 0, line_no = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        char *p = line + strspn(line, " \t");
        if (*p == '\0' || *p == '#')
            continue;
        char where[64];
        snprintf(where, sizeof where, "tokens file line %d", line_no);
        char *s2 = NULL;
        char *key = strtok_r(p, " \t", &s2), *secret = strtok_r(NULL, " \t", &s2);
        char *wss = strtok_r(NULL, " \t", &s2), *extra = strtok_r(NULL, " \t", &s2);
        if (!key || !secret || extra) {
            snprintf(why, why_len, "%s: expected KEY SECRET [WORKSPACE,...]", where);
            rc = -1;
        } else if (add_token(a, key, secret, why, why_len, where) < 0) {
            rc = -1;
        } else if (wss && bind_workspaces(&a->tokens[a->n - 1], wss, why, why_len, where) < 0) {
            rc = -1;
        }
    }
    OPENSSL_cleanse(text, got);
    free(text);
    return rc;
}

sv_auth *sv_auth_load(const char *tokens_file, char *why, size_t why_len)
{
    sv_auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    const char *id = getenv("MODAL_TOKEN_ID"), *secret = getenv("MODAL_TOKEN_SECRET");
    int have_id = id && *id, have_secret = secret && *secret;
    if (have_id != have_secret) {
        snprintf(why, why_len, "MODAL_TOKEN_ID and MODAL_TOKEN_SECRET must be set together");
        sv_auth_free(a);
        return NULL;
    }
    if (have_id && add_token(a, id, secret, why, why_len, "MODAL_TOKEN_ID/MODAL_TOKEN_SECRET") < 0) {
        sv_auth_free(a);
        return NULL;
    }
    if (tokens_file && load_file(a, tokens_file, why, why_len) < 0) {
        sv_auth_free(a);
        return NULL;
    }
    return a;
}

size_t sv_auth_count(const sv_auth *a)
{
    return a ? a->n : 0;
}

sv_auth_result sv_auth_check(const sv_auth *a, const char *key, const char *secret,
                             const char *workspace)
{
    if (!key || !secret || !*key || !*secret)
        return SV_AUTH_MISSING;
    if (strlen(key) > SV_MAX_TOKEN_LEN || strlen(secret) > SV_MAX_TOKEN_LEN)
        return SV_AUTH_WRONG;
    unsigned char k[32], s[32];
    digest(key, k);
    digest(secret, s);
    /* Every configured pair is compared (no early exit); the match is chosen
     * without branching on secret data. */
    size_t match = (size_t)-1;
    for (size_t i = 0; i < a->n; i++) {
        int eq = (CRYPTO_memcmp(k, a->tokens[i].key, 32) | CRYPTO_memcmp(s, a->tokens[i].secret, 32)) == 0;
        size_t mask = (size_t)0 - (size_t)(eq & (match == (size_t)-1));
        match = (match & ~mask) | (i & mask);
    }
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(s, sizeof s);
    if (match == (size_t)-1)
        return SV_AUTH_WRONG;
    const sv_token *t = &a->tokens[match];
    if (!t->workspaces)
        return SV_AUTH_OK;
    for (size_t i = 0; workspace && i < t->n_workspaces; i++)
        if (strcmp(t->workspaces[i], workspace) == 0)
            return SV_AUTH_OK;
    return SV_AUTH_FORBIDDEN;
}

void sv_auth_free(sv_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        for (size_t j = 0; j < a->tokens[i].n_workspaces; j++)
            free(a->tokens[i].workspaces[j]);
        free(a->tokens[i].workspaces);
    }
    if (a->tokens)
        OPENSSL_cleanse(a->tokens, a->n * sizeof *a->tokens);
    free(a->tokens);
    free(a);
}
