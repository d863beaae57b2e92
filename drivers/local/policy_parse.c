/* policy_parse.c: parses OCI/Docker seccomp JSON into validated rules, collecting every
 * problem with its FILE:LINE (bb_policy_parse); the fields are read by policy_fields.c. */
#include <cjson/cJSON.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "policy_int.h"

/* Records the first problem's line in the error value (tests and tools read it). */
static void set_error_line(bb_error **err, int line)
{
    if (err && *err && *err != bb_error_oom())
        (*err)->line = line;
}

/* ---- parse context: collects problems and warnings ---------------------------- */

/* One problem at line, as "SOURCE:LINE: text". capped: the list stops after
 * BB_POLICY_MAX_PROBLEMS (the parse's problems); the conflicts between rules, found
 * after the parse, are all listed. */
static void add_problem(parse_ctx *ctx, int line, int capped, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void add_problem(parse_ctx *ctx, int line, int capped, const char *fmt, va_list ap)
{
    if (ctx->n_problems == 0)
        ctx->first_line = line;
    if (ctx->n_problems++ >= BB_POLICY_MAX_PROBLEMS && capped) {
        if (ctx->n_problems == BB_POLICY_MAX_PROBLEMS + 1)
            bb_buf_printf(&ctx->problems, "\n%s: too many problems; stopping the list", ctx->source);
        return;
    }
    if (ctx->problems.len)
        bb_buf_putc(&ctx->problems, '\n');
    bb_buf_printf(&ctx->problems, "%s:%d: ", ctx->source, line ? line : 1);
    bb_buf_vprintf(&ctx->problems, fmt, ap);
}

void bb_policy_problem(parse_ctx *ctx, const cJSON *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_problem(ctx, bb_policy_line_of(&ctx->lines, node), 1, fmt, ap);
    va_end(ap);
}

static void conflict_problem(parse_ctx *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conflict_problem(parse_ctx *ctx, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_problem(ctx, line, 0, fmt, ap);
    va_end(ap);
}

void bb_policy_warning(parse_ctx *ctx, const cJSON *node, const char *fmt, ...)
{
    int line = bb_policy_line_of(&ctx->lines, node);
    bb_buf_printf(&ctx->warnings, "%s:%d: warning: ", ctx->source, line ? line : 1);
    va_list ap;
    va_start(ap, fmt);
    bb_buf_vprintf(&ctx->warnings, fmt, ap);
    va_end(ap);
    bb_buf_putc(&ctx->warnings, '\n');
}

static int add_rule(parse_ctx *ctx, bb_policy *p, size_t *cap, const bb_policy_rule *tmpl,
                    const cJSON *name_node)
{
    const char *name = name_node->valuestring;
    if (!bb_policy_valid_name(name)) {
        bb_policy_problem(ctx, name_node, "\"%.64s\" is not a syscall name", name);
        return -1;
    }
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
        int harmless = tmpl->action.kind == BB_ACT_ALLOW || tmpl->action.kind == BB_ACT_LOG;
        if (harmless && (ctx->flags & BB_POLICY_LENIENT_NAMES)) {
            bb_policy_warning(ctx, name_node, "unknown syscall \"%s\" (libseccomp %u.%u.%u does not know it); "
                    "left out, so it stays denied", name, seccomp_version()->major,
                    seccomp_version()->minor, seccomp_version()->micro);
            return 0;
        }
        bb_policy_problem(ctx, name_node, "unknown syscall \"%s\"", name);
        return -1;
    }
    if (p->n_rules >= BB_POLICY_MAX_RULES) {
        bb_policy_problem(ctx, name_node, "more than %d rules", BB_POLICY_MAX_RULES);
        return -1;
    }
    if (p->n_rules == *cap) {
        size_t bigger = *cap ? *cap * 2 : 64;
        bb_policy_rule *r = realloc(p->rules, bigger * sizeof *r);
        if (!r) {
            bb_policy_problem(ctx, name_node, "out of memory");
            return -1;
        }
        p->rules = r;
        *cap = bigger;
    }
    bb_policy_rule *rule = &p->rules[p->n_rules++];
    *rule = *tmpl;
    snprintf(rule->name, sizeof rule->name, "%s", name);
    rule->nr = nr;
    rule->line = bb_policy_line_of(&ctx->lines, name_node);
    return 0;
}

static int parse_entry(parse_ctx *ctx, bb_policy *p, size_t *cap, const cJSON *entry, int index)
{
    static const char *const entry_keys[] = {"names", "name", "action", "errnoRet", "args",
                                             "comment", "includes", "excludes", NULL};
    if (!cJSON_IsObject(entry)) {
        bb_policy_problem(ctx, entry, "syscalls[%d] must be an object", index);
        return -1;
    }
    if (bb_policy_check_keys(ctx, entry, "a syscalls[] entry", entry_keys) < 0)
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
        bb_policy_problem(ctx, comment, "comment must be a string");
        bad = 1;
    }
    if (!action) {
        bb_policy_problem(ctx, entry, "syscalls[%d] has no action", index);
        return -1;
    }
    if (bb_policy_parse_action(ctx, action, &tmpl.action) < 0)
        bad = 1;
    if (errno_ret && !cJSON_IsNull(errno_ret)) {
        if (!bad && tmpl.action.kind != BB_ACT_ERRNO) {
            bb_policy_problem(ctx, errno_ret, "errnoRet is only valid with SCMP_ACT_ERRNO");
            bad = 1;
        } else if (bb_policy_parse_errno(ctx, errno_ret, "errnoRet", &tmpl.action.errno_ret) < 0)
            bad = 1;
    }
    if (bb_policy_parse_args(ctx, cJSON_GetObjectItemCaseSensitive(entry, "args"), &tmpl) < 0)
        bad = 1;
    int applies = bb_policy_entry_applies(ctx, entry);
    if (applies < 0)
        bad = 1;
    if (names && name) {
        bb_policy_problem(ctx, name, "use either names or the legacy name, not both");
        return -1;
    }
    if (!names && !name) {
        bb_policy_problem(ctx, entry, "syscalls[%d] has no names", index);
        return -1;
    }
    if (names && (!cJSON_IsArray(names) || cJSON_GetArraySize(names) == 0)) {
        bb_policy_problem(ctx, names, "names must be a non-empty array of syscall names");
        return -1;
    }
    if (name && !cJSON_IsString(name)) {
        bb_policy_problem(ctx, name, "name must be a string");
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
            bb_policy_problem(ctx, n, "names must contain only strings");
            bad = 1;
        } else if (add_rule(ctx, p, cap, &tmpl, n) < 0)
            bad = 1;
    }
    return bad ? -1 : 0;
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
            if (s->nr != r->nr || bb_policy_action_equal(r->action, s->action))
                continue;
            bb_policy_action_text(r->action, a1, sizeof a1);
            bb_policy_action_text(s->action, a2, sizeof a2);
            if (r->n_args == 0 || s->n_args == 0 || same_conditions(r, s)) {
                conflict_problem(ctx, s->line, "conflicting rules for %s: %s here, %s at line %d%s", s->name,
                                 a2, a1, r->line,
                                 (r->n_args == 0 || s->n_args == 0)
                                     ? " (an unconditional rule cannot share a call with another action)"
                                     : " (same conditions)");
                continue;
            }
            const bb_policy_rule *carve = bb_policy_action_equal(r->action, p->default_action) ? r
                                          : bb_policy_action_equal(s->action, p->default_action) ? s : NULL;
            if (carve) {
                conflict_problem(ctx, carve->line,
                                 "conditional rule for %s has the default action, which "
                                 "libseccomp cannot add, so it would not carve anything out of the "
                                 "other rule for %s: give it another action (e.g. SCMP_ACT_ERRNO or "
                                 "SCMP_ACT_KILL_PROCESS) or narrow the other rule",
                                 carve->name, carve->name);
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
    if (bb_policy_precheck(text, len, source, err) < 0)
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
    bb_policy_lines_build(&ctx.lines, root, text, len);
    if (!p || !(p->source = strdup(source))) {
        bb_policy_problem(&ctx, root, "out of memory");
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        bb_policy_problem(&ctx, root, "a policy is a JSON object");
        goto done;
    }
    if (bb_policy_check_keys(&ctx, root, "the policy", top_keys) < 0)
        goto done;

    const cJSON *def = cJSON_GetObjectItemCaseSensitive(root, "defaultAction");
    if (!def)
        bb_policy_problem(&ctx, root, "missing defaultAction");
    else if (bb_policy_parse_action(&ctx, def, &p->default_action) == 0) {
        const cJSON *def_errno = cJSON_GetObjectItemCaseSensitive(root, "defaultErrnoRet");
        if (def_errno && !cJSON_IsNull(def_errno)) {
            if (p->default_action.kind != BB_ACT_ERRNO)
                bb_policy_problem(&ctx, def_errno, "defaultErrnoRet is only valid with SCMP_ACT_ERRNO");
            else
                bb_policy_parse_errno(&ctx, def_errno, "defaultErrnoRet", &p->default_action.errno_ret);
        }
        if (p->default_action.kind == BB_ACT_ALLOW || p->default_action.kind == BB_ACT_LOG)
            bb_policy_warning(&ctx, def, "defaultAction %s makes this a denylist: every call not named is "
                    "allowed", def->valuestring);
    }

    const cJSON *comment = cJSON_GetObjectItemCaseSensitive(root, "comment");
    if (comment && !cJSON_IsString(comment))
        bb_policy_problem(&ctx, comment, "comment must be a string");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "listenerMetadata");
    if (meta && !cJSON_IsString(meta))
        bb_policy_problem(&ctx, meta, "listenerMetadata must be a string");
    const cJSON *listener = cJSON_GetObjectItemCaseSensitive(root, "listenerPath");
    if (listener && !(cJSON_IsString(listener) && listener->valuestring[0] == '\0'))
        bb_policy_problem(&ctx, listener, "listenerPath (seccomp notify) is not supported");

    const cJSON *filter_flags = cJSON_GetObjectItemCaseSensitive(root, "flags");
    if (filter_flags && !cJSON_IsNull(filter_flags) &&
        bb_policy_parse_strings(&ctx, filter_flags, "flags") == 0) {
        for (const cJSON *f = filter_flags->child; f; f = f->next) {
            if (strcmp(f->valuestring, "SECCOMP_FILTER_FLAG_TSYNC") == 0)
                continue;   /* blockbox always synchronises threads */
            if (strcmp(f->valuestring, "SECCOMP_FILTER_FLAG_LOG") == 0 ||
                strcmp(f->valuestring, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
                bb_policy_warning(&ctx, f, "flag %s is ignored", f->valuestring);
            else
                bb_policy_problem(&ctx, f, "unsupported filter flag \"%.64s\"", f->valuestring);
        }
    }

    /* Architectures: only the native one gets a filter; every other ABI is killed. */
    int native_listed = 0, any_listed = 0;
    const cJSON *arches = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (arches && !cJSON_IsNull(arches)) {
        any_listed |= cJSON_GetArraySize(arches) > 0;
        bb_policy_parse_arches(&ctx, arches, "architectures", &native_listed);
    }
    const cJSON *arch_map = cJSON_GetObjectItemCaseSensitive(root, "archMap");
    if (arch_map && !cJSON_IsNull(arch_map)) {
        static const char *const map_keys[] = {"architecture", "subArchitectures", NULL};
        if (!cJSON_IsArray(arch_map))
            bb_policy_problem(&ctx, arch_map, "archMap must be an array");
        else
            for (const cJSON *m = arch_map->child; m; m = m->next) {
                if (!cJSON_IsObject(m) || bb_policy_check_keys(&ctx, m, "archMap[]", map_keys) < 0) {
                    if (!cJSON_IsObject(m))
                        bb_policy_problem(&ctx, m, "archMap[] items must be objects");
                    continue;
                }
                const cJSON *main_arch = cJSON_GetObjectItemCaseSensitive(m, "architecture");
                const cJSON *subs = cJSON_GetObjectItemCaseSensitive(m, "subArchitectures");
                int native = 0;
                if (!main_arch || !cJSON_IsString(main_arch) || !bb_policy_arch_token(main_arch->valuestring)) {
                    bb_policy_problem(&ctx, main_arch ? main_arch : m, "archMap[].architecture must name an architecture");
                    continue;
                }
                if (bb_policy_arch_token(main_arch->valuestring) == ctx.native_arch)
                    native = 1;
                if (subs)
                    bb_policy_parse_arches(&ctx, subs, "subArchitectures", &native);
                any_listed = 1;
                native_listed |= native;
            }
    }
    if (any_listed && !native_listed)
        bb_policy_problem(&ctx, arches ? arches : arch_map, "the policy does not cover this machine's "
                "architecture (%s)", seccomp_arch_native() == SCMP_ARCH_X86_64 ? "SCMP_ARCH_X86_64"
                : seccomp_arch_native() == SCMP_ARCH_AARCH64 ? "SCMP_ARCH_AARCH64" : "native");

    const cJSON *syscalls = cJSON_GetObjectItemCaseSensitive(root, "syscalls");
    size_t cap = 0;
    if (syscalls && !cJSON_IsNull(syscalls)) {
        if (!cJSON_IsArray(syscalls))
            bb_policy_problem(&ctx, syscalls, "syscalls must be an array");
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
