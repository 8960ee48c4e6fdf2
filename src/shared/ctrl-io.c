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
#include "units.h"

void ctrl_io_init(CtrlIO *io, int fd) {
        assert(io);
        *io = (CtrlIO){ .fd = fd };
}

int ctrl_io_attach(CtrlIO *io, int fd, OwControlRole role) {
        return ctrl_io_attach_protocol(io, fd, &ow_protocol_owamp, role);
}

int ctrl_io_attach_protocol(CtrlIO *io, int fd, const OwProtocol *p, OwControlRole role) {
        OwEngine *e;
        int r;

        assert(io);
        assert(p);
        assert(!io->engine);
        r = ow_engine_new(p, role, &e);
        if (r < 0)
                return r;
        *io = (CtrlIO){ .fd = fd, .engine = e };
        return 0;
}

void ctrl_io_done(CtrlIO *io) {
        assert(io);
        ow_engine_free(io->engine);
        *io = (CtrlIO){ .fd = -1 };
}

int ctrl_io_read(CtrlIO *io) {
        size_t space;
        uint8_t *p;

        assert(io);
        assert(io->engine);
        p = ow_engine_feed_buffer(io->engine, &space);
        if (!p)
                return ow_engine_input_pending(io->engine) >= OW_ENGINE_MAX_INPUT ? -ENOBUFS : -ENOMEM;
        for (;;) {
                ssize_t n = recv(io->fd, p, space, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
                }
                if (n == 0)
                        io->eof = true;
                (void) ow_engine_feed_commit(io->engine, (size_t) n);
                io->bytes_in += (size_t) n;
                return (int) n;
        }
}

int ctrl_io_flush(CtrlIO *io) {
        assert(io);
        if (!io->engine)
                return 0;
        for (;;) {
                size_t len;
                const uint8_t *p = ow_engine_output(io->engine, &len);
                ssize_t n;

                if (len == 0)
                        return 0;
                n = send(io->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 1;
                        return -errno;
                }
                ow_engine_output_done(io->engine, (size_t) n);
                io->bytes_out += (size_t) n;
        }
}

static int64_t now_msec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * (int64_t) MSEC_PER_SEC + ts.tv_nsec / (int64_t) NSEC_PER_MSEC;
}

/* Wait up to the deadline for events on the socket: 1 ready, 0 timed out. */
static int wait_fd(const CtrlIO *io, short events, int64_t deadline) {
        for (;;) {
                int64_t left = deadline - now_msec();
                struct pollfd p = { .fd = io->fd, .events = events };
                int r;

                if (left <= 0)
                        return 0;
                r = poll(&p, 1, (int) MIN(left, (int64_t) INT32_MAX));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                return r > 0;
        }
}

int ctrl_io_next_event_blocking(CtrlIO *io, OwEvent *ret, int timeout_msec) {
        int64_t deadline = now_msec() + timeout_msec;

        assert(io);
        assert(io->engine);
        for (;;) {
                int r = ow_engine_poll(io->engine, ret);
                if (r != 0)
                        return r;
                if (io->eof)
                        return -ECONNRESET;
                r = wait_fd(io, POLLIN, deadline);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
                r = ctrl_io_read(io);
                if (r < 0 && r != -EAGAIN)
                        return r;
        }
}

int ctrl_io_flush_blocking(CtrlIO *io, int timeout_msec) {
        int64_t deadline = now_msec() + timeout_msec;

        assert(io);
        for (;;) {
                int r = ctrl_io_flush(io);
                if (r <= 0)
                        return r;
                r = wait_fd(io, POLLOUT, deadline);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
        }
}
