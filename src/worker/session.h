/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * One session endpoint of the worker: what every role shares (the setup
 * from the controller, the channel to it, the counters, the clock and the
 * pacing state), and the role itself, a small table of callbacks so that a
 * new role (a TWAMP/STAMP reflector) plugs in beside the sender and the
 * receiver without copying their loops.
 *
 * The files, by concern:
 *   owamp-session.c    main(): the descriptors, SETUP, READY, START, the role
 *   session.c          what the roles share: reporting to the controller
 *   controller.c       the one read loop of the controller channel (worker-ipc)
 *   pacing.c           the clock, error estimates, wait_until() (sleep, spin, SCHED_FIFO)
 *   ring.c             the receive ring (recvmmsg, kernel timestamps, TTL)
 *   role-sender.c      the sender: schedule, padding, skips, send
 *   role-receiver.c    the receiver: ow_receiver bookkeeping, records to the controller
 *   role-reflector.c   the TWAMP reflector: an answer to each sender packet
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "log.h"
#include "macro.h"
#include "ow-sid.h"
#include "ow-testpkt.h"
#include "pacing.h"
#include "ring.h"
#include "worker-ipc.h"

#define UDP_FD 0
#define CTL_FD 1

typedef struct Session {
        WorkerSetup setup;
        char sid_hex[OW_SID_HEX_SIZE];
        LogFields log;
        OwTestPktCodec *codec;           /* the sender's packets */
        OwTestPktCodec *reflected_codec; /* a reflector's answers (Role.reflects) */
        WorkerBuf in, out;
        WorkerCounters counters;
        bool stop_requested;
        WorkerStop stop;

        SessionClock clock;
        Pacing pacing;
} Session;

/* Our clock's offset from CLOCK_REALTIME: OWAMP_DEBUG_TIMEOFFSET, plus the
 * step of OWAMP_DEBUG_CLOCK_STEP once its time has come (tests only). */
static inline int64_t session_clock_offset(const Session *s) {
        int64_t off = s->setup.clock_offset_nsec;
        if (s->clock.debug_step_at > 0 && mono_nsec() >= s->clock.debug_step_at)
                off += s->clock.debug_step_nsec;
        return off;
}

/* Our clock now, and a kernel timestamp on it. */
static inline OwTimestamp now_owts(const Session *s) {
        return clock_now(session_clock_offset(s));
}

static inline OwTimestamp timespec_to_owts(const Session *s, const struct timespec *ts) {
        return ow_timestamp_from_timespec_shifted(ts, session_clock_offset(s));
}

/* The receive time of a datagram: its kernel timestamp, or now. */
static inline OwTimestamp session_recv_time(const Session *s, const RecvPacket *p) {
        return p->kernel_ts ? timespec_to_owts(s, p->kernel_ts) : now_owts(s);
}

/* A datagram from the session's peer (address and port)? Counted as
 * dropped_source when not. */
static inline bool session_from_peer(Session *s, RecvPacket *p) {
        sockaddr_unmap_v4(p->from);
        if (sockaddr_equal(p->from, &s->setup.peer))
                return true;
        s->counters.dropped_source++;
        return false;
}

/* A role: what runs between READY (and, with start_first, START) and the
 * end of the session. run() reports its own errors to the controller
 * (session_fail()) and sends DONE; it returns 0 or a negative errno. */
typedef struct Role {
        WorkerRole id;
        const char *name;
        bool start_first; /* waits for START before it touches the test socket */
        bool reflects;    /* answers with TWAMP reflected packets (session_codecs()) */
        int (*run)(Session *s);
} Role;

extern const Role role_sender;
extern const Role role_receiver;
extern const Role role_reflector;

/* The reflector's role number, for when the worker channel has it
 * (worker-ipc.h's SETUP parser takes 1 and 2 only today). */
#define WORKER_ROLE_REFLECTOR ((WorkerRole) 3)

/* The role's codecs from the SETUP's test keys, which are wiped. */
int session_codecs(Session *s, const Role *role);
/* TTL 255 and the session's DSCP on the test socket, for a role that sends. */
int session_configure_send(Session *s);

/* Write the pending output to the controller; logs a failure. */
int session_send_out(Session *s);
/* Log error, tell the controller (ERROR), return error. */
int session_fail(Session *s, int error, const char *what);
/* The role's first line (MSGID_ENDPOINT_READY): under systemd it is the
 * first line of the session's own unit in `journalctl OWAMP_SID=`. */
void session_log_ready(Session *s, const char *fmt, ...) _printf_(2, 3);
/* The test socket's local address and the peer's, for that line. */
void session_addresses(Session *s, char *local, size_t local_size, char *peer, size_t peer_size);
/* The end: DONE appended, the role's last line (MSGID_ENDPOINT_DONE)
 * logged, DONE sent. */
int session_done(Session *s, const WorkerDone *d, const char *fmt, ...) _printf_(3, 4);
