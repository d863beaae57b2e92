/* jailtest.c: runs a function inside one worker jailed by chosen layers (as the
 * zygote would: setup, clone, after_clone, child_setup, reap, worker_gone). */
#include "jailtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* BB_TEST_TIME_MULTIPLIER (1-1000; the VM of scripts/vm-test.sh sets it under software
 * emulation): what bounds how long a test's worker may compute scales, never a check. */
static double time_factor(void)
{
    const char *e = getenv("BB_TEST_TIME_MULTIPLIER");
    double f = e && *e ? strtod(e, NULL) : 1.0;
    return f >= 1.0 && f <= 1000.0 ? f : 1.0;
}

bb_jail_config jt_config(void)
{
    bb_jail_config c = {
        .memory_bytes = 256L << 20,
        /* RLIMIT_CPU, a backstop no test checks: under TCG at host load 5 a fresh python
         * importing numpy and cv2 used more than 20 s of CPU and died of SIGXCPU */
        .cpu_seconds = 20 * time_factor(),
        .max_threads = 64,
        .max_open_files = 256,
        .max_file_bytes = 64L << 20,
        .tmpfs_bytes = 64L << 20,
    };
    return c;
}

unsigned jt_only(unsigned keep) { return (unsigned)BB_LAYER_ALL & ~keep; }

bb_layers *jt_zygote(const bb_jail_config *cfg)
{
    char err[512] = "";
    bb_layers *L = bb_layers_zygote_setup(cfg, err, sizeof err);
    if (!L) {
        fprintf(stderr, "bb_layers_zygote_setup failed: %s\n", err);
        exit(99);
    }
    return L;
}

pid_t jt_start(bb_layers *L, int slot, jt_fn fn, void *arg, jt_result *res)
{
    memset(res, 0, sizeof *res);
    /* The same sequence as worker/main.c (jail.h), by the jail's own starter. */
    char msg[400];
    pid_t pid;
    bb_layers_start_worker(L, slot, fn, arg, &pid, msg, sizeof msg, res->err, sizeof res->err);
    if (msg[0])
        snprintf(res->err, sizeof res->err, "%s", msg);
    return pid;
}

void jt_wait(bb_layers *L, pid_t pid, int slot, jt_result *res)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    res->exited = WIFEXITED(status);
    res->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    res->sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    res->gone_rc = bb_layers_worker_gone(L, pid, slot, &res->oom);
}

void jt_run(bb_layers *L, jt_fn fn, void *arg, jt_result *res)
{
    pid_t pid = jt_start(L, 0, fn, arg, res);
    if (pid > 0)
        jt_wait(L, pid, 0, res);
}
