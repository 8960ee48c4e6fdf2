/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Time for a session endpoint: its clock (CLOCK_REALTIME shifted by the
 * debug offsets of the tests), the error estimate of its timestamps
 * (adjtimex(), and steps of the clock seen during the session), and the
 * sender's pacing: sleep until just before a due time, spin the rest, with
 * real-time scheduling for the last stretch when allowed.
 */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ow-time.h"
#include "units.h"

typedef struct Session Session;

typedef struct SessionClock {
        OwErrEst errest;
        int64_t errest_at; /* monotonic ns of the last refresh */

        /* Clock steps (pacing_clock_watch()): realtime - monotonic when last looked. */
        bool watched;
        int64_t gap_nsec, watched_at;
        int64_t stepped_nsec; /* sum of the steps seen, in absolute value */
        /* OWAMP_DEBUG_CLOCK_STEP (tests): CLOCK_MONOTONIC ns from which the
         * clock reads debug_step_nsec more; 0: never. */
        int64_t debug_step_at, debug_step_nsec;
} SessionClock;

typedef struct Pacing {
        int64_t wake_late_nsec; /* tracked high quantile of clock_nanosleep's overshoot */
        int64_t spin_nsec;
        int64_t prev_due_nsec;      /* CLOCK_REALTIME ns of the previous wait_until(); 0: none */
        bool efficient;             /* OWAMP_PACING=efficient: sleep, spin only what a sleep cannot */
        int64_t control_checked_at; /* CLOCK_REALTIME ns */
        bool realtime_allowed;      /* SCHED_FIFO may be used, see pacing_realtime_enter() */
        bool realtime;              /* running SCHED_FIFO now */
} Pacing;

/* Inline: the sender reads the clocks several times per packet. */
static inline int64_t timespec_nsec(const struct timespec *ts) {
        return (int64_t) ts->tv_sec * (int64_t) NSEC_PER_SEC + ts->tv_nsec;
}

static inline struct timespec nsec_timespec(int64_t nsec) {
        return (struct timespec){ .tv_sec = nsec / (int64_t) NSEC_PER_SEC,
                                  .tv_nsec = nsec % (int64_t) NSEC_PER_SEC };
}

static inline int64_t mono_nsec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return timespec_nsec(&ts);
}

static inline int64_t realtime_nsec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return timespec_nsec(&ts);
}

/* nsec rounded to the nearest millisecond, halves away from zero. */
int64_t ms_rounded(int64_t nsec);

/* Look for a step of the clock since the last look; true (and a warning
 * logged) when there was one. */
bool pacing_clock_watch(Session *s);
/* The error estimate of a timestamp taken now. */
OwErrEst current_errest(Session *s);

/* The sender's pacing: start state, SCHED_FIFO probe, and the mode from the
 * environment, OWAMP_PACING: "precise" (the default) sleeps to just before
 * each due time and spins the rest, for a lateness of a few us at a CPU
 * cost of the spin; "efficient" sleeps to the due time itself, so a
 * packet is as late as the kernel's wake-up (tens of us in a VM) and the
 * sender costs what one wake-up per packet does. Either spins where less
 * time is left than a wake-up takes (high rates). */
void pacing_init(Session *s);
void pacing_realtime_leave(Session *s);

/* Sleep until our clock reads `due`, watching the controller during long
 * waits; returns early (1) if a STOP arrived, 0 at due, or a negative
 * errno. The last spin_nsec are spun so the wake-up latency of the kernel
 * timer does not delay the packet. */
int wait_until(Session *s, OwTimestamp due);
