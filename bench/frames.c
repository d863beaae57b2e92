/* frames.c: the frame benchmarks of issue 12: a 1080p or 4K uint8 frame into a live block
 * and its inverse back (binary path, JSON data form), frames per second, and their baselines. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_internal.h"
#include "buf.h"
#include "error.h"
#include "wire.h"

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
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
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
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
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
        rc = bb_fail(err, BB_ERR_INTERNAL, "memcpy_frame: the copy differs");
    free(dst);
    return rc;
}

/* One python3 times `255 - f` on a frame of the same shape and prints the latencies. */
static const char numpy_invert_py[] =
    "import json, sys, time\n"
    "import numpy as np\n"
    "h, w, warmup, runs = (int(a) for a in sys.argv[1:5])\n"
    "i = np.arange(h * w * 3, dtype=np.uint64)\n"
    "f = ((i * 7 + i // 5760) & 255).astype(np.uint8).reshape(h, w, 3)\n"
    "clock = time.perf_counter_ns\n"
    "samples = []\n"
    "for k in range(warmup + runs):\n"
    "    start = clock()\n"
    "    g = 255 - f\n"
    "    elapsed = clock() - start\n"
    "    if k >= warmup:\n"
    "        samples.append(elapsed)\n"
    "    del g\n"
    "g = 255 - f\n"
    "assert g[0, 1, 0] == 255 - f[0, 1, 0] and g.dtype == np.uint8\n"
    "json.dump(samples, sys.stdout)\n";

int bench_numpy_invert(const bench_plan *plan, const bench_frame *f, bench_samples *out, bb_error **err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return bb_fail(err, BB_ERR_INTERNAL, "pipe: %s", strerror(errno));
    char h[16], w[16], warmup[16], runs[16];
    snprintf(h, sizeof h, "%d", f->h);
    snprintf(w, sizeof w, "%d", f->w);
    snprintf(warmup, sizeof warmup, "%d", plan->warmup_runs);
    snprintf(runs, sizeof runs, "%d", plan->numpy_runs);
    char *const argv[] = {"python3", "-c", (char *)numpy_invert_py, h, w, warmup, runs, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    pid_t pid;
    int e = posix_spawn(&pid, BENCH_PYTHON, &fa, NULL, argv, bench_python_env);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (e != 0) {
        close(fds[0]);
        return bb_fail(err, BB_ERR_CONFIGURATION, "cannot start %s: %s", BENCH_PYTHON, strerror(e));
    }
    bb_buf text = {0};
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fds[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (text.len < (16u << 20))
            bb_buf_append(&text, chunk, (size_t)n);
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int rc = 0;
    cJSON *root = text.data && !text.failed ? cJSON_Parse(text.data) : NULL;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = bb_fail(err, BB_ERR_CONFIGURATION, "the numpy baseline failed (status %d; is numpy installed for %s?)",
                     status, BENCH_PYTHON);
    else if (!cJSON_IsArray(root))
        rc = bb_fail(err, BB_ERR_INVALID_RESPONSE, "the numpy baseline printed no JSON list");
    const cJSON *v, *list = rc == 0 ? root : NULL;
    cJSON_ArrayForEach(v, list) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
            rc = bb_fail(err, BB_ERR_INVALID_RESPONSE, "the numpy baseline gave a bad sample");
            break;
        }
        if ((rc = bench_samples_add(out, (long long)v->valuedouble, err)) < 0)
            break;
    }
    cJSON_Delete(root);
    bb_buf_free(&text);
    return rc;
}

/* ---- the JSON data form ------------------------------------------------------------ */

char *bench_frame_data_inputs(const bench_frame *f, size_t *len, bb_error **err)
{
    bb_buf b = {0};
    bb_buf_printf(&b, "{\"f\": {\"_type\": \"ndarray\", \"dtype\": \"uint8\", \"shape\": [%d, %d, %d], \"data\": \"",
                  f->h, f->w, f->c);
    bb_base64_encode(f->pixels, f->bytes, &b);
    bb_buf_puts(&b, "\"}}");
    char *text = bb_buf_steal(&b, len);
    if (!text)
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    return text;
}

/* The outputs {"g": ndarray} of the frame block, in the data form, equal to f->expected. */
int bench_check_frame_data(const bench_frame *f, const char *outputs, bb_error **err)
{
    cJSON *root = cJSON_Parse(outputs);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "g");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(g, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(g, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(g, "data");
    const char *why = NULL;
    if (!cJSON_IsString(dtype) || strcmp(dtype->valuestring, "uint8") != 0 || cJSON_GetArraySize(shape) != 3 ||
        cJSON_GetArrayItem(shape, 0)->valuedouble != f->h || cJSON_GetArrayItem(shape, 1)->valuedouble != f->w)
        why = "not a uint8 ndarray of the frame's shape";
    else if (!cJSON_IsString(data))
        why = "not in the data (base64) form";
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    if (!why && bb_base64_decode(data->valuestring, strlen(data->valuestring), &raw, &raw_len) < 0)
        why = "bad base64";
    if (!why && (raw_len != f->bytes || memcmp(raw, f->expected, f->bytes) != 0))
        why = "not the inverted frame";
    free(raw);
    cJSON_Delete(root);
    return why ? bb_fail(err, BB_ERR_INVALID_RESPONSE, "the frame block's output is %s", why) : 0;
}

int bench_frame_data_series(bb_block *blk, const bench_frame *f, const char *inputs, int runs, int warmup,
                            bench_samples *out, bb_error **err)
{
    for (int i = 0; i < warmup + runs; i++) {
        long long start = bench_now_ns();
        bb_result *res = bb_block_run(blk, inputs, NULL);
        long long elapsed = bench_now_ns() - start;
        int rc = 0;
        if (!res)
            rc = bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        else if (!bb_result_ok(res))
            rc = bb_fail(err, bb_error_get_kind(bb_result_error(res)), "a frame run failed: %s: %s",
                         bb_error_type_name(bb_result_error(res)), bb_error_message(bb_result_error(res)));
        else if (i == 0 || i == warmup + runs - 1)   /* decoding 8 MB of base64 is slow */
            rc = bench_check_frame_data(f, bb_result_outputs(res), err);
        bb_result_free(res);
        if (rc == 0 && i >= warmup)
            rc = bench_samples_add(out, elapsed, err);
        if (rc < 0)
            return -1;
    }
    return 0;
}
