/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The test halves of the reference captures (test/data/captures): every UDP
 * test packet decoded, authenticated and re-encoded to the identical bytes,
 * and every send time checked against the schedule recomputed from the SID
 * and the Request-Session.
 */

#include <arpa/inet.h>
#include <stdio.h>

#include <nettle/aes.h>
#include <nettle/cbc.h>

#include "ow-error.h"
#include "ow-schedule.h"
#include "ow-testpkt.h"
#include "pcap.h"
#include "testutil.h"

#define CONTROL_PORT 8871
#define GREETING_SIZE 64
#define SETUP_RESPONSE_SIZE 164
#define SERVER_START_SIZE 48
#define ACCEPT_SESSION_SIZE 48
#define REQUEST_SESSION_SIZE (112 + 16 + 16) /* one slot */
#define PACKETS_PER_SESSION 10

/* Plausibility window between a packet's send timestamp and the capture
 * time of its frame (pcap, microseconds) on loopback. The captures show
 * 4..98 us. */
#define CAPTURE_SLACK_NSEC INT64_C(5000000)

/*
 * How late a packet leaves after its scheduled time. The reference sender
 * sleeps until the due time and then reads the clock, so it is never early
 * (its microsecond clock could in theory land up to 1 us before a due time
 * that falls inside a microsecond; the data never come close). The
 * captures show 62..158 us for 59 of the 60 packets and one outlier of
 * 557 us (mode-E, "from" seq 3): wake-up latency, 50 us of which is the
 * default timer slack of a Linux process. PROTOCOL.md 8.1's "within 0.1 ms"
 * does not hold: about half the packets are later than that.
 *
 * 1 ms keeps a margin over the outlier and is still 50 times smaller than
 * the mean gap of these sessions (50 ms), and the errors of a wrong
 * schedule add up over the ten packets of a session.
 */
#define SCHEDULE_LATE_NSEC INT64_C(1000000)

/* From test/data/captures/README.md: control session keys and IVs of the
 * A and E runs (open mode has none). */
typedef struct CaptureInfo {
        const char *file;
        OwMode mode;
        const char *aes_key;
        const char *hmac_key;
        const char *client_iv;
        const char *server_iv;
        const char *sid_to;
        const char *sid_from;
        /* Test keys of one session, as the README gives them. */
        const char *test_aes_key_to;
        const char *test_aes_key_from;
} CaptureInfo;

static const CaptureInfo captures[] = {
        {
                .file = "captures/mode-O.pcap",
                .mode = OW_MODE_OPEN,
                .sid_to = "7f000001eeb4dc4ecc65e8928b26d267",
                .sid_from = "7f000001eeb4dc4eccc0bdcaee245345",
        },
        {
                .file = "captures/mode-A.pcap",
                .mode = OW_MODE_AUTHENTICATED,
                .aes_key = "a40c9a75692f0e846669bc63103278fc",
                .hmac_key = "e60794005ad9a1e575498ac8821d96116f27ea6d6eb2c0fff63f1ee3755e4d72",
                .client_iv = "fa51fb5928ed96778c9edecf7751b949",
                .server_iv = "46c5e9b418e3ed5560099be1d47d298a",
                .sid_to = "7f000001eeb4dc555ed3953dbd2311fe",
                .sid_from = "7f000001eeb4dc555f1bbcf43c17538c",
                .test_aes_key_to = "dbb1b70e810f91e98e4b4c96408885c5",
                .test_aes_key_from = "fee85e176218e0c92dc01f8bca49971e",
        },
        {
                .file = "captures/mode-E.pcap",
                .mode = OW_MODE_ENCRYPTED,
                .aes_key = "ae374ecbbf022bbe4fe89058d295b6ea",
                .hmac_key = "c6d61edd8ccc07af5f3a3e39b0ceb709dd18f223e890bfbf1c3654ad4fa3dff5",
                .client_iv = "ca8e780dd80ae8fa6437434e4fafae8f",
                .server_iv = "2a612c5a3dc4562d357b01dc6e0c08c4",
                .sid_to = "7f000001eeb4dc5bd59e94ab52d55a04",
                .sid_from = "7f000001eeb4dc5bd5f2fdb84febe341",
                .test_aes_key_to = "6d762a8fc267ab835e7ce8ebe1da06c7",
        },
};

/* One test session as the control stream describes it. */
typedef struct Session {
        const char *name;
        bool conf_sender;
        bool conf_receiver;
        uint16_t sender_port; /* from Request-Session; 0 when the server picks */
        uint16_t receiver_port;
        uint16_t server_port; /* from Accept-Session */
        uint32_t n_packets;
        uint32_t padding_length;
        OwSid sid;
        OwTimestamp start_time;
        OwSlot slot;
        OwTestPktCodec *codec;
        OwSchedule *schedule;
        unsigned seen;
} Session;

typedef struct Capture {
        const CaptureInfo *info;
        PcapTrace trace;
        uint8_t aes_key[OW_AES_KEY_SIZE];
        uint8_t hmac_key[OW_HMAC_KEY_SIZE];
        uint8_t *c2s; /* control stream after Set-Up-Response, decrypted */
        size_t c2s_len;
        uint8_t *s2c; /* control stream from Server-Start octet 32, decrypted */
        size_t s2c_len;
        Session to, from;
} Capture;

/* In A and E mode each direction of the control connection is one CBC
 * chain (PROTOCOL.md 4.1); the control codec owns the real channel, this
 * just decrypts whole streams for the test. */
static uint8_t *control_plaintext(const Capture *cap, const uint8_t *in, size_t len, const char *iv_hex) {
        uint8_t *out = malloc(len);
        ck_assert_ptr_nonnull(out);
        ck_assert_uint_eq(len % 16, 0);

        if (cap->info->mode == OW_MODE_OPEN) {
                memcpy(out, in, len);
                return out;
        }

        struct aes128_ctx aes;
        uint8_t iv[16];
        test_unhex(iv_hex, iv, sizeof(iv));
        aes128_set_decrypt_key(&aes, cap->aes_key);
        cbc_decrypt(&aes, (nettle_cipher_func *) aes128_decrypt, 16, iv, len, out, in);
        return out;
}

static void parse_request(const uint8_t *r, Session *s) {
        ck_assert_uint_eq(r[0], OW_CMD_REQUEST_SESSION);
        ck_assert_uint_eq(r[1] & 0x0f, 4);
        s->conf_sender = r[2];
        s->conf_receiver = r[3];
        ck_assert_uint_eq(ow_get_be32(r + 4), 1); /* one slot */
        s->n_packets = ow_get_be32(r + 8);
        s->sender_port = ow_get_be16(r + 12);
        s->receiver_port = ow_get_be16(r + 14);
        memcpy(s->sid.bytes, r + 48, OW_SID_SIZE);
        s->padding_length = ow_get_be32(r + 64);
        s->start_time = ow_timestamp_get(r + 68);

        const uint8_t *slot = r + 112;
        ck_assert_uint_eq(slot[0], OW_SLOT_EXPONENTIAL);
        s->slot = (OwSlot){ .type = OW_SLOT_EXPONENTIAL, .param = ow_timestamp_get(slot + 8) };
}

static void capture_load(Capture *cap, const CaptureInfo *info) {
        *cap = (Capture){ .info = info, .to.name = "to", .from.name = "from" };

        ck_assert_int_eq(pcap_load(test_data_path(info->file), CONTROL_PORT, &cap->trace), 0);
        if (info->mode != OW_MODE_OPEN) {
                test_unhex(info->aes_key, cap->aes_key, sizeof(cap->aes_key));
                test_unhex(info->hmac_key, cap->hmac_key, sizeof(cap->hmac_key));
        }

        /* Client -> server: Set-Up-Response, then the two Request-Sessions
         * ("to" first, PROTOCOL.md 10). */
        size_t off = SETUP_RESPONSE_SIZE, len = 2 * REQUEST_SESSION_SIZE;
        ck_assert_uint_ge(cap->trace.c2s_len, off + len);
        cap->c2s = control_plaintext(cap, cap->trace.c2s + off, len, info->client_iv);
        cap->c2s_len = len;
        parse_request(cap->c2s, &cap->to);
        parse_request(cap->c2s + REQUEST_SESSION_SIZE, &cap->from);

        /* Server -> client: the encrypted half of Server-Start, then the two
         * Accept-Sessions. */
        off = GREETING_SIZE + 32;
        len = 16 + 2 * ACCEPT_SESSION_SIZE;
        ck_assert_uint_ge(cap->trace.s2c_len, off + len);
        cap->s2c = control_plaintext(cap, cap->trace.s2c + off, len, info->server_iv);
        cap->s2c_len = len;

        Session *sessions[] = { &cap->to, &cap->from };
        for (size_t i = 0; i < ELEMENTSOF(sessions); i++) {
                Session *s = sessions[i];
                const uint8_t *a = cap->s2c + 16 + i * ACCEPT_SESSION_SIZE;

                ck_assert_uint_eq(a[0], OW_ACCEPT_OK);
                s->server_port = ow_get_be16(a + 2);
                /* The client sends zeros when the server is the receiver and
                 * learns the SID here; otherwise the server echoes it. */
                if (s->conf_receiver)
                        ck_assert(ow_all_zero(s->sid.bytes, OW_SID_SIZE));
                else
                        ck_assert_bytes_eq(a + 4, s->sid.bytes, OW_SID_SIZE);
                memcpy(s->sid.bytes, a + 4, OW_SID_SIZE);
        }

        /* What the README says about these runs. */
        OwSid want;
        test_unhex(info->sid_to, want.bytes, OW_SID_SIZE);
        ck_assert_bytes_eq(cap->to.sid.bytes, want.bytes, OW_SID_SIZE);
        test_unhex(info->sid_from, want.bytes, OW_SID_SIZE);
        ck_assert_bytes_eq(cap->from.sid.bytes, want.bytes, OW_SID_SIZE);
        ck_assert(cap->to.conf_receiver && !cap->to.conf_sender);
        ck_assert(cap->from.conf_sender && !cap->from.conf_receiver);
        for (size_t i = 0; i < ELEMENTSOF(sessions); i++) {
                Session *s = sessions[i];

                ck_assert_uint_eq(s->n_packets, PACKETS_PER_SESSION);
                ck_assert_uint_eq(s->padding_length, 0);
                ck_assert_uint_eq(s->slot.param, 0x0ccccccc); /* -i 0.05 */
                ck_assert_uint_eq(s->start_time, cap->to.start_time);

                ck_assert_int_eq(ow_testpkt_codec_new(info->mode, &s->sid,
                                                      info->aes_key ? cap->aes_key : NULL,
                                                      info->hmac_key ? cap->hmac_key : NULL, &s->codec),
                                 0);
                ck_assert_int_eq(ow_schedule_new(&s->sid, &s->slot, 1, s->start_time, &s->schedule), 0);
        }
}

static void capture_done(Capture *cap) {
        Session *sessions[] = { &cap->to, &cap->from };
        for (size_t i = 0; i < ELEMENTSOF(sessions); i++) {
                ow_testpkt_codec_free(sessions[i]->codec);
                ow_schedule_free(sessions[i]->schedule);
        }
        free(cap->c2s);
        free(cap->s2c);
        pcap_trace_done(&cap->trace);
        explicit_bzero(cap->aes_key, sizeof(cap->aes_key));
        explicit_bzero(cap->hmac_key, sizeof(cap->hmac_key));
}

static OwTimestamp capture_time(const PcapDatagram *d) {
        struct timespec ts = {
                .tv_sec = (time_t) (d->time_usec / 1000000),
                .tv_nsec = (long) (d->time_usec % 1000000) * 1000,
        };
        return ow_timestamp_from_timespec(&ts);
}

/* Which session a datagram belongs to: the client's end of each session is
 * the port it put in the Request-Session, the server's end the port of the
 * Accept-Session. */
static Session *datagram_session(Capture *cap, const PcapDatagram *d) {
        if (d->sport == cap->to.sender_port) {
                ck_assert_uint_eq(d->dport, cap->to.server_port);
                return &cap->to;
        }
        ck_assert_uint_eq(d->sport, cap->from.server_port);
        ck_assert_uint_eq(d->dport, cap->from.receiver_port);
        return &cap->from;
}

START_TEST(test_capture_keys) {
        /* The README's example test keys, derived from SID and control keys. */
        const CaptureInfo *info = &captures[_i];
        Capture cap;
        capture_load(&cap, info);

        const char *want_hex[] = { info->test_aes_key_to, info->test_aes_key_from };
        Session *sessions[] = { &cap.to, &cap.from };
        unsigned n = 0;
        for (size_t i = 0; i < ELEMENTSOF(sessions); i++) {
                if (!want_hex[i])
                        continue;
                OwTestKeys k;
                uint8_t want[16];
                ow_testpkt_derive_keys(&sessions[i]->sid, cap.aes_key, cap.hmac_key, &k);
                test_unhex(want_hex[i], want, sizeof(want));
                ck_assert_bytes_eq(k.aes, want, sizeof(want));
                n++;
        }
        ck_assert_uint_ge(n, 1);
        capture_done(&cap);
}
END_TEST

START_TEST(test_capture_packets) {
        const CaptureInfo *info = &captures[_i];
        Capture cap;
        capture_load(&cap, info);

        int64_t min_lat = INT64_MAX, max_lat = INT64_MIN, max_cap = 0;
        size_t hdr = ow_testpkt_header_size(info->mode);
        unsigned n_udp = 0;

        for (size_t i = 0; i < cap.trace.n_udp; i++) {
                const PcapDatagram *d = &cap.trace.udp[i];
                Session *s = datagram_session(&cap, d);
                OwTestPacket p;

                n_udp++;
                ck_assert_uint_eq(d->len, hdr + s->padding_length);

                /* Decoded and authenticated; packets arrive in order. */
                ck_assert_int_eq(ow_testpkt_decode(s->codec, d->data, d->len, s->n_packets, &p), 0);
                ck_assert_uint_eq(p.seq, s->seen);
                s->seen++;
                /* Unsynchronised clock: S = 0, Scale 0, Multiplier 1. */
                ck_assert_uint_eq(p.errest, OW_ERREST_UNSYNC);

                /* Sent shortly before the frame was captured. */
                int64_t to_capture = ow_timestamp_diff_nsec(capture_time(d), p.timestamp);
                ck_assert_msg(to_capture >= 0 && to_capture < CAPTURE_SLACK_NSEC,
                              "%s %s seq %u: captured %lld ns after its timestamp", info->file, s->name,
                              p.seq, (long long) to_capture);
                max_cap = MAX(max_cap, to_capture);

                /* And on schedule: the recomputed due time of this seq. */
                OwTimestamp due = ow_schedule_at(s->schedule, p.seq);
                int64_t lateness = ow_timestamp_diff_nsec(p.timestamp, due);
                ck_assert_msg(p.timestamp >= due && lateness < SCHEDULE_LATE_NSEC,
                              "%s %s seq %u: sent %lld ns after its due time", info->file, s->name, p.seq,
                              (long long) lateness);
                min_lat = MIN(min_lat, lateness);
                max_lat = MAX(max_lat, lateness);

                /* Re-encoded from the decoded fields and the observed padding:
                 * the identical datagram. */
                uint8_t out[OW_TESTPKT_MAX_HEADER_SIZE + 64];
                ck_assert_uint_le(d->len, sizeof(out));
                ck_assert_int_eq(
                        ow_testpkt_encode(s->codec, &p, d->data + hdr, d->len - hdr, out, sizeof(out)),
                        (int) d->len);
                ck_assert_bytes_eq(out, d->data, d->len);
        }

        ck_assert_uint_eq(n_udp, 2 * PACKETS_PER_SESSION);
        ck_assert_uint_eq(cap.to.seen, PACKETS_PER_SESSION);
        ck_assert_uint_eq(cap.from.seen, PACKETS_PER_SESSION);
        printf("%s: send time - due time %lld..%lld ns, capture - send time <= %lld ns\n", info->file,
               (long long) min_lat, (long long) max_lat, (long long) max_cap);

        capture_done(&cap);
}
END_TEST

START_TEST(test_capture_tamper) {
        /* A captured packet with its last HMAC bit flipped is rejected, and
         * the sessions' keys are not interchangeable. */
        const CaptureInfo *info = &captures[_i];
        Capture cap;
        capture_load(&cap, info);

        for (size_t i = 0; i < cap.trace.n_udp; i++) {
                const PcapDatagram *d = &cap.trace.udp[i];
                Session *s = datagram_session(&cap, d), *other = s == &cap.to ? &cap.from : &cap.to;
                uint8_t buf[OW_TESTPKT_MAX_HEADER_SIZE];
                OwTestPacket p;

                memcpy(buf, d->data, d->len);
                buf[d->len - 1] ^= 0x80;
                if (info->mode == OW_MODE_OPEN) {
                        /* The last octet is the multiplier: 0x01 -> 0x81 is still valid. */
                        ck_assert_int_eq(ow_testpkt_decode(s->codec, buf, d->len, s->n_packets, &p), 0);
                        continue;
                }
                ck_assert_int_eq(ow_testpkt_decode(s->codec, buf, d->len, s->n_packets, &p), -OW_ERR_HMAC);
                ck_assert_int_eq(ow_testpkt_decode(other->codec, d->data, d->len, s->n_packets, &p),
                                 -OW_ERR_HMAC);
                /* Fewer packets announced than sent. */
                ck_assert_int_eq(ow_testpkt_decode(s->codec, d->data, d->len, 0, &p), -OW_ERR_SEQ);
                ck_assert_int_eq(ow_testpkt_decode(s->codec, d->data, d->len - 1, s->n_packets, &p),
                                 -OW_ERR_PACKET_SIZE);
        }

        capture_done(&cap);
}
END_TEST

int main(void) {
        Suite *s = suite_create("capture-test");
        TCase *tc = tcase_create("captures");
        tcase_add_loop_test(tc, test_capture_keys, 1, ELEMENTSOF(captures));
        tcase_add_loop_test(tc, test_capture_packets, 0, ELEMENTSOF(captures));
        tcase_add_loop_test(tc, test_capture_tamper, 0, ELEMENTSOF(captures));
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
