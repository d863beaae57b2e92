/* probe.h: what this host gives the sandbox: seccomp, each namespace (tried for real
 * in a throwaway child), user-namespace sysctls, cgroups, root, Python+numpy+cv2. */
#ifndef BB_PROBE_H
#define BB_PROBE_H

#include <stddef.h>

#include "cgroup.h"
#include "jail.h"

/* The namespace kinds (BB_NS_*) are listed in jail.h. */

typedef struct bb_probe {
    int root;                   /* effective uid 0 */
    int privileged;             /* CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID effective */
    int unique_uids;            /* privileged and the per-worker uid range is mapped */
    int seccomp;                /* seccomp filters can be installed */
    char seccomp_detail[160];
    int ns_ok[BB_NS_COUNT];     /* a throwaway child could be made with it */
    int ns_errno[BB_NS_COUNT];
    int ns_with_userns;         /* non-user namespaces were tried together with CLONE_NEWUSER */
    long max_user_namespaces;   /* /proc/sys/user/max_user_namespaces, -1 unknown */
    int unprivileged_userns_clone;  /* Debian's kernel.unprivileged_userns_clone, -1 absent */
    int apparmor_restrict_userns;   /* Ubuntu's kernel.apparmor_restrict_unprivileged_userns, -1 absent */
    bb_cgroup cgroup;
    int python;                 /* /usr/bin/python3 runs for us (exists, executable) */
    int numpy, cv2, libpython;
    char python_version[16];    /* "3.11" from the interpreter's name */
    char numpy_version[32];
    char python_detail[256];
} bb_probe;

/* The facts a layer's detect() reads, from a probe (for doctor: what the zygote
 * would find; own_userns is what an unprivileged zygote makes for its netns). */
void bb_probe_facts(const bb_probe *p, bb_layer_facts *f);

/* Fills *p. try_cgroup_write: create and remove a probe cgroup to know for sure
 * (it never changes cgroup.subtree_control). */
void bb_probe_host(bb_probe *p, int try_cgroup_write);

/* Makes a throwaway child with clone(flags|SIGCHLD) that exits at once: 0 when that
 * worked, else the errno. */
int bb_probe_clone(unsigned long flags);

/* Can a seccomp filter be installed? 1/0, with the supported actions in detail. */
int bb_probe_seccomp(char *detail, size_t len);

/* Root with CAP_SYS_ADMIN, CAP_SETUID and CAP_SETGID: may map other ids, mount, … */
int bb_probe_privileged(void);

/* Does this process's uid map cover [first, first+count)? (True on the host; in a
 * container only if its map reaches that far.) */
int bb_probe_uid_range(unsigned long first, unsigned long count);

/* The name of a BB_NS_* kind ("user", …). */
const char *bb_probe_ns_name(int kind);

#endif
