/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The control engine fed arbitrary octets, as a server or as a client.
 *
 * Input: a 66-octet header, then the peer's stream.
 *   [0]      bit 0: role (0 server, 1 client); bits 1-3: how the stream is
 *            cut into the pieces it arrives in; bit 4: the protocol (0
 *            OWAMP, 1 TWAMP: ow_protocol_twamp, its modes O, A, E, Mixed)
 *   [1]      client: the mode bit to pick when the greeting offers it
 *   [2..65]  server: challenge (16), salt (16), Server-IV (16), unused (16);
 *            client: AES key (16), HMAC key (32), Client-IV (16)
 * With the pass phrase "testsecret" (the captures'), a captured client
 * stream with the captured greeting's challenge and salt authenticates, and
 * a captured server stream with the captured session keys: the seeds go
 * all the way through a session and its fetch in every mode (the
 * twamp-* seeds: the TWAMP captures of test/data/twamp, through a
 * Request-TW-Session, Start-Sessions and the client's Stop-Sessions).
 *
 * Each side answers what it is asked like a real peer would (the server
 * accepts, starts, stops, and answers fetches with a few records; the
 * client requests two sessions, starts, stops and fetches), so the fuzzer
 * reaches every state. Besides memory safety it checks the engine's
 * contract: a failure is for good, with its error and a context; events
 * are known types; a closed engine produces nothing; the input stays
 * within its bound.
 *
 * Speed: a set-up in mode A or E derives its key with PBKDF2 (2,048
 * iterations of HMAC-SHA1, about a millisecond), which would make this the
 * slowest harness by far. The build links it with -Wl,--wrap=ow_pbkdf2 and
 * the wrapper below keeps the last few derivations: the same secret, salt
 * and count give the same key, so the engine sees exactly what the real
 * function returns, and a new salt or count still goes through it. The
 * client script also declines a greeting whose Count is beyond
 * MAX_CLIENT_COUNT (a real client may refuse one as well): a million
 * iterations would only burn time, not reach new code.
 */

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "ow-control-engine.h"
#include "ow-crypto.h"
#include "ow-error.h"

#define HEADER_SIZE 66
#define SECRET "testsecret"
#define MAX_CLIENT_COUNT (UINT32_C(1) << 14)
#define PBKDF2_CACHE_SIZE 16

int __real_ow_pbkdf2(const void *secret, size_t secret_len, const uint8_t salt[static OW_SALT_SIZE],
                     uint32_t count, uint8_t dk[static OW_DK_SIZE]);
int __wrap_ow_pbkdf2(const void *secret, size_t secret_len, const uint8_t salt[static OW_SALT_SIZE],
                     uint32_t count, uint8_t dk[static OW_DK_SIZE]);

/* The harness's own state (never the core's): derivations already made. */
static struct {
        uint8_t secret[64];
        size_t secret_len;
        uint8_t salt[OW_SALT_SIZE];
        uint32_t count;
        int r;
        uint8_t dk[OW_DK_SIZE];
} pbkdf2_cache[PBKDF2_CACHE_SIZE];
static size_t pbkdf2_cache_used, pbkdf2_cache_next;

int __wrap_ow_pbkdf2(const void *secret, size_t secret_len, const uint8_t salt[static OW_SALT_SIZE],
                     uint32_t count, uint8_t dk[static OW_DK_SIZE]) {
        size_t i;
        int r;

        for (i = 0; i < pbkdf2_cache_used; i++)
                if (pbkdf2_cache[i].count == count && pbkdf2_cache[i].secret_len == secret_len &&
                    memcmp(pbkdf2_cache[i].secret, secret, secret_len) == 0 &&
                    memcmp(pbkdf2_cache[i].salt, salt, OW_SALT_SIZE) == 0) {
                        if (pbkdf2_cache[i].r >= 0)
                                memcpy(dk, pbkdf2_cache[i].dk, OW_DK_SIZE);
                        return pbkdf2_cache[i].r;
                }
        r = __real_ow_pbkdf2(secret, secret_len, salt, count, dk);
        if (secret_len > sizeof(pbkdf2_cache[0].secret))
                return r;
        i = pbkdf2_cache_next;
        pbkdf2_cache_next = (pbkdf2_cache_next + 1) % PBKDF2_CACHE_SIZE;
        if (pbkdf2_cache_used < PBKDF2_CACHE_SIZE)
                pbkdf2_cache_used++;
        memcpy(pbkdf2_cache[i].secret, secret, secret_len);
        pbkdf2_cache[i].secret_len = secret_len;
        memcpy(pbkdf2_cache[i].salt, salt, OW_SALT_SIZE);
        pbkdf2_cache[i].count = count;
        pbkdf2_cache[i].r = r;
        if (r >= 0)
                memcpy(pbkdf2_cache[i].dk, dk, OW_DK_SIZE);
        return r;
}

static void check(bool ok) {
        if (!ok)
                abort();
}

static const OwSlot one_slot = { OW_SLOT_EXPONENTIAL, 0x0ccccccc };

/* What owping asks for with -c 10: one way or the other. */
static OwSessionRequest sample_request(bool conf_sender) {
        OwSessionRequest q = { .ipvn = 4,
                               .n_slots = 1,
                               .n_packets = 10,
                               .timeout = UINT64_C(2) << 32,
                               .slots = (OwSlot *) &one_slot };

        q.conf_sender = conf_sender;
        q.conf_receiver = !conf_sender;
        *(conf_sender ? &q.receiver_port : &q.sender_port) = conf_sender ? 8929 : 8920;
        q.sender_addr[0] = q.receiver_addr[0] = 127;
        q.sender_addr[3] = q.receiver_addr[3] = 1;
        return q;
}

/* The server's answers. */
static void server_answer(OwEngine *e, const OwEvent *ev, const uint8_t *hdr) {
        switch (ev->type) {
        case OW_EVENT_SETUP_RESPONSE: {
                uint32_t mode = ev->setup.mode;
                if (mode != OW_MODE_OPEN)
                        (void) ow_engine_server_authenticate(e, SECRET, strlen(SECRET));
                (void) ow_engine_send_server_start(e, OW_ACCEPT_OK, hdr + 34, 1);
                break;
        }
        case OW_EVENT_REQUEST_SESSION:
        case OW_EVENT_REQUEST_TW_SESSION: {
                OwAcceptSession a = { .accept = ev->error ? OW_ACCEPT_UNSUPPORTED : OW_ACCEPT_OK,
                                      .port = 8906 };
                check(ow_engine_send_accept_session(e, &a) == 0);
                break;
        }
        case OW_EVENT_START_SESSIONS:
                check(ow_engine_send_start_ack(e, OW_ACCEPT_OK) == 0);
                break;
        case OW_EVENT_TW_STOP_SESSIONS:
                check(ow_engine_state(e) == OW_ENGINE_IDLE); /* the client's alone ends the test */
                break;
        case OW_EVENT_STOP_SESSIONS:
                if (ow_engine_state(e) == OW_ENGINE_TEST)
                        check(ow_engine_send_stop_sessions(e, &(OwStopSessions){ .accept = OW_ACCEPT_OK }) ==
                              0);
                break;
        case OW_EVENT_FETCH_SESSION: {
                OwSessionRequest q = sample_request(false);
                OwSkipRange skip = { 2, 3 };
                OwRecord recs[3] = {};
                OwFetchAck ack = {
                        .accept = OW_ACCEPT_OK, .finished = 1, .n_skip_ranges = 1, .n_records = 3
                };

                if (ev->error) {
                        check(ow_engine_send_fetch_ack(
                                      e, &(OwFetchAck){ .accept = OW_ACCEPT_UNSUPPORTED }) == 0);
                        break;
                }
                for (uint32_t i = 0; i < 3; i++)
                        recs[i] = (OwRecord){ .seq = i, .send_err = 1, .recv_err = 1, .ttl = 255 };
                check(ow_engine_send_fetch_ack(e, &ack) == 0);
                check(ow_engine_send_fetch_request(e, &q) == 0);
                check(ow_engine_send_fetch_skips(e, &skip, 1) == 0);
                check(ow_engine_send_fetch_records(e, recs, 1) == 0);
                check(ow_engine_send_fetch_records(e, recs + 1, 2) == 0);
                check(ow_engine_fetch_records_left(e) == 0);
                break;
        }
        default:
                abort(); /* a server gets nothing else */
        }
}

/* The client's side of a session: two requests, start, stop, fetch (TWAMP:
 * one Request-TW-Session, start, stop). */
typedef struct ClientScript {
        bool twamp;
        unsigned accepts;
        bool stopped, fetched;
} ClientScript;

static void client_answer(OwEngine *e, const OwEvent *ev, const uint8_t *hdr, ClientScript *cs) {
        switch (ev->type) {
        case OW_EVENT_GREETING: {
                uint32_t mode =
                        hdr[1] & ev->greeting.modes & (cs->twamp ? OW_TWAMP_MODES_ALL : OW_MODES_ALL);
                OwControlKeys keys;

                if (mode & (mode - 1) || mode == 0)
                        mode = ow_modes_pick(ev->greeting.modes & OW_MODES_ALL);
                if (mode == 0 || (mode != OW_MODE_OPEN && ev->greeting.count > MAX_CLIENT_COUNT))
                        break;
                memcpy(keys.aes, hdr + 2, sizeof(keys.aes));
                memcpy(keys.hmac, hdr + 18, sizeof(keys.hmac));
                OwClientSetup s = { .mode = mode,
                                    .keyid = "testuser",
                                    .secret = SECRET,
                                    .secret_len = strlen(SECRET),
                                    .keys = &keys,
                                    .client_iv = hdr + 50 };
                check(ow_engine_send_setup_response(e, &s) == 0);
                break;
        }
        case OW_EVENT_SERVER_START:
                if (ev->server_start.accept != OW_ACCEPT_OK) {
                        check(ow_engine_state(e) == OW_ENGINE_CLOSED);
                        break;
                }
                if (cs->twamp) {
                        OwSessionRequest q = sample_request(false);

                        q.conf_receiver = false;
                        q.n_slots = q.n_packets = 0;
                        q.slots = NULL;
                        q.receiver_port = q.sender_port;
                        check(ow_engine_send_request_tw_session(e, &q) == 0);
                        break;
                }
                OwSessionRequest to = sample_request(false), from = sample_request(true);
                check(ow_engine_send_request_session(e, &to) == 0);
                check(ow_engine_send_request_session(e, &from) == 0);
                break;
        case OW_EVENT_ACCEPT_SESSION:
                if (++cs->accepts == (cs->twamp ? 1u : 2u))
                        check(ow_engine_send_start_sessions(e) == 0);
                break;
        case OW_EVENT_START_ACK:
                if (ev->accept == OW_ACCEPT_OK && cs->twamp) {
                        check(ow_engine_send_tw_stop_sessions(
                                      e, &(OwTwStopSessions){ .accept = OW_ACCEPT_OK, .n_sessions = 1 }) ==
                              0);
                        check(ow_engine_state(e) == OW_ENGINE_IDLE);
                        cs->stopped = cs->fetched = true; /* nothing to fetch in TWAMP */
                } else if (ev->accept == OW_ACCEPT_OK) {
                        OwStopSession s = { .next_seqno = 10 };
                        check(ow_engine_send_stop_sessions(e, &(OwStopSessions){ .accept = OW_ACCEPT_OK,
                                                                                 .n_sessions = 1,
                                                                                 .sessions = &s }) == 0);
                        cs->stopped = true;
                }
                break;
        case OW_EVENT_STOP_SESSIONS:
                break;
        case OW_EVENT_FETCH_ACK:
        case OW_EVENT_FETCH_REQUEST:
        case OW_EVENT_FETCH_SKIPS:
        case OW_EVENT_FETCH_RECORDS:
        case OW_EVENT_FETCH_DONE:
                break;
        default:
                abort(); /* a client gets nothing else */
        }
        /* Both Stop-Sessions crossed: fetch what the server received. */
        if (cs->stopped && !cs->fetched && ow_engine_state(e) == OW_ENGINE_IDLE) {
                check(ow_engine_send_fetch_session(e, &(OwFetchSession){ .end = UINT32_MAX }) == 0);
                cs->fetched = true;
        }
}

/* libFuzzer only. Each engine takes a 64 KiB input buffer; without ASan,
 * glibc would give it back to the kernel at every free and fault it in
 * again at the next input, a third of the harness's time. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        (void) mallopt(M_TRIM_THRESHOLD, 64 << 20);
        (void) mallopt(M_MMAP_THRESHOLD, 64 << 20);
        return 0;
}

/* Piece sizes the stream is cut into. */
static const size_t pieces[8] = { SIZE_MAX, 1, 7, 16, 17, 64, 500, 4096 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ClientScript script = {};
        const uint8_t *hdr = data;
        const OwProtocol *proto;
        OwControlRole role;
        OwEngine *e;
        size_t piece;

        if (size < HEADER_SIZE)
                return 0;
        role = (data[0] & 1) ? OW_CONTROL_CLIENT : OW_CONTROL_SERVER;
        piece = pieces[(data[0] >> 1) & 7];
        script.twamp = data[0] & 0x10;
        proto = script.twamp ? &ow_protocol_twamp : &ow_protocol_owamp;
        data += HEADER_SIZE;
        size -= HEADER_SIZE;

        if (ow_engine_new(proto, role, &e) < 0)
                return 0;
        if (role == OW_CONTROL_SERVER) {
                OwServerGreeting g = { .modes = ow_protocol_modes(proto), .count = 2048 };
                memcpy(g.challenge, hdr + 2, sizeof(g.challenge));
                memcpy(g.salt, hdr + 18, sizeof(g.salt));
                check(ow_engine_send_greeting(e, &g) == 0);
        }

        while (size > 0) {
                size_t n = MIN(piece, size);
                OwEvent ev;
                int r;

                if (ow_engine_feed(e, data, n) < 0)
                        break;
                check(ow_engine_input_pending(e) <= OW_ENGINE_MAX_INPUT);
                data += n;
                size -= n;

                while ((r = ow_engine_poll(e, &ev)) > 0) {
                        check(ev.type > OW_EVENT_NONE && ev.type < _OW_EVENT_MAX);
                        if (role == OW_CONTROL_SERVER)
                                server_answer(e, &ev, hdr);
                        else
                                client_answer(e, &ev, hdr, &script);
                        ow_event_done(&ev);
                }
                if (r < 0) {
                        /* For good, with its error and a context. */
                        check(ow_engine_state(e) == OW_ENGINE_FAILED);
                        check(ow_engine_error(e) == r);
                        check(ow_engine_error_context(e) != NULL);
                        check(ow_engine_poll(e, &ev) == r);
                        break;
                }
                if (ow_engine_state(e) == OW_ENGINE_CLOSED)
                        check(ow_engine_poll(e, &ev) == 0);

                /* The peer takes everything. */
                size_t out;
                (void) ow_engine_output(e, &out);
                ow_engine_output_done(e, out);
        }
        ow_engine_free(e);
        return 0;
}
