/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The protocol between owampd (unprivileged) and owampd-launcher (the small
 * privileged broker that starts session units for it; see owampd(8),
 * "SYSTEMD AND PRIVILEGES").
 *
 * One SOCK_SEQPACKET connection per owampd process, socket-activated with
 * Accept=yes: the broker instance lives exactly as long as the connection,
 * and stops every unit it started for it when the connection ends.
 *
 * Every message is one fixed-size datagram (LAUNCH_MSG_SIZE octets, host
 * byte order: both ends are on the same machine):
 *
 *   u32 type       LaunchMsgType
 *   u32 role       START: LAUNCH_ROLE_*; 0 otherwise
 *   32  sid        32 lower-case hex digits (no NUL); all zero in HELLO
 *   u64 runtime    START: RuntimeMaxSec= of the unit, in µs; 0 otherwise
 *   i32 priority   START: the worker's maximum log priority (0..7); 0 otherwise
 *   i32 status     EXITED: as WorkerExitHandler (launcher.h); 0 otherwise
 *
 * START carries exactly two file descriptors (SCM_RIGHTS): the bound UDP
 * test socket and the worker's end of its control channel. Nothing else in
 * a request reaches the unit: the unit name, program, user and sandbox are
 * fixed by the broker. The decoder refuses anything else, field by field,
 * since the broker must assume owampd may be compromised.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LAUNCHER_SOCKET_PATH "/run/owamp/launcher.socket"

#define LAUNCH_MSG_SIZE 56
#define LAUNCH_SID_LEN 32
#define LAUNCH_MAX_FDS 2

/* RuntimeMaxSec= bounds: at least a second, at most a week. owampd clamps
 * longer sessions to the maximum (owampd(8)). */
#define LAUNCH_RUNTIME_MIN_USEC (UINT64_C(1) * 1000000)
#define LAUNCH_RUNTIME_MAX_USEC (UINT64_C(7) * 24 * 3600 * 1000000)

/* status values of EXITED beyond exit codes and signals (launcher.h) */
#define LAUNCH_STATUS_NOT_STARTED (-1001) /* the unit could not be started */
#define LAUNCH_STATUS_LOST (-1002)        /* the broker went away */

typedef enum LaunchMsgType {
        LAUNCH_MSG_HELLO = 1,   /* broker -> owampd: connected to systemd, ready */
        LAUNCH_MSG_START = 2,   /* owampd -> broker: start a unit (two fds) */
        LAUNCH_MSG_STOP = 3,    /* owampd -> broker: stop that unit */
        LAUNCH_MSG_STARTED = 4, /* broker -> owampd: the unit's program runs */
        LAUNCH_MSG_EXITED = 5,  /* broker -> owampd: the unit is gone (or never started) */
        _LAUNCH_MSG_MAX,
} LaunchMsgType;

typedef enum LaunchRole {
        LAUNCH_ROLE_RECEIVER = 1,
        LAUNCH_ROLE_SENDER = 2,
} LaunchRole;

typedef struct LaunchMsg {
        LaunchMsgType type;
        LaunchRole role;
        char sid[LAUNCH_SID_LEN + 1]; /* NUL-terminated here */
        uint64_t runtime_max_usec;
        int32_t log_priority;
        int32_t status;
} LaunchMsg;

/* Encode m into buf. -EINVAL if m would not decode (same rules). */
int launch_msg_encode(const LaunchMsg *m, uint8_t buf[static LAUNCH_MSG_SIZE]);

/* Decode and validate one datagram. Errors (negative OW_ERR_*):
 * TRUNCATED / TOO_LONG (size), COMMAND (type), HEX (SID), RANGE (runtime,
 * priority, role), PADDING (a field the type does not use is not zero). */
int launch_msg_decode(const void *buf, size_t len, LaunchMsg *ret);

/* How many fds a message of this type must carry. */
size_t launch_msg_n_fds(LaunchMsgType type);

/* "owamp-session-<sid>.service": the only units the broker starts or stops. */
#define LAUNCH_UNIT_NAME_MAX (sizeof("owamp-session-.service") + LAUNCH_SID_LEN)
int launch_unit_name(const char *sid, char buf[static LAUNCH_UNIT_NAME_MAX]);

/* 32 lower-case hex digits and nothing else. */
bool launch_sid_valid(const char *sid);

/* Send one message with its fds (n_fds must match the type). Blocking
 * sockets block; non-blocking ones return -EAGAIN. */
int launch_send(int fd, const LaunchMsg *m, const int *fds, size_t n_fds);
/* The same with sendmsg() flags: MSG_DONTWAIT gives -EAGAIN instead of
 * waiting (up to the socket's SO_SNDTIMEO) while the peer's queue is full. */
int launch_send_flags(int fd, const LaunchMsg *m, const int *fds, size_t n_fds, int flags);

/* Receive one message. Returns 1 and the message, 0 at end of stream, or a
 * negative error (-EAGAIN when nothing is there: it never blocks). fds receives exactly
 * launch_msg_n_fds(type) descriptors (close them). A bad message is
 * consumed and its fds closed: the decoder's error, -OW_ERR_TOO_LONG for an
 * oversized datagram, -EBADMSG for the wrong number of fds. */
int launch_recv(int fd, LaunchMsg *ret, int fds[static LAUNCH_MAX_FDS]);
