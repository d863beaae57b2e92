/* caps.c: privileges of a worker: bounding/ambient sets and securebits, the switch
 * to an unprivileged uid, the drop of every capability, no_new_privs, non-dumpable. */
#include "caps.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail.h"
#include "jailutil.h"

/* Raw capget/capset: libcap allocates, and these run in a child after fork. */
static int cap_get(struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    return (int)syscall(SYS_capget, &hdr, data);
}

int bb_caps_have(int cap)
{
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (cap_get(data) < 0 || cap < 0 || cap >= 64)
        return 0;
    return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

int bb_caps_lock(char *err, size_t errlen)
{
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return bb_jail_fail(err, errlen, "clearing the ambient capabilities: %s", bb_jail_strerror(errno));
    int can_setpcap = bb_caps_have(CAP_SETPCAP);
    if (can_setpcap) {
        for (int cap = 0; cap < 64; cap++) {
            if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
                break; /* past the kernel's last capability */
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                return bb_jail_fail(err, errlen, "dropping capability %d from the bounding set: %s", cap,
                                    bb_jail_strerror(errno));
        }
        unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                             SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                             SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
        if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
            return bb_jail_fail(err, errlen, "locking the securebits: %s", bb_jail_strerror(errno));
    }
    for (int cap = 0; can_setpcap && cap < 64; cap++) {
        int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (r < 0)
            break;
        if (r == 1)
            return bb_jail_fail(err, errlen, "capability %d is still in the bounding set", cap);
    }
    return 0;
}

int bb_caps_switch_uid(uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (setgroups(0, NULL) < 0)
        return bb_jail_fail(err, errlen, "setgroups(0): %s", bb_jail_strerror(errno));
    if (setresgid(gid, gid, gid) < 0)
        return bb_jail_fail(err, errlen, "setresgid(%lu): %s", (unsigned long)gid, bb_jail_strerror(errno));
    if (setresuid(uid, uid, uid) < 0)
        return bb_jail_fail(err, errlen, "setresuid(%lu): %s", (unsigned long)uid, bb_jail_strerror(errno));
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0 || r != uid || e != uid || s != uid ||
        rg != gid || eg != gid || sg != gid || getgroups(0, NULL) != 0)
        return bb_jail_fail(err, errlen, "the switch to uid %lu did not take", (unsigned long)uid);
    return 0;
}

int bb_caps_drop_all(char *err, size_t errlen)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &hdr, data) < 0)
        return bb_jail_fail(err, errlen, "capset(all zero): %s", bb_jail_strerror(errno));
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return bb_jail_fail(err, errlen, "clearing the ambient capabilities: %s", bb_jail_strerror(errno));
    memset(data, 0xff, sizeof data);
    if (cap_get(data) < 0)
        return bb_jail_fail(err, errlen, "capget: %s", bb_jail_strerror(errno));
    for (int i = 0; i < 2; i++)
        if (data[i].effective || data[i].permitted || data[i].inheritable)
            return bb_jail_fail(err, errlen, "capabilities remain after the drop");
    return 0;
}

int bb_caps_seal(char *err, size_t errlen)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        return bb_jail_fail(err, errlen, "no_new_privs: %s", bb_jail_strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
        return bb_jail_fail(err, errlen, "PR_SET_DUMPABLE 0: %s", bb_jail_strerror(errno));
    return 0;
}

/* ---- detect(): the rules of the uid and caps layers (jail.h) ------------------- */

int bb_caps_detect_uid(const bb_layer_facts *f, char *detail, size_t len)
{
    if (f->unique_uids) {
        snprintf(detail, len, "a unique uid/gid per worker, from %lu", f->uid_base);
        return 1;
    }
    if (f->own_userns || f->shared_uid != 0) {
        snprintf(detail, len, "the invoking unprivileged user (uid %lu), shared by all workers", f->shared_uid);
        return 1;
    }
    snprintf(detail, len, "root without the power to switch to uids %lu+ (CAP_SETUID, CAP_SETGID, "
                          "CAP_SYS_ADMIN and a uid map that reaches them)", f->uid_base);
    return 0;
}

int bb_caps_detect(const bb_layer_facts *f, char *detail, size_t len)
{
    (void)f;
    snprintf(detail, len, "all capabilities dropped, bounding set empty, securebits locked, no_new_privs, "
                          "not dumpable");
    return 1;
}
