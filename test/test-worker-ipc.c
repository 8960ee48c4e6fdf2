/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ow-error.h"
#include "testutil.h"
#include "worker-ipc.h"

/* Peek exactly one whole message of the given type out of b. */
static void take(WorkerBuf *b, uint32_t want_type, const uint8_t **p, size_t *len) {
        uint32_t type;
        ck_assert_int_eq(worker_msg_peek(b, &type, p, len), 1);
        ck_assert_uint_eq(type, want_type);
        ck_assert_uint_eq(b->len, 8 + *len);
}

START_TEST(test_setup_roundtrip) {
        OwSlot slots[3] = {
                { .type = OW_SLOT_EXPONENTIAL, .param = 0x0ccccccc },
                { .type = OW_SLOT_FIXED, .param = 0x01000000 },
                { .type = OW_SLOT_FIXED, .param = 1 },
        };
        WorkerSetup s = {
                .role = WORKER_ROLE_RECEIVER,
                .mode = OW_MODE_ENCRYPTED,
                .flags = WORKER_FLAG_ZERO_PADDING,
                .clock_offset_nsec = -2500000001LL,
                .enddelay_nsec = 1000000000,
                .n_packets = 123456,
                .padding_length = 100,
                .start_time = 0xeeb4dc4f12345678ULL,
                .timeout = 2ULL << 32,
                .type_p = 0x2e000000,
                .n_slots = 3,
                .slots = slots,
        }, d;
        ck_assert_int_eq(sockaddr_from_owamp(6, (const uint8_t *) "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 9000,
                                             &s.peer), 0);
        for (int i = 0; i < 16; i++)
                s.test_aes_key[i] = (uint8_t) i, s.sid.bytes[i] = (uint8_t) (0xf0 | i);
        for (int i = 0; i < 32; i++)
                s.test_hmac_key[i] = (uint8_t) (0x80 + i);

        WorkerBuf b = {};
        const uint8_t *p;
        size_t len;
        ck_assert_int_eq(worker_setup_append(&b, &s), 0);
        take(&b, WORKER_MSG_SETUP, &p, &len);
        ck_assert_int_eq(worker_setup_parse(p, len, &d), 0);
        ck_assert_int_eq(d.role, s.role);
        ck_assert_int_eq(d.mode, s.mode);
        ck_assert_uint_eq(d.flags, s.flags);
        ck_assert_int_eq(d.clock_offset_nsec, s.clock_offset_nsec);
        ck_assert_uint_eq(d.enddelay_nsec, s.enddelay_nsec);
        ck_assert(sockaddr_equal(&d.peer, &s.peer));
        ck_assert_bytes_eq(d.test_aes_key, s.test_aes_key, 16);
        ck_assert_bytes_eq(d.test_hmac_key, s.test_hmac_key, 32);
        ck_assert_bytes_eq(d.sid.bytes, s.sid.bytes, 16);
        ck_assert_uint_eq(d.n_packets, s.n_packets);
        ck_assert_uint_eq(d.padding_length, s.padding_length);
        ck_assert_uint_eq(d.start_time, s.start_time);
        ck_assert_uint_eq(d.timeout, s.timeout);
        ck_assert_uint_eq(d.type_p, s.type_p);
        ck_assert_uint_eq(d.n_slots, 3);
        for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(d.slots[i].type, slots[i].type);
                ck_assert_uint_eq(d.slots[i].param, slots[i].param);
        }
        free(d.slots);

        /* Every way a SETUP can be wrong is refused. */
        uint8_t *m = malloc(len);
        memcpy(m, p, len);
        ck_assert_int_eq(worker_setup_parse(m, len - 1, &d), -EBADMSG);
        ck_assert_int_eq(worker_setup_parse(m, 10, &d), -EBADMSG);
        m[3] = 9; /* version */
        ck_assert_int_eq(worker_setup_parse(m, len, &d), -EPROTO);
        m[3] = WORKER_IPC_VERSION;
        m[7] = 3; /* role */
        ck_assert_int_eq(worker_setup_parse(m, len, &d), -EBADMSG);
        m[7] = WORKER_ROLE_RECEIVER;
        m[11] = 3; /* mode */
        ck_assert_int_eq(worker_setup_parse(m, len, &d), -EBADMSG);
        m[11] = OW_MODE_ENCRYPTED;
        m[len - 12 + 3] = 2; /* last slot's type */
        ck_assert_int_eq(worker_setup_parse(m, len, &d), -EBADMSG);
        free(m);
        worker_buf_done(&b);
}
END_TEST

START_TEST(test_done_many_skips) {
        /* A sender far behind skips every other packet: a DONE with more
         * skip ranges than fit the old 1 MiB message limit must still go
         * through (it failed the session before). */
        const uint32_t n = 200000;
        OwSkipRange *skips = calloc(n, sizeof(*skips));
        for (uint32_t i = 0; i < n; i++)
                skips[i] = (OwSkipRange) { .first = 2 * i + 1, .last = 2 * i + 1 };
        WorkerDone done = { .next_seqno = 2 * n + 1, .n_skips = n, .skips = skips, .counters = { .sent = n + 1, .late_skipped = n } }, d;
        WorkerBuf b = {};
        const uint8_t *p;
        size_t len;

        ck_assert_int_eq(worker_done_append(&b, &done), 0);
        take(&b, WORKER_MSG_DONE, &p, &len);
        ck_assert_int_eq(worker_done_parse(p, len, &d), 0);
        ck_assert_uint_eq(d.next_seqno, 2 * n + 1);
        ck_assert_uint_eq(d.n_skips, n);
        ck_assert_uint_eq(d.counters.sent, n + 1);
        ck_assert_uint_eq(d.counters.late_skipped, n);
        ck_assert_uint_eq(d.skips[n - 1].first, 2 * n - 1);
        free(d.skips);

        /* An inverted range or a count that does not match is refused. */
        uint8_t *m = malloc(len);
        memcpy(m, p, len);
        ck_assert_int_eq(worker_done_parse(m, len - 8, &d), -EBADMSG);
        size_t off = len - 8; /* the last range: first 4 octets, last 4 */
        m[off + 3] = 0xff;
        m[off + 2] = 0xff;
        ck_assert_int_eq(worker_done_parse(m, len, &d), -EBADMSG);
        free(m);
        worker_buf_done(&b);
        free(skips);

        /* The protocol's own bound still applies. */
        WorkerDone too_many = { .n_skips = OW_MAX_SKIP_RANGES + 1 };
        ck_assert_int_eq(worker_done_append(&b, &too_many), -EINVAL);
}
END_TEST

START_TEST(test_framing) {
        WorkerBuf b = {};
        uint32_t type;
        const uint8_t *p;
        size_t len;
        OwRecord r[2] = { { .seq = 7, .send_err = 1, .recv_err = 1, .send_time = 5, .recv_time = 6, .ttl = 64 },
                          { .seq = 8, .send_err = 1, .recv_err = 1, .send_time = 9, .recv_time = 0, .ttl = 255 } };

        ck_assert_int_eq(worker_records_append(&b, r, 2), 0);
        ck_assert_int_eq(worker_stop_append(&b, &(WorkerStop) { .stop_time = 42, .has_next_seqno = true, .next_seqno = 9 }), 0);
        ck_assert_int_eq(worker_error_append(&b, -ENOSPC, "disk full\x01"), 0);

        /* Byte by byte, a message is only there once it is whole. */
        WorkerBuf part = {};
        size_t whole = 8 + 2 * OW_RECORD_SIZE;
        for (size_t i = 0; i < whole; i++) {
                ck_assert_int_eq(worker_msg_peek(&part, &type, &p, &len), 0);
                worker_buf_reserve(&part, 1);
                part.data[part.len++] = b.data[i];
        }
        ck_assert_int_eq(worker_msg_peek(&part, &type, &p, &len), 1);
        worker_buf_done(&part);

        ck_assert_int_eq(worker_msg_peek(&b, &type, &p, &len), 1);
        ck_assert_uint_eq(type, WORKER_MSG_RECORDS);
        ck_assert_int_eq(worker_records_count(p, len), 2);
        OwRecord got;
        ck_assert_int_eq(ow_record_decode(p + OW_RECORD_SIZE, &got), 0);
        ck_assert_uint_eq(got.seq, 8);
        ck_assert_int_eq(worker_records_count(p, len - 1), -EBADMSG);
        worker_buf_consume(&b, 8 + len);

        WorkerStop st;
        ck_assert_int_eq(worker_msg_peek(&b, &type, &p, &len), 1);
        ck_assert_int_eq(worker_stop_parse(p, len, &st), 0);
        ck_assert_uint_eq(st.stop_time, 42);
        ck_assert(st.has_next_seqno);
        ck_assert_uint_eq(st.next_seqno, 9);
        ck_assert_int_eq(worker_stop_parse(p, len + 1, &st), -EBADMSG);
        worker_buf_consume(&b, 8 + len);

        int err;
        char text[64];
        ck_assert_int_eq(worker_msg_peek(&b, &type, &p, &len), 1);
        ck_assert_int_eq(worker_error_parse(p, len, &err, text, sizeof(text)), 0);
        ck_assert_int_eq(err, -ENOSPC);
        ck_assert_str_eq(text, "disk full?"); /* control characters never reach a log */
        worker_buf_consume(&b, 8 + len);
        ck_assert_uint_eq(b.len, 0);

        /* A length field out of bounds is an error, not a huge allocation. */
        uint8_t bad[8] = { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4 };
        ck_assert_int_eq(worker_buf_reserve(&b, sizeof(bad)), 0);
        memcpy(b.data, bad, sizeof(bad));
        b.len = sizeof(bad);
        ck_assert_int_eq(worker_msg_peek(&b, &type, &p, &len), -EBADMSG);
        uint8_t tiny[8] = { 0, 0, 0, 2, 0, 0, 0, 4 };
        memcpy(b.data, tiny, sizeof(tiny));
        ck_assert_int_eq(worker_msg_peek(&b, &type, &p, &len), -EBADMSG);
        worker_buf_done(&b);
}
END_TEST

START_TEST(test_setup_init) {
        OwSlot slot = { .type = OW_SLOT_FIXED, .param = 42 };
        OwSessionRequest req = { .n_packets = 7, .padding_length = 3, .start_time = 11, .timeout = 13,
                                 .type_p = 0x2e000000, .n_slots = 1, .slots = &slot };
        OwTestKeys keys;
        SockAddr peer;
        WorkerSetup s;
        memset(&keys, 0xab, sizeof(keys));
        memset(req.sid.bytes, 0x5a, sizeof(req.sid.bytes));
        const uint8_t lo[16] = { 127, 0, 0, 1 };
        ck_assert_int_eq(sockaddr_from_owamp(4, lo, 9000, &peer), 0);

        worker_setup_init(&s, WORKER_ROLE_SENDER, OW_MODE_AUTHENTICATED, &req, &peer, &keys);
        ck_assert_int_eq(s.role, WORKER_ROLE_SENDER);
        ck_assert_int_eq(s.mode, OW_MODE_AUTHENTICATED);
        ck_assert(sockaddr_equal(&s.peer, &peer));
        ck_assert_bytes_eq(s.sid.bytes, req.sid.bytes, 16);
        ck_assert_uint_eq(s.n_packets, 7);
        ck_assert_uint_eq(s.padding_length, 3);
        ck_assert_uint_eq(s.start_time, 11);
        ck_assert_uint_eq(s.timeout, 13);
        ck_assert_uint_eq(s.type_p, 0x2e000000);
        ck_assert_ptr_eq(s.slots, &slot);
        ck_assert_bytes_eq(s.test_aes_key, keys.aes, 16);
        ck_assert_bytes_eq(s.test_hmac_key, keys.hmac, 32);
        ck_assert_int_eq(s.clock_offset_nsec, 0);

        /* Open mode carries no keys, whatever was passed. */
        worker_setup_init(&s, WORKER_ROLE_RECEIVER, OW_MODE_OPEN, &req, &peer, &keys);
        uint8_t zero[32] = {};
        ck_assert_bytes_eq(s.test_aes_key, zero, 16);
        ck_assert_bytes_eq(s.test_hmac_key, zero, 32);
}
END_TEST

int main(void) {
        Suite *s = suite_create("worker-ipc");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_setup_roundtrip);
        tcase_add_test(tc, test_done_many_skips);
        tcase_add_test(tc, test_framing);
        tcase_add_test(tc, test_setup_init);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
