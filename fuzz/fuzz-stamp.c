/* SPDX-License-Identifier: Apache-2.0 */

/*
 * STAMP's decoders (ow-stamp.h) fed arbitrary octets. The first octet
 * picks: 0 an authenticated Session-Sender packet, 1 an authenticated
 * Session-Reflector packet (key 00 01 .. 1f), 2 a TLV area as a
 * Session-Reflector answers it (bit 2 of the first octet: with the HMAC
 * key), 3 a TLV area walked by the Session-Sender's readers.
 *
 * Besides memory safety: decoded packets encode back to the same octets;
 * an answer is exactly as long as the TLVs it answers (never a byte more),
 * every TLV of a valid sender's area comes back in place with U clear
 * unless unknown, and its HMAC TLV verifies against the reflector's
 * Sequence Number.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "ow-error.h"
#include "ow-stamp.h"

#define MAX_AREA 4096
#define CANARY 0xa5

static void check(bool ok) {
        if (!ok)
                abort();
}

static const uint8_t key[32] = { 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };

static void fuzz_auth_sender(const uint8_t *data, size_t size) {
        uint8_t buf[OW_STAMP_AUTH_BASE_SIZE];
        OwStampAuthSender m, back;

        if (ow_stamp_auth_sender_decode(data, size, key, sizeof(key), &m) < 0)
                return;
        check(ow_stamp_auth_sender_encode(&m, key, sizeof(key), buf, sizeof(buf)) ==
              OW_STAMP_AUTH_BASE_SIZE);
        check(ow_stamp_auth_sender_decode(buf, sizeof(buf), key, sizeof(key), &back) == 0);
        check(m.seq == back.seq && m.timestamp == back.timestamp && m.err == back.err &&
              m.ssid == back.ssid);
        /* The fields where they were; with zero MBZ octets, the packet. */
        check(memcmp(buf, data, 4) == 0 && memcmp(buf + 16, data + 16, 12) == 0);
}

static void fuzz_auth_reflector(const uint8_t *data, size_t size) {
        uint8_t buf[OW_STAMP_AUTH_BASE_SIZE];
        OwStampAuthReflector m, back;

        if (ow_stamp_auth_reflector_decode(data, size, key, sizeof(key), &m) < 0)
                return;
        check(ow_stamp_auth_reflector_encode(&m, key, sizeof(key), buf, sizeof(buf)) ==
              OW_STAMP_AUTH_BASE_SIZE);
        check(ow_stamp_auth_reflector_decode(buf, sizeof(buf), key, sizeof(key), &back) == 0);
        check(m.seq == back.seq && m.timestamp == back.timestamp &&
              m.receive_timestamp == back.receive_timestamp && m.sender_seq == back.sender_seq &&
              m.sender_timestamp == back.sender_timestamp && m.sender_err == back.sender_err &&
              m.sender_ttl == back.sender_ttl && m.ssid == back.ssid);
        check(memcmp(buf + 16, data + 16, 12) == 0 && buf[80] == data[80]);
}

static void fuzz_reflect(const uint8_t *data, size_t size, bool with_key) {
        static uint8_t out[MAX_AREA + 16];
        OwStampReflectInfo info = {
                .src_port = 40000,
                .dst_port = OW_STAMP_PORT,
                .ipvn = 4,
                .src_addr = { 192, 0, 2, 1 },
                .dst_addr = { 198, 51, 100, 7 },
                .dscp = 46,
                .ecn = 1,
                .rx_count = 4,
                .tx_count = 3,
                .have_previous = true,
                .previous = { .seq = 7, .timestamp = 1, .mode = 2 },
                .key = with_key ? key : NULL,
                .key_len = sizeof(key),
                .sender_seq = 1,
                .reflector_seq = 9,
        };
        OwStampReflectResult res;
        size_t off_in = 0, off_out = 0;
        OwStampTlv a, b;
        int valid, r;

        if (size > MAX_AREA)
                return;
        memset(out, CANARY, sizeof(out));
        check(ow_stamp_reflect_tlvs(data, size, out, size, &info, &res) == (int) size);
        for (size_t i = size; i < sizeof(out); i++)
                check(out[i] == CANARY); /* no amplification */

        valid = ow_stamp_tlvs_check(data, size);
        if (valid < 0)
                return;
        check(!res.malformed && res.n_tlvs == (unsigned) valid);
        /* The same TLVs at the same places; flags as the rules say. */
        while ((r = ow_stamp_tlv_next(data, size, &off_in, &a)) > 0) {
                check(ow_stamp_tlv_next(out, size, &off_out, &b) == 1);
                check(a.offset == b.offset && a.type == b.type && a.length == b.length);
                check((b.flags & OW_STAMP_FLAG_M) == 0);
                if (b.type == OW_STAMP_TLV_HMAC && with_key) {
                        check(ow_stamp_hmac_tlv_verify(out, &b, 9, key, sizeof(key)) == 0);
                        check(!!(b.flags & OW_STAMP_FLAG_I) ==
                              (ow_stamp_hmac_tlv_verify(data, &a, 1, key, sizeof(key)) < 0));
                }
        }
        check(r == 0 && ow_stamp_tlv_next(out, size, &off_out, &b) == 0);
}

static void fuzz_readers(const uint8_t *data, size_t size) {
        size_t off = 0;
        OwStampTlv t;

        while (ow_stamp_tlv_next(data, size, &off, &t) > 0) {
                union {
                        OwStampTimestampInfo ti;
                        OwStampCos cos;
                        OwStampDirect dm;
                        OwStampAccessReport ar;
                        OwStampFollowUp fu;
                        OwStampLocation loc;
                } u;
                bool ok = ow_stamp_tlv_check(&t, off == size) >= 0;
                int r;

                switch (t.type) {
                case OW_STAMP_TLV_LOCATION:
                        r = ow_stamp_location_get(&t, &u.loc);
                        if (r >= 0) {
                                size_t so = 0;
                                OwStampTlv s;
                                while (ow_stamp_tlv_next(u.loc.subs, u.loc.subs_len, &so, &s) > 0)
                                        check(s.value + s.length <= u.loc.subs + u.loc.subs_len);
                        }
                        break;
                case OW_STAMP_TLV_TIMESTAMP_INFO:
                        r = ow_stamp_timestamp_info_get(&t, &u.ti);
                        break;
                case OW_STAMP_TLV_CLASS_OF_SERVICE:
                        r = ow_stamp_cos_get(&t, &u.cos);
                        if (r >= 0)
                                check(u.cos.dscp1 < 64 && u.cos.dscp2 < 64 && u.cos.ecn < 4 && u.cos.rp < 4);
                        break;
                case OW_STAMP_TLV_DIRECT_MEASUREMENT:
                        r = ow_stamp_direct_get(&t, &u.dm);
                        break;
                case OW_STAMP_TLV_ACCESS_REPORT:
                        r = ow_stamp_access_report_get(&t, &u.ar);
                        break;
                case OW_STAMP_TLV_FOLLOW_UP:
                        r = ow_stamp_follow_up_get(&t, &u.fu);
                        break;
                case OW_STAMP_TLV_HMAC:
                        r = ow_stamp_hmac_tlv_verify(data, &t, 1, key, sizeof(key));
                        if (r == -OW_ERR_HMAC)
                                r = 0;
                        break;
                default:
                        continue;
                }
                /* A reader takes exactly what the rules take (an HMAC TLV's
                 * place aside: a reader sees one TLV). */
                if (t.type != OW_STAMP_TLV_HMAC)
                        check((r >= 0) == ok);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t pick;

        if (size < 1)
                return 0;
        pick = data[0];
        data++;
        size--;

        switch (pick & 3) {
        case 0:
                fuzz_auth_sender(data, size);
                break;
        case 1:
                fuzz_auth_reflector(data, size);
                break;
        case 2:
                fuzz_reflect(data, size, pick & 4);
                break;
        case 3:
                fuzz_readers(data, size);
                break;
        }
        return 0;
}
