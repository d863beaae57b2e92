/* seccomp_python.c: the default policy against real CPython+numpy+cv2, the way the
 * zygote uses it — warm interpreter, fork, filter, then block-like code in the child. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "notify.h"
#include "policy.h"
#include "seccomp.h"
#include "seccomp_child.h"

/* What the zygote does once: import everything, touch the thread pools. */
static const char warmup[] =
    "import numpy as np, cv2, json, math, time, os, threading, base64, io, re, collections\n"
    "import datetime, statistics, random, hashlib, typing, itertools, functools, traceback\n"
    "np.random.rand(64, 64) @ np.random.rand(64, 64)\n"
    "cv2.resize(np.zeros((32, 32, 3), np.uint8), (8, 8))\n"
    /* The zygote's setting (from the SIGSYS days; harmless now that denials are
     * user notifications, which no signal mask affects). */
    "import subprocess\nsubprocess._USE_VFORK = False\n";

typedef struct py_case {
    const char *name;
    const char *code;         /* must finish without an exception */
    const char *denied;       /* exact denied set expected ("" = nothing trapped), NULL = any */
    const char *must_contain; /* a name the denied set must contain, or NULL */
    int dies_by_sigsys;       /* the child must die by SIGSYS (none does since user notifications) */
} py_case;

static const py_case cases[] = {
    {"typical block work", /* numpy, cv2, json, threads, sleep, files in cwd, stdlib */
     "import statistics, collections, re, datetime, uuid, decimal, fractions, copy, heapq, struct\n"
     "a = np.random.rand(200, 200); b = a @ a.T; np.linalg.svd(b[:40, :40]); np.fft.fft(a[0])\n"
     "np.sort(a, axis=None); np.linalg.inv(b[:20, :20] + np.eye(20)); a.mean(); a.std()\n"
     "img = (np.random.rand(120, 160, 3) * 255).astype(np.uint8)\n"
     "ok, enc = cv2.imencode('.jpg', img); assert ok; dec = cv2.imdecode(enc, cv2.IMREAD_COLOR)\n"
     "ok, enc = cv2.imencode('.png', img); assert ok; cv2.imdecode(enc, cv2.IMREAD_COLOR)\n"
     "g = cv2.cvtColor(dec, cv2.COLOR_BGR2GRAY); cv2.resize(dec, (64, 64)); cv2.GaussianBlur(dec, (5, 5), 0)\n"
     "e = cv2.Canny(g, 50, 100); cv2.findContours(e, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)\n"
     "cv2.rectangle(dec, (1, 1), (20, 20), (0, 255, 0), 2); cv2.putText(dec, 'x', (5, 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (1, 2, 3))\n"
     "json.loads(json.dumps({'x': [1, 2], 't': str(datetime.datetime.now())}))\n"
     "out = []\n"
     "ts = [threading.Thread(target=lambda: (out.append(sum(range(1000))), time.sleep(0.01))) for _ in range(4)]\n"
     "[t.start() for t in ts]; [t.join() for t in ts]; assert len(out) == 4\n"
     "time.sleep(0.01); time.time(); time.monotonic(); time.perf_counter(); time.process_time()\n"
     "open('out.txt', 'w').write('hello'); assert open('out.txt').read() == 'hello'\n"
     "os.makedirs('sub/dir', exist_ok=True); os.rename('out.txt', 'sub/o.txt'); os.listdir('.'); os.remove('sub/o.txt')\n"
     "statistics.mean([1, 2, 3]); collections.Counter('abc'); re.findall(r'\\w+', 'a b'); random.random()\n"
     "uuid.uuid4(); hashlib.md5(b'x').hexdigest(); os.getcwd(); os.getpid(); os.cpu_count()\n"
     "try:\n    1 / 0\nexcept ZeroDivisionError:\n    traceback.format_exc()\n"
     "import tempfile\nwith tempfile.NamedTemporaryFile(dir='.') as f: f.write(b'x')\n",
     "", NULL, 0},
    {"late imports and file formats", /* modules first imported by the block itself */
     "import sqlite3, csv, zlib, gzip, bz2, lzma, ctypes, xml.etree.ElementTree as ET, logging, platform\n"
     "import concurrent.futures, zoneinfo, locale, pickle, array, unicodedata, secrets, string, textwrap\n"
     "img = np.full((16, 16, 3), 7, np.uint8); assert cv2.imwrite('x.png', img); assert cv2.imread('x.png').sum() == img.sum()\n"
     "np.save('a.npy', img); np.load('a.npy'); np.savez_compressed('b.npz', a=img); np.loadtxt(io.StringIO('1 2'))\n"
     "db = sqlite3.connect(':memory:'); db.execute('create table t (x)'); db.execute('insert into t values (1)'); db.close()\n"
     "with concurrent.futures.ThreadPoolExecutor(4) as ex: assert sum(ex.map(abs, range(-5, 5))) == 25\n"
     "logging.getLogger('x').info('hi'); platform.system(); platform.release(); time.strftime('%c'); time.localtime()\n"
     "datetime.datetime.now(zoneinfo.ZoneInfo('UTC')); gzip.compress(b'x' * 1000); pickle.loads(pickle.dumps(img))\n"
     "ET.fromstring('<a><b/></a>'); secrets.token_hex(8); print('to stdout'); import sys; print('err', file=sys.stderr)\n"
     "import base64 as b64; b64.b64decode(b64.b64encode(bytes(range(256))))\n",
     "", NULL, 0},
    {"socket()", "import socket\ntry:\n    socket.socket()\n    raise SystemExit('socket created')\nexcept PermissionError:\n    pass\n",
     "socket", NULL, 0},
    {"socket via ctypes",
     "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nr = libc.syscall(41, 2, 1, 0)\n"
     "assert r == -1 and ctypes.get_errno() == 1, (r, ctypes.get_errno())\n",
     NULL, "socket", 0},
    {"os.fork", "try:\n    os.fork()\n    raise SystemExit('forked')\nexcept PermissionError:\n    pass\n", "clone", NULL, 0},
    /* _posixsubprocess blocks every signal around vfork: a SIGSYS trap killed the
     * worker; a user notification is answered whatever the mask */
    {"subprocess (vfork path)",
     "import subprocess\nsubprocess._USE_VFORK = True\ntry:\n    subprocess.run(['/bin/true'])\n    raise SystemExit('ran')\nexcept OSError:\n    pass\n",
     NULL, NULL, 0},
    {"subprocess (zygote setting)",
     "try:\n    subprocess.run(['/bin/true'])\n    raise SystemExit('ran')\nexcept PermissionError:\n    pass\n",
     "clone", NULL, 0},
    {"platform.platform() degrades", "import platform\nplatform.platform(); assert platform.processor() == ''\n",
     "clone", NULL, 0},
    {"os.posix_spawn", "try:\n    os.posix_spawn('/bin/true', ['/bin/true'], {})\n    raise SystemExit('spawned')\nexcept OSError:\n    pass\n",
     "", NULL, 0},
    {"os.system", "assert os.system('true') != 0\n", "", NULL, 0},
    {"os.execv", "try:\n    os.execv('/bin/true', ['/bin/true'])\nexcept PermissionError:\n    pass\n", "execve", NULL, 0},
    {"os.kill(self) and raise_signal work", "import signal\ngot = []\nsignal.signal(signal.SIGUSR1, lambda *a: got.append(1))\n"
     "os.kill(os.getpid(), signal.SIGUSR1); signal.raise_signal(signal.SIGUSR1); assert got == [1, 1], got\n",
     "", NULL, 0},
    {"os.kill(parent, SIGKILL)",
     "import signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\n    raise SystemExit('signalled')\nexcept PermissionError:\n    pass\n",
     "kill", NULL, 0},
    {"signal.signal(SIGSYS)",
     "import signal\ntry:\n    signal.signal(signal.SIGSYS, lambda *a: None)\n    raise SystemExit('replaced the reporter')\nexcept OSError:\n    pass\n",
     "rt_sigaction", NULL, 0},
    {"signal.signal(SIGUSR1) still works", "import signal\nsignal.signal(signal.SIGUSR1, lambda *a: None)\n", "", NULL, 0},
    {"asyncio (an AF_UNIX socketpair inside)", "import asyncio\nasync def main():\n    await asyncio.sleep(0.001)\n    return 7\nassert asyncio.run(main()) == 7\n",
     "", NULL, 0},
    {"socket.socketpair(AF_INET)", "import socket\ntry:\n    socket.socketpair(socket.AF_INET)\n    raise SystemExit('paired')\nexcept OSError:\n    pass\n",
     "socketpair", NULL, 0},
    /* glibc asks nscd over an AF_UNIX socket first: trapped and reported, then files */
    {"pwd lookup", "import pwd\ntry:\n    pwd.getpwuid(os.getuid())\nexcept KeyError:\n    pass\n", "socket", NULL, 0},
    {"getaddrinfo", "import socket\ntry:\n    socket.getaddrinfo('example.com', 80)\n    raise SystemExit('resolved')\nexcept OSError:\n    pass\n",
     NULL, "socket", 0},
};

typedef struct report {
    int rc;
    char denied[512];
} report;

int main(void)
{
    setenv("OPENBLAS_NUM_THREADS", "2", 1);
    Py_InitializeEx(0);
    if (PyRun_SimpleString(warmup) != 0) {
        fprintf(stderr, "warm-up imports failed (numpy/cv2 missing for this python?)\n");
        return 1;
    }
    bb_error *err = NULL;
    bb_policy *policy = NULL;
    bb_policy_load_default(&policy, &err);
    bb_seccomp_program prog = {0};
    if (!policy || bb_seccomp_compile(policy, &prog, &err) < 0) {
        fprintf(stderr, "default policy: %s\n", bb_error_message(err));
        return 1;
    }
    char dir[] = "/tmp/bb-seccomp-python-XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) < 0) {
        perror("workdir");
        return 1;
    }
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const py_case *c = &cases[i];
        int fds[2], hand[2];
        if (pipe(fds) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, hand) < 0)
            return 1;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            PyOS_AfterFork_Child();
            close(fds[0]);
            close(hand[0]);
            /* as in a worker: the listener goes to this test's parent on fd 5 */
            int rep_fd = child_fds(fds[1], hand[1]);
            child_apply(&prog);
            report rep;
            memset(&rep, 0, sizeof rep);
            rep.rc = PyRun_SimpleString(c->code);
            fflush(NULL);
            if (write(rep_fd, &rep, sizeof rep) != (ssize_t)sizeof rep)
                _exit(121);
            _exit(0);
        }
        close(fds[1]);
        close(hand[1]);
        /* The listener thread starts after the fork and is joined before the next one:
         * a fork while it is inside malloc leaves the child an allocator lock held
         * forever under ASan (GCC 12's allocator has no fork handler; glibc's has),
         * and the child's Python threads hung on it (seen in CI, 1 run in ~10). */
        bb_notifier *notifier = bb_notifier_start(&err);
        if (!notifier) {
            fprintf(stderr, "listener: %s\n", bb_error_message(err));
            return 1;
        }
        unsigned long handle = bb_notifier_add(notifier, hand[0], &err);
        if (!handle) {
            fprintf(stderr, "listener: %s\n", bb_error_message(err));
            return 1;
        }
        report rep;
        memset(&rep, 0, sizeof rep);
        ssize_t n = read(fds[0], &rep, sizeof rep);
        close(fds[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        char *names = bb_notifier_take(notifier, handle, NULL);
        snprintf(rep.denied, sizeof rep.denied, "%s", names ? names : "?");
        free(names);
        bb_notifier_remove(notifier, handle);
        bb_notifier_stop(notifier);
        const char *why = NULL;
        if (c->dies_by_sigsys) {
            if (n == (ssize_t)sizeof rep || !WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
                why = "expected death by SIGSYS";
        } else if (n != (ssize_t)sizeof rep)
            why = "the child died";
        else if (rep.rc != 0)
            why = "the Python code raised";
        else if (c->denied && strcmp(rep.denied, c->denied) != 0)
            why = "unexpected denied set";
        else if (c->must_contain && !strstr(rep.denied, c->must_contain))
            why = "the denied set lacks the expected call";
        printf("%-36s %-4s denied=[%s]%s%s (status 0x%x)\n", c->name, why ? "FAIL" : "ok", rep.denied,
               why ? " : " : "", why ? why : "", status);
        if (why)
            failures++;
    }
    bb_seccomp_program_free(&prog);
    bb_policy_free(policy);
    if (chdir("/") == 0) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    printf("%d of %zu cases failed\n", failures, sizeof cases / sizeof cases[0]);
    return failures ? 1 : 0;
}
