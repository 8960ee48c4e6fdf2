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
#include <time.h>

#include "macro.h"
#include "net.h"

#define RECV_BATCH 64

typedef struct Session Session;
typedef struct RecvRing RecvRing;

/* One datagram of a batch, valid during the callback. */
typedef struct RecvPacket {
        const uint8_t *data;
        size_t len;                        /* at most the ring's slot size */
        SockAddr *from;                    /* may be changed (sockaddr_unmap_v4()) */
        const struct timespec *kernel_ts;  /* NULL when the kernel gave none */
        uint8_t ttl;                       /* OW_TTL_UNKNOWN when not given */
} RecvPacket;

/* Ask the kernel for the timestamps and TTLs, and a large buffer. */
int ring_configure_socket(int fd, int family);

/* Buffers for datagrams of packet_size octets (a longer one is cut to it). */
int recv_ring_new(size_t packet_size, RecvRing **ret);
RecvRing *recv_ring_free(RecvRing *ring);
DEFINE_TRIVIAL_CLEANUP_FUNC(RecvRing *, recv_ring_free);

/* Take every datagram waiting on fd, handing each to packet(). Returns how
 * many, the first error of packet(), or a failure of recvmmsg() reported
 * with session_fail(). */
int ring_receive(Session *s, RecvRing *ring, int fd, int (*packet)(void *userdata, RecvPacket *p),
                 void *userdata);
