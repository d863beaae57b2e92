/* test_doctor.c: `blockbox doctor` tells the truth: each claim is checked against
 * what this test finds by its own means (/proc/self/cgroup, /proc/self/mounts,
 * unshare in a child, the interpreter itself), so it holds on v1, v2 and hybrid hosts. */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockbox.h"
#include "blockbox/local.h"
#include "check_main.h"

static char *run_doctor(const char *require, int json, int *rc)
{
    bb_config *cfg = bb_config_new();
    ck_assert_ptr_nonnull(cfg);
    if (require) {
        bb_error *err = NULL;
        ck_assert_int_eq(bb_config_set(cfg, "require", require, &err), 0);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    *rc = bb_local_doctor(cfg, json, out);
    fclose(out);
    bb_config_free(cfg);
    return text;
}

static cJSON *doctor_json(const char *require, int *rc)
{
    char *text = run_doctor(require, 1, rc);
    cJSON *j = cJSON_Parse(text);
    ck_assert_msg(j != NULL, "doctor --json is not JSON: %s", text);
    free(text);
    return j;
}

static int jbool(const cJSON *obj, const char *a, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (c)
        x = cJSON_GetObjectItemCaseSensitive(x, c);
    ck_assert_msg(cJSON_IsBool(x), "missing boolean %s.%s.%s", a, b ? b : "", c ? c : "");
    return cJSON_IsTrue(x);
}

/* ---- independent facts -------------------------------------------------------- */

static int child_can_unshare(int flags)
{
    pid_t p = fork();
    if (p == 0)
        _exit(unshare(flags) == 0 ? 0 : 1);
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int python_imports(void)
{
    return system("/usr/bin/python3 -c 'import numpy, cv2' >/dev/null 2>&1") == 0;
}

static int can_mkdir_in(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/bb-doctor-test-%d", dir, (int)getpid());
    if (mkdir(p, 0755) < 0)
        return 0;
    rmdir(p);
    return 1;
}

/* The mount point of a cgroup hierarchy from /proc/self/mounts (v2 when ctrl is NULL). */
static int cgroup_mount(const char *ctrl, char *out, size_t len)
{
    FILE *f = fopen("/proc/self/mounts", "r");
    ck_assert_ptr_nonnull(f);
    char dev[256], dir[512], type[64], opts[512];
    int found = 0;
    while (!found && fscanf(f, "%255s %511s %63s %511s %*d %*d", dev, dir, type, opts) == 4) {
        if (!ctrl && strcmp(type, "cgroup2") == 0)
            found = 1;
        if (ctrl && strcmp(type, "cgroup") == 0) {
            char *save = NULL;
            for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save))
                if (strcmp(o, ctrl) == 0)
                    found = 1;
        }
        if (found)
            snprintf(out, len, "%s", dir);
    }
    fclose(f);
    return found;
}

/* This process's path in a hierarchy per /proc/self/cgroup (v2: the "0::" line). */
static int cgroup_path(const char *ctrl, char *out, size_t len)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = *c2 = '\0';
        if (!ctrl) {
            found = strcmp(line, "0") == 0 && c1[1] == '\0';
        } else {
            char *save = NULL;
            for (char *o = strtok_r(c1 + 1, ",", &save); o; o = strtok_r(NULL, ",", &save))
                if (strcmp(o, ctrl) == 0)
                    found = 1;
        }
        if (found)
            snprintf(out, len, "%s", c2 + 1);
    }
    fclose(f);
    return found;
}

static int v1_usable(const char *ctrl)
{
    char mnt[512], path[512], dir[1100];
    if (!cgroup_mount(ctrl, mnt, sizeof mnt) || !cgroup_path(ctrl, path, sizeof path))
        return 0;
    snprintf(dir, sizeof dir, "%s%s", mnt, strcmp(path, "/") ? path : "");
    return can_mkdir_in(dir);
}

static int read_line(const char *dir, const char *file, char *buf, size_t len)
{
    char p[1300];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "r");
    buf[0] = '\0';
    if (!f)
        return 0;
    if (!fgets(buf, (int)len, f))
        buf[0] = '\0';
    fclose(f);
    return 1;
}

/* v2 under delegation (systemd's contract): the delegation root is our group, or the one
 * above blockbox's leaf "blockbox-host" once a zygote moved us there. Usable when its
 * parent offers it memory, and it either has memory for children already or lets us
 * enable it (its cgroup.subtree_control and cgroup.procs writable), and we can make a
 * group in it. */
static int v2_memory_usable(void)
{
    char mnt[512], path[512], dir[1100], buf[512] = "";
    if (!cgroup_mount(NULL, mnt, sizeof mnt) || !cgroup_path(NULL, path, sizeof path))
        return 0;
    snprintf(dir, sizeof dir, "%s%s", mnt, strcmp(path, "/") ? path : "");
    size_t dl = strlen(dir);
    if (dl > strlen(mnt) + 14 && strcmp(dir + dl - 14, "/blockbox-host") == 0)
        dir[dl - 14] = '\0';
    if (!read_line(dir, "cgroup.controllers", buf, sizeof buf) || !strstr(buf, "memory"))
        return 0;
    read_line(dir, "cgroup.subtree_control", buf, sizeof buf);
    char sub[1200], procs[1200];
    snprintf(sub, sizeof sub, "%s/cgroup.subtree_control", dir);
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    int enabled = strstr(buf, "memory") != NULL;
    if (!enabled && (access(sub, W_OK) < 0 || access(procs, W_OK) < 0))
        return 0;
    return can_mkdir_in(dir);
}

static int json_has_string(const cJSON *array, const char *s)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, array)
    if (cJSON_IsString(x) && strcmp(x->valuestring, s) == 0)
        return 1;
    return 0;
}

/* ---- tests -------------------------------------------------------------------- */

START_TEST(doctor_cgroup_matches_host)
{
    int rc;
    cJSON *j = doctor_json(NULL, &rc);
    const cJSON *cg = cJSON_GetObjectItemCaseSensitive(j, "cgroup");
    int version = cJSON_GetObjectItemCaseSensitive(cg, "version")->valueint;
    const cJSON *ctrls = cJSON_GetObjectItemCaseSensitive(cg, "controllers");
    int expect;
    if (v2_memory_usable())
        expect = 2;
    else if (v1_usable("memory"))
        expect = 1;
    else
        expect = 0;
    ck_assert_int_eq(version, expect);
    ck_assert_int_eq(jbool(j, "layers", "cgroup", "available"), expect > 0);
    if (expect == 1) {
        ck_assert(json_has_string(ctrls, "memory"));
        ck_assert_int_eq(json_has_string(ctrls, "pids"), v1_usable("pids"));
    }
    if (expect == 2)
        ck_assert(json_has_string(ctrls, "memory"));
    /* On this kind of machine (the one the project is built on): v1 memory and pids. */
    char mnt[512];
    if (cgroup_mount("memory", mnt, sizeof mnt) && geteuid() == 0 && !v2_memory_usable()) {
        ck_assert_int_eq(version, 1);
        ck_assert(json_has_string(ctrls, "memory"));
        if (cgroup_mount("pids", mnt, sizeof mnt))
            ck_assert(json_has_string(ctrls, "pids"));
    }
    cJSON_Delete(j);
}
END_TEST

START_TEST(doctor_namespaces_match_host)
{
    int rc;
    cJSON *j = doctor_json(NULL, &rc);
    int userns = child_can_unshare(CLONE_NEWUSER);
    ck_assert_int_eq(jbool(j, "layers", "userns", "available"), userns);
    ck_assert_int_eq(jbool(j, "namespaces", "user", NULL), userns);
    int extra = geteuid() == 0 ? 0 : CLONE_NEWUSER;
    ck_assert_int_eq(jbool(j, "namespaces", "net", NULL), child_can_unshare(CLONE_NEWNET | extra));
    ck_assert_int_eq(jbool(j, "layers", "mntns", "available"), child_can_unshare(CLONE_NEWNS | extra));
    ck_assert_int_eq(jbool(j, "layers", "ipcns", "available"), child_can_unshare(CLONE_NEWIPC | extra));
    ck_assert_int_eq(jbool(j, "layers", "utsns", "available"), child_can_unshare(CLONE_NEWUTS | extra));
    ck_assert_int_eq(jbool(j, "host", "root", NULL), geteuid() == 0);
    ck_assert_int_eq(jbool(j, "layers", "seccomp", "available"), prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0);
    ck_assert(jbool(j, "layers", "caps", "available"));
    ck_assert(jbool(j, "layers", "rlimits", "available"));
    cJSON_Delete(j);
}
END_TEST

START_TEST(doctor_python_and_readiness)
{
    int rc;
    cJSON *j = doctor_json(NULL, &rc);
    int imports = python_imports();
    ck_assert_int_eq(jbool(j, "python", "numpy", NULL) && jbool(j, "python", "cv2", NULL), imports);
    int ready = jbool(j, "local_mode_ready", NULL, NULL);
    ck_assert_int_eq(rc, ready ? 0 : 4);
    ck_assert_int_eq(ready, imports && jbool(j, "layers", "seccomp", "available"));
    /* seccomp is always required; nothing else by default. */
    ck_assert(jbool(j, "layers", "seccomp", "required"));
    ck_assert(!jbool(j, "layers", "netns", "required"));
    /* Every missing layer is a warning, never silent. */
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    const cJSON *warnings = cJSON_GetObjectItemCaseSensitive(j, "warnings");
    int missing = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, layers)
    missing += !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "available"));
    ck_assert_int_eq(cJSON_GetArraySize(warnings), missing);
    cJSON_Delete(j);
}
END_TEST

START_TEST(doctor_require_fails_closed)
{
    int rc;
    cJSON *j = doctor_json("all", &rc);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    int all = 1;
    const cJSON *l;
    cJSON_ArrayForEach(l, layers)
    {
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "required")));
        all &= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "available"));
    }
    if (!all)
        ck_assert_int_eq(rc, 4);
    else
        ck_assert_int_eq(rc, python_imports() ? 0 : 4);
    cJSON_Delete(j);
    /* A name that is no layer makes the configuration unusable. */
    bb_config *cfg = bb_config_new();
    bb_error *err = NULL;
    if (bb_config_set(cfg, "require", "userns,warpdrive", &err) == 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        ck_assert_int_eq(bb_local_doctor(cfg, 0, out), 4);
        fclose(out);
        ck_assert_msg(strstr(text, "warpdrive") && strstr(text, "NOT READY"), "%s", text);
        free(text);
    } else {
        bb_error_free(err);
    }
    bb_config_free(cfg);
}
END_TEST

START_TEST(doctor_text_is_one_screen)
{
    int rc;
    char *text = run_doctor(NULL, 0, &rc);
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    ck_assert_msg(lines <= 40, "%d lines", lines);
    ck_assert(strstr(text, rc == 0 ? "local mode: READY" : "local mode: NOT READY"));
    static const char *const names[] = {"seccomp", "userns", "pidns", "netns", "mntns", "ipcns",
                                        "utsns",   "cgroup", "uid",   "caps",  "rlimits"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        ck_assert_msg(strstr(text, names[i]), "%s missing from the report", names[i]);
    free(text);
}
END_TEST

START_TEST(doctor_leaves_no_probe_groups)
{
    int rc;
    free(run_doctor(NULL, 1, &rc));
    char mnt[512], path[512], dir[1100];
    if (cgroup_mount("memory", mnt, sizeof mnt) && cgroup_path("memory", path, sizeof path)) {
        snprintf(dir, sizeof dir, "%s%s/blockbox-probe-%d", mnt, strcmp(path, "/") ? path : "", (int)getpid());
        struct stat st;
        ck_assert_msg(stat(dir, &st) < 0, "%s left behind", dir);
    }
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("truth", doctor_cgroup_matches_host),
        BB_CHECK_TEST("truth", doctor_namespaces_match_host),
        BB_CHECK_TEST("truth", doctor_python_and_readiness),
        BB_CHECK_TEST("truth", doctor_require_fails_closed),
        BB_CHECK_TEST("truth", doctor_text_is_one_screen),
        BB_CHECK_TEST("truth", doctor_leaves_no_probe_groups),
    };
    return bb_check_run("doctor", 60, rows, BB_CHECK_COUNT(rows));
}
