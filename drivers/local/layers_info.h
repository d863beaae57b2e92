/* layers_info.h: read-only questions about a zygote's jail layers beyond layers.h,
 * for logs, `doctor`-style reports and tests. */
#ifndef BB_LAYERS_INFO_H
#define BB_LAYERS_INFO_H

#include <sys/types.h>

#include "layers.h"

/* One line per layer that is not active ("netns: unshare(CLONE_NEWNET): …" or
 * "cgroup: disabled"); "" when every layer is active. Never NULL. */
const char *bb_layers_warnings(const bb_layers *L);

/* Why a layer is not active, or what it does when it is ("" if unknown). */
const char *bb_layers_detail(const bb_layers *L, unsigned layer);

/* The uid outside every namespace that the worker in `slot` runs as. */
uid_t bb_layers_worker_uid(const bb_layers *L, int slot);

/* Slots are 0 … BB_LAYERS_MAX_SLOTS-1 (each gets its own uid on root hosts). */
#define BB_LAYERS_MAX_SLOTS 1024
/* First uid of the per-worker range on root hosts; see docs/SECURITY.md. */
#define BB_LAYERS_UID_FLOOR 1000000u
#define BB_LAYERS_UID_ZYGOTES 4096u

#endif
