/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The sd-event client (client-async.h).
 *
 * Without arguments: against a server engine in the same event loop, over
 * a socketpair, in modes O, A and E: the set-up, three Request-Sessions
 * pipelined and answered in order, Start-Sessions, the server's
 * Stop-Sessions and ours, a fetch of 20,000 records streamed to its
 * callback, the server going away (with a command unanswered), reconnecting;
 * a refused set-up, a server that never greets (the timeout), nobody
 * listening.
 *
 * With --server HOST:PORT --mode O|A|E [--keyid K --secret S]: against a
 * real owampd (test/integration/test-client-async.py starts one): two
 * sessions requested at once, a disconnect, a reconnect, a whole batch
 * (request, start, our Stop-Sessions, the server's) and the fetch of the
 * session the server received. Exits 0 when all went as it must.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "client-async.h"
#include "ctrl-io.h"
#include "macro.h"
#include "ow-error.h"
#include "testutil.h"
#include "units.h"

#define SECRET "async-secret"
#define KEYID "async"

/* --- A server engine on the other end of a socketpair ---------------------- */

typedef struct TestServer {
        sd_event *event;
        CtrlIO io;
        int fd;
        sd_event_source *src;
        bool refuse, silent;
        uint32_t fetch_records;
        unsigned n_requests;
        bool got_stop;
} TestServer;

static void server_close(TestServer *s) {
        s->src = sd_event_source_disable_unref(s->src);
        ctrl_io_done(&s->io);
        s->fd = safe_close(s->fd);
}

static void server_flush(TestServer *s) {
        ck_assert_int_ge(ctrl_io_flush(&s->io), 0);
        (void) sd_event_source_set_io_events(s->src, EPOLLIN | (ctrl_io_want_write(&s->io) ? EPOLLOUT : 0));
}

static void server_answer(TestServer *s, OwEvent *ev) {
        OwEngine *e = s->io.engine;
        uint8_t iv[OW_IV_SIZE] = { 9 };

        switch (ev->type) {
        case OW_EVENT_SETUP_RESPONSE:
                if (ev->setup.mode != OW_MODE_OPEN)
                        ck_assert_int_eq(ow_engine_server_authenticate(e, SECRET, strlen(SECRET)), 0);
                ck_assert_int_eq(ow_engine_send_server_start(e, s->refuse ? OW_ACCEPT_FAILURE : OW_ACCEPT_OK,
                                                             iv, UINT64_C(42) << 32),
                                 0);
                break;
        case OW_EVENT_REQUEST_SESSION: {
                OwAcceptSession a = { .accept = OW_ACCEPT_OK, .port = (uint16_t) (9000 + s->n_requests++) };
                a.sid.bytes[0] = (uint8_t) s->n_requests;
                ck_assert_int_eq(ow_engine_send_accept_session(e, &a), 0);
                break;
        }
        case OW_EVENT_START_SESSIONS: {
                OwStopSession one = { .next_seqno = 77 };
                ck_assert_int_eq(ow_engine_send_start_ack(e, OW_ACCEPT_OK), 0);
                /* The server stops first here. */
                ck_assert_int_eq(ow_engine_send_stop_sessions(e, &(OwStopSessions){ .accept = OW_ACCEPT_OK,
                                                                                    .n_sessions = 1,
                                                                                    .sessions = &one }),
                                 0);
                break;
        }
        case OW_EVENT_STOP_SESSIONS:
                s->got_stop = true;
                ck_assert_int_eq(ow_engine_state(e), OW_ENGINE_IDLE);
                break;
        case OW_EVENT_FETCH_SESSION: {
                OwSlot slot = { OW_SLOT_FIXED, 1 << 24 };
                OwSessionRequest q = { .ipvn = 4,
                                       .conf_receiver = true,
                                       .n_slots = 1,
                                       .n_packets = 5,
                                       .slots = &slot,
                                       .sid = ev->fetch.sid };
                OwFetchAck ack = { .accept = OW_ACCEPT_OK, .finished = 1, .n_records = s->fetch_records };
                ck_assert_int_eq(ow_engine_send_fetch_ack(e, &ack), 0);
                ck_assert_int_eq(ow_engine_send_fetch_request(e, &q), 0);
                ck_assert_int_eq(ow_engine_send_fetch_skips(e, NULL, 0), 0);
                for (uint32_t i = 0; i < s->fetch_records; i++) {
                        OwRecord r = { .seq = i,
                                       .send_err = 1,
                                       .recv_err = 1,
                                       .send_time = i,
                                       .recv_time = i + 1,
                                       .ttl = 255 };
                        ck_assert_int_eq(ow_engine_send_fetch_records(e, &r, 1), 0);
                }
                break;
        }
        default:
                ck_abort_msg("server event %d", ev->type);
        }
}

static int on_server_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        TestServer *s = userdata;
        OwEvent ev;
        int r;

        (void) src;
        (void) fd;
        if (revents & EPOLLOUT)
                ck_assert_int_ge(ctrl_io_flush(&s->io), 0);
        if (revents & (EPOLLIN | EPOLLHUP)) {
                while ((r = ctrl_io_read(&s->io)) > 0)
                        ;
                while ((r = ow_engine_poll(s->io.engine, &ev)) > 0) {
                        server_answer(s, &ev);
                        ow_event_done(&ev);
                }
                ck_assert_int_eq(r, 0);
                if (s->io.eof) {
                        server_close(s);
                        return 0;
                }
        }
        server_flush(s);
        return 0;
}

/* A connected pair: the client's end is returned. */
static int server_start(TestServer *s, sd_event *event) {
        OwServerGreeting g = { .modes = OW_MODES_ALL, .count = 1024 };
        int sv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        s->event = event;
        s->fd = sv[1];
        ck_assert_int_eq(ctrl_io_attach(&s->io, s->fd, OW_CONTROL_SERVER), 0);
        ck_assert_int_ge(sd_event_add_io(event, &s->src, s->fd, EPOLLIN, on_server_io, s), 0);
        if (!s->silent) {
                g.challenge[0] = 1;
                ck_assert_int_eq(ow_engine_send_greeting(s->io.engine, &g), 0);
                server_flush(s);
        }
        return sv[0];
}

/* --- The client's side ------------------------------------------------------ */

typedef struct Run {
        sd_event *event;
        ClientAsync *c;
        ClientOptions o;
        unsigned ready, disconnects, accepts, start_acks, server_stops, fetch_parts;
        uint16_t ports[8];
        uint32_t records;
        bool fetch_done;
        int reply_error;
        int disconnect_error;
        char reason[256];
        OwSid sid;
} Run;

static void on_ready(ClientAsync *c, void *userdata) {
        Run *run = userdata;
        (void) c;
        run->ready++;
}

static void on_stop(ClientAsync *c, OwStopSessions *st, void *userdata) {
        Run *run = userdata;
        (void) c;
        run->server_stops++;
        ow_stop_sessions_done(st);
}

static void on_disconnected(ClientAsync *c, int error, const char *reason, void *userdata) {
        Run *run = userdata;
        ck_assert_int_eq(client_async_state(c), CLIENT_ASYNC_IDLE);
        run->disconnects++;
        run->disconnect_error = error;
        snprintf(run->reason, sizeof(run->reason), "%s", reason);
}

static const ClientAsyncCallbacks callbacks = {
        .ready = on_ready,
        .stop_sessions = on_stop,
        .disconnected = on_disconnected,
};

static void on_accept(ClientAsync *c, int error, OwEvent *ev, void *userdata) {
        Run *run = userdata;
        (void) c;
        if (error < 0) {
                run->reply_error = error;
                ck_assert_ptr_null(ev);
                return;
        }
        ck_assert_int_eq(ev->type, OW_EVENT_ACCEPT_SESSION);
        ck_assert_int_eq(ev->accept_session.accept, OW_ACCEPT_OK);
        ck_assert_uint_lt(run->accepts, ELEMENTSOF(run->ports));
        run->ports[run->accepts++] = ev->accept_session.port;
        run->sid = ev->accept_session.sid;
}

static void on_start_ack(ClientAsync *c, int error, OwEvent *ev, void *userdata) {
        Run *run = userdata;
        (void) c;
        ck_assert_int_eq(error, 0);
        ck_assert_int_eq(ev->type, OW_EVENT_START_ACK);
        ck_assert_int_eq(ev->accept, OW_ACCEPT_OK);
        run->start_acks++;
}

static void on_fetch(ClientAsync *c, int error, OwEvent *ev, void *userdata) {
        Run *run = userdata;
        (void) c;
        ck_assert_int_eq(error, 0);
        ck_assert(!run->fetch_done);
        run->fetch_parts++;
        switch (ev->type) {
        case OW_EVENT_FETCH_ACK:
                ck_assert_int_eq(ev->fetch_ack.accept, OW_ACCEPT_OK);
                break;
        case OW_EVENT_FETCH_REQUEST:
                ck_assert_bytes_eq(ev->request.sid.bytes, run->sid.bytes, OW_SID_SIZE);
                break;
        case OW_EVENT_FETCH_SKIPS:
                break;
        case OW_EVENT_FETCH_RECORDS:
                for (uint32_t i = 0; i < ev->records.n; i++)
                        ck_assert_uint_eq(ev->records.records[i].seq, run->records + i);
                run->records += ev->records.n;
                break;
        case OW_EVENT_FETCH_DONE:
                run->fetch_done = true;
                break;
        default:
                ck_abort_msg("fetch event %d", ev->type);
        }
}

/* Run the loop until cond holds, for 10 s at most. */
#define RUN_UNTIL(run, cond)                                                                 \
        do {                                                                                 \
                for (int _k = 0; _k < 10000 && !(cond); _k++)                                \
                        ck_assert_int_ge(sd_event_run((run)->event, 10 * USEC_PER_MSEC), 0); \
                ck_assert_msg((cond), "not reached: " #cond);                                \
        } while (0)

static void run_init(Run *run, uint32_t modes) {
        *run = (Run){
                .o = { .server = "socketpair",
                       .modes = modes,
                       .keyid = KEYID,
                       .secret = (const uint8_t *) SECRET,
                       .secret_len = strlen(SECRET),
                       .timeout_msec = 5000 },
        };
        ck_assert_int_ge(sd_event_new(&run->event), 0);
        ck_assert_int_eq(client_async_new(run->event, &run->o, &callbacks, run, &run->c), 0);
}

static void run_done(Run *run) {
        run->c = client_async_free(run->c);
        run->event = sd_event_unref(run->event);
}

static OwSessionRequest some_request(void) {
        static OwSlot slot = { OW_SLOT_FIXED, 1 << 24 };
        OwSessionRequest q = { .ipvn = 4,
                               .conf_receiver = true,
                               .n_slots = 1,
                               .n_packets = 5,
                               .sender_port = 9,
                               .slots = &slot };
        q.sender_addr[0] = q.receiver_addr[0] = 127;
        q.sender_addr[3] = q.receiver_addr[3] = 1;
        return q;
}

START_TEST(test_session) {
        static const uint32_t modes[] = { OW_MODE_OPEN, OW_MODE_AUTHENTICATED, OW_MODE_ENCRYPTED };
        OwSessionRequest q = some_request();
        TestServer s = { .fd = -1, .fetch_records = 20000 };
        Run run;

        run_init(&run, modes[_i]);
        ck_assert_int_eq(client_async_request_session(run.c, &q, on_accept, &run), -ENOTCONN);
        ck_assert_int_eq(client_async_connect_fd(run.c, server_start(&s, run.event)), 0);
        ck_assert_int_eq(client_async_state(run.c), CLIENT_ASYNC_CONNECTING);
        RUN_UNTIL(&run, run.ready == 1);
        ck_assert_int_eq(client_async_state(run.c), CLIENT_ASYNC_READY);
        const ClientAsyncInfo *info = client_async_info(run.c);
        ck_assert_ptr_nonnull(info);
        ck_assert_int_eq(info->mode, (int) modes[_i]);
        ck_assert_uint_eq(info->server_start_time, UINT64_C(42) << 32);
        if (modes[_i] != OW_MODE_OPEN) /* what the server decrypted from the Token */
                ck_assert_bytes_eq(info->keys.aes, ow_engine_keys(s.io.engine)->aes, OW_AES_KEY_SIZE);

        /* Three at once, answered in order. */
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(client_async_request_session(run.c, &q, on_accept, &run), 0);
        ck_assert_uint_eq(client_async_pending(run.c), 3);
        RUN_UNTIL(&run, run.accepts == 3);
        ck_assert_uint_eq(run.ports[0], 9000);
        ck_assert_uint_eq(run.ports[1], 9001);
        ck_assert_uint_eq(run.ports[2], 9002);
        ck_assert_uint_eq(client_async_pending(run.c), 0);

        ck_assert_int_eq(client_async_start_sessions(run.c, on_start_ack, &run), 0);
        ck_assert_int_eq(client_async_request_session(run.c, &q, on_accept, &run), -OW_ERR_STATE);
        RUN_UNTIL(&run, run.start_acks == 1 && run.server_stops == 1);
        ck_assert_int_eq(client_async_stop_sessions(run.c, &(OwStopSessions){ .accept = OW_ACCEPT_OK }), 0);
        RUN_UNTIL(&run, s.got_stop);

        ck_assert_int_eq(client_async_fetch(run.c, &(OwFetchSession){ .end = UINT32_MAX, .sid = run.sid },
                                            on_fetch, &run),
                         0);
        RUN_UNTIL(&run, run.fetch_done);
        ck_assert_uint_eq(run.records, 20000);
        ck_assert_uint_ge(run.fetch_parts, 4 + 20000 / OW_ENGINE_RECORD_BATCH);
        ck_assert_uint_eq(run.disconnects, 0);

        /* The server goes, with a command of ours unanswered (and unread:
         * the socket resets rather than ends). */
        ck_assert_int_eq(client_async_request_session(run.c, &q, on_accept, &run), 0);
        server_close(&s);
        RUN_UNTIL(&run, run.disconnects == 1);
        ck_assert_int_eq(run.reply_error, -ECONNRESET);
        ck_assert_int_eq(run.disconnect_error, -ECONNRESET);
        ck_assert_str_eq(run.reason, "connection to the server failed: Connection reset by peer");
        ck_assert_int_eq(client_async_stop_sessions(run.c, &(OwStopSessions){}), -ENOTCONN);

        /* And again, on a new connection. */
        ck_assert_int_eq(client_async_connect_fd(run.c, server_start(&s, run.event)), 0);
        RUN_UNTIL(&run, run.ready == 2);
        ck_assert_int_eq(client_async_request_session(run.c, &q, on_accept, &run), 0);
        RUN_UNTIL(&run, run.accepts == 4);
        ck_assert_uint_eq(run.ports[3], 9003); /* the first server never read the last one */

        /* Closed with nothing unread: the end of the stream. */
        server_close(&s);
        RUN_UNTIL(&run, run.disconnects == 2);
        ck_assert_int_eq(run.disconnect_error, -ECONNRESET);
        ck_assert_str_eq(run.reason, "the server closed the connection");

        /* Our own disconnect: no callback. */
        ck_assert_int_eq(client_async_connect_fd(run.c, server_start(&s, run.event)), 0);
        RUN_UNTIL(&run, run.ready == 3);
        client_async_disconnect(run.c);
        ck_assert_int_eq(client_async_state(run.c), CLIENT_ASYNC_IDLE);
        ck_assert_uint_eq(run.disconnects, 2);
        server_close(&s);
        run_done(&run);
}
END_TEST

/* A connection to a server that behaves as s says: it must end with
 * error and a reason that starts with `reason`, and never be ready. */
static void expect_disconnect(Run *run, TestServer s, int error, const char *reason) {
        unsigned n = run->disconnects;

        ck_assert_int_eq(client_async_connect_fd(run->c, server_start(&s, run->event)), 0);
        RUN_UNTIL(run, run->disconnects == n + 1);
        ck_assert_int_eq(run->disconnect_error, error);
        ck_assert_msg(startswith(run->reason, reason), "reason '%s'", run->reason);
        ck_assert_uint_eq(run->ready, 0);
        server_close(&s);
}

START_TEST(test_refused) {
        Run run;

        run_init(&run, OW_MODE_ENCRYPTED);
        expect_disconnect(
                &run, (TestServer){ .fd = -1, .refuse = true }, -EACCES,
                "server refused the connection: failure, reason unspecified (wrong key id or passphrase?)");
        /* No common mode: the client leaves after the greeting. */
        run.o.modes = OW_MODE_ENCRYPTED;
        run.o.keyid = NULL;
        expect_disconnect(&run, (TestServer){ .fd = -1 }, -EPROTONOSUPPORT,
                          "no common mode: server offers OAE, we allow E (A and E need -u)");
        run_done(&run);
}
END_TEST

START_TEST(test_timeout) {
        Run run;

        run_init(&run, OW_MODE_OPEN);
        run.o.timeout_msec = 200;
        run.c = client_async_free(run.c);
        ck_assert_int_eq(client_async_new(run.event, &run.o, &callbacks, &run, &run.c), 0);
        expect_disconnect(&run, (TestServer){ .fd = -1, .silent = true }, -ETIMEDOUT,
                          "no answer from the server within 200 ms");
        run_done(&run);
}
END_TEST

START_TEST(test_nobody_listening) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(a);
        char server[64];
        Run run;

        /* A port that was free a moment ago: bound, never listened on. */
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &a, &l), 0);
        snprintf(server, sizeof(server), "127.0.0.1:%u", ntohs(a.sin_port));
        run_init(&run, OW_MODE_OPEN);
        run.o.server = server;
        ck_assert_int_le(client_async_connect(run.c), 0);
        RUN_UNTIL(&run, run.disconnects == 1);
        ck_assert_int_eq(run.disconnect_error, -ECONNREFUSED);
        ck_assert(strstr(run.reason, "cannot connect to 127.0.0.1:"));
        safe_close(fd);
        run_done(&run);
}
END_TEST

/* --- Against a real owampd --------------------------------------------------- */

#define LIVE_CHECK(cond, ...)                                               \
        do {                                                                \
                if (!(cond)) {                                              \
                        fprintf(stderr, "test-client-async: " __VA_ARGS__); \
                        fprintf(stderr, " (%s)\n", #cond);                  \
                        return EXIT_FAILURE;                                \
                }                                                           \
        } while (0)

#define LIVE_RUN_UNTIL(run, cond)                                                       \
        do {                                                                            \
                for (int _k = 0; _k < 3000 && !(cond) && (run)->disconnects == 0; _k++) \
                        (void) sd_event_run((run)->event, 10 * USEC_PER_MSEC);          \
                LIVE_CHECK((cond), "not reached, last error: %s", (run)->reason);       \
        } while (0)

static void live_accept(ClientAsync *c, int error, OwEvent *ev, void *userdata) {
        Run *run = userdata;
        (void) c;
        if (error < 0 || ev->accept_session.accept != OW_ACCEPT_OK) {
                run->reply_error = error < 0 ? error : -EACCES;
                return;
        }
        if (run->accepts < ELEMENTSOF(run->ports))
                run->ports[run->accepts] = ev->accept_session.port;
        run->accepts++;
        run->sid = ev->accept_session.sid;
}

static void live_start_ack(ClientAsync *c, int error, OwEvent *ev, void *userdata) {
        Run *run = userdata;
        (void) c;
        if (error < 0 || ev->accept != OW_ACCEPT_OK)
                run->reply_error = error < 0 ? error : -EACCES;
        else
                run->start_acks++;
}

static void live_fetch(ClientAsync *c, int error, OwEvent *ev, void *userdata) {
        Run *run = userdata;
        (void) c;
        if (error < 0) {
                run->reply_error = error;
                return;
        }
        run->fetch_parts++;
        if (ev->type == OW_EVENT_FETCH_ACK && ev->fetch_ack.accept != OW_ACCEPT_OK)
                run->reply_error = -EACCES;
        if (ev->type == OW_EVENT_FETCH_REQUEST &&
            memcmp(ev->request.sid.bytes, run->sid.bytes, OW_SID_SIZE) != 0)
                run->reply_error = -EBADMSG;
        if (ev->type == OW_EVENT_FETCH_RECORDS)
                run->records += ev->records.n;
        if (ev->type == OW_EVENT_FETCH_DONE)
                run->fetch_done = true;
}

/* A session the server receives from our loopback address, starting a
 * second from now (the packets are never sent). */
static OwSessionRequest live_request(const ClientAsync *c) {
        static OwSlot slot = { OW_SLOT_FIXED, 1 << 24 }; /* 1/256 s */
        OwSessionRequest q = { .conf_receiver = true,
                               .n_slots = 1,
                               .n_packets = 5,
                               .slots = &slot,
                               .timeout = UINT64_C(1) << 32 };
        (void) sockaddr_to_owamp(&client_async_info(c)->local, &q.ipvn, q.sender_addr);
        (void) sockaddr_to_owamp(&client_async_info(c)->peer, &q.ipvn, q.receiver_addr);
        q.sender_port = 9;
        q.start_time = client_now() + (UINT64_C(1) << 32);
        return q;
}

static int live(const char *server, const char *mode, const char *keyid, const char *secret) {
        Run run = {};
        uint32_t modes = 0;

        if (ow_modes_from_string(mode, &modes) < 0) {
                fprintf(stderr, "test-client-async: bad mode '%s'\n", mode);
                return EXIT_FAILURE;
        }
        run.o = (ClientOptions){ .server = server,
                                 .modes = modes,
                                 .keyid = keyid,
                                 .secret = (const uint8_t *) secret,
                                 .secret_len = secret ? strlen(secret) : 0,
                                 .timeout_msec = 10000 };
        LIVE_CHECK(sd_event_new(&run.event) >= 0, "sd_event_new");
        LIVE_CHECK(client_async_new(run.event, &run.o, &callbacks, &run, &run.c) == 0, "client_async_new");

        /* Two at once, then away before starting them. */
        LIVE_CHECK(client_async_connect(run.c) >= 0, "connect: %s", run.reason);
        LIVE_RUN_UNTIL(&run, run.ready == 1);
        LIVE_CHECK(client_async_info(run.c)->mode == (OwMode) modes, "mode %d",
                   client_async_info(run.c)->mode);
        OwSessionRequest q = live_request(run.c);
        LIVE_CHECK(client_async_request_session(run.c, &q, live_accept, &run) == 0, "command");
        q = live_request(run.c);
        LIVE_CHECK(client_async_request_session(run.c, &q, live_accept, &run) == 0, "command");
        LIVE_RUN_UNTIL(&run, run.accepts == 2);
        LIVE_CHECK(run.reply_error == 0 && run.ports[0] != 0 && run.ports[1] != 0 &&
                           run.ports[0] != run.ports[1],
                   "accepts");
        client_async_disconnect(run.c);

        /* Reconnect: a whole batch, stopped at once, and its fetch. */
        LIVE_CHECK(client_async_connect(run.c) >= 0, "connect: %s", run.reason);
        LIVE_RUN_UNTIL(&run, run.ready == 2);
        q = live_request(run.c);
        LIVE_CHECK(client_async_request_session(run.c, &q, live_accept, &run) == 0, "command");
        LIVE_RUN_UNTIL(&run, run.accepts == 3);
        LIVE_CHECK(client_async_start_sessions(run.c, live_start_ack, &run) == 0, "command");
        LIVE_RUN_UNTIL(&run, run.start_acks == 1);
        OwSkipRange none_sent = { 0, 4 };
        OwStopSession ours = {
                .sid = run.sid, .next_seqno = 5, .n_skip_ranges = 1, .skip_ranges = &none_sent
        };
        LIVE_CHECK(client_async_stop_sessions(run.c, &(OwStopSessions){ .accept = OW_ACCEPT_OK,
                                                                        .n_sessions = 1,
                                                                        .sessions = &ours }) == 0,
                   "command");
        LIVE_RUN_UNTIL(&run, run.server_stops == 1);
        LIVE_CHECK(client_async_fetch(run.c, &(OwFetchSession){ .end = UINT32_MAX, .sid = run.sid },
                                      live_fetch, &run) == 0,
                   "command");
        LIVE_RUN_UNTIL(&run, run.fetch_done || run.reply_error);
        LIVE_CHECK(run.reply_error == 0 && run.fetch_done && run.fetch_parts >= 4,
                   "fetch: error %d, %u parts", run.reply_error, run.fetch_parts);
        LIVE_CHECK(run.disconnects == 0, "disconnected: %s", run.reason);
        printf("test-client-async: mode %s: 2 sessions at once, reconnect, a batch and its fetch (%u "
               "records)\n",
               mode, run.records);
        run_done(&run);
        return EXIT_SUCCESS;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "server", required_argument, NULL, 's' },
                { "mode", required_argument, NULL, 'm' },
                { "keyid", required_argument, NULL, 'u' },
                { "secret", required_argument, NULL, 'k' },
                {},
        };
        const char *server = NULL, *mode = "O", *keyid = NULL, *secret = NULL;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        server = optarg;
                        break;
                case 'm':
                        mode = optarg;
                        break;
                case 'u':
                        keyid = optarg;
                        break;
                case 'k':
                        secret = optarg;
                        break;
                default:
                        return EXIT_FAILURE;
                }
        if (server)
                return live(server, mode, keyid, secret);

        Suite *s = suite_create("client-async");
        TCase *tc = tcase_create("client-async");
        tcase_add_loop_test(tc, test_session, 0, 3);
        tcase_add_test(tc, test_refused);
        tcase_add_test(tc, test_timeout);
        tcase_add_test(tc, test_nobody_listening);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
