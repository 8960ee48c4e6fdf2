/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The receiver's bookkeeping (ow-receiver.h) fed what a hostile sender and
 * a hostile client control: the session's schedule, count, start time and
 * Timeout (from the Request-Session), then the decoded test packets (in
 * open mode every field is the sender's) and the times they arrive at,
 * mixed with expiries, as owamp-session drives it.
 *
 * Input: a header, then events of EVENT_SIZE octets.
 *   [0..3]   Number of Packets (1 + value % MAX_PACKETS)
 *   [4..11]  Timeout
 *   [12..19] start time
 *   [20]     number of slots (1 + value % MAX_SLOTS), then per slot a type
 *            octet (even: exponential, odd: fixed) and a u64 parameter
 *   event:   [0] bit 0: packet or expiry; [1..4] sequence number;
 *            [5..12] send time, [13..20] receive time or "now", both
 *            relative to the start time (wrapping), [21] TTL
 *
 * Besides memory safety it checks the contract: every sequence number is
 * decided once (recorded first, or declared lost), a duplicate only of a
 * recorded one, records carry what was given, nothing is lost before its
 * deadline, and once every deadline has passed the session is done with
 * all Number of Packets decided.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ow-receiver.h"
#include "ow-wire.h"

/* Bounds that keep an input fast; the code paths are the same beyond. */
#define MAX_PACKETS 1280u /* past the first ring of 1,024 */
#define MAX_SLOTS 4u
#define SLOT_SIZE 9
#define HEADER_SIZE 21
#define EVENT_SIZE 22
#define EXPIRE_BATCH 16

static void check(bool ok) {
        if (!ok)
                abort();
}

/* 0: undecided, 1: recorded, 2: lost */
static uint8_t decided[MAX_PACKETS];

static void expire(OwReceiver *rx, OwTimestamp now, uint32_t n_packets, OwTimestamp timeout) {
        OwRecord lost[EXPIRE_BATCH];
        size_t n;

        do {
                n = ow_receiver_expire(rx, now, 1, lost, EXPIRE_BATCH);
                check(n <= EXPIRE_BATCH);
                for (size_t i = 0; i < n; i++) {
                        check(lost[i].seq < n_packets);
                        check(decided[lost[i].seq] == 0);
                        check(lost[i].recv_time == 0);
                        /* Not before its deadline (which saturates). */
                        check(lost[i].send_time + timeout < timeout || lost[i].send_time + timeout <= now);
                        decided[lost[i].seq] = 2;
                }
        } while (n == EXPIRE_BATCH);
        check(ow_receiver_next_deadline(rx) > now || ow_receiver_done(rx));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OwSlot slots[MAX_SLOTS];
        OwSessionRequest req = { .ipvn = 4, .conf_receiver = true };
        OwReceiver *rx = NULL;

        if (size < HEADER_SIZE)
                return 0;
        req.n_packets = 1 + ow_get_be32(data) % MAX_PACKETS;
        req.timeout = ow_get_be64(data + 4);
        req.start_time = ow_get_be64(data + 12);
        req.n_slots = 1 + data[20] % MAX_SLOTS;
        data += HEADER_SIZE;
        size -= HEADER_SIZE;
        if (size < req.n_slots * SLOT_SIZE)
                return 0;
        for (uint32_t i = 0; i < req.n_slots; i++, data += SLOT_SIZE, size -= SLOT_SIZE)
                slots[i] = (OwSlot){ .type = data[0] & 1 ? OW_SLOT_FIXED : OW_SLOT_EXPONENTIAL,
                                     .param = ow_get_be64(data + 1) };
        req.slots = slots;

        if (ow_receiver_new(&req, &rx) < 0)
                return 0;
        memset(decided, 0, sizeof(decided));

        for (; size >= EVENT_SIZE; data += EVENT_SIZE, size -= EVENT_SIZE) {
                uint32_t seq = ow_get_be32(data + 1);
                OwTimestamp send = req.start_time + ow_get_be64(data + 5);
                OwTimestamp at = req.start_time + ow_get_be64(data + 13);
                OwRecord rec;
                int r;

                if (!(data[0] & 1)) {
                        expire(rx, at, req.n_packets, req.timeout);
                        continue;
                }
                r = ow_receiver_packet(rx, seq, send, 2, at, 3, data[21], &rec);
                switch (r) {
                case OW_RECV_ACCEPTED:
                case OW_RECV_DUPLICATE:
                        check(seq < req.n_packets);
                        check(decided[seq] == (r == OW_RECV_ACCEPTED ? 0 : 1));
                        check(rec.seq == seq && rec.send_time == send && rec.recv_time == at &&
                              rec.send_err == 2 && rec.recv_err == 3 && rec.ttl == data[21]);
                        decided[seq] = 1;
                        break;
                case OW_RECV_DROP_SEQ:
                        check(seq >= req.n_packets);
                        break;
                case OW_RECV_DROP_LATE:
                case OW_RECV_DROP_TIME:
                case OW_RECV_DROP_EARLY:
                        break;
                default:
                        abort();
                }
        }

        /* The end of time: every deadline has passed. */
        (void) ow_receiver_last_scheduled(rx);
        expire(rx, UINT64_MAX, req.n_packets, req.timeout);
        check(ow_receiver_done(rx));
        for (uint32_t i = 0; i < req.n_packets; i++)
                check(decided[i] != 0);
        ow_receiver_free(rx);
        return 0;
}
