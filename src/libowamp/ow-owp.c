/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ow-control.h"
#include "ow-error.h"
#include "ow-owp.h"
#include "ow-receiver.h"
#include "ow-wire.h"

/*
 * Older versions, read only (PROTOCOL.md 11; the layouts the reference's
 * reader still accepts):
 *
 *   version 0:  0 magic | 4 version | 8 header length (64 bit) | records
 *   version 2:  0 magic | 4 version | 8 header length (64 bit) |
 *              16 finished | 20 request (112) | 132 slots | zero block |
 *              records
 *
 * Both store 24-octet records: seq (4), send timestamp (8), send error
 * estimate (2), receive timestamp (8), receive error estimate (2).
 */
#define OWP_OLD_OFF_HEADER_LEN 8
#define OWP_OLD_FIXED_SIZE 16
#define OWP_V2_OFF_FINISHED 16
#define OWP_V2_OFF_REQUEST 20
#define OWP_V2_OFF_SLOTS (OWP_V2_OFF_REQUEST + OW_OWP_REQUEST_SIZE)

#define OWP_V3_FIXED_SIZE OW_OWP_OFF_REQUEST
#define OWP_ZERO_BLOCK_SIZE OW_BLOCK_SIZE

/* ------------------------------------------------------------------------
 * The embedded Request-Session copy (PROTOCOL.md 5.1), up to and including
 * its HMAC field, and its schedule slots: the same layout as on the wire,
 * so the field codec is ow-control's. In a file the HMAC field is zero and
 * the reader ignores the command octet and the MBZ fields, as the
 * reference's does, and validates only what it needs to use the file.
 * ------------------------------------------------------------------------ */

static int owp_request_check(const OwSessionRequest *req) {
        if (req->ipvn != 4 && req->ipvn != 6)
                return -OW_ERR_IPVN;
        if (!req->conf_sender && !req->conf_receiver)
                return -OW_ERR_CONF;
        if (req->n_slots == 0 || req->n_slots > OW_MAX_SLOTS)
                return -OW_ERR_COUNT;
        return 0;
}

/* Decodes everything but the slots; ret->slots is set to NULL. */
static int owp_request_decode(const uint8_t in[OW_OWP_REQUEST_SIZE], OwSessionRequest *ret) {
        OwSessionRequest req;
        int r;

        ow_request_preamble_get(in, &req);
        r = owp_request_check(&req);
        if (r < 0)
                return r;
        *ret = req;
        return 0;
}

static int owp_slot_encode(const OwSlot *s, uint8_t out[OW_OWP_SLOT_SIZE]) {
        if (s->type != OW_SLOT_EXPONENTIAL && s->type != OW_SLOT_FIXED)
                return -OW_ERR_SLOT_TYPE;
        ow_slot_put(s, out);
        return 0;
}

static int owp_slot_decode(const uint8_t in[OW_OWP_SLOT_SIZE], OwSlot *ret) {
        OwSlot s;
        ow_slot_get(in, &s);
        if (s.type != OW_SLOT_EXPONENTIAL && s.type != OW_SLOT_FIXED)
                return -OW_ERR_SLOT_TYPE;
        *ret = s;
        return 0;
}

static uint64_t owp_slots_offset(uint32_t version) {
        return version == OW_OWP_VERSION ? OW_OWP_OFF_SLOTS : OWP_V2_OFF_SLOTS;
}

/* Decode the request at request_offset and check the slots and the zero
 * block that follow it; returns the offset just past the zero block. */
static int owp_parse_request(const uint8_t *p, size_t size, uint64_t request_offset, OwSessionRequest *req,
                             uint64_t *ret_end) {
        uint64_t slots_offset = request_offset + OW_OWP_REQUEST_SIZE, end;
        int r;

        if (size < slots_offset)
                return -OW_ERR_TRUNCATED;
        r = owp_request_decode(p + request_offset, req);
        if (r < 0)
                return r;

        end = slots_offset + (uint64_t) OW_OWP_SLOT_SIZE * req->n_slots + OWP_ZERO_BLOCK_SIZE;
        if (size < end)
                return -OW_ERR_TRUNCATED;

        for (uint32_t i = 0; i < req->n_slots; i++) {
                OwSlot s;

                r = owp_slot_decode(p + slots_offset + (uint64_t) OW_OWP_SLOT_SIZE * i, &s);
                if (r < 0)
                        return r;
        }
        if (!ow_all_zero(p + end - OWP_ZERO_BLOCK_SIZE, OWP_ZERO_BLOCK_SIZE))
                return -OW_ERR_PADDING;

        *ret_end = end;
        return 0;
}

static int owp_check_finished(uint32_t v) {
        return v <= _OW_OWP_FINISHED_MAX ? 0 : -OW_ERR_FINISHED;
}

static bool owp_ranges_overlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) {
        if (a_len == 0 || b_len == 0)
                return false;
        return a < b + b_len && b < a + a_len;
}

/* Versions 0 and 2: records from the header length to the end of the file. */
static int owp_parse_old(const uint8_t *p, size_t size, uint32_t version, OwOwpFile *ret) {
        OwOwpFile f = {
                .version = version,
                .layout = OW_OWP_LAYOUT_RECEIVER,
                .record_size = OW_OWP_OLD_RECORD_SIZE,
                .data = p,
                .size = size,
        };
        uint64_t header_len, min_len = OWP_OLD_FIXED_SIZE, n;
        int r;

        if (size < OWP_OLD_FIXED_SIZE)
                return -OW_ERR_TRUNCATED;
        header_len = ow_get_be64(p + OWP_OLD_OFF_HEADER_LEN);

        if (version == 2) {
                uint32_t finished;

                if (size < OWP_V2_OFF_REQUEST)
                        return -OW_ERR_TRUNCATED;
                finished = ow_get_be32(p + OWP_V2_OFF_FINISHED);
                r = owp_check_finished(finished);
                if (r < 0)
                        return r;
                f.header.finished = finished;

                r = owp_parse_request(p, size, OWP_V2_OFF_REQUEST, &f.request, &min_len);
                if (r < 0)
                        return r;
                f.has_request = true;
        } else
                /* No finished word; the reference's reader calls it unknown. */
                f.header.finished = OW_OWP_FINISHED_INCOMPLETE;

        if (header_len > size)
                return -OW_ERR_OFFSET;
        if (header_len < min_len)
                return -OW_ERR_OVERLAP;
        /* Version 2: the header length must account for exactly the slots
         * the request announces (the reference checks the same). Version 0
         * has no such structure: anything past the fixed part is allowed. */
        if (version == 2 && header_len != min_len)
                return -OW_ERR_MISALIGNED;

        n = (size - header_len) / OW_OWP_OLD_RECORD_SIZE;
        if (n > UINT32_MAX)
                return -OW_ERR_COUNT;

        f.header_size = header_len;
        f.header.records_offset = header_len;
        f.header.n_records = f.n_records = (uint32_t) n;
        *ret = f;
        return 0;
}

static OwOwpLayout owp_v3_layout(const OwOwpHeader *h) {
        if (h->n_skips > 0)
                return h->skips_offset < h->records_offset ? OW_OWP_LAYOUT_FETCHED : OW_OWP_LAYOUT_RECEIVER;
        /* Without skip ranges only the offset tells: a fetch client stores
         * the header end (= records offset) there, a receiver the end of
         * its records (or 0 while still writing). */
        if (h->n_records > 0 && h->skips_offset == h->records_offset)
                return OW_OWP_LAYOUT_FETCHED;
        return OW_OWP_LAYOUT_RECEIVER;
}

static int owp_parse_v3(const uint8_t *p, size_t size, OwOwpFile *ret) {
        OwOwpFile f = {
                .version = OW_OWP_VERSION,
                .has_request = true,
                .record_size = OW_RECORD_SIZE,
                .data = p,
                .size = size,
        };
        OwOwpHeader *h = &f.header;
        uint64_t header_end, skips_len, records_limit, n;
        uint32_t finished;
        bool skips_set;
        int r;

        if (size < OWP_V3_FIXED_SIZE)
                return -OW_ERR_TRUNCATED;

        finished = ow_get_be32(p + OW_OWP_OFF_FINISHED);
        r = owp_check_finished(finished);
        if (r < 0)
                return r;
        *h = (OwOwpHeader){
                .finished = finished,
                .next_seqno = ow_get_be32(p + OW_OWP_OFF_NEXT_SEQNO),
                .n_skips = ow_get_be32(p + OW_OWP_OFF_N_SKIPS),
                .n_records = ow_get_be32(p + OW_OWP_OFF_N_RECORDS),
                .skips_offset = ow_get_be64(p + OW_OWP_OFF_SKIPS),
                .records_offset = ow_get_be64(p + OW_OWP_OFF_RECORDS),
        };

        r = owp_parse_request(p, size, OW_OWP_OFF_REQUEST, &f.request, &header_end);
        if (r < 0)
                return r;
        f.header_size = header_end;

        if (h->n_skips > OW_MAX_SKIP_RANGES)
                return -OW_ERR_COUNT;

        /* An unset skip offset (0) is fine as long as there are no skips. */
        skips_set = h->n_skips > 0 || h->skips_offset != 0;
        skips_len = (uint64_t) h->n_skips * OW_SKIP_RANGE_SIZE;

        if (h->records_offset > size || (skips_set && h->skips_offset > size))
                return -OW_ERR_OFFSET;
        if (h->records_offset < header_end || (skips_set && h->skips_offset < header_end))
                return -OW_ERR_OVERLAP;
        if (skips_len > size - h->skips_offset)
                return -OW_ERR_FILE_COUNT;
        /* The stored record count must fit even when it is not used: the
         * reference rejects such a file too. */
        if ((uint64_t) h->n_records > (size - h->records_offset) / OW_RECORD_SIZE)
                return -OW_ERR_FILE_COUNT;

        if (h->finished == OW_OWP_FINISHED_NORMAL)
                n = h->n_records;
        else {
                /* Still being written, or never finished: count what is
                 * there, stopping at skip ranges placed after the records. */
                records_limit = size;
                if (skips_set && h->skips_offset > h->records_offset)
                        records_limit = h->skips_offset;
                n = (records_limit - h->records_offset) / OW_RECORD_SIZE;
                if (n > UINT32_MAX)
                        return -OW_ERR_COUNT;
        }

        if (owp_ranges_overlap(h->records_offset, n * OW_RECORD_SIZE, h->skips_offset, skips_len))
                return -OW_ERR_OVERLAP;

        /* The first data area starts right after the zero block: either the
         * records, or the skip ranges with the records right behind them. */
        if (h->records_offset != header_end && !(h->n_skips > 0 && h->skips_offset == header_end &&
                                                 h->records_offset == header_end + skips_len))
                return -OW_ERR_MISALIGNED;

        f.n_records = (uint32_t) n;
        f.layout = owp_v3_layout(h);
        *ret = f;
        return 0;
}

int ow_owp_parse(const void *data, size_t size, OwOwpFile *ret) {
        const uint8_t *p = data;
        uint32_t version;

        if (!p && size > 0)
                return -EINVAL;
        if (size < OW_OWP_MAGIC_SIZE)
                return -OW_ERR_TRUNCATED;
        if (memcmp(p, OW_OWP_MAGIC, OW_OWP_MAGIC_SIZE) != 0)
                return -OW_ERR_MAGIC;
        if (size < OW_OWP_MAGIC_SIZE + 4)
                return -OW_ERR_TRUNCATED;

        version = ow_get_be32(p + OW_OWP_MAGIC_SIZE);
        switch (version) {
        case OW_OWP_VERSION:
                return owp_parse_v3(p, size, ret);
        case 0:
        case 2:
                return owp_parse_old(p, size, version, ret);
        }
        /* 1 never existed in a released reader; 0x83 is a TWAMP file. */
        return -OW_ERR_VERSION;
}

int ow_owp_get_slots(const OwOwpFile *f, OwSlot *slots, size_t n) {
        uint64_t offset;
        int r;

        if (!f->has_request)
                return -ENODATA;
        if (n < f->request.n_slots)
                return -ENOBUFS;

        offset = owp_slots_offset(f->version);
        for (uint32_t i = 0; i < f->request.n_slots; i++) {
                r = owp_slot_decode(f->data + offset + (uint64_t) OW_OWP_SLOT_SIZE * i, &slots[i]);
                if (r < 0)
                        return r;
        }
        return (int) f->request.n_slots;
}

int ow_owp_get_slots_alloc(const OwOwpFile *f, OwSlot **ret) {
        OwSlot *slots;
        int r;

        if (!f->has_request)
                return -ENODATA;

        /* n_slots >= 1 and <= OW_MAX_SLOTS after a successful parse. */
        slots = calloc(f->request.n_slots, sizeof(OwSlot));
        if (!slots)
                return -ENOMEM;
        r = ow_owp_get_slots(f, slots, f->request.n_slots);
        if (r < 0) {
                free(slots);
                return r;
        }
        *ret = slots;
        return r;
}

/* 24-octet record of versions 0 and 2 (see the top of this file). */
static int owp_old_record_decode(const uint8_t in[OW_OWP_OLD_RECORD_SIZE], OwRecord *ret) {
        OwRecord r = {
                .seq = ow_get_be32(in),
                .send_time = ow_timestamp_get(in + 4),
                .send_err = ow_errest_get(in + 12),
                .recv_time = ow_timestamp_get(in + 14),
                .recv_err = ow_errest_get(in + 22),
                .ttl = OW_TTL_UNKNOWN,
        };

        if (ow_errest_check(r.send_err) < 0 || ow_errest_check(r.recv_err) < 0)
                return -OW_ERR_ERREST;
        *ret = r;
        return 0;
}

int ow_owp_get_record(const OwOwpFile *f, uint32_t i, OwRecord *ret) {
        const uint8_t *p;

        if (i >= f->n_records)
                return -ERANGE;

        p = f->data + f->header.records_offset + (uint64_t) f->record_size * i;
        if (f->record_size == OW_OWP_OLD_RECORD_SIZE)
                return owp_old_record_decode(p, ret);
        return ow_record_decode(p, ret);
}

int ow_owp_get_skip_range(const OwOwpFile *f, uint32_t i, OwSkipRange *ret) {
        if (i >= f->header.n_skips)
                return -ERANGE;
        return ow_skip_range_decode(f->data + f->header.skips_offset + (uint64_t) OW_SKIP_RANGE_SIZE * i,
                                    ret);
}

/* ------------------------------------------------------------------------
 * Writing (version 3 only)
 * ------------------------------------------------------------------------ */

uint64_t ow_owp_header_size(uint32_t n_slots) {
        return OW_OWP_OFF_SLOTS + (uint64_t) OW_OWP_SLOT_SIZE * n_slots + OWP_ZERO_BLOCK_SIZE;
}

void ow_owp_header_init_receiver(uint32_t n_slots, OwOwpHeader *ret) {
        *ret = (OwOwpHeader){
                .finished = OW_OWP_FINISHED_ERROR,
                .records_offset = ow_owp_header_size(n_slots),
        };
}

void ow_owp_header_init_fetched(uint32_t n_slots, uint8_t finished, uint32_t next_seqno, uint32_t n_skips,
                                uint32_t n_records, OwOwpHeader *ret) {
        uint64_t end = ow_owp_header_size(n_slots);
        OwOwpHeader h = {
                .finished = finished <= OW_OWP_FINISHED_NORMAL ? finished : OW_OWP_FINISHED_INCOMPLETE,
                .next_seqno = next_seqno,
                .n_skips = n_skips,
                .n_records = n_records,
        };

        if (n_skips > 0) {
                h.skips_offset = end;
                h.records_offset = end + (uint64_t) OW_SKIP_RANGE_SIZE * n_skips;
        } else {
                h.records_offset = end;
                /* The reference computes "header end + records x record
                 * size" here with a record size it never set on this path
                 * (0): the result is the header end. Fixture
                 * keep30-to.owp shows it. */
                if (n_records > 0)
                        h.skips_offset = end;
        }
        *ret = h;
}

int ow_owp_header_encode(const OwOwpHeader *h, const OwSessionRequest *req, uint8_t *out, size_t out_size) {
        uint64_t size;
        uint8_t *p;
        int r;

        if (h->finished > _OW_OWP_FINISHED_MAX)
                return -OW_ERR_FINISHED;
        r = owp_request_check(req);
        if (r < 0)
                return r;
        if (!req->slots)
                return -EINVAL;
        size = ow_owp_header_size(req->n_slots);
        if (out_size < size)
                return -ENOBUFS;

        memcpy(out, OW_OWP_MAGIC, OW_OWP_MAGIC_SIZE);
        ow_put_be32(out + OW_OWP_MAGIC_SIZE, OW_OWP_VERSION);
        ow_put_be32(out + OW_OWP_OFF_FINISHED, h->finished);
        ow_put_be32(out + OW_OWP_OFF_NEXT_SEQNO, h->next_seqno);
        ow_put_be32(out + OW_OWP_OFF_N_SKIPS, h->n_skips);
        ow_put_be32(out + OW_OWP_OFF_N_RECORDS, h->n_records);
        ow_put_be64(out + OW_OWP_OFF_SKIPS, h->skips_offset);
        ow_put_be64(out + OW_OWP_OFF_RECORDS, h->records_offset);
        ow_request_preamble_put(req, out + OW_OWP_OFF_REQUEST);

        p = out + OW_OWP_OFF_SLOTS;
        for (uint32_t i = 0; i < req->n_slots; i++, p += OW_OWP_SLOT_SIZE) {
                r = owp_slot_encode(&req->slots[i], p);
                if (r < 0)
                        return r;
        }
        memset(p, 0, OWP_ZERO_BLOCK_SIZE);

        return (int) size;
}

uint64_t ow_owp_header_records_end(const OwOwpHeader *h) {
        return h->records_offset + (uint64_t) OW_RECORD_SIZE * h->n_records;
}

static void owp_patch32(OwOwpPatch *p, uint64_t offset, uint32_t v) {
        *p = (OwOwpPatch){ .offset = offset, .len = 4 };
        ow_put_be32(p->bytes, v);
}

static void owp_patch64(OwOwpPatch *p, uint64_t offset, uint64_t v) {
        *p = (OwOwpPatch){ .offset = offset, .len = 8 };
        ow_put_be64(p->bytes, v);
}

int ow_owp_header_set_n_records(OwOwpHeader *h, uint32_t n_records, OwOwpPatch *ret) {
        /* Once skip ranges sit behind the records, the records can no longer
         * grow or shrink. */
        if (h->records_offset < h->skips_offset)
                return -OW_ERR_STATE;

        h->n_records = n_records;
        owp_patch32(ret, OW_OWP_OFF_N_RECORDS, n_records);
        return 0;
}

int ow_owp_header_set_n_skips(OwOwpHeader *h, uint32_t n_skips, OwOwpPatch ret[2]) {
        if (h->n_skips != 0 || h->skips_offset != 0)
                return -OW_ERR_STATE;

        h->n_skips = n_skips;
        h->skips_offset = ow_owp_header_records_end(h);
        owp_patch32(&ret[0], OW_OWP_OFF_N_SKIPS, n_skips);
        owp_patch64(&ret[1], OW_OWP_OFF_SKIPS, h->skips_offset);
        return 0;
}

int ow_owp_header_set_finished(OwOwpHeader *h, OwOwpFinished finished, uint32_t next_seqno,
                               OwOwpPatch *ret) {
        if ((uint32_t) finished > _OW_OWP_FINISHED_MAX)
                return -OW_ERR_FINISHED;

        h->finished = finished;
        h->next_seqno = next_seqno;
        *ret = (OwOwpPatch){ .offset = OW_OWP_OFF_FINISHED, .len = 8 };
        ow_put_be32(ret->bytes, finished);
        ow_put_be32(ret->bytes + 4, next_seqno);
        return 0;
}

int ow_owp_patch_apply(const OwOwpPatch *p, uint8_t *buf, size_t size) {
        if (p->len > sizeof(p->bytes) || p->offset > size || p->len > size - p->offset)
                return -ERANGE;
        memcpy(buf + p->offset, p->bytes, p->len);
        return 0;
}

int ow_owp_header_finish(OwOwpHeader *h, uint32_t n_records, uint32_t n_skips, OwOwpFinished finished,
                         uint32_t next_seqno, OwOwpPatch ret[OW_OWP_FINISH_PATCHES]) {
        OwOwpHeader n = *h;
        int r;

        r = ow_owp_header_set_n_records(&n, n_records, &ret[0]);
        if (r >= 0)
                r = ow_owp_header_set_n_skips(&n, n_skips, &ret[1]);
        if (r >= 0)
                r = ow_owp_header_set_finished(&n, finished, next_seqno, &ret[3]);
        if (r < 0)
                return r;
        *h = n;
        return 0;
}

int ow_owp_header_mark_incomplete(OwOwpHeader *h, uint32_t n_records, OwOwpPatch ret[OW_OWP_INCOMPLETE_PATCHES]) {
        OwOwpHeader n = *h;
        int r;

        r = ow_owp_header_set_finished(&n, OW_OWP_FINISHED_INCOMPLETE, 0, &ret[0]);
        if (r >= 0)
                r = ow_owp_header_set_n_records(&n, n_records, &ret[1]);
        if (r < 0)
                return r;
        *h = n;
        return 0;
}

int ow_owp_records_clean(uint8_t *records, uint32_t n, uint32_t next_seqno, OwTimestamp stop_time,
                         OwTimestamp timeout, uint32_t *ret_kept) {
        uint32_t kept = 0;

        if (!records && n > 0)
                return -EINVAL;
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *src = records + (size_t) i * OW_RECORD_SIZE;
                OwRecord rec;

                if (ow_record_decode(src, &rec) < 0)
                        continue;
                OwCleanVerdict v = ow_record_clean_verdict(&rec, next_seqno, stop_time, timeout);
                if (v == OW_CLEAN_INVALID)
                        return 1;
                if (v == OW_CLEAN_KEEP) {
                        if (kept != i)
                                memmove(records + (size_t) kept * OW_RECORD_SIZE, src, OW_RECORD_SIZE);
                        kept++;
                }
        }
        *ret_kept = kept;
        return 0;
}

/* ------------------------------------------------------------------------
 * Recovery of an unfinished receiver file (see ow-owp.h)
 * ------------------------------------------------------------------------ */

int ow_owp_recover(const void *data, size_t size, OwOwpRecovery *ret) {
        OwOwpFile f;
        int r;

        if (!ret)
                return -EINVAL;
        r = ow_owp_parse(data, size, &f);
        if (r < 0)
                return r;
        if (f.version != OW_OWP_VERSION)
                return 0;

        /* Only the receiver's opening header (or one with its record count
         * already written by Stop-Sessions step 1): anything else was set by
         * a writer that got as far as ending the session. */
        const OwOwpHeader *h = &f.header;
        if (h->finished != OW_OWP_FINISHED_ERROR || h->next_seqno != 0 || h->n_skips != 0 ||
            h->skips_offset != 0)
                return 0;

        /* ow_owp_parse() counted the whole records up to the end of the
         * buffer (finished is not NORMAL), a partial last one ignored. */
        OwOwpRecovery rec = {
                .n_records = f.n_records,
                .size = h->records_offset + (uint64_t) OW_RECORD_SIZE * f.n_records,
        };
        rec.cut = size - rec.size;

        OwOwpHeader fixed = *h;
        r = ow_owp_header_mark_incomplete(&fixed, f.n_records, rec.patches);
        if (r < 0)
                return r;
        *ret = rec;
        return 1;
}
