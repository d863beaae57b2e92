/* fs.h: the worker's private filesystem: a fresh size- and inode-capped tmpfs as the
 * new root holding read-only binds of what CPython, numpy and cv2 need. */
#ifndef BB_FS_H
#define BB_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "jail.h"

/*
 * Child side, inside a fresh mount namespace and before any untrusted byte:
 *   /            tmpfs (size tmpfs_bytes, inodes capped), read-only after setup
 *   /usr         read-only, nosuid, nodev bind of the host's /usr
 *   /bin /lib …  the host's merged-usr symlinks (or read-only binds where they are dirs)
 *   /etc         passwd and group written for the sandbox, ld.so.cache (ro bind),
 *                localtime (the host's symlink, or a ro bind)
 *   /dev         null zero full random urandom (ro binds of the host's nodes)
 *   /tmp /work   writable, nosuid, nodev, noexec, in the same tmpfs; /work is the cwd
 * No /proc, /sys, /run, /var, /home, /root, host /tmp or /dev/shm. pivot_root into
 * it; the old root is detached. owner/group own /tmp and /work (the worker's ids as
 * seen from the current namespace).
 */
/* proc_fd: from bb_fs_make_proc (attached at /proc, then closed) or -1 (no /proc). */
int bb_fs_child_setup(long tmpfs_bytes, uid_t owner, gid_t group, int proc_fd, char *err, size_t errlen);
/* A detached read-only procfs of the caller's pid namespace (needs privilege over it:
 * call before leaving the zygote's user namespace). 0 with *fd, or -1 with err. */
int bb_fs_make_proc(int *fd, char *err, size_t errlen);

/* Where the worker's writable directories live inside its root. */
#define BB_FS_WORKDIR "/work"

#endif
