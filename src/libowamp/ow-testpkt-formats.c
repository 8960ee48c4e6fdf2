/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The layouts of the test-packet family, one row each: RFC 4656 4.1.2
 * (PROTOCOL.md 7.1), RFC 5357 4.1.2 and 4.2.1 (TWAMP-PROTOCOL.md 5.1, 5.2),
 * RFC 8762 4.2.1 and 4.3.1 (TWAMP-PROTOCOL.md 10.2, 10.3). The offsets are
 * in the order of the RFCs' tables. ow-testpkt.c reads nothing else.
 */

#include "macro.h"
#include "ow-testpkt.h"

#define NO_SENDER_COPY                                                           \
        .recv_timestamp = OW_TEST_NO_FIELD, .sender_seq = OW_TEST_NO_FIELD,      \
        .sender_timestamp = OW_TEST_NO_FIELD, .sender_errest = OW_TEST_NO_FIELD, \
        .sender_ttl = OW_TEST_NO_FIELD
#define NO_SECURITY .cipher = OW_TEST_CIPHER_NONE, .mac = OW_TEST_MAC_NONE

/* Sender, unauthenticated: seq(4) timestamp(8) error estimate(2), then
 * MBZ up to size. */
#define SENDER_OPEN(sz, ssid_at) \
        .size = (sz), .seq = 0, .timestamp = 4, .errest = 12, .ssid = (ssid_at), NO_SENDER_COPY, NO_SECURITY

/* Sender, authenticated and encrypted: seq(4) MBZ(12) | timestamp(8)
 * error estimate(2) MBZ(6) | HMAC(16). A encrypts and authenticates
 * block 1, E blocks 1-2. */
#define SENDER_AUTH(ciph, len)                                                                           \
        .size = OW_TESTPKT_AUTH_SIZE, .seq = 0, .timestamp = 16, .errest = 24, .ssid = OW_TEST_NO_FIELD, \
        NO_SENDER_COPY, .cipher = (ciph), .cipher_len = (len), .mac = OW_TEST_MAC_HMAC_SHA1,             \
        .mac_len = (len), .mac_at = 32

/* Reflected, unauthenticated: seq(4) T3(8) error estimate(2) MBZ(2)
 * T2(8) sender seq(4) T1(8) sender error estimate(2) MBZ(2) sender TTL(1),
 * then MBZ up to size. */
#define REFLECTED_OPEN(sz, ssid_at)                                                                    \
        .size = (sz), .seq = 0, .timestamp = 4, .errest = 12, .ssid = (ssid_at), .recv_timestamp = 16, \
        .sender_seq = 24, .sender_timestamp = 28, .sender_errest = 36, .sender_ttl = 40, NO_SECURITY

/* Reflected, authenticated and encrypted (RFC 5357 4.2.1): seq(4) MBZ(12)
 * | T3(8) error estimate(2) MBZ(6) | T2(8) MBZ(8) | sender seq(4) MBZ(12) |
 * T1(8) sender error estimate(2) MBZ(6) | sender TTL(1) MBZ(15) | HMAC(16).
 * A encrypts and authenticates block 1 only, as the reference does and its
 * peers check (TWAMP-PROTOCOL.md 5.2); E blocks 1-6. */
#define REFLECTED_AUTH(ciph, len)                                                                 \
        .size = OW_TESTPKT_TW_REFLECTED_AUTH_SIZE, .seq = 0, .timestamp = 16, .errest = 24,       \
        .ssid = OW_TEST_NO_FIELD, .recv_timestamp = 32, .sender_seq = 48, .sender_timestamp = 64, \
        .sender_errest = 72, .sender_ttl = 80, .cipher = (ciph), .cipher_len = (len),             \
        .mac = OW_TEST_MAC_HMAC_SHA1, .mac_len = (len), .mac_at = 96

#define ROW(p, d, s, text) .format = { OW_TEST_##p, OW_TEST_##d, OW_TEST_##s }, .name = (text)

static const OwTestLayout layouts[] = {
        { ROW(OWAMP, SENDER, OPEN, "OWAMP sender O"), SENDER_OPEN(OW_TESTPKT_OPEN_SIZE, OW_TEST_NO_FIELD) },
        { ROW(OWAMP, SENDER, AUTHENTICATED, "OWAMP sender A"), SENDER_AUTH(OW_TEST_CIPHER_ECB, 16) },
        { ROW(OWAMP, SENDER, ENCRYPTED, "OWAMP sender E"), SENDER_AUTH(OW_TEST_CIPHER_CBC, 32) },

        /* RFC 5357 4.1.2: the Session-Sender's packet is OWAMP's. */
        { ROW(TWAMP, SENDER, OPEN, "TWAMP sender O"), SENDER_OPEN(OW_TESTPKT_OPEN_SIZE, OW_TEST_NO_FIELD) },
        { ROW(TWAMP, SENDER, AUTHENTICATED, "TWAMP sender A"), SENDER_AUTH(OW_TEST_CIPHER_ECB, 16) },
        { ROW(TWAMP, SENDER, ENCRYPTED, "TWAMP sender E"), SENDER_AUTH(OW_TEST_CIPHER_CBC, 32) },
        { ROW(TWAMP, REFLECTED, OPEN, "TWAMP reflected O"),
          REFLECTED_OPEN(OW_TESTPKT_TW_REFLECTED_OPEN_SIZE, OW_TEST_NO_FIELD) },
        { ROW(TWAMP, REFLECTED, AUTHENTICATED, "TWAMP reflected A"),
          REFLECTED_AUTH(OW_TEST_CIPHER_ECB, 16) },
        { ROW(TWAMP, REFLECTED, ENCRYPTED, "TWAMP reflected E"), REFLECTED_AUTH(OW_TEST_CIPHER_CBC, 96) },

        /* RFC 8762 4.2.1: the TWAMP sender's fields, MBZ to 44 octets;
         * octets 14-15 are the SSID of RFC 8972 4.1 (MBZ without it). */
        { ROW(STAMP, SENDER, OPEN, "STAMP sender O"), SENDER_OPEN(OW_TESTPKT_STAMP_OPEN_SIZE, 14) },
        /* RFC 8762 4.3.1: the TWAMP reflected fields, the SSID in the first
         * MBZ, MBZ to 44 octets. */
        { ROW(STAMP, REFLECTED, OPEN, "STAMP reflected O"), REFLECTED_OPEN(OW_TESTPKT_STAMP_OPEN_SIZE, 14) },
};

const OwTestLayout *ow_testpkt_layout(const OwTestFormat *format) {
        if (!format)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(layouts); i++) {
                const OwTestFormat *f = &layouts[i].format;
                if (f->protocol == format->protocol && f->direction == format->direction &&
                    f->security == format->security)
                        return &layouts[i];
        }
        return NULL;
}

const OwTestLayout *ow_testpkt_layouts(size_t *ret_n) {
        *ret_n = ELEMENTSOF(layouts);
        return layouts;
}
