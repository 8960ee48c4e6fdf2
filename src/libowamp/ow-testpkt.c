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

/* Field offsets, RFC 4656 4.1.2 / PROTOCOL.md 7.1. */
#define OPEN_SEQ 0
#define OPEN_TIMESTAMP 4
#define OPEN_ERREST 12

#define AUTH_SEQ 0
#define AUTH_BLOCK2 16
#define AUTH_TIMESTAMP 16
#define AUTH_ERREST 24
#define AUTH_HMAC 32

#define BLOCK 16

static void xor_block(uint8_t *dst, const uint8_t *a, const uint8_t *b) {
        for (size_t i = 0; i < BLOCK; i++)
                dst[i] = a[i] ^ b[i];
}

struct OwTestPktCodec {
        OwMode mode;
        struct aes128_ctx encrypt;
        struct aes128_ctx decrypt;
        /* Keyed once; nettle restarts the running state from the keyed
         * inner state after every digest, so each packet just updates and
         * digests. */
        struct hmac_sha1_ctx hmac;
};

size_t ow_testpkt_header_size(OwMode mode) {
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
         * (PROTOCOL.md 7.2), whatever a reading of RFC 4656 4.1.2 suggests. */
        aes128_set_encrypt_key(&k, sid->bytes);
        aes128_encrypt(&k, OW_AES_KEY_SIZE, ret->aes, aes_key);

        /* Two blocks of CBC with IV 0: the first is plain ECB. */
        aes128_encrypt(&k, BLOCK, ret->hmac, hmac_key);
        xor_block(x, hmac_key + BLOCK, ret->hmac);
        aes128_encrypt(&k, BLOCK, ret->hmac + BLOCK, x);

        ow_wipe(&k, sizeof(k));
        ow_wipe(x, sizeof(x));
}

int ow_testpkt_codec_new_from_keys(OwMode mode, const OwTestKeys *keys, OwTestPktCodec **ret) {
        if (ow_testpkt_header_size(mode) == 0)
                return -EINVAL;
        if (mode != OW_MODE_OPEN && !keys)
                return -EINVAL;

        OwTestPktCodec *c = calloc(1, sizeof(OwTestPktCodec));
        if (!c)
                return -ENOMEM;

        c->mode = mode;
        if (mode != OW_MODE_OPEN) {
                aes128_set_encrypt_key(&c->encrypt, keys->aes);
                aes128_set_decrypt_key(&c->decrypt, keys->aes);
                hmac_sha1_set_key(&c->hmac, sizeof(keys->hmac), keys->hmac);
        }

        *ret = c;
        return 0;
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
        return c->mode;
}

size_t ow_testpkt_codec_size(const OwTestPktCodec *c, size_t padding_len) {
        return ow_testpkt_header_size(c->mode) + padding_len;
}

static void hmac_compute(OwTestPktCodec *c, const uint8_t *data, size_t len,
                         uint8_t mac[static OW_HMAC_SIZE]) {
        hmac_sha1_update(&c->hmac, len, data);
        hmac_sha1_digest(&c->hmac, OW_HMAC_SIZE, mac);
}

/* Plaintext of block 1 in A and E mode: seq and 12 MBZ octets. */
static void block1_plain(uint32_t seq, uint8_t out[static BLOCK]) {
        memset(out, 0, BLOCK);
        ow_put_be32(out + AUTH_SEQ, seq);
}

int ow_testpkt_prepare(OwTestPktCodec *c, uint32_t seq, const uint8_t *padding, size_t padding_len,
                       uint8_t *buf, size_t buf_size) {
        size_t hdr = ow_testpkt_header_size(c->mode);

        if (padding_len > OW_MAX_PADDING)
                return -OW_ERR_COUNT;
        if (buf_size < hdr + padding_len)
                return -ENOBUFS;

        /* Padding first: the caller may pass a source that overlaps buf. */
        if (!padding)
                memset(buf + hdr, 0, padding_len);
        else if (padding != buf + hdr)
                memmove(buf + hdr, padding, padding_len);

        if (c->mode == OW_MODE_OPEN) {
                ow_put_be32(buf + OPEN_SEQ, seq);
                memset(buf + OPEN_TIMESTAMP, 0, OW_TESTPKT_OPEN_SIZE - OPEN_TIMESTAMP);
                return (int) (hdr + padding_len);
        }

        uint8_t plain[BLOCK];
        block1_plain(seq, plain);

        /* CBC with IV 0 makes block 1 plain ECB in both modes. */
        aes128_encrypt(&c->encrypt, BLOCK, buf, plain);
        memset(buf + AUTH_BLOCK2, 0, OW_TESTPKT_AUTH_SIZE - AUTH_BLOCK2);

        /* A mode authenticates block 1 only, so its HMAC is known now. */
        if (c->mode == OW_MODE_AUTHENTICATED)
                hmac_compute(c, plain, sizeof(plain), buf + AUTH_HMAC);

        return (int) (hdr + padding_len);
}

int ow_testpkt_finish(OwTestPktCodec *c, uint8_t *buf, uint32_t seq, OwTimestamp timestamp,
                      OwErrEst errest) {
        int r = ow_errest_check(errest);
        if (r < 0)
                return r;

        switch (c->mode) {
        case OW_MODE_OPEN:
                ow_timestamp_put(buf + OPEN_TIMESTAMP, timestamp);
                ow_errest_put(buf + OPEN_ERREST, errest);
                return 0;

        case OW_MODE_AUTHENTICATED:
                ow_timestamp_put(buf + AUTH_TIMESTAMP, timestamp);
                ow_errest_put(buf + AUTH_ERREST, errest);
                return 0;

        case OW_MODE_ENCRYPTED: {
                uint8_t plain[2 * BLOCK] = {}, x[BLOCK];

                block1_plain(seq, plain);
                ow_timestamp_put(plain + AUTH_TIMESTAMP, timestamp);
                ow_errest_put(plain + AUTH_ERREST, errest);

                /* CBC: block 2 is chained to cipher block 1, already in buf. */
                xor_block(x, plain + BLOCK, buf);
                aes128_encrypt(&c->encrypt, BLOCK, buf + AUTH_BLOCK2, x);

                hmac_compute(c, plain, sizeof(plain), buf + AUTH_HMAC);
                return 0;
        }

        default:
                return -EINVAL;
        }
}

int ow_testpkt_encode(OwTestPktCodec *c, const OwTestPacket *p, const uint8_t *padding, size_t padding_len,
                      uint8_t *buf, size_t buf_size) {
        int r, n;

        /* Refuse before writing anything. */
        r = ow_errest_check(p->errest);
        if (r < 0)
                return r;

        n = ow_testpkt_prepare(c, p->seq, padding, padding_len, buf, buf_size);
        if (n < 0)
                return n;

        r = ow_testpkt_finish(c, buf, p->seq, p->timestamp, p->errest);
        if (r < 0)
                return r;

        return n;
}

int ow_testpkt_decode(OwTestPktCodec *c, const uint8_t *buf, size_t len, uint32_t n_packets,
                      OwTestPacket *ret) {
        uint8_t plain[2 * BLOCK], mac[OW_HMAC_SIZE];
        OwTestPacket p;

        if (len < ow_testpkt_header_size(c->mode))
                return -OW_ERR_PACKET_SIZE;

        switch (c->mode) {
        case OW_MODE_OPEN:
                p = (OwTestPacket){
                        .seq = ow_get_be32(buf + OPEN_SEQ),
                        .timestamp = ow_timestamp_get(buf + OPEN_TIMESTAMP),
                        .errest = ow_errest_get(buf + OPEN_ERREST),
                };
                break;

        case OW_MODE_AUTHENTICATED:
                aes128_decrypt(&c->decrypt, BLOCK, plain, buf);
                hmac_compute(c, plain, BLOCK, mac);
                if (!memeql_sec(mac, buf + AUTH_HMAC, OW_HMAC_SIZE))
                        return -OW_ERR_HMAC;

                /* The clear block: not authenticated in this mode. */
                p = (OwTestPacket){
                        .seq = ow_get_be32(plain + AUTH_SEQ),
                        .timestamp = ow_timestamp_get(buf + AUTH_TIMESTAMP),
                        .errest = ow_errest_get(buf + AUTH_ERREST),
                };
                break;

        case OW_MODE_ENCRYPTED:
                /* CBC with IV 0 over the two blocks. */
                aes128_decrypt(&c->decrypt, 2 * BLOCK, plain, buf);
                xor_block(plain + BLOCK, plain + BLOCK, buf);
                hmac_compute(c, plain, sizeof(plain), mac);
                if (!memeql_sec(mac, buf + AUTH_HMAC, OW_HMAC_SIZE))
                        return -OW_ERR_HMAC;

                p = (OwTestPacket){
                        .seq = ow_get_be32(plain + AUTH_SEQ),
                        .timestamp = ow_timestamp_get(plain + AUTH_TIMESTAMP),
                        .errest = ow_errest_get(plain + AUTH_ERREST),
                };
                break;

        default:
                return -EINVAL;
        }

        if (ow_errest_check(p.errest) < 0)
                return -OW_ERR_ERREST;
        if (p.seq >= n_packets)
                return -OW_ERR_SEQ;

        *ret = p;
        return 0;
}
