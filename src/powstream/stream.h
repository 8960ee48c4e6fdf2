/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * One continuous stream of OWAMP test sessions to or from one peer, as
 * perfSONAR's powstream runs it: sessions back to back, each set up on a
 * control connection of its own while the one before runs, every -N
 * packets a sub-session summary, each session's data file at its end, and
 * reconnection every -I seconds after a failure.
 *
 * A Stream is self-contained: everything it owns (its control
 * connections, local test endpoints, timers, files) hangs off one sd-event
 * loop and one Launcher it is given, so a process may run many streams on
 * one loop. Its results leave through one callback, result(), with the
 * (sub-)session's statistics computed once (pow-output.h).
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "client.h"
#include "launcher.h"
#include "pow-output.h"

typedef struct Stream Stream;

/* powstream's fixed allowance for setting a session up (seconds): the
 * first session starts this long (plus -z) after the connection is up, as
 * the reference's do. */
#define STREAM_SETUP_ESTIMATE_SEC 10
/* The least lead a later session is requested with (seconds). */
#define STREAM_MIN_LEAD_SEC 2
/* Control connections a stream may hold at once: a session set up ahead,
 * one about to begin, one running, those finishing (-t: fetching). */
#define STREAM_MAX_SLOTS 6

typedef struct StreamConfig {
        const char *name;
        const char *testaddr;        /* the test peer: host[:port], the port ignored */
        const ClientOptions *client; /* the server, -S, -B, -4/-6, modes, key: outlives the stream */
        bool sender;                 /* -t: we send, the peer receives */
        uint32_t count;              /* -c */
        uint32_t sub_packets;        /* -N, 0 = none */
        double interval;             /* -i */
        double loss;                 /* -L */
        double enddelay;             /* -E */
        bool have_enddelay;
        uint32_t padding;       /* -s */
        uint32_t delay_start;   /* -z */
        uint32_t retry;         /* -I */
        uint16_t port_low, port_high;
        const char *dir;        /* -d, NULL = "." */
        float bucket_width;     /* -b */
        bool keep_delays;       /* exact order statistics (--json) */
        unsigned verbose;       /* -v */
} StreamConfig;

typedef struct StreamCallbacks {
        /* A completed (sub-)session: the one way results leave. */
        int (*result)(Stream *s, const PowResult *res, void *userdata);
        /* A session that could not be set up, was refused, or failed. */
        void (*failed)(Stream *s, const char *sid_hex, const char *reason, void *userdata);
        /* stream_stop() is complete: nothing is left running. */
        void (*stopped)(Stream *s, void *userdata);
} StreamCallbacks;

int stream_new(sd_event *event, Launcher *launcher, const StreamConfig *config, const StreamCallbacks *cb,
               void *userdata, Stream **ret);
Stream *stream_free(Stream *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Stream *, stream_free);

int stream_start(Stream *s);

/*
 * End every session now, as the reference does on a signal: each running
 * session is stopped, what it has is written as a short file (.owp
 * "incomplete" and its .sum), the connections close. With restart (SIGHUP)
 * the stream then starts over with new connections; without (SIGTERM,
 * SIGINT) stopped() is called once nothing is left.
 */
void stream_stop(Stream *s, bool restart);

/* Sessions completed and failed since the start. */
uint64_t stream_sessions_completed(const Stream *s);
uint64_t stream_sessions_failed(const Stream *s);
