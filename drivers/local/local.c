/* local.c: the local driver's vtable and run path. Takes jailed workers from the pool
 * (pool.c) and moves request/response frames under a deadline and a per-run CPU budget. */
#include <blockbox/driver.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "jail.h"
#include "notify.h"
#include "pool.h"
#include "proto.h"
#include "shm.h"
#include "zclient.h"

/* How often a waiting call reads its worker's CPU time (per-run CPU budget). */
#define CPU_TICK_MS 100
/* RLIMIT_CPU is a lifetime limit a worker cannot re-arm (no CAP_SYS_RESOURCE), so it
 * cannot be the per-run limit: the executor measures each run instead (below) and
 * the rlimit is set out of the way. */
#define LIFETIME_CPU_SECONDS 1e9

typedef struct local_state {
    bb_pool *pool;               /* workers: spawned, kept as spares, retired (pool.c) */
    bb_notifier *notifier;       /* the pool's: answers and records denied calls (jail) */
    size_t max_response;
    size_t max_result_bytes;
    long timeout_ms;
    long cpu_ms;                 /* CPU time per run (load or call) */
    /* Arena pages are kept while an instance is in use and given back once it has been
     * idle this long (shm.h bb_shm_release; 0: after every call), by the sweeper. */
    long arena_idle_ms;
    pthread_mutex_t blocks_lock;   /* the list, the sweeper's flags */
    pthread_cond_t sweep_cond;
    struct local_block *blocks;
    pthread_t sweeper;
    int sweeper_running, stopping;
} local_state;

typedef struct local_block {
    bb_worker w;
    int need_code;          /* the worker has not loaded this block yet */
    int lost_state;         /* its worker was replaced after a failure: module state is gone */
    int max_inputs;
    char *load_envelope;
    size_t load_len;
    pthread_mutex_t lock;   /* its worker: a run, or the sweeper's release */
    int unreleased;         /* a call since its arena was last released */
    long long last_call_ms;
    struct local_block *next;   /* st->blocks */
} local_block;

/* ---- frames ------------------------------------------------------------ */

enum exchange_failure {
    EX_OK,
    EX_IDLE_DEAD,   /* the worker was gone before it was sent anything */
    EX_TIMEOUT,
    EX_CPU,         /* it used up the run's CPU budget */
    EX_DIED,
    EX_OVERSIZE,
    EX_DESYNC,      /* a reply out of turn, with another request's id, or two replies */
};

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

/* Waits for fd to be ready for `events` until the deadline, reading the worker's
 * CPU time every CPU_TICK_MS: 1 ready, 0 timed out, 2 over its CPU budget, -1 error. */
static int wait_worker(const local_state *st, const bb_worker *w, int fd, short events,
                       long long deadline, long long cpu_base)
{
    for (;;) {
        long long now = bb_now_ms();
        long long left = deadline - now;
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > CPU_TICK_MS ? CPU_TICK_MS : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
        long long cpu = bb_pool_cpu_ms(st->pool, w);
        if (cpu >= 0 && cpu - cpu_base > st->cpu_ms)
            return 2;
    }
}

static enum exchange_failure waited(int r)
{
    return r == 0 ? EX_TIMEOUT : r == 2 ? EX_CPU : EX_DIED;
}

/* Sends one frame (with a fresh random id) and reads its one reply, all before the
 * deadline and within the CPU budget. */
static enum exchange_failure exchange(local_state *st, bb_worker *w, const bb_buf *prefix,
                                      const char *body, size_t len, long long deadline, bb_reply *reply)
{
    unsigned char hdr[BB_FRAME_HEADER_BYTES], id[BB_FRAME_ID_BYTES];
    size_t plen = prefix ? prefix->len : 0;
    if (len > UINT32_MAX - plen)
        return EX_OVERSIZE;
    if (bb_pool_gone_idle(st->pool, w))
        return EX_IDLE_DEAD;
    /* Nothing may be waiting before we ask: bytes there are a reply out of turn. */
    struct pollfd early = {.fd = w->resp_r, .events = POLLIN};
    if (poll(&early, 1, 0) > 0 && (early.revents & POLLIN))
        return EX_DESYNC;
    if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id)
        return EX_DIED;
    long long cpu_base = bb_pool_cpu_ms(st->pool, w);
    if (cpu_base < 0)
        return EX_IDLE_DEAD;   /* the process is gone */
    bb_notifier_begin(st->notifier, w->notify);   /* this call's denials from here */
    bb_frame_header((uint32_t)(plen + len), hdr);
    memcpy(hdr + 4, id, sizeof id);
    const char *parts[3] = {(const char *)hdr, plen ? prefix->data : "", body};
    size_t sizes[3] = {sizeof hdr, plen, len};
    size_t sent = 0;
    for (int i = 0; i < 3; i++) {
        size_t off = 0;
        while (off < sizes[i]) {
            ssize_t n = write_nosigpipe(w->req_w, parts[i] + off, sizes[i] - off);
            if (n > 0) {
                off += (size_t)n;
                sent += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN) {
                int r = wait_worker(st, w, w->req_w, POLLOUT, deadline, cpu_base);
                if (r == 1)
                    continue;
                return waited(r);
            }
            /* EPIPE before a byte went in: it died idle and read nothing */
            return sent == 0 ? EX_IDLE_DEAD : EX_DIED;
        }
    }
    size_t got = 0, need = sizeof hdr;
    char *buf = NULL;
    while (got < need) {
        char *dst = buf ? buf + (got - sizeof hdr) : (char *)hdr + got;
        ssize_t n = read(w->resp_r, dst, need - got);
        if (n > 0) {
            got += (size_t)n;
            if (!buf && got >= 4 && bb_frame_length(hdr) > st->max_response)
                return EX_OVERSIZE;   /* refused at once, before the rest of the header */
            if (!buf && got == sizeof hdr) {
                if (memcmp(hdr + 4, id, sizeof id) != 0)
                    return EX_DESYNC;   /* not the reply to this request */
                size_t flen = bb_frame_length(hdr);
                buf = malloc(flen + 1);
                if (!buf)
                    return EX_OVERSIZE;
                need = sizeof hdr + flen;
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
            int r = wait_worker(st, w, w->resp_r, POLLIN, deadline, cpu_base);
            if (r == 1)
                continue;
            free(buf);
            return waited(r);
        }
        free(buf);
        return EX_DIED;
    }
    if (!buf) {
        buf = malloc(1);
        if (!buf)
            return EX_OVERSIZE;
    }
    /* Exactly one reply per request: more bytes already there mean a second frame. */
    struct pollfd late = {.fd = w->resp_r, .events = POLLIN};
    if (poll(&late, 1, 0) > 0 && (late.revents & POLLIN)) {
        free(buf);
        return EX_DESYNC;
    }
    buf[need - sizeof hdr] = '\0';
    /* Complete: each denial is recorded before the denied call returns, so before
     * the worker could write this reply. */
    char *denied = bb_notifier_take(st->notifier, w->notify, NULL);
    if (!denied) {
        free(buf);
        return EX_OVERSIZE;
    }
    reply->body = buf;
    reply->len = need - sizeof hdr;
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

/* Why a worker stopped answering, as an error of the right kind. Evidence the
 * trusted side saw wins: an OOM kill in the worker's cgroup is MemoryLimit even when
 * the deadline passed first (a worker thrashing at its cap under load). */
static bb_error *death_error(const local_state *st, enum exchange_failure why, const bb_reap_info *ri,
                             double timeout_s, long long waited_ms)
{
    if (why == EX_DESYNC)
        return bb_error_new(BB_ERR_INVALID_RESPONSE,
                            "the worker sent a frame that is not the one reply to this request "
                            "(out of turn, another request's id, or a second reply)");
    if (why == EX_OVERSIZE)
        return bb_error_new(BB_ERR_OUTPUT_LIMIT,
                            "the block's response exceeded %zu bytes and was refused", st->max_response);
    if (ri->reaped && ri->oom == 1)
        return bb_error_new(BB_ERR_MEMORY_LIMIT, "the block exceeded its memory limit and was killed");
    /* On a loaded host a worker can thrash at its cap past its deadline before the
     * OOM killer picks it: at the cap when time ran out is a memory failure. */
    if (ri->reaped && ri->oom == 2 && (why == EX_TIMEOUT || why == EX_CPU))
        return bb_error_new(BB_ERR_MEMORY_LIMIT, "the block reached its memory limit and was still at it "
                            "when its time ran out; it was killed");
    if (why == EX_TIMEOUT && waited_ms >= 100)
        return bb_error_new(BB_ERR_TIMEOUT,
                            "the call ran past its %g s timeout (%.1f s of it waiting for a worker) "
                            "and the block was killed", timeout_s, (double)waited_ms / 1000.0);
    if (why == EX_TIMEOUT)
        return bb_error_new(BB_ERR_TIMEOUT, "the block ran past its %g s timeout and was killed",
                            timeout_s);
    if (why == EX_CPU)
        return bb_error_new(BB_ERR_TIMEOUT,
                            "the block used more than its %g s of CPU time in this run and was killed",
                            (double)st->cpu_ms / 1000.0);
    if (!ri->reaped)
        return bb_error_new(BB_ERR_BACKEND_UNAVAILABLE,
                            "the sandbox zygote died and took the worker with it; it is being restarted");
    if (ri->setup_failed)
        return bb_error_new(BB_ERR_CONFIGURATION, "the sandbox could not be built: %s", ri->setup_error);
    int wstatus = ri->wstatus;
    /* The host's listener ended the worker for a fatal signal it sent itself (jail:
     * notify.c): the kernel's SIGKILL stands for that signal. */
    if (ri->self_signal > 0 && WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
        return bb_error_new(BB_ERR_SANDBOX_CRASH, "the worker was killed by %s (signal %d, which the "
                            "block sent itself)", signal_name(ri->self_signal), ri->self_signal);
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

/* Runs one frame through the block's worker, starting one if needed. A worker
 * found dead before it was sent anything is replaced and the frame goes to the new
 * one (with the code, so init runs again): *restarted says so. Any other failure
 * reaps the worker, so the next call starts afresh (init runs again). */
static int block_exchange(local_state *st, local_block *b, const bb_call *call, long long deadline,
                          bb_reply *reply, int *restarted, bb_error **err)
{
    long long started = bb_now_ms(), waited_ms = 0;
    double timeout_s = (double)(deadline - started) / 1000.0;
    enum exchange_failure why = EX_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!b->w.pid) {
            if (bb_pool_take(st->pool, &b->w, deadline, err) < 0)
                return -1;
            b->need_code = 1;
        }
        size_t len = b->load_len;
        const char *body = b->load_envelope;
        char *owned = NULL;
        bb_buf prefix = {0};
        /* a call's buffers go into this worker's arena; the table leads the frame */
        if (call && bb_shm_request(&b->w.shm, call, b->need_code, &prefix, &owned, &body, &len, err) < 0) {
            bb_buf_free(&prefix);
            return -1;
        }
        waited_ms = bb_now_ms() - started;
        why = exchange(st, &b->w, call ? &prefix : NULL, body, len, deadline, reply);
        free(owned);
        bb_buf_free(&prefix);
        if (why != EX_IDLE_DEAD)
            break;
        bb_pool_retire(st->pool, &b->w);   /* it read nothing: nothing of this call is lost */
        if (b->w.runs > 0 || !b->need_code || b->lost_state)
            *restarted = 1;
    }
    if (why == EX_OK) {
        b->w.runs++;
        return 0;
    }
    bb_reap_info ri;
    if (why == EX_IDLE_DEAD) {
        bb_pool_retire(st->pool, &b->w);
        memset(&ri, 0, sizeof ri);
        ri.reaped = 1;
        why = EX_DIED;
    } else {
        bb_pool_reap(st->pool, &b->w, &ri);
    }
    b->need_code = 1;
    b->lost_state = 1;
    bb_error *e = death_error(st, why, &ri, timeout_s, waited_ms);
    bb_fail(err, e->kind, "%s; the worker was replaced and init will run again on the next call",
            e->message);
    bb_error_free(e);
    return -1;
}

/* ---- arena pages (attack note F3) ------------------------------------ */

/* Gives back the arenas of instances idle for arena_idle_ms: a block in a run is
 * passed over (trylock) and looked at again later; waits untimed while none is due. */
static void *sweeper_main(void *arg)
{
    local_state *st = arg;
    pthread_mutex_lock(&st->blocks_lock);
    while (!st->stopping) {
        long long now = bb_now_ms(), next = 0;
        for (local_block *b = st->blocks; b; b = b->next) {
            if (pthread_mutex_trylock(&b->lock) != 0) {
                next = next && next < now + st->arena_idle_ms ? next : now + st->arena_idle_ms;
                continue;
            }
            if (b->unreleased) {
                long long due = b->last_call_ms + st->arena_idle_ms;
                if (due <= now) {
                    bb_shm_release(&b->w.shm);
                    b->unreleased = 0;
                } else if (!next || due < next) {
                    next = due;
                }
            }
            pthread_mutex_unlock(&b->lock);
        }
        if (st->stopping)
            break;
        if (!next) {
            pthread_cond_wait(&st->sweep_cond, &st->blocks_lock);
        } else {
            struct timespec ts = {(time_t)(next / 1000), (long)(next % 1000) * 1000000L};
            pthread_cond_timedwait(&st->sweep_cond, &st->blocks_lock, &ts);
        }
    }
    pthread_mutex_unlock(&st->blocks_lock);
    return NULL;
}

/* After a call (b->lock held): the arena is released now (arena_idle_ms 0) or left for
 * the sweeper, which is woken if it was waiting for nothing. */
static int call_done(local_state *st, local_block *b)
{
    if (st->arena_idle_ms == 0) {
        bb_shm_release(&b->w.shm);
        return 0;
    }
    int wake = !b->unreleased;
    b->unreleased = 1;
    b->last_call_ms = bb_now_ms();
    return wake;
}

static void wake_sweeper(local_state *st)
{
    pthread_mutex_lock(&st->blocks_lock);
    pthread_cond_signal(&st->sweep_cond);
    pthread_mutex_unlock(&st->blocks_lock);
}

/* ---- the driver ------------------------------------------------------- */

/* The local driver's own settings (the core checks them against this table). */
static const bb_setting local_settings[] = {
    {"memory_mb", "BLOCKBOX_MEMORY_MB", BB_SETTING_LONG, "512", 32, 1 << 20, 0,
     "memory cap per worker in MiB (cgroup v2, v1, else RLIMIT_AS)"},
    {"spare_workers", "BLOCKBOX_SPARE_WORKERS", BB_SETTING_LONG, "1", 0, 64, 0,
     "pre-forked, never-used workers kept ready (local)"},
    {"cpu_seconds", "BLOCKBOX_CPU_SECONDS", BB_SETTING_SECONDS, "0", 100, 86400 * 1000L, BB_SETTING_ZERO_IS_DEFAULT,
     "CPU time per run (load or call), all threads, measured by the executor; 0 means timeout + 1"},
    {"zygote_start_seconds", "BLOCKBOX_ZYGOTE_START_SECONDS", BB_SETTING_SECONDS, "60", 1000, 3600 * 1000L, 0,
     "how long the sandbox zygote may take to start (Python, numpy and cv2 imported, the layers set up and "
     "self-tested) before the start fails; every restart gets as long; raise it on slow or emulated hosts"},
    {"max_threads", "BLOCKBOX_MAX_THREADS", BB_SETTING_LONG, "64", 1, 4096, 0,
     "threads per worker (pids cgroup and RLIMIT_NPROC)"},
    {"max_open_files", "BLOCKBOX_MAX_OPEN_FILES", BB_SETTING_LONG, "256", 16, 65536, 0,
     "open file descriptors per worker"},
    {"max_file_mb", "BLOCKBOX_MAX_FILE_MB", BB_SETTING_LONG, "64", 0, 1 << 20, 0,
     "largest file a worker may write (RLIMIT_FSIZE)"},
    {"tmpfs_mb", "BLOCKBOX_TMPFS_MB", BB_SETTING_LONG, "64", 1, 1 << 20, 0,
     "size of the worker's private writable tmpfs"},
    {"policy_file", "BLOCKBOX_POLICY_FILE", BB_SETTING_STRING, NULL, 0, 0, 0,
     "seccomp policy (OCI JSON); default: policies/default.json, embedded at build time"},
    {"worker_path", "BLOCKBOX_WORKER_PATH", BB_SETTING_STRING, NULL, 0, 0, 0,
     "the blockbox-worker executable; default: next to blockbox, then libexec"},
    {"cgroup_leaf", "BLOCKBOX_CGROUP_LEAF", BB_SETTING_BOOL, "True", 0, 0, 0,
     "cgroup v2: move the processes of the delegated group into its leaf blockbox-host, as systemd's "
     "delegation requires before workers get groups; False never moves this program (v2 is then not used)"},
    {"require", "BLOCKBOX_REQUIRE", BB_SETTING_STRING, NULL, 0, 0, 0,
     "comma list of jail layers that must be present (e.g. userns,netns,cgroup); 'all' for every one"},
    {"arena_idle_ms", "BLOCKBOX_ARENA_IDLE_MS", BB_SETTING_LONG, "1000", 0, 86400000L, 0,
     "an instance idle this long (ms) gives back its buffer arena's pages; 0: after every call"},
    {"insecure_disable", "BLOCKBOX_INSECURE_DISABLE_LAYERS", BB_SETTING_STRING, NULL, 0, 0, 0,
     "TESTS ONLY: comma list of jail layers to switch off, to prove each one matters; a warning is printed"},
};

static int local_open(const bb_config *cfg, void **state, bb_error **err)
{
    if (!bb_setting_bool(cfg, "allow_execution"))
        return bb_fail(err, BB_ERR_EXECUTION_DISABLED,
                       "custom Python execution is disabled on this host "
                       "(ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS=False)");
    const char *insecure_disable = bb_setting_string(cfg, "insecure_disable");
    const char *policy_file = bb_setting_string(cfg, "policy_file");
    unsigned require = 0, disable = 0;
    if (bb_layers_parse(bb_setting_string(cfg, "require"), &require, err) < 0 ||
        bb_layers_parse(insecure_disable, &disable, err) < 0)
        return -1;
    if (require & disable)
        return bb_fail(err, BB_ERR_CONFIGURATION,
                       "a jail layer is both required and disabled (BLOCKBOX_REQUIRE, "
                       "BLOCKBOX_INSECURE_DISABLE_LAYERS)");
    if (disable)
        fprintf(stderr, "blockbox: WARNING: jail layers switched off by "
                        "BLOCKBOX_INSECURE_DISABLE_LAYERS=%s (tests only)\n", insecure_disable);
    if (policy_file && strlen(policy_file) >= sizeof((bb_zinit *)0)->policy_path)
        return bb_fail(err, BB_ERR_CONFIGURATION, "BLOCKBOX_POLICY_FILE path is too long");
    local_state *st = calloc(1, sizeof *st);
    if (!st)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    char *worker_path = bb_pool_find_worker(bb_setting_string(cfg, "worker_path"));
    double timeout_s = bb_setting_seconds(cfg, "timeout"), cpu_s = bb_setting_seconds(cfg, "cpu_seconds");
    st->timeout_ms = (long)(timeout_s * 1000.0);
    st->cpu_ms = (long)((cpu_s > 0 ? cpu_s : timeout_s + 1.0) * 1000.0);
    st->max_response = bb_driver_max_response(cfg);
    st->max_result_bytes = (size_t)bb_setting_long(cfg, "max_output_bytes");
    bb_zinit init = {
        .memory_bytes = (int64_t)bb_setting_long(cfg, "memory_mb") << 20,
        .cpu_seconds = LIFETIME_CPU_SECONDS,
        .max_threads = bb_setting_long(cfg, "max_threads"),
        .max_open_files = bb_setting_long(cfg, "max_open_files"),
        .max_file_bytes = (int64_t)bb_setting_long(cfg, "max_file_mb") << 20,
        .tmpfs_bytes = (int64_t)bb_setting_long(cfg, "tmpfs_mb") << 20,
        .require = require,
        .disable = disable,
        .flags = bb_setting_bool(cfg, "cgroup_leaf") ? 0 : BB_ZINIT_NO_CGROUP_LEAF,
        .max_stream_bytes = bb_setting_long(cfg, "max_stream_bytes"),
        .max_result_bytes = (long)st->max_result_bytes,
        .max_input_bytes = bb_setting_long(cfg, "max_input_bytes"),
    };
    if (policy_file)
        snprintf(init.policy_path, sizeof init.policy_path, "%s", policy_file);
    if (!worker_path) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        goto fail;
    }
    st->arena_idle_ms = bb_setting_long(cfg, "arena_idle_ms");
    pthread_mutex_init(&st->blocks_lock, NULL);
    bb_cond_init_monotonic(&st->sweep_cond);
    st->pool = bb_pool_open(worker_path, &init, bb_setting_long(cfg, "spare_workers"),
                            (long)(bb_setting_seconds(cfg, "zygote_start_seconds") * 1000.0), err);
    if (!st->pool)
        goto fail;
    st->notifier = bb_pool_notifier(st->pool);
    if (st->arena_idle_ms > 0) {
        if (pthread_create(&st->sweeper, NULL, sweeper_main, st) != 0) {
            bb_pool_close(st->pool);
            bb_fail(err, BB_ERR_INTERNAL, "cannot start the arena sweeper thread");
            goto fail;
        }
        st->sweeper_running = 1;
    }
    free(worker_path);
    *state = st;
    return 0;
fail:
    pthread_cond_destroy(&st->sweep_cond);
    pthread_mutex_destroy(&st->blocks_lock);
    free(worker_path);
    free(st);
    return -1;
}

/* Eager load: compile and run init now, so a broken block fails here. The worker's
 * answer goes back to the core, which checks it (driver.h load_reply). */
static int local_load(void *state, const bb_block_info *info, void **block_state, bb_reply *reply,
                      bb_error **err)
{
    local_state *st = state;
    local_block *b = calloc(1, sizeof *b);
    if (!b)
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    b->w.stat_fd = -1;
    b->max_inputs = info->max_inputs;
    b->load_envelope = malloc(info->load_envelope_len + 1);
    if (!b->load_envelope) {
        free(b);
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    memcpy(b->load_envelope, info->load_envelope, info->load_envelope_len + 1);
    b->load_len = info->load_envelope_len;
    int restarted = 0;
    if (block_exchange(st, b, NULL, bb_now_ms() + st->timeout_ms, reply, &restarted, err) < 0) {
        bb_pool_retire(st->pool, &b->w);
        free(b->load_envelope);
        free(b);
        return -1;
    }
    b->w.runs = 0;   /* the load is not a run */
    b->need_code = 0;
    b->lost_state = 0;
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_lock(&st->blocks_lock);
    b->next = st->blocks;
    st->blocks = b;
    pthread_mutex_unlock(&st->blocks_lock);
    *block_state = b;
    return 0;
}

static int local_run(void *state, void *block_state, const bb_call *call, bb_reply *reply,
                     bb_error **err)
{
    local_state *st = state;
    local_block *b = block_state;
    int restarted = 0, rc = 0;
    long long deadline = bb_now_ms() + bb_call_timeout_ms(call);
    pthread_mutex_lock(&b->lock);
    if (block_exchange(st, b, call, deadline, reply, &restarted, err) < 0) {
        rc = -1;
    } else if (bb_shm_reply(&b->w.shm, reply->body, &reply->len, st->max_result_bytes, reply, err) < 0) {
        /* output buffers: checked against the arena's own size, copied out (shm.c) */
        free(reply->body);
        free(reply->denied);
        for (size_t i = 0; i < reply->n_buffers; i++)
            free(reply->buffers[i].data);
        free(reply->buffers);
        *reply = (bb_reply){0};
        rc = -1;
    } else {
        reply->restarted = restarted || b->lost_state;
        b->need_code = 0;
        b->lost_state = 0;
        if (b->max_inputs > 0 && b->w.runs >= b->max_inputs)
            bb_pool_retire(st->pool, &b->w);   /* recycled: the next run starts afresh */
    }
    int wake = call_done(st, b);
    pthread_mutex_unlock(&b->lock);
    if (wake)
        wake_sweeper(st);
    return rc;
}

static void local_unload(void *state, void *block_state)
{
    local_state *st = state;
    local_block *b = block_state;
    if (!b)
        return;
    pthread_mutex_lock(&st->blocks_lock);   /* the sweeper looks at listed blocks only */
    for (local_block **at = &st->blocks; *at; at = &(*at)->next)
        if (*at == b) {
            *at = b->next;
            break;
        }
    pthread_mutex_unlock(&st->blocks_lock);
    bb_pool_retire(st->pool, &b->w);
    pthread_mutex_destroy(&b->lock);
    free(b->load_envelope);
    free(b);
}

static char *local_describe(void *state)
{
    local_state *st = state;
    pid_t pid;
    unsigned long starts;
    unsigned layers;
    char warnings[1024];
    bb_zclient_info(bb_pool_zclient(st->pool), &pid, &starts, &layers, warnings, sizeof warnings);
    size_t spares = bb_pool_spares(st->pool);
    bb_buf out = {0};
    bb_buf_printf(&out, "{\"driver\":\"local\",\"zygote_pid\":%d,\"zygote_starts\":%lu,\"layers\":[",
                  (int)pid, starts);
    int first = 1;
    for (unsigned bit = 1; bit < BB_LAYER_ALL; bit <<= 1)
        if (layers & bit) {
            bb_buf_printf(&out, "%s\"%s\"", first ? "" : ",", bb_layer_name(bit));
            first = 0;
        }
    bb_buf_printf(&out, "],\"spare_workers\":%zu,\"cpu_ms_per_run\":%ld,\"warnings\":", spares,
                  st->cpu_ms);
    bb_buf_json_string(&out, warnings, strlen(warnings));
    bb_buf_putc(&out, '}');
    return bb_buf_steal(&out, NULL);
}

static void local_close(void *state)
{
    local_state *st = state;
    if (!st)
        return;
    if (st->sweeper_running) {
        pthread_mutex_lock(&st->blocks_lock);
        st->stopping = 1;
        pthread_cond_signal(&st->sweep_cond);
        pthread_mutex_unlock(&st->blocks_lock);
        pthread_join(st->sweeper, NULL);
    }
    bb_pool_close(st->pool);
    pthread_cond_destroy(&st->sweep_cond);
    pthread_mutex_destroy(&st->blocks_lock);
    free(st);
}

const bb_driver bb_local_driver = {
    BB_DRIVER_HEAD,
    .name = "local",
    .summary = "a forked CPython worker in a seccomp-BPF jail on this host",
    .settings = local_settings,
    .n_settings = sizeof local_settings / sizeof local_settings[0],
    .open = local_open,
    .load_reply = local_load,
    .run = local_run,
    .unload = local_unload,
    .describe = local_describe,
    .close = local_close,
};
