/* registry.h: the per-executor list of drivers: the built-in ones and those that
 * plugins named by BLOCKBOX_DRIVER_PATH add. No global state. */
#ifndef BB_REGISTRY_H
#define BB_REGISTRY_H

#include <blockbox/driver.h>
#include <stddef.h>

#define BB_REGISTRY_MAX 32

/* Whether a registered driver has a slot (driver.h rules 3 and 4): an ABI 1 struct
 * ends at close; an ABI 2 one has the slots its struct_size covers. */
#define BB_DRIVER_HAS(d, slot)                                                                 \
    ((d)->abi_version >= 2 && (d)->struct_size >= offsetof(bb_driver, slot) + sizeof((d)->slot))

struct bb_registry {
    const bb_driver *drivers[BB_REGISTRY_MAX];
    size_t n;
    void *handles[BB_REGISTRY_MAX];  /* dlopen handles, closed with the registry */
    size_t nhandles;
};

/* The built-in drivers (generated from the drivers/ directories by CMake). */
extern const bb_driver *const bb_builtin_drivers[];
extern const size_t bb_builtin_driver_count;

int bb_registry_init(bb_registry *reg, const char *plugin_path, bb_error **err);
const bb_driver *bb_registry_find(const bb_registry *reg, const char *name);
/* "local, modal, …" for error messages; malloc'd. */
char *bb_registry_names(const bb_registry *reg);
void bb_registry_close(bb_registry *reg);

#endif
