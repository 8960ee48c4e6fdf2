/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "ow-cfgtext.h"
#include "ow-error.h"
#include "ow-sid.h"
#include "ow-wire.h"

int ow_sid_make(int family, const void *addr, OwTimestamp now,
                const uint8_t random[static OW_SID_RANDOM_SIZE], OwSid *ret) {
        const uint8_t *a = addr;
        OwSid sid;

        switch (family) {
        case AF_INET:
                memcpy(sid.bytes, a, 4);
                break;
        case AF_INET6:
                /* The reference takes the low 32 bits of the address: for a
                 * v4-mapped address that is the IPv4 address itself. */
                memcpy(sid.bytes, a + 12, 4);
                break;
        default:
                return -EAFNOSUPPORT;
        }

        ow_timestamp_put(sid.bytes + 4, now);
        memcpy(sid.bytes + 12, random, OW_SID_RANDOM_SIZE);

        *ret = sid;
        return 0;
}

int ow_sid_make_from_sockaddr(const struct sockaddr *sa, socklen_t salen, OwTimestamp now,
                              const uint8_t random[static OW_SID_RANDOM_SIZE], OwSid *ret) {
        if (salen < (socklen_t) sizeof(sa_family_t))
                return -EINVAL;

        switch (sa->sa_family) {
        case AF_INET: {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                if (salen < (socklen_t) sizeof(*in))
                        return -EINVAL;
                return ow_sid_make(AF_INET, &in->sin_addr, now, random, ret);
        }
        case AF_INET6: {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                if (salen < (socklen_t) sizeof(*in6))
                        return -EINVAL;
                return ow_sid_make(AF_INET6, &in6->sin6_addr, now, random, ret);
        }
        default:
                return -EAFNOSUPPORT;
        }
}

OwTimestamp ow_sid_timestamp(const OwSid *sid) {
        return ow_timestamp_get(sid->bytes + 4);
}

bool ow_sid_is_null(const OwSid *sid) {
        return ow_all_zero(sid->bytes, sizeof(sid->bytes));
}

bool ow_sid_equal(const OwSid *a, const OwSid *b) {
        return memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

const char *ow_sid_to_hex(const OwSid *sid, char buf[static OW_SID_HEX_SIZE]) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < sizeof(sid->bytes); i++) {
                buf[2 * i] = digits[sid->bytes[i] >> 4];
                buf[2 * i + 1] = digits[sid->bytes[i] & 15];
        }
        buf[2 * sizeof(sid->bytes)] = 0;
        return buf;
}

int ow_sid_from_hex(const char *s, size_t n, OwSid *ret) {
        OwSid sid;

        if (!s || !ret || n != 2 * sizeof(sid.bytes))
                return -OW_ERR_HEX;
        for (size_t i = 0; i < sizeof(sid.bytes); i++) {
                int hi = ow_cfg_hexval((unsigned char) s[2 * i]),
                    lo = ow_cfg_hexval((unsigned char) s[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -OW_ERR_HEX;
                sid.bytes[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret = sid;
        return 0;
}
