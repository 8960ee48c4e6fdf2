/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ow-error.h"
#include "ow-owp.h"
#include "ow-report.h"
#include "testutil.h"

/*
 * A synthetic session for hand-checked output: 4 packets on one fixed slot
 * of 2^-7 s (7.8125 ms), 2 s timeout, from 192.0.2.1:8760 to
 * 198.51.100.7:9000. Send times are multiples of 2^11 units (2^-21 s) and
 * so are the delays, so every double below is exact.
 */
#define START (UINT64_C(3973000000) << 32) /* 2025-11-24T19:06:40 UTC */
#define GAP (UINT64_C(1) << 25)
#define D(ms) ((((uint64_t) (4294967.296 * (ms))) >> 11) << 11)

static OwSlot slot = { .type = OW_SLOT_FIXED, .param = GAP };

static OwSessionRequest make_request(uint32_t n_packets) {
        OwSessionRequest r = {
                .ipvn = 4,
                .conf_receiver = true,
                .n_slots = 1,
                .n_packets = n_packets,
                .sender_port = 8760,
                .receiver_port = 9000,
                .sender_addr = { 192, 0, 2, 1 },
                .receiver_addr = { 198, 51, 100, 7 },
                .start_time = START,
                .timeout = UINT64_C(2) << 32,
                .slots = &slot,
        };
        test_unhex("00112233445566778899aabbccddeeff", r.sid.bytes, OW_SID_SIZE);
        return r;
}

static OwRecord rx(uint32_t seq, uint64_t delay) {
        OwTimestamp t = START + ((uint64_t) seq + 1) * GAP;
        return (OwRecord){
                .seq = seq,
                .send_err = OW_ERREST_UNSYNC,
                .recv_err = OW_ERREST_UNSYNC,
                .send_time = t,
                .recv_time = t + delay,
                .ttl = 255,
        };
}

static OwRecord lost(uint32_t seq) {
        OwRecord r = rx(seq, 0);
        r.recv_time = 0;
        return r;
}

typedef struct Array {
        const OwRecord *recs;
        uint32_t n;
} Array;

static int array_get(void *userdata, uint32_t i, OwRecord *ret) {
        const Array *a = userdata;
        if (i >= a->n)
                return -ERANGE;
        *ret = a->recs[i];
        return 0;
}

/* Records 0, 2, 1 arrive (1 after 2: 1-reordered), 3 is lost. */
static const OwRecord *sample_records(void) {
        static OwRecord recs[4];
        recs[0] = rx(0, D(0.15));
        recs[1] = rx(2, D(0.25));
        recs[2] = rx(1, D(0.35));
        recs[3] = lost(3);
        return recs;
}

static OwReportSession sample_session(OwSessionRequest *req, Array *a) {
        *req = make_request(4);
        *a = (Array){ .recs = sample_records(), .n = 4 };
        return (OwReportSession){
                .request = req,
                .finished = true,
                .from_host = "sender.example",
                .to_host = NULL, /* unresolved: the numeric address */
                .records = { .n_records = a->n, .get = array_get, .userdata = a },
        };
}

static char *report(const OwReportSession *s, const OwReportOptions *o) {
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        ck_assert_int_eq(ow_report_session(s, o, &sink, NULL), 0);
        return b.data ? b.data : strdup("");
}

#define SAMPLE_HEADER                                                                     \
        "\n--- owping statistics from [sender.example]:8760 to [198.51.100.7]:9000 ---\n" \
        "SID:\t00112233445566778899aabbccddeeff\n"

START_TEST(test_summary) {
        OwSessionRequest req;
        Array a;
        OwReportSession s = sample_session(&req, &a);
        OwReportOptions o;
        ow_report_options_init(&o);

        /* P50 over 4 sent: 2 samples reached at bucket 3 (0.3 ms), above
         * the delays of 2 of the 3 arrivals; P95 needs 3.8 of 4 with one
         * packet lost: "nan", and so the jitter. */
        _cleanup_free_ char *out = report(&s, &o);
        ck_assert_str_eq(out, SAMPLE_HEADER "first:\t2025-11-24T19:06:40.008\n"
                                            "last:\t2025-11-24T19:06:40.031\n"
                                            "4 sent, 1 lost (25.000%), 0 duplicates\n"
                                            "one-way delay min/median/max = 0.15/0.3/0.35 ms, (unsync)\n"
                                            "one-way jitter = nan ms (P95-P50)\n"
                                            "hops = 0 (consistently)\n"
                                            "1-reordering = 33.333333%\n"
                                            "no 2-reordering\n"
                                            "\n");
}
END_TEST

START_TEST(test_summary_units_and_percentiles) {
        OwSessionRequest req;
        Array a;
        OwReportSession s = sample_session(&req, &a);
        OwReportOptions o;
        ow_report_options_init(&o);
        float pct[] = { 25.0f, 50.0f, 75.0f, 99.9f };
        o.percentiles = pct;
        o.n_percentiles = ELEMENTSOF(pct);

        /* Seconds: no unit label at all (the reference's quirk). */
        o.units = 's';
        _cleanup_free_ char *sec = report(&s, &o);
        ck_assert_ptr_nonnull(strstr(sec, "min/median/max = 0.00015/0.0003/0.00035 , (unsync)\n"));
        ck_assert_ptr_nonnull(strstr(sec, "one-way jitter = nan  (P95-P50)\n"));
        ck_assert_ptr_nonnull(strstr(sec, "Percentiles:\n"
                                          "\t25.0: 0.0002 \n"
                                          "\t50.0: 0.0003 \n"
                                          "\t75.0: 0.0004 \n"
                                          "\t99.9: nan \n"
                                          "hops"));

        /* Nanoseconds print with %.3g too: exponents appear. */
        o.units = 'N';
        _cleanup_free_ char *ns = report(&s, &o);
        ck_assert_ptr_nonnull(strstr(ns, "min/median/max = 1.5e+05/3e+05/3.5e+05 ns, (unsync)\n"));

        o.units = 'u';
        o.n_percentiles = 0;
        _cleanup_free_ char *us = report(&s, &o);
        ck_assert_ptr_nonnull(strstr(us, "min/median/max = 150/300/350 us, (unsync)\n"));
        ck_assert_ptr_null(strstr(us, "Percentiles"));
}
END_TEST

START_TEST(test_machine) {
        OwSessionRequest req;
        Array a;
        OwReportSession s = sample_session(&req, &a);
        OwReportOptions o;
        ow_report_options_init(&o);
        o.machine = true;
        o.unix_time = true;

        _cleanup_free_ char *out = report(&s, &o);
        ck_assert_str_eq(out, "SUMMARY\t3.00\n"
                              "SID\t00112233445566778899aabbccddeeff\n"
                              "FROM_HOST\tsender.example\n"
                              "FROM_ADDR\t192.0.2.1\n"
                              "FROM_PORT\t8760\n"
                              "TO_HOST\t198.51.100.7\n"
                              "TO_ADDR\t198.51.100.7\n"
                              "TO_PORT\t9000\n"
                              "START_TIME\t17063905067041554432\n"
                              "END_TIME\t17063905067142217728\n"
                              "UNIX_START_TIME\t1764011200.007812\n"
                              "UNIX_END_TIME\t1764011200.031250\n"
                              "DSCP\t0x00\n"
                              "LOSS_TIMEOUT\t8589934592\n"
                              "PACKET_PADDING\t0\n"
                              "SESSION_PACKET_COUNT\t4\n"
                              "SAMPLE_PACKET_COUNT\t4\n"
                              "BUCKET_WIDTH\t0.0001\n"
                              "SESSION_FINISHED\t1\n"
                              "SENT\t4\n"
                              "SYNC\t0\n"
                              "MAXERR\t4.65661e-10\n"
                              "DUPS\t0\n"
                              "LOST\t1\n"
                              "MIN\t0.000149727\n"
                              "MEDIAN\t0.0003\n"
                              "MAX\t0.000349998\n"
                              "<BUCKETS>\n"
                              "\t2\t1\n"
                              "\t3\t1\n"
                              "\t4\t1\n"
                              "</BUCKETS>\n"
                              "MINTTL\t255\n"
                              "MAXTTL\t255\n"
                              "<TTLBUCKETS>\n"
                              "\t255\t3\n"
                              "</TTLBUCKETS>\n"
                              "\n"
                              "<NREORDERING>\n"
                              "\t1\t1\n"
                              "</NREORDERING>\n");
}
END_TEST

START_TEST(test_all_lost) {
        /* Nothing arrived: "nan" everywhere, no TTLs, no buckets. (The
         * lost records carry unsynchronised receive estimates.) */
        OwSessionRequest req = make_request(2);
        req.type_p = 0x40000000; /* PHB form, not DSCP: no DSCP line */
        OwRecord recs[] = { lost(0), lost(1) };
        Array a = { recs, 2 };
        OwReportSession s = {
                .request = &req,
                .records = { .n_records = 2, .get = array_get, .userdata = &a },
        };
        OwReportOptions o;
        ow_report_options_init(&o);

        _cleanup_free_ char *out = report(&s, &o);
        ck_assert_ptr_nonnull(strstr(out, "[192.0.2.1]:8760 to [198.51.100.7]:9000"));
        ck_assert_ptr_nonnull(strstr(out, "2 sent, 2 lost (100.000%), 0 duplicates\n"
                                          "one-way delay min/median/max = nan/nan/nan ms, (unsync)\n"
                                          "one-way jitter = nan ms (P95-P50)\n"
                                          "TTL not reported\n"
                                          "no reordering\n\n"));

        o.machine = true;
        _cleanup_free_ char *m = report(&s, &o);
        ck_assert_ptr_null(strstr(m, "DSCP"));
        ck_assert_ptr_null(strstr(m, "MIN\t"));
        ck_assert_ptr_null(strstr(m, "MEDIAN"));
        ck_assert_ptr_null(strstr(m, "<BUCKETS>"));
        ck_assert_ptr_nonnull(strstr(m, "SESSION_FINISHED\t0\n"));
        ck_assert_ptr_nonnull(
                strstr(m, "LOST\t2\nMINTTL\t255\nMAXTTL\t0\n\n<NREORDERING>\n\t1\t0\n</NREORDERING>\n"));

        /* An empty session: synchronised by default, err 0. */
        a.n = 0;
        s.records.n_records = 0;
        o.machine = false;
        _cleanup_free_ char *e = report(&s, &o);
        ck_assert_ptr_nonnull(strstr(e, "0 sent, 0 lost (0.000%), 0 duplicates\n"
                                        "one-way delay min/median/max = nan/nan/nan ms, (err=0 ms)\n"));
}
END_TEST

START_TEST(test_ttl_lines) {
        OwSessionRequest req = make_request(3);
        OwRecord recs[] = { rx(0, D(1)), rx(1, D(1)), rx(2, D(1)) };
        recs[0].ttl = 250;
        recs[1].ttl = 252;
        recs[2].ttl = 250;
        Array a = { recs, 3 };
        OwReportSession s = { .request = &req, .records = { 3, array_get, &a } };
        OwReportOptions o;
        ow_report_options_init(&o);

        _cleanup_free_ char *out = report(&s, &o);
        ck_assert_ptr_nonnull(strstr(out, "hops takes 2 values; min hops = 3, max hops = 5\n"));
        o.machine = true;
        _cleanup_free_ char *m = report(&s, &o);
        ck_assert_ptr_nonnull(
                strstr(m, "MINTTL\t250\nMAXTTL\t252\n<TTLBUCKETS>\n\t250\t2\n\t252\t1\n</TTLBUCKETS>\n"));
}
END_TEST

START_TEST(test_first_last_rounding) {
        /* first: prints the milliseconds of the nanoseconds as a float with
         * "%03.0f": 999.6 ms rounds up to "1000" without a carry. */
        OwSessionRequest req = make_request(1);
        req.start_time = START + ow_frac_from_nsec(999600000) - GAP;
        Array a = { NULL, 0 };
        OwReportSession s = { .request = &req, .records = { 0, array_get, &a } };
        OwReportOptions o;
        ow_report_options_init(&o);
        _cleanup_free_ char *out = report(&s, &o);
        ck_assert_ptr_nonnull(
                strstr(out, "first:\t2025-11-24T19:06:40.1000\nlast:\t2025-11-24T19:06:40.1000\n"));
}
END_TEST

START_TEST(test_records) {
        OwSessionRequest req;
        Array a;
        OwReportSession s = sample_session(&req, &a);
        OwReportOptions o;
        ow_report_options_init(&o);
        o.records = true;

        /* -v: the header, the records in file order, then the summary
         * (which repeats the header). */
        _cleanup_free_ char *out = report(&s, &o);
        ck_assert_ptr_eq(strstr(out, SAMPLE_HEADER "seq_no=0          delay=0.15 ms\t(unsync)\n"
                                                   "seq_no=2          delay=0.25 ms\t(unsync)\n"
                                                   "seq_no=1          delay=0.35 ms\t(unsync)\n"
                                                   "seq_no=3          *LOST*\n" SAMPLE_HEADER "first:"),
                         out);

        /* Synchronised records: err= after the delay; with -U the unix
         * times and %e. */
        OwRecord r = rx(7, D(0.25));
        r.send_err = OW_ERREST_S_BIT | 0x0a40; /* 64 << 10 units */
        r.recv_err = OW_ERREST_S_BIT | 0x0a40;
        OwStatsRecordInfo info = {
                .kind = OW_STATS_RECORD_RECEIVED,
                .sync = true,
                .delay = 0.00025,
                .error = ow_stats_errest_seconds(r.send_err) + ow_stats_errest_seconds(r.recv_err),
        };
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        ck_assert_int_eq(ow_report_record(&sink, &o, &r, &info), 0);
        ck_assert_str_eq(b.data, "seq_no=7          delay=0.25 ms\t(sync, err=0.0305 ms)\n");
        ow_buf_done(&b);

        o.unix_time = true;
        ck_assert_int_eq(ow_report_record(&sink, &o, &r, &info), 0);
        ck_assert_str_eq(b.data, "seq_no=7 delay=2.500000e-01 ms (sync, err=0.0305 ms) "
                                 "sent=1764011200.062500 recv=1764011200.062750\n");
        ow_buf_done(&b);

        /* Skipped and out-of-range records print nothing. */
        info.kind = OW_STATS_RECORD_SKIPPED;
        ck_assert_int_eq(ow_report_record(&sink, &o, &r, &info), 0);
        ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_raw) {
        OwSessionRequest req;
        Array a;
        OwReportSession s = sample_session(&req, &a);
        OwReportOptions o;
        ow_report_options_init(&o);
        o.raw = true;

        _cleanup_free_ char *out = report(&s, &o);
        ck_assert_str_eq(out,
                         "0 17063905067041554432 0 2.32831e-10 17063905067042197504 0 2.32831e-10 255\n"
                         "2 17063905067108663296 0 2.32831e-10 17063905067109736448 0 2.32831e-10 255\n"
                         "1 17063905067075108864 0 2.32831e-10 17063905067076612096 0 2.32831e-10 255\n"
                         "3 17063905067142217728 0 2.32831e-10 00000000000000000000 0 2.32831e-10 255\n");

        OwRecord r = rx(5, 1);
        r.send_err = OW_ERREST_S_BIT | 0x0a40;
        r.ttl = 61;
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        ck_assert_int_eq(ow_report_raw_record(&sink, &r), 0);
        ck_assert_str_eq(b.data,
                         "5 17063905067209326592 1 1.52588e-05 17063905067209326593 0 2.32831e-10 61\n");
        ow_buf_done(&b);
}
END_TEST

START_TEST(test_sub_sessions_and_limit) {
        OwSessionRequest req;
        Array a;
        OwReportSession s = sample_session(&req, &a);
        OwReportOptions o;
        ow_report_options_init(&o);
        o.sub_packets = 2;

        /* -N 2: [0,2) and [2,4), each block with its own counts; packet 1
         * arriving after packet 2 is in another block: no reordering. */
        _cleanup_free_ char *out = report(&s, &o);
        const char *second = strstr(out + 1, SAMPLE_HEADER);
        ck_assert_ptr_nonnull(second);
        ck_assert_ptr_nonnull(strstr(out, "2 sent, 0 lost (0.000%), 0 duplicates\n"));
        ck_assert_ptr_nonnull(strstr(out, "last:\t2025-11-24T19:06:40.016\n"));
        ck_assert_ptr_nonnull(strstr(second, "first:\t2025-11-24T19:06:40.023\n"));
        ck_assert_ptr_nonnull(strstr(second, "2 sent, 1 lost (50.000%), 0 duplicates\n"));
        ck_assert_ptr_null(strstr(out, "reordering ="));

        /* -v2 -N 2: each block reads at most 2 records, starting at the
         * first record the previous block saw at or past its end. Block 1
         * reads 0 and 2 (packet 1 is never seen, nor lost); block 2 starts
         * at record 1 (seq 2) and reads 2 and 1. */
        o.records = true;
        o.records_limit = 2;
        _cleanup_free_ char *v = report(&s, &o);
        ck_assert_str_eq(v, SAMPLE_HEADER "seq_no=0          delay=0.15 ms\t(unsync)\n" SAMPLE_HEADER
                                          "first:\t2025-11-24T19:06:40.008\n"
                                          "last:\t2025-11-24T19:06:40.016\n"
                                          "1 sent, 0 lost (0.000%), 0 duplicates\n"
                                          "one-way delay min/median/max = 0.15/0.2/0.15 ms, (unsync)\n"
                                          "one-way jitter = 0 ms (P95-P50)\n"
                                          "hops = 0 (consistently)\n"
                                          "no reordering\n"
                                          "\n" SAMPLE_HEADER
                                          "seq_no=2          delay=0.25 ms\t(unsync)\n" SAMPLE_HEADER
                                          "first:\t2025-11-24T19:06:40.023\n"
                                          "last:\t2025-11-24T19:06:40.031\n"
                                          "1 sent, 0 lost (0.000%), 0 duplicates\n"
                                          "one-way delay min/median/max = 0.25/0.3/0.25 ms, (unsync)\n"
                                          "one-way jitter = 0 ms (P95-P50)\n"
                                          "hops = 0 (consistently)\n"
                                          "no reordering\n"
                                          "\n");
}
END_TEST

typedef struct Files {
        OwBuf blocks[4];
        char *names[4];
        size_t n_open, n_closed;
} Files;

static int files_open(void *userdata, OwSink *ret) {
        Files *f = userdata;
        ck_assert_uint_lt(f->n_open, 4);
        *ret = ow_buf_sink(&f->blocks[f->n_open++]);
        return 0;
}

static int files_close(void *userdata, const char *name) {
        Files *f = userdata;
        f->names[f->n_closed++] = name ? strdup(name) : NULL;
        return 0;
}

START_TEST(test_print_files) {
        OwSessionRequest req;
        Array a;
        OwReportSession s = sample_session(&req, &a);
        OwReportOptions o;
        ow_report_options_init(&o);
        o.print_files = true;
        o.save_dir = ".";
        o.sub_packets = 2;
        o.machine = true;
        Files f = {};
        OwReportFiles hooks = { files_open, files_close, &f };
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);

        ck_assert_int_eq(ow_report_session(&s, &o, &sink, &hooks), 0);
        ck_assert_uint_eq(f.n_open, 2);
        ck_assert_uint_eq(f.n_closed, 2);
        ck_assert_str_eq(f.names[0], "./17063905067041554432_17063905067075108864.sum");
        ck_assert_str_eq(f.names[1], "./17063905067108663296_17063905067142217728.sum");
        ck_assert_str_eq(b.data, "./17063905067041554432_17063905067075108864.sum\n"
                                 "./17063905067108663296_17063905067142217728.sum\n");
        ck_assert(strncmp(f.blocks[0].data, "SUMMARY\t3.00\n", 13) == 0);
        ck_assert_ptr_nonnull(strstr(f.blocks[1].data, "SAMPLE_PACKET_COUNT\t2\n"));
        for (size_t i = 0; i < 2; i++) {
                ow_buf_done(&f.blocks[i]);
                free(f.names[i]);
        }
        ow_buf_done(&b);

        /* -p without hooks is a caller bug. */
        ck_assert_int_eq(ow_report_session(&s, &o, &sink, NULL), -EINVAL);
}
END_TEST

START_TEST(test_failure) {
        /* A lost record for a packet already seen: the reference's parse
         * fails after printing what it had; with -p the block is dropped. */
        OwSessionRequest req = make_request(4);
        OwRecord recs[] = { rx(0, D(0.1)), lost(0) };
        Array a = { recs, 2 };
        OwReportSession s = { .request = &req, .records = { 2, array_get, &a } };
        OwReportOptions o;
        ow_report_options_init(&o);
        o.records = true;
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        ck_assert_int_eq(ow_report_session(&s, &o, &sink, NULL), -OW_ERR_DUPLICATE);
        ck_assert_ptr_nonnull(strstr(b.data, "seq_no=0          delay=0.0997 ms\t(unsync)\n"));
        ck_assert_ptr_null(strstr(b.data, "first:"));
        ow_buf_done(&b);

        o.print_files = true;
        Files f = {};
        OwReportFiles hooks = { files_open, files_close, &f };
        ck_assert_int_eq(ow_report_session(&s, &o, &sink, &hooks), -OW_ERR_DUPLICATE);
        ck_assert_uint_eq(f.n_closed, 1);
        ck_assert_ptr_null(f.names[0]);
        ck_assert_ptr_null(b.data);
        ow_buf_done(&f.blocks[0]);

        /* -N whose block end wraps in 32 bits: the reference computes an
         * inverted range for the second block and fails there. */
        req.n_packets = 0xfffffff0u;
        s.records.n_records = 0;
        o.print_files = false;
        o.records = false;
        o.sub_packets = 0x7ffffff8u; /* 2 x N = the packet count: no wrap */
        ck_assert_int_eq(ow_report_session(&s, &o, &sink, NULL), 0);
        ck_assert_ptr_nonnull(strstr(b.data, "first:"));
        ow_buf_done(&b);
        o.sub_packets = 0x80000000u; /* 2 x N wraps to 0 */
        ck_assert_int_eq(ow_report_session(&s, &o, &sink, NULL), -OW_ERR_RANGE);
        ck_assert_ptr_nonnull(strstr(b.data, "first:"));
        ck_assert_ptr_null(strstr(strstr(b.data, "first:") + 1, "first:"));
        ow_buf_done(&b);
}
END_TEST

START_TEST(test_version0_file) {
        /* Version 0 files carry no request: -R prints them (TTL 255), the
         * statistics refuse them, as the reference's. */
        uint8_t file[16 + 24];
        memset(file, 0, sizeof(file));
        memcpy(file, "OwA\0", 4);
        file[15] = 16; /* header length, 64-bit big-endian */
        uint8_t *rec = file + 16;
        rec[3] = 9;                                              /* seq 9 */
        memcpy(rec + 4, "\xec\xcf\x11\x00\x00\x00\x00\x00", 8);  /* send time */
        rec[13] = 0x01;                                          /* send error 0x0001 */
        memcpy(rec + 14, "\xec\xcf\x11\x00\x00\x01\x00\x00", 8); /* receive time */
        rec[23] = 0x01;

        OwReportFile rf;
        ck_assert_int_eq(ow_report_file_init(&rf, file, sizeof(file)), 0);
        ck_assert_ptr_null(rf.session.request);
        ck_assert_uint_eq(rf.session.records.n_records, 1);

        OwReportOptions o;
        ow_report_options_init(&o);
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        ck_assert_int_eq(ow_report_session(&rf.session, &o, &sink, NULL), -OW_ERR_VERSION);
        ck_assert_ptr_null(b.data);
        o.raw = true;
        ck_assert_int_eq(ow_report_session(&rf.session, &o, &sink, NULL), 0);
        ck_assert_str_eq(b.data,
                         "9 17063876204827770880 0 2.32831e-10 17063876204827836416 0 2.32831e-10 255\n");
        ow_buf_done(&b);
        ow_report_file_done(&rf);
}
END_TEST

START_TEST(test_options) {
        double f;
        const char *l;
        ck_assert_int_eq(ow_report_units('n', &f, &l), 0);
        ck_assert(f == 1e9);
        ck_assert_str_eq(l, "ns");
        ck_assert_int_eq(ow_report_units('U', &f, &l), 0);
        ck_assert_str_eq(l, "us");
        ck_assert_int_eq(ow_report_units('m', &f, &l), 0);
        ck_assert(f == 1e3);
        ck_assert_int_eq(ow_report_units('s', &f, &l), 0);
        ck_assert_str_eq(l, "");
        ck_assert_int_eq(ow_report_units('x', &f, &l), -EINVAL);

        OwReportOptions o;
        const char *w[OW_REPORT_MAX_WARNINGS];
        ow_report_options_init(&o);
        ck_assert_int_eq(o.units, 'm');
        ck_assert(o.bucket_width == 0.0001f);

        o.records = o.machine = o.quiet = true;
        ck_assert_uint_eq(ow_report_options_reconcile(&o, w), 2);
        ck_assert_str_eq(w[0], "Ignoring '-v', '-Q' set");
        ck_assert_str_eq(w[1], "Ignoring '-M', '-Q' set");
        ck_assert(!o.records && !o.machine);

        ow_report_options_init(&o);
        o.records = o.machine = true;
        ck_assert_uint_eq(ow_report_options_reconcile(&o, w), 1);
        ck_assert_str_eq(w[0], "Ignoring '-v', '-M' set");
        ck_assert(!o.records && o.machine);

        /* -R implies -Q, so -R -v warns about -Q. */
        ow_report_options_init(&o);
        o.raw = o.records = true;
        ck_assert_uint_eq(ow_report_options_reconcile(&o, w), 1);
        ck_assert_str_eq(w[0], "Ignoring '-v', '-Q' set");

        ow_report_options_init(&o);
        o.quiet = true;
        ck_assert_uint_eq(ow_report_options_reconcile(&o, w), 0);

        float *p;
        size_t n;
        ck_assert_int_eq(ow_report_parse_percentiles("50,90,95,99", &p, &n), 0);
        ck_assert_uint_eq(n, 4);
        ck_assert(p[0] == 50.0f && p[3] == 99.0f);
        free(p);
        ck_assert_int_eq(ow_report_parse_percentiles("33.3,0,100,12abc", &p, &n), 0);
        ck_assert_uint_eq(n, 4);
        ck_assert(p[0] == 33.3f && p[1] == 0.0f && p[2] == 100.0f && p[3] == 12.0f);
        free(p);
        ck_assert_int_eq(ow_report_parse_percentiles("50,,90", &p, &n), -EINVAL);
        ck_assert_int_eq(ow_report_parse_percentiles("50,", &p, &n), -EINVAL);
        ck_assert_int_eq(ow_report_parse_percentiles("", &p, &n), -EINVAL);
        ck_assert_int_eq(ow_report_parse_percentiles("100.5", &p, &n), -EINVAL);
        ck_assert_int_eq(ow_report_parse_percentiles("-1", &p, &n), -EINVAL);
        ck_assert_int_eq(ow_report_parse_percentiles("x", &p, &n), -EINVAL);

        char *name;
        ck_assert_int_eq(ow_report_file_name(NULL, 1, UINT64_MAX, false, &name), 0);
        ck_assert_str_eq(name, "00000000000000000001_18446744073709551615.txt");
        free(name);
        ck_assert_int_eq(ow_report_file_name("/tmp/x", 17, 18, true, &name), 0);
        ck_assert_str_eq(name, "/tmp/x/00000000000000000017_00000000000000000018.sum");
        free(name);
}
END_TEST

/*
 * The golden fixtures: every owstats output in test/data/reference-outputs
 * regenerated from its .owp file with the options MANIFEST.md lists, and
 * compared byte for byte (stdout, and the warnings on stderr). Host names
 * as on the machine that made them: 127.0.0.1 is "localhost".
 */

typedef struct Fixture {
        uint8_t *data;
        size_t size;
        OwReportFile rf;
} Fixture;

static void fixture_load(Fixture *fx, const char *name) {
        char path[512];
        snprintf(path, sizeof(path), "reference-outputs/%s", name);
        test_read_file(test_data_path(path), &fx->data, &fx->size);
        ck_assert_int_eq(ow_report_file_init(&fx->rf, fx->data, fx->size), 0);

        const OwSessionRequest *req = fx->rf.session.request;
        static const uint8_t loopback[4] = { 127, 0, 0, 1 };
        ck_assert_ptr_nonnull(req);
        if (req->ipvn == 4 && memcmp(req->sender_addr, loopback, 4) == 0)
                fx->rf.session.from_host = "localhost";
        if (req->ipvn == 4 && memcmp(req->receiver_addr, loopback, 4) == 0)
                fx->rf.session.to_host = "localhost";
}

static void fixture_done(Fixture *fx) {
        ow_report_file_done(&fx->rf);
        free(fx->data);
}

/* Options by the <format> part of "<source>.<format>.txt" (MANIFEST.md 5). */
static const struct {
        const char *format;
        const char *args;
} formats[] = {
        { "default", "" },
        { "v", "v" },
        { "v10", "v10" },
        { "M", "M" },
        { "R", "R" },
        { "a50-90-95-99", "a50,90,95,99" },
        { "b0.00001", "b0.00001" },
        { "b0.000001", "b0.000001" },
        { "nn", "nn" },
        { "nu", "nu" },
        { "nm", "nm" },
        { "ns", "ns" },
        { "Q", "Q" },
        { "U", "U" },
        { "vU", "v U" },
        { "MU", "M U" },
        { "N25", "N25" },
        { "MN25", "M N25" },
        { "Ma", "M a50,90,95,99" },
        { "Mb0.00001", "M b0.00001" },
        { "QM", "Q M" },
        { "Qv", "Q v" },
        { "vM", "v M" },
        { "nu-a25-75-b0.000001", "nu a25,75 b0.000001" },
};

/* Apply "v10 M a50,90" style option words (letter + glued argument). */
static void apply_args(const char *args, OwReportOptions *o, float **pct) {
        char buf[128];
        snprintf(buf, sizeof(buf), "%s", args);
        for (char *w = strtok(buf, " "); w; w = strtok(NULL, " ")) {
                const char *v = w + 1;
                switch (w[0]) {
                case 'v':
                        o->records = true;
                        o->records_limit = *v ? (uint32_t) strtoul(v, NULL, 10) : 0;
                        break;
                case 'M':
                        o->machine = true;
                        break;
                case 'R':
                        o->raw = true;
                        break;
                case 'Q':
                        o->quiet = true;
                        break;
                case 'U':
                        o->unix_time = true;
                        break;
                case 'n':
                        o->units = *v;
                        break;
                case 'b':
                        o->bucket_width = (float) strtod(v, NULL);
                        break;
                case 'N':
                        o->sub_packets = (uint32_t) strtoul(v, NULL, 10);
                        break;
                case 'a':
                        free(*pct);
                        ck_assert_int_eq(ow_report_parse_percentiles(v, pct, &o->n_percentiles), 0);
                        o->percentiles = *pct;
                        break;
                default:
                        ck_abort_msg("bad option word %s", w);
                }
        }
}

/* Fail with the first line where got and want differ. */
static void assert_same_text(const char *name, const char *got, const char *want) {
        if (got && streq(got, want))
                return;
        got = got ? got : "";
        size_t i = 0, line = 1, bol = 0;
        while (got[i] && got[i] == want[i]) {
                if (got[i] == '\n') {
                        line++;
                        bol = i + 1;
                }
                i++;
        }
        ck_abort_msg("%s differs at line %zu:\n got: %.100s\nwant: %.100s", name, line, got + bol,
                     want + bol);
}

static char *read_text(const char *name) {
        char path[512];
        uint8_t *d;
        size_t n;
        snprintf(path, sizeof(path), "reference-outputs/%s", name);
        test_read_file(test_data_path(path), &d, &n);
        char *s = realloc(d, n + 1);
        ck_assert_ptr_nonnull(s);
        s[n] = '\0';
        return s;
}

static bool file_exists(const char *name) {
        char path[512];
        snprintf(path, sizeof(path), "reference-outputs/%s", name);
        FILE *f = fopen(test_data_path(path), "re");
        if (f)
                fclose(f);
        return f != NULL;
}

/* Run owstats' work for one fixture: sources[] with the format's options;
 * stdout into out, warnings (stderr) into err. */
static void run_owstats(const char *const *sources, size_t n_sources, const char *args, OwBuf *out,
                        OwBuf *err) {
        _cleanup_free_ float *pct = NULL;
        OwReportOptions o;
        const char *w[OW_REPORT_MAX_WARNINGS];
        OwSink sink = ow_buf_sink(out), esink = ow_buf_sink(err);

        ow_report_options_init(&o);
        apply_args(args, &o, &pct);
        size_t n_w = ow_report_options_reconcile(&o, w);
        for (size_t i = 0; i < n_w; i++)
                ck_assert_int_eq(ow_sink_printf(&esink, "owstats: %s\n", w[i]), 0);

        for (size_t i = 0; i < n_sources; i++) {
                Fixture fx = {};
                fixture_load(&fx, sources[i]);
                ck_assert_int_eq(ow_report_session(&fx.rf.session, &o, &sink, NULL), 0);
                fixture_done(&fx);
        }
}

START_TEST(test_fixtures) {
        char dirpath[512];
        snprintf(dirpath, sizeof(dirpath), "%s", test_data_path("reference-outputs"));
        DIR *dir = opendir(dirpath);
        ck_assert_ptr_nonnull(dir);
        unsigned checked = 0;

        for (struct dirent *de; (de = readdir(dir));) {
                const char *name = de->d_name;
                size_t len = strlen(name);
                char source[2][256], format[128];
                const char *sources[2];
                size_t n_sources;

                if (len < 5 || strcmp(name + len - 4, ".txt") != 0 || strstr(name, ".stderr.txt"))
                        continue;

                const char *plus = strstr(name, ".from+to.");
                if (plus) {
                        /* "X.from+to.FMT.txt": owstats X-from.owp X-to.owp */
                        int base = (int) (plus - name);
                        snprintf(source[0], sizeof(source[0]), "%.*s-from.owp", base, name);
                        snprintf(source[1], sizeof(source[1]), "%.*s-to.owp", base, name);
                        snprintf(format, sizeof(format), "%.*s",
                                 (int) (len - 4 - (size_t) (plus - name) - 9), plus + 9);
                        n_sources = 2;
                } else {
                        /* "<source>.<format>.txt", the source being the longest
                         * prefix that names an .owp file. */
                        n_sources = 0;
                        for (size_t i = len - 4; i > 0; i--) {
                                if (name[i] != '.')
                                        continue;
                                snprintf(source[0], sizeof(source[0]), "%.*s.owp", (int) i, name);
                                if (file_exists(source[0])) {
                                        snprintf(format, sizeof(format), "%.*s", (int) (len - 4 - i - 1),
                                                 name + i + 1);
                                        n_sources = 1;
                                        break;
                                }
                        }
                        if (n_sources == 0)
                                continue; /* owping/owfetch runs, usage text, ... */
                }

                const char *args = NULL;
                for (size_t i = 0; i < ELEMENTSOF(formats); i++)
                        if (streq(formats[i].format, format))
                                args = formats[i].args;
                if (!args)
                        continue; /* -p listings: test_fixtures_print_files */

                sources[0] = source[0];
                sources[1] = source[1];
                OwBuf out = {}, err = {};
                run_owstats(sources, n_sources, args, &out, &err);

                _cleanup_free_ char *want = read_text(name);
                assert_same_text(name, out.data, want);

                char stderr_name[300];
                snprintf(stderr_name, sizeof(stderr_name), "%.*s.stderr.txt", (int) (len - 4), name);
                if (file_exists(stderr_name)) {
                        _cleanup_free_ char *want_err = read_text(stderr_name);
                        assert_same_text(stderr_name, err.data, want_err);
                } else
                        ck_assert_msg(!err.data, "%s: unexpected warnings %s", name, err.data);

                ow_buf_done(&out);
                ow_buf_done(&err);
                checked++;
        }
        closedir(dir);
        /* Every owstats output of MANIFEST.md 5: 248 single-file ones and
         * 15 with two files. */
        ck_assert_uint_eq(checked, 263);
}
END_TEST

START_TEST(test_fixtures_print_files) {
        /* -p -d . : the listing on stdout and each file's content. */
        static const struct {
                const char *listing;
                const char *args;
        } cases[] = {
                { "exp100-from.p.txt", "" },
                { "exp100-from.pM.txt", "M" },
                { "exp100-from.pN50.txt", "N50" },
        };
        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                _cleanup_free_ float *pct = NULL;
                OwReportOptions o;
                ow_report_options_init(&o);
                apply_args(cases[c].args, &o, &pct);
                o.print_files = true;
                o.save_dir = ".";

                Fixture fx = {};
                Files f = {};
                OwReportFiles hooks = { files_open, files_close, &f };
                OwBuf out = {};
                OwSink sink = ow_buf_sink(&out);
                fixture_load(&fx, "exp100-from.owp");
                ck_assert_int_eq(ow_report_session(&fx.rf.session, &o, &sink, &hooks), 0);
                fixture_done(&fx);

                _cleanup_free_ char *want = read_text(cases[c].listing);
                assert_same_text(cases[c].listing, out.data, want);
                ck_assert_uint_eq(f.n_closed, c == 2 ? 2 : 1);
                for (size_t i = 0; i < f.n_closed; i++) {
                        char name[300];
                        snprintf(name, sizeof(name), "exp100-from.p-output/%s", f.names[i] + 2);
                        _cleanup_free_ char *content = read_text(name);
                        assert_same_text(name, f.blocks[i].data, content);
                        ow_buf_done(&f.blocks[i]);
                        free(f.names[i]);
                }
                ow_buf_done(&out);
        }
}
END_TEST

static Suite *report_suite(void) {
        Suite *s = suite_create("report");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_summary);
        tcase_add_test(tc, test_summary_units_and_percentiles);
        tcase_add_test(tc, test_machine);
        tcase_add_test(tc, test_all_lost);
        tcase_add_test(tc, test_ttl_lines);
        tcase_add_test(tc, test_first_last_rounding);
        tcase_add_test(tc, test_records);
        tcase_add_test(tc, test_raw);
        tcase_add_test(tc, test_sub_sessions_and_limit);
        tcase_add_test(tc, test_print_files);
        tcase_add_test(tc, test_failure);
        tcase_add_test(tc, test_version0_file);
        tcase_add_test(tc, test_options);
        suite_add_tcase(s, tc);
        TCase *fx = tcase_create("fixtures");
        tcase_set_timeout(fx, 60);
        tcase_add_test(fx, test_fixtures);
        tcase_add_test(fx, test_fixtures_print_files);
        suite_add_tcase(s, fx);
        return s;
}

int main(void) {
        return test_run_suite(report_suite());
}
