/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-error.h"
#include "ow-map.h"
#include "ow-schedule.h"
#include "ow-stats.h"


typedef struct ReorderEntry {
        uint64_t index; /* arrival number in the (sub-)session */
        uint32_t seq;
} ReorderEntry;

/* Histogram bucket. Its position in OwStats.buckets is the order of first
 * samples in this (sub-)session, which fixes the reference's printing
 * order. */
typedef struct Bucket {
        int32_t index;
        uint32_t count;
} Bucket;

struct OwStats {
        /* The session. */
        uint32_t n_packets;
        OwTimestamp start;
        OwTimestamp timeout;
        OwSkipRange *skips;
        size_t n_skips;
        bool skips_sorted; /* ascending, disjoint: lookups may bisect */
        double bucket_width;
        size_t btable_size; /* size of the reference's bucket hash table */

        /* Schedule: the generator, and for all-fixed slots their prefix sums
         * (fixed_prefix[j] = gaps of slots 0..j-1, j <= n), which allow
         * random access. */
        OwSchedule *schedule;
        OwTimestamp *fixed_prefix;
        uint32_t n_slots;
        int64_t sched_k;     /* index of the last gap taken, -1 for none */
        OwTimestamp sched_t; /* start + gaps 0..sched_k */

        /* The open packets: sequence numbers pbegin .. (unbounded), of which
         * only those seen or declared lost have an entry (val = copies seen,
         * flag = lost). */
        uint32_t pbegin;
        OwTimestamp pbegin_sched;
        OwMap packets;

        /* Sorted skip range cursor (reference: iskip). */
        size_t iskip;

        /* Histogram. */
        OwMap bucket_map; /* bucket index -> position in buckets[] */
        Bucket *buckets;
        size_t n_buckets, buckets_allocated;
        OwStatsBucket *sorted, *print_order;
        size_t sorted_allocated;

        /* Reordering. The reference walks back over the last `limit`
         * arrivals for as long as the new sequence number is below them,
         * counting one j-reordering for each step j; that costs the walk's
         * length per arrival. The length (the arrival's "depth") is found
         * here in amortised O(1): a stack holds the arrivals not yet
         * shadowed by a later, smaller one, so after popping those above the
         * new one its top is the nearest earlier arrival not above it.
         * Entries older than the window drop off the bottom. Arrivals are
         * then counted per depth, and rn[j] = arrivals deeper than j. */
        uint64_t reorder_limit;
        ReorderEntry *stack; /* ring buffer, capacity a power of two */
        uint64_t stack_allocated, stack_bottom, stack_n;
        uint64_t arrivals; /* in this (sub-)session */
        uint32_t *depths;  /* depths[d]: arrivals of depth d, 1 <= d <= max_depth */
        uint64_t depths_allocated, max_depth;
        uint32_t *rn;
        uint64_t rn_allocated;
        uint64_t reorder_total;

        /* Exact order statistics (ow_stats_keep_delays()): the delay of
         * every first copy of this (sub-)session, sorted by ow_stats_end(). */
        bool keep_delays;
        double *delays;
        size_t n_delays, delays_allocated;

        OwStatsResult result;
        bool in_session;
};

double ow_stats_num64_to_double(uint64_t v) {
        return (double) v / 4294967296.0;
}

double ow_stats_errest_seconds(OwErrEst e) {
        /* The reference shifts the multiplier left in a 64-bit integer, so
         * scales above 56 lose the top bits; keep that. */
        uint64_t err = (uint64_t) ow_errest_multiplier(e) << ow_errest_scale(e);
        return ow_stats_num64_to_double(err);
}

double ow_stats_packet_rate(const OwSessionRequest *req) {
        uint64_t sum = 0;

        if (req->n_slots == 0 || !req->slots)
                return 0.0;
        for (uint32_t i = 0; i < req->n_slots; i++)
                sum += req->slots[i].param; /* wraps, as the reference's does */
        if (sum == 0)
                return 0.0;
        return (double) req->n_slots / ow_stats_num64_to_double(sum);
}

/* C leaves double -> int conversion of out-of-range values undefined; the
 * reference's build (x86-64) gets INT_MIN, the "integer indefinite" value.
 * Also applies the reference's rounding away from zero. */
static int32_t bucket_index(double d, double width) {
        double q = d / width;

        if (!(q > -2147483649.0 && q < 2147483648.0))
                return INT32_MIN; /* out of range, or NaN */
        int64_t t = (int64_t) q;  /* truncation toward zero, in range */
        if (q < 0) {
                if ((double) t > q)
                        t--;
        } else if ((double) t < q)
                t++;
        if (t < INT32_MIN || t > INT32_MAX)
                return INT32_MIN;
        return (int32_t) t;
}

static size_t reference_btable_size(OwTimestamp timeout, double width) {
        /* The reference sizes its bucket hash from the raw 32.32 timeout
         * divided by the width in seconds (a unit slip that makes it almost
         * always 2048), bounded to [10, 2048], then picks the largest prime
         * of its list not above that. */
        static const unsigned primes[] = {
                31, 67, 127, 251, 509, 1021, 2053, 4093, 8191, 16381, 32771, 65521
        };
        double d = (double) timeout / width;
        long hint;
        size_t i;

        if (d > 0x7fffffffL)
                hint = 0x7fffffffL;
        else
                hint = (long) d;
        hint = MAX(hint, 10L);
        hint = MIN(hint, 2048L);

        for (i = ELEMENTSOF(primes) - 1; i > 0 && primes[i] > (unsigned long) hint; i--)
                ;
        return primes[i];
}

static uint64_t reference_reorder_limit(const OwSessionRequest *req) {
        /* The reference's packet-buffer size, which also bounds the
         * reordering window: rate x timeout x 3.5, at least 10. */
        double d = ow_stats_packet_rate(req) * ow_stats_num64_to_double(req->timeout) * 3.5;
        long n;

        if (d > 0x7fffffffL)
                n = 0x7fffffffL;
        else
                n = (long) d;
        return (uint64_t) MAX(n, 10L);
}

OwStats *ow_stats_free(OwStats *s) {
        if (!s)
                return NULL;
        free(s->skips);
        ow_schedule_free(s->schedule);
        free(s->fixed_prefix);
        ow_map_done(&s->packets);
        ow_map_done(&s->bucket_map);
        free(s->buckets);
        free(s->sorted);
        free(s->print_order);
        free(s->stack);
        free(s->depths);
        free(s->rn);
        free(s->delays);
        free(s);
        return NULL;
}

int ow_stats_new(const OwSessionRequest *req, const OwSkipRange *skips, size_t n_skips, double bucket_width,
                 OwStats **ret) {
        _cleanup_(ow_stats_freep) OwStats *s = NULL;
        int r;

        if (!req || !ret || (n_skips > 0 && !skips))
                return -EINVAL;
        if (!(bucket_width > 0.0)) /* NaN too; +inf is accepted, as by the reference */
                return -EINVAL;
        if (req->n_slots == 0 || !req->slots)
                return -EINVAL;

        s = calloc(1, sizeof(OwStats));
        if (!s)
                return -ENOMEM;

        s->n_packets = req->n_packets;
        s->start = req->start_time;
        s->timeout = req->timeout;
        s->bucket_width = bucket_width;
        s->btable_size = reference_btable_size(req->timeout, bucket_width);
        s->reorder_limit = reference_reorder_limit(req);

        if (n_skips > 0) {
                s->skips = calloc(n_skips, sizeof(OwSkipRange));
                if (!s->skips)
                        return -ENOMEM;
                memcpy(s->skips, skips, n_skips * sizeof(OwSkipRange));
                s->n_skips = n_skips;
        }
        s->skips_sorted = true;
        for (size_t i = 0; i < n_skips; i++)
                if (skips[i].first > skips[i].last || (i > 0 && skips[i].first <= skips[i - 1].last)) {
                        s->skips_sorted = false;
                        break;
                }

        r = ow_schedule_new(&req->sid, req->slots, req->n_slots, req->start_time, &s->schedule);
        if (r < 0)
                return r;
        s->n_slots = req->n_slots;
        bool all_fixed = true;
        for (uint32_t i = 0; i < req->n_slots; i++)
                if (req->slots[i].type != OW_SLOT_FIXED)
                        all_fixed = false;
        if (all_fixed) {
                s->fixed_prefix = calloc((size_t) req->n_slots + 1, sizeof(OwTimestamp));
                if (!s->fixed_prefix)
                        return -ENOMEM;
                s->fixed_prefix[0] = 0;
                for (uint32_t i = 0; i < req->n_slots; i++)
                        s->fixed_prefix[i + 1] = s->fixed_prefix[i] + req->slots[i].param;
        }
        s->sched_k = -1;
        s->sched_t = req->start_time;

        r = ow_map_init(&s->packets);
        if (r < 0)
                return r;
        r = ow_map_init(&s->bucket_map);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

/* Scheduled send time of packet k, by random access (fixed slots only). */
static OwTimestamp fixed_schedtime(const OwStats *s, uint32_t k) {
        uint64_t n = (uint64_t) k + 1; /* gaps 0..k */
        /* Multiplication wraps modulo 2^64 exactly as repeated addition does. */
        return s->start + (n / s->n_slots) * s->fixed_prefix[s->n_slots] + s->fixed_prefix[n % s->n_slots];
}

/* Advance the schedule cursor by one packet. */
static void schedule_step(OwStats *s) {
        s->sched_k++;
        if (s->fixed_prefix)
                s->sched_t = fixed_schedtime(s, (uint32_t) s->sched_k);
        else
                s->sched_t = ow_schedule_next(s->schedule, NULL);
}

/* Position the schedule cursor on packet k, the way the reference does:
 * restart when going backwards (or to 0), otherwise continue. */
static void schedule_seek(OwStats *s, uint32_t k) {
        if (k == 0 || (int64_t) k <= s->sched_k) {
                s->sched_k = -1;
                s->sched_t = s->start;
                ow_schedule_reset(s->schedule);
        }
        if (s->fixed_prefix && (int64_t) k > s->sched_k + 1) {
                s->sched_k = k;
                s->sched_t = fixed_schedtime(s, k);
                return;
        }
        while (s->sched_k < (int64_t) k)
                schedule_step(s);
}

int ow_stats_begin(OwStats *s, uint32_t first, uint32_t last) {
        if (!s)
                return -EINVAL;
        if (last == UINT32_MAX)
                last = s->n_packets;
        if (first > last || last > s->n_packets)
                return -OW_ERR_RANGE;

        OwStatsResult *r = &s->result;
        *r = (OwStatsResult){
                .first = first,
                .last = last,
                .sync = true,
                .bucket_width = s->bucket_width,
                .reorder_limit = s->reorder_limit,
        };

        schedule_seek(s, first);
        r->start_time = s->sched_t;
        r->end_time = s->sched_t;
        s->pbegin = first;
        s->pbegin_sched = s->sched_t;
        ow_map_clear(&s->packets);
        s->iskip = 0;

        ow_map_clear(&s->bucket_map);
        s->n_buckets = 0;
        s->n_delays = 0;

        s->arrivals = 0;
        s->stack_n = 0;
        s->stack_bottom = 0;
        s->max_depth = 0;
        if (s->depths_allocated > 0)
                memset(s->depths, 0, s->depths_allocated * sizeof(uint32_t));

        /* The reference starts min at +inf_delay and max at -inf_delay, with
         * inf_delay = timeout + 2^-32 s (so min stays "nan" when every
         * delay is at least that). */
        r->inf_delay = ow_stats_num64_to_double(s->timeout + 1);
        r->min_delay = r->inf_delay;
        r->max_delay = -r->inf_delay;

        s->in_session = true;
        return 0;
}

static bool in_skip_from(const OwStats *s, size_t from, uint32_t seq) {
        if (!s->skips_sorted) {
                /* As the reference: every range from the cursor on. */
                for (size_t i = from; i < s->n_skips; i++)
                        if (seq >= s->skips[i].first && seq <= s->skips[i].last)
                                return true;
                return false;
        }
        /* Sorted and disjoint: the only candidate is the last range that
         * starts at or before seq. */
        size_t lo = from, hi = s->n_skips;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (s->skips[mid].first <= seq)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo > from && seq <= s->skips[lo - 1].last;
}

/* Settle the oldest open packet (the reference's PacketBeginFlush).
 * Returns 1 if there is a next packet in the range, 0 if that was the last. */
static int flush_one(OwStats *s) {
        OwStatsResult *r = &s->result;
        uint32_t seq = s->pbegin;

        while (s->iskip < s->n_skips && seq > s->skips[s->iskip].last)
                s->iskip++;
        bool skipped = s->iskip < s->n_skips && seq >= s->skips[s->iskip].first;

        OwMapSlot *node = s->packets.n > 0 ? ow_map_find(&s->packets, seq) : NULL;
        if (node) {
                if (!skipped) {
                        if (node->flag)
                                r->lost++;
                        else if (node->val > 0)
                                r->dups += node->val - 1;
                }
                ow_map_delete(&s->packets, node);
        }

        r->end_time = s->pbegin_sched;

        if ((uint64_t) seq + 1 >= r->last)
                return 0;

        s->pbegin = seq + 1;
        if (s->sched_k == (int64_t) seq)
                schedule_step(s);
        else
                schedule_seek(s, seq + 1);
        s->pbegin_sched = s->sched_t;
        return 1;
}

static ReorderEntry *stack_at(const OwStats *s, uint64_t i) {
        return &s->stack[(s->stack_bottom + i) & (s->stack_allocated - 1)];
}

static int stack_push(OwStats *s, uint64_t index, uint32_t seq) {
        if (s->stack_n == s->stack_allocated) {
                uint64_t n = MAX(s->stack_allocated * 2, (uint64_t) 64);
                ReorderEntry *p = calloc(n, sizeof(ReorderEntry));
                if (!p)
                        return -ENOMEM;
                for (uint64_t i = 0; i < s->stack_n; i++)
                        p[i] = *stack_at(s, i);
                free(s->stack);
                s->stack = p;
                s->stack_allocated = n;
                s->stack_bottom = 0;
        }
        *stack_at(s, s->stack_n) = (ReorderEntry){ .index = index, .seq = seq };
        s->stack_n++;
        return 0;
}

static int reorder_add(OwStats *s, uint32_t seq) {
        uint64_t limit = s->reorder_limit;
        uint64_t i = s->arrivals;
        uint64_t depth;

        /* Only the last `limit` arrivals count (indices i - limit .. i - 1). */
        while (s->stack_n > 0 && i > limit && s->stack[s->stack_bottom].index < i - limit) {
                s->stack_bottom = (s->stack_bottom + 1) & (s->stack_allocated - 1);
                s->stack_n--;
        }
        /* Arrivals above seq are passed by the walk, and shadowed for every
         * later arrival by seq itself. */
        while (s->stack_n > 0 && stack_at(s, s->stack_n - 1)->seq > seq)
                s->stack_n--;
        depth = s->stack_n > 0 ? i - stack_at(s, s->stack_n - 1)->index - 1 : i;
        depth = MIN(depth, limit);

        if (depth > 0) {
                if (depth >= s->depths_allocated) {
                        uint64_t n = MAX(s->depths_allocated * 2, (uint64_t) 16);
                        n = MAX(n, depth + 1);
                        uint32_t *p = reallocarray(s->depths, n, sizeof(uint32_t));
                        if (!p)
                                return -ENOMEM;
                        memset(p + s->depths_allocated, 0, (n - s->depths_allocated) * sizeof(uint32_t));
                        s->depths = p;
                        s->depths_allocated = n;
                }
                s->depths[depth]++;
                s->max_depth = MAX(s->max_depth, depth);
        }

        int r = stack_push(s, i, seq);
        if (r < 0)
                return r;
        s->arrivals++;
        s->reorder_total++;
        return 0;
}

static int bucket_add(OwStats *s, double d) {
        int32_t b = bucket_index(d, s->bucket_width);
        OwMapSlot *slot;
        int r;

        r = ow_map_get(&s->bucket_map, (uint32_t) b, &slot);
        if (r < 0)
                return r;
        if (!slot->flag) {
                if (s->n_buckets >= s->buckets_allocated) {
                        size_t n = MAX(s->buckets_allocated * 2, (size_t) 64);
                        Bucket *p = reallocarray(s->buckets, n, sizeof(Bucket));
                        if (!p) {
                                ow_map_delete(&s->bucket_map, slot);
                                return -ENOMEM;
                        }
                        s->buckets = p;
                        s->buckets_allocated = n;
                }
                slot->flag = 1;
                slot->val = (uint32_t) s->n_buckets;
                s->buckets[s->n_buckets] = (Bucket){ .index = b };
                s->n_buckets++;
        }
        s->buckets[slot->val].count++;
        return 0;
}

static int delay_keep(OwStats *s, double d) {
        if (s->n_delays == s->delays_allocated) {
                size_t n = MAX(s->delays_allocated * 2, (size_t) 1024);
                double *p = reallocarray(s->delays, n, sizeof(double));
                if (!p)
                        return -ENOMEM;
                s->delays = p;
                s->delays_allocated = n;
        }
        s->delays[s->n_delays++] = d;
        return 0;
}

/* delay (may be NULL) replaces receive - send and its error estimate. */
static int stats_add(OwStats *s, const OwRecord *rec, const OwStatsDelay *delay, OwStatsRecordInfo *info) {
        OwStatsRecordInfo dummy;
        OwMapSlot *node;
        int r;

        if (!s || !rec || !s->in_session)
                return -EINVAL;
        if (!info)
                info = &dummy;
        *info = (OwStatsRecordInfo){ .kind = OW_STATS_RECORD_OUTSIDE };

        OwStatsResult *res = &s->result;
        if (rec->seq < res->first || rec->seq >= res->last)
                return 0;

        bool lost = ow_record_lost(rec);

        /* Settle what this record proves final: for a loss, every earlier
         * packet (losses are declared in order); for an arrival, every
         * packet scheduled more than the loss timeout before it. */
        if (lost) {
                while (s->pbegin < rec->seq)
                        if (flush_one(s) == 0)
                                return -OW_ERR_TIMESTAMP; /* cannot happen: seq < last */
        } else {
                OwTimestamp thresh = rec->recv_time - s->timeout; /* wraps, as the reference's does */
                while (s->pbegin_sched < thresh)
                        if (flush_one(s) == 0)
                                return -OW_ERR_TIMESTAMP;
        }

        if (rec->seq < s->pbegin)
                return -OW_ERR_SEQ;

        if (in_skip_from(s, s->iskip, rec->seq)) {
                info->kind = OW_STATS_RECORD_SKIPPED;
                return 0;
        }

        if (lost) {
                node = ow_map_find(&s->packets, rec->seq);
                if (node && node->val > 0)
                        return -OW_ERR_DUPLICATE;
                r = ow_map_get(&s->packets, rec->seq, &node);
                if (r < 0)
                        return r;
                node->flag = 1;
                res->sent++; /* per lost record, as the reference counts */
                if (!ow_errest_sync(rec->recv_err))
                        res->sync = false;
                res->max_err = MAX(res->max_err, ow_stats_errest_seconds(rec->recv_err));
                info->kind = OW_STATS_RECORD_LOST;
                return 0;
        }

        r = ow_map_get(&s->packets, rec->seq, &node);
        if (r < 0)
                return r;
        if (node->flag)
                return -OW_ERR_DUPLICATE;
        if (node->val == 0)
                res->sent++;
        if (node->val < UINT32_MAX)
                node->val++;
        uint32_t copies = node->val;

        r = reorder_add(s, rec->seq);
        if (r < 0)
                return r;

        bool sync = ow_errest_sync(rec->send_err) && ow_errest_sync(rec->recv_err);
        if (!sync)
                res->sync = false;

        double d = delay ? delay->delay
                         : ow_stats_num64_to_double(rec->recv_time) - ow_stats_num64_to_double(rec->send_time);
        double derr = delay ? delay->error
                            : ow_stats_errest_seconds(rec->send_err) + ow_stats_errest_seconds(rec->recv_err);
        res->max_err = MAX(res->max_err, derr);

        *info = (OwStatsRecordInfo){
                .kind = OW_STATS_RECORD_RECEIVED,
                .sync = sync,
                .delay = d,
                .error = derr,
        };

        res->min_delay = MIN(res->min_delay, d);
        res->max_delay = MAX(res->max_delay, d);

        /* The histogram and TTLs count first copies only. */
        if (copies > 1)
                return 0;

        r = bucket_add(s, d);
        if (r < 0)
                return r;
        if (s->keep_delays) {
                r = delay_keep(s, d);
                if (r < 0)
                        return r;
        }
        res->ttl[rec->ttl]++;
        return 0;
}

static unsigned byte_sum(int32_t v);

int ow_stats_add(OwStats *s, const OwRecord *rec, OwStatsRecordInfo *info) {
        return stats_add(s, rec, NULL, info);
}

int ow_stats_add_delay(OwStats *s, const OwRecord *rec, const OwStatsDelay *delay, OwStatsRecordInfo *info) {
        if (!delay)
                return -EINVAL;
        return stats_add(s, rec, delay, info);
}

uint32_t ow_stats_open_from(const OwStats *s) {
        return s->pbegin;
}

unsigned ow_stats_bucket_chain(const OwStats *s, int32_t index) {
        return byte_sum(index) % (unsigned) s->btable_size;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

static int cmp_index(const void *a, const void *b) {
        int32_t x = ((const OwStatsBucket *) a)->index, y = ((const OwStatsBucket *) b)->index;
        return (x > y) - (x < y);
}

static unsigned byte_sum(int32_t v) {
        uint32_t u = (uint32_t) v;
        return (u & 0xff) + ((u >> 8) & 0xff) + ((u >> 16) & 0xff) + (u >> 24);
}

typedef struct PrintKey {
        unsigned chain;
        uint32_t order;
        OwStatsBucket b;
} PrintKey;

static int cmp_print(const void *a, const void *b) {
        const PrintKey *x = a, *y = b;
        if (x->chain != y->chain)
                return x->chain < y->chain ? -1 : 1;
        /* Each chain lists its newest key first. */
        return (x->order < y->order) - (x->order > y->order);
}

int ow_stats_end(OwStats *s) {
        OwStatsResult *r;

        if (!s || !s->in_session)
                return -EINVAL;
        r = &s->result;

        /* Settle everything up to last - 1. With a fixed schedule and no
         * packet left open, jump straight to the end. */
        for (;;) {
                if (s->fixed_prefix && s->packets.n == 0 && (uint64_t) s->pbegin + 1 < r->last) {
                        uint32_t k = r->last - 1;
                        s->pbegin = k;
                        s->sched_k = k;
                        s->sched_t = fixed_schedtime(s, k);
                        s->pbegin_sched = s->sched_t;
                }
                if (flush_one(s) == 0)
                        break;
        }
        s->in_session = false;

        /* Histogram: ascending for quantiles, and the reference's hash
         * iteration order (chains by byte sum of the int key modulo the
         * table size, newest first within a chain) for printing. */
        if (s->n_buckets > s->sorted_allocated) {
                size_t n = MAX(s->n_buckets, s->sorted_allocated * 2);
                OwStatsBucket *a = reallocarray(s->sorted, n, sizeof(OwStatsBucket));
                if (!a)
                        return -ENOMEM;
                s->sorted = a;
                a = reallocarray(s->print_order, n, sizeof(OwStatsBucket));
                if (!a)
                        return -ENOMEM;
                s->print_order = a;
                s->sorted_allocated = n;
        }

        _cleanup_free_ PrintKey *keys = s->n_buckets > 0 ? calloc(s->n_buckets, sizeof(PrintKey)) : NULL;
        if (s->n_buckets > 0 && !keys)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_buckets; i++) {
                OwStatsBucket b = { .index = s->buckets[i].index, .count = s->buckets[i].count };
                s->sorted[i] = b;
                keys[i] = (PrintKey){
                        .chain = byte_sum(b.index) % (unsigned) s->btable_size,
                        .order = (uint32_t) i,
                        .b = b,
                };
        }
        if (s->n_buckets > 0) {
                qsort(s->sorted, s->n_buckets, sizeof(OwStatsBucket), cmp_index);
                qsort(keys, s->n_buckets, sizeof(PrintKey), cmp_print);
        }
        for (size_t i = 0; i < s->n_buckets; i++)
                s->print_order[i] = keys[i].b;

        r->buckets = s->sorted;
        r->buckets_print_order = s->print_order;
        r->n_buckets = s->n_buckets;

        /* rn[j] = arrivals deeper than j: all non-zero up to the deepest. */
        if (s->max_depth > s->rn_allocated) {
                uint32_t *p = reallocarray(s->rn, s->max_depth, sizeof(uint32_t));
                if (!p)
                        return -ENOMEM;
                s->rn = p;
                s->rn_allocated = s->max_depth;
        }
        uint32_t sum = 0;
        for (uint64_t d = s->max_depth; d > 0; d--) {
                sum += s->depths[d];
                s->rn[d - 1] = sum;
        }
        r->n_reorder = s->max_depth;
        r->reorder = s->rn;
        r->reorder_total = s->reorder_total;

        if (s->n_delays > 0)
                qsort(s->delays, s->n_delays, sizeof(double), cmp_double);
        r->delays = s->keep_delays ? s->delays : NULL;
        r->n_delays = s->keep_delays ? s->n_delays : 0;
        return 0;
}

void ow_stats_keep_delays(OwStats *s, bool keep) {
        s->keep_delays = keep;
}

/* The value of rank k (1-based) among `sent` delays of which the n_delays
 * received ones are sorted and the rest (lost) are infinitely large. */
static bool rank_value(const OwStatsResult *r, uint64_t k, double *ret) {
        if (k < 1 || k > r->n_delays)
                return false;
        *ret = r->delays[k - 1];
        return true;
}

bool ow_stats_exact_percentile(const OwStats *s, double percent, double *ret) {
        const OwStatsResult *r = &s->result;

        if (!s->keep_delays || r->sent == 0 || !(percent >= 0.0 && percent <= 100.0))
                return false;
        /* Nearest rank, ceil(percent / 100 x sent), at least 1, in integers
         * (percent to a millionth) so that 99.9 % of 1000 is rank 999, not
         * the 1000 a binary 99.9 would round to. */
        uint64_t micro = (uint64_t) (percent * 1e6 + 0.5);
        uint64_t k = (micro * r->sent + UINT64_C(100000000) - 1) / UINT64_C(100000000);
        return rank_value(r, MAX(k, (uint64_t) 1), ret);
}

bool ow_stats_exact_median(const OwStats *s, double *ret) {
        const OwStatsResult *r = &s->result;
        double a, b;

        if (!s->keep_delays || r->sent == 0)
                return false;
        if (r->sent % 2)
                return rank_value(r, r->sent / 2 + 1, ret);
        if (!rank_value(r, r->sent / 2, &a) || !rank_value(r, r->sent / 2 + 1, &b))
                return false;
        /* Halves first: no overflow for any two finite doubles. */
        *ret = a / 2 + b / 2;
        return true;
}

bool ow_stats_exact_jitter(const OwStats *s, double *ret) {
        double p95, p50;

        if (!ow_stats_exact_percentile(s, 95.0, &p95) || !ow_stats_exact_percentile(s, 50.0, &p50))
                return false;
        *ret = p95 - p50;
        return true;
}

const OwStatsResult *ow_stats_result(const OwStats *s) {
        return s ? &s->result : NULL;
}

bool ow_stats_percentile(const OwStats *s, double alpha, double *ret) {
        const OwStatsResult *r = &s->result;
        double sum = 0;
        size_t i;

        for (i = 0; i < r->n_buckets && (r->buckets[i].count + sum) < alpha * r->sent; i++)
                sum += r->buckets[i].count;
        if (i >= r->n_buckets)
                return false;
        *ret = r->buckets[i].index * r->bucket_width;
        return true;
}

bool ow_stats_jitter(const OwStats *s, double *ret) {
        double p95, p50;

        if (!ow_stats_percentile(s, 0.95, &p95) || !ow_stats_percentile(s, 0.5, &p50))
                return false;
        *ret = p95 - p50;
        return true;
}
