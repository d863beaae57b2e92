/* report.c: the one JSON object `blockbox run` prints, built whole in memory, cleaned
 * of every secret the process knows, then written at once. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <blockbox/driver.h>

#include "cli.h"

/* The variables whose values are never printed, whatever carries them. */
static const char *const secret_vars[] = {"MODAL_TOKEN_SECRET", "MODAL_TOKEN_ID"};
#define N_SECRETS (sizeof secret_vars / sizeof secret_vars[0])
/* Values shorter than this are not searched for: they would match ordinary text. */
#define MIN_SECRET_LEN 6

/* The raw and JSON-escaped forms of each secret. Set once at start-up by main and
 * never changed after, so it is process-wide state that the single CLI process owns. */
static struct {
    char *raw;
    char *escaped;
} secrets[N_SECRETS];

void bb_cli_secrets_init(void)
{
    for (size_t i = 0; i < N_SECRETS; i++) {
        const char *v = getenv(secret_vars[i]);
        if (!v || strlen(v) < MIN_SECRET_LEN)
            continue;
        bb_buf b = {0};
        bb_buf_json_string(&b, v, strlen(v));
        char *escaped = bb_buf_steal(&b, NULL);
        if (escaped) {
            /* drop the quotes */
            memmove(escaped, escaped + 1, strlen(escaped) - 1);
            escaped[strlen(escaped) - 2] = '\0';
        }
        secrets[i].raw = strdup(v);
        secrets[i].escaped = escaped;
    }
}

static void redact_one(bb_buf *b, const char *needle)
{
    if (!needle || !*needle || !b->data)
        return;
    static const char mark[] = "(redacted)";
    size_t n = strlen(needle), m = sizeof mark - 1;
    char *p = b->data;
    while ((p = memmem(p, b->len - (size_t)(p - b->data), needle, n)) != NULL) {
        size_t at = (size_t)(p - b->data);
        if (m > n && bb_buf_reserve(b, m - n) < 0)
            return;
        p = b->data + at;
        memmove(p + m, p + n, b->len - at - n + 1);
        memcpy(p, mark, m);
        b->len = b->len - n + m;
        p += m;
    }
}

void bb_cli_redact(bb_buf *b)
{
    for (size_t i = 0; i < N_SECRETS; i++) {
        redact_one(b, secrets[i].raw);
        redact_one(b, secrets[i].escaped);
    }
}

/* The variable whose value text holds, or NULL. */
static const char *secret_in(const char *text)
{
    if (!text)
        return NULL;
    for (size_t i = 0; i < N_SECRETS; i++)
        if ((secrets[i].raw && strstr(text, secrets[i].raw)) ||
            (secrets[i].escaped && strstr(text, secrets[i].escaped)))
            return secret_vars[i];
    return NULL;
}

/* A secret in what the backend sent back means it reached the block: the run's
 * output is withheld and the run fails as a violation, loudly, instead of being
 * printed with the secret blanked out (which would hide the leak). */
static const char *leaked_secret(const bb_result *res)
{
    if (!res)
        return NULL;
    const bb_error *e = bb_result_error(res);
    const char *fields[] = {bb_result_outputs(res), bb_result_stdout(res), bb_result_stderr(res),
                            bb_result_debug_traces(res),
                            e ? bb_error_message(e) : NULL, e ? bb_error_traceback(e) : NULL,
                            e ? bb_error_type_name(e) : NULL, e ? bb_error_function(e) : NULL};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *var = secret_in(fields[i]);
        if (var)
            return var;
    }
    return NULL;
}

void bb_cli_eprintf(FILE *stream, const char *fmt, ...)
{
    bb_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    bb_buf_append(&b, text, (size_t)n);
    free(text);
    bb_cli_redact(&b);
    if (!b.failed && b.data)
        fwrite(b.data, 1, b.len, stream);
    bb_buf_free(&b);
}

static void put_key(bb_buf *b, const char *key)
{
    bb_buf_puts(b, ", \"");
    bb_buf_puts(b, key);
    bb_buf_puts(b, "\": ");
}

static void put_string_or_null(bb_buf *b, const char *key, const char *value)
{
    put_key(b, key);
    if (value)
        bb_buf_json_string(b, value, strlen(value));
    else
        bb_buf_puts(b, "null");
}

/* "socket,ptrace" -> ["socket", "ptrace"] */
static void put_denied(bb_buf *b, const char *names)
{
    put_key(b, "denied_syscalls");
    bb_buf_putc(b, '[');
    const char *p = names;
    int first = 1;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n) {
            if (!first)
                bb_buf_puts(b, ", ");
            bb_buf_json_string(b, p, n);
            first = 0;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    bb_buf_putc(b, ']');
}

/* Written when even the report cannot be built (out of memory). */
static const char oom_report[] =
    "{\"success\": false, \"outputs\": null, \"stdout\": \"\", \"stderr\": \"\", "
    "\"error_type\": \"InternalError\", \"error\": \"out of memory\", \"line_number\": null, "
    "\"function_name\": null, \"traceback\": null}\n";

int bb_cli_report(const bb_result *res, const bb_error *err) { return bb_cli_report_outputs(res, NULL, err); }

int bb_cli_report_outputs(const bb_result *res, const char *outputs_text, const bb_error *err)
{
    const char *leak = leaked_secret(res);
    if (leak) {
        bb_error *violation = bb_error_new(BB_ERR_SANDBOX_VIOLATION,
                                           "the backend's response contained the value of %s, so the "
                                           "block could read a host secret; its output is withheld",
                                           leak);
        int status = bb_cli_report(NULL, violation);
        bb_error_free(violation);
        return status;
    }
    if (res && !bb_result_ok(res))
        err = bb_result_error(res);
    int ok = res && bb_result_ok(res) && !err;
    const char *outputs = !ok ? NULL : outputs_text ? outputs_text : bb_result_outputs(res);
    const char *out_text = res ? bb_result_stdout(res) : "";
    const char *err_text = res ? bb_result_stderr(res) : "";
    bb_error *owned = NULL;   /* made here, freed here */
    bb_buf b = {0};
    bb_buf_printf(&b, "{\"success\": %s", ok ? "true" : "false");
    put_key(&b, "outputs");
    /* The core has parsed and checked the outputs text: it is one JSON value. */
    bb_buf_puts(&b, outputs && *outputs ? outputs : "null");
    put_string_or_null(&b, "stdout", out_text ? out_text : "");
    put_string_or_null(&b, "stderr", err_text ? err_text : "");
    int status = BB_EXIT_OK;
    if (!ok) {
        if (!err)
            err = owned = bb_error_new(BB_ERR_INTERNAL, "out of memory");
        status = bb_error_exit_code(err);
        if (status == BB_EXIT_OK)
            status = BB_EXIT_BACKEND;   /* a failure never exits 0 */
        put_string_or_null(&b, "error_type", bb_error_type_name(err));
        put_string_or_null(&b, "error", bb_error_message(err));
        put_key(&b, "line_number");
        if (bb_error_line(err) > 0)
            bb_buf_printf(&b, "%d", bb_error_line(err));
        else
            bb_buf_puts(&b, "null");
        put_string_or_null(&b, "function_name", bb_error_function(err));
        put_string_or_null(&b, "traceback", bb_error_traceback(err));
    }
    const char *denied = res ? bb_result_denied_syscalls(res) : NULL;
    if (denied && *denied)
        put_denied(&b, denied);
    /* checked JSON text from the core: a list */
    put_key(&b, "debug_traces");
    bb_buf_puts(&b, res ? bb_result_debug_traces(res) : "[]");
    if (res && bb_result_restarted(res))
        bb_buf_puts(&b, ", \"restarted\": true");   /* the instance lost its worker first */
    bb_buf_puts(&b, "}\n");
    bb_cli_redact(&b);
    if (b.failed || !b.data) {
        fputs(oom_report, stdout);
        status = BB_EXIT_BACKEND;
    } else {
        fwrite(b.data, 1, b.len, stdout);
    }
    bb_buf_free(&b);
    bb_error_free(owned);
    if (fflush(stdout) != 0 && status == BB_EXIT_OK)
        status = BB_EXIT_BACKEND;
    return status;
}

int bb_cli_fail(bb_error **err, bb_error_kind kind, const char *fmt, ...)
{
    if (!err || *err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *message = NULL;
    int n = vasprintf(&message, fmt, ap);
    va_end(ap);
    *err = n < 0 ? bb_error_new(BB_ERR_INTERNAL, "out of memory") : bb_error_new(kind, "%s", message);
    free(message);
    return -1;
}

int bb_cli_report_failure(bb_error_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *message = NULL;
    int n = vasprintf(&message, fmt, ap);
    va_end(ap);
    bb_error *err = bb_error_new(kind, "%s", n < 0 ? "out of memory" : message);
    free(message);
    int status = bb_cli_report(NULL, err);
    bb_error_free(err);
    return status;
}
