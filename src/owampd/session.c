/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Test sessions on the server side: admission and socket set-up when a
 * Request-Session arrives, the worker's life once Start-Sessions comes, and
 * what happens to the data when the session ends one way or another.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "owampd.h"
#include "ow-error.h"
#include "units.h"

/* maxtestsessions auto: the 1,000 concurrent sessions this server is
 * built and benchmarked for (README, bench/ "concurrent": ~175 MiB with
 * their workers), as many as owampd-launcher runs units for one owampd;
 * bounded, so that clients asking for more cost ~3,000 descriptors and
 * ~180 MiB at worst, not the whole host (4,096 a connection and nothing
 * else bounding them took all 20,000 descriptors with three). */
#define MAX_TEST_SESSIONS_DEFAULT 1024u
/* What one session holds in owampd at most: its test socket or the
 * channel to its worker, its data file when receiving, and the worker's
 * pidfd (fork launcher). Starting it adds two more for a moment, one
 * session at a time. */
#define SESSION_FDS 3u
/* The daemon's own: listeners, the journal, the event loop's, the pid
 * file, the launcher's socket, a datastore scan, with room to spare. */
#define DAEMON_FDS 64u
/* One control connection: its socket and a file it is fetching. */
#define CONN_FDS 2u

static void session_log_internal(const char *file, int line, TestSession *t, int priority, const char *message_id,
                                 const char *fmt, ...) _printf_(6, 7);
#define session_log(t, ...) session_log_internal(__FILE__, __LINE__, (t), __VA_ARGS__)

static void session_log_internal(const char *file, int line, TestSession *t, int priority, const char *message_id,
                                 const char *fmt, ...) {
        Conn *c = t->conn;
        char extra_role[32];
        const char *extra[] = { extra_role, NULL };
        snprintf(extra_role, sizeof(extra_role), "OWAMP_ROLE=%s", t->we_send ? "sender" : "receiver");
        LogFields f = {
                .message_id = message_id,
                .sid = t->sid_hex,
                .peer = c ? c->peer_addr_str : NULL,
                .mode = c && c->mode ? ow_mode_to_string(c->mode) : NULL,
                .keyid = c && c->keyid[0] ? c->keyid : NULL,
                .extra = extra,
        };
        va_list ap;
        va_start(ap, fmt);
        log_internalv(file, line, priority, 0, &f, fmt, ap);
        va_end(ap);
}

static void session_limit_check_room(Server *s);

TestSession *server_find_session(Server *s, const OwSid *sid) {
        TestSession *t;
        LIST_FOREACH(all, t, s->all_sessions)
                if (ow_sid_equal(&t->sid, sid))
                        return t;
        return NULL;
}

/* Rough length of a schedule: Number of Packets times the mean gap. Used
 * for the guard timer and for bandwidth; exact values would need walking
 * the whole schedule, which a hostile Number of Packets makes too costly. */
static OwTimestamp schedule_estimate(const OwSessionRequest *req) {
        unsigned __int128 sum = 0;
        for (uint32_t i = 0; i < req->n_slots; i++)
                sum += req->slots[i].param;
        unsigned __int128 d = sum * req->n_packets / req->n_slots;
        return d > UINT64_MAX / 2 ? UINT64_MAX / 2 : (OwTimestamp) d;
}

int session_new(Conn *c, const OwSessionRequest *req, OwAccept *ret_accept, TestSession **ret) {
        Server *s = c->server;
        TestSession *t;
        char addr[SOCKADDR_STR_MAX], peer[SOCKADDR_STR_MAX];
        int r;

        *ret_accept = OW_ACCEPT_OK;
        t = calloc(1, sizeof(*t));
        if (!t) {
                *ret_accept = OW_ACCEPT_TEMP_RESOURCE;
                return -ENOMEM;
        }
        t->server = s;
        t->conn = c;
        t->udp_fd = -1;
        t->data = OWP_WRITER_NULL;
        t->we_send = req->conf_sender;
        t->req = *req;
        t->req.slots = calloc(req->n_slots, sizeof(OwSlot));
        if (!t->req.slots) {
                free(t);
                *ret_accept = OW_ACCEPT_TEMP_RESOURCE;
                return -ENOMEM;
        }
        memcpy(t->req.slots, req->slots, req->n_slots * sizeof(OwSlot));

        const uint8_t *our_addr = t->we_send ? req->sender_addr : req->receiver_addr;
        const uint8_t *their_addr = t->we_send ? req->receiver_addr : req->sender_addr;
        uint16_t their_port = t->we_send ? req->receiver_port : req->sender_port;
        r = sockaddr_from_owamp(req->ipvn, our_addr, 0, &t->local);
        if (r >= 0)
                r = sockaddr_from_owamp(req->ipvn, their_addr, their_port, &t->peer);
        if (r < 0) {
                conn_log(c, LOG_NOTICE, MSGID_SESSION_REFUSED,
                         "Refusing session from %s: unusable addresses (IPVN %u)", c->peer_str, req->ipvn);
                *ret_accept = OW_ACCEPT_UNSUPPORTED;
                goto refuse;
        }
        /* No "any" address for our end: OWAMP has no such convention
         * (PROTOCOL.md 5.1); use the control connection's local address. */
        if (sockaddr_is_any(&t->local)) {
                if (t->local.sa.sa_family != c->local.sa.sa_family) {
                        conn_log(c, LOG_NOTICE, MSGID_SESSION_REFUSED,
                                 "Refusing session from %s: no address for our endpoint in the control "
                                 "connection's family",
                                 c->peer_str);
                        *ret_accept = OW_ACCEPT_UNSUPPORTED;
                        goto refuse;
                }
                t->local = c->local;
                sockaddr_set_port(&t->local, 0);
        }
        sockaddr_addr_str(&t->local, addr, sizeof(addr));
        sockaddr_str(&t->peer, peer, sizeof(peer));

        /* The SID before any decision, so that every line about this session
         * from the request on carries it (journalctl OWAMP_SID=...). The
         * receiver makes it (RFC 4656 3.5): the client when we send, we
         * when we receive, from our endpoint's address (IPv4 for a
         * v4-mapped peer: c->local is unmapped). */
        if (t->we_send)
                t->sid = req->sid;
        else {
                uint8_t rnd[OW_SID_RANDOM_SIZE];
                r = random_bytes(rnd, sizeof(rnd));
                if (r >= 0)
                        r = ow_sid_make_from_sockaddr(&t->local.sa, sockaddr_len(&t->local), server_now(s), rnd, &t->sid);
                if (r < 0) {
                        *ret_accept = OW_ACCEPT_INTERNAL;
                        goto refuse;
                }
                t->req.sid = t->sid;
        }
        ow_sid_to_hex(&t->sid, t->sid_hex);
        session_log(t, LOG_INFO, MSGID_SESSION_REQUESTED,
                    "Session %s requested by %s: %s %u packets, %s -> %s", t->sid_hex, c->peer_str,
                    t->we_send ? "send" : "receive", req->n_packets, t->we_send ? addr : peer,
                    t->we_send ? peer : addr);

        /* The client's endpoint must be a real address and port. */
        if (sockaddr_is_any(&t->peer) || their_port == 0) {
                session_log(t, LOG_NOTICE, MSGID_SESSION_REFUSED,
                            "Refusing session %s from %s: no address or port for the client's endpoint (%s)",
                            t->sid_hex, c->peer_str, peer);
                *ret_accept = OW_ACCEPT_UNSUPPORTED;
                goto refuse;
        }
        /* In every mode the far endpoint is the host that asked, unless its
         * class allows another (policy.c): no client, anonymous or not, can
         * aim our packets at a third party. Logs its own refusals. */
        *ret_accept = policy_check_endpoint(s, c, t);
        if (*ret_accept != OW_ACCEPT_OK)
                goto refuse;

        t->last_scheduled = req->start_time + schedule_estimate(req);
        /* Logs its own refusals, naming the class and the limit. */
        *ret_accept = policy_admit_session(s, c, t);
        if (*ret_accept != OW_ACCEPT_OK)
                goto refuse;

        uint16_t port;
        r = udp_bind_in_range(&t->local, s->port_low, s->port_high, &port);
        if (r < 0) {
                char a[SOCKADDR_STR_MAX];
                session_log(t, LOG_WARNING, MSGID_SESSION_REFUSED,
                            "Refusing session %s from %s: cannot bind a test socket on %s (ports %u-%u): %s",
                            t->sid_hex, c->peer_str, sockaddr_addr_str(&t->local, a, sizeof(a)), s->port_low,
                            s->port_high, strerror(-r));
                *ret_accept = r == -EADDRINUSE ? OW_ACCEPT_TEMP_RESOURCE : OW_ACCEPT_INTERNAL;
                goto refuse;
        }
        t->udp_fd = r;
        sockaddr_set_port(&t->local, port);
        if (t->we_send)
                t->req.sender_port = port;
        else
                t->req.receiver_port = port;

        if (server_find_session(s, &t->sid)) {
                session_log(t, LOG_NOTICE, MSGID_SESSION_REFUSED, "Refusing session %s from %s: the SID is in use",
                            t->sid_hex, c->peer_str);
                *ret_accept = OW_ACCEPT_FAILURE;
                goto refuse;
        }

        if (c->mode != OW_MODE_OPEN)
                ow_testpkt_derive_keys(&t->sid, c->keys.aes, c->keys.hmac, &t->keys);

        if (!t->we_send) {
                /* A full disk is a temporary lack of resources (Accept 5):
                 * space may be freed. Refused before the session starts,
                 * rather than failing once its records do not fit. */
                uint64_t avail = 0, needed = 0;
                r = datastore_check_space(t, &avail, &needed);
                if (r == -ENOSPC) {
                        session_log(t, LOG_WARNING, MSGID_SESSION_REFUSED,
                                    "Refusing session %s from %s: the data directory %s has %" PRIu64
                                    " octets free, %" PRIu64 " needed",
                                    t->sid_hex, c->peer_str, s->datadir, avail, needed);
                        *ret_accept = OW_ACCEPT_TEMP_RESOURCE;
                        goto refuse;
                }
                r = datastore_create(t);
                if (r < 0) {
                        session_log(t, LOG_ERR, MSGID_SESSION_REFUSED,
                                    "Refusing session %s from %s: cannot create its data file: %s", t->sid_hex,
                                    c->peer_str, strerror(-r));
                        *ret_accept = r == -ENOSPC || r == -EDQUOT ? OW_ACCEPT_TEMP_RESOURCE : OW_ACCEPT_INTERNAL;
                        goto refuse;
                }
        }

        LIST_APPEND(by_conn, c->sessions, t);
        c->n_sessions++;
        c->n_accepted++;
        LIST_PREPEND(all, s->all_sessions, t);
        s->n_sessions++;
        t->state = SESSION_REQUESTED;
        session_log(t, LOG_INFO, MSGID_SESSION_ACCEPTED,
                    "Accepted session %s from %s: %s %u packets, %s -> %s, port %u, padding %u, DSCP %u, class %s",
                    t->sid_hex, c->peer_str, t->we_send ? "sending" : "receiving", req->n_packets,
                    t->we_send ? addr : peer, t->we_send ? peer : addr, port, req->padding_length,
                    ow_typep_dscp(req->type_p), c->class_name ? c->class_name : "-");
        *ret = t;
        return 0;

refuse:
        t->conn = NULL;
        session_free(t);
        return -EPERM;
}

TestSession *session_free(TestSession *t) {
        if (!t)
                return NULL;
        Server *s = t->server;
        bool held = t->conn;
        if (t->conn) {
                LIST_REMOVE(by_conn, t->conn->sessions, t);
                t->conn->n_sessions--;
                LIST_REMOVE(all, s->all_sessions, t);
                assert(s->n_sessions > 0);
                s->n_sessions--;
        }
        datastore_settle(t);
        policy_release_session(s, t);
        if (t->endpoint && endpoint_has_worker(t->endpoint) && s->n_sessions_running > 0)
                s->n_sessions_running--;
        t->endpoint = endpoint_free(t->endpoint);
        if (held)
                session_limit_check_room(s);
        safe_close(t->udp_fd);
        (void) owp_writer_close(&t->data);
        free(t->data_path);
        free(t->req.slots);
        ow_wipe(&t->keys, sizeof(t->keys));
        free(t);
        return NULL;
}

static void session_mark_done(TestSession *t, bool failed) {
        if (t->state == SESSION_DONE || t->state == SESSION_FINISHED)
                return;
        if (failed)
                t->failed = true;
        t->state = SESSION_DONE;
        if (t->conn)
                conn_session_event(t->conn);
}

/* --- The worker, through its endpoint controller (src/shared/endpoint.h) --- */

/* A message the session's state does not allow: the worker is broken or
 * hostile. */
static void session_bad_message(TestSession *t, WorkerMsgType type) {
        session_log(t, LOG_ERR, MSGID_WORKER_FAILED, "Session %s: unexpected message %u from its worker; stopping it",
                    t->sid_hex, type);
        t->failed = true;
        endpoint_kill(t->endpoint);
}

static void on_endpoint_ready(Endpoint *e _unused_, void *userdata) {
        TestSession *t = userdata;

        if (t->state != SESSION_STARTING) {
                session_bad_message(t, WORKER_MSG_READY);
                return;
        }
        /* A sender got START already (start_on_ready). */
        t->state = SESSION_RUNNING;
        t->ran = true;
        session_log(t, LOG_INFO, MSGID_SESSION_STARTED, "Session %s started (%s)", t->sid_hex,
                    t->we_send ? "sending" : "receiving");
        if (t->conn)
                conn_session_event(t->conn);
}

static void on_endpoint_records(Endpoint *e _unused_, const uint8_t *records, size_t n, void *userdata) {
        TestSession *t = userdata;

        if (t->state != SESSION_RUNNING) {
                session_bad_message(t, WORKER_MSG_RECORDS);
                return;
        }
        int r = datastore_append(t, records, n);
        if (r < 0) {
                session_log(t, LOG_ERR, MSGID_WORKER_FAILED, "Cannot store data of session %s: %s", t->sid_hex,
                            strerror(-r));
                t->failed = true;
                endpoint_kill(t->endpoint);
        }
}

static void on_endpoint_done(Endpoint *e _unused_, const WorkerDone *d, void *userdata) {
        TestSession *t = userdata;

        if (!d) {
                /* The channel closed without a DONE. */
                session_mark_done(t, true);
                return;
        }
        if (t->state != SESSION_RUNNING) {
                session_bad_message(t, WORKER_MSG_DONE);
                session_mark_done(t, true);
                return;
        }
        t->done = *d;
        const WorkerCounters *k = &d->counters;
        if (t->we_send)
                session_log(t, LOG_INFO, MSGID_SESSION_FINISHED,
                            "Session %s finished: %" PRIu64 " sent, %" PRIu64 " skipped as late, next seqno %u",
                            t->sid_hex, k->sent, k->late_skipped, d->next_seqno);
        else
                session_log(t, LOG_INFO, MSGID_SESSION_FINISHED,
                            "Session %s finished: %" PRIu64 " received, %" PRIu64 " lost, %" PRIu64
                            " duplicates; dropped %" PRIu64 " from wrong source, %" PRIu64
                            " failing authentication, %" PRIu64 " short, %" PRIu64 " out of range, %" PRIu64
                            " out of time",
                            t->sid_hex, k->received, k->lost, k->duplicates, k->dropped_source, k->dropped_auth,
                            k->dropped_short, k->dropped_seq, k->dropped_time);
        session_mark_done(t, false);
}

static void on_endpoint_failure(Endpoint *e _unused_, EndpointFailure kind, int error _unused_, const char *reason,
                                void *userdata) {
        TestSession *t = userdata;

        if (kind == ENDPOINT_FAILURE_WORKER)
                session_log(t, LOG_ERR, MSGID_WORKER_FAILED, "Session %s failed in its worker: %s", t->sid_hex,
                            reason);
        else
                session_log(t, LOG_ERR, MSGID_WORKER_FAILED, "Session %s: %s", t->sid_hex, reason);
        t->failed = true;
}

static void on_endpoint_exited(Endpoint *e _unused_, int status, void *userdata) {
        TestSession *t = userdata;
        Server *s = t->server;

        if (status != 0)
                session_log(t, LOG_WARNING, MSGID_WORKER_FAILED, "Worker of session %s ended with status %d",
                            t->sid_hex, status);
        if (s->n_sessions_running > 0)
                s->n_sessions_running--;
        server_update_status(s);
}

static const EndpointCallbacks session_endpoint_callbacks = {
        .ready = on_endpoint_ready,
        .records = on_endpoint_records,
        .done = on_endpoint_done,
        .failure = on_endpoint_failure,
        .exited = on_endpoint_exited,
};

static int session_start(TestSession *t) {
        Server *s = t->server;
        int r;

        if (!t->endpoint) {
                r = endpoint_new(s->event, s->launcher, &session_endpoint_callbacks, t, &t->endpoint);
                if (r < 0)
                        return r;
        }
        char desc[128];
        snprintf(desc, sizeof(desc), "OWAMP test session %s (%s)", t->sid_hex, t->we_send ? "sender" : "receiver");
        uint64_t lifetime = ow_duration_to_usec(t->last_scheduled - server_now(s) + t->req.timeout) +
                            s->enddelay_nsec / NSEC_PER_USEC + 120 * USEC_PER_SEC;
        EndpointParams p = {
                .sender = t->we_send,
                .mode = t->conn->mode,
                .req = &t->req,
                .peer = &t->peer,
                .keys = &t->keys,
                .clock_offset_nsec = s->clock_offset_nsec,
                .enddelay_nsec = s->enddelay_nsec,
                .start_on_ready = true,
                .spec = {
                        .sid_hex = t->sid_hex,
                        .description = desc,
                        .runtime_max_usec = lifetime,
                        .log_max_priority = log_get_max_priority(),
                        .sender = t->we_send,
                },
        };
        /* On failure as it was, so that it can be tried again (-EBUSY). */
        r = endpoint_launch(t->endpoint, &p, t->udp_fd);
        if (r < 0)
                return r;
        /* The worker holds the test socket now. */
        t->udp_fd = safe_close(t->udp_fd);
        s->n_sessions_running++;
        t->state = SESSION_STARTING;
        return 0;
}

/* --- Launching workers, a few at a time --------------------------------- */

/* A worker's launch costs owampd time in proportion to the descriptors it
 * holds (the child's copy of the descriptor table is closed one by one:
 * 4-6 ms a worker with 2,000 sessions held), and the systemd launcher's
 * socket may make it wait. Launching a whole batch of sessions at once
 * stopped every other connection for seconds (issue 11): so this many at
 * most per turn of the event loop, the connections taking turns, and
 * everything else that is pending runs in between. */
#define START_BATCH 8
/* The launcher is busy (-EBUSY): the next try after this long. */
#define START_RETRY_USEC (20 * USEC_PER_MSEC)

/* A timer that is already due, not a defer source: sd-event dispatches one
 * source per turn, the oldest pending first, and a defer source counts as
 * pending since it was made, so it would run turn after turn with every
 * connection waiting; a timer is pending from the turn it fell due, and
 * takes its place among the I/O that came meanwhile. */
static void session_queue_arm(Server *s, uint64_t delay_usec) {
        if (!s->starting || !s->start_source)
                return;
        (void) sd_event_source_set_time(s->start_source, server_monotonic_usec(s) + delay_usec);
        (void) sd_event_source_set_enabled(s->start_source, SD_EVENT_ONESHOT);
}

void session_queue_forget(Conn *c) {
        if (!c->in_starting)
                return;
        LIST_REMOVE(starting, c->server->starting, c);
        c->in_starting = false;
        c->start_next = NULL;
}

static int on_start_batch(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        Server *s = userdata;
        unsigned running = s->n_sessions_running;
        bool busy = false;

        for (unsigned n = 0; n < START_BATCH && s->starting; n++) {
                Conn *c = s->starting;
                TestSession *t = c->start_next;

                /* Its turn is taken: to the back of the line, or out. */
                LIST_REMOVE(starting, s->starting, c);
                c->in_starting = false;
                if (c->state != CONN_STARTING || !t)
                        continue;
                c->start_next = t->by_conn_next;
                if (c->start_next) {
                        LIST_APPEND(starting, s->starting, c);
                        c->in_starting = true;
                }
                assert(t->state == SESSION_QUEUED);
                int r = session_start(t);
                if (r == -EBUSY) {
                        /* Its turn again first, a little later. */
                        if (c->in_starting)
                                LIST_REMOVE(starting, s->starting, c);
                        LIST_PREPEND(starting, s->starting, c);
                        c->in_starting = true;
                        c->start_next = t;
                        if (!s->launcher_busy)
                                session_log(t, LOG_DEBUG, NULL,
                                            "The session launcher is busy; launching the rest of the sessions later");
                        s->launcher_busy = busy = true;
                        session_queue_arm(s, START_RETRY_USEC);
                        break;
                }
                s->launcher_busy = false;
                if (r < 0) {
                        session_log(t, LOG_ERR, MSGID_WORKER_FAILED, "Cannot start session %s: %s", t->sid_hex,
                                    ow_strerror(r));
                        /* The connection refuses the batch (Start-Ack 2):
                         * launch none of the rest. */
                        t->failed = true;
                        session_queue_forget(c);
                        conn_session_event(c);
                }
        }
        /* STATUS= counts the workers launched. */
        if (s->n_sessions_running != running)
                server_update_status(s);
        if (!busy)
                session_queue_arm(s, 0);
        return 0;
}

int session_queue_start(Conn *c) {
        Server *s = c->server;
        TestSession *t;
        int r;

        assert(!c->in_starting);
        if (!s->start_source) {
                r = sd_event_add_time(s->event, &s->start_source, CLOCK_MONOTONIC, 0, 1, on_start_batch, s);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_enabled(s->start_source, SD_EVENT_OFF);
                (void) sd_event_source_set_description(s->start_source, "session-start");
        }
        LIST_FOREACH(by_conn, t, c->sessions) {
                assert(t->state == SESSION_REQUESTED);
                t->state = SESSION_QUEUED;
        }
        c->start_next = c->sessions;
        if (c->start_next) {
                LIST_APPEND(starting, s->starting, c);
                c->in_starting = true;
        }
        /* Armed already (a batch due, or a retry behind a busy
         * launcher): it takes this connection in its turn. */
        int enabled = SD_EVENT_OFF;
        (void) sd_event_source_get_enabled(s->start_source, &enabled);
        if (enabled == SD_EVENT_OFF)
                session_queue_arm(s, 0);
        return 0;
}

void session_queue_done(Server *s) {
        while (s->starting)
                session_queue_forget(s->starting);
        s->start_source = sd_event_source_disable_unref(s->start_source);
}

int session_stop(TestSession *t, OwTimestamp stop_time, bool has_next_seqno, uint32_t next_seqno) {
        if (t->state == SESSION_DONE || t->state == SESSION_FINISHED)
                return 0;
        if (!t->endpoint || !endpoint_has_channel(t->endpoint)) {
                session_mark_done(t, true);
                return 0;
        }
        WorkerStop st = { .stop_time = stop_time, .has_next_seqno = has_next_seqno, .next_seqno = next_seqno };
        return endpoint_stop(t->endpoint, &st);
}

int session_finalize(TestSession *t, const OwStopSession *peer_info, OwTimestamp stop_time) {
        int r = 0;

        if (t->state == SESSION_FINISHED)
                return 0;
        if (!t->we_send && t->data.fd >= 0) {
                if (!peer_info || t->failed)
                        r = datastore_mark_incomplete(t);
                else {
                        bool invalid = false;
                        r = datastore_finalize(t, peer_info->next_seqno, peer_info->skip_ranges,
                                               peer_info->n_skip_ranges, stop_time, &invalid);
                        if (r >= 0 && invalid)
                                session_log(t, LOG_WARNING, MSGID_SESSION_FINISHED,
                                            "Session %s is invalid: packets at or beyond the sender's Next Seqno %u "
                                            "arrived (are both clocks synchronised?)",
                                            t->sid_hex, peer_info->next_seqno);
                        else if (r >= 0)
                                session_log(t, LOG_INFO, MSGID_SESSION_FINISHED,
                                            "Session %s data stored: %u records, next seqno %u, %u skip ranges",
                                            t->sid_hex, t->data.n_records, peer_info->next_seqno,
                                            peer_info->n_skip_ranges);
                }
                if (r < 0)
                        session_log(t, LOG_ERR, MSGID_SESSION_FINISHED, "Cannot finalize data of session %s: %s",
                                    t->sid_hex, ow_strerror(r));
        }
        t->state = SESSION_FINISHED;
        return r;
}

void session_abandon(TestSession *t) {
        endpoint_kill(t->endpoint);
        if (t->state != SESSION_FINISHED) {
                if (!t->we_send && t->data.fd >= 0 && !t->ran) {
                        /* It never ran: its file holds a header and nothing
                         * anyone could fetch. */
                        int r = datastore_delete(t);
                        if (r < 0)
                                session_log(t, LOG_ERR, MSGID_DATA_DELETED, "Cannot remove the data file of session %s: %s",
                                            t->sid_hex, strerror(-r));
                        else
                                session_log(t, LOG_INFO, MSGID_DATA_DELETED,
                                            "Session %s abandoned before it ran; its data file is removed",
                                            t->sid_hex);
                } else if (!t->we_send && t->data.fd >= 0) {
                        (void) datastore_mark_incomplete(t);
                        session_log(t, LOG_NOTICE, MSGID_SESSION_FINISHED,
                                    "Session %s abandoned; %u records kept as incomplete", t->sid_hex,
                                    t->data.n_records);
                } else if (t->state != SESSION_REQUESTED && t->state != SESSION_QUEUED)
                        session_log(t, LOG_NOTICE, MSGID_SESSION_FINISHED, "Session %s abandoned", t->sid_hex);
                t->state = SESSION_FINISHED;
        }
}

/* --- maxtestsessions ----------------------------------------------------- */

/* How many sessions the descriptor limit holds next to everything else:
 * the daemon's own and the control connections' (maxcontrolsessions of
 * them when that is set, else half of all descriptors), so that sessions
 * can never take the descriptors accept() needs. */
static unsigned sessions_by_fds(const Server *s, uint64_t *ret_nofile) {
        struct rlimit rl;
        uint64_t nofile = 1024; /* the usual soft limit, if it cannot be read */

        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0)
                nofile = rl.rlim_cur == RLIM_INFINITY ? UINT32_MAX : (uint64_t) rl.rlim_cur;
        *ret_nofile = nofile;
        uint64_t conns = nofile / 2;
        if (s->max_control_sessions > 0)
                conns = MIN(conns, (uint64_t) s->max_control_sessions * CONN_FDS);
        if (nofile <= DAEMON_FDS + conns + SESSION_FDS)
                return 1;
        return (unsigned) MIN((nofile - DAEMON_FDS - conns) / SESSION_FDS, (uint64_t) OW_CONF_MAXTESTSESSIONS_MAX);
}

void session_limit_update(Server *s) {
        uint64_t nofile;
        unsigned by_fds = sessions_by_fds(s, &nofile);
        unsigned want = s->max_test_sessions_conf ? s->max_test_sessions_conf : MAX_TEST_SESSIONS_DEFAULT;
        unsigned old = s->max_test_sessions;

        s->max_test_sessions = MIN(want, by_fds);
        if (s->max_test_sessions < want && s->max_test_sessions_conf)
                log_warning("maxtestsessions %u does not fit in the descriptor limit (RLIMIT_NOFILE %" PRIu64
                            ") next to the control connections; at most %u test sessions at once",
                            want, nofile, s->max_test_sessions);
        else if (s->max_test_sessions < want && old != s->max_test_sessions)
                log_notice("The descriptor limit (RLIMIT_NOFILE %" PRIu64 ") holds %u test sessions next to the "
                           "control connections; at most that many at once (maxtestsessions auto would be %u)",
                           nofile, s->max_test_sessions, want);
        else if (s->max_test_sessions == want && old != 0 && old != s->max_test_sessions)
                log_info("At most %u test sessions at once now (maxtestsessions)", s->max_test_sessions);
        if (old != s->max_test_sessions)
                session_limit_check_room(s);
}

unsigned session_limit_held(Server *s) {
        unsigned workers = s->launcher ? s->launcher->ops->count(s->launcher) : 0;
        /* Released workers still running (a fork launcher's grace period,
         * a unit being stopped) hold a process and, for a moment, more. */
        unsigned lingering = workers > s->n_sessions_running ? workers - s->n_sessions_running : 0;
        return s->n_sessions + lingering;
}

bool session_limit_refuse(Conn *c) {
        Server *s = c->server;
        unsigned held = session_limit_held(s);

        if (held < s->max_test_sessions) {
                /* Released workers are reaped without telling us: their
                 * room shows here. */
                session_limit_check_room(s);
                return false;
        }
        s->n_refused_full++;
        /* As policy.c's refusals: which limit, its value, what is used. */
        char value[32], used[32];
        snprintf(value, sizeof(value), "OWAMP_LIMIT_VALUE=%u", s->max_test_sessions);
        snprintf(used, sizeof(used), "OWAMP_LIMIT_USED=%u", held);
        const char *extra[] = { "OWAMP_LIMIT=maxtestsessions", value, used, NULL };
        LogFields f = {
                .message_id = MSGID_SESSION_REFUSED,
                .peer = c->peer_addr_str,
                .mode = c->mode ? ow_mode_to_string(c->mode) : NULL,
                .keyid = c->keyid[0] ? c->keyid : NULL,
                .extra = extra,
        };
        /* One line for a run of refusals, not one per request: a client
         * that asks for thousands would flood the journal otherwise. */
        if (!s->sessions_full) {
                s->sessions_full = true;
                log_full(LOG_WARNING, 0, &f,
                         "Refusing session from %s: the server holds %u test sessions, maxtestsessions is %u "
                         "(Accept 5); further refusals are counted until there is room again",
                         c->peer_str, held, s->max_test_sessions);
        } else
                log_full(LOG_DEBUG, 0, &f, "Refusing session from %s: maxtestsessions (%u) reached", c->peer_str,
                         s->max_test_sessions);
        return true;
}

/* A session went away (or the bound rose): once there is room again,
 * close the run of refusals with their count. */
static void session_limit_check_room(Server *s) {
        if (!s->sessions_full || session_limit_held(s) >= s->max_test_sessions)
                return;
        log_full(LOG_NOTICE, 0, &(LogFields) { .message_id = MSGID_SESSION_REFUSED },
                 "Room for test sessions again (%u held, maxtestsessions %u); %" PRIu64
                 " Request-Session%s refused at the limit meanwhile",
                 session_limit_held(s), s->max_test_sessions, s->n_refused_full,
                 s->n_refused_full == 1 ? " was" : "s were");
        s->sessions_full = false;
        s->n_refused_full = 0;
}
