/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>

/* Fill buf with n octets from the kernel's CSPRNG (getrandom(2), waiting
 * for it to be seeded). Keys, IVs, challenges, salts and SIDs come from
 * here. Returns 0 or -errno. */
int random_bytes(void *buf, size_t n);
