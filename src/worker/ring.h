/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The receive side of a test socket: the kernel's receive timestamp
 * (SO_TIMESTAMPNS) and the TTL/hop limit of every datagram, read in
 * batches of RECV_BATCH with recvmmsg() into buffers set up once.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "macro.h"
#include "net.h"
#include "ow-types.h"

#define RECV_BATCH 64

typedef struct Session Session;

/* The receive buffers of one batch: RECV_BATCH slots of the session's
 * packet size (a longer datagram is truncated to it, which is harmless:
 * the padding is never looked at), their source addresses and control
 * messages, and the message headers pointing at them, set up once. */
typedef union RecvControl {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(int)) * 2];
} RecvControl;

typedef struct RecvRing {
        size_t slot_size;
        uint8_t *data;
        SockAddr from[RECV_BATCH];
        RecvControl control[RECV_BATCH];
        struct iovec iov[RECV_BATCH];
        struct mmsghdr msgs[RECV_BATCH];
} RecvRing;

/* One datagram of a batch, valid until the next ring_read(). */
typedef struct RecvPacket {
        const uint8_t *data;
        size_t len;                       /* at most the ring's slot size */
        SockAddr *from;                   /* may be changed (sockaddr_unmap_v4()) */
        const struct timespec *kernel_ts; /* NULL when the kernel gave none */
        uint8_t ttl;                      /* OW_TTL_UNKNOWN when not given */
} RecvPacket;

/* Ask the kernel for the timestamps and TTLs, and a large buffer. */
int ring_configure_socket(int fd, int family);

/* Buffers for datagrams of packet_size octets (a longer one is cut to it). */
int recv_ring_new(size_t packet_size, RecvRing **ret);
RecvRing *recv_ring_free(RecvRing *ring);
DEFINE_TRIVIAL_CLEANUP_FUNC(RecvRing *, recv_ring_free);

/* One recvmmsg() of up to RECV_BATCH datagrams from fd, not waiting.
 * Returns how many (0: none waiting), or a failure reported with
 * session_fail(). */
int ring_read(Session *s, RecvRing *ring, int fd);
/* Datagram i of the last read; *kts holds its kernel timestamp. Inline:
 * it runs for every packet. */
static inline void ring_packet(RecvRing *ring, int i, struct timespec *kts, RecvPacket *ret) {
        struct msghdr *mh = &ring->msgs[i].msg_hdr;
        bool have_ts = false;
        uint8_t ttl = OW_TTL_UNKNOWN;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS &&
                    c->cmsg_len >= CMSG_LEN(sizeof(*kts))) {
                        memcpy(kts, CMSG_DATA(c), sizeof(*kts));
                        have_ts = true;
                } else if (((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) &&
                           c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                        int v;
                        memcpy(&v, CMSG_DATA(c), sizeof(v));
                        if (v >= 0 && v <= 255)
                                ttl = (uint8_t) v;
                }
        }
        *ret = (RecvPacket){
                .data = ring->iov[i].iov_base,
                .len = MIN((size_t) ring->msgs[i].msg_len, ring->slot_size),
                .from = mh->msg_name,
                .kernel_ts = have_ts ? kts : NULL,
                .ttl = ttl,
        };
}

/* Take every datagram waiting on fd, handing each to packet(). Returns how
 * many, the first error of packet(), or an error of ring_read(). Inline,
 * so that packet() is too. */
static inline int ring_receive(Session *s, RecvRing *ring, int fd,
                               int (*packet)(void *userdata, RecvPacket *p), void *userdata) {
        int total = 0;

        for (;;) {
                int n = ring_read(s, ring, fd);
                if (n < 0)
                        return n;
                for (int i = 0; i < n; i++) {
                        struct timespec kts;
                        RecvPacket p;
                        ring_packet(ring, i, &kts, &p);
                        int r = packet(userdata, &p);
                        if (r < 0)
                                return r;
                }
                total += n;
                if (n < RECV_BATCH)
                        return total;
        }
}
