/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "ow-error.h"
#include "ow-twreport.h"

#define UNIX_EPOCH_DIFF ((double) OW_NTP_UNIX_OFFSET_SEC)

int ow_twreport_raw_record(const OwSink *out, const OwTwRecord *r) {
        double e1 = ow_stats_errest_seconds(r->sender_err), e23 = ow_stats_errest_seconds(r->reflector_err),
               e4 = ow_stats_errest_seconds(r->recv_err);
        unsigned s1 = ow_errest_sync(r->sender_err), s23 = ow_errest_sync(r->reflector_err),
                 s4 = ow_errest_sync(r->recv_err);

        return ow_sink_printf(out,
                              "%u %020" PRIu64 " %u %g %020" PRIu64 " %u %g %u %u %020" PRIu64
                              " %u %g %020" PRIu64 " %u %g %u\n",
                              r->sender_seq, r->t1, s1, e1, r->t2, s23, e23, (unsigned) r->sender_ttl,
                              r->reflector_seq, r->t3, s23, e23, r->t4, s4, e4, (unsigned) r->ttl);
}

int ow_twreport_record(const OwSink *out, const OwReportOptions *o, const OwTwRecord *r,
                       const OwTwStatsRecordInfo *info) {
        double f;
        const char *u;

        /* A lost packet's line is owping's. */
        if (info->kind == OW_STATS_RECORD_LOST)
                return ow_report_record(out, o, &(OwRecord){ .seq = r->sender_seq },
                                        &(OwStatsRecordInfo){ .kind = OW_STATS_RECORD_LOST });
        if (info->kind != OW_STATS_RECORD_RECEIVED)
                return 0;
        if (ow_report_units(o->units, &f, &u) < 0)
                return -EINVAL;

        if (o->unix_time)
                return ow_sink_printf(
                        out,
                        "seq_no=%d fwd_delay=%e %s bck_delay=%e %s delay=%e %s proc_delay=%e %s "
                        "(err=%.3g %s) sent=%f recv=%f reflected=%f recv=%f\n",
                        (int) r->sender_seq, info->send * f, u, info->reflect * f, u, info->delay * f, u,
                        info->proc * f, u, info->error * f, u,
                        ow_stats_num64_to_double(r->t1) - UNIX_EPOCH_DIFF,
                        ow_stats_num64_to_double(r->t2) - UNIX_EPOCH_DIFF,
                        ow_stats_num64_to_double(r->t3) - UNIX_EPOCH_DIFF,
                        ow_stats_num64_to_double(r->t4) - UNIX_EPOCH_DIFF);
        return ow_sink_printf(out,
                              "seq_no=%-10u fwd_delay=%.3g %s bck_delay=%.3g %s delay=%.3g %s "
                              "proc_delay=%.3g %s\t(err=%.3g %s)\n",
                              r->sender_seq, info->send * f, u, info->reflect * f, u, info->delay * f, u,
                              info->proc * f, u, info->error * f, u);
}

static const struct {
        const char *delay, *jitter, *suffix;
} names[_OW_TW_DIRECTION_MAX] = {
        [OW_TW_ROUND_TRIP] = { "round-trip time", "two-way", "" },
        [OW_TW_SEND] = { "send time", "send", "_FWD" },
        [OW_TW_REFLECT] = { "reflect time", "reflect", "_BCK" },
};

static const OwStatsResult *dir_result(const OwTwStats *st, OwTwDirection d) {
        return ow_stats_result(ow_tw_stats_direction(st, d));
}

static bool has_min(const OwStatsResult *r) {
        return r->min_delay < r->inf_delay;
}

static bool has_max(const OwStatsResult *r) {
        return r->max_delay > -r->inf_delay;
}

static int twreport_summary(const OwSink *out, const OwReportSession *s, const OwTwStats *st,
                            const OwReportOptions *o) {
        const OwStatsResult *rt = dir_result(st, OW_TW_ROUND_TRIP), *fwd = dir_result(st, OW_TW_SEND),
                            *bck = dir_result(st, OW_TW_REFLECT);
        const OwTwStatsResult *tw = ow_tw_stats_result(st);
        double f, d;
        const char *u;
        int r;

        if (ow_report_units(o->units, &f, &u) < 0)
                return -EINVAL;

        /* Negative one-way delays: the two hosts' clocks are apart. */
        if ((has_min(fwd) && fwd->min_delay < 0) || (has_min(bck) && bck->min_delay < 0)) {
                r = ow_sink_printf(out,
                                   "\nDirectional delays may be inaccurate due to out of sync clocks!\n");
                if (r < 0)
                        return r;
        }

        r = ow_report_header(out, s);
        if (r < 0)
                return r;
        r = ow_report_times(out, o, rt);
        if (r < 0)
                return r;
        d = rt->sent > 0 ? (double) rt->lost / rt->sent : 0.0;
        r = ow_sink_printf(out, "%u sent, %u lost (%.3f%%), %u send duplicates, %u reflect duplicates\n",
                           rt->sent, rt->lost, 100.0 * d, tw->send_dups, tw->reflect_dups);
        if (r < 0)
                return r;

        for (OwTwDirection i = 0; i < _OW_TW_DIRECTION_MAX; i++) {
                const OwStatsResult *res = dir_result(st, i);
                r = ow_report_delay_line(out, names[i].delay, ow_tw_stats_direction(st, i), res->sync,
                                         res->max_err, f, u);
                if (r < 0)
                        return r;
        }

        if (tw->has_proc)
                r = ow_sink_printf(out, "reflector processing time min/max = %.3g/%.3g %s\n",
                                   tw->min_proc * f, tw->max_proc * f, u);
        else
                r = ow_sink_printf(out, "reflector processing time min/max = nan/nan %s\n", u);
        if (r < 0)
                return r;

        for (OwTwDirection i = 0; i < _OW_TW_DIRECTION_MAX; i++) {
                r = ow_report_jitter_line(out, names[i].jitter, ow_tw_stats_direction(st, i), f, u);
                if (r < 0)
                        return r;
        }
        r = ow_report_percentiles(out, o, ow_tw_stats_direction(st, OW_TW_ROUND_TRIP), f, u);
        if (r < 0)
                return r;
        r = ow_report_hops(out, "send ", fwd);
        if (r < 0)
                return r;
        r = ow_report_hops(out, "reflect ", bck);
        if (r < 0)
                return r;
        return ow_sink_printf(out, "\n");
}

/* One line per bucket index occupied in any of the three histograms, with
 * its three counts, in the order of the reference's one table of them:
 * hash chains ascending; within a chain, the round trip's order, then
 * indices only the send or reflect histogram has. */
typedef struct TwBucket {
        int32_t index;
        unsigned chain;
        size_t order;
        uint32_t count[_OW_TW_DIRECTION_MAX];
} TwBucket;

static int cmp_tw_bucket(const void *a, const void *b) {
        const TwBucket *x = a, *y = b;
        if (x->chain != y->chain)
                return x->chain < y->chain ? -1 : 1;
        return (x->order > y->order) - (x->order < y->order);
}

static int machine_buckets(const OwSink *out, const OwTwStats *st) {
        const OwStats *rt = ow_tw_stats_direction(st, OW_TW_ROUND_TRIP);
        size_t total = 0, n = 0;
        int r;

        for (OwTwDirection i = 0; i < _OW_TW_DIRECTION_MAX; i++)
                total += dir_result(st, i)->n_buckets;
        _cleanup_free_ TwBucket *b = total > 0 ? calloc(total, sizeof(TwBucket)) : NULL;
        if (total > 0 && !b)
                return -ENOMEM;

        for (OwTwDirection i = 0; i < _OW_TW_DIRECTION_MAX; i++) {
                const OwStatsResult *res = dir_result(st, i);
                for (size_t k = 0; k < res->n_buckets; k++) {
                        const OwStatsBucket *ob = &res->buckets_print_order[k];
                        size_t j;
                        /* Few buckets: a linear search is enough. */
                        for (j = 0; j < n; j++)
                                if (b[j].index == ob->index)
                                        break;
                        if (j == n)
                                b[n++] = (TwBucket){
                                        .index = ob->index,
                                        .chain = ow_stats_bucket_chain(rt, ob->index),
                                        .order = j,
                                };
                        b[j].count[i] = ob->count;
                }
        }
        if (n > 0)
                qsort(b, n, sizeof(TwBucket), cmp_tw_bucket);

        r = ow_sink_printf(out, "<BUCKETS>\n");
        for (size_t j = 0; r >= 0 && j < n; j++)
                r = ow_sink_printf(out, "\t%d\t%u\t%u\t%u\n", b[j].index, b[j].count[OW_TW_ROUND_TRIP],
                                   b[j].count[OW_TW_SEND], b[j].count[OW_TW_REFLECT]);
        if (r >= 0)
                r = ow_sink_printf(out, "</BUCKETS>\n");
        return r;
}

/* Value k of keys[] in twreport_machine() for one delay type. */
static bool machine_value(const OwTwStats *st, OwTwDirection i, size_t k, double *ret) {
        const OwStats *one = ow_tw_stats_direction(st, i);
        const OwStatsResult *r = ow_stats_result(one);

        switch (k) {
        case 0:
                *ret = r->min_delay;
                return has_min(r);
        case 1:
                return ow_stats_percentile(one, 0.5, ret);
        case 2:
                *ret = r->max_delay;
                return has_max(r);
        default:
                return ow_stats_jitter(one, ret);
        }
}

static int twreport_machine(const OwSink *out, const OwReportSession *s, const OwTwStats *st,
                            const OwReportOptions *o) {
        const OwStatsResult *rt = dir_result(st, OW_TW_ROUND_TRIP), *fwd = dir_result(st, OW_TW_SEND),
                            *bck = dir_result(st, OW_TW_REFLECT);
        const OwTwStatsResult *tw = ow_tw_stats_result(st);
        double d;
        int r;

        r = ow_report_machine_head(out, s, rt, o);
        for (OwTwDirection i = 0; r >= 0 && i < _OW_TW_DIRECTION_MAX; i++)
                r = ow_sink_printf(out, "MAXERR%s\t%g\n", names[i].suffix, dir_result(st, i)->max_err);
        if (r >= 0)
                r = ow_sink_printf(out, "DUPS_FWD\t%u\nDUPS_BCK\t%u\nLOST\t%u\n", tw->send_dups,
                                   tw->reflect_dups, rt->lost);

        /* MIN, MEDIAN, MAX and PDV of each delay type that has one;
         * the processing time's after MIN and MAX. */
        static const char *const keys[] = { "MIN", "MEDIAN", "MAX", "PDV" };
        for (size_t k = 0; r >= 0 && k < ELEMENTSOF(keys); k++) {
                for (OwTwDirection i = 0; r >= 0 && i < _OW_TW_DIRECTION_MAX; i++)
                        if (machine_value(st, i, k, &d))
                                r = ow_sink_printf(out, "%s%s\t%g\n", keys[k], names[i].suffix, d);
                if (r >= 0 && tw->has_proc && (k == 0 || k == 2))
                        r = ow_sink_printf(out, "%s_PROC\t%g\n", keys[k],
                                           k == 0 ? tw->min_proc : tw->max_proc);
        }

        if (r >= 0 && rt->sent > rt->lost)
                r = machine_buckets(out, st);

        if (r >= 0)
                r = ow_report_machine_ttl(out, "_FWD", fwd);
        if (r >= 0)
                r = ow_report_machine_ttl(out, "_BCK", bck);

        bool any = false;
        for (unsigned i = 0; i < 256; i++)
                any = any || fwd->ttl[i] || bck->ttl[i];
        if (r >= 0 && any) {
                r = ow_sink_printf(out, "<TTLBUCKETS>\n");
                for (unsigned i = 0; r >= 0 && i < 256; i++)
                        if (fwd->ttl[i] || bck->ttl[i])
                                r = ow_sink_printf(out, "\t%u\t%" PRIu64 "\t%" PRIu64 "\n", i, fwd->ttl[i],
                                                   bck->ttl[i]);
                if (r >= 0)
                        r = ow_sink_printf(out, "</TTLBUCKETS>\n");
        }
        if (r >= 0)
                r = ow_sink_printf(out, "\n");
        return r;
}

int ow_twreport_block(const OwSink *out, const OwReportSession *s, const OwTwStats *st,
                      const OwReportOptions *o) {
        return o->machine ? twreport_machine(out, s, st, o) : twreport_summary(out, s, st, o);
}
