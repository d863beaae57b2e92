/* cgroup_v2.c: cgroup v2 under delegation: finds the delegation root, moves its processes
 * into a leaf, enables the controllers it is offered, undoes all of it on failure, sweeps. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cgroup_int.h"
#include "jailutil.h"

#define append bb_cg_append

/* Every write the kernel refuses is kept, with its errno, for doctor and the error. */
static void refused(bb_cgroup *cg, const char *dir, const char *file, int e)
{
    append(cg->refused, sizeof cg->refused, "%s%s%s: %s; ", dir, file ? "/" : "", file ? file : "",
           bb_jail_strerror(e));
}

/* The one line that makes the delegation root usable, from where it is; why says what
 * it gives. */
static void fix_line(bb_cgroup *cg, const char *rel, const char *why)
{
    const char *svc = strstr(rel, ".service");
    const char *name = NULL;
    if (svc && svc[8] == '\0') {
        name = strrchr(rel, '/');
        name = name ? name + 1 : rel;
    }
    if (strstr(rel, "/user@") || (strstr(rel, "/session-") && strstr(rel, ".scope")))
        snprintf(cg->fix, sizeof cg->fix, "systemd-run --user --scope -p Delegate=yes <command> (a scope your "
                 "user manager delegates to you, %s)", why);
    else if (name)
        snprintf(cg->fix, sizeof cg->fix, "Delegate=yes in the [Service] section of %s (systemctl edit %s), "
                 "or systemd-run --scope -p Delegate=yes <command> (%s)", name, name, why);
    else if (rel[0] == '\0' && !cg->hier_root)
        snprintf(cg->fix, sizeof cg->fix, "give the container a delegated cgroup namespace (docker/podman "
                 "--cgroupns=private with the systemd cgroup driver, whose unit has Delegate=yes) (%s)", why);
    else
        snprintf(cg->fix, sizeof cg->fix, "a systemd unit with Delegate=yes, or systemd-run%s --scope -p "
                 "Delegate=yes <command> (a group delegated to uid %lu, %s)", getuid() ? " --user" : "",
                 (unsigned long)getuid(), why);
}

static void up(char *dir)
{
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
}

static const char *base(const char *dir)
{
    const char *slash = strrchr(dir, '/');
    return slash ? slash + 1 : dir;
}

/* "blockbox-<digits>" exactly; its pid, else 0. */
static long blockbox_pid(const char *name)
{
    long pid;
    char tail;
    if (sscanf(name, "blockbox-%ld%c", &pid, &tail) != 1 || pid <= 0)
        return 0;
    return pid;
}

static int has_procs(const char *dir)
{
    char buf[64];
    return bb_cg_read(dir, "cgroup.procs", buf, sizeof buf) > 0 && buf[0] >= '0' && buf[0] <= '9';
}

/* systemd marks what it delegated (trusted.delegate for system units, user.delegate for
 * a user manager's); where systemd runs, an unmarked group is its own, not ours. */
static int systemd_delegated(const char *dir)
{
    /* Unprivileged, a writable group is one systemd handed over (it chowns only then);
     * root can write anywhere, so only the mark tells. */
    if (geteuid() != 0 || access("/run/systemd/system", F_OK) < 0)
        return 1; /* no systemd: whoever made the group gave it to us */
    char v[8];
    ssize_t n = getxattr(dir, "trusted.delegate", v, sizeof v);
    if (n <= 0)
        n = getxattr(dir, "user.delegate", v, sizeof v);
    return n > 0 && v[0] == '1';
}

void bb_cg2_detect(bb_cgroup *cg, const char *point, const char *own, int how)
{
    char root[BB_CG_PATH], tmp[BB_CG_PATH];
    cg->no_leaf = (how & BB_CG_NO_LEAF) != 0;
    snprintf(cg->start, sizeof cg->start, "%s", own);
    snprintf(root, sizeof root, "%s", own);
    size_t pl = strlen(point);
    /* Started inside blockbox's own leaves (a later executor of the same program):
     * the delegation root is above them. */
    if (strlen(root) > pl && strcmp(base(root), BB_CG_HOST_LEAF) == 0) {
        up(root);
    } else if (strlen(root) > pl && strcmp(base(root), BB_CG_ZYGOTE_LEAF) == 0) {
        snprintf(tmp, sizeof tmp, "%s", root);
        up(tmp);
        if (strlen(tmp) > pl && blockbox_pid(base(tmp))) {
            up(tmp);
            memcpy(root, tmp, sizeof root);
        }
    }
    if (strlen(root) < pl)
        snprintf(root, sizeof root, "%s", point);
    const char *rel = root + pl;
    char offered_s[512], enabled_s[512], names[64], names2[64];
    if (bb_cg_read(root, "cgroup.controllers", offered_s, sizeof offered_s) < 0) {
        append(cg->detail, sizeof cg->detail, "v2: cannot read %s/cgroup.controllers (%s); ", root,
               bb_jail_strerror(errno));
        return;
    }
    if (bb_cg_read(root, "cgroup.subtree_control", enabled_s, sizeof enabled_s) < 0)
        enabled_s[0] = '\0';
    unsigned offered = bb_cg_bits(offered_s), enabled = bb_cg_bits(enabled_s) & offered;
    cg->hier_root = !bb_cg_exists(root, "cgroup.type");
    cg->found |= offered;
    unsigned missing = offered & ~enabled;
    int busy = missing && !cg->hier_root && has_procs(root);
    append(cg->detail, sizeof cg->detail, "v2, delegation root %s: offered %s; enabled for children: %s; ", root,
           offered ? bb_cg_names(offered, names, sizeof names) : "none",
           enabled ? bb_cg_names(enabled, names2, sizeof names2) : "none");
    if (!offered && cg->hier_root) {
        append(cg->detail, sizeof cg->detail, "no controller is on this hierarchy (hybrid: they are on v1); ");
        return;
    }
    if (!(offered & BB_CG_MEMORY)) {
        append(cg->detail, sizeof cg->detail, "its parent does not offer it the memory controller; ");
        fix_line(cg, rel, "with the memory, pids and cpu controllers");
        return;
    }
    if (!cg->hier_root && !systemd_delegated(root)) {
        append(cg->detail, sizeof cg->detail, "systemd manages this group and has not delegated it; ");
        fix_line(cg, rel, "so blockbox may make groups in it");
        return;
    }
    if (busy && cg->no_leaf) {
        append(cg->detail, sizeof cg->detail, "it holds processes and BLOCKBOX_CGROUP_LEAF=False keeps them "
               "there, so it cannot enable controllers for children; ");
        snprintf(cg->fix, sizeof cg->fix, "start the program in a leaf of a delegated group whose own "
                 "cgroup.subtree_control has memory pids cpu, or let blockbox move it "
                 "(BLOCKBOX_CGROUP_LEAF=True, the default)");
        return;
    }
    int bad = 0;
    char file[BB_CG_PATH + 64];
    if (missing) {
        snprintf(file, sizeof file, "%s/cgroup.subtree_control", root);
        if (access(file, W_OK) < 0 && ++bad)
            refused(cg, root, "cgroup.subtree_control", errno);
    }
    if (busy) {
        snprintf(file, sizeof file, "%s/cgroup.procs", root);
        if (access(file, W_OK) < 0 && ++bad)
            refused(cg, root, "cgroup.procs", errno);
    }
    if (((how & BB_CG_PROBE_MKDIR) ? bb_cg_probe_mkdir(root) : access(root, W_OK)) < 0 && ++bad)
        refused(cg, root, "(mkdir)", errno);
    if (bad) {
        append(cg->detail, sizeof cg->detail, "not delegated to uid %lu (refused: %s); ", (unsigned long)getuid(),
               cg->refused);
        fix_line(cg, rel, "so blockbox may make groups in it");
        return;
    }
    cg->version = 2;
    cg->usable = offered;
    cg->enabled = enabled;
    cg->root_busy = busy;
    cg->nhier = 1;
    cg->hier[0].ctrls = offered;
    snprintf(cg->hier[0].own, sizeof cg->hier[0].own, "%s", root);
    cg->have_swap_max = 1; /* checked per worker group: the file exists only there */
    if (busy)
        append(cg->detail, sizeof cg->detail, "its processes go to the leaf %s first; ", BB_CG_HOST_LEAF);
}

/* "+memory +pids" (sign '+') or "-memory -pids" for bits. */
static void ctrl_words(unsigned bits, char sign, char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i < BB_CG_NCTRL; i++)
        if (bits & bb_cg_ctrls[i].bit)
            append(out, len, "%s%c%s", out[0] ? " " : "", sign, bb_cg_ctrls[i].name);
}

/* Moves every process of `from` into `to` (the set can grow while we read it). */
static int move_all(bb_cgroup *cg, const char *from, const char *to)
{
    for (int round = 0; round < 64; round++) {
        char buf[8192];
        long n = bb_cg_read(from, "cgroup.procs", buf, sizeof buf);
        if (n < 0) {
            refused(cg, from, "cgroup.procs (read)", errno);
            return -1;
        }
        int moved = 0;
        for (char *s = buf; *s;) {
            char *end;
            long pid = strtol(s, &end, 10);
            if (end == s)
                break;
            s = end;
            while (*s == '\n')
                s++;
            if (pid <= 0)
                continue; /* not in our pid namespace: cannot be named */
            char v[24];
            snprintf(v, sizeof v, "%ld", pid);
            if (bb_cg_write(to, "cgroup.procs", v) < 0) {
                if (errno == ESRCH)
                    continue; /* gone meanwhile */
                refused(cg, to, "cgroup.procs", errno);
                return -1;
            }
            moved++;
        }
        if (!moved)
            return 0;
    }
    refused(cg, from, "cgroup.procs (keeps filling)", EAGAIN);
    return -1;
}

static int enable(bb_cgroup *cg, const char *dir, unsigned bits)
{
    char words[64];
    ctrl_words(bits, '+', words, sizeof words);
    if (bb_cg_write(dir, "cgroup.subtree_control", words) == 0)
        return 0;
    int e = errno;
    refused(cg, dir, "cgroup.subtree_control", e);
    errno = e;
    return -1;
}

/* Where this process is now (another executor's zygote may have moved it). */
static void current_group(const bb_cgroup *cg, char *out, size_t len)
{
    char buf[4096];
    snprintf(out, len, "%s", cg->home);
    if (bb_jail_read_file("/proc/self/cgroup", buf, sizeof buf) <= 0)
        return;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, "0::/", 4) == 0 && (size_t)cg->point_len < BB_CG_PATH) {
            int n = snprintf(out, len, "%.*s%s", cg->point_len, cg->start, strcmp(line + 3, "/") ? line + 3 : "");
            if (n < 0 || (size_t)n >= len)
                snprintf(out, len, "%s", cg->home);
            return;
        }
        line = nl ? nl + 1 : NULL;
    }
}

/* Back to where the host was: only what this zygote changed. */
static void undo(bb_cgroup *cg)
{
    bb_cgroup_hier *H = &cg->hier[0];
    char leaf[BB_CG_PATH + 32], z[BB_CG_PATH + 32];
    snprintf(leaf, sizeof leaf, "%s/%s", H->own, BB_CG_HOST_LEAF);
    if (cg->self_leaf) {
        char v[24];
        snprintf(v, sizeof v, "%d", (int)getpid());
        /* home, or the host leaf when home cannot hold processes any more (another
         * executor enabled controllers in it meanwhile) */
        if (bb_cg_write(cg->home, "cgroup.procs", v) == 0 || bb_cg_write(leaf, "cgroup.procs", v) == 0)
            cg->self_leaf = 0;
        else
            refused(cg, cg->home, "cgroup.procs (undo)", errno);
    }
    if (H->parent_made) {
        snprintf(z, sizeof z, "%s/%s", H->parent, BB_CG_ZYGOTE_LEAF);
        rmdir(z);
        if (rmdir(H->parent) == 0 || errno == ENOENT)
            H->parent_made = 0;
    }
    if (cg->we_enabled) {
        char words[64];
        ctrl_words(cg->we_enabled, '-', words, sizeof words);
        if (bb_cg_write(H->own, "cgroup.subtree_control", words) < 0)
            refused(cg, H->own, "cgroup.subtree_control (undo)", errno);
        else
            cg->we_enabled = 0;
    }
    if (cg->moved_host && !cg->we_enabled && move_all(cg, leaf, H->own) == 0)
        cg->moved_host = 0;
    if (cg->host_leaf_made && !cg->moved_host && rmdir(leaf) == 0)
        cg->host_leaf_made = 0;
}

int bb_cg2_setup(bb_cgroup *cg, pid_t zygote, char *err, size_t errlen)
{
    bb_cgroup_hier *H = &cg->hier[0];
    const char *root = H->own;
    char leaf[BB_CG_PATH + 32], z[BB_CG_PATH + 32];
    snprintf(leaf, sizeof leaf, "%s/%s", root, BB_CG_HOST_LEAF);
    snprintf(cg->home, sizeof cg->home, "%s", cg->start);
    bb_cg2_sweep(cg);
    unsigned missing = H->ctrls & ~cg->enabled;
    if (missing && enable(cg, root, missing) < 0) {
        /* The no-internal-processes rule: the root's processes go to a leaf first. */
        if (errno != EBUSY || cg->hier_root || cg->no_leaf)
            goto fail;
        cg->refused[0] = '\0';
        if (mkdir(leaf, 0755) == 0)
            cg->host_leaf_made = 1;
        else if (errno != EEXIST) {
            refused(cg, root, BB_CG_HOST_LEAF " (mkdir)", errno);
            goto fail;
        }
        cg->moved_host = 1;
        if (move_all(cg, root, leaf) < 0 || enable(cg, root, missing) < 0)
            goto fail;
    }
    cg->we_enabled = missing;
    char cur[BB_CG_PATH];
    current_group(cg, cur, sizeof cur);
    memcpy(cg->home, cur, sizeof cg->home);
    int n = snprintf(H->parent, sizeof H->parent, "%s/blockbox-%d", root, (int)zygote);
    if (n < 0 || (size_t)n >= sizeof H->parent) {
        refused(cg, root, "blockbox-<pid> (path too long)", ENAMETOOLONG);
        goto fail;
    }
    if (mkdir(H->parent, 0755) < 0) {
        /* Left by a zygote of the same number in another pid namespace that still runs. */
        refused(cg, H->parent, "(mkdir)", errno);
        goto fail;
    }
    H->parent_made = 1;
    /* The zygote's own leaf first (it proves to a successor's sweep whether the zygote
     * lives), then the controllers for the workers' groups. */
    snprintf(z, sizeof z, "%s/%s", H->parent, BB_CG_ZYGOTE_LEAF);
    if (mkdir(z, 0755) < 0) {
        refused(cg, z, "(mkdir)", errno);
        goto fail;
    }
    char v[24];
    snprintf(v, sizeof v, "%d", (int)getpid());
    if (bb_cg_write(z, "cgroup.procs", v) < 0) {
        refused(cg, z, "cgroup.procs", errno);
        goto fail;
    }
    cg->self_leaf = 1;
    if (enable(cg, H->parent, H->ctrls) < 0)
        goto fail;
    cg->have_kill = bb_cg_exists(H->parent, "cgroup.kill");
    return 0;
fail:
    undo(cg);
    append(cg->detail, sizeof cg->detail, "; set-up refused (%s), everything it changed undone%s",
           cg->refused, (cg->we_enabled || cg->moved_host || cg->host_leaf_made || H->parent_made)
                            ? " EXCEPT what the line before names" : "");
    cg->version = 0;
    cg->usable = 0;
    if (!cg->fix[0]) {
        size_t pl = (size_t)cg->point_len <= strlen(root) ? (size_t)cg->point_len : 0;
        fix_line(cg, root + pl, "so blockbox may make groups in it");
    }
    return bb_jail_fail(err, errlen, "cgroup v2 set-up under %s refused: %s", root, cg->refused);
}

void bb_cg2_teardown(bb_cgroup *cg)
{
    bb_cgroup_hier *H = &cg->hier[0];
    if (H->parent_made)
        bb_cg_remove_slots(H->parent, cg->have_kill);
    /* What the root got (controllers, the host leaf) stays: the program lives in the
     * leaf, and other executors may use both. */
    cg->we_enabled = 0;
    cg->moved_host = 0;
    cg->host_leaf_made = 0;
    undo(cg);
    bb_cg2_sweep(cg);
    bb_cg_slots_free(cg);
}

/* Is the zygote of blockbox-<pid> gone for sure? Its leaf is empty (whatever pid
 * namespace it ran in) and no process here has its number. */
static int zygote_gone(const char *dir, long pid)
{
    char z[BB_CG_PATH + 320], ev[256];
    snprintf(z, sizeof z, "%s/%s", dir, BB_CG_ZYGOTE_LEAF);
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
        return 0;
    if (!bb_cg_exists(dir, BB_CG_ZYGOTE_LEAF))
        return 1; /* never got its leaf: only empty groups will go */
    return bb_cg_read(z, "cgroup.events", ev, sizeof ev) > 0 && strstr(ev, "populated 0") != NULL;
}

void bb_cg2_sweep(bb_cgroup *cg)
{
    bb_cgroup_hier *H = &cg->hier[0];
    DIR *d = opendir(H->own);
    if (!d)
        return;
    int busy = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = blockbox_pid(e->d_name);
        char dir[BB_CG_PATH + 300];
        snprintf(dir, sizeof dir, "%s/%s", H->own, e->d_name);
        if (!pid || (H->parent_made && strcmp(dir, H->parent) == 0) || !zygote_gone(dir, pid))
            continue;
        /* Its zygote is dead: what is left in it was its workers (dying by PDEATHSIG). */
        if (bb_cg_exists(dir, BB_CG_ZYGOTE_LEAF) && bb_cg_exists(dir, "cgroup.kill"))
            bb_cg_write(dir, "cgroup.kill", "1");
        busy += bb_cg_rmdir_children(dir);
        if (rmdir(dir) < 0 && errno != ENOENT)
            busy++;
    }
    closedir(d);
    cg->stale_pending = busy > 0;
}
