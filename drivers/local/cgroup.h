/* cgroup.h: per-worker control groups (memory with swap off, pids, cpu) through
 * cgroup v2 where delegated, else cgroup v1; detected from /proc/self, never assumed. */
#ifndef BB_CGROUP_H
#define BB_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

/* Controllers, as bits. */
enum { BB_CG_MEMORY = 1u << 0, BB_CG_PIDS = 1u << 1, BB_CG_CPU = 1u << 2 };

#define BB_CG_PATH 512
#define BB_CG_MAX_HIER 3

/* One mounted hierarchy we use: v2 has one for everything, v1 one per controller
 * (or per co-mounted group of controllers). */
typedef struct bb_cgroup_hier {
    unsigned ctrls;              /* BB_CG_* handled here */
    char own[BB_CG_PATH];        /* the calling process's own cgroup directory */
    char parent[BB_CG_PATH];     /* own/blockbox-<zygote pid>, made by bb_cgroup_setup */
    int parent_made;
} bb_cgroup_hier;

typedef struct bb_cgroup {
    int version;                 /* 2, 1, or 0 when no memory controller is usable */
    unsigned found;              /* controllers present for this process */
    unsigned usable;             /* controllers we can create groups with and write */
    int have_memsw;              /* v1 memory.memsw.* (swap accounting) exists */
    int have_swap_max;           /* v2 memory.swap.max exists */
    int have_kill;               /* v2 cgroup.kill exists */
    int nhier;
    bb_cgroup_hier hier[BB_CG_MAX_HIER];
    char detail[512];            /* what was found, in words (doctor, errors) */
} bb_cgroup;

typedef struct bb_cgroup_limits {
    long memory_bytes;           /* > 0 */
    long pids_max;               /* > 0 */
    int cpu_one_core;            /* cap the group at one CPU's worth of time */
} bb_cgroup_limits;

/* Finds the hierarchies of this process. how: BB_CG_PROBE_MKDIR checks writability for
 * real by making and removing a probe directory; BB_CG_ENABLE also enables missing v2
 * controllers in the own group's cgroup.subtree_control (a change to the host: the
 * zygote does it, doctor does not). Never fails: what is not usable is left out and
 * explained in cg->detail. */
enum { BB_CG_PROBE_MKDIR = 1, BB_CG_ENABLE = 2 };
void bb_cgroup_detect(bb_cgroup *cg, int how);

/* Creates own/blockbox-<zygote> in every hierarchy (v2: enables the controllers
 * for its children) and removes stale blockbox-<pid> groups of dead zygotes. */
int bb_cgroup_setup(bb_cgroup *cg, pid_t zygote, char *err, size_t errlen);

/* Makes parent/worker-<pid> with the limits and moves pid into it. On failure
 * nothing is left behind. */
int bb_cgroup_worker_add(const bb_cgroup *cg, pid_t pid, const bb_cgroup_limits *lim, char *err,
                         size_t errlen);

/* Reads the OOM evidence of the worker's group into *oom, kills whatever is left in
 * it and removes it. Returns 0, or -1 when a group could not be removed. */
int bb_cgroup_worker_remove(const bb_cgroup *cg, pid_t pid, int *oom);

/* Removes the parent groups (after every worker is gone). */
void bb_cgroup_teardown(bb_cgroup *cg);

#endif
