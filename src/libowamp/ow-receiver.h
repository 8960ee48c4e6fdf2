/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The bookkeeping of a receiving test session (RFC 4656 4.2, PROTOCOL.md
 * 7.5), with no sockets and no clock: the caller feeds it decoded packets
 * with their receive times and tells it what time it is; it decides what to
 * record and when a packet is lost.
 *
 *  - A packet is recorded if its sequence number is below Number of
 *    Packets, its send time is within Timeout of both its receive time and
 *    its scheduled time, and its loss deadline (scheduled time + Timeout)
 *    has not passed. Copies of an accepted packet are recorded again
 *    (duplicates), as the reference does.
 *  - Once a sequence number's deadline passes without the packet, a lost
 *    record is made: send time = scheduled time, send error estimate
 *    0x0001, receive time 0, the receiver's error estimate, TTL 255.
 *
 * Records come out in the order the events happen, which is the order the
 * reference writes them to the session file.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "ow-time.h"
#include "ow-types.h"

typedef struct OwReceiver OwReceiver;

/* Why a packet was not recorded. */
typedef enum OwRecvDrop {
        OW_RECV_ACCEPTED = 0,
        OW_RECV_DUPLICATE = 1,   /* recorded, but seen before */
        OW_RECV_DROP_SEQ = -1,   /* sequence number >= Number of Packets */
        OW_RECV_DROP_LATE = -2,  /* its loss deadline had already passed */
        OW_RECV_DROP_TIME = -3,  /* send time more than Timeout from receive or scheduled time */
        OW_RECV_DROP_EARLY = -4, /* scheduled further ahead than the receiver tracks */
} OwRecvDrop;

/* Upper bound on sequence numbers tracked at once between the oldest
 * undecided packet and the newest scheduled one (8 octets + 1 bit each). */
#define OW_RECEIVER_MAX_WINDOW (UINT32_C(1) << 24)

/* req: the session (SID, slots, start time, Number of Packets, Timeout);
 * the slots are copied. */
int ow_receiver_new(const OwSessionRequest *req, OwReceiver **ret);
OwReceiver *ow_receiver_free(OwReceiver *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(OwReceiver *, ow_receiver_free);

/*
 * A packet (seq, send timestamp and its estimate) arrived at recv_time
 * (estimate recv_err, TTL/hop limit ttl). Expire first with
 * ow_receiver_expire(r, recv_time, ...) so deadlines that passed before the
 * arrival are settled. Returns OW_RECV_ACCEPTED or OW_RECV_DUPLICATE and
 * fills *ret_record, or a negative OwRecvDrop.
 */
int ow_receiver_packet(OwReceiver *r, uint32_t seq, OwTimestamp send_time, OwErrEst send_err,
                       OwTimestamp recv_time, OwErrEst recv_err, uint8_t ttl, OwRecord *ret_record);

/* Declare lost every undecided packet whose deadline is <= now, writing at
 * most max lost records to out. Returns how many were written; call again
 * while it returns max. */
size_t ow_receiver_expire(OwReceiver *r, OwTimestamp now, OwErrEst recv_err, OwRecord *out, size_t max);

/* Deadline of the oldest undecided packet, or UINT64_MAX when all are decided. */
OwTimestamp ow_receiver_next_deadline(OwReceiver *r);

/* Deadline of the oldest packet not received yet, or UINT64_MAX when every
 * one is received or decided: the first time at which ow_receiver_expire()
 * can make a lost record. Before it, expiring only moves the window over
 * packets already recorded, which changes no decision (a packet is always
 * judged against its own deadline with ow_receiver_expire(r, recv_time)
 * first), so a caller need not wake up for ow_receiver_next_deadline(). */
OwTimestamp ow_receiver_next_loss_deadline(OwReceiver *r);

/* All Number of Packets sequence numbers are decided. */
bool ow_receiver_done(const OwReceiver *r);

/* Scheduled send time of the last packet (computed on first call). */
OwTimestamp ow_receiver_last_scheduled(OwReceiver *r);

/* Decision the receiver of a stopped session applies to each stored record
 * (RFC 4656 3.8, PROTOCOL.md 5.5), given the sender's Next Seqno and the
 * local time the Stop-Sessions arrived. */
typedef enum OwCleanVerdict {
        OW_CLEAN_KEEP,
        OW_CLEAN_DROP,    /* sent too close to the stop, or a lost record past Next Seqno */
        OW_CLEAN_INVALID, /* a received packet past Next Seqno: the session is invalid */
} OwCleanVerdict;

OwCleanVerdict ow_record_clean_verdict(const OwRecord *rec, uint32_t next_seqno, OwTimestamp stop_time,
                                       OwTimestamp timeout);
