/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The I/O around ow_report_session() that owstats, owfetch and owping share:
 * the output options and their messages, stdout, -p files, host names of the
 * session's endpoints and reading .owp files.
 */

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ow-report.h"

/* The reference's output options (owstats, owfetch, owping). */
#define REPORT_SHORT_OPTIONS "a:b:d:Mn:N:pQRv::U"

enum {
        REPORT_ARG_JSON = 0x100,
};

/* Long names of the output options, for getopt_long() tables. */
/* clang-format off */
#define REPORT_LONG_OPTIONS                                             \
        { "percentiles", required_argument, NULL, 'a' },                \
        { "bucket-width", required_argument, NULL, 'b' },               \
        { "directory", required_argument, NULL, 'd' },                  \
        { "machine", no_argument, NULL, 'M' },                          \
        { "units", required_argument, NULL, 'n' },                      \
        { "sub-session", required_argument, NULL, 'N' },                \
        { "print-files", no_argument, NULL, 'p' },                      \
        { "quiet", no_argument, NULL, 'Q' },                            \
        { "raw", no_argument, NULL, 'R' },                              \
        { "verbose", optional_argument, NULL, 'v' },                    \
        { "unix-time", no_argument, NULL, 'U' },                        \
        { "json", no_argument, NULL, REPORT_ARG_JSON }
/* clang-format on */

/*
 * Take one output option from getopt into o; -a's list is allocated into
 * *percentiles (o->percentiles points there; the caller frees it). Returns
 * 1 if it was an output option and valid, 0 if it is not an output option,
 * or -EINVAL with *ret_msg set to the reference's message for a bad value
 * (which the caller prints with its usage text, exiting 1).
 */
int report_args_parse(OwReportOptions *o, float **percentiles, int c, const char *arg, const char **ret_msg);

/* The reference's "[Output Args]" usage block. */
void report_usage_output_args(FILE *f);

/* The output options the reference's usage leaves out, for usage_more(). */
#define REPORT_USAGE_MORE                                                                      \
        "   -d dir         directory of the -p files\n"                                        \
        "   -p             write each summary into a file (in -d) and print the file's name\n" \
        "   --json         one JSON document per session instead of the summary (owstats(1))\n"

/* An OwSink on stdout. */
int report_stdout_write(void *userdata, const char *data, size_t len);
static inline OwSink report_stdout_sink(void) {
        return (OwSink){ .write = report_stdout_write };
}

/*
 * -p: each summary goes into a temporary file in the -d directory, which
 * gets the block's final name with link() (so, like the reference, an
 * existing file of that name fails the block) and is then removed.
 * Messages go to stderr after "<prog>: ".
 */
typedef struct ReportFiles {
        const char *prog;
        const char *dir;
        FILE *f;
        char *tmp;
        bool reported; /* a failure was explained on stderr */
} ReportFiles;

OwReportFiles report_files_hooks(ReportFiles *rf);

/* The endpoints' names as the reference's owstats shows them: getnameinfo()
 * with flags 0 (a name when the resolver has one, else the numeric
 * address). NULL when the address does not convert. */
void report_resolve_names(const OwSessionRequest *req, char *from, char *to, size_t size,
                          const char **ret_from, const char **ret_to);

/* An .owp file mapped (or read, when it cannot be mapped) into memory, and
 * parsed in place. */
typedef struct ReportOwp {
        void *data;
        size_t size;
        bool mapped, parsed;
        OwReportFile rf;
        char from[1025], to[1025]; /* NI_MAXHOST */
} ReportOwp;

/* Load path into memory: -errno. */
int report_owp_load(ReportOwp *o, const char *path);
/* Parse it (ow_report_file_init()'s errors); with resolve, the endpoints'
 * names are looked up and set in the session. */
int report_owp_parse(ReportOwp *o, bool resolve);
void report_owp_close(ReportOwp *o);

/*
 * Everything owstats does for one file: load it (a failure prints
 * "<prog>: fopen(<fopen_name>): <reason>", the reference naming its first
 * file argument there), parse it and print its report (with -p hooks, the
 * file names on stdout) on stdout. Other failures print a reason and the
 * reference's last words on stderr. Returns < 0 on any failure.
 */
int report_owp_print(const char *prog, const char *path, const char *fopen_name, const OwReportOptions *o);
