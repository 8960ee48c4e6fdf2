/* SPDX-License-Identifier: Apache-2.0 */
#include <nettle/aes.h>

#include "ow-error.h"
#include "ow-schedule.h"
#include "testutil.h"

#define SEC(s) ((OwTimestamp) (s) << 32)

static OwSid sid_from_hex(const char *hex) {
        OwSid sid;
        test_unhex(hex, sid.bytes, sizeof(sid.bytes));
        return sid;
}

/* splitmix64: a deterministic source of test operands. */
static uint64_t next_operand(uint64_t *state) {
        uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

START_TEST(test_fixed_mul) {
        /* 1.0 is the identity; 0.5 * 0.5 = 0.25; ln 2 * 3 exactly. */
        ck_assert_uint_eq(ow_fixed_mul(SEC(1), 0x123456789abcdefULL), 0x123456789abcdefULL);
        ck_assert_uint_eq(ow_fixed_mul(0x80000000u, 0x80000000u), 0x40000000u);
        ck_assert_uint_eq(ow_fixed_mul(SEC(3), 0xB17217F8u), 3ULL * 0xB17217F8u);
        /* The fraction below 2^-32 is cut, not rounded. */
        ck_assert_uint_eq(ow_fixed_mul(1, 0xffffffffu), 0);
        ck_assert_uint_eq(ow_fixed_mul(3, 0x80000000u), 1);

        /* Products of 2^96 and more lose their top bits: the result is bits
         * 32..95 of the 128-bit product. */
        ck_assert_uint_eq(ow_fixed_mul(1ULL << 40, 1ULL << 55), 1ULL << 63);
        ck_assert_uint_eq(ow_fixed_mul(1ULL << 40, 1ULL << 56), 0);
        ck_assert_uint_eq(ow_fixed_mul(UINT64_MAX, UINT64_MAX), 0xfffffffe00000000ULL);
        ck_assert_uint_eq(ow_fixed_mul(UINT64_MAX, SEC(1)), UINT64_MAX);
        ck_assert_uint_eq(ow_fixed_mul(UINT64_MAX, SEC(2)), UINT64_MAX - 1);

#ifdef __SIZEOF_INT128__
        /* Against the compiler's 128-bit arithmetic. */
        uint64_t state = 1;
        for (unsigned i = 0; i < 100000; i++) {
                uint64_t a = next_operand(&state), b = next_operand(&state);
                /* Also small operands, where schedules live. */
                if (i & 1)
                        a >>= 24 + (i % 16);
                unsigned __int128 p = (unsigned __int128) a * b;
                ck_assert_uint_eq(ow_fixed_mul(a, b), (uint64_t) (p >> 32));
        }
#endif
}
END_TEST

START_TEST(test_uniform_stream) {
        /* PROTOCOL.md 8.2: words 0..3 of AES(SID, counter 0), then of
         * AES(SID, counter 4), ... each word big-endian. */
        OwSid sid = sid_from_hex("2872979303ab47eeac028dab3829dab2");
        struct aes128_ctx aes;
        uint8_t counter[16] = {}, block[16];
        OwExpRng r;

        aes128_set_encrypt_key(&aes, sid.bytes);
        ow_exp_rng_init(&r, &sid);
        for (unsigned c = 0; c < 64; c++) {
                if (c % 4 == 0) {
                        counter[15] = (uint8_t) c;
                        aes128_encrypt(&aes, 16, block, counter);
                }
                uint32_t want = ow_get_be32(block + 4 * (c % 4));
                ck_assert_uint_eq(ow_exp_rng_uniform(&r), want);
        }

        /* The counter is 128 bits wide: the carry out of the low 64 bits goes
         * into the high half. */
        ow_exp_rng_init(&r, &sid);
        r.counter_lo = UINT64_MAX - 3;
        for (unsigned i = 0; i < 4; i++)
                (void) ow_exp_rng_uniform(&r);
        ck_assert_uint_eq(r.counter_hi, 1);
        ck_assert_uint_eq(r.counter_lo, 0);
        memset(counter, 0, sizeof(counter));
        counter[7] = 1;
        aes128_encrypt(&aes, 16, block, counter);
        ck_assert_uint_eq(ow_exp_rng_uniform(&r), ow_get_be32(block));
}
END_TEST

/* PROTOCOL.md 8.4: mean-1 variates ("value #n") and their running sums,
 * for four SIDs, up to n = 1,000,000. 0 marks a value the table omits. */
typedef struct ExpVector {
        const char *sid;
        struct {
                unsigned n;
                uint64_t value;
                uint64_t sum;
        } rows[5];
} ExpVector;

static const ExpVector exp_vectors[] = {
        { "2872979303ab47eeac028dab3829dab2",
          { { 1, 0x000000006d27e540, 0x000000006d27e540 },
            { 10, 0x00000004f9d85ec8, 0x0000000d65c2252a },
            { 100, 0x000000021fc133c5, 0x000000659ec0a4ad },
            { 1000, 0x000000024fe2d8a8, 0x000003eb7d735c01 },
            { 1000000, 0x000000020703fd40, 0x000f4479bd317381 } } },
        { "0102030405060708090a0b0c0d0e0f00",
          { { 1, 0x00000000c2127448, 0 }, { 1000000, 0, 0x000f433686466a62 } } },
        { "deadbeefdeadbeefdeadbeefdeadbeef",
          { { 1, 0x000000017ef33648, 0 }, { 1000000, 0, 0x000f416c8884d2d3 } } },
        { "feed0feed1feed2feed3feed4feed5ab",
          { { 1, 0x00000000300d1c98, 0 }, { 1000000, 0, 0x000f3f0b4b416ec8 } } },
};

START_TEST(test_exp_vectors) {
        const ExpVector *e = &exp_vectors[_i];
        OwSid sid = sid_from_hex(e->sid);
        OwExpRng r;
        uint64_t x = 0, sum = 0;
        unsigned n = 0, checked = 0;

        ow_exp_rng_init(&r, &sid);
        for (size_t k = 0; k < ELEMENTSOF(e->rows) && e->rows[k].n > 0; k++) {
                while (n < e->rows[k].n) {
                        x = ow_exp_rng_next(&r);
                        sum += x;
                        n++;
                }
                if (e->rows[k].value) {
                        ck_assert_msg(x == e->rows[k].value, "%s #%u: 0x%016llx, want 0x%016llx", e->sid, n,
                                      (unsigned long long) x, (unsigned long long) e->rows[k].value);
                        checked++;
                }
                if (e->rows[k].sum) {
                        ck_assert_msg(sum == e->rows[k].sum, "%s sum of %u: 0x%016llx, want 0x%016llx",
                                      e->sid, n, (unsigned long long) sum,
                                      (unsigned long long) e->rows[k].sum);
                        checked++;
                }
        }
        ck_assert_uint_ge(checked, 2);
        ck_assert_uint_eq(n, 1000000);
}
END_TEST

START_TEST(test_exp_algorithm_s) {
        /* Algorithm S on chosen first draws (PROTOCOL.md 8.3); the stream
         * supplies the extra draws of steps S3-S4. */
        OwSid sid = sid_from_hex("0102030405060708090a0b0c0d0e0f00");
        const uint64_t ln2 = 0xB17217F8;
        OwExpRng r, ref;

        ow_exp_rng_init(&r, &sid);

        /* S2, immediate acceptance: j * ln 2 + U', no further draw. */
        ck_assert_uint_eq(ow_exp_rng_variate(&r, 0x00000000), 0);
        ck_assert_uint_eq(ow_exp_rng_variate(&r, 0x80000000), ln2);
        ck_assert_uint_eq(ow_exp_rng_variate(&r, 0x2c000000), 0x58000000);
        ck_assert_uint_eq(ow_exp_rng_variate(&r, 0xd62e42fe), 2 * ln2 + 0xB17217F0u);
        /* 31 and 32 leading ones: nothing is left of U. */
        ck_assert_uint_eq(ow_exp_rng_variate(&r, 0xfffffffe), 31 * ln2);
        ck_assert_uint_eq(ow_exp_rng_variate(&r, 0xffffffff), 32 * ln2);
        ck_assert_uint_eq(r.counter_lo, 0);

        /* U' = ln 2 exactly is not accepted: k = 2 draws, min V, (j + V) ln 2. */
        ow_exp_rng_init(&ref, &sid);
        uint32_t a = ow_exp_rng_uniform(&ref), b = ow_exp_rng_uniform(&ref);
        ck_assert_uint_eq(ow_exp_rng_variate(&r, 0x58b90bfc), ow_fixed_mul(a < b ? a : b, ln2));
        ck_assert_uint_eq(r.counter_lo, 2);

        /* j = 0 and U' = 0xfffffffe: the largest k, 11 draws. */
        uint32_t min = UINT32_MAX;
        for (unsigned i = 0; i < 11; i++) {
                uint32_t x = ow_exp_rng_uniform(&ref);
                if (x < min)
                        min = x;
        }
        ck_assert_uint_eq(ow_exp_rng_variate(&r, 0x7fffffff), ow_fixed_mul(min, ln2));
        ck_assert_uint_eq(r.counter_lo, 13);

        /* Each k from 2 to 11 takes exactly k draws: U' = Q[k - 1] (made
         * even, as a shifted U always is) is the smallest value needing k. */
        static const uint32_t q[] = {
                0,          0xB17217F8, 0xEEF193F7, 0xFD271862, 0xFF9D6DD0, 0xFFF4CFD0,
                0xFFFEE819, 0xFFFFE7FF, 0xFFFFFE2B, 0xFFFFFFE0, 0xFFFFFFFE, 0xFFFFFFFF
        };
        for (unsigned k = 2; k <= 11; k++) {
                uint64_t before = r.counter_lo;
                /* j = 0: U = 0 followed by the 31 high bits of U' (even). */
                uint32_t v = (q[k - 1] + 1) & ~1u;
                ck_assert_uint_lt(v, q[k]);
                (void) ow_exp_rng_variate(&r, v >> 1);
                ck_assert_uint_eq(r.counter_lo - before, k);
        }
}
END_TEST

START_TEST(test_exp_mean) {
        /* A sanity check of the distribution: the mean of 10^5 draws is 1
         * within 1% (its standard error is 0.3%), and no variate reaches
         * 33 ln 2, since j <= 32. */
        OwSid sid = sid_from_hex("0102030405060708090a0b0c0d0e0f00");
        OwExpRng r;
        uint64_t sum = 0, max = 0;

        ow_exp_rng_init(&r, &sid);
        for (unsigned i = 0; i < 100000; i++) {
                uint64_t x = ow_exp_rng_next(&r);
                sum += x;
                if (x > max)
                        max = x;
                ck_assert_uint_lt(x, 33ULL * 0xB17217F8u);
        }
        ck_assert_uint_gt(sum / 100000, SEC(1) - SEC(1) / 100);
        ck_assert_uint_lt(sum / 100000, SEC(1) + SEC(1) / 100);
        ck_assert_uint_gt(max, SEC(8));
}
END_TEST

START_TEST(test_schedule_exponential) {
        /* A mean of exactly 1 s makes each gap the variate itself, so the due
         * time of packet n - 1 is start + the vector sum of the first n. */
        OwSid sid = sid_from_hex("2872979303ab47eeac028dab3829dab2");
        OwSlot slot = { .type = OW_SLOT_EXPONENTIAL, .param = SEC(1) };
        OwTimestamp start = 0xeeb4dc4f00000000ULL;
        _cleanup_(ow_schedule_freep) OwSchedule *s = NULL;
        OwTimestamp due = 0, gap;

        ck_assert_int_eq(ow_schedule_new(&sid, &slot, 1, start, &s), 0);
        ck_assert_uint_eq(ow_schedule_start_time(s), start);
        ck_assert_uint_eq(ow_schedule_position(s), 0);

        due = ow_schedule_next(s, &gap);
        ck_assert_uint_eq(gap, 0x000000006d27e540);
        ck_assert_uint_eq(due, start + 0x000000006d27e540);
        for (unsigned i = 1; i < 1000; i++)
                due = ow_schedule_next(s, NULL);
        ck_assert_uint_eq(due, start + 0x000003eb7d735c01);
        ck_assert_uint_eq(ow_schedule_position(s), 1000);

        /* Scaled mean: each gap is (E * mean) >> 32 of the same variates. */
        OwExpRng r;
        ow_exp_rng_init(&r, &sid);
        slot.param = 0x0ccccccc; /* 50 ms, owping -i 0.05 */
        _cleanup_(ow_schedule_freep) OwSchedule *t = NULL;
        ck_assert_int_eq(ow_schedule_new(&sid, &slot, 1, start, &t), 0);
        due = start;
        for (unsigned i = 0; i < 1000; i++) {
                uint64_t e = ow_exp_rng_next(&r);
                due += ow_fixed_mul(e, 0x0ccccccc);
                ck_assert_uint_eq(ow_schedule_next(t, &gap), due);
                ck_assert_uint_eq(gap, ow_fixed_mul(e, 0x0ccccccc));
        }
}
END_TEST

START_TEST(test_schedule_fixed) {
        OwSid sid = sid_from_hex("deadbeefdeadbeefdeadbeefdeadbeef");
        const OwSlot slots[] = {
                { .type = OW_SLOT_FIXED, .param = SEC(1) },
                { .type = OW_SLOT_FIXED, .param = 0x80000000u },
                { .type = OW_SLOT_FIXED, .param = 0 },
        };
        const OwTimestamp want[] = { 0x100000000, 0x180000000, 0x180000000, 0x280000000,
                                     0x300000000, 0x300000000, 0x400000000 };
        _cleanup_(ow_schedule_freep) OwSchedule *s = NULL;
        OwTimestamp gap;

        /* Packet 0 is due one gap after the start, not at it. */
        ck_assert_int_eq(ow_schedule_new(&sid, slots, ELEMENTSOF(slots), 0, &s), 0);
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                ck_assert_uint_eq(ow_schedule_next(s, &gap), want[i]);
                ck_assert_uint_eq(gap, slots[i % ELEMENTSOF(slots)].param);
        }
}
END_TEST

START_TEST(test_schedule_mixed) {
        /* Slots are used cyclically and only exponential ones draw numbers:
         * the variates seen by slots 0 and 2 are consecutive. */
        OwSid sid = sid_from_hex("feed0feed1feed2feed3feed4feed5ab");
        const OwSlot slots[] = {
                { .type = OW_SLOT_EXPONENTIAL, .param = SEC(1) },
                { .type = OW_SLOT_FIXED, .param = SEC(2) },
                { .type = OW_SLOT_EXPONENTIAL, .param = 0x80000000u },
                { .type = OW_SLOT_FIXED, .param = 0x1234 },
        };
        OwTimestamp start = 0xeeb4dc5b12345678ULL;
        _cleanup_(ow_schedule_freep) OwSchedule *s = NULL;
        OwExpRng r;

        ck_assert_int_eq(ow_schedule_new(&sid, slots, ELEMENTSOF(slots), start, &s), 0);
        ow_exp_rng_init(&r, &sid);

        /* The first variate of this SID (PROTOCOL.md 8.4). */
        OwTimestamp gap, due = ow_schedule_next(s, &gap);
        ck_assert_uint_eq(gap, 0x00000000300d1c98);
        ck_assert_uint_eq(due, start + 0x00000000300d1c98);
        (void) ow_exp_rng_next(&r);

        for (unsigned i = 1; i < 4001; i++) {
                const OwSlot *slot = &slots[i % ELEMENTSOF(slots)];
                OwTimestamp want = slot->type == OW_SLOT_FIXED
                                           ? slot->param
                                           : ow_fixed_mul(ow_exp_rng_next(&r), slot->param);
                due += want;
                ck_assert_uint_eq(ow_schedule_next(s, &gap), due);
                ck_assert_uint_eq(gap, want);
        }
}
END_TEST

START_TEST(test_schedule_truncation) {
        /* A mean so large that E * mean needs more than 96 bits: the gap is
         * the truncated product, as in the reference, and due times wrap
         * modulo 2^64 like every timestamp. */
        OwSid sid = sid_from_hex("2872979303ab47eeac028dab3829dab2");
        OwSlot slot = { .type = OW_SLOT_EXPONENTIAL, .param = UINT64_MAX };
        _cleanup_(ow_schedule_freep) OwSchedule *s = NULL;
        OwTimestamp gap;

        ck_assert_int_eq(ow_schedule_new(&sid, &slot, 1, UINT64_MAX - 5, &s), 0);
        /* E_1 = 0x6d27e540 (< 1): no truncation, but the due time wraps. */
        OwTimestamp due = ow_schedule_next(s, &gap);
        ck_assert_uint_eq(gap, ow_fixed_mul(0x000000006d27e540, UINT64_MAX));
        ck_assert_uint_eq(due, UINT64_MAX - 5 + gap);
        ck_assert_uint_lt(due, UINT64_MAX - 5);

        /* Find a variate >= 1 and check its gap lost the bits above 2^96. */
        OwExpRng r;
        ow_exp_rng_init(&r, &sid);
        (void) ow_exp_rng_next(&r);
        bool seen = false;
        for (unsigned i = 1; i < 100; i++) {
                uint64_t e = ow_exp_rng_next(&r);
                OwTimestamp want = ow_fixed_mul(e, UINT64_MAX);
                ck_assert_uint_eq(ow_schedule_next(s, &gap), due + want);
                ck_assert_uint_eq(gap, want);
                due += want;
                if (e >= SEC(1)) {
                        /* e * (2^64 - 1) >> 32 = e * 2^32 - e / 2^32 - 1
                         * (for e not a multiple of 2^32), whose high bits
                         * are gone: what is left is (e << 32) - (e >> 32) - 1. */
                        ck_assert_uint_ne(e & 0xffffffffu, 0);
                        ck_assert_uint_eq(gap, (e << 32) - (e >> 32) - 1);
                        seen = true;
                }
        }
        ck_assert(seen);
}
END_TEST

START_TEST(test_schedule_reset_at) {
        OwSid sid = sid_from_hex("0102030405060708090a0b0c0d0e0f00");
        const OwSlot slots[] = {
                { .type = OW_SLOT_EXPONENTIAL, .param = 0x0ccccccc },
                { .type = OW_SLOT_FIXED, .param = 0x01000000 },
        };
        _cleanup_(ow_schedule_freep) OwSchedule *s = NULL;
        OwTimestamp times[300];

        ck_assert_int_eq(ow_schedule_new(&sid, slots, ELEMENTSOF(slots), SEC(100), &s), 0);
        for (unsigned i = 0; i < ELEMENTSOF(times); i++)
                times[i] = ow_schedule_next(s, NULL);

        /* Restartable: the same times again after a reset. */
        ow_schedule_reset(s);
        ck_assert_uint_eq(ow_schedule_position(s), 0);
        for (unsigned i = 0; i < ELEMENTSOF(times); i++)
                ck_assert_uint_eq(ow_schedule_next(s, NULL), times[i]);

        /* Random access, forwards and backwards, then continuing with next(). */
        static const unsigned order[] = { 5, 5, 6, 299, 0, 17, 16, 150, 149, 149, 298 };
        for (size_t k = 0; k < ELEMENTSOF(order); k++) {
                ck_assert_uint_eq(ow_schedule_at(s, order[k]), times[order[k]]);
                ck_assert_uint_eq(ow_schedule_position(s), order[k] + 1);
        }
        ck_assert_uint_eq(ow_schedule_next(s, NULL), times[299]);
}
END_TEST

START_TEST(test_schedule_errors) {
        OwSid sid = {};
        OwSlot slots[2] = { { .type = OW_SLOT_FIXED, .param = 1 }, { .type = OW_SLOT_FIXED, .param = 1 } };
        OwSchedule *s = NULL;

        ck_assert_int_eq(ow_schedule_new(&sid, slots, 0, 0, &s), -OW_ERR_COUNT);
        ck_assert_int_eq(ow_schedule_new(&sid, slots, OW_MAX_SLOTS + 1, 0, &s), -OW_ERR_COUNT);
        slots[1].type = (OwSlotType) 2;
        ck_assert_int_eq(ow_schedule_new(&sid, slots, 2, 0, &s), -OW_ERR_SLOT_TYPE);
        ck_assert_ptr_null(s); /* untouched on failure */

        /* The largest allowed slot table. */
        _cleanup_free_ OwSlot *many = calloc(OW_MAX_SLOTS, sizeof(OwSlot));
        ck_assert_ptr_nonnull(many);
        for (uint32_t i = 0; i < OW_MAX_SLOTS; i++)
                many[i] = (OwSlot){ .type = OW_SLOT_FIXED, .param = i };
        ck_assert_int_eq(ow_schedule_new(&sid, many, OW_MAX_SLOTS, 0, &s), 0);
        ck_assert_uint_eq(ow_schedule_at(s, OW_MAX_SLOTS), (uint64_t) OW_MAX_SLOTS * (OW_MAX_SLOTS - 1) / 2);
        s = ow_schedule_free(s);
        ck_assert_ptr_null(s);
        ck_assert_ptr_null(ow_schedule_free(NULL));
}
END_TEST

int main(void) {
        Suite *s = suite_create("schedule");

        TCase *tc = tcase_create("random");
        tcase_add_test(tc, test_fixed_mul);
        tcase_add_test(tc, test_uniform_stream);
        tcase_add_loop_test(tc, test_exp_vectors, 0, ELEMENTSOF(exp_vectors));
        tcase_add_test(tc, test_exp_algorithm_s);
        tcase_add_test(tc, test_exp_mean);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);

        tc = tcase_create("schedule");
        tcase_add_test(tc, test_schedule_exponential);
        tcase_add_test(tc, test_schedule_fixed);
        tcase_add_test(tc, test_schedule_mixed);
        tcase_add_test(tc, test_schedule_truncation);
        tcase_add_test(tc, test_schedule_reset_at);
        tcase_add_test(tc, test_schedule_errors);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
