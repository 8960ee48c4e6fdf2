/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The channel to the controller (src/shared/worker-ipc.h), one read loop
 * for every phase of the session and every role:
 *
 *   controller_read_setup()   before anything: waits for SETUP (at most
 *                             SETUP_TIMEOUT_MSEC) and parses it;
 *   controller_wait_start()   a sender, after READY: waits for START, or a
 *                             STOP that ends the session before it began;
 *   controller_poll()         while a role runs: handles whatever arrived
 *                             (STOP sets stop_requested), never waits.
 *
 * Each reports its errors to the controller itself where it always did
 * (session_fail()) and returns a negative errno.
 */

#include "session.h"

int controller_read_setup(Session *s);
/* 0: START; 1: STOP. */
int controller_wait_start(Session *s);
/* 0, or -EPIPE when the controller went away. */
int controller_poll(Session *s);
/* Sleep up to wait_nsec, waking at once for the controller (then
 * controller_poll(): a STOP sets stop_requested). 0 or a negative errno. */
int controller_sleep(Session *s, int64_t wait_nsec);
/* A receiving role's wait: up to wait_nsec for datagrams on the test
 * socket, then datagrams(userdata) (0 or a negative errno), and for the
 * controller, then controller_poll(). 0 or the first error. */
int controller_wait(Session *s, int64_t wait_nsec, int (*datagrams)(void *userdata), void *userdata);
