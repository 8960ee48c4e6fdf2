/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owup: when a server started, from the Start-Time of its Server-Start
 * (RFC 4656 3.1), printed as the reference prints it, on stderr:
 *
 *     Server Up Since: 2026-11-28T05:13:31.725UTC
 *
 * (local time, milliseconds truncated, the zone's abbreviation glued on).
 * Exit status: 0, or 1 for bad arguments or no control connection.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "report-io.h"
#include "client-args.h"
#include "usage.h"

static const char prog[] = "owup";

static const struct option longopts[] = {
        CLIENT_ARGS_LONG_OPTIONS,
        { "help", no_argument, NULL, 'h' },
        USAGE_VERSION_OPTION,
        {},
};

static void usage(const char *msg) {
        client_usage_head(stderr, prog, msg, "[arguments] servaddr");
        fputc('\n', stderr);
        client_args_usage(stderr);
        client_usage_version(stderr);
        usage_more(stderr,
                   CLIENT_USAGE_MORE CLIENT_USAGE_IGNORED "   --version      print the version and exit\n");
        usage_long_options(stderr, longopts);
}

int main(int argc, char **argv) {
        static const char optstring[] = CLIENT_ARGS_SHORT_OPTIONS "hftT:";
        _cleanup_(client_args_done) ClientArgs conn;
        bool want_usage;
        Client client;
        int c, r;

        client_args_init(&conn);
        while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
                r = client_args_parse(&conn, prog, c, optarg);
                if (r < 0)
                        return EXIT_FAILURE;
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
                default:
                        usage("");
                        return EXIT_SUCCESS;
                }
        }
        if (argc - optind != 1) {
                usage(NULL);
                return EXIT_FAILURE;
        }

        r = client_args_setup(&conn, prog, false, &want_usage);
        if (r < 0) {
                if (want_usage)
                        usage(NULL);
                return EXIT_FAILURE;
        }
        if (client_args_connect(&conn, prog, argv[optind], false, &client) < 0)
                return EXIT_FAILURE;
        OwTimestamp t = client.server_start_time;
        client_done(&client);

        /* NTP to a timeval as the reference converts it (microseconds
         * truncated), then local time. */
        time_t sec = (time_t) ((int64_t) (t >> 32) - (int64_t) OW_NTP_UNIX_OFFSET_SEC);
        unsigned long usec = (unsigned long) (((t & 0xffffffffu) * UINT64_C(1000000)) >> 32);
        struct tm tm;
        char buf[256];

        tzset();
        if (!localtime_r(&sec, &tm)) {
                fprintf(stderr, "%s: Unable to convert time_t to struct tm.\n", prog);
                return EXIT_FAILURE;
        }
        if (strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
                fprintf(stderr, "%s: Unable to convert time_t to struct tm.\n", prog);
                return EXIT_FAILURE;
        }
        char zone[64];
        if (strftime(zone, sizeof(zone), "%Z", &tm) == 0)
                zone[0] = 0;
        fprintf(stderr, "Server Up Since: %s.%03lu%s\n", buf, usec / 1000, zone);
        return EXIT_SUCCESS;
}
