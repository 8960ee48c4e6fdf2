/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include <nettle/aes.h>
#include <nettle/cbc.h>
#include <nettle/hmac.h>

#include "ow-error.h"
#include "ow-testpkt.h"
#include "testutil.h"

static const OwMode modes[] = { OW_MODE_OPEN, OW_MODE_AUTHENTICATED, OW_MODE_ENCRYPTED };

/* PROTOCOL.md 14, synthetic vectors: control keys 2021..2f and 3031..4f. */
typedef struct Fixture {
        OwSid sid;
        uint8_t aes[OW_AES_KEY_SIZE];
        uint8_t hmac[OW_HMAC_KEY_SIZE];
} Fixture;

static Fixture fixture(void) {
        Fixture f;
        test_unhex("2872979303ab47eeac028dab3829dab2", f.sid.bytes, sizeof(f.sid.bytes));
        for (unsigned i = 0; i < sizeof(f.aes); i++)
                f.aes[i] = (uint8_t) (0x20 + i);
        for (unsigned i = 0; i < sizeof(f.hmac); i++)
                f.hmac[i] = (uint8_t) (0x30 + i);
        return f;
}

static OwTestPktCodec *codec(OwMode mode) {
        Fixture f = fixture();
        OwTestPktCodec *c = NULL;
        ck_assert_int_eq(ow_testpkt_codec_new(mode, &f.sid, f.aes, f.hmac, &c), 0);
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(ow_testpkt_codec_mode(c), mode);
        return c;
}

START_TEST(test_derive_keys) {
        Fixture f = fixture();
        OwTestKeys k;
        uint8_t want_aes[16], want_hmac[32];

        ow_testpkt_derive_keys(&f.sid, f.aes, f.hmac, &k);
        test_unhex("9a6cddbb72712d4f1d0a684bf1f29e6f", want_aes, sizeof(want_aes));
        test_unhex("11d2c3cbad43ae1b6025f6fde4ca46ca7779cf897ffd3051b9835dc8e663519d", want_hmac,
                   sizeof(want_hmac));
        ck_assert_bytes_eq(k.aes, want_aes, sizeof(want_aes));
        ck_assert_bytes_eq(k.hmac, want_hmac, sizeof(want_hmac));

        /* PROTOCOL.md 14, from mode-A.pcap: the client->server session. */
        OwSid sid;
        uint8_t aes[16], hmac[32];
        test_unhex("7f000001eeb4dc555ed3953dbd2311fe", sid.bytes, sizeof(sid.bytes));
        test_unhex("a40c9a75692f0e846669bc63103278fc", aes, sizeof(aes));
        test_unhex("e60794005ad9a1e575498ac8821d96116f27ea6d6eb2c0fff63f1ee3755e4d72", hmac, sizeof(hmac));
        ow_testpkt_derive_keys(&sid, aes, hmac, &k);
        test_unhex("dbb1b70e810f91e98e4b4c96408885c5", want_aes, sizeof(want_aes));
        test_unhex("d13c3a989972cdd5c66586605bc5e6f0eefd949e0f9598d0fdcc5c2839d7d710", want_hmac,
                   sizeof(want_hmac));
        ck_assert_bytes_eq(k.aes, want_aes, sizeof(want_aes));
        ck_assert_bytes_eq(k.hmac, want_hmac, sizeof(want_hmac));
}
END_TEST

START_TEST(test_authenticated_vector) {
        /* A-mode packet with seq 2 under the section 14 test keys: block 1 is
         * AES-ECB of 00000002 || 12 zero octets with the test AES key, the
         * HMAC is HMAC-SHA1(test HMAC key, the same 16 octets) truncated
         * (value cross-checked with Python's hmac module).
         *
         * Not to be confused with the last synthetic vector of PROTOCOL.md
         * 14, 281fc9a2..., which is HMAC(*control* HMAC key, 02 || 15 zero
         * octets): the HMAC of a Start-Sessions command, a control-channel
         * vector. */
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c = codec(OW_MODE_AUTHENTICATED);
        OwTestPacket p = { .seq = 2, .timestamp = 0xeeb4dc5612345678ULL, .errest = 0x0001 };
        uint8_t buf[OW_TESTPKT_AUTH_SIZE], want[OW_TESTPKT_AUTH_SIZE], block[16] = {}, key[16];

        ck_assert_int_eq(ow_testpkt_encode(c, &p, NULL, 0, buf, sizeof(buf)), OW_TESTPKT_AUTH_SIZE);

        struct aes128_ctx aes;
        block[3] = 2;
        test_unhex("9a6cddbb72712d4f1d0a684bf1f29e6f", key, sizeof(key));
        aes128_set_encrypt_key(&aes, key);
        aes128_encrypt(&aes, 16, want, block);
        test_unhex("eeb4dc5612345678 0001 000000000000", want + 16, 16);
        test_unhex("9202455525984f713f6bc76a22e2d09f", want + 32, 16);
        ck_assert_bytes_eq(buf, want, sizeof(want));
}
END_TEST

START_TEST(test_open_layout) {
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c = NULL;
        OwTestPacket p = { .seq = 0x01020304, .timestamp = 0xeeb4dc4fc4ebedfaULL, .errest = 0x8987 };
        uint8_t buf[20], want[20];

        /* Open mode needs no keys. */
        OwSid sid = {};
        ck_assert_int_eq(ow_testpkt_codec_new(OW_MODE_OPEN, &sid, NULL, NULL, &c), 0);
        ck_assert_int_eq(ow_testpkt_encode(c, &p, (const uint8_t *) "abcdef", 6, buf, sizeof(buf)), 20);
        test_unhex("01020304 eeb4dc4fc4ebedfa 8987 616263646566", want, sizeof(want));
        ck_assert_bytes_eq(buf, want, sizeof(want));
}
END_TEST

/* The E-mode packet built with nettle's CBC and HMAC directly, as a second
 * opinion on the codec (and the only way to make one with multiplier 0). */
static void encrypted_by_hand(uint32_t seq, OwTimestamp ts, OwErrEst e, uint8_t out[OW_TESTPKT_AUTH_SIZE]) {
        Fixture f = fixture();
        OwTestKeys k;
        struct aes128_ctx aes;
        struct hmac_sha1_ctx hmac;
        uint8_t plain[32] = {}, iv[16] = {};

        ow_testpkt_derive_keys(&f.sid, f.aes, f.hmac, &k);
        ow_put_be32(plain, seq);
        ow_put_be64(plain + 16, ts);
        ow_put_be16(plain + 24, e);
        aes128_set_encrypt_key(&aes, k.aes);
        cbc_encrypt(&aes, (nettle_cipher_func *) aes128_encrypt, 16, iv, 32, out, plain);
        hmac_sha1_set_key(&hmac, sizeof(k.hmac), k.hmac);
        hmac_sha1_update(&hmac, sizeof(plain), plain);
        hmac_sha1_digest(&hmac, 16, out + 32);
}

START_TEST(test_encrypted_layout) {
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c = codec(OW_MODE_ENCRYPTED);
        OwTestPacket p = { .seq = 7, .timestamp = 0xeeb4dc5bd59e94abULL, .errest = 0x0001 };
        uint8_t buf[OW_TESTPKT_AUTH_SIZE], want[OW_TESTPKT_AUTH_SIZE];

        ck_assert_int_eq(ow_testpkt_encode(c, &p, NULL, 0, buf, sizeof(buf)), OW_TESTPKT_AUTH_SIZE);
        encrypted_by_hand(7, 0xeeb4dc5bd59e94abULL, 0x0001, want);
        ck_assert_bytes_eq(buf, want, sizeof(want));
}
END_TEST

START_TEST(test_roundtrip) {
        /* Every mode, with no padding and with 37 octets of non-zero padding. */
        OwMode mode = modes[_i / 2];
        size_t padding_len = _i % 2 ? 37 : 0;
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c = codec(mode);
        size_t hdr = ow_testpkt_header_size(mode);
        uint8_t padding[37], buf[OW_TESTPKT_MAX_HEADER_SIZE + 37], split[sizeof(buf)];

        for (size_t i = 0; i < sizeof(padding); i++)
                padding[i] = (uint8_t) (0xa5 ^ (i * 29));

        for (uint32_t seq = 0; seq < 40; seq++) {
                OwTestPacket p = {
                        .seq = seq * 0x01010101u,
                        .timestamp = 0xeeb4dc4f00000000ULL + seq * 0x0123456789ULL,
                        .errest = (OwErrEst) (0x8000 | (seq % 64) << 8 | (1 + seq * 7 % 255)),
                }, q;

                int n = ow_testpkt_encode(c, &p, padding, padding_len, buf, sizeof(buf));
                ck_assert_int_eq(n, (int) (hdr + padding_len));
                ck_assert_uint_eq(ow_testpkt_codec_size(c, padding_len), (size_t) n);
                /* Padding is sent as given: neither encrypted nor covered. */
                ck_assert_bytes_eq(buf + hdr, padding, padding_len);

                ck_assert_int_eq(ow_testpkt_decode(c, buf, (size_t) n, UINT32_MAX, &q), 0);
                ck_assert_uint_eq(q.seq, p.seq);
                ck_assert_uint_eq(q.timestamp, p.timestamp);
                ck_assert_uint_eq(q.errest, p.errest);

                /* The two-step encoder gives the same bytes, also with the
                 * padding written into the buffer beforehand. */
                memset(split, 0xee, sizeof(split));
                memcpy(split + hdr, padding, padding_len);
                ck_assert_int_eq(
                        ow_testpkt_prepare(c, p.seq, split + hdr, padding_len, split, sizeof(split)), n);
                ck_assert_int_eq(ow_testpkt_finish(c, split, p.seq, p.timestamp, p.errest), 0);
                ck_assert_bytes_eq(split, buf, (size_t) n);

                /* A datagram longer than expected: the rest is padding. */
                ck_assert_int_eq(ow_testpkt_decode(c, buf, sizeof(buf), UINT32_MAX, &q), 0);
                ck_assert_uint_eq(q.seq, p.seq);
        }
}
END_TEST

START_TEST(test_prepare_ahead) {
        /* What the precision sender relies on: after prepare, finish only
         * touches the timestamp and error estimate in O and A mode (10
         * octets) and block 2 plus the HMAC in E mode. */
        OwMode mode = modes[_i];
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c = codec(mode);
        uint8_t a[OW_TESTPKT_MAX_HEADER_SIZE + 8], b[sizeof(a)];

        ck_assert_int_eq(ow_testpkt_prepare(c, 5, NULL, 8, a, sizeof(a)), (int) ow_testpkt_codec_size(c, 8));
        memcpy(b, a, sizeof(a));
        ck_assert_int_eq(ow_testpkt_finish(c, b, 5, 0xeeb4dc5600000001ULL, 0x0001), 0);

        size_t changed_from = SIZE_MAX, changed_to = 0;
        for (size_t i = 0; i < sizeof(a); i++)
                if (a[i] != b[i]) {
                        changed_from = MIN(changed_from, i);
                        changed_to = i + 1;
                }
        switch (mode) {
        case OW_MODE_OPEN:
                ck_assert_uint_ge(changed_from, 4);
                ck_assert_uint_le(changed_to, 14);
                break;
        case OW_MODE_AUTHENTICATED:
                ck_assert_uint_ge(changed_from, 16);
                ck_assert_uint_le(changed_to, 26);
                break;
        default:
                ck_assert_uint_ge(changed_from, 16);
                ck_assert_uint_le(changed_to, 48);
                break;
        }
        /* The zero padding was written by prepare and left alone. */
        ck_assert(ow_all_zero(b + ow_testpkt_header_size(mode), 8));
}
END_TEST

START_TEST(test_reject_short) {
        OwMode mode = modes[_i];
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c = codec(mode);
        OwTestPacket p = { .seq = 1, .timestamp = 1, .errest = 1 }, q = { .seq = 99 };
        uint8_t buf[OW_TESTPKT_MAX_HEADER_SIZE];
        size_t hdr = ow_testpkt_header_size(mode);

        ck_assert_int_eq(ow_testpkt_encode(c, &p, NULL, 0, buf, sizeof(buf)), (int) hdr);
        for (size_t len = 0; len < hdr; len++)
                ck_assert_int_eq(ow_testpkt_decode(c, buf, len, 10, &q), -OW_ERR_PACKET_SIZE);
        ck_assert_uint_eq(q.seq, 99); /* untouched on failure */
        ck_assert_int_eq(ow_testpkt_decode(c, buf, hdr, 10, &q), 0);
}
END_TEST

START_TEST(test_reject_hmac) {
        /* Any flipped bit in block 1 or in the HMAC field fails in A and E
         * mode; in E mode block 2 (timestamp, error estimate, MBZ) too. */
        OwMode mode = modes[1 + _i];
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c = codec(mode);
        OwTestPacket p = { .seq = 3, .timestamp = 0xeeb4dc5bd59e94abULL, .errest = 0x0001 }, q;
        uint8_t buf[OW_TESTPKT_AUTH_SIZE + 4];

        ck_assert_int_eq(ow_testpkt_encode(c, &p, NULL, 4, buf, sizeof(buf)), (int) sizeof(buf));
        for (size_t bit = 0; bit < 8 * OW_TESTPKT_AUTH_SIZE; bit++) {
                bool in_block2 = bit / 8 >= 16 && bit / 8 < 32;
                buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                int r = ow_testpkt_decode(c, buf, sizeof(buf), 10, &q);
                buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));

                if (mode == OW_MODE_AUTHENTICATED && in_block2)
                        /* Not authenticated in A mode: the protocol, not a
                         * bug. The change shows up in the decoded value
                         * unless it hit an MBZ octet or made multiplier 0. */
                        ck_assert(r == 0 || r == -OW_ERR_ERREST);
                else
                        ck_assert_msg(r == -OW_ERR_HMAC, "bit %zu: %d", bit, r);
        }

        /* A single bit of the timestamp: detected in E mode, silently
         * accepted (with the altered timestamp) in A mode. */
        buf[23] ^= 1;
        int r = ow_testpkt_decode(c, buf, sizeof(buf), 10, &q);
        if (mode == OW_MODE_ENCRYPTED)
                ck_assert_int_eq(r, -OW_ERR_HMAC);
        else {
                ck_assert_int_eq(r, 0);
                ck_assert_uint_eq(q.timestamp, p.timestamp ^ 1);
        }
        buf[23] ^= 1;

        /* Padding is not authenticated in either mode. */
        buf[OW_TESTPKT_AUTH_SIZE + 2] ^= 0xff;
        ck_assert_int_eq(ow_testpkt_decode(c, buf, sizeof(buf), 10, &q), 0);

        /* Keys of another session do not verify. */
        Fixture f = fixture();
        f.sid.bytes[15] ^= 1;
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *other = NULL;
        ck_assert_int_eq(ow_testpkt_codec_new(mode, &f.sid, f.aes, f.hmac, &other), 0);
        ck_assert_int_eq(ow_testpkt_decode(other, buf, sizeof(buf), 10, &q), -OW_ERR_HMAC);
}
END_TEST

START_TEST(test_reject_errest) {
        OwTestPacket q;
        uint8_t buf[OW_TESTPKT_AUTH_SIZE];

        /* O: multiplier 0 (the S bit and the scale do not help). */
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *o = codec(OW_MODE_OPEN);
        test_unhex("00000000 eeb4dc4fc4ebedfa 8000", buf, OW_TESTPKT_OPEN_SIZE);
        ck_assert_int_eq(ow_testpkt_decode(o, buf, OW_TESTPKT_OPEN_SIZE, 10, &q), -OW_ERR_ERREST);
        buf[13] = 1;
        ck_assert_int_eq(ow_testpkt_decode(o, buf, OW_TESTPKT_OPEN_SIZE, 10, &q), 0);

        /* A: the estimate is in clear and not authenticated. */
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *a = codec(OW_MODE_AUTHENTICATED);
        OwTestPacket p = { .seq = 0, .timestamp = 0xeeb4dc4fc4ebedfaULL, .errest = 0x0001 };
        ck_assert_int_eq(ow_testpkt_encode(a, &p, NULL, 0, buf, sizeof(buf)), OW_TESTPKT_AUTH_SIZE);
        buf[25] = 0;
        ck_assert_int_eq(ow_testpkt_decode(a, buf, sizeof(buf), 10, &q), -OW_ERR_ERREST);

        /* E: a correctly encrypted and authenticated packet with multiplier 0. */
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *e = codec(OW_MODE_ENCRYPTED);
        encrypted_by_hand(0, 0xeeb4dc4fc4ebedfaULL, 0x3f00, buf);
        ck_assert_int_eq(ow_testpkt_decode(e, buf, sizeof(buf), 10, &q), -OW_ERR_ERREST);
        encrypted_by_hand(0, 0xeeb4dc4fc4ebedfaULL, 0x3f01, buf);
        ck_assert_int_eq(ow_testpkt_decode(e, buf, sizeof(buf), 10, &q), 0);
        ck_assert_uint_eq(q.errest, 0x3f01);
}
END_TEST

START_TEST(test_reject_seq) {
        OwMode mode = modes[_i];
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c = codec(mode);
        uint8_t buf[OW_TESTPKT_MAX_HEADER_SIZE];
        OwTestPacket q;

        for (uint32_t seq = 8; seq <= 11; seq++) {
                OwTestPacket p = { .seq = seq, .timestamp = 1, .errest = 1 };
                int n = ow_testpkt_encode(c, &p, NULL, 0, buf, sizeof(buf));
                ck_assert_int_gt(n, 0);
                ck_assert_int_eq(ow_testpkt_decode(c, buf, (size_t) n, 10, &q), seq < 10 ? 0 : -OW_ERR_SEQ);
        }

        OwTestPacket p = { .seq = UINT32_MAX, .timestamp = 1, .errest = 1 };
        int n = ow_testpkt_encode(c, &p, NULL, 0, buf, sizeof(buf));
        ck_assert_int_eq(ow_testpkt_decode(c, buf, (size_t) n, UINT32_MAX, &q), -OW_ERR_SEQ);
        ck_assert_int_eq(ow_testpkt_decode(c, buf, (size_t) n, 0, &q), -OW_ERR_SEQ);
}
END_TEST

START_TEST(test_encode_errors) {
        OwMode mode = modes[_i];
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c = codec(mode);
        size_t hdr = ow_testpkt_header_size(mode);
        uint8_t buf[OW_TESTPKT_MAX_HEADER_SIZE + 4], copy[sizeof(buf)];
        OwTestPacket p = { .seq = 1, .timestamp = 1, .errest = 0x8100 };

        /* Never emit multiplier 0, and write nothing when refusing. */
        memset(buf, 0x5a, sizeof(buf));
        memcpy(copy, buf, sizeof(buf));
        ck_assert_int_eq(ow_testpkt_encode(c, &p, NULL, 0, buf, sizeof(buf)), -OW_ERR_ERREST);
        ck_assert_bytes_eq(buf, copy, sizeof(buf));
        ck_assert_int_eq(ow_testpkt_prepare(c, 1, NULL, 0, buf, sizeof(buf)), (int) hdr);
        memcpy(copy, buf, sizeof(buf));
        ck_assert_int_eq(ow_testpkt_finish(c, buf, 1, 1, 0x0000), -OW_ERR_ERREST);
        ck_assert_bytes_eq(buf, copy, sizeof(buf));

        p.errest = 1;
        ck_assert_int_eq(ow_testpkt_encode(c, &p, NULL, 4, buf, hdr + 3), -ENOBUFS);
        ck_assert_int_eq(ow_testpkt_encode(c, &p, NULL, 0, buf, hdr - 1), -ENOBUFS);
        ck_assert_int_eq(ow_testpkt_encode(c, &p, NULL, 4, buf, hdr + 4), (int) hdr + 4);
        ck_assert_int_eq(ow_testpkt_prepare(c, 1, NULL, OW_MAX_PADDING + 1, buf, SIZE_MAX), -OW_ERR_COUNT);
}
END_TEST

START_TEST(test_codec_new_errors) {
        Fixture f = fixture();
        OwTestPktCodec *c = NULL;

        ck_assert_uint_eq(ow_testpkt_header_size(OW_MODE_OPEN), 14);
        ck_assert_uint_eq(ow_testpkt_header_size(OW_MODE_AUTHENTICATED), 48);
        ck_assert_uint_eq(ow_testpkt_header_size(OW_MODE_ENCRYPTED), 48);
        ck_assert_uint_eq(ow_testpkt_header_size((OwMode) 3), 0);
        ck_assert_uint_eq(ow_testpkt_header_size((OwMode) 0), 0);

        ck_assert_int_eq(ow_testpkt_codec_new((OwMode) 0, &f.sid, f.aes, f.hmac, &c), -EINVAL);
        ck_assert_int_eq(ow_testpkt_codec_new((OwMode) 6, &f.sid, f.aes, f.hmac, &c), -EINVAL);
        ck_assert_int_eq(ow_testpkt_codec_new(OW_MODE_AUTHENTICATED, &f.sid, NULL, f.hmac, &c), -EINVAL);
        ck_assert_int_eq(ow_testpkt_codec_new(OW_MODE_ENCRYPTED, &f.sid, f.aes, NULL, &c), -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_ptr_null(ow_testpkt_codec_free(NULL));
}
END_TEST

START_TEST(test_codec_from_keys) {
        /* A worker gets the derived test keys, never the control keys: a
         * codec made from them is the same codec. */
        Fixture f = fixture();
        OwTestKeys keys;
        ow_testpkt_derive_keys(&f.sid, f.aes, f.hmac, &keys);

        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *a = codec(modes[m]);
                _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *b = NULL;
                uint8_t pa[OW_TESTPKT_MAX_HEADER_SIZE], pb[OW_TESTPKT_MAX_HEADER_SIZE];
                OwTestPacket p = { .seq = 7, .timestamp = 0xeeb4dc4f12345678ULL, .errest = 0x0001 }, q;

                ck_assert_int_eq(ow_testpkt_codec_new_from_keys(modes[m], &keys, &b), 0);
                int n = ow_testpkt_encode(a, &p, NULL, 0, pa, sizeof(pa));
                ck_assert_int_eq(ow_testpkt_encode(b, &p, NULL, 0, pb, sizeof(pb)), n);
                ck_assert_bytes_eq(pa, pb, (size_t) n);
                ck_assert_int_eq(ow_testpkt_decode(b, pa, (size_t) n, 8, &q), 0);
                ck_assert_uint_eq(q.seq, 7);
        }
        OwTestPktCodec *c = NULL;
        ck_assert_int_eq(ow_testpkt_codec_new_from_keys(OW_MODE_ENCRYPTED, NULL, &c), -EINVAL);
        ck_assert_int_eq(ow_testpkt_codec_new_from_keys((OwMode) 3, &keys, &c), -EINVAL);
        ck_assert_ptr_null(c);
}
END_TEST


/* The family's table: every row's fields inside its fixed part, apart from
 * each other, and what the split encoder relies on (ow-testpkt.c). */
START_TEST(test_layout_table) {
        size_t n;
        const OwTestLayout *rows = ow_testpkt_layouts(&n);

        ck_assert_uint_eq(n, 11);
        for (size_t i = 0; i < n; i++) {
                const OwTestLayout *l = &rows[i];
                struct {
                        uint8_t at, size;
                } fields[] = {
                        { l->seq, 4 },
                        { l->timestamp, 8 },
                        { l->errest, 2 },
                        { l->ssid, 2 },
                        { l->recv_timestamp, 8 },
                        { l->sender_seq, 4 },
                        { l->sender_timestamp, 8 },
                        { l->sender_errest, 2 },
                        { l->sender_ttl, 1 },
                        { l->mac == OW_TEST_MAC_NONE ? OW_TEST_NO_FIELD : l->mac_at, OW_HMAC_SIZE },
                };
                uint8_t used[OW_TESTPKT_MAX_FIXED_SIZE] = {};

                ck_assert_ptr_eq(ow_testpkt_layout(&l->format), l);
                ck_assert_uint_le(l->size, OW_TESTPKT_MAX_FIXED_SIZE);
                for (size_t k = 0; k < ELEMENTSOF(fields); k++) {
                        if (fields[k].at == OW_TEST_NO_FIELD)
                                continue;
                        ck_assert_uint_le(fields[k].at + fields[k].size, l->size);
                        for (unsigned o = fields[k].at; o < fields[k].at + fields[k].size; o++) {
                                ck_assert_msg(!used[o], "%s: octet %u twice", l->name, o);
                                used[o] = 1;
                        }
                        /* Block 1 of an encrypted layout holds seq alone, and
                         * the timestamp is not in it. */
                        if (l->cipher != OW_TEST_CIPHER_NONE && k != 0 && k != 9)
                                ck_assert_uint_ge(fields[k].at, 16);
                }
                ck_assert_uint_eq(l->format.direction == OW_TEST_REFLECTED, l->sender_seq != OW_TEST_NO_FIELD);
                ck_assert_uint_eq(l->format.security == OW_TEST_OPEN, l->cipher == OW_TEST_CIPHER_NONE);
                ck_assert_uint_eq(l->format.security == OW_TEST_OPEN, l->mac == OW_TEST_MAC_NONE);
                ck_assert_uint_eq(l->cipher_len % 16, 0);
                ck_assert_uint_le(l->cipher_len, l->mac == OW_TEST_MAC_NONE ? l->size : l->mac_at);
                ck_assert_uint_le(l->mac_len, l->mac == OW_TEST_MAC_NONE ? 0 : l->mac_at);
                /* The MAC covers plaintext the decoder has in one piece. */
                if (l->cipher != OW_TEST_CIPHER_NONE)
                        ck_assert_uint_le(l->mac_len, l->cipher_len);
                /* The reflected fields are all there or all absent. */
                if (l->format.direction == OW_TEST_REFLECTED)
                        ck_assert(l->recv_timestamp != OW_TEST_NO_FIELD && l->sender_timestamp != OW_TEST_NO_FIELD &&
                                  l->sender_errest != OW_TEST_NO_FIELD && l->sender_ttl != OW_TEST_NO_FIELD);
                else
                        ck_assert(l->recv_timestamp == OW_TEST_NO_FIELD && l->sender_timestamp == OW_TEST_NO_FIELD &&
                                  l->sender_errest == OW_TEST_NO_FIELD && l->sender_ttl == OW_TEST_NO_FIELD);
        }

        /* The OWAMP rows are today's sizes; TWAMP's sender is OWAMP's. */
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                OwTestSecurity sec = (OwTestSecurity) m;
                const OwTestLayout *o = ow_testpkt_layout(&(OwTestFormat) { OW_TEST_OWAMP, OW_TEST_SENDER, sec });
                const OwTestLayout *t = ow_testpkt_layout(&(OwTestFormat) { OW_TEST_TWAMP, OW_TEST_SENDER, sec });
                ck_assert_uint_eq(o->size, ow_testpkt_header_size(modes[m]));
                ck_assert_uint_eq(t->size, o->size);
                ck_assert_int_eq(memcmp(&t->size, &o->size, sizeof(*o) - offsetof(OwTestLayout, size)), 0);
        }
        ck_assert_ptr_null(
                ow_testpkt_layout(&(OwTestFormat) { OW_TEST_OWAMP, OW_TEST_REFLECTED, OW_TEST_OPEN }));
        ck_assert_ptr_null(
                ow_testpkt_layout(&(OwTestFormat) { OW_TEST_STAMP, OW_TEST_SENDER, OW_TEST_AUTHENTICATED }));
        ck_assert_ptr_null(ow_testpkt_layout(NULL));
}
END_TEST

static OwTestPktCodec *format_codec(OwTestProtocol p, OwTestDirection d, OwTestSecurity s) {
        Fixture fx = fixture();
        OwTestKeys keys;
        OwTestPktCodec *c = NULL;

        ow_testpkt_derive_keys(&fx.sid, fx.aes, fx.hmac, &keys);
        ck_assert_int_eq(ow_testpkt_codec_new_format(&(OwTestFormat) { p, d, s }, &keys, &c), 0);
        ck_assert_ptr_nonnull(c);
        return c;
}

static void assert_fields_eq(const OwTestFields *a, const OwTestFields *b) {
        ck_assert_uint_eq(a->seq, b->seq);
        ck_assert_uint_eq(a->timestamp, b->timestamp);
        ck_assert_uint_eq(a->errest, b->errest);
        ck_assert_uint_eq(a->ssid, b->ssid);
        ck_assert_uint_eq(a->recv_timestamp, b->recv_timestamp);
        ck_assert_uint_eq(a->sender_seq, b->sender_seq);
        ck_assert_uint_eq(a->sender_timestamp, b->sender_timestamp);
        ck_assert_uint_eq(a->sender_errest, b->sender_errest);
        ck_assert_uint_eq(a->sender_ttl, b->sender_ttl);
}

/* TWAMP-PROTOCOL.md 10.6, hand-built from RFC 8762 4.2.1 and 4.3.1. */
START_TEST(test_stamp_vectors) {
        uint8_t buf[64], want[44];
        OwTestFields f = { .seq = 1, .timestamp = UINT64_C(0xeeba7e9bd35b8130), .errest = 0x0001 }, g;
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *s =
                format_codec(OW_TEST_STAMP, OW_TEST_SENDER, OW_TEST_OPEN);
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *r =
                format_codec(OW_TEST_STAMP, OW_TEST_REFLECTED, OW_TEST_OPEN);

        ck_assert_int_eq(ow_testpkt_encode_fields(s, &f, NULL, 0, buf, sizeof(buf)), 44);
        test_unhex("00000001eeba7e9bd35b8130000100000000000000000000000000000000000000000000000000000000"
                   "0000",
                   want, sizeof(want));
        ck_assert_bytes_eq(buf, want, sizeof(want));

        f.ssid = 0x1234;
        ck_assert_int_eq(ow_testpkt_encode_fields(s, &f, NULL, 0, buf, sizeof(buf)), 44);
        want[14] = 0x12, want[15] = 0x34;
        ck_assert_bytes_eq(buf, want, sizeof(want));
        ck_assert_int_eq(ow_testpkt_decode_fields(s, buf, 44, &g), 0);
        ck_assert_uint_eq(g.ssid, 0x1234);
        ck_assert_uint_eq(g.timestamp, f.timestamp);
        ck_assert_int_eq(ow_testpkt_decode_fields(s, buf, 43, &g), -OW_ERR_PACKET_SIZE);

        OwTestFields a = {
                .seq = 1,
                .timestamp = UINT64_C(0xeeba7e9bd365cb35),
                .errest = 0x0001,
                .recv_timestamp = UINT64_C(0xeeba7e9bd3649d38),
                .sender_seq = 1,
                .sender_timestamp = UINT64_C(0xeeba7e9bd35b8130),
                .sender_errest = 0x0001,
                .sender_ttl = 255,
        };
        ck_assert_int_eq(ow_testpkt_encode_fields(r, &a, NULL, 0, buf, sizeof(buf)), 44);
        test_unhex("00000001eeba7e9bd365cb3500010000eeba7e9bd3649d3800000001eeba7e9bd35b813000010000ff"
                   "000000",
                   want, sizeof(want));
        ck_assert_bytes_eq(buf, want, sizeof(want));
        ck_assert_int_eq(ow_testpkt_decode_fields(r, buf, 44, &g), 0);
        assert_fields_eq(&g, &a);
}
END_TEST

/* TWAMP-PROTOCOL.md 5.1, mode-O's first answer. */
START_TEST(test_twamp_reflected_open_vector) {
        uint8_t buf[41], want[41];
        OwTestFields g;
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *r =
                format_codec(OW_TEST_TWAMP, OW_TEST_REFLECTED, OW_TEST_OPEN);

        test_unhex("00000000eeba7e9bd365cb3500010000eeba7e9bd3649d3800000000eeba7e9bd35b813000010000ff", want,
                   sizeof(want));
        ck_assert_int_eq(ow_testpkt_decode_fields(r, want, sizeof(want), &g), 0);
        ck_assert_uint_eq(g.seq, 0);
        ck_assert_uint_eq(g.timestamp, UINT64_C(0xeeba7e9bd365cb35));
        ck_assert_uint_eq(g.recv_timestamp, UINT64_C(0xeeba7e9bd3649d38));
        ck_assert_uint_eq(g.sender_timestamp, UINT64_C(0xeeba7e9bd35b8130));
        ck_assert_uint_eq(g.sender_errest, 0x0001);
        ck_assert_uint_eq(g.sender_ttl, 255);
        ck_assert_int_eq(ow_testpkt_prepare_fields(r, &g, NULL, 0, buf, sizeof(buf)), 41);
        ck_assert_int_eq(ow_testpkt_finish(r, buf, g.seq, g.timestamp, g.errest), 0);
        ck_assert_bytes_eq(buf, want, sizeof(want));

        /* A sender error estimate with multiplier 0 is refused both ways. */
        want[37] = 0x00;
        ck_assert_int_eq(ow_testpkt_decode_fields(r, want, sizeof(want), &g), -OW_ERR_ERREST);
        g.sender_errest = 0x0100;
        ck_assert_int_eq(ow_testpkt_prepare_fields(r, &g, NULL, 0, buf, sizeof(buf)), -OW_ERR_ERREST);
        ck_assert_int_eq(ow_testpkt_decode_fields(r, want, 40, &g), -OW_ERR_PACKET_SIZE);
}
END_TEST

/* Every row: prepare + finish is encode, decode gives the fields back,
 * the padding is kept, and in A and E every bit the MAC covers counts. */
START_TEST(test_family_roundtrip) {
        size_t n;
        const OwTestLayout *l = &ow_testpkt_layouts(&n)[_i];
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c =
                format_codec(l->format.protocol, l->format.direction, l->format.security);
        uint8_t pad[37], a[OW_TESTPKT_MAX_FIXED_SIZE + sizeof(pad)], b[sizeof(a)];
        OwTestFields f = {
                .seq = 0x01020304,
                .timestamp = UINT64_C(0xeeba7e9bd365cb35),
                .errest = 0x8101,
                .ssid = 0xbeef,
                .recv_timestamp = UINT64_C(0xeeba7e9bd3649d38),
                .sender_seq = 0x0a0b0c0d,
                .sender_timestamp = UINT64_C(0xeeba7e9bd35b8130),
                .sender_errest = 0x0042,
                .sender_ttl = 61,
        }, g;

        for (size_t i = 0; i < sizeof(pad); i++)
                pad[i] = (uint8_t) (i * 7 + 1);
        ck_assert_ptr_eq(ow_testpkt_codec_layout(c), l);
        ck_assert_uint_eq(ow_testpkt_codec_size(c, sizeof(pad)), l->size + sizeof(pad));
        int size = ow_testpkt_encode_fields(c, &f, pad, sizeof(pad), a, sizeof(a));
        ck_assert_int_eq(size, l->size + (int) sizeof(pad));
        ck_assert_int_eq(ow_testpkt_prepare_fields(c, &f, pad, sizeof(pad), b, sizeof(b)), size);
        ck_assert_int_eq(ow_testpkt_finish(c, b, f.seq, f.timestamp, f.errest), 0);
        ck_assert_bytes_eq(a, b, (size_t) size);
        ck_assert_bytes_eq(a + l->size, pad, sizeof(pad));

        ck_assert_int_eq(ow_testpkt_decode_fields(c, a, (size_t) size, &g), 0);
        if (l->ssid == OW_TEST_NO_FIELD)
                f.ssid = 0;
        if (l->format.direction == OW_TEST_SENDER) {
                f.recv_timestamp = f.sender_timestamp = 0;
                f.sender_seq = 0;
                f.sender_errest = 0;
                f.sender_ttl = OW_TTL_UNKNOWN;
        }
        assert_fields_eq(&f, &g);
        ck_assert_int_eq(ow_testpkt_decode_fields(c, a, l->size - 1, &g), -OW_ERR_PACKET_SIZE);

        if (l->mac != OW_TEST_MAC_NONE) {
                for (size_t i = 0; i < l->mac_len; i++) {
                        memcpy(b, a, (size_t) size);
                        b[i] ^= 0x80;
                        ck_assert_int_eq(ow_testpkt_decode_fields(c, b, (size_t) size, &g), -OW_ERR_HMAC);
                }
                memcpy(b, a, (size_t) size);
                b[l->mac_at + OW_HMAC_SIZE - 1] ^= 0x01;
                ck_assert_int_eq(ow_testpkt_decode_fields(c, b, (size_t) size, &g), -OW_ERR_HMAC);
        }
        if (l->cipher == OW_TEST_CIPHER_CBC)
                /* Nothing of the plaintext shows (T3's first octets are not
                 * at their place). */
                ck_assert_int_ne(memcmp(a + l->timestamp, "\xee\xba\x7e\x9b", 4), 0);
        if (l->cipher == OW_TEST_CIPHER_ECB)
                ck_assert_int_eq(memcmp(a + l->timestamp, "\xee\xba\x7e\x9b\xd3\x65\xcb\x35", 8), 0);
}
END_TEST

/* TWAMP A mode (TWAMP-PROTOCOL.md 5.2): an answer with the sender's
 * sequence number carries the sender's block 1 and HMAC. */
START_TEST(test_twamp_auth_reflected_block1) {
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *s =
                format_codec(OW_TEST_TWAMP, OW_TEST_SENDER, OW_TEST_AUTHENTICATED);
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *r =
                format_codec(OW_TEST_TWAMP, OW_TEST_REFLECTED, OW_TEST_AUTHENTICATED);
        uint8_t a[OW_TESTPKT_AUTH_SIZE], b[OW_TESTPKT_TW_REFLECTED_AUTH_SIZE];
        OwTestFields f = { .seq = 9, .timestamp = 1, .errest = 1, .sender_seq = 9, .sender_errest = 1 };

        ck_assert_int_eq(ow_testpkt_encode_fields(s, &f, NULL, 0, a, sizeof(a)), OW_TESTPKT_AUTH_SIZE);
        ck_assert_int_eq(ow_testpkt_encode_fields(r, &f, NULL, 0, b, sizeof(b)),
                         OW_TESTPKT_TW_REFLECTED_AUTH_SIZE);
        ck_assert_bytes_eq(a, b, 16);
        ck_assert_bytes_eq(a + 32, b + 96, OW_HMAC_SIZE);
}
END_TEST

START_TEST(test_format_errors) {
        Fixture fx = fixture();
        OwTestKeys keys;
        OwTestPktCodec *c = NULL;

        ow_testpkt_derive_keys(&fx.sid, fx.aes, fx.hmac, &keys);
        ck_assert_int_eq(ow_testpkt_codec_new_format(NULL, &keys, &c), -EINVAL);
        ck_assert_int_eq(ow_testpkt_codec_new_format(
                                 &(OwTestFormat) { _OW_TEST_PROTOCOL_MAX, OW_TEST_SENDER, OW_TEST_OPEN }, NULL, &c),
                         -EINVAL);
        ck_assert_int_eq(ow_testpkt_codec_new_format(
                                 &(OwTestFormat) { OW_TEST_TWAMP, _OW_TEST_DIRECTION_MAX, OW_TEST_OPEN }, NULL, &c),
                         -EINVAL);
        ck_assert_int_eq(ow_testpkt_codec_new_format(
                                 &(OwTestFormat) { OW_TEST_TWAMP, OW_TEST_SENDER, _OW_TEST_SECURITY_MAX }, &keys, &c),
                         -EINVAL);
        ck_assert_int_eq(ow_testpkt_codec_new_format(
                                 &(OwTestFormat) { OW_TEST_TWAMP, OW_TEST_REFLECTED, OW_TEST_ENCRYPTED }, NULL, &c),
                         -EINVAL);
        ck_assert_int_eq(ow_testpkt_codec_new_format(
                                 &(OwTestFormat) { OW_TEST_OWAMP, OW_TEST_REFLECTED, OW_TEST_OPEN }, NULL, &c),
                         -EOPNOTSUPP);
        ck_assert_int_eq(ow_testpkt_codec_new_format(
                                 &(OwTestFormat) { OW_TEST_STAMP, OW_TEST_SENDER, OW_TEST_AUTHENTICATED }, &keys, &c),
                         -EOPNOTSUPP);
        ck_assert_ptr_null(c);

        OwTestFields f;
        uint8_t buf[64] = {};
        ck_assert_int_eq(ow_testpkt_decode_fields(NULL, buf, sizeof(buf), &f), -EINVAL);
}
END_TEST

int main(void) {
        Suite *s = suite_create("testpkt");

        TCase *tc = tcase_create("vectors");
        tcase_add_test(tc, test_derive_keys);
        tcase_add_test(tc, test_authenticated_vector);
        tcase_add_test(tc, test_open_layout);
        tcase_add_test(tc, test_encrypted_layout);
        suite_add_tcase(s, tc);

        tc = tcase_create("roundtrip");
        tcase_add_loop_test(tc, test_roundtrip, 0, 2 * ELEMENTSOF(modes));
        tcase_add_loop_test(tc, test_prepare_ahead, 0, ELEMENTSOF(modes));
        suite_add_tcase(s, tc);

        tc = tcase_create("reject");
        tcase_add_loop_test(tc, test_reject_short, 0, ELEMENTSOF(modes));
        tcase_add_loop_test(tc, test_reject_hmac, 0, 2);
        tcase_add_test(tc, test_reject_errest);
        tcase_add_loop_test(tc, test_reject_seq, 0, ELEMENTSOF(modes));
        tcase_add_loop_test(tc, test_encode_errors, 0, ELEMENTSOF(modes));
        tcase_add_test(tc, test_codec_new_errors);
        tcase_add_test(tc, test_codec_from_keys);
        suite_add_tcase(s, tc);

        size_t n_layouts;
        (void) ow_testpkt_layouts(&n_layouts);
        tc = tcase_create("family");
        tcase_add_test(tc, test_layout_table);
        tcase_add_test(tc, test_stamp_vectors);
        tcase_add_test(tc, test_twamp_reflected_open_vector);
        tcase_add_loop_test(tc, test_family_roundtrip, 0, (int) n_layouts);
        tcase_add_test(tc, test_twamp_auth_reflected_block1);
        tcase_add_test(tc, test_format_errors);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
