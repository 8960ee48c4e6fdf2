/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The pass-phrase for keyid (owping, owfetch, owup -u): from a pfs file
 * (exact identity match; a parse error is printed after "<prog>: "), or
 * typed at the terminal without echo when keyfile is NULL (one line of
 * standard input when there is no terminal). The caller wipes and frees
 * it. Without keyfile: -ENOTTY when there is no terminal and standard
 * input gave nothing, -EINVAL for an empty pass-phrase, -E2BIG for one
 * longer than OW_PFS_MAX_SECRET. */
int passphrase_load(const char *prog, const char *keyfile, const char *keyid, uint8_t **ret, size_t *ret_len);
