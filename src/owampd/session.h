/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Test sessions on the server side (session.c). */

#include "endpoint.h"
#include "ow-crypto.h"
#include "ow-owp.h"
#include "ow-sid.h"
#include "ow-testpkt.h"
#include "owp-writer.h"
#include "server.h"
#include "worker-ipc.h"

typedef void (*SessionChangedFn)(void *userdata);

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
        Conn *conn; /* its owner: the batch it is in (by_conn), the names its lines carry */
        /* How it reports to its owner: a change of state (ready, done,
         * failed), from the worker's callbacks; the owner acts on it from
         * an event of its own. */
        SessionChangedFn changed;
        void *changed_userdata;
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

/* A Request-Session on c: admitted (policy), bound, its file created, and
 * on c's list; changed() is called on each change of its state. Logs its
 * refusals; *ret_accept says how to answer. */
int session_new(Conn *c, const OwSessionRequest *req, SessionChangedFn changed, void *userdata,
                OwAccept *ret_accept, TestSession **ret);
TestSession *session_free(TestSession *t);
/* Start-Sessions: launch the connection's sessions' workers from the
 * event loop, a few at a time, taking turns with other connections; each
 * READY, or a failure, comes as the session's changed(). */
int session_queue_start(Conn *c);
void session_queue_forget(Conn *c); /* the connection goes away, or stops waiting */
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
bool session_limit_refuse(Conn *c);
