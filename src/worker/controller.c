/* SPDX-License-Identifier: Apache-2.0 */

#include <errno.h>
#include <poll.h>

#include "controller.h"

#define SETUP_TIMEOUT_MSEC 30000
/* A message's length(4) and type(4) before its payload (worker-ipc.c). */
#define WORKER_MSG_HEADER_SIZE 8

/* One phase: what it waits for and how it reports. */
typedef struct Phase {
        int poll_msec;            /* how long to wait for more: -1 forever, 0 not at all */
        const char *silent_error; /* session_fail() text when the wait times out or fails; NULL: return 0 on
                                     timeout */
        const char *read_error;   /* session_fail() text when a read fails; NULL: no report */
        /* One message: > 0 ends the phase with that value, 0 reads on, < 0 an error. */
        int (*message)(Session *s, uint32_t type, const uint8_t *p, size_t len);
} Phase;

static int setup_message(Session *s, uint32_t type, const uint8_t *p, size_t len) {
        if (type != WORKER_MSG_SETUP)
                return session_fail(s, -EBADMSG, "Expected SETUP");
        int r = worker_setup_parse(p, len, &s->setup);
        if (r < 0)
                return session_fail(s, r, "Bad SETUP message");
        return 1;
}

static int start_message(Session *s, uint32_t type, _unused_ const uint8_t *p, _unused_ size_t len) {
        if (type == WORKER_MSG_START)
                return 1;
        if (type == WORKER_MSG_STOP)
                return 2;
        return session_fail(s, -EBADMSG, "Expected START");
}

static int run_message(Session *s, uint32_t type, const uint8_t *p, size_t len) {
        if (type == WORKER_MSG_STOP) {
                int r = worker_stop_parse(p, len, &s->stop);
                if (r < 0)
                        return session_fail(s, r, "Bad STOP message");
                s->stop_requested = true;
        } else if (type != WORKER_MSG_START)
                return session_fail(s, -EBADMSG, "Unexpected message from controller");
        return 0;
}

static const Phase phase_setup = {
        .poll_msec = SETUP_TIMEOUT_MSEC,
        .silent_error = "No SETUP from controller",
        .message = setup_message,
};

static const Phase phase_start = {
        .poll_msec = -1,
        .message = start_message,
};

static const Phase phase_run = {
        .poll_msec = 0,
        .read_error = "Reading from controller failed",
        .message = run_message,
};

/* The loop: handle every whole message buffered, then wait as the phase
 * says and read more. */
static int controller_read(Session *s, const Phase *ph) {
        for (;;) {
                uint32_t type;
                const uint8_t *p;
                size_t len;
                int r = worker_msg_peek(&s->in, &type, &p, &len);
                if (r < 0)
                        return session_fail(s, r, "Bad message from controller");
                if (r > 0) {
                        r = ph->message(s, type, p, len);
                        if (r < 0)
                                return r;
                        worker_buf_consume(&s->in, WORKER_MSG_HEADER_SIZE + len);
                        if (r > 0)
                                return r;
                        continue;
                }

                struct pollfd pfd = { .fd = CTL_FD, .events = POLLIN };
                r = poll(&pfd, 1, ph->poll_msec);
                if (r < 0 && errno == EINTR) {
                        if (ph->poll_msec == 0)
                                return 0;
                        continue;
                }
                if (r < 0)
                        return ph->silent_error ? session_fail(s, -errno, ph->silent_error) : -errno;
                if (r == 0)
                        return ph->silent_error ? session_fail(s, -ETIMEDOUT, ph->silent_error) : 0;

                r = worker_read_some(CTL_FD, &s->in);
                if (r < 0)
                        return ph->read_error ? session_fail(s, r, ph->read_error) : r;
                if (r == 0)
                        return -EPIPE;
        }
}

int controller_read_setup(Session *s) {
        int r = controller_read(s, &phase_setup);
        return r < 0 ? r : 0;
}

int controller_wait_start(Session *s) {
        int r = controller_read(s, &phase_start);
        return r < 0 ? r : r - 1;
}

int controller_poll(Session *s) {
        return controller_read(s, &phase_run);
}

int controller_sleep(Session *s, int64_t wait_nsec) {
        struct timespec to = nsec_timespec(MAX(wait_nsec, INT64_C(0)));
        struct pollfd pfd = { .fd = CTL_FD, .events = POLLIN };
        int n = ppoll(&pfd, 1, &to, NULL);
        if (n < 0 && errno != EINTR)
                return session_fail(s, -errno, "ppoll() failed");
        if (n > 0)
                return controller_poll(s);
        return 0;
}

int controller_wait(Session *s, int64_t wait_nsec, int (*datagrams)(void *userdata), void *userdata) {
        struct timespec to = nsec_timespec(wait_nsec);
        struct pollfd pfd[2] = {
                { .fd = UDP_FD, .events = POLLIN },
                { .fd = CTL_FD, .events = POLLIN },
        };
        int r, n = ppoll(pfd, ELEMENTSOF(pfd), &to, NULL);
        if (n < 0 && errno != EINTR)
                return session_fail(s, -errno, "ppoll() failed");
        if (n > 0 && (pfd[0].revents & POLLIN)) {
                r = datagrams(userdata);
                if (r < 0)
                        return r;
        }
        if (n > 0 && (pfd[1].revents & (POLLIN | POLLHUP)))
                return controller_poll(s);
        return 0;
}
