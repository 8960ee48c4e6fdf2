/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The session's clock and the sender's pacing. Senders pace packets on
 * absolute time: clock_nanosleep(TIMER_ABSTIME) to just before the due
 * time, then a short spin, then the timestamp and immediately the send;
 * everything else is prepared before the wait.
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>

#include "clock.h"
#include "controller.h"
#include "cpu.h"
#include "pacing.h"
#include "session.h"
#include "units.h"

/* How long before a packet's due time the sender stops sleeping and spins:
 * long enough to cover the wake-up latency of clock_nanosleep (1 ns timer
 * slack) nearly always, short enough not to burn a core for nothing. The
 * latency depends on the machine (a few us on bare metal, 15-60 us in a
 * VM, milliseconds under load), so the sender measures every wake-up and
 * spins for a high quantile of what it saw, plus a margin, within bounds.
 * It starts where a VM needs it. */
#define SPIN_INITIAL_NSEC (60 * (int64_t) NSEC_PER_USEC)
#define SPIN_MIN_NSEC (5 * (int64_t) NSEC_PER_USEC)
#define SPIN_MAX_NSEC (200 * (int64_t) NSEC_PER_USEC)
#define SPIN_MARGIN_NSEC (5 * (int64_t) NSEC_PER_USEC)
/* The last stretch before a due time is one clock_nanosleep() to an
 * absolute time: a poll()'s timeout gets a slack of 0.1 % of its length
 * from the kernel, a timer's only the 1 ns of PR_SET_TIMERSLACK. A STOP
 * waits for it (at most this long); everything before it sleeps on the
 * controller, in one piece (a wake-up costs 30-100 us of CPU in a VM, issue
 * 13), up to LONG_SLEEP_MAX_NSEC, after which the clock is read again. */
#define FINAL_SLEEP_NSEC (50 * (int64_t) NSEC_PER_MSEC)
#define LONG_SLEEP_MAX_NSEC ((int64_t) NSEC_PER_SEC)
#define ERREST_REFRESH_NSEC ((int64_t) NSEC_PER_SEC)
/* A change of CLOCK_REALTIME against CLOCK_MONOTONIC beyond what NTP may
 * slew (500 ppm) plus this is a step of the clock, not a correction. */
#define CLOCK_STEP_MIN_NSEC (10 * (int64_t) NSEC_PER_MSEC)
#define CLOCK_SLEW_MAX_PPM 500
/* Two reads of CLOCK_MONOTONIC around one of CLOCK_REALTIME further apart
 * than this: preempted in between, read again (at most CLOCK_READ_TRIES). */
#define CLOCK_READ_MAX_NSEC ((int64_t) NSEC_PER_MSEC)
#define CLOCK_READ_TRIES 3
#define PPM_PER_UNIT INT64_C(1000000)

int64_t ms_rounded(int64_t nsec) {
        int64_t ms = (int64_t) NSEC_PER_MSEC;
        return (nsec + (nsec < 0 ? -ms : ms) / 2) / ms;
}

/* CLOCK_REALTIME value at which our (offset) clock reads t. */
static void owts_to_realtime(const Session *s, OwTimestamp t, struct timespec *ret) {
        ow_timestamp_to_timespec_shifted(t, session_clock_offset(s), ret);
}

/* A step of the clock in the middle of a session (an operator's date -s,
 * ntpdate, chrony's makestep) makes the timestamps before and after it
 * disagree by the step: say so once per step, and from then on mark every
 * timestamp unsynchronised, with an error of at least the steps seen
 * (current_errest()). Slewing, which NTP does within 500 ppm, is not a
 * step. */
bool pacing_clock_watch(Session *s) {
        SessionClock *c = &s->clock;
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
        int64_t gap = rt + session_clock_offset(s) - mono;

        if (c->watched) {
                int64_t jump = gap - c->gap_nsec;
                int64_t elapsed = mono - c->watched_at;
                int64_t allowed = CLOCK_STEP_MIN_NSEC + elapsed / (PPM_PER_UNIT / CLOCK_SLEW_MAX_PPM);
                if (jump > allowed || -jump > allowed) {
                        c->stepped_nsec += jump < 0 ? -jump : jump;
                        log_full(LOG_WARNING, 0, &s->log,
                                 "The clock was stepped by %+" PRId64 " ms during the session: timestamps "
                                 "from now on are marked unsynchronised, with an error of at least %" PRId64
                                 " ms",
                                 ms_rounded(jump), ms_rounded(c->stepped_nsec));
                        stepped = true;
                }
        }
        c->gap_nsec = gap;
        c->watched_at = mono;
        c->watched = true;
        return stepped;
}

/* An estimate's bound in microseconds: Multiplier x 2^(Scale - 32) s. */
static uint64_t errest_usec(OwErrEst e) {
        unsigned __int128 v = (unsigned __int128) ow_errest_multiplier(e) << ow_errest_scale(e);
        v = v * USEC_PER_SEC >> 32;
        return v > UINT64_MAX ? UINT64_MAX : (uint64_t) v;
}

OwErrEst current_errest(Session *s) {
        SessionClock *c = &s->clock;
        int64_t m = mono_nsec();
        pacing_clock_watch(s);
        if (c->errest == 0 || m - c->errest_at > ERREST_REFRESH_NSEC) {
                struct timex tx = {};
                int rc = adjtimex(&tx);
                c->errest = ow_errest_from_timex(rc, &tx);
                c->errest_at = m;
        }
        if (c->stepped_nsec > 0) {
                uint64_t us = MAX(errest_usec(c->errest),
                                  (uint64_t) (c->stepped_nsec / (int64_t) NSEC_PER_MSEC) * USEC_PER_MSEC);
                return (OwErrEst) (ow_errest_from_usec(true, us) & ~OW_ERREST_S_BIT);
        }
        return c->errest;
}

/* Learn from one wake-up that came `late` ns after it was asked for. A
 * quantile tracker with multiplicative steps: up 6 % when the wake-up was
 * later than the estimate, down 0.19 % when earlier, which balances where
 * 3 % of wake-ups are later, i.e. at the 97th percentile. Steps bounded by
 * the estimate itself keep a rare wake-up that is milliseconds late (which
 * no spin should try to cover) from dragging it up. */
static void spin_learn(Pacing *p, int64_t late) {
        int64_t e = p->wake_late_nsec;
        if (late > e)
                e += e * 97 / 1600 + 1;
        else
                e -= e * 3 / 1600;
        p->wake_late_nsec = e;
        p->spin_nsec = MIN(MAX(e + SPIN_MARGIN_NSEC, SPIN_MIN_NSEC), SPIN_MAX_NSEC);
}

/*
 * Real-time scheduling for the last stretch before a packet. On a busy
 * machine the sender's wake-up waits behind whatever else runs on its CPU,
 * for milliseconds; as SCHED_FIFO it preempts at once. The sender becomes
 * SCHED_FIFO (priority 1) just before its last sleep and goes back to
 * SCHED_OTHER as soon as a packet is due without a sleep before it
 * (role-sender.c), so it holds the CPU for a spin, one send() and the
 * preparation of the next packet at most, never for a stretch of packets
 * sent back to back: the receiver and owampd on the same CPUs cannot be
 * starved. Needs CAP_SYS_NICE or RLIMIT_RTPRIO >= 1 (LimitRTPRIO=1 and
 * RestrictRealtime=no in a unit); without either the sender stays
 * SCHED_OTHER.
 */
static void realtime_probe(Session *s) {
        struct sched_param p = { .sched_priority = 1 };
        s->pacing.realtime_allowed = sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &p) == 0;
        if (s->pacing.realtime_allowed) {
                p.sched_priority = 0;
                (void) sched_setscheduler(0, SCHED_OTHER, &p);
        }
        log_full(LOG_DEBUG, 0, &s->log, "Sender pacing %s real-time scheduling",
                 s->pacing.realtime_allowed ? "with" : "without");
}

static void realtime_enter(Pacing *pc) {
        struct sched_param p = { .sched_priority = 1 };
        if (pc->realtime_allowed && !pc->realtime)
                pc->realtime = sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &p) == 0;
}

void pacing_realtime_leave(Session *s) {
        struct sched_param p = { .sched_priority = 0 };
        if (s->pacing.realtime && sched_setscheduler(0, SCHED_OTHER, &p) == 0)
                s->pacing.realtime = false;
}

/* OWAMP_PACING (pacing.h): precise (the default) or efficient. */
static bool pacing_efficient(Session *s) {
        const char *v = getenv("OWAMP_PACING");
        if (!v || streq(v, "") || streq(v, "precise"))
                return false;
        if (streq(v, "efficient"))
                return true;
        log_full(LOG_WARNING, 0, &s->log,
                 "OWAMP_PACING=%s is neither precise nor efficient: pacing precisely", v);
        return false;
}

void pacing_init(Session *s) {
        s->pacing.efficient = pacing_efficient(s);
        s->pacing.wake_late_nsec = SPIN_INITIAL_NSEC - SPIN_MARGIN_NSEC;
        s->pacing.spin_nsec = SPIN_INITIAL_NSEC;
        realtime_probe(s);
        log_full(LOG_DEBUG, 0, &s->log, "Sender pacing %s",
                 s->pacing.efficient ? "efficient (sleeping to the due time)" : "precise");
}

/* How long to spin before `due_ns` in precise pacing: the learned quantile
 * of the wake-up latency, but never more than half the interval since the
 * previous due time (at 10,000 packets/s the quantile alone is most of
 * every interval, and a sender that spins longer than it sleeps pays for a
 * wake-up and a busy core both). Efficient pacing spins only where a sleep
 * would end after the due time (wait_until()). */
static int64_t spin_for(Pacing *pc, int64_t due_ns) {
        int64_t spin = pc->spin_nsec;
        if (pc->prev_due_nsec > 0 && due_ns > pc->prev_due_nsec)
                spin = MIN(spin, (due_ns - pc->prev_due_nsec) / 2);
        return spin;
}

int wait_until(Session *s, OwTimestamp due) {
        Pacing *pc = &s->pacing;
        struct timespec deadline;
        owts_to_realtime(s, due, &deadline);
        int64_t due_ns = timespec_nsec(&deadline);
        int64_t spin = pc->efficient ? 0 : spin_for(pc, due_ns);
        pc->prev_due_nsec = due_ns;

        for (;;) {
                int64_t left = due_ns - realtime_nsec();
                /* Not a sleep that would end after the due time anyway (at
                 * 100,000 packets/s every interval is shorter than a
                 * wake-up): spin the rest, in either pacing. */
                if (left <= spin || left < pc->wake_late_nsec)
                        break;
                if (left > FINAL_SLEEP_NSEC + spin) {
                        /* Long wait: sleep on the control socket. */
                        int r = controller_sleep(s,
                                                 MIN(left - spin - FINAL_SLEEP_NSEC, LONG_SLEEP_MAX_NSEC));
                        if (r < 0)
                                return r;
                        if (s->stop_requested)
                                return 1;
                        continue;
                }
                int64_t wake = due_ns - spin;
                struct timespec w = nsec_timespec(wake);
                realtime_enter(pc);
                if (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &w, NULL) == 0)
                        spin_learn(pc, realtime_nsec() - wake);
        }

        /* Spin the last stretch. */
        while (realtime_nsec() < due_ns)
                cpu_relax();
        return 0;
}
