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

START_TEST(test_loss_deadline) {
        _cleanup_(ow_receiver_freep) OwReceiver *r = make(10, SEC(1));
        OwRecord rec, lost[16];

        /* Nothing received: the first packet's deadline. */
        ck_assert_uint_eq(ow_receiver_next_loss_deadline(r), due(0) + SEC(1));
        for (uint32_t i = 0; i < 10; i++)
                if (i != 3 && i != 7)
                        ck_assert_int_eq(ow_receiver_packet(r, i, due(i), 1, due(i) + MS(1), 1, 255, &rec),
                                         OW_RECV_ACCEPTED);
        /* The window's oldest is 0, received: the next loss can only be 3's. */
        ck_assert_uint_eq(ow_receiver_next_deadline(r), due(0) + SEC(1));
        ck_assert_uint_eq(ow_receiver_next_loss_deadline(r), due(3) + SEC(1));
        ck_assert_uint_eq(ow_receiver_expire(r, due(3) + SEC(1), 1, lost, 16), 1);
        ck_assert_uint_eq(lost[0].seq, 3);
        ck_assert_uint_eq(ow_receiver_next_loss_deadline(r), due(7) + SEC(1));
        /* 7 arrives in time: nothing can be lost any more. */
        ck_assert_int_eq(ow_receiver_packet(r, 7, due(7), 1, due(7) + MS(900), 1, 255, &rec), OW_RECV_ACCEPTED);
        ck_assert_uint_eq(ow_receiver_next_loss_deadline(r), UINT64_MAX);
        ck_assert(!ow_receiver_done(r));
        ck_assert_uint_eq(ow_receiver_expire(r, due(9) + SEC(1), 1, lost, 16), 0);
        ck_assert(ow_receiver_done(r));
        ck_assert_uint_eq(ow_receiver_next_loss_deadline(r), UINT64_MAX);
}
END_TEST

/* One arrival of a trace: a packet (seq, send time) and its receive time. */
typedef struct Arrival {
        uint32_t seq;
        OwTimestamp send_time, recv_time;
} Arrival;

typedef struct Outcome {
        OwRecord rec[512];
        int verdict[512]; /* the packet's return value, or 2 for a lost record */
        OwTimestamp at[512]; /* when it was decided */
        size_t n;
} Outcome;

static void outcome_add(Outcome *o, const OwRecord *rec, int verdict, OwTimestamp at) {
        ck_assert_uint_lt(o->n, ELEMENTSOF(o->rec));
        o->rec[o->n] = rec ? *rec : (OwRecord) {};
        o->at[o->n] = at;
        o->verdict[o->n++] = verdict;
}

static void expire_into(OwReceiver *r, OwTimestamp now, Outcome *o) {
        OwRecord lost[4];
        size_t n;
        do {
                n = ow_receiver_expire(r, now, 1, lost, ELEMENTSOF(lost));
                for (size_t i = 0; i < n; i++)
                        outcome_add(o, &lost[i], 2, now);
        } while (n == ELEMENTSOF(lost));
}

static void arrive(OwReceiver *r, const Arrival *a, Outcome *o) {
        OwRecord rec;
        expire_into(r, a->recv_time, o);
        int v = ow_receiver_packet(r, a->seq, a->send_time, 1, a->recv_time, 1, 64, &rec);
        outcome_add(o, v >= 0 ? &rec : NULL, v, a->recv_time);
}

/* Loss, duplicates, reordering, packets past their deadline, a late copy:
 * 200 packets 10 ms apart, Timeout 100 ms, delays from a fixed LCG. */
static size_t make_trace(Arrival *t, size_t max) {
        uint64_t x = 12345;
        size_t n = 0;
        for (uint32_t i = 0; i < 200; i++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                unsigned k = (unsigned) (x >> 33) % 100;
                if (k < 10)
                        continue; /* lost */
                OwTimestamp delay = k < 20 ? MS(95 + k) : MS(k % 30); /* some past the deadline */
                ck_assert_uint_lt(n + 2, max);
                t[n++] = (Arrival) { i, due(i), due(i) + delay };
                if (k % 17 == 0) /* a duplicate, sometimes after the deadline */
                        t[n++] = (Arrival) { i, due(i), due(i) + delay + MS(k % 5 == 0 ? 150 : 3) };
        }
        /* In order of arrival, as a socket hands them out. */
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && t[j - 1].recv_time > t[j].recv_time; j--) {
                        Arrival tmp = t[j];
                        t[j] = t[j - 1];
                        t[j - 1] = tmp;
                }
        return n;
}

static OwReceiver *make_timeout(OwTimestamp timeout) {
        return make(200, timeout);
}

/* A receiver that wakes for every deadline of the window (as the worker did)
 * and one that lets packets wait and wakes only for the next possible loss
 * or every `hold` (as it does now) decide the same and record the same, in
 * the same order, each at the same time. */
START_TEST(test_wake_on_loss_only) {
        static Arrival trace[512];
        static Outcome every, lazy;
        size_t n = make_trace(trace, ELEMENTSOF(trace));
        OwTimestamp end = due(199) + MS(500);

        _cleanup_(ow_receiver_freep) OwReceiver *a = make_timeout(MS(100));
        for (size_t i = 0; i < n; i++) {
                for (OwTimestamp d; (d = ow_receiver_next_deadline(a)) < trace[i].recv_time;)
                        expire_into(a, d, &every);
                arrive(a, &trace[i], &every);
        }
        expire_into(a, end, &every);

        _cleanup_(ow_receiver_freep) OwReceiver *b = make_timeout(MS(100));
        OwTimestamp hold = MS(37);
        size_t next = 0;
        for (OwTimestamp w = T0; w < end;) {
                while (next < n && trace[next].recv_time <= w)
                        arrive(b, &trace[next++], &lazy);
                expire_into(b, w, &lazy);
                OwTimestamp d = ow_receiver_next_loss_deadline(b);
                w = MIN(d, w + hold);
        }
        while (next < n)
                arrive(b, &trace[next++], &lazy);
        expire_into(b, end, &lazy);

        ck_assert(ow_receiver_done(a));
        ck_assert(ow_receiver_done(b));
        ck_assert_uint_eq(every.n, lazy.n);
        size_t n_lost = 0, n_dup = 0, n_late = 0;
        for (size_t i = 0; i < every.n; i++) {
                ck_assert_int_eq(every.verdict[i], lazy.verdict[i]);
                /* A loss is declared at its deadline, not a hold later. */
                ck_assert_uint_eq(every.at[i], lazy.at[i]);
                const OwRecord *x = &every.rec[i], *y = &lazy.rec[i];
                ck_assert_uint_eq(x->seq, y->seq);
                ck_assert_uint_eq(x->send_time, y->send_time);
                ck_assert_uint_eq(x->recv_time, y->recv_time);
                ck_assert_uint_eq(x->send_err, y->send_err);
                ck_assert_uint_eq(x->recv_err, y->recv_err);
                ck_assert_uint_eq(x->ttl, y->ttl);
                n_lost += every.verdict[i] == 2;
                n_dup += every.verdict[i] == OW_RECV_DUPLICATE;
                n_late += every.verdict[i] == OW_RECV_DROP_LATE;
        }
        /* The trace exercises every kind of decision. */
        ck_assert_uint_gt(n_lost, 10);
        ck_assert_uint_gt(n_dup, 0);
        ck_assert_uint_gt(n_late, 0);
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
        tcase_add_test(tc, test_loss_deadline);
        tcase_add_test(tc, test_wake_on_loss_only);
        tcase_add_test(tc, test_drops);
        tcase_add_test(tc, test_far_future_seq);
        tcase_add_test(tc, test_window_growth);
        tcase_add_test(tc, test_exponential_schedule);
        tcase_add_test(tc, test_clean_verdicts);
        tcase_add_test(tc, test_bad_request);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
