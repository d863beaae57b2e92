/* probe.c: what this host gives the sandbox: seccomp, each namespace (tried for real
 * in a throwaway child), user-namespace sysctls, cgroups, root, Python+numpy+cv2. */
#include "probe.h"

#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "jail.h"
#include "jailutil.h"

static const struct {
    unsigned long flag;
    const char *name;
} ns_kinds[BB_NS_COUNT] = {
    [BB_NS_USER] = {CLONE_NEWUSER, "user"}, [BB_NS_PID] = {CLONE_NEWPID, "pid"},
    [BB_NS_NET] = {CLONE_NEWNET, "net"},    [BB_NS_MNT] = {CLONE_NEWNS, "mount"},
    [BB_NS_IPC] = {CLONE_NEWIPC, "ipc"},    [BB_NS_UTS] = {CLONE_NEWUTS, "uts"},
};

const char *bb_probe_ns_name(int kind) { return kind >= 0 && kind < BB_NS_COUNT ? ns_kinds[kind].name : "?"; }

int bb_probe_clone(unsigned long flags)
{
    /* Raw clone: fork-like (no new stack), the child only exits. */
    long pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid < 0)
        return errno;
    if (pid == 0)
        _exit(0);
    int status;
    while (waitpid((pid_t)pid, &status, 0) < 0)
        if (errno != EINTR)
            return errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : ECHILD;
}

int bb_probe_seccomp(char *detail, size_t len)
{
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
        snprintf(detail, len, "kernel without seccomp (%s)", bb_jail_strerror(errno));
        return 0;
    }
    static const struct {
        unsigned action;
        const char *name;
    } actions[] = {{SECCOMP_RET_KILL_PROCESS, "kill_process"}, {SECCOMP_RET_ERRNO, "errno"},
                   {SECCOMP_RET_TRAP, "trap"},                 {SECCOMP_RET_LOG, "log"},
                   {SECCOMP_RET_USER_NOTIF, "user_notif"}};
    char names[128] = "";
    int have_errno = 0, have_kill = 0;
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        unsigned action = actions[i].action;
        if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", used ? " " : "", actions[i].name);
            have_errno |= actions[i].action == SECCOMP_RET_ERRNO;
            have_kill |= actions[i].action == SECCOMP_RET_KILL_PROCESS;
        }
    }
    if (!have_errno || !have_kill) {
        snprintf(detail, len, "seccomp filters lack needed actions (have: %s)", names[0] ? names : "none");
        return 0;
    }
    snprintf(detail, len, "filter mode; actions: %s", names);
    return 1;
}

int bb_probe_privileged(void)
{
    return geteuid() == 0 && bb_caps_have(CAP_SYS_ADMIN) && bb_caps_have(CAP_SETUID) &&
           bb_caps_have(CAP_SETGID);
}

int bb_probe_uid_range(unsigned long first, unsigned long count)
{
    char buf[1024];
    if (bb_jail_read_file("/proc/self/uid_map", buf, sizeof buf) <= 0)
        return 0;
    for (char *line = buf; line && *line;) {
        unsigned long inside, outside, len;
        if (sscanf(line, "%lu %lu %lu", &inside, &outside, &len) == 3 && first >= inside &&
            first + count <= inside + len)
            return 1;
        char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static long read_long(const char *path)
{
    char buf[64];
    if (bb_jail_read_file(path, buf, sizeof buf) <= 0)
        return -1;
    return strtol(buf, NULL, 10);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* "Python modules for the system interpreter": Debian keeps them here. */
#define DIST_PACKAGES "/usr/lib/python3/dist-packages"

static void probe_python(bb_probe *p)
{
    char target[64];
    ssize_t n = readlink("/usr/bin/python3", target, sizeof target - 1);
    if (n > 0) {
        target[n] = '\0';
        const char *v = strstr(target, "python");
        if (v)
            snprintf(p->python_version, sizeof p->python_version, "%s", v + 6);
    }
    p->python = access("/usr/bin/python3", X_OK) == 0;
    p->numpy = file_exists(DIST_PACKAGES "/numpy/__init__.py");
    /* The version from the package metadata directory: numpy-1.24.2.egg-info or
     * numpy-1.24.2.dist-info. */
    DIR *meta = p->numpy ? opendir(DIST_PACKAGES) : NULL;
    if (meta) {
        struct dirent *e;
        while ((e = readdir(meta))) {
            const char *dash = strncmp(e->d_name, "numpy-", 6) == 0 ? e->d_name + 6 : NULL;
            const char *end = dash ? strstr(dash, ".egg-info") : NULL;
            if (dash && !end)
                end = strstr(dash, ".dist-info");
            if (end && end > dash) {
                size_t len = (size_t)(end - dash);
                snprintf(p->numpy_version, sizeof p->numpy_version, "%.*s", (int)(len < 31 ? len : 31), dash);
            }
        }
        closedir(meta);
    }
    p->cv2 = file_exists(DIST_PACKAGES "/cv2/__init__.py");
    DIR *d = opendir(DIST_PACKAGES);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strncmp(e->d_name, "cv2.", 4) == 0 && strstr(e->d_name, ".so"))
                p->cv2 = 1;
        closedir(d);
    }
    if (p->python_version[0]) {
        static const char *const libdirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                              "/usr/lib64", "/usr/lib", "/usr/local/lib"};
        for (size_t i = 0; i < sizeof libdirs / sizeof libdirs[0] && !p->libpython; i++) {
            char lib[160];
            snprintf(lib, sizeof lib, "%s/libpython%s.so.1.0", libdirs[i], p->python_version);
            p->libpython = file_exists(lib);
        }
    }
    snprintf(p->python_detail, sizeof p->python_detail, "/usr/bin/python3%s%s: %s; numpy %s; cv2 %s; libpython %s",
             p->python_version[0] ? " -> python" : "", p->python_version, p->python ? "present" : "MISSING",
             p->numpy ? (p->numpy_version[0] ? p->numpy_version : "present") : "MISSING",
             p->cv2 ? "present" : "MISSING", p->libpython ? "present" : "MISSING");
}

void bb_probe_host(bb_probe *p, int try_cgroup_write)
{
    memset(p, 0, sizeof *p);
    p->root = geteuid() == 0;
    p->privileged = bb_probe_privileged();
    p->seccomp = bb_probe_seccomp(p->seccomp_detail, sizeof p->seccomp_detail);
    p->max_user_namespaces = read_long("/proc/sys/user/max_user_namespaces");
    p->unprivileged_userns_clone = (int)read_long("/proc/sys/kernel/unprivileged_userns_clone");
    p->apparmor_restrict_userns = (int)read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");

    p->ns_errno[BB_NS_USER] = bb_probe_clone(CLONE_NEWUSER);
    p->ns_ok[BB_NS_USER] = p->ns_errno[BB_NS_USER] == 0;
    /* Without privilege every other namespace needs a user namespace around it. */
    p->ns_with_userns = !p->privileged;
    for (int k = BB_NS_PID; k < BB_NS_COUNT; k++) {
        unsigned long flags = ns_kinds[k].flag;
        if (p->ns_with_userns) {
            if (!p->ns_ok[BB_NS_USER]) {
                p->ns_errno[k] = p->ns_errno[BB_NS_USER];
                continue;
            }
            flags |= CLONE_NEWUSER;
        }
        p->ns_errno[k] = bb_probe_clone(flags);
        p->ns_ok[k] = p->ns_errno[k] == 0;
    }
    bb_cgroup_detect(&p->cgroup, try_cgroup_write ? BB_CG_PROBE_MKDIR : 0);
    p->unique_uids = p->privileged && bb_probe_uid_range(BB_LAYERS_UID_FLOOR,
                                                         (unsigned long)BB_LAYERS_UID_ZYGOTES * BB_LAYERS_MAX_SLOTS);
    probe_python(p);
}

void bb_probe_facts(const bb_probe *p, bb_layer_facts *f)
{
    memset(f, 0, sizeof *f);
    f->privileged = p->privileged;
    /* An unprivileged zygote makes a user namespace of its own for its netns. */
    f->own_userns = !p->privileged && p->ns_ok[BB_NS_USER];
    f->seccomp = p->seccomp;
    f->seccomp_detail = p->seccomp_detail;
    for (int k = 0; k < BB_NS_COUNT; k++) {
        f->ns_errno[k] = p->ns_errno[k];
        f->ns_flags[k] = ns_kinds[k].flag | (k != BB_NS_USER && p->ns_with_userns ? CLONE_NEWUSER : 0);
    }
    f->unique_uids = p->unique_uids;
    f->uid_base = BB_LAYERS_UID_FLOOR;
    f->shared_uid = (unsigned long)geteuid();
    f->cg = &p->cgroup;
}
