/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Codecs of the OWAMP-Control messages (RFC 4656 3, PROTOCOL.md 3 and 5).
 *
 * Everything here works on PLAINTEXT: encryption and HMACs are the job of
 * OwChannel (ow-crypto.h). Encoders write HMAC fields as zeros, for the
 * channel to fill in; decoders ignore them (the channel has checked them).
 *
 * Conventions shared by every function below:
 *
 *  - Encoders take the message, a buffer and its size; they check the
 *    message against the same rules as the decoder (we never send what we
 *    would refuse), write MBZ fields as zeros and return the number of
 *    octets written, or -ENOBUFS if the buffer is too small, or the
 *    -OW_ERR_* of the first rule the message breaks.
 *
 *  - Decoders take exactly one message: fewer octets than it needs give
 *    -OW_ERR_TRUNCATED, more give -OW_ERR_TOO_LONG. Then the fields are
 *    validated in a fixed order, each rule with its own code (listed per
 *    message). MBZ fields are not checked (the reference never does,
 *    PROTOCOL.md 6), except the Stop-Sessions padding. They never read past
 *    len and set *ret only on success. Counts are bounded before anything is
 *    sized from them.
 *
 *  - Accept values above 5 are -OW_ERR_ACCEPT everywhere (RFC 4656 3.3).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-crypto.h"
#include "ow-time.h"
#include "ow-types.h"

/* The control port, RFC 4656 2 (IANA "owamp-control"). */
#define OW_CONTROL_PORT_OWAMP 861

/* Message sizes, RFC 4656 3.1-3.8. */
#define OW_SERVER_GREETING_SIZE 64
#define OW_SETUP_RESPONSE_SIZE 164
#define OW_SERVER_START_SIZE 48
#define OW_SERVER_START_CLEAR_SIZE 32       /* then one block in the server's CBC chain */
#define OW_REQUEST_SESSION_PREAMBLE_SIZE 112 /* fixed part, first HMAC included */
#define OW_SLOT_SIZE 16
#define OW_ACCEPT_SESSION_SIZE 48
#define OW_START_SESSIONS_SIZE 32
#define OW_START_ACK_SIZE 32
#define OW_STOP_SESSIONS_MIN_SIZE 32 /* header block + HMAC block, no sessions */
#define OW_FETCH_SESSION_SIZE 48
#define OW_FETCH_ACK_SIZE 32

/* Bound on the Number of Records of a Fetch-Ack, which sizes the client's
 * buffer for the records part: 2^26 records are 1.6 GiB, a week of 100
 * packets per second with room for duplicates. */
#define OW_MAX_FETCH_RECORDS (UINT32_C(1) << 26)

/* --- Connection set-up ---------------------------------------------------- */

/*
 * Server Greeting (server -> client, 64 octets, clear), RFC 4656 3.1.
 * Decode checks: Count within OW_PBKDF2_COUNT_MIN..MAX when the greeting
 * offers mode A or E (-OW_ERR_PBKDF2_COUNT; whether it is a power of two is
 * for the caller, see ow_pbkdf2_count_check_client()). Modes are returned
 * as sent, unknown bits included; Modes = 0 (refused) decodes fine.
 * Encode also refuses mode bits other than O/A/E (-OW_ERR_MODE).
 */
typedef struct OwServerGreeting {
        uint32_t modes;
        uint8_t challenge[OW_CHALLENGE_SIZE];
        uint8_t salt[OW_SALT_SIZE];
        uint32_t count;
} OwServerGreeting;

int ow_server_greeting_encode(const OwServerGreeting *m, uint8_t *buf, size_t size);
/* The same, for a protocol whose modes are `allowed` (TWAMP:
 * OW_TWAMP_MODES_ALL); ow_server_greeting_encode() is this with
 * OW_MODES_ALL. The Count rule also holds for mode OW_MODE_MIXED. */
int ow_server_greeting_encode_modes(const OwServerGreeting *m, uint32_t allowed, uint8_t *buf, size_t size);
int ow_server_greeting_decode(const uint8_t *buf, size_t len, OwServerGreeting *ret);

/*
 * Set-Up-Response (client -> server, 164 octets, clear), RFC 4656 3.1.
 * Checks: mode exactly one of 1, 2, 4 (-OW_ERR_MODE); in modes A and E the
 * KeyID (-OW_ERR_KEYID): 1 to 80 visible ASCII characters (0x21..0x7e),
 * then NUL octets up to the end of the field (80 characters need no NUL, as
 * with the reference, whose user names are up to 80 octets). In open mode
 * KeyID, Token and Client-IV are unused: written as zeros, and decoded as
 * an empty KeyID and zeros whatever was sent.
 */
typedef struct OwSetupResponse {
        OwMode mode;
        char keyid[OW_KEYID_SIZE + 1]; /* NUL-terminated */
        uint8_t token[OW_TOKEN_SIZE];
        uint8_t client_iv[OW_IV_SIZE];
} OwSetupResponse;

int ow_setup_response_encode(const OwSetupResponse *m, uint8_t *buf, size_t size);
int ow_setup_response_decode(const uint8_t *buf, size_t len, OwSetupResponse *ret);
/* The same with the protocol's mode mask instead of OW_MODES_ALL: the mode
 * must be exactly one bit of `allowed`. Every mode but open carries the
 * KeyID, Token and Client-IV (TWAMP's mixed mode too, RFC 5618). */
int ow_setup_response_encode_modes(const OwSetupResponse *m, uint32_t allowed, uint8_t *buf, size_t size);
int ow_setup_response_decode_modes(const uint8_t *buf, size_t len, uint32_t allowed, OwSetupResponse *ret);

/* 0 if s is a KeyID we send and accept (see above), else -OW_ERR_KEYID. */
int ow_keyid_check(const char *s);

/*
 * Server-Start (server -> client, 48 octets), RFC 4656 3.1. Octets 32..47
 * (Start-Time, MBZ) are the first block of the server's CBC chain in modes
 * A and E when Accept is 0; the reference sends them as clear zeros
 * otherwise. Checks: Accept.
 */
typedef struct OwServerStart {
        OwAccept accept;
        uint8_t server_iv[OW_IV_SIZE];
        OwTimestamp start_time;
} OwServerStart;

int ow_server_start_encode(const OwServerStart *m, uint8_t *buf, size_t size);
int ow_server_start_decode(const uint8_t *buf, size_t len, OwServerStart *ret);

/* --- Commands ------------------------------------------------------------- */

/*
 * The command number of a client command from its first octet (RFC 4656
 * 3.4): OW_CMD_* on success, -OW_ERR_TRUNCATED for an empty buffer,
 * -OW_ERR_COMMAND for anything but 1..4.
 */
int ow_command_type(const uint8_t *buf, size_t len);

/*
 * How long the command starting at buf is, from the octets received so far
 * (decrypted). Returns 0 and the total size in *ret_size once it is known,
 * or 1 and the number of octets to have before asking again: 16 while the
 * first block is incomplete, then, for Stop-Sessions only, up to the next
 * session record header (the walk restarts from buf each time, O(sessions)
 * per call). Errors: those of ow_command_type(), and -OW_ERR_COUNT for a
 * count beyond its bound (slots, Stop-Sessions sessions, skip ranges and
 * their sum), before anything is sized from it. Works for the fetched copy
 * of a Request-Session and for the server's Stop-Sessions too.
 *
 * The octets it asks for never include the final HMAC block, so a reader
 * can ow_channel_open() every piece without an HMAC and then the last 16
 * octets with one; a Request-Session also has an HMAC block at 96..111.
 */
int ow_command_size(const uint8_t *buf, size_t len, size_t *ret_size);

/*
 * Request-Session (client -> server, 112 + 16 N + 16 octets), RFC 4656 3.5,
 * PROTOCOL.md 5.1; also the first part of a fetch response. HMAC fields at
 * offset 96 and at the end.
 *
 * Checks, in this order: command 1 (-OW_ERR_COMMAND); N from 1 to
 * OW_MAX_SLOTS (-OW_ERR_COUNT; before the length, which depends on it);
 * the length; IPVN 4 or 6 (-OW_ERR_IPVN); exactly one Conf flag, any
 * non-zero octet counting as set, as in the reference (-OW_ERR_CONF);
 * Number of Packets at least 1 and Padding Length at most OW_MAX_PADDING
 * (-OW_ERR_COUNT); Type-P in DSCP form (-OW_ERR_TYPEP); every slot type 0
 * or 1 (-OW_ERR_SLOT_TYPE).
 *
 * IPv4 addresses use the first 4 octets of their field; decode zeroes the
 * other 12 whatever was sent. Decode allocates ret->slots (free it with
 * ow_session_request_done()); encode reads m->n_slots entries of m->slots.
 */
int ow_request_session_size(uint32_t n_slots, size_t *ret_size);

/* The fields of the 112-octet preamble (command, MBZ and HMAC zero on put,
 * ignored on get) and of one schedule slot, with no validation at all: the
 * building blocks of the codec below and of the copy a .owp file keeps,
 * which the reference reads leniently (ow-owp.c). get() copies 4 address
 * octets for IPVN 4 (the rest zero) and 16 otherwise; ret->slots is NULL. */
void ow_request_preamble_put(const OwSessionRequest *m, uint8_t out[static OW_REQUEST_SESSION_PREAMBLE_SIZE]);
void ow_request_preamble_get(const uint8_t in[static OW_REQUEST_SESSION_PREAMBLE_SIZE], OwSessionRequest *ret);
void ow_slot_put(const OwSlot *s, uint8_t out[static OW_SLOT_SIZE]);
void ow_slot_get(const uint8_t in[static OW_SLOT_SIZE], OwSlot *ret);

int ow_request_session_encode(const OwSessionRequest *m, uint8_t *buf, size_t size);
int ow_request_session_decode(const uint8_t *buf, size_t len, OwSessionRequest *ret);
void ow_session_request_done(OwSessionRequest *r);

/*
 * Accept-Session (server -> client, 48 octets), RFC 4656 3.5. Checks:
 * Accept; Port not 0 when Accept is 0 (-OW_ERR_PORT).
 */
typedef struct OwAcceptSession {
        OwAccept accept;
        uint16_t port;
        OwSid sid;
} OwAcceptSession;

int ow_accept_session_encode(const OwAcceptSession *m, uint8_t *buf, size_t size);
int ow_accept_session_decode(const uint8_t *buf, size_t len, OwAcceptSession *ret);

/* Start-Sessions (client -> server, 32 octets), RFC 4656 3.7: command 2. */
int ow_start_sessions_encode(uint8_t *buf, size_t size);
int ow_start_sessions_decode(const uint8_t *buf, size_t len);

/* Start-Ack (server -> client, 32 octets), RFC 4656 3.7. Checks: Accept. */
int ow_start_ack_encode(OwAccept accept, uint8_t *buf, size_t size);
int ow_start_ack_decode(const uint8_t *buf, size_t len, OwAccept *ret);

/*
 * Stop-Sessions (either direction, variable), RFC 4656 3.8, PROTOCOL.md
 * 5.4: a header block, then per session SID, Next Seqno, K and K skip
 * ranges packed after them, with 8 zero octets when K is even to fill the
 * block, then an HMAC block.
 *
 * Checks, in this order: command 3 (-OW_ERR_COMMAND); Accept; Number of
 * Sessions at most OW_MAX_STOP_SESSIONS, each K and their sum at most
 * OW_MAX_SKIP_RANGES (-OW_ERR_COUNT); the length; padding zero
 * (-OW_ERR_PADDING); First <= Last in every range (-OW_ERR_RANGE). The
 * order of ranges is not checked (the reference's check is a no-op).
 *
 * Decode allocates the sessions and their ranges in one block; free them
 * with ow_stop_sessions_done().
 */
typedef struct OwStopSession {
        OwSid sid;
        uint32_t next_seqno;
        uint32_t n_skip_ranges;
        OwSkipRange *skip_ranges;
} OwStopSession;

typedef struct OwStopSessions {
        OwAccept accept;
        uint32_t n_sessions;
        OwStopSession *sessions;
} OwStopSessions;

int ow_stop_sessions_size(const OwStopSessions *m, size_t *ret_size);
/* The size of the Stop-Sessions starting at buf, from the octets so far:
 * ow_command_size()'s contract (0 and the size, 1 and the octets to have
 * before asking again, or -OW_ERR_COUNT). */
int ow_stop_sessions_size_from(const uint8_t *buf, size_t len, size_t *ret_size);
int ow_stop_sessions_encode(const OwStopSessions *m, uint8_t *buf, size_t size);
int ow_stop_sessions_decode(const uint8_t *buf, size_t len, OwStopSessions *ret);
void ow_stop_sessions_done(OwStopSessions *m);

/*
 * Fetch-Session (client -> server, 48 octets), RFC 4656 3.8. Checks:
 * command 4 (-OW_ERR_COMMAND); Begin Seq <= End Seq (-OW_ERR_RANGE).
 */
typedef struct OwFetchSession {
        uint32_t begin;
        uint32_t end; /* inclusive; 0..0xffffffff asks for the whole session */
        OwSid sid;
} OwFetchSession;

int ow_fetch_session_encode(const OwFetchSession *m, uint8_t *buf, size_t size);
int ow_fetch_session_decode(const uint8_t *buf, size_t len, OwFetchSession *ret);

/*
 * Fetch-Ack (server -> client, 32 octets), RFC 4656 3.8, PROTOCOL.md 5.7.
 * Checks: Accept; when Accept is 0, Number of Skip Ranges at most
 * OW_MAX_SKIP_RANGES and Number of Records at most OW_MAX_FETCH_RECORDS
 * (-OW_ERR_COUNT). Finished is returned as sent: the reference sends 0, 1
 * or 2 (incomplete); only 1 means finished.
 */
typedef struct OwFetchAck {
        OwAccept accept;
        uint8_t finished;
        uint32_t next_seqno;
        uint32_t n_skip_ranges;
        uint32_t n_records;
} OwFetchAck;

int ow_fetch_ack_encode(const OwFetchAck *m, uint8_t *buf, size_t size);
int ow_fetch_ack_decode(const uint8_t *buf, size_t len, OwFetchAck *ret);

/*
 * What follows an accepted Fetch-Ack (PROTOCOL.md 5.7): the session's
 * Request-Session (ow_request_session_*), then these two parts, each
 * ending in an HMAC block that is there even when the part is empty:
 *
 *  - skip ranges: n x 8 octets packed, zero-padded to a block;
 *  - data records: n x 25 octets packed across block boundaries,
 *    zero-padded to a block.
 *
 * _size: the part's size for n items (-OW_ERR_COUNT above
 * OW_MAX_SKIP_RANGES / OW_MAX_FETCH_RECORDS).
 * _decode: buf holds exactly the part (length checked as usual), ret has
 * room for n items. Checks First <= Last (-OW_ERR_RANGE) and record error
 * estimates (-OW_ERR_ERREST). The padding is not checked.
 */
int ow_fetch_skips_size(uint32_t n, size_t *ret_size);
int ow_fetch_skips_encode(const OwSkipRange *ranges, uint32_t n, uint8_t *buf, size_t size);
int ow_fetch_skips_decode(const uint8_t *buf, size_t len, uint32_t n, OwSkipRange *ret);

int ow_fetch_records_size(uint32_t n, size_t *ret_size);
int ow_fetch_records_encode(const OwRecord *records, uint32_t n, uint8_t *buf, size_t size);
int ow_fetch_records_decode(const uint8_t *buf, size_t len, uint32_t n, OwRecord *ret);

/* --- TWAMP-Control (RFC 5357), TWAMP-PROTOCOL.md 3 ----------------------- */

/* The control port, RFC 5357 2 (IANA "twamp-control"). */
#define OW_CONTROL_PORT_TWAMP 862

#define OW_TW_REQUEST_SESSION_SIZE 112 /* no slots, one HMAC block */
#define OW_TW_STOP_SESSIONS_SIZE 32    /* no session records */

/*
 * Request-TW-Session (client -> server, 112 octets), RFC 5357 3.5: OWAMP's
 * preamble with command 5, no slots and no slot HMAC, in an
 * OwSessionRequest whose n_slots, n_packets, Conf flags and SID are zero
 * (slots NULL). Octets 88..95 are MBZ: the reference does not negotiate
 * RFC 6038's reflect octets (it never offers mode 32), so neither do we.
 *
 * Checks, in this order: the length; command 5 (-OW_ERR_COMMAND); IPVN 4
 * or 6 (-OW_ERR_IPVN); Conf-Sender and Conf-Receiver zero
 * (-OW_ERR_TW_ROLE); Number of Schedule Slots and Number of Packets zero
 * (-OW_ERR_TW_SCHEDULE); Padding Length at most OW_MAX_PADDING
 * (-OW_ERR_COUNT); Type-P in DSCP form (-OW_ERR_TYPEP). The SID is MBZ:
 * written and decoded as zeros. The answer is OWAMP's Accept-Session (48
 * octets, octets 20..31 MBZ without RFC 6038): ow_accept_session_*().
 */
int ow_tw_request_session_encode(const OwSessionRequest *m, uint8_t *buf, size_t size);
int ow_tw_request_session_decode(const uint8_t *buf, size_t len, OwSessionRequest *ret);

/*
 * TWAMP Stop-Sessions (client -> server only, 32 octets), RFC 5357 3.8:
 * command 3, Accept, MBZ, Number of Sessions, MBZ, HMAC. Checks: the
 * length; command 3 (-OW_ERR_COMMAND); Accept (-OW_ERR_ACCEPT). Whether
 * Number of Sessions is the connection's is for the server.
 */
typedef struct OwTwStopSessions {
        OwAccept accept;
        uint32_t n_sessions;
} OwTwStopSessions;

int ow_tw_stop_sessions_encode(const OwTwStopSessions *m, uint8_t *buf, size_t size);
int ow_tw_stop_sessions_decode(const uint8_t *buf, size_t len, OwTwStopSessions *ret);
