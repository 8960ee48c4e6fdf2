/* SPDX-License-Identifier: Apache-2.0 */

/* launcher-systemd.c against a stand-in broker (a child process on an
 * AF_UNIX SOCK_SEQPACKET socket in a temporary folder): when the broker is
 * gone, a reconnect waits a bounded time for a HELLO, and after a failed
 * one the next sessions fail at once instead of each waiting again
 * (owampd's event loop waits with it). */

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch-proto.h"
#include "launcher.h"

#define SID "0123456789abcdef0123456789abcdef"

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

START_TEST(test_reconnect_backoff) {
        char dir[] = "/tmp/test-launcher-systemd.XXXXXX";
        char path[sizeof(dir) + 16];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        sd_event *e = NULL;
        Launcher *l = NULL;
        Worker *w = NULL;
        int sv[2], udp;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/sock", dir);
        strcpy(sa.sun_path, path);
        int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(lfd, 0);
        ck_assert_int_eq(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(lfd, 16), 0);

        /* The broker: one connection, a HELLO, then it dies. */
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int c = accept(lfd, NULL, NULL);
                LaunchMsg hello = { .type = LAUNCH_MSG_HELLO };
                _exit(c >= 0 && launch_send(c, &hello, NULL, 0) == 0 ? 0 : 1);
        }
        ck_assert_int_eq(sd_event_new(&e), 0);
        ck_assert_int_eq(launcher_systemd_new(e, path, 5 * UINT64_C(1000000), &l), 0);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* The loop sees the connection end. */
        for (int i = 0; i < 10; i++)
                (void) sd_event_run(e, 50000);

        /* The socket is still there (connect succeeds into its backlog) but
         * nobody answers: the reconnect gives up after a bounded wait. */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(udp, 0);
        WorkerSpec spec = { .sid_hex = SID, .runtime_max_usec = 60 * UINT64_C(1000000), .log_max_priority = 6 };
        uint64_t t0 = now_usec();
        ck_assert_int_eq(launcher_start(l, &spec, udp, sv[1], NULL, NULL, &w), -ETIMEDOUT);
        uint64_t waited = now_usec() - t0;
        ck_assert_uint_ge(waited, 1000000);
        ck_assert_uint_le(waited, 4000000);
        ck_assert_ptr_null(w);

        /* The next sessions do not wait again. */
        for (int i = 0; i < 3; i++) {
                t0 = now_usec();
                ck_assert_int_eq(launcher_start(l, &spec, udp, sv[1], NULL, NULL, &w), -ENOTCONN);
                ck_assert_uint_le(now_usec() - t0, 500000);
                ck_assert_ptr_null(w);
        }

        launcher_free(l);
        sd_event_unref(e);
        close(udp);
        close(sv[0]);
        close(sv[1]);
        close(lfd);
        unlink(path);
        rmdir(dir);
}
END_TEST

int main(void) {
        Suite *s = suite_create("launcher-systemd");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_reconnect_backoff);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
