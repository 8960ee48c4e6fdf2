/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * STAMP (RFC 8762) and its optional extensions (RFC 8972), as pure codecs
 * on byte buffers (TWAMP-PROTOCOL.md 10 and 11):
 *
 *  - the authenticated base packets of both directions (RFC 8762 4.2.2 and
 *    4.3.2: 112 octets, HMAC-SHA-256 over octets 0..95 truncated to 16);
 *    the unauthenticated base packets (44 octets) are the test-packet
 *    codec family's (ow-testpkt.h);
 *  - the TLV area that follows either base packet (RFC 8972 4): a walker,
 *    the rules each known type's TLV must follow (one OW_ERR_* each), the
 *    Session-Sender's builders, readers of what a Session-Reflector
 *    filled in, and the reflector's answer construction
 *    (ow_stamp_reflect_tlvs()), which writes exactly as many octets as it
 *    read: an answer never grows (no amplification).
 *
 * Where docs/notes/TWAMP-PROTOCOL.md 11 marks its reading [RFC?], this
 * follows RFC 8972's text: the Timestamp Information TLV's four octets are
 * all the reflector's (its clock and stamping method at T2 and at T3; the
 * sender sends zeros), and the Class of Service TLV is DSCP1 (6 bits),
 * DSCP2 (6), EC (2), RP (2), Reserved (16).
 *
 * Nothing here does I/O or reads a clock: what the reflector observed
 * (ports, addresses, DSCP, its counters, its previous answer) is a
 * parameter. Offsets inside the TLV area start at its first octet (the one
 * after the base packet). Conventions as everywhere in the core: 0 or a
 * positive count, or -errno / -OW_ERR_*; outputs written on success only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-crypto.h"
#include "ow-time.h"

/* RFC 8762 4: the Session-Reflector's well-known port (IANA "twamp-test"). */
#define OW_STAMP_PORT 862

/* Base packet sizes, RFC 8762 4.2 and 4.3: the same in both directions. */
#define OW_STAMP_BASE_SIZE 44
#define OW_STAMP_AUTH_BASE_SIZE 112
#define OW_STAMP_AUTH_HMAC_OFFSET 96 /* the HMAC covers octets 0..95 */
#define OW_STAMP_HMAC_SIZE OW_HMAC_SHA256_TRUNCATED_SIZE

/* --- Authenticated base packets, RFC 8762 4.2.2 and 4.3.2 ------------------- */

/*
 * Session-Sender, 112 octets: Sequence Number (0), MBZ (4..15), Timestamp
 * (16), Error Estimate (24), SSID (26, RFC 8972 3), MBZ (28..95), HMAC
 * (96..111). Nothing is encrypted.
 */
typedef struct OwStampAuthSender {
        uint32_t seq;
        OwTimestamp timestamp;
        OwErrEst err;
        uint16_t ssid;
} OwStampAuthSender;

/*
 * Session-Reflector, 112 octets: Sequence Number (0), MBZ (4..15),
 * Timestamp T3 (16), Error Estimate (24), SSID (26), MBZ (28..31), Receive
 * Timestamp T2 (32), MBZ (40..47), Session-Sender Sequence Number (48), MBZ
 * (52..63), Session-Sender Timestamp (64), Session-Sender Error Estimate
 * (72), MBZ (74..79), Session-Sender TTL (80), MBZ (81..95), HMAC (96..111).
 */
typedef struct OwStampAuthReflector {
        uint32_t seq;
        OwTimestamp timestamp;
        OwErrEst err;
        uint16_t ssid;
        OwTimestamp receive_timestamp;
        uint32_t sender_seq;
        OwTimestamp sender_timestamp;
        OwErrEst sender_err;
        uint8_t sender_ttl;
} OwStampAuthReflector;

/*
 * Encode: the fields over zeros and the HMAC (the key: 1 to
 * OW_HMAC_SHA256_KEY_MAX octets, -EINVAL otherwise); returns 112, or
 * -ENOBUFS. Decode: buf holds the whole datagram (len >= 112, TLVs may
 * follow: they are not looked at). Checks, in this order: the length
 * (-OW_ERR_PACKET_SIZE); the HMAC (-OW_ERR_HMAC: drop the packet without
 * an answer, RFC 8762 4.2.2); every Error Estimate (-OW_ERR_ERREST). MBZ
 * octets are not checked.
 */
int ow_stamp_auth_sender_encode(const OwStampAuthSender *m, const uint8_t *key, size_t key_len, uint8_t *buf,
                                size_t size);
int ow_stamp_auth_sender_decode(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len,
                                OwStampAuthSender *ret);
int ow_stamp_auth_reflector_encode(const OwStampAuthReflector *m, const uint8_t *key, size_t key_len,
                                   uint8_t *buf, size_t size);
int ow_stamp_auth_reflector_decode(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len,
                                   OwStampAuthReflector *ret);

/*
 * The size of the answer to a datagram of `received` octets whose answer
 * has a fixed part of `reflector_base` octets (44 or 112 for STAMP, 41 for
 * an unauthenticated TWAMP-Light answer): STAMP's packets are the same
 * size both ways, so the answer is exactly as long as what came in, and a
 * datagram shorter than the answer's fixed part is not answered at all
 * (-OW_ERR_STAMP_AMPLIFY: a 14-octet TWAMP-Light probe would otherwise get
 * 41 octets, TWAMP-PROTOCOL.md 10.5).
 */
int ow_stamp_answer_size(size_t received, size_t reflector_base, size_t *ret);

/* --- TLVs, RFC 8972 4 ------------------------------------------------------- */

#define OW_STAMP_TLV_HEADER_SIZE 4 /* Flags, Type, Length (of the Value) */

/* STAMP TLV Flags, RFC 8972 4: the other five bits are reserved (sent 0,
 * ignored). A Session-Sender sends U set and M, I clear; a
 * Session-Reflector clears U on a TLV it understood and sets M on a
 * malformed one, I on an HMAC TLV that failed. */
#define OW_STAMP_FLAG_U 0x80 /* Unrecognized */
#define OW_STAMP_FLAG_M 0x40 /* Malformed */
#define OW_STAMP_FLAG_I 0x20 /* Integrity check failed */

/* IANA "STAMP TLV Types" (RFC 8972 5.1). */
typedef enum OwStampTlvType {
        OW_STAMP_TLV_RESERVED = 0,
        OW_STAMP_TLV_EXTRA_PADDING = 1,
        OW_STAMP_TLV_LOCATION = 2,
        OW_STAMP_TLV_TIMESTAMP_INFO = 3,
        OW_STAMP_TLV_CLASS_OF_SERVICE = 4,
        OW_STAMP_TLV_DIRECT_MEASUREMENT = 5,
        OW_STAMP_TLV_ACCESS_REPORT = 6,
        OW_STAMP_TLV_FOLLOW_UP = 7,
        OW_STAMP_TLV_HMAC = 8,
} OwStampTlvType;

/* Value lengths of the fixed-size types. */
#define OW_STAMP_LOCATION_MIN_LEN 4 /* Destination Port, Source Port; then sub-TLVs */
#define OW_STAMP_TIMESTAMP_INFO_LEN 4
#define OW_STAMP_COS_LEN 4
#define OW_STAMP_DIRECT_LEN 12
#define OW_STAMP_ACCESS_REPORT_LEN 4
#define OW_STAMP_FOLLOW_UP_LEN 16
#define OW_STAMP_HMAC_TLV_LEN OW_STAMP_HMAC_SIZE

/* Location sub-TLV types (RFC 8972 4.2; same 4-octet header as a TLV) and
 * their value lengths: what the reflector saw in the packet's headers. */
typedef enum OwStampSubTlvType {
        OW_STAMP_SUB_SRC_MAC = 1,   /* 8: the EUI-48 address, 2 octets reserved */
        OW_STAMP_SUB_SRC_EUI64 = 2, /* 8 */
        OW_STAMP_SUB_DST_IPV4 = 3,  /* 4 */
        OW_STAMP_SUB_SRC_IPV4 = 4,  /* 4 */
        OW_STAMP_SUB_DST_IPV6 = 5,  /* 16 */
        OW_STAMP_SUB_SRC_IPV6 = 6,  /* 16 */
} OwStampSubTlvType;

/* Synchronization sources and timestamping methods (RFC 8972 5.3, 5.4),
 * for the Timestamp Information and Follow-Up Telemetry TLVs. */
#define OW_STAMP_SYNC_NTP 1
#define OW_STAMP_SYNC_PTP 2
#define OW_STAMP_SYNC_SSU_BITS 3
#define OW_STAMP_SYNC_GNSS 4
#define OW_STAMP_SYNC_LOCAL 5 /* a free-running local clock */
#define OW_STAMP_TS_HW_ASSIST 1
#define OW_STAMP_TS_SW_LOCAL 2
#define OW_STAMP_TS_CONTROL_PLANE 3

/* One TLV as the walker found it; value points into the caller's buffer. */
typedef struct OwStampTlv {
        uint8_t flags;
        uint8_t type;
        uint16_t length; /* of the value */
        size_t offset;   /* of its header in the TLV area */
        const uint8_t *value;
} OwStampTlv;

/*
 * The TLV at *offset of the area (len octets): 1 and *ret, *offset moved
 * past it; 0 at the end of the area; -OW_ERR_STAMP_TLV_OVERRUN when the
 * header or the value runs past the end (*offset and *ret untouched).
 */
int ow_stamp_tlv_next(const uint8_t *area, size_t len, size_t *offset, OwStampTlv *ret);

/*
 * The rules of the TLV's type (unknown types have none), in this order:
 * the Length for the type (-OW_ERR_STAMP_TLV_LENGTH: exactly 4, 4, 12, 4,
 * 16, 16 for types 3..8, at least 4 for a Location), a Location's
 * sub-TLVs each within it and of the length of its type
 * (-OW_ERR_STAMP_SUB_TLV), an HMAC TLV the last one (`last`,
 * -OW_ERR_STAMP_TLV_ORDER).
 */
int ow_stamp_tlv_check(const OwStampTlv *t, bool last);

/*
 * A whole TLV area as a Session-Sender must send it: every TLV within the
 * area and following its type's rules, none with M or I set
 * (-OW_ERR_STAMP_TLV_FLAGS). Returns the number of TLVs.
 */
int ow_stamp_tlvs_check(const uint8_t *area, size_t len);

/*
 * Session-Sender builders: each appends one TLV at *off of the area (size
 * octets), with U set (RFC 8972 4), and moves *off past it; -ENOBUFS if it
 * does not fit (nothing written), -EINVAL for a bad argument.
 *  - Extra Padding: n octets of `fill`, or zeros when fill is NULL (RFC
 *    8972 4.1 suggests pseudo-random octets: the caller's randomness);
 *  - Location: ports zero and one empty sub-TLV per requested type (what
 *    the sender wants to learn), each of its type's length;
 *  - Timestamp Information, Follow-Up Telemetry: zeros, the reflector's to
 *    fill;
 *  - Class of Service: DSCP1, the DSCP asked for the answer;
 *  - Direct Measurement: S_TxC, the packets sent in the session so far;
 *  - Access Report: ID (4 bits) and Return Code;
 *  - HMAC: HMAC-SHA-256 over the base packet's Sequence Number and every
 *    TLV before it (area[0..*off)), truncated to 16 (RFC 8972 4.8); it
 *    must be the last TLV;
 *  - any other type: ow_stamp_put_tlv() with its value.
 */
int ow_stamp_put_tlv(uint8_t *area, size_t size, size_t *off, uint8_t type, const uint8_t *value,
                     size_t len);
int ow_stamp_put_extra_padding(uint8_t *area, size_t size, size_t *off, const uint8_t *fill, size_t n);
int ow_stamp_put_location(uint8_t *area, size_t size, size_t *off, const uint8_t *sub_types, size_t n);
int ow_stamp_put_timestamp_info(uint8_t *area, size_t size, size_t *off);
int ow_stamp_put_cos(uint8_t *area, size_t size, size_t *off, uint8_t dscp1);
int ow_stamp_put_direct(uint8_t *area, size_t size, size_t *off, uint32_t s_txc);
int ow_stamp_put_access_report(uint8_t *area, size_t size, size_t *off, uint8_t id, uint8_t return_code);
int ow_stamp_put_follow_up(uint8_t *area, size_t size, size_t *off);
int ow_stamp_put_hmac(uint8_t *area, size_t size, size_t *off, uint32_t seq, const uint8_t *key,
                      size_t key_len);

/* What a reflector wrote into the TLVs (the sender reads its answer):
 * each checks the type and its length (-OW_ERR_STAMP_TLV_LENGTH, or
 * -EINVAL for another type). */
typedef struct OwStampTimestampInfo {
        uint8_t sync_in, method_in;   /* the reflector's clock and stamping at T2 */
        uint8_t sync_out, method_out; /* ... and at T3 */
} OwStampTimestampInfo;

typedef struct OwStampCos {
        uint8_t dscp1; /* asked for the answer by the sender */
        uint8_t dscp2; /* what arrived at the reflector */
        uint8_t ecn;   /* the ECN that arrived */
        uint8_t rp;    /* 1: the reflector's policy refused DSCP1 */
} OwStampCos;

typedef struct OwStampDirect {
        uint32_t s_txc, r_rxc, r_txc;
} OwStampDirect;

typedef struct OwStampAccessReport {
        uint8_t id; /* 4 bits */
        uint8_t return_code;
} OwStampAccessReport;

typedef struct OwStampFollowUp {
        uint32_t seq;          /* of the reflector's previous answer */
        OwTimestamp timestamp; /* when that answer really left */
        uint8_t mode;          /* how that was stamped (OW_STAMP_TS_*) */
} OwStampFollowUp;

typedef struct OwStampLocation {
        uint16_t dst_port, src_port; /* of the packet the reflector received */
        const uint8_t *subs;         /* the sub-TLVs: walk them with ow_stamp_tlv_next() */
        size_t subs_len;
} OwStampLocation;

int ow_stamp_timestamp_info_get(const OwStampTlv *t, OwStampTimestampInfo *ret);
int ow_stamp_cos_get(const OwStampTlv *t, OwStampCos *ret);
int ow_stamp_direct_get(const OwStampTlv *t, OwStampDirect *ret);
int ow_stamp_access_report_get(const OwStampTlv *t, OwStampAccessReport *ret);
int ow_stamp_follow_up_get(const OwStampTlv *t, OwStampFollowUp *ret);
int ow_stamp_location_get(const OwStampTlv *t, OwStampLocation *ret);
/* An HMAC TLV at `t` of `area` checked against seq and the TLVs before it:
 * 0 or -OW_ERR_HMAC (the sender checking the reflector's). */
int ow_stamp_hmac_tlv_verify(const uint8_t *area, const OwStampTlv *t, uint32_t seq, const uint8_t *key,
                             size_t key_len);

/* --- The Session-Reflector's answer to the TLVs, RFC 8972 4 ---------------- */

/* What the reflector knows of the packet it answers and of itself. */
typedef struct OwStampReflectInfo {
        uint16_t src_port, dst_port; /* the received datagram's UDP ports */
        uint8_t ipvn;                /* 4 or 6: which addresses below are set */
        uint8_t src_addr[16], dst_addr[16];
        bool have_src_mac;
        uint8_t src_mac[6];
        uint8_t dscp, ecn;  /* of the received packet */
        bool dscp1_refused; /* policy: the answer does not take the sender's DSCP1 */
        OwStampTimestampInfo clock;
        uint32_t rx_count, tx_count; /* the session's counters, this packet and its answer included */
        bool have_previous;          /* a previous answer in this session: */
        OwStampFollowUp previous;
        /* HMAC TLV key (NULL: an HMAC TLV is not understood, U), and the
         * Sequence Numbers it covers: the sender's packet's and our answer's. */
        const uint8_t *key;
        size_t key_len;
        uint32_t sender_seq, reflector_seq;
} OwStampReflectInfo;

typedef struct OwStampReflectResult {
        unsigned n_tlvs;      /* TLVs walked */
        unsigned n_unknown;   /* answered with U */
        bool malformed;       /* one had M set: processing stopped there */
        bool hmac_failed;     /* an HMAC TLV got I */
        bool dscp1_requested; /* a Class of Service TLV asks for dscp1 */
        uint8_t dscp1;
} OwStampReflectResult;

/*
 * The TLV area of the answer (out, size octets) from the sender's (in,
 * len octets): the same TLVs in the same order, exactly len octets (never
 * more: -ENOBUFS when size < len), each known one with U cleared and the
 * reflector's fields filled in - Location: the ports, and the sub-TLVs it
 * can fill (the others get U); Timestamp Information: the four octets of
 * info->clock; Class of Service: DSCP2 and ECN as received, RP 1 when
 * refused; Direct Measurement: R_RxC and R_TxC; Follow-Up Telemetry: the
 * previous answer (zeros when none); Extra Padding and Access Report:
 * copied; HMAC: verified (I when it fails) and computed again over the
 * answer. An unknown type (0 included) is copied with U set, never
 * dropped. A malformed TLV (its rules, ow_stamp_tlv_check()) gets M and
 * ends the processing: it and what follows are copied as received, as is
 * a trailing fragment shorter than a header. in and out must not overlap
 * (-EINVAL). Returns len.
 */
int ow_stamp_reflect_tlvs(const uint8_t *in, size_t len, uint8_t *out, size_t size,
                          const OwStampReflectInfo *info, OwStampReflectResult *ret);
