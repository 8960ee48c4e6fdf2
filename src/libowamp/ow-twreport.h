/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * twping's reports of a two-way session, byte for byte as the reference's
 * twping (and its owstats reading a .twp file) prints them
 * (docs/notes/reference-twamp.md 3): the summary, -v lines, -M, -R, over
 * the statistics of ow-twstats.h. ow_report_session() (ow-report.h) calls
 * them for a session with .twoway set, with the same -N, -vN, -p, -Q and
 * option interplay as for one-way sessions; the pieces are here for
 * twping's own use and the tests.
 */

#include "ow-report.h"
#include "ow-twstats.h"

/* The summary block (o->machine: the -M block) of a (sub-)session that
 * ow_tw_stats_end() completed. */
int ow_twreport_block(const OwSink *out, const OwReportSession *s, const OwTwStats *st,
                      const OwReportOptions *o);

/* -v: the line of one record as ow_tw_stats_add() classified it. */
int ow_twreport_record(const OwSink *out, const OwReportOptions *o, const OwTwRecord *r,
                       const OwTwStatsRecordInfo *info);

/* -R: the 16 fields of one record (pScheduler reads these). */
int ow_twreport_raw_record(const OwSink *out, const OwTwRecord *r);

/* An OwReportFile (ow-report.h) over a .twp file: ow_twp_parse(), slots
 * and skip ranges decoded, session.twoway set and its two-way records
 * served from the buffer. Failures as ow_report_file_init(). */
int ow_twreport_file_init(OwReportFile *rf, const void *data, size_t size);
