/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Addresses and sockets for the programs: parsing "node:port" the way the
 * reference's tools take it, sockaddr <-> OWAMP 16-octet address fields,
 * IPv4-mapped IPv6 normalisation and binding test sockets in a port range. */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "macro.h"

#define OWAMP_CONTROL_PORT 861 /* IANA "owamp-control", RFC 4656 2 */

typedef union SockAddr {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage storage;
} SockAddr;

static inline socklen_t sockaddr_len(const SockAddr *a) {
        return a->sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/*
 * Split "node:port", "[v6addr]:port", "[v6addr]", ":port" (wildcard),
 * "node" or a bare IPv6 address. *ret_node is NULL for the wildcard.
 * Returns -EINVAL for malformed input (bad brackets, bad port).
 */
int net_split_node(const char *spec, uint16_t default_port, char **ret_node, uint16_t *ret_port);

/* Resolve node (NULL = wildcard when passive) to one or more addresses. */
int net_resolve(const char *node, uint16_t port, int family, bool passive, SockAddr **ret, size_t *ret_n);

/* Turn ::ffff:a.b.c.d into a.b.c.d (port kept). No-op for anything else. */
void sockaddr_unmap_v4(SockAddr *a);

bool sockaddr_equal(const SockAddr *a, const SockAddr *b); /* address and port */
bool sockaddr_equal_addr(const SockAddr *a, const SockAddr *b);
uint16_t sockaddr_port(const SockAddr *a);
void sockaddr_set_port(SockAddr *a, uint16_t port);
bool sockaddr_is_any(const SockAddr *a);

/* "192.0.2.1" / "2001:db8::1" (no port), and "192.0.2.1:861" /
 * "[2001:db8::1]:861". buf must hold SOCKADDR_STR_MAX. */
#define SOCKADDR_STR_MAX (INET6_ADDRSTRLEN + 16)
const char *sockaddr_addr_str(const SockAddr *a, char *buf, size_t size);
const char *sockaddr_str(const SockAddr *a, char *buf, size_t size);

/* OWAMP Request-Session address fields (RFC 4656 3.5): IPVN 4 puts the
 * address in the first 4 octets and zeros the rest; IPVN 6 uses all 16. */
int sockaddr_to_owamp(const SockAddr *a, uint8_t *ret_ipvn, uint8_t ret_addr[16]);
int sockaddr_from_owamp(uint8_t ipvn, const uint8_t addr[16], uint16_t port, SockAddr *ret);

/*
 * Create a UDP socket bound to `local` (its port ignored) on a port from
 * low..high, starting at a random offset and probing linearly as the
 * reference does; low == high == 0 means an ephemeral port. Returns the fd
 * (SOCK_CLOEXEC) and the port, or -EADDRINUSE when the range is exhausted.
 */
int udp_bind_in_range(const SockAddr *local, uint16_t low, uint16_t high, uint16_t *ret_port);

/* Parse a port range "low-high", "port" or "0". */
int net_parse_port_range(const char *s, uint16_t *ret_low, uint16_t *ret_high);
