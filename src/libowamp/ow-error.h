/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Error codes of the core library.
 *
 * Every core function returns 0 (or a positive count) on success and a
 * negative value on failure: either -errno (-ENOMEM, -EINVAL, ...) or one of
 * the negated OwError codes below, which name the exact validation rule an
 * input broke. The codes start far above the errno range so the two never
 * collide; ow_strerror() describes either kind.
 */

#include <stdbool.h>

typedef enum OwError {
        OW_ERR_BASE = 0x1000,
        OW_ERR_TRUNCATED,      /* input shorter than the fixed part of the message */
        OW_ERR_TOO_LONG,       /* input longer than the message can be */
        OW_ERR_COMMAND,        /* unknown or unexpected control command number */
        OW_ERR_MODE,           /* mode is not exactly one of O/A/E, or not offered */
        OW_ERR_ACCEPT,         /* Accept value outside 0..5 (RFC 4656 3.3) */
        OW_ERR_COUNT,          /* a count is zero where it must not be, or above its bound */
        OW_ERR_IPVN,           /* address family (IPVN) is neither 4 nor 6 */
        OW_ERR_CONF,           /* Conf-Sender/Conf-Receiver not exactly one set */
        OW_ERR_SLOT_TYPE,      /* schedule slot type is neither 0 nor 1 */
        OW_ERR_TYPEP,          /* Type-P descriptor not in DSCP form */
        OW_ERR_PADDING,        /* padding that must be zero is not */
        OW_ERR_RANGE,          /* a sequence range is inverted or out of bounds */
        OW_ERR_HMAC,           /* HMAC does not verify */
        OW_ERR_TOKEN,          /* Token does not decrypt to the Challenge */
        OW_ERR_PBKDF2_COUNT,   /* PBKDF2 iteration count below 1024 or absurd */
        OW_ERR_ERREST,         /* error estimate with multiplier 0 (invalid) */
        OW_ERR_MAGIC,          /* file does not start with the .owp magic */
        OW_ERR_VERSION,        /* unsupported file version */
        OW_ERR_OFFSET,         /* file offsets point outside the file or overlap */
        OW_ERR_FINISHED,       /* unknown value of a "finished" field */
        OW_ERR_PACKET_SIZE,    /* test packet shorter than its mode requires */
        OW_ERR_SEQ,            /* sequence number not below the number of packets */
        OW_ERR_KEYID,          /* KeyID empty, not NUL-padded or not printable */
        OW_ERR_ADDRESS,        /* address not usable (e.g. zero where one is needed) */
        OW_ERR_PORT,           /* port zero where one is needed, or bad port range */
        OW_ERR_TIMESTAMP,      /* timestamp or duration out of the allowed range */
        OW_ERR_SYNTAX,         /* configuration: malformed line */
        OW_ERR_KEYWORD,        /* configuration: unknown keyword */
        OW_ERR_VALUE,          /* configuration: value out of range or malformed */
        OW_ERR_DUPLICATE,      /* configuration or protocol: an item given twice */
        OW_ERR_UNKNOWN,        /* reference to an undefined name (class, SID, ...) */
        OW_ERR_STATE,          /* message not allowed in the current protocol state */
        OW_ERR_OVERLAP,        /* session file: header, records and skip ranges overlap */
        OW_ERR_MISALIGNED,     /* session file: data does not start where the header ends */
        OW_ERR_FILE_COUNT,     /* session file: a record or skip-range count exceeds the file */
        OW_ERR_PARENT,         /* limits: root class with a parent, or another class without one */
        OW_ERR_NETMASK,        /* prefix length out of range, or address bits set beyond it */
        OW_ERR_HEX,            /* malformed hex encoding (odd length, non-hex digit, empty) */
        /* TWAMP-Control (RFC 5357) */
        OW_ERR_TW_ROLE,        /* two-way request with Conf-Sender or Conf-Receiver set */
        OW_ERR_TW_SCHEDULE,    /* two-way request with schedule slots or a packet count */
        /* STAMP (RFC 8762, RFC 8972): ow-stamp.h */
        OW_ERR_STAMP_TLV_OVERRUN, /* TLV header or value runs past the end of the packet */
        OW_ERR_STAMP_TLV_LENGTH,  /* TLV Length wrong for its type */
        OW_ERR_STAMP_TLV_ORDER,   /* HMAC TLV not the last one */
        OW_ERR_STAMP_TLV_FLAGS,   /* TLV flags a sender may not set */
        OW_ERR_STAMP_SUB_TLV,     /* malformed sub-TLV (Location) */
        OW_ERR_STAMP_AMPLIFY,     /* an answer would be larger than the packet it answers */

        _OW_ERR_MAX,
} OwError;

/* Describe r, which may be negative or positive, an OwError or an errno. */
const char *ow_strerror(int r);

/* True if r (negative or positive) is an OwError rather than an errno. */
static inline bool ow_is_owerror(int r) {
        if (r < 0)
                r = -r;
        return r > OW_ERR_BASE && r < _OW_ERR_MAX;
}
