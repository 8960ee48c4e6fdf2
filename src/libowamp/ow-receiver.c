/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ow-error.h"
#include "ow-receiver.h"
#include "ow-schedule.h"

/*
 * Window of sequence numbers [base, gen): base is the oldest undecided one,
 * gen the first whose scheduled time is not yet computed. For each one the
 * ring keeps the scheduled time and whether it was received. unseen is a
 * cursor in [base, gen]: no packet in [base, unseen) is missing, so the
 * next loss can only be unseen's (ow_receiver_next_loss_deadline()); it
 * only moves forward, so finding it costs O(1) per packet.
 */
struct OwReceiver {
        OwSchedule *schedule;
        uint32_t n_packets;
        OwTimestamp timeout;

        uint64_t base;
        uint64_t gen;
        uint64_t unseen;

        OwTimestamp *sched; /* ring, capacity cap (power of two) */
        uint64_t *seen;     /* ring bitmap, same capacity */
        size_t cap;

        OwTimestamp last_scheduled; /* 0: not computed yet */
        OwSid sid;
        OwSlot *slots;
        uint32_t n_slots;
        OwTimestamp start_time;
};

int ow_receiver_new(const OwSessionRequest *req, OwReceiver **ret) {
        _cleanup_(ow_receiver_freep) OwReceiver *r = NULL;
        int k;

        if (req->n_packets == 0)
                return -OW_ERR_COUNT;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        k = ow_schedule_new(&req->sid, req->slots, req->n_slots, req->start_time, &r->schedule);
        if (k < 0)
                return k;
        r->n_packets = req->n_packets;
        r->timeout = req->timeout;
        r->sid = req->sid;
        r->n_slots = req->n_slots;
        r->start_time = req->start_time;
        r->slots = calloc(req->n_slots, sizeof(OwSlot));
        if (!r->slots)
                return -ENOMEM;
        memcpy(r->slots, req->slots, req->n_slots * sizeof(OwSlot));
        r->cap = 1024;
        r->sched = calloc(r->cap, sizeof(*r->sched));
        r->seen = calloc(r->cap / 64, sizeof(*r->seen));
        if (!r->sched || !r->seen)
                return -ENOMEM;
        *ret = TAKE_PTR(r);
        return 0;
}

OwReceiver *ow_receiver_free(OwReceiver *r) {
        if (!r)
                return NULL;
        ow_schedule_free(r->schedule);
        free(r->slots);
        free(r->sched);
        free(r->seen);
        free(r);
        return NULL;
}

static inline size_t slot_of(const OwReceiver *r, uint64_t seq) {
        return (size_t) (seq & (r->cap - 1));
}

static inline bool seen_get(const OwReceiver *r, uint64_t seq) {
        size_t i = slot_of(r, seq);
        return r->seen[i / 64] & (UINT64_C(1) << (i % 64));
}

static inline void seen_set(OwReceiver *r, uint64_t seq, bool v) {
        size_t i = slot_of(r, seq);
        if (v)
                r->seen[i / 64] |= UINT64_C(1) << (i % 64);
        else
                r->seen[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

/* Double the ring, keeping [base, gen) at their new positions. */
static int grow(OwReceiver *r) {
        size_t ncap = r->cap * 2;
        if (ncap > OW_RECEIVER_MAX_WINDOW)
                return -ENOBUFS;
        OwTimestamp *ns = calloc(ncap, sizeof(*ns));
        uint64_t *nb = calloc(ncap / 64, sizeof(*nb));
        if (!ns || !nb) {
                free(ns);
                free(nb);
                return -ENOMEM;
        }
        for (uint64_t q = r->base; q < r->gen; q++) {
                size_t i = (size_t) (q & (ncap - 1));
                ns[i] = r->sched[slot_of(r, q)];
                if (seen_get(r, q))
                        nb[i / 64] |= UINT64_C(1) << (i % 64);
        }
        free(r->sched);
        free(r->seen);
        r->sched = ns;
        r->seen = nb;
        r->cap = ncap;
        return 0;
}

/* Compute the scheduled time of packet gen and append it to the window. */
static int generate_one(OwReceiver *r) {
        if (r->gen >= r->n_packets)
                return -ERANGE;
        if (r->gen - r->base >= r->cap) {
                int k = grow(r);
                if (k < 0)
                        return k;
        }
        OwTimestamp t = ow_schedule_next(r->schedule, NULL);
        r->sched[slot_of(r, r->gen)] = t;
        seen_set(r, r->gen, false);
        r->gen++;
        return 0;
}

static inline OwTimestamp abs_diff(OwTimestamp a, OwTimestamp b) {
        return a > b ? a - b : b - a;
}

int ow_receiver_packet(OwReceiver *r, uint32_t seq, OwTimestamp send_time, OwErrEst send_err,
                       OwTimestamp recv_time, OwErrEst recv_err, uint8_t ttl, OwRecord *ret_record) {
        if (seq >= r->n_packets)
                return OW_RECV_DROP_SEQ;
        if (seq < r->base)
                return OW_RECV_DROP_LATE;
        if (abs_diff(recv_time, send_time) > r->timeout)
                return OW_RECV_DROP_TIME;

        /* Compute schedule entries up to seq, but never for packets due
         * more than Timeout after this arrival: such a packet is dropped
         * below anyway, and a hostile sequence number must not make us
         * walk the schedule far ahead. */
        while (r->gen <= seq) {
                if (r->gen > r->base && r->sched[slot_of(r, r->gen - 1)] > recv_time + r->timeout)
                        return OW_RECV_DROP_EARLY;
                int k = generate_one(r);
                if (k < 0)
                        return OW_RECV_DROP_EARLY;
        }

        OwTimestamp sched = r->sched[slot_of(r, seq)];
        if (abs_diff(send_time, sched) > r->timeout)
                return OW_RECV_DROP_TIME;

        bool dup = seen_get(r, seq);
        seen_set(r, seq, true);
        *ret_record = (OwRecord) {
                .seq = seq,
                .send_err = send_err,
                .recv_err = recv_err,
                .send_time = send_time,
                .recv_time = recv_time,
                .ttl = ttl,
        };
        return dup ? OW_RECV_DUPLICATE : OW_RECV_ACCEPTED;
}

/* Loss deadline of seq (base <= seq <= gen; gen's scheduled time is
 * computed here), UINT64_MAX past the session or the window's limit. */
static OwTimestamp deadline_of(OwReceiver *r, uint64_t seq) {
        if (seq >= r->n_packets)
                return UINT64_MAX;
        if (seq == r->gen && generate_one(r) < 0)
                return UINT64_MAX;
        OwTimestamp d = r->sched[slot_of(r, seq)] + r->timeout;
        return d < r->timeout ? UINT64_MAX : d; /* saturate on overflow */
}

OwTimestamp ow_receiver_next_deadline(OwReceiver *r) {
        return deadline_of(r, r->base);
}

OwTimestamp ow_receiver_next_loss_deadline(OwReceiver *r) {
        if (r->unseen < r->base)
                r->unseen = r->base;
        while (r->unseen < r->gen && seen_get(r, r->unseen))
                r->unseen++;
        return deadline_of(r, r->unseen);
}

size_t ow_receiver_expire(OwReceiver *r, OwTimestamp now, OwErrEst recv_err, OwRecord *out, size_t max) {
        size_t n = 0;

        while (n < max && r->base < r->n_packets) {
                OwTimestamp deadline = ow_receiver_next_deadline(r);
                if (deadline > now)
                        break;
                if (!seen_get(r, r->base))
                        out[n++] = (OwRecord) {
                                .seq = (uint32_t) r->base,
                                .send_err = OW_ERREST_UNSYNC,
                                .recv_err = recv_err,
                                .send_time = r->sched[slot_of(r, r->base)],
                                .recv_time = 0,
                                .ttl = OW_TTL_UNKNOWN,
                        };
                r->base++;
        }
        return n;
}

bool ow_receiver_done(const OwReceiver *r) {
        return r->base >= r->n_packets;
}

OwTimestamp ow_receiver_last_scheduled(OwReceiver *r) {
        if (r->last_scheduled == 0) {
                /* A schedule of its own, so the window's generator keeps
                 * its place. */
                _cleanup_(ow_schedule_freep) OwSchedule *tmp = NULL;
                if (ow_schedule_new(&r->sid, r->slots, r->n_slots, r->start_time, &tmp) < 0)
                        return UINT64_MAX;
                r->last_scheduled = ow_schedule_at(tmp, r->n_packets - 1);
        }
        return r->last_scheduled;
}

OwCleanVerdict ow_record_clean_verdict(const OwRecord *rec, uint32_t next_seqno, OwTimestamp stop_time,
                                       OwTimestamp timeout) {
        bool lost = ow_record_lost(rec);
        OwTimestamp threshold = stop_time > timeout ? stop_time - timeout : 0;

        if (rec->seq >= next_seqno && !lost)
                return OW_CLEAN_INVALID;
        if (rec->seq < next_seqno && rec->send_time <= threshold)
                return OW_CLEAN_KEEP;
        return OW_CLEAN_DROP;
}
