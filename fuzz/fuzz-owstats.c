/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owstats on arbitrary bytes: parse them as an .owp session file and run
 * every kind of report over it (summary, -M -U, -v with -N sub-sessions,
 * -R, percentiles with other units and bucket widths). Failures are fine;
 * crashes, leaks and undefined behaviour are not.
 *
 * A report costs about as much as the parse (printf of every record), so
 * under libFuzzer (OW_FUZZ_LIBFUZZER) each input gets one kind, picked by
 * its length: six times the inputs per second, every kind still reached.
 * The corpus replay runs every kind over every input.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ow-owp.h"
#include "ow-report.h"

/* Bounds the schedule walk (which, as in the reference, runs to the end of
 * the session) so that one input cannot take minutes. */
#define MAX_PACKETS 4096u
#define N_VARIANTS 6u

static int discard(void *userdata, const char *data, size_t len) {
        (void) userdata;
        (void) data;
        (void) len;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const float pct[] = { 0.0f, 50.0f, 99.9f, 100.0f };
        OwSink sink = { discard, NULL };
        OwReportFile rf;

        if (ow_report_file_init(&rf, data, size) < 0)
                return 0;
        if (rf.file.request.n_packets > MAX_PACKETS)
                rf.file.request.n_packets = MAX_PACKETS;

        /* --json escapes host names: give it some of the input's bytes as
         * one. */
        char host[33] = {};
        memcpy(host, data, MIN(size, sizeof(host) - 1));
        rf.session.from_host = host;

#ifdef OW_FUZZ_LIBFUZZER
        unsigned first = size % N_VARIANTS, end = first + 1;
#else
        unsigned first = 0, end = N_VARIANTS;
#endif
        for (unsigned variant = first; variant < end; variant++) {
                OwReportOptions o;

                ow_report_options_init(&o);
                switch (variant) {
                case 1:
                        o.machine = o.unix_time = true;
                        break;
                case 2:
                        o.records = true;
                        o.records_limit = 5;
                        o.sub_packets = 7;
                        o.units = 'n';
                        break;
                case 3:
                        o.raw = true;
                        break;
                case 4:
                        o.percentiles = pct;
                        o.n_percentiles = 4;
                        o.units = 's';
                        o.bucket_width = 1e-9;
                        o.records = true;
                        o.unix_time = true;
                        break;
                case 5:
                        o.json = true;
                        o.records = true;
                        o.sub_packets = 3;
                        o.percentiles = pct;
                        o.n_percentiles = 4;
                        break;
                }
                (void) ow_report_session(&rf.session, &o, &sink, NULL);
        }

        ow_report_file_done(&rf);
        return 0;
}
