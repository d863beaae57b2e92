/* proto.h: the two small protocols of the local driver: control messages between
 * the executor and its zygote (SOCK_SEQPACKET, fds by SCM_RIGHTS) and the
 * length-prefixed frames a worker reads and writes on its pipes. */
#ifndef BB_PROTO_H
#define BB_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BB_ZYGOTE_MAGIC 0x62627a31u /* "bbz1" */
#define BB_ZYGOTE_CTL_FD 3          /* the zygote's control socket */
#define BB_WORKER_IN_FD 3           /* a worker reads request frames here */
#define BB_WORKER_OUT_FD 4          /* and writes response frames here */
/* fd 5 is the seccomp hand-off socket (seccomp.h BB_SECCOMP_HANDOFF_FD) */
#define BB_WORKER_REPORT_FD 6       /* set-up failures go to the zygote; closed before serving */
#define BB_SETUP_FAILED_STATUS 121  /* a child that could not build its jail */
/* A frame: 4 bytes of little-endian body length, then the request id (random bytes
 * chosen by the executor per request; the reply echoes them), then the body. */
#define BB_FRAME_ID_BYTES 16
#define BB_FRAME_HEADER_BYTES (4 + BB_FRAME_ID_BYTES)

enum bb_zop {
    BB_ZOP_INIT = 1,   /* executor -> zygote: settings; reply: ready or error */
    BB_ZOP_SPAWN,      /* executor -> zygote + 5 fds; reply: pid, wid */
    BB_ZOP_REAP,       /* executor -> zygote: kill + wait worker; reply: status */
    BB_ZOP_REPLY,      /* zygote -> executor, echoing the request's seq */
    BB_ZOP_DISCARD,    /* executor -> zygote: kill worker, reap it later; reply: ok */
};

enum { BB_ZINIT_NO_CGROUP_LEAF = 1 }; /* BLOCKBOX_CGROUP_LEAF=False */

typedef struct bb_zinit {
    int64_t memory_bytes;
    double cpu_seconds;
    int64_t max_threads;
    int64_t max_open_files;
    int64_t max_file_bytes;
    int64_t tmpfs_bytes;
    uint32_t require;
    uint32_t disable;
    uint32_t flags;             /* BB_ZINIT_* */
    int64_t max_stream_bytes;   /* handed to the runtime in each worker */
    int64_t max_result_bytes;
    int64_t max_input_bytes;    /* sizes each worker's buffer arena (shm.h) */
    char policy_path[4096];     /* "" = the embedded default policy */
} bb_zinit;

typedef struct bb_zmsg {
    uint32_t magic;
    uint32_t op;
    uint32_t seq;         /* request number; its reply carries the same */
    uint32_t wid;         /* SPAWN reply, REAP/DISCARD request: the worker's serial */
    int32_t pid;          /* SPAWN reply, REAP request */
    int32_t status;       /* REAP reply: wait status; REPLY: 0 ok, -1 error */
    int32_t oom;          /* REAP reply: the memory cgroup saw an OOM kill */
    int32_t setup_failed; /* REAP reply: the zygote saw its jail set-up fail (text says why) */
    uint32_t layers;      /* INIT reply: active layers */
    char text[1024];      /* error text (NUL-terminated) */
    bb_zinit init;        /* INIT request */
} bb_zmsg;

/* SPAWN carries the request pipe, the response pipe, the seccomp hand-off socket and
 * the worker's two buffer arenas (shm.h: in read-only, out read-write). */
#define BB_ZMSG_MAX_FDS 5

/* Sends msg with up to BB_ZMSG_MAX_FDS fds. 0 or -1 (errno set). Retries EINTR. */
int bb_zsend(int sock, const bb_zmsg *msg, const int *fds, int nfds);
/* Receives one message (and up to maxfds fds, -1 where absent). 0, or -1 on EOF/error. */
int bb_zrecv(int sock, bb_zmsg *msg, int *fds, int maxfds);

/* Writes all of buf (retrying short writes and EINTR). 0 or -1. */
int bb_write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes. 0, or -1 (EOF counts as an error, errno 0). */
int bb_read_all(int fd, void *buf, size_t len);
/* A frame header is 4 bytes of little-endian length. */
void bb_frame_header(uint32_t len, unsigned char out[4]);
uint32_t bb_frame_length(const unsigned char in[4]);

#endif
