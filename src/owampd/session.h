/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Test sessions on the server side (session.c). */

#include "endpoint.h"
#include "net.h"
#include "ow-control.h"
#include "ow-crypto.h"
#include "ow-owp.h"
#include "ow-sid.h"
#include "ow-testpkt.h"
#include "owp-writer.h"
#include "server.h"
#include "worker-ipc.h"

typedef void (*SessionChangedFn)(void *userdata);

/* A session's owner, the control connection that asked for it
 * (Conn.owner): who it is, for the policy and for the lines about its
 * sessions; its sessions, one batch at a time; its turn in the start
 * queue; and how its sessions tell it of a change. The owner fills in who
 * it is; session.c keeps the rest. */
typedef struct SessionOwner {
        Server *server;
        SockAddr peer, local; /* unmapped */
        char peer_str[SOCKADDR_STR_MAX];
        char peer_addr_str[SOCKADDR_STR_MAX];
        OwMode mode;                   /* once the set-up is done */
        char keyid[OW_KEYID_SIZE + 1]; /* empty in open mode */
        OwControlKeys keys;            /* modes A and E: the control session keys, from the engine */
        char *class_name;              /* policy class the connection was admitted under */
        unsigned n_accepted;           /* sessions accepted so far (test_sessions) */

        LIST_HEAD(TestSession, sessions); /* of the current batch */
        unsigned n_sessions;

        /* Start-Sessions came: its sessions wait in turn with those of
         * other owners to be launched. */
        LIST_FIELDS(SessionOwner, starting);
        bool in_starting;        /* on Server.starting */
        bool starting;           /* it waits for its batch to start (session_queue_start() to its end) */
        TestSession *start_next; /* its next session to launch */

        SessionChangedFn changed; /* a session's state changed: from its worker's callbacks */
        void *userdata;
} SessionOwner;

/* Its fields for a journal line: peer, mode, key id. */
LogFields session_owner_log_fields(const SessionOwner *o, const char *message_id);

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
        /* Its owner: the batch it is in (by_conn), the names its lines
         * carry; it reports each change of state (ready, done, failed)
         * through owner->changed(), and the owner acts on it from an event
         * of its own. NULL once refused. */
        SessionOwner *owner;
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

/* A Request-Session of o's: admitted (policy), bound, its file created,
 * and in o's batch; o->changed() is called on each change of its state.
 * Logs its refusals; *ret_accept says how to answer. */
int session_new(SessionOwner *o, const OwSessionRequest *req, OwAccept *ret_accept, TestSession **ret);
TestSession *session_free(TestSession *t);
/* Start-Sessions: launch the connection's sessions' workers from the
 * event loop, a few at a time, taking turns with other connections; each
 * READY, or a failure, comes as the session's changed(). */
int session_queue_start(SessionOwner *o);
void session_queue_forget(SessionOwner *o); /* the owner goes away, or stops waiting */
void session_queue_done(Server *s);
int session_stop(TestSession *t, OwTimestamp stop_time, bool has_next_seqno, uint32_t next_seqno);
int session_finalize(TestSession *t, const OwStopSession *peer_info, OwTimestamp stop_time);
void session_abandon(TestSession *t); /* connection lost: kill, keep data as incomplete */
/* maxtestsessions: work out the bound in force from the configuration and
 * the descriptor limit (at start-up, after raising it, and on reload);
 * logs when it differs from what was asked. */
void session_limit_update(Server *s);
/* Sessions held now: those that exist and the workers of released ones
 * still running. */
unsigned session_limit_held(Server *s);
/* A Request-Session would go past maxtestsessions: count it and log the
 * first of a run of such refusals (the caller answers Accept 5). */
bool session_limit_refuse(SessionOwner *o);
