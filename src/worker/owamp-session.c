/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owamp-session: one endpoint (sender or receiver) of one OWAMP-Test
 * session (RFC 4656 4).
 *
 * It is started by owampd or owping with exactly these file descriptors:
 *   0  the UDP test socket, already bound to the session's address and port
 *   1  a stream socket to its controller (src/shared/worker-ipc.h)
 *   2  where its log lines go
 * and nothing else: no configuration, no files, no privileges. Under
 * systemd it runs as a transient DynamicUser service.
 *
 * Timing is what this program is for:
 *  - senders pace packets on absolute time: clock_nanosleep(TIMER_ABSTIME)
 *    to just before the due time, then a short spin, then the timestamp and
 *    immediately sendto(); everything else (encryption in mode A, padding)
 *    is prepared before the wait;
 *  - receivers take the kernel's receive timestamp (SO_TIMESTAMPNS) and the
 *    TTL/hop limit from the control messages of recvmmsg().
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cpu.h"
#include "log.h"
#include "macro.h"
#include "net.h"
#include "ow-crypto.h"
#include "ow-error.h"
#include "ow-receiver.h"
#include "ow-schedule.h"
#include "ow-sid.h"
#include "ow-testpkt.h"
#include "ow-time.h"
#include "usage.h"
#include "worker-ipc.h"

#define UDP_FD 0
#define CTL_FD 1

/* How long before a packet's due time the sender stops sleeping and spins:
 * long enough to cover the wake-up latency of clock_nanosleep (1 ns timer
 * slack) nearly always, short enough not to burn a core for nothing. The
 * latency depends on the machine (a few us on bare metal, 15-60 us in a
 * VM, milliseconds under load), so the sender measures every wake-up and
 * spins for a high quantile of what it saw, plus a margin, within bounds.
 * It starts where a VM needs it. */
#define SPIN_INITIAL_NSEC INT64_C(60000)
#define SPIN_MIN_NSEC INT64_C(5000)
#define SPIN_MAX_NSEC INT64_C(200000)
#define SPIN_MARGIN_NSEC INT64_C(5000)
/* A STOP is noticed at least this often while packets go out back to back
 * (longer waits watch the controller anyway). */
#define CONTROL_CHECK_NSEC INT64_C(10000000)
/* Sleeps longer than this are cut into pieces so a STOP is noticed. */
#define MAX_SLEEP_NSEC INT64_C(50000000)
#define RECV_BATCH 64
/* Records go to the controller in batches of RECORD_BATCH, or when the
 * oldest has waited RECORD_FLUSH_NSEC: not one write (and one wake-up of
 * owampd) per packet. Nothing reads them before the session ends. */
#define RECORD_BATCH 256
#define RECORD_FLUSH_NSEC INT64_C(1000000000)
/* See receive_coalesce_nsec(). */
#define RECV_COALESCE_MIN_GAP_NSEC INT64_C(250000)
#define RECV_COALESCE_MAX_NSEC INT64_C(1000000)
#define NSEC_PER_SEC INT64_C(1000000000)
#define ERREST_REFRESH_NSEC INT64_C(1000000000)
/* A change of CLOCK_REALTIME against CLOCK_MONOTONIC beyond what NTP may
 * slew (500 ppm) plus this is a step of the clock, not a correction. */
#define CLOCK_STEP_MIN_NSEC INT64_C(10000000)
#define CLOCK_SLEW_MAX_PPM 500
/* Two reads of CLOCK_MONOTONIC around one of CLOCK_REALTIME further apart
 * than this: preempted in between, read again (at most CLOCK_READ_TRIES). */
#define CLOCK_READ_MAX_NSEC INT64_C(1000000)
#define CLOCK_READ_TRIES 3
#define PPM_PER_UNIT INT64_C(1000000)
#define NSEC_PER_MSEC_I INT64_C(1000000)
#define USEC_PER_MSEC_U UINT64_C(1000)
#define SETUP_TIMEOUT_MSEC 30000

typedef struct Session {
        WorkerSetup setup;
        char sid_hex[OW_SID_HEX_SIZE];
        LogFields log;
        OwTestPktCodec *codec;
        WorkerBuf in, out;
        WorkerCounters counters;
        bool stop_requested;
        WorkerStop stop;

        OwErrEst errest;
        int64_t errest_at; /* monotonic ns of the last refresh */

        /* Clock steps (clock_watch()): realtime - monotonic when last looked. */
        bool clock_watched;
        int64_t clock_gap_nsec, clock_watched_at;
        int64_t clock_stepped_nsec; /* sum of the steps seen, in absolute value */
        /* OWAMP_DEBUG_CLOCK_STEP (tests): CLOCK_MONOTONIC ns from which the
         * clock reads debug_step_nsec more; 0: never. */
        int64_t debug_step_at, debug_step_nsec;

        /* sender */
        int64_t wake_late_nsec; /* tracked high quantile of clock_nanosleep's overshoot */
        int64_t spin_nsec;
        int64_t control_checked_at; /* CLOCK_REALTIME ns */
        bool realtime_allowed;      /* SCHED_FIFO may be used, see realtime_enter() */
        bool realtime;              /* running SCHED_FIFO now */
        OwSkipRange *skips;
        uint32_t n_skips, cap_skips;
        uint64_t prng[2];

        /* receiver */
        OwRecord pending[RECORD_BATCH];
        size_t n_pending;
        int64_t flush_at; /* monotonic ns by which the pending records go out */
} Session;

static int64_t mono_nsec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Our clock's offset from CLOCK_REALTIME: OWAMP_DEBUG_TIMEOFFSET, plus the
 * step of OWAMP_DEBUG_CLOCK_STEP once its time has come (tests only). */
static int64_t clock_offset(const Session *s) {
        int64_t off = s->setup.clock_offset_nsec;
        if (s->debug_step_at > 0 && mono_nsec() >= s->debug_step_at)
                off += s->debug_step_nsec;
        return off;
}

static OwTimestamp timespec_to_owts(const Session *s, const struct timespec *ts) {
        return ow_timestamp_from_timespec_shifted(ts, clock_offset(s));
}

static OwTimestamp now_owts(const Session *s) {
        return clock_now(clock_offset(s));
}

/* CLOCK_REALTIME value at which our (offset) clock reads t. */
static void owts_to_realtime(const Session *s, OwTimestamp t, struct timespec *ret) {
        ow_timestamp_to_timespec_shifted(t, clock_offset(s), ret);
}

static int64_t realtime_nsec(void);

static int64_t ms_rounded(int64_t nsec) {
        return (nsec + (nsec < 0 ? -NSEC_PER_MSEC_I : NSEC_PER_MSEC_I) / 2) / NSEC_PER_MSEC_I;
}

/* A step of the clock in the middle of a session (an operator's date -s,
 * ntpdate, chrony's makestep) makes the timestamps before and after it
 * disagree by the step: say so once per step, and from then on mark every
 * timestamp unsynchronised, with an error of at least the steps seen
 * (current_errest()). Slewing, which NTP does within 500 ppm, is not a
 * step. */
static bool clock_watch(Session *s) {
        int64_t m0 = 0, rt = 0, m1 = 0;
        bool stepped = false;

        /* Both clocks at one instant: a preemption between the reads would
         * look like a step. Read again when one came between them. */
        for (int i = 0;; i++) {
                m0 = mono_nsec();
                rt = realtime_nsec();
                m1 = mono_nsec();
                if (m1 - m0 <= CLOCK_READ_MAX_NSEC)
                        break;
                if (i == CLOCK_READ_TRIES)
                        return false; /* look again next time */
        }
        int64_t mono = m0 + (m1 - m0) / 2;
        int64_t gap = rt + clock_offset(s) - mono;

        if (s->clock_watched) {
                int64_t jump = gap - s->clock_gap_nsec;
                int64_t elapsed = mono - s->clock_watched_at;
                int64_t allowed = CLOCK_STEP_MIN_NSEC + elapsed / (PPM_PER_UNIT / CLOCK_SLEW_MAX_PPM);
                if (jump > allowed || -jump > allowed) {
                        s->clock_stepped_nsec += jump < 0 ? -jump : jump;
                        log_full(LOG_WARNING, 0, &s->log,
                                 "The clock was stepped by %+" PRId64 " ms during the session: timestamps "
                                 "from now on are marked unsynchronised, with an error of at least %" PRId64
                                 " ms",
                                 ms_rounded(jump), ms_rounded(s->clock_stepped_nsec));
                        stepped = true;
                }
        }
        s->clock_gap_nsec = gap;
        s->clock_watched_at = mono;
        s->clock_watched = true;
        return stepped;
}

/* An estimate's bound in microseconds: Multiplier x 2^(Scale - 32) s. */
static uint64_t errest_usec(OwErrEst e) {
        unsigned __int128 v = (unsigned __int128) ow_errest_multiplier(e) << ow_errest_scale(e);
        v = v * OW_USEC_PER_SEC >> 32;
        return v > UINT64_MAX ? UINT64_MAX : (uint64_t) v;
}

static OwErrEst current_errest(Session *s) {
        int64_t m = mono_nsec();
        clock_watch(s);
        if (s->errest == 0 || m - s->errest_at > ERREST_REFRESH_NSEC) {
                struct timex tx = {};
                int rc = adjtimex(&tx);
                s->errest = ow_errest_from_timex(rc, &tx);
                s->errest_at = m;
        }
        if (s->clock_stepped_nsec > 0) {
                uint64_t us = MAX(errest_usec(s->errest), (uint64_t) (s->clock_stepped_nsec / NSEC_PER_MSEC_I) * USEC_PER_MSEC_U);
                return (OwErrEst) (ow_errest_from_usec(true, us) & ~OW_ERREST_S_BIT);
        }
        return s->errest;
}

static int send_out(Session *s) {
        int r = worker_write_all(CTL_FD, &s->out);
        if (r < 0)
                return log_full(LOG_ERR, r, &s->log, "Writing to the controller failed: %m");
        return 0;
}

static int fail(Session *s, int error, const char *what) {
        log_full(LOG_ERR, error, &s->log, "%s: %s", what, ow_strerror(error));
        s->out.len = 0;
        (void) worker_error_append(&s->out, error, what);
        (void) worker_write_all(CTL_FD, &s->out);
        return error;
}

/* Process whatever the controller sent. Returns 0, or -EPIPE on EOF. */
static int handle_control(Session *s, bool block) {
        for (;;) {
                uint32_t type;
                const uint8_t *p;
                size_t len;
                int r = worker_msg_peek(&s->in, &type, &p, &len);
                if (r < 0)
                        return fail(s, r, "Bad message from controller");
                if (r > 0) {
                        if (type == WORKER_MSG_STOP) {
                                r = worker_stop_parse(p, len, &s->stop);
                                if (r < 0)
                                        return fail(s, r, "Bad STOP message");
                                s->stop_requested = true;
                        } else if (type != WORKER_MSG_START)
                                return fail(s, -EBADMSG, "Unexpected message from controller");
                        worker_buf_consume(&s->in, 4 + 4 + len);
                        block = false;
                        continue;
                }
                struct pollfd pfd = { .fd = CTL_FD, .events = POLLIN };
                r = poll(&pfd, 1, block ? SETUP_TIMEOUT_MSEC : 0);
                if (r < 0)
                        return errno == EINTR ? 0 : -errno;
                if (r == 0) {
                        if (block)
                                return fail(s, -ETIMEDOUT, "Controller silent");
                        return 0;
                }
                r = worker_read_some(CTL_FD, &s->in);
                if (r < 0)
                        return fail(s, r, "Reading from controller failed");
                if (r == 0)
                        return -EPIPE;
        }
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

static void fill_padding(Session *s, uint8_t *p, size_t n) {
        if (s->setup.flags & WORKER_FLAG_ZERO_PADDING) {
                memset(p, 0, n);
                return;
        }
        while (n >= 8) {
                uint64_t v = prng_next(s->prng);
                memcpy(p, &v, 8);
                p += 8;
                n -= 8;
        }
        if (n) {
                uint64_t v = prng_next(s->prng);
                memcpy(p, &v, n);
        }
}

static int add_skip(Session *s, uint32_t seq) {
        if (s->n_skips > 0 && s->skips[s->n_skips - 1].last + 1 == seq) {
                s->skips[s->n_skips - 1].last = seq;
                return 0;
        }
        if (s->n_skips >= OW_MAX_SKIP_RANGES)
                return -ENOBUFS;
        if (s->n_skips == s->cap_skips) {
                uint32_t n = s->cap_skips ? s->cap_skips * 2 : 16;
                OwSkipRange *k = realloc(s->skips, n * sizeof(*k));
                if (!k)
                        return -ENOMEM;
                s->skips = k;
                s->cap_skips = n;
        }
        s->skips[s->n_skips++] = (OwSkipRange) { .first = seq, .last = seq };
        return 0;
}

static int64_t realtime_nsec(void) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        return (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
}

/* Learn from one wake-up that came `late` ns after it was asked for. A
 * quantile tracker with multiplicative steps: up 6 % when the wake-up was
 * later than the estimate, down 0.19 % when earlier, which balances where
 * 3 % of wake-ups are later, i.e. at the 97th percentile. Steps bounded by
 * the estimate itself keep a rare wake-up that is milliseconds late (which
 * no spin should try to cover) from dragging it up. */
static void spin_learn(Session *s, int64_t late) {
        int64_t e = s->wake_late_nsec;
        if (late > e)
                e += e * 97 / 1600 + 1;
        else
                e -= e * 3 / 1600;
        s->wake_late_nsec = e;
        s->spin_nsec = MIN(MAX(e + SPIN_MARGIN_NSEC, SPIN_MIN_NSEC), SPIN_MAX_NSEC);
}

/*
 * Real-time scheduling for the last stretch before a packet. On a busy
 * machine the sender's wake-up waits behind whatever else runs on its CPU,
 * for milliseconds; as SCHED_FIFO it preempts at once. The sender becomes
 * SCHED_FIFO (priority 1) just before its last sleep and goes back to
 * SCHED_OTHER right after the send, so it holds the CPU for the spin and
 * one send() at most, never for a stretch of packets sent back to back:
 * the receiver and owampd on the same CPUs cannot be starved. Needs
 * CAP_SYS_NICE or RLIMIT_RTPRIO >= 1 (LimitRTPRIO=1 and
 * RestrictRealtime=no in a unit); without either the sender stays
 * SCHED_OTHER.
 */
static void realtime_probe(Session *s) {
        struct sched_param p = { .sched_priority = 1 };
        s->realtime_allowed = sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &p) == 0;
        if (s->realtime_allowed) {
                p.sched_priority = 0;
                (void) sched_setscheduler(0, SCHED_OTHER, &p);
        }
        log_full(LOG_DEBUG, 0, &s->log, "Sender pacing %s real-time scheduling",
                 s->realtime_allowed ? "with" : "without");
}

static void realtime_enter(Session *s) {
        struct sched_param p = { .sched_priority = 1 };
        if (s->realtime_allowed && !s->realtime)
                s->realtime = sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &p) == 0;
}

static void realtime_leave(Session *s) {
        struct sched_param p = { .sched_priority = 0 };
        if (s->realtime && sched_setscheduler(0, SCHED_OTHER, &p) == 0)
                s->realtime = false;
}

/* Sleep until our clock reads `due`, watching the controller during long
 * waits; returns early (1) if a STOP arrived. The last spin_nsec are spun so
 * the wake-up latency of the kernel timer does not delay the packet. */
static int wait_until(Session *s, OwTimestamp due) {
        struct timespec deadline;
        owts_to_realtime(s, due, &deadline);
        int64_t due_ns = (int64_t) deadline.tv_sec * 1000000000 + deadline.tv_nsec;

        for (;;) {
                int64_t left = due_ns - realtime_nsec();
                if (left <= s->spin_nsec)
                        break;
                if (left > MAX_SLEEP_NSEC + s->spin_nsec) {
                        /* Long wait: sleep on the control socket. */
                        int64_t chunk = left - s->spin_nsec;
                        if (chunk > MAX_SLEEP_NSEC)
                                chunk = MAX_SLEEP_NSEC;
                        struct pollfd pfd = { .fd = CTL_FD, .events = POLLIN };
                        struct timespec to = { .tv_sec = chunk / 1000000000, .tv_nsec = chunk % 1000000000 };
                        int r = ppoll(&pfd, 1, &to, NULL);
                        if (r > 0) {
                                r = handle_control(s, false);
                                if (r < 0)
                                        return r;
                                if (s->stop_requested)
                                        return 1;
                        }
                        continue;
                }
                int64_t wake = due_ns - s->spin_nsec;
                struct timespec w = { .tv_sec = wake / 1000000000, .tv_nsec = wake % 1000000000 };
                realtime_enter(s);
                if (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &w, NULL) == 0)
                        spin_learn(s, realtime_nsec() - wake);
        }

        /* Spin the last stretch. */
        while (realtime_nsec() < due_ns)
                cpu_relax();
        return 0;
}

static int configure_sender_socket(Session *s) {
        int ttl = 255;
        int tos = ow_typep_dscp(s->setup.type_p) << 2;
        int family = s->setup.peer.sa.sa_family;

        if (family == AF_INET) {
                if (setsockopt(UDP_FD, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) < 0)
                        return -errno;
                if (tos && setsockopt(UDP_FD, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)) < 0)
                        return -errno;
        } else {
                if (setsockopt(UDP_FD, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl)) < 0)
                        return -errno;
                if (tos && setsockopt(UDP_FD, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos)) < 0)
                        return -errno;
        }
        /* connect(): the route is looked up once, not per packet, and the
         * kernel keeps ICMP errors from other hosts away from us. */
        if (connect(UDP_FD, &s->setup.peer.sa, sockaddr_len(&s->setup.peer)) < 0)
                return -errno;
        return 0;
}

/* One line per endpoint at start, with the addresses: under systemd it is
 * the first line of the session's own unit in `journalctl OWAMP_SID=`. */
static void log_endpoint_ready(Session *s, size_t packet_size) {
        SockAddr local = {};
        socklen_t len = sizeof(local);
        char l[SOCKADDR_STR_MAX] = "?", p[SOCKADDR_STR_MAX];
        bool sender = s->setup.role == WORKER_ROLE_SENDER;

        if (getsockname(UDP_FD, &local.sa, &len) >= 0) {
                sockaddr_unmap_v4(&local);
                sockaddr_str(&local, l, sizeof(l));
        }
        sockaddr_str(&s->setup.peer, p, sizeof(p));
        if (sender)
                log_full(LOG_INFO, 0, &(LogFields) { .message_id = MSGID_ENDPOINT_READY, .sid = s->log.sid },
                         "Sender ready: %u packets of %zu octets, %s -> %s", s->setup.n_packets, packet_size, l,
                         p);
        else
                log_full(LOG_INFO, 0, &(LogFields) { .message_id = MSGID_ENDPOINT_READY, .sid = s->log.sid },
                         "Receiver ready: %u packets, %s -> %s", s->setup.n_packets, p, l);
}

static int run_sender(Session *s) {
        _cleanup_(ow_schedule_freep) OwSchedule *sched = NULL;
        _cleanup_free_ uint8_t *pkt = NULL;
        size_t hdr = ow_testpkt_header_size(s->setup.mode);
        size_t size = hdr + s->setup.padding_length;
        uint32_t seq = 0;
        OwTimestamp due = s->setup.start_time;
        int r;

        r = configure_sender_socket(s);
        if (r < 0)
                return fail(s, r, "Cannot configure the test socket");
        r = ow_schedule_new(&s->setup.sid, s->setup.slots, s->setup.n_slots, s->setup.start_time, &sched);
        if (r < 0)
                return fail(s, r, "Bad schedule");
        pkt = malloc(size);
        if (!pkt)
                return fail(s, -ENOMEM, "Out of memory");
        s->wake_late_nsec = SPIN_INITIAL_NSEC - SPIN_MARGIN_NSEC;
        s->spin_nsec = SPIN_INITIAL_NSEC;
        realtime_probe(s);
        if (getrandom(s->prng, sizeof(s->prng), 0) != sizeof(s->prng))
                s->prng[0] = (uint64_t) mono_nsec(), s->prng[1] = (uint64_t) getpid() | 1;

        log_endpoint_ready(s, size);

        for (seq = 0; seq < s->setup.n_packets; seq++) {
                due = ow_schedule_next(sched, NULL);

                /* Not a poll() per packet: at high rates every system
                 * call counts against the rate the sender can keep. */
                int64_t now_ns = realtime_nsec();
                if (now_ns - s->control_checked_at >= CONTROL_CHECK_NSEC) {
                        s->control_checked_at = now_ns;
                        r = handle_control(s, false);
                        if (r < 0)
                                return r;
                        if (s->stop_requested)
                                break;
                }

                /* More than Timeout behind schedule: skip it (RFC 4656 3.8). */
                if (now_owts(s) > due + s->setup.timeout) {
                        s->counters.late_skipped++;
                        r = add_skip(s, seq);
                        if (r < 0)
                                return fail(s, r, "Too many skip ranges");
                        continue;
                }

                fill_padding(s, pkt + hdr, s->setup.padding_length);
                r = ow_testpkt_prepare(s->codec, seq, pkt + hdr, s->setup.padding_length, pkt, size);
                if (r < 0)
                        return fail(s, r, "Cannot build test packet");
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
                if (clock_watch(s))
                        err = current_errest(s);
                (void) ow_testpkt_finish(s->codec, pkt, seq, ts, err);
                ssize_t sent = send(UDP_FD, pkt, size, 0);
                realtime_leave(s);
                if (sent < 0) {
                        /* ICMP errors (ECONNREFUSED) and full buffers do not
                         * end a session: the packet is simply lost. */
                        if (errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN &&
                            errno != EHOSTUNREACH && errno != ENETUNREACH && errno != EINTR)
                                return fail(s, -errno, "send() failed");
                        continue;
                }
                s->counters.sent++;
        }

        /* Wait Timeout + enddelay after the last scheduled packet, so the
         * receiver has decided on every packet before Stop-Sessions. */
        realtime_leave(s);
        if (!s->stop_requested) {
                OwTimestamp end = due + s->setup.timeout + ow_duration_from_nsec(s->setup.enddelay_nsec);
                r = wait_until(s, end);
                realtime_leave(s);
                if (r < 0)
                        return r;
        }

        WorkerDone d = {
                .next_seqno = seq,
                .n_skips = s->n_skips,
                .skips = s->skips,
                .counters = s->counters,
        };
        r = worker_done_append(&s->out, &d);
        if (r < 0)
                return fail(s, r, "Cannot encode DONE");
        log_full(LOG_INFO, 0, &(LogFields) { .message_id = MSGID_ENDPOINT_DONE, .sid = s->log.sid },
                 "Sender done: %" PRIu64 " sent, %" PRIu64 " skipped as late, next seqno %u, %u skip ranges",
                 s->counters.sent, s->counters.late_skipped, seq, s->n_skips);
        return send_out(s);
}

static int configure_receiver_socket(Session *s) {
        int on = 1;
        int family = s->setup.peer.sa.sa_family;
        int rcvbuf = 4 << 20;

        if (setsockopt(UDP_FD, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) < 0)
                return -errno;
        if (family == AF_INET) {
                if (setsockopt(UDP_FD, IPPROTO_IP, IP_RECVTTL, &on, sizeof(on)) < 0)
                        return -errno;
        } else if (setsockopt(UDP_FD, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof(on)) < 0)
                return -errno;
        /* Best effort: a larger buffer rides out bursts at high rates. Beyond
         * net.core.rmem_max only with CAP_NET_ADMIN. */
        if (setsockopt(UDP_FD, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
                (void) setsockopt(UDP_FD, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
        return 0;
}

static int flush_records(Session *s) {
        if (s->n_pending == 0)
                return 0;
        int r = worker_records_append(&s->out, s->pending, s->n_pending);
        if (r < 0)
                return fail(s, r, "Cannot encode records");
        s->n_pending = 0;
        return send_out(s);
}

static int push_record(Session *s, const OwRecord *rec) {
        if (s->n_pending == 0)
                s->flush_at = mono_nsec() + RECORD_FLUSH_NSEC;
        s->pending[s->n_pending++] = *rec;
        if (s->n_pending == RECORD_BATCH)
                return flush_records(s);
        return 0;
}

static int expire(Session *s, OwReceiver *rx, OwTimestamp now) {
        OwRecord lost[RECORD_BATCH];
        size_t n;
        do {
                n = ow_receiver_expire(rx, now, current_errest(s), lost, ELEMENTSOF(lost));
                for (size_t i = 0; i < n; i++) {
                        s->counters.lost++;
                        int r = push_record(s, &lost[i]);
                        if (r < 0)
                                return r;
                }
        } while (n == ELEMENTSOF(lost));
        return 0;
}

/* The receive buffers of one batch: RECV_BATCH slots of the session's
 * packet size (a longer datagram is truncated to it, which is harmless:
 * the padding is never looked at), their source addresses and control
 * messages, and the message headers pointing at them, set up once. */
typedef union RecvControl {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(int)) * 2];
} RecvControl;

typedef struct RecvRing {
        size_t slot_size;
        uint8_t *data;
        SockAddr from[RECV_BATCH];
        RecvControl control[RECV_BATCH];
        struct iovec iov[RECV_BATCH];
        struct mmsghdr msgs[RECV_BATCH];
} RecvRing;

static RecvRing *recv_ring_free(RecvRing *ring) {
        if (ring)
                free(ring->data);
        free(ring);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(RecvRing *, recv_ring_free);

static int recv_ring_new(size_t packet_size, RecvRing **ret) {
        _cleanup_(recv_ring_freep) RecvRing *ring = calloc(1, sizeof(RecvRing));
        if (!ring)
                return -ENOMEM;
        ring->slot_size = ALIGN_TO(MAX(packet_size, (size_t) OW_TESTPKT_MAX_HEADER_SIZE), 16);
        ring->data = calloc(RECV_BATCH, ring->slot_size);
        if (!ring->data)
                return -ENOMEM;
        for (unsigned i = 0; i < RECV_BATCH; i++) {
                ring->iov[i] = (struct iovec) { .iov_base = ring->data + i * ring->slot_size,
                                                .iov_len = ring->slot_size };
                ring->msgs[i].msg_hdr = (struct msghdr) {
                        .msg_name = &ring->from[i],
                        .msg_iov = &ring->iov[i],
                        .msg_iovlen = 1,
                        .msg_control = ring->control[i].buf,
                };
        }
        *ret = TAKE_PTR(ring);
        return 0;
}

/* One datagram: its kernel timestamp and TTL, then the receiver's decision. */
static int handle_packet(Session *s, OwReceiver *rx, struct msghdr *mh, const uint8_t *data, size_t len) {
        struct timespec kts = {};
        bool have_ts = false;
        uint8_t ttl = OW_TTL_UNKNOWN;
        SockAddr *from = mh->msg_name;
        int r;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS &&
                    c->cmsg_len >= CMSG_LEN(sizeof(kts))) {
                        memcpy(&kts, CMSG_DATA(c), sizeof(kts));
                        have_ts = true;
                } else if (((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) &&
                           c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                        int v;
                        memcpy(&v, CMSG_DATA(c), sizeof(v));
                        if (v >= 0 && v <= 255)
                                ttl = (uint8_t) v;
                }
        }
        OwTimestamp recv_time = have_ts ? timespec_to_owts(s, &kts) : now_owts(s);

        sockaddr_unmap_v4(from);
        if (!sockaddr_equal(from, &s->setup.peer)) {
                s->counters.dropped_source++;
                return 0;
        }

        r = expire(s, rx, recv_time);
        if (r < 0)
                return r;

        /* The session's packets carry its padding: a shorter datagram is
         * not one of them (the reference aborts the session on it,
         * PROTOCOL.md 7.5; we count it). A longer one is cut to the slot,
         * which still holds all of a session packet. */
        if (len < ow_testpkt_header_size(s->setup.mode) + s->setup.padding_length) {
                s->counters.dropped_short++;
                return 0;
        }

        OwTestPacket p;
        r = ow_testpkt_decode(s->codec, data, len, s->setup.n_packets, &p);
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
        r = ow_receiver_packet(rx, p.seq, p.timestamp, p.errest, recv_time, current_errest(s), ttl, &rec);
        switch (r) {
        case OW_RECV_DUPLICATE:
                s->counters.duplicates++;
                _fallthrough_;
        case OW_RECV_ACCEPTED:
                s->counters.received++;
                return push_record(s, &rec);
        case OW_RECV_DROP_SEQ:
                s->counters.dropped_seq++;
                return 0;
        default:
                s->counters.dropped_time++;
                return 0;
        }
}

/* Take every datagram waiting on the socket. Returns how many, or an error. */
static int receive_batch(Session *s, OwReceiver *rx, RecvRing *ring) {
        int total = 0;

        for (;;) {
                for (unsigned i = 0; i < RECV_BATCH; i++) {
                        struct msghdr *mh = &ring->msgs[i].msg_hdr;
                        mh->msg_namelen = sizeof(ring->from[i]);
                        mh->msg_controllen = sizeof(ring->control[i].buf);
                        mh->msg_flags = 0;
                }
                int n = recvmmsg(UDP_FD, ring->msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return total;
                        if (errno == ECONNREFUSED)
                                continue;
                        return fail(s, -errno, "recvmmsg() failed");
                }
                for (int i = 0; i < n; i++) {
                        int r = handle_packet(s, rx, &ring->msgs[i].msg_hdr, ring->iov[i].iov_base,
                                              MIN((size_t) ring->msgs[i].msg_len, ring->slot_size));
                        if (r < 0)
                                return r;
                }
                total += n;
                if (n < RECV_BATCH)
                        return total;
        }
}

/* How long to let packets gather in the socket after a batch before reading
 * again: at high rates, waking once per packet costs more CPU than the
 * packets themselves, and on a small machine it takes the CPU from the
 * sender. The kernel timestamps each packet on arrival, so reading later
 * changes no measurement; at most RECV_BATCH/2 mean gaps' worth of packets
 * (and at most 1 ms) wait, far below any socket buffer. Only from 4,000
 * packets/s, where at least four packets gather. */
static int64_t receive_coalesce_nsec(const Session *s) {
        unsigned __int128 sum = 0;
        for (uint32_t i = 0; i < s->setup.n_slots; i++)
                sum += s->setup.slots[i].param;
        if (s->setup.n_slots == 0)
                return 0;
        int64_t gap = (int64_t) ow_duration_to_nsec((OwTimestamp) (sum / s->setup.n_slots));
        if (gap >= RECV_COALESCE_MIN_GAP_NSEC)
                return 0;
        return MIN(gap * (RECV_BATCH / 2), RECV_COALESCE_MAX_NSEC);
}

static int run_receiver(Session *s) {
        _cleanup_(ow_receiver_freep) OwReceiver *rx = NULL;
        _cleanup_(recv_ring_freep) RecvRing *ring = NULL;
        OwSessionRequest req = {
                .sid = s->setup.sid,
                .n_slots = s->setup.n_slots,
                .slots = s->setup.slots,
                .n_packets = s->setup.n_packets,
                .start_time = s->setup.start_time,
                .timeout = s->setup.timeout,
        };
        int64_t coalesce = receive_coalesce_nsec(s);
        int r;

        r = configure_receiver_socket(s);
        if (r < 0)
                return fail(s, r, "Cannot configure the test socket");
        r = ow_receiver_new(&req, &rx);
        if (r < 0)
                return fail(s, r, "Bad schedule");
        r = recv_ring_new(ow_testpkt_header_size(s->setup.mode) + s->setup.padding_length, &ring);
        if (r < 0)
                return fail(s, r, "Out of memory");
        log_endpoint_ready(s, 0);

        /* The session is over Timeout + enddelay after its last scheduled
         * packet, as a sender's is (PROTOCOL.md 5.4), not as soon as every
         * packet is decided: copies may still come, and ending early makes
         * the controller send Stop-Sessions early, so the peer's answer
         * carries a stop time that cleans away its last packets (sent later
         * than stop - Timeout, RFC 4656 3.8). */
        OwTimestamp end = ow_receiver_last_scheduled(rx);
        OwTimestamp linger = s->setup.timeout + ow_duration_from_nsec(s->setup.enddelay_nsec);
        end = end > UINT64_MAX - linger ? UINT64_MAX : end + linger;

        while (!s->stop_requested) {
                OwTimestamp now = now_owts(s);
                bool decided = ow_receiver_done(rx);
                if (decided && now >= end)
                        break;
                OwTimestamp deadline = decided ? end : ow_receiver_next_deadline(rx);
                int64_t wait = NSEC_PER_SEC;
                if (deadline <= now)
                        wait = 0;
                else if (deadline - now < OW_TIMESTAMP_FROM_SEC(1))
                        wait = (int64_t) ow_duration_to_nsec(deadline - now);
                if (s->n_pending > 0) {
                        int64_t until_flush = s->flush_at - mono_nsec();
                        wait = MIN(wait, MAX(until_flush, INT64_C(0)));
                }
                struct timespec to = { .tv_sec = wait / NSEC_PER_SEC, .tv_nsec = wait % NSEC_PER_SEC };

                struct pollfd pfd[2] = {
                        { .fd = UDP_FD, .events = POLLIN },
                        { .fd = CTL_FD, .events = POLLIN },
                };
                int n = ppoll(pfd, 2, &to, NULL);
                if (n < 0 && errno != EINTR)
                        return fail(s, -errno, "ppoll() failed");
                if (n > 0 && (pfd[0].revents & POLLIN)) {
                        r = receive_batch(s, rx, ring);
                        if (r < 0)
                                return r;
                        if (r > 0 && coalesce > 0) {
                                struct timespec ts = { .tv_nsec = (long) coalesce };
                                (void) clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
                        }
                }
                if (n > 0 && (pfd[1].revents & (POLLIN | POLLHUP))) {
                        r = handle_control(s, false);
                        if (r < 0)
                                return r;
                }
                r = expire(s, rx, now_owts(s));
                if (r < 0)
                        return r;
                if (s->n_pending > 0 && mono_nsec() >= s->flush_at) {
                        r = flush_records(s);
                        if (r < 0)
                                return r;
                }
        }

        if (s->stop_requested) {
                /* Settle what the stop time allows; the controller cleans
                 * the rest with the sender's Next Seqno (RFC 4656 3.8). */
                r = expire(s, rx, s->stop.stop_time ? s->stop.stop_time : now_owts(s));
                if (r < 0)
                        return r;
        }
        r = flush_records(s);
        if (r < 0)
                return r;

        WorkerDone d = { .counters = s->counters };
        r = worker_done_append(&s->out, &d);
        if (r < 0)
                return fail(s, r, "Cannot encode DONE");
        log_full(LOG_INFO, 0, &(LogFields) { .message_id = MSGID_ENDPOINT_DONE, .sid = s->log.sid },
                 "Receiver done: %" PRIu64 " received, %" PRIu64 " lost, %" PRIu64 " duplicates",
                 s->counters.received, s->counters.lost, s->counters.duplicates);
        return send_out(s);
}

static int check_fds(void) {
        int type = 0;
        socklen_t l = sizeof(type);

        if (getsockopt(UDP_FD, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_DGRAM)
                return -ENOTSOCK;
        l = sizeof(type);
        if (getsockopt(CTL_FD, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_STREAM)
                return -ENOTSOCK;
        return 0;
}

int main(int argc, char **argv) {
        Session s = {};
        int r;

        const char *prio = getenv("OWAMP_LOG_PRIORITY");
        const char *sid = getenv("OWAMP_SID");
        log_setup("owamp-session", getenv("OWAMP_LOG_STDERR") ? LOG_TARGET_NONE : LOG_TARGET_AUTO, LOG_DAEMON,
                  getenv("OWAMP_LOG_STDERR") != NULL, prio ? atoi(prio) : LOG_INFO);
        if (sid && strlen(sid) == 32)
                s.log.sid = sid;

        if (argc == 2 && streq(argv[1], "--version")) {
                usage_version("owamp-session");
                return EXIT_SUCCESS;
        }
        if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                printf("owamp-session: the test session worker; started by owampd and owping,\n"
                       "not by hand (owampd(8), \"SYSTEMD AND PRIVILEGES\").\n"
                       "   Long forms: --help (-h), --version\n");
                return EXIT_SUCCESS;
        }
        if (argc > 1) {
                log_error("This program is started by owampd and owping, not by hand.");
                return EXIT_FAILURE;
        }

        /* Precise sleeps: no timer slack. A SIGPIPE must not kill us before
         * we can report a lost controller. */
        (void) prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
        (void) prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0, 0, 0);
        signal(SIGPIPE, SIG_IGN);

        r = check_fds();
        if (r < 0) {
                log_full(LOG_ERR, r, &s.log, "fd 0 must be a UDP socket and fd 1 a stream socket");
                return EXIT_FAILURE;
        }

        /* SETUP */
        for (;;) {
                uint32_t type;
                const uint8_t *p;
                size_t len;
                r = worker_msg_peek(&s.in, &type, &p, &len);
                if (r < 0)
                        return fail(&s, r, "Bad message from controller"), EXIT_FAILURE;
                if (r > 0) {
                        if (type != WORKER_MSG_SETUP)
                                return fail(&s, -EBADMSG, "Expected SETUP"), EXIT_FAILURE;
                        r = worker_setup_parse(p, len, &s.setup);
                        if (r < 0)
                                return fail(&s, r, "Bad SETUP message"), EXIT_FAILURE;
                        worker_buf_consume(&s.in, 8 + len);
                        break;
                }
                struct pollfd pfd = { .fd = CTL_FD, .events = POLLIN };
                r = poll(&pfd, 1, SETUP_TIMEOUT_MSEC);
                if (r <= 0)
                        return fail(&s, r < 0 ? -errno : -ETIMEDOUT, "No SETUP from controller"), EXIT_FAILURE;
                r = worker_read_some(CTL_FD, &s.in);
                if (r <= 0)
                        return EXIT_FAILURE;
        }
        ow_sid_to_hex(&s.setup.sid, s.sid_hex);
        s.log.sid = s.sid_hex;

        int64_t step_after;
        if (clock_step_from_env(&step_after, &s.debug_step_nsec) < 0)
                return fail(&s, -EINVAL, "Invalid OWAMP_DEBUG_CLOCK_STEP (AFTER:STEP in seconds expected)"),
                       EXIT_FAILURE;
        if (step_after > 0) {
                s.debug_step_at = mono_nsec() + step_after;
                log_full(LOG_NOTICE, 0, &s.log, "OWAMP_DEBUG_CLOCK_STEP: the clock will be stepped by %+" PRId64
                         " ms in %" PRId64 " ms (a test)",
                         s.debug_step_nsec / NSEC_PER_MSEC_I, step_after / NSEC_PER_MSEC_I);
        }

        OwTestKeys keys;
        memcpy(keys.aes, s.setup.test_aes_key, sizeof(keys.aes));
        memcpy(keys.hmac, s.setup.test_hmac_key, sizeof(keys.hmac));
        r = ow_testpkt_codec_new_from_keys(s.setup.mode, &keys, &s.codec);
        ow_wipe(&keys, sizeof(keys));
        ow_wipe(s.setup.test_aes_key, sizeof(s.setup.test_aes_key));
        ow_wipe(s.setup.test_hmac_key, sizeof(s.setup.test_hmac_key));
        if (r < 0)
                return fail(&s, r, "Bad test keys"), EXIT_FAILURE;

        r = worker_msg_append(&s.out, WORKER_MSG_READY, NULL, 0);
        if (r >= 0)
                r = send_out(&s);
        if (r < 0)
                return EXIT_FAILURE;

        if (s.setup.role == WORKER_ROLE_SENDER) {
                /* A sender waits for START (or STOP) before anything else. */
                for (;;) {
                        uint32_t type;
                        const uint8_t *p;
                        size_t len;
                        r = worker_msg_peek(&s.in, &type, &p, &len);
                        if (r < 0)
                                return fail(&s, r, "Bad message from controller"), EXIT_FAILURE;
                        if (r > 0) {
                                if (type == WORKER_MSG_START) {
                                        worker_buf_consume(&s.in, 8 + len);
                                        break;
                                }
                                if (type == WORKER_MSG_STOP)
                                        return EXIT_SUCCESS;
                                return fail(&s, -EBADMSG, "Expected START"), EXIT_FAILURE;
                        }
                        struct pollfd pfd = { .fd = CTL_FD, .events = POLLIN };
                        r = poll(&pfd, 1, -1);
                        if (r < 0 && errno != EINTR)
                                return EXIT_FAILURE;
                        r = worker_read_some(CTL_FD, &s.in);
                        if (r <= 0)
                                return EXIT_FAILURE;
                }
                r = run_sender(&s);
        } else
                r = run_receiver(&s);

        ow_testpkt_codec_free(s.codec);
        free(s.setup.slots);
        free(s.skips);
        worker_buf_done(&s.in);
        worker_buf_done(&s.out);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
