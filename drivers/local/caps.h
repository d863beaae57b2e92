/* caps.h: privileges of a worker: bounding/ambient sets and securebits, the switch
 * to an unprivileged uid, the drop of every capability, no_new_privs, non-dumpable. */
#ifndef BB_CAPS_H
#define BB_CAPS_H

#include <stddef.h>
#include <sys/types.h>

/* Clears the ambient set, empties the bounding set and locks the securebits
 * (noroot, setuid fixup on, keep-caps off, no ambient raise). Needs CAP_SETPCAP;
 * without it (an unprivileged host without user namespaces) the bounding set cannot
 * be touched and is left to no_new_privs, which makes it irrelevant. */
int bb_caps_lock(char *err, size_t errlen);

/* Drops supplementary groups and switches real/effective/saved uid and gid, then
 * checks that the switch took. */
int bb_caps_switch_uid(uid_t uid, gid_t gid, char *err, size_t errlen);

/* Empties the effective, permitted and inheritable sets and checks with capget. */
int bb_caps_drop_all(char *err, size_t errlen);

/* no_new_privs and not dumpable, both read back. */
int bb_caps_seal(char *err, size_t errlen);

/* Does the calling process hold capability `cap` in its effective set? */
int bb_caps_have(int cap);

#endif
