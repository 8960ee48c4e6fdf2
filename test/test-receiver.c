/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>

#include "ow-error.h"
#include "ow-receiver.h"
#include "ow-schedule.h"
#include "testutil.h"

#define T0 (UINT64_C(3900000000) << 32)
#define MS(x) ((OwTimestamp) (x) * UINT64_C(4294967296) / 1000)
#define SEC(x) ((OwTimestamp) (x) << 32)

static OwSlot fixed10 = { .type = OW_SLOT_FIXED, .param = MS(10) };

static OwReceiver *make(uint32_t n, OwTimestamp timeout) {
        OwSessionRequest req = {
                .n_slots = 1,
                .slots = &fixed10,
                .n_packets = n,
                .start_time = T0,
                .timeout = timeout,
        };
        OwReceiver *r = NULL;
        ck_assert_int_eq(ow_receiver_new(&req, &r), 0);
        return r;
}

/* Packet i of the fixed schedule is due at T0 + 10 ms * (i + 1). */
static OwTimestamp due(uint32_t i) {
        return T0 + MS(10) * (i + 1);
}

START_TEST(test_in_order) {
        _cleanup_(ow_receiver_freep) OwReceiver *r = make(10, SEC(1));
        OwRecord rec, lost[16];

        for (uint32_t i = 0; i < 10; i++) {
                OwTimestamp at = due(i) + MS(1);
                ck_assert_uint_eq(ow_receiver_expire(r, at, 0x0001, lost, 16), 0);
                ck_assert_int_eq(ow_receiver_packet(r, i, due(i), 0x0001, at, 0x0001, 64, &rec), OW_RECV_ACCEPTED);
                ck_assert_uint_eq(rec.seq, i);
                ck_assert_uint_eq(rec.send_time, due(i));
                ck_assert_uint_eq(rec.recv_time, at);
                ck_assert_uint_eq(rec.ttl, 64);
        }
        ck_assert(!ow_receiver_done(r));
        ck_assert_uint_eq(ow_receiver_next_deadline(r), due(0) + SEC(1));
        /* All deadlines pass: nothing is lost, and the session is decided. */
        ck_assert_uint_eq(ow_receiver_expire(r, due(9) + SEC(1), 0x0001, lost, 16), 0);
        ck_assert(ow_receiver_done(r));
        ck_assert_uint_eq(ow_receiver_next_deadline(r), UINT64_MAX);
        ck_assert_uint_eq(ow_receiver_last_scheduled(r), due(9));
}
END_TEST

START_TEST(test_loss_and_duplicates) {
        _cleanup_(ow_receiver_freep) OwReceiver *r = make(10, SEC(1));
        OwRecord rec, lost[16];

        for (uint32_t i = 0; i < 10; i++) {
                if (i == 3)
                        continue;
                ck_assert_int_eq(ow_receiver_packet(r, i, due(i), 1, due(i) + MS(1), 1, 255, &rec),
                                 OW_RECV_ACCEPTED);
        }
        /* A copy of 5 is recorded again as a duplicate. */
        ck_assert_int_eq(ow_receiver_packet(r, 5, due(5), 1, due(5) + MS(2), 1, 255, &rec), OW_RECV_DUPLICATE);

        /* Not yet: 3's deadline is due(3) + 1 s. */
        ck_assert_uint_eq(ow_receiver_expire(r, due(3) + SEC(1) - 1, 0x8101, lost, 16), 0);
        ck_assert_uint_eq(ow_receiver_expire(r, due(3) + SEC(1), 0x8101, lost, 16), 1);
        ck_assert_uint_eq(lost[0].seq, 3);
        ck_assert_uint_eq(lost[0].send_time, due(3));
        ck_assert_uint_eq(lost[0].send_err, OW_ERREST_UNSYNC);
        ck_assert_uint_eq(lost[0].recv_err, 0x8101);
        ck_assert_uint_eq(lost[0].recv_time, 0);
        ck_assert_uint_eq(lost[0].ttl, 255);
        ck_assert(ow_record_lost(&lost[0]));

        /* 3 arriving after its deadline is dropped, not recorded. */
        ck_assert_int_eq(ow_receiver_packet(r, 3, due(3), 1, due(3) + SEC(1) + 1, 1, 255, &rec),
                         OW_RECV_DROP_LATE);

        /* max bounds the output; the rest comes with the next call. */
        _cleanup_(ow_receiver_freep) OwReceiver *r2 = make(10, SEC(1));
        ck_assert_uint_eq(ow_receiver_expire(r2, due(9) + SEC(2), 1, lost, 4), 4);
        ck_assert_uint_eq(lost[3].seq, 3);
        ck_assert_uint_eq(ow_receiver_expire(r2, due(9) + SEC(2), 1, lost, 16), 6);
        ck_assert_uint_eq(lost[5].seq, 9);
        ck_assert(ow_receiver_done(r2));
}
END_TEST

START_TEST(test_drops) {
        _cleanup_(ow_receiver_freep) OwReceiver *r = make(10, SEC(1));
        OwRecord rec;

        /* Beyond Number of Packets. */
        ck_assert_int_eq(ow_receiver_packet(r, 10, due(9), 1, due(9), 1, 255, &rec), OW_RECV_DROP_SEQ);
        ck_assert_int_eq(ow_receiver_packet(r, UINT32_MAX, due(9), 1, due(9), 1, 255, &rec), OW_RECV_DROP_SEQ);
        /* Send and receive times more than Timeout apart, either way. */
        ck_assert_int_eq(ow_receiver_packet(r, 0, due(0), 1, due(0) + SEC(1) + 1, 1, 255, &rec), OW_RECV_DROP_TIME);
        ck_assert_int_eq(ow_receiver_packet(r, 0, due(0) + SEC(2), 1, due(0), 1, 255, &rec), OW_RECV_DROP_TIME);
        /* Send time more than Timeout from the schedule. */
        ck_assert_int_eq(ow_receiver_packet(r, 1, due(1) + SEC(3), 1, due(1) + SEC(3), 1, 255, &rec),
                         OW_RECV_DROP_TIME);
        /* Exactly Timeout apart is still accepted. */
        ck_assert_int_eq(ow_receiver_packet(r, 2, due(2), 1, due(2) + SEC(1), 1, 255, &rec), OW_RECV_ACCEPTED);
}
END_TEST

START_TEST(test_far_future_seq) {
        /* A million packets 10 ms apart: seq 999999 is due ~10000 s after
         * start. Claiming it at start must not walk (or allocate) the whole
         * schedule: the receiver stops once the schedule passes arrival +
         * Timeout. */
        _cleanup_(ow_receiver_freep) OwReceiver *r = make(1000000, SEC(1));
        OwRecord rec;
        ck_assert_int_eq(ow_receiver_packet(r, 999999, due(0), 1, due(0), 1, 255, &rec), OW_RECV_DROP_EARLY);
        /* Packets inside the window still work afterwards. */
        ck_assert_int_eq(ow_receiver_packet(r, 50, due(50), 1, due(50), 1, 255, &rec), OW_RECV_ACCEPTED);
        ck_assert_int_eq(ow_receiver_packet(r, 0, due(0), 1, due(50), 1, 255, &rec), OW_RECV_ACCEPTED);
}
END_TEST

START_TEST(test_window_growth) {
        /* 5000 packets inside one Timeout: the window grows past its
         * initial 1024 entries and keeps every flag. Arrive in reverse. */
        _cleanup_(ow_receiver_freep) OwReceiver *r = make(5000, SEC(100));
        OwRecord rec, lost[64];
        OwTimestamp at = due(4999);

        for (uint32_t i = 5000; i-- > 0;)
                if (i % 7 != 0)
                        ck_assert_int_eq(ow_receiver_packet(r, i, due(i), 1, at, 1, 255, &rec), OW_RECV_ACCEPTED);
        for (uint32_t i = 0; i < 5000; i += 3)
                if (i % 7 != 0)
                        ck_assert_int_eq(ow_receiver_packet(r, i, due(i), 1, at, 1, 255, &rec), OW_RECV_DUPLICATE);

        uint32_t n_lost = 0;
        size_t n;
        while ((n = ow_receiver_expire(r, due(4999) + SEC(100), 1, lost, 64)) > 0)
                for (size_t k = 0; k < n; k++) {
                        ck_assert_uint_eq(lost[k].seq % 7, 0);
                        ck_assert_uint_eq(lost[k].send_time, due(lost[k].seq));
                        n_lost++;
                }
        ck_assert_uint_eq(n_lost, (5000 + 6) / 7);
        ck_assert(ow_receiver_done(r));
}
END_TEST

START_TEST(test_exponential_schedule) {
        /* The receiver's idea of each packet's due time is the schedule's. */
        OwSlot exp50 = { .type = OW_SLOT_EXPONENTIAL, .param = 0x0ccccccc };
        OwSessionRequest req = { .n_slots = 1, .slots = &exp50, .n_packets = 200, .start_time = T0, .timeout = SEC(1) };
        test_unhex("7f000001eeb4dc4ecc65e8928b26d267", req.sid.bytes, 16);
        _cleanup_(ow_receiver_freep) OwReceiver *r = NULL;
        _cleanup_(ow_schedule_freep) OwSchedule *s = NULL;
        ck_assert_int_eq(ow_receiver_new(&req, &r), 0);
        ck_assert_int_eq(ow_schedule_new(&req.sid, &exp50, 1, T0, &s), 0);

        OwRecord lost[256];
        ck_assert_uint_eq(ow_receiver_expire(r, UINT64_MAX - SEC(10), 1, lost, 256), 200);
        for (uint32_t i = 0; i < 200; i++)
                ck_assert_uint_eq(lost[i].send_time, ow_schedule_next(s, NULL));
        ck_assert_uint_eq(ow_receiver_last_scheduled(r), lost[199].send_time);
}
END_TEST

START_TEST(test_clean_verdicts) {
        /* RFC 4656 3.8, PROTOCOL.md 5.5: stop at T0 + 10 s, Timeout 2 s,
         * Next Seqno 5. */
        OwTimestamp stop = T0 + SEC(10), to = SEC(2);
        OwRecord recv = { .seq = 4, .send_time = T0 + SEC(8), .recv_time = T0 + SEC(8) + 1, .send_err = 1, .recv_err = 1 };
        OwRecord lost = { .seq = 4, .send_time = T0 + SEC(1), .recv_time = 0, .send_err = 1, .recv_err = 1 };

        ck_assert_int_eq(ow_record_clean_verdict(&recv, 5, stop, to), OW_CLEAN_KEEP);
        recv.send_time = T0 + SEC(8) + 1; /* sent within Timeout of the stop */
        ck_assert_int_eq(ow_record_clean_verdict(&recv, 5, stop, to), OW_CLEAN_DROP);
        recv.seq = 5; /* received at or past Next Seqno: the session is invalid */
        ck_assert_int_eq(ow_record_clean_verdict(&recv, 5, stop, to), OW_CLEAN_INVALID);
        ck_assert_int_eq(ow_record_clean_verdict(&lost, 5, stop, to), OW_CLEAN_KEEP);
        lost.seq = 5; /* a lost record past Next Seqno is just dropped */
        ck_assert_int_eq(ow_record_clean_verdict(&lost, 5, stop, to), OW_CLEAN_DROP);
}
END_TEST

START_TEST(test_bad_request) {
        OwReceiver *r = NULL;
        OwSessionRequest req = { .n_slots = 1, .slots = &fixed10, .n_packets = 0, .timeout = SEC(1) };
        ck_assert_int_eq(ow_receiver_new(&req, &r), -OW_ERR_COUNT);
        req.n_packets = 1;
        req.n_slots = 0;
        ck_assert_int_eq(ow_receiver_new(&req, &r), -OW_ERR_COUNT);
        ck_assert_ptr_null(r);
}
END_TEST

int main(void) {
        Suite *s = suite_create("receiver");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_in_order);
        tcase_add_test(tc, test_loss_and_duplicates);
        tcase_add_test(tc, test_drops);
        tcase_add_test(tc, test_far_future_seq);
        tcase_add_test(tc, test_window_growth);
        tcase_add_test(tc, test_exponential_schedule);
        tcase_add_test(tc, test_clean_verdicts);
        tcase_add_test(tc, test_bad_request);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
