/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Every OWAMP-Control decoder. The first input octet picks the decoder, the
 * rest is the message (plaintext, as the channel hands it over). For the
 * fetch parts, the next 4 octets are the item count from the Fetch-Ack.
 *
 * Besides memory safety, each successful decode is checked for canonical
 * round trips: encode(decode(x)) must decode again and re-encode to the
 * same octets, so encoders accept whatever decoders accept.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "ow-control.h"
#include "ow-error.h"
#include "ow-wire.h"

enum {
        PICK_GREETING,
        PICK_SETUP_RESPONSE,
        PICK_SERVER_START,
        PICK_REQUEST_SESSION,
        PICK_ACCEPT_SESSION,
        PICK_START_SESSIONS,
        PICK_START_ACK,
        PICK_STOP_SESSIONS,
        PICK_FETCH_SESSION,
        PICK_FETCH_ACK,
        PICK_FETCH_SKIPS,
        PICK_FETCH_RECORDS,
        PICK_COMMAND_SIZE,
        _PICK_MAX,
};

/* Compare two encodings of the same message; abort on any difference so
 * libFuzzer (or the replay test) reports it. */
static void same(int r1, const uint8_t *a, int r2, const uint8_t *b) {
        if (r1 <= 0 || r1 != r2 || memcmp(a, b, (size_t) r1) != 0)
                abort();
}

/* Round trip of a decoded message of type T through its codec. */
#define ROUND_TRIP(T, encode, decode, done, m)                                           \
        do {                                                                             \
                size_t _size = 2 * size + 64;                                            \
                _cleanup_free_ uint8_t *_e1 = malloc(_size), *_e2 = malloc(_size);       \
                T _d2;                                                                   \
                int _r1, _r2;                                                            \
                if (!_e1 || !_e2)                                                        \
                        break;                                                           \
                _r1 = encode(m, _e1, _size);                                             \
                if (_r1 <= 0 || decode(_e1, (size_t) _r1, &_d2) < 0)                     \
                        abort();                                                         \
                _r2 = encode(&_d2, _e2, _size);                                          \
                done(&_d2);                                                              \
                same(_r1, _e1, _r2, _e2);                                                \
        } while (0)

static void nothing(const void *p) {
        (void) p;
}

static void fuzz_fetch_part(bool records, const uint8_t *data, size_t size) {
        _cleanup_free_ void *items = NULL;
        uint32_t n;
        size_t need;
        int r;

        if (size < 4)
                return;
        n = ow_get_be32(data);
        data += 4;
        size -= 4;

        r = records ? ow_fetch_records_size(n, &need) : ow_fetch_skips_size(n, &need);
        /* Only a part of the right size gets a real array; any other length
         * must be refused before the decoder touches ret. */
        if (r < 0 || need != size) {
                OwRecord one_record;
                OwSkipRange one_range;

                r = records ? ow_fetch_records_decode(data, size, n, &one_record)
                            : ow_fetch_skips_decode(data, size, n, &one_range);
                if (r >= 0)
                        abort();
                return;
        }

        items = calloc(MAX(n, 1u), records ? sizeof(OwRecord) : sizeof(OwSkipRange));
        if (!items)
                return;
        if (records) {
                if (ow_fetch_records_decode(data, size, n, items) < 0)
                        return;
                _cleanup_free_ uint8_t *e = malloc(size);
                if (!e)
                        return;
                if (ow_fetch_records_encode(items, n, e, size) != (int) size)
                        abort();
                /* Records are fully determined by their octets; only the
                 * padding (not checked) may differ. */
                if (memcmp(e, data, (size_t) n * OW_RECORD_SIZE) != 0)
                        abort();
        } else {
                if (ow_fetch_skips_decode(data, size, n, items) < 0)
                        return;
                _cleanup_free_ uint8_t *e = malloc(size);
                if (!e)
                        return;
                if (ow_fetch_skips_encode(items, n, e, size) != (int) size)
                        abort();
                if (memcmp(e, data, (size_t) n * OW_SKIP_RANGE_SIZE) != 0)
                        abort();
        }
}

static int start_sessions_decode_adapter(const uint8_t *buf, size_t len, int *unused) {
        (void) unused;
        return ow_start_sessions_decode(buf, len);
}

static int start_sessions_encode_adapter(const int *unused, uint8_t *buf, size_t size) {
        (void) unused;
        return ow_start_sessions_encode(buf, size);
}

static int start_ack_encode_adapter(const OwAccept *a, uint8_t *buf, size_t size) {
        return ow_start_ack_encode(*a, buf, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t pick;

        if (size < 1)
                return 0;
        pick = data[0] % _PICK_MAX;
        data++;
        size--;

        switch (pick) {
        case PICK_GREETING: {
                OwServerGreeting m;
                if (ow_server_greeting_decode(data, size, &m) < 0)
                        break;
                m.modes &= OW_MODES_ALL; /* unknown bits are decoded, never sent */
                ROUND_TRIP(OwServerGreeting, ow_server_greeting_encode, ow_server_greeting_decode, nothing,
                           &m);
                break;
        }
        case PICK_SETUP_RESPONSE: {
                OwSetupResponse m;
                if (ow_setup_response_decode(data, size, &m) < 0)
                        break;
                ROUND_TRIP(OwSetupResponse, ow_setup_response_encode, ow_setup_response_decode, nothing, &m);
                break;
        }
        case PICK_SERVER_START: {
                OwServerStart m;
                if (ow_server_start_decode(data, size, &m) < 0)
                        break;
                ROUND_TRIP(OwServerStart, ow_server_start_encode, ow_server_start_decode, nothing, &m);
                break;
        }
        case PICK_REQUEST_SESSION: {
                OwSessionRequest m;
                if (ow_request_session_decode(data, size, &m) < 0)
                        break;
                ROUND_TRIP(OwSessionRequest, ow_request_session_encode, ow_request_session_decode,
                           ow_session_request_done, &m);
                ow_session_request_done(&m);
                break;
        }
        case PICK_ACCEPT_SESSION: {
                OwAcceptSession m;
                if (ow_accept_session_decode(data, size, &m) < 0)
                        break;
                ROUND_TRIP(OwAcceptSession, ow_accept_session_encode, ow_accept_session_decode, nothing, &m);
                break;
        }
        case PICK_START_SESSIONS: {
                int m = 0;
                if (ow_start_sessions_decode(data, size) < 0)
                        break;
                ROUND_TRIP(int, start_sessions_encode_adapter, start_sessions_decode_adapter, nothing, &m);
                break;
        }
        case PICK_START_ACK: {
                OwAccept m;
                if (ow_start_ack_decode(data, size, &m) < 0)
                        break;
                ROUND_TRIP(OwAccept, start_ack_encode_adapter, ow_start_ack_decode, nothing, &m);
                break;
        }
        case PICK_STOP_SESSIONS: {
                OwStopSessions m;
                if (ow_stop_sessions_decode(data, size, &m) < 0)
                        break;
                ROUND_TRIP(OwStopSessions, ow_stop_sessions_encode, ow_stop_sessions_decode,
                           ow_stop_sessions_done, &m);
                ow_stop_sessions_done(&m);
                break;
        }
        case PICK_FETCH_SESSION: {
                OwFetchSession m;
                if (ow_fetch_session_decode(data, size, &m) < 0)
                        break;
                ROUND_TRIP(OwFetchSession, ow_fetch_session_encode, ow_fetch_session_decode, nothing, &m);
                break;
        }
        case PICK_FETCH_ACK: {
                OwFetchAck m;
                if (ow_fetch_ack_decode(data, size, &m) < 0)
                        break;
                ROUND_TRIP(OwFetchAck, ow_fetch_ack_encode, ow_fetch_ack_decode, nothing, &m);
                break;
        }
        case PICK_FETCH_SKIPS:
                fuzz_fetch_part(false, data, size);
                break;
        case PICK_FETCH_RECORDS:
                fuzz_fetch_part(true, data, size);
                break;
        case PICK_COMMAND_SIZE: {
                /* Feed the input as a reader would, block by block; the size
                 * must only grow and a finished walk must agree with the
                 * Stop-Sessions decoder about truncation. */
                size_t have = MIN(size, (size_t) OW_BLOCK_SIZE), need = 0;
                int r;

                while ((r = ow_command_size(data, have, &need)) == 1) {
                        if (need <= have)
                                abort();
                        if (need > size)
                                break;
                        have = need;
                }
                if (r == 0 && data[0] == OW_CMD_STOP_SESSIONS && data[1] <= _OW_ACCEPT_MAX && need > size) {
                        OwStopSessions m;
                        if (ow_stop_sessions_decode(data, size, &m) != -OW_ERR_TRUNCATED)
                                abort();
                }
                break;
        }
        }
        return 0;
}
