/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include <nettle/cbc.h>
#include <nettle/memops.h>
#include <nettle/pbkdf2.h>

#include "ow-crypto.h"
#include "ow-error.h"

void ow_wipe(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
}

bool ow_memeq_ct(const void *a, const void *b, size_t n) {
        return memeql_sec(a, b, n) != 0;
}

static bool is_power_of_two(uint32_t v) {
        return v != 0 && (v & (v - 1)) == 0;
}

static int pbkdf2_count_check(uint32_t count) {
        if (count < OW_PBKDF2_COUNT_MIN || count > OW_PBKDF2_COUNT_MAX)
                return -OW_ERR_PBKDF2_COUNT;
        return is_power_of_two(count) ? 0 : 1;
}

int ow_pbkdf2_count_check_client(uint32_t count) {
        return pbkdf2_count_check(count);
}

int ow_pbkdf2_count_check_server(uint32_t count) {
        /* Same bounds: offering more than our own clients accept would lock
         * them out. */
        return pbkdf2_count_check(count);
}

int ow_pbkdf2(const void *secret, size_t secret_len, const uint8_t salt[static OW_SALT_SIZE],
              uint32_t count, uint8_t dk[static OW_DK_SIZE]) {
        if (!secret && secret_len > 0)
                return -EINVAL;
        if (count == 0 || count > OW_PBKDF2_COUNT_MAX)
                return -OW_ERR_PBKDF2_COUNT;

        /* nettle wants a non-NULL key pointer even for an empty secret. */
        pbkdf2_hmac_sha1(secret_len, secret_len > 0 ? secret : (const uint8_t *) "", count, OW_SALT_SIZE,
                         salt, OW_DK_SIZE, dk);
        return 0;
}

/* nettle_cipher_func adapters: calling through a cast function pointer
 * would be undefined behaviour. */
static void aes128_encrypt_func(const void *ctx, size_t length, uint8_t *dst, const uint8_t *src) {
        aes128_encrypt(ctx, length, dst, src);
}

static void aes128_decrypt_func(const void *ctx, size_t length, uint8_t *dst, const uint8_t *src) {
        aes128_decrypt(ctx, length, dst, src);
}

int ow_token_encrypt(const uint8_t dk[static OW_DK_SIZE], const uint8_t challenge[static OW_CHALLENGE_SIZE],
                     const OwControlKeys *keys, uint8_t token[static OW_TOKEN_SIZE]) {
        struct aes128_ctx aes;
        uint8_t iv[OW_IV_SIZE] = {};

        if (!keys)
                return -EINVAL;

        /* Token plaintext, RFC 4656 3.1: Challenge | AES key | HMAC key. */
        memcpy(token, challenge, OW_CHALLENGE_SIZE);
        memcpy(token + OW_CHALLENGE_SIZE, keys->aes, OW_AES_KEY_SIZE);
        memcpy(token + OW_CHALLENGE_SIZE + OW_AES_KEY_SIZE, keys->hmac, OW_HMAC_KEY_SIZE);

        aes128_set_encrypt_key(&aes, dk);
        cbc_encrypt(&aes, aes128_encrypt_func, AES_BLOCK_SIZE, iv, OW_TOKEN_SIZE, token, token);
        ow_wipe(&aes, sizeof(aes));
        return 0;
}

int ow_token_decrypt(const uint8_t dk[static OW_DK_SIZE], const uint8_t token[static OW_TOKEN_SIZE],
                     const uint8_t challenge[static OW_CHALLENGE_SIZE], OwControlKeys *ret_keys) {
        struct aes128_ctx aes;
        uint8_t iv[OW_IV_SIZE] = {}, plain[OW_TOKEN_SIZE];
        int r = 0;

        if (!ret_keys)
                return -EINVAL;

        aes128_set_decrypt_key(&aes, dk);
        cbc_decrypt(&aes, aes128_decrypt_func, AES_BLOCK_SIZE, iv, OW_TOKEN_SIZE, plain, token);

        if (!ow_memeq_ct(plain, challenge, OW_CHALLENGE_SIZE))
                r = -OW_ERR_TOKEN;
        else {
                memcpy(ret_keys->aes, plain + OW_CHALLENGE_SIZE, OW_AES_KEY_SIZE);
                memcpy(ret_keys->hmac, plain + OW_CHALLENGE_SIZE + OW_AES_KEY_SIZE, OW_HMAC_KEY_SIZE);
        }

        ow_wipe(plain, sizeof(plain));
        ow_wipe(&aes, sizeof(aes));
        return r;
}

int ow_channel_init(OwChannel *ch, OwMode mode, OwControlRole role, const OwControlKeys *keys,
                    const uint8_t *client_iv, const uint8_t *server_iv) {
        if (!ch || (role != OW_CONTROL_CLIENT && role != OW_CONTROL_SERVER))
                return -EINVAL;
        if (mode != OW_MODE_OPEN && mode != OW_MODE_AUTHENTICATED && mode != OW_MODE_ENCRYPTED)
                return -OW_ERR_MODE;

        *ch = (OwChannel) { .mode = mode };
        if (mode == OW_MODE_OPEN)
                return 0;

        if (!keys || !client_iv || !server_iv)
                return -EINVAL;

        /* PROTOCOL.md 4.1: the client sends with the Client-IV chain, the
         * server with the Server-IV chain. */
        const uint8_t *send_iv = role == OW_CONTROL_CLIENT ? client_iv : server_iv;
        const uint8_t *recv_iv = role == OW_CONTROL_CLIENT ? server_iv : client_iv;

        aes128_set_encrypt_key(&ch->send.aes, keys->aes);
        aes128_set_decrypt_key(&ch->recv.aes, keys->aes);
        memcpy(ch->send.iv, send_iv, OW_IV_SIZE);
        memcpy(ch->recv.iv, recv_iv, OW_IV_SIZE);
        hmac_sha1_set_key(&ch->send.hmac, OW_HMAC_KEY_SIZE, keys->hmac);
        hmac_sha1_set_key(&ch->recv.hmac, OW_HMAC_KEY_SIZE, keys->hmac);
        return 0;
}

static int check_blocks(const OwChannel *ch, const uint8_t *buf, size_t len) {
        if (!ch || !buf || len == 0 || len % OW_BLOCK_SIZE != 0)
                return -EINVAL;
        return 0;
}

int ow_channel_seal(OwChannel *ch, uint8_t *buf, size_t len, bool last_block_is_hmac) {
        size_t body;
        int r;

        r = check_blocks(ch, buf, len);
        if (r < 0)
                return r;
        body = last_block_is_hmac ? len - OW_HMAC_SIZE : len;

        if (ch->mode == OW_MODE_OPEN) {
                /* PROTOCOL.md 4.1: HMAC fields are zero in open mode. */
                if (last_block_is_hmac)
                        memset(buf + body, 0, OW_HMAC_SIZE);
                return 0;
        }

        /* MAC-then-encrypt; hmac_sha1_digest() restarts the accumulation. */
        hmac_sha1_update(&ch->send.hmac, body, buf);
        if (last_block_is_hmac)
                hmac_sha1_digest(&ch->send.hmac, OW_HMAC_SIZE, buf + body);
        cbc_encrypt(&ch->send.aes, aes128_encrypt_func, AES_BLOCK_SIZE, ch->send.iv, len, buf, buf);
        return 0;
}

int ow_channel_open(OwChannel *ch, uint8_t *buf, size_t len, bool last_block_is_hmac) {
        uint8_t mac[OW_HMAC_SIZE];
        size_t body;
        int r;

        r = check_blocks(ch, buf, len);
        if (r < 0)
                return r;
        if (ch->mode == OW_MODE_OPEN)
                return 0;
        body = last_block_is_hmac ? len - OW_HMAC_SIZE : len;

        /* nettle's CBC decryption works in place. */
        cbc_decrypt(&ch->recv.aes, aes128_decrypt_func, AES_BLOCK_SIZE, ch->recv.iv, len, buf, buf);
        hmac_sha1_update(&ch->recv.hmac, body, buf);
        if (!last_block_is_hmac)
                return 0;

        hmac_sha1_digest(&ch->recv.hmac, OW_HMAC_SIZE, mac);
        r = ow_memeq_ct(mac, buf + body, OW_HMAC_SIZE) ? 0 : -OW_ERR_HMAC;
        ow_wipe(mac, sizeof(mac));
        return r;
}

void ow_channel_wipe(OwChannel *ch) {
        ow_wipe(ch, sizeof(*ch));
}

/* --- HMAC-SHA-256 (STAMP) ------------------------------------------------ */

int ow_hmac_sha256(const uint8_t *key, size_t key_len, const OwBytes *parts, size_t n_parts, uint8_t *out,
                   size_t out_len) {
        struct hmac_sha256_ctx ctx;

        if (!key || key_len == 0 || key_len > OW_HMAC_SHA256_KEY_MAX || (!parts && n_parts > 0) || !out ||
            out_len == 0 || out_len > OW_HMAC_SHA256_SIZE)
                return -EINVAL;
        hmac_sha256_set_key(&ctx, key_len, key);
        for (size_t i = 0; i < n_parts; i++)
                if (parts[i].len > 0)
                        hmac_sha256_update(&ctx, parts[i].len, parts[i].data);
        hmac_sha256_digest(&ctx, out_len, out);
        ow_wipe(&ctx, sizeof(ctx));
        return 0;
}

int ow_hmac_sha256_verify(const uint8_t *key, size_t key_len, const OwBytes *parts, size_t n_parts,
                          const uint8_t *mac, size_t mac_len) {
        uint8_t want[OW_HMAC_SHA256_SIZE];
        int r;

        if (!mac)
                return -EINVAL;
        r = ow_hmac_sha256(key, key_len, parts, n_parts, want, mac_len);
        if (r < 0)
                return r;
        r = ow_memeq_ct(want, mac, mac_len) ? 0 : -OW_ERR_HMAC;
        ow_wipe(want, sizeof(want));
        return r;
}
