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
#include "tools-common.h"

void tools_conn_init(ToolsConn *c) {
        *c = (ToolsConn){
                .client = { .family = AF_UNSPEC, .modes = OW_MODES_ALL },
                .control_dscp = -1,
        };
}

void tools_conn_done(ToolsConn *c) {
        if (c->secret) {
                ow_wipe(c->secret, c->secret_len);
                free(c->secret);
        }
        c->secret = NULL;
}

/* A DSCP as a number (0..63, any base) or an RFC 4594 name. */
static int parse_dscp(const char *s, int *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 0);
        if (!errno && end != s && *end == 0 && v <= 63) {
                *ret = (int) v;
                return 0;
        }
        if (!strcasecmp(s, "none") || !strcasecmp(s, "default") || !strcasecmp(s, "df")) {
                *ret = 0;
                return 0;
        }
        if (!strcasecmp(s, "ef")) {
                *ret = 46;
                return 0;
        }
        if (strlen(s) == 3 && !strncasecmp(s, "cs", 2) && s[2] >= '0' && s[2] <= '7') {
                *ret = (s[2] - '0') * 8;
                return 0;
        }
        if (strlen(s) == 4 && !strncasecmp(s, "af", 2) && s[2] >= '1' && s[2] <= '4' && s[3] >= '1' &&
            s[3] <= '3') {
                *ret = (s[2] - '0') * 8 + (s[3] - '0') * 2;
                return 0;
        }
        return -EINVAL;
}

int tools_conn_parse(ToolsConn *c, const char *prog, int opt, const char *arg) {
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
                if (parse_dscp(arg, &c->control_dscp) < 0) {
                        fprintf(stderr, "%s: Invalid DSCP value (-m): \"%s\"\n", prog, arg);
                        return -EINVAL;
                }
                return 1;
        default:
                return 0;
        }
}

void tools_usage_conn_args(FILE *f) {
        fputs("              [Connection Args]\n"
              "\n"
              "   -A authmode    requested modes: [A]uthenticated, [E]ncrypted, [O]pen\n"
              "   -k passphrasefile     passphrasefile to use with Authenticated/Encrypted modes\n"
              "   -S srcaddr     specify the local address or interface for control connection and tests\n"
              "   -B interface   specify the interface to use for control connection and tests\n"
              "   -u username    username to use with Authenticated/Encrypted modes\n"
              "   -m DSCP        RFC 2474 style DSCP value for TOS byte on control connection\n"
              "   -4             connect using IPv4 addresses only\n"
              "   -6             connect using IPv6 addresses only\n",
              f);
}

void tools_usage_head(FILE *f, const char *prog, const char *msg, const char *args) {
        if (msg)
                fprintf(f, "%s: %s\n", prog, msg);
        fprintf(f, "usage: %s %s\n[arguments] are as follows: \n", prog, args);
        fprintf(f, "\n   -h             print this message and exit\n");
}

void tools_usage_version(FILE *f) {
        fprintf(f, "\nVersion: %s\n\n", PACKAGE_VERSION);
}

int tools_conn_setup(ToolsConn *c, const char *prog, bool *ret_usage) {
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
                         * whatever modes that leaves. */
                        if (c->keyfile)
                                fprintf(stderr,
                                        "%s: Unable to find pass-phrase for id=\"%s\" from pffile=\"%s\"\n",
                                        prog, c->client.keyid, c->keyfile);
                        else
                                fprintf(stderr, "%s: Unable to read the pass-phrase for id=\"%s\": %s\n",
                                        prog, c->client.keyid, ow_strerror(r));
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

int tools_connect(ToolsConn *c, const char *prog, const char *server, Client *client) {
        int r;

        c->client.server = server;
        client_init(client);
        r = client_connect(client, &c->client);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", prog, client->error);
                fprintf(stderr, "%s: Unable to open control connection to %s.\n", prog, server);
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
