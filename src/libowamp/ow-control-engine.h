/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The OWAMP-Control engine: one protocol session, for either end of the
 * connection, that does no I/O (RFC 4656 3, PROTOCOL.md 3-6).
 *
 * An adapter (owampd's connection, the blocking client of owping, owfetch
 * and owup, the sd-event client of powstream, the tests and the fuzzer)
 * owns the socket. It hands the engine the octets it received and sends the
 * octets the engine queued; in between, it pulls events out of the engine
 * and calls the engine to send messages:
 *
 *     OwEngine *e;
 *     ow_engine_new(&ow_protocol_owamp, OW_CONTROL_SERVER, &e);
 *     ow_engine_send_greeting(e, &greeting);           // challenge, salt: the caller's randomness
 *     for (;;) {
 *             n = recv(fd, ow_engine_feed_buffer(e, &space), space, 0);
 *             ow_engine_feed_commit(e, n);
 *             while ((r = ow_engine_poll(e, &ev)) > 0) {
 *                     switch (ev.type) { ... ow_engine_send_accept_session(e, &a); ... }
 *                     ow_event_done(&ev);
 *             }
 *             if (r < 0) -> protocol error: log ow_engine_error_context(e) and r, close
 *             send(fd, ow_engine_output(e, &len), len, 0); ow_engine_output_done(e, sent);
 *     }
 *
 * The engine does the set-up (Server Greeting, Set-Up-Response with the
 * PBKDF2 key derivation and the Token, Server-Start), seals and opens the
 * stream (AES-CBC chains and running HMACs, OwChannel), frames every
 * command and reply, enforces which side may send what in which state,
 * and streams the parts of a fetch (tens of MB) incrementally in both
 * directions. It never reads a clock and has no randomness: challenge,
 * salt, session keys and IVs are parameters. The message codecs are those
 * of ow-control.h, with all their validation.
 *
 * The protocol is data (OwProtocol below): the commands, their sizes and
 * how a variable-size one says how long it is, their codecs, who may send
 * each in which state, what answers it, and which mode bits exist.
 * ow_protocol_owamp is one table; ow_protocol_twamp (RFC 5357) is a second
 * with its own Request-TW-Session and Stop-Sessions codecs, no
 * Fetch-Session, and mode bit 8 (Mixed, RFC 5618) - see docs/HACKING.md,
 * "The control engine".
 *
 * Conventions: every function returns 0 (or a positive count) on success
 * and a negative errno or -OW_ERR_* on failure (ow-error.h). A call that is
 * not allowed in the engine's state, or for its role, returns
 * -OW_ERR_STATE and changes nothing. A protocol error (anything the peer
 * sent that is not OWAMP) puts the engine in OW_ENGINE_FAILED for good:
 * every later call returns the same error. The engine never logs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-control.h"
#include "ow-crypto.h"
#include "ow-types.h"

typedef struct OwEngine OwEngine;

typedef enum OwEngineState {
        OW_ENGINE_GREETING, /* server: the greeting is ours to send; client: waiting for it */
        OW_ENGINE_SETUP,    /* server: waiting for the Set-Up-Response; client: ours to send */
        OW_ENGINE_START,    /* server: the Server-Start is ours to send; client: waiting for it */
        OW_ENGINE_IDLE,     /* set up: commands and their replies */
        OW_ENGINE_TEST,     /* sessions started: only Stop-Sessions, until both have crossed */
        OW_ENGINE_CLOSED,   /* refused (Modes 0, Server-Start not OK): nothing more either way */
        OW_ENGINE_FAILED,   /* a protocol error: see ow_engine_error() */
        _OW_ENGINE_STATE_MAX,
} OwEngineState;

#define OW_ENGINE_STATE_BIT(s) (1u << (s))
#define OW_ROLE_BIT(role) (1u << (role))
#define OW_ROLES_BOTH (OW_ROLE_BIT(OW_CONTROL_CLIENT) | OW_ROLE_BIT(OW_CONTROL_SERVER))

/* --- Events ---------------------------------------------------------------- */

typedef enum OwEventType {
        OW_EVENT_NONE,
        OW_EVENT_GREETING,        /* client: .greeting; answer with ow_engine_send_setup_response() */
        OW_EVENT_SETUP_RESPONSE,  /* server: .setup (the Token stays inside); answer with Server-Start */
        OW_EVENT_SERVER_START,    /* client: .server_start; Accept 0: IDLE, else CLOSED */
        OW_EVENT_REQUEST_SESSION, /* server: .request, or .error; answer with an Accept-Session */
        OW_EVENT_START_SESSIONS,  /* server: answer with a Start-Ack (when the sessions are ready) */
        OW_EVENT_STOP_SESSIONS,   /* either: .stop (the peer's Stop-Sessions) */
        OW_EVENT_FETCH_SESSION,   /* server: .fetch, or .error; answer with a Fetch-Ack (and its parts) */
        OW_EVENT_ACCEPT_SESSION,  /* client: .accept_session, the answer to the oldest Request-Session */
        OW_EVENT_START_ACK,       /* client: .accept; Accept 0: TEST */
        OW_EVENT_FETCH_ACK,       /* client: .fetch_ack; Accept 0: the three parts follow */
        OW_EVENT_FETCH_REQUEST,   /* client: .request, part 1 of a fetch */
        OW_EVENT_FETCH_SKIPS,     /* client: .skips, part 2 (one event, n may be 0) */
        OW_EVENT_FETCH_RECORDS,   /* client: .records, a batch of part 3 (any number of events) */
        OW_EVENT_FETCH_DONE,      /* client: part 3's HMAC verified: the fetch is complete */
        /* TWAMP (ow_protocol_twamp) */
        OW_EVENT_REQUEST_TW_SESSION, /* server: .request (no slots), or .error; answer with Accept-Session */
        OW_EVENT_TW_STOP_SESSIONS,   /* server: .tw_stop, the client's Stop-Sessions; no answer */
        _OW_EVENT_MAX,
} OwEventType;

/* Records per OW_EVENT_FETCH_RECORDS event, at most. */
#define OW_ENGINE_RECORD_BATCH 4096u

typedef struct OwEvent {
        OwEventType type;
        /* A command the peer waits an answer for, read whole and
         * authenticated, that its decoder refused (-OW_ERR_IPVN, ...): the
         * union is not set; answer with a refusal, the stream is still in
         * step. 0 otherwise. */
        int error;
        union {
                OwServerGreeting greeting;
                OwSetupResponse setup; /* token wiped */
                OwServerStart server_start;
                OwSessionRequest request; /* slots owned by the event */
                OwStopSessions stop;      /* sessions owned by the event */
                OwFetchSession fetch;
                OwAcceptSession accept_session;
                OwAccept accept;
                OwFetchAck fetch_ack;
                OwTwStopSessions tw_stop; /* TWAMP */
                struct {
                        OwSkipRange *ranges; /* owned by the event */
                        uint32_t n;
                } skips;
                struct {
                        OwRecord *records; /* owned by the event */
                        uint32_t n;
                } records;
        };
} OwEvent;

/* Free what the event owns (a caller may steal a pointer first and set it
 * to NULL). Safe on a zeroed or already done event. */
void ow_event_done(OwEvent *ev);

/* --- The protocol as data ------------------------------------------------- */

typedef struct OwMessageSpec OwMessageSpec;

/* How the engine treats a message beyond reading and writing it. */
typedef enum OwMessageFlags {
        OW_MSG_STARTS_TEST = 1u << 0, /* a reply whose Accept 0 enters OW_ENGINE_TEST */
        OW_MSG_ENDS_TEST = 1u << 1,   /* the test ends once every role in `senders` has sent it */
        OW_MSG_FETCH_PARTS = 1u << 2, /* a reply whose Accept 0 is followed by the fetch parts */
        OW_MSG_NO_PIPELINE = 1u << 3, /* a client sends nothing else until its reply came */
} OwMessageFlags;

struct OwMessageSpec {
        const char *name; /* "Request-Session": for error contexts */
        uint8_t command;  /* the first octet of a command; 0 for a reply */
        size_t size;      /* fixed size; for a variable one, what size_of() needs at least (a block) */
        /* A variable size, from the (opened) octets so far: the contract of
         * ow_command_size() - 0 and the total, 1 and the octets to have
         * before asking again (never including an HMAC block), or an error.
         * NULL for a fixed size. */
        int (*size_of)(const uint8_t *buf, size_t len, size_t *ret_size);
        /* The end of an HMAC-terminated first part (Request-Session: 112),
         * 0 if the message has a single HMAC block, at its end. */
        size_t inner_hmac_end;
        unsigned senders;           /* OW_ROLE_BIT()s of who may send it */
        unsigned states;            /* OW_ENGINE_STATE_BIT()s in which it may be sent */
        unsigned flags;             /* OwMessageFlags */
        const OwMessageSpec *reply; /* what answers it, or NULL */
        OwEventType event;          /* what receiving it produces */
        /* Decode exactly one message into ev's union (ev->type is set by
         * the engine); encode from the message type the wrappers below
         * pass; the encoded size of that message. */
        int (*decode)(const uint8_t *buf, size_t len, OwEvent *ev);
        int (*encode)(const void *msg, uint8_t *buf, size_t size);
        int (*encoded_size)(const void *msg, size_t *ret_size);
        /* Error context when the peer sends it where it may not: "Stop-Sessions
         * outside a test". NULL: "<name> not allowed now". */
        const char *refused_context;
};

/* A mode bit and how the control channel is protected in it. */
typedef struct OwModeSpec {
        uint32_t bit;   /* the Modes / Mode field value */
        OwMode channel; /* what OwChannel does with the stream: open, or AES-CBC and HMAC */
} OwModeSpec;

typedef struct OwProtocol {
        const char *name;
        uint16_t port; /* well-known control port */
        const OwModeSpec *modes;
        size_t n_modes;
        const OwMessageSpec *const *commands; /* what a command's first octet may be */
        size_t n_commands;
        /* Part 1 of a fetch answer (a stored Request-Session), when the
         * protocol has OW_MSG_FETCH_PARTS. */
        const OwMessageSpec *fetch_request;
        /* Error context for a command received in OW_ENGINE_TEST that may
         * not be sent there: "only Stop-Sessions is allowed during a test". */
        const char *test_context;
} OwProtocol;

extern const OwProtocol ow_protocol_owamp;
/* TWAMP-Control, RFC 5357 (ow-control-twamp.c): Request-TW-Session,
 * Start-Sessions, the client's Stop-Sessions; modes O, A, E and Mixed. */
extern const OwProtocol ow_protocol_twamp;

/* The spec of a command by its first octet, or NULL. */
const OwMessageSpec *ow_protocol_command(const OwProtocol *p, uint8_t command);
/* The mask of every mode bit of the protocol. */
uint32_t ow_protocol_modes(const OwProtocol *p);
/* The spec of one mode bit, or NULL (0, several bits, or unknown). */
const OwModeSpec *ow_protocol_mode(const OwProtocol *p, uint32_t bit);

/* --- The engine ------------------------------------------------------------ */

int ow_engine_new(const OwProtocol *p, OwControlRole role, OwEngine **ret);
/* Wipes keys and buffers. Takes NULL, returns NULL. */
OwEngine *ow_engine_free(OwEngine *e);

OwEngineState ow_engine_state(const OwEngine *e);
OwControlRole ow_engine_role(const OwEngine *e);
/* The mode in use once the Set-Up-Response is known (0 before). */
uint32_t ow_engine_mode(const OwEngine *e);
/* The control session keys (modes A and E, once known: sent by the client,
 * decrypted by the server), for the test packets' keys; NULL otherwise. */
const OwControlKeys *ow_engine_keys(const OwEngine *e);

/* The protocol error that failed the engine (0 if none), and what was
 * being read: "unknown command", "Request-Session", "bad Stop-Sessions",
 * "Stop-Sessions outside a test", ... (static text, never NULL). */
int ow_engine_error(const OwEngine *e);
const char *ow_engine_error_context(const OwEngine *e);

/*
 * Input. feed_buffer() returns where to put up to *ret_space octets
 * (never 0 while below OW_ENGINE_MAX_INPUT buffered; NULL and 0 at the
 * bound: poll events first); commit() says how many were put there.
 * feed() copies. Octets are kept until ow_engine_poll() consumes them;
 * -ENOBUFS beyond OW_ENGINE_MAX_INPUT.
 */
#define OW_ENGINE_MAX_INPUT (UINT32_C(16) << 20)
uint8_t *ow_engine_feed_buffer(OwEngine *e, size_t *ret_space);
int ow_engine_feed_commit(OwEngine *e, size_t n);
int ow_engine_feed(OwEngine *e, const void *data, size_t len);
/* Octets received and not yet consumed as whole messages (a message in the
 * middle, or messages waiting for their turn). */
size_t ow_engine_input_pending(const OwEngine *e);
/* Free the input buffer if it holds nothing unconsumed and the output
 * buffer if it holds nothing to send (each wiped), so an idle connection
 * keeps none; the next feed or send allocates again, small. */
void ow_engine_release_buffers(OwEngine *e);

/*
 * The next event: 1 and *ret filled (free it with ow_event_done()), 0 when
 * more input (or a call of ours: a reply the peer waits for) is needed, or
 * a negative protocol error (the engine is FAILED; *ret untouched).
 */
int ow_engine_poll(OwEngine *e, OwEvent *ret);

/* Output: the octets ready to go (sealed), and how many went out. */
const uint8_t *ow_engine_output(const OwEngine *e, size_t *ret_len);
void ow_engine_output_done(OwEngine *e, size_t n);
size_t ow_engine_output_pending(const OwEngine *e);

/* --- Set-up ---------------------------------------------------------------- */

/* Server, OW_ENGINE_GREETING: the greeting, with the caller's challenge and
 * salt. Modes 0 refuses the client: the engine is CLOSED once it is out. */
int ow_engine_send_greeting(OwEngine *e, const OwServerGreeting *g);

/* Client, OW_ENGINE_SETUP (after OW_EVENT_GREETING): the Set-Up-Response
 * in the chosen mode, which the greeting must offer (-OW_ERR_MODE). In
 * modes A and E the engine derives the Token key with PBKDF2 from the
 * secret and the greeting's salt and count, and sends the caller's session
 * keys and Client-IV in it. */
typedef struct OwClientSetup {
        uint32_t mode;
        const char *keyid;
        const void *secret;
        size_t secret_len;
        const OwControlKeys *keys;
        const uint8_t *client_iv; /* OW_IV_SIZE octets */
} OwClientSetup;
int ow_engine_send_setup_response(OwEngine *e, const OwClientSetup *s);

/* Server, OW_ENGINE_START (after OW_EVENT_SETUP_RESPONSE), modes A and E:
 * derive the Token key from the secret of the key id and check the Token
 * against our challenge. 0, or -OW_ERR_TOKEN (wrong secret: refuse with
 * the Server-Start). Call it with a throw-away secret for an unknown key
 * id, so that the answer takes the same time. */
int ow_engine_server_authenticate(OwEngine *e, const void *secret, size_t secret_len);

/* Server, OW_ENGINE_START: the Server-Start. Accept 0 needs an
 * authenticated Token in modes A and E (-OW_ERR_TOKEN otherwise) and the
 * caller's Server-IV (ignored in open mode, where zeros go out), and
 * enters IDLE; any other Accept is a refusal, sent in clear (PROTOCOL.md
 * 3.4), and the engine is CLOSED. */
int ow_engine_send_server_start(OwEngine *e, OwAccept accept, const uint8_t *server_iv,
                                OwTimestamp start_time);

/* --- Commands and replies -------------------------------------------------- */

/* Client, IDLE: the commands. Replies come back as events in order; a
 * client may send several Request-Sessions (or Fetch-Sessions) before the
 * first answer, but nothing after a Start-Sessions until its Start-Ack. */
int ow_engine_send_request_session(OwEngine *e, const OwSessionRequest *req);
int ow_engine_send_start_sessions(OwEngine *e);
int ow_engine_send_fetch_session(OwEngine *e, const OwFetchSession *f);

/* Either role, TEST: our Stop-Sessions, once. */
int ow_engine_send_stop_sessions(OwEngine *e, const OwStopSessions *st);

/* TWAMP, client, IDLE: a Request-TW-Session (answered by an
 * OW_EVENT_ACCEPT_SESSION); TEST: the Stop-Sessions that ends the test at
 * once (the server sends none). On an engine of another protocol:
 * -OW_ERR_COMMAND, as the OWAMP calls on a TWAMP engine. */
int ow_engine_send_request_tw_session(OwEngine *e, const OwSessionRequest *req);
int ow_engine_send_tw_stop_sessions(OwEngine *e, const OwTwStopSessions *st);

/* Server: the reply the last command event waits for (the Accept-Session
 * answers a Request-Session or a Request-TW-Session). */
int ow_engine_send_accept_session(OwEngine *e, const OwAcceptSession *a);
int ow_engine_send_start_ack(OwEngine *e, OwAccept accept);

/*
 * Server: a fetch answer. The Fetch-Ack; with Accept 0, the parts follow in
 * order: the stored Request-Session, the skip ranges (ack->n_skip_ranges
 * of them, one call), then the records in as many calls as wanted (any n,
 * until ack->n_records have been sent; the engine pads and seals the part
 * when the last one is in, at once after the skips when there are none).
 * Until the answer is complete no other command is read.
 * ow_engine_fetch_records_left() says how many records are still due.
 */
int ow_engine_send_fetch_ack(OwEngine *e, const OwFetchAck *ack);
int ow_engine_send_fetch_request(OwEngine *e, const OwSessionRequest *req);
int ow_engine_send_fetch_skips(OwEngine *e, const OwSkipRange *ranges, uint32_t n);
int ow_engine_send_fetch_records(OwEngine *e, const OwRecord *records, uint32_t n);
uint32_t ow_engine_fetch_records_left(const OwEngine *e);

/* True when we wait for the peer: a client with a command unanswered (or a
 * fetch answer coming), either side with its Stop-Sessions sent and the
 * peer's not yet in. For the adapters' timeouts. */
bool ow_engine_awaiting_peer(const OwEngine *e);
