/* seccomp.h: compiles a policy to a raw BPF program once (zygote), loads it in a
 * fresh worker, and answers its denied calls from outside (user notifications). */
#ifndef BB_SECCOMP_H
#define BB_SECCOMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blockbox.h"
#include "policy.h"

struct sock_filter;
struct seccomp_notif;

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

/* The worker's fd for the one-time hand-off of its listener (see bb_seccomp_apply). */
#define BB_SECCOMP_HANDOFF_FD 5

/*
 * In a freshly forked worker: PR_SET_NO_NEW_PRIVS, then seccomp(SET_MODE_FILTER, TSYNC,
 * NEW_LISTENER). Denied calls (SCMP_ACT_TRAP in a policy) then wait for an answer on
 * *listener, which the worker must hand to a trusted process at once
 * (bb_seccomp_send_fd on BB_SECCOMP_HANDOFF_FD, which every compiled filter lets through)
 * and close. No allocation, no libseccomp. Returns 0, or -errno (fail closed: exit).
 */
int bb_seccomp_apply(const bb_seccomp_program *prog, int *listener);

/*
 * W^X for what the worker inherited: memory that is writable and executable at once
 * (the zygote's imports leave libffi closure pages like that: shapely's GEOS handlers)
 * loses its write right when anonymous, its exec right otherwise. Call in the worker
 * before the filter (which then refuses any new executable writable memory). Returns
 * the number of mappings changed, or -errno (fail closed).
 */
int bb_seccomp_seal_wx(void);

/* One fd over a unix socket (SCM_RIGHTS, one byte 'L'). 0 or -errno. */
int bb_seccomp_send_fd(int sock, int fd);
/* The fd sent by bb_seccomp_send_fd (non-blocking; close-on-exec); -EAGAIN when nothing
 * is there yet; -EPROTO for anything but exactly one fd with the byte 'L'. */
int bb_seccomp_recv_fd(int sock);

/*
 * Listener side, outside the jail. receive takes one pending notification (its
 * syscall number, arguments and caller's pid come from the kernel, not the worker):
 * 0, 1 if it was withdrawn (the caller was interrupted or died), or -errno. respond
 * answers it: fail with `error` (e.g. EPERM), succeed with 0 (error 0), or run the
 * call as made (continue_call). 0 or -errno.
 */
int bb_seccomp_receive(int listener, struct seccomp_notif *req);
int bb_seccomp_respond(int listener, uint64_t id, int error, int continue_call);

/* "socket", or "syscall_N" for a number this architecture does not name. */
void bb_seccomp_syscall_name(int nr, char *out, size_t cap);

#endif
