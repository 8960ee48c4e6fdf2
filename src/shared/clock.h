/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The programs' clock: CLOCK_REALTIME as an NTP timestamp, shifted by
 * OWAMP_DEBUG_TIMEOFFSET for tests of what clock offsets do. */

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
