/* SPDX-License-Identifier: Apache-2.0 */

/*
 * bench-setup: how long OWAMP-Control takes to get a session going.
 *
 *   bench-setup NAME SERVER MODE RUNS [KEYID SECRET]
 *
 * Each run does what owping does before its first test packet, with the
 * same client code (src/shared/client.c): connect, Server Greeting,
 * Set-Up-Response (PBKDF2 in modes A and E), Server-Start, one
 * Request-Session for a session the server receives, Start-Sessions and
 * Start-Ack (the server launches the session's worker and waits for it to
 * be ready before answering). The clock runs from just before connect()
 * to the Start-Ack; the phases are timed too. Then it stops the session
 * (Stop-Sessions, Next Seqno 0) and closes.
 *
 * Prints `NAME_total_median value ms min..max n=RUNS`, and the same for
 * the phases (connect..Server-Start, Request..Accept, Start..Start-Ack).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "net.h"
#include "ow-sid.h"
#include "ow-time.h"

static double mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void print_figure(const char *name, const char *what, double *v, size_t n) {
        qsort(v, n, sizeof(double), cmp_double);
        printf("%s_%s_median %.3f ms %.3f..%.3f n=%zu\n", name, what, v[(n - 1) / 2], v[0], v[n - 1], n);
}

static int one_run(const ClientOptions *o, double ret[4]) {
        Client c;
        OwSlot slot = { .type = OW_SLOT_FIXED, .param = ow_duration_from_nsec(100000000) };
        OwSessionRequest req = {
                .conf_receiver = true,
                .n_packets = 10,
                .timeout = OW_TIMESTAMP_FROM_SEC(2),
                .n_slots = 1,
                .slots = &slot,
        };
        OwAccept accept;
        int udp = -1, r;

        client_init(&c);
        double t0 = mono_ms();
        r = client_connect(&c, o);
        if (r < 0)
                goto fail;
        double t1 = mono_ms();

        /* Our test endpoint: a real bound port (the server checks it). */
        SockAddr local = c.local;
        uint16_t port;
        sockaddr_set_port(&local, 0);
        udp = udp_bind_in_range(&local, 0, 0, &port);
        if (udp < 0) {
                r = udp;
                snprintf(c.error, sizeof(c.error), "cannot bind a UDP socket");
                goto fail;
        }
        uint8_t ipvn;
        sockaddr_to_owamp(&local, &ipvn, req.sender_addr);
        sockaddr_to_owamp(&c.peer, &ipvn, req.receiver_addr);
        req.ipvn = ipvn;
        req.sender_port = port;
        req.start_time = client_now() + OW_TIMESTAMP_FROM_SEC(5);

        double t2 = mono_ms();
        r = client_request_session(&c, &req, &accept);
        if (r < 0)
                goto fail;
        if (accept != OW_ACCEPT_OK) {
                snprintf(c.error, sizeof(c.error), "session refused (%d)", accept);
                r = -EPERM;
                goto fail;
        }
        double t3 = mono_ms();
        r = client_start_sessions(&c, &accept);
        if (r < 0)
                goto fail;
        double t4 = mono_ms();
        if (accept != OW_ACCEPT_OK) {
                snprintf(c.error, sizeof(c.error), "Start-Sessions refused (%d)", accept);
                r = -EPERM;
                goto fail;
        }

        OwStopSession s = { .sid = req.sid, .next_seqno = 0 };
        OwStopSessions st = { .accept = OW_ACCEPT_OK, .n_sessions = 1, .sessions = &s };
        (void) client_send_stop(&c, &st);
        ret[0] = t4 - t0;
        ret[1] = t1 - t0;
        ret[2] = t3 - t2;
        ret[3] = t4 - t3;
        client_done(&c);
        close(udp);
        return 0;
fail:
        fprintf(stderr, "bench-setup: %s (%s)\n", c.error, strerror(-r));
        client_done(&c);
        if (udp >= 0)
                close(udp);
        return r;
}

int main(int argc, char **argv) {
        if (argc != 5 && argc != 7) {
                fprintf(stderr, "usage: bench-setup NAME SERVER O|A|E RUNS [KEYID SECRET]\n");
                return 2;
        }
        const char *name = argv[1];
        ClientOptions o = {
                .server = argv[2],
                .family = AF_UNSPEC,
                .timeout_msec = 10000,
        };
        switch (argv[3][0]) {
        case 'O':
                o.modes = OW_MODE_OPEN;
                break;
        case 'A':
                o.modes = OW_MODE_AUTHENTICATED;
                break;
        case 'E':
                o.modes = OW_MODE_ENCRYPTED;
                break;
        default:
                fprintf(stderr, "bench-setup: mode must be O, A or E\n");
                return 2;
        }
        if (argc == 7) {
                o.keyid = argv[5];
                o.secret = (const uint8_t *) argv[6];
                o.secret_len = strlen(argv[6]);
        }
        int runs = atoi(argv[4]);
        if (runs < 1 || runs > 100000)
                return 2;

        double *v[4];
        for (int k = 0; k < 4; k++) {
                v[k] = calloc((size_t) runs, sizeof(double));
                if (!v[k])
                        return 1;
        }
        for (int i = 0; i < runs; i++) {
                double t[4];
                if (one_run(&o, t) < 0)
                        return 1;
                for (int k = 0; k < 4; k++)
                        v[k][i] = t[k];
        }
        print_figure(name, "total", v[0], (size_t) runs);
        print_figure(name, "connect_to_server_start", v[1], (size_t) runs);
        print_figure(name, "request_to_accept", v[2], (size_t) runs);
        print_figure(name, "start_to_start_ack", v[3], (size_t) runs);
        return 0;
}
