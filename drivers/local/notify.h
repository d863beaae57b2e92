/* notify.h: the host side of the seccomp jail: one thread per local driver answers
 * every worker's denied calls (EPERM) and keeps the record of them per worker. */
#ifndef BB_NOTIFY_H
#define BB_NOTIFY_H

#include <stddef.h>

#include "blockbox.h"

typedef struct bb_notifier bb_notifier;

/* Starts the answering thread. NULL with *err on failure. */
bb_notifier *bb_notifier_start(bb_error **err);
/* Stops the thread and closes every fd it holds (workers still waiting on a denied
 * call then get ENOSYS: still denied). */
void bb_notifier_stop(bb_notifier *n);

/*
 * Watches one worker: `handoff` is the host end of the socket on which the worker
 * sends its listener fd once its filter is on (ownership passes here; it is closed once
 * the listener arrived, or on error). Returns a handle > 0, or 0 with *err.
 */
unsigned long bb_notifier_add(bb_notifier *n, int handoff, bb_error **err);
/* Forgets the worker (its fds are closed by the thread). */
void bb_notifier_remove(bb_notifier *n, unsigned long handle);

/* Starts a new record window for the worker (before a request is sent). */
void bb_notifier_begin(bb_notifier *n, unsigned long handle);
/*
 * The calls denied since bb_notifier_begin, as "socket,kill" (first-seen order, no
 * duplicates; malloc'd; "" if none). Every denial the worker made before it wrote its
 * reply is in it: the record is stored before the denied call returns. *count (if not
 * NULL) gets the number of denials including repeats. NULL only when out of memory.
 */
char *bb_notifier_take(bb_notifier *n, unsigned long handle, unsigned long *count);

/* The signal a worker sent itself whose default action ended it (the host killed it
 * on the kernel's behalf, see notify.c), or 0. */
int bb_notifier_fatal_signal(bb_notifier *n, unsigned long handle);

#endif
