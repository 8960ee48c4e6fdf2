/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The programs' clock: CLOCK_REALTIME as an NTP timestamp, shifted by
 * OWAMP_DEBUG_TIMEOFFSET for tests of what clock offsets do. */

#include <stdint.h>

#include "ow-time.h"

/* OWAMP_DEBUG_TIMEOFFSET in nanoseconds (0 when unset or empty); -EINVAL
 * when it is not a decimal number of seconds within +-1e9. */
int clock_offset_from_env(int64_t *ret_nsec);

OwTimestamp clock_now(int64_t offset_nsec);
