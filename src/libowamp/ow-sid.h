/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Session identifiers (RFC 4656 3.5, PROTOCOL.md 2.3). The receiver of a
 * session makes the SID:
 *
 *   octets 0..3    the receiver's IPv4 address; for IPv6 the last 4 octets
 *                  of the address, as the reference does
 *   octets 4..11   NTP timestamp of the creation
 *   octets 12..15  random
 *
 * The peer treats it as opaque. The current time and the random octets are
 * parameters: the core reads no clock and no random source.
 */

#include <stdbool.h>
#include <sys/socket.h>

#include "ow-time.h"
#include "ow-types.h"

#define OW_SID_RANDOM_SIZE 4
#define OW_SID_HEX_SIZE (2 * OW_SID_SIZE + 1)

/* Build a SID for a receiver whose address (family AF_INET: 4 octets,
 * AF_INET6: 16 octets) is at addr. Returns -EAFNOSUPPORT for any other
 * family. */
int ow_sid_make(int family, const void *addr, OwTimestamp now,
                const uint8_t random[static OW_SID_RANDOM_SIZE], OwSid *ret);

/* The same from a socket address (sockaddr_in or sockaddr_in6, e.g. the
 * local address of the receiving socket). -EINVAL if salen is too short for
 * the family, -EAFNOSUPPORT for other families. */
int ow_sid_make_from_sockaddr(const struct sockaddr *sa, socklen_t salen, OwTimestamp now,
                              const uint8_t random[static OW_SID_RANDOM_SIZE], OwSid *ret);

/* The creation time stored in a SID. */
OwTimestamp ow_sid_timestamp(const OwSid *sid);

/* All 16 octets zero: the "no SID yet" value of a Request-Session in which
 * the server is the receiver. */
bool ow_sid_is_null(const OwSid *sid);

bool ow_sid_equal(const OwSid *a, const OwSid *b);

/* 32 lower-case hex digits and a NUL, as in the reference's file names. */
const char *ow_sid_to_hex(const OwSid *sid, char buf[static OW_SID_HEX_SIZE]);

/* The reverse, for the names of stored session files: exactly 32 hex
 * digits of either case (n is the length of s). -OW_ERR_HEX otherwise. */
int ow_sid_from_hex(const char *s, size_t n, OwSid *ret);
