/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * What the protocol tables of the control engine (ow-control-owamp.c,
 * ow-control-twamp.c) share: the macros that describe a message, and the
 * messages TWAMP takes unchanged from OWAMP (RFC 5357 3.5, 3.7: the
 * Accept-Session, Start-Sessions and its Start-Ack). Internal to the core.
 */

#include "ow-control-engine.h"

/* The encoder of a message of type T, and the decoder into the event's
 * member F, of ow_<name>_encode() / _decode(). */
#define CODEC_ADAPTERS(name, T, F)                                              \
        static int name##_encode(const void *m, uint8_t *buf, size_t size) {    \
                return ow_##name##_encode((const T *) m, buf, size);            \
        }                                                                       \
        static int name##_decode(const uint8_t *buf, size_t len, OwEvent *ev) { \
                return ow_##name##_decode(buf, len, &ev->F);                    \
        }

#define SERVER_ONLY OW_ROLE_BIT(OW_CONTROL_SERVER)
#define CLIENT_ONLY OW_ROLE_BIT(OW_CONTROL_CLIENT)
#define IN_IDLE OW_ENGINE_STATE_BIT(OW_ENGINE_IDLE)
#define IN_TEST OW_ENGINE_STATE_BIT(OW_ENGINE_TEST)

/* What every message of the table has: its name, size, event and the
 * codec pair <codec>_encode() / _decode() above. */
#define MESSAGE(nm, sz, ev, codec) \
        .name = nm, .size = sz, .event = ev, .decode = codec##_decode, .encode = codec##_encode

/* Replies, RFC 4656 3.5, 3.7, 3.8: the server's, each to one command. */
#define REPLY(nm, sz, ev, codec, fl) \
        { MESSAGE(nm, sz, ev, codec), .senders = SERVER_ONLY, .states = IN_IDLE, .flags = fl }

/* Commands: the client's, when set up and no test runs. */
#define CLIENT_COMMAND(nm, cmd, sz, ev, codec) \
        MESSAGE(nm, sz, ev, codec), .command = cmd, .senders = CLIENT_ONLY, .states = IN_IDLE

/* OWAMP's, used as they are by TWAMP. */
extern const OwMessageSpec ow_owamp_accept_session;
extern const OwMessageSpec ow_owamp_start_sessions; /* its reply is the Start-Ack */
