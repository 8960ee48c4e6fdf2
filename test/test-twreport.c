/* SPDX-License-Identifier: Apache-2.0 */

/*
 * twping's reports (ow-twreport.h, ow-twstats.h) against the reference:
 * the saved .twp files of the mode-* runs (test/data/twamp/saved) decoded
 * and reported must print what the reference's twping printed for exactly
 * those records (outputs/mode-X.stdout, after its "Approximately" line)
 * and what the reference's owstats printed reading mode-O.twp (summary,
 * -M, -v); every -R line the reference printed must come back from its
 * record; and hostile two-way files and records are refused with their
 * error.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ow-error.h"
#include "ow-owp.h"
#include "ow-report-json.h"
#include "ow-twreport.h"
#include "testutil.h"

typedef struct Fixture {
        uint8_t *data;
        size_t size;
        OwReportFile rf;
} Fixture;

static void fixture_open(Fixture *fx, const char *name, const char *to_host) {
        char path[256];

        snprintf(path, sizeof(path), "twamp/saved/%s", name);
        test_read_file(test_data_path(path), &fx->data, &fx->size);
        ck_assert_int_eq(ow_report_file_init(&fx->rf, fx->data, fx->size), 0);
        ck_assert(fx->rf.session.twoway);
        /* The reference looked the local address up (localhost); twping
         * prints the peer as typed, owstats looks it up. */
        fx->rf.session.from_host = "localhost";
        fx->rf.session.to_host = to_host;
}

static void fixture_close(Fixture *fx) {
        ow_report_file_done(&fx->rf);
        free(fx->data);
}

/* The reference's stdout, without twping's "Approximately ..." line. */
static char *expected(const char *path) {
        uint8_t *data;
        size_t size;

        test_read_file(test_data_path(path), &data, &size);
        char *s = calloc(1, size + 1);
        ck_assert_ptr_nonnull(s);
        memcpy(s, data, size);
        free(data);
        if (strncmp(s, "Approximately ", 14) == 0) {
                char *nl = strchr(s, '\n');
                ck_assert_ptr_nonnull(nl);
                memmove(s, nl + 1, strlen(nl + 1) + 1);
        }
        return s;
}

static char *report(Fixture *fx, const OwReportOptions *o) {
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);

        ck_assert_int_eq(ow_report_session(&fx->rf.session, o, &sink, NULL), 0);
        ck_assert_ptr_nonnull(b.data);
        return b.data;
}

static OwReportOptions defaults(void) {
        OwReportOptions o;

        ow_report_options_init(&o);
        o.localtime = NULL; /* UTC, as the reference runs were */
        return o;
}

/* What ow_report_session() prints for saved/NAME with these options. */
static char *report_of(const char *name, const char *to_host, const OwReportOptions *o) {
        Fixture fx = {};

        fixture_open(&fx, name, to_host);
        char *got = report(&fx, o);
        fixture_close(&fx);
        return got;
}

static const char *const modes[] = { "O", "A", "E", "M" };

START_TEST(test_twping_summary) {
        const char *mode = modes[_i];
        OwReportOptions o = defaults();
        char name[64], out[64];

        snprintf(name, sizeof(name), "mode-%s.twp", mode);
        snprintf(out, sizeof(out), "twamp/outputs/mode-%s.stdout", mode);
        _cleanup_free_ char *want = expected(out);
        _cleanup_free_ char *got = report_of(name, "127.0.0.1", &o);
        ck_assert_str_eq(got, want);
}
END_TEST

START_TEST(test_owstats_twp) {
        static const char *const suffix[] = { "", "-M", "-v" };
        OwReportOptions o = defaults();
        char path[128];

        o.machine = _i == 1;
        o.records = _i == 2;
        snprintf(path, sizeof(path), "twamp/saved/owstats-mode-O%s.stdout", suffix[_i]);
        _cleanup_free_ char *want = expected(path);
        _cleanup_free_ char *got = report_of("mode-O.twp", "localhost", &o);
        ck_assert_str_eq(got, want);
}
END_TEST

/* Parse one 16-field -R line back into a record (the test's own reader,
 * as pScheduler's plugin reads them). */
static void raw_parse(const char *line, OwTwRecord *ret) {
        OwTwRecord rec = { .sender_err = 1, .reflector_err = 1, .recv_err = 1 };
        unsigned s1, s2, s3, s4, sttl, rttl;
        double e1, e2, e3, e4;

        ck_assert_int_eq(sscanf(line,
                                "%" SCNu32 " %" SCNu64 " %u %lf %" SCNu64 " %u %lf %u %" SCNu32 " %" SCNu64
                                " %u %lf %" SCNu64 " %u %lf %u",
                                &rec.sender_seq, &rec.t1, &s1, &e1, &rec.t2, &s2, &e2, &sttl,
                                &rec.reflector_seq, &rec.t3, &s3, &e3, &rec.t4, &s4, &e4, &rttl),
                         16);
        /* Every estimate in these runs is 0x0001 (scale 0, multiplier 1, S 0). */
        ck_assert(e1 == e2 && e2 == e3 && e3 == e4);
        ck_assert(s1 == 0 && s2 == 0 && s3 == 0 && s4 == 0);
        ck_assert(sttl <= 255 && rttl <= 255);
        rec.sender_ttl = (uint8_t) sttl;
        rec.ttl = (uint8_t) rttl;
        *ret = rec;
}

START_TEST(test_raw_lines) {
        static const char *const runs[] = {
                "mode-O-R", "mode-A-R", "mode-E-R", "mode-M-R", "loss-O-R", "pscheduler-R",
        };
        char path[128];
        unsigned lines = 0, lost = 0;

        for (size_t k = 0; k < ELEMENTSOF(runs); k++) {
                snprintf(path, sizeof(path), "twamp/outputs/%s.stdout", runs[k]);
                _cleanup_free_ char *want = expected(path);
                char *save = NULL;
                for (char *line = strtok_r(want, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                        OwTwRecord rec;
                        OwBuf b = {};
                        OwSink sink = ow_buf_sink(&b);

                        raw_parse(line, &rec);
                        ck_assert_int_eq(ow_twreport_raw_record(&sink, &rec), 0);
                        ck_assert_ptr_nonnull(b.data);
                        ck_assert_uint_eq(b.len, strlen(line) + 1);
                        ck_assert(memcmp(b.data, line, b.len - 1) == 0);
                        ck_assert_int_eq(b.data[b.len - 1], '\n');
                        lost += ow_tw_record_lost(&rec);
                        lines++;
                        ow_buf_done(&b);
                }
        }
        /* 4 x 10 + 20 + 20 + the loss run's duplicates: the loss run's
         * lost records are among them. */
        ck_assert_uint_ge(lines, 80);
        ck_assert_uint_gt(lost, 0);
}
END_TEST

/* -R of a saved file: one line per record, the lost ones' zeros kept. */
START_TEST(test_raw_session) {
        OwReportOptions o = defaults();

        o.raw = true;
        _cleanup_free_ char *got = report_of("mode-O.twp", "localhost", &o);
        /* The first record, decoded by hand from the file's octets
         * (TWAMP-PROTOCOL.md 7). */
        ck_assert(strncmp(got,
                          "0 17202200934426050864 0 2.32831e-10 17202200934426647864 0 2.32831e-10 255 0 "
                          "17202200934426725173 0 2.32831e-10 17202200934426798188 0 2.32831e-10 255\n",
                          strlen("0 17202200934426050864 0 2.32831e-10 17202200934426647864 0 2.32831e-10 "
                                 "255 0 "
                                 "17202200934426725173 0 2.32831e-10 17202200934426798188 0 2.32831e-10 "
                                 "255\n")) == 0);
        unsigned n = 0;
        for (const char *p = got; (p = strchr(p, '\n')); p++)
                n++;
        ck_assert_uint_eq(n, 10);
}
END_TEST

/* -v3 -N 5 -n n, as the reference's opts-v3-N run: the first block has the
 * first three records; the second starts over at the file's first record
 * (none of the three reached its range) and so is empty, with the
 * reference's nan lines. */
START_TEST(test_sub_sessions) {
        OwReportOptions o = defaults();

        o.records = true;
        o.records_limit = 3;
        o.sub_packets = 5;
        o.units = 'n';
        _cleanup_free_ char *got = report_of("mode-O.twp", "127.0.0.1", &o);
        ck_assert_ptr_nonnull(
                strstr(got, "\n3 sent, 0 lost (0.000%), 0 send duplicates, 0 reflect duplicates\n"));
        ck_assert_ptr_nonnull(strstr(got, "seq_no=2          fwd_delay="));
        ck_assert_ptr_null(strstr(got, "seq_no=3 "));

        /* The empty block, line for line as the reference printed it. */
        _cleanup_free_ char *ref = expected("twamp/outputs/opts-v3-N.stdout");
        const char *ref_empty = strstr(ref, "\n0 sent,");
        const char *got_empty = strstr(got, "\n0 sent,");
        ck_assert_ptr_nonnull(ref_empty);
        ck_assert_ptr_nonnull(got_empty);
        ck_assert_str_eq(got_empty, ref_empty);
}
END_TEST

/* -v -U -n u -a 25,75 (the reference's opts-vU form): the first record's
 * line as computed by hand from the file (T1..T4 as doubles, 2^-32 s per
 * estimate), and the round trip's percentiles from its histogram (5
 * delays in (0, 100] us, 4 in (100, 200]). */
START_TEST(test_unix_percentiles) {
        static const float pct[] = { 25.0f, 75.0f };
        OwReportOptions o = defaults();

        o.records = o.unix_time = true;
        o.units = 'u';
        o.percentiles = pct;
        o.n_percentiles = ELEMENTSOF(pct);
        _cleanup_free_ char *got = report_of("mode-O.twp", "127.0.0.1", &o);
        ck_assert_ptr_nonnull(strstr(got,
                                     "\nseq_no=0 fwd_delay=1.392365e+02 us bck_delay=1.716614e+01 us "
                                     "delay=1.564026e+02 us proc_delay=1.764297e+01 us (err=0.000931 us) "
                                     "sent=1796210715.825615 recv=1796210715.825754 "
                                     "reflected=1796210715.825772 recv=1796210715.825789\n"));
        ck_assert_ptr_nonnull(strstr(got, "(P95-P50)\nPercentiles:\n\t25.0: 100 us\n\t75.0: 200 us\n"
                                          "send hops = 0 (consistently)\n"));
}
END_TEST

START_TEST(test_json) {
        OwReportOptions o = defaults();

        o.json = true;
        o.records = true;
        _cleanup_free_ char *got = report_of("mode-O.twp", "localhost", &o);
        ck_assert(strncmp(got, "{\"schema\":\"twamp-report\",\"schema_version\":1,", 44) == 0);
        ck_assert_ptr_nonnull(strstr(got, "\"records\":10}"));
        ck_assert_ptr_nonnull(
                strstr(got, "\"sent\":10,\"lost\":0,\"send_duplicates\":0,\"reflect_duplicates\":0,"));
        ck_assert_ptr_nonnull(strstr(got, "\"round_trip\":{\"direction\":\"round_trip\",\"sync\":true,"));
        ck_assert_ptr_nonnull(strstr(got, "\"send\":{\"direction\":\"send\""));
        ck_assert_ptr_nonnull(strstr(got, "\"reflect\":{\"direction\":\"reflect\""));
        ck_assert_ptr_nonnull(strstr(got, "{\"seqno\":9,\"lost\":false,"));
        ck_assert_uint_eq(got[strlen(got) - 1], '\n');
}
END_TEST

/* The file codec: .twp and .owp each refuse the other's records. */
START_TEST(test_twp_parse) {
        uint8_t *data;
        size_t size;
        OwOwpFile f;
        OwRecord one;
        OwTwRecord two;

        test_read_file(test_data_path("twamp/saved/mode-A.twp"), &data, &size);
        ck_assert_int_eq(ow_owp_parse(data, size, &f), -OW_ERR_VERSION);
        ck_assert_int_eq(ow_twp_parse(data, size, &f), 0);
        ck_assert_uint_eq(f.version, OW_TWP_VERSION);
        ck_assert_uint_eq(f.n_records, 10);
        ck_assert_uint_eq(f.request.n_packets, 10);
        ck_assert_int_eq(ow_owp_get_record(&f, 0, &one), -OW_ERR_VERSION);
        ck_assert_int_eq(ow_twp_get_record(&f, 10, &two), -ERANGE);
        ck_assert_int_eq(ow_twp_get_record(&f, 9, &two), 0);
        ck_assert_uint_eq(two.sender_seq, 9);

        /* A torn last record is not served. */
        ck_assert_int_eq(ow_twp_parse(data, size - 1, &f), 0);
        ck_assert_uint_eq(f.n_records, 9);

        /* An OWAMP version, and a version 3 file read as .twp. */
        data[7] = 3;
        ck_assert_int_eq(ow_twp_parse(data, size, &f), -OW_ERR_VERSION);
        ck_assert_int_eq(ow_twp_parse(NULL, 1, &f), -EINVAL);
        ck_assert_int_eq(ow_twp_parse(data, 3, &f), -OW_ERR_TRUNCATED);
        data[0] = 'X';
        ck_assert_int_eq(ow_twp_parse(data, size, &f), -OW_ERR_MAGIC);
        free(data);
}
END_TEST

/* Hostile records: one reflector seq for two sender seqs, and a loss of a
 * packet already answered, fail the pass as the reference's parse does. */
START_TEST(test_hostile_records) {
        _cleanup_(ow_tw_stats_freep) OwTwStats *st = NULL;
        Fixture fx = {};
        OwTwRecord a, b;

        fixture_open(&fx, "mode-O.twp", "localhost");
        const OwReportSession *s = &fx.rf.session;
        ck_assert_int_eq(ow_tw_stats_new(s->request, NULL, 0, 0.0001, &st), 0);

        ck_assert_int_eq(ow_tw_stats_begin(st, 0, UINT32_MAX), 0);
        ck_assert_int_eq(s->tw_records.get(s->tw_records.userdata, 0, &a), 0);
        ck_assert_int_eq(s->tw_records.get(s->tw_records.userdata, 1, &b), 0);
        ck_assert_int_eq(ow_tw_stats_add(st, &a, NULL), 0);
        b.reflector_seq = a.reflector_seq;
        ck_assert_int_eq(ow_tw_stats_add(st, &b, NULL), -OW_ERR_DUPLICATE);

        ck_assert_int_eq(ow_tw_stats_begin(st, 0, UINT32_MAX), 0);
        ck_assert_int_eq(ow_tw_stats_add(st, &a, NULL), 0);
        b = (OwTwRecord){ .sender_seq = a.sender_seq,
                          .t1 = a.t1,
                          .sender_err = 1,
                          .reflector_err = 1,
                          .recv_err = 1,
                          .sender_ttl = 255,
                          .ttl = 255 };
        ck_assert_int_eq(ow_tw_stats_add(st, &b, NULL), -OW_ERR_DUPLICATE);

        /* Send and reflect duplicates: the same answer twice, then the
         * packet answered again under a new reflector seq. */
        OwTwStatsRecordInfo info;
        ck_assert_int_eq(ow_tw_stats_begin(st, 0, UINT32_MAX), 0);
        ck_assert_int_eq(ow_tw_stats_add(st, &a, &info), 0);
        ck_assert_int_eq(info.kind, OW_STATS_RECORD_RECEIVED);
        ck_assert_int_eq(ow_tw_stats_add(st, &a, &info), 0);
        b = a;
        b.reflector_seq = 77;
        ck_assert_int_eq(ow_tw_stats_add(st, &b, &info), 0);
        ck_assert_int_eq(ow_tw_stats_end(st), 0);
        ck_assert_uint_eq(ow_tw_stats_result(st)->reflect_dups, 1);
        ck_assert_uint_eq(ow_tw_stats_result(st)->send_dups, 1);
        ck_assert_uint_eq(ow_stats_result(ow_tw_stats_direction(st, OW_TW_ROUND_TRIP))->sent, 1);
        fixture_close(&fx);
}
END_TEST

/* A long session: the duplicate bookkeeping forgets settled packets
 * (ow-twstats.c) and still counts every duplicate of the open ones. */
#define LONG_START (UINT64_C(3973000000) << 32)
#define LONG_GAP (UINT64_C(1) << 25)
#define LONG_PACKETS 20000u

START_TEST(test_long_session) {
        _cleanup_(ow_tw_stats_freep) OwTwStats *st = NULL;
        OwSlot slot = { .type = OW_SLOT_FIXED, .param = LONG_GAP };
        OwSessionRequest req = {
                .ipvn = 4,
                .conf_receiver = true,
                .n_slots = 1,
                .n_packets = LONG_PACKETS,
                .start_time = LONG_START,
                .timeout = UINT64_C(2) << 32,
                .slots = &slot,
        };

        ck_assert_int_eq(ow_tw_stats_new(&req, NULL, 0, 0.0001, &st), 0);
        ck_assert_int_eq(ow_tw_stats_begin(st, 0, UINT32_MAX), 0);
        for (uint32_t k = 0; k < LONG_PACKETS; k++) {
                OwTimestamp t1 = LONG_START + ((uint64_t) k + 1) * LONG_GAP;
                OwTwRecord rec = {
                        .sender_seq = k,
                        .reflector_seq = k,
                        .t1 = t1,
                        .t2 = t1 + (1u << 20),
                        .t3 = t1 + (1u << 20) + (1u << 16),
                        .t4 = t1 + (2u << 20) + (1u << 16),
                        .sender_err = 1,
                        .reflector_err = 1,
                        .recv_err = 1,
                        .sender_ttl = 255,
                        .ttl = 255,
                };
                ck_assert_int_eq(ow_tw_stats_add(st, &rec, NULL), 0);
                if (k % 100 == 0) /* the answer twice */
                        ck_assert_int_eq(ow_tw_stats_add(st, &rec, NULL), 0);
                if (k % 1000 == 0) { /* the packet answered twice */
                        rec.reflector_seq = LONG_PACKETS + k;
                        rec.t3 += 1u << 10;
                        rec.t4 += 1u << 10;
                        ck_assert_int_eq(ow_tw_stats_add(st, &rec, NULL), 0);
                }
        }
        ck_assert_int_eq(ow_tw_stats_end(st), 0);
        const OwStatsResult *r = ow_stats_result(ow_tw_stats_direction(st, OW_TW_ROUND_TRIP));
        ck_assert_uint_eq(r->sent, LONG_PACKETS);
        ck_assert_uint_eq(r->lost, 0);
        ck_assert_uint_eq(ow_tw_stats_result(st)->reflect_dups, LONG_PACKETS / 100);
        ck_assert_uint_eq(ow_tw_stats_result(st)->send_dups, LONG_PACKETS / 1000);
        /* T3 - T2 = 2^16 units, 15.26 us. */
        ck_assert(ow_tw_stats_result(st)->min_proc > 15.2e-6 && ow_tw_stats_result(st)->max_proc < 15.3e-6);
}
END_TEST

static Suite *twreport_suite(void) {
        Suite *s = suite_create("twreport");
        TCase *tc = tcase_create("core");

        const TTest *const tests[] = {
                test_raw_lines, test_raw_session, test_sub_sessions,    test_unix_percentiles,
                test_json,      test_twp_parse,   test_hostile_records, test_long_session,
        };

        tcase_add_loop_test(tc, test_twping_summary, 0, ELEMENTSOF(modes));
        tcase_add_loop_test(tc, test_owstats_twp, 0, 3);
        for (size_t i = 0; i < ELEMENTSOF(tests); i++)
                tcase_add_test(tc, tests[i]);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(twreport_suite());
}
