/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "macro.h"
#include "ow-error.h"
#include "ow-rules.h"
#include "ow-stamp.h"
#include "ow-wire.h"

/* --- Authenticated base packets, RFC 8762 4.2.2 and 4.3.2 ------------------- */

static int auth_seal(uint8_t *buf, const uint8_t *key, size_t key_len) {
        OwBytes text = { buf, OW_STAMP_AUTH_HMAC_OFFSET };
        return ow_hmac_sha256(key, key_len, &text, 1, buf + OW_STAMP_AUTH_HMAC_OFFSET, OW_STAMP_HMAC_SIZE);
}

/* The length, then the HMAC: a packet that fails it is not looked at. */
static int auth_open(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len) {
        OwBytes text = { buf, OW_STAMP_AUTH_HMAC_OFFSET };

        if (!buf)
                return -EINVAL;
        if (len < OW_STAMP_AUTH_BASE_SIZE)
                return -OW_ERR_PACKET_SIZE;
        return ow_hmac_sha256_verify(key, key_len, &text, 1, buf + OW_STAMP_AUTH_HMAC_OFFSET,
                                     OW_STAMP_HMAC_SIZE);
}

/* Rules on the decoded fields, in order, one error each (ow-rules.h). */
DEFINE_RULE_TYPE(SenderRule, OwStampAuthSender);
DEFINE_RULE_TYPE(ReflectorRule, OwStampAuthReflector);

static bool sender_err_ok(const OwStampAuthSender *m) {
        return ow_errest_check(m->err) >= 0;
}

static bool reflector_err_ok(const OwStampAuthReflector *m) {
        return ow_errest_check(m->err) >= 0;
}

static bool reflector_sender_err_ok(const OwStampAuthReflector *m) {
        return ow_errest_check(m->sender_err) >= 0;
}

static const SenderRule sender_rules[] = {
        { sender_err_ok, OW_ERR_ERREST },
};

static const ReflectorRule reflector_rules[] = {
        { reflector_err_ok, OW_ERR_ERREST },
        { reflector_sender_err_ok, OW_ERR_ERREST },
};

/* The reflector's layout holds the sender's fields at the same offsets
 * (RFC 8762 4.2.2, 4.3.2): one writer and one reader for both, the
 * sender's other fields zero (MBZ there). */
static int auth_put(const OwStampAuthReflector *m, const uint8_t *key, size_t key_len, uint8_t *buf, size_t size) {
        int r;

        if (size < OW_STAMP_AUTH_BASE_SIZE)
                return -ENOBUFS;
        memset(buf, 0, OW_STAMP_AUTH_BASE_SIZE);
        ow_put_be32(buf + 0, m->seq);
        ow_timestamp_put(buf + 16, m->timestamp);
        ow_errest_put(buf + 24, m->err);
        ow_put_be16(buf + 26, m->ssid);
        ow_timestamp_put(buf + 32, m->receive_timestamp);
        ow_put_be32(buf + 48, m->sender_seq);
        ow_timestamp_put(buf + 64, m->sender_timestamp);
        ow_errest_put(buf + 72, m->sender_err);
        buf[80] = m->sender_ttl;
        r = auth_seal(buf, key, key_len);
        return r < 0 ? r : OW_STAMP_AUTH_BASE_SIZE;
}

static OwStampAuthReflector auth_get(const uint8_t *buf) {
        return (OwStampAuthReflector){
                .seq = ow_get_be32(buf + 0),
                .timestamp = ow_timestamp_get(buf + 16),
                .err = ow_errest_get(buf + 24),
                .ssid = ow_get_be16(buf + 26),
                .receive_timestamp = ow_timestamp_get(buf + 32),
                .sender_seq = ow_get_be32(buf + 48),
                .sender_timestamp = ow_timestamp_get(buf + 64),
                .sender_err = ow_errest_get(buf + 72),
                .sender_ttl = buf[80],
        };
}

int ow_stamp_auth_sender_encode(const OwStampAuthSender *m, const uint8_t *key, size_t key_len, uint8_t *buf,
                                size_t size) {
        int r;

        if (!m || !buf)
                return -EINVAL;
        r = CHECK_RULES(sender_rules, m);
        if (r < 0)
                return r;
        return auth_put(&(OwStampAuthReflector){ .seq = m->seq, .timestamp = m->timestamp, .err = m->err,
                                                 .ssid = m->ssid },
                        key, key_len, buf, size);
}

int ow_stamp_auth_sender_decode(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len,
                                OwStampAuthSender *ret) {
        OwStampAuthReflector a;
        OwStampAuthSender m;
        int r;

        if (!ret)
                return -EINVAL;
        r = auth_open(buf, len, key, key_len);
        if (r < 0)
                return r;
        a = auth_get(buf);
        m = (OwStampAuthSender){ .seq = a.seq, .timestamp = a.timestamp, .err = a.err, .ssid = a.ssid };
        r = CHECK_RULES(sender_rules, &m);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

int ow_stamp_auth_reflector_encode(const OwStampAuthReflector *m, const uint8_t *key, size_t key_len,
                                   uint8_t *buf, size_t size) {
        int r;

        if (!m || !buf)
                return -EINVAL;
        r = CHECK_RULES(reflector_rules, m);
        if (r < 0)
                return r;
        return auth_put(m, key, key_len, buf, size);
}

int ow_stamp_auth_reflector_decode(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len,
                                   OwStampAuthReflector *ret) {
        OwStampAuthReflector m;
        int r;

        if (!ret)
                return -EINVAL;
        r = auth_open(buf, len, key, key_len);
        if (r < 0)
                return r;
        m = auth_get(buf);
        r = CHECK_RULES(reflector_rules, &m);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

int ow_stamp_answer_size(size_t received, size_t reflector_base, size_t *ret) {
        if (!ret)
                return -EINVAL;
        if (received < reflector_base)
                return -OW_ERR_STAMP_AMPLIFY;
        *ret = received;
        return 0;
}

/* --- TLVs, RFC 8972 4 ------------------------------------------------------- */

int ow_stamp_tlv_next(const uint8_t *area, size_t len, size_t *offset, OwStampTlv *ret) {
        size_t off, vlen;

        if (!area || !offset || !ret)
                return -EINVAL;
        off = *offset;
        if (off >= len)
                return 0;
        if (len - off < OW_STAMP_TLV_HEADER_SIZE)
                return -OW_ERR_STAMP_TLV_OVERRUN;
        vlen = ow_get_be16(area + off + 2);
        if (vlen > len - off - OW_STAMP_TLV_HEADER_SIZE)
                return -OW_ERR_STAMP_TLV_OVERRUN;
        *ret = (OwStampTlv){
                .flags = area[off],
                .type = area[off + 1],
                .length = (uint16_t) vlen,
                .offset = off,
                .value = area + off + OW_STAMP_TLV_HEADER_SIZE,
        };
        *offset = off + OW_STAMP_TLV_HEADER_SIZE + vlen;
        return 1;
}

/* The value length of a Location sub-TLV type, 0 if we do not know it. */
static size_t sub_tlv_length(uint8_t type) {
        switch (type) {
        case OW_STAMP_SUB_SRC_MAC:
        case OW_STAMP_SUB_SRC_EUI64:
                return 8;
        case OW_STAMP_SUB_DST_IPV4:
        case OW_STAMP_SUB_SRC_IPV4:
                return 4;
        case OW_STAMP_SUB_DST_IPV6:
        case OW_STAMP_SUB_SRC_IPV6:
                return 16;
        default:
                return 0;
        }
}

/* Every sub-TLV within the Location TLV, each known one of its length. */
static bool location_subs_ok(const OwStampTlv *t) {
        size_t off = OW_STAMP_LOCATION_MIN_LEN;
        OwStampTlv s;
        int r;

        while ((r = ow_stamp_tlv_next(t->value, t->length, &off, &s)) > 0) {
                size_t want = sub_tlv_length(s.type);
                if (want != 0 && s.length != want)
                        return false;
        }
        return r == 0;
}

/* Per type: the value length allowed, and a check of the value. */
typedef struct TlvRule {
        uint8_t type;
        uint16_t min_len, max_len;
        bool (*value_ok)(const OwStampTlv *t);
} TlvRule;

static const TlvRule tlv_rules[] = {
        { OW_STAMP_TLV_EXTRA_PADDING, 0, UINT16_MAX, NULL },
        { OW_STAMP_TLV_LOCATION, OW_STAMP_LOCATION_MIN_LEN, UINT16_MAX, location_subs_ok },
        { OW_STAMP_TLV_TIMESTAMP_INFO, OW_STAMP_TIMESTAMP_INFO_LEN, OW_STAMP_TIMESTAMP_INFO_LEN, NULL },
        { OW_STAMP_TLV_CLASS_OF_SERVICE, OW_STAMP_COS_LEN, OW_STAMP_COS_LEN, NULL },
        { OW_STAMP_TLV_DIRECT_MEASUREMENT, OW_STAMP_DIRECT_LEN, OW_STAMP_DIRECT_LEN, NULL },
        { OW_STAMP_TLV_ACCESS_REPORT, OW_STAMP_ACCESS_REPORT_LEN, OW_STAMP_ACCESS_REPORT_LEN, NULL },
        { OW_STAMP_TLV_FOLLOW_UP, OW_STAMP_FOLLOW_UP_LEN, OW_STAMP_FOLLOW_UP_LEN, NULL },
        { OW_STAMP_TLV_HMAC, OW_STAMP_HMAC_TLV_LEN, OW_STAMP_HMAC_TLV_LEN, NULL },
};

static const TlvRule *tlv_rule(uint8_t type) {
        for (size_t i = 0; i < ELEMENTSOF(tlv_rules); i++)
                if (tlv_rules[i].type == type)
                        return &tlv_rules[i];
        return NULL;
}

int ow_stamp_tlv_check(const OwStampTlv *t, bool last) {
        const TlvRule *rule;

        if (!t)
                return -EINVAL;
        rule = tlv_rule(t->type);
        if (!rule)
                return 0; /* unknown: nothing to check, flagged U by a reflector */
        if (t->length < rule->min_len || t->length > rule->max_len)
                return -OW_ERR_STAMP_TLV_LENGTH;
        if (rule->value_ok && !rule->value_ok(t))
                return -OW_ERR_STAMP_SUB_TLV;
        if (t->type == OW_STAMP_TLV_HMAC && !last)
                return -OW_ERR_STAMP_TLV_ORDER;
        return 0;
}

int ow_stamp_tlvs_check(const uint8_t *area, size_t len) {
        size_t off = 0;
        OwStampTlv t;
        int r, n = 0;

        if (!area && len > 0)
                return -EINVAL;
        while ((r = ow_stamp_tlv_next(area ? area : (const uint8_t *) "", len, &off, &t)) > 0) {
                if (t.flags & (OW_STAMP_FLAG_M | OW_STAMP_FLAG_I))
                        return -OW_ERR_STAMP_TLV_FLAGS;
                r = ow_stamp_tlv_check(&t, off == len);
                if (r < 0)
                        return r;
                n++;
        }
        return r < 0 ? r : n;
}

/* --- Session-Sender builders ------------------------------------------------ */

/* Room for a TLV of vlen value octets at *off: its header written (U set),
 * and where its value goes; NULL if it does not fit. */
static uint8_t *tlv_reserve(uint8_t *area, size_t size, const size_t *off, uint8_t type, size_t vlen) {
        uint8_t *p;

        if (vlen > UINT16_MAX || *off > size || size - *off < OW_STAMP_TLV_HEADER_SIZE + vlen)
                return NULL;
        p = area + *off;
        p[0] = OW_STAMP_FLAG_U;
        p[1] = type;
        ow_put_be16(p + 2, (uint16_t) vlen);
        return p + OW_STAMP_TLV_HEADER_SIZE;
}

/* A TLV whose value is zeros but for what `fill` writes. */
#define PUT_ZEROED(area, size, off, type, vlen, fill)                           \
        ({                                                                      \
                int _r = -EINVAL;                                               \
                uint8_t *_v;                                                    \
                if ((area) && (off)) {                                          \
                        _v = tlv_reserve(area, size, off, type, vlen);          \
                        _r = -ENOBUFS;                                          \
                        if (_v) {                                               \
                                memset(_v, 0, vlen);                            \
                                fill;                                           \
                                *(off) += OW_STAMP_TLV_HEADER_SIZE + (vlen);    \
                                _r = (int) (OW_STAMP_TLV_HEADER_SIZE + (vlen)); \
                        }                                                       \
                }                                                               \
                _r;                                                             \
        })

int ow_stamp_put_tlv(uint8_t *area, size_t size, size_t *off, uint8_t type, const uint8_t *value,
                     size_t len) {
        if (!value && len > 0)
                return -EINVAL;
        return PUT_ZEROED(area, size, off, type, len, if (len > 0) memcpy(_v, value, len));
}

int ow_stamp_put_extra_padding(uint8_t *area, size_t size, size_t *off, const uint8_t *fill, size_t n) {
        return PUT_ZEROED(area, size, off, OW_STAMP_TLV_EXTRA_PADDING, n,
                          if (fill && n > 0) memcpy(_v, fill, n));
}

int ow_stamp_put_location(uint8_t *area, size_t size, size_t *off, const uint8_t *sub_types, size_t n) {
        size_t vlen = OW_STAMP_LOCATION_MIN_LEN;

        if (!sub_types && n > 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                size_t l = sub_tlv_length(sub_types[i]);
                if (l == 0)
                        return -EINVAL;
                vlen += OW_STAMP_TLV_HEADER_SIZE + l;
        }
        return PUT_ZEROED(area, size, off, OW_STAMP_TLV_LOCATION, vlen, ({
                                  uint8_t *_s = _v + OW_STAMP_LOCATION_MIN_LEN;
                                  for (size_t i = 0; i < n; i++) {
                                          size_t l = sub_tlv_length(sub_types[i]);
                                          _s[0] = OW_STAMP_FLAG_U;
                                          _s[1] = sub_types[i];
                                          ow_put_be16(_s + 2, (uint16_t) l);
                                          _s += OW_STAMP_TLV_HEADER_SIZE + l;
                                  }
                          }));
}

int ow_stamp_put_timestamp_info(uint8_t *area, size_t size, size_t *off) {
        return PUT_ZEROED(area, size, off, OW_STAMP_TLV_TIMESTAMP_INFO, OW_STAMP_TIMESTAMP_INFO_LEN,
                          (void) 0);
}

int ow_stamp_put_cos(uint8_t *area, size_t size, size_t *off, uint8_t dscp1) {
        if (dscp1 > 63)
                return -EINVAL;
        /* DSCP1 (6) | DSCP2 (6) | EC (2) | RP (2) | Reserved (16) */
        return PUT_ZEROED(area, size, off, OW_STAMP_TLV_CLASS_OF_SERVICE, OW_STAMP_COS_LEN,
                          _v[0] = (uint8_t) (dscp1 << 2));
}

int ow_stamp_put_direct(uint8_t *area, size_t size, size_t *off, uint32_t s_txc) {
        return PUT_ZEROED(area, size, off, OW_STAMP_TLV_DIRECT_MEASUREMENT, OW_STAMP_DIRECT_LEN,
                          ow_put_be32(_v, s_txc));
}

int ow_stamp_put_access_report(uint8_t *area, size_t size, size_t *off, uint8_t id, uint8_t return_code) {
        if (id > 15)
                return -EINVAL;
        /* ID (4) | Resv (4) | Return Code (8) | Reserved (16) */
        return PUT_ZEROED(area, size, off, OW_STAMP_TLV_ACCESS_REPORT, OW_STAMP_ACCESS_REPORT_LEN, ({
                                  _v[0] = (uint8_t) (id << 4);
                                  _v[1] = return_code;
                          }));
}

int ow_stamp_put_follow_up(uint8_t *area, size_t size, size_t *off) {
        return PUT_ZEROED(area, size, off, OW_STAMP_TLV_FOLLOW_UP, OW_STAMP_FOLLOW_UP_LEN, (void) 0);
}

/* HMAC-SHA-256 over the Sequence Number and area[0..end), into mac. */
static int tlv_hmac(const uint8_t *area, size_t end, uint32_t seq, const uint8_t *key, size_t key_len,
                    uint8_t mac[static OW_STAMP_HMAC_SIZE]) {
        uint8_t seqbuf[4];
        OwBytes parts[2] = { { seqbuf, sizeof(seqbuf) }, { area, end } };

        ow_put_be32(seqbuf, seq);
        return ow_hmac_sha256(key, key_len, parts, ELEMENTSOF(parts), mac, OW_STAMP_HMAC_SIZE);
}

int ow_stamp_put_hmac(uint8_t *area, size_t size, size_t *off, uint32_t seq, const uint8_t *key,
                      size_t key_len) {
        uint8_t mac[OW_STAMP_HMAC_SIZE];
        int r;

        if (!area || !off || *off > size)
                return -EINVAL;
        r = tlv_hmac(area, *off, seq, key, key_len, mac);
        if (r < 0)
                return r;
        return PUT_ZEROED(area, size, off, OW_STAMP_TLV_HMAC, OW_STAMP_HMAC_TLV_LEN,
                          memcpy(_v, mac, OW_STAMP_HMAC_SIZE));
}

/* --- Readers ---------------------------------------------------------------- */

/* The TLV is of that type and follows its rules; ret is where it goes. */
static int tlv_expect(const OwStampTlv *t, uint8_t type, const void *ret) {
        if (!t || !ret || t->type != type)
                return -EINVAL;
        return ow_stamp_tlv_check(t, true);
}

int ow_stamp_timestamp_info_get(const OwStampTlv *t, OwStampTimestampInfo *ret) {
        int r = tlv_expect(t, OW_STAMP_TLV_TIMESTAMP_INFO, ret);

        if (r < 0)
                return r;
        *ret = (OwStampTimestampInfo){ t->value[0], t->value[1], t->value[2], t->value[3] };
        return 0;
}

int ow_stamp_cos_get(const OwStampTlv *t, OwStampCos *ret) {
        int r = tlv_expect(t, OW_STAMP_TLV_CLASS_OF_SERVICE, ret);
        const uint8_t *v;

        if (r < 0)
                return r;
        v = t->value;
        *ret = (OwStampCos){
                .dscp1 = v[0] >> 2,
                .dscp2 = (uint8_t) (((v[0] & 0x03) << 4) | (v[1] >> 4)),
                .ecn = (v[1] >> 2) & 0x03,
                .rp = v[1] & 0x03,
        };
        return 0;
}

int ow_stamp_direct_get(const OwStampTlv *t, OwStampDirect *ret) {
        int r = tlv_expect(t, OW_STAMP_TLV_DIRECT_MEASUREMENT, ret);

        if (r < 0)
                return r;
        *ret = (OwStampDirect){ ow_get_be32(t->value), ow_get_be32(t->value + 4),
                                ow_get_be32(t->value + 8) };
        return 0;
}

int ow_stamp_access_report_get(const OwStampTlv *t, OwStampAccessReport *ret) {
        int r = tlv_expect(t, OW_STAMP_TLV_ACCESS_REPORT, ret);

        if (r < 0)
                return r;
        *ret = (OwStampAccessReport){ t->value[0] >> 4, t->value[1] };
        return 0;
}

int ow_stamp_follow_up_get(const OwStampTlv *t, OwStampFollowUp *ret) {
        int r = tlv_expect(t, OW_STAMP_TLV_FOLLOW_UP, ret);

        if (r < 0)
                return r;
        *ret = (OwStampFollowUp){ ow_get_be32(t->value), ow_timestamp_get(t->value + 4), t->value[12] };
        return 0;
}

int ow_stamp_location_get(const OwStampTlv *t, OwStampLocation *ret) {
        int r = tlv_expect(t, OW_STAMP_TLV_LOCATION, ret);

        if (r < 0)
                return r;
        *ret = (OwStampLocation){
                .dst_port = ow_get_be16(t->value),
                .src_port = ow_get_be16(t->value + 2),
                .subs = t->value + OW_STAMP_LOCATION_MIN_LEN,
                .subs_len = t->length - OW_STAMP_LOCATION_MIN_LEN,
        };
        return 0;
}

int ow_stamp_hmac_tlv_verify(const uint8_t *area, const OwStampTlv *t, uint32_t seq, const uint8_t *key,
                             size_t key_len) {
        uint8_t mac[OW_STAMP_HMAC_SIZE];
        int r;

        if (!area)
                return -EINVAL;
        r = tlv_expect(t, OW_STAMP_TLV_HMAC, area);
        if (r >= 0)
                r = tlv_hmac(area, t->offset, seq, key, key_len, mac);
        if (r >= 0)
                r = ow_memeq_ct(mac, t->value, OW_STAMP_HMAC_SIZE) ? 0 : -OW_ERR_HMAC;
        ow_wipe(mac, sizeof(mac));
        return r;
}

/* --- The reflector's answer ------------------------------------------------- */

/* Fill one Location sub-TLV (out, already a copy of the sender's) with
 * what we saw; false when we cannot (it gets U). */
static bool fill_sub_tlv(uint8_t type, uint8_t *v, const OwStampReflectInfo *info) {
        switch (type) {
        case OW_STAMP_SUB_SRC_MAC:
                if (!info->have_src_mac)
                        return false;
                memset(v, 0, 8);
                memcpy(v, info->src_mac, sizeof(info->src_mac));
                return true;
        case OW_STAMP_SUB_SRC_IPV4:
        case OW_STAMP_SUB_DST_IPV4:
                if (info->ipvn != 4)
                        return false;
                memcpy(v, type == OW_STAMP_SUB_SRC_IPV4 ? info->src_addr : info->dst_addr, 4);
                return true;
        case OW_STAMP_SUB_SRC_IPV6:
        case OW_STAMP_SUB_DST_IPV6:
                if (info->ipvn != 6)
                        return false;
                memcpy(v, type == OW_STAMP_SUB_SRC_IPV6 ? info->src_addr : info->dst_addr, 16);
                return true;
        default:
                return false; /* EUI-64 and unknown types: not ours to fill */
        }
}

static void fill_location(uint8_t *v, uint16_t len, const OwStampReflectInfo *info) {
        size_t off = OW_STAMP_LOCATION_MIN_LEN;
        OwStampTlv s;

        ow_put_be16(v, info->dst_port);
        ow_put_be16(v + 2, info->src_port);
        /* Checked well-formed before: the walk cannot fail. */
        while (ow_stamp_tlv_next(v, len, &off, &s) > 0) {
                uint8_t *sv = v + s.offset + OW_STAMP_TLV_HEADER_SIZE;
                v[s.offset] = fill_sub_tlv(s.type, sv, info) ? 0 : OW_STAMP_FLAG_U;
        }
}

/* Fill the value of a known, well-formed TLV (out holds the sender's
 * copy); the flags are for the caller. */
static void fill_tlv(const OwStampTlv *t, uint8_t *v, const OwStampReflectInfo *info,
                     OwStampReflectResult *res) {
        switch (t->type) {
        case OW_STAMP_TLV_LOCATION:
                fill_location(v, t->length, info);
                break;
        case OW_STAMP_TLV_TIMESTAMP_INFO:
                v[0] = info->clock.sync_in;
                v[1] = info->clock.method_in;
                v[2] = info->clock.sync_out;
                v[3] = info->clock.method_out;
                break;
        case OW_STAMP_TLV_CLASS_OF_SERVICE: {
                uint8_t dscp1 = v[0] >> 2, dscp2 = info->dscp & 0x3f;

                res->dscp1_requested = !info->dscp1_refused;
                res->dscp1 = dscp1;
                v[0] = (uint8_t) ((dscp1 << 2) | (dscp2 >> 4));
                v[1] = (uint8_t) (((dscp2 & 0x0f) << 4) | ((info->ecn & 0x03) << 2) |
                                  (info->dscp1_refused ? 1 : 0));
                v[2] = v[3] = 0;
                break;
        }
        case OW_STAMP_TLV_DIRECT_MEASUREMENT:
                ow_put_be32(v + 4, info->rx_count);
                ow_put_be32(v + 8, info->tx_count);
                break;
        case OW_STAMP_TLV_FOLLOW_UP:
                memset(v, 0, OW_STAMP_FOLLOW_UP_LEN);
                if (info->have_previous) {
                        ow_put_be32(v, info->previous.seq);
                        ow_timestamp_put(v + 4, info->previous.timestamp);
                        v[12] = info->previous.mode;
                }
                break;
        default: /* Extra Padding, Access Report: copied */
                break;
        }
}

int ow_stamp_reflect_tlvs(const uint8_t *in, size_t len, uint8_t *out, size_t size,
                          const OwStampReflectInfo *info, OwStampReflectResult *ret) {
        OwStampReflectResult res = {};
        size_t off = 0, hmac_at = SIZE_MAX;
        OwStampTlv t;
        int r;

        if ((!in && len > 0) || (!out && size > 0) || !info || !ret || len > INT32_MAX)
                return -EINVAL;
        if (size < len)
                return -ENOBUFS;
        if (len > 0 && out < in + len && in < out + size)
                return -EINVAL; /* the HMAC TLV is checked against the octets as they came */
        if (len == 0) {
                *ret = res;
                return 0;
        }
        memcpy(out, in, len); /* the answer is the request, filled in */

        while ((r = ow_stamp_tlv_next(in, len, &off, &t)) > 0) {
                uint8_t *h = out + t.offset;
                const TlvRule *rule = tlv_rule(t.type);

                res.n_tlvs++;
                if (ow_stamp_tlv_check(&t, off == len) < 0) {
                        /* RFC 8972 4: M, and nothing after it is processed. */
                        h[0] = (uint8_t) ((rule ? 0 : OW_STAMP_FLAG_U) | OW_STAMP_FLAG_M);
                        res.malformed = true;
                        if (!rule)
                                res.n_unknown++;
                        break;
                }
                if (!rule || (t.type == OW_STAMP_TLV_HMAC && !info->key)) {
                        h[0] = OW_STAMP_FLAG_U; /* copied, flagged, never dropped */
                        res.n_unknown++;
                        continue;
                }
                h[0] = 0;
                if (t.type == OW_STAMP_TLV_HMAC) {
                        /* Last by the rules: checked here, sealed below. */
                        if (ow_stamp_hmac_tlv_verify(in, &t, info->sender_seq, info->key, info->key_len) <
                            0) {
                                h[0] = OW_STAMP_FLAG_I;
                                res.hmac_failed = true;
                        }
                        hmac_at = t.offset;
                        continue;
                }
                fill_tlv(&t, h + OW_STAMP_TLV_HEADER_SIZE, info, &res);
        }
        if (r < 0) {
                /* A value past the end of the packet: M on its header (a
                 * fragment shorter than a header stays as it came). */
                res.malformed = true;
                if (len - off >= OW_STAMP_TLV_HEADER_SIZE) {
                        bool known = tlv_rule(in[off + 1]) != NULL;

                        out[off] = (uint8_t) ((known ? 0 : OW_STAMP_FLAG_U) | OW_STAMP_FLAG_M);
                        res.n_tlvs++;
                        res.n_unknown += !known;
                }
        }

        if (hmac_at != SIZE_MAX) {
                r = tlv_hmac(out, hmac_at, info->reflector_seq, info->key, info->key_len,
                             out + hmac_at + OW_STAMP_TLV_HEADER_SIZE);
                if (r < 0)
                        return r;
        }
        *ret = res;
        return (int) len;
}
