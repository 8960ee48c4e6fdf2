/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "journal-send.h"
#include "log.h"
#include "ow-error.h"

/* The one piece of process-wide state the programs keep: where logs go. */
static struct {
        const char *ident;
        LogTarget target;
        int facility;
        bool to_stderr;
        int max_priority;
        bool syslog_open;
        bool location;
} log_state = {
        .ident = "owamp",
        .target = LOG_TARGET_NONE,
        .facility = LOG_DAEMON,
        .to_stderr = true,
        .max_priority = LOG_INFO,
};

void log_setup(const char *ident, LogTarget target, int facility, bool to_stderr, int max_priority) {
        log_state.ident = ident;
        log_state.facility = facility;
        log_state.to_stderr = to_stderr;
        log_state.max_priority = max_priority;

        if (target == LOG_TARGET_AUTO)
                target = access("/run/systemd/journal/socket", W_OK) == 0 ? LOG_TARGET_JOURNAL
                                                                          : LOG_TARGET_SYSLOG;
        log_state.target = target;
        if (target == LOG_TARGET_SYSLOG && !log_state.syslog_open) {
                openlog(ident, LOG_PID | LOG_NDELAY, facility);
                log_state.syslog_open = true;
        }
}

void log_set_max_priority(int max_priority) {
        log_state.max_priority = max_priority;
}

void log_set_location(bool b) {
        log_state.location = b;
}

/* "src/owampd/conn.c" out of whatever path the compiler was given. */
static const char *short_file(const char *file) {
        const char *p = strstr(file, "src/");
        return p ? p : file;
}

int log_get_max_priority(void) {
        return log_state.max_priority;
}

void log_set_facility(int facility) {
        log_state.facility = facility;
        if (log_state.syslog_open) {
                closelog();
                openlog(log_state.ident, LOG_PID | LOG_NDELAY, facility);
        }
}

#define MAX_FIELDS 32

static void add_field(struct iovec *iov, size_t *n, char **bufs, const char *fmt, ...) _printf_(4, 5);
static void add_field(struct iovec *iov, size_t *n, char **bufs, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        if (*n >= MAX_FIELDS)
                return;
        va_start(ap, fmt);
        int k = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (k < 0)
                return;
        bufs[*n] = s;
        iov[*n] = (struct iovec) { .iov_base = s, .iov_len = (size_t) k };
        (*n)++;
}

int log_internalv(const char *file, int line, int priority, int errno_value, const LogFields *f,
                  const char *fmt, va_list ap) {
        int saved_errno = errno;
        int ret = errno_value < 0 ? errno_value : -errno_value;

        if (priority > log_state.max_priority)
                goto out;

        char msg[2048];
        size_t off = 0;
        if (log_state.location && file) {
                int k = snprintf(msg, sizeof(msg), "%s:%d: ", short_file(file), line);
                off = k > 0 && (size_t) k < sizeof(msg) ? (size_t) k : 0;
        }
        /* %m in fmt refers to errno_value, as in systemd's logging. */
        errno = ret < 0 ? -ret : saved_errno;
        vsnprintf(msg + off, sizeof(msg) - off, fmt, ap);

        if (log_state.to_stderr) {
                if (f && f->sid)
                        fprintf(stderr, "%s: [%s] %s\n", log_state.ident, f->sid, msg);
                else
                        fprintf(stderr, "%s: %s\n", log_state.ident, msg);
        }

        if (log_state.target == LOG_TARGET_JOURNAL) {
                struct iovec iov[MAX_FIELDS];
                char *bufs[MAX_FIELDS];
                size_t n = 0;

                add_field(iov, &n, bufs, "MESSAGE=%s", msg);
                add_field(iov, &n, bufs, "PRIORITY=%d", priority);
                add_field(iov, &n, bufs, "SYSLOG_FACILITY=%d", log_state.facility >> 3);
                add_field(iov, &n, bufs, "SYSLOG_IDENTIFIER=%s", log_state.ident);
                if (file) {
                        add_field(iov, &n, bufs, "CODE_FILE=%s", short_file(file));
                        add_field(iov, &n, bufs, "CODE_LINE=%d", line);
                }
                if (ret < 0) {
                        add_field(iov, &n, bufs, "ERRNO=%d", -ret);
                        if (ow_is_owerror(ret))
                                add_field(iov, &n, bufs, "OWAMP_ERROR=%s", ow_strerror(ret));
                }
                if (f) {
                        if (f->message_id)
                                add_field(iov, &n, bufs, "MESSAGE_ID=%s", f->message_id);
                        if (f->sid)
                                add_field(iov, &n, bufs, "OWAMP_SID=%s", f->sid);
                        if (f->peer)
                                add_field(iov, &n, bufs, "OWAMP_PEER=%s", f->peer);
                        if (f->mode)
                                add_field(iov, &n, bufs, "OWAMP_MODE=%s", f->mode);
                        if (f->keyid)
                                add_field(iov, &n, bufs, "OWAMP_KEYID=%s", f->keyid);
                        for (const char *const *e = f->extra; e && *e; e++)
                                add_field(iov, &n, bufs, "%s", *e);
                }
                (void) journal_sendv(iov, n);
                for (size_t i = 0; i < n; i++)
                        free(bufs[i]);
        } else if (log_state.target == LOG_TARGET_SYSLOG) {
                if (f && f->sid)
                        syslog(log_state.facility | priority, "[%s] %s", f->sid, msg);
                else
                        syslog(log_state.facility | priority, "%s", msg);
        }
out:
        errno = saved_errno;
        return ret;
}

int log_internal(const char *file, int line, int priority, int errno_value, const LogFields *f,
                 const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_internalv(file, line, priority, errno_value, f, fmt, ap);
        va_end(ap);
        return r;
}

int log_facility_from_name(const char *name) {
        static const struct {
                const char *name;
                int value;
        } table[] = {
                { "auth", LOG_AUTH },     { "authpriv", LOG_AUTHPRIV }, { "cron", LOG_CRON },
                { "daemon", LOG_DAEMON }, { "ftp", LOG_FTP },           { "kern", LOG_KERN },
                { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },     { "local2", LOG_LOCAL2 },
                { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 },     { "local5", LOG_LOCAL5 },
                { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },     { "lpr", LOG_LPR },
                { "mail", LOG_MAIL },     { "news", LOG_NEWS },         { "syslog", LOG_SYSLOG },
                { "user", LOG_USER },     { "uucp", LOG_UUCP },
        };
        if (!name)
                return -1;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcasecmp(table[i].name, name) == 0)
                        return table[i].value;
        return -1;
}
