/* jail.h: the one home of the local sandbox's layers: the list (bits, names, count),
 * what configures them, and the seam the zygote plumbing calls at fixed points. Each
 * layer lives in its own file (ns.c, fs.c, cgroup.c, caps.c, rlimits.c, seccomp.c). */
#ifndef BB_JAIL_H
#define BB_JAIL_H

#include <stddef.h>
#include <sys/types.h>

#include "blockbox.h"

/* Layers, as bits. */
enum {
    BB_LAYER_SECCOMP = 1u << 0,
    BB_LAYER_USERNS = 1u << 1,
    BB_LAYER_PIDNS = 1u << 2,
    BB_LAYER_NETNS = 1u << 3,
    BB_LAYER_MNTNS = 1u << 4,   /* private mount namespace + new root (fs.c) */
    BB_LAYER_IPCNS = 1u << 5,
    BB_LAYER_UTSNS = 1u << 6,
    BB_LAYER_CGROUP = 1u << 7,  /* memory/pids(/cpu) through cgroup v2 or v1 */
    BB_LAYER_UID = 1u << 8,     /* an unprivileged uid (root hosts) */
    BB_LAYER_CAPS = 1u << 9,    /* every capability dropped, no_new_privs */
    BB_LAYER_RLIMITS = 1u << 10,
    BB_LAYER_ALL = (1u << 11) - 1,
};
/* How many layers there are (bits 0 … BB_LAYER_COUNT-1). */
#define BB_LAYER_COUNT 11

/* Namespace kinds, in this order (probe.c tries each; the ns layers read them). */
enum { BB_NS_USER, BB_NS_PID, BB_NS_NET, BB_NS_MNT, BB_NS_IPC, BB_NS_UTS, BB_NS_COUNT };

struct bb_cgroup;

/* What a layer's detect() decides from: facts about this host and process, gathered
 * once by the zygote (layers.c, for real, before it sets anything up) or by doctor
 * (probe.c, in throwaway children). Neither re-derives a layer's rule: both ask the
 * layer. */
typedef struct bb_layer_facts {
    int privileged;              /* root with CAP_SYS_ADMIN, CAP_SETUID and CAP_SETGID */
    int own_userns;              /* the zygote lives in a user namespace of its own (unprivileged) */
    int seccomp;                 /* a filter can be installed */
    const char *seccomp_detail;  /* the actions the kernel supports, or why not */
    /* Per namespace kind: 0 a throwaway child could be made with clone(ns_flags[k]),
     * else the errno; -1: not tried (it needs privilege or a user namespace). */
    int ns_errno[BB_NS_COUNT];
    unsigned long ns_flags[BB_NS_COUNT];
    const char *netns_why;       /* the zygote's own error making its netns, or NULL */
    int unique_uids;             /* each worker can get uid_base + slot */
    unsigned long uid_base;
    unsigned long shared_uid;    /* the uid workers share otherwise (0: root, which will not do) */
    const struct bb_cgroup *cg;  /* what cgroup detection found (version 0: none) */
} bb_layer_facts;

/* One layer: its bit, its name, and its rule. detect returns 1 when the layer can be
 * had here, 0 when not; detail says what it does, or why not. */
typedef struct bb_layer_def {
    unsigned bit;
    const char *name;
    int (*detect)(const bb_layer_facts *f, char *detail, size_t len);
} bb_layer_def;

/* Every layer, in bit order (jail.c). */
extern const bb_layer_def bb_layer_list[];

/* The layers' rules, each in its layer's file. */
int bb_seccomp_detect(const bb_layer_facts *f, char *detail, size_t len);     /* seccomp.c */
int bb_ns_detect_user(const bb_layer_facts *f, char *detail, size_t len);     /* ns.c */
int bb_ns_detect_pid(const bb_layer_facts *f, char *detail, size_t len);
int bb_ns_detect_net(const bb_layer_facts *f, char *detail, size_t len);
int bb_ns_detect_ipc(const bb_layer_facts *f, char *detail, size_t len);
int bb_ns_detect_uts(const bb_layer_facts *f, char *detail, size_t len);
int bb_fs_detect(const bb_layer_facts *f, char *detail, size_t len);          /* fs.c (mntns) */
int bb_cgroup_layer_detect(const bb_layer_facts *f, char *detail, size_t len); /* cgroup.c */
int bb_caps_detect_uid(const bb_layer_facts *f, char *detail, size_t len);    /* caps.c */
int bb_caps_detect(const bb_layer_facts *f, char *detail, size_t len);
int bb_rlimits_detect(const bb_layer_facts *f, char *detail, size_t len);     /* rlimits.c */

/* "seccomp", "userns", … for one bit; NULL for anything else. */
const char *bb_layer_name(unsigned layer);
/* Parses "userns,netns" / "all" / "" into bits; -1 on an unknown name. */
int bb_layers_parse(const char *text, unsigned *out, bb_error **err);

typedef struct bb_jail_config {
    long memory_bytes;
    double cpu_seconds;
    long max_threads;
    long max_open_files;
    long max_file_bytes;
    long tmpfs_bytes;
    unsigned require;   /* layers that must be present (fail closed) */
    unsigned disable;   /* layers switched off on purpose (tests only; never by default) */
    int cgroup_no_leaf; /* cgroup v2: never move the delegated group's processes into a leaf */
} bb_jail_config;

/* ---- the seam: zygote/worker plumbing (worker/main.c) -> layers (layers.c) ---- */

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
/* One worker started by hand, the whole sequence above in one call (the zygote's
 * self-test and the jail tests, tests/jail/jailtest.c, use it; the zygote's own workers
 * go through worker/main.c). The child also checks it is pid 1 of its pid namespace
 * when that layer is active, then runs fn(arg) (NULL: nothing) and exits with what it
 * returns; a failure before fn exits 120 and reports why. Returns 0, or -1 with err;
 * *pid is the child, which the caller reaps (it is killed already on -1), or -1 when
 * none was made. msg (msglen > 0 bytes): what the child reported, "" if nothing. */
int bb_layers_start_worker(bb_layers *L, int slot, int (*fn)(void *), void *arg, pid_t *pid, char *msg,
                           size_t msglen, char *err, size_t errlen);
/* Before the zygote kills a live worker: is it at its memory cap (bb_cgroup_worker_at_cap)? */
int bb_layers_worker_at_cap(const bb_layers *L, pid_t child);
/* Which layers are active (BB_LAYER_* bits), for reports. */
unsigned bb_layers_active(const bb_layers *L);
void bb_layers_free(bb_layers *L);

/* ---- read-only questions about a zygote's layers (logs, reports, tests) -------- */

/* One line per layer that is not active ("netns: unshare(CLONE_NEWNET): …" or
 * "cgroup: disabled"); "" when every layer is active. Never NULL. */
const char *bb_layers_warnings(const bb_layers *L);

/* The uid outside every namespace that the worker in `slot` runs as. */
uid_t bb_layers_worker_uid(const bb_layers *L, int slot);

/* Slots are 0 … BB_LAYERS_MAX_SLOTS-1 (each gets its own uid on root hosts). */
#define BB_LAYERS_MAX_SLOTS 1024
/* First uid of the per-worker range on root hosts; see docs/SECURITY.md. */
#define BB_LAYERS_UID_FLOOR 1000000u
#define BB_LAYERS_UID_ZYGOTES 4096u

#endif
