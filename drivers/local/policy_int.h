/* policy_int.h: what the files of the policy parser share (policy.c, policy_lines.c,
 * policy_fields.c, policy_parse.c, policy_report.c); nothing outside them includes it. */
#ifndef BB_POLICY_INT_H
#define BB_POLICY_INT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "buf.h"
#include "policy.h"

/* At most this many problems are listed; then "too many problems". */
#define BB_POLICY_MAX_PROBLEMS 50

struct bb_policy {
    char *source;
    bb_policy_action default_action;
    bb_policy_rule *rules;
    size_t n_rules;
    size_t n_skipped;        /* entries left out by includes/excludes */
    char *warnings;
};

/* ---- the text (policy_lines.c) ------------------------------------------------ */

/* Hostile-input precheck before cJSON sees the text: size, NUL bytes, nesting depth
 * (no recursion). 0, or -1 with *err ("SOURCE:LINE: …"). */
int bb_policy_precheck(const char *text, size_t len, const char *source, bb_error **err);

/* Line numbers of the parsed nodes: cJSON keeps no positions. */
typedef struct node_line {
    const cJSON *node;
    int line;
} node_line;

typedef struct line_map {
    node_line *entries;
    size_t n;
} line_map;
/* Builds the map; on any mismatch it stays empty and every line reads as 0. The
 * caller frees map->entries. */
void bb_policy_lines_build(line_map *map, const cJSON *root, const char *text, size_t len);
/* The line of a node (0 if unknown). */
int bb_policy_line_of(const line_map *map, const cJSON *node);

/* ---- the parse context (policy_parse.c): collects problems and warnings -------- */

typedef struct parse_ctx {
    const char *source;
    unsigned flags;
    line_map lines;
    bb_buf problems;
    int n_problems;
    int first_line;
    bb_buf warnings;
    uint32_t native_arch;
} parse_ctx;
void bb_policy_problem(parse_ctx *ctx, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void bb_policy_warning(parse_ctx *ctx, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the fields of a policy (policy_fields.c); each returns 0, or -1 after
 * recording the problem in ctx ---------------------------------------------------- */

/* Every key of obj is in allowed[] (NULL-terminated) and appears once. */
int bb_policy_check_keys(parse_ctx *ctx, const cJSON *obj, const char *what, const char *const *allowed);
int bb_policy_parse_errno(parse_ctx *ctx, const cJSON *node, const char *what, int *out);
int bb_policy_parse_action(parse_ctx *ctx, const cJSON *node, bb_policy_action *out);
/* An array of strings. */
int bb_policy_parse_strings(parse_ctx *ctx, const cJSON *arr, const char *what);
/* The libseccomp token of an SCMP_ARCH_* name; 0 if unknown. */
uint32_t bb_policy_arch_token(const char *name);
/* A list of SCMP_ARCH_* names; *has_native is set when the native one is among them. */
int bb_policy_parse_arches(parse_ctx *ctx, const cJSON *arr, const char *what, int *has_native);
/* includes/excludes of an entry: 1 it applies here, 0 it does not, -1 a problem. */
int bb_policy_entry_applies(parse_ctx *ctx, const cJSON *entry);
/* The args[] of an entry into the rule template. */
int bb_policy_parse_args(parse_ctx *ctx, const cJSON *args, bb_policy_rule *tmpl);
/* [a-z0-9_]+, short enough for bb_policy_rule.name: 1, else 0. */
int bb_policy_valid_name(const char *s);

#endif
