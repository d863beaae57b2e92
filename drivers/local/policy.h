/* policy.h: seccomp policies in the OCI/Docker JSON format — parse, validate (with
 * FILE:LINE diagnostics) and summarise for people. */
#ifndef BB_POLICY_H
#define BB_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "blockbox.h"

/* Hostile-input caps: a policy text larger than this, or nested deeper, is refused
 * before cJSON sees it. */
#define BB_POLICY_MAX_BYTES (1u << 20)
#define BB_POLICY_MAX_DEPTH 16
/* At most this many rules (after expanding names[]); libseccomp programs are capped
 * at 4096 BPF instructions anyway. */
#define BB_POLICY_MAX_RULES 4096

/* The embedded default policy (policies/default.json, embedded at build time). */
extern const char bb_default_policy_json[];
extern const size_t bb_default_policy_json_len;

typedef enum bb_policy_action_kind {
    BB_ACT_KILL_PROCESS,   /* SCMP_ACT_KILL_PROCESS */
    BB_ACT_KILL_THREAD,    /* SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD */
    BB_ACT_TRAP,           /* SCMP_ACT_TRAP: SIGSYS; blockbox's handler records + EPERM */
    BB_ACT_ERRNO,          /* SCMP_ACT_ERRNO with errnoRet (default EPERM) */
    BB_ACT_LOG,            /* SCMP_ACT_LOG: allowed, logged by the kernel audit */
    BB_ACT_ALLOW,          /* SCMP_ACT_ALLOW */
} bb_policy_action_kind;

typedef struct bb_policy_action {
    bb_policy_action_kind kind;
    int errno_ret;          /* BB_ACT_ERRNO only: 1..4095 */
} bb_policy_action;

/* The comparison operators, same values as libseccomp's enum scmp_compare. */
typedef enum bb_policy_op {
    BB_OP_NE = 1,
    BB_OP_LT = 2,
    BB_OP_LE = 3,
    BB_OP_EQ = 4,
    BB_OP_GE = 5,
    BB_OP_GT = 6,
    BB_OP_MASKED_EQ = 7,   /* (arg & value) == valueTwo */
} bb_policy_op;

typedef struct bb_policy_arg {
    unsigned index;         /* 0..5 */
    bb_policy_op op;
    uint64_t value;
    uint64_t value_two;
} bb_policy_arg;

/* One syscall under one action; a JSON entry with names[a, b] becomes two rules.
 * All args must hold (AND); each index appears at most once per rule. */
typedef struct bb_policy_rule {
    char name[64];
    int nr;                 /* native number; < 0: not on this architecture (no-op) */
    bb_policy_action action;
    unsigned n_args;
    bb_policy_arg args[6];
    int line;               /* line of the name in the JSON text (0 if unknown) */
    int entry;              /* index of the syscalls[] entry it came from */
} bb_policy_rule;

typedef struct bb_policy bb_policy;

/* Parser flags. */
enum {
    /* Unknown syscall names inside ALLOW/LOG rules become warnings (the call simply
     * stays denied) instead of errors. Unknown names inside denying rules are always
     * errors: skipping them would open what the author meant to close. */
    BB_POLICY_LENIENT_NAMES = 1u << 0,
};

/*
 * Parses and validates a policy. `source` names the text in diagnostics ("FILE").
 * Every problem is a BB_ERR_CONFIGURATION error whose message starts with
 * "SOURCE:LINE: " (several problems are joined with newlines). Returns NULL on error.
 */
bb_policy *bb_policy_parse(const char *text, size_t len, const char *source, unsigned flags,
                           bb_error **err);
/* Reads a file (at most BB_POLICY_MAX_BYTES) and parses it strictly (no flags).
 * Returns 0 with *out set, or -1 with *err set. */
int bb_policy_load_file(const char *path, bb_policy **out, bb_error **err);
/* The embedded default policy (source "default.json"). Returns 0 or -1. */
int bb_policy_load_default(bb_policy **out, bb_error **err);
/* path NULL or "": the embedded default; else the file. The local driver's one call. */
bb_policy *bb_policy_load(const char *path, bb_error **err);
void bb_policy_free(bb_policy *p);

/* Read access for the compiler and for tests. */
const char *bb_policy_source(const bb_policy *p);
bb_policy_action bb_policy_default_action(const bb_policy *p);
size_t bb_policy_rule_count(const bb_policy *p);
const bb_policy_rule *bb_policy_rule_at(const bb_policy *p, size_t i);
/* Warnings collected while parsing ("SOURCE:LINE: warning: …" lines, "" if none). */
const char *bb_policy_warnings(const bb_policy *p);

/* Whether two actions are the same (kind, and errno for SCMP_ACT_ERRNO). */
int bb_policy_action_equal(bb_policy_action a, bb_policy_action b);
/* "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO(1)", … into buf; returns buf. */
const char *bb_policy_action_text(bb_policy_action a, char *buf, size_t cap);

/* What the policy does to one syscall, as a sentence fragment. */
typedef enum bb_policy_verdict {
    BB_VERDICT_ALLOWED,
    BB_VERDICT_DENIED,
    BB_VERDICT_CONDITIONAL,
    BB_VERDICT_NOT_ON_ARCH,   /* the name has no number on this machine */
} bb_policy_verdict;
bb_policy_verdict bb_policy_verdict_for(const bb_policy *p, const char *syscall_name);

/* Human summary: default action, counts per action, the allowed syscalls, and how
 * each call of a fixed list of dangerous ones is treated. Returns 0 or -1 (I/O). */
int bb_policy_report(const bb_policy *p, FILE *out);

/* The check of a policy file (parse, compile, report) is bb_local_policy_check in
 * blockbox/local.h (policy_check.c). */

#endif
