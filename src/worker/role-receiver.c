/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The receiver role: every datagram from the session's sender with its
 * kernel receive timestamp and TTL (ring.c), decoded, decided on by the
 * core's bookkeeping (ow-receiver.h) and recorded; lost packets once their
 * deadline passed; records to the controller in batches.
 */

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "controller.h"
#include "ow-error.h"
#include "ow-receiver.h"
#include "ring.h"
#include "session.h"
#include "units.h"

/* Records go to the controller in batches of RECORD_BATCH, or when the
 * oldest has waited RECORD_FLUSH_NSEC: not one write (and one wake-up of
 * owampd) per packet. Nothing reads them before the session ends. */
#define RECORD_BATCH 256
#define RECORD_FLUSH_NSEC ((int64_t) NSEC_PER_SEC)
/* See receive_hold_nsec(). */
#define RECV_HOLD_MAX_NSEC ((int64_t) NSEC_PER_SEC)

typedef struct Receiver {
        Session *s;
        OwReceiver *rx;
        RecvRing *ring;
        int64_t hold_nsec; /* receive_hold_nsec() */
        OwRecord pending[RECORD_BATCH];
        size_t n_pending;
        int64_t flush_at; /* monotonic ns by which the pending records go out */
} Receiver;

static void receiver_done(Receiver *x) {
        ow_receiver_free(x->rx);
        recv_ring_free(x->ring);
}

static int flush_records(Receiver *x) {
        Session *s = x->s;
        if (x->n_pending == 0)
                return 0;
        int r = worker_records_append(&s->out, x->pending, x->n_pending);
        if (r < 0)
                return session_fail(s, r, "Cannot encode records");
        x->n_pending = 0;
        return session_send_out(s);
}

static int push_record(Receiver *x, const OwRecord *rec) {
        if (x->n_pending == 0)
                x->flush_at = mono_nsec() + RECORD_FLUSH_NSEC;
        x->pending[x->n_pending++] = *rec;
        if (x->n_pending == RECORD_BATCH)
                return flush_records(x);
        return 0;
}

static int expire(Receiver *x, OwTimestamp now) {
        OwRecord lost[RECORD_BATCH];
        size_t n;
        do {
                n = ow_receiver_expire(x->rx, now, current_errest(x->s), lost, ELEMENTSOF(lost));
                for (size_t i = 0; i < n; i++) {
                        x->s->counters.lost++;
                        int r = push_record(x, &lost[i]);
                        if (r < 0)
                                return r;
                }
        } while (n == ELEMENTSOF(lost));
        return 0;
}

/* One datagram: its kernel timestamp and TTL, then the receiver's decision. */
static int handle_packet(void *userdata, RecvPacket *pkt) {
        Receiver *x = userdata;
        Session *s = x->s;
        int r;

        OwTimestamp recv_time = session_recv_time(s, pkt);
        if (!session_from_peer(s, pkt))
                return 0;

        r = expire(x, recv_time);
        if (r < 0)
                return r;

        /* The session's packets carry its padding: a shorter datagram is
         * not one of them (the reference aborts the session on it,
         * PROTOCOL.md 7.5; we count it). A longer one is cut to the slot,
         * which still holds all of a session packet. */
        if (pkt->len < ow_testpkt_header_size(s->setup.mode) + s->setup.padding_length) {
                s->counters.dropped_short++;
                return 0;
        }

        OwTestPacket p;
        r = ow_testpkt_decode(s->codec, pkt->data, pkt->len, s->setup.n_packets, &p);
        if (r < 0) {
                if (r == -OW_ERR_HMAC)
                        s->counters.dropped_auth++;
                else if (r == -OW_ERR_PACKET_SIZE)
                        s->counters.dropped_short++;
                else
                        s->counters.dropped_seq++;
                return 0;
        }

        OwRecord rec;
        r = ow_receiver_packet(x->rx, p.seq, p.timestamp, p.errest, recv_time, current_errest(s), pkt->ttl,
                               &rec);
        switch (r) {
        case OW_RECV_DUPLICATE:
                s->counters.duplicates++;
                _fallthrough_;
        case OW_RECV_ACCEPTED:
                s->counters.received++;
                return push_record(x, &rec);
        case OW_RECV_DROP_SEQ:
                s->counters.dropped_seq++;
                return 0;
        default:
                s->counters.dropped_time++;
                return 0;
        }
}

/* How long packets may wait in the socket between two reads. The kernel
 * timestamps each packet when it arrives (SO_TIMESTAMPNS), so reading later
 * changes no measurement, and every decision is taken on those timestamps
 * (handle_packet() expires up to a packet's own arrival first); but each
 * wake-up costs more CPU than the packets it reads (issue 13). So the
 * receiver sleeps on the controller alone and wakes only for the first
 * possible loss (ow_receiver_next_loss_deadline()), for the records due to
 * go out, or after RECV_BATCH/2 mean gaps (one recvmmsg() of packets, far
 * below any socket buffer), at most RECV_HOLD_MAX_NSEC. */
static int64_t receive_hold_nsec(const Session *s) {
        unsigned __int128 sum = 0;
        for (uint32_t i = 0; i < s->setup.n_slots; i++)
                sum += s->setup.slots[i].param;
        if (s->setup.n_slots == 0)
                return RECV_HOLD_MAX_NSEC;
        unsigned __int128 gap = ow_duration_to_nsec((OwTimestamp) (sum / s->setup.n_slots));
        gap *= RECV_BATCH / 2;
        return gap >= (unsigned __int128) RECV_HOLD_MAX_NSEC ? RECV_HOLD_MAX_NSEC : (int64_t) gap;
}

/* Every datagram waiting in the socket, decided on in arrival order. */
static int drain(Receiver *x) {
        int r = ring_receive(x->s, x->ring, UDP_FD, handle_packet, x);
        return MIN(r, 0);
}

/* Settle the deadlines up to now: first every packet that arrived by then
 * (a packet waiting in the socket must not be declared lost), then the
 * losses. */
static int catch_up(Receiver *x) {
        OwTimestamp now = now_owts(x->s);
        int r = drain(x);
        if (r < 0)
                return r;
        return expire(x, now);
}

static int receiver_loop(Receiver *x) {
        Session *s = x->s;
        OwSessionRequest req = {
                .sid = s->setup.sid,
                .n_slots = s->setup.n_slots,
                .slots = s->setup.slots,
                .n_packets = s->setup.n_packets,
                .start_time = s->setup.start_time,
                .timeout = s->setup.timeout,
        };
        char l[SOCKADDR_STR_MAX], p[SOCKADDR_STR_MAX];
        int r;

        r = ring_configure_socket(UDP_FD, s->setup.peer.sa.sa_family);
        if (r < 0)
                return session_fail(s, r, "Cannot configure the test socket");
        r = ow_receiver_new(&req, &x->rx);
        if (r < 0)
                return session_fail(s, r, "Bad schedule");
        x->hold_nsec = receive_hold_nsec(s);
        r = recv_ring_new(ow_testpkt_header_size(s->setup.mode) + s->setup.padding_length, &x->ring);
        if (r < 0)
                return session_fail(s, r, "Out of memory");
        session_addresses(s, l, sizeof(l), p, sizeof(p));
        session_log_ready(s, "Receiver ready: %u packets, %s -> %s", s->setup.n_packets, p, l);

        /* The session is over Timeout + enddelay after its last scheduled
         * packet, as a sender's is (PROTOCOL.md 5.4), not as soon as every
         * packet is decided: copies may still come, and ending early makes
         * the controller send Stop-Sessions early, so the peer's answer
         * carries a stop time that cleans away its last packets (sent later
         * than stop - Timeout, RFC 4656 3.8). */
        OwTimestamp end = ow_receiver_last_scheduled(x->rx);
        OwTimestamp linger = s->setup.timeout + ow_duration_from_nsec(s->setup.enddelay_nsec);
        end = end > UINT64_MAX - linger ? UINT64_MAX : end + linger;

        while (!s->stop_requested) {
                r = catch_up(x);
                if (r < 0)
                        return r;
                if (x->n_pending > 0 && mono_nsec() >= x->flush_at) {
                        r = flush_records(x);
                        if (r < 0)
                                return r;
                }
                OwTimestamp now = now_owts(s);
                bool decided = ow_receiver_done(x->rx);
                if (decided && now >= end)
                        break;
                OwTimestamp deadline = decided ? end : ow_receiver_next_loss_deadline(x->rx);
                int64_t wait = x->hold_nsec;
                if (deadline <= now)
                        wait = 0;
                else if (deadline - now < OW_TIMESTAMP_FROM_SEC(1))
                        wait = MIN(wait, (int64_t) ow_duration_to_nsec(deadline - now));
                if (x->n_pending > 0)
                        wait = MIN(wait, MAX(x->flush_at - mono_nsec(), INT64_C(0)));
                r = controller_sleep(s, wait);
                if (r < 0)
                        return r;
        }

        if (s->stop_requested) {
                /* Settle what the stop time allows, the packets that came
                 * before the STOP first; the controller cleans the rest
                 * with the sender's Next Seqno (RFC 4656 3.8). */
                r = drain(x);
                if (r < 0)
                        return r;
                r = expire(x, s->stop.stop_time ? s->stop.stop_time : now_owts(s));
                if (r < 0)
                        return r;
        }
        r = flush_records(x);
        if (r < 0)
                return r;

        WorkerDone d = { .counters = s->counters };
        return session_done(s, &d,
                            "Receiver done: %" PRIu64 " received, %" PRIu64 " lost, %" PRIu64 " duplicates",
                            s->counters.received, s->counters.lost, s->counters.duplicates);
}

static int run_receiver(Session *s) {
        _cleanup_(receiver_done) Receiver x = { .s = s };
        return receiver_loop(&x);
}

const Role role_receiver = { .id = WORKER_ROLE_RECEIVER, .name = "receiver", .run = run_receiver };
