/* policy_check.c: the policy checker behind `blockbox-policy-check FILE` (and
 * `blockbox policy check FILE`): parse, compile to BPF, report (blockbox/local.h). */
#include "blockbox/local.h"

#include "policy.h"
#include "seccomp.h"

int bb_local_policy_check(const char *path, FILE *out, FILE *err)
{
    bb_error *e = NULL;
    bb_policy *p = NULL;
    bb_policy_load_file(path, &p, &e);
    if (!p) {
        fprintf(err, "%s\n", bb_error_message(e));
        fprintf(err, "%s: policy rejected\n", path);
        bb_error_free(e);
        return 2;
    }
    const char *warnings = bb_policy_warnings(p);
    if (warnings && *warnings)
        fputs(warnings, err);
    bb_seccomp_program prog = {0};
    if (bb_seccomp_compile(p, &prog, &e) < 0) {
        fprintf(err, "%s\n", bb_error_message(e));
        fprintf(err, "%s: policy rejected\n", path);
        bb_error_free(e);
        bb_policy_free(p);
        return 2;
    }
    int rc = bb_policy_report(p, out);
    fprintf(out, "compiled: %u BPF instructions\n", (unsigned)prog.len);
    fprintf(out, "%s: OK\n", path);
    bb_seccomp_program_free(&prog);
    bb_policy_free(p);
    return rc < 0 ? 2 : 0;
}
