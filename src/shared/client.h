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
} ClientOptions;

typedef struct Client {
        int fd;
        CtrlIO io;
        SockAddr local, peer;
        OwMode mode;
        OwControlKeys keys;
        OwTimestamp server_start_time;
        uint64_t rtt_usec; /* Set-Up-Response sent -> Server-Start received */
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

/* Time from the NTP clock, shifted by OWAMP_DEBUG_TIMEOFFSET like the
 * server's. */
OwTimestamp client_now(void);
int64_t client_clock_offset_nsec(void);
