/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ow-error.h"
#include "ow-types.h"
#include "ow-wire.h"

void ow_record_encode(const OwRecord *r, uint8_t out[OW_RECORD_SIZE]) {
        ow_put_be32(out, r->seq);
        ow_errest_put(out + 4, r->send_err);
        ow_errest_put(out + 6, r->recv_err);
        ow_timestamp_put(out + 8, r->send_time);
        ow_timestamp_put(out + 16, r->recv_time);
        out[24] = r->ttl;
}

int ow_record_decode(const uint8_t in[OW_RECORD_SIZE], OwRecord *ret) {
        OwRecord r = {
                .seq = ow_get_be32(in),
                .send_err = ow_errest_get(in + 4),
                .recv_err = ow_errest_get(in + 6),
                .send_time = ow_timestamp_get(in + 8),
                .recv_time = ow_timestamp_get(in + 16),
                .ttl = in[24],
        };

        if (ow_errest_check(r.send_err) < 0 || ow_errest_check(r.recv_err) < 0)
                return -OW_ERR_ERREST;
        *ret = r;
        return 0;
}

void ow_skip_range_encode(const OwSkipRange *s, uint8_t out[OW_SKIP_RANGE_SIZE]) {
        ow_put_be32(out, s->first);
        ow_put_be32(out + 4, s->last);
}

int ow_skip_range_decode(const uint8_t in[OW_SKIP_RANGE_SIZE], OwSkipRange *ret) {
        OwSkipRange s = {
                .first = ow_get_be32(in),
                .last = ow_get_be32(in + 4),
        };

        if (s.first > s.last)
                return -OW_ERR_RANGE;
        *ret = s;
        return 0;
}

int ow_dscp_from_string(const char *s, uint8_t *ret) {
        char *end;
        size_t n;

        if (!s || !*s)
                return -EINVAL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 0);
        if (!errno && end != s && *end == 0 && v <= 63) {
                *ret = (uint8_t) v;
                return 0;
        }
        n = strlen(s);
        if (!strcasecmp(s, "none") || !strcasecmp(s, "default") || !strcasecmp(s, "df")) {
                *ret = 0;
                return 0;
        }
        if (!strcasecmp(s, "ef")) {
                *ret = 46; /* Expedited Forwarding, RFC 3246 */
                return 0;
        }
        if (n == 3 && !strncasecmp(s, "cs", 2) && s[2] >= '0' && s[2] <= '7') {
                *ret = (uint8_t) ((s[2] - '0') * 8);
                return 0;
        }
        if (n == 4 && !strncasecmp(s, "af", 2) && s[2] >= '1' && s[2] <= '4' && s[3] >= '1' && s[3] <= '3') {
                *ret = (uint8_t) ((s[2] - '0') * 8 + (s[3] - '0') * 2);
                return 0;
        }
        return -EINVAL;
}

const char *ow_mode_to_string(OwMode m) {
        switch (m) {
        case OW_MODE_OPEN:
                return "open";
        case OW_MODE_AUTHENTICATED:
                return "authenticated";
        case OW_MODE_ENCRYPTED:
                return "encrypted";
        }
        return "invalid";
}

char ow_mode_to_char(OwMode m) {
        switch (m) {
        case OW_MODE_OPEN:
                return 'O';
        case OW_MODE_AUTHENTICATED:
                return 'A';
        case OW_MODE_ENCRYPTED:
                return 'E';
        }
        return '?';
}

int ow_modes_from_string(const char *s, uint32_t *ret) {
        uint32_t m = 0;

        if (!s || !*s)
                return -OW_ERR_MODE;
        for (; *s; s++)
                switch (*s) {
                case 'O':
                case 'o':
                        m |= OW_MODE_OPEN;
                        break;
                case 'A':
                case 'a':
                        m |= OW_MODE_AUTHENTICATED;
                        break;
                case 'E':
                case 'e':
                        m |= OW_MODE_ENCRYPTED;
                        break;
                default:
                        return -OW_ERR_MODE;
                }
        *ret = m;
        return 0;
}

OwMode ow_modes_pick(uint32_t modes) {
        if (modes & OW_MODE_ENCRYPTED)
                return OW_MODE_ENCRYPTED;
        if (modes & OW_MODE_AUTHENTICATED)
                return OW_MODE_AUTHENTICATED;
        if (modes & OW_MODE_OPEN)
                return OW_MODE_OPEN;
        return 0;
}

const char *ow_accept_to_string(uint8_t a) {
        static const char *const names[] = {
                [OW_ACCEPT_OK] = "OK",
                [OW_ACCEPT_FAILURE] = "failure, reason unspecified",
                [OW_ACCEPT_INTERNAL] = "internal error",
                [OW_ACCEPT_UNSUPPORTED] = "some aspect of the request is not supported",
                [OW_ACCEPT_PERM_RESOURCE] = "cannot perform the request due to permanent resource limitations",
                [OW_ACCEPT_TEMP_RESOURCE] = "cannot perform the request due to temporary resource limitations",
        };
        return a <= _OW_ACCEPT_MAX ? names[a] : "invalid Accept value";
}
