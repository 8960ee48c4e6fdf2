/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * What every program's -h and --version share. The reference's usage text
 * (where a program has one) comes first, unchanged, so that scripts reading
 * it find its lines where they were; usage_more() appends what we take
 * besides, and usage_long_options() every long option of the program's
 * getopt_long() table, so that -h lists every option there is.
 */

#include <getopt.h>
#include <stdio.h>

/* getopt_long() value of --version (clear of the short options, of 0x100
 * = --json and of getopt's own '?'). */
#define USAGE_ARG_VERSION 0x180
#define USAGE_VERSION_OPTION \
        { "version", no_argument, NULL, USAGE_ARG_VERSION }

/* --version: "<prog> <version>" on standard output (meson.build's
 * project version). */
void usage_version(const char *prog);

/* "              [More Args]", an empty line, then text (option lines
 * formatted as the reference's, "   -x value       what"). */
void usage_more(FILE *f, const char *text);

/* "   Long forms: --auth-mode (-A), --ipv4 (-4), ..." wrapped at 100
 * columns, in table order, then an empty line. */
void usage_long_options(FILE *f, const struct option *longopts);
