/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Unit conversions, named once for the whole tree (systemd's time-util.h
 * does the same): write `5 * USEC_PER_SEC`, never `5 * 1000000` or
 * `1e6`. All unsigned 64-bit, so products of a few seconds' worth do not
 * overflow an int on the way.
 */

#include <stdint.h>

#define NSEC_PER_USEC UINT64_C(1000)
#define NSEC_PER_MSEC UINT64_C(1000000)
#define NSEC_PER_SEC UINT64_C(1000000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define MSEC_PER_SEC UINT64_C(1000)

#define USEC_PER_MINUTE (UINT64_C(60) * USEC_PER_SEC)
