/* seccomp.h: compiles a policy to a raw BPF program once (zygote), loads it in a
 * fresh worker, and turns SECCOMP_RET_TRAP into EPERM + a record of denied calls. */
#ifndef BB_SECCOMP_H
#define BB_SECCOMP_H

#include <stddef.h>

#include "blockbox.h"
#include "policy.h"

struct sock_filter;

/* A compiled classic-BPF program, owned by the zygote and inherited by workers. */
typedef struct bb_seccomp_program {
    struct sock_filter *insns;   /* malloc'd */
    unsigned short len;          /* instructions, 1..BPF_MAXINSNS */
} bb_seccomp_program;

/*
 * Builds a libseccomp filter from the policy and exports it as raw BPF (through a
 * memfd, since libseccomp 2.5 has no in-memory export). Call once, before forking
 * workers. Rules with the default action are implied and skipped; denying rules are
 * added before allowing ones so that overlapping conditions resolve to the denial.
 * Only the native architecture is in the filter: any other syscall ABI (x32, i386
 * int 0x80) kills the process. Errors are BB_ERR_CONFIGURATION ("SOURCE:LINE: …").
 */
int bb_seccomp_compile(const bb_policy *policy, bb_seccomp_program *out, bb_error **err);
void bb_seccomp_program_free(bb_seccomp_program *prog);

/*
 * In a freshly forked worker: PR_SET_NO_NEW_PRIVS, then seccomp(SET_MODE_FILTER,
 * TSYNC). No allocation, no libseccomp: safe between fork and exec-less worker start.
 * Returns 0, or -errno (the caller must then exit: fail closed).
 */
int bb_seccomp_apply(const bb_seccomp_program *prog);

/*
 * Installs the SIGSYS handler (SA_SIGINFO, SA_NODEFER not set): for a seccomp trap it
 * records the syscall number in a fixed-size lock-free set and makes the call return
 * -EPERM, so Python raises PermissionError and carries on. Install it before
 * bb_seccomp_apply (the default policy refuses rt_sigaction(SIGSYS, new) afterwards).
 * The set is per-process state of the worker: a documented exception to the no-globals
 * rule, since a signal handler can reach nothing else. Returns 0 or -errno.
 */
int bb_seccomp_install_trap_handler(void);

/* Writes the denied calls seen since the last reset as "socket,execve" (first-seen
 * order, no duplicates, "syscall_N" for unnamed numbers) into out (always
 * NUL-terminated when cap > 0; names that do not fit are left out). Returns how many
 * distinct calls were recorded. Not for use inside a signal handler (it resolves
 * names with libseccomp). */
size_t bb_seccomp_denied_names(char *out, size_t cap);
/* Up to cap syscall numbers, first-seen order; returns how many were recorded. */
size_t bb_seccomp_denied_numbers(int *out, size_t cap);
/* Total traps since the last reset (including repeats). */
unsigned long bb_seccomp_trap_count(void);
/* Forgets the recorded calls (between runs). Best effort if another thread traps at
 * the same moment. */
void bb_seccomp_reset_denied(void);

#endif
