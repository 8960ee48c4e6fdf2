/* SPDX-License-Identifier: Apache-2.0 */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ow-testpkt.h"
#include "ow-types.h"
#include "ring.h"
#include "session.h"

/* Receive buffer asked for; beyond net.core.rmem_max only with CAP_NET_ADMIN. */
#define RECV_BUFFER_SIZE (4 << 20)

int ring_configure_socket(int fd, int family) {
        int on = 1;
        int rcvbuf = RECV_BUFFER_SIZE;

        if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) < 0)
                return -errno;
        if (family == AF_INET) {
                if (setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof(on)) < 0)
                        return -errno;
        } else if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof(on)) < 0)
                return -errno;
        /* Best effort: a larger buffer rides out bursts at high rates. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
        return 0;
}

/* The receive buffers of one batch: RECV_BATCH slots of the session's
 * packet size (a longer datagram is truncated to it, which is harmless:
 * the padding is never looked at), their source addresses and control
 * messages, and the message headers pointing at them, set up once. */
typedef union RecvControl {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(int)) * 2];
} RecvControl;

struct RecvRing {
        size_t slot_size;
        uint8_t *data;
        SockAddr from[RECV_BATCH];
        RecvControl control[RECV_BATCH];
        struct iovec iov[RECV_BATCH];
        struct mmsghdr msgs[RECV_BATCH];
};

RecvRing *recv_ring_free(RecvRing *ring) {
        if (ring)
                free(ring->data);
        free(ring);
        return NULL;
}

int recv_ring_new(size_t packet_size, RecvRing **ret) {
        _cleanup_(recv_ring_freep) RecvRing *ring = calloc(1, sizeof(RecvRing));
        if (!ring)
                return -ENOMEM;
        ring->slot_size = ALIGN_TO(MAX(packet_size, (size_t) OW_TESTPKT_MAX_HEADER_SIZE), 16);
        ring->data = calloc(RECV_BATCH, ring->slot_size);
        if (!ring->data)
                return -ENOMEM;
        for (unsigned i = 0; i < RECV_BATCH; i++) {
                ring->iov[i] = (struct iovec) { .iov_base = ring->data + i * ring->slot_size,
                                                .iov_len = ring->slot_size };
                ring->msgs[i].msg_hdr = (struct msghdr) {
                        .msg_name = &ring->from[i],
                        .msg_iov = &ring->iov[i],
                        .msg_iovlen = 1,
                        .msg_control = ring->control[i].buf,
                };
        }
        *ret = TAKE_PTR(ring);
        return 0;
}

/* The kernel timestamp and TTL of one datagram, from its control messages. */
static void packet_control(struct msghdr *mh, struct timespec *kts, bool *have_ts, uint8_t *ttl) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS &&
                    c->cmsg_len >= CMSG_LEN(sizeof(*kts))) {
                        memcpy(kts, CMSG_DATA(c), sizeof(*kts));
                        *have_ts = true;
                } else if (((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) &&
                           c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                        int v;
                        memcpy(&v, CMSG_DATA(c), sizeof(v));
                        if (v >= 0 && v <= 255)
                                *ttl = (uint8_t) v;
                }
        }
}

int ring_receive(Session *s, RecvRing *ring, int fd, int (*packet)(void *userdata, RecvPacket *p),
                 void *userdata) {
        int total = 0;

        for (;;) {
                for (unsigned i = 0; i < RECV_BATCH; i++) {
                        struct msghdr *mh = &ring->msgs[i].msg_hdr;
                        mh->msg_namelen = sizeof(ring->from[i]);
                        mh->msg_controllen = sizeof(ring->control[i].buf);
                        mh->msg_flags = 0;
                }
                int n = recvmmsg(fd, ring->msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return total;
                        if (errno == ECONNREFUSED)
                                continue;
                        return session_fail(s, -errno, "recvmmsg() failed");
                }
                for (int i = 0; i < n; i++) {
                        struct msghdr *mh = &ring->msgs[i].msg_hdr;
                        struct timespec kts = {};
                        bool have_ts = false;
                        RecvPacket p = {
                                .data = ring->iov[i].iov_base,
                                .len = MIN((size_t) ring->msgs[i].msg_len, ring->slot_size),
                                .from = mh->msg_name,
                                .ttl = OW_TTL_UNKNOWN,
                        };
                        packet_control(mh, &kts, &have_ts, &p.ttl);
                        p.kernel_ts = have_ts ? &kts : NULL;
                        int r = packet(userdata, &p);
                        if (r < 0)
                                return r;
                }
                total += n;
                if (n < RECV_BATCH)
                        return total;
        }
}
