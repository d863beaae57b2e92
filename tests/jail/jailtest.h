/* jailtest.h: runs a function inside one worker jailed by chosen layers (as the
 * zygote would: setup, clone, after_clone, child_setup, reap, worker_gone). */
#ifndef BB_JAILTEST_H
#define BB_JAILTEST_H

#include <stddef.h>
#include <sys/types.h>

#include "jail.h"

/* What a function run inside the jail returns (its exit status). */
enum { JT_ACHIEVED = 0, JT_BLOCKED = 1, JT_BROKEN = 2 };

typedef int (*jt_fn)(void *arg);

typedef struct jt_result {
    int exited;         /* 1: exit status in code; 0: killed by signal sig */
    int code;
    int sig;
    int oom;            /* bb_layers_worker_gone's verdict */
    int gone_rc;        /* its return value */
    char err[400];      /* setup failure text, if any */
} jt_result;

/* Limits used by the tests unless they change them. */
bb_jail_config jt_config(void);

/* Zygote side for a test process: exits the test on failure. */
bb_layers *jt_zygote(const bb_jail_config *cfg);

/* Starts one worker in `slot` that runs fn(arg) after bb_layers_child_setup; returns
 * its pid (the caller reaps it with jt_wait) or -1 with res->err. */
pid_t jt_start(bb_layers *L, int slot, jt_fn fn, void *arg, jt_result *res);
void jt_wait(bb_layers *L, pid_t pid, int slot, jt_result *res);

/* jt_start + jt_wait. */
void jt_run(bb_layers *L, jt_fn fn, void *arg, jt_result *res);

/* Everything off except `keep` (seccomp is not applied by these layers: always off). */
unsigned jt_only(unsigned keep);

#endif
