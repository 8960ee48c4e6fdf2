/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owamp-it-sessions: many Request-Sessions on several connections, for the
 * system tests (test-storm.sh). Opens CONNS open-mode control connections
 * to HOST:PORT, sends PER Request-Sessions on each (owampd receiving: a
 * test from 127.0.0.1 that never sends a packet), then Start-Sessions on
 * every connection that had a session accepted, holds everything for HOLD
 * seconds (so that the session units exist meanwhile) and closes. Prints
 *
 *     connected=N requested=N accepted=N refused_temp=N refused_other=N started=N
 *
 * refused_temp counts Accept 5 (temporary resource limitation, RFC 4656
 * 3.3), what owampd answers beyond maxtestsessions. Every wait is bounded
 * by the client's timeout; traffic goes to HOST only (loopback).
 *
 * Usage: owamp-it-sessions HOST:PORT CONNS PER HOLD_SECONDS
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "net.h"
#include "ow-sid.h"
#include "ow-time.h"
#include "random-util.h"

#define MAX_CONNS 256
#define MAX_PER 1024
#define N_PACKETS 100
#define SLOT_MEAN_NSEC (100 * UINT64_C(1000000)) /* 10 packets a second */
#define TIMEOUT_NSEC (2 * UINT64_C(1000000000))
#define START_DELAY_NSEC (2 * UINT64_C(1000000000))
#define CLIENT_WAIT_MSEC 30000

static int request_one(Client *c, OwAccept *ret) {
        OwSlot slot = { .type = OW_SLOT_EXPONENTIAL, .param = ow_duration_from_nsec(SLOT_MEAN_NSEC) };
        OwSessionRequest req = {
                .conf_sender = false,
                .conf_receiver = true,
                .n_packets = N_PACKETS,
                .start_time = client_now() + ow_duration_from_nsec(START_DELAY_NSEC),
                .timeout = ow_duration_from_nsec(TIMEOUT_NSEC),
                .n_slots = 1,
                .slots = &slot,
        };
        uint8_t ipvn, addr[16];
        uint8_t rnd[OW_SID_RANDOM_SIZE];

        if (sockaddr_to_owamp(&c->local, &ipvn, addr) < 0)
                return -1;
        req.ipvn = ipvn;
        memcpy(req.sender_addr, addr, sizeof(addr));
        memcpy(req.receiver_addr, addr, sizeof(addr));
        req.sender_port = 9; /* never used: no packet is sent */
        /* A SID of the client's making, as owping does; the server
         * receiving replaces it with its own. */
        if (random_bytes(rnd, sizeof(rnd)) < 0 ||
            ow_sid_make_from_sockaddr(&c->local.sa, sockaddr_len(&c->local), client_now(), rnd, &req.sid) < 0)
                return -1;
        return client_request_session(c, &req, ret);
}

int main(int argc, char **argv) {
        static Client clients[MAX_CONNS];
        static bool any_ok[MAX_CONNS];
        unsigned long connected = 0, requested = 0, accepted = 0, refused_temp = 0, refused_other = 0,
                      started = 0;

        if (argc != 5) {
                fprintf(stderr, "usage: %s HOST:PORT CONNS PER HOLD_SECONDS\n", argv[0]);
                return 2;
        }
        int n_conns = atoi(argv[2]), per = atoi(argv[3]), hold = atoi(argv[4]);
        if (n_conns < 1 || n_conns > MAX_CONNS || per < 1 || per > MAX_PER || hold < 0 || hold > 600) {
                fprintf(stderr, "%s: CONNS 1..%d, PER 1..%d, HOLD 0..600\n", argv[0], MAX_CONNS, MAX_PER);
                return 2;
        }
        ClientOptions o = {
                .server = argv[1],
                .family = AF_INET,
                .modes = OW_MODE_OPEN,
                .timeout_msec = CLIENT_WAIT_MSEC,
        };

        for (int i = 0; i < n_conns; i++) {
                client_init(&clients[i]);
                if (client_connect(&clients[i], &o) < 0) {
                        fprintf(stderr, "connection %d: %s\n", i, clients[i].error);
                        continue;
                }
                connected++;
        }
        /* Round-robin, so that every connection holds some when the bound
         * is reached. */
        for (int k = 0; k < per; k++)
                for (int i = 0; i < n_conns; i++) {
                        OwAccept a;
                        if (clients[i].fd < 0)
                                continue;
                        requested++;
                        if (request_one(&clients[i], &a) < 0) {
                                fprintf(stderr, "connection %d: %s\n", i, clients[i].error);
                                client_done(&clients[i]);
                                client_init(&clients[i]);
                                continue;
                        }
                        if (a == OW_ACCEPT_OK) {
                                accepted++;
                                any_ok[i] = true;
                        } else if (a == OW_ACCEPT_TEMP_RESOURCE)
                                refused_temp++;
                        else
                                refused_other++;
                }
        for (int i = 0; i < n_conns; i++) {
                OwAccept a;
                if (clients[i].fd < 0 || !any_ok[i])
                        continue;
                if (client_start_sessions(&clients[i], &a) < 0) {
                        fprintf(stderr, "connection %d: %s\n", i, clients[i].error);
                        continue;
                }
                if (a == OW_ACCEPT_OK)
                        started++;
        }
        printf("connected=%lu requested=%lu accepted=%lu refused_temp=%lu refused_other=%lu started=%lu\n",
               connected, requested, accepted, refused_temp, refused_other, started);
        fflush(stdout);
        sleep((unsigned) hold);
        for (int i = 0; i < n_conns; i++)
                client_done(&clients[i]);
        return 0;
}
