/* cgroup_slot.c: the per-slot worker groups (v1 and v2): made once with their limits,
 * reused by every worker of the slot, emptied, released and read per run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup_int.h"
#include "jailutil.h"

/* What a slot's group may still hold once its worker is gone and it was released
 * (kernel objects that outlive a process: a few dentries and inodes, the last
 * page-table pages); more and the group is made anew, so the next worker starts with
 * its whole limit. */
#define SLOT_RESIDUE_BYTES (2L << 20)

typedef struct bb_cg_slot {
    unsigned made;       /* bit h: hier[h] has this slot's group, limits set */
    pid_t pid;           /* the worker in it (0: none) */
    long oom_base;       /* memory: oom kills (v1 oom_control, v2 memory.events) at add */
    long max_base;       /* v2: memory.events "max" at add (v1: failcnt is reset instead) */
} bb_cg_slot;

#define write_knob bb_cg_write
#define read_long bb_cg_read_long
#define exists bb_cg_exists

static int slot_dir(const bb_cgroup_hier *h, int slot, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/" BB_CG_SLOT_PREFIX "%d", h->parent, slot);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

void bb_cg_slots_free(bb_cgroup *cg)
{
    free(cg->slots);
    cg->slots = NULL;
}

static int set_limits(const bb_cgroup *cg, const bb_cgroup_hier *H, const char *dir,
                      const bb_cgroup_limits *lim, char *err, size_t errlen)
{
    char v[64];
    if (H->ctrls & BB_CG_MEMORY) {
        snprintf(v, sizeof v, "%ld", lim->memory_bytes);
        if (cg->version == 2) {
            if (write_knob(dir, "memory.max", v) < 0)
                return bb_jail_fail(err, errlen, "cgroup %s/memory.max: %s", dir, bb_jail_strerror(errno));
            if (exists(dir, "memory.swap.max") && write_knob(dir, "memory.swap.max", "0") < 0)
                return bb_jail_fail(err, errlen, "cgroup %s/memory.swap.max: %s", dir,
                                    bb_jail_strerror(errno));
            if (write_knob(dir, "memory.oom.group", "1") < 0 && errno != ENOENT)
                return bb_jail_fail(err, errlen, "cgroup %s/memory.oom.group: %s", dir,
                                    bb_jail_strerror(errno));
        } else {
            if (write_knob(dir, "memory.limit_in_bytes", v) < 0)
                return bb_jail_fail(err, errlen, "cgroup %s/memory.limit_in_bytes: %s", dir,
                                    bb_jail_strerror(errno));
            if (cg->have_memsw && write_knob(dir, "memory.memsw.limit_in_bytes", v) < 0)
                return bb_jail_fail(err, errlen, "cgroup %s/memory.memsw.limit_in_bytes: %s", dir,
                                    bb_jail_strerror(errno));
            if (write_knob(dir, "memory.swappiness", "0") < 0)
                return bb_jail_fail(err, errlen, "cgroup %s/memory.swappiness: %s", dir,
                                    bb_jail_strerror(errno));
        }
    }
    if (H->ctrls & BB_CG_PIDS) {
        snprintf(v, sizeof v, "%ld", lim->pids_max);
        if (write_knob(dir, "pids.max", v) < 0)
            return bb_jail_fail(err, errlen, "cgroup %s/pids.max: %s", dir, bb_jail_strerror(errno));
    }
    if ((H->ctrls & BB_CG_CPU) && lim->cpu_one_core) {
        /* Optional: one core's worth per worker. A failure here is not a hole in the
         * sandbox (RLIMIT_CPU and the wall-clock timeout still hold), but we report it. */
        if (cg->version == 2) {
            if (write_knob(dir, "cpu.max", "100000 100000") < 0)
                return bb_jail_fail(err, errlen, "cgroup %s/cpu.max: %s", dir, bb_jail_strerror(errno));
        } else {
            long period = read_long(dir, "cpu.cfs_period_us", NULL);
            snprintf(v, sizeof v, "%ld", period > 0 ? period : 100000L);
            if (write_knob(dir, "cpu.cfs_quota_us", v) < 0)
                return bb_jail_fail(err, errlen, "cgroup %s/cpu.cfs_quota_us: %s", dir,
                                    bb_jail_strerror(errno));
        }
    }
    return 0;
}

/* The memory controller's kill count (cumulative: never reset by the kernel). */
static long oom_kills(const bb_cgroup *cg, const char *dir)
{
    if (cg->version == 2)
        return read_long(dir, "memory.events", "oom_kill");
    long kills = read_long(dir, "memory.oom_control", "oom_kill");
    /* kernels before 4.13 have no counter: limit hits (reset per run) stand in */
    return kills >= 0 ? kills : read_long(dir, "memory.failcnt", NULL);
}

/* Counters from here on belong to the slot's next worker. v1 resets what it can
 * (failcnt, max usage); cumulative ones are read as the base to subtract. */
static void take_base(const bb_cgroup *cg, bb_cg_slot *S, const char *dir)
{
    if (cg->version == 1) {
        write_knob(dir, "memory.failcnt", "0");
        write_knob(dir, "memory.max_usage_in_bytes", "0");
        if (cg->have_memsw) {
            write_knob(dir, "memory.memsw.failcnt", "0");
            write_knob(dir, "memory.memsw.max_usage_in_bytes", "0");
        }
        S->max_base = 0;
    } else {
        long m = read_long(dir, "memory.events", "max");
        S->max_base = m > 0 ? m : 0;
    }
    long k = oom_kills(cg, dir);   /* pre-4.13 v1: the failcnt just reset */
    S->oom_base = k > 0 ? k : 0;
}

/* Gives back what the last worker left charged (page cache it read first, kernel
 * objects): v1 memory.force_empty, v2 memory.reclaim (Linux 5.19+). 0 when what is
 * left is at most SLOT_RESIDUE_BYTES. */
static int release_charge(const bb_cgroup *cg, const char *dir)
{
    const char *usage = cg->version == 2 ? "memory.current" : "memory.usage_in_bytes";
    long used = read_long(dir, usage, NULL);
    if (used >= 0 && used <= SLOT_RESIDUE_BYTES)
        return 0;
    if (cg->version == 1) {
        write_knob(dir, "memory.force_empty", "0");
    } else {
        char v[32];
        snprintf(v, sizeof v, "%ld", used > 0 ? used : 1L << 30);
        write_knob(dir, "memory.reclaim", v);   /* EAGAIN when not all of it went: checked below */
    }
    used = read_long(dir, usage, NULL);
    return used >= 0 && used <= SLOT_RESIDUE_BYTES ? 0 : -1;
}

static int make_group(bb_cgroup *cg, const bb_cgroup_hier *H, const char *dir, const bb_cgroup_limits *lim,
                      char *err, size_t errlen)
{
    if (mkdir(dir, 0755) < 0) {
        /* A leftover (of a zygote of the same number, or a group we could not release):
         * clear it and retry. */
        if (errno != EEXIST || bb_cg_kill_and_remove(dir, cg->have_kill) < 0 || mkdir(dir, 0755) < 0)
            return bb_jail_fail(err, errlen, "cannot create cgroup %s: %s", dir, bb_jail_strerror(errno));
    }
    if (set_limits(cg, H, dir, lim, err, errlen) < 0) {
        rmdir(dir);
        return -1;
    }
    return 0;
}

int bb_cgroup_worker_add(bb_cgroup *cg, pid_t pid, int slot, const bb_cgroup_limits *lim, char *err,
                         size_t errlen)
{
    if (cg->stale_pending)
        bb_cgroup_sweep(cg);
    if (slot < 0 || slot >= BB_CG_MAX_SLOTS)
        return bb_jail_fail(err, errlen, "cgroup slot %d out of range", slot);
    if (!cg->slots && !(cg->slots = calloc(BB_CG_MAX_SLOTS, sizeof *cg->slots)))
        return bb_jail_fail(err, errlen, "out of memory for the cgroup slots");
    bb_cg_slot *S = &cg->slots[slot];
    int moved = 0;
    for (int h = 0; h < cg->nhier; h++) {
        const bb_cgroup_hier *H = &cg->hier[h];
        char dir[BB_CG_PATH + 64];
        if (!H->parent_made || slot_dir(H, slot, dir, sizeof dir) < 0) {
            bb_jail_fail(err, errlen, "cgroup parent missing or path too long (%s)", H->own);
            goto undo;
        }
        if (S->made & (1u << h)) {
            /* Reused: empty since its last worker (worker_remove saw to it; anything
             * else there now is not ours to share a group with). The limits are
             * written again: nothing a worker did may outlive it. */
            if (bb_cg_empty(dir, cg->have_kill) < 0 || set_limits(cg, H, dir, lim, err, errlen) < 0) {
                bb_cg_kill_and_remove(dir, cg->have_kill);
                S->made &= ~(1u << h);
            }
        }
        if (!(S->made & (1u << h))) {
            if (make_group(cg, H, dir, lim, err, errlen) < 0)
                goto undo;
            S->made |= 1u << h;
        }
        if (H->ctrls & BB_CG_MEMORY)
            take_base(cg, S, dir);
        char v[32];
        snprintf(v, sizeof v, "%d", (int)pid);
        if (write_knob(dir, "cgroup.procs", v) < 0) {
            bb_jail_fail(err, errlen, "cannot move worker %d into %s: %s", (int)pid, dir,
                         bb_jail_strerror(errno));
            goto undo;
        }
        moved = h + 1;
    }
    S->pid = pid;
    return 0;
undo:
    /* pid is in the groups of hier[0 … moved-1]: those are not reusable as they are. */
    for (int h = 0; h < moved; h++) {
        char dir[BB_CG_PATH + 64];
        if (slot_dir(&cg->hier[h], slot, dir, sizeof dir) == 0)
            bb_cg_kill_and_remove(dir, cg->have_kill);
        S->made &= ~(1u << h);
    }
    return -1;
}

int bb_cgroup_worker_at_cap(const bb_cgroup *cg, pid_t pid)
{
    if (!cg->slots || pid <= 0)
        return 0;
    for (int slot = 0; slot < BB_CG_MAX_SLOTS; slot++) {
        const bb_cg_slot *S = &cg->slots[slot];
        if (S->pid != pid)
            continue;
        for (int h = 0; h < cg->nhier; h++) {
            const bb_cgroup_hier *H = &cg->hier[h];
            char dir[BB_CG_PATH + 64];
            if (!(H->ctrls & BB_CG_MEMORY) || !(S->made & (1u << h)) || slot_dir(H, slot, dir, sizeof dir) < 0)
                continue;
            int v2 = cg->version == 2;
            /* this run's limit hits: v1 failcnt was reset at attach, v2 counts on */
            long hits = v2 ? read_long(dir, "memory.events", "max") - S->max_base
                           : read_long(dir, "memory.failcnt", NULL);
            long anon = read_long(dir, "memory.stat", v2 ? "anon" : "rss");
            long limit = read_long(dir, v2 ? "memory.max" : "memory.limit_in_bytes", NULL);
            /* its own memory, not page cache, fills the cap */
            return hits > 0 && limit > 0 && anon >= limit / 4 * 3;
        }
        return 0;
    }
    return 0;
}

int bb_cgroup_worker_remove(bb_cgroup *cg, pid_t pid, int slot, int *oom)
{
    int rc = 0, ooms = 0;
    if (oom)
        *oom = 0;
    if (slot < 0 || slot >= BB_CG_MAX_SLOTS || !cg->slots || cg->slots[slot].pid != pid)
        return 0;   /* never attached (it died before worker_add, or that failed) */
    bb_cg_slot *S = &cg->slots[slot];
    for (int h = 0; h < cg->nhier; h++) {
        const bb_cgroup_hier *H = &cg->hier[h];
        char dir[BB_CG_PATH + 64];
        if (!(S->made & (1u << h)) || slot_dir(H, slot, dir, sizeof dir) < 0)
            continue;
        if ((H->ctrls & BB_CG_MEMORY) && oom_kills(cg, dir) - S->oom_base > 0)
            ooms = 1;
        /* Ready for the next worker, or gone. */
        int ready = bb_cg_empty(dir, cg->have_kill) == 0 &&
                    (!(H->ctrls & BB_CG_MEMORY) || release_charge(cg, dir) == 0);
        if (!ready) {
            S->made &= ~(1u << h);
            if (bb_cg_kill_and_remove(dir, cg->have_kill) < 0)
                rc = -1;
        }
    }
    S->pid = 0;
    if (oom)
        *oom = ooms;
    if (cg->stale_pending)
        bb_cgroup_sweep(cg);
    return rc;
}
