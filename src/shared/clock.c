/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "macro.h"

int clock_offset_from_env(int64_t *ret_nsec) {
        const char *e = getenv("OWAMP_DEBUG_TIMEOFFSET");
        char *end;

        *ret_nsec = 0;
        if (isempty(e))
                return 0;
        errno = 0;
        double v = strtod(e, &end);
        if (errno || end == e || *end || !(v >= -1e9 && v <= 1e9))
                return -EINVAL;
        *ret_nsec = (int64_t) (v * 1e9);
        return 0;
}

OwTimestamp clock_now(int64_t offset_nsec) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return ow_timestamp_from_timespec_shifted(&ts, offset_nsec);
}
