/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The sender role: the session's schedule (RFC 4656 3.5, from the SID),
 * one packet per slot, prepared before the wait and finished with the send
 * timestamp immediately before send(); packets more than Timeout late are
 * skipped and reported as skip ranges (RFC 4656 3.8).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "controller.h"
#include "ow-schedule.h"
#include "session.h"
#include "units.h"

/* A STOP is noticed at least this often while packets go out back to back
 * (longer waits watch the controller anyway). */
#define CONTROL_CHECK_NSEC (10 * (int64_t) NSEC_PER_MSEC)

typedef struct Sender {
        Session *s;
        OwSkipRange *skips;
        uint32_t n_skips, cap_skips;
        uint64_t prng[2];
} Sender;

static void sender_done(Sender *x) {
        free(x->skips);
}

/* xoroshiro128+: fast pseudo-random padding (RFC 4656 4.1.2 asks only for
 * pseudo-random octets), seeded once from getrandom(). */
static uint64_t prng_next(uint64_t s[2]) {
        uint64_t s0 = s[0], s1 = s[1], r = s0 + s1;
        s1 ^= s0;
        s[0] = ((s0 << 55) | (s0 >> 9)) ^ s1 ^ (s1 << 14);
        s[1] = (s1 << 36) | (s1 >> 28);
        return r;
}

static void fill_padding(Sender *x, uint8_t *p, size_t n) {
        if (x->s->setup.flags & WORKER_FLAG_ZERO_PADDING) {
                memset(p, 0, n);
                return;
        }
        while (n >= sizeof(uint64_t)) {
                uint64_t v = prng_next(x->prng);
                memcpy(p, &v, sizeof(v));
                p += sizeof(v);
                n -= sizeof(v);
        }
        if (n) {
                uint64_t v = prng_next(x->prng);
                memcpy(p, &v, n);
        }
}

static int add_skip(Sender *x, uint32_t seq) {
        if (x->n_skips > 0 && x->skips[x->n_skips - 1].last + 1 == seq) {
                x->skips[x->n_skips - 1].last = seq;
                return 0;
        }
        if (x->n_skips >= OW_MAX_SKIP_RANGES)
                return -ENOBUFS;
        if (x->n_skips == x->cap_skips) {
                uint32_t n = x->cap_skips ? x->cap_skips * 2 : 16;
                OwSkipRange *k = realloc(x->skips, n * sizeof(*k));
                if (!k)
                        return -ENOMEM;
                x->skips = k;
                x->cap_skips = n;
        }
        x->skips[x->n_skips++] = (OwSkipRange){ .first = seq, .last = seq };
        return 0;
}

static int configure_socket(Session *s) {
        int r = session_configure_send(s);
        if (r < 0)
                return r;
        /* connect(): the route is looked up once, not per packet, and the
         * kernel keeps ICMP errors from other hosts away from us. */
        if (connect(UDP_FD, &s->setup.peer.sa, sockaddr_len(&s->setup.peer)) < 0)
                return -errno;
        return 0;
}

static int sender_loop(Sender *x) {
        Session *s = x->s;
        _cleanup_(ow_schedule_freep) OwSchedule *sched = NULL;
        _cleanup_free_ uint8_t *pkt = NULL;
        size_t hdr = ow_testpkt_header_size(s->setup.mode);
        size_t size = hdr + s->setup.padding_length;
        uint32_t seq = 0;
        OwTimestamp due = s->setup.start_time;
        char l[SOCKADDR_STR_MAX], p[SOCKADDR_STR_MAX];
        int r;

        r = configure_socket(s);
        if (r < 0)
                return session_fail(s, r, "Cannot configure the test socket");
        r = ow_schedule_new(&s->setup.sid, s->setup.slots, s->setup.n_slots, s->setup.start_time, &sched);
        if (r < 0)
                return session_fail(s, r, "Bad schedule");
        pkt = malloc(size);
        if (!pkt)
                return session_fail(s, -ENOMEM, "Out of memory");
        pacing_init(s);
        if (getrandom(x->prng, sizeof(x->prng), 0) != sizeof(x->prng))
                x->prng[0] = (uint64_t) mono_nsec(), x->prng[1] = (uint64_t) getpid() | 1;

        session_addresses(s, l, sizeof(l), p, sizeof(p));
        session_log_ready(s, "Sender ready: %u packets of %zu octets, %s -> %s", s->setup.n_packets, size, l,
                          p);

        for (seq = 0; seq < s->setup.n_packets; seq++) {
                due = ow_schedule_next(sched, NULL);
                /* Real-time from the last sleep before a packet to the
                 * sleep before the next (two sched_setscheduler() calls a
                 * packet less), but never across packets already due: a
                 * sender behind schedule sends them back to back and must
                 * not hold the CPU for the whole run (pacing.h). */
                if (s->pacing.realtime && now_owts(s) >= due)
                        pacing_realtime_leave(s);

                /* Not a poll() per packet: at high rates every system
                 * call counts against the rate the sender can keep. */
                int64_t now_ns = realtime_nsec();
                if (now_ns - s->pacing.control_checked_at >= CONTROL_CHECK_NSEC) {
                        s->pacing.control_checked_at = now_ns;
                        r = controller_poll(s);
                        if (r < 0)
                                return r;
                        if (s->stop_requested)
                                break;
                }

                /* More than Timeout behind schedule: skip it (RFC 4656 3.8). */
                if (now_owts(s) > due + s->setup.timeout) {
                        s->counters.late_skipped++;
                        r = add_skip(x, seq);
                        if (r < 0)
                                return session_fail(s, r, "Too many skip ranges");
                        continue;
                }

                fill_padding(x, pkt + hdr, s->setup.padding_length);
                r = ow_testpkt_prepare(s->codec, seq, pkt + hdr, s->setup.padding_length, pkt, size);
                if (r < 0)
                        return session_fail(s, r, "Cannot build test packet");
                OwErrEst err = current_errest(s);

                r = wait_until(s, due);
                if (r < 0)
                        return r;
                if (r > 0)
                        break;

                /* Nothing but the timestamp and the send from here on (and
                 * a look at the clock: a step during the wait must show in
                 * this packet's estimate, not the next one's). */
                OwTimestamp ts = now_owts(s);
                if (pacing_clock_watch(s))
                        err = current_errest(s);
                (void) ow_testpkt_finish(s->codec, pkt, seq, ts, err);
                ssize_t sent = send(UDP_FD, pkt, size, 0);
                if (sent < 0) {
                        /* ICMP errors (ECONNREFUSED) and full buffers do not
                         * end a session: the packet is simply lost. */
                        if (errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN &&
                            errno != EHOSTUNREACH && errno != ENETUNREACH && errno != EINTR)
                                return session_fail(s, -errno, "send() failed");
                        continue;
                }
                s->counters.sent++;
        }

        /* Wait Timeout + enddelay after the last scheduled packet, so the
         * receiver has decided on every packet before Stop-Sessions. */
        pacing_realtime_leave(s);
        if (!s->stop_requested) {
                OwTimestamp end = due + s->setup.timeout + ow_duration_from_nsec(s->setup.enddelay_nsec);
                r = wait_until(s, end);
                pacing_realtime_leave(s);
                if (r < 0)
                        return r;
        }

        WorkerDone d = {
                .next_seqno = seq,
                .n_skips = x->n_skips,
                .skips = x->skips,
                .counters = s->counters,
        };
        return session_done(s, &d,
                            "Sender done: %" PRIu64 " sent, %" PRIu64
                            " skipped as late, next seqno %u, %u skip ranges",
                            s->counters.sent, s->counters.late_skipped, seq, x->n_skips);
}

static int run_sender(Session *s) {
        _cleanup_(sender_done) Sender x = { .s = s };
        return sender_loop(&x);
}

const Role role_sender = {
        .id = WORKER_ROLE_SENDER, .name = "sender", .start_first = true, .run = run_sender
};
