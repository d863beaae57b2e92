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

/* The zygote's state: one per process (the zygote is a process of its own). */
typedef struct zygote {
    int ctl;
    bb_zinit init;
    bb_seccomp_program prog;
    bb_layers *layers;
    PyObject *runtime_module;
    uint32_t serial;             /* the last worker id handed out */
    int nbusy;                   /* slots not free */
    /* Workers by slot. A worker that exits is reaped at once (its cgroups removed)
     * and its status kept until the executor asks for it (REAP) or waives it. */
    struct slot {
        enum { SLOT_FREE, SLOT_LIVE, SLOT_EXITED, SLOT_DISCARDED } state;
        pid_t pid;
        uint32_t wid;
        int wstatus, oom;
        int setup_done;          /* the worker said 'o': its jail is complete */
        char setup_err[400];     /* why its set-up failed ("" if it did not) */
    } slot[BB_LAYERS_MAX_SLOTS];
    /* Forked workers whose set-up is not finished: the zygote maps their ids and
     * cgroups when they say they have unshared, while it goes on serving requests,
     * then listens for the end of their set-up ('o', or 'f' + reason, or EOF). */
    struct pending {
        int ready_r;    /* the child's report pipe; -1: none */
        int release_w;  /* we write 'g' here once the child is mapped and attached */
        int released;
    } pending[BB_LAYERS_MAX_SLOTS];
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

/* A set-up failure in the child goes to the zygote on the report pipe (fd 5, or the
 * pipe's first fd before the move), never onto the response pipe: nothing a block
 * can write looks like the sandbox's own failure. Nothing untrusted was read. */
static int report_fd = BB_WORKER_REPORT_FD;

static void worker_fail(const char *what)
{
    if (bb_write_all(report_fd, "f", 1) == 0)
        (void)bb_write_all(report_fd, what, strnlen(what, 400));
    _exit(BB_SETUP_FAILED_STATUS);
}

/* Reads exactly len bytes with the GIL released, so the block's own threads run
 * while the worker waits for the executor. 0, or -1 on EOF or error. */
static int read_released(int fd, void *buf, size_t len)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = bb_read_all(fd, buf, len);
    Py_END_ALLOW_THREADS
    return rc;
}

static int write_released(int fd, const void *buf, size_t len)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = bb_write_all(fd, buf, len);
    Py_END_ALLOW_THREADS
    return rc;
}

/* The input arena, mapped privately (copy-on-write: a block may write into its input
 * arrays; those pages become its own, charged to it). A range no block holds any more is
 * given back after each reply, so the next request there reads what the executor wrote.
 * One per worker process. */
static unsigned char *arena_in_base;
static size_t arena_in_len;

typedef struct ranges {
    uint32_t n;
    uint64_t off[64], len[64];
} ranges;

static uint32_t get32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* n (offset, length) pairs at p, kept when inside the arena. */
static void read_ranges(const unsigned char *p, uint32_t n, ranges *out)
{
    out->n = 0;
    for (uint32_t i = 0; i < n && out->n < 64; i++) {
        uint64_t off = get32le(p + 16 * i) | (uint64_t)get32le(p + 16 * i + 4) << 32;
        uint64_t len = get32le(p + 16 * i + 8) | (uint64_t)get32le(p + 16 * i + 12) << 32;
        if (off <= arena_in_len && len <= arena_in_len - off) {
            out->off[out->n] = off;
            out->len[out->n++] = len;
        }
    }
}

static int held_at(const ranges *held, uint64_t off)
{
    for (uint32_t i = 0; i < held->n; i++)
        if (held->off[i] == off)
            return 1;
    return 0;
}

/* After a reply: this request's input ranges and the ranges held before, unless still
 * held, drop this process's copies (MADV_DONTNEED on a private file mapping). */
static void release_inputs(const ranges *sent, ranges *held_before, const PyObject *reply)
{
    if (!arena_in_base)
        return;
    const unsigned char *r = (const unsigned char *)PyBytes_AS_STRING(reply);
    Py_ssize_t rlen = PyBytes_GET_SIZE(reply);
    ranges held = {0};
    if (rlen >= 12 && memcmp(r, "\0BT1", 4) == 0) {
        uint32_t nheld = get32le(r + 4), nout = get32le(r + 8);
        if (nheld <= 64 && nout <= 64 && (size_t)rlen >= 12 + 16 * (size_t)(nout + nheld))
            read_ranges(r + 12 + 16 * (size_t)nout, nheld, &held);
    }
    long page = sysconf(_SC_PAGESIZE);
    const ranges *lists[2] = {sent, held_before};
    for (int l = 0; l < 2; l++)
        for (uint32_t i = 0; i < lists[l]->n; i++) {
            uint64_t off = lists[l]->off[i], len = lists[l]->len[i];
            if (held_at(&held, off) || !len || off % (uint64_t)page)
                continue;
            uint64_t span = (len + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page;
            if (span > arena_in_len - off)
                span = arena_in_len - off;
            (void)madvise(arena_in_base + off, (size_t)span, MADV_DONTNEED);
        }
    *held_before = held;
}

/* Serves frames until the executor closes the request pipe. Each reply carries the
 * id of the request it answers (proto.h). */
static void worker_serve(PyObject *runtime)
{
    ranges held = {0};
    for (;;) {
        unsigned char hdr[BB_FRAME_HEADER_BYTES];
        if (read_released(BB_WORKER_IN_FD, hdr, sizeof hdr) < 0)
            _exit(0);
        uint32_t len = bb_frame_length(hdr);
        PyObject *frame = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
        if (!frame)
            _exit(3);
        if (read_released(BB_WORKER_IN_FD, PyBytes_AS_STRING(frame), len) < 0)
            _exit(0);
        ranges sent = {0};
        const unsigned char *f = (const unsigned char *)PyBytes_AS_STRING(frame);
        if (len >= 12 && memcmp(f, "\0BT1", 4) == 0 && get32le(f + 8) <= 64 &&
            len >= 12 + 16 * get32le(f + 8))
            read_ranges(f + 12, get32le(f + 8), &sent);
        PyObject *reply = PyObject_CallMethod(runtime, "handle_bytes", "O", frame);
        Py_DECREF(frame);
        if (!reply || !PyBytes_Check(reply) || PyBytes_GET_SIZE(reply) > (Py_ssize_t)UINT32_MAX) {
            PyErr_Clear();
            _exit(4);
        }
        release_inputs(&sent, &held, reply);
        bb_frame_header((uint32_t)PyBytes_GET_SIZE(reply), hdr);   /* the id stays as it came */
        if (write_released(BB_WORKER_OUT_FD, hdr, sizeof hdr) < 0 ||
            write_released(BB_WORKER_OUT_FD, PyBytes_AS_STRING(reply), (size_t)PyBytes_GET_SIZE(reply)) < 0)
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

/* Maps one buffer arena (drivers/local/shm.h) at its sealed size and closes the fd:
 * from here the worker holds no descriptor of shared memory, so block code can make no
 * other mapping of it (none executable; nothing to pass on). */
static void *map_arena(int fd, int prot, int flags, size_t *size)
{
    struct stat st;
    void *p = NULL;
    *size = 0;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        p = mmap(NULL, (size_t)st.st_size, prot, flags, fd, 0);
        if (p == MAP_FAILED)
            p = NULL;
        else
            *size = (size_t)st.st_size;
    }
    close(fd);
    if (!p)
        worker_fail("cannot map the buffer arena");
    return p;
}

static void worker_main(zygote *z, int slot, int release_fd, int report, int in_fd, int out_fd,
                        int handoff_fd, int proc_fd, int arena_in_fd, int arena_out_fd)
{
    char err[512];
    report_fd = report;
    /* Wait until the zygote has mapped our ids and put us in our cgroups. */
    char go;
    if (bb_read_all(release_fd, &go, 1) < 0 || go != 'g')
        _exit(BB_SETUP_FAILED_STATUS);
    close(release_fd);
    /* In our cgroups now: the arena pages we write are charged to us. */
    size_t arena_in_size = 0, arena_out_size = 0;
    /* in: private over a read-only descriptor (writes are this process's own copies,
     * never the executor's file); out: shared, written for the executor to read */
    void *arena_in = map_arena(arena_in_fd, PROT_READ | PROT_WRITE, MAP_PRIVATE, &arena_in_size);
    void *arena_out = map_arena(arena_out_fd, PROT_READ | PROT_WRITE, MAP_SHARED, &arena_out_size);
    arena_in_base = arena_in;
    arena_in_len = arena_in_size;
    /* fds: 3 = requests, 4 = responses, 5 = the seccomp hand-off socket, 6 = the
     * set-up report to the zygote (5 and 6 closed before any request is read),
     * 0-2 = /dev/null, nothing else. */
    int hi_in = fcntl(in_fd, F_DUPFD_CLOEXEC, 10), hi_out = fcntl(out_fd, F_DUPFD_CLOEXEC, 10);
    int hi_handoff = fcntl(handoff_fd, F_DUPFD_CLOEXEC, 10);
    int hi_rep = fcntl(report, F_DUPFD_CLOEXEC, 10);
    int hi_proc = proc_fd >= 0 ? fcntl(proc_fd, F_DUPFD_CLOEXEC, 10) : -1;
    if (hi_in < 0 || hi_out < 0 || hi_handoff < 0 || hi_rep < 0 || (proc_fd >= 0 && hi_proc < 0))
        worker_fail("cannot move the worker's descriptors");
    close(in_fd);
    close(out_fd);
    close(handoff_fd);
    close(report);
    if (proc_fd >= 0)
        close(proc_fd);
    report_fd = hi_rep;
    /* fd 7 (until child_setup attaches it): the worker's detached /proc */
    if (move_fd(hi_in, BB_WORKER_IN_FD) < 0 || move_fd(hi_out, BB_WORKER_OUT_FD) < 0 ||
        move_fd(hi_handoff, BB_SECCOMP_HANDOFF_FD) < 0 || move_fd(hi_rep, BB_WORKER_REPORT_FD) < 0 ||
        (hi_proc >= 0 && dup3(hi_proc, BB_WORKER_REPORT_FD + 1, O_CLOEXEC) < 0))
        worker_fail("cannot move the worker's descriptors");
    report_fd = BB_WORKER_REPORT_FD;
    if (hi_proc >= 0) {
        close(hi_proc);
        proc_fd = BB_WORKER_REPORT_FD + 1;
    }
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0)
        worker_fail("cannot open /dev/null");
    if (syscall(SYS_close_range, BB_WORKER_REPORT_FD + (proc_fd >= 0 ? 2 : 1), ~0U, 0) < 0)
        worker_fail("cannot close inherited descriptors");
    if (setsid() < 0)
        worker_fail("setsid failed");
    /* W^X for what the zygote left (read while the host's /proc is still there). */
    if (!(z->init.disable & BB_LAYER_SECCOMP) && bb_seccomp_seal_wx() < 0)
        worker_fail("cannot seal the writable executable memory inherited from the zygote");
    if (bb_layers_child_setup(z->layers, slot, proc_fd, err, sizeof err) < 0)
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
    if (limits && arena_in && arena_out) {
        /* the arenas as memoryviews (shm.h): inputs copy-on-write, outputs shared */
        PyObject *in = PyMemoryView_FromMemory(arena_in, (Py_ssize_t)arena_in_size, PyBUF_WRITE);
        PyObject *out = PyMemoryView_FromMemory(arena_out, (Py_ssize_t)arena_out_size, PyBUF_WRITE);
        if (!in || !out || PyDict_SetItemString(limits, "frames_in", in) < 0 ||
            PyDict_SetItemString(limits, "frames_out", out) < 0)
            Py_CLEAR(limits);
        Py_XDECREF(in);
        Py_XDECREF(out);
    }
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
    /* Set up: say so and close the report pipe before reading any untrusted byte. */
    if (bb_write_all(BB_WORKER_REPORT_FD, "o", 1) < 0 || close(BB_WORKER_REPORT_FD) < 0)
        _exit(BB_SETUP_FAILED_STATUS);
    worker_serve(runtime);
    _exit(0);
}

/* ---- the zygote loop ------------------------------------------------------- */

static void reply_to(zygote *z, uint32_t seq, int32_t status, int32_t pid, int32_t layers,
                     const char *text)
{
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.magic = BB_ZYGOTE_MAGIC;
    m.op = BB_ZOP_REPLY;
    m.seq = seq;
    m.status = status;
    m.pid = pid;
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
        worker_main(z, slot, to_child[0], to_parent[1], in_fd, out_fd, handoff_fd, proc_fd, arena_in,
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
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.magic = BB_ZYGOTE_MAGIC;
    m.op = BB_ZOP_REPLY;
    m.seq = seq;
    m.pid = pid;
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
    bb_zmsg m;
    memset(&m, 0, sizeof m);
    m.magic = BB_ZYGOTE_MAGIC;
    m.op = BB_ZOP_REPLY;
    m.seq = req->seq;
    m.pid = s->pid;
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
