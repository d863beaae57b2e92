/* fuzz_wire.c: libFuzzer target for the serializer's hostile-input paths: response
 * parsing, inputs/context checks and base64, with invariants checked on success. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockbox.h"
#include "wire.h"

static void check_response(const char *text, size_t len)
{
    bb_limits limits;
    bb_limits_default(&limits);
    limits.max_stream_bytes = 256;
    limits.max_result_bytes = 4096;
    limits.max_depth = 16;
    bb_wire_response r;
    bb_error *err = NULL;
    if (bb_wire_parse_response(text, len, &limits, &r, &err) == 0) {
        if (!r.stdout_text || !r.stderr_text || !r.denied_syscalls)
            abort();
        if (strlen(r.stdout_text) > limits.max_stream_bytes || strlen(r.stderr_text) > limits.max_stream_bytes)
            abort();
        if (r.success ? !r.result || strlen(r.result) > limits.max_result_bytes : !r.error_type || !r.error)
            abort();
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
    switch (data[0] % 3) {
    case 0:
        check_response(text, len);
        break;
    case 1:
        check_inputs(text, len);
        break;
    default:
        check_base64(text, len);
        break;
    }
    return 0;
}
