/* cgroup.c: control groups: detection of v2/v1 from /proc/self/cgroup and /proc/self/
 * mountinfo, v1 set-up, sweep and teardown, file helpers, kill-all and removal. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_int.h"
#include "jail.h"
#include "jailutil.h"

const struct bb_cg_ctrl bb_cg_ctrls[BB_CG_NCTRL] = {
    {BB_CG_MEMORY, "memory"}, {BB_CG_PIDS, "pids"}, {BB_CG_CPU, "cpu"}};
#define ctrl_names bb_cg_ctrls
#define N_CTRL BB_CG_NCTRL
#define append bb_cg_append

void bb_cg_append(char *dst, size_t len, const char *fmt, ...)
{
    size_t used = strlen(dst);
    if (used + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst + used, len - used, fmt, ap);
    va_end(ap);
}

/* Is `word` one of the comma-separated items of `list`? */
static int list_has(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == wl && strncmp(p, word, wl) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int bb_cg_words_have(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\n')
            p++;
        const char *s = p;
        while (*p && *p != ' ' && *p != '\n')
            p++;
        if ((size_t)(p - s) == wl && strncmp(s, word, wl) == 0)
            return 1;
    }
    return 0;
}

unsigned bb_cg_bits(const char *list)
{
    unsigned bits = 0;
    for (int i = 0; i < N_CTRL; i++)
        if (bb_cg_words_have(list, ctrl_names[i].name))
            bits |= ctrl_names[i].bit;
    return bits;
}

const char *bb_cg_names(unsigned bits, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < N_CTRL; i++)
        if (bits & ctrl_names[i].bit)
            append(buf, len, "%s%s", buf[0] ? " " : "", ctrl_names[i].name);
    return buf;
}

/* mountinfo escapes spaces and friends as \ooo. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
            r[3] <= '7') {
            *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

typedef bb_cg_mount mount_entry;

/* The next line of a text, without its newline, into buf; *at moves past it. 1, or 0
 * at the end. A line too long for buf comes back as "", which matches nothing. */
static int next_line(const char **at, char *buf, size_t size)
{
    const char *line = *at;
    if (!line || !*line)
        return 0;
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    *at = nl ? nl + 1 : NULL;
    if (len >= size)
        len = 0;
    memcpy(buf, line, len);
    buf[len] = '\0';
    return 1;
}

/* Finds the cgroup mount: v2 when ctrl is NULL, else the v1 mount carrying ctrl.
 * Returns 0 when found. */
static int find_mount(const char *mountinfo, const char *ctrl, mount_entry *out)
{
    const char *at = mountinfo;
    char buf[2048];
    while (next_line(&at, buf, sizeof buf)) {
        char *sep = strstr(buf, " - ");
        if (!sep)
            continue;
        *sep = '\0';
        char fstype[32], source[256], super[256];
        char root[BB_CG_PATH], point[BB_CG_PATH];
        super[0] = '\0';
        if (sscanf(sep + 3, "%31s %255s %255s", fstype, source, super) < 2 ||
            sscanf(buf, "%*s %*s %*s %511s %511s", root, point) != 2)
            continue;
        int match = ctrl ? (strcmp(fstype, "cgroup") == 0 && list_has(super, ctrl))
                         : strcmp(fstype, "cgroup2") == 0;
        if (match) {
            unescape(root);
            unescape(point);
            snprintf(out->root, sizeof out->root, "%s", root);
            snprintf(out->point, sizeof out->point, "%s", point);
            snprintf(out->fstype, sizeof out->fstype, "%s", fstype);
            snprintf(out->super, sizeof out->super, "%s", super);
            return 0;
        }
    }
    return -1;
}

/* The path of this process in the hierarchy with ctrl ("" selects the v2 line "0::"). */
static int own_path(const char *proc_cgroup, const char *ctrl, char *out, size_t len)
{
    const char *at = proc_cgroup;
    char buf[1024];
    while (next_line(&at, buf, sizeof buf)) {
        char *c1 = strchr(buf, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = '\0';
        *c2 = '\0';
        const char *ctrls = c1 + 1;
        int match = ctrl[0] ? list_has(ctrls, ctrl) : (strcmp(buf, "0") == 0 && ctrls[0] == '\0');
        if (match) {
            snprintf(out, len, "%s", c2 + 1);
            return 0;
        }
    }
    return -1;
}

/* mount point + (path relative to the mount's root), or -1 if the path lies outside
 * what is mounted. */
static int join_dir(const mount_entry *m, const char *path, char *out, size_t len)
{
    size_t rl = strlen(m->root);
    const char *rel = path;
    if (strcmp(m->root, "/") != 0) {
        if (strncmp(path, m->root, rl) != 0 || (path[rl] != '\0' && path[rl] != '/'))
            return -1;
        rel = path + rl;
    }
    if (strstr(rel, "/..") || strstr(rel, "(deleted)"))
        return -1;
    int n = snprintf(out, len, "%s%s", m->point, strcmp(rel, "/") == 0 ? "" : rel);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int bb_cg_probe_mkdir(const char *dir)
{
    char probe[BB_CG_PATH + 64];
    snprintf(probe, sizeof probe, "%s/blockbox-probe-%d", dir, (int)getpid());
    if (mkdir(probe, 0755) < 0)
        return -1;
    rmdir(probe);
    return 0;
}
#define probe_mkdir bb_cg_probe_mkdir

static char *slurp(const char *path, size_t max)
{
    char *buf = malloc(max);
    if (!buf)
        return NULL;
    if (bb_jail_read_file(path, buf, max) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int bb_cg_exists(const char *dir, const char *file)
{
    char p[BB_CG_PATH + 64];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return access(p, F_OK) == 0;
}
#define exists bb_cg_exists

static void detect_v2(bb_cgroup *cg, const char *mountinfo, const char *proc_cgroup, int how)
{
    mount_entry m;
    char path[BB_CG_PATH], own[BB_CG_PATH];
    if (find_mount(mountinfo, NULL, &m) < 0 || own_path(proc_cgroup, "", path, sizeof path) < 0)
        return;
    if (join_dir(&m, path, own, sizeof own) < 0) {
        append(cg->detail, sizeof cg->detail, "v2: own group %s not under the mount; ", path);
        return;
    }
    cg->point_len = (int)strlen(m.point);
    bb_cg2_detect(cg, m.point, own, how);
}

static void detect_v1(bb_cgroup *cg, const char *mountinfo, const char *proc_cgroup, int try_write)
{
    for (int i = 0; i < N_CTRL; i++) {
        mount_entry m;
        char path[BB_CG_PATH], own[BB_CG_PATH];
        const char *name = ctrl_names[i].name;
        if (find_mount(mountinfo, name, &m) < 0 || own_path(proc_cgroup, name, path, sizeof path) < 0)
            continue;
        cg->found |= ctrl_names[i].bit;
        if (join_dir(&m, path, own, sizeof own) < 0) {
            append(cg->detail, sizeof cg->detail, "v1 %s: group %s not under its mount; ", name, path);
            continue;
        }
        if ((try_write & BB_CG_PROBE_MKDIR) ? probe_mkdir(own) < 0 : access(own, W_OK) < 0) {
            append(cg->detail, sizeof cg->detail, "v1 %s at %s not writable (%s); ", name, own,
                   bb_jail_strerror(errno));
            continue;
        }
        append(cg->detail, sizeof cg->detail, "v1 %s at %s; ", name, own);
        cg->usable |= ctrl_names[i].bit;
        int h;
        for (h = 0; h < cg->nhier; h++)
            if (strcmp(cg->hier[h].own, own) == 0)
                break;
        if (h == cg->nhier) {
            if (cg->nhier == BB_CG_MAX_HIER)
                continue;
            cg->nhier++;
            snprintf(cg->hier[h].own, sizeof cg->hier[h].own, "%s", own);
        }
        cg->hier[h].ctrls |= ctrl_names[i].bit;
        if (ctrl_names[i].bit == BB_CG_MEMORY)
            cg->have_memsw = exists(own, "memory.memsw.limit_in_bytes");
    }
    if (cg->usable & BB_CG_MEMORY)
        cg->version = 1;
}

void bb_cgroup_detect(bb_cgroup *cg, int try_write)
{
    memset(cg, 0, sizeof *cg);
    char *proc_cgroup = slurp("/proc/self/cgroup", 8192);
    char *mountinfo = slurp("/proc/self/mountinfo", 1 << 20);
    if (!proc_cgroup || !mountinfo) {
        snprintf(cg->detail, sizeof cg->detail, "cannot read /proc/self/cgroup or /proc/self/mountinfo");
        free(proc_cgroup);
        free(mountinfo);
        return;
    }
    detect_v2(cg, mountinfo, proc_cgroup, try_write);
    if (cg->version != 2) {
        bb_cgroup *v1 = calloc(1, sizeof *v1);
        if (v1) {
            memcpy(v1->detail, cg->detail, sizeof v1->detail);
            detect_v1(v1, mountinfo, proc_cgroup, try_write);
            if (v1->version == 1) {
                memcpy(v1->refused, cg->refused, sizeof v1->refused);
                memcpy(v1->fix, cg->fix, sizeof v1->fix);
                v1->no_leaf = cg->no_leaf;
                *cg = *v1;
            } else {
                memcpy(cg->detail, v1->detail, sizeof cg->detail);
                cg->found |= v1->found;
            }
            free(v1);
        }
    }
    if (cg->version == 0 && !cg->fix[0] && cg->found)
        snprintf(cg->fix, sizeof cg->fix, "run as root (these cgroup v1 groups are root's), or use cgroup v2 "
                 "with delegation: boot with systemd.unified_cgroup_hierarchy=1, then Delegate=yes or "
                 "systemd-run --user --scope -p Delegate=yes <command>");
    if (cg->version == 0)
        append(cg->detail, sizeof cg->detail, "no usable memory controller: rlimit fallback "
               "(address space, nproc) in use");
    else if (cg->version == 1)
        append(cg->detail, sizeof cg->detail, "cgroup v1 fallback in use");
    size_t dl = strlen(cg->detail);
    if (dl >= 2 && strcmp(cg->detail + dl - 2, "; ") == 0)
        cg->detail[dl - 2] = '\0';
    free(proc_cgroup);
    free(mountinfo);
}

/* ---- groups ---------------------------------------------------------------- */

int bb_cg_write(const char *dir, const char *file, const char *value)
{
    char p[BB_CG_PATH + 64];
    int n = snprintf(p, sizeof p, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return bb_jail_write_file(p, value);
}
#define write_knob bb_cg_write

long bb_cg_read(const char *dir, const char *file, char *buf, size_t len)
{
    char p[BB_CG_PATH + 64];
    int n = snprintf(p, sizeof p, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return (long)bb_jail_read_file(p, buf, len);
}

long bb_cg_read_long(const char *dir, const char *file, const char *key)
{
    char p[BB_CG_PATH + 64], buf[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    if (bb_jail_read_file(p, buf, sizeof buf) < 0)
        return -1;
    if (!key)
        return strtol(buf, NULL, 10);
    size_t kl = strlen(key);
    for (char *line = buf; line && *line;) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ')
            return strtol(line + kl + 1, NULL, 10);
        char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    return -1;
}

/* SIGKILL to every pid of a cgroup.procs text (one a line), never to pid 1. */
static void kill_listed(const char *procs)
{
    for (const char *s = procs; *s;) {
        char *end;
        long pid = strtol(s, &end, 10);
        if (end == s)
            break;
        if (pid > 1)
            kill((pid_t)pid, SIGKILL);
        s = end;
        while (*s == '\n')
            s++;
    }
}

/* A group whose last task just exited stays busy for a moment: the attempt-th wait backs
 * off from 20 µs up to 5 ms (about 2 s over the 400 attempts of the callers). */
static void back_off(int attempt)
{
    long us = 20L << (attempt < 8 ? attempt : 8);
    if (us > 5000)
        us = 5000;
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

int bb_cg_kill_and_remove(const char *dir, int have_kill)
{
    if (have_kill)
        write_knob(dir, "cgroup.kill", "1");
    for (int attempt = 0; attempt < 400; attempt++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -1;
        char p[BB_CG_PATH + 64], buf[4096];
        snprintf(p, sizeof p, "%s/cgroup.procs", dir);
        if (bb_jail_read_file(p, buf, sizeof buf) > 0)
            kill_listed(buf);
        back_off(attempt);
    }
    return -1;
}

int bb_cg_rmdir_children(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int busy = 0;
    struct dirent *w;
    while ((w = readdir(d))) {
        if (w->d_name[0] == '.' || w->d_type != DT_DIR)
            continue;
        char wd[BB_CG_PATH + 600];
        snprintf(wd, sizeof wd, "%s/%s", dir, w->d_name);
        if (rmdir(wd) < 0 && errno != ENOENT)
            busy++;
    }
    closedir(d);
    return busy;
}

void bb_cg_remove_slots(const char *parent, int have_kill)
{
    DIR *d = opendir(parent);
    if (!d)
        return;
    struct dirent *w;
    while ((w = readdir(d))) {
        if (strncmp(w->d_name, BB_CG_SLOT_PREFIX, strlen(BB_CG_SLOT_PREFIX)) != 0)
            continue;
        char wd[BB_CG_PATH + 300];
        snprintf(wd, sizeof wd, "%s/%s", parent, w->d_name);
        bb_cg_kill_and_remove(wd, have_kill);
    }
    closedir(d);
}

int bb_cg_empty(const char *dir, int have_kill)
{
    for (int attempt = 0; attempt < 400; attempt++) {
        char p[BB_CG_PATH + 64], buf[4096];
        snprintf(p, sizeof p, "%s/cgroup.procs", dir);
        ssize_t n = bb_jail_read_file(p, buf, sizeof buf);
        if (n < 0)
            return -1;
        if (n == 0 || buf[0] < '0' || buf[0] > '9')
            return 0;
        if (have_kill && attempt == 0)
            write_knob(dir, "cgroup.kill", "1");
        kill_listed(buf);
        back_off(attempt);
    }
    return -1;
}

/* v1: removes empty stale blockbox-<pid> groups of zygotes that no longer exist;
 * returns how many are still busy. */
static int sweep_stale(const char *own, pid_t self)
{
    int busy = 0;
    DIR *d = opendir(own);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid;
        char tail;
        if (sscanf(e->d_name, "blockbox-%ld%c", &pid, &tail) != 1 || pid <= 0 || pid == self)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char stale[BB_CG_PATH + 300];
        snprintf(stale, sizeof stale, "%s/%s", own, e->d_name);
        /* Only empty groups go: a pid that looks dead here may live in another pid
         * namespace, and its workers are not ours to kill (ours die with their zygote
         * through PDEATHSIG anyway). */
        bb_cg_rmdir_children(stale);
        if (rmdir(stale) < 0 && errno != ENOENT)
            busy++;
    }
    closedir(d);
    return busy;
}

void bb_cgroup_sweep(bb_cgroup *cg)
{
    if (cg->version == 2) {
        bb_cg2_sweep(cg);
        return;
    }
    int busy = 0;
    for (int h = 0; h < cg->nhier; h++)
        busy += sweep_stale(cg->hier[h].own, getpid());
    cg->stale_pending = busy > 0;
}

int bb_cgroup_setup(bb_cgroup *cg, pid_t zygote, char *err, size_t errlen)
{
    if (cg->version == 2)
        return bb_cg2_setup(cg, zygote, err, errlen);
    for (int h = 0; h < cg->nhier; h++) {
        bb_cgroup_hier *H = &cg->hier[h];
        cg->stale_pending |= sweep_stale(H->own, zygote) > 0;
        char parent[BB_CG_PATH];
        int n = snprintf(parent, sizeof parent, "%s/blockbox-%d", H->own, (int)zygote);
        if (n < 0 || (size_t)n >= sizeof parent)
            return bb_jail_fail(err, errlen, "cgroup path too long under %s", H->own);
        memcpy(H->parent, parent, sizeof parent);
        if (mkdir(H->parent, 0755) < 0 && errno != EEXIST)
            return bb_jail_fail(err, errlen, "cannot create cgroup %s: %s", H->parent,
                                bb_jail_strerror(errno));
        H->parent_made = 1;
    }
    return 0;
}

void bb_cgroup_teardown(bb_cgroup *cg)
{
    if (cg->version == 2) {
        bb_cg2_teardown(cg);
        return;
    }
    for (int h = 0; h < cg->nhier; h++) {
        bb_cgroup_hier *H = &cg->hier[h];
        if (!H->parent_made)
            continue;
        bb_cg_remove_slots(H->parent, cg->have_kill);
        if (rmdir(H->parent) == 0 || errno == ENOENT)
            H->parent_made = 0;
    }
    bb_cg_slots_free(cg);
}

/* detect() of the cgroup layer (jail.h): what cgroup detection found, and the fix. */
int bb_cgroup_layer_detect(const bb_layer_facts *f, char *detail, size_t len)
{
    const bb_cgroup *cg = f->cg;
    if (!cg) {
        snprintf(detail, len, "not detected");
        return 0;
    }
    snprintf(detail, len, "%s%s%s", cg->detail, cg->fix[0] ? "; to fix it: " : "", cg->fix);
    return cg->version > 0;
}
