/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The TWAMP-Control decoders (RFC 5357; ow-control.h, "TWAMP-Control"):
 * the Request-TW-Session, the TWAMP Stop-Sessions, and the set-up codecs
 * with TWAMP's mode mask (Mixed included). The first input octet picks
 * the decoder, the rest is the message (plaintext, as the channel hands it
 * over); the engine over ow_protocol_twamp is fuzz-engine's (bit 4 of its
 * first octet).
 *
 * Besides memory safety, every successful decode must encode again to
 * octets that decode to the same encoding (encoders accept what decoders
 * accept), and what the OWAMP mask refuses must be what lies outside it.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "ow-control.h"
#include "ow-error.h"
#include "ow-wire.h"

enum {
        PICK_TW_REQUEST,
        PICK_TW_STOP,
        PICK_GREETING,
        PICK_SETUP_RESPONSE,
        _PICK_MAX,
};

#define MAX_MESSAGE OW_SETUP_RESPONSE_SIZE

static void check(bool ok) {
        if (!ok)
                abort();
}

/* Two encodings of the same message, both valid, and equal. */
static void same(int r1, const uint8_t *a, int r2, const uint8_t *b) {
        check(r1 > 0 && r1 == r2 && memcmp(a, b, (size_t) r1) == 0);
}

static void fuzz_tw_request(const uint8_t *data, size_t size) {
        uint8_t e1[MAX_MESSAGE], e2[MAX_MESSAGE];
        OwSessionRequest m, back;
        int r1, r2;

        if (ow_tw_request_session_decode(data, size, &m) < 0)
                return;
        check(m.slots == NULL && m.n_slots == 0 && m.n_packets == 0 && !m.conf_sender && !m.conf_receiver);
        r1 = ow_tw_request_session_encode(&m, e1, sizeof(e1));
        check(r1 == OW_TW_REQUEST_SESSION_SIZE && ow_tw_request_session_decode(e1, (size_t) r1, &back) == 0);
        r2 = ow_tw_request_session_encode(&back, e2, sizeof(e2));
        same(r1, e1, r2, e2);
        /* Never an OWAMP Request-Session. */
        check(ow_request_session_decode(data, size, &back) == -OW_ERR_COMMAND);
}

static void fuzz_tw_stop(const uint8_t *data, size_t size) {
        uint8_t e1[MAX_MESSAGE], e2[MAX_MESSAGE];
        OwTwStopSessions m, back;
        int r1, r2;

        if (ow_tw_stop_sessions_decode(data, size, &m) < 0)
                return;
        r1 = ow_tw_stop_sessions_encode(&m, e1, sizeof(e1));
        check(r1 == OW_TW_STOP_SESSIONS_SIZE && ow_tw_stop_sessions_decode(e1, (size_t) r1, &back) == 0);
        r2 = ow_tw_stop_sessions_encode(&back, e2, sizeof(e2));
        same(r1, e1, r2, e2);
}

static void fuzz_greeting(const uint8_t *data, size_t size) {
        uint8_t e1[MAX_MESSAGE], e2[MAX_MESSAGE];
        OwServerGreeting m, back;
        int r1, r2;

        if (ow_server_greeting_decode(data, size, &m) < 0)
                return;
        /* Unknown bits are decoded, never sent. */
        r1 = ow_server_greeting_encode_modes(&m, OW_TWAMP_MODES_ALL, e1, sizeof(e1));
        if (m.modes & ~(uint32_t) OW_TWAMP_MODES_ALL) {
                check(r1 == -OW_ERR_MODE);
                return;
        }
        check(r1 == OW_SERVER_GREETING_SIZE && ow_server_greeting_decode(e1, (size_t) r1, &back) == 0);
        r2 = ow_server_greeting_encode_modes(&back, OW_TWAMP_MODES_ALL, e2, sizeof(e2));
        same(r1, e1, r2, e2);
        check((ow_server_greeting_encode(&m, e2, sizeof(e2)) == -OW_ERR_MODE) ==
              !!(m.modes & OW_MODE_MIXED));
}

static void fuzz_setup(const uint8_t *data, size_t size) {
        uint8_t e1[MAX_MESSAGE], e2[MAX_MESSAGE];
        OwSetupResponse m, back;
        int r1, r2;

        if (ow_setup_response_decode_modes(data, size, OW_TWAMP_MODES_ALL, &m) < 0)
                return;
        check(m.mode != 0 && (m.mode & (m.mode - 1)) == 0 && (m.mode & ~(uint32_t) OW_TWAMP_MODES_ALL) == 0);
        r1 = ow_setup_response_encode_modes(&m, OW_TWAMP_MODES_ALL, e1, sizeof(e1));
        check(r1 == OW_SETUP_RESPONSE_SIZE &&
              ow_setup_response_decode_modes(e1, (size_t) r1, OW_TWAMP_MODES_ALL, &back) == 0);
        r2 = ow_setup_response_encode_modes(&back, OW_TWAMP_MODES_ALL, e2, sizeof(e2));
        same(r1, e1, r2, e2);
        check((ow_setup_response_decode(data, size, &back) == -OW_ERR_MODE) == (m.mode == OW_MODE_MIXED));
        ow_wipe(&m, sizeof(m));
        ow_wipe(&back, sizeof(back));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t pick;

        if (size < 1)
                return 0;
        pick = data[0] % _PICK_MAX;
        data++;
        size--;

        switch (pick) {
        case PICK_TW_REQUEST:
                fuzz_tw_request(data, size);
                break;
        case PICK_TW_STOP:
                fuzz_tw_stop(data, size);
                break;
        case PICK_GREETING:
                fuzz_greeting(data, size);
                break;
        case PICK_SETUP_RESPONSE:
                fuzz_setup(data, size);
                break;
        }
        return 0;
}
