/* rlimits.h: the resource limits of a worker (CPU time, threads, open files, file
 * size, core, memlock, message queues, and address space when no memory cgroup). */
#ifndef BB_RLIMITS_H
#define BB_RLIMITS_H

#include <stddef.h>

#include "jail.h"

/* as_bytes > 0: also RLIMIT_AS (the memory fallback when no memory cgroup exists).
 * Limits are only ever lowered: a value above the current hard limit is clamped. */
int bb_rlimits_apply(const bb_jail_config *cfg, long as_bytes, char *err, size_t errlen);

/* The RLIMIT_AS of a worker without a memory cgroup: the zygote's size vm, the memory
 * cap, and room for what ordinary blocks map besides their data (a fresh interpreter's
 * numpy+cv2 libraries, one stack per allowed thread, two malloc arenas). */
long bb_rlimits_as_budget(long vm, const bb_jail_config *cfg);

/* The calling process's current virtual size in bytes (from /proc/self/statm), or -1. */
long bb_rlimits_vmsize(void);

#endif
