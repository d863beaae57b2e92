/* errtext.h: the text a block error reads as ("Error in line N, in F: T: msg"), built
 * on the client from a reply's fields so every backend's errors read alike. */
#ifndef BLOCKBOX_ERRTEXT_H
#define BLOCKBOX_ERRTEXT_H

#include <stddef.h>

/* The message of a failed reply (malloc'd, NUL-terminated, at most `limit` bytes of
 * text before a cut marker is never needed: the caller cuts). On the wire `error` is
 * the bare str(exception) (Roboflow's servers and blockbox's); with a line number > 0
 * the result is "Error in line N, in F: T: msg" ("…: T" for an empty msg; F defaults
 * to "run", as Roboflow's client does). A message that already starts with exactly
 * that prefix (a server that formats it itself) is kept as it is, so the text is the
 * same whichever server answered. Without a line number, or for an error type that
 * names one of blockbox's own kinds (SandboxViolation, ...), the message is unchanged.
 * Returns NULL only when out of memory. */
char *bb_errtext_block(const char *error, const char *error_type, int line_number,
                       const char *function_name);

#endif
