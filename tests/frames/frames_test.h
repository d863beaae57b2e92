/* frames_test.h: what the frames suites share: a block on an executor of its own (each
 * suite makes the executor its own way), and the assertion that a run succeeded. */
#ifndef BB_FRAMES_TEST_H
#define BB_FRAMES_TEST_H

#include <blockbox.h>
#include <check.h>

/* A block and the executor made for it alone: freed together. */
typedef struct {
    bb_executor *ex;
    bb_block *blk;
} solo;

static inline void solo_free(solo t)
{
    bb_block_free(t.blk);
    bb_executor_free(t.ex);
}

static inline void expect_ok(const bb_result *res)
{
    ck_assert_ptr_nonnull(res);
    ck_assert_msg(bb_result_ok(res), "%s: %s", bb_error_type_name(bb_result_error(res)),
                  bb_error_message(bb_result_error(res)));
}

#endif
