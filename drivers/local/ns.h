/* ns.h: namespaces: the zygote's one network namespace, the per-worker user
 * namespace's id maps (written by the zygote) and the worker's side of them. */
#ifndef BB_NS_H
#define BB_NS_H

#include <stddef.h>
#include <sys/types.h>

#include "jail.h"

/* Moves the calling (single-threaded) zygote into a new, empty network namespace.
 * privileged: unshare(CLONE_NEWNET) directly. Otherwise the zygote first enters a
 * user namespace of its own where its uid/gid map to 0 (*made_userns = 1); every
 * worker's user namespace is then nested in it. */
int bb_ns_zygote_net(int privileged, int *made_userns, char *err, size_t errlen);

/* Writes /proc/<child>/uid_map and gid_map mapping 0 inside the child's user
 * namespace to outside_uid/outside_gid. deny_setgroups: write "deny" to
 * /proc/<child>/setgroups first (needed when the writer lacks CAP_SETGID). */
int bb_ns_write_maps(pid_t child, uid_t outside_uid, gid_t outside_gid, int deny_setgroups,
                     char *err, size_t errlen);

/* Child side, after the maps exist: drops supplementary groups (where setgroups is
 * allowed) and becomes uid/gid 0 of its user namespace, i.e. the mapped outside ids. */
int bb_ns_child_become_mapped_root(char *err, size_t errlen);

/* The rule of a namespace layer of kind k (BB_NS_*): available when a throwaway child
 * could be made with it; what describes it (or why not) in detail. Used by the ns
 * layers' detect() here and by the mount layer's (fs.c). */
int bb_ns_detect_kind(const bb_layer_facts *f, int kind, const char *what, char *detail, size_t len);

/* Child side: hostname "blockbox" in the worker's own UTS namespace. */
int bb_ns_child_hostname(char *err, size_t errlen);

#endif
