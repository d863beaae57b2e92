/* error.h: the insides of bb_error and helpers to make, set and classify errors.
 * An error is a value: a kind, a type name, a message, and for block errors a line. */
#ifndef BB_ERROR_H
#define BB_ERROR_H

#include "blockbox.h"

struct bb_error {
    bb_error_kind kind;
    char *type_name;   /* DESIGN §3 name, or the block's exception class */
    char *message;
    int line;
    char *function;
    char *traceback;
};

/* Sets *err (if err is non-NULL and *err is still NULL); always returns -1. */
int bb_fail(bb_error **err, bb_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error reported in a response envelope: always the block's own (BB_ERR_BLOCK);
 * a type that spells one of blockbox's own names becomes "block.<name>" (error.c). */
bb_error *bb_error_block(const char *type_name, const char *message, int line,
                         const char *function, const char *traceback);
/* DESIGN §3 name -> kind; any other name is the block's exception (BB_ERR_BLOCK). */
bb_error_kind bb_error_kind_from_name(const char *name);
/* An error that needs no allocation: returned when memory runs out. */
bb_error *bb_error_oom(void);

#endif
