/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * owstats / owping / owfetch reports, byte for byte as the reference prints
 * them (docs/notes/reference-owstats.md): the default summary, -v per-packet
 * lines, -M machine-readable summaries, -R raw records, -a percentiles, -n
 * units, -N sub-sessions and the -p file names.
 *
 * Pure: output goes to a caller-provided sink, host names arrive already
 * resolved, local time comes from a caller-provided converter, and -p files
 * are opened and named by the caller through hooks.
 *
 * owstats, in outline:
 *
 *     OwReportOptions o;
 *     ow_report_options_init(&o);          then fill it from getopt
 *     o.localtime = localtime_r;
 *     n = ow_report_options_reconcile(&o, w);   print "owstats: %s\n" each
 *     for each file:
 *             mmap it; ow_report_file_init(&rf, data, size);
 *             rf.session.from_host/to_host = getnameinfo() of the addresses
 *             ow_report_session(&rf.session, &o, &stdout_sink, &p_hooks);
 *             ow_report_file_done(&rf);
 *
 * Leave LC_NUMERIC at "C" (no setlocale()): the formats use "%f"/"%g" and
 * the reference prints a '.'.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "macro.h"
#include "ow-owp.h"
#include "ow-stats.h"
#include "ow-types.h"

/* Where output goes. write() returns 0 or a negative errno-style code. */
typedef struct OwSink {
        int (*write)(void *userdata, const char *data, size_t len);
        void *userdata;
} OwSink;

/* A growable in-memory sink. */
typedef struct OwBuf {
        char *data; /* NUL-terminated when non-NULL */
        size_t len;
        size_t allocated;
} OwBuf;

int ow_buf_write(void *userdata, const char *data, size_t len);
void ow_buf_done(OwBuf *b);
static inline OwSink ow_buf_sink(OwBuf *b) {
        return (OwSink){ .write = ow_buf_write, .userdata = b };
}

int ow_sink_printf(const OwSink *sink, const char *fmt, ...) _printf_(2, 3);

/* The command-line output options of owstats (and of owping/owfetch). */
typedef struct OwReportOptions {
        bool machine;           /* -M */
        bool raw;               /* -R */
        bool quiet;             /* -Q */
        bool records;           /* -v */
        uint32_t records_limit; /* -vN: records read per (sub-)session, 0 = all */
        bool unix_time;         /* -U */
        bool print_files;       /* -p: each summary into a file (OwReportFiles) */
        const char *save_dir;   /* -d: directory of the -p files, NULL = "" */
        char units;             /* -n: 'n', 'u', 'm' or 's' (either case) */
        /* -b, seconds, > 0. A float, as the reference keeps it: every
         * bucket index and edge is computed from the float's value (so
         * -b 0.000001 is 9.99999997e-07 s), which decides ties. */
        float bucket_width;
        uint32_t sub_packets;     /* -N, 0 = the whole session */
        const float *percentiles; /* -a, each 0..100 */
        size_t n_percentiles;
        bool json; /* --json: one JSON document per session (ow-report-json.h) */

        /* Local time for first:/last:; NULL = UTC (gmtime_r). owstats
         * passes localtime_r, which reads the time zone: I/O the core does
         * not do itself. */
        struct tm *(*localtime)(const time_t *t, struct tm *ret);
} OwReportOptions;

/* The reference's defaults: units 'm', buckets of 0.0001 s. */
void ow_report_options_init(OwReportOptions *o);

#define OW_REPORT_MAX_WARNINGS 6

/*
 * Apply the reference's option interplay: -R implies -Q; -Q drops -v and
 * -M, -M drops -v. Stores each warning the reference prints (after
 * "<prog>: ", e.g. "Ignoring '-v', '-Q' set") in warnings[], returns how
 * many. -a is silently ignored by -M and -Q changes nothing else in
 * owstats; neither needs a warning.
 *
 * --json (ours) follows the same pattern: -Q (so -R too) drops it, and it
 * drops -M and -p ("Ignoring '-M', '--json' set"); -v stays and adds the
 * per-packet records to the document.
 */
size_t ow_report_options_reconcile(OwReportOptions *o, const char *warnings[OW_REPORT_MAX_WARNINGS]);

/* Scale factor and label of a -n unit: 'n' 1e9 "ns", 'u' 1e6 "us", 'm' 1e3
 * "ms", 's' 1 "" (the reference prints no label for seconds). Either case.
 * -EINVAL for anything else. */
int ow_report_units(char unit, double *ret_factor, const char **ret_label);

/* Parse a -a list ("50,90,95.5") as the reference does. *ret is freed by
 * the caller. -EINVAL for an empty item, a non-number or a value outside
 * 0..100, -ENOMEM. */
int ow_report_parse_percentiles(const char *s, float **ret, size_t *ret_n);

/* Records of a session, in file order, by index. */
typedef struct OwRecordSource {
        uint32_t n_records;
        int (*get)(void *userdata, uint32_t index, OwRecord *ret);
        void *userdata;
} OwRecordSource;

/* Two-way records of a session (ow-twreport.h), in file order, by index. */
typedef struct OwTwRecordSource {
        uint32_t n_records;
        int (*get)(void *userdata, uint32_t index, OwTwRecord *ret);
        void *userdata;
} OwTwRecordSource;

/* One session file, decoded. */
typedef struct OwReportSession {
        const OwSessionRequest *request; /* with its slots */
        const OwSkipRange *skips;
        size_t n_skips;
        bool finished;                   /* the file says "finished normally" */
        const char *from_host, *to_host; /* resolved sender/receiver names;
                                          * NULL = the numeric address */
        const char *mode;                /* --json only: "open", "authenticated",
                                          * "encrypted", NULL = unknown */
        OwRecordSource records;
        bool twoway;                     /* a TWAMP session: tw_records instead of records */
        OwTwRecordSource tw_records;
} OwReportSession;

/*
 * An .owp file ready for ow_report_session(): parsed in place (data must
 * outlive it), slots and skip ranges decoded, records served from the
 * buffer. session points into the struct itself, so do not copy or move it
 * once initialised. Host names are left NULL (numeric) for the caller to
 * fill in from its resolver.
 *
 * A .twp file (version OW_TWP_VERSION) is read with ow_twp_parse() into a
 * two-way session (session.twoway, session.tw_records), reported as twping
 * reports it (ow-twreport.h).
 * Failures: those of ow_owp_parse(), ow_owp_get_slots_alloc() and
 * ow_owp_get_skip_range(), -ENOMEM. A version 0 file (no request) is
 * accepted, with session.request NULL: only -R can report it, as with the
 * reference.
 */
typedef struct OwReportFile {
        OwOwpFile file;
        OwSlot *slots;
        OwSkipRange *skips;
        OwReportSession session;
} OwReportFile;

int ow_report_file_init(OwReportFile *rf, const void *data, size_t size);
void ow_report_file_done(OwReportFile *rf);

/* -p: where each summary block goes. open() gives the sink for the next
 * block (typically a temporary file); close() gets the block's final name
 * (ow_report_file_name()), or NULL when the block failed and should be
 * discarded. */
typedef struct OwReportFiles {
        int (*open)(void *userdata, OwSink *ret);
        int (*close)(void *userdata, const char *name);
        void *userdata;
} OwReportFiles;

/*
 * Everything owstats prints for one session file: -R raw records, or for
 * the whole session / each -N sub-session the optional -v lines and the
 * summary (-M or default), into out, or with -p into files and their names
 * into out. With --json, one JSON document (one line) for the session
 * instead, holding every sub-session; -p does not apply to it. A session
 * that fails half-way leaves an incomplete document, its line ended. Options must be reconciled already. Failures: those of
 * ow_stats_new(), ow_stats_begin() and ow_stats_add() (after the output
 * produced so far, as the reference), of the record source and of the
 * sink; -EINVAL for bad options (-p without files, an unknown unit);
 * -OW_ERR_VERSION for statistics on a file without a request (version 0).
 */
int ow_report_session(const OwReportSession *s, const OwReportOptions *o, const OwSink *out,
                      const OwReportFiles *files);

/* The building blocks of ow_report_session(). */

/* -R: one line per record, in file order. */
int ow_report_raw(const OwSink *out, const OwRecordSource *records);
int ow_report_raw_record(const OwSink *out, const OwRecord *r);

/* "\n--- owping statistics from [X]:P to [Y]:Q ---\nSID:\t...\n" */
int ow_report_header(const OwSink *out, const OwReportSession *s);

/* -v: the line for one record, as classified by ow_stats_add(); nothing
 * for records outside the range or skipped. */
int ow_report_record(const OwSink *out, const OwReportOptions *o, const OwRecord *r,
                     const OwStatsRecordInfo *info);

/* The default summary block and the -M block of a (sub-)session that
 * ow_stats_end() completed. */
int ow_report_summary(const OwSink *out, const OwReportSession *s, const OwStats *st,
                      const OwReportOptions *o);
int ow_report_machine(const OwSink *out, const OwReportSession *s, const OwStats *st,
                      const OwReportOptions *o);

/*
 * The statistics of one (sub-)session [first, last) as ow_report_session()
 * computes them (the reference's OWPStatsParse()), without printing: for
 * programs that print several formats from one pass (powstream). The
 * records looked at start at *index (the first record seen by the previous
 * sub-session with a sequence number at or above its end; 0 to begin), at
 * most records_limit of them (0 = all); *index is updated for the next
 * sub-session. fn (may be NULL) sees each record as classified. After it,
 * ow_stats_result(st) holds the block. Failures: those of
 * ow_stats_begin(), ow_stats_add(), ow_stats_end(), the source and fn.
 */
typedef int (*OwReportRecordFn)(void *userdata, const OwRecord *r, const OwStatsRecordInfo *info);
int ow_report_parse_block(OwStats *st, const OwRecordSource *records, uint32_t n_packets, uint32_t first,
                          uint32_t last, uint32_t records_limit, uint32_t *index, OwReportRecordFn fn,
                          void *userdata);

/* Pieces of the summaries, shared with the two-way ones (ow-twreport.h):
 * the first:/last: lines; "NAME min/median/max = ..., (err=...)" or
 * "(unsync)"; "NAME jitter = ... (P95-P50)"; the -a lines; "PREFIXhops =
 * ..." or "PREFIXTTL not reported"; the -M lines from SUMMARY to SYNC; and
 * "MINTTL<suffix>", "MAXTTL<suffix>". f and u: ow_report_units(). */
int ow_report_times(const OwSink *out, const OwReportOptions *o, const OwStatsResult *r);
int ow_report_delay_line(const OwSink *out, const char *name, const OwStats *st, bool sync, double max_err,
                         double f, const char *u);
int ow_report_jitter_line(const OwSink *out, const char *name, const OwStats *st, double f, const char *u);
int ow_report_percentiles(const OwSink *out, const OwReportOptions *o, const OwStats *st, double f,
                          const char *u);
int ow_report_hops(const OwSink *out, const char *prefix, const OwStatsResult *r);
int ow_report_machine_head(const OwSink *out, const OwReportSession *s, const OwStatsResult *r,
                           const OwReportOptions *o);
int ow_report_machine_ttl(const OwSink *out, const char *suffix, const OwStatsResult *r);

/* -p name: "<dir>/<START>_<END>.txt" (".sum" for -M), START/END as 20-digit
 * NTP timestamps; no directory part when dir is NULL. */
int ow_report_file_name(const char *dir, OwTimestamp start, OwTimestamp end, bool machine, char **ret);
