/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * owampd's objects:
 *
 *   Server       the process: configuration, listeners, the sd-event loop,
 *                the session launcher, every connection and session
 *   Conn         one OWAMP-Control connection and its state machine
 *   TestSession  one test session requested on a connection: its UDP
 *                socket, its worker, its data file when we receive
 *
 * One sd-event loop serves everything; nothing blocks except short file
 * writes in the data directory.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "ctrl-io.h"
#include "endpoint.h"
#include "launcher.h"
#include "list.h"
#include "log.h"
#include "random-util.h"
#include "net.h"
#include "ow-conf.h"
#include "ow-control.h"
#include "ow-crypto.h"
#include "ow-owp.h"
#include "ow-receiver.h"
#include "ow-sid.h"
#include "ow-testpkt.h"
#include "ow-time.h"
#include "ow-types.h"
#include "owp-writer.h"
#include "worker-ipc.h"

typedef struct Server Server;
typedef struct Conn Conn;
typedef struct TestSession TestSession;
typedef struct Policy Policy;
typedef struct StoredFile StoredFile;
typedef struct FetchStream FetchStream;
typedef struct FetchWait FetchWait;
typedef struct Guard Guard;

typedef enum ConnState {
        CONN_SETUP,      /* greeting sent, waiting for Set-Up-Response */
        CONN_IDLE,       /* waiting for a command */
        CONN_STARTING,   /* Start-Sessions received, workers starting */
        CONN_TESTING,    /* sessions running */
        CONN_STOPPING,   /* Stop-Sessions received first; waiting for our workers */
        CONN_STOP_SENT,  /* our Stop-Sessions sent; waiting for the peer's */
        CONN_CLOSING,    /* flushing the last message, then close */
} ConnState;

typedef enum SessionState {
        SESSION_REQUESTED, /* accepted, socket bound, not started */
        SESSION_QUEUED,    /* Start-Sessions came: waiting its turn to be launched (session.c) */
        SESSION_STARTING,  /* worker launched, no READY yet */
        SESSION_RUNNING,   /* READY received */
        SESSION_DONE,      /* DONE received (or the worker failed) */
        SESSION_FINISHED,  /* data finalized */
} SessionState;

struct TestSession {
        Server *server;
        Conn *conn;
        LIST_FIELDS(TestSession, by_conn);
        LIST_FIELDS(TestSession, all);

        SessionState state;
        OwSessionRequest req; /* as accepted: real ports, SID; owns slots */
        bool we_send;         /* Conf-Sender: this server sends */
        OwSid sid;
        char sid_hex[OW_SID_HEX_SIZE];
        SockAddr local;       /* our test endpoint */
        SockAddr peer;        /* the client's test endpoint */
        int udp_fd;
        OwTestKeys keys;
        OwTimestamp last_scheduled;
        /* Policy (policy.c): what it was admitted under and what it holds. */
        Policy *policy;         /* a reference to the policy that admitted it */
        size_t class;           /* its class in that policy */
        char *class_path;       /* "root/regular": its usage is charged there, its data stored there */
        uint64_t bandwidth_bps; /* held while the session exists */
        uint64_t disk_reserved; /* its data file's estimate, held until the file settles */

        Endpoint *endpoint;   /* its worker (src/shared/endpoint.h), once launched */
        bool failed;
        bool ran;             /* its worker got as far as READY */
        WorkerDone done;      /* the worker's DONE; skips borrowed from the endpoint */

        /* Receiving: the data file (its records: data.n_records). */
        OwpWriter data;
        char *data_path;
        bool data_stored; /* its file is in the server's index, charged as reserved */
};

struct Conn {
        Server *server;
        LIST_FIELDS(Conn, conns);

        int fd;
        CtrlIO io; /* the socket and the control engine (all the protocol) */
        sd_event_source *io_source;
        uint32_t io_events; /* what io_source waits for (EPOLLET always) */
        sd_event_source *timer_source;
        sd_event_source *session_source; /* defer: a session changed (conn_session_event()) */
        ConnState state;

        SockAddr peer, local;
        char peer_str[SOCKADDR_STR_MAX];
        char peer_addr_str[SOCKADDR_STR_MAX];

        uint32_t modes_offered;
        OwMode mode;
        char keyid[OW_KEYID_SIZE + 1];
        OwControlKeys keys; /* modes A and E: the control session keys, from the engine */
        char *class_name; /* policy class the connection was admitted under */
        uint64_t policy_generation;

        /* Start-Sessions came: its sessions wait in turn with those of
         * other connections to be launched (session.c). */
        LIST_FIELDS(Conn, starting);
        bool in_starting;                 /* on Server.starting */
        TestSession *start_next;          /* its next session to launch */

        LIST_HEAD(TestSession, sessions); /* of the current batch */
        unsigned n_sessions;
        unsigned n_started; /* workers of the batch being started that are ready: each new one re-arms the deadline */
        unsigned n_accepted; /* sessions accepted on this connection so far (test_sessions) */
        bool our_stop_sent;
        bool peer_stop_received;
        uint8_t peer_stop_accept;
        OwTimestamp peer_stop_time;
        OwStopSessions peer_stop;
        bool any_failure;
        bool stopping_for_failure; /* a session failed mid-test: the others were told to stop */

        /* Limits against hostile clients (guard.c). */
        bool guarded;            /* counted against its source's connections */
        bool auth_backoff;       /* its source was in a back-off at the greeting */
        bool quiet_close;        /* refused with a line counted, not logged: its close at debug level */
        uint64_t setup_deadline; /* CLOCK_MONOTONIC usec: set-up and first command by then; 0: done */

        FetchStream *fetch_stream; /* the records of a fetch answer still to produce (datastore.c) */
        FetchWait *fetch_wait; /* a whole-session fetch waiting for its session to end; reads nothing else */
};

struct Server {
        sd_event *event;
        LIST_HEAD(Conn, conns);
        unsigned n_conns;
        LIST_HEAD(TestSession, all_sessions);
        unsigned n_sessions_running;
        /* Connections whose sessions wait to be launched, a few per turn
         * of the event loop, one connection after the other (session.c). */
        LIST_HEAD(Conn, starting);
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
        uint64_t files_scanned_usec; /* CLOCK_MONOTONIC of the last datastore_scan() */

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

/* A session file in the data directory. */
struct StoredFile {
        OwSid sid;
        char *class_path;    /* directory under <datadir>/hierarchy, the class path it was written for */
        uint64_t size;       /* octets charged: the file's size; while written, its reservation */
        TestSession *writer; /* the receive session still writing it, or NULL */
};

/* server.c */
OwTimestamp server_now(const Server *s);
/* CLOCK_MONOTONIC of the event loop's current iteration, in microseconds. */
uint64_t server_monotonic_usec(const Server *s);
void server_update_status(Server *s);
int server_add_listener(Server *s, int fd);
int server_bind_listener(Server *s, const char *node);

/* guard.c: limits against hostile clients, by source (an IPv4 address,
 * an IPv6 /64). */
typedef enum GuardLog {
        GUARD_LOG_PER_ADDR,      /* refusals over maxcontrolsessionsperaddr */
        GUARD_LOG_SETUP_TIMEOUT, /* connections closed at setuptimeout */
        GUARD_LOG_BACKOFF,       /* refusals during an authentication back-off */
        GUARD_LOG_SETUP_ERROR,   /* connections that failed or went away before the set-up was done */
        _GUARD_LOG_MAX,
} GuardLog;
int guard_new(Server *s);
void guard_free(Server *s);
/* A new connection from peer (unmapped): 0 and counted, or -EUSERS
 * (logged, rate-limited) over maxcontrolsessionsperaddr. */
int guard_conn_admit(Server *s, const SockAddr *peer, const char *peer_str);
void guard_conn_closed(Server *s, const SockAddr *peer);
/* A failed authentication: counted; true when it is the first of its
 * source's window and should be logged as itself (the others go into
 * one line per window). May start a back-off (logged). */
bool guard_auth_failed(Server *s, const SockAddr *peer, const char *keyid);
/* peer's source is in a back-off: offer it no authenticated mode. */
bool guard_auth_backoff(Server *s, const SockAddr *peer);
/* One more of a line any client can make us write for each connection:
 * true to log it now; false when counted instead, for a line with the
 * count at the end of the interval. */
bool guard_log_allowed(Server *s, GuardLog kind, const char *peer);

/* conn.c */
int conn_new(Server *s, int fd, const SockAddr *peer);
Conn *conn_free(Conn *c);
void conn_session_event(Conn *c); /* a session's state changed; acted on from the event loop */
void conn_fetch_wait_over(Conn *c); /* its waiting fetch (fetch-wait.c) is to be answered now */
void conn_log_internal(const char *file, int line, Conn *c, int priority, const char *message_id,
                       const char *fmt, ...) _printf_(6, 7);
#define conn_log(c, ...) conn_log_internal(__FILE__, __LINE__, (c), __VA_ARGS__)

/* session.c */
int session_new(Conn *c, const OwSessionRequest *req, OwAccept *ret_accept, TestSession **ret);
TestSession *session_free(TestSession *t);
/* Start-Sessions: launch the connection's sessions' workers from the
 * event loop, a few at a time, taking turns with other connections; each
 * READY, or a failure, comes as conn_session_event(). */
int session_queue_start(Conn *c);
void session_queue_forget(Conn *c); /* the connection goes away, or stops waiting */
void session_queue_done(Server *s);
int session_stop(TestSession *t, OwTimestamp stop_time, bool has_next_seqno, uint32_t next_seqno);
int session_finalize(TestSession *t, const OwStopSession *peer_info, OwTimestamp stop_time);
void session_abandon(TestSession *t); /* connection lost: kill, keep data as incomplete */
TestSession *server_find_session(Server *s, const OwSid *sid);
/* maxtestsessions: work out the bound in force from the configuration and
 * the descriptor limit (at start-up, after raising it, and on reload);
 * logs when it differs from what was asked. */
void session_limit_update(Server *s);
/* Sessions held now: those that exist and the workers of released ones
 * still running. */
unsigned session_limit_held(Server *s);
/* A Request-Session would go past maxtestsessions: count it and log the
 * first of a run of such refusals (the caller answers Accept 5). */
bool session_limit_refuse(Conn *c);

/* datastore.c */
#define DATASTORE_HIERARCHY_DIR \
        "hierarchy" /* <datadir>/hierarchy/<class path>/<SID>.owp, as the reference */
int datastore_scan(Server *s);
StoredFile *datastore_find(Server *s, const OwSid *sid);
void datastore_forget(Server *s, const OwSid *sid);
void datastore_done(Server *s);
/* A receive session is going away: charge its file at its real size, or
 * delete it (never ran, or over the class's hard disk limit). */
void datastore_settle(TestSession *t);
/* Whether the data directory's file system has room for t's file (its
 * disk estimate) besides what the files being written still need:
 * -ENOSPC if not, with what is free and what is needed. */
int datastore_check_space(TestSession *t, uint64_t *ret_free, uint64_t *ret_needed);
int datastore_create(TestSession *t);
int datastore_append(TestSession *t, const uint8_t *records, size_t n);
int datastore_finalize(TestSession *t, uint32_t next_seqno, const OwSkipRange *skips, uint32_t n_skips,
                       OwTimestamp stop_time, bool *ret_invalid);
int datastore_mark_incomplete(TestSession *t);
/* At start-up, after datastore_scan(): repair the files of sessions whose
 * writer died (owampd killed), as datastore_mark_incomplete() marks them
 * (ow_owp_recover()); one journal line per file. Returns how many. */
int datastore_recover(Server *s);
int datastore_delete(TestSession *t); /* a session that never ran: its file and index entry */
char *datastore_path(const Server *s, const char *class_path, const OwSid *sid);
/* Build the whole Fetch-Session response for sid into the connection's
 * output (Fetch-Ack and, when accepted, the three parts; the records
 * stream, datastore_fetch_more()). A whole-session fetch of a session
 * still running is refused (Accept 1); waited_usec, how long fetch-wait.c
 * waited for it, goes into the log. */
int datastore_fetch(Conn *c, const OwFetchSession *f, uint64_t waited_usec);
/* The next batch of a streamed answer's records into the engine; frees
 * c->fetch_stream once they are all out. */
int datastore_fetch_more(Conn *c);
FetchStream *datastore_fetch_stream_free(FetchStream *fs);
/* A whole-session fetch of a stored session that is still running: wait
 * (fetch-wait.c) before datastore_fetch(). */
bool datastore_fetch_must_wait(Server *s, const OwFetchSession *f);

/* fetch-wait.c: a whole-session fetch waiting for its session to end
 * (PROTOCOL.md 5.7), owned by its connection (Conn.fetch_wait). */
int fetch_wait_new(Conn *c, const OwFetchSession *req, FetchWait **ret);
FetchWait *fetch_wait_free(FetchWait *w);
const OwFetchSession *fetch_wait_request(const FetchWait *w);
uint64_t fetch_wait_elapsed_usec(const FetchWait *w);
/* A session ended or went away: every waiting fetch looks again now. */
void fetch_waits_kick(Server *s);
/* OWAMP_DEBUG_FETCH_WAIT: the first interval in seconds (default 1; each
 * next one doubles). -EINVAL when malformed. */
int fetch_wait_interval_from_env(uint64_t *ret_usec);
uint64_t fetch_wait_total_usec(uint64_t first_usec);

/* conn.c */
/* How long the start of a batch may go without another of its workers
 * becoming ready: 30 s, or OWAMP_DEBUG_START_TIMEOUT seconds (0.1 to 600).
 * -EINVAL when malformed. */
int start_timeout_from_env(uint64_t *ret_usec);

/* policy.c */
/* On error, err gets "file:line: reason". */
/* allow_insecure_pfs (owampd.conf allowinsecurepfs): load an owampd.pfs
 * that others may read or write, with a warning, instead of refusing it. */
int policy_load(const char *confdir, bool allow_insecure_pfs, Policy **ret, char *err, size_t err_size);
Policy *policy_ref(Policy *p);
Policy *policy_unref(Policy *p);
void policy_install(Server *s, Policy *p, bool reload);
uint32_t policy_modes_for_peer(Server *s, const SockAddr *peer);
int policy_lookup_key(Server *s, const char *keyid, uint8_t **ret_secret, size_t *ret_len);
const char *policy_class_for(Server *s, const SockAddr *peer, const char *keyid);
/* Decide a Request-Session (test_sessions, bandwidth, disk) and log a
 * refusal with the class and the limit; on OK the session holds its
 * resources until policy_release_session(). */
OwAccept policy_admit_session(Server *s, Conn *c, TestSession *t);
/* The session's far endpoint is the control connection's peer, or the
 * class may name another host (allow_foreign_endpoint); logs a refusal. */
OwAccept policy_check_endpoint(Server *s, Conn *c, TestSession *t);
void policy_release_session(Server *s, TestSession *t);
/* The session's file ended up size octets: 0 if that fits its class's
 * hard disk limit (disk x diskfudge), -EDQUOT (logged) if not. */
int policy_settle_disk(Server *s, TestSession *t, uint64_t size);
/* delete_on_fetch of the class a stored file belongs to. */
bool policy_delete_on_fetch(Server *s, const StoredFile *f);

/* config.c */
/* Read owampd.conf (or owamp-server.conf) and owampd.conf.d/ * .conf in
 * confdir, then apply cli over them. */
int config_load(const char *confdir, const OwConf *cli, OwConf **ret, char *err, size_t err_size);
/* Copy the settings that can change at run time into s. */
void config_apply(Server *s, const OwConf *conf);
int config_log_priority(const OwConf *conf);
/* SIGHUP: all three files again, all or nothing. */
int server_reload(Server *s);
