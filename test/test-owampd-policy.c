/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owampd's policy (src/owampd/policy.c): owampd.limits and owampd.pfs
 * loaded from a directory, and the admission table - each limit just met
 * and just exceeded, with its Accept code, the reason's text and fields,
 * the usage the caller reports, the far endpoint, the disk hard limit at
 * settlement - all without a server.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "ow-limits.h"
#include "policy.h"
#include "testutil.h"

#define DIR_TEMPLATE "/tmp/test-owampd-policy-XXXXXX"
static char dir[sizeof(DIR_TEMPLATE)];

static void write_file(const char *name, const char *text, mode_t mode) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
        ck_assert_int_eq(chmod(path, mode), 0);
}

static void remove_files(void) {
        char path[512];
        const char *names[] = { "owampd.limits", "owampd.pfs" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                (void) unlink(path);
        }
}

static void setup(void) {
        /* A new one for each test: CK_FORK=no runs them all in one process. */
        memcpy(dir, DIR_TEMPLATE, sizeof(dir));
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
        remove_files();
        (void) rmdir(dir);
}

static Policy *load(const char *limits, const char *pfs) {
        Policy *p = NULL;
        char err[512];
        remove_files();
        if (limits)
                write_file("owampd.limits", limits, 0644);
        if (pfs)
                write_file("owampd.pfs", pfs, 0600);
        int r = policy_load(dir, false, &p, err, sizeof(err));
        ck_assert_msg(r == 0, "policy_load: %s", err);
        return p;
}

static SockAddr addr4(const char *a, uint16_t port) {
        SockAddr s = { .in = { .sin_family = AF_INET, .sin_port = htons(port) } };
        ck_assert_int_eq(inet_pton(AF_INET, a, &s.in.sin_addr), 1);
        return s;
}

/* A 10-packet session, one exponential slot of 0.1 s. */
static OwSlot slot = { .type = OW_SLOT_EXPONENTIAL, .param = (UINT64_C(1) << 32) / 10 };
static OwSessionRequest session_req(bool we_send) {
        return (OwSessionRequest){
                .ipvn = 4,
                .conf_sender = we_send,
                .conf_receiver = !we_send,
                .n_slots = 1,
                .n_packets = 10,
                .slots = &slot,
        };
}

/* What the caller says is in use: one running session and one stored
 * file, both charged to "root". */
typedef struct Usage {
        uint64_t bandwidth, disk;
        unsigned calls;
} Usage;

static void usage_fn(void *userdata, OwLimitKey key, PolicyTally *tally) {
        Usage *u = userdata;
        u->calls++;
        if (key == OW_LIMIT_BANDWIDTH && u->bandwidth)
                policy_tally_add(tally, "root", u->bandwidth);
        if (key == OW_LIMIT_DISK && u->disk) {
                policy_tally_add(tally, "root", u->disk);
                policy_tally_add(tally, "no/such/class", 1u << 30); /* charged nowhere */
        }
}

static SockAddr peer, far_peer;

static PolicyRequest request(const OwSessionRequest *req, Usage *u) {
        peer = addr4("127.0.0.1", 40000);
        return (PolicyRequest){
                .peer = &peer,
                .mode = OW_MODE_OPEN,
                .req = req,
                .we_send = req->conf_sender,
                .far = &peer,
                .usage = usage_fn,
                .userdata = u,
        };
}

START_TEST(test_no_policy) {
        OwSessionRequest req = session_req(false);
        Usage u = {};
        PolicyRequest r = request(&req, &u);
        PolicyVerdict v;

        policy_admit_session(NULL, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_INTERNAL);
        ck_assert_str_eq(v.text, "");
        ck_assert_uint_eq(policy_modes_for_peer(NULL, OW_MODE_OPEN | OW_MODE_ENCRYPTED, &peer),
                          OW_MODE_OPEN | OW_MODE_ENCRYPTED);
        uint8_t *secret;
        size_t len;
        ck_assert_int_eq(policy_lookup_key(NULL, "k", &secret, &len), -ENOENT);
        ck_assert_ptr_null(policy_class_for(NULL, &peer, NULL));
        ck_assert(!policy_delete_on_fetch(NULL, "root"));
}
END_TEST

START_TEST(test_missing_files_open) {
        _cleanup_(policy_unrefp) Policy *p = load(NULL, NULL);
        ck_assert(p->limits_missing && p->pfs_missing);
        OwSessionRequest req = session_req(false);
        Usage u = {};
        PolicyRequest r = request(&req, &u);
        PolicyVerdict v;

        policy_admit_session(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_OK);
        ck_assert_str_eq(v.class_name, "default");
        ck_assert_str_eq(v.class_path, "default");
        ck_assert_uint_eq(v.bandwidth_bps, ow_session_bandwidth(&req, OW_MODE_OPEN));
        ck_assert_uint_eq(v.disk, ow_session_disk(&req));
        ck_assert_uint_gt(v.disk, 0);
        /* Both usages asked for: bandwidth and disk (we receive). */
        ck_assert_uint_eq(u.calls, 2);
}
END_TEST

START_TEST(test_test_sessions) {
        _cleanup_(policy_unrefp) Policy *p = load("limit root with test_sessions=2\n", NULL);
        OwSessionRequest req = session_req(true);
        Usage u = {};
        PolicyRequest r = request(&req, &u);
        PolicyVerdict v;

        r.n_accepted = 1;
        policy_admit_session(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(v.disk, 0); /* sending costs no disk */

        r.n_accepted = 2;
        policy_admit_session(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_PERM_RESOURCE);
        ck_assert(v.has_limit);
        ck_assert_str_eq(v.limit_name, "test_sessions");
        ck_assert_str_eq(v.class_name, "root");
        ck_assert_str_eq(v.limit_class, "root");
        ck_assert_uint_eq(v.limit, 2);
        ck_assert_uint_eq(v.used, 2);
        ck_assert_uint_eq(v.requested, 1);
        ck_assert_str_eq(v.text, "test_sessions limit of class root is 2 sessions, 2 in use, 1 requested on "
                                 "this connection");
}
END_TEST

START_TEST(test_bandwidth) {
        OwSessionRequest req = session_req(true);
        uint64_t bps = ow_session_bandwidth(&req, OW_MODE_OPEN);
        char limits[128];
        PolicyVerdict v;
        Usage u = {};
        PolicyRequest r = request(&req, &u);

        /* Just met. */
        snprintf(limits, sizeof(limits), "limit root with bandwidth=%llu\n", (unsigned long long) bps);
        Policy *p = load(limits, NULL);
        policy_admit_session(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(v.bandwidth_bps, bps);
        /* Half of it in use elsewhere: temporary (Accept 5). */
        u.bandwidth = bps / 2;
        policy_admit_session(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_TEMP_RESOURCE);
        ck_assert_uint_eq(v.used, bps / 2);
        ck_assert_uint_eq(v.requested, bps);
        ck_assert_str_eq(v.limit_name, "bandwidth");
        char want[256];
        snprintf(want, sizeof(want), "bandwidth limit of class root is %llu bit/s, %llu in use, %llu requested",
                 (unsigned long long) bps, (unsigned long long) (bps / 2), (unsigned long long) bps);
        ck_assert_str_eq(v.text, want);
        policy_unref(p);

        /* One bit/s short: it can never fit (Accept 4). */
        u.bandwidth = 0;
        snprintf(limits, sizeof(limits), "limit root with bandwidth=%llu\n", (unsigned long long) (bps - 1));
        p = load(limits, NULL);
        policy_admit_session(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_PERM_RESOURCE);
        ck_assert_uint_eq(v.limit, bps - 1);
        ck_assert(!v.may_recount);
        policy_unref(p);
}
END_TEST

START_TEST(test_disk) {
        OwSessionRequest req = session_req(false);
        uint64_t disk = ow_session_disk(&req);
        char limits[128];
        PolicyVerdict v;
        Usage u = {};
        PolicyRequest r = request(&req, &u);

        snprintf(limits, sizeof(limits), "limit root with disk=%llu\n", (unsigned long long) disk);
        _cleanup_(policy_unrefp) Policy *p = load(limits, NULL);
        policy_admit_session(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(v.disk, disk);
        ck_assert_str_eq(v.class_path, "root");

        /* One octet stored: the caller may count its files again. */
        u.disk = 1;
        policy_admit_session(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_TEMP_RESOURCE);
        ck_assert(v.may_recount);
        ck_assert_str_eq(v.limit_name, "disk");
        ck_assert_uint_eq(v.used, 1);
        ck_assert_uint_eq(v.requested, disk);

        /* Settling: within the estimate always fits; one octet more with
         * diskfudge 1.0 and the limit used does not, 2.0 lets it. */
        u.disk = disk;
        policy_settle_disk(p, v.cls, disk, disk, 1000, usage_fn, &u, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_OK);
        policy_settle_disk(p, 0, disk, disk + 1, 1000, usage_fn, &u, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_FAILURE);
        ck_assert_str_eq(v.class_name, "root");
        ck_assert_str_eq(v.limit_name, "disk");
        char want[256];
        snprintf(want, sizeof(want),
                 "%llu octets, 1 more than estimated, exceed the disk hard limit of class root (%llu octets = disk x "
                 "diskfudge, %llu in use)",
                 (unsigned long long) (disk + 1), (unsigned long long) disk, (unsigned long long) disk);
        ck_assert_str_eq(v.text, want);
        policy_settle_disk(p, 0, disk, disk + 1, 2000, usage_fn, &u, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_OK);
}
END_TEST

START_TEST(test_endpoint) {
        OwSessionRequest req = session_req(true);
        Usage u = {};
        PolicyRequest r = request(&req, &u);
        PolicyVerdict v;
        _cleanup_(policy_unrefp) Policy *p = load("limit root with allow_foreign_endpoint=off\n", NULL);

        /* The host that asked: fine. */
        policy_check_endpoint(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_OK);

        far_peer = addr4("127.0.0.2", 5000);
        r.far = &far_peer;
        /* We send in open mode to another host: never. */
        policy_check_endpoint(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_FAILURE);
        ck_assert_ptr_null(v.class_name);
        ck_assert_str_eq(v.text, "open mode, and the receiver 127.0.0.2:5000 is not the requesting host");

        /* We receive from another host: the class says. */
        req.conf_sender = false;
        r.we_send = false;
        policy_check_endpoint(p, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_FAILURE);
        ck_assert_str_eq(v.class_name, "root");
        ck_assert_str_eq(v.limit_name, "allow_foreign_endpoint");
        ck_assert_str_eq(v.text,
                         "the sender 127.0.0.2:5000 is not the requesting host (allow_foreign_endpoint is off)");

        _cleanup_(policy_unrefp) Policy *p2 = load("limit root with allow_foreign_endpoint=on\n", NULL);
        policy_check_endpoint(p2, &r, &v);
        ck_assert_int_eq(v.accept, OW_ACCEPT_OK);
}
END_TEST

START_TEST(test_classes_modes_keys) {
        _cleanup_(policy_unrefp) Policy *p =
                load("limit root with allow_open_mode=on\n"
                     "limit closed with parent=root, allow_open_mode=off, delete_on_fetch=on\n"
                     "assign net 127.0.0.2/32 closed\n",
                     "alice\t0123456789abcdef\n");
        SockAddr a = addr4("127.0.0.1", 1), b = addr4("127.0.0.2", 1);
        uint32_t all = OW_MODE_OPEN | OW_MODE_AUTHENTICATED | OW_MODE_ENCRYPTED;

        ck_assert_uint_eq(policy_modes_for_peer(p, all, &a), all);
        ck_assert_uint_eq(policy_modes_for_peer(p, all, &b), OW_MODE_AUTHENTICATED | OW_MODE_ENCRYPTED);
        ck_assert_str_eq(policy_class_for(p, &b, NULL), "closed");
        ck_assert_str_eq(policy_class_for(p, &a, NULL), "root");
        ck_assert(policy_delete_on_fetch(p, "root/closed"));
        ck_assert(!policy_delete_on_fetch(p, "root"));
        ck_assert(!policy_delete_on_fetch(p, "gone"));

        uint8_t *secret = NULL;
        size_t len = 0;
        ck_assert_int_eq(policy_lookup_key(p, "alice", &secret, &len), 0);
        uint8_t want[8];
        test_unhex("0123456789abcdef", want, sizeof(want));
        ck_assert_uint_eq(len, sizeof(want));
        ck_assert_bytes_eq(secret, want, len);
        free(secret);
        ck_assert_int_eq(policy_lookup_key(p, "bob", &secret, &len), -ENOENT);
        ck_assert(!policy_pfs_insecure(p));
}
END_TEST

START_TEST(test_insecure_pfs) {
        Policy *p = NULL;
        char err[512];

        write_file("owampd.pfs", "alice\t00\n", 0644);
        ck_assert_int_eq(policy_load(dir, false, &p, err, sizeof(err)), -EPERM);
        ck_assert_ptr_null(p);
        ck_assert_ptr_nonnull(strstr(err, "owampd.pfs"));
        ck_assert_ptr_nonnull(strstr(err, "is readable by others (mode 0644)"));
        ck_assert_int_eq(policy_load(dir, true, &p, err, sizeof(err)), 0);
        ck_assert(policy_pfs_insecure(p));
        /* Referenced by sessions: the last reference frees it. */
        ck_assert_ptr_eq(policy_ref(p), p);
        ck_assert_ptr_null(policy_unref(p));
        ck_assert_uint_eq(p->n_ref, 1);
        policy_unref(p);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("owampd-policy");
        TCase *tc = tcase_create("policy");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_no_policy);
        tcase_add_test(tc, test_missing_files_open);
        tcase_add_test(tc, test_test_sessions);
        tcase_add_test(tc, test_bandwidth);
        tcase_add_test(tc, test_disk);
        tcase_add_test(tc, test_endpoint);
        tcase_add_test(tc, test_classes_modes_keys);
        tcase_add_test(tc, test_insecure_pfs);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(suite());
}
