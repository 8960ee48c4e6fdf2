/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "ow-error.h"

static const char *const table[_OW_ERR_MAX - OW_ERR_BASE] = {
        [OW_ERR_TRUNCATED - OW_ERR_BASE] = "message truncated",
        [OW_ERR_TOO_LONG - OW_ERR_BASE] = "message too long",
        [OW_ERR_COMMAND - OW_ERR_BASE] = "unknown or unexpected command",
        [OW_ERR_MODE - OW_ERR_BASE] = "invalid or unoffered mode",
        [OW_ERR_ACCEPT - OW_ERR_BASE] = "Accept value out of range",
        [OW_ERR_COUNT - OW_ERR_BASE] = "count out of bounds",
        [OW_ERR_IPVN - OW_ERR_BASE] = "address family is neither IPv4 nor IPv6",
        [OW_ERR_CONF - OW_ERR_BASE] = "exactly one of Conf-Sender/Conf-Receiver must be set",
        [OW_ERR_SLOT_TYPE - OW_ERR_BASE] = "unknown schedule slot type",
        [OW_ERR_TYPEP - OW_ERR_BASE] = "Type-P descriptor not in DSCP form",
        [OW_ERR_PADDING - OW_ERR_BASE] = "non-zero padding",
        [OW_ERR_RANGE - OW_ERR_BASE] = "sequence range inverted or out of bounds",
        [OW_ERR_HMAC - OW_ERR_BASE] = "HMAC mismatch",
        [OW_ERR_TOKEN - OW_ERR_BASE] = "token does not match the challenge",
        [OW_ERR_PBKDF2_COUNT - OW_ERR_BASE] = "PBKDF2 iteration count out of range",
        [OW_ERR_ERREST - OW_ERR_BASE] = "invalid error estimate (multiplier 0)",
        [OW_ERR_MAGIC - OW_ERR_BASE] = "not an OWAMP session file (bad magic)",
        [OW_ERR_VERSION - OW_ERR_BASE] = "unsupported session file version",
        [OW_ERR_OFFSET - OW_ERR_BASE] = "file offsets out of bounds",
        [OW_ERR_FINISHED - OW_ERR_BASE] = "invalid 'finished' value",
        [OW_ERR_PACKET_SIZE - OW_ERR_BASE] = "test packet too short",
        [OW_ERR_SEQ - OW_ERR_BASE] = "sequence number out of range",
        [OW_ERR_KEYID - OW_ERR_BASE] = "invalid key id",
        [OW_ERR_ADDRESS - OW_ERR_BASE] = "unusable address",
        [OW_ERR_PORT - OW_ERR_BASE] = "invalid port",
        [OW_ERR_TIMESTAMP - OW_ERR_BASE] = "timestamp out of range",
        [OW_ERR_SYNTAX - OW_ERR_BASE] = "syntax error",
        [OW_ERR_KEYWORD - OW_ERR_BASE] = "unknown keyword",
        [OW_ERR_VALUE - OW_ERR_BASE] = "invalid value",
        [OW_ERR_DUPLICATE - OW_ERR_BASE] = "given more than once",
        [OW_ERR_UNKNOWN - OW_ERR_BASE] = "unknown name",
        [OW_ERR_STATE - OW_ERR_BASE] = "not allowed in this protocol state",
        [OW_ERR_OVERLAP - OW_ERR_BASE] = "session file areas overlap",
        [OW_ERR_MISALIGNED - OW_ERR_BASE] = "session file data not at the end of its header",
        [OW_ERR_FILE_COUNT - OW_ERR_BASE] = "session file count larger than the file",
        [OW_ERR_PARENT - OW_ERR_BASE] = "invalid limit class hierarchy",
        [OW_ERR_NETMASK - OW_ERR_BASE] = "invalid network prefix",
        [OW_ERR_HEX - OW_ERR_BASE] = "malformed hex encoding",
        /* TWAMP */
        [OW_ERR_TW_ROLE - OW_ERR_BASE] = "two-way request with Conf-Sender or Conf-Receiver set",
        [OW_ERR_TW_SCHEDULE - OW_ERR_BASE] = "two-way request with schedule slots or a packet count",
        /* STAMP */
        [OW_ERR_STAMP_TLV_OVERRUN - OW_ERR_BASE] = "STAMP TLV runs past the end of the packet",
        [OW_ERR_STAMP_TLV_LENGTH - OW_ERR_BASE] = "STAMP TLV length wrong for its type",
        [OW_ERR_STAMP_TLV_ORDER - OW_ERR_BASE] = "STAMP HMAC TLV not the last TLV",
        [OW_ERR_STAMP_TLV_FLAGS - OW_ERR_BASE] = "STAMP TLV flags not allowed",
        [OW_ERR_STAMP_SUB_TLV - OW_ERR_BASE] = "malformed STAMP sub-TLV",
        [OW_ERR_STAMP_AMPLIFY - OW_ERR_BASE] = "STAMP answer larger than the packet it answers",
};

const char *ow_strerror(int r) {
        if (r < 0)
                r = -r;
        if (ow_is_owerror(r)) {
                const char *s = table[r - OW_ERR_BASE];
                return s ? s : "unknown OWAMP error";
        }
        const char *s = strerrordesc_np(r);
        return s ? s : "unknown error";
}
