/* notify.c: the host side of the seccomp jail: one thread per local driver answers
 * every worker's denied calls (EPERM; signals to itself as CPython) and records them. */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "seccomp.h"

/* Distinct calls kept per window; more are still counted. */
#define MAX_UNIQUE 32
#define KIND_HANDOFF 0u
#define KIND_LISTENER 1u

typedef struct watch {
    unsigned long handle;   /* 0: free */
    int handoff;            /* host end of the hand-off socket; -1 once used */
    int listener;           /* the worker's seccomp listener; -1 until it arrived */
    int nrs[MAX_UNIQUE];
    unsigned n_unique;
    unsigned long count;
    int fatal_signal;       /* the worker signalled itself to death with this (0: no) */
} watch;

struct bb_notifier {
    pthread_mutex_t lock;   /* the table; held while a notification is answered */
    pthread_t thread;
    int epfd;
    int wake[2];            /* written once to stop the thread */
    watch *w;
    size_t nw;
    unsigned long next_handle;
};

static watch *find(bb_notifier *n, unsigned long handle)
{
    for (size_t i = 0; i < n->nw; i++)
        if (n->w[i].handle == handle)
            return &n->w[i];
    return NULL;
}

static void close_watch(bb_notifier *n, watch *w)
{
    if (w->handoff >= 0) {
        epoll_ctl(n->epfd, EPOLL_CTL_DEL, w->handoff, NULL);
        close(w->handoff);
    }
    if (w->listener >= 0) {
        epoll_ctl(n->epfd, EPOLL_CTL_DEL, w->listener, NULL);
        close(w->listener);
    }
    memset(w, 0, sizeof *w);
    w->handoff = w->listener = -1;
}

static void record(watch *w, int nr)
{
    w->count++;
    for (unsigned i = 0; i < w->n_unique; i++)
        if (w->nrs[i] == nr)
            return;
    if (w->n_unique < MAX_UNIQUE)
        w->nrs[w->n_unique++] = nr;
}

/* ---- signals a worker sends itself ---------------------------------------------
 * As pid 1 of its pid namespace the worker would never see its own signals with the
 * default action (the kernel drops them), so the host plays the kernel's part: a
 * caught, ignored or blocked signal, or one ignored by default, is delivered as asked
 * (the call continues), a default "stop" stops the worker, and a default
 * "terminate"/"core" kills it and is remembered so the death is reported as that
 * signal. Everything is read from the kernel (/proc, the notification), and acted on
 * through a pidfd checked against the pending notification (no pid reuse). */

/* Tgid and the signal masks of a thread, and its tgid in its own pid namespace. */
typedef struct sigstate {
    long tgid, ns_tgid;
    unsigned long long blocked, ignored, caught;
} sigstate;

static int read_sigstate(pid_t tid, sigstate *out)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int seen = 0;
    memset(out, 0, sizeof *out);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Tgid:", 5) == 0 && sscanf(line + 5, "%ld", &out->tgid) == 1)
            seen |= 1;
        else if (strncmp(line, "NStgid:", 7) == 0) {
            char *save = NULL;
            for (char *tok = strtok_r(line + 7, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
                out->ns_tgid = strtol(tok, NULL, 10);   /* the innermost is last */
            seen |= 2;
        } else if (strncmp(line, "SigBlk:", 7) == 0 && sscanf(line + 7, "%llx", &out->blocked) == 1)
            seen |= 4;
        else if (strncmp(line, "SigIgn:", 7) == 0 && sscanf(line + 7, "%llx", &out->ignored) == 1)
            seen |= 8;
        else if (strncmp(line, "SigCgt:", 7) == 0 && sscanf(line + 7, "%llx", &out->caught) == 1)
            seen |= 16;
    }
    fclose(f);
    return seen == 31 ? 0 : -1;
}

enum { SIG_ACT_DELIVER, SIG_ACT_STOP, SIG_ACT_KILL };

static int default_action(int sig)
{
    switch (sig) {
    case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:
        return SIG_ACT_DELIVER;   /* ignored by default: the kernel does just that */
    case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
        return SIG_ACT_STOP;
    default:
        return SIG_ACT_KILL;   /* terminate or core, real-time signals included */
    }
}

/* The notification is a kill/tgkill; returns 1 if it was aimed at the worker itself
 * and has been answered, 0 if it is an ordinary denial. Lock held. */
static int self_signal(watch *w, const struct seccomp_notif *req)
{
    int is_kill = req->data.nr == SYS_kill;
    int target = (int)req->data.args[0];
    int sig = (int)(is_kill ? req->data.args[1] : req->data.args[2]);
    sigstate ss;
    if (read_sigstate((pid_t)req->pid, &ss) < 0)
        return 0;
    if (!(target == ss.ns_tgid || (is_kill && target == 0)))
        return 0;   /* another process (or every one, -1): denied */
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)ss.tgid, 0);
    if (pidfd < 0)
        return 0;
    /* Still pending means the caller is still waiting: ss and the pidfd are its. */
    if (ioctl(w->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0) {
        close(pidfd);
        return 1;   /* gone meanwhile: nothing to answer */
    }
    /* sig 0 ("does it exist"), bad numbers (EINVAL), a bad tid (ESRCH): the kernel
     * answers those itself when the call continues. */
    int act = SIG_ACT_DELIVER;
    if (sig <= 0 || sig > 64)
        act = SIG_ACT_DELIVER;
    else if (sig == SIGKILL)
        act = SIG_ACT_KILL;
    else {
        unsigned long long bit = 1ULL << (sig - 1);
        if (!((ss.blocked | ss.ignored | ss.caught) & bit))
            act = default_action(sig);
    }
    if (act == SIG_ACT_KILL) {
        if (!w->fatal_signal)
            w->fatal_signal = sig;
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    } else if (act == SIG_ACT_STOP) {
        syscall(SYS_pidfd_send_signal, pidfd, SIGSTOP, NULL, 0);
    }
    close(pidfd);
    bb_seccomp_respond(w->listener, req->id, 0, act == SIG_ACT_DELIVER);
    return 1;
}

static void arm(bb_notifier *n, int fd, unsigned long handle, unsigned kind)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)handle << 1 | kind};
    epoll_ctl(n->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* One readiness report: lock held. */
static void serve(bb_notifier *n, watch *w, unsigned kind, uint32_t events)
{
    if (kind == KIND_HANDOFF) {
        if (w->handoff < 0)
            return;
        int fd = bb_seccomp_recv_fd(w->handoff);
        if (fd == -EAGAIN && !(events & (EPOLLHUP | EPOLLERR)))
            return;
        /* Used (or broken): the socket is done either way. A worker that sent no
         * listener exits (fail closed); its denials, if any, get ENOSYS. */
        epoll_ctl(n->epfd, EPOLL_CTL_DEL, w->handoff, NULL);
        close(w->handoff);
        w->handoff = -1;
        if (fd >= 0) {
            w->listener = fd;
            arm(n, fd, w->handle, KIND_LISTENER);
        }
        return;
    }
    if (w->listener < 0)
        return;
    if (events & EPOLLIN) {
        /* Readable means a notification was queued, so RECV cannot block even if it
         * was withdrawn meanwhile (this thread is the only reader). */
        struct seccomp_notif req;
        int rc = bb_seccomp_receive(w->listener, &req);
        if (rc == 0) {
            int nr = req.data.nr;
            if (!((nr == SYS_kill || nr == SYS_tgkill) && self_signal(w, &req))) {
                record(w, nr);   /* before the answer: complete when the reply comes */
                if (bb_seccomp_respond(w->listener, req.id, EPERM, 0) < 0)
                    events |= EPOLLHUP;
            }
        } else if (rc < 0)
            events |= EPOLLHUP;
    }
    if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
        /* Every task of the filter is gone. */
        epoll_ctl(n->epfd, EPOLL_CTL_DEL, w->listener, NULL);
        close(w->listener);
        w->listener = -1;
    }
}

static void *notifier_main(void *arg)
{
    bb_notifier *n = arg;
    struct epoll_event evs[32];
    for (;;) {
        int k = epoll_wait(n->epfd, evs, 32, -1);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        pthread_mutex_lock(&n->lock);
        int stop = 0;
        for (int i = 0; i < k; i++) {
            uint64_t d = evs[i].data.u64;
            if (d == 0) {
                stop = 1;
                continue;
            }
            watch *w = find(n, (unsigned long)(d >> 1));
            if (w)   /* else removed since epoll_wait returned */
                serve(n, w, (unsigned)(d & 1), evs[i].events);
        }
        pthread_mutex_unlock(&n->lock);
        if (stop)
            break;
    }
    return NULL;
}

bb_notifier *bb_notifier_start(bb_error **err)
{
    bb_notifier *n = calloc(1, sizeof *n);
    if (!n) {
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    n->wake[0] = n->wake[1] = -1;
    n->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (n->epfd < 0 || pipe2(n->wake, O_CLOEXEC) < 0) {
        bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "seccomp listener set-up: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->wake[0], &ev) < 0) {
        bb_fail(err, BB_ERR_BACKEND_UNAVAILABLE, "seccomp listener set-up: %s", strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&n->lock, NULL);
    n->next_handle = 1;
    if (pthread_create(&n->thread, NULL, notifier_main, n) != 0) {
        pthread_mutex_destroy(&n->lock);
        bb_fail(err, BB_ERR_INTERNAL, "cannot start the seccomp listener thread");
        goto fail;
    }
    return n;
fail:
    if (n->epfd >= 0)
        close(n->epfd);
    for (int i = 0; i < 2; i++)
        if (n->wake[i] >= 0)
            close(n->wake[i]);
    free(n);
    return NULL;
}

void bb_notifier_stop(bb_notifier *n)
{
    if (!n)
        return;
    char byte = 's';
    while (write(n->wake[1], &byte, 1) < 0 && errno == EINTR)
        ;
    pthread_join(n->thread, NULL);
    for (size_t i = 0; i < n->nw; i++)
        if (n->w[i].handle)
            close_watch(n, &n->w[i]);
    free(n->w);
    close(n->epfd);
    close(n->wake[0]);
    close(n->wake[1]);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

unsigned long bb_notifier_add(bb_notifier *n, int handoff, bb_error **err)
{
    pthread_mutex_lock(&n->lock);
    watch *w = find(n, 0);
    if (!w) {
        watch *grown = realloc(n->w, (n->nw * 2 + 8) * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&n->lock);
            close(handoff);
            bb_fail(err, BB_ERR_INTERNAL, "out of memory");
            return 0;
        }
        for (size_t i = n->nw; i < n->nw * 2 + 8; i++) {
            memset(&grown[i], 0, sizeof grown[i]);
            grown[i].handoff = grown[i].listener = -1;
        }
        n->w = grown;
        w = &n->w[n->nw];
        n->nw = n->nw * 2 + 8;
    }
    memset(w, 0, sizeof *w);
    w->handle = n->next_handle++;
    w->handoff = handoff;
    w->listener = -1;
    fcntl(handoff, F_SETFL, O_NONBLOCK);
    arm(n, handoff, w->handle, KIND_HANDOFF);
    unsigned long h = w->handle;
    pthread_mutex_unlock(&n->lock);
    return h;
}

void bb_notifier_remove(bb_notifier *n, unsigned long handle)
{
    if (!n || !handle)
        return;
    pthread_mutex_lock(&n->lock);
    watch *w = find(n, handle);
    if (w)
        close_watch(n, w);
    pthread_mutex_unlock(&n->lock);
}

void bb_notifier_begin(bb_notifier *n, unsigned long handle)
{
    if (!n || !handle)
        return;
    pthread_mutex_lock(&n->lock);
    watch *w = find(n, handle);
    if (w) {
        w->n_unique = 0;
        w->count = 0;
    }
    pthread_mutex_unlock(&n->lock);
}

int bb_notifier_fatal_signal(bb_notifier *n, unsigned long handle)
{
    int sig = 0;
    if (!n || !handle)
        return 0;
    pthread_mutex_lock(&n->lock);
    watch *w = find(n, handle);
    if (w)
        sig = w->fatal_signal;
    pthread_mutex_unlock(&n->lock);
    return sig;
}

char *bb_notifier_take(bb_notifier *n, unsigned long handle, unsigned long *count)
{
    int nrs[MAX_UNIQUE];
    unsigned k = 0;
    unsigned long total = 0;
    if (n && handle) {
        pthread_mutex_lock(&n->lock);
        watch *w = find(n, handle);
        if (w) {
            k = w->n_unique;
            memcpy(nrs, w->nrs, k * sizeof nrs[0]);
            total = w->count;
        }
        pthread_mutex_unlock(&n->lock);
    }
    if (count)
        *count = total;
    bb_buf out = {0};
    for (unsigned i = 0; i < k; i++) {
        char name[48];
        bb_seccomp_syscall_name(nrs[i], name, sizeof name);
        bb_buf_printf(&out, "%s%s", i ? "," : "", name);
    }
    return bb_buf_steal(&out, NULL);
}
