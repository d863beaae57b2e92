/* modal_url.c: builds the Modal endpoint URL of a workspace (DESIGN §4 label rule,
 * MODAL_WEB_ENDPOINT_URL override) and checks URLs before the driver talks to them. */
#include "modal_url.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

static int is_slug_char(char c, int allow_underscore)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           (allow_underscore && c == '_');
}

int bb_modal_check_workspace_id(const char *workspace_id, bb_error **err)
{
    if (!workspace_id || !*workspace_id)
        return bb_fail(err, BB_ERR_CONFIGURATION, "the workspace id is empty");
    size_t n = strlen(workspace_id);
    if (n > BB_MODAL_MAX_WORKSPACE_ID)
        return bb_fail(err, BB_ERR_CONFIGURATION, "the workspace id is %zu characters long (at most %d)",
                       n, BB_MODAL_MAX_WORKSPACE_ID);
    for (size_t i = 0; i < n; i++)
        if (!is_slug_char(workspace_id[i], 1))
            return bb_fail(err, BB_ERR_CONFIGURATION,
                           "the workspace id may hold only letters, digits, '-' and '_' (character %zu "
                           "is not one)",
                           i + 1);
    return 0;
}

int bb_modal_app_name(const char *workspace_id, char *out, size_t size)
{
    int n = snprintf(out, size, "inference-workspace-%s", workspace_id);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int bb_modal_label(const char *workspace_id, char out[BB_MODAL_LABEL_SIZE])
{
    if (bb_modal_check_workspace_id(workspace_id, NULL) < 0)
        return -1;
    char full[BB_MODAL_MAX_WORKSPACE_ID + 64];
    int n = snprintf(full, sizeof full, "inference-workspace-%s-execute", workspace_id);
    if (n < 0 || (size_t)n >= sizeof full)
        return -1;
    if (n <= BB_MODAL_MAX_LABEL) {
        memcpy(out, full, (size_t)n + 1);
        return 0;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (!EVP_Digest(full, (size_t)n, digest, &dlen, EVP_sha256(), NULL) || dlen < 3)
        return -1;
    memcpy(out, full, BB_MODAL_MAX_LABEL);
    snprintf(out + BB_MODAL_MAX_LABEL, BB_MODAL_LABEL_SIZE - BB_MODAL_MAX_LABEL, "-%02x%02x%02x",
             digest[0], digest[1], digest[2]);
    return 0;
}

int bb_modal_host_is_loopback(const char *host)
{
    if (!host || !*host)
        return 0;
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
        return 1;
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < 64) {
        char inner[64];
        memcpy(inner, host + 1, n - 2);
        inner[n - 2] = '\0';
        struct in6_addr v6;
        if (strchr(inner, '%') || inet_pton(AF_INET6, inner, &v6) != 1)
            return 0;
        if (IN6_IS_ADDR_LOOPBACK(&v6))
            return 1;
        if (IN6_IS_ADDR_V4MAPPED(&v6))
            return v6.s6_addr[12] == 127;
    }
    return 0;
}

int bb_modal_check_url(const char *url, const char *what, bb_error_kind kind, bb_modal_url_info *info,
                       bb_error **err)
{
    bb_modal_url_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (!url || !*url)
        return bb_fail(err, kind, "%s is empty", what);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return bb_fail(err, kind, "%s contains a blank, a control or a non-ASCII character", what);
    CURLU *u = curl_url();
    if (!u)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    int rc = -1;
    char *scheme = NULL, *host = NULL, *user = NULL, *password = NULL, *port = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        bb_fail(err, kind, "%s is not an absolute URL", what);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        bb_fail(err, kind, "%s has no host", what);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        /* never echo the URL: its user part may be a credential */
        bb_fail(err, kind, "%s must not carry a user name or password", what);
        goto out;
    }
    if (strlen(host) >= sizeof info->host) {
        bb_fail(err, kind, "%s has an over-long host name", what);
        goto out;
    }
    strcpy(info->host, host);
    info->loopback = bb_modal_host_is_loopback(host);
    if (strcasecmp(scheme, "https") == 0) {
        info->plain_http = 0;
    } else if (strcasecmp(scheme, "http") == 0) {
        info->plain_http = 1;
        if (!info->loopback) {
            bb_fail(err, kind,
                    "%s uses plain http to %s: only loopback addresses may be reached without TLS",
                    what, info->host);
            goto out;
        }
    } else {
        bb_fail(err, kind, "%s must be an https URL (scheme '%.16s' refused)", what, scheme);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK && port)
        info->port = strtol(port, NULL, 10);
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static int check_modal_workspace_name(const char *name, bb_error **err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63)
        return bb_fail(err, BB_ERR_CONFIGURATION, "MODAL_WORKSPACE_NAME must be 1 to 63 characters");
    for (size_t i = 0; i < n; i++)
        if (!is_slug_char(name[i], 0))
            return bb_fail(err, BB_ERR_CONFIGURATION,
                           "MODAL_WORKSPACE_NAME may hold only letters, digits and '-'");
    return 0;
}

static char *override_with_workspace(const char *override_url, const char *workspace_id, bb_error **err)
{
    if (bb_modal_check_url(override_url, "MODAL_WEB_ENDPOINT_URL", BB_ERR_CONFIGURATION, NULL, err) < 0)
        return NULL;
    if (!workspace_id)
        return strdup(override_url);
    CURLU *u = curl_url();
    char *escaped = curl_easy_escape(NULL, workspace_id, 0);
    char *param = NULL, *built = NULL, *result = NULL;
    if (!u || !escaped || asprintf(&param, "workspace_id=%s", escaped) < 0) {
        param = NULL;
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, override_url, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_QUERY, param, CURLU_APPENDQUERY) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &built, 0) != CURLUE_OK) {
        bb_fail(err, BB_ERR_CONFIGURATION, "MODAL_WEB_ENDPOINT_URL cannot take a workspace_id parameter");
        goto out;
    }
    result = strdup(built);
    if (!result)
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
out:
    curl_free(built);
    free(param);
    curl_free(escaped);
    curl_url_cleanup(u);
    return result;
}

char *bb_modal_endpoint_url(const char *override_url, const char *modal_workspace_name,
                            const char *workspace_id, bb_error **err)
{
    if (workspace_id && bb_modal_check_workspace_id(workspace_id, err) < 0)
        return NULL;
    if (override_url)
        return override_with_workspace(override_url, workspace_id, err);
    if (!workspace_id) {
        bb_fail(err, BB_ERR_CONFIGURATION, "the Modal endpoint host needs a workspace id");
        return NULL;
    }
    if (check_modal_workspace_name(modal_workspace_name, err) < 0)
        return NULL;
    char label[BB_MODAL_LABEL_SIZE];
    if (bb_modal_label(workspace_id, label) < 0) {
        bb_fail(err, BB_ERR_CONFIGURATION, "cannot build the endpoint label");
        return NULL;
    }
    char *url = NULL;
    if (asprintf(&url, "https://%s--%s.modal.run", modal_workspace_name, label) < 0) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return url;
}

void bb_modal_origin_of(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    snprintf(out, size, "(endpoint)");
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port)
            snprintf(out, size, "%s://%s:%s", scheme, host, port);
        else
            snprintf(out, size, "%s://%s", scheme, host);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}
