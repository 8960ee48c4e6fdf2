/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * One local test endpoint: an owamp-session worker (src/worker) started
 * through a Launcher (launcher.h) and spoken to over the worker channel
 * (worker-ipc.h), on an sd-event loop. The same controller serves owampd
 * (each TestSession's worker), owping (its one or two endpoints) and
 * powstream.
 *
 * Its life:
 *
 *   endpoint_new(event, launcher, &callbacks, userdata, &e)
 *   endpoint_launch(e, &params, udp_fd)    SETUP sent; the worker checks its socket
 *      -> ready()                          READY; a sender with start_on_ready got START
 *   endpoint_start(e)                      START for a sender (unless start_on_ready)
 *      -> records() ...                    a receiver's records, encoded, as they come
 *   endpoint_stop(e, &stop)                STOP: Stop-Sessions arrived, or shutting down
 *      -> done(result)                     DONE: Next Seqno, skip ranges, counters
 *      -> done(NULL)                       or the channel closed without a DONE
 *      -> failure(kind, error, reason)     the worker reported an error, or broke the
 *                                          protocol (it is killed then), before done()
 *      -> exited(status)                   the worker process ended (after or before done())
 *   endpoint_free(e)                       releases the worker (launcher.h release)
 *
 * done() comes exactly once, after which no more messages are read.
 * Callbacks may call endpoint_start(), _stop() and _kill(), never
 * endpoint_free(): the owner frees the endpoint outside its callbacks.
 * Nothing here logs: the owner reports what the callbacks tell it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "launcher.h"
#include "net.h"
#include "ow-testpkt.h"
#include "ow-types.h"
#include "worker-ipc.h"

typedef struct Endpoint Endpoint;

typedef enum EndpointFailure {
        ENDPOINT_FAILURE_WORKER,   /* the worker sent ERROR: reason "what: strerror" */
        ENDPOINT_FAILURE_PROTOCOL, /* a message out of place or malformed: the worker is killed */
        ENDPOINT_FAILURE_GARBAGE,  /* the channel's framing broke: it is closed */
} EndpointFailure;

/* Every callback is optional (NULL). */
typedef struct EndpointCallbacks {
        void (*ready)(Endpoint *e, void *userdata);
        /* n encoded records (OW_RECORD_SIZE octets each) of a receiver,
         * valid during the call. */
        void (*records)(Endpoint *e, const uint8_t *records, size_t n, void *userdata);
        /* result: the DONE (valid until endpoint_free(); endpoint_result()),
         * or NULL when the endpoint ended without one. */
        void (*done)(Endpoint *e, const WorkerDone *result, void *userdata);
        /* reason: one line, valid during the call. */
        void (*failure)(Endpoint *e, EndpointFailure kind, int error, const char *reason, void *userdata);
        /* status as launcher.h's WorkerExitHandler; the launcher's Worker
         * is released already. */
        void (*exited)(Endpoint *e, int status, void *userdata);
} EndpointCallbacks;

typedef struct EndpointParams {
        bool sender;
        OwMode mode;
        const OwSessionRequest *req; /* SID, schedule, counts, Timeout, Type-P; borrowed during the call */
        const SockAddr *peer;        /* sender: destination; receiver: the only accepted source */
        const OwTestKeys *keys;      /* the session's test keys; NULL in open mode */
        int64_t clock_offset_nsec;   /* OWAMP_DEBUG_TIMEOFFSET */
        uint64_t enddelay_nsec;      /* sender: after the last packet, before DONE */
        bool start_on_ready;         /* a sender gets START as soon as it is READY */
        WorkerSpec spec;             /* for the launcher (its strings borrowed during the call) */
} EndpointParams;

int endpoint_new(sd_event *event, Launcher *launcher, const EndpointCallbacks *cb, void *userdata,
                 Endpoint **ret);
/* Release the worker (the launcher kills it unless it ends within a few
 * seconds) and free everything. Accepts NULL; returns NULL. */
Endpoint *endpoint_free(Endpoint *e);

/* Start the worker on udp_fd, the bound test socket (the worker gets its
 * own copy: the caller still closes udp_fd). On failure nothing is kept
 * and the same call may be made again (-EBUSY: the launcher is busy).
 * -EALREADY once launched. */
int endpoint_launch(Endpoint *e, const EndpointParams *p, int udp_fd);

/* START for a sender that is ready. -ENOTCONN without a channel. */
int endpoint_start(Endpoint *e);
/* STOP with st. -ENOTCONN when the channel is closed (or never opened):
 * done() came or will come without a result. */
int endpoint_stop(Endpoint *e, const WorkerStop *st);
/* Make the worker end now (its exit still comes). */
void endpoint_kill(Endpoint *e);

bool endpoint_is_ready(const Endpoint *e);   /* READY came */
bool endpoint_is_done(const Endpoint *e);    /* done() came */
bool endpoint_has_worker(const Endpoint *e); /* launched, exit not yet seen */
bool endpoint_has_channel(const Endpoint *e);
/* The DONE, or NULL (not yet, or it ended without one). */
const WorkerDone *endpoint_result(const Endpoint *e);
