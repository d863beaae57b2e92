/* test_policy.c: the seccomp policy parser accepts the default and Docker-style
 * policies, and rejects each malformed or hostile one naming the right line. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockbox/local.h"
#include "error.h"
#include "policy.h"
#include "seccomp.h"
#include "check_main.h"

static const bb_policy_rule *find_rule(const bb_policy *p, const char *name, size_t nth)
{
    for (size_t i = 0; i < bb_policy_rule_count(p); i++) {
        const bb_policy_rule *r = bb_policy_rule_at(p, i);
        if (strcmp(r->name, name) == 0 && nth-- == 0)
            return r;
    }
    return NULL;
}

START_TEST(default_policy_parses)
{
    bb_error *err = NULL;
    bb_policy *p = NULL;
    bb_policy_load_default(&p, &err);
    ck_assert_msg(p, "default policy: %s", err ? bb_error_message(err) : "?");
    ck_assert_int_eq(bb_policy_default_action(p).kind, BB_ACT_TRAP);
    ck_assert_uint_gt(bb_policy_rule_count(p), 150);
    ck_assert_str_eq(bb_policy_warnings(p), "");
    /* what a block needs */
    const char *needed[] = {"read", "write", "openat", "close", "futex", "getrandom",
                            "clock_nanosleep", "newfstatat", "getdents64", "exit_group", NULL};
    for (const char **n = needed; *n; n++)
        ck_assert_msg(bb_policy_verdict_for(p, *n) == BB_VERDICT_ALLOWED, "%s not allowed", *n);
    /* what it must never get */
    const char *never[] = {"socket", "connect", "execve", "execveat", "fork", "vfork", "ptrace",
                           "io_uring_setup", "userfaultfd", "bpf", "keyctl", "mount", "unshare",
                           "setns", "kill", "tgkill", "perf_event_open", "pidfd_getfd", "memfd_create",
                           NULL};
    for (const char **n = never; *n; n++)
        ck_assert_msg(bb_policy_verdict_for(p, *n) == BB_VERDICT_DENIED, "%s not denied", *n);
    /* mmap and mprotect: W^X, never executable writable memory */
    const char *conditional[] = {"clone", "rt_sigaction", "ioctl", "prctl", "fcntl", "prlimit64",
                                 "mmap", "mprotect", "socketpair", NULL};
    for (const char **n = conditional; *n; n++)
        ck_assert_msg(bb_policy_verdict_for(p, *n) == BB_VERDICT_CONDITIONAL, "%s not conditional", *n);
    /* clone3 answers ENOSYS so glibc falls back to clone (whose flags can be checked) */
    const bb_policy_rule *c3 = find_rule(p, "clone3", 0);
    ck_assert_ptr_nonnull(c3);
    ck_assert_int_eq(c3->action.kind, BB_ACT_ERRNO);
    ck_assert_int_eq(c3->action.errno_ret, ENOSYS);
    /* clone: threads only */
    const bb_policy_rule *cl = find_rule(p, "clone", 0);
    ck_assert_ptr_nonnull(cl);
    ck_assert_uint_eq(cl->n_args, 1);
    ck_assert_int_eq(cl->args[0].op, BB_OP_MASKED_EQ);
    ck_assert_uint_eq(cl->args[0].value_two, 0x10000);
    /* the rule's line is the line of its name in the file */
    const char *at = bb_default_policy_json;
    for (int l = 1; l < cl->line; l++)
        at = strchr(at, '\n') + 1;
    ck_assert_msg(strncmp(strchr(at, '"'), "\"clone\"", 7) == 0, "line %d is not the clone name", cl->line);
    bb_policy_free(p);
}
END_TEST

/* A profile in the shape Docker/runc ship: ERRNO default, archMap, names[], comments,
 * capability- and arch-gated entries, args, a legacy "name" entry. */
static const char docker_sample[] =
    "{\n"
    "  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n"
    "  \"defaultErrnoRet\": 1,\n"
    "  \"archMap\": [\n"
    "    {\"architecture\": \"SCMP_ARCH_X86_64\", \"subArchitectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]},\n"
    "    {\"architecture\": \"SCMP_ARCH_AARCH64\", \"subArchitectures\": [\"SCMP_ARCH_ARM\"]}\n"
    "  ],\n"
    "  \"syscalls\": [\n"
    "    {\"names\": [\"read\", \"write\", \"close\", \"_llseek\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [], \"comment\": \"\", \"includes\": {}, \"excludes\": {}},\n"
    "    {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 0, \"valueTwo\": 0, \"op\": \"SCMP_CMP_EQ\"}]},\n"
    "    {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 4294967295, \"op\": \"SCMP_CMP_EQ\"}]},\n"
    "    {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 2114060288, \"valueTwo\": 0, \"op\": \"SCMP_CMP_MASKED_EQ\"}], \"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},\n"
    "    {\"names\": [\"mount\", \"unshare\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},\n"
    "    {\"names\": [\"arm_fadvise64_64\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"arches\": [\"arm\", \"armeb\"]}},\n"
    "    {\"names\": [\"clone3\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38, \"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},\n"
    "    {\"name\": \"getpid\", \"action\": \"SCMP_ACT_LOG\"},\n"
    "    {\"names\": [\"ptrace\"], \"action\": \"SCMP_ACT_KILL_PROCESS\", \"includes\": {\"minKernel\": \"4.8\"}},\n"
    "    {\"names\": [\"mmap\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 2, \"value\": \"0xffffffff00000000\", \"valueTwo\": \"0\", \"op\": \"SCMP_CMP_MASKED_EQ\"}]}\n"
    "  ]\n"
    "}\n";

START_TEST(docker_sample_parses)
{
    bb_error *err = NULL;
    bb_policy *p = bb_policy_parse(docker_sample, strlen(docker_sample), "docker.json", 0, &err);
    ck_assert_msg(p, "docker sample: %s", err ? bb_error_message(err) : "?");
    ck_assert_int_eq(bb_policy_default_action(p).kind, BB_ACT_ERRNO);
    ck_assert_int_eq(bb_policy_default_action(p).errno_ret, 1);
    /* capability-gated mount/unshare and the arm-only entry are skipped */
    ck_assert_ptr_null(find_rule(p, "mount", 0));
    ck_assert_ptr_null(find_rule(p, "unshare", 0));
    ck_assert_ptr_null(find_rule(p, "arm_fadvise64_64", 0));
    ck_assert_int_eq(bb_policy_verdict_for(p, "mount"), BB_VERDICT_DENIED);
    /* excludes.caps applies to a worker without capabilities */
    ck_assert_ptr_nonnull(find_rule(p, "clone", 0));
    ck_assert_int_eq(find_rule(p, "clone3", 0)->action.errno_ret, 38);
    ck_assert_int_eq(find_rule(p, "getpid", 0)->action.kind, BB_ACT_LOG);
    ck_assert_int_eq(find_rule(p, "ptrace", 0)->action.kind, BB_ACT_KILL_PROCESS);
    ck_assert_ptr_nonnull(find_rule(p, "personality", 1));
    ck_assert_uint_eq(find_rule(p, "personality", 1)->args[0].value, 4294967295u);
    /* _llseek exists on 32-bit arches only: kept as a no-op rule */
    ck_assert_int_lt(find_rule(p, "_llseek", 0)->nr, 0);
    /* 64-bit values as strings (extension) */
    ck_assert_uint_eq(find_rule(p, "mmap", 0)->args[0].value, 0xffffffff00000000ull);
    ck_assert_int_eq(find_rule(p, "read", 0)->line, 9);
    ck_assert_int_eq(find_rule(p, "getpid", 0)->line, 16);
    bb_seccomp_program prog = {0};
    ck_assert_int_eq(bb_seccomp_compile(p, &prog, &err), 0);
    ck_assert_uint_gt(prog.len, 5);
    bb_seccomp_program_free(&prog);
    bb_policy_free(p);
}
END_TEST

/* Each malformed policy must fail with BB_ERR_CONFIGURATION naming the line. */
typedef struct bad_case {
    const char *text;
    int line;
    const char *says;
} bad_case;

#define HEAD "{\n  \"defaultAction\": \"SCMP_ACT_TRAP\",\n  \"syscalls\": [\n"  /* lines 1-3 */
#define TAIL "\n  ]\n}\n"

static const bad_case bad_cases[] = {
    {"{\n  \"syscalls\": []\n}\n", 1, "missing defaultAction"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"},\n"
          "    {\"names\": [\"write\",\n      \"sockett\"], \"action\": \"SCMP_ACT_ALLOW\"}" TAIL,
     6, "unknown syscall \"sockett\""},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
          "     \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_SORTA\"}]}" TAIL,
     5, "op must be one of"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
          "     \"args\": [{\"index\": 6, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}" TAIL,
     5, "index must be"},
    {HEAD "    {\"names\": [\"read\"],\n     \"action\": \"SCMP_ACT_TRACE\"}" TAIL, 5, "not supported"},
    {HEAD "    {\"names\": [\"read\"],\n     \"action\": \"SCMP_ACT_NOTIFY\"}" TAIL, 5, "not supported"},
    {HEAD "    {\"names\": [\"read\"],\n     \"action\": \"SCMP_ACT_MAYBE\"}" TAIL, 5, "unknown action"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n     \"arg\": []}" TAIL, 5,
     "unknown key \"arg\""},
    {HEAD "    {\"names\": \"read\", \"action\": \"SCMP_ACT_ALLOW\"}" TAIL, 4, "names must be"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"},\n"
          "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\"}" TAIL,
     5, "conflicting rules for read"},
    {HEAD "    {\"names\": [\"ioctl\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
          "     \"args\": [{\"index\": 1, \"value\": 21522, \"op\": \"SCMP_CMP_NE\"}]},\n"
          "    {\"names\": [\"ioctl\"], \"action\": \"SCMP_ACT_TRAP\",\n"
          "     \"args\": [{\"index\": 1, \"value\": 21522, \"op\": \"SCMP_CMP_EQ\"}]}" TAIL,
     6, "has the default action"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n     \"action\": \"SCMP_ACT_TRAP\"}" TAIL,
     5, "duplicate key \"action\""},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n     \"errnoRet\": 1}" TAIL, 5,
     "errnoRet is only valid"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\",\n     \"errnoRet\": 5000}" TAIL, 5,
     "errno from 1 to 4095"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
          "     \"args\": [{\"index\": 0, \"value\": -1, \"op\": \"SCMP_CMP_EQ\"}]}" TAIL, 5, "whole number"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
          "     \"args\": [{\"index\": 0, \"value\": 1.5, \"op\": \"SCMP_CMP_EQ\"}]}" TAIL, 5, "whole number"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
          "     \"args\": [{\"index\": 0, \"value\": 1e300, \"op\": \"SCMP_CMP_EQ\"}]}" TAIL, 5, "whole number"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n"
          "     \"args\": [{\"index\": 0, \"value\": 15, \"valueTwo\": 16, \"op\": \"SCMP_CMP_MASKED_EQ\"}]}" TAIL,
     5, "outside the mask"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [\n"
          "      {\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_GT\"},\n"
          "      {\"index\": 0, \"value\": 9, \"op\": \"SCMP_CMP_LT\"}]}" TAIL, 6, "compared twice"},
    {HEAD "    {\"names\": [\"read\"]}" TAIL, 4, "has no action"},
    {HEAD "    {\"names\": [\"re ad\"], \"action\": \"SCMP_ACT_ALLOW\"}" TAIL, 4, "not a syscall name"},
    {"[\"SCMP_ACT_ALLOW\"]\n", 1, "a policy is a JSON object"},
    {"{\n  \"defaultAction\": \"SCMP_ACT_TRAP\",\n  \"syscalls\": [\n    {\"names\": [\"read\"],,}\n  ]\n}\n",
     4, "not valid JSON"},
    {"{\"defaultAction\": \"SCMP_ACT_TRAP\"}\n\n{\"defaultAction\": \"SCMP_ACT_ALLOW\"}\n", 3,
     "text after the end"},
    {"{\n  \"defaultAction\": \"SCMP_ACT_TRAP\",\n  \"architectures\": [\"SCMP_ARCH_PPC64LE\"]\n}\n", 3,
     "does not cover this machine"},
    {"{\n  \"defaultAction\": \"SCMP_ACT_TRAP\",\n  \"architectures\": [\"SCMP_ARCH_Z80\"]\n}\n", 3,
     "unknown architecture"},
    {"{\n  \"defaultAction\": \"SCMP_ACT_TRAP\",\n  \"listenerPath\": \"/run/x.sock\"\n}\n", 3,
     "not supported"},
    {"{\n  \"defaultAction\": \"SCMP_ACT_TRAP\",\n  \"sycalls\": []\n}\n", 3, "unknown key \"sycalls\""},
    {"{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"defaultErrnoRet\": 1\n}\n", 3,
     "defaultErrnoRet is only valid"},
    {HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n     \"includes\": {\"caps\": \"CAP_X\"}}" TAIL,
     5, "caps must be"},
};

START_TEST(malformed_policy_names_its_line)
{
    const bad_case *c = &bad_cases[_i];
    bb_error *err = NULL;
    bb_policy *p = bb_policy_parse(c->text, strlen(c->text), "bad.json", 0, &err);
    ck_assert_msg(!p, "case %d accepted:\n%s", _i, c->text);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_CONFIGURATION);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "bad.json:%d: ", c->line);
    const char *msg = bb_error_message(err);
    ck_assert_msg(strncmp(msg, prefix, strlen(prefix)) == 0, "case %d: want %s…, got: %s", _i, prefix, msg);
    ck_assert_msg(strstr(msg, c->says), "case %d: want \"%s\" in: %s", _i, c->says, msg);
    ck_assert_int_eq(bb_error_line(err), c->line);
    bb_error_free(err);
}
END_TEST

START_TEST(every_unknown_name_is_listed_with_its_line)
{
    const char *text = HEAD "    {\"names\": [\"read\", \"nosuch_one\"], \"action\": \"SCMP_ACT_ALLOW\"},\n"
                            "    {\"names\": [\"write\"], \"action\": \"SCMP_ACT_ALLOW\"},\n"
                            "    {\"names\": [\"nosuch_two\"], \"action\": \"SCMP_ACT_ALLOW\"}" TAIL;
    bb_error *err = NULL;
    ck_assert_ptr_null(bb_policy_parse(text, strlen(text), "p.json", 0, &err));
    ck_assert_ptr_nonnull(strstr(bb_error_message(err), "p.json:4: unknown syscall \"nosuch_one\""));
    ck_assert_ptr_nonnull(strstr(bb_error_message(err), "p.json:6: unknown syscall \"nosuch_two\""));
    bb_error_free(err);
    err = NULL;


    /* lenient: unknown names in ALLOW rules are warnings (the call stays denied)… */
    bb_policy *p = bb_policy_parse(text, strlen(text), "p.json", BB_POLICY_LENIENT_NAMES, &err);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(strstr(bb_policy_warnings(p), "p.json:4: warning: unknown syscall \"nosuch_one\""));
    ck_assert_ptr_nonnull(strstr(bb_policy_warnings(p), "p.json:6: warning: unknown syscall \"nosuch_two\""));
    ck_assert_ptr_null(find_rule(p, "nosuch_one", 0));
    bb_policy_free(p);

    /* …but never in denying rules: skipping them would open what was meant closed */
    const char *deny = "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [\n"
                       "    {\"names\": [\"sokcet\"], \"action\": \"SCMP_ACT_ERRNO\"}" TAIL;
    ck_assert_ptr_null(bb_policy_parse(deny, strlen(deny), "d.json", BB_POLICY_LENIENT_NAMES, &err));
    ck_assert_ptr_nonnull(strstr(bb_error_message(err), "d.json:4: unknown syscall \"sokcet\""));
    bb_error_free(err);
}
END_TEST

START_TEST(hostile_sizes_and_depths_are_refused)
{
    bb_error *err = NULL;
    /* 100 000 levels of nesting: refused before cJSON recurses */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[depth * 2] = '\0';
    ck_assert_ptr_null(bb_policy_parse(deep, depth * 2, "deep.json", 0, &err));
    ck_assert_ptr_nonnull(strstr(bb_error_message(err), "nested deeper"));
    bb_error_free(err);
   err = NULL;
    free(deep);

    /* 2 MiB of whitespace after a valid policy: refused by size */
    size_t big = 2u << 20;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, "{\"defaultAction\": \"SCMP_ACT_TRAP\"}", 34);
    huge[big] = '\0';
    ck_assert_ptr_null(bb_policy_parse(huge, big, "huge.json", 0, &err));
    ck_assert_ptr_nonnull(strstr(bb_error_message(err), "the limit is"));
    bb_error_free(err);
   err = NULL;

    /* the same through a file */
    char path[] = "/tmp/bb-policy-huge-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, huge, big), (ssize_t)big);
    close(fd);
    bb_policy *none = NULL;
    ck_assert_int_eq(bb_policy_load_file(path, &none, &err), -1);
    ck_assert_ptr_null(none);
    ck_assert_ptr_nonnull(strstr(bb_error_message(err), "the limit is"));
    bb_error_free(err);
   err = NULL;
    unlink(path);
    free(huge);

    /* a NUL byte inside the text (a C parser would stop there and see another policy) */
    const char nul[] = "{\"defaultAction\": \"SCMP_ACT_TRAP\"}\0{\"defaultAction\": \"SCMP_ACT_ALLOW\"}";
    ck_assert_ptr_null(bb_policy_parse(nul, sizeof nul - 1, "nul.json", 0, &err));
    ck_assert_ptr_nonnull(strstr(bb_error_message(err), "NUL"));
    bb_error_free(err);
   err = NULL;

    /* a directory, a missing file */
    ck_assert_int_eq(bb_policy_load_file("/tmp", &none, &err), -1);
    bb_error_free(err);
   err = NULL;
    ck_assert_int_eq(bb_policy_load_file("/nonexistent/policy.json", &none, &err), -1);
    ck_assert_int_eq(bb_error_get_kind(err), BB_ERR_CONFIGURATION);
    bb_error_free(err);
}
END_TEST

START_TEST(report_accounts_for_dangerous_calls)
{
    bb_error *err = NULL;
    bb_policy *p = NULL;
    bb_policy_load_default(&p, &err);
    ck_assert_ptr_nonnull(p);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_int_eq(bb_policy_report(p, out), 0);
    fclose(out);
    const char *expect[] = {"default action: SCMP_ACT_TRAP", "allowed syscalls",
                            "  socket             denied", "  execve             denied",
                            "  fork               denied", "  clone              conditional",
                            "  ptrace             denied", "  io_uring_setup     denied",
                            "  userfaultfd        denied", "  bpf                denied",
                            "  keyctl             denied", "  mount              denied",
                            "  unshare            denied", "  setns              denied",
                            "  kill               denied", "  perf_event_open    denied",
                            "  clone3             denied      SCMP_ACT_ERRNO(38)",
                            "  rt_sigaction       conditional", NULL};
    for (const char **e = expect; *e; e++)
        ck_assert_msg(strstr(text, *e), "report lacks \"%s\":\n%s", *e, text);
    /* a denylist policy shows the same calls as allowed */
    const char *open_policy = "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}";
    bb_policy *q = bb_policy_parse(open_policy, strlen(open_policy), "open.json", 0, &err);
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_nonnull(strstr(bb_policy_warnings(q), "denylist"));
    free(text);
    out = open_memstream(&text, &len);
    bb_policy_report(q, out);
    fclose(out);
    ck_assert_ptr_nonnull(strstr(text, "  socket             allowed"));
    free(text);
    bb_policy_free(q);
    bb_policy_free(p);
}
END_TEST

static int check_text(const char *policy, char **out_text, char **err_text)
{
    char path[] = "/tmp/bb-policy-check-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, policy, strlen(policy)), (ssize_t)strlen(policy));
    close(fd);
    size_t a, b;
    FILE *out = open_memstream(out_text, &a), *err = open_memstream(err_text, &b);
    int rc = bb_local_policy_check(path, out, err);
    fclose(out);
    fclose(err);
    unlink(path);
    return rc;
}

START_TEST(check_file_exit_status_and_messages)
{
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(check_text(bb_default_policy_json, &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, ": OK"));
    ck_assert_ptr_nonnull(strstr(out, "BPF instructions"));
    ck_assert_str_eq(err, "");
    free(out);
    free(err);

    ck_assert_int_eq(check_text(HEAD "    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"},\n"
                                     "    {\"names\": [\"frobnicate\"], \"action\": \"SCMP_ACT_ALLOW\"}" TAIL,
                                &out, &err), 2);
    ck_assert_msg(strstr(err, ":5: unknown syscall \"frobnicate\""), "got: %s", err);
    ck_assert_ptr_nonnull(strstr(err, "policy rejected"));
    ck_assert_str_eq(out, "");
    free(out);
    free(err);

    /* warnings name their line and do not fail the check */
    ck_assert_int_eq(check_text("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [\n"
                                "    {\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ERRNO\"}" TAIL,
                                &out, &err), 0);
    ck_assert_msg(strstr(err, ":2: warning: defaultAction SCMP_ACT_ALLOW"), "got: %s", err);
    free(out);
    free(err);

    size_t a, b;
    FILE *o = open_memstream(&out, &a), *e = open_memstream(&err, &b);
    ck_assert_int_eq(bb_local_policy_check("/nonexistent.json", o, e), 2);
    fclose(o);
    fclose(e);
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));
    free(out);
    free(err);
}
END_TEST

START_TEST(load_picks_default_or_file)
{
    bb_error *err = NULL;
    bb_policy *p = bb_policy_load(NULL, &err);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(bb_policy_source(p), "default.json");
    bb_policy_free(p);
    p = bb_policy_load(POLICY_DIR "/default.json", &err);
    ck_assert_msg(p, "%s", err ? bb_error_message(err) : "");
    ck_assert_uint_gt(bb_policy_rule_count(p), 150);
    bb_policy_free(p);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("parse", default_policy_parses),
        BB_CHECK_TEST("parse", docker_sample_parses),
        BB_CHECK_LOOP("parse", malformed_policy_names_its_line, bad_cases),
        BB_CHECK_TEST("parse", every_unknown_name_is_listed_with_its_line),
        BB_CHECK_TEST("parse", hostile_sizes_and_depths_are_refused),
        BB_CHECK_TEST("parse", report_accounts_for_dangerous_calls),
        BB_CHECK_TEST("parse", check_file_exit_status_and_messages),
        BB_CHECK_TEST("parse", load_picks_default_or_file),
    };
    return bb_check_run("policy", 30, rows, BB_CHECK_COUNT(rows));
}
