/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The reflector role of TWAMP-Test (RFC 5357 4.2, TWAMP-PROTOCOL.md 5.5):
 * every valid packet of the session's sender answered at once, to its
 * source. T2 is the kernel's receive timestamp (ring.c); the answer is
 * prepared with everything but T3 (ow_testpkt_prepare_fields()), then T3
 * is taken and written with ow_testpkt_finish() immediately before
 * sendto().
 *
 * As the reference: the reflector's Sequence Number counts the answers
 * sent, from 0; an answer is max(the sender's packet size, the reflected
 * fixed part) octets long, its padding the first octets of the sender's;
 * packets from another address or port are ignored, as are packets that
 * fail their HMAC. Unlike the reference, a datagram shorter than the
 * session's sender packets is not answered (the reference answers it at
 * full size, TWAMP-PROTOCOL.md 5.4: an amplifier). The session ends with
 * STOP, or after REFLECTOR_IDLE_NSEC without a packet (REFWAIT).
 *
 * Reachable once the worker channel has a reflector role (worker-ipc.h
 * WorkerRole; its SETUP parser takes senders and receivers only today);
 * test/test-reflector.c runs it directly.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "controller.h"
#include "ow-error.h"
#include "ring.h"
#include "session.h"
#include "units.h"

/* RFC 5357 4.2: REFWAIT, 900 s by default. */
#define REFLECTOR_IDLE_NSEC (900 * (int64_t) NSEC_PER_SEC)
/* The longest single wait of the loop. */
#define MAX_WAIT_NSEC ((int64_t) NSEC_PER_SEC)

typedef struct Reflector {
        Session *s;
        uint8_t *answer;
        RecvRing *ring;
        size_t sender_hdr, sender_size; /* the session's sender packets */
        size_t answer_hdr, answer_size;
        uint32_t seq;           /* answers sent */
        int64_t last_packet_at; /* monotonic ns */
} Reflector;

static void reflector_done(Reflector *x) {
        free(x->answer);
        recv_ring_free(x->ring);
}

static int reflect(void *userdata, RecvPacket *pkt) {
        Reflector *x = userdata;
        Session *s = x->s;
        OwTestFields f;
        int r;

        OwTimestamp t2 = session_recv_time(s, pkt);
        if (!session_from_peer(s, pkt))
                return 0;
        if (pkt->len < x->sender_size) {
                s->counters.dropped_short++;
                return 0;
        }
        r = ow_testpkt_decode_fields(s->codec, pkt->data, pkt->len, &f);
        if (r < 0) {
                if (r == -OW_ERR_HMAC)
                        s->counters.dropped_auth++;
                else
                        s->counters.dropped_seq++;
                return 0;
        }
        s->counters.received++;
        x->last_packet_at = mono_nsec();

        OwTestFields a = {
                .seq = x->seq,
                .recv_timestamp = t2,
                .sender_seq = f.seq,
                .sender_timestamp = f.timestamp,
                .sender_errest = f.errest,
                .sender_ttl = pkt->ttl,
        };
        r = ow_testpkt_prepare_fields(s->reflected_codec, &a, pkt->data + x->sender_hdr,
                                      x->answer_size - x->answer_hdr, x->answer, x->answer_size);
        if (r < 0)
                return session_fail(s, r, "Cannot build the reflected packet");
        OwErrEst err = current_errest(s);

        /* Nothing but T3 and the send from here on. */
        (void) ow_testpkt_finish(s->reflected_codec, x->answer, a.seq, now_owts(s), err);
        ssize_t sent = sendto(UDP_FD, x->answer, x->answer_size, 0, &s->setup.peer.sa,
                              sockaddr_len(&s->setup.peer));
        if (sent < 0) {
                /* As a sender's: the answer is simply lost. */
                if (errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN && errno != EHOSTUNREACH &&
                    errno != ENETUNREACH && errno != EINTR)
                        return session_fail(s, -errno, "sendto() failed");
                return 0;
        }
        s->counters.sent++;
        x->seq++;
        return 0;
}

static int datagrams(void *userdata) {
        Reflector *x = userdata;
        return MIN(ring_receive(x->s, x->ring, UDP_FD, reflect, x), 0);
}

static int reflector_loop(Reflector *x) {
        Session *s = x->s;
        char l[SOCKADDR_STR_MAX], p[SOCKADDR_STR_MAX];
        int r;

        r = ring_configure_socket(UDP_FD, s->setup.peer.sa.sa_family);
        if (r >= 0)
                r = session_configure_send(s);
        if (r < 0)
                return session_fail(s, r, "Cannot configure the test socket");

        x->sender_hdr = ow_testpkt_codec_layout(s->codec)->size;
        x->sender_size = x->sender_hdr + s->setup.padding_length;
        x->answer_hdr = ow_testpkt_codec_layout(s->reflected_codec)->size;
        x->answer_size = MAX(x->sender_size, x->answer_hdr);
        x->answer = malloc(x->answer_size);
        if (!x->answer)
                return session_fail(s, -ENOMEM, "Out of memory");
        r = recv_ring_new(x->sender_size, &x->ring);
        if (r < 0)
                return session_fail(s, r, "Out of memory");
        session_addresses(s, l, sizeof(l), p, sizeof(p));
        session_log_ready(s, "Reflector ready: answers of %zu octets, %s -> %s", x->answer_size, p, l);

        x->last_packet_at = mono_nsec();
        while (!s->stop_requested) {
                int64_t idle = mono_nsec() - x->last_packet_at;
                if (idle >= REFLECTOR_IDLE_NSEC)
                        break;
                r = controller_wait(s, MIN(REFLECTOR_IDLE_NSEC - idle, MAX_WAIT_NSEC), datagrams, x);
                if (r < 0)
                        return r;
        }

        WorkerDone d = { .next_seqno = x->seq, .counters = s->counters };
        return session_done(s, &d,
                            "Reflector done: %" PRIu64 " received, %" PRIu64 " answered, %" PRIu64
                            " from elsewhere, %" PRIu64 " failing their HMAC",
                            s->counters.received, s->counters.sent, s->counters.dropped_source,
                            s->counters.dropped_auth);
}

static int run_reflector(Session *s) {
        _cleanup_(reflector_done) Reflector x = { .s = s };
        return reflector_loop(&x);
}

const Role role_reflector = {
        .id = WORKER_ROLE_REFLECTOR, .name = "reflector", .reflects = true, .run = run_reflector
};
