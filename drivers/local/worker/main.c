/* main.c: blockbox-worker, the zygote. It embeds CPython, warms numpy, cv2 and the
 * runtime once, never runs user code, and forks one jailed worker per request. */
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "layers.h"
#include "layers_info.h"
#include "policy.h"
#include "proto.h"
#include "seccomp.h"

extern const char bb_runtime_py[];
extern const size_t bb_runtime_py_len;

#define MAX_SLOTS 1024

/* The zygote's state: one per process (the zygote is a process of its own). */
typedef struct zygote {
    int ctl;
    bb_zinit init;
    bb_seccomp_program prog;
    bb_layers *layers;
    PyObject *runtime_module;
    pid_t slot_pid[MAX_SLOTS];   /* live workers by slot; 0 = free */
    unsigned char dying[MAX_SLOTS]; /* killed on DISCARD, reaped when they are gone */
    /* Forked workers not yet released: the zygote maps their ids and cgroups when
     * they say they have unshared, while it goes on serving requests. */
    struct pending {
        int ready_r;    /* the child writes 'r' (or 'f' + reason) here; -1: none */
        int release_w;  /* we write 'g' here once the child is mapped and attached */
        int out_fd;     /* the worker's response pipe, to report a failure on */
    } pending[MAX_SLOTS];
} zygote;

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

/* ---- the worker: runs in the child after the jail is built --------------- */

/* Writes a ConfigurationError response frame saying the sandbox could not be built. */
static void write_setup_failure(int fd, const char *what)
{
    char body[1400];
    char safe[1100];
    size_t j = 0;
    for (size_t i = 0; what[i] && j < sizeof safe - 1; i++)
        safe[j++] = (what[i] == '"' || what[i] == '\\' || (unsigned char)what[i] < 0x20) ? '\'' : what[i];
    safe[j] = '\0';
    int n = snprintf(body, sizeof body,
                     "{\"success\":false,\"error_type\":\"ConfigurationError\",\"error\":\"the "
                     "sandbox could not be built: %s\",\"stdout\":\"\",\"stderr\":\"\"}",
                     safe);
    unsigned char hdr[4];
    bb_frame_header((uint32_t)n, hdr);
    if (bb_write_all(fd, hdr, 4) == 0)
        (void)bb_write_all(fd, body, (size_t)n);
}

/* A setup failure in the child is reported as a response frame; nothing untrusted
 * was read. */
static void worker_fail(const char *what)
{
    write_setup_failure(BB_WORKER_OUT_FD, what);
    _exit(BB_SETUP_FAILED_STATUS);
}

/* Serves frames until the executor closes the request pipe. */
static void worker_serve(PyObject *runtime)
{
    for (;;) {
        unsigned char hdr[4];
        if (bb_read_all(BB_WORKER_IN_FD, hdr, 4) < 0)
            _exit(0);
        uint32_t len = bb_frame_length(hdr);
        PyObject *frame = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
        if (!frame)
            _exit(3);
        if (bb_read_all(BB_WORKER_IN_FD, PyBytes_AS_STRING(frame), len) < 0)
            _exit(0);
        PyObject *reply = PyObject_CallMethod(runtime, "handle_bytes", "O", frame);
        Py_DECREF(frame);
        if (!reply || !PyBytes_Check(reply) || PyBytes_GET_SIZE(reply) > (Py_ssize_t)UINT32_MAX) {
            PyErr_Clear();
            _exit(4);
        }
        bb_frame_header((uint32_t)PyBytes_GET_SIZE(reply), hdr);
        if (bb_write_all(BB_WORKER_OUT_FD, hdr, 4) < 0 ||
            bb_write_all(BB_WORKER_OUT_FD, PyBytes_AS_STRING(reply), (size_t)PyBytes_GET_SIZE(reply)) < 0)
            _exit(0);
        Py_DECREF(reply);
    }
}

/* Moves fd to target without leaving it close-on-exec or open twice. */
static int move_fd(int fd, int target)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0);
    if (dup2(fd, target) < 0)
        return -1;
    close(fd);
    return 0;
}

static void worker_main(zygote *z, int slot, int release_fd, int in_fd, int out_fd, int handoff_fd)
{
    char err[512];
    /* Wait until the zygote has mapped our ids and put us in our cgroups. */
    char go;
    if (bb_read_all(release_fd, &go, 1) < 0 || go != 'g')
        _exit(BB_SETUP_FAILED_STATUS);
    close(release_fd);
    /* fds: 3 = requests, 4 = responses, 5 = the seccomp hand-off socket (closed before
     * any request is read), 0-2 = /dev/null, nothing else. */
    int hi_in = fcntl(in_fd, F_DUPFD_CLOEXEC, 10), hi_out = fcntl(out_fd, F_DUPFD_CLOEXEC, 10);
    int hi_handoff = fcntl(handoff_fd, F_DUPFD_CLOEXEC, 10);
    if (hi_in < 0 || hi_out < 0 || hi_handoff < 0)
        _exit(BB_SETUP_FAILED_STATUS);
    close(in_fd);
    close(out_fd);
    close(handoff_fd);
    if (move_fd(hi_in, BB_WORKER_IN_FD) < 0 || move_fd(hi_out, BB_WORKER_OUT_FD) < 0 ||
        move_fd(hi_handoff, BB_SECCOMP_HANDOFF_FD) < 0)
        _exit(BB_SETUP_FAILED_STATUS);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0)
        worker_fail("cannot open /dev/null");
    if (syscall(SYS_close_range, BB_SECCOMP_HANDOFF_FD + 1, ~0U, 0) < 0)
        worker_fail("cannot close inherited descriptors");
    if (setsid() < 0)
        worker_fail("setsid failed");
    if (bb_layers_child_setup(z->layers, slot, err, sizeof err) < 0)
        worker_fail(err);
    /* fds 1 and 2: unnamed files in the worker's own /tmp (its tmpfs and cap), so that
     * sys.stdout/stderr have a fileno() (faulthandler, C extensions); the runtime adds
     * what lands there to the captured streams after each call. /dev/null otherwise. */
    int have_files = 1;
    for (int fd = 1; fd <= 2; fd++) {
        int f = open("/tmp", O_TMPFILE | O_RDWR | O_APPEND | O_CLOEXEC, 0600);
        if (f < 0 || dup2(f, fd) < 0)
            have_files = 0;
        if (f >= 0)
            close(f);
    }
    if (!have_files && (dup2(0, 1) < 0 || dup2(0, 2) < 0))
        worker_fail("cannot set up fds 1 and 2");
    /* Fresh entropy for numpy's and Python's global generators (issue 8 item 6). */
    PyObject *seeded = PyObject_CallMethod(z->runtime_module, "fresh_entropy", NULL);
    if (!seeded)
        worker_fail("the random generators could not be reseeded");
    Py_DECREF(seeded);
    /* The runtime object for this worker is made before the filter, so nothing it
     * needs at construction is denied; it has read no untrusted byte yet. */
    PyObject *limits = Py_BuildValue("{s:L,s:L}", "max_stream_bytes", (long long)z->init.max_stream_bytes,
                                     "max_result_bytes", (long long)z->init.max_result_bytes);
    if (limits && have_files) {
        PyObject *one = PyLong_FromLong(1), *two = PyLong_FromLong(2);
        if (!one || !two || PyDict_SetItemString(limits, "stdout_fd", one) < 0 ||
            PyDict_SetItemString(limits, "stderr_fd", two) < 0)
            Py_CLEAR(limits);
        Py_XDECREF(one);
        Py_XDECREF(two);
    }
    PyObject *runtime = limits ? PyObject_CallMethod(z->runtime_module, "Runtime", "O", limits) : NULL;
    Py_XDECREF(limits);
    if (!runtime)
        worker_fail("the runtime could not start");
    PyRun_SimpleString("import os\nos.environ.clear()\n");
    if (!(z->init.disable & BB_LAYER_SECCOMP)) {
        /* From here every denied call waits for the host's answer (EPERM) on the
         * listener, which goes to the host at once; the host records each denial where
         * block code cannot reach it (issue 8 item 3). */
        int listener = -1;
        if (bb_seccomp_apply(&z->prog, &listener) < 0)
            worker_fail("the seccomp filter could not be loaded");
        if (bb_seccomp_send_fd(BB_SECCOMP_HANDOFF_FD, listener) < 0)
            _exit(BB_SETUP_FAILED_STATUS);   /* nobody could answer our denials */
        close(listener);
    }
    close(BB_SECCOMP_HANDOFF_FD);
    worker_serve(runtime);
    _exit(0);
}

/* ---- the zygote loop ------------------------------------------------------- */

static void reply(zygote *z, int32_t status, int32_t pid, int32_t wstatus_or_layers, const char *text)
{
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.magic = BB_ZYGOTE_MAGIC;
    m.op = BB_ZOP_REPLY;
    m.status = status;
    m.pid = pid;
    m.layers = (uint32_t)wstatus_or_layers;
    if (text)
        snprintf(m.text, sizeof m.text, "%s", text);
    (void)bb_zsend(z->ctl, &m, NULL, 0);
}

static int slot_alloc(zygote *z)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (!z->slot_pid[i])
            return i;
    return -1;
}

static int slot_of(const zygote *z, pid_t pid)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (z->slot_pid[i] == pid)
            return i;
    return -1;
}

static void do_spawn(zygote *z, int in_fd, int out_fd, int handoff_fd)
{
    char err[512];
    int slot = slot_alloc(z);
    int to_child[2] = {-1, -1}, to_parent[2] = {-1, -1};
    if (in_fd < 0 || out_fd < 0 || handoff_fd < 0 || slot < 0 || pipe2(to_child, O_CLOEXEC) < 0 ||
        pipe2(to_parent, O_CLOEXEC) < 0) {
        reply(z, -1, 0, 0, slot < 0 ? "too many live workers" : "spawn: bad descriptors");
        goto out;
    }
    if (bb_layers_before_fork(z->layers, err, sizeof err) < 0) {
        reply(z, -1, 0, 0, err);
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
        if (bb_layers_child_unshare(z->layers, err, sizeof err) < 0) {
            (void)bb_write_all(to_parent[1], "f", 1);
            (void)bb_write_all(to_parent[1], err, strnlen(err, sizeof err - 1));
            _exit(BB_SETUP_FAILED_STATUS);
        }
        (void)bb_write_all(to_parent[1], "r", 1);
        close(to_parent[1]);
        worker_main(z, slot, to_child[0], in_fd, out_fd, handoff_fd);
    }
    PyOS_AfterFork_Parent();
    if (pid < 0) {
        snprintf(err, sizeof err, "fork failed: %s", strerror(errno));
        (void)bb_layers_after_clone(z->layers, -1, slot, NULL, 0);   /* back to our own pid ns */
        reply(z, -1, 0, 0, err);
        goto out;
    }
    close(to_parent[1]);
    to_parent[1] = -1;
    z->slot_pid[slot] = pid;
    /* The child unshares on its own; finish_pending releases it. Until then it has
     * read nothing, and what the executor sends waits in the pipe. */
    z->pending[slot] = (struct pending){.ready_r = to_parent[0], .release_w = to_child[1],
                                        .out_fd = out_fd};
    to_parent[0] = to_child[1] = -1;
    out_fd = -1;
    reply(z, 0, pid, 0, NULL);
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
}

static void drop_pending(zygote *z, int slot)
{
    struct pending *p = &z->pending[slot];
    if (p->ready_r < 0)
        return;
    close(p->ready_r);
    close(p->release_w);
    close(p->out_fd);
    *p = (struct pending){-1, -1, -1};
}

/* The child of `slot` has unshared (or failed to): map its ids, attach its cgroups,
 * release it. A failure is written to the worker's response pipe and the worker is
 * killed; the executor reaps it like any dead worker. */
static void finish_pending(zygote *z, int slot)
{
    struct pending *p = &z->pending[slot];
    char err[512] = "";
    char ready = 0;
    if (bb_read_all(p->ready_r, &ready, 1) < 0)
        snprintf(err, sizeof err, "the worker died while it was being set up");
    else if (ready == 'f') {
        ssize_t n = read(p->ready_r, err, sizeof err - 1);
        err[n > 0 ? n : 0] = '\0';
    } else if (ready != 'r')
        snprintf(err, sizeof err, "the worker sent a bad set-up message");
    else if (bb_layers_after_clone(z->layers, z->slot_pid[slot], slot, err, sizeof err) == 0 &&
             bb_write_all(p->release_w, "g", 1) == 0)
        err[0] = '\0';
    else if (!err[0])
        snprintf(err, sizeof err, "the worker could not be released");
    if (ready != 'r' || err[0]) {
        kill(z->slot_pid[slot], SIGKILL);
        write_setup_failure(p->out_fd, err[0] ? err : "unknown set-up failure");
    }
    drop_pending(z, slot);
}

static void do_reap(zygote *z, pid_t pid)
{
    int slot = slot_of(z, pid);
    if (pid <= 0 || slot < 0) {
        reply(z, -1, pid, 0, "no such worker");
        return;
    }
    drop_pending(z, slot);
    kill(pid, SIGKILL);   /* a zombie until we wait: the pid cannot have been reused */
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    int oom = 0;
    bb_layers_worker_gone(z->layers, pid, slot, &oom);
    z->slot_pid[slot] = 0;
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.magic = BB_ZYGOTE_MAGIC;
    m.op = BB_ZOP_REPLY;
    m.pid = pid;
    m.status = wstatus;
    m.oom = oom;
    (void)bb_zsend(z->ctl, &m, NULL, 0);
}

/* Kills a worker nobody needs the exit status of; it is reaped once it is gone
 * (reap_dying), so the executor never waits for a dying process's teardown. */
static void do_discard(zygote *z, pid_t pid)
{
    int slot = slot_of(z, pid);
    if (pid <= 0 || slot < 0) {
        reply(z, -1, pid, 0, "no such worker");
        return;
    }
    drop_pending(z, slot);
    kill(pid, SIGKILL);
    z->dying[slot] = 1;
    reply(z, 0, pid, 0, NULL);
}

/* Reaps discarded workers that have finished dying; never blocks. */
static void reap_dying(zygote *z)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (!z->dying[i])
            continue;
        if (waitpid(z->slot_pid[i], NULL, WNOHANG) == 0)
            continue;
        int oom;
        bb_layers_worker_gone(z->layers, z->slot_pid[i], i, &oom);
        z->slot_pid[i] = 0;
        z->dying[i] = 0;
    }
}

static void shutdown_all(zygote *z)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (!z->slot_pid[i])
            continue;
        drop_pending(z, i);
        kill(z->slot_pid[i], SIGKILL);
        waitpid(z->slot_pid[i], NULL, 0);
        int oom;
        bb_layers_worker_gone(z->layers, z->slot_pid[i], i, &oom);
        z->slot_pid[i] = 0;
        z->dying[i] = 0;
    }
    bb_layers_free(z->layers);
}

/* Waits until the control socket or a pending child has something. Finishes the
 * ready children itself; returns how many it finished (0: the socket is readable). */
static int wait_for_work(zygote *z)
{
    struct pollfd pfd[MAX_SLOTS + 1];
    int slot_of_pfd[MAX_SLOTS + 1];
    int n = 0;
    pfd[n++] = (struct pollfd){.fd = z->ctl, .events = POLLIN};
    for (int i = 0; i < MAX_SLOTS; i++)
        if (z->pending[i].ready_r >= 0) {
            slot_of_pfd[n] = i;
            pfd[n++] = (struct pollfd){.fd = z->pending[i].ready_r, .events = POLLIN};
        }
    if (n == 1)
        return 0;   /* nothing pending: block in recvmsg */
    while (poll(pfd, (nfds_t)n, -1) < 0)
        if (errno != EINTR)
            return 0;
    int finished = 0;
    for (int k = 1; k < n; k++)
        if (pfd[k].revents) {
            finish_pending(z, slot_of_pfd[k]);
            finished++;
        }
    if (finished && (pfd[0].revents & (POLLIN | POLLHUP)))
        return 0;   /* serve the socket too, now */
    return finished;
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
        reply(&z, -1, 0, 0, e ? e->message : "the seccomp policy could not be read");
        return 3;
    }
    if (bb_seccomp_compile(policy, &z.prog, &e) < 0) {
        reply(&z, -1, 0, 0, e ? e->message : "the seccomp policy could not be compiled");
        return 3;
    }
    bb_policy_free(policy);
    z.layers = bb_layers_zygote_setup(&jc, err, sizeof err);
    if (!z.layers) {
        reply(&z, -1, 0, 0, err);
        return 3;
    }
    if (python_start(&z, err, sizeof err) < 0) {
        reply(&z, -1, 0, 0, err);
        return 3;
    }
    /* The reply names every layer that is not active, so none is missing silently. */
    reply(&z, 0, getpid(), (int32_t)(bb_layers_active(z.layers) |
                                     (jc.disable & BB_LAYER_SECCOMP ? 0 : BB_LAYER_SECCOMP)),
          bb_layers_warnings(z.layers));
    for (int i = 0; i < MAX_SLOTS; i++)
        z.pending[i] = (struct pending){-1, -1, -1};
    for (;;) {
        if (wait_for_work(&z) > 0)
            continue;   /* a pending child was finished; the control socket may wait */
        if (bb_zrecv(z.ctl, &m, fds, BB_ZMSG_MAX_FDS) < 0) {
            if (errno == EPROTO)
                continue;   /* a malformed message: ignore it */
            break;          /* the executor is gone */
        }
        reap_dying(&z);
        if (m.op == BB_ZOP_SPAWN)
            do_spawn(&z, fds[0], fds[1], fds[2]);
        else if (m.op == BB_ZOP_REAP)
            do_reap(&z, m.pid);
        else if (m.op == BB_ZOP_DISCARD)
            do_discard(&z, m.pid);
        else {
            for (int i = 0; i < BB_ZMSG_MAX_FDS; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            reply(&z, -1, 0, 0, "unknown request");
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
