/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The --json report of owstats, owping and owfetch (ours; the reference has
 * none): one JSON document per session, written as one line, with the
 * session's metadata, one summary per (sub-)session and, with -v, the
 * per-packet records. The statistics come from the same OwStats pass as the
 * text formats, in seconds whatever -n says; the median, the jitter and the
 * percentiles are exact order statistics of the records (version 2), the
 * text formats' histogram values are under "histogram".
 *
 * The schema ("owamp-report", version OW_REPORT_JSON_VERSION) is documented
 * in owstats(1). Compatible additions (new keys) keep the version; any
 * other change bumps it.
 *
 * ow_report_session() calls these in order:
 *
 *     ow_report_json_begin()                      {"schema":...,"session":{...},"summaries":[
 *     per (sub-)session:
 *             ow_report_json_block_begin()        {  ["records":[
 *             ow_report_json_record() per record  (-v)
 *             ow_report_json_block_end()          ],] "sent":...}
 *     ow_report_json_end()                        ]}\n
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-report.h"
#include "ow-twstats.h"

#define OW_REPORT_JSON_SCHEMA "owamp-report"
#define OW_REPORT_JSON_VERSION 2

/* The percentiles a summary lists when -a gives none. */
#define OW_REPORT_JSON_DEFAULT_PERCENTILES \
        { 25.0f, 50.0f, 75.0f, 90.0f, 95.0f, 99.0f }

int ow_report_json_begin(const OwSink *out, const OwReportSession *s);
int ow_report_json_block_begin(const OwSink *out, bool first_block, bool records);
/* *first: true before the block's first record; cleared once one is printed. */
int ow_report_json_record(const OwSink *out, const OwRecord *r, const OwStatsRecordInfo *info, bool *first);
int ow_report_json_block_end(const OwSink *out, const OwStats *st, const OwReportOptions *o);
int ow_report_json_end(const OwSink *out);

/* A two-way session (OwReportSession.twoway) is a "twamp-report" document
 * (version OW_REPORT_JSON_TW_VERSION, owstats(1)): the same session object,
 * and per (sub-)session the counts, the two kinds of duplicates, the
 * reflector's processing time and one object per delay type ("round_trip",
 * "send", "reflect") with what a one-way summary has besides reordering. */
#define OW_REPORT_JSON_TW_SCHEMA "twamp-report"
#define OW_REPORT_JSON_TW_VERSION 1
int ow_report_json_tw_record(const OwSink *out, const OwTwRecord *r, const OwTwStatsRecordInfo *info,
                             bool *first);
int ow_report_json_tw_block_end(const OwSink *out, const OwTwStats *st, const OwReportOptions *o);

/* Building blocks, exposed for the tests. */

/* A JSON string literal (quotes included): control characters escaped,
 * valid UTF-8 passed through, each invalid octet replaced by U+FFFD. */
int ow_json_string(const OwSink *out, const char *s);
/* The shortest "%.{15,16,17}g" that reads back as v; null if not finite. */
int ow_json_double(const OwSink *out, double v);
/* {"ntp":"<64-bit 32.32 as decimal>","unix":<seconds>,"iso8601":"<UTC>"} */
int ow_json_timestamp(const OwSink *out, OwTimestamp t);
/* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (UTC, exact nanoseconds). */
int ow_json_iso8601(OwTimestamp t, char *buf, size_t size);
