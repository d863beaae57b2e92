/* modal_util.c: gzip request bodies, Retry-After and Server-Timing parsing, backoff
 * with full jitter, the call deadline, and UnknownCodeHash detection for the modal driver. */
#include "modal_util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "blockbox/driver.h"

int bb_modal_gzip(const void *in, size_t len, bb_buf *out)
{
    out->len = 0;
    if (len > (size_t)UINT32_MAX)
        return -1;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* windowBits 15 + 16: a gzip wrapper; level 1: a few hundred MB/s, enough to halve JSON */
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    uLong bound = deflateBound(&zs, (uLong)len);
    if (bb_buf_reserve(out, bound) < 0) {
        deflateEnd(&zs);
        return -1;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out->data;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    size_t produced = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END)
        return -1;
    out->len = produced;
    out->data[out->len] = '\0';
    return 0;
}

long bb_modal_parse_retry_after(const char *value)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value < '0' || *value > '9')
        return -1;
    long seconds = 0;
    for (; *value >= '0' && *value <= '9'; value++) {
        seconds = seconds * 10 + (*value - '0');
        if (seconds > BB_MODAL_RETRY_AFTER_MAX_MS / 1000)
            return BB_MODAL_RETRY_AFTER_MAX_MS + 1;
    }
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value)
        return -1;
    return seconds * 1000;
}

long bb_modal_backoff_ms(int attempt, unsigned random32)
{
    long cap = BB_MODAL_BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && cap < BB_MODAL_BACKOFF_CAP_MS; i++)
        cap *= 2;
    if (cap > BB_MODAL_BACKOFF_CAP_MS)
        cap = BB_MODAL_BACKOFF_CAP_MS;
    return (long)(random32 % (unsigned)(cap + 1));
}

long bb_modal_deadline_ms(long timeout_ms)
{
    if (timeout_ms < 0)
        timeout_ms = 0;
    /* Cold start (the endpoint container, then a fresh sandbox) plus the network: the
     * app starts the block's clock only once its sandbox is up. T = 20 s -> 30 s, the
     * timeout Roboflow's own client gives a call. */
    long margin = 2000 + timeout_ms / 2;
    if (margin > 10000)
        margin = 10000;
    return timeout_ms + margin;
}

int bb_modal_is_unknown_code_hash(const char *body, size_t len)
{
    static const char needle[] = "UnknownCodeHash";
    if (!body || !memmem(body, len, needle, sizeof needle - 1))
        return 0;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root)
        return 0;
    const cJSON *success = cJSON_GetObjectItemCaseSensitive(root, "success");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "error_type");
    /* no `success` reads as a failure, as the core reads it (Roboflow's replies) */
    int unknown = cJSON_IsObject(root) && (cJSON_IsFalse(success) || !success) && cJSON_IsString(type) &&
                  strcmp(type->valuestring, needle) == 0;
    cJSON_Delete(root);
    return unknown;
}

long bb_modal_parse_server_timing(const char *value)
{
    if (!value)
        return -1;
    const char *end = strchr(value, ',');
    const char *dur = strstr(value, "dur=");
    if (!dur || (end && dur > end))
        return -1;
    errno = 0;
    char *stop;
    double ms = strtod(dur + 4, &stop);
    if (errno || stop == dur + 4 || ms < 0 || ms > 1e9)
        return -1;
    return (long)(ms * 1000.0 + 0.5);
}

bb_error *bb_modal_trusted_error(const char *header, const char *body, size_t len)
{
    static const bb_error_kind trusted[] = {BB_ERR_TIMEOUT, BB_ERR_MEMORY_LIMIT, BB_ERR_SANDBOX_CRASH,
                                            BB_ERR_OUTPUT_LIMIT, BB_ERR_BACKEND_UNAVAILABLE,
                                            BB_ERR_INVALID_RESPONSE};
    if (!header)
        return NULL;
    bb_error_kind kind = bb_error_kind_from_name(header);
    size_t i = 0;
    while (i < sizeof trusted / sizeof trusted[0] && trusted[i] != kind)
        i++;
    if (i == sizeof trusted / sizeof trusted[0])
        return NULL;
    char text[512] = "the Modal app reported this failure";
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsString(error) && error->valuestring && *error->valuestring) {
        size_t n = 0;
        for (const char *p = error->valuestring; *p && n < sizeof text - 1; p++)
            text[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        text[n] = '\0';
    }
    cJSON_Delete(root);
    return bb_error_new(kind, "%s", text);
}
