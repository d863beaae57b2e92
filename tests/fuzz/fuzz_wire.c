/* fuzz_wire.c: libFuzzer target for the serializer's hostile-input paths: response
 * parsing, inputs/context checks, the strict scanner and base64, with invariants checked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "blockbox.h"
#include "json_scan.h"
#include "wire.h"

static void check_response(const char *text, size_t len)
{
    bb_limits limits;
    bb_limits_default(&limits);
    limits.max_stream_bytes = 256;
    limits.max_result_bytes = 4096;
    limits.max_depth = 16;
    limits.max_values = 512;
    bb_wire_response r;
    bb_error *err = NULL;
    if (bb_wire_parse_response(text, len, &limits, &r, &err) == 0) {
        if (!r.stdout_text || !r.stderr_text || !r.denied_syscalls)
            abort();
        if (strlen(r.stdout_text) > limits.max_stream_bytes || strlen(r.stderr_text) > limits.max_stream_bytes)
            abort();
        if (r.success ? !r.result || strlen(r.result) > limits.max_result_bytes : !r.error_type || !r.error)
            abort();
        /* the result handed on is this side's canonical text: scanning it again gives it back */
        if (r.success) {
            bb_json_rules rules = {.max_depth = 16, .max_values = 512, .kind = BB_ERR_INVALID_RESPONSE,
                                   .limit_kind = BB_ERR_OUTPUT_LIMIT, .what = "again"};
            bb_buf again = {0};
            size_t values = 0;
            bb_error *e2 = NULL;
            if (bb_json_scan_text(r.result, strlen(r.result), &rules, &values, &again, &e2) < 0 ||
                strcmp(again.data, r.result) != 0)
                abort();
            bb_buf_free(&again);
        }
        bb_wire_response_clear(&r);
    } else {
        if (!err || r.result || r.stdout_text)
            abort();
        bb_error_free(err);
    }
}

static void check_inputs(const char *text, size_t len)
{
    bb_limits limits;
    bb_limits_default(&limits);
    limits.max_depth = 16;
    bb_error *err = NULL;
    if (bb_wire_check_inputs(text, len, &limits, &err) < 0) {
        if (!err)
            abort();
        bb_error_free(err);
        err = NULL;
    }
    /* the context takes a C string */
    char *copy = strndup(text, len);
    if (!copy)
        return;
    if (bb_wire_check_context(copy, &limits, &err) < 0) {
        if (!err)
            abort();
        bb_error_free(err);
    }
    free(copy);
}

/* The strict scanner: whatever it accepts, its canonical text is accepted again, is
 * its own canonical form, and cJSON parses it. */
static void check_scanner(const char *text, size_t len)
{
    bb_json_rules rules = {.max_depth = 16, .max_values = 4096, .kind = BB_ERR_INVALID_REQUEST,
                           .limit_kind = BB_ERR_OUTPUT_LIMIT, .what = "fuzz", .nul_to_fffd = 1};
    bb_buf canon = {0};
    size_t values = 0;
    bb_error *err = NULL;
    if (bb_json_scan_text(text, len, &rules, &values, &canon, &err) < 0) {
        if (!err)
            abort();
        bb_error_free(err);
        bb_buf_free(&canon);
        return;
    }
    if (values == 0 || values > rules.max_values || !canon.data)
        abort();
    bb_buf again = {0};
    size_t values2 = 0;
    if (bb_json_scan_text(canon.data, canon.len, &rules, &values2, &again, &err) < 0 || values2 != values ||
        again.len != canon.len || memcmp(again.data, canon.data, canon.len) != 0)
        abort();
    cJSON *tree = cJSON_ParseWithLength(canon.data, canon.len);
    if (!tree)
        abort();
    cJSON_Delete(tree);
    bb_buf_free(&again);
    bb_buf_free(&canon);
}

static void check_base64(const char *text, size_t len)
{
    long long n = bb_base64_check(text, len);
    unsigned char *bytes = NULL;
    size_t out_len = 0;
    int rc = bb_base64_decode(text, len, &bytes, &out_len);
    if ((n < 0) != (rc < 0) || (rc == 0 && (long long)out_len != n))
        abort();
    if (rc == 0) {
        /* only the canonical spelling is accepted, so encoding gives the text back */
        bb_buf again = {0};
        if (bb_base64_encode(bytes, out_len, &again) < 0 || again.len != len ||
            (len && memcmp(again.data, text, len) != 0))
            abort();
        bb_buf_free(&again);
    }
    free(bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 4) {
    case 0:
        check_response(text, len);
        break;
    case 1:
        check_inputs(text, len);
        break;
    case 2:
        check_scanner(text, len);
        break;
    default:
        check_base64(text, len);
        break;
    }
    return 0;
}
