/* jailtest.h: runs a function inside one worker jailed by chosen layers (as the
 * zygote would: setup, clone, after_clone, child_setup, reap, worker_gone); the suites' shared probes. */
#ifndef BB_JAILTEST_H
#define BB_JAILTEST_H

#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail.h"

/* What a function run inside the jail returns (its exit status). */
enum { JT_ACHIEVED = 0, JT_BLOCKED = 1, JT_BROKEN = 2 };

typedef int (*jt_fn)(void *arg);

typedef struct jt_result {
    int exited;         /* 1: exit status in code; 0: killed by signal sig */
    int code;
    int sig;
    int oom;            /* bb_layers_worker_gone's verdict */
    int gone_rc;        /* its return value */
    char err[400];      /* setup failure text, if any */
} jt_result;

/* Limits used by the tests unless they change them. */
bb_jail_config jt_config(void);

/* Zygote side for a test process: exits the test on failure. */
bb_layers *jt_zygote(const bb_jail_config *cfg);

/* Starts one worker in `slot` that runs fn(arg) after bb_layers_child_setup; returns
 * its pid (the caller reaps it with jt_wait) or -1 with res->err. */
pid_t jt_start(bb_layers *L, int slot, jt_fn fn, void *arg, jt_result *res);
void jt_wait(bb_layers *L, pid_t pid, int slot, jt_result *res);

/* jt_start + jt_wait. */
void jt_run(bb_layers *L, jt_fn fn, void *arg, jt_result *res);

/* Everything off except `keep` (seccomp is not applied by these layers: always off). */
unsigned jt_only(unsigned keep);

/* jt_zygote + jt_run + bb_layers_free: fn(arg) in the one worker of a zygote of cfg. */
static inline void jt_run_alone(const bb_jail_config *cfg, jt_fn fn, void *arg, jt_result *res)
{
    bb_layers *L = jt_zygote(cfg);
    jt_run(L, fn, arg, res);
    bb_layers_free(L);
}

/* Runs /usr/bin/python3 -c script with envp from a worker: its fd out_fd (1 or 2) goes to
 * a pipe, whose last cap - 1 bytes are kept in out (NUL-terminated); *status is its wait
 * status. Returns 0, or -1 when the pipe, fork or wait failed. */
static inline int jt_python(const char *script, char *const envp[], int out_fd, char *out, size_t cap,
                            int *status)
{
    int p[2];
    out[0] = '\0';
    if (pipe(p) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], out_fd);
        close(p[0]);
        char *const argv[] = {"/usr/bin/python3", "-c", (char *)script, NULL};
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(p[1]);
    size_t used = 0;
    char buf[512];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) {
        /* keep the last cap - 1 bytes (a read may be longer than that: keep its end) */
        size_t k = (size_t)n, room = cap - 1;
        const char *from = buf;
        if (k > room) {
            from += k - room;
            k = room;
        }
        if (used + k > room) {
            memmove(out, out + (used + k - room), room - k);
            used = room - k;
        }
        memcpy(out + used, from, k);
        used += k;
        out[used] = '\0';
    }
    close(p[0]);
    return pid < 0 || waitpid(pid, status, 0) < 0 ? -1 : 0;
}

/* For the Check suites on this harness: the worker of res (a jt_result *) was set up
 * and exited with want (no signal), else the test fails naming what. */
#define JT_EXPECT_EXIT(res, want, what)                                                               \
    do {                                                                                           \
        ck_assert_msg((res)->err[0] == '\0', "%s: setup failed: %s", (what), (res)->err);           \
        ck_assert_msg((res)->exited && (res)->code == (want), "%s: exit %d signal %d, wanted exit %d", \
                      (what), (res)->code, (res)->sig, (int)(want));                                \
    } while (0)

/* The memory bomb of the layer and cgroup suites: maps *(long *)arg bytes and writes
 * every page. JT_BLOCKED when the mapping is refused (an address-space limit); a memory
 * cgroup kills it instead (SIGKILL); JT_ACHIEVED when every page was written. */
static inline int jt_memory_bomb(void *arg)
{
    long bytes = *(long *)arg;
    char *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return JT_BLOCKED;
    for (long i = 0; i < bytes; i += 4096)
        p[i] = 1;
    return JT_ACHIEVED;
}

#endif
