/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "macro.h"
#include "units.h"

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

static int64_t monotonic_nsec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * (int64_t) NSEC_PER_SEC + ts.tv_nsec;
}

int clock_debug_steps_from_env(ClockDebugSteps *ret) {
        const char *e = getenv("OWAMP_DEBUG_CLOCK_STEPS");
        ClockDebugSteps d = { .base_nsec = monotonic_nsec() };
        char *end;

        if (!isempty(e))
                for (const char *p = e;; p = end + 1) {
                        int64_t after, step;
                        if (d.n == CLOCK_DEBUG_STEPS_MAX)
                                return -EINVAL;
                        if (seconds_to_nsec(p, &end, 0, 1e6, &after) < 0 || after <= 0 || *end != ':')
                                return -EINVAL;
                        if (seconds_to_nsec(end + 1, &end, -1e6, 1e6, &step) < 0 || step == 0 ||
                            (*end && *end != ','))
                                return -EINVAL;
                        d.after_nsec[d.n] = after;
                        d.step_nsec[d.n] = step;
                        d.n++;
                        if (!*end)
                                break;
                }
        *ret = d;
        return 0;
}

int64_t clock_debug_steps_offset(const ClockDebugSteps *d) {
        int64_t off = 0;

        if (d->n == 0)
                return 0;
        int64_t elapsed = monotonic_nsec() - d->base_nsec;
        for (size_t i = 0; i < d->n; i++)
                if (elapsed >= d->after_nsec[i])
                        off += d->step_nsec[i];
        return off;
}
