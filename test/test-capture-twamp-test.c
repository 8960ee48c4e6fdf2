/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The TWAMP-Test packets of the reference captures (test/data/twamp): every
 * sender and reflected packet of every capture decoded with the family's
 * TWAMP rows (the test keys of A and E from the decoded listing, made by
 * test/data/twamp/tools/twamp-decode.py), its fields checked against that
 * listing and against the sender packet it answers, and re-encoded with
 * prepare + finish to the identical bytes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ow-error.h"
#include "ow-testpkt.h"
#include "pcap.h"
#include "testutil.h"
#include "units.h"

#define CONTROL_PORT 8862 /* twampd -S 127.0.0.1:8862 (README.md) */
#define MAX_PACKETS 64    /* per capture; the largest has 44 */
#define LINE_MAX_SIZE 1024

static const char *const captures[] = {
        "default-modes-key",
        "fixed-Z",
        "ipv6-E",
        "loss-O-M",
        "loss-O-R",
        "loss-O-v",
        "loss-O",
        "mode-A-M",
        "mode-A-R",
        "mode-A-v",
        "mode-A",
        "mode-E-M",
        "mode-E-R",
        "mode-E-v",
        "mode-E",
        "mode-M-M",
        "mode-M-R",
        "mode-M-v",
        "mode-M",
        "mode-O-M",
        "mode-O-R",
        "mode-O-v",
        "mode-O",
        "opts-v3-N",
        "opts-vU",
        "pad-A-s100",
        "pad-O-s100-D",
        "pscheduler-R",
        "s0",
};

/* One line "#FRAME S|R N octets ... key=value ..." of the listing. */
typedef struct Listed {
        char dir; /* 'S' or 'R' */
        size_t size;
        OwTestFields f;
} Listed;

typedef struct Listing {
        int mode; /* Set-Up-Response's Mode: 1 O, 2 A, 4 E, 8 M */
        bool have_keys;
        OwTestKeys keys;
        Listed pkts[MAX_PACKETS];
        size_t n;
} Listing;

static const char *value(const char *line, const char *key) {
        char k[64];
        snprintf(k, sizeof(k), " %s=", key);
        const char *p = strstr(line, k);
        ck_assert_msg(p, "no %s in: %s", key, line);
        return p + strlen(k);
}

/* "SECONDS.NANOSECONDS" as the listing prints a timestamp, in ns. */
static uint64_t listed_nsec(const char *line, const char *key) {
        unsigned long long sec, ns;
        ck_assert_int_eq(sscanf(value(line, key), "%llu.%9llu", &sec, &ns), 2);
        return sec * NSEC_PER_SEC + ns;
}

static uint64_t ts_nsec(OwTimestamp t) {
        return (t >> 32) * NSEC_PER_SEC + ow_frac_to_nsec((uint32_t) t);
}

static void check_ts(OwTimestamp t, const char *line, const char *key) {
        uint64_t want = listed_nsec(line, key), got = ts_nsec(t);
        /* The listing's nanoseconds and ours may round differently. */
        ck_assert_msg(got + 1 >= want && got <= want + 1, "%s: %llu, listed %llu in %s", key,
                      (unsigned long long) got, (unsigned long long) want, line);
}

static unsigned long listed_uint(const char *line, const char *key, int base) {
        return strtoul(value(line, key), NULL, base);
}

static void load_listing(const char *name, Listing *ret) {
        char path[256], line[LINE_MAX_SIZE * 4];
        snprintf(path, sizeof(path), "twamp/decoded/%s.decoded.txt", name);
        FILE *f = fopen(test_data_path(path), "re");
        ck_assert_ptr_nonnull(f);

        *ret = (Listing){ .mode = 0 };
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, "Set-Up-Response:", 16) == 0)
                        ret->mode = (int) listed_uint(line, "mode", 10);
                else if (strncmp(line, "test keys for SID", 17) == 0) {
                        char aes[2 * OW_AES_KEY_SIZE + 1], hmac[2 * OW_HMAC_KEY_SIZE + 1];
                        ck_assert_int_eq(sscanf(strstr(line, ": AES"), ": AES %32s HMAC %64s", aes, hmac),
                                         2);
                        test_unhex(aes, ret->keys.aes, sizeof(ret->keys.aes));
                        test_unhex(hmac, ret->keys.hmac, sizeof(ret->keys.hmac));
                        ret->have_keys = true;
                } else if (line[0] == '#') {
                        ck_assert_uint_lt(ret->n, MAX_PACKETS);
                        Listed *l = &ret->pkts[ret->n++];
                        unsigned frame;
                        ck_assert_int_eq(sscanf(line, "#%u %c %zu octets", &frame, &l->dir, &l->size), 3);
                        l->f.seq = (uint32_t) listed_uint(line, "seq", 10);
                        l->f.errest = (OwErrEst) listed_uint(line, "err", 16);
                        if (l->dir == 'R') {
                                l->f.sender_seq = (uint32_t) listed_uint(line, "sender-seq", 10);
                                l->f.sender_errest = (OwErrEst) listed_uint(line, "sender-err", 16);
                                l->f.sender_ttl = (uint8_t) listed_uint(line, "sender-ttl", 10);
                        } else
                                ck_assert_int_eq(l->dir, 'S');
                }
        }
        fclose(f);
        ck_assert_int_ne(ret->mode, 0);
}

static OwTestSecurity security(int mode) {
        switch (mode) {
        case 1:
        case 8: /* Mixed: the test packets are open (TWAMP-PROTOCOL.md 5.3) */
                return OW_TEST_OPEN;
        case 2:
                return OW_TEST_AUTHENTICATED;
        case 4:
                return OW_TEST_ENCRYPTED;
        default:
                ck_abort_msg("mode %d", mode);
        }
}

/* The timestamps again, from the line (load_listing() keeps only the
 * integers: check_ts() compares with the listing's rounding). */
static void check_listed_times(const char *name, size_t i, const OwTestFields *f) {
        char path[256], line[LINE_MAX_SIZE * 4];
        size_t n = 0;
        snprintf(path, sizeof(path), "twamp/decoded/%s.decoded.txt", name);
        FILE *fp = fopen(test_data_path(path), "re");
        ck_assert_ptr_nonnull(fp);
        while (fgets(line, sizeof(line), fp))
                if (line[0] == '#' && n++ == i)
                        break;
        fclose(fp);
        if (strstr(line, " R ")) {
                check_ts(f->timestamp, line, "T3");
                check_ts(f->recv_timestamp, line, "T2");
                check_ts(f->sender_timestamp, line, "T1");
        } else
                check_ts(f->timestamp, line, "ts");
}

START_TEST(test_twamp_capture) {
        const char *name = captures[_i];
        Listing listing;
        PcapTrace trace;
        char path[256];
        OwTestPktCodec *codecs[2] = {};
        OwTestFields sent[MAX_PACKETS];
        bool have_sent[MAX_PACKETS] = {};

        load_listing(name, &listing);
        snprintf(path, sizeof(path), "twamp/captures/%s.pcap", name);
        ck_assert_int_eq(pcap_load(test_data_path(path), CONTROL_PORT, &trace), 0);
        /* Every test packet of the capture is in the listing, in order. */
        ck_assert_uint_eq(trace.n_udp, listing.n);
        ck_assert_uint_gt(trace.n_udp, 0);

        OwTestSecurity sec = security(listing.mode);
        ck_assert(listing.have_keys == (sec != OW_TEST_OPEN));
        for (OwTestDirection d = OW_TEST_SENDER; d <= OW_TEST_REFLECTED; d++)
                ck_assert_int_eq(ow_testpkt_codec_new_format(&(OwTestFormat){ OW_TEST_TWAMP, d, sec },
                                                             listing.have_keys ? &listing.keys : NULL,
                                                             &codecs[d]),
                                 0);

        for (size_t i = 0; i < trace.n_udp; i++) {
                const PcapDatagram *g = &trace.udp[i];
                const Listed *l = &listing.pkts[i];
                OwTestDirection d = l->dir == 'S' ? OW_TEST_SENDER : OW_TEST_REFLECTED;
                OwTestPktCodec *c = codecs[d];
                size_t hdr = ow_testpkt_codec_layout(c)->size;
                OwTestFields f;

                ck_assert_uint_eq(g->len, l->size);
                ck_assert_int_eq(ow_testpkt_decode_fields(c, g->data, g->len, &f), 0);
                ck_assert_uint_eq(f.seq, l->f.seq);
                ck_assert_uint_eq(f.errest, l->f.errest);
                check_listed_times(name, i, &f);
                if (d == OW_TEST_REFLECTED) {
                        ck_assert_uint_eq(f.sender_seq, l->f.sender_seq);
                        ck_assert_uint_eq(f.sender_errest, l->f.sender_errest);
                        ck_assert_uint_eq(f.sender_ttl, l->f.sender_ttl);
                        /* The copy of a sender packet of the capture. */
                        ck_assert_uint_lt(f.sender_seq, MAX_PACKETS);
                        ck_assert(have_sent[f.sender_seq]);
                        ck_assert_uint_eq(f.sender_timestamp, sent[f.sender_seq].timestamp);
                        ck_assert_uint_eq(f.sender_errest, sent[f.sender_seq].errest);
                        ck_assert_uint_le(f.recv_timestamp, f.timestamp);
                } else {
                        ck_assert_uint_lt(f.seq, MAX_PACKETS);
                        sent[f.seq] = f;
                        have_sent[f.seq] = true;
                }

                /* Re-encoded in two steps, the timestamp last, to the same
                 * octets, padding included. */
                uint8_t *buf = malloc(g->len);
                ck_assert_ptr_nonnull(buf);
                OwTestFields early = f;
                early.timestamp = 0;
                early.errest = 0;
                ck_assert_int_eq(
                        ow_testpkt_prepare_fields(c, &early, g->data + hdr, g->len - hdr, buf, g->len),
                        (int) g->len);
                ck_assert_int_eq(ow_testpkt_finish(c, buf, f.seq, f.timestamp, f.errest), 0);
                ck_assert_bytes_eq(buf, g->data, g->len);

                /* One flipped bit in what the MAC covers: refused. */
                const OwTestLayout *lay = ow_testpkt_codec_layout(c);
                if (lay->mac != OW_TEST_MAC_NONE) {
                        buf[lay->mac_len - 1] ^= 0x01;
                        ck_assert_int_eq(ow_testpkt_decode_fields(c, buf, g->len, &f), -OW_ERR_HMAC);
                }
                free(buf);
        }

        for (size_t d = 0; d < ELEMENTSOF(codecs); d++)
                ow_testpkt_codec_free(codecs[d]);
        pcap_trace_done(&trace);
}
END_TEST

int main(void) {
        Suite *s = suite_create("capture-twamp");
        TCase *tc = tcase_create("packets");
        tcase_add_loop_test(tc, test_twamp_capture, 0, ELEMENTSOF(captures));
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
