/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The .owp writer (src/shared/owp-writer.h) against real files: the
 * reference's own files written again octet for octet, and every file
 * it writes read back with ow_owp_parse().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "ow-error.h"
#include "ow-owp.h"
#include "owp-writer.h"
#include "testutil.h"

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

/* A new empty file, read-write, already unlinked unless path is wanted. */
static int temp_file(char path[static 64]) {
        snprintf(path, 64, "/tmp/test-owp-writer-XXXXXX");
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        return fd;
}

static Image file_read(int fd) {
        struct stat st;
        Image img;

        ck_assert_int_eq(fstat(fd, &st), 0);
        img.size = (size_t) st.st_size;
        img.data = malloc(img.size ? img.size : 1);
        ck_assert_ptr_nonnull(img.data);
        ck_assert_int_eq(pread(fd, img.data, img.size, 0), (ssize_t) img.size);
        return img;
}

static void assert_same_file(int fd, const Image *want) {
        Image got = file_read(fd);

        ck_assert_uint_eq(got.size, want->size);
        test_assert_bytes_eq(__FILE__, __LINE__, got.data, want->data, want->size);
        free(got.data);
}

/* The receiver-written fixtures (owping -F of the reference, and owampd's
 * data directory file), written again as a receiver writes them: records
 * appended in two batches as they come, then finished. */
static const char *const receiver_fixtures[] = {
        "exp100-from.owp", "fixed50-from.owp", "impaired-from.owp", "pad100-from.owp", "keep30-from.owp",
        "keep30-to.owampd-datadir.owp",
};

START_TEST(test_receiver_fixture) {
        Image ref = image_load(receiver_fixtures[_i]);
        OwOwpFile f;
        OwSessionRequest req;
        OwpWriter w = OWP_WRITER_NULL;
        char path[64];
        bool invalid = true;

        ck_assert_int_eq(ow_owp_parse(ref.data, ref.size, &f), 0);
        ck_assert_int_eq(f.layout, OW_OWP_LAYOUT_RECEIVER);
        req = f.request;
        ck_assert_int_eq(ow_owp_get_slots_alloc(&f, &req.slots), 1);
        _cleanup_free_ OwSkipRange *skips = calloc(f.header.n_skips + 1, sizeof(OwSkipRange));
        for (uint32_t i = 0; i < f.header.n_skips; i++)
                ck_assert_int_eq(ow_owp_get_skip_range(&f, i, &skips[i]), 0);

        int fd = temp_file(path);
        unlink(path);
        ck_assert_int_eq(owp_writer_start_receiver(&w, fd, &req), 0);
        ck_assert_uint_eq(w.size, f.header_size);
        const uint8_t *recs = ref.data + f.header.records_offset;
        uint32_t half = f.n_records / 2;
        ck_assert_int_eq(owp_writer_append(&w, recs, half), 0);
        ck_assert_int_eq(owp_writer_append(&w, recs + (size_t) half * OW_RECORD_SIZE, f.n_records - half), 0);
        ck_assert_uint_eq(w.n_records, f.n_records);

        OwpFinish fin = { .next_seqno = f.header.next_seqno, .skips = skips, .n_skips = f.header.n_skips };
        ck_assert_int_eq(owp_writer_finalize(&w, &fin, &invalid), 0);
        ck_assert(!invalid);
        ck_assert_uint_eq(w.size, ref.size);
        ck_assert_uint_eq(owp_writer_file_size(&w), ref.size);
        assert_same_file(fd, &ref);
        ck_assert_int_eq(owp_writer_close(&w), 0);
        ck_assert_int_eq(w.fd, -1);
        free(req.slots);
        free(ref.data);
}
END_TEST

/* The fetched fixtures (owping -T and owfetch of the reference). */
static const char *const fetched_fixtures[] = {
        "exp100-to.owp", "fixed50-to.owp", "impaired-to.owp", "pad100-to.owp", "keep30-to.owp",
        "keep30-to.owfetch.owp",
};

START_TEST(test_fetched_fixture) {
        Image ref = image_load(fetched_fixtures[_i]);
        OwOwpFile f;
        OwSessionRequest req;
        char path[64];

        ck_assert_int_eq(ow_owp_parse(ref.data, ref.size, &f), 0);
        ck_assert_int_eq(f.layout, OW_OWP_LAYOUT_FETCHED);
        req = f.request;
        ck_assert_int_eq(ow_owp_get_slots_alloc(&f, &req.slots), 1);
        _cleanup_free_ OwRecord *recs = calloc(f.n_records + 1, sizeof(OwRecord));
        _cleanup_free_ OwSkipRange *skips = calloc(f.header.n_skips + 1, sizeof(OwSkipRange));
        for (uint32_t i = 0; i < f.n_records; i++)
                ck_assert_int_eq(ow_owp_get_record(&f, i, &recs[i]), 0);
        for (uint32_t i = 0; i < f.header.n_skips; i++)
                ck_assert_int_eq(ow_owp_get_skip_range(&f, i, &skips[i]), 0);
        OwFetchAck ack = {
                .accept = OW_ACCEPT_OK,
                .finished = (uint8_t) f.header.finished,
                .next_seqno = f.header.next_seqno,
                .n_skip_ranges = f.header.n_skips,
                .n_records = f.n_records,
        };

        int fd = temp_file(path);
        unlink(path);
        ck_assert_int_eq(owp_write_fetched(fd, &req, &ack, skips, recs), 0);
        assert_same_file(fd, &ref);
        close(fd);
        free(req.slots);
        free(ref.data);
}
END_TEST

/* A small receive session of its own: 6 packets, one slot. */
static OwSlot test_slot = { .type = OW_SLOT_EXPONENTIAL, .param = OW_TIMESTAMP_FROM_SEC(1) / 10 };

static OwSessionRequest test_request(void) {
        return (OwSessionRequest) {
                .ipvn = 4,
                .conf_sender = false,
                .conf_receiver = true,
                .n_slots = 1,
                .n_packets = 6,
                .sender_addr = { 127, 0, 0, 1 },
                .receiver_addr = { 127, 0, 0, 1 },
                .sender_port = 9000,
                .receiver_port = 9001,
                .timeout = OW_TIMESTAMP_FROM_SEC(2),
                .slots = &test_slot,
        };
}

static OwRecord test_record(uint32_t seq, uint32_t send_sec, bool lost) {
        return (OwRecord) {
                .seq = seq,
                .send_err = OW_ERREST_UNSYNC,
                .recv_err = OW_ERREST_UNSYNC,
                .send_time = OW_TIMESTAMP_FROM_SEC(send_sec),
                .recv_time = lost ? 0 : OW_TIMESTAMP_FROM_SEC(send_sec + 1),
                .ttl = OW_TTL_UNKNOWN,
        };
}

START_TEST(test_finalize_cleans) {
        OwSessionRequest req = test_request();
        OwpWriter w = OWP_WRITER_NULL;
        OwRecord recs[6];
        char path[64];
        bool invalid = true;

        /* Next Seqno 4 and the stop at 20 s with Timeout 2 s: 0, 1 kept;
         * 2 sent at 19 s, too close to the stop: dropped; 3 kept (lost);
         * 4 lost past Next Seqno: dropped; 1 again (a duplicate) kept. */
        recs[0] = test_record(0, 10, false);
        recs[1] = test_record(1, 11, false);
        recs[2] = test_record(2, 19, false);
        recs[3] = test_record(3, 12, true);
        recs[4] = test_record(4, 13, true);
        recs[5] = test_record(1, 11, false);
        OwSkipRange skip = { .first = 2, .last = 2 };

        int fd = temp_file(path);
        unlink(path);
        ck_assert_int_eq(owp_writer_start_receiver(&w, fd, &req), 0);
        ck_assert_int_eq(owp_writer_append_records(&w, recs, 6), 0);
        OwpFinish fin = {
                .next_seqno = 4,
                .skips = &skip,
                .n_skips = 1,
                .clean = true,
                .stop_time = OW_TIMESTAMP_FROM_SEC(20),
                .timeout = req.timeout,
                .sync = true,
        };
        ck_assert_int_eq(owp_writer_finalize(&w, &fin, &invalid), 0);
        ck_assert(!invalid);
        ck_assert_uint_eq(w.n_records, 4);

        Image img = file_read(fd);
        OwOwpFile f;
        ck_assert_uint_eq(img.size, 184 + 4 * OW_RECORD_SIZE + OW_SKIP_RANGE_SIZE);
        ck_assert_uint_eq(w.size, img.size);
        ck_assert_int_eq(ow_owp_parse(img.data, img.size, &f), 0);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_NORMAL);
        ck_assert_uint_eq(f.header.next_seqno, 4);
        ck_assert_uint_eq(f.n_records, 4);
        ck_assert_uint_eq(f.header.n_skips, 1);
        ck_assert_uint_eq(f.header.skips_offset, 184 + 4 * OW_RECORD_SIZE);
        static const uint32_t want_seq[] = { 0, 1, 3, 1 };
        for (uint32_t i = 0; i < 4; i++) {
                OwRecord r;
                ck_assert_int_eq(ow_owp_get_record(&f, i, &r), 0);
                ck_assert_uint_eq(r.seq, want_seq[i]);
        }
        OwSkipRange s;
        ck_assert_int_eq(ow_owp_get_skip_range(&f, 0, &s), 0);
        ck_assert_uint_eq(s.first, 2);
        ck_assert_uint_eq(s.last, 2);
        /* Finished: nothing for start-up recovery to do. */
        OwOwpRecovery rec;
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 0);
        free(img.data);
        ck_assert_int_eq(owp_writer_close(&w), 0);
}
END_TEST

START_TEST(test_finalize_invalid) {
        OwSessionRequest req = test_request();
        OwpWriter w = OWP_WRITER_NULL;
        OwRecord recs[3] = { test_record(0, 10, false), test_record(5, 11, false), test_record(1, 12, false) };
        char path[64];
        bool invalid = false;

        int fd = temp_file(path);
        unlink(path);
        ck_assert_int_eq(owp_writer_start_receiver(&w, fd, &req), 0);
        ck_assert_int_eq(owp_writer_append_records(&w, recs, 3), 0);
        /* Seq 5 arrived, the sender says Next Seqno 3: invalid. */
        OwpFinish fin = { .next_seqno = 3, .clean = true, .stop_time = OW_TIMESTAMP_FROM_SEC(20),
                          .timeout = req.timeout };
        ck_assert_int_eq(owp_writer_finalize(&w, &fin, &invalid), 0);
        ck_assert(invalid);

        Image img = file_read(fd);
        OwOwpFile f;
        ck_assert_uint_eq(img.size, 184 + 3 * OW_RECORD_SIZE);
        ck_assert_int_eq(ow_owp_parse(img.data, img.size, &f), 0);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_ERROR);
        ck_assert_uint_eq(f.header.next_seqno, 3);
        ck_assert_uint_eq(f.header.n_records, 3);
        ck_assert_uint_eq(f.header.n_skips, 0);
        ck_assert_uint_eq(f.header.skips_offset, 184 + 3 * OW_RECORD_SIZE);
        /* Told from a file whose writer died: left alone at start-up. */
        OwOwpRecovery rec;
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 0);
        free(img.data);
        ck_assert_int_eq(owp_writer_close(&w), 0);
}
END_TEST

START_TEST(test_mark_incomplete) {
        OwSessionRequest req = test_request();
        OwpWriter w = OWP_WRITER_NULL;
        OwRecord recs[2] = { test_record(0, 10, false), test_record(1, 11, true) };
        char path[64];

        int fd = temp_file(path);
        unlink(path);
        ck_assert_int_eq(owp_writer_start_receiver(&w, fd, &req), 0);
        ck_assert_int_eq(owp_writer_append_records(&w, recs, 2), 0);
        ck_assert_int_eq(owp_writer_mark_incomplete(&w), 0);

        Image img = file_read(fd);
        OwOwpFile f;
        ck_assert_int_eq(ow_owp_parse(img.data, img.size, &f), 0);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_INCOMPLETE);
        ck_assert_uint_eq(f.header.n_records, 2);
        ck_assert_uint_eq(f.n_records, 2);
        ck_assert_uint_eq(f.header.skips_offset, 0);
        free(img.data);
        ck_assert_int_eq(owp_writer_close(&w), 0);
}
END_TEST

/* A writer that died mid-record: ow_owp_recover()'s plan applied by
 * owp_file_repair() gives what mark_incomplete would have. */
START_TEST(test_repair) {
        OwSessionRequest req = test_request();
        OwpWriter w = OWP_WRITER_NULL;
        OwRecord recs[3] = { test_record(0, 10, false), test_record(1, 11, false), test_record(2, 12, true) };
        char path[64];
        const char *step = NULL;

        int fd = temp_file(path);
        unlink(path);
        ck_assert_int_eq(owp_writer_start_receiver(&w, fd, &req), 0);
        ck_assert_int_eq(owp_writer_append_records(&w, recs, 3), 0);
        ck_assert_int_eq(pwrite(fd, "torn record", 11, (off_t) w.size), 11);

        Image img = file_read(fd);
        OwOwpRecovery rec;
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 1);
        ck_assert_uint_eq(rec.cut, 11);
        ck_assert_uint_eq(rec.n_records, 3);
        free(img.data);
        ck_assert_int_eq(owp_file_repair(fd, &rec, &step), 0);
        ck_assert_ptr_null(step);

        img = file_read(fd);
        OwOwpFile f;
        ck_assert_uint_eq(img.size, w.size);
        ck_assert_int_eq(ow_owp_parse(img.data, img.size, &f), 0);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_INCOMPLETE);
        ck_assert_uint_eq(f.header.n_records, 3);
        ck_assert_int_eq(ow_owp_recover(img.data, img.size, &rec), 0);
        free(img.data);

        /* A repair that cannot write says which step. */
        ck_assert_int_eq(owp_writer_close(&w), 0);
        rec.cut = 1;
        ck_assert_int_eq(owp_file_repair(fd, &rec, &step), -EBADF);
        ck_assert_str_eq(step, "cutting its partial record");
        rec.cut = 0;
        ck_assert_int_eq(owp_file_repair(fd, &rec, &step), -EBADF);
        ck_assert_str_eq(step, "writing its header");
}
END_TEST

START_TEST(test_errors) {
        OwSessionRequest req = test_request();
        OwpWriter w = OWP_WRITER_NULL;
        OwRecord r = test_record(0, 1, false);
        bool invalid;

        ck_assert_int_eq(owp_writer_append_records(&w, &r, 1), -EBADF);
        ck_assert_int_eq(owp_writer_finalize(&w, &(OwpFinish) {}, &invalid), -EBADF);
        ck_assert_int_eq(owp_writer_mark_incomplete(&w), -EBADF);
        ck_assert_int_eq(owp_writer_close(&w), 0);

        /* A bad request is refused before anything is written; the fd
         * stays the caller's. */
        char path[64];
        int fd = temp_file(path);
        unlink(path);
        req.ipvn = 5;
        ck_assert_int_eq(owp_writer_start_receiver(&w, fd, &req), -OW_ERR_IPVN);
        ck_assert_int_eq(w.fd, -1);
        Image img = file_read(fd);
        ck_assert_uint_eq(img.size, 0);
        free(img.data);
        /* Not writable: the write's error. */
        req.ipvn = 4;
        int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(ro, 0);
        ck_assert_int_eq(owp_writer_start_receiver(&w, ro, &req), -EBADF);
        close(ro);
        close(fd);
}
END_TEST

/* A file that appears only once whole: under its temporary name while
 * written, renamed at the commit; removed when closed uncommitted. */
START_TEST(test_temp_commit) {
        OwSessionRequest req = test_request();
        OwpWriter w = OWP_WRITER_NULL;
        OwRecord recs[2] = { test_record(0, 10, false), test_record(1, 11, false) };
        char dir[] = "/tmp/test-owp-writer-dir-XXXXXX";
        _cleanup_free_ char *path = NULL, *path2 = NULL;
        struct stat st;
        bool invalid = true;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_ge(asprintf(&path, "%s/session.owp", dir), 0);
        ck_assert_int_ge(asprintf(&path2, "%s/other.owp", dir), 0);

        ck_assert_int_eq(owp_writer_create_temp(&w, path, 0640, &req), 0);
        ck_assert_ptr_nonnull(w.temp_path);
        ck_assert_int_eq(strncmp(w.temp_path, path, strlen(path)), 0);
        ck_assert_int_eq(stat(w.temp_path, &st), 0);
        ck_assert_int_eq(stat(path, &st), -1);
        ck_assert_int_eq(owp_writer_append_records(&w, recs, 2), 0);
        OwpFinish fin = { .next_seqno = 2 };
        ck_assert_int_eq(owp_writer_finalize(&w, &fin, &invalid), 0);
        ck_assert(!invalid);
        _cleanup_free_ char *temp = strdup(w.temp_path);
        ck_assert_int_eq(owp_writer_commit(&w), 0);
        ck_assert_int_eq(w.fd, -1);
        ck_assert_ptr_null(w.temp_path);
        ck_assert_int_eq(stat(temp, &st), -1);

        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        Image img = file_read(fd);
        close(fd);
        OwOwpFile f;
        ck_assert_int_eq(ow_owp_parse(img.data, img.size, &f), 0);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_NORMAL);
        ck_assert_uint_eq(f.n_records, 2);
        free(img.data);
        ck_assert_int_eq(owp_writer_commit(&w), -EBADF);

        /* Given up: nothing left behind. */
        ck_assert_int_eq(owp_writer_create_temp(&w, path2, 0640, &req), 0);
        free(temp);
        temp = strdup(w.temp_path);
        ck_assert_int_eq(owp_writer_close(&w), 0);
        ck_assert_int_eq(stat(temp, &st), -1);
        ck_assert_int_eq(stat(path2, &st), -1);

        /* A directory that does not exist. */
        free(path2);
        ck_assert_int_ge(asprintf(&path2, "%s/none/x.owp", dir), 0);
        ck_assert_int_eq(owp_writer_create_temp(&w, path2, 0640, &req), -ENOENT);

        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("owp-writer");
        TCase *tc;

        tc = tcase_create("reference");
        tcase_add_loop_test(tc, test_receiver_fixture, 0, (int) ELEMENTSOF(receiver_fixtures));
        tcase_add_loop_test(tc, test_fetched_fixture, 0, (int) ELEMENTSOF(fetched_fixtures));
        suite_add_tcase(s, tc);

        tc = tcase_create("receiver");
        tcase_add_test(tc, test_finalize_cleans);
        tcase_add_test(tc, test_finalize_invalid);
        tcase_add_test(tc, test_mark_incomplete);
        tcase_add_test(tc, test_repair);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_temp_commit);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
