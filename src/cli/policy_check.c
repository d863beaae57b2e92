/* policy_check.c: the program blockbox-policy-check FILE (also `blockbox policy check
 * FILE`): checks a seccomp policy through blockbox/local.h; exit 0 good, 2 bad. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <blockbox/local.h>

static void usage(FILE *out)
{
    fputs("usage: blockbox-policy-check [--] FILE\n"
          "\n"
          "Checks a seccomp policy (OCI/Docker JSON) for the local sandbox: parses and\n"
          "validates it (every problem as FILE:LINE on stderr), compiles it to BPF and\n"
          "prints what it allows and denies. Exit status: 0 good, 2 bad or unreadable.\n",
          out);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);   /* a reader that goes away is a write error, not a kill */
    int first = argc > 1 && strcmp(argv[1], "--") == 0 ? 2 : 1;
    if (first == 1 && argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc - first != 1) {
        usage(stderr);
        return 2;
    }
    int status = bb_local_policy_check(argv[first], stdout, stderr);
    if (fflush(stdout) != 0 && status == 0)
        status = 2;
    return status;
}
