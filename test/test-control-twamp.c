/* SPDX-License-Identifier: Apache-2.0 */

/*
 * TWAMP-Control (RFC 5357) in the core: the codecs' rules, one negative
 * case per rule with its own error, and a client engine and a server
 * engine over ow_protocol_twamp wired back to back in modes O, A, E and
 * Mixed: sessions requested (several in flight), refused, started and
 * stopped; what each side must refuse. The reference's own connections
 * are replayed by test-capture-twamp.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-control-engine.h"
#include "ow-control.h"
#include "ow-error.h"
#include "ow-wire.h"
#include "testutil.h"

#define SECRET "twamp secret"
#define KEYID "bob"

static const uint32_t tw_modes[] = { OW_MODE_OPEN, OW_MODE_AUTHENTICATED, OW_MODE_ENCRYPTED, OW_MODE_MIXED };

static OwSessionRequest tw_request(uint16_t port) {
        OwSessionRequest q = {
                .ipvn = 4,
                .sender_port = port,
                .receiver_port = port,
                .padding_length = 27,
                .start_time = UINT64_C(0xeeba7e9b00000000),
                .timeout = UINT64_C(2) << 32,
                .type_p = ow_typep_from_dscp(46),
        };
        q.sender_addr[0] = q.receiver_addr[0] = 127;
        q.sender_addr[3] = q.receiver_addr[3] = 1;
        return q;
}

/* --- Codecs ---------------------------------------------------------------- */

START_TEST(test_tw_request_roundtrip) {
        OwSessionRequest q = tw_request(8921), back;
        uint8_t buf[OW_TW_REQUEST_SESSION_SIZE + 16];

        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), OW_TW_REQUEST_SESSION_SIZE);
        ck_assert_int_eq(buf[0], OW_CMD_REQUEST_TW_SESSION);
        ck_assert_int_eq(buf[1], 4);
        ck_assert(ow_all_zero(buf + 2, 10)); /* Conf, slots, packets */
        ck_assert_uint_eq(ow_get_be16(buf + 12), 8921);
        ck_assert_uint_eq(ow_get_be16(buf + 14), 8921);
        ck_assert(ow_all_zero(buf + 48, 16)); /* SID */
        ck_assert_uint_eq(ow_get_be32(buf + 64), 27);
        ck_assert_uint_eq(ow_get_be32(buf + 84), 0x2e000000);
        ck_assert(ow_all_zero(buf + 88, 24)); /* MBZ (RFC 6038 unused) and the HMAC */
        ck_assert_int_eq(ow_tw_request_session_decode(buf, OW_TW_REQUEST_SESSION_SIZE, &back), 0);
        ck_assert_uint_eq(back.sender_port, 8921);
        ck_assert_uint_eq(back.padding_length, 27);
        ck_assert_uint_eq(back.start_time, q.start_time);
        ck_assert_uint_eq(back.timeout, q.timeout);
        ck_assert_uint_eq(back.type_p, q.type_p);
        ck_assert_ptr_null(back.slots);
        /* A SID from the client is MBZ: neither sent nor returned. */
        memset(q.sid.bytes, 0xaa, OW_SID_SIZE);
        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), OW_TW_REQUEST_SESSION_SIZE);
        ck_assert(ow_all_zero(buf + 48, 16));
        memset(buf + 48, 0xaa, 16);
        ck_assert_int_eq(ow_tw_request_session_decode(buf, OW_TW_REQUEST_SESSION_SIZE, &back), 0);
        ck_assert(ow_all_zero(back.sid.bytes, 16));
        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, OW_TW_REQUEST_SESSION_SIZE - 1), -ENOBUFS);
        ck_assert_int_eq(ow_tw_request_session_encode(NULL, buf, sizeof(buf)), -EINVAL);
        ck_assert_int_eq(ow_tw_request_session_decode(NULL, 112, &back), -EINVAL);
}
END_TEST

/* One wire change per rule of the decoder, in the order it checks them. */
typedef struct WireCase {
        size_t off;
        uint8_t value;
        int error;
} WireCase;

static const WireCase request_cases[] = {
        { 0, OW_CMD_REQUEST_SESSION, -OW_ERR_COMMAND },
        { 0, OW_CMD_FETCH_SESSION, -OW_ERR_COMMAND },
        { 1, 5, -OW_ERR_IPVN },
        { 1, 0, -OW_ERR_IPVN },
        { 2, 1, -OW_ERR_TW_ROLE },
        { 3, 1, -OW_ERR_TW_ROLE },
        { 7, 1, -OW_ERR_TW_SCHEDULE },  /* Number of Schedule Slots */
        { 11, 1, -OW_ERR_TW_SCHEDULE }, /* Number of Packets */
        { 66, 0xff, -OW_ERR_COUNT },    /* Padding Length 65 535 + 27 */
        { 84, 0x40, -OW_ERR_TYPEP },
        { 87, 0x01, -OW_ERR_TYPEP },
};

START_TEST(test_tw_request_rules) {
        const WireCase *c = &request_cases[_i];
        OwSessionRequest q = tw_request(9000), back = {};
        uint8_t buf[OW_TW_REQUEST_SESSION_SIZE];

        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), OW_TW_REQUEST_SESSION_SIZE);
        buf[c->off] = c->value;
        ck_assert_int_eq(ow_tw_request_session_decode(buf, sizeof(buf), &back), c->error);
        ck_assert_uint_eq(back.sender_port, 0); /* untouched */
}
END_TEST

START_TEST(test_tw_request_encode_rules) {
        uint8_t buf[OW_TW_REQUEST_SESSION_SIZE + 1] = {};
        OwSessionRequest q;
        OwSlot slot = {};

        q = tw_request(1), q.ipvn = 5;
        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_IPVN);
        q = tw_request(1), q.conf_sender = true;
        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_TW_ROLE);
        q = tw_request(1), q.conf_receiver = true;
        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_TW_ROLE);
        q = tw_request(1), q.n_slots = 1, q.slots = &slot;
        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_TW_SCHEDULE);
        q = tw_request(1), q.n_packets = 10;
        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_TW_SCHEDULE);
        q = tw_request(1), q.padding_length = OW_MAX_PADDING + 1;
        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_COUNT);
        q = tw_request(1), q.type_p = 0x80000000;
        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_TYPEP);

        /* Lengths first. */
        q = tw_request(1);
        ck_assert_int_eq(ow_tw_request_session_encode(&q, buf, sizeof(buf)), OW_TW_REQUEST_SESSION_SIZE);
        ck_assert_int_eq(ow_tw_request_session_decode(buf, 111, &q), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_tw_request_session_decode(buf, 113, &q), -OW_ERR_TOO_LONG);
        ck_assert_int_eq(ow_tw_request_session_decode(buf, 0, &q), -OW_ERR_TRUNCATED);
}
END_TEST

START_TEST(test_tw_stop_sessions) {
        OwTwStopSessions st = { .accept = OW_ACCEPT_OK, .n_sessions = 3 }, back = { .n_sessions = 77 };
        uint8_t buf[OW_TW_STOP_SESSIONS_SIZE + 1];

        ck_assert_int_eq(ow_tw_stop_sessions_encode(&st, buf, sizeof(buf)), OW_TW_STOP_SESSIONS_SIZE);
        ck_assert_int_eq(buf[0], OW_CMD_STOP_SESSIONS);
        ck_assert_int_eq(buf[1], 0);
        ck_assert_uint_eq(ow_get_be32(buf + 4), 3);
        ck_assert(ow_all_zero(buf + 8, 24));
        ck_assert_int_eq(ow_tw_stop_sessions_decode(buf, OW_TW_STOP_SESSIONS_SIZE, &back), 0);
        ck_assert_uint_eq(back.n_sessions, 3);

        back.n_sessions = 77;
        ck_assert_int_eq(ow_tw_stop_sessions_decode(buf, 31, &back), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_tw_stop_sessions_decode(buf, 33, &back), -OW_ERR_TOO_LONG);
        buf[0] = OW_CMD_START_SESSIONS;
        ck_assert_int_eq(ow_tw_stop_sessions_decode(buf, OW_TW_STOP_SESSIONS_SIZE, &back), -OW_ERR_COMMAND);
        buf[0] = OW_CMD_STOP_SESSIONS;
        buf[1] = 6;
        ck_assert_int_eq(ow_tw_stop_sessions_decode(buf, OW_TW_STOP_SESSIONS_SIZE, &back), -OW_ERR_ACCEPT);
        ck_assert_uint_eq(back.n_sessions, 77);
        st.accept = 6;
        ck_assert_int_eq(ow_tw_stop_sessions_encode(&st, buf, sizeof(buf)), -OW_ERR_ACCEPT);
        st.accept = OW_ACCEPT_FAILURE; /* the client aborting */
        ck_assert_int_eq(ow_tw_stop_sessions_encode(&st, buf, 31), -ENOBUFS);
        ck_assert_int_eq(ow_tw_stop_sessions_encode(&st, buf, sizeof(buf)), OW_TW_STOP_SESSIONS_SIZE);
        ck_assert_int_eq(ow_tw_stop_sessions_decode(buf, OW_TW_STOP_SESSIONS_SIZE, &back), 0);
        ck_assert_int_eq(back.accept, OW_ACCEPT_FAILURE);
}
END_TEST

/* The set-up codecs with the protocol's mode mask. */
START_TEST(test_tw_setup_codecs) {
        OwServerGreeting g = { .modes = OW_TWAMP_MODES_ALL, .count = 2048 }, gback;
        OwSetupResponse sr = { .mode = OW_MODE_MIXED }, back;
        uint8_t buf[OW_SETUP_RESPONSE_SIZE];

        ck_assert_int_eq(ow_server_greeting_encode_modes(&g, OW_TWAMP_MODES_ALL, buf, sizeof(buf)), 64);
        ck_assert_uint_eq(ow_get_be32(buf + 12), 0xf);
        ck_assert_int_eq(ow_server_greeting_encode_modes(&g, OW_MODES_ALL, buf, sizeof(buf)), -OW_ERR_MODE);
        ck_assert_int_eq(ow_server_greeting_encode(&g, buf, sizeof(buf)), -OW_ERR_MODE);
        g.modes = OW_MODE_OPEN | 16;
        ck_assert_int_eq(ow_server_greeting_encode_modes(&g, OW_TWAMP_MODES_ALL, buf, sizeof(buf)),
                         -OW_ERR_MODE);
        /* Mixed uses the shared secret: the Count rule holds for it. */
        g.modes = OW_MODE_OPEN | OW_MODE_MIXED;
        g.count = 10;
        ck_assert_int_eq(ow_server_greeting_encode_modes(&g, OW_TWAMP_MODES_ALL, buf, sizeof(buf)),
                         -OW_ERR_PBKDF2_COUNT);
        g.modes = OW_MODE_OPEN;
        ck_assert_int_eq(ow_server_greeting_encode_modes(&g, OW_TWAMP_MODES_ALL, buf, sizeof(buf)), 64);
        ow_put_be32(buf + 12, OW_MODE_MIXED);
        ck_assert_int_eq(ow_server_greeting_decode(buf, 64, &gback), -OW_ERR_PBKDF2_COUNT);

        /* Set-Up-Response in Mixed: KeyID, Token and IV as in E. */
        ck_assert_int_eq(ow_setup_response_encode_modes(&sr, OW_TWAMP_MODES_ALL, buf, sizeof(buf)),
                         -OW_ERR_KEYID);
        strcpy(sr.keyid, KEYID);
        memset(sr.token, 0x11, sizeof(sr.token));
        memset(sr.client_iv, 0x22, sizeof(sr.client_iv));
        ck_assert_int_eq(ow_setup_response_encode(&sr, buf, sizeof(buf)), -OW_ERR_MODE);
        ck_assert_int_eq(ow_setup_response_encode_modes(&sr, OW_TWAMP_MODES_ALL, buf, sizeof(buf)),
                         OW_SETUP_RESPONSE_SIZE);
        ck_assert_uint_eq(ow_get_be32(buf), 8);
        ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &back), -OW_ERR_MODE);
        ck_assert_int_eq(ow_setup_response_decode_modes(buf, sizeof(buf), OW_TWAMP_MODES_ALL, &back), 0);
        ck_assert_str_eq(back.keyid, KEYID);
        ck_assert_bytes_eq(back.token, sr.token, OW_TOKEN_SIZE);
        ck_assert_bytes_eq(back.client_iv, sr.client_iv, OW_IV_SIZE);
        /* Not exactly one bit, or one the protocol lacks. */
        static const uint32_t bad[] = { 0, 3, 12, 16, 32, 0x80000000 };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ow_put_be32(buf, bad[i]);
                ck_assert_int_eq(ow_setup_response_decode_modes(buf, sizeof(buf), OW_TWAMP_MODES_ALL, &back),
                                 -OW_ERR_MODE);
        }
}
END_TEST

/* --- Engines --------------------------------------------------------------- */

typedef struct Pair {
        OwEngine *c, *s;
} Pair;

static void pump(OwEngine *from, OwEngine *to) {
        size_t n;
        const uint8_t *p = ow_engine_output(from, &n);

        if (n > 0)
                ck_assert_int_eq(ow_engine_feed(to, p, n), 0);
        ow_engine_output_done(from, n);
}

static void expect(OwEngine *e, OwEventType type, OwEvent *ev) {
        int r = ow_engine_poll(e, ev);
        ck_assert_msg(r == 1, "poll: %d (%s), context '%s'", r, ow_strerror(r), ow_engine_error_context(e));
        ck_assert_int_eq(ev->type, type);
}

static void expect_failure(OwEngine *e, int error, const char *context) {
        OwEvent ev;
        ck_assert_int_eq(ow_engine_poll(e, &ev), error);
        ck_assert_int_eq(ow_engine_state(e), OW_ENGINE_FAILED);
        ck_assert_str_eq(ow_engine_error_context(e), context);
}

static const OwControlKeys sample_keys = { .aes = { 1, 2, 3 }, .hmac = { 4, 5, 6 } };

/* Greeting (offering `offered`), Set-Up-Response in `mode`, Server-Start. */
static void tw_handshake(Pair *p, uint32_t offered, uint32_t mode) {
        OwServerGreeting g = { .modes = offered, .count = 1024, .challenge = { 7 }, .salt = { 8 } };
        uint8_t civ[OW_IV_SIZE] = { 9 }, siv[OW_IV_SIZE] = { 10 };
        OwEvent ev;

        ck_assert_int_eq(ow_engine_new(&ow_protocol_twamp, OW_CONTROL_CLIENT, &p->c), 0);
        ck_assert_int_eq(ow_engine_new(&ow_protocol_twamp, OW_CONTROL_SERVER, &p->s), 0);
        ck_assert_int_eq(ow_engine_send_greeting(p->s, &g), 0);
        pump(p->s, p->c);
        expect(p->c, OW_EVENT_GREETING, &ev);
        ck_assert_uint_eq(ev.greeting.modes, offered);
        ck_assert_int_eq(ow_engine_send_setup_response(p->c, &(OwClientSetup){ .mode = mode,
                                                                               .keyid = KEYID,
                                                                               .secret = SECRET,
                                                                               .secret_len = strlen(SECRET),
                                                                               .keys = &sample_keys,
                                                                               .client_iv = civ }),
                         0);
        pump(p->c, p->s);
        expect(p->s, OW_EVENT_SETUP_RESPONSE, &ev);
        ck_assert_uint_eq(ev.setup.mode, mode);
        ck_assert_str_eq(ev.setup.keyid, mode == OW_MODE_OPEN ? "" : KEYID);
        ow_event_done(&ev);
        if (mode != OW_MODE_OPEN)
                ck_assert_int_eq(ow_engine_server_authenticate(p->s, SECRET, strlen(SECRET)), 0);
        ck_assert_int_eq(ow_engine_send_server_start(p->s, OW_ACCEPT_OK, siv, 0), 0);
        pump(p->s, p->c);
        expect(p->c, OW_EVENT_SERVER_START, &ev);
        ck_assert_int_eq(ev.server_start.accept, OW_ACCEPT_OK);
        ck_assert_int_eq(ow_engine_state(p->c), OW_ENGINE_IDLE);
        ck_assert_uint_eq(ow_engine_mode(p->c), mode);
        if (mode == OW_MODE_OPEN)
                ck_assert_ptr_null(ow_engine_keys(p->s));
        else
                ck_assert_bytes_eq(ow_engine_keys(p->s)->hmac, sample_keys.hmac, OW_HMAC_KEY_SIZE);
}

static void free_pair(Pair *p) {
        p->c = ow_engine_free(p->c);
        p->s = ow_engine_free(p->s);
}

/* Three sessions in flight, one refused by the decoder (Conf set: the
 * event's .error, answered with Accept 3), started, stopped. */
START_TEST(test_tw_engine_session) {
        uint32_t mode = tw_modes[_i];
        OwSessionRequest q[3] = { tw_request(9000), tw_request(9001), tw_request(9002) };
        uint8_t raw[OW_TW_REQUEST_SESSION_SIZE];
        Pair p;
        OwEvent ev;

        tw_handshake(&p, OW_TWAMP_MODES_ALL, mode);
        /* What TWAMP does not have. */
        ck_assert_int_eq(ow_engine_send_fetch_session(p.c, &(OwFetchSession){}), -OW_ERR_COMMAND);
        ck_assert_int_eq(ow_engine_send_request_session(p.c, &q[0]), -OW_ERR_COMMAND);
        ck_assert_int_eq(ow_engine_send_tw_stop_sessions(p.c, &(OwTwStopSessions){}), -OW_ERR_STATE);

        ck_assert_int_eq(ow_engine_send_request_tw_session(p.c, &q[0]), 0);
        ck_assert_int_eq(ow_engine_send_request_tw_session(p.c, &q[1]), 0);
        ck_assert(ow_engine_awaiting_peer(p.c));
        pump(p.c, p.s);

        expect(p.s, OW_EVENT_REQUEST_TW_SESSION, &ev);
        ck_assert_int_eq(ev.error, 0);
        ck_assert_uint_eq(ev.request.sender_port, 9000);
        ck_assert_uint_eq(ev.request.type_p, q[0].type_p);
        ow_event_done(&ev);
        /* One command at a time: the next waits for this answer. */
        ck_assert_int_eq(ow_engine_poll(p.s, &ev), 0);
        ck_assert_int_eq(ow_engine_send_start_ack(p.s, OW_ACCEPT_OK), -OW_ERR_STATE);
        ck_assert_int_eq(ow_engine_send_accept_session(
                                 p.s, &(OwAcceptSession){ .port = 8900, .sid.bytes = { 0x7f, 0, 0, 1 } }),
                         0);
        expect(p.s, OW_EVENT_REQUEST_TW_SESSION, &ev);
        ck_assert_uint_eq(ev.request.sender_port, 9001);
        ow_event_done(&ev);
        ck_assert_int_eq(
                ow_engine_send_accept_session(p.s, &(OwAcceptSession){ .accept = OW_ACCEPT_TEMP_RESOURCE }),
                0);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_ACCEPT_SESSION, &ev);
        ck_assert_int_eq(ev.accept_session.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(ev.accept_session.port, 8900);
        ck_assert_int_eq(ev.accept_session.sid.bytes[0], 0x7f);
        expect(p.c, OW_EVENT_ACCEPT_SESSION, &ev);
        ck_assert_int_eq(ev.accept_session.accept, OW_ACCEPT_TEMP_RESOURCE);

        /* A request the client encoder would refuse, sealed by hand into
         * the stream: it reaches the server whole and authenticated, as an
         * event with .error, and is refused with Accept 3. */
        q[2].conf_receiver = true;
        ck_assert_int_eq(ow_engine_send_request_tw_session(p.c, &q[2]), -OW_ERR_TW_ROLE);
        q[2].conf_receiver = false;
        ck_assert_int_eq(ow_tw_request_session_encode(&q[2], raw, sizeof(raw)), OW_TW_REQUEST_SESSION_SIZE);
        ck_assert_int_eq(ow_engine_send_request_tw_session(p.c, &q[2]), 0);
        {
                /* In open mode the octets are clear: set Conf-Receiver. */
                size_t n;
                const uint8_t *o = ow_engine_output(p.c, &n);
                uint8_t copy[OW_TW_REQUEST_SESSION_SIZE];

                ck_assert_uint_eq(n, OW_TW_REQUEST_SESSION_SIZE);
                memcpy(copy, o, n);
                if (mode == OW_MODE_OPEN)
                        copy[3] = 1;
                ck_assert_int_eq(ow_engine_feed(p.s, copy, n), 0);
                ow_engine_output_done(p.c, n);
        }
        expect(p.s, OW_EVENT_REQUEST_TW_SESSION, &ev);
        if (mode == OW_MODE_OPEN) {
                ck_assert_int_eq(ev.error, -OW_ERR_TW_ROLE);
                ck_assert_int_eq(ow_engine_send_accept_session(
                                         p.s, &(OwAcceptSession){ .accept = OW_ACCEPT_UNSUPPORTED }),
                                 0);
        } else {
                ck_assert_int_eq(ev.error, 0);
                ck_assert_int_eq(ow_engine_send_accept_session(p.s, &(OwAcceptSession){ .port = 8901 }), 0);
        }
        ow_event_done(&ev);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_ACCEPT_SESSION, &ev);
        ck_assert_int_eq(ev.accept_session.accept,
                         mode == OW_MODE_OPEN ? OW_ACCEPT_UNSUPPORTED : OW_ACCEPT_OK);

        /* Start, then the client's Stop-Sessions ends the test at once. */
        ck_assert_int_eq(ow_engine_send_start_sessions(p.c), 0);
        ck_assert_int_eq(ow_engine_send_request_tw_session(p.c, &q[0]), -OW_ERR_STATE); /* no pipelining */
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_START_SESSIONS, &ev);
        ck_assert_int_eq(ow_engine_send_start_ack(p.s, OW_ACCEPT_OK), 0);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_START_ACK, &ev);
        ck_assert_int_eq(ow_engine_state(p.c), OW_ENGINE_TEST);
        ck_assert_int_eq(ow_engine_send_request_tw_session(p.c, &q[0]), -OW_ERR_STATE);
        ck_assert_int_eq(ow_engine_send_tw_stop_sessions(p.s, &(OwTwStopSessions){}), -OW_ERR_STATE);
        ck_assert(!ow_engine_awaiting_peer(p.s));
        ck_assert_int_eq(ow_engine_send_tw_stop_sessions(p.c, &(OwTwStopSessions){ .n_sessions = 2 }), 0);
        ck_assert_int_eq(ow_engine_state(p.c), OW_ENGINE_IDLE);
        ck_assert(!ow_engine_awaiting_peer(p.c));
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_TW_STOP_SESSIONS, &ev);
        ck_assert_uint_eq(ev.tw_stop.n_sessions, 2);
        ck_assert_int_eq(ow_engine_state(p.s), OW_ENGINE_IDLE);
        ow_event_done(&ev);

        /* And again: a second test on the same connection. */
        ck_assert_int_eq(ow_engine_send_request_tw_session(p.c, &q[0]), 0);
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_REQUEST_TW_SESSION, &ev);
        ow_event_done(&ev);
        free_pair(&p);
}
END_TEST

/* The modes: what is offered and chosen, Mixed included. */
START_TEST(test_tw_engine_modes) {
        OwServerGreeting g = { .modes = OW_MODE_OPEN | OW_MODE_MIXED, .count = 1024 };
        uint8_t civ[OW_IV_SIZE] = {};
        OwEngine *c, *s;
        OwEvent ev;

        /* A TWAMP server may offer 8, an OWAMP one may not. */
        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_SERVER, &s), 0);
        ck_assert_int_eq(ow_engine_send_greeting(s, &g), -OW_ERR_MODE);
        ow_engine_free(s);
        ck_assert_uint_eq(ow_protocol_modes(&ow_protocol_twamp), 0xf);
        ck_assert_int_eq(ow_protocol_mode(&ow_protocol_twamp, OW_MODE_MIXED)->channel, OW_MODE_ENCRYPTED);
        ck_assert_ptr_null(ow_protocol_mode(&ow_protocol_twamp, 16));
        ck_assert_uint_eq(ow_protocol_twamp.port, 862);
        ck_assert_ptr_null(ow_protocol_command(&ow_protocol_twamp, OW_CMD_REQUEST_SESSION));
        ck_assert_ptr_null(ow_protocol_command(&ow_protocol_twamp, OW_CMD_FETCH_SESSION));
        ck_assert_str_eq(ow_protocol_command(&ow_protocol_twamp, 5)->name, "Request-TW-Session");

        ck_assert_int_eq(ow_engine_new(&ow_protocol_twamp, OW_CONTROL_SERVER, &s), 0);
        ck_assert_int_eq(ow_engine_new(&ow_protocol_twamp, OW_CONTROL_CLIENT, &c), 0);
        g.modes |= 16;
        ck_assert_int_eq(ow_engine_send_greeting(s, &g), -OW_ERR_MODE);
        g.modes &= ~16u;
        ck_assert_int_eq(ow_engine_send_greeting(s, &g), 0);
        pump(s, c);
        expect(c, OW_EVENT_GREETING, &ev);
        /* E is not on offer; Mixed needs its keys. */
        OwClientSetup cs = { .mode = OW_MODE_ENCRYPTED,
                             .keyid = KEYID,
                             .secret = SECRET,
                             .secret_len = strlen(SECRET),
                             .keys = &sample_keys,
                             .client_iv = civ };
        ck_assert_int_eq(ow_engine_send_setup_response(c, &cs), -OW_ERR_MODE);
        cs.mode = OW_MODE_MIXED;
        cs.keys = NULL;
        ck_assert_int_eq(ow_engine_send_setup_response(c, &cs), -EINVAL);
        cs.keys = &sample_keys;
        cs.keyid = "";
        ck_assert_int_eq(ow_engine_send_setup_response(c, &cs), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_engine_state(c), OW_ENGINE_SETUP);
        ow_engine_free(c);
        ow_engine_free(s);

        /* A server whose peer answers with a mode it did not offer, or with
         * TWAMP's mode 3 (two bits). */
        for (uint32_t bad = 2; bad <= 3; bad++) {
                uint8_t sr[OW_SETUP_RESPONSE_SIZE] = {};

                ck_assert_int_eq(ow_engine_new(&ow_protocol_twamp, OW_CONTROL_SERVER, &s), 0);
                g.modes = OW_MODE_OPEN;
                ck_assert_int_eq(ow_engine_send_greeting(s, &g), 0);
                ow_put_be32(sr, bad == 2 ? 16 : 3);
                ck_assert_int_eq(ow_engine_feed(s, sr, sizeof(sr)), 0);
                expect_failure(s, -OW_ERR_MODE, "bad Set-Up-Response");
                ow_engine_free(s);
        }
}
END_TEST

/* What each side refuses from the other: unknown commands, a Stop-Sessions
 * from the server or outside a test, a tampered block. */
START_TEST(test_tw_engine_protocol_errors) {
        static const uint8_t not_twamp[] = { OW_CMD_REQUEST_SESSION, OW_CMD_FETCH_SESSION, 6, 9, 0 };
        uint8_t block[OW_TW_STOP_SESSIONS_SIZE] = {};
        OwEvent ev;
        Pair p;

        for (size_t i = 0; i < ELEMENTSOF(not_twamp); i++) {
                tw_handshake(&p, OW_MODE_OPEN, OW_MODE_OPEN);
                block[0] = not_twamp[i];
                ck_assert_int_eq(ow_engine_feed(p.s, block, sizeof(block)), 0);
                expect_failure(p.s, -OW_ERR_COMMAND, "unknown command");
                free_pair(&p);
        }

        /* Stop-Sessions before any Start-Sessions. */
        tw_handshake(&p, OW_MODE_OPEN, OW_MODE_OPEN);
        ck_assert_int_eq(ow_tw_stop_sessions_encode(&(OwTwStopSessions){}, block, sizeof(block)), 32);
        ck_assert_int_eq(ow_engine_feed(p.s, block, sizeof(block)), 0);
        expect_failure(p.s, -OW_ERR_STATE, "Stop-Sessions outside a test");
        free_pair(&p);

        /* A Stop-Sessions with Accept 6: read whole, it does not decode, and
         * nothing answers it: the engine fails. */
        tw_handshake(&p, OW_MODE_OPEN, OW_MODE_OPEN);
        ck_assert_int_eq(ow_engine_send_start_sessions(p.c), 0);
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_START_SESSIONS, &ev);
        ck_assert_int_eq(ow_engine_send_start_ack(p.s, OW_ACCEPT_OK), 0);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_START_ACK, &ev);
        block[1] = 6;
        ck_assert_int_eq(ow_engine_feed(p.s, block, sizeof(block)), 0);
        expect_failure(p.s, -OW_ERR_ACCEPT, "bad Stop-Sessions");
        /* The client must not get a Stop-Sessions: TWAMP's server has none. */
        block[1] = 0;
        ck_assert_int_eq(ow_engine_feed(p.c, block, sizeof(block)), 0);
        expect_failure(p.c, -OW_ERR_COMMAND, "unknown command");
        free_pair(&p);

        /* Mixed: one bit off in the Request-TW-Session's HMAC block. */
        tw_handshake(&p, OW_TWAMP_MODES_ALL, OW_MODE_MIXED);
        {
                OwSessionRequest q = tw_request(9000);
                uint8_t copy[OW_TW_REQUEST_SESSION_SIZE];
                size_t n;
                const uint8_t *o;

                ck_assert_int_eq(ow_engine_send_request_tw_session(p.c, &q), 0);
                o = ow_engine_output(p.c, &n);
                ck_assert_uint_eq(n, sizeof(copy));
                memcpy(copy, o, n);
                copy[100] ^= 0x20;
                ck_assert_int_eq(ow_engine_feed(p.s, copy, n), 0);
                expect_failure(p.s, -OW_ERR_HMAC, "Request-TW-Session");
        }
        free_pair(&p);
}
END_TEST

int main(void) {
        Suite *s = suite_create("control-twamp");
        TCase *tc = tcase_create("twamp");
        tcase_add_test(tc, test_tw_request_roundtrip);
        tcase_add_loop_test(tc, test_tw_request_rules, 0, (int) ELEMENTSOF(request_cases));
        tcase_add_test(tc, test_tw_request_encode_rules);
        tcase_add_test(tc, test_tw_stop_sessions);
        tcase_add_test(tc, test_tw_setup_codecs);
        tcase_add_loop_test(tc, test_tw_engine_session, 0, (int) ELEMENTSOF(tw_modes));
        tcase_add_test(tc, test_tw_engine_modes);
        tcase_add_test(tc, test_tw_engine_protocol_errors);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
