/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * How a controller starts a session worker. The worker program gets exactly
 * two file descriptors: 0 = its bound UDP test socket, 1 = the stream socket
 * to its controller (worker-ipc.h); 2 is for its log lines. Nothing else.
 *
 * Two implementations sit behind this interface: launcher-fork.c (a child
 * process; works anywhere) and launcher-systemd.c (a transient DynamicUser
 * service started over D-Bus). The protocol code never knows which.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

typedef struct Launcher Launcher;
typedef struct Worker Worker;

/* status: the exit code (>= 0), or minus the signal that killed it, or
 * -1000 - n for launcher-specific failures (unit failed to start, ...). */
typedef void (*WorkerExitHandler)(Worker *w, int status, void *userdata);

typedef struct WorkerSpec {
        const char *sid_hex;        /* 32 hex digits: names the unit, tags its logs */
        const char *description;
        uint64_t runtime_max_usec;  /* hard limit for the whole worker life */
        int log_max_priority;       /* LOG_INFO, or LOG_DEBUG for -v */
        bool sender;                /* the endpoint sends (names the unit's role) */
} WorkerSpec;

typedef struct LauncherOps {
        const char *name;
        /* -EBUSY: it cannot take another worker now (the systemd
         * launcher's broker has a full queue); nothing was started or
         * kept, and the same call may be made again later. */
        int (*start)(Launcher *l, const WorkerSpec *spec, int udp_fd, int ctl_fd, WorkerExitHandler cb,
                     void *userdata, Worker **ret);
        void (*kill)(Worker *w);       /* make it end now; the exit handler still runs */
        void (*release)(Worker *w);    /* forget it; if still running, it is killed unless it ends within
                                        * a few seconds */
        void (*free)(Launcher *l);
        unsigned (*count)(Launcher *l); /* workers currently alive */
} LauncherOps;

struct Launcher {
        const LauncherOps *ops;
        sd_event *event;
        char *worker_path;
};

int launcher_fork_new(sd_event *e, const char *worker_path, Launcher **ret);

/* Each worker as a transient unit owamp-session-<sid>.service, started by
 * owampd-launcher (launch-proto.h) listening on socket_path. Connects and
 * waits (at most timeout_usec) for the broker's HELLO: an error here means
 * no usable systemd session launching on this host (-ENOENT, -ECONNREFUSED,
 * -EACCES: no broker socket or no access to it; -ETIMEDOUT, -EPROTO: the
 * broker did not answer properly). */
int launcher_systemd_new(sd_event *e, const char *socket_path, uint64_t timeout_usec, Launcher **ret);

static inline int launcher_start(Launcher *l, const WorkerSpec *spec, int udp_fd, int ctl_fd,
                                 WorkerExitHandler cb, void *userdata, Worker **ret) {
        return l->ops->start(l, spec, udp_fd, ctl_fd, cb, userdata, ret);
}

static inline void launcher_free(Launcher *l) {
        if (l)
                l->ops->free(l);
}
