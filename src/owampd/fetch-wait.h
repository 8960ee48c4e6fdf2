/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A whole-session fetch waiting for its session to end (fetch-wait.c,
 * PROTOCOL.md 5.7), owned by its connection (Conn.fetch_wait). */

#include <stdbool.h>
#include <stdint.h>

#include "ow-control.h"
#include "server.h"

typedef struct FetchWait FetchWait;

/* The wait is over (the session ended, or the last look came): answer the
 * fetch now. The owner frees the FetchWait (it may from here). */
typedef void (*FetchWaitOverFn)(void *userdata);

/* A whole-session fetch of a stored session that is still running: wait
 * before answering it. */
bool fetch_must_wait(Server *s, const OwFetchSession *f);
int fetch_wait_new(Server *s, const OwFetchSession *req, FetchWaitOverFn over, void *userdata, FetchWait **ret);
FetchWait *fetch_wait_free(FetchWait *w);
const OwFetchSession *fetch_wait_request(const FetchWait *w);
uint64_t fetch_wait_elapsed_usec(const FetchWait *w);
/* A session ended or went away: look again now. */
void fetch_wait_kick(FetchWait *w);
/* OWAMP_DEBUG_FETCH_WAIT: the first interval in seconds (default 1; each
 * next one doubles). -EINVAL when malformed. */
int fetch_wait_interval_from_env(uint64_t *ret_usec);
uint64_t fetch_wait_total_usec(uint64_t first_usec);
