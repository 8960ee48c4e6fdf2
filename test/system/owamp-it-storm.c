/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owamp-it-storm: hostile OWAMP-Control connections for the system tests
 * (test-owampd-storm.sh), as test/integration/storm.py makes them where
 * Python is: from PER connections on each of the addresses 127.0.0.FIRST..,
 * in turn idle (reads the greeting, then nothing), slowloris (its
 * Set-Up-Response an octet every 500 ms), garbage (164 octets with no
 * valid mode) and half (the first 100 octets of a Set-Up-Response); each
 * connection the server closes is opened again 200 ms later. After SECONDS
 * it closes everything and prints
 *
 *     opened=N closed_by_server=N refused_at_once=N peak_open=N
 *
 * Usage: owamp-it-storm HOST PORT FIRST N_ADDRS PER SECONDS
 * Every loop is bounded by SECONDS; traffic goes to HOST only (loopback).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GREETING_SIZE 64
#define SETUP_RESPONSE_SIZE 164
#define HALF_SIZE 100
#define SLOW_INTERVAL_MS 500
#define RECONNECT_MS 200

enum { IDLE, SLOWLORIS, GARBAGE, HALF, N_KINDS };

typedef struct Slot {
        int fd;
        int kind;
        struct in_addr source;
        size_t got, sent;
        int64_t next_ms; /* reconnect (fd < 0) or next slow octet */
} Slot;

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct sockaddr_in server;
static unsigned long n_opened, n_closed, n_refused, peak_open, n_open;

static void slot_open(Slot *s, int64_t now) {
        struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr = s->source };
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        s->got = s->sent = 0;
        s->next_ms = now + RECONNECT_MS;
        if (fd < 0)
                return;
        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        if (bind(fd, (struct sockaddr *) &src, sizeof(src)) < 0 ||
            (connect(fd, (struct sockaddr *) &server, sizeof(server)) < 0 && errno != EINPROGRESS)) {
                close(fd);
                return;
        }
        s->fd = fd;
        n_opened++;
        if (++n_open > peak_open)
                peak_open = n_open;
}

static void slot_close(Slot *s, int64_t now, bool by_server) {
        close(s->fd);
        s->fd = -1;
        n_open--;
        if (by_server) {
                n_closed++;
                if (s->got == 0)
                        n_refused++;
        }
        s->next_ms = now + RECONNECT_MS;
}

static void slot_send(Slot *s, const uint8_t *data, size_t n, int64_t now) {
        if (send(s->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
                slot_close(s, now, true);
        else
                s->sent += n;
}

int main(int argc, char **argv) {
        if (argc != 7) {
                fprintf(stderr, "usage: %s HOST PORT FIRST N_ADDRS PER SECONDS\n", argv[0]);
                return 2;
        }
        unsigned first = (unsigned) atoi(argv[3]), n_addrs = (unsigned) atoi(argv[4]),
                 per = (unsigned) atoi(argv[5]), secs = (unsigned) atoi(argv[6]);
        server = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(argv[2])) };
        if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1 || first < 1 || n_addrs < 1 ||
            first + n_addrs > 255 || per < 1 || per > 1000 || secs < 1 || secs > 600) {
                fprintf(stderr, "%s: bad arguments\n", argv[0]);
                return 2;
        }
        size_t n = (size_t) n_addrs * per;
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 64) {
                rl.rlim_cur = rl.rlim_max < n + 64 ? rl.rlim_max : n + 64;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        Slot *slots = calloc(n, sizeof(*slots));
        struct pollfd *pfds = calloc(n, sizeof(*pfds));
        if (!slots || !pfds)
                return 1;

        uint8_t setup[SETUP_RESPONSE_SIZE] = { 0, 0, 0, 1 }; /* open mode, late */
        uint8_t garbage[SETUP_RESPONSE_SIZE];
        for (size_t i = 0; i < sizeof(garbage); i++)
                garbage[i] = (uint8_t) (i * 37 + 11);
        garbage[0] = garbage[1] = garbage[2] = 0;
        garbage[3] = 8; /* no such mode */

        int64_t start = now_ms(), end = start + (int64_t) secs * 1000;
        for (size_t i = 0; i < n; i++) {
                slots[i].fd = -1;
                slots[i].kind = (int) ((i / per) % N_KINDS);
                slots[i].source.s_addr = htonl(INADDR_LOOPBACK - 1 + first + (unsigned) (i / per));
                slots[i].next_ms = start;
        }

        for (int64_t now = start; now < end; now = now_ms()) {
                for (size_t i = 0; i < n; i++) {
                        Slot *s = &slots[i];
                        if (s->fd < 0 && s->next_ms <= now)
                                slot_open(s, now);
                        else if (s->fd >= 0 && s->kind == SLOWLORIS && s->got >= GREETING_SIZE &&
                                 s->sent < sizeof(setup) && s->next_ms <= now) {
                                slot_send(s, setup + s->sent, 1, now);
                                s->next_ms = now + SLOW_INTERVAL_MS;
                        }
                        pfds[i] = (struct pollfd){ .fd = s->fd, .events = POLLIN };
                }
                if (poll(pfds, n, 20) < 0 && errno != EINTR)
                        return 1;
                now = now_ms();
                for (size_t i = 0; i < n; i++) {
                        Slot *s = &slots[i];
                        uint8_t buf[512];
                        if (s->fd < 0 || !(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        ssize_t k = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
                        if (k < 0 && errno == EAGAIN)
                                continue;
                        if (k <= 0) {
                                slot_close(s, now, true);
                                continue;
                        }
                        size_t was = s->got;
                        s->got += (size_t) k;
                        if (was < GREETING_SIZE && s->got >= GREETING_SIZE) {
                                if (s->kind == GARBAGE)
                                        slot_send(s, garbage, sizeof(garbage), now);
                                else if (s->kind == HALF)
                                        slot_send(s, setup, HALF_SIZE, now);
                                else if (s->kind == SLOWLORIS)
                                        s->next_ms = now;
                        }
                }
        }
        for (size_t i = 0; i < n; i++)
                if (slots[i].fd >= 0)
                        slot_close(&slots[i], 0, false);
        printf("opened=%lu closed_by_server=%lu refused_at_once=%lu peak_open=%lu\n", n_opened, n_closed,
               n_refused, peak_open);
        free(slots);
        free(pfds);
        return 0;
}
