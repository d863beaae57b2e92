/* test_wire.c: Check tests of the serializer's envelopes: precheck, code and name
 * checks, the md5 code hash, request building, base64 and image values. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "blockbox.h"
#include "wire.h"
#include "wire_test_util.h"
#include "check_main.h"

static int precheck(const char *text, size_t len, bb_error **err)
{
    return bb_wire_precheck(text, len, 1000, 8, 1000000, BB_ERR_INVALID_REQUEST, "inputs", err);
}

/* ---- limits ------------------------------------------------------------------------ */

START_TEST(test_limit_defaults)
{
    bb_limits l = limits();
    ck_assert_uint_eq(l.max_input_bytes, 64u << 20);
    ck_assert_uint_eq(l.max_code_bytes, 1u << 20);
    ck_assert_uint_eq(l.max_result_bytes, 64u << 20);
    ck_assert_uint_eq(l.max_stream_bytes, 1u << 20);
    ck_assert_int_eq(l.max_depth, 64);
    size_t max = bb_limits_max_response(&l);
    ck_assert_uint_ge(max, 2 * l.max_result_bytes + 2 * l.max_stream_bytes);
    ck_assert_uint_le(max, 4 * l.max_result_bytes); /* a bound, not a blank cheque */
    l.max_result_bytes = (size_t)-1;
    ck_assert_uint_eq(bb_limits_max_response(&l), (size_t)-1); /* saturates, no wrap */
}
END_TEST

/* ---- precheck ------------------------------------------------------------------------ */

START_TEST(test_precheck_accepts_plain_json)
{
    bb_error *err = NULL;
    const char *text = "{\"a\": [1, 2, {\"b\": \"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00 \xf0\x9f\x98\x80\"}], "
                       "\"q\": \"\\\"[{\\\\\"}";
    expect_ok(precheck(text, strlen(text), &err), err);
}
END_TEST

START_TEST(test_precheck_size)
{
    bb_error *err = NULL;
    char text[1200];
    memset(text, ' ', sizeof text);
    text[0] = '1';
    expect_error(precheck(text, sizeof text, &err), err, BB_ERR_INVALID_REQUEST,
                 "inputs: 1200 bytes, over the limit of 1000");
    expect_ok(precheck(text, 1000, &err), err);
}
END_TEST

START_TEST(test_precheck_depth)
{
    bb_error *err = NULL;
    /* 8 levels pass, 9 fail, and brackets inside strings do not count */
    expect_ok(precheck("[[[[{\"a\":[[[\"[[[[[[\"]]]}]]]]", 28, &err), err);
    const char *deep = "[[[[{\"a\":[[[[]]]]}]]]]";
    expect_error(precheck(deep, strlen(deep), &err), err, BB_ERR_INVALID_REQUEST,
                 "nested deeper than 8 levels");
    expect_error(precheck("[]]", 3, &err), err, BB_ERR_INVALID_REQUEST, "unbalanced");
}
END_TEST

START_TEST(test_precheck_nul)
{
    bb_error *err = NULL;
    expect_error(precheck("{\"a\": \"x\0y\"}", 12, &err), err, BB_ERR_INVALID_REQUEST, "NUL byte");
    expect_error(precheck("{\"a\": 1}\0", 9, &err), err, BB_ERR_INVALID_REQUEST, "NUL byte at byte 8");
    /* an escaped NUL would cut the C view of the string short of Python's */
    const char *escaped = "{\"a\": \"x\\u0000y\"}";
    expect_error(precheck(escaped, strlen(escaped), &err), err, BB_ERR_INVALID_REQUEST, "\\u0000");
}
END_TEST

START_TEST(test_precheck_utf8)
{
    bb_error *err = NULL;
    static const char *const bad[] = {
        "\"\xff\"",             /* never valid */
        "\"\xc0\xaf\"",         /* overlong '/' */
        "\"\xe0\x80\xaf\"",     /* overlong 3-byte */
        "\"\xf0\x80\x80\xaf\"", /* overlong 4-byte */
        "\"\xed\xa0\x80\"",     /* UTF-16 surrogate D800 encoded */
        "\"\xed\xbf\xbf\"",     /* surrogate DFFF */
        "\"\xf4\x90\x80\x80\"", /* past U+10FFFF */
        "\"\xe2\x82\"",         /* truncated */
        "\"\x80\"",             /* lone continuation */
        "[1, \xc3]",            /* outside a string too */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(precheck(bad[i], strlen(bad[i]), &err), err, BB_ERR_INVALID_REQUEST, "invalid UTF-8");
    const char *good = "\"\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbd \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf\"";
    expect_ok(precheck(good, strlen(good), &err), err);
}
END_TEST

/* precheck as a refusal table walks it: the whole text, the limits precheck sets itself. */
static int precheck_text(const char *text, const bb_limits *l, bb_wire_response *r, bb_error **err)
{
    return precheck(text, strlen(text), err);
}

START_TEST(test_precheck_escapes)
{
    static const refusal bad[] = {
        {"\"\\ud800\"", "unpaired surrogate"},
        {"\"\\udc00\"", "unpaired surrogate"},
        {"\"\\ud800\\u0041\"", "unpaired surrogate"},
        {"\"\\x41\"", "invalid escape"},
        {"\"\\u12\"", "invalid escape"},
        {"\"\\", "escape cut off"},
        {"\"abc", "never ends"},
        {"\"a\tb\"", "control character"},
        {"\"a\nb\"", "control character"},
    };
    expect_refusals(bad, BB_CHECK_COUNT(bad), BB_ERR_INVALID_REQUEST, precheck_text, NULL);
}
END_TEST

START_TEST(test_precheck_kind_and_name)
{
    bb_error *err = NULL;
    expect_error(bb_wire_precheck("\"\xff\"", 3, 100, 4, 1000000, BB_ERR_INVALID_RESPONSE, "response", &err), err,
                 BB_ERR_INVALID_RESPONSE, "response: invalid UTF-8 at byte 1");
    expect_error(bb_wire_precheck(NULL, 0, 100, 4, 1000000, BB_ERR_INVALID_REQUEST, "inputs", &err), err,
                 BB_ERR_INVALID_REQUEST, "missing");
}
END_TEST

/* The inputs check refuses a text of len bytes, of which only the first readable (a copy
 * of prefix) can be read at all, with a message naming needle: the check's work is
 * bounded by what it may read (fenced_text), not by a clock. */
static void inputs_refused_reading(const char *prefix, size_t readable, size_t len, const char *needle)
{
    bb_limits l = limits();
    bb_error *err = NULL;
    fenced_text text = fenced_text_new(prefix, readable, len);
    expect_error(bb_wire_check_inputs(text.text, len, &l, &err), err, BB_ERR_INVALID_REQUEST, needle);
    fenced_text_free(&text);
}

/* The attack: 100k nested arrays would blow cJSON's recursive parser's stack or cost
 * a long time; the iterative precheck refuses them at the 64th '[' (the 65th level,
 * counting the object), reading nothing after it (63 readable '[' crash the test). */
START_TEST(test_precheck_100k_nesting_fast)
{
    size_t n = 100000;
    size_t len = 6 + 2 * n + 1;
    char prefix[6 + 64];
    memcpy(prefix, "{\"a\": ", 6);
    memset(prefix + 6, '[', 64);
    inputs_refused_reading(prefix, sizeof prefix, len, "nested deeper than 64 levels");
}
END_TEST

/* The attack: an input of 80 MB (over the 64 MiB limit) must be refused without
 * being scanned or copied: not one of its bytes is read. */
START_TEST(test_precheck_oversize_fast)
{
    inputs_refused_reading("", 0, (size_t)80 << 20, "over the limit of 67108864 bytes");
}
END_TEST

/* ---- code, imports, identifiers ------------------------------------------------------------ */

START_TEST(test_check_code)
{
    bb_limits l = limits();
    bb_error *err = NULL;
    expect_ok(bb_wire_check_code("def run(self):\n    return {'x': 'caf\xc3\xa9'}\n", "code", &l, &err), err);
    expect_error(bb_wire_check_code("def run(self):\n    return {'x': '\xff\xfe'}\n", "run_function_code",
                                    &l, &err),
                 err, BB_ERR_INVALID_REQUEST, "run_function_code: invalid UTF-8 at byte 33 (line 2)");
    expect_error(bb_wire_check_code("x = '\xed\xa0\x80'", "code", &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "invalid UTF-8");
    expect_error(bb_wire_check_code(NULL, "init_function_code", &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "init_function_code: missing");
    l.max_code_bytes = 10;
    expect_ok(bb_wire_check_code("0123456789", "code", &l, &err), err);
    expect_error(bb_wire_check_code("0123456789a", "code", &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "code: over the limit of 10 bytes");
}
END_TEST

START_TEST(test_check_identifier)
{
    bb_error *err = NULL;
    char longest[130];
    memset(longest, 'a', 128);
    longest[128] = '\0';
    static const char *const good[] = {"run", "_x1", "Run_2", "_"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        expect_ok(bb_wire_check_identifier(good[i], "run_function_name", &err), err);
    expect_ok(bb_wire_check_identifier(longest, "run_function_name", &err), err);
    longest[128] = 'a';
    longest[129] = '\0';
    expect_error(bb_wire_check_identifier(longest, "run_function_name", &err), err, BB_ERR_INVALID_REQUEST,
                 "longer than 128");
    expect_error(bb_wire_check_identifier("", "run_function_name", &err), err, BB_ERR_INVALID_REQUEST,
                 "run_function_name: empty");
    expect_error(bb_wire_check_identifier(NULL, "f", &err), err, BB_ERR_INVALID_REQUEST, "empty");
    expect_error(bb_wire_check_identifier("1run", "f", &err), err, BB_ERR_INVALID_REQUEST, "digit");
    static const char *const bad[] = {"a-b", "a b", "caf\xc3\xa9", "run()", "os.system", "a\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(bb_wire_check_identifier(bad[i], "init_function_name", &err), err,
                     BB_ERR_INVALID_REQUEST, "init_function_name: not a Python identifier");
}
END_TEST

START_TEST(test_check_import)
{
    bb_error *err = NULL;
    expect_ok(bb_wire_check_import("import math", &err), err);
    expect_ok(bb_wire_check_import("from os import path as p\t# caf\xc3\xa9", &err), err);
    /* the attack: smuggling a second statement line past "one import per line" */
    expect_error(bb_wire_check_import("import os\nos.system('x')", &err), err, BB_ERR_INVALID_REQUEST,
                 "line break");
    expect_error(bb_wire_check_import("import os\rimport sys", &err), err, BB_ERR_INVALID_REQUEST,
                 "line break");
    expect_error(bb_wire_check_import("import os\xe2\x80\xa8x", &err), err, BB_ERR_INVALID_REQUEST,
                 "control character");
    expect_error(bb_wire_check_import("import os\x0cx", &err), err, BB_ERR_INVALID_REQUEST,
                 "control character");
    expect_error(bb_wire_check_import("import \xff", &err), err, BB_ERR_INVALID_REQUEST, "invalid UTF-8");
    expect_error(bb_wire_check_import(NULL, &err), err, BB_ERR_INVALID_REQUEST, "missing");
    char line[4100];
    memset(line, 'a', 4096);
    line[4096] = '\0';
    expect_ok(bb_wire_check_import(line, &err), err);
    line[4096] = 'a';
    line[4097] = '\0';
    expect_error(bb_wire_check_import(line, &err), err, BB_ERR_INVALID_REQUEST, "over 4096 bytes");
}
END_TEST

/* ---- md5 code hash (expected values from /usr/bin/python3 hashlib) --------------------------- */

START_TEST(test_code_hash)
{
    char hash[33];
    bb_wire_code_hash("def run(self):\n    return {}\n", NULL, 0, hash);
    ck_assert_str_eq(hash, "e171515ecc8bb2f32bbcca50dcfc09a0");
    const char *imports[] = {"import math", "from os import path"};
    bb_wire_code_hash("def run(self, a):\n    return {\"b\": a}\n", imports, 2, hash);
    ck_assert_str_eq(hash, "16a38014466cd727c44e5c8782e173ad");
    bb_wire_code_hash("", NULL, 0, hash);
    ck_assert_str_eq(hash, "68b329da9893e34099c7d8ad5cb9c940");
    const char *one[] = {"import json"};
    bb_wire_code_hash("x = \"\xc3\xa9\"", one, 1, hash);
    ck_assert_str_eq(hash, "0b1f073d418b19fbf010cc4d93fa9aff");
}
END_TEST

/* ---- requests ---------------------------------------------------------------------------------- */

static cJSON *build(const bb_wire_block *block, int with_code, const char *inputs, const char *context)
{
    bb_buf out = {0};
    bb_error *err = NULL;
    int rc = bb_wire_build_request(block, with_code, inputs, inputs ? strlen(inputs) : 0, context, &out,
                                   &err);
    expect_ok(rc, err);
    cJSON *tree = cJSON_ParseWithLength(out.data, out.len);
    ck_assert_msg(tree != NULL, "request is not JSON: %.200s", out.data);
    bb_buf_free(&out);
    return tree;
}

static const char *string_of(const cJSON *tree, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(tree, key);
    ck_assert_msg(cJSON_IsString(item), "'%s' is not a string", key);
    return item->valuestring;
}

static int key_count(const cJSON *tree)
{
    int n = 0;
    for (const cJSON *c = tree->child; c; c = c->next)
        n++;
    return n;
}

static const char *const test_imports[] = {"import math", "from os import path"};
static const bb_wire_block full_block = {.info = {
    .run_code = "def run(self, a):\n    return {\"b\": a}\n",
    .run_function_name = "run",
    .init_code = "def init():\n    return {'k': \"\\\\\"}\n",
    .init_function_name = "setup",
    .imports = test_imports,
    .n_imports = 2,
}};

START_TEST(test_request_full)
{
    const char *inputs = "{\"a\": \"quote \\\" backslash \\\\ caf\xc3\xa9 \\n\", \"b\": [1, 2.5, null]}";
    const char *context = "{\"workflow_execution_id\": \"exec-42\", \"step_name\": \"custom\"}";
    cJSON *tree = build(&full_block, 1, inputs, context);
    ck_assert_str_eq(string_of(tree, "code_hash"), "16a38014466cd727c44e5c8782e173ad");
    ck_assert_str_eq(string_of(tree, "run_function_name"), "run");
    ck_assert_str_eq(string_of(tree, "code_str"), full_block.info.run_code);
    const cJSON *imports = cJSON_GetObjectItemCaseSensitive(tree, "imports");
    ck_assert(cJSON_IsArray(imports));
    ck_assert_int_eq(cJSON_GetArraySize(imports), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(imports, 0)->valuestring, "import math");
    ck_assert_str_eq(cJSON_GetArrayItem(imports, 1)->valuestring, "from os import path");
    ck_assert_str_eq(string_of(tree, "init_function_code"), full_block.info.init_code);
    ck_assert_str_eq(string_of(tree, "init_function_name"), "setup");
    ck_assert_str_eq(string_of(tree, "inputs_json"), inputs); /* a string, byte for byte */
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(tree, "workflow_context");
    ck_assert(cJSON_IsObject(ctx));
    ck_assert_str_eq(string_of(ctx, "workflow_execution_id"), "exec-42");
    ck_assert_str_eq(string_of(ctx, "step_name"), "custom");
    ck_assert_str_eq(string_of(tree, "runtime_version"), BLOCKBOX_RUNTIME_VERSION);
    ck_assert_int_eq(key_count(tree), 9);
    cJSON_Delete(tree);
}
END_TEST

START_TEST(test_request_hash_only_and_load_only)
{
    cJSON *tree = build(&full_block, 0, "{}", NULL);
    ck_assert_str_eq(string_of(tree, "code_hash"), "16a38014466cd727c44e5c8782e173ad");
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(tree, "code_str"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(tree, "imports"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(tree, "init_function_code"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(tree, "init_function_name"));
    ck_assert_str_eq(string_of(tree, "inputs_json"), "{}");
    ck_assert_int_eq(key_count(cJSON_GetObjectItemCaseSensitive(tree, "workflow_context")), 0);
    ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(tree, "workflow_context")));
    ck_assert_int_eq(key_count(tree), 5);
    cJSON_Delete(tree);

    tree = build(&full_block, 1, NULL, NULL); /* load-only: compile and init */
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(tree, "inputs_json"));
    ck_assert_str_eq(string_of(tree, "code_str"), full_block.info.run_code);
    ck_assert_int_eq(key_count(tree), 8);
    cJSON_Delete(tree);
}
END_TEST

START_TEST(test_request_defaults_and_given_hash)
{
    bb_wire_block block = {.info.run_code = "def run(self):\n    return {}\n"};
    cJSON *tree = build(&block, 1, "{}", NULL);
    ck_assert_str_eq(string_of(tree, "code_hash"), "e171515ecc8bb2f32bbcca50dcfc09a0");
    ck_assert_str_eq(string_of(tree, "run_function_name"), "run");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tree, "imports")), 0);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(tree, "init_function_code"));
    cJSON_Delete(tree);
    block.info.code_hash = "0123456789abcdef0123456789abcdef";
    tree = build(&block, 0, "{}", NULL);
    ck_assert_str_eq(string_of(tree, "code_hash"), "0123456789abcdef0123456789abcdef");
    cJSON_Delete(tree);
}
END_TEST

START_TEST(test_request_refusals)
{
    bb_buf out = {0};
    bb_error *err = NULL;
    bb_wire_block block = {.info.run_code = "def run(self):\n    return {}\n"};
    /* the attack: a context that closes the object and adds envelope keys */
    expect_error(bb_wire_build_request(&block, 0, "{}", 2, "{}, \"code_str\": \"evil\"", &out, &err), err,
                 BB_ERR_INVALID_REQUEST, "workflow_context");
    expect_error(bb_wire_build_request(&block, 0, "{}", 2, "{\"a\": \"}\"}, \"x\": {}", &out, &err), err,
                 BB_ERR_INVALID_REQUEST, "workflow_context");
    expect_error(bb_wire_build_request(&block, 0, "{}", 2, "[1]", &out, &err), err, BB_ERR_INVALID_REQUEST,
                 "workflow_context");
    expect_error(bb_wire_build_request(&block, 0, "{}", 2, "{\"a\": 1", &out, &err), err,
                 BB_ERR_INVALID_REQUEST, "workflow_context");
    block.info.code_hash = "0123456789ABCDEF0123456789abcdef";
    expect_error(bb_wire_build_request(&block, 0, "{}", 2, NULL, &out, &err), err, BB_ERR_INVALID_REQUEST,
                 "code_hash");
    block.info.code_hash = "\"}, \"code_str\": \"x";
    expect_error(bb_wire_build_request(&block, 0, "{}", 2, NULL, &out, &err), err, BB_ERR_INVALID_REQUEST,
                 "code_hash");
    block.info.code_hash = NULL;
    block.info.run_function_name = "run\", \"x\": \"";
    expect_error(bb_wire_build_request(&block, 0, "{}", 2, NULL, &out, &err), err, BB_ERR_INVALID_REQUEST,
                 "run_function_name");
    block.info.run_function_name = NULL;
    block.info.run_code = NULL;
    expect_error(bb_wire_build_request(&block, 0, "{}", 2, NULL, &out, &err), err, BB_ERR_INVALID_REQUEST,
                 "no run code");
    bb_buf_free(&out);
}
END_TEST

/* Inputs of tens of MB are escaped straight into the buffer and come back intact. */
START_TEST(test_request_big_inputs)
{
    size_t n = (size_t)16 << 20;
    char *inputs = malloc(n + 16);
    ck_assert_ptr_nonnull(inputs);
    strcpy(inputs, "{\"s\": \"");
    memset(inputs + 7, 'a', n);
    for (size_t i = 7; i < n; i += 4096)
        inputs[i] = "\"\\\n\x01"[(i / 4096) % 4]; /* characters that need escaping */
    strcpy(inputs + 7 + n, "\"}");
    size_t len = strlen(inputs);
    bb_buf out = {0};
    bb_error *err = NULL;
    /* no clock here: a quadratic escape of 16 MB would overrun the suite's timeout by far */
    expect_ok(bb_wire_build_request(&full_block, 0, inputs, len, NULL, &out, &err), err);
    cJSON *tree = cJSON_ParseWithLength(out.data, out.len);
    ck_assert_ptr_nonnull(tree);
    const char *back = string_of(tree, "inputs_json");
    ck_assert_uint_eq(strlen(back), len);
    ck_assert(memcmp(back, inputs, len) == 0);
    cJSON_Delete(tree);
    bb_buf_free(&out);
    free(inputs);
}
END_TEST

/* ---- base64 ---------------------------------------------------------------------------------------- */

START_TEST(test_base64_vectors)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        bb_buf out = {0};
        ck_assert_int_eq(bb_base64_encode((const unsigned char *)plain[i], strlen(plain[i]), &out), 0);
        ck_assert_str_eq(out.data, coded[i]);
        bb_buf_free(&out);
        unsigned char *back = NULL;
        size_t back_len = 99;
        ck_assert_int_eq(bb_base64_decode(coded[i], strlen(coded[i]), &back, &back_len), 0);
        ck_assert_uint_eq(back_len, strlen(plain[i]));
        ck_assert(memcmp(back, plain[i], back_len) == 0);
        free(back);
        ck_assert_int_eq(bb_base64_check(coded[i], strlen(coded[i])), (long long)strlen(plain[i]));
    }
}
END_TEST

START_TEST(test_base64_round_trip_all_bytes)
{
    unsigned char data[1000];
    unsigned int seed = 12345;
    for (size_t i = 0; i < sizeof data; i++) {
        seed = seed * 1103515245u + 12345u;
        data[i] = (unsigned char)(seed >> 16);
    }
    for (size_t len = 0; len <= sizeof data; len += (len < 20 ? 1 : 37)) {
        bb_buf out = {0};
        ck_assert_int_eq(bb_base64_encode(data, len, &out), 0);
        ck_assert_uint_eq(out.len, (len + 2) / 3 * 4);
        unsigned char *back = NULL;
        size_t back_len = 0;
        ck_assert_int_eq(bb_base64_decode(out.data, out.len, &back, &back_len), 0);
        ck_assert_uint_eq(back_len, len);
        ck_assert(len == 0 || memcmp(back, data, len) == 0);
        free(back);
        bb_buf_free(&out);
    }
}
END_TEST

/* Decided and documented: only the canonical encoding is valid — no whitespace, no
 * URL-safe alphabet, no missing or inner padding, no stray bits in the last symbol. */
START_TEST(test_base64_rejections)
{
    static const char *const bad[] = {
        "Zg=",       /* length not a multiple of 4 */
        "Zg",        /* padding missing */
        "Z===",      /* too much padding */
        "====",      /* padding only */
        "Zg==Zm9v",  /* padding in the middle */
        "Zm9v\n",    /* trailing newline */
        "Zm9v Zm9v", /* whitespace */
        "Zm9\tv",    /* tab */
        "Zm9-",      /* URL-safe alphabet */
        "Zm9_",      /* URL-safe alphabet */
        "Zh==",      /* non-zero padding bits: not canonical */
        "Zm9=",      /* non-zero padding bits */
        "Zm=v",      /* '=' before data */
        "Zm9\xc3",   /* non-ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(bb_base64_check(bad[i], strlen(bad[i])) == -1, "accepted \"%s\"", bad[i]);
        unsigned char *back = (unsigned char *)"x";
        size_t back_len = 7;
        ck_assert_int_eq(bb_base64_decode(bad[i], strlen(bad[i]), &back, &back_len), -1);
        ck_assert_ptr_null(back);
        ck_assert_uint_eq(back_len, 0);
    }
    ck_assert_int_eq(bb_base64_check("Zm9v\0Zm9", 8), -1); /* embedded NUL */
    ck_assert_int_eq(bb_base64_check(NULL, 0), -1);
}
END_TEST

/* ---- image values ----------------------------------------------------------------------------------- */

START_TEST(test_image_value)
{
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H'};
    bb_buf out = {0};
    ck_assert_int_eq(bb_json_image_value(png, sizeof png, &out), 0);
    cJSON *tree = cJSON_ParseWithLength(out.data, out.len);
    ck_assert_ptr_nonnull(tree);
    ck_assert_str_eq(string_of(tree, "_type"), "workflow_image");
    ck_assert_str_eq(string_of(tree, "type"), "base64");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(tree, "video_metadata")));
    const char *value = string_of(tree, "value");
    unsigned char *back = NULL;
    size_t back_len = 0;
    ck_assert_int_eq(bb_base64_decode(value, strlen(value), &back, &back_len), 0);
    ck_assert_uint_eq(back_len, sizeof png);
    ck_assert(memcmp(back, png, sizeof png) == 0);
    free(back);
    bb_limits l = limits();
    bb_error *err = NULL;
    expect_ok(bb_wire_check_values(tree, &l, BB_ERR_INVALID_REQUEST, "inputs", &err), err);
    cJSON_Delete(tree);

    /* as an input: the value passes the inputs check, and a non-image does not */
    bb_buf inputs = {0};
    bb_buf_puts(&inputs, "{\"image\": ");
    bb_json_image_value(png, sizeof png, &inputs);
    bb_buf_puts(&inputs, "}");
    expect_ok(bb_wire_check_inputs(inputs.data, inputs.len, &l, &err), err);
    bb_buf_free(&inputs);
    bb_buf_puts(&inputs, "{\"image\": ");
    bb_json_image_value((const unsigned char *)"#!/bin/sh\n", 10, &inputs);
    bb_buf_puts(&inputs, "}");
    expect_error(bb_wire_check_inputs(inputs.data, inputs.len, &l, &err), err, BB_ERR_INVALID_REQUEST,
                 "inputs: 'image': workflow_image 'value' is not a JPEG or PNG image");
    bb_buf_free(&inputs);
    bb_buf_free(&out);
}
END_TEST

/* The bulk (16-byte) scans must find a bad byte at every offset of a long string,
 * and the byte-wise tail must too. */
START_TEST(test_bulk_scans_find_every_offset)
{
    enum { N = 100 };
    char text[N + 16];
    static const char bad_in_string[] = {'\x01', '\x1f', '\xff', '\x80'};
    for (size_t b = 0; b < sizeof bad_in_string; b++) {
        for (size_t at = 0; at < N; at++) {
            text[0] = '"';
            memset(text + 1, 'a', N);
            text[1 + at] = bad_in_string[b];
            text[N + 1] = '"';
            bb_error *err = NULL;
            ck_assert_msg(bb_wire_precheck(text, N + 2, 1 << 20, 8, 1000000, BB_ERR_INVALID_REQUEST, "t", &err) < 0,
                          "byte 0x%02x at %zu passed", (unsigned char)bad_in_string[b], at);
            bb_error_free(err);
        }
    }
    /* a quote inside ends the string early: what follows must then be valid JSON */
    memset(text, 'a', sizeof text);
    text[0] = '"';
    text[40] = '"';
    text[41] = '"';
    bb_error *err = NULL;
    ck_assert_int_lt(bb_wire_precheck(text, 42, 1 << 20, 8, 1000000, BB_ERR_INVALID_REQUEST, "t", &err), 0);
    bb_error_free(err);
    char b64[N];
    for (size_t at = 0; at < N - 4; at++) {
        memset(b64, 'A', sizeof b64);
        b64[at] = at % 2 ? '=' : '-';
        ck_assert_msg(bb_base64_check(b64, sizeof b64) < 0, "base64 with a bad byte at %zu passed", at);
        b64[at] = at % 3 == 0 ? '+' : (at % 3 == 1 ? '/' : 'z');
        ck_assert_int_eq(bb_base64_check(b64, sizeof b64), N / 4 * 3);
    }
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_TEST("envelopes", test_bulk_scans_find_every_offset),
        BB_CHECK_TEST("envelopes", test_limit_defaults),
        BB_CHECK_TEST("envelopes", test_precheck_accepts_plain_json),
        BB_CHECK_TEST("envelopes", test_precheck_size),
        BB_CHECK_TEST("envelopes", test_precheck_depth),
        BB_CHECK_TEST("envelopes", test_precheck_nul),
        BB_CHECK_TEST("envelopes", test_precheck_utf8),
        BB_CHECK_TEST("envelopes", test_precheck_escapes),
        BB_CHECK_TEST("envelopes", test_precheck_kind_and_name),
        BB_CHECK_TEST("envelopes", test_precheck_100k_nesting_fast),
        BB_CHECK_TEST("envelopes", test_precheck_oversize_fast),
        BB_CHECK_TEST("envelopes", test_check_code),
        BB_CHECK_TEST("envelopes", test_check_identifier),
        BB_CHECK_TEST("envelopes", test_check_import),
        BB_CHECK_TEST("envelopes", test_code_hash),
        BB_CHECK_TEST("envelopes", test_request_full),
        BB_CHECK_TEST("envelopes", test_request_hash_only_and_load_only),
        BB_CHECK_TEST("envelopes", test_request_defaults_and_given_hash),
        BB_CHECK_TEST("envelopes", test_request_refusals),
        BB_CHECK_TEST("envelopes", test_request_big_inputs),
        BB_CHECK_TEST("envelopes", test_base64_vectors),
        BB_CHECK_TEST("envelopes", test_base64_round_trip_all_bytes),
        BB_CHECK_TEST("envelopes", test_base64_rejections),
        BB_CHECK_TEST("envelopes", test_image_value),
    };
    return bb_check_run("wire", 60, rows, BB_CHECK_COUNT(rows));
}
