/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * owampd's objects:
 *
 *   Server       the process: configuration, listeners, the sd-event loop,
 *                the session launcher, every connection and session
 *                (server.c: new/free, listeners, reload)
 *   Conn         one OWAMP-Control connection and its state machine, with
 *                the fetches it answers (conn.c, fetch-wait.c)
 *   TestSession  one test session requested on a connection: its UDP
 *                socket, its worker, its data file when we receive
 *                (session.c)
 *   Policy       owampd.limits and owampd.pfs, and the decisions made from
 *                them (policy.c, pure)
 *   StoredFile   a session file of the data directory (datastore.c)
 *   Guard        limits against hostile clients (guard.c)
 *
 * Who calls whom (docs/HACKING.md, "owampd"): owampd.c -> server -> conn
 * -> {fetch-wait, session, guard, policy, datastore}; session -> {policy,
 * datastore}; datastore, policy and guard call none of the others. Every
 * part may read the Server's settings and use its context helpers below.
 *
 * One sd-event loop serves everything; nothing blocks except short file
 * writes in the data directory.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <systemd/sd-event.h>

#include "launcher.h"
#include "list.h"
#include "log.h"
#include "net.h"
#include "ow-conf.h"
#include "ow-time.h"
#include "ow-types.h"

/* The reference's files in vardir (-R). */
#define SERVER_PID_FILE "owamp-server.pid"
#define SERVER_INFO_FILE "owamp-server.info"

typedef struct Server Server;
typedef struct Conn Conn;
typedef struct TestSession TestSession;
typedef struct SessionOwner SessionOwner;
typedef struct Policy Policy;
typedef struct StoredFile StoredFile;
typedef struct Guard Guard;

struct Server {
        sd_event *event;
        LIST_HEAD(Conn, conns);
        unsigned n_conns;
        /* Connections that closed, freed from closing_source (conn.c,
         * conn_close()): never inside their own callbacks. */
        LIST_HEAD(Conn, closing);
        sd_event_source *closing_source;
        LIST_HEAD(TestSession, all_sessions);
        unsigned n_sessions_running;
        /* Connections whose sessions wait to be launched, a few per turn
         * of the event loop, one connection after the other (session.c). */
        LIST_HEAD(SessionOwner, starting);
        sd_event_source *start_source; /* a due timer while some wait: the next batch */
        bool launcher_busy;            /* its last start was -EBUSY (said once, at debug level) */

        sd_event_source **listeners;
        size_t n_listeners;

        Launcher *launcher;
        Policy *policy;

        /* Stored session data (datastore.c): every file under
         * <datadir>/hierarchy, by SID. */
        StoredFile *files;
        size_t n_files, n_files_allocated;
        uint64_t files_scanned_usec; /* CLOCK_MONOTONIC of the last datastore_scan(), in microseconds */

        /* Configuration: the command line's settings (re-applied over the
         * files on every reload) and the effective result. */
        OwConf *cli;
        OwConf *conf;

        /* Effective settings (config file, then command line). */
        char *confdir;
        char *datadir;
        char *vardir;
        /* The reference's owamp-server.pid (kept open and locked) and
         * owamp-server.info in vardir, removed again on the way out. */
        char *pid_path, *info_path;
        int pid_fd;
        uint32_t modes;
        uint16_t port_low, port_high;
        uint32_t pbkdf2_count;
        uint64_t control_timeout_usec; /* 0: none */
        uint64_t enddelay_nsec;
        uint32_t max_control_sessions; /* 0: unlimited */
        /* Limits against hostile clients (guard.c, owampd.conf(5)). */
        Guard *guard;
        uint64_t setup_timeout_usec;  /* greeting to the first command; 0: none */
        uint32_t max_conns_per_addr;  /* per IPv4 address or IPv6 /64; 0: unlimited */
        uint32_t max_auth_failures;   /* in auth_fail_window_usec, then a back-off; 0: never */
        uint64_t auth_fail_window_usec;
        uint64_t auth_backoff_usec;   /* the first back-off; doubles with each next one */
        sd_event_source *accept_pause;     /* out of descriptors: the listeners wait (server.c) */
        uint64_t accept_pause_logged_usec; /* its last log line */
        /* The global bound on test sessions (session.c, issue 11). */
        uint32_t max_test_sessions_conf; /* maxtestsessions as configured; 0: auto */
        unsigned max_test_sessions;      /* in force: from the above and RLIMIT_NOFILE */
        unsigned n_sessions;             /* TestSessions held, every connection together */
        uint64_t n_refused_full;         /* refused at the bound since it was last reached */
        bool sessions_full;              /* the bound was reached and said so; not yet left */
        double diskfudge;
        uint32_t diskfudge_permille;
        uint32_t dieby_sec;
        bool verbose;
        bool foreground;

        int64_t clock_offset_nsec; /* OWAMP_DEBUG_TIMEOFFSET */
        uint64_t fetch_wait_usec;  /* a waiting fetch's first interval (OWAMP_DEBUG_FETCH_WAIT) */
        uint64_t start_timeout_usec; /* a batch's start may go this long with no worker ready (OWAMP_DEBUG_START_TIMEOUT) */
        OwTimestamp uptime;        /* Start-Time of Server-Start */
        bool shutting_down;
        sd_event_source *dieby_timer; /* shutting down: waiting for the workers */
        uint64_t dieby_deadline;      /* CLOCK_MONOTONIC usec */
};

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

/* The server's context, for every part of owampd. */
OwTimestamp server_now(const Server *s);
/* CLOCK_MONOTONIC of the event loop's current iteration, in microseconds. */
uint64_t server_monotonic_usec(const Server *s);
void server_update_status(Server *s);
/* A debug setting: environment variable name as seconds from min to max,
 * in microseconds; dflt_usec when unset or empty, -EINVAL (and *ret_usec
 * untouched) when malformed (env_seconds_nsec()). */
int server_env_seconds_usec(const char *name, double min, double max, uint64_t dflt_usec, uint64_t *ret_usec);
/* The live session of sid, on any connection, or NULL. */
TestSession *server_find_session(Server *s, const OwSid *sid);

/* The server itself (owampd.c). */
int server_init(Server *s, sd_event *event);
void server_done(Server *s);
int server_add_listener(Server *s, int fd);
int server_bind_listener(Server *s, const char *node);
/* Copy the settings that can change at run time into s. */
void server_apply_config(Server *s, const OwConf *conf);
/* Make p the policy for everything from now on (logged); sessions keep theirs. */
void server_install_policy(Server *s, Policy *p, bool reload);
/* SIGHUP: all three files again, all or nothing. */
int server_reload(Server *s);
/* Close and free every connection (shutting down). */
void server_close_conns(Server *s);

/* The process (owampd.c's run()). */
/* SIGTERM and SIGINT stop (dieby for the workers), SIGHUP reloads. */
void server_watch_signals(Server *s);
/* The sockets systemd passed (socket activation), if any. */
int server_take_listeners(Server *s, bool *ret_activated);
/* The soft RLIMIT_NOFILE up to the hard one. */
void server_raise_nofile_limit(void);
/* The session launcher: systemd units through owampd-launcher, or children. */
int server_setup_launcher(Server *s, OwSessionLauncher mode);
/* owamp-server.pid (kept open and locked) and owamp-server.info in vardir,
 * as the reference writes them; removed again on the way out. */
int server_write_pid_files(Server *s);
void server_remove_pid_files(Server *s);
