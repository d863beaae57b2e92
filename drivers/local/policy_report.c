/* policy_report.c: what a policy does, for people: the verdict for one syscall and
 * the report of `policy check` (counts, allowed calls, the dangerous ones). */
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

/* ---- the report ---------------------------------------------------------------- */

static int action_allows(bb_policy_action a)
{
    return a.kind == BB_ACT_ALLOW || a.kind == BB_ACT_LOG;
}

bb_policy_verdict bb_policy_verdict_for(const bb_policy *p, const char *syscall_name)
{
    int nr = seccomp_syscall_resolve_name(syscall_name);
    if (nr < 0)
        return BB_VERDICT_NOT_ON_ARCH;
    int any = 0, conditional = 0, allows = 0, denies = 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        const bb_policy_rule *r = &p->rules[i];
        if (r->nr != nr)
            continue;
        any = 1;
        conditional |= r->n_args > 0;
        if (action_allows(r->action))
            allows = 1;
        else
            denies = 1;
    }
    if (!any)
        return action_allows(p->default_action) ? BB_VERDICT_ALLOWED : BB_VERDICT_DENIED;
    if (!conditional)
        return allows ? BB_VERDICT_ALLOWED : BB_VERDICT_DENIED;
    /* conditional rules: mixed unless every branch and the default agree */
    int default_allows = action_allows(p->default_action);
    if (allows && !denies && default_allows)
        return BB_VERDICT_ALLOWED;
    if (denies && !allows && !default_allows)
        return BB_VERDICT_DENIED;
    return BB_VERDICT_CONDITIONAL;
}

static void print_conditions(FILE *out, const bb_policy_rule *r)
{
    for (unsigned k = 0; k < r->n_args; k++) {
        const bb_policy_arg *a = &r->args[k];
        if (k)
            fputs(" and ", out);
        if (a->op == BB_OP_MASKED_EQ)
            fprintf(out, "(arg%u & 0x%llx) == 0x%llx", a->index, (unsigned long long)a->value,
                    (unsigned long long)a->value_two);
        else {
            static const char *const sym[] = {"", "!=", "<", "<=", "==", ">=", ">"};
            fprintf(out, "arg%u %s 0x%llx", a->index, sym[a->op], (unsigned long long)a->value);
        }
    }
}

/* The calls every report accounts for: each is a known way out of a sandbox or into
 * the kernel's wider surface. */
static const struct {
    const char *name;
    const char *why;
} dangerous[] = {
    {"socket", "network and AF_UNIX sockets"},
    {"socketpair", "socket pairs"},
    {"connect", "connect a socket"},
    {"bind", "bind a socket"},
    {"listen", "listen on a socket"},
    {"accept4", "accept connections"},
    {"sendmsg", "pass file descriptors"},
    {"execve", "run another program"},
    {"execveat", "run another program"},
    {"fork", "new processes"},
    {"vfork", "new processes"},
    {"clone", "new processes/namespaces (threads are fine)"},
    {"clone3", "new processes/namespaces"},
    {"ptrace", "inspect or control other processes"},
    {"process_vm_readv", "read another process's memory"},
    {"process_vm_writev", "write another process's memory"},
    {"io_uring_setup", "io_uring (large kernel attack surface)"},
    {"userfaultfd", "userfaultfd (exploit primitive)"},
    {"bpf", "eBPF programs"},
    {"perf_event_open", "perf events"},
    {"keyctl", "kernel keyrings (not namespaced)"},
    {"add_key", "kernel keyrings"},
    {"request_key", "kernel keyrings"},
    {"mount", "mounts"},
    {"umount2", "unmounts"},
    {"pivot_root", "change root"},
    {"chroot", "change root"},
    {"unshare", "new namespaces"},
    {"setns", "enter namespaces"},
    {"kill", "signals to other processes"},
    {"tkill", "signals to threads"},
    {"tgkill", "signals to threads"},
    {"rt_sigqueueinfo", "signals with data"},
    {"pidfd_open", "process handles"},
    {"pidfd_send_signal", "signals through pidfds"},
    {"pidfd_getfd", "steal file descriptors"},
    {"rt_sigaction", "replace the SIGSYS reporter"},
    {"ioctl", "device control (TIOCSTI injects terminal input)"},
    {"prctl", "process attributes (dumpable, ptracer)"},
    {"fcntl", "F_SETOWN sends SIGIO to other processes"},
    {"personality", "execution domain (ASLR off)"},
    {"setuid", "change identity"},
    {"setresuid", "change identity"},
    {"setgroups", "change identity"},
    {"capset", "capabilities"},
    {"mknod", "device nodes"},
    {"open_by_handle_at", "open files by handle (container escape)"},
    {"init_module", "kernel modules"},
    {"finit_module", "kernel modules"},
    {"kexec_load", "replace the kernel"},
    {"reboot", "reboot"},
    {"modify_ldt", "segment descriptors"},
    {"memfd_secret", "secret memory"},
    {"set_mempolicy", "NUMA policy"},
    {"splice", "pipe splicing (Dirty Pipe)"},
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int bb_policy_report(const bb_policy *p, FILE *out)
{
    char buf[40], buf2[40];
    size_t counts[BB_ACT_ALLOW + 1] = {0}, off_arch = 0;
    fprintf(out, "policy: %s\n", p->source);
    fprintf(out, "default action: %s%s\n", bb_policy_action_text(p->default_action, buf, sizeof buf),
            p->default_action.kind == BB_ACT_TRAP
                ? " (blockbox's SIGSYS handler makes the call fail with EPERM and reports it)"
                : "");
    fprintf(out, "architecture: native only (%s); other syscall ABIs (x32, i386) kill the process\n",
            seccomp_arch_native() == SCMP_ARCH_X86_64 ? "x86_64" : "this machine's");
    for (size_t i = 0; i < p->n_rules; i++) {
        if (p->rules[i].nr < 0)
            off_arch++;
        else
            counts[p->rules[i].action.kind]++;
    }
    fprintf(out, "rules: %zu (allow %zu, log %zu, errno %zu, trap %zu, kill-thread %zu, "
            "kill-process %zu; not on this architecture %zu; entries skipped by includes/"
            "excludes %zu)\n",
            p->n_rules, counts[BB_ACT_ALLOW], counts[BB_ACT_LOG], counts[BB_ACT_ERRNO],
            counts[BB_ACT_TRAP], counts[BB_ACT_KILL_THREAD], counts[BB_ACT_KILL_PROCESS], off_arch,
            p->n_skipped);
    if (p->n_skipped)
        fprintf(out, "note: includes/excludes are applied for a worker with no capabilities on "
                "this architecture; capability-gated rules are left out\n");

    /* allowed calls, sorted, unique; '*' marks conditional ones */
    const char **names = calloc(p->n_rules + 1, sizeof *names);
    size_t n = 0;
    if (!names)
        return -1;
    for (size_t i = 0; i < p->n_rules; i++)
        if (p->rules[i].nr >= 0 && action_allows(p->rules[i].action))
            names[n++] = p->rules[i].name;
    qsort(names, n, sizeof *names, cmp_str);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            names[unique++] = names[i];
    fprintf(out, "allowed syscalls (%zu; * = only with the arguments shown below):\n", unique);
    int col = 0;
    for (size_t i = 0; i < unique; i++) {
        int conditional = bb_policy_verdict_for(p, names[i]) != BB_VERDICT_ALLOWED;
        int w = (int)strlen(names[i]) + conditional + 1;
        if (col + w > 78) {
            fputc('\n', out);
            col = 0;
        }
        fprintf(out, "%s%s%s", col ? " " : "  ", names[i], conditional ? "*" : "");
        col += w + (col ? 0 : 1);
    }
    fputs(unique ? "\n" : "  (none)\n", out);
    free(names);

    fputs("dangerous calls:\n", out);
    for (size_t d = 0; d < sizeof dangerous / sizeof dangerous[0]; d++) {
        const char *name = dangerous[d].name;
        bb_policy_verdict v = bb_policy_verdict_for(p, name);
        static const char *const words[] = {"allowed", "denied", "conditional", "not on this arch"};
        fprintf(out, "  %-18s %-11s", name, words[v]);
        int nr = seccomp_syscall_resolve_name(name);
        if (v == BB_VERDICT_CONDITIONAL || v == BB_VERDICT_DENIED || v == BB_VERDICT_ALLOWED) {
            int any = 0, conditional = 0;
            for (size_t i = 0; i < p->n_rules; i++) {
                const bb_policy_rule *r = &p->rules[i];
                if (r->nr != nr)
                    continue;
                fputs(any ? "; " : " ", out);
                fputs(bb_policy_action_text(r->action, buf, sizeof buf), out);
                if (r->n_args) {
                    fputs(" if ", out);
                    print_conditions(out, r);
                    conditional = 1;
                }
                fprintf(out, " (line %d)", r->line);
                any = 1;
            }
            if (!any)
                fprintf(out, " %s (default)", bb_policy_action_text(p->default_action, buf2, sizeof buf2));
            else if (conditional)
                fprintf(out, "; otherwise %s", bb_policy_action_text(p->default_action, buf2, sizeof buf2));
        }
        fprintf(out, "  [%s]\n", dangerous[d].why);
    }
    return ferror(out) ? -1 : 0;
}
