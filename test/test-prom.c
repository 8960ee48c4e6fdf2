/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "ow-prom.h"
#include "testutil.h"

/* ck_assert_str_eq() cannot print texts this long: the first difference. */
static void assert_text(const char *got, const char *want) {
        size_t i = 0;
        while (got[i] && got[i] == want[i])
                i++;
        ck_assert_msg(got[i] == want[i], "texts differ at %zu: got \"%.60s\", want \"%.60s\"", i, got + i,
                      want + i);
}

#define LABELS "{stream=\"ams\",peer=\"192.0.2.1\",direction=\"from\"}"

START_TEST(test_prom_full) {
        OwPromStream s;
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);

        ow_prom_stream_init(&s);
        s.stream = "ams";
        s.peer = "192.0.2.1";
        s.direction = "from";
        s.delay_min = 0.000123456;
        s.delay_median = 0.0005;
        s.delay_p99 = 0.0125;
        s.delay_max = 1.5;
        s.jitter = 2.5e-05;
        s.last_end_unix = 1764745200.5;
        s.sent = 6000;
        s.lost = 3;
        s.duplicates = 1;
        s.reordered = 2;
        s.sessions = 20;
        s.failed = 18446744073709551615ULL;
        ck_assert_int_eq(ow_prom_format(&sink, &s), 0);
        assert_text(
                b.data,
                "# HELP owamp_stream_delay_min_seconds Smallest one-way delay of the last completed sub-session.\n"
                "# TYPE owamp_stream_delay_min_seconds gauge\n"
                "owamp_stream_delay_min_seconds" LABELS " 0.000123456\n"
                "# HELP owamp_stream_delay_median_seconds Median one-way delay of the last completed sub-session.\n"
                "# TYPE owamp_stream_delay_median_seconds gauge\n"
                "owamp_stream_delay_median_seconds" LABELS " 0.0005\n"
                "# HELP owamp_stream_delay_p99_seconds 99th percentile of the one-way delay of the last completed "
                "sub-session.\n"
                "# TYPE owamp_stream_delay_p99_seconds gauge\n"
                "owamp_stream_delay_p99_seconds" LABELS " 0.0125\n"
                "# HELP owamp_stream_delay_max_seconds Largest one-way delay of the last completed sub-session.\n"
                "# TYPE owamp_stream_delay_max_seconds gauge\n"
                "owamp_stream_delay_max_seconds" LABELS " 1.5\n"
                "# HELP owamp_stream_jitter_seconds Jitter (95th percentile minus median delay) of the last "
                "completed sub-session.\n"
                "# TYPE owamp_stream_jitter_seconds gauge\n"
                "owamp_stream_jitter_seconds" LABELS " 2.5e-05\n"
                "# HELP owamp_stream_last_result_timestamp_seconds End of the last completed sub-session's "
                "schedule, in Unix seconds.\n"
                "# TYPE owamp_stream_last_result_timestamp_seconds gauge\n"
                "owamp_stream_last_result_timestamp_seconds" LABELS " 1764745200.5\n"
                "# HELP owamp_stream_packets_sent_total Test packets sent in completed sessions.\n"
                "# TYPE owamp_stream_packets_sent_total counter\n"
                "owamp_stream_packets_sent_total" LABELS " 6000\n"
                "# HELP owamp_stream_packets_lost_total Test packets lost in completed sessions.\n"
                "# TYPE owamp_stream_packets_lost_total counter\n"
                "owamp_stream_packets_lost_total" LABELS " 3\n"
                "# HELP owamp_stream_packets_duplicated_total Duplicate test packets received in completed "
                "sessions.\n"
                "# TYPE owamp_stream_packets_duplicated_total counter\n"
                "owamp_stream_packets_duplicated_total" LABELS " 1\n"
                "# HELP owamp_stream_packets_reordered_total Test packets received out of order in completed "
                "sessions.\n"
                "# TYPE owamp_stream_packets_reordered_total counter\n"
                "owamp_stream_packets_reordered_total" LABELS " 2\n"
                "# HELP owamp_stream_sessions_completed_total Test sessions completed.\n"
                "# TYPE owamp_stream_sessions_completed_total counter\n"
                "owamp_stream_sessions_completed_total" LABELS " 20\n"
                "# HELP owamp_stream_sessions_failed_total Test sessions that failed.\n"
                "# TYPE owamp_stream_sessions_failed_total counter\n"
                "owamp_stream_sessions_failed_total" LABELS " 18446744073709551615\n");
        ck_assert_uint_eq(b.len, strlen(b.data));
        ow_buf_done(&b);
}
END_TEST

/* Before the first result: counters at 0, no gauge at all (a NaN would
 * look like a measurement). */
START_TEST(test_prom_empty) {
        OwPromStream s;
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);

        ow_prom_stream_init(&s);
        s.stream = "x";
        s.direction = "to";
        s.delay_max = 0.25;
        ck_assert_int_eq(ow_prom_format(&sink, &s), 0);
        ck_assert_ptr_null(strstr(b.data, "delay_min"));
        ck_assert_ptr_null(strstr(b.data, "jitter"));
        ck_assert_ptr_nonnull(strstr(b.data, "# TYPE owamp_stream_delay_max_seconds gauge\n"
                                             "owamp_stream_delay_max_seconds{stream=\"x\",peer=\"\","
                                             "direction=\"to\"} 0.25\n"));
        ck_assert_ptr_nonnull(strstr(b.data, "owamp_stream_sessions_failed_total{stream=\"x\",peer=\"\","
                                             "direction=\"to\"} 0\n"));
        ck_assert(strncmp(b.data, "# HELP owamp_stream_delay_max_seconds ", 38) == 0);
        ow_buf_done(&b);
}
END_TEST

/* Hostile label values: only \, " and LF need escaping; the line stays
 * one line. */
START_TEST(test_prom_escape) {
        OwPromStream s;
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);

        ow_prom_stream_init(&s);
        s.stream = "a\\b\"c\nd}";
        s.peer = "[2001:db8::1]:861";
        s.direction = "from";
        ck_assert_int_eq(ow_prom_format(&sink, &s), 0);
        ck_assert_ptr_nonnull(strstr(b.data, "\nowamp_stream_packets_sent_total{stream=\"a\\\\b\\\"c\\nd}\","
                                             "peer=\"[2001:db8::1]:861\",direction=\"from\"} 0\n"));
        size_t lines = 0;
        for (const char *p = b.data; *p; p++)
                lines += *p == '\n';
        ck_assert_uint_eq(lines, 6 * 3);
        ow_buf_done(&b);
}
END_TEST

static int failing_write(void *userdata, const char *data, size_t len) {
        size_t *budget = userdata;
        (void) data;
        if (len > *budget)
                return -ENOSPC;
        *budget -= len;
        return 0;
}

/* A sink that fails at any point: its error, at every point. */
START_TEST(test_prom_sink_error) {
        OwPromStream s;

        ow_prom_stream_init(&s);
        s.stream = "a\"b";
        s.delay_min = 0.001;
        for (size_t budget0 = 0; budget0 < 2000; budget0 += 7) {
                size_t budget = budget0;
                OwSink sink = { .write = failing_write, .userdata = &budget };
                int r = ow_prom_format(&sink, &s);
                ck_assert(r == 0 || r == -ENOSPC);
                if (budget0 < 100)
                        ck_assert_int_eq(r, -ENOSPC);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("prom");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_prom_full);
        tcase_add_test(tc, test_prom_empty);
        tcase_add_test(tc, test_prom_escape);
        tcase_add_test(tc, test_prom_sink_error);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
