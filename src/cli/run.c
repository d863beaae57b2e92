/* run.c: `blockbox run`: reads the block and its inputs from files and flags, runs
 * it once through the public API and prints the one JSON report (DESIGN §6). */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <blockbox/driver.h>

#include "buffers.h"
#include "cli.h"

#define MAX_INPUT_FLAGS 256

typedef struct run_args {
    const char *code, *init, *function, *init_function, *imports, *inputs, *context, *output_dir;
    const char *input[MAX_INPUT_FLAGS];   /* "NAME=JSON" or "NAME=@FILE" */
    size_t n_input;
    /* config overrides: key and value, in the order given */
    const char *set_key[8], *set_flag[8], *set_value[8];
    size_t n_set;
} run_args;

/* A usage error: the report on stdout, a hint on stderr. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *message = NULL;
    int n = vasprintf(&message, fmt, ap);
    va_end(ap);
    const char *text = n < 0 ? "bad usage" : message;
    bb_cli_eprintf(stderr, "blockbox run: %s\n(see: blockbox help run)\n", text);
    int status = bb_cli_report_failure(BB_ERR_INVALID_REQUEST, "%s", text);
    free(message);
    return status;
}

/* What a flag sets: a field of run_args, one more --input, or a config key. */
enum flag_kind { FLAG_FIELD, FLAG_INPUT, FLAG_CONFIG };

static const struct {
    const char *flag;
    enum flag_kind kind;
    size_t field;      /* FLAG_FIELD: offset of the const char * in run_args */
    const char *key;   /* FLAG_CONFIG: the bb_config_set key */
} run_flags[] = {
    {"--code", FLAG_FIELD, offsetof(run_args, code), NULL},
    {"--init", FLAG_FIELD, offsetof(run_args, init), NULL},
    {"--function", FLAG_FIELD, offsetof(run_args, function), NULL},
    {"--init-function", FLAG_FIELD, offsetof(run_args, init_function), NULL},
    {"--imports", FLAG_FIELD, offsetof(run_args, imports), NULL},
    {"--inputs", FLAG_FIELD, offsetof(run_args, inputs), NULL},
    {"--context", FLAG_FIELD, offsetof(run_args, context), NULL},
    {"--output-dir", FLAG_FIELD, offsetof(run_args, output_dir), NULL},
    {"--input", FLAG_INPUT, 0, NULL},
    {"--mode", FLAG_CONFIG, 0, "mode"},
    {"--timeout", FLAG_CONFIG, 0, "timeout"},
    {"--memory", FLAG_CONFIG, 0, "memory_mb"},
    {"--workspace", FLAG_CONFIG, 0, "workspace_id"},
    {"--max-inputs", FLAG_CONFIG, 0, "max_inputs"},
};

/* Returns -1 when parsing went fine, else the exit status to leave with. */
static int parse_args(int argc, char **argv, run_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            bb_cli_usage_run(stdout);
            return BB_EXIT_OK;
        }
        if (strncmp(arg, "--", 2) != 0)
            return usage_error("unexpected argument '%s'", arg);
        /* --flag=value or --flag value */
        const char *eq = strchr(arg, '=');
        size_t flag_len = eq ? (size_t)(eq - arg) : strlen(arg);
        size_t f = 0, nflags = sizeof run_flags / sizeof run_flags[0];
        while (f < nflags && !(strlen(run_flags[f].flag) == flag_len &&
                               strncmp(run_flags[f].flag, arg, flag_len) == 0))
            f++;
        if (f == nflags)
            return usage_error("unknown option '%s'", arg);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return usage_error("option %s needs a value", run_flags[f].flag);
        if (run_flags[f].kind == FLAG_CONFIG) {
            if (a->n_set == sizeof a->set_key / sizeof a->set_key[0])
                return usage_error("too many options (%s)", run_flags[f].flag);
            a->set_key[a->n_set] = run_flags[f].key;
            a->set_flag[a->n_set] = run_flags[f].flag;
            a->set_value[a->n_set++] = value;
        } else if (run_flags[f].kind == FLAG_FIELD) {
            const char **slot = (const char **)((char *)a + run_flags[f].field);
            if (*slot)
                return usage_error("option %s is given twice", run_flags[f].flag);
            *slot = value;
        } else {
            if (a->n_input == MAX_INPUT_FLAGS)
                return usage_error("too many --input options (the limit is %d)", MAX_INPUT_FLAGS);
            a->input[a->n_input++] = value;
        }
    }
    if (!a->code)
        return usage_error("%s is required", "--code RUN.py");
    if (a->inputs && a->n_input)
        return usage_error("use either --inputs FILE or --input NAME=VALUE, not both");
    return -1;
}

/* Splits a text into its non-blank lines, in place. */
static int split_imports(char *text, char ***lines, size_t *n, bb_error **err)
{
    size_t cap = 0;
    *lines = NULL;
    *n = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **bigger = realloc(*lines, cap * sizeof *bigger);
            if (!bigger)
                return bb_cli_fail(err, BB_ERR_INTERNAL, "out of memory");
            *lines = bigger;
        }
        (*lines)[(*n)++] = line;
    }
    return 0;
}

/* Builds the inputs object from the --input flags into out. */
static int merge_inputs(const run_args *a, size_t max_bytes, bb_buf *out, bb_cli_buffers *bufs, bb_error **err)
{
    bb_buf_putc(out, '{');
    for (size_t i = 0; i < a->n_input; i++) {
        const char *item = a->input[i];
        const char *eq = strchr(item, '=');
        if (!eq || eq == item)
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST,
                           "--input wants NAME=JSON or NAME=@FILE, not '%.200s'", item);
        size_t name_len = (size_t)(eq - item);
        for (size_t j = 0; j < i; j++)
            if (strncmp(a->input[j], item, name_len + 1) == 0)
                return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "--input %.*s is given twice",
                               (int)name_len, item);
        if (i)
            bb_buf_puts(out, ", ");
        bb_buf_json_string(out, item, name_len);
        bb_buf_puts(out, ": ");
        const char *value = eq + 1;
        if (value[0] == '@' && bb_npy_is_npy_path(value + 1)) {   /* an array, by reference */
            if (bb_cli_npy_input(value + 1, max_bytes, out, bufs, err) < 0)
                return -1;
            continue;
        }
        if (value[0] == '@') {
            char *bytes = NULL;
            size_t len = 0;
            if (bb_cli_read_file(value + 1, max_bytes, "--input image", &bytes, &len, err) < 0)
                return -1;
            int rc = bb_json_image_value((const unsigned char *)bytes, len, out);
            free(bytes);
            if (rc < 0)
                return bb_cli_fail(err, BB_ERR_INTERNAL, "out of memory encoding %s", value + 1);
            continue;
        }
        /* One JSON value, nothing after it: no way to smuggle in other keys. */
        const char *end = NULL;
        cJSON *parsed = cJSON_ParseWithOpts(value, &end, 1);
        if (!parsed)
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST,
                           "--input %.*s: the value is not JSON (a string needs quotes: "
                           "%.*s='\"text\"')",
                           (int)name_len, item, (int)name_len, item);
        cJSON_Delete(parsed);
        bb_buf_puts(out, value);
        if (out->len > max_bytes)
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the --input values are larger than %zu bytes",
                           max_bytes);
    }
    bb_buf_putc(out, '}');
    return out->failed ? bb_cli_fail(err, BB_ERR_INTERNAL, "out of memory") : 0;
}

/* Reads a code file: capped, no NUL byte (it would silently cut the code). */
/* A text file of at most max bytes that holds no NUL byte (what names it in errors). */
static int read_text(const char *path, size_t max, const char *what, char **out, bb_error **err)
{
    size_t len = 0;
    if (bb_cli_read_file(path, max, what, out, &len, err) < 0)
        return -1;
    if (memchr(*out, '\0', len)) {
        free(*out);
        *out = NULL;
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "%s %s contains a NUL byte", what, path);
    }
    return 0;
}

static int read_code(const char *path, const char *what, char **out, bb_error **err)
{
    return read_text(path, BB_CLI_MAX_CODE_BYTES, what, out, err);
}

int bb_cli_run(int argc, char **argv)
{
    run_args a = {0};
    int status = parse_args(argc, argv, &a);
    if (status >= 0)
        return status;

    bb_error *err = NULL;
    bb_config *cfg = NULL;
    bb_executor *ex = NULL;
    bb_block *blk = NULL;
    bb_result *res = NULL;
    char *code = NULL, *init = NULL, *imports_text = NULL, *inputs = NULL, *context = NULL;
    char **imports = NULL, *outputs = NULL;
    size_t n_imports = 0, len = 0;
    bb_buf merged = {0};
    bb_cli_buffers bufs = {0};   /* the .npy inputs (~20 KiB of bookkeeping) */

    cfg = bb_config_from_env(&err);
    if (!cfg)
        goto report;
    for (size_t i = 0; i < a.n_set; i++) {
        bb_error *bad = NULL;
        if (bb_config_set(cfg, a.set_key[i], a.set_value[i], &bad) < 0) {
            /* A bad flag is bad usage (exit 2); a bad variable stays a ConfigurationError. */
            bb_cli_fail(&err, BB_ERR_INVALID_REQUEST, "%s: %s", a.set_flag[i],
                    bad ? bb_error_message(bad) : "invalid value");
            bb_error_free(bad);
            goto bad_usage;
        }
    }
    /* The config checked the setting: a number of bytes (64 MiB unless set). */
    const char *max_text = bb_config_get(cfg, "max_input_bytes");
    size_t max_input = max_text ? (size_t)strtoull(max_text, NULL, 10) : 0;
    if (!max_input)
        max_input = (size_t)64 << 20;

    if (read_code(a.code, "--code file", &code, &err) < 0 ||
        (a.init && read_code(a.init, "--init file", &init, &err) < 0))
        goto bad_usage;
    if (a.imports) {
        if (read_code(a.imports, "--imports file", &imports_text, &err) < 0 ||
            split_imports(imports_text, &imports, &n_imports, &err) < 0)
            goto bad_usage;
    }
    if (a.inputs) {
        if (read_text(a.inputs, max_input, "--inputs file", &inputs, &err) < 0)
            goto bad_usage;
    } else if (a.n_input) {
        if (merge_inputs(&a, max_input, &merged, &bufs, &err) < 0)
            goto bad_usage;
        inputs = bb_buf_steal(&merged, &len);
    }
    if (a.context && read_text(a.context, max_input, "--context file", &context, &err) < 0)
        goto bad_usage;

    if (a.output_dir && bb_cli_output_dir_check(a.output_dir, &err) < 0)
        goto bad_usage;

    ex = bb_executor_new(cfg, &err);
    if (!ex)
        goto report;
    bb_block_spec spec = {
        .run_code = code,
        .run_function_name = a.function,
        .init_code = init,
        .init_function_name = a.init_function,
        .imports = (const char *const *)imports,
        .n_imports = n_imports,
    };
    blk = bb_block_load(ex, &spec, &err);
    if (!blk)
        goto report;
    /* Without .npy inputs, the JSON-only call: images come back as they always did. */
    res = bufs.n ? bb_block_run_buffers(blk, inputs ? inputs : "{}", context, bufs.bufs, bufs.n)
                 : bb_block_run(blk, inputs ? inputs : "{}", context);
    if (!res)
        err = bb_error_new(BB_ERR_INTERNAL, "out of memory");
    else if (bb_result_ok(res) && bb_cli_outputs_inline(res, a.output_dir, &outputs, &err) < 0)
        goto bad_usage;
    goto report;

bad_usage:
    /* A file or flag the CLI itself could not use: say so on stderr too. */
    bb_cli_eprintf(stderr, "blockbox run: %s\n(see: blockbox help run)\n", bb_error_message(err));
report:
    status = bb_cli_report_outputs(err ? NULL : res, outputs, err);
    bb_result_free(res);
    bb_block_free(blk);
    bb_executor_free(ex);
    bb_config_free(cfg);
    bb_error_free(err);
    bb_buf_free(&merged);
    free(imports);
    free(code);
    free(init);
    free(imports_text);
    free(inputs);
    free(context);
    free(outputs);
    bb_cli_buffers_free(&bufs);
    return status;
}
