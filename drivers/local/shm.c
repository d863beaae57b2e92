/* shm.c: the sealed memfd arena a worker shares with the executor (shm.h): buffers in
 * before a request, output buffers checked against the file's own size and copied out. */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define TABLE_HEAD 12   /* magic, flags, count */
#define TABLE_ENTRY 16

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* A memfd of exactly `size` bytes whose size can never change. */
static int sized_memfd(const char *name, size_t size, bb_error **err)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "memfd_create: %s", strerror(errno));
    if (ftruncate(fd, (off_t)size) < 0 || fcntl(fd, F_ADD_SEALS, SEALS) < 0) {
        int e = errno;
        close(fd);
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "cannot size and seal the buffer arena: %s",
                       strerror(e));
    }
    return fd;
}

/* Another descriptor of the same file, opened afresh with other access (a dup would
 * share the access mode). */
static int reopen(int fd, int flags)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, flags | O_CLOEXEC);
}

int bb_shm_create(bb_shm *s, size_t in_size, size_t out_size, int *worker_in, int *worker_out,
                  bb_error **err)
{
    *s = (bb_shm){.in_fd = -1, .out_fd = -1};
    *worker_in = *worker_out = -1;
    long page = sysconf(_SC_PAGESIZE);
    s->page = (size_t)(page > 0 ? page : 4096);
    s->in_size = round_up(in_size + BB_MAX_BUFFERS * s->page, s->page);
    s->out_size = round_up(out_size, s->page);
    s->in_fd = sized_memfd("blockbox-in", s->in_size, err);
    if (s->in_fd < 0)
        goto fail;
    s->out_fd = sized_memfd("blockbox-out", s->out_size, err);
    if (s->out_fd < 0)
        goto fail;
    s->in = mmap(NULL, s->in_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->in_fd, 0);
    if (s->in == MAP_FAILED) {
        s->in = NULL;
        bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "cannot map the buffer arena: %s", strerror(errno));
        goto fail;
    }
    void *out = mmap(NULL, s->out_size, PROT_READ, MAP_SHARED, s->out_fd, 0);
    if (out == MAP_FAILED) {
        bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "cannot map the buffer arena: %s", strerror(errno));
        goto fail;
    }
    s->out = out;
    *worker_in = reopen(s->in_fd, O_RDONLY);
    *worker_out = reopen(s->out_fd, O_RDWR);
    if (*worker_in < 0 || *worker_out < 0) {
        bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "cannot reopen the buffer arena: %s", strerror(errno));
        goto fail;
    }
    return 0;
fail:
    if (*worker_in >= 0)
        close(*worker_in);
    if (*worker_out >= 0)
        close(*worker_out);
    *worker_in = *worker_out = -1;
    bb_shm_destroy(s);
    return -1;
}

void bb_shm_destroy(bb_shm *s)
{
    if (!s->in_size)
        return;   /* never made (a zeroed worker): its fds are not ours */
    if (s->in)
        munmap(s->in, s->in_size);
    if (s->out)
        munmap((void *)s->out, s->out_size);
    if (s->in_fd >= 0)
        close(s->in_fd);
    if (s->out_fd >= 0)
        close(s->out_fd);
    *s = (bb_shm){.in_fd = -1, .out_fd = -1};
}

/* ---- clearing ------------------------------------------------------------------ */

typedef struct range {
    size_t off, len;
} range;

static int by_offset(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Frees the file's pages in [off, off + len); a part of a page is zeroed (shmem). */
static void punch(int fd, size_t off, size_t len)
{
    if (len)
        (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
}

/* Punches [lo, hi) of `in` but the n `keep` ranges and the held ones; the extent left
 * written is then the span of what was kept. */
static void clear_around(bb_shm *s, size_t lo, size_t hi, const uint64_t *off, const uint64_t *len, size_t n)
{
    range keep[2 * BB_MAX_BUFFERS];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 2 * BB_MAX_BUFFERS; i++)
        keep[k++] = (range){(size_t)off[i], (size_t)len[i]};
    for (size_t i = 0; i < s->n_held && k < 2 * BB_MAX_BUFFERS; i++)
        keep[k++] = (range){(size_t)s->held_off[i], (size_t)s->held_len[i]};
    qsort(keep, k, sizeof *keep, by_offset);
    size_t at = lo, new_lo = SIZE_MAX, new_hi = 0;
    for (size_t i = 0; i < k; i++) {
        size_t start = keep[i].off, end = keep[i].off + keep[i].len;
        if (!keep[i].len)
            continue;
        if (start < new_lo)
            new_lo = start;
        if (end > new_hi)
            new_hi = end;
        if (end <= at || start >= hi)
            continue;
        if (start > at)
            punch(s->in_fd, at, start - at);
        at = end;
    }
    if (at < hi)
        punch(s->in_fd, at, hi - at);
    s->dirty_lo = new_hi ? new_lo : 0;
    s->dirty_hi = new_hi;
}

void bb_shm_release(bb_shm *s)
{
    if (!s->in_size)
        return;
    /* all of `in` (pages the worker's reads made are zeros, but still pages) and all of
     * `out` (the worker may have written more than it named) */
    clear_around(s, 0, s->in_size, NULL, NULL, 0);
    punch(s->out_fd, 0, s->out_size);
}

/* ---- requests ------------------------------------------------------------------ */

typedef struct placer {
    bb_shm *s;
    size_t used;
    size_t n;
    uint64_t off[BB_MAX_BUFFERS], len[BB_MAX_BUFFERS];
} placer;

/* Room for len bytes in `in` at a page boundary, clear of every held range; NULL when
 * there is none. */
static void *place(void *ctx, size_t len)
{
    placer *p = ctx;
    bb_shm *s = p->s;
    size_t at = round_up(p->used, s->page);
    for (int moved = 1; moved;) {
        moved = 0;
        for (size_t i = 0; i < s->n_held; i++)
            if (at < s->held_off[i] + s->held_len[i] && s->held_off[i] < at + (len ? len : 1)) {
                at = round_up((size_t)(s->held_off[i] + s->held_len[i]), s->page);
                moved = 1;
            }
    }
    if (p->n == BB_MAX_BUFFERS || at > s->in_size || len > s->in_size - at)
        return NULL;
    p->off[p->n] = at;
    p->len[p->n] = len;
    p->n++;
    p->used = at + len;
    if (len) {   /* written from here on: cleared by the next request or a release */
        if (s->dirty_hi == 0 || at < s->dirty_lo)
            s->dirty_lo = at;
        if (at + len > s->dirty_hi)
            s->dirty_hi = at + len;
    }
    return s->in + at;
}

/* The envelope of a call without the arena: its buffers in the data form. */
static int without_arena(bb_shm *s, const bb_call *call, int with_code, bb_buf *prefix, char **owned,
                         const char **env, size_t *env_len, bb_error **err)
{
    clear_around(s, s->dirty_lo, s->dirty_hi, NULL, NULL, 0);   /* nothing of this call stays */
    if (!(*owned = bb_call_envelope_data(call, with_code, env_len)))
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    *env = *owned;
    prefix->len = 0;
    return 0;
}

int bb_shm_request(bb_shm *s, const bb_call *call, int with_code, bb_buf *prefix, char **owned,
                   const char **env, size_t *env_len, bb_error **err)
{
    *owned = NULL;
    placer p = {.s = s};
    size_t n = bb_call_buffer_count(call);   /* first: this driver takes buffers */
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const void *data = bb_call_buffer(call, i, &len);
        void *dst = place(&p, len);
        if (!dst)
            return without_arena(s, call, with_code, prefix, owned, env, env_len, err);
        if (len)
            memcpy(dst, data, len);
    }
    /* ndarrays in the data form go the same way: decoded straight into `in` */
    size_t moved = 0;
    bb_error *failure = NULL;
    *owned = bb_call_envelope_arrays(call, with_code, place, &p, &moved, env_len, &failure);
    if (*owned) {
        *env = *owned;
    } else if (failure && bb_error_get_kind(failure) == BB_ERR_INVALID_REQUEST) {
        bb_error_free(failure);   /* no room beside what blocks hold: the call goes as it came */
        return without_arena(s, call, with_code, prefix, owned, env, env_len, err);
    } else if (failure) {
        if (err && !*err)
            *err = failure;
        else
            bb_error_free(failure);
        return -1;
    }
    if (!*owned && !(*env = bb_call_envelope(call, with_code, env_len)))
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    /* Before the worker reads anything: what earlier calls left in `in` beside this call's
     * inputs is cleared (a byte past an input's end in its last page, a larger frame's
     * tail), so a block reads its own inputs, the ranges it holds, and zeros. */
    clear_around(s, s->dirty_lo, s->dirty_hi, p.off, p.len, p.n);
    unsigned char head[TABLE_HEAD];
    memcpy(head, BB_SHM_MAGIC, 4);
    put32(head + 4, bb_call_result_buffers(call) ? BB_SHM_FLAG_RAW_IMAGES : 0);
    put32(head + 8, (uint32_t)p.n);
    bb_buf_append(prefix, head, sizeof head);
    for (size_t i = 0; i < p.n; i++) {
        unsigned char e[TABLE_ENTRY];
        put64(e, p.off[i]);
        put64(e + 8, p.len[i]);
        bb_buf_append(prefix, e, sizeof e);
    }
    if (prefix->failed) {
        free(*owned);
        *owned = NULL;
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

/* ---- replies --------------------------------------------------------------------- */

static void release_all(bb_reply *reply, size_t from)
{
    for (size_t i = from; i < reply->n_buffers; i++)
        free(reply->buffers[i].data);
    reply->n_buffers = from;
    if (!from) {
        free(reply->buffers);
        reply->buffers = NULL;
    }
}

int bb_shm_reply(bb_shm *s, char *body, size_t *len, size_t max_total, bb_reply *reply, bb_error **err)
{
    if (*len < 4 || memcmp(body, BB_SHM_MAGIC, 4) != 0)
        return 0;   /* a plain envelope */
    const unsigned char *b = (const unsigned char *)body;
    if (*len < TABLE_HEAD)
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: a buffer table cut short");
    uint32_t held = get32(b + 4), count = get32(b + 8);
    if (count > BB_MAX_BUFFERS)
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: %u buffers, at most %d are allowed",
                       count, BB_MAX_BUFFERS);
    if (held > BB_MAX_BUFFERS)
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: %u held ranges, at most %d", held,
                       BB_MAX_BUFFERS);
    size_t table = TABLE_HEAD + (size_t)(count + held) * TABLE_ENTRY;
    if (*len < table)
        return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: a buffer table cut short");
    /* Bounds from the file itself, never from the worker's word: the size is sealed. */
    struct stat st;
    if (fstat(s->out_fd, &st) < 0 || (uint64_t)st.st_size != s->out_size ||
        (fcntl(s->out_fd, F_GET_SEALS) & SEALS) != SEALS)
        return bb_fail(err, BB_ERR_INTERNAL, "the buffer arena changed size or lost its seals");
    uint64_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t off = get64(b + TABLE_HEAD + i * TABLE_ENTRY), n = get64(b + TABLE_HEAD + i * TABLE_ENTRY + 8);
        if (off > s->out_size || n > s->out_size - off)
            return bb_fail(err, BB_ERR_INVALID_RESPONSE,
                           "response: buffer %u (%llu bytes at %llu) lies outside the %zu-byte arena", i,
                           (unsigned long long)n, (unsigned long long)off, s->out_size);
        total += n;   /* at most 64 x 2^63: no wrap */
    }
    /* Held input ranges only steer where the next inputs go; still, inside `in`. */
    for (uint32_t i = 0; i < held; i++) {
        const unsigned char *e = b + TABLE_HEAD + (count + i) * TABLE_ENTRY;
        uint64_t off = get64(e), n = get64(e + 8);
        if (off > s->in_size || n > s->in_size - off)
            return bb_fail(err, BB_ERR_INVALID_RESPONSE, "response: a held range lies outside the arena");
    }
    s->n_held = held;
    for (uint32_t i = 0; i < held; i++) {
        const unsigned char *e = b + TABLE_HEAD + (count + i) * TABLE_ENTRY;
        s->held_off[i] = get64(e);
        s->held_len[i] = get64(e + 8);
    }
    if (total > max_total)
        return bb_fail(err, BB_ERR_OUTPUT_LIMIT, "result: %llu bytes of buffers, over the limit of %zu bytes",
                       (unsigned long long)total, max_total);
    size_t first = reply->n_buffers;
    if (!reply->buffers && count &&
        !(reply->buffers = calloc(BB_MAX_BUFFERS, sizeof *reply->buffers)))
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    for (uint32_t i = 0; i < count; i++) {
        uint64_t off = get64(b + TABLE_HEAD + i * TABLE_ENTRY), n = get64(b + TABLE_HEAD + i * TABLE_ENTRY + 8);
        unsigned char *dst = aligned_alloc(BB_SHM_ALIGN, round_up(n ? (size_t)n : 1, BB_SHM_ALIGN));
        if (!dst) {
            release_all(reply, first);
            return bb_fail(err, BB_ERR_INTERNAL, "out of memory for a %llu-byte buffer", (unsigned long long)n);
        }
        /* Into the result's own memory: nothing the worker does later can change these
         * bytes. From the mapping when the range has no hole (its pages resident, no
         * faults); else pread, where a hole reads as zeros without a page being made. A
         * worker that punches the range between the check and the copy (MADV_REMOVE on
         * its mapping) makes the executor fault in zero pages of `out`: at most this
         * buffer's length again, given back with the arena (bb_shm_release). */
        size_t done = 0;
        off_t hole = n ? lseek(s->out_fd, (off_t)off, SEEK_HOLE) : 0;
        if (n && hole >= 0 && (uint64_t)hole >= off + n) {
            memcpy(dst, s->out + off, (size_t)n);
            done = (size_t)n;
        }
        while (done < n) {
            ssize_t r = pread(s->out_fd, dst + done, (size_t)n - done, (off_t)(off + done));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                free(dst);
                release_all(reply, first);
                return bb_fail(err, BB_ERR_INTERNAL, "cannot read the buffer arena: %s",
                               r < 0 ? strerror(errno) : "short read");
            }
            done += (size_t)r;
        }
        reply->buffers[reply->n_buffers++] = (bb_reply_buffer){.data = dst, .len = (size_t)n};
    }
    memmove(body, body + table, *len - table);
    *len -= table;
    body[*len] = '\0';
    return 0;
}
