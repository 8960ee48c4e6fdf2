/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Test packets of OWAMP-Test (RFC 4656 4.1.2, PROTOCOL.md 7), TWAMP-Test
 * (RFC 5357 4.1.2 and 4.2.1, docs/notes/TWAMP-PROTOCOL.md 5) and STAMP
 * (RFC 8762 4.2.1 and 4.3.1): per-session key derivation, and one encoder
 * and one decoder for every layout.
 *
 * A layout is a row of a table (ow-testpkt-formats.c), found by its format
 * (protocol, direction, security): the size of its fixed part, where each
 * field sits, what is encrypted and what the MAC covers. The code reads the
 * row; a new layout is a new row, not new code.
 *
 * OWAMP and TWAMP sender layouts (padding follows the fixed part and is
 * never encrypted nor authenticated):
 *
 *   open (O), 14 octets:  seq(4) | timestamp(8) | error estimate(2)
 *   authenticated (A) and encrypted (E), 48 octets:
 *       block 1:  seq(4) | MBZ(12)                       A: AES-ECB  E: AES-CBC
 *       block 2:  timestamp(8) | error estimate(2) | MBZ(6)   A: clear   E: AES-CBC
 *       HMAC(16): HMAC-SHA1 truncated, over plaintext block 1 (A) or blocks 1-2 (E)
 *
 * The TWAMP reflected packet is 41 octets open, 112 in A and E (block 1 as
 * above, T3 and its error estimate in block 2, T2, the copied sender
 * fields and the sender TTL in blocks 3-6, the HMAC after them; A: block 1
 * encrypted and authenticated as the reference does, E: blocks 1-6).
 *
 * In A mode neither the timestamp nor the error estimate is authenticated:
 * that is the protocol, and it is what lets a sender take the timestamp at
 * the very last moment.
 *
 * The encoder is split for a precision sender (and a reflector, whose own
 * send timestamp T3 is the last thing it writes): ow_testpkt_prepare()
 * does everything that does not depend on the send time (in A mode that
 * includes the AES block and the HMAC) and ow_testpkt_finish() does the
 * rest once the timestamp is known: it writes 10 octets in O and A mode,
 * and encrypts from block 2 on and computes the HMAC in E mode.
 */

#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "ow-crypto.h"
#include "ow-time.h"
#include "ow-types.h"

#define OW_TESTPKT_OPEN_SIZE 14 /* RFC 4656 4.1.2, unauthenticated layout */
#define OW_TESTPKT_AUTH_SIZE 48 /* RFC 4656 4.1.2, authenticated and encrypted layout */
#define OW_TESTPKT_MAX_HEADER_SIZE OW_TESTPKT_AUTH_SIZE /* of the OWAMP layouts */
#define OW_TESTPKT_TW_REFLECTED_OPEN_SIZE 41            /* RFC 5357 4.2.1, unauthenticated */
#define OW_TESTPKT_TW_REFLECTED_AUTH_SIZE 112           /* RFC 5357 4.2.1, authenticated and encrypted */
#define OW_TESTPKT_STAMP_OPEN_SIZE 44                   /* RFC 8762 4.2.1 and 4.3.1, both directions */
/* The largest fixed part of any layout of the family. */
#define OW_TESTPKT_MAX_FIXED_SIZE OW_TESTPKT_TW_REFLECTED_AUTH_SIZE

/* The format of a test packet: which protocol, which way, which security. */
typedef enum OwTestProtocol {
        OW_TEST_OWAMP,
        OW_TEST_TWAMP,
        OW_TEST_STAMP,
        _OW_TEST_PROTOCOL_MAX,
} OwTestProtocol;

typedef enum OwTestDirection {
        OW_TEST_SENDER,    /* Session-Sender's packet */
        OW_TEST_REFLECTED, /* Session-Reflector's answer to one */
        _OW_TEST_DIRECTION_MAX,
} OwTestDirection;

typedef enum OwTestSecurity {
        OW_TEST_OPEN,          /* mode O (and TWAMP's mixed mode M for the test packets) */
        OW_TEST_AUTHENTICATED, /* mode A */
        OW_TEST_ENCRYPTED,     /* mode E */
        _OW_TEST_SECURITY_MAX,
} OwTestSecurity;

typedef struct OwTestFormat {
        OwTestProtocol protocol;
        OwTestDirection direction;
        OwTestSecurity security;
} OwTestFormat;

/* How the first octets of a layout are encrypted (always from octet 0,
 * IV 0: CBC's first block is ECB's). */
typedef enum OwTestCipher {
        OW_TEST_CIPHER_NONE,
        OW_TEST_CIPHER_ECB, /* AES-128-ECB of block 1 only */
        OW_TEST_CIPHER_CBC, /* AES-128-CBC, IV 0, of cipher_len octets */
} OwTestCipher;

typedef enum OwTestMac {
        OW_TEST_MAC_NONE,
        OW_TEST_MAC_HMAC_SHA1, /* truncated to OW_HMAC_SIZE (RFC 4656 4.1.2) */
} OwTestMac;

/* A field the layout does not have. */
#define OW_TEST_NO_FIELD UINT8_MAX

/* One row of the table: a layout. Offsets are from the packet's start. */
typedef struct OwTestLayout {
        OwTestFormat format;
        const char *name;
        uint8_t size; /* fixed part, padding follows */
        uint8_t seq, timestamp, errest;
        uint8_t ssid; /* STAMP's SSID (RFC 8972 4.1), 0 unless given */
        /* What a reflected packet copies of the sender's packet. */
        uint8_t recv_timestamp, sender_seq, sender_timestamp, sender_errest, sender_ttl;
        OwTestCipher cipher;
        uint8_t cipher_len; /* octets 0..cipher_len-1, whole blocks */
        OwTestMac mac;
        uint8_t mac_len; /* the MAC covers the plaintext of octets 0..mac_len-1 */
        uint8_t mac_at;  /* where the OW_HMAC_SIZE octets of MAC sit */
} OwTestLayout;

/* The row of a format, or NULL when the family has none for it. */
const OwTestLayout *ow_testpkt_layout(const OwTestFormat *format);
/* Every row, for the tests: *ret_n of them. */
const OwTestLayout *ow_testpkt_layouts(size_t *ret_n);

/* The fields of any layout. Those the layout does not have are ignored
 * by the encoder and 0 after decoding (sender_ttl: OW_TTL_UNKNOWN). */
typedef struct OwTestFields {
        uint32_t seq;
        OwTimestamp timestamp; /* send time (T1 of a sender, T3 of a reflector) */
        OwErrEst errest;
        uint16_t ssid;
        /* A reflected packet's copy of the sender's packet it answers. */
        OwTimestamp recv_timestamp; /* T2, when the reflector received it */
        uint32_t sender_seq;
        OwTimestamp sender_timestamp; /* T1 */
        OwErrEst sender_errest;
        uint8_t sender_ttl; /* TTL / hop limit the reflector read */
} OwTestFields;

/* OW_AES_KEY_SIZE, OW_HMAC_KEY_SIZE and OW_HMAC_SIZE come from ow-crypto.h. */

/* The fields of a test packet that carry information. */
typedef struct OwTestPacket {
        uint32_t seq;
        OwTimestamp timestamp; /* send time */
        OwErrEst errest;
} OwTestPacket;

/* The two keys of one test session (PROTOCOL.md 7.2). */
typedef struct OwTestKeys {
        uint8_t aes[OW_AES_KEY_SIZE];
        uint8_t hmac[OW_HMAC_KEY_SIZE];
} OwTestKeys;

/* Keyed cipher and MAC contexts of one test session. */
typedef struct OwTestPktCodec OwTestPktCodec;

/* Size of the fixed part of a test packet in mode, or 0 for anything but
 * exactly one of OW_MODE_OPEN, OW_MODE_AUTHENTICATED, OW_MODE_ENCRYPTED. */
size_t ow_testpkt_header_size(OwMode mode);

/* Derive a session's test keys from its SID and the control-connection
 * session keys (PROTOCOL.md 7.2): AES key = AES-128-ECB(key = SID, control
 * AES key), HMAC key = AES-128-CBC(key = SID, IV = 0, control HMAC key). */
void ow_testpkt_derive_keys(const OwSid *sid, const uint8_t aes_key[static OW_AES_KEY_SIZE],
                            const uint8_t hmac_key[static OW_HMAC_KEY_SIZE], OwTestKeys *ret);

/* Create the codec of one session. In open mode the keys are not used and
 * may be NULL; in A and E mode they are the *control* session keys, from
 * which the test keys are derived with sid. The codec holds the keyed AES
 * (encrypt and decrypt) and HMAC contexts; free it with
 * ow_testpkt_codec_free(), which wipes them. Returns -EINVAL for a bad mode
 * or missing keys, -ENOMEM. */
int ow_testpkt_codec_new(OwMode mode, const OwSid *sid, const uint8_t *aes_key, const uint8_t *hmac_key,
                         OwTestPktCodec **ret);
/* The same from already derived test keys (what a session worker gets:
 * it never sees the control-connection keys). keys may be NULL in open
 * mode. */
int ow_testpkt_codec_new_from_keys(OwMode mode, const OwTestKeys *keys, OwTestPktCodec **ret);
/* The codec of any format: -EINVAL for a format out of range or missing
 * keys where the format needs them, -EOPNOTSUPP for one without a row,
 * -ENOMEM. keys may be NULL for an open format. */
int ow_testpkt_codec_new_format(const OwTestFormat *format, const OwTestKeys *keys, OwTestPktCodec **ret);
OwTestPktCodec *ow_testpkt_codec_free(OwTestPktCodec *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(OwTestPktCodec *, ow_testpkt_codec_free);

/* The mode of the codec's security (open, authenticated, encrypted). */
OwMode ow_testpkt_codec_mode(const OwTestPktCodec *c);
const OwTestLayout *ow_testpkt_codec_layout(const OwTestPktCodec *c);

/* Size of a packet of this codec's mode with padding_len octets of padding. */
size_t ow_testpkt_codec_size(const OwTestPktCodec *c, size_t padding_len);

/*
 * Encoder, first step: write the whole packet for sequence number seq into
 * buf, except what depends on the send time. padding (padding_len octets)
 * is copied after the fixed part; NULL means zeros, and padding may point
 * into buf at its final place (then nothing is copied), so a caller can
 * fill it in place with random bytes. Returns the packet size, -ENOBUFS if
 * buf_size is too small, -OW_ERR_COUNT if padding_len exceeds
 * OW_MAX_PADDING.
 *
 * The codec is not modified by the encoder functions except for the
 * scratch state of its HMAC context: one codec must not be used by two
 * threads at once.
 */
int ow_testpkt_prepare(OwTestPktCodec *c, uint32_t seq, const uint8_t *padding, size_t padding_len,
                       uint8_t *buf, size_t buf_size);

/* The same for any layout: every field of f but timestamp and errest
 * (which ow_testpkt_finish() writes). Also -OW_ERR_ERREST for a reflected
 * packet whose sender_errest has multiplier 0. */
int ow_testpkt_prepare_fields(OwTestPktCodec *c, const OwTestFields *f, const uint8_t *padding,
                              size_t padding_len, uint8_t *buf, size_t buf_size);

/* Encoder, last step: put the send timestamp and error estimate into a
 * packet made by ow_testpkt_prepare() for the same seq (seq is only needed in
 * E mode, whose HMAC covers the plaintext of block 1). Returns 0, or
 * -OW_ERR_ERREST if errest has multiplier 0 (never sent, PROTOCOL.md 2.2). */
int ow_testpkt_finish(OwTestPktCodec *c, uint8_t *buf, uint32_t seq, OwTimestamp timestamp, OwErrEst errest);

/* Both steps at once. Returns the packet size or an error as above. */
int ow_testpkt_encode(OwTestPktCodec *c, const OwTestPacket *p, const uint8_t *padding, size_t padding_len,
                      uint8_t *buf, size_t buf_size);
int ow_testpkt_encode_fields(OwTestPktCodec *c, const OwTestFields *f, const uint8_t *padding,
                             size_t padding_len, uint8_t *buf, size_t buf_size);

/*
 * Decode one received datagram. Checks, in this order:
 *   - len below the mode's fixed size: -OW_ERR_PACKET_SIZE (anything beyond
 *     the fixed size is padding and accepted, as by the reference);
 *   - A/E: the HMAC, compared in constant time: -OW_ERR_HMAC;
 *   - the error estimate's multiplier is 0: -OW_ERR_ERREST;
 *   - seq >= n_packets (the session's Number of Packets): -OW_ERR_SEQ.
 * MBZ octets are not checked (PROTOCOL.md 6). The padding is
 * buf + ow_testpkt_header_size(mode), len - that octets. *ret is set only
 * on success.
 */
int ow_testpkt_decode(OwTestPktCodec *c, const uint8_t *buf, size_t len, uint32_t n_packets,
                      OwTestPacket *ret);

/* Decode a datagram of any layout: the checks of ow_testpkt_decode() but
 * the sequence number's (whose bound depends on the direction: a
 * reflector's own counter has none), plus -OW_ERR_ERREST for a reflected
 * packet's sender error estimate with multiplier 0. */
int ow_testpkt_decode_fields(OwTestPktCodec *c, const uint8_t *buf, size_t len, OwTestFields *ret);

/* The two-way record of a reflected packet (decoded with a REFLECTED
 * format) that came back at t4 with our estimate recv_err and TTL ttl. */
void ow_testpkt_tw_record(const OwTestFields *reflected, OwTimestamp t4, OwErrEst recv_err, uint8_t ttl,
                          OwTwRecord *ret);
