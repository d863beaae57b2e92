/* proto.c: sending and receiving zygote control messages with their fds, and the
 * exact-length reads and writes the frame protocol needs. */
#include "proto.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int bb_zsend(int sock, const bb_zmsg *msg, const int *fds, int nfds)
{
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = sizeof *msg};
    union {
        char buf[CMSG_SPACE(BB_ZMSG_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        mh.msg_control = control.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof *msg ? 0 : -1;
}

int bb_zrecv(int sock, bb_zmsg *msg, int *fds, int maxfds)
{
    for (int i = 0; i < maxfds; i++)
        fds[i] = -1;
    struct iovec iov = {.iov_base = msg, .iov_len = sizeof *msg};
    union {
        char buf[CMSG_SPACE(BB_ZMSG_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                        .msg_controllen = sizeof control.buf};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    int got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int nf = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int tmp[8];
        if (nf > 8)
            nf = 8;
        memcpy(tmp, CMSG_DATA(c), (size_t)nf * sizeof(int));
        for (int i = 0; i < nf; i++) {
            if (got < maxfds)
                fds[got++] = tmp[i];
            else
                close(tmp[i]);
        }
    }
    if (n != (ssize_t)sizeof *msg || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
        msg->magic != BB_ZYGOTE_MAGIC) {
        for (int i = 0; i < got; i++) {
            close(fds[i]);
            fds[i] = -1;
        }
        if (n >= 0)
            errno = n == 0 ? 0 : EPROTO;
        return -1;
    }
    msg->text[sizeof msg->text - 1] = '\0';
    msg->init.policy_path[sizeof msg->init.policy_path - 1] = '\0';
    return 0;
}

/* All of len bytes through read (reading) or write, short transfers and EINTR retried;
 * a read that meets the end first fails with errno 0. */
static int transfer_all(int fd, char *p, size_t len, int reading)
{
    while (len) {
        ssize_t n = reading ? read(fd, p, len) : write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0 && reading) {
            errno = 0;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int bb_write_all(int fd, const void *buf, size_t len) { return transfer_all(fd, (char *)buf, len, 0); }

int bb_read_all(int fd, void *buf, size_t len) { return transfer_all(fd, buf, len, 1); }

void bb_frame_header(uint32_t len, unsigned char out[4])
{
    out[0] = (unsigned char)len;
    out[1] = (unsigned char)(len >> 8);
    out[2] = (unsigned char)(len >> 16);
    out[3] = (unsigned char)(len >> 24);
}

uint32_t bb_frame_length(const unsigned char in[4])
{
    return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}
