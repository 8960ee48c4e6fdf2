/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * What owfetch and owup share: the reference's connection options
 * (-4 -6 -A -k -S -u, and -B -m as our owping has them), their usage block
 * and opening the control connection the reference's way.
 */

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "client.h"

/* The reference's connection options, plus owping's -B and -m. */
#define TOOLS_CONN_SHORT_OPTIONS "64A:k:S:u:B:m:"

/* clang-format off */
#define TOOLS_CONN_LONG_OPTIONS                                         \
        { "ipv4", no_argument, NULL, '4' },                             \
        { "ipv6", no_argument, NULL, '6' },                             \
        { "auth-mode", required_argument, NULL, 'A' },                  \
        { "pass-phrase-file", required_argument, NULL, 'k' },           \
        { "source", required_argument, NULL, 'S' },                     \
        { "user", required_argument, NULL, 'u' },                       \
        { "interface", required_argument, NULL, 'B' },                  \
        { "control-dscp", required_argument, NULL, 'm' }
/* clang-format on */

typedef struct ToolsConn {
        ClientOptions client;
        const char *authmode; /* -A as given */
        const char *keyfile;  /* -k */
        bool v4, v6;
        int control_dscp; /* -m, -1 unset */
        uint8_t *secret;
        size_t secret_len;
} ToolsConn;

void tools_conn_init(ToolsConn *c);
void tools_conn_done(ToolsConn *c);

/* 1: a connection option taken, 0: not one, -EINVAL: a bad value (message
 * printed after "<prog>: "). */
int tools_conn_parse(ToolsConn *c, const char *prog, int opt, const char *arg);

/* The reference's "[Connection Args]" usage block. */
void tools_usage_conn_args(FILE *f);

/*
 * After the options: resolve -A/-u/-k as the reference does (no -A: every
 * mode, which without -u is open mode; a -u whose pass-phrase cannot be
 * found is dropped with a message). Returns 0, or -EINVAL for a bad -A or
 * -4 with -6 (messages printed; the caller prints its usage for -A).
 */
int tools_conn_setup(ToolsConn *c, const char *prog, bool *ret_usage);

/* Connect to server; on failure prints the reason and the reference's
 * "Unable to open control connection to <server>." and returns < 0. */
int tools_connect(ToolsConn *c, const char *prog, const char *server, Client *client);

/* "owfetch: " + the usage line + the "-h" line, as the reference starts. */
void tools_usage_head(FILE *f, const char *prog, const char *msg, const char *args);
void tools_usage_version(FILE *f);
