/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Where a stream's results go. Every completed (sub-)session passes
 * through pow_output_publish(), once: the .sum file (and the session's
 * .owp, written by the stream before), the -p line, the --json document
 * and the journal entry. A further writer (Prometheus, issue 14 item 4)
 * hooks in there and sees the same PowResult.
 */

#include <stdbool.h>
#include <stdint.h>

#include "ow-report.h"
#include "ow-stats.h"
#include "ow-substream.h"
#include "pow-prom.h"

/* The powstream JSON wrapper around an owamp-report document (powstream(1)). */
#define POW_JSON_SCHEMA "owamp-powstream"
#define POW_JSON_VERSION 1

typedef struct PowOutputOptions {
        const char *dir;    /* -d, NULL = current directory */
        bool print_files;   /* -p */
        bool json;          /* --json */
        bool unix_time;     /* -U */
        float bucket_width; /* -b, as the reference keeps it */
        bool journal;       /* one entry per result (on unless OWAMP_POWSTREAM_JOURNAL=0) */
        const char *journal_socket; /* NULL = the system journal's */
} PowOutputOptions;

typedef struct PowResult {
        const char *stream;           /* the stream's name */
        const char *direction;        /* "from" (the peer sends) or "to" (-t) */
        bool sub;                     /* a -N sub-session */
        uint32_t index, n_sub;        /* sub-session index and count; 0, 0 for a session */
        OwSpan span;
        const OwReportSession *session; /* request, skip ranges, records, hosts, mode */
        const OwStats *stats;         /* ow_stats_end() done for the span */
        const char *owp_path;         /* the session's .owp when written (NULL for sub-sessions) */
} PowResult;

/* Counters since the start, for the log and later writers. */
typedef struct PowOutputCounters {
        uint64_t sessions, subsessions, failed;
        uint64_t sent, lost, dups;
} PowOutputCounters;

typedef struct PowOutput {
        PowOutputOptions o;
        PowOutputCounters counters;
        PowProm prom; /* --prometheus-dir (pow-prom.h) */
} PowOutput;

void pow_output_init(PowOutput *out, const PowOutputOptions *o);

/* Write the .sum (tmp name, then its final name), print the paths (-p,
 * flushed), the JSON document (--json) and send the journal entry. Errors
 * are reported on stderr/log by the caller from the return value: -errno of
 * the .sum file; JSON and journal failures are logged here once and not
 * returned. */
int pow_output_publish(PowOutput *out, const PowResult *res);

/* A session that failed (counted; journal entry with the reason). */
void pow_output_failed(PowOutput *out, const char *stream, const char *sid_hex, const char *reason);

/* Write len octets to "<dir>/<name>" through a temporary name in dir, so
 * that a reader never sees half a file: -errno. */
int pow_output_write_file(const char *dir, const char *path, const void *data, size_t len);
