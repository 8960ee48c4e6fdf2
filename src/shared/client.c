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
#include "ow-wire.h"

/* Octets of the fetched records read at a time: a multiple of the block size. */
#define CLIENT_FETCH_PIECE (UINT32_C(1) << 20)

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
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

void client_init(Client *c) {
        *c = (Client) { .fd = -1, .timeout_msec = 60000 };
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

int client_connect(Client *c, const ClientOptions *o) {
        _cleanup_free_ char *node = NULL;
        _cleanup_free_ SockAddr *addrs = NULL, *src = NULL;
        size_t n = 0, n_src = 0;
        uint16_t port;
        int r;

        c->timeout_msec = o->timeout_msec > 0 ? o->timeout_msec : 60000;
        r = net_split_node(o->server, OWAMP_CONTROL_PORT, &node, &port);
        if (r < 0 || !node)
                return client_err(c, -EINVAL, "invalid server address '%s'", o->server);
        r = net_resolve(node, port, o->family, false, &addrs, &n);
        if (r < 0)
                return client_err(c, r, "cannot resolve '%s'", node);
        if (o->source) {
                _cleanup_free_ char *snode = NULL;
                uint16_t sport;
                r = net_split_node(o->source, 0, &snode, &sport);
                if (r < 0 || !snode)
                        return client_err(c, -EINVAL, "invalid source address '%s'", o->source);
                r = net_resolve(snode, 0, o->family, false, &src, &n_src);
                if (r < 0)
                        return client_err(c, r, "cannot resolve source address '%s'", snode);
        }

        r = -EHOSTUNREACH;
        for (size_t i = 0; i < n; i++) {
                int fd = socket(addrs[i].sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                if (o->interface &&
                    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o->interface, (socklen_t) strlen(o->interface)) < 0) {
                        r = -errno;
                        safe_close(fd);
                        return client_err(c, r, "cannot use interface %s: %s", o->interface, strerror(-r));
                }
                if (src) {
                        bool bound = false;
                        for (size_t k = 0; k < n_src && !bound; k++)
                                if (src[k].sa.sa_family == addrs[i].sa.sa_family)
                                        bound = bind(fd, &src[k].sa, sockaddr_len(&src[k])) == 0;
                        if (!bound) {
                                r = -EADDRNOTAVAIL;
                                safe_close(fd);
                                continue;
                        }
                }
                r = connect_with_timeout(fd, &addrs[i], c->timeout_msec);
                if (r < 0) {
                        safe_close(fd);
                        continue;
                }
                c->fd = fd;
                c->peer = addrs[i];
                break;
        }
        if (c->fd < 0)
                return client_err(c, r, "cannot connect to %s: %s", o->server, strerror(-r));

        int one = 1;
        (void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        socklen_t l = sizeof(c->local);
        if (getsockname(c->fd, &c->local.sa, &l) < 0)
                return client_err(c, -errno, "getsockname: %s", strerror(errno));
        sockaddr_unmap_v4(&c->local);
        sockaddr_unmap_v4(&c->peer);
        ctrl_io_init(&c->io, c->fd);

        /* Server Greeting */
        OwServerGreeting g;
        r = ctrl_io_need_blocking(&c->io, OW_SERVER_GREETING_SIZE, false, false, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "no server greeting from %s: %s", o->server,
                                  r == -ECONNRESET ? "connection closed" : ow_strerror(r));
        r = ow_server_greeting_decode(ctrl_io_msg(&c->io), OW_SERVER_GREETING_SIZE, &g);
        ctrl_io_msg_done(&c->io);
        if (r < 0)
                return client_err(c, r, "bad server greeting: %s", ow_strerror(r));
        if (g.modes == 0)
                return client_err(c, -EACCES, "server %s refuses this client (no modes offered)", o->server);

        uint32_t usable = g.modes & o->modes;
        if (!o->keyid)
                usable &= OW_MODE_OPEN;
        OwMode mode = ow_modes_pick(usable);
        if (!mode)
                return client_err(c, -EPROTONOSUPPORT,
                                  "no common mode: server offers %s%s%s, we allow %s%s%s%s", 
                                  g.modes & OW_MODE_OPEN ? "O" : "", g.modes & OW_MODE_AUTHENTICATED ? "A" : "",
                                  g.modes & OW_MODE_ENCRYPTED ? "E" : "", o->modes & OW_MODE_OPEN ? "O" : "",
                                  o->modes & OW_MODE_AUTHENTICATED ? "A" : "",
                                  o->modes & OW_MODE_ENCRYPTED ? "E" : "",
                                  !o->keyid && (o->modes & ~(uint32_t) OW_MODE_OPEN) ? " (A and E need -u)" : "");
        c->mode = mode;

        /* Set-Up-Response */
        OwSetupResponse sr = { .mode = mode };
        uint8_t client_iv[OW_IV_SIZE] = {};
        if (mode != OW_MODE_OPEN) {
                int k = ow_pbkdf2_count_check_client(g.count);
                if (k < 0)
                        return client_err(c, k, "server asks for %u PBKDF2 iterations; refusing", g.count);
                if (k > 0)
                        fprintf(stderr, "owping: warning: server's PBKDF2 count %u is not a power of two\n",
                                g.count);
                uint8_t dk[OW_DK_SIZE];
                r = random_bytes(&c->keys, sizeof(c->keys));
                if (r >= 0)
                        r = random_bytes(client_iv, sizeof(client_iv));
                if (r >= 0)
                        r = ow_pbkdf2(o->secret, o->secret_len, g.salt, g.count, dk);
                if (r >= 0)
                        r = ow_token_encrypt(dk, g.challenge, &c->keys, sr.token);
                ow_wipe(dk, sizeof(dk));
                if (r < 0)
                        return client_err(c, r, "cannot build the authentication token: %s", ow_strerror(r));
                snprintf(sr.keyid, sizeof(sr.keyid), "%s", o->keyid);
                memcpy(sr.client_iv, client_iv, sizeof(client_iv));
        }
        uint8_t buf[OW_SETUP_RESPONSE_SIZE];
        r = ow_setup_response_encode(&sr, buf, sizeof(buf));
        ow_wipe(&sr, sizeof(sr));
        if (r < 0)
                return client_err(c, r, "cannot encode Set-Up-Response: %s", ow_strerror(r));
        r = ctrl_io_queue_clear(&c->io, buf, sizeof(buf));
        if (r >= 0)
                r = ctrl_io_flush_blocking(&c->io, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "cannot send Set-Up-Response: %s", strerror(-r));
        uint64_t sent_at = mono_usec();

        /* Server-Start: 32 clear octets, then one block of the server's
         * chain (when accepted). */
        r = ctrl_io_need_blocking(&c->io, OW_SERVER_START_CLEAR_SIZE, false, false, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "no Server-Start: %s",
                                  r == -ECONNRESET ? "connection closed (authentication refused?)" : ow_strerror(r));
        uint8_t ss_buf[OW_SERVER_START_SIZE] = {};
        memcpy(ss_buf, ctrl_io_msg(&c->io), OW_SERVER_START_CLEAR_SIZE);
        uint8_t accept = ss_buf[15];
        if (accept != OW_ACCEPT_OK) {
                ctrl_io_msg_done(&c->io);
                if (accept > _OW_ACCEPT_MAX)
                        return client_err(c, -OW_ERR_ACCEPT, "invalid Accept %u in Server-Start", accept);
                return client_err(c, -EACCES, "server refused the connection: %s%s", ow_accept_to_string(accept),
                                  mode != OW_MODE_OPEN ? " (wrong key id or passphrase?)" : "");
        }
        OwChannel ch;
        r = ow_channel_init(&ch, mode, OW_CONTROL_CLIENT, &c->keys, client_iv, ss_buf + 16);
        if (r < 0)
                return client_err(c, r, "cannot set up the channel: %s", ow_strerror(r));
        ctrl_io_set_channel(&c->io, &ch);
        ow_wipe(&ch, sizeof(ch));
        r = ctrl_io_need_blocking(&c->io, OW_SERVER_START_SIZE - OW_SERVER_START_CLEAR_SIZE, true, false,
                                  c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "truncated Server-Start: %s", ow_strerror(r));
        memcpy(ss_buf, ctrl_io_msg(&c->io), OW_SERVER_START_SIZE);
        ctrl_io_msg_done(&c->io);
        c->rtt_usec = mono_usec() - sent_at;
        OwServerStart ss;
        r = ow_server_start_decode(ss_buf, sizeof(ss_buf), &ss);
        if (r < 0)
                return client_err(c, r, "bad Server-Start: %s", ow_strerror(r));
        c->server_start_time = ss.start_time;
        return 0;
}

/* Read one whole server message of a known size ending in an HMAC. */
static int read_msg(Client *c, size_t size, const char *what) {
        int r = ctrl_io_need_blocking(&c->io, size, true, true, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "no %s from the server: %s", what,
                                  r == -ECONNRESET ? "connection closed" : ow_strerror(r));
        return 0;
}

int client_request_session(Client *c, OwSessionRequest *req, OwAccept *ret_accept) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size;
        int r;

        r = ow_request_session_size(req->n_slots, &size);
        if (r < 0)
                return client_err(c, r, "bad schedule: %s", ow_strerror(r));
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        r = ow_request_session_encode(req, buf, size);
        if (r < 0)
                return client_err(c, r, "cannot encode Request-Session: %s", ow_strerror(r));
        r = ctrl_io_queue_sealed(&c->io, buf, OW_REQUEST_SESSION_PREAMBLE_SIZE, true);
        if (r >= 0)
                r = ctrl_io_queue_sealed(&c->io, buf + OW_REQUEST_SESSION_PREAMBLE_SIZE,
                                         size - OW_REQUEST_SESSION_PREAMBLE_SIZE, true);
        if (r >= 0)
                r = ctrl_io_flush_blocking(&c->io, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "cannot send Request-Session: %s", strerror(-r));

        r = read_msg(c, OW_ACCEPT_SESSION_SIZE, "Accept-Session");
        if (r < 0)
                return r;
        OwAcceptSession a;
        r = ow_accept_session_decode(ctrl_io_msg(&c->io), OW_ACCEPT_SESSION_SIZE, &a);
        ctrl_io_msg_done(&c->io);
        if (r < 0)
                return client_err(c, r, "bad Accept-Session: %s", ow_strerror(r));
        *ret_accept = a.accept;
        if (a.accept != OW_ACCEPT_OK)
                return 0;
        if (req->conf_sender)
                req->sender_port = a.port;
        else {
                req->receiver_port = a.port;
                req->sid = a.sid;
        }
        return 0;
}

int client_start_sessions(Client *c, OwAccept *ret_accept) {
        uint8_t buf[OW_START_SESSIONS_SIZE];
        int r = ow_start_sessions_encode(buf, sizeof(buf));
        if (r >= 0)
                r = ctrl_io_queue_sealed(&c->io, buf, sizeof(buf), true);
        if (r >= 0)
                r = ctrl_io_flush_blocking(&c->io, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "cannot send Start-Sessions: %s", ow_strerror(r));
        r = read_msg(c, OW_START_ACK_SIZE, "Start-Ack");
        if (r < 0)
                return r;
        OwAccept a;
        r = ow_start_ack_decode(ctrl_io_msg(&c->io), OW_START_ACK_SIZE, &a);
        ctrl_io_msg_done(&c->io);
        if (r < 0)
                return client_err(c, r, "bad Start-Ack: %s", ow_strerror(r));
        *ret_accept = a;
        return 0;
}

int client_send_stop(Client *c, const OwStopSessions *st) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size;
        int r = ow_stop_sessions_size(st, &size);
        if (r < 0)
                return client_err(c, r, "cannot encode Stop-Sessions: %s", ow_strerror(r));
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        r = ow_stop_sessions_encode(st, buf, size);
        if (r >= 0)
                r = ctrl_io_queue_sealed(&c->io, buf, size, true);
        if (r >= 0)
                r = ctrl_io_flush_blocking(&c->io, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "cannot send Stop-Sessions: %s", ow_strerror(r));
        return 0;
}

int client_poll_stop(Client *c, OwStopSessions *ret) {
        int r;

        for (;;) {
                r = ctrl_io_read(&c->io);
                if (r == -EAGAIN || r == 0)
                        break;
                if (r < 0)
                        return client_err(c, r, "connection to the server failed: %s", strerror(-r));
        }
        if (c->io.msg_len == 0) {
                r = ctrl_io_need(&c->io, OW_BLOCK_SIZE, true, false);
                if (r < 0)
                        return client_err(c, r, "bad message from the server: %s", ow_strerror(r));
                if (r == 0)
                        goto more;
                if (ctrl_io_msg(&c->io)[0] != OW_CMD_STOP_SESSIONS)
                        return client_err(c, -OW_ERR_COMMAND, "unexpected message %u from the server during the test",
                                          ctrl_io_msg(&c->io)[0]);
        }
        for (;;) {
                size_t total;
                int k = ow_command_size(ctrl_io_msg(&c->io), c->io.msg_len, &total);
                if (k < 0)
                        return client_err(c, k, "bad Stop-Sessions from the server: %s", ow_strerror(k));
                if (k == 0 && c->io.msg_len == total) {
                        r = ow_stop_sessions_decode(ctrl_io_msg(&c->io), total, ret);
                        ctrl_io_msg_done(&c->io);
                        if (r < 0)
                                return client_err(c, r, "bad Stop-Sessions from the server: %s", ow_strerror(r));
                        return 1;
                }
                r = ctrl_io_need(&c->io, total - c->io.msg_len, true, k == 0);
                if (r < 0)
                        return client_err(c, r, "bad Stop-Sessions from the server: %s", ow_strerror(r));
                if (r == 0)
                        goto more;
        }
more:
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

int client_fetch(Client *c, uint32_t begin, uint32_t end, const OwSid *sid, ClientFetch *f) {
        OwFetchSession fs = { .begin = begin, .end = end, .sid = *sid };
        uint8_t buf[OW_FETCH_SESSION_SIZE];
        size_t size;
        int r;

        *f = (ClientFetch) {};
        r = ow_fetch_session_encode(&fs, buf, sizeof(buf));
        if (r >= 0)
                r = ctrl_io_queue_sealed(&c->io, buf, sizeof(buf), true);
        if (r >= 0)
                r = ctrl_io_flush_blocking(&c->io, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "cannot send Fetch-Session: %s", ow_strerror(r));

        /* The reference may think for up to ~31 s before answering
         * (PROTOCOL.md 5.7): allow for it. */
        int saved = c->timeout_msec;
        c->timeout_msec = MAX(c->timeout_msec, 45000);
        r = read_msg(c, OW_FETCH_ACK_SIZE, "Fetch-Ack");
        c->timeout_msec = saved;
        if (r < 0)
                return r;
        r = ow_fetch_ack_decode(ctrl_io_msg(&c->io), OW_FETCH_ACK_SIZE, &f->ack);
        ctrl_io_msg_done(&c->io);
        if (r < 0)
                return client_err(c, r, "bad Fetch-Ack: %s", ow_strerror(r));
        if (f->ack.accept != OW_ACCEPT_OK)
                return 0;

        /* Part 1: the Request-Session, in two HMAC-terminated pieces. */
        r = read_msg(c, OW_REQUEST_SESSION_PREAMBLE_SIZE, "fetched session request");
        if (r < 0)
                return r;
        r = ow_command_size(ctrl_io_msg(&c->io), c->io.msg_len, &size);
        if (r < 0)
                return client_err(c, r, "bad fetched request: %s", ow_strerror(r));
        r = ctrl_io_need_blocking(&c->io, size - OW_REQUEST_SESSION_PREAMBLE_SIZE, true, true, c->timeout_msec);
        if (r < 0)
                return client_err(c, r, "truncated fetched request: %s", ow_strerror(r));
        r = ow_request_session_decode(ctrl_io_msg(&c->io), size, &f->req);
        ctrl_io_msg_done(&c->io);
        if (r < 0)
                return client_err(c, r, "bad fetched request: %s", ow_strerror(r));

        /* Part 2: skip ranges. */
        r = ow_fetch_skips_size(f->ack.n_skip_ranges, &size);
        if (r < 0)
                return client_err(c, r, "bad skip range count: %s", ow_strerror(r));
        r = read_msg(c, size, "skip ranges");
        if (r < 0)
                return r;
        if (f->ack.n_skip_ranges > 0) {
                f->skips = calloc(f->ack.n_skip_ranges, sizeof(OwSkipRange));
                if (!f->skips)
                        return -ENOMEM;
        }
        r = ow_fetch_skips_decode(ctrl_io_msg(&c->io), size, f->ack.n_skip_ranges, f->skips);
        ctrl_io_msg_done(&c->io);
        if (r < 0)
                return client_err(c, r, "bad skip ranges: %s", ow_strerror(r));

        /* Part 3: records. */
        r = ow_fetch_records_size(f->ack.n_records, &size);
        if (r < 0)
                return client_err(c, r, "bad record count: %s", ow_strerror(r));
        /* Read the part in pieces: a long session is far more than the
         * control connection buffers at once (CTRL_IO_MAX_BUFFERED). The
         * running HMAC covers the pieces as one message and is checked at
         * the last one. */
        _cleanup_free_ uint8_t *plain = malloc(size);
        if (!plain)
                return -ENOMEM;
        for (size_t got = 0; got < size;) {
                size_t piece = MIN(size - got, CLIENT_FETCH_PIECE);
                bool last = got + piece == size;
                r = ctrl_io_need_blocking(&c->io, piece, true, last, MAX(c->timeout_msec, 300000));
                if (r < 0)
                        return client_err(c, r, "no session records from the server: %s",
                                          r == -ECONNRESET ? "connection closed" : ow_strerror(r));
                memcpy(plain + got, ctrl_io_msg(&c->io), piece);
                ctrl_io_msg_done(&c->io);
                got += piece;
        }
        if (f->ack.n_records > 0) {
                f->records = calloc(f->ack.n_records, sizeof(OwRecord));
                if (!f->records)
                        return -ENOMEM;
        }
        r = ow_fetch_records_decode(plain, size, f->ack.n_records, f->records);
        if (r < 0)
                return client_err(c, r, "bad records: %s", ow_strerror(r));
        return 0;
}
