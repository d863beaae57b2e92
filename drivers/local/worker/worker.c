/* worker.c: a jailed worker of blockbox-worker, in the child the zygote forked: finishes
 * its jail, maps the buffer arenas, then serves request frames until its input closes. */
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

#include "zygote.h"

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

void bb_worker_main(zygote *z, int slot, int release_fd, int report, int in_fd, int out_fd,
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
