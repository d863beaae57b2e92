/* buffers.h: the CLI's side of the binary path: .npy inputs handed to bb_block_run_buffers
 * by reference, and output buffers turned back into what `blockbox run` prints or writes. */
#ifndef BB_CLI_BUFFERS_H
#define BB_CLI_BUFFERS_H

#include "blockbox.h"
#include "cli.h"
#include "npy.h"

typedef struct bb_cli_buffers {
    bb_npy arrays[BB_MAX_BUFFERS];
    bb_buffer bufs[BB_MAX_BUFFERS];   /* bufs[i] views arrays[i].data */
    size_t n;
    size_t total;                     /* bytes in all of them */
} bb_cli_buffers;

/* Reads the .npy file at path into the next buffer and appends its reference,
 * {"_type": "ndarray", "dtype": …, "shape": […], "buffer": i}, to json. max bounds the
 * inputs text already in json plus every buffer (the input limit). InvalidRequest when the
 * file is refused or there are more than BB_MAX_BUFFERS of them. */
int bb_cli_npy_input(const char *path, size_t max, bb_buf *json, bb_cli_buffers *b, bb_error **err);
void bb_cli_buffers_free(bb_cli_buffers *b);

/* The outputs of a successful result with every ndarray that came back as a buffer
 * ("buffer": i) turned back into what the CLI prints: the JSON data form (base64), or with
 * out_dir a .npy file written there ({"_type": "ndarray", "dtype", "shape", "file": PATH}).
 * *text is malloc'd, or NULL when the outputs name no buffer (print them as they are). */
int bb_cli_outputs_inline(const bb_result *res, const char *out_dir, char **text, bb_error **err);

/* --output-dir must name an existing directory (checked before the block runs). */
int bb_cli_output_dir_check(const char *dir, bb_error **err);

#endif
