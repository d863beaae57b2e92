/* npy.h: numpy's .npy files for the CLI: `--input NAME=@FILE.npy` read into a buffer
 * (header and size checked against the file before anything is allocated), and writing one. */
#ifndef BB_CLI_NPY_H
#define BB_CLI_NPY_H

#include <stddef.h>

#include "blockbox.h"

#define BB_NPY_MAX_DIMS 32               /* the wire's limit on an ndarray's shape */
#define BB_NPY_MAX_HEADER (64u << 10)     /* numpy writes < 1 KiB; its own reader caps at 10000 */

typedef struct bb_npy {
    const char *dtype;                    /* a wire dtype name ("uint8", "float32", …), static */
    size_t itemsize;
    int ndim;
    long long shape[BB_NPY_MAX_DIMS];
    unsigned char *data;                  /* malloc'd, little-endian, C order; NULL when len is 0 */
    size_t len;                           /* prod(shape) * itemsize */
} bb_npy;

/* 1 when path ends in ".npy" (any case): `--input NAME=@path` is then read as an array. */
int bb_npy_is_npy_path(const char *path);

/* Parses the header of a .npy file of file_len bytes from its first bytes (head, head_len
 * of them: at least the whole header, or the whole file if shorter) into out (without
 * data). *data_offset: where the array's bytes start. Refused (InvalidRequest): a bad
 * magic or version, a header that runs past the file, anything but a dict of exactly
 * descr / fortran_order / shape, fortran_order True, a dtype off the allowlist (object,
 * structured, strings, complex, big-endian), a shape off the wire's limits, and a data size
 * that is more than max or differs from what the file holds after the header. */
int bb_npy_parse_header(const unsigned char *head, size_t head_len, unsigned long long file_len, size_t max,
                        bb_npy *out, size_t *data_offset, bb_error **err);

/* Reads a .npy file whole: the header first, checked against the file's size, then
 * exactly the array's bytes (never more than max). Errors are InvalidRequest. */
int bb_npy_read(const char *path, size_t max, bb_npy *out, bb_error **err);

/* Writes a version 1.0 .npy file (C order, little-endian) of dtype and shape whose bytes are
 * data[0..len); len must be prod(shape) * itemsize. O_EXCL: an existing file is not replaced. */
int bb_npy_write(const char *path, const char *dtype, const long long *shape, int ndim, const void *data,
                 size_t len, bb_error **err);

/* The itemsize of a wire dtype name; 0 if it is not on the allowlist. */
size_t bb_npy_itemsize(const char *dtype);

void bb_npy_free(bb_npy *npy);

#endif
