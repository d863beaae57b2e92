/* npy.c: numpy .npy files (format versions 1.0, 2.0, 3.0) for the CLI: a hostile file is
 * refused from its header and size alone, before the array is allocated or read. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "npy.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* The dtypes of the wire's allowlist and their descr (kind + itemsize) in a .npy header. */
static const struct {
    const char *code; /* descr without the byte order */
    const char *name;
    size_t itemsize;
} npy_types[] = {
    {"b1", "bool", 1},    {"i1", "int8", 1},    {"u1", "uint8", 1},   {"i2", "int16", 2},
    {"u2", "uint16", 2},  {"i4", "int32", 4},   {"u4", "uint32", 4},  {"i8", "int64", 8},
    {"u8", "uint64", 8},  {"f2", "float16", 2}, {"f4", "float32", 4}, {"f8", "float64", 8},
};
#define NPY_NTYPES (sizeof npy_types / sizeof npy_types[0])

int bb_npy_is_npy_path(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && strcasecmp(path + n - 4, ".npy") == 0;
}

size_t bb_npy_itemsize(const char *dtype)
{
    for (size_t i = 0; i < NPY_NTYPES; i++)
        if (strcmp(npy_types[i].name, dtype) == 0)
            return npy_types[i].itemsize;
    return 0;
}

void bb_npy_free(bb_npy *npy)
{
    free(npy->data);
    memset(npy, 0, sizeof *npy);
}

/* ---- the header: a Python dict literal --------------------------------------------- */

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes ('…' or "…"), at most cap - 1 characters. */
static int quoted(cursor *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return -1;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap)
            return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[n] = '\0';
    return 0;
}

static int keyword(cursor *c, const char *word)
{
    skip_ws(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, word, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

/* (d0, d1, …) with an optional trailing comma; each extent 0..2^31-1 (the wire's limit). */
static int shape_tuple(cursor *c, bb_npy *out, bb_error **err)
{
    if (!eat(c, '('))
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the header's shape is not a tuple");
    out->ndim = 0;
    for (;;) {
        if (eat(c, ')'))
            return 0;
        skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the header's shape holds something other than "
                                                         "non-negative integers");
        long long v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            v = v * 10 + (*c->p++ - '0');
            if (v > INT32_MAX)
                return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "a shape extent is larger than 2^31-1");
        }
        if (c->p < c->end && *c->p == 'L')   /* Python 2's long suffix, as old numpy wrote it */
            c->p++;
        if (out->ndim == BB_NPY_MAX_DIMS)
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the shape has more than %d dimensions",
                           BB_NPY_MAX_DIMS);
        out->shape[out->ndim++] = v;
        if (eat(c, ')'))
            return 0;
        if (!eat(c, ','))
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the header's shape is not a tuple of integers");
    }
}

/* Printable ASCII for an error message: a hostile header must not drive a terminal. */
static const char *printable(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++)
        out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    out[n] = '\0';
    return out;
}

static int set_dtype(const char *descr, bb_npy *out, bb_error **err)
{
    char shown[40];
    char order = descr[0];
    const char *code = descr + 1;
    if (order != '<' && order != '|' && order != '>' && order != '=')
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "dtype '%s' is not a plain numeric dtype",
                       printable(descr, shown, sizeof shown));
    if (code[0] == 'O')
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST,
                       "object arrays (dtype '%s') are refused: only bool, int8-64, uint8-64 and "
                       "float16/32/64 arrays travel", printable(descr, shown, sizeof shown));
    for (size_t i = 0; i < NPY_NTYPES; i++) {
        if (strcmp(code, npy_types[i].code) != 0)
            continue;
        /* One-byte types have no byte order ('|', as numpy writes them; '<' and '>' mean
         * the same); wider ones must be little-endian ('<'), as the wire's bytes are. */
        int little = npy_types[i].itemsize == 1 || order == '<';
        if (!little)
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST,
                           "dtype '%s' is not little-endian: save it as a.astype('<%s')",
                           printable(descr, shown, sizeof shown), code);
        out->dtype = npy_types[i].name;
        out->itemsize = npy_types[i].itemsize;
        return 0;
    }
    return bb_cli_fail(err, BB_ERR_INVALID_REQUEST,
                   "dtype '%s' is not on the allowlist (bool, int8-64, uint8-64, float16/32/64)",
                   printable(descr, shown, sizeof shown));
}

/* The dict {'descr': …, 'fortran_order': …, 'shape': …}: exactly these keys, once each. */
static int parse_dict(cursor *c, bb_npy *out, bb_error **err)
{
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    if (!eat(c, '{'))
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy header is not a dict");
    for (;;) {
        if (eat(c, '}'))
            break;
        char key[32], descr[32];
        if (quoted(c, key, sizeof key) < 0 || !eat(c, ':'))
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy header is not a dict of string keys");
        if (strcmp(key, "descr") == 0 && !seen_descr++) {
            skip_ws(c);
            if (c->p < c->end && *c->p == '[')
                return bb_cli_fail(err, BB_ERR_INVALID_REQUEST,
                               "structured dtypes are refused: only plain numeric arrays travel");
            if (quoted(c, descr, sizeof descr) < 0)
                return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the header's descr is not a dtype string");
            if (set_dtype(descr, out, err) < 0)
                return -1;
        } else if (strcmp(key, "fortran_order") == 0 && !seen_order++) {
            if (keyword(c, "True"))
                return bb_cli_fail(err, BB_ERR_INVALID_REQUEST,
                               "fortran_order arrays are refused: save a C-order array "
                               "(numpy.ascontiguousarray)");
            if (!keyword(c, "False"))
                return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the header's fortran_order is not a bool");
        } else if (strcmp(key, "shape") == 0 && !seen_shape++) {
            if (shape_tuple(c, out, err) < 0)
                return -1;
        } else {
            char shown[40];
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy header has an unexpected or repeated key '%s'",
                           printable(key, shown, sizeof shown));
        }
        if (eat(c, '}'))
            break;
        if (!eat(c, ','))
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy header is not a well-formed dict");
    }
    skip_ws(c);
    if (c->p != c->end)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy header has text after its dict");
    if (!seen_descr || !seen_order || !seen_shape)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy header lacks %s",
                       !seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape");
    return 0;
}

int bb_npy_parse_header(const unsigned char *head, size_t head_len, unsigned long long file_len, size_t max,
                        bb_npy *out, size_t *data_offset, bb_error **err)
{
    memset(out, 0, sizeof *out);
    if (head_len < sizeof npy_magic || memcmp(head, npy_magic, sizeof npy_magic) != 0)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "not a .npy file (no \\x93NUMPY magic)");
    if (head_len < 8)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy file ends inside its header");
    unsigned major = head[6], minor = head[7];
    if (major < 1 || major > 3 || minor != 0)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "unsupported .npy format version %u.%u (1.0, 2.0, 3.0 are read)",
                       major, minor);
    size_t prefix = major == 1 ? 10 : 12;
    if (head_len < prefix)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy file ends inside its header");
    unsigned long long hlen = major == 1 ? (unsigned long long)head[8] | (unsigned long long)head[9] << 8
                                         : (unsigned long long)head[8] | (unsigned long long)head[9] << 8 |
                                               (unsigned long long)head[10] << 16 |
                                               (unsigned long long)head[11] << 24;
    if (hlen > BB_NPY_MAX_HEADER)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy header claims %llu bytes (the limit is %u)", hlen,
                       BB_NPY_MAX_HEADER);
    if (prefix + hlen > file_len || prefix + hlen > head_len)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy header runs past the end of the file");
    const char *text = (const char *)head + prefix;
    for (size_t i = 0; i < hlen; i++)   /* ASCII only (v3 allows UTF-8, for field names we refuse) */
        if ((unsigned char)text[i] >= 0x7f || ((unsigned char)text[i] < 0x20 && text[i] != '\n' &&
                                               text[i] != '\r' && text[i] != '\t'))
            return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the .npy header holds a byte that is not printable ASCII");
    cursor c = {text, text + hlen};
    if (parse_dict(&c, out, err) < 0)
        return -1;
    /* prod(shape) * itemsize, never past max: a hostile shape cannot make us allocate. */
    unsigned long long bytes = out->itemsize;
    for (int i = 0; i < out->ndim; i++) {
        if (out->shape[i] == 0) {
            bytes = 0;
            break;
        }
    }
    for (int i = 0; bytes && i < out->ndim; i++) {
        if ((unsigned long long)out->shape[i] > (unsigned long long)max / bytes) {
            bytes = (unsigned long long)max + 1;   /* too big: stop before it can overflow */
            break;
        }
        bytes *= (unsigned long long)out->shape[i];
    }
    if (bytes > max)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "the array is larger than the input limit of %zu bytes", max);
    unsigned long long in_file = file_len - (prefix + hlen);
    if (in_file != bytes)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST,
                       "the .npy file holds %llu bytes of data, its header (shape and %s) says %llu",
                       in_file, out->dtype, bytes);
    out->len = (size_t)bytes;
    *data_offset = (size_t)(prefix + hlen);
    return 0;
}

/* ---- reading and writing files ------------------------------------------------------ */

/* All of len bytes at offset at, read (out 0) or written (out 1); 0, or -1 at the end
 * of the file or on an error. */
static int pio_full(int fd, void *buf, size_t len, off_t at, int out)
{
    size_t done = 0;
    while (done < len) {
        char *p = (char *)buf + done;
        off_t where = at + (off_t)done;
        ssize_t n = out ? pwrite(fd, p, len - done, where) : pread(fd, p, len - done, where);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

static int pread_full(int fd, void *buf, size_t len, off_t at) { return pio_full(fd, buf, len, at, 0); }

int bb_npy_read(const char *path, size_t max, bb_npy *out, bb_error **err)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "cannot open --input file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "--input file %s is not a regular file", path);
    }
    unsigned long long file_len = (unsigned long long)st.st_size;
    size_t head_len = file_len < 12 + BB_NPY_MAX_HEADER ? (size_t)file_len : 12 + BB_NPY_MAX_HEADER;
    unsigned char *head = malloc(head_len ? head_len : 1);
    int rc = head ? 0 : bb_cli_fail(err, BB_ERR_INTERNAL, "out of memory");
    if (rc == 0 && pread_full(fd, head, head_len, 0) < 0)
        rc = bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "cannot read --input file %s (it shrank?)", path);
    size_t offset = 0;
    if (rc == 0 && bb_npy_parse_header(head, head_len, file_len, max, out, &offset, err) < 0) {
        /* Name the file in the message. */
        char *why = strdup(bb_error_message(*err));
        bb_error_free(*err);
        *err = NULL;
        rc = bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "--input file %s: %s", path, why ? why : "bad .npy file");
        free(why);
    }
    free(head);
    if (rc == 0 && out->len) {
        out->data = malloc(out->len);
        if (!out->data)
            rc = bb_cli_fail(err, BB_ERR_INTERNAL, "out of memory reading %s", path);
        else if (pread_full(fd, out->data, out->len, (off_t)offset) < 0)
            rc = bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "cannot read --input file %s (it shrank?)", path);
    }
    close(fd);
    if (rc < 0)
        bb_npy_free(out);
    return rc;
}

int bb_npy_write(const char *path, const char *dtype, const long long *shape, int ndim, const void *data,
                 size_t len, bb_error **err)
{
    size_t itemsize = bb_npy_itemsize(dtype);
    const char *code = NULL;
    for (size_t i = 0; i < NPY_NTYPES; i++)
        if (strcmp(npy_types[i].name, dtype) == 0)
            code = npy_types[i].code;
    if (!code || ndim < 0 || ndim > BB_NPY_MAX_DIMS)
        return bb_cli_fail(err, BB_ERR_INVALID_RESPONSE, "cannot write %s: dtype %s or its shape is not carried",
                       path, dtype);
    unsigned long long want = itemsize;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && want > UINT64_MAX / (unsigned long long)shape[i]))
            return bb_cli_fail(err, BB_ERR_INVALID_RESPONSE, "cannot write %s: bad shape", path);
        want *= (unsigned long long)shape[i];
    }
    if (want != len)
        return bb_cli_fail(err, BB_ERR_INVALID_RESPONSE, "cannot write %s: %zu bytes for a shape that needs %llu",
                       path, len, want);
    bb_buf h = {0};
    bb_buf_append(&h, npy_magic, sizeof npy_magic);
    bb_buf_append(&h, "\x01\x00\x00\x00", 4);   /* version 1.0, header length filled in below */
    bb_buf_printf(&h, "{'descr': '%c%s', 'fortran_order': False, 'shape': (", itemsize == 1 ? '|' : '<', code);
    for (int i = 0; i < ndim; i++)
        bb_buf_printf(&h, "%s%lld", i ? ", " : "", shape[i]);
    bb_buf_puts(&h, ndim == 1 ? ",), }" : "), }");
    while ((h.len + 1) % 64 != 0)   /* numpy pads the whole header to a multiple of 64 */
        bb_buf_putc(&h, ' ');
    bb_buf_putc(&h, '\n');
    if (h.failed || h.len - 10 > 0xffff) {
        bb_buf_free(&h);
        return bb_cli_fail(err, BB_ERR_INTERNAL, "out of memory");
    }
    h.data[8] = (char)((h.len - 10) & 0xff);
    h.data[9] = (char)((h.len - 10) >> 8);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0) {
        int e = errno;
        bb_buf_free(&h);
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "cannot create %s: %s%s", path, strerror(e),
                       e == EEXIST ? " (existing files are not replaced)" : "");
    }
    /* a new file (O_EXCL): the header at 0, the data after it */
    int rc = pio_full(fd, h.data, h.len, 0, 1) < 0 || (len && pio_full(fd, (void *)data, len, (off_t)h.len, 1) < 0)
                 ? -1
                 : 0;
    int e = errno;
    if (close(fd) < 0 && rc == 0) {
        e = errno;
        rc = -1;
    }
    bb_buf_free(&h);
    if (rc < 0) {
        unlink(path);
        return bb_cli_fail(err, BB_ERR_INTERNAL, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}
