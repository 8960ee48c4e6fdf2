/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The control engine (ow-control-engine.h): one state machine for both
 * ends of an OWAMP-Control connection, driven by the protocol table.
 *
 * Input is kept in one buffer: [in_off, in_len) has not been consumed yet;
 * the first `opened` octets of it are the current message, decrypted and
 * fed to the receive HMAC. A message is consumed (wiped, in_off moves on)
 * once it is decoded, so a message arriving in pieces is opened block
 * group by block group and never twice. Output is one buffer too: octets
 * [out_off, out_len) are sealed and ready; the `out_unsealed` octets after
 * out_len are plaintext of a fetch's records part that does not fill a
 * block yet.
 */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-control-engine.h"
#include "ow-error.h"
#include "ow-wire.h"

/* Replies a client may be waiting for at once (pipelined commands). */
#define MAX_OUTSTANDING 64u

/* Room offered to a reader: FEED_CHUNK_MIN at first, doubled each time a
 * read fills all it was offered, up to FEED_CHUNK_MAX. A connection that
 * only ever sees the set-up and a few commands (or nothing: a server's
 * idle or hostile peers, thousands at once) keeps a buffer of a few
 * hundred octets; a fetch's stream of records gets the large one after a
 * few reads. */
#define FEED_CHUNK_MIN UINT32_C(512)
#define FEED_CHUNK_MAX (UINT32_C(64) << 10)
/* The smallest output buffer. */
#define OUT_CAP_MIN UINT32_C(512)

typedef enum FetchPhase {
        FETCH_NONE,
        FETCH_REQUEST, /* part 1: the stored Request-Session */
        FETCH_SKIPS,   /* part 2 */
        FETCH_RECORDS, /* part 3, streamed */
} FetchPhase;

struct OwEngine {
        const OwProtocol *proto;
        OwControlRole role;
        OwEngineState state;
        int error;
        const char *context;
        char context_buf[64];

        /* Set-up. */
        uint32_t modes_offered;
        uint8_t challenge[OW_CHALLENGE_SIZE];
        uint8_t salt[OW_SALT_SIZE];
        uint32_t count;
        const OwModeSpec *mode;
        uint8_t token[OW_TOKEN_SIZE]; /* server: the client's, until checked */
        uint8_t client_iv[OW_IV_SIZE];
        OwControlKeys keys;
        bool have_keys;
        OwChannel channel;

        /* Input. */
        uint8_t *in;
        size_t in_cap, in_off, in_len;
        size_t opened;
        size_t rd_total;   /* size of the message being read, 0 until known */
        size_t feed_chunk; /* room offered to the next read (FEED_CHUNK_MIN .. _MAX) */

        /* Output. */
        uint8_t *out;
        size_t out_cap, out_off, out_len, out_unsealed;

        /* Commands and replies. */
        const OwMessageSpec *awaited;                  /* server: the reply the peer waits for */
        const OwMessageSpec *pending[MAX_OUTSTANDING]; /* client: commands unanswered, oldest first */
        unsigned pending_head, n_pending;
        unsigned stops; /* OW_ROLE_BIT()s whose Stop-Sessions crossed in this test */

        /* A fetch answer, sent (server) or read (client). */
        FetchPhase fetch;
        uint32_t fetch_skips, fetch_records, records_done;
        size_t part_off;   /* client: octets of the records part consumed */
        int records_error; /* client: the first record that did not decode */
};

static const OwMessageSpec *const *find_command(const OwProtocol *p, uint8_t command) {
        for (size_t i = 0; i < p->n_commands; i++)
                if (p->commands[i]->command == command)
                        return &p->commands[i];
        return NULL;
}

const OwMessageSpec *ow_protocol_command(const OwProtocol *p, uint8_t command) {
        const OwMessageSpec *const *s;

        assert(p);
        s = find_command(p, command);
        return s ? *s : NULL;
}

uint32_t ow_protocol_modes(const OwProtocol *p) {
        uint32_t m = 0;

        assert(p);
        for (size_t i = 0; i < p->n_modes; i++)
                m |= p->modes[i].bit;
        return m;
}

const OwModeSpec *ow_protocol_mode(const OwProtocol *p, uint32_t bit) {
        assert(p);
        for (size_t i = 0; i < p->n_modes; i++)
                if (p->modes[i].bit == bit)
                        return &p->modes[i];
        return NULL;
}

void ow_event_done(OwEvent *ev) {
        if (!ev)
                return;
        switch (ev->type) {
        case OW_EVENT_REQUEST_SESSION:
        case OW_EVENT_REQUEST_TW_SESSION:
        case OW_EVENT_FETCH_REQUEST:
                ow_session_request_done(&ev->request);
                break;
        case OW_EVENT_STOP_SESSIONS:
                ow_stop_sessions_done(&ev->stop);
                break;
        case OW_EVENT_FETCH_SKIPS:
                free(ev->skips.ranges);
                break;
        case OW_EVENT_FETCH_RECORDS:
                free(ev->records.records);
                break;
        case OW_EVENT_SETUP_RESPONSE:
                ow_wipe(&ev->setup, sizeof(ev->setup));
                break;
        default:
                break;
        }
        *ev = (OwEvent){};
}

/* The input and output buffers may hold plaintext (in modes A and E,
 * what was opened or is not sealed yet): wiped before the allocator gets
 * them back, so never realloc()ed. */
static void buffer_free(uint8_t *buf, size_t cap) {
        if (!buf)
                return;
        ow_wipe(buf, cap);
        free(buf);
}

/* Moves the first len octets of *buf to a new block of new_cap. */
static int buffer_grow(uint8_t **buf, size_t *cap, size_t len, size_t new_cap) {
        uint8_t *b;

        assert(len <= *cap && new_cap > *cap);
        b = malloc(new_cap);
        if (!b)
                return -ENOMEM;
        if (*buf)
                memcpy(b, *buf, len);
        buffer_free(*buf, *cap);
        *buf = b;
        *cap = new_cap;
        return 0;
}

int ow_engine_new(const OwProtocol *p, OwControlRole role, OwEngine **ret) {
        OwEngine *e;

        if (!p || !ret || (role != OW_CONTROL_CLIENT && role != OW_CONTROL_SERVER))
                return -EINVAL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->proto = p;
        e->role = role;
        e->state = OW_ENGINE_GREETING;
        e->context = "";
        e->feed_chunk = FEED_CHUNK_MIN;
        *ret = e;
        return 0;
}

OwEngine *ow_engine_free(OwEngine *e) {
        if (!e)
                return NULL;
        buffer_free(e->in, e->in_cap);
        buffer_free(e->out, e->out_cap);
        ow_wipe(e, sizeof(*e));
        free(e);
        return NULL;
}

OwEngineState ow_engine_state(const OwEngine *e) {
        assert(e);
        return e->state;
}

OwControlRole ow_engine_role(const OwEngine *e) {
        assert(e);
        return e->role;
}

uint32_t ow_engine_mode(const OwEngine *e) {
        assert(e);
        return e->mode ? e->mode->bit : 0;
}

const OwControlKeys *ow_engine_keys(const OwEngine *e) {
        assert(e);
        return e->have_keys ? &e->keys : NULL;
}

int ow_engine_error(const OwEngine *e) {
        assert(e);
        return e->error;
}

const char *ow_engine_error_context(const OwEngine *e) {
        assert(e);
        return e->context;
}

static unsigned peer_bit(const OwEngine *e) {
        return OW_ROLE_BIT(e->role == OW_CONTROL_CLIENT ? OW_CONTROL_SERVER : OW_CONTROL_CLIENT);
}

/* Both ends keep what the greeting said: the key derivation needs it. */
static void remember_greeting(OwEngine *e, const OwServerGreeting *g) {
        e->modes_offered = g->modes;
        memcpy(e->challenge, g->challenge, sizeof(e->challenge));
        memcpy(e->salt, g->salt, sizeof(e->salt));
        e->count = g->count;
        /* Modes 0 is a refusal: nothing more either way (RFC 4656 3.1). */
        e->state = g->modes == 0 ? OW_ENGINE_CLOSED : OW_ENGINE_SETUP;
}

static int fail(OwEngine *e, int error, const char *context) {
        assert(error < 0);
        e->state = OW_ENGINE_FAILED;
        e->error = error;
        e->context = context;
        return error;
}

/* "bad <name>": the message was read whole, and its decoder refused it. */
static int fail_bad(OwEngine *e, int error, const OwMessageSpec *spec) {
        (void) snprintf(e->context_buf, sizeof(e->context_buf), "bad %s", spec->name);
        return fail(e, error, e->context_buf);
}

/* --- Input ----------------------------------------------------------------- */

uint8_t *ow_engine_feed_buffer(OwEngine *e, size_t *ret_space) {
        size_t want;

        assert(e);
        assert(ret_space);
        *ret_space = 0;

        /* Consumed octets go; what is left moves to the front. */
        if (e->in_off > 0) {
                memmove(e->in, e->in + e->in_off, e->in_len - e->in_off);
                ow_wipe(e->in + e->in_len - e->in_off, e->in_off);
                e->in_len -= e->in_off;
                e->in_off = 0;
        }
        if (e->in_len >= OW_ENGINE_MAX_INPUT)
                return NULL;
        want = MIN(e->in_len + e->feed_chunk, (size_t) OW_ENGINE_MAX_INPUT);
        if (want > e->in_cap) {
                size_t cap = MIN(MAX(e->in_cap * 2, want), (size_t) OW_ENGINE_MAX_INPUT);

                if (buffer_grow(&e->in, &e->in_cap, e->in_len, cap) < 0)
                        return NULL;
        }
        *ret_space = e->in_cap - e->in_len;
        return e->in + e->in_len;
}

int ow_engine_feed_commit(OwEngine *e, size_t n) {
        assert(e);
        if (n > e->in_cap - e->in_len)
                return -EINVAL;
        /* All the room was used: more is probably coming. */
        if (n > 0 && n == e->in_cap - e->in_len && e->feed_chunk < FEED_CHUNK_MAX)
                e->feed_chunk *= 2;
        e->in_len += n;
        return 0;
}

int ow_engine_feed(OwEngine *e, const void *data, size_t len) {
        assert(e);
        assert(data || len == 0);
        while (len > 0) {
                size_t space, n;
                uint8_t *p = ow_engine_feed_buffer(e, &space);

                if (!p)
                        return e->in_len >= OW_ENGINE_MAX_INPUT ? -ENOBUFS : -ENOMEM;
                n = MIN(space, len);
                memcpy(p, data, n);
                e->in_len += n;
                data = (const uint8_t *) data + n;
                len -= n;
        }
        return 0;
}

size_t ow_engine_input_pending(const OwEngine *e) {
        assert(e);
        return e->in_len - e->in_off;
}

static size_t avail(const OwEngine *e) {
        return e->in_len - e->in_off;
}

static uint8_t *msg(OwEngine *e) {
        return e->in + e->in_off;
}

/* Drop n octets of plaintext at the front: wiped, never left behind. */
static void consume(OwEngine *e, size_t n) {
        assert(n <= avail(e));
        ow_wipe(e->in + e->in_off, n);
        e->in_off += n;
        e->opened = n <= e->opened ? e->opened - n : 0;
}

static void message_done(OwEngine *e, size_t total) {
        consume(e, total);
        e->opened = 0;
        e->rd_total = 0;
}

/* Open the current message up to `upto` octets (whole blocks, all there),
 * the blocks ending at hmac1 and hmac2 (0: none) checked as HMAC blocks. */
static int open_to(OwEngine *e, size_t upto, size_t hmac1, size_t hmac2) {
        assert(upto % OW_BLOCK_SIZE == 0);
        assert(upto <= avail(e));
        while (e->opened < upto) {
                size_t end = upto;
                bool mac = false;
                int r;

                if (hmac1 > e->opened && hmac1 <= end) {
                        end = hmac1;
                        mac = true;
                } else if (hmac2 > e->opened && hmac2 <= end) {
                        end = hmac2;
                        mac = true;
                }
                r = ow_channel_open(&e->channel, msg(e) + e->opened, end - e->opened, mac);
                if (r < 0)
                        return r;
                e->opened = end;
        }
        return 0;
}

/*
 * Read one message of `spec` whose first block may already be open: 1 once
 * all of it is there and open (its size in *ret_total), 0 for more input,
 * or a protocol error (the engine failed).
 */
static int read_message(OwEngine *e, const OwMessageSpec *spec, size_t *ret_total) {
        int r;

        while (e->rd_total == 0) {
                size_t need;

                if (!spec->size_of) {
                        e->rd_total = spec->size;
                        break;
                }
                r = spec->size_of(msg(e), e->opened, &need);
                if (r < 0)
                        return fail(e, r, spec->name);
                if (r == 0) {
                        if (need < e->opened || need % OW_BLOCK_SIZE != 0)
                                return fail(e, -OW_ERR_TRUNCATED, spec->name);
                        e->rd_total = need;
                        break;
                }
                /* Below `need` there is no HMAC block (size_of's contract). */
                if (need <= e->opened || need % OW_BLOCK_SIZE != 0)
                        return fail(e, -OW_ERR_TRUNCATED, spec->name);
                if (avail(e) < need)
                        return 0;
                r = open_to(e, need, 0, 0);
                if (r < 0)
                        return fail(e, r, spec->name);
        }

        if (avail(e) < e->rd_total)
                return 0;
        r = open_to(e, e->rd_total, spec->inner_hmac_end < e->rd_total ? spec->inner_hmac_end : 0,
                    e->rd_total);
        if (r < 0)
                return fail(e, r, spec->name);
        *ret_total = e->rd_total;
        return 1;
}

/* --- Output ---------------------------------------------------------------- */

/* Room for n more octets after the sealed and unsealed ones. */
static uint8_t *out_reserve(OwEngine *e, size_t n) {
        size_t used;

        if (e->out_off > 0 && e->out_off == e->out_len) {
                memmove(e->out, e->out + e->out_off, e->out_unsealed);
                e->out_len = e->out_off = 0;
        }
        used = e->out_len + e->out_unsealed;
        if (n > SIZE_MAX - used)
                return NULL;
        if (used + n > e->out_cap) {
                if (e->out_off > 0) {
                        memmove(e->out, e->out + e->out_off, used - e->out_off);
                        e->out_len -= e->out_off;
                        used -= e->out_off;
                        e->out_off = 0;
                }
                if (used + n > e->out_cap) {
                        size_t cap = MAX(MAX(e->out_cap * 2, used + n), (size_t) OUT_CAP_MIN);

                        if (buffer_grow(&e->out, &e->out_cap, used, cap) < 0)
                                return NULL;
                }
        }
        return e->out + used;
}

const uint8_t *ow_engine_output(const OwEngine *e, size_t *ret_len) {
        assert(e);
        assert(ret_len);
        *ret_len = e->out_len - e->out_off;
        return e->out ? e->out + e->out_off : NULL;
}

void ow_engine_output_done(OwEngine *e, size_t n) {
        assert(e);
        assert(n <= e->out_len - e->out_off);
        e->out_off += n;
}

size_t ow_engine_output_pending(const OwEngine *e) {
        assert(e);
        return e->out_len - e->out_off;
}

void ow_engine_release_buffers(OwEngine *e) {
        assert(e);
        if (e->in && e->in_off == e->in_len && e->opened == 0 && e->rd_total == 0) {
                buffer_free(e->in, e->in_cap);
                e->in = NULL;
                e->in_cap = e->in_off = e->in_len = 0;
                e->feed_chunk = FEED_CHUNK_MIN;
        }
        if (e->out && e->out_off == e->out_len && e->out_unsealed == 0) {
                buffer_free(e->out, e->out_cap);
                e->out = NULL;
                e->out_cap = e->out_off = e->out_len = 0;
        }
}

/* Seal n octets just reserved (unsealed ones must not be pending) with the
 * HMAC blocks ending at inner (if any) and at n. */
static int seal_message(OwEngine *e, uint8_t *p, size_t n, size_t inner) {
        int r;

        assert(e->out_unsealed == 0);
        if (inner > 0 && inner < n) {
                r = ow_channel_seal(&e->channel, p, inner, true);
                if (r < 0)
                        return r;
                r = ow_channel_seal(&e->channel, p + inner, n - inner, true);
        } else
                r = ow_channel_seal(&e->channel, p, n, true);
        if (r < 0)
                return r;
        e->out_len += n;
        return 0;
}

/* Encode and seal one message of spec. Nothing is queued on failure. */
static int write_message(OwEngine *e, const OwMessageSpec *spec, const void *m) {
        size_t size = spec->size;
        uint8_t *p;
        int r;

        if (spec->encoded_size) {
                r = spec->encoded_size(m, &size);
                if (r < 0)
                        return r;
        }
        p = out_reserve(e, size);
        if (!p)
                return -ENOMEM;
        r = spec->encode(m, p, size);
        if (r < 0)
                return r;
        assert((size_t) r == size);
        return seal_message(e, p, size, spec->inner_hmac_end);
}

static int append_clear(OwEngine *e, const uint8_t *buf, size_t n) {
        uint8_t *p = out_reserve(e, n);

        if (!p)
                return -ENOMEM;
        memcpy(p, buf, n);
        e->out_len += n;
        return 0;
}

/* --- Set-up ---------------------------------------------------------------- */

int ow_engine_send_greeting(OwEngine *e, const OwServerGreeting *g) {
        uint8_t buf[OW_SERVER_GREETING_SIZE];
        int r;

        assert(e);
        assert(g);
        if (e->role != OW_CONTROL_SERVER || e->state != OW_ENGINE_GREETING)
                return -OW_ERR_STATE;
        if (g->modes & ~ow_protocol_modes(e->proto))
                return -OW_ERR_MODE;
        r = ow_server_greeting_encode_modes(g, ow_protocol_modes(e->proto), buf, sizeof(buf));
        if (r < 0)
                return r;
        r = append_clear(e, buf, sizeof(buf));
        if (r < 0)
                return r;
        remember_greeting(e, g);
        return 0;
}

int ow_engine_send_setup_response(OwEngine *e, const OwClientSetup *s) {
        uint8_t buf[OW_SETUP_RESPONSE_SIZE];
        OwSetupResponse sr = {};
        const OwModeSpec *mode;
        int r;

        assert(e);
        assert(s);
        if (e->role != OW_CONTROL_CLIENT || e->state != OW_ENGINE_SETUP)
                return -OW_ERR_STATE;
        mode = ow_protocol_mode(e->proto, s->mode);
        if (!mode || !(e->modes_offered & s->mode))
                return -OW_ERR_MODE;

        sr.mode = s->mode;
        if (mode->channel != OW_MODE_OPEN) {
                uint8_t dk[OW_DK_SIZE];

                if (!s->keys || !s->client_iv)
                        return -EINVAL;
                r = ow_keyid_check(s->keyid);
                if (r < 0)
                        return r;
                r = ow_pbkdf2(s->secret, s->secret_len, e->salt, e->count, dk);
                if (r >= 0)
                        r = ow_token_encrypt(dk, e->challenge, s->keys, sr.token);
                ow_wipe(dk, sizeof(dk));
                if (r < 0)
                        return r;
                memcpy(sr.keyid, s->keyid, strlen(s->keyid));
                memcpy(sr.client_iv, s->client_iv, OW_IV_SIZE);
        }
        r = ow_setup_response_encode_modes(&sr, ow_protocol_modes(e->proto), buf, sizeof(buf));
        ow_wipe(&sr, sizeof(sr));
        if (r >= 0)
                r = append_clear(e, buf, sizeof(buf));
        if (r < 0)
                return r;

        e->mode = mode;
        if (mode->channel != OW_MODE_OPEN) {
                e->keys = *s->keys;
                e->have_keys = true;
                memcpy(e->client_iv, s->client_iv, OW_IV_SIZE);
        }
        e->state = OW_ENGINE_START;
        return 0;
}

int ow_engine_server_authenticate(OwEngine *e, const void *secret, size_t secret_len) {
        uint8_t dk[OW_DK_SIZE];
        OwControlKeys keys;
        int r;

        assert(e);
        if (e->role != OW_CONTROL_SERVER || e->state != OW_ENGINE_START || !e->mode ||
            e->mode->channel == OW_MODE_OPEN)
                return -OW_ERR_STATE;
        r = ow_pbkdf2(secret, secret_len, e->salt, e->count, dk);
        if (r >= 0)
                r = ow_token_decrypt(dk, e->token, e->challenge, &keys);
        ow_wipe(dk, sizeof(dk));
        if (r < 0)
                return r;
        e->keys = keys;
        e->have_keys = true;
        ow_wipe(&keys, sizeof(keys));
        return 0;
}

int ow_engine_send_server_start(OwEngine *e, OwAccept accept, const uint8_t *server_iv,
                                OwTimestamp start_time) {
        OwServerStart ss = { .accept = accept, .start_time = start_time };
        uint8_t buf[OW_SERVER_START_SIZE];
        bool secure;
        int r;

        assert(e);
        if (e->role != OW_CONTROL_SERVER || e->state != OW_ENGINE_START)
                return -OW_ERR_STATE;
        secure = e->mode->channel != OW_MODE_OPEN;
        if (accept == OW_ACCEPT_OK) {
                if (!(e->modes_offered & e->mode->bit))
                        return -OW_ERR_MODE;
                if (secure && !e->have_keys)
                        return -OW_ERR_TOKEN;
                if (secure && !server_iv)
                        return -EINVAL;
                if (secure)
                        memcpy(ss.server_iv, server_iv, OW_IV_SIZE);
        }
        r = ow_server_start_encode(&ss, buf, sizeof(buf));
        if (r < 0)
                return r;

        if (accept != OW_ACCEPT_OK) {
                /* Refused: octets 32..47 go out as clear zeros (PROTOCOL.md 3.4). */
                memset(buf + OW_SERVER_START_CLEAR_SIZE, 0,
                       OW_SERVER_START_SIZE - OW_SERVER_START_CLEAR_SIZE);
                r = append_clear(e, buf, sizeof(buf));
                if (r < 0)
                        return r;
                e->state = OW_ENGINE_CLOSED;
                return 0;
        }

        r = ow_channel_init(&e->channel, e->mode->channel, OW_CONTROL_SERVER, &e->keys, e->client_iv,
                            ss.server_iv);
        if (r < 0)
                return r;
        /* The last block is the first of the server's chain. */
        r = ow_channel_seal(&e->channel, buf + OW_SERVER_START_CLEAR_SIZE,
                            OW_SERVER_START_SIZE - OW_SERVER_START_CLEAR_SIZE, false);
        if (r >= 0)
                r = append_clear(e, buf, sizeof(buf));
        if (r < 0)
                return r;
        ow_wipe(e->token, sizeof(e->token));
        e->state = OW_ENGINE_IDLE;
        return 0;
}

/* A clear message of the set-up, whole: copied out (and consumed), 1; or 0
 * for more input. */
static int take_clear(OwEngine *e, uint8_t *buf, size_t size) {
        if (avail(e) < size)
                return 0;
        memcpy(buf, msg(e), size);
        message_done(e, size);
        return 1;
}

/*
 * The clear message the peer opens the set-up with: the greeting (for a
 * client), the Set-Up-Response (for a server).
 */
static int poll_setup_message(OwEngine *e, OwEvent *ret) {
        bool client = e->role == OW_CONTROL_CLIENT;
        uint8_t buf[MAX(OW_SERVER_GREETING_SIZE, OW_SETUP_RESPONSE_SIZE)];
        OwServerGreeting g;
        OwSetupResponse sr;
        int r = take_clear(e, buf, client ? OW_SERVER_GREETING_SIZE : OW_SETUP_RESPONSE_SIZE);

        if (r <= 0)
                return r;
        if (client) {
                r = ow_server_greeting_decode(buf, OW_SERVER_GREETING_SIZE, &g);
                if (r < 0)
                        return fail(e, r, "bad Server Greeting");
                remember_greeting(e, &g);
                *ret = (OwEvent){ .type = OW_EVENT_GREETING, .greeting = g };
                return 1;
        }

        r = ow_setup_response_decode_modes(buf, OW_SETUP_RESPONSE_SIZE, ow_protocol_modes(e->proto), &sr);
        ow_wipe(buf, sizeof(buf)); /* the Token */
        if (r < 0)
                return fail(e, r, "bad Set-Up-Response");
        e->mode = ow_protocol_mode(e->proto, sr.mode);
        memcpy(e->token, sr.token, sizeof(e->token));
        memcpy(e->client_iv, sr.client_iv, sizeof(e->client_iv));
        ow_wipe(sr.token, sizeof(sr.token));
        e->state = OW_ENGINE_START;
        *ret = (OwEvent){ .type = OW_EVENT_SETUP_RESPONSE, .setup = sr };
        ow_wipe(&sr, sizeof(sr));
        return 1;
}

/* Client: the Server-Start, 32 clear octets and, when accepted, one block
 * of the server's chain. */
static int poll_server_start(OwEngine *e, OwEvent *ret) {
        OwServerStart ss;
        uint8_t accept;
        int r;

        if (avail(e) < OW_SERVER_START_CLEAR_SIZE)
                return 0;
        accept = msg(e)[15];
        if (accept > _OW_ACCEPT_MAX)
                return fail(e, -OW_ERR_ACCEPT, "bad Server-Start");
        if (accept != OW_ACCEPT_OK) {
                /* Whatever follows is not in a chain; nothing more counts. */
                ss = (OwServerStart){ .accept = accept };
                memcpy(ss.server_iv, msg(e) + 16, OW_IV_SIZE);
                message_done(e, OW_SERVER_START_CLEAR_SIZE);
                e->state = OW_ENGINE_CLOSED;
                *ret = (OwEvent){ .type = OW_EVENT_SERVER_START, .server_start = ss };
                return 1;
        }
        if (avail(e) < OW_SERVER_START_SIZE)
                return 0;
        r = ow_channel_init(&e->channel, e->mode->channel, OW_CONTROL_CLIENT, &e->keys, e->client_iv,
                            msg(e) + 16);
        if (r < 0)
                return fail(e, r, "Server-Start");
        e->opened = OW_SERVER_START_CLEAR_SIZE; /* clear: nothing to open */
        r = open_to(e, OW_SERVER_START_SIZE, 0, 0);
        if (r >= 0)
                r = ow_server_start_decode(msg(e), OW_SERVER_START_SIZE, &ss);
        message_done(e, OW_SERVER_START_SIZE);
        if (r < 0)
                return fail(e, r, "bad Server-Start");
        e->state = OW_ENGINE_IDLE;
        *ret = (OwEvent){ .type = OW_EVENT_SERVER_START, .server_start = ss };
        return 1;
}

/* --- Commands -------------------------------------------------------------- */

static bool test_over(const OwEngine *e, const OwMessageSpec *stop) {
        return (e->stops & stop->senders) == stop->senders;
}

static void stop_crossed(OwEngine *e, const OwMessageSpec *spec, unsigned who) {
        e->stops |= who;
        if (test_over(e, spec)) {
                e->stops = 0;
                e->state = OW_ENGINE_IDLE;
        }
}

/* The first block of a command, which tells which: open once, 1 when
 * there; 0 for more input. (Opening without an HMAC cannot fail.) */
static int first_block(OwEngine *e) {
        if (avail(e) < OW_BLOCK_SIZE)
                return 0;
        if (e->opened == 0 && open_to(e, OW_BLOCK_SIZE, 0, 0) < 0)
                assert_not_reached();
        return 1;
}

/* One whole message of spec's, decoded into *ev (its type set) and
 * consumed: 1 with the decoder's result in *ret_decoded; 0 while octets
 * are missing, or the read's error. */
static int take_message(OwEngine *e, const OwMessageSpec *spec, OwEvent *ev, int *ret_decoded) {
        size_t total;
        int r;

        r = read_message(e, spec, &total);
        if (r <= 0)
                return r;
        *ev = (OwEvent){ .type = spec->event };
        *ret_decoded = spec->decode(msg(e), total, ev);
        message_done(e, total);
        return 1;
}

/* A command from the peer: its first block tells which. */
static int poll_command(OwEngine *e, OwEvent *ret) {
        const OwMessageSpec *spec;
        OwEvent ev;
        int r, d;

        if (!first_block(e))
                return 0;
        spec = ow_protocol_command(e->proto, msg(e)[0]);
        if (!spec || !(spec->senders & peer_bit(e)))
                return fail(e, -OW_ERR_COMMAND, "unknown command");
        if (!(spec->states & OW_ENGINE_STATE_BIT(e->state)) ||
            ((spec->flags & OW_MSG_ENDS_TEST) && (e->stops & peer_bit(e)))) {
                const char *why = e->state == OW_ENGINE_TEST && e->proto->test_context &&
                                                  !(spec->states & OW_ENGINE_STATE_BIT(OW_ENGINE_TEST))
                                          ? e->proto->test_context
                                          : spec->refused_context;
                return fail(e, -OW_ERR_STATE, why ? why : spec->name);
        }

        r = take_message(e, spec, &ev, &d);
        if (r <= 0)
                return r;
        if (d == -ENOMEM)
                return fail(e, d, spec->name);
        if (d < 0) {
                /* Read whole and authenticated: when the peer waits for an
                 * answer, it can be a refusal, and the stream stays in step. */
                if (!spec->reply || !ow_is_owerror(d))
                        return fail_bad(e, d, spec);
                ev = (OwEvent){ .type = spec->event, .error = d };
        }

        if (spec->reply)
                e->awaited = spec->reply;
        if (spec->flags & OW_MSG_ENDS_TEST)
                stop_crossed(e, spec, peer_bit(e));
        *ret = ev;
        return 1;
}

/* Client: the reply to the oldest command. */
static int poll_reply(OwEngine *e, OwEvent *ret) {
        const OwMessageSpec *spec = e->pending[e->pending_head]->reply;
        OwEvent ev;
        int r, d;

        r = take_message(e, spec, &ev, &d);
        if (r <= 0)
                return r;
        if (d < 0)
                return fail_bad(e, d, spec);

        e->pending_head = (e->pending_head + 1) % MAX_OUTSTANDING;
        e->n_pending--;
        if ((spec->flags & OW_MSG_STARTS_TEST) && ev.accept == OW_ACCEPT_OK) {
                e->state = OW_ENGINE_TEST;
                e->stops = 0;
        }
        if ((spec->flags & OW_MSG_FETCH_PARTS) && ev.fetch_ack.accept == OW_ACCEPT_OK) {
                e->fetch = FETCH_REQUEST;
                e->fetch_skips = ev.fetch_ack.n_skip_ranges;
                e->fetch_records = ev.fetch_ack.n_records;
                e->records_done = 0;
                e->part_off = 0;
                e->records_error = 0;
        }
        *ret = ev;
        return 1;
}

/* A fetch part read whole and decoded (with r): consumed, and the next
 * part is due; 1, or the decoder's error fails the engine. */
static int fetch_part_done(OwEngine *e, int r, size_t total, FetchPhase next, const char *context) {
        message_done(e, total);
        if (r < 0)
                return fail(e, r, context);
        e->fetch = next;
        return 1;
}

/* Client: part 1 of a fetch, a Request-Session. */
static int poll_fetch_request(OwEngine *e, OwEvent *ret) {
        const OwMessageSpec *spec = e->proto->fetch_request;
        OwEvent ev = { .type = OW_EVENT_FETCH_REQUEST };
        size_t total;
        int r;

        if (!first_block(e))
                return 0;
        if (msg(e)[0] != spec->command)
                return fail(e, -OW_ERR_COMMAND, "bad fetched Request-Session");
        r = read_message(e, spec, &total);
        if (r <= 0)
                return r;
        r = fetch_part_done(e, ow_request_session_decode(msg(e), total, &ev.request), total, FETCH_SKIPS,
                            "bad fetched Request-Session");
        if (r > 0)
                *ret = ev;
        return r;
}

/* Client: part 2, the skip ranges, whole. */
static int poll_fetch_skips(OwEngine *e, OwEvent *ret) {
        _cleanup_free_ OwSkipRange *ranges = NULL;
        size_t total;
        int r;

        r = ow_fetch_skips_size(e->fetch_skips, &total);
        if (r < 0)
                return fail(e, r, "skip ranges");
        if (avail(e) < total)
                return 0;
        r = open_to(e, total, total, 0);
        if (r < 0)
                return fail(e, r, "skip ranges");
        if (e->fetch_skips > 0) {
                ranges = calloc(e->fetch_skips, sizeof(OwSkipRange));
                if (!ranges)
                        return fail(e, -ENOMEM, "skip ranges");
        }
        r = fetch_part_done(e, ow_fetch_skips_decode(msg(e), total, e->fetch_skips, ranges), total,
                            FETCH_RECORDS, "bad skip ranges");
        if (r > 0)
                *ret = (OwEvent){ .type = OW_EVENT_FETCH_SKIPS,
                                  .skips = { TAKE_PTR(ranges), e->fetch_skips } };
        return r;
}

/*
 * Client: part 3, the records, as they come: whole blocks are opened as
 * they arrive, whole records decoded from them in batches. A record that
 * does not decode stops the batches, but the part is still read to its
 * HMAC, which is checked first: a tampered stream is an HMAC error, as
 * when the part was read whole.
 */
static int poll_fetch_records(OwEngine *e, OwEvent *ret) {
        size_t body = ALIGN_TO((size_t) e->fetch_records * OW_RECORD_SIZE, OW_BLOCK_SIZE);
        size_t data = (size_t) e->fetch_records * OW_RECORD_SIZE;
        int r;

        for (;;) {
                size_t at = e->part_off + e->opened, can;

                /* Open what arrived of the body, in whole blocks. */
                assert(at % OW_BLOCK_SIZE == 0);
                can = MIN(avail(e) - e->opened, body - MIN(at, body));
                can -= can % OW_BLOCK_SIZE;
                if (can > 0) {
                        r = ow_channel_open(&e->channel, msg(e) + e->opened, can, false);
                        if (r < 0)
                                return fail(e, r, "records");
                        e->opened += can;
                }

                /* Whole records in the opened plaintext. */
                uint32_t k = (uint32_t) MIN(e->opened / OW_RECORD_SIZE,
                                            (size_t) (e->fetch_records - e->records_done));
                k = MIN(k, OW_ENGINE_RECORD_BATCH);
                if (k > 0 && e->records_error == 0) {
                        _cleanup_free_ OwRecord *recs = malloc((size_t) k * sizeof(OwRecord));

                        if (!recs)
                                return fail(e, -ENOMEM, "records");
                        r = 0;
                        for (uint32_t i = 0; i < k && r >= 0; i++)
                                r = ow_record_decode(msg(e) + (size_t) i * OW_RECORD_SIZE, &recs[i]);
                        e->records_done += k;
                        e->part_off += (size_t) k * OW_RECORD_SIZE;
                        consume(e, (size_t) k * OW_RECORD_SIZE);
                        if (r < 0)
                                e->records_error = r;
                        else {
                                *ret = (OwEvent){ .type = OW_EVENT_FETCH_RECORDS,
                                                  .records = { TAKE_PTR(recs), k } };
                                return 1;
                        }
                        continue;
                }
                if (e->records_error != 0 && e->opened > 0) {
                        /* Skip the rest of the body, opened (for the HMAC) but unread. */
                        e->part_off += e->opened;
                        consume(e, e->opened);
                        continue;
                }
                /* The padding after the last record. */
                if (e->part_off >= data && e->part_off + e->opened == body && e->opened > 0) {
                        e->part_off = body;
                        consume(e, e->opened);
                }
                if (e->part_off + e->opened < body)
                        return 0;

                /* The HMAC block. */
                assert(e->part_off == body && e->opened == 0);
                if (avail(e) < OW_HMAC_SIZE)
                        return 0;
                r = ow_channel_open(&e->channel, msg(e), OW_HMAC_SIZE, true);
                message_done(e, OW_HMAC_SIZE);
                if (r < 0)
                        return fail(e, r, "records");
                if (e->records_error != 0)
                        return fail(e, e->records_error, "bad records");
                e->fetch = FETCH_NONE;
                *ret = (OwEvent){ .type = OW_EVENT_FETCH_DONE };
                return 1;
        }
}

int ow_engine_poll(OwEngine *e, OwEvent *ret) {
        assert(e);
        assert(ret);

        switch (e->state) {
        case OW_ENGINE_FAILED:
                return e->error;
        case OW_ENGINE_CLOSED:
                return 0;
        case OW_ENGINE_GREETING:
                return e->role == OW_CONTROL_CLIENT ? poll_setup_message(e, ret) : 0;
        case OW_ENGINE_SETUP:
                return e->role == OW_CONTROL_SERVER ? poll_setup_message(e, ret) : 0;
        case OW_ENGINE_START:
                return e->role == OW_CONTROL_CLIENT ? poll_server_start(e, ret) : 0;
        case OW_ENGINE_IDLE:
        case OW_ENGINE_TEST:
                break;
        default:
                assert_not_reached();
        }

        if (e->role == OW_CONTROL_SERVER)
                return e->awaited ? 0 : poll_command(e, ret);

        switch (e->fetch) {
        case FETCH_REQUEST:
                return poll_fetch_request(e, ret);
        case FETCH_SKIPS:
                return poll_fetch_skips(e, ret);
        case FETCH_RECORDS:
                return poll_fetch_records(e, ret);
        case FETCH_NONE:
                break;
        }
        if (e->n_pending > 0)
                return poll_reply(e, ret);
        /* Unasked, the server may only send its Stop-Sessions in a test;
         * anything else waits until we ask (and then fails the reply). */
        return e->state == OW_ENGINE_TEST ? poll_command(e, ret) : 0;
}

/* --- Sending commands and replies ------------------------------------------ */

/* May we send spec now? */
static int check_send(const OwEngine *e, const OwMessageSpec *spec) {
        if (!(spec->senders & OW_ROLE_BIT(e->role)) || !(spec->states & OW_ENGINE_STATE_BIT(e->state)))
                return -OW_ERR_STATE;
        if ((spec->flags & OW_MSG_ENDS_TEST) && (e->stops & OW_ROLE_BIT(e->role)))
                return -OW_ERR_STATE;
        if (e->role == OW_CONTROL_CLIENT) {
                /* Replies, and a fetch answer's parts, come in order: a
                 * command may follow another unanswered, unless that one
                 * changes what may be sent (Start-Sessions). */
                if (e->n_pending > 0 &&
                    (e->pending[(e->pending_head + e->n_pending - 1) % MAX_OUTSTANDING]->flags &
                     OW_MSG_NO_PIPELINE))
                        return -OW_ERR_STATE;
                if (spec->reply && e->n_pending >= MAX_OUTSTANDING)
                        return -EBUSY;
        } else if (e->awaited)
                return -OW_ERR_STATE; /* answer first */
        return 0;
}

/* The command of that number, which must make that event at the peer (the
 * message type m is): a Stop-Sessions is OWAMP's or TWAMP's by its event. */
static int send_command(OwEngine *e, uint8_t command, OwEventType event, const void *m) {
        const OwMessageSpec *spec = ow_protocol_command(e->proto, command);
        int r;

        if (!spec || spec->event != event)
                return -OW_ERR_COMMAND;
        r = check_send(e, spec);
        if (r >= 0)
                r = write_message(e, spec, m);
        if (r < 0)
                return r;
        if (spec->reply && e->role == OW_CONTROL_CLIENT) {
                e->pending[(e->pending_head + e->n_pending) % MAX_OUTSTANDING] = spec;
                e->n_pending++;
        }
        if (spec->flags & OW_MSG_ENDS_TEST)
                stop_crossed(e, spec, OW_ROLE_BIT(e->role));
        return 0;
}

int ow_engine_send_request_session(OwEngine *e, const OwSessionRequest *req) {
        assert(e);
        assert(req);
        return send_command(e, OW_CMD_REQUEST_SESSION, OW_EVENT_REQUEST_SESSION, req);
}

int ow_engine_send_start_sessions(OwEngine *e) {
        assert(e);
        return send_command(e, OW_CMD_START_SESSIONS, OW_EVENT_START_SESSIONS, NULL);
}

int ow_engine_send_fetch_session(OwEngine *e, const OwFetchSession *f) {
        assert(e);
        assert(f);
        return send_command(e, OW_CMD_FETCH_SESSION, OW_EVENT_FETCH_SESSION, f);
}

int ow_engine_send_stop_sessions(OwEngine *e, const OwStopSessions *st) {
        assert(e);
        assert(st);
        return send_command(e, OW_CMD_STOP_SESSIONS, OW_EVENT_STOP_SESSIONS, st);
}

int ow_engine_send_request_tw_session(OwEngine *e, const OwSessionRequest *req) {
        assert(e);
        assert(req);
        return send_command(e, OW_CMD_REQUEST_TW_SESSION, OW_EVENT_REQUEST_TW_SESSION, req);
}

int ow_engine_send_tw_stop_sessions(OwEngine *e, const OwTwStopSessions *st) {
        assert(e);
        assert(st);
        return send_command(e, OW_CMD_STOP_SESSIONS, OW_EVENT_TW_STOP_SESSIONS, st);
}

/* Server: the reply the peer waits for. */
static int send_reply(OwEngine *e, const OwMessageSpec *spec, const void *m) {
        int r;

        if (!spec || e->role != OW_CONTROL_SERVER || e->awaited != spec || e->fetch != FETCH_NONE)
                return -OW_ERR_STATE;
        r = write_message(e, spec, m);
        if (r < 0)
                return r;
        e->awaited = NULL;
        return 0;
}

static const OwMessageSpec *reply_of(const OwEngine *e, uint8_t command) {
        const OwMessageSpec *c = ow_protocol_command(e->proto, command);
        return c ? c->reply : NULL;
}

int ow_engine_send_accept_session(OwEngine *e, const OwAcceptSession *a) {
        assert(e);
        assert(a);
        /* Whichever request waits for it (OWAMP's or TWAMP's). */
        return send_reply(e, e->awaited && e->awaited->event == OW_EVENT_ACCEPT_SESSION ? e->awaited : NULL,
                          a);
}

int ow_engine_send_start_ack(OwEngine *e, OwAccept accept) {
        const OwMessageSpec *spec;
        int r;

        assert(e);
        spec = reply_of(e, OW_CMD_START_SESSIONS);
        r = send_reply(e, spec, &accept);
        if (r < 0)
                return r;
        if ((spec->flags & OW_MSG_STARTS_TEST) && accept == OW_ACCEPT_OK) {
                e->state = OW_ENGINE_TEST;
                e->stops = 0;
        }
        return 0;
}

int ow_engine_send_fetch_ack(OwEngine *e, const OwFetchAck *ack) {
        const OwMessageSpec *spec;
        int r;

        assert(e);
        assert(ack);
        spec = reply_of(e, OW_CMD_FETCH_SESSION);
        if (!spec || e->awaited != spec || e->fetch != FETCH_NONE)
                return -OW_ERR_STATE;
        r = write_message(e, spec, ack);
        if (r < 0)
                return r;
        if ((spec->flags & OW_MSG_FETCH_PARTS) && ack->accept == OW_ACCEPT_OK) {
                /* Still answering until the records are out. */
                e->fetch = FETCH_REQUEST;
                e->fetch_skips = ack->n_skip_ranges;
                e->fetch_records = ack->n_records;
                e->records_done = 0;
        } else
                e->awaited = NULL;
        return 0;
}

/* Server: the fetch answer is at this part. */
static bool fetch_sending(const OwEngine *e, FetchPhase phase) {
        return e->role == OW_CONTROL_SERVER && e->fetch == phase;
}

int ow_engine_send_fetch_request(OwEngine *e, const OwSessionRequest *req) {
        int r;

        assert(e);
        assert(req);
        if (!fetch_sending(e, FETCH_REQUEST))
                return -OW_ERR_STATE;
        r = write_message(e, e->proto->fetch_request, req);
        if (r < 0)
                return r;
        e->fetch = FETCH_SKIPS;
        return 0;
}

/* Seal the first n (whole blocks) of the unsealed octets: they are ready. */
static int seal_unsealed(OwEngine *e, size_t n) {
        int r;

        assert(n <= e->out_unsealed && n % OW_BLOCK_SIZE == 0);
        if (n == 0)
                return 0;
        r = ow_channel_seal(&e->channel, e->out + e->out_len, n, false);
        if (r < 0)
                return r;
        e->out_len += n;
        e->out_unsealed -= n;
        return 0;
}

/* The records part is complete: pad its last block, seal, add the HMAC. */
static int finish_records(OwEngine *e) {
        size_t pad = (OW_BLOCK_SIZE - e->out_unsealed % OW_BLOCK_SIZE) % OW_BLOCK_SIZE;
        uint8_t *p = out_reserve(e, pad + OW_HMAC_SIZE);
        int r;

        if (!p)
                return -ENOMEM;
        memset(p, 0, pad + OW_HMAC_SIZE);
        e->out_unsealed += pad;
        r = seal_unsealed(e, e->out_unsealed);
        if (r >= 0)
                r = seal_message(e, e->out + e->out_len, OW_HMAC_SIZE, 0);
        if (r < 0)
                return r;
        e->fetch = FETCH_NONE;
        e->awaited = NULL;
        return 0;
}

int ow_engine_send_fetch_skips(OwEngine *e, const OwSkipRange *ranges, uint32_t n) {
        size_t size;
        uint8_t *p;
        int r;

        assert(e && (ranges || n == 0));
        if (!fetch_sending(e, FETCH_SKIPS))
                return -OW_ERR_STATE;
        if (n != e->fetch_skips)
                return -OW_ERR_COUNT;
        r = ow_fetch_skips_size(n, &size);
        if (r < 0)
                return r;
        p = out_reserve(e, size);
        if (!p)
                return -ENOMEM;
        r = ow_fetch_skips_encode(ranges, n, p, size);
        if (r < 0)
                return r;
        r = seal_message(e, p, size, 0);
        if (r < 0)
                return r;
        e->fetch = FETCH_RECORDS;
        return e->fetch_records == 0 ? finish_records(e) : 0;
}

int ow_engine_send_fetch_records(OwEngine *e, const OwRecord *records, uint32_t n) {
        uint8_t *p;
        int r;

        assert(e && (records || n == 0));
        if (!fetch_sending(e, FETCH_RECORDS))
                return -OW_ERR_STATE;
        if (n > e->fetch_records - e->records_done)
                return -OW_ERR_COUNT;
        for (uint32_t i = 0; i < n; i++) {
                r = ow_errest_check(records[i].send_err);
                if (r >= 0)
                        r = ow_errest_check(records[i].recv_err);
                if (r < 0)
                        return r;
        }
        p = out_reserve(e, (size_t) n * OW_RECORD_SIZE);
        if (!p)
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++)
                ow_record_encode(&records[i], p + (size_t) i * OW_RECORD_SIZE);
        e->out_unsealed += (size_t) n * OW_RECORD_SIZE;
        e->records_done += n;

        /* Seal the whole blocks; a partial one waits for more records. */
        r = seal_unsealed(e, e->out_unsealed - e->out_unsealed % OW_BLOCK_SIZE);
        if (r < 0)
                return r;
        return e->records_done == e->fetch_records ? finish_records(e) : 0;
}

uint32_t ow_engine_fetch_records_left(const OwEngine *e) {
        assert(e);
        return e->fetch == FETCH_RECORDS ? e->fetch_records - e->records_done : 0;
}

bool ow_engine_awaiting_peer(const OwEngine *e) {
        assert(e);
        if (e->state == OW_ENGINE_TEST && (e->stops & OW_ROLE_BIT(e->role)))
                return true;
        return e->role == OW_CONTROL_CLIENT && (e->n_pending > 0 || e->fetch != FETCH_NONE);
}
