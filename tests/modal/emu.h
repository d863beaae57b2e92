/* emu.h: runs the Modal endpoint emulator (tests/emulator/emulator.py) as a child process
 * and drives its control endpoints from C tests and the benchmark. */
#ifndef BB_TEST_EMU_H
#define BB_TEST_EMU_H

#include <sys/types.h>

#include "blockbox.h"

struct cJSON;

typedef struct emu {
    pid_t pid;
    int port;
    char dir[64];        /* certificate directory */
    char ca[128];        /* CA certificate that signs the server's */
    char url[64];        /* https://127.0.0.1:PORT/ */
    char token_id[64], token_secret[64];
} emu;

/* Starts the emulator (extra_args: NULL-terminated extra command-line arguments, or
 * NULL). Returns 0 or -1 (message on stderr). */
int emu_start(emu *e, const char *token_id, const char *token_secret, const char *const *extra_args);
/* emu_start without extra arguments for a suite's fixture (check_main.h), which cannot
 * fail otherwise: on failure it says so on stderr and exits 1. */
void emu_start_or_exit(emu *e, const char *token_id, const char *token_secret);
void emu_stop(emu *e);
/* POST /_reset. */
int emu_reset(emu *e);
/* POST /_faults with a JSON array text. */
int emu_faults(emu *e, const char *json_array);
/* GET /_stats, parsed (caller deletes). */
struct cJSON *emu_stats(emu *e);
/* One integer counter of /_stats (-1 if missing). */
long emu_stat(emu *e, const char *name);

/* A config pointing the modal driver at the emulator (workspace ws1, timeout seconds). */
bb_config *emu_config(const emu *e, double timeout_s);
/* One integer field of bb_executor_describe (-1 if missing). */
long emu_describe_field(bb_executor *ex, const char *name);

#endif
