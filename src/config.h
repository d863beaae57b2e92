/* config.h: the settings of an executor, read from the environment (DESIGN §4) or
 * set by key; the core's table and each driver's declared table (driver.h bb_setting). */
#ifndef BB_CONFIG_H
#define BB_CONFIG_H

#include <blockbox/driver.h>
#include <stddef.h>

#include "blockbox.h"

/* One value per setting. decl is NULL for a key set before the plugin that declares
 * it is loaded (pending: raw text, checked by bb_config_bind). */
typedef struct bb_setting_value {
    const bb_setting *decl;
    char *key;              /* owned copy of the key */
    bb_setting_type type;   /* decl->type (kept: a plugin's table goes with its dlclose) */
    char *text;             /* STRING/SECRET: the value (NULL unset); BOOL/LONG/SECONDS: its
                             * canonical text for bb_config_get; pending: the raw text */
    long l;
    double d;
    int b;
} bb_setting_value;

struct bb_config {
    bb_setting_value *v;
    size_t n, cap;
    int from_env;           /* read from the environment: a plugin's variables are read too */
};

/* The core's own settings (the README lists them with the drivers'). */
extern const bb_setting bb_core_settings[];
extern const size_t bb_core_nsettings;

/* Every setting known without loading a plugin: the core's, then each built-in
 * driver's, in order (for the README test and doctor). */
size_t bb_config_known_count(void);
const bb_setting *bb_config_known(size_t i);

/* A driver's declaration: key and variable names, type, range and default (registry). */
int bb_setting_check_decl(const bb_setting *s, bb_error **err);

bb_config *bb_config_clone(const bb_config *cfg);

struct bb_registry;
/* Once the executor's plugins are registered: every pending key must be declared
 * by one of reg's drivers and is checked against that declaration; each plugin
 * driver's other settings get their default (or, for a config from the
 * environment, their variable). ConfigurationError otherwise. */
int bb_config_bind(bb_config *cfg, const struct bb_registry *reg, bb_error **err);

#endif
