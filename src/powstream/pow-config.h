/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * powstream --config FILE: a stream described by a file
 * (owamp-streams.conf(5)), as owamp-stream@.service runs it. The file's
 * "key = value" lines become powstream's own options, put before those of
 * the command line (which therefore win), and its peer becomes the
 * operands; pow_options_parse() then reads the whole as one command line.
 * A bad file is refused here, with its name and line, before anything
 * runs: exit status POW_EXIT_CONFIG.
 */

/* LSB's "program is not configured" (systemd.exec(5) EXIT_NOTCONFIGURED):
 * the unit's RestartPreventExitStatus= keeps a broken file from being
 * restarted in a loop. */
#define POW_EXIT_CONFIG 6

typedef struct PowConfigArgv {
        int argc;
        char **argv; /* NULL-terminated; every string owned */
} PowConfigArgv;

void pow_config_argv_done(PowConfigArgv *a);

/* If argv has --config FILE (or --config=FILE) among its options: read
 * FILE and make the combined command line in *ret, returning 1. 0 (and
 * *ret untouched) without --config. < 0: an error, printed on stderr as
 * one line. */
int pow_config_apply(int argc, char **argv, PowConfigArgv *ret);
