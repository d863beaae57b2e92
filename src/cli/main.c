/* main.c: the `blockbox` command: picks the subcommand and hands over: run (run.c),
 * version, doctor; policy check, bench and serve are programs of their own, run here. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <blockbox/driver.h>
#include <blockbox/local.h>

#include "cli.h"

static int cmd_version(int argc, char **argv)
{
    int json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !json)) {
        bb_cli_eprintf(stderr, "usage: blockbox version [--json]\n");
        return BB_EXIT_USAGE;
    }
    if (json)
        printf("{\"version\": \"%s\", \"runtime_version\": \"%s\", \"driver_abi\": %u}\n",
               bb_version(), BLOCKBOX_RUNTIME_VERSION, BB_DRIVER_ABI_VERSION);
    else
        printf("blockbox %s (runtime %s, driver ABI %u)\n", bb_version(), BLOCKBOX_RUNTIME_VERSION,
               BB_DRIVER_ABI_VERSION);
    return BB_EXIT_OK;
}

/* Runs the program `name` found beside this one (bin/ of a build tree or an install)
 * with args (NULL-terminated, args[0] ignored) in this process: its output and exit
 * status are the command's. Returns only when it cannot be run (exit status 4). */
static int delegate(const char *name, char **args)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = n > 0 ? (self[n] = '\0', strrchr(self, '/')) : NULL;
    if (!slash) {
        bb_cli_eprintf(stderr, "blockbox: cannot find %s: /proc/self/exe: %s\n", name, strerror(errno));
        return BB_EXIT_BACKEND;
    }
    *slash = '\0';
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", self, name);
    args[0] = path;
    execv(path, args);
    bb_cli_eprintf(stderr, "blockbox: cannot run %s: %s\n", path, strerror(errno));
    return BB_EXIT_BACKEND;
}

static int cmd_policy(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        bb_cli_eprintf(stderr, "usage: blockbox policy check FILE\n");
        return BB_EXIT_USAGE;
    }
    /* "--": the argument is the file, whatever it looks like. */
    char *args[] = {NULL, "--", argv[2], NULL};
    return delegate("blockbox-policy-check", args);
}

static int cmd_doctor(int argc, char **argv)
{
    int json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !json)) {
        bb_cli_eprintf(stderr, "usage: blockbox doctor [--json]\n");
        return BB_EXIT_USAGE;
    }
    bb_error *err = NULL;
    bb_config *cfg = bb_config_from_env(&err);
    if (!cfg) {
        bb_cli_eprintf(stderr, "blockbox doctor: %s: %s\n", bb_error_type_name(err),
                       bb_error_message(err));
        int status = bb_error_exit_code(err);
        bb_error_free(err);
        return status;
    }
    int status = bb_local_doctor(cfg, json, stdout);
    bb_config_free(cfg);
    return status;
}

int main(int argc, char **argv)
{
    /* A reader that goes away must not kill us before the report is written; write
     * errors are reported as such instead. */
    signal(SIGPIPE, SIG_IGN);
    bb_cli_secrets_init();
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (!cmd) {
        bb_cli_usage(stderr);
        return BB_EXIT_USAGE;
    }
    if (strcmp(cmd, "run") == 0)
        return bb_cli_run(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    if (strcmp(cmd, "policy") == 0)
        return cmd_policy(argc - 1, argv + 1);
    if (strcmp(cmd, "doctor") == 0)
        return cmd_doctor(argc - 1, argv + 1);
    /* argv[argc] is NULL: the options follow the command name, which delegate replaces. */
    if (strcmp(cmd, "bench") == 0)
        return delegate("blockbox-bench", argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return delegate("blockbox-serve", argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc > 2 && strcmp(argv[2], "run") == 0)
            bb_cli_usage_run(stdout);
        else
            bb_cli_usage(stdout);
        return BB_EXIT_OK;
    }
    bb_cli_eprintf(stderr, "blockbox: unknown command '%s'\n\n", cmd);
    bb_cli_usage(stderr);
    return bb_cli_report_failure(BB_ERR_INVALID_REQUEST, "unknown command '%.100s'", cmd);
}
