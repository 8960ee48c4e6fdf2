/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A stream's figures in Prometheus' text exposition format (version
 * 0.0.4), for node_exporter's textfile collector (powstream(1)
 * --prometheus-dir, owamp-streams.conf(5) "PROMETHEUS"). Pure: the caller
 * writes the text where it wants it.
 *
 * Names follow Prometheus' conventions: the owamp_stream_ prefix, base
 * units (seconds) in the name, counters ending in _total. The delays of the
 * last completed (sub-)session are separate gauges rather than one
 * summary with quantile labels: a summary's _sum and _count are
 * cumulative, and these figures belong to one sub-session only.
 */

#include <stdbool.h>
#include <stdint.h>

#include "ow-report.h"

typedef struct OwPromStream {
        /* Labels, any bytes (escaped as the format wants); NULL = "". */
        const char *stream, *peer, *direction;

        /* The last completed (sub-)session: NAN where a figure is missing
         * (no sub-session yet, every packet lost): that metric is left out. */
        double delay_min, delay_median, delay_p99, delay_max, jitter;
        double last_end_unix; /* its end, Unix seconds */

        /* Since the stream started. */
        uint64_t sent, lost, duplicates, reordered;
        uint64_t sessions, failed;
} OwPromStream;

/* Initialise with every gauge missing and every counter 0. */
void ow_prom_stream_init(OwPromStream *s);

/* Append the exposition text to sink: 0 or the sink's error. */
int ow_prom_format(const OwSink *sink, const OwPromStream *s);
