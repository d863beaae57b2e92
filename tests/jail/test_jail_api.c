/* test_jail_api.c: the jail's trust boundary through the C API on the real zygote:
 * denials recorded by the host, not the block (issue 8 item 3), fresh entropy per worker. */
#include "../local/local_test_util.h"
#include "check_main.h"

/* What one run must show: success (outputs exactly, NULL: any) or a failure of a kind
 * (or of any kind but one) and type (NULL: any); and the denied set, exactly or one
 * containing denied_has. */
typedef enum { SUCCEEDS, FAILS_AS, FAILS_NOT_AS } run_outcome;
typedef struct {
    run_outcome outcome;
    bb_error_kind kind;
    const char *text;         /* SUCCEEDS: the outputs; FAILS_*: the error's type */
    const char *denied;       /* the denied set (NULL: see denied_has) */
    const char *denied_has;
} run_want;

/* A block and its runs, in order on one instance of it. */
typedef struct {
    const char *what;
    const char *code;
    int n_runs;
    run_want runs[2];
} denial_case;

static const denial_case DENIALS[] = {
    /* Probe, reset the record, succeed: the old in-process record (_blockbox_jail.reset)
     * came back empty. Now the module does not exist and the host still saw the call. */
    {"a block cannot erase its denials",
     "import socket\n"
     "def run(self):\n"
     "    try:\n        socket.socket()\n    except PermissionError:\n        pass\n"
     "    try:\n        import _blockbox_jail\n        _blockbox_jail.reset()\n"
     "        hook = 'present'\n"
     "    except ImportError:\n        hook = 'absent'\n"
     "    return {'hook': hook}\n",
     1, {{SUCCEEDS, BB_OK, "{\"hook\":\"absent\"}", "socket", NULL}}},
    /* A block writes its own reply frame on fd 4 claiming a denial and a PermissionError
     * [Errno 1]: no call was denied, so it is the block's own error with nothing denied. */
    {"a block cannot invent a denial",
     "import os, json, struct\n"
     "def run(self):\n"
     "    body = json.dumps({'success': False, 'error_type': 'PermissionError',\n"
     "        'error': '[Errno 1] Operation not permitted', 'line_number': None,\n"
     "        'function_name': None, 'traceback': None, 'stdout': '', 'stderr': '',\n"
     "        'runtime_version': '1', 'denied_syscalls': ['socket']}).encode()\n"
     "    os.write(4, struct.pack('<I', len(body)) + body)\n"
     "    os._exit(0)\n",
     1, {{FAILS_NOT_AS, BB_ERR_SANDBOX_VIOLATION, NULL, "", NULL}}},
    /* platform.platform() makes a denied clone internally and copes; the block's later
     * ValueError is a ValueError (exit 1), with the denial beside it. */
    {"an unrelated error after a denial keeps its type",
     "import platform\n"
     "def run(self):\n    platform.platform()\n    raise ValueError('mine')\n",
     1, {{FAILS_AS, BB_ERR_BLOCK, "ValueError", NULL, "clone"}}},
    /* The failure follows from the denial: PermissionError [Errno 1] out of a denied call. */
    {"the error raised by the denied call is a violation",
     "import socket\ndef run(self):\n    socket.socket()\n",
     1, {{FAILS_AS, BB_ERR_SANDBOX_VIOLATION, NULL, "socket", NULL}}},
    /* a PermissionError [Errno 1] of its own, with nothing denied: the block's */
    {"a PermissionError of the block's own is the block's",
     "def run(self):\n    raise PermissionError(1, 'Operation not permitted')\n",
     1, {{FAILS_AS, BB_ERR_BLOCK, "PermissionError", "", NULL}}},
    /* A violation, then a PermissionError of the block's own on the same instance: the
     * earlier denial is not credited to the later error (the old test's second block on
     * the same executor, now the same worker's next call). */
    {"a PermissionError after a violation is the block's",
     "import socket\nn = 0\n"
     "def run(self):\n    global n\n    n += 1\n"
     "    if n == 1:\n        socket.socket()\n"
     "    raise PermissionError(1, 'Operation not permitted')\n",
     2, {{FAILS_AS, BB_ERR_SANDBOX_VIOLATION, NULL, "socket", NULL}, {FAILS_AS, BB_ERR_BLOCK, "PermissionError", "", NULL}}},
    /* Each run's record is its own: a denial in run 1 is not reported by run 2. */
    {"denials are per call",
     "import socket\nn = 0\n"
     "def run(self):\n    global n\n    n += 1\n"
     "    if n == 1:\n        try:\n            socket.socket()\n"
     "        except OSError:\n            pass\n"
     "    return {'n': n}\n",
     2, {{SUCCEEDS, BB_OK, NULL, "socket", NULL}, {SUCCEEDS, BB_OK, "{\"n\":2}", "", NULL}}},
};

static void expect_run(bb_block *blk, const run_want *want, const char *what, int run)
{
    bb_result *res = bb_block_run(blk, "{}", NULL);
    ck_assert_ptr_nonnull(res);
    const bb_error *e = bb_result_error(res);
    if (want->outcome == SUCCEEDS) {
        ck_assert_msg(bb_result_ok(res), "%s, run %d: %s", what, run, bb_error_message(e));
        if (want->text)
            ck_assert_str_eq(bb_result_outputs(res), want->text);
    } else {
        ck_assert_msg(!bb_result_ok(res), "%s, run %d succeeded: %s", what, run, bb_result_outputs(res));
        bb_error_kind k = bb_error_get_kind(e);
        ck_assert_msg(want->outcome == FAILS_AS ? k == want->kind : k != want->kind, "%s, run %d: kind %s (%s)",
                      what, run, bb_error_kind_name(k), bb_error_message(e));
        if (want->text)
            ck_assert_str_eq(bb_error_type_name(e), want->text);
    }
    const char *denied = bb_result_denied_syscalls(res);
    if (want->denied)
        ck_assert_msg(strcmp(denied, want->denied) == 0, "%s, run %d: denied '%s', wanted '%s'", what, run, denied,
                      want->denied);
    else
        ck_assert_msg(strstr(denied, want->denied_has) != NULL, "%s, run %d: denied '%s' lacks %s", what, run,
                      denied, want->denied_has);
    bb_result_free(res);
}

/* Loop test over DENIALS: the case's block on a new executor, its runs in order. */
START_TEST(denials_are_what_the_host_saw)
{
    const denial_case *c = &DENIALS[_i];
    local_block b = local_block_on(local_executor(NULL), c->code, NULL, 0);
    for (int r = 0; r < c->n_runs; r++)
        expect_run(b.blk, &c->runs[r], c->what, r + 1);
    local_block_free(b);
}
END_TEST

/* Workers forked from one zygote used to share numpy's global RNG state. */
static char *draw(bb_block *blk)
{
    cJSON *out = run_ok(blk, "{}");
    char *s = str_of(out, "r");
    cJSON_Delete(out);
    return s;
}

START_TEST(each_worker_has_fresh_entropy)
{
    bb_executor *ex = local_executor(NULL);
    /* numpy only: Python's random is reseeded by CPython's own at-fork hook already */
    const char *code = "def run(self):\n    return {'r': repr(np.random.rand())}\n";
    bb_block *a = load_block(ex, code, NULL, 0);
    bb_block *b = load_block(ex, code, NULL, 0);
    bb_block *once = load_block(ex, code, NULL, 1);   /* a fresh worker per run */
    char *ra = draw(a), *rb = draw(b), *r1 = draw(once), *r2 = draw(once);
    ck_assert_str_ne(ra, rb);
    ck_assert_str_ne(r1, r2);
    ck_assert_str_ne(ra, r1);
    free(ra);
    free(rb);
    free(r1);
    free(r2);
    bb_block_free(a);
    bb_block_free(b);
    bb_block_free(once);
    bb_executor_free(ex);
}
END_TEST

int main(void)
{
    const bb_check_case rows[] = {
        BB_CHECK_LOOP("trust", denials_are_what_the_host_saw, DENIALS),
        BB_CHECK_TEST("trust", each_worker_has_fresh_entropy),
    };
    return bb_check_run("jail_api", 120, rows, BB_CHECK_COUNT(rows));
}
