/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The pass-phrase for keyid: from a pfs file (exact identity match), or
 * typed at the terminal when keyfile is NULL. Caller wipes and frees. */
int owping_load_secret(const char *keyfile, const char *keyid, uint8_t **ret, size_t *ret_len);
