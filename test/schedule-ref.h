/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The reference's send schedule (PROTOCOL.md 8), for the tests only: the
 * statistics need every packet's scheduled send time, and exponential slots
 * need the SID-keyed generator. Written from PROTOCOL.md 8 and checked
 * against its test vectors. To be replaced by the core's schedule code once
 * that lands (src/libowamp/ow-schedule.c is still a stub).
 */

#include <nettle/aes.h>
#include <stdint.h>

#include "ow-types.h"

typedef struct TestSchedule {
        struct aes128_ctx aes;
        uint8_t counter[16];
        uint8_t block[16];
        const OwSlot *slots;
        uint32_t n_slots;
} TestSchedule;

void test_schedule_init(TestSchedule *t, const OwSid *sid, const OwSlot *slots, uint32_t n_slots);
void test_schedule_reset(TestSchedule *t);

/* Next mean-1 exponential variate, 32.32 fixed point (PROTOCOL.md 8.3). */
uint64_t test_schedule_exp(TestSchedule *t);

/* An OwGapFn: userdata is a TestSchedule; k == 0 restarts it. */
OwTimestamp test_schedule_gap(void *userdata, uint32_t k);
