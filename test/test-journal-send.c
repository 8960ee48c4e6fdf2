/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "journal-send.h"
#include "testutil.h"

static int bind_sink(char *path, size_t size) {
        snprintf(path, size, "/tmp/test-journal-send.%d", (int) getpid());
        (void) unlink(path);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, path);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

#define IOV(s) \
        { .iov_base = (char *) (s), .iov_len = sizeof(s) - 1 }

START_TEST(test_journal_send_fields) {
        char path[108];
        uint8_t buf[4096];
        int fd = bind_sink(path, sizeof(path));
        struct iovec iov[] = {
                IOV("MESSAGE=Session 0123 started"),
                IOV("PRIORITY=6"),
                IOV("OWAMP_SID=7f000001eeb4dc4ecc65e8928b26d267"),
        };

        ck_assert_int_eq(journal_sendv_to(path, iov, 3), 0);
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        const char want[] = "MESSAGE=Session 0123 started\nPRIORITY=6\n"
                            "OWAMP_SID=7f000001eeb4dc4ecc65e8928b26d267\n";
        ck_assert_int_eq(n, sizeof(want) - 1);
        ck_assert_bytes_eq(buf, want, sizeof(want) - 1);
        close(fd);
        unlink(path);
}
END_TEST

START_TEST(test_journal_send_newline) {
        /* A value with a newline goes in the binary form: FIELD\n, 64-bit
         * little-endian length, the value, \n. */
        char path[108];
        uint8_t buf[4096];
        int fd = bind_sink(path, sizeof(path));
        struct iovec iov[] = { IOV("MESSAGE=two\nlines"), IOV("EMPTY=") };

        ck_assert_int_eq(journal_sendv_to(path, iov, 2), 0);
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        const uint8_t want[] = { 'M', 'E', 'S', 'S',  'A', 'G', 'E', '\n', 9,    0,   0,
                                 0,   0,   0,   0,    0,   't', 'w', 'o',  '\n', 'l', 'i',
                                 'n', 'e', 's', '\n', 'E', 'M', 'P', 'T',  'Y',  '=', '\n' };
        ck_assert_int_eq(n, sizeof(want));
        ck_assert_bytes_eq(buf, want, sizeof(want));
        close(fd);
        unlink(path);
}
END_TEST

START_TEST(test_journal_send_errors) {
        char path[108];
        int fd = bind_sink(path, sizeof(path));
        struct iovec bad[] = { IOV("NOEQUALS") }, noname[] = { IOV("=value") }, ok[] = { IOV("A=b") };

        ck_assert_int_eq(journal_sendv_to(path, bad, 1), -EINVAL);
        ck_assert_int_eq(journal_sendv_to(path, noname, 1), -EINVAL);
        close(fd);
        unlink(path);
        /* No journal listening there. */
        ck_assert_int_eq(journal_sendv_to(path, ok, 1), -ENOENT);
}
END_TEST

int main(void) {
        Suite *s = suite_create("journal-send");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_journal_send_fields);
        tcase_add_test(tc, test_journal_send_newline);
        tcase_add_test(tc, test_journal_send_errors);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
