/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The client side of OWAMP-Control, shared by owping, owfetch and owup:
 * connect, authenticate, request sessions, start them, exchange
 * Stop-Sessions and fetch stored sessions. Calls block, each bounded by
 * the client's timeout; errors come back as a negative code plus a one-line
 * reason in client->error (these functions never print: their callers do).
 *
 * A thin adapter: the protocol is the control engine's
 * (ow-control-engine.h), which c->io carries; this file only waits for the
 * engine's events and turns them into these calls' results. The
 * non-blocking client for sd-event programs is client-async.h.
 */

#include <stdbool.h>
#include <stdint.h>

#include "ctrl-io.h"
#include "net.h"
#include "ow-control-engine.h"
#include "ow-control.h"
#include "ow-crypto.h"
#include "ow-types.h"

/* What every wait for the server is bounded by, unless told otherwise. */
#define CLIENT_TIMEOUT_MSEC_DEFAULT 60000

typedef struct ClientOptions {
        const char *server;     /* "host[:port]" */
        const char *source;     /* -S: local address for control and tests, or NULL */
        const char *interface;  /* -B: network interface for control and tests, or NULL */
        int family;             /* AF_UNSPEC, AF_INET (-4) or AF_INET6 (-6) */
        uint32_t modes;         /* acceptable modes (-A) */
        const char *keyid;      /* -u, or NULL */
        const uint8_t *secret;  /* pass-phrase, when keyid */
        size_t secret_len;
        int timeout_msec;       /* bound on every wait for the server */
        /* NULL: OWAMP; &ow_protocol_twamp for TWAMP-Control (modes may hold Mixed) */
        const OwProtocol *protocol;
} ClientOptions;

typedef struct Client {
        int fd;
        CtrlIO io;
        SockAddr local, peer;
        OwMode mode;
        OwControlKeys keys;
        OwTimestamp server_start_time;
        uint64_t rtt_usec; /* Set-Up-Response sent -> Server-Start received */
        uint32_t pbkdf2_count; /* the greeting's, in modes A and E */
        bool pbkdf2_count_odd; /* ... and it is not a power of two (RFC 4656 3.1 asks for one) */
        int timeout_msec;
        char error[256];
} Client;

void client_init(Client *c);
void client_done(Client *c);

int client_connect(Client *c, const ClientOptions *o);

/* Send a Request-Session and read the Accept-Session. On Accept OK, fills
 * in the server's port (sender or receiver port, whichever the server
 * runs) and, when the server receives, its SID into req. */
int client_request_session(Client *c, OwSessionRequest *req, OwAccept *ret_accept);

int client_start_sessions(Client *c, OwAccept *ret_accept);

int client_send_stop(Client *c, const OwStopSessions *st);

/* Incremental read of the server's Stop-Sessions during a test: returns 1
 * and fills *ret when a whole one has arrived, 0 if not yet (call again
 * when the socket is readable), or an error (including any other command,
 * which is a protocol error). */
int client_poll_stop(Client *c, OwStopSessions *ret);

typedef struct ClientFetch {
        OwFetchAck ack;
        OwSessionRequest req; /* slots owned */
        OwSkipRange *skips;
        OwRecord *records;
} ClientFetch;

void client_fetch_done(ClientFetch *f);

/* Fetch-Session and its whole answer. Returns 0 with f->ack.accept telling
 * whether the server agreed (the parts are only there when it did). */
int client_fetch(Client *c, uint32_t begin, uint32_t end, const OwSid *sid, ClientFetch *f);

/* The parts of a connection's set-up both clients share (client-async.c
 * too). Each returns an error with a one-line reason in err. */
typedef struct ClientTarget {
        SockAddr *addrs; /* the server's, in the order to try */
        size_t n_addrs;
        SockAddr *src; /* -S, or NULL */
        size_t n_src;
} ClientTarget;

int client_target_resolve(const ClientOptions *o, ClientTarget *ret, char *err, size_t err_size);
void client_target_done(ClientTarget *t);
/* A non-blocking TCP socket for t->addrs[i], on -B's interface and bound
 * to a -S address of its family: the fd, -EADDRNOTAVAIL when there is no
 * such address (try the next one), or another -errno; err is set (not
 * empty) only when the interface cannot be used, and no other address
 * will do better. */
int client_target_socket(const ClientOptions *o, const ClientTarget *t, size_t i, char *err,
                         size_t err_size);
/* A connected control socket: TCP_NODELAY, and its local address. */
int client_socket_connected(int fd, SockAddr *ret_local);
/* The answer to a Server Greeting: picks the mode from what the server
 * offers and o allows, makes random session keys (into *ret_keys) and
 * Client-IV, and queues the Set-Up-Response in the engine. Returns the
 * mode; *ret_count_odd when the server's PBKDF2 count is not a power of
 * two (the caller may warn). */
int client_answer_greeting(const ClientOptions *o, const OwServerGreeting *g, OwEngine *e,
                           OwControlKeys *ret_keys, bool *ret_count_odd, char *err, size_t err_size);

/* Time from the NTP clock, shifted by OWAMP_DEBUG_TIMEOFFSET like the
 * server's. */
OwTimestamp client_now(void);
int64_t client_clock_offset_nsec(void);
