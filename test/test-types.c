/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "macro.h"
#include "ow-error.h"
#include "ow-types.h"
#include "testutil.h"

START_TEST(test_record_codec) {
        /* First record of the reference fixture exp100-to.owp (offset 184). */
        uint8_t rec[OW_RECORD_SIZE];
        OwRecord r;
        test_unhex("00000000 0001 0001 eeb4e15dc338b47c eeb4e15dc344b2b7 ff", rec, sizeof(rec));
        ck_assert_int_eq(ow_record_decode(rec, &r), 0);
        ck_assert_uint_eq(r.seq, 0);
        ck_assert_uint_eq(r.send_err, 1);
        ck_assert_uint_eq(r.recv_err, 1);
        ck_assert_uint_eq(r.send_time, 0xeeb4e15dc338b47cull);
        ck_assert_uint_eq(r.recv_time, 0xeeb4e15dc344b2b7ull);
        ck_assert_uint_eq(r.ttl, 255);
        ck_assert(!ow_record_lost(&r));

        uint8_t out[OW_RECORD_SIZE];
        ow_record_encode(&r, out);
        ck_assert_bytes_eq(out, rec, sizeof(rec));

        /* A multiplier of 0 in either estimate is invalid. */
        rec[5] = 0;
        ck_assert_int_eq(ow_record_decode(rec, &r), -OW_ERR_ERREST);
        rec[5] = 1;
        rec[7] = 0;
        ck_assert_int_eq(ow_record_decode(rec, &r), -OW_ERR_ERREST);
}
END_TEST

START_TEST(test_skip_range_codec) {
        uint8_t b[8];
        OwSkipRange s = { .first = 5, .last = 9 }, d;
        ow_skip_range_encode(&s, b);
        ck_assert_int_eq(ow_skip_range_decode(b, &d), 0);
        ck_assert_uint_eq(d.first, 5);
        ck_assert_uint_eq(d.last, 9);
        s = (OwSkipRange) { .first = 9, .last = 5 };
        ow_skip_range_encode(&s, b);
        ck_assert_int_eq(ow_skip_range_decode(b, &d), -OW_ERR_RANGE);
}
END_TEST

START_TEST(test_modes) {
        uint32_t m;
        ck_assert_int_eq(ow_modes_from_string("AEO", &m), 0);
        ck_assert_uint_eq(m, 7);
        ck_assert_int_eq(ow_modes_from_string("o", &m), 0);
        ck_assert_uint_eq(m, 1);
        ck_assert_int_eq(ow_modes_from_string("AX", &m), -OW_ERR_MODE);
        ck_assert_int_eq(ow_modes_from_string("", &m), -OW_ERR_MODE);
        ck_assert_int_eq(ow_modes_pick(7), OW_MODE_ENCRYPTED);
        ck_assert_int_eq(ow_modes_pick(3), OW_MODE_AUTHENTICATED);
        ck_assert_int_eq(ow_modes_pick(1), OW_MODE_OPEN);
        ck_assert_int_eq(ow_modes_pick(8), 0);
        ck_assert_int_eq(ow_mode_to_char(OW_MODE_AUTHENTICATED), 'A');
}
END_TEST

START_TEST(test_typep) {
        ck_assert(ow_typep_is_dscp(0));
        ck_assert(ow_typep_is_dscp(0x2e000000));
        ck_assert(!ow_typep_is_dscp(0x40000000)); /* PHB-ID form */
        ck_assert(!ow_typep_is_dscp(0x00000001));
        ck_assert_uint_eq(ow_typep_dscp(0x2e000000), 46);
        ck_assert_uint_eq(ow_typep_from_dscp(46), 0x2e000000);
}
END_TEST

START_TEST(test_dscp_names) {
        static const struct {
                const char *s;
                int dscp; /* -1: refused */
        } cases[] = {
                { "0", 0 },      { "46", 46 },    { "0x2e", 46 },  { "63", 63 },   { "64", -1 },
                { "-1", -1 },    { "", -1 },      { "none", 0 },   { "DEFAULT", 0 }, { "df", 0 },
                { "ef", 46 },    { "EF", 46 },    { "cs0", 0 },    { "cs1", 8 },   { "CS7", 56 },
                { "cs8", -1 },   { "af11", 10 },  { "af13", 14 },  { "AF41", 34 }, { "af43", 38 },
                { "af14", -1 },  { "af51", -1 },  { "af1", -1 },   { "ef1", -1 },  { "12abc", -1 },
                { "cs", -1 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t d = 0xff;
                int r = ow_dscp_from_string(cases[i].s, &d);
                if (cases[i].dscp < 0)
                        ck_assert_msg(r == -EINVAL && d == 0xff, "'%s' should be refused", cases[i].s);
                else
                        ck_assert_msg(r == 0 && d == cases[i].dscp, "'%s' -> %d, got %d (%d)", cases[i].s,
                                      cases[i].dscp, d, r);
        }
        ck_assert_int_eq(ow_dscp_from_string(NULL, &(uint8_t) { 0 }), -EINVAL);
}
END_TEST

START_TEST(test_strerror) {
        ck_assert_str_eq(ow_strerror(-OW_ERR_HMAC), "HMAC mismatch");
        ck_assert_str_eq(ow_strerror(OW_ERR_HMAC), "HMAC mismatch");
        ck_assert(ow_is_owerror(-OW_ERR_TRUNCATED));
        ck_assert(!ow_is_owerror(-ENOMEM));
        ck_assert_str_eq(ow_strerror(-ENOMEM), "Cannot allocate memory");
        for (int e = OW_ERR_BASE + 1; e < _OW_ERR_MAX; e++)
                ck_assert_str_ne(ow_strerror(-e), "unknown OWAMP error");
}
END_TEST

int main(void) {
        Suite *s = suite_create("types");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_record_codec);
        tcase_add_test(tc, test_skip_range_codec);
        tcase_add_test(tc, test_modes);
        tcase_add_test(tc, test_typep);
        tcase_add_test(tc, test_strerror);
        tcase_add_test(tc, test_dscp_names);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
