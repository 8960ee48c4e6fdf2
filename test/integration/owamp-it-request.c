/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owamp-it-request: one Request-Session whose client endpoint is any
 * address, in any mode, for the integration tests of owampd's endpoint
 * policy (issue 11 item 7). owping always puts its own address there;
 * this sends what it is told:
 *
 *   owamp-it-request --server HOST:PORT --source ADDR --mode O|A|E
 *                    [--keyid ID --secret PASSPHRASE]
 *                    --endpoint ADDR --direction to|from
 *
 * "to": the client sends, owampd receives from ADDR (port 9); "from":
 * owampd sends to ADDR port 9. Prints "accept N" (the Accept-Session
 * value) and exits 0 once the answer came, 1 on any other failure. The
 * session is never started: closing the connection abandons it.
 */

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "macro.h"
#include "net.h"
#include "ow-sid.h"
#include "ow-types.h"

#define ENDPOINT_PORT 9
#define REQUEST_PACKETS 10
#define REQUEST_START_DELAY_SEC 5
#define REQUEST_GAP_NSEC (10 * UINT64_C(1000000))
#define REQUEST_TIMEOUT_SEC 1
#define CLIENT_WAIT_MSEC 10000

static int parse_addr(const char *s, SockAddr *ret) {
        SockAddr a = {};
        if (inet_pton(AF_INET, s, &a.in.sin_addr) == 1)
                a.in.sin_family = AF_INET;
        else if (inet_pton(AF_INET6, s, &a.in6.sin6_addr) == 1)
                a.in6.sin6_family = AF_INET6;
        else
                return -EINVAL;
        *ret = a;
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "server", required_argument, NULL, 's' },   { "source", required_argument, NULL, 'S' },
                { "mode", required_argument, NULL, 'm' },     { "keyid", required_argument, NULL, 'u' },
                { "secret", required_argument, NULL, 'k' },   { "endpoint", required_argument, NULL, 'e' },
                { "direction", required_argument, NULL, 'd' }, {},
        };
        const char *server = NULL, *source = NULL, *mode = "O", *keyid = NULL, *secret = NULL,
                   *endpoint = NULL, *direction = "from";
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        server = optarg;
                        break;
                case 'S':
                        source = optarg;
                        break;
                case 'm':
                        mode = optarg;
                        break;
                case 'u':
                        keyid = optarg;
                        break;
                case 'k':
                        secret = optarg;
                        break;
                case 'e':
                        endpoint = optarg;
                        break;
                case 'd':
                        direction = optarg;
                        break;
                default:
                        return EXIT_FAILURE;
                }
        uint32_t m;
        SockAddr ep;
        bool to = streq(direction, "to");
        if (!server || !endpoint || ow_modes_from_string(mode, &m) < 0 || parse_addr(endpoint, &ep) < 0 ||
            (!to && !streq(direction, "from"))) {
                fprintf(stderr, "owamp-it-request: bad arguments (see the top of its source)\n");
                return EXIT_FAILURE;
        }

        ClientOptions o = {
                .server = server,
                .source = source,
                .family = AF_UNSPEC,
                .modes = m,
                .keyid = keyid,
                .secret = (const uint8_t *) secret,
                .secret_len = secret ? strlen(secret) : 0,
                .timeout_msec = CLIENT_WAIT_MSEC,
        };
        Client cl;
        client_init(&cl);
        if (client_connect(&cl, &o) < 0) {
                fprintf(stderr, "owamp-it-request: %s\n", cl.error);
                client_done(&cl);
                return EXIT_FAILURE;
        }

        OwSlot slot = { .type = OW_SLOT_EXPONENTIAL, .param = ow_duration_from_nsec(REQUEST_GAP_NSEC) };
        OwSessionRequest req = {
                .conf_sender = !to,
                .conf_receiver = to,
                .n_packets = REQUEST_PACKETS,
                .start_time = client_now() + OW_TIMESTAMP_FROM_SEC(REQUEST_START_DELAY_SEC),
                .timeout = OW_TIMESTAMP_FROM_SEC(REQUEST_TIMEOUT_SEC),
                .n_slots = 1,
                .slots = &slot,
        };
        uint8_t ipvn, addr[16];
        sockaddr_set_port(&ep, ENDPOINT_PORT);
        sockaddr_to_owamp(&ep, &ipvn, addr);
        req.ipvn = ipvn;
        if (to) {
                /* We send from ADDR; owampd receives on its control address. */
                memcpy(req.sender_addr, addr, sizeof(addr));
                req.sender_port = ENDPOINT_PORT;
                for (size_t i = 0; i < OW_SID_SIZE; i++)
                        req.sid.bytes[i] = (uint8_t) (i + 1);
        } else {
                memcpy(req.receiver_addr, addr, sizeof(addr));
                req.receiver_port = ENDPOINT_PORT;
        }

        OwAccept accept;
        int r = client_request_session(&cl, &req, &accept);
        if (r < 0) {
                fprintf(stderr, "owamp-it-request: %s\n", cl.error);
                client_done(&cl);
                return EXIT_FAILURE;
        }
        printf("accept %u\n", (unsigned) accept);
        client_done(&cl);
        return EXIT_SUCCESS;
}
