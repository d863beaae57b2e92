/* echo_driver.c: a driver plugin built only for the tests. It registers "echo", which
 * answers each run by echoing the inputs, and on request misbehaves in every way. */
#include <blockbox/driver.h>
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/*
 * Control, all through ordinary block data (the driver sees only what the core
 * forwards):
 *
 *   inputs {"__echo": "<command>", …}   changes how a run answers:
 *     "block_error"            the block raised ValueError at line 3 of run
 *     "error:<Type>"           a response with error_type <Type> (e.g. Timeout)
 *     "fail:<Kind>"            run() itself fails with that bb_error_kind name
 *     "hostile:<variant>"      an invalid response envelope (see hostile_body)
 *     "denied"                 success, with denied_syscalls ["socket", "ptrace"]
 *     "sleep:<ms>"             sleeps, then answers normally
 *     "env:<NAME>"             puts getenv(NAME) into stdout (tests the CLI's redaction)
 *     "stdout:<text>"          puts <text> into stdout
 *     "outputs:<json>"         answers with <json> as the result text
 *   run code containing "ECHO_LOAD_FAIL:<Kind>" makes load() fail with that kind.
 *
 * A normal answer: success, result = {"inputs": <inputs>, "context": <context>,
 * "function": <run function name>, "code_hash": <hash>, "calls": <runs of this
 * executor>}, stdout "echo: <n>\n", stderr "".
 *
 * The plugin is built with one of these to test the registry's refusals:
 *   ECHO_BAD_ABI      the driver claims ABI version 999
 *   ECHO_NO_ENTRY     the entry point is not exported
 *   ECHO_DUPLICATE    it registers a driver named "LOCAL" (a built-in's name)
 *   ECHO_ENTRY_FAILS  the entry point refuses to register (and says why)
 *   ECHO_ABI_1        it is an ABI 1 driver: the struct as it was before struct_size
 *                     (ends at close), as an old plugin binary hands it over
 *   ECHO_SMALL_STRUCT an ABI 2 driver whose struct_size ends before `settings`: the
 *                     bytes past it are poison, which the core must not read
 *
 * Its own setting (ABI 2 variants but ECHO_NO_SETTINGS, so that two echoes can be
 * registered together): echo_level, a whole number from 1 to 10 (default 1,
 * variable BB_TEST_ECHO_LEVEL), reported by describe as "level".
 */

#ifndef ECHO_NAME
#define ECHO_NAME "echo"
#endif

/* Runs seen by every echo driver in this process: the tests read it to prove the
 * core refused a request before the driver saw it. A process-wide counter is the
 * point, so it is global (and atomic). */
static atomic_long echo_runs_total;

__attribute__((visibility("default"))) long blockbox_test_echo_runs(void)
{
    return atomic_load(&echo_runs_total);
}

typedef struct echo_state {
    atomic_long calls;
    long level;
} echo_state;

typedef struct echo_block {
    char *code_hash;
    char *function;
    int loads;
} echo_block;

/* "Timeout" -> BB_ERR_TIMEOUT, through the public names only. */
static bb_error_kind kind_from_name(const char *name)
{
    for (int k = BB_ERR_BLOCK; k <= BB_ERR_INTERNAL; k++)
        if (strcmp(bb_error_kind_name((bb_error_kind)k), name) == 0)
            return (bb_error_kind)k;
    return BB_ERR_INTERNAL;
}

static int echo_open(const bb_config *cfg, void **driver_state, bb_error **err)
{
    /* Like the local driver, honour ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS. */
    const char *allow = bb_config_get(cfg, "allow_execution");
    if (allow && strcasecmp(allow, "False") == 0) {
        *err = bb_error_new(BB_ERR_EXECUTION_DISABLED,
                            "custom Python execution is disabled "
                            "(ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS=False)");
        return -1;
    }
    echo_state *st = calloc(1, sizeof *st);
    if (!st) {
        *err = bb_error_new(BB_ERR_INTERNAL, "out of memory");
        return -1;
    }
#if !defined ECHO_ABI_1 && !defined ECHO_SMALL_STRUCT
    st->level = bb_setting_long(cfg, "echo_level");   /* checked by the core: 1..10 */
#endif
    *driver_state = st;
    return 0;
}

static int echo_load(void *driver_state, const bb_block_info *block, void **block_state,
                     bb_error **err)
{
    (void)driver_state;
    const char *fail = strstr(block->run_code, "ECHO_LOAD_FAIL:");
    if (fail) {
        char kind[64] = {0};
        sscanf(fail + strlen("ECHO_LOAD_FAIL:"), "%63[A-Za-z]", kind);
        *err = bb_error_new(kind_from_name(kind), "echo: load refused (%s)", kind);
        return -1;
    }
    if (!block->load_envelope || !block->code_hash || strlen(block->code_hash) != 32) {
        *err = bb_error_new(BB_ERR_INTERNAL, "echo: the core sent no load envelope or hash");
        return -1;
    }
    echo_block *b = calloc(1, sizeof *b);
    if (!b || !(b->code_hash = strdup(block->code_hash)) ||
        !(b->function = strdup(block->run_function_name))) {
        if (b)
            free(b->code_hash);
        free(b);
        *err = bb_error_new(BB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    *block_state = b;
    return 0;
}

static int reply_text(bb_reply *reply, const char *text, size_t len, bb_error **err)
{
    reply->body = malloc(len ? len : 1);
    if (!reply->body) {
        *err = bb_error_new(BB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    memcpy(reply->body, text, len);
    reply->len = len;
    return 0;
}

/* A body made for the reply (malloc'd, len bytes; len < 0: it could not be made). */
static int reply_made(bb_reply *reply, char *body, int len, bb_error **err)
{
    if (len < 0) {
        *err = bb_error_new(BB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    reply->body = body;
    reply->len = (size_t)len;
    return 0;
}

/* Prints a cJSON tree into the reply. */
static int reply_json(bb_reply *reply, cJSON *root, bb_error **err)
{
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        *err = bb_error_new(BB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    int rc = reply_text(reply, text, strlen(text), err);
    free(text);
    return rc;
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memset(s, c, n);
        s[n] = '\0';
    }
    return s;
}

/* An invalid response envelope of the named kind; NULL body for "empty". */
static int hostile_body(const char *variant, bb_reply *reply, bb_error **err)
{
    static const struct { const char *name, *body; } fixed[] = {
        {"not_json", "this is not json"},
        {"truncated", "{\"success\": true, \"result\": \"{}\", \"stdout\": \"x"},
        {"not_object", "[true, \"{}\"]"},
        {"no_success", "{\"result\": \"{}\", \"stdout\": \"\", \"stderr\": \"\"}"},
        {"success_not_bool", "{\"success\": \"yes\", \"result\": \"{}\"}"},
        {"result_not_string", "{\"success\": true, \"result\": {\"a\": 1}, \"stdout\": \"\", \"stderr\": \"\"}"},
        {"result_not_json", "{\"success\": true, \"result\": \"{oops\", \"stdout\": \"\", \"stderr\": \"\"}"},
        {"result_scalar", "{\"success\": true, \"result\": \"42\", \"stdout\": \"\", \"stderr\": \"\"}"},
        {"unknown_tag", "{\"success\": true, \"result\": \"{\\\"x\\\": {\\\"_type\\\": \\\"rootkit\\\"}}\", "
                        "\"stdout\": \"\", \"stderr\": \"\"}"},
        {"bad_base64", "{\"success\": true, \"result\": \"{\\\"x\\\": {\\\"_type\\\": \\\"bytes\\\", "
                       "\\\"value\\\": \\\"!!!\\\"}}\", \"stdout\": \"\", \"stderr\": \"\"}"},
        {"line_negative", "{\"success\": false, \"error_type\": \"ValueError\", \"error\": \"x\", "
                          "\"line_number\": -5, \"stdout\": \"\", \"stderr\": \"\"}"},
        {"line_string", "{\"success\": false, \"error_type\": \"ValueError\", \"error\": \"x\", "
                        "\"line_number\": \"3\", \"stdout\": \"\", \"stderr\": \"\"}"},
        {"denied_not_list", "{\"success\": true, \"result\": \"{}\", \"stdout\": \"\", \"stderr\": \"\", "
                            "\"denied_syscalls\": \"socket\"}"},
        {"denied_bad_name", "{\"success\": true, \"result\": \"{}\", \"stdout\": \"\", \"stderr\": \"\", "
                            "\"denied_syscalls\": [\"rm -rf /\"]}"},
        {"stdout_not_string", "{\"success\": true, \"result\": \"{}\", \"stdout\": 7, \"stderr\": \"\"}"},
        {"invalid_utf8", "{\"success\": true, \"result\": \"{}\", \"stdout\": \"\xff\xfe\", \"stderr\": \"\"}"},
        {"escape_between_tokens", "{\"success\": true,\x1b[2J \"result\": \"{}\"}"},
        {"lenient_result", "{\"success\": true, \"result\": \"{\\\"a\\\": 01, \\\"b\\\": 1.}\"}"},
        {"runtime_mismatch", "{\"success\": true, \"result\": \"{}\", \"stdout\": \"\", \"stderr\": \"\", "
                             "\"runtime_version\": \"999\"}"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(variant, fixed[i].name) == 0)
            return reply_text(reply, fixed[i].body, strlen(fixed[i].body), err);
    if (strcmp(variant, "empty") == 0) {
        reply->body = NULL;
        reply->len = 0;
        return 0;
    }
    if (strcmp(variant, "nul_byte") == 0) {
        static const char body[] = "{\"success\": true, \"result\": \"{}\", \"stdout\": \"a\0b\", \"stderr\": \"\"}";
        return reply_text(reply, body, sizeof body - 1, err);
    }
    if (strcmp(variant, "pad") == 0) {
        /* issue 8: a valid reply with a large ignored member, as forged on fd 4 */
        static const char head[] = "{\"success\": true, \"result\": \"{}\", \"pad\": [";
        size_t n = (size_t)4 << 20, len = sizeof head - 1 + 2 * n + 1;
        char *body = malloc(len + 1);
        if (!body) {
            *err = bb_error_new(BB_ERR_INTERNAL, "echo: out of memory");
            return -1;
        }
        memcpy(body, head, sizeof head - 1);
        for (size_t i = 0; i < n; i++)
            memcpy(body + sizeof head - 1 + 2 * i, "0,", 2);
        memcpy(body + len - 2, "]}", 3);
        reply->body = body;
        reply->len = len;
        return 0;
    }
    if (strcmp(variant, "len_past_body") == 0) {
        /* A driver bug the core cannot see past: the length covers trailing garbage. */
        static const char body[] = "{\"success\": true, \"result\": \"{}\"}\0garbage";
        return reply_text(reply, body, sizeof body - 1, err);
    }
    if (strcmp(variant, "deep") == 0 || strcmp(variant, "deep_result") == 0) {
        size_t depth = 100000;
        char *open = repeat('[', depth), *close = repeat(']', depth);
        if (!open || !close) {
            free(open);
            free(close);
            *err = bb_error_new(BB_ERR_INTERNAL, "out of memory");
            return -1;
        }
        char *body = NULL;
        int n = strcmp(variant, "deep") == 0
                    ? asprintf(&body, "{\"success\": true, \"stdout\": %s%s}", open, close)
                    : asprintf(&body, "{\"success\": true, \"result\": \"{\\\"x\\\": %s%s}\", "
                                      "\"stdout\": \"\", \"stderr\": \"\"}", open, close);
        free(open);
        free(close);
        return reply_made(reply, body, n, err);
    }
    if (strcmp(variant, "huge_result") == 0) {
        /* A result past any sane max_output_bytes (tests set it low). */
        size_t n = 4u << 20;
        char *fill = repeat('a', n);
        char *body = NULL;
        int len = fill ? asprintf(&body, "{\"success\": true, \"result\": \"{\\\"s\\\": \\\"%s\\\"}\", "
                                         "\"stdout\": \"\", \"stderr\": \"\"}", fill) : -1;
        free(fill);
        return reply_made(reply, body, len, err);
    }
    *err = bb_error_new(BB_ERR_INTERNAL, "echo: unknown hostile variant '%s'", variant);
    return -1;
}

static int block_error(bb_reply *reply, const char *type, bb_error **err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "success", 0);
    cJSON_AddStringToObject(root, "error_type", type);
    char message[256];
    snprintf(message, sizeof message, "Error in line 3, in run: %s: boom", type);
    cJSON_AddStringToObject(root, "error", message);
    cJSON_AddNumberToObject(root, "line_number", 3);
    cJSON_AddStringToObject(root, "function_name", "run");
    cJSON_AddStringToObject(root, "traceback",
                            "Traceback (most recent call last):\n  File \"<block>\", line 3, in run\n");
    cJSON_AddStringToObject(root, "stdout", "before the error\n");
    cJSON_AddStringToObject(root, "stderr", "");
    return reply_json(reply, root, err);
}

/* The normal answer: a result that echoes what the core sent. */
static int echo_answer(echo_block *b, long calls, cJSON *inputs, const cJSON *request,
                       const char *extra_stdout, const char *raw_outputs, int denied,
                       bb_reply *reply, bb_error **err)
{
    char *result_text = NULL;
    if (raw_outputs) {
        result_text = strdup(raw_outputs);
    } else {
        cJSON *result = cJSON_CreateObject();
        cJSON_AddItemToObject(result, "inputs", cJSON_Duplicate(inputs, 1));
        const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(request, "workflow_context");
        cJSON_AddItemToObject(result, "context", ctx ? cJSON_Duplicate(ctx, 1) : cJSON_CreateNull());
        cJSON_AddStringToObject(result, "function", b->function);
        cJSON_AddStringToObject(result, "code_hash", b->code_hash);
        cJSON_AddNumberToObject(result, "calls", (double)calls);
        const cJSON *imports = cJSON_GetObjectItemCaseSensitive(request, "imports");
        cJSON_AddItemToObject(result, "imports", imports ? cJSON_Duplicate(imports, 1) : cJSON_CreateArray());
        result_text = cJSON_PrintUnformatted(result);
        cJSON_Delete(result);
    }
    char out[512];
    snprintf(out, sizeof out, "echo: %ld\n%s", calls, extra_stdout ? extra_stdout : "");
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "success", 1);
    cJSON_AddStringToObject(root, "result", result_text ? result_text : "{}");
    free(result_text);
    cJSON_AddStringToObject(root, "stdout", out);
    cJSON_AddStringToObject(root, "stderr", "");
    if (denied) {
        const char *names[] = {"socket", "ptrace"};
        cJSON_AddItemToObject(root, "denied_syscalls", cJSON_CreateStringArray(names, 2));
    }
    return reply_json(reply, root, err);
}

static int echo_run(void *driver_state, void *block_state, const bb_call *call, bb_reply *reply,
                    bb_error **err)
{
    echo_state *st = driver_state;
    echo_block *b = block_state;
    atomic_fetch_add(&echo_runs_total, 1);
    long calls = atomic_fetch_add(&st->calls, 1) + 1;
    size_t len = 0;
    const char *envelope = bb_call_envelope(call, 1, &len);
    if (!envelope || bb_call_timeout_ms(call) <= 0) {
        *err = bb_error_new(BB_ERR_INTERNAL, "echo: no envelope or no timeout");
        return -1;
    }
    cJSON *request = cJSON_ParseWithLength(envelope, len);
    const cJSON *inputs_json = cJSON_GetObjectItemCaseSensitive(request, "inputs_json");
    cJSON *inputs = cJSON_IsString(inputs_json) ? cJSON_Parse(inputs_json->valuestring) : NULL;
    if (!inputs) {
        cJSON_Delete(request);
        *err = bb_error_new(BB_ERR_INTERNAL, "echo: the core sent an envelope without inputs_json");
        return -1;
    }
    const cJSON *control = cJSON_GetObjectItemCaseSensitive(inputs, "__echo");
    const char *cmd = cJSON_IsString(control) ? control->valuestring : "";
    int rc;
    char extra[256] = "";
    if (strcmp(cmd, "block_error") == 0) {
        rc = block_error(reply, "ValueError", err);
    } else if (strncmp(cmd, "error:", 6) == 0) {
        rc = block_error(reply, cmd + 6, err);
    } else if (strncmp(cmd, "fail:", 5) == 0) {
        *err = bb_error_new(kind_from_name(cmd + 5), "echo: run failed (%s)", cmd + 5);
        rc = -1;
    } else if (strncmp(cmd, "hostile:", 8) == 0) {
        rc = hostile_body(cmd + 8, reply, err);
    } else if (strncmp(cmd, "outputs:", 8) == 0) {
        rc = echo_answer(b, calls, inputs, request, NULL, cmd + 8, 0, reply, err);
    } else {
        if (strncmp(cmd, "sleep:", 6) == 0) {
            long ms = atol(cmd + 6);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        } else if (strncmp(cmd, "env:", 4) == 0) {
            const char *v = getenv(cmd + 4);
            snprintf(extra, sizeof extra, "%s=%s\n", cmd + 4, v ? v : "(unset)");
        } else if (strncmp(cmd, "stdout:", 7) == 0) {
            snprintf(extra, sizeof extra, "%s", cmd + 7);
        }
        rc = echo_answer(b, calls, inputs, request, extra, NULL, strcmp(cmd, "denied") == 0, reply,
                         err);
    }
    cJSON_Delete(inputs);
    cJSON_Delete(request);
    return rc;
}

static void echo_unload(void *driver_state, void *block_state)
{
    (void)driver_state;
    echo_block *b = block_state;
    if (!b)
        return;
    free(b->code_hash);
    free(b->function);
    free(b);
}

static char *echo_describe(void *driver_state)
{
    echo_state *st = driver_state;
    char *text = NULL;
    if (asprintf(&text, "{\"driver\": \"%s\", \"calls\": %ld, \"level\": %ld}", ECHO_NAME,
                 atomic_load(&st->calls), st->level) < 0)
        return NULL;
    return text;
}

static void echo_close(void *driver_state) { free(driver_state); }

#ifdef ECHO_ABI_1
/* The ABI 1 struct, as blockbox <= 0.8 declared it: no struct_size, nothing after close. */
struct echo_driver_v1 {
    unsigned abi_version;
    const char *name;
    const char *summary;
    int (*open)(const bb_config *, void **, bb_error **);
    int (*load)(void *, const bb_block_info *, void **, bb_error **);
    int (*run)(void *, void *, const bb_call *, bb_reply *, bb_error **);
    void (*unload)(void *, void *);
    char *(*describe)(void *);
    void (*close)(void *);
};
static const struct echo_driver_v1 echo_v1 = {
    1, ECHO_NAME, "test driver: echoes the inputs back (ABI 1)", echo_open, echo_load, echo_run,
    echo_unload, echo_describe, echo_close,
};
#define ECHO_ABI_NEEDED 1u
#elif !defined ECHO_NO_SETTINGS
static const bb_setting echo_settings[] = {
    {"echo_level", "BB_TEST_ECHO_LEVEL", BB_SETTING_LONG, "1", 1, 10, 0, "test driver: a level from 1 to 10"},
};
#define ECHO_ABI_NEEDED 2u
#else
#define ECHO_ABI_NEEDED 2u
#endif

static const bb_driver echo_driver = {
#ifdef ECHO_BAD_ABI
    .abi_version = 999,
    .struct_size = BB_DRIVER_SIZE,
#else
    BB_DRIVER_HEAD,
#endif
#ifdef ECHO_DUPLICATE
    .name = "LOCAL",
#else
    .name = ECHO_NAME,
#endif
    .summary = "test driver: echoes the inputs back (tests only)",
    .open = echo_open,
    .load = echo_load,
    .run = echo_run,
    .unload = echo_unload,
    .describe = echo_describe,
    .close = echo_close,
#if !defined ECHO_ABI_1 && !defined ECHO_NO_SETTINGS
    .settings = echo_settings,
    .n_settings = sizeof echo_settings / sizeof echo_settings[0],
#endif
};

#ifdef ECHO_SMALL_STRUCT
/* A driver built against a struct that ended before `settings`: what follows its
 * struct_size is not its own (poisoned here, so a core that read it would fail). */
static union {
    bb_driver d;
    unsigned char raw[sizeof(bb_driver)];
} echo_small;
#endif

#ifdef ECHO_NO_ENTRY
/* Exported under another name: the registry must not find an entry point. */
__attribute__((visibility("default"))) int blockbox_driver_entry_misspelt(bb_registry *reg,
                                                                           unsigned abi_version,
                                                                           bb_error **err)
#else
__attribute__((visibility("default"))) int blockbox_driver_entry(bb_registry *reg,
                                                                  unsigned abi_version,
                                                                  bb_error **err)
#endif
{
#ifdef ECHO_ENTRY_FAILS
    (void)reg;
    (void)abi_version;
    *err = bb_error_new(BB_ERR_CONFIGURATION, "%s: refusing to register on purpose", echo_driver.name);
    return -1;
#else
    /* driver.h rule 5: refuse only a library older than the ABI this driver needs */
    if (abi_version < ECHO_ABI_NEEDED) {
        *err = bb_error_new(BB_ERR_CONFIGURATION, "echo: needs ABI %u, loaded by %u", ECHO_ABI_NEEDED,
                            abi_version);
        return -1;
    }
#if defined ECHO_ABI_1
    (void)echo_driver;
    return bb_registry_add(reg, (const bb_driver *)(const void *)&echo_v1, err);
#elif defined ECHO_SMALL_STRUCT
    memcpy(echo_small.raw, &echo_driver, sizeof echo_driver);
    size_t size = offsetof(bb_driver, settings);
    memset(echo_small.raw + size, 0xa5, sizeof echo_small.raw - size);
    echo_small.d.struct_size = size;
    return bb_registry_add(reg, &echo_small.d, err);
#else
    return bb_registry_add(reg, &echo_driver, err);
#endif
#endif
}
