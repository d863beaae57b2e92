/* main.c: the `blockbox` command: picks the subcommand (run, version, policy check,
 * doctor, bench, help) and hands over; `run` lives in run.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blockbox/driver.h>

#include "bench/bench.h"
#include "cli.h"
#include "local/doctor.h"
#include "local/policy.h"
#include "serve/serve.h"

void bb_cli_usage(FILE *out)
{
    fputs("usage: blockbox <command> [options]\n"
          "\n"
          "Runs untrusted Roboflow custom Python blocks in a sandbox: a local seccomp jail\n"
          "or Modal, picked by WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE (or --mode).\n"
          "\n"
          "commands:\n"
          "  run --code RUN.py [options]   run a block once; prints one JSON object\n"
          "  version [--json]              library and runtime versions\n"
          "  policy check FILE             check a seccomp policy (OCI/Docker JSON)\n"
          "  doctor [--json]               which sandbox layers this host offers\n"
          "  bench [--quick] [--json]      benchmarks against baselines\n"
          "  serve [--listen HOST:PORT]    the Roboflow remote-executor protocol over HTTP\n"
          "  help [run]                    this text, or the options of run\n"
          "\n"
          "exit status of run: 0 success, 1 the block raised, 2 bad usage or invalid input,\n"
          "3 a sandbox limit or violation, 4 backend or configuration failure.\n",
          out);
}

void bb_cli_usage_run(FILE *out)
{
    fputs("usage: blockbox run --code RUN.py [options]\n"
          "\n"
          "  --code FILE            the block's run code (required, UTF-8, at most 1 MiB)\n"
          "  --init FILE            init code; its init() runs once, its dict is self._init_results\n"
          "  --function NAME        the run function (default: run)\n"
          "  --init-function NAME   the init function (default: init)\n"
          "  --imports FILE         extra import lines, one per line (blank lines skipped)\n"
          "  --inputs FILE          the inputs: one JSON object {name: value} ('-' = stdin)\n"
          "  --input NAME=JSON      one input as JSON text (repeatable; strings need quotes)\n"
          "  --input NAME=@FILE     one input read from an image file (a workflow_image)\n"
          "  --context FILE         the workflow context (a JSON object)\n"
          "  --mode MODE            driver: local, modal, or a plugin's (default: the environment)\n"
          "  --timeout SECONDS      wall-clock limit per run (default 20)\n"
          "  --memory MB            memory limit per worker (default 512)\n"
          "  --workspace ID         Roboflow workspace id (modal endpoint)\n"
          "  --max-inputs N         runs per worker before it is recycled (0 = unlimited)\n"
          "\n"
          "--inputs and --input exclude each other. Prints exactly one JSON object:\n"
          "  {\"success\", \"outputs\", \"stdout\", \"stderr\"} and on failure \"error_type\",\n"
          "  \"error\", \"line_number\", \"function_name\", \"traceback\"; \"debug_traces\" (the\n"
          "  block's debug_traces.append entries, also on failure); \"denied_syscalls\" when\n"
          "  the sandbox denied system calls. Exit status: 0 ok, 1 the block raised, 2 bad\n"
          "  usage or invalid input, 3 sandbox limit or violation, 4 backend or configuration.\n",
          out);
}

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

static int cmd_policy(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        bb_cli_eprintf(stderr, "usage: blockbox policy check FILE\n");
        return BB_EXIT_USAGE;
    }
    return bb_policy_check_file(argv[2], stdout, stderr);
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
    int status = bb_doctor(cfg, json, stdout);
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
    if (strcmp(cmd, "bench") == 0)
        return bb_bench_main(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return bb_serve_main(argc - 1, argv + 1);
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
