/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * OWAMP-Test packets (RFC 4656 4.1.2, PROTOCOL.md 7): per-session key
 * derivation, encoder and decoder for the three modes.
 *
 * Layouts (padding follows the fixed part and is never encrypted nor
 * authenticated):
 *
 *   open (O), 14 octets:  seq(4) | timestamp(8) | error estimate(2)
 *   authenticated (A) and encrypted (E), 48 octets:
 *       block 1:  seq(4) | MBZ(12)                       A: AES-ECB  E: AES-CBC
 *       block 2:  timestamp(8) | error estimate(2) | MBZ(6)   A: clear   E: AES-CBC
 *       HMAC(16): HMAC-SHA1 truncated, over plaintext block 1 (A) or blocks 1-2 (E)
 *
 * In A mode neither the timestamp nor the error estimate is authenticated:
 * that is the protocol, and it is what lets a sender take the timestamp at
 * the very last moment.
 *
 * The encoder is split for a precision sender: ow_testpkt_prepare() does
 * everything that does not depend on the send time (in A mode that includes
 * the AES block and the HMAC) and ow_testpkt_finish() does the rest once the
 * timestamp is known: it writes 10 octets in O and A mode, and encrypts one
 * block and computes the HMAC in E mode.
 */

#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "ow-crypto.h"
#include "ow-time.h"
#include "ow-types.h"

#define OW_TESTPKT_OPEN_SIZE 14 /* RFC 4656 4.1.2, unauthenticated layout */
#define OW_TESTPKT_AUTH_SIZE 48 /* RFC 4656 4.1.2, authenticated and encrypted layout */
#define OW_TESTPKT_MAX_HEADER_SIZE OW_TESTPKT_AUTH_SIZE

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
OwTestPktCodec *ow_testpkt_codec_free(OwTestPktCodec *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(OwTestPktCodec *, ow_testpkt_codec_free);

OwMode ow_testpkt_codec_mode(const OwTestPktCodec *c);

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

/* Encoder, last step: put the send timestamp and error estimate into a
 * packet made by ow_testpkt_prepare() for the same seq (seq is only needed in
 * E mode, whose HMAC covers the plaintext of block 1). Returns 0, or
 * -OW_ERR_ERREST if errest has multiplier 0 (never sent, PROTOCOL.md 2.2). */
int ow_testpkt_finish(OwTestPktCodec *c, uint8_t *buf, uint32_t seq, OwTimestamp timestamp, OwErrEst errest);

/* Both steps at once. Returns the packet size or an error as above. */
int ow_testpkt_encode(OwTestPktCodec *c, const OwTestPacket *p, const uint8_t *padding, size_t padding_len,
                      uint8_t *buf, size_t buf_size);

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
