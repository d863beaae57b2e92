/* errtext.c: builds the text of a block error from a reply's bare fields (DESIGN §3),
 * so a block error reads the same from local mode, blockbox's app and Roboflow's. */
#include "errtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

char *bb_errtext_block(const char *error, const char *error_type, int line_number,
                       const char *function_name)
{
    if (!error)
        error = "";
    /* only the block's own exceptions: SandboxViolation & co. keep their text */
    if (line_number <= 0 || !error_type || !*error_type ||
        bb_error_kind_from_name(error_type) != BB_ERR_BLOCK)
        return strdup(error);
    const char *function = function_name && *function_name ? function_name : "run";
    /* "Error in line N, in F: T" — then ": msg" unless msg is empty. */
    int head = snprintf(NULL, 0, "Error in line %d, in %s: %s", line_number, function, error_type);
    if (head < 0)
        return NULL;
    size_t hlen = (size_t)head, elen = strlen(error);
    char *out = malloc(hlen + 2 + elen + 1);
    if (!out)
        return NULL;
    snprintf(out, hlen + 1, "Error in line %d, in %s: %s", line_number, function, error_type);
    /* Already formatted by the server: exactly this head, then end or ": ". */
    if (strncmp(error, out, hlen) == 0 &&
        (error[hlen] == '\0' || (error[hlen] == ':' && error[hlen + 1] == ' '))) {
        memcpy(out, error, elen + 1);
        return out;
    }
    if (elen) {
        memcpy(out + hlen, ": ", 2);
        memcpy(out + hlen + 2, error, elen + 1);
    }
    return out;
}
