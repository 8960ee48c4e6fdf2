/* SPDX-License-Identifier: Apache-2.0 */
#include <sys/timex.h>

#include "ow-error.h"
#include "ow-time.h"

uint32_t ow_frac_from_nsec(uint32_t nsec) {
        /* nsec < 2^30, so nsec << 32 < 2^62: no overflow. */
        return (uint32_t) (((uint64_t) nsec << 32) / OW_NSEC_PER_SEC);
}

uint32_t ow_frac_to_nsec(uint32_t frac) {
        return (uint32_t) (((uint64_t) frac * OW_NSEC_PER_SEC) >> 32);
}

OwTimestamp ow_timestamp_from_timespec(const struct timespec *ts) {
        uint64_t sec = (uint64_t) ts->tv_sec + OW_NTP_UNIX_OFFSET_SEC;
        uint32_t nsec = (uint32_t) ts->tv_nsec % (uint32_t) OW_NSEC_PER_SEC;

        /* NTP era 0 ends in 2036; keep the low 32 bits of seconds as RFC 5905
         * does, so timestamps after the wrap stay meaningful modulo 2^32. */
        return (sec << 32) | ow_frac_from_nsec(nsec);
}

void ow_timestamp_to_timespec(OwTimestamp t, struct timespec *ret) {
        ret->tv_sec = (time_t) ((int64_t) (t >> 32) - (int64_t) OW_NTP_UNIX_OFFSET_SEC);
        ret->tv_nsec = (long) ow_frac_to_nsec((uint32_t) t);
}

static struct timespec timespec_add_nsec(struct timespec t, int64_t d) {
        int64_t ns = (int64_t) t.tv_nsec + d % (int64_t) OW_NSEC_PER_SEC;

        t.tv_sec += (time_t) (d / (int64_t) OW_NSEC_PER_SEC);
        if (ns >= (int64_t) OW_NSEC_PER_SEC) {
                ns -= (int64_t) OW_NSEC_PER_SEC;
                t.tv_sec++;
        } else if (ns < 0) {
                ns += (int64_t) OW_NSEC_PER_SEC;
                t.tv_sec--;
        }
        t.tv_nsec = (long) ns;
        return t;
}

OwTimestamp ow_timestamp_from_timespec_shifted(const struct timespec *ts, int64_t offset_nsec) {
        struct timespec t = timespec_add_nsec(*ts, offset_nsec);
        return ow_timestamp_from_timespec(&t);
}

void ow_timestamp_to_timespec_shifted(OwTimestamp t, int64_t offset_nsec, struct timespec *ret) {
        struct timespec ts;
        ow_timestamp_to_timespec(t, &ts);
        *ret = timespec_add_nsec(ts, -offset_nsec);
}

OwTimestamp ow_duration_from_nsec(uint64_t nsec) {
        uint64_t sec = nsec / OW_NSEC_PER_SEC;
        uint32_t rem = (uint32_t) (nsec % OW_NSEC_PER_SEC);

        if (sec > UINT32_MAX)
                return UINT64_MAX;
        return (sec << 32) | ow_frac_from_nsec(rem);
}

uint64_t ow_duration_to_nsec(OwTimestamp d) {
        return (d >> 32) * OW_NSEC_PER_SEC + ow_frac_to_nsec((uint32_t) d);
}

OwTimestamp ow_duration_from_usec(uint64_t usec) {
        if (usec > UINT64_MAX / 1000)
                return UINT64_MAX;
        return ow_duration_from_nsec(usec * 1000);
}

uint64_t ow_duration_to_usec(OwTimestamp d) {
        return ow_duration_to_nsec(d) / 1000;
}

int64_t ow_timestamp_diff_nsec(OwTimestamp a, OwTimestamp b) {
        if (a >= b) {
                uint64_t d = ow_duration_to_nsec(a - b);
                return d > INT64_MAX ? INT64_MAX : (int64_t) d;
        }
        uint64_t d = ow_duration_to_nsec(b - a);
        return d > INT64_MAX ? -INT64_MAX : -(int64_t) d;
}

int ow_errest_check(OwErrEst e) {
        return ow_errest_multiplier(e) == 0 ? -OW_ERR_ERREST : 0;
}

int ow_errest_make(bool sync, unsigned scale, unsigned multiplier, OwErrEst *ret) {
        if (multiplier == 0 || multiplier > 0xff || scale > 0x3f)
                return -OW_ERR_ERREST;
        *ret = (OwErrEst) ((sync ? OW_ERREST_S_BIT : 0) | scale << 8 | multiplier);
        return 0;
}

OwErrEst ow_errest_from_usec(bool sync, uint64_t err_us) {
        if (!sync)
                return OW_ERREST_UNSYNC;
        if (err_us == 0)
                err_us = 1;
        /* Anything over ~2^31 s does not fit the 32.32 intermediate; such a
         * bound is meaningless anyway, so saturate. */
        if (err_us > (UINT64_MAX >> 32))
                err_us = UINT64_MAX >> 32;

        uint64_t e = (err_us << 32) / OW_USEC_PER_SEC;
        unsigned scale = 0;
        while (e >= 0xff) {
                e >>= 1;
                scale++;
        }
        /* e < 255, so e + 1 <= 255 fits the multiplier and is never 0;
         * scale <= 64 - 8, within the 6-bit field. */
        return (OwErrEst) (OW_ERREST_S_BIT | scale << 8 | (unsigned) (e + 1));
}

OwErrEst ow_errest_from_timex(int adjtime_rc, const struct timex *tx) {
        bool sync = adjtime_rc != TIME_ERROR && adjtime_rc >= 0 && !(tx->status & STA_UNSYNC);

        return ow_errest_from_usec(sync, tx->esterror > 0 ? (uint64_t) tx->esterror : 0);
}

double ow_errest_to_seconds(OwErrEst e) {
        double m = ow_errest_multiplier(e);
        int exp = (int) ow_errest_scale(e) - 32;

        /* ldexp without libm: scale by powers of two. */
        while (exp > 0) {
                m *= 2.0;
                exp--;
        }
        while (exp < 0) {
                m /= 2.0;
                exp++;
        }
        return m;
}
