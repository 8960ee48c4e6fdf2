/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owping: the OWAMP client (RFC 4656). Requests a session to and/or from a
 * server, runs the local endpoints in session workers, exchanges
 * Stop-Sessions, fetches what the server received and prints the results
 * in the reference's formats. The parts: owping.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "owping.h"
#include "ow-time.h"
#include "units.h"

/* Everything main() may have set up, on every way out of it, so that
 * LeakSanitizer sees a refused or failed run end as cleanly as a good one. */
static void ping_done(Ping *p) {
        for (size_t i = 0; i < p->n_ep; i++)
                ping_endpoint_done(&p->ep[i]);
        ow_stop_sessions_done(&p->server_stop);
        sd_event_source_disable_unref(p->ctl_src);
        launcher_free(p->launcher);
        sd_event_unref(p->event);
        client_done(&p->client);
        free(p->o->slots);
        free(p->o->percentiles);
}

int main(int argc, char **argv) {
        PingOptions o = {};
        _cleanup_(ping_done) Ping ping = { .o = &o, .client = { .fd = -1, .io = { .fd = -1 } } };
        Ping *p = &ping;
        const char *warnings[OW_REPORT_MAX_WARNINGS];
        int first = 0, r;

        r = ping_parse_args(argc, argv, &o, &first);
        if (r != 0)
                return r;
        if (argc - first < 1 || argc - first > 2) {
                ping_usage(NULL);
                return EXIT_FAILURE;
        }
        const char *server = argc - first == 2 ? argv[first + 1] : argv[first];
        /* Reports name the server end as typed, without the port. */
        _cleanup_free_ char *test_node = NULL;
        uint16_t test_port;
        if (net_split_node(argv[first], OWAMP_CONTROL_PORT, &test_node, &test_port) < 0 || !test_node)
                return ping_fail("Invalid address '%s'", argv[first]);
        p->testaddr = test_node;

        size_t nw = ow_report_options_reconcile(&o.report, warnings);
        for (size_t i = 0; i < nw; i++)
                fprintf(stderr, "owping: %s\n", warnings[i]);
        /* first:/last: in local time, as the reference prints them. */
        tzset();
        o.report.localtime = localtime_r;

        log_setup("owping", LOG_TARGET_NONE, LOG_USER, true, LOG_WARNING);
        int64_t offset;
        if (clock_offset_from_env(&offset) < 0)
                return ping_fail("Invalid OWAMP_DEBUG_TIMEOFFSET '%s': seconds expected",
                                 getenv("OWAMP_DEBUG_TIMEOFFSET"));

        /* A missing pass-phrase is a failure of its own here, with its one
         * line, where the reference would go on without the identity. */
        bool want_usage;
        r = client_args_setup(&o.conn, "owping", true, &want_usage);
        if (r < 0) {
                if (want_usage)
                        ping_usage(NULL);
                return EXIT_FAILURE;
        }
        r = client_args_connect(&o.conn, "owping", server, true, &p->client);
        client_args_done(&o.conn);
        if (r < 0)
                return EXIT_FAILURE;

        /* The test peer: the server itself, unless testaddr names another host. */
        p->test_peer = p->client.peer;
        if (argc - first == 2) {
                _cleanup_free_ char *node = NULL;
                _cleanup_free_ SockAddr *addrs = NULL;
                size_t n;
                uint16_t port;
                if (net_split_node(argv[first], 0, &node, &port) < 0 || !node ||
                    net_resolve(node, 0, p->client.peer.sa.sa_family, false, &addrs, &n) < 0)
                        return ping_fail("Unable to resolve test address %s", p->testaddr);
                p->test_peer = addrs[0];
        }

        double rtt = (double) p->client.rtt_usec / USEC_PER_SEC;
        double timeout = o.loss_timeout > 0 ? o.loss_timeout : rtt + 2.0;
        if (timeout < o.report.bucket_width)
                return ping_fail("Invalid test specification: LossThreshold(%f) '-L' < BucketWidth (%f) '-b'",
                                 timeout, o.report.bucket_width);
        unsigned n_rtt = 1 + (o.to ? 1 : 0) + (o.from ? 1 : 0);
        double delay = n_rtt * rtt + 1.0;
        if (o.delay_start > delay)
                delay = o.delay_start;
        OwTimestamp start = client_now() + ow_duration_from_nsec((uint64_t) (delay * NSEC_PER_SEC));

        r = ping_loop_setup(p);
        if (r != 0)
                return r;
        r = ping_request_sessions(p, server, start, timeout);
        if (r != 0)
                return r;
        r = ping_wait_ready(p);
        if (r < 0)
                return ping_fail("Test endpoints failed to start: %s", strerror(-r));
        r = ping_start_sessions(p, server);
        if (r != 0)
                return r;

        if (!o.report.quiet) {
                double duration = 0, rate = ping_packet_rate(&p->ep[0].req);
                if (rate > 0)
                        duration = o.count / rate;
                duration += timeout + rtt;
                double end = (double) ow_duration_to_nsec(start - MIN(start, client_now())) / NSEC_PER_SEC +
                             duration;
                /* --json keeps stdout for the documents. */
                FILE *f = o.report.json ? stderr : stdout;
                fprintf(f, "Approximately %.1f seconds until results available\n", end);
                fflush(f);
        }

        r = ping_run(p, start, timeout);
        if (r != 0)
                return r;
        int status = ping_results(p);
        return ping_interrupted ? 2 : status;
}
