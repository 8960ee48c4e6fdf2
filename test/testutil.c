/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

const char *test_data_path(const char *name) {
        static char buf[4096];
        snprintf(buf, sizeof(buf), "%s/%s", TEST_DATA_DIR, name);
        return buf;
}

void test_read_file(const char *path, uint8_t **ret, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        ck_assert_msg(f, "cannot open %s: %s", path, strerror(errno));
        uint8_t *buf = NULL;
        size_t len = 0;
        for (;;) {
                uint8_t chunk[65536];
                size_t n = fread(chunk, 1, sizeof(chunk), f);
                if (n == 0)
                        break;
                buf = realloc(buf, len + n);
                ck_assert(buf);
                memcpy(buf + len, chunk, n);
                len += n;
        }
        fclose(f);
        if (!buf)
                buf = malloc(1);
        *ret = buf;
        *ret_len = len;
}

static int hexval(int c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = tolower(c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

void test_unhex(const char *hex, uint8_t *out, size_t len) {
        size_t n = 0;
        int hi = -1;
        for (const char *p = hex; *p; p++) {
                if (isspace((unsigned char) *p))
                        continue;
                int v = hexval((unsigned char) *p);
                ck_assert_msg(v >= 0, "bad hex digit '%c' in %s", *p, hex);
                if (hi < 0) {
                        hi = v;
                        continue;
                }
                ck_assert_msg(n < len, "hex string longer than %zu bytes: %s", len, hex);
                out[n++] = (uint8_t) (hi << 4 | v);
                hi = -1;
        }
        ck_assert_msg(hi < 0 && n == len, "hex string is not %zu bytes: %s", len, hex);
}

static void tohex(const uint8_t *p, size_t n, char *out) {
        static const char d[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = d[p[i] >> 4];
                out[2 * i + 1] = d[p[i] & 15];
        }
        out[2 * n] = 0;
}

void test_assert_bytes_eq(const char *file, int line, const void *a, const void *b, size_t n) {
        if (memcmp(a, b, n) == 0)
                return;
        size_t first = 0;
        while (((const uint8_t *) a)[first] == ((const uint8_t *) b)[first])
                first++;
        size_t from = first & ~(size_t) 15;
        size_t show = n - from < 64 ? n - from : 64;
        char ha[2 * 64 + 1], hb[2 * 64 + 1];
        tohex((const uint8_t *) a + from, show, ha);
        tohex((const uint8_t *) b + from, show, hb);
        ck_abort_msg("%s:%d: %zu bytes differ first at offset %zu\n  got      @%zu: %s\n  expected @%zu: %s",
                     file, line, n, first, from, ha, from, hb);
}

int test_run_suite(Suite *s) {
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_ENV);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
