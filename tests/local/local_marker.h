/* local_marker.h: finding what an executor left behind: its processes (by a unique
 * worker executable name), its cgroup directories, and this process's fds. */
#ifndef LOCAL_MARKER_H
#define LOCAL_MARKER_H

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "local_test_util.h"

/* ---- a worker executable with a name of our own ------------------------------- */

/* The zygote and its workers carry the comm of the file they were exec'd from (and
 * workers inherit it through fork), so a symlink with a unique name marks every
 * process of this test's executor. */
static char marker_dir[128];
static char marker_path[256];
static char marker_comm[16];

static inline void make_marker(void)
{
    const char *worker = getenv("BB_TEST_WORKER");
    ck_assert_msg(worker && *worker, "BB_TEST_WORKER is not set: run this test through ctest");
    snprintf(marker_dir, sizeof marker_dir, "/tmp/bb-local-test-%d", (int)getpid());
    ck_assert(mkdir(marker_dir, 0755) == 0 || errno == EEXIST);
    snprintf(marker_comm, sizeof marker_comm, "bbz%x", (unsigned)getpid() & 0xfffffff);
    snprintf(marker_path, sizeof marker_path, "%s/%s", marker_dir, marker_comm);
    unlink(marker_path);
    ck_assert_msg(symlink(worker, marker_path) == 0, "symlink: %s", strerror(errno));
}

static inline void drop_marker(void)
{
    unlink(marker_path);
    rmdir(marker_dir);
}

static inline bb_executor *marked_executor(const char *key, const char *value)
{
    /* key NULL ends the list after the worker path. */
    const char *const pairs[] = {"worker_path", marker_path, key, value, NULL};
    return local_executor(pairs);
}

/* The test blocks' counter: N counts the runs of one instance (naps nap seconds). */
static const char COUNTER[] =
    "N = 0\n"
    "def run(self, x=0, nap=0):\n"
    "    global N\n"
    "    N += 1\n"
    "    if nap:\n"
    "        time.sleep(nap)\n"
    "    return {'n': N, 'y': x + 1}\n";

static inline pid_t zygote_pid_of(bb_executor *ex) { return (pid_t)describe_long(ex, "zygote_pid"); }

/* Reads /proc/<pid>/stat into buf (NUL-terminated, cut at size - 1); -1 when it is gone. */
static inline int proc_stat(pid_t pid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t len = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[len] = '\0';
    return 0;
}

/* Processes whose comm is our marker: live ones, and zombies whose parent is us (a
 * zombie of ours would be a child the library forgot to reap). Fills pids (up to max). */
static inline int marked_processes(pid_t *pids, int max)
{
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char buf[512];
        if (proc_stat((pid_t)pid, buf, sizeof buf) < 0)
            continue;
        char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
        if (!open_paren || !close_paren || close_paren < open_paren)
            continue;
        *close_paren = '\0';
        if (strcmp(open_paren + 1, marker_comm) != 0)
            continue;
        char state = close_paren[2];
        long ppid = strtol(close_paren + 4, NULL, 10);
        if ((state == 'Z' || state == 'X') && ppid != (long)getpid())
            continue;   /* an orphan zombie waits for init, not for us */
        if (n < max)
            pids[n] = (pid_t)pid;
        n++;
    }
    closedir(d);
    return n;
}

/* Waits up to seconds for our marked processes to be gone; returns how many remain. */
static inline int marked_after(double seconds)
{
    pid_t pids[64];
    double until = monotonic_s() + scaled_s(seconds);
    int n;
    while ((n = marked_processes(pids, 64)) > 0 && monotonic_s() < until)
        usleep(5000);
    return n;
}

static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;   /* the directory stream's own fd */
}

/* Does the cgroup directory hold a process? */
static inline int group_populated(const char *dir)
{
    char p[2200], buf[32];
    snprintf(p, sizeof p, "%s/cgroup.procs", dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n > 0;
}

#define MAX_ZYGOTE_DIRS 8

/* The blockbox-<zygote> directories that exist under our own group, one per hierarchy
 * (cgroup.c makes them there, see /proc/self/cgroup; v2: beside our leaf): up to max of
 * them into dirs; returns how many. */
static inline int zygote_group_dirs(pid_t zygote, char dirs[][2048], int max)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return 0;
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        char *path = c2 + 1;
        /* v2 under delegation: this program was moved into the root's leaf blockbox-host
         * and the zygote's group is the leaf's sibling. */
        size_t pl = strlen(path);
        if (!c1[1] && pl >= 14 && strcmp(path + pl - 14, "/blockbox-host") == 0)
            path[pl - 14] = 0;
        if (!*path)
            path = "/";
        char ctrls[256];
        snprintf(ctrls, sizeof ctrls, "%s", c1 + 1);
        /* v1 "memory" / "cpu,cpuacct" / "name=systemd"; v2 "" (unified). */
        const char *mounts[8];
        int nm = 0;
        if (!*ctrls) {
            mounts[nm++] = "unified";
            mounts[nm++] = "";
        } else {
            char *save = NULL;
            for (char *w = strtok_r(ctrls, ",", &save); w && nm < 8; w = strtok_r(NULL, ",", &save))
                mounts[nm++] = strncmp(w, "name=", 5) == 0 ? w + 5 : w;
        }
        for (int i = 0; i < nm && found < max; i++) {
            struct stat sb;
            snprintf(dirs[found], 2048, "/sys/fs/cgroup/%s%s/blockbox-%d", mounts[i],
                     strcmp(path, "/") == 0 ? "" : path, (int)zygote);
            if (stat(dirs[found], &sb) == 0 && S_ISDIR(sb.st_mode))
                found++;
        }
    }
    fclose(f);
    return found;
}

/* How many cgroup directories named blockbox-<zygote> exist, in every hierarchy. */
static inline int zygote_cgroups(pid_t zygote)
{
    enum { MAX_HIERARCHIES = 64 };
    char (*dirs)[2048] = malloc(MAX_HIERARCHIES * sizeof *dirs);
    ck_assert_ptr_nonnull(dirs);
    int n = zygote_group_dirs(zygote, dirs, MAX_HIERARCHIES);
    free(dirs);
    return n;
}

/* Worker groups under blockbox-<zygote> in every hierarchy (the per-slot slot-<n>
 * groups, made once and reused; worker-<pid> was the per-worker name before): how
 * many hold a process (busy = 1) or how many exist (busy = 0). */
static inline int worker_groups(pid_t zygote, int busy)
{
    char dirs[MAX_ZYGOTE_DIRS][2048];
    int nd = zygote_group_dirs(zygote, dirs, MAX_ZYGOTE_DIRS), found = 0;
    for (int i = 0; i < nd; i++) {
        DIR *d = opendir(dirs[i]);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, "worker-", 7) != 0 && strncmp(e->d_name, "slot-", 5) != 0)
                continue;
            char sub[2400];
            snprintf(sub, sizeof sub, "%s/%s", dirs[i], e->d_name);
            found += !busy || group_populated(sub);
        }
        closedir(d);
    }
    return found;
}

/* Worker groups holding a process. */
static inline int worker_cgroups(pid_t zygote) { return worker_groups(zygote, 1); }

/* The inodes of slot-<slot> in every hierarchy (0 where it is missing); returns how
 * many hierarchies there are. A group made anew has a new inode. */
static inline int slot_group_inodes(pid_t zygote, int slot, ino_t *ino, int max)
{
    char dirs[MAX_ZYGOTE_DIRS][2048];
    int nd = zygote_group_dirs(zygote, dirs, MAX_ZYGOTE_DIRS);
    for (int i = 0; i < nd && i < max; i++) {
        char sub[2400];
        struct stat sb;
        snprintf(sub, sizeof sub, "%s/slot-%d", dirs[i], slot);
        ino[i] = stat(sub, &sb) == 0 ? sb.st_ino : 0;
    }
    return nd < max ? nd : max;
}

/* After the executor is freed: none of its processes outlives it (waiting up to 5 s);
 * then the marker goes. */
static inline void assert_processes_gone(void)
{
    ck_assert_msg(marked_after(5) == 0, "processes of the executor outlived it");
    drop_marker();
}

/* The same, and no cgroup blockbox-<zygote> is left in any hierarchy. */
static inline void assert_executor_left_nothing(pid_t zygote)
{
    ck_assert_msg(marked_after(5) == 0, "processes of the executor outlived it");
    ck_assert_int_eq(zygote_cgroups(zygote), 0);
    drop_marker();
}

#endif
