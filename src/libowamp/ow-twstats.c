/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "ow-error.h"
#include "ow-map.h"
#include "ow-twstats.h"

/* Below this many answered packets, nothing is forgotten. */
#define FORGET_MIN 1024

struct OwTwStats {
        OwStats *dir[_OW_TW_DIRECTION_MAX];
        OwMap reflected;  /* reflector seq -> sender seq, for duplicates */
        OwMap answered;   /* sender seq -> reflector seq of its first answer (flag: set) */
        size_t forget_at; /* entries of answered that trigger tw_forget_settled() */
        OwTwStatsResult result;
};

int ow_tw_stats_new(const OwSessionRequest *req, const OwSkipRange *skips, size_t n_skips,
                    double bucket_width, OwTwStats **ret) {
        _cleanup_(ow_tw_stats_freep) OwTwStats *s = NULL;
        int r;

        if (!req || !ret)
                return -EINVAL;
        s = calloc(1, sizeof(OwTwStats));
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < _OW_TW_DIRECTION_MAX; i++) {
                r = ow_stats_new(req, skips, n_skips, bucket_width, &s->dir[i]);
                if (r < 0)
                        return r;
        }
        r = ow_map_init(&s->reflected);
        if (r >= 0)
                r = ow_map_init(&s->answered);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

OwTwStats *ow_tw_stats_free(OwTwStats *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < _OW_TW_DIRECTION_MAX; i++)
                ow_stats_free(s->dir[i]);
        ow_map_done(&s->reflected);
        ow_map_done(&s->answered);
        free(s);
        return NULL;
}

void ow_tw_stats_keep_delays(OwTwStats *s, bool keep) {
        assert(s);
        for (size_t i = 0; i < _OW_TW_DIRECTION_MAX; i++)
                ow_stats_keep_delays(s->dir[i], keep);
}

int ow_tw_stats_begin(OwTwStats *s, uint32_t first, uint32_t last) {
        int r;

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < _OW_TW_DIRECTION_MAX; i++) {
                r = ow_stats_begin(s->dir[i], first, last);
                if (r < 0)
                        return r;
        }
        ow_map_clear(&s->reflected);
        ow_map_clear(&s->answered);
        s->forget_at = FORGET_MIN;
        s->result = (OwTwStatsResult){ .min_proc = INFINITY, .max_proc = -INFINITY };
        return 0;
}

int ow_tw_stats_end(OwTwStats *s) {
        int r;

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < _OW_TW_DIRECTION_MAX; i++) {
                r = ow_stats_end(s->dir[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Keep the entries of *m whose key (by_val: value) is at least from. */
static int map_filter(OwMap *m, uint32_t from, bool by_val) {
        OwMap kept;
        int r;

        r = ow_map_init(&kept);
        if (r < 0)
                return r;
        for (size_t i = 0; i <= m->mask; i++) {
                const OwMapSlot *old = &m->slots[i];
                OwMapSlot *slot;

                if (!old->used || (by_val ? old->val : old->key) < from)
                        continue;
                r = ow_map_get(&kept, old->key, &slot);
                if (r < 0) {
                        ow_map_done(&kept);
                        return r;
                }
                slot->val = old->val;
                slot->flag = old->flag;
        }
        ow_map_done(m);
        *m = kept;
        return 0;
}

/* Forget the packets the engines have settled: no record may name them
 * again (ow_stats_add() refuses it with -OW_ERR_SEQ), so, as in ow-stats,
 * memory is bounded by the packets still open, not by the session. (A
 * reflector seq of a forgotten packet reused by a later one then goes
 * unnoticed.) Amortised O(1): the maps are rebuilt when they doubled. */
static int tw_forget_settled(OwTwStats *s) {
        uint32_t from = ow_stats_open_from(s->dir[OW_TW_ROUND_TRIP]);
        int r;

        if (s->answered.n < s->forget_at)
                return 0;
        r = map_filter(&s->answered, from, false);
        if (r >= 0)
                r = map_filter(&s->reflected, from, true);
        if (r < 0)
                return r;
        s->forget_at = MAX((size_t) FORGET_MIN, 2 * s->answered.n);
        return 0;
}

/* Send or reflect duplicate: a second answer to a sender seq is a reflect
 * duplicate when it carries the reflector seq of the first one (the same
 * answer twice), else a send duplicate (the reflector got the packet
 * twice). One reflector seq for two sender seqs cannot be. */
static int tw_duplicates(OwTwStats *s, const OwTwRecord *rec) {
        OwMapSlot *slot;
        int r;

        slot = ow_map_find(&s->reflected, rec->reflector_seq);
        if (slot && slot->val != rec->sender_seq)
                return -OW_ERR_DUPLICATE;
        r = ow_map_get(&s->reflected, rec->reflector_seq, &slot);
        if (r < 0)
                return r;
        slot->val = rec->sender_seq;

        r = ow_map_get(&s->answered, rec->sender_seq, &slot);
        if (r < 0)
                return r;
        if (!slot->flag) {
                slot->flag = 1;
                slot->val = rec->reflector_seq;
        } else if (slot->val == rec->reflector_seq)
                s->result.reflect_dups++;
        else
                s->result.send_dups++;
        return 0;
}

int ow_tw_stats_add(OwTwStats *s, const OwTwRecord *rec, OwTwStatsRecordInfo *info) {
        OwTwStatsRecordInfo dummy;
        OwStatsRecordInfo one;
        int r;

        if (!s || !rec)
                return -EINVAL;
        if (!info)
                info = &dummy;

        if (ow_tw_record_lost(rec)) {
                /* A loss makes the sample unsync, whatever its S bits. */
                OwRecord lost = {
                        .seq = rec->sender_seq,
                        .send_err = rec->sender_err,
                        .recv_err = rec->recv_err & ~OW_ERREST_S_BIT,
                        .send_time = rec->t1,
                        .ttl = OW_TTL_UNKNOWN,
                };
                for (size_t i = 0; i < _OW_TW_DIRECTION_MAX; i++) {
                        r = ow_stats_add(s->dir[i], &lost, &one);
                        if (r < 0)
                                return r;
                }
                *info = (OwTwStatsRecordInfo){ .kind = one.kind };
                return 0;
        }

        double t1 = ow_stats_num64_to_double(rec->t1), t2 = ow_stats_num64_to_double(rec->t2),
               t3 = ow_stats_num64_to_double(rec->t3), t4 = ow_stats_num64_to_double(rec->t4);
        double e1 = ow_stats_errest_seconds(rec->sender_err),
               e23 = ow_stats_errest_seconds(rec->reflector_err),
               e4 = ow_stats_errest_seconds(rec->recv_err);
        OwStatsDelay delays[_OW_TW_DIRECTION_MAX] = {
                [OW_TW_ROUND_TRIP] = { (t4 - t1) - (t3 - t2), e1 + 2 * e23 + e4 },
                [OW_TW_SEND] = { t2 - t1, e1 + e23 },
                [OW_TW_REFLECT] = { t4 - t3, e23 + e4 },
        };
        /* Ordered by the sender's clock; the S bits are set so that only
         * lost records make the sample unsync, as the reference's does. */
        OwRecord one_way = {
                .seq = rec->sender_seq,
                .send_err = rec->sender_err | OW_ERREST_S_BIT,
                .recv_err = rec->recv_err | OW_ERREST_S_BIT,
                .send_time = rec->t1,
                .recv_time = rec->t4,
        };

        for (size_t i = 0; i < _OW_TW_DIRECTION_MAX; i++) {
                one_way.ttl = i == OW_TW_SEND ? rec->sender_ttl : rec->ttl;
                r = ow_stats_add_delay(s->dir[i], &one_way, &delays[i], &one);
                if (r < 0)
                        return r;
        }
        *info = (OwTwStatsRecordInfo){ .kind = one.kind };
        if (one.kind != OW_STATS_RECORD_RECEIVED)
                return 0;

        r = tw_duplicates(s, rec);
        if (r < 0)
                return r;
        r = tw_forget_settled(s);
        if (r < 0)
                return r;

        double proc = t3 - t2;
        s->result.has_proc = true;
        s->result.min_proc = MIN(s->result.min_proc, proc);
        s->result.max_proc = MAX(s->result.max_proc, proc);

        *info = (OwTwStatsRecordInfo){
                .kind = OW_STATS_RECORD_RECEIVED,
                .delay = delays[OW_TW_ROUND_TRIP].delay,
                .send = delays[OW_TW_SEND].delay,
                .reflect = delays[OW_TW_REFLECT].delay,
                .proc = proc,
                .error = delays[OW_TW_ROUND_TRIP].error,
        };
        return 0;
}

const OwStats *ow_tw_stats_direction(const OwTwStats *s, OwTwDirection d) {
        assert(s && d < _OW_TW_DIRECTION_MAX);
        return s->dir[d];
}

const OwTwStatsResult *ow_tw_stats_result(const OwTwStats *s) {
        assert(s);
        return &s->result;
}
