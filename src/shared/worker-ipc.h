/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The channel between a controller (owampd, owping) and a session worker
 * (owamp-session): a SOCK_STREAM socket carrying length-prefixed messages.
 *
 *   u32 length of what follows (type + payload), big-endian
 *   u32 type
 *   payload
 *
 * Both ends treat the other as untrusted: every message is length-checked
 * and bounded (WORKER_MSG_MAX), and unknown types are errors. The worker
 * runs sandboxed under a dynamic UID, so owampd must survive anything it
 * sends.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "ow-testpkt.h"
#include "ow-time.h"
#include "ow-types.h"

#define WORKER_IPC_VERSION 1
/* Largest message either side accepts: a DONE with every skip range the
 * protocol allows (OW_MAX_SKIP_RANGES x 8 octets), with room to spare. */
#define WORKER_MSG_MAX (9u << 20)

typedef enum WorkerMsgType {
        WORKER_MSG_SETUP = 1,   /* controller -> worker: what to do */
        WORKER_MSG_READY = 2,   /* worker -> controller: set up, socket checked */
        WORKER_MSG_START = 3,   /* controller -> worker: a sender may begin */
        WORKER_MSG_RECORDS = 4, /* worker -> controller: data records (receiver) */
        WORKER_MSG_STOP = 5,    /* controller -> worker: Stop-Sessions arrived or shutdown */
        WORKER_MSG_DONE = 6,    /* worker -> controller: final state, then it exits */
        WORKER_MSG_ERROR = 7,   /* worker -> controller: fatal error, then it exits */
} WorkerMsgType;

typedef enum WorkerRole {
        WORKER_ROLE_SENDER = 1,
        WORKER_ROLE_RECEIVER = 2,
} WorkerRole;

#define WORKER_FLAG_ZERO_PADDING 0x01 /* send zero padding instead of random */

typedef struct WorkerSetup {
        WorkerRole role;
        OwMode mode;
        uint32_t flags;
        int64_t clock_offset_nsec;  /* OWAMP_DEBUG_TIMEOFFSET, applied to every timestamp */
        uint64_t enddelay_nsec;     /* sender: wait after the last packet before DONE */
        SockAddr peer;              /* sender: destination; receiver: the only accepted source */
        uint8_t test_aes_key[16];   /* per-session test keys (modes A and E) */
        uint8_t test_hmac_key[32];
        OwSid sid;
        uint32_t n_packets;
        uint32_t padding_length;
        OwTimestamp start_time;
        OwTimestamp timeout;
        uint32_t type_p;
        uint32_t n_slots;
        OwSlot *slots; /* owned by whoever filled the struct */
} WorkerSetup;

typedef struct WorkerStop {
        OwTimestamp stop_time;   /* local time Stop-Sessions arrived (0: now) */
        bool has_next_seqno;
        uint32_t next_seqno;     /* the peer sender's Next Seqno, for receivers */
} WorkerStop;

/* Counters a worker reports with DONE, for logs and the journal. */
typedef struct WorkerCounters {
        uint64_t sent;
        uint64_t received;
        uint64_t duplicates;
        uint64_t lost;
        uint64_t dropped_source; /* wrong source address or port */
        uint64_t dropped_auth;   /* HMAC mismatch */
        uint64_t dropped_short;  /* shorter than the mode's packet */
        uint64_t dropped_seq;    /* sequence number out of range */
        uint64_t dropped_time;   /* outside Timeout of its schedule or of arrival */
        uint64_t late_skipped;   /* sender: packets skipped as more than Timeout late */
} WorkerCounters;

typedef struct WorkerDone {
        uint32_t next_seqno;
        uint32_t n_skips;
        OwSkipRange *skips; /* owned by whoever filled the struct */
        WorkerCounters counters;
} WorkerDone;

/* Buffer of encoded outgoing bytes / partially received incoming bytes. */
typedef struct WorkerBuf {
        uint8_t *data;
        size_t len, size;
} WorkerBuf;

/* A SETUP for one endpoint of the session req (its SID, schedule, packet
 * count and padding, Timeout and Type-P), exchanging packets with peer.
 * keys: the session's test keys, unused (may be NULL) in open mode. The
 * slots are borrowed from req. Clock offset, enddelay and flags are left
 * at 0 for the caller. */
void worker_setup_init(WorkerSetup *ret, WorkerRole role, OwMode mode, const OwSessionRequest *req,
                       const SockAddr *peer, const OwTestKeys *keys);

void worker_buf_done(WorkerBuf *b);
int worker_buf_reserve(WorkerBuf *b, size_t more);

/* Append one encoded message to out. */
int worker_msg_append(WorkerBuf *out, WorkerMsgType type, const void *payload, size_t len);
int worker_setup_append(WorkerBuf *out, const WorkerSetup *s);
int worker_stop_append(WorkerBuf *out, const WorkerStop *s);
int worker_done_append(WorkerBuf *out, const WorkerDone *d);
int worker_records_append(WorkerBuf *out, const OwRecord *r, size_t n);
int worker_error_append(WorkerBuf *out, int error, const char *text);

/* If `in` holds a whole message, return 1 and point *payload at it (valid
 * until worker_buf_consume); 0 if more bytes are needed; -EBADMSG if the
 * length is out of bounds. */
int worker_msg_peek(const WorkerBuf *in, uint32_t *ret_type, const uint8_t **ret_payload, size_t *ret_len);
void worker_buf_consume(WorkerBuf *in, size_t n);

int worker_setup_parse(const uint8_t *p, size_t len, WorkerSetup *ret); /* allocates ret->slots */
int worker_stop_parse(const uint8_t *p, size_t len, WorkerStop *ret);
int worker_done_parse(const uint8_t *p, size_t len, WorkerDone *ret); /* allocates ret->skips */
/* Number of records in a RECORDS payload, or -EBADMSG; decode with ow_record_decode. */
int worker_records_count(const uint8_t *p, size_t len);
int worker_error_parse(const uint8_t *p, size_t len, int *ret_error, char *text, size_t text_size);

/* Blocking helpers for the worker side (which has no event loop). */
int worker_write_all(int fd, WorkerBuf *out);
/* Read into `in` (up to its free space, growing it); returns bytes read, 0 on EOF. */
int worker_read_some(int fd, WorkerBuf *in);
