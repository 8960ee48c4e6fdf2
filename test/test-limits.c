/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ow-error.h"
#include "ow-limits.h"
#include "ow-pfs.h"
#include "test-diag.h"
#include "testutil.h"

static OwLimits *parse_ok(const char *text) {
        OwLimits *l = NULL;
        OwDiag d;
        int r = ow_limits_parse(text, strlen(text), "t.limits", &l, &d);
        ck_assert_msg(r == 0, "parsing \"%s\" failed: %s (line %u: %s)", text, ow_strerror(r), d.line,
                      d.message);
        ck_assert_ptr_nonnull(l);
        return l;
}

static size_t find(const OwLimits *l, const char *name) {
        int c = ow_limits_class_find(l, name);
        ck_assert_msg(c >= 0, "no class %s", name);
        return (size_t) c;
}

/* Class name that a peer at the textual address addr (with keyid) gets. */
static const char *resolve(const OwLimits *l, const char *addr, const char *keyid) {
        uint8_t a[16];
        size_t c;
        int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
        ck_assert_int_eq(inet_pton(family, addr, a), 1);
        ck_assert_int_eq(ow_limits_resolve(l, family, a, keyid, &c), 0);
        return ow_limits_class_name(l, c);
}

START_TEST(test_reference_limits) {
        uint8_t *buf;
        size_t len, p;
        OwLimits *l = NULL;
        OwDiag d;
        char path[64];

        test_read_file(test_data_path("reference-conf/owampd.limits"), &buf, &len);
        ck_assert_int_eq(ow_limits_parse(buf, len, "owampd.limits", &l, &d), 0);
        free(buf);

        ck_assert_uint_eq(ow_limits_n_classes(l), 2);
        size_t root = find(l, "root"), regular = find(l, "regular");
        ck_assert_uint_eq(root, 0);
        ck_assert_int_eq(ow_limits_class_parent(l, root, &p), -ENOENT);
        ck_assert_int_eq(ow_limits_class_parent(l, regular, &p), 0);
        ck_assert_uint_eq(p, root);
        ck_assert_uint_eq(ow_limits_class_line(l, root), 146);
        ck_assert_uint_eq(ow_limits_class_line(l, regular), 153);

        ck_assert_uint_eq(ow_limits_get(l, root, OW_LIMIT_DISK), 0);
        ck_assert_uint_eq(ow_limits_get(l, root, OW_LIMIT_BANDWIDTH), 0);
        ck_assert_uint_eq(ow_limits_get(l, root, OW_LIMIT_DELETE_ON_FETCH), 1);
        ck_assert_uint_eq(ow_limits_get(l, root, OW_LIMIT_ALLOW_OPEN_MODE), 1);
        ck_assert_uint_eq(ow_limits_get(l, root, OW_LIMIT_TEST_SESSIONS), 0);

        /* 10G and 20M are decimal in the reference (I2StrToNum). */
        ck_assert_uint_eq(ow_limits_get(l, regular, OW_LIMIT_DISK), UINT64_C(10000000000));
        ck_assert_uint_eq(ow_limits_get(l, regular, OW_LIMIT_BANDWIDTH), UINT64_C(20000000));
        /* Inherited from root, not set on its own line. */
        ck_assert_uint_eq(ow_limits_get(l, regular, OW_LIMIT_DELETE_ON_FETCH), 1);
        ck_assert(!ow_limits_class_sets(l, regular, OW_LIMIT_DELETE_ON_FETCH));
        ck_assert(ow_limits_class_sets(l, regular, OW_LIMIT_DISK));
        ck_assert(ow_limits_class_sets(l, root, OW_LIMIT_DELETE_ON_FETCH));
        /* Default everywhere. */
        ck_assert_uint_eq(ow_limits_get(l, regular, OW_LIMIT_ALLOW_OPEN_MODE), 1);
        ck_assert_uint_eq(ow_limits_get(l, regular, OW_LIMIT_TEST_SESSIONS), 0);
        /* Ours: a test endpoint must be the control peer unless a class says so. */
        ck_assert_uint_eq(ow_limits_get(l, root, OW_LIMIT_ALLOW_FOREIGN_ENDPOINT), 0);
        ck_assert_uint_eq(ow_limits_get(l, regular, OW_LIMIT_ALLOW_FOREIGN_ENDPOINT), 0);

        ck_assert_str_eq(resolve(l, "192.0.2.7", NULL), "regular");
        ck_assert_str_eq(resolve(l, "2001:db8::7", "someone"), "regular");
        ck_assert_int_eq(ow_limits_class_path(l, regular, path, sizeof(path)), 0);
        ck_assert_str_eq(path, "root/regular");
        ck_assert_int_eq(ow_limits_class_path(l, root, path, sizeof(path)), 0);
        ck_assert_str_eq(path, "root");
        ck_assert_int_eq(ow_limits_class_path(l, regular, path, 12), -ENOBUFS);
        ck_assert_int_eq(ow_limits_class_path(l, regular, path, 13), 0);
        ow_limits_free(l);
}
END_TEST

START_TEST(test_perfsonar_limits) {
        /* The limits the reference outputs were produced with. */
        OwLimits *l =
                parse_ok("limit root with disk=0, bandwidth=0, delete_on_fetch=on, allow_open_mode=on\n"
                         "assign default root\n");
        ck_assert_uint_eq(ow_limits_n_classes(l), 1);
        ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_DISK), 0);
        ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_BANDWIDTH), 0);
        ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_DELETE_ON_FETCH), 1);
        ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_ALLOW_OPEN_MODE), 1);
        ck_assert_str_eq(resolve(l, "127.0.0.1", NULL), "root");
        ow_limits_free(l);
}
END_TEST

START_TEST(test_no_limits) {
        /* No limit line at all: the reference's open "default" class. */
        static const char *const inputs[] = { "", "# nothing\n\n   \n" };
        for (size_t i = 0; i < 2; i++) {
                OwLimits *l = parse_ok(inputs[i]);
                ck_assert_uint_eq(ow_limits_n_classes(l), 1);
                ck_assert_str_eq(ow_limits_class_name(l, 0), "default");
                ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_ALLOW_OPEN_MODE), 1);
                ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_DISK), 0);
                ck_assert_uint_eq(ow_limits_class_line(l, 0), 0);
                ck_assert_str_eq(resolve(l, "10.1.2.3", "u"), "default");
                ow_limits_free(l);
        }
        OwLimits *l = NULL;
        ck_assert_int_eq(ow_limits_parse(NULL, 0, "t", &l, NULL), 0);
        ck_assert_uint_eq(ow_limits_n_classes(l), 1);
        ow_limits_free(l);
}
END_TEST

static const char policy[] = "limit root with bandwidth=1G, disk=0, allow_open_mode=off\n"
                             "limit open with parent=root, allow_open_mode=on, test_sessions=10\n"
                             "limit lab with parent=open, disk=5G\n"
                             "limit host with parent=lab, bandwidth=1m\n"
                             "limit v6 with parent=open\n"
                             "limit trusted with parent=root, delete_on_fetch=off\n"
                             "limit testuser with parent=root, test_sessions=1\n"
                             "limit jail with parent=root, bandwidth=1k, disk=1, test_sessions=1\n"
                             "assign net 10.0.0.0/8 open\n"
                             "assign net 10.1.0.0/16 lab\n"
                             "assign net 10.1.2.3 host\n"
                             "assign net 10.1.2.3/32 host   # the same again: harmless\n"
                             "assign net 2001:db8::/32 v6\n"
                             "assign net 2001:db8:1::/48 lab\n"
                             "assign net 0.0.0.0/1 jail\n"
                             "assign user test trusted\n"
                             "assign default open\n";

START_TEST(test_resolve) {
        OwLimits *l = parse_ok(policy);

        /* Longest prefix wins, IPv4. */
        ck_assert_str_eq(resolve(l, "10.200.0.1", NULL), "open");
        ck_assert_str_eq(resolve(l, "10.1.9.9", NULL), "lab");
        ck_assert_str_eq(resolve(l, "10.1.2.3", NULL), "host");
        ck_assert_str_eq(resolve(l, "10.1.2.4", NULL), "lab");
        ck_assert_str_eq(resolve(l, "11.0.0.1", NULL), "jail");  /* 0.0.0.0/1 */
        ck_assert_str_eq(resolve(l, "192.0.2.1", NULL), "open"); /* default */
        /* IPv6. */
        ck_assert_str_eq(resolve(l, "2001:db8::1", NULL), "v6");
        ck_assert_str_eq(resolve(l, "2001:db8:1::1", NULL), "lab");
        ck_assert_str_eq(resolve(l, "2001:db9::1", NULL), "open");
        /* A v4-mapped peer is matched as IPv4. */
        ck_assert_str_eq(resolve(l, "::ffff:10.1.2.3", NULL), "host");
        ck_assert_str_eq(resolve(l, "::ffff:11.0.0.1", NULL), "jail");
        /* An IPv4 net never matches an IPv6 peer. */
        ck_assert_str_eq(resolve(l, "::a01:203", NULL), "open");

        /* user beats net; identities match exactly, never by prefix. */
        ck_assert_str_eq(resolve(l, "10.1.2.3", "test"), "trusted");
        ck_assert_str_eq(resolve(l, "10.1.2.3", "testuser"), "testuser"); /* class named like the user */
        ck_assert_str_eq(resolve(l, "10.1.2.3", "tes"), "host");
        ck_assert_str_eq(resolve(l, "10.1.2.3", "Test"), "host");
        ck_assert_str_eq(resolve(l, "10.1.2.3", ""), "host");

        /* Inheritance through several levels. */
        size_t host = find(l, "host"), lab = find(l, "lab"), open = find(l, "open");
        ck_assert_uint_eq(ow_limits_get(l, host, OW_LIMIT_BANDWIDTH), 1000000);
        ck_assert_uint_eq(ow_limits_get(l, lab, OW_LIMIT_BANDWIDTH), 1000000000);
        ck_assert_uint_eq(ow_limits_get(l, host, OW_LIMIT_DISK), 5000000000);
        ck_assert_uint_eq(ow_limits_get(l, host, OW_LIMIT_TEST_SESSIONS), 10);
        ck_assert_uint_eq(ow_limits_get(l, host, OW_LIMIT_ALLOW_OPEN_MODE), 1);
        ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_ALLOW_OPEN_MODE), 0);
        ck_assert_uint_eq(ow_limits_get(l, host, OW_LIMIT_DELETE_ON_FETCH), 0);
        ck_assert_uint_eq(ow_limits_get(l, open, _OW_LIMIT_KEY_MAX), 0);
        char path[128];
        ck_assert_int_eq(ow_limits_class_path(l, host, path, sizeof(path)), 0);
        ck_assert_str_eq(path, "root/open/lab/host");

        uint8_t a[16] = { 0 };
        size_t c;
        ck_assert_int_eq(ow_limits_resolve(l, AF_UNIX, a, NULL, &c), -EAFNOSUPPORT);
        ow_limits_free(l);

        /* Without "assign default", unmatched peers get the root. */
        l = parse_ok("limit a with\nlimit b with parent=a\nassign net 192.0.2.0/24 b\n");
        ck_assert_str_eq(resolve(l, "192.0.2.200", NULL), "b");
        ck_assert_str_eq(resolve(l, "198.51.100.1", NULL), "a");
        ow_limits_free(l);
}
END_TEST

START_TEST(test_values) {
        static const struct {
                const char *v;
                uint64_t n;
        } nums[] = {
                { "0", 0 },
                { "1", 1 },
                { "1k", 1000 },
                { "1K", 1000 },
                { "20M", 20000000 },
                { "10G", UINT64_C(10000000000) },
                { "3t", UINT64_C(3000000000000) },
                { "2P", UINT64_C(2000000000000000) },
                { "18E", UINT64_C(18000000000000000000) },
                { "0z", 0 },
                { "007", 7 },
                { "18446744073709551615", UINT64_MAX },
        };
        for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
                char t[128];
                snprintf(t, sizeof(t), "limit r with disk=%s,bandwidth = %s ,\\\n test_sessions=%s",
                         nums[i].v, nums[i].v, nums[i].v);
                OwLimits *l = parse_ok(t);
                ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_DISK), nums[i].n);
                ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_BANDWIDTH), nums[i].n);
                ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_TEST_SESSIONS), nums[i].n);
                ow_limits_free(l);
        }

        /* Case-insensitive keywords; class names are case-sensitive. */
        OwLimits *l = parse_ok("LIMIT Root WITH Delete_On_Fetch=ON,ALLOW_OPEN_MODE=Off,,\n"
                               "Limit root with PARENT=Root\n"
                               "ASSIGN DEFAULT root\n");
        ck_assert_uint_eq(ow_limits_n_classes(l), 2);
        ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_DELETE_ON_FETCH), 1);
        ck_assert_uint_eq(ow_limits_get(l, 1, OW_LIMIT_ALLOW_OPEN_MODE), 0);
        ck_assert_str_eq(resolve(l, "192.0.2.1", NULL), "root");
        ck_assert_int_eq(ow_limits_class_find(l, "ROOT"), -OW_ERR_UNKNOWN);
        ow_limits_free(l);

        /* allow_foreign_endpoint: a boolean, inherited like the others. */
        l = parse_ok("limit root with allow_foreign_endpoint=off\n"
                     "limit third with parent=root, Allow_Foreign_Endpoint=on\n"
                     "limit sub with parent=third\n"
                     "limit back with parent=third, allow_foreign_endpoint=off\n");
        ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_ALLOW_FOREIGN_ENDPOINT), 0);
        ck_assert_uint_eq(ow_limits_get(l, 1, OW_LIMIT_ALLOW_FOREIGN_ENDPOINT), 1);
        ck_assert_uint_eq(ow_limits_get(l, 2, OW_LIMIT_ALLOW_FOREIGN_ENDPOINT), 1);
        ck_assert(!ow_limits_class_sets(l, 2, OW_LIMIT_ALLOW_FOREIGN_ENDPOINT));
        ck_assert_uint_eq(ow_limits_get(l, 3, OW_LIMIT_ALLOW_FOREIGN_ENDPOINT), 0);
        ck_assert_str_eq(ow_limit_key_to_string(OW_LIMIT_ALLOW_FOREIGN_ENDPOINT), "allow_foreign_endpoint");
        ow_limits_free(l);

        /* A trailing comment after whitespace. */
        l = parse_ok("limit r with disk=1k # one thousand bytes\nassign default r # everyone\n");
        ck_assert_uint_eq(ow_limits_get(l, 0, OW_LIMIT_DISK), 1000);
        ow_limits_free(l);

        /* Class names up to 80 bytes. */
        char t[256];
        snprintf(t, sizeof(t), "limit %080d with\n", 7);
        l = parse_ok(t);
        ck_assert_uint_eq(strlen(ow_limits_class_name(l, 0)), 80);
        ow_limits_free(l);

        for (int k = 0; k < _OW_LIMIT_KEY_MAX; k++)
                ck_assert_ptr_nonnull(ow_limit_key_to_string((OwLimitKey) k));
        ck_assert_ptr_null(ow_limit_key_to_string(_OW_LIMIT_KEY_MAX));
}
END_TEST

static const BadCase bad[] = {
        /* Line types. */
        { "limits root with\n", 0, -OW_ERR_KEYWORD, 1, "expected 'limit' or 'assign', got 'limits'" },
        { "limitroot with\n", 0, -OW_ERR_KEYWORD, 1, "'limitroot'" },
        { "# x\nallow all\n", 0, -OW_ERR_KEYWORD, 2, "'allow'" },
        { "limit root with \\x\n", 0, -OW_ERR_SYNTAX, 1, "'\\'" },
        { "limit root with\n\x01\0\n", 19, -OW_ERR_SYNTAX, 2, "NUL" },
        /* limit lines. */
        { "limit\n", 0, -OW_ERR_SYNTAX, 1, "'limit' needs a class name" },
        { "limit root\n", 0, -OW_ERR_SYNTAX, 1, "expected 'with' after 'limit root'" },
        { "limit root using disk=1\n", 0, -OW_ERR_SYNTAX, 1, "expected 'with'" },
        { "limit root withdisk=0\n", 0, -OW_ERR_SYNTAX, 1, "expected 'with'" },
        { "limit root with disk\n", 0, -OW_ERR_SYNTAX, 1, "expected KEY=VALUE, got 'disk'" },
        { "limit root with disk 10G\n", 0, -OW_ERR_SYNTAX, 1, "expected KEY=VALUE" },
        { "limit root with disk=\n", 0, -OW_ERR_VALUE, 1, "'disk' needs a value" },
        { "limit root with =5\n", 0, -OW_ERR_KEYWORD, 1, "unknown limit ''" },
        { "limit root with disks=5\n", 0, -OW_ERR_KEYWORD, 1, "unknown limit 'disks'" },
        { "limit root with priority=5\n", 0, -OW_ERR_KEYWORD, 1, "'priority'" },
        { "limit root with disk=10G foo\n", 0, -OW_ERR_SYNTAX, 1,
          "unexpected 'foo' after the value of 'disk'" },
        { "limit root with disk==10G\n", 0, -OW_ERR_VALUE, 1, "got '=10G'" },
        { "limit root with disk=10GB\n", 0, -OW_ERR_VALUE, 1, "'disk' must be a whole number" },
        { "limit root with disk=10X\n", 0, -OW_ERR_VALUE, 1, "got '10X'" },
        { "limit root with disk=-1\n", 0, -OW_ERR_VALUE, 1, "got '-1'" },
        { "limit root with disk=1.5G\n", 0, -OW_ERR_VALUE, 1, "got '1.5G'" },
        { "limit root with disk=G\n", 0, -OW_ERR_VALUE, 1, "got 'G'" },
        { "limit root with disk=19E\n", 0, -OW_ERR_VALUE, 1, "fits 64 bits" },
        { "limit root with disk=1z\n", 0, -OW_ERR_VALUE, 1, "got '1z'" },
        { "limit root with disk=18446744073709551616\n", 0, -OW_ERR_VALUE, 1, "" },
        { "limit root with bandwidth=0x10\n", 0, -OW_ERR_VALUE, 1, "'bandwidth'" },
        { "limit root with test_sessions=many\n", 0, -OW_ERR_VALUE, 1, "'test_sessions'" },
        { "limit root with delete_on_fetch=yes\n", 0, -OW_ERR_VALUE, 1,
          "'delete_on_fetch' must be 'on' or 'off'" },
        { "limit root with allow_open_mode=1\n", 0, -OW_ERR_VALUE, 1, "'allow_open_mode'" },
        { "limit root with allow_foreign_endpoint=yes\n", 0, -OW_ERR_VALUE, 1, "'allow_foreign_endpoint'" },
        { "limit root with disk=1,disk=2\n", 0, -OW_ERR_DUPLICATE, 1, "'disk' given twice" },
        { "limit root with \\\n disk=1,\\\n DISK=2\n", 0, -OW_ERR_DUPLICATE, 3, "'disk' given twice" },
        /* The hierarchy. */
        { "limit root with parent=root\n", 0, -OW_ERR_PARENT, 1, "cannot have a parent" },
        { "limit root with parent=other\n", 0, -OW_ERR_PARENT, 1, "the root" },
        { "limit root with\nlimit child with disk=1\n", 0, -OW_ERR_PARENT, 2,
          "class 'child' needs a parent" },
        { "limit root with\nlimit child with parent=nobody\n", 0, -OW_ERR_UNKNOWN, 2,
          "parent class 'nobody' is not defined" },
        { "limit root with\nlimit child with parent=child\n", 0, -OW_ERR_UNKNOWN, 2, "'child'" },
        { "limit root with\nlimit a with parent=root,parent=root\n", 0, -OW_ERR_DUPLICATE, 2,
          "'parent' given twice" },
        { "limit root with\nlimit a with parent=root\nlimit a with parent=root\n", 0, -OW_ERR_DUPLICATE, 3,
          "class 'a' is already defined on line 2" },
        { "limit root with\nlimit root with parent=root\n", 0, -OW_ERR_DUPLICATE, 2, "already defined" },
        { "limit a/b with\n", 0, -OW_ERR_VALUE, 1, "directory name" },
        { "limit .. with\n", 0, -OW_ERR_VALUE, 1, "directory name" },
        { "limit . with\n", 0, -OW_ERR_VALUE, 1, "directory name" },
        { "limit a\x01 with\n", 0, -OW_ERR_VALUE, 1, "'a?'" },
        { "limit 123456789012345678901234567890123456789012345678901234567890123456789012345678901 with\n",
          0, -OW_ERR_TOO_LONG, 1, "longer than 80" },
        { "limit root with parent=\n", 0, -OW_ERR_VALUE, 1, "'parent' needs a value" },
        /* assign lines. */
        { "limit root with\nassign\n", 0, -OW_ERR_SYNTAX, 2, "'assign' needs a type" },
        { "limit root with\nassign everyone root\n", 0, -OW_ERR_KEYWORD, 2,
          "unknown assign type 'everyone'" },
        { "limit root with\nassign default\n", 0, -OW_ERR_SYNTAX, 2, "'assign default' needs a class name" },
        { "limit root with\nassign default root extra\n", 0, -OW_ERR_SYNTAX, 2, "unexpected 'extra'" },
        { "limit root with\nassign default nobody\n", 0, -OW_ERR_UNKNOWN, 2,
          "class 'nobody' is not defined" },
        { "assign default root\nlimit root with\n", 0, -OW_ERR_UNKNOWN, 1, "class 'root'" },
        { "limit root with\nassign default root\n\nassign default root\n", 0, -OW_ERR_DUPLICATE, 4,
          "'assign default' already given on line 2" },
        { "limit root with\nassign net root\n", 0, -OW_ERR_SYNTAX, 2, "'assign net' needs ADDRESS" },
        { "limit root with\nassign net 10.0.0.0/8 root x y\n", 0, -OW_ERR_SYNTAX, 2, "unexpected 'x'" },
        { "limit root with\nassign net 10.0.0.0/33 root\n", 0, -OW_ERR_NETMASK, 2, "prefix length must be" },
        { "limit root with\nassign net 10.0.0.0/0 root\n", 0, -OW_ERR_NETMASK, 2, "" },
        { "limit root with\nassign net 10.0.0.0/ root\n", 0, -OW_ERR_NETMASK, 2, "" },
        { "limit root with\nassign net 10.0.0.0/8x root\n", 0, -OW_ERR_NETMASK, 2, "" },
        { "limit root with\nassign net 10.0.0.0/-8 root\n", 0, -OW_ERR_NETMASK, 2, "" },
        { "limit root with\nassign net 10.1.0.0/8 root\n", 0, -OW_ERR_NETMASK, 2,
          "no address bit may be set" },
        { "limit root with\nassign net 192.168.1.1/24 root\n", 0, -OW_ERR_NETMASK, 2, "" },
        { "limit root with\nassign net 10.0.0.1/31 root\n", 0, -OW_ERR_NETMASK, 2, "" },
        { "limit root with\nassign net 2001:db8::1/64 root\n", 0, -OW_ERR_NETMASK, 2, "" },
        { "limit root with\nassign net 2001:db8::/129 root\n", 0, -OW_ERR_NETMASK, 2, "" },
        { "limit root with\nassign net 10.0.0 root\n", 0, -OW_ERR_ADDRESS, 2,
          "'10.0.0' is not an IPv4 or IPv6" },
        { "limit root with\nassign net example.com root\n", 0, -OW_ERR_ADDRESS, 2, "" },
        { "limit root with\nassign net fe80::1%eth0 root\n", 0, -OW_ERR_ADDRESS, 2, "" },
        { "limit root with\nassign net 1111:2222:3333:4444:5555:6666:777.888.999.000/8 root\n", 0,
          -OW_ERR_ADDRESS, 2, "is not an IPv4 or IPv6" },
        { "limit root with # c \\\n\n\n# x\0\n", 29, -OW_ERR_SYNTAX, 4, "NUL" },
        { "limit root with\nlimit b with parent=root\nassign net 10.0.0.0/8 root\nassign net 10.0.0.0/8 b\n",
          0, -OW_ERR_DUPLICATE, 4, "already assigned to class 'root' on line 3" },
        { "limit root with\nassign user root\n", 0, -OW_ERR_SYNTAX, 2, "'assign user' needs an identity" },
        { "limit root with\nlimit b with parent=root\nassign user joe root\nassign user joe b\n", 0,
          -OW_ERR_DUPLICATE, 4, "identity 'joe' is already assigned to class 'root' on line 3" },
        { "limit root with\nassign user "
          "123456789012345678901234567890123456789012345678901234567890123456789012345678901 root\n",
          0, -OW_ERR_KEYID, 2, "longer than 80" },
};

START_TEST(test_bad) {
        const BadCase *b = &bad[_i];
        OwLimits *l = (OwLimits *) 0x1;
        OwDiag d;
        int r = ow_limits_parse(b->text, bad_case_len(b), "t.limits", &l, &d);
        check_bad_case(b, r, &d, "t.limits");
        ck_assert_ptr_eq(l, (OwLimits *) 0x1); /* untouched on failure */
}
END_TEST

START_TEST(test_users) {
        static const char pfs_text[] = "test\t74657374\njoe\t6a6f65\n";
        OwPfs *pfs = NULL;
        OwDiag d;
        OwLimits *l = parse_ok("limit root with\n"
                               "limit a with parent=root\n"
                               "# comment\n"
                               "assign user joe a\n"
                               "assign user test a\n"
                               "assign user testuser a\n"
                               "assign user joe a # again, same class: harmless\n");
        ck_assert_int_eq(ow_pfs_parse(pfs_text, strlen(pfs_text), "t.pfs", &pfs, &d), 0);
        /* "testuser" is not in the file; "test" being there does not count. */
        ck_assert_int_eq(ow_limits_check_users(l, pfs, "t.limits", &d), -OW_ERR_UNKNOWN);
        ck_assert_uint_eq(d.line, 6);
        ck_assert_str_eq(d.file, "t.limits");
        ck_assert(strstr(d.message, "identity 'testuser' is not in the pass-phrase file"));
        ck_assert_int_eq(ow_limits_check_users(l, NULL, "t.limits", &d), -OW_ERR_UNKNOWN);
        ck_assert_uint_eq(d.line, 4);
        uint8_t x[] = "x";
        ck_assert_int_eq(ow_pfs_set(pfs, "testuser", x, 1), 0);
        ck_assert_int_eq(ow_limits_check_users(l, pfs, "t.limits", &d), 0);
        ow_pfs_free(pfs);
        ow_limits_free(l);
}
END_TEST

START_TEST(test_bounds) {
        /* OW_LIMITS_MAX_CLASSES classes fit, one more does not. */
        size_t cap = 64 + (size_t) (OW_LIMITS_MAX_CLASSES + 1) * 40;
        char *t = malloc(cap);
        size_t o = 0;
        ck_assert_ptr_nonnull(t);
        o += (size_t) snprintf(t + o, cap - o, "limit c0 with\n");
        for (unsigned i = 1; i < OW_LIMITS_MAX_CLASSES; i++)
                o += (size_t) snprintf(t + o, cap - o, "limit c%u with parent=c%u\n", i, i - 1);
        OwLimits *l = NULL;
        OwDiag d;
        ck_assert_int_eq(ow_limits_parse(t, o, "t", &l, &d), 0);
        ck_assert_uint_eq(ow_limits_n_classes(l), OW_LIMITS_MAX_CLASSES);
        /* A deep chain still inherits from its root. */
        ck_assert_uint_eq(ow_limits_get(l, OW_LIMITS_MAX_CLASSES - 1, OW_LIMIT_ALLOW_OPEN_MODE), 1);
        char path[8];
        ck_assert_int_eq(ow_limits_class_path(l, OW_LIMITS_MAX_CLASSES - 1, path, sizeof(path)), -ENOBUFS);
        ow_limits_free(l);
        o += (size_t) snprintf(t + o, cap - o, "limit extra with parent=c0\n");
        ck_assert_int_eq(ow_limits_parse(t, o, "t", &l, &d), -OW_ERR_COUNT);
        ck_assert_uint_eq(d.line, OW_LIMITS_MAX_CLASSES + 1);
        free(t);

        /* OW_LIMITS_MAX_ASSIGNS assignments, then one too many. */
        cap = 64 + (size_t) (OW_LIMITS_MAX_ASSIGNS + 1) * 40;
        t = malloc(cap);
        ck_assert_ptr_nonnull(t);
        o = (size_t) snprintf(t, cap, "limit c with\n");
        for (unsigned i = 0; i < OW_LIMITS_MAX_ASSIGNS; i++)
                if (i % 2)
                        o += (size_t) snprintf(t + o, cap - o, "assign user u%u c\n", i);
                else
                        o += (size_t) snprintf(t + o, cap - o, "assign net 10.%u.%u.0/24 c\n",
                                               (i >> 8) & 0xff, i & 0xff);
        ck_assert_int_eq(ow_limits_parse(t, o, "t", &l, &d), 0);
        ow_limits_free(l);
        o += (size_t) snprintf(t + o, cap - o, "assign user one-too-many c\n");
        ck_assert_int_eq(ow_limits_parse(t, o, "t", &l, &d), -OW_ERR_COUNT);
        ck_assert_uint_eq(d.line, OW_LIMITS_MAX_ASSIGNS + 2);
        free(t);

        ck_assert_int_eq(ow_limits_parse("x", 1, "t", NULL, &d), -EINVAL);
        ck_assert_int_eq(ow_limits_class_find(NULL, "x"), -OW_ERR_UNKNOWN);
        ck_assert_ptr_null(ow_limits_class_name(NULL, 0));
        ck_assert_uint_eq(ow_limits_n_classes(NULL), 0);
        ck_assert_ptr_null(ow_limits_free(NULL));
}
END_TEST

START_TEST(test_class_from_path) {
        OwLimits *l = parse_ok("limit root with disk=100\n"
                               "limit a with parent=root\n"
                               "limit b with parent=a\n"
                               "limit c with parent=root\n"
                               "limit b2 with parent=c\n");
        size_t c;

        ck_assert_int_eq(ow_limits_class_from_path(l, "root", &c), 0);
        ck_assert_str_eq(ow_limits_class_name(l, c), "root");
        ck_assert_int_eq(ow_limits_class_from_path(l, "root/a/b", &c), 0);
        ck_assert_str_eq(ow_limits_class_name(l, c), "b");
        ck_assert_int_eq(ow_limits_class_from_path(l, "root/c/b2", &c), 0);
        ck_assert_str_eq(ow_limits_class_name(l, c), "b2");
        /* b is a's child, not c's: the nearest matching ancestor pays. */
        ck_assert_int_eq(ow_limits_class_from_path(l, "root/c/b", &c), 0);
        ck_assert_str_eq(ow_limits_class_name(l, c), "c");
        ck_assert_int_eq(ow_limits_class_from_path(l, "root/gone/b", &c), 0);
        ck_assert_str_eq(ow_limits_class_name(l, c), "root");
        ck_assert_int_eq(ow_limits_class_from_path(l, "root//a/", &c), 0);
        ck_assert_str_eq(ow_limits_class_name(l, c), "a");
        /* Names match whole components, exactly. */
        ck_assert_int_eq(ow_limits_class_from_path(l, "root/ab", &c), 0);
        ck_assert_str_eq(ow_limits_class_name(l, c), "root");
        ck_assert_int_eq(ow_limits_class_from_path(l, "Root/a", &c), -ENOENT);
        ck_assert_int_eq(ow_limits_class_from_path(l, "a", &c), -ENOENT);
        ck_assert_int_eq(ow_limits_class_from_path(l, "", &c), -ENOENT);
        ck_assert_int_eq(ow_limits_class_from_path(NULL, "root", &c), -EINVAL);

        /* Round trip with ow_limits_class_path for every class. */
        for (size_t i = 0; i < ow_limits_n_classes(l); i++) {
                char path[256];
                ck_assert_int_eq(ow_limits_class_path(l, i, path, sizeof(path)), 0);
                ck_assert_int_eq(ow_limits_class_from_path(l, path, &c), 0);
                ck_assert_uint_eq(c, i);
        }
        ow_limits_free(l);
}
END_TEST

START_TEST(test_demand) {
        /* root: 1000; a: 600 (b inherits 600 as its own limit); c: none of
         * its own, so it inherits root's 1000. */
        OwLimits *l = parse_ok("limit root with bandwidth=1000,disk=100\n"
                               "limit a with parent=root,bandwidth=600\n"
                               "limit b with parent=a\n"
                               "limit c with parent=root\n");
        size_t root = find(l, "root"), a = find(l, "a"), b = find(l, "b"), c = find(l, "c");
        uint64_t used[4] = {};
        OwLimitRefusal why;

        /* One session alone: just under, at, and just over the limit. */
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_BANDWIDTH, used, 599, 1000, &why), 0);
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_BANDWIDTH, used, 600, 1000, &why), 0);
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_BANDWIDTH, used, 601, 1000, &why), -EDQUOT);
        ck_assert_uint_eq(why.class, b);
        ck_assert_uint_eq(why.limit, 600);
        ck_assert_uint_eq(why.used, 0);
        ck_assert(why.permanent);

        /* Running sessions in b count for b, a and root. */
        ow_limits_charge(l, b, used, 400);
        ck_assert_uint_eq(used[b], 400);
        ck_assert_uint_eq(used[a], 400);
        ck_assert_uint_eq(used[root], 400);
        ck_assert_uint_eq(used[c], 0);
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_BANDWIDTH, used, 200, 1000, &why), 0);
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_BANDWIDTH, used, 201, 1000, &why), -EDQUOT);
        ck_assert_uint_eq(why.class, b);
        ck_assert_uint_eq(why.used, 400);
        ck_assert(!why.permanent);
        /* a has the same limit, its own count: a session directly in a. */
        ck_assert_int_eq(ow_limits_demand(l, a, OW_LIMIT_BANDWIDTH, used, 201, 1000, &why), -EDQUOT);
        ck_assert_uint_eq(why.class, a);

        /* c's own (inherited) limit is root's 1000, and root holds 400. */
        ck_assert_int_eq(ow_limits_demand(l, c, OW_LIMIT_BANDWIDTH, used, 600, 1000, &why), 0);
        ck_assert_int_eq(ow_limits_demand(l, c, OW_LIMIT_BANDWIDTH, used, 601, 1000, &why), -EDQUOT);
        ck_assert_uint_eq(why.class, root);
        ck_assert_int_eq(ow_limits_demand(l, c, OW_LIMIT_BANDWIDTH, used, 1001, 1000, &why), -EDQUOT);
        ck_assert_uint_eq(why.class, c);
        ck_assert(why.permanent);
        ow_limits_charge(l, c, used, 500);
        /* Now c itself has room (500 + 400 <= 1000) but root does not. */
        ck_assert_int_eq(ow_limits_demand(l, c, OW_LIMIT_BANDWIDTH, used, 101, 1000, &why), -EDQUOT);
        ck_assert_uint_eq(why.class, root);
        ck_assert_uint_eq(why.used, 900);
        ck_assert_uint_eq(why.limit, 1000);
        ck_assert(!why.permanent);
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_BANDWIDTH, used, 101, 1000, &why), -EDQUOT);
        ck_assert_uint_eq(why.class, root);

        /* The disk hard limit: disk x diskfudge. */
        uint64_t disk[4] = {};
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_DISK, disk, 101, 1000, &why), -EDQUOT);
        ck_assert_uint_eq(why.class, b); /* b inherits disk=100 from root as its own */
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_DISK, disk, 150, 1500, &why), 0);
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_DISK, disk, 151, 1500, &why), -EDQUOT);
        ck_assert_uint_eq(why.limit, 150);

        /* No limit anywhere: anything goes, even the largest amount. */
        OwLimits *free_for_all = parse_ok("limit root with\nlimit x with parent=root\n");
        uint64_t u2[2] = { UINT64_MAX - 1, UINT64_MAX - 1 };
        ck_assert_int_eq(ow_limits_demand(free_for_all, 1, OW_LIMIT_BANDWIDTH, u2, UINT64_MAX, 1000, &why),
                         0);
        ow_limits_charge(free_for_all, 1, u2, 5);
        ck_assert_uint_eq(u2[0], UINT64_MAX); /* saturates */
        ow_limits_free(free_for_all);

        /* Only integer limits can be demanded. */
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_DELETE_ON_FETCH, used, 1, 1000, &why), -EINVAL);
        ck_assert_int_eq(ow_limits_demand(l, 99, OW_LIMIT_DISK, used, 1, 1000, &why), -EINVAL);
        ck_assert_int_eq(ow_limits_demand(l, b, OW_LIMIT_DISK, used, 1, 0, &why), -EINVAL);
        ow_limits_free(l);
}
END_TEST

START_TEST(test_session_cost) {
        OwSlot slots[2] = {
                { OW_SLOT_FIXED, OW_TIMESTAMP_FROM_SEC(1) / 4 },
                { OW_SLOT_EXPONENTIAL, OW_TIMESTAMP_FROM_SEC(3) / 4 },
        };
        OwSessionRequest req = { .ipvn = 4, .n_slots = 1, .n_packets = 100, .slots = slots };

        /* Wire sizes: IP + UDP + OWAMP-Test payload + padding. */
        ck_assert_uint_eq(ow_session_packet_size(4, OW_MODE_OPEN, 0), 20 + 8 + 14);
        ck_assert_uint_eq(ow_session_packet_size(6, OW_MODE_OPEN, 0), 40 + 8 + 14);
        ck_assert_uint_eq(ow_session_packet_size(4, OW_MODE_AUTHENTICATED, 0), 20 + 8 + 48);
        ck_assert_uint_eq(ow_session_packet_size(6, OW_MODE_ENCRYPTED, 1000), 40 + 8 + 48 + 1000);

        /* 4 packets/s of 42 octets. */
        ck_assert_uint_eq(ow_session_bandwidth(&req, OW_MODE_OPEN), 4 * 42 * 8);
        /* Two slots, 1 s together: 2 packets/s; IPv6, A mode, 100 octets of padding. */
        req.ipvn = 6;
        req.n_slots = 2;
        req.padding_length = 100;
        ck_assert_uint_eq(ow_session_bandwidth(&req, OW_MODE_AUTHENTICATED), 2 * (40 + 8 + 48 + 100) * 8);
        /* Rounded up: 3 packets in exactly 1 s, then in 1 s less 2^-32 s. */
        OwSlot three[3] = { { OW_SLOT_FIXED, OW_TIMESTAMP_FROM_SEC(1) / 3 },
                            { OW_SLOT_FIXED, OW_TIMESTAMP_FROM_SEC(1) / 3 },
                            { OW_SLOT_FIXED, OW_TIMESTAMP_FROM_SEC(1) / 3 + 1 } };
        req = (OwSessionRequest){ .ipvn = 4, .n_slots = 3, .n_packets = 1, .slots = three };
        ck_assert_uint_eq(ow_session_bandwidth(&req, OW_MODE_OPEN), 3 * 42 * 8);
        three[2].param--;
        ck_assert_uint_eq(ow_session_bandwidth(&req, OW_MODE_OPEN), 3 * 42 * 8 + 1);
        /* No gap at all: no finite rate. */
        OwSlot zero = { OW_SLOT_FIXED, 0 };
        req = (OwSessionRequest){ .ipvn = 4, .n_slots = 1, .n_packets = 10, .slots = &zero };
        ck_assert_uint_eq(ow_session_bandwidth(&req, OW_MODE_OPEN), UINT64_MAX);
        /* Absurd padding and a tiny gap saturate instead of wrapping. */
        zero.param = 1;
        req.padding_length = UINT32_MAX;
        ck_assert_uint_eq(ow_session_bandwidth(&req, OW_MODE_OPEN), UINT64_MAX);

        /* Disk: 40 + 112 + 16 x (slots + 1), then 25 per packet. */
        req = (OwSessionRequest){ .ipvn = 4, .n_slots = 1, .n_packets = 100, .slots = slots };
        ck_assert_uint_eq(ow_session_disk(&req), 40 + 112 + 32 + 100 * 25);
        req.n_slots = 2;
        req.n_packets = UINT32_MAX;
        ck_assert_uint_eq(ow_session_disk(&req), 40 + 112 + 48 + (uint64_t) UINT32_MAX * 25);
}
END_TEST

/* conf/owampd.limits, as installed: the defaults (one open class for
 * everyone), and its commented example parses to what it says. */
START_TEST(test_shipped_limits) {
        uint8_t *buf;
        size_t len;
        OwLimits *l = NULL;
        OwDiag d;

        test_read_file(CONF_EXAMPLES_DIR "/owampd.limits", &buf, &len);
        ck_assert_int_eq(ow_limits_parse(buf, len, "owampd.limits", &l, &d), 0);
        ck_assert_uint_eq(ow_limits_n_classes(l), 1);
        ck_assert_str_eq(ow_limits_class_name(l, 0), "default");
        for (OwLimitKey k = 0; k < _OW_LIMIT_KEY_MAX; k++)
                ck_assert(!ow_limits_class_sets(l, 0, k));
        ck_assert_str_eq(resolve(l, "192.0.2.1", NULL), "default");
        ow_limits_free(l);

        /* Uncomment the "#limit" and "#assign" lines. */
        char *text = malloc(len + 1);
        size_t o = 0;
        ck_assert_ptr_nonnull(text);
        for (size_t i = 0; i < len;) {
                size_t e = i;
                while (e < len && buf[e] != '\n')
                        e++;
                size_t skip = (e - i > 7 &&
                               (memcmp(buf + i, "#limit ", 7) == 0 || memcmp(buf + i, "#assign ", 8) == 0))
                                      ? 1
                                      : 0;
                memcpy(text + o, buf + i + skip, e - i - skip);
                o += e - i - skip;
                text[o++] = '\n';
                i = e + 1;
        }
        text[o] = 0;
        l = parse_ok(text);
        ck_assert_uint_eq(ow_limits_n_classes(l), 4);
        size_t regular = find(l, "regular"), closed = find(l, "closed");
        ck_assert_uint_eq(ow_limits_get(l, regular, OW_LIMIT_DISK), UINT64_C(10000000000));
        ck_assert_uint_eq(ow_limits_get(l, regular, OW_LIMIT_BANDWIDTH), UINT64_C(20000000));
        ck_assert_uint_eq(ow_limits_get(l, closed, OW_LIMIT_ALLOW_OPEN_MODE), 0);
        ck_assert_uint_eq(ow_limits_get(l, closed, OW_LIMIT_DELETE_ON_FETCH), 1);
        ck_assert_str_eq(resolve(l, "192.0.2.1", NULL), "closed");
        ck_assert_str_eq(resolve(l, "2001:db8::1", NULL), "closed");
        ck_assert_str_eq(resolve(l, "198.51.100.1", NULL), "regular");
        ck_assert_str_eq(resolve(l, "198.51.100.1", "measurement-host"), "trusted");
        ow_limits_free(l);
        free(text);
        free(buf);
}
END_TEST

int main(void) {
        Suite *s = suite_create("limits");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_reference_limits);
        tcase_add_test(tc, test_perfsonar_limits);
        tcase_add_test(tc, test_no_limits);
        tcase_add_test(tc, test_resolve);
        tcase_add_test(tc, test_values);
        tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
        tcase_add_test(tc, test_users);
        tcase_add_test(tc, test_bounds);
        tcase_add_test(tc, test_class_from_path);
        tcase_add_test(tc, test_demand);
        tcase_add_test(tc, test_session_cost);
        tcase_add_test(tc, test_shipped_limits);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
