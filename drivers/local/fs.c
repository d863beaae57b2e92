/* fs.c: the worker's private filesystem: a fresh size- and inode-capped tmpfs as the
 * new root holding read-only binds of what CPython, numpy and cv2 need (see fs.h). */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jailutil.h"
#include "ns.h"

/* The new mount API (Linux 5.2), by number: glibc's wrappers clash with linux/mount.h. */
#ifndef FSCONFIG_CMD_CREATE
#define FSCONFIG_CMD_CREATE 6
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif

#ifndef ST_VALID
#define ST_VALID 0x0020 /* statfs f_flags are valid (Linux 2.6.36+) */
#endif

/* Runs in a child after fork: no heap, only stack buffers and system calls. */

/* The mount flags the kernel will not let a less privileged namespace clear
 * (ro, nosuid, nodev, noexec, atime): a bind remount must repeat them. */
static unsigned long locked_flags(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) < 0 || !(sf.f_flags & ST_VALID))
        return 0;
    static const struct { unsigned long st, ms; } map[] = {
        {ST_RDONLY, MS_RDONLY},     {ST_NOSUID, MS_NOSUID},         {ST_NODEV, MS_NODEV},
        {ST_NOEXEC, MS_NOEXEC},     {ST_NOATIME, MS_NOATIME},       {ST_NODIRATIME, MS_NODIRATIME},
        {ST_RELATIME, MS_RELATIME},
    };
    unsigned long fl = 0;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (sf.f_flags & map[i].st)
            fl |= map[i].ms;
    return fl;
}

/* Binds src (host path) onto dst (relative to the new root, which is the cwd) and
 * remounts it with flags added. */
static int bind(const char *src, const char *dst, unsigned long flags, char *err, size_t errlen)
{
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
        return bb_jail_fail(err, errlen, "bind %s: %s", src, bb_jail_strerror(errno));
    unsigned long fl = MS_REMOUNT | MS_BIND | flags | locked_flags(dst);
    if (mount(NULL, dst, NULL, fl, NULL) < 0)
        return bb_jail_fail(err, errlen, "remount %s read-only: %s", src, bb_jail_strerror(errno));
    return 0;
}

static int make_dir(const char *path, mode_t mode, char *err, size_t errlen)
{
    if (mkdir(path, 0700) < 0 || chmod(path, mode) < 0)
        return bb_jail_fail(err, errlen, "mkdir %s in the new root: %s", path, bb_jail_strerror(errno));
    return 0;
}

/* An empty file to bind a host file or device node onto. */
static int make_file(const char *path, const char *content, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return bb_jail_fail(err, errlen, "create %s in the new root: %s", path, bb_jail_strerror(errno));
    size_t len = content ? strlen(content) : 0;
    ssize_t n = len ? write(fd, content, len) : 0;
    int saved = errno;
    close(fd);
    if (n < 0 || (size_t)n != len)
        return bb_jail_fail(err, errlen, "write %s in the new root: %s", path,
                            bb_jail_strerror(n < 0 ? saved : EIO));
    return 0;
}

/* Recreates the host symlink `host` at `inside` (same target text). */
static int copy_symlink(const char *host, const char *inside, char *err, size_t errlen)
{
    char target[256];
    ssize_t n = readlink(host, target, sizeof target - 1);
    if (n <= 0)
        return bb_jail_fail(err, errlen, "readlink %s: %s", host, bb_jail_strerror(errno));
    target[n] = '\0';
    if (symlink(target, inside) < 0)
        return bb_jail_fail(err, errlen, "symlink %s: %s", inside, bb_jail_strerror(errno));
    return 0;
}

/* Mirrors the host entry `host` at `inside`: a symlink is copied, an entry of type
 * `kind` (S_IFDIR: made as a directory, S_IFREG: as a file) is bound read-only, nosuid,
 * nodev and with `flags`; anything else, or nothing there, is skipped. */
static int mirror_host(const char *host, const char *inside, mode_t kind, unsigned long flags, char *err,
                       size_t errlen)
{
    struct stat st;
    if (lstat(host, &st) < 0)
        return 0;
    if (S_ISLNK(st.st_mode))
        return copy_symlink(host, inside, err, errlen);
    if ((st.st_mode & S_IFMT) != kind)
        return 0;
    int made = kind == S_IFDIR ? make_dir(inside, 0755, err, errlen) : make_file(inside, NULL, err, errlen);
    if (made < 0)
        return -1;
    return bind(host, inside, MS_RDONLY | MS_NOSUID | MS_NODEV | flags, err, errlen);
}

/* A top-level host entry (/bin, /lib64, …): a symlink is copied, a directory is bound
 * read-only. */
static int mirror_top(const char *name, char *err, size_t errlen)
{
    char host[64];
    snprintf(host, sizeof host, "/%s", name);
    return mirror_host(host, name, S_IFDIR, 0, err, errlen);
}

/* /etc/<name> from the host: a symlink is copied (it points into /usr), a regular
 * file is bound read-only and noexec. */
static int mirror_etc(const char *name, char *err, size_t errlen)
{
    char host[64], inside[64];
    snprintf(host, sizeof host, "/etc/%s", name);
    snprintf(inside, sizeof inside, "etc/%s", name);
    return mirror_host(host, inside, S_IFREG, MS_NOEXEC, err, errlen);
}

int bb_fs_make_proc(int *out, char *err, size_t errlen)
{
    *out = -1;
    int fs = (int)syscall(SYS_fsopen, "proc", FSOPEN_CLOEXEC);
    if (fs < 0)
        return bb_jail_fail(err, errlen, "fsopen(proc): %s", bb_jail_strerror(errno));
    int mnt = -1;
    if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
        mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
                           MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    int e = errno;
    close(fs);
    if (mnt < 0)
        return bb_jail_fail(err, errlen, "mounting the worker's /proc: %s", bb_jail_strerror(e));
    *out = mnt;
    return 0;
}

/* Host-revealing parts of /proc, masked as runc/Docker mask them: files get the
 * (nodev, so unopenable) /dev/null bound over them, directories an empty read-only
 * tmpfs. The rest of /proc is read-only as mounted (sys/, sysrq-trigger, bus, irq…). */
static int mask_proc(char *err, size_t errlen)
{
    static const char *const masked[] = {
        "proc/kcore", "proc/keys", "proc/key-users", "proc/timer_list", "proc/timer_stats",
        "proc/sched_debug", "proc/latency_stats", "proc/interrupts", "proc/sysrq-trigger",
        "proc/kmsg", "proc/acpi", "proc/asound", "proc/scsi", "proc/driver"};
    for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
        struct stat st;
        if (lstat(masked[i], &st) < 0)
            continue;   /* not on this kernel */
        if (S_ISDIR(st.st_mode)) {
            if (mount("blockbox", masked[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      "size=4k,nr_inodes=1,mode=0555") < 0)
                return bb_jail_fail(err, errlen, "masking /%s: %s", masked[i], bb_jail_strerror(errno));
        } else if (bind("dev/null", masked[i], MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, err, errlen) < 0) {
            return -1;
        }
    }
    return 0;
}

static const char *pick_stage(void)
{
    /* Any existing real directory will do: the mount over it is private to this
     * namespace. */
    static const char *const candidates[] = {"/tmp", "/mnt", "/media", "/srv", "/opt"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        struct stat st;
        if (lstat(candidates[i], &st) == 0 && S_ISDIR(st.st_mode))
            return candidates[i];
    }
    return NULL;
}

static int fs_setup(long tmpfs_bytes, uid_t owner, gid_t group, int proc_fd, char *err, size_t errlen);

int bb_fs_child_setup(long tmpfs_bytes, uid_t owner, gid_t group, int proc_fd, char *err, size_t errlen)
{
    int rc = fs_setup(tmpfs_bytes, owner, group, proc_fd, err, errlen);
    if (proc_fd >= 0)
        close(proc_fd);
    return rc;
}

static int fs_setup(long tmpfs_bytes, uid_t owner, gid_t group, int proc_fd, char *err, size_t errlen)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return bb_jail_fail(err, errlen, "making mounts private: %s", bb_jail_strerror(errno));
    const char *stage = pick_stage();
    if (!stage)
        return bb_jail_fail(err, errlen, "no directory to stage the new root on");
    long inodes = tmpfs_bytes / 8192;
    if (inodes < 1024)
        inodes = 1024;
    if (inodes > (1L << 20))
        inodes = 1L << 20;
    char opts[128];
    snprintf(opts, sizeof opts, "size=%ld,nr_inodes=%ld,mode=0755", tmpfs_bytes, inodes);
    if (mount("blockbox", stage, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
        return bb_jail_fail(err, errlen, "mount tmpfs (%s) on %s: %s", opts, stage, bb_jail_strerror(errno));
    if (chdir(stage) < 0)
        return bb_jail_fail(err, errlen, "chdir %s: %s", stage, bb_jail_strerror(errno));

    /* System directories, read-only. */
    if (make_dir("usr", 0755, err, errlen) < 0 ||
        bind("/usr", "usr", MS_RDONLY | MS_NOSUID | MS_NODEV, err, errlen) < 0)
        return -1;
    static const char *const tops[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};
    for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++)
        if (mirror_top(tops[i], err, errlen) < 0)
            return -1;

    /* /etc: only what the dynamic loader and the C library read; users are ours. */
    char passwd[256], extra[96] = "";
    if (owner != 0)
        snprintf(extra, sizeof extra, "blockbox:x:%lu:%lu:blockbox:" BB_FS_WORKDIR ":/nonexistent\n",
                 (unsigned long)owner, (unsigned long)group);
    snprintf(passwd, sizeof passwd,
             "root:x:0:0:root:" BB_FS_WORKDIR ":/nonexistent\n"
             "nobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n%s",
             extra);
    if (make_dir("etc", 0755, err, errlen) < 0 || make_file("etc/passwd", passwd, err, errlen) < 0 ||
        make_file("etc/group", "root:x:0:\nnogroup:x:65534:\n", err, errlen) < 0 ||
        make_file("etc/hostname", "blockbox\n", err, errlen) < 0 ||
        make_file("etc/hosts", "127.0.0.1 localhost blockbox\n", err, errlen) < 0 ||
        mirror_etc("ld.so.cache", err, errlen) < 0 || mirror_etc("localtime", err, errlen) < 0)
        return -1;
    /* Debian's alternatives: libblas.so.3 and liblapack.so.3 (numpy) resolve through
     * /etc/alternatives symlinks. A directory of symlinks into /usr, read-only. */
    struct stat alt;
    if (lstat("/etc/alternatives", &alt) == 0 && S_ISDIR(alt.st_mode) &&
        (make_dir("etc/alternatives", 0755, err, errlen) < 0 ||
         bind("/etc/alternatives", "etc/alternatives", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, err, errlen) < 0))
        return -1;

    /* /dev: the harmless character devices, bound from the host's nodes (creating
     * nodes would need CAP_MKNOD in the initial namespace). */
    if (make_dir("dev", 0755, err, errlen) < 0)
        return -1;
    static const char *const devs[] = {"null", "zero", "full", "random", "urandom"};
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
        char host[32], inside[32];
        snprintf(host, sizeof host, "/dev/%s", devs[i]);
        snprintf(inside, sizeof inside, "dev/%s", devs[i]);
        if (make_file(inside, NULL, err, errlen) < 0 ||
            bind(host, inside, MS_RDONLY | MS_NOSUID | MS_NOEXEC, err, errlen) < 0)
            return -1;
    }

    /* /proc of the worker's own pid namespace, read-only, host-revealing parts masked. */
    if (proc_fd >= 0) {
        if (make_dir("proc", 0555, err, errlen) < 0)
            return -1;
        if (syscall(SYS_move_mount, proc_fd, "", AT_FDCWD, "proc", MOVE_MOUNT_F_EMPTY_PATH) < 0)
            return bb_jail_fail(err, errlen, "attaching /proc: %s", bb_jail_strerror(errno));
        if (mask_proc(err, errlen) < 0)
            return -1;
    }

    /* Writable: /tmp, the working directory and a private /dev/shm (POSIX semaphores
     * and shared memory: multiprocessing.Lock, shared_memory), each its own bind of a
     * directory of this tmpfs (so its cap) so that the root itself can be read-only. */
    if (make_dir("tmp", 01777, err, errlen) < 0 || make_dir("work", 0700, err, errlen) < 0 ||
        make_dir("dev/shm", 01777, err, errlen) < 0)
        return -1;
    if (chown("tmp", owner, group) < 0 || chown("work", owner, group) < 0 ||
        chown("dev/shm", owner, group) < 0)
        return bb_jail_fail(err, errlen, "chown of /tmp, /work and /dev/shm to %lu: %s",
                            (unsigned long)owner, bb_jail_strerror(errno));
    static const char *const rw[] = {"tmp", "work", "dev/shm"};
    for (size_t i = 0; i < sizeof rw / sizeof rw[0]; i++) {
        if (mount(rw[i], rw[i], NULL, MS_BIND, NULL) < 0 ||
            mount(NULL, rw[i], NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            return bb_jail_fail(err, errlen, "bind /%s: %s", rw[i], bb_jail_strerror(errno));
    }
    if (mount(NULL, ".", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return bb_jail_fail(err, errlen, "remount the new root read-only: %s", bb_jail_strerror(errno));

    /* Into it; the old root stacks on top of "." and is detached at once. */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return bb_jail_fail(err, errlen, "pivot_root: %s", bb_jail_strerror(errno));
    if (umount2(".", MNT_DETACH) < 0)
        return bb_jail_fail(err, errlen, "detaching the old root: %s", bb_jail_strerror(errno));
    if (chdir("/") < 0 || chdir(BB_FS_WORKDIR) < 0)
        return bb_jail_fail(err, errlen, "chdir " BB_FS_WORKDIR ": %s", bb_jail_strerror(errno));
    /* What is left must be only the new tree. */
    struct stat st;
    if (stat("/usr/bin", &st) < 0 || (stat("/proc/self", &st) == 0) != (proc_fd >= 0) ||
        stat("/sys/kernel", &st) == 0)
        return bb_jail_fail(err, errlen, "the new root does not look as built");
    return 0;
}

/* detect() of the mount layer (jail.h): a mount namespace per worker. */
int bb_fs_detect(const bb_layer_facts *f, char *detail, size_t len)
{
    return bb_ns_detect_kind(f, BB_NS_MNT, "per worker: tmpfs root, read-only system binds, no /proc /sys "
                                           "/home /tmp of the host (own /proc with the pid layer)",
                             detail, len);
}
