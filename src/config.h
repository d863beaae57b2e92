/* config.h: the settings of an executor, read from the environment (DESIGN §4) or
 * set by key; one table names every key, its variable, its type and default. */
#ifndef BB_CONFIG_H
#define BB_CONFIG_H

#include <stddef.h>

#include "blockbox.h"

struct bb_config {
    char *mode;                 /* lower-cased driver name */
    int allow_execution;
    int cgroup_leaf;            /* cgroup v2: the zygote may move this program into a leaf */
    double timeout_s;           /* wall clock per run */
    long memory_mb;
    long max_inputs;            /* 0 = unlimited */
    long spare_workers;
    double cpu_seconds;         /* 0 = timeout + 1 */
    long max_threads;           /* processes/threads per worker */
    long max_open_files;
    long max_file_mb;
    long tmpfs_mb;
    long max_input_bytes;
    long max_output_bytes;
    long max_stream_bytes;
    long max_depth;
    long max_json_values;       /* JSON values in inputs, a result, a reply */
    char *policy_file;          /* NULL: the embedded default policy */
    char *driver_path;          /* colon-separated plugin list */
    char *worker_path;          /* blockbox-worker executable */
    char *require;              /* comma list of jail layers that must be present */
    char *insecure_disable;     /* comma list of jail layers switched off (tests only) */
    char *workspace_id;
    char *modal_token_id;       /* secret-adjacent: never printed */
    char *modal_token_secret;   /* secret: never printed */
    char *modal_workspace_name;
    char *modal_endpoint_url;
    int modal_allow_anonymous;
    char *ca_file;
    long modal_retries;
    char *scratch;              /* bb_config_get's formatting buffer */
};

/* One row per setting; exposed for the README generator test and `doctor`. */
typedef enum { BB_CFG_STRING, BB_CFG_SECRET, BB_CFG_BOOL, BB_CFG_LONG, BB_CFG_SECONDS } bb_cfg_type;
typedef struct bb_cfg_key {
    const char *key;
    const char *env;
    bb_cfg_type type;
    size_t offset;
    const char *default_value;  /* as text; NULL = unset */
    long min, max;              /* for LONG and SECONDS (seconds) */
    const char *help;
} bb_cfg_key;

extern const bb_cfg_key bb_config_keys[];
extern const size_t bb_config_nkeys;

bb_config *bb_config_clone(const bb_config *cfg);

#endif
