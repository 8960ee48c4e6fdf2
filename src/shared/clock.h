/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The programs' clock: CLOCK_REALTIME as an NTP timestamp, shifted by
 * OWAMP_DEBUG_TIMEOFFSET for tests of what clock offsets do. */

#include <stddef.h>
#include <stdint.h>

#include "ow-time.h"

/* Environment variable name as a decimal number of seconds from min to
 * max, in nanoseconds: dflt when unset or empty, -EINVAL (and *ret_nsec
 * untouched) when malformed or out of range. */
int env_seconds_nsec(const char *name, double min, double max, int64_t dflt, int64_t *ret_nsec);

/* OWAMP_DEBUG_TIMEOFFSET in nanoseconds (0 when unset or empty); -EINVAL
 * when it is not a decimal number of seconds within +-1e9. */
int clock_offset_from_env(int64_t *ret_nsec);

OwTimestamp clock_now(int64_t offset_nsec);

/* For tests only: OWAMP_DEBUG_CLOCK_STEP="AFTER:STEP" (decimal seconds)
 * makes a session worker's clock jump by STEP (-1e6 < STEP < 1e6, not 0)
 * AFTER seconds (0 < AFTER <= 1e6) after the worker started, as if the
 * system clock had been stepped, without touching the machine's clock.
 * 0 with both set to 0 when unset or empty; -EINVAL when malformed. */
int clock_step_from_env(int64_t *ret_after_nsec, int64_t *ret_step_nsec);

/* For tests only: the steps of OWAMP_DEBUG_CLOCK_STEPS (a program's own
 * clock, not its workers'): "AFTER:STEP[,AFTER:STEP...]" in decimal
 * seconds, each AFTER (0 < AFTER <= 1e6) from the program's start, each
 * STEP (-1e6 < STEP < 1e6, not 0) added to the ones before once its
 * AFTER has passed. */
#define CLOCK_DEBUG_STEPS_MAX 8

typedef struct ClockDebugSteps {
        int64_t base_nsec; /* CLOCK_MONOTONIC at the program's start */
        size_t n;
        int64_t after_nsec[CLOCK_DEBUG_STEPS_MAX];
        int64_t step_nsec[CLOCK_DEBUG_STEPS_MAX];
} ClockDebugSteps;

/* Parses the variable (n = 0 when unset or empty); -EINVAL when malformed
 * or with more than CLOCK_DEBUG_STEPS_MAX steps. */
int clock_debug_steps_from_env(ClockDebugSteps *ret);

/* The sum of the steps whose time has come. */
int64_t clock_debug_steps_offset(const ClockDebugSteps *d);
