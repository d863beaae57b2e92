/* emu.c: starts the Modal endpoint emulator as a child process, reads its port, and
 * talks to its control endpoints over verified TLS with libcurl. */
#include "emu.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"

#ifndef BB_EMULATOR_PY
#error "BB_EMULATOR_PY must name tests/emulator/emulator.py"
#endif

int emu_start(emu *e, const char *token_id, const char *token_secret, const char *const *extra_args)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/bbemu-XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->token_id, sizeof e->token_id, "%s", token_id);
    snprintf(e->token_secret, sizeof e->token_secret, "%s", token_secret);
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        setenv("EMULATOR_TOKEN_ID", token_id, 1);
        setenv("EMULATOR_TOKEN_SECRET", token_secret, 1);
        const char *argv[16] = {"/usr/bin/python3", BB_EMULATOR_PY, "--cert-dir", e->dir};
        int n = 4;
        for (int i = 0; extra_args && extra_args[i] && n < 15; i++)
            argv[n++] = extra_args[i];
        argv[n] = NULL;
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    e->pid = pid;
    FILE *f = fdopen(fds[0], "r");
    char line[512] = "";
    if (!f || !fgets(line, sizeof line, f) || sscanf(line, "READY port=%d ca=%127s", &e->port, e->ca) != 2) {
        fprintf(stderr, "emulator did not start: %s\n", line);
        if (f)
            fclose(f);
        emu_stop(e);
        return -1;
    }
    fclose(f);   /* the emulator prints nothing more on stdout */
    snprintf(e->url, sizeof e->url, "https://127.0.0.1:%d/", e->port);
    return 0;
}

void emu_start_or_exit(emu *e, const char *token_id, const char *token_secret)
{
    if (emu_start(e, token_id, token_secret, NULL) < 0) {
        fprintf(stderr, "cannot start the emulator\n");
        exit(1);
    }
}

void emu_stop(emu *e)
{
    if (e->pid > 0) {
        kill(e->pid, SIGTERM);
        int status;
        waitpid(e->pid, &status, 0);
        e->pid = 0;
    }
}

static size_t collect(char *src, size_t size, size_t n, void *user)
{
    bb_buf_append(user, src, size * n);
    return size * n;
}

static char *control(emu *e, const char *method, const char *path, const char *body)
{
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", e->port, path);
    bb_buf out = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, e->ca);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "{}");
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "emulator control %s failed: %s\n", path, curl_easy_strerror(rc));
        bb_buf_free(&out);
        return NULL;
    }
    return bb_buf_steal(&out, NULL);
}

int emu_reset(emu *e)
{
    char *r = control(e, "POST", "/_reset", "{}");
    free(r);
    return r ? 0 : -1;
}

int emu_faults(emu *e, const char *json_array)
{
    char *r = control(e, "POST", "/_faults", json_array);
    free(r);
    return r ? 0 : -1;
}

cJSON *emu_stats(emu *e)
{
    char *r = control(e, "GET", "/_stats", NULL);
    cJSON *j = r ? cJSON_Parse(r) : NULL;
    free(r);
    return j;
}

long emu_stat(emu *e, const char *name)
{
    cJSON *j = emu_stats(e);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    long n = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
    cJSON_Delete(j);
    return n;
}

bb_config *emu_config(const emu *e, double timeout_s)
{
    bb_config *cfg = bb_config_new();
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%g", timeout_s);
    bb_config_set(cfg, "mode", "modal", NULL);
    bb_config_set(cfg, "modal_endpoint_url", e->url, NULL);
    bb_config_set(cfg, "ca_file", e->ca, NULL);
    bb_config_set(cfg, "modal_token_id", e->token_id, NULL);
    bb_config_set(cfg, "modal_token_secret", e->token_secret, NULL);
    bb_config_set(cfg, "workspace_id", "ws1", NULL);
    bb_config_set(cfg, "timeout", timeout, NULL);
    return cfg;
}

long emu_describe_field(bb_executor *ex, const char *name)
{
    char *text = bb_executor_describe(ex);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    long n = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
    cJSON_Delete(j);
    return n;
}
