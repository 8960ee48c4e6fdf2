/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ow-error.h"
#include "ow-pfs.h"
#include "ow-types.h"
#include "test-diag.h"
#include "testutil.h"

/* A file as pfstore writes it, plus comments and blank lines an operator
 * may add. "testuser"/"testsecret" are the credentials of the reference
 * captures (PROTOCOL.md 14). */
static const char sample[] = "# owamp-server.pfs\n"
                             "\n"
                             "testuser\t74657374736563726574\n"
                             "   # indented comment\n"
                             "test\t54b0c58c7ce9f2a8b551351102ee0938\n"
                             "\t \n"
                             "caf\xc3\xa9\t00ff\n";

static OwPfs *parse_ok(const char *text, size_t len) {
        OwPfs *p = NULL;
        OwDiag d;
        int r = ow_pfs_parse(text, len, "t.pfs", &p, &d);
        ck_assert_msg(r == 0, "parsing failed: %s (line %u: %s)", ow_strerror(r), d.line, d.message);
        return p;
}

static void check_secret(const OwPfs *p, const char *id, const char *expect, size_t n) {
        const uint8_t *s = NULL;
        size_t len = 0;
        ck_assert_int_eq(ow_pfs_lookup(p, id, &s, &len), 0);
        ck_assert_uint_eq(len, n);
        ck_assert_bytes_eq(s, expect, n);
}

START_TEST(test_parse_lookup) {
        OwPfs *p = parse_ok(sample, strlen(sample));

        ck_assert_uint_eq(ow_pfs_count(p), 3);
        ck_assert_str_eq(ow_pfs_id(p, 0), "testuser");
        ck_assert_str_eq(ow_pfs_id(p, 1), "test");
        ck_assert_str_eq(ow_pfs_id(p, 2), "caf\xc3\xa9");
        ck_assert_ptr_null(ow_pfs_id(p, 3));
        check_secret(p, "testuser", "testsecret", 10);
        check_secret(p, "test", "\x54\xb0\xc5\x8c\x7c\xe9\xf2\xa8\xb5\x51\x35\x11\x02\xee\x09\x38", 16);
        check_secret(p, "caf\xc3\xa9", "\x00\xff", 2);

        /* Exact match only: no prefixes either way, case matters. */
        ck_assert_int_eq(ow_pfs_lookup(p, "testuse", NULL, NULL), -ENOENT);
        ck_assert_int_eq(ow_pfs_lookup(p, "testuser2", NULL, NULL), -ENOENT);
        ck_assert_int_eq(ow_pfs_lookup(p, "tes", NULL, NULL), -ENOENT);
        ck_assert_int_eq(ow_pfs_lookup(p, "TEST", NULL, NULL), -ENOENT);
        ck_assert_int_eq(ow_pfs_lookup(p, "", NULL, NULL), -ENOENT);
        ck_assert_int_eq(ow_pfs_lookup(p, NULL, NULL, NULL), -ENOENT);
        ck_assert_int_eq(ow_pfs_lookup(NULL, "test", NULL, NULL), -ENOENT);
        ow_pfs_free(p);

        /* "test" alone must not find "testuser". */
        static const char only_testuser[] = "testuser 74657374736563726574\n";
        p = parse_ok(only_testuser, strlen(only_testuser));
        ck_assert_int_eq(ow_pfs_lookup(p, "test", NULL, NULL), -ENOENT);
        ow_pfs_free(p);
}
END_TEST

START_TEST(test_roundtrip) {
        OwPfs *p = parse_ok(sample, strlen(sample));
        char *out = NULL;
        size_t n = 0;

        ck_assert_int_eq(ow_pfs_encode(p, &out, &n), 0);
        ck_assert_uint_eq(n, strlen(sample));
        ck_assert_str_eq(out, sample);
        ow_pfs_encoded_free(out, n);
        ow_pfs_free(p);

        /* Tolerated input is written back in pfstore's canonical form. */
        static const char loose[] = "A  \t 0A0b  \r\nB\t00\n#c\n";
        p = parse_ok(loose, strlen(loose));
        ck_assert_int_eq(ow_pfs_encode(p, &out, &n), 0);
        ck_assert_str_eq(out, "A\t0a0b\nB\t00\n#c\n");
        /* ... and that form is a fixed point. */
        OwPfs *p2 = parse_ok(out, n);
        char *out2 = NULL;
        size_t n2;
        ck_assert_int_eq(ow_pfs_encode(p2, &out2, &n2), 0);
        ck_assert_str_eq(out2, out);
        ow_pfs_encoded_free(out2, n2);
        ow_pfs_encoded_free(out, n);
        ow_pfs_free(p2);
        ow_pfs_free(p);

        /* No final newline: one is added. Empty file: empty output. */
        p = parse_ok("x\tab", 4);
        ck_assert_int_eq(ow_pfs_encode(p, &out, &n), 0);
        ck_assert_str_eq(out, "x\tab\n");
        ow_pfs_encoded_free(out, n);
        ow_pfs_free(p);
        p = parse_ok("", 0);
        ck_assert_int_eq(ow_pfs_encode(p, &out, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_str_eq(out, "");
        ow_pfs_encoded_free(out, n);
        ow_pfs_free(p);
}
END_TEST

START_TEST(test_edit) {
        OwPfs *p = parse_ok(sample, strlen(sample));
        char *out = NULL;
        size_t n;
        static const uint8_t pw[] = "new pass";

        /* Replace in place, add at the end, delete. */
        ck_assert_int_eq(ow_pfs_set(p, "test", pw, 8), 0);
        ck_assert_int_eq(ow_pfs_set(p, "newuser", (const uint8_t *) "\x01\x02", 2), 0);
        ck_assert_int_eq(ow_pfs_remove(p, "caf\xc3\xa9"), 0);
        ck_assert_int_eq(ow_pfs_remove(p, "caf\xc3\xa9"), -ENOENT);
        ck_assert_int_eq(ow_pfs_remove(p, "testuse"), -ENOENT);
        ck_assert_uint_eq(ow_pfs_count(p), 3);
        check_secret(p, "test", "new pass", 8);
        ck_assert_int_eq(ow_pfs_encode(p, &out, &n), 0);
        ck_assert_str_eq(out, "# owamp-server.pfs\n"
                              "\n"
                              "testuser\t74657374736563726574\n"
                              "   # indented comment\n"
                              "test\t6e65772070617373\n"
                              "\t \n"
                              "newuser\t0102\n");
        ow_pfs_encoded_free(out, n);

        /* Invalid edits leave the store alone. */
        ck_assert_int_eq(ow_pfs_set(p, "", pw, 1), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_pfs_set(p, NULL, pw, 1), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_pfs_set(p, "two words", pw, 1), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_pfs_set(p, "tab\there", pw, 1), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_pfs_set(p, "#comment", pw, 1), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_pfs_set(p, "ctl\x7f", pw, 1), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_pfs_set(p, "nl\n", pw, 1), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_pfs_set(p, "x", pw, 0), -OW_ERR_VALUE);
        ck_assert_int_eq(ow_pfs_set(p, "x", NULL, 1), -EINVAL);
        uint8_t *big = calloc(1, OW_PFS_MAX_SECRET + 1);
        ck_assert_int_eq(ow_pfs_set(p, "x", big, OW_PFS_MAX_SECRET + 1), -OW_ERR_TOO_LONG);
        ck_assert_int_eq(ow_pfs_set(p, "x", big, OW_PFS_MAX_SECRET), 0);
        free(big);
        char id[OW_KEYID_SIZE + 2];
        memset(id, 'k', sizeof(id));
        id[OW_KEYID_SIZE] = '\0';
        ck_assert(ow_pfs_id_valid(id));
        ck_assert_int_eq(ow_pfs_set(p, id, pw, 1), 0);
        id[OW_KEYID_SIZE] = 'k';
        id[OW_KEYID_SIZE + 1] = '\0';
        ck_assert(!ow_pfs_id_valid(id));
        ck_assert_int_eq(ow_pfs_set(p, id, pw, 1), -OW_ERR_KEYID);
        ck_assert_uint_eq(ow_pfs_count(p), 5);
        ow_pfs_free(p);

        /* A new store, as "pfstore -n". */
        ck_assert_int_eq(ow_pfs_new(&p), 0);
        ck_assert_int_eq(ow_pfs_set(p, "testuser", (const uint8_t *) "testsecret", 10), 0);
        ck_assert_int_eq(ow_pfs_encode(p, &out, &n), 0);
        ck_assert_str_eq(out, "testuser\t74657374736563726574\n");
        ow_pfs_encoded_free(out, n);
        ck_assert_int_eq(ow_pfs_remove(p, "testuser"), 0);
        ck_assert_uint_eq(ow_pfs_count(p), 0);
        ow_pfs_free(p);
        ck_assert_ptr_null(ow_pfs_free(NULL));
}
END_TEST

static const BadCase bad[] = {
        { "# c\n test 00\n", 0, -OW_ERR_SYNTAX, 2, "must start at the beginning of the line" },
        { "test\n", 0, -OW_ERR_HEX, 1, "identity 'test' has no pass-phrase" },
        { "test   \n", 0, -OW_ERR_HEX, 1, "no pass-phrase" },
        { "test 0\n", 0, -OW_ERR_HEX, 1, "odd number of hex digits" },
        { "test 0g\n", 0, -OW_ERR_HEX, 1, "not hex-encoded" },
        { "a 00\nb 0x00\n", 0, -OW_ERR_HEX, 2, "not hex-encoded" },
        { "test 00 # comment\n", 0, -OW_ERR_SYNTAX, 1, "unexpected '# comment' after the pass-phrase" },
        { "test 00 11\n", 0, -OW_ERR_SYNTAX, 1, "unexpected '11'" },
        { "a 00\n\n# x\na 11\n", 0, -OW_ERR_DUPLICATE, 4, "identity 'a' is already defined on line 1" },
        { "a\x01 00\n", 0, -OW_ERR_KEYID, 1, "invalid identity 'a?'" },
        { "123456789012345678901234567890123456789012345678901234567890123456789012345678901 00\n", 0,
          -OW_ERR_KEYID, 1, "1..80 octets" },
        { "a 00\nb\0 00\n", 10, -OW_ERR_SYNTAX, 2, "NUL" },
        { "a 0\\\n0\n", 0, -OW_ERR_HEX, 1, "not hex-encoded" }, /* no continuation */
};

START_TEST(test_bad) {
        const BadCase *b = &bad[_i];
        OwPfs *p = (OwPfs *) 0x1;
        OwDiag d;
        int r = ow_pfs_parse(b->text, bad_case_len(b), "t.pfs", &p, &d);

        check_bad_case(b, r, &d, "t.pfs");
        ck_assert_ptr_eq(p, (OwPfs *) 0x1);
}
END_TEST

START_TEST(test_limits) {
        /* Secrets up to OW_PFS_MAX_SECRET octets; the file up to 1 MiB. */
        size_t n = 2 + 2 * OW_PFS_MAX_SECRET + 1;
        char *t = malloc(n + 3);
        ck_assert_ptr_nonnull(t);
        memcpy(t, "a ", 2);
        memset(t + 2, 'f', 2 * OW_PFS_MAX_SECRET);
        t[n - 1] = '\n';
        OwPfs *p = parse_ok(t, n);
        ow_pfs_free(p);
        memcpy(t + n - 1, "ff\n", 3);
        OwDiag d;
        ck_assert_int_eq(ow_pfs_parse(t, n + 2, "t", &p, &d), -OW_ERR_TOO_LONG);
        free(t);

        t = malloc(1024 * 1024 + 1);
        memset(t, '\n', 1024 * 1024 + 1);
        ck_assert_int_eq(ow_pfs_parse(t, 1024 * 1024 + 1, "t", &p, &d), -OW_ERR_TOO_LONG);
        ck_assert_int_eq(ow_pfs_parse(t, 1024 * 1024, "t", &p, &d), 0);
        ck_assert_uint_eq(ow_pfs_count(p), 0);
        ow_pfs_free(p);
        free(t);
        ck_assert_int_eq(ow_pfs_parse("x", 1, "t", NULL, &d), -EINVAL);

        /* OW_PFS_MAX_ENTRIES identities, then one too many, in a file or by editing. */
        size_t cap = (size_t) (OW_PFS_MAX_ENTRIES + 1) * 12, o = 0;
        t = malloc(cap);
        ck_assert_ptr_nonnull(t);
        for (unsigned i = 0; i < OW_PFS_MAX_ENTRIES; i++)
                o += (size_t) snprintf(t + o, cap - o, "%x 00\n", i);
        p = parse_ok(t, o);
        ck_assert_uint_eq(ow_pfs_count(p), OW_PFS_MAX_ENTRIES);
        ck_assert_int_eq(ow_pfs_set(p, "more", (const uint8_t *) "x", 1), -OW_ERR_COUNT);
        ck_assert_int_eq(ow_pfs_set(p, "0", (const uint8_t *) "x", 1), 0); /* replacing is fine */
        ow_pfs_free(p);
        o += (size_t) snprintf(t + o, cap - o, "more 00\n");
        ck_assert_int_eq(ow_pfs_parse(t, o, "t", &p, &d), -OW_ERR_COUNT);
        ck_assert_uint_eq(d.line, OW_PFS_MAX_ENTRIES + 1);
        free(t);
}
END_TEST

/* conf/owampd.pfs, as installed: comments only, no identity. */
START_TEST(test_shipped_pfs) {
        uint8_t *buf;
        size_t len;
        OwPfs *p = NULL;
        OwDiag d;

        test_read_file(CONF_EXAMPLES_DIR "/owampd.pfs", &buf, &len);
        ck_assert_int_eq(ow_pfs_parse(buf, len, "owampd.pfs", &p, &d), 0);
        ck_assert_uint_eq(ow_pfs_count(p), 0);
        ow_pfs_free(p);
        free(buf);
}
END_TEST

int main(void) {
        Suite *s = suite_create("pfs");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_parse_lookup);
        tcase_add_test(tc, test_roundtrip);
        tcase_add_test(tc, test_edit);
        tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
        tcase_add_test(tc, test_limits);
        tcase_add_test(tc, test_shipped_pfs);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
