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

#include "owampd.h"
#include "ow-error.h"

#define STARTING_TIMEOUT_USEC (30 * UINT64_C(1000000))
#define MAX_SESSIONS_PER_CONN 4096

static int conn_process(Conn *c);
static void conn_close(Conn *c);
static int on_session_event(sd_event_source *src, void *userdata);

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

static void conn_update_events(Conn *c) {
        if (!c->io_source)
                return;
        uint32_t ev = EPOLLIN;
        if (ctrl_io_want_write(&c->io))
                ev |= EPOLLOUT;
        (void) sd_event_source_set_io_events(c->io_source, ev);
}

static void conn_arm_timer(Conn *c, uint64_t usec) {
        if (!c->timer_source)
                return;
        if (usec == 0) {
                (void) sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
                return;
        }
        uint64_t now;
        (void) sd_event_now(c->server->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(c->timer_source, now + usec);
        (void) sd_event_source_set_enabled(c->timer_source, SD_EVENT_ONESHOT);
}

static void conn_arm_control_timeout(Conn *c) {
        conn_arm_timer(c, c->server->control_timeout_usec);
}

static int conn_send_sealed(Conn *c, uint8_t *buf, size_t len, bool hmac_last) {
        int r = ctrl_io_queue_sealed(&c->io, buf, len, hmac_last);
        if (r < 0)
                return r;
        conn_update_events(c);
        return 0;
}

/* Send what is queued, then close. */
static void conn_finish(Conn *c) {
        c->state = CONN_CLOSING;
        if (!ctrl_io_want_write(&c->io)) {
                conn_close(c);
                return;
        }
        (void) sd_event_source_set_io_events(c->io_source, EPOLLOUT);
        conn_arm_timer(c, 5 * UINT64_C(1000000));
}

/* A protocol violation or an I/O error: log and drop the connection. */
static int conn_fail(Conn *c, int error, const char *what) {
        conn_log(c, LOG_WARNING, MSGID_PROTOCOL_ERROR, "Closing connection from %s: %s: %s", c->peer_str,
                 what, ow_strerror(error));
        conn_close(c);
        return -ECONNABORTED;
}

static void conn_close(Conn *c) {
        conn_log(c, LOG_INFO, MSGID_CONNECTION_CLOSED, "Connection from %s closed (%" PRIu64
                 " octets in, %" PRIu64 " out)", c->peer_str, c->io.bytes_in, c->io.bytes_out);
        conn_free(c);
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        Server *s = c->server;
        TestSession *t, *n;
        bool had_sessions = c->sessions != NULL;
        LIST_FOREACH_SAFE(by_conn, t, n, c->sessions) {
                session_abandon(t);
                session_free(t);
        }
        fetch_wait_free(c->fetch_wait);
        sd_event_source_disable_unref(c->io_source);
        sd_event_source_disable_unref(c->timer_source);
        sd_event_source_disable_unref(c->session_source);
        ctrl_io_done(&c->io);
        safe_close(c->fd);
        ow_wipe(&c->keys, sizeof(c->keys));
        ow_stop_sessions_done(&c->peer_stop);
        free(c->class_name);
        LIST_REMOVE(conns, s->conns, c);
        s->n_conns--;
        free(c);
        server_update_status(s);
        if (had_sessions)
                fetch_waits_kick(s); /* their sessions are over (abandoned) */
        return NULL;
}

static int on_conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;
        int r;

        (void) src;
        (void) fd;
        if (revents & EPOLLOUT) {
                r = ctrl_io_flush(&c->io);
                if (r < 0)
                        return conn_fail(c, r, "write failed"), 0;
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
                        /* rlen, not ctrl_io_pending(): a message whose first
                         * block was already taken is still unfinished. */
                        const char *when = c->io.rlen > 0          ? "in the middle of a message"
                                           : c->state == CONN_SETUP ? "without answering the greeting"
                                           : c->state != CONN_IDLE  ? "in the middle of a test"
                                           : c->fetch_wait          ? "while its fetch waited"
                                                                    : NULL;
                        if (when)
                                conn_log(c, LOG_NOTICE, MSGID_CONNECTION_CLOSED,
                                         "Peer %s closed the connection %s", c->peer_str, when);
                        conn_close(c);
                        return 0;
                }
        }
        r = ctrl_io_flush(&c->io);
        if (r < 0)
                return conn_fail(c, r, "write failed"), 0;
        conn_update_events(c);
        return 0;
}

static int on_conn_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        (void) src;
        (void) usec;
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
                                if (t->worker)
                                        c->server->launcher->ops->kill(t->worker);
                        }
                break;
        }
        default:
                conn_log(c, LOG_NOTICE, MSGID_CONNECTION_CLOSED,
                         "Control connection from %s timed out: no message for controltimeout (%" PRIu64
                         " s)",
                         c->peer_str, c->server->control_timeout_usec / 1000000);
                conn_close(c);
                break;
        }
        return 0;
}

int conn_new(Server *s, int fd, const SockAddr *peer) {
        _cleanup_close_ int cfd = fd;
        Conn *c;
        int r, one = 1;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->server = s;
        c->fd = -1;
        c->peer = *peer;
        sockaddr_unmap_v4(&c->peer);
        sockaddr_str(&c->peer, c->peer_str, sizeof(c->peer_str));
        sockaddr_addr_str(&c->peer, c->peer_addr_str, sizeof(c->peer_addr_str));
        socklen_t l = sizeof(c->local);
        if (getsockname(fd, &c->local.sa, &l) < 0) {
                free(c);
                return -errno;
        }
        sockaddr_unmap_v4(&c->local);
        /* Small control messages must not wait for delayed ACKs (the
         * reference loses ~80 ms per connection to that). */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        c->fd = TAKE_FD(cfd);
        ctrl_io_init(&c->io, c->fd);
        LIST_PREPEND(conns, s->conns, c);
        s->n_conns++;

        r = sd_event_add_io(s->event, &c->io_source, c->fd, EPOLLIN, on_conn_io, c);
        if (r < 0)
                goto fail;
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
        OwServerGreeting g = { .modes = c->modes_offered, .count = s->pbkdf2_count };
        r = random_bytes(c->challenge, sizeof(c->challenge));
        if (r >= 0)
                r = random_bytes(c->salt, sizeof(c->salt));
        if (r < 0)
                goto fail;
        memcpy(g.challenge, c->challenge, sizeof(g.challenge));
        memcpy(g.salt, c->salt, sizeof(g.salt));
        uint8_t buf[OW_SERVER_GREETING_SIZE];
        r = ow_server_greeting_encode(&g, buf, sizeof(buf));
        if (r < 0)
                goto fail;
        r = ctrl_io_queue_clear(&c->io, buf, sizeof(buf));
        if (r < 0)
                goto fail;
        (void) ctrl_io_flush(&c->io);
        conn_update_events(c);
        server_update_status(s);

        if (too_many) {
                conn_log(c, LOG_WARNING, MSGID_CONNECTION_REFUSED,
                         "Refusing connection from %s: maxcontrolsessions (%u) reached", c->peer_str,
                         s->max_control_sessions);
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
        conn_arm_control_timeout(c);
        return 0;

fail:
        log_error_errno(r, "Cannot set up connection from %s: %m", c->peer_str);
        conn_free(c);
        return r;
}

/* --- Set-Up-Response --------------------------------------------------- */

static int send_server_start(Conn *c, OwAccept accept) {
        OwServerStart ss = { .accept = accept, .start_time = c->server->uptime };
        uint8_t buf[OW_SERVER_START_SIZE];
        int r;

        /* Open mode has no IV; the reference sends zeros there [CAP]. */
        if (accept == OW_ACCEPT_OK && c->mode != OW_MODE_OPEN) {
                r = random_bytes(ss.server_iv, sizeof(ss.server_iv));
                if (r < 0)
                        return r;
        }
        r = ow_server_start_encode(&ss, buf, sizeof(buf));
        if (r < 0)
                return r;
        if (accept != OW_ACCEPT_OK) {
                /* Refused: octets 32..47 go out as clear zeros (PROTOCOL.md 3.4). */
                memset(buf + OW_SERVER_START_CLEAR_SIZE, 0, OW_SERVER_START_SIZE - OW_SERVER_START_CLEAR_SIZE);
                return ctrl_io_queue_clear(&c->io, buf, sizeof(buf));
        }
        OwChannel ch;
        r = ow_channel_init(&ch, c->mode, OW_CONTROL_SERVER, &c->keys, c->client_iv,
                            ss.server_iv);
        if (r < 0)
                return r;
        ctrl_io_set_channel(&c->io, &ch);
        ow_wipe(&ch, sizeof(ch));
        r = ctrl_io_queue_clear(&c->io, buf, OW_SERVER_START_CLEAR_SIZE);
        if (r < 0)
                return r;
        return conn_send_sealed(c, buf + OW_SERVER_START_CLEAR_SIZE,
                                OW_SERVER_START_SIZE - OW_SERVER_START_CLEAR_SIZE, false);
}

static int handle_setup_response(Conn *c) {
        Server *s = c->server;
        OwSetupResponse sr;
        int r;

        r = ctrl_io_need(&c->io, OW_SETUP_RESPONSE_SIZE, false, false);
        if (r <= 0)
                return r;
        r = ow_setup_response_decode(ctrl_io_msg(&c->io), OW_SETUP_RESPONSE_SIZE, &sr);
        ctrl_io_msg_done(&c->io);
        if (r < 0)
                return conn_fail(c, r, "bad Set-Up-Response");

        c->mode = sr.mode;
        if (sr.mode != OW_MODE_OPEN)
                memcpy(c->keyid, sr.keyid, sizeof(c->keyid));

        /* The reference lets a client pick a mode it was not offered
         * (PROTOCOL.md 3.2); we refuse it. */
        if (!(c->modes_offered & (uint32_t) sr.mode)) {
                const char *cls = sr.mode == OW_MODE_OPEN && (s->modes & OW_MODE_OPEN)
                                          ? policy_class_for(s, &c->peer, NULL)
                                          : NULL;
                if (cls)
                        conn_log(c, LOG_NOTICE, MSGID_CONNECTION_REFUSED,
                                 "Refusing %s: open mode is not allowed for class %s (allow_open_mode off)",
                                 c->peer_str, cls);
                else
                        conn_log(c, LOG_NOTICE, MSGID_CONNECTION_REFUSED,
                                 "Refusing %s: mode %c was not offered (offered 0x%x)", c->peer_str,
                                 ow_mode_to_char(sr.mode), c->modes_offered);
                (void) send_server_start(c, OW_ACCEPT_FAILURE);
                ow_wipe(&sr, sizeof(sr));
                conn_finish(c); /* frees c at once if nothing could be queued */
                return -ECONNABORTED;
        }

        if (sr.mode != OW_MODE_OPEN) {
                _cleanup_free_ uint8_t *secret = NULL;
                size_t secret_len = 0;
                uint8_t dk[OW_DK_SIZE];
                bool known = policy_lookup_key(s, sr.keyid, &secret, &secret_len) >= 0;

                /* Derive and decrypt even for an unknown identity, with a
                 * throw-away secret, so the answer takes the same time. */
                static const uint8_t dummy[16] = {};
                r = ow_pbkdf2(known ? secret : dummy, known ? secret_len : sizeof(dummy), c->salt,
                              s->pbkdf2_count, dk);
                if (secret) {
                        ow_wipe(secret, secret_len);
                }
                if (r >= 0)
                        r = ow_token_decrypt(dk, sr.token, c->challenge, &c->keys);
                ow_wipe(dk, sizeof(dk));
                if (r < 0 || !known) {
                        conn_log(c, LOG_NOTICE, MSGID_CONNECTION_REFUSED,
                                 "Refusing %s: authentication failed for key id '%s' (%s)", c->peer_str,
                                 sr.keyid, known ? "wrong passphrase" : "unknown key id");
                        ow_wipe(&sr, sizeof(sr));
                        (void) send_server_start(c, OW_ACCEPT_FAILURE);
                        conn_finish(c); /* frees c at once if nothing could be queued */
                        return -ECONNABORTED;
                }
                memcpy(c->client_iv, sr.client_iv, sizeof(c->client_iv));
        }
        ow_wipe(&sr, sizeof(sr));

        const char *cls = policy_class_for(s, &c->peer, c->keyid[0] ? c->keyid : NULL);
        free(c->class_name);
        c->class_name = cls ? strdup(cls) : NULL;

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
        uint8_t buf[OW_ACCEPT_SESSION_SIZE];

        if (accept == OW_ACCEPT_OK) {
                a.port = port;
                a.sid = *sid;
        }
        int r = ow_accept_session_encode(&a, buf, sizeof(buf));
        if (r < 0)
                return r;
        return conn_send_sealed(c, buf, sizeof(buf), true);
}

static int handle_request_session(Conn *c) {
        const uint8_t *m;
        size_t total;
        int r;

        /* First block already in; the rest of the preamble ends with its HMAC. */
        if (c->io.msg_len < OW_REQUEST_SESSION_PREAMBLE_SIZE) {
                r = ctrl_io_need(&c->io, OW_REQUEST_SESSION_PREAMBLE_SIZE - c->io.msg_len, true, true);
                if (r < 0)
                        return conn_fail(c, r, "Request-Session");
                if (r == 0)
                        return 0;
        }
        m = ctrl_io_msg(&c->io);
        r = ow_command_size(m, c->io.msg_len, &total);
        if (r < 0)
                return conn_fail(c, r, "Request-Session");
        if (c->io.msg_len < total) {
                r = ctrl_io_need(&c->io, total - c->io.msg_len, true, true);
                if (r < 0)
                        return conn_fail(c, r, "Request-Session slots");
                if (r == 0)
                        return 0;
        }

        OwSessionRequest req = {};
        r = ow_request_session_decode(ctrl_io_msg(&c->io), total, &req);
        ctrl_io_msg_done(&c->io);
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

        OwAccept accept = OW_ACCEPT_OK;
        TestSession *t = NULL;
        if (c->n_sessions >= MAX_SESSIONS_PER_CONN) {
                conn_log(c, LOG_NOTICE, MSGID_SESSION_REFUSED,
                         "Refusing session from %s: more than %u sessions on one connection", c->peer_str,
                         MAX_SESSIONS_PER_CONN);
                accept = OW_ACCEPT_TEMP_RESOURCE;
        } else {
                r = session_new(c, &req, &accept, &t);
                if (r < 0 && accept == OW_ACCEPT_OK)
                        accept = OW_ACCEPT_INTERNAL;
        }
        ow_session_request_done(&req);

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
        uint8_t buf[OW_START_ACK_SIZE];
        int r = ow_start_ack_encode(accept, buf, sizeof(buf));
        if (r < 0)
                return r;
        return conn_send_sealed(c, buf, sizeof(buf), true);
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
        uint64_t usec = ow_duration_to_usec(end - now) + c->server->enddelay_nsec / 1000;
        return usec + 60 * UINT64_C(1000000);
}

static int handle_start_sessions(Conn *c) {
        int r = ctrl_io_need(&c->io, OW_START_SESSIONS_SIZE - c->io.msg_len, true, true);
        if (r <= 0)
                return r < 0 ? conn_fail(c, r, "Start-Sessions") : 0;
        r = ow_start_sessions_decode(ctrl_io_msg(&c->io), OW_START_SESSIONS_SIZE);
        ctrl_io_msg_done(&c->io);
        if (r < 0)
                return conn_fail(c, r, "bad Start-Sessions");

        if (c->n_sessions == 0) {
                conn_log(c, LOG_NOTICE, MSGID_PROTOCOL_ERROR, "Start-Sessions from %s without any session",
                         c->peer_str);
                r = send_start_ack(c, OW_ACCEPT_FAILURE);
                return r < 0 ? conn_fail(c, r, "cannot send Start-Ack") : 1;
        }

        TestSession *t;
        LIST_FOREACH(by_conn, t, c->sessions) {
                r = session_start(t);
                if (r < 0) {
                        conn_log(c, LOG_ERR, MSGID_WORKER_FAILED, "Cannot start session %s: %s", t->sid_hex,
                                 ow_strerror(r));
                        (void) send_start_ack(c, OW_ACCEPT_INTERNAL);
                        conn_finish(c);
                        return -ECONNABORTED;
                }
        }
        c->state = CONN_STARTING;
        c->any_failure = false;
        c->our_stop_sent = c->peer_stop_received = false;
        conn_arm_timer(c, STARTING_TIMEOUT_USEC);
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
        _cleanup_free_ uint8_t *buf = NULL;
        TestSession *t;
        size_t size;
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

        r = ow_stop_sessions_size(&st, &size);
        if (r < 0)
                return r;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        r = ow_stop_sessions_encode(&st, buf, size);
        if (r < 0)
                return r;
        r = conn_send_sealed(c, buf, size, true);
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
        conn_arm_control_timeout(c);
        server_update_status(c->server);
        fetch_waits_kick(c->server); /* the batch's data is settled */
}

static void conn_sessions_changed(Conn *c) {
        int r;

        if (c->state == CONN_STARTING) {
                TestSession *t;
                bool ready = true;
                LIST_FOREACH(by_conn, t, c->sessions) {
                        if (t->failed) {
                                conn_log(c, LOG_ERR, MSGID_WORKER_FAILED,
                                         "Session %s failed to start; refusing the batch", t->sid_hex);
                                (void) send_start_ack(c, OW_ACCEPT_INTERNAL);
                                conn_finish(c);
                                return;
                        }
                        if (t->state == SESSION_STARTING)
                                ready = false;
                }
                if (!ready)
                        return;
                r = send_start_ack(c, OW_ACCEPT_OK);
                if (r < 0) {
                        conn_fail(c, r, "cannot send Start-Ack");
                        return;
                }
                c->state = CONN_TESTING;
                conn_arm_timer(c, guard_usec(c));
                (void) ctrl_io_flush(&c->io);
                conn_update_events(c);
                /* A Stop-Sessions may already be waiting in the buffer. */
                if (ctrl_io_pending(&c->io) > 0)
                        (void) conn_process(c);
                return;
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

static int on_session_event(sd_event_source *src, void *userdata) {
        (void) src;
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

static int handle_stop_sessions(Conn *c) {
        size_t total;
        int r;

        for (;;) {
                int k = ow_command_size(ctrl_io_msg(&c->io), c->io.msg_len, &total);
                if (k < 0)
                        return conn_fail(c, k, "bad Stop-Sessions");
                if (k == 0 && c->io.msg_len == total)
                        break;
                if (total <= c->io.msg_len)
                        return conn_fail(c, -OW_ERR_TRUNCATED, "bad Stop-Sessions size");
                /* Only the final part ends with the HMAC block. */
                r = ctrl_io_need(&c->io, total - c->io.msg_len, true, k == 0);
                if (r < 0)
                        return conn_fail(c, r, "Stop-Sessions");
                if (r == 0)
                        return 0;
        }

        if (c->state != CONN_TESTING && c->state != CONN_STOP_SENT) {
                ctrl_io_msg_done(&c->io);
                return conn_fail(c, -OW_ERR_STATE, "Stop-Sessions outside a test");
        }

        OwStopSessions st = {};
        r = ow_stop_sessions_decode(ctrl_io_msg(&c->io), total, &st);
        ctrl_io_msg_done(&c->io);
        if (r < 0)
                return conn_fail(c, r, "bad Stop-Sessions");

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

static int handle_fetch_session(Conn *c) {
        OwFetchSession f;
        int r = ctrl_io_need(&c->io, OW_FETCH_SESSION_SIZE - c->io.msg_len, true, true);
        if (r <= 0)
                return r < 0 ? conn_fail(c, r, "Fetch-Session") : 0;
        r = ow_fetch_session_decode(ctrl_io_msg(&c->io), OW_FETCH_SESSION_SIZE, &f);
        ctrl_io_msg_done(&c->io);
        conn_arm_control_timeout(c);
        if (r == -OW_ERR_RANGE) {
                OwFetchAck a = { .accept = OW_ACCEPT_UNSUPPORTED };
                uint8_t buf[OW_FETCH_ACK_SIZE];
                conn_log(c, LOG_NOTICE, MSGID_PROTOCOL_ERROR, "Fetch-Session from %s with Begin > End",
                         c->peer_str);
                r = ow_fetch_ack_encode(&a, buf, sizeof(buf));
                if (r >= 0)
                        r = conn_send_sealed(c, buf, sizeof(buf), true);
                return r < 0 ? conn_fail(c, r, "cannot send Fetch-Ack") : 1;
        }
        if (r < 0)
                return conn_fail(c, r, "bad Fetch-Session");
        if (datastore_fetch_must_wait(c->server, &f)) {
                /* fetch-wait.c: nothing more is read until it is answered, and
                 * the control timeout does not run meanwhile. */
                r = fetch_wait_new(c, &f, &c->fetch_wait);
                if (r < 0)
                        return conn_fail(c, r, "cannot wait for the session to end");
                conn_arm_timer(c, 0);
                char hex[OW_SID_HEX_SIZE];
                LogFields lf = { .message_id = MSGID_DATA_FETCHED,
                                 .sid = ow_sid_to_hex(&f.sid, hex),
                                 .peer = c->peer_addr_str,
                                 .mode = ow_mode_to_string(c->mode),
                                 .keyid = c->keyid[0] ? c->keyid : NULL };
                log_full(LOG_INFO, 0, &lf,
                         "Whole-session fetch of %s by %s: the session is still running; waiting up to "
                         "%.1f s for it to end",
                         hex, c->peer_str, (double) fetch_wait_total_usec(c->server->fetch_wait_usec) / 1e6);
                return 0;
        }
        r = datastore_fetch(c, &f, 0);
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
        /* Commands that arrived while it waited. */
        r = conn_process(c);
        if (r == -ECONNABORTED)
                return; /* c is gone */
        r = ctrl_io_flush(&c->io);
        if (r < 0) {
                conn_fail(c, r, "write failed");
                return;
        }
        conn_update_events(c);
}

/* --- Dispatch ---------------------------------------------------------- */

static int conn_process(Conn *c) {
        int r;

        for (;;) {
                if (c->state == CONN_CLOSING || c->fetch_wait)
                        return 0;
                if (c->state == CONN_SETUP) {
                        r = handle_setup_response(c);
                        if (r <= 0)
                                return r;
                        continue;
                }
                if (c->state == CONN_STARTING)
                        return 0; /* read the next command once Start-Ack is out */

                /* A command: its first block tells what it is. */
                if (c->io.msg_len == 0) {
                        r = ctrl_io_need(&c->io, OW_BLOCK_SIZE, true, false);
                        if (r < 0)
                                return conn_fail(c, r, "command");
                        if (r == 0)
                                return 0;
                }
                int cmd = ow_command_type(ctrl_io_msg(&c->io), c->io.msg_len);
                if (cmd < 0)
                        return conn_fail(c, cmd, "unknown command");

                bool testing = c->state != CONN_IDLE;
                if (testing && cmd != OW_CMD_STOP_SESSIONS)
                        return conn_fail(c, -OW_ERR_STATE, "only Stop-Sessions is allowed during a test");

                switch (cmd) {
                case OW_CMD_REQUEST_SESSION:
                        r = handle_request_session(c);
                        break;
                case OW_CMD_START_SESSIONS:
                        r = handle_start_sessions(c);
                        break;
                case OW_CMD_STOP_SESSIONS:
                        r = handle_stop_sessions(c);
                        break;
                case OW_CMD_FETCH_SESSION:
                        r = handle_fetch_session(c);
                        break;
                default:
                        return conn_fail(c, -OW_ERR_COMMAND, "unknown command");
                }
                if (r <= 0)
                        return r;
        }
}
