/* test_jail_api.c: the jail's trust boundary through the C API on the real zygote:
 * denials recorded by the host, not the block (issue 8 item 3), fresh entropy per worker. */
#include "../local/local_test_util.h"
#include "check_main.h"

/* A run that fails; returns its error kind and copies the type and denied set. */
static bb_error_kind run_failing(bb_block *blk, char *type, size_t tlen, char *denied, size_t dlen)
{
    bb_result *res = bb_block_run(blk, "{}", NULL);
    ck_assert_ptr_nonnull(res);
    ck_assert_msg(!bb_result_ok(res), "the run succeeded: %s", bb_result_outputs(res));
    const bb_error *e = bb_result_error(res);
    bb_error_kind k = bb_error_get_kind(e);
    snprintf(type, tlen, "%s", bb_error_type_name(e));
    snprintf(denied, dlen, "%s", bb_result_denied_syscalls(res));
    bb_result_free(res);
    return k;
}

/* Probe, reset the record, succeed: the old in-process record (_blockbox_jail.reset)
 * came back empty. Now the module does not exist and the host still saw the call. */
START_TEST(block_cannot_erase_its_denials)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "import socket\n"
                                   "def run(self):\n"
                                   "    try:\n        socket.socket()\n    except PermissionError:\n        pass\n"
                                   "    try:\n        import _blockbox_jail\n        _blockbox_jail.reset()\n"
                                   "        hook = 'present'\n"
                                   "    except ImportError:\n        hook = 'absent'\n"
                                   "    return {'hook': hook}\n",
                                   NULL, 0);
    bb_result *res = bb_block_run(b.blk, "{}", NULL);
    ck_assert(bb_result_ok(res));
    ck_assert_str_eq(bb_result_outputs(res), "{\"hook\":\"absent\"}");
    ck_assert_str_eq(bb_result_denied_syscalls(res), "socket");
    bb_result_free(res);
    local_block_free(b);
}
END_TEST

/* A block writes its own reply frame on fd 4 claiming a denial and a PermissionError
 * [Errno 1]: no call was denied, so it is the block's own error with nothing denied. */
START_TEST(block_cannot_invent_a_denial)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "import os, json, struct\n"
                                   "def run(self):\n"
                                   "    body = json.dumps({'success': False, 'error_type': 'PermissionError',\n"
                                   "        'error': '[Errno 1] Operation not permitted', 'line_number': None,\n"
                                   "        'function_name': None, 'traceback': None, 'stdout': '', 'stderr': '',\n"
                                   "        'runtime_version': '1', 'denied_syscalls': ['socket']}).encode()\n"
                                   "    os.write(4, struct.pack('<I', len(body)) + body)\n"
                                   "    os._exit(0)\n",
                                   NULL, 0);
    char type[64], denied[256];
    bb_error_kind k = run_failing(b.blk, type, sizeof type, denied, sizeof denied);
    ck_assert_int_ne(k, BB_ERR_SANDBOX_VIOLATION);
    ck_assert_str_eq(denied, "");
    local_block_free(b);
}
END_TEST

/* platform.platform() makes a denied clone internally and copes; the block's later
 * ValueError is a ValueError (exit 1), with the denial beside it. */
START_TEST(unrelated_error_after_a_denial_keeps_its_type)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "import platform\n"
                                   "def run(self):\n    platform.platform()\n    raise ValueError('mine')\n",
                                   NULL, 0);
    char type[64], denied[256];
    bb_error_kind k = run_failing(b.blk, type, sizeof type, denied, sizeof denied);
    ck_assert_int_eq(k, BB_ERR_BLOCK);
    ck_assert_str_eq(type, "ValueError");
    ck_assert_ptr_nonnull(strstr(denied, "clone"));
    local_block_free(b);
}
END_TEST

/* The failure follows from the denial: PermissionError [Errno 1] out of a denied call. */
START_TEST(error_raised_by_the_denied_call_is_a_violation)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "import socket\ndef run(self):\n    socket.socket()\n", NULL, 0);
    char type[64], denied[256];
    bb_error_kind k = run_failing(b.blk, type, sizeof type, denied, sizeof denied);
    ck_assert_int_eq(k, BB_ERR_SANDBOX_VIOLATION);
    ck_assert_str_eq(denied, "socket");
    /* a PermissionError [Errno 1] of its own, with nothing denied: the block's */
    bb_block *own = load_block(b.ex, "def run(self):\n    raise PermissionError(1, 'Operation not permitted')\n",
                               NULL, 0);
    k = run_failing(own, type, sizeof type, denied, sizeof denied);
    ck_assert_int_eq(k, BB_ERR_BLOCK);
    ck_assert_str_eq(type, "PermissionError");
    ck_assert_str_eq(denied, "");
    bb_block_free(own);
    local_block_free(b);
}
END_TEST

/* Each run's record is its own: a denial in run 1 is not reported by run 2. */
START_TEST(denials_are_per_call)
{
    local_block b = local_block_on(local_executor(NULL),
                                   "import socket\nn = 0\n"
                                   "def run(self):\n    global n\n    n += 1\n"
                                   "    if n == 1:\n        try:\n            socket.socket()\n"
                                   "        except OSError:\n            pass\n"
                                   "    return {'n': n}\n",
                                   NULL, 0);
    bb_result *res = bb_block_run(b.blk, "{}", NULL);
    ck_assert(bb_result_ok(res));
    ck_assert_str_eq(bb_result_denied_syscalls(res), "socket");
    bb_result_free(res);
    res = bb_block_run(b.blk, "{}", NULL);
    ck_assert(bb_result_ok(res));
    ck_assert_str_eq(bb_result_outputs(res), "{\"n\":2}");
    ck_assert_str_eq(bb_result_denied_syscalls(res), "");
    bb_result_free(res);
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
        BB_CHECK_TEST("trust", block_cannot_erase_its_denials),
        BB_CHECK_TEST("trust", block_cannot_invent_a_denial),
        BB_CHECK_TEST("trust", unrelated_error_after_a_denial_keeps_its_type),
        BB_CHECK_TEST("trust", error_raised_by_the_denied_call_is_a_violation),
        BB_CHECK_TEST("trust", denials_are_per_call),
        BB_CHECK_TEST("trust", each_worker_has_fresh_entropy),
    };
    return bb_check_run("jail_api", 120, rows, BB_CHECK_COUNT(rows));
}
