/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owampd's data directory (src/owampd/datastore.c) in a temporary
 * directory, without a connection or a policy: the index built from
 * <datadir>/hierarchy (what is not a session file ignored), Fetch-Session
 * answered into a recording FetchSink (the reference receiver's file of
 * test/data: every record of the range, in order, with its skip ranges;
 * the records streamed in batches; unknown SIDs and running sessions
 * refused), delete_on_fetch's removal, and the start-up repair of a file
 * whose writer died.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datastore.h"
#include "macro.h"
#include "ow-owp.h"
#include "server.h"
#include "testutil.h"

#define FIXTURE "reference-outputs/impaired-from.owp"

#define DIR_TEMPLATE "/tmp/test-owampd-store-XXXXXX"
static char dir[sizeof(DIR_TEMPLATE)];
static Server srv;

static void setup(void) {
        /* A new one for each test: CK_FORK=no runs them all in one process. */
        memcpy(dir, DIR_TEMPLATE, sizeof(dir));
        ck_assert_ptr_nonnull(mkdtemp(dir));
        srv = (Server){ .datadir = dir };
        log_setup("test-owampd-store", LOG_TARGET_NONE, 0, false, LOG_DEBUG);
}

static void teardown(void) {
        char cmd[600];
        datastore_done(&srv);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
}

static void mkdirs(const char *rel) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        for (char *q = path + strlen(dir) + 1; *q; q++)
                if (*q == '/') {
                        *q = 0;
                        (void) mkdir(path, 0755);
                        *q = '/';
                }
        ck_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void put(const char *rel, const void *data, size_t len) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, len), (ssize_t) len);
        close(fd);
}

static OwSid sid_of(uint8_t n) {
        OwSid sid = {};
        memset(&sid, n, sizeof(sid));
        return sid;
}

/* The fixture stored as session sid_of(n) in class path "root/regular". */
static void put_fixture(uint8_t n, uint8_t **ret_data, size_t *ret_len) {
        char rel[256], hex[OW_SID_HEX_SIZE];
        OwSid sid = sid_of(n);
        test_read_file(test_data_path(FIXTURE), ret_data, ret_len);
        mkdirs(DATASTORE_HIERARCHY_DIR "/root/regular");
        snprintf(rel, sizeof(rel), DATASTORE_HIERARCHY_DIR "/root/regular/%s.owp", ow_sid_to_hex(&sid, hex));
        put(rel, *ret_data, *ret_len);
}

/* --- A FetchSink that records what it is given ----------------------------- */

typedef struct Recorder {
        unsigned n_acks, n_requests, n_skips_calls, n_records_calls;
        OwFetchAck ack;
        OwSessionRequest req;
        OwSkipRange skips[64];
        uint32_t n_skips;
        OwRecord *recs;
        uint32_t n_recs;
        uint32_t left; /* announced, not yet given */
        uint32_t max_batch;
} Recorder;

static int rec_ack(void *userdata, const OwFetchAck *ack) {
        Recorder *r = userdata;
        r->n_acks++;
        r->ack = *ack;
        r->left = ack->accept == OW_ACCEPT_OK ? ack->n_records : 0;
        return 0;
}

static int rec_request(void *userdata, const OwSessionRequest *req) {
        Recorder *r = userdata;
        r->n_requests++;
        r->req = *req;
        r->req.slots = NULL;
        return 0;
}

static int rec_skips(void *userdata, const OwSkipRange *skips, uint32_t n) {
        Recorder *r = userdata;
        r->n_skips_calls++;
        ck_assert_uint_le(n, ELEMENTSOF(r->skips));
        if (n > 0)
                memcpy(r->skips, skips, n * sizeof(*skips));
        r->n_skips = n;
        return 0;
}

static int rec_records(void *userdata, const OwRecord *recs, uint32_t n) {
        Recorder *r = userdata;
        ck_assert_uint_le(n, r->left);
        r->n_records_calls++;
        r->max_batch = MAX(r->max_batch, n);
        r->recs = reallocarray(r->recs, r->n_recs + n + 1, sizeof(OwRecord));
        ck_assert_ptr_nonnull(r->recs);
        memcpy(r->recs + r->n_recs, recs, n * sizeof(*recs));
        r->n_recs += n;
        r->left -= n;
        return 0;
}

static uint32_t rec_left(void *userdata) {
        Recorder *r = userdata;
        return r->left;
}

static int rec_put(void *userdata, const FetchPart *part) {
        switch (part->type) {
        case FETCH_PART_ACK:
                return rec_ack(userdata, part->ack);
        case FETCH_PART_REQUEST:
                return rec_request(userdata, part->request);
        case FETCH_PART_SKIPS:
                return rec_skips(userdata, part->skips, part->n);
        case FETCH_PART_RECORDS:
                return rec_records(userdata, part->records, part->n);
        }
        ck_abort_msg("part of no type");
        return -EINVAL;
}

static FetchSink sink_of(Recorder *r) {
        return (FetchSink){ .put = rec_put, .records_left = rec_left, .userdata = r };
}

static const FetchRequester who = { .peer_str = "127.0.0.1:4000", .fields = { .peer = "127.0.0.1" } };

/* Everything the range holds, from the file itself. */
static uint32_t expected_records(const uint8_t *data, size_t len, uint32_t begin, uint32_t end, OwRecord *out) {
        OwOwpFile f;
        uint32_t n = 0;
        ck_assert_int_eq(ow_owp_parse(data, len, &f), 0);
        for (uint32_t i = 0; i < f.n_records; i++) {
                OwRecord rec;
                if (ow_owp_get_record(&f, i, &rec) >= 0 && rec.seq >= begin && rec.seq <= end) {
                        if (out)
                                out[n] = rec;
                        n++;
                }
        }
        return n;
}

/* Answer a fetch as conn.c does: the head at once, the records as the
 * sink takes them. */
static int fetch(const OwFetchSession *f, bool running, Recorder *r, bool *ret_whole) {
        FetchSink sink = sink_of(r);
        FetchStream *fs = NULL;
        int ret = datastore_fetch(&srv, f, running, 0, &who, &sink, &fs, ret_whole);
        for (unsigned i = 0; fs && i < 1000; i++) {
                int k = datastore_fetch_more(fs, &sink);
                ck_assert_int_ge(k, 0);
                if (k > 0)
                        fs = datastore_fetch_stream_free(fs);
        }
        ck_assert_ptr_null(fs);
        return ret;
}

START_TEST(test_scan) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t len;
        put_fixture(1, &data, &len);
        /* Not session files: a file outside any class, a bad name, a
         * directory named like a file. */
        put(DATASTORE_HIERARCHY_DIR "/0101010101010101010101010101010a.owp", data, len);
        put(DATASTORE_HIERARCHY_DIR "/root/notasid.owp", data, len);
        mkdirs(DATASTORE_HIERARCHY_DIR "/root/0202020202020202020202020202020b.owp");

        ck_assert_int_eq(datastore_scan(&srv), 0);
        ck_assert_uint_eq(srv.n_files, 1);
        OwSid sid = sid_of(1), other = sid_of(2);
        StoredFile *sf = datastore_find(&srv, &sid);
        ck_assert_ptr_nonnull(sf);
        ck_assert_str_eq(sf->class_path, "root/regular");
        ck_assert_uint_eq(sf->size, len);
        ck_assert_ptr_null(sf->writer);
        ck_assert_ptr_null(datastore_find(&srv, &other));
        ck_assert_uint_gt(srv.files_scanned_usec, 0);
        ck_assert(!datastore_recount_allowed(&srv)); /* just counted */

        _cleanup_free_ char *path = datastore_path(&srv, "root/regular", &sid);
        char want[512], hex[OW_SID_HEX_SIZE];
        snprintf(want, sizeof(want), "%s/hierarchy/root/regular/%s.owp", dir, ow_sid_to_hex(&sid, hex));
        ck_assert_str_eq(path, want);

        datastore_forget(&srv, &sid);
        ck_assert_uint_eq(srv.n_files, 0);
        /* Counted again from the directory: it is back. */
        ck_assert_int_eq(datastore_scan(&srv), 0);
        ck_assert_uint_eq(srv.n_files, 1);
}
END_TEST

START_TEST(test_fetch_whole) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t len;
        put_fixture(1, &data, &len);
        ck_assert_int_eq(datastore_scan(&srv), 0);

        OwOwpFile file;
        ck_assert_int_eq(ow_owp_parse(data, len, &file), 0);
        uint32_t n = expected_records(data, len, 0, UINT32_MAX, NULL);
        _cleanup_free_ OwRecord *want = calloc(n, sizeof(OwRecord));
        expected_records(data, len, 0, UINT32_MAX, want);
        ck_assert_uint_gt(n, 100);

        Recorder r = {};
        bool whole = false;
        OwFetchSession f = { .sid = sid_of(1), .begin = 0, .end = UINT32_MAX };
        ck_assert_int_eq(fetch(&f, false, &r, &whole), 0);
        ck_assert_uint_eq(r.n_acks, 1);
        ck_assert_int_eq(r.ack.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(r.ack.finished, 1);
        ck_assert_uint_eq(r.ack.next_seqno, file.header.next_seqno);
        ck_assert_uint_eq(r.ack.n_records, n);
        ck_assert_uint_eq(r.ack.n_skip_ranges, file.header.n_skips);
        ck_assert_uint_eq(r.n_requests, 1);
        ck_assert_uint_eq(r.req.n_packets, file.request.n_packets);
        ck_assert_uint_eq(r.n_skips, file.header.n_skips);
        for (uint32_t i = 0; i < r.n_skips; i++) {
                OwSkipRange sk;
                ck_assert_int_eq(ow_owp_get_skip_range(&file, i, &sk), 0);
                ck_assert_uint_eq(r.skips[i].first, sk.first);
                ck_assert_uint_eq(r.skips[i].last, sk.last);
        }
        ck_assert_uint_eq(r.n_recs, n);
        for (uint32_t i = 0; i < n; i++) {
                ck_assert_uint_eq(r.recs[i].seq, want[i].seq);
                ck_assert_uint_eq(r.recs[i].recv_time, want[i].recv_time);
        }
        ck_assert(whole); /* finished and settled: delete_on_fetch may remove it */
        free(r.recs);

        /* delete_on_fetch: the file and its entry go. */
        OwSid sid = sid_of(1);
        _cleanup_free_ char *path = datastore_path(&srv, "root/regular", &sid);
        datastore_delete_fetched(&srv, &sid, &who);
        ck_assert_ptr_null(datastore_find(&srv, &sid));
        ck_assert_int_eq(access(path, F_OK), -1);
        ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_fetch_range_and_refusals) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t len;
        put_fixture(1, &data, &len);
        ck_assert_int_eq(datastore_scan(&srv), 0);

        /* A range: only its records, no skip ranges, not finished. */
        Recorder r = {};
        bool whole = true;
        OwFetchSession f = { .sid = sid_of(1), .begin = 10, .end = 19 };
        uint32_t n = expected_records(data, len, 10, 19, NULL);
        ck_assert_uint_ge(n, 9);
        ck_assert_int_eq(fetch(&f, false, &r, &whole), 0);
        ck_assert_int_eq(r.ack.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(r.ack.n_records, n);
        ck_assert_uint_eq(r.n_recs, n);
        for (uint32_t i = 0; i < n; i++)
                ck_assert(r.recs[i].seq >= 10 && r.recs[i].seq <= 19);
        ck_assert(!whole);
        free(r.recs);

        /* A range of a running session goes out at once: its file may
         * still change. */
        r = (Recorder){};
        ck_assert_int_eq(fetch(&f, true, &r, &whole), 0);
        ck_assert_int_eq(r.ack.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(r.ack.finished, 2);
        ck_assert_uint_eq(r.n_recs, n);
        free(r.recs);

        /* The whole of a running session: Accept 1, nothing else. */
        r = (Recorder){};
        f = (OwFetchSession){ .sid = sid_of(1), .begin = 0, .end = UINT32_MAX };
        ck_assert_int_eq(fetch(&f, true, &r, &whole), 0);
        ck_assert_uint_eq(r.n_acks, 1);
        ck_assert_int_eq(r.ack.accept, OW_ACCEPT_FAILURE);
        ck_assert_uint_eq(r.n_requests + r.n_skips_calls + r.n_records_calls, 0);
        ck_assert(!whole);

        /* An unknown SID: Accept 1. */
        r = (Recorder){};
        f.sid = sid_of(9);
        ck_assert_int_eq(fetch(&f, false, &r, &whole), 0);
        ck_assert_int_eq(r.ack.accept, OW_ACCEPT_FAILURE);
        ck_assert_uint_eq(r.n_requests, 0);

        /* Its file removed behind our back: Accept 1, and forgotten. */
        OwSid sid = sid_of(1);
        _cleanup_free_ char *path = datastore_path(&srv, "root/regular", &sid);
        ck_assert_int_eq(unlink(path), 0);
        r = (Recorder){};
        f.sid = sid;
        ck_assert_int_eq(fetch(&f, false, &r, &whole), 0);
        ck_assert_int_eq(r.ack.accept, OW_ACCEPT_FAILURE);
        ck_assert_ptr_null(datastore_find(&srv, &sid));

        /* A damaged file: Accept 2. */
        _cleanup_free_ uint8_t *copy = NULL;
        size_t copy_len;
        put_fixture(3, &copy, &copy_len);
        sid = sid_of(3);
        free(path);
        path = datastore_path(&srv, "root/regular", &sid);
        ck_assert_int_eq(truncate(path, 20), 0);
        ck_assert_int_eq(datastore_scan(&srv), 0);
        r = (Recorder){};
        f.sid = sid;
        ck_assert_int_eq(fetch(&f, false, &r, &whole), 0);
        ck_assert_int_eq(r.ack.accept, OW_ACCEPT_INTERNAL);
}
END_TEST

START_TEST(test_recover) {
        /* A receiver's opening header, 5 records and part of a sixth: what
         * a writer that died leaves. */
        OwSlot slot = { .type = OW_SLOT_FIXED, .param = UINT64_C(1) << 32 };
        OwSessionRequest req = { .ipvn = 4, .conf_receiver = true, .n_slots = 1, .n_packets = 10, .slots = &slot };
        OwOwpHeader h;
        size_t hsize = ow_owp_header_size(1);
        uint8_t buf[4096] = {};
        ow_owp_header_init_receiver(1, &h);
        ck_assert_int_eq(ow_owp_header_encode(&h, &req, buf, sizeof(buf)), (int) hsize);
        for (uint32_t i = 0; i < 5; i++) {
                OwRecord rec = { .seq = i, .send_time = (uint64_t) (i + 1) << 32, .recv_time = (uint64_t) (i + 2) << 32,
                                 .ttl = 255 };
                ow_record_encode(&rec, buf + hsize + (size_t) i * OW_RECORD_SIZE);
        }
        size_t len = hsize + 5 * OW_RECORD_SIZE + 7;
        mkdirs(DATASTORE_HIERARCHY_DIR "/root");
        put(DATASTORE_HIERARCHY_DIR "/root/05050505050505050505050505050505.owp", buf, len);

        ck_assert_int_eq(datastore_scan(&srv), 0);
        ck_assert_int_eq(datastore_recover(&srv), 1);
        OwSid sid = sid_of(5);
        StoredFile *sf = datastore_find(&srv, &sid);
        ck_assert_ptr_nonnull(sf);
        ck_assert_uint_eq(sf->size, hsize + 5 * OW_RECORD_SIZE);

        /* On disk: the partial record cut, marked incomplete with its count. */
        _cleanup_free_ char *path = datastore_path(&srv, "root", &sid);
        _cleanup_free_ uint8_t *data = NULL;
        size_t n;
        test_read_file(path, &data, &n);
        ck_assert_uint_eq(n, hsize + 5 * OW_RECORD_SIZE);
        OwOwpFile f;
        ck_assert_int_eq(ow_owp_parse(data, n, &f), 0);
        ck_assert_int_eq(f.header.finished, OW_OWP_FINISHED_INCOMPLETE);
        ck_assert_uint_eq(f.header.n_records, 5);
        /* Done once: nothing to repair the second time. */
        ck_assert_int_eq(datastore_recover(&srv), 0);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("owampd-store");
        TCase *tc = tcase_create("store");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_scan);
        tcase_add_test(tc, test_fetch_whole);
        tcase_add_test(tc, test_fetch_range_and_refusals);
        tcase_add_test(tc, test_recover);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(suite());
}
