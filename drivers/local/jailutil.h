/* jailutil.h: small helpers shared by the jail layers (ns.c, fs.c, cgroup.c, caps.c,
 * rlimits.c, probe.c): error text into a caller's buffer and whole-file I/O without malloc. */
#ifndef BB_JAILUTIL_H
#define BB_JAILUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* An errno as text without touching locale data or the heap (async-signal-safe
 * enough for a child after fork). */
static inline const char *bb_jail_strerror(int e)
{
    const char *s = strerrordesc_np(e);
    return s ? s : "unknown error";
}

/* Writes "fmt…" into errbuf (if any); always returns -1. */
__attribute__((format(printf, 3, 4))) static inline int bb_jail_fail(char *errbuf, size_t errlen,
                                                                     const char *fmt, ...)
{
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Writes the whole text to path (an existing kernel file such as a cgroup or /proc
 * knob): O_WRONLY|O_NOFOLLOW|O_CLOEXEC. Returns 0 or -1 with errno set. */
static inline int bb_jail_write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int saved = errno;
    close(fd);
    if (n < 0) {
        errno = saved;
        return -1;
    }
    if ((size_t)n != len) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* Reads up to len-1 bytes of path into buf (NUL-terminated), never following a
 * final symlink. Returns the byte count or -1 with errno set. */
static inline ssize_t bb_jail_read_file(const char *path, char *buf, size_t len)
{
    if (!len) {
        errno = EINVAL;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

#endif
