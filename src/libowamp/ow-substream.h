/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * powstream's cutting of a session into the spans its files cover, and
 * the files' names, as perfSONAR's powstream (5.2.3) makes them
 * (docs/notes/powstream.md):
 *
 *   the session:      [Start Time, due time of packet n-1]
 *   sub-session k:    [k == 0 ? Start Time : due time of packet kN-1,
 *                      due time of packet (k+1)N-1], packets [kN, (k+1)N)
 *
 * so consecutive sub-sessions share an end point, and the last one ends
 * where the session does. Names are "<dir>/<START>_<END><ext>", both
 * times as 20-digit decimals of the 64-bit NTP timestamp.
 */

#include <stddef.h>
#include <stdint.h>

#include "ow-time.h"
#include "ow-types.h"

typedef struct OwSpan {
        OwTimestamp start, end; /* what the file name says */
        OwTimestamp last_due;   /* due time of the span's last packet (= end) */
        uint32_t first, last;   /* packets [first, last) */
} OwSpan;

/* The reference's file name length without directory: two 20-digit
 * timestamps, '_' and the longest extension with its temporary suffix. */
#define OW_SPAN_NAME_MAX (20 + 1 + 20 + 16)

/*
 * The spans of a session of req (its slots in req->slots): ret_session
 * the whole, and, when sub_packets is not 0, the n_packets / sub_packets
 * sub-sessions in *ret (freed by the caller). sub_packets must divide
 * n_packets (-OW_ERR_COUNT otherwise, as the reference refuses the -N);
 * ow_schedule_new()'s errors; -ENOMEM.
 */
int ow_substream_spans(const OwSessionRequest *req, uint32_t sub_packets, OwSpan *ret_session, OwSpan **ret,
                       size_t *ret_n);

/* "<dir>/<start>_<end><ext>" (no "/" when dir is NULL or ""); -ENOMEM. */
int ow_substream_file_name(const char *dir, OwTimestamp start, OwTimestamp end, const char *ext, char **ret);
