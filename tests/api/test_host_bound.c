/* test_host_bound.c: the host's cost of a hostile reply is bounded (issue 8, SECURITY.md):
 * the two attack blocks on the real local driver, host RSS measured in-process. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "local_test_util.h"
#include "check_main.h"

#define MIB (1024L * 1024L)
/* The stated bound (docs/SECURITY.md): one call's host heap stays below 4 x the result
 * cap (default 64 MiB); N concurrent calls below N times that. */
#define RESULT_CAP (64 * MIB)
#define ONE_CALL_BOUND (4 * RESULT_CAP)

/* return {'a': [0]*33_000_000}: 66 MB of JSON, under the result cap. */
static const char BIG_LIST[] = "def run(self):\n    return {'a': [0] * 33_000_000}\n";

/* A reply frame written straight to fd 4 with an ignored "pad" array of n zeros, then
 * silence: the host reads the forged frame as the answer. */
#define PAD_BLOCK(n)                                                                                   \
    "import os, struct, time\n"                                                                        \
    "def run(self):\n"                                                                                 \
    "    n = " #n "\n"                                                                                 \
    "    body = b'{\"success\":true,\"result\":\"{}\",\"pad\":[' + b'0,' * n + b'0]}'\n"                \
    "    os.write(4, struct.pack('<I', len(body)) + bytes(16))\n"                                      \
    "    view = memoryview(body)\n"                                                                    \
    "    while view:\n"                                                                                \
    "        view = view[os.write(4, view[:1 << 20]):]\n"                                              \
    "    time.sleep(60)\n"                                                                             \
    "    return {}\n"

typedef struct usage {
    long rss_kb;
    double cpu_s;
} usage;

static usage now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (usage){ru.ru_maxrss,
                   (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                       ru.ru_stime.tv_usec / 1e6};
}

static bb_executor *attack_executor(void)
{
    static const char *const settings[] = {"memory_mb", "1024", "timeout", "60", NULL};
    return local_executor(settings);
}

/* Runs one block once and returns its error kind (BB_OK on success). */
static bb_error_kind run_once(bb_executor *ex, const char *code, char *message, size_t cap)
{
    bb_block *blk = load_block(ex, code, NULL, 0);
    bb_result *res = bb_block_run(blk, "{}", NULL);
    ck_assert_ptr_nonnull(res);
    const bb_error *e = bb_result_error(res);
    bb_error_kind kind = bb_result_ok(res) ? BB_OK : bb_error_get_kind(e);
    snprintf(message, cap, "%s", e ? bb_error_message(e) : "ok");
    bb_result_free(res);
    bb_block_free(blk);
    return kind;
}

static void report(const char *what, usage before, usage after, long bound_kb, const char *outcome)
{
    long grown = after.rss_kb - before.rss_kb;
    printf("host bound: %-34s host RSS +%ld MiB (bound %ld MiB), host CPU %.2f s: %.80s\n", what,
           grown / 1024, bound_kb / 1024, after.cpu_s - before.cpu_s, outcome);
    fflush(stdout);
    ck_assert_msg(grown <= bound_kb, "%s: host RSS grew by %ld KiB, over the bound of %ld KiB", what, grown,
                  bound_kb);
}

/* One attack block alone: its reported kind, and what its message must say (either of
 * two needles; NULL: anything). */
typedef struct single_attack {
    const char *what;
    const char *code;
    bb_error_kind kind;
    const char *needle, *or_needle;
} single_attack;

static const single_attack SINGLE[] = {
    /* Before the fix: 2.6 GB in the CLI, the call succeeded. Now refused while scanned. */
    {"[0]*33_000_000", BIG_LIST, BB_ERR_OUTPUT_LIMIT, "JSON values", NULL},
    /* The 148 MB pad fits the reply cap (143.0 MiB at the defaults): it is read,
     * then refused at the key, unbuilt. Before the fix: 5.8 GB and ~28 s of host CPU, and
     * the call succeeded. With request ids (issue 8 item 5, local.c) the forged frame is
     * refused at its header, before a byte of the pad is read: its id is not the
     * request's. A frame that got past that (the runtime's own) would be refused at the key. */
    {"pad of 148 MB (within the cap)", PAD_BLOCK(74000000), BB_ERR_INVALID_RESPONSE, "unknown key 'pad'",
     "another request's id"},
    /* A 160 MB one is over the cap: refused at the frame header, unread. */
    {"pad of 160 MB (over the cap)", PAD_BLOCK(80000000), BB_ERR_OUTPUT_LIMIT, NULL, NULL},
};

/* Loop test over SINGLE: each attack in its own test process (RSS is per process). */
START_TEST(one_attack_alone)
{
    const single_attack *a = &SINGLE[_i];
    bb_executor *ex = attack_executor();
    char message[512];
    usage before = now();
    bb_error_kind kind = run_once(ex, a->code, message, sizeof message);
    usage after = now();
    report(a->what, before, after, ONE_CALL_BOUND / 1024, message);
    ck_assert_msg(kind == a->kind, "%s: kind %s: %s", a->what, bb_error_kind_name(kind), message);
    ck_assert_msg(!a->needle || strstr(message, a->needle) || (a->or_needle && strstr(message, a->or_needle)),
                  "%s: %s", a->what, message);
    bb_executor_free(ex);
}
END_TEST

typedef struct attack {
    bb_executor *ex;
    const char *code;
    bb_error_kind kind;
    char message[512];
} attack;

static void *attack_thread(void *arg)
{
    attack *a = arg;
    a->kind = run_once(a->ex, a->code, a->message, sizeof a->message);
    return NULL;
}

/* Two at once through one executor (the issue: 5.3 GB in the embedding process). */
START_TEST(two_attacks_at_once)
{
    bb_executor *ex = attack_executor();
    attack a[2] = {{.ex = ex, .code = PAD_BLOCK(74000000)}, {.ex = ex, .code = BIG_LIST}};
    pthread_t t[2];
    usage before = now();
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, attack_thread, &a[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    usage after = now();
    report("pad 148 MB + [0]*33M concurrently", before, after, 2 * ONE_CALL_BOUND / 1024, a[0].message);
    ck_assert_msg(a[0].kind == BB_ERR_INVALID_RESPONSE, "%s", a[0].message);
    ck_assert_msg(a[1].kind == BB_ERR_OUTPUT_LIMIT, "%s", a[1].message);
    bb_executor_free(ex);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_LOOP("attacks", one_attack_alone, SINGLE),
        BB_CHECK_TEST("attacks", two_attacks_at_once),
    };
    return bb_check_run("host_bound", 180, rows, BB_CHECK_COUNT(rows));
}
