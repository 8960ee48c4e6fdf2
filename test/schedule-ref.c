/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "schedule-ref.h"

/* PROTOCOL.md 8.3: Q[k] ~ sum_{i=1..k} (ln 2)^i / i!, times 2^32. */
static const uint64_t Q[12] = {
        0,          0xB17217F8, 0xEEF193F7, 0xFD271862, 0xFF9D6DD0, 0xFFF4CFD0,
        0xFFFEE819, 0xFFFFE7FF, 0xFFFFFE2B, 0xFFFFFFE0, 0xFFFFFFFE, 0xFFFFFFFF,
};

void test_schedule_reset(TestSchedule *t) {
        memset(t->counter, 0, sizeof(t->counter));
        memset(t->block, 0, sizeof(t->block));
}

void test_schedule_init(TestSchedule *t, const OwSid *sid, const OwSlot *slots, uint32_t n_slots) {
        aes128_set_encrypt_key(&t->aes, sid->bytes);
        t->slots = slots;
        t->n_slots = n_slots;
        test_schedule_reset(t);
}

/* PROTOCOL.md 8.2: AES-128 in counter mode, four big-endian words a block. */
static uint32_t uniform(TestSchedule *t) {
        unsigned w = t->counter[15] & 3;

        if (w == 0)
                aes128_encrypt(&t->aes, sizeof(t->block), t->block, t->counter);
        for (int i = 15; i >= 0; i--)
                if (++t->counter[i] != 0)
                        break;
        const uint8_t *p = t->block + 4 * w;
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t mul(uint64_t a, uint64_t b) {
        return (uint64_t) (((unsigned __int128) a * b) >> 32);
}

uint64_t test_schedule_exp(TestSchedule *t) {
        uint64_t u = uniform(t);
        uint64_t j = 0;

        while (j < 32 && (u & (UINT64_C(1) << (31 - j))))
                j++;
        u = (u << (j + 1)) & UINT32_MAX;

        if (u < Q[1])
                return j * Q[1] + u;

        unsigned k = 2;
        while (k < 11 && u >= Q[k])
                k++;
        uint64_t v = uniform(t);
        for (unsigned i = 2; i <= k; i++) {
                uint64_t w = uniform(t);
                if (w < v)
                        v = w;
        }
        return mul((j << 32) + v, Q[1]);
}

OwTimestamp test_schedule_gap(void *userdata, uint32_t k) {
        TestSchedule *t = userdata;

        if (k == 0)
                test_schedule_reset(t);
        const OwSlot *s = &t->slots[k % t->n_slots];
        if (s->type == OW_SLOT_FIXED)
                return s->param;
        return mul(test_schedule_exp(t), s->param);
}
