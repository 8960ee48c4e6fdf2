/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owampd's control connection (src/owampd/conn.c) driven by a real client
 * engine over loopback TCP, in a server of its own (no listeners, no
 * launcher): the greeting and set-up, a fetch of a stored file answered
 * through the store's FetchSink and checked record by record, and every
 * way a connection ends - the peer closing, a protocol error, a refusal
 * at maxcontrolsessions, the server's own shutdown. A connection that
 * closes inside its own callbacks is freed afterwards by the server (it
 * is on Server.closing, out of the counts, until then), never by itself;
 * under ASan a use after free would show here.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "conn.h"
#include "ctrl-io.h"
#include "datastore.h"
#include "guard.h"
#include "macro.h"
#include "ow-owp.h"
#include "server.h"
#include "testutil.h"
#include "units.h"

#define FIXTURE "reference-outputs/impaired-from.owp"
#define STEP_USEC (20 * USEC_PER_MSEC)
#define MAX_STEPS 500

#define DIR_TEMPLATE "/tmp/test-owampd-conn-XXXXXX"
static char dir[sizeof(DIR_TEMPLATE)];
static Server srv;
static sd_event *event;
static int listen_fd = -1;

static void setup(void) {
        /* A new one for each test: CK_FORK=no runs them all in one process. */
        memcpy(dir, DIR_TEMPLATE, sizeof(dir));
        ck_assert_ptr_nonnull(mkdtemp(dir));
        log_setup("test-owampd-conn", LOG_TARGET_NONE, 0, false, LOG_DEBUG);
        ck_assert_int_ge(sd_event_new(&event), 0);
        srv = (Server){ .datadir = strdup(dir), .modes = OW_MODE_OPEN, .pbkdf2_count = 1024, .pid_fd = -1 };
        ck_assert_int_eq(server_init(&srv, event), 0);
        ck_assert_int_eq(guard_new(&srv), 0);

        SockAddr a = { .in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
        listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(listen_fd, 0);
        ck_assert_int_eq(bind(listen_fd, &a.sa, sizeof(a.in)), 0);
        ck_assert_int_eq(listen(listen_fd, 8), 0);
}

static void teardown(void) {
        char cmd[600];
        server_done(&srv);
        event = sd_event_unref(event);
        listen_fd = safe_close(listen_fd);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
}

typedef struct Client {
        int fd;
        CtrlIO io;
} Client;

/* A client connected to our listener; the server's end goes to conn_new()
 * as the listener would hand it over. */
static void client_connect(Client *cl) {
        SockAddr a, peer;
        socklen_t len = sizeof(a);
        ck_assert_int_eq(getsockname(listen_fd, &a.sa, &len), 0);
        cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(cl->fd, 0);
        ck_assert_int_eq(connect(cl->fd, &a.sa, len), 0);
        ck_assert_int_eq(fcntl(cl->fd, F_SETFL, O_NONBLOCK), 0);
        len = sizeof(peer);
        int sfd = accept4(listen_fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        ck_assert_int_ge(sfd, 0);
        ctrl_io_init(&cl->io, cl->fd);
        ck_assert_int_eq(ctrl_io_attach(&cl->io, cl->fd, OW_CONTROL_CLIENT), 0);
        ck_assert_int_eq(conn_new(&srv, sfd, &peer), 0);
}

static void client_close(Client *cl) {
        ctrl_io_done(&cl->io);
        cl->fd = safe_close(cl->fd);
}

/* One turn of the server's loop, then whatever the client can do. */
static void step(Client *cl) {
        ck_assert_int_ge(sd_event_run(event, STEP_USEC), 0);
        if (cl && cl->fd >= 0) {
                ck_assert_int_ge(ctrl_io_flush(&cl->io), 0);
                for (int r = 1; r > 0;)
                        r = ctrl_io_read(&cl->io);
        }
}

/* The client's next event, turning the server's loop meanwhile: 1, or 0
 * when the server closed the connection first. */
static int client_event(Client *cl, OwEvent *ev) {
        for (unsigned i = 0; i < MAX_STEPS; i++) {
                int r = ow_engine_poll(cl->io.engine, ev);
                ck_assert_int_ge(r, 0);
                if (r > 0)
                        return 1;
                if (cl->io.eof)
                        return 0;
                step(cl);
        }
        ck_abort_msg("no event from the server");
        return -1;
}

static void client_setup_open(Client *cl) {
        _cleanup_(ow_event_done) OwEvent ev = {};
        ck_assert_int_eq(client_event(cl, &ev), 1);
        ck_assert_int_eq(ev.type, OW_EVENT_GREETING);
        ck_assert_uint_eq(ev.greeting.modes, OW_MODE_OPEN);
        ck_assert_int_eq(ow_engine_send_setup_response(cl->io.engine, &(OwClientSetup){ .mode = OW_MODE_OPEN }),
                         0);
        _cleanup_(ow_event_done) OwEvent ss = {};
        ck_assert_int_eq(client_event(cl, &ss), 1);
        ck_assert_int_eq(ss.type, OW_EVENT_SERVER_START);
        ck_assert_int_eq(ss.server_start.accept, OW_ACCEPT_OK);
}

/* Turn the loop until the server has no connection closing any more. */
static void settle(void) {
        for (unsigned i = 0; i < MAX_STEPS && srv.closing; i++)
                step(NULL);
        ck_assert_ptr_null(srv.closing);
}

START_TEST(test_setup_then_peer_closes) {
        Client cl;
        client_connect(&cl);
        ck_assert_uint_eq(srv.n_conns, 1);
        client_setup_open(&cl);
        Conn *c = srv.conns;
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(conn_state(c), CONN_IDLE);
        ck_assert_int_eq(conn_owner(c)->mode, OW_MODE_OPEN);

        /* The peer goes away: the connection closes in its own callback;
         * out of the counts at once, freed by the server a turn later. */
        client_close(&cl);
        for (unsigned i = 0; i < MAX_STEPS && !srv.closing; i++)
                step(NULL);
        ck_assert_ptr_eq(srv.closing, c);
        ck_assert_int_eq(conn_state(c), CONN_CLOSED);
        ck_assert_uint_eq(srv.n_conns, 0);
        ck_assert_ptr_null(srv.conns);
        step(NULL);
        ck_assert_ptr_null(srv.closing);
}
END_TEST

START_TEST(test_protocol_error_closes) {
        Client cl;
        client_connect(&cl);
        _cleanup_(ow_event_done) OwEvent ev = {};
        ck_assert_int_eq(client_event(&cl, &ev), 1);
        ck_assert_int_eq(ev.type, OW_EVENT_GREETING);

        /* A Set-Up-Response of the right size with a mode no one offered. */
        uint8_t junk[164];
        memset(junk, 0xff, sizeof(junk));
        ck_assert_int_eq(write(cl.fd, junk, sizeof(junk)), (ssize_t) sizeof(junk));
        _cleanup_(ow_event_done) OwEvent ev2 = {};
        ck_assert_int_eq(client_event(&cl, &ev2), 0); /* closed */
        ck_assert_uint_eq(srv.n_conns, 0);
        settle();
        client_close(&cl);
}
END_TEST

START_TEST(test_maxcontrolsessions) {
        Client a, b;
        srv.max_control_sessions = 1;
        client_connect(&a);
        client_setup_open(&a);
        /* The second is greeted with Modes 0 and closed from conn_new()
         * itself: freed by the server, not by conn_new(). */
        client_connect(&b);
        _cleanup_(ow_event_done) OwEvent ev = {};
        ck_assert_int_eq(client_event(&b, &ev), 1);
        ck_assert_int_eq(ev.type, OW_EVENT_GREETING);
        ck_assert_uint_eq(ev.greeting.modes, 0);
        settle();
        ck_assert_uint_eq(srv.n_conns, 1);
        ck_assert_ptr_nonnull(srv.conns);
        ck_assert_int_eq(conn_state(srv.conns), CONN_IDLE);
        client_close(&b);
        client_close(&a);
}
END_TEST

START_TEST(test_fetch) {
        char rel[512], hex[OW_SID_HEX_SIZE];
        OwSid sid;
        memset(&sid, 0x42, sizeof(sid));
        _cleanup_free_ uint8_t *data = NULL;
        size_t len;
        test_read_file(test_data_path(FIXTURE), &data, &len);
        snprintf(rel, sizeof(rel), "%s/" DATASTORE_HIERARCHY_DIR, dir);
        ck_assert_int_eq(mkdir(rel, 0755), 0);
        snprintf(rel, sizeof(rel), "%s/" DATASTORE_HIERARCHY_DIR "/root", dir);
        ck_assert_int_eq(mkdir(rel, 0755), 0);
        snprintf(rel, sizeof(rel), "%s/" DATASTORE_HIERARCHY_DIR "/root/%s.owp", dir, ow_sid_to_hex(&sid, hex));
        FILE *f = fopen(rel, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        fclose(f);
        ck_assert_int_eq(datastore_scan(&srv), 0);

        OwOwpFile file;
        ck_assert_int_eq(ow_owp_parse(data, len, &file), 0);

        Client cl;
        client_connect(&cl);
        client_setup_open(&cl);

        /* Unknown: Accept 1. */
        OwFetchSession unknown = { .begin = 0, .end = UINT32_MAX };
        ck_assert_int_eq(ow_engine_send_fetch_session(cl.io.engine, &unknown), 0);
        _cleanup_(ow_event_done) OwEvent ack = {};
        ck_assert_int_eq(client_event(&cl, &ack), 1);
        ck_assert_int_eq(ack.type, OW_EVENT_FETCH_ACK);
        ck_assert_int_eq(ack.fetch_ack.accept, OW_ACCEPT_FAILURE);

        /* The whole file: every record, in file order, then DONE. */
        OwFetchSession fs = { .sid = sid, .begin = 0, .end = UINT32_MAX };
        ck_assert_int_eq(ow_engine_send_fetch_session(cl.io.engine, &fs), 0);
        uint32_t n_records = 0, next = 0;
        bool done = false, got_ack = false, got_skips = false;
        while (!done) {
                _cleanup_(ow_event_done) OwEvent ev = {};
                ck_assert_int_eq(client_event(&cl, &ev), 1);
                switch (ev.type) {
                case OW_EVENT_FETCH_ACK:
                        ck_assert_int_eq(ev.fetch_ack.accept, OW_ACCEPT_OK);
                        ck_assert_uint_eq(ev.fetch_ack.n_records, file.n_records);
                        ck_assert_uint_eq(ev.fetch_ack.n_skip_ranges, file.header.n_skips);
                        got_ack = true;
                        break;
                case OW_EVENT_FETCH_REQUEST:
                        ck_assert_uint_eq(ev.request.n_packets, file.request.n_packets);
                        break;
                case OW_EVENT_FETCH_SKIPS:
                        got_skips = true;
                        break;
                case OW_EVENT_FETCH_RECORDS:
                        for (uint32_t i = 0; i < ev.records.n; i++, next++) {
                                OwRecord want;
                                ck_assert_int_eq(ow_owp_get_record(&file, next, &want), 0);
                                ck_assert_uint_eq(ev.records.records[i].seq, want.seq);
                                ck_assert_uint_eq(ev.records.records[i].recv_time, want.recv_time);
                        }
                        n_records += ev.records.n;
                        break;
                case OW_EVENT_FETCH_DONE:
                        done = true;
                        break;
                default:
                        ck_abort_msg("unexpected event %d", ev.type);
                }
        }
        ck_assert(got_ack && got_skips);
        ck_assert_uint_eq(n_records, file.n_records);
        ck_assert(!conn_fetch_streaming(srv.conns));
        /* The file stays: no policy says delete_on_fetch. */
        ck_assert_ptr_nonnull(datastore_find(&srv, &sid));
        client_close(&cl);
}
END_TEST

START_TEST(test_server_closes_all) {
        Client a, b;
        client_connect(&a);
        client_connect(&b);
        client_setup_open(&a);
        ck_assert_uint_eq(srv.n_conns, 2);
        /* The owner frees them, from outside their callbacks. */
        server_close_conns(&srv);
        ck_assert_uint_eq(srv.n_conns, 0);
        ck_assert_ptr_null(srv.conns);
        ck_assert_ptr_null(srv.closing);
        char c;
        for (unsigned i = 0; i < MAX_STEPS; i++) {
                ssize_t n = read(a.fd, &c, 1);
                if (n == 0)
                        break;
                ck_assert(n < 0 && errno == EAGAIN);
                step(NULL);
        }
        ck_assert_int_eq(read(a.fd, &c, 1), 0); /* the server's end is closed */
        client_close(&a);
        client_close(&b);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("owampd-conn");
        TCase *tc = tcase_create("conn");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_setup_then_peer_closes);
        tcase_add_test(tc, test_protocol_error_closes);
        tcase_add_test(tc, test_maxcontrolsessions);
        tcase_add_test(tc, test_fetch);
        tcase_add_test(tc, test_server_closes_all);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(suite());
}
