/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The one internal time type: OwTimestamp, an unsigned 64-bit NTP 32.32
 * fixed-point value (RFC 4656 4.1.2, RFC 5905 6). Absolute times count from
 * 1900-01-01 00:00 UTC; durations (Timeout, slot parameters, gaps) use the
 * same unit. 2^-32 s is about 0.23 ns, finer than any clock we read.
 *
 * Conversions use integer arithmetic only.
 */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ow-wire.h"

struct timex;

typedef uint64_t OwTimestamp;

/* Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (RFC 5905 figure 4). */
#define OW_NTP_UNIX_OFFSET_SEC UINT64_C(2208988800)
#define OW_NSEC_PER_SEC UINT64_C(1000000000)
#define OW_USEC_PER_SEC UINT64_C(1000000)
#define OW_TIMESTAMP_SIZE 8

#define OW_TIMESTAMP_FROM_SEC(s) ((OwTimestamp) (s) << 32)

static inline OwTimestamp ow_timestamp_get(const uint8_t *p) {
        return ow_get_be64(p);
}

static inline void ow_timestamp_put(uint8_t *p, OwTimestamp t) {
        ow_put_be64(p, t);
}

/* Fraction <-> nanoseconds as the reference converts them (PROTOCOL.md 2.1):
 * frac = (ns << 32) / 1e9 truncating, ns = (frac * 1e9) >> 32. */
uint32_t ow_frac_from_nsec(uint32_t nsec);
uint32_t ow_frac_to_nsec(uint32_t frac);

/* Absolute CLOCK_REALTIME time <-> NTP timestamp. Times before 1970 or after
 * NTP era 0 (2036) are not representable in this direction of the helper and
 * are not representable; 2036 is handled by keeping to era 0 arithmetic
 * modulo 2^32 seconds, as every OWAMP implementation does. */
OwTimestamp ow_timestamp_from_timespec(const struct timespec *ts);
void ow_timestamp_to_timespec(OwTimestamp t, struct timespec *ret);

/* The same for a clock that reads offset_nsec ahead of CLOCK_REALTIME
 * (OWAMP_DEBUG_TIMEOFFSET): from_..._shifted(ts) is the shifted clock's
 * reading when CLOCK_REALTIME reads ts; to_..._shifted() is its inverse,
 * the CLOCK_REALTIME time at which the shifted clock reads t. */
OwTimestamp ow_timestamp_from_timespec_shifted(const struct timespec *ts, int64_t offset_nsec);
void ow_timestamp_to_timespec_shifted(OwTimestamp t, int64_t offset_nsec, struct timespec *ret);

/* Durations. */
OwTimestamp ow_duration_from_nsec(uint64_t nsec);
uint64_t ow_duration_to_nsec(OwTimestamp d);
OwTimestamp ow_duration_from_usec(uint64_t usec);
uint64_t ow_duration_to_usec(OwTimestamp d);

/* Unix seconds of an NTP timestamp (whole seconds, truncated). */
static inline int64_t ow_timestamp_unix_sec(OwTimestamp t) {
        return (int64_t) (t >> 32) - (int64_t) OW_NTP_UNIX_OFFSET_SEC;
}

/* Signed difference a - b in nanoseconds (saturating at +-INT64_MAX). */
int64_t ow_timestamp_diff_nsec(OwTimestamp a, OwTimestamp b);

/*
 * Error Estimate, 2 octets (RFC 4656 4.1.2):
 *   S (1 bit) | Z (1 bit) | Scale (6 bits) | Multiplier (8 bits)
 * error = Multiplier * 2^(Scale - 32) seconds. Multiplier 0 is invalid.
 */
typedef uint16_t OwErrEst;

#define OW_ERREST_SIZE 2
#define OW_ERREST_S_BIT UINT16_C(0x8000)
#define OW_ERREST_Z_BIT UINT16_C(0x4000)
/* What the reference emits for an unsynchronised clock, and for the send
 * estimate of a lost-packet record (PROTOCOL.md 7.5, 9). */
#define OW_ERREST_UNSYNC ((OwErrEst) 0x0001)

static inline bool ow_errest_sync(OwErrEst e) {
        return e & OW_ERREST_S_BIT;
}
static inline unsigned ow_errest_scale(OwErrEst e) {
        return (e >> 8) & 0x3f;
}
static inline unsigned ow_errest_multiplier(OwErrEst e) {
        return e & 0xff;
}

static inline OwErrEst ow_errest_get(const uint8_t *p) {
        return ow_get_be16(p);
}
static inline void ow_errest_put(uint8_t *p, OwErrEst e) {
        ow_put_be16(p, e);
}

/* 0 if e may appear on the wire, -OW_ERR_ERREST if its multiplier is 0. */
int ow_errest_check(OwErrEst e);

/* Build an estimate; -OW_ERR_ERREST for multiplier 0 or scale > 63. */
int ow_errest_make(bool sync, unsigned scale, unsigned multiplier, OwErrEst *ret);

/* The reference's encoding of an error bound in microseconds (PROTOCOL.md 9):
 * e = (err_us << 32) / 1e6, shifted right until below 255 (shifts = Scale),
 * Multiplier = shifted + 1. A synchronised clock with err_us == 0 uses 1 us.
 * Unsynchronised clocks give OW_ERREST_UNSYNC, as the reference does. */
OwErrEst ow_errest_from_usec(bool sync, uint64_t err_us);

/* The estimate for a clock, given what ntp_adjtime(2) returned and filled
 * in. S is set only when the return value is not TIME_ERROR and STA_UNSYNC
 * is clear; the value comes from esterror. Never returns multiplier 0. */
OwErrEst ow_errest_from_timex(int adjtime_rc, const struct timex *tx);

/* The estimate in seconds (for reports only). */
double ow_errest_to_seconds(OwErrEst e);
