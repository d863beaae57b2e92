/* usage.c: the help texts of the `blockbox` command and of `blockbox run`, shared by
 * the dispatcher (main.c) and the run command (run.c). */
#include "cli.h"

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
          "  --input NAME=@FILE.npy one numpy array from a .npy file (C order, little-endian,\n"
          "                         bool/int/uint/float dtypes), passed as a buffer, not as JSON\n"
          "  --context FILE         the workflow context (a JSON object)\n"
          "  --output-dir DIR       write the output arrays to DIR/NAME.npy (the report names\n"
          "                         each file) instead of printing them in base64\n"
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
