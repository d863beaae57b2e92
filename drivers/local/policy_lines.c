/* policy_lines.c: the text of a policy before and after cJSON: the hostile-input
 * precheck (size, NUL, depth) and the map from parsed nodes to their line numbers. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "policy_int.h"

/* ---- hostile-input precheck: size, NUL bytes, nesting (no recursion) ---------- */

int bb_policy_precheck(const char *text, size_t len, const char *source, bb_error **err)
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
void bb_policy_lines_build(line_map *map, const cJSON *root, const char *text, size_t len)
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

int bb_policy_line_of(const line_map *map, const cJSON *node)
{
    if (!node || !map->n)
        return 0;
    node_line key = {node, 0};
    const node_line *hit = bsearch(&key, map->entries, map->n, sizeof key, cmp_node_line);
    return hit ? hit->line : 0;
}
