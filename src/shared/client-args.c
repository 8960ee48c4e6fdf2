/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "config.h"
#include "ow-crypto.h"
#include "ow-error.h"
#include "passphrase.h"
#include "client-args.h"

void client_args_init(ClientArgs *c) {
        *c = (ClientArgs){
                .client = { .family = AF_UNSPEC, .modes = OW_MODES_ALL },
                .control_dscp = -1,
        };
}

void client_args_done(ClientArgs *c) {
        if (c->secret) {
                ow_wipe(c->secret, c->secret_len);
                free(c->secret);
        }
        c->secret = NULL;
}

int client_args_parse(ClientArgs *c, const char *prog, int opt, const char *arg) {
        uint8_t dscp;

        switch (opt) {
        case '4':
                c->v4 = true;
                return 1;
        case '6':
                c->v6 = true;
                return 1;
        case 'A':
                c->authmode = arg;
                return 1;
        case 'k':
                c->keyfile = arg;
                return 1;
        case 'S':
                c->client.source = arg;
                return 1;
        case 'u':
                c->client.keyid = arg;
                return 1;
        case 'B':
                if (c->client.interface) {
                        fprintf(stderr, "%s: -B can only be used once\n", prog);
                        return -EINVAL;
                }
                if (strlen(arg) >= IFNAMSIZ) {
                        fprintf(stderr, "%s: Invalid interface name '%s'\n", prog, arg);
                        return -EINVAL;
                }
                c->client.interface = arg;
                return 1;
        case 'm':
                if (ow_dscp_from_string(arg, &dscp) < 0) {
                        fprintf(stderr, "%s: Invalid DSCP value (-m): \"%s\"\n", prog, arg);
                        return -EINVAL;
                }
                c->control_dscp = dscp;
                return 1;
        default:
                return 0;
        }
}

void client_args_usage(FILE *f) {
        fputs("              [Connection Args]\n"
              "\n"
              "   -A authmode    requested modes: [A]uthenticated, [E]ncrypted, [O]pen\n"
              "   -k passphrasefile     passphrasefile to use with Authenticated/Encrypted modes\n"
              "   -S srcaddr     specify the local address or interface for control connection and tests\n"
              "   -B interface   specify the interface to use for control connection and tests\n"
              "   -u username    username to use with Authenticated/Encrypted modes\n"
              "   -4             connect using IPv4 addresses only\n"
              "   -6             connect using IPv6 addresses only\n",
              f);
}

void client_usage_head(FILE *f, const char *prog, const char *msg, const char *args) {
        if (msg)
                fprintf(f, "%s: %s\n", prog, msg);
        fprintf(f, "usage: %s %s\n[arguments] are as follows: \n", prog, args);
        fprintf(f, "\n   -h             print this message and exit\n");
}

void client_usage_version(FILE *f) {
        fprintf(f, "\nVersion: %s\n\n", PACKAGE_VERSION);
}

int client_args_setup(ClientArgs *c, const char *prog, bool strict_identity, bool *ret_usage) {
        int r;

        *ret_usage = false;
        if (c->v4 && c->v6) {
                fprintf(stderr, "%s: -4 and -6 flags cannot be set together\n", prog);
                return -EINVAL;
        }
        c->client.family = c->v4 ? AF_INET : c->v6 ? AF_INET6 : AF_UNSPEC;

        if (c->client.keyid) {
                r = passphrase_load(prog, c->keyfile, c->client.keyid, &c->secret, &c->secret_len);
                if (r < 0) {
                        /* The reference goes on without the identity, in
                         * whatever modes that leaves; owping stops here
                         * with this one line. */
                        if (c->keyfile)
                                fprintf(stderr,
                                        "%s: Unable to find pass-phrase for id=\"%s\" from pffile=\"%s\"\n",
                                        prog, c->client.keyid, c->keyfile);
                        else if (r == -ENOTTY)
                                fprintf(stderr,
                                        "%s: Unable to read the pass-phrase for id=\"%s\": there is no "
                                        "terminal "
                                        "to ask on and nothing came on standard input; give a pass-phrase "
                                        "file "
                                        "with -k FILE (owampd.pfs(5) format), run %s on a terminal, or pipe "
                                        "the "
                                        "pass-phrase in\n",
                                        prog, c->client.keyid, prog);
                        else
                                fprintf(stderr, "%s: Unable to read the pass-phrase for id=\"%s\": %s\n",
                                        prog, c->client.keyid,
                                        r == -EINVAL  ? "it is empty"
                                        : r == -E2BIG ? "it is longer than 1024 octets"
                                                      : ow_strerror(r));
                        if (strict_identity)
                                return r;
                        c->client.keyid = NULL;
                } else {
                        c->client.secret = c->secret;
                        c->client.secret_len = c->secret_len;
                }
        }

        if (c->authmode) {
                c->client.modes = 0;
                for (const char *s = c->authmode; *s; s++) {
                        uint32_t m;
                        char one[2] = { *s, 0 };
                        if (ow_modes_from_string(one, &m) < 0) {
                                fprintf(stderr, "%s: Invalid -authmode %c\n", prog, *s);
                                *ret_usage = true;
                                return -EINVAL;
                        }
                        c->client.modes |= m;
                }
        } else
                c->client.modes = OW_MODES_ALL;
        return 0;
}

int client_args_connect(ClientArgs *c, const char *prog, const char *server, bool one_line, Client *client) {
        int r;

        c->client.server = server;
        client_init(client);
        r = client_connect(client, &c->client);
        if (r < 0) {
                if (one_line)
                        fprintf(stderr, "%s: Unable to open control connection to %s: %s\n", prog, server,
                                client->error);
                else {
                        fprintf(stderr, "%s: %s\n", prog, client->error);
                        fprintf(stderr, "%s: Unable to open control connection to %s.\n", prog, server);
                }
                client_done(client);
                return r;
        }
        if (c->control_dscp >= 0) {
                int tos = c->control_dscp << 2;
                bool v6 = client->local.sa.sa_family == AF_INET6;
                (void) setsockopt(client->fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TCLASS : IP_TOS,
                                  &tos, sizeof(tos));
        }
        return 0;
}
