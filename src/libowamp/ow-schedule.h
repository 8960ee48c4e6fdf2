/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Send schedules (RFC 4656 3.5 and Appendix B, PROTOCOL.md 8).
 *
 * Sender and receiver compute the same schedule independently from the SID
 * and the slots of the Request-Session, so every bit must match the
 * reference: the AES counter stream, the fixed-point exponential variate
 * and the 128-bit products are all exact integer arithmetic.
 */

#include <stdint.h>

#include <nettle/aes.h>

#include "macro.h"
#include "ow-time.h"
#include "ow-types.h"

/* 32.32 fixed-point product (a * b) >> 32, exact in 128 bits and truncated
 * to the low 64 bits of the result, as the reference computes it. */
uint64_t ow_fixed_mul(uint64_t a, uint64_t b) _const_;

/*
 * The SID-keyed random stream and its exponential variates (PROTOCOL.md
 * 8.2, 8.3). A plain struct so that it can live on the stack or inside
 * another object; it allocates nothing.
 */
typedef struct OwExpRng {
        struct aes128_ctx aes; /* keyed with the 16 SID octets */
        uint64_t counter_hi;   /* 128-bit big-endian counter, as two halves */
        uint64_t counter_lo;
        uint8_t block[16]; /* AES of the counter rounded down to a multiple of 4 */
} OwExpRng;

/* Key the stream with sid and start it at counter 0. */
void ow_exp_rng_init(OwExpRng *r, const OwSid *sid);

/* The next uniform 32-bit value: word (c mod 4) of AES(c rounded down to a
 * multiple of 4), big-endian; then c += 1. */
uint32_t ow_exp_rng_uniform(OwExpRng *r);

/* The next exponential variate with mean 1, 32.32 fixed point (Knuth's
 * algorithm S with the reference's Q table). Draws one uniform value, or
 * 1 + k of them when the first is not accepted immediately. */
OwTimestamp ow_exp_rng_next(OwExpRng *r);

/* Algorithm S for a given first draw u; the k further draws, if any, come
 * from r. ow_exp_rng_next(r) is ow_exp_rng_variate(r, ow_exp_rng_uniform(r)).
 * Exposed so that every branch can be tested with chosen inputs. */
OwTimestamp ow_exp_rng_variate(OwExpRng *r, uint32_t u);

/*
 * A session's schedule: packet i is due at
 *     start_time + gap_0 + ... + gap_i
 * where gap_k comes from slot k mod n_slots: the slot's parameter for a
 * fixed slot, (E * mean) >> 32 for an exponential one, E being the next
 * mean-1 variate (only exponential slots draw from the stream).
 *
 * All memory is allocated by ow_schedule_new(); producing due times
 * allocates nothing and costs one AES block per four random draws.
 */
typedef struct OwSchedule OwSchedule;

/* The slots are copied. Returns -OW_ERR_COUNT if n_slots is 0 or above
 * OW_MAX_SLOTS, -OW_ERR_SLOT_TYPE for a slot that is neither exponential nor
 * fixed, -ENOMEM. */
int ow_schedule_new(const OwSid *sid, const OwSlot *slots, uint32_t n_slots, OwTimestamp start_time,
                    OwSchedule **ret);
OwSchedule *ow_schedule_free(OwSchedule *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(OwSchedule *, ow_schedule_free);

/* Rewind to packet 0. */
void ow_schedule_reset(OwSchedule *s);

/* Due time of the next packet (packet ow_schedule_position() before the
 * call); its gap from the previous due time (from start_time for packet
 * 0) goes to *ret_gap unless that is NULL. Arithmetic is modulo 2^64, like
 * every OwTimestamp. */
OwTimestamp ow_schedule_next(OwSchedule *s, OwTimestamp *ret_gap);

/* Index of the packet that ow_schedule_next() returns next. */
uint64_t ow_schedule_position(const OwSchedule *s);

/* Due time of packet index. Afterwards ow_schedule_next() continues with
 * packet index + 1. Walks forward from the current position, or from packet
 * 0 when index lies behind it, so it is cheap for the nearly ascending
 * lookups of a receiver. */
OwTimestamp ow_schedule_at(OwSchedule *s, uint64_t index);

OwTimestamp ow_schedule_start_time(const OwSchedule *s);
