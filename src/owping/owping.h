/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * owping's parts:
 *
 *   options.c  the command line (PingOptions)
 *   run.c      the test: the sessions requested, their local endpoints
 *              (src/shared/endpoint.h), Start-Sessions, the Stop-Sessions
 *              exchange, the event loop
 *   output.c   the results: the "from" records cleaned, the files saved
 *              (src/shared/owp-writer.h), the reports
 *   owping.c   main()
 */

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "client-args.h"
#include "client.h"
#include "endpoint.h"
#include "launcher.h"
#include "macro.h"
#include "net.h"
#include "ow-report.h"
#include "ow-types.h"

#define DEFAULT_PORT_LOW 8760
#define DEFAULT_PORT_HIGH 9960
#define MAX_PADDING 65000

typedef struct PingOptions {
        ClientArgs conn; /* -4 -6 -A -k -S -u -B -m */
        bool to, from;
        const char *save_to, *save_from;
        uint32_t count;
        OwSlot *slots;
        uint32_t n_slots;
        double loss_timeout; /* -L, seconds; <= 0: RTT + 2 s */
        uint32_t padding;
        uint32_t type_p;
        uint16_t port_low, port_high;
        double delay_start; /* -z */
        double enddelay;    /* -E */
        bool have_enddelay;
        OwReportOptions report;
        float *percentiles;
} PingOptions;

typedef struct Ping Ping;

/* One local test endpoint and what it produced. */
typedef struct PingEndpoint {
        Ping *ping;
        bool we_send;
        OwSessionRequest req; /* owns slots */
        SockAddr local, peer;
        int udp_fd;
        Endpoint *endpoint;
        bool failed;
        /* A receiver's records, encoded (OW_RECORD_SIZE each), as they came;
         * cleaned at the end (ping_clean_from()). */
        uint8_t *records;
        size_t n_records, cap_records;
        /* What its result is taken to be once cleaned: the server's
         * Stop-Sessions for a "from" session, else its worker's DONE.
         * Borrowed from Ping.server_stop or the endpoint's result. */
        uint32_t next_seqno;
        const OwSkipRange *skips;
        uint32_t n_skips;
} PingEndpoint;

struct Ping {
        PingOptions *o;
        Client client;
        sd_event *event;
        Launcher *launcher;
        PingEndpoint ep[2];
        size_t n_ep;
        sd_event_source *ctl_src;
        bool our_stop_sent;
        bool server_stop_received;
        OwStopSessions server_stop;
        OwTimestamp server_stop_time;
        bool stopping;
        bool failed;
        const char *testaddr;
        SockAddr test_peer;
};

/* options.c */
extern volatile sig_atomic_t ping_interrupted;
void ping_usage(const char *msg);
/* "owping: " and the line on stderr; returns EXIT_FAILURE for main(). */
int ping_fail(const char *fmt, ...) _printf_(1, 2);
/* 0, or the exit status when the command line ends the program. */
int ping_parse_args(int argc, char **argv, PingOptions *o, int *ret_optind);

/* run.c */
/* The event loop with its signals, and the launcher of the endpoints. */
int ping_loop_setup(Ping *p);
/* Request-Session for each direction (to first, then from, as the
 * reference) with its test socket and its endpoint launched. */
int ping_request_sessions(Ping *p, const char *server, OwTimestamp start, double timeout);
int ping_wait_ready(Ping *p);
/* Start-Sessions, then START for our senders. */
int ping_start_sessions(Ping *p, const char *server);
/* The test, until both Stop-Sessions are through: 0 or a negative errno
 * (p->failed says whether it failed). */
int ping_run(Ping *p, OwTimestamp start, double timeout);
void ping_endpoint_done(PingEndpoint *e);
double ping_packet_rate(const OwSessionRequest *req);

/* output.c */
/* The "from" session's records cleaned as its Stop-Sessions says
 * (RFC 4656 3.8); *ret_invalid when a packet past the server's Next
 * Seqno makes it invalid. */
void ping_clean_from(Ping *p, PingEndpoint *e, bool *ret_invalid);
/* -F and -T. */
int ping_save_received(const char *path, const PingEndpoint *e);
int ping_save_fetched(const char *path, const ClientFetch *f);
/* The reports of both directions; returns the exit status. */
int ping_results(Ping *p);
