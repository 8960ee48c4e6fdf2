/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Session workers as transient systemd units, through owampd-launcher.
 *
 * owampd runs unprivileged and may not start units itself (that needs UID 0
 * or CAP_SYS_ADMIN), so it asks the broker over one SOCK_SEQPACKET
 * connection (launch-proto.h): START hands over the two fds, STOP ends a
 * unit, and the broker reports each unit's end with EXITED. The broker
 * follows the units on the system bus (JobRemoved, PropertiesChanged), so
 * owampd needs no bus connection at all.
 *
 * The broker stops every unit it started for us when this connection
 * closes; and each worker ends by itself when its control channel to
 * owampd closes. Either is enough to leave nothing behind.
 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "launch-proto.h"
#include "launcher.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "ow-error.h"

/* A send must not stall the daemon for long; the broker reads at once. */
#define SEND_TIMEOUT_USEC (2 * UINT64_C(1000000))
/* A reconnect waits in owampd's event loop (for the broker's HELLO), so it
 * is short, and after a failure not tried again for a while: a broker
 * that cannot be reached must not stall every connection once per
 * session. */
#define RECONNECT_TIMEOUT_USEC (2 * UINT64_C(1000000))
#define RECONNECT_BACKOFF_USEC (10 * UINT64_C(1000000))

typedef struct SystemdLauncher SystemdLauncher;

struct Worker {
        SystemdLauncher *launcher;
        LIST_FIELDS(Worker, workers);
        char sid[LAUNCH_SID_LEN + 1];
        WorkerExitHandler cb;
        void *userdata;
        bool exited;
        bool released;
        bool stop_sent;
        bool stop_pending; /* its STOP waits for room in the socket */
};

struct SystemdLauncher {
        Launcher base;
        char *socket_path;
        int fd;
        sd_event_source *io;
        LIST_HEAD(Worker, workers);
        unsigned n_alive;
        unsigned n_stop_pending;
        uint64_t reconnect_after_usec; /* CLOCK_MONOTONIC: no reconnect before this */
};

static void update_events(SystemdLauncher *sl) {
        if (sl->io)
                (void) sd_event_source_set_io_events(sl->io, EPOLLIN | (sl->n_stop_pending > 0 ? EPOLLOUT : 0));
}

static void stop_pending_clear(Worker *w) {
        if (!w->stop_pending)
                return;
        w->stop_pending = false;
        w->launcher->n_stop_pending--;
        update_events(w->launcher);
}

static void worker_free(Worker *w) {
        stop_pending_clear(w);
        LIST_REMOVE(workers, w->launcher->workers, w);
        free(w);
}

static Worker *find_worker(SystemdLauncher *sl, const char *sid) {
        Worker *w;
        LIST_FOREACH(workers, w, sl->workers)
                if (!w->exited && streq(w->sid, sid))
                        return w;
        return NULL;
}

static void worker_exited(Worker *w, int status) {
        if (w->exited)
                return;
        w->exited = true;
        w->launcher->n_alive--;
        stop_pending_clear(w); /* nothing left to stop */
        if (w->released) {
                worker_free(w);
                return;
        }
        /* The handler may release (and so free) w. */
        if (w->cb)
                w->cb(w, status, w->userdata);
}

static void disconnect(SystemdLauncher *sl) {
        Worker *w;

        sl->io = sd_event_source_disable_unref(sl->io);
        sl->fd = safe_close(sl->fd);
        /* Each exit handler may free any record: start over every time. */
        for (;;) {
                LIST_FOREACH(workers, w, sl->workers)
                        if (!w->exited)
                                break;
                if (!w)
                        break;
                worker_exited(w, LAUNCH_STATUS_LOST);
        }
}

static void flush_stops(SystemdLauncher *sl);

static int on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        SystemdLauncher *sl = userdata;

        (void) src;
        if (revents & EPOLLOUT)
                flush_stops(sl);
        for (unsigned i = 0; i < 64; i++) {
                LaunchMsg m;
                int fds[LAUNCH_MAX_FDS];
                int r = launch_recv(fd, &m, fds);
                if (r == -EAGAIN)
                        return 0;
                if (r <= 0) {
                        if (r == 0)
                                log_error("The session launcher closed its connection; sessions in progress are "
                                          "lost");
                        else
                                log_error_errno(r, "Bad message from the session launcher (%s); dropping it",
                                                ow_strerror(r));
                        disconnect(sl);
                        return 0;
                }
                Worker *w = find_worker(sl, m.sid);
                switch (m.type) {
                case LAUNCH_MSG_STARTED:
                        log_full(LOG_DEBUG, 0, &(LogFields) { .sid = m.sid },
                                 "Unit owamp-session-%s.service is running", m.sid);
                        break;
                case LAUNCH_MSG_EXITED:
                        if (w)
                                worker_exited(w, m.status);
                        break;
                default:
                        break;
                }
        }
        return 0;
}

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static int wait_readable(int fd, uint64_t timeout_usec) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint64_t end = mono_usec() + timeout_usec;
        for (;;) {
                uint64_t now = mono_usec();
                int64_t left = now >= end ? 0 : (int64_t) DIV_ROUND_UP(end - now, 1000);
                if (left <= 0)
                        return -ETIMEDOUT;
                int r = poll(&p, 1, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r > 0)
                        return 0;
        }
}

static int do_connect(SystemdLauncher *sl, uint64_t timeout_usec) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        LaunchMsg m;
        int fds[LAUNCH_MAX_FDS];
        int r;

        if (strlen(sl->socket_path) >= sizeof(sa.sun_path))
                return -EINVAL;
        strcpy(sa.sun_path, sl->socket_path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        struct timeval tv = { .tv_sec = SEND_TIMEOUT_USEC / 1000000 };
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

        /* The broker says HELLO once it is on the bus and subscribed. */
        r = wait_readable(fd, timeout_usec);
        if (r < 0)
                return r;
        r = launch_recv(fd, &m, fds);
        if (r == 0)
                return -ECONNRESET; /* refused us: see its log */
        if (r < 0)
                return r == -EAGAIN ? -ETIMEDOUT : -EPROTO;
        if (m.type != LAUNCH_MSG_HELLO)
                return -EPROTO;

        r = sd_event_add_io(sl->base.event, &sl->io, fd, EPOLLIN, on_io, sl);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(sl->io, "session-launcher");
        sl->fd = TAKE_FD(fd);
        return 0;
}

static int systemd_start(Launcher *l, const WorkerSpec *spec, int udp_fd, int ctl_fd, WorkerExitHandler cb,
                         void *userdata, Worker **ret) {
        SystemdLauncher *sl = (SystemdLauncher *) l;
        _cleanup_free_ Worker *w = NULL;
        int r;

        if (!spec->sid_hex || !launch_sid_valid(spec->sid_hex))
                return -EINVAL;
        if (find_worker(sl, spec->sid_hex))
                return -EEXIST;
        if (sl->fd < 0) {
                if (mono_usec() < sl->reconnect_after_usec)
                        return -ENOTCONN; /* said so at the failed try */
                r = do_connect(sl, RECONNECT_TIMEOUT_USEC);
                if (r < 0) {
                        sl->reconnect_after_usec = mono_usec() + RECONNECT_BACKOFF_USEC;
                        return log_error_errno(r, "Cannot reach the session launcher at %s: %m; not trying "
                                               "again for %u s", sl->socket_path,
                                               (unsigned) (RECONNECT_BACKOFF_USEC / 1000000));
                }
                log_info("Reconnected to the session launcher");
        }

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        memcpy(w->sid, spec->sid_hex, LAUNCH_SID_LEN);

        LaunchMsg m = {
                .type = LAUNCH_MSG_START,
                .role = spec->sender ? LAUNCH_ROLE_SENDER : LAUNCH_ROLE_RECEIVER,
                /* Longer sessions are cut at a week (owampd(8)). */
                .runtime_max_usec = MIN(MAX(spec->runtime_max_usec, LAUNCH_RUNTIME_MIN_USEC),
                                        LAUNCH_RUNTIME_MAX_USEC),
                .log_priority = MIN(MAX(spec->log_max_priority, 0), 7),
        };
        memcpy(m.sid, spec->sid_hex, LAUNCH_SID_LEN);
        int fds[] = { udp_fd, ctl_fd };
        /* Never wait for the broker here: owampd's event loop would wait
         * with it (up to SEND_TIMEOUT_USEC for each of a batch of
         * sessions). A full queue is the broker being busy; the caller
         * tries again later. */
        r = launch_send_flags(sl->fd, &m, fds, ELEMENTSOF(fds), MSG_DONTWAIT);
        if (r == -EAGAIN)
                return -EBUSY;
        if (r < 0) {
                log_error_errno(r, "Cannot send a request to the session launcher: %m");
                disconnect(sl);
                return r;
        }

        w->launcher = sl;
        w->cb = cb;
        w->userdata = userdata;
        LIST_PREPEND(workers, sl->workers, w);
        sl->n_alive++;
        *ret = TAKE_PTR(w);
        return 0;
}

/* STOP without waiting: with the broker's queue full (a batch of STARTs
 * it has not read yet), a blocking send would stop owampd's event loop
 * for SEND_TIMEOUT_USEC per session. It goes out once the socket takes
 * it (flush_stops()). */
static int send_stop(Worker *w) {
        SystemdLauncher *sl = w->launcher;
        LaunchMsg m = { .type = LAUNCH_MSG_STOP };

        memcpy(m.sid, w->sid, LAUNCH_SID_LEN);
        int r = launch_send_flags(sl->fd, &m, NULL, 0, MSG_DONTWAIT);
        if (r == -EAGAIN) {
                if (!w->stop_pending) {
                        w->stop_pending = true;
                        sl->n_stop_pending++;
                        update_events(sl);
                }
                return r;
        }
        stop_pending_clear(w);
        if (r < 0)
                return log_error_errno(r, "Cannot ask the session launcher to stop session %s: %m", w->sid);
        w->stop_sent = true;
        return 0;
}

static void flush_stops(SystemdLauncher *sl) {
        Worker *w;

        if (sl->fd < 0)
                return;
        LIST_FOREACH(workers, w, sl->workers)
                if (w->stop_pending && send_stop(w) == -EAGAIN)
                        break;
}

static void systemd_kill(Worker *w) {
        SystemdLauncher *sl = w->launcher;

        if (w->exited || w->stop_sent || w->stop_pending || sl->fd < 0)
                return;
        (void) send_stop(w);
}

static void systemd_release(Worker *w) {
        if (!w)
                return;
        if (w->exited) {
                worker_free(w);
                return;
        }
        /* Still running: stop it, and forget the record once EXITED says
         * the unit is gone. */
        w->released = true;
        systemd_kill(w);
}

static unsigned systemd_count(Launcher *l) {
        return ((SystemdLauncher *) l)->n_alive;
}

static void systemd_free(Launcher *l) {
        SystemdLauncher *sl = (SystemdLauncher *) l;
        Worker *w, *n;

        /* Closing the connection makes the broker stop what is left. */
        sd_event_source_disable_unref(sl->io);
        safe_close(sl->fd);
        LIST_FOREACH_SAFE(workers, w, n, sl->workers)
                worker_free(w);
        free(sl->socket_path);
        free(l->worker_path);
        free(sl);
}

static const LauncherOps systemd_ops = {
        .name = "systemd",
        .start = systemd_start,
        .kill = systemd_kill,
        .release = systemd_release,
        .free = systemd_free,
        .count = systemd_count,
};

int launcher_systemd_new(sd_event *e, const char *socket_path, uint64_t timeout_usec, Launcher **ret) {
        SystemdLauncher *sl = calloc(1, sizeof(*sl));
        int r;

        if (!sl)
                return -ENOMEM;
        sl->base.ops = &systemd_ops;
        sl->base.event = e;
        sl->fd = -1;
        sl->socket_path = strdup(socket_path);
        if (!sl->socket_path) {
                free(sl);
                return -ENOMEM;
        }
        r = do_connect(sl, timeout_usec);
        if (r < 0) {
                free(sl->socket_path);
                free(sl);
                return r;
        }
        *ret = &sl->base;
        return 0;
}
