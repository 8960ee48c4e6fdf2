/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The sd-event client (client-async.h). One connection at a time:
 *
 *   IDLE --connect--> CONNECTING (TCP, then greeting, Set-Up-Response,
 *   Server-Start) --Accept 0--> READY --failure, EOF, timeout--> IDLE
 *
 * The timer bounds every wait for the server (o->timeout_msec): the
 * connect, each message of the set-up, each answer, our Stop-Sessions'
 * counterpart; it restarts whenever octets come in, so a long fetch is
 * fine as long as it keeps coming.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "client-async.h"
#include "ctrl-io.h"
#include "macro.h"
#include "ow-error.h"
#include "units.h"

/* As many as the engine lets a client have unanswered. */
#define MAX_WAITING 64u

/* Reads of the socket per wake-up, so a fast server cannot starve the
 * rest of the loop. */
#define READS_PER_WAKEUP 16

typedef struct Waiter {
        ClientAsyncReplyFn fn;
        void *userdata;
        bool fetch; /* several calls, until the fetch answer is complete */
} Waiter;

struct ClientAsync {
        sd_event *event;
        const ClientOptions *o;
        ClientAsyncCallbacks cb;
        void *userdata;
        uint64_t timeout_usec;

        ClientTarget target;
        bool resolved;
        size_t next_addr;
        int last_connect_error;

        ClientAsyncState state;
        int fd;
        bool tcp_up;
        CtrlIO io;
        sd_event_source *io_source;
        sd_event_source *timer_source;
        ClientAsyncInfo info; /* once READY; keys also during the set-up */

        Waiter waiting[MAX_WAITING];
        unsigned head, n_waiting;
        unsigned generation; /* counts connections: a callback may have replaced ours */
        char error[256];
};

static int try_connect(ClientAsync *c);
static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

int client_async_new(sd_event *event, const ClientOptions *o, const ClientAsyncCallbacks *cb, void *userdata,
                     ClientAsync **ret) {
        ClientAsync *c;
        int r;

        assert(event);
        assert(o);
        assert(cb);
        assert(ret);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (ClientAsync){
                .event = sd_event_ref(event),
                .o = o,
                .cb = *cb,
                .userdata = userdata,
                .timeout_usec =
                        (uint64_t) (o->timeout_msec > 0 ? o->timeout_msec : CLIENT_TIMEOUT_MSEC_DEFAULT) *
                        USEC_PER_MSEC,
                .fd = -1,
        };
        ctrl_io_init(&c->io, -1);
        r = sd_event_add_time(event, &c->timer_source, CLOCK_MONOTONIC, UINT64_MAX, 0, on_timer, c);
        if (r < 0) {
                client_async_free(c);
                return r;
        }
        (void) sd_event_source_set_description(c->timer_source, "control-client-timeout");
        (void) sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
        *ret = c;
        return 0;
}

static void close_connection(ClientAsync *c) {
        c->io_source = sd_event_source_disable_unref(c->io_source);
        (void) sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
        ctrl_io_done(&c->io);
        c->fd = safe_close(c->fd);
        c->tcp_up = false;
        ow_wipe(&c->info, sizeof(c->info));
        c->state = CLIENT_ASYNC_IDLE;
        c->generation++;
}

/* Every waiting callback, with the error; they may reconnect. */
static void cancel_waiting(ClientAsync *c, int error) {
        Waiter w[MAX_WAITING];
        unsigned n = c->n_waiting;

        for (unsigned i = 0; i < n; i++)
                w[i] = c->waiting[(c->head + i) % MAX_WAITING];
        c->head = c->n_waiting = 0;
        for (unsigned i = 0; i < n; i++)
                w[i].fn(c, error, NULL, w[i].userdata);
}

static void fail(ClientAsync *c, int error, const char *fmt, ...) _printf_(3, 4);
static void fail(ClientAsync *c, int error, const char *fmt, ...) {
        char reason[sizeof(c->error)];
        va_list ap;

        assert(error < 0);
        /* Via a copy: the reason may be c->error itself. */
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        memcpy(c->error, reason, sizeof(reason));
        close_connection(c);
        cancel_waiting(c, error);
        if (c->cb.disconnected)
                c->cb.disconnected(c, error, c->error, c->userdata);
}

ClientAsync *client_async_free(ClientAsync *c) {
        if (!c)
                return NULL;
        close_connection(c);
        cancel_waiting(c, -ECANCELED);
        sd_event_source_disable_unref(c->timer_source);
        client_target_done(&c->target);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

void client_async_disconnect(ClientAsync *c) {
        assert(c);
        close_connection(c);
        cancel_waiting(c, -ECANCELED);
}

/* Wait for the server no longer than the timeout, from now; or not at all
 * when nothing of ours is waiting (a test running). */
static void arm_timer(ClientAsync *c) {
        bool waiting = c->state == CLIENT_ASYNC_CONNECTING ||
                       (c->io.engine && ow_engine_awaiting_peer(c->io.engine));

        if (!waiting) {
                (void) sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
                return;
        }
        uint64_t now;
        (void) sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(c->timer_source, now + c->timeout_usec);
        (void) sd_event_source_set_enabled(c->timer_source, SD_EVENT_ONESHOT);
}

static void update_events(ClientAsync *c) {
        uint32_t ev = EPOLLIN;

        if (!c->io_source)
                return;
        if (!c->tcp_up || ctrl_io_want_write(&c->io))
                ev |= EPOLLOUT;
        (void) sd_event_source_set_io_events(c->io_source, ev);
}

/* After queuing something: try to send it at once. */
static int flush(ClientAsync *c) {
        int r = ctrl_io_flush(&c->io);

        if (r < 0) {
                fail(c, r, "cannot send to the server: %s", strerror(-r));
                return r;
        }
        update_events(c);
        arm_timer(c);
        return 0;
}

static Waiter *waiter_head(ClientAsync *c) {
        return c->n_waiting > 0 ? &c->waiting[c->head] : NULL;
}

static void waiter_pop(ClientAsync *c) {
        c->head = (c->head + 1) % MAX_WAITING;
        c->n_waiting--;
}

/* One event from the engine. */
static void dispatch(ClientAsync *c, OwEvent *ev) {
        unsigned gen = c->generation;
        bool count_odd;
        Waiter w;
        int r;

        switch (ev->type) {
        case OW_EVENT_GREETING:
                r = client_answer_greeting(c->o, &ev->greeting, c->io.engine, &c->info.keys, &count_odd,
                                           c->error, sizeof(c->error));
                if (r < 0) {
                        fail(c, r, "%s", c->error);
                        return;
                }
                c->info.mode = (OwMode) r;
                (void) flush(c);
                return;

        case OW_EVENT_SERVER_START:
                if (ev->server_start.accept != OW_ACCEPT_OK) {
                        fail(c, -EACCES, "server refused the connection: %s%s",
                             ow_accept_to_string(ev->server_start.accept),
                             c->info.mode != OW_MODE_OPEN ? " (wrong key id or passphrase?)" : "");
                        return;
                }
                c->info.server_start_time = ev->server_start.start_time;
                c->state = CLIENT_ASYNC_READY;
                arm_timer(c);
                if (c->cb.ready)
                        c->cb.ready(c, c->userdata);
                return;

        case OW_EVENT_STOP_SESSIONS:
                if (c->cb.stop_sessions) {
                        OwStopSessions st = TAKE_STRUCT(ev->stop);
                        c->cb.stop_sessions(c, &st, c->userdata);
                }
                arm_timer(c);
                return;

        case OW_EVENT_ACCEPT_SESSION:
        case OW_EVENT_START_ACK:
        case OW_EVENT_FETCH_ACK:
        case OW_EVENT_FETCH_REQUEST:
        case OW_EVENT_FETCH_SKIPS:
        case OW_EVENT_FETCH_RECORDS:
        case OW_EVENT_FETCH_DONE: {
                Waiter *h = waiter_head(c);
                bool last;

                /* The engine pairs answers with commands: one is waiting. */
                assert(h);
                w = *h;
                last = !w.fetch || ev->type == OW_EVENT_FETCH_DONE ||
                       (ev->type == OW_EVENT_FETCH_ACK && ev->fetch_ack.accept != OW_ACCEPT_OK);
                if (last)
                        waiter_pop(c);
                w.fn(c, 0, ev, w.userdata);
                if (gen == c->generation)
                        arm_timer(c);
                return;
        }
        default:
                assert_not_reached();
        }
}

static void process(ClientAsync *c) {
        unsigned gen = c->generation;

        while (gen == c->generation && c->io.engine) {
                _cleanup_(ow_event_done) OwEvent ev = {};
                int r = ow_engine_poll(c->io.engine, &ev);

                if (r < 0) {
                        fail(c, r, "bad message from the server (%s): %s",
                             ow_engine_error_context(c->io.engine), ow_strerror(r));
                        return;
                }
                if (r == 0)
                        break;
                dispatch(c, &ev);
        }
        if (gen != c->generation)
                return;
        if (c->io.eof) {
                fail(c, -ECONNRESET, "the server closed the connection");
                return;
        }
        update_events(c);
}

static int tcp_connected(ClientAsync *c) {
        int r;

        c->tcp_up = true;
        r = client_socket_connected(c->fd, &c->info.local);
        if (r < 0)
                return r;
        sockaddr_unmap_v4(&c->info.peer);
        r = ctrl_io_attach(&c->io, c->fd, OW_CONTROL_CLIENT);
        if (r < 0)
                return r;
        update_events(c);
        arm_timer(c);
        return 0;
}

static int on_io(sd_event_source *s _unused_, int fd _unused_, uint32_t revents, void *userdata) {
        ClientAsync *c = userdata;
        int r;

        if (!c->tcp_up) {
                int err = 0;
                socklen_t l = sizeof(err);

                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                        err = errno;
                if (err == 0 && !(revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                        return 0;
                if (err != 0 || (revents & (EPOLLERR | EPOLLHUP))) {
                        c->last_connect_error = err ? -err : -ECONNREFUSED;
                        c->io_source = sd_event_source_disable_unref(c->io_source);
                        c->fd = safe_close(c->fd);
                        (void) try_connect(c);
                        return 0;
                }
                r = tcp_connected(c);
                if (r < 0)
                        fail(c, r, "cannot set up the connection: %s", strerror(-r));
                return 0;
        }

        if (revents & EPOLLOUT) {
                r = ctrl_io_flush(&c->io);
                if (r < 0) {
                        fail(c, r, "cannot send to the server: %s", strerror(-r));
                        return 0;
                }
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                bool progress = false;

                for (int i = 0; i < READS_PER_WAKEUP; i++) {
                        r = ctrl_io_read(&c->io);
                        if (r == -EAGAIN || r == 0)
                                break;
                        if (r == -ENOBUFS)
                                break; /* the engine is full: take events first */
                        if (r < 0) {
                                fail(c, r, "connection to the server failed: %s", strerror(-r));
                                return 0;
                        }
                        progress = true;
                }
                if (progress)
                        arm_timer(c);
                process(c); /* updates the events, unless the connection went */
                return 0;
        }
        update_events(c);
        return 0;
}

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        ClientAsync *c = userdata;

        if (c->state == CLIENT_ASYNC_CONNECTING && !c->tcp_up) {
                c->last_connect_error = -ETIMEDOUT;
                c->io_source = sd_event_source_disable_unref(c->io_source);
                c->fd = safe_close(c->fd);
                (void) try_connect(c);
                return 0;
        }
        fail(c, -ETIMEDOUT, "no answer from the server within %" PRIu64 " ms",
             c->timeout_usec / USEC_PER_MSEC);
        return 0;
}

/* Start a TCP connect to the next address; when none is left, fail. */
static int try_connect(ClientAsync *c) {
        for (; c->next_addr < c->target.n_addrs; c->next_addr++) {
                size_t i = c->next_addr;
                int fd, r;

                fd = client_target_socket(c->o, &c->target, i, c->error, sizeof(c->error));
                if (fd < 0 && c->error[0]) {
                        fail(c, fd, "%s", c->error);
                        return fd;
                }
                if (fd < 0) {
                        c->last_connect_error = fd;
                        continue;
                }
                c->fd = fd;
                c->info.peer = c->target.addrs[i];
                r = sd_event_add_io(c->event, &c->io_source, fd, EPOLLOUT, on_io, c);
                if (r < 0) {
                        fail(c, r, "cannot watch the connection: %s", strerror(-r));
                        return r;
                }
                (void) sd_event_source_set_description(c->io_source, "control-client");
                c->next_addr++;
                if (connect(fd, &c->info.peer.sa, sockaddr_len(&c->info.peer)) == 0) {
                        r = tcp_connected(c);
                        if (r < 0)
                                fail(c, r, "cannot set up the connection: %s", strerror(-r));
                        return r;
                }
                if (errno == EINPROGRESS) {
                        arm_timer(c);
                        return 0;
                }
                c->last_connect_error = -errno;
                c->io_source = sd_event_source_disable_unref(c->io_source);
                c->fd = safe_close(c->fd);
        }
        fail(c, c->last_connect_error, "cannot connect to %s: %s", c->o->server,
             strerror(-c->last_connect_error));
        return c->last_connect_error;
}

static int start(ClientAsync *c) {
        if (c->state != CLIENT_ASYNC_IDLE)
                return -EBUSY;
        close_connection(c);
        c->state = CLIENT_ASYNC_CONNECTING;
        c->error[0] = 0;
        return 0;
}

int client_async_connect(ClientAsync *c) {
        int r;

        assert(c);
        r = start(c);
        if (r < 0)
                return r;
        if (!c->resolved) {
                r = client_target_resolve(c->o, &c->target, c->error, sizeof(c->error));
                if (r < 0) {
                        fail(c, r, "%s", c->error);
                        return r;
                }
                c->resolved = true;
        }
        c->next_addr = 0;
        c->last_connect_error = -EHOSTUNREACH;
        return try_connect(c);
}

int client_async_connect_fd(ClientAsync *c, int fd) {
        socklen_t l = sizeof(c->info.peer);
        int r;

        assert(c);
        assert(fd >= 0);
        r = start(c);
        if (r < 0)
                return r;
        c->fd = fd;
        if (getpeername(fd, &c->info.peer.sa, &l) < 0)
                c->info.peer = (SockAddr){};
        r = sd_event_add_io(c->event, &c->io_source, fd, EPOLLIN, on_io, c);
        if (r >= 0)
                r = tcp_connected(c);
        if (r < 0) {
                fail(c, r, "cannot set up the connection: %s", strerror(-r));
                return r;
        }
        (void) sd_event_source_set_description(c->io_source, "control-client");
        return 0;
}

typedef enum Command {
        COMMAND_REQUEST_SESSION,
        COMMAND_START_SESSIONS,
        COMMAND_STOP_SESSIONS,
        COMMAND_FETCH_SESSION,
} Command;

/* Send one command; fn (if any) waits for its answer. */
static int command(ClientAsync *c, Command cmd, const void *m, ClientAsyncReplyFn fn, void *userdata) {
        int r;

        if (c->state != CLIENT_ASYNC_READY)
                return -ENOTCONN;
        if (fn && c->n_waiting >= MAX_WAITING)
                return -EBUSY;
        switch (cmd) {
        case COMMAND_REQUEST_SESSION:
                r = ow_engine_send_request_session(c->io.engine, m);
                break;
        case COMMAND_START_SESSIONS:
                r = ow_engine_send_start_sessions(c->io.engine);
                break;
        case COMMAND_STOP_SESSIONS:
                r = ow_engine_send_stop_sessions(c->io.engine, m);
                break;
        case COMMAND_FETCH_SESSION:
                r = ow_engine_send_fetch_session(c->io.engine, m);
                break;
        default:
                assert_not_reached();
        }
        if (r < 0)
                return r;
        if (fn) {
                c->waiting[(c->head + c->n_waiting) % MAX_WAITING] =
                        (Waiter){ fn, userdata, cmd == COMMAND_FETCH_SESSION };
                c->n_waiting++;
        }
        return flush(c);
}

int client_async_request_session(ClientAsync *c, const OwSessionRequest *req, ClientAsyncReplyFn fn,
                                 void *userdata) {
        assert(c && req && fn);
        return command(c, COMMAND_REQUEST_SESSION, req, fn, userdata);
}

int client_async_start_sessions(ClientAsync *c, ClientAsyncReplyFn fn, void *userdata) {
        assert(c && fn);
        return command(c, COMMAND_START_SESSIONS, NULL, fn, userdata);
}

int client_async_stop_sessions(ClientAsync *c, const OwStopSessions *st) {
        assert(c && st);
        return command(c, COMMAND_STOP_SESSIONS, st, NULL, NULL);
}

int client_async_fetch(ClientAsync *c, const OwFetchSession *f, ClientAsyncReplyFn fn, void *userdata) {
        assert(c && f && fn);
        return command(c, COMMAND_FETCH_SESSION, f, fn, userdata);
}

ClientAsyncState client_async_state(const ClientAsync *c) {
        assert(c);
        return c->state;
}

const ClientAsyncInfo *client_async_info(const ClientAsync *c) {
        assert(c);
        return c->state == CLIENT_ASYNC_READY ? &c->info : NULL;
}

unsigned client_async_pending(const ClientAsync *c) {
        assert(c);
        return c->n_waiting;
}
