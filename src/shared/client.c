/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "random-util.h"
#include "clock.h"
#include "ow-error.h"
#include "units.h"

static int client_err(Client *c, int r, const char *fmt, ...) _printf_(3, 4);
static int client_err(Client *c, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof(c->error), fmt, ap);
        va_end(ap);
        return r < 0 ? r : -EPROTO;
}

int64_t client_clock_offset_nsec(void) {
        int64_t off;
        return clock_offset_from_env(&off) < 0 ? 0 : off;
}

OwTimestamp client_now(void) {
        return clock_now(client_clock_offset_nsec());
}

static uint64_t mono_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

void client_init(Client *c) {
        *c = (Client){ .fd = -1, .timeout_msec = CLIENT_TIMEOUT_MSEC_DEFAULT };
        ctrl_io_init(&c->io, -1);
}

void client_done(Client *c) {
        ctrl_io_done(&c->io);
        safe_close(c->fd);
        ow_wipe(&c->keys, sizeof(c->keys));
        c->fd = -1;
}

static int connect_with_timeout(int fd, const SockAddr *a, int timeout_msec) {
        if (connect(fd, &a->sa, sockaddr_len(a)) == 0)
                return 0;
        if (errno != EINPROGRESS)
                return -errno;
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int r = poll(&p, 1, timeout_msec);
        if (r == 0)
                return -ETIMEDOUT;
        if (r < 0)
                return -errno;
        int err = 0;
        socklen_t l = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                return -errno;
        return -err;
}

void client_target_done(ClientTarget *t) {
        free(t->addrs);
        free(t->src);
        *t = (ClientTarget){};
}

static int errf(char *err, size_t err_size, int r, const char *fmt, ...) _printf_(4, 5);
static int errf(char *err, size_t err_size, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
        return r;
}

int client_target_resolve(const ClientOptions *o, ClientTarget *ret, char *err, size_t err_size) {
        _cleanup_free_ char *node = NULL;
        _cleanup_(client_target_done) ClientTarget t = {};
        uint16_t port;
        int r;

        r = net_split_node(o->server, OWAMP_CONTROL_PORT, &node, &port);
        if (r < 0 || !node)
                return errf(err, err_size, -EINVAL, "invalid server address '%s'", o->server);
        r = net_resolve(node, port, o->family, false, &t.addrs, &t.n_addrs);
        if (r < 0)
                return errf(err, err_size, r, "cannot resolve '%s'", node);
        if (o->source) {
                _cleanup_free_ char *snode = NULL;
                uint16_t sport;

                r = net_split_node(o->source, 0, &snode, &sport);
                if (r < 0 || !snode)
                        return errf(err, err_size, -EINVAL, "invalid source address '%s'", o->source);
                r = net_resolve(snode, 0, o->family, false, &t.src, &t.n_src);
                if (r < 0)
                        return errf(err, err_size, r, "cannot resolve source address '%s'", snode);
        }
        *ret = TAKE_STRUCT(t);
        return 0;
}

int client_target_socket(const ClientOptions *o, const ClientTarget *t, size_t i, char *err,
                         size_t err_size) {
        const SockAddr *a = &t->addrs[i];
        _cleanup_close_ int fd = -1;

        assert(i < t->n_addrs);
        err[0] = 0;
        fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (o->interface && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o->interface,
                                       (socklen_t) strlen(o->interface)) < 0) {
                int r = -errno;
                return errf(err, err_size, r, "cannot use interface %s: %s", o->interface, strerror(-r));
        }
        if (t->src) {
                bool bound = false;

                for (size_t k = 0; k < t->n_src && !bound; k++)
                        if (t->src[k].sa.sa_family == a->sa.sa_family)
                                bound = bind(fd, &t->src[k].sa, sockaddr_len(&t->src[k])) == 0;
                if (!bound)
                        return -EADDRNOTAVAIL;
        }
        return TAKE_FD(fd);
}

int client_socket_connected(int fd, SockAddr *ret_local) {
        socklen_t l = sizeof(*ret_local);
        int one = 1;

        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (getsockname(fd, &ret_local->sa, &l) < 0)
                return -errno;
        sockaddr_unmap_v4(ret_local);
        return 0;
}

int client_answer_greeting(const ClientOptions *o, const OwServerGreeting *g, OwEngine *e,
                           OwControlKeys *ret_keys, bool *ret_count_odd, char *err, size_t err_size) {
        uint8_t client_iv[OW_IV_SIZE] = {};
        char keyid[OW_KEYID_SIZE + 1] = {};
        OwClientSetup setup;
        OwMode mode;
        int r;

        *ret_count_odd = false;
        if (g->modes == 0)
                return errf(err, err_size, -EACCES, "server %s refuses this client (no modes offered)",
                            o->server);

        uint32_t usable = g->modes & o->modes;
        if (!o->keyid)
                usable &= OW_MODE_OPEN;
        /* The strictest: E, A, then (TWAMP) Mixed, then O, as the
         * reference's owping and twping choose. */
        mode = ow_modes_pick(usable & ~(uint32_t) OW_MODE_OPEN);
        if (!mode && (usable & OW_MODE_MIXED))
                mode = OW_MODE_MIXED;
        if (!mode)
                mode = ow_modes_pick(usable & OW_MODE_OPEN);
        if (!mode)
                return errf(err, err_size, -EPROTONOSUPPORT,
                            "no common mode: server offers %s%s%s, we allow %s%s%s%s",
                            g->modes & OW_MODE_OPEN ? "O" : "", g->modes & OW_MODE_AUTHENTICATED ? "A" : "",
                            g->modes & OW_MODE_ENCRYPTED ? "E" : "", o->modes & OW_MODE_OPEN ? "O" : "",
                            o->modes & OW_MODE_AUTHENTICATED ? "A" : "",
                            o->modes & OW_MODE_ENCRYPTED ? "E" : "",
                            !o->keyid && (o->modes & ~(uint32_t) OW_MODE_OPEN) ? " (A and E need -u)" : "");

        /* The session keys and the Client-IV are ours to pick; the engine
         * derives the Token from them. */
        setup = (OwClientSetup){ .mode = mode };
        if (mode != OW_MODE_OPEN) {
                int k = ow_pbkdf2_count_check_client(g->count);
                if (k < 0)
                        return errf(err, err_size, k, "server asks for %u PBKDF2 iterations; refusing",
                                    g->count);
                *ret_count_odd = k > 0;
                r = random_bytes(ret_keys, sizeof(*ret_keys));
                if (r >= 0)
                        r = random_bytes(client_iv, sizeof(client_iv));
                if (r < 0)
                        return errf(err, err_size, r, "cannot build the authentication token: %s",
                                    ow_strerror(r));
                snprintf(keyid, sizeof(keyid), "%s", o->keyid);
                setup = (OwClientSetup){ .mode = mode,
                                         .keyid = keyid,
                                         .secret = o->secret,
                                         .secret_len = o->secret_len,
                                         .keys = ret_keys,
                                         .client_iv = client_iv };
        }
        r = ow_engine_send_setup_response(e, &setup);
        ow_wipe(client_iv, sizeof(client_iv));
        if (r == -OW_ERR_KEYID || r == -OW_ERR_MODE)
                return errf(err, err_size, r, "cannot encode Set-Up-Response: %s", ow_strerror(r));
        if (r < 0)
                return errf(err, err_size, r, "cannot build the authentication token: %s", ow_strerror(r));
        return mode;
}

int client_connect(Client *c, const ClientOptions *o) {
        _cleanup_(client_target_done) ClientTarget t = {};
        bool count_odd;
        int r;

        c->timeout_msec = o->timeout_msec > 0 ? o->timeout_msec : CLIENT_TIMEOUT_MSEC_DEFAULT;
        r = client_target_resolve(o, &t, c->error, sizeof(c->error));
        if (r < 0)
                return r;

        r = -EHOSTUNREACH;
        for (size_t i = 0; i < t.n_addrs; i++) {
                int fd = client_target_socket(o, &t, i, c->error, sizeof(c->error));
                if (fd < 0 && c->error[0])
                        return fd; /* the interface: no other address will do better */
                if (fd < 0) {
                        r = fd;
                        continue;
                }
                r = connect_with_timeout(fd, &t.addrs[i], c->timeout_msec);
                if (r < 0) {
                        safe_close(fd);
                        continue;
                }
                c->fd = fd;
                c->peer = t.addrs[i];
                break;
        }
        if (c->fd < 0)
                return client_err(c, r, "cannot connect to %s: %s", o->server, strerror(-r));

        r = client_socket_connected(c->fd, &c->local);
        if (r < 0)
                return client_err(c, r, "getsockname: %s", strerror(-r));
        sockaddr_unmap_v4(&c->peer);
        r = ctrl_io_attach_protocol(&c->io, c->fd, o->protocol ? o->protocol : &ow_protocol_owamp,
                                    OW_CONTROL_CLIENT);
        if (r < 0)
                return client_err(c, r, "cannot set up the connection: %s", strerror(-r));

        /* Server Greeting */
        OwEvent ev;
        r = ctrl_io_next_event_blocking(&c->io, &ev, c->timeout_msec);
        if (r < 0 && ow_engine_state(c->io.engine) == OW_ENGINE_FAILED)
                return client_err(c, r, "bad server greeting: %s", ow_strerror(r));
        if (r < 0)
                return client_err(c, r, "no server greeting from %s: %s", o->server,
                                  r == -ECONNRESET ? "connection closed" : ow_strerror(r));
        assert(ev.type == OW_EVENT_GREETING);

        /* Set-Up-Response */
        r = client_answer_greeting(o, &ev.greeting, c->io.engine, &c->keys, &count_odd, c->error,
                                   sizeof(c->error));
        if (r < 0)
                return r;
        c->mode = (OwMode) r;
        c->pbkdf2_count = ev.greeting.count;
        c->pbkdf2_count_odd = count_odd; /* for the caller to warn about */
        r = ctrl_io_flush_blocking(&c->io, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "cannot send Set-Up-Response: %s", strerror(-r));
        uint64_t sent_at = mono_usec();

        /* Server-Start. */
        r = ctrl_io_next_event_blocking(&c->io, &ev, c->timeout_msec);
        if (r < 0 && ow_engine_state(c->io.engine) == OW_ENGINE_FAILED)
                return client_err(c, r, "bad Server-Start: %s", ow_strerror(r));
        if (r < 0)
                return client_err(c, r, "no Server-Start: %s",
                                  r == -ECONNRESET ? "connection closed (authentication refused?)" : ow_strerror(r));
        assert(ev.type == OW_EVENT_SERVER_START);
        if (ev.server_start.accept != OW_ACCEPT_OK)
                return client_err(c, -EACCES, "server refused the connection: %s%s",
                                  ow_accept_to_string(ev.server_start.accept),
                                  c->mode != OW_MODE_OPEN ? " (wrong key id or passphrase?)" : "");
        c->rtt_usec = mono_usec() - sent_at;
        c->server_start_time = ev.server_start.start_time;
        return 0;
}

/*
 * The next event, which the engine guarantees is `want` (the answer to
 * what we sent): 0, or an error with its reason in c->error. A message
 * that arrived whole but does not decode is "bad <what>"; anything else
 * (a timeout, a closed connection, an HMAC that does not verify) is "no
 * <what> from the server".
 */
static int client_wait(Client *c, OwEventType want, const char *what, int timeout_msec, OwEvent *ret) {
        int r = ctrl_io_next_event_blocking(&c->io, ret, timeout_msec);

        if (r < 0) {
                const char *context = ow_engine_error_context(c->io.engine);

                if (ow_engine_state(c->io.engine) == OW_ENGINE_FAILED && startswith(context, "bad "))
                        return client_err(c, r, "%s: %s", context, ow_strerror(r));
                return client_err(c, r, "no %s from the server: %s", what,
                                  r == -ECONNRESET ? "connection closed" : ow_strerror(r));
        }
        assert(ret->type == want);
        return 0;
}

static int client_flush(Client *c, int r, const char *what) {
        if (r < 0)
                return client_err(c, r, "cannot encode %s: %s", what, ow_strerror(r));
        r = ctrl_io_flush_blocking(&c->io, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "cannot send %s: %s", what, strerror(-r));
        return 0;
}

int client_request_session(Client *c, OwSessionRequest *req, OwAccept *ret_accept) {
        OwEvent ev;
        size_t size;
        int r;

        r = ow_request_session_size(req->n_slots, &size);
        if (r < 0)
                return client_err(c, r, "bad schedule: %s", ow_strerror(r));
        r = client_flush(c, ow_engine_send_request_session(c->io.engine, req), "Request-Session");
        if (r < 0)
                return r;
        r = client_wait(c, OW_EVENT_ACCEPT_SESSION, "Accept-Session", c->timeout_msec, &ev);
        if (r < 0)
                return r;
        *ret_accept = ev.accept_session.accept;
        if (ev.accept_session.accept != OW_ACCEPT_OK)
                return 0;
        if (req->conf_sender)
                req->sender_port = ev.accept_session.port;
        else {
                req->receiver_port = ev.accept_session.port;
                req->sid = ev.accept_session.sid;
        }
        return 0;
}

int client_start_sessions(Client *c, OwAccept *ret_accept) {
        OwEvent ev;
        int r;

        r = client_flush(c, ow_engine_send_start_sessions(c->io.engine), "Start-Sessions");
        if (r < 0)
                return r;
        r = client_wait(c, OW_EVENT_START_ACK, "Start-Ack", c->timeout_msec, &ev);
        if (r < 0)
                return r;
        *ret_accept = ev.accept;
        return 0;
}

int client_send_stop(Client *c, const OwStopSessions *st) {
        return client_flush(c, ow_engine_send_stop_sessions(c->io.engine, st), "Stop-Sessions");
}

int client_poll_stop(Client *c, OwStopSessions *ret) {
        OwEvent ev;
        int r;

        for (;;) {
                r = ctrl_io_read(&c->io);
                if (r == -EAGAIN || r == 0)
                        break;
                if (r < 0)
                        return client_err(c, r, "connection to the server failed: %s", strerror(-r));
        }
        r = ow_engine_poll(c->io.engine, &ev);
        if (r == -OW_ERR_COMMAND)
                return client_err(c, r, "unexpected message from the server during the test");
        if (r < 0)
                return client_err(c, r, "bad Stop-Sessions from the server: %s", ow_strerror(r));
        if (r > 0) {
                /* In a test the server may send nothing else (the engine's table). */
                assert(ev.type == OW_EVENT_STOP_SESSIONS);
                *ret = ev.stop;
                return 1;
        }
        if (c->io.eof)
                return client_err(c, -ECONNRESET, "the server closed the connection during the test");
        return 0;
}

void client_fetch_done(ClientFetch *f) {
        ow_session_request_done(&f->req);
        free(f->skips);
        free(f->records);
        *f = (ClientFetch) {};
}

/* The reference may think for up to ~31 s before answering a fetch
 * (PROTOCOL.md 5.7), and a long session's records take long to come. */
#define FETCH_ACK_TIMEOUT_MSEC 45000
#define FETCH_DATA_TIMEOUT_MSEC 300000

int client_fetch(Client *c, uint32_t begin, uint32_t end, const OwSid *sid, ClientFetch *f) {
        OwFetchSession fs = { .begin = begin, .end = end, .sid = *sid };
        uint32_t got = 0;
        OwEvent ev;
        int r;

        *f = (ClientFetch) {};
        r = client_flush(c, ow_engine_send_fetch_session(c->io.engine, &fs), "Fetch-Session");
        if (r < 0)
                return r;
        r = client_wait(c, OW_EVENT_FETCH_ACK, "Fetch-Ack", MAX(c->timeout_msec, FETCH_ACK_TIMEOUT_MSEC),
                        &ev);
        if (r < 0)
                return r;
        f->ack = ev.fetch_ack;
        if (f->ack.accept != OW_ACCEPT_OK)
                return 0;

        /* Part 1: the Request-Session. */
        r = client_wait(c, OW_EVENT_FETCH_REQUEST, "fetched session request", c->timeout_msec, &ev);
        if (r < 0)
                return r;
        f->req = ev.request;

        /* Part 2: skip ranges. */
        r = client_wait(c, OW_EVENT_FETCH_SKIPS, "skip ranges", c->timeout_msec, &ev);
        if (r < 0)
                return r;
        f->skips = TAKE_PTR(ev.skips.ranges);

        /* Part 3: the records, streamed by the engine in batches; none is
         * handed out before the part's HMAC verified. */
        if (f->ack.n_records > 0) {
                f->records = calloc(f->ack.n_records, sizeof(OwRecord));
                if (!f->records)
                        return -ENOMEM;
        }
        for (;;) {
                r = ctrl_io_next_event_blocking(&c->io, &ev, MAX(c->timeout_msec, FETCH_DATA_TIMEOUT_MSEC));
                if (r < 0 && ow_engine_state(c->io.engine) == OW_ENGINE_FAILED &&
                    streq(ow_engine_error_context(c->io.engine), "bad records"))
                        return client_err(c, r, "bad records: %s", ow_strerror(r));
                if (r < 0)
                        return client_err(c, r, "no session records from the server: %s",
                                          r == -ECONNRESET ? "connection closed" : ow_strerror(r));
                if (ev.type == OW_EVENT_FETCH_DONE)
                        break;
                assert(ev.type == OW_EVENT_FETCH_RECORDS);
                assert(ev.records.n <= f->ack.n_records - got);
                memcpy(f->records + got, ev.records.records, (size_t) ev.records.n * sizeof(OwRecord));
                got += ev.records.n;
                ow_event_done(&ev);
        }
        assert(got == f->ack.n_records);
        return 0;
}
