/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owfetch: fetches stored sessions from a server by SID (Fetch-Session,
 * RFC 4656 3.8) into files and prints their reports as owstats would:
 *
 *     owfetch [options] servaddr [SID savefile]+
 *
 * The saved file is what the reference's owfetch (and owping -T) writes,
 * octet for octet: the fetched layout of PROTOCOL.md 11, skip ranges first.
 *
 * Exit status as the reference: 1 for bad arguments or when the control
 * connection cannot be opened, 2 when interrupted, otherwise 0, even when
 * a session could not be fetched or reported (each says so on stderr).
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ow-owp.h"
#include "owp-writer.h"
#include "report-io.h"
#include "client-args.h"
#include "usage.h"

static const char prog[] = "owfetch";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig _unused_) {
        interrupted++;
}

static const struct option longopts[] = {
        CLIENT_ARGS_LONG_OPTIONS,
        REPORT_LONG_OPTIONS,
        { "help", no_argument, NULL, 'h' },
        USAGE_VERSION_OPTION,
        {},
};

static void usage(const char *msg) {
        client_usage_head(stderr, prog, msg, "[arguments] servaddr [SID savefile]+");
        fputc('\n', stderr);
        client_args_usage(stderr);
        fputc('\n', stderr);
        report_usage_output_args(stderr);
        client_usage_version(stderr);
        usage_more(stderr, CLIENT_USAGE_MORE REPORT_USAGE_MORE CLIENT_USAGE_IGNORED
                   "   --version      print the version and exit\n");
        usage_long_options(stderr, longopts);
}

/* The reference decodes the SID without checking it; we insist on 32 hex
 * digits rather than ask for a session nobody has. */
static int parse_sid(const char *s, OwSid *ret) {
        if (strlen(s) != 2 * OW_SID_SIZE)
                return -EINVAL;
        for (size_t i = 0; i < OW_SID_SIZE; i++) {
                unsigned v;
                char pair[3] = { s[2 * i], s[2 * i + 1], 0 };
                char *end;
                if (pair[0] == '+' || pair[0] == '-' || pair[0] == ' ')
                        return -EINVAL;
                v = (unsigned) strtoul(pair, &end, 16);
                if (*end)
                        return -EINVAL;
                ret->bytes[i] = (uint8_t) v;
        }
        return 0;
}

/* The reference's words for a refused fetch. */
static const char denied[] =
        "Server denied request for to session data - is your clock synchronized via NTP properly?";

/* One [SID savefile] pair; true if the file was saved. */
static bool fetch_one(Client *c, const char *sid_text, const char *path) {
        ClientFetch f = {};
        OwSid sid = {};
        int fd, r;

        /* As the reference: the file is created (emptied) before asking,
         * and removed again when nothing comes of it. */
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
                fprintf(stderr, "%s: owp_fetch_sid:fopen(%s): %s\n", prog, path, strerror(errno));
                return false;
        }
        if (parse_sid(sid_text, &sid) < 0) /* main() checked them all */
                goto fail;
        r = client_fetch(c, 0, UINT32_MAX, &sid, &f);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", prog, c->error);
                goto fail;
        }
        if (f.ack.accept != OW_ACCEPT_OK || f.ack.n_records == 0) {
                /* The reference takes a session without records for a
                 * refusal too. */
                fprintf(stderr, "%s: owp_fetch_sid:%s\n", prog, denied);
                /* The reference's line stays for scripts; ours says what
                 * the server did answer. */
                if (f.ack.accept == OW_ACCEPT_FAILURE)
                        fprintf(stderr,
                                "%s: the server refused session %s (Accept 1: %s): it has no such session, "
                                "it is still running, or its data is gone; the server's log says which\n",
                                prog, sid_text, ow_accept_to_string(f.ack.accept));
                else if (f.ack.accept != OW_ACCEPT_OK)
                        fprintf(stderr, "%s: the server refused session %s (Accept %u: %s)\n", prog,
                                sid_text, (unsigned) f.ack.accept, ow_accept_to_string(f.ack.accept));
                else
                        fprintf(stderr, "%s: session %s has no records on the server (none arrived)\n", prog,
                                sid_text);
                goto fail;
        }
        /* A fetched session as owping -T and the reference's owfetch
         * write it: header, skip ranges, records. */
        r = owp_write_fetched(fd, &f.req, &f.ack, f.skips, f.records);
        if (r < 0) {
                fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(-r));
                goto fail;
        }
        if (close(fd) < 0) {
                fd = -1;
                fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
                goto fail;
        }
        client_fetch_done(&f);
        return true;

fail:
        client_fetch_done(&f);
        if (fd >= 0)
                close(fd);
        (void) unlink(path);
        return false;
}

int main(int argc, char **argv) {
        static const char optstring[] = CLIENT_ARGS_SHORT_OPTIONS REPORT_SHORT_OPTIONS "hftT:";
        OwReportOptions report;
        _cleanup_free_ float *percentiles = NULL;
        _cleanup_(client_args_done) ClientArgs conn;
        const char *warnings[OW_REPORT_MAX_WARNINGS];
        const char *msg = NULL;
        bool want_usage;
        Client client;
        int c, r;

        ow_report_options_init(&report);
        client_args_init(&conn);
        while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
                r = report_args_parse(&report, &percentiles, c, optarg, &msg);
                if (r < 0) {
                        usage(msg);
                        return EXIT_FAILURE;
                }
                if (r > 0)
                        continue;
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

        size_t n = ow_report_options_reconcile(&report, warnings);
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, "%s: %s\n", prog, warnings[i]);

        argc -= optind;
        argv += optind;
        if (argc % 2 == 0 || argc < 3) {
                usage(NULL);
                return EXIT_FAILURE;
        }
        /* The reference asks for whatever its hex decoder made of a bad
         * SID and exits 0; a SID that is not one is a bad argument. */
        for (int i = 1; i + 1 < argc; i += 2) {
                OwSid sid;
                if (parse_sid(argv[i], &sid) < 0) {
                        fprintf(stderr, "%s: Invalid SID \"%s\": 32 hexadecimal digits expected\n", prog,
                                argv[i]);
                        return EXIT_FAILURE;
                }
        }

        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGHUP, &sa, NULL);

        r = client_args_setup(&conn, prog, false, &want_usage);
        if (r < 0) {
                if (want_usage)
                        usage(NULL);
                return EXIT_FAILURE;
        }
        if (client_args_connect(&conn, prog, argv[0], false, &client) < 0)
                return EXIT_FAILURE;

        tzset();
        report.localtime = localtime_r;
        for (int i = 1; i + 1 < argc; i += 2) {
                const char *sid = argv[i], *path = argv[i + 1];

                if (!fetch_one(&client, sid, path))
                        fprintf(stderr, "%s: Unable to fetch sid(%s)\n", prog, sid);
                else if (!report.quiet || report.raw)
                        (void) report_owp_print(prog, path, path, &report);
                if (interrupted) {
                        client_done(&client);
                        return 2;
                }
        }
        client_done(&client);
        return EXIT_SUCCESS;
}
