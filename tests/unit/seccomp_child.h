/* seccomp_child.h: the child side of the seccomp suites (test_seccomp.c, seccomp_python.c)
 * as in a worker: the hand-off socket on fd 5, the report pipe out of its way, the filter
 * loaded and its listener handed to the parent. Exit statuses 119/120 name the failed step. */
#ifndef BB_TEST_SECCOMP_CHILD_H
#define BB_TEST_SECCOMP_CHILD_H

#include <fcntl.h>
#include <unistd.h>

#include "seccomp.h"

/* Moves the hand-off end to BB_SECCOMP_HANDOFF_FD and the report end above 20; returns the
 * report fd (the originals stay open: the caller closes what it no longer needs). */
static inline int child_fds(int report_end, int handoff_end)
{
    int rep_fd = fcntl(report_end, F_DUPFD, 20), hand_fd = fcntl(handoff_end, F_DUPFD, 20);
    if (rep_fd < 0 || hand_fd < 0 || dup2(hand_fd, BB_SECCOMP_HANDOFF_FD) < 0)
        _exit(119);
    close(hand_fd);
    return rep_fd;
}

/* Loads prog (NULL: no filter) and hands its listener to the parent; then closes the
 * hand-off fd. */
static inline void child_apply(const bb_seccomp_program *prog)
{
    if (prog) {
        int listener = -1;
        if (bb_seccomp_apply(prog, &listener) < 0 || bb_seccomp_send_fd(BB_SECCOMP_HANDOFF_FD, listener) < 0)
            _exit(120);
        close(listener);
    }
    close(BB_SECCOMP_HANDOFF_FD);
}

#endif
