/* layers.h: the seam between the zygote/worker plumbing (worker/main.c) and the
 * jail layers (ns.c, fs.c, cgroup.c, caps.c, rlimits.c). Called at fixed points. */
#ifndef BB_LAYERS_H
#define BB_LAYERS_H

#include <stddef.h>
#include <sys/types.h>

#include "jail.h"

/* What the zygote learned and set up once; owned by the zygote process. Opaque to
 * the plumbing; defined in layers.c. */
typedef struct bb_layers bb_layers;

/*
 * Sequence (worker/main.c). glibc's fork() is used, not a raw clone, so the child's
 * thread descriptor stays right (CPython keeps running in it):
 *   zygote start:   L = bb_layers_zygote_setup(cfg)        once, before Python is warm
 *                                                           (e.g. the shared netns)
 *   per worker:     bb_layers_before_fork(L)               in the zygote, e.g.
 *                                                           unshare(CLONE_NEWPID) so the
 *                                                           next child is pid 1 of a new ns
 *                   pid = fork()
 *     child:        bb_layers_child_unshare(L, &proc)      procfs, unshare(user, mnt, ipc, uts)
 *                   tells the zygote it is ready (sync pipe), then waits
 *     zygote:       bb_layers_after_clone(L, pid, slot)    uid/gid maps, cgroup attach
 *                   then releases the child (sync pipe)
 *     child:        dup2s its pipes to fds 3/4, points 0/1/2 at /dev/null, closes
 *                   every other fd, setsid, PDEATHSIG,
 *                   bb_layers_child_setup(L, slot, proc)    mounts, hostname,
 *                                                           rlimits, caps, uid
 *                   then seccomp (seccomp.c), then reads its first byte
 *   worker reaped:  bb_layers_worker_gone(L, pid, slot, &oom)   cgroup cleanup
 *   zygote exit:    bb_layers_free(L)
 * `slot` is a small integer unique among live workers of this zygote (uid choice).
 * Child-side functions must not allocate after the fork more than needed and
 * report failures as text in errbuf (the child then reports and exits).
 */
bb_layers *bb_layers_zygote_setup(const bb_jail_config *cfg, char *errbuf, size_t errlen);
int bb_layers_before_fork(bb_layers *L, char *errbuf, size_t errlen);
/* *proc_fd: a detached read-only procfs of the worker's pid namespace (mounted while the
 * child still has the zygote's privilege over it) for child_setup to attach, or -1. */
int bb_layers_child_unshare(const bb_layers *L, int *proc_fd, char *errbuf, size_t errlen);
int bb_layers_after_clone(bb_layers *L, pid_t child, int slot, char *errbuf, size_t errlen);
/* Takes proc_fd (closes it; -1: no /proc). */
int bb_layers_child_setup(const bb_layers *L, int slot, int proc_fd, char *errbuf, size_t errlen);
int bb_layers_worker_gone(bb_layers *L, pid_t child, int slot, int *oom);
/* Which layers are active (BB_LAYER_* bits), for reports. */
unsigned bb_layers_active(const bb_layers *L);
void bb_layers_free(bb_layers *L);

#endif
