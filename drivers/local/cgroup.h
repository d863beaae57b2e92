/* cgroup.h: per-worker control groups (memory with swap off, pids, cpu) through
 * cgroup v2 where delegated (cgroup_v2.c), else cgroup v1; detected, never assumed. */
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

/* The name of the leaf the processes of a v2 delegation root are moved into, and of
 * the zygote's own leaf below its blockbox-<pid> group. */
#define BB_CG_HOST_LEAF "blockbox-host"
#define BB_CG_ZYGOTE_LEAF "zygote"

/* Worker slots are 0 … BB_CG_MAX_SLOTS-1 (the zygote's, layers_info.h); each slot has
 * one group per hierarchy, parent/slot-<n>, made once and reused by its workers. */
#define BB_CG_MAX_SLOTS 1024
#define BB_CG_SLOT_PREFIX "slot-"
struct bb_cg_slot;

typedef struct bb_cgroup {
    int version;                 /* 2, 1, or 0 when no memory controller is usable */
    unsigned found;              /* controllers present for this process */
    unsigned usable;             /* controllers we can create groups with and write */
    int have_memsw;              /* v1 memory.memsw.* (swap accounting) exists */
    int have_swap_max;           /* v2 memory.swap.max exists */
    int have_kill;               /* v2 cgroup.kill exists */
    int nhier;
    bb_cgroup_hier hier[BB_CG_MAX_HIER]; /* v2: hier[0].own is the delegation root */
    /* v2 delegation (cgroup_v2.c) */
    int no_leaf;                 /* BB_CG_NO_LEAF: the root's processes must stay where they are */
    int hier_root;               /* the delegation root is the hierarchy's root (may hold processes) */
    int root_busy;               /* the delegation root holds processes: they go to the host leaf */
    unsigned enabled;            /* controllers already in the root's cgroup.subtree_control */
    unsigned we_enabled;         /* ... enabled by this zygote (undone when set-up fails) */
    int host_leaf_made;          /* this zygote made root/blockbox-host */
    int moved_host;              /* ... and moved the root's processes into it */
    int self_leaf;               /* this process lives in parent/zygote */
    int point_len;               /* length of the v2 mount point's path */
    char start[BB_CG_PATH];      /* the group this process started in */
    char home[BB_CG_PATH];       /* where it goes back to at teardown */
    int stale_pending;           /* groups of dead zygotes still busy: sweep again later */
    char refused[768];           /* every write the kernel refused: "file: errno; " */
    char fix[400];               /* the one thing the operator can do, when v2 is not usable */
    char detail[1024];           /* what was found, in words (doctor, errors) */
    struct bb_cg_slot *slots;    /* per-slot groups (cgroup_slot.c), made by the first worker_add */
} bb_cgroup;

typedef struct bb_cgroup_limits {
    long memory_bytes;           /* > 0 */
    long pids_max;               /* > 0 */
    int cpu_one_core;            /* cap the group at one CPU's worth of time */
} bb_cgroup_limits;

/* Finds the hierarchies of this process and, for v2, the delegation root: the group it
 * started in (or the root above blockbox's own leaves) and what that root offers and
 * lets this uid write. Changes nothing on the host. how: BB_CG_PROBE_MKDIR checks
 * writability for real by making and removing a probe directory; BB_CG_ENABLE is the
 * zygote's detection (set-up follows); BB_CG_NO_LEAF: the processes of the root must not
 * be moved into a leaf (an embedding program that opts out). Never fails: what is not
 * usable is left out and explained in cg->detail, with cg->fix saying what would help. */
enum { BB_CG_PROBE_MKDIR = 1, BB_CG_ENABLE = 2, BB_CG_NO_LEAF = 4 };
void bb_cgroup_detect(bb_cgroup *cg, int how);

/* Creates blockbox-<zygote> in every hierarchy and removes the groups of dead zygotes.
 * v2 (cgroup_v2.c): enables the offered controllers in the delegation root (first
 * moving the root's processes into root/blockbox-host), then in blockbox-<zygote>,
 * and moves this process into blockbox-<zygote>/zygote. Nothing above the root is
 * written. On failure everything it changed is undone, cg->version is 0 and the
 * reason (with every refused write) is in cg->detail; returns -1. */
int bb_cgroup_setup(bb_cgroup *cg, pid_t zygote, char *err, size_t errlen);

/* Removes what dead zygotes left once it is empty (called again by worker_add/remove
 * while something was still busy). */
void bb_cgroup_sweep(bb_cgroup *cg);

/* Moves pid, the worker in `slot`, into the slot's group in every hierarchy: made with
 * the limits by the first worker of the slot, reused by the next ones (cgroup_slot.c).
 * A reused group is empty, its limits are written again and its counters start from
 * the values its last worker left. On failure pid is in none of them. */
int bb_cgroup_worker_add(bb_cgroup *cg, pid_t pid, int slot, const bb_cgroup_limits *lim, char *err,
                         size_t errlen);

/* Whether the live worker in `slot` is at its memory cap without a kill yet in this
 * run: its limit was hit since worker_add and its own (anonymous) memory fills >= 3/4
 * of it (reclaiming, thrashing). Read BEFORE the worker is killed: once it has exited
 * its memory is uncharged. */
int bb_cgroup_worker_at_cap(const bb_cgroup *cg, pid_t pid);

/* The worker in `slot` is gone (reaped): reads this run's OOM evidence into *oom (1:
 * the memory controller OOM-killed in the group since worker_add, 0: not), kills
 * whatever is left in the group until it is empty and releases its memory charge, so
 * the group is ready for the slot's next worker; a group that cannot be emptied or
 * released is removed (the next worker gets a new one). Returns 0, or -1 when a group
 * could be neither emptied nor removed. */
int bb_cgroup_worker_remove(bb_cgroup *cg, pid_t pid, int slot, int *oom);

/* Removes the parent groups (after every worker is gone); v2: this process goes back
 * to cg->home first. */
void bb_cgroup_teardown(bb_cgroup *cg);

#endif
