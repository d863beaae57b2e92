/* wire_test_util.h: small helpers shared by the serializer's Check tests: the default
 * limits, parsing a reply text, asserting a call failed with the expected error, and
 * walking a table of texts that must each be refused. */
#ifndef WIRE_TEST_UTIL_H
#define WIRE_TEST_UTIL_H

#include <check.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "wire.h"

/* rc must be -1 and err must be of kind with a message containing needle. */
#define expect_error(rc, err, want_kind, needle)                                                   \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        ck_assert_int_eq(rc_, -1);                                                                 \
        ck_assert_ptr_nonnull(err);                                                                \
        ck_assert_msg(bb_error_get_kind(err) == (want_kind), "kind %s, wanted %s: %s",             \
                      bb_error_kind_name(bb_error_get_kind(err)), bb_error_kind_name(want_kind),   \
                      bb_error_message(err));                                                      \
        ck_assert_msg(strstr(bb_error_message(err), (needle)) != NULL,                             \
                      "message \"%s\" lacks \"%s\"", bb_error_message(err), (needle));             \
        bb_error_free(err);                                                                        \
        (err) = NULL;                                                                              \
    } while (0)

#define expect_ok(rc, err)                                                                         \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        ck_assert_msg(rc_ == 0 && (err) == NULL, "unexpected failure: %s",                         \
                      (err) ? bb_error_message(err) : "(no error set)");                           \
    } while (0)

/* parse_text of text (limits l, into r) must succeed; r is then the caller's to clear. */
#define parse_ok(text, l, r)                                                                       \
    do {                                                                                           \
        bb_error *parse_err_ = NULL;                                                               \
        expect_ok(parse_text((text), (l), (r), &parse_err_), parse_err_);                          \
    } while (0)

/* parse_text of text must fail with an error of want_kind whose message contains needle. */
#define parse_refused(text, l, r, want_kind, needle)                                               \
    do {                                                                                           \
        bb_error *parse_err_ = NULL;                                                               \
        expect_error(parse_text((text), (l), (r), &parse_err_), parse_err_, (want_kind), (needle)); \
    } while (0)

/* The default limits, as a value. */
static inline bb_limits limits(void)
{
    bb_limits l;
    bb_limits_default(&l);
    return l;
}

/* A text of len bytes whose first readable bytes are (a copy of) prefix and whose other
 * len - readable bytes lie on pages mapped PROT_NONE: a call that reads past byte
 * readable dies of SIGSEGV, which Check reports as a failed test. So a test asserts
 * how much of a text a check reads (a bound on work done) instead of timing it. */
typedef struct {
    char *text;
    char *map;
    size_t map_len;
} fenced_text;

static inline fenced_text fenced_text_new(const char *prefix, size_t readable, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t head = (readable + page - 1) / page * page;
    if (head == 0)
        head = page;
    size_t tail = (len - readable + page - 1) / page * page;
    fenced_text f = {.map_len = head + tail};
    f.map = mmap(NULL, f.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(f.map != MAP_FAILED);
    ck_assert_int_eq(mprotect(f.map + head, tail, PROT_NONE), 0);
    f.text = f.map + head - readable; /* the readable prefix ends where the fence begins */
    memcpy(f.text, prefix, readable);
    return f;
}

static inline void fenced_text_free(fenced_text *f)
{
    munmap(f->map, f->map_len);
}

/* Parses a whole reply text. */
static inline int parse_text(const char *text, const bb_limits *l, bb_wire_response *r, bb_error **err)
{
    return bb_wire_parse_response(text, strlen(text), l, r, err);
}

/* A row of a refusal table: a text and words its error message must contain. */
typedef struct refusal {
    const char *text, *needle;
} refusal;

/* The call a refusal table is walked through (parse_text's form; a check that fills no
 * response leaves r alone). */
typedef int (*wire_text_check)(const char *text, const bb_limits *l, bb_wire_response *r, bb_error **err);

/* Each row's text, through check with the default limits, must fail with an error of
 * kind naming its needle; after (NULL: nothing) then looks at the response it left. */
static inline void expect_refusals(const refusal *rows, size_t n, bb_error_kind kind, wire_text_check check,
                                   void (*after)(const bb_wire_response *r))
{
    bb_limits l = limits();
    bb_error *err = NULL;
    for (size_t i = 0; i < n; i++) {
        bb_wire_response r;
        expect_error(check(rows[i].text, &l, &r, &err), err, kind, rows[i].needle);
        if (after)
            after(&r);
    }
}

#endif
