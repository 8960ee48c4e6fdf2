/* SPDX-License-Identifier: Apache-2.0 */

/* What every role of the worker shares: reporting to its controller. */

#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include "net.h"
#include "ow-error.h"
#include "session.h"

int session_send_out(Session *s) {
        int r = worker_write_all(CTL_FD, &s->out);
        if (r < 0)
                return log_full(LOG_ERR, r, &s->log, "Writing to the controller failed: %m");
        return 0;
}

int session_fail(Session *s, int error, const char *what) {
        log_full(LOG_ERR, error, &s->log, "%s: %s", what, ow_strerror(error));
        s->out.len = 0;
        (void) worker_error_append(&s->out, error, what);
        (void) worker_write_all(CTL_FD, &s->out);
        return error;
}

void session_addresses(Session *s, char *local, size_t local_size, char *peer, size_t peer_size) {
        SockAddr a = {};
        socklen_t len = sizeof(a);

        snprintf(local, local_size, "?");
        if (getsockname(UDP_FD, &a.sa, &len) >= 0) {
                sockaddr_unmap_v4(&a);
                sockaddr_str(&a, local, local_size);
        }
        sockaddr_str(&s->setup.peer, peer, peer_size);
}

void session_log_ready(Session *s, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_fullv(LOG_INFO, 0, &(LogFields){ .message_id = MSGID_ENDPOINT_READY, .sid = s->log.sid }, fmt,
                  ap);
        va_end(ap);
}

int session_done(Session *s, const WorkerDone *d, const char *fmt, ...) {
        va_list ap;

        int r = worker_done_append(&s->out, d);
        if (r < 0)
                return session_fail(s, r, "Cannot encode DONE");

        va_start(ap, fmt);
        log_fullv(LOG_INFO, 0, &(LogFields){ .message_id = MSGID_ENDPOINT_DONE, .sid = s->log.sid }, fmt,
                  ap);
        va_end(ap);
        return session_send_out(s);
}
