/* seccomp.c: compiles a policy to raw BPF once with libseccomp and loads it in a worker
 * without allocating; denials become user notifications for a listener outside it. */
#include "seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"
#include "jail.h"

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif

static uint32_t scmp_action(bb_policy_action a)
{
    switch (a.kind) {
    case BB_ACT_KILL_PROCESS: return SCMP_ACT_KILL_PROCESS;
    case BB_ACT_KILL_THREAD: return SCMP_ACT_KILL_THREAD;
    case BB_ACT_TRAP: return SCMP_ACT_NOTIFY;   /* answered EPERM + recorded by notify.c */
    case BB_ACT_ERRNO: return SCMP_ACT_ERRNO((uint32_t)a.errno_ret);
    case BB_ACT_LOG: return SCMP_ACT_LOG;
    case BB_ACT_ALLOW: return SCMP_ACT_ALLOW;
    }
    return SCMP_ACT_KILL_PROCESS;
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

/* The worker hands its listener out with sendmsg on BB_SECCOMP_HANDOFF_FD after the
 * filter is on: that call must pass, or the worker would wait on itself. A policy that
 * names sendmsg must allow it outright; one that does not gets the one rule it needs. */
static int add_handoff_rule(scmp_filter_ctx ctx, const bb_policy *policy, bb_error **err)
{
    int nr = seccomp_syscall_resolve_name("sendmsg");
    int named = 0;
    for (size_t i = 0; i < bb_policy_rule_count(policy); i++) {
        const bb_policy_rule *r = bb_policy_rule_at(policy, i);
        if (r->nr != nr)
            continue;
        named = 1;
        if (r->action.kind != BB_ACT_ALLOW || r->n_args)
            return bb_fail(err, BB_ERR_CONFIGURATION,
                           "%s:%d: sendmsg must be allowed without conditions (the worker hands "
                           "its seccomp listener to the host with it before reading any request)",
                           bb_policy_source(policy), r->line ? r->line : 1);
    }
    if (named || bb_policy_default_action(policy).kind == BB_ACT_ALLOW)
        return 0;
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)BB_SECCOMP_HANDOFF_FD));
    return rc < 0 ? bb_fail(err, BB_ERR_CONFIGURATION, "%s: libseccomp refused the hand-off rule: %s",
                            bb_policy_source(policy), strerror(-rc))
                  : 0;
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
            if (bb_policy_action_equal(r->action, def))
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
    rc = add_handoff_rule(ctx, policy, err);
    if (rc == 0)
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

int bb_seccomp_apply(const bb_seccomp_program *prog, int *listener)
{
    if (!prog || !prog->insns || prog->len == 0 || !listener)
        return -EINVAL;
    struct sock_fprog fprog = {.len = prog->len, .filter = prog->insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                      SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH |
                          SECCOMP_FILTER_FLAG_NEW_LISTENER,
                      &fprog);
    if (rc < 0)
        return -errno;
    *listener = (int)rc;
    return 0;
}

int bb_seccomp_send_fd(int sock, int fd)
{
    char byte = 'L';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -(n < 0 ? errno : EIO);
}

int bb_seccomp_recv_fd(int sock)
{
    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof ctl.buf};
    ssize_t n;
    do
        n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    int fd = -1, extra = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (fd < 0)
                fd = got;
            else {
                close(got);   /* one fd was asked for */
                extra = 1;
            }
        }
    }
    if (n != 1 || byte != 'L' || fd < 0 || extra || (msg.msg_flags & MSG_CTRUNC)) {
        if (fd >= 0)
            close(fd);
        return -EPROTO;
    }
    return fd;
}

int bb_seccomp_receive(int listener, struct seccomp_notif *req)
{
    memset(req, 0, sizeof *req);   /* the kernel refuses a dirty buffer */
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) < 0)
        return errno == ENOENT || errno == EINTR ? 1 : -errno;   /* withdrawn (signal, death) */
    return 0;
}

int bb_seccomp_respond(int listener, uint64_t id, int error, int continue_call)
{
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.error = continue_call ? 0 : -error;
    resp.val = 0;
    resp.flags = continue_call ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
    /* ENOENT: the caller went away meanwhile (the call happened all the same). */
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* One line of /proc/self/maps: an anonymous unnamed W+X mapping (libffi's closure
 * pages) loses its write right, anything else W+X (a named file, [stack], [heap]) loses
 * its exec right. 1 if sealed, 0 if nothing to do, -errno. */
static int seal_line(const char *line)
{
    unsigned long lo, hi, off, inode;
    char perms[8], dev[16];
    int name_at = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &lo, &hi, perms, &off, dev, &inode, &name_at) < 6 ||
        strlen(perms) < 3 || perms[1] != 'w' || perms[2] != 'x')
        return 0;
    int anonymous = inode == 0 && (name_at <= 0 || line[name_at] == '\0');
    int prot = (perms[0] == 'r' ? PROT_READ : 0) | (anonymous ? PROT_EXEC : PROT_WRITE);
    return mprotect((void *)lo, hi - lo, prot) < 0 ? -errno : 1;
}

int bb_seccomp_seal_wx(void)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[4096];
    size_t have = 0;
    int sealed = 0, rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', (size_t)(buf + have - line)))) {
            *nl = '\0';
            int r = seal_line(line);
            if (r < 0) {
                rc = r;
                break;
            }
            sealed += r;
            line = nl + 1;
        }
        if (rc < 0)
            break;
        size_t rest = (size_t)(buf + have - line);
        if (n == 0) {
            if (rest) {   /* a last line without a newline */
                int r = seal_line(line);
                rc = r < 0 ? r : 0;
                sealed += r > 0;
            }
            break;
        }
        if (rest == sizeof buf - 1) {
            rc = -E2BIG;   /* a line longer than the buffer: fail closed */
            break;
        }
        memmove(buf, line, rest);
        have = rest;
    }
    close(fd);
    return rc < 0 ? rc : sealed;
}

void bb_seccomp_syscall_name(int nr, char *out, size_t cap)
{
    char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (name && strlen(name) <= 32)
        snprintf(out, cap, "%s", name);
    else
        snprintf(out, cap, "syscall_%d", nr);
    free(name);
}

/* detect() of the seccomp layer (jail.h): the kernel can install a filter. */
int bb_seccomp_detect(const bb_layer_facts *f, char *detail, size_t len)
{
    snprintf(detail, len, "%s", f->seccomp_detail ? f->seccomp_detail : "");
    return f->seccomp;
}
