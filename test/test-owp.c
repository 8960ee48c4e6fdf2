/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-error.h"
#include "ow-owp.h"
#include "ow-wire.h"
#include "testutil.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

typedef struct Image {
        uint8_t *data;
        size_t size;
} Image;

static Image image_load(const char *name) {
        char path[256];
        Image img;

        snprintf(path, sizeof(path), "reference-outputs/%s", name);
        test_read_file(test_data_path(path), &img.data, &img.size);
        return img;
}

static Image image_new(size_t size) {
        Image img = { .data = calloc(1, size ? size : 1), .size = size };

        ck_assert(img.data);
        return img;
}

static Image image_dup(const Image *src) {
        Image img = image_new(src->size);

        memcpy(img.data, src->data, src->size);
        return img;
}

static void image_free(Image *img) {
        free(img->data);
        *img = (Image){};
}

static int image_parse(const Image *img, OwOwpFile *f) {
        return ow_owp_parse(img->data, img->size, f);
}

static void apply(const OwOwpPatch *p, Image *img) {
        ck_assert_int_eq(ow_owp_patch_apply(p, img->data, img->size), 0);
}

/* Re-encode a parsed version 3 file from its decoded model alone: header +
 * request from the model, every record and skip range decoded and encoded
 * again at its offset. Returns a new image of the same size. */
static Image reencode(const OwOwpFile *f) {
        Image out = image_new(f->size);
        OwSessionRequest req = f->request;
        int r;

        ck_assert_int_eq(f->version, 3);
        ck_assert_int_eq(ow_owp_get_slots_alloc(f, &req.slots), (int) req.n_slots);
        r = ow_owp_header_encode(&f->header, &req, out.data, out.size);
        ck_assert_int_eq(r, (int) ow_owp_header_size(req.n_slots));
        free(req.slots);

        for (uint32_t i = 0; i < f->n_records; i++) {
                OwRecord rec;

                ck_assert_int_eq(ow_owp_get_record(f, i, &rec), 0);
                ow_record_encode(&rec, out.data + f->header.records_offset + (size_t) OW_RECORD_SIZE * i);
        }
        for (uint32_t i = 0; i < f->header.n_skips; i++) {
                OwSkipRange s;

                ck_assert_int_eq(ow_owp_get_skip_range(f, i, &s), 0);
                ow_skip_range_encode(&s,
                                     out.data + f->header.skips_offset + (size_t) OW_SKIP_RANGE_SIZE * i);
        }
        return out;
}

static void assert_reencodes(const Image *img) {
        OwOwpFile f;
        Image out;

        ck_assert_int_eq(image_parse(img, &f), 0);
        out = reencode(&f);
        ck_assert_uint_eq(out.size, img->size);
        ck_assert_bytes_eq(out.data, img->data, img->size);
        image_free(&out);
}

static void assert_requests_eq(const OwSessionRequest *a, const OwSessionRequest *b) {
        ck_assert_uint_eq(a->ipvn, b->ipvn);
        ck_assert(a->conf_sender == b->conf_sender);
        ck_assert(a->conf_receiver == b->conf_receiver);
        ck_assert_uint_eq(a->n_slots, b->n_slots);
        ck_assert_uint_eq(a->n_packets, b->n_packets);
        ck_assert_uint_eq(a->sender_port, b->sender_port);
        ck_assert_uint_eq(a->receiver_port, b->receiver_port);
        ck_assert_mem_eq(a->sender_addr, b->sender_addr, OW_ADDR_SIZE);
        ck_assert_mem_eq(a->receiver_addr, b->receiver_addr, OW_ADDR_SIZE);
        ck_assert_mem_eq(a->sid.bytes, b->sid.bytes, OW_SID_SIZE);
        ck_assert_uint_eq(a->padding_length, b->padding_length);
        ck_assert_uint_eq(a->start_time, b->start_time);
        ck_assert_uint_eq(a->timeout, b->timeout);
        ck_assert_uint_eq(a->type_p, b->type_p);
}

static void assert_slots_eq(const OwSlot *a, const OwSlot *b, size_t n) {
        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(a[i].type, b[i].type);
                ck_assert_uint_eq(a[i].param, b[i].param);
        }
}

static void assert_records_eq(const OwRecord *a, const OwRecord *b) {
        ck_assert_uint_eq(a->seq, b->seq);
        ck_assert_uint_eq(a->send_err, b->send_err);
        ck_assert_uint_eq(a->recv_err, b->recv_err);
        ck_assert_uint_eq(a->send_time, b->send_time);
        ck_assert_uint_eq(a->recv_time, b->recv_time);
        ck_assert_uint_eq(a->ttl, b->ttl);
}

/* ------------------------------------------------------------------------
 * The reference fixtures (MANIFEST.md, README.md)
 * ------------------------------------------------------------------------ */

typedef struct Fixture {
        const char *name;
        uint32_t n_packets;
        uint32_t n_records; /* packets + duplicates (MANIFEST.md) */
        uint32_t n_lost;
        bool from; /* -from: owping received (Conf-Sender = 1) */
        OwSlotType slot_type;
        OwTimestamp slot_param; /* the -i value in 32.32 seconds */
        uint32_t padding;
        OwOwpLayout layout;
} Fixture;

#define MEAN_10MS UINT64_C(0x028f5c28)
#define MEAN_20MS UINT64_C(0x051eb851)
#define MEAN_2MS UINT64_C(0x0083126e)

static const Fixture fixtures[] = {
        { "exp100-from.owp", 100, 100, 0, true, OW_SLOT_EXPONENTIAL, MEAN_10MS, 0, OW_OWP_LAYOUT_RECEIVER },
        { "exp100-to.owp", 100, 100, 0, false, OW_SLOT_EXPONENTIAL, MEAN_10MS, 0, OW_OWP_LAYOUT_FETCHED },
        { "fixed50-from.owp", 50, 50, 0, true, OW_SLOT_FIXED, MEAN_20MS, 0, OW_OWP_LAYOUT_RECEIVER },
        { "fixed50-to.owp", 50, 50, 0, false, OW_SLOT_FIXED, MEAN_20MS, 0, OW_OWP_LAYOUT_FETCHED },
        { "impaired-from.owp", 200, 203, 8, true, OW_SLOT_EXPONENTIAL, MEAN_2MS, 0, OW_OWP_LAYOUT_RECEIVER },
        { "impaired-to.owp", 200, 204, 7, false, OW_SLOT_EXPONENTIAL, MEAN_2MS, 0, OW_OWP_LAYOUT_FETCHED },
        { "pad100-from.owp", 50, 50, 0, true, OW_SLOT_EXPONENTIAL, MEAN_20MS, 100, OW_OWP_LAYOUT_RECEIVER },
        { "pad100-to.owp", 50, 50, 0, false, OW_SLOT_EXPONENTIAL, MEAN_20MS, 100, OW_OWP_LAYOUT_FETCHED },
        { "keep30-from.owp", 30, 30, 0, true, OW_SLOT_EXPONENTIAL, MEAN_10MS, 0, OW_OWP_LAYOUT_RECEIVER },
        { "keep30-to.owp", 30, 30, 0, false, OW_SLOT_EXPONENTIAL, MEAN_10MS, 0, OW_OWP_LAYOUT_FETCHED },
        { "keep30-to.owfetch.owp", 30, 30, 0, false, OW_SLOT_EXPONENTIAL, MEAN_10MS, 0,
          OW_OWP_LAYOUT_FETCHED },
        { "keep30-to.owampd-datadir.owp", 30, 30, 0, false, OW_SLOT_EXPONENTIAL, MEAN_10MS, 0,
          OW_OWP_LAYOUT_RECEIVER },
};

START_TEST(test_fixture_parse) {
        const Fixture *fx = &fixtures[_i];
        static const uint8_t localhost[OW_ADDR_SIZE] = { 127, 0, 0, 1 };
        Image img = image_load(fx->name);
        OwOwpFile f;
        OwSlot slot;
        uint32_t lost = 0;

        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.version, 3);
        ck_assert_int_eq(f.layout, fx->layout);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_NORMAL);
        ck_assert_uint_eq(f.header.next_seqno, fx->n_packets);
        ck_assert_uint_eq(f.header.n_skips, 0);
        ck_assert_uint_eq(f.header.n_records, fx->n_records);
        ck_assert_uint_eq(f.n_records, fx->n_records);
        ck_assert_uint_eq(f.record_size, OW_RECORD_SIZE);
        /* One slot: the data starts at 184 (README). */
        ck_assert_uint_eq(f.header_size, 184);
        ck_assert_uint_eq(f.header.records_offset, 184);
        ck_assert_uint_eq(f.header.skips_offset, fx->layout == OW_OWP_LAYOUT_FETCHED ? 184 : img.size);
        ck_assert_uint_eq(img.size, 184 + OW_RECORD_SIZE * fx->n_records);

        ck_assert(f.has_request);
        ck_assert_uint_eq(f.request.ipvn, 4);
        ck_assert(f.request.conf_sender == fx->from);
        ck_assert(f.request.conf_receiver == !fx->from);
        ck_assert_uint_eq(f.request.n_slots, 1);
        ck_assert_uint_eq(f.request.n_packets, fx->n_packets);
        ck_assert_uint_eq(f.request.padding_length, fx->padding);
        ck_assert_uint_eq(f.request.type_p, 0);
        ck_assert_mem_eq(f.request.sender_addr, localhost, OW_ADDR_SIZE);
        ck_assert_mem_eq(f.request.receiver_addr, localhost, OW_ADDR_SIZE);
        ck_assert_uint_ne(f.request.sender_port, 0);
        ck_assert_uint_ne(f.request.receiver_port, 0);
        ck_assert_ptr_null(f.request.slots);

        ck_assert_int_eq(ow_owp_get_slots(&f, &slot, 1), 1);
        ck_assert_int_eq(slot.type, fx->slot_type);
        ck_assert_uint_eq(slot.param, fx->slot_param);

        for (uint32_t i = 0; i < f.n_records; i++) {
                OwRecord r;

                ck_assert_int_eq(ow_owp_get_record(&f, i, &r), 0);
                ck_assert_uint_lt(r.seq, fx->n_packets);
                /* The clock was unsynchronised: 0x0001 everywhere (README). */
                ck_assert_uint_eq(r.send_err, OW_ERREST_UNSYNC);
                ck_assert_uint_eq(r.recv_err, OW_ERREST_UNSYNC);
                ck_assert_uint_eq(r.ttl, 255);
                lost += ow_record_lost(&r);
        }
        ck_assert_uint_eq(lost, fx->n_lost);
        ck_assert_int_eq(ow_owp_get_record(&f, f.n_records, &(OwRecord){}), -ERANGE);
        ck_assert_int_eq(ow_owp_get_skip_range(&f, 0, &(OwSkipRange){}), -ERANGE);

        assert_reencodes(&img);
        image_free(&img);
}
END_TEST

START_TEST(test_fixture_keep30_identity) {
        static const uint8_t sid[OW_SID_SIZE] = { 0x7f, 0x00, 0x00, 0x01, 0xee, 0xb4, 0xe1, 0xda,
                                                  0x44, 0x37, 0xb4, 0xa2, 0x34, 0x2b, 0xd8, 0x22 };
        Image to = image_load("keep30-to.owp");
        Image fetch = image_load("keep30-to.owfetch.owp");
        Image datadir = image_load("keep30-to.owampd-datadir.owp");
        OwOwpFile f;

        /* owping -T and owfetch wrote the same octets; owampd's own copy
         * differs in the skip-range offset only (MANIFEST.md). */
        ck_assert_uint_eq(to.size, fetch.size);
        ck_assert_bytes_eq(to.data, fetch.data, to.size);
        ck_assert_uint_eq(to.size, datadir.size);
        ck_assert_bytes_eq(to.data, datadir.data, OW_OWP_OFF_SKIPS);
        ck_assert_bytes_eq(to.data + OW_OWP_OFF_RECORDS, datadir.data + OW_OWP_OFF_RECORDS,
                           to.size - OW_OWP_OFF_RECORDS);

        ck_assert_int_eq(image_parse(&datadir, &f), 0);
        ck_assert_mem_eq(f.request.sid.bytes, sid, OW_SID_SIZE);
        ck_assert_uint_eq(f.header.skips_offset, 934);
        ck_assert_uint_eq(ow_owp_header_records_end(&f.header), 934);

        image_free(&to);
        image_free(&fetch);
        image_free(&datadir);
}
END_TEST

/* ------------------------------------------------------------------------
 * Writing the reference's octets
 * ------------------------------------------------------------------------ */

/* Replay what a receiving endpoint does (the reference's receiver, owampd
 * or owping -F) with the request and the records of a receiver-written
 * fixture, and compare with it after every step that matters. */
static void replay_receiver(const char *name) {
        Image ref = image_load(name);
        OwOwpFile f, g;
        OwSessionRequest req;
        OwOwpHeader h;
        OwOwpPatch p, p2[2];
        Image img;
        uint64_t off;
        int r;

        ck_assert_int_eq(image_parse(&ref, &f), 0);
        ck_assert_int_eq(f.layout, OW_OWP_LAYOUT_RECEIVER);
        req = f.request;
        ck_assert_int_eq(ow_owp_get_slots_alloc(&f, &req.slots), 1);

        img = image_new(ref.size);
        ow_owp_header_init_receiver(req.n_slots, &h);
        r = ow_owp_header_encode(&h, &req, img.data, img.size);
        ck_assert_int_eq(r, 184);

        /* Opened and still empty: finished 0, all counts 0, no skip offset. */
        img.size = (size_t) r;
        ck_assert_int_eq(image_parse(&img, &g), 0);
        ck_assert_int_eq(g.header.finished, OW_OWP_FINISHED_ERROR);
        ck_assert_uint_eq(g.header.n_records, 0);
        ck_assert_uint_eq(g.header.skips_offset, 0);
        ck_assert_uint_eq(g.n_records, 0);

        off = h.records_offset;
        for (uint32_t i = 0; i < f.n_records; i++, off += OW_RECORD_SIZE) {
                OwRecord rec;

                ck_assert_int_eq(ow_owp_get_record(&f, i, &rec), 0);
                ow_record_encode(&rec, img.data + off);
        }
        ck_assert_uint_eq(off, ref.size);

        /* While writing, readers count records from the size, a record
         * being written (torn) not included. */
        img.size = (size_t) off - 7;
        ck_assert_int_eq(image_parse(&img, &g), 0);
        ck_assert_uint_eq(g.header.n_records, 0);
        ck_assert_uint_eq(g.n_records, f.n_records - 1);
        img.size = (size_t) off;
        ck_assert_int_eq(image_parse(&img, &g), 0);
        ck_assert_uint_eq(g.n_records, f.n_records);

        /* Stop-Sessions: record count, skip ranges (none here), skip count
         * and offset, finished and Next Seqno last. */
        ck_assert_int_eq(ow_owp_header_set_n_records(&h, f.n_records, &p), 0);
        ck_assert_uint_eq(p.offset, 20);
        ck_assert_uint_eq(p.len, 4);
        apply(&p, &img);
        ck_assert_uint_eq(ow_owp_header_records_end(&h), ref.size);
        ck_assert_int_eq(ow_owp_header_set_n_skips(&h, 0, p2), 0);
        ck_assert_uint_eq(p2[0].offset, 16);
        ck_assert_uint_eq(p2[0].len, 4);
        ck_assert_uint_eq(p2[1].offset, 24);
        ck_assert_uint_eq(p2[1].len, 8);
        apply(&p2[0], &img);
        apply(&p2[1], &img);
        ck_assert_int_eq(ow_owp_header_set_finished(&h, OW_OWP_FINISHED_NORMAL, f.header.next_seqno, &p), 0);
        ck_assert_uint_eq(p.offset, 8);
        ck_assert_uint_eq(p.len, 8);
        apply(&p, &img);

        ck_assert_bytes_eq(img.data, ref.data, ref.size);
        ck_assert_mem_eq(&h, &f.header, sizeof(h));

        free(req.slots);
        image_free(&img);
        image_free(&ref);
}

START_TEST(test_write_receiver) {
        static const char *const names[] = {
                "keep30-to.owampd-datadir.owp",
                "keep30-from.owp",
                "exp100-from.owp",
                "fixed50-from.owp",
                "impaired-from.owp",
                "pad100-from.owp",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                replay_receiver(names[i]);
}
END_TEST

/* A fetch client writes the header from Fetch-Ack + request, then the data
 * in arrival order. */
static void replay_fetched(const char *name) {
        Image ref = image_load(name);
        OwOwpFile f;
        OwSessionRequest req;
        OwOwpHeader h;
        Image img;
        int r;

        ck_assert_int_eq(image_parse(&ref, &f), 0);
        ck_assert_int_eq(f.layout, OW_OWP_LAYOUT_FETCHED);
        req = f.request;
        ck_assert_int_eq(ow_owp_get_slots_alloc(&f, &req.slots), 1);

        ow_owp_header_init_fetched(req.n_slots, 1, f.header.next_seqno, 0, f.n_records, &h);
        img = image_new(ref.size);
        r = ow_owp_header_encode(&h, &req, img.data, img.size);
        ck_assert_int_eq(r, 184);
        for (uint32_t i = 0; i < f.n_records; i++) {
                OwRecord rec;

                ck_assert_int_eq(ow_owp_get_record(&f, i, &rec), 0);
                ow_record_encode(&rec, img.data + h.records_offset + (size_t) OW_RECORD_SIZE * i);
        }
        ck_assert_bytes_eq(img.data, ref.data, ref.size);

        free(req.slots);
        image_free(&img);
        image_free(&ref);
}

START_TEST(test_write_fetched) {
        static const char *const names[] = {
                "keep30-to.owp",  "keep30-to.owfetch.owp", "exp100-to.owp",
                "fixed50-to.owp", "impaired-to.owp",       "pad100-to.owp",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                replay_fetched(names[i]);
}
END_TEST

START_TEST(test_header_init_fetched) {
        OwOwpHeader h;

        /* No skips, no records: the skip offset stays unset. */
        ow_owp_header_init_fetched(1, 1, 10, 0, 0, &h);
        ck_assert_uint_eq(h.records_offset, 184);
        ck_assert_uint_eq(h.skips_offset, 0);

        /* Skips first, records after them. */
        ow_owp_header_init_fetched(3, 0, 10, 3, 5, &h);
        ck_assert_uint_eq(h.skips_offset, 152 + 4 * 16);
        ck_assert_uint_eq(h.records_offset, 152 + 4 * 16 + 24);
        ck_assert_int_eq(h.finished, OW_OWP_FINISHED_ERROR);

        /* Fetch-Ack's Finished may be 2 or anything: stored as 2. */
        ow_owp_header_init_fetched(1, 2, 0, 0, 1, &h);
        ck_assert_int_eq(h.finished, OW_OWP_FINISHED_INCOMPLETE);
        ow_owp_header_init_fetched(1, 0xff, 0, 0, 1, &h);
        ck_assert_int_eq(h.finished, OW_OWP_FINISHED_INCOMPLETE);
        ck_assert_uint_eq(h.skips_offset, 184);

        ck_assert_uint_eq(ow_owp_header_size(0), 168);
        ck_assert_uint_eq(ow_owp_header_size(UINT32_MAX), 152 + 16 * (UINT64_C(1) << 32));
}
END_TEST

START_TEST(test_header_encode_errors) {
        Image ref = image_load("keep30-from.owp");
        OwOwpFile f;
        OwSessionRequest req;
        OwSlot slot;
        uint8_t buf[184];
        OwOwpHeader h;

        ck_assert_int_eq(image_parse(&ref, &f), 0);
        ck_assert_int_eq(ow_owp_get_slots(&f, &slot, 1), 1);
        req = f.request;
        req.slots = &slot;
        h = f.header;

        ck_assert_int_eq(ow_owp_header_encode(&h, &req, buf, sizeof(buf)), 184);
        ck_assert_bytes_eq(buf, ref.data, sizeof(buf));
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, buf, sizeof(buf) - 1), -ENOBUFS);

        req.slots = NULL;
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, buf, sizeof(buf)), -EINVAL);
        req.slots = &slot;
        h.finished = 3;
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, buf, sizeof(buf)), -OW_ERR_FINISHED);
        h.finished = OW_OWP_FINISHED_NORMAL;
        req.ipvn = 5;
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, buf, sizeof(buf)), -OW_ERR_IPVN);
        req.ipvn = 6;
        req.conf_sender = req.conf_receiver = false;
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, buf, sizeof(buf)), -OW_ERR_CONF);
        req.conf_receiver = true;
        req.n_slots = 0;
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, buf, sizeof(buf)), -OW_ERR_COUNT);
        req.n_slots = OW_MAX_SLOTS + 1;
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, buf, sizeof(buf)), -OW_ERR_COUNT);
        req.n_slots = 1;
        slot.type = 2;
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, buf, sizeof(buf)), -OW_ERR_SLOT_TYPE);

        image_free(&ref);
}
END_TEST

START_TEST(test_patch_rules) {
        OwOwpHeader h;
        OwOwpPatch p, p2[2];
        uint8_t buf[40] = {};

        ow_owp_header_init_receiver(1, &h);
        ck_assert_int_eq(ow_owp_header_set_n_records(&h, 3, &p), 0);
        ck_assert_int_eq(ow_owp_header_set_n_skips(&h, 2, p2), 0);
        ck_assert_uint_eq(h.skips_offset, 184 + 75);
        /* The reference refuses both once skip ranges follow the records. */
        ck_assert_int_eq(ow_owp_header_set_n_records(&h, 4, &p), -OW_ERR_STATE);
        ck_assert_int_eq(ow_owp_header_set_n_skips(&h, 1, p2), -OW_ERR_STATE);
        ck_assert_uint_eq(h.n_records, 3);
        ck_assert_uint_eq(h.n_skips, 2);

        /* A skip offset alone (0 skip ranges) also counts as set. */
        ow_owp_header_init_receiver(1, &h);
        ck_assert_int_eq(ow_owp_header_set_n_skips(&h, 0, p2), 0);
        ck_assert_uint_eq(h.skips_offset, 184);
        ck_assert_int_eq(ow_owp_header_set_n_skips(&h, 0, p2), -OW_ERR_STATE);

        ck_assert_int_eq(ow_owp_header_set_finished(&h, 3, 0, &p), -OW_ERR_FINISHED);
        ck_assert_int_eq(ow_owp_header_set_finished(&h, OW_OWP_FINISHED_INCOMPLETE, 0x01020304, &p), 0);
        ck_assert_int_eq(ow_owp_patch_apply(&p, buf, sizeof(buf)), 0);
        ck_assert_uint_eq(ow_get_be32(buf + 8), 2);
        ck_assert_uint_eq(ow_get_be32(buf + 12), 0x01020304);
        ck_assert_int_eq(ow_owp_patch_apply(&p, buf, 15), -ERANGE);
        p.offset = UINT64_MAX - 2;
        ck_assert_int_eq(ow_owp_patch_apply(&p, buf, sizeof(buf)), -ERANGE);
}
END_TEST

/* ------------------------------------------------------------------------
 * Skip ranges (synthetic: no fixture has any)
 * ------------------------------------------------------------------------ */

static const OwSkipRange test_skips[] = { { 3, 4 }, { 10, 10 }, { 27, 29 } };

/* keep30-from's request and first 25 records, receiver-written with three
 * skip ranges, following the reference's write sequence. */
static Image build_receiver_with_skips(void) {
        Image ref = image_load("keep30-from.owp");
        const uint32_t n = 25, k = ELEMENTSOF(test_skips);
        OwOwpFile f;
        OwSessionRequest req;
        OwOwpHeader h;
        OwOwpPatch p, p2[2];
        Image img = image_new(184 + OW_RECORD_SIZE * n + OW_SKIP_RANGE_SIZE * k);

        ck_assert_int_eq(image_parse(&ref, &f), 0);
        req = f.request;
        ck_assert_int_eq(ow_owp_get_slots_alloc(&f, &req.slots), 1);
        ow_owp_header_init_receiver(1, &h);
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, img.data, img.size), 184);
        memcpy(img.data + 184, ref.data + 184, (size_t) OW_RECORD_SIZE * n);

        ck_assert_int_eq(ow_owp_header_set_n_records(&h, n, &p), 0);
        apply(&p, &img);
        for (uint32_t i = 0; i < k; i++)
                ow_skip_range_encode(&test_skips[i],
                                     img.data + ow_owp_header_records_end(&h) + OW_SKIP_RANGE_SIZE * i);
        ck_assert_int_eq(ow_owp_header_set_n_skips(&h, k, p2), 0);
        apply(&p2[0], &img);
        apply(&p2[1], &img);
        ck_assert_int_eq(ow_owp_header_set_finished(&h, OW_OWP_FINISHED_NORMAL, 30, &p), 0);
        apply(&p, &img);

        free(req.slots);
        image_free(&ref);
        return img;
}

static Image build_fetched_with_skips(void) {
        Image ref = image_load("keep30-to.owp");
        const uint32_t n = 25, k = ELEMENTSOF(test_skips);
        OwOwpFile f;
        OwSessionRequest req;
        OwOwpHeader h;
        Image img = image_new(184 + OW_RECORD_SIZE * n + OW_SKIP_RANGE_SIZE * k);

        ck_assert_int_eq(image_parse(&ref, &f), 0);
        req = f.request;
        ck_assert_int_eq(ow_owp_get_slots_alloc(&f, &req.slots), 1);
        ow_owp_header_init_fetched(1, 1, 30, k, n, &h);
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, img.data, img.size), 184);
        for (uint32_t i = 0; i < k; i++)
                ow_skip_range_encode(&test_skips[i], img.data + h.skips_offset + OW_SKIP_RANGE_SIZE * i);
        memcpy(img.data + h.records_offset, ref.data + 184, (size_t) OW_RECORD_SIZE * n);

        free(req.slots);
        image_free(&ref);
        return img;
}

static void assert_skips(const OwOwpFile *f) {
        ck_assert_uint_eq(f->header.n_skips, ELEMENTSOF(test_skips));
        for (uint32_t i = 0; i < f->header.n_skips; i++) {
                OwSkipRange s;

                ck_assert_int_eq(ow_owp_get_skip_range(f, i, &s), 0);
                ck_assert_uint_eq(s.first, test_skips[i].first);
                ck_assert_uint_eq(s.last, test_skips[i].last);
        }
        ck_assert_int_eq(ow_owp_get_skip_range(f, f->header.n_skips, &(OwSkipRange){}), -ERANGE);
}

START_TEST(test_skips_receiver) {
        Image img = build_receiver_with_skips();
        OwOwpFile f;

        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_int_eq(f.layout, OW_OWP_LAYOUT_RECEIVER);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_NORMAL);
        ck_assert_uint_eq(f.header.next_seqno, 30);
        ck_assert_uint_eq(f.n_records, 25);
        ck_assert_uint_eq(f.header.records_offset, 184);
        ck_assert_uint_eq(f.header.skips_offset, 184 + 25 * OW_RECORD_SIZE);
        assert_skips(&f);
        assert_reencodes(&img);

        /* A reader that finds "finished" not yet set counts the records up
         * to the skip ranges, not to the end of the file. */
        ow_put_be32(img.data + OW_OWP_OFF_FINISHED, OW_OWP_FINISHED_ERROR);
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.n_records, 25);

        /* An inverted range is reported when read. */
        ow_skip_range_encode(&(OwSkipRange){ 9, 8 }, img.data + f.header.skips_offset + 8);
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_int_eq(ow_owp_get_skip_range(&f, 0, &(OwSkipRange){}), 0);
        ck_assert_int_eq(ow_owp_get_skip_range(&f, 1, &(OwSkipRange){}), -OW_ERR_RANGE);

        image_free(&img);
}
END_TEST

START_TEST(test_skips_fetched) {
        Image img = build_fetched_with_skips();
        OwOwpFile f;
        OwRecord r;

        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_int_eq(f.layout, OW_OWP_LAYOUT_FETCHED);
        ck_assert_uint_eq(f.header.skips_offset, 184);
        ck_assert_uint_eq(f.header.records_offset, 184 + 3 * OW_SKIP_RANGE_SIZE);
        ck_assert_uint_eq(f.n_records, 25);
        assert_skips(&f);
        ck_assert_int_eq(ow_owp_get_record(&f, 24, &r), 0);
        ck_assert_uint_eq(r.seq, 24);
        assert_reencodes(&img);

        image_free(&img);
}
END_TEST

/* ------------------------------------------------------------------------
 * Versions 0 and 2 (read only)
 *
 * Built from the layouts the reference documents and reads in
 * owamp/api.c (_OWPReadDataHeaderInitial, OWPReadDataHeader,
 * OWPReadDataHeaderSlots) and owamp/protocol.c (_OWPDecodeDataRecord,
 * "DataRecord V2 format"):
 *
 *   v0: "OwA\0" | version 0 | header length (64 bit) | 24-octet records
 *   v2: "OwA\0" | version 2 | header length (64 bit) | finished (32 bit) |
 *       Request-Session preamble (112) | slots | zero block | 24-octet records
 *   24-octet record: seq | send time | send error | recv time | recv error
 *
 * The header length of a version 2 file is 132 + 16 (slots + 1); its
 * request preamble is read with the same 112-octet layout as version 3's,
 * which is what the reference's reader does. The request and the records
 * here are keep30-from's.
 * ------------------------------------------------------------------------ */

static void old_record_put(uint8_t *p, const OwRecord *r) {
        ow_put_be32(p, r->seq);
        ow_timestamp_put(p + 4, r->send_time);
        ow_errest_put(p + 12, r->send_err);
        ow_timestamp_put(p + 14, r->recv_time);
        ow_errest_put(p + 22, r->recv_err);
}

static Image build_old(uint32_t version, uint32_t n, uint32_t finished, OwOwpFile *v3) {
        Image ref = image_load("keep30-from.owp");
        uint64_t header_len = version == 2 ? 132 + 16 * 2 : 16;
        Image img = image_new(header_len + (size_t) 24 * n);

        ck_assert_int_eq(ow_owp_parse(ref.data, ref.size, v3), 0);
        memcpy(img.data, "OwA\0", 4);
        ow_put_be32(img.data + 4, version);
        ow_put_be64(img.data + 8, header_len);
        if (version == 2) {
                ow_put_be32(img.data + 16, finished);
                /* request + 1 slot + zero block, as in the version 3 file */
                memcpy(img.data + 20, ref.data + 40, 112 + 16 + 16);
        }
        for (uint32_t i = 0; i < n; i++) {
                OwRecord r;

                ck_assert_int_eq(ow_owp_get_record(v3, i, &r), 0);
                old_record_put(img.data + header_len + (size_t) 24 * i, &r);
        }
        /* ref stays allocated: v3 points into it; the caller frees v3->data. */
        return img;
}

static void assert_old_records(const OwOwpFile *f, const OwOwpFile *v3, uint32_t n) {
        ck_assert_uint_eq(f->record_size, 24);
        ck_assert_uint_eq(f->n_records, n);
        ck_assert_uint_eq(f->header.n_records, n);
        ck_assert_uint_eq(f->header.n_skips, 0);
        ck_assert_uint_eq(f->header.skips_offset, 0);
        ck_assert_uint_eq(f->header.next_seqno, 0);
        ck_assert_int_eq(f->layout, OW_OWP_LAYOUT_RECEIVER);
        for (uint32_t i = 0; i < n; i++) {
                OwRecord a, b;

                ck_assert_int_eq(ow_owp_get_record(f, i, &a), 0);
                ck_assert_int_eq(ow_owp_get_record(v3, i, &b), 0);
                assert_records_eq(&a, &b); /* TTL 255 = what the fixture holds too */
        }
        ck_assert_int_eq(ow_owp_get_record(f, n, &(OwRecord){}), -ERANGE);
}

START_TEST(test_version2) {
        OwOwpFile v3, f;
        Image img = build_old(2, 5, OW_OWP_FINISHED_NORMAL, &v3);
        OwSlot slot;

        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.version, 2);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_NORMAL);
        ck_assert(f.has_request);
        assert_requests_eq(&f.request, &v3.request);
        ck_assert_uint_eq(f.header_size, 164);
        ck_assert_uint_eq(f.header.records_offset, 164);
        ck_assert_int_eq(ow_owp_get_slots(&f, &slot, 1), 1);
        ck_assert_int_eq(slot.type, OW_SLOT_EXPONENTIAL);
        ck_assert_uint_eq(slot.param, MEAN_10MS);
        assert_old_records(&f, &v3, 5);

        /* A partial last record is not counted. */
        ck_assert_int_eq(ow_owp_parse(img.data, img.size - 1, &f), 0);
        ck_assert_uint_eq(f.n_records, 4);
        /* No records at all. */
        ck_assert_int_eq(ow_owp_parse(img.data, 164, &f), 0);
        ck_assert_uint_eq(f.n_records, 0);

        /* Rejections. */
        ck_assert_int_eq(ow_owp_parse(img.data, 19, &f), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_owp_parse(img.data, 131, &f), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_owp_parse(img.data, 163, &f), -OW_ERR_TRUNCATED);
        ow_put_be32(img.data + 16, 3);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_FINISHED);
        ow_put_be32(img.data + 16, 2);
        ow_put_be64(img.data + 8, 180);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_MISALIGNED);
        ow_put_be64(img.data + 8, 148);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OVERLAP);
        ow_put_be64(img.data + 8, img.size + 1);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OFFSET);
        ow_put_be64(img.data + 8, 164);
        img.data[164 + 13] = 0; /* send error multiplier */
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_int_eq(ow_owp_get_record(&f, 0, &(OwRecord){}), -OW_ERR_ERREST);

        image_free(&img);
        free((void *) v3.data);
}
END_TEST

START_TEST(test_version0) {
        OwOwpFile v3, f;
        Image img = build_old(0, 4, 0, &v3);
        OwSlot slot, *slots = NULL;

        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.version, 0);
        ck_assert(!f.has_request);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_INCOMPLETE);
        ck_assert_uint_eq(f.header_size, 16);
        ck_assert_int_eq(ow_owp_get_slots(&f, &slot, 1), -ENODATA);
        ck_assert_int_eq(ow_owp_get_slots_alloc(&f, &slots), -ENODATA);
        ck_assert_ptr_null(slots);
        assert_old_records(&f, &v3, 4);

        ck_assert_int_eq(ow_owp_parse(img.data, 15, &f), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_owp_parse(img.data, 16, &f), 0);
        ck_assert_uint_eq(f.n_records, 0);
        ow_put_be64(img.data + 8, 15);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OVERLAP);
        ow_put_be64(img.data + 8, img.size + 1);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OFFSET);
        /* Version 0 headers may be longer than the fixed part. */
        ow_put_be64(img.data + 8, 16 + 24);
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.n_records, 3);

        image_free(&img);
        free((void *) v3.data);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rejections, each with its own error
 * ------------------------------------------------------------------------ */

START_TEST(test_reject_header) {
        Image ref = image_load("keep30-from.owp");
        Image img = image_dup(&ref);
        OwOwpFile f;
        static const size_t truncated[] = { 0, 3, 7, 39, 151, 167, 183 };

        for (size_t i = 0; i < ELEMENTSOF(truncated); i++)
                ck_assert_int_eq(ow_owp_parse(img.data, truncated[i], &f), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_owp_parse(NULL, 0, &f), -OW_ERR_TRUNCATED);
        /* Header only, but the skip offset (934) points past it. */
        ck_assert_int_eq(ow_owp_parse(img.data, 184, &f), -OW_ERR_OFFSET);

        img.data[2] = 'B';
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_MAGIC);
        ck_assert_int_eq(ow_owp_parse(img.data, 3, &f), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_owp_parse(img.data, 4, &f), -OW_ERR_MAGIC);
        img.data[2] = 'A';
        img.data[3] = '0';
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_MAGIC);
        img.data[3] = 0;

        static const uint32_t versions[] = { 1, 4, 0x83, 0x03000000 };
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                ow_put_be32(img.data + 4, versions[i]);
                ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_VERSION);
        }
        ow_put_be32(img.data + 4, 3);

        ow_put_be32(img.data + OW_OWP_OFF_FINISHED, 3);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_FINISHED);
        ow_put_be32(img.data + OW_OWP_OFF_FINISHED, UINT32_MAX);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_FINISHED);
        ck_assert_int_eq(ow_owp_parse(img.data, 39, &f), -OW_ERR_TRUNCATED);

        image_free(&img);
        image_free(&ref);
}
END_TEST

START_TEST(test_reject_request) {
        Image ref = image_load("keep30-from.owp");
        Image img;
        OwOwpFile f;

        img = image_dup(&ref);
        img.data[40 + 1] = 5;
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_IPVN);
        img.data[40 + 1] = 0x46; /* high nibble MBZ, ignored like the reference */
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.request.ipvn, 6);
        image_free(&img);

        img = image_dup(&ref);
        img.data[40 + 2] = 0;
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_CONF);
        img.data[40 + 2] = 7; /* any non-zero Conf octet counts as 1 */
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert(f.request.conf_sender);
        image_free(&img);

        img = image_dup(&ref);
        ow_put_be32(img.data + 40 + 4, OW_MAX_SLOTS + 1);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_COUNT);
        ow_put_be32(img.data + 40 + 4, UINT32_MAX);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_COUNT);
        ow_put_be32(img.data + 40 + 4, 0);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_COUNT);
        /* More slots than the file holds: the header runs past the end. */
        ow_put_be32(img.data + 40 + 4, 100);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_TRUNCATED);
        image_free(&img);

        img = image_dup(&ref);
        img.data[152] = 2;
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_SLOT_TYPE);
        image_free(&img);

        img = image_dup(&ref);
        img.data[168 + 15] = 1;
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_PADDING);
        image_free(&img);

        /* Ignored as the reference ignores them: command, MBZ, HMAC, slot MBZ. */
        img = image_dup(&ref);
        img.data[40] = 9;
        img.data[40 + 90] = 1;
        img.data[40 + 100] = 1;
        img.data[152 + 3] = 1;
        ck_assert_int_eq(image_parse(&img, &f), 0);
        image_free(&img);

        image_free(&ref);
}
END_TEST

START_TEST(test_reject_offsets) {
        Image ref = image_load("keep30-from.owp"); /* 934 octets, 30 records, skip offset 934 */
        Image img;
        OwOwpFile f;

        /* Past the end of the file. */
        img = image_dup(&ref);
        ow_put_be64(img.data + OW_OWP_OFF_RECORDS, 935);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OFFSET);
        ow_put_be64(img.data + OW_OWP_OFF_RECORDS, UINT64_MAX);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OFFSET);
        image_free(&img);

        img = image_dup(&ref);
        ow_put_be64(img.data + OW_OWP_OFF_SKIPS, 935);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OFFSET);
        image_free(&img);

        /* Into the header. */
        img = image_dup(&ref);
        ow_put_be64(img.data + OW_OWP_OFF_RECORDS, 183);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OVERLAP);
        ow_put_be64(img.data + OW_OWP_OFF_RECORDS, 0);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OVERLAP);
        image_free(&img);

        img = image_dup(&ref);
        ow_put_be64(img.data + OW_OWP_OFF_SKIPS, 100);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OVERLAP);
        /* Skip ranges announced without an offset. */
        ow_put_be64(img.data + OW_OWP_OFF_SKIPS, 0);
        ow_put_be32(img.data + OW_OWP_OFF_N_SKIPS, 1);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OVERLAP);
        image_free(&img);

        /* Skip ranges inside the records. */
        img = image_dup(&ref);
        ow_put_be32(img.data + OW_OWP_OFF_N_SKIPS, 2);
        ow_put_be64(img.data + OW_OWP_OFF_SKIPS, 934 - 25);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OVERLAP);
        image_free(&img);

        /* Records inside fetched-layout skip ranges. */
        img = build_fetched_with_skips();
        ow_put_be64(img.data + OW_OWP_OFF_RECORDS, 184 + 16);
        ow_put_be32(img.data + OW_OWP_OFF_N_RECORDS, 24);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_OVERLAP);
        image_free(&img);

        image_free(&ref);
}
END_TEST

START_TEST(test_reject_counts) {
        Image ref = image_load("keep30-from.owp");
        Image img;
        OwOwpFile f;

        img = image_dup(&ref);
        ow_put_be32(img.data + OW_OWP_OFF_N_RECORDS, 31);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_FILE_COUNT);
        ow_put_be32(img.data + OW_OWP_OFF_N_RECORDS, UINT32_MAX);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_FILE_COUNT);
        /* Checked even while the count is not used (not finished). */
        ow_put_be32(img.data + OW_OWP_OFF_FINISHED, OW_OWP_FINISHED_INCOMPLETE);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_FILE_COUNT);
        image_free(&img);

        /* One skip range announced at the very end of the file. */
        img = image_dup(&ref);
        ow_put_be32(img.data + OW_OWP_OFF_N_SKIPS, 1);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_FILE_COUNT);
        ow_put_be32(img.data + OW_OWP_OFF_N_SKIPS, OW_MAX_SKIP_RANGES);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_FILE_COUNT);
        ow_put_be32(img.data + OW_OWP_OFF_N_SKIPS, OW_MAX_SKIP_RANGES + 1);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_COUNT);
        image_free(&img);

        /* A truncated copy of a finished file. */
        ck_assert_int_eq(ow_owp_parse(ref.data, ref.size - 1, &f), -OW_ERR_OFFSET);
        img = image_dup(&ref);
        ow_put_be64(img.data + OW_OWP_OFF_SKIPS, 0);
        ck_assert_int_eq(ow_owp_parse(img.data, img.size - 1, &f), -OW_ERR_FILE_COUNT);
        image_free(&img);

        image_free(&ref);
}
END_TEST

START_TEST(test_reject_misaligned) {
        Image ref = image_load("keep30-from.owp");
        Image img;
        OwOwpFile f;

        /* Records one octet after the zero block. */
        img = image_dup(&ref);
        ow_put_be64(img.data + OW_OWP_OFF_RECORDS, 185);
        ow_put_be32(img.data + OW_OWP_OFF_N_RECORDS, 29);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_MISALIGNED);
        image_free(&img);

        /* Fetched layout: a gap between skip ranges and records. */
        img = build_fetched_with_skips();
        ow_put_be64(img.data + OW_OWP_OFF_RECORDS, 184 + 24 + 25);
        ow_put_be32(img.data + OW_OWP_OFF_N_RECORDS, 24);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_MISALIGNED);
        image_free(&img);

        /* Fetched layout: skip ranges not at the zero block's end. */
        img = build_fetched_with_skips();
        ow_put_be64(img.data + OW_OWP_OFF_SKIPS, 192);
        ow_put_be32(img.data + OW_OWP_OFF_N_SKIPS, 2);
        ck_assert_int_eq(image_parse(&img, &f), -OW_ERR_MISALIGNED);
        image_free(&img);

        image_free(&ref);
}
END_TEST

START_TEST(test_reject_records) {
        Image img = image_load("keep30-from.owp");
        OwOwpFile f;

        img.data[184 + 25 * 7 + 5] = 0; /* send error estimate of record 7 */
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_int_eq(ow_owp_get_record(&f, 6, &(OwRecord){}), 0);
        ck_assert_int_eq(ow_owp_get_record(&f, 7, &(OwRecord){}), -OW_ERR_ERREST);
        img.data[184 + 25 * 7 + 5] = 1;
        img.data[184 + 25 * 8 + 7] = 0; /* receive error estimate of record 8 */
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_int_eq(ow_owp_get_record(&f, 8, &(OwRecord){}), -OW_ERR_ERREST);

        image_free(&img);
}
END_TEST

/* ------------------------------------------------------------------------
 * Slots, large files
 * ------------------------------------------------------------------------ */

START_TEST(test_slots) {
        Image ref = image_load("keep30-from.owp");
        OwSessionRequest req;
        OwOwpFile f;
        OwSlot slots[3] = {
                { OW_SLOT_FIXED, UINT64_C(1) << 32 },
                { OW_SLOT_EXPONENTIAL, MEAN_10MS },
                { OW_SLOT_FIXED, 5 },
        };
        OwSlot out[3], *alloc = NULL;
        OwOwpHeader h;
        Image img = image_new(ow_owp_header_size(3));

        ck_assert_int_eq(image_parse(&ref, &f), 0);
        req = f.request;
        req.n_slots = 3;
        req.slots = slots;
        ow_owp_header_init_receiver(3, &h);
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, img.data, img.size), 216);

        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.request.n_slots, 3);
        ck_assert_uint_eq(f.header_size, 216);
        ck_assert_uint_eq(f.n_records, 0);
        ck_assert_int_eq(ow_owp_get_slots(&f, out, 2), -ENOBUFS);
        ck_assert_int_eq(ow_owp_get_slots(&f, out, 3), 3);
        assert_slots_eq(out, slots, 3);
        ck_assert_int_eq(ow_owp_get_slots_alloc(&f, &alloc), 3);
        assert_slots_eq(alloc, slots, 3);
        free(alloc);

        image_free(&img);
        image_free(&ref);
}
END_TEST

START_TEST(test_million_records) {
        const uint32_t n = 1000000;
        Image ref = image_load("keep30-from.owp");
        OwOwpFile f;
        OwSessionRequest req;
        OwSlot slot;
        OwOwpHeader h;
        OwOwpPatch p;
        Image img = image_new(184 + (size_t) OW_RECORD_SIZE * n);

        ck_assert_int_eq(image_parse(&ref, &f), 0);
        ck_assert_int_eq(ow_owp_get_slots(&f, &slot, 1), 1);
        req = f.request;
        req.n_packets = n;
        req.slots = &slot;
        ow_owp_header_init_receiver(1, &h);
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, img.data, img.size), 184);
        for (uint32_t i = 0; i < n; i++) {
                OwRecord r = { .seq = i, .send_err = 1, .recv_err = 1, .send_time = i, .ttl = 64 };

                ow_record_encode(&r, img.data + 184 + (size_t) OW_RECORD_SIZE * i);
        }

        /* Still being written: counted from the size. */
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.n_records, n);
        ck_assert_int_eq(ow_owp_header_set_n_records(&h, n, &p), 0);
        apply(&p, &img);
        ck_assert_int_eq(ow_owp_header_set_finished(&h, OW_OWP_FINISHED_NORMAL, n, &p), 0);
        apply(&p, &img);
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.n_records, n);
        ck_assert_ptr_eq(f.data, img.data); /* parsed in place */
        for (uint32_t i = 0; i < n; i++) {
                OwRecord r;

                ck_assert_int_eq(ow_owp_get_record(&f, i, &r), 0);
                if (r.seq != i || r.send_time != i || r.ttl != 64)
                        ck_abort_msg("record %u decoded wrongly", i);
        }

        image_free(&img);
        image_free(&ref);
}
END_TEST

START_TEST(test_unfinished_counts) {
        Image ref = image_load("keep30-from.owp");
        Image img = image_new(ref.size + 10);
        OwOwpFile f;

        /* An incomplete session (no Stop-Sessions) with a stale count and a
         * torn last write: the size decides. */
        memcpy(img.data, ref.data, ref.size);
        ow_put_be32(img.data + OW_OWP_OFF_FINISHED, OW_OWP_FINISHED_INCOMPLETE);
        ow_put_be32(img.data + OW_OWP_OFF_N_RECORDS, 12);
        ow_put_be64(img.data + OW_OWP_OFF_SKIPS, 0);
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.header.n_records, 12);
        ck_assert_uint_eq(f.n_records, 30);
        ck_assert_int_eq(f.layout, OW_OWP_LAYOUT_RECEIVER);

        /* Finished normally: the stored count wins over the size. */
        ow_put_be32(img.data + OW_OWP_OFF_FINISHED, OW_OWP_FINISHED_NORMAL);
        ck_assert_int_eq(image_parse(&img, &f), 0);
        ck_assert_uint_eq(f.n_records, 12);

        image_free(&img);
        image_free(&ref);
}
END_TEST

/* ------------------------------------------------------------------------
 * Recovery of a receiver file its writer never finished
 * ------------------------------------------------------------------------ */

/* What owampd leaves when it is killed in the middle of a session:
 * keep30-from's request behind the receiver's opening header, its first n
 * records, then `partial` octets of a record cut short. */
static Image build_crashed(uint32_t n, size_t partial) {
        Image ref = image_load("keep30-from.owp");
        OwOwpFile f;
        OwSessionRequest req;
        OwOwpHeader h;
        Image img = image_new(184 + (size_t) OW_RECORD_SIZE * n + partial);

        ck_assert_uint_le(n, 30);
        ck_assert_uint_lt(partial, OW_RECORD_SIZE);
        ck_assert_int_eq(image_parse(&ref, &f), 0);
        req = f.request;
        ck_assert_int_eq(ow_owp_get_slots_alloc(&f, &req.slots), 1);
        ow_owp_header_init_receiver(1, &h);
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, img.data, img.size), 184);
        memcpy(img.data + 184, ref.data + 184, (size_t) OW_RECORD_SIZE * n);
        /* The partial record: the first octets of one (the fixture has 30). */
        memcpy(img.data + 184 + (size_t) OW_RECORD_SIZE * n, ref.data + 184, partial);
        free(req.slots);
        image_free(&ref);
        return img;
}

/* Cut and patch as a caller does; returns the repaired image. */
static Image apply_recovery(const Image *img, const OwOwpRecovery *rec) {
        Image out;

        ck_assert_uint_eq(rec->size + rec->cut, img->size);
        out = image_new(rec->size);
        memcpy(out.data, img->data, rec->size);
        for (size_t i = 0; i < OW_OWP_RECOVERY_PATCHES; i++)
                apply(&rec->patches[i], &out);
        return out;
}

static void assert_recovered(const Image *img, uint32_t n) {
        Image ref = image_load("keep30-from.owp");
        OwOwpFile f, r;

        ck_assert_int_eq(image_parse(img, &f), 0);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_INCOMPLETE);
        ck_assert_uint_eq(f.header.next_seqno, 0);
        ck_assert_uint_eq(f.header.n_records, n);
        ck_assert_uint_eq(f.header.n_skips, 0);
        ck_assert_uint_eq(f.header.skips_offset, 0);
        ck_assert_uint_eq(f.n_records, n);
        ck_assert_uint_eq(img->size, 184 + (size_t) OW_RECORD_SIZE * n);
        ck_assert_int_eq(f.layout, OW_OWP_LAYOUT_RECEIVER);
        ck_assert_int_eq(image_parse(&ref, &r), 0);
        for (uint32_t i = 0; i < n; i++) {
                OwRecord a, b;

                ck_assert_int_eq(ow_owp_get_record(&f, i, &a), 0);
                ck_assert_int_eq(ow_owp_get_record(&r, i, &b), 0);
                assert_records_eq(&a, &b);
        }
        image_free(&ref);
}

START_TEST(test_recover_truncated_record) {
        Image img = build_crashed(30, 10), fixed;
        OwOwpRecovery rec;

        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 1);
        ck_assert_uint_eq(rec.n_records, 30);
        ck_assert_uint_eq(rec.size, 184 + 30 * OW_RECORD_SIZE);
        ck_assert_uint_eq(rec.cut, 10);
        /* finished first: a crash between the two writes leaves a file
         * marked incomplete, which every reader counts by its size. */
        ck_assert_uint_eq(rec.patches[0].offset, OW_OWP_OFF_FINISHED);
        ck_assert_uint_eq(rec.patches[1].offset, OW_OWP_OFF_N_RECORDS);
        fixed = apply_recovery(&img, &rec);
        assert_recovered(&fixed, 30);
        /* Repaired once is repaired: nothing more to do. */
        ck_assert_int_eq(ow_owp_recover(fixed.data, fixed.size, &rec), 0);
        image_free(&fixed);
        image_free(&img);
}
END_TEST

START_TEST(test_recover_whole_records) {
        Image img = build_crashed(17, 0), fixed;
        OwOwpRecovery rec;

        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 1);
        ck_assert_uint_eq(rec.n_records, 17);
        ck_assert_uint_eq(rec.cut, 0);
        fixed = apply_recovery(&img, &rec);
        assert_recovered(&fixed, 17);
        image_free(&fixed);
        image_free(&img);
}
END_TEST

START_TEST(test_recover_header_only) {
        /* Killed before the first record came, or inside the first one. */
        for (size_t partial = 0; partial < OW_RECORD_SIZE; partial += 8) {
                Image img = build_crashed(0, partial), fixed;
                OwOwpRecovery rec;

                ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 1);
                ck_assert_uint_eq(rec.n_records, 0);
                ck_assert_uint_eq(rec.size, 184);
                ck_assert_uint_eq(rec.cut, partial);
                fixed = apply_recovery(&img, &rec);
                assert_recovered(&fixed, 0);
                image_free(&fixed);
                image_free(&img);
        }
}
END_TEST

START_TEST(test_recover_interrupted) {
        Image img = build_crashed(20, 3), fixed;
        OwOwpRecovery rec, again;
        OwOwpHeader h;
        OwOwpPatch p;

        /* Killed inside Stop-Sessions after step 1 (the count written, the
         * records compacted: fewer than on disk here, as a stale count). */
        ow_owp_header_init_receiver(1, &h);
        ck_assert_int_eq(ow_owp_header_set_n_records(&h, 12, &p), 0);
        apply(&p, &img);
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 1);
        ck_assert_uint_eq(rec.n_records, 20);

        /* Killed inside a repair: cut, not yet patched; then with finished
         * written and the count not. */
        fixed = image_new(rec.size);
        memcpy(fixed.data, img.data, rec.size);
        ck_assert_int_eq(ow_owp_recover(fixed.data, fixed.size, &again), 1);
        ck_assert_uint_eq(again.cut, 0);
        ck_assert_uint_eq(again.n_records, 20);
        apply(&rec.patches[0], &fixed);
        ck_assert_int_eq(ow_owp_recover(fixed.data, fixed.size, &again), 0);
        OwOwpFile f;
        ck_assert_int_eq(image_parse(&fixed, &f), 0);
        ck_assert_uint_eq(f.n_records, 20);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_INCOMPLETE);
        image_free(&fixed);
        image_free(&img);
}
END_TEST

START_TEST(test_recover_leaves_alone) {
        Image ref = image_load("keep30-from.owp"), fetched = image_load("keep30-to.owp");
        Image skips = build_receiver_with_skips(), img;
        OwOwpRecovery rec = { .n_records = 4242 };
        OwOwpFile v3;

        /* Finished normally, from a receiver and from a fetch client. */
        ck_assert_int_eq(ow_owp_recover(ref.data, ref.size, &rec), 0);
        ck_assert_int_eq(ow_owp_recover(fetched.data, fetched.size, &rec), 0);
        ck_assert_int_eq(ow_owp_recover(skips.data, skips.size, &rec), 0);

        /* Marked incomplete by a SIGTERM (or by a repair). */
        img = build_crashed(30, 0);
        ow_put_be32(img.data + OW_OWP_OFF_FINISHED, OW_OWP_FINISHED_INCOMPLETE);
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 0);

        /* Invalid at Stop-Sessions: finished 0 with the sender's Next
         * Seqno, or with the skip offset set (when Next Seqno is 0). */
        ow_put_be32(img.data + OW_OWP_OFF_FINISHED, OW_OWP_FINISHED_ERROR);
        ow_put_be32(img.data + OW_OWP_OFF_NEXT_SEQNO, 17);
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 0);
        ow_put_be32(img.data + OW_OWP_OFF_NEXT_SEQNO, 0);
        ow_put_be32(img.data + OW_OWP_OFF_N_RECORDS, 30);
        ow_put_be64(img.data + OW_OWP_OFF_SKIPS, img.size);
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 0);
        image_free(&img);

        /* Old versions are never written, so never repaired. */
        img = build_old(2, 5, OW_OWP_FINISHED_ERROR, &v3);
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 0);
        free((void *) v3.data);
        image_free(&img);

        ck_assert_uint_eq(rec.n_records, 4242); /* untouched */
        image_free(&skips);
        image_free(&fetched);
        image_free(&ref);
}
END_TEST

START_TEST(test_recover_errors) {
        Image img = build_crashed(3, 0);
        OwOwpRecovery rec = { .n_records = 4242 };

        ck_assert_int_eq(ow_owp_recover(img.data, img.size, NULL), -EINVAL);
        ck_assert_int_eq(ow_owp_recover(NULL, 5, &rec), -EINVAL);
        /* Cut inside the header: nothing to keep, and nothing to guess. */
        ck_assert_int_eq(ow_owp_recover(img.data, 183, &rec), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_owp_recover(img.data, 0, &rec), -OW_ERR_TRUNCATED);
        img.data[0] = 'X';
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), -OW_ERR_MAGIC);
        img.data[0] = 'O';
        ow_put_be32(img.data + OW_OWP_OFF_FINISHED, 7);
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), -OW_ERR_FINISHED);
        ck_assert_uint_eq(rec.n_records, 4242);
        image_free(&img);
}
END_TEST

/* ------------------------------------------------------------------------
 * Cleaning and the finishing patches
 * ------------------------------------------------------------------------ */

static void put_record(uint8_t *buf, uint32_t i, uint32_t seq, OwTimestamp send, OwTimestamp recv) {
        OwRecord r = { .seq = seq, .send_err = OW_ERREST_UNSYNC, .recv_err = OW_ERREST_UNSYNC,
                       .send_time = send, .recv_time = recv, .ttl = OW_TTL_UNKNOWN };

        ow_record_encode(&r, buf + (size_t) i * OW_RECORD_SIZE);
}

START_TEST(test_records_clean) {
        const OwTimestamp sec = OW_TIMESTAMP_FROM_SEC(1);
        const OwTimestamp stop = 100 * sec, timeout = 10 * sec;
        uint8_t buf[6 * OW_RECORD_SIZE], want[3 * OW_RECORD_SIZE];
        uint32_t kept = 99;

        /* Next Seqno 4: 0 kept, 1 sent too close to the stop (after
         * stop - timeout), 2 does not decode (error estimate multiplier 0),
         * 3 kept (lost), 5 lost past Next Seqno: dropped, 3 again kept. */
        put_record(buf, 0, 0, 10 * sec, 11 * sec);
        put_record(buf, 1, 1, 95 * sec, 96 * sec);
        put_record(buf, 2, 2, 20 * sec, 21 * sec);
        buf[2 * OW_RECORD_SIZE + 4] = 0;
        buf[2 * OW_RECORD_SIZE + 5] = 0;
        put_record(buf, 3, 3, 30 * sec, 0);
        put_record(buf, 4, 5, 40 * sec, 0);
        put_record(buf, 5, 3, 31 * sec, 32 * sec);
        memcpy(want, buf, OW_RECORD_SIZE);
        memcpy(want + OW_RECORD_SIZE, buf + 3 * OW_RECORD_SIZE, OW_RECORD_SIZE);
        memcpy(want + 2 * OW_RECORD_SIZE, buf + 5 * OW_RECORD_SIZE, OW_RECORD_SIZE);

        ck_assert_int_eq(ow_owp_records_clean(buf, 6, 4, stop, timeout, &kept), 0);
        ck_assert_uint_eq(kept, 3);
        ck_assert_mem_eq(buf, want, sizeof(want));

        /* A received packet at Next Seqno: invalid, *ret_kept untouched. */
        kept = 99;
        put_record(buf, 0, 0, 10 * sec, 11 * sec);
        put_record(buf, 1, 4, 11 * sec, 12 * sec);
        ck_assert_int_eq(ow_owp_records_clean(buf, 2, 4, stop, timeout, &kept), 1);
        ck_assert_uint_eq(kept, 99);

        ck_assert_int_eq(ow_owp_records_clean(NULL, 0, 4, stop, timeout, &kept), 0);
        ck_assert_uint_eq(kept, 0);
        ck_assert_int_eq(ow_owp_records_clean(NULL, 1, 4, stop, timeout, &kept), -EINVAL);
}
END_TEST

START_TEST(test_header_finish) {
        OwOwpHeader h, step;
        OwOwpPatch p[OW_OWP_FINISH_PATCHES], q, q2[2], q3;

        /* The same patches as the three steps one by one. */
        ow_owp_header_init_receiver(1, &h);
        step = h;
        ck_assert_int_eq(ow_owp_header_set_n_records(&step, 7, &q), 0);
        ck_assert_int_eq(ow_owp_header_set_n_skips(&step, 2, q2), 0);
        ck_assert_int_eq(ow_owp_header_set_finished(&step, OW_OWP_FINISHED_NORMAL, 9, &q3), 0);
        ck_assert_int_eq(ow_owp_header_finish(&h, 7, 2, OW_OWP_FINISHED_NORMAL, 9, p), 0);
        ck_assert_mem_eq(&h, &step, sizeof(h));
        ck_assert_mem_eq(&p[0], &q, sizeof(q));
        ck_assert_mem_eq(&p[1], &q2[0], sizeof(q));
        ck_assert_mem_eq(&p[2], &q2[1], sizeof(q));
        ck_assert_mem_eq(&p[3], &q3, sizeof(q));
        ck_assert_uint_eq(h.skips_offset, 184 + 7 * OW_RECORD_SIZE);

        /* A second time: refused, h unchanged. */
        ck_assert_int_eq(ow_owp_header_finish(&h, 7, 2, OW_OWP_FINISHED_NORMAL, 9, p), -OW_ERR_STATE);
        ck_assert_mem_eq(&h, &step, sizeof(h));
        ow_owp_header_init_receiver(1, &h);
        step = h;
        ck_assert_int_eq(ow_owp_header_finish(&h, 7, 0, (OwOwpFinished) 3, 9, p), -OW_ERR_FINISHED);
        ck_assert_mem_eq(&h, &step, sizeof(h));
}
END_TEST

START_TEST(test_header_mark_incomplete) {
        OwOwpHeader h;
        OwOwpPatch p[OW_OWP_INCOMPLETE_PATCHES];

        ow_owp_header_init_receiver(1, &h);
        ck_assert_int_eq(ow_owp_header_mark_incomplete(&h, 5, p), 0);
        ck_assert_int_eq(h.finished, OW_OWP_FINISHED_INCOMPLETE);
        ck_assert_uint_eq(h.n_records, 5);
        ck_assert_uint_eq(p[0].offset, OW_OWP_OFF_FINISHED);
        ck_assert_uint_eq(p[0].len, 8);
        ck_assert_mem_eq(p[0].bytes, "\0\0\0\2\0\0\0\0", 8);
        ck_assert_uint_eq(p[1].offset, OW_OWP_OFF_N_RECORDS);
        ck_assert_mem_eq(p[1].bytes, "\0\0\0\5", 4);

        /* Once the skip ranges sit behind the records: refused, unchanged. */
        OwOwpPatch f[OW_OWP_FINISH_PATCHES];
        ck_assert_int_eq(ow_owp_header_finish(&h, 5, 1, OW_OWP_FINISHED_NORMAL, 5, f), 0);
        OwOwpHeader before = h;
        ck_assert_int_eq(ow_owp_header_mark_incomplete(&h, 5, p), -OW_ERR_STATE);
        ck_assert_mem_eq(&h, &before, sizeof(h));
}
END_TEST

int main(void) {
        Suite *s = suite_create("owp");
        TCase *tc;

        tc = tcase_create("fixtures");
        tcase_add_loop_test(tc, test_fixture_parse, 0, (int) ELEMENTSOF(fixtures));
        tcase_add_test(tc, test_fixture_keep30_identity);
        suite_add_tcase(s, tc);

        tc = tcase_create("write");
        tcase_add_test(tc, test_write_receiver);
        tcase_add_test(tc, test_write_fetched);
        tcase_add_test(tc, test_header_init_fetched);
        tcase_add_test(tc, test_header_encode_errors);
        tcase_add_test(tc, test_patch_rules);
        suite_add_tcase(s, tc);

        tc = tcase_create("skips");
        tcase_add_test(tc, test_skips_receiver);
        tcase_add_test(tc, test_skips_fetched);
        suite_add_tcase(s, tc);

        tc = tcase_create("old-versions");
        tcase_add_test(tc, test_version2);
        tcase_add_test(tc, test_version0);
        suite_add_tcase(s, tc);

        tc = tcase_create("reject");
        tcase_add_test(tc, test_reject_header);
        tcase_add_test(tc, test_reject_request);
        tcase_add_test(tc, test_reject_offsets);
        tcase_add_test(tc, test_reject_counts);
        tcase_add_test(tc, test_reject_misaligned);
        tcase_add_test(tc, test_reject_records);
        suite_add_tcase(s, tc);

        tc = tcase_create("misc");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_slots);
        tcase_add_test(tc, test_million_records);
        tcase_add_test(tc, test_unfinished_counts);
        suite_add_tcase(s, tc);

        tc = tcase_create("recover");
        tcase_add_test(tc, test_recover_truncated_record);
        tcase_add_test(tc, test_recover_whole_records);
        tcase_add_test(tc, test_recover_header_only);
        tcase_add_test(tc, test_recover_interrupted);
        tcase_add_test(tc, test_recover_leaves_alone);
        tcase_add_test(tc, test_recover_errors);
        suite_add_tcase(s, tc);

        tc = tcase_create("finish");
        tcase_add_test(tc, test_records_clean);
        tcase_add_test(tc, test_header_finish);
        tcase_add_test(tc, test_header_mark_incomplete);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
