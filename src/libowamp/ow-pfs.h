/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Pass-phrase files: owampd.pfs (perfSONAR 5.x: owamp-server.pfs) and the
 * file given to owping -k. The format is the one the reference's pfstore
 * writes and I2ParsePFFile reads:
 *
 *   IDENTITY<whitespace>HEX-ENCODED-PASS-PHRASE
 *
 * one entry per line, identity 1..80 octets without whitespace, hex of
 * either case with an even number of digits, nothing after it but
 * whitespace. Blank lines and lines whose first non-blank character is '#'
 * are comments; any other line must not start with whitespace. There is no
 * line continuation. An identity given twice is an error (as in owampd).
 *
 * Lookups match the identity exactly ("test" does not find "testuser"; the
 * reference's owping matched by prefix). Secrets are wiped from memory
 * when replaced, removed, or freed.
 *
 * The encoder serves a pfstore-like tool: it writes comments and blank
 * lines back verbatim and every entry as "IDENTITY\tlowercase-hex\n", in
 * file order (new identities at the end), so parse -> encode reproduces a
 * file that pfstore wrote.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-diag.h"

#define OW_PFS_MAX_SECRET 1024 /* octets of one pass-phrase */
#define OW_PFS_MAX_ENTRIES 65536

typedef struct OwPfs OwPfs;

/* An empty store (for creating a new file). */
int ow_pfs_new(OwPfs **ret);
int ow_pfs_parse(const void *buf, size_t len, const char *file, OwPfs **ret, OwDiag *diag);
OwPfs *ow_pfs_free(OwPfs *p);

/* Number of identities, and the i-th one in file order. */
size_t ow_pfs_count(const OwPfs *p);
const char *ow_pfs_id(const OwPfs *p, size_t i);

/* Exact lookup. The secret stays owned by p (valid until it changes or is
 * freed); ret_secret and ret_len may be NULL. 0 or -ENOENT. */
int ow_pfs_lookup(const OwPfs *p, const char *id, const uint8_t **ret_secret, size_t *ret_len);

/* Add an identity at the end, or replace its secret where it is.
 * -OW_ERR_KEYID for an identity that cannot be written to the file,
 * -OW_ERR_VALUE for an empty secret, -OW_ERR_TOO_LONG above
 * OW_PFS_MAX_SECRET, -OW_ERR_COUNT above OW_PFS_MAX_ENTRIES. */
int ow_pfs_set(OwPfs *p, const char *id, const uint8_t *secret, size_t len);
/* 0 or -ENOENT. */
int ow_pfs_remove(OwPfs *p, const char *id);

/* The whole file. *ret is NUL-terminated, holds the secrets in hex: release
 * it with ow_pfs_encoded_free(), which wipes it. */
int ow_pfs_encode(const OwPfs *p, char **ret, size_t *ret_len);
void ow_pfs_encoded_free(char *buf, size_t len);

/* 1..80 octets, no whitespace or control characters, not starting with
 * '#' (that would read back as a comment). */
bool ow_pfs_id_valid(const char *id);
