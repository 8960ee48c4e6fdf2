/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * What the clients (owping, owfetch, owup) share: the reference's
 * connection options (-4 -6 -A -k -S -u -B -m), their usage block and
 * opening the control connection the reference's way.
 */

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "client.h"

/* The reference's connection options, plus owping's -B and -m. */
#define CLIENT_ARGS_SHORT_OPTIONS "64A:k:S:u:B:m:"

/* clang-format off */
#define CLIENT_ARGS_LONG_OPTIONS                                         \
        { "ipv4", no_argument, NULL, '4' },                             \
        { "ipv6", no_argument, NULL, '6' },                             \
        { "auth-mode", required_argument, NULL, 'A' },                  \
        { "pass-phrase-file", required_argument, NULL, 'k' },           \
        { "source", required_argument, NULL, 'S' },                     \
        { "user", required_argument, NULL, 'u' },                       \
        { "interface", required_argument, NULL, 'B' },                  \
        { "control-dscp", required_argument, NULL, 'm' }
/* clang-format on */

typedef struct ClientArgs {
        ClientOptions client;
        const char *authmode; /* -A as given */
        const char *keyfile;  /* -k */
        bool v4, v6;
        int control_dscp; /* -m, -1 unset */
        uint8_t *secret;
        size_t secret_len;
} ClientArgs;

void client_args_init(ClientArgs *c);
void client_args_done(ClientArgs *c);

/* 1: a connection option taken, 0: not one, -EINVAL: a bad value (message
 * printed after "<prog>: "). */
int client_args_parse(ClientArgs *c, const char *prog, int opt, const char *arg);

/* The reference's "[Connection Args]" usage block. */
void client_args_usage(FILE *f);

/* For usage_more(): the connection option the reference's usage does not
 * have (-m, from its later versions). */
#define CLIENT_USAGE_MORE "   -m DSCP        RFC 2474 style DSCP value for TOS byte on control connection\n"

/* For usage_more(): owping's -f -t -T, which owfetch and owup take and
 * ignore as the reference's do. */
#define CLIENT_USAGE_IGNORED \
        "   -f, -t, -T file  accepted and ignored (owping's options, as with the reference)\n"

/*
 * After the options: resolve -A/-u/-k as the reference does (no -A: every
 * mode, which without -u is open mode; a -u whose pass-phrase cannot be
 * found is dropped with a message - or, with strict_identity, is an error).
 * Returns 0, or a negative error for a bad -A, -4 with -6 or (strict) a
 * missing pass-phrase (messages printed; the caller prints its usage for
 * -A).
 */
int client_args_setup(ClientArgs *c, const char *prog, bool strict_identity, bool *ret_usage);

/* Connect to server and apply -m. On failure prints the reason - with the
 * reference's "Unable to open control connection to <server>." on a line
 * of its own, or all on one line - and returns < 0. */
int client_args_connect(ClientArgs *c, const char *prog, const char *server, bool one_line, Client *client);

/* "owfetch: " + the usage line + the "-h" line, as the reference starts. */
void client_usage_head(FILE *f, const char *prog, const char *msg, const char *args);
void client_usage_version(FILE *f);
