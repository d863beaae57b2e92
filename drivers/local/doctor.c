/* doctor.c: `blockbox doctor`: one screen (or one JSON object) saying which sandbox
 * layers this host gives (each layer's own detect()), which are required, whether local mode runs. */
#include "blockbox/local.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "error.h"
#include "jail.h"
#include "probe.h"

typedef struct layer_row {
    unsigned bit;
    int available;
    int required;
    int disabled; /* BLOCKBOX_INSECURE_DISABLE_LAYERS (tests only) */
    char detail[1600];
} layer_row;

#define N_ROWS BB_LAYER_COUNT

/* Each row from its layer's own rule (jail.h), over what the probe found; the user
 * namespace row adds the sysctls that decide it on distribution kernels. */
static void fill_rows(const bb_probe *p, layer_row rows[N_ROWS])
{
    bb_layer_facts f;
    bb_probe_facts(p, &f);
    for (size_t i = 0; i < N_ROWS; i++) {
        layer_row *r = &rows[i];
        r->bit = bb_layer_list[i].bit;
        r->available = bb_layer_list[i].detect(&f, r->detail, sizeof r->detail);
        if (r->bit != BB_LAYER_USERNS)
            continue;
        char extra[160] = "";
        if (p->max_user_namespaces >= 0)
            snprintf(extra, sizeof extra, "; max_user_namespaces=%ld", p->max_user_namespaces);
        if (p->unprivileged_userns_clone >= 0)
            snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "; unprivileged_userns_clone=%d",
                     p->unprivileged_userns_clone);
        if (p->apparmor_restrict_userns >= 0)
            snprintf(extra + strlen(extra), sizeof extra - strlen(extra),
                     "; apparmor_restrict_unprivileged_userns=%d", p->apparmor_restrict_userns);
        size_t used = strlen(r->detail);
        snprintf(r->detail + used, sizeof r->detail - used, "%s", extra);
    }
}

static const char *ctrl_list(unsigned bits, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", bits & BB_CG_MEMORY ? "memory " : "", bits & BB_CG_PIDS ? "pids " : "",
             bits & BB_CG_CPU ? "cpu " : "");
    size_t l = strlen(buf);
    if (l)
        buf[l - 1] = '\0';
    return buf;
}

static cJSON *ctrl_array(unsigned bits)
{
    cJSON *a = cJSON_CreateArray();
    if (bits & BB_CG_MEMORY)
        cJSON_AddItemToArray(a, cJSON_CreateString("memory"));
    if (bits & BB_CG_PIDS)
        cJSON_AddItemToArray(a, cJSON_CreateString("pids"));
    if (bits & BB_CG_CPU)
        cJSON_AddItemToArray(a, cJSON_CreateString("cpu"));
    return a;
}

/* Which memory limit a worker gets here. */
static const char *cg_fallback(const bb_cgroup *cg)
{
    return cg->version == 2 ? "none (cgroup v2)" : cg->version == 1 ? "cgroup v1"
                                                 : "rlimits (address space, nproc; no memory cgroup)";
}

/* A setting through the public config API (NULL: unset, or no config). */
static const char *setting(const bb_config *cfg, const char *key)
{
    return cfg ? bb_config_get(cfg, key) : NULL;
}

static int is_false(const bb_config *cfg, const char *key)
{
    const char *v = setting(cfg, key);
    return v && strcmp(v, "False") == 0;
}

int bb_local_doctor(const bb_config *cfg, int json, FILE *out)
{
    bb_probe p;
    bb_probe_host(&p, 1);
    if (is_false(cfg, "cgroup_leaf")) /* what the zygote will find with the opt-out */
        bb_cgroup_detect(&p.cgroup, BB_CG_PROBE_MKDIR | BB_CG_NO_LEAF);
    layer_row rows[N_ROWS];
    memset(rows, 0, sizeof rows);
    fill_rows(&p, rows);

    char problems[1024] = "";
#define PROBLEM(...)                                                                       \
    do {                                                                                   \
        size_t used_ = strlen(problems);                                                   \
        snprintf(problems + used_, sizeof problems - used_, __VA_ARGS__);                  \
    } while (0)

    unsigned required = BB_LAYER_SECCOMP; /* local mode never runs without its filter */
    bb_error *err = NULL;
    unsigned configured = 0;
    if (cfg && bb_layers_parse(setting(cfg, "require"), &configured, &err) < 0) {
        PROBLEM("BLOCKBOX_REQUIRE: %s\n", bb_error_message(err));
        bb_error_free(err);
    }
    required |= configured;
    unsigned disabled = 0;
    if (cfg && bb_layers_parse(setting(cfg, "insecure_disable"), &disabled, &err) < 0) {
        PROBLEM("BLOCKBOX_INSECURE_DISABLE_LAYERS: %s\n", bb_error_message(err));
        bb_error_free(err);
        err = NULL;
    }
    required = (required & ~(unsigned)BB_LAYER_SECCOMP) | (BB_LAYER_SECCOMP & ~disabled) | (configured & disabled);
    for (size_t i = 0; i < N_ROWS; i++) {
        rows[i].required = (required & rows[i].bit) != 0;
        rows[i].disabled = (disabled & rows[i].bit) != 0;
        if (rows[i].required && rows[i].disabled)
            PROBLEM("required layer %s is disabled by BLOCKBOX_INSECURE_DISABLE_LAYERS\n", bb_layer_name(rows[i].bit));
        else if (!rows[i].available && rows[i].required)
            PROBLEM("required layer %s is not available: %s\n", bb_layer_name(rows[i].bit), rows[i].detail);
    }
    if (!p.python || !p.numpy || !p.cv2 || !p.libpython)
        PROBLEM("python: %s\n", p.python_detail);
    if (is_false(cfg, "allow_execution"))
        PROBLEM("ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS is False: local execution is refused\n");
    const char *worker = setting(cfg, "worker_path");
    if (worker && access(worker, X_OK) < 0)
        PROBLEM("worker %s is not executable\n", worker);
    const char *policy = setting(cfg, "policy_file");
    if (policy && access(policy, R_OK) < 0)
        PROBLEM("policy file %s is not readable\n", policy);
    int ready = problems[0] == '\0';

    struct utsname u;
    if (uname(&u) < 0)
        strcpy(u.release, "?");
    char ctl_buf[64];
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *host = cJSON_AddObjectToObject(root, "host");
        cJSON_AddStringToObject(host, "kernel", u.release);
        cJSON_AddBoolToObject(host, "root", p.root);
        cJSON_AddBoolToObject(host, "privileged", p.privileged);
        cJSON_AddNumberToObject(host, "uid", (double)geteuid());
        cJSON *layers = cJSON_AddObjectToObject(root, "layers");
        for (size_t i = 0; i < N_ROWS; i++) {
            cJSON *l = cJSON_AddObjectToObject(layers, bb_layer_name(rows[i].bit));
            cJSON_AddBoolToObject(l, "available", rows[i].available);
            cJSON_AddBoolToObject(l, "required", rows[i].required);
            /* The strongest available, minus what a test switched off on purpose. */
            cJSON_AddBoolToObject(l, "active", rows[i].available && !rows[i].disabled);
            cJSON_AddStringToObject(l, "detail", rows[i].detail);
        }
        cJSON *cg = cJSON_AddObjectToObject(root, "cgroup");
        cJSON_AddNumberToObject(cg, "version", p.cgroup.version);
        cJSON_AddItemToObject(cg, "controllers", ctrl_array(p.cgroup.usable));
        cJSON_AddItemToObject(cg, "found", ctrl_array(p.cgroup.found));
        cJSON_AddStringToObject(cg, "detail", p.cgroup.detail);
        cJSON_AddStringToObject(cg, "fallback", cg_fallback(&p.cgroup));
        if (p.cgroup.version == 2) {
            cJSON_AddStringToObject(cg, "delegation_root", p.cgroup.hier[0].own);
            cJSON_AddBoolToObject(cg, "moves_processes_to_leaf", p.cgroup.root_busy);
        }
        cJSON_AddBoolToObject(cg, "leaf_allowed", !p.cgroup.no_leaf);
        cJSON_AddStringToObject(cg, "fix", p.cgroup.fix);
        cJSON *refused = cJSON_AddArrayToObject(cg, "refused");
        char rbuf[sizeof p.cgroup.refused];
        memcpy(rbuf, p.cgroup.refused, sizeof rbuf);
        for (char *s = rbuf, *e; *s; s = e) {
            e = strstr(s, "; ");
            if (e) {
                *e = '\0';
                e += 2;
            } else {
                e = s + strlen(s);
            }
            if (*s)
                cJSON_AddItemToArray(refused, cJSON_CreateString(s));
        }
        cJSON *ns = cJSON_AddObjectToObject(root, "namespaces");
        for (int k = 0; k < BB_NS_COUNT; k++)
            cJSON_AddBoolToObject(ns, bb_probe_ns_name(k), p.ns_ok[k]);
        cJSON *py = cJSON_AddObjectToObject(root, "python");
        cJSON_AddStringToObject(py, "interpreter", "/usr/bin/python3");
        cJSON_AddStringToObject(py, "version", p.python_version);
        cJSON_AddBoolToObject(py, "present", p.python);
        cJSON_AddBoolToObject(py, "libpython", p.libpython);
        cJSON_AddBoolToObject(py, "numpy", p.numpy);
        cJSON_AddStringToObject(py, "numpy_version", p.numpy_version);
        cJSON_AddBoolToObject(py, "cv2", p.cv2);
        cJSON *warn = cJSON_AddArrayToObject(root, "warnings");
        for (size_t i = 0; i < N_ROWS; i++)
            if (!rows[i].available || rows[i].disabled) {
                char line[1700];
                snprintf(line, sizeof line, "%s: %s", bb_layer_name(rows[i].bit),
                         rows[i].disabled ? "DISABLED by BLOCKBOX_INSECURE_DISABLE_LAYERS (tests only)" : rows[i].detail);
                cJSON_AddItemToArray(warn, cJSON_CreateString(line));
            }
        cJSON *prob = cJSON_AddArrayToObject(root, "problems");
        for (char *s = problems; *s;) {
            char *nl = strchr(s, '\n');
            if (nl)
                *nl = '\0';
            cJSON_AddItemToArray(prob, cJSON_CreateString(s));
            s = nl ? nl + 1 : s + strlen(s);
        }
        cJSON_AddBoolToObject(root, "local_mode_ready", ready);
        char *text = cJSON_Print(root);
        if (text) {
            fprintf(out, "%s\n", text);
            free(text);
        }
        cJSON_Delete(root);
        return ready ? 0 : 4;
    }

    fprintf(out, "blockbox doctor: the local sandbox on this host (Linux %s, uid %lu%s)\n\n", u.release,
             (unsigned long)geteuid(), p.privileged ? ", privileged" : "");
    fprintf(out, "  %-8s %-9s %-8s %s\n", "layer", "available", "required", "detail");
    for (size_t i = 0; i < N_ROWS; i++)
        fprintf(out, "  %-8s %-9s %-8s %s\n", bb_layer_name(rows[i].bit),
                rows[i].disabled ? "DISABLED" : rows[i].available ? "yes" : "NO", rows[i].required ? "yes" : "-",
                rows[i].detail);
    fprintf(out, "\n  cgroup   v%d%s%s; usable controllers: %s; fallback: %s\n", p.cgroup.version,
            p.cgroup.version == 2 ? " under " : "", p.cgroup.version == 2 ? p.cgroup.hier[0].own : "",
            p.cgroup.usable ? ctrl_list(p.cgroup.usable, ctl_buf, sizeof ctl_buf) : "none", cg_fallback(&p.cgroup));
    if (p.cgroup.no_leaf)
        fprintf(out, "  cgroup   BLOCKBOX_CGROUP_LEAF=False: this program's processes are never moved into a leaf\n");
    if (p.cgroup.fix[0])
        fprintf(out, "  fix      %s\n", p.cgroup.fix);
    fprintf(out, "  python   %s\n\n", p.python_detail);
    for (size_t i = 0; i < N_ROWS; i++) {
        if (rows[i].disabled)
            fprintf(out, "WARNING: layer %s is DISABLED by BLOCKBOX_INSECURE_DISABLE_LAYERS (tests only)\n",
                    bb_layer_name(rows[i].bit));
        else if (!rows[i].available)
            fprintf(out, "WARNING: layer %s is not available here: %s\n", bb_layer_name(rows[i].bit),
                    rows[i].detail);
    }
    if (ready) {
        fprintf(out, "local mode: READY (%s; require more with BLOCKBOX_REQUIRE)\n",
                disabled ? "INSECURE: some layers are switched off on purpose" : "every available layer is used");
    } else {
        fprintf(out, "%slocal mode: NOT READY\n", problems);
    }
    return ready ? 0 : 4;
#undef PROBLEM
}
