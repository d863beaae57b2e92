/* layers.c: orchestrates the jail layers (ns.c, fs.c, cgroup.c, caps.c, rlimits.c)
 * at the fixed points of jail.h: detect once, self-test once, then per worker. */
#include "jail.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "cgroup.h"
#include "fs.h"
#include "jailutil.h"
#include "ns.h"
#include "probe.h"
#include "rlimits.h"

#define N_LAYER_BITS BB_LAYER_COUNT

/* Owned by the zygote process (one per zygote); read-only in its workers. */
struct bb_layers {
    bb_jail_config cfg;
    unsigned available;          /* what the host gives */
    unsigned active;             /* available and not disabled */
    unsigned long unshare_flags; /* per-worker namespaces the child unshares itself */
    int pidns_home;              /* fd of the zygote's own pid namespace (-1: none) */
    int privileged;              /* real root: may map and switch to any uid */
    int unique_uids;             /* each slot gets uid_base + slot */
    int zygote_userns;           /* unprivileged: the zygote made a user namespace for its netns */
    int deny_setgroups;          /* the zygote lacks CAP_SETGID: workers' setgroups must be denied */
    uid_t self_uid;              /* the zygote's ids (in its own namespace) */
    gid_t self_gid;
    uid_t uid_base;
    bb_cgroup cg;
    char detail[N_LAYER_BITS][400];
    char warnings[4096];
};

static int bit_index(unsigned layer)
{
    for (int i = 0; i < N_LAYER_BITS; i++)
        if (layer == 1u << i)
            return i;
    return -1;
}

const char *bb_layers_warnings(const bb_layers *L) { return L ? L->warnings : ""; }
unsigned bb_layers_active(const bb_layers *L) { return L ? L->active : 0; }

uid_t bb_layers_worker_uid(const bb_layers *L, int slot)
{
    if ((L->active & BB_LAYER_UID) && L->unique_uids)
        return L->uid_base + (uid_t)slot;
    return L->zygote_userns ? getuid() : L->self_uid;
}

static int validate(const bb_jail_config *c, char *err, size_t errlen)
{
    if (c->memory_bytes <= 0 || c->cpu_seconds <= 0 || c->max_threads <= 0 || c->max_open_files <= 0 ||
        c->max_file_bytes < 0 || c->tmpfs_bytes <= 0)
        return bb_jail_fail(err, errlen,
                            "incomplete jail configuration (memory %ld, cpu %.1f s, threads %ld, files %ld, "
                            "file size %ld, tmpfs %ld): every limit must be set",
                            c->memory_bytes, c->cpu_seconds, c->max_threads, c->max_open_files,
                            c->max_file_bytes, c->tmpfs_bytes);
    if (c->require & ~(unsigned)BB_LAYER_ALL)
        return bb_jail_fail(err, errlen, "unknown layer bits in require");
    return 0;
}

static void names_of(unsigned bits, char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i < N_LAYER_BITS; i++) {
        if (!(bits & (1u << i)))
            continue;
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", used ? ", " : "", bb_layer_name(1u << i));
    }
}

/* The child side of bb_layers_start_worker: the sequence of jail.h, then fn. */
static void __attribute__((noreturn)) worker_by_hand(const bb_layers *L, int slot, int (*fn)(void *), void *arg,
                                                      const int ready[2], const int release[2],
                                                      const int report[2])
{
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    close(ready[0]);
    close(release[1]);
    close(report[0]);
    char go, msg[400] = "";
    int proc_fd = -1;
    int rc = bb_layers_child_unshare(L, &proc_fd, msg, sizeof msg);
    if (write(ready[1], rc == 0 ? "r" : "f", 1) != 1)
        _exit(121);
    close(ready[1]);
    if (rc == 0 && read(release[0], &go, 1) != 1)
        _exit(121);
    close(release[0]);
    if (rc == 0)
        rc = bb_layers_child_setup(L, slot, proc_fd, msg, sizeof msg);
    if (rc == 0 && (L->active & BB_LAYER_PIDNS) && getpid() != 1) {
        snprintf(msg, sizeof msg, "the worker is not pid 1 of its pid namespace");
        rc = -1;
    }
    if (rc < 0) {
        if (msg[0] && write(report[1], msg, strlen(msg)) < 0)
            _exit(122);
        _exit(120);
    }
    close(report[1]);
    _exit(fn ? fn(arg) : 0);
}

int bb_layers_start_worker(bb_layers *L, int slot, int (*fn)(void *), void *arg, pid_t *pid, char *msg,
                           size_t msglen, char *err, size_t errlen)
{
    *pid = -1;
    msg[0] = '\0';
    int pipes[3][2];   /* ready (child to parent), release (parent to child), report */
    for (int k = 0; k < 3; k++)
        if (pipe2(pipes[k], O_CLOEXEC) < 0) {
            int e = errno;
            while (k-- > 0) {
                close(pipes[k][0]);
                close(pipes[k][1]);
            }
            return bb_jail_fail(err, errlen, "pipe: %s", bb_jail_strerror(e));
        }
    int *ready = pipes[0], *release = pipes[1], *report = pipes[2];
    int rc = bb_layers_before_fork(L, err, errlen);
    pid_t child = rc < 0 ? -1 : fork();
    if (child == 0)
        worker_by_hand(L, slot, fn, arg, ready, release, report);
    int fork_errno = errno;
    close(ready[1]);
    close(release[0]);
    close(report[1]);
    if (child < 0) {
        close(ready[0]);
        close(release[1]);
        close(report[0]);
        bb_layers_after_clone(L, -1, slot, NULL, 0); /* back to the zygote's pid namespace */
        return rc < 0 ? -1 : bb_jail_fail(err, errlen, "fork: %s", bb_jail_strerror(fork_errno));
    }
    char state = 0;
    if (read(ready[0], &state, 1) != 1 || state != 'r')
        rc = bb_jail_fail(err, errlen, "the test worker could not unshare its namespaces");
    close(ready[0]);
    int arc = bb_layers_after_clone(L, child, slot, err, errlen);
    if (rc == 0)
        rc = arc;
    if (rc < 0)
        kill(child, SIGKILL);
    else if (write(release[1], "x", 1) != 1)
        rc = bb_jail_fail(err, errlen, "releasing the test worker: %s", bb_jail_strerror(errno));
    close(release[1]);
    ssize_t n = read(report[0], msg, msglen - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(report[0]);
    *pid = child;
    return rc;
}

/* One real worker through every step, before any user code exists: whatever the
 * host refuses shows up here, at start, rather than in the first request. */
static int self_test(bb_layers *L, char *err, size_t errlen)
{
    char msg[300];
    pid_t pid;
    int rc = bb_layers_start_worker(L, 0, NULL, NULL, &pid, msg, sizeof msg, err, errlen);
    if (pid < 0)
        return rc;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int oom = 0;
    if (bb_layers_worker_gone(L, pid, 0, &oom) < 0 && rc == 0)
        rc = bb_jail_fail(err, errlen, "the test worker's cgroup could not be removed");
    if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        rc = bb_jail_fail(err, errlen, "test worker failed (%s %d): %s",
                          WIFEXITED(status) ? "exit" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), msg[0] ? msg : "no reason");
    else if (rc < 0 && msg[0]) {
        size_t used = strlen(err);
        snprintf(err + used, errlen - used, " (worker: %s)", msg);
    }
    return rc;
}

bb_layers *bb_layers_zygote_setup(const bb_jail_config *cfg, char *errbuf, size_t errlen)
{
    if (!cfg || validate(cfg, errbuf, errlen) < 0)
        return cfg ? NULL : (bb_jail_fail(errbuf, errlen, "no jail configuration"), NULL);
    bb_layers *L = calloc(1, sizeof *L);
    if (!L) {
        bb_jail_fail(errbuf, errlen, "out of memory");
        return NULL;
    }
    L->cfg = *cfg;
    L->pidns_home = -1;
    const unsigned off = cfg->disable;
    L->privileged = bb_probe_privileged();
    L->self_uid = geteuid();
    L->self_gid = getegid();
    L->uid_base = BB_LAYERS_UID_FLOOR + (uid_t)(getpid() % BB_LAYERS_UID_ZYGOTES) * BB_LAYERS_MAX_SLOTS;
    char why[200], seccomp_why[160], netns_why[200];

    /* The facts the layers' rules read (jail.h), gathered for real: the zygote makes
     * its network namespace here (its user namespace too, when unprivileged). */
    bb_layer_facts f = {.privileged = L->privileged, .seccomp_detail = seccomp_why};
    for (int k = 0; k < BB_NS_COUNT; k++)
        f.ns_errno[k] = -1;
    f.seccomp = bb_probe_seccomp(seccomp_why, sizeof seccomp_why);   /* applied by seccomp.c */

    /* netns: once, in the zygote; workers inherit an empty namespace with a down lo. */
    if (!(off & BB_LAYER_NETNS) && (L->privileged || !(off & BB_LAYER_USERNS))) {
        f.ns_flags[BB_NS_NET] = L->privileged ? CLONE_NEWNET : CLONE_NEWUSER | CLONE_NEWNET;
        if (bb_ns_zygote_net(L->privileged, &L->zygote_userns, netns_why, sizeof netns_why) == 0) {
            f.ns_errno[BB_NS_NET] = 0;
        } else if (L->zygote_userns) {
            snprintf(errbuf, errlen, "%s", netns_why); /* half-made user namespace: stop */
            free(L);
            return NULL;
        } else {
            f.netns_why = netns_why;
        }
    }
    f.own_userns = L->zygote_userns;
    int can_ns = L->privileged || L->zygote_userns; /* may create namespaces without a user namespace */
    /* Inside its own user namespace the zygote is uid 0: workers map onto that. */
    L->self_uid = geteuid();
    L->self_gid = getegid();
    L->deny_setgroups = !bb_caps_have(CAP_SETGID);

    /* Per-worker namespaces, each tried for real. */
    if (!(off & BB_LAYER_USERNS)) {
        f.ns_flags[BB_NS_USER] = CLONE_NEWUSER;
        f.ns_errno[BB_NS_USER] = bb_probe_clone(CLONE_NEWUSER);
    }
    unsigned long with_user = !(off & BB_LAYER_USERNS) && f.ns_errno[BB_NS_USER] == 0 ? CLONE_NEWUSER : 0;
    static const struct {
        unsigned layer;
        int kind;
        unsigned long flag;
    } per_worker[] = {{BB_LAYER_MNTNS, BB_NS_MNT, CLONE_NEWNS},
                      {BB_LAYER_IPCNS, BB_NS_IPC, CLONE_NEWIPC},
                      {BB_LAYER_UTSNS, BB_NS_UTS, CLONE_NEWUTS}};
    for (size_t i = 0; i < sizeof per_worker / sizeof per_worker[0]; i++) {
        int k = per_worker[i].kind;
        if ((off & per_worker[i].layer) || (!can_ns && !with_user))
            continue;   /* -1: not tried */
        f.ns_flags[k] = per_worker[i].flag | with_user;
        f.ns_errno[k] = bb_probe_clone(f.ns_flags[k]);
    }
    /* pid: the zygote must be able to return to its own pid namespace (the layer's
     * rule says when it can); tried only then. */
    if (!(off & BB_LAYER_PIDNS) && L->privileged && !L->zygote_userns) {
        L->pidns_home = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        f.ns_flags[BB_NS_PID] = CLONE_NEWPID;
        f.ns_errno[BB_NS_PID] = L->pidns_home < 0 ? errno : bb_probe_clone(CLONE_NEWPID);
    }

    /* An unprivileged uid per worker. */
    L->unique_uids = L->privileged && !L->zygote_userns &&
                     bb_probe_uid_range(L->uid_base, BB_LAYERS_MAX_SLOTS);
    f.unique_uids = L->unique_uids;
    f.uid_base = L->uid_base;
    f.shared_uid = L->zygote_userns ? getuid() : L->self_uid;

    /* cgroups: detect, never assume. */
    if (!(off & BB_LAYER_CGROUP)) {
        bb_cgroup_detect(&L->cg, BB_CG_PROBE_MKDIR | BB_CG_ENABLE | (cfg->cgroup_no_leaf ? BB_CG_NO_LEAF : 0));
        if (L->cg.version == 1 && bb_cgroup_setup(&L->cg, getpid(), errbuf, errlen) < 0) {
            L->active = BB_LAYER_CGROUP; /* so that bb_layers_free removes what was made */
            bb_layers_free(L);
            return NULL;
        }
        /* v2: a refused set-up undoes itself and leaves the layer out, with the reason. */
        if (L->cg.version == 2 && bb_cgroup_setup(&L->cg, getpid(), why, sizeof why) < 0)
            L->cg.version = 0;
        f.cg = &L->cg;
    }

    /* Each layer's own rule decides (the same rules doctor reports). */
    for (int i = 0; i < BB_LAYER_COUNT; i++) {
        const bb_layer_def *def = &bb_layer_list[i];
        int bit = bit_index(def->bit);
        if (off & def->bit)
            snprintf(L->detail[bit], sizeof L->detail[bit], "disabled");
        else if (def->detect(&f, L->detail[bit], sizeof L->detail[bit]))
            L->available |= def->bit;
    }

    L->active = L->available & ~off;
    if (L->active & BB_LAYER_USERNS)
        L->unshare_flags |= CLONE_NEWUSER;
    if (L->active & BB_LAYER_MNTNS)
        L->unshare_flags |= CLONE_NEWNS;
    if (L->active & BB_LAYER_IPCNS)
        L->unshare_flags |= CLONE_NEWIPC;
    if (L->active & BB_LAYER_UTSNS)
        L->unshare_flags |= CLONE_NEWUTS;
    if (!(L->active & BB_LAYER_PIDNS) && L->pidns_home >= 0) {
        close(L->pidns_home);
        L->pidns_home = -1;
    }

    for (int i = 0; i < N_LAYER_BITS; i++) {
        unsigned bit = 1u << i;
        if (L->active & bit)
            continue;
        size_t used = strlen(L->warnings);
        if (off & bit)
            snprintf(L->warnings + used, sizeof L->warnings - used, "%s: disabled on purpose\n", bb_layer_name(bit));
        else
            snprintf(L->warnings + used, sizeof L->warnings - used, "%s: %s\n", bb_layer_name(bit), L->detail[i]);
    }

    /* Fail closed: what is required must be active. seccomp always is, unless a test
     * switched it off on purpose. */
    unsigned required = cfg->require | (BB_LAYER_SECCOMP & ~off);
    unsigned missing = required & ~L->active;
    if (missing) {
        char names[256];
        names_of(missing, names, sizeof names);
        int i = bit_index(missing & -missing);
        snprintf(errbuf, errlen, "required sandbox layer%s missing: %s (%s: %s)", (missing & (missing - 1)) ? "s" : "",
                 names, bb_layer_name(missing & -missing), i >= 0 ? L->detail[i] : "");
        bb_layers_free(L);
        return NULL;
    }
    char why_test[300];
    if (self_test(L, why_test, sizeof why_test) < 0) {
        snprintf(errbuf, errlen, "the sandbox self-test failed: %s", why_test);
        bb_layers_free(L);
        return NULL;
    }
    return L;
}

/* The zygote's children go to the zygote's own pid namespace again (threads cannot
 * be created while they would not). */
static int pidns_home(bb_layers *L, char *errbuf, size_t errlen)
{
    if (!(L->active & BB_LAYER_PIDNS))
        return 0;
    if (setns(L->pidns_home, CLONE_NEWPID) < 0)
        return bb_jail_fail(errbuf, errlen, "setns back to the zygote's pid namespace: %s",
                            bb_jail_strerror(errno));
    return 0;
}

int bb_layers_before_fork(bb_layers *L, char *errbuf, size_t errlen)
{
    if (!(L->active & BB_LAYER_PIDNS))
        return 0;
    if (pidns_home(L, errbuf, errlen) < 0)
        return -1;
    if (unshare(CLONE_NEWPID) < 0)
        return bb_jail_fail(errbuf, errlen, "unshare(CLONE_NEWPID): %s", bb_jail_strerror(errno));
    return 0;
}

int bb_layers_child_unshare(const bb_layers *L, int *proc_fd, char *errbuf, size_t errlen)
{
    *proc_fd = -1;
    /* /proc needs privilege over the pid namespace, which the child loses with the
     * user namespace below: made now, detached, attached by bb_fs_child_setup. */
    if ((L->active & BB_LAYER_PIDNS) && (L->active & BB_LAYER_MNTNS) &&
        bb_fs_make_proc(proc_fd, errbuf, errlen) < 0)
        return -1;
    if (L->unshare_flags && unshare((int)L->unshare_flags) < 0)
        return bb_jail_fail(errbuf, errlen, "unshare(0x%lx): %s", L->unshare_flags, bb_jail_strerror(errno));
    return 0;
}

int bb_layers_after_clone(bb_layers *L, pid_t child, int slot, char *errbuf, size_t errlen)
{
    if (pidns_home(L, errbuf, errlen) < 0)
        return -1;
    if (child <= 0)
        return 0;
    if (slot < 0 || slot >= BB_LAYERS_MAX_SLOTS)
        return bb_jail_fail(errbuf, errlen, "worker slot %d out of range 0..%d", slot, BB_LAYERS_MAX_SLOTS - 1);
    if (L->active & BB_LAYER_USERNS) {
        /* uid 0 inside maps to the worker's own unprivileged uid outside; with the uid
         * layer off (tests only) it maps to the zygote's own uid. */
        uid_t uid = L->self_uid;
        gid_t gid = L->self_gid;
        if ((L->active & BB_LAYER_UID) && L->unique_uids) {
            uid = L->uid_base + (uid_t)slot;
            gid = (gid_t)uid;
        }
        if (bb_ns_write_maps(child, uid, gid, L->deny_setgroups, errbuf, errlen) < 0)
            return -1;
    }
    if (L->active & BB_LAYER_CGROUP) {
        bb_cgroup_limits lim = {L->cfg.memory_bytes, L->cfg.max_threads + 4, 1};
        if (bb_cgroup_worker_add(&L->cg, child, slot, &lim, errbuf, errlen) < 0)
            return -1;
    }
    return 0;
}

/* A credential change clears the parent-death signal: set it again. */
static void rearm_pdeathsig(int sig)
{
    if (sig > 0)
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0);
}

int bb_layers_child_setup(const bb_layers *L, int slot, int proc_fd, char *errbuf, size_t errlen)
{
    const unsigned on = L->active;
    int pdeath = 0;
    prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0);
    if (slot < 0 || slot >= BB_LAYERS_MAX_SLOTS)
        return bb_jail_fail(errbuf, errlen, "worker slot %d out of range", slot);

    /* Read while /proc is still there. */
    long as_bytes = 0;
    if ((on & BB_LAYER_RLIMITS) && !((on & BB_LAYER_CGROUP) && (L->cg.usable & BB_CG_MEMORY))) {
        long vm = bb_rlimits_vmsize();
        if (vm < 0)
            return bb_jail_fail(errbuf, errlen, "cannot read the zygote's size for RLIMIT_AS");
        as_bytes = bb_rlimits_as_budget(vm, &L->cfg);
    }

    uid_t owner = geteuid();
    gid_t group = getegid();
    if (on & BB_LAYER_USERNS) {
        if (bb_ns_child_become_mapped_root(errbuf, errlen) < 0)
            return -1;
        rearm_pdeathsig(pdeath);
        owner = 0;
        group = 0;
    } else if ((on & BB_LAYER_UID) && L->unique_uids) {
        owner = L->uid_base + (uid_t)slot;
        group = (gid_t)owner;
    }
    if (on & BB_LAYER_MNTNS) {
        int frc = bb_fs_child_setup(L->cfg.tmpfs_bytes, owner, group, proc_fd, errbuf, errlen);
        proc_fd = -1;   /* taken */
        if (frc < 0)
            return -1;
    } else if (chdir("/") < 0) {
        return bb_jail_fail(errbuf, errlen, "chdir /: %s", bb_jail_strerror(errno));
    }
    if ((on & BB_LAYER_UTSNS) && bb_ns_child_hostname(errbuf, errlen) < 0)
        return -1;
    if ((on & BB_LAYER_RLIMITS) && bb_rlimits_apply(&L->cfg, as_bytes, errbuf, errlen) < 0)
        return -1;
    if ((on & BB_LAYER_CAPS) && bb_caps_lock(errbuf, errlen) < 0)
        return -1;
    if ((on & BB_LAYER_UID) && !(on & BB_LAYER_USERNS) && L->unique_uids) {
        if (bb_caps_switch_uid(owner, group, errbuf, errlen) < 0)
            return -1;
        rearm_pdeathsig(pdeath);
    }
    if (on & BB_LAYER_CAPS) {
        if (bb_caps_drop_all(errbuf, errlen) < 0 || bb_caps_seal(errbuf, errlen) < 0)
            return -1;
        rearm_pdeathsig(pdeath);
    }
    return 0;
}

int bb_layers_worker_at_cap(const bb_layers *L, pid_t child)
{
    if (!(L->active & BB_LAYER_CGROUP))
        return 0;
    return bb_cgroup_worker_at_cap(&L->cg, child);
}

int bb_layers_worker_gone(bb_layers *L, pid_t child, int slot, int *oom)
{
    if (oom)
        *oom = 0;
    /* In case the worker died between bb_layers_before_fork and bb_layers_after_clone. */
    pidns_home(L, NULL, 0);
    if (!(L->active & BB_LAYER_CGROUP))
        return 0;
    return bb_cgroup_worker_remove(&L->cg, child, slot, oom);
}

void bb_layers_free(bb_layers *L)
{
    if (!L)
        return;
    if (L->active & BB_LAYER_CGROUP)
        bb_cgroup_teardown(&L->cg);
    if (L->pidns_home >= 0)
        close(L->pidns_home);
    free(L);
}
