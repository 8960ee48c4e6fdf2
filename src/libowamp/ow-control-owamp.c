/* SPDX-License-Identifier: Apache-2.0 */

/*
 * OWAMP-Control as data for the control engine (ow-control-engine.h): its
 * commands and replies, who sends each when, their codecs (ow-control.h),
 * its modes. TWAMP-Control (RFC 5357) is a second file like this one,
 * ow-control-twamp.c, which shares the messages that are the same.
 */

#include "macro.h"
#include "ow-control-engine.h"
#include "ow-control-table.h"
#include "ow-control.h"
#include "ow-wire.h"

/* Adapters from the table's uniform signatures to the codecs (ow-control.c). */

static int request_size_of(const uint8_t *buf, size_t len, size_t *ret_size) {
        /* The slot count is in the first block. */
        if (len < OW_BLOCK_SIZE) {
                *ret_size = OW_BLOCK_SIZE;
                return 1;
        }
        return ow_request_session_size(ow_get_be32(buf + 4), ret_size);
}

static int request_encoded_size(const void *m, size_t *ret_size) {
        return ow_request_session_size(((const OwSessionRequest *) m)->n_slots, ret_size);
}

static int stop_encoded_size(const void *m, size_t *ret_size) {
        return ow_stop_sessions_size(m, ret_size);
}

CODEC_ADAPTERS(request_session, OwSessionRequest, request)
CODEC_ADAPTERS(accept_session, OwAcceptSession, accept_session)
CODEC_ADAPTERS(stop_sessions, OwStopSessions, stop)
CODEC_ADAPTERS(fetch_session, OwFetchSession, fetch)
CODEC_ADAPTERS(fetch_ack, OwFetchAck, fetch_ack)

/* Start-Sessions has no fields, Start-Ack only its Accept. */
static int start_sessions_encode(const void *m _unused_, uint8_t *buf, size_t size) {
        return ow_start_sessions_encode(buf, size);
}

static int start_sessions_decode(const uint8_t *buf, size_t len, OwEvent *ev _unused_) {
        return ow_start_sessions_decode(buf, len);
}

static int start_ack_encode(const void *m, uint8_t *buf, size_t size) {
        return ow_start_ack_encode(*(const OwAccept *) m, buf, size);
}

static int start_ack_decode(const uint8_t *buf, size_t len, OwEvent *ev) {
        return ow_start_ack_decode(buf, len, &ev->accept);
}

const OwMessageSpec ow_owamp_accept_session =
        REPLY("Accept-Session", OW_ACCEPT_SESSION_SIZE, OW_EVENT_ACCEPT_SESSION, accept_session, 0);
static const OwMessageSpec owamp_start_ack =
        REPLY("Start-Ack", OW_START_ACK_SIZE, OW_EVENT_START_ACK, start_ack, OW_MSG_STARTS_TEST);
static const OwMessageSpec owamp_fetch_ack =
        REPLY("Fetch-Ack", OW_FETCH_ACK_SIZE, OW_EVENT_FETCH_ACK, fetch_ack, OW_MSG_FETCH_PARTS);

/* Commands, RFC 4656 3.4-3.8: the client's, when set up and no test runs
 * (CLIENT_COMMAND), except Stop-Sessions. */

static const OwMessageSpec owamp_request_session = {
        CLIENT_COMMAND("Request-Session", OW_CMD_REQUEST_SESSION, OW_REQUEST_SESSION_PREAMBLE_SIZE,
                       OW_EVENT_REQUEST_SESSION, request_session),
        .size_of = request_size_of,
        .encoded_size = request_encoded_size,
        .inner_hmac_end = OW_REQUEST_SESSION_PREAMBLE_SIZE, /* then the slots and their HMAC */
        .reply = &ow_owamp_accept_session,
};

const OwMessageSpec ow_owamp_start_sessions = {
        CLIENT_COMMAND("Start-Sessions", OW_CMD_START_SESSIONS, OW_START_SESSIONS_SIZE,
                       OW_EVENT_START_SESSIONS, start_sessions),
        .flags = OW_MSG_NO_PIPELINE,
        .reply = &owamp_start_ack,
};

/* Each side describes the sessions it sent (PROTOCOL.md 5.4). */
static const OwMessageSpec owamp_stop_sessions = {
        MESSAGE("Stop-Sessions", OW_STOP_SESSIONS_MIN_SIZE, OW_EVENT_STOP_SESSIONS, stop_sessions),
        .command = OW_CMD_STOP_SESSIONS,
        .size_of = ow_stop_sessions_size_from,
        .encoded_size = stop_encoded_size,
        .senders = OW_ROLES_BOTH,
        .states = IN_TEST,
        .flags = OW_MSG_ENDS_TEST,
        .refused_context = "Stop-Sessions outside a test",
};

static const OwMessageSpec owamp_fetch_session = {
        CLIENT_COMMAND("Fetch-Session", OW_CMD_FETCH_SESSION, OW_FETCH_SESSION_SIZE, OW_EVENT_FETCH_SESSION,
                       fetch_session),
        .reply = &owamp_fetch_ack,
};

static const OwMessageSpec *const owamp_commands[] = {
        &owamp_request_session,
        &ow_owamp_start_sessions,
        &owamp_stop_sessions,
        &owamp_fetch_session,
};

/* RFC 4656 3.1: open, authenticated, encrypted; A and E protect the
 * control stream alike (they differ in the test packets). */
static const OwModeSpec owamp_modes[] = {
        { OW_MODE_OPEN, OW_MODE_OPEN },
        { OW_MODE_AUTHENTICATED, OW_MODE_AUTHENTICATED },
        { OW_MODE_ENCRYPTED, OW_MODE_ENCRYPTED },
};

const OwProtocol ow_protocol_owamp = {
        .name = "OWAMP",
        .port = OW_CONTROL_PORT_OWAMP,
        .modes = owamp_modes,
        .n_modes = ELEMENTSOF(owamp_modes),
        .commands = owamp_commands,
        .n_commands = ELEMENTSOF(owamp_commands),
        .fetch_request = &owamp_request_session,
        .test_context = "only Stop-Sessions is allowed during a test",
};
