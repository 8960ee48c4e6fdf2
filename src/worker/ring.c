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
                ring->iov[i] = (struct iovec){ .iov_base = ring->data + i * ring->slot_size,
                                               .iov_len = ring->slot_size };
                ring->msgs[i].msg_hdr = (struct msghdr){
                        .msg_name = &ring->from[i],
                        .msg_iov = &ring->iov[i],
                        .msg_iovlen = 1,
                        .msg_control = ring->control[i].buf,
                };
        }
        *ret = TAKE_PTR(ring);
        return 0;
}

int ring_read(Session *s, RecvRing *ring, int fd) {
        for (;;) {
                for (unsigned i = 0; i < RECV_BATCH; i++) {
                        struct msghdr *mh = &ring->msgs[i].msg_hdr;
                        mh->msg_namelen = sizeof(ring->from[i]);
                        mh->msg_controllen = sizeof(ring->control[i].buf);
                        mh->msg_flags = 0;
                }
                int n = recvmmsg(fd, ring->msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
                if (n >= 0)
                        return n;
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                if (errno != ECONNREFUSED)
                        return session_fail(s, -errno, "recvmmsg() failed");
        }
}
