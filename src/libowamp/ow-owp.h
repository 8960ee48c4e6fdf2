/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The .owp session file (PROTOCOL.md 11): what owampd keeps in its data
 * directory, what owping -F/-T and owfetch save, what owstats reads.
 *
 * Pure memory codec. The programs read, mmap and write the files; this
 * code parses a buffer in place (records and skip ranges are decoded on
 * demand, so an mmap of a million-record file is never copied), encodes
 * headers into caller buffers, and says which octets a writer rewrites in
 * place and in which order.
 *
 * Version 3, the only version written (all integers big-endian):
 *
 *   off  len  field
 *     0    4  magic "OwA\0"
 *     4    4  version (3)
 *     8    4  finished (OwOwpFinished)
 *    12    4  Next Seqno
 *    16    4  number of skip ranges
 *    20    4  number of records (0 while a receiver is still writing)
 *    24    8  offset of the skip ranges (0 until set)
 *    32    8  offset of the records
 *    40  112  Request-Session preamble (PROTOCOL 5.1), HMAC field zero
 *   152 16*N  the N schedule slots
 *     .   16  zero block                      <- header end
 *     .       records (25 octets each) and skip ranges (8 octets each)
 *
 * Versions 0 and 2 are read (as the reference's owstats still reads them),
 * never written; see ow_owp_parse().
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-types.h"

#define OW_OWP_MAGIC "OwA\0" /* 4 octets, the NUL included */
#define OW_OWP_MAGIC_SIZE 4
#define OW_OWP_VERSION 3

/* Version 3 header fields (PROTOCOL.md 11). */
#define OW_OWP_OFF_FINISHED 8
#define OW_OWP_OFF_NEXT_SEQNO 12
#define OW_OWP_OFF_N_SKIPS 16
#define OW_OWP_OFF_N_RECORDS 20
#define OW_OWP_OFF_SKIPS 24
#define OW_OWP_OFF_RECORDS 32
#define OW_OWP_OFF_REQUEST 40
#define OW_OWP_REQUEST_SIZE 112 /* Request-Session up to its first HMAC, PROTOCOL 5.1 */
#define OW_OWP_OFF_SLOTS 152
#define OW_OWP_SLOT_SIZE 16

/* Versions 0 and 2 store 24-octet records without TTL. */
#define OW_OWP_OLD_RECORD_SIZE 24

/* The "finished" word. */
typedef enum OwOwpFinished {
        OW_OWP_FINISHED_ERROR = 0,      /* invalid session; also what a receiver writes first */
        OW_OWP_FINISHED_NORMAL = 1,     /* Stop-Sessions processed, counts final */
        OW_OWP_FINISHED_INCOMPLETE = 2, /* ended without Stop-Sessions, or unknown */
        _OW_OWP_FINISHED_MAX = OW_OWP_FINISHED_INCOMPLETE,
} OwOwpFinished;

/* Where the skip ranges sit relative to the records. */
typedef enum OwOwpLayout {
        /* Written by a receiving endpoint (owampd's data directory, owping -F):
         * records right after the header; skip ranges appended after them
         * once Stop-Sessions arrives. */
        OW_OWP_LAYOUT_RECEIVER,
        /* Written from a Fetch-Session response (owping -T, owfetch): the
         * skip ranges first, then the records. */
        OW_OWP_LAYOUT_FETCHED,
} OwOwpLayout;

/* The variable fields of a version 3 header (octets 8..39), as stored. */
typedef struct OwOwpHeader {
        OwOwpFinished finished;
        uint32_t next_seqno;
        uint32_t n_skips;
        uint32_t n_records;    /* as stored: 0 while a receiver is still writing */
        uint64_t skips_offset; /* 0 while unset */
        uint64_t records_offset;
} OwOwpHeader;

/* A parsed file. It points into the parsed buffer, which must outlive it;
 * it owns no memory. */
typedef struct OwOwpFile {
        uint32_t version;   /* 3, or 0 / 2 for old files */
        OwOwpHeader header; /* version 3: the fields as stored; versions 0 and 2:
                             * synthesized (see ow_owp_parse()) */
        OwOwpLayout layout;
        bool has_request;         /* false for version 0, which stores none */
        OwSessionRequest request; /* request.slots is NULL: see ow_owp_get_slots() */
        uint64_t header_size;     /* where the first data area may start */
        uint32_t n_records;       /* how many records ow_owp_get_record() serves */
        size_t record_size;       /* OW_RECORD_SIZE, or OW_OWP_OLD_RECORD_SIZE */

        const uint8_t *data;
        size_t size;
} OwOwpFile;

/*
 * Parse an .owp file held in data[0..size). Sets *ret on success only.
 *
 * Validates, with one error per rule:
 *   -OW_ERR_TRUNCATED   the buffer ends inside the header (fixed part,
 *                       request, slots or zero block)
 *   -OW_ERR_MAGIC       not "OwA\0"
 *   -OW_ERR_VERSION     not 0, 2 or 3 (TWAMP's 0x83 included)
 *   -OW_ERR_FINISHED    finished word not 0, 1 or 2
 *   -OW_ERR_IPVN, -OW_ERR_CONF, -OW_ERR_SLOT_TYPE  the embedded request
 *   -OW_ERR_COUNT       no slots, more than OW_MAX_SLOTS slots, more than
 *                       OW_MAX_SKIP_RANGES skip ranges, more than 2^32-1
 *                       records
 *   -OW_ERR_PADDING     the zero block after the slots is not zero
 *   -OW_ERR_OFFSET      a records/skip-range offset (or version 0/2 header
 *                       length) points past the end of the buffer
 *   -OW_ERR_OVERLAP     records or skip ranges overlap the header or each other
 *   -OW_ERR_FILE_COUNT  the record or skip-range count needs more octets
 *                       than the buffer has
 *   -OW_ERR_MISALIGNED  the first data area does not start where the slots'
 *                       zero block ends (the header does not match its own
 *                       slot count)
 *
 * The embedded request is decoded as the reference reads it: command octet,
 * MBZ and HMAC fields ignored, any non-zero Conf octet means 1.
 *
 * Records: when finished is OW_OWP_FINISHED_NORMAL the stored count is used.
 * Otherwise (a receiver still writing, or a session that never finished)
 * the count is derived from the size, as the reference does: the whole
 * records that fit between the records offset and the end of the buffer (or
 * the skip ranges, when they follow), a partial last record ignored.
 *
 * Version 2 (read only): magic, version, 64-bit header length, finished,
 * the 112-octet request, slots and zero block, then 24-octet records up to
 * the end of the file. Version 0: magic, version, 64-bit header length,
 * 24-octet records from that offset; no request (has_request false).
 * For both, header.records_offset is the header length, header.n_records
 * the derived count, skip-range fields and next_seqno are 0, and version 0
 * reports OW_OWP_FINISHED_INCOMPLETE ("unknown").
 *
 * Skip ranges and records are not validated here; ow_owp_get_record() and
 * ow_owp_get_skip_range() check each one when asked.
 */
int ow_owp_parse(const void *data, size_t size, OwOwpFile *ret);

/* Decode the request's slots into caller memory: slots has room for n
 * entries, n >= f->request.n_slots. -ENOBUFS if too small, -ENODATA for a
 * version 0 file. Returns the number of slots. */
int ow_owp_get_slots(const OwOwpFile *f, OwSlot *slots, size_t n);

/* The same into a new array that the caller frees with free(). A typical
 * caller stores it in f->request.slots and frees that when done. */
int ow_owp_get_slots_alloc(const OwOwpFile *f, OwSlot **ret);

/* Decode record i (0 <= i < f->n_records), in file order. Version 0/2
 * records get TTL OW_TTL_UNKNOWN. -ERANGE for i out of range,
 * -OW_ERR_ERREST for an error estimate with multiplier 0. */
int ow_owp_get_record(const OwOwpFile *f, uint32_t i, OwRecord *ret);

/* Decode skip range i (0 <= i < f->header.n_skips). -ERANGE for i out of
 * range, -OW_ERR_RANGE for an inverted range. */
int ow_owp_get_skip_range(const OwOwpFile *f, uint32_t i, OwSkipRange *ret);

/*
 * Writing version 3 files.
 *
 * A receiving endpoint, exactly as the reference's receiver does it:
 *
 *   ow_owp_header_init_receiver(n_slots, &h);
 *   ow_owp_header_encode(&h, &req, buf, size);   write buf at offset 0
 *   for each record: ow_record_encode(), append (at h.records_offset + 25 i)
 *   on Stop-Sessions, after dropping the records Stop-Sessions invalidates
 *   (PROTOCOL 5.5):
 *     1. ow_owp_header_set_n_records(&h, n, &p);   apply p
 *     2. write the skip ranges at ow_owp_header_records_end(&h)
 *     3. ow_owp_header_set_n_skips(&h, k, p2);     apply p2[0], then p2[1]
 *     4. ow_owp_header_set_finished(&h, OW_OWP_FINISHED_NORMAL, next_seqno, &p);
 *        apply p
 *
 * A fetch client (owping -T, owfetch), from the Fetch-Ack and the request:
 *
 *   ow_owp_header_init_fetched(n_slots, finished, next_seqno, k, n, &h);
 *   ow_owp_header_encode(&h, &req, buf, size);
 *   then the k skip ranges at h.skips_offset and the n records at
 *   h.records_offset, as they arrive.
 *
 * Re-encoding a parsed version 3 file: ow_owp_header_encode(&f.header,
 * &request_with_slots, ...) reproduces the header octet for octet.
 */

/* Octets of a version 3 header with n_slots slots, i.e. the offset where
 * data starts: 152 + 16 (n_slots + 1). */
uint64_t ow_owp_header_size(uint32_t n_slots);

/* The header a receiver writes when it opens the file: finished 0
 * (OW_OWP_FINISHED_ERROR, as the reference), all counts 0, skip offset 0,
 * records right after the header. */
void ow_owp_header_init_receiver(uint32_t n_slots, OwOwpHeader *ret);

/* The header of a fetched session. finished is the Fetch-Ack octet: 0 and 1
 * are kept, anything else is stored as 2, as the reference does. With
 * skip ranges they come first and the records follow; without, the records
 * start at the header end and the skip offset is the header end too when
 * there are records, 0 when there are none (what the reference writes). */
void ow_owp_header_init_fetched(uint32_t n_slots, uint8_t finished, uint32_t next_seqno, uint32_t n_skips,
                                uint32_t n_records, OwOwpHeader *ret);

/* Encode magic, version 3, h, the request preamble (command 1, MBZ and
 * HMAC zero), req->slots and the zero block into out. Returns the number
 * of octets written (ow_owp_header_size()), or -ENOBUFS if out_size is too
 * small, -EINVAL without slots, -OW_ERR_FINISHED, -OW_ERR_IPVN,
 * -OW_ERR_CONF, -OW_ERR_COUNT (0 or more than OW_MAX_SLOTS slots) or
 * -OW_ERR_SLOT_TYPE. The offsets in h are written as given. */
int ow_owp_header_encode(const OwOwpHeader *h, const OwSessionRequest *req, uint8_t *out, size_t out_size);

/* records_offset + 25 * n_records: where a receiver appends skip ranges. */
uint64_t ow_owp_header_records_end(const OwOwpHeader *h);

/* One in-place rewrite of header octets: write len octets of bytes at
 * offset. */
typedef struct OwOwpPatch {
        uint64_t offset;
        size_t len;
        uint8_t bytes[8];
} OwOwpPatch;

/* Step 1: set the record count (octets 20..23). Refused (-OW_ERR_STATE)
 * once the skip ranges are placed after the records, as the reference
 * refuses it. Updates h. */
int ow_owp_header_set_n_records(OwOwpHeader *h, uint32_t n_records, OwOwpPatch *ret);

/* Step 3: set the skip-range count (ret[0], octets 16..19) and the skip
 * offset to ow_owp_header_records_end() (ret[1], octets 24..31), even when
 * n_skips is 0. Refused (-OW_ERR_STATE) if a count or offset is already
 * set. Updates h. */
int ow_owp_header_set_n_skips(OwOwpHeader *h, uint32_t n_skips, OwOwpPatch ret[2]);

/* Step 4, last: finished and Next Seqno (octets 8..15, one write).
 * -OW_ERR_FINISHED for a value above 2. Updates h. */
int ow_owp_header_set_finished(OwOwpHeader *h, OwOwpFinished finished, uint32_t next_seqno, OwOwpPatch *ret);

/* Apply a patch to a file image in memory; -ERANGE if it does not fit. */
int ow_owp_patch_apply(const OwOwpPatch *p, uint8_t *buf, size_t size);

/* Steps 1, 3 and 4 above at once, for a receiver that has dropped what
 * Stop-Sessions invalidates: ret[0] the record count, ret[1] and ret[2]
 * the skip-range count and offset, ret[3] finished and Next Seqno, to be
 * applied in that order, the skip ranges written at
 * ow_owp_header_records_end() between ret[0] and ret[1]. An invalid
 * session (datastore's, OW_OWP_FINISHED_ERROR) gets the same steps with
 * n_skips 0, so that ow_owp_recover() tells it from an unfinished file.
 * Updates h; errors as the three calls'. */
#define OW_OWP_FINISH_PATCHES 4
int ow_owp_header_finish(OwOwpHeader *h, uint32_t n_records, uint32_t n_skips, OwOwpFinished finished,
                         uint32_t next_seqno, OwOwpPatch ret[OW_OWP_FINISH_PATCHES]);

/* A receiver's file that ends without Stop-Sessions (the writer is shut
 * down, or its session failed): ret[0] finished OW_OWP_FINISHED_INCOMPLETE
 * with Next Seqno 0, then ret[1] the record count, in that order (from
 * the first on every reader counts the records by the file's size).
 * Updates h. */
#define OW_OWP_INCOMPLETE_PATCHES 2
int ow_owp_header_mark_incomplete(OwOwpHeader *h, uint32_t n_records, OwOwpPatch ret[OW_OWP_INCOMPLETE_PATCHES]);

/*
 * Cleaning a receiver's records once Stop-Sessions arrived (RFC 4656 3.8,
 * PROTOCOL.md 5.5): records[0..n) are n encoded records (OW_RECORD_SIZE
 * each) in arrival order. Each gets ow_record_clean_verdict() with the
 * sender's Next Seqno, the local time the
 * Stop-Sessions arrived and the session's Timeout; those kept move to the
 * front in order, the dropped ones and any that do not decode go.
 * Returns 0 and the number kept in *ret_kept, or 1 (nothing kept is
 * meaningful then; the buffer may be partly compacted) at the first record
 * that makes the session invalid: a received packet at or past Next Seqno.
 */
int ow_owp_records_clean(uint8_t *records, uint32_t n, uint32_t next_seqno, OwTimestamp stop_time,
                         OwTimestamp timeout, uint32_t *ret_kept);

/*
 * Recovery of a receiver's file its writer never finished (owampd killed
 * in the middle of a session: no Stop-Sessions, no SIGTERM).
 *
 * Such a file still has the header ow_owp_header_init_receiver() wrote
 * (finished 0, Next Seqno 0, no skip ranges and no skip offset; the record
 * count 0, or already set when the writer died inside its Stop-Sessions
 * steps 1-2) followed by the records appended so far, the last one maybe
 * cut short. A session that finished (1), one marked incomplete (2), and
 * one found invalid at Stop-Sessions (0, but with its Next Seqno or its
 * skip offset set: see datastore_finalize()) are left as they are, and so
 * is anything that is not version 3.
 *
 * The repair, what the SIGTERM path does to a running session's file: cut
 * the file to `size` (whole records only), then apply patches[0]
 * (finished OW_OWP_FINISHED_INCOMPLETE, Next Seqno 0) and patches[1] (the
 * record count) in that order. A crash between the steps leaves a file
 * that parses, and that this function repairs again.
 */
#define OW_OWP_RECOVERY_PATCHES 2

typedef struct OwOwpRecovery {
        uint64_t size;      /* the file's size once repaired */
        uint64_t cut;       /* octets of a partial trailing record cut (size + cut = the size given) */
        uint32_t n_records; /* whole records kept */
        OwOwpPatch patches[OW_OWP_RECOVERY_PATCHES];
} OwOwpRecovery;

/* Decide for the whole file image data[0..size) (as ow_owp_parse() takes
 * it). Returns 1 and sets *ret when the file needs the repair above, 0 when it
 * needs none, or ow_owp_parse()'s error for a file that does not parse
 * (which no repair can fix). */
int ow_owp_recover(const void *data, size_t size, OwOwpRecovery *ret);
