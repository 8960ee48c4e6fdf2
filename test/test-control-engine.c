/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The control engine in memory: a client engine and a server engine wired
 * back to back, in modes O, A and E. Every command and reply, every
 * refusal the protocol has, the protocol errors each side must catch (with
 * their error and context), the API's state checks, and fetches streamed
 * in pieces in both directions. The captures are replayed through the
 * engine by test-capture-engine.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-control-engine.h"
#include "ow-error.h"
#include "ow-wire.h"
#include "testutil.h"

#define SECRET "correct horse"
#define KEYID "alice"

static const uint32_t modes[] = { OW_MODE_OPEN, OW_MODE_AUTHENTICATED, OW_MODE_ENCRYPTED };

static void fill(uint8_t *p, size_t n, uint8_t seed) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (seed + 7 * i + (i >> 3));
}

typedef struct Pair {
        OwEngine *c, *s;
        uint32_t mode;
} Pair;

/* Move what `from` queued into `to`, in pieces of at most `piece` octets
 * (0: all at once), polling nothing. Returns the octets moved. */
static size_t pump_pieces(OwEngine *from, OwEngine *to, size_t piece) {
        size_t n, moved = 0;
        const uint8_t *p = ow_engine_output(from, &n);

        while (n > 0) {
                size_t k = piece ? MIN(piece, n) : n;
                ck_assert_int_eq(ow_engine_feed(to, p, k), 0);
                ow_engine_output_done(from, k);
                moved += k;
                p = ow_engine_output(from, &n);
        }
        return moved;
}

static size_t pump(OwEngine *from, OwEngine *to) {
        return pump_pieces(from, to, 0);
}

static void expect(OwEngine *e, OwEventType type, OwEvent *ev) {
        int r = ow_engine_poll(e, ev);
        ck_assert_msg(r == 1, "poll: %d (%s), context '%s'", r, ow_strerror(r), ow_engine_error_context(e));
        ck_assert_int_eq(ev->type, type);
}

static void expect_nothing(OwEngine *e) {
        OwEvent ev;
        ck_assert_int_eq(ow_engine_poll(e, &ev), 0);
}

static void expect_failure(OwEngine *e, int error, const char *context) {
        OwEvent ev;
        ck_assert_int_eq(ow_engine_poll(e, &ev), error);
        ck_assert_int_eq(ow_engine_state(e), OW_ENGINE_FAILED);
        ck_assert_int_eq(ow_engine_error(e), error);
        ck_assert_str_eq(ow_engine_error_context(e), context);
        /* For good. */
        ck_assert_int_eq(ow_engine_poll(e, &ev), error);
}

static OwServerGreeting greeting_of(uint32_t offered) {
        OwServerGreeting g = { .modes = offered, .count = 1024 };
        fill(g.challenge, sizeof(g.challenge), 1);
        fill(g.salt, sizeof(g.salt), 2);
        return g;
}

static OwControlKeys keys_sample(void) {
        OwControlKeys k;
        fill(k.aes, sizeof(k.aes), 3);
        fill(k.hmac, sizeof(k.hmac), 4);
        return k;
}

/* A Set-Up-Response in `mode` with the test's key id and secret. */
static OwClientSetup setup_of(uint32_t mode, const OwControlKeys *keys, const uint8_t *client_iv) {
        return (OwClientSetup){ .mode = mode,
                                .keyid = KEYID,
                                .secret = SECRET,
                                .secret_len = strlen(SECRET),
                                .keys = keys,
                                .client_iv = client_iv };
}
static void new_pair(Pair *p, uint32_t mode) {
        *p = (Pair){ .mode = mode };
        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_CLIENT, &p->c), 0);
        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_SERVER, &p->s), 0);
        ck_assert_int_eq(ow_engine_state(p->c), OW_ENGINE_GREETING);
        ck_assert_int_eq(ow_engine_role(p->s), OW_CONTROL_SERVER);
}

static void free_pair(Pair *p) {
        p->c = ow_engine_free(p->c);
        p->s = ow_engine_free(p->s);
}

/* A greeting offering g->modes, answered with a Set-Up-Response in `mode`
 * (sample keys, the test's secret), read by the server. */
static void greet_and_answer(Pair *p, const OwServerGreeting *g, uint32_t mode, const uint8_t *client_iv) {
        OwControlKeys keys = keys_sample();
        OwEvent ev;

        ck_assert_int_eq(ow_engine_send_greeting(p->s, g), 0);
        pump(p->s, p->c);
        expect(p->c, OW_EVENT_GREETING, &ev);
        OwClientSetup cs = setup_of(mode, &keys, client_iv);
        ck_assert_int_eq(ow_engine_send_setup_response(p->c, &cs), 0);
        pump(p->c, p->s);
        expect(p->s, OW_EVENT_SETUP_RESPONSE, &ev);
        ck_assert_uint_eq(ev.setup.mode, mode);
        ow_event_done(&ev);
}

/* Greeting, Set-Up-Response, Server-Start in `mode`, all accepted. */
static void handshake(Pair *p, uint32_t mode) {
        OwServerGreeting g = greeting_of(OW_MODES_ALL);
        OwControlKeys keys = keys_sample();
        uint8_t civ[OW_IV_SIZE], siv[OW_IV_SIZE];
        OwEvent ev;

        new_pair(p, mode);
        fill(civ, sizeof(civ), 5);
        fill(siv, sizeof(siv), 6);

        expect_nothing(p->s); /* the greeting is the server's to send */
        ck_assert_int_eq(ow_engine_send_greeting(p->s, &g), 0);
        ck_assert_int_eq(ow_engine_state(p->s), OW_ENGINE_SETUP);
        ck_assert_uint_eq(pump(p->s, p->c), OW_SERVER_GREETING_SIZE);
        expect(p->c, OW_EVENT_GREETING, &ev);
        ck_assert_uint_eq(ev.greeting.modes, OW_MODES_ALL);
        ck_assert_uint_eq(ev.greeting.count, 1024);
        ck_assert_bytes_eq(ev.greeting.salt, g.salt, OW_SALT_SIZE);
        ow_event_done(&ev);

        OwClientSetup cs = setup_of(mode, &keys, civ);
        ck_assert_int_eq(ow_engine_send_setup_response(p->c, &cs), 0);
        ck_assert_int_eq(ow_engine_state(p->c), OW_ENGINE_START);
        ck_assert_uint_eq(pump(p->c, p->s), OW_SETUP_RESPONSE_SIZE);
        expect(p->s, OW_EVENT_SETUP_RESPONSE, &ev);
        ck_assert_uint_eq(ev.setup.mode, mode);
        ck_assert_str_eq(ev.setup.keyid, mode == OW_MODE_OPEN ? "" : KEYID);
        ck_assert(ow_all_zero(ev.setup.token, OW_TOKEN_SIZE));
        ow_event_done(&ev);
        ck_assert_uint_eq(ow_engine_mode(p->s), mode);

        if (mode != OW_MODE_OPEN)
                ck_assert_int_eq(ow_engine_server_authenticate(p->s, SECRET, strlen(SECRET)), 0);
        else
                ck_assert_int_eq(ow_engine_server_authenticate(p->s, SECRET, strlen(SECRET)), -OW_ERR_STATE);
        ck_assert_int_eq(ow_engine_send_server_start(p->s, OW_ACCEPT_OK, siv, 0x1234567800000000), 0);
        ck_assert_int_eq(ow_engine_state(p->s), OW_ENGINE_IDLE);
        ck_assert_uint_eq(pump(p->s, p->c), OW_SERVER_START_SIZE);
        expect(p->c, OW_EVENT_SERVER_START, &ev);
        ck_assert_int_eq(ev.server_start.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(ev.server_start.start_time, 0x1234567800000000);
        if (mode == OW_MODE_OPEN)
                ck_assert(ow_all_zero(ev.server_start.server_iv, OW_IV_SIZE));
        else
                ck_assert_bytes_eq(ev.server_start.server_iv, siv, OW_IV_SIZE);
        ck_assert_int_eq(ow_engine_state(p->c), OW_ENGINE_IDLE);

        /* Both ends hold the client's keys in A and E. */
        if (mode == OW_MODE_OPEN) {
                ck_assert_ptr_null(ow_engine_keys(p->c));
                ck_assert_ptr_null(ow_engine_keys(p->s));
        } else {
                ck_assert_bytes_eq(ow_engine_keys(p->c)->aes, keys.aes, OW_AES_KEY_SIZE);
                ck_assert_bytes_eq(ow_engine_keys(p->s)->hmac, keys.hmac, OW_HMAC_KEY_SIZE);
        }
}

static OwSlot slots2[2] = { { OW_SLOT_EXPONENTIAL, 0x0ccccccc }, { OW_SLOT_FIXED, 0x01000000 } };

static OwSessionRequest request_sample(bool server_sends, uint8_t seed) {
        OwSessionRequest q = {
                .ipvn = 4,
                .conf_sender = server_sends,
                .conf_receiver = !server_sends,
                .n_slots = 2,
                .n_packets = 100,
                .sender_port = server_sends ? 0 : 9000 + seed,
                .receiver_port = server_sends ? 9100 + seed : 0,
                .padding_length = 14,
                .start_time = UINT64_C(0xe000000000000000) + seed,
                .timeout = UINT64_C(2) << 32,
                .type_p = ow_typep_from_dscp(46),
                .slots = slots2,
        };
        q.sender_addr[0] = q.receiver_addr[0] = 127;
        q.sender_addr[3] = q.receiver_addr[3] = 1;
        fill(q.sid.bytes, sizeof(q.sid.bytes), seed);
        return q;
}

/* The same request as it comes out of a decoder: the same octets. */
static void assert_request_eq(const OwSessionRequest *a, const OwSessionRequest *b) {
        uint8_t ea[512], eb[512];
        int n = ow_request_session_encode(a, ea, sizeof(ea));

        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(ow_request_session_encode(b, eb, sizeof(eb)), n);
        ck_assert_bytes_eq(ea, eb, (size_t) n);
}

/* One session requested, accepted and started: both in TEST. */
static void start_one(Pair *p) {
        OwSessionRequest q = request_sample(false, 1);
        OwAcceptSession a = { .accept = OW_ACCEPT_OK, .port = 8900 };
        OwEvent ev;

        ck_assert_int_eq(ow_engine_send_request_session(p->c, &q), 0);
        pump(p->c, p->s);
        expect(p->s, OW_EVENT_REQUEST_SESSION, &ev);
        ow_event_done(&ev);
        ck_assert_int_eq(ow_engine_send_accept_session(p->s, &a), 0);
        pump(p->s, p->c);
        expect(p->c, OW_EVENT_ACCEPT_SESSION, &ev);
        ck_assert_int_eq(ow_engine_send_start_sessions(p->c), 0);
        pump(p->c, p->s);
        expect(p->s, OW_EVENT_START_SESSIONS, &ev);
        ck_assert_int_eq(ow_engine_send_start_ack(p->s, OW_ACCEPT_OK), 0);
        ck_assert_int_eq(ow_engine_state(p->s), OW_ENGINE_TEST);
        pump(p->s, p->c);
        expect(p->c, OW_EVENT_START_ACK, &ev);
        ck_assert_int_eq(ev.accept, OW_ACCEPT_OK);
        ck_assert_int_eq(ow_engine_state(p->c), OW_ENGINE_TEST);
}

/* --- Set-up -------------------------------------------------------------- */

START_TEST(test_handshake) {
        Pair p;

        handshake(&p, modes[_i]);
        ck_assert_uint_eq(ow_engine_input_pending(p.c), 0);
        ck_assert_uint_eq(ow_engine_input_pending(p.s), 0);
        ck_assert(!ow_engine_awaiting_peer(p.c));
        free_pair(&p);
}
END_TEST

/* Everything `from` queued, fed to `to` one octet at a time: no event
 * before the last one. */
static void feed_bytewise(OwEngine *from, OwEngine *to) {
        size_t n;
        const uint8_t *out = ow_engine_output(from, &n);

        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(ow_engine_feed(to, out + i, 1), 0);
                if (i + 1 < n)
                        expect_nothing(to);
        }
        ow_engine_output_done(from, n);
}

/* The set-up arriving one octet at a time. */
START_TEST(test_handshake_bytewise) {
        OwServerGreeting g = greeting_of(OW_MODE_ENCRYPTED);
        OwControlKeys keys = keys_sample();
        uint8_t iv[OW_IV_SIZE] = { 1 };
        OwEvent ev;
        Pair p;

        new_pair(&p, OW_MODE_ENCRYPTED);
        ck_assert_int_eq(ow_engine_send_greeting(p.s, &g), 0);
        feed_bytewise(p.s, p.c);
        expect(p.c, OW_EVENT_GREETING, &ev);
        OwClientSetup cs = setup_of(OW_MODE_ENCRYPTED, &keys, iv);
        ck_assert_int_eq(ow_engine_send_setup_response(p.c, &cs), 0);
        ck_assert_uint_eq(ow_engine_output_pending(p.c), OW_SETUP_RESPONSE_SIZE);
        feed_bytewise(p.c, p.s);
        expect(p.s, OW_EVENT_SETUP_RESPONSE, &ev);
        ck_assert_int_eq(ow_engine_server_authenticate(p.s, SECRET, strlen(SECRET)), 0);
        ck_assert_int_eq(ow_engine_send_server_start(p.s, OW_ACCEPT_OK, iv, 7), 0);
        feed_bytewise(p.s, p.c);
        expect(p.c, OW_EVENT_SERVER_START, &ev);
        ck_assert_uint_eq(ev.server_start.start_time, 7);
        free_pair(&p);
}
END_TEST

START_TEST(test_refused_greeting) {
        OwServerGreeting g = greeting_of(0);
        OwEvent ev;
        Pair p;

        new_pair(&p, OW_MODE_OPEN);
        ck_assert_int_eq(ow_engine_send_greeting(p.s, &g), 0);
        ck_assert_int_eq(ow_engine_state(p.s), OW_ENGINE_CLOSED);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_GREETING, &ev);
        ck_assert_uint_eq(ev.greeting.modes, 0);
        ck_assert_int_eq(ow_engine_state(p.c), OW_ENGINE_CLOSED);
        /* Nothing more either way. */
        OwClientSetup cs = { .mode = OW_MODE_OPEN };
        ck_assert_int_eq(ow_engine_send_setup_response(p.c, &cs), -OW_ERR_STATE);
        ck_assert_int_eq(ow_engine_feed(p.c, "x", 1), 0);
        expect_nothing(p.c);
        free_pair(&p);
}
END_TEST

START_TEST(test_mode_checks) {
        OwServerGreeting g = greeting_of(OW_MODE_OPEN | OW_MODE_AUTHENTICATED);
        OwControlKeys keys = keys_sample();
        uint8_t iv[OW_IV_SIZE] = {};
        size_t n;
        Pair p;
        OwEvent ev;

        new_pair(&p, OW_MODE_OPEN);
        /* A mode bit OWAMP does not have. */
        g.modes |= 8;
        ck_assert_int_eq(ow_engine_send_greeting(p.s, &g), -OW_ERR_MODE);
        ck_assert_uint_eq(ow_engine_output_pending(p.s), 0);
        g.modes &= ~8u;
        ck_assert_int_eq(ow_engine_send_greeting(p.s, &g), 0);
        ck_assert_int_eq(ow_engine_send_greeting(p.s, &g), -OW_ERR_STATE);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_GREETING, &ev);

        /* Not offered, not exactly one bit, no key id: nothing goes out. */
        OwClientSetup cs = setup_of(OW_MODE_ENCRYPTED, &keys, iv);
        cs.secret_len = 3;
        ck_assert_int_eq(ow_engine_send_setup_response(p.c, &cs), -OW_ERR_MODE);
        cs.mode = OW_MODE_OPEN | OW_MODE_AUTHENTICATED;
        ck_assert_int_eq(ow_engine_send_setup_response(p.c, &cs), -OW_ERR_MODE);
        cs.mode = OW_MODE_AUTHENTICATED;
        cs.keyid = "two words";
        ck_assert_int_eq(ow_engine_send_setup_response(p.c, &cs), -OW_ERR_KEYID);
        ck_assert_uint_eq(ow_engine_output_pending(p.c), 0);
        ow_engine_output(p.c, &n);
        ck_assert_uint_eq(n, 0);
        ck_assert_int_eq(ow_engine_state(p.c), OW_ENGINE_SETUP);
        free_pair(&p);
}
END_TEST

/* The server refuses what the client picked: Server-Start with Accept 1,
 * sent clear with zeros at 32..47, and both ends are CLOSED. */
START_TEST(test_refused_mode) {
        OwServerGreeting g = greeting_of(OW_MODE_OPEN | OW_MODE_ENCRYPTED);
        uint8_t siv[OW_IV_SIZE];
        OwEvent ev;
        size_t n;
        Pair p;

        fill(siv, sizeof(siv), 9);
        new_pair(&p, OW_MODE_OPEN);
        greet_and_answer(&p, &g, OW_MODE_OPEN, NULL);

        const uint8_t *out;
        ck_assert_int_eq(ow_engine_send_server_start(p.s, OW_ACCEPT_FAILURE, siv, 99), 0);
        out = ow_engine_output(p.s, &n);
        ck_assert_uint_eq(n, OW_SERVER_START_SIZE);
        ck_assert_uint_eq(out[15], OW_ACCEPT_FAILURE);
        ck_assert(ow_all_zero(out + 32, 16));
        ck_assert_int_eq(ow_engine_state(p.s), OW_ENGINE_CLOSED);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_SERVER_START, &ev);
        ck_assert_int_eq(ev.server_start.accept, OW_ACCEPT_FAILURE);
        ck_assert_int_eq(ow_engine_state(p.c), OW_ENGINE_CLOSED);
        ck_assert_int_eq(ow_engine_send_request_session(p.c, &(OwSessionRequest){}), -OW_ERR_STATE);
        free_pair(&p);
}
END_TEST

/* A mode the greeting did not offer cannot be accepted by the server
 * either, and the Token must check out before Accept 0. */
START_TEST(test_server_start_checks) {
        OwServerGreeting g = greeting_of(OW_MODE_AUTHENTICATED);
        uint8_t iv[OW_IV_SIZE] = {};
        uint8_t setup[OW_SETUP_RESPONSE_SIZE];
        OwEvent ev;
        size_t n;
        Pair p;

        /* Open mode requested from an A-only greeting (the client engine
         * refuses to, so write the Set-Up-Response by hand). */
        new_pair(&p, OW_MODE_OPEN);
        ck_assert_int_eq(ow_engine_send_greeting(p.s, &g), 0);
        ck_assert_int_eq(
                ow_setup_response_encode(&(OwSetupResponse){ .mode = OW_MODE_OPEN }, setup, sizeof(setup)),
                OW_SETUP_RESPONSE_SIZE);
        ck_assert_int_eq(ow_engine_feed(p.s, setup, sizeof(setup)), 0);
        expect(p.s, OW_EVENT_SETUP_RESPONSE, &ev);
        ck_assert_int_eq(ow_engine_send_server_start(p.s, OW_ACCEPT_OK, NULL, 0), -OW_ERR_MODE);
        ow_engine_output(p.s, &n);
        ck_assert_uint_eq(n, OW_SERVER_GREETING_SIZE); /* the greeting, nothing more */
        ck_assert_int_eq(ow_engine_send_server_start(p.s, OW_ACCEPT_FAILURE, NULL, 0), 0);
        free_pair(&p);

        /* A wrong secret: -OW_ERR_TOKEN, and no Accept 0 without it. */
        new_pair(&p, OW_MODE_AUTHENTICATED);
        greet_and_answer(&p, &g, OW_MODE_AUTHENTICATED, iv);
        ck_assert_int_eq(ow_engine_server_authenticate(p.s, "wrong", 5), -OW_ERR_TOKEN);
        ck_assert_ptr_null(ow_engine_keys(p.s));
        ck_assert_int_eq(ow_engine_send_server_start(p.s, OW_ACCEPT_OK, iv, 0), -OW_ERR_TOKEN);
        ck_assert_int_eq(ow_engine_send_server_start(p.s, OW_ACCEPT_OK, NULL, 0), -OW_ERR_TOKEN);
        ck_assert_int_eq(ow_engine_server_authenticate(p.s, SECRET, strlen(SECRET)), 0);
        ck_assert_int_eq(ow_engine_send_server_start(p.s, OW_ACCEPT_OK, NULL, 0), -EINVAL);
        ck_assert_int_eq(ow_engine_send_server_start(p.s, OW_ACCEPT_OK, iv, 0), 0);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_SERVER_START, &ev);
        ck_assert_int_eq(ev.server_start.accept, OW_ACCEPT_OK);
        free_pair(&p);
}
END_TEST

/* What a client must not accept during the set-up. */
START_TEST(test_client_setup_errors) {
        uint8_t buf[OW_SERVER_START_SIZE] = {};
        OwServerGreeting g = greeting_of(OW_MODE_AUTHENTICATED);
        uint8_t gbuf[OW_SERVER_GREETING_SIZE];
        OwEvent ev;
        Pair p;

        /* A PBKDF2 count below 1024 with A offered. */
        new_pair(&p, OW_MODE_OPEN);
        ck_assert_int_eq(ow_server_greeting_encode(&g, gbuf, sizeof(gbuf)), OW_SERVER_GREETING_SIZE);
        ow_put_be32(gbuf + 48, 1000);
        ck_assert_int_eq(ow_engine_feed(p.c, gbuf, sizeof(gbuf)), 0);
        expect_failure(p.c, -OW_ERR_PBKDF2_COUNT, "bad Server Greeting");
        free_pair(&p);

        /* Accept 6 in the Server-Start. */
        new_pair(&p, OW_MODE_OPEN);
        g = greeting_of(OW_MODE_OPEN);
        ck_assert_int_eq(ow_engine_send_greeting(p.s, &g), 0);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_GREETING, &ev);
        ck_assert_int_eq(ow_engine_send_setup_response(p.c, &(OwClientSetup){ .mode = OW_MODE_OPEN }), 0);
        buf[15] = 6;
        ck_assert_int_eq(ow_engine_feed(p.c, buf, 32), 0);
        expect_failure(p.c, -OW_ERR_ACCEPT, "bad Server-Start");
        free_pair(&p);
}
END_TEST

START_TEST(test_server_setup_errors) {
        static const uint32_t bad[] = { 0, 3, 8, 0xffffffff };
        OwServerGreeting g = greeting_of(OW_MODES_ALL);
        uint8_t buf[OW_SETUP_RESPONSE_SIZE] = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Pair p;

                new_pair(&p, OW_MODE_OPEN);
                ck_assert_int_eq(ow_engine_send_greeting(p.s, &g), 0);
                ow_put_be32(buf, bad[i]);
                ck_assert_int_eq(ow_engine_feed(p.s, buf, sizeof(buf) - 1), 0);
                expect_nothing(p.s);
                ck_assert_uint_eq(ow_engine_input_pending(p.s), sizeof(buf) - 1);
                ck_assert_int_eq(ow_engine_feed(p.s, buf, 1), 0);
                expect_failure(p.s, -OW_ERR_MODE, "bad Set-Up-Response");
                free_pair(&p);
        }
}
END_TEST

/* --- Commands ------------------------------------------------------------- */

/* A whole batch: two Request-Sessions pipelined, their Accept-Sessions in
 * order, Start-Sessions, Start-Ack, Stop-Sessions both ways with skip
 * ranges, back to IDLE; a second batch after it. */
START_TEST(test_batch) {
        OwSessionRequest to = request_sample(false, 1), from = request_sample(true, 2);
        OwSkipRange ranges[3] = { { 3, 5 }, { 9, 9 }, { 20, 30 } };
        OwStopSession css = { .sid = to.sid, .next_seqno = 100, .n_skip_ranges = 3, .skip_ranges = ranges };
        OwStopSession sss = { .sid = from.sid, .next_seqno = 99, .n_skip_ranges = 0 };
        OwEvent ev;
        Pair p;

        handshake(&p, modes[_i]);
        for (int batch = 0; batch < 2; batch++) {
                ck_assert_int_eq(ow_engine_send_request_session(p.c, &to), 0);
                ck_assert_int_eq(ow_engine_send_request_session(p.c, &from), 0);
                ck_assert(ow_engine_awaiting_peer(p.c));
                /* Request-Session: 112 + 2 x 16 + 16 octets each. */
                ck_assert_uint_eq(ow_engine_output_pending(p.c), 2 * (112 + 32 + 16));
                pump(p.c, p.s);

                expect(p.s, OW_EVENT_REQUEST_SESSION, &ev);
                ck_assert_int_eq(ev.error, 0);
                assert_request_eq(&ev.request, &to);
                ow_event_done(&ev);
                /* One at a time: the second waits for our answer. */
                expect_nothing(p.s);
                ck_assert_int_eq(ow_engine_send_start_ack(p.s, OW_ACCEPT_OK), -OW_ERR_STATE);
                ck_assert_int_eq(
                        ow_engine_send_accept_session(
                                p.s,
                                &(OwAcceptSession){ .accept = OW_ACCEPT_OK, .port = 8901, .sid = to.sid }),
                        0);
                ck_assert_int_eq(ow_engine_send_accept_session(p.s, &(OwAcceptSession){}), -OW_ERR_STATE);
                expect(p.s, OW_EVENT_REQUEST_SESSION, &ev);
                assert_request_eq(&ev.request, &from);
                ow_event_done(&ev);
                ck_assert_int_eq(
                        ow_engine_send_accept_session(
                                p.s,
                                &(OwAcceptSession){ .accept = OW_ACCEPT_OK, .port = 8902, .sid = from.sid }),
                        0);
                pump(p.s, p.c);
                expect(p.c, OW_EVENT_ACCEPT_SESSION, &ev);
                ck_assert_uint_eq(ev.accept_session.port, 8901);
                ck_assert_bytes_eq(ev.accept_session.sid.bytes, to.sid.bytes, OW_SID_SIZE);
                expect(p.c, OW_EVENT_ACCEPT_SESSION, &ev);
                ck_assert_uint_eq(ev.accept_session.port, 8902);
                ck_assert(!ow_engine_awaiting_peer(p.c));

                ck_assert_int_eq(ow_engine_send_start_sessions(p.c), 0);
                /* Nothing after Start-Sessions until its Start-Ack. */
                ck_assert_int_eq(ow_engine_send_request_session(p.c, &to), -OW_ERR_STATE);
                ck_assert_int_eq(ow_engine_send_fetch_session(p.c, &(OwFetchSession){}), -OW_ERR_STATE);
                pump(p.c, p.s);
                expect(p.s, OW_EVENT_START_SESSIONS, &ev);
                ck_assert_int_eq(ow_engine_state(p.s), OW_ENGINE_IDLE); /* until the Start-Ack */
                ck_assert_int_eq(ow_engine_send_stop_sessions(p.s, &(OwStopSessions){}), -OW_ERR_STATE);
                ck_assert_int_eq(ow_engine_send_start_ack(p.s, OW_ACCEPT_OK), 0);
                pump(p.s, p.c);
                expect(p.c, OW_EVENT_START_ACK, &ev);
                ck_assert_int_eq(ow_engine_state(p.c), OW_ENGINE_TEST);

                /* Odd batches: the server stops first. */
                OwStopSessions cst = { .accept = OW_ACCEPT_OK, .n_sessions = 1, .sessions = &css };
                OwStopSessions sst = { .accept = OW_ACCEPT_OK, .n_sessions = 1, .sessions = &sss };
                OwEngine *first = batch ? p.s : p.c, *second = batch ? p.c : p.s;
                ck_assert_int_eq(ow_engine_send_stop_sessions(first, batch ? &sst : &cst), 0);
                ck_assert(ow_engine_awaiting_peer(first));
                ck_assert_int_eq(ow_engine_send_stop_sessions(first, batch ? &sst : &cst), -OW_ERR_STATE);
                ck_assert_int_eq(ow_engine_state(first), OW_ENGINE_TEST);
                pump(first, second);
                expect(second, OW_EVENT_STOP_SESSIONS, &ev);
                ck_assert_uint_eq(ev.stop.n_sessions, 1);
                if (batch == 0) {
                        ck_assert_uint_eq(ev.stop.sessions[0].next_seqno, 100);
                        ck_assert_uint_eq(ev.stop.sessions[0].n_skip_ranges, 3);
                        ck_assert_uint_eq(ev.stop.sessions[0].skip_ranges[2].last, 30);
                } else
                        ck_assert_uint_eq(ev.stop.sessions[0].next_seqno, 99);
                ow_event_done(&ev);
                ck_assert_int_eq(ow_engine_state(second), OW_ENGINE_TEST);
                ck_assert_int_eq(ow_engine_send_stop_sessions(second, batch ? &cst : &sst), 0);
                ck_assert_int_eq(ow_engine_state(second), OW_ENGINE_IDLE);
                pump(second, first);
                expect(first, OW_EVENT_STOP_SESSIONS, &ev);
                ow_event_done(&ev);
                ck_assert_int_eq(ow_engine_state(first), OW_ENGINE_IDLE);
                ck_assert(!ow_engine_awaiting_peer(first));
        }
        free_pair(&p);
}
END_TEST

/* Refusals the protocol answers: Accept-Session, Start-Ack, Fetch-Ack with
 * Accept > 0, and requests whose decoder refuses them answered in step. */
START_TEST(test_refusals) {
        OwSessionRequest q = request_sample(false, 1);
        uint8_t buf[1024];
        OwEvent ev;
        Pair p;

        handshake(&p, modes[_i]);

        ck_assert_int_eq(ow_engine_send_request_session(p.c, &q), 0);
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_REQUEST_SESSION, &ev);
        ow_event_done(&ev);
        ck_assert_int_eq(
                ow_engine_send_accept_session(p.s, &(OwAcceptSession){ .accept = OW_ACCEPT_TEMP_RESOURCE }),
                0);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_ACCEPT_SESSION, &ev);
        ck_assert_int_eq(ev.accept_session.accept, OW_ACCEPT_TEMP_RESOURCE);

        ck_assert_int_eq(ow_engine_send_start_sessions(p.c), 0);
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_START_SESSIONS, &ev);
        ck_assert_int_eq(ow_engine_send_start_ack(p.s, OW_ACCEPT_FAILURE), 0);
        ck_assert_int_eq(ow_engine_state(p.s), OW_ENGINE_IDLE);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_START_ACK, &ev);
        ck_assert_int_eq(ev.accept, OW_ACCEPT_FAILURE);
        ck_assert_int_eq(ow_engine_state(p.c), OW_ENGINE_IDLE);

        ck_assert_int_eq(ow_engine_send_fetch_session(p.c, &(OwFetchSession){ .begin = 0, .end = 9 }), 0);
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_FETCH_SESSION, &ev);
        ck_assert_uint_eq(ev.fetch.end, 9);
        ck_assert_int_eq(ow_engine_send_fetch_request(p.s, &q), -OW_ERR_STATE);
        ck_assert_int_eq(ow_engine_send_fetch_ack(p.s, &(OwFetchAck){ .accept = OW_ACCEPT_FAILURE }), 0);
        ck_assert_int_eq(ow_engine_send_fetch_request(p.s, &q), -OW_ERR_STATE);
        pump(p.s, p.c);
        expect(p.c, OW_EVENT_FETCH_ACK, &ev);
        ck_assert_int_eq(ev.fetch_ack.accept, OW_ACCEPT_FAILURE);
        ck_assert(!ow_engine_awaiting_peer(p.c));

        /* Requests the decoders refuse, read whole: an event with the error
         * for the server to answer, and the stream stays in step. The
         * client engine never sends them, so the test writes them, in clear
         * (mode O), with the codec's lenient preamble writer. */
        if (p.mode == OW_MODE_OPEN) {
                OwSessionRequest bad = q;
                bad.ipvn = 5;
                ow_request_preamble_put(&bad, buf);
                for (uint32_t i = 0; i < bad.n_slots; i++)
                        ow_slot_put(&bad.slots[i], buf + 112 + 16 * i);
                memset(buf + 112 + 32, 0, 16);
                ck_assert_int_eq(ow_engine_feed(p.s, buf, 112 + 48), 0);
                expect(p.s, OW_EVENT_REQUEST_SESSION, &ev);
                ck_assert_int_eq(ev.error, -OW_ERR_IPVN);
                ow_event_done(&ev);
                ck_assert_int_eq(ow_engine_send_accept_session(
                                         p.s, &(OwAcceptSession){ .accept = OW_ACCEPT_UNSUPPORTED }),
                                 0);

                /* Fetch-Session with Begin > End. */
                memset(buf, 0, 48);
                buf[0] = OW_CMD_FETCH_SESSION;
                ow_put_be32(buf + 8, 10);
                ow_put_be32(buf + 12, 9);
                ck_assert_int_eq(ow_engine_feed(p.s, buf, 48), 0);
                expect(p.s, OW_EVENT_FETCH_SESSION, &ev);
                ck_assert_int_eq(ev.error, -OW_ERR_RANGE);
                ck_assert_int_eq(
                        ow_engine_send_fetch_ack(p.s, &(OwFetchAck){ .accept = OW_ACCEPT_UNSUPPORTED }), 0);
                expect_nothing(p.s);
                ck_assert_int_eq(ow_engine_state(p.s), OW_ENGINE_IDLE);
        }
        free_pair(&p);
}
END_TEST

/* Protocol errors the server catches, in open mode where the test can
 * write the octets itself: each with its error and its context. */
START_TEST(test_server_protocol_errors) {
        OwSessionRequest q = request_sample(false, 1);
        uint8_t buf[256] = {};
        Pair p;

        /* Unknown command numbers. */
        static const uint8_t unknown[] = { 0, 5, 6, 254, 255 };
        for (size_t i = 0; i < ELEMENTSOF(unknown); i++) {
                handshake(&p, OW_MODE_OPEN);
                buf[0] = unknown[i];
                ck_assert_int_eq(ow_engine_feed(p.s, buf, 16), 0);
                expect_failure(p.s, -OW_ERR_COMMAND, "unknown command");
                free_pair(&p);
        }

        /* Stop-Sessions outside a test, even a whole one. */
        handshake(&p, OW_MODE_OPEN);
        OwStopSessions st = { .accept = OW_ACCEPT_OK };
        ck_assert_int_eq(ow_stop_sessions_encode(&st, buf, sizeof(buf)), 32);
        ck_assert_int_eq(ow_engine_feed(p.s, buf, 32), 0);
        expect_failure(p.s, -OW_ERR_STATE, "Stop-Sessions outside a test");
        free_pair(&p);

        /* 0 and 2^32-1 slots: refused on the first block. */
        static const uint32_t slots[] = { 0, 0xffffffff, OW_MAX_SLOTS + 1 };
        for (size_t i = 0; i < ELEMENTSOF(slots); i++) {
                handshake(&p, OW_MODE_OPEN);
                ow_request_preamble_put(&q, buf);
                ow_put_be32(buf + 4, slots[i]);
                ck_assert_int_eq(ow_engine_feed(p.s, buf, 16), 0);
                expect_failure(p.s, -OW_ERR_COUNT, "Request-Session");
                free_pair(&p);
        }

        /* In a test, only Stop-Sessions. */
        static const uint8_t in_test[] = { OW_CMD_REQUEST_SESSION, OW_CMD_START_SESSIONS,
                                           OW_CMD_FETCH_SESSION };
        for (size_t i = 0; i < ELEMENTSOF(in_test); i++) {
                handshake(&p, OW_MODE_OPEN);
                start_one(&p);
                memset(buf, 0, 48);
                buf[0] = in_test[i];
                ck_assert_int_eq(ow_engine_feed(p.s, buf, 48), 0);
                expect_failure(p.s, -OW_ERR_STATE, "only Stop-Sessions is allowed during a test");
                free_pair(&p);
        }

        /* A second Stop-Sessions from the client. */
        handshake(&p, OW_MODE_OPEN);
        start_one(&p);
        ck_assert_int_eq(ow_stop_sessions_encode(&st, buf, sizeof(buf)), 32);
        ck_assert_int_eq(ow_engine_feed(p.s, buf, 32), 0);
        OwEvent ev;
        expect(p.s, OW_EVENT_STOP_SESSIONS, &ev);
        ow_event_done(&ev);
        ck_assert_int_eq(ow_engine_feed(p.s, buf, 32), 0);
        expect_failure(p.s, -OW_ERR_STATE, "Stop-Sessions outside a test");
        free_pair(&p);

        /* A Stop-Sessions that does not decode (padding not zero). */
        handshake(&p, OW_MODE_OPEN);
        start_one(&p);
        OwStopSession one = { .next_seqno = 5 };
        st = (OwStopSessions){ .accept = OW_ACCEPT_OK, .n_sessions = 1, .sessions = &one };
        ck_assert_int_eq(ow_stop_sessions_encode(&st, buf, sizeof(buf)), 64);
        buf[16 + 16 + 8] = 1;
        ck_assert_int_eq(ow_engine_feed(p.s, buf, 64), 0);
        expect_failure(p.s, -OW_ERR_PADDING, "bad Stop-Sessions");
        free_pair(&p);

        /* A Stop-Sessions with too many sessions: refused on its header. */
        handshake(&p, OW_MODE_OPEN);
        start_one(&p);
        memset(buf, 0, 16);
        buf[0] = OW_CMD_STOP_SESSIONS;
        ow_put_be32(buf + 4, OW_MAX_STOP_SESSIONS + 1);
        ck_assert_int_eq(ow_engine_feed(p.s, buf, 16), 0);
        expect_failure(p.s, -OW_ERR_COUNT, "Stop-Sessions");
        free_pair(&p);
}
END_TEST

/* A flipped bit anywhere after a command's first block fails the HMAC in A
 * and E (the first block is read before any HMAC, to learn the command: a
 * change there garbles the command number). */
START_TEST(test_tampered) {
        OwSessionRequest q = request_sample(false, 1);
        Pair p;
        size_t n;

        for (size_t at = OW_BLOCK_SIZE; at < 112 + 48; at += 37) {
                handshake(&p, _i ? OW_MODE_ENCRYPTED : OW_MODE_AUTHENTICATED);
                ck_assert_int_eq(ow_engine_send_request_session(p.c, &q), 0);
                uint8_t *out = (uint8_t *) ow_engine_output(p.c, &n);
                ck_assert_uint_eq(n, 112 + 48);
                out[at] ^= 0x10;
                pump(p.c, p.s);
                expect_failure(p.s, -OW_ERR_HMAC, "Request-Session");
                free_pair(&p);
        }
        /* The server's answers too. */
        handshake(&p, OW_MODE_AUTHENTICATED);
        ck_assert_int_eq(ow_engine_send_start_sessions(p.c), 0);
        pump(p.c, p.s);
        OwEvent ev;
        expect(p.s, OW_EVENT_START_SESSIONS, &ev);
        ck_assert_int_eq(ow_engine_send_start_ack(p.s, OW_ACCEPT_OK), 0);
        uint8_t *out = (uint8_t *) ow_engine_output(p.s, &n);
        out[31] ^= 1;
        pump(p.s, p.c);
        expect_failure(p.c, -OW_ERR_HMAC, "Start-Ack");
        free_pair(&p);
}
END_TEST

/* What the client catches from the server. */
START_TEST(test_client_protocol_errors) {
        uint8_t buf[64] = {};
        OwEvent ev;
        Pair p;

        /* Accept 7 in an Accept-Session. */
        handshake(&p, OW_MODE_OPEN);
        OwSessionRequest q = request_sample(false, 1);
        ck_assert_int_eq(ow_engine_send_request_session(p.c, &q), 0);
        buf[0] = 7;
        ck_assert_int_eq(ow_engine_feed(p.c, buf, 48), 0);
        expect_failure(p.c, -OW_ERR_ACCEPT, "bad Accept-Session");
        free_pair(&p);

        /* In a test, the server may send its Stop-Sessions and nothing else. */
        handshake(&p, OW_MODE_OPEN);
        start_one(&p);
        memset(buf, 0, sizeof(buf));
        buf[0] = OW_CMD_FETCH_SESSION;
        ck_assert_int_eq(ow_engine_feed(p.c, buf, 48), 0);
        expect_failure(p.c, -OW_ERR_COMMAND, "unknown command");
        free_pair(&p);

        /* Unasked octets wait: they are the server's problem once we ask. */
        handshake(&p, OW_MODE_OPEN);
        ck_assert_int_eq(ow_engine_feed(p.c, buf, 16), 0);
        expect_nothing(p.c);
        ck_assert_uint_eq(ow_engine_input_pending(p.c), 16);
        free_pair(&p);

        /* A Fetch-Ack counting more records than we bound. */
        handshake(&p, OW_MODE_OPEN);
        ck_assert_int_eq(ow_engine_send_fetch_session(p.c, &(OwFetchSession){ .end = UINT32_MAX }), 0);
        memset(buf, 0, sizeof(buf));
        ow_put_be32(buf + 12, OW_MAX_FETCH_RECORDS + 1);
        ck_assert_int_eq(ow_engine_feed(p.c, buf, 32), 0);
        expect_failure(p.c, -OW_ERR_COUNT, "bad Fetch-Ack");
        (void) ev;
        free_pair(&p);
}
END_TEST

/* --- Fetch ----------------------------------------------------------------- */

static OwRecord record_of(uint32_t i) {
        return (OwRecord){
                .seq = i,
                .send_err = 0x8001,
                .recv_err = 0x0101,
                .send_time = UINT64_C(0xe000000000000000) + ((uint64_t) i << 24),
                .recv_time = i % 17 == 3 ? 0 : UINT64_C(0xe000000000000000) + ((uint64_t) i << 24) + 4096,
                .ttl = (uint8_t) (i % 256),
        };
}

/*
 * A fetch of n records, produced by the server in batches of `batch` and
 * carried to the client in pieces of `piece` octets, the client polling as
 * it goes: the client's input never holds more than a piece plus a batch of
 * records (it streams), and what it gets is every record, in order.
 */
static void run_fetch(uint32_t mode, uint32_t n, uint32_t batch, size_t piece) {
        OwSessionRequest q = request_sample(false, 3);
        OwSkipRange skips[2] = { { 1, 2 }, { 7, 7 } };
        size_t max_pending = 0;
        uint32_t got = 0;
        bool done = false, have_req = false, have_skips = false;
        OwEvent ev;
        Pair p;

        handshake(&p, mode);
        ck_assert_int_eq(
                ow_engine_send_fetch_session(p.c, &(OwFetchSession){ .end = UINT32_MAX, .sid = q.sid }), 0);
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_FETCH_SESSION, &ev);

        OwFetchAck ack = {
                .accept = OW_ACCEPT_OK, .finished = 1, .next_seqno = n, .n_skip_ranges = 2, .n_records = n
        };
        ck_assert_int_eq(ow_engine_send_fetch_skips(p.s, skips, 2), -OW_ERR_STATE);
        ck_assert_int_eq(ow_engine_send_fetch_ack(p.s, &ack), 0);
        ck_assert_int_eq(ow_engine_send_fetch_skips(p.s, skips, 2), -OW_ERR_STATE);
        ck_assert_int_eq(ow_engine_send_fetch_request(p.s, &q), 0);
        ck_assert_int_eq(ow_engine_send_fetch_skips(p.s, skips, 1), -OW_ERR_COUNT);
        ck_assert_int_eq(ow_engine_send_fetch_skips(p.s, skips, 2), 0);
        ck_assert_uint_eq(ow_engine_fetch_records_left(p.s), n);

        _cleanup_free_ OwRecord *recs = malloc(MAX(batch, 1u) * sizeof(OwRecord));
        ck_assert_ptr_nonnull(recs);
        for (uint32_t sent = 0; sent < n || !done;) {
                if (sent < n) {
                        uint32_t k = MIN(batch, n - sent);
                        for (uint32_t i = 0; i < k; i++)
                                recs[i] = record_of(sent + i);
                        ck_assert_int_eq(ow_engine_send_fetch_records(p.s, recs, k), 0);
                        sent += k;
                        ck_assert_uint_eq(ow_engine_fetch_records_left(p.s), n - sent);
                }
                /* Carry what is sealed, a piece at a time, and poll. */
                size_t len;
                const uint8_t *out = ow_engine_output(p.s, &len);
                while (len > 0) {
                        size_t k = MIN(piece, len);
                        int r;

                        ck_assert_int_eq(ow_engine_feed(p.c, out, k), 0);
                        ow_engine_output_done(p.s, k);
                        max_pending = MAX(max_pending, ow_engine_input_pending(p.c));
                        while ((r = ow_engine_poll(p.c, &ev)) > 0) {
                                switch (ev.type) {
                                case OW_EVENT_FETCH_ACK:
                                        ck_assert_uint_eq(ev.fetch_ack.n_records, n);
                                        break;
                                case OW_EVENT_FETCH_REQUEST:
                                        assert_request_eq(&ev.request, &q);
                                        have_req = true;
                                        break;
                                case OW_EVENT_FETCH_SKIPS:
                                        ck_assert(have_req);
                                        ck_assert_uint_eq(ev.skips.n, 2);
                                        ck_assert_uint_eq(ev.skips.ranges[1].first, 7);
                                        have_skips = true;
                                        break;
                                case OW_EVENT_FETCH_RECORDS:
                                        ck_assert(have_skips);
                                        ck_assert_uint_le(ev.records.n, OW_ENGINE_RECORD_BATCH);
                                        for (uint32_t i = 0; i < ev.records.n; i++) {
                                                OwRecord want = record_of(got + i);
                                                ck_assert_uint_eq(ev.records.records[i].seq, want.seq);
                                                ck_assert_uint_eq(ev.records.records[i].recv_time,
                                                                  want.recv_time);
                                                ck_assert_uint_eq(ev.records.records[i].ttl, want.ttl);
                                        }
                                        got += ev.records.n;
                                        break;
                                case OW_EVENT_FETCH_DONE:
                                        ck_assert(!done);
                                        done = true;
                                        break;
                                default:
                                        ck_abort_msg("unexpected event %d", ev.type);
                                }
                                ow_event_done(&ev);
                        }
                        ck_assert_int_eq(r, 0);
                        out = ow_engine_output(p.s, &len);
                }
                ck_assert(sent == n ? done : !done);
        }
        ck_assert_uint_eq(got, n);
        ck_assert_uint_eq(ow_engine_input_pending(p.c), 0);
        /* Streamed: a piece, plus at most a batch of records and a block. */
        ck_assert_uint_le(max_pending, piece + (size_t) OW_ENGINE_RECORD_BATCH * OW_RECORD_SIZE + 32);
        ck_assert(!ow_engine_awaiting_peer(p.c));
        ck_assert_int_eq(ow_engine_fetch_records_left(p.s), 0);
        ck_assert_int_eq(ow_engine_send_fetch_records(p.s, recs, 1), -OW_ERR_STATE);

        /* Back to commands on both ends. */
        ck_assert_int_eq(ow_engine_send_start_sessions(p.c), 0);
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_START_SESSIONS, &ev);
        free_pair(&p);
}

/* A server may answer later, from another callback (owampd's fetch-wait.c
 * answers a whole-session Fetch-Session once the session ended): the
 * commands pipelined behind it stay in the engine, unread, until then. */
START_TEST(test_deferred_answer) {
        OwSessionRequest q = request_sample(false, 3);
        OwFetchSession f = { .begin = 0, .end = UINT32_MAX };
        OwEvent ev;
        Pair p;

        handshake(&p, modes[_i]);
        fill(f.sid.bytes, sizeof(f.sid.bytes), 9);
        ck_assert_int_eq(ow_engine_send_fetch_session(p.c, &f), 0);
        ck_assert_int_eq(ow_engine_send_request_session(p.c, &q), 0);
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_FETCH_SESSION, &ev);
        ck_assert_int_eq(ev.error, 0);
        ck_assert_uint_eq(ev.fetch.end, UINT32_MAX);
        ck_assert_bytes_eq(ev.fetch.sid.bytes, f.sid.bytes, OW_SID_SIZE);
        ow_event_done(&ev);

        /* Unanswered: nothing more comes out, whatever arrives meanwhile. */
        expect_nothing(p.s);
        ck_assert_int_eq(ow_engine_send_request_session(p.c, &q), 0);
        pump(p.c, p.s);
        expect_nothing(p.s);
        ck_assert_uint_gt(ow_engine_input_pending(p.s), 0);
        ck_assert(ow_engine_awaiting_peer(p.c));
        ck_assert_uint_eq(ow_engine_output_pending(p.s), 0);

        /* The late answer (Accept 1, as after a wait that ran out), then
         * both requests in their order. */
        ck_assert_int_eq(ow_engine_send_fetch_ack(p.s, &(OwFetchAck){ .accept = OW_ACCEPT_FAILURE }), 0);
        ck_assert_uint_eq(ow_engine_output_pending(p.s), OW_FETCH_ACK_SIZE);
        for (int i = 0; i < 2; i++) {
                expect(p.s, OW_EVENT_REQUEST_SESSION, &ev);
                assert_request_eq(&ev.request, &q);
                ow_event_done(&ev);
                ck_assert_int_eq(
                        ow_engine_send_accept_session(
                                p.s, &(OwAcceptSession){ .accept = OW_ACCEPT_OK, .port = 8903 + i }),
                        0);
        }
        expect_nothing(p.s);
        ck_assert_uint_eq(ow_engine_input_pending(p.s), 0);

        pump(p.s, p.c);
        expect(p.c, OW_EVENT_FETCH_ACK, &ev);
        ck_assert_int_eq(ev.fetch_ack.accept, OW_ACCEPT_FAILURE);
        expect(p.c, OW_EVENT_ACCEPT_SESSION, &ev);
        ck_assert_uint_eq(ev.accept_session.port, 8903);
        expect(p.c, OW_EVENT_ACCEPT_SESSION, &ev);
        ck_assert_uint_eq(ev.accept_session.port, 8904);
        expect_nothing(p.c);
        ck_assert(!ow_engine_awaiting_peer(p.c));
        free_pair(&p);
}
END_TEST

START_TEST(test_fetch) {
        uint32_t mode = modes[_i];

        run_fetch(mode, 0, 1, 7);
        run_fetch(mode, 1, 1, 1);
        run_fetch(mode, 16, 3, 5);
        run_fetch(mode, 1000, 7, 333);
        run_fetch(mode, 20000, 1000, 4096);
        run_fetch(mode, 50000, 50000, 100000);
}
END_TEST

/* The sealed stream of a fetch is what the old all-at-once codecs made:
 * the engine streams, but the octets are the same. */
START_TEST(test_fetch_octets) {
        enum { N = 37 };
        OwSessionRequest q = request_sample(true, 4);
        OwRecord recs[N];
        uint8_t want[2048], got[2048];
        size_t wn = 0, gn;
        OwEvent ev;
        Pair p;

        for (uint32_t i = 0; i < N; i++)
                recs[i] = record_of(i);
        handshake(&p, OW_MODE_OPEN);
        ck_assert_int_eq(ow_engine_send_fetch_session(p.c, &(OwFetchSession){ .end = 100 }), 0);
        pump(p.c, p.s);
        expect(p.s, OW_EVENT_FETCH_SESSION, &ev);
        OwFetchAck ack = { .accept = OW_ACCEPT_OK, .finished = 2, .n_records = N };
        ck_assert_int_eq(ow_engine_send_fetch_ack(p.s, &ack), 0);
        ck_assert_int_eq(ow_engine_send_fetch_request(p.s, &q), 0);
        ck_assert_int_eq(ow_engine_send_fetch_skips(p.s, NULL, 0), 0);
        for (uint32_t i = 0; i < N; i += 5)
                ck_assert_int_eq(ow_engine_send_fetch_records(p.s, recs + i, MIN(5u, N - i)), 0);
        const uint8_t *out = ow_engine_output(p.s, &gn);
        ck_assert_uint_le(gn, sizeof(got));
        memcpy(got, out, gn);

        int r = ow_fetch_ack_encode(&ack, want, sizeof(want));
        wn += (size_t) r;
        r = ow_request_session_encode(&q, want + wn, sizeof(want) - wn);
        wn += (size_t) r;
        r = ow_fetch_skips_encode(NULL, 0, want + wn, sizeof(want) - wn);
        wn += (size_t) r;
        r = ow_fetch_records_encode(recs, N, want + wn, sizeof(want) - wn);
        wn += (size_t) r;
        ck_assert_uint_eq(gn, wn);
        ck_assert_bytes_eq(got, want, wn);
        free_pair(&p);
}
END_TEST

/* A bad record in the stream: in mode O the error is the record's; with
 * an HMAC, a changed record is an HMAC error, checked first. */
START_TEST(test_fetch_bad_record) {
        for (int m = 0; m < 2; m++) {
                OwSessionRequest q = request_sample(false, 5);
                OwRecord recs[10];
                OwEvent ev;
                size_t n;
                Pair p;
                int r;

                for (uint32_t i = 0; i < 10; i++)
                        recs[i] = record_of(i);
                handshake(&p, m ? OW_MODE_AUTHENTICATED : OW_MODE_OPEN);
                ck_assert_int_eq(ow_engine_send_fetch_session(p.c, &(OwFetchSession){ .end = 9 }), 0);
                pump(p.c, p.s);
                expect(p.s, OW_EVENT_FETCH_SESSION, &ev);
                ck_assert_int_eq(ow_engine_send_fetch_ack(p.s, &(OwFetchAck){ .n_records = 10 }), 0);
                ck_assert_int_eq(ow_engine_send_fetch_request(p.s, &q), 0);
                ck_assert_int_eq(ow_engine_send_fetch_skips(p.s, NULL, 0), 0);
                /* The engine never sends one. */
                recs[4].send_err = 0x0000;
                ck_assert_int_eq(ow_engine_send_fetch_records(p.s, recs, 10), -OW_ERR_ERREST);
                recs[4].send_err = 0x8001;
                ck_assert_int_eq(ow_engine_send_fetch_records(p.s, recs, 10), 0);
                uint8_t *out = (uint8_t *) ow_engine_output(p.s, &n);
                /* Record 4's Send Error Estimate: multiplier 0. */
                size_t at = n - (256 + 16) + 4 * OW_RECORD_SIZE + 5;
                if (m == 0)
                        out[at] = 0;
                else
                        out[at] ^= 0xff;
                pump(p.s, p.c);
                while ((r = ow_engine_poll(p.c, &ev)) > 0) {
                        ck_assert_int_ne(ev.type, OW_EVENT_FETCH_DONE);
                        ow_event_done(&ev);
                }
                ck_assert_int_eq(r, m ? -OW_ERR_HMAC : -OW_ERR_ERREST);
                ck_assert_str_eq(ow_engine_error_context(p.c), m ? "records" : "bad records");
                free_pair(&p);
        }
}
END_TEST

/* Input beyond the bound is refused. */
START_TEST(test_input_bound) {
        _cleanup_free_ uint8_t *junk = calloc(1, OW_ENGINE_MAX_INPUT);
        OwEngine *e;
        size_t space;

        ck_assert_ptr_nonnull(junk);
        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_CLIENT, &e), 0);
        ck_assert_ptr_nonnull(ow_engine_feed_buffer(e, &space));
        ck_assert_uint_gt(space, 0);
        ck_assert_int_eq(ow_engine_feed(e, junk, OW_ENGINE_MAX_INPUT), 0);
        ck_assert_ptr_null(ow_engine_feed_buffer(e, &space));
        ck_assert_uint_eq(space, 0);
        ck_assert_int_eq(ow_engine_feed(e, junk, 1), -ENOBUFS);
        /* The greeting is taken from it, then there is room again. */
        OwEvent ev;
        ck_assert_int_eq(ow_engine_poll(e, &ev), 1);
        ck_assert_ptr_nonnull(ow_engine_feed_buffer(e, &space));
        ck_assert_uint_eq(space, OW_SERVER_GREETING_SIZE);
        ow_engine_free(e);
}
END_TEST

/* A reader is offered a small buffer first, doubled each time it fills
 * it; an engine with nothing pending gives its buffers back. */
START_TEST(test_input_buffer_size) {
        OwEngine *e;
        size_t space, last;
        uint8_t *p;

        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_SERVER, &e), 0);
        OwServerGreeting g = { .modes = OW_MODE_OPEN, .count = 1024 };
        ck_assert_int_eq(ow_engine_send_greeting(e, &g), 0);
        p = ow_engine_feed_buffer(e, &space);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(space, 512);
        /* Part of it: as much room again next time, no more. */
        memset(p, 0, 100);
        ck_assert_int_eq(ow_engine_feed_commit(e, 100), 0);
        ck_assert_ptr_nonnull(ow_engine_feed_buffer(e, &space));
        ck_assert_uint_ge(space, 512);
        ck_assert_uint_lt(space, 1024);
        /* Filled: more is offered each time (the buffer doubles). */
        last = 0;
        for (int i = 0; i < 12; i++) {
                p = ow_engine_feed_buffer(e, &space);
                ck_assert_ptr_nonnull(p);
                memset(p, 0, space);
                ck_assert_int_eq(ow_engine_feed_commit(e, space), 0);
                last = space;
        }
        ck_assert_uint_ge(last, 64 << 10);
        /* Pending input and output: nothing is released. */
        size_t pending = ow_engine_input_pending(e);
        ow_engine_release_buffers(e);
        ck_assert_uint_eq(ow_engine_input_pending(e), pending);
        size_t len;
        ck_assert_ptr_nonnull(ow_engine_output(e, &len));
        ck_assert_uint_eq(len, OW_SERVER_GREETING_SIZE);
        ow_engine_free(e);

        /* Nothing pending: both go, and come back small. */
        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_SERVER, &e), 0);
        ck_assert_int_eq(ow_engine_send_greeting(e, &g), 0);
        ck_assert_ptr_nonnull(ow_engine_output(e, &len));
        ow_engine_output_done(e, len);
        ck_assert_ptr_nonnull(ow_engine_feed_buffer(e, &space));
        ow_engine_release_buffers(e);
        ck_assert_ptr_null(ow_engine_output(e, &len));
        ck_assert_uint_eq(len, 0);
        p = ow_engine_feed_buffer(e, &space);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(space, 512);
        /* A Set-Up-Response in open mode still decodes after all that. */
        uint8_t sr[OW_SETUP_RESPONSE_SIZE] = { 0, 0, 0, 1 };
        ck_assert_int_eq(ow_engine_feed(e, sr, sizeof(sr)), 0);
        OwEvent ev;
        ck_assert_int_eq(ow_engine_poll(e, &ev), 1);
        ck_assert_int_eq(ev.type, OW_EVENT_SETUP_RESPONSE);
        ow_event_done(&ev);
        ow_engine_free(e);
}
END_TEST

START_TEST(test_protocol_table) {
        const OwProtocol *p = &ow_protocol_owamp;

        ck_assert_uint_eq(p->port, 861);
        ck_assert_uint_eq(ow_protocol_modes(p), OW_MODES_ALL);
        ck_assert_ptr_null(ow_protocol_mode(p, 0));
        ck_assert_ptr_null(ow_protocol_mode(p, 3));
        ck_assert_ptr_null(ow_protocol_mode(p, 8));
        ck_assert_int_eq(ow_protocol_mode(p, OW_MODE_ENCRYPTED)->channel, OW_MODE_ENCRYPTED);
        for (unsigned c = 0; c < 256; c++) {
                const OwMessageSpec *s = ow_protocol_command(p, (uint8_t) c);
                ck_assert(!!s == (c >= 1 && c <= 4));
                if (!s)
                        continue;
                ck_assert_uint_eq(s->command, c);
                ck_assert(s->decode && s->encode);
                ck_assert_uint_eq(s->size % OW_BLOCK_SIZE, 0);
                /* Every client command is answered, except Stop-Sessions, which both send. */
                ck_assert(!!s->reply == (c != OW_CMD_STOP_SESSIONS));
        }
        ck_assert_ptr_eq(p->fetch_request, ow_protocol_command(p, OW_CMD_REQUEST_SESSION));
}
END_TEST

int main(void) {
        Suite *s = suite_create("control-engine");
        TCase *tc = tcase_create("engine");

        tcase_add_loop_test(tc, test_handshake, 0, 3);
        tcase_add_test(tc, test_handshake_bytewise);
        tcase_add_test(tc, test_refused_greeting);
        tcase_add_test(tc, test_mode_checks);
        tcase_add_test(tc, test_refused_mode);
        tcase_add_test(tc, test_server_start_checks);
        tcase_add_test(tc, test_client_setup_errors);
        tcase_add_test(tc, test_server_setup_errors);
        tcase_add_loop_test(tc, test_batch, 0, 3);
        tcase_add_loop_test(tc, test_refusals, 0, 3);
        tcase_add_test(tc, test_server_protocol_errors);
        tcase_add_loop_test(tc, test_tampered, 0, 2);
        tcase_add_test(tc, test_client_protocol_errors);
        tcase_add_loop_test(tc, test_deferred_answer, 0, 3);
        tcase_add_loop_test(tc, test_fetch, 0, 3);
        tcase_add_test(tc, test_fetch_octets);
        tcase_add_test(tc, test_fetch_bad_record);
        tcase_add_test(tc, test_input_bound);
        tcase_add_test(tc, test_input_buffer_size);
        tcase_add_test(tc, test_protocol_table);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
