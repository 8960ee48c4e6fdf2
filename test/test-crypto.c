/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include <nettle/aes.h>
#include <nettle/hmac.h>

#include "macro.h"
#include "ow-crypto.h"
#include "ow-error.h"
#include "pcap.h"
#include "testutil.h"

#define CAPTURE_PORT 8871
#define SECRET "testsecret"

/* --- PBKDF2 and its policy ------------------------------------------------ */

START_TEST(test_pbkdf2_synthetic) {
        /* PROTOCOL.md 14, synthetic vector. */
        uint8_t salt[OW_SALT_SIZE], dk[OW_DK_SIZE], want[OW_DK_SIZE];
        test_unhex("000102030405060708090a0b0c0d0e0f", salt, sizeof(salt));
        test_unhex("e2ddaa001e0a6badc2a04dbcccc164ee", want, sizeof(want));
        ck_assert_int_eq(ow_pbkdf2("testpass", 8, salt, 1024, dk), 0);
        ck_assert_bytes_eq(dk, want, sizeof(want));
}
END_TEST

START_TEST(test_pbkdf2_captures) {
        /* The captures' salts and the reference's default count (README). */
        static const struct {
                const char *salt, *dk;
        } v[] = {
                { "25416b311ccbc6557d8ec2621ca45b74", "59811daffe1d75e48a073572909ad1d1" }, /* A */
                { "e8dd88e767a46aff86630d51f125f0c2", "624b4d68a5bcfbcb03bc867dbb88026f" }, /* E */
        };
        for (size_t i = 0; i < 2; i++) {
                uint8_t salt[OW_SALT_SIZE], dk[OW_DK_SIZE], want[OW_DK_SIZE];
                test_unhex(v[i].salt, salt, sizeof(salt));
                test_unhex(v[i].dk, want, sizeof(want));
                ck_assert_int_eq(ow_pbkdf2(SECRET, strlen(SECRET), salt, 2048, dk), 0);
                ck_assert_bytes_eq(dk, want, sizeof(want));
        }
}
END_TEST

START_TEST(test_pbkdf2_count_policy) {
        uint8_t salt[OW_SALT_SIZE] = {}, dk[OW_DK_SIZE];

        ck_assert_int_eq(ow_pbkdf2_count_check_client(0), -OW_ERR_PBKDF2_COUNT);
        ck_assert_int_eq(ow_pbkdf2_count_check_client(512), -OW_ERR_PBKDF2_COUNT);
        ck_assert_int_eq(ow_pbkdf2_count_check_client(1023), -OW_ERR_PBKDF2_COUNT);
        ck_assert_int_eq(ow_pbkdf2_count_check_client(1024), 0);
        ck_assert_int_eq(ow_pbkdf2_count_check_client(2048), 0);
        ck_assert_int_eq(ow_pbkdf2_count_check_client(3000), 1); /* acceptable, warn */
        ck_assert_int_eq(ow_pbkdf2_count_check_client(OW_PBKDF2_COUNT_MAX), 0);
        ck_assert_int_eq(ow_pbkdf2_count_check_client(OW_PBKDF2_COUNT_MAX + 1), -OW_ERR_PBKDF2_COUNT);
        ck_assert_int_eq(ow_pbkdf2_count_check_client(UINT32_MAX), -OW_ERR_PBKDF2_COUNT);

        ck_assert_int_eq(ow_pbkdf2_count_check_server(1000), -OW_ERR_PBKDF2_COUNT);
        ck_assert_int_eq(ow_pbkdf2_count_check_server(OW_PBKDF2_COUNT_DEFAULT), 0);
        ck_assert_int_eq(ow_pbkdf2_count_check_server(1500), 1);

        /* The primitive refuses what would hang or crash nettle, and leaves
         * the 1024 minimum to the callers' policy. */
        ck_assert_int_eq(ow_pbkdf2("x", 1, salt, 0, dk), -OW_ERR_PBKDF2_COUNT);
        ck_assert_int_eq(ow_pbkdf2("x", 1, salt, OW_PBKDF2_COUNT_MAX + 1, dk), -OW_ERR_PBKDF2_COUNT);
        ck_assert_int_eq(ow_pbkdf2("x", 1, salt, 1, dk), 0);
        ck_assert_int_eq(ow_pbkdf2(NULL, 0, salt, 1, dk), 0);
        ck_assert_int_eq(ow_pbkdf2(NULL, 1, salt, 1, dk), -EINVAL);
}
END_TEST

/* --- Token ----------------------------------------------------------------- */

static void synthetic_keys(OwControlKeys *k, uint8_t challenge[OW_CHALLENGE_SIZE], uint8_t dk[OW_DK_SIZE]) {
        test_unhex("101112131415161718191a1b1c1d1e1f", challenge, OW_CHALLENGE_SIZE);
        test_unhex("202122232425262728292a2b2c2d2e2f", k->aes, sizeof(k->aes));
        test_unhex("303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", k->hmac,
                   sizeof(k->hmac));
        test_unhex("e2ddaa001e0a6badc2a04dbcccc164ee", dk, OW_DK_SIZE);
}

START_TEST(test_token_synthetic) {
        /* PROTOCOL.md 14. */
        uint8_t challenge[OW_CHALLENGE_SIZE], dk[OW_DK_SIZE], token[OW_TOKEN_SIZE], want[OW_TOKEN_SIZE];
        OwControlKeys keys, back;

        synthetic_keys(&keys, challenge, dk);
        test_unhex("b0063c0bda1b9e1127ddd2d3a55dfcd0 cb8a67cf17a85db24b656308623e8bab"
                   "371649ee2a191a79a4c55593f2c7875f ef18792845c9e841903ce5f73faadb09",
                   want, sizeof(want));
        ck_assert_int_eq(ow_token_encrypt(dk, challenge, &keys, token), 0);
        ck_assert_bytes_eq(token, want, sizeof(want));

        ck_assert_int_eq(ow_token_decrypt(dk, token, challenge, &back), 0);
        ck_assert_bytes_eq(back.aes, keys.aes, sizeof(keys.aes));
        ck_assert_bytes_eq(back.hmac, keys.hmac, sizeof(keys.hmac));
}
END_TEST

START_TEST(test_token_mismatch) {
        uint8_t challenge[OW_CHALLENGE_SIZE], dk[OW_DK_SIZE], token[OW_TOKEN_SIZE];
        OwControlKeys keys, back;

        synthetic_keys(&keys, challenge, dk);
        ck_assert_int_eq(ow_token_encrypt(dk, challenge, &keys, token), 0);

        /* Another challenge (a replayed token), another dk (a wrong pass
         * phrase), a corrupted first block: all refused, output untouched. */
        memset(&back, 0xa5, sizeof(back));
        challenge[15] ^= 1;
        ck_assert_int_eq(ow_token_decrypt(dk, token, challenge, &back), -OW_ERR_TOKEN);
        challenge[15] ^= 1;
        dk[0] ^= 0x80;
        ck_assert_int_eq(ow_token_decrypt(dk, token, challenge, &back), -OW_ERR_TOKEN);
        dk[0] ^= 0x80;
        token[3] ^= 0x10;
        ck_assert_int_eq(ow_token_decrypt(dk, token, challenge, &back), -OW_ERR_TOKEN);
        for (size_t i = 0; i < sizeof(back); i++)
                ck_assert_uint_eq(((uint8_t *) &back)[i], 0xa5);
        token[3] ^= 0x10;
        ck_assert_int_eq(ow_token_decrypt(dk, token, challenge, &back), 0);
}
END_TEST

/* The mode A and E captures: greeting at s2c 0, Set-Up-Response at c2s 0. */
static const struct {
        const char *file, *aes, *hmac;
} captures[] = {
        { "captures/mode-A.pcap", "a40c9a75692f0e846669bc63103278fc",
          "e60794005ad9a1e575498ac8821d96116f27ea6d6eb2c0fff63f1ee3755e4d72" },
        { "captures/mode-E.pcap", "ae374ecbbf022bbe4fe89058d295b6ea",
          "c6d61edd8ccc07af5f3a3e39b0ceb709dd18f223e890bfbf1c3654ad4fa3dff5" },
};

START_TEST(test_token_captures) {
        PcapTrace t;
        uint8_t dk[OW_DK_SIZE], token[OW_TOKEN_SIZE];
        OwControlKeys keys, want;

        ck_assert_int_eq(pcap_load(test_data_path(captures[_i].file), CAPTURE_PORT, &t), 0);
        ck_assert_uint_ge(t.s2c_len, 64);
        ck_assert_uint_ge(t.c2s_len, 164);
        test_unhex(captures[_i].aes, want.aes, sizeof(want.aes));
        test_unhex(captures[_i].hmac, want.hmac, sizeof(want.hmac));

        /* salt at 32, count at 48, challenge at 16 of the greeting; Token at
         * 84 of the Set-Up-Response. */
        ck_assert_int_eq(ow_pbkdf2(SECRET, strlen(SECRET), t.s2c + 32, 2048, dk), 0);
        ck_assert_int_eq(ow_token_decrypt(dk, t.c2s + 84, t.s2c + 16, &keys), 0);
        ck_assert_bytes_eq(keys.aes, want.aes, sizeof(want.aes));
        ck_assert_bytes_eq(keys.hmac, want.hmac, sizeof(want.hmac));

        /* The client side recreates the very same Token (CBC with IV 0). */
        ck_assert_int_eq(ow_token_encrypt(dk, t.s2c + 16, &keys, token), 0);
        ck_assert_bytes_eq(token, t.c2s + 84, OW_TOKEN_SIZE);

        /* Wrong pass phrase. */
        ck_assert_int_eq(ow_pbkdf2("testsecreT", 10, t.s2c + 32, 2048, dk), 0);
        ck_assert_int_eq(ow_token_decrypt(dk, t.c2s + 84, t.s2c + 16, &keys), -OW_ERR_TOKEN);

        pcap_trace_done(&t);
}
END_TEST

/* --- Channel --------------------------------------------------------------- */

static void channel_pair(OwMode mode, OwChannel *client, OwChannel *server) {
        OwControlKeys keys;
        uint8_t challenge[OW_CHALLENGE_SIZE], dk[OW_DK_SIZE], civ[OW_IV_SIZE], siv[OW_IV_SIZE];

        synthetic_keys(&keys, challenge, dk);
        test_unhex("fa51fb5928ed96778c9edecf7751b949", civ, sizeof(civ));
        test_unhex("46c5e9b418e3ed5560099be1d47d298a", siv, sizeof(siv));
        ck_assert_int_eq(ow_channel_init(client, mode, OW_CONTROL_CLIENT, &keys, civ, siv), 0);
        ck_assert_int_eq(ow_channel_init(server, mode, OW_CONTROL_SERVER, &keys, civ, siv), 0);
}

static void fill(uint8_t *p, size_t n, uint8_t seed) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (seed + 7 * i);
}

START_TEST(test_channel_init_errors) {
        OwChannel ch;
        OwControlKeys keys = {};
        uint8_t iv[OW_IV_SIZE] = {}, buf[32] = {};

        ck_assert_int_eq(ow_channel_init(&ch, 0, OW_CONTROL_CLIENT, &keys, iv, iv), -OW_ERR_MODE);
        ck_assert_int_eq(ow_channel_init(&ch, 3, OW_CONTROL_CLIENT, &keys, iv, iv), -OW_ERR_MODE);
        ck_assert_int_eq(ow_channel_init(&ch, 8, OW_CONTROL_CLIENT, &keys, iv, iv), -OW_ERR_MODE);
        ck_assert_int_eq(ow_channel_init(&ch, OW_MODE_ENCRYPTED, OW_CONTROL_CLIENT, NULL, iv, iv), -EINVAL);
        ck_assert_int_eq(ow_channel_init(&ch, OW_MODE_AUTHENTICATED, OW_CONTROL_SERVER, &keys, NULL, iv),
                         -EINVAL);
        ck_assert_int_eq(ow_channel_init(&ch, OW_MODE_AUTHENTICATED, 7, &keys, iv, iv), -EINVAL);
        ck_assert_int_eq(ow_channel_init(&ch, OW_MODE_OPEN, OW_CONTROL_CLIENT, NULL, NULL, NULL), 0);

        ck_assert_int_eq(ow_channel_init(&ch, OW_MODE_ENCRYPTED, OW_CONTROL_CLIENT, &keys, iv, iv), 0);
        ck_assert_int_eq(ow_channel_seal(&ch, buf, 0, false), -EINVAL);
        ck_assert_int_eq(ow_channel_seal(&ch, buf, 17, false), -EINVAL);
        ck_assert_int_eq(ow_channel_open(&ch, buf, 8, true), -EINVAL);
        ow_channel_wipe(&ch);
        for (size_t i = 0; i < sizeof(ch); i++)
                ck_assert_uint_eq(((uint8_t *) &ch)[i], 0);
}
END_TEST

START_TEST(test_channel_roundtrip) {
        /* _i: 0 = A, 1 = E (identical for the control channel). */
        OwMode mode = _i == 0 ? OW_MODE_AUTHENTICATED : OW_MODE_ENCRYPTED;
        OwChannel client, server;
        uint8_t msg[160], wire[160];
        static const size_t sizes[] = { 32, 48, 144, 160, 32 };

        channel_pair(mode, &client, &server);
        for (int dir = 0; dir < 2; dir++) {
                OwChannel *tx = dir == 0 ? &client : &server, *rx = dir == 0 ? &server : &client;

                for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                        size_t n = sizes[i];

                        fill(msg, n, (uint8_t) (i + 16 * dir));
                        memcpy(wire, msg, n);
                        ck_assert_int_eq(ow_channel_seal(tx, wire, n, true), 0);
                        /* Encrypted, HMAC included. */
                        ck_assert(memcmp(wire, msg, OW_BLOCK_SIZE) != 0);
                        /* Received in two pieces: first block, then the rest. */
                        ck_assert_int_eq(ow_channel_open(rx, wire, 16, false), 0);
                        ck_assert_int_eq(ow_channel_open(rx, wire + 16, n - 16, true), 0);
                        ck_assert_bytes_eq(wire, msg, n - OW_HMAC_SIZE);
                }
        }
        ow_channel_wipe(&client);
        ow_channel_wipe(&server);
}
END_TEST

START_TEST(test_channel_corrupt) {
        OwChannel client, server;
        uint8_t wire[48];

        /* Flipping a bit in the HMAC block, or in a body block, is detected. */
        for (size_t pos = 0; pos < sizeof(wire); pos += 20) {
                channel_pair(OW_MODE_ENCRYPTED, &client, &server);
                fill(wire, sizeof(wire), 1);
                ck_assert_int_eq(ow_channel_seal(&client, wire, sizeof(wire), true), 0);
                wire[pos] ^= 0x01;
                ck_assert_int_eq(ow_channel_open(&server, wire, sizeof(wire), true), -OW_ERR_HMAC);
        }

        /* A lost (skipped) message breaks both the chain and the HMAC. */
        channel_pair(OW_MODE_AUTHENTICATED, &client, &server);
        fill(wire, sizeof(wire), 2);
        ck_assert_int_eq(ow_channel_seal(&client, wire, 32, true), 0);
        fill(wire, sizeof(wire), 3);
        ck_assert_int_eq(ow_channel_seal(&client, wire, 32, true), 0);
        ck_assert_int_eq(ow_channel_open(&server, wire, 32, true), -OW_ERR_HMAC);
}
END_TEST

START_TEST(test_channel_open_mode) {
        OwChannel client, server;
        uint8_t msg[48], wire[48];

        channel_pair(OW_MODE_OPEN, &client, &server);
        fill(msg, sizeof(msg), 9);
        memcpy(wire, msg, sizeof(wire));
        ck_assert_int_eq(ow_channel_seal(&client, wire, sizeof(wire), true), 0);
        ck_assert_bytes_eq(wire, msg, 32); /* clear text */
        ck_assert(ow_memeq_ct(wire + 32, (uint8_t[16]) {}, 16)); /* HMAC zeros */

        /* Not checked on receipt: any HMAC field is accepted, nothing changes. */
        memcpy(wire, msg, sizeof(wire));
        ck_assert_int_eq(ow_channel_open(&server, wire, sizeof(wire), true), 0);
        ck_assert_bytes_eq(wire, msg, sizeof(msg));
}
END_TEST

/* Independent model of PROTOCOL.md 4 with nettle directly: one CBC stream
 * per direction and HMACs over the plaintext since the previous HMAC. */
START_TEST(test_channel_accumulation) {
        OwControlKeys keys;
        uint8_t challenge[OW_CHALLENGE_SIZE], dk[OW_DK_SIZE];
        uint8_t civ[OW_IV_SIZE] = { 1 }, siv[OW_IV_SIZE] = { 2 };
        OwChannel server;
        /* Server-Start block (no HMAC), Accept-Session (32 + HMAC), Start-Ack
         * (16 + HMAC): the first HMAC must cover 16 + 32 octets. */
        uint8_t plain[112], wire[112], expect[112], iv[16];
        struct hmac_sha1_ctx h;
        struct aes128_ctx aes;

        synthetic_keys(&keys, challenge, dk);
        fill(plain, sizeof(plain), 0x40);
        ck_assert_int_eq(ow_channel_init(&server, OW_MODE_ENCRYPTED, OW_CONTROL_SERVER, &keys, civ, siv), 0);
        memcpy(wire, plain, sizeof(wire));
        ck_assert_int_eq(ow_channel_seal(&server, wire, 16, false), 0);
        ck_assert_int_eq(ow_channel_seal(&server, wire + 16, 48, true), 0);
        ck_assert_int_eq(ow_channel_seal(&server, wire + 64, 16, false), 0); /* a piece ... */
        ck_assert_int_eq(ow_channel_seal(&server, wire + 80, 32, true), 0);  /* ... and the rest */

        memcpy(expect, plain, sizeof(expect));
        hmac_sha1_set_key(&h, sizeof(keys.hmac), keys.hmac);
        hmac_sha1_update(&h, 48, expect);
        hmac_sha1_digest(&h, 16, expect + 48);
        hmac_sha1_update(&h, 32, expect + 64); /* HMAC block 48..63 not fed */
        hmac_sha1_digest(&h, 16, expect + 96);
        aes128_set_encrypt_key(&aes, keys.aes);
        memcpy(iv, siv, sizeof(iv));
        for (size_t off = 0; off < sizeof(expect); off += 16) {
                for (size_t j = 0; j < 16; j++)
                        iv[j] ^= expect[off + j];
                aes128_encrypt(&aes, 16, expect + off, iv);
                memcpy(iv, expect + off, 16);
        }
        ck_assert_bytes_eq(wire, expect, sizeof(expect));
}
END_TEST

START_TEST(test_hmac_vector) {
        /* PROTOCOL.md 14: "HMAC(HMAC key above, 02 || 15 zero octets)". The
         * key is the synthetic *control* HMAC key 303132..4f (not the test
         * HMAC key printed just before it), and the message is the first
         * block of a Start-Sessions: so this is that command's HMAC field,
         * read back in clear after decryption. */
        OwChannel client, server;
        OwControlKeys keys;
        uint8_t challenge[OW_CHALLENGE_SIZE], dk[OW_DK_SIZE], civ[OW_IV_SIZE] = {}, siv[OW_IV_SIZE] = {};
        uint8_t wire[32] = { 0x02 }, want[16];

        synthetic_keys(&keys, challenge, dk);
        test_unhex("281fc9a23939a4f730fbf9f8541361a8", want, sizeof(want));
        ck_assert_int_eq(ow_channel_init(&client, OW_MODE_AUTHENTICATED, OW_CONTROL_CLIENT, &keys, civ, siv),
                         0);
        ck_assert_int_eq(ow_channel_init(&server, OW_MODE_AUTHENTICATED, OW_CONTROL_SERVER, &keys, civ, siv),
                         0);
        ck_assert_int_eq(ow_channel_seal(&client, wire, sizeof(wire), true), 0);
        ck_assert_int_eq(ow_channel_open(&server, wire, sizeof(wire), true), 0);
        ck_assert_bytes_eq(wire + 16, want, sizeof(want));
}
END_TEST

START_TEST(test_memeq_wipe) {
        uint8_t a[32], b[32];

        fill(a, sizeof(a), 5);
        memcpy(b, a, sizeof(b));
        ck_assert(ow_memeq_ct(a, b, sizeof(a)));
        b[31] ^= 0x40;
        ck_assert(!ow_memeq_ct(a, b, sizeof(a)));
        ck_assert(ow_memeq_ct(a, b, 0));
        ow_wipe(a, sizeof(a));
        for (size_t i = 0; i < sizeof(a); i++)
                ck_assert_uint_eq(a[i], 0);
        ow_wipe(NULL, 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("crypto");
        TCase *tc = tcase_create("pbkdf2");
        tcase_add_test(tc, test_pbkdf2_synthetic);
        tcase_add_test(tc, test_pbkdf2_captures);
        tcase_add_test(tc, test_pbkdf2_count_policy);
        suite_add_tcase(s, tc);

        tc = tcase_create("token");
        tcase_add_test(tc, test_token_synthetic);
        tcase_add_test(tc, test_token_mismatch);
        tcase_add_loop_test(tc, test_token_captures, 0, 2);
        tcase_set_timeout(tc, 30);
        suite_add_tcase(s, tc);

        tc = tcase_create("channel");
        tcase_add_test(tc, test_channel_init_errors);
        tcase_add_loop_test(tc, test_channel_roundtrip, 0, 2);
        tcase_add_test(tc, test_channel_corrupt);
        tcase_add_test(tc, test_channel_open_mode);
        tcase_add_test(tc, test_channel_accumulation);
        tcase_add_test(tc, test_hmac_vector);
        tcase_add_test(tc, test_memeq_wipe);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
