/* config.c: parsing and validation of every setting (the core's table below and each
 * driver's declared table), from the environment or by key. Secrets are stored but
 * never echoed back, logged or copied into errors. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "registry.h"

const bb_setting bb_core_settings[] = {
    {"mode", "WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE", BB_SETTING_STRING, "local", 0, 0, 0,
     "driver: local, modal, or one loaded from BLOCKBOX_DRIVER_PATH (case-insensitive)"},
    {"allow_execution", "ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS", BB_SETTING_BOOL, "True", 0, 0, 0,
     "False refuses local execution (ExecutionDisabled)"},
    {"timeout", "BLOCKBOX_TIMEOUT", BB_SETTING_SECONDS, "20", 1, 3600 * 1000L, 0,
     "wall-clock seconds per run; the worker is killed at the limit"},
    {"max_inputs", "BLOCKBOX_MAX_INPUTS", BB_SETTING_LONG, "0", 0, 1L << 30, 0,
     "runs per worker before it is recycled; 0 unlimited, 1 a fresh process per run"},
    {"max_input_bytes", "BLOCKBOX_MAX_INPUT_BYTES", BB_SETTING_LONG, "67108864", 1024, 1L << 31, 0,
     "largest inputs JSON accepted (a worker frame has a 32-bit length)"},
    {"max_output_bytes", "BLOCKBOX_MAX_OUTPUT_BYTES", BB_SETTING_LONG, "67108864", 1024, 1L << 31, 0,
     "largest result accepted from a block (OutputLimit beyond)"},
    {"max_stream_bytes", "BLOCKBOX_MAX_STREAM_BYTES", BB_SETTING_LONG, "1048576", 1024, 1L << 32, 0,
     "stdout and stderr kept per run, each; the rest is cut"},
    {"max_depth", "BLOCKBOX_MAX_DEPTH", BB_SETTING_LONG, "64", 4, 512, 0,
     "deepest JSON nesting accepted in inputs and results"},
    {"max_json_values", "BLOCKBOX_MAX_JSON_VALUES", BB_SETTING_LONG, "1048576", 1024, 1L << 30, 0,
     "most JSON values (numbers, strings, lists, …) in inputs and in a result; bounds host memory"},
    {"driver_path", "BLOCKBOX_DRIVER_PATH", BB_SETTING_STRING, NULL, 0, 0, 0,
     "colon-separated shared objects that register more drivers"},
    {"workspace_id", "BLOCKBOX_WORKSPACE_ID", BB_SETTING_STRING, NULL, 0, 0, 0,
     "Roboflow workspace id (modal endpoint name)"},
};
const size_t bb_core_nsettings = sizeof bb_core_settings / sizeof bb_core_settings[0];

/* ---- the known settings: the core's, then the built-in drivers' ------------ */

static const bb_setting *builtin_settings(const bb_driver *d, size_t *n)
{
    if (!BB_DRIVER_HAS(d, n_settings) || !d->settings) {
        *n = 0;
        return NULL;
    }
    *n = d->n_settings;
    return d->settings;
}

size_t bb_config_known_count(void)
{
    size_t n = bb_core_nsettings;
    for (size_t i = 0; i < bb_builtin_driver_count; i++) {
        size_t k;
        builtin_settings(bb_builtin_drivers[i], &k);
        n += k;
    }
    return n;
}

const bb_setting *bb_config_known(size_t i)
{
    if (i < bb_core_nsettings)
        return &bb_core_settings[i];
    i -= bb_core_nsettings;
    for (size_t d = 0; d < bb_builtin_driver_count; d++) {
        size_t k;
        const bb_setting *s = builtin_settings(bb_builtin_drivers[d], &k);
        if (i < k)
            return &s[i];
        i -= k;
    }
    return NULL;
}

/* ---- parsing ------------------------------------------------------------- */

/* Strips one pair of surrounding quotes and blanks, as env files often carry them. */
static char *clean_value(const char *value)
{
    while (isspace((unsigned char)*value))
        value++;
    size_t n = strlen(value);
    while (n && isspace((unsigned char)value[n - 1]))
        n--;
    if (n >= 2 && ((value[0] == '"' && value[n - 1] == '"') || (value[0] == '\'' && value[n - 1] == '\''))) {
        value++;
        n -= 2;
    }
    return strndup(value, n);
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) { *out = 1; return 0; }
        if (strcasecmp(v, no[i]) == 0) { *out = 0; return 0; }
    }
    return -1;
}

/* The name a message gives a setting: its variable, else its key. */
static const char *shown(const bb_setting *s) { return s->env ? s->env : s->key; }

/* Parses raw text against a declaration into *out (fields of out other than the
 * value are left alone); a failure leaves *out untouched. */
static int parse_value(const bb_setting *s, const char *raw, bb_setting_value *out, bb_error **err)
{
    char *v = clean_value(raw);
    if (!v)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    char *text = NULL;
    int rc = 0;
    long l = 0;
    double d = 0;
    int b = 0;
    switch (s->type) {
    case BB_SETTING_STRING:
    case BB_SETTING_SECRET:
        if (*v) {
            if (strcmp(s->key, "mode") == 0)
                for (char *p = v; *p; p++)
                    *p = (char)tolower((unsigned char)*p);
            text = v;
            v = NULL;
        }
        break;
    case BB_SETTING_BOOL:
        if (parse_bool(v, &b) < 0)
            rc = bb_fail(err, BB_ERR_CONFIGURATION, "%s must be True or False, not '%s'", shown(s), v);
        else if (!(text = strdup(b ? "True" : "False")))
            rc = bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        break;
    case BB_SETTING_LONG: {
        char *end;
        errno = 0;
        l = strtol(v, &end, 10);
        if (errno || end == v || *end || l < s->min || l > s->max)
            rc = bb_fail(err, BB_ERR_CONFIGURATION, "%s must be a whole number from %ld to %ld, not '%s'",
                         shown(s), s->min, s->max, v);
        else if (asprintf(&text, "%ld", l) < 0)
            rc = bb_fail(err, BB_ERR_INTERNAL, "out of memory"), text = NULL;
        break;
    }
    case BB_SETTING_SECONDS: {
        /* Applied in whole milliseconds: what cannot be (a sub-millisecond timeout, a
         * CPU budget finer than the 0.1 s the local driver measures at) is refused,
         * never rounded. 0 is allowed only where it means "the default". */
        char *end;
        errno = 0;
        d = strtod(v, &end);
        double floor_s = (double)s->min / 1000.0, max_s = (double)s->max / 1000.0;
        int zero_ok = (s->flags & BB_SETTING_ZERO_IS_DEFAULT) != 0;
        double ms = d * 1000.0;
        if (errno || end == v || *end || !isfinite(d) || d > max_s || (d == 0 ? !zero_ok : d < floor_s) ||
            fabs(ms - round(ms)) > 1e-6)
            rc = bb_fail(err, BB_ERR_CONFIGURATION,
                         "%s must be a number of seconds from %g to %g in whole milliseconds%s, not '%s'",
                         shown(s), floor_s, max_s, zero_ok ? " (or 0 for the default)" : "", v);
        else if (asprintf(&text, "%g", d) < 0)
            rc = bb_fail(err, BB_ERR_INTERNAL, "out of memory"), text = NULL;
        break;
    }
    default:
        rc = bb_fail(err, BB_ERR_CONFIGURATION, "setting '%s' has an unknown type", s->key);
    }
    free(v);
    if (rc < 0) {
        free(text);
        return -1;
    }
    if (out->text && out->type == BB_SETTING_SECRET)
        explicit_bzero(out->text, strlen(out->text));
    free(out->text);
    out->text = text;
    out->l = l;
    out->d = d;
    out->b = b;
    return 0;
}

static int valid_name(const char *s, int upper)
{
    if (!s || !*s || strlen(s) > 64 || !(upper ? isupper((unsigned char)*s) : islower((unsigned char)*s)))
        return 0;
    for (const char *p = s; *p; p++)
        if (!(*p == '_' || isdigit((unsigned char)*p) || (upper ? isupper((unsigned char)*p) : islower((unsigned char)*p))))
            return 0;
    return 1;
}

int bb_setting_check_decl(const bb_setting *s, bb_error **err)
{
    if (!s || !valid_name(s->key, 0))
        return bb_fail(err, BB_ERR_CONFIGURATION, "a setting key must match [a-z][a-z0-9_]{0,63}, not '%.64s'",
                       s && s->key ? s->key : "(null)");
    if (s->env && !valid_name(s->env, 1))
        return bb_fail(err, BB_ERR_CONFIGURATION, "setting '%s': its variable must match [A-Z][A-Z0-9_]*",
                       s->key);
    if ((unsigned)s->type > BB_SETTING_SECONDS)
        return bb_fail(err, BB_ERR_CONFIGURATION, "setting '%s' has an unknown type %u", s->key,
                       (unsigned)s->type);
    if ((s->type == BB_SETTING_LONG || s->type == BB_SETTING_SECONDS) &&
        (s->min > s->max || (s->type == BB_SETTING_SECONDS && s->min < 1)))
        return bb_fail(err, BB_ERR_CONFIGURATION, "setting '%s' has an empty range (%ld to %ld)", s->key,
                       s->min, s->max);
    if (!s->help || !*s->help)
        return bb_fail(err, BB_ERR_CONFIGURATION, "setting '%s' has no help line", s->key);
    if (s->default_value) {
        bb_setting_value probe = {.type = s->type};
        bb_error *why = NULL;
        if (parse_value(s, s->default_value, &probe, &why) < 0) {
            bb_fail(err, BB_ERR_CONFIGURATION, "setting '%s': its default is invalid: %s", s->key,
                    why ? bb_error_message(why) : "?");
            bb_error_free(why);
            return -1;
        }
        free(probe.text);
    }
    return 0;
}

/* ---- the store ----------------------------------------------------------- */

static bb_setting_value *find(const bb_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->v[i].key, key) == 0)
            return &cfg->v[i];
    return NULL;
}

static bb_setting_value *append(bb_config *cfg, const bb_setting *decl, const char *key)
{
    if (cfg->n == cfg->cap) {
        size_t cap = cfg->cap ? cfg->cap * 2 : 64;
        bb_setting_value *v = realloc(cfg->v, cap * sizeof *v);
        if (!v)
            return NULL;
        cfg->v = v;
        cfg->cap = cap;
    }
    bb_setting_value *v = &cfg->v[cfg->n];
    *v = (bb_setting_value){.decl = decl, .type = decl ? decl->type : BB_SETTING_SECRET};
    if (!(v->key = strdup(key)))
        return NULL;
    cfg->n++;
    return v;
}

/* A declared setting at its default. */
static int add_declared(bb_config *cfg, const bb_setting *s, bb_error **err)
{
    bb_setting_value *v = append(cfg, s, s->key);
    if (!v)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    return s->default_value ? parse_value(s, s->default_value, v, err) : 0;
}

static void value_clear(bb_setting_value *v)
{
    if (v->text && v->type == BB_SETTING_SECRET)
        explicit_bzero(v->text, strlen(v->text));
    free(v->text);
    free(v->key);
}

bb_config *bb_config_new(void)
{
    bb_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    size_t n = bb_config_known_count();
    for (size_t i = 0; i < n; i++)
        if (add_declared(cfg, bb_config_known(i), NULL) < 0) {
            bb_config_free(cfg);
            return NULL;
        }
    return cfg;
}

bb_config *bb_config_from_env(bb_error **err)
{
    bb_config *cfg = bb_config_new();
    if (!cfg) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    cfg->from_env = 1;
    for (size_t i = 0; i < cfg->n; i++) {
        const char *v = cfg->v[i].decl->env ? getenv(cfg->v[i].decl->env) : NULL;
        if (v && parse_value(cfg->v[i].decl, v, &cfg->v[i], err) < 0) {
            bb_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

int bb_config_set(bb_config *cfg, const char *key, const char *value, bb_error **err)
{
    bb_setting_value *v = cfg && key ? find(cfg, key) : NULL;
    if (v && v->decl) {
        if (!value)
            value = v->decl->default_value ? v->decl->default_value : "";
        return parse_value(v->decl, value, v, err);
    }
    /* A key no built-in declares may be a plugin's: kept as given, checked once the
     * executor has loaded the plugins (bb_config_bind). Without plugins it is unknown. */
    const char *plugins = cfg ? bb_setting_string(cfg, "driver_path") : NULL;
    if (!cfg || !key || (!v && (!plugins || !valid_name(key, 0))))
        return bb_fail(err, BB_ERR_CONFIGURATION, "unknown setting '%s'", key ? key : "(null)");
    if (!v && !(v = append(cfg, NULL, key)))
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    char *raw = value ? strdup(value) : NULL;
    if (value && !raw)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    value_clear(&(bb_setting_value){.text = v->text, .type = BB_SETTING_SECRET});
    v->text = raw;   /* NULL: back to the declared default at bind */
    return 0;
}

int bb_config_bind(bb_config *cfg, const bb_registry *reg, bb_error **err)
{
    for (size_t i = 0; i < reg->n; i++) {
        const bb_driver *d = reg->drivers[i];
        if (!BB_DRIVER_HAS(d, n_settings) || !d->settings)
            continue;
        for (size_t k = 0; k < d->n_settings; k++) {
            const bb_setting *s = &d->settings[k];
            bb_setting_value *v = find(cfg, s->key);
            if (v && v->decl)
                continue;   /* a built-in's: known from the start */
            if (v) {        /* pending: set by key before the plugin was loaded */
                char *raw = v->text;
                v->text = NULL;
                v->decl = s;
                v->type = s->type;
                int rc = raw ? parse_value(s, raw, v, err)
                             : s->default_value ? parse_value(s, s->default_value, v, err) : 0;
                if (raw)
                    explicit_bzero(raw, strlen(raw));
                free(raw);
                if (rc < 0)
                    return -1;
                continue;
            }
            if (add_declared(cfg, s, err) < 0)
                return -1;
            const char *env = cfg->from_env && s->env ? getenv(s->env) : NULL;
            if (env && parse_value(s, env, &cfg->v[cfg->n - 1], err) < 0)
                return -1;
        }
    }
    for (size_t i = 0; i < cfg->n; i++)
        if (!cfg->v[i].decl)
            return bb_fail(err, BB_ERR_CONFIGURATION, "unknown setting '%s': no registered driver declares it",
                           cfg->v[i].key);
    return 0;
}

const char *bb_config_get(const bb_config *cfg, const char *key)
{
    const bb_setting_value *v = cfg && key ? find(cfg, key) : NULL;
    if (!v || !v->decl)
        return NULL;
    if (v->type == BB_SETTING_SECRET)
        return v->text ? "(set)" : NULL;
    return v->text;
}

/* ---- typed reads, for the core and drivers ------------------------------- */

static const bb_setting_value *typed(const bb_config *cfg, const char *key, bb_setting_type type)
{
    const bb_setting_value *v = cfg && key ? find(cfg, key) : NULL;
    if (!v || !v->decl)
        return NULL;
    if (v->type == type || (type == BB_SETTING_STRING && v->type == BB_SETTING_SECRET))
        return v;
    return NULL;
}

const char *bb_setting_string(const bb_config *cfg, const char *key)
{
    const bb_setting_value *v = typed(cfg, key, BB_SETTING_STRING);
    return v ? v->text : NULL;
}

long bb_setting_long(const bb_config *cfg, const char *key)
{
    const bb_setting_value *v = typed(cfg, key, BB_SETTING_LONG);
    return v ? v->l : 0;
}

double bb_setting_seconds(const bb_config *cfg, const char *key)
{
    const bb_setting_value *v = typed(cfg, key, BB_SETTING_SECONDS);
    return v ? v->d : 0;
}

int bb_setting_bool(const bb_config *cfg, const char *key)
{
    const bb_setting_value *v = typed(cfg, key, BB_SETTING_BOOL);
    return v ? v->b : 0;
}

bb_config *bb_config_clone(const bb_config *cfg)
{
    bb_config *copy = calloc(1, sizeof *copy);
    if (!copy)
        return NULL;
    copy->from_env = cfg->from_env;
    for (size_t i = 0; i < cfg->n; i++) {
        const bb_setting_value *src = &cfg->v[i];
        bb_setting_value *v = append(copy, src->decl, src->key);
        if (!v || (src->text && !(v->text = strdup(src->text)))) {
            bb_config_free(copy);
            return NULL;
        }
        v->type = src->type;
        v->l = src->l;
        v->d = src->d;
        v->b = src->b;
    }
    return copy;
}

void bb_config_free(bb_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++)
        value_clear(&cfg->v[i]);
    free(cfg->v);
    free(cfg);
}
