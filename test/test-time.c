/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <sys/timex.h>

#include "ow-error.h"
#include "ow-time.h"
#include "testutil.h"

START_TEST(test_frac_nsec_roundtrip) {
        /* Reference conversion: frac = (ns << 32) / 1e9, ns = (frac * 1e9) >> 32. */
        ck_assert_uint_eq(ow_frac_from_nsec(0), 0);
        ck_assert_uint_eq(ow_frac_from_nsec(500000000), 0x80000000u);
        ck_assert_uint_eq(ow_frac_from_nsec(999999999), 0xfffffffbu);
        ck_assert_uint_eq(ow_frac_to_nsec(0x80000000u), 500000000);
        ck_assert_uint_eq(ow_frac_to_nsec(0xffffffffu), 999999999);
        /* Round trip never drifts by more than one nanosecond, downwards. */
        for (uint32_t ns = 0; ns < 1000000000u; ns += 999983) {
                uint32_t back = ow_frac_to_nsec(ow_frac_from_nsec(ns));
                ck_assert_msg(back == ns || back + 1 == ns, "ns %u -> %u", ns, back);
        }
}
END_TEST

START_TEST(test_timespec) {
        struct timespec ts = { .tv_sec = 1700000000, .tv_nsec = 250000000 };
        OwTimestamp t = ow_timestamp_from_timespec(&ts);
        ck_assert_uint_eq(t >> 32, 1700000000ull + 2208988800ull);
        ck_assert_uint_eq((uint32_t) t, 0x40000000u);

        struct timespec back;
        ow_timestamp_to_timespec(t, &back);
        ck_assert_int_eq(back.tv_sec, ts.tv_sec);
        ck_assert_int_eq(back.tv_nsec, ts.tv_nsec);
        ck_assert_int_eq(ow_timestamp_unix_sec(t), 1700000000);

        uint8_t buf[8];
        ow_timestamp_put(buf, t);
        ck_assert_uint_eq(buf[0], (uint8_t) ((t >> 56) & 0xff));
        ck_assert_uint_eq(ow_timestamp_get(buf), t);
}
END_TEST

START_TEST(test_shifted) {
        /* A clock 2.75 s behind CLOCK_REALTIME, and 0.5 s ahead. */
        struct timespec ts = { .tv_sec = 1700000000, .tv_nsec = 250000000 }, back;
        OwTimestamp t = ow_timestamp_from_timespec_shifted(&ts, -2750000000LL);
        ck_assert_int_eq(ow_timestamp_unix_sec(t), 1699999997);
        ck_assert_uint_eq((uint32_t) t, 0x80000000u);
        ow_timestamp_to_timespec_shifted(t, -2750000000LL, &back);
        ck_assert_int_eq(back.tv_sec, ts.tv_sec);
        ck_assert_int_eq(back.tv_nsec, ts.tv_nsec);

        t = ow_timestamp_from_timespec_shifted(&ts, 900000000);
        ck_assert_int_eq(ow_timestamp_unix_sec(t), 1700000001);
        ck_assert_uint_eq(ow_frac_to_nsec((uint32_t) t), 149999999);
        ow_timestamp_to_timespec_shifted(t, 900000000, &back);
        ck_assert_int_eq(back.tv_sec, ts.tv_sec);
        ck_assert_int_le(labs(back.tv_nsec - ts.tv_nsec), 1);

        ck_assert_uint_eq(ow_timestamp_from_timespec_shifted(&ts, 0), ow_timestamp_from_timespec(&ts));
}
END_TEST

START_TEST(test_durations) {
        ck_assert_uint_eq(ow_duration_from_nsec(2000000000ull), 2ull << 32);
        ck_assert_uint_eq(ow_duration_to_nsec(2ull << 32), 2000000000ull);
        /* -i 0.05 in the captures: a slot parameter of 0x0ccccccc (50 ms). */
        ck_assert_uint_eq(ow_duration_from_nsec(50000000ull), 0x0ccccccc);
        ck_assert_uint_eq(ow_duration_from_usec(1), 4294);
        ck_assert_uint_eq(ow_duration_to_usec(ow_duration_from_usec(123456789)), 123456788);
        ck_assert_int_eq(ow_timestamp_diff_nsec(3ull << 32, 1ull << 32), 2000000000);
        ck_assert_int_eq(ow_timestamp_diff_nsec(1ull << 32, 3ull << 32), -2000000000);
        ck_assert_uint_eq(ow_duration_from_nsec(UINT64_MAX), UINT64_MAX);
}
END_TEST

START_TEST(test_errest_fields) {
        OwErrEst e;
        ck_assert_int_eq(ow_errest_make(true, 9, 135, &e), 0);
        ck_assert_uint_eq(e, 0x8987);
        ck_assert(ow_errest_sync(e));
        ck_assert_uint_eq(ow_errest_scale(e), 9);
        ck_assert_uint_eq(ow_errest_multiplier(e), 135);
        ck_assert_int_eq(ow_errest_make(false, 0, 0, &e), -OW_ERR_ERREST);
        ck_assert_int_eq(ow_errest_make(false, 64, 1, &e), -OW_ERR_ERREST);
        ck_assert_int_eq(ow_errest_check(0x8100), -OW_ERR_ERREST);
        ck_assert_int_eq(ow_errest_check(OW_ERREST_UNSYNC), 0);
        /* The Z bit is ignored on input. */
        ck_assert(!ow_errest_sync(OW_ERREST_Z_BIT | 1));
}
END_TEST

START_TEST(test_errest_from_usec) {
        /* PROTOCOL.md 9: 16 us -> Scale 9, Multiplier 135 (~16.1 us). */
        OwErrEst e = ow_errest_from_usec(true, 16);
        ck_assert_uint_eq(ow_errest_scale(e), 9);
        ck_assert_uint_eq(ow_errest_multiplier(e), 135);
        ck_assert(ow_errest_sync(e));
        double s = ow_errest_to_seconds(e);
        ck_assert(s > 16.0e-6 && s < 16.2e-6);

        /* Synchronised with a zero error counts as 1 us; never multiplier 0. */
        e = ow_errest_from_usec(true, 0);
        ck_assert_uint_ne(ow_errest_multiplier(e), 0);
        ck_assert(ow_errest_to_seconds(e) >= 1.0e-6);

        /* Unsynchronised: what the reference sends (captures: 0x0001). */
        ck_assert_uint_eq(ow_errest_from_usec(false, 1234), OW_ERREST_UNSYNC);

        /* Every error from 1 us to 2^32 us (about 71 minutes, where it saturates) encodes to a bound at least as
         * large as the input, within a factor of 2, multiplier non-zero. */
        for (uint64_t us = 1; us < (1ull << 32); us = us * 3 + 1) {
                e = ow_errest_from_usec(true, us);
                ck_assert_uint_ne(ow_errest_multiplier(e), 0);
                double v = ow_errest_to_seconds(e) * 1e6;
                ck_assert_msg(v >= (double) us * 0.999 && v <= (double) us * 2.01, "us=%llu v=%f",
                              (unsigned long long) us, v);
        }
}
END_TEST

START_TEST(test_errest_from_timex) {
        struct timex tx = { .status = 0, .esterror = 16 };
        OwErrEst e = ow_errest_from_timex(TIME_OK, &tx);
        ck_assert(ow_errest_sync(e));
        ck_assert_uint_eq(ow_errest_multiplier(e), 135);

        tx.status = STA_UNSYNC;
        ck_assert_uint_eq(ow_errest_from_timex(TIME_OK, &tx), OW_ERREST_UNSYNC);

        /* TIME_ERROR alone (the reference ignores it) also means unsynchronised. */
        tx.status = 0;
        ck_assert_uint_eq(ow_errest_from_timex(TIME_ERROR, &tx), OW_ERREST_UNSYNC);
        ck_assert_uint_eq(ow_errest_from_timex(-1, &tx), OW_ERREST_UNSYNC);
}
END_TEST

int main(void) {
        Suite *s = suite_create("time");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_frac_nsec_roundtrip);
        tcase_add_test(tc, test_timespec);
        tcase_add_test(tc, test_durations);
        tcase_add_test(tc, test_shifted);
        tcase_add_test(tc, test_errest_fields);
        tcase_add_test(tc, test_errest_from_usec);
        tcase_add_test(tc, test_errest_from_timex);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
