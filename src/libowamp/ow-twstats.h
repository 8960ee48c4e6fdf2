/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Two-way (TWAMP) statistics over a session's records, as the reference's
 * twping and owstats compute them from a .twp file
 * (docs/notes/reference-twamp.md 3): three one-way engines of ow-stats.h,
 * one per delay type, fed the same records by sender sequence number and
 * sender-side arrival (T4), each with its own delay:
 *
 *   OW_TW_ROUND_TRIP  (T4 - T1) - (T3 - T2), error of the four timestamps
 *   OW_TW_SEND        T2 - T1 ("fwd"), error of T1 and T2
 *   OW_TW_REFLECT     T4 - T3 ("bck"), error of T3 and T4
 *
 * plus the reflector's processing time T3 - T2 (min/max), the two TTLs and
 * the two kinds of duplicates. As in the reference, the S bits of received
 * records are not looked at: only a lost record makes a sample unsync.
 * Memory, as in ow-stats.h, is bounded by the packets still open (the
 * duplicate bookkeeping forgets settled ones), not by the session.
 *
 *     ow_tw_stats_new(&req, skips, n_skips, bucket_width, &s);
 *     ow_tw_stats_begin(s, first, last);
 *     for each record in file order: ow_tw_stats_add(s, &rec, &info);
 *     ow_tw_stats_end(s);
 */

#include "ow-stats.h"
#include "ow-types.h"

typedef struct OwTwStats OwTwStats;

typedef enum OwTwDirection {
        OW_TW_ROUND_TRIP,
        OW_TW_SEND,
        OW_TW_REFLECT,
        _OW_TW_DIRECTION_MAX,
} OwTwDirection;

typedef struct OwTwStatsRecordInfo {
        OwStatsRecordKind kind;
        double delay, send, reflect, proc; /* RECEIVED: seconds */
        double error;                      /* RECEIVED: of the round trip, seconds */
} OwTwStatsRecordInfo;

typedef struct OwTwStatsResult {
        uint32_t send_dups;    /* a sender seq answered under a new reflector seq */
        uint32_t reflect_dups; /* an answer (reflector seq) seen again */
        bool has_proc;
        double min_proc, max_proc; /* seconds, when has_proc */
} OwTwStatsResult;

/* As ow_stats_new(). */
int ow_tw_stats_new(const OwSessionRequest *req, const OwSkipRange *skips, size_t n_skips,
                    double bucket_width, OwTwStats **ret);
OwTwStats *ow_tw_stats_free(OwTwStats *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(OwTwStats *, ow_tw_stats_free);

/* ow_stats_keep_delays() for the three engines (--json). */
void ow_tw_stats_keep_delays(OwTwStats *s, bool keep);

/* As ow_stats_begin(), ow_stats_end(). */
int ow_tw_stats_begin(OwTwStats *s, uint32_t first, uint32_t last);
int ow_tw_stats_end(OwTwStats *s);

/* As ow_stats_add(); also -OW_ERR_DUPLICATE for a reflector sequence
 * number already tied to another sender sequence number (the reference's
 * parse error). */
int ow_tw_stats_add(OwTwStats *s, const OwTwRecord *rec, OwTwStatsRecordInfo *info);

/* The engine of one delay type (sent, lost, sync, errors, min/max,
 * histogram, quantiles, TTLs) and what is two-way only; valid after
 * ow_tw_stats_end(). */
const OwStats *ow_tw_stats_direction(const OwTwStats *s, OwTwDirection d);
const OwTwStatsResult *ow_tw_stats_result(const OwTwStats *s);
