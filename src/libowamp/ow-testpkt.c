/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/aes.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "ow-crypto.h"
#include "ow-error.h"
#include "ow-testpkt.h"
#include "ow-wire.h"

#define BLOCK OW_BLOCK_SIZE

/* dst = a ^ b, one AES block; dst may be a or b. In words, not octets:
 * every received packet in mode E goes through it. */
static void xor_block(uint8_t *dst, const uint8_t *a, const uint8_t *b) {
        uint64_t x[2], y[2];
        memcpy(x, a, BLOCK);
        memcpy(y, b, BLOCK);
        x[0] ^= y[0];
        x[1] ^= y[1];
        memcpy(dst, x, BLOCK);
}

struct OwTestPktCodec {
        const OwTestLayout *layout;
        struct aes128_ctx encrypt;
        struct aes128_ctx decrypt;
        /* Keyed once; nettle restarts the running state from the keyed
         * inner state after every digest, so each packet just updates and
         * digests. */
        struct hmac_sha1_ctx hmac;
};

static OwTestSecurity security_of_mode(OwMode mode) {
        switch (mode) {
        case OW_MODE_OPEN:
                return OW_TEST_OPEN;
        case OW_MODE_AUTHENTICATED:
                return OW_TEST_AUTHENTICATED;
        case OW_MODE_ENCRYPTED:
                return OW_TEST_ENCRYPTED;
        default:
                return _OW_TEST_SECURITY_MAX;
        }
}

size_t ow_testpkt_header_size(OwMode mode) {
        /* The sizes of the OWAMP rows (test-testpkt checks), without a
         * look-up: receivers ask for every packet. */
        switch (mode) {
        case OW_MODE_OPEN:
                return OW_TESTPKT_OPEN_SIZE;
        case OW_MODE_AUTHENTICATED:
        case OW_MODE_ENCRYPTED:
                return OW_TESTPKT_AUTH_SIZE;
        default:
                return 0;
        }
}

void ow_testpkt_derive_keys(const OwSid *sid, const uint8_t aes_key[static OW_AES_KEY_SIZE],
                            const uint8_t hmac_key[static OW_HMAC_KEY_SIZE], OwTestKeys *ret) {
        struct aes128_ctx k;
        uint8_t x[BLOCK];

        /* The SID is the AES key and the control keys are the plaintext:
         * that is what the reference does and what decrypts the captures
         * (PROTOCOL.md 7.2), whatever a reading of RFC 4656 4.1.2 suggests.
         * TWAMP derives its test keys the same way (TWAMP-PROTOCOL.md 5.2). */
        aes128_set_encrypt_key(&k, sid->bytes);
        aes128_encrypt(&k, OW_AES_KEY_SIZE, ret->aes, aes_key);

        /* Two blocks of CBC with IV 0: the first is plain ECB. */
        aes128_encrypt(&k, BLOCK, ret->hmac, hmac_key);
        xor_block(x, hmac_key + BLOCK, ret->hmac);
        aes128_encrypt(&k, BLOCK, ret->hmac + BLOCK, x);

        ow_wipe(&k, sizeof(k));
        ow_wipe(x, sizeof(x));
}

int ow_testpkt_codec_new_format(const OwTestFormat *format, const OwTestKeys *keys, OwTestPktCodec **ret) {
        if (!format || !ret)
                return -EINVAL;
        if ((unsigned) format->protocol >= _OW_TEST_PROTOCOL_MAX ||
            (unsigned) format->direction >= _OW_TEST_DIRECTION_MAX ||
            (unsigned) format->security >= _OW_TEST_SECURITY_MAX)
                return -EINVAL;
        if (format->security != OW_TEST_OPEN && !keys)
                return -EINVAL;

        const OwTestLayout *l = ow_testpkt_layout(format);
        if (!l)
                return -EOPNOTSUPP;

        OwTestPktCodec *c = calloc(1, sizeof(OwTestPktCodec));
        if (!c)
                return -ENOMEM;

        c->layout = l;
        if (l->cipher != OW_TEST_CIPHER_NONE) {
                aes128_set_encrypt_key(&c->encrypt, keys->aes);
                aes128_set_decrypt_key(&c->decrypt, keys->aes);
        }
        if (l->mac == OW_TEST_MAC_HMAC_SHA1)
                hmac_sha1_set_key(&c->hmac, sizeof(keys->hmac), keys->hmac);

        *ret = c;
        return 0;
}

int ow_testpkt_codec_new_from_keys(OwMode mode, const OwTestKeys *keys, OwTestPktCodec **ret) {
        if (ow_testpkt_header_size(mode) == 0)
                return -EINVAL;
        return ow_testpkt_codec_new_format(
                &(OwTestFormat){ OW_TEST_OWAMP, OW_TEST_SENDER, security_of_mode(mode) }, keys, ret);
}

int ow_testpkt_codec_new(OwMode mode, const OwSid *sid, const uint8_t *aes_key, const uint8_t *hmac_key,
                         OwTestPktCodec **ret) {
        OwTestKeys keys;
        int r;

        if (ow_testpkt_header_size(mode) == 0 || !sid)
                return -EINVAL;
        if (mode == OW_MODE_OPEN)
                return ow_testpkt_codec_new_from_keys(mode, NULL, ret);
        if (!aes_key || !hmac_key)
                return -EINVAL;

        ow_testpkt_derive_keys(sid, aes_key, hmac_key, &keys);
        r = ow_testpkt_codec_new_from_keys(mode, &keys, ret);
        ow_wipe(&keys, sizeof(keys));
        return r;
}

OwTestPktCodec *ow_testpkt_codec_free(OwTestPktCodec *c) {
        if (!c)
                return NULL;
        ow_wipe(c, sizeof(*c));
        free(c);
        return NULL;
}

OwMode ow_testpkt_codec_mode(const OwTestPktCodec *c) {
        switch (c->layout->format.security) {
        case OW_TEST_OPEN:
                return OW_MODE_OPEN;
        case OW_TEST_AUTHENTICATED:
                return OW_MODE_AUTHENTICATED;
        case OW_TEST_ENCRYPTED:
                return OW_MODE_ENCRYPTED;
        default:
                assert_not_reached();
        }
}

const OwTestLayout *ow_testpkt_codec_layout(const OwTestPktCodec *c) {
        return c->layout;
}

size_t ow_testpkt_codec_size(const OwTestPktCodec *c, size_t padding_len) {
        return c->layout->size + padding_len;
}

static bool has(uint8_t field) {
        return field != OW_TEST_NO_FIELD;
}

/*
 * What ow_testpkt_finish() must still do. The send timestamp and its error
 * estimate are written last; whatever covers them (a CBC block chained
 * after them, a MAC over them) waits for them, the rest is done by
 * ow_testpkt_prepare(). In every row with a cipher, the timestamp lies
 * outside block 1 and the MAC covers no more than the cipher does
 * (test-testpkt checks), so block 1 is always encrypted in prepare, and a
 * MAC in finish needs only seq to rebuild block 1's plaintext, which holds
 * nothing else.
 */
static bool mac_in_finish(const OwTestLayout *l) {
        return l->mac != OW_TEST_MAC_NONE && l->mac_len > l->timestamp;
}

static void mac_compute(OwTestPktCodec *c, const uint8_t *plain, size_t len,
                        uint8_t mac[static OW_HMAC_SIZE]) {
        hmac_sha1_update(&c->hmac, len, plain);
        hmac_sha1_digest(&c->hmac, OW_HMAC_SIZE, mac);
}

/* The encoder's first step; f NULL: a packet of seq with nothing else. */
static int prepare(OwTestPktCodec *c, uint32_t seq, const OwTestFields *f, const uint8_t *padding,
                   size_t padding_len, uint8_t *buf, size_t buf_size) {
        const OwTestLayout *l = c->layout;
        size_t hdr = l->size;

        if (padding_len > OW_MAX_PADDING)
                return -OW_ERR_COUNT;
        if (buf_size < hdr + padding_len)
                return -ENOBUFS;
        if (f && has(l->sender_errest) && ow_errest_check(f->sender_errest) < 0)
                return -OW_ERR_ERREST;

        /* Padding first: the caller may pass a source that overlaps buf. */
        if (!padding)
                memset(buf + hdr, 0, padding_len);
        else if (padding != buf + hdr)
                memmove(buf + hdr, padding, padding_len);

        /* The plaintext, MBZ octets and the fields of finish zero. */
        memset(buf, 0, hdr);
        ow_put_be32(buf + l->seq, seq);
        if (f) {
                if (has(l->ssid))
                        ow_put_be16(buf + l->ssid, f->ssid);
                if (l->format.direction == OW_TEST_REFLECTED) {
                        ow_timestamp_put(buf + l->recv_timestamp, f->recv_timestamp);
                        ow_put_be32(buf + l->sender_seq, f->sender_seq);
                        ow_timestamp_put(buf + l->sender_timestamp, f->sender_timestamp);
                        ow_errest_put(buf + l->sender_errest, f->sender_errest);
                        buf[l->sender_ttl] = f->sender_ttl;
                }
        }

        if (l->mac != OW_TEST_MAC_NONE && !mac_in_finish(l))
                /* A: the MAC covers block 1 only, known now. */
                mac_compute(c, buf, l->mac_len, buf + l->mac_at);

        /* CBC with IV 0 makes block 1 plain ECB in both modes; the blocks
         * chained after it wait for the timestamp in block 2. */
        if (l->cipher != OW_TEST_CIPHER_NONE)
                aes128_encrypt(&c->encrypt, BLOCK, buf, buf);

        return (int) (hdr + padding_len);
}

int ow_testpkt_prepare_fields(OwTestPktCodec *c, const OwTestFields *f, const uint8_t *padding,
                              size_t padding_len, uint8_t *buf, size_t buf_size) {
        return prepare(c, f->seq, f, padding, padding_len, buf, buf_size);
}

int ow_testpkt_prepare(OwTestPktCodec *c, uint32_t seq, const uint8_t *padding, size_t padding_len,
                       uint8_t *buf, size_t buf_size) {
        return prepare(c, seq, NULL, padding, padding_len, buf, buf_size);
}

int ow_testpkt_finish(OwTestPktCodec *c, uint8_t *buf, uint32_t seq, OwTimestamp timestamp,
                      OwErrEst errest) {
        const OwTestLayout *l = c->layout;
        int r = ow_errest_check(errest);
        if (r < 0)
                return r;

        ow_timestamp_put(buf + l->timestamp, timestamp);
        ow_errest_put(buf + l->errest, errest);

        if (mac_in_finish(l)) {
                if (l->cipher == OW_TEST_CIPHER_NONE)
                        mac_compute(c, buf, l->mac_len, buf + l->mac_at);
                else {
                        /* Block 1 is cipher text already: its plaintext
                         * again, then the rest the MAC covers. */
                        uint8_t plain[OW_TESTPKT_MAX_FIXED_SIZE];
                        memset(plain, 0, BLOCK);
                        ow_put_be32(plain + l->seq, seq);
                        memcpy(plain + BLOCK, buf + BLOCK, l->mac_len - BLOCK);
                        mac_compute(c, plain, l->mac_len, buf + l->mac_at);
                }
        }

        if (l->cipher == OW_TEST_CIPHER_CBC)
                /* CBC: each block is chained to the cipher block before it,
                 * block 1's already in buf; in place. */
                for (size_t off = BLOCK; off < l->cipher_len; off += BLOCK) {
                        xor_block(buf + off, buf + off, buf + off - BLOCK);
                        aes128_encrypt(&c->encrypt, BLOCK, buf + off, buf + off);
                }

        return 0;
}

int ow_testpkt_encode_fields(OwTestPktCodec *c, const OwTestFields *f, const uint8_t *padding,
                             size_t padding_len, uint8_t *buf, size_t buf_size) {
        int r, n;

        /* Refuse before writing anything. */
        r = ow_errest_check(f->errest);
        if (r < 0)
                return r;

        n = ow_testpkt_prepare_fields(c, f, padding, padding_len, buf, buf_size);
        if (n < 0)
                return n;

        r = ow_testpkt_finish(c, buf, f->seq, f->timestamp, f->errest);
        if (r < 0)
                return r;

        return n;
}

int ow_testpkt_encode(OwTestPktCodec *c, const OwTestPacket *p, const uint8_t *padding, size_t padding_len,
                      uint8_t *buf, size_t buf_size) {
        OwTestFields f = { .seq = p->seq, .timestamp = p->timestamp, .errest = p->errest };
        return ow_testpkt_encode_fields(c, &f, padding, padding_len, buf, buf_size);
}

/*
 * The decoder's first step: the size, the decryption and the MAC. The
 * encrypted octets (0..cipher_len-1) are read from plain, the others from
 * buf: field() says which.
 */
static inline int unwrap(OwTestPktCodec *c, const uint8_t *buf, size_t len,
                         uint8_t plain[static OW_TESTPKT_MAX_FIXED_SIZE]) {
        const OwTestLayout *l = c->layout;
        uint8_t mac[OW_HMAC_SIZE];

        if (len < l->size)
                return -OW_ERR_PACKET_SIZE;

        switch (l->cipher) {
        case OW_TEST_CIPHER_NONE:
                break;
        case OW_TEST_CIPHER_ECB:
                aes128_decrypt(&c->decrypt, BLOCK, plain, buf);
                break;
        case OW_TEST_CIPHER_CBC:
                /* CBC with IV 0: each block decrypted and xored with the
                 * cipher block before it. */
                aes128_decrypt(&c->decrypt, l->cipher_len, plain, buf);
                for (size_t off = BLOCK; off < l->cipher_len; off += BLOCK)
                        xor_block(plain + off, plain + off, buf + off - BLOCK);
                break;
        default:
                assert_not_reached();
        }

        if (l->mac != OW_TEST_MAC_NONE) {
                mac_compute(c, l->cipher == OW_TEST_CIPHER_NONE ? buf : plain, l->mac_len, mac);
                if (!memeql_sec(mac, buf + l->mac_at, OW_HMAC_SIZE))
                        return -OW_ERR_HMAC;
        }
        return 0;
}

static const uint8_t *field(const OwTestLayout *l, const uint8_t *plain, const uint8_t *buf, uint8_t off) {
        return off < l->cipher_len ? plain + off : buf + off;
}

int ow_testpkt_decode_fields(OwTestPktCodec *c, const uint8_t *buf, size_t len, OwTestFields *ret) {
        uint8_t plain[OW_TESTPKT_MAX_FIXED_SIZE];

        if (!c || !buf || !ret)
                return -EINVAL;
        const OwTestLayout *l = c->layout;
        int r = unwrap(c, buf, len, plain);
        if (r < 0)
                return r;

        OwTestFields f = {
                .seq = ow_get_be32(field(l, plain, buf, l->seq)),
                .timestamp = ow_timestamp_get(field(l, plain, buf, l->timestamp)),
                .errest = ow_errest_get(field(l, plain, buf, l->errest)),
                .sender_ttl = OW_TTL_UNKNOWN,
        };
        if (has(l->ssid))
                f.ssid = ow_get_be16(field(l, plain, buf, l->ssid));
        if (l->format.direction == OW_TEST_REFLECTED) {
                f.recv_timestamp = ow_timestamp_get(field(l, plain, buf, l->recv_timestamp));
                f.sender_seq = ow_get_be32(field(l, plain, buf, l->sender_seq));
                f.sender_timestamp = ow_timestamp_get(field(l, plain, buf, l->sender_timestamp));
                f.sender_errest = ow_errest_get(field(l, plain, buf, l->sender_errest));
                f.sender_ttl = *field(l, plain, buf, l->sender_ttl);
                if (ow_errest_check(f.sender_errest) < 0)
                        return -OW_ERR_ERREST;
        }
        if (ow_errest_check(f.errest) < 0)
                return -OW_ERR_ERREST;

        *ret = f;
        return 0;
}

int ow_testpkt_decode(OwTestPktCodec *c, const uint8_t *buf, size_t len, uint32_t n_packets,
                      OwTestPacket *ret) {
        uint8_t plain[OW_TESTPKT_MAX_FIXED_SIZE];
        const OwTestLayout *l = c->layout;
        const uint8_t *p = buf;
        int r;

        /* The receiver's path: the open layout without a detour. */
        if (l->cipher != OW_TEST_CIPHER_NONE || l->mac != OW_TEST_MAC_NONE) {
                r = unwrap(c, buf, len, plain);
                if (r < 0)
                        return r;
                p = plain;
        } else if (len < l->size)
                return -OW_ERR_PACKET_SIZE;

        OwTestPacket pkt = {
                .seq = ow_get_be32(p + l->seq),
                .timestamp = ow_timestamp_get(field(l, p, buf, l->timestamp)),
                .errest = ow_errest_get(field(l, p, buf, l->errest)),
        };
        if (ow_errest_check(pkt.errest) < 0)
                return -OW_ERR_ERREST;
        if (pkt.seq >= n_packets)
                return -OW_ERR_SEQ;

        *ret = pkt;
        return 0;
}
