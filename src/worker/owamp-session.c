/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owamp-session: one endpoint (sender or receiver) of one OWAMP-Test
 * session (RFC 4656 4).
 *
 * It is started by owampd or owping with exactly these file descriptors:
 *   0  the UDP test socket, already bound to the session's address and port
 *   1  a stream socket to its controller (src/shared/worker-ipc.h)
 *   2  where its log lines go
 * and nothing else: no configuration, no files, no privileges. Under
 * systemd it runs as a transient DynamicUser service.
 *
 * Timing is what this program is for:
 *  - senders pace packets on absolute time: clock_nanosleep(TIMER_ABSTIME)
 *    to just before the due time, then a short spin, then the timestamp and
 *    immediately sendto(); everything else (encryption in mode A, padding)
 *    is prepared before the wait (pacing.c, role-sender.c);
 *  - receivers take the kernel's receive timestamp (SO_TIMESTAMPNS) and the
 *    TTL/hop limit from the control messages of recvmmsg() (ring.c,
 *    role-receiver.c).
 *
 * This file is main(): the descriptors, SETUP, READY, START and the role.
 * The files of the rest: session.h.
 */

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "clock.h"
#include "controller.h"
#include "session.h"
#include "units.h"
#include "usage.h"

static const Role *const roles[] = {
        &role_sender,
        &role_receiver,
        &role_reflector,
};

static const Role *role_find(WorkerRole id) {
        for (size_t i = 0; i < ELEMENTSOF(roles); i++)
                if (roles[i]->id == id)
                        return roles[i];
        return NULL;
}

static int check_fds(void) {
        int type = 0;
        socklen_t l = sizeof(type);

        if (getsockopt(UDP_FD, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_DGRAM)
                return -ENOTSOCK;
        l = sizeof(type);
        if (getsockopt(CTL_FD, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_STREAM)
                return -ENOTSOCK;
        return 0;
}

static int run(Session *s) {
        const Role *role;
        int r;

        r = check_fds();
        if (r < 0) {
                log_full(LOG_ERR, r, &s->log, "fd 0 must be a UDP socket and fd 1 a stream socket");
                return r;
        }

        r = controller_read_setup(s);
        if (r < 0)
                return r;
        ow_sid_to_hex(&s->setup.sid, s->sid_hex);
        s->log.sid = s->sid_hex;

        int64_t step_after;
        if (clock_step_from_env(&step_after, &s->clock.debug_step_nsec) < 0)
                return session_fail(s, -EINVAL,
                                    "Invalid OWAMP_DEBUG_CLOCK_STEP (AFTER:STEP in seconds expected)");
        if (step_after > 0) {
                s->clock.debug_step_at = mono_nsec() + step_after;
                log_full(LOG_NOTICE, 0, &s->log,
                         "OWAMP_DEBUG_CLOCK_STEP: the clock will be stepped by %+" PRId64 " ms in %" PRId64
                         " ms (a test)",
                         s->clock.debug_step_nsec / (int64_t) NSEC_PER_MSEC,
                         step_after / (int64_t) NSEC_PER_MSEC);
        }

        role = role_find(s->setup.role);
        assert(role); /* worker_setup_parse() takes only the roles it knows */

        r = session_codecs(s, role);
        if (r < 0)
                return session_fail(s, r, "Bad test keys");

        r = worker_msg_append(&s->out, WORKER_MSG_READY, NULL, 0);
        if (r >= 0)
                r = session_send_out(s);
        if (r < 0)
                return r;

        if (role->start_first) {
                /* Waits for START (or STOP) before anything else. */
                r = controller_wait_start(s);
                if (r != 0)
                        return r < 0 ? r : 0; /* STOP: the session ended before it began */
        }
        return role->run(s);
}

int main(int argc, char **argv) {
        Session s = {};

        const char *prio = getenv("OWAMP_LOG_PRIORITY");
        const char *sid = getenv("OWAMP_SID");
        log_setup("owamp-session", getenv("OWAMP_LOG_STDERR") ? LOG_TARGET_NONE : LOG_TARGET_AUTO,
                  LOG_DAEMON, getenv("OWAMP_LOG_STDERR") != NULL, prio ? atoi(prio) : LOG_INFO);
        if (sid && strlen(sid) == 32)
                s.log.sid = sid;

        if (argc == 2 && streq(argv[1], "--version")) {
                usage_version("owamp-session");
                return EXIT_SUCCESS;
        }
        if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                printf("owamp-session: the test session worker; started by owampd and owping,\n"
                       "not by hand (owampd(8), \"SYSTEMD AND PRIVILEGES\").\n"
                       "   Long forms: --help (-h), --version\n");
                return EXIT_SUCCESS;
        }
        if (argc > 1) {
                log_error("This program is started by owampd and owping, not by hand.");
                return EXIT_FAILURE;
        }

        /* Precise sleeps: no timer slack. A SIGPIPE must not kill us before
         * we can report a lost controller. */
        (void) prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
        (void) prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0, 0, 0);
        signal(SIGPIPE, SIG_IGN);

        int r = run(&s);

        ow_testpkt_codec_free(s.codec);
        ow_testpkt_codec_free(s.reflected_codec);
        free(s.setup.slots);
        worker_buf_done(&s.in);
        worker_buf_done(&s.out);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
