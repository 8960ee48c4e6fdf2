/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ow-error.h"
#include "ow-report.h"
#include "ow-substream.h"
#include "testutil.h"

/*
 * test/data/powstream/: what perfSONAR powstream 5.2.3 wrote against its own
 * owampd on loopback (`powstream -p -d DIR -c 60 -N 20 -b 0.001 -i 0.1 -L 2
 * 127.0.0.1:PORT`): one session's .owp, its .sum, and the .sum files of its
 * three sub-sessions, named as it named them.
 */
#define SESSION "17202492222907767316_17202492244725575930"
static const char *const subs[] = {
        "17202492222907767316_17202492227452511129",
        "17202492227452511129_17202492234523088316",
        "17202492234523088316_17202492244725575930",
};

static char *data_path(const char *name, const char *ext) {
        char *p;
        ck_assert_int_ge(asprintf(&p, "%s/powstream/%s%s", TEST_DATA_DIR, name, ext), 0);
        return p;
}

static char *read_text(const char *name, const char *ext) {
        char *path = data_path(name, ext);
        uint8_t *buf;
        size_t len;
        test_read_file(path, &buf, &len);
        free(path);
        char *s = malloc(len + 1);
        ck_assert_ptr_nonnull(s);
        memcpy(s, buf, len);
        s[len] = '\0';
        free(buf);
        return s;
}

typedef struct Loaded {
        uint8_t *data;
        size_t len;
        OwReportFile rf;
} Loaded;

static void load(Loaded *l) {
        char *path = data_path(SESSION, ".owp");
        test_read_file(path, &l->data, &l->len);
        free(path);
        ck_assert_int_eq(ow_report_file_init(&l->rf, l->data, l->len), 0);
        /* The reference's summaries name the hosts as its resolver did. */
        l->rf.session.from_host = "localhost";
        l->rf.session.to_host = "localhost";
}

static void unload(Loaded *l) {
        ow_report_file_done(&l->rf);
        free(l->data);
}

START_TEST(test_names_as_reference) {
        Loaded l;
        OwSpan session, *spans = NULL;
        size_t n = 0;

        load(&l);
        const OwSessionRequest *req = l.rf.session.request;
        ck_assert_int_eq(ow_substream_spans(req, 20, &session, &spans, &n), 0);
        ck_assert_uint_eq(n, 3);

        char *name;
        ck_assert_int_eq(ow_substream_file_name(NULL, session.start, session.end, "", &name), 0);
        ck_assert_str_eq(name, SESSION);
        free(name);
        for (size_t k = 0; k < n; k++) {
                ck_assert_int_eq(ow_substream_file_name("", spans[k].start, spans[k].end, "", &name), 0);
                ck_assert_str_eq(name, subs[k]);
                free(name);
                ck_assert_uint_eq(spans[k].first, 20 * k);
                ck_assert_uint_eq(spans[k].last, 20 * (k + 1));
                ck_assert_uint_eq(spans[k].last_due, spans[k].end);
        }
        /* Consecutive spans share their end points; the last ends the session. */
        ck_assert_uint_eq(spans[0].start, session.start);
        ck_assert_uint_eq(spans[1].start, spans[0].end);
        ck_assert_uint_eq(spans[2].end, session.end);

        ck_assert_int_eq(ow_substream_file_name("dir/x", session.start, session.end, ".owp", &name), 0);
        ck_assert_str_eq(name, "dir/x/" SESSION ".owp");
        free(name);

        /* Without -N: the session alone. */
        OwSpan again;
        ck_assert_int_eq(ow_substream_spans(req, 0, &again, NULL, NULL), 0);
        ck_assert_mem_eq(&again, &session, sizeof(OwSpan));
        free(spans);
        unload(&l);
}
END_TEST

START_TEST(test_refusals) {
        Loaded l;
        OwSpan session;

        load(&l);
        OwSessionRequest req = *l.rf.session.request;
        /* -N must divide -c, as the reference requires. */
        ck_assert_int_eq(ow_substream_spans(&req, 7, &session, NULL, NULL), -OW_ERR_COUNT);
        ck_assert_int_eq(ow_substream_spans(&req, 61, &session, NULL, NULL), -OW_ERR_COUNT);
        ck_assert_int_eq(ow_substream_spans(NULL, 20, &session, NULL, NULL), -EINVAL);
        req.n_packets = 0;
        ck_assert_int_eq(ow_substream_spans(&req, 0, &session, NULL, NULL), -EINVAL);
        req = *l.rf.session.request;
        req.n_slots = 0;
        ck_assert_int_eq(ow_substream_spans(&req, 0, &session, NULL, NULL), -OW_ERR_COUNT);
        unload(&l);
}
END_TEST

/* The statistics of each sub-session over one OwStats, as powstream keeps
 * them, give the reference's .sum files octet for octet (they were written
 * while the session ran: SESSION_FINISHED 0); the whole session's, its
 * final .sum. */
START_TEST(test_summaries_as_reference) {
        Loaded l;
        OwSpan session, *spans = NULL;
        size_t n = 0;
        OwStats *st = NULL;
        uint32_t index = 0;
        OwReportOptions o;

        load(&l);
        OwReportSession s = l.rf.session;
        ow_report_options_init(&o);
        o.machine = true;
        o.bucket_width = 0.001f;
        ck_assert_int_eq(ow_substream_spans(s.request, 20, &session, &spans, &n), 0);
        ck_assert_int_eq(ow_stats_new(s.request, s.skips, s.n_skips, o.bucket_width, &st), 0);
        s.finished = false;
        for (size_t k = 0; k < n; k++) {
                OwBuf b = {};
                OwSink sink = ow_buf_sink(&b);
                ck_assert_int_eq(ow_report_parse_block(st, &s.records, s.request->n_packets, spans[k].first,
                                                       spans[k].last, 0, &index, NULL, NULL),
                                 0);
                ck_assert_int_eq(ow_report_machine(&sink, &s, st, &o), 0);
                char *want = read_text(subs[k], ".sum");
                ck_assert_str_eq(b.data, want);
                free(want);
                ow_buf_done(&b);
        }
        ow_stats_free(st);

        s.finished = l.rf.session.finished;
        ck_assert(s.finished);
        ck_assert_int_eq(ow_stats_new(s.request, s.skips, s.n_skips, o.bucket_width, &st), 0);
        index = 0;
        ck_assert_int_eq(ow_report_parse_block(st, &s.records, s.request->n_packets, 0, UINT32_MAX, 0, &index, NULL,
                                               NULL),
                         0);
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        ck_assert_int_eq(ow_report_machine(&sink, &s, st, &o), 0);
        char *want = read_text(SESSION, ".sum");
        ck_assert_str_eq(b.data, want);
        free(want);
        ow_buf_done(&b);
        ow_stats_free(st);
        free(spans);
        unload(&l);
}
END_TEST

static int count_records(void *userdata, const OwRecord *r _unused_, const OwStatsRecordInfo *info) {
        unsigned *n = userdata;
        if (info->kind == OW_STATS_RECORD_RECEIVED)
                (*n)++;
        return 0;
}

START_TEST(test_parse_block_callback) {
        Loaded l;
        OwStats *st = NULL;
        uint32_t index = 0;
        unsigned seen = 0;

        load(&l);
        const OwReportSession *s = &l.rf.session;
        ck_assert_int_eq(ow_stats_new(s->request, s->skips, s->n_skips, 0.0001, &st), 0);
        /* records_limit 10: only the first ten records are looked at. */
        ck_assert_int_eq(ow_report_parse_block(st, &s->records, s->request->n_packets, 0, UINT32_MAX, 10, &index,
                                               count_records, &seen),
                         0);
        ck_assert_uint_eq(seen, 10);
        ck_assert_uint_eq(ow_stats_result(st)->sent, 10);
        ck_assert_uint_eq(ow_stats_result(st)->lost, 0);
        /* An inverted range is refused. */
        ck_assert_int_eq(ow_report_parse_block(st, &s->records, s->request->n_packets, 30, 20, 0, &index, NULL, NULL),
                         -OW_ERR_RANGE);
        ow_stats_free(st);
        unload(&l);
}
END_TEST

static Suite *substream_suite(void) {
        Suite *s = suite_create("substream");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_names_as_reference);
        tcase_add_test(tc, test_refusals);
        tcase_add_test(tc, test_summaries_as_reference);
        tcase_add_test(tc, test_parse_block_callback);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(substream_suite());
}
