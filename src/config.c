/* config.c: parsing and validation of every setting, from the environment or by
 * key. Secrets are stored but never echoed back, logged or copied into errors. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

#define F(field) offsetof(struct bb_config, field)

const bb_cfg_key bb_config_keys[] = {
    {"mode", "WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE", BB_CFG_STRING, F(mode), "local", 0, 0,
     "driver: local, modal, or one loaded from BLOCKBOX_DRIVER_PATH (case-insensitive)"},
    {"allow_execution", "ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS", BB_CFG_BOOL, F(allow_execution),
     "True", 0, 0, "False refuses local execution (ExecutionDisabled)"},
    {"timeout", "BLOCKBOX_TIMEOUT", BB_CFG_SECONDS, F(timeout_s), "20", 0, 3600,
     "wall-clock seconds per run; the worker is killed at the limit"},
    {"memory_mb", "BLOCKBOX_MEMORY_MB", BB_CFG_LONG, F(memory_mb), "512", 32, 1 << 20,
     "memory cap per worker in MiB (cgroup v2, v1, else RLIMIT_AS)"},
    {"max_inputs", "BLOCKBOX_MAX_INPUTS", BB_CFG_LONG, F(max_inputs), "0", 0, 1L << 30,
     "runs per worker before it is recycled; 0 unlimited, 1 a fresh process per run"},
    {"spare_workers", "BLOCKBOX_SPARE_WORKERS", BB_CFG_LONG, F(spare_workers), "1", 0, 64,
     "pre-forked, never-used workers kept ready (local)"},
    {"cpu_seconds", "BLOCKBOX_CPU_SECONDS", BB_CFG_SECONDS, F(cpu_seconds), "0", 0, 86400,
     "CPU time per run (load or call), all threads, measured by the executor; 0 means timeout + 1"},
    {"max_threads", "BLOCKBOX_MAX_THREADS", BB_CFG_LONG, F(max_threads), "64", 1, 4096,
     "threads per worker (pids cgroup and RLIMIT_NPROC)"},
    {"max_open_files", "BLOCKBOX_MAX_OPEN_FILES", BB_CFG_LONG, F(max_open_files), "256", 16, 65536,
     "open file descriptors per worker"},
    {"max_file_mb", "BLOCKBOX_MAX_FILE_MB", BB_CFG_LONG, F(max_file_mb), "64", 0, 1 << 20,
     "largest file a worker may write (RLIMIT_FSIZE)"},
    {"tmpfs_mb", "BLOCKBOX_TMPFS_MB", BB_CFG_LONG, F(tmpfs_mb), "64", 1, 1 << 20,
     "size of the worker's private writable tmpfs"},
    {"max_input_bytes", "BLOCKBOX_MAX_INPUT_BYTES", BB_CFG_LONG, F(max_input_bytes), "67108864", 1024,
     1L << 31, "largest inputs JSON accepted (a worker frame has a 32-bit length)"},
    {"max_output_bytes", "BLOCKBOX_MAX_OUTPUT_BYTES", BB_CFG_LONG, F(max_output_bytes), "67108864",
     1024, 1L << 31, "largest result accepted from a block (OutputLimit beyond)"},
    {"max_stream_bytes", "BLOCKBOX_MAX_STREAM_BYTES", BB_CFG_LONG, F(max_stream_bytes), "1048576", 1024,
     1L << 32, "stdout and stderr kept per run, each; the rest is cut"},
    {"max_depth", "BLOCKBOX_MAX_DEPTH", BB_CFG_LONG, F(max_depth), "64", 4, 512,
     "deepest JSON nesting accepted in inputs and results"},
    {"max_json_values", "BLOCKBOX_MAX_JSON_VALUES", BB_CFG_LONG, F(max_json_values), "1048576", 1024,
     1L << 30, "most JSON values (numbers, strings, lists, …) in inputs and in a result; bounds host memory"},
    {"policy_file", "BLOCKBOX_POLICY_FILE", BB_CFG_STRING, F(policy_file), NULL, 0, 0,
     "seccomp policy (OCI JSON); default: policies/default.json, embedded at build time"},
    {"driver_path", "BLOCKBOX_DRIVER_PATH", BB_CFG_STRING, F(driver_path), NULL, 0, 0,
     "colon-separated shared objects that register more drivers"},
    {"worker_path", "BLOCKBOX_WORKER_PATH", BB_CFG_STRING, F(worker_path), NULL, 0, 0,
     "the blockbox-worker executable; default: next to blockbox, then libexec"},
    {"cgroup_leaf", "BLOCKBOX_CGROUP_LEAF", BB_CFG_BOOL, F(cgroup_leaf), "True", 0, 0,
     "cgroup v2: move the processes of the delegated group into its leaf blockbox-host, as systemd's "
     "delegation requires before workers get groups; False never moves this program (v2 is then not used)"},
    {"require", "BLOCKBOX_REQUIRE", BB_CFG_STRING, F(require), NULL, 0, 0,
     "comma list of jail layers that must be present (e.g. userns,netns,cgroup); 'all' for every one"},
    {"insecure_disable", "BLOCKBOX_INSECURE_DISABLE_LAYERS", BB_CFG_STRING, F(insecure_disable), NULL, 0, 0,
     "TESTS ONLY: comma list of jail layers to switch off, to prove each one matters; a warning is printed"},
    {"workspace_id", "BLOCKBOX_WORKSPACE_ID", BB_CFG_STRING, F(workspace_id), NULL, 0, 0,
     "Roboflow workspace id (modal endpoint name)"},
    {"modal_token_id", "MODAL_TOKEN_ID", BB_CFG_SECRET, F(modal_token_id), NULL, 0, 0,
     "sent as Modal-Key"},
    {"modal_token_secret", "MODAL_TOKEN_SECRET", BB_CFG_SECRET, F(modal_token_secret), NULL, 0, 0,
     "sent as Modal-Secret"},
    {"modal_workspace_name", "MODAL_WORKSPACE_NAME", BB_CFG_STRING, F(modal_workspace_name), "roboflow",
     0, 0, "Modal workspace in the endpoint host"},
    {"modal_endpoint_url", "MODAL_WEB_ENDPOINT_URL", BB_CFG_STRING, F(modal_endpoint_url), NULL, 0, 0,
     "full endpoint URL override (?workspace_id= is appended)"},
    {"modal_allow_anonymous", "MODAL_ALLOW_ANONYMOUS_EXECUTION", BB_CFG_BOOL, F(modal_allow_anonymous),
     "False", 0, 0, "allow modal calls without a workspace id"},
    {"ca_file", "BLOCKBOX_CA_FILE", BB_CFG_STRING, F(ca_file), NULL, 0, 0,
     "extra CA bundle to trust for the modal endpoint"},
    {"modal_retries", "BLOCKBOX_MODAL_RETRIES", BB_CFG_LONG, F(modal_retries), "3", 0, 10,
     "retries where the block cannot have run (connect errors, 429, 502-504)"},
};
const size_t bb_config_nkeys = sizeof bb_config_keys / sizeof bb_config_keys[0];

static const bb_cfg_key *find_key(const char *key)
{
    for (size_t i = 0; i < bb_config_nkeys; i++)
        if (strcmp(bb_config_keys[i].key, key) == 0)
            return &bb_config_keys[i];
    return NULL;
}

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

/* The smallest positive value a seconds setting can be applied at. */
static double seconds_floor(const bb_cfg_key *k)
{
    return strcmp(k->key, "cpu_seconds") == 0 ? 0.1 : 0.001;
}

static int set_one(bb_config *cfg, const bb_cfg_key *k, const char *raw, bb_error **err)
{
    char *v = clean_value(raw);
    if (!v)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    void *field = (char *)cfg + k->offset;
    int rc = 0;
    switch (k->type) {
    case BB_CFG_STRING:
    case BB_CFG_SECRET: {
        char **slot = field;
        free(*slot);
        *slot = NULL;
        if (*v) {
            if (strcmp(k->key, "mode") == 0)
                for (char *p = v; *p; p++)
                    *p = (char)tolower((unsigned char)*p);
            *slot = v;
            v = NULL;
        }
        break;
    }
    case BB_CFG_BOOL:
        if (parse_bool(v, field) < 0)
            rc = bb_fail(err, BB_ERR_CONFIGURATION, "%s must be True or False, not '%s'", k->env,
                         v);
        break;
    case BB_CFG_LONG: {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < k->min || n > k->max)
            rc = bb_fail(err, BB_ERR_CONFIGURATION, "%s must be a whole number from %ld to %ld, not '%s'",
                         k->env, k->min, k->max, v);
        else
            *(long *)field = n;
        break;
    }
    case BB_CFG_SECONDS: {
        /* Applied in whole milliseconds: what cannot be (a sub-millisecond timeout, a
         * CPU budget finer than the 0.1 s the local driver measures at) is refused,
         * never rounded. 0 is allowed only where it means "the default". */
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        double floor_s = seconds_floor(k);
        int zero_ok = strcmp(k->key, "timeout") != 0;
        double ms = d * 1000.0;
        if (errno || end == v || *end || !isfinite(d) || d > (double)k->max ||
            (d == 0 ? !zero_ok : d < floor_s) || fabs(ms - round(ms)) > 1e-6)
            rc = bb_fail(err, BB_ERR_CONFIGURATION,
                         "%s must be a number of seconds from %g to %ld in whole milliseconds%s, not '%s'",
                         k->env, floor_s, k->max, zero_ok ? " (or 0 for the default)" : "", v);
        else
            *(double *)field = d;
        break;
    }
    }
    free(v);
    return rc;
}

bb_config *bb_config_new(void)
{
    bb_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < bb_config_nkeys; i++)
        if (bb_config_keys[i].default_value &&
            set_one(cfg, &bb_config_keys[i], bb_config_keys[i].default_value, NULL) < 0) {
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
    for (size_t i = 0; i < bb_config_nkeys; i++) {
        const char *v = getenv(bb_config_keys[i].env);
        if (v && set_one(cfg, &bb_config_keys[i], v, err) < 0) {
            bb_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

int bb_config_set(bb_config *cfg, const char *key, const char *value, bb_error **err)
{
    const bb_cfg_key *k = key ? find_key(key) : NULL;
    if (!cfg || !k)
        return bb_fail(err, BB_ERR_CONFIGURATION, "unknown setting '%s'", key ? key : "(null)");
    if (!value)
        value = k->default_value ? k->default_value : "";
    return set_one(cfg, k, value, err);
}

const char *bb_config_get(const bb_config *cfg, const char *key)
{
    const bb_cfg_key *k = cfg && key ? find_key(key) : NULL;
    if (!k)
        return NULL;
    const void *field = (const char *)cfg + k->offset;
    bb_config *mut = (bb_config *)cfg;
    free(mut->scratch);
    mut->scratch = NULL;
    switch (k->type) {
    case BB_CFG_STRING:
        return *(char *const *)field;
    case BB_CFG_SECRET:
        return *(char *const *)field ? "(set)" : NULL;
    case BB_CFG_BOOL:
        return *(const int *)field ? "True" : "False";
    case BB_CFG_LONG:
        if (asprintf(&mut->scratch, "%ld", *(const long *)field) < 0)
            mut->scratch = NULL;
        return mut->scratch;
    case BB_CFG_SECONDS:
        if (asprintf(&mut->scratch, "%g", *(const double *)field) < 0)
            mut->scratch = NULL;
        return mut->scratch;
    }
    return NULL;
}

bb_config *bb_config_clone(const bb_config *cfg)
{
    bb_config *copy = malloc(sizeof *copy);
    if (!copy)
        return NULL;
    *copy = *cfg;
    copy->scratch = NULL;
    int failed = 0;
    for (size_t i = 0; i < bb_config_nkeys; i++) {
        const bb_cfg_key *k = &bb_config_keys[i];
        if (k->type != BB_CFG_STRING && k->type != BB_CFG_SECRET)
            continue;
        char **slot = (char **)((char *)copy + k->offset);
        if (*slot && !(*slot = strdup(*slot)))
            failed = 1;
    }
    if (failed) {
        bb_config_free(copy);
        return NULL;
    }
    return copy;
}

void bb_config_free(bb_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < bb_config_nkeys; i++) {
        const bb_cfg_key *k = &bb_config_keys[i];
        if (k->type == BB_CFG_STRING || k->type == BB_CFG_SECRET) {
            char **slot = (char **)((char *)cfg + k->offset);
            if (k->type == BB_CFG_SECRET && *slot)
                explicit_bzero(*slot, strlen(*slot));
            free(*slot);
        }
    }
    free(cfg->scratch);
    free(cfg);
}
