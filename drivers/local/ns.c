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
