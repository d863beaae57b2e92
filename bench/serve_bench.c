/* serve_bench.c: `blockbox serve` against the C API in the same run: a trivial block
 * called over keep-alive HTTP (Roboflow's request shape) vs bb_block_run, p50/p99, req/s. */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "blockbox.h"
#include "stats.h"

extern char **environ;

#define CLIENTS 16
#define BLOCKS 4     /* instances: the server's --max-instances-per-block */

static const char *CODE = "def run(self, x):\n    return {'y': x}\n";
static const char *HASH = "3e4a7f1a8a3a53ad85bbf71c6ad2f1de";   /* filled in at start */
static char hash_buf[33];

static double now_us(void) { return bench_clock_us(CLOCK_MONOTONIC); }

/* ---- the server, as a separate process ------------------------------------- */

static pid_t server_pid;
static int server_port;

static void *drain_log(void *arg)
{
    FILE *f = arg;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        if (!server_port) {
            const char *p = strstr(line, "listening on http://127.0.0.1:");
            if (p)
                server_port = atoi(p + strlen("listening on http://127.0.0.1:"));
        }
    }
    return NULL;
}

static int start_server(const char *bin)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *argv[] = {(char *)bin, "serve", "--listen", "127.0.0.1:0", "--max-instances-per-block", "4",
                    "--max-runs", "16", "--max-runs-per-workspace", "16", NULL};
    setenv("MODAL_TOKEN_ID", "bench-key", 1);
    setenv("MODAL_TOKEN_SECRET", "bench-secret", 1);
    int rc = posix_spawn(&server_pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0)
        return -1;
    pthread_t t;
    pthread_create(&t, NULL, drain_log, fdopen(fds[0], "r"));
    pthread_detach(t);
    for (int i = 0; i < 600 && !server_port; i++)
        usleep(100000);
    return server_port ? 0 : -1;
}

/* ---- a Roboflow-shaped client: gzip level 1 JSON, Modal-Key/Secret, keep-alive --- */

typedef struct client {
    CURL *h;
    struct curl_slist *hdr;
    char url[128];
    char reply[4096];
    size_t reply_len;
} client;

static size_t collect(char *p, size_t s, size_t n, void *u)
{
    client *c = u;
    size_t k = s * n;
    if (c->reply_len + k < sizeof c->reply) {
        memcpy(c->reply + c->reply_len, p, k);
        c->reply_len += k;
        c->reply[c->reply_len] = '\0';
    }
    return k;
}

static void client_init(client *c)
{
    memset(c, 0, sizeof *c);
    c->h = curl_easy_init();
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:%d/execute?workspace_id=bench", server_port);
    c->hdr = curl_slist_append(c->hdr, "Content-Type: application/json");
    c->hdr = curl_slist_append(c->hdr, "Content-Encoding: gzip");
    c->hdr = curl_slist_append(c->hdr, "Modal-Key: bench-key");
    c->hdr = curl_slist_append(c->hdr, "Modal-Secret: bench-secret");
    c->hdr = curl_slist_append(c->hdr, "Expect:");
    curl_easy_setopt(c->h, CURLOPT_URL, c->url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdr);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
}

static size_t gzip_body(const char *json, unsigned char *out, size_t cap)
{
    z_stream z = {0};
    deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (unsigned char *)json;
    z.avail_in = (uInt)strlen(json);
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t n = z.total_out;
    deflateEnd(&z);
    return n;
}

typedef struct body {
    unsigned char data[256];
    size_t len;
} body;

/* The gzip request of one call, made before the clock starts (the client's own
 * compression is not the server's cost). */
static void make_body(body *b, int x, int with_code)
{
    char json[1024];
    if (with_code)
        snprintf(json, sizeof json,
                 "{\"code_hash\": \"%s\", \"run_function_name\": \"run\", \"inputs_json\": \"{\\\"x\\\": %d}\", "
                 "\"workflow_context\": {}, \"code_str\": \"def run(self, x):\\n    return {'y': x}\\n\", "
                 "\"imports\": []}", HASH, x);
    else
        snprintf(json, sizeof json,
                 "{\"code_hash\": \"%s\", \"run_function_name\": \"run\", \"inputs_json\": \"{\\\"x\\\": %d}\", "
                 "\"workflow_context\": {}}", HASH, x);
    b->len = gzip_body(json, b->data, sizeof b->data);
}

/* One call; 0 when the answer is the success envelope for x. */
static int client_send(client *c, const body *b, int x)
{
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, b->data);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)b->len);
    c->reply_len = 0;
    c->reply[0] = '\0';
    long status = 0;
    if (curl_easy_perform(c->h) != CURLE_OK)
        return -1;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    char want[64];
    snprintf(want, sizeof want, "\"result\":\"{\\\"y\\\":%d}\"", x);
    return status == 200 && strstr(c->reply, want) ? 0 : -1;
}

static int client_call(client *c, int x, int with_code)
{
    body b;
    make_body(&b, x, with_code);
    return client_send(c, &b, x);
}

static void client_free(client *c)
{
    curl_slist_free_all(c->hdr);
    curl_easy_cleanup(c->h);
}

/* ---- runs -------------------------------------------------------------------- */

typedef struct job {
    int n, id, failures;
    bb_block *blk;     /* API mode */
    body *bodies;      /* HTTP mode */
} job;

static void *http_worker(void *arg)
{
    job *j = arg;
    client c;
    client_init(&c);
    for (int i = 0; i < j->n; i++)
        if (client_send(&c, &j->bodies[i], j->id * 100000 + i) < 0)
            j->failures++;
    client_free(&c);
    return NULL;
}

static void *api_worker(void *arg)
{
    job *j = arg;
    char in[64], want[64];
    for (int i = 0; i < j->n; i++) {
        int x = j->id * 100000 + i;
        snprintf(in, sizeof in, "{\"x\": %d}", x);
        snprintf(want, sizeof want, "{\"y\":%d}", x);
        bb_result *r = bb_block_run(j->blk, in, NULL);
        if (!r || !bb_result_ok(r) || strcmp(bb_result_outputs(r), want) != 0)
            j->failures++;
        bb_result_free(r);
    }
    return NULL;
}

static double throughput(int http, bb_block **blocks, int per_client, int *failures)
{
    pthread_t t[CLIENTS];
    job jobs[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        jobs[i] = (job){.n = per_client, .id = i + 1, .blk = blocks[i % BLOCKS]};
        jobs[i].bodies = calloc((size_t)per_client, sizeof(body));
        for (int k = 0; http && k < per_client; k++)
            make_body(&jobs[i].bodies[k], jobs[i].id * 100000 + k, 0);
    }
    double t0 = now_us();
    for (int i = 0; i < CLIENTS; i++) {
        pthread_create(&t[i], NULL, http ? http_worker : api_worker, &jobs[i]);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        *failures += jobs[i].failures;
    }
    double rate = CLIENTS * per_client / ((now_us() - t0) / 1e6);
    for (int i = 0; i < CLIENTS; i++)
        free(jobs[i].bodies);
    return rate;
}

int main(int argc, char **argv)
{
    int quick = 0, json = 0;
    const char *bin = NULL;
    for (int i = 1; i < argc; i++) {
        if (bench_mode_option(argv[i], &quick, &json))
            continue;
        if (strcmp(argv[i], "--bin") == 0 && i + 1 < argc)
            bin = argv[++i];
    }
    if (!bin) {
        fprintf(stderr, "usage: bench_serve --bin build/bin/blockbox [--quick] [--json]\n");
        return 2;
    }
    int seq = quick ? 300 : 3000, per_client = quick ? 60 : 400;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    bb_error *err = NULL;
    bb_config *cfg = bb_config_from_env(&err);
    if (cfg)
        bb_config_set(cfg, "mode", "local", &err);
    bb_executor *ex = cfg && !err ? bb_executor_new(cfg, &err) : NULL;
    bb_config_free(cfg);
    bb_block *blocks[BLOCKS] = {0};
    bb_block_spec spec = {.run_code = CODE, .workspace_id = "bench"};
    for (int i = 0; ex && i < BLOCKS; i++)
        if (!(blocks[i] = bb_block_load(ex, &spec, &err)))
            break;
    if (!ex || !blocks[BLOCKS - 1]) {
        fprintf(stderr, "bench_serve: %s\n", err ? bb_error_message(err) : "no executor");
        return 1;
    }
    snprintf(hash_buf, sizeof hash_buf, "%s", bb_block_code_hash(blocks[0]));
    HASH = hash_buf;
    if (start_server(bin) < 0) {
        fprintf(stderr, "bench_serve: the server did not start\n");
        return 1;
    }

    client c;
    client_init(&c);
    int failures = client_call(&c, 1, 1) < 0;
    /* warm-up: the server's other instances and both paths */
    for (int i = 0; i < 200; i++) {
        failures += client_call(&c, i, 0) < 0;
        bb_result_free(bb_block_run(blocks[0], "{\"x\": 1}", NULL));
    }
    double *api = calloc((size_t)seq, sizeof *api), *http = calloc((size_t)seq, sizeof *http);
    /* interleaved, so both see the same machine load */
    for (int i = 0; i < seq; i++) {
        char in[64];
        snprintf(in, sizeof in, "{\"x\": %d}", i);
        double t0 = now_us();
        bb_result *r = bb_block_run(blocks[0], in, NULL);
        api[i] = now_us() - t0;
        failures += !r || !bb_result_ok(r);
        bb_result_free(r);
        body b;
        make_body(&b, i, 0);
        t0 = now_us();
        failures += client_send(&c, &b, i) < 0;
        http[i] = now_us() - t0;
    }
    client_free(&c);
    qsort(api, (size_t)seq, sizeof *api, bench_cmp_double);
    qsort(http, (size_t)seq, sizeof *http, bench_cmp_double);
    double api_rps = throughput(0, blocks, per_client, &failures);
    double http_rps = throughput(1, blocks, per_client, &failures);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double load[3] = {0};
    getloadavg(load, 3);
    if (json) {
        printf("{\"calls\":%d,\"cpus\":%ld,\"loadavg\":%.2f,"
               "\"api_p50_us\":%.1f,\"api_p99_us\":%.1f,\"http_p50_us\":%.1f,\"http_p99_us\":%.1f,"
               "\"overhead_p50_us\":%.1f,\"api_calls_per_s_16\":%.0f,\"http_calls_per_s_16\":%.0f,"
               "\"failures\":%d}\n",
               seq, ncpu, load[0], bench_pct(api, seq, 50), bench_pct(api, seq, 99), bench_pct(http, seq, 50),
               bench_pct(http, seq, 99), bench_pct(http, seq, 50) - bench_pct(api, seq, 50), api_rps, http_rps, failures);
    } else {
        printf("blockbox serve vs the C API, trivial block, %d sequential calls each (interleaved),\n"
               "then %d clients x %d calls; %ld CPUs, load average %.2f\n", seq, CLIENTS, per_client,
               ncpu, load[0]);
        printf("  C API bb_block_run            p50 %8.1f us   p99 %8.1f us\n", bench_pct(api, seq, 50),
               bench_pct(api, seq, 99));
        printf("  HTTP keep-alive (Roboflow)    p50 %8.1f us   p99 %8.1f us\n", bench_pct(http, seq, 50),
               bench_pct(http, seq, 99));
        printf("  serve overhead (p50 - p50)    %8.1f us   (target <= 200)\n",
               bench_pct(http, seq, 50) - bench_pct(api, seq, 50));
        printf("  %d threads, C API (%d instances)   %8.0f calls/s\n", CLIENTS, BLOCKS, api_rps);
        printf("  %d clients, HTTP  (%d instances)   %8.0f calls/s   (target >= 3000)\n", CLIENTS,
               BLOCKS, http_rps);
        printf("  wrong or failed answers: %d\n", failures);
    }
    kill(server_pid, SIGTERM);
    int st = 0;
    waitpid(server_pid, &st, 0);
    for (int i = 0; i < BLOCKS; i++)
        bb_block_free(blocks[i]);
    bb_executor_free(ex);
    free(api);
    free(http);
    curl_global_cleanup();
    int server_ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!server_ok)
        fprintf(stderr, "bench_serve: the server did not exit 0 on SIGTERM\n");
    return failures || !server_ok ? 1 : 0;
}
