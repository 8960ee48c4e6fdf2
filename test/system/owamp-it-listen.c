/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owamp-it-listen: a stand-in for a socket-activated daemon, used by the
 * system tests before the real owampd exists. It takes exactly one listening
 * TCP socket from systemd (Accept=no), reports readiness, logs one structured
 * journal entry, and answers every connection with one line:
 *
 *     owamp-it-listen uid=<uid> fds=<n> connection=<count>
 *
 * It exits by itself after IDLE_SEC seconds without a connection (default
 * 60), so a forgotten instance cannot outlive a test by much.
 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "macro.h"

#define IDLE_SEC_DEFAULT 60

static int serve(int listen_fd, int n_fds, unsigned idle_sec) {
        unsigned connections = 0;

        for (;;) {
                struct pollfd p = { .fd = listen_fd, .events = POLLIN };
                int r = poll(&p, 1, (int) (idle_sec * 1000));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return 0; /* idle for too long: leave */

                _cleanup_close_ int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
                                continue;
                        return -errno;
                }
                connections++;
                /* A peer that goes away early is not our failure. */
                (void) dprintf(fd, "owamp-it-listen uid=%u fds=%d connection=%u\n", (unsigned) getuid(),
                               n_fds, connections);
        }
}

int main(int argc, char *argv[]) {
        unsigned idle_sec = IDLE_SEC_DEFAULT;
        int n, r;

        if (argc > 2) {
                fprintf(stderr, "usage: %s [IDLE_SEC]\n", argv[0]);
                return EXIT_FAILURE;
        }
        if (argc == 2) {
                char *end;
                unsigned long v = strtoul(argv[1], &end, 10);
                if (*argv[1] == '\0' || *end != '\0' || v == 0 || v > 3600) {
                        fprintf(stderr, "owamp-it-listen: bad IDLE_SEC '%s'\n", argv[1]);
                        return EXIT_FAILURE;
                }
                idle_sec = (unsigned) v;
        }

        n = sd_listen_fds(1);
        if (n < 0) {
                fprintf(stderr, "owamp-it-listen: sd_listen_fds: %s\n", strerror(-n));
                return EXIT_FAILURE;
        }
        if (n != 1) {
                fprintf(stderr, "owamp-it-listen: expected 1 socket from systemd, got %d\n", n);
                return EXIT_FAILURE;
        }
        r = sd_is_socket_inet(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_STREAM, 1, 0);
        if (r <= 0) {
                fprintf(stderr, "owamp-it-listen: fd %d is not a listening TCP socket\n",
                        SD_LISTEN_FDS_START);
                return EXIT_FAILURE;
        }

        /* Structured logging through the native protocol: this is what fails
         * silently when RestrictAddressFamilies= lacks AF_UNIX. */
        r = sd_journal_send("MESSAGE=owamp-it-listen: serving on fd %d", SD_LISTEN_FDS_START, "PRIORITY=6",
                            "OWAMP_IT_EVENT=listening", NULL);
        if (r < 0)
                fprintf(stderr, "owamp-it-listen: sd_journal_send: %s\n", strerror(-r));

        (void) sd_notify(0, "READY=1\nSTATUS=Serving");
        printf("owamp-it-listen: ready, uid=%u\n", (unsigned) getuid());
        fflush(stdout);

        r = serve(SD_LISTEN_FDS_START, n, idle_sec);
        (void) sd_notify(0, "STOPPING=1");
        if (r < 0) {
                fprintf(stderr, "owamp-it-listen: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
