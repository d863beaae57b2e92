/* frames.c: the frame benchmarks of issue 12: a 1080p or 4K uint8 frame into a live block
 * and its inverse back (binary path, JSON data form), frames per second, and their baselines. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

const char bench_frame_code[] = "def run(self, f):\n    return {\"g\": 255 - f}\n";

int bench_frame_make(bench_frame *f, int h, int w, bb_error **err)
{
    memset(f, 0, sizeof *f);
    f->h = h;
    f->w = w;
    f->c = 3;
    f->bytes = (size_t)h * (size_t)w * 3u;
    f->pixels = malloc(f->bytes);
    f->expected = malloc(f->bytes);
    if (!f->pixels || !f->expected) {
        bench_frame_free(f);
        return bench_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < f->bytes; i++) {
        f->pixels[i] = bench_image_byte(i);
        f->expected[i] = (unsigned char)(255u - f->pixels[i]);
    }
    return 0;
}

void bench_frame_free(bench_frame *f)
{
    free(f->pixels);
    free(f->expected);
    memset(f, 0, sizeof *f);
}

/* ---- baselines -------------------------------------------------------------------- */

int bench_memcpy_frame(const bench_plan *plan, const bench_frame *f, bench_samples *out, bb_error **err)
{
    unsigned char *dst = malloc(f->bytes);
    if (!dst)
        return bench_fail(err, BB_ERR_INTERNAL, "out of memory");
    memset(dst, 1, f->bytes);   /* resident before the first timed copy */
    int rc = 0;
    for (int i = 0; rc == 0 && i < plan->warmup_runs + plan->memcpy_runs; i++) {
        long long start = bench_now_ns();
        memcpy(dst, f->pixels, f->bytes);
        __asm__ __volatile__("" : : "r"(dst) : "memory");   /* the copy is used */
        long long elapsed = bench_now_ns() - start;
        if (i >= plan->warmup_runs)
            rc = bench_samples_add(out, elapsed, err);
    }
    if (rc == 0 && memcmp(dst, f->pixels, f->bytes) != 0)
        rc = bench_fail(err, BB_ERR_INTERNAL, "memcpy_frame: the copy differs");
    free(dst);
    return rc;
}

/* ---- the JSON data form (its inputs and check are in common.c) -------------------- */

/* Past the budget (after at least one timed run): --quick stays quick on a slow path. */
static int over_budget(long long begin, double budget_s, const bench_samples *out)
{
    return budget_s > 0 && out->n > 0 && (double)(bench_now_ns() - begin) > budget_s * 1e9;
}

int bench_frame_data_series(bb_block *blk, const bench_frame *f, const char *inputs, int runs, int warmup,
                            double budget_s, bench_samples *out, bb_error **err)
{
    long long begin = bench_now_ns();
    for (int i = 0; i < warmup + runs && !over_budget(begin, budget_s, out); i++) {
        long long start = bench_now_ns();
        bb_result *res = bb_block_run(blk, inputs, NULL);
        long long elapsed = bench_now_ns() - start;
        int rc = bench_result_failed(res, "a frame run", err);
        if (rc == 0 && (i == 0 || i == warmup || i == warmup + runs - 1))   /* decoding 8 MB of base64 is slow */
            rc = bench_check_frame_data(f, bb_result_outputs(res), err);
        bb_result_free(res);
        if (rc == 0 && i >= warmup)
            rc = bench_samples_add(out, elapsed, err);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- the binary path ----------------------------------------------------------------- */

char *bench_frame_raw_inputs(const bench_frame *f, bb_error **err)
{
    char *text = NULL;
    if (asprintf(&text, "{\"f\": {\"_type\": \"ndarray\", \"dtype\": \"uint8\", \"shape\": [%d, %d, %d], "
                        "\"buffer\": 0}}", f->h, f->w, f->c) < 0) {
        bench_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return text;
}

/* The outputs {"g": ndarray} equal to f->expected: naming a result buffer (a driver that
 * returns buffers), or in the data form (one that does not). *as_buffer says which. */
int bench_check_frame_raw(const bench_frame *f, const bb_result *res, int *as_buffer, bb_error **err)
{
    cJSON *root = cJSON_Parse(bb_result_outputs(res));
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "g");
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(g, "buffer");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(g, "shape");
    const char *why = NULL;
    size_t len = 0;
    const unsigned char *data = NULL;
    *as_buffer = index != NULL;
    if (!index) {
        cJSON_Delete(root);
        return bench_check_frame_data(f, bb_result_outputs(res), err);
    }
    if (!cJSON_IsNumber(index) || cJSON_GetArraySize(shape) != 3 ||
        cJSON_GetArrayItem(shape, 0)->valuedouble != f->h || cJSON_GetArrayItem(shape, 1)->valuedouble != f->w)
        why = "not an ndarray of the frame's shape naming a buffer";
    else if (!(data = bb_result_buffer(res, (size_t)index->valuedouble, &len)) || len != f->bytes)
        why = "a buffer of the wrong size";
    else if (memcmp(data, f->expected, f->bytes) != 0)
        why = "not the inverted frame";
    cJSON_Delete(root);
    return why ? bench_fail(err, BB_ERR_INVALID_RESPONSE, "the frame block's output is %s", why) : 0;
}

/* One bb_block_run_buffers call with the frame as buffer 0; *elapsed is its latency. */
static int raw_once(bb_block *blk, const bench_frame *f, const char *inputs, int check, int *as_buffer,
                    long long *elapsed, bb_error **err)
{
    bb_buffer buf = {.data = f->pixels, .len = f->bytes};
    long long start = bench_now_ns();
    bb_result *res = bb_block_run_buffers(blk, inputs, NULL, &buf, 1);
    *elapsed = bench_now_ns() - start;
    int rc = bench_result_failed(res, "a frame run", err);
    if (rc == 0 && check)
        rc = bench_check_frame_raw(f, res, as_buffer, err);
    bb_result_free(res);
    return rc;
}

int bench_frame_raw_series(bb_block *blk, const bench_frame *f, int runs, int warmup, double budget_s,
                           bench_samples *out, int *as_buffer, bb_error **err)
{
    long long begin = bench_now_ns();
    char *inputs = bench_frame_raw_inputs(f, err);
    if (!inputs)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < warmup + runs && !over_budget(begin, budget_s, out); i++) {
        long long elapsed;
        /* Every output is checked (a 6 MB compare, outside the timed call). */
        rc = raw_once(blk, f, inputs, 1, as_buffer, &elapsed, err);
        if (rc == 0 && i >= warmup)
            rc = bench_samples_add(out, elapsed, err);
    }
    free(inputs);
    return rc;
}

int bench_frames_per_second(bb_block *blk, const bench_frame *f, double seconds, bench_samples *out,
                            double *fps, bb_error **err)
{
    char *inputs = bench_frame_raw_inputs(f, err);
    if (!inputs)
        return -1;
    int rc = 0;
    long long begin = bench_now_ns(), deadline = begin + (long long)(seconds * 1e9), now = begin;
    long long frames = 0;
    int as_buffer = 0;
    /* Back to back, as a video pipeline would call; the first and last outputs are checked. */
    while (rc == 0 && now < deadline) {
        long long elapsed;
        rc = raw_once(blk, f, inputs, frames == 0, &as_buffer, &elapsed, err);
        if (rc == 0)
            rc = bench_samples_add(out, elapsed, err);
        frames++;
        now = bench_now_ns();
    }
    long long elapsed;
    if (rc == 0)
        rc = raw_once(blk, f, inputs, 1, &as_buffer, &elapsed, err);
    *fps = now > begin ? (double)frames * 1e9 / (double)(now - begin) : 0;
    free(inputs);
    return rc;
}
