/* SPDX-License-Identifier: Apache-2.0 */

/*
 * One OWAMP-Control connection on the server side (RFC 4656 3), as a
 * non-blocking state machine driven by the server's sd-event loop.
 *
 *   SETUP --Set-Up-Response--> IDLE --Request-Session/Fetch-Session--> IDLE
 *   IDLE --Start-Sessions--> STARTING --all workers READY--> TESTING
 *   TESTING --all our sessions done--> STOP_SENT --peer's Stop--> IDLE
 *   TESTING --peer's Stop--> STOPPING --all our sessions done--> IDLE
 *
 * Every refusal is answered with an Accept code where the protocol has one
 * (the reference sometimes closes instead; PROTOCOL.md 5, 12), and logged
 * with the reason. Protocol violations close the connection.
 *
 * The protocol itself (set-up, framing, crypto, which command may come
 * when) is the control engine's (ow-control-engine.h), behind c->io: this
 * file turns the engine's events into policy, sessions and fetches, and
 * answers through the engine. Only this file logs for a connection.
 */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "owampd.h"
#include "ow-error.h"
#include "units.h"

#define STARTING_TIMEOUT_USEC (30 * USEC_PER_SEC) /* without progress: each worker ready re-arms it */
#define CLOSING_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define GUARD_GRACE_USEC USEC_PER_MINUTE
#define MAX_SESSIONS_PER_CONN 4096

static int conn_process(Conn *c);
static int conn_fetch_pump(Conn *c);
static void conn_close(Conn *c);
static int on_session_event(sd_event_source *src, void *userdata);

int start_timeout_from_env(uint64_t *ret_usec) {
        int64_t nsec;
        int r = env_seconds_nsec("OWAMP_DEBUG_START_TIMEOUT", 0.1, 600, STARTING_TIMEOUT_USEC * NSEC_PER_USEC,
                                 &nsec);
        if (r < 0)
                return r;
        *ret_usec = (uint64_t) nsec / NSEC_PER_USEC;
        return 0;
}

void conn_log_internal(const char *file, int line, Conn *c, int priority, const char *message_id,
                       const char *fmt, ...) {
        const char *mode = c->mode ? ow_mode_to_string(c->mode) : NULL;
        LogFields f = {
                .message_id = message_id,
                .peer = c->peer_addr_str,
                .mode = mode,
                .keyid = c->keyid[0] ? c->keyid : NULL,
        };
        va_list ap;
        va_start(ap, fmt);
        log_internalv(file, line, priority, 0, &f, fmt, ap);
        va_end(ap);
}

/* Edge-triggered: on_conn_io() reads until EAGAIN and writes until it
 * would block anyway, and a level-triggered socket with octets waiting is
 * reported by every epoll_wait() until its turn comes - sd-event
 * dispatches one source per wait, so a storm of connections with input
 * made each wake-up cost as much as all of them (owampd spent its time in
 * the kernel's poll of ready sockets while the listen queue overflowed). */
static void conn_set_events(Conn *c, uint32_t ev) {
        ev |= EPOLLET;
        if (!c->io_source || ev == c->io_events)
                return; /* an edge-triggered update would re-arm (a system call) for nothing */
        if (sd_event_source_set_io_events(c->io_source, ev) >= 0)
                c->io_events = ev;
}

static void conn_update_events(Conn *c) {
        uint32_t ev = EPOLLIN;
        /* A fetch answer still being produced: once the socket takes
         * more, produce more (conn_fetch_pump()). */
        if (ctrl_io_want_write(&c->io) || c->fetch_stream)
                ev |= EPOLLOUT;
        /* The socket may have taken all we had and still be writable:
         * no edge would come, so re-arm (epoll reports it again at once
         * if it is writable) and the next wake-up produces more. One
         * window per wake-up, as before, so a fast reader's fetch does not
         * hold the loop. */
        if (c->fetch_stream)
                c->io_events = 0;
        conn_set_events(c, ev);
}

static void conn_arm_timer(Conn *c, uint64_t usec) {
        if (!c->timer_source)
                return;
        if (usec == 0) {
                (void) sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(c->timer_source, server_monotonic_usec(c->server) + usec);
        (void) sd_event_source_set_enabled(c->timer_source, SD_EVENT_ONESHOT);
}

/* controltimeout from now, or the set-up deadline if that comes first. */
static void conn_arm_control_timeout(Conn *c) {
        uint64_t usec = c->server->control_timeout_usec;

        if (c->setup_deadline != 0) {
                uint64_t now = server_monotonic_usec(c->server);
                uint64_t left = c->setup_deadline > now ? c->setup_deadline - now : 1;
                usec = usec == 0 ? left : MIN(usec, left);
        }
        conn_arm_timer(c, usec);
}

/* After the engine queued something: ask for POLLOUT. Passes r through. */
static int conn_sent(Conn *c, int r) {
        if (r >= 0)
                conn_update_events(c);
        return r;
}

/* Send what is queued, then close. */
static void conn_finish(Conn *c) {
        c->state = CONN_CLOSING;
        if (!ctrl_io_want_write(&c->io)) {
                conn_close(c);
                return;
        }
        conn_set_events(c, EPOLLOUT);
        conn_arm_timer(c, CLOSING_TIMEOUT_USEC);
}

/* A protocol violation or an I/O error: log and drop the connection. */
static int conn_fail(Conn *c, int error, const char *what) {
        /* Before the set-up anyone can make us write this, as often as
         * they connect: rate-limited (guard.c). */
        if (c->state != CONN_SETUP || guard_log_allowed(c->server, GUARD_LOG_SETUP_ERROR, c->peer_str))
                conn_log(c, LOG_WARNING, MSGID_PROTOCOL_ERROR, "Closing connection from %s: %s: %s",
                         c->peer_str, what, ow_strerror(error));
        else
                c->quiet_close = true;
        conn_close(c);
        return -ECONNABORTED;
}

static void conn_close(Conn *c) {
        /* Refusals that are counted instead of logged close quietly too. */
        conn_log(c, c->quiet_close ? LOG_DEBUG : LOG_INFO, MSGID_CONNECTION_CLOSED,
                 "Connection from %s closed (%" PRIu64 " octets in, %" PRIu64 " out)", c->peer_str,
                 c->io.bytes_in, c->io.bytes_out);
        conn_free(c);
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        Server *s = c->server;
        TestSession *t, *n;
        bool had_sessions = c->sessions != NULL;
        session_queue_forget(c);
        LIST_FOREACH_SAFE(by_conn, t, n, c->sessions) {
                session_abandon(t);
                session_free(t);
        }
        fetch_wait_free(c->fetch_wait);
        sd_event_source_disable_unref(c->io_source);
        sd_event_source_disable_unref(c->timer_source);
        sd_event_source_disable_unref(c->session_source);
        datastore_fetch_stream_free(c->fetch_stream);
        ctrl_io_done(&c->io);
        safe_close(c->fd);
        ow_wipe(&c->keys, sizeof(c->keys));
        ow_stop_sessions_done(&c->peer_stop);
        free(c->class_name);
        if (c->guarded)
                guard_conn_closed(s, &c->peer);
        LIST_REMOVE(conns, s->conns, c);
        s->n_conns--;
        free(c);
        server_update_status(s);
        if (had_sessions)
                fetch_waits_kick(s); /* their sessions are over (abandoned) */
        return NULL;
}

static int on_conn_io(sd_event_source *src _unused_, int fd _unused_, uint32_t revents, void *userdata) {
        Conn *c = userdata;
        int r;

        if (revents & EPOLLOUT) {
                r = ctrl_io_flush(&c->io);
                if (r < 0)
                        return conn_fail(c, r, "write failed"), 0;
                r = conn_fetch_pump(c);
                if (r == -ECONNABORTED)
                        return 0; /* c is gone */
                if (r == 0 && c->state == CONN_CLOSING) {
                        conn_close(c);
                        return 0;
                }
        }
        if (c->state == CONN_CLOSING) {
                conn_update_events(c);
                return 0;
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                        r = ctrl_io_read(&c->io);
                        if (r == -EAGAIN)
                                break;
                        if (r < 0)
                                return conn_fail(c, r, "read failed"), 0;
                        if (r == 0)
                                break;
                }
                r = conn_process(c);
                if (r == -ECONNABORTED)
                        return 0; /* c is gone */
                if (c->io.eof && c->state != CONN_CLOSING) {
                        /* Anything the engine holds unconsumed is a message
                         * not finished (or one not read yet). */
                        const char *when = ow_engine_input_pending(c->io.engine) > 0
                                                   ? "in the middle of a message"
                                           : c->state == CONN_SETUP ? "without answering the greeting"
                                           : c->state != CONN_IDLE  ? "in the middle of a test"
                                           : c->fetch_wait          ? "while its fetch waited"
                                                                    : NULL;
                        if (when && c->state == CONN_SETUP &&
                            !guard_log_allowed(c->server, GUARD_LOG_SETUP_ERROR, c->peer_str))
                                c->quiet_close = true;
                        else if (when)
                                conn_log(c, LOG_NOTICE, MSGID_CONNECTION_CLOSED,
                                         "Peer %s closed the connection %s", c->peer_str, when);
                        conn_close(c);
                        return 0;
                }
        }
        r = conn_fetch_pump(c);
        if (r == -ECONNABORTED)
                return 0;
        r = ctrl_io_flush(&c->io);
        if (r < 0)
                return conn_fail(c, r, "write failed"), 0;
        /* A connection waiting for its peer holds no buffers: thousands of
         * idle ones cost only their Conn and engine. */
        ow_engine_release_buffers(c->io.engine);
        conn_update_events(c);
        return 0;
}

static int on_conn_timer(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        Conn *c = userdata;
        switch (c->state) {
        case CONN_CLOSING:
                conn_close(c);
                break;
        case CONN_STARTING:
                conn_log(c, LOG_ERR, MSGID_SESSION_REFUSED, "Session workers for %s did not start in time",
                         c->peer_str);
                conn_close(c);
                break;
        case CONN_TESTING:
        case CONN_STOPPING: {
                /* The guard: sessions ran far past their schedule. */
                TestSession *t;
                conn_log(c, LOG_WARNING, MSGID_PROTOCOL_ERROR,
                         "Sessions of %s overran their schedule; stopping them", c->peer_str);
                LIST_FOREACH(by_conn, t, c->sessions)
                        if (t->state != SESSION_DONE && t->state != SESSION_FINISHED) {
                                t->failed = true;
                                endpoint_kill(t->endpoint);
                        }
                break;
        }
        default: {
                if (c->setup_deadline != 0 && server_monotonic_usec(c->server) >= c->setup_deadline) {
                        /* However busy the peer kept the connection: a
                         * slow one is as good as a silent one. */
                        c->quiet_close = !guard_log_allowed(c->server, GUARD_LOG_SETUP_TIMEOUT, c->peer_str);
                        if (!c->quiet_close)
                                conn_log(c, LOG_NOTICE, MSGID_CONNECTION_CLOSED,
                                         "Closing connection from %s: %s within setuptimeout (%" PRIu64
                                         " s) of the greeting",
                                         c->peer_str,
                                         c->state == CONN_SETUP ? "no complete Set-Up-Response"
                                                                : "no command",
                                         c->server->setup_timeout_usec / USEC_PER_SEC);
                        conn_close(c);
                        break;
                }
                conn_log(c, LOG_NOTICE, MSGID_CONNECTION_CLOSED,
                         "Control connection from %s timed out: no message for controltimeout (%" PRIu64
                         " s)",
                         c->peer_str, c->server->control_timeout_usec / USEC_PER_SEC);
                conn_close(c);
                break;
        }
        }
        return 0;
}

int conn_new(Server *s, int fd, const SockAddr *peer) {
        _cleanup_close_ int cfd = fd;
        Conn *c;
        int r, one = 1;

        /* maxcontrolsessionsperaddr: closed at once, before it costs more
         * than its descriptor. */
        SockAddr from = *peer;
        char from_str[SOCKADDR_STR_MAX];
        sockaddr_unmap_v4(&from);
        r = guard_conn_admit(s, &from, sockaddr_str(&from, from_str, sizeof(from_str)));
        if (r == -EUSERS)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Cannot set up connection from %s: %m", from_str);

        c = calloc(1, sizeof(*c));
        if (!c) {
                guard_conn_closed(s, &from);
                return -ENOMEM;
        }
        c->server = s;
        c->fd = -1;
        c->peer = from;
        c->guarded = true;
        memcpy(c->peer_str, from_str, sizeof(c->peer_str));
        sockaddr_addr_str(&c->peer, c->peer_addr_str, sizeof(c->peer_addr_str));
        socklen_t l = sizeof(c->local);
        if (getsockname(fd, &c->local.sa, &l) < 0) {
                r = -errno;
                guard_conn_closed(s, &from);
                free(c);
                return r;
        }
        sockaddr_unmap_v4(&c->local);
        /* Small control messages must not wait for delayed ACKs (the
         * reference loses ~80 ms per connection to that). */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        c->fd = TAKE_FD(cfd);
        ctrl_io_init(&c->io, c->fd);
        LIST_PREPEND(conns, s->conns, c);
        s->n_conns++;

        r = ctrl_io_attach(&c->io, c->fd, OW_CONTROL_SERVER);
        if (r < 0)
                goto fail;

        r = sd_event_add_io(s->event, &c->io_source, c->fd, EPOLLIN | EPOLLET, on_conn_io, c);
        if (r < 0)
                goto fail;
        c->io_events = EPOLLIN | EPOLLET;
        (void) sd_event_source_set_description(c->io_source, "control-connection");
        r = sd_event_add_time(s->event, &c->timer_source, CLOCK_MONOTONIC, UINT64_MAX, 0, on_conn_timer, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(c->timer_source, "control-timeout");
        (void) sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
        r = sd_event_add_defer(s->event, &c->session_source, on_session_event, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(c->session_source, "control-session-event");
        (void) sd_event_source_set_enabled(c->session_source, SD_EVENT_OFF);

        /* maxcontrolsessions: the reference closes without a greeting; a
         * greeting with Modes 0 is the protocol's own way to say no (RFC
         * 4656 3.1), and clients report it as a refusal, not a network
         * error. */
        bool too_many = s->max_control_sessions > 0 && s->n_conns > s->max_control_sessions;
        c->modes_offered = too_many ? 0 : policy_modes_for_peer(s, &c->peer);
        /* After too many failed authentications (guard.c): no
         * authenticated mode for a while; open mode if it is allowed. */
        if (c->modes_offered & ~(uint32_t) OW_MODE_OPEN && guard_auth_backoff(s, &c->peer)) {
                c->auth_backoff = true;
                c->modes_offered &= OW_MODE_OPEN;
        }
        OwServerGreeting g = { .modes = c->modes_offered, .count = s->pbkdf2_count };
        r = random_bytes(g.challenge, sizeof(g.challenge));
        if (r >= 0)
                r = random_bytes(g.salt, sizeof(g.salt));
        if (r >= 0)
                r = ow_engine_send_greeting(c->io.engine, &g);
        if (r < 0)
                goto fail;
        (void) ctrl_io_flush(&c->io);
        ow_engine_release_buffers(c->io.engine);
        conn_update_events(c);
        server_update_status(s);

        if (too_many) {
                conn_log(c, LOG_WARNING, MSGID_CONNECTION_REFUSED,
                         "Refusing connection from %s: maxcontrolsessions (%u) reached", c->peer_str,
                         s->max_control_sessions);
                conn_finish(c);
                return 0;
        }
        if (c->modes_offered == 0 && c->auth_backoff) {
                if (guard_log_allowed(s, GUARD_LOG_BACKOFF, c->peer_str))
                        conn_log(c, LOG_NOTICE, MSGID_AUTH_FAILURES,
                                 "Refusing connection from %s: its address is in a back-off after failed "
                                 "authentications",
                                 c->peer_str);
                c->quiet_close = true;
                conn_finish(c);
                return 0;
        }
        if (c->modes_offered == 0) {
                const char *cls = policy_class_for(s, &c->peer, NULL);
                conn_log(c, LOG_NOTICE, MSGID_CONNECTION_REFUSED,
                         "Refusing connection from %s: no mode is allowed for this address (class %s has "
                         "allow_open_mode off, and authmode offers only open mode)",
                         c->peer_str, cls ? cls : "-");
                conn_finish(c);
                return 0;
        }
        if ((s->modes & OW_MODE_OPEN) && !(c->modes_offered & OW_MODE_OPEN)) {
                const char *cls = policy_class_for(s, &c->peer, NULL);
                conn_log(c, LOG_INFO, NULL, "Not offering open mode to %s: class %s has allow_open_mode off",
                         c->peer_str, cls ? cls : "-");
        }
        c->state = CONN_SETUP;
        if (s->setup_timeout_usec > 0)
                c->setup_deadline = server_monotonic_usec(s) + s->setup_timeout_usec;
        conn_arm_control_timeout(c);
        return 0;

fail:
        log_error_errno(r, "Cannot set up connection from %s: %m", c->peer_str);
        conn_free(c);
        return r;
}

/* --- Set-Up-Response --------------------------------------------------- */

static int send_server_start(Conn *c, OwAccept accept) {
        uint8_t iv[OW_IV_SIZE] = {};
        int r;

        /* Open mode has no IV; the reference sends zeros there [CAP]. */
        if (accept == OW_ACCEPT_OK && c->mode != OW_MODE_OPEN) {
                r = random_bytes(iv, sizeof(iv));
                if (r < 0)
                        return r;
        }
        return conn_sent(c, ow_engine_send_server_start(c->io.engine, accept, iv, c->server->uptime));
}

static int handle_setup_response(Conn *c, const OwSetupResponse *sr) {
        Server *s = c->server;
        int r;

        c->mode = sr->mode;
        if (sr->mode != OW_MODE_OPEN)
                memcpy(c->keyid, sr->keyid, sizeof(c->keyid));

        /* The reference lets a client pick a mode it was not offered
         * (PROTOCOL.md 3.2); we refuse it. */
        if (!(c->modes_offered & (uint32_t) sr->mode)) {
                const char *cls = sr->mode == OW_MODE_OPEN && (s->modes & OW_MODE_OPEN)
                                          ? policy_class_for(s, &c->peer, NULL)
                                          : NULL;
                if (cls)
                        conn_log(c, LOG_NOTICE, MSGID_CONNECTION_REFUSED,
                                 "Refusing %s: open mode is not allowed for class %s (allow_open_mode off)",
                                 c->peer_str, cls);
                else if (c->auth_backoff) {
                        if (guard_log_allowed(s, GUARD_LOG_BACKOFF, c->peer_str))
                                conn_log(c, LOG_NOTICE, MSGID_AUTH_FAILURES,
                                         "Refusing %s: mode %c was not offered: its address is in a back-off "
                                         "after failed authentications",
                                         c->peer_str, ow_mode_to_char(sr->mode));
                        c->quiet_close = true;
                } else
                        conn_log(c, LOG_NOTICE, MSGID_CONNECTION_REFUSED,
                                 "Refusing %s: mode %c was not offered (offered 0x%x)", c->peer_str,
                                 ow_mode_to_char(sr->mode), c->modes_offered);
                (void) send_server_start(c, OW_ACCEPT_FAILURE);
                conn_finish(c); /* frees c at once if nothing could be queued */
                return -ECONNABORTED;
        }

        if (sr->mode != OW_MODE_OPEN) {
                _cleanup_free_ uint8_t *secret = NULL;
                size_t secret_len = 0;
                bool known = policy_lookup_key(s, sr->keyid, &secret, &secret_len) >= 0;

                /* Derive and decrypt even for an unknown identity, with a
                 * throw-away secret, so the answer takes the same time. */
                static const uint8_t dummy[16] = {};
                r = ow_engine_server_authenticate(c->io.engine, known ? secret : dummy,
                                                  known ? secret_len : sizeof(dummy));
                if (secret)
                        ow_wipe(secret, secret_len);
                if (r < 0 || !known) {
                        /* The first of a window as itself; the others in
                         * one line per source and window (guard.c). */
                        bool first = guard_auth_failed(s, &c->peer, sr->keyid);
                        conn_log(c, first ? LOG_NOTICE : LOG_DEBUG, MSGID_CONNECTION_REFUSED,
                                 "Refusing %s: authentication failed for key id '%s' (%s)", c->peer_str,
                                 sr->keyid, known ? "wrong passphrase" : "unknown key id");
                        c->quiet_close = !first;
                        (void) send_server_start(c, OW_ACCEPT_FAILURE);
                        conn_finish(c); /* frees c at once if nothing could be queued */
                        return -ECONNABORTED;
                }
                /* The test packets' keys are derived from these (session.c). */
                c->keys = *ow_engine_keys(c->io.engine);
        }

        const char *cls = policy_class_for(s, &c->peer, c->keyid[0] ? c->keyid : NULL);
        free(c->class_name);
        c->class_name = NULL;
        if (cls) {
                c->class_name = strdup(cls);
                if (!c->class_name)
                        return conn_fail(c, -ENOMEM, "cannot admit the connection");
        }

        r = send_server_start(c, OW_ACCEPT_OK);
        if (r < 0)
                return conn_fail(c, r, "cannot send Server-Start");
        conn_log(c, LOG_INFO, MSGID_CONNECTION_ACCEPTED, "Accepted connection from %s, mode %s%s%s%s%s",
                 c->peer_str, ow_mode_to_string(c->mode), c->keyid[0] ? ", key id " : "", c->keyid,
                 c->class_name ? ", class " : "", c->class_name ? c->class_name : "");
        c->state = CONN_IDLE;
        conn_arm_control_timeout(c);
        return 1;
}

/* --- Request-Session --------------------------------------------------- */

static int send_accept_session(Conn *c, OwAccept accept, uint16_t port, const OwSid *sid) {
        OwAcceptSession a = { .accept = accept };

        if (accept == OW_ACCEPT_OK) {
                a.port = port;
                a.sid = *sid;
        }
        return conn_sent(c, ow_engine_send_accept_session(c->io.engine, &a));
}

static int handle_request_session(Conn *c, OwEvent *ev) {
        int r = ev->error;

        conn_arm_control_timeout(c);
        if (r == -OW_ERR_IPVN || r == -OW_ERR_CONF || r == -OW_ERR_TYPEP || r == -OW_ERR_SLOT_TYPE ||
            r == -OW_ERR_COUNT) {
                /* We read the whole message, so we can answer instead of
                 * desynchronising as the reference does. */
                conn_log(c, LOG_NOTICE, MSGID_SESSION_REFUSED, "Refusing session from %s: %s", c->peer_str,
                         ow_strerror(r));
                r = send_accept_session(c, OW_ACCEPT_UNSUPPORTED, 0, NULL);
                return r < 0 ? conn_fail(c, r, "cannot send Accept-Session") : 1;
        }
        if (r < 0)
                return conn_fail(c, r, "bad Request-Session");

        const OwSessionRequest *req = &ev->request;
        OwAccept accept = OW_ACCEPT_OK;
        TestSession *t = NULL;
        if (c->n_sessions >= MAX_SESSIONS_PER_CONN) {
                conn_log(c, LOG_NOTICE, MSGID_SESSION_REFUSED,
                         "Refusing session from %s: more than %u sessions on one connection", c->peer_str,
                         MAX_SESSIONS_PER_CONN);
                accept = OW_ACCEPT_TEMP_RESOURCE;
        } else if (session_limit_refuse(c)) {
                /* maxtestsessions, every connection together: before
                 * anything is allocated, bound or created (no data file). */
                accept = OW_ACCEPT_TEMP_RESOURCE;
        } else {
                r = session_new(c, req, &accept, &t);
                if (r < 0 && accept == OW_ACCEPT_OK)
                        accept = OW_ACCEPT_INTERNAL;
        }

        if (!t)
                r = send_accept_session(c, accept, 0, NULL);
        else
                r = send_accept_session(c, OW_ACCEPT_OK, sockaddr_port(&t->local), &t->sid);
        if (r < 0)
                return conn_fail(c, r, "cannot send Accept-Session");
        return 1;
}

/* --- Start-Sessions ---------------------------------------------------- */

static int send_start_ack(Conn *c, OwAccept accept) {
        return conn_sent(c, ow_engine_send_start_ack(c->io.engine, accept));
}

static uint64_t guard_usec(Conn *c) {
        /* How long the batch may run: until the last packet of the longest
         * session, plus its Timeout, enddelay and a minute of grace. */
        OwTimestamp now = server_now(c->server), end = now;
        TestSession *t;
        LIST_FOREACH(by_conn, t, c->sessions) {
                OwTimestamp e = t->last_scheduled + t->req.timeout;
                if (e > end)
                        end = e;
        }
        uint64_t usec = ow_duration_to_usec(end - now) + c->server->enddelay_nsec / NSEC_PER_USEC;
        return usec + GUARD_GRACE_USEC;
}

static int handle_start_sessions(Conn *c) {
        int r;

        if (c->n_sessions == 0) {
                conn_log(c, LOG_NOTICE, MSGID_PROTOCOL_ERROR, "Start-Sessions from %s without any session",
                         c->peer_str);
                r = send_start_ack(c, OW_ACCEPT_FAILURE);
                return r < 0 ? conn_fail(c, r, "cannot send Start-Ack") : 1;
        }

        /* The workers are launched from the event loop, a few at a time
         * (session.c), while other connections are served; the Start-Ack
         * goes once every one of them is READY (conn_sessions_changed()). */
        r = session_queue_start(c);
        if (r < 0) {
                conn_log(c, LOG_ERR, MSGID_WORKER_FAILED, "Cannot start the sessions of %s: %s", c->peer_str,
                         ow_strerror(r));
                (void) send_start_ack(c, OW_ACCEPT_INTERNAL);
                conn_finish(c);
                return -ECONNABORTED;
        }
        c->state = CONN_STARTING;
        c->any_failure = false;
        c->our_stop_sent = c->peer_stop_received = false;
        c->n_started = 0;
        conn_arm_timer(c, c->server->start_timeout_usec);
        server_update_status(c->server);
        return 1;
}

/* --- Stop-Sessions ----------------------------------------------------- */

static bool all_done(Conn *c) {
        TestSession *t;
        LIST_FOREACH(by_conn, t, c->sessions)
                if (t->state != SESSION_DONE && t->state != SESSION_FINISHED)
                        return false;
        return true;
}

static int send_our_stop(Conn *c) {
        OwStopSessions st = { .accept = OW_ACCEPT_OK };
        _cleanup_free_ OwStopSession *list = NULL;
        TestSession *t;
        uint32_t n = 0;
        int r;

        list = calloc(MAX(c->n_sessions, 1u), sizeof(*list));
        if (!list)
                return -ENOMEM;
        LIST_FOREACH(by_conn, t, c->sessions) {
                if (t->failed)
                        c->any_failure = true;
                if (!t->we_send)
                        continue;
                list[n++] = (OwStopSession) {
                        .sid = t->sid,
                        .next_seqno = t->done.next_seqno,
                        .n_skip_ranges = t->done.n_skips,
                        .skip_ranges = t->done.skips,
                };
        }
        st.n_sessions = n;
        st.sessions = list;
        if (c->peer_stop_received && c->peer_stop_accept != OW_ACCEPT_OK)
                st.accept = c->peer_stop_accept; /* echo a failure (PROTOCOL.md 5.4) */
        else if (c->any_failure)
                st.accept = OW_ACCEPT_INTERNAL;

        r = conn_sent(c, ow_engine_send_stop_sessions(c->io.engine, &st));
        if (r < 0)
                return r;
        c->our_stop_sent = true;
        return 0;
}

/* Both Stop-Sessions have crossed: settle the receive sessions' data and
 * go back to waiting for commands. */
static void finish_batch(Conn *c) {
        TestSession *t, *n;

        LIST_FOREACH_SAFE(by_conn, t, n, c->sessions) {
                const OwStopSession *info = NULL;
                for (uint32_t i = 0; i < c->peer_stop.n_sessions; i++)
                        if (ow_sid_equal(&c->peer_stop.sessions[i].sid, &t->sid))
                                info = &c->peer_stop.sessions[i];
                (void) session_finalize(t, info, c->peer_stop_time);
                session_free(t);
        }
        ow_stop_sessions_done(&c->peer_stop);
        c->state = CONN_IDLE;
        c->our_stop_sent = c->peer_stop_received = false;
        c->stopping_for_failure = false;
        conn_arm_control_timeout(c);
        server_update_status(c->server);
        fetch_waits_kick(c->server); /* the batch's data is settled */
}

static void conn_sessions_changed(Conn *c) {
        int r;

        if (c->state == CONN_STARTING) {
                TestSession *t;
                bool ready = true;
                unsigned n_ready = 0;
                LIST_FOREACH(by_conn, t, c->sessions) {
                        if (t->failed) {
                                conn_log(c, LOG_ERR, MSGID_WORKER_FAILED,
                                         "Session %s failed to start; refusing the batch", t->sid_hex);
                                (void) send_start_ack(c, OW_ACCEPT_INTERNAL);
                                conn_finish(c);
                                return;
                        }
                        if (t->state == SESSION_QUEUED || t->state == SESSION_STARTING)
                                ready = false;
                        else
                                n_ready++;
                }
                if (!ready) {
                        /* A large batch takes long (units start one after
                         * another under systemd): the deadline is for a
                         * start that makes no progress, not for all of it. */
                        if (n_ready > c->n_started) {
                                c->n_started = n_ready;
                                conn_arm_timer(c, c->server->start_timeout_usec);
                        }
                        return;
                }
                r = send_start_ack(c, OW_ACCEPT_OK);
                if (r < 0) {
                        conn_fail(c, r, "cannot send Start-Ack");
                        return;
                }
                c->state = CONN_TESTING;
                conn_arm_timer(c, guard_usec(c));
                (void) ctrl_io_flush(&c->io);
                conn_update_events(c);
                /* A Stop-Sessions may already be waiting in the engine. */
                if (ow_engine_input_pending(c->io.engine) > 0)
                        (void) conn_process(c);
                return;
        }

        /* A session that failed in the middle (its worker died or could
         * not store its data) fails the batch: stop the others now rather
         * than at the end of their schedules, so that Stop-Sessions with
         * Accept 2 tells the client at once. */
        if (c->state == CONN_TESTING && !all_done(c)) {
                TestSession *t, *failed = NULL;
                LIST_FOREACH(by_conn, t, c->sessions)
                        if (t->failed && (t->state == SESSION_DONE || t->state == SESSION_FINISHED))
                                failed = t;
                if (failed && !c->stopping_for_failure) {
                        c->stopping_for_failure = true;
                        conn_log(c, LOG_WARNING, MSGID_WORKER_FAILED,
                                 "Session %s failed during the test; stopping the other sessions of %s", failed->sid_hex,
                                 c->peer_str);
                        LIST_FOREACH(by_conn, t, c->sessions)
                                if (t != failed)
                                        (void) session_stop(t, server_now(c->server), false, 0);
                }
        }

        if ((c->state == CONN_TESTING || c->state == CONN_STOPPING) && all_done(c)) {
                r = send_our_stop(c);
                if (r < 0) {
                        conn_fail(c, r, "cannot send Stop-Sessions");
                        return;
                }
                if (c->state == CONN_STOPPING)
                        finish_batch(c);
                else {
                        c->state = CONN_STOP_SENT;
                        conn_arm_control_timeout(c);
                }
                (void) ctrl_io_flush(&c->io);
                conn_update_events(c);
        }
}

static int on_session_event(sd_event_source *src _unused_, void *userdata) {
        conn_sessions_changed(userdata);
        return 0;
}

/* Sessions report changes from their workers' callbacks, which must not see
 * their session, or the whole connection, freed under them (finishing a
 * batch frees every session; a protocol error frees the connection): act
 * on the change from an event of our own. */
void conn_session_event(Conn *c) {
        (void) sd_event_source_set_enabled(c->session_source, SD_EVENT_ONESHOT);
}

static int handle_stop_sessions(Conn *c, OwEvent *ev) {
        /* The engine lets one through only in a test, once. */
        if (c->state != CONN_TESTING && c->state != CONN_STOP_SENT)
                return conn_fail(c, -OW_ERR_STATE, "Stop-Sessions outside a test");

        OwStopSessions st = TAKE_STRUCT(ev->stop);

        /* Every session we receive must be described exactly once, and
         * nothing else (PROTOCOL.md 5.4). */
        TestSession *t;
        uint32_t n_recv = 0;
        LIST_FOREACH(by_conn, t, c->sessions)
                if (!t->we_send)
                        n_recv++;
        bool ok = st.n_sessions == n_recv;
        for (uint32_t i = 0; ok && i < st.n_sessions; i++) {
                TestSession *found = NULL;
                LIST_FOREACH(by_conn, t, c->sessions)
                        if (!t->we_send && ow_sid_equal(&t->sid, &st.sessions[i].sid))
                                found = t;
                if (!found || st.sessions[i].next_seqno > found->req.n_packets)
                        ok = false;
                for (uint32_t k = 0; ok && k < i; k++)
                        if (ow_sid_equal(&st.sessions[k].sid, &st.sessions[i].sid))
                                ok = false;
        }
        if (!ok) {
                ow_stop_sessions_done(&st);
                return conn_fail(c, -OW_ERR_UNKNOWN, "Stop-Sessions does not match the sessions");
        }

        c->peer_stop = st;
        c->peer_stop_received = true;
        c->peer_stop_accept = st.accept;
        c->peer_stop_time = server_now(c->server);
        if (st.accept != OW_ACCEPT_OK)
                conn_log(c, LOG_NOTICE, MSGID_PROTOCOL_ERROR, "Peer %s reports failed sessions (Accept %u)",
                         c->peer_str, st.accept);

        if (c->state == CONN_STOP_SENT) {
                finish_batch(c);
                return 1;
        }

        /* The peer stopped first: end our endpoints now. */
        c->state = CONN_STOPPING;
        LIST_FOREACH(by_conn, t, c->sessions) {
                if (t->state == SESSION_DONE || t->state == SESSION_FINISHED)
                        continue;
                const OwStopSession *info = NULL;
                for (uint32_t i = 0; i < st.n_sessions; i++)
                        if (ow_sid_equal(&st.sessions[i].sid, &t->sid))
                                info = &st.sessions[i];
                (void) session_stop(t, c->peer_stop_time, info != NULL, info ? info->next_seqno : 0);
        }
        conn_sessions_changed(c);
        return 1;
}

/* --- Fetch-Session ----------------------------------------------------- */

static int handle_fetch_session(Conn *c, const OwEvent *ev) {
        int r;

        conn_arm_control_timeout(c);
        if (ev->error == -OW_ERR_RANGE) {
                conn_log(c, LOG_NOTICE, MSGID_PROTOCOL_ERROR, "Fetch-Session from %s with Begin > End",
                         c->peer_str);
                r = conn_sent(c, ow_engine_send_fetch_ack(c->io.engine,
                                                          &(OwFetchAck){ .accept = OW_ACCEPT_UNSUPPORTED }));
                return r < 0 ? conn_fail(c, r, "cannot send Fetch-Ack") : 1;
        }
        if (ev->error < 0)
                return conn_fail(c, ev->error, "bad Fetch-Session");
        if (datastore_fetch_must_wait(c->server, &ev->fetch)) {
                /* fetch-wait.c: nothing more is read until it is answered, and
                 * the control timeout does not run meanwhile. */
                r = fetch_wait_new(c, &ev->fetch, &c->fetch_wait);
                if (r < 0)
                        return conn_fail(c, r, "cannot wait for the session to end");
                conn_arm_timer(c, 0);
                char hex[OW_SID_HEX_SIZE];
                LogFields lf = { .message_id = MSGID_DATA_FETCHED,
                                 .sid = ow_sid_to_hex(&ev->fetch.sid, hex),
                                 .peer = c->peer_addr_str,
                                 .mode = ow_mode_to_string(c->mode),
                                 .keyid = c->keyid[0] ? c->keyid : NULL };
                log_full(LOG_INFO, 0, &lf,
                         "Whole-session fetch of %s by %s: the session is still running; waiting up to "
                         "%.1f s for it to end",
                         hex, c->peer_str,
                         (double) fetch_wait_total_usec(c->server->fetch_wait_usec) / USEC_PER_SEC);
                return 0;
        }
        r = datastore_fetch(c, &ev->fetch, 0);
        if (r < 0)
                return conn_fail(c, r, "cannot answer Fetch-Session");
        conn_update_events(c);
        return 1;
}

void conn_fetch_wait_over(Conn *c) {
        OwFetchSession f = *fetch_wait_request(c->fetch_wait);
        uint64_t waited = fetch_wait_elapsed_usec(c->fetch_wait);
        int r;

        c->fetch_wait = fetch_wait_free(c->fetch_wait);
        r = datastore_fetch(c, &f, waited);
        if (r < 0) {
                conn_fail(c, r, "cannot answer Fetch-Session");
                return;
        }
        conn_arm_control_timeout(c);
        /* Commands that arrived while it waited (read once the answer,
         * streamed or not, is out). */
        r = conn_process(c);
        if (r == -ECONNABORTED)
                return; /* c is gone */
        r = conn_fetch_pump(c);
        if (r == -ECONNABORTED)
                return;
        r = ctrl_io_flush(&c->io);
        if (r < 0) {
                conn_fail(c, r, "write failed");
                return;
        }
        conn_update_events(c);
}

/* A long fetch answer goes out as the socket takes it: its records are
 * produced while less than this waits to be sent. */
#define FETCH_WINDOW_SIZE (UINT32_C(1) << 20)

static int conn_fetch_pump(Conn *c) {
        int r;

        if (!c->fetch_stream)
                return 0;
        while (c->fetch_stream && ow_engine_output_pending(c->io.engine) < FETCH_WINDOW_SIZE) {
                r = datastore_fetch_more(c);
                if (r < 0)
                        return conn_fail(c, r, "cannot answer Fetch-Session");
        }
        conn_update_events(c);
        /* Done: commands that came meanwhile are read now. */
        if (!c->fetch_stream && ow_engine_input_pending(c->io.engine) > 0)
                return conn_process(c);
        return 0;
}

/* --- Dispatch ---------------------------------------------------------- */

static int conn_dispatch(Conn *c, OwEvent *ev) {
        /* The first command: the set-up deadline is met. */
        if (ev->type != OW_EVENT_SETUP_RESPONSE)
                c->setup_deadline = 0;
        switch (ev->type) {
        case OW_EVENT_SETUP_RESPONSE:
                return handle_setup_response(c, &ev->setup);
        case OW_EVENT_REQUEST_SESSION:
                return handle_request_session(c, ev);
        case OW_EVENT_START_SESSIONS:
                return handle_start_sessions(c);
        case OW_EVENT_STOP_SESSIONS:
                return handle_stop_sessions(c, ev);
        case OW_EVENT_FETCH_SESSION:
                return handle_fetch_session(c, ev);
        default:
                /* The engine's table: a server gets nothing else. */
                assert_not_reached();
        }
}

static int conn_process(Conn *c) {
        for (;;) {
                _cleanup_(ow_event_done) OwEvent ev = {};
                int r;

                if (c->state == CONN_CLOSING || c->state == CONN_STARTING)
                        return 0; /* STARTING: read the next command once Start-Ack is out */
                if (c->fetch_wait)
                        return 0; /* nothing more is read until the waiting fetch is answered */
                r = ow_engine_poll(c->io.engine, &ev);
                if (r < 0)
                        return conn_fail(c, r, ow_engine_error_context(c->io.engine));
                if (r == 0)
                        return 0;
                r = conn_dispatch(c, &ev);
                if (r <= 0)
                        return r;
        }
}
