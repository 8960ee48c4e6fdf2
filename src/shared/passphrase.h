/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The pass-phrase for keyid (owping, owfetch, owup -u): from a pfs file
 * (exact identity match; a parse error is printed after "<prog>: "), or
 * typed at the terminal without echo when keyfile is NULL. The caller wipes
 * and frees it. */
int passphrase_load(const char *prog, const char *keyfile, const char *keyid, uint8_t **ret, size_t *ret_len);
