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
 * Sequence (worker/main.c):
 *   zygote start:   L = bb_layers_zygote_setup(cfg)        once, before Python is warm
 *   per worker:     flags = bb_layers_clone_flags(L)
 *                   pid = clone(flags | SIGCHLD)           (raw fork-like clone)
 *     zygote:       bb_layers_after_clone(L, pid, slot)    uid maps, cgroup attach
 *                   then releases the child (a sync pipe)
 *     child:        waits for the release, then dup2s its pipes to fds 3/4, points
 *                   0/1/2 at /dev/null, closes every other fd, setsid, PDEATHSIG,
 *                   bb_layers_child_setup(L, slot)          mounts, hostname,
 *                                                           rlimits, caps, uid
 *                   then seccomp (seccomp.c), then reads its first byte
 *   worker reaped:  bb_layers_worker_gone(L, pid, slot, &oom)   cgroup cleanup
 *   zygote exit:    bb_layers_free(L)
 * `slot` is a small integer unique among live workers of this zygote (uid choice).
 * Child-side functions must not allocate after the fork more than needed and
 * report failures as text in errbuf (the child then exits with status 120+).
 */
bb_layers *bb_layers_zygote_setup(const bb_jail_config *cfg, char *errbuf, size_t errlen);
unsigned long bb_layers_clone_flags(const bb_layers *L);
int bb_layers_after_clone(bb_layers *L, pid_t child, int slot, char *errbuf, size_t errlen);
int bb_layers_child_setup(const bb_layers *L, int slot, char *errbuf, size_t errlen);
int bb_layers_worker_gone(bb_layers *L, pid_t child, int slot, int *oom);
/* Which layers are active (BB_LAYER_* bits), for reports. */
unsigned bb_layers_active(const bb_layers *L);
void bb_layers_free(bb_layers *L);

#endif
