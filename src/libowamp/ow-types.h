/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Protocol values and data types shared by several parts of the core:
 * the control codec, the session file, the session worker and the
 * statistics all speak in these.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-time.h"

/* Modes, RFC 4656 3.1 / RFC 7718 "OWAMP-Modes" registry. */
typedef enum OwMode {
        OW_MODE_OPEN = 1,
        OW_MODE_AUTHENTICATED = 2,
        OW_MODE_ENCRYPTED = 4,
} OwMode;
#define OW_MODES_ALL (OW_MODE_OPEN | OW_MODE_AUTHENTICATED | OW_MODE_ENCRYPTED)

/* Accept values, RFC 4656 3.3. Anything above 5 is a protocol error. */
typedef enum OwAccept {
        OW_ACCEPT_OK = 0,
        OW_ACCEPT_FAILURE = 1,
        OW_ACCEPT_INTERNAL = 2,
        OW_ACCEPT_UNSUPPORTED = 3,
        OW_ACCEPT_PERM_RESOURCE = 4,
        OW_ACCEPT_TEMP_RESOURCE = 5,
        _OW_ACCEPT_MAX = 5,
} OwAccept;

/* Control command numbers, RFC 4656 3.4 (first octet of a command). */
typedef enum OwCommand {
        OW_CMD_REQUEST_SESSION = 1,
        OW_CMD_START_SESSIONS = 2,
        OW_CMD_STOP_SESSIONS = 3,
        OW_CMD_FETCH_SESSION = 4,
} OwCommand;

/* --- TWAMP (RFC 5357) -------------------------------------------------------
 * What TWAMP-Control adds to the values above (TWAMP-PROTOCOL.md 2, 3). The
 * mode is a value, not an OwMode enumerator, so that switches over OwMode
 * stay OWAMP's. */
#define OW_MODE_MIXED 8 /* RFC 5618: control as E, test packets as O */
#define OW_TWAMP_MODES_ALL (OW_MODES_ALL | OW_MODE_MIXED)
#define OW_CMD_REQUEST_TW_SESSION 5 /* RFC 5357 3.5 */
/* --- end of TWAMP ---------------------------------------------------------- */

#define OW_BLOCK_SIZE 16  /* AES block; every control message is whole blocks */
#define OW_SID_SIZE 16    /* RFC 4656 3.5 */
#define OW_KEYID_SIZE 80  /* RFC 4656 3.1 (KeyID, "username") */
#define OW_ADDR_SIZE 16   /* address fields of Request-Session, RFC 4656 3.5 */

/* Bounds on every count that sizes a buffer. The wire format allows 2^32 of
 * each; these keep a hostile peer from making us allocate gigabytes. */
#define OW_MAX_SLOTS UINT32_C(16384)          /* 256 KiB of slot blocks */
#define OW_MAX_SKIP_RANGES UINT32_C(1048576)  /* 8 MiB of ranges */
#define OW_MAX_STOP_SESSIONS UINT32_C(1024)   /* sessions in one Stop-Sessions */
#define OW_MAX_PADDING UINT32_C(65000)        /* test packet padding, fits a UDP datagram */

typedef struct OwSid {
        uint8_t bytes[OW_SID_SIZE];
} OwSid;

/* Schedule slot, RFC 4656 3.5. */
typedef enum OwSlotType {
        OW_SLOT_EXPONENTIAL = 0,
        OW_SLOT_FIXED = 1,
} OwSlotType;

typedef struct OwSlot {
        OwSlotType type;
        OwTimestamp param; /* mean (exponential) or gap (fixed), 32.32 seconds */
} OwSlot;

/* The fixed part of a Request-Session (RFC 4656 3.5), decoded. The slots
 * travel separately: the caller owns `slots`, an array of n_slots entries. */
typedef struct OwSessionRequest {
        uint8_t ipvn; /* 4 or 6 */
        bool conf_sender;
        bool conf_receiver;
        uint32_t n_slots;
        uint32_t n_packets;
        uint16_t sender_port;
        uint16_t receiver_port;
        uint8_t sender_addr[OW_ADDR_SIZE];   /* IPv4: first 4 octets, rest zero */
        uint8_t receiver_addr[OW_ADDR_SIZE];
        OwSid sid;
        uint32_t padding_length;
        OwTimestamp start_time;
        OwTimestamp timeout;
        uint32_t type_p;
        OwSlot *slots;
} OwSessionRequest;

/* Skip range, RFC 4656 3.8: sequence numbers first..last (inclusive) that
 * the sender never sent. */
typedef struct OwSkipRange {
        uint32_t first;
        uint32_t last;
} OwSkipRange;
#define OW_SKIP_RANGE_SIZE 8

/* Data record, RFC 4656 3.8 / PROTOCOL.md 5.7; identical in .owp files. */
typedef struct OwRecord {
        uint32_t seq;
        OwErrEst send_err;
        OwErrEst recv_err;
        OwTimestamp send_time;
        OwTimestamp recv_time; /* 0: the packet was lost */
        uint8_t ttl;           /* 255 if unknown */
} OwRecord;
#define OW_RECORD_SIZE 25
#define OW_TTL_UNKNOWN 255

static inline bool ow_record_lost(const OwRecord *r) {
        return r->recv_time == 0;
}

/* 25-octet record codec. decode rejects an error estimate with multiplier 0
 * (-OW_ERR_ERREST), as the reference's parser does. */
void ow_record_encode(const OwRecord *r, uint8_t out[OW_RECORD_SIZE]);
int ow_record_decode(const uint8_t in[OW_RECORD_SIZE], OwRecord *ret);

/* Two-way record (TWAMP, RFC 5357 4.2.1): one reflected packet as its
 * sender sees it, or one whose answer never came. Its file form is the
 * reference's .twp record (TWAMP-PROTOCOL.md 7): two 25-octet records,
 * "sent" (sender seq, T1 -> T2, the sender's and the reflector's
 * estimates, the TTL the reflector read) and "reflected" (reflector seq,
 * T3 -> T4, the reflector's and our estimates, the TTL we read). */
typedef struct OwTwRecord {
        uint32_t sender_seq;
        uint32_t reflector_seq;
        OwTimestamp t1; /* sender's send time */
        OwTimestamp t2; /* reflector's receive time */
        OwTimestamp t3; /* reflector's send time */
        OwTimestamp t4; /* receive time back at the sender; 0: lost */
        OwErrEst sender_err;    /* of T1 */
        OwErrEst reflector_err; /* of T2 and T3 (one estimate in the packet) */
        OwErrEst recv_err;      /* of T4 */
        uint8_t sender_ttl;     /* of the sender's packet at the reflector */
        uint8_t ttl;            /* of the reflected packet here, OW_TTL_UNKNOWN if unknown */
} OwTwRecord;
#define OW_TW_RECORD_SIZE (2 * OW_RECORD_SIZE)

static inline bool ow_tw_record_lost(const OwTwRecord *r) {
        return r->t4 == 0;
}

/* 50-octet two-way record codec. decode rejects an error estimate with
 * multiplier 0 (-OW_ERR_ERREST) as ow_record_decode() does; the
 * reflector's estimate is written in both halves and read from the
 * "reflected" one. */
void ow_tw_record_encode(const OwTwRecord *r, uint8_t out[OW_TW_RECORD_SIZE]);
int ow_tw_record_decode(const uint8_t in[OW_TW_RECORD_SIZE], OwTwRecord *ret);

void ow_skip_range_encode(const OwSkipRange *s, uint8_t out[OW_SKIP_RANGE_SIZE]);
int ow_skip_range_decode(const uint8_t in[OW_SKIP_RANGE_SIZE], OwSkipRange *ret);

/* Type-P "DSCP form" (PROTOCOL.md 5.1): only bits 0x3F000000 may be set. */
#define OW_TYPEP_DSCP_MASK UINT32_C(0x3F000000)
static inline bool ow_typep_is_dscp(uint32_t type_p) {
        return (type_p & ~OW_TYPEP_DSCP_MASK) == 0;
}
static inline uint8_t ow_typep_dscp(uint32_t type_p) {
        return (uint8_t) ((type_p >> 24) & 0x3f);
}
static inline uint32_t ow_typep_from_dscp(uint8_t dscp) {
        return (uint32_t) (dscp & 0x3f) << 24;
}

/* A DSCP (RFC 2474) as the reference's -D/-m take it: a number 0..63 in any
 * base strtoul() accepts, or an RFC 4594 name: none, default, df, ef,
 * cs0..cs7, af11..af43 (any case). -EINVAL otherwise. */
int ow_dscp_from_string(const char *s, uint8_t *ret);

const char *ow_mode_to_string(OwMode m); /* "open", "authenticated", "encrypted" */
char ow_mode_to_char(OwMode m);          /* 'O', 'A', 'E', '?' */
/* Parse a set of mode letters ("AEO", case-insensitive) into a mask. */
int ow_modes_from_string(const char *s, uint32_t *ret);
/* The most strict mode of a mask: E, else A, else O; 0 if none. */
OwMode ow_modes_pick(uint32_t modes);
const char *ow_accept_to_string(uint8_t a);
