/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Every input goes through the test-packet decoders of all three modes.
 * The A and E codecs use the keys of the "to" sessions of
 * test/data/captures/mode-{A,E}.pcap, so the captured datagrams in the seed
 * corpus decode and the fuzzer starts from packets that pass the HMAC.
 * Whatever decodes must survive an encode/decode round trip unchanged.
 *
 * Then through every TWAMP and STAMP row of the family (ow-testpkt.h), the
 * A and E rows keyed with the test keys of test/data/twamp/captures/
 * mode-{A,E}.pcap (its README), whose packets are in the seed corpus too.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ow-testpkt.h"

#define N_PACKETS 10 /* as in the captured sessions */

typedef struct FuzzKeys {
        OwMode mode;
        OwSid sid;
        uint8_t aes[OW_AES_KEY_SIZE];
        uint8_t hmac[OW_HMAC_KEY_SIZE];
} FuzzKeys;

static const FuzzKeys fuzz_keys[] = {
        { .mode = OW_MODE_OPEN },
        {
                .mode = OW_MODE_AUTHENTICATED,
                .sid = { { 0x7f, 0x00, 0x00, 0x01, 0xee, 0xb4, 0xdc, 0x55, 0x5e, 0xd3, 0x95, 0x3d, 0xbd,
                           0x23, 0x11, 0xfe } },
                .aes = { 0xa4, 0x0c, 0x9a, 0x75, 0x69, 0x2f, 0x0e, 0x84, 0x66, 0x69, 0xbc, 0x63, 0x10, 0x32,
                         0x78, 0xfc },
                .hmac = { 0xe6, 0x07, 0x94, 0x00, 0x5a, 0xd9, 0xa1, 0xe5, 0x75, 0x49, 0x8a,
                          0xc8, 0x82, 0x1d, 0x96, 0x11, 0x6f, 0x27, 0xea, 0x6d, 0x6e, 0xb2,
                          0xc0, 0xff, 0xf6, 0x3f, 0x1e, 0xe3, 0x75, 0x5e, 0x4d, 0x72 },
        },
        {
                .mode = OW_MODE_ENCRYPTED,
                .sid = { { 0x7f, 0x00, 0x00, 0x01, 0xee, 0xb4, 0xdc, 0x5b, 0xd5, 0x9e, 0x94, 0xab, 0x52,
                           0xd5, 0x5a, 0x04 } },
                .aes = { 0xae, 0x37, 0x4e, 0xcb, 0xbf, 0x02, 0x2b, 0xbe, 0x4f, 0xe8, 0x90, 0x58, 0xd2, 0x95,
                         0xb6, 0xea },
                .hmac = { 0xc6, 0xd6, 0x1e, 0xdd, 0x8c, 0xcc, 0x07, 0xaf, 0x5f, 0x3a, 0x3e,
                          0x39, 0xb0, 0xce, 0xb7, 0x09, 0xdd, 0x18, 0xf2, 0x23, 0xe8, 0x90,
                          0xbf, 0xbf, 0x1c, 0x36, 0x54, 0xad, 0x4f, 0xa3, 0xdf, 0xf5 },
        },
};

static void check_roundtrip(OwTestPktCodec *c, const uint8_t *data, size_t size, const OwTestPacket *p) {
        size_t hdr = ow_testpkt_header_size(ow_testpkt_codec_mode(c));
        size_t padding_len = size - hdr;
        OwTestPacket q;

        if (padding_len > OW_MAX_PADDING)
                return;

        uint8_t *buf = malloc(size);
        if (!buf)
                return;

        int n = ow_testpkt_encode(c, p, data + hdr, padding_len, buf, size);
        if (n < 0 || (size_t) n != size)
                abort();
        if (ow_testpkt_decode(c, buf, size, N_PACKETS, &q) < 0)
                abort();
        if (q.seq != p->seq || q.timestamp != p->timestamp || q.errest != p->errest)
                abort();
        if (memcmp(buf + hdr, data + hdr, padding_len) != 0)
                abort();
        /* Open mode has no MBZ octets: the encoding is unique. */
        if (ow_testpkt_codec_mode(c) == OW_MODE_OPEN && memcmp(buf, data, size) != 0)
                abort();

        free(buf);
}

/* The test keys of mode-A and mode-E of test/data/twamp (README.md). */
static const OwTestKeys twamp_keys[] = {
        [OW_TEST_AUTHENTICATED] = {
                .aes = { 0xad, 0xfe, 0x3b, 0x01, 0x36, 0xed, 0x4e, 0x6f, 0x9f, 0xb1, 0x56, 0x7a, 0x3b, 0x8a,
                         0xee, 0x25 },
                .hmac = { 0x71, 0xad, 0xdc, 0x86, 0xde, 0x04, 0x90, 0xd5, 0xcb, 0xa9, 0x12,
                          0x48, 0xf8, 0x3a, 0x6f, 0x65, 0x29, 0xfa, 0x76, 0xac, 0x35, 0x54,
                          0x9c, 0xda, 0xf0, 0xb4, 0xb1, 0xe1, 0x3c, 0xef, 0x6a, 0x96 },
        },
        [OW_TEST_ENCRYPTED] = {
                .aes = { 0x20, 0xc1, 0xba, 0xe5, 0xdb, 0xb1, 0x6a, 0x84, 0x55, 0x49, 0x3f, 0xa1, 0xda, 0x05,
                         0xe3, 0xf0 },
                .hmac = { 0xfb, 0xbd, 0xfc, 0x0d, 0x1f, 0xbb, 0x71, 0xe8, 0x21, 0xb1, 0x72,
                          0x9b, 0x34, 0x70, 0x1e, 0xb9, 0x82, 0xfd, 0xf2, 0xd3, 0x91, 0x8d,
                          0x85, 0xdd, 0xe3, 0xb4, 0x61, 0xd3, 0xca, 0xb4, 0xfa, 0x5d },
        },
};

static void check_family(const OwTestLayout *l, const uint8_t *data, size_t size) {
        OwTestPktCodec *c = NULL;
        OwTestFields f, g;

        if (ow_testpkt_codec_new_format(&l->format, &twamp_keys[l->format.security], &c) < 0)
                abort();
        if (ow_testpkt_decode_fields(c, data, size, &f) < 0 || size - l->size > OW_MAX_PADDING) {
                ow_testpkt_codec_free(c);
                return;
        }

        uint8_t *buf = malloc(size);
        if (!buf)
                abort();
        OwTestFields early = f;
        early.timestamp = 0;
        early.errest = 0;
        int n = ow_testpkt_prepare_fields(c, &early, data + l->size, size - l->size, buf, size);
        if (n < 0 || (size_t) n != size || ow_testpkt_finish(c, buf, f.seq, f.timestamp, f.errest) < 0)
                abort();
        if (ow_testpkt_decode_fields(c, buf, size, &g) < 0)
                abort();
        if (g.seq != f.seq || g.timestamp != f.timestamp || g.errest != f.errest || g.ssid != f.ssid ||
            g.recv_timestamp != f.recv_timestamp || g.sender_seq != f.sender_seq ||
            g.sender_timestamp != f.sender_timestamp || g.sender_errest != f.sender_errest ||
            g.sender_ttl != f.sender_ttl)
                abort();
        if (memcmp(buf + l->size, data + l->size, size - l->size) != 0)
                abort();
        free(buf);
        ow_testpkt_codec_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t n_layouts;
        const OwTestLayout *layouts = ow_testpkt_layouts(&n_layouts);
        for (size_t i = 0; i < n_layouts; i++)
                if (layouts[i].format.protocol != OW_TEST_OWAMP)
                        check_family(&layouts[i], data, size);

        for (size_t i = 0; i < sizeof(fuzz_keys) / sizeof(fuzz_keys[0]); i++) {
                const FuzzKeys *k = &fuzz_keys[i];
                OwTestPktCodec *c = NULL;
                OwTestPacket p;

                if (ow_testpkt_codec_new(k->mode, &k->sid, k->aes, k->hmac, &c) < 0)
                        abort();
                if (ow_testpkt_decode(c, data, size, N_PACKETS, &p) == 0)
                        check_roundtrip(c, data, size, &p);
                ow_testpkt_codec_free(c);
        }
        return 0;
}
