/* doctor.h: `blockbox doctor`, the report of which sandbox layers this host offers.
 * Declared here for the CLI (src/cli); implemented by the local driver's owner. */
#ifndef BB_DOCTOR_H
#define BB_DOCTOR_H

#include <stdio.h>

#include "blockbox.h"

/* Checks the host and the configuration (seccomp, namespaces, cgroups, worker,
 * policy, driver) and writes a report to out: text, or one JSON object if json.
 * Returns the CLI exit status: 0 when local mode can run here, 4 otherwise. */
int bb_doctor(const bb_config *cfg, int json, FILE *out);

#endif
