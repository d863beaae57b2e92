/* policy.c: the policy object: loaded from a file (capped, read once) or the embedded
 * default, freed, and read by the compiler, the report and tests. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "policy_int.h"

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

int bb_policy_action_equal(bb_policy_action a, bb_policy_action b)
{
    return a.kind == b.kind && (a.kind != BB_ACT_ERRNO || a.errno_ret == b.errno_ret);
}
