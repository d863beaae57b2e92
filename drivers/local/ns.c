/* ns.c: namespaces: the zygote's one network namespace, the per-worker user
 * namespace's id maps (written by the zygote) and the worker's side of them. */
#include "ns.h"

#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "jailutil.h"

static int write_map(const char *path, unsigned long inside, unsigned long outside, char *err,
                     size_t errlen)
{
    char line[64];
    snprintf(line, sizeof line, "%lu %lu 1\n", inside, outside);
    if (bb_jail_write_file(path, line) < 0)
        return bb_jail_fail(err, errlen, "cannot write %s (\"%lu %lu 1\"): %s", path, inside, outside,
                            bb_jail_strerror(errno));
    return 0;
}

int bb_ns_zygote_net(int privileged, int *made_userns, char *err, size_t errlen)
{
    *made_userns = 0;
    if (privileged) {
        if (unshare(CLONE_NEWNET) < 0)
            return bb_jail_fail(err, errlen, "unshare(CLONE_NEWNET): %s", bb_jail_strerror(errno));
        return 0;
    }
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
        return bb_jail_fail(err, errlen, "unshare(CLONE_NEWUSER|CLONE_NEWNET): %s%s",
                            bb_jail_strerror(errno),
                            errno == EINVAL ? " (the zygote must still be single-threaded)" : "");
    *made_userns = 1;
    if (write_map("/proc/self/uid_map", 0, uid, err, errlen) < 0)
        return -1;
    if (bb_jail_write_file("/proc/self/setgroups", "deny") < 0 && errno != ENOENT)
        return bb_jail_fail(err, errlen, "cannot write /proc/self/setgroups: %s", bb_jail_strerror(errno));
    if (write_map("/proc/self/gid_map", 0, gid, err, errlen) < 0)
        return -1;
    /* Become the mapped root so that the zygote can write its workers' maps. */
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
        return bb_jail_fail(err, errlen, "cannot become root of the zygote's user namespace: %s",
                            bb_jail_strerror(errno));
    return 0;
}

int bb_ns_write_maps(pid_t child, uid_t outside_uid, gid_t outside_gid, int deny_setgroups, char *err,
                     size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)child);
    if (write_map(path, 0, outside_uid, err, errlen) < 0)
        return -1;
    if (deny_setgroups) {
        snprintf(path, sizeof path, "/proc/%d/setgroups", (int)child);
        if (bb_jail_write_file(path, "deny") < 0 && errno != ENOENT)
            return bb_jail_fail(err, errlen, "cannot write %s: %s", path, bb_jail_strerror(errno));
    }
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)child);
    return write_map(path, 0, outside_gid, err, errlen);
}

int bb_ns_child_become_mapped_root(char *err, size_t errlen)
{
    char state[16] = "";
    /* "deny" is inherited from an unprivileged zygote's namespace: the worker then keeps
     * the invoking user's own groups, which grant nothing the user does not have. */
    if (bb_jail_read_file("/proc/self/setgroups", state, sizeof state) < 0 ||
        strncmp(state, "deny", 4) != 0) {
        if (setgroups(0, NULL) < 0)
            return bb_jail_fail(err, errlen, "setgroups(0) in the user namespace: %s",
                                bb_jail_strerror(errno));
    }
    if (setresgid(0, 0, 0) < 0)
        return bb_jail_fail(err, errlen, "setresgid(0) in the user namespace: %s", bb_jail_strerror(errno));
    if (setresuid(0, 0, 0) < 0)
        return bb_jail_fail(err, errlen, "setresuid(0) in the user namespace: %s", bb_jail_strerror(errno));
    return 0;
}

int bb_ns_child_hostname(char *err, size_t errlen)
{
    static const char name[] = "blockbox";
    if (sethostname(name, sizeof name - 1) < 0)
        return bb_jail_fail(err, errlen, "sethostname: %s", bb_jail_strerror(errno));
    if (setdomainname(name, sizeof name - 1) < 0)
        return bb_jail_fail(err, errlen, "setdomainname: %s", bb_jail_strerror(errno));
    return 0;
}

/* ---- detect(): the rules of the namespace layers (jail.h) --------------------- */

int bb_ns_detect_kind(const bb_layer_facts *f, int kind, const char *what, char *detail, size_t len)
{
    int e = f->ns_errno[kind];
    if (e == 0) {
        snprintf(detail, len, "%s", what);
        return 1;
    }
    if (e < 0)
        snprintf(detail, len, "needs privilege or a user namespace");
    else
        snprintf(detail, len, "clone(0x%lx) failed: %s", f->ns_flags[kind], bb_jail_strerror(e));
    return 0;
}

int bb_ns_detect_user(const bb_layer_facts *f, char *detail, size_t len)
{
    return bb_ns_detect_kind(f, BB_NS_USER, f->own_userns ? "per worker, nested in the zygote's own"
                                                         : "per worker; uid 0 inside is the worker's uid outside",
                             detail, len);
}

int bb_ns_detect_pid(const bb_layer_facts *f, char *detail, size_t len)
{
    /* The zygote unshares a fresh pid namespace before each fork and returns to its own
     * right after, which takes CAP_SYS_ADMIN over its own pid namespace. */
    if (!f->privileged || f->own_userns) {
        snprintf(detail, len, "needs root: an unprivileged zygote cannot return to its own pid "
                              "namespace after unsharing one per worker");
        return 0;
    }
    return bb_ns_detect_kind(f, BB_NS_PID, "per worker: the worker is pid 1 and sees only itself", detail, len);
}

int bb_ns_detect_net(const bb_layer_facts *f, char *detail, size_t len)
{
    if (f->netns_why) {
        snprintf(detail, len, "%s", f->netns_why);
        return 0;
    }
    return bb_ns_detect_kind(f, BB_NS_NET, f->own_userns ? "one empty network namespace for all workers "
                                                          "(loopback down), inside the zygote's own user namespace"
                                                        : "one empty network namespace for all workers (loopback down)",
                             detail, len);
}

int bb_ns_detect_ipc(const bb_layer_facts *f, char *detail, size_t len)
{
    return bb_ns_detect_kind(f, BB_NS_IPC, "per worker", detail, len);
}

int bb_ns_detect_uts(const bb_layer_facts *f, char *detail, size_t len)
{
    return bb_ns_detect_kind(f, BB_NS_UTS, "per worker: hostname blockbox", detail, len);
}
