/* SPDX-License-Identifier: Apache-2.0 */

/* The owampd <-> owampd-launcher protocol (src/shared/launch-proto.h): the
 * codec's rules one by one, and real datagrams with fds over a
 * SOCK_SEQPACKET socketpair. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch-proto.h"
#include "macro.h"
#include "ow-error.h"
#include "testutil.h"

#define SID "7f000001eeb4ff9301ddcbef765d027e"

static LaunchMsg start_msg(void) {
        LaunchMsg m = {
                .type = LAUNCH_MSG_START,
                .role = LAUNCH_ROLE_RECEIVER,
                .runtime_max_usec = 150 * UINT64_C(1000000),
                .log_priority = 6,
        };
        memcpy(m.sid, SID, sizeof(SID));
        return m;
}

static int decode_modified(LaunchMsg m, size_t offset, const void *bytes, size_t n) {
        uint8_t buf[LAUNCH_MSG_SIZE];
        LaunchMsg out;
        ck_assert_int_eq(launch_msg_encode(&m, buf), 0);
        memcpy(buf + offset, bytes, n);
        return launch_msg_decode(buf, sizeof(buf), &out);
}

static unsigned count_fds(void) {
        unsigned n = 0;
        DIR *d = opendir("/proc/self/fd");
        ck_assert_ptr_nonnull(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

START_TEST(test_round_trip) {
        LaunchMsg msgs[] = {
                { .type = LAUNCH_MSG_HELLO },
                start_msg(),
                { .type = LAUNCH_MSG_STOP },
                { .type = LAUNCH_MSG_STARTED },
                { .type = LAUNCH_MSG_EXITED, .status = -9 },
                { .type = LAUNCH_MSG_EXITED, .status = LAUNCH_STATUS_NOT_STARTED },
        };
        for (size_t i = 2; i < ELEMENTSOF(msgs); i++)
                memcpy(msgs[i].sid, SID, sizeof(SID));
        msgs[1].role = LAUNCH_ROLE_SENDER;
        msgs[1].runtime_max_usec = LAUNCH_RUNTIME_MAX_USEC;
        msgs[1].log_priority = 7;

        for (size_t i = 0; i < ELEMENTSOF(msgs); i++) {
                uint8_t buf[LAUNCH_MSG_SIZE];
                LaunchMsg out;
                ck_assert_int_eq(launch_msg_encode(&msgs[i], buf), 0);
                ck_assert_int_eq(launch_msg_decode(buf, sizeof(buf), &out), 0);
                ck_assert_int_eq(out.type, msgs[i].type);
                ck_assert_int_eq(out.role, msgs[i].role);
                ck_assert_str_eq(out.sid, msgs[i].sid);
                ck_assert_uint_eq(out.runtime_max_usec, msgs[i].runtime_max_usec);
                ck_assert_int_eq(out.log_priority, msgs[i].log_priority);
                ck_assert_int_eq(out.status, msgs[i].status);
        }
        ck_assert_uint_eq(launch_msg_n_fds(LAUNCH_MSG_START), 2);
        ck_assert_uint_eq(launch_msg_n_fds(LAUNCH_MSG_STOP), 0);
}
END_TEST

START_TEST(test_decode_rules) {
        LaunchMsg m = start_msg();
        uint8_t buf[LAUNCH_MSG_SIZE + 1] = {};
        LaunchMsg out;
        ck_assert_int_eq(launch_msg_encode(&m, buf), 0);

        /* Size first. */
        ck_assert_int_eq(launch_msg_decode(buf, LAUNCH_MSG_SIZE - 1, &out), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(launch_msg_decode(buf, LAUNCH_MSG_SIZE + 1, &out), -OW_ERR_TOO_LONG);
        ck_assert_int_eq(launch_msg_decode(buf, 0, &out), -OW_ERR_TRUNCATED);

        /* Type. */
        uint32_t t = 0;
        ck_assert_int_eq(decode_modified(m, 0, &t, 4), -OW_ERR_COMMAND);
        t = _LAUNCH_MSG_MAX;
        ck_assert_int_eq(decode_modified(m, 0, &t, 4), -OW_ERR_COMMAND);
        t = UINT32_MAX;
        ck_assert_int_eq(decode_modified(m, 0, &t, 4), -OW_ERR_COMMAND);

        /* The SID: 32 lower-case hex digits, every one of them. */
        ck_assert_int_eq(decode_modified(m, 8, "A", 1), -OW_ERR_HEX);
        ck_assert_int_eq(decode_modified(m, 8 + 31, "g", 1), -OW_ERR_HEX);
        ck_assert_int_eq(decode_modified(m, 8 + 5, "\0", 1), -OW_ERR_HEX);
        ck_assert_int_eq(decode_modified(m, 8 + 5, "/", 1), -OW_ERR_HEX);

        /* START's fields. */
        uint32_t role = 0;
        ck_assert_int_eq(decode_modified(m, 4, &role, 4), -OW_ERR_RANGE);
        role = 3;
        ck_assert_int_eq(decode_modified(m, 4, &role, 4), -OW_ERR_RANGE);
        uint64_t rt = LAUNCH_RUNTIME_MIN_USEC - 1;
        ck_assert_int_eq(decode_modified(m, 40, &rt, 8), -OW_ERR_RANGE);
        rt = LAUNCH_RUNTIME_MAX_USEC + 1;
        ck_assert_int_eq(decode_modified(m, 40, &rt, 8), -OW_ERR_RANGE);
        rt = LAUNCH_RUNTIME_MIN_USEC;
        ck_assert_int_eq(decode_modified(m, 40, &rt, 8), 0);
        int32_t prio = -1;
        ck_assert_int_eq(decode_modified(m, 48, &prio, 4), -OW_ERR_RANGE);
        prio = 8;
        ck_assert_int_eq(decode_modified(m, 48, &prio, 4), -OW_ERR_RANGE);
        int32_t status = 1;
        ck_assert_int_eq(decode_modified(m, 52, &status, 4), -OW_ERR_PADDING);

        /* Fields a type does not use must be zero. */
        LaunchMsg stop = { .type = LAUNCH_MSG_STOP };
        memcpy(stop.sid, SID, sizeof(SID));
        role = LAUNCH_ROLE_SENDER;
        ck_assert_int_eq(decode_modified(stop, 4, &role, 4), -OW_ERR_PADDING);
        rt = 1;
        ck_assert_int_eq(decode_modified(stop, 40, &rt, 8), -OW_ERR_PADDING);
        prio = 6;
        ck_assert_int_eq(decode_modified(stop, 48, &prio, 4), -OW_ERR_PADDING);
        ck_assert_int_eq(decode_modified(stop, 52, &status, 4), -OW_ERR_PADDING);
        LaunchMsg hello = { .type = LAUNCH_MSG_HELLO };
        ck_assert_int_eq(decode_modified(hello, 8 + 10, "1", 1), -OW_ERR_PADDING);
        LaunchMsg exited = { .type = LAUNCH_MSG_EXITED, .status = 3 };
        memcpy(exited.sid, SID, sizeof(SID));
        ck_assert_int_eq(decode_modified(exited, 52, &status, 4), 0);
        ck_assert_int_eq(decode_modified(exited, 4, &role, 4), -OW_ERR_PADDING);

        /* The encoder refuses what the decoder would. */
        LaunchMsg bad = start_msg();
        bad.sid[0] = 'X';
        ck_assert_int_eq(launch_msg_encode(&bad, buf), -EINVAL);
        bad = start_msg();
        bad.runtime_max_usec = 0;
        ck_assert_int_eq(launch_msg_encode(&bad, buf), -EINVAL);
        bad = (LaunchMsg) { .type = LAUNCH_MSG_STOP };
        ck_assert_int_eq(launch_msg_encode(&bad, buf), -EINVAL); /* no SID */
}
END_TEST

START_TEST(test_unit_name) {
        char name[LAUNCH_UNIT_NAME_MAX];
        ck_assert_int_eq(launch_unit_name(SID, name), 0);
        ck_assert_str_eq(name, "owamp-session-" SID ".service");
        ck_assert_int_eq(launch_unit_name("7f000001", name), -EINVAL);
        ck_assert_int_eq(launch_unit_name(SID "0", name), -EINVAL);
        ck_assert_int_eq(launch_unit_name("../../../etc/passwd/0000000000000", name), -EINVAL);
        ck_assert_int_eq(launch_unit_name(NULL, name), -EINVAL);
        ck_assert(launch_sid_valid(SID));
        ck_assert(!launch_sid_valid("7F000001EEB4FF9301DDCBEF765D027E"));
}
END_TEST

START_TEST(test_socket) {
        int sv[2], fds[LAUNCH_MAX_FDS];
        LaunchMsg m = start_msg(), out;
        struct stat a, b;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int ctl[2];
        ck_assert_int_ge(udp, 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl), 0);
        unsigned base = count_fds();

        /* Nothing there yet. */
        ck_assert_int_eq(launch_recv(sv[1], &out, fds), -EAGAIN);

        /* START with its two fds arrives with them (new fds, same sockets). */
        int two[] = { udp, ctl[1] };
        ck_assert_int_eq(launch_send(sv[0], &m, two, 2), 0);
        ck_assert_int_eq(launch_recv(sv[1], &out, fds), 1);
        ck_assert_int_eq(out.type, LAUNCH_MSG_START);
        ck_assert_str_eq(out.sid, SID);
        ck_assert_int_ge(fds[0], 0);
        ck_assert_int_ge(fds[1], 0);
        ck_assert_int_eq(fstat(fds[0], &a), 0);
        ck_assert_int_eq(fstat(udp, &b), 0);
        ck_assert_uint_eq(a.st_ino, b.st_ino);
        ck_assert_int_eq(fstat(fds[1], &a), 0);
        ck_assert_int_eq(fstat(ctl[1], &b), 0);
        ck_assert_uint_eq(a.st_ino, b.st_ino);
        ck_assert(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
        close(fds[0]);
        close(fds[1]);
        ck_assert_uint_eq(count_fds(), base);

        /* The wrong number of fds: refused, whatever arrived is closed. */
        ck_assert_int_eq(launch_send(sv[0], &m, two, 1), -EINVAL);
        LaunchMsg stop = { .type = LAUNCH_MSG_STOP };
        memcpy(stop.sid, SID, sizeof(SID));
        ck_assert_int_eq(launch_send(sv[0], &stop, two, 2), -EINVAL);

        uint8_t raw[LAUNCH_MSG_SIZE];
        ck_assert_int_eq(launch_msg_encode(&m, raw), 0);
        int three[] = { udp, ctl[0], ctl[1] };
        for (size_t n = 0; n <= 3; n++) {
                if (n == 2)
                        continue;
                union {
                        struct cmsghdr h;
                        uint8_t buf[CMSG_SPACE(sizeof(int) * 3)];
                } control = {};
                struct iovec iov = { .iov_base = raw, .iov_len = sizeof(raw) };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
                if (n > 0) {
                        mh.msg_control = control.buf;
                        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
                        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
                        memcpy(CMSG_DATA(c), three, sizeof(int) * n);
                }
                ck_assert_int_eq(sendmsg(sv[0], &mh, 0), (ssize_t) sizeof(raw));
                ck_assert_int_eq(launch_recv(sv[1], &out, fds), -EBADMSG);
                ck_assert_int_eq(fds[0], -1);
                ck_assert_uint_eq(count_fds(), base);
        }

        /* A datagram of the wrong size, a bad one with fds. */
        uint8_t big[LAUNCH_MSG_SIZE * 2] = {};
        ck_assert_int_eq(send(sv[0], big, sizeof(big), 0), (ssize_t) sizeof(big));
        ck_assert_int_eq(launch_recv(sv[1], &out, fds), -OW_ERR_TOO_LONG);
        ck_assert_int_eq(send(sv[0], big, 10, 0), 10);
        ck_assert_int_eq(launch_recv(sv[1], &out, fds), -OW_ERR_TRUNCATED);
        raw[0] = 99;
        ck_assert_int_eq(send(sv[0], raw, sizeof(raw), 0), (ssize_t) sizeof(raw));
        ck_assert_int_eq(launch_recv(sv[1], &out, fds), -OW_ERR_COMMAND);
        ck_assert_uint_eq(count_fds(), base);

        /* A message without fds, then the end. */
        ck_assert_int_eq(launch_send(sv[0], &stop, NULL, 0), 0);
        ck_assert_int_eq(launch_recv(sv[1], &out, fds), 1);
        ck_assert_int_eq(out.type, LAUNCH_MSG_STOP);
        ck_assert_int_eq(fds[0], -1);
        close(sv[0]);
        ck_assert_int_eq(launch_recv(sv[1], &out, fds), 0);
        ck_assert_int_eq(launch_send(sv[1], &stop, NULL, 0), -EPIPE);

        close(sv[1]);
        close(udp);
        close(ctl[0]);
        close(ctl[1]);
}
END_TEST

int main(void) {
        Suite *s = suite_create("launch-proto");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_decode_rules);
        tcase_add_test(tc, test_unit_name);
        tcase_add_test(tc, test_socket);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
