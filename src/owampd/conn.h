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

struct Conn {
        Server *server;
        LIST_FIELDS(Conn, conns);
        LIST_FIELDS(Conn, closing); /* on Server.closing once CONN_CLOSED */

        int fd;
        CtrlIO io; /* the socket and the control engine (all the protocol) */
        sd_event_source *io_source;
        uint32_t io_events; /* what io_source waits for (EPOLLET always) */
        sd_event_source *timer_source;
        sd_event_source *session_source; /* defer: a session changed (on_session_changed()) */
        ConnState state;

        /* Who it is (peer, local, mode, key id, keys, class) and its
         * sessions, as its sessions see them (session.h). */
        SessionOwner owner;

        uint32_t modes_offered;
        uint64_t policy_generation;

        unsigned n_started; /* workers of the batch being started that are ready: each new one re-arms the deadline */
        bool our_stop_sent;
        bool peer_stop_received;
        uint8_t peer_stop_accept;
        OwTimestamp peer_stop_time;
        OwStopSessions peer_stop;
        bool any_failure;
        bool stopping_for_failure; /* a session failed mid-test: the others were told to stop */

        /* Limits against hostile clients (guard.c). */
        bool guarded;            /* counted against its source's connections */
        bool auth_backoff;       /* its source was in a back-off at the greeting */
        bool quiet_close;        /* refused with a line counted, not logged: its close at debug level */
        uint64_t setup_deadline; /* CLOCK_MONOTONIC usec: set-up and first command by then; 0: done */

        FetchStream *fetch_stream; /* the records of a fetch answer still to produce (datastore.c) */
        FetchWait *fetch_wait; /* a whole-session fetch waiting for its session to end; reads nothing else */
};

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
