/* serve_main.c: `blockbox serve`: options, the fail-closed start-up checks (credentials,
 * plain HTTP, the sandbox), the readiness line, and the SIGTERM drain. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "serve.h"

enum { EXIT_OK = 0, EXIT_USAGE = 2, EXIT_BACKEND = 4 };

static void usage(FILE *out)
{
    fputs("usage: blockbox serve [options]\n"
          "\n"
          "Serves the HTTP protocol of Roboflow inference's remote (Modal) executor and runs\n"
          "each block in the local jail. Point an inference server at it with\n"
          "WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE=modal and MODAL_WEB_ENDPOINT_URL=URL/execute.\n"
          "\n"
          "  --listen HOST:PORT        address (default 127.0.0.1:8000; port 0 picks one;\n"
          "                            IPv6 as [::1]:PORT)\n"
          "  --tls-cert FILE --tls-key FILE   serve HTTPS with this PEM certificate and key\n"
          "  --tokens-file FILE        accepted Modal-Key/Modal-Secret pairs, one\n"
          "                            \"KEY SECRET [WS,WS...]\" a line (mode 600)\n"
          "  --insecure-no-auth        accept calls without credentials (loopback only)\n"
          "  --allow-plain-http        plain HTTP on a non-loopback address (tokens travel in\n"
          "                            clear text: only behind a TLS-terminating proxy)\n"
          "  --max-runs N              concurrent runs, all workspaces (default 16)\n"
          "  --max-runs-per-workspace N  concurrent runs of one workspace (default max-runs/2)\n"
          "  --max-queue N             calls waiting for a slot (default 256; then 429)\n"
          "  --max-queue-per-workspace N  running + waiting calls of one workspace (default 128)\n"
          "  --queue-wait SECONDS      longest wait in the queue (default timeout + 5; then 503)\n"
          "  --max-instances N         live block instances (default 64)\n"
          "  --max-instances-per-workspace N  live instances of one workspace; at it, a\n"
          "                            workspace evicts only its own (default max-instances/2)\n"
          "  --max-instances-per-block N  instances of one block for concurrent calls (default 4)\n"
          "  --instance-memory-mb MB   live instances x BLOCKBOX_MEMORY_MB stay under this\n"
          "                            (default 16384)\n"
          "  --max-inputs N            runs per worker before it is recycled (default: the\n"
          "                            BLOCKBOX_MAX_INPUTS setting; 0 = unlimited)\n"
          "  --max-body-mb MB          decoded request body limit (default 96)\n"
          "  --max-connections N       open connections (default 512)\n"
          "  --max-connections-per-ip N  open connections from one address (default 64)\n"
          "  --max-request-mb MB       decoded request bytes held by all connections together,\n"
          "                            parsed copies included (default 256; then 503)\n"
          "  --max-reply-mb MB         ndarray value-form text in one reply (default 128)\n"
          "  --idle-timeout SECONDS    close a connection silent this long (default 60)\n"
          "  --body-deadline SECONDS   cut a request whose body still arrives after this\n"
          "                            (default 300)\n"
          "  --mode MODE               the driver that runs blocks (default local)\n"
          "\n"
          "Credentials: MODAL_TOKEN_ID/MODAL_TOKEN_SECRET in this environment and/or\n"
          "--tokens-file; without any the server refuses to start. Per-run timeout and memory\n"
          "come from BLOCKBOX_TIMEOUT and BLOCKBOX_MEMORY_MB. GET /healthz, GET /metrics.\n"
          "SIGTERM: stop accepting, finish the calls in flight, exit 0.\n",
          out);
}

static int is_loopback(const char *host)
{
    if (strcmp(host, "localhost") == 0)
        return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return 0;
}

/* HOST:PORT or [V6]:PORT into host (no brackets) and port. */
static int parse_listen(const char *arg, char *host, size_t host_len, int *port)
{
    const char *colon;
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (!close || close[1] != ':' || (size_t)(close - arg - 1) >= host_len)
            return -1;
        memcpy(host, arg + 1, (size_t)(close - arg - 1));
        host[close - arg - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(arg, ':');
        if (!colon || colon == arg || (size_t)(colon - arg) >= host_len || memchr(arg, ':', (size_t)(colon - arg)))
            return -1;
        memcpy(host, arg, (size_t)(colon - arg));
        host[colon - arg] = '\0';
    }
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || !end || *end || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static int parse_long(const char *name, const char *v, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || !end || *end || end == v || n < lo || n > hi) {
        fprintf(stderr, "blockbox serve: %s needs a whole number in %ld..%ld\n", name, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

/* The start-up doctor, through the public API: the backend's own description. */
static void log_doctor(bb_executor *ex)
{
    char *d = bb_executor_describe(ex);
    cJSON *j = d ? cJSON_Parse(d) : NULL;
    free(d);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    const cJSON *warn = cJSON_GetObjectItemCaseSensitive(j, "warnings");
    char list[512] = "";
    size_t n = 0;
    for (const cJSON *l = layers ? layers->child : NULL; l; l = l->next)
        if (cJSON_IsString(l) && n + strlen(l->valuestring) + 2 < sizeof list)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? "," : "", l->valuestring);
    sv_log("doctor: driver=%s layers=%s%s%.300s", bb_executor_driver(ex), n ? list : "(none reported)",
           cJSON_IsString(warn) && *warn->valuestring ? " warnings: " : "",
           cJSON_IsString(warn) ? warn->valuestring : "");
    cJSON_Delete(j);
}

typedef struct opts {
    char host[256];
    int port;
    const char *tls_cert, *tls_key, *tokens_file, *mode;
    int insecure_no_auth, allow_plain_http;
    long max_runs, max_runs_ws, max_queue, max_queue_ws, queue_wait_s, max_instances,
        max_per_block, memory_budget, max_inputs, max_body_mb, max_connections,
        max_conn_per_ip, max_instances_ws, max_request_mb, max_reply_mb, idle_timeout_s, body_deadline_s;
} opts;

static int parse_opts(int argc, char **argv, opts *o)
{
    snprintf(o->host, sizeof o->host, "127.0.0.1");
    o->port = 8000;
    o->mode = "local";
    /* The numeric options: default, then the range a given value must be in (a default
     * of -1: not given, worked out from other settings where it is used). */
    struct { const char *name; long *dst; long def, lo, hi; } nums[] = {
        {"--max-runs", &o->max_runs, 16, 1, 4096},
        {"--max-runs-per-workspace", &o->max_runs_ws, -1, 1, 4096},
        {"--max-queue", &o->max_queue, 256, 0, 100000},
        {"--max-queue-per-workspace", &o->max_queue_ws, 128, 1, 100000},
        {"--queue-wait", &o->queue_wait_s, -1, 0, 3600},
        {"--max-instances", &o->max_instances, 64, 1, 100000},
        {"--max-instances-per-block", &o->max_per_block, 4, 1, 4096},
        {"--instance-memory-mb", &o->memory_budget, 16384, 1, 1L << 30},
        {"--max-inputs", &o->max_inputs, -1, 0, INT_MAX},
        {"--max-body-mb", &o->max_body_mb, 96, 1, 4096},
        {"--max-connections", &o->max_connections, 512, 1, 65536},
        {"--max-connections-per-ip", &o->max_conn_per_ip, 64, 1, 65536},
        {"--max-instances-per-workspace", &o->max_instances_ws, -1, 1, 100000},
        {"--max-request-mb", &o->max_request_mb, 256, 2, 1L << 20},
        {"--max-reply-mb", &o->max_reply_mb, 128, 1, 1L << 20},
        {"--idle-timeout", &o->idle_timeout_s, 60, 1, 3600},
        {"--body-deadline", &o->body_deadline_s, 300, 1, 86400},
    };
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
        *nums[k].dst = nums[k].def;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int matched = 0;
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
            if (strcmp(a, nums[k].name) == 0) {
                if (parse_long(a, v, nums[k].lo, nums[k].hi, nums[k].dst) < 0)
                    return -1;
                i++;
                matched = 1;
            }
        if (matched)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--insecure-no-auth") == 0) {
            o->insecure_no_auth = 1;
        } else if (strcmp(a, "--allow-plain-http") == 0) {
            o->allow_plain_http = 1;
        } else if (v && strcmp(a, "--listen") == 0) {
            if (parse_listen(v, o->host, sizeof o->host, &o->port) < 0) {
                fprintf(stderr, "blockbox serve: --listen wants HOST:PORT or [IPV6]:PORT\n");
                return -1;
            }
            i++;
        } else if (v && strcmp(a, "--tls-cert") == 0) {
            o->tls_cert = argv[++i];
        } else if (v && strcmp(a, "--tls-key") == 0) {
            o->tls_key = argv[++i];
        } else if (v && strcmp(a, "--tokens-file") == 0) {
            o->tokens_file = argv[++i];
        } else if (v && strcmp(a, "--mode") == 0) {
            o->mode = argv[++i];
        } else {
            fprintf(stderr, "blockbox serve: unknown or incomplete option '%.100s'\n\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (!o->tls_cert != !o->tls_key) {
        fprintf(stderr, "blockbox serve: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (o->max_request_mb < 2 * o->max_body_mb) {
        fprintf(stderr, "blockbox serve: --max-request-mb must be at least twice --max-body-mb "
                        "(a body and its parsed copy)\n");
        return -1;
    }
    if (o->max_runs_ws < 0)
        o->max_runs_ws = o->max_runs > 1 ? o->max_runs / 2 : 1;
    return 0;
}

int bb_serve_main(int argc, char **argv)
{
    opts o = {0};
    int prc = parse_opts(argc, argv, &o);
    if (prc != 0)
        return prc > 0 ? EXIT_OK : EXIT_USAGE;
    int loopback = is_loopback(o.host);

    char why[512] = "";
    sv_auth *auth = sv_auth_load(o.tokens_file, why, sizeof why);
    if (!auth) {
        fprintf(stderr, "blockbox serve: ConfigurationError: %s\n", why);
        return EXIT_BACKEND;
    }
    if (o.insecure_no_auth) {
        if (sv_auth_count(auth) > 0) {
            fprintf(stderr, "blockbox serve: ConfigurationError: --insecure-no-auth with credentials "
                            "configured; drop one of them\n");
            sv_auth_free(auth);
            return EXIT_BACKEND;
        }
        if (!loopback) {
            fprintf(stderr, "blockbox serve: ConfigurationError: --insecure-no-auth is only allowed "
                            "on a loopback address, not %s\n", o.host);
            sv_auth_free(auth);
            return EXIT_BACKEND;
        }
        sv_auth_free(auth);
        auth = NULL;
    } else if (sv_auth_count(auth) == 0) {
        fprintf(stderr, "blockbox serve: ConfigurationError: no credentials: set MODAL_TOKEN_ID and "
                        "MODAL_TOKEN_SECRET or give --tokens-file (or --insecure-no-auth on loopback)\n");
        sv_auth_free(auth);
        return EXIT_BACKEND;
    }
    if (!loopback && !o.tls_cert && !o.allow_plain_http) {
        fprintf(stderr, "blockbox serve: ConfigurationError: plain HTTP on the non-loopback address "
                        "%s would send tokens in clear text; give --tls-cert/--tls-key, or "
                        "--allow-plain-http behind a TLS-terminating proxy\n", o.host);
        sv_auth_free(auth);
        return EXIT_BACKEND;
    }

    /* Signals are taken by sigwait below; every thread started from here on inherits
     * the mask, so none of them is interrupted. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    bb_error *err = NULL;
    bb_config *cfg = bb_config_from_env(&err);
    if (cfg && bb_config_set(cfg, "mode", o.mode, &err) == 0 && o.max_inputs >= 0) {
        char n[32];
        snprintf(n, sizeof n, "%ld", o.max_inputs);
        bb_config_set(cfg, "max_inputs", n, &err);
    }
    bb_executor *ex = cfg && !err ? bb_executor_new(cfg, &err) : NULL;
    if (!ex) {
        fprintf(stderr, "blockbox serve: %s: %s\n", err ? bb_error_type_name(err) : "InternalError",
                err ? bb_error_message(err) : "out of memory");
        int status = err ? bb_error_exit_code(err) : EXIT_BACKEND;
        bb_error_free(err);
        bb_config_free(cfg);
        sv_auth_free(auth);
        return status;
    }
    const char *t = bb_config_get(cfg, "timeout"), *mem = bb_config_get(cfg, "memory_mb");
    long timeout_s = t ? (long)(atof(t) + 0.999) : 20, memory_mb = mem ? atol(mem) : 512;
    bb_config_free(cfg);
    log_doctor(ex);

    sv_limits lim = {
        .max_runs = (int)o.max_runs,
        .max_runs_per_ws = (int)o.max_runs_ws,
        .max_queue = (int)o.max_queue,
        .max_queue_per_ws = (int)o.max_queue_ws,
        .max_instances = (int)o.max_instances,
        .max_per_block = (int)o.max_per_block,
        .max_instances_per_ws = (int)(o.max_instances_ws > 0 ? o.max_instances_ws
                                      : o.max_instances > 1 ? o.max_instances / 2 : 1),
        .memory_budget_mb = o.memory_budget,
        .worker_memory_mb = memory_mb,
        .max_inputs = 0,
        .max_code_entries = 4096,
        .queue_wait_ms = (o.queue_wait_s >= 0 ? o.queue_wait_s : timeout_s + 5) * 1000,
    };
    sv_pool *pool = sv_pool_new(ex, &lim);
    sv_metrics *metrics = sv_metrics_new();
    sv_server_opts so = {
        .host = o.host,
        .port = o.port,
        .tls_cert = o.tls_cert,
        .tls_key = o.tls_key,
        .max_body = (size_t)o.max_body_mb << 20,
        .max_value_bytes = (size_t)o.max_reply_mb << 20,
        .max_connections = (unsigned)o.max_connections,
        .max_connections_per_ip = (unsigned)o.max_conn_per_ip,
        .idle_timeout_s = (unsigned)o.idle_timeout_s,
        .body_deadline_s = (unsigned)o.body_deadline_s,
        .max_request_bytes = (size_t)o.max_request_mb << 20,
    };
    int port = 0;
    sv_server *srv = pool && metrics ? sv_server_start(&so, auth, pool, metrics, &port, why, sizeof why)
                                     : NULL;
    if (!srv) {
        fprintf(stderr, "blockbox serve: BackendUnavailable: %s\n", why[0] ? why : "out of memory");
        sv_pool_free(pool);
        sv_metrics_free(metrics);
        bb_executor_free(ex);
        sv_auth_free(auth);
        return EXIT_BACKEND;
    }
    int v6 = strchr(o.host, ':') != NULL;
    fprintf(stderr, "blockbox serve: listening on %s://%s%s%s:%d\n", o.tls_cert ? "https" : "http",
            v6 ? "[" : "", o.host, v6 ? "]" : "", port);
    fflush(stderr);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    sv_log("%s: draining (no new calls; waiting for the ones in flight)",
           sig == SIGTERM ? "SIGTERM" : "SIGINT");
    sv_server_quiesce(srv);
    long left = sv_pool_drain(pool, (timeout_s + 10) * 1000);
    left += sv_server_drain(srv, 5000);   /* the replies of the last calls are sent */
    if (left)
        sv_log("drain: %ld calls still running after the grace period", left);
    sv_server_stop(srv);
    sv_pool_free(pool);
    sv_metrics_free(metrics);
    bb_executor_free(ex);
    sv_auth_free(auth);
    sv_log("stopped");
    return EXIT_OK;
}
