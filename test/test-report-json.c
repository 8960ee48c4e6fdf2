/* SPDX-License-Identifier: Apache-2.0 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ow-report-json.h"
#include "testutil.h"

static char *render_string(const char *s) {
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        ck_assert_int_eq(ow_json_string(&sink, s), 0);
        return b.data;
}

static char *render_double(double v) {
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        ck_assert_int_eq(ow_json_double(&sink, v), 0);
        return b.data;
}

START_TEST(test_string) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "localhost", "\"localhost\"" },
                { "", "\"\"" },
                { "a\"b\\c", "\"a\\\"b\\\\c\"" },
                { "tab\there\nnl\x01\x1f\x7f", "\"tab\\u0009here\\u000anl\\u0001\\u001f\\u007f\"" },
                /* Valid UTF-8 passes: é, €, U+1F600. */
                { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" },
                /* Invalid octets become U+FFFD, one each: a lone continuation,
                 * a truncated sequence, an overlong '/', a surrogate, past
                 * U+10FFFF. */
                { "\x80x", "\"\\ufffdx\"" },
                { "\xe2\x82", "\"\\ufffd\\ufffd\"" },
                { "\xc0\xaf", "\"\\ufffd\\ufffd\"" },
                { "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },
                { "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = render_string(cases[i].in);
                ck_assert_str_eq(s, cases[i].out);
        }
}
END_TEST

START_TEST(test_double) {
        static const struct {
                double in;
                const char *out;
        } cases[] = {
                { 0.0001, "0.0001" },
                { 0.1, "0.1" },
                { 1.0 / 3.0, "0.3333333333333333" },
                { 4.656612873077393e-10, "4.656612873077393e-10" },
                { 2.0002250000834465, "2.0002250000834465" },
                { -0.004, "-0.004" },
                { 1e300, "1e+300" },
                { 0.0, "0" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = render_double(cases[i].in);
                ck_assert_str_eq(s, cases[i].out);
                ck_assert(strtod(s, NULL) == cases[i].in);
        }
        _cleanup_free_ char *n = render_double(NAN), *p = render_double(INFINITY),
                            *m = render_double(-INFINITY);
        ck_assert_str_eq(n, "null");
        ck_assert_str_eq(p, "null");
        ck_assert_str_eq(m, "null");
}
END_TEST

START_TEST(test_time) {
        char buf[64];
        /* 2026-11-28T05:15:07 with a fraction of 2^31 (0.5 s). */
        OwTimestamp t = ((UINT64_C(1795842907) + OW_NTP_UNIX_OFFSET_SEC) << 32) | UINT64_C(0x80000000);
        ck_assert_int_eq(ow_json_iso8601(t, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "2026-11-28T05:15:07.500000000Z");
        /* The smallest fraction: 0.23 ns, truncated. */
        ck_assert_int_eq(ow_json_iso8601((t & ~UINT64_C(0xffffffff)) | 1, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "2026-11-28T05:15:07.000000000Z");
        /* Before 1970 (NTP era 0 still): no wrap. */
        ck_assert_int_eq(ow_json_iso8601(UINT64_C(2208988799) << 32, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "1969-12-31T23:59:59.000000000Z");
        ck_assert_int_eq(ow_json_iso8601(t, buf, 10), -ENOBUFS);

        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        ck_assert_int_eq(ow_json_timestamp(&sink, t), 0);
        ck_assert_str_eq(b.data, "{\"ntp\":\"17200621209696337920\",\"unix\":1795842907.500000,"
                                 "\"iso8601\":\"2026-11-28T05:15:07.500000000Z\"}");
        ow_buf_done(&b);
}
END_TEST

START_TEST(test_reconcile) {
        const char *w[OW_REPORT_MAX_WARNINGS];
        OwReportOptions o;

        ow_report_options_init(&o);
        o.json = o.machine = o.print_files = o.records = true;
        ck_assert_uint_eq(ow_report_options_reconcile(&o, w), 2);
        ck_assert_str_eq(w[0], "Ignoring '-M', '--json' set");
        ck_assert_str_eq(w[1], "Ignoring '-p', '--json' set");
        ck_assert(o.json && o.records && !o.machine && !o.print_files);

        /* -R implies -Q, which drops --json; -R stays. */
        ow_report_options_init(&o);
        o.json = o.raw = true;
        ck_assert_uint_eq(ow_report_options_reconcile(&o, w), 1);
        ck_assert_str_eq(w[0], "Ignoring '--json', '-Q' set");
        ck_assert(!o.json && o.raw);

        /* Everything at once: the most warnings there can be. */
        ow_report_options_init(&o);
        o.json = o.machine = o.print_files = o.records = o.quiet = true;
        size_t n = ow_report_options_reconcile(&o, w);
        ck_assert_uint_le(n, OW_REPORT_MAX_WARNINGS);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(w[0], "Ignoring '-v', '-Q' set");
        ck_assert_str_eq(w[1], "Ignoring '-M', '-Q' set");
        ck_assert_str_eq(w[2], "Ignoring '--json', '-Q' set");
        ck_assert(!o.json && !o.machine && !o.records && o.print_files);
}
END_TEST

/* A whole document for a session with a lost packet, a duplicate and a
 * host name that needs escaping. */
static int array_get(void *userdata, uint32_t i, OwRecord *ret) {
        *ret = ((const OwRecord *) userdata)[i];
        return 0;
}

START_TEST(test_document) {
        OwSlot slot = { .type = OW_SLOT_FIXED, .param = UINT64_C(1) << 25 };
        OwTimestamp start = UINT64_C(3973000000) << 32;
        OwSessionRequest req = {
                .ipvn = 6,
                .conf_receiver = true,
                .n_slots = 1,
                .n_packets = 3,
                .sender_port = 8760,
                .receiver_port = 9000,
                .sender_addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 },
                .receiver_addr = { [15] = 1 },
                .start_time = start,
                .timeout = UINT64_C(2) << 32,
                .type_p = UINT32_C(46) << 24,
                .slots = &slot,
        };
        OwRecord recs[4];
        for (uint32_t i = 0; i < 3; i++)
                recs[i] = (OwRecord){
                        .seq = i,
                        .send_err = OW_ERREST_UNSYNC,
                        .recv_err = OW_ERREST_UNSYNC,
                        .send_time = start + (i + 1) * slot.param,
                        .recv_time = start + (i + 1) * slot.param + (UINT64_C(1) << 22),
                        .ttl = 250,
                };
        /* 0, 1, a copy of 1, then 2 declared lost (a loss record settles
         * every packet below it, so the copy must come first). */
        recs[3] = recs[2];
        recs[3].recv_time = 0;
        recs[2] = recs[1];
        OwSkipRange skip = { .first = 7, .last = 9 };
        OwReportSession s = {
                .request = &req,
                .skips = &skip,
                .n_skips = 1,
                .finished = true,
                .from_host = "weird\"host",
                .mode = "encrypted",
                .records = { .n_records = 4, .get = array_get, .userdata = recs },
        };
        OwReportOptions o;
        ow_report_options_init(&o);
        o.json = true;
        o.records = true;

        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        ck_assert_int_eq(ow_report_session(&s, &o, &sink, NULL), 0);
        ck_assert_ptr_nonnull(b.data);
        /* One line. */
        ck_assert_ptr_eq(strchr(b.data, '\n'), b.data + b.len - 1);
        ck_assert_ptr_nonnull(strstr(b.data,
                                     "\"sender\":{\"host\":\"weird\\\"host\",\"address\":\"2001:db8::1\","
                                     "\"port\":8760}"));
        ck_assert_ptr_nonnull(
                strstr(b.data, "\"receiver\":{\"host\":\"::1\",\"address\":\"::1\",\"port\":9000}"));
        ck_assert_ptr_nonnull(strstr(b.data, "\"mode\":\"encrypted\",\"ip_version\":6"));
        ck_assert_ptr_nonnull(
                strstr(b.data, "\"dscp\":46,\"schedule\":[{\"type\":\"fixed\",\"interval\":0.0078125}]"));
        ck_assert_ptr_nonnull(strstr(b.data, "\"skip_ranges\":[{\"first_seqno\":7,\"last_seqno\":9}]"));
        ck_assert_ptr_nonnull(strstr(b.data, "\"sent\":3,\"lost\":1,\"duplicates\":1,"));
        ck_assert_ptr_nonnull(strstr(b.data, "{\"seqno\":2,\"lost\":true,"));
        ck_assert_ptr_nonnull(strstr(b.data, "\"recv_time\":null,\"delay\":null,"));
        /* 2^22 units = 0.9765625 ms: bucket 10 of 0.1 ms. */
        ck_assert_ptr_nonnull(strstr(b.data, "\"buckets\":[{\"index\":10,\"count\":2}]"));
        ck_assert_ptr_nonnull(strstr(b.data, "\"hops\":{\"min\":5,\"max\":5,\"distinct\":1}"));
        /* Exact: rank 2 of 3 (the lost packet is rank 3), so no P95. */
        ck_assert_ptr_nonnull(strstr(b.data, "\"delay\":{\"min\":0.0009765625,\"median\":0.0009765625,"
                                             "\"max\":0.0009765625,\"jitter\":null}"));
        /* The histogram's: bucket 10's edge with the float width. */
        ck_assert_ptr_nonnull(
                strstr(b.data, "\"histogram\":{\"bucket_width\":0.0001,\"median\":0.0009999999747378752,"
                               "\"jitter\":null,\"percentiles\":[{\"percentile\":25,"
                               "\"delay\":0.0009999999747378752},"));
        ck_assert_ptr_nonnull(
                strstr(b.data, "\"percentiles\":[{\"percentile\":25,\"delay\":0.0009765625},"));
        ck_assert(strncmp(b.data, "{\"schema\":\"owamp-report\",\"schema_version\":2,", 44) == 0);
        ck_assert(strcmp(b.data + b.len - 4, "}]}\n") == 0);
        ow_buf_done(&b);
}
END_TEST

static Suite *json_suite(void) {
        Suite *s = suite_create("report-json");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_string);
        tcase_add_test(tc, test_double);
        tcase_add_test(tc, test_time);
        tcase_add_test(tc, test_reconcile);
        tcase_add_test(tc, test_document);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(json_suite());
}
