/* SPDX-License-Identifier: Apache-2.0 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ow-error.h"
#include "ow-stats.h"
#include "testutil.h"

/*
 * Synthetic sessions: one fixed slot of GAP (2^-7 s, exact in binary), a
 * 2 s loss timeout, start at an arbitrary 2026 NTP time. Packet k is
 * scheduled at START + (k + 1) GAP and, unless said otherwise, sent then.
 */
#define START (UINT64_C(3973000000) << 32)
#define GAP (UINT64_C(1) << 25)
#define TIMEOUT (UINT64_C(2) << 32)
#define MS(x) ((uint64_t) (4294967.296 * (x))) /* milliseconds -> 32.32, approximately */

static OwSlot fixed_slot = { .type = OW_SLOT_FIXED, .param = GAP };

static OwSessionRequest make_request(uint32_t n_packets) {
        return (OwSessionRequest){
                .ipvn = 4,
                .conf_receiver = true,
                .n_slots = 1,
                .n_packets = n_packets,
                .start_time = START,
                .timeout = TIMEOUT,
                .slots = &fixed_slot,
        };
}

static OwTimestamp sched(uint32_t k) {
        return START + ((uint64_t) k + 1) * GAP;
}

/* A received packet, delay in 32.32 units, sent at its scheduled time. */
static OwRecord rx(uint32_t seq, uint64_t delay) {
        return (OwRecord){
                .seq = seq,
                .send_err = OW_ERREST_UNSYNC,
                .recv_err = OW_ERREST_UNSYNC,
                .send_time = sched(seq),
                .recv_time = sched(seq) + delay,
                .ttl = 255,
        };
}

static OwRecord lost(uint32_t seq) {
        return (OwRecord){
                .seq = seq,
                .send_err = OW_ERREST_UNSYNC,
                .recv_err = OW_ERREST_UNSYNC,
                .send_time = sched(seq),
                .ttl = 255,
        };
}

static OwStats *run(const OwSessionRequest *req, const OwSkipRange *skips, size_t n_skips, double width,
                    const OwRecord *recs, size_t n) {
        OwStats *s;
        ck_assert_int_eq(ow_stats_new(req, skips, n_skips, width, &s), 0);
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(ow_stats_add(s, &recs[i], NULL), 0);
        ck_assert_int_eq(ow_stats_end(s), 0);
        return s;
}

START_TEST(test_clean_session) {
        OwSessionRequest req = make_request(5);
        OwRecord recs[5];
        for (uint32_t i = 0; i < 5; i++)
                recs[i] = rx(i, MS(0.05 + 0.01 * i));

        _cleanup_(ow_stats_freep) OwStats *s = run(&req, NULL, 0, 0.0001, recs, 5);
        const OwStatsResult *r = ow_stats_result(s);

        ck_assert_uint_eq(r->sent, 5);
        ck_assert_uint_eq(r->lost, 0);
        ck_assert_uint_eq(r->dups, 0);
        ck_assert(!r->sync);
        /* first:/last: are the scheduled times of packets 0 and n-1. */
        ck_assert_uint_eq(r->start_time, sched(0));
        ck_assert_uint_eq(r->end_time, sched(4));
        /* Delays as the reference computes them: each timestamp converted
         * to a double first, then subtracted. */
        double d0 = (double) recs[0].recv_time / 4294967296.0 - (double) recs[0].send_time / 4294967296.0;
        ck_assert(r->min_delay == d0);
        ck_assert(fabs(r->max_delay - 0.00009) < 1e-6);
        ck_assert_uint_eq(r->ttl[255], 5);
        ck_assert_uint_eq(r->n_reorder, 0);
        ck_assert_uint_eq(r->reorder_total, 5);
        /* 2 s timeout at 128 packets/s: window 128 x 2 x 3.5 = 896. */
        ck_assert_uint_eq(r->reorder_limit, 896);
        /* 0.05..0.09 ms: all in bucket 1 (0, 0.1 ms]. */
        ck_assert_uint_eq(r->n_buckets, 1);
        ck_assert_int_eq(r->buckets[0].index, 1);
        ck_assert_uint_eq(r->buckets[0].count, 5);
}
END_TEST

START_TEST(test_median_above_max) {
        /* The median is a bucket's upper edge: every delay 0.07 ms, so the
         * median is 0.1 ms and exceeds the maximum (fixed50 fixtures). */
        OwSessionRequest req = make_request(4);
        OwRecord recs[4];
        for (uint32_t i = 0; i < 4; i++)
                recs[i] = rx(i, MS(0.07));

        _cleanup_(ow_stats_freep) OwStats *s = run(&req, NULL, 0, 0.0001, recs, 4);
        double median, jitter;
        ck_assert(ow_stats_percentile(s, 0.5, &median));
        ck_assert(median == 1 * 0.0001);
        ck_assert(median > ow_stats_result(s)->max_delay);
        ck_assert(ow_stats_jitter(s, &jitter));
        ck_assert(jitter == 0.0);
}
END_TEST

START_TEST(test_loss) {
        /* Lost packets count in "sent"; the receiver declares them lost in
         * order, here at the end. */
        OwSessionRequest req = make_request(10);
        OwRecord recs[10];
        size_t n = 0;
        for (uint32_t i = 0; i < 10; i++)
                if (i != 3 && i != 7)
                        recs[n++] = rx(i, MS(0.45));
        recs[n++] = lost(3);
        recs[n++] = lost(7);

        _cleanup_(ow_stats_freep) OwStats *s = run(&req, NULL, 0, 0.0001, recs, n);
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert_uint_eq(r->sent, 10);
        ck_assert_uint_eq(r->lost, 2);
        ck_assert_uint_eq(r->dups, 0);
        /* Lost records do not go through reordering. */
        ck_assert_uint_eq(r->reorder_total, 8);
        ck_assert_uint_eq(r->ttl[255], 8);

        /* Quantiles are taken over "sent", lost packets included: 8 of 10
         * arrived, so P80 exists and P90 does not ("nan"). */
        double d;
        ck_assert(ow_stats_percentile(s, 0.8, &d));
        ck_assert(d == 5 * 0.0001);
        ck_assert(!ow_stats_percentile(s, 0.9, &d));
        ck_assert(!ow_stats_jitter(s, &d));
}
END_TEST

START_TEST(test_duplicates) {
        /* A duplicate counts in dups and in min/max, but not in sent, the
         * histogram or the TTLs. */
        OwSessionRequest req = make_request(3);
        OwRecord recs[] = {
                rx(0, MS(0.95)), rx(1, MS(0.95)), rx(1, MS(0.02)), /* the copy took a faster path */
                rx(1, MS(0.95)), rx(2, MS(0.95)),
        };
        recs[2].ttl = 60;

        _cleanup_(ow_stats_freep) OwStats *s = run(&req, NULL, 0, 0.0001, recs, ELEMENTSOF(recs));
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert_uint_eq(r->sent, 3);
        ck_assert_uint_eq(r->dups, 2);
        ck_assert_uint_eq(r->lost, 0);
        ck_assert(r->min_delay < 0.00003);
        ck_assert_uint_eq(r->ttl[255], 3);
        ck_assert_uint_eq(r->ttl[60], 0);
        ck_assert_uint_eq(r->n_buckets, 1);
        ck_assert_uint_eq(r->buckets[0].count, 3);
        /* Duplicates do go through reordering: 1, 1, 1 is in order, and the
         * denominator counts every received record. */
        ck_assert_uint_eq(r->reorder_total, 5);
        ck_assert_uint_eq(r->n_reorder, 0);
}
END_TEST

START_TEST(test_reordering_rfc4737) {
        /* RFC 4737 6.2 n-reordering, as the reference counts it: an arrival
         * counts towards j-reordering for each j such that it is below all
         * of the j arrivals just before it. Arrival order 0 1 3 4 2 5:
         * packet 2 is below 4 and 3 (2-reordered) but not below 1. */
        OwSessionRequest req = make_request(6);
        uint32_t order[] = { 0, 1, 3, 4, 2, 5 };
        OwRecord recs[6];
        for (size_t i = 0; i < 6; i++)
                recs[i] = rx(order[i], MS(0.5) + (i > 2 ? GAP * 2 : 0));

        _cleanup_(ow_stats_freep) OwStats *s = run(&req, NULL, 0, 0.0001, recs, 6);
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert_uint_eq(r->n_reorder, 2);
        ck_assert_uint_eq(r->reorder[0], 1);
        ck_assert_uint_eq(r->reorder[1], 1);
        ck_assert_uint_eq(r->reorder_total, 6);
}
END_TEST

START_TEST(test_reordering_limit) {
        /* The window is rate x timeout x 3.5, at least 10: with a 1 s gap
         * and a 2 s timeout that is 10. Eleven packets arriving in reverse
         * fill all ten counters: "11-reordering not handled". Ten of them
         * leave the tenth at zero. */
        OwSlot slot = { .type = OW_SLOT_FIXED, .param = UINT64_C(1) << 32 };
        OwSessionRequest req = make_request(11);
        req.slots = &slot;
        for (unsigned n = 10; n <= 11; n++) {
                OwStats *s;
                ck_assert_int_eq(ow_stats_new(&req, NULL, 0, 0.0001, &s), 0);
                ck_assert_int_eq(ow_stats_begin(s, 0, n), 0);
                for (unsigned i = 0; i < n; i++) {
                        uint32_t seq = n - 1 - i;
                        OwRecord rec = {
                                .seq = seq,
                                .send_err = 1,
                                .recv_err = 1,
                                .send_time = START + ((uint64_t) seq + 1) * slot.param,
                                /* all stamped at packet 0's send time, so that
                                 * nothing is settled before the end */
                                .recv_time = START + slot.param,
                                .ttl = 255,
                        };
                        ck_assert_int_eq(ow_stats_add(s, &rec, NULL), 0);
                }
                ck_assert_int_eq(ow_stats_end(s), 0);
                const OwStatsResult *r = ow_stats_result(s);
                ck_assert_uint_eq(r->reorder_limit, 10);
                /* Arrival p (0-based) is below all p arrivals before it. */
                ck_assert_uint_eq(r->n_reorder, n - 1);
                for (unsigned j = 0; j < n - 1; j++)
                        ck_assert_uint_eq(r->reorder[j], n - 1 - j);
                ow_stats_free(s);
        }
}
END_TEST

/* The reference's walk, literally: a ring of the last `limit` arrivals,
 * walked back while seq is below them. */
static uint64_t naive_reordering(const uint32_t *seqs, size_t n, uint64_t limit, uint32_t *rn) {
        uint32_t *ring = calloc(limit, sizeof(uint32_t));
        uint64_t count = 0, depth = 0;
        ck_assert_ptr_nonnull(ring);
        memset(rn, 0, limit * sizeof(uint32_t));
        for (size_t k = 0; k < n; k++) {
                for (uint64_t i = 0; i < MIN(count, limit) && seqs[k] < ring[(count - 1 - i) % limit]; i++)
                        rn[i]++;
                ring[count % limit] = seqs[k];
                count++;
        }
        while (depth < limit && rn[depth] > 0)
                depth++;
        free(ring);
        return depth;
}

START_TEST(test_reordering_matches_walk) {
        /* Random arrival orders (local shuffles, duplicates, occasional
         * long delays) give the same counts as the reference's walk, for a
         * window of 10 (1 s gaps) and of 896 (2^-7 s gaps). */
        static OwSlot slots[] = {
                { .type = OW_SLOT_FIXED, .param = UINT64_C(1) << 32 },
                { .type = OW_SLOT_FIXED, .param = GAP },
        };
        const size_t n = 5000;
        uint32_t *seqs = calloc(n, sizeof(uint32_t));
        uint32_t *rn = calloc(1000, sizeof(uint32_t));
        uint32_t state = 1;
        ck_assert_ptr_nonnull(seqs);
        ck_assert_ptr_nonnull(rn);

        for (size_t v = 0; v < 2; v++)
                for (unsigned round = 0; round < 20; round++) {
                        for (size_t k = 0; k < n; k++)
                                seqs[k] = (uint32_t) k;
                        for (size_t k = 0; k < n; k++) {
                                state = state * 1103515245u + 12345u;
                                uint32_t x = state >> 16;
                                size_t span = round < 10 ? 4 : round < 15 ? 40 : 2000;
                                size_t j = k + x % span;
                                if (j < n && x % 7 < (round % 7)) {
                                        uint32_t t = seqs[k];
                                        seqs[k] = seqs[j];
                                        seqs[j] = t;
                                }
                                if (k > 0 && x % 50 == 0)
                                        seqs[k] = seqs[k - 1]; /* a duplicate */
                        }

                        OwSessionRequest req = make_request((uint32_t) n);
                        req.slots = &slots[v];
                        OwStats *s;
                        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, 0.0001, &s), 0);
                        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
                        for (size_t k = 0; k < n; k++) {
                                OwRecord rec = {
                                        .seq = seqs[k],
                                        .send_err = 1,
                                        .recv_err = 1,
                                        .send_time = START,
                                        .recv_time = START + 1, /* nothing settles early */
                                        .ttl = 255,
                                };
                                ck_assert_int_eq(ow_stats_add(s, &rec, NULL), 0);
                        }
                        ck_assert_int_eq(ow_stats_end(s), 0);
                        const OwStatsResult *r = ow_stats_result(s);

                        uint64_t depth = naive_reordering(seqs, n, r->reorder_limit, rn);
                        ck_assert_uint_eq(r->reorder_limit, v == 0 ? 10 : 896);
                        ck_assert_uint_eq(r->n_reorder, depth);
                        for (uint64_t j = 0; j < depth; j++)
                                ck_assert_uint_eq(r->reorder[j], rn[j]);
                        ow_stats_free(s);
                }
        free(seqs);
        free(rn);
}
END_TEST

START_TEST(test_reordering_reversed_fast) {
        /* 100000 arrivals in reverse: the reference's walk would take
         * 100000 x 896 steps; the counts are n - 1 - j for every j below the
         * window, which is full ("897-reordering not handled"). */
        const uint32_t n = 100000;
        OwSessionRequest req = make_request(n);
        OwStats *s;
        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, 0.0001, &s), 0);
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        for (uint32_t k = 0; k < n; k++) {
                OwRecord rec = rx(n - 1 - k, 0);
                rec.send_time = START;
                rec.recv_time = START + 1;
                ck_assert_int_eq(ow_stats_add(s, &rec, NULL), 0);
        }
        ck_assert_int_eq(ow_stats_end(s), 0);
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert_uint_eq(r->n_reorder, 896);
        ck_assert_uint_eq(r->reorder_limit, 896);
        for (uint32_t j = 0; j < 896; j++)
                ck_assert_uint_eq(r->reorder[j], n - 1 - j);
        ow_stats_free(s);
}
END_TEST

START_TEST(test_bucket_edges) {
        /* Width 2^-10 s and delays that are exact multiples of it: k widths
         * is bucket k (upper edge inclusive), a hair more is bucket k + 1,
         * negative delays round down. */
        const double w = 1.0 / 1024;
        const uint64_t unit = UINT64_C(1) << 22; /* 2^-10 s */
        OwSessionRequest req = make_request(5);
        OwRecord recs[] = {
                rx(0, 3 * unit), rx(1, 3 * unit + 4096), /* just above 3 widths */
                rx(2, 0),        rx(3, 3 * unit),        rx(4, 2 * unit),
        };
        /* Packet 2 arrived "before" it left: a clock offset. */
        recs[2].recv_time = recs[2].send_time - unit / 2;

        _cleanup_(ow_stats_freep) OwStats *s = run(&req, NULL, 0, w, recs, ELEMENTSOF(recs));
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert_uint_eq(r->n_buckets, 4);
        ck_assert_int_eq(r->buckets[0].index, -1);
        ck_assert_int_eq(r->buckets[1].index, 2);
        ck_assert_int_eq(r->buckets[2].index, 3);
        ck_assert_uint_eq(r->buckets[2].count, 2);
        ck_assert_int_eq(r->buckets[3].index, 4);

        /* The running count must reach alpha x sent: 5 x 0.4 = 2 is reached
         * exactly at bucket 2 (2 samples), 5 x 0.41 needs bucket 3. */
        double d;
        ck_assert(ow_stats_percentile(s, 0.4, &d));
        ck_assert(d == 2 * w);
        ck_assert(ow_stats_percentile(s, 0.41, &d));
        ck_assert(d == 3 * w);
        ck_assert(ow_stats_percentile(s, 0.0, &d));
        ck_assert(d == -1 * w);
        ck_assert(ow_stats_percentile(s, 1.0, &d));
        ck_assert(d == 4 * w);
        ck_assert(r->min_delay < 0);
}
END_TEST

START_TEST(test_bucket_print_order) {
        /* -M prints buckets in the reference's hash-table order: chain =
         * byte sum of the int key modulo 1021 (2 s timeout), the newest key
         * first within a chain. 256 and 1 share chain 1; -1 is chain 1020;
         * 2 is chain 2. Arrival order of first samples: 1, 2, 256, -1. */
        const double w = 0.0001;
        OwSessionRequest req = make_request(4);
        OwRecord recs[] = {
                rx(0, MS(0.05)),
                rx(1, MS(0.15)),
                rx(2, MS(25.55)),
                rx(3, 0),
        };
        recs[3].recv_time = recs[3].send_time - MS(0.05);

        _cleanup_(ow_stats_freep) OwStats *s = run(&req, NULL, 0, w, recs, ELEMENTSOF(recs));
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert_uint_eq(r->n_buckets, 4);
        int32_t want[] = { 256, 1, 2, -1 };
        for (size_t i = 0; i < 4; i++)
                ck_assert_int_eq(r->buckets_print_order[i].index, want[i]);
        int32_t sorted[] = { -1, 1, 2, 256 };
        for (size_t i = 0; i < 4; i++)
                ck_assert_int_eq(r->buckets[i].index, sorted[i]);
}
END_TEST

START_TEST(test_bucket_overflow) {
        /* A bucket index beyond int gets INT_MIN, as the reference's x86
         * build does (C leaves that conversion undefined). */
        OwSessionRequest req = make_request(1);
        OwRecord rec = rx(0, MS(1000.0));
        _cleanup_(ow_stats_freep) OwStats *s = run(&req, NULL, 0, 1e-12, &rec, 1);
        ck_assert_uint_eq(ow_stats_result(s)->n_buckets, 1);
        ck_assert_int_eq(ow_stats_result(s)->buckets[0].index, INT32_MIN);
}
END_TEST

START_TEST(test_skip_ranges) {
        /* Packets 2..4 were never sent: their records (lost ones here) are
         * ignored and they are not counted as lost when settled. */
        OwSessionRequest req = make_request(8);
        OwSkipRange skips[] = { { 2, 4 } };
        OwRecord recs[] = {
                rx(0, MS(0.5)), rx(1, MS(0.5)), rx(5, MS(0.5)), rx(6, MS(0.5)),
                lost(2),        lost(3),        lost(4),        lost(7),
        };
        OwStats *s;
        ck_assert_int_eq(ow_stats_new(&req, skips, 1, 0.0001, &s), 0);
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        for (size_t i = 0; i < ELEMENTSOF(recs); i++) {
                OwStatsRecordInfo info;
                ck_assert_int_eq(ow_stats_add(s, &recs[i], &info), 0);
                bool skipped = recs[i].seq >= 2 && recs[i].seq <= 4;
                ck_assert_int_eq(info.kind, skipped                    ? OW_STATS_RECORD_SKIPPED
                                            : ow_record_lost(&recs[i]) ? OW_STATS_RECORD_LOST
                                                                       : OW_STATS_RECORD_RECEIVED);
        }
        ck_assert_int_eq(ow_stats_end(s), 0);
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert_uint_eq(r->sent, 5);
        ck_assert_uint_eq(r->lost, 1);
        ck_assert_uint_eq(r->end_time, sched(7));
        ow_stats_free(s);

        /* Unsorted ranges are searched linearly, with the same answers. */
        OwSkipRange unsorted[] = { { 6, 6 }, { 2, 4 } };
        ck_assert_int_eq(ow_stats_new(&req, unsorted, 2, 0.0001, &s), 0);
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        OwStatsRecordInfo info;
        OwRecord rec = rx(3, MS(0.5));
        ck_assert_int_eq(ow_stats_add(s, &rec, &info), 0);
        ck_assert_int_eq(info.kind, OW_STATS_RECORD_SKIPPED);
        rec = rx(6, MS(0.5));
        ck_assert_int_eq(ow_stats_add(s, &rec, &info), 0);
        ck_assert_int_eq(info.kind, OW_STATS_RECORD_SKIPPED);
        rec = rx(7, MS(0.5));
        ck_assert_int_eq(ow_stats_add(s, &rec, &info), 0);
        ck_assert_int_eq(info.kind, OW_STATS_RECORD_RECEIVED);
        ow_stats_free(s);
}
END_TEST

START_TEST(test_sync_and_error) {
        /* S bit on both ends: synchronised, and the error is the sum of
         * the two estimates (multiplier << scale, / 2^32). */
        OwSessionRequest req = make_request(2);
        OwRecord recs[] = { rx(0, MS(1)), rx(1, MS(1)) };
        recs[0].send_err = OW_ERREST_S_BIT | 0x0801; /* 2^8 units */
        recs[0].recv_err = OW_ERREST_S_BIT | 0x0001; /* 1 unit */
        recs[1].send_err = OW_ERREST_S_BIT | 0x0001;
        recs[1].recv_err = OW_ERREST_S_BIT | 0x0001;

        _cleanup_(ow_stats_freep) OwStats *s = run(&req, NULL, 0, 0.0001, recs, 2);
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert(r->sync);
        ck_assert(r->max_err == 257.0 / 4294967296.0);

        ck_assert(ow_stats_errest_seconds(0x0001) == 1.0 / 4294967296.0);
        /* Scale 63 shifts the multiplier out of 64 bits but its lowest bit. */
        ck_assert(ow_stats_errest_seconds(0x3f03) == 9223372036854775808.0 / 4294967296.0);
}
END_TEST

START_TEST(test_errors) {
        OwSessionRequest req = make_request(10);
        OwStats *s;
        OwRecord rec;

        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, 0.0, &s), -EINVAL);
        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, NAN, &s), -EINVAL);
        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, -0.0001, &s), -EINVAL);
        OwSlot bad = { .type = 7, .param = GAP };
        OwSessionRequest req_bad = req;
        req_bad.slots = &bad;
        ck_assert_int_eq(ow_stats_new(&req_bad, NULL, 0, 0.0001, &s), -OW_ERR_SLOT_TYPE);

        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, 0.0001, &s), 0);
        ck_assert_int_eq(ow_stats_begin(s, 5, 4), -OW_ERR_RANGE);
        ck_assert_int_eq(ow_stats_begin(s, 0, 11), -OW_ERR_RANGE);

        /* A lost-packet record for a packet already seen. */
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        rec = rx(2, MS(1));
        ck_assert_int_eq(ow_stats_add(s, &rec, NULL), 0);
        rec = lost(2);
        ck_assert_int_eq(ow_stats_add(s, &rec, NULL), -OW_ERR_DUPLICATE);

        /* An arrival for a packet already declared lost. */
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        rec = lost(2);
        ck_assert_int_eq(ow_stats_add(s, &rec, NULL), 0);
        rec = rx(2, MS(1));
        ck_assert_int_eq(ow_stats_add(s, &rec, NULL), -OW_ERR_DUPLICATE);

        /* An arrival after a later packet was declared lost. */
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        rec = lost(5);
        ck_assert_int_eq(ow_stats_add(s, &rec, NULL), 0);
        rec = rx(3, MS(1));
        ck_assert_int_eq(ow_stats_add(s, &rec, NULL), -OW_ERR_SEQ);

        /* A packet arriving more than the timeout after it was scheduled,
         * once a later arrival has settled it. */
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        rec = rx(6, TIMEOUT);
        ck_assert_int_eq(ow_stats_add(s, &rec, NULL), 0);
        rec = rx(1, MS(1) + TIMEOUT);
        ck_assert_int_eq(ow_stats_add(s, &rec, NULL), -OW_ERR_SEQ);

        /* An arrival more than the timeout after the last packet's
         * schedule: settling runs off the end of the session. */
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        rec = rx(9, TIMEOUT + GAP);
        ck_assert_int_eq(ow_stats_add(s, &rec, NULL), -OW_ERR_TIMESTAMP);

        /* Records outside the range are ignored. */
        ck_assert_int_eq(ow_stats_begin(s, 2, 4), 0);
        OwStatsRecordInfo info;
        rec = rx(4, MS(1));
        ck_assert_int_eq(ow_stats_add(s, &rec, &info), 0);
        ck_assert_int_eq(info.kind, OW_STATS_RECORD_OUTSIDE);
        ck_assert_int_eq(ow_stats_end(s), 0);
        ck_assert_uint_eq(ow_stats_result(s)->sent, 0);

        ow_stats_free(s);
}
END_TEST

START_TEST(test_sub_sessions) {
        /* -N 4 over 10 packets: [0,4) [4,8) [8,10). Counters restart for
         * each, the reordering denominator does not. */
        OwSessionRequest req = make_request(10);
        uint32_t order[] = { 0, 2, 1, 3, 4, 5, 6, 7, 9, 8 };
        OwRecord recs[10];
        for (size_t i = 0; i < 10; i++)
                recs[i] = rx(order[i], MS(0.5) + GAP);

        OwStats *s;
        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, 0.0001, &s), 0);
        uint32_t bounds[][2] = { { 0, 4 }, { 4, 8 }, { 8, UINT32_MAX } };
        uint64_t totals[] = { 4, 8, 10 };
        uint64_t reorders[] = { 1, 0, 1 };
        for (size_t b = 0; b < 3; b++) {
                ck_assert_int_eq(ow_stats_begin(s, bounds[b][0], bounds[b][1]), 0);
                for (size_t i = 0; i < 10; i++)
                        ck_assert_int_eq(ow_stats_add(s, &recs[i], NULL), 0);
                ck_assert_int_eq(ow_stats_end(s), 0);
                const OwStatsResult *r = ow_stats_result(s);
                uint32_t last = bounds[b][1] == UINT32_MAX ? 10 : bounds[b][1];
                ck_assert_uint_eq(r->sent, last - bounds[b][0]);
                ck_assert_uint_eq(r->start_time, sched(bounds[b][0]));
                ck_assert_uint_eq(r->end_time, sched(last - 1));
                ck_assert_uint_eq(r->reorder_total, totals[b]);
                ck_assert_uint_eq(r->n_reorder, reorders[b]);
        }
        ow_stats_free(s);
}
END_TEST

START_TEST(test_ttl) {
        OwSessionRequest req = make_request(4);
        OwRecord recs[] = { rx(0, MS(1)), rx(1, MS(1)), rx(2, MS(1)), rx(3, MS(1)) };
        recs[0].ttl = 250;
        recs[1].ttl = 252;
        recs[2].ttl = 250;
        recs[3].ttl = 255;
        _cleanup_(ow_stats_freep) OwStats *s = run(&req, NULL, 0, 0.0001, recs, 4);
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert_uint_eq(r->ttl[250], 2);
        ck_assert_uint_eq(r->ttl[252], 1);
        ck_assert_uint_eq(r->ttl[255], 1);
}
END_TEST

START_TEST(test_packet_rate) {
        OwSlot slots[] = {
                { .type = OW_SLOT_FIXED, .param = UINT64_C(1) << 31 },
                { .type = OW_SLOT_EXPONENTIAL, .param = UINT64_C(1) << 31 },
        };
        OwSessionRequest req = make_request(1);
        req.slots = slots;
        req.n_slots = 2;
        ck_assert(ow_stats_packet_rate(&req) == 2.0);
        slots[0].param = slots[1].param = 0;
        ck_assert(ow_stats_packet_rate(&req) == 0.0);
}
END_TEST

START_TEST(test_exponential_schedule) {
        /* With an exponential slot the scheduled times come from the
         * SID-keyed generator (ow-schedule.h): with a 1 s mean the gaps are
         * the mean-1 variates of PROTOCOL.md 8.4, so first: is Start Time +
         * variate 1 and last: (packet 9) Start Time + the sum of the first
         * ten. */
        OwSid sid;
        test_unhex("2872979303ab47eeac028dab3829dab2", sid.bytes, sizeof(sid.bytes));
        OwSlot slot = { .type = OW_SLOT_EXPONENTIAL, .param = UINT64_C(1) << 32 };
        OwSessionRequest req = make_request(10);
        req.sid = sid;
        req.slots = &slot;
        OwStats *s;
        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, 0.0001, &s), 0);
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        ck_assert_int_eq(ow_stats_end(s), 0);
        ck_assert_uint_eq(ow_stats_result(s)->start_time, START + 0x000000006d27e540);
        ck_assert_uint_eq(ow_stats_result(s)->end_time, START + 0x0000000d65c2252a);
        /* A second pass restarts the generator; a later block continues. */
        ck_assert_int_eq(ow_stats_begin(s, 0, 5), 0);
        ck_assert_int_eq(ow_stats_end(s), 0);
        ck_assert_int_eq(ow_stats_begin(s, 5, UINT32_MAX), 0);
        ck_assert_int_eq(ow_stats_end(s), 0);
        ck_assert_uint_eq(ow_stats_result(s)->end_time, START + 0x0000000d65c2252a);
        ow_stats_free(s);
}
END_TEST

START_TEST(test_many_records) {
        /* A long session settles as it goes: the open window stays small. */
        const uint32_t n = 200000;
        OwSessionRequest req = make_request(n);
        OwStats *s;
        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, 0.0001, &s), 0);
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        for (uint32_t i = 0; i < n; i++) {
                OwRecord rec = i % 1000 == 999 ? lost(i) : rx(i, MS(0.01 * (i % 97)));
                ck_assert_int_eq(ow_stats_add(s, &rec, NULL), 0);
                if (i % 500 == 7) {
                        OwRecord dup = rx(i, MS(0.3));
                        ck_assert_int_eq(ow_stats_add(s, &dup, NULL), 0);
                }
        }
        ck_assert_int_eq(ow_stats_end(s), 0);
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert_uint_eq(r->sent, n);
        ck_assert_uint_eq(r->lost, n / 1000);
        ck_assert_uint_eq(r->dups, n / 500);
        ck_assert_uint_eq(r->end_time, sched(n - 1));
        ow_stats_free(s);
}
END_TEST

static double delay_of(const OwRecord *r) {
        return (double) r->recv_time / 4294967296.0 - (double) r->send_time / 4294967296.0;
}

START_TEST(test_exact_order_statistics) {
        /* Delays 1..9 ms arriving in a scrambled order, one duplicate (not
         * counted), then one packet lost: sent = 10, the lost one is
         * infinitely late. */
        OwSessionRequest req = make_request(10);
        uint32_t ms[] = { 5, 1, 9, 3, 7, 2, 8, 4, 6 };
        OwRecord recs[11];
        for (uint32_t i = 0; i < 9; i++)
                recs[i] = rx(i, MS(ms[i]));
        recs[9] = rx(0, MS(50)); /* a duplicate of 0, far slower: ignored */
        recs[10] = lost(9);

        OwStats *s;
        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, 0.0001, &s), 0);
        ow_stats_keep_delays(s, true);
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        for (size_t i = 0; i < ELEMENTSOF(recs); i++)
                ck_assert_int_eq(ow_stats_add(s, &recs[i], NULL), 0);
        ck_assert_int_eq(ow_stats_end(s), 0);
        const OwStatsResult *r = ow_stats_result(s);
        ck_assert_uint_eq(r->sent, 10);
        ck_assert_uint_eq(r->n_delays, 9);
        for (size_t i = 1; i < r->n_delays; i++)
                ck_assert(r->delays[i - 1] <= r->delays[i]);

        /* The exact values: rank k is the packet of k ms. */
        double by_ms[10];
        for (uint32_t i = 0; i < 9; i++)
                by_ms[ms[i]] = delay_of(&recs[i]);
        double v;
        /* Even count: the mean of ranks 5 and 6. */
        ck_assert(ow_stats_exact_median(s, &v));
        ck_assert(v == by_ms[5] / 2 + by_ms[6] / 2);
        /* Nearest rank: ceil(p/100 x 10). */
        ck_assert(ow_stats_exact_percentile(s, 50.0, &v) && v == by_ms[5]);
        ck_assert(ow_stats_exact_percentile(s, 0.0, &v) && v == by_ms[1]);
        ck_assert(ow_stats_exact_percentile(s, 10.0, &v) && v == by_ms[1]);
        ck_assert(ow_stats_exact_percentile(s, 10.5, &v) && v == by_ms[2]);
        ck_assert(ow_stats_exact_percentile(s, 90.0, &v) && v == by_ms[9]);
        /* Rank 10 is the lost packet: no value. */
        ck_assert(!ow_stats_exact_percentile(s, 90.01, &v));
        ck_assert(!ow_stats_exact_percentile(s, 100.0, &v));
        ck_assert(!ow_stats_exact_jitter(s, &v)); /* P95 is rank 10 */
        ck_assert(!ow_stats_exact_percentile(s, 100.5, &v));
        ck_assert(!ow_stats_exact_percentile(s, -1.0, &v));
        /* The bucket median is still the text formats': the upper edge of
         * the bucket holding rank 5. */
        ck_assert(ow_stats_percentile(s, 0.5, &v));
        ck_assert(v >= by_ms[5] && v < by_ms[5] + 0.0001);

        /* A sub-session of its own, odd count: [0, 5) holds 5, 1, 9, 3, 7. */
        ck_assert_int_eq(ow_stats_begin(s, 0, 5), 0);
        for (size_t i = 0; i < ELEMENTSOF(recs); i++)
                ck_assert_int_eq(ow_stats_add(s, &recs[i], NULL), 0);
        ck_assert_int_eq(ow_stats_end(s), 0);
        ck_assert_uint_eq(ow_stats_result(s)->n_delays, 5);
        ck_assert(ow_stats_exact_median(s, &v) && v == by_ms[5]);
        ck_assert(ow_stats_exact_jitter(s, &v) && v == by_ms[9] - by_ms[5]);
        ow_stats_free(s);

        /* Not asked for: nothing kept, no exact values. */
        _cleanup_(ow_stats_freep) OwStats *t = run(&req, NULL, 0, 0.0001, recs, ELEMENTSOF(recs));
        ck_assert_ptr_null(ow_stats_result(t)->delays);
        ck_assert(!ow_stats_exact_median(t, &v));
}
END_TEST

START_TEST(test_exact_percentile_decimal) {
        /* 99.9 % of 1000 packets is rank 999 exactly, though 99.9 in binary
         * is a little above it; every packet of k+1 ms, none lost. */
        OwSessionRequest req = make_request(1000);
        OwStats *s;
        ck_assert_int_eq(ow_stats_new(&req, NULL, 0, 0.0001, &s), 0);
        ow_stats_keep_delays(s, true);
        ck_assert_int_eq(ow_stats_begin(s, 0, UINT32_MAX), 0);
        for (uint32_t i = 0; i < 1000; i++) {
                OwRecord rec = rx(i, MS(1) * (i + 1) / 1000);
                ck_assert_int_eq(ow_stats_add(s, &rec, NULL), 0);
        }
        ck_assert_int_eq(ow_stats_end(s), 0);
        const OwStatsResult *r = ow_stats_result(s);
        double v;
        ck_assert(ow_stats_exact_percentile(s, 99.9, &v) && v == r->delays[998]);
        ck_assert(ow_stats_exact_percentile(s, (double) 99.9f, &v) && v == r->delays[999]);
        ck_assert(ow_stats_exact_percentile(s, 0.1, &v) && v == r->delays[0]);
        ck_assert(ow_stats_exact_median(s, &v) && v == r->delays[499] / 2 + r->delays[500] / 2);
        ow_stats_free(s);
}
END_TEST

static Suite *stats_suite(void) {
        Suite *s = suite_create("stats");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_clean_session);
        tcase_add_test(tc, test_median_above_max);
        tcase_add_test(tc, test_loss);
        tcase_add_test(tc, test_duplicates);
        tcase_add_test(tc, test_reordering_rfc4737);
        tcase_add_test(tc, test_reordering_limit);
        tcase_add_test(tc, test_reordering_matches_walk);
        tcase_add_test(tc, test_reordering_reversed_fast);
        tcase_add_test(tc, test_bucket_edges);
        tcase_add_test(tc, test_bucket_print_order);
        tcase_add_test(tc, test_bucket_overflow);
        tcase_add_test(tc, test_skip_ranges);
        tcase_add_test(tc, test_sync_and_error);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_sub_sessions);
        tcase_add_test(tc, test_ttl);
        tcase_add_test(tc, test_packet_rate);
        tcase_add_test(tc, test_exponential_schedule);
        tcase_add_test(tc, test_many_records);
        tcase_add_test(tc, test_exact_order_statistics);
        tcase_add_test(tc, test_exact_percentile_decimal);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(stats_suite());
}
