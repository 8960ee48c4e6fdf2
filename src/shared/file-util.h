/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>

/* A whole regular file of at most max octets, NUL-terminated (the NUL not
 * counted in *ret_len): -EISDIR for anything but a regular file, -EFBIG
 * over max, -errno otherwise. *ret and *ret_len are set only on success. */
int read_file_limited(const char *path, size_t max, char **ret, size_t *ret_len);
