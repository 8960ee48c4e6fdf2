/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Big-endian field access for wire and file formats (RFC 4656 section 1.3:
 * all integers in network byte order). Unaligned-safe. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline uint16_t ow_get_be16(const uint8_t *p) {
        return (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
}

static inline uint32_t ow_get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static inline uint64_t ow_get_be64(const uint8_t *p) {
        return (uint64_t) ow_get_be32(p) << 32 | ow_get_be32(p + 4);
}

static inline void ow_put_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

static inline void ow_put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static inline void ow_put_be64(uint8_t *p, uint64_t v) {
        ow_put_be32(p, (uint32_t) (v >> 32));
        ow_put_be32(p + 4, (uint32_t) v);
}

/* True when all n bytes are zero. Not constant-time: only for MBZ/padding
 * checks on data that is not secret. */
static inline bool ow_all_zero(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i] != 0)
                        return false;
        return true;
}
