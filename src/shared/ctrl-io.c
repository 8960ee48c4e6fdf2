/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctrl-io.h"
#include "macro.h"
#include "ow-error.h"

void ctrl_io_init(CtrlIO *io, int fd) {
        *io = (CtrlIO) { .fd = fd };
}

void ctrl_io_done(CtrlIO *io) {
        if (io->channel_ready)
                ow_channel_wipe(&io->channel);
        if (io->rbuf) {
                ow_wipe(io->rbuf, io->rcap);
                free(io->rbuf);
        }
        free(io->wbuf);
        *io = (CtrlIO) { .fd = -1 };
}

void ctrl_io_set_channel(CtrlIO *io, const OwChannel *ch) {
        io->channel = *ch;
        io->channel_ready = true;
}

static int reserve(uint8_t **buf, size_t *cap, size_t need) {
        if (need <= *cap)
                return 0;
        size_t n = MAX(*cap * 2, need);
        n = MAX(n, (size_t) 4096);
        uint8_t *b = realloc(*buf, n);
        if (!b)
                return -ENOMEM;
        *buf = b;
        *cap = n;
        return 0;
}

int ctrl_io_read(CtrlIO *io) {
        if (io->rlen >= CTRL_IO_MAX_BUFFERED)
                return -ENOBUFS;
        int r = reserve(&io->rbuf, &io->rcap, io->rlen + 16384);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = recv(io->fd, io->rbuf + io->rlen, io->rcap - io->rlen, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
                }
                if (n == 0)
                        io->eof = true;
                io->rlen += (size_t) n;
                io->bytes_in += (size_t) n;
                return (int) n;
        }
}

int ctrl_io_need(CtrlIO *io, size_t n, bool protected, bool hmac_last) {
        if (io->rlen - io->msg_len < n)
                return 0;
        if (protected) {
                if (!io->channel_ready)
                        return -EINVAL;
                int r = ow_channel_open(&io->channel, io->rbuf + io->msg_len, n, hmac_last);
                if (r < 0)
                        return r;
        }
        io->msg_len += n;
        return 1;
}

void ctrl_io_msg_done(CtrlIO *io) {
        size_t rest = io->rlen - io->msg_len;
        /* Plaintext of the finished message must not linger in the buffer. */
        ow_wipe(io->rbuf, io->msg_len);
        memmove(io->rbuf, io->rbuf + io->msg_len, rest);
        io->rlen = rest;
        io->msg_len = 0;
}

int ctrl_io_queue_clear(CtrlIO *io, const void *buf, size_t len) {
        if (io->woff > 0 && io->woff == io->wlen)
                io->woff = io->wlen = 0;
        int r = reserve(&io->wbuf, &io->wcap, io->wlen + len);
        if (r < 0)
                return r;
        memcpy(io->wbuf + io->wlen, buf, len);
        io->wlen += len;
        return 0;
}

int ctrl_io_queue_sealed(CtrlIO *io, uint8_t *buf, size_t len, bool hmac_last) {
        if (!io->channel_ready)
                return -EINVAL;
        int r = ow_channel_seal(&io->channel, buf, len, hmac_last);
        if (r < 0)
                return r;
        return ctrl_io_queue_clear(io, buf, len);
}

int ctrl_io_flush(CtrlIO *io) {
        while (io->woff < io->wlen) {
                ssize_t n = send(io->fd, io->wbuf + io->woff, io->wlen - io->woff, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 1;
                        return -errno;
                }
                io->woff += (size_t) n;
                io->bytes_out += (size_t) n;
        }
        io->woff = io->wlen = 0;
        return 0;
}

static int64_t now_msec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ctrl_io_need_blocking(CtrlIO *io, size_t n, bool protected, bool hmac_last, int timeout_msec) {
        int64_t end = now_msec() + timeout_msec;
        for (;;) {
                int r = ctrl_io_need(io, n, protected, hmac_last);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (io->eof)
                        return -ECONNRESET;
                int64_t left = end - now_msec();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = io->fd, .events = POLLIN };
                r = poll(&p, 1, (int) left);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                r = ctrl_io_read(io);
                if (r < 0 && r != -EAGAIN)
                        return r;
        }
}

int ctrl_io_flush_blocking(CtrlIO *io, int timeout_msec) {
        int64_t end = now_msec() + timeout_msec;
        for (;;) {
                int r = ctrl_io_flush(io);
                if (r <= 0)
                        return r;
                int64_t left = end - now_msec();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = io->fd, .events = POLLOUT };
                r = poll(&p, 1, (int) left);
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}
