/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Cryptography of the OWAMP control connection (RFC 4656 3.1-3.4,
 * PROTOCOL.md 3.3 and 4), on top of nettle:
 *
 *  - the PBKDF2 key derivation from the shared secret and its iteration
 *    count policy,
 *  - the Token of the Set-Up-Response, which carries the session keys,
 *  - OwChannel: the per-connection AES-128-CBC chains and running
 *    HMAC-SHA1s of both directions,
 *  - constant-time comparison and wiping of secrets, for the whole project.
 *
 * Test-packet keys and crypto live in ow-testpkt. Everything here is pure:
 * no I/O, no randomness (random keys and IVs are parameters).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nettle/aes.h>
#include <nettle/hmac.h>

#include "ow-types.h"

#define OW_AES_KEY_SIZE 16   /* control AES session key, RFC 4656 3.1 */
#define OW_HMAC_KEY_SIZE 32  /* control HMAC session key, RFC 4656 3.1 */
#define OW_HMAC_SIZE 16      /* HMAC-SHA1 truncated to 128 bits, RFC 4656 3.2 */
#define OW_IV_SIZE 16        /* Client-IV / Server-IV, RFC 4656 3.1 */
#define OW_CHALLENGE_SIZE 16 /* RFC 4656 3.1 */
#define OW_SALT_SIZE 16      /* RFC 4656 3.1 */
#define OW_TOKEN_SIZE 64     /* Challenge | AES key | HMAC key, encrypted, RFC 4656 3.1 */
#define OW_DK_SIZE 16        /* PBKDF2 output: the key that encrypts the Token */

/* PBKDF2 iteration count (RFC 4656 3.1, PROTOCOL.md 3.1): at least 1024.
 * The upper bound is ours: a hostile server must not make a client spend
 * more than about a second of CPU per connection. 2^20 is 512 times the
 * reference's default (2048). */
#define OW_PBKDF2_COUNT_MIN UINT32_C(1024)
#define OW_PBKDF2_COUNT_MAX (UINT32_C(1) << 20)
#define OW_PBKDF2_COUNT_DEFAULT UINT32_C(2048)

/* The session keys a client picks and sends in the Token. */
typedef struct OwControlKeys {
        uint8_t aes[OW_AES_KEY_SIZE];
        uint8_t hmac[OW_HMAC_KEY_SIZE];
} OwControlKeys;

/* Overwrite n bytes with zeros in a way the compiler cannot elide. */
void ow_wipe(void *p, size_t n);

/* Compare n bytes in time that depends on n only (for MACs, challenges). */
bool ow_memeq_ct(const void *a, const void *b, size_t n);

/*
 * Iteration count policy. Both return 0 for a power of two in range, 1 for
 * an acceptable count that is not a power of two (the RFC asks for one: the
 * caller should warn), and -OW_ERR_PBKDF2_COUNT for a count below
 * OW_PBKDF2_COUNT_MIN or above OW_PBKDF2_COUNT_MAX.
 *
 * _client: a Count received in a Server Greeting.
 * _server: a Count from our configuration, before we offer it.
 */
int ow_pbkdf2_count_check_client(uint32_t count);
int ow_pbkdf2_count_check_server(uint32_t count);

/*
 * dk = PBKDF2-HMAC-SHA1(secret, salt, count, 16 octets) (RFC 2898,
 * PROTOCOL.md 3.3). The secret is the raw passphrase bytes. Refuses a count
 * of 0 or above OW_PBKDF2_COUNT_MAX (-OW_ERR_PBKDF2_COUNT) but does not
 * apply the 1024 minimum: that is the callers' policy (see above).
 */
int ow_pbkdf2(const void *secret, size_t secret_len, const uint8_t salt[static OW_SALT_SIZE],
              uint32_t count, uint8_t dk[static OW_DK_SIZE]);

/*
 * Token = AES-128-CBC(key dk, IV 0) of Challenge | AES key | HMAC key
 * (RFC 4656 3.1). Clients encrypt; servers decrypt and check that the first
 * block equals the Challenge they sent (constant-time), returning
 * -OW_ERR_TOKEN otherwise (wrong pass phrase, or a replayed Token).
 * *ret_keys is written only on success. Intermediate plaintext and key
 * schedules are wiped; dk and the keys are the caller's to ow_wipe().
 */
int ow_token_encrypt(const uint8_t dk[static OW_DK_SIZE], const uint8_t challenge[static OW_CHALLENGE_SIZE],
                     const OwControlKeys *keys, uint8_t token[static OW_TOKEN_SIZE]);
int ow_token_decrypt(const uint8_t dk[static OW_DK_SIZE], const uint8_t token[static OW_TOKEN_SIZE],
                     const uint8_t challenge[static OW_CHALLENGE_SIZE], OwControlKeys *ret_keys);

/*
 * The protection of one control connection (PROTOCOL.md 4), one direction
 * each for sending and receiving:
 *
 *  - AES-128-CBC with the AES session key, one chain per direction that
 *    continues across messages: client -> server starts with IV = Client-IV
 *    right after the Set-Up-Response, server -> client with IV = Server-IV at
 *    octet 32 of the Server-Start;
 *  - a running HMAC-SHA1 (HMAC session key) per direction over the plaintext
 *    of every block except HMAC blocks; an HMAC block receives the running
 *    value truncated to 16 octets and the accumulation restarts.
 *
 * In open mode nothing is encrypted, HMAC blocks are sent as zeros and not
 * checked on receipt.
 *
 * A message may be processed in as many calls as wanted (a first block to
 * learn the command, then the rest), as long as every call covers whole
 * blocks in wire order and a call ending in an HMAC block says so.
 */
typedef enum OwControlRole {
        OW_CONTROL_CLIENT,
        OW_CONTROL_SERVER,
} OwControlRole;

typedef struct OwChannelDirection {
        struct aes128_ctx aes; /* encryption key for sending, decryption key for receiving */
        uint8_t iv[OW_IV_SIZE]; /* last cipher block of this direction */
        struct hmac_sha1_ctx hmac;
} OwChannelDirection;

typedef struct OwChannel {
        OwMode mode;
        OwChannelDirection send;
        OwChannelDirection recv;
} OwChannel;

/*
 * Set up a channel for one end of the connection. keys, client_iv and
 * server_iv are required in modes A and E and ignored (may be NULL) in open
 * mode. Returns -OW_ERR_MODE if mode is not exactly one of O/A/E, -EINVAL
 * if a key or IV is missing.
 */
int ow_channel_init(OwChannel *ch, OwMode mode, OwControlRole role, const OwControlKeys *keys,
                    const uint8_t *client_iv, const uint8_t *server_iv);

/*
 * Protect len octets (whole blocks, in place) that are about to be sent.
 * With last_block_is_hmac, the last block is an HMAC field: its content is
 * replaced by the HMAC of everything fed since the previous HMAC (zeros in
 * open mode). Returns -EINVAL if len is 0 or not a multiple of 16.
 */
int ow_channel_seal(OwChannel *ch, uint8_t *buf, size_t len, bool last_block_is_hmac);

/*
 * Decrypt len received octets (whole blocks, in place) and feed them to the
 * receive HMAC. With last_block_is_hmac, the last block is compared in
 * constant time with the HMAC of everything received since the previous
 * HMAC: -OW_ERR_HMAC on mismatch (the connection must then be dropped).
 * -EINVAL if len is 0 or not a multiple of 16.
 */
int ow_channel_open(OwChannel *ch, uint8_t *buf, size_t len, bool last_block_is_hmac);

/* Wipe all key material and chaining state. */
void ow_channel_wipe(OwChannel *ch);

/* --- HMAC-SHA-256 (STAMP, RFC 8762 4.1.2 and RFC 8972 4.8) ----------------
 * One self-contained block: STAMP's authenticated packets and its HMAC TLV
 * use HMAC-SHA-256 truncated to its first 16 octets, with a key the
 * operator provisions (RFC 8762 leaves key management out). */

#define OW_HMAC_SHA256_SIZE 32           /* the full digest */
#define OW_HMAC_SHA256_TRUNCATED_SIZE 16 /* what STAMP carries */
#define OW_HMAC_SHA256_KEY_MAX 64        /* one SHA-256 block: longer keys would be hashed first */

/* A piece of the authenticated text: HMACs over fields that are not
 * contiguous (the HMAC TLV covers the Sequence Number and the TLVs). */
typedef struct OwBytes {
        const void *data;
        size_t len;
} OwBytes;

/* HMAC-SHA-256 of the concatenated parts, its first out_len octets (1 to
 * 32) in out. -EINVAL for a key that is empty or longer than
 * OW_HMAC_SHA256_KEY_MAX, or a bad out_len. */
int ow_hmac_sha256(const uint8_t *key, size_t key_len, const OwBytes *parts, size_t n_parts, uint8_t *out,
                   size_t out_len);

/* The same, compared in constant time with `mac` (out_len octets): 0 or
 * -OW_ERR_HMAC. */
int ow_hmac_sha256_verify(const uint8_t *key, size_t key_len, const OwBytes *parts, size_t n_parts,
                          const uint8_t *mac, size_t mac_len);
