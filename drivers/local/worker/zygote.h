/* zygote.h: the zygote's state (one per blockbox-worker process), shared by the zygote
 * loop (main.c) and the worker it forks (worker.c). */
#ifndef BB_ZYGOTE_H
#define BB_ZYGOTE_H

#include <Python.h>
#include <sys/types.h>

#include "jail.h"
#include "proto.h"
#include "seccomp.h"

/* The zygote's state: one per process (the zygote is a process of its own). */
typedef struct zygote {
    int ctl;
    bb_zinit init;
    bb_seccomp_program prog;
    bb_layers *layers;
    PyObject *runtime_module;
    uint32_t serial;             /* the last worker id handed out */
    int nbusy;                   /* slots not free */
    /* Workers by slot. A worker that exits is reaped at once (its cgroups removed)
     * and its status kept until the executor asks for it (REAP) or waives it. */
    struct slot {
        enum { SLOT_FREE, SLOT_LIVE, SLOT_EXITED, SLOT_DISCARDED } state;
        pid_t pid;
        uint32_t wid;
        int wstatus, oom;
        int setup_done;          /* the worker said 'o': its jail is complete */
        char setup_err[400];     /* why its set-up failed ("" if it did not) */
    } slot[BB_LAYERS_MAX_SLOTS];
    /* Forked workers whose set-up is not finished: the zygote maps their ids and
     * cgroups when they say they have unshared, while it goes on serving requests,
     * then listens for the end of their set-up ('o', or 'f' + reason, or EOF). */
    struct pending {
        int ready_r;    /* the child's report pipe; -1: none */
        int release_w;  /* we write 'g' here once the child is mapped and attached */
        int released;
    } pending[BB_LAYERS_MAX_SLOTS];
} zygote;

/* The forked child, after fork: waits for the zygote's release, finishes its jail,
 * then serves requests until its input closes. Never returns. */
void bb_worker_main(zygote *z, int slot, int release_fd, int report, int in_fd, int out_fd,
                    int handoff_fd, int proc_fd, int arena_in_fd, int arena_out_fd)
    __attribute__((noreturn));

#endif
