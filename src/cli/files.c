/* files.c: reads the CLI's input files whole, but never more than a cap: a file
 * that is too big is refused from its size alone, before any byte is read. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static int too_big(const char *what, const char *path, size_t max, bb_error **err)
{
    return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "%s %s is larger than the limit of %zu bytes", what,
                   path, max);
}

int bb_cli_read_file(const char *path, size_t max, const char *what, char **out, size_t *len,
                     bb_error **err)
{
    *out = NULL;
    *len = 0;
    int is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "cannot open %s %s: %s", what, path,
                       strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
        if (!is_stdin)
            close(fd);
        return bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "cannot read %s %s: %s", what, path, strerror(e));
    }
    if (S_ISREG(st.st_mode) && (unsigned long long)st.st_size > max) {
        if (!is_stdin)
            close(fd);
        return too_big(what, path, max, err);
    }
    /* Regular files: their size (re-checked while reading, they may grow). Pipes and
     * other streams: read in chunks up to max + 1. */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
    if (cap > max + 1)
        cap = max + 1;
    char *data = malloc(cap + 1);
    size_t used = 0;
    int rc = 0;
    while (data) {
        if (used == cap) {
            if (cap > max) {
                rc = too_big(what, path, max, err);
                break;
            }
            size_t grow = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *bigger = realloc(data, grow + 1);
            if (!bigger) {
                free(data);
                data = NULL;
                break;
            }
            data = bigger;
            cap = grow;
        }
        ssize_t n = read(fd, data + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = bb_cli_fail(err, BB_ERR_INVALID_REQUEST, "cannot read %s %s: %s", what, path,
                         strerror(errno));
            break;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (!is_stdin)
        close(fd);
    if (!data)
        return bb_cli_fail(err, BB_ERR_INTERNAL, "out of memory reading %s", path);
    if (rc == 0 && used > max)
        rc = too_big(what, path, max, err);
    if (rc < 0) {
        free(data);
        return -1;
    }
    data[used] = '\0';
    *out = data;
    *len = used;
    return 0;
}
