/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The non-blocking client side of OWAMP-Control, on sd-event: for programs
 * that keep a control connection open, overlap the set-up of sessions, and
 * reconnect when the connection goes (powstream). The protocol is the
 * control engine's (ow-control-engine.h); this is the socket, the timer
 * and the bookkeeping of who waits for which answer.
 *
 *     client_async_new(event, &options, &callbacks, userdata, &c);
 *     client_async_connect(c);                      // callbacks.ready() once set up
 *     client_async_request_session(c, &req, on_accept, x);   // several at once
 *     client_async_start_sessions(c, on_start_ack, y);
 *     ... callbacks.stop_sessions() with the server's; client_async_stop_sessions(c, &ours);
 *     client_async_fetch(c, &fetch, on_fetch_part, z);       // one call per part
 *     ... callbacks.disconnected(): client_async_connect(c) again when wanted
 *
 * Answers come in the order of the commands, each to its own callback.
 * When the connection fails, every callback still waiting is called with
 * the error (and no event) before callbacks.disconnected(). Nothing here
 * prints or logs: errors come with a one-line reason, for the caller to
 * report. Callbacks may send more commands, disconnect or reconnect, but
 * must not free the client: free it from outside its callbacks.
 */

#include <stdbool.h>

#include <systemd/sd-event.h>

#include "client.h"
#include "net.h"
#include "ow-control-engine.h"

typedef struct ClientAsync ClientAsync;

typedef enum ClientAsyncState {
        CLIENT_ASYNC_IDLE,       /* not connected: new, or after a failure or disconnect */
        CLIENT_ASYNC_CONNECTING, /* TCP connect and the set-up in progress */
        CLIENT_ASYNC_READY,      /* set up: commands may be sent */
} ClientAsyncState;

/* The answer to one command: error 0 and the event (Accept-Session,
 * Start-Ack, or a fetch's parts one call each, from its Fetch-Ack to
 * OW_EVENT_FETCH_DONE or a refusing Fetch-Ack), or error < 0 and no event
 * when the connection failed first. The callee may steal what the event
 * owns (setting the pointer to NULL); the rest is freed after the call. */
typedef void (*ClientAsyncReplyFn)(ClientAsync *c, int error, OwEvent *ev, void *userdata);

typedef struct ClientAsyncCallbacks {
        /* Set up: Server-Start accepted. */
        void (*ready)(ClientAsync *c, void *userdata);
        /* The server's Stop-Sessions (owned by the callee) during a test. */
        void (*stop_sessions)(ClientAsync *c, OwStopSessions *st, void *userdata);
        /* The connection is gone (or never came up, or the server refused
         * it): error and reason. The client is IDLE again. */
        void (*disconnected)(ClientAsync *c, int error, const char *reason, void *userdata);
} ClientAsyncCallbacks;

/* o (and the strings it points to) must outlive the client. */
int client_async_new(sd_event *event, const ClientOptions *o, const ClientAsyncCallbacks *cb, void *userdata,
                     ClientAsync **ret);
ClientAsync *client_async_free(ClientAsync *c);

/* Connect to o->server (resolved the first time, blocking on the
 * resolver), then set up; again after a disconnect to reconnect. */
int client_async_connect(ClientAsync *c);
/* Set up over a socket already connected (taken over, closed with the
 * connection). */
int client_async_connect_fd(ClientAsync *c, int fd);
/* Close the connection now; waiting callbacks get -ECANCELED, and
 * callbacks.disconnected() is not called. */
void client_async_disconnect(ClientAsync *c);

int client_async_request_session(ClientAsync *c, const OwSessionRequest *req, ClientAsyncReplyFn fn,
                                 void *userdata);
int client_async_start_sessions(ClientAsync *c, ClientAsyncReplyFn fn, void *userdata);
int client_async_stop_sessions(ClientAsync *c, const OwStopSessions *st);
int client_async_fetch(ClientAsync *c, const OwFetchSession *f, ClientAsyncReplyFn fn, void *userdata);

typedef struct ClientAsyncInfo {
        OwMode mode;
        OwControlKeys keys; /* modes A and E: for the test packets' keys (ow_testpkt_derive_keys()) */
        OwTimestamp server_start_time;
        SockAddr local, peer;
} ClientAsyncInfo;

ClientAsyncState client_async_state(const ClientAsync *c);
/* What the set-up settled, once READY (NULL otherwise). */
const ClientAsyncInfo *client_async_info(const ClientAsync *c);
/* Commands sent and not answered yet. */
unsigned client_async_pending(const ClientAsync *c);
