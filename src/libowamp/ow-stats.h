/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Streaming one-way statistics over a session's records, computed exactly as
 * the reference's owstats computes them (docs/notes/reference-owstats.md):
 * loss, duplicates, delay min/max, the delay histogram with its median and
 * percentiles (taken from bucket edges, so the median can exceed the
 * maximum), TTL counts and RFC 4737 style n-reordering.
 *
 * Usage, for the sample range [first, last) of a session:
 *
 *     ow_stats_new(&req, skips, n_skips, bucket_width, &s);
 *     ow_stats_begin(s, first, last);
 *     for each record in file order: ow_stats_add(s, &rec, &info);
 *     ow_stats_end(s);
 *     r = ow_stats_result(s);
 *
 * begin/add/end may be repeated on the same object for consecutive
 * sub-sessions (owstats -N). As in the reference, the reordering
 * denominator then keeps counting across sub-sessions.
 *
 * Memory does not grow per record (unless exact order statistics are asked
 * for, ow_stats_keep_delays()): the engine keeps the packets that can
 * still change (those scheduled less than the loss timeout before the
 * newest arrival), one counter per occupied histogram bucket, and a
 * reordering window of at most rate x timeout x 3.5 arrivals, the bounds
 * the reference's algorithm needs. Time is O(1) amortised per record (the
 * reference's reordering walk is not; ours gives the same counts).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "ow-time.h"
#include "ow-types.h"

typedef struct OwStats OwStats;

/* What ow_stats_add() made of a record; the -v printer needs it. */
typedef enum OwStatsRecordKind {
        OW_STATS_RECORD_OUTSIDE,  /* sequence number outside [first, last): ignored */
        OW_STATS_RECORD_SKIPPED,  /* in a skip range: ignored */
        OW_STATS_RECORD_LOST,     /* a lost-packet record */
        OW_STATS_RECORD_RECEIVED, /* a received packet (or a duplicate of one) */
} OwStatsRecordKind;

typedef struct OwStatsRecordInfo {
        OwStatsRecordKind kind;
        bool sync;    /* RECEIVED: both timestamps synchronised */
        double delay; /* RECEIVED: receive - send, seconds, as the reference computes it */
        double error; /* RECEIVED: send + receive error estimates, seconds */
} OwStatsRecordInfo;

/* One occupied histogram bucket: delays in ((index-1) w, index w] for
 * positive delays, [index w, (index+1) w) for negative ones. */
typedef struct OwStatsBucket {
        int32_t index;
        uint32_t count;
} OwStatsBucket;

typedef struct OwStatsResult {
        uint32_t first, last;             /* the sample range [first, last) */
        OwTimestamp start_time, end_time; /* scheduled send times of first and last-1 */
        uint32_t sent;                    /* distinct packets seen, lost ones included */
        uint32_t lost;
        uint32_t dups;
        bool sync;      /* every record synchronised (true if there were none) */
        double max_err; /* seconds */

        /* Delays in seconds, duplicates included. The reference starts them
         * at +-inf_delay (loss timeout as a double) and prints "nan" while
         * they are still there. */
        double min_delay, max_delay, inf_delay;

        /* TTL seen by the receiver, first copies only. */
        uint64_t ttl[256];

        /* n-reordering: reorder[j] is the (j+1)-reordering count, non-zero
         * for every j < n_reorder, and the (n_reorder+1)-reordering count is
         * 0 unless n_reorder equals reorder_limit (then it is not known:
         * "not handled"). reorder_total is the denominator, which keeps
         * counting across sub-sessions as the reference's does. */
        const uint32_t *reorder;
        uint64_t n_reorder;
        uint64_t reorder_limit;
        uint64_t reorder_total;

        /* The histogram, by ascending index, and in the reference's -M
         * printing order (its hash table's iteration order). */
        double bucket_width;
        const OwStatsBucket *buckets;
        const OwStatsBucket *buckets_print_order;
        size_t n_buckets;

        /* With ow_stats_keep_delays(): the delays of the first copies,
         * ascending (as many as the histogram counts); else NULL, 0. */
        const double *delays;
        size_t n_delays;
} OwStatsResult;

/*
 * Create an engine for the session described by req (req->slots must hold
 * its n_slots slots) and its skip ranges, as stored. The request's packet
 * count and timeout are used, and its SID, Start Time and slots give every
 * packet's scheduled send time (ow-schedule.h). bucket_width in seconds,
 * > 0.
 *
 * -EINVAL for a bucket width that is not a positive number or a request
 * without slots; ow_schedule_new()'s -OW_ERR_COUNT and -OW_ERR_SLOT_TYPE;
 * -ENOMEM.
 */
int ow_stats_new(const OwSessionRequest *req, const OwSkipRange *skips, size_t n_skips, double bucket_width,
                 OwStats **ret);
OwStats *ow_stats_free(OwStats *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(OwStats *, ow_stats_free);

/* Start a (sub-)session over sequence numbers [first, last); last may be
 * UINT32_MAX for "to the end of the session". -OW_ERR_RANGE if first > last
 * or last > the session's packet count. */
int ow_stats_begin(OwStats *s, uint32_t first, uint32_t last);

/*
 * Feed one record, in file order. info (may be NULL) says how it was
 * classified. Failures, all fatal for the (sub-)session as they are for the
 * reference:
 *   -OW_ERR_SEQ        the packet was already settled: its sequence number
 *                      is below the oldest one still open (a record more
 *                      than the loss timeout late, or after a later loss)
 *   -OW_ERR_DUPLICATE  a lost-packet record for a packet already seen, or a
 *                      received packet already declared lost
 *   -OW_ERR_TIMESTAMP  an arrival more than the loss timeout after the last
 *                      packet's scheduled send time
 *   -ENOMEM
 */
int ow_stats_add(OwStats *s, const OwRecord *r, OwStatsRecordInfo *info);

/* ow_stats_add() with the delay and its error estimate given by the caller
 * instead of receive - send (the two-way statistics of ow-twstats.h feed
 * their round-trip time so); everything else as ow_stats_add(). */
typedef struct OwStatsDelay {
        double delay; /* seconds */
        double error; /* seconds */
} OwStatsDelay;
int ow_stats_add_delay(OwStats *s, const OwRecord *rec, const OwStatsDelay *delay, OwStatsRecordInfo *info);

/* The lowest sequence number a record may still have: every packet below
 * it is settled, and ow_stats_add() refuses a record for one
 * (-OW_ERR_SEQ). */
uint32_t ow_stats_open_from(const OwStats *s);

/* The hash chain of a bucket index in the reference's table, which orders
 * the -M <BUCKETS> list (chains ascending). */
unsigned ow_stats_bucket_chain(const OwStats *s, int32_t index);

/* Settle the remaining packets and sort the histogram. */
int ow_stats_end(OwStats *s);

/* Valid after ow_stats_end(), until the next ow_stats_begin(). */
const OwStatsResult *ow_stats_result(const OwStats *s);

/*
 * Delay at quantile alpha (0..1) of the last (sub-)session, from the
 * histogram: the upper edge of the first bucket at which the running count
 * reaches alpha x sent (lost packets count in sent). false if no bucket
 * gets there (the reference prints "nan").
 */
bool ow_stats_percentile(const OwStats *s, double alpha, double *ret);

/* P95 - P50, false if either is missing. */
bool ow_stats_jitter(const OwStats *s, double *ret);

/*
 * Exact order statistics, ours (--json): call ow_stats_keep_delays(s, true)
 * before ow_stats_begin() and the engine keeps the delay of every first
 * copy (8 octets per received packet: the one thing here that grows with
 * the records). Over the `sent` packets of the (sub-)session, lost ones
 * counting as infinitely late (RFC 2679 section 5.1):
 *
 *   percentile p (0..100): the delay of rank ceil(p/100 x sent), at least
 *       rank 1 ("nearest rank"; p taken to a millionth);
 *   median: the delay of the middle rank, or the mean of the two middle
 *       ones when sent is even;
 *   jitter: percentile 95 minus percentile 50.
 *
 * false when a rank falls on a lost packet, when there are no packets, or
 * when delays are not kept.
 */
void ow_stats_keep_delays(OwStats *s, bool keep);
bool ow_stats_exact_percentile(const OwStats *s, double percent, double *ret);
bool ow_stats_exact_median(const OwStats *s, double *ret);
bool ow_stats_exact_jitter(const OwStats *s, double *ret);

/* The reference's packet rate (packets per second) of a request: slots /
 * sum of slot parameters; 0 if that sum is 0. */
double ow_stats_packet_rate(const OwSessionRequest *req);

/* The reference's conversions, exposed for the report code and tests:
 * a 32.32 value as a double (rounded to 53 bits, then divided by 2^32), and
 * an error estimate in seconds (multiplier << scale, in 64 bits, / 2^32). */
double ow_stats_num64_to_double(uint64_t v);
double ow_stats_errest_seconds(OwErrEst e);
