/* driver_stubs.h: the do-nothing slots of a test driver (open and load that keep no state,
 * unload, close), for the drivers built by the tests whose run is all they test. */
#ifndef BB_TEST_DRIVER_STUBS_H
#define BB_TEST_DRIVER_STUBS_H

#include <blockbox/driver.h>

static inline int stub_open(const bb_config *cfg, void **state, bb_error **err)
{
    (void)cfg;
    (void)err;
    *state = NULL;
    return 0;
}

static inline int stub_load(void *state, const bb_block_info *info, void **block_state, bb_error **err)
{
    (void)state;
    (void)info;
    (void)err;
    *block_state = NULL;
    return 0;
}

static inline void stub_unload(void *state, void *block_state)
{
    (void)state;
    (void)block_state;
}

static inline void stub_close(void *state) { (void)state; }

#endif
