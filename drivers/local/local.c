/* local.c: the local driver, executor side. Starts the zygote (blockbox-worker),
 * asks it for jailed workers, and moves request/response frames under a deadline. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "error.h"
#include "jail.h"
#include "notify.h"
#include "proto.h"
#include "wire.h"

#ifndef BLOCKBOX_LIBEXECDIR
#define BLOCKBOX_LIBEXECDIR "/usr/local/libexec/blockbox"
#endif

#define ZYGOTE_START_TIMEOUT_MS 60000
#define ZYGOTE_REPLY_TIMEOUT_MS 30000
#define PIPE_BYTES (1 << 20)

typedef struct worker {
    pid_t pid;      /* 0: none */
    int req_w;      /* we write request frames here */
    int resp_r;     /* and read response frames here */
    unsigned long notify;   /* its seccomp listener in st->notifier (0: none) */
    long runs;
} worker;

typedef struct local_state {
    pthread_mutex_t lock;        /* the zygote conversation and its restart */
    pthread_mutex_t pool_lock;   /* spares, retired workers, the keeper's flags */
    pthread_cond_t pool_cond;    /* wakes the keeper */
    pthread_t keeper;            /* forks spares and reaps retired workers off the request path */
    int keeper_running;
    int stopping;
    worker *retired;
    size_t nretired, retired_cap;
    int ctl;
    pid_t zygote_pid;
    char *worker_path;
    bb_zinit init;
    unsigned layers;
    bb_limits limits;
    size_t max_response;
    long spare_target;
    worker *spares;
    size_t nspares;
    unsigned long zygote_starts;
    long timeout_ms;
    char warnings[1024];   /* layers the zygote could not apply, one per line */
    bb_notifier *notifier; /* answers and records every worker's denied calls */
} local_state;

typedef struct local_block {
    worker w;
    int need_code;          /* the worker has not loaded this block yet */
    int max_inputs;
    char *load_envelope;
    size_t load_len;
} local_block;

/* ---- time ------------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for `events` until deadline; 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* ---- the zygote ------------------------------------------------------- */

static char *find_worker(const bb_config *cfg)
{
    if (cfg->worker_path)
        return strdup(cfg->worker_path);
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
    return strdup(BLOCKBOX_LIBEXECDIR "/blockbox-worker");
}

static void zygote_stop(local_state *st)
{
    if (st->ctl >= 0)
        close(st->ctl);   /* the zygote kills its workers and exits on EOF */
    st->ctl = -1;
    if (st->zygote_pid > 0) {
        int status;
        long long deadline = now_ms() + 5000;
        while (waitpid(st->zygote_pid, &status, WNOHANG) == 0) {
            if (now_ms() > deadline) {
                kill(st->zygote_pid, SIGKILL);
                waitpid(st->zygote_pid, &status, 0);
                break;
            }
            usleep(1000);
        }
    }
    st->zygote_pid = 0;
}

/* Receives one reply within the timeout. */
static int ctl_recv(local_state *st, bb_zmsg *m, long timeout_ms)
{
    int fds[2];
    if (wait_fd(st->ctl, POLLIN, now_ms() + timeout_ms) <= 0)
        return -1;
    if (bb_zrecv(st->ctl, m, fds, 2) < 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);   /* the zygote never sends fds */
    return m->op == BB_ZOP_REPLY ? 0 : -1;
}

static int zygote_start(local_state *st, bb_error **err)
{
    if (access(st->worker_path, X_OK) < 0)
        return bb_fail(err, BB_ERR_CONFIGURATION,
                       "the sandbox worker %s is missing or not executable (set BLOCKBOX_WORKER_PATH)",
                       st->worker_path);
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
    int rc = posix_spawn(&pid, st->worker_path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "cannot start %s: %s", st->worker_path,
                       strerror(rc));
    }
    st->ctl = sv[0];
    st->zygote_pid = pid;
    st->zygote_starts++;
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.magic = BB_ZYGOTE_MAGIC;
    m.op = BB_ZOP_INIT;
    m.init = st->init;
    if (bb_zsend(st->ctl, &m, NULL, 0) < 0 || ctl_recv(st, &m, ZYGOTE_START_TIMEOUT_MS) < 0) {
        zygote_stop(st);
        return bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "the sandbox zygote did not start");
    }
    if (m.status != 0) {
        zygote_stop(st);
        /* Fail closed: no seccomp, a required layer missing, no Python: no run. */
        return bb_fail(err, BB_ERR_CONFIGURATION, "local sandbox unavailable: %s", m.text);
    }
    st->layers = m.layers;
    snprintf(st->warnings, sizeof st->warnings, "%s", m.text);
    if (st->warnings[0] && st->zygote_starts == 1)
        fprintf(stderr, "blockbox: warning: local sandbox layers missing on this host "
                        "(see `blockbox doctor`): %s\n", st->warnings);
    return 0;
}

/* Forgets the spare workers (lock held); their zygote is gone, so are they. */
static void drop_spares(local_state *st)
{
    pthread_mutex_lock(&st->pool_lock);
    for (size_t i = 0; i < st->nspares; i++) {
        close(st->spares[i].req_w);
        close(st->spares[i].resp_r);
        bb_notifier_remove(st->notifier, st->spares[i].notify);
    }
    st->nspares = 0;
    pthread_mutex_unlock(&st->pool_lock);
}

/* One request/reply with the zygote; lock held. A dead zygote is restarted and
 * the request fails, so the next one succeeds. */
static int ctl_call(local_state *st, bb_zmsg *m, const int *fds, int nfds, bb_error **err)
{
    if (st->ctl < 0 && zygote_start(st, err) < 0)
        return -1;
    m->magic = BB_ZYGOTE_MAGIC;
    if (bb_zsend(st->ctl, m, fds, nfds) == 0 && ctl_recv(st, m, ZYGOTE_REPLY_TIMEOUT_MS) == 0)
        return 0;
    zygote_stop(st);
    drop_spares(st);   /* they belonged to the dead zygote */
    bb_error *restart_err = NULL;
    int restarted = zygote_start(st, &restart_err) == 0;
    bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "the sandbox zygote died during the request; %s",
            restarted ? "it was restarted, try again" : restart_err->message);
    bb_error_free(restart_err);
    return -1;
}

/* ---- workers ---------------------------------------------------------- */

static void discard_pid(local_state *st, pid_t pid);

static int spawn_worker(local_state *st, worker *w, bb_error **err)
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
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.op = BB_ZOP_SPAWN;
    int fds[3] = {req[0], resp[1], hand[1]};
    pthread_mutex_lock(&st->lock);
    int rc = ctl_call(st, &m, fds, 3, err);
    pthread_mutex_unlock(&st->lock);
    close(req[0]);
    close(resp[1]);
    close(hand[1]);
    if (rc == 0 && m.status != 0)
        rc = bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "the zygote could not start a worker: %s", m.text);
    unsigned long notify = rc == 0 ? bb_notifier_add(st->notifier, hand[0], err) : 0;
    if (rc < 0)
        close(hand[0]);
    if (rc == 0 && !notify) {
        discard_pid(st, m.pid);
        rc = -1;
    }
    if (rc < 0) {
        close(req[1]);
        close(resp[0]);
        return -1;
    }
    fcntl(req[1], F_SETFL, O_NONBLOCK);
    fcntl(resp[0], F_SETFL, O_NONBLOCK);
    *w = (worker){.pid = m.pid, .req_w = req[1], .resp_r = resp[0], .notify = notify, .runs = 0};
    return 0;
}

/* Kills and reaps a worker by pid; returns its wait status and whether it hit the
 * memory cap. */
/* Returns 1 if the zygote reaped the pid (then *wstatus and *oom are its), 0 if it
 * could not: the zygote died (and was restarted) and took the worker with it. */
static int reap_pid(local_state *st, pid_t pid, int *wstatus, int *oom)
{
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.op = BB_ZOP_REAP;
    m.pid = pid;
    bb_error *e = NULL;
    pthread_mutex_lock(&st->lock);
    int rc = ctl_call(st, &m, NULL, 0, &e);
    pthread_mutex_unlock(&st->lock);
    bb_error_free(e);
    int reaped = rc == 0 && m.pid == pid && m.status != -1;
    if (wstatus)
        *wstatus = reaped ? m.status : 0;
    if (oom)
        *oom = reaped ? m.oom : 0;
    return reaped;
}

/* Kills a worker whose exit status nobody needs; the zygote reaps it later. */
static void discard_pid(local_state *st, pid_t pid)
{
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.op = BB_ZOP_DISCARD;
    m.pid = pid;
    bb_error *e = NULL;
    pthread_mutex_lock(&st->lock);
    (void)ctl_call(st, &m, NULL, 0, &e);
    pthread_mutex_unlock(&st->lock);
    bb_error_free(e);
}

static int reap_worker(local_state *st, worker *w, int *wstatus, int *oom)
{
    if (w->pid <= 0)
        return 0;
    close(w->req_w);
    close(w->resp_r);
    bb_notifier_remove(st->notifier, w->notify);
    w->notify = 0;
    int reaped = reap_pid(st, w->pid, wstatus, oom);
    w->pid = 0;
    return reaped;
}

static int take_worker(local_state *st, worker *w, bb_error **err)
{
    pthread_mutex_lock(&st->pool_lock);
    int have = st->nspares > 0;
    if (have)
        *w = st->spares[--st->nspares];
    pthread_cond_signal(&st->pool_cond);   /* the keeper tops the pool up */
    pthread_mutex_unlock(&st->pool_lock);
    return have ? 0 : spawn_worker(st, w, err);
}

/* Hands a worker that is done to the keeper, which kills and reaps it. */
static void retire_worker(local_state *st, worker *w)
{
    if (w->pid <= 0)
        return;
    pthread_mutex_lock(&st->pool_lock);
    if (st->keeper_running && !st->stopping && st->nretired < st->retired_cap) {
        close(w->req_w);
        close(w->resp_r);
        bb_notifier_remove(st->notifier, w->notify);
        w->notify = 0;
        st->retired[st->nretired++] = *w;
        w->pid = 0;
        pthread_cond_signal(&st->pool_cond);
    }
    pthread_mutex_unlock(&st->pool_lock);
    if (w->pid)
        reap_worker(st, w, NULL, NULL);
}

/* The keeper thread: spares ready (they have never seen user code), retired
 * workers reaped, so neither a fork nor a wait sits on a caller's path. */
static void *keeper_main(void *arg)
{
    local_state *st = arg;
    pthread_mutex_lock(&st->pool_lock);
    while (!st->stopping) {
        if (st->nretired > 0) {
            worker w = st->retired[--st->nretired];
            pthread_mutex_unlock(&st->pool_lock);
            discard_pid(st, w.pid);
            pthread_mutex_lock(&st->pool_lock);
            continue;
        }
        if ((long)st->nspares < st->spare_target) {
            pthread_mutex_unlock(&st->pool_lock);
            worker w;
            bb_error *e = NULL;
            int rc = spawn_worker(st, &w, &e);
            bb_error_free(e);
            pthread_mutex_lock(&st->pool_lock);
            if (rc < 0) {
                /* the zygote is failing: do not spin; a caller will see the error */
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += 1;
                pthread_cond_timedwait(&st->pool_cond, &st->pool_lock, &until);
            } else if ((long)st->nspares < st->spare_target && !st->stopping) {
                st->spares[st->nspares++] = w;
            } else {
                pthread_mutex_unlock(&st->pool_lock);
                reap_worker(st, &w, NULL, NULL);
                pthread_mutex_lock(&st->pool_lock);
            }
            continue;
        }
        pthread_cond_wait(&st->pool_cond, &st->pool_lock);
    }
    pthread_mutex_unlock(&st->pool_lock);
    return NULL;
}

enum exchange_failure { EX_OK, EX_TIMEOUT, EX_DIED, EX_OVERSIZE, EX_DESYNC };

/* write() to a worker's pipe without SIGPIPE: a dead worker must not kill the
 * program that embeds blockbox. SIGPIPE is blocked in this thread around the
 * write, and one raised by it is consumed before the mask is restored. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write(fd, buf, len);
    int saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return n;
}

/* Sends one frame and reads one back, all before the deadline. */
static enum exchange_failure exchange(local_state *st, worker *w, const char *body, size_t len,
                                      long long deadline, bb_reply *reply)
{
    unsigned char hdr[4];
    if (len > UINT32_MAX)
        return EX_OVERSIZE;
    /* Nothing may be waiting before we ask: bytes there mean the worker wrote more
     * than one response (block code forging frames on fd 4), so its answers no
     * longer line up with our requests. */
    struct pollfd early = {.fd = w->resp_r, .events = POLLIN};
    if (poll(&early, 1, 0) > 0) {
        if (early.revents & POLLIN)
            return EX_DESYNC;
        return EX_DIED;   /* POLLHUP alone: the worker is gone */
    }
    bb_notifier_begin(st->notifier, w->notify);   /* this call's denials from here */
    bb_frame_header((uint32_t)len, hdr);
    const char *parts[2] = {(const char *)hdr, body};
    size_t sizes[2] = {4, len};
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < sizes[i]) {
            ssize_t n = write_nosigpipe(w->req_w, parts[i] + off, sizes[i] - off);
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN) {
                int r = wait_fd(w->req_w, POLLOUT, deadline);
                if (r == 0)
                    return EX_TIMEOUT;
                if (r < 0)
                    return EX_DIED;
                continue;
            }
            return EX_DIED;
        }
    }
    size_t got = 0, need = 4;
    char *buf = NULL;
    while (got < need) {
        char *dst = buf ? buf + (got - 4) : (char *)hdr + got;
        ssize_t n = read(w->resp_r, dst, need - got);
        if (n > 0) {
            got += (size_t)n;
            if (!buf && got == 4) {
                size_t flen = bb_frame_length(hdr);
                if (flen > st->max_response)
                    return EX_OVERSIZE;
                buf = malloc(flen + 1);
                if (!buf)
                    return EX_OVERSIZE;
                need = 4 + flen;
            }
            continue;
        }
        if (n == 0) {
            free(buf);
            return EX_DIED;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            int r = wait_fd(w->resp_r, POLLIN, deadline);
            if (r > 0)
                continue;
            free(buf);
            return r == 0 ? EX_TIMEOUT : EX_DIED;
        }
        free(buf);
        return EX_DIED;
    }
    if (!buf) {
        buf = malloc(1);
        if (!buf)
            return EX_OVERSIZE;
    }
    buf[need - 4] = '\0';
    /* Complete: each denial is recorded before the denied call returns, so before
     * the worker could write this reply. */
    char *denied = bb_notifier_take(st->notifier, w->notify, NULL);
    if (!denied) {
        free(buf);
        return EX_OVERSIZE;
    }
    reply->body = buf;
    reply->len = need - 4;
    reply->denied = denied;
    return EX_OK;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGSYS: return "SIGSYS";
    case SIGTERM: return "SIGTERM";
    case SIGQUIT: return "SIGQUIT";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGALRM: return "SIGALRM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    default: return "a signal";
    }
}

/* Why a worker stopped answering, as an error of the right kind. */
static bb_error *death_error(enum exchange_failure why, int wstatus, int oom, int self_signal,
                             double timeout_s, size_t max_response)
{
    if (why == EX_TIMEOUT)
        return bb_error_new(BB_ERR_TIMEOUT, "the block ran past its %g s timeout and was killed",
                            timeout_s);
    if (why == EX_DESYNC)
        return bb_error_new(BB_ERR_INVALID_RESPONSE,
                            "the worker sent a response nobody asked for (its frames no longer "
                            "match the requests)");
    if (why == EX_OVERSIZE)
        return bb_error_new(BB_ERR_OUTPUT_LIMIT,
                            "the block's response exceeded %zu bytes and was refused", max_response);
    if (oom)
        return bb_error_new(BB_ERR_MEMORY_LIMIT, "the block exceeded its memory limit and was killed");
    /* The host's listener ended the worker for a fatal signal it sent itself (jail:
     * notify.c): the kernel's SIGKILL stands for that signal. */
    if (self_signal > 0 && WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
        return bb_error_new(BB_ERR_SANDBOX_CRASH, "the worker was killed by %s (signal %d, which the "
                            "block sent itself)", signal_name(self_signal), self_signal);
    if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        if (sig == SIGSYS)
            return bb_error_new(BB_ERR_SANDBOX_VIOLATION,
                                "the block was killed by the seccomp filter (blocked system call)");
        if (sig == SIGXCPU)
            return bb_error_new(BB_ERR_TIMEOUT, "the block used up its CPU time and was killed");
        return bb_error_new(BB_ERR_SANDBOX_CRASH, "the worker was killed by %s (signal %d)",
                            signal_name(sig), sig);
    }
    if (WIFEXITED(wstatus))
        return bb_error_new(BB_ERR_SANDBOX_CRASH, "the worker exited with status %d without answering",
                            WEXITSTATUS(wstatus));
    return bb_error_new(BB_ERR_SANDBOX_CRASH, "the worker stopped answering");
}

/* Runs one frame through a block's worker, starting one if needed. On any failure
 * the worker is reaped, so the next call starts afresh (init runs again). */
static int block_exchange(local_state *st, local_block *b, const char *body, size_t len,
                          long timeout_ms, bb_reply *reply, bb_error **err)
{
    long long deadline = now_ms() + timeout_ms;
    enum exchange_failure why = exchange(st, &b->w, body, len, deadline, reply);
    if (why == EX_OK) {
        b->w.runs++;
        return 0;
    }
    int wstatus = 0, oom = 0;
    int self_signal = bb_notifier_fatal_signal(st->notifier, b->w.notify);
    int reaped = reap_worker(st, &b->w, &wstatus, &oom);
    b->need_code = 1;
    bb_error *e = reaped || why != EX_DIED
                      ? death_error(why, wstatus, oom, self_signal, (double)timeout_ms / 1000.0,
                                    st->max_response)
                      : bb_error_new(BB_ERR_BACKEND_UNAVAILABLE,
                                     "the sandbox zygote died and took the worker with it; it was "
                                     "restarted");
    bb_fail(err, e->kind, "%s; the worker was replaced and init will run again on the next call",
            e->message);
    bb_error_free(e);
    return -1;
}

/* ---- the driver ------------------------------------------------------- */

static int local_open(const bb_config *cfg, void **state, bb_error **err)
{
    if (!cfg->allow_execution)
        return bb_fail(err, BB_ERR_EXECUTION_DISABLED,
                       "custom Python execution is disabled on this host "
                       "(ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS=False)");
    unsigned require = 0, disable = 0;
    if (bb_layers_parse(cfg->require, &require, err) < 0 ||
        bb_layers_parse(cfg->insecure_disable, &disable, err) < 0)
        return -1;
    if (require & disable)
        return bb_fail(err, BB_ERR_CONFIGURATION,
                       "a jail layer is both required and disabled (BLOCKBOX_REQUIRE, "
                       "BLOCKBOX_INSECURE_DISABLE_LAYERS)");
    if (disable)
        fprintf(stderr, "blockbox: WARNING: jail layers switched off by "
                        "BLOCKBOX_INSECURE_DISABLE_LAYERS=%s (tests only)\n", cfg->insecure_disable);
    if (cfg->policy_file && strlen(cfg->policy_file) >= sizeof((bb_zinit *)0)->policy_path)
        return bb_fail(err, BB_ERR_CONFIGURATION, "BLOCKBOX_POLICY_FILE path is too long");
    local_state *st = calloc(1, sizeof *st);
    if (!st)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->pool_lock, NULL);
    pthread_cond_init(&st->pool_cond, NULL);
    st->ctl = -1;
    st->worker_path = find_worker(cfg);
    st->spare_target = cfg->spare_workers;
    st->timeout_ms = (long)(cfg->timeout_s * 1000.0);
    st->spares = calloc((size_t)st->spare_target + 1, sizeof *st->spares);
    st->retired_cap = 256;
    st->retired = calloc(st->retired_cap, sizeof *st->retired);
    bb_limits_default(&st->limits);
    st->limits.max_input_bytes = (size_t)cfg->max_input_bytes;
    st->limits.max_result_bytes = (size_t)cfg->max_output_bytes;
    st->limits.max_stream_bytes = (size_t)cfg->max_stream_bytes;
    st->limits.max_depth = (int)cfg->max_depth;
    st->limits.max_values = (size_t)cfg->max_json_values;
    st->max_response = bb_limits_max_response(&st->limits);
    st->init = (bb_zinit){
        .memory_bytes = (int64_t)cfg->memory_mb << 20,
        .cpu_seconds = cfg->cpu_seconds > 0 ? cfg->cpu_seconds : cfg->timeout_s + 1.0,
        .max_threads = cfg->max_threads,
        .max_open_files = cfg->max_open_files,
        .max_file_bytes = (int64_t)cfg->max_file_mb << 20,
        .tmpfs_bytes = (int64_t)cfg->tmpfs_mb << 20,
        .require = require,
        .disable = disable,
        .flags = cfg->cgroup_leaf ? 0 : BB_ZINIT_NO_CGROUP_LEAF,
        .max_stream_bytes = cfg->max_stream_bytes,
        .max_result_bytes = cfg->max_output_bytes,
    };
    if (cfg->policy_file)
        snprintf(st->init.policy_path, sizeof st->init.policy_path, "%s", cfg->policy_file);
    if (!st->worker_path || !st->spares || !st->retired) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        goto fail;
    }
    st->notifier = bb_notifier_start(err);
    if (!st->notifier)
        goto fail;
    if (zygote_start(st, err) < 0)
        goto fail;
    if (pthread_create(&st->keeper, NULL, keeper_main, st) != 0) {
        bb_fail(err, BB_ERR_INTERNAL, "cannot start the worker keeper thread");
        zygote_stop(st);
        goto fail;
    }
    st->keeper_running = 1;
    *state = st;
    return 0;
fail:
    bb_notifier_stop(st->notifier);
    free(st->worker_path);
    free(st->spares);
    free(st->retired);
    pthread_cond_destroy(&st->pool_cond);
    pthread_mutex_destroy(&st->pool_lock);
    pthread_mutex_destroy(&st->lock);
    free(st);
    return -1;
}

static int local_load(void *state, const bb_block_info *info, void **block_state, bb_error **err)
{
    local_state *st = state;
    local_block *b = calloc(1, sizeof *b);
    if (!b)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    b->max_inputs = info->max_inputs;
    b->load_envelope = malloc(info->load_envelope_len + 1);
    if (!b->load_envelope) {
        free(b);
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    memcpy(b->load_envelope, info->load_envelope, info->load_envelope_len + 1);
    b->load_len = info->load_envelope_len;
    if (take_worker(st, &b->w, err) < 0)
        goto fail;
    /* Eager load: compile and run init now, so a broken block fails here. */
    bb_reply reply = {0};
    if (block_exchange(st, b, b->load_envelope, b->load_len, st->timeout_ms, &reply, err) < 0)
        goto fail;
    bb_wire_response resp = {0};
    int rc = bb_wire_parse_response_owned(reply.body, reply.len, &st->limits, &resp, err);   /* frees it */
    free(reply.denied);
    if (rc == 0 && !resp.success) {
        bb_error *e = bb_error_block(resp.error_type, resp.error, resp.line_number,
                                     resp.function_name, resp.traceback);
        if (err && !*err)
            *err = e;
        else
            bb_error_free(e);
        rc = -1;
    }
    bb_wire_response_clear(&resp);
    if (rc < 0)
        goto fail;
    b->w.runs = 0;   /* the load is not a run */
    b->need_code = 0;
    *block_state = b;
    return 0;
fail:
    retire_worker(st, &b->w);
    free(b->load_envelope);
    free(b);
    return -1;
}

static int local_run(void *state, void *block_state, const bb_call *call, bb_reply *reply,
                     bb_error **err)
{
    local_state *st = state;
    local_block *b = block_state;
    if (!b->w.pid) {
        if (take_worker(st, &b->w, err) < 0)
            return -1;
        b->need_code = 1;
    }
    size_t len;
    const char *body = bb_call_envelope(call, b->need_code, &len);
    if (!body)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    if (block_exchange(st, b, body, len, bb_call_timeout_ms(call), reply, err) < 0)
        return -1;
    b->need_code = 0;
    if (b->max_inputs > 0 && b->w.runs >= b->max_inputs)
        retire_worker(st, &b->w);   /* recycled: the next run starts afresh */
    return 0;
}

static void local_unload(void *state, void *block_state)
{
    local_state *st = state;
    local_block *b = block_state;
    if (!b)
        return;
    retire_worker(st, &b->w);
    free(b->load_envelope);
    free(b);
}

static char *local_describe(void *state)
{
    local_state *st = state;
    bb_buf out = {0};
    pthread_mutex_lock(&st->lock);
    pthread_mutex_lock(&st->pool_lock);
    bb_buf_printf(&out, "{\"driver\":\"local\",\"zygote_pid\":%d,\"zygote_starts\":%lu,\"layers\":[",
                  (int)st->zygote_pid, st->zygote_starts);
    int first = 1;
    for (unsigned bit = 1; bit < BB_LAYER_ALL; bit <<= 1)
        if (st->layers & bit) {
            bb_buf_printf(&out, "%s\"%s\"", first ? "" : ",", bb_layer_name(bit));
            first = 0;
        }
    bb_buf_printf(&out, "],\"spare_workers\":%zu,\"warnings\":", st->nspares);
    bb_buf_json_string(&out, st->warnings, strlen(st->warnings));
    bb_buf_putc(&out, '}');
    pthread_mutex_unlock(&st->pool_lock);
    pthread_mutex_unlock(&st->lock);
    return bb_buf_steal(&out, NULL);
}

static void local_close(void *state)
{
    local_state *st = state;
    if (!st)
        return;
    pthread_mutex_lock(&st->pool_lock);
    st->stopping = 1;
    pthread_cond_signal(&st->pool_cond);
    pthread_mutex_unlock(&st->pool_lock);
    if (st->keeper_running)
        pthread_join(st->keeper, NULL);
    for (size_t i = 0; i < st->nspares; i++)
        reap_worker(st, &st->spares[i], NULL, NULL);
    for (size_t i = 0; i < st->nretired; i++)
        reap_pid(st, st->retired[i].pid, NULL, NULL);
    zygote_stop(st);   /* the zygote kills whatever is left and exits */
    bb_notifier_stop(st->notifier);
    pthread_cond_destroy(&st->pool_cond);
    pthread_mutex_destroy(&st->pool_lock);
    pthread_mutex_destroy(&st->lock);
    free(st->spares);
    free(st->retired);
    free(st->worker_path);
    free(st);
}

const bb_driver bb_local_driver = {
    .abi_version = BB_DRIVER_ABI_VERSION,
    .name = "local",
    .summary = "a forked CPython worker in a seccomp-BPF jail on this host",
    .open = local_open,
    .load = local_load,
    .run = local_run,
    .unload = local_unload,
    .describe = local_describe,
    .close = local_close,
};
