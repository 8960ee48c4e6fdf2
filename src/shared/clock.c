/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "macro.h"

static int seconds_to_nsec(const char *p, char **end, double min, double max, int64_t *ret) {
        errno = 0;
        double v = strtod(p, end);
        if (errno || *end == p || !(v >= min && v <= max))
                return -EINVAL;
        *ret = (int64_t) (v * 1e9);
        return 0;
}

int env_seconds_nsec(const char *name, double min, double max, int64_t dflt, int64_t *ret_nsec) {
        const char *e = getenv(name);
        int64_t v;
        char *end;

        if (isempty(e)) {
                *ret_nsec = dflt;
                return 0;
        }
        if (seconds_to_nsec(e, &end, min, max, &v) < 0 || *end)
                return -EINVAL;
        *ret_nsec = v;
        return 0;
}

int clock_offset_from_env(int64_t *ret_nsec) {
        return env_seconds_nsec("OWAMP_DEBUG_TIMEOFFSET", -1e9, 1e9, 0, ret_nsec);
}

int clock_step_from_env(int64_t *ret_after_nsec, int64_t *ret_step_nsec) {
        const char *e = getenv("OWAMP_DEBUG_CLOCK_STEP");
        int64_t after, step;
        char *end;

        *ret_after_nsec = *ret_step_nsec = 0;
        if (isempty(e))
                return 0;
        if (seconds_to_nsec(e, &end, 0, 1e6, &after) < 0 || after <= 0 || *end != ':')
                return -EINVAL;
        if (seconds_to_nsec(end + 1, &end, -1e6, 1e6, &step) < 0 || step == 0 || *end)
                return -EINVAL;
        *ret_after_nsec = after;
        *ret_step_nsec = step;
        return 0;
}

OwTimestamp clock_now(int64_t offset_nsec) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return ow_timestamp_from_timespec_shifted(&ts, offset_nsec);
}
