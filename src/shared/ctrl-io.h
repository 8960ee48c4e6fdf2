/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Buffered, non-blocking I/O of one OWAMP-Control connection, with the
 * connection's OwChannel (encryption and running HMACs) applied on the way
 * in and out. Used by owampd's per-connection state machines and by the
 * clients.
 *
 * Incoming bytes are kept raw until the protocol code asks for them: the
 * current message grows block group by block group (ctrl_io_need()), each
 * group decrypted and HMAC-checked in place, until the code has the whole
 * message and drops it (ctrl_io_msg_done()).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-crypto.h"

#define CTRL_IO_MAX_BUFFERED (16u << 20) /* never buffer more than this of incoming data */

typedef struct CtrlIO {
        int fd;
        OwChannel channel;
        bool channel_ready;

        uint8_t *rbuf;
        size_t rlen, rcap;
        size_t msg_len; /* octets at the front of rbuf that are the current message, opened */
        bool eof;

        uint8_t *wbuf;
        size_t wlen, wcap, woff;

        uint64_t bytes_in, bytes_out;
} CtrlIO;

void ctrl_io_init(CtrlIO *io, int fd);
/* Frees the buffers and wipes the channel; does not close the fd. */
void ctrl_io_done(CtrlIO *io);

/* Install the channel once the keys are known (after Set-Up-Response). */
void ctrl_io_set_channel(CtrlIO *io, const OwChannel *ch);

/* Read what the socket has. Returns the number of octets read (0 on EOF,
 * after which io->eof is set), -EAGAIN when nothing was there, or -errno. */
int ctrl_io_read(CtrlIO *io);

/*
 * Extend the current message by n octets if they have arrived. With
 * `protected` (the channel is in use for this part), they are decrypted and
 * fed to the HMAC; with hmac_last, their last block is an HMAC field and is
 * verified. Returns 1 when done, 0 when more octets are needed, or a
 * negative error (-OW_ERR_HMAC: drop the connection).
 */
int ctrl_io_need(CtrlIO *io, size_t n, bool protected, bool hmac_last);

/* The current message so far (plaintext), and dropping it. */
static inline const uint8_t *ctrl_io_msg(const CtrlIO *io) {
        return io->rbuf;
}
void ctrl_io_msg_done(CtrlIO *io);

/* Octets received beyond the current message. */
static inline size_t ctrl_io_pending(const CtrlIO *io) {
        return io->rlen - io->msg_len;
}

/* Queue octets: clear, or sealed in place with the channel first. */
int ctrl_io_queue_clear(CtrlIO *io, const void *buf, size_t len);
int ctrl_io_queue_sealed(CtrlIO *io, uint8_t *buf, size_t len, bool hmac_last);

/* Write what is queued. Returns 0 when everything was written, 1 when some
 * is left (wait for POLLOUT), or -errno. */
int ctrl_io_flush(CtrlIO *io);

static inline bool ctrl_io_want_write(const CtrlIO *io) {
        return io->wlen > io->woff;
}
static inline size_t ctrl_io_queued(const CtrlIO *io) {
        return io->wlen - io->woff;
}

/* Blocking helpers for the clients: wait (poll) up to timeout_msec for n
 * more octets of the current message / for the queue to drain. -ETIMEDOUT,
 * -ECONNRESET on EOF. */
int ctrl_io_need_blocking(CtrlIO *io, size_t n, bool protected, bool hmac_last, int timeout_msec);
int ctrl_io_flush_blocking(CtrlIO *io, int timeout_msec);
