/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owstats: reports on saved .owp session files, byte for byte as the
 * reference's owstats prints them (docs/notes/reference-owstats.md), plus
 * --json.
 *
 * The reference's quirks are kept on purpose: -h and unknown options print
 * the usage on stderr and exit 0; no file prints nothing; the first failing
 * file ends the run with status 1, and an unreadable file is reported under
 * the name of the first file argument. No setlocale(): the formats need the
 * C locale's '.'.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "report-io.h"
#include "client-args.h"
#include "usage.h"

static const char prog[] = "owstats";

static const struct option longopts[] = {
        REPORT_LONG_OPTIONS,
        { "help", no_argument, NULL, 'h' },
        USAGE_VERSION_OPTION,
        {},
};

static void usage(const char *msg) {
        client_usage_head(stderr, prog, msg, "[arguments] sessionfile [sessionfile]*");
        fputc('\n', stderr);
        report_usage_output_args(stderr);
        client_usage_version(stderr);
        usage_more(
                stderr, REPORT_USAGE_MORE
                "   -f, -t, -T file  accepted and ignored (owping's options, as the reference's owstats)\n"
                "   --version      print the version and exit\n");
        usage_long_options(stderr, longopts);
}

int main(int argc, char **argv) {
        /* The reference's getopt string for owstats also holds owping's
         * -f, -t and -T file, which do nothing here. */
        static const char optstring[] = REPORT_SHORT_OPTIONS "hftT:";
        OwReportOptions report;
        _cleanup_free_ float *percentiles = NULL;
        const char *warnings[OW_REPORT_MAX_WARNINGS];
        const char *msg = NULL;
        int c, r;

        ow_report_options_init(&report);
        while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
                r = report_args_parse(&report, &percentiles, c, optarg, &msg);
                if (r < 0) {
                        usage(msg);
                        return EXIT_FAILURE;
                }
                if (r > 0)
                        continue;
                switch (c) {
                case 'f':
                case 't':
                case 'T':
                        break;
                case USAGE_ARG_VERSION:
                        usage_version(prog);
                        return EXIT_SUCCESS;
                default: /* -h, and whatever getopt did not know */
                        usage("");
                        return EXIT_SUCCESS;
                }
        }

        size_t n = ow_report_options_reconcile(&report, warnings);
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, "%s: %s\n", prog, warnings[i]);

        tzset();
        report.localtime = localtime_r;

        for (int i = optind; i < argc; i++) {
                r = report_owp_print(prog, argv[i], argv[optind], &report);
                if (r < 0)
                        return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
