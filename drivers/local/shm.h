/* shm.h: the memory a worker shares with the executor for buffers (issue 12): two
 * sealed memfds per worker, mapped by the worker at spawn, before it reads anything. */
#ifndef BB_LOCAL_SHM_H
#define BB_LOCAL_SHM_H

#include <blockbox/driver.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * The arena of one worker. The executor makes both files at spawn, sizes them
 * (in: max input bytes, out: max result bytes) and seals their size (F_SEAL_SHRINK |
 * F_SEAL_GROW | F_SEAL_SEAL), so no side can ever make the other fault (SIGBUS) past
 * their end. The worker gets `in` through a read-only descriptor (its mapping can never
 * become writable) and `out` read-write; it maps both before its seccomp filter and
 * closes the descriptors, so it never holds a descriptor to shared memory while block
 * code runs (no new mapping of it: no executable alias, W^X kept; nothing to pass on).
 *
 * in:  the executor copies a call's buffers (and the decoded `data` arrays) in before
 *      it sends the request, at offsets it chooses, and clears whatever earlier calls
 *      left beside them; it never writes while a request is out. The worker reads them
 *      in place (numpy views, writable: its mapping is private, copy-on-write).
 *      Both files keep their pages between calls and give them back once the instance
 *      is idle (bb_shm_release).
 * out: the worker writes its output arrays and names (offset, length) pairs in its
 *      reply; the executor checks each against the file's own size (never the worker's
 *      word) and the result limit, then copies the bytes into memory of the result's
 *      own, so what the caller reads cannot change under it: from its read-only mapping
 *      when the range has no hole (no page faults once resident), else with pread (a
 *      hole reads as zeros without the executor making pages).
 */
typedef struct bb_shm {
    int in_fd;              /* executor's read-write descriptor of `in` (-1: none) */
    unsigned char *in;      /* its mapping, read-write, in_size bytes */
    size_t in_size;
    int out_fd;             /* executor's descriptor of `out` (reads, holes, punching) */
    const unsigned char *out;   /* its read-only mapping, out_size bytes */
    size_t out_size;
    size_t page;
    /* Input ranges the worker says a block still holds (its last reply): left alone
     * when the next call's buffers are placed, so what the block kept does not change. */
    size_t n_held;
    uint64_t held_off[BB_MAX_BUFFERS], held_len[BB_MAX_BUFFERS];
    /* The extent of `in` the executor may have written since it was last cleared (the
     * held ranges inside it): what a request clears around its own inputs, so a block
     * never reads bytes of an earlier call beside them (attack note F4). */
    size_t dirty_lo, dirty_hi;
} bb_shm;

/* Wire prefix of a frame body that carries a buffer table: these 4 bytes, then
 * uint32 flags, uint32 count, count x (uint64 offset, uint64 length), little endian,
 * then the JSON envelope. A JSON body never starts with NUL. In a reply, flags is the
 * number of held input ranges, listed (offset, length) after the outputs. Inputs sit
 * at page boundaries: the worker maps `in` privately (copy-on-write: a block may write
 * into its input arrays) and drops its copies of a range once no block holds it. */
#define BB_SHM_MAGIC "\0BT1"
#define BB_SHM_FLAG_RAW_IMAGES 1u   /* request: the caller reads raw images back */
#define BB_SHM_ALIGN 64

/* Makes the two files and maps `in`. *worker_in / *worker_out are the descriptors to
 * hand to the worker (read-only and read-write), the caller closes them once sent.
 * 0, or -1 with *err (BackendUnavailable). */
int bb_shm_create(bb_shm *s, size_t in_size, size_t out_size, int *worker_in, int *worker_out,
                  bb_error **err);
void bb_shm_destroy(bb_shm *s);

/* A call's request body is `prefix` (the buffer table, appended) then *env (*env_len
 * bytes: the envelope with code or not; *owned is it when this made its own, else NULL).
 * Copies the call's buffers into `in`; an ndarray or raw image of the inputs in the
 * data form is decoded into it too (its `data` member becomes a `buffer` reference).
 * Must come before any bb_call_envelope of the call. 0, or -1 with *err. When the
 * buffers do not fit beside what blocks hold, the call goes without the arena: the
 * envelope has the data form and the table none. */
int bb_shm_request(bb_shm *s, const bb_call *call, int with_code, bb_buf *prefix, char **owned,
                   const char **env, size_t *env_len, bb_error **err);

/*
 * Gives the arena's pages back (attack note F3): every page of `in` but the held
 * ranges, and all of `out`, are punched out of the files (FALLOC_FL_PUNCH_HOLE), so
 * the memory is freed, whoever it was charged to, and both read as zeros. Call only
 * between requests. The local driver calls it once an instance has been idle for
 * BLOCKBOX_ARENA_IDLE_MS (0: after every call); until then the pages stay for the next
 * call, which clears what it does not overwrite itself.
 */
void bb_shm_release(bb_shm *s);

/* Reads the buffer table of a reply body (hostile): count at most BB_MAX_BUFFERS,
 * each (offset, length) inside `out` by the file's own size, their total within
 * max_total; each is copied into memory of its own (aligned, released with free) and
 * appended to reply->buffers. The envelope after the table moves to the start of body;
 * *len becomes its length. A body without a table is left alone. 0, or -1 with *err
 * (InvalidResponse, OutputLimit past max_total). */
int bb_shm_reply(bb_shm *s, char *body, size_t *len, size_t max_total, bb_reply *reply, bb_error **err);

#endif
