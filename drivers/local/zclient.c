/* zclient.c: the executor's side of the zygote conversation: start and restart, a
 * reader thread that matches replies to requests by seq, stuck-zygote detection. */
#include "zclient.h"

#include <blockbox/driver.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

#define RESTART_BACKOFF_MS 1000   /* after a failed start, before the next try */
#define READER_TICK_MS 100        /* how often outstanding requests are checked */

typedef struct waiter {
    uint32_t seq;
    long long sent_ms;
    int done;          /* 1: reply in `reply`; -1: the zygote went away (reason in zc) */
    bb_zmsg reply;
    struct waiter *next;
} waiter;

enum zstate { Z_DOWN, Z_STARTING, Z_UP };

struct bb_zclient {
    pthread_mutex_t lock;
    pthread_cond_t cond;          /* state changes and replies */
    pthread_t reader;
    int reader_running;
    int stopping;
    int wake[2];                  /* callers wake the reader here */
    enum zstate state;
    int want_start;
    int ctl;
    pid_t pid;
    int pidfd;                    /* readable once the zygote has exited; -1: none */
    unsigned long generation;     /* zygote starts so far */
    char *worker_path;
    long start_timeout_ms;        /* zygote_start_seconds: how long a start may take */
    bb_zinit init;
    unsigned layers;
    char warnings[1024];
    char down_reason[512];        /* why the last zygote went away */
    char start_error[600];        /* why the last start failed ("" if it did not) */
    bb_error_kind start_kind;
    long long start_failed_ms;
    uint32_t next_seq;
    waiter *waiters;
};

long long bb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bb_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

static struct timespec abs_time(long long ms)
{
    return (struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
}

static void wake_reader(bb_zclient *zc)
{
    ssize_t n = write(zc->wake[1], "w", 1);
    (void)n;   /* a full pipe has a wake-up in it already */
}

static void drain_wake(bb_zclient *zc)
{
    char buf[64];
    while (read(zc->wake[0], buf, sizeof buf) > 0)
        ;
}

/* The state letter of /proc/<pid>/stat ('T' stopped, 't' traced), or 0. */
static char process_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : 0;
}

/* ---- start and stop ------------------------------------------------------- */

/* Waits for the one reply to the INIT request (the only request then). */
static int recv_init_reply(bb_zclient *zc, int ctl, int wake_fd, bb_zmsg *m, long long deadline)
{
    for (;;) {
        long long left = deadline - bb_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p[2] = {{.fd = ctl, .events = POLLIN}, {.fd = wake_fd, .events = POLLIN}};
        int n = poll(p, wake_fd >= 0 ? 2 : 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            int fds[2];
            if (bb_zrecv(ctl, m, fds, 2) < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                return -1;
            }
            for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                    close(fds[i]);   /* the zygote never sends fds */
            return m->op == BB_ZOP_REPLY ? 0 : -1;
        }
        if (n > 0 && wake_fd >= 0 && (p[1].revents & POLLIN)) {
            /* a caller wants something: the start goes on; only stopping ends it */
            char c;
            while (read(wake_fd, &c, 1) > 0)
                ;
            if (__atomic_load_n(&zc->stopping, __ATOMIC_ACQUIRE))
                return -1;
        }
    }
}

static void reap_zygote(pid_t pid, long long grace_ms)
{
    if (pid <= 0)
        return;
    int status;
    long long until = bb_now_ms() + grace_ms;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (bb_now_ms() >= until) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return;
        }
        usleep(1000);
    }
}

/* Starts a zygote and waits for its INIT reply. Called without the lock (by open,
 * or by the reader). Fills *ctl_out, *pid_out, layers and warnings. */
static int zygote_start(bb_zclient *zc, int *ctl_out, pid_t *pid_out, unsigned *layers,
                        char *warnings, size_t wlen, bb_error **err)
{
    if (access(zc->worker_path, X_OK) < 0)
        return bb_fail(err, BB_ERR_CONFIGURATION,
                       "the sandbox worker %s is missing or not executable (set BLOCKBOX_WORKER_PATH)",
                       zc->worker_path);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "socketpair: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], BB_ZYGOTE_CTL_FD);
    posix_spawn_file_actions_addclosefrom_np(&fa, BB_ZYGOTE_CTL_FD + 1);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    /* The zygote gets no environment of ours: no secret can reach a block. */
    char *const argv[] = {"blockbox-worker", "--zygote", NULL};
    char *const envp[] = {"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1",
                          "NUMEXPR_NUM_THREADS=1", "LC_ALL=C.UTF-8", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, zc->worker_path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "cannot start %s: %s", zc->worker_path,
                       strerror(rc));
    }
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.magic = BB_ZYGOTE_MAGIC;
    m.op = BB_ZOP_INIT;
    m.init = zc->init;
    if (bb_zsend(sv[0], &m, NULL, 0) < 0 ||
        recv_init_reply(zc, sv[0], zc->reader_running ? zc->wake[0] : -1, &m,
                        bb_now_ms() + zc->start_timeout_ms) < 0) {
        close(sv[0]);
        kill(pid, SIGKILL);
        reap_zygote(pid, 0);
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE,
                       "the sandbox zygote did not start within %.3g s (BLOCKBOX_ZYGOTE_START_SECONDS)",
                       (double)zc->start_timeout_ms / 1000.0);
    }
    if (m.status != 0) {
        close(sv[0]);
        reap_zygote(pid, 5000);
        /* Fail closed: no seccomp, a required layer missing, no Python: no run. */
        return bb_fail(err, BB_ERR_CONFIGURATION, "local sandbox unavailable: %s", m.text);
    }
    (void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
    *ctl_out = sv[0];
    *pid_out = pid;
    *layers = m.layers;
    snprintf(warnings, wlen, "%s", m.text);
    return 0;
}

/* The zygote is gone or is being put down (lock held): every waiter fails with
 * `why`, the process is killed and reaped, a restart is wanted. */
static void zygote_down(bb_zclient *zc, const char *why)
{
    if (zc->state != Z_UP)
        return;
    if (!zc->down_reason[0])
        snprintf(zc->down_reason, sizeof zc->down_reason, "%s", why);
    close(zc->ctl);
    zc->ctl = -1;
    if (zc->pidfd >= 0)
        close(zc->pidfd);
    zc->pidfd = -1;
    kill(zc->pid, SIGKILL);   /* dead already, or stuck: either way it goes */
    reap_zygote(zc->pid, 0);
    zc->pid = 0;
    zc->state = Z_DOWN;
    zc->want_start = 1;
    for (waiter *w = zc->waiters; w; w = w->next)
        if (!w->done)
            w->done = -1;
    pthread_cond_broadcast(&zc->cond);
}

/* ---- the reader ----------------------------------------------------------- */

/* A stopped zygote is killed once a request has waited BB_ZCLIENT_STUCK_MS; a
 * running one that has not answered for BB_ZCLIENT_HUNG_MS too. Lock held. */
static void check_stuck(bb_zclient *zc, long long now)
{
    if (zc->state != Z_UP || !zc->waiters)
        return;
    long long oldest = now;
    for (waiter *w = zc->waiters; w; w = w->next)
        if (!w->done && w->sent_ms < oldest)
            oldest = w->sent_ms;
    long long waited = now - oldest;
    if (waited < BB_ZCLIENT_STUCK_MS)
        return;
    char state = process_state(zc->pid);
    char why[200];
    if (state == 'T' || state == 't')
        snprintf(why, sizeof why, "the sandbox zygote (pid %d) was stopped and did not answer for %lld ms; "
                                  "it was killed and is being restarted", (int)zc->pid, waited);
    else if (waited >= BB_ZCLIENT_HUNG_MS)
        snprintf(why, sizeof why, "the sandbox zygote (pid %d) did not answer for %lld ms (hung); "
                                  "it was killed and is being restarted", (int)zc->pid, waited);
    else
        return;
    snprintf(zc->down_reason, sizeof zc->down_reason, "%s", why);
    zygote_down(zc, why);
}

/* A reply nobody waits for any more (its caller gave up). One that names a worker
 * (a late SPAWN) would leave that worker to nobody: discard it. */
static void orphan_reply(bb_zclient *zc, const bb_zmsg *m)
{
    if (m->wid == 0 || m->pid <= 0 || m->status != 0)
        return;
    bb_zmsg d;
    memset(&d, 0, sizeof d);
    d.magic = BB_ZYGOTE_MAGIC;
    d.op = BB_ZOP_DISCARD;
    d.seq = ++zc->next_seq ? zc->next_seq : ++zc->next_seq;
    d.pid = m->pid;
    d.wid = m->wid;
    (void)bb_zsend(zc->ctl, &d, NULL, 0);
}

static void handle_readable(bb_zclient *zc)
{
    for (;;) {
        bb_zmsg m;
        int fds[2];
        if (bb_zrecv(zc->ctl, &m, fds, 2) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            if (errno == EPROTO)
                continue;   /* not a message of ours: ignore it */
            zygote_down(zc, "the sandbox zygote died during the request; it is being restarted");
            return;
        }
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        if (m.op != BB_ZOP_REPLY)
            continue;
        waiter *w = zc->waiters;
        while (w && w->seq != m.seq)
            w = w->next;
        if (w && !w->done) {
            w->reply = m;
            w->done = 1;
            pthread_cond_broadcast(&zc->cond);
        } else {
            orphan_reply(zc, &m);
        }
    }
}

static void *reader_main(void *arg)
{
    bb_zclient *zc = arg;
    pthread_mutex_lock(&zc->lock);
    while (!zc->stopping) {
        if (zc->state == Z_DOWN) {
            long long now = bb_now_ms();
            long long ready_at = zc->start_error[0] ? zc->start_failed_ms + RESTART_BACKOFF_MS : now;
            if (zc->want_start && now >= ready_at) {
                zc->state = Z_STARTING;
                pthread_mutex_unlock(&zc->lock);
                int ctl = -1;
                pid_t pid = 0;
                unsigned layers = 0;
                char warnings[sizeof zc->warnings];
                bb_error *e = NULL;
                int rc = zygote_start(zc, &ctl, &pid, &layers, warnings, sizeof warnings, &e);
                pthread_mutex_lock(&zc->lock);
                if (rc == 0) {
                    zc->ctl = ctl;
                    zc->pid = pid;
                    zc->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
                    zc->layers = layers;
                    snprintf(zc->warnings, sizeof zc->warnings, "%s", warnings);
                    zc->generation++;
                    zc->state = Z_UP;
                    zc->start_error[0] = '\0';
                    zc->down_reason[0] = '\0';
                } else {
                    zc->state = Z_DOWN;
                    snprintf(zc->start_error, sizeof zc->start_error, "%s",
                             e ? e->message : "the sandbox zygote did not start");
                    zc->start_kind = e ? e->kind : BB_ERR_BACKEND_UNAVAILABLE;
                    zc->start_failed_ms = bb_now_ms();
                }
                bb_error_free(e);
                zc->want_start = 0;
                pthread_cond_broadcast(&zc->cond);
                continue;
            }
            long long wait_ms = zc->want_start ? ready_at - now : -1;
            pthread_mutex_unlock(&zc->lock);
            struct pollfd p = {.fd = zc->wake[0], .events = POLLIN};
            (void)poll(&p, 1, wait_ms < 0 ? -1 : (int)wait_ms);
            drain_wake(zc);
            pthread_mutex_lock(&zc->lock);
            continue;
        }
        struct pollfd p[2] = {{.fd = zc->ctl, .events = POLLIN}, {.fd = zc->wake[0], .events = POLLIN}};
        int tick = zc->waiters ? READER_TICK_MS : -1;
        pthread_mutex_unlock(&zc->lock);
        int n = poll(p, 2, tick);
        drain_wake(zc);
        pthread_mutex_lock(&zc->lock);
        if (zc->state != Z_UP)
            continue;
        if (n > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            handle_readable(zc);
        check_stuck(zc, bb_now_ms());
    }
    pthread_mutex_unlock(&zc->lock);
    return NULL;
}

/* ---- the API -------------------------------------------------------------- */

bb_zclient *bb_zclient_open(const char *worker_path, const bb_zinit *init, long start_timeout_ms,
                            bb_error **err)
{
    bb_zclient *zc = calloc(1, sizeof *zc);
    if (!zc) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    zc->ctl = -1;
    zc->pidfd = -1;
    zc->wake[0] = zc->wake[1] = -1;
    zc->init = *init;
    zc->start_timeout_ms = start_timeout_ms > 0 ? start_timeout_ms : 60000;
    zc->worker_path = strdup(worker_path);
    bb_cond_init_monotonic(&zc->cond);
    pthread_mutex_init(&zc->lock, NULL);
    if (!zc->worker_path || pipe2(zc->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory or descriptors");
        goto fail;
    }
    if (zygote_start(zc, &zc->ctl, &zc->pid, &zc->layers, zc->warnings, sizeof zc->warnings, err) < 0)
        goto fail;
    zc->generation = 1;
    zc->state = Z_UP;
    zc->pidfd = (int)syscall(SYS_pidfd_open, zc->pid, 0);
    if (zc->warnings[0])
        fprintf(stderr, "blockbox: warning: local sandbox layers missing on this host "
                        "(see `blockbox doctor`): %s\n", zc->warnings);
    if (pthread_create(&zc->reader, NULL, reader_main, zc) != 0) {
        bb_fail(err, BB_ERR_INTERNAL, "cannot start the zygote reader thread");
        goto fail;
    }
    zc->reader_running = 1;
    return zc;
fail:
    if (zc->ctl >= 0) {
        close(zc->ctl);
        reap_zygote(zc->pid, 5000);
    }
    for (int i = 0; i < 2; i++)
        if (zc->wake[i] >= 0)
            close(zc->wake[i]);
    free(zc->worker_path);
    pthread_cond_destroy(&zc->cond);
    pthread_mutex_destroy(&zc->lock);
    free(zc);
    return NULL;
}

static void unlink_waiter(bb_zclient *zc, waiter *w)
{
    for (waiter **p = &zc->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            return;
        }
}

static uint32_t next_seq(bb_zclient *zc)
{
    if (++zc->next_seq == 0)
        ++zc->next_seq;
    return zc->next_seq;
}

int bb_zclient_call(bb_zclient *zc, bb_zmsg *m, const int *fds, int nfds, long long deadline_ms,
                    unsigned long *generation, bb_error **err)
{
    long long limit = deadline_ms + BB_ZCLIENT_MARGIN_MS;
    struct timespec until = abs_time(limit);
    pthread_mutex_lock(&zc->lock);
    while (zc->state != Z_UP) {
        if (zc->stopping) {
            pthread_mutex_unlock(&zc->lock);
            return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "the executor is shutting down");
        }
        if (zc->state == Z_DOWN && zc->start_error[0] && !zc->want_start &&
            bb_now_ms() < zc->start_failed_ms + RESTART_BACKOFF_MS) {
            bb_error_kind kind = zc->start_kind;
            char text[sizeof zc->start_error];
            snprintf(text, sizeof text, "%s", zc->start_error);
            pthread_mutex_unlock(&zc->lock);
            return bb_fail(err, kind, "the sandbox zygote could not be restarted: %s", text);
        }
        if (zc->state == Z_DOWN && !zc->want_start) {
            zc->want_start = 1;
            wake_reader(zc);
        }
        if (pthread_cond_timedwait(&zc->cond, &zc->lock, &until) == ETIMEDOUT && zc->state != Z_UP) {
            char why[sizeof zc->down_reason];
            snprintf(why, sizeof why, "%s", zc->down_reason[0] ? zc->down_reason : "it was not running");
            pthread_mutex_unlock(&zc->lock);
            return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE,
                           "the sandbox zygote was not ready within the call's time (%s)", why);
        }
    }
    waiter w = {.seq = next_seq(zc), .sent_ms = bb_now_ms()};
    m->magic = BB_ZYGOTE_MAGIC;
    m->seq = w.seq;
    unsigned long gen = zc->generation;
    if (bb_zsend(zc->ctl, m, fds, nfds) < 0) {
        int e = errno;
        if (e != EAGAIN && bb_now_ms() < limit) {
            zygote_down(zc, "the sandbox zygote died; it is being restarted");   /* found dead before it was asked */
            pthread_mutex_unlock(&zc->lock);
            return bb_zclient_call(zc, m, fds, nfds, deadline_ms, generation, err);
        }
        pthread_mutex_unlock(&zc->lock);
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "the sandbox zygote is not taking requests (%s)",
                       e == EAGAIN ? "its queue is full" : strerror(e));
    }
    w.next = zc->waiters;
    zc->waiters = &w;
    wake_reader(zc);   /* it ticks while requests are outstanding */
    while (!w.done) {
        if (pthread_cond_timedwait(&zc->cond, &zc->lock, &until) == ETIMEDOUT && !w.done) {
            check_stuck(zc, bb_now_ms());   /* a stopped zygote is put down now, not later */
            if (w.done)
                break;
            unlink_waiter(zc, &w);
            pthread_mutex_unlock(&zc->lock);
            return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE,
                           "the sandbox zygote did not answer within the call's time (busy; "
                           "waited %lld ms)", bb_now_ms() - w.sent_ms);
        }
    }
    unlink_waiter(zc, &w);
    if (w.done < 0) {
        char why[sizeof zc->down_reason];
        snprintf(why, sizeof why, "%s", zc->down_reason);
        pthread_mutex_unlock(&zc->lock);
        if (why[0])
            return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "%s", why);
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE,
                       "the sandbox zygote died during the request; it is being restarted");
    }
    pthread_mutex_unlock(&zc->lock);
    *m = w.reply;
    if (generation)
        *generation = gen;
    return 0;
}

void bb_zclient_post(bb_zclient *zc, bb_zmsg *m, unsigned long generation)
{
    pthread_mutex_lock(&zc->lock);
    if (zc->state == Z_UP && zc->generation == generation) {
        m->magic = BB_ZYGOTE_MAGIC;
        m->seq = next_seq(zc);
        (void)bb_zsend(zc->ctl, m, NULL, 0);
    }
    pthread_mutex_unlock(&zc->lock);
}

unsigned long bb_zclient_generation(bb_zclient *zc)
{
    pthread_mutex_lock(&zc->lock);
    unsigned long g = zc->state == Z_UP ? zc->generation : 0;
    pthread_mutex_unlock(&zc->lock);
    return g;
}

int bb_zclient_alive(bb_zclient *zc, unsigned long generation)
{
    pthread_mutex_lock(&zc->lock);
    int alive = zc->state == Z_UP && zc->generation == generation;
    if (alive && zc->pidfd >= 0) {
        struct pollfd p = {.fd = zc->pidfd, .events = POLLIN};
        alive = poll(&p, 1, 0) == 0;
    }
    pthread_mutex_unlock(&zc->lock);
    return alive;
}

void bb_zclient_info(bb_zclient *zc, pid_t *pid, unsigned long *starts, unsigned *layers,
                     char *warnings, size_t warnings_len)
{
    pthread_mutex_lock(&zc->lock);
    *pid = zc->state == Z_UP ? zc->pid : 0;
    *starts = zc->generation;
    *layers = zc->layers;
    snprintf(warnings, warnings_len, "%s", zc->warnings);
    pthread_mutex_unlock(&zc->lock);
}

void bb_zclient_close(bb_zclient *zc)
{
    if (!zc)
        return;
    pthread_mutex_lock(&zc->lock);
    __atomic_store_n(&zc->stopping, 1, __ATOMIC_RELEASE);
    wake_reader(zc);
    pthread_mutex_unlock(&zc->lock);
    if (zc->reader_running)
        pthread_join(zc->reader, NULL);
    if (zc->ctl >= 0)
        close(zc->ctl);   /* the zygote kills its workers and exits on EOF */
    if (zc->pidfd >= 0)
        close(zc->pidfd);
    if (zc->state == Z_UP)
        reap_zygote(zc->pid, 5000);
    close(zc->wake[0]);
    close(zc->wake[1]);
    free(zc->worker_path);
    pthread_cond_destroy(&zc->cond);
    pthread_mutex_destroy(&zc->lock);
    free(zc);
}
