/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The socket side of one OWAMP-Control connection: moves octets between a
 * non-blocking TCP socket and the connection's control engine
 * (ow-control-engine.h), which does all the protocol, framing and crypto.
 * Used by owampd's connections and by the clients; the blocking helpers at
 * the end are for the clients of owping, owfetch and owup.
 *
 * Neither the engine nor this layer logs: the callers do, with the error
 * these return.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-control-engine.h"

typedef struct CtrlIO {
        int fd;           /* not owned */
        OwEngine *engine; /* owned */
        bool eof;
        uint64_t bytes_in, bytes_out;
} CtrlIO;

/* No engine yet; ctrl_io_done() is safe from here on. */
void ctrl_io_init(CtrlIO *io, int fd);
/* Create the engine for our end of the connection: OWAMP's, or the given
 * protocol's (ow_protocol_twamp). */
int ctrl_io_attach(CtrlIO *io, int fd, OwControlRole role);
int ctrl_io_attach_protocol(CtrlIO *io, int fd, const OwProtocol *p, OwControlRole role);
/* Frees the engine (wiping its keys and buffers); does not close the fd. */
void ctrl_io_done(CtrlIO *io);

/* Read what the socket has into the engine. Returns the number of octets
 * read (0 on EOF, after which io->eof is set), -EAGAIN when nothing was
 * there, -ENOBUFS when the engine holds OW_ENGINE_MAX_INPUT unread, or
 * -errno. */
int ctrl_io_read(CtrlIO *io);

/* Write what the engine has queued. Returns 0 when everything was written,
 * 1 when some is left (wait for POLLOUT), or -errno. */
int ctrl_io_flush(CtrlIO *io);

static inline bool ctrl_io_want_write(const CtrlIO *io) {
        return io->engine && ow_engine_output_pending(io->engine) > 0;
}

/* Blocking helpers for the clients: the next event of the engine, reading
 * as needed (1, or -ETIMEDOUT, -ECONNRESET on EOF, the engine's protocol
 * error, -errno); the queue drained. Each bounded by timeout_msec. */
int ctrl_io_next_event_blocking(CtrlIO *io, OwEvent *ret, int timeout_msec);
int ctrl_io_flush_blocking(CtrlIO *io, int timeout_msec);
