/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* One OWAMP-Control connection on the server side (conn.c), and the
 * fetches it answers (fetch-wait.c, datastore.c's FetchSink). */

#include "ctrl-io.h"
#include "datastore.h"
#include "fetch-wait.h"
#include "ow-control.h"
#include "ow-crypto.h"
#include "server.h"
#include "session.h"

typedef enum ConnState {
        CONN_SETUP,      /* greeting sent, waiting for Set-Up-Response */
        CONN_IDLE,       /* waiting for a command */
        CONN_STARTING,   /* Start-Sessions received, workers starting */
        CONN_TESTING,    /* sessions running */
        CONN_STOPPING,   /* Stop-Sessions received first; waiting for our workers */
        CONN_STOP_SENT,  /* our Stop-Sessions sent; waiting for the peer's */
        CONN_CLOSING,    /* flushing the last message, then close */
        CONN_CLOSED,     /* closed: on Server.closing, freed from the event loop */
} ConnState;

/* What a connection shows of itself (the struct is conn.c's). */
ConnState conn_state(const Conn *c);
const SessionOwner *conn_owner(const Conn *c);
/* A fetch answer's records are still being produced as the socket takes them. */
bool conn_fetch_streaming(const Conn *c);


/* A new connection on fd (taken) from peer: greeted, or refused. */
int conn_new(Server *s, int fd, const SockAddr *peer);
/* The owner's end of a connection: never from one of c's own callbacks
 * (those close it, conn_close(), and the server frees it later). */
Conn *conn_free(Conn *c);
void conn_log_internal(const char *file, int line, Conn *c, int priority, const char *message_id,
                       const char *fmt, ...) _printf_(6, 7);
#define conn_log(c, ...) conn_log_internal(__FILE__, __LINE__, (c), __VA_ARGS__)
/* Its fields for a journal line: peer, mode, key id. */
LogFields conn_log_fields(const Conn *c, const char *message_id);
/* How long the start of a batch may go without another of its workers
 * becoming ready: 30 s, or OWAMP_DEBUG_START_TIMEOUT seconds (0.1 to 600).
 * -EINVAL when malformed. */
int start_timeout_from_env(uint64_t *ret_usec);
