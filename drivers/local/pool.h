/* pool.h: the local driver's workers. Spawned through the zygote, kept ready as spares
 * by a keeper thread off the request path, retired or reaped with their evidence. */
#ifndef BB_LOCAL_POOL_H
#define BB_LOCAL_POOL_H

#include <stddef.h>
#include <sys/types.h>

#include "blockbox.h"
#include <blockbox/driver.h>
#include "notify.h"
#include "shm.h"
#include "zclient.h"

typedef struct bb_worker {
    pid_t pid;              /* 0: none */
    uint32_t wid;           /* the zygote's id for it */
    unsigned long gen;      /* the zygote generation that made it */
    int req_w;              /* we write request frames here */
    int resp_r;             /* and read response frames here */
    int stat_fd;            /* /proc/<pid>/stat: its CPU time, read by us */
    unsigned long notify;   /* its seccomp listener in the pool's notifier (0: none) */
    long runs;
    bb_shm shm;             /* the memory it shares with us for buffers (shm.h) */
} bb_worker;

/* What the zygote saw when it reaped a worker (bb_pool_reap). */
typedef struct bb_reap_info {
    int self_signal;    /* a fatal signal the block sent itself (notify.c), or 0 */
    int reaped;         /* the zygote reaped it: the fields below are its */
    int wstatus;
    int oom;
    int setup_failed;   /* the zygote saw its jail set-up fail */
    char setup_error[400];
} bb_reap_info;

typedef struct bb_pool bb_pool;

/* The worker executable: BLOCKBOX_WORKER_PATH, beside the binary, relative to this
 * library, then the configured libexec directory. Caller frees; NULL: out of memory. */
char *bb_pool_find_worker(const char *configured);

/* Starts the notifier, the zygote (worker_path, init; each start may take up to
 * start_timeout_ms) and the keeper thread that keeps spares ready: one at first, one
 * more each time a caller finds none, up to spare_target (spare_workers); one fewer
 * after 5 s without such a miss. */
bb_pool *bb_pool_open(const char *worker_path, const bb_zinit *init, long spare_target,
                      long start_timeout_ms, bb_error **err);
/* Stops the keeper; the zygote kills whatever is left (spares, workers in use). */
void bb_pool_close(bb_pool *p);

/* A spare that is still alive, or a new worker spawned before the deadline. */
int bb_pool_take(bb_pool *p, bb_worker *w, long long deadline, bb_error **err);
/* Hands a worker that is done back: the zygote kills and reaps it; nobody waits. */
void bb_pool_retire(bb_pool *p, bb_worker *w);
/* Kills and reaps a worker; its exit status and evidence go to *info. The wait ends
 * BB_ZCLIENT_MARGIN_MS from now. A worker of a dead zygote is gone already. */
void bb_pool_reap(bb_pool *p, bb_worker *w, bb_reap_info *info);
/* 1: the worker cannot serve any more without having been asked anything (its zygote
 * is gone, or it has closed its end: died while idle). */
int bb_pool_gone_idle(bb_pool *p, const bb_worker *w);
/* CPU time (user + system, all threads) of the worker so far, in ms; -1 if gone. */
long long bb_pool_cpu_ms(const bb_pool *p, const bb_worker *w);

/* The listener that answers and records every worker's denied calls. */
bb_notifier *bb_pool_notifier(bb_pool *p);
/* For describe: the zygote's client and how many spares are ready now. */
bb_zclient *bb_pool_zclient(bb_pool *p);
size_t bb_pool_spares(bb_pool *p);

#endif
