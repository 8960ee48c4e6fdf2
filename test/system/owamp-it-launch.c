/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owamp-it-launch: talks to owampd-launcher's socket as a stranger would,
 * for the system tests (test-storm.sh). Prints one line and exits 0 when
 * the exchange happened as told below (whatever its answer), 1 otherwise:
 *
 *   hello     connect, wait for the broker's first message:
 *             "hello" (its HELLO), "closed" (it hung up: refused the peer)
 *   garbage   after HELLO, a 7-octet datagram: "closed" when it hangs up
 *   bad-fds   after HELLO, a well-formed START carrying two pipe ends
 *             instead of a UDP socket and a stream socket:
 *             "exited status=N" (its EXITED for that SID)
 *
 * A failed connect prints "connect: <reason>". Every wait is bounded.
 *
 * Usage: owamp-it-launch MODE [SOCKET]
 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "launch-proto.h"

#define WAIT_MSEC 10000
#define TEST_SID "0123456789abcdef0123456789abcdef"

/* 1 and the message, 0 at end of stream, -1 on timeout or error. */
static int next(int fd, LaunchMsg *ret) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int fds[LAUNCH_MAX_FDS];

        for (;;) {
                int r = poll(&p, 1, WAIT_MSEC);
                if (r <= 0)
                        return -1;
                r = launch_recv(fd, ret, fds);
                if (r == -EAGAIN)
                        continue;
                if (r == -ECONNRESET)
                        return 0;
                if (r < 0)
                        return -1;
                for (size_t i = 0; i < launch_msg_n_fds(ret->type); i++)
                        close(fds[i]);
                return r;
        }
}

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *path = argc > 2 ? argv[2] : LAUNCHER_SOCKET_PATH;
        LaunchMsg m;
        int r;

        if (argc < 2 || strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: %s hello|garbage|bad-fds [SOCKET]\n", argv[0]);
                return 2;
        }
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                printf("connect: %s\n", strerror(errno));
                return 0;
        }
        r = next(fd, &m);
        if (r == 0) {
                printf("closed\n");
                return 0;
        }
        if (r < 0 || m.type != LAUNCH_MSG_HELLO) {
                printf("no hello\n");
                return 1;
        }
        if (strcmp(argv[1], "hello") == 0) {
                printf("hello\n");
                return 0;
        }
        if (strcmp(argv[1], "garbage") == 0) {
                static const char junk[] = "garbage";
                if (send(fd, junk, sizeof(junk) - 1, MSG_NOSIGNAL) < 0)
                        return printf("send: %s\n", strerror(errno)), 1;
                r = next(fd, &m);
                printf("%s\n", r == 0 ? "closed" : "still open");
                return r == 0 ? 0 : 1;
        }
        if (strcmp(argv[1], "bad-fds") == 0) {
                int p[2];
                if (pipe(p) < 0)
                        return 1;
                m = (LaunchMsg) {
                        .type = LAUNCH_MSG_START,
                        .role = LAUNCH_ROLE_RECEIVER,
                        .runtime_max_usec = LAUNCH_RUNTIME_MIN_USEC,
                        .log_priority = 6,
                };
                memcpy(m.sid, TEST_SID, LAUNCH_SID_LEN);
                r = launch_send(fd, &m, p, 2);
                if (r < 0)
                        return printf("send: %s\n", strerror(-r)), 1;
                r = next(fd, &m);
                if (r <= 0 || m.type != LAUNCH_MSG_EXITED || strcmp(m.sid, TEST_SID) != 0) {
                        printf("no answer\n");
                        return 1;
                }
                printf("exited status=%d\n", (int) m.status);
                return 0;
        }
        fprintf(stderr, "%s: unknown mode %s\n", argv[0], argv[1]);
        return 2;
}
