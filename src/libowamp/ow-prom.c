/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ow-prom.h"

void ow_prom_stream_init(OwPromStream *s) {
        *s = (OwPromStream){
                .delay_min = NAN,
                .delay_median = NAN,
                .delay_p99 = NAN,
                .delay_max = NAN,
                .jitter = NAN,
                .last_end_unix = NAN,
        };
}

/* A label value: backslash, double quote and line feed escaped, as the
 * text format requires; every other byte as it is. */
static int label_value(const OwSink *sink, const char *v) {
        const char *p = v ? v : "";
        int r;

        while (*p) {
                size_t n = strcspn(p, "\\\"\n");
                if (n > 0) {
                        r = sink->write(sink->userdata, p, n);
                        if (r < 0)
                                return r;
                        p += n;
                }
                if (!*p)
                        break;
                r = sink->write(sink->userdata, *p == '\n' ? "\\n" : *p == '"' ? "\\\"" : "\\\\", 2);
                if (r < 0)
                        return r;
                p++;
        }
        return 0;
}

static int labels(const OwSink *sink, const OwPromStream *s) {
        int r = ow_sink_printf(sink, "{stream=\"");
        if (r >= 0)
                r = label_value(sink, s->stream);
        if (r >= 0)
                r = ow_sink_printf(sink, "\",peer=\"");
        if (r >= 0)
                r = label_value(sink, s->peer);
        if (r >= 0)
                r = ow_sink_printf(sink, "\",direction=\"");
        if (r >= 0)
                r = label_value(sink, s->direction);
        if (r >= 0)
                r = ow_sink_printf(sink, "\"}");
        return r;
}

static int header(const OwSink *sink, const char *name, const char *type, const char *help) {
        return ow_sink_printf(sink, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The shortest of %.15g and %.17g that reads back as v (Prometheus parses
 * it as a Go float64): 0.0005 stays 0.0005, a Unix time keeps its
 * fraction. The core never sets a locale, so the point is a point. */
#define NUM_MAX 32
static const char *shortest(double v, char buf[static NUM_MAX]) {
        snprintf(buf, NUM_MAX, "%.15g", v);
        if (strtod(buf, NULL) != v)
                snprintf(buf, NUM_MAX, "%.17g", v);
        return buf;
}

static int gauge(const OwSink *sink, const OwPromStream *s, const char *name, const char *help, double v) {
        char num[NUM_MAX];
        int r;

        if (isnan(v))
                return 0;
        r = header(sink, name, "gauge", help);
        if (r >= 0)
                r = ow_sink_printf(sink, "%s", name);
        if (r >= 0)
                r = labels(sink, s);
        if (r >= 0)
                r = ow_sink_printf(sink, " %s\n", shortest(v, num));
        return r;
}

static int counter(const OwSink *sink, const OwPromStream *s, const char *name, const char *help, uint64_t v) {
        int r = header(sink, name, "counter", help);
        if (r >= 0)
                r = ow_sink_printf(sink, "%s", name);
        if (r >= 0)
                r = labels(sink, s);
        if (r >= 0)
                r = ow_sink_printf(sink, " %" PRIu64 "\n", v);
        return r;
}

int ow_prom_format(const OwSink *sink, const OwPromStream *s) {
        const struct {
                const char *name, *help;
                double v;
        } gauges[] = {
                { "owamp_stream_delay_min_seconds", "Smallest one-way delay of the last completed sub-session.",
                  s->delay_min },
                { "owamp_stream_delay_median_seconds", "Median one-way delay of the last completed sub-session.",
                  s->delay_median },
                { "owamp_stream_delay_p99_seconds",
                  "99th percentile of the one-way delay of the last completed sub-session.", s->delay_p99 },
                { "owamp_stream_delay_max_seconds", "Largest one-way delay of the last completed sub-session.",
                  s->delay_max },
                { "owamp_stream_jitter_seconds",
                  "Jitter (95th percentile minus median delay) of the last completed sub-session.", s->jitter },
                { "owamp_stream_last_result_timestamp_seconds",
                  "End of the last completed sub-session's schedule, in Unix seconds.", s->last_end_unix },
        };
        const struct {
                const char *name, *help;
                uint64_t v;
        } counters[] = {
                { "owamp_stream_packets_sent_total", "Test packets sent in completed sessions.", s->sent },
                { "owamp_stream_packets_lost_total", "Test packets lost in completed sessions.", s->lost },
                { "owamp_stream_packets_duplicated_total", "Duplicate test packets received in completed sessions.",
                  s->duplicates },
                { "owamp_stream_packets_reordered_total",
                  "Test packets received out of order in completed sessions.", s->reordered },
                { "owamp_stream_sessions_completed_total", "Test sessions completed.", s->sessions },
                { "owamp_stream_sessions_failed_total", "Test sessions that failed.", s->failed },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(gauges); i++) {
                r = gauge(sink, s, gauges[i].name, gauges[i].help, gauges[i].v);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(counters); i++) {
                r = counter(sink, s, counters[i].name, counters[i].help, counters[i].v);
                if (r < 0)
                        return r;
        }
        return 0;
}
