/* cli.h: what the files of the `blockbox` command share: capped file reading, the
 * one JSON report of `blockbox run`, secret redaction and the usage texts. */
#ifndef BB_CLI_H
#define BB_CLI_H

#include <stdio.h>

#include "blockbox.h"
#include "blockbox/text.h"

/* Exit statuses of DESIGN §6 that the CLI produces itself. */
enum { BB_EXIT_OK = 0, BB_EXIT_USAGE = 2, BB_EXIT_BACKEND = 4 };

#define BB_CLI_MAX_CODE_BYTES (1u << 20)   /* run code, init code, imports file */

/* Reads a whole file, or "-" for stdin, refusing more than max bytes without
 * reading them (a regular file's size is checked first). what names the file in
 * errors ("--inputs file"). *out is NUL-terminated and malloc'd; *len excludes the
 * NUL. Errors are InvalidRequest. */
int bb_cli_read_file(const char *path, size_t max, const char *what, char **out, size_t *len,
                     bb_error **err);

/* Text that must never be printed: the values of the secret variables that are
 * set. Filled once in main; read-only afterwards. */
void bb_cli_secrets_init(void);
/* Replaces every secret in b (raw or JSON-escaped) with "(redacted)". */
void bb_cli_redact(bb_buf *b);
/* fprintf to a stream through the redactor. */
void bb_cli_eprintf(FILE *stream, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the run report: exactly one JSON object and a newline on stdout. res may be
 * NULL when err describes a failure before the block ran. Returns the exit status. */
int bb_cli_report(const bb_result *res, const bb_error *err);
/* The same with outputs_text (when not NULL) printed in place of the result's outputs:
 * the outputs with their buffers written back in the data form (src/cli/buffers.c). */
int bb_cli_report_outputs(const bb_result *res, const char *outputs_text, const bb_error *err);
/* Sets *err (unless it is set already) to a new error of this kind; returns -1. */
int bb_cli_fail(bb_error **err, bb_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports a failure that has no bb_error yet (bad usage, …): kind + message. */
int bb_cli_report_failure(bb_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Commands (each returns the process exit status). */
int bb_cli_run(int argc, char **argv);

/* Help texts. */
void bb_cli_usage(FILE *out);
void bb_cli_usage_run(FILE *out);

#endif
