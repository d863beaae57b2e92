/* seccomp.c: compiles a policy to raw BPF once with libseccomp, loads it in a worker
 * without allocating, and turns SECCOMP_RET_TRAP into EPERM + a denied-call record. */
#include "seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "error.h"

/* si_code of a seccomp SIGSYS (SYS_SECCOMP in the kernel's uapi siginfo.h). */
#define SECCOMP_SI_CODE 1

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "blockbox's SIGSYS handler knows the syscall return register of x86_64 and aarch64 only"
#endif

static uint32_t scmp_action(bb_policy_action a)
{
    switch (a.kind) {
    case BB_ACT_KILL_PROCESS: return SCMP_ACT_KILL_PROCESS;
    case BB_ACT_KILL_THREAD: return SCMP_ACT_KILL_THREAD;
    case BB_ACT_TRAP: return SCMP_ACT_TRAP;
    case BB_ACT_ERRNO: return SCMP_ACT_ERRNO((uint32_t)a.errno_ret);
    case BB_ACT_LOG: return SCMP_ACT_LOG;
    case BB_ACT_ALLOW: return SCMP_ACT_ALLOW;
    }
    return SCMP_ACT_KILL_PROCESS;
}

static int same_action(bb_policy_action a, bb_policy_action b)
{
    return a.kind == b.kind && (a.kind != BB_ACT_ERRNO || a.errno_ret == b.errno_ret);
}

/* Reads back what seccomp_export_bpf wrote to a memfd. */
static int export_program(scmp_filter_ctx ctx, const char *source, bb_seccomp_program *out,
                          bb_error **err)
{
    int fd = memfd_create("blockbox-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return bb_fail(err, BB_ERR_CONFIGURATION, "%s: memfd_create: %s", source, strerror(errno));
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0) {
        close(fd);
        return bb_fail(err, BB_ERR_CONFIGURATION, "%s: libseccomp could not export the filter: %s",
                       source, strerror(-rc));
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) ||
        st.st_size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
        close(fd);
        return bb_fail(err, BB_ERR_CONFIGURATION,
                       "%s: the compiled filter has a bad size (%lld bytes; at most %d instructions "
                       "fit)", source, (long long)st.st_size, BPF_MAXINSNS);
    }
    size_t bytes = (size_t)st.st_size;
    struct sock_filter *insns = malloc(bytes);
    if (!insns) {
        close(fd);
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    size_t got = 0;
    while (got < bytes) {
        ssize_t n = pread(fd, (char *)insns + got, bytes - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            free(insns);
            close(fd);
            return bb_fail(err, BB_ERR_CONFIGURATION, "%s: reading the filter back: %s", source,
                           strerror(e));
        }
        got += (size_t)n;
    }
    close(fd);
    out->insns = insns;
    out->len = (unsigned short)(bytes / sizeof(struct sock_filter));
    return 0;
}

int bb_seccomp_compile(const bb_policy *policy, bb_seccomp_program *out, bb_error **err)
{
    /* Denying rules first: where conditions overlap, libseccomp tests rules of one
     * syscall in the order they were added, so the denial wins (fail closed). */
    static const bb_policy_action_kind order[] = {BB_ACT_KILL_PROCESS, BB_ACT_KILL_THREAD,
                                                  BB_ACT_TRAP, BB_ACT_ERRNO, BB_ACT_LOG,
                                                  BB_ACT_ALLOW};
    const char *source = bb_policy_source(policy);
    bb_policy_action def = bb_policy_default_action(policy);
    memset(out, 0, sizeof *out);
    scmp_filter_ctx ctx = seccomp_init(scmp_action(def));
    if (!ctx)
        return bb_fail(err, BB_ERR_CONFIGURATION, "%s: libseccomp refused the default action", source);
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);   /* bb_seccomp_apply sets it */
    if (rc < 0) {
        seccomp_release(ctx);
        return bb_fail(err, BB_ERR_CONFIGURATION, "%s: libseccomp attribute: %s", source,
                       strerror(-rc));
    }
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++) {
        for (size_t i = 0; i < bb_policy_rule_count(policy); i++) {
            const bb_policy_rule *r = bb_policy_rule_at(policy, i);
            if (r->action.kind != order[o] || r->nr < 0)
                continue;   /* other pass, or a name this architecture lacks */
            if (same_action(r->action, def))
                continue;   /* implied by the default (libseccomp refuses such rules) */
            struct scmp_arg_cmp cmps[6];
            for (unsigned k = 0; k < r->n_args; k++) {
                cmps[k].arg = r->args[k].index;
                cmps[k].op = (enum scmp_compare)r->args[k].op;
                cmps[k].datum_a = r->args[k].value;
                cmps[k].datum_b = r->args[k].value_two;
            }
            rc = seccomp_rule_add_array(ctx, scmp_action(r->action), r->nr, r->n_args, cmps);
            if (rc < 0) {
                seccomp_release(ctx);
                return bb_fail(err, BB_ERR_CONFIGURATION, "%s:%d: libseccomp refused the rule for %s: %s",
                               source, r->line ? r->line : 1, r->name, strerror(-rc));
            }
        }
    }
    rc = export_program(ctx, source, out, err);
    seccomp_release(ctx);
    return rc;
}

void bb_seccomp_program_free(bb_seccomp_program *prog)
{
    if (!prog)
        return;
    free(prog->insns);
    prog->insns = NULL;
    prog->len = 0;
}

int bb_seccomp_apply(const bb_seccomp_program *prog)
{
    if (!prog || !prog->insns || prog->len == 0)
        return -EINVAL;
    struct sock_fprog fprog = {.len = prog->len, .filter = prog->insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog);
    if (rc < 0)
        return -errno;
    if (rc > 0)
        return -EAGAIN;   /* TSYNC: thread rc could not be synchronised */
    return 0;
}

/* ---- the SIGSYS reporter ----------------------------------------------------------
 * Per-process state of the worker, reachable from a signal handler: a documented
 * exception to the no-globals rule. Slots hold syscall number + 1 (0 = empty), are
 * claimed with a CAS on `denied_used`, and only ever grow until a reset. */

#define DENIED_SLOTS 256

static _Atomic int denied_slots[DENIED_SLOTS];
static _Atomic unsigned denied_used;
static _Atomic unsigned long denied_traps;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the SIGSYS handler needs lock-free atomic int");
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2, "the SIGSYS handler needs lock-free atomic long");

static void record_denied(int nr)
{
    unsigned used = atomic_load(&denied_used);
    if (used > DENIED_SLOTS)
        used = DENIED_SLOTS;
    for (unsigned i = 0; i < used; i++)
        if (atomic_load(&denied_slots[i]) == nr + 1)
            return;
    unsigned idx = atomic_load(&denied_used);
    do {
        if (idx >= DENIED_SLOTS)
            return;   /* full: the count still says something was denied */
    } while (!atomic_compare_exchange_weak(&denied_used, &idx, idx + 1));
    atomic_store(&denied_slots[idx], nr + 1);
}

static void on_sigsys(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    if (!info || info->si_code != SECCOMP_SI_CODE || !context)
        return;   /* not a seccomp trap (nobody can send SIGSYS past the filter anyway) */
    int saved_errno = errno;
    atomic_fetch_add(&denied_traps, 1);
    record_denied(info->si_syscall);
    ucontext_t *uc = context;
#if defined(__x86_64__)
    uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
    uc->uc_mcontext.regs[0] = (unsigned long long)-EPERM;
#endif
    errno = saved_errno;
}

int bb_seccomp_install_trap_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        return -errno;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGSYS);
    if (sigprocmask(SIG_UNBLOCK, &set, NULL) < 0)
        return -errno;
    return 0;
}

size_t bb_seccomp_denied_numbers(int *out, size_t cap)
{
    unsigned used = atomic_load(&denied_used);
    size_t n = 0;
    if (used > DENIED_SLOTS)
        used = DENIED_SLOTS;
    for (unsigned i = 0; i < used; i++) {
        int v = atomic_load(&denied_slots[i]);
        if (v == 0)
            continue;   /* being written by a handler right now */
        int dup = 0;
        for (unsigned j = 0; j < i; j++)
            if (atomic_load(&denied_slots[j]) == v)
                dup = 1;
        if (dup)
            continue;
        if (n < cap)
            out[n] = v - 1;
        n++;
    }
    return n;
}

size_t bb_seccomp_denied_names(char *out, size_t cap)
{
    int numbers[DENIED_SLOTS];
    size_t n = bb_seccomp_denied_numbers(numbers, DENIED_SLOTS), len = 0;
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < n && i < DENIED_SLOTS; i++) {
        char fallback[32];
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, numbers[i]);
        const char *text = name;
        if (!text) {
            snprintf(fallback, sizeof fallback, "syscall_%d", numbers[i]);
            text = fallback;
        }
        size_t need = strlen(text) + (len ? 1 : 0);
        if (cap && len + need < cap) {
            snprintf(out + len, cap - len, "%s%s", len ? "," : "", text);
            len += need;
        }
        free(name);
    }
    return n;
}

unsigned long bb_seccomp_trap_count(void) { return atomic_load(&denied_traps); }

void bb_seccomp_reset_denied(void)
{
    atomic_store(&denied_used, 0);
    for (unsigned i = 0; i < DENIED_SLOTS; i++)
        atomic_store(&denied_slots[i], 0);
    atomic_store(&denied_traps, 0);
}
