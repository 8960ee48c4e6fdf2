/* SPDX-License-Identifier: Apache-2.0 */

/*
 * STAMP (RFC 8762) and its TLVs (RFC 8972), ow-stamp.h: the authenticated
 * base packets and every TLV type byte for byte against the layouts of the
 * RFCs' figures (written out by hand below, field by field), the
 * reflector's answer (what it fills in, what it flags, never a byte more
 * than it got), and each validation rule with its own error.
 *
 * The HMAC-SHA-256 values use the key 00 01 .. 1f and were computed
 * independently (Python's hmac and hashlib, TWAMP-PROTOCOL.md 10.6, 11.4).
 */

#include <errno.h>
#include <string.h>

#include "macro.h"
#include "ow-error.h"
#include "ow-stamp.h"
#include "ow-wire.h"
#include "testutil.h"

static uint8_t key[32];

static void setup_key(void) {
        for (size_t i = 0; i < sizeof(key); i++)
                key[i] = (uint8_t) i;
}

/* Recompute the base HMAC of an authenticated packet after an edit. */
static void reseal(uint8_t *buf) {
        OwBytes text = { buf, OW_STAMP_AUTH_HMAC_OFFSET };
        ck_assert_int_eq(ow_hmac_sha256(key, sizeof(key), &text, 1, buf + OW_STAMP_AUTH_HMAC_OFFSET, 16), 0);
}

/* The hex (spaces allowed) as octets; returns how many. */
static size_t unhex(const char *hex, uint8_t *out, size_t size) {
        size_t digits = 0;

        for (const char *p = hex; *p; p++)
                digits += *p != ' ';
        ck_assert_uint_eq(digits % 2, 0);
        ck_assert_uint_le(digits / 2, size);
        test_unhex(hex, out, digits / 2);
        return digits / 2;
}

static void assert_octets(const uint8_t *p, size_t n, const char *hex) {
        uint8_t want[512];
        size_t m = unhex(hex, want, sizeof(want));

        ck_assert_uint_eq(n, m);
        ck_assert_bytes_eq(p, want, n);
}

/* T1, T2, T3 of the reference's mode-O capture, first exchange. */
#define T1 UINT64_C(0xeeba7e9bd35b8130)
#define T2 UINT64_C(0xeeba7e9bd3649d38)
#define T3 UINT64_C(0xeeba7e9bd365cb35)

/* --- HMAC-SHA-256 (ow-crypto.h) ------------------------------------------- */

/* RFC 4231 4.3 (test case 2), whole and in pieces; truncation; bounds. */
START_TEST(test_hmac_sha256) {
        static const char data[] = "what do ya want for nothing?";
        const uint8_t *jefe = (const uint8_t *) "Jefe";
        OwBytes whole = { data, strlen(data) };
        OwBytes pieces[3] = { { data, 4 }, { NULL, 0 }, { data + 4, strlen(data) - 4 } };
        uint8_t mac[OW_HMAC_SHA256_SIZE], mac2[OW_HMAC_SHA256_SIZE], big[OW_HMAC_SHA256_KEY_MAX + 1] = {};

        ck_assert_int_eq(ow_hmac_sha256(jefe, 4, &whole, 1, mac, sizeof(mac)), 0);
        assert_octets(mac, sizeof(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        ck_assert_int_eq(ow_hmac_sha256(jefe, 4, pieces, 3, mac2, sizeof(mac2)), 0);
        ck_assert_bytes_eq(mac, mac2, sizeof(mac));
        ck_assert_int_eq(ow_hmac_sha256(jefe, 4, &whole, 1, mac2, 16), 0);
        ck_assert_bytes_eq(mac, mac2, 16);
        ck_assert_int_eq(ow_hmac_sha256_verify(jefe, 4, &whole, 1, mac, 16), 0);
        mac[15] ^= 1;
        ck_assert_int_eq(ow_hmac_sha256_verify(jefe, 4, &whole, 1, mac, 16), -OW_ERR_HMAC);
        ck_assert_int_eq(ow_hmac_sha256(jefe, 0, &whole, 1, mac, 16), -EINVAL);
        ck_assert_int_eq(ow_hmac_sha256(big, sizeof(big), &whole, 1, mac, 16), -EINVAL);
        ck_assert_int_eq(ow_hmac_sha256(big, OW_HMAC_SHA256_KEY_MAX, &whole, 1, mac, 16), 0);
        ck_assert_int_eq(ow_hmac_sha256(jefe, 4, &whole, 1, mac, 0), -EINVAL);
        ck_assert_int_eq(ow_hmac_sha256(jefe, 4, &whole, 1, mac, 33), -EINVAL);
        ck_assert_int_eq(ow_hmac_sha256(jefe, 4, NULL, 1, mac, 16), -EINVAL);
}
END_TEST

/* --- Authenticated base packets, RFC 8762 4.2.2 / 4.3.2 ------------------ */

/* Figure 4 of RFC 8762 with Sequence Number 1, T1, Error Estimate 0x0001
 * (S 0, Z 0, Scale 0, Multiplier 1), SSID 0. */
#define AUTH_SENDER                                                         \
        "00000001 000000000000000000000000 eeba7e9bd35b8130 0001 0000"      \
        " 0000000000000000000000000000000000000000000000000000000000000000" \
        " 0000000000000000000000000000000000000000000000000000000000000000" \
        " 00000000"                                                         \
        " a238619bd4a25f30fd6607b91361146f"

/* Figure 6 of RFC 8762: the answer, T2 and T3, TTL 255. */
#define AUTH_REFLECTOR                                                          \
        "00000001 000000000000000000000000 eeba7e9bd365cb35 0001 0000 00000000" \
        " eeba7e9bd3649d38 0000000000000000"                                    \
        " 00000001 000000000000000000000000"                                    \
        " eeba7e9bd35b8130 0001 000000000000"                                   \
        " ff 000000000000000000000000000000"                                    \
        " b19c64627f97bf4cd2666e8d122ff3b5"

START_TEST(test_auth_sender) {
        OwStampAuthSender m = { .seq = 1, .timestamp = T1, .err = OW_ERREST_UNSYNC }, back = {};
        uint8_t buf[OW_STAMP_AUTH_BASE_SIZE + 8];

        setup_key();
        ck_assert_int_eq(ow_stamp_auth_sender_encode(&m, key, sizeof(key), buf, sizeof(buf)), 112);
        assert_octets(buf, 112, AUTH_SENDER);
        ck_assert_int_eq(ow_stamp_auth_sender_decode(buf, 112, key, sizeof(key), &back), 0);
        ck_assert_uint_eq(back.seq, 1);
        ck_assert_uint_eq(back.timestamp, T1);
        ck_assert_uint_eq(back.err, 1);
        /* TLVs may follow: not part of the base HMAC. */
        memset(buf + 112, 0xee, 8);
        ck_assert_int_eq(ow_stamp_auth_sender_decode(buf, 120, key, sizeof(key), &back), 0);

        /* The SSID (RFC 8972 3) is covered by the HMAC. */
        m.ssid = 0x1234;
        ck_assert_int_eq(ow_stamp_auth_sender_encode(&m, key, sizeof(key), buf, sizeof(buf)), 112);
        ck_assert_uint_eq(ow_get_be16(buf + 26), 0x1234);
        ck_assert_int_eq(ow_stamp_auth_sender_decode(buf, 112, key, sizeof(key), &back), 0);
        ck_assert_uint_eq(back.ssid, 0x1234);

        /* The rules, one error each, in their order. */
        back.seq = 77;
        ck_assert_int_eq(ow_stamp_auth_sender_decode(buf, 111, key, sizeof(key), &back),
                         -OW_ERR_PACKET_SIZE);
        buf[5] ^= 1; /* an MBZ octet: still authenticated */
        ck_assert_int_eq(ow_stamp_auth_sender_decode(buf, 112, key, sizeof(key), &back), -OW_ERR_HMAC);
        buf[5] ^= 1;
        ck_assert_int_eq(ow_stamp_auth_sender_decode(buf, 112, key, 31, &back), -OW_ERR_HMAC);
        ow_put_be16(buf + 24, 0x0100); /* multiplier 0, sealed again */
        reseal(buf);
        ck_assert_int_eq(ow_stamp_auth_sender_decode(buf, 112, key, sizeof(key), &back), -OW_ERR_ERREST);
        ck_assert_uint_eq(back.seq, 77);
        m.err = 0x0100;
        ck_assert_int_eq(ow_stamp_auth_sender_encode(&m, key, sizeof(key), buf, sizeof(buf)),
                         -OW_ERR_ERREST);
        m.err = 1;
        ck_assert_int_eq(ow_stamp_auth_sender_encode(&m, key, sizeof(key), buf, 111), -ENOBUFS);
        ck_assert_int_eq(ow_stamp_auth_sender_encode(&m, key, 0, buf, sizeof(buf)), -EINVAL);
        ck_assert_int_eq(ow_stamp_auth_sender_encode(&m, key, OW_HMAC_SHA256_KEY_MAX + 1, buf, sizeof(buf)),
                         -EINVAL);
        ck_assert_int_eq(ow_stamp_auth_sender_decode(NULL, 112, key, sizeof(key), &back), -EINVAL);
}
END_TEST

START_TEST(test_auth_reflector) {
        OwStampAuthReflector m = { .seq = 1,
                                   .timestamp = T3,
                                   .err = OW_ERREST_UNSYNC,
                                   .receive_timestamp = T2,
                                   .sender_seq = 1,
                                   .sender_timestamp = T1,
                                   .sender_err = OW_ERREST_UNSYNC,
                                   .sender_ttl = 255 },
                             back = {};
        uint8_t buf[OW_STAMP_AUTH_BASE_SIZE];

        setup_key();
        ck_assert_int_eq(ow_stamp_auth_reflector_encode(&m, key, sizeof(key), buf, sizeof(buf)), 112);
        assert_octets(buf, 112, AUTH_REFLECTOR);
        ck_assert_int_eq(ow_stamp_auth_reflector_decode(buf, 112, key, sizeof(key), &back), 0);
        ck_assert_uint_eq(back.timestamp, T3);
        ck_assert_uint_eq(back.receive_timestamp, T2);
        ck_assert_uint_eq(back.sender_timestamp, T1);
        ck_assert_uint_eq(back.sender_seq, 1);
        ck_assert_uint_eq(back.sender_ttl, 255);

        back.seq = 77;
        ck_assert_int_eq(ow_stamp_auth_reflector_decode(buf, 100, key, sizeof(key), &back),
                         -OW_ERR_PACKET_SIZE);
        buf[80] = 64; /* the TTL is authenticated too */
        ck_assert_int_eq(ow_stamp_auth_reflector_decode(buf, 112, key, sizeof(key), &back), -OW_ERR_HMAC);
        ow_put_be16(buf + 72, 0x0200); /* the sender's error estimate, multiplier 0 */
        reseal(buf);
        ck_assert_int_eq(ow_stamp_auth_reflector_decode(buf, 112, key, sizeof(key), &back), -OW_ERR_ERREST);
        ow_put_be16(buf + 72, 1);
        ow_put_be16(buf + 24, 0);
        reseal(buf);
        ck_assert_int_eq(ow_stamp_auth_reflector_decode(buf, 112, key, sizeof(key), &back), -OW_ERR_ERREST);
        ck_assert_uint_eq(back.seq, 77);
        ow_put_be16(buf + 24, 1);
        reseal(buf);
        ck_assert_int_eq(ow_stamp_auth_reflector_decode(buf, 112, key, sizeof(key), &back), 0);
        ck_assert_uint_eq(back.sender_ttl, 64);
}
END_TEST

/* No answer larger than the packet (TWAMP-PROTOCOL.md 10.5). */
START_TEST(test_answer_size) {
        size_t n = 0;

        ck_assert_int_eq(ow_stamp_answer_size(44, OW_STAMP_BASE_SIZE, &n), 0);
        ck_assert_uint_eq(n, 44);
        ck_assert_int_eq(ow_stamp_answer_size(200, OW_STAMP_AUTH_BASE_SIZE, &n), 0);
        ck_assert_uint_eq(n, 200);
        n = 9;
        ck_assert_int_eq(ow_stamp_answer_size(14, 41, &n), -OW_ERR_STAMP_AMPLIFY); /* TWAMP-Light probe */
        ck_assert_int_eq(ow_stamp_answer_size(43, OW_STAMP_BASE_SIZE, &n), -OW_ERR_STAMP_AMPLIFY);
        ck_assert_int_eq(ow_stamp_answer_size(111, OW_STAMP_AUTH_BASE_SIZE, &n), -OW_ERR_STAMP_AMPLIFY);
        ck_assert_uint_eq(n, 9);
        ck_assert_int_eq(ow_stamp_answer_size(44, 44, NULL), -EINVAL);
}
END_TEST

/* --- TLVs, sender side, RFC 8972 4.1-4.8 ---------------------------------- */

/* Each builder against its figure: Flags (U set) | Type | Length | Value. */
START_TEST(test_tlv_builders) {
        static const uint8_t location_subs[] = { OW_STAMP_SUB_SRC_IPV4, OW_STAMP_SUB_DST_IPV4 };
        static const uint8_t fill[4] = { 0xa5, 0x5a, 0x01, 0x02 };
        uint8_t area[256];
        size_t off = 0;

        /* 4.1 Extra Padding, 8 zero octets. */
        ck_assert_int_eq(ow_stamp_put_extra_padding(area, sizeof(area), &off, NULL, 8), 12);
        assert_octets(area, off, "80 01 0008 0000000000000000");
        off = 0;
        ck_assert_int_eq(ow_stamp_put_extra_padding(area, sizeof(area), &off, fill, 4), 8);
        assert_octets(area, off, "80 01 0004 a55a0102");

        /* 4.2 Location: both ports zero, then one empty sub-TLV per address
         * asked for (Source IPv4 4, Destination IPv4 3). */
        off = 0;
        ck_assert_int_eq(ow_stamp_put_location(area, sizeof(area), &off, location_subs, 2), 24);
        assert_octets(area, off, "80 02 0014 0000 0000  80 04 0004 00000000  80 03 0004 00000000");

        /* 4.3 Timestamp Information: the reflector's four octets, zero. */
        off = 0;
        ck_assert_int_eq(ow_stamp_put_timestamp_info(area, sizeof(area), &off), 8);
        assert_octets(area, off, "80 03 0004 00 00 00 00");

        /* 4.4 Class of Service, DSCP1 = EF (46 = 101110b): 1011 1000 .... */
        off = 0;
        ck_assert_int_eq(ow_stamp_put_cos(area, sizeof(area), &off, 46), 8);
        assert_octets(area, off, "80 04 0004 b8 00 0000");

        /* 4.5 Direct Measurement: S_TxC 5, R_RxC and R_TxC zero. */
        off = 0;
        ck_assert_int_eq(ow_stamp_put_direct(area, sizeof(area), &off, 5), 16);
        assert_octets(area, off, "80 05 000c 00000005 00000000 00000000");

        /* 4.6 Access Report: ID 1 (4 bits), Resv, Return Code 1, Reserved. */
        off = 0;
        ck_assert_int_eq(ow_stamp_put_access_report(area, sizeof(area), &off, 1, 1), 8);
        assert_octets(area, off, "80 06 0004 10 01 0000");

        /* 4.7 Follow-Up Telemetry: Sequence Number, Follow-Up Timestamp,
         * Timestamp Mode, Reserved: zeros from the sender. */
        off = 0;
        ck_assert_int_eq(ow_stamp_put_follow_up(area, sizeof(area), &off), 20);
        assert_octets(area, off, "80 07 0010 00000000 0000000000000000 00 000000");

        /* 4.8 HMAC: over the Sequence Number (1) and the TLVs before it. */
        setup_key();
        off = 0;
        ck_assert_int_eq(ow_stamp_put_extra_padding(area, sizeof(area), &off, NULL, 4), 8);
        ck_assert_int_eq(ow_stamp_put_hmac(area, sizeof(area), &off, 1, key, sizeof(key)), 20);
        assert_octets(area, off, "80 01 0004 00000000  80 08 0010 c098f3f41017f397710f875e6fae3d52");
        ck_assert_int_eq(ow_stamp_tlvs_check(area, off), 2);

        /* Any other type, its value as given. */
        off = 0;
        ck_assert_int_eq(
                ow_stamp_put_tlv(area, sizeof(area), &off, 200, (const uint8_t *) "\xde\xad\xbe\xef", 4), 8);
        assert_octets(area, off, "80 c8 0004 deadbeef");

        /* Room, arguments. */
        off = 250;
        ck_assert_int_eq(ow_stamp_put_extra_padding(area, sizeof(area), &off, NULL, 3), -ENOBUFS);
        ck_assert_int_eq(ow_stamp_put_follow_up(area, sizeof(area), &off), -ENOBUFS);
        ck_assert_uint_eq(off, 250);
        off = 0;
        ck_assert_int_eq(ow_stamp_put_cos(area, sizeof(area), &off, 64), -EINVAL);
        ck_assert_int_eq(ow_stamp_put_access_report(area, sizeof(area), &off, 16, 0), -EINVAL);
        ck_assert_int_eq(ow_stamp_put_location(area, sizeof(area), &off, (const uint8_t[]){ 9 }, 1),
                         -EINVAL);
        ck_assert_int_eq(ow_stamp_put_extra_padding(area, sizeof(area), &off, NULL, 65536), -ENOBUFS);
        ck_assert_int_eq(ow_stamp_put_hmac(area, sizeof(area), &off, 1, key, 0), -EINVAL);
        ck_assert_uint_eq(off, 0);
}
END_TEST

/* The walker and the rules: one error per rule. */
typedef struct TlvCase {
        const char *hex;
        int error; /* of ow_stamp_tlvs_check() */
} TlvCase;

static const TlvCase tlv_cases[] = {
        { "", 0 },
        { "80 01 0000", 1 },                                   /* empty Extra Padding */
        { "80 c8 0002 abcd  00 00 0000", 2 },                  /* unknown and reserved types: no rules */
        { "80 01", -OW_ERR_STAMP_TLV_OVERRUN },                /* half a header */
        { "80 01 0005 00000000", -OW_ERR_STAMP_TLV_OVERRUN },  /* a value past the end */
        { "80 02 0003 000000", -OW_ERR_STAMP_TLV_LENGTH },     /* Location without its ports */
        { "80 03 0005 0000000000", -OW_ERR_STAMP_TLV_LENGTH }, /* Timestamp Information */
        { "80 04 0003 b80000", -OW_ERR_STAMP_TLV_LENGTH },     /* Class of Service */
        { "80 05 0008 0000000500000000", -OW_ERR_STAMP_TLV_LENGTH },         /* Direct Measurement */
        { "80 06 0000", -OW_ERR_STAMP_TLV_LENGTH },                          /* Access Report */
        { "80 07 000c 000000000000000000000000", -OW_ERR_STAMP_TLV_LENGTH }, /* Follow-Up */
        { "80 08 0004 00000000", -OW_ERR_STAMP_TLV_LENGTH },                 /* HMAC */
        { "80 02 0008 0000 0000 80 04 0008", -OW_ERR_STAMP_SUB_TLV },        /* a sub-TLV past its TLV */
        { "80 02 000c 0000 0000 80 04 0004 c0000201 00", -OW_ERR_STAMP_TLV_OVERRUN },
        { "80 02 000c 0000 0000 80 05 0004 00000000", -OW_ERR_STAMP_SUB_TLV }, /* IPv6 in 4 octets */
        { "80 08 0010 00000000000000000000000000000000 80 01 0000", -OW_ERR_STAMP_TLV_ORDER },
        { "c0 01 0000", -OW_ERR_STAMP_TLV_FLAGS }, /* M from a sender */
        { "a0 01 0000", -OW_ERR_STAMP_TLV_FLAGS }, /* I from a sender */
        { "9f 01 0000", 1 },                       /* reserved flag bits: ignored */
};

START_TEST(test_tlv_rules) {
        const TlvCase *c = &tlv_cases[_i];
        uint8_t area[64];
        size_t n = unhex(c->hex, area, sizeof(area));

        ck_assert_int_eq(ow_stamp_tlvs_check(area, n), c->error);
}
END_TEST

START_TEST(test_tlv_walk) {
        uint8_t area[64];
        size_t n = unhex("80 01 0002 abcd  00 c8 0000  80 03 0004 01020304", area, sizeof(area)), off = 0;
        OwStampTlv t = {};
        OwStampTimestampInfo ti;
        OwStampCos cos;

        ck_assert_int_eq(ow_stamp_tlv_next(area, n, &off, &t), 1);
        ck_assert_uint_eq(t.flags, 0x80);
        ck_assert_uint_eq(t.type, 1);
        ck_assert_uint_eq(t.length, 2);
        ck_assert_uint_eq(t.offset, 0);
        ck_assert_ptr_eq(t.value, area + 4);
        ck_assert_uint_eq(off, 6);
        ck_assert_int_eq(ow_stamp_tlv_next(area, n, &off, &t), 1);
        ck_assert_uint_eq(t.type, 200);
        ck_assert_uint_eq(t.length, 0);
        ck_assert_int_eq(ow_stamp_tlv_next(area, n, &off, &t), 1);
        ck_assert_int_eq(ow_stamp_timestamp_info_get(&t, &ti), 0);
        ck_assert_uint_eq(ti.sync_in, 1);
        ck_assert_uint_eq(ti.method_out, 4);
        ck_assert_int_eq(ow_stamp_cos_get(&t, &cos), -EINVAL); /* not a Class of Service */
        ck_assert_int_eq(ow_stamp_tlv_next(area, n, &off, &t), 0);
        ck_assert_uint_eq(off, n);
        /* A value past the end: nothing moves. */
        off = 0;
        ck_assert_int_eq(ow_stamp_tlv_next(area, 5, &off, &t), -OW_ERR_STAMP_TLV_OVERRUN);
        ck_assert_uint_eq(off, 0);
        ck_assert_uint_eq(t.type, 3);
        ck_assert_int_eq(ow_stamp_tlv_next(NULL, 5, &off, &t), -EINVAL);
}
END_TEST

/* --- The reflector's answer ------------------------------------------------ */

static OwStampReflectInfo reflector_info(void) {
        OwStampReflectInfo info = {
                .src_port = 40000,
                .dst_port = OW_STAMP_PORT,
                .ipvn = 4,
                .src_addr = { 192, 0, 2, 1 },
                .dst_addr = { 198, 51, 100, 7 },
                .dscp = 46,
                .ecn = 1,
                .clock = { OW_STAMP_SYNC_NTP, OW_STAMP_TS_SW_LOCAL, OW_STAMP_SYNC_NTP,
                           OW_STAMP_TS_SW_LOCAL },
                .rx_count = 4,
                .tx_count = 3,
                .have_previous = true,
                .previous = { .seq = 7, .timestamp = T3, .mode = OW_STAMP_TS_SW_LOCAL },
                .sender_seq = 1,
                .reflector_seq = 9,
        };
        return info;
}

/* Answer `in` and compare with `want`: the same length, always. */
static OwStampReflectResult reflect(const char *in_hex, const OwStampReflectInfo *info,
                                    const char *want_hex) {
        uint8_t in[256], out[256];
        size_t n = unhex(in_hex, in, sizeof(in));
        OwStampReflectResult res = {};

        memset(out, 0xcc, sizeof(out));
        ck_assert_int_eq(ow_stamp_reflect_tlvs(in, n, out, sizeof(out), info, &res), (int) n);
        assert_octets(out, n, want_hex);
        ck_assert_uint_eq(out[n], 0xcc); /* not an octet more */
        return res;
}

START_TEST(test_reflect_known) {
        OwStampReflectInfo info = reflector_info();
        OwStampReflectResult res;

        /* Extra Padding and Access Report: copied, U cleared. */
        res = reflect("80 01 0004 a55a0102  80 06 0004 10 01 0000", &info,
                      "00 01 0004 a55a0102  00 06 0004 10 01 0000");
        ck_assert_uint_eq(res.n_tlvs, 2);
        ck_assert_uint_eq(res.n_unknown, 0);

        /* Location: the ports and addresses of the received packet. */
        reflect("80 02 0014 0000 0000  80 04 0004 00000000  80 03 0004 00000000", &info,
                "00 02 0014 035e 9c40  00 04 0004 c0000201  00 03 0004 c6336407");
        /* ... and what it cannot fill (an IPv6 address of an IPv4 packet, an
         * EUI-64, no MAC known) gets U and stays as sent. */
        reflect("80 02 0024 0000 0000  80 06 0010 00000000000000000000000000000000  80 01 0008 "
                "0000000000000000",
                &info,
                "00 02 0024 035e 9c40  80 06 0010 00000000000000000000000000000000  80 01 0008 "
                "0000000000000000");
        info.have_src_mac = true;
        memcpy(info.src_mac, "\x02\x00\x5e\x10\x00\x01", 6);
        reflect("80 02 0010 0000 0000  80 01 0008 0000000000000000", &info,
                "00 02 0010 035e 9c40  00 01 0008 02005e1000010000");

        /* Timestamp Information: the reflector's clock at T2 and at T3. */
        reflect("80 03 0004 00000000", &info, "00 03 0004 01 02 01 02");

        /* Class of Service: DSCP1 EF kept, DSCP2 EF and ECN 01 as received,
         * RP 0: 101110 10|1110 01 00 -> ba e4. */
        res = reflect("80 04 0004 b8 00 0000", &info, "00 04 0004 ba e4 0000");
        ck_assert(res.dscp1_requested);
        ck_assert_uint_eq(res.dscp1, 46);
        /* Refused by policy: RP 1, received CS1 (8 = 001000), ECN 0. */
        info.dscp1_refused = true;
        info.dscp = 8;
        info.ecn = 0;
        res = reflect("80 04 0004 b8 00 0000", &info, "00 04 0004 b8 81 0000");
        ck_assert(!res.dscp1_requested);

        /* Direct Measurement: S_TxC kept, R_RxC 4, R_TxC 3. */
        reflect("80 05 000c 00000005 00000000 00000000", &info, "00 05 000c 00000005 00000004 00000003");

        /* Follow-Up Telemetry: the previous answer, or zeros. */
        reflect("80 07 0010 00000000 0000000000000000 00 000000", &info,
                "00 07 0010 00000007 eeba7e9bd365cb35 02 000000");
        info.have_previous = false;
        reflect("80 07 0010 ffffffff ffffffffffffffff ff ffffff", &info,
                "00 07 0010 00000000 0000000000000000 00 000000");
}
END_TEST

START_TEST(test_reflect_unknown_and_malformed) {
        OwStampReflectInfo info = reflector_info();
        OwStampReflectResult res;

        /* Unknown types (the reserved 0 too): copied with U, never dropped,
         * and the ones after them still processed. */
        res = reflect("80 c8 0004 deadbeef  00 00 0000  80 03 0004 00000000", &info,
                      "80 c8 0004 deadbeef  80 00 0000  00 03 0004 01020102");
        ck_assert_uint_eq(res.n_tlvs, 3);
        ck_assert_uint_eq(res.n_unknown, 2);
        ck_assert(!res.malformed);

        /* A known type with a wrong length: M, and nothing after it is
         * processed (copied as received, U still set). */
        res = reflect("80 03 0004 00000000  80 04 0005 b800000000  80 03 0004 00000000", &info,
                      "00 03 0004 01020102  40 04 0005 b800000000  80 03 0004 00000000");
        ck_assert(res.malformed);
        ck_assert_uint_eq(res.n_tlvs, 2);
        /* A malformed sub-TLV makes its Location malformed. */
        reflect("80 02 000c 0000 0000 80 05 0004 00000000", &info,
                "40 02 000c 0000 0000 80 05 0004 00000000");
        /* A value past the end of the packet: M; an unknown one also U. */
        res = reflect("80 01 0002 0000  80 01 0010 00000000", &info, "00 01 0002 0000  40 01 0010 00000000");
        ck_assert(res.malformed);
        reflect("00 c9 0010 0000", &info, "c0 c9 0010 0000");
        /* A fragment shorter than a header: as it came. */
        res = reflect("80 01 0000 80 01", &info, "00 01 0000 80 01");
        ck_assert(res.malformed);
        /* The HMAC TLV not last: M. */
        reflect("80 08 0010 00000000000000000000000000000000 80 01 0000", &info,
                "40 08 0010 00000000000000000000000000000000 80 01 0000");
        /* In place: refused (the HMAC TLV is checked against what came). */
        {
                uint8_t buf[8] = { 0x80, 1, 0, 4 };
                ck_assert_int_eq(ow_stamp_reflect_tlvs(buf, 8, buf, 8, &info, &res), -EINVAL);
                ck_assert_int_eq(ow_stamp_reflect_tlvs(buf, 8, buf + 4, 4, &info, &res), -ENOBUFS);
        }
        /* Empty area: nothing. */
        ck_assert_int_eq(ow_stamp_reflect_tlvs(NULL, 0, NULL, 0, &info, &res), 0);
        {
                uint8_t in[8] = { 0x80, 1, 0, 4 }, out[7];
                ck_assert_int_eq(ow_stamp_reflect_tlvs(in, 8, out, sizeof(out), &info, &res), -ENOBUFS);
        }
}
END_TEST

START_TEST(test_reflect_hmac) {
        OwStampReflectInfo info = reflector_info();
        OwStampReflectResult res;
        uint8_t area[64], out[64];
        size_t off = 0;
        OwStampTlv t;

        setup_key();
        info.key = key;
        info.key_len = sizeof(key);
        /* The sender's (sequence 1) verifies; the answer's covers the
         * reflector's Sequence Number (9) and its own TLVs: flags 0. */
        res = reflect("80 01 0004 00000000  80 08 0010 c098f3f41017f397710f875e6fae3d52", &info,
                      "00 01 0004 00000000  00 08 0010 1bc9c2a2057fce0e59e6c227da95357b");
        ck_assert(!res.hmac_failed);
        /* A wrong one: I, and the answer sealed all the same. */
        res = reflect("80 01 0004 00000000  80 08 0010 c098f3f41017f397710f875e6fae3d53", &info,
                      "00 01 0004 00000000  20 08 0010 1bc9c2a2057fce0e59e6c227da95357b");
        ck_assert(res.hmac_failed);
        /* Another sequence number than the one it was made for: I. */
        info.sender_seq = 2;
        res = reflect("80 01 0004 00000000  80 08 0010 c098f3f41017f397710f875e6fae3d52", &info,
                      "00 01 0004 00000000  20 08 0010 1bc9c2a2057fce0e59e6c227da95357b");
        ck_assert(res.hmac_failed);
        /* No key: not understood, copied with U. */
        info.key = NULL;
        res = reflect("80 01 0004 00000000  80 08 0010 c098f3f41017f397710f875e6fae3d52", &info,
                      "00 01 0004 00000000  80 08 0010 c098f3f41017f397710f875e6fae3d52");
        ck_assert_uint_eq(res.n_unknown, 1);

        /* The sender checks the answer's. */
        info.key = key;
        info.sender_seq = 1;
        ck_assert_int_eq(ow_stamp_put_extra_padding(area, sizeof(area), &off, NULL, 4), 8);
        ck_assert_int_eq(ow_stamp_put_hmac(area, sizeof(area), &off, 1, key, sizeof(key)), 20);
        ck_assert_int_eq(ow_stamp_reflect_tlvs(area, off, out, sizeof(out), &info, &res), 28);
        off = 8;
        ck_assert_int_eq(ow_stamp_tlv_next(out, 28, &off, &t), 1);
        ck_assert_int_eq(ow_stamp_hmac_tlv_verify(out, &t, 9, key, sizeof(key)), 0);
        ck_assert_int_eq(ow_stamp_hmac_tlv_verify(out, &t, 1, key, sizeof(key)), -OW_ERR_HMAC);
        out[5] ^= 1; /* a padding octet the HMAC covers */
        ck_assert_int_eq(ow_stamp_hmac_tlv_verify(out, &t, 9, key, sizeof(key)), -OW_ERR_HMAC);
}
END_TEST

/* The sender reads back what the reflector filled in. */
START_TEST(test_tlv_readers) {
        OwStampReflectInfo info = reflector_info();
        OwStampReflectResult res;
        static const uint8_t subs[] = { OW_STAMP_SUB_SRC_IPV4 };
        uint8_t area[128], out[128];
        size_t off = 0, n;
        OwStampTlv t;
        OwStampLocation loc;
        OwStampCos cos;
        OwStampDirect dm;
        OwStampAccessReport ar;
        OwStampFollowUp fu;
        OwStampTimestampInfo ti;

        ck_assert_int_gt(ow_stamp_put_location(area, sizeof(area), &off, subs, 1), 0);
        ck_assert_int_gt(ow_stamp_put_timestamp_info(area, sizeof(area), &off), 0);
        ck_assert_int_gt(ow_stamp_put_cos(area, sizeof(area), &off, 10), 0);
        ck_assert_int_gt(ow_stamp_put_direct(area, sizeof(area), &off, 5), 0);
        ck_assert_int_gt(ow_stamp_put_access_report(area, sizeof(area), &off, 2, 7), 0);
        ck_assert_int_gt(ow_stamp_put_follow_up(area, sizeof(area), &off), 0);
        ck_assert_int_eq(ow_stamp_tlvs_check(area, off), 6);
        n = off;
        ck_assert_int_eq(ow_stamp_reflect_tlvs(area, n, out, sizeof(out), &info, &res), (int) n);
        ck_assert_uint_eq(res.n_tlvs, 6);

        off = 0;
        ck_assert_int_eq(ow_stamp_tlv_next(out, n, &off, &t), 1);
        ck_assert_int_eq(ow_stamp_location_get(&t, &loc), 0);
        ck_assert_uint_eq(loc.dst_port, 862);
        ck_assert_uint_eq(loc.src_port, 40000);
        ck_assert_uint_eq(loc.subs_len, 8);
        ck_assert_int_eq(ow_stamp_tlv_next(out, n, &off, &t), 1);
        ck_assert_int_eq(ow_stamp_timestamp_info_get(&t, &ti), 0);
        ck_assert_uint_eq(ti.sync_out, OW_STAMP_SYNC_NTP);
        ck_assert_uint_eq(ti.method_in, OW_STAMP_TS_SW_LOCAL);
        ck_assert_int_eq(ow_stamp_tlv_next(out, n, &off, &t), 1);
        ck_assert_int_eq(ow_stamp_cos_get(&t, &cos), 0);
        ck_assert_uint_eq(cos.dscp1, 10);
        ck_assert_uint_eq(cos.dscp2, 46);
        ck_assert_uint_eq(cos.ecn, 1);
        ck_assert_uint_eq(cos.rp, 0);
        ck_assert_int_eq(ow_stamp_tlv_next(out, n, &off, &t), 1);
        ck_assert_int_eq(ow_stamp_direct_get(&t, &dm), 0);
        ck_assert_uint_eq(dm.s_txc, 5);
        ck_assert_uint_eq(dm.r_rxc, 4);
        ck_assert_uint_eq(dm.r_txc, 3);
        ck_assert_int_eq(ow_stamp_tlv_next(out, n, &off, &t), 1);
        ck_assert_int_eq(ow_stamp_access_report_get(&t, &ar), 0);
        ck_assert_uint_eq(ar.id, 2);
        ck_assert_uint_eq(ar.return_code, 7);
        ck_assert_int_eq(ow_stamp_tlv_next(out, n, &off, &t), 1);
        ck_assert_int_eq(ow_stamp_follow_up_get(&t, &fu), 0);
        ck_assert_uint_eq(fu.seq, 7);
        ck_assert_uint_eq(fu.timestamp, T3);
        ck_assert_uint_eq(fu.mode, OW_STAMP_TS_SW_LOCAL);
        ck_assert_int_eq(ow_stamp_tlv_next(out, n, &off, &t), 0);

        /* A reader refuses a wrong length. */
        n = unhex("00 05 0008 0000000000000000", area, sizeof(area));
        off = 0;
        ck_assert_int_eq(ow_stamp_tlv_next(area, n, &off, &t), 1);
        ck_assert_int_eq(ow_stamp_direct_get(&t, &dm), -OW_ERR_STAMP_TLV_LENGTH);
}
END_TEST

int main(void) {
        Suite *s = suite_create("stamp");
        TCase *tc = tcase_create("stamp");
        tcase_add_test(tc, test_hmac_sha256);
        tcase_add_test(tc, test_auth_sender);
        tcase_add_test(tc, test_auth_reflector);
        tcase_add_test(tc, test_answer_size);
        tcase_add_test(tc, test_tlv_builders);
        tcase_add_loop_test(tc, test_tlv_rules, 0, (int) ELEMENTSOF(tlv_cases));
        tcase_add_test(tc, test_tlv_walk);
        tcase_add_test(tc, test_reflect_known);
        tcase_add_test(tc, test_reflect_unknown_and_malformed);
        tcase_add_test(tc, test_reflect_hmac);
        tcase_add_test(tc, test_tlv_readers);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
