/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The two-way record (ow-types.h OwTwRecord): its 50-octet codec against
 * the reference twping's .twp files (test/data/twamp/saved), and records
 * built from the reflected packets of the same runs' captures, which must
 * give the reference's bytes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ow-error.h"
#include "ow-testpkt.h"
#include "ow-types.h"
#include "pcap.h"
#include "testutil.h"

#define TWP_RECORDS_AT 184 /* TWAMP-PROTOCOL.md 7: records offset of these files */
#define TWP_RECORDS 10
#define CONTROL_PORT 8862

/* TWAMP-PROTOCOL.md 7, mode-O.twp's first record. */
START_TEST(test_tw_record_vector) {
        uint8_t want[OW_TW_RECORD_SIZE], out[OW_TW_RECORD_SIZE];
        OwTwRecord r;

        test_unhex("0000000000010001eeba7e9bd35b8130eeba7e9bd3649d38ff"
                   "0000000000010001eeba7e9bd365cb35eeba7e9bd366e86cff",
                   want, sizeof(want));
        ck_assert_int_eq(ow_tw_record_decode(want, &r), 0);
        ck_assert_uint_eq(r.sender_seq, 0);
        ck_assert_uint_eq(r.reflector_seq, 0);
        ck_assert_uint_eq(r.t1, UINT64_C(0xeeba7e9bd35b8130));
        ck_assert_uint_eq(r.t2, UINT64_C(0xeeba7e9bd3649d38));
        ck_assert_uint_eq(r.t3, UINT64_C(0xeeba7e9bd365cb35));
        ck_assert_uint_eq(r.t4, UINT64_C(0xeeba7e9bd366e86c));
        ck_assert_uint_eq(r.sender_err, 1);
        ck_assert_uint_eq(r.reflector_err, 1);
        ck_assert_uint_eq(r.recv_err, 1);
        ck_assert_uint_eq(r.sender_ttl, 255);
        ck_assert_uint_eq(r.ttl, 255);
        ck_assert(!ow_tw_record_lost(&r));
        ow_tw_record_encode(&r, out);
        ck_assert_bytes_eq(out, want, sizeof(want));

        /* Every field at its place: distinct values survive. */
        OwTwRecord a = {
                .sender_seq = 0x01020304, .reflector_seq = 0x05060708,
                .t1 = 0x1111111111111111, .t2 = 0x2222222222222222, .t3 = 0x3333333333333333, .t4 = 0,
                .sender_err = 0x0101, .reflector_err = 0x0202, .recv_err = 0x0303,
                .sender_ttl = 64, .ttl = 63,
        }, b;
        ow_tw_record_encode(&a, out);
        ck_assert_int_eq(ow_tw_record_decode(out, &b), 0);
        ck_assert_uint_eq(b.sender_seq, a.sender_seq);
        ck_assert_uint_eq(b.reflector_seq, a.reflector_seq);
        ck_assert_uint_eq(b.t1, a.t1);
        ck_assert_uint_eq(b.t2, a.t2);
        ck_assert_uint_eq(b.t3, a.t3);
        ck_assert_uint_eq(b.t4, 0);
        ck_assert(ow_tw_record_lost(&b));
        ck_assert_uint_eq(b.sender_err, a.sender_err);
        ck_assert_uint_eq(b.reflector_err, a.reflector_err);
        ck_assert_uint_eq(b.recv_err, a.recv_err);
        ck_assert_uint_eq(b.sender_ttl, 64);
        ck_assert_uint_eq(b.ttl, 63);
        /* The reflector's estimate in both halves. */
        ck_assert_uint_eq(out[6], 0x02);
        ck_assert_uint_eq(out[OW_RECORD_SIZE + 4], 0x02);

        /* An estimate with multiplier 0 in either half. */
        out[7] = 0x00;
        ck_assert_int_eq(ow_tw_record_decode(out, &b), -OW_ERR_ERREST);
        ow_tw_record_encode(&a, out);
        out[OW_RECORD_SIZE + 7] = 0x00;
        ck_assert_int_eq(ow_tw_record_decode(out, &b), -OW_ERR_ERREST);
}
END_TEST

static const struct {
        const char *name;
        OwTestSecurity security;
        const char *aes, *hmac; /* test keys, test/data/twamp/README.md */
} runs[] = {
        { "mode-O", OW_TEST_OPEN, NULL, NULL },
        { "mode-M", OW_TEST_OPEN, NULL, NULL },
        { "mode-A", OW_TEST_AUTHENTICATED, "adfe3b0136ed4e6f9fb1567a3b8aee25",
          "71addc86de0490d5cba91248f83a6f6529fa76ac35549cdaf0b4b1e13cef6a96" },
        { "mode-E", OW_TEST_ENCRYPTED, "20c1bae5dbb16a8455493fa1da05e3f0",
          "fbbdfc0d1fbb71e821b1729b34701eb982fdf2d3918d85dde3b461d3cab4fa5d" },
};

/* Each .twp record: decodes and re-encodes to its bytes, and is what the
 * reflected packet of the capture makes, with twping's T4, estimate and
 * TTL. */
START_TEST(test_tw_record_twp_files) {
        char path[128];
        uint8_t *twp;
        size_t len;
        PcapTrace trace;
        OwTestKeys keys = {};
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *c = NULL;

        snprintf(path, sizeof(path), "twamp/saved/%s.twp", runs[_i].name);
        test_read_file(test_data_path(path), &twp, &len);
        ck_assert_uint_eq(len, TWP_RECORDS_AT + TWP_RECORDS * OW_TW_RECORD_SIZE);
        snprintf(path, sizeof(path), "twamp/captures/%s.pcap", runs[_i].name);
        ck_assert_int_eq(pcap_load(test_data_path(path), CONTROL_PORT, &trace), 0);
        if (runs[_i].aes) {
                test_unhex(runs[_i].aes, keys.aes, sizeof(keys.aes));
                test_unhex(runs[_i].hmac, keys.hmac, sizeof(keys.hmac));
        }
        ck_assert_int_eq(
                ow_testpkt_codec_new_format(
                        &(OwTestFormat){ OW_TEST_TWAMP, OW_TEST_REFLECTED, runs[_i].security }, &keys, &c),
                0);

        /* The captures alternate sender packet, answer. */
        ck_assert_uint_eq(trace.n_udp, 2 * TWP_RECORDS);
        for (size_t i = 0; i < TWP_RECORDS; i++) {
                const uint8_t *rec = twp + TWP_RECORDS_AT + i * OW_TW_RECORD_SIZE;
                const PcapDatagram *g = &trace.udp[2 * i + 1];
                uint8_t out[OW_TW_RECORD_SIZE];
                OwTwRecord r, p;
                OwTestFields f;

                ck_assert_int_eq(ow_tw_record_decode(rec, &r), 0);
                ow_tw_record_encode(&r, out);
                ck_assert_bytes_eq(out, rec, sizeof(out));
                ck_assert_uint_eq(r.sender_seq, i);
                ck_assert(!ow_tw_record_lost(&r));

                ck_assert_int_eq(ow_testpkt_decode_fields(c, g->data, g->len, &f), 0);
                ow_testpkt_tw_record(&f, r.t4, r.recv_err, r.ttl, &p);
                ow_tw_record_encode(&p, out);
                ck_assert_bytes_eq(out, rec, sizeof(out));
                ck_assert_uint_gt(p.t4, p.t3);
        }
        free(twp);
        pcap_trace_done(&trace);
}
END_TEST

int main(void) {
        Suite *s = suite_create("record-twoway");
        TCase *tc = tcase_create("codec");
        tcase_add_test(tc, test_tw_record_vector);
        tcase_add_loop_test(tc, test_tw_record_twp_files, 0, ELEMENTSOF(runs));
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
