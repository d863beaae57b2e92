/* blockbox/local.h: the local driver's public face for programs: the host report of
 * `blockbox doctor` and the seccomp policy checker (`blockbox-policy-check`). */
#ifndef BLOCKBOX_LOCAL_H
#define BLOCKBOX_LOCAL_H

#include <stdio.h>

#include "../blockbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Checks this host and the configuration for local mode (seccomp, each namespace,
 * cgroups, uids, Python with numpy and cv2, the worker, the policy file) and writes
 * the report to out: a table for people, or one JSON object when json is non-zero.
 * cfg NULL: defaults only. Returns the exit status of `blockbox doctor`: 0 when
 * local mode can run here, 4 when it cannot. */
int bb_local_doctor(const bb_config *cfg, int json, FILE *out);

/* Checks a seccomp policy file (OCI/Docker JSON): parses and validates it, compiles
 * it to BPF (what libseccomp would refuse shows here, not at the first run) and
 * writes the human report to out; every problem goes to err as "FILE:LINE: …".
 * Returns 0 for a good policy, 2 for a bad or unreadable one. */
int bb_local_policy_check(const char *path, FILE *out, FILE *err);

#ifdef __cplusplus
}
#endif
#endif
