/* registry.c: finds drivers by name, loads driver plugins from shared objects and
 * checks their ABI version before anything of theirs is called. */
#include "registry.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "config.h"
#include "error.h"

/* The settings a driver declares: each well formed, and no key the core or another
 * registered driver already has. */
static int check_settings(const bb_registry *reg, const bb_driver *d, bb_error **err)
{
    if (!BB_DRIVER_HAS(d, n_settings) || !d->n_settings)
        return 0;
    if (!d->settings || d->n_settings > 256)
        return bb_fail(err, BB_ERR_CONFIGURATION, "driver '%s' declares %zu settings %s", d->name,
                       d->n_settings, d->settings ? "(at most 256)" : "but gives no table");
    for (size_t i = 0; i < d->n_settings; i++) {
        const bb_setting *s = &d->settings[i];
        bb_error *why = NULL;
        if (bb_setting_check_decl(s, &why) < 0) {
            bb_fail(err, BB_ERR_CONFIGURATION, "driver '%s': %s", d->name, bb_error_message(why));
            bb_error_free(why);
            return -1;
        }
        const char *owner = NULL;
        for (size_t k = 0; k < bb_core_nsettings && !owner; k++)
            if (strcmp(bb_core_settings[k].key, s->key) == 0)
                owner = "the core";
        for (size_t k = 0; k < i && !owner; k++)
            if (strcmp(d->settings[k].key, s->key) == 0)
                owner = d->name;
        for (size_t r = 0; r < reg->n && !owner; r++) {
            const bb_driver *o = reg->drivers[r];
            for (size_t k = 0; BB_DRIVER_HAS(o, n_settings) && o->settings && k < o->n_settings; k++)
                if (strcmp(o->settings[k].key, s->key) == 0) {
                    owner = o->name;
                    break;
                }
        }
        if (owner)
            return bb_fail(err, BB_ERR_CONFIGURATION, "driver '%s' declares setting '%s', which %s%s already has",
                           d->name, s->key, strcmp(owner, "the core") == 0 ? "" : "driver ", owner);
    }
    return 0;
}

int bb_registry_add(bb_registry *reg, const bb_driver *d, bb_error **err)
{
    if (!reg || !d)
        return bb_fail(err, BB_ERR_CONFIGURATION, "bb_registry_add: no driver");
    if (d->abi_version == 0 || d->abi_version > BB_DRIVER_ABI_VERSION)
        return bb_fail(err, BB_ERR_CONFIGURATION,
                       "driver '%s' is built for driver ABI %u, this library speaks ABI 1 to %u: "
                       "rebuild the driver against this blockbox",
                       d->name ? d->name : "?", d->abi_version, BB_DRIVER_ABI_VERSION);
    if (d->abi_version >= 2 && d->struct_size &&
        d->struct_size < offsetof(bb_driver, struct_size) + sizeof d->struct_size)
        return bb_fail(err, BB_ERR_CONFIGURATION,
                       "driver '%s' (ABI %u) gives a struct_size of %zu bytes, smaller than the ABI %u "
                       "slots every driver has (%zu bytes): set .struct_size = BB_DRIVER_SIZE",
                       d->name ? d->name : "?", d->abi_version, d->struct_size, d->abi_version,
                       offsetof(bb_driver, struct_size) + sizeof d->struct_size);
    int loads = d->load || (BB_DRIVER_HAS(d, load_reply) && d->load_reply);
    if (!d->name || !*d->name || !d->open || !loads || !d->run || !d->unload || !d->close)
        return bb_fail(err, BB_ERR_CONFIGURATION, "driver '%s' lacks a name or a required function",
                       d->name ? d->name : "?");
    if (bb_registry_find(reg, d->name))
        return bb_fail(err, BB_ERR_CONFIGURATION, "a driver named '%s' is already registered", d->name);
    if (reg->n == BB_REGISTRY_MAX)
        return bb_fail(err, BB_ERR_CONFIGURATION, "too many drivers (at most %d)", BB_REGISTRY_MAX);
    if (check_settings(reg, d, err) < 0)
        return -1;
    reg->drivers[reg->n++] = d;
    return 0;
}

static int load_plugin(bb_registry *reg, const char *path, bb_error **err)
{
    if (reg->nhandles == BB_REGISTRY_MAX)
        return bb_fail(err, BB_ERR_CONFIGURATION, "too many driver plugins");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return bb_fail(err, BB_ERR_CONFIGURATION, "cannot load driver plugin %s: %s", path, dlerror());
    reg->handles[reg->nhandles++] = h;
    bb_driver_entry_fn entry;
    *(void **)&entry = dlsym(h, BB_DRIVER_ENTRY);
    if (!entry)
        return bb_fail(err, BB_ERR_CONFIGURATION, "driver plugin %s has no %s", path, BB_DRIVER_ENTRY);
    bb_error *local = NULL;
    if (entry(reg, BB_DRIVER_ABI_VERSION, &local) != 0) {
        bb_fail(err, BB_ERR_CONFIGURATION, "driver plugin %s failed to register: %s", path,
                local ? local->message : "no reason given");
        bb_error_free(local);
        return -1;
    }
    bb_error_free(local);
    return 0;
}

int bb_registry_init(bb_registry *reg, const char *plugin_path, bb_error **err)
{
    memset(reg, 0, sizeof *reg);
    for (size_t i = 0; i < bb_builtin_driver_count; i++)
        if (bb_registry_add(reg, bb_builtin_drivers[i], err) < 0)
            return -1;
    if (!plugin_path || !*plugin_path)
        return 0;
    char *copy = strdup(plugin_path);
    if (!copy)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *p = strtok_r(copy, ":", &save); p && rc == 0; p = strtok_r(NULL, ":", &save))
        rc = load_plugin(reg, p, err);
    free(copy);
    return rc;
}

const bb_driver *bb_registry_find(const bb_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->n; i++)
        if (strcasecmp(reg->drivers[i]->name, name) == 0)
            return reg->drivers[i];
    return NULL;
}

char *bb_registry_names(const bb_registry *reg)
{
    bb_buf b = {0};
    for (size_t i = 0; i < reg->n; i++)
        bb_buf_printf(&b, "%s%s", i ? ", " : "", reg->drivers[i]->name);
    return bb_buf_steal(&b, NULL);
}

void bb_registry_close(bb_registry *reg)
{
    for (size_t i = reg->nhandles; i > 0; i--)
        dlclose(reg->handles[i - 1]);
    memset(reg, 0, sizeof *reg);
}
