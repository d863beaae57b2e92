/* policy.c: parses OCI/Docker seccomp JSON into validated rules, with FILE:LINE
 * diagnostics for every problem, and prints the human report of a policy. */
#include "policy.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"

#define MAX_PROBLEMS 50

struct bb_policy {
    char *source;
    bb_policy_action default_action;
    bb_policy_rule *rules;
    size_t n_rules;
    size_t n_skipped;        /* entries left out by includes/excludes */
    char *warnings;
};

/* Records the first problem's line in the error value (tests and tools read it). */
static void set_error_line(bb_error **err, int line)
{
    if (err && *err && *err != bb_error_oom())
        (*err)->line = line;
}

/* ---- hostile-input precheck: size, NUL bytes, nesting (no recursion) ---------- */

static int precheck(const char *text, size_t len, const char *source, bb_error **err)
{
    if (len > BB_POLICY_MAX_BYTES)
        return bb_fail(err, BB_ERR_CONFIGURATION, "%s:1: policy is %zu bytes; the limit is %u",
                       source, len, BB_POLICY_MAX_BYTES);
    int depth = 0, line = 1, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\0')
            return bb_fail(err, BB_ERR_CONFIGURATION, "%s:%d: NUL byte in policy text", source, line);
        if (c == '\n')
            line++;
        if (in_string) {
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"')
            in_string = 1;
        else if (c == '{' || c == '[') {
            if (++depth > BB_POLICY_MAX_DEPTH)
                return bb_fail(err, BB_ERR_CONFIGURATION,
                               "%s:%d: JSON nested deeper than %d levels", source, line,
                               BB_POLICY_MAX_DEPTH);
        } else if (c == '}' || c == ']')
            depth--;
    }
    return 0;
}

/* Appends a line number, doubling the array; frees it and returns -1 when out of memory. */
static int push_line(int **lines, size_t *n, size_t *cap, int line)
{
    if (*n == *cap) {
        int *bigger = realloc(*lines, (*cap *= 2) * sizeof **lines);
        if (!bigger) {
            free(*lines);
            *lines = NULL;
            return -1;
        }
        *lines = bigger;
    }
    (*lines)[(*n)++] = line;
    return 0;
}

/* ---- line numbers: cJSON keeps no positions, so the text is scanned once and the
 * N-th value in document order is matched with the N-th node of a pre-order walk. */

typedef struct node_line {
    const cJSON *node;
    int line;
} node_line;

typedef struct line_map {
    node_line *entries;
    size_t n;
} line_map;

static int *scan_value_lines(const char *text, size_t len, size_t *count)
{
    size_t cap = 64, n = 0;
    int *lines = malloc(cap * sizeof *lines);
    /* one bit per depth level: 1 = object; expecting a key in an object */
    unsigned char kinds[BB_POLICY_MAX_DEPTH + 2] = {0};
    int depth = 0, line = 1, expect_key = 0;
    if (!lines)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        int is_value = 0;
        if (c == '\n') {
            line++;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r')
            continue;
        if (c == '"') {
            int line_at = line;
            for (i++; i < len && text[i] != '"'; i++) {
                if (text[i] == '\\')
                    i++;
                else if (text[i] == '\n')
                    line++;
            }
            is_value = !expect_key;
            expect_key = 0;
            if (is_value && push_line(&lines, &n, &cap, line_at) < 0)
                return NULL;
            continue;
        }
        if (c == '{' || c == '[') {
            is_value = 1;
            if (depth < BB_POLICY_MAX_DEPTH + 1)
                kinds[++depth] = (c == '{');
            expect_key = (c == '{');
        } else if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
            expect_key = 0;
        } else if (c == ',') {
            expect_key = kinds[depth];
        } else if (c == ':') {
            expect_key = 0;
        } else {
            /* number, true, false, null: one token */
            is_value = 1;
            while (i + 1 < len && !strchr(" \t\r\n,]}:", text[i + 1]))
                i++;
        }
        if (is_value && push_line(&lines, &n, &cap, line) < 0)
            return NULL;
    }
    *count = n;
    return lines;
}

static size_t count_nodes(const cJSON *node)
{
    size_t n = 1;
    for (const cJSON *child = node->child; child; child = child->next)
        n += count_nodes(child);
    return n;
}

static void assign_lines(const cJSON *node, const int *lines, node_line *out, size_t *i)
{
    out[*i].node = node;
    out[*i].line = lines[*i];
    (*i)++;
    for (const cJSON *child = node->child; child; child = child->next)
        assign_lines(child, lines, out, i);
}

static int cmp_node_line(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const node_line *)a)->node;
    uintptr_t y = (uintptr_t)((const node_line *)b)->node;
    return x < y ? -1 : x > y;
}

/* Builds the map; on any mismatch the map stays empty and lines read as 0. */
static void line_map_build(line_map *map, const cJSON *root, const char *text, size_t len)
{
    size_t n_lines = 0, n_nodes = count_nodes(root), i = 0;
    int *lines = scan_value_lines(text, len, &n_lines);
    map->entries = NULL;
    map->n = 0;
    if (lines && n_lines == n_nodes && (map->entries = malloc(n_nodes * sizeof *map->entries))) {
        assign_lines(root, lines, map->entries, &i);
        map->n = n_nodes;
        qsort(map->entries, map->n, sizeof *map->entries, cmp_node_line);
    }
    free(lines);
}

static int line_of(const line_map *map, const cJSON *node)
{
    if (!node || !map->n)
        return 0;
    node_line key = {node, 0};
    const node_line *hit = bsearch(&key, map->entries, map->n, sizeof key, cmp_node_line);
    return hit ? hit->line : 0;
}

/* ---- parse context: collects problems and warnings ---------------------------- */

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

static void problem(parse_ctx *ctx, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(parse_ctx *ctx, const cJSON *node, const char *fmt, ...)
{
    int line = line_of(&ctx->lines, node);
    if (ctx->n_problems == 0)
        ctx->first_line = line;
    if (ctx->n_problems++ >= MAX_PROBLEMS) {
        if (ctx->n_problems == MAX_PROBLEMS + 1)
            bb_buf_printf(&ctx->problems, "\n%s: too many problems; stopping the list", ctx->source);
        return;
    }
    if (ctx->problems.len)
        bb_buf_putc(&ctx->problems, '\n');
    bb_buf_printf(&ctx->problems, "%s:%d: ", ctx->source, line ? line : 1);
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) >= 0) {
        bb_buf_puts(&ctx->problems, msg);
        free(msg);
    }
    va_end(ap);
}

static void warning(parse_ctx *ctx, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warning(parse_ctx *ctx, const cJSON *node, const char *fmt, ...)
{
    int line = line_of(&ctx->lines, node);
    bb_buf_printf(&ctx->warnings, "%s:%d: warning: ", ctx->source, line ? line : 1);
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) >= 0) {
        bb_buf_puts(&ctx->warnings, msg);
        free(msg);
    }
    va_end(ap);
    bb_buf_putc(&ctx->warnings, '\n');
}

/* Every key of obj must be in allowed[] and appear once (duplicate keys are how two
 * JSON parsers come to disagree about what a policy says). */
static int check_keys(parse_ctx *ctx, const cJSON *obj, const char *what,
                      const char *const *allowed)
{
    int bad = 0;
    for (const cJSON *item = obj->child; item; item = item->next) {
        const char *key = item->string ? item->string : "";
        int known = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                known = 1;
        if (!known) {
            problem(ctx, item, "unknown key \"%.64s\" in %s", key, what);
            bad = 1;
        }
        for (const cJSON *prev = obj->child; prev != item; prev = prev->next)
            if (prev->string && strcmp(prev->string, key) == 0) {
                problem(ctx, item, "duplicate key \"%.64s\" in %s", key, what);
                bad = 1;
                break;
            }
    }
    return bad ? -1 : 0;
}

/* An unsigned 64-bit integer: a JSON number that is an exact integer up to 2^53, or
 * (blockbox extension, for larger masks) a string "0x…" / decimal. */
static int parse_u64(parse_ctx *ctx, const cJSON *node, const char *what, uint64_t *out)
{
    if (cJSON_IsNumber(node)) {
        double d = node->valuedouble;
        if (!(d >= 0) || d > 9007199254740992.0 || (double)(uint64_t)d != d) {
            problem(ctx, node, "%s must be a whole number from 0 to 2^53 (write larger values as "
                    "a string, e.g. \"0xffffffff00000000\")", what);
            return -1;
        }
        *out = (uint64_t)d;
        return 0;
    }
    if (cJSON_IsString(node)) {
        const char *s = node->valuestring;
        char *end = NULL;
        if (!isdigit((unsigned char)s[0])) {
            problem(ctx, node, "%s: \"%.40s\" is not an unsigned integer", what, s);
            return -1;
        }
        errno = 0;
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || *end) {
            problem(ctx, node, "%s: \"%.40s\" is not an unsigned 64-bit integer", what, s);
            return -1;
        }
        *out = v;
        return 0;
    }
    problem(ctx, node, "%s must be a number", what);
    return -1;
}

static int parse_errno(parse_ctx *ctx, const cJSON *node, const char *what, int *out)
{
    uint64_t v = 0;
    if (!cJSON_IsNumber(node)) {
        problem(ctx, node, "%s must be a number", what);
        return -1;
    }
    if (parse_u64(ctx, node, what, &v) < 0)
        return -1;
    if (v < 1 || v > 4095) {
        problem(ctx, node, "%s must be an errno from 1 to 4095", what);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_action(parse_ctx *ctx, const cJSON *node, bb_policy_action *out)
{
    static const struct {
        const char *name;
        bb_policy_action_kind kind;
    } actions[] = {
        {"SCMP_ACT_ALLOW", BB_ACT_ALLOW},       {"SCMP_ACT_ERRNO", BB_ACT_ERRNO},
        {"SCMP_ACT_TRAP", BB_ACT_TRAP},         {"SCMP_ACT_KILL", BB_ACT_KILL_THREAD},
        {"SCMP_ACT_KILL_THREAD", BB_ACT_KILL_THREAD},
        {"SCMP_ACT_KILL_PROCESS", BB_ACT_KILL_PROCESS},
        {"SCMP_ACT_LOG", BB_ACT_LOG},
    };
    if (!cJSON_IsString(node)) {
        problem(ctx, node, "action must be a string such as \"SCMP_ACT_ALLOW\"");
        return -1;
    }
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp(node->valuestring, actions[i].name) == 0) {
            out->kind = actions[i].kind;
            out->errno_ret = actions[i].kind == BB_ACT_ERRNO ? EPERM : 0;
            return 0;
        }
    if (strcmp(node->valuestring, "SCMP_ACT_TRACE") == 0 ||
        strcmp(node->valuestring, "SCMP_ACT_NOTIFY") == 0)
        problem(ctx, node, "action %s is not supported by blockbox (no tracer or notify "
                "listener exists); refusing the policy", node->valuestring);
    else
        problem(ctx, node, "unknown action \"%.64s\"", node->valuestring);
    return -1;
}

static int parse_string_array(parse_ctx *ctx, const cJSON *arr, const char *what)
{
    if (!cJSON_IsArray(arr)) {
        problem(ctx, arr, "%s must be an array of strings", what);
        return -1;
    }
    for (const cJSON *a = arr->child; a; a = a->next)
        if (!cJSON_IsString(a)) {
            problem(ctx, a, "%s must contain only strings", what);
            return -1;
        }
    return 0;
}

/* "SCMP_ARCH_X86_64" -> libseccomp token, 0 if unknown. */
static uint32_t arch_token(const char *name)
{
    char lower[32];
    if (strncmp(name, "SCMP_ARCH_", 10) != 0 || strlen(name + 10) >= sizeof lower)
        return 0;
    size_t i = 0;
    for (const char *s = name + 10; *s; s++)
        lower[i++] = (char)tolower((unsigned char)*s);
    lower[i] = '\0';
    return seccomp_arch_resolve_name(lower);
}

/* includes/excludes "arches" use Docker's short names ("amd64", "arm64", "x32", …) or
 * SCMP_ARCH_ names; 0 if unknown (an unknown name is simply not this machine). */
static uint32_t filter_arch_token(const char *name)
{
    if (strcmp(name, "amd64") == 0)
        return SCMP_ARCH_X86_64;
    if (strcmp(name, "arm64") == 0)
        return SCMP_ARCH_AARCH64;
    if (strcmp(name, "386") == 0)
        return SCMP_ARCH_X86;
    if (strncmp(name, "SCMP_ARCH_", 10) == 0)
        return arch_token(name);
    return seccomp_arch_resolve_name(name);
}

/* includes/excludes arches: sets *has_native; unknown names are not errors. */
static int parse_filter_arches(parse_ctx *ctx, const cJSON *arr, int *has_native)
{
    if (parse_string_array(ctx, arr, "arches") < 0)
        return -1;
    for (const cJSON *a = arr->child; a; a = a->next)
        if (filter_arch_token(a->valuestring) == ctx->native_arch)
            *has_native = 1;
    return 0;
}

/* Checks an array of architecture names; sets *has_native. */
static int parse_arch_list(parse_ctx *ctx, const cJSON *arr, const char *what, int *has_native)
{
    if (!cJSON_IsArray(arr)) {
        problem(ctx, arr, "%s must be an array of architecture names", what);
        return -1;
    }
    int bad = 0;
    for (const cJSON *a = arr->child; a; a = a->next) {
        uint32_t token = cJSON_IsString(a) ? arch_token(a->valuestring) : 0;
        if (!token) {
            problem(ctx, a, "%s: unknown architecture %s%.40s%s", what, cJSON_IsString(a) ? "\"" : "",
                    cJSON_IsString(a) ? a->valuestring : "(not a string)", cJSON_IsString(a) ? "\"" : "");
            bad = 1;
        } else if (token == ctx->native_arch)
            *has_native = 1;
    }
    return bad ? -1 : 0;
}

/* includes/excludes: returns 1 if the entry applies on this machine to a worker that
 * holds no capabilities, 0 if it is to be skipped, -1 on a problem. */
static int entry_applies(parse_ctx *ctx, const cJSON *entry)
{
    static const char *const filter_keys[] = {"caps", "arches", "minKernel", NULL};
    int applies = 1;
    for (int which = 0; which < 2; which++) {
        const char *key = which ? "excludes" : "includes";
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(entry, key);
        if (!f || cJSON_IsNull(f))
            continue;
        if (!cJSON_IsObject(f)) {
            problem(ctx, f, "%s must be an object", key);
            return -1;
        }
        if (check_keys(ctx, f, key, filter_keys) < 0)
            return -1;
        const cJSON *caps = cJSON_GetObjectItemCaseSensitive(f, "caps");
        const cJSON *arches = cJSON_GetObjectItemCaseSensitive(f, "arches");
        const cJSON *min_kernel = cJSON_GetObjectItemCaseSensitive(f, "minKernel");
        if (caps && parse_string_array(ctx, caps, "caps") < 0)
            return -1;
        /* Workers hold no capabilities: a rule that needs some never applies, a rule
         * excluded for holders of some always applies. */
        if (!which && caps && cJSON_GetArraySize(caps) > 0)
            applies = 0;
        if (arches) {
            int native = 0;
            if (parse_filter_arches(ctx, arches, &native) < 0)
                return -1;
            if (!which && cJSON_GetArraySize(arches) > 0 && !native)
                applies = 0;
            if (which && native)
                applies = 0;
        }
        if (min_kernel) {
            unsigned want_major = 0, want_minor = 0, have_major = 0, have_minor = 0;
            struct utsname u;
            if (!cJSON_IsString(min_kernel) ||
                sscanf(min_kernel->valuestring, "%u.%u", &want_major, &want_minor) != 2) {
                problem(ctx, min_kernel, "minKernel must be a string like \"5.10\"");
                return -1;
            }
            if (uname(&u) == 0 && sscanf(u.release, "%u.%u", &have_major, &have_minor) == 2) {
                int newer = have_major > want_major ||
                            (have_major == want_major && have_minor >= want_minor);
                if (!which && !newer)
                    applies = 0;
                if (which && newer)
                    applies = 0;
            }
        }
    }
    return applies;
}

static int parse_args(parse_ctx *ctx, const cJSON *args, bb_policy_rule *tmpl)
{
    static const char *const arg_keys[] = {"index", "value", "valueTwo", "op", NULL};
    tmpl->n_args = 0;
    if (!args || cJSON_IsNull(args))
        return 0;
    if (!cJSON_IsArray(args)) {
        problem(ctx, args, "args must be an array");
        return -1;
    }
    int bad = 0;
    unsigned seen = 0;
    for (const cJSON *a = args->child; a; a = a->next) {
        if (!cJSON_IsObject(a)) {
            problem(ctx, a, "each args[] item must be an object");
            bad = 1;
            continue;
        }
        if (check_keys(ctx, a, "args[]", arg_keys) < 0) {
            bad = 1;
            continue;
        }
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(a, "index");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(a, "value");
        const cJSON *value_two = cJSON_GetObjectItemCaseSensitive(a, "valueTwo");
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(a, "op");
        bb_policy_arg arg = {0};
        uint64_t idx = 0;
        if (!index || !cJSON_IsNumber(index) || parse_u64(ctx, index, "index", &idx) < 0 || idx > 5) {
            problem(ctx, index ? index : a, "index must be a syscall argument number from 0 to 5");
            bad = 1;
            continue;
        }
        arg.index = (unsigned)idx;
        if (!value) {
            problem(ctx, a, "args[] item needs a value");
            bad = 1;
            continue;
        }
        if (parse_u64(ctx, value, "value", &arg.value) < 0 ||
            (value_two && parse_u64(ctx, value_two, "valueTwo", &arg.value_two) < 0)) {
            bad = 1;
            continue;
        }
        static const char *const ops[] = {NULL, "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
                                          "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                          "SCMP_CMP_MASKED_EQ"};
        arg.op = 0;
        for (unsigned k = 1; k < sizeof ops / sizeof ops[0]; k++)
            if (cJSON_IsString(op) && strcmp(op->valuestring, ops[k]) == 0)
                arg.op = (bb_policy_op)k;
        if (!arg.op) {
            problem(ctx, op ? op : a, "op must be one of SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT, "
                    "_MASKED_EQ%s%.40s%s", cJSON_IsString(op) ? " (got \"" : "",
                    cJSON_IsString(op) ? op->valuestring : "", cJSON_IsString(op) ? "\")" : "");
            bad = 1;
            continue;
        }
        if (arg.op == BB_OP_MASKED_EQ && (arg.value_two & ~arg.value)) {
            problem(ctx, value_two ? value_two : a, "MASKED_EQ: valueTwo has bits outside the mask "
                    "(value), so the rule could never match");
            bad = 1;
            continue;
        }
        if (arg.op != BB_OP_MASKED_EQ && value_two && arg.value_two != 0)
            warning(ctx, value_two, "valueTwo is only used by SCMP_CMP_MASKED_EQ; ignored");
        if (seen & (1u << arg.index)) {
            problem(ctx, index, "argument %u is compared twice in one entry; libseccomp cannot "
                    "AND two comparisons of one argument: use separate entries (entries are OR'ed)",
                    arg.index);
            bad = 1;
            continue;
        }
        seen |= 1u << arg.index;
        tmpl->args[tmpl->n_args++] = arg;
    }
    return bad ? -1 : 0;
}

static int valid_syscall_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof ((bb_policy_rule *)0)->name)
        return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

static int add_rule(parse_ctx *ctx, bb_policy *p, size_t *cap, const bb_policy_rule *tmpl,
                    const cJSON *name_node)
{
    const char *name = name_node->valuestring;
    if (!valid_syscall_name(name)) {
        problem(ctx, name_node, "\"%.64s\" is not a syscall name", name);
        return -1;
    }
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
        int harmless = tmpl->action.kind == BB_ACT_ALLOW || tmpl->action.kind == BB_ACT_LOG;
        if (harmless && (ctx->flags & BB_POLICY_LENIENT_NAMES)) {
            warning(ctx, name_node, "unknown syscall \"%s\" (libseccomp %u.%u.%u does not know it); "
                    "left out, so it stays denied", name, seccomp_version()->major,
                    seccomp_version()->minor, seccomp_version()->micro);
            return 0;
        }
        problem(ctx, name_node, "unknown syscall \"%s\"", name);
        return -1;
    }
    if (p->n_rules >= BB_POLICY_MAX_RULES) {
        problem(ctx, name_node, "more than %d rules", BB_POLICY_MAX_RULES);
        return -1;
    }
    if (p->n_rules == *cap) {
        size_t bigger = *cap ? *cap * 2 : 64;
        bb_policy_rule *r = realloc(p->rules, bigger * sizeof *r);
        if (!r) {
            problem(ctx, name_node, "out of memory");
            return -1;
        }
        p->rules = r;
        *cap = bigger;
    }
    bb_policy_rule *rule = &p->rules[p->n_rules++];
    *rule = *tmpl;
    snprintf(rule->name, sizeof rule->name, "%s", name);
    rule->nr = nr;
    rule->line = line_of(&ctx->lines, name_node);
    return 0;
}

static int parse_entry(parse_ctx *ctx, bb_policy *p, size_t *cap, const cJSON *entry, int index)
{
    static const char *const entry_keys[] = {"names", "name", "action", "errnoRet", "args",
                                             "comment", "includes", "excludes", NULL};
    if (!cJSON_IsObject(entry)) {
        problem(ctx, entry, "syscalls[%d] must be an object", index);
        return -1;
    }
    if (check_keys(ctx, entry, "a syscalls[] entry", entry_keys) < 0)
        return -1;
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(entry, "names");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "name");
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(entry, "action");
    const cJSON *errno_ret = cJSON_GetObjectItemCaseSensitive(entry, "errnoRet");
    const cJSON *comment = cJSON_GetObjectItemCaseSensitive(entry, "comment");
    bb_policy_rule tmpl;
    memset(&tmpl, 0, sizeof tmpl);
    tmpl.entry = index;
    int bad = 0;
    if (comment && !cJSON_IsString(comment)) {
        problem(ctx, comment, "comment must be a string");
        bad = 1;
    }
    if (!action) {
        problem(ctx, entry, "syscalls[%d] has no action", index);
        return -1;
    }
    if (parse_action(ctx, action, &tmpl.action) < 0)
        bad = 1;
    if (errno_ret && !cJSON_IsNull(errno_ret)) {
        if (!bad && tmpl.action.kind != BB_ACT_ERRNO) {
            problem(ctx, errno_ret, "errnoRet is only valid with SCMP_ACT_ERRNO");
            bad = 1;
        } else if (parse_errno(ctx, errno_ret, "errnoRet", &tmpl.action.errno_ret) < 0)
            bad = 1;
    }
    if (parse_args(ctx, cJSON_GetObjectItemCaseSensitive(entry, "args"), &tmpl) < 0)
        bad = 1;
    int applies = entry_applies(ctx, entry);
    if (applies < 0)
        bad = 1;
    if (names && name) {
        problem(ctx, name, "use either names or the legacy name, not both");
        return -1;
    }
    if (!names && !name) {
        problem(ctx, entry, "syscalls[%d] has no names", index);
        return -1;
    }
    if (names && (!cJSON_IsArray(names) || cJSON_GetArraySize(names) == 0)) {
        problem(ctx, names, "names must be a non-empty array of syscall names");
        return -1;
    }
    if (name && !cJSON_IsString(name)) {
        problem(ctx, name, "name must be a string");
        return -1;
    }
    if (bad)
        return -1;
    if (applies == 0) {
        p->n_skipped++;
        return 0;
    }
    if (name)
        return add_rule(ctx, p, cap, &tmpl, name);
    for (const cJSON *n = names->child; n; n = n->next) {
        if (!cJSON_IsString(n)) {
            problem(ctx, n, "names must contain only strings");
            bad = 1;
        } else if (add_rule(ctx, p, cap, &tmpl, n) < 0)
            bad = 1;
    }
    return bad ? -1 : 0;
}

static int same_action(bb_policy_action a, bb_policy_action b)
{
    return a.kind == b.kind && (a.kind != BB_ACT_ERRNO || a.errno_ret == b.errno_ret);
}

static int arg_equal(const bb_policy_arg *a, const bb_policy_arg *b)
{
    return a->index == b->index && a->op == b->op && a->value == b->value &&
           (a->op != BB_OP_MASKED_EQ || a->value_two == b->value_two);
}

static int same_conditions(const bb_policy_rule *a, const bb_policy_rule *b)
{
    if (a->n_args != b->n_args)
        return 0;
    for (unsigned i = 0; i < a->n_args; i++) {
        int found = 0;
        for (unsigned j = 0; j < b->n_args; j++)
            if (arg_equal(&a->args[i], &b->args[j]))
                found = 1;
        if (!found)
            return 0;
    }
    return 1;
}

/* Rules libseccomp would silently drop or refuse: two actions for the same call where
 * one is unconditional or both have the same conditions, and a conditional carve-out
 * with the default action (libseccomp cannot add a rule with the default action). */
static void check_conflicts(parse_ctx *ctx, const bb_policy *p)
{
    char a1[40], a2[40];
    for (size_t i = 0; i < p->n_rules; i++) {
        const bb_policy_rule *r = &p->rules[i];
        if (r->nr < 0)
            continue;
        for (size_t j = i + 1; j < p->n_rules; j++) {
            const bb_policy_rule *s = &p->rules[j];
            if (s->nr != r->nr || same_action(r->action, s->action))
                continue;
            bb_policy_action_text(r->action, a1, sizeof a1);
            bb_policy_action_text(s->action, a2, sizeof a2);
            if (r->n_args == 0 || s->n_args == 0 || same_conditions(r, s)) {
                ctx->n_problems++;
                if (ctx->n_problems == 1)
                    ctx->first_line = s->line;
                if (ctx->problems.len)
                    bb_buf_putc(&ctx->problems, '\n');
                bb_buf_printf(&ctx->problems,
                              "%s:%d: conflicting rules for %s: %s here, %s at line %d%s",
                              ctx->source, s->line ? s->line : 1, s->name, a2, a1, r->line,
                              (r->n_args == 0 || s->n_args == 0)
                                  ? " (an unconditional rule cannot share a call with another action)"
                                  : " (same conditions)");
                continue;
            }
            const bb_policy_rule *carve = same_action(r->action, p->default_action) ? r
                                          : same_action(s->action, p->default_action) ? s : NULL;
            if (carve) {
                ctx->n_problems++;
                if (ctx->n_problems == 1)
                    ctx->first_line = carve->line;
                if (ctx->problems.len)
                    bb_buf_putc(&ctx->problems, '\n');
                bb_buf_printf(&ctx->problems,
                              "%s:%d: conditional rule for %s has the default action, which "
                              "libseccomp cannot add, so it would not carve anything out of the "
                              "other rule for %s: give it another action (e.g. SCMP_ACT_ERRNO or "
                              "SCMP_ACT_KILL_PROCESS) or narrow the other rule",
                              ctx->source, carve->line ? carve->line : 1, carve->name, carve->name);
            }
        }
    }
}

bb_policy *bb_policy_parse(const char *text, size_t len, const char *source, unsigned flags,
                           bb_error **err)
{
    static const char *const top_keys[] = {"defaultAction", "defaultErrnoRet", "architectures",
                                           "archMap", "syscalls", "flags", "listenerPath",
                                           "listenerMetadata", "comment", NULL};
    if (!source)
        source = "policy";
    if (!text)
        return bb_fail(err, BB_ERR_CONFIGURATION, "%s:1: no policy text", source), NULL;
    if (precheck(text, len, source, err) < 0)
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        int line = 1;
        const char *where = cJSON_GetErrorPtr();
        if (where && where >= text && where <= text + len)
            for (const char *c = text; c < where; c++)
                line += *c == '\n';
        bb_fail(err, BB_ERR_CONFIGURATION, "%s:%d: not valid JSON", source, line);
        set_error_line(err, line);
        return NULL;
    }
    while (end && end < text + len && strchr(" \t\r\n", *end))
        end++;
    if (!end || end != text + len) {
        int line = 1;
        for (const char *c = text; end && c < end; c++)
            line += *c == '\n';
        cJSON_Delete(root);
        bb_fail(err, BB_ERR_CONFIGURATION, "%s:%d: text after the end of the JSON object", source, line);
        set_error_line(err, line);
        return NULL;
    }
    bb_policy *p = calloc(1, sizeof *p);
    parse_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.source = source;
    ctx.flags = flags;
    ctx.native_arch = seccomp_arch_native();
    line_map_build(&ctx.lines, root, text, len);
    if (!p || !(p->source = strdup(source))) {
        problem(&ctx, root, "out of memory");
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        problem(&ctx, root, "a policy is a JSON object");
        goto done;
    }
    if (check_keys(&ctx, root, "the policy", top_keys) < 0)
        goto done;

    const cJSON *def = cJSON_GetObjectItemCaseSensitive(root, "defaultAction");
    if (!def)
        problem(&ctx, root, "missing defaultAction");
    else if (parse_action(&ctx, def, &p->default_action) == 0) {
        const cJSON *def_errno = cJSON_GetObjectItemCaseSensitive(root, "defaultErrnoRet");
        if (def_errno && !cJSON_IsNull(def_errno)) {
            if (p->default_action.kind != BB_ACT_ERRNO)
                problem(&ctx, def_errno, "defaultErrnoRet is only valid with SCMP_ACT_ERRNO");
            else
                parse_errno(&ctx, def_errno, "defaultErrnoRet", &p->default_action.errno_ret);
        }
        if (p->default_action.kind == BB_ACT_ALLOW || p->default_action.kind == BB_ACT_LOG)
            warning(&ctx, def, "defaultAction %s makes this a denylist: every call not named is "
                    "allowed", def->valuestring);
    }

    const cJSON *comment = cJSON_GetObjectItemCaseSensitive(root, "comment");
    if (comment && !cJSON_IsString(comment))
        problem(&ctx, comment, "comment must be a string");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "listenerMetadata");
    if (meta && !cJSON_IsString(meta))
        problem(&ctx, meta, "listenerMetadata must be a string");
    const cJSON *listener = cJSON_GetObjectItemCaseSensitive(root, "listenerPath");
    if (listener && !(cJSON_IsString(listener) && listener->valuestring[0] == '\0'))
        problem(&ctx, listener, "listenerPath (seccomp notify) is not supported");

    const cJSON *filter_flags = cJSON_GetObjectItemCaseSensitive(root, "flags");
    if (filter_flags && !cJSON_IsNull(filter_flags) &&
        parse_string_array(&ctx, filter_flags, "flags") == 0) {
        for (const cJSON *f = filter_flags->child; f; f = f->next) {
            if (strcmp(f->valuestring, "SECCOMP_FILTER_FLAG_TSYNC") == 0)
                continue;   /* blockbox always synchronises threads */
            if (strcmp(f->valuestring, "SECCOMP_FILTER_FLAG_LOG") == 0 ||
                strcmp(f->valuestring, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
                warning(&ctx, f, "flag %s is ignored", f->valuestring);
            else
                problem(&ctx, f, "unsupported filter flag \"%.64s\"", f->valuestring);
        }
    }

    /* Architectures: only the native one gets a filter; every other ABI is killed. */
    int native_listed = 0, any_listed = 0;
    const cJSON *arches = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (arches && !cJSON_IsNull(arches)) {
        any_listed |= cJSON_GetArraySize(arches) > 0;
        parse_arch_list(&ctx, arches, "architectures", &native_listed);
    }
    const cJSON *arch_map = cJSON_GetObjectItemCaseSensitive(root, "archMap");
    if (arch_map && !cJSON_IsNull(arch_map)) {
        static const char *const map_keys[] = {"architecture", "subArchitectures", NULL};
        if (!cJSON_IsArray(arch_map))
            problem(&ctx, arch_map, "archMap must be an array");
        else
            for (const cJSON *m = arch_map->child; m; m = m->next) {
                if (!cJSON_IsObject(m) || check_keys(&ctx, m, "archMap[]", map_keys) < 0) {
                    if (!cJSON_IsObject(m))
                        problem(&ctx, m, "archMap[] items must be objects");
                    continue;
                }
                const cJSON *main_arch = cJSON_GetObjectItemCaseSensitive(m, "architecture");
                const cJSON *subs = cJSON_GetObjectItemCaseSensitive(m, "subArchitectures");
                int native = 0;
                if (!main_arch || !cJSON_IsString(main_arch) || !arch_token(main_arch->valuestring)) {
                    problem(&ctx, main_arch ? main_arch : m, "archMap[].architecture must name an architecture");
                    continue;
                }
                if (arch_token(main_arch->valuestring) == ctx.native_arch)
                    native = 1;
                if (subs)
                    parse_arch_list(&ctx, subs, "subArchitectures", &native);
                any_listed = 1;
                native_listed |= native;
            }
    }
    if (any_listed && !native_listed)
        problem(&ctx, arches ? arches : arch_map, "the policy does not cover this machine's "
                "architecture (%s)", seccomp_arch_native() == SCMP_ARCH_X86_64 ? "SCMP_ARCH_X86_64"
                : seccomp_arch_native() == SCMP_ARCH_AARCH64 ? "SCMP_ARCH_AARCH64" : "native");

    const cJSON *syscalls = cJSON_GetObjectItemCaseSensitive(root, "syscalls");
    size_t cap = 0;
    if (syscalls && !cJSON_IsNull(syscalls)) {
        if (!cJSON_IsArray(syscalls))
            problem(&ctx, syscalls, "syscalls must be an array");
        else {
            int i = 0;
            for (const cJSON *e = syscalls->child; e; e = e->next, i++)
                parse_entry(&ctx, p, &cap, e, i);
        }
    }
    if (!ctx.n_problems)
        check_conflicts(&ctx, p);

done:
    cJSON_Delete(root);
    free(ctx.lines.entries);
    if (ctx.problems.failed || ctx.warnings.failed)
        ctx.n_problems = ctx.n_problems ? ctx.n_problems : 1;
    if (ctx.n_problems || !p) {
        bb_fail(err, BB_ERR_CONFIGURATION, "%s",
                ctx.problems.data && !ctx.problems.failed ? ctx.problems.data : "policy: out of memory");
        set_error_line(err, ctx.first_line);
        bb_buf_free(&ctx.problems);
        bb_buf_free(&ctx.warnings);
        bb_policy_free(p);
        return NULL;
    }
    bb_buf_free(&ctx.problems);
    p->warnings = bb_buf_steal(&ctx.warnings, NULL);
    if (!p->warnings)
        p->warnings = strdup("");
    if (!p->warnings) {
        bb_policy_free(p);
        bb_fail(err, BB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return p;
}

static bb_policy *load_file(const char *path, bb_error **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return bb_fail(err, BB_ERR_CONFIGURATION, "%s: cannot open policy: %s", path,
                       strerror(errno)), NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return bb_fail(err, BB_ERR_CONFIGURATION, "%s: not a regular file", path), NULL;
    }
    if (st.st_size > (off_t)BB_POLICY_MAX_BYTES) {
        close(fd);
        return bb_fail(err, BB_ERR_CONFIGURATION, "%s:1: policy is %lld bytes; the limit is %u",
                       path, (long long)st.st_size, BB_POLICY_MAX_BYTES), NULL;
    }
    /* Read up to one byte past the cap, in case the file grows under us. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    if (cap > BB_POLICY_MAX_BYTES + 1)
        cap = BB_POLICY_MAX_BYTES + 1;
    char *text = malloc(cap + 1);
    if (!text) {
        close(fd);
        return bb_fail(err, BB_ERR_INTERNAL, "out of memory"), NULL;
    }
    for (;;) {
        if (len == cap)
            break;
        ssize_t n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(text);
            close(fd);
            return bb_fail(err, BB_ERR_CONFIGURATION, "%s: read: %s", path, strerror(e)), NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    text[len] = '\0';
    bb_policy *p = bb_policy_parse(text, len, path, 0, err);
    free(text);
    return p;
}

int bb_policy_load_file(const char *path, bb_policy **out, bb_error **err)
{
    *out = load_file(path, err);
    return *out ? 0 : -1;
}

int bb_policy_load_default(bb_policy **out, bb_error **err)
{
    *out = bb_policy_parse(bb_default_policy_json, bb_default_policy_json_len, "default.json", 0, err);
    return *out ? 0 : -1;
}

bb_policy *bb_policy_load(const char *path, bb_error **err)
{
    if (!path || !*path)
        return bb_policy_parse(bb_default_policy_json, bb_default_policy_json_len, "default.json", 0, err);
    return load_file(path, err);
}

void bb_policy_free(bb_policy *p)
{
    if (!p)
        return;
    free(p->source);
    free(p->rules);
    free(p->warnings);
    free(p);
}

const char *bb_policy_source(const bb_policy *p) { return p->source; }
bb_policy_action bb_policy_default_action(const bb_policy *p) { return p->default_action; }
size_t bb_policy_rule_count(const bb_policy *p) { return p->n_rules; }
const bb_policy_rule *bb_policy_rule_at(const bb_policy *p, size_t i)
{
    return i < p->n_rules ? &p->rules[i] : NULL;
}
const char *bb_policy_warnings(const bb_policy *p) { return p->warnings; }

const char *bb_policy_action_text(bb_policy_action a, char *buf, size_t cap)
{
    switch (a.kind) {
    case BB_ACT_KILL_PROCESS: snprintf(buf, cap, "SCMP_ACT_KILL_PROCESS"); break;
    case BB_ACT_KILL_THREAD: snprintf(buf, cap, "SCMP_ACT_KILL_THREAD"); break;
    case BB_ACT_TRAP: snprintf(buf, cap, "SCMP_ACT_TRAP"); break;
    case BB_ACT_ERRNO: snprintf(buf, cap, "SCMP_ACT_ERRNO(%d)", a.errno_ret); break;
    case BB_ACT_LOG: snprintf(buf, cap, "SCMP_ACT_LOG"); break;
    case BB_ACT_ALLOW: snprintf(buf, cap, "SCMP_ACT_ALLOW"); break;
    }
    return buf;
}

/* ---- the report ---------------------------------------------------------------- */

static int action_allows(bb_policy_action a)
{
    return a.kind == BB_ACT_ALLOW || a.kind == BB_ACT_LOG;
}

bb_policy_verdict bb_policy_verdict_for(const bb_policy *p, const char *syscall_name)
{
    int nr = seccomp_syscall_resolve_name(syscall_name);
    if (nr < 0)
        return BB_VERDICT_NOT_ON_ARCH;
    int any = 0, conditional = 0, allows = 0, denies = 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        const bb_policy_rule *r = &p->rules[i];
        if (r->nr != nr)
            continue;
        any = 1;
        conditional |= r->n_args > 0;
        if (action_allows(r->action))
            allows = 1;
        else
            denies = 1;
    }
    if (!any)
        return action_allows(p->default_action) ? BB_VERDICT_ALLOWED : BB_VERDICT_DENIED;
    if (!conditional)
        return allows ? BB_VERDICT_ALLOWED : BB_VERDICT_DENIED;
    /* conditional rules: mixed unless every branch and the default agree */
    int default_allows = action_allows(p->default_action);
    if (allows && !denies && default_allows)
        return BB_VERDICT_ALLOWED;
    if (denies && !allows && !default_allows)
        return BB_VERDICT_DENIED;
    return BB_VERDICT_CONDITIONAL;
}

static void print_conditions(FILE *out, const bb_policy_rule *r)
{
    for (unsigned k = 0; k < r->n_args; k++) {
        const bb_policy_arg *a = &r->args[k];
        if (k)
            fputs(" and ", out);
        if (a->op == BB_OP_MASKED_EQ)
            fprintf(out, "(arg%u & 0x%llx) == 0x%llx", a->index, (unsigned long long)a->value,
                    (unsigned long long)a->value_two);
        else {
            static const char *const sym[] = {"", "!=", "<", "<=", "==", ">=", ">"};
            fprintf(out, "arg%u %s 0x%llx", a->index, sym[a->op], (unsigned long long)a->value);
        }
    }
}

/* The calls every report accounts for: each is a known way out of a sandbox or into
 * the kernel's wider surface. */
static const struct {
    const char *name;
    const char *why;
} dangerous[] = {
    {"socket", "network and AF_UNIX sockets"},
    {"socketpair", "socket pairs"},
    {"connect", "connect a socket"},
    {"bind", "bind a socket"},
    {"listen", "listen on a socket"},
    {"accept4", "accept connections"},
    {"sendmsg", "pass file descriptors"},
    {"execve", "run another program"},
    {"execveat", "run another program"},
    {"fork", "new processes"},
    {"vfork", "new processes"},
    {"clone", "new processes/namespaces (threads are fine)"},
    {"clone3", "new processes/namespaces"},
    {"ptrace", "inspect or control other processes"},
    {"process_vm_readv", "read another process's memory"},
    {"process_vm_writev", "write another process's memory"},
    {"io_uring_setup", "io_uring (large kernel attack surface)"},
    {"userfaultfd", "userfaultfd (exploit primitive)"},
    {"bpf", "eBPF programs"},
    {"perf_event_open", "perf events"},
    {"keyctl", "kernel keyrings (not namespaced)"},
    {"add_key", "kernel keyrings"},
    {"request_key", "kernel keyrings"},
    {"mount", "mounts"},
    {"umount2", "unmounts"},
    {"pivot_root", "change root"},
    {"chroot", "change root"},
    {"unshare", "new namespaces"},
    {"setns", "enter namespaces"},
    {"kill", "signals to other processes"},
    {"tkill", "signals to threads"},
    {"tgkill", "signals to threads"},
    {"rt_sigqueueinfo", "signals with data"},
    {"pidfd_open", "process handles"},
    {"pidfd_send_signal", "signals through pidfds"},
    {"pidfd_getfd", "steal file descriptors"},
    {"rt_sigaction", "replace the SIGSYS reporter"},
    {"ioctl", "device control (TIOCSTI injects terminal input)"},
    {"prctl", "process attributes (dumpable, ptracer)"},
    {"fcntl", "F_SETOWN sends SIGIO to other processes"},
    {"personality", "execution domain (ASLR off)"},
    {"setuid", "change identity"},
    {"setresuid", "change identity"},
    {"setgroups", "change identity"},
    {"capset", "capabilities"},
    {"mknod", "device nodes"},
    {"open_by_handle_at", "open files by handle (container escape)"},
    {"init_module", "kernel modules"},
    {"finit_module", "kernel modules"},
    {"kexec_load", "replace the kernel"},
    {"reboot", "reboot"},
    {"modify_ldt", "segment descriptors"},
    {"memfd_secret", "secret memory"},
    {"set_mempolicy", "NUMA policy"},
    {"splice", "pipe splicing (Dirty Pipe)"},
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int bb_policy_report(const bb_policy *p, FILE *out)
{
    char buf[40], buf2[40];
    size_t counts[BB_ACT_ALLOW + 1] = {0}, off_arch = 0;
    fprintf(out, "policy: %s\n", p->source);
    fprintf(out, "default action: %s%s\n", bb_policy_action_text(p->default_action, buf, sizeof buf),
            p->default_action.kind == BB_ACT_TRAP
                ? " (blockbox's SIGSYS handler makes the call fail with EPERM and reports it)"
                : "");
    fprintf(out, "architecture: native only (%s); other syscall ABIs (x32, i386) kill the process\n",
            seccomp_arch_native() == SCMP_ARCH_X86_64 ? "x86_64" : "this machine's");
    for (size_t i = 0; i < p->n_rules; i++) {
        if (p->rules[i].nr < 0)
            off_arch++;
        else
            counts[p->rules[i].action.kind]++;
    }
    fprintf(out, "rules: %zu (allow %zu, log %zu, errno %zu, trap %zu, kill-thread %zu, "
            "kill-process %zu; not on this architecture %zu; entries skipped by includes/"
            "excludes %zu)\n",
            p->n_rules, counts[BB_ACT_ALLOW], counts[BB_ACT_LOG], counts[BB_ACT_ERRNO],
            counts[BB_ACT_TRAP], counts[BB_ACT_KILL_THREAD], counts[BB_ACT_KILL_PROCESS], off_arch,
            p->n_skipped);
    if (p->n_skipped)
        fprintf(out, "note: includes/excludes are applied for a worker with no capabilities on "
                "this architecture; capability-gated rules are left out\n");

    /* allowed calls, sorted, unique; '*' marks conditional ones */
    const char **names = calloc(p->n_rules + 1, sizeof *names);
    size_t n = 0;
    if (!names)
        return -1;
    for (size_t i = 0; i < p->n_rules; i++)
        if (p->rules[i].nr >= 0 && action_allows(p->rules[i].action))
            names[n++] = p->rules[i].name;
    qsort(names, n, sizeof *names, cmp_str);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            names[unique++] = names[i];
    fprintf(out, "allowed syscalls (%zu; * = only with the arguments shown below):\n", unique);
    int col = 0;
    for (size_t i = 0; i < unique; i++) {
        int conditional = bb_policy_verdict_for(p, names[i]) != BB_VERDICT_ALLOWED;
        int w = (int)strlen(names[i]) + conditional + 1;
        if (col + w > 78) {
            fputc('\n', out);
            col = 0;
        }
        fprintf(out, "%s%s%s", col ? " " : "  ", names[i], conditional ? "*" : "");
        col += w + (col ? 0 : 1);
    }
    fputs(unique ? "\n" : "  (none)\n", out);
    free(names);

    fputs("dangerous calls:\n", out);
    for (size_t d = 0; d < sizeof dangerous / sizeof dangerous[0]; d++) {
        const char *name = dangerous[d].name;
        bb_policy_verdict v = bb_policy_verdict_for(p, name);
        static const char *const words[] = {"allowed", "denied", "conditional", "not on this arch"};
        fprintf(out, "  %-18s %-11s", name, words[v]);
        int nr = seccomp_syscall_resolve_name(name);
        if (v == BB_VERDICT_CONDITIONAL || v == BB_VERDICT_DENIED || v == BB_VERDICT_ALLOWED) {
            int any = 0, conditional = 0;
            for (size_t i = 0; i < p->n_rules; i++) {
                const bb_policy_rule *r = &p->rules[i];
                if (r->nr != nr)
                    continue;
                fputs(any ? "; " : " ", out);
                fputs(bb_policy_action_text(r->action, buf, sizeof buf), out);
                if (r->n_args) {
                    fputs(" if ", out);
                    print_conditions(out, r);
                    conditional = 1;
                }
                fprintf(out, " (line %d)", r->line);
                any = 1;
            }
            if (!any)
                fprintf(out, " %s (default)", bb_policy_action_text(p->default_action, buf2, sizeof buf2));
            else if (conditional)
                fprintf(out, "; otherwise %s", bb_policy_action_text(p->default_action, buf2, sizeof buf2));
        }
        fprintf(out, "  [%s]\n", dangerous[d].why);
    }
    return ferror(out) ? -1 : 0;
}
