/* zclient.h: the executor's side of the zygote conversation. A reader thread matches
 * replies to requests, restarts a dead zygote and kills a stopped or hung one; every
 * caller's wait ends by its own deadline plus BB_ZCLIENT_MARGIN_MS. */
#ifndef BB_ZCLIENT_H
#define BB_ZCLIENT_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "blockbox.h"
#include "proto.h"

/* How far past its deadline a caller may wait for the zygote: the time to reap a
 * worker killed at the deadline (its memory is freed before the zygote can answer). */
#define BB_ZCLIENT_MARGIN_MS 1000
/* An unanswered request this old makes the zygote suspect: stopped → killed at once;
 * no answer at all for BB_ZCLIENT_HUNG_MS → killed as hung. Either way it restarts. */
#define BB_ZCLIENT_STUCK_MS 500
#define BB_ZCLIENT_HUNG_MS 10000

typedef struct bb_zclient bb_zclient;

long long bb_now_ms(void);   /* CLOCK_MONOTONIC */
/* Initialises c for timed waits on the clock of bb_now_ms (CLOCK_MONOTONIC), so a
 * change of the wall clock neither cuts a wait short nor stretches it. */
void bb_cond_init_monotonic(pthread_cond_t *c);

/* Starts the zygote (waits up to start_timeout_ms for it to be ready: every start,
 * restarts included, gets that long) and the reader thread. */
bb_zclient *bb_zclient_open(const char *worker_path, const bb_zinit *init, long start_timeout_ms,
                            bb_error **err);

/* One request and its reply (into *m), waiting at most until deadline_ms +
 * BB_ZCLIENT_MARGIN_MS (monotonic ms). fds (0..2) go with the request. *generation
 * (if not NULL) gets the zygote generation that answered. -1 with *err
 * (BackendUnavailable, or the zygote's start error) saying what happened. */
int bb_zclient_call(bb_zclient *zc, bb_zmsg *m, const int *fds, int nfds, long long deadline_ms,
                    unsigned long *generation, bb_error **err);

/* Sends a request whose reply nobody waits for (DISCARD), to the zygote of
 * `generation` only: a worker of a dead zygote is gone already. */
void bb_zclient_post(bb_zclient *zc, bb_zmsg *m, unsigned long generation);

/* The generation of the zygote now running (it grows with every start). */
unsigned long bb_zclient_generation(bb_zclient *zc);

/* Is the zygote of `generation` still running? 0 once it has exited, even before the
 * reader has noticed: its workers then die by PDEATHSIG without reading anything. */
int bb_zclient_alive(bb_zclient *zc, unsigned long generation);

/* For describe(): pid, starts, active layers and the warnings text. */
void bb_zclient_info(bb_zclient *zc, pid_t *pid, unsigned long *starts, unsigned *layers,
                     char *warnings, size_t warnings_len);

/* Stops the reader, closes the control socket (the zygote kills its workers and
 * exits) and waits for the zygote. */
void bb_zclient_close(bb_zclient *zc);

#endif
