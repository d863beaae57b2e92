/* policy_fields.c: the fields of an OCI/Docker seccomp policy (actions, errno values,
 * arguments, architectures, includes/excludes), each checked with its FILE:LINE. */
#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "policy_int.h"

/* Every key of obj must be in allowed[] and appear once (duplicate keys are how two
 * JSON parsers come to disagree about what a policy says). */
int bb_policy_check_keys(parse_ctx *ctx, const cJSON *obj, const char *what,
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
            bb_policy_problem(ctx, item, "unknown key \"%.64s\" in %s", key, what);
            bad = 1;
        }
        for (const cJSON *prev = obj->child; prev != item; prev = prev->next)
            if (prev->string && strcmp(prev->string, key) == 0) {
                bb_policy_problem(ctx, item, "duplicate key \"%.64s\" in %s", key, what);
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
            bb_policy_problem(ctx, node, "%s must be a whole number from 0 to 2^53 (write larger values as "
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
            bb_policy_problem(ctx, node, "%s: \"%.40s\" is not an unsigned integer", what, s);
            return -1;
        }
        errno = 0;
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || *end) {
            bb_policy_problem(ctx, node, "%s: \"%.40s\" is not an unsigned 64-bit integer", what, s);
            return -1;
        }
        *out = v;
        return 0;
    }
    bb_policy_problem(ctx, node, "%s must be a number", what);
    return -1;
}

int bb_policy_parse_errno(parse_ctx *ctx, const cJSON *node, const char *what, int *out)
{
    uint64_t v = 0;
    if (!cJSON_IsNumber(node)) {
        bb_policy_problem(ctx, node, "%s must be a number", what);
        return -1;
    }
    if (parse_u64(ctx, node, what, &v) < 0)
        return -1;
    if (v < 1 || v > 4095) {
        bb_policy_problem(ctx, node, "%s must be an errno from 1 to 4095", what);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int bb_policy_parse_action(parse_ctx *ctx, const cJSON *node, bb_policy_action *out)
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
        bb_policy_problem(ctx, node, "action must be a string such as \"SCMP_ACT_ALLOW\"");
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
        bb_policy_problem(ctx, node, "action %s is not supported by blockbox (no tracer or notify "
                "listener exists); refusing the policy", node->valuestring);
    else
        bb_policy_problem(ctx, node, "unknown action \"%.64s\"", node->valuestring);
    return -1;
}

int bb_policy_parse_strings(parse_ctx *ctx, const cJSON *arr, const char *what)
{
    if (!cJSON_IsArray(arr)) {
        bb_policy_problem(ctx, arr, "%s must be an array of strings", what);
        return -1;
    }
    for (const cJSON *a = arr->child; a; a = a->next)
        if (!cJSON_IsString(a)) {
            bb_policy_problem(ctx, a, "%s must contain only strings", what);
            return -1;
        }
    return 0;
}

/* "SCMP_ARCH_X86_64" -> libseccomp token, 0 if unknown. */
uint32_t bb_policy_arch_token(const char *name)
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
        return bb_policy_arch_token(name);
    return seccomp_arch_resolve_name(name);
}

/* includes/excludes arches: sets *has_native; unknown names are not errors. */
static int parse_filter_arches(parse_ctx *ctx, const cJSON *arr, int *has_native)
{
    if (bb_policy_parse_strings(ctx, arr, "arches") < 0)
        return -1;
    for (const cJSON *a = arr->child; a; a = a->next)
        if (filter_arch_token(a->valuestring) == ctx->native_arch)
            *has_native = 1;
    return 0;
}

/* Checks an array of architecture names; sets *has_native. */
int bb_policy_parse_arches(parse_ctx *ctx, const cJSON *arr, const char *what, int *has_native)
{
    if (!cJSON_IsArray(arr)) {
        bb_policy_problem(ctx, arr, "%s must be an array of architecture names", what);
        return -1;
    }
    int bad = 0;
    for (const cJSON *a = arr->child; a; a = a->next) {
        uint32_t token = cJSON_IsString(a) ? bb_policy_arch_token(a->valuestring) : 0;
        if (!token) {
            bb_policy_problem(ctx, a, "%s: unknown architecture %s%.40s%s", what, cJSON_IsString(a) ? "\"" : "",
                    cJSON_IsString(a) ? a->valuestring : "(not a string)", cJSON_IsString(a) ? "\"" : "");
            bad = 1;
        } else if (token == ctx->native_arch)
            *has_native = 1;
    }
    return bad ? -1 : 0;
}

/* includes/excludes: returns 1 if the entry applies on this machine to a worker that
 * holds no capabilities, 0 if it is to be skipped, -1 on a problem. */
int bb_policy_entry_applies(parse_ctx *ctx, const cJSON *entry)
{
    static const char *const filter_keys[] = {"caps", "arches", "minKernel", NULL};
    int applies = 1;
    for (int which = 0; which < 2; which++) {
        const char *key = which ? "excludes" : "includes";
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(entry, key);
        if (!f || cJSON_IsNull(f))
            continue;
        if (!cJSON_IsObject(f)) {
            bb_policy_problem(ctx, f, "%s must be an object", key);
            return -1;
        }
        if (bb_policy_check_keys(ctx, f, key, filter_keys) < 0)
            return -1;
        const cJSON *caps = cJSON_GetObjectItemCaseSensitive(f, "caps");
        const cJSON *arches = cJSON_GetObjectItemCaseSensitive(f, "arches");
        const cJSON *min_kernel = cJSON_GetObjectItemCaseSensitive(f, "minKernel");
        if (caps && bb_policy_parse_strings(ctx, caps, "caps") < 0)
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
                bb_policy_problem(ctx, min_kernel, "minKernel must be a string like \"5.10\"");
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

int bb_policy_parse_args(parse_ctx *ctx, const cJSON *args, bb_policy_rule *tmpl)
{
    static const char *const arg_keys[] = {"index", "value", "valueTwo", "op", NULL};
    tmpl->n_args = 0;
    if (!args || cJSON_IsNull(args))
        return 0;
    if (!cJSON_IsArray(args)) {
        bb_policy_problem(ctx, args, "args must be an array");
        return -1;
    }
    int bad = 0;
    unsigned seen = 0;
    for (const cJSON *a = args->child; a; a = a->next) {
        if (!cJSON_IsObject(a)) {
            bb_policy_problem(ctx, a, "each args[] item must be an object");
            bad = 1;
            continue;
        }
        if (bb_policy_check_keys(ctx, a, "args[]", arg_keys) < 0) {
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
            bb_policy_problem(ctx, index ? index : a, "index must be a syscall argument number from 0 to 5");
            bad = 1;
            continue;
        }
        arg.index = (unsigned)idx;
        if (!value) {
            bb_policy_problem(ctx, a, "args[] item needs a value");
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
            bb_policy_problem(ctx, op ? op : a, "op must be one of SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT, "
                    "_MASKED_EQ%s%.40s%s", cJSON_IsString(op) ? " (got \"" : "",
                    cJSON_IsString(op) ? op->valuestring : "", cJSON_IsString(op) ? "\")" : "");
            bad = 1;
            continue;
        }
        if (arg.op == BB_OP_MASKED_EQ && (arg.value_two & ~arg.value)) {
            bb_policy_problem(ctx, value_two ? value_two : a, "MASKED_EQ: valueTwo has bits outside the mask "
                    "(value), so the rule could never match");
            bad = 1;
            continue;
        }
        if (arg.op != BB_OP_MASKED_EQ && value_two && arg.value_two != 0)
            bb_policy_warning(ctx, value_two, "valueTwo is only used by SCMP_CMP_MASKED_EQ; ignored");
        if (seen & (1u << arg.index)) {
            bb_policy_problem(ctx, index, "argument %u is compared twice in one entry; libseccomp cannot "
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

int bb_policy_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof ((bb_policy_rule *)0)->name)
        return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}
