/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Replays the reference's TWAMP-Control connections (test/data/twamp: the
 * reference twping against the reference twampd, modes O, A, E and Mixed,
 * IPv4 and IPv6; README.md there) through the TWAMP codecs and through
 * the control engine's TWAMP table (ow_protocol_twamp):
 *
 *  1. each direction is read as its receiver would, every block opened and
 *     every HMAC verified with the keys the Token gives with the pass
 *     phrase, every field checked against the decoded listing; each
 *     message is then encoded again and sealed with fresh channels: the
 *     captured streams, byte for byte;
 *  2. a client engine reads the server's stream and a server engine the
 *     client's, each sending what the other decoded: what the two engines
 *     send must be the captured streams, byte for byte;
 *  3. what either engine must refuse in them: a wrong pass phrase, a
 *     flipped bit, the other protocol's commands.
 */

#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-control-engine.h"
#include "ow-control.h"
#include "ow-crypto.h"
#include "ow-error.h"
#include "ow-wire.h"
#include "pcap.h"
#include "testutil.h"

#define CONTROL_PORT 8862
#define SECRET "testsecret"

typedef struct TwCapture {
        const char *file;
        uint32_t mode;
        uint8_t ipvn;
        bool zero_addresses; /* twping -Z */
        uint16_t port;       /* Sender Port = Receiver Port asked for */
        uint32_t padding;
        uint32_t type_p;
        uint32_t timeout_sec; /* -L; 0: twping's RTT + 2 s */
        uint16_t reflector_port;
        const char *sid;
        /* modes A, E, M */
        const char *aes, *hmac, *client_iv, *server_iv;
} TwCapture;

static const TwCapture captures[] = {
        { .file = "twamp/captures/mode-O.pcap",
          .mode = OW_MODE_OPEN,
          .ipvn = 4,
          .port = 8921,
          .padding = 27,
          .reflector_port = 8906,
          .sid = "7f000001eeba7e9ad10ce4ea861629dd" },
        { .file = "twamp/captures/mode-A.pcap",
          .mode = OW_MODE_AUTHENTICATED,
          .ipvn = 4,
          .port = 8920,
          .padding = 64,
          .reflector_port = 8904,
          .sid = "7f000001eeba7ea097a365cbabedc4c3",
          .aes = "f1291078f545223b4c8ba47a071382d8",
          .hmac = "452f4461759438a81496e9e04a83ab905fad182902ee251d0469bb647b00198e",
          .client_iv = "c65178b89fb63dfd566440556ec3659b",
          .server_iv = "1d26e18321611cf37fbd7fefb09ecc89" },
        { .file = "twamp/captures/mode-E.pcap",
          .mode = OW_MODE_ENCRYPTED,
          .ipvn = 4,
          .port = 8929,
          .padding = 64,
          .reflector_port = 8900,
          .sid = "7f000001eeba7ea694955b4614b631a6",
          .aes = "d0c4e3a2bc943b8b839647abd2491dc2",
          .hmac = "94d9e23cee5ec2f311e129af42f3ec653b5524dc9d35572d93a58b48cac25ef4",
          .client_iv = "2f8aeb078777dcf9bb257bd68e7d25a5",
          .server_iv = "4c26dd03bc09bb079ff4564a7926df77" },
        { .file = "twamp/captures/mode-M.pcap",
          .mode = OW_MODE_MIXED,
          .ipvn = 4,
          .port = 8929,
          .padding = 27,
          .reflector_port = 8904,
          .sid = "7f000001eeba7eaca402f2f94cb5c62c",
          .aes = "20558ef059cbfa86d47c897ce64f4ac0",
          .hmac = "57cc77d5171d6ab3a7c446407c5f1c198752ac7dab0d355bf5876222320de90d",
          .client_iv = "98f08b54fb3d57d07c16716042919fea",
          .server_iv = "3c02d4796b50cde5ce248ae1cb16645b" },
        { .file = "twamp/captures/ipv6-E.pcap",
          .mode = OW_MODE_ENCRYPTED,
          .ipvn = 6,
          .port = 8921,
          .padding = 64,
          .reflector_port = 8900,
          .sid = "00000001eeba80bca4bc59b8db3b44e1",
          .aes = "2e46947f43f36f4186914126b2c85648",
          .hmac = "77cb6f24239377eb77d11a0da5086f178c33000c25b165298f5fa2000878c244",
          .client_iv = "7aea0fd0dcc54d0fb88deb9fca4f5de5" },
        { .file = "twamp/captures/fixed-Z.pcap",
          .mode = OW_MODE_OPEN,
          .ipvn = 4,
          .zero_addresses = true,
          .timeout_sec = 1,
          .port = 8925,
          .padding = 27,
          .reflector_port = 8908,
          .sid = "7f000001eeba7fc4dc8f96e1b7a9fcbd" },
        { .file = "twamp/captures/pad-O-s100-D.pcap",
          .mode = OW_MODE_OPEN,
          .ipvn = 4,
          .port = 8927,
          .padding = 100,
          .type_p = 0x2e000000,
          .reflector_port = 8903,
          .sid = "7f000001eeba7fb97f2c3009ed10eb3f" },
};

/* 164 + 112 + 32 + 32 and 64 + 48 + 48 + 32 (TWAMP-PROTOCOL.md 1). */
#define C2S_SIZE 340
#define S2C_SIZE 192

static void assert_hex(const uint8_t *p, const char *hex, size_t n) {
        uint8_t want[64];
        ck_assert_uint_le(n, sizeof(want));
        test_unhex(hex, want, n);
        ck_assert_bytes_eq(p, want, n);
}

static void assert_request(const TwCapture *cap, const OwSessionRequest *q) {
        static const uint8_t zero[OW_ADDR_SIZE] = {};
        uint8_t local[OW_ADDR_SIZE] = {};

        if (cap->ipvn == 4)
                local[0] = 127, local[3] = 1;
        else
                local[15] = 1;
        if (cap->zero_addresses)
                memcpy(local, zero, sizeof(local));
        ck_assert_uint_eq(q->ipvn, cap->ipvn);
        ck_assert(!q->conf_sender && !q->conf_receiver);
        ck_assert_uint_eq(q->n_slots, 0);
        ck_assert_uint_eq(q->n_packets, 0);
        ck_assert_ptr_null(q->slots);
        ck_assert_uint_eq(q->sender_port, cap->port);
        ck_assert_uint_eq(q->receiver_port, cap->port);
        ck_assert_bytes_eq(q->sender_addr, local, OW_ADDR_SIZE);
        ck_assert_bytes_eq(q->receiver_addr, local, OW_ADDR_SIZE);
        ck_assert_bytes_eq(q->sid.bytes, zero, OW_SID_SIZE);
        ck_assert_uint_eq(q->padding_length, cap->padding);
        ck_assert_uint_eq(q->type_p, cap->type_p);
        ck_assert_uint_ne(q->start_time, 0);
        ck_assert_uint_eq(q->timeout >> 32, cap->timeout_sec ? cap->timeout_sec : 2);
}

static void assert_accept(const TwCapture *cap, const OwAcceptSession *a) {
        ck_assert_int_eq(a->accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(a->port, cap->reflector_port);
        assert_hex(a->sid.bytes, cap->sid, OW_SID_SIZE);
}

static uint8_t *copy_of(const uint8_t *p, size_t n) {
        uint8_t *q = malloc(n);
        ck_assert_ptr_nonnull(q);
        memcpy(q, p, n);
        return q;
}

static void load(const TwCapture *cap, PcapTrace *t) {
        ck_assert_int_eq(pcap_load(test_data_path(cap->file), CONTROL_PORT, t), 0);
        ck_assert_uint_eq(t->c2s_len, C2S_SIZE);
        ck_assert_uint_eq(t->s2c_len, S2C_SIZE);
}

/* Open a copy of n octets at *off of a stream, the last block an HMAC. */
static const uint8_t *open_next(OwChannel *ch, const uint8_t *stream, size_t *off, size_t n, uint8_t *buf) {
        memcpy(buf, stream + *off, n);
        *off += n;
        ck_assert_int_eq(ow_channel_open(ch, buf, n, true), 0);
        return buf;
}

/* Seal an encoded message (its last block the HMAC) and compare it with
 * the captured octets at *off. */
static void seal_compare(OwChannel *ch, uint8_t *buf, int n, const uint8_t *stream, size_t *off) {
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(ow_channel_seal(ch, buf, (size_t) n, true), 0);
        ck_assert_bytes_eq(buf, stream + *off, (size_t) n);
        *off += (size_t) n;
}

START_TEST(test_capture_twamp_codecs) {
        const TwCapture *cap = &captures[_i];
        bool secure = cap->mode != OW_MODE_OPEN;
        OwChannel srv_rx, cli_rx, srv_tx, cli_tx;
        OwControlKeys keys = {};
        uint8_t dk[OW_DK_SIZE] = {}, buf[OW_SETUP_RESPONSE_SIZE];
        OwServerGreeting greeting;
        OwSetupResponse setup;
        OwServerStart start;
        OwSessionRequest req;
        OwAcceptSession acc;
        OwAccept ack;
        OwTwStopSessions stop;
        size_t c = 0, s = 0;
        PcapTrace t;

        load(cap, &t);

        /* Set-up, in clear. */
        ck_assert_int_eq(ow_server_greeting_decode(t.s2c, OW_SERVER_GREETING_SIZE, &greeting), 0);
        ck_assert_uint_eq(greeting.modes, OW_TWAMP_MODES_ALL);
        ck_assert_uint_eq(greeting.count, 2048);
        ck_assert_int_eq(ow_server_greeting_encode_modes(&greeting, OW_TWAMP_MODES_ALL, buf, sizeof(buf)),
                         OW_SERVER_GREETING_SIZE);
        ck_assert_bytes_eq(buf, t.s2c, OW_SERVER_GREETING_SIZE);
        /* OWAMP's encoder never sends mode 8. */
        ck_assert_int_eq(ow_server_greeting_encode(&greeting, buf, sizeof(buf)), -OW_ERR_MODE);
        s = OW_SERVER_GREETING_SIZE;

        ck_assert_int_eq(
                ow_setup_response_decode_modes(t.c2s, OW_SETUP_RESPONSE_SIZE, OW_TWAMP_MODES_ALL, &setup),
                0);
        ck_assert_uint_eq(setup.mode, cap->mode);
        if (cap->mode == OW_MODE_MIXED)
                ck_assert_int_eq(ow_setup_response_decode(t.c2s, OW_SETUP_RESPONSE_SIZE, &setup),
                                 -OW_ERR_MODE);
        if (secure) {
                OwControlKeys want;

                ck_assert_str_eq(setup.keyid, "testuser");
                assert_hex(setup.client_iv, cap->client_iv, OW_IV_SIZE);
                ck_assert_int_eq(ow_pbkdf2(SECRET, strlen(SECRET), greeting.salt, greeting.count, dk), 0);
                ck_assert_int_eq(ow_token_decrypt(dk, setup.token, greeting.challenge, &keys), 0);
                test_unhex(cap->aes, want.aes, sizeof(want.aes));
                test_unhex(cap->hmac, want.hmac, sizeof(want.hmac));
                ck_assert_bytes_eq(keys.aes, want.aes, sizeof(want.aes));
                ck_assert_bytes_eq(keys.hmac, want.hmac, sizeof(want.hmac));
                /* The Token again, from the recovered keys. */
                ck_assert_int_eq(ow_token_encrypt(dk, greeting.challenge, &keys, setup.token), 0);
        }
        ck_assert_int_eq(ow_setup_response_encode_modes(&setup, OW_TWAMP_MODES_ALL, buf, sizeof(buf)),
                         OW_SETUP_RESPONSE_SIZE);
        ck_assert_bytes_eq(buf, t.c2s, OW_SETUP_RESPONSE_SIZE);
        c = OW_SETUP_RESPONSE_SIZE;

        /* Server-Start: Mixed protects the stream as E (RFC 5618). */
        {
                OwMode channel = secure ? OW_MODE_ENCRYPTED : OW_MODE_OPEN;
                const uint8_t *iv = t.s2c + s + 16;

                if (cap->mode == OW_MODE_AUTHENTICATED)
                        channel = OW_MODE_AUTHENTICATED;
                if (cap->server_iv)
                        assert_hex(iv, cap->server_iv, OW_IV_SIZE);
                ck_assert_int_eq(
                        ow_channel_init(&srv_rx, channel, OW_CONTROL_SERVER, &keys, setup.client_iv, iv), 0);
                ck_assert_int_eq(
                        ow_channel_init(&cli_rx, channel, OW_CONTROL_CLIENT, &keys, setup.client_iv, iv), 0);
                ck_assert_int_eq(
                        ow_channel_init(&srv_tx, channel, OW_CONTROL_SERVER, &keys, setup.client_iv, iv), 0);
                ck_assert_int_eq(
                        ow_channel_init(&cli_tx, channel, OW_CONTROL_CLIENT, &keys, setup.client_iv, iv), 0);
        }
        memcpy(buf, t.s2c + s, OW_SERVER_START_SIZE);
        ck_assert_int_eq(ow_channel_open(&cli_rx, buf + OW_SERVER_START_CLEAR_SIZE, OW_BLOCK_SIZE, false),
                         0);
        ck_assert_int_eq(ow_server_start_decode(buf, OW_SERVER_START_SIZE, &start), 0);
        ck_assert_int_eq(start.accept, OW_ACCEPT_OK);
        ck_assert_int_eq(ow_server_start_encode(&start, buf, sizeof(buf)), OW_SERVER_START_SIZE);
        ck_assert_int_eq(ow_channel_seal(&srv_tx, buf + OW_SERVER_START_CLEAR_SIZE, OW_BLOCK_SIZE, false),
                         0);
        ck_assert_bytes_eq(buf, t.s2c + s, OW_SERVER_START_SIZE);
        s += OW_SERVER_START_SIZE;

        /* Request-TW-Session: one HMAC block, no slots. */
        open_next(&srv_rx, t.c2s, &(size_t){ c }, OW_TW_REQUEST_SESSION_SIZE, buf);
        ck_assert_int_eq(buf[0], OW_CMD_REQUEST_TW_SESSION);
        ck_assert_int_eq(ow_tw_request_session_decode(buf, OW_TW_REQUEST_SESSION_SIZE, &req), 0);
        assert_request(cap, &req);
        ck_assert(ow_all_zero(buf + 88, 8)); /* no RFC 6038 fields */
        seal_compare(&cli_tx, buf, ow_tw_request_session_encode(&req, buf, sizeof(buf)), t.c2s, &c);

        open_next(&cli_rx, t.s2c, &(size_t){ s }, OW_ACCEPT_SESSION_SIZE, buf);
        ck_assert_int_eq(ow_accept_session_decode(buf, OW_ACCEPT_SESSION_SIZE, &acc), 0);
        assert_accept(cap, &acc);
        ck_assert(ow_all_zero(buf + 20, 12)); /* no RFC 6038 fields */
        seal_compare(&srv_tx, buf, ow_accept_session_encode(&acc, buf, sizeof(buf)), t.s2c, &s);

        /* Start-Sessions and Start-Ack, as OWAMP's. */
        open_next(&srv_rx, t.c2s, &(size_t){ c }, OW_START_SESSIONS_SIZE, buf);
        ck_assert_int_eq(ow_start_sessions_decode(buf, OW_START_SESSIONS_SIZE), 0);
        seal_compare(&cli_tx, buf, ow_start_sessions_encode(buf, sizeof(buf)), t.c2s, &c);

        open_next(&cli_rx, t.s2c, &(size_t){ s }, OW_START_ACK_SIZE, buf);
        ck_assert_int_eq(ow_start_ack_decode(buf, OW_START_ACK_SIZE, &ack), 0);
        ck_assert_int_eq(ack, OW_ACCEPT_OK);
        seal_compare(&srv_tx, buf, ow_start_ack_encode(ack, buf, sizeof(buf)), t.s2c, &s);

        /* The client's Stop-Sessions, and nothing from the server after the
         * Start-Ack. */
        open_next(&srv_rx, t.c2s, &(size_t){ c }, OW_TW_STOP_SESSIONS_SIZE, buf);
        ck_assert_int_eq(ow_tw_stop_sessions_decode(buf, OW_TW_STOP_SESSIONS_SIZE, &stop), 0);
        ck_assert_int_eq(stop.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(stop.n_sessions, 1);
        /* OWAMP's decoder reads it as the start of a longer message. */
        ck_assert_int_eq(ow_stop_sessions_decode(buf, OW_TW_STOP_SESSIONS_SIZE, &(OwStopSessions){}),
                         -OW_ERR_TRUNCATED);
        seal_compare(&cli_tx, buf, ow_tw_stop_sessions_encode(&stop, buf, sizeof(buf)), t.c2s, &c);

        ck_assert_uint_eq(c, t.c2s_len);
        ck_assert_uint_eq(s, t.s2c_len);

        ow_channel_wipe(&srv_rx);
        ow_channel_wipe(&cli_rx);
        ow_channel_wipe(&srv_tx);
        ow_channel_wipe(&cli_tx);
        ow_wipe(&keys, sizeof(keys));
        ow_wipe(dk, sizeof(dk));
        pcap_trace_done(&t);
}
END_TEST

/* --- Through the engine, both roles at once ------------------------------ */

typedef struct Out {
        uint8_t data[C2S_SIZE];
        size_t len;
} Out;

static void drain(OwEngine *e, Out *o) {
        size_t n;
        const uint8_t *p = ow_engine_output(e, &n);

        ck_assert_uint_le(o->len + n, sizeof(o->data));
        memcpy(o->data + o->len, p, n);
        o->len += n;
        ow_engine_output_done(e, n);
}

static void poll_one(OwEngine *e, OwEventType type, OwEvent *ev) {
        int r = ow_engine_poll(e, ev);
        ck_assert_msg(r == 1, "poll: %d (%s), context '%s'", r, ow_strerror(r), ow_engine_error_context(e));
        ck_assert_int_eq(ev->type, type);
}

START_TEST(test_capture_twamp_engine) {
        const TwCapture *cap = &captures[_i];
        bool secure = cap->mode != OW_MODE_OPEN;
        OwControlKeys keys = {};
        uint8_t client_iv[OW_IV_SIZE] = {};
        Out c2s = {}, s2c = {};
        OwEngine *c, *s;
        OwEvent ev, ev2;
        PcapTrace t;

        load(cap, &t);
        if (secure) {
                test_unhex(cap->aes, keys.aes, sizeof(keys.aes));
                test_unhex(cap->hmac, keys.hmac, sizeof(keys.hmac));
                test_unhex(cap->client_iv, client_iv, sizeof(client_iv));
        }
        ck_assert_int_eq(ow_engine_new(&ow_protocol_twamp, OW_CONTROL_CLIENT, &c), 0);
        ck_assert_int_eq(ow_engine_new(&ow_protocol_twamp, OW_CONTROL_SERVER, &s), 0);
        ck_assert_int_eq(ow_engine_feed(c, t.s2c, t.s2c_len), 0);
        ck_assert_int_eq(ow_engine_feed(s, t.c2s, t.c2s_len), 0);

        /* The greeting, answered by both. */
        poll_one(c, OW_EVENT_GREETING, &ev);
        ck_assert_uint_eq(ev.greeting.modes, OW_TWAMP_MODES_ALL);
        ck_assert_int_eq(ow_engine_send_greeting(s, &ev.greeting), 0);
        ck_assert_int_eq(ow_engine_send_setup_response(c, &(OwClientSetup){ .mode = cap->mode,
                                                                            .keyid = "testuser",
                                                                            .secret = SECRET,
                                                                            .secret_len = strlen(SECRET),
                                                                            .keys = &keys,
                                                                            .client_iv = client_iv }),
                         0);
        ow_event_done(&ev);

        poll_one(s, OW_EVENT_SETUP_RESPONSE, &ev);
        ck_assert_uint_eq(ev.setup.mode, cap->mode);
        ck_assert_uint_eq(ow_engine_mode(s), cap->mode);
        if (secure)
                ck_assert_int_eq(ow_engine_server_authenticate(s, SECRET, strlen(SECRET)), 0);
        ow_event_done(&ev);
        /* Nothing more before the Server-Start is out. */
        ck_assert_int_eq(ow_engine_poll(s, &ev), 0);

        poll_one(c, OW_EVENT_SERVER_START, &ev);
        ck_assert_int_eq(ev.server_start.accept, OW_ACCEPT_OK);
        ck_assert_int_eq(ow_engine_send_server_start(s, OW_ACCEPT_OK, ev.server_start.server_iv,
                                                     ev.server_start.start_time),
                         0);
        if (secure) {
                ck_assert_ptr_nonnull(ow_engine_keys(c));
                ck_assert_bytes_eq(ow_engine_keys(s)->hmac, keys.hmac, sizeof(keys.hmac));
        }
        ow_event_done(&ev);

        poll_one(s, OW_EVENT_REQUEST_TW_SESSION, &ev);
        ck_assert_int_eq(ev.error, 0);
        assert_request(cap, &ev.request);
        /* OWAMP's call is not TWAMP's. */
        ck_assert_int_eq(ow_engine_send_request_session(c, &ev.request), -OW_ERR_COMMAND);
        ck_assert_int_eq(ow_engine_send_request_tw_session(c, &ev.request), 0);
        poll_one(c, OW_EVENT_ACCEPT_SESSION, &ev2);
        assert_accept(cap, &ev2.accept_session);
        ck_assert_int_eq(ow_engine_send_accept_session(s, &ev2.accept_session), 0);
        ow_event_done(&ev);
        ow_event_done(&ev2);

        poll_one(s, OW_EVENT_START_SESSIONS, &ev);
        ck_assert_int_eq(ow_engine_send_start_sessions(c), 0);
        poll_one(c, OW_EVENT_START_ACK, &ev2);
        ck_assert_int_eq(ev2.accept, OW_ACCEPT_OK);
        ck_assert_int_eq(ow_engine_send_start_ack(s, ev2.accept), 0);
        ck_assert_int_eq(ow_engine_state(c), OW_ENGINE_TEST);
        ck_assert_int_eq(ow_engine_state(s), OW_ENGINE_TEST);

        /* The client's Stop-Sessions ends the test on both sides: the
         * server has none to send. */
        poll_one(s, OW_EVENT_TW_STOP_SESSIONS, &ev);
        ck_assert_int_eq(ev.tw_stop.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(ev.tw_stop.n_sessions, 1);
        ck_assert_int_eq(ow_engine_state(s), OW_ENGINE_IDLE);
        ck_assert(!ow_engine_awaiting_peer(s));
        ck_assert_int_eq(ow_engine_send_stop_sessions(c, &(OwStopSessions){}), -OW_ERR_COMMAND);
        ck_assert_int_eq(ow_engine_send_tw_stop_sessions(c, &ev.tw_stop), 0);
        ck_assert_int_eq(ow_engine_state(c), OW_ENGINE_IDLE);
        ck_assert(!ow_engine_awaiting_peer(c));
        ck_assert_int_eq(ow_engine_send_tw_stop_sessions(s, &ev.tw_stop), -OW_ERR_STATE);
        ow_event_done(&ev);
        ow_event_done(&ev2);

        ck_assert_int_eq(ow_engine_poll(c, &ev), 0);
        ck_assert_int_eq(ow_engine_poll(s, &ev), 0);
        ck_assert_uint_eq(ow_engine_input_pending(c), 0);
        ck_assert_uint_eq(ow_engine_input_pending(s), 0);
        drain(c, &c2s);
        drain(s, &s2c);
        ck_assert_uint_eq(c2s.len, t.c2s_len);
        ck_assert_uint_eq(s2c.len, t.s2c_len);
        ck_assert_bytes_eq(c2s.data, t.c2s, t.c2s_len);
        ck_assert_bytes_eq(s2c.data, t.s2c, t.s2c_len);

        ow_engine_free(c);
        ow_engine_free(s);
        ow_wipe(&keys, sizeof(keys));
        pcap_trace_done(&t);
}
END_TEST

/* A server engine over the captured client stream, up to the Server-Start. */
static OwEngine *server_after_setup(const PcapTrace *t, const uint8_t *c2s, const char *secret,
                                    int want_auth) {
        OwServerGreeting g;
        OwEngine *s;
        OwEvent ev;

        ck_assert_int_eq(ow_server_greeting_decode(t->s2c, OW_SERVER_GREETING_SIZE, &g), 0);
        ck_assert_int_eq(ow_engine_new(&ow_protocol_twamp, OW_CONTROL_SERVER, &s), 0);
        ck_assert_int_eq(ow_engine_send_greeting(s, &g), 0);
        ck_assert_int_eq(ow_engine_feed(s, c2s, t->c2s_len), 0);
        poll_one(s, OW_EVENT_SETUP_RESPONSE, &ev);
        ow_event_done(&ev);
        if (ow_engine_mode(s) != OW_MODE_OPEN)
                ck_assert_int_eq(ow_engine_server_authenticate(s, secret, strlen(secret)), want_auth);
        if (want_auth == 0)
                ck_assert_int_eq(ow_engine_send_server_start(s, OW_ACCEPT_OK, t->s2c + 80, 0), 0);
        return s;
}

/* Modes A, E and M: the wrong pass phrase fails at the Token; a bit off in
 * the Request-TW-Session fails its HMAC, in the name of the message. */
START_TEST(test_capture_twamp_refusals) {
        const TwCapture *cap = &captures[1 + _i];
        uint8_t *c2s;
        OwEngine *s;
        OwEvent ev;
        PcapTrace t;

        load(cap, &t);
        s = server_after_setup(&t, t.c2s, "wrongsecret", -OW_ERR_TOKEN);
        ck_assert_int_eq(ow_engine_send_server_start(s, OW_ACCEPT_OK, t.s2c + 80, 0), -OW_ERR_TOKEN);
        ck_assert_int_eq(ow_engine_send_server_start(s, OW_ACCEPT_FAILURE, NULL, 0), 0);
        ck_assert_int_eq(ow_engine_state(s), OW_ENGINE_CLOSED);
        ow_engine_free(s);

        c2s = copy_of(t.c2s, t.c2s_len);
        c2s[OW_SETUP_RESPONSE_SIZE + 40] ^= 1;
        s = server_after_setup(&t, c2s, SECRET, 0);
        ck_assert_int_eq(ow_engine_poll(s, &ev), -OW_ERR_HMAC);
        ck_assert_str_eq(ow_engine_error_context(s), "Request-TW-Session");
        ck_assert_int_eq(ow_engine_state(s), OW_ENGINE_FAILED);
        ow_engine_free(s);
        free(c2s);
        pcap_trace_done(&t);
}
END_TEST

/* Open mode, where the commands are readable: each protocol refuses the
 * other's. */
START_TEST(test_capture_twamp_cross) {
        PcapTrace t, o;
        OwEngine *s;
        OwEvent ev;
        uint8_t *c2s;

        load(&captures[0], &t);
        /* An OWAMP server and a TWAMP client stream: command 5 is unknown. */
        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_SERVER, &s), 0);
        {
                OwServerGreeting g;
                ck_assert_int_eq(ow_server_greeting_decode(t.s2c, OW_SERVER_GREETING_SIZE, &g), 0);
                ck_assert_int_eq(ow_engine_send_greeting(s, &g), -OW_ERR_MODE); /* mode 8 offered */
                g.modes = OW_MODES_ALL;
                ck_assert_int_eq(ow_engine_send_greeting(s, &g), 0);
        }
        ck_assert_int_eq(ow_engine_feed(s, t.c2s, t.c2s_len), 0);
        poll_one(s, OW_EVENT_SETUP_RESPONSE, &ev);
        ow_event_done(&ev);
        ck_assert_int_eq(ow_engine_send_server_start(s, OW_ACCEPT_OK, NULL, 0), 0);
        ck_assert_int_eq(ow_engine_poll(s, &ev), -OW_ERR_COMMAND);
        ck_assert_str_eq(ow_engine_error_context(s), "unknown command");
        ow_engine_free(s);

        /* A TWAMP server and OWAMP's open-mode capture: Request-Session (1)
         * is not TWAMP's. */
        ck_assert_int_eq(pcap_load(test_data_path("captures/mode-O.pcap"), 8871, &o), 0);
        ck_assert_int_eq(ow_engine_new(&ow_protocol_twamp, OW_CONTROL_SERVER, &s), 0);
        {
                OwServerGreeting g;
                ck_assert_int_eq(ow_server_greeting_decode(o.s2c, OW_SERVER_GREETING_SIZE, &g), 0);
                ck_assert_int_eq(ow_engine_send_greeting(s, &g), 0);
        }
        ck_assert_int_eq(ow_engine_feed(s, o.c2s, o.c2s_len), 0);
        poll_one(s, OW_EVENT_SETUP_RESPONSE, &ev);
        ow_event_done(&ev);
        ck_assert_int_eq(ow_engine_send_server_start(s, OW_ACCEPT_OK, NULL, 0), 0);
        ck_assert_int_eq(ow_engine_poll(s, &ev), -OW_ERR_COMMAND);
        ow_engine_free(s);
        pcap_trace_done(&o);

        /* The TWAMP capture with its Stop-Sessions moved before the
         * Start-Sessions: refused as outside a test. */
        c2s = copy_of(t.c2s, t.c2s_len);
        memcpy(c2s + 276, t.c2s + 308, 32);
        memcpy(c2s + 308, t.c2s + 276, 32);
        ck_assert_int_eq(ow_engine_new(&ow_protocol_twamp, OW_CONTROL_SERVER, &s), 0);
        {
                OwServerGreeting g;
                ck_assert_int_eq(ow_server_greeting_decode(t.s2c, OW_SERVER_GREETING_SIZE, &g), 0);
                ck_assert_int_eq(ow_engine_send_greeting(s, &g), 0);
        }
        ck_assert_int_eq(ow_engine_feed(s, c2s, t.c2s_len), 0);
        poll_one(s, OW_EVENT_SETUP_RESPONSE, &ev);
        ow_event_done(&ev);
        ck_assert_int_eq(ow_engine_send_server_start(s, OW_ACCEPT_OK, NULL, 0), 0);
        poll_one(s, OW_EVENT_REQUEST_TW_SESSION, &ev);
        ow_event_done(&ev);
        ck_assert_int_eq(ow_engine_send_accept_session(s, &(OwAcceptSession){ .port = 9000 }), 0);
        ck_assert_int_eq(ow_engine_poll(s, &ev), -OW_ERR_STATE);
        ck_assert_str_eq(ow_engine_error_context(s), "Stop-Sessions outside a test");
        ow_engine_free(s);
        free(c2s);
        pcap_trace_done(&t);
}
END_TEST

int main(void) {
        Suite *s = suite_create("capture-twamp");
        TCase *tc = tcase_create("replay");
        tcase_add_loop_test(tc, test_capture_twamp_codecs, 0, (int) ELEMENTSOF(captures));
        tcase_add_loop_test(tc, test_capture_twamp_engine, 0, (int) ELEMENTSOF(captures));
        tcase_add_loop_test(tc, test_capture_twamp_refusals, 0, 4); /* A, E, M, ipv6-E */
        tcase_add_test(tc, test_capture_twamp_cross);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
