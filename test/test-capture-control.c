/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Replays the control connections of the reference captures
 * (test/data/captures, README.md there) through the codecs and the channel:
 *
 *  1. each direction is read message by message as the receiving peer would
 *     (first block, then as many octets as ow_command_size() asks for),
 *     every block decrypted and every HMAC verified with keys recovered from
 *     the Token with the pass phrase, and every field checked against the
 *     README;
 *  2. each decoded message is encoded again and sealed with fresh channels
 *     set up from the same keys and IVs: the result must be the captured
 *     streams, byte for byte;
 *  3. both streams go through the control engine (ow-control-engine.h) in
 *     both roles at once: a client engine reads the server's stream and a
 *     server engine the client's, each answering with what the other one
 *     decoded, the client with the captured session keys and Client-IV,
 *     the server with the captured challenge, salt and Server-IV. What the
 *     two engines send must be the captured streams, byte for byte.
 */

#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-control-engine.h"
#include "ow-control.h"
#include "ow-crypto.h"
#include "ow-error.h"
#include "pcap.h"
#include "testutil.h"

#define CAPTURE_PORT 8871
#define SECRET "testsecret"
#define N_PACKETS 10
#define SLOT_MEAN UINT64_C(0x0ccccccc) /* 50 ms, -i 0.05 */

typedef struct Capture {
        const char *file;
        OwMode mode;
        uint16_t to_client_port, to_server_port;     /* "to": client sends */
        uint16_t from_server_port, from_client_port; /* "from": server sends */
        const char *sid_to, *sid_from;
        /* modes A and E only */
        const char *salt, *challenge, *aes, *hmac, *client_iv, *server_iv;
} Capture;

static const Capture captures[] = {
        {
                .file = "captures/mode-O.pcap",
                .mode = OW_MODE_OPEN,
                .to_client_port = 8920,
                .to_server_port = 8906,
                .from_server_port = 8909,
                .from_client_port = 8929,
                .sid_to = "7f000001eeb4dc4ecc65e8928b26d267",
                .sid_from = "7f000001eeb4dc4eccc0bdcaee245345",
        },
        {
                .file = "captures/mode-A.pcap",
                .mode = OW_MODE_AUTHENTICATED,
                .to_client_port = 8928,
                .to_server_port = 8906,
                .from_server_port = 8908,
                .from_client_port = 8924,
                .sid_to = "7f000001eeb4dc555ed3953dbd2311fe",
                .sid_from = "7f000001eeb4dc555f1bbcf43c17538c",
                .salt = "25416b311ccbc6557d8ec2621ca45b74",
                .challenge = "6a808883c367fdcec8ac52401b217890",
                .aes = "a40c9a75692f0e846669bc63103278fc",
                .hmac = "e60794005ad9a1e575498ac8821d96116f27ea6d6eb2c0fff63f1ee3755e4d72",
                .client_iv = "fa51fb5928ed96778c9edecf7751b949",
                .server_iv = "46c5e9b418e3ed5560099be1d47d298a",
        },
        {
                .file = "captures/mode-E.pcap",
                .mode = OW_MODE_ENCRYPTED,
                .to_client_port = 8927,
                .to_server_port = 8908,
                .from_server_port = 8901,
                .from_client_port = 8925,
                .sid_to = "7f000001eeb4dc5bd59e94ab52d55a04",
                .sid_from = "7f000001eeb4dc5bd5f2fdb84febe341",
                .salt = "e8dd88e767a46aff86630d51f125f0c2",
                .challenge = "28c3239e7c17a27b055027ad1a0dcfb8",
                .aes = "ae374ecbbf022bbe4fe89058d295b6ea",
                .hmac = "c6d61edd8ccc07af5f3a3e39b0ceb709dd18f223e890bfbf1c3654ad4fa3dff5",
                .client_iv = "ca8e780dd80ae8fa6437434e4fafae8f",
                .server_iv = "2a612c5a3dc4562d357b01dc6e0c08c4",
        },
};

static const uint8_t LOCALHOST[OW_ADDR_SIZE] = { 127, 0, 0, 1 };

/* One direction of the captured stream, consumed as a peer reads it. */
typedef struct Reader {
        const uint8_t *data;
        size_t len, off;
        OwChannel *ch;
} Reader;

/* The stream we rebuild for the same direction. */
typedef struct Writer {
        uint8_t *data;
        size_t size, off;
        OwChannel *ch;
} Writer;

static void take(Reader *r, uint8_t *buf, size_t n) {
        ck_assert_msg(r->off + n <= r->len, "stream ends at %zu, want %zu more at %zu", r->len, n, r->off);
        memcpy(buf, r->data + r->off, n);
        r->off += n;
}

/* Read and open n octets whose last block is an HMAC field. */
static void read_reply(Reader *r, uint8_t *buf, size_t n) {
        take(r, buf, n);
        ck_assert_int_eq(ow_channel_open(r->ch, buf, n, true), 0);
}

/* Read a command (or a Request-Session in a fetch response) as a server
 * would: first block, then what ow_command_size() asks for; the HMAC
 * fields are verified. Returns the message size. */
static size_t read_command(Reader *r, uint8_t *buf, size_t size) {
        size_t have = OW_BLOCK_SIZE, need;
        int k;

        take(r, buf, OW_BLOCK_SIZE);
        ck_assert_int_eq(ow_channel_open(r->ch, buf, OW_BLOCK_SIZE, false), 0);
        while ((k = ow_command_size(buf, have, &need)) == 1) {
                ck_assert_uint_gt(need, have);
                ck_assert_uint_le(need, size);
                take(r, buf + have, need - have);
                ck_assert_int_eq(ow_channel_open(r->ch, buf + have, need - have, false), 0);
                have = need;
        }
        ck_assert_int_eq(k, 0);
        ck_assert_uint_le(need, size);

        if (buf[0] == OW_CMD_REQUEST_SESSION) {
                /* The size is known from the first block; HMACs at 96 and at
                 * the end. */
                ck_assert_uint_eq(have, OW_BLOCK_SIZE);
                read_reply(r, buf + have, OW_REQUEST_SESSION_PREAMBLE_SIZE - have);
                read_reply(r, buf + OW_REQUEST_SESSION_PREAMBLE_SIZE,
                           need - OW_REQUEST_SESSION_PREAMBLE_SIZE);
        } else {
                ck_assert_uint_ge(need - have, OW_HMAC_SIZE);
                size_t body = need - have - OW_HMAC_SIZE;

                if (body > 0) {
                        take(r, buf + have, body);
                        ck_assert_int_eq(ow_channel_open(r->ch, buf + have, body, false), 0);
                }
                read_reply(r, buf + need - OW_HMAC_SIZE, OW_HMAC_SIZE);
        }
        return need;
}

static void put(Writer *w, const uint8_t *buf, size_t n) {
        ck_assert_uint_le(w->off + n, w->size);
        memcpy(w->data + w->off, buf, n);
        w->off += n;
}

/* Seal an encoded message whose HMAC fields are at the end (and at 96 for
 * a Request-Session) and append it. */
static void write_message(Writer *w, uint8_t *buf, int n) {
        ck_assert_int_gt(n, 0);
        if (buf[0] == OW_CMD_REQUEST_SESSION && (size_t) n > OW_REQUEST_SESSION_PREAMBLE_SIZE) {
                ck_assert_int_eq(ow_channel_seal(w->ch, buf, OW_REQUEST_SESSION_PREAMBLE_SIZE, true), 0);
                ck_assert_int_eq(ow_channel_seal(w->ch, buf + OW_REQUEST_SESSION_PREAMBLE_SIZE,
                                                 (size_t) n - OW_REQUEST_SESSION_PREAMBLE_SIZE, true),
                                 0);
        } else
                ck_assert_int_eq(ow_channel_seal(w->ch, buf, (size_t) n, true), 0);
        put(w, buf, (size_t) n);
}

static void assert_sid(const OwSid *sid, const char *hex) {
        OwSid want;
        test_unhex(hex, want.bytes, sizeof(want.bytes));
        ck_assert_bytes_eq(sid->bytes, want.bytes, OW_SID_SIZE);
}

static void assert_hex(const uint8_t *p, const char *hex, size_t n) {
        uint8_t want[64];
        ck_assert_uint_le(n, sizeof(want));
        test_unhex(hex, want, n);
        ck_assert_bytes_eq(p, want, n);
}

/* The fields both Request-Sessions of owping share (README, PROTOCOL.md 5.1). */
static void assert_request_common(const OwSessionRequest *q) {
        ck_assert_uint_eq(q->ipvn, 4);
        ck_assert_bytes_eq(q->sender_addr, LOCALHOST, OW_ADDR_SIZE);
        ck_assert_bytes_eq(q->receiver_addr, LOCALHOST, OW_ADDR_SIZE);
        ck_assert_uint_eq(q->n_packets, N_PACKETS);
        ck_assert_uint_eq(q->n_slots, 1);
        ck_assert_int_eq(q->slots[0].type, OW_SLOT_EXPONENTIAL);
        ck_assert_uint_eq(q->slots[0].param, SLOT_MEAN);
        ck_assert_uint_eq(q->padding_length, 0);
        ck_assert_uint_eq(q->type_p, 0);
        ck_assert_uint_eq(q->timeout >> 32, 2); /* owping: RTT + 2 s */
}

START_TEST(test_capture_control) {
        const Capture *cap = &captures[_i];
        bool secure = cap->mode != OW_MODE_OPEN;
        uint8_t buf[1024];
        PcapTrace t;
        OwChannel srv_rx, cli_rx, cli_tx, srv_tx;
        OwControlKeys keys = {};
        uint8_t dk[OW_DK_SIZE] = {};
        Reader c2s, s2c;
        Writer out_c2s, out_s2c;
        OwServerGreeting greeting;
        OwSetupResponse setup;
        OwServerStart start;
        OwSessionRequest req_to, req_from, req_fetched;
        OwAcceptSession acc_to, acc_from;
        OwAccept start_ack;
        OwStopSessions stop_c, stop_s;
        OwFetchSession fetch;
        OwFetchAck ack;
        OwRecord records[N_PACKETS];
        size_t n;
        int r;

        ck_assert_int_eq(pcap_load(test_data_path(cap->file), CAPTURE_PORT, &t), 0);
        c2s = (Reader) { .data = t.c2s, .len = t.c2s_len, .ch = &srv_rx };
        s2c = (Reader) { .data = t.s2c, .len = t.s2c_len, .ch = &cli_rx };
        out_c2s = (Writer) { .data = malloc(t.c2s_len), .size = t.c2s_len, .ch = &cli_tx };
        out_s2c = (Writer) { .data = malloc(t.s2c_len), .size = t.s2c_len, .ch = &srv_tx };
        ck_assert(out_c2s.data && out_s2c.data);

        /* --- Set-up, in clear: Greeting, Set-Up-Response, Server-Start. */
        take(&s2c, buf, OW_SERVER_GREETING_SIZE);
        ck_assert_int_eq(ow_server_greeting_decode(buf, OW_SERVER_GREETING_SIZE, &greeting), 0);
        ck_assert_uint_eq(greeting.modes, OW_MODES_ALL);
        ck_assert_uint_eq(greeting.count, 2048);
        if (secure) {
                assert_hex(greeting.salt, cap->salt, OW_SALT_SIZE);
                assert_hex(greeting.challenge, cap->challenge, OW_CHALLENGE_SIZE);
        }

        take(&c2s, buf, OW_SETUP_RESPONSE_SIZE);
        ck_assert_int_eq(ow_setup_response_decode(buf, OW_SETUP_RESPONSE_SIZE, &setup), 0);
        ck_assert_int_eq(setup.mode, cap->mode);
        if (secure) {
                OwControlKeys want;

                ck_assert_str_eq(setup.keyid, "testuser");
                assert_hex(setup.client_iv, cap->client_iv, OW_IV_SIZE);
                /* The server's side: derive dk, check the Token. */
                ck_assert_int_eq(ow_pbkdf2(SECRET, strlen(SECRET), greeting.salt, greeting.count, dk), 0);
                ck_assert_int_eq(ow_token_decrypt(dk, setup.token, greeting.challenge, &keys), 0);
                test_unhex(cap->aes, want.aes, sizeof(want.aes));
                test_unhex(cap->hmac, want.hmac, sizeof(want.hmac));
                ck_assert_bytes_eq(keys.aes, want.aes, sizeof(want.aes));
                ck_assert_bytes_eq(keys.hmac, want.hmac, sizeof(want.hmac));
        } else
                ck_assert_str_eq(setup.keyid, "");

        take(&s2c, buf, OW_SERVER_START_SIZE);
        /* Both IVs known: the channels of both peers, and fresh ones for
         * the rebuilt streams. */
        ck_assert_int_eq(ow_channel_init(&srv_rx, cap->mode, OW_CONTROL_SERVER, &keys, setup.client_iv,
                                         buf + 16),
                         0);
        ck_assert_int_eq(ow_channel_init(&cli_rx, cap->mode, OW_CONTROL_CLIENT, &keys, setup.client_iv,
                                         buf + 16),
                         0);
        ck_assert_int_eq(ow_channel_init(&srv_tx, cap->mode, OW_CONTROL_SERVER, &keys, setup.client_iv,
                                         buf + 16),
                         0);
        ck_assert_int_eq(ow_channel_init(&cli_tx, cap->mode, OW_CONTROL_CLIENT, &keys, setup.client_iv,
                                         buf + 16),
                         0);
        ck_assert_int_eq(ow_channel_open(&cli_rx, buf + OW_SERVER_START_CLEAR_SIZE, OW_BLOCK_SIZE, false),
                         0);
        ck_assert_int_eq(ow_server_start_decode(buf, OW_SERVER_START_SIZE, &start), 0);
        ck_assert_int_eq(start.accept, OW_ACCEPT_OK);
        if (secure)
                assert_hex(start.server_iv, cap->server_iv, OW_IV_SIZE);
        else
                ck_assert(ow_memeq_ct(start.server_iv, (uint8_t[OW_IV_SIZE]) {}, OW_IV_SIZE));
        ck_assert_uint_ne(start.start_time, 0);

        /* --- Request-Session "to" (the server receives) and its Accept. */
        n = read_command(&c2s, buf, sizeof(buf));
        ck_assert_uint_eq(n, 112 + 16 + 16);
        ck_assert_int_eq(ow_request_session_decode(buf, n, &req_to), 0);
        assert_request_common(&req_to);
        ck_assert(!req_to.conf_sender);
        ck_assert(req_to.conf_receiver);
        ck_assert_uint_eq(req_to.sender_port, cap->to_client_port);
        ck_assert_uint_eq(req_to.receiver_port, 0); /* the server picks it */
        ck_assert(ow_memeq_ct(req_to.sid.bytes, (uint8_t[OW_SID_SIZE]) {}, OW_SID_SIZE));
        ck_assert_uint_gt(req_to.start_time, start.start_time);

        read_reply(&s2c, buf, OW_ACCEPT_SESSION_SIZE);
        ck_assert_int_eq(ow_accept_session_decode(buf, OW_ACCEPT_SESSION_SIZE, &acc_to), 0);
        ck_assert_int_eq(acc_to.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(acc_to.port, cap->to_server_port);
        assert_sid(&acc_to.sid, cap->sid_to);

        /* --- Request-Session "from" (the server sends) and its Accept. */
        n = read_command(&c2s, buf, sizeof(buf));
        ck_assert_int_eq(ow_request_session_decode(buf, n, &req_from), 0);
        assert_request_common(&req_from);
        ck_assert(req_from.conf_sender);
        ck_assert(!req_from.conf_receiver);
        ck_assert_uint_eq(req_from.sender_port, 0);
        ck_assert_uint_eq(req_from.receiver_port, cap->from_client_port);
        assert_sid(&req_from.sid, cap->sid_from); /* the client receives: its SID */
        ck_assert_uint_eq(req_from.start_time, req_to.start_time);

        read_reply(&s2c, buf, OW_ACCEPT_SESSION_SIZE);
        ck_assert_int_eq(ow_accept_session_decode(buf, OW_ACCEPT_SESSION_SIZE, &acc_from), 0);
        ck_assert_int_eq(acc_from.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(acc_from.port, cap->from_server_port);
        assert_sid(&acc_from.sid, cap->sid_from);

        /* --- Start-Sessions, Start-Ack. */
        n = read_command(&c2s, buf, sizeof(buf));
        ck_assert_uint_eq(n, OW_START_SESSIONS_SIZE);
        ck_assert_int_eq(ow_start_sessions_decode(buf, n), 0);
        read_reply(&s2c, buf, OW_START_ACK_SIZE);
        ck_assert_int_eq(ow_start_ack_decode(buf, OW_START_ACK_SIZE, &start_ack), 0);
        ck_assert_int_eq(start_ack, OW_ACCEPT_OK);

        /* --- Stop-Sessions, both ways: each side describes the session it
         * sent. The server's is read by the client with the same walk. */
        n = read_command(&c2s, buf, sizeof(buf));
        ck_assert_uint_eq(n, 16 + 32 + 16);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, n, &stop_c), 0);
        ck_assert_int_eq(stop_c.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(stop_c.n_sessions, 1);
        assert_sid(&stop_c.sessions[0].sid, cap->sid_to);
        ck_assert_uint_eq(stop_c.sessions[0].next_seqno, N_PACKETS);
        ck_assert_uint_eq(stop_c.sessions[0].n_skip_ranges, 0);

        n = read_command(&s2c, buf, sizeof(buf));
        ck_assert_uint_eq(n, 16 + 32 + 16);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, n, &stop_s), 0);
        ck_assert_int_eq(stop_s.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(stop_s.n_sessions, 1);
        assert_sid(&stop_s.sessions[0].sid, cap->sid_from);
        ck_assert_uint_eq(stop_s.sessions[0].next_seqno, N_PACKETS);
        ck_assert_uint_eq(stop_s.sessions[0].n_skip_ranges, 0);

        /* --- Fetch-Session for the session the server received. */
        n = read_command(&c2s, buf, sizeof(buf));
        ck_assert_uint_eq(n, OW_FETCH_SESSION_SIZE);
        ck_assert_int_eq(ow_fetch_session_decode(buf, n, &fetch), 0);
        ck_assert_uint_eq(fetch.begin, 0);
        ck_assert_uint_eq(fetch.end, UINT32_MAX);
        assert_sid(&fetch.sid, cap->sid_to);
        ck_assert_uint_eq(c2s.off, c2s.len); /* all of the client's stream */

        read_reply(&s2c, buf, OW_FETCH_ACK_SIZE);
        ck_assert_int_eq(ow_fetch_ack_decode(buf, OW_FETCH_ACK_SIZE, &ack), 0);
        ck_assert_int_eq(ack.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(ack.finished, 1);
        ck_assert_uint_eq(ack.next_seqno, N_PACKETS);
        ck_assert_uint_eq(ack.n_skip_ranges, 0);
        ck_assert_uint_eq(ack.n_records, N_PACKETS);

        /* Part 1: the stored Request-Session, real port and SID filled in. */
        n = read_command(&s2c, buf, sizeof(buf));
        ck_assert_int_eq(ow_request_session_decode(buf, n, &req_fetched), 0);
        assert_request_common(&req_fetched);
        ck_assert(req_fetched.conf_receiver);
        ck_assert_uint_eq(req_fetched.sender_port, cap->to_client_port);
        ck_assert_uint_eq(req_fetched.receiver_port, cap->to_server_port);
        assert_sid(&req_fetched.sid, cap->sid_to);
        ck_assert_uint_eq(req_fetched.start_time, req_to.start_time);
        ck_assert_uint_eq(req_fetched.timeout, req_to.timeout);

        /* Part 2: no skip ranges, just the HMAC block. */
        ck_assert_int_eq(ow_fetch_skips_size(ack.n_skip_ranges, &n), 0);
        ck_assert_uint_eq(n, 16);
        read_reply(&s2c, buf, n);
        ck_assert_int_eq(ow_fetch_skips_decode(buf, n, ack.n_skip_ranges, NULL), 0);

        /* Part 3: 10 records of 25 octets across block boundaries. */
        ck_assert_int_eq(ow_fetch_records_size(ack.n_records, &n), 0);
        ck_assert_uint_eq(n, 256 + 16);
        read_reply(&s2c, buf, n);
        ck_assert_int_eq(ow_fetch_records_decode(buf, n, ack.n_records, records), 0);
        for (uint32_t i = 0; i < N_PACKETS; i++) {
                ck_assert_uint_eq(records[i].seq, i);
                ck_assert(!ow_record_lost(&records[i]));
                ck_assert_uint_gt(records[i].send_time, req_to.start_time);
                ck_assert_uint_gt(records[i].recv_time, records[i].send_time);
                if (i > 0)
                        ck_assert_uint_gt(records[i].send_time, records[i - 1].send_time);
                ck_assert_uint_eq(records[i].send_err, OW_ERREST_UNSYNC);
                ck_assert_uint_eq(records[i].recv_err, OW_ERREST_UNSYNC);
                ck_assert_uint_eq(records[i].ttl, 255);
        }
        ck_assert_uint_eq(s2c.off, s2c.len); /* all of the server's stream */

        /* --- Rebuild both streams from the decoded messages. */
        r = ow_server_greeting_encode(&greeting, buf, sizeof(buf));
        ck_assert_int_eq(r, OW_SERVER_GREETING_SIZE);
        put(&out_s2c, buf, (size_t) r);
        if (secure) /* the client's Token again, from the recovered keys */
                ck_assert_int_eq(ow_token_encrypt(dk, greeting.challenge, &keys, setup.token), 0);
        r = ow_setup_response_encode(&setup, buf, sizeof(buf));
        ck_assert_int_eq(r, OW_SETUP_RESPONSE_SIZE);
        put(&out_c2s, buf, (size_t) r);
        r = ow_server_start_encode(&start, buf, sizeof(buf));
        ck_assert_int_eq(r, OW_SERVER_START_SIZE);
        /* Only octets 32..47 are in the server's chain (clear in mode O). */
        ck_assert_int_eq(ow_channel_seal(&srv_tx, buf + OW_SERVER_START_CLEAR_SIZE, OW_BLOCK_SIZE, false),
                         0);
        put(&out_s2c, buf, (size_t) r);

        write_message(&out_c2s, buf, ow_request_session_encode(&req_to, buf, sizeof(buf)));
        write_message(&out_s2c, buf, ow_accept_session_encode(&acc_to, buf, sizeof(buf)));
        write_message(&out_c2s, buf, ow_request_session_encode(&req_from, buf, sizeof(buf)));
        write_message(&out_s2c, buf, ow_accept_session_encode(&acc_from, buf, sizeof(buf)));
        write_message(&out_c2s, buf, ow_start_sessions_encode(buf, sizeof(buf)));
        write_message(&out_s2c, buf, ow_start_ack_encode(start_ack, buf, sizeof(buf)));
        write_message(&out_c2s, buf, ow_stop_sessions_encode(&stop_c, buf, sizeof(buf)));
        write_message(&out_s2c, buf, ow_stop_sessions_encode(&stop_s, buf, sizeof(buf)));
        write_message(&out_c2s, buf, ow_fetch_session_encode(&fetch, buf, sizeof(buf)));
        write_message(&out_s2c, buf, ow_fetch_ack_encode(&ack, buf, sizeof(buf)));
        write_message(&out_s2c, buf, ow_request_session_encode(&req_fetched, buf, sizeof(buf)));
        write_message(&out_s2c, buf, ow_fetch_skips_encode(NULL, 0, buf, sizeof(buf)));
        write_message(&out_s2c, buf, ow_fetch_records_encode(records, N_PACKETS, buf, sizeof(buf)));

        ck_assert_uint_eq(out_c2s.off, t.c2s_len);
        ck_assert_uint_eq(out_s2c.off, t.s2c_len);
        ck_assert_bytes_eq(out_c2s.data, t.c2s, t.c2s_len);
        ck_assert_bytes_eq(out_s2c.data, t.s2c, t.s2c_len);

        ow_session_request_done(&req_to);
        ow_session_request_done(&req_from);
        ow_session_request_done(&req_fetched);
        ow_stop_sessions_done(&stop_c);
        ow_stop_sessions_done(&stop_s);
        ow_channel_wipe(&srv_rx);
        ow_channel_wipe(&cli_rx);
        ow_channel_wipe(&srv_tx);
        ow_channel_wipe(&cli_tx);
        ow_wipe(&keys, sizeof(keys));
        ow_wipe(dk, sizeof(dk));
        free(out_c2s.data);
        free(out_s2c.data);
        pcap_trace_done(&t);
}
END_TEST

/* A wrong pass phrase is caught at the Token, and a channel with wrong keys
 * fails at the very first HMAC the server checks. */
START_TEST(test_capture_wrong_keys) {
        const Capture *cap = &captures[1 + _i];
        uint8_t buf[OW_REQUEST_SESSION_PREAMBLE_SIZE], dk[OW_DK_SIZE];
        OwControlKeys keys;
        OwChannel srv_rx;
        PcapTrace t;

        ck_assert_int_eq(pcap_load(test_data_path(cap->file), CAPTURE_PORT, &t), 0);
        ck_assert_int_eq(ow_pbkdf2("wrongsecret", 11, t.s2c + 32, 2048, dk), 0);
        ck_assert_int_eq(ow_token_decrypt(dk, t.c2s + 84, t.s2c + 16, &keys), -OW_ERR_TOKEN);

        test_unhex(cap->aes, keys.aes, sizeof(keys.aes));
        test_unhex(cap->hmac, keys.hmac, sizeof(keys.hmac));
        keys.hmac[31] ^= 1;
        ck_assert_int_eq(
                ow_channel_init(&srv_rx, cap->mode, OW_CONTROL_SERVER, &keys, t.c2s + 148, t.s2c + 80), 0);
        memcpy(buf, t.c2s + OW_SETUP_RESPONSE_SIZE, sizeof(buf));
        ck_assert_int_eq(ow_channel_open(&srv_rx, buf, sizeof(buf), true), -OW_ERR_HMAC);
        /* ... though the AES key was right: the plaintext is a Request-Session. */
        ck_assert_int_eq(ow_command_type(buf, sizeof(buf)), OW_CMD_REQUEST_SESSION);
        pcap_trace_done(&t);
}
END_TEST

/* --- Through the engine, in both roles ----------------------------------- */

/* What one engine decoded, waiting for the other engine to send it. */
typedef struct Pending {
        OwEvent ev[32];
        size_t head, n;
} Pending;

static void pending_push(Pending *q, OwEvent *ev) {
        ck_assert_uint_lt(q->n, ELEMENTSOF(q->ev));
        q->ev[(q->head + q->n++) % ELEMENTSOF(q->ev)] = *ev;
        *ev = (OwEvent){};
}

/* The client engine sends what the server engine decoded of the client's
 * stream. -OW_ERR_STATE: not yet (the other stream is behind). */
static int client_resend(OwEngine *c, const OwEvent *ev) {
        switch (ev->type) {
        case OW_EVENT_REQUEST_SESSION:
                return ow_engine_send_request_session(c, &ev->request);
        case OW_EVENT_START_SESSIONS:
                return ow_engine_send_start_sessions(c);
        case OW_EVENT_STOP_SESSIONS:
                return ow_engine_send_stop_sessions(c, &ev->stop);
        case OW_EVENT_FETCH_SESSION:
                return ow_engine_send_fetch_session(c, &ev->fetch);
        default:
                ck_abort_msg("unexpected event %d from the client's stream", ev->type);
        }
        return -EINVAL;
}

/* The server engine sends what the client engine decoded of the server's. */
static int server_resend(OwEngine *s, const OwEvent *ev) {
        switch (ev->type) {
        case OW_EVENT_SERVER_START:
                return ow_engine_send_server_start(s, ev->server_start.accept, ev->server_start.server_iv,
                                                   ev->server_start.start_time);
        case OW_EVENT_ACCEPT_SESSION:
                return ow_engine_send_accept_session(s, &ev->accept_session);
        case OW_EVENT_START_ACK:
                return ow_engine_send_start_ack(s, ev->accept);
        case OW_EVENT_STOP_SESSIONS:
                return ow_engine_send_stop_sessions(s, &ev->stop);
        case OW_EVENT_FETCH_ACK:
                return ow_engine_send_fetch_ack(s, &ev->fetch_ack);
        case OW_EVENT_FETCH_REQUEST:
                return ow_engine_send_fetch_request(s, &ev->request);
        case OW_EVENT_FETCH_SKIPS:
                return ow_engine_send_fetch_skips(s, ev->skips.ranges, ev->skips.n);
        case OW_EVENT_FETCH_RECORDS:
                return ow_engine_send_fetch_records(s, ev->records.records, ev->records.n);
        case OW_EVENT_FETCH_DONE:
                return 0;
        default:
                ck_abort_msg("unexpected event %d from the server's stream", ev->type);
        }
        return -EINVAL;
}

/* Send the oldest pending event through e; true if it went. */
static bool pending_apply(Pending *q, OwEngine *e, int (*resend)(OwEngine *, const OwEvent *)) {
        int r;

        if (q->n == 0)
                return false;
        r = resend(e, &q->ev[q->head]);
        if (r == -OW_ERR_STATE)
                return false;
        ck_assert_msg(r == 0, "resending event %d: %s", q->ev[q->head].type, ow_strerror(r));
        ow_event_done(&q->ev[q->head]);
        q->head = (q->head + 1) % ELEMENTSOF(q->ev);
        q->n--;
        return true;
}

static void drain(OwEngine *e, Writer *w) {
        size_t n;
        const uint8_t *p = ow_engine_output(e, &n);

        if (n > 0)
                put(w, p, n);
        ow_engine_output_done(e, n);
}

START_TEST(test_capture_engine) {
        const Capture *cap = &captures[_i];
        bool secure = cap->mode != OW_MODE_OPEN;
        OwControlKeys keys = {};
        uint8_t client_iv[OW_IV_SIZE] = {};
        Pending to_client = {}, to_server = {};
        Writer out_c2s, out_s2c;
        OwEngine *c, *s;
        unsigned events = 0, records = 0;
        PcapTrace t;

        ck_assert_int_eq(pcap_load(test_data_path(cap->file), CAPTURE_PORT, &t), 0);
        out_c2s = (Writer){ .data = malloc(t.c2s_len), .size = t.c2s_len };
        out_s2c = (Writer){ .data = malloc(t.s2c_len), .size = t.s2c_len };
        ck_assert(out_c2s.data && out_s2c.data);
        if (secure) {
                test_unhex(cap->aes, keys.aes, sizeof(keys.aes));
                test_unhex(cap->hmac, keys.hmac, sizeof(keys.hmac));
                test_unhex(cap->client_iv, client_iv, sizeof(client_iv));
        }

        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_CLIENT, &c), 0);
        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_SERVER, &s), 0);
        /* Each reads the other peer's whole stream; it takes it as the
         * protocol lets it. */
        ck_assert_int_eq(ow_engine_feed(c, t.s2c, t.s2c_len), 0);
        ck_assert_int_eq(ow_engine_feed(s, t.c2s, t.c2s_len), 0);

        for (unsigned round = 0; round < 1000; round++) {
                bool progress = false;
                OwEvent ev;
                int r;

                r = ow_engine_poll(c, &ev);
                ck_assert_msg(r >= 0, "client engine: %s: %s", ow_engine_error_context(c), ow_strerror(r));
                if (r > 0) {
                        progress = true;
                        events++;
                        if (ev.type == OW_EVENT_FETCH_RECORDS)
                                records += ev.records.n;
                        if (ev.type == OW_EVENT_GREETING) {
                                OwClientSetup cs = { .mode = cap->mode,
                                                     .keyid = "testuser",
                                                     .secret = SECRET,
                                                     .secret_len = strlen(SECRET),
                                                     .keys = &keys,
                                                     .client_iv = client_iv };
                                ck_assert_int_eq(ow_engine_send_greeting(s, &ev.greeting), 0);
                                ck_assert_int_eq(ow_engine_send_setup_response(c, &cs), 0);
                                ow_event_done(&ev);
                        } else
                                pending_push(&to_server, &ev);
                }
                r = ow_engine_poll(s, &ev);
                ck_assert_msg(r >= 0, "server engine: %s: %s", ow_engine_error_context(s), ow_strerror(r));
                if (r > 0) {
                        progress = true;
                        events++;
                        if (ev.type == OW_EVENT_SETUP_RESPONSE) {
                                ck_assert_int_eq(ev.setup.mode, cap->mode);
                                if (secure)
                                        ck_assert_int_eq(
                                                ow_engine_server_authenticate(s, SECRET, strlen(SECRET)), 0);
                                ow_event_done(&ev);
                        } else
                                pending_push(&to_client, &ev);
                }
                progress |= pending_apply(&to_server, s, server_resend);
                progress |= pending_apply(&to_client, c, client_resend);
                drain(c, &out_c2s);
                drain(s, &out_s2c);
                if (!progress)
                        break;
        }

        ck_assert_uint_eq(to_client.n, 0);
        ck_assert_uint_eq(to_server.n, 0);
        /* Greeting, Server-Start, 2 Accept-Sessions, Start-Ack, Stop-Sessions,
         * Fetch-Ack, its 3 parts (the 10 records in one batch), DONE;
         * Set-Up-Response, 2 Request-Sessions, Start-Sessions, Stop-Sessions,
         * Fetch-Session. */
        ck_assert_uint_eq(events, 11 + 6);
        ck_assert_uint_eq(records, N_PACKETS);
        ck_assert_uint_eq(ow_engine_input_pending(c), 0);
        ck_assert_uint_eq(ow_engine_input_pending(s), 0);
        ck_assert_int_eq(ow_engine_state(c), OW_ENGINE_IDLE);
        ck_assert_int_eq(ow_engine_state(s), OW_ENGINE_IDLE);
        ck_assert_uint_eq(out_c2s.off, t.c2s_len);
        ck_assert_uint_eq(out_s2c.off, t.s2c_len);
        ck_assert_bytes_eq(out_c2s.data, t.c2s, t.c2s_len);
        ck_assert_bytes_eq(out_s2c.data, t.s2c, t.s2c_len);

        ow_engine_free(c);
        ow_engine_free(s);
        ow_wipe(&keys, sizeof(keys));
        free(out_c2s.data);
        free(out_s2c.data);
        pcap_trace_done(&t);
}
END_TEST

/* The engine catches a wrong pass phrase at the Token, and a tampered
 * captured stream at its first HMAC. */
START_TEST(test_capture_engine_refusals) {
        const Capture *cap = &captures[1 + _i];
        OwEngine *s;
        OwEvent ev;
        PcapTrace t;

        ck_assert_int_eq(pcap_load(test_data_path(cap->file), CAPTURE_PORT, &t), 0);
        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_SERVER, &s), 0);
        OwServerGreeting g;
        ck_assert_int_eq(ow_server_greeting_decode(t.s2c, OW_SERVER_GREETING_SIZE, &g), 0);
        ck_assert_int_eq(ow_engine_send_greeting(s, &g), 0);
        ck_assert_int_eq(ow_engine_feed(s, t.c2s, t.c2s_len), 0);
        ck_assert_int_eq(ow_engine_poll(s, &ev), 1);
        ck_assert_int_eq(ev.type, OW_EVENT_SETUP_RESPONSE);
        ck_assert_str_eq(ev.setup.keyid, "testuser");
        ow_event_done(&ev);
        ck_assert_int_eq(ow_engine_server_authenticate(s, "wrongsecret", 11), -OW_ERR_TOKEN);
        ck_assert_int_eq(ow_engine_send_server_start(s, OW_ACCEPT_OK, t.s2c + 80, 0), -OW_ERR_TOKEN);
        ck_assert_int_eq(ow_engine_server_authenticate(s, SECRET, strlen(SECRET)), 0);
        ck_assert_int_eq(ow_engine_send_server_start(s, OW_ACCEPT_OK, t.s2c + 80, 0), 0);
        /* The first Request-Session, one bit off in its first HMAC block. */
        ow_engine_free(s);

        ck_assert_int_eq(ow_engine_new(&ow_protocol_owamp, OW_CONTROL_SERVER, &s), 0);
        ck_assert_int_eq(ow_engine_send_greeting(s, &g), 0);
        t.c2s[OW_SETUP_RESPONSE_SIZE + 100] ^= 1;
        ck_assert_int_eq(ow_engine_feed(s, t.c2s, t.c2s_len), 0);
        ck_assert_int_eq(ow_engine_poll(s, &ev), 1);
        ow_event_done(&ev);
        ck_assert_int_eq(ow_engine_server_authenticate(s, SECRET, strlen(SECRET)), 0);
        ck_assert_int_eq(ow_engine_send_server_start(s, OW_ACCEPT_OK, t.s2c + 80, 0), 0);
        ck_assert_int_eq(ow_engine_poll(s, &ev), -OW_ERR_HMAC);
        ck_assert_str_eq(ow_engine_error_context(s), "Request-Session");
        ow_engine_free(s);
        pcap_trace_done(&t);
}
END_TEST

int main(void) {
        Suite *s = suite_create("capture-control");
        TCase *tc = tcase_create("replay");
        tcase_add_loop_test(tc, test_capture_control, 0, (int) (sizeof(captures) / sizeof(captures[0])));
        tcase_add_loop_test(tc, test_capture_wrong_keys, 0, 2);
        tcase_add_loop_test(tc, test_capture_engine, 0, (int) (sizeof(captures) / sizeof(captures[0])));
        tcase_add_loop_test(tc, test_capture_engine_refusals, 0, 2);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
