/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include "server.h"

/* guard.c: limits against hostile clients, by source (an IPv4 address,
 * an IPv6 /64). */
typedef enum GuardLog {
        GUARD_LOG_PER_ADDR,      /* refusals over maxcontrolsessionsperaddr */
        GUARD_LOG_SETUP_TIMEOUT, /* connections closed at setuptimeout */
        GUARD_LOG_BACKOFF,       /* refusals during an authentication back-off */
        GUARD_LOG_SETUP_ERROR,   /* connections that failed or went away before the set-up was done */
        _GUARD_LOG_MAX,
} GuardLog;
int guard_new(Server *s);
void guard_free(Server *s);
/* A new connection from peer (unmapped): 0 and counted, or -EUSERS
 * (logged, rate-limited) over maxcontrolsessionsperaddr. */
int guard_conn_admit(Server *s, const SockAddr *peer, const char *peer_str);
void guard_conn_closed(Server *s, const SockAddr *peer);
/* A failed authentication: counted; true when it is the first of its
 * source's window and should be logged as itself (the others go into
 * one line per window). May start a back-off (logged). */
bool guard_auth_failed(Server *s, const SockAddr *peer, const char *keyid);
/* peer's source is in a back-off: offer it no authenticated mode. */
bool guard_auth_backoff(Server *s, const SockAddr *peer);
/* One more of a line any client can make us write for each connection:
 * true to log it now; false when counted instead, for a line with the
 * count at the end of the interval. */
bool guard_log_allowed(Server *s, GuardLog kind, const char *peer);
