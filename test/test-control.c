/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The control codecs on synthetic messages: every validation rule with its
 * exact error code, and encode/decode round trips with non-trivial values.
 * The captures are covered by test-capture-control.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-control.h"
#include "ow-error.h"
#include "ow-wire.h"
#include "testutil.h"

static void fill(uint8_t *p, size_t n, uint8_t seed) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (seed + 13 * i);
}

static OwSid sid_of(uint8_t seed) {
        OwSid s;
        fill(s.bytes, sizeof(s.bytes), seed);
        return s;
}

/* --- Server Greeting ------------------------------------------------------- */

static OwServerGreeting greeting_sample(void) {
        OwServerGreeting g = { .modes = OW_MODES_ALL, .count = 2048 };
        fill(g.challenge, sizeof(g.challenge), 1);
        fill(g.salt, sizeof(g.salt), 2);
        return g;
}

START_TEST(test_greeting) {
        OwServerGreeting g = greeting_sample(), d;
        uint8_t buf[OW_SERVER_GREETING_SIZE + 1];

        ck_assert_int_eq(ow_server_greeting_encode(&g, buf, sizeof(buf)), OW_SERVER_GREETING_SIZE);
        ck_assert(ow_all_zero(buf, 12));
        ck_assert_uint_eq(ow_get_be32(buf + 12), 7);
        ck_assert_uint_eq(ow_get_be32(buf + 48), 2048);
        ck_assert(ow_all_zero(buf + 52, 12));
        ck_assert_int_eq(ow_server_greeting_decode(buf, OW_SERVER_GREETING_SIZE, &d), 0);
        ck_assert_uint_eq(d.modes, g.modes);
        ck_assert_uint_eq(d.count, g.count);
        ck_assert_bytes_eq(d.challenge, g.challenge, OW_CHALLENGE_SIZE);
        ck_assert_bytes_eq(d.salt, g.salt, OW_SALT_SIZE);

        ck_assert_int_eq(ow_server_greeting_decode(buf, OW_SERVER_GREETING_SIZE - 1, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_server_greeting_decode(buf, OW_SERVER_GREETING_SIZE + 1, &d), -OW_ERR_TOO_LONG);
        ck_assert_int_eq(ow_server_greeting_decode(buf, 0, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_server_greeting_encode(&g, buf, OW_SERVER_GREETING_SIZE - 1), -ENOBUFS);

        /* MBZ is not checked; unknown mode bits are returned as sent. */
        buf[0] = 0xff;
        buf[60] = 0xff;
        buf[12] = 0x80;
        ck_assert_int_eq(ow_server_greeting_decode(buf, OW_SERVER_GREETING_SIZE, &d), 0);
        ck_assert_uint_eq(d.modes, 0x80000007);
        /* ... but we never send them. */
        ck_assert_int_eq(ow_server_greeting_encode(&d, buf, sizeof(buf)), -OW_ERR_MODE);
}
END_TEST

START_TEST(test_greeting_count) {
        OwServerGreeting g = greeting_sample(), d;
        uint8_t buf[OW_SERVER_GREETING_SIZE];

        ck_assert_int_eq(ow_server_greeting_encode(&g, buf, sizeof(buf)), OW_SERVER_GREETING_SIZE);
        ow_put_be32(buf + 48, 1023);
        ck_assert_int_eq(ow_server_greeting_decode(buf, sizeof(buf), &d), -OW_ERR_PBKDF2_COUNT);
        ow_put_be32(buf + 48, OW_PBKDF2_COUNT_MAX + 1);
        ck_assert_int_eq(ow_server_greeting_decode(buf, sizeof(buf), &d), -OW_ERR_PBKDF2_COUNT);
        ow_put_be32(buf + 48, 3000); /* not a power of two: the caller warns */
        ck_assert_int_eq(ow_server_greeting_decode(buf, sizeof(buf), &d), 0);

        /* Open mode only: the count is irrelevant. Modes 0: refused, decodes. */
        ow_put_be32(buf + 48, 0);
        ow_put_be32(buf + 12, OW_MODE_OPEN);
        ck_assert_int_eq(ow_server_greeting_decode(buf, sizeof(buf), &d), 0);
        ow_put_be32(buf + 12, 0);
        ck_assert_int_eq(ow_server_greeting_decode(buf, sizeof(buf), &d), 0);
        ck_assert_uint_eq(d.modes, 0);
        ow_put_be32(buf + 12, OW_MODE_AUTHENTICATED);
        ck_assert_int_eq(ow_server_greeting_decode(buf, sizeof(buf), &d), -OW_ERR_PBKDF2_COUNT);

        g.count = 100;
        ck_assert_int_eq(ow_server_greeting_encode(&g, buf, sizeof(buf)), -OW_ERR_PBKDF2_COUNT);
}
END_TEST

/* --- Set-Up-Response ------------------------------------------------------- */

static OwSetupResponse setup_sample(OwMode mode, const char *keyid) {
        OwSetupResponse s = { .mode = mode };
        size_t n = strlen(keyid);

        /* A bounded copy the compiler can see through (snprintf here trips
         * -Wformat-truncation at -O3: the callers pass up to 80 bytes). */
        ck_assert_uint_lt(n, sizeof(s.keyid));
        memcpy(s.keyid, keyid, n + 1);
        fill(s.token, sizeof(s.token), 3);
        fill(s.client_iv, sizeof(s.client_iv), 4);
        return s;
}

START_TEST(test_setup_response) {
        OwSetupResponse s = setup_sample(OW_MODE_ENCRYPTED, "alice@example.org"), d;
        uint8_t buf[OW_SETUP_RESPONSE_SIZE + 16];

        ck_assert_int_eq(ow_setup_response_encode(&s, buf, sizeof(buf)), OW_SETUP_RESPONSE_SIZE);
        ck_assert_uint_eq(ow_get_be32(buf), 4);
        ck_assert_mem_eq(buf + 4, "alice@example.org", 17);
        ck_assert(ow_all_zero(buf + 4 + 17, 80 - 17));
        ck_assert_int_eq(ow_setup_response_decode(buf, OW_SETUP_RESPONSE_SIZE, &d), 0);
        ck_assert_int_eq(d.mode, OW_MODE_ENCRYPTED);
        ck_assert_str_eq(d.keyid, "alice@example.org");
        ck_assert_bytes_eq(d.token, s.token, OW_TOKEN_SIZE);
        ck_assert_bytes_eq(d.client_iv, s.client_iv, OW_IV_SIZE);

        ck_assert_int_eq(ow_setup_response_decode(buf, OW_SETUP_RESPONSE_SIZE - 1, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_setup_response_decode(buf, OW_SETUP_RESPONSE_SIZE + 16, &d), -OW_ERR_TOO_LONG);
        ck_assert_int_eq(ow_setup_response_encode(&s, buf, 100), -ENOBUFS);
}
END_TEST

START_TEST(test_setup_response_mode) {
        static const uint32_t bad[] = { 0, 3, 5, 6, 7, 8, 16, 0x80000002 };
        OwSetupResponse s = setup_sample(OW_MODE_AUTHENTICATED, "bob"), d;
        uint8_t buf[OW_SETUP_RESPONSE_SIZE];

        ck_assert_int_eq(ow_setup_response_encode(&s, buf, sizeof(buf)), OW_SETUP_RESPONSE_SIZE);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ow_put_be32(buf, bad[i]);
                ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &d), -OW_ERR_MODE);
                s.mode = bad[i];
                ck_assert_int_eq(ow_setup_response_encode(&s, buf, sizeof(buf)), -OW_ERR_MODE);
        }
}
END_TEST

START_TEST(test_setup_response_keyid) {
        OwSetupResponse s = setup_sample(OW_MODE_AUTHENTICATED, "bob"), d;
        uint8_t buf[OW_SETUP_RESPONSE_SIZE];
        char name[OW_KEYID_SIZE + 2];

        /* 80 characters fill the field without a NUL, as in the reference. */
        memset(name, 'k', OW_KEYID_SIZE);
        name[OW_KEYID_SIZE] = 0;
        s = setup_sample(OW_MODE_AUTHENTICATED, name);
        ck_assert_int_eq(ow_setup_response_encode(&s, buf, sizeof(buf)), OW_SETUP_RESPONSE_SIZE);
        ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &d), 0);
        ck_assert_str_eq(d.keyid, name);
        ck_assert_uint_eq(strlen(d.keyid), OW_KEYID_SIZE);

        /* Empty, with a space or a control character, garbage after the
         * NUL padding. */
        s = setup_sample(OW_MODE_AUTHENTICATED, "bob");
        ck_assert_int_eq(ow_setup_response_encode(&s, buf, sizeof(buf)), OW_SETUP_RESPONSE_SIZE);
        buf[4] = 0;
        ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &d), -OW_ERR_KEYID);
        buf[4] = ' ';
        ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &d), -OW_ERR_KEYID);
        buf[4] = '\t';
        ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &d), -OW_ERR_KEYID);
        buf[4] = 0x7f;
        ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &d), -OW_ERR_KEYID);
        buf[4] = 0xc3;
        ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &d), -OW_ERR_KEYID);
        buf[4] = 'b';
        buf[83] = 'x';
        ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &d), -OW_ERR_KEYID);
        buf[83] = 0;
        ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &d), 0);

        /* We never send what we refuse. */
        ck_assert_int_eq(ow_keyid_check(""), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_keyid_check(NULL), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_keyid_check("a b"), -OW_ERR_KEYID);
        ck_assert_int_eq(ow_keyid_check("testuser"), 0);
        memset(name, 'k', OW_KEYID_SIZE + 1);
        name[OW_KEYID_SIZE + 1] = 0;
        ck_assert_int_eq(ow_keyid_check(name), -OW_ERR_KEYID);
        s.keyid[0] = 0;
        ck_assert_int_eq(ow_setup_response_encode(&s, buf, sizeof(buf)), -OW_ERR_KEYID);
}
END_TEST

START_TEST(test_setup_response_open) {
        /* Open mode: KeyID, Token and IV unused, written and decoded as zeros. */
        OwSetupResponse s = setup_sample(OW_MODE_OPEN, "ignored"), d;
        uint8_t buf[OW_SETUP_RESPONSE_SIZE];

        ck_assert_int_eq(ow_setup_response_encode(&s, buf, sizeof(buf)), OW_SETUP_RESPONSE_SIZE);
        ck_assert_uint_eq(ow_get_be32(buf), 1);
        ck_assert(ow_all_zero(buf + 4, OW_SETUP_RESPONSE_SIZE - 4));
        fill(buf + 4, OW_SETUP_RESPONSE_SIZE - 4, 0x20);
        ck_assert_int_eq(ow_setup_response_decode(buf, sizeof(buf), &d), 0);
        ck_assert_int_eq(d.mode, OW_MODE_OPEN);
        ck_assert_str_eq(d.keyid, "");
        ck_assert(ow_all_zero(d.token, OW_TOKEN_SIZE));
        ck_assert(ow_all_zero(d.client_iv, OW_IV_SIZE));
}
END_TEST

/* --- Server-Start ---------------------------------------------------------- */

START_TEST(test_server_start) {
        OwServerStart s = { .accept = OW_ACCEPT_TEMP_RESOURCE, .start_time = 0xeeb4dc4cc069728aULL }, d;
        uint8_t buf[OW_SERVER_START_SIZE];

        fill(s.server_iv, sizeof(s.server_iv), 5);
        ck_assert_int_eq(ow_server_start_encode(&s, buf, sizeof(buf)), OW_SERVER_START_SIZE);
        ck_assert(ow_all_zero(buf, 15));
        ck_assert_uint_eq(buf[15], 5);
        ck_assert(ow_all_zero(buf + 40, 8));
        ck_assert_int_eq(ow_server_start_decode(buf, sizeof(buf), &d), 0);
        ck_assert_int_eq(d.accept, OW_ACCEPT_TEMP_RESOURCE);
        ck_assert_uint_eq(d.start_time, s.start_time);
        ck_assert_bytes_eq(d.server_iv, s.server_iv, OW_IV_SIZE);

        buf[15] = 6;
        ck_assert_int_eq(ow_server_start_decode(buf, sizeof(buf), &d), -OW_ERR_ACCEPT);
        buf[15] = 255;
        ck_assert_int_eq(ow_server_start_decode(buf, sizeof(buf), &d), -OW_ERR_ACCEPT);
        buf[15] = 0;
        buf[0] = 0xff; /* MBZ */
        ck_assert_int_eq(ow_server_start_decode(buf, sizeof(buf), &d), 0);
        ck_assert_int_eq(ow_server_start_decode(buf, 47, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_server_start_decode(buf, 49, &d), -OW_ERR_TOO_LONG);
        s.accept = 6;
        ck_assert_int_eq(ow_server_start_encode(&s, buf, sizeof(buf)), -OW_ERR_ACCEPT);
}
END_TEST

/* --- Commands --------------------------------------------------------------- */

START_TEST(test_command_type) {
        uint8_t b[16] = {};

        ck_assert_int_eq(ow_command_type(b, 0), -OW_ERR_TRUNCATED);
        for (unsigned c = 0; c < 256; c++) {
                b[0] = (uint8_t) c;
                ck_assert_int_eq(ow_command_type(b, 1), c >= 1 && c <= 4 ? (int) c : -OW_ERR_COMMAND);
        }
}
END_TEST

START_TEST(test_command_size) {
        uint8_t b[64] = {};
        size_t n;

        ck_assert_int_eq(ow_command_size(b, 15, &n), 1);
        ck_assert_uint_eq(n, 16);
        ck_assert_int_eq(ow_command_size(b, 16, &n), -OW_ERR_COMMAND);
        b[0] = 5; /* Request-OW-Micro-Sessions: not ours */
        ck_assert_int_eq(ow_command_size(b, 16, &n), -OW_ERR_COMMAND);

        b[0] = OW_CMD_REQUEST_SESSION;
        ow_put_be32(b + 4, 3);
        ck_assert_int_eq(ow_command_size(b, 16, &n), 0);
        ck_assert_uint_eq(n, 112 + 3 * 16 + 16);
        ow_put_be32(b + 4, 0);
        ck_assert_int_eq(ow_command_size(b, 16, &n), -OW_ERR_COUNT);
        ow_put_be32(b + 4, OW_MAX_SLOTS);
        ck_assert_int_eq(ow_command_size(b, 16, &n), 0);
        ck_assert_uint_eq(n, 112 + (size_t) OW_MAX_SLOTS * 16 + 16);
        ow_put_be32(b + 4, OW_MAX_SLOTS + 1);
        ck_assert_int_eq(ow_command_size(b, 16, &n), -OW_ERR_COUNT);
        ow_put_be32(b + 4, UINT32_MAX);
        ck_assert_int_eq(ow_command_size(b, 16, &n), -OW_ERR_COUNT);

        b[0] = OW_CMD_START_SESSIONS;
        ck_assert_int_eq(ow_command_size(b, 16, &n), 0);
        ck_assert_uint_eq(n, 32);
        b[0] = OW_CMD_FETCH_SESSION;
        ck_assert_int_eq(ow_command_size(b, 16, &n), 0);
        ck_assert_uint_eq(n, 48);

        /* Stop-Sessions, no sessions: header + HMAC. */
        memset(b, 0, sizeof(b));
        b[0] = OW_CMD_STOP_SESSIONS;
        ck_assert_int_eq(ow_command_size(b, 16, &n), 0);
        ck_assert_uint_eq(n, 32);
        ow_put_be32(b + 4, OW_MAX_STOP_SESSIONS + 1);
        ck_assert_int_eq(ow_command_size(b, 16, &n), -OW_ERR_COUNT);
}
END_TEST

/* --- Request-Session -------------------------------------------------------- */

static OwSlot sample_slots[5] = {
        { OW_SLOT_EXPONENTIAL, UINT64_C(0x0ccccccc) },
        { OW_SLOT_FIXED, UINT64_C(0x100000000) },
        { OW_SLOT_EXPONENTIAL, UINT64_C(0xfffffffffffffff0) },
        { OW_SLOT_FIXED, 1 },
        { OW_SLOT_FIXED, 0 },
};

static OwSessionRequest request_sample(void) {
        OwSessionRequest q = {
                .ipvn = 6,
                .conf_sender = false,
                .conf_receiver = true,
                .n_slots = ELEMENTSOF(sample_slots),
                .n_packets = 100000,
                .sender_port = 8920,
                .receiver_port = 65535,
                .sid = sid_of(9),
                .padding_length = 1400,
                .start_time = UINT64_C(0xeeb4dc4fc111be6e),
                .timeout = UINT64_C(0x00000002000420f7),
                .type_p = ow_typep_from_dscp(46),
                .slots = sample_slots,
        };
        test_unhex("2001 0db8 0000 0000 0000 0000 0000 0001", q.sender_addr, OW_ADDR_SIZE);
        test_unhex("fe80 0000 0000 0000 1234 56ff fe78 9abc", q.receiver_addr, OW_ADDR_SIZE);
        return q;
}

static size_t request_encode(const OwSessionRequest *q, uint8_t *buf, size_t size) {
        int r = ow_request_session_encode(q, buf, size);
        ck_assert_int_gt(r, 0);
        return (size_t) r;
}

START_TEST(test_request_roundtrip_ipv6) {
        OwSessionRequest q = request_sample(), d;
        uint8_t buf[512];
        size_t n, want;

        ck_assert_int_eq(ow_request_session_size(5, &want), 0);
        n = request_encode(&q, buf, sizeof(buf));
        ck_assert_uint_eq(n, want);
        ck_assert_uint_eq(n, 112 + 5 * 16 + 16);
        ck_assert_uint_eq(buf[0], 1);
        ck_assert_uint_eq(buf[1], 6);
        ck_assert_uint_eq(buf[2], 0);
        ck_assert_uint_eq(buf[3], 1);
        ck_assert(ow_all_zero(buf + 88, 24));  /* MBZ and the HMAC field */
        ck_assert(ow_all_zero(buf + n - 16, 16));
        ck_assert_uint_eq(buf[112 + 16], 1);   /* second slot: fixed */
        ck_assert(ow_all_zero(buf + 112 + 17, 7));

        ck_assert_int_eq(ow_request_session_decode(buf, n, &d), 0);
        ck_assert_uint_eq(d.ipvn, 6);
        ck_assert(!d.conf_sender);
        ck_assert(d.conf_receiver);
        ck_assert_uint_eq(d.n_slots, 5);
        ck_assert_uint_eq(d.n_packets, q.n_packets);
        ck_assert_uint_eq(d.sender_port, q.sender_port);
        ck_assert_uint_eq(d.receiver_port, q.receiver_port);
        ck_assert_bytes_eq(d.sender_addr, q.sender_addr, OW_ADDR_SIZE);
        ck_assert_bytes_eq(d.receiver_addr, q.receiver_addr, OW_ADDR_SIZE);
        ck_assert_bytes_eq(d.sid.bytes, q.sid.bytes, OW_SID_SIZE);
        ck_assert_uint_eq(d.padding_length, q.padding_length);
        ck_assert_uint_eq(d.start_time, q.start_time);
        ck_assert_uint_eq(d.timeout, q.timeout);
        ck_assert_uint_eq(d.type_p, q.type_p);
        for (size_t i = 0; i < 5; i++) {
                ck_assert_int_eq(d.slots[i].type, sample_slots[i].type);
                ck_assert_uint_eq(d.slots[i].param, sample_slots[i].param);
        }
        ow_session_request_done(&d);
        ck_assert_ptr_null(d.slots);
        ow_session_request_done(&d);
}
END_TEST

START_TEST(test_request_many_slots_ipv4) {
        _cleanup_free_ OwSlot *slots = calloc(OW_MAX_SLOTS, sizeof(OwSlot));
        _cleanup_free_ uint8_t *buf = NULL;
        OwSessionRequest q = request_sample(), d;
        size_t size;

        ck_assert_ptr_nonnull(slots);
        for (uint32_t i = 0; i < OW_MAX_SLOTS; i++)
                slots[i] = (OwSlot) { .type = i % 3 == 0 ? OW_SLOT_FIXED : OW_SLOT_EXPONENTIAL, .param = i };
        q.slots = slots;
        q.n_slots = OW_MAX_SLOTS;
        q.ipvn = 4;
        q.conf_sender = true;
        q.conf_receiver = false;
        memset(q.sender_addr, 0xee, OW_ADDR_SIZE); /* only 4 octets go out */
        test_unhex("c0000201", q.sender_addr, 4);
        test_unhex("c6336405", q.receiver_addr, 4);

        ck_assert_int_eq(ow_request_session_size(OW_MAX_SLOTS, &size), 0);
        buf = malloc(size);
        ck_assert_ptr_nonnull(buf);
        ck_assert_uint_eq(request_encode(&q, buf, size), size);
        ck_assert(ow_all_zero(buf + 16 + 4, 12));
        ck_assert(ow_all_zero(buf + 32 + 4, 12));
        ck_assert_int_eq(ow_request_session_encode(&q, buf, size - 1), -ENOBUFS);

        /* Garbage in the IPv4 MBZ octets is not checked, and not kept. */
        memset(buf + 16 + 4, 0x55, 12);
        ck_assert_int_eq(ow_request_session_decode(buf, size, &d), 0);
        ck_assert_uint_eq(d.ipvn, 4);
        ck_assert(d.conf_sender);
        ck_assert_mem_eq(d.sender_addr, "\xc0\x00\x02\x01", 4);
        ck_assert(ow_all_zero(d.sender_addr + 4, 12));
        ck_assert_mem_eq(d.receiver_addr, "\xc6\x33\x64\x05", 4);
        for (uint32_t i = 0; i < OW_MAX_SLOTS; i++) {
                ck_assert_int_eq(d.slots[i].type, slots[i].type);
                ck_assert_uint_eq(d.slots[i].param, i);
        }
        ow_session_request_done(&d);
}
END_TEST

START_TEST(test_request_length) {
        OwSessionRequest q = request_sample(), d;
        uint8_t buf[512];
        size_t n = request_encode(&q, buf, sizeof(buf));

        ck_assert_int_eq(ow_request_session_decode(buf, 111, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_request_session_decode(buf, 112, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_request_session_decode(buf, n - 16, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_request_session_decode(buf, n - 1, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_request_session_decode(buf, n + 16, &d), -OW_ERR_TOO_LONG);
        /* A lying slot count is caught by the length, never trusted. */
        ow_put_be32(buf + 4, 6);
        ck_assert_int_eq(ow_request_session_decode(buf, n, &d), -OW_ERR_TRUNCATED);
        ow_put_be32(buf + 4, 4);
        ck_assert_int_eq(ow_request_session_decode(buf, n, &d), -OW_ERR_TOO_LONG);
}
END_TEST

START_TEST(test_request_rules) {
        OwSessionRequest q = request_sample(), d;
        uint8_t buf[512], orig[512];
        size_t n = request_encode(&q, orig, sizeof(orig));

#define MUTATE(off, val, err)                                                            \
        do {                                                                             \
                memcpy(buf, orig, n);                                                    \
                buf[(off)] = (val);                                                      \
                ck_assert_int_eq(ow_request_session_decode(buf, n, &d), (err));          \
                if ((err) == 0)                                                          \
                        ow_session_request_done(&d);                                     \
        } while (0)

        MUTATE(0, 0, -OW_ERR_COMMAND);
        MUTATE(0, 2, -OW_ERR_COMMAND);
        MUTATE(7, 0, -OW_ERR_COUNT);           /* N = 0 */
        MUTATE(4, 0x40, -OW_ERR_COUNT);        /* N = 2^30 + 5 */
        MUTATE(1, 0, -OW_ERR_IPVN);
        MUTATE(1, 5, -OW_ERR_IPVN);
        MUTATE(1, 0x0e, -OW_ERR_IPVN);
        MUTATE(1, 0x46, 0);                    /* high nibble is MBZ */
        MUTATE(2, 1, -OW_ERR_CONF);            /* both */
        MUTATE(3, 0, -OW_ERR_CONF);            /* neither */
        MUTATE(3, 0x80, 0);                    /* any non-zero octet is "set" */
        memcpy(buf, orig, n);
        ow_put_be32(buf + 8, 0); /* no packets */
        ck_assert_int_eq(ow_request_session_decode(buf, n, &d), -OW_ERR_COUNT);
        memcpy(buf, orig, n);
        ow_put_be32(buf + 64, OW_MAX_PADDING + 1);
        ck_assert_int_eq(ow_request_session_decode(buf, n, &d), -OW_ERR_COUNT);
        ow_put_be32(buf + 64, OW_MAX_PADDING);
        ck_assert_int_eq(ow_request_session_decode(buf, n, &d), 0);
        ow_session_request_done(&d);
        MUTATE(84, 0x40, -OW_ERR_TYPEP);       /* PHB-ID form */
        MUTATE(87, 0x01, -OW_ERR_TYPEP);
        MUTATE(84, 0x3f, 0);                   /* DSCP 63 */
        MUTATE(112 + 2 * 16, 2, -OW_ERR_SLOT_TYPE);
        MUTATE(112 + 4 * 16, 0xff, -OW_ERR_SLOT_TYPE);
        /* MBZ octets and HMAC fields are not checked. */
        MUTATE(88, 0xff, 0);
        MUTATE(100, 0xff, 0);
        MUTATE(112 + 3, 0xff, 0);
        MUTATE(n - 1, 0xff, 0);
#undef MUTATE
}
END_TEST

START_TEST(test_request_rules_ordered) {
        /* Several broken fields: the first rule of the table wins. */
        OwSessionRequest q = request_sample(), d;
        uint8_t buf[512];
        size_t n = request_encode(&q, buf, sizeof(buf));

        buf[1] = 9;        /* IPVN */
        buf[2] = 1;        /* Conf */
        buf[84] = 0x40;    /* Type-P */
        ck_assert_int_eq(ow_request_session_decode(buf, n, &d), -OW_ERR_IPVN);
        buf[1] = 4;
        ck_assert_int_eq(ow_request_session_decode(buf, n, &d), -OW_ERR_CONF);
        buf[2] = 0;
        ck_assert_int_eq(ow_request_session_decode(buf, n, &d), -OW_ERR_TYPEP);
}
END_TEST

START_TEST(test_request_encode_rules) {
        OwSessionRequest q;
        uint8_t buf[512];
        OwSlot bad_slot[1] = { { .type = 7 } };

        q = request_sample();
        q.n_slots = 0;
        ck_assert_int_eq(ow_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_COUNT);
        q = request_sample();
        q.slots = NULL;
        ck_assert_int_eq(ow_request_session_encode(&q, buf, sizeof(buf)), -EINVAL);
        q = request_sample();
        q.ipvn = 5;
        ck_assert_int_eq(ow_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_IPVN);
        q = request_sample();
        q.conf_sender = true;
        ck_assert_int_eq(ow_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_CONF);
        q = request_sample();
        q.n_packets = 0;
        ck_assert_int_eq(ow_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_COUNT);
        q = request_sample();
        q.type_p = 1;
        ck_assert_int_eq(ow_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_TYPEP);
        q = request_sample();
        q.slots = bad_slot;
        q.n_slots = 1;
        ck_assert_int_eq(ow_request_session_encode(&q, buf, sizeof(buf)), -OW_ERR_SLOT_TYPE);
        ck_assert_int_eq(ow_request_session_size(OW_MAX_SLOTS + 1, &(size_t) { 0 }), -OW_ERR_COUNT);
}
END_TEST

/* --- Accept-Session, Start-Sessions, Start-Ack ------------------------------ */

START_TEST(test_accept_session) {
        OwAcceptSession a = { .accept = OW_ACCEPT_OK, .port = 8906, .sid = sid_of(7) }, d;
        uint8_t buf[OW_ACCEPT_SESSION_SIZE];

        ck_assert_int_eq(ow_accept_session_encode(&a, buf, sizeof(buf)), OW_ACCEPT_SESSION_SIZE);
        ck_assert_uint_eq(buf[1], 0);
        ck_assert(ow_all_zero(buf + 20, 28));
        ck_assert_int_eq(ow_accept_session_decode(buf, sizeof(buf), &d), 0);
        ck_assert_int_eq(d.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(d.port, 8906);
        ck_assert_bytes_eq(d.sid.bytes, a.sid.bytes, OW_SID_SIZE);

        ck_assert_int_eq(ow_accept_session_decode(buf, 32, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_accept_session_decode(buf, 64, &d), -OW_ERR_TOO_LONG);
        buf[25] = 0xff; /* MBZ */
        ck_assert_int_eq(ow_accept_session_decode(buf, sizeof(buf), &d), 0);
        buf[0] = 6;
        ck_assert_int_eq(ow_accept_session_decode(buf, sizeof(buf), &d), -OW_ERR_ACCEPT);
        buf[0] = 0;
        buf[2] = buf[3] = 0;
        ck_assert_int_eq(ow_accept_session_decode(buf, sizeof(buf), &d), -OW_ERR_PORT);
        buf[0] = OW_ACCEPT_UNSUPPORTED; /* a refusal carries port 0 */
        ck_assert_int_eq(ow_accept_session_decode(buf, sizeof(buf), &d), 0);
        ck_assert_int_eq(d.accept, OW_ACCEPT_UNSUPPORTED);

        a.port = 0;
        ck_assert_int_eq(ow_accept_session_encode(&a, buf, sizeof(buf)), -OW_ERR_PORT);
        a.accept = 9;
        ck_assert_int_eq(ow_accept_session_encode(&a, buf, sizeof(buf)), -OW_ERR_ACCEPT);
}
END_TEST

START_TEST(test_start_sessions_ack) {
        uint8_t buf[48];
        OwAccept a;

        ck_assert_int_eq(ow_start_sessions_encode(buf, sizeof(buf)), 32);
        ck_assert_uint_eq(buf[0], 2);
        ck_assert(ow_all_zero(buf + 1, 31));
        ck_assert_int_eq(ow_start_sessions_decode(buf, 32), 0);
        ck_assert_int_eq(ow_start_sessions_decode(buf, 31), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_start_sessions_decode(buf, 48), -OW_ERR_TOO_LONG);
        buf[5] = 1; /* MBZ */
        ck_assert_int_eq(ow_start_sessions_decode(buf, 32), 0);
        buf[0] = 3;
        ck_assert_int_eq(ow_start_sessions_decode(buf, 32), -OW_ERR_COMMAND);
        ck_assert_int_eq(ow_start_sessions_encode(buf, 31), -ENOBUFS);

        ck_assert_int_eq(ow_start_ack_encode(OW_ACCEPT_INTERNAL, buf, sizeof(buf)), 32);
        ck_assert_int_eq(ow_start_ack_decode(buf, 32, &a), 0);
        ck_assert_int_eq(a, OW_ACCEPT_INTERNAL);
        ck_assert_int_eq(ow_start_ack_decode(buf, 16, &a), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_start_ack_decode(buf, 33, &a), -OW_ERR_TOO_LONG);
        buf[0] = 6;
        ck_assert_int_eq(ow_start_ack_decode(buf, 32, &a), -OW_ERR_ACCEPT);
        ck_assert_int_eq(ow_start_ack_encode(6, buf, sizeof(buf)), -OW_ERR_ACCEPT);
}
END_TEST

/* --- Stop-Sessions ---------------------------------------------------------- */

static OwSkipRange ranges_a[] = { { 3, 3 } };                             /* K = 1 */
static OwSkipRange ranges_b[] = { { 0, 1 }, { 7, 9 } };                   /* K = 2 */
static OwSkipRange ranges_c[] = { { 5, 5 }, { 10, 20 }, { 21, 4000000000u } }; /* K = 3 */

static OwStopSessions stop_sample(OwStopSession sessions[4]) {
        sessions[0] = (OwStopSession) { .sid = sid_of(1), .next_seqno = 10 };
        sessions[1] = (OwStopSession) {
                .sid = sid_of(2), .next_seqno = 4, .n_skip_ranges = 1, .skip_ranges = ranges_a
        };
        sessions[2] = (OwStopSession) {
                .sid = sid_of(3), .next_seqno = 100, .n_skip_ranges = 2, .skip_ranges = ranges_b
        };
        sessions[3] = (OwStopSession) {
                .sid = sid_of(4), .next_seqno = UINT32_MAX, .n_skip_ranges = 3, .skip_ranges = ranges_c
        };
        return (OwStopSessions) { .accept = OW_ACCEPT_FAILURE, .n_sessions = 4, .sessions = sessions };
}

/* Offsets of the sessions in the sample: K = 0, 1, 2, 3. */
#define STOP_S0 16
#define STOP_S1 (STOP_S0 + 32)
#define STOP_S2 (STOP_S1 + 32)
#define STOP_S3 (STOP_S2 + 48)
#define STOP_END (STOP_S3 + 48)
#define STOP_SIZE (STOP_END + 16)

START_TEST(test_stop_roundtrip) {
        OwStopSession ss[4];
        OwStopSessions m = stop_sample(ss), d;
        uint8_t buf[STOP_SIZE + 16];
        size_t n;

        ck_assert_int_eq(ow_stop_sessions_size(&m, &n), 0);
        ck_assert_uint_eq(n, STOP_SIZE);
        ck_assert_int_eq(ow_stop_sessions_encode(&m, buf, sizeof(buf)), STOP_SIZE);
        ck_assert_int_eq(ow_stop_sessions_encode(&m, buf, STOP_SIZE - 1), -ENOBUFS);

        /* Layout: K even -> 8 zero octets after the ranges, K odd -> none. */
        ck_assert_uint_eq(buf[0], 3);
        ck_assert_uint_eq(buf[1], 1);
        ck_assert_uint_eq(ow_get_be32(buf + 4), 4);
        ck_assert_uint_eq(ow_get_be32(buf + STOP_S0 + 16), 10);
        ck_assert_uint_eq(ow_get_be32(buf + STOP_S0 + 20), 0);
        ck_assert(ow_all_zero(buf + STOP_S0 + 24, 8));
        ck_assert_uint_eq(ow_get_be32(buf + STOP_S1 + 24), 3);
        ck_assert_uint_eq(ow_get_be32(buf + STOP_S1 + 28), 3);
        ck_assert_uint_eq(ow_get_be32(buf + STOP_S2 + 36), 9);
        ck_assert(ow_all_zero(buf + STOP_S2 + 40, 8));
        ck_assert_uint_eq(ow_get_be32(buf + STOP_S3 + 44), 4000000000u);
        ck_assert(ow_all_zero(buf + STOP_END, 16));

        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), 0);
        ck_assert_int_eq(d.accept, OW_ACCEPT_FAILURE);
        ck_assert_uint_eq(d.n_sessions, 4);
        for (size_t i = 0; i < 4; i++) {
                ck_assert_bytes_eq(d.sessions[i].sid.bytes, ss[i].sid.bytes, OW_SID_SIZE);
                ck_assert_uint_eq(d.sessions[i].next_seqno, ss[i].next_seqno);
                ck_assert_uint_eq(d.sessions[i].n_skip_ranges, ss[i].n_skip_ranges);
                for (size_t j = 0; j < ss[i].n_skip_ranges; j++) {
                        ck_assert_uint_eq(d.sessions[i].skip_ranges[j].first, ss[i].skip_ranges[j].first);
                        ck_assert_uint_eq(d.sessions[i].skip_ranges[j].last, ss[i].skip_ranges[j].last);
                }
        }
        ck_assert_ptr_null(d.sessions[0].skip_ranges);
        ow_stop_sessions_done(&d);
        ck_assert_ptr_null(d.sessions);

        /* No sessions at all. */
        m = (OwStopSessions) { .accept = OW_ACCEPT_OK };
        ck_assert_int_eq(ow_stop_sessions_encode(&m, buf, sizeof(buf)), 32);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, 32, &d), 0);
        ck_assert_uint_eq(d.n_sessions, 0);
        ow_stop_sessions_done(&d);
}
END_TEST

START_TEST(test_stop_walk) {
        /* A reader learns the size block by block, as a server would. */
        OwStopSession ss[4];
        OwStopSessions m = stop_sample(ss);
        uint8_t buf[STOP_SIZE];
        size_t have = 16, need;
        unsigned steps = 0;
        int r;

        ck_assert_int_eq(ow_stop_sessions_encode(&m, buf, sizeof(buf)), STOP_SIZE);
        while ((r = ow_command_size(buf, have, &need)) == 1) {
                ck_assert_uint_gt(need, have);
                ck_assert_uint_le(need, STOP_END); /* never asks for the HMAC block */
                have = need;
                steps++;
        }
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(need, STOP_SIZE);
        ck_assert_uint_eq(steps, 4);

        /* Counts are bounded as soon as they are seen. */
        ow_put_be32(buf + STOP_S2 + 20, OW_MAX_SKIP_RANGES + 1);
        ck_assert_int_eq(ow_command_size(buf, STOP_S2 + 32, &need), -OW_ERR_COUNT);
}
END_TEST

START_TEST(test_stop_rules) {
        OwStopSession ss[4];
        OwStopSessions m = stop_sample(ss), d;
        uint8_t buf[STOP_SIZE + 16], orig[STOP_SIZE];

        ck_assert_int_eq(ow_stop_sessions_encode(&m, orig, sizeof(orig)), STOP_SIZE);

#define RESET() memcpy(buf, orig, STOP_SIZE)
        RESET();
        ck_assert_int_eq(ow_stop_sessions_decode(buf, 31, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_S2 + 8, &d), -OW_ERR_TRUNCATED); /* mid-record */
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_END, &d), -OW_ERR_TRUNCATED);    /* no HMAC */
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE + 16, &d), -OW_ERR_TOO_LONG);

        buf[0] = 1;
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_COMMAND);
        RESET();
        buf[1] = 6;
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_ACCEPT);

        /* Counts: sessions, one K, and the sum of Ks. */
        RESET();
        ow_put_be32(buf + 4, OW_MAX_STOP_SESSIONS + 1);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_COUNT);
        ow_put_be32(buf + 4, UINT32_MAX);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_COUNT);
        RESET();
        ow_put_be32(buf + STOP_S0 + 20, OW_MAX_SKIP_RANGES + 1);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_COUNT);
        RESET();
        ow_put_be32(buf + STOP_S0 + 20, OW_MAX_SKIP_RANGES);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_TRUNCATED);

        /* A session count that lies about the records that follow. */
        RESET();
        ow_put_be32(buf + 4, 3);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_TOO_LONG);
        ow_put_be32(buf + 4, 5);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_TRUNCATED);

        /* Padding: K = 0 and K = 2 have 8 octets that must be zero. */
        RESET();
        buf[STOP_S0 + 31] = 1;
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_PADDING);
        RESET();
        buf[STOP_S2 + 40 + 4] = 0x80; /* the second half of the padding */
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_PADDING);
        /* ... the other MBZ fields are not checked. */
        RESET();
        buf[2] = buf[3] = buf[15] = 0xff;
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), 0);
        ow_stop_sessions_done(&d);

        /* First > Last, in any session. */
        RESET();
        ow_put_be32(buf + STOP_S3 + 24 + 8, 21); /* {21, 20} */
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_RANGE);
        RESET();
        ow_put_be32(buf + STOP_S1 + 24, 4); /* {4, 3} */
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), -OW_ERR_RANGE);
        /* Ranges out of order are accepted (the reference's check is a no-op). */
        RESET();
        ow_put_be32(buf + STOP_S2 + 24, 50);
        ow_put_be32(buf + STOP_S2 + 28, 60);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, STOP_SIZE, &d), 0);
        ow_stop_sessions_done(&d);
#undef RESET

        /* The encoder applies the same rules. */
        m.accept = 6;
        ck_assert_int_eq(ow_stop_sessions_encode(&m, buf, sizeof(buf)), -OW_ERR_ACCEPT);
        m = stop_sample(ss);
        ranges_b[1] = (OwSkipRange) { 9, 7 };
        ck_assert_int_eq(ow_stop_sessions_encode(&m, buf, sizeof(buf)), -OW_ERR_RANGE);
        ranges_b[1] = (OwSkipRange) { 7, 9 };
        m.n_sessions = OW_MAX_STOP_SESSIONS + 1;
        ck_assert_int_eq(ow_stop_sessions_encode(&m, buf, sizeof(buf)), -OW_ERR_COUNT);
        m = stop_sample(ss);
        ss[1].skip_ranges = NULL;
        ck_assert_int_eq(ow_stop_sessions_encode(&m, buf, sizeof(buf)), -EINVAL);
}
END_TEST

START_TEST(test_stop_total_ranges) {
        /* Two sessions whose Ks are each in bounds but whose sum is not. */
        size_t rec0 = 16 + 8 + 8 * ((size_t) OW_MAX_SKIP_RANGES - 1); /* K odd: no padding */
        size_t size = 16 + rec0 + 32 + 16, need;
        _cleanup_free_ uint8_t *buf = calloc(1, size);
        OwStopSessions d;

        ck_assert_ptr_nonnull(buf);
        buf[0] = OW_CMD_STOP_SESSIONS;
        ow_put_be32(buf + 4, 2);
        ow_put_be32(buf + 16 + 20, OW_MAX_SKIP_RANGES - 1);
        for (size_t i = 0; i < OW_MAX_SKIP_RANGES - 1; i++)
                ow_put_be32(buf + 16 + 24 + 8 * i + 4, 1); /* {0, 1} */
        ow_put_be32(buf + 16 + rec0 + 20, 1);
        ck_assert_int_eq(ow_command_size(buf, size, &need), 0);
        ck_assert_uint_eq(need, size); /* K = 1 fits in the Next Seqno block */
        ow_put_be32(buf + 16 + rec0 + 20, 0);
        ck_assert_int_eq(ow_command_size(buf, size, &need), 0);
        ck_assert_uint_eq(need, size);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, size, &d), 0);
        ck_assert_uint_eq(d.sessions[0].n_skip_ranges, OW_MAX_SKIP_RANGES - 1);
        ck_assert_uint_eq(d.sessions[0].skip_ranges[OW_MAX_SKIP_RANGES - 2].last, 1);
        ow_stop_sessions_done(&d);
        ow_put_be32(buf + 16 + rec0 + 20, 2);
        ck_assert_int_eq(ow_command_size(buf, size, &need), -OW_ERR_COUNT);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, size, &d), -OW_ERR_COUNT);
}
END_TEST

START_TEST(test_stop_many_sessions) {
        /* The largest Stop-Sessions we accept: every session with K = 1. */
        _cleanup_free_ OwStopSession *ss = calloc(OW_MAX_STOP_SESSIONS, sizeof(OwStopSession));
        _cleanup_free_ uint8_t *buf = NULL;
        OwSkipRange one = { 1, 2 };
        OwStopSessions m = { .n_sessions = OW_MAX_STOP_SESSIONS, .sessions = ss }, d;
        size_t n;

        ck_assert_ptr_nonnull(ss);
        for (uint32_t i = 0; i < OW_MAX_STOP_SESSIONS; i++)
                ss[i] = (OwStopSession) {
                        .sid = sid_of((uint8_t) i), .next_seqno = i, .n_skip_ranges = 1, .skip_ranges = &one
                };
        ck_assert_int_eq(ow_stop_sessions_size(&m, &n), 0);
        ck_assert_uint_eq(n, 32 + (size_t) OW_MAX_STOP_SESSIONS * 32);
        buf = malloc(n);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(ow_stop_sessions_encode(&m, buf, n), (int) n);
        ck_assert_int_eq(ow_stop_sessions_decode(buf, n, &d), 0);
        ck_assert_uint_eq(d.n_sessions, OW_MAX_STOP_SESSIONS);
        ck_assert_uint_eq(d.sessions[OW_MAX_STOP_SESSIONS - 1].next_seqno, OW_MAX_STOP_SESSIONS - 1);
        ck_assert_uint_eq(d.sessions[OW_MAX_STOP_SESSIONS - 1].skip_ranges[0].last, 2);
        ow_stop_sessions_done(&d);
}
END_TEST

/* --- Fetch-Session, Fetch-Ack ----------------------------------------------- */

START_TEST(test_fetch_session) {
        OwFetchSession f = { .begin = 0, .end = UINT32_MAX, .sid = sid_of(8) }, d;
        uint8_t buf[48];

        ck_assert_int_eq(ow_fetch_session_encode(&f, buf, sizeof(buf)), 48);
        ck_assert_uint_eq(buf[0], 4);
        ck_assert(ow_all_zero(buf + 1, 7));
        ck_assert(ow_all_zero(buf + 32, 16));
        ck_assert_int_eq(ow_fetch_session_decode(buf, 48, &d), 0);
        ck_assert_uint_eq(d.begin, 0);
        ck_assert_uint_eq(d.end, UINT32_MAX);
        ck_assert_bytes_eq(d.sid.bytes, f.sid.bytes, OW_SID_SIZE);

        ck_assert_int_eq(ow_fetch_session_decode(buf, 47, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_fetch_session_decode(buf, 64, &d), -OW_ERR_TOO_LONG);
        buf[3] = 0xff; /* MBZ */
        ck_assert_int_eq(ow_fetch_session_decode(buf, 48, &d), 0);
        buf[0] = 5;
        ck_assert_int_eq(ow_fetch_session_decode(buf, 48, &d), -OW_ERR_COMMAND);
        buf[0] = 4;
        ow_put_be32(buf + 8, 10);
        ow_put_be32(buf + 12, 9);
        ck_assert_int_eq(ow_fetch_session_decode(buf, 48, &d), -OW_ERR_RANGE);
        ow_put_be32(buf + 12, 10); /* a single packet */
        ck_assert_int_eq(ow_fetch_session_decode(buf, 48, &d), 0);
        f.begin = 5;
        f.end = 4;
        ck_assert_int_eq(ow_fetch_session_encode(&f, buf, sizeof(buf)), -OW_ERR_RANGE);
}
END_TEST

START_TEST(test_fetch_ack) {
        OwFetchAck a = { .accept = OW_ACCEPT_OK, .finished = 2, .next_seqno = 77, .n_skip_ranges = 3,
                         .n_records = 123456 },
                   d;
        uint8_t buf[32];

        ck_assert_int_eq(ow_fetch_ack_encode(&a, buf, sizeof(buf)), 32);
        ck_assert(ow_all_zero(buf + 2, 2));
        ck_assert(ow_all_zero(buf + 16, 16));
        ck_assert_int_eq(ow_fetch_ack_decode(buf, 32, &d), 0);
        ck_assert_int_eq(d.accept, OW_ACCEPT_OK);
        ck_assert_uint_eq(d.finished, 2); /* as sent: "incomplete" */
        ck_assert_uint_eq(d.next_seqno, 77);
        ck_assert_uint_eq(d.n_skip_ranges, 3);
        ck_assert_uint_eq(d.n_records, 123456);

        ck_assert_int_eq(ow_fetch_ack_decode(buf, 31, &d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_fetch_ack_decode(buf, 48, &d), -OW_ERR_TOO_LONG);
        buf[0] = 6;
        ck_assert_int_eq(ow_fetch_ack_decode(buf, 32, &d), -OW_ERR_ACCEPT);
        buf[0] = 0;
        ow_put_be32(buf + 8, OW_MAX_SKIP_RANGES + 1);
        ck_assert_int_eq(ow_fetch_ack_decode(buf, 32, &d), -OW_ERR_COUNT);
        ow_put_be32(buf + 8, 0);
        ow_put_be32(buf + 12, OW_MAX_FETCH_RECORDS + 1);
        ck_assert_int_eq(ow_fetch_ack_decode(buf, 32, &d), -OW_ERR_COUNT);
        /* A refusal has nothing following: its counts size nothing. */
        buf[0] = OW_ACCEPT_FAILURE;
        ck_assert_int_eq(ow_fetch_ack_decode(buf, 32, &d), 0);

        a.n_records = UINT32_MAX;
        ck_assert_int_eq(ow_fetch_ack_encode(&a, buf, sizeof(buf)), -OW_ERR_COUNT);
}
END_TEST

START_TEST(test_fetch_skips) {
        static const struct {
                uint32_t n;
                size_t size;
        } sizes[] = { { 0, 16 }, { 1, 32 }, { 2, 32 }, { 3, 48 }, { 4, 48 }, { 5, 64 } };
        OwSkipRange r[5] = { { 0, 0 }, { 2, 3 }, { 5, 9 }, { 11, 11 }, { 100, UINT32_MAX } }, d[5];
        uint8_t buf[64 + 16];
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                ck_assert_int_eq(ow_fetch_skips_size(sizes[i].n, &n), 0);
                ck_assert_uint_eq(n, sizes[i].size);
                memset(buf, 0xaa, sizeof(buf));
                ck_assert_int_eq(ow_fetch_skips_encode(r, sizes[i].n, buf, sizeof(buf)), (int) n);
                ck_assert(ow_all_zero(buf + 8 * sizes[i].n, n - 8 * sizes[i].n)); /* pad + HMAC */
                memset(d, 0, sizeof(d));
                ck_assert_int_eq(ow_fetch_skips_decode(buf, n, sizes[i].n, d), 0);
                for (size_t j = 0; j < sizes[i].n; j++) {
                        ck_assert_uint_eq(d[j].first, r[j].first);
                        ck_assert_uint_eq(d[j].last, r[j].last);
                }
                ck_assert_int_eq(ow_fetch_skips_decode(buf, n - 16, sizes[i].n, d), -OW_ERR_TRUNCATED);
                ck_assert_int_eq(ow_fetch_skips_decode(buf, n + 16, sizes[i].n, d), -OW_ERR_TOO_LONG);
        }

        ck_assert_int_eq(ow_fetch_skips_size(OW_MAX_SKIP_RANGES + 1, &n), -OW_ERR_COUNT);
        ck_assert_int_eq(ow_fetch_skips_decode(buf, 16, OW_MAX_SKIP_RANGES + 1, d), -OW_ERR_COUNT);
        ck_assert_int_eq(ow_fetch_skips_encode(r, 3, buf, 47), -ENOBUFS);

        ck_assert_int_eq(ow_fetch_skips_encode(r, 3, buf, sizeof(buf)), 48);
        ow_put_be32(buf + 16, 10); /* {10, 9} */
        memset(d, 0x5a, sizeof(d));
        ck_assert_int_eq(ow_fetch_skips_decode(buf, 48, 3, d), -OW_ERR_RANGE);
        ck_assert_uint_eq(d[0].first, 0x5a5a5a5a); /* nothing written on failure */
        r[1] = (OwSkipRange) { 4, 3 };
        ck_assert_int_eq(ow_fetch_skips_encode(r, 3, buf, sizeof(buf)), -OW_ERR_RANGE);
}
END_TEST

START_TEST(test_fetch_records) {
        /* 7 records = 175 octets: they straddle block boundaries, 1 octet of
         * padding. */
        OwRecord r[7], d[7];
        uint8_t buf[256];
        size_t n;

        for (uint32_t i = 0; i < 7; i++)
                r[i] = (OwRecord) {
                        .seq = 1000 + i,
                        .send_err = 0x8a87,
                        .recv_err = OW_ERREST_UNSYNC,
                        .send_time = UINT64_C(0xeeb4dc4fc4ebedfa) + i * UINT64_C(0x10000000),
                        .recv_time = i == 4 ? 0 : UINT64_C(0xeeb4dc4fc4f3343f) + i * UINT64_C(0x10000000),
                        .ttl = (uint8_t) (240 + i),
                };

        ck_assert_int_eq(ow_fetch_records_size(7, &n), 0);
        ck_assert_uint_eq(n, 176 + 16);
        memset(buf, 0xaa, sizeof(buf));
        ck_assert_int_eq(ow_fetch_records_encode(r, 7, buf, sizeof(buf)), (int) n);
        ck_assert_uint_eq(ow_get_be32(buf + 25), 1001);  /* second record at octet 25 */
        ck_assert_uint_eq(buf[6 * 25 + 24], 246); /* TTL of the last record */
        ck_assert(ow_all_zero(buf + 175, 1 + 16));
        ck_assert_int_eq(ow_fetch_records_decode(buf, n, 7, d), 0);
        for (uint32_t i = 0; i < 7; i++) {
                ck_assert_uint_eq(d[i].seq, r[i].seq);
                ck_assert_uint_eq(d[i].send_err, r[i].send_err);
                ck_assert_uint_eq(d[i].recv_err, r[i].recv_err);
                ck_assert_uint_eq(d[i].send_time, r[i].send_time);
                ck_assert_uint_eq(d[i].recv_time, r[i].recv_time);
                ck_assert_uint_eq(d[i].ttl, r[i].ttl);
        }
        ck_assert(ow_record_lost(&d[4]));

        ck_assert_int_eq(ow_fetch_records_decode(buf, n - 1, 7, d), -OW_ERR_TRUNCATED);
        ck_assert_int_eq(ow_fetch_records_decode(buf, n + 16, 7, d), -OW_ERR_TOO_LONG);
        ck_assert_int_eq(ow_fetch_records_decode(buf, n, 8, d), -OW_ERR_TRUNCATED);
        buf[5 * 25 + 7] = 0; /* receive estimate of #5: multiplier 0 */
        ck_assert_int_eq(ow_fetch_records_decode(buf, n, 7, d), -OW_ERR_ERREST);
        r[2].send_err = 0x8000;
        ck_assert_int_eq(ow_fetch_records_encode(r, 7, buf, sizeof(buf)), -OW_ERR_ERREST);

        /* No records: just the HMAC block. */
        ck_assert_int_eq(ow_fetch_records_size(0, &n), 0);
        ck_assert_uint_eq(n, 16);
        ck_assert_int_eq(ow_fetch_records_encode(NULL, 0, buf, sizeof(buf)), 16);
        ck_assert_int_eq(ow_fetch_records_decode(buf, 16, 0, NULL), 0);
        ck_assert_int_eq(ow_fetch_records_decode(buf, 32, 0, NULL), -OW_ERR_TOO_LONG);

        ck_assert_int_eq(ow_fetch_records_size(OW_MAX_FETCH_RECORDS, &n), 0);
        ck_assert_uint_eq(n, (size_t) OW_MAX_FETCH_RECORDS * 25 + 16);
        ck_assert_int_eq(ow_fetch_records_size(OW_MAX_FETCH_RECORDS + 1, &n), -OW_ERR_COUNT);
        ck_assert_int_eq(ow_fetch_records_size(UINT32_MAX, &n), -OW_ERR_COUNT);
}
END_TEST

START_TEST(test_bad_arguments) {
        uint8_t buf[64] = {};
        OwServerGreeting g;
        size_t n;

        ck_assert_int_eq(ow_server_greeting_decode(NULL, 64, &g), -EINVAL);
        ck_assert_int_eq(ow_server_greeting_decode(buf, 64, NULL), -EINVAL);
        ck_assert_int_eq(ow_command_size(NULL, 16, &n), -EINVAL);
        ck_assert_int_eq(ow_command_type(NULL, 1), -EINVAL);
        ck_assert_int_eq(ow_stop_sessions_size(NULL, &n), -EINVAL);
        ck_assert_int_eq(ow_fetch_skips_decode(buf, 32, 1, NULL), -EINVAL);
}
END_TEST

int main(void) {
        Suite *s = suite_create("control");
        TCase *tc = tcase_create("setup");
        tcase_add_test(tc, test_greeting);
        tcase_add_test(tc, test_greeting_count);
        tcase_add_test(tc, test_setup_response);
        tcase_add_test(tc, test_setup_response_mode);
        tcase_add_test(tc, test_setup_response_keyid);
        tcase_add_test(tc, test_setup_response_open);
        tcase_add_test(tc, test_server_start);
        suite_add_tcase(s, tc);

        tc = tcase_create("commands");
        tcase_add_test(tc, test_command_type);
        tcase_add_test(tc, test_command_size);
        tcase_add_test(tc, test_request_roundtrip_ipv6);
        tcase_add_test(tc, test_request_many_slots_ipv4);
        tcase_add_test(tc, test_request_length);
        tcase_add_test(tc, test_request_rules);
        tcase_add_test(tc, test_request_rules_ordered);
        tcase_add_test(tc, test_request_encode_rules);
        tcase_add_test(tc, test_accept_session);
        tcase_add_test(tc, test_start_sessions_ack);
        suite_add_tcase(s, tc);

        tc = tcase_create("stop");
        tcase_add_test(tc, test_stop_roundtrip);
        tcase_add_test(tc, test_stop_walk);
        tcase_add_test(tc, test_stop_rules);
        tcase_add_test(tc, test_stop_total_ranges);
        tcase_add_test(tc, test_stop_many_sessions);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);

        tc = tcase_create("fetch");
        tcase_add_test(tc, test_fetch_session);
        tcase_add_test(tc, test_fetch_ack);
        tcase_add_test(tc, test_fetch_skips);
        tcase_add_test(tc, test_fetch_records);
        tcase_add_test(tc, test_bad_arguments);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
