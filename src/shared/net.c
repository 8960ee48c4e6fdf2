/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "net.h"

static int parse_port(const char *s, uint16_t *ret) {
        char *end;
        unsigned long v;

        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

int net_split_node(const char *spec, uint16_t default_port, char **ret_node, uint16_t *ret_port) {
        _cleanup_free_ char *node = NULL;
        uint16_t port = default_port;
        int r;

        if (!spec || !*spec)
                return -EINVAL;

        if (spec[0] == '[') {
                const char *close = strchr(spec, ']');
                if (!close || close == spec + 1)
                        return -EINVAL;
                node = strndup(spec + 1, (size_t) (close - spec - 1));
                if (!node)
                        return -ENOMEM;
                if (close[1] == ':') {
                        r = parse_port(close + 2, &port);
                        if (r < 0)
                                return r;
                } else if (close[1] != '\0')
                        return -EINVAL;
        } else {
                const char *colon = strchr(spec, ':');
                if (colon && strchr(colon + 1, ':')) {
                        /* More than one colon and no brackets: a bare IPv6 address. */
                        node = strdup(spec);
                        if (!node)
                                return -ENOMEM;
                } else if (colon) {
                        r = parse_port(colon + 1, &port);
                        if (r < 0)
                                return r;
                        if (colon != spec) {
                                node = strndup(spec, (size_t) (colon - spec));
                                if (!node)
                                        return -ENOMEM;
                        }
                } else {
                        node = strdup(spec);
                        if (!node)
                                return -ENOMEM;
                }
        }

        *ret_node = TAKE_PTR(node);
        *ret_port = port;
        return 0;
}

int net_resolve(const char *node, uint16_t port, int family, bool passive, SockAddr **ret, size_t *ret_n) {
        struct addrinfo hints = {
                .ai_family = family,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = (passive ? AI_PASSIVE : 0) | AI_ADDRCONFIG,
        };
        struct addrinfo *res = NULL;
        char service[8];
        int r;

        snprintf(service, sizeof(service), "%u", port);
        r = getaddrinfo(node, service, &hints, &res);
        if (r == EAI_ADDRFAMILY || r == EAI_NONAME || r == EAI_NODATA) {
                /* AI_ADDRCONFIG hides ::1 on hosts whose only IPv6 address is
                 * loopback; try again without it before giving up. */
                hints.ai_flags &= ~AI_ADDRCONFIG;
                r = getaddrinfo(node, service, &hints, &res);
        }
        if (r != 0)
                return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;

        size_t n = 0;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
                if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
                        n++;
        if (n == 0) {
                freeaddrinfo(res);
                return -EADDRNOTAVAIL;
        }
        SockAddr *a = calloc(n, sizeof(*a));
        if (!a) {
                freeaddrinfo(res);
                return -ENOMEM;
        }
        size_t i = 0;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
                if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
                        memcpy(&a[i++], ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(res);
        *ret = a;
        *ret_n = n;
        return 0;
}

void sockaddr_unmap_v4(SockAddr *a) {
        if (a->sa.sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr))
                return;
        struct sockaddr_in in = {
                .sin_family = AF_INET,
                .sin_port = a->in6.sin6_port,
        };
        memcpy(&in.sin_addr, a->in6.sin6_addr.s6_addr + 12, 4);
        memset(a, 0, sizeof(*a));
        a->in = in;
}

bool sockaddr_equal_addr(const SockAddr *a, const SockAddr *b) {
        if (a->sa.sa_family != b->sa.sa_family)
                return false;
        if (a->sa.sa_family == AF_INET)
                return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        if (a->sa.sa_family == AF_INET6)
                return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
        return false;
}

bool sockaddr_equal(const SockAddr *a, const SockAddr *b) {
        return sockaddr_equal_addr(a, b) && sockaddr_port(a) == sockaddr_port(b);
}

uint16_t sockaddr_port(const SockAddr *a) {
        if (a->sa.sa_family == AF_INET)
                return ntohs(a->in.sin_port);
        if (a->sa.sa_family == AF_INET6)
                return ntohs(a->in6.sin6_port);
        return 0;
}

void sockaddr_set_port(SockAddr *a, uint16_t port) {
        if (a->sa.sa_family == AF_INET)
                a->in.sin_port = htons(port);
        else if (a->sa.sa_family == AF_INET6)
                a->in6.sin6_port = htons(port);
}

bool sockaddr_is_any(const SockAddr *a) {
        if (a->sa.sa_family == AF_INET)
                return a->in.sin_addr.s_addr == htonl(INADDR_ANY);
        if (a->sa.sa_family == AF_INET6)
                return IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr);
        return false;
}

const char *sockaddr_addr_str(const SockAddr *a, char *buf, size_t size) {
        const void *src = a->sa.sa_family == AF_INET6 ? (const void *) &a->in6.sin6_addr
                                                      : (const void *) &a->in.sin_addr;
        if (!inet_ntop(a->sa.sa_family, src, buf, (socklen_t) size))
                snprintf(buf, size, "?");
        return buf;
}

const char *sockaddr_str(const SockAddr *a, char *buf, size_t size) {
        char tmp[INET6_ADDRSTRLEN];
        sockaddr_addr_str(a, tmp, sizeof(tmp));
        if (a->sa.sa_family == AF_INET6)
                snprintf(buf, size, "[%s]:%u", tmp, sockaddr_port(a));
        else
                snprintf(buf, size, "%s:%u", tmp, sockaddr_port(a));
        return buf;
}

int sockaddr_to_owamp(const SockAddr *a, uint8_t *ret_ipvn, uint8_t ret_addr[16]) {
        memset(ret_addr, 0, 16);
        if (a->sa.sa_family == AF_INET) {
                memcpy(ret_addr, &a->in.sin_addr, 4);
                *ret_ipvn = 4;
                return 0;
        }
        if (a->sa.sa_family == AF_INET6) {
                memcpy(ret_addr, &a->in6.sin6_addr, 16);
                *ret_ipvn = 6;
                return 0;
        }
        return -EAFNOSUPPORT;
}

int sockaddr_from_owamp(uint8_t ipvn, const uint8_t addr[16], uint16_t port, SockAddr *ret) {
        memset(ret, 0, sizeof(*ret));
        if (ipvn == 4) {
                ret->in.sin_family = AF_INET;
                memcpy(&ret->in.sin_addr, addr, 4);
                ret->in.sin_port = htons(port);
                return 0;
        }
        if (ipvn == 6) {
                ret->in6.sin6_family = AF_INET6;
                memcpy(&ret->in6.sin6_addr, addr, 16);
                ret->in6.sin6_port = htons(port);
                /* A v4-mapped address in an IPv6 request is an IPv4 peer. */
                sockaddr_unmap_v4(ret);
                return 0;
        }
        return -EAFNOSUPPORT;
}

int udp_bind_in_range(const SockAddr *local, uint16_t low, uint16_t high, uint16_t *ret_port) {
        SockAddr a = *local;
        int fd, r;

        fd = socket(a.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
        if (fd < 0)
                return -errno;

        if (low == 0 && high == 0) {
                sockaddr_set_port(&a, 0);
                if (bind(fd, &a.sa, sockaddr_len(&a)) < 0)
                        goto fail_errno;
        } else {
                uint32_t span = (uint32_t) high - low + 1, start = 0;
                if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != sizeof(start))
                        start = (uint32_t) getpid();
                start %= span;
                r = -EADDRINUSE;
                for (uint32_t i = 0; i < span; i++) {
                        uint16_t port = (uint16_t) (low + (start + i) % span);
                        sockaddr_set_port(&a, port);
                        if (bind(fd, &a.sa, sockaddr_len(&a)) == 0) {
                                r = 0;
                                break;
                        }
                        if (errno != EADDRINUSE && errno != EACCES) {
                                r = -errno;
                                break;
                        }
                }
                if (r < 0) {
                        safe_close(fd);
                        return r;
                }
        }

        socklen_t len = sizeof(a);
        if (getsockname(fd, &a.sa, &len) < 0)
                goto fail_errno;
        *ret_port = sockaddr_port(&a);
        return fd;

fail_errno:
        r = -errno;
        safe_close(fd);
        return r;
}

int net_parse_port_range(const char *s, uint16_t *ret_low, uint16_t *ret_high) {
        _cleanup_free_ char *copy = NULL;
        uint16_t low, high;
        int r;

        if (!s)
                return -EINVAL;
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        char *dash = strchr(copy, '-');
        if (dash) {
                *dash = 0;
                r = parse_port(copy, &low);
                if (r < 0)
                        return r;
                r = parse_port(dash + 1, &high);
                if (r < 0)
                        return r;
        } else {
                r = parse_port(copy, &low);
                if (r < 0)
                        return r;
                high = low;
        }
        if (high < low || (low == 0 && high != 0))
                return -EINVAL;
        *ret_low = low;
        *ret_high = high;
        return 0;
}
