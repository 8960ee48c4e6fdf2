/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-control-engine.h" /* ow_command_*() read the OWAMP table */
#include "ow-control.h"
#include "ow-error.h"
#include "ow-rules.h"
#include "ow-wire.h"

/* Validation is table-driven (ow-rules.h): decoders run a message's rules
 * after the length checks; encoders run the same list before writing. */

/* Encoded sizes are returned as int; the largest message (a records part
 * of OW_MAX_FETCH_RECORDS) must fit. */
_Static_assert((uint64_t) OW_MAX_FETCH_RECORDS * OW_RECORD_SIZE + 2 * OW_BLOCK_SIZE < INT32_MAX,
               "fetch records part does not fit an int");

static int check_length(size_t len, size_t want) {
        if (len < want)
                return -OW_ERR_TRUNCATED;
        if (len > want)
                return -OW_ERR_TOO_LONG;
        return 0;
}

static bool accept_valid(uint8_t a) {
        return a <= _OW_ACCEPT_MAX;
}

/* Exactly one bit, and one the protocol has (OW_MODES_ALL for OWAMP). */
static bool mode_valid(uint32_t m, uint32_t allowed) {
        return m != 0 && (m & (m - 1)) == 0 && (m & allowed) != 0;
}

/*
 * The messages of one fixed size, whose fields map one to one: a field
 * writer and reader per message, its rules, and one encoder and decoder
 * for all of them. Decode: the length, the command octet (when the
 * message has one), the fields, the rules. Encode: the rules (and an
 * encode-only check), then the fields over zeros.
 */
typedef struct FixedCodec {
        size_t size;
        uint8_t command;                    /* first octet on decode; 0: none */
        int (*encode_check)(const void *m); /* what we never send though we decode it, or NULL */
        int (*check)(const void *m);        /* the rules */
        void (*put)(const void *m, uint8_t *buf);
        void (*get)(const uint8_t *buf, void *m);
        size_t msg_size;
} FixedCodec;

typedef union FixedMessage {
        OwTwStopSessions tw_stop;
        OwServerGreeting greeting;
        OwServerStart server_start;
        OwAcceptSession accept_session;
        OwFetchSession fetch_session;
        OwFetchAck fetch_ack;
} FixedMessage;

static int fixed_encode(const FixedCodec *c, const void *m, uint8_t *buf, size_t size) {
        int r;

        if (!m || !buf)
                return -EINVAL;
        r = c->encode_check ? c->encode_check(m) : 0;
        if (r >= 0)
                r = c->check(m);
        if (r < 0)
                return r;
        if (size < c->size)
                return -ENOBUFS;
        memset(buf, 0, c->size);
        c->put(m, buf);
        return (int) c->size;
}

static int fixed_decode(const FixedCodec *c, const uint8_t *buf, size_t len, void *ret) {
        FixedMessage m = {};
        int r;

        assert(c->msg_size <= sizeof(m));
        if (!buf || !ret)
                return -EINVAL;
        r = check_length(len, c->size);
        if (r < 0)
                return r;
        if (c->command != 0 && buf[0] != c->command)
                return -OW_ERR_COMMAND;
        c->get(buf, &m);
        r = c->check(&m);
        if (r < 0)
                return r;
        memcpy(ret, &m, c->msg_size);
        return 0;
}

/* One fixed-size message type T: its rules as the check, the FixedCodec
 * <name>_codec over <name>_put() and <name>_get() (with the command octet
 * cmd or 0, an encode-only check or NULL), and the public pair
 * ow_<pub>_encode() / _decode(). */
#define DEFINE_FIXED_MESSAGE(pub, name, T, rules, wire_size, cmd, enc_check) \
        static int name##_check(const void *m) {                             \
                return CHECK_RULES(rules, (const T *) m);                    \
        }                                                                    \
        static const FixedCodec name##_codec = {                             \
                .size = (wire_size),                                         \
                .command = (cmd),                                            \
                .encode_check = (enc_check),                                 \
                .check = name##_check,                                       \
                .put = name##_put,                                           \
                .get = name##_get,                                           \
                .msg_size = sizeof(T),                                       \
        };                                                                   \
        int ow_##pub##_encode(const T *m, uint8_t *buf, size_t size) {       \
                return fixed_encode(&name##_codec, m, buf, size);            \
        }                                                                    \
        int ow_##pub##_decode(const uint8_t *buf, size_t len, T *ret) {      \
                return fixed_decode(&name##_codec, buf, len, ret);           \
        }

/* --- Server Greeting, RFC 4656 3.1 ---------------------------------------- */

static bool greeting_count_ok(const OwServerGreeting *m) {
        /* The count only matters when a mode using the shared secret is on
         * offer; then a client must not accept a weak or absurd one. */
        if (!(m->modes & (OW_MODE_AUTHENTICATED | OW_MODE_ENCRYPTED | OW_MODE_MIXED)))
                return true;
        return ow_pbkdf2_count_check_client(m->count) >= 0;
}

DEFINE_RULE_TYPE(GreetingRule, OwServerGreeting);
static const GreetingRule greeting_rules[] = {
        { greeting_count_ok, OW_ERR_PBKDF2_COUNT },
};

static int greeting_encode_check(const void *m) {
        /* Unknown mode bits are decoded (for the caller to ignore), never sent. */
        return ((const OwServerGreeting *) m)->modes & ~(uint32_t) OW_MODES_ALL ? -OW_ERR_MODE : 0;
}

static void greeting_put(const void *p, uint8_t *buf) {
        const OwServerGreeting *m = p;

        ow_put_be32(buf + 12, m->modes);
        memcpy(buf + 16, m->challenge, OW_CHALLENGE_SIZE);
        memcpy(buf + 32, m->salt, OW_SALT_SIZE);
        ow_put_be32(buf + 48, m->count);
}

static void greeting_get(const uint8_t *buf, void *p) {
        OwServerGreeting *m = p;

        m->modes = ow_get_be32(buf + 12);
        memcpy(m->challenge, buf + 16, OW_CHALLENGE_SIZE);
        memcpy(m->salt, buf + 32, OW_SALT_SIZE);
        m->count = ow_get_be32(buf + 48);
}

DEFINE_FIXED_MESSAGE(server_greeting, greeting, OwServerGreeting, greeting_rules, OW_SERVER_GREETING_SIZE, 0,
                     greeting_encode_check)

int ow_server_greeting_encode_modes(const OwServerGreeting *m, uint32_t allowed, uint8_t *buf, size_t size) {
        FixedCodec c = greeting_codec;

        if (m && (m->modes & ~allowed))
                return -OW_ERR_MODE;
        c.encode_check = NULL; /* the mask above instead of OW_MODES_ALL */
        return fixed_encode(&c, m, buf, size);
}

/* --- Set-Up-Response, RFC 4656 3.1 ---------------------------------------- */

static bool keyid_char_ok(uint8_t c) {
        return c > 0x20 && c < 0x7f;
}

int ow_keyid_check(const char *s) {
        size_t n;

        if (isempty(s))
                return -OW_ERR_KEYID;
        n = strnlen(s, OW_KEYID_SIZE + 1);
        if (n > OW_KEYID_SIZE)
                return -OW_ERR_KEYID;
        for (size_t i = 0; i < n; i++)
                if (!keyid_char_ok((uint8_t) s[i]))
                        return -OW_ERR_KEYID;
        return 0;
}

static bool setup_keyid_ok(const OwSetupResponse *m) {
        return m->mode == OW_MODE_OPEN || ow_keyid_check(m->keyid) >= 0;
}

DEFINE_RULE_TYPE(SetupRule, OwSetupResponse);
static const SetupRule setup_rules[] = {
        { setup_keyid_ok, OW_ERR_KEYID },
};

/* The mode first (its rule takes the protocol's mask), then the table. */
static int setup_check(const OwSetupResponse *m, uint32_t allowed) {
        if (!mode_valid(m->mode, allowed))
                return -OW_ERR_MODE;
        return CHECK_RULES(setup_rules, m);
}

int ow_setup_response_encode(const OwSetupResponse *m, uint8_t *buf, size_t size) {
        return ow_setup_response_encode_modes(m, OW_MODES_ALL, buf, size);
}

int ow_setup_response_decode(const uint8_t *buf, size_t len, OwSetupResponse *ret) {
        return ow_setup_response_decode_modes(buf, len, OW_MODES_ALL, ret);
}

int ow_setup_response_encode_modes(const OwSetupResponse *m, uint32_t allowed, uint8_t *buf, size_t size) {
        int r;

        if (!m || !buf)
                return -EINVAL;
        r = setup_check(m, allowed);
        if (r < 0)
                return r;
        if (size < OW_SETUP_RESPONSE_SIZE)
                return -ENOBUFS;

        memset(buf, 0, OW_SETUP_RESPONSE_SIZE);
        ow_put_be32(buf, m->mode);
        if (m->mode != OW_MODE_OPEN) {
                /* The rules guarantee at most 80 octets. */
                memcpy(buf + 4, m->keyid, strlen(m->keyid));
                memcpy(buf + 84, m->token, OW_TOKEN_SIZE);
                memcpy(buf + 148, m->client_iv, OW_IV_SIZE);
        }
        return OW_SETUP_RESPONSE_SIZE;
}

int ow_setup_response_decode_modes(const uint8_t *buf, size_t len, uint32_t allowed, OwSetupResponse *ret) {
        OwSetupResponse m = {};
        int r;

        if (!buf || !ret)
                return -EINVAL;
        r = check_length(len, OW_SETUP_RESPONSE_SIZE);
        if (r < 0)
                return r;

        m.mode = ow_get_be32(buf);
        if (m.mode != OW_MODE_OPEN) {
                /* buf + 4 need not be NUL-terminated: an 80-octet name fills
                 * the field. */
                memcpy(m.keyid, buf + 4, strnlen((const char *) buf + 4, OW_KEYID_SIZE));
                memcpy(m.token, buf + 84, OW_TOKEN_SIZE);
                memcpy(m.client_iv, buf + 148, OW_IV_SIZE);
        }

        r = setup_check(&m, allowed);
        if (r < 0)
                return r;

        /* NUL padding: nothing may follow the first NUL, or two peers could
         * disagree on the name. */
        if (m.mode != OW_MODE_OPEN) {
                size_t n = strlen(m.keyid);

                if (!ow_all_zero(buf + 4 + n, OW_KEYID_SIZE - n))
                        return -OW_ERR_KEYID;
        }

        *ret = m;
        return 0;
}

/* --- Server-Start, RFC 4656 3.1 ------------------------------------------- */

static bool server_start_accept_ok(const OwServerStart *m) {
        return accept_valid(m->accept);
}

DEFINE_RULE_TYPE(ServerStartRule, OwServerStart);
static const ServerStartRule server_start_rules[] = {
        { server_start_accept_ok, OW_ERR_ACCEPT },
};

static void server_start_put(const void *p, uint8_t *buf) {
        const OwServerStart *m = p;

        buf[15] = (uint8_t) m->accept;
        memcpy(buf + 16, m->server_iv, OW_IV_SIZE);
        ow_timestamp_put(buf + 32, m->start_time);
}

static void server_start_get(const uint8_t *buf, void *p) {
        OwServerStart *m = p;

        m->accept = buf[15];
        memcpy(m->server_iv, buf + 16, OW_IV_SIZE);
        m->start_time = ow_timestamp_get(buf + 32);
}

DEFINE_FIXED_MESSAGE(server_start, server_start, OwServerStart, server_start_rules, OW_SERVER_START_SIZE, 0,
                     NULL)

/* --- Commands, RFC 4656 3.4 ------------------------------------------------ */

int ow_command_type(const uint8_t *buf, size_t len) {
        if (!buf)
                return -EINVAL;
        if (len < 1)
                return -OW_ERR_TRUNCATED;
        if (!ow_protocol_command(&ow_protocol_owamp, buf[0]))
                return -OW_ERR_COMMAND;
        return buf[0];
}

/* Stop-Sessions layout (RFC 4656 3.8): per session a SID block, then Next
 * Seqno and K (4 octets each) and the K ranges packed after them, padded to
 * a block. */
#define STOP_SESSION_COUNTS_SIZE 8 /* Next Seqno, K */
#define STOP_SESSION_HEADER_SIZE (OW_SID_SIZE + STOP_SESSION_COUNTS_SIZE)

static size_t stop_session_record_size(uint32_t k) {
        return OW_SID_SIZE +
               ALIGN_TO(STOP_SESSION_COUNTS_SIZE + (size_t) k * OW_SKIP_RANGE_SIZE, OW_BLOCK_SIZE);
}

/* Each K is bounded before it moves the offset, so the sizes cannot
 * overflow (at most OW_MAX_STOP_SESSIONS x 32 + 8 x OW_MAX_SKIP_RANGES
 * octets). */
int ow_stop_sessions_size_from(const uint8_t *buf, size_t len, size_t *ret_size) {
        uint32_t n, total = 0;
        size_t off = OW_BLOCK_SIZE;

        if (len < OW_BLOCK_SIZE) {
                *ret_size = OW_BLOCK_SIZE;
                return 1;
        }
        n = ow_get_be32(buf + 4);
        if (n > OW_MAX_STOP_SESSIONS)
                return -OW_ERR_COUNT;

        for (uint32_t i = 0; i < n; i++) {
                uint32_t k;

                if (len < off + 2 * OW_BLOCK_SIZE) {
                        *ret_size = off + 2 * OW_BLOCK_SIZE;
                        return 1;
                }
                k = ow_get_be32(buf + off + OW_SID_SIZE + 4);
                if (k > OW_MAX_SKIP_RANGES - total)
                        return -OW_ERR_COUNT;
                total += k;
                off += stop_session_record_size(k);
        }

        *ret_size = off + OW_HMAC_SIZE;
        return 0;
}

int ow_command_size(const uint8_t *buf, size_t len, size_t *ret_size) {
        const OwMessageSpec *spec;

        if (!buf || !ret_size)
                return -EINVAL;
        if (len < OW_BLOCK_SIZE) {
                *ret_size = OW_BLOCK_SIZE;
                return 1;
        }
        spec = ow_protocol_command(&ow_protocol_owamp, buf[0]);
        if (!spec)
                return -OW_ERR_COMMAND;
        if (!spec->size_of) {
                *ret_size = spec->size;
                return 0;
        }
        return spec->size_of(buf, len, ret_size);
}

/* --- Request-Session, RFC 4656 3.5 ---------------------------------------- */

int ow_request_session_size(uint32_t n_slots, size_t *ret_size) {
        if (!ret_size)
                return -EINVAL;
        if (n_slots < 1 || n_slots > OW_MAX_SLOTS)
                return -OW_ERR_COUNT;
        *ret_size = OW_REQUEST_SESSION_PREAMBLE_SIZE + (size_t) n_slots * OW_SLOT_SIZE + OW_HMAC_SIZE;
        return 0;
}

static size_t address_size(uint8_t ipvn) {
        return ipvn == 4 ? 4 : OW_ADDR_SIZE;
}

static bool request_ipvn_ok(const OwSessionRequest *m) {
        return m->ipvn == 4 || m->ipvn == 6;
}

static bool request_conf_ok(const OwSessionRequest *m) {
        return m->conf_sender != m->conf_receiver;
}

static bool request_packets_ok(const OwSessionRequest *m) {
        return m->n_packets >= 1;
}

static bool request_padding_ok(const OwSessionRequest *m) {
        return m->padding_length <= OW_MAX_PADDING;
}

static bool request_typep_ok(const OwSessionRequest *m) {
        return ow_typep_is_dscp(m->type_p);
}

static bool request_slots_ok(const OwSessionRequest *m) {
        for (uint32_t i = 0; i < m->n_slots; i++)
                if (m->slots[i].type != OW_SLOT_EXPONENTIAL && m->slots[i].type != OW_SLOT_FIXED)
                        return false;
        return true;
}

DEFINE_RULE_TYPE(RequestRule, OwSessionRequest);
static const RequestRule request_rules[] = {
        { request_ipvn_ok, OW_ERR_IPVN },
        { request_conf_ok, OW_ERR_CONF },
        { request_packets_ok, OW_ERR_COUNT },
        { request_padding_ok, OW_ERR_COUNT },
        { request_typep_ok, OW_ERR_TYPEP },
        { request_slots_ok, OW_ERR_SLOT_TYPE },
};

void ow_request_preamble_put(const OwSessionRequest *m, uint8_t out[static OW_REQUEST_SESSION_PREAMBLE_SIZE]) {
        memset(out, 0, OW_REQUEST_SESSION_PREAMBLE_SIZE);
        out[0] = OW_CMD_REQUEST_SESSION;
        out[1] = m->ipvn & 0x0f;
        out[2] = m->conf_sender;
        out[3] = m->conf_receiver;
        ow_put_be32(out + 4, m->n_slots);
        ow_put_be32(out + 8, m->n_packets);
        ow_put_be16(out + 12, m->sender_port);
        ow_put_be16(out + 14, m->receiver_port);
        memcpy(out + 16, m->sender_addr, address_size(m->ipvn));
        memcpy(out + 32, m->receiver_addr, address_size(m->ipvn));
        memcpy(out + 48, m->sid.bytes, OW_SID_SIZE);
        ow_put_be32(out + 64, m->padding_length);
        ow_timestamp_put(out + 68, m->start_time);
        ow_timestamp_put(out + 76, m->timeout);
        ow_put_be32(out + 84, m->type_p);
        /* 88..95 MBZ, 96..111 HMAC */
}

void ow_request_preamble_get(const uint8_t in[static OW_REQUEST_SESSION_PREAMBLE_SIZE], OwSessionRequest *ret) {
        OwSessionRequest m = {
                .ipvn = in[1] & 0x0f, /* the high nibble is MBZ */
                .conf_sender = in[2] != 0,
                .conf_receiver = in[3] != 0,
                .n_slots = ow_get_be32(in + 4),
                .n_packets = ow_get_be32(in + 8),
                .sender_port = ow_get_be16(in + 12),
                .receiver_port = ow_get_be16(in + 14),
                .padding_length = ow_get_be32(in + 64),
                .start_time = ow_timestamp_get(in + 68),
                .timeout = ow_timestamp_get(in + 76),
                .type_p = ow_get_be32(in + 84),
        };
        memcpy(m.sender_addr, in + 16, address_size(m.ipvn));
        memcpy(m.receiver_addr, in + 32, address_size(m.ipvn));
        memcpy(m.sid.bytes, in + 48, OW_SID_SIZE);
        *ret = m;
}

void ow_slot_put(const OwSlot *s, uint8_t out[static OW_SLOT_SIZE]) {
        memset(out, 0, OW_SLOT_SIZE);
        out[0] = (uint8_t) s->type;
        ow_timestamp_put(out + 8, s->param);
}

void ow_slot_get(const uint8_t in[static OW_SLOT_SIZE], OwSlot *ret) {
        *ret = (OwSlot) { .type = in[0], .param = ow_timestamp_get(in + 8) };
}

int ow_request_session_encode(const OwSessionRequest *m, uint8_t *buf, size_t size) {
        size_t need;
        uint8_t *p;
        int r;

        if (!m || !buf)
                return -EINVAL;
        r = ow_request_session_size(m->n_slots, &need);
        if (r < 0)
                return r;
        if (!m->slots)
                return -EINVAL;
        r = CHECK_RULES(request_rules, m);
        if (r < 0)
                return r;
        if (size < need)
                return -ENOBUFS;

        memset(buf, 0, need);
        ow_request_preamble_put(m, buf);
        p = buf + OW_REQUEST_SESSION_PREAMBLE_SIZE;
        for (uint32_t i = 0; i < m->n_slots; i++, p += OW_SLOT_SIZE)
                ow_slot_put(&m->slots[i], p);
        /* final HMAC block left zero */
        return (int) need;
}

int ow_request_session_decode(const uint8_t *buf, size_t len, OwSessionRequest *ret) {
        _cleanup_free_ OwSlot *slots = NULL;
        OwSessionRequest m = {};
        const uint8_t *p;
        size_t need;
        int r;

        if (!buf || !ret)
                return -EINVAL;
        if (len < OW_REQUEST_SESSION_PREAMBLE_SIZE)
                return -OW_ERR_TRUNCATED;
        if (buf[0] != OW_CMD_REQUEST_SESSION)
                return -OW_ERR_COMMAND;
        m.n_slots = ow_get_be32(buf + 4);
        r = ow_request_session_size(m.n_slots, &need);
        if (r < 0)
                return r;
        r = check_length(len, need);
        if (r < 0)
                return r;

        ow_request_preamble_get(buf, &m);

        slots = calloc(m.n_slots, sizeof(OwSlot));
        if (!slots)
                return -ENOMEM;
        p = buf + OW_REQUEST_SESSION_PREAMBLE_SIZE;
        for (uint32_t i = 0; i < m.n_slots; i++, p += OW_SLOT_SIZE)
                ow_slot_get(p, &slots[i]);
        m.slots = slots;

        r = CHECK_RULES(request_rules, &m);
        if (r < 0)
                return r;

        m.slots = TAKE_PTR(slots);
        *ret = m;
        return 0;
}

void ow_session_request_done(OwSessionRequest *r) {
        if (!r)
                return;
        free(r->slots);
        r->slots = NULL;
}

/* --- Accept-Session, RFC 4656 3.5 ----------------------------------------- */

static bool accept_session_accept_ok(const OwAcceptSession *m) {
        return accept_valid(m->accept);
}

static bool accept_session_port_ok(const OwAcceptSession *m) {
        return m->accept != OW_ACCEPT_OK || m->port != 0;
}

DEFINE_RULE_TYPE(AcceptSessionRule, OwAcceptSession);
static const AcceptSessionRule accept_session_rules[] = {
        { accept_session_accept_ok, OW_ERR_ACCEPT },
        { accept_session_port_ok, OW_ERR_PORT },
};

static void accept_session_put(const void *p, uint8_t *buf) {
        const OwAcceptSession *m = p;

        buf[0] = (uint8_t) m->accept;
        ow_put_be16(buf + 2, m->port);
        memcpy(buf + 4, m->sid.bytes, OW_SID_SIZE);
}

static void accept_session_get(const uint8_t *buf, void *p) {
        OwAcceptSession *m = p;

        m->accept = buf[0];
        m->port = ow_get_be16(buf + 2);
        memcpy(m->sid.bytes, buf + 4, OW_SID_SIZE);
}

DEFINE_FIXED_MESSAGE(accept_session, accept_session, OwAcceptSession, accept_session_rules,
                     OW_ACCEPT_SESSION_SIZE, 0, NULL)

/* --- Start-Sessions and Start-Ack, RFC 4656 3.7 --------------------------- */

int ow_start_sessions_encode(uint8_t *buf, size_t size) {
        if (!buf)
                return -EINVAL;
        if (size < OW_START_SESSIONS_SIZE)
                return -ENOBUFS;
        memset(buf, 0, OW_START_SESSIONS_SIZE);
        buf[0] = OW_CMD_START_SESSIONS;
        return OW_START_SESSIONS_SIZE;
}

int ow_start_sessions_decode(const uint8_t *buf, size_t len) {
        int r;

        if (!buf)
                return -EINVAL;
        r = check_length(len, OW_START_SESSIONS_SIZE);
        if (r < 0)
                return r;
        if (buf[0] != OW_CMD_START_SESSIONS)
                return -OW_ERR_COMMAND;
        return 0;
}

int ow_start_ack_encode(OwAccept accept, uint8_t *buf, size_t size) {
        if (!buf)
                return -EINVAL;
        if (!accept_valid(accept))
                return -OW_ERR_ACCEPT;
        if (size < OW_START_ACK_SIZE)
                return -ENOBUFS;
        memset(buf, 0, OW_START_ACK_SIZE);
        buf[0] = (uint8_t) accept;
        return OW_START_ACK_SIZE;
}

int ow_start_ack_decode(const uint8_t *buf, size_t len, OwAccept *ret) {
        int r;

        if (!buf || !ret)
                return -EINVAL;
        r = check_length(len, OW_START_ACK_SIZE);
        if (r < 0)
                return r;
        if (!accept_valid(buf[0]))
                return -OW_ERR_ACCEPT;
        *ret = buf[0];
        return 0;
}

/* --- Stop-Sessions, RFC 4656 3.8 ------------------------------------------ */

static bool stop_accept_ok(const OwStopSessions *m) {
        return accept_valid(m->accept);
}

static bool stop_counts_ok(const OwStopSessions *m) {
        uint32_t total = 0;

        if (m->n_sessions > OW_MAX_STOP_SESSIONS)
                return false;
        for (uint32_t i = 0; i < m->n_sessions; i++) {
                if (m->sessions[i].n_skip_ranges > OW_MAX_SKIP_RANGES - total)
                        return false;
                total += m->sessions[i].n_skip_ranges;
        }
        return true;
}

static bool stop_ranges_ok(const OwStopSessions *m) {
        for (uint32_t i = 0; i < m->n_sessions; i++)
                for (uint32_t j = 0; j < m->sessions[i].n_skip_ranges; j++)
                        if (m->sessions[i].skip_ranges[j].first > m->sessions[i].skip_ranges[j].last)
                                return false;
        return true;
}

DEFINE_RULE_TYPE(StopRule, OwStopSessions);
static const StopRule stop_rules[] = {
        { stop_accept_ok, OW_ERR_ACCEPT },
        { stop_counts_ok, OW_ERR_COUNT },
        { stop_ranges_ok, OW_ERR_RANGE },
};

static int stop_sessions_check(const OwStopSessions *m) {
        if (!m)
                return -EINVAL;
        if (m->n_sessions > 0 && !m->sessions)
                return -EINVAL;
        if (m->n_sessions <= OW_MAX_STOP_SESSIONS)
                for (uint32_t i = 0; i < m->n_sessions; i++)
                        if (m->sessions[i].n_skip_ranges > 0 && !m->sessions[i].skip_ranges)
                                return -EINVAL;
        return CHECK_RULES(stop_rules, m);
}

int ow_stop_sessions_size(const OwStopSessions *m, size_t *ret_size) {
        size_t size = OW_BLOCK_SIZE + OW_HMAC_SIZE;
        int r;

        if (!ret_size)
                return -EINVAL;
        r = stop_sessions_check(m);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < m->n_sessions; i++)
                size += stop_session_record_size(m->sessions[i].n_skip_ranges);
        *ret_size = size;
        return 0;
}

int ow_stop_sessions_encode(const OwStopSessions *m, uint8_t *buf, size_t size) {
        size_t need;
        uint8_t *p;
        int r;

        if (!buf)
                return -EINVAL;
        r = ow_stop_sessions_size(m, &need);
        if (r < 0)
                return r;
        if (size < need)
                return -ENOBUFS;

        memset(buf, 0, need);
        buf[0] = OW_CMD_STOP_SESSIONS;
        buf[1] = (uint8_t) m->accept;
        ow_put_be32(buf + 4, m->n_sessions);

        p = buf + OW_BLOCK_SIZE;
        for (uint32_t i = 0; i < m->n_sessions; i++) {
                const OwStopSession *s = &m->sessions[i];

                memcpy(p, s->sid.bytes, OW_SID_SIZE);
                ow_put_be32(p + OW_SID_SIZE, s->next_seqno);
                ow_put_be32(p + OW_SID_SIZE + 4, s->n_skip_ranges);
                for (uint32_t j = 0; j < s->n_skip_ranges; j++)
                        ow_skip_range_encode(&s->skip_ranges[j],
                                             p + STOP_SESSION_HEADER_SIZE + (size_t) j * OW_SKIP_RANGE_SIZE);
                /* padding already zero */
                p += stop_session_record_size(s->n_skip_ranges);
        }
        /* final HMAC block left zero */
        return (int) need;
}

int ow_stop_sessions_decode(const uint8_t *buf, size_t len, OwStopSessions *ret) {
        OwStopSessions m = {};
        OwStopSession *sessions;
        OwSkipRange *ranges;
        size_t need, total = 0;
        const uint8_t *p;
        void *mem;
        int r;

        if (!buf || !ret)
                return -EINVAL;
        if (len < OW_STOP_SESSIONS_MIN_SIZE)
                return -OW_ERR_TRUNCATED;
        if (buf[0] != OW_CMD_STOP_SESSIONS)
                return -OW_ERR_COMMAND;
        if (!accept_valid(buf[1]))
                return -OW_ERR_ACCEPT;

        /* Bounds every count and finds the size before anything else. A
         * message cut in the middle of its records reports "need more". */
        r = ow_stop_sessions_size_from(buf, len, &need);
        if (r < 0)
                return r;
        if (r > 0)
                return -OW_ERR_TRUNCATED;
        r = check_length(len, need);
        if (r < 0)
                return r;

        m.accept = buf[1];
        m.n_sessions = ow_get_be32(buf + 4);

        /* Padding, and the total number of ranges for the allocation. */
        p = buf + OW_BLOCK_SIZE;
        for (uint32_t i = 0; i < m.n_sessions; i++) {
                uint32_t k = ow_get_be32(p + OW_SID_SIZE + 4);

                /* K even: the ranges end 8 octets short of a block. */
                if (k % 2 == 0 &&
                    !ow_all_zero(p + STOP_SESSION_HEADER_SIZE + (size_t) k * OW_SKIP_RANGE_SIZE,
                                 OW_BLOCK_SIZE - STOP_SESSION_COUNTS_SIZE))
                        return -OW_ERR_PADDING;
                total += k;
                p += stop_session_record_size(k);
        }

        /* One block: sessions first, then all their ranges. total is at
         * most OW_MAX_SKIP_RANGES, so this cannot overflow. */
        mem = malloc(MAX((size_t) m.n_sessions * sizeof(OwStopSession) + total * sizeof(OwSkipRange),
                         (size_t) 1));
        if (!mem)
                return -ENOMEM;
        sessions = mem;
        ranges = (OwSkipRange *) (sessions + m.n_sessions);

        p = buf + OW_BLOCK_SIZE;
        for (uint32_t i = 0; i < m.n_sessions; i++) {
                OwStopSession *s = &sessions[i];

                memcpy(s->sid.bytes, p, OW_SID_SIZE);
                s->next_seqno = ow_get_be32(p + OW_SID_SIZE);
                s->n_skip_ranges = ow_get_be32(p + OW_SID_SIZE + 4);
                s->skip_ranges = s->n_skip_ranges > 0 ? ranges : NULL;
                for (uint32_t j = 0; j < s->n_skip_ranges; j++) {
                        const uint8_t *q = p + STOP_SESSION_HEADER_SIZE + (size_t) j * OW_SKIP_RANGE_SIZE;

                        ranges[j].first = ow_get_be32(q);
                        ranges[j].last = ow_get_be32(q + 4);
                }
                ranges += s->n_skip_ranges;
                p += stop_session_record_size(s->n_skip_ranges);
        }
        m.sessions = sessions;

        r = CHECK_RULES(stop_rules, &m);
        if (r < 0) {
                free(mem);
                return r;
        }
        *ret = m;
        return 0;
}

void ow_stop_sessions_done(OwStopSessions *m) {
        if (!m)
                return;
        free(m->sessions);
        m->sessions = NULL;
        m->n_sessions = 0;
}

/* --- Fetch-Session, RFC 4656 3.8 ------------------------------------------ */

static bool fetch_range_ok(const OwFetchSession *m) {
        return m->begin <= m->end;
}

DEFINE_RULE_TYPE(FetchRule, OwFetchSession);
static const FetchRule fetch_rules[] = {
        { fetch_range_ok, OW_ERR_RANGE },
};

static void fetch_session_put(const void *p, uint8_t *buf) {
        const OwFetchSession *m = p;

        buf[0] = OW_CMD_FETCH_SESSION;
        ow_put_be32(buf + 8, m->begin);
        ow_put_be32(buf + 12, m->end);
        memcpy(buf + 16, m->sid.bytes, OW_SID_SIZE);
}

static void fetch_session_get(const uint8_t *buf, void *p) {
        OwFetchSession *m = p;

        m->begin = ow_get_be32(buf + 8);
        m->end = ow_get_be32(buf + 12);
        memcpy(m->sid.bytes, buf + 16, OW_SID_SIZE);
}

DEFINE_FIXED_MESSAGE(fetch_session, fetch_session, OwFetchSession, fetch_rules, OW_FETCH_SESSION_SIZE,
                     OW_CMD_FETCH_SESSION, NULL)

/* --- Fetch-Ack and the fetched parts, RFC 4656 3.8, PROTOCOL.md 5.7 ------- */

static bool fetch_ack_accept_ok(const OwFetchAck *m) {
        return accept_valid(m->accept);
}

static bool fetch_ack_counts_ok(const OwFetchAck *m) {
        /* The counts size what follows only when the fetch is accepted. */
        return m->accept != OW_ACCEPT_OK ||
               (m->n_skip_ranges <= OW_MAX_SKIP_RANGES && m->n_records <= OW_MAX_FETCH_RECORDS);
}

DEFINE_RULE_TYPE(FetchAckRule, OwFetchAck);
static const FetchAckRule fetch_ack_rules[] = {
        { fetch_ack_accept_ok, OW_ERR_ACCEPT },
        { fetch_ack_counts_ok, OW_ERR_COUNT },
};

static void fetch_ack_put(const void *p, uint8_t *buf) {
        const OwFetchAck *m = p;

        buf[0] = (uint8_t) m->accept;
        buf[1] = m->finished;
        ow_put_be32(buf + 4, m->next_seqno);
        ow_put_be32(buf + 8, m->n_skip_ranges);
        ow_put_be32(buf + 12, m->n_records);
}

static void fetch_ack_get(const uint8_t *buf, void *p) {
        OwFetchAck *m = p;

        m->accept = buf[0];
        m->finished = buf[1];
        m->next_seqno = ow_get_be32(buf + 4);
        m->n_skip_ranges = ow_get_be32(buf + 8);
        m->n_records = ow_get_be32(buf + 12);
}

DEFINE_FIXED_MESSAGE(fetch_ack, fetch_ack, OwFetchAck, fetch_ack_rules, OW_FETCH_ACK_SIZE, 0, NULL)

/*
 * The two data parts of a fetch answer are the same shape: n items of a
 * fixed size packed back to back, zero-padded to a block, then an HMAC
 * block (PROTOCOL.md 5.7). One description per part, one codec for both.
 */
typedef struct PackedPart {
        size_t item_size;               /* on the wire */
        size_t item_sizeof;             /* in memory */
        uint32_t max;                   /* bound on n */
        int (*check)(const void *item); /* what encode refuses */
        void (*put)(const void *item, uint8_t *out);
        int (*get)(const uint8_t *in, void *ret); /* decodes and validates */
} PackedPart;

static int skip_check(const void *item) {
        const OwSkipRange *r = item;
        return r->first <= r->last ? 0 : -OW_ERR_RANGE;
}

static void skip_put(const void *item, uint8_t *out) {
        ow_skip_range_encode(item, out);
}

static int skip_get(const uint8_t *in, void *ret) {
        return ow_skip_range_decode(in, ret);
}

static int record_check(const void *item) {
        const OwRecord *rec = item;
        int r = ow_errest_check(rec->send_err);
        return r < 0 ? r : ow_errest_check(rec->recv_err);
}

static void record_put(const void *item, uint8_t *out) {
        ow_record_encode(item, out);
}

static int record_get(const uint8_t *in, void *ret) {
        return ow_record_decode(in, ret);
}

static const PackedPart skips_part = {
        OW_SKIP_RANGE_SIZE, sizeof(OwSkipRange), OW_MAX_SKIP_RANGES, skip_check, skip_put, skip_get,
};

static const PackedPart records_part = {
        OW_RECORD_SIZE, sizeof(OwRecord), OW_MAX_FETCH_RECORDS, record_check, record_put, record_get,
};

static int part_size(const PackedPart *p, uint32_t n, size_t *ret_size) {
        if (!ret_size)
                return -EINVAL;
        if (n > p->max)
                return -OW_ERR_COUNT;
        *ret_size = ALIGN_TO((size_t) n * p->item_size, OW_BLOCK_SIZE) + OW_HMAC_SIZE;
        return 0;
}

static int part_encode(const PackedPart *p, const void *items, uint32_t n, uint8_t *buf, size_t size) {
        const uint8_t *item = items;
        size_t need;
        int r;

        if (!buf || (n > 0 && !items))
                return -EINVAL;
        r = part_size(p, n, &need);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < n; i++) {
                r = p->check(item + (size_t) i * p->item_sizeof);
                if (r < 0)
                        return r;
        }
        if (size < need)
                return -ENOBUFS;

        memset(buf, 0, need);
        for (uint32_t i = 0; i < n; i++)
                p->put(item + (size_t) i * p->item_sizeof, buf + (size_t) i * p->item_size);
        return (int) need;
}

static int part_decode(const PackedPart *p, const uint8_t *buf, size_t len, uint32_t n, void *ret) {
        uint8_t scratch[MAX(sizeof(OwRecord), sizeof(OwSkipRange))];
        size_t need;
        int r;

        assert(p->item_sizeof <= sizeof(scratch));
        if (!buf || (n > 0 && !ret))
                return -EINVAL;
        r = part_size(p, n, &need);
        if (r < 0)
                return r;
        r = check_length(len, need);
        if (r < 0)
                return r;

        /* Validate everything before writing anything to ret. */
        for (uint32_t i = 0; i < n; i++) {
                r = p->get(buf + (size_t) i * p->item_size, scratch);
                if (r < 0)
                        return r;
        }
        for (uint32_t i = 0; i < n; i++)
                (void) p->get(buf + (size_t) i * p->item_size,
                              (uint8_t *) ret + (size_t) i * p->item_sizeof);
        return 0;
}

/* The public ow_fetch_<name>_size() / _encode() / _decode() of a part. */
#define DEFINE_PART_CODEC(name, T, part)                                                      \
        int ow_fetch_##name##_size(uint32_t n, size_t *ret_size) {                            \
                return part_size(&(part), n, ret_size);                                       \
        }                                                                                     \
        int ow_fetch_##name##_encode(const T *items, uint32_t n, uint8_t *buf, size_t size) { \
                return part_encode(&(part), items, n, buf, size);                             \
        }                                                                                     \
        int ow_fetch_##name##_decode(const uint8_t *buf, size_t len, uint32_t n, T *ret) {    \
                return part_decode(&(part), buf, len, n, ret);                                \
        }

DEFINE_PART_CODEC(skips, OwSkipRange, skips_part)
DEFINE_PART_CODEC(records, OwRecord, records_part)

/* --- TWAMP-Control, RFC 5357 3.5 and 3.8 ------------------------------------ */

static bool tw_request_role_ok(const OwSessionRequest *m) {
        return !m->conf_sender && !m->conf_receiver;
}

static bool tw_request_schedule_ok(const OwSessionRequest *m) {
        return m->n_slots == 0 && m->n_packets == 0;
}

/* What the reference's server checks, in its order (TWAMP-PROTOCOL.md 3.2). */
static const RequestRule tw_request_rules[] = {
        { request_ipvn_ok, OW_ERR_IPVN },
        { tw_request_role_ok, OW_ERR_TW_ROLE },
        { tw_request_schedule_ok, OW_ERR_TW_SCHEDULE },
        { request_padding_ok, OW_ERR_COUNT },
        { request_typep_ok, OW_ERR_TYPEP },
};

int ow_tw_request_session_encode(const OwSessionRequest *m, uint8_t *buf, size_t size) {
        int r;

        if (!m || !buf)
                return -EINVAL;
        r = CHECK_RULES(tw_request_rules, m);
        if (r < 0)
                return r;
        if (size < OW_TW_REQUEST_SESSION_SIZE)
                return -ENOBUFS;
        /* OWAMP's preamble with its own command; slots, packets, Conf and
         * the SID go out as the zeros the rules made sure they are (the
         * SID too: the server makes it). */
        ow_request_preamble_put(m, buf);
        buf[0] = OW_CMD_REQUEST_TW_SESSION;
        memset(buf + 48, 0, OW_SID_SIZE);
        return OW_TW_REQUEST_SESSION_SIZE;
}

int ow_tw_request_session_decode(const uint8_t *buf, size_t len, OwSessionRequest *ret) {
        OwSessionRequest m;
        int r;

        if (!buf || !ret)
                return -EINVAL;
        r = check_length(len, OW_TW_REQUEST_SESSION_SIZE);
        if (r < 0)
                return r;
        if (buf[0] != OW_CMD_REQUEST_TW_SESSION)
                return -OW_ERR_COMMAND;
        ow_request_preamble_get(buf, &m);
        memset(m.sid.bytes, 0, OW_SID_SIZE); /* MBZ, RFC 5357 3.5 */
        r = CHECK_RULES(tw_request_rules, &m);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

static bool tw_stop_accept_ok(const OwTwStopSessions *m) {
        return accept_valid(m->accept);
}

DEFINE_RULE_TYPE(TwStopRule, OwTwStopSessions);
static const TwStopRule tw_stop_rules[] = {
        { tw_stop_accept_ok, OW_ERR_ACCEPT },
};

static void tw_stop_put(const void *p, uint8_t *buf) {
        const OwTwStopSessions *m = p;

        buf[0] = OW_CMD_STOP_SESSIONS;
        buf[1] = (uint8_t) m->accept;
        ow_put_be32(buf + 4, m->n_sessions);
}

static void tw_stop_get(const uint8_t *buf, void *p) {
        OwTwStopSessions *m = p;

        m->accept = buf[1];
        m->n_sessions = ow_get_be32(buf + 4);
}

DEFINE_FIXED_MESSAGE(tw_stop_sessions, tw_stop, OwTwStopSessions, tw_stop_rules, OW_TW_STOP_SESSIONS_SIZE,
                     OW_CMD_STOP_SESSIONS, NULL)
