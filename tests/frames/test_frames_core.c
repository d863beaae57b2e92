/* test_frames_core.c: the buffer API of the core (issue 12 item 1) on the test "frames"
 * drivers: inputs' and results' buffer references checked, the data-form rewrite. */
#include <blockbox.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "frames.h"
#include "frames_test.h"
#include "wire.h"

static const char *driver_path(void)
{
    const char *p = getenv("BB_TEST_FRAMES_DRIVER");
    ck_assert_msg(p && *p, "BB_TEST_FRAMES_DRIVER is not set: run this test through ctest");
    return p;
}

/* A block on an executor of its own on a frames driver (mode "frames" or "framesjson", and
 * one optional setting); its code never runs: the driver answers. */
static solo solo_on(const char *mode, const char *key, const char *value)
{
    bb_config *cfg = bb_config_new();
    bb_error *err = NULL;
    ck_assert_int_eq(bb_config_set(cfg, "mode", mode, &err), 0);
    ck_assert_int_eq(bb_config_set(cfg, "driver_path", driver_path(), &err), 0);
    if (key)
        ck_assert_int_eq(bb_config_set(cfg, key, value, &err), 0);
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    ck_assert_msg(ex != NULL, "executor: %s", err ? bb_error_message(err) : "?");
    bb_block_spec spec = {.run_code = "def run(self, **kw):\n    return {}\n"};
    bb_block *blk = bb_block_load(ex, &spec, &err);
    ck_assert_msg(blk != NULL, "load: %s", err ? bb_error_message(err) : "?");
    return (solo){ex, blk};
}

/* Buffers the driver handed back and the core has not released yet. */
static long live_buffers(void)
{
    void *h = dlopen(driver_path(), RTLD_NOW | RTLD_LOCAL);
    ck_assert_ptr_nonnull(h);
    long (*live)(void);
    *(void **)&live = dlsym(h, "blockbox_test_frames_live");
    ck_assert_ptr_nonnull(live);
    long n = live();
    dlclose(h);
    return n;
}

static void expect_failure(bb_result *res, bb_error_kind kind, const char *needle)
{
    ck_assert_ptr_nonnull(res);
    const bb_error *e = bb_result_error(res);
    ck_assert_msg(!bb_result_ok(res), "accepted: %s", bb_result_outputs(res));
    ck_assert_msg(bb_error_get_kind(e) == kind, "kind %s, wanted %s: %s", bb_error_kind_name(bb_error_get_kind(e)),
                  bb_error_kind_name(kind), bb_error_message(e));
    ck_assert_msg(strstr(bb_error_message(e), needle), "message \"%s\" lacks \"%s\"", bb_error_message(e), needle);
    ck_assert_uint_eq(bb_result_buffer_count(res), 0);
    bb_result_free(res);
}

static bb_result *run_mode(bb_block *blk, const char *mode)
{
    char inputs[128];
    snprintf(inputs, sizeof inputs, "{\"__frames\": \"%s\"}", mode);
    return bb_block_run_buffers(blk, inputs, NULL, NULL, 0);
}

#define ND(shape, index) "{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":" shape ",\"buffer\":" index "}"

/* A frame in, its inverse out, read in place from the result. */
START_TEST(a_buffer_goes_in_and_one_comes_back)
{
    solo t = solo_on("frames", NULL, NULL);
    enum { H = 108, W = 192 };
    static unsigned char frame[H * W * 3];
    for (size_t i = 0; i < sizeof frame; i++)
        frame[i] = (unsigned char)(i * 7);
    bb_buffer in = {frame, sizeof frame};
    bb_result *res = bb_block_run_buffers(t.blk, "{\"f\": " ND("[108,192,3]", "0") "}", NULL, &in, 1);
    ck_assert_msg(bb_result_ok(res), "%s", bb_error_message(bb_result_error(res)));
    ck_assert_str_eq(bb_result_outputs(res),
                     "{\"n\":1,\"y\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[62208],\"buffer\":0}}");
    ck_assert_uint_eq(bb_result_buffer_count(res), 1);
    size_t len = 0;
    const unsigned char *out = bb_result_buffer(res, 0, &len);
    ck_assert_uint_eq(len, sizeof frame);
    for (size_t i = 0; i < len; i++)
        ck_assert_uint_eq(out[i], 255 - frame[i]);
    ck_assert_ptr_null(bb_result_buffer(res, 1, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(live_buffers(), 1);   /* owned by the result */
    bb_result_free(res);
    ck_assert_int_eq(live_buffers(), 0);
    /* bb_block_run reads JSON only: the driver's buffers come in the data form */
    res = bb_block_run(t.blk, "{\"f\": {\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[3],\"data\":\"AAEC\"}}", NULL);
    ck_assert_msg(bb_result_ok(res), "%s", bb_error_message(bb_result_error(res)));
    ck_assert_str_eq(bb_result_outputs(res),
                     "{\"n\":0,\"y\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[0],\"data\":\"\"}}");
    ck_assert_uint_eq(bb_result_buffer_count(res), 0);
    ck_assert_int_eq(live_buffers(), 0);
    bb_result_free(res);
    solo_free(t);
}
END_TEST

/* Every input reference is checked before a driver sees the call. */
START_TEST(bad_input_references_are_refused)
{
    solo t = solo_on("frames", "max_input_bytes", "1048576");
    unsigned char bytes[64] = {0};
    bb_buffer one = {bytes, 4}, two[2] = {{bytes, 4}, {bytes, 4}};
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[4]", "1") "}", NULL, &one, 1),
                   BB_ERR_INVALID_REQUEST, "out of range (1 buffers)");
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[4]", "0") ",\"b\":" ND("[2,2]", "0") "}", NULL, two, 2),
                   BB_ERR_INVALID_REQUEST, "buffer 0 is named twice");
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[4]", "0") "}", NULL, two, 2),
                   BB_ERR_INVALID_REQUEST, "buffer 1 is not named by any value");
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[5]", "0") "}", NULL, &one, 1),
                   BB_ERR_INVALID_REQUEST, "buffer 0 is 4 bytes, the shape needs 5");
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[4]", "0") "}", NULL, NULL, 0),
                   BB_ERR_INVALID_REQUEST, "no buffers came with the text");
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[4]", "-1") "}", NULL, &one, 1),
                   BB_ERR_INVALID_REQUEST, "non-negative integer");
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[4]", "0.5") "}", NULL, &one, 1),
                   BB_ERR_INVALID_REQUEST, "non-negative integer");
    /* 2^32 x 2^32 wraps to 0 in 64 bits: a 0-byte buffer must not pass for it */
    bb_buffer empty = {bytes, 0};
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[4294967296,4294967296]", "0") "}", NULL, &empty, 1),
                   BB_ERR_INVALID_REQUEST, "below 2^31");
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[2147483647,2147483647,4]", "0") "}", NULL, &empty, 1),
                   BB_ERR_INVALID_REQUEST, "over the size limit");
    /* the dtype allowlist holds for buffers too */
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"complex64\",\"shape\":[1],\"buffer\":0}}",
                                        NULL, &one, 1), BB_ERR_INVALID_REQUEST, "not allowed");
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[4],\"buffer\":0,"
                                        "\"data\":\"AAAAAA==\"}}", NULL, &one, 1),
                   BB_ERR_INVALID_REQUEST, "exactly one of");
    /* a plain object with a "buffer" key is data, and claims nothing */
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":{\"buffer\":0}}", NULL, &one, 1),
                   BB_ERR_INVALID_REQUEST, "buffer 0 is not named");
    bb_buffer many[BB_MAX_BUFFERS + 1];
    for (int i = 0; i <= BB_MAX_BUFFERS; i++)
        many[i] = one;
    expect_failure(bb_block_run_buffers(t.blk, "{}", NULL, many, BB_MAX_BUFFERS + 1), BB_ERR_INVALID_REQUEST,
                   "at most 64");
    bb_buffer nodata = {NULL, 4};
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[4]", "0") "}", NULL, &nodata, 1),
                   BB_ERR_INVALID_REQUEST, "has no data");
    /* text + buffers within the input limit (1 MiB here) */
    unsigned char *big = calloc(1, 1 << 20);
    bb_buffer whole = {big, 1 << 20};
    expect_failure(bb_block_run_buffers(t.blk, "{\"a\":" ND("[1048576]", "0") "}", NULL, &whole, 1),
                   BB_ERR_INVALID_REQUEST, "over the input limit");
    whole.len = (1 << 20) - 100;
    bb_result *res = bb_block_run_buffers(t.blk, "{\"a\":" ND("[1048476]", "0") "}", NULL, &whole, 1);
    ck_assert_msg(bb_result_ok(res), "%s", bb_error_message(bb_result_error(res)));
    bb_result_free(res);
    free(big);
    /* raw frames: uint8 BGR, shape [h, w(, c)] */
    unsigned char px[2 * 3 * 3] = {0};
    bb_buffer img = {px, sizeof px};
    res = bb_block_run_buffers(t.blk, "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[2,3,3],"
                               "\"buffer\":0,\"parent_id\":\"p\",\"video_metadata\":null}}", NULL, &img, 1);
    ck_assert_msg(bb_result_ok(res), "%s", bb_error_message(bb_result_error(res)));
    bb_result_free(res);
    expect_failure(bb_block_run_buffers(t.blk, "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[2,3,2],"
                                        "\"buffer\":0}}", NULL, &img, 1), BB_ERR_INVALID_REQUEST, "1, 3 or 4 channels");
    expect_failure(bb_block_run_buffers(t.blk, "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[3,3,3],"
                                        "\"buffer\":0}}", NULL, &img, 1), BB_ERR_INVALID_REQUEST, "the shape needs 27");
    expect_failure(bb_block_run_buffers(t.blk, "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[2,3,3],"
                                        "\"dtype\":\"float32\",\"buffer\":0}}", NULL, &img, 1),
                   BB_ERR_INVALID_REQUEST, "uint8");
    solo_free(t);
}
END_TEST

/* A driver's buffers are as hostile as its text. Each case was seen accepted with the
 * claim check (bb_frames_claim) or the count/total checks of executor.c switched off. */
START_TEST(bad_result_references_are_refused)
{
    solo t = solo_on("frames", "max_output_bytes", "1048576");
    expect_failure(run_mode(t.blk, "unnamed"), BB_ERR_INVALID_RESPONSE, "buffer 0 is not named");
    expect_failure(run_mode(t.blk, "twice"), BB_ERR_INVALID_RESPONSE, "buffer 0 is named twice");
    expect_failure(run_mode(t.blk, "range"), BB_ERR_INVALID_RESPONSE, "'buffer' 5 is out of range");
    expect_failure(run_mode(t.blk, "short"), BB_ERR_INVALID_RESPONSE, "buffer 0 is 15 bytes, the shape needs 16");
    expect_failure(run_mode(t.blk, "many"), BB_ERR_INVALID_RESPONSE, "65 buffers, at most 64");
    expect_failure(run_mode(t.blk, "overflow"), BB_ERR_INVALID_RESPONSE, "below 2^31");
    expect_failure(run_mode(t.blk, "big:1048577"), BB_ERR_OUTPUT_LIMIT, "over the limit");
    expect_failure(run_mode(t.blk, "big:1048540"), BB_ERR_OUTPUT_LIMIT, "text and buffers together");
    /* a failed block's buffers are released, not handed out */
    bb_result *res = run_mode(t.blk, "error");
    ck_assert(!bb_result_ok(res));
    ck_assert_uint_eq(bb_result_buffer_count(res), 0);
    bb_result_free(res);
    res = run_mode(t.blk, "big:1000");
    ck_assert_msg(bb_result_ok(res), "%s", bb_error_message(bb_result_error(res)));
    bb_result_free(res);
    ck_assert_int_eq(live_buffers(), 0);   /* every refused buffer was released */
    solo_free(t);
}
END_TEST

/* A driver that never asks for buffers gets the JSON data form: byte for byte the
 * text it would have been sent without buffers. */
START_TEST(a_driver_without_buffers_gets_the_data_form)
{
    solo t = solo_on("framesjson", NULL, NULL);
    unsigned char a[4] = {1, 2, 3, 4}, b[6] = {'f', 'o', 'o', 'b', 'a', 'r'};
    bb_buffer bufs[2] = {{a, 4}, {b, 6}};
    const char *inputs = "{\"x\": {\"buffer\": 1, \"_type\": \"ndarray\", \"shape\": [4], \"dtype\": \"uint8\"},"
                         " \"plain\": {\"buffer\": 7},"
                         " \"im\": {\"_type\": \"workflow_image\", \"type\": \"raw\", \"shape\": [1, 2, 3],"
                         " \"\\u0062uffer\": 0}, \"n\": 12345678901234567890}";
    bufs[0] = (bb_buffer){b, 6};
    bufs[1] = (bb_buffer){a, 4};
    bb_result *res = bb_block_run_buffers(t.blk, inputs, NULL, bufs, 2);
    ck_assert_msg(bb_result_ok(res), "%s", bb_error_message(bb_result_error(res)));
    cJSON *out = cJSON_Parse(bb_result_outputs(res));
    const char *got = cJSON_GetObjectItem(out, "inputs")->valuestring;
    ck_assert_str_eq(got, "{\"x\": {\"data\":\"AQIDBA==\", \"_type\": \"ndarray\", \"shape\": [4], \"dtype\": \"uint8\"},"
                          " \"plain\": {\"buffer\": 7},"
                          " \"im\": {\"_type\": \"workflow_image\", \"type\": \"raw\", \"shape\": [1, 2, 3],"
                          " \"data\":\"Zm9vYmFy\"}, \"n\": 12345678901234567890}");
    ck_assert_int_eq(cJSON_GetObjectItem(out, "buffers_after")->valueint, 0);
    cJSON_Delete(out);
    bb_result_free(res);
    solo_free(t);
}
END_TEST

static void *alloc_heap(void *ctx, size_t len)
{
    (void)ctx;
    return malloc(len ? len : 1);
}

/* The reverse rewrite (the local driver's, for the data form): `data` becomes a
 * buffer with the decoded bytes; other members and other objects are untouched. */
START_TEST(data_members_become_buffers)
{
    const char *text = "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[4],\"data\":\"AQIDBA==\"},"
                       "\"b\":{\"data\":\"AQIDBA==\"},"
                       "\"c\":{\"_type\":\"workflow_image\",\"type\":\"base64\",\"value\":\"x\",\"data\":\"AAAA\"},"
                       "\"d\":[{\"data\":\"Zm9v\",\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[3]}]}";
    bb_buf out = {0};
    void *data[BB_MAX_BUFFERS];
    size_t lens[BB_MAX_BUFFERS], n = 0;
    bb_error *err = NULL;
    ck_assert_int_eq(bb_frames_from_data(text, strlen(text), 1, alloc_heap, NULL, &out, data, lens, &n, &err), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(out.data, "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[4],\"buffer\":1},"
                               "\"b\":{\"data\":\"AQIDBA==\"},"
                               "\"c\":{\"_type\":\"workflow_image\",\"type\":\"base64\",\"value\":\"x\",\"data\":\"AAAA\"},"
                               "\"d\":[{\"buffer\":2,\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[3]}]}");
    ck_assert_uint_eq(lens[0], 4);
    ck_assert_int_eq(memcmp(data[0], "\1\2\3\4", 4), 0);
    ck_assert_uint_eq(lens[1], 3);
    ck_assert_int_eq(memcmp(data[1], "foo", 3), 0);
    free(data[0]);
    free(data[1]);
    bb_buf_free(&out);
}
END_TEST

/* An index is read as the typed-value checks read it (cJSON's strtod): "0.1e1" and
 * "10e-1" name buffer 1 to the rewrite too, so the shape that claimed a buffer's length
 * is the one written beside its bytes (strtol read 0 and 10: a 1-element array carried
 * 1000 bytes, or the rewrite failed with an InternalError a worker chose). */
START_TEST(an_index_is_read_as_the_checks_read_it)
{
    unsigned char big[1000], one = 9;
    memset(big, 7, sizeof big);
    bb_buffer bufs[2] = {{big, sizeof big}, {&one, 1}};
    const char *spellings[] = {"0.1e1", "10e-1", "1.0", "1E0"};
    for (size_t k = 0; k < sizeof spellings / sizeof spellings[0]; k++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[1],\"buffer\":%s},"
                 "\"b\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[1000],\"buffer\":0}}",
                 spellings[k]);
        bb_buf out = {0};
        bb_error *err = NULL;
        ck_assert_msg(bb_frames_to_data(text, strlen(text), bufs, 2, &out, &err) == 0, "%s: %s", spellings[k],
                      err ? bb_error_message(err) : "?");
        ck_assert_msg(strstr(out.data, "\"shape\":[1],\"data\":\"CQ==\"}"), "%s: %s", spellings[k], out.data);
        bb_buf_free(&out);
    }
}
END_TEST

/* Typed values hidden in the members a tag reads fields of (sv_detections' `image`, an
 * image's `parent_origin` / `root_parent_origin`), or those members tagged themselves,
 * are checked like any value (attack note F2). Before, the checks read only width/height
 * or the four origin numbers there, while the rewrites (frames.c) found every tagged
 * object: a 1-byte buffer went out as the `data` of a [1000] array, and a `data` form no
 * check had measured would have become a buffer of the wrong length. Seen failing (all
 * accepted) with check_whole in wire_values.c switched off. */
#define SMUGGLED_BUF "{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[1000],\"buffer\":0}"
#define SMUGGLED_DATA "{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[1000],\"data\":\"CQ==\"}"
START_TEST(values_in_fields_a_tag_reads_are_checked)
{
    static const char *const places[] = {
        "{\"d\":{\"_type\":\"sv_detections\",\"image\":{\"width\":1,\"height\":1,\"x\":%s},\"predictions\":[]}}",
        "{\"d\":{\"_type\":\"sv_detections\",\"image\":{\"width\":1,\"height\":1,\"x\":[{\"y\":%s}]},\"predictions\":[]}}",
        "{\"im\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[1,1],\"data\":\"AA==\","
        "\"parent_origin\":{\"offset_x\":0,\"offset_y\":0,\"width\":1,\"height\":1,\"x\":%s}}}",
        "{\"im\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[1,1],\"data\":\"AA==\","
        "\"root_parent_origin\":{\"offset_x\":0,\"offset_y\":0,\"width\":1,\"height\":1,\"x\":%s}}}",
    };
    /* the member itself tagged: `%s` is the rest of the tagged object's members */
    static const char *const tagged[] = {
        "{\"d\":{\"_type\":\"sv_detections\",\"image\":{\"width\":1,\"height\":1,%s},\"predictions\":[]}}",
        "{\"im\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[1,1],\"data\":\"AA==\","
        "\"parent_origin\":{\"offset_x\":0,\"offset_y\":0,\"width\":1,\"height\":1,%s}}}",
    };
    solo t = solo_on("framesjson", NULL, NULL);
    unsigned char one = 9;
    bb_buffer buf = {&one, 1};
    for (size_t form = 0; form < 2; form++) {
        const char *value = form ? SMUGGLED_DATA : SMUGGLED_BUF;
        char members[160];
        snprintf(members, sizeof members, "%.*s", (int)strlen(value) - 2, value + 1);
        for (size_t k = 0; k < sizeof places / sizeof places[0] + sizeof tagged / sizeof tagged[0]; k++) {
            char inner[1024], text[1200];
            size_t np = sizeof places / sizeof places[0];
            const char *fill = k < np ? value : members, *place = k < np ? places[k] : tagged[k - np];
            const char *hole = strstr(place, "%s");
            snprintf(inner, sizeof inner, "%.*s%s%s", (int)(hole - place), place, fill, hole + 2);
            /* with a `buffer`, a real claim of buffer 0 beside it: the hidden one names it twice */
            if (form == 0)
                snprintf(text, sizeof text, "{\"a\":" ND("[1]", "0") ",%s", inner + 1);
            else
                snprintf(text, sizeof text, "%s", inner);
            bb_result *res = bb_block_run_buffers(t.blk, text, NULL, form ? NULL : &buf, form ? 0 : 1);
            ck_assert_ptr_nonnull(res);
            ck_assert_msg(!bb_result_ok(res), "accepted %s: the driver saw %s", text, bb_result_outputs(res));
            const bb_error *e = bb_result_error(res);
            ck_assert_int_eq(bb_error_get_kind(e), BB_ERR_INVALID_REQUEST);
            ck_assert_msg(strstr(bb_error_message(e), form ? "needs 1000" : "named twice"), "%s: %s", text,
                          bb_error_message(e));
            bb_result_free(res);
            /* a result is checked by the same walk */
            cJSON *parsed = cJSON_Parse(text);
            ck_assert_ptr_nonnull(parsed);
            bb_frames frames;
            size_t lens[1] = {1};
            bb_frames_init(&frames, lens, form ? 0 : 1);
            bb_limits limits;
            bb_limits_default(&limits);
            limits.buffers = &frames;
            bb_error *err = NULL;
            ck_assert_msg(bb_wire_check_values(parsed, &limits, BB_ERR_INVALID_RESPONSE, "result", &err) < 0,
                          "result accepted: %s", text);
            ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_INVALID_RESPONSE);
            bb_error_free(err);
            cJSON_Delete(parsed);
            /* and the rewrite itself refuses a second span of a buffer (defence in depth) */
            if (form == 0) {
                bb_buf out = {0};
                err = NULL;
                ck_assert_int_lt(bb_frames_to_data(text, strlen(text), &buf, 1, &out, &err), 0);
                ck_assert_msg(strstr(bb_error_message(err), "twice"), "%s", bb_error_message(err));
                bb_error_free(err);
                bb_buf_free(&out);
            }
        }
    }
    solo_free(t);
}
END_TEST

/* The forms walk (bb_frames_write_forms, for the modal driver): ndarray buffers as
 * `data`, raw images (buffer or `data`, keys spelled with escapes too) as base64 images of
 * what the encoder wrote, every other byte kept, the whole as one JSON string literal. */
static int fake_encode(void *ctx, const unsigned char *px, size_t h, size_t w, size_t c, bb_frames_write_fn write,
                       void *sink)
{
    (*(int *)ctx)++;
    unsigned char head[3] = {(unsigned char)h, (unsigned char)w, (unsigned char)c};
    if (write(sink, head, 3) < 0)
        return -1;
    for (size_t i = 0; i < h * w * c; i++)   /* one byte at a time: the base64 sink's pending bytes */
        if (write(sink, px + i, 1) < 0)
            return -1;
    return 0;
}

START_TEST(the_forms_walk_writes_the_json_forms)
{
    unsigned char px[3] = {1, 2, 3}, one = 9;
    bb_buffer bufs[2] = {{px, 3}, {&one, 1}};
    const char *text =
        "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[1],\"buffer\":0.1e1},"
        "\"i\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[1,1,3],\"buffer\":0,\"parent_id\":\"p\"},"
        "\"j\":{\"_type\":\"workflow_image\",\"t\\u0079pe\":\"r\\u0061w\",\"sh\\u0061pe\":[1,1],\"d\\u0061ta\":\"CQ==\"},"
        "\"s\":\"x\\\"y\",\"raw\":{\"buffer\":5}}";
    bb_buf out = {0};
    bb_error *err = NULL;
    size_t n_images = 0;
    int calls = 0;
    ck_assert_msg(bb_frames_write_forms(text, strlen(text), bufs, 2, fake_encode, &calls, &out, &n_images, &err) == 0,
                  "%s", err ? bb_error_message(err) : "?");
    ck_assert_uint_eq(n_images, 2);
    ck_assert_int_eq(calls, 2);
    cJSON *literal = cJSON_Parse(out.data);
    ck_assert(cJSON_IsString(literal));
    cJSON *j = cJSON_Parse(literal->valuestring);
    ck_assert_ptr_nonnull(j);
    char *again = cJSON_PrintUnformatted(j);
    ck_assert_str_eq(again,
                     "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[1],\"data\":\"CQ==\"},"
                     "\"i\":{\"_type\":\"workflow_image\",\"type\":\"base64\",\"shape\":[1,1,3],\"value\":\"AQEDAQID\","
                     "\"parent_id\":\"p\"},"
                     "\"j\":{\"_type\":\"workflow_image\",\"type\":\"base64\",\"shape\":[1,1],\"value\":\"AQEBCQ==\"},"
                     "\"s\":\"x\\\"y\",\"raw\":{\"buffer\":5}}");
    free(again);
    cJSON_Delete(j);
    cJSON_Delete(literal);
    /* the literal is what bb_buf_json_string makes of the rewritten text */
    bb_buf_free(&out);
    /* a text the checks never passed, naming one buffer twice: refused, not written twice
     * (seen failing, the array written out twice, with the `seen` refusal off) */
    const char *twice = "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[3],\"buffer\":0},"
                        "\"b\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[1,1,3],\"buffer\":0}}";
    ck_assert_int_eq(bb_frames_write_forms(twice, strlen(twice), bufs, 2, fake_encode, &calls, &out, &n_images, &err),
                     -1);
    ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_INTERNAL);
    ck_assert_ptr_nonnull(strstr(bb_error_message(err), "twice"));
    bb_error_free(err);
    bb_buf_free(&out);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("buffers", a_buffer_goes_in_and_one_comes_back),
        BB_CHECK_TEST("buffers", bad_input_references_are_refused),
        BB_CHECK_TEST("buffers", bad_result_references_are_refused),
        BB_CHECK_TEST("buffers", a_driver_without_buffers_gets_the_data_form),
        BB_CHECK_TEST("buffers", data_members_become_buffers),
        BB_CHECK_TEST("buffers", an_index_is_read_as_the_checks_read_it),
        BB_CHECK_TEST("buffers", values_in_fields_a_tag_reads_are_checked),
        BB_CHECK_TEST("buffers", the_forms_walk_writes_the_json_forms),
    };
    return bb_check_run("frames_core", 0, rows, BB_CHECK_COUNT(rows));
}
