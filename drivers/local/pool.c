/* pool.c: the local driver's workers. Spawns them through the zygote, keeps spares
 * ready on a keeper thread (off the request path), retires and reaps them. */
#include "pool.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "proto.h"

#ifndef BLOCKBOX_LIB_TO_LIBEXEC
#define BLOCKBOX_LIB_TO_LIBEXEC "../libexec/blockbox"
#endif
#ifndef BLOCKBOX_LIBEXECDIR
#define BLOCKBOX_LIBEXECDIR "/usr/local/libexec/blockbox"
#endif

#define PIPE_BYTES (1 << 20)
/* Time a keeper's spawn of a spare may take. */
#define SPARE_SPAWN_MS 10000
/* The spare pool shrinks by one after this long without a caller finding it empty. */
#define SPARE_SHRINK_MS 5000
/* How long a caller that found no spare waits for the keeper's before it spawns one
 * itself (a zygote that hangs is then found by the caller's own call, within its
 * deadline, as before). */
#define SPARE_WAIT_MS 1000

struct bb_pool {
    bb_zclient *zc;
    bb_notifier *notifier;       /* answers and records every worker's denied calls (jail) */
    pthread_mutex_t pool_lock;   /* spares and the keeper's flags */
    pthread_cond_t pool_cond;    /* wakes the keeper */
    pthread_cond_t spare_cond;   /* wakes callers waiting for a spare */
    pthread_t keeper;            /* forks spares off the request path */
    int keeper_running;
    int stopping;
    int keeper_failing;          /* its last spawn failed: callers spawn for themselves */
    /* Sized to demand: spare_target grows by one each time a caller finds no spare
     * (up to spare_max, the configured spare_workers) and shrinks by one after
     * SPARE_SHRINK_MS without such a miss (down to 1). */
    long spare_max;
    long spare_target;
    long long last_miss_ms;
    int waiting;                 /* callers waiting for the keeper's next spare */
    bb_worker *spares;
    size_t nspares;
    long clk_tck;
    size_t arena_in, arena_out;  /* each worker's buffer arena (shm.h) */
};

/* Waits on c (a CLOCK_MONOTONIC condition) until the bb_now_ms() time `until`. */
static void cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, long long until)
{
    struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
    pthread_cond_timedwait(c, m, &ts);
}

/* ---- the worker executable -------------------------------------------- */

char *bb_pool_find_worker(const char *configured)
{
    if (configured)
        return strdup(configured);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            /* beside the binary (a build tree), then ../libexec/blockbox (an install) */
            static const char *const relative[] = {"/blockbox-worker",
                                                   "/../libexec/blockbox/blockbox-worker"};
            for (size_t i = 0; i < sizeof relative / sizeof relative[0]; i++) {
                char *path;
                if (asprintf(&path, "%s%s", self, relative[i]) < 0)
                    return NULL;
                if (access(path, X_OK) == 0)
                    return path;
                free(path);
            }
        }
    }
    /* relative to this library (an installed libblockbox moved to any prefix; a
     * program in Python or elsewhere whose /proc/self/exe says nothing about us) */
    Dl_info info;
    if (dladdr((void *)bb_pool_find_worker, &info) && info.dli_fname && info.dli_fname[0] == '/') {
        char *dir = strdup(info.dli_fname);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash) {
            *slash = '\0';
            /* an install (libdir → libexecdir, as configured), then the build tree */
            static const char *const relative[] = {"/" BLOCKBOX_LIB_TO_LIBEXEC "/blockbox-worker",
                                                   "/../bin/blockbox-worker"};
            for (size_t i = 0; i < sizeof relative / sizeof relative[0]; i++) {
                char *path;
                if (asprintf(&path, "%s%s", dir, relative[i]) < 0)
                    break;
                if (access(path, X_OK) == 0) {
                    free(dir);
                    return path;
                }
                free(path);
            }
        }
        free(dir);
    }
    return strdup(BLOCKBOX_LIBEXECDIR "/blockbox-worker");
}

/* ---- workers ---------------------------------------------------------- */

static void close_worker_fds(bb_pool *pool, bb_worker *w)
{
    close(w->req_w);
    close(w->resp_r);
    if (w->stat_fd >= 0)
        close(w->stat_fd);
    w->stat_fd = -1;
    bb_shm_destroy(&w->shm);
    bb_notifier_remove(pool->notifier, w->notify);
    w->notify = 0;
}

/* CPU time (user + system, all threads) of the worker so far, in ms; -1 if gone. */
long long bb_pool_cpu_ms(const bb_pool *pool, const bb_worker *w)
{
    char buf[1024];
    ssize_t n = pread(w->stat_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* after "pid (comm)": state is field 3, utime 14, stime 15 */
    unsigned long long ut = 0, stime = 0;
    p += 2;
    for (int field = 3; field < 14 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p || sscanf(p, "%llu %llu", &ut, &stime) != 2)
        return -1;
    return (long long)((ut + stime) * 1000ULL / (unsigned long long)pool->clk_tck);
}

static int spawn_worker(bb_pool *pool, bb_worker *w, long long deadline, bb_error **err)
{
    int req[2], resp[2];
    if (pipe2(req, O_CLOEXEC) < 0)
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "pipe: %s", strerror(errno));
    if (pipe2(resp, O_CLOEXEC) < 0) {
        close(req[0]);
        close(req[1]);
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "pipe: %s", strerror(errno));
    }
    /* The worker sends its seccomp listener back on this socket (jail: notify.c). */
    int hand[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, hand) < 0) {
        int e = errno;
        close(req[0]);
        close(req[1]);
        close(resp[0]);
        close(resp[1]);
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "socketpair: %s", strerror(e));
    }
    (void)fcntl(req[1], F_SETPIPE_SZ, PIPE_BYTES);
    (void)fcntl(resp[0], F_SETPIPE_SZ, PIPE_BYTES);
    bb_shm shm;
    int arena_in = -1, arena_out = -1;
    if (bb_shm_create(&shm, pool->arena_in, pool->arena_out, &arena_in, &arena_out, err) < 0) {
        close(req[0]);
        close(req[1]);
        close(resp[0]);
        close(resp[1]);
        close(hand[0]);
        close(hand[1]);
        return -1;
    }
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.op = BB_ZOP_SPAWN;
    int fds[5] = {req[0], resp[1], hand[1], arena_in, arena_out};
    unsigned long gen = 0;
    int rc = bb_zclient_call(pool->zc, &m, fds, 5, deadline, &gen, err);
    close(req[0]);
    close(resp[1]);
    close(hand[1]);
    close(arena_in);
    close(arena_out);
    if (rc == 0 && (m.status != 0 || m.pid <= 0))
        rc = bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "the zygote could not start a worker: %s", m.text);
    unsigned long notify = 0;
    if (rc == 0 && !(notify = bb_notifier_add(pool->notifier, hand[0], err))) {
        bb_zmsg d = {.op = BB_ZOP_DISCARD, .pid = m.pid, .wid = m.wid};
        bb_zclient_post(pool->zc, &d, gen);
        rc = -1;
    } else if (rc < 0) {
        close(hand[0]);
    }
    int stat_fd = -1;
    if (rc == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)m.pid);
        stat_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (stat_fd < 0) {
            bb_zmsg d = {.op = BB_ZOP_DISCARD, .pid = m.pid, .wid = m.wid};
            bb_zclient_post(pool->zc, &d, gen);
            bb_notifier_remove(pool->notifier, notify);
            /* Fail closed: no CPU budget can be kept without it. */
            rc = bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE,
                         "cannot watch the worker's CPU time (%s: %s)", path, strerror(errno));
        }
    }
    if (rc < 0) {
        close(req[1]);
        close(resp[0]);
        bb_shm_destroy(&shm);
        return -1;
    }
    fcntl(req[1], F_SETFL, O_NONBLOCK);
    fcntl(resp[0], F_SETFL, O_NONBLOCK);
    *w = (bb_worker){.pid = m.pid, .wid = m.wid, .gen = gen, .req_w = req[1], .resp_r = resp[0],
                  .stat_fd = stat_fd, .notify = notify, .shm = shm};
    return 0;
}

/* Kills and reaps a worker; its exit status and evidence go to *info. The wait ends
 * BB_ZCLIENT_MARGIN_MS from now. A worker of a dead zygote is gone already. */
void bb_pool_reap(bb_pool *pool, bb_worker *w, bb_reap_info *info)
{
    memset(info, 0, sizeof *info);
    if (w->pid <= 0)
        return;
    info->self_signal = bb_notifier_fatal_signal(pool->notifier, w->notify);
    close_worker_fds(pool, w);
    if (w->gen == bb_zclient_generation(pool->zc)) {
        bb_zmsg m;
        memset(&m, 0, sizeof m);
        m.op = BB_ZOP_REAP;
        m.pid = w->pid;
        m.wid = w->wid;
        bb_error *e = NULL;
        unsigned long gen = 0;
        int rc = bb_zclient_call(pool->zc, &m, NULL, 0, bb_now_ms(), &gen, &e);
        bb_error_free(e);
        if (rc == 0 && gen == w->gen && m.pid == w->pid && m.status != -1) {
            info->reaped = 1;
            info->wstatus = m.status;
            info->oom = m.oom;
            info->setup_failed = m.setup_failed;
            snprintf(info->setup_error, sizeof info->setup_error, "%s", m.text);
        }
    }
    w->pid = 0;
}

/* Hands a worker that is done back: the zygote kills it and reaps it within
 * REAP_POLL_MS (its cgroups go with it); nobody waits. */
void bb_pool_retire(bb_pool *pool, bb_worker *w)
{
    if (w->pid <= 0)
        return;
    close_worker_fds(pool, w);
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.op = BB_ZOP_DISCARD;
    m.pid = w->pid;
    m.wid = w->wid;
    bb_zclient_post(pool->zc, &m, w->gen);
    w->pid = 0;
}

/* A worker that cannot serve any more without having been asked anything: its
 * zygote is gone, or it has closed its end (died while idle). */
int bb_pool_gone_idle(bb_pool *pool, const bb_worker *w)
{
    if (!bb_zclient_alive(pool->zc, w->gen))
        return 1;
    struct pollfd p = {.fd = w->resp_r, .events = POLLIN};
    return poll(&p, 1, 0) > 0 && !(p.revents & POLLIN) && (p.revents & (POLLHUP | POLLERR));
}

/* A live spare off the pool (lock held), or 0. A dead one is retired on the way. */
static int pop_spare(bb_pool *pool, bb_worker *w)
{
    while (pool->nspares > 0) {
        *w = pool->spares[--pool->nspares];
        if (!bb_pool_gone_idle(pool, w))
            return 1;
        pthread_mutex_unlock(&pool->pool_lock);
        bb_pool_retire(pool, w);
        pthread_mutex_lock(&pool->pool_lock);
    }
    return 0;
}

/* A spare, else the keeper's next one: a caller does not fork for itself while the
 * keeper can (its fork would queue behind the keeper's in the zygote, and the keeper's
 * spare would then wait idle). It spawns its own only when the keeper cannot: no
 * spares configured, the keeper stopping, its last spawn failed, or no spare came
 * within SPARE_WAIT_MS. */
int bb_pool_take(bb_pool *pool, bb_worker *w, long long deadline, bb_error **err)
{
    pthread_mutex_lock(&pool->pool_lock);
    int have = pop_spare(pool, w);
    if (!have && pool->spare_max > 0 && pool->keeper_running) {
        pool->last_miss_ms = bb_now_ms();
        if (pool->spare_target < pool->spare_max)
            pool->spare_target++;
        long long until = bb_now_ms() + SPARE_WAIT_MS;
        if (until > deadline)
            until = deadline;
        pool->waiting++;
        while (!have && !pool->keeper_failing && !pool->stopping && bb_now_ms() < until) {
            pthread_cond_signal(&pool->pool_cond);
            cond_wait_until(&pool->spare_cond, &pool->pool_lock, until);
            have = pop_spare(pool, w);
        }
        pool->waiting--;
    }
    pthread_cond_signal(&pool->pool_cond);   /* the keeper replaces what was taken now */
    pthread_mutex_unlock(&pool->pool_lock);
    return have ? 0 : spawn_worker(pool, w, deadline, err);
}

/* The keeper thread: spares ready (they have never seen user code), so a fork is
 * not on a caller's path. It spawns while the pool is below its target or a caller
 * waits, back to back, and gives spares back when demand has fallen. */
static void *keeper_main(void *arg)
{
    bb_pool *pool = arg;
    pthread_mutex_lock(&pool->pool_lock);
    while (!pool->stopping) {
        long long now = bb_now_ms();
        if (pool->spare_target > 1 && now - pool->last_miss_ms >= SPARE_SHRINK_MS) {
            pool->spare_target--;
            pool->last_miss_ms = now;   /* one step per quiet period */
        }
        while ((long)pool->nspares > pool->spare_target) {
            bb_worker extra = pool->spares[--pool->nspares];
            pthread_mutex_unlock(&pool->pool_lock);
            bb_pool_retire(pool, &extra);
            pthread_mutex_lock(&pool->pool_lock);
        }
        if ((long)pool->nspares < pool->spare_target || pool->waiting > (long)pool->nspares) {
            pthread_mutex_unlock(&pool->pool_lock);
            bb_worker w;
            bb_error *e = NULL;
            int rc = spawn_worker(pool, &w, bb_now_ms() + SPARE_SPAWN_MS, &e);
            bb_error_free(e);
            pthread_mutex_lock(&pool->pool_lock);
            if (rc < 0) {
                /* the zygote is failing: do not spin; callers spawn for themselves and
                 * see the error */
                pool->keeper_failing = 1;
                pthread_cond_broadcast(&pool->spare_cond);
                cond_wait_until(&pool->pool_cond, &pool->pool_lock, bb_now_ms() + 1000);
                continue;
            }
            pool->keeper_failing = 0;
            if (!pool->stopping && ((long)pool->nspares < pool->spare_target || pool->waiting > (long)pool->nspares) &&
                (long)pool->nspares <= pool->spare_max) {
                pool->spares[pool->nspares++] = w;
                pthread_cond_signal(&pool->spare_cond);
            } else {
                pthread_mutex_unlock(&pool->pool_lock);
                bb_pool_retire(pool, &w);
                pthread_mutex_lock(&pool->pool_lock);
            }
            continue;
        }
        if (pool->spare_target > 1)
            cond_wait_until(&pool->pool_cond, &pool->pool_lock, pool->last_miss_ms + SPARE_SHRINK_MS);
        else
            pthread_cond_wait(&pool->pool_cond, &pool->pool_lock);
    }
    pthread_cond_broadcast(&pool->spare_cond);
    pthread_mutex_unlock(&pool->pool_lock);
    return NULL;
}

/* ---- the pool ---------------------------------------------------------- */

bb_pool *bb_pool_open(const char *worker_path, const bb_zinit *init, long spare_target,
                      long start_timeout_ms, bb_error **err)
{
    bb_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&pool->pool_lock, NULL);
    bb_cond_init_monotonic(&pool->pool_cond);
    bb_cond_init_monotonic(&pool->spare_cond);
    pool->spare_max = spare_target;
    pool->spare_target = spare_target > 0 ? 1 : 0;
    pool->last_miss_ms = bb_now_ms();
    pool->arena_in = init->max_input_bytes > 0 ? (size_t)init->max_input_bytes : 0;
    pool->arena_out = init->max_result_bytes > 0 ? (size_t)init->max_result_bytes : 0;
    pool->clk_tck = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
    pool->spares = calloc((size_t)pool->spare_max + 1, sizeof *pool->spares);
    if (!pool->spares) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        goto fail;
    }
    pool->notifier = bb_notifier_start(err);
    if (!pool->notifier)
        goto fail;
    pool->zc = bb_zclient_open(worker_path, init, start_timeout_ms, err);
    if (!pool->zc)
        goto fail;
    if (pthread_create(&pool->keeper, NULL, keeper_main, pool) != 0) {
        bb_fail(err, BB_ERR_INTERNAL, "cannot start the worker keeper thread");
        bb_zclient_close(pool->zc);
        goto fail;
    }
    pool->keeper_running = 1;
    return pool;
fail:
    bb_notifier_stop(pool->notifier);
    free(pool->spares);
    pthread_cond_destroy(&pool->pool_cond);
    pthread_cond_destroy(&pool->spare_cond);
    pthread_mutex_destroy(&pool->pool_lock);
    free(pool);
    return NULL;
}

void bb_pool_close(bb_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->pool_lock);
    pool->stopping = 1;
    pthread_cond_signal(&pool->pool_cond);
    pthread_cond_broadcast(&pool->spare_cond);
    pthread_mutex_unlock(&pool->pool_lock);
    if (pool->keeper_running)
        pthread_join(pool->keeper, NULL);
    for (size_t i = 0; i < pool->nspares; i++)
        close_worker_fds(pool, &pool->spares[i]);
    bb_zclient_close(pool->zc);   /* the zygote kills whatever is left and exits */
    bb_notifier_stop(pool->notifier);
    pthread_cond_destroy(&pool->pool_cond);
    pthread_cond_destroy(&pool->spare_cond);
    pthread_mutex_destroy(&pool->pool_lock);
    free(pool->spares);
    free(pool);
}

bb_notifier *bb_pool_notifier(bb_pool *pool)
{
    return pool->notifier;
}

bb_zclient *bb_pool_zclient(bb_pool *pool)
{
    return pool->zc;
}

size_t bb_pool_spares(bb_pool *pool)
{
    pthread_mutex_lock(&pool->pool_lock);
    size_t n = pool->nspares;
    pthread_mutex_unlock(&pool->pool_lock);
    return n;
}
