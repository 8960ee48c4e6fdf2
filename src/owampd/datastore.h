/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The data directory (datastore.c): the index of stored session files, the
 * files of receive sessions, and the answers to Fetch-Session. It never
 * sees a connection or a policy: a fetch answer goes to a FetchSink, and
 * what the policy says comes in as arguments.
 */

#include "ow-control.h"
#include "ow-owp.h"
#include "ow-sid.h"
#include "server.h"

typedef struct FetchStream FetchStream;

/* A session file in the data directory. */
struct StoredFile {
        OwSid sid;
        char *class_path;    /* directory under <datadir>/hierarchy, the class path it was written for */
        uint64_t size;       /* octets charged: the file's size; while written, its reservation */
        TestSession *writer; /* the receive session still writing it, or NULL */
};

/* One part of a Fetch-Session answer, in the order they go out (RFC 4656
 * 3.8): the Fetch-Ack, then, when it accepts, the stored request, the
 * skip ranges and the records, in as many RECORDS parts as the store
 * likes. */
typedef enum FetchPartType {
        FETCH_PART_ACK,
        FETCH_PART_REQUEST,
        FETCH_PART_SKIPS,
        FETCH_PART_RECORDS,
} FetchPartType;

typedef struct FetchPart {
        FetchPartType type;
        const OwFetchAck *ack;            /* ACK */
        const OwSessionRequest *request;  /* REQUEST */
        const OwSkipRange *skips;         /* SKIPS */
        const OwRecord *records;          /* RECORDS */
        uint32_t n;                       /* SKIPS, RECORDS */
} FetchPart;

/* Where a Fetch-Session answer goes (conn.c: the connection's control
 * engine, which seals each part). */
typedef struct FetchSink {
        int (*put)(void *userdata, const FetchPart *part);
        uint32_t (*records_left)(void *userdata); /* announced in the Fetch-Ack, not yet given */
        void *userdata;
} FetchSink;

/* Who asked for a fetch, for the lines about it. */
typedef struct FetchRequester {
        const char *peer_str;
        LogFields fields; /* peer, mode, key id */
} FetchRequester;

#define DATASTORE_HIERARCHY_DIR \
        "hierarchy" /* <datadir>/hierarchy/<class path>/<SID>.owp, as the reference */
int datastore_scan(Server *s);
/* Whether a refusal for disk may count the data directory again now (at
 * most once a second). */
bool datastore_recount_allowed(const Server *s);
StoredFile *datastore_find(Server *s, const OwSid *sid);
void datastore_forget(Server *s, const OwSid *sid);
void datastore_done(Server *s);
/* Whether a receive session's file of size octets may stay (the class's
 * hard disk limit; the caller logs a refusal). */
typedef bool (*DatastoreFitsFn)(TestSession *t, uint64_t size);
/* A receive session is going away: charge its file at its real size, or
 * delete it (never ran, or fits() says no). */
void datastore_settle(TestSession *t, DatastoreFitsFn fits);
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
/* Answer a Fetch-Session for f->sid into sink (Fetch-Ack and, when
 * accepted, the three parts). running: its session is still being
 * received (a whole-session fetch of it is refused, Accept 1); waited_usec,
 * how long fetch-wait.c waited for it, goes into the log. The records of a
 * file nobody writes any more are left in *ret_stream, for
 * datastore_fetch_more() as the sink takes them (NULL: all given).
 * *ret_whole is set when the whole of a finished, settled session went
 * out (for delete_on_fetch, datastore_delete_fetched()). */
int datastore_fetch(Server *s, const OwFetchSession *f, bool running, uint64_t waited_usec,
                    const FetchRequester *who, const FetchSink *sink, FetchStream **ret_stream,
                    bool *ret_whole);
/* The next batch of a streamed answer's records into sink: 1 once they
 * are all out (free the stream), 0 while more are left. */
int datastore_fetch_more(FetchStream *fs, const FetchSink *sink);
FetchStream *datastore_fetch_stream_free(FetchStream *fs);
/* delete_on_fetch: remove the stored file of sid (logged). */
void datastore_delete_fetched(Server *s, const OwSid *sid, const FetchRequester *who);

