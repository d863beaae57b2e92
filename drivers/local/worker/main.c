/* main.c: blockbox-worker, the zygote. It embeds CPython, warms numpy, cv2 and the
 * runtime once, never runs user code, and forks one jailed worker (worker.c) per request. */
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "jail.h"
#include "policy.h"
#include "proto.h"
#include "seccomp.h"

extern const char bb_runtime_py[];
extern const size_t bb_runtime_py_len;

#include "zygote.h"


/* ---- Python ---------------------------------------------------------------- */

static int python_start(zygote *z, char *errbuf, size_t errlen)
{
    /* UTF-8 mode: files, file names, stdin/stdout/stderr and os.fsencode are UTF-8
     * whatever the (empty) environment's locale says (issue 9: 'café' must work). */
    PyPreConfig preconfig;
    PyPreConfig_InitIsolatedConfig(&preconfig);
    preconfig.utf8_mode = 1;
    PyStatus pst = Py_PreInitialize(&preconfig);
    if (PyStatus_Exception(pst)) {
        snprintf(errbuf, errlen, "python failed to pre-initialise: %s", pst.err_msg ? pst.err_msg : "?");
        return -1;
    }
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 1;          /* Debian's dist-packages hold numpy and cv2 */
    config.write_bytecode = 0;
    config.install_signal_handlers = 1; /* SIGPIPE and SIGXFSZ ignored, as python3 does */
    PyStatus st = PyConfig_SetString(&config, &config.program_name, L"/usr/bin/python3");
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        snprintf(errbuf, errlen, "python failed to start: %s", st.err_msg ? st.err_msg : "?");
        return -1;
    }
    PyObject *code = Py_CompileString(bb_runtime_py, "blockbox_runtime.py", Py_file_input);
    PyObject *mod = code ? PyImport_ExecCodeModule("blockbox_runtime", code) : NULL;
    Py_XDECREF(code);
    PyObject *res = mod ? PyObject_CallMethod(mod, "warm_up", NULL) : NULL;
    if (!res) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *s = value ? PyObject_Str(value) : NULL;
        snprintf(errbuf, errlen, "the runtime failed to load: %s",
                 s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "unknown error");
        Py_XDECREF(s);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        Py_XDECREF(mod);
        return -1;
    }
    Py_DECREF(res);
    /* CPython blocks every signal around vfork; a seccomp trap while SIGSYS is
     * blocked kills the worker. Plain fork fails cleanly (EPERM) instead. */
    if (PyRun_SimpleString("import subprocess\nsubprocess._USE_VFORK = False\n") != 0) {
        snprintf(errbuf, errlen, "cannot configure subprocess");
        Py_DECREF(mod);
        return -1;
    }
    z->runtime_module = mod;
    return 0;
}

/* ---- the zygote loop ------------------------------------------------------- */

/* A zeroed reply to request seq about worker pid. */
static bb_zmsg reply_msg(uint32_t seq, int32_t pid)
{
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.magic = BB_ZYGOTE_MAGIC;
    m.op = BB_ZOP_REPLY;
    m.seq = seq;
    m.pid = pid;
    return m;
}

static void reply_to(zygote *z, uint32_t seq, int32_t status, int32_t pid, int32_t layers,
                     const char *text)
{
    bb_zmsg m = reply_msg(seq, pid);
    m.status = status;
    m.layers = (uint32_t)layers;
    if (text)
        snprintf(m.text, sizeof m.text, "%s", text);
    (void)bb_zsend(z->ctl, &m, NULL, 0);
}

static int slot_alloc(zygote *z)
{
    for (int i = 0; i < BB_LAYERS_MAX_SLOTS; i++)
        if (z->slot[i].state == SLOT_FREE)
            return i;
    return -1;
}

static int slot_of_wid(const zygote *z, uint32_t wid, pid_t pid)
{
    for (int i = 0; i < BB_LAYERS_MAX_SLOTS; i++)
        if (z->slot[i].state != SLOT_FREE && z->slot[i].wid == wid && z->slot[i].pid == pid)
            return i;
    return -1;
}

static void slot_free(zygote *z, int i)
{
    memset(&z->slot[i], 0, sizeof z->slot[i]);
    z->nbusy--;
}

static void drop_pending(zygote *z, int slot)
{
    struct pending *p = &z->pending[slot];
    if (p->ready_r < 0)
        return;
    close(p->ready_r);
    if (p->release_w >= 0)
        close(p->release_w);
    *p = (struct pending){-1, -1, 0};
}

static void do_spawn(zygote *z, uint32_t seq, int in_fd, int out_fd, int handoff_fd, int arena_in,
                     int arena_out)
{
    char err[512];
    int slot = slot_alloc(z);
    int to_child[2] = {-1, -1}, to_parent[2] = {-1, -1};
    if (in_fd < 0 || out_fd < 0 || handoff_fd < 0 || slot < 0 || pipe2(to_child, O_CLOEXEC) < 0 ||
        pipe2(to_parent, O_CLOEXEC) < 0) {
        reply_to(z, seq, -1, 0, 0, slot < 0 ? "too many live workers" : "spawn: bad descriptors");
        goto out;
    }
    if (bb_layers_before_fork(z->layers, err, sizeof err) < 0) {
        reply_to(z, seq, -1, 0, 0, err);
        goto out;
    }
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        close(to_child[1]);
        close(to_parent[0]);
        close(z->ctl);
        PyOS_AfterFork_Child();
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
            _exit(BB_SETUP_FAILED_STATUS);
        int proc_fd = -1;
        if (bb_layers_child_unshare(z->layers, &proc_fd, err, sizeof err) < 0) {
            (void)bb_write_all(to_parent[1], "f", 1);
            (void)bb_write_all(to_parent[1], err, strnlen(err, sizeof err - 1));
            _exit(BB_SETUP_FAILED_STATUS);
        }
        (void)bb_write_all(to_parent[1], "r", 1);
        bb_worker_main(z, slot, to_child[0], to_parent[1], in_fd, out_fd, handoff_fd, proc_fd, arena_in,
                    arena_out);
    }
    PyOS_AfterFork_Parent();
    if (pid < 0) {
        snprintf(err, sizeof err, "fork failed: %s", strerror(errno));
        (void)bb_layers_after_clone(z->layers, -1, slot, NULL, 0);   /* back to our own pid ns */
        reply_to(z, seq, -1, 0, 0, err);
        goto out;
    }
    close(to_parent[1]);
    to_parent[1] = -1;
    (void)fcntl(to_parent[0], F_SETFL, O_NONBLOCK);
    z->slot[slot] = (struct slot){.state = SLOT_LIVE, .pid = pid, .wid = ++z->serial};
    if (!z->slot[slot].wid)
        z->slot[slot].wid = ++z->serial;   /* 0 is never an id */
    z->nbusy++;
    /* The child unshares on its own; finish_pending releases it. Until then it has
     * read nothing, and what the executor sends waits in the pipe. */
    z->pending[slot] = (struct pending){.ready_r = to_parent[0], .release_w = to_child[1]};
    to_parent[0] = to_child[1] = -1;
    bb_zmsg m = reply_msg(seq, pid);
    m.wid = z->slot[slot].wid;
    (void)bb_zsend(z->ctl, &m, NULL, 0);
out:
    for (int i = 0; i < 2; i++) {
        if (to_child[i] >= 0)
            close(to_child[i]);
        if (to_parent[i] >= 0)
            close(to_parent[i]);
    }
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    if (handoff_fd >= 0)
        close(handoff_fd);
    if (arena_in >= 0)
        close(arena_in);
    if (arena_out >= 0)
        close(arena_out);
}

static void set_setup_error(struct slot *s, const char *why)
{
    if (!s->setup_err[0])
        snprintf(s->setup_err, sizeof s->setup_err, "%s", why && *why ? why : "unknown set-up failure");
}

/* The report pipe of `slot` has something: before release, 'r' (unshared: map its
 * ids, attach its cgroups, release it) or 'f' + reason; after, 'o' (set up) or
 * 'f' + reason; EOF without 'o' means it died during set-up. A failure kills the
 * worker; the executor learns why from the REAP reply, never from the worker. */
static void finish_pending(zygote *z, int slot)
{
    struct pending *p = &z->pending[slot];
    struct slot *s = &z->slot[slot];
    char buf[512];
    ssize_t n;
    do
        n = read(p->ready_r, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    buf[n > 0 ? n : 0] = '\0';
    char err[512] = "";
    if (n <= 0)
        snprintf(err, sizeof err, "the worker died while it was being set up");
    else if (buf[0] == 'f')
        snprintf(err, sizeof err, "%s", buf + 1);
    else if (!p->released && buf[0] == 'r') {
        if (bb_layers_after_clone(z->layers, s->pid, slot, err, sizeof err) == 0 &&
            bb_write_all(p->release_w, "g", 1) == 0) {
            close(p->release_w);
            p->release_w = -1;
            p->released = 1;
            if (n > 1 && buf[1] == 'o')
                s->setup_done = 1;   /* cannot happen this fast, but is not wrong */
            return;
        }
        if (!err[0])
            snprintf(err, sizeof err, "the worker could not be released");
    } else if (p->released && buf[0] == 'o') {
        s->setup_done = 1;
        drop_pending(z, slot);
        return;
    } else
        snprintf(err, sizeof err, "the worker sent a bad set-up message");
    set_setup_error(s, err);
    if (s->state == SLOT_LIVE || s->state == SLOT_DISCARDED)
        kill(s->pid, SIGKILL);
    drop_pending(z, slot);
}

/* Reads what a dead worker left on its report pipe (it cannot be waited for, or
 * killed: its pid is already reaped). */
static void collect_report(zygote *z, int slot)
{
    struct pending *p = &z->pending[slot];
    struct slot *s = &z->slot[slot];
    if (p->ready_r < 0)
        return;
    char buf[512];
    ssize_t n;
    while ((n = read(p->ready_r, buf, sizeof buf - 1)) > 0) {
        buf[n] = '\0';
        char *f = memchr(buf, 'f', (size_t)n);
        if (memchr(buf, 'o', (size_t)n) && !f)
            s->setup_done = 1;
        if (f)
            set_setup_error(s, f + 1);
    }
    drop_pending(z, slot);
}

/* Reaps every worker that has exited, at once: cgroups removed, status kept for
 * the executor (or dropped, for a discarded one). Never blocks. */
static void reap_exited(zygote *z)
{
    for (;;) {
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, WNOHANG);
        if (pid <= 0)
            return;
        for (int i = 0; i < BB_LAYERS_MAX_SLOTS; i++) {
            struct slot *s = &z->slot[i];
            if ((s->state != SLOT_LIVE && s->state != SLOT_DISCARDED) || s->pid != pid)
                continue;
            collect_report(z, i);   /* the child is dead: whatever it said is there */
            if (!s->setup_done)
                set_setup_error(s, WIFSIGNALED(wstatus) ? "the worker was killed during its set-up"
                                                        : "the worker exited during its set-up");
            int oom = 0;
            bb_layers_worker_gone(z->layers, pid, i, &oom);
            if (s->state == SLOT_DISCARDED) {
                slot_free(z, i);
            } else {
                s->state = SLOT_EXITED;
                s->wstatus = wstatus;
                s->oom = oom;
            }
            break;
        }
    }
}

static void do_reap(zygote *z, const bb_zmsg *req)
{
    int i = slot_of_wid(z, req->wid, req->pid);
    if (req->pid <= 0 || i < 0 || z->slot[i].state == SLOT_DISCARDED) {
        reply_to(z, req->seq, -1, req->pid, 0, "no such worker");
        return;
    }
    struct slot *s = &z->slot[i];
    if (s->state == SLOT_LIVE) {
        /* Killed at its deadline while thrashing at its memory cap: that is a memory
         * failure (oom 2). Read now: once it has exited its memory is uncharged. */
        int at_cap = bb_layers_worker_at_cap(z->layers, s->pid);
        kill(s->pid, SIGKILL);   /* a zombie until we wait: the pid cannot have been reused */
        int wstatus = 0;
        while (waitpid(s->pid, &wstatus, 0) < 0 && errno == EINTR)
            ;
        collect_report(z, i);   /* killed by us: a failure only if it reported one */
        bb_layers_worker_gone(z->layers, s->pid, i, &s->oom);
        if (!s->oom && at_cap)
            s->oom = 2;
        s->wstatus = wstatus;
    }
    bb_zmsg m = reply_msg(req->seq, s->pid);
    m.wid = s->wid;
    m.status = s->wstatus;
    m.oom = s->oom;
    if (s->setup_err[0]) {
        m.setup_failed = 1;
        snprintf(m.text, sizeof m.text, "%s", s->setup_err);
    }
    slot_free(z, i);
    (void)bb_zsend(z->ctl, &m, NULL, 0);
}

/* Kills a worker nobody needs the exit status of; reap_exited reaps it once it is
 * gone, so the executor never waits for a dying process's teardown. */
static void do_discard(zygote *z, const bb_zmsg *req)
{
    int i = slot_of_wid(z, req->wid, req->pid);
    if (req->pid <= 0 || i < 0) {
        reply_to(z, req->seq, -1, req->pid, 0, "no such worker");
        return;
    }
    if (z->slot[i].state == SLOT_EXITED) {
        slot_free(z, i);
    } else if (z->slot[i].state == SLOT_LIVE) {
        drop_pending(z, i);
        kill(z->slot[i].pid, SIGKILL);
        z->slot[i].state = SLOT_DISCARDED;
    }
    reply_to(z, req->seq, 0, req->pid, 0, NULL);
}

static void shutdown_all(zygote *z)
{
    for (int i = 0; i < BB_LAYERS_MAX_SLOTS; i++) {
        struct slot *s = &z->slot[i];
        if (s->state == SLOT_FREE)
            continue;
        drop_pending(z, i);
        if (s->state != SLOT_EXITED) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            int oom;
            bb_layers_worker_gone(z->layers, s->pid, i, &oom);
        }
        slot_free(z, i);
    }
    bb_layers_free(z->layers);
}

/* Exited workers are reaped within this many ms of their death (issue 9). */
#define REAP_POLL_MS 200

/* Waits until the control socket or a pending child has something, or until it is
 * time to look for exited workers. Finishes the ready children and reaps the exited
 * ones itself; returns 1 when the control socket is readable. */
static int wait_for_work(zygote *z)
{
    static struct pollfd pfd[BB_LAYERS_MAX_SLOTS + 1];
    static int slot_of_pfd[BB_LAYERS_MAX_SLOTS + 1];
    int n = 0;
    pfd[n++] = (struct pollfd){.fd = z->ctl, .events = POLLIN};
    for (int i = 0; i < BB_LAYERS_MAX_SLOTS; i++)
        if (z->pending[i].ready_r >= 0) {
            slot_of_pfd[n] = i;
            pfd[n++] = (struct pollfd){.fd = z->pending[i].ready_r, .events = POLLIN};
        }
    int rc = poll(pfd, (nfds_t)n, z->nbusy > 0 ? REAP_POLL_MS : -1);
    if (rc < 0 && errno != EINTR)
        return 1;   /* let recvmsg report the failure */
    for (int k = 1; rc > 0 && k < n; k++)
        if (pfd[k].revents)
            finish_pending(z, slot_of_pfd[k]);
    reap_exited(z);
    return rc > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR));
}

static int zygote_main(void)
{
    static zygote z;   /* one per process */
    z.ctl = BB_ZYGOTE_CTL_FD;
    bb_zmsg m;
    int fds[BB_ZMSG_MAX_FDS];
    if (bb_zrecv(z.ctl, &m, fds, BB_ZMSG_MAX_FDS) < 0 || m.op != BB_ZOP_INIT)
        return 2;
    z.init = m.init;
    char err[1024] = "";
    bb_jail_config jc = {
        .memory_bytes = m.init.memory_bytes,
        .cpu_seconds = m.init.cpu_seconds,
        .max_threads = m.init.max_threads,
        .max_open_files = m.init.max_open_files,
        .max_file_bytes = m.init.max_file_bytes,
        .tmpfs_bytes = m.init.tmpfs_bytes,
        .require = m.init.require,
        .disable = m.init.disable,
        .cgroup_no_leaf = (m.init.flags & BB_ZINIT_NO_CGROUP_LEAF) != 0,
    };
    bb_error *e = NULL;
    bb_policy *policy = NULL;
    if (m.init.policy_path[0] ? bb_policy_load_file(m.init.policy_path, &policy, &e) < 0
                              : bb_policy_load_default(&policy, &e) < 0) {
        reply_to(&z, m.seq, -1, 0, 0, e ? e->message : "the seccomp policy could not be read");
        return 3;
    }
    if (bb_seccomp_compile(policy, &z.prog, &e) < 0) {
        reply_to(&z, m.seq, -1, 0, 0, e ? e->message : "the seccomp policy could not be compiled");
        return 3;
    }
    bb_policy_free(policy);
    z.layers = bb_layers_zygote_setup(&jc, err, sizeof err);
    if (!z.layers) {
        reply_to(&z, m.seq, -1, 0, 0, err);
        return 3;
    }
    if (python_start(&z, err, sizeof err) < 0) {
        reply_to(&z, m.seq, -1, 0, 0, err);
        return 3;
    }
    /* The reply names every layer that is not active, so none is missing silently. */
    reply_to(&z, m.seq, 0, getpid(), (int32_t)(bb_layers_active(z.layers) |
                                     (jc.disable & BB_LAYER_SECCOMP ? 0 : BB_LAYER_SECCOMP)),
          bb_layers_warnings(z.layers));
    for (int i = 0; i < BB_LAYERS_MAX_SLOTS; i++)
        z.pending[i] = (struct pending){-1, -1, 0};
    for (;;) {
        if (!wait_for_work(&z))
            continue;   /* nothing from the executor yet */
        if (bb_zrecv(z.ctl, &m, fds, BB_ZMSG_MAX_FDS) < 0) {
            if (errno == EPROTO)
                continue;   /* a malformed message: ignore it */
            break;          /* the executor is gone */
        }
        if (m.op == BB_ZOP_SPAWN) {
            do_spawn(&z, m.seq, fds[0], fds[1], fds[2], fds[3], fds[4]);
        } else {
            for (int i = 0; i < BB_ZMSG_MAX_FDS; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            if (m.op == BB_ZOP_REAP)
                do_reap(&z, &m);
            else if (m.op == BB_ZOP_DISCARD)
                do_discard(&z, &m);
            else
                reply_to(&z, m.seq, -1, 0, 0, "unknown request");
        }
    }
    shutdown_all(&z);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--zygote") == 0) {
        /* The executor's death closes the control socket; we then clean up and exit. */
        if (fcntl(BB_ZYGOTE_CTL_FD, F_GETFD) < 0) {
            fprintf(stderr, "blockbox-worker: no control socket on fd %d\n", BB_ZYGOTE_CTL_FD);
            return 2;
        }
        return zygote_main();
    }
    fprintf(stderr, "blockbox-worker: started by the blockbox library, not by hand\n"
                    "usage: blockbox-worker --zygote   (control socket on fd 3)\n");
    return 2;
}
