/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The worker channel (src/shared/worker-ipc.h) read as owampd and owping
 * read what a session worker sends (READY, RECORDS, DONE, ERROR), and as
 * the worker reads its controller (SETUP, STOP): the worker runs under a
 * dynamic UID and its controller must survive anything it writes.
 *
 * Input: [0] bits 0-2: the piece size the stream arrives in; then the
 * stream. Messages are taken off the buffer as the programs do and each
 * payload goes through the parser of its type (and, to reach them all,
 * through every other parser too). Besides memory safety: whatever parses
 * encodes again into a message that peeks whole and parses to the same
 * values, and a bad length is refused, never waited for.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "worker-ipc.h"

static void check(bool ok) {
        if (!ok)
                abort();
}

/* Peek the one message out holds. */
static void peek_one(const WorkerBuf *out, uint32_t type, const uint8_t **ret_payload, size_t *ret_len) {
        uint32_t t;

        check(worker_msg_peek(out, &t, ret_payload, ret_len) == 1);
        check(t == type && out->len == 8 + *ret_len);
}

static void try_setup(const uint8_t *p, size_t len) {
        WorkerSetup s, s2;
        WorkerBuf out = {};
        const uint8_t *q;
        size_t n;

        if (worker_setup_parse(p, len, &s) < 0)
                return;
        check(s.n_slots >= 1 && s.n_slots <= OW_MAX_SLOTS && s.slots);
        check(worker_setup_append(&out, &s) == 0);
        peek_one(&out, WORKER_MSG_SETUP, &q, &n);
        check(n == len);
        check(worker_setup_parse(q, n, &s2) == 0);
        check(s2.role == s.role && s2.mode == s.mode && s2.flags == s.flags &&
              s2.clock_offset_nsec == s.clock_offset_nsec && s2.enddelay_nsec == s.enddelay_nsec &&
              memcmp(s2.test_aes_key, s.test_aes_key, sizeof(s.test_aes_key)) == 0 &&
              memcmp(s2.test_hmac_key, s.test_hmac_key, sizeof(s.test_hmac_key)) == 0 &&
              memcmp(&s2.sid, &s.sid, sizeof(s.sid)) == 0 && s2.n_packets == s.n_packets &&
              s2.padding_length == s.padding_length && s2.start_time == s.start_time &&
              s2.timeout == s.timeout && s2.type_p == s.type_p && s2.n_slots == s.n_slots &&
              memcmp(s2.slots, s.slots, s.n_slots * sizeof(OwSlot)) == 0 &&
              sockaddr_port(&s2.peer) == sockaddr_port(&s.peer));
        free(s2.slots);
        free(s.slots);
        worker_buf_done(&out);
}

static void try_stop(const uint8_t *p, size_t len) {
        WorkerStop s, s2;
        WorkerBuf out = {};
        const uint8_t *q;
        size_t n;

        if (worker_stop_parse(p, len, &s) < 0)
                return;
        check(worker_stop_append(&out, &s) == 0);
        peek_one(&out, WORKER_MSG_STOP, &q, &n);
        check(worker_stop_parse(q, n, &s2) == 0);
        check(s2.stop_time == s.stop_time && s2.has_next_seqno == s.has_next_seqno &&
              s2.next_seqno == s.next_seqno);
        worker_buf_done(&out);
}

static void try_done(const uint8_t *p, size_t len) {
        WorkerDone d, d2;
        WorkerBuf out = {};
        const uint8_t *q;
        size_t n;

        if (worker_done_parse(p, len, &d) < 0)
                return;
        check(d.n_skips <= OW_MAX_SKIP_RANGES && (d.n_skips == 0 || d.skips));
        check(worker_done_append(&out, &d) == 0);
        peek_one(&out, WORKER_MSG_DONE, &q, &n);
        /* Canonical: the same octets. */
        check(n == len && memcmp(q, p, len) == 0);
        check(worker_done_parse(q, n, &d2) == 0);
        check(d2.next_seqno == d.next_seqno && d2.n_skips == d.n_skips &&
              memcmp(&d2.counters, &d.counters, sizeof(d.counters)) == 0 &&
              (d.n_skips == 0 || memcmp(d2.skips, d.skips, d.n_skips * sizeof(OwSkipRange)) == 0));
        free(d2.skips);
        free(d.skips);
        worker_buf_done(&out);
}

static void try_records(const uint8_t *p, size_t len) {
        int n = worker_records_count(p, len);

        if (n < 0)
                return;
        check((size_t) n * OW_RECORD_SIZE == len);
        for (int i = 0; i < n; i++) {
                OwRecord r;
                (void) ow_record_decode(p + (size_t) i * OW_RECORD_SIZE, &r);
        }
}

static void try_error(const uint8_t *p, size_t len) {
        char text[64];
        int err;

        if (worker_error_parse(p, len, &err, text, sizeof(text)) < 0)
                return;
        check(err <= 0 && strlen(text) < sizeof(text));
        for (const char *c = text; *c; c++)
                check(*c >= 0x20 && *c < 0x7f);
}

/* Piece sizes the stream is cut into. */
static const size_t pieces[8] = { SIZE_MAX, 1, 3, 8, 13, 64, 512, 4096 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        WorkerBuf in = {};
        size_t piece;

        if (size < 1)
                return 0;
        piece = pieces[data[0] & 7];
        data++;
        size--;

        while (size > 0) {
                size_t n = MIN(piece, size);
                const uint8_t *p;
                uint32_t type;
                size_t len;
                int r;

                if (worker_buf_reserve(&in, n) < 0)
                        break;
                memcpy(in.data + in.len, data, n);
                in.len += n;
                data += n;
                size -= n;

                while ((r = worker_msg_peek(&in, &type, &p, &len)) == 1) {
                        check(8 + len <= in.len && len + 4 <= WORKER_MSG_MAX);
                        switch (type) {
                        case WORKER_MSG_SETUP:
                                try_setup(p, len);
                                break;
                        case WORKER_MSG_STOP:
                                try_stop(p, len);
                                break;
                        case WORKER_MSG_DONE:
                                try_done(p, len);
                                break;
                        case WORKER_MSG_RECORDS:
                                try_records(p, len);
                                break;
                        case WORKER_MSG_ERROR:
                                try_error(p, len);
                                break;
                        default:
                                /* Unknown types are the callers' errors; the
                                 * parsers still must not trip on them. */
                                try_setup(p, len);
                                try_stop(p, len);
                                try_done(p, len);
                                try_records(p, len);
                                try_error(p, len);
                                break;
                        }
                        worker_buf_consume(&in, 8 + len);
                }
                if (r < 0) {
                        /* A length out of bounds is refused for good. */
                        check(r == -EBADMSG);
                        check(worker_msg_peek(&in, &type, &p, &len) == r);
                        break;
                }
        }
        worker_buf_done(&in);
        return 0;
}
