/* test_frames_modal.c: buffers through the modal driver (issue 12 item 3) against the HTTPS
 * emulator: arrays as data, raw frames as PNG with exact pixels, bounds, lying servers, local parity. */
#include <blockbox.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check_main.h"
#include "emu.h"
#include "frames_test.h"
#include "local_test_util.h"
#include "modal_png.h"

#define TOKEN_ID "wk-frames-modal"
#define TOKEN_SECRET "ws-frames-modal-5e1"

static emu E;

static void start_emulator(void) { emu_start_or_exit(&E, TOKEN_ID, TOKEN_SECRET); }

static void stop_emulator(void) { emu_stop(&E); }

static bb_executor *modal_executor(const char *key, const char *value)
{
    bb_config *cfg = emu_config(&E, 20);
    bb_error *err = NULL;
    if (key)
        ck_assert_int_eq(bb_config_set(cfg, key, value, &err), 0);
    bb_executor *ex = bb_executor_new(cfg, &err);
    bb_config_free(cfg);
    ck_assert_msg(ex, "modal executor: %s", err ? bb_error_message(err) : "?");
    return ex;
}

/* One counter of the emulator's input_forms (0 when absent). */
static long form_count(const char *form)
{
    cJSON *j = emu_stats(&E);
    const cJSON *forms = cJSON_GetObjectItemCaseSensitive(j, "input_forms");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(forms, form);
    long n = cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
    cJSON_Delete(j);
    return n;
}

static unsigned char *pattern(size_t len, unsigned seed)
{
    unsigned char *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    uint32_t x = 2463534242u ^ seed;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        /* runs and noise, so PNG's filter and deflate both have work */
        p[i] = (i / 7) % 3 ? (unsigned char)(i * 5 + seed) : (unsigned char)x;
    }
    return p;
}

static void expect_buffer(const bb_result *res, size_t i, const void *want, size_t len)
{
    size_t got_len = 0;
    const unsigned char *got = bb_result_buffer(res, i, &got_len);
    ck_assert_msg(got_len == len, "buffer %zu: %zu bytes, wanted %zu", i, got_len, len);
    ck_assert_msg(len == 0 || memcmp(got, want, len) == 0, "buffer %zu differs", i);
}

/* ---- arrays ------------------------------------------------------------------------- */

static const struct {
    const char *dtype;
    size_t size;
} DTYPES[] = {{"bool", 1},    {"int8", 1},    {"int16", 2},   {"int32", 4},   {"int64", 8},
              {"uint8", 1},   {"uint16", 2},  {"uint32", 4},  {"uint64", 8},  {"float16", 2},
              {"float32", 4}, {"float64", 8}};
#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

/* Every dtype in one call: each array goes in the data form (nothing raw reaches the
 * server), the block sees its dtype and shape, and each comes back as a buffer, bit for bit. */
START_TEST(every_dtype_goes_as_data_and_comes_back_as_a_buffer)
{
    emu_reset(&E);
    bb_executor *ex = modal_executor(NULL, NULL);
    bb_block *blk = load_block(ex,
                               "def run(self, **a):\n"
                               "    return {k: [v, str(v.dtype), list(v.shape)] for k, v in sorted(a.items())}\n",
                               NULL, 0);
    bb_buffer bufs[N_DTYPES];
    unsigned char *data[N_DTYPES];
    char inputs[4096] = "{", want[4096] = "{";
    for (size_t i = 0; i < N_DTYPES; i++) {
        size_t len = 15 * DTYPES[i].size;
        data[i] = pattern(len, (unsigned)i);
        if (strcmp(DTYPES[i].dtype, "bool") == 0)
            for (size_t k = 0; k < len; k++)
                data[i][k] &= 1;
        bufs[i] = (bb_buffer){data[i], len};
        snprintf(inputs + strlen(inputs), sizeof inputs - strlen(inputs),
                 "%s\"k%02zu\":{\"_type\":\"ndarray\",\"dtype\":\"%s\",\"shape\":[3,5],\"buffer\":%zu}",
                 i ? "," : "", i, DTYPES[i].dtype, i);
        snprintf(want + strlen(want), sizeof want - strlen(want),
                 "%s\"k%02zu\":[{\"_type\":\"ndarray\",\"dtype\":\"%s\",\"shape\":[3,5],\"buffer\":%zu},\"%s\",[3,5]]",
                 i ? "," : "", i, DTYPES[i].dtype, i, DTYPES[i].dtype);
    }
    strcat(inputs, "}");
    strcat(want, "}");
    bb_result *res = bb_block_run_buffers(blk, inputs, NULL, bufs, N_DTYPES);
    expect_ok(res);
    ck_assert_str_eq(bb_result_outputs(res), want);
    ck_assert_uint_eq(bb_result_buffer_count(res), N_DTYPES);
    for (size_t i = 0; i < N_DTYPES; i++)
        expect_buffer(res, i, data[i], bufs[i].len);
    bb_result_free(res);
    ck_assert_int_eq(form_count("ndarray_data"), (long)N_DTYPES);
    ck_assert_int_eq(form_count("ndarray_buffer"), 0);
    ck_assert_int_eq(emu_describe_field(ex, "encoded_requests"), 1);
    /* a JSON-only caller of the same block gets the data form, as before */
    res = bb_block_run(blk, "{\"x\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[2],\"data\":\"AQI=\"}}",
                       NULL);
    expect_ok(res);
    ck_assert_str_eq(bb_result_outputs(res),
                     "{\"x\":[{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[2],\"data\":\"AQI=\"},\"uint8\",[2]]}");
    ck_assert_uint_eq(bb_result_buffer_count(res), 0);
    ck_assert_int_eq(emu_describe_field(ex, "encoded_requests"), 1);   /* nothing to encode: as before */
    bb_result_free(res);
    for (size_t i = 0; i < N_DTYPES; i++)
        free(data[i]);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* ---- raw frames ----------------------------------------------------------------------- */

static const char *const PIXELS =
    "def run(self, image):\n"
    "    px = image.numpy_image\n"
    "    return {'px': px, 'shape': list(px.shape), 'head': image.base64_image[:11]}\n";

/* A raw frame of each kind goes as a PNG (the block's base64_image is one) and the block
 * decodes exactly the caller's pixels, in the caller's shape ([h, w], [h, w, 1], BGR, BGRA). */
START_TEST(raw_frames_go_as_png_and_decode_to_the_same_pixels)
{
    emu_reset(&E);
    bb_executor *ex = modal_executor(NULL, NULL);
    bb_block *blk = load_block(ex, PIXELS, NULL, 0);
    static const struct {
        size_t h, w, c;
        int dims;
    } KINDS[] = {{37, 53, 1, 2}, {37, 53, 1, 3}, {37, 53, 3, 3}, {37, 53, 4, 3}, {1, 1, 3, 3},
                 {1080, 1920, 3, 3}, {300, 200, 4, 3}};
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        size_t len = KINDS[k].h * KINDS[k].w * KINDS[k].c;
        unsigned char *frame = pattern(len, (unsigned)k + 100);
        char shape[64], inputs[512], want[512];
        if (KINDS[k].dims == 2)
            snprintf(shape, sizeof shape, "[%zu,%zu]", KINDS[k].h, KINDS[k].w);
        else
            snprintf(shape, sizeof shape, "[%zu,%zu,%zu]", KINDS[k].h, KINDS[k].w, KINDS[k].c);
        snprintf(inputs, sizeof inputs,
                 "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":%s,\"buffer\":0,"
                 "\"parent_id\":\"cam\"}}", shape);
        snprintf(want, sizeof want,
                 "{\"px\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":%s,\"buffer\":0},\"shape\":%s,"
                 "\"head\":\"iVBORw0KGgo\"}", shape, shape);
        bb_buffer in = {frame, len};
        bb_result *res = bb_block_run_buffers(blk, inputs, NULL, &in, 1);
        expect_ok(res);
        ck_assert_str_eq(bb_result_outputs(res), want);
        expect_buffer(res, 0, frame, len);
        bb_result_free(res);
        free(frame);
        ck_assert_int_eq(form_count("image_png"), (long)k + 1);
    }
    ck_assert_int_eq(form_count("image_raw"), 0);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* A JSON-only caller's raw frame in the data form is sent as a PNG too: nothing raw
 * reaches a server, whose decoders (Roboflow's included) read JPEG and PNG only. */
START_TEST(a_raw_frame_in_the_data_form_goes_as_png_too)
{
    emu_reset(&E);
    bb_executor *ex = modal_executor(NULL, NULL);
    bb_block *blk = load_block(ex, PIXELS, NULL, 0);
    /* 2x2 BGR: bytes 0..11 */
    bb_result *res = bb_block_run(blk,
                                  "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[2,2,3],"
                                  "\"data\":\"AAECAwQFBgcICQoL\",\"video_metadata\":null}}",
                                  NULL);
    expect_ok(res);
    ck_assert_str_eq(bb_result_outputs(res),
                     "{\"px\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[2,2,3],\"data\":\"AAECAwQFBgcICQoL\"},"
                     "\"shape\":[2,2,3],\"head\":\"iVBORw0KGgo\"}");
    bb_result_free(res);
    ck_assert_int_eq(form_count("image_png"), 1);
    ck_assert_int_eq(form_count("image_raw"), 0);
    /* base64 with JSON escapes ("\/", as PHP writes '/') is read as the checks read it
     * (attack-binary A1): seen failing (InternalError) with the raw text decoded instead */
    res = bb_block_run(blk,
                       "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[2,2,3],\"data\":"
                       "\"\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\"}}",
                       NULL);
    expect_ok(res);
    ck_assert_str_eq(bb_result_outputs(res),
                     "{\"px\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[2,2,3],\"data\":\"////////////////\"},"
                     "\"shape\":[2,2,3],\"head\":\"iVBORw0KGgo\"}");
    bb_result_free(res);
    ck_assert_int_eq(form_count("image_png"), 2);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* ---- the encoder, read back with zlib ------------------------------------------------- */

typedef struct mem_sink {
    unsigned char *data;
    size_t len, cap;
    size_t fail_after;   /* a write past this many bytes fails (0: never) */
} mem_sink;

static int mem_write(void *sink, const void *bytes, size_t n)
{
    mem_sink *m = sink;
    if (m->fail_after && m->len + n > m->fail_after)
        return -1;
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->data = realloc(m->data, m->cap);
        ck_assert_ptr_nonnull(m->data);
    }
    memcpy(m->data + m->len, bytes, n);
    m->len += n;
    return 0;
}

static uint32_t get32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* Reads a PNG as a strict reader would (signature, chunk CRCs, IHDR, IDATs inflated, the
 * filters undone) and returns the pixels in the caller's order (grey, BGR, BGRA). */
static unsigned char *read_png(const mem_sink *m, size_t *h, size_t *w, size_t *c, size_t *n_idat)
{
    ck_assert_uint_ge(m->len, 8);
    ck_assert_int_eq(memcmp(m->data, "\x89PNG\r\n\x1a\n", 8), 0);
    size_t at = 8, zlen = 0;
    unsigned char *z = NULL;
    int ended = 0;
    *n_idat = 0;
    *h = *w = *c = 0;
    while (at < m->len) {
        ck_assert_uint_ge(m->len - at, 12);
        uint32_t len = get32(m->data + at);
        ck_assert_uint_ge(m->len - at - 12, len);
        const unsigned char *type = m->data + at + 4, *body = type + 4;
        ck_assert_uint_eq(get32(body + len), (uint32_t)crc32(crc32(0L, type, 4), body, len));
        if (memcmp(type, "IHDR", 4) == 0) {
            ck_assert_uint_eq(len, 13);
            *w = get32(body);
            *h = get32(body + 4);
            ck_assert_int_eq(body[8], 8);
            *c = body[9] == 0 ? 1 : body[9] == 2 ? 3 : body[9] == 6 ? 4 : 0;
            ck_assert_uint_ne(*c, 0);
            ck_assert_int_eq(body[10] | body[11] | body[12], 0);
        } else if (memcmp(type, "IDAT", 4) == 0) {
            ck_assert_uint_le(len, BB_MODAL_PNG_CHUNK);
            z = realloc(z, zlen + len);
            memcpy(z + zlen, body, len);
            zlen += len;
            (*n_idat)++;
        } else if (memcmp(type, "IEND", 4) == 0) {
            ck_assert_uint_eq(len, 0);
            ended = 1;
        }
        at += 12 + len;
    }
    ck_assert(ended);
    size_t row = *w * *c, raw_len = (row + 1) * *h;
    unsigned char *raw = malloc(raw_len), *px = malloc(row * *h);
    uLongf got = raw_len;
    ck_assert_int_eq(uncompress(raw, &got, z, zlen), Z_OK);
    ck_assert_uint_eq(got, raw_len);
    for (size_t y = 0; y < *h; y++) {
        const unsigned char *line = raw + y * (row + 1);
        ck_assert_int_eq(line[0], 1);   /* Sub */
        unsigned char *out = px + y * row;
        for (size_t x = 0; x < row; x++)
            out[x] = (unsigned char)(line[1 + x] + (x >= *c ? out[x - *c] : 0));
        for (size_t x = 0; *c >= 3 && x < *w; x++) {   /* RGB(A) -> BGR(A) */
            unsigned char t = out[x * *c];
            out[x * *c] = out[x * *c + 2];
            out[x * *c + 2] = t;
        }
    }
    free(raw);
    free(z);
    return px;
}

START_TEST(the_png_reads_back_to_the_pixels)
{
    static const size_t SIZES[][3] = {{1, 1, 1}, {1, 1, 3}, {1, 1, 4}, {7, 5, 1}, {37, 53, 3}, {300, 200, 4},
                                      {2, 70000, 3}};
    static const int LEVELS[] = {0, 1, 9};
    for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++) {
        for (size_t l = 0; l < sizeof LEVELS / sizeof LEVELS[0]; l++) {
            size_t h = SIZES[s][0], w = SIZES[s][1], c = SIZES[s][2], len = h * w * c;
            unsigned char *frame = pattern(len, (unsigned)(s * 10 + l));
            mem_sink m = {0};
            int level = LEVELS[l];
            ck_assert_int_eq(bb_modal_png_encode(&level, frame, h, w, c, mem_write, &m), 0);
            size_t gh = 0, gw = 0, gc = 0, n_idat = 0;
            unsigned char *px = read_png(&m, &gh, &gw, &gc, &n_idat);
            ck_assert_uint_eq(gh, h);
            ck_assert_uint_eq(gw, w);
            ck_assert_uint_eq(gc, c);
            ck_assert_msg(memcmp(px, frame, len) == 0, "%zux%zux%zu level %d: pixels differ", h, w, c, level);
            if (level == 0)   /* stored: the stream is larger than a chunk, so split */
                ck_assert_uint_eq(n_idat, (len + h) / BB_MODAL_PNG_CHUNK + 1);
            free(px);
            free(m.data);
            free(frame);
        }
    }
}
END_TEST

/* Bad dimensions are refused before a byte is written; a failing write stops the encoder
 * wherever it happens, without leaking (ASan). */
START_TEST(the_png_encoder_refuses_and_stops_cleanly)
{
    unsigned char px[16] = {0};
    mem_sink m = {0};
    ck_assert_int_eq(bb_modal_png_encode(NULL, px, 0, 1, 3, mem_write, &m), -1);
    ck_assert_int_eq(bb_modal_png_encode(NULL, px, 1, 0, 3, mem_write, &m), -1);
    ck_assert_int_eq(bb_modal_png_encode(NULL, px, 1, 1, 2, mem_write, &m), -1);
    ck_assert_int_eq(bb_modal_png_encode(NULL, px, (size_t)1 << 31, 1, 1, mem_write, &m), -1);
    int level = 10;
    ck_assert_int_eq(bb_modal_png_encode(&level, px, 1, 1, 1, mem_write, &m), -1);
    ck_assert_uint_eq(m.len, 0);
    unsigned char *frame = pattern(300 * 200 * 4, 7);
    level = 0;
    for (size_t stop = 1; stop < 300 * 200 * 4; stop = stop * 3 + 1) {   /* the PNG is larger */
        mem_sink f = {.fail_after = stop};
        ck_assert_int_eq(bb_modal_png_encode(&level, frame, 300, 200, 4, mem_write, &f), -1);
        free(f.data);
    }
    free(frame);
}
END_TEST

/* ---- bounds ------------------------------------------------------------------------------- */

/* The core's checks hold before the driver writes a byte: too many buffers, a buffer over
 * the input limit, a length its shape does not say: InvalidRequest, nothing sent. */
START_TEST(bounds_hold_before_anything_is_sent)
{
    emu_reset(&E);
    bb_executor *ex = modal_executor("max_input_bytes", "65536");
    bb_block *blk = load_block(ex, PIXELS, NULL, 0);
    long before = emu_stat(&E, "requests");
    static unsigned char zeros[70000];
    bb_buffer many[BB_MAX_BUFFERS + 1];
    for (size_t i = 0; i <= BB_MAX_BUFFERS; i++)
        many[i] = (bb_buffer){zeros, 1};
    expect_failure(bb_block_run_buffers(blk, "{}", NULL, many, BB_MAX_BUFFERS + 1), BB_ERR_INVALID_REQUEST,
                   "at most 64");
    bb_buffer big = {zeros, 256 * 256 + 3};
    expect_failure(bb_block_run_buffers(blk,
                                        "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[256,256],"
                                        "\"buffer\":0}}",
                                        NULL, &big, 1),
                   BB_ERR_INVALID_REQUEST, NULL);
    bb_buffer over = {zeros, 65536};
    expect_failure(bb_block_run_buffers(blk,
                                        "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[256,256],"
                                        "\"buffer\":0}}",
                                        NULL, &over, 1),
                   BB_ERR_INVALID_REQUEST, "over the input limit");
    bb_buffer two = {zeros, 2};
    expect_failure(bb_block_run_buffers(blk, "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[3],\"buffer\":0}}",
                                        NULL, &two, 1),
                   BB_ERR_INVALID_REQUEST, "shape needs 3");
    ck_assert_int_eq(emu_stat(&E, "requests"), before);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* What a lying server may answer about arrays: each refused as InvalidResponse. */
static const char *const LIES[] = {
    /* data that is not what its shape says */
    "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint16\",\"shape\":[2],\"data\":\"AAEC\"}}",
    /* a buffer reference: a server has no buffers to send */
    "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[2],\"buffer\":0}}",
    /* a shape whose product wraps 64 bits, with no data */
    "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[4294967296,4294967296],\"data\":\"\"}}",
    /* a raw frame whose data is short of its shape */
    "{\"i\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[2,2,3],\"data\":\"AAECAwQFBgcICQo=\"}}",
    /* a raw frame naming a buffer */
    "{\"i\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[1,1,3],\"buffer\":0}}",
    /* an array twice the result limit */
    "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"float64\",\"shape\":[1048576,32],\"data\":\"\"}}",
};

START_TEST(a_lying_server_is_refused)
{
    emu_reset(&E);
    bb_executor *ex = modal_executor(NULL, NULL);
    bb_block *blk = load_block(ex, PIXELS, NULL, 0);
    cJSON *fault = cJSON_CreateArray(), *one = cJSON_CreateObject(), *body = cJSON_CreateObject();
    cJSON_AddStringToObject(one, "kind", "reply");
    cJSON_AddBoolToObject(body, "success", 1);
    cJSON_AddStringToObject(body, "result", LIES[_i]);
    cJSON_AddStringToObject(body, "stdout", "");
    cJSON_AddStringToObject(body, "stderr", "");
    cJSON_AddItemToObject(one, "body", body);
    cJSON_AddItemToArray(fault, one);
    char *text = cJSON_PrintUnformatted(fault);
    ck_assert_int_eq(emu_faults(&E, text), 0);
    free(text);
    cJSON_Delete(fault);
    unsigned char frame[12] = {0};
    bb_buffer in = {frame, sizeof frame};
    bb_result *res = bb_block_run_buffers(
        blk, "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[2,2,3],\"buffer\":0}}", NULL, &in, 1);
    ck_assert_ptr_nonnull(res);
    ck_assert_msg(!bb_result_ok(res), "lie %d accepted: %s", _i, bb_result_outputs(res));
    bb_error_kind kind = bb_error_get_kind(bb_result_error(res));
    ck_assert_msg(kind == BB_ERR_INVALID_RESPONSE || kind == BB_ERR_OUTPUT_LIMIT, "lie %d: %s: %s", _i,
                  bb_error_kind_name(kind), bb_error_message(bb_result_error(res)));
    bb_result_free(res);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* More arrays than BB_MAX_BUFFERS in an answer are no lie: they stay in the data form. */
START_TEST(more_arrays_than_buffers_stay_in_the_data_form)
{
    emu_reset(&E);
    bb_executor *ex = modal_executor(NULL, NULL);
    bb_block *blk = load_block(ex, "def run(self, a):\n    return {'l': [a + i for i in range(65)]}\n", NULL, 0);
    unsigned char one = 1;
    bb_buffer in = {&one, 1};
    bb_result *res = bb_block_run_buffers(blk, "{\"a\":{\"_type\":\"ndarray\",\"dtype\":\"uint8\",\"shape\":[1],\"buffer\":0}}",
                                          NULL, &in, 1);
    expect_ok(res);
    ck_assert_uint_eq(bb_result_buffer_count(res), 0);
    ck_assert_ptr_nonnull(strstr(bb_result_outputs(res), "\"data\":\"QQ==\""));   /* 1 + 64 */
    bb_result_free(res);
    bb_block_free(blk);
    bb_executor_free(ex);
}
END_TEST

/* ---- the same call, local and modal --------------------------------------------------------- */

static const char *const PARITY =
    "def run(self, image, mask, a):\n"
    "    px = image.numpy_image\n"
    "    return {'inv': 255 - px, 'alpha': mask.numpy_image[..., 3].copy(), 'shape': list(px.shape),\n"
    "            'sum': int(a.sum()), 'a2': a * 2, 'mean': float(px.mean()), 'parent': image.parent_metadata.parent_id}\n";

START_TEST(the_same_call_gives_the_same_outputs_as_local)
{
    emu_reset(&E);
    bb_executor *executors[2] = {local_executor(NULL), modal_executor(NULL, NULL)};
    enum { H = 120, W = 160 };
    unsigned char *bgr = pattern(H * W * 3, 1), *bgra = pattern(H * W * 4, 2), *a = pattern(64 * 4, 3);
    bb_buffer in[3] = {{bgr, H * W * 3}, {bgra, H * W * 4}, {a, 64 * 4}};
    const char *inputs =
        "{\"image\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[120,160,3],\"buffer\":0,"
        "\"parent_id\":\"cam-7\",\"video_metadata\":null},"
        "\"mask\":{\"_type\":\"workflow_image\",\"type\":\"raw\",\"shape\":[120,160,4],\"buffer\":1},"
        "\"a\":{\"_type\":\"ndarray\",\"dtype\":\"int32\",\"shape\":[8,8],\"buffer\":2}}";
    bb_result *res[2];
    for (int k = 0; k < 2; k++) {
        bb_block *blk = load_block(executors[k], PARITY, NULL, 0);
        res[k] = bb_block_run_buffers(blk, inputs, NULL, in, 3);
        expect_ok(res[k]);
        bb_block_free(blk);
    }
    ck_assert_str_eq(bb_result_outputs(res[1]), bb_result_outputs(res[0]));
    ck_assert_uint_eq(bb_result_buffer_count(res[1]), bb_result_buffer_count(res[0]));
    ck_assert_uint_eq(bb_result_buffer_count(res[0]), 3);
    for (size_t i = 0; i < 3; i++) {
        size_t len = 0;
        const void *local = bb_result_buffer(res[0], i, &len);
        expect_buffer(res[1], i, local, len);
    }
    ck_assert_int_eq(form_count("image_png"), 2);
    for (int k = 0; k < 2; k++) {
        bb_result_free(res[k]);
        bb_executor_free(executors[k]);
    }
    free(bgr);
    free(bgra);
    free(a);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("encoder", the_png_reads_back_to_the_pixels),
        BB_CHECK_TEST("encoder", the_png_encoder_refuses_and_stops_cleanly),
        BB_CHECK_TEST("emulator", every_dtype_goes_as_data_and_comes_back_as_a_buffer),
        BB_CHECK_TEST("emulator", raw_frames_go_as_png_and_decode_to_the_same_pixels),
        BB_CHECK_TEST("emulator", a_raw_frame_in_the_data_form_goes_as_png_too),
        BB_CHECK_TEST("emulator", bounds_hold_before_anything_is_sent),
        BB_CHECK_LOOP("emulator", a_lying_server_is_refused, LIES),
        BB_CHECK_TEST("emulator", more_arrays_than_buffers_stay_in_the_data_form),
        BB_CHECK_TEST("emulator", the_same_call_gives_the_same_outputs_as_local),
    };
    const bb_check_suite suite = {.name = "frames_modal", .timeout = 120,
                                  .setup = start_emulator, .teardown = stop_emulator};
    return bb_check_run_suite(&suite, rows, BB_CHECK_COUNT(rows));
}
