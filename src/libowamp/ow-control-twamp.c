/* SPDX-License-Identifier: Apache-2.0 */

/*
 * TWAMP-Control (RFC 5357 3) as data for the control engine
 * (ow-control-engine.h), as ow-control-owamp.c is OWAMP-Control: what
 * differs from OWAMP is the Request-TW-Session (command 5, one HMAC block,
 * no slots), the Stop-Sessions that only the client sends (no session
 * records: it ends the test by itself), no Fetch-Session, and mode 8
 * (Mixed, RFC 5618). The Accept-Session, Start-Sessions and Start-Ack are
 * OWAMP's, unchanged: the reference neither offers nor reads RFC 6038's
 * reflect octets (TWAMP-PROTOCOL.md 2.1, 3.3), so the Accept-Session has
 * no field OWAMP's lacks.
 */

#include "macro.h"
#include "ow-control-engine.h"
#include "ow-control-table.h"
#include "ow-control.h"

CODEC_ADAPTERS(tw_request_session, OwSessionRequest, request)
CODEC_ADAPTERS(tw_stop_sessions, OwTwStopSessions, tw_stop)

static const OwMessageSpec twamp_request_tw_session = {
        CLIENT_COMMAND("Request-TW-Session", OW_CMD_REQUEST_TW_SESSION, OW_TW_REQUEST_SESSION_SIZE,
                       OW_EVENT_REQUEST_TW_SESSION, tw_request_session),
        .reply = &ow_owamp_accept_session,
};

/* RFC 5357 3.8: the Control-Client's alone; the server never answers it
 * (the reference's twping fails on one), so the client's ends the test. */
static const OwMessageSpec twamp_stop_sessions = {
        MESSAGE("Stop-Sessions", OW_TW_STOP_SESSIONS_SIZE, OW_EVENT_TW_STOP_SESSIONS, tw_stop_sessions),
        .command = OW_CMD_STOP_SESSIONS,
        .senders = CLIENT_ONLY,
        .states = IN_TEST,
        .flags = OW_MSG_ENDS_TEST,
        .refused_context = "Stop-Sessions outside a test",
};

/* Commands 1 (OWAMP's Request-Session) and 4 (Fetch-Session) are not
 * TWAMP's: the engine fails on them ("unknown command"). The reference
 * answers each block of them with Accept 3 instead (TWAMP-PROTOCOL.md
 * 3.1); closing is what its notes advise for a new server. */
static const OwMessageSpec *const twamp_commands[] = {
        &twamp_request_tw_session,
        &ow_owamp_start_sessions,
        &twamp_stop_sessions,
};

/* RFC 5357 3.1 and RFC 5618: Mixed protects the control stream exactly as
 * E (same Token, CBC chains and HMACs); only its test packets differ. */
static const OwModeSpec twamp_modes[] = {
        { OW_MODE_OPEN, OW_MODE_OPEN },
        { OW_MODE_AUTHENTICATED, OW_MODE_AUTHENTICATED },
        { OW_MODE_ENCRYPTED, OW_MODE_ENCRYPTED },
        { OW_MODE_MIXED, OW_MODE_ENCRYPTED },
};

const OwProtocol ow_protocol_twamp = {
        .name = "TWAMP",
        .port = OW_CONTROL_PORT_TWAMP,
        .modes = twamp_modes,
        .n_modes = ELEMENTSOF(twamp_modes),
        .commands = twamp_commands,
        .n_commands = ELEMENTSOF(twamp_commands),
        .fetch_request = NULL,
        .test_context = "only Stop-Sessions is allowed during a test",
};
