/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ow-error.h"
#include "ow-schedule.h"
#include "ow-wire.h"

/* Q[k] = sum over i = 1..k of (ln 2)^i / i!, times 2^32, rounded: the
 * reference's table for algorithm S (PROTOCOL.md 8.3). Q[0] is unused;
 * Q[11] = 0xffffffff ends the search, since a shifted U always has its
 * lowest bit clear. */
static const uint32_t exp_q[] = {
        0,          0xB17217F8, 0xEEF193F7, 0xFD271862, 0xFF9D6DD0, 0xFFF4CFD0,
        0xFFFEE819, 0xFFFFE7FF, 0xFFFFFE2B, 0xFFFFFFE0, 0xFFFFFFFE, 0xFFFFFFFF,
};
#define EXP_LN2 exp_q[1]

uint64_t ow_fixed_mul(uint64_t a, uint64_t b) {
        /* Schoolbook product in 32-bit halves, no __int128 needed:
         *   a * b = hh * 2^64 + (lh + hl) * 2^32 + ll,
         * so bits 32..95 are hh * 2^32 + lh + hl + (ll >> 32), and unsigned
         * wrap-around keeps exactly the low 64 of them. */
        uint64_t al = (uint32_t) a, ah = a >> 32;
        uint64_t bl = (uint32_t) b, bh = b >> 32;

        return ((ah * bh) << 32) + al * bh + ah * bl + ((al * bl) >> 32);
}

void ow_exp_rng_init(OwExpRng *r, const OwSid *sid) {
        *r = (OwExpRng){};
        aes128_set_encrypt_key(&r->aes, sid->bytes);
}

uint32_t ow_exp_rng_uniform(OwExpRng *r) {
        unsigned word = (unsigned) (r->counter_lo & 3);

        if (word == 0) {
                uint8_t counter[16];

                ow_put_be64(counter, r->counter_hi);
                ow_put_be64(counter + 8, r->counter_lo);
                aes128_encrypt(&r->aes, sizeof(counter), r->block, counter);
        }

        if (++r->counter_lo == 0)
                r->counter_hi++;

        return ow_get_be32(r->block + 4 * word);
}

OwTimestamp ow_exp_rng_next(OwExpRng *r) {
        return ow_exp_rng_variate(r, ow_exp_rng_uniform(r));
}

OwTimestamp ow_exp_rng_variate(OwExpRng *r, uint32_t u) {
        /* S1: j = number of leading ones; drop them and the zero after them. */
        unsigned j = u == UINT32_MAX ? 32 : (unsigned) __builtin_clz(~u);
        uint32_t v = j >= 31 ? 0 : u << (j + 1);

        /* S2: immediate acceptance. */
        if (v < EXP_LN2)
                return (OwTimestamp) j * EXP_LN2 + v;

        /* S3: the least k >= 2 with v < Q[k]; the minimum of k fresh draws. */
        unsigned k = 2;
        while (v >= exp_q[k])
                k++;

        uint32_t min = ow_exp_rng_uniform(r);
        for (unsigned i = 1; i < k; i++) {
                uint32_t x = ow_exp_rng_uniform(r);
                if (x < min)
                        min = x;
        }

        /* S4: (j + min) * ln 2, in 32.32. */
        return ow_fixed_mul(((OwTimestamp) j << 32) + min, EXP_LN2);
}

struct OwSchedule {
        OwExpRng rng;
        OwSid sid;
        OwTimestamp start_time;
        OwTimestamp due;   /* due time of packet position - 1, start_time before packet 0 */
        uint64_t position; /* packets produced since the last reset */
        uint32_t slot;     /* position mod n_slots, kept incrementally */
        uint32_t n_slots;
        OwSlot slots[];
};

int ow_schedule_new(const OwSid *sid, const OwSlot *slots, uint32_t n_slots, OwTimestamp start_time,
                    OwSchedule **ret) {
        if (n_slots == 0 || n_slots > OW_MAX_SLOTS)
                return -OW_ERR_COUNT;
        for (uint32_t i = 0; i < n_slots; i++)
                if (slots[i].type != OW_SLOT_EXPONENTIAL && slots[i].type != OW_SLOT_FIXED)
                        return -OW_ERR_SLOT_TYPE;

        OwSchedule *s = malloc(sizeof(OwSchedule) + n_slots * sizeof(OwSlot));
        if (!s)
                return -ENOMEM;

        s->sid = *sid;
        s->start_time = start_time;
        s->n_slots = n_slots;
        memcpy(s->slots, slots, n_slots * sizeof(OwSlot));
        ow_schedule_reset(s);

        *ret = s;
        return 0;
}

OwSchedule *ow_schedule_free(OwSchedule *s) {
        free(s);
        return NULL;
}

void ow_schedule_reset(OwSchedule *s) {
        /* The generator restarts for every session (and every replay), so
         * both ends derive the identical sequence. */
        ow_exp_rng_init(&s->rng, &s->sid);
        s->due = s->start_time;
        s->position = 0;
        s->slot = 0;
}

OwTimestamp ow_schedule_next(OwSchedule *s, OwTimestamp *ret_gap) {
        const OwSlot *slot = &s->slots[s->slot];
        OwTimestamp gap;

        if (slot->type == OW_SLOT_EXPONENTIAL)
                gap = ow_fixed_mul(ow_exp_rng_next(&s->rng), slot->param);
        else
                gap = slot->param;

        if (++s->slot == s->n_slots)
                s->slot = 0;
        s->position++;
        s->due += gap;

        if (ret_gap)
                *ret_gap = gap;
        return s->due;
}

uint64_t ow_schedule_position(const OwSchedule *s) {
        return s->position;
}

OwTimestamp ow_schedule_at(OwSchedule *s, uint64_t index) {
        if (index < s->position) {
                if (index + 1 == s->position)
                        return s->due;
                ow_schedule_reset(s);
        }
        while (s->position <= index)
                (void) ow_schedule_next(s, NULL);
        return s->due;
}

OwTimestamp ow_schedule_start_time(const OwSchedule *s) {
        return s->start_time;
}
