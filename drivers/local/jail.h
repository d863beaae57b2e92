/* jail.h: the layers of the local sandbox and what configures them. Each layer
 * lives in its own file (ns.c, fs.c, cgroup.c, caps.c, rlimits.c, seccomp.c). */
#ifndef BB_JAIL_H
#define BB_JAIL_H

#include <stddef.h>
#include <sys/types.h>

#include "blockbox.h"

/* Layers, as bits. */
enum {
    BB_LAYER_SECCOMP = 1u << 0,
    BB_LAYER_USERNS = 1u << 1,
    BB_LAYER_PIDNS = 1u << 2,
    BB_LAYER_NETNS = 1u << 3,
    BB_LAYER_MNTNS = 1u << 4,   /* private mount namespace + new root (fs.c) */
    BB_LAYER_IPCNS = 1u << 5,
    BB_LAYER_UTSNS = 1u << 6,
    BB_LAYER_CGROUP = 1u << 7,  /* memory/pids(/cpu) through cgroup v2 or v1 */
    BB_LAYER_UID = 1u << 8,     /* an unprivileged uid (root hosts) */
    BB_LAYER_CAPS = 1u << 9,    /* every capability dropped, no_new_privs */
    BB_LAYER_RLIMITS = 1u << 10,
    BB_LAYER_ALL = (1u << 11) - 1,
};

/* "seccomp", "userns", … for one bit; NULL for anything else. */
const char *bb_layer_name(unsigned layer);
/* Parses "userns,netns" / "all" / "" into bits; -1 on an unknown name. */
int bb_layers_parse(const char *text, unsigned *out, bb_error **err);

typedef struct bb_jail_config {
    long memory_bytes;
    double cpu_seconds;
    long max_threads;
    long max_open_files;
    long max_file_bytes;
    long tmpfs_bytes;
    unsigned require;   /* layers that must be present (fail closed) */
    unsigned disable;   /* layers switched off on purpose (tests only; never by default) */
    int cgroup_no_leaf; /* cgroup v2: never move the delegated group's processes into a leaf */
} bb_jail_config;

#endif
