/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owping's test: Request-Session for each direction, the local endpoints
 * (one worker each, through src/shared/endpoint.h), Start-Sessions, and
 * the Stop-Sessions exchange (RFC 4656 3.8): ours once every endpoint is
 * done, the server's whenever it comes, our endpoints stopped then.
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "owping.h"
#include "ow-crypto.h"
#include "ow-error.h"
#include "ow-sid.h"
#include "ow-testpkt.h"
#include "ow-time.h"
#include "random-util.h"
#include "units.h"
#include "worker-path.h"

/* How long the endpoints may take to be READY: this many turns of the
 * loop of at most READY_POLL_USEC each. */
#define READY_POLLS 3000u
#define READY_POLL_USEC (10 * USEC_PER_MSEC)
/* The guard past the schedule's estimate, in seconds. */
#define GUARD_EXTRA_SEC 120
/* A sender's wait after its last packet without -E. */
#define ENDDELAY_DEFAULT_NSEC NSEC_PER_SEC

static void ping_progress(Ping *p);

/* --- Endpoints ------------------------------------------------------------ */

void ping_endpoint_done(PingEndpoint *e) {
        if (e->endpoint) {
                /* One that reported DONE is on its way out; any other
                 * (we are giving up) must not be waited for. */
                if (!endpoint_is_done(e->endpoint))
                        endpoint_kill(e->endpoint);
                e->endpoint = endpoint_free(e->endpoint);
        }
        safe_close(e->udp_fd);
        free(e->records);
        ow_session_request_done(&e->req);
}

static int add_records(PingEndpoint *e, const uint8_t *data, size_t n) {
        if (n > SIZE_MAX / OW_RECORD_SIZE - e->n_records)
                return -ENOMEM;
        if (e->n_records + n > e->cap_records) {
                size_t cap = MAX(e->cap_records * 2, e->n_records + n);
                cap = MAX(cap, (size_t) 256);
                if (cap > SIZE_MAX / OW_RECORD_SIZE)
                        return -ENOMEM;
                uint8_t *r = realloc(e->records, cap * OW_RECORD_SIZE);
                if (!r)
                        return -ENOMEM;
                e->records = r;
                e->cap_records = cap;
        }
        memcpy(e->records + e->n_records * OW_RECORD_SIZE, data, n * OW_RECORD_SIZE);
        e->n_records += n;
        return 0;
}

static void on_endpoint_records(Endpoint *ep _unused_, const uint8_t *records, size_t n, void *userdata) {
        PingEndpoint *e = userdata;

        if (add_records(e, records, n) < 0)
                e->failed = true;
}

static void on_endpoint_done(Endpoint *ep _unused_, const WorkerDone *result, void *userdata) {
        PingEndpoint *e = userdata;

        if (!result)
                e->failed = true;
        ping_progress(e->ping);
}

static void on_endpoint_failure(Endpoint *ep _unused_, EndpointFailure kind, int error _unused_, const char *reason,
                                void *userdata) {
        PingEndpoint *e = userdata;

        if (kind == ENDPOINT_FAILURE_WORKER)
                fprintf(stderr, "owping: test endpoint failed: %s\n", reason);
        e->failed = true;
        ping_progress(e->ping);
}

static void on_endpoint_exited(Endpoint *ep, int status, void *userdata) {
        PingEndpoint *e = userdata;

        if (status != 0 && !endpoint_is_done(ep))
                fprintf(stderr, "owping: test endpoint ended with status %d\n", status);
        ping_progress(e->ping);
}

static const EndpointCallbacks ping_endpoint_callbacks = {
        .records = on_endpoint_records,
        .done = on_endpoint_done,
        .failure = on_endpoint_failure,
        .exited = on_endpoint_exited,
};

static int ping_endpoint_launch(Ping *p, PingEndpoint *e) {
        Client *c = &p->client;
        OwTestKeys keys = {};
        char hex[OW_SID_HEX_SIZE];
        int r;

        r = endpoint_new(p->event, p->launcher, &ping_endpoint_callbacks, e, &e->endpoint);
        if (r < 0)
                return r;
        if (c->mode != OW_MODE_OPEN)
                ow_testpkt_derive_keys(&e->req.sid, c->keys.aes, c->keys.hmac, &keys);
        EndpointParams params = {
                .sender = e->we_send,
                .mode = c->mode,
                .req = &e->req,
                .peer = &e->peer,
                .keys = &keys,
                .clock_offset_nsec = client_clock_offset_nsec(),
                .enddelay_nsec = p->o->have_enddelay ? (uint64_t) (p->o->enddelay * NSEC_PER_SEC)
                                                     : ENDDELAY_DEFAULT_NSEC,
                .spec = {
                        .sid_hex = ow_sid_to_hex(&e->req.sid, hex),
                        .description = e->we_send ? "owping sender" : "owping receiver",
                        .log_max_priority = LOG_WARNING,
                },
        };
        r = endpoint_launch(e->endpoint, &params, e->udp_fd);
        ow_wipe(&keys, sizeof(keys));
        if (r < 0)
                return r;
        e->udp_fd = safe_close(e->udp_fd);
        return 0;
}

/* Wait (in the event loop) until every endpoint reported READY. */
int ping_wait_ready(Ping *p) {
        for (unsigned spins = 0; spins < READY_POLLS; spins++) {
                bool all = true;
                for (size_t i = 0; i < p->n_ep; i++) {
                        if (p->ep[i].failed)
                                return -EIO;
                        if (!endpoint_is_ready(p->ep[i].endpoint))
                                all = false;
                }
                if (all)
                        return 0;
                int r = sd_event_run(p->event, READY_POLL_USEC);
                if (r < 0)
                        return r;
        }
        return -ETIMEDOUT;
}

static int bind_test_socket(const SockAddr *local, uint16_t low, uint16_t high, const char *interface,
                            SockAddr *ret) {
        SockAddr a = *local;
        uint16_t port;
        sockaddr_set_port(&a, 0);
        int fd = udp_bind_in_range(&a, low, high, &port);
        if (fd < 0)
                return fd;
        if (interface && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, interface, (socklen_t) strlen(interface)) < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        sockaddr_set_port(&a, port);
        *ret = a;
        return fd;
}

double ping_packet_rate(const OwSessionRequest *req) {
        double sum = 0;
        for (uint32_t i = 0; i < req->n_slots; i++)
                sum += (double) req->slots[i].param / (double) OW_TIMESTAMP_FROM_SEC(1);
        return sum > 0 ? req->n_slots / sum : 0;
}

/* --- The test ------------------------------------------------------------- */

static void send_our_stop(Ping *p) {
        OwStopSessions st = { .accept = OW_ACCEPT_OK };
        OwStopSession list[2];
        uint32_t n = 0;

        for (size_t i = 0; i < p->n_ep; i++) {
                PingEndpoint *e = &p->ep[i];
                if (e->failed)
                        st.accept = OW_ACCEPT_FAILURE;
                if (!e->we_send)
                        continue;
                const WorkerDone *d = e->endpoint ? endpoint_result(e->endpoint) : NULL;
                list[n++] = (OwStopSession) {
                        .sid = e->req.sid,
                        .next_seqno = d ? d->next_seqno : 0,
                        .n_skip_ranges = d ? d->n_skips : 0,
                        .skip_ranges = d ? d->skips : NULL,
                };
        }
        st.n_sessions = n;
        st.sessions = list;
        if (client_send_stop(&p->client, &st) < 0) {
                fprintf(stderr, "owping: %s\n", p->client.error);
                p->failed = true;
        }
        p->our_stop_sent = true;
}

static void stop_endpoints(Ping *p) {
        if (p->stopping)
                return;
        p->stopping = true;
        OwTimestamp now = client_now();
        for (size_t i = 0; i < p->n_ep; i++) {
                PingEndpoint *e = &p->ep[i];
                if (!e->endpoint || endpoint_is_done(e->endpoint) || !endpoint_has_channel(e->endpoint))
                        continue;
                WorkerStop ws = { .stop_time = p->server_stop_received ? p->server_stop_time : now };
                for (uint32_t k = 0; p->server_stop_received && k < p->server_stop.n_sessions; k++)
                        if (ow_sid_equal(&p->server_stop.sessions[k].sid, &e->req.sid)) {
                                ws.has_next_seqno = true;
                                ws.next_seqno = p->server_stop.sessions[k].next_seqno;
                        }
                (void) endpoint_stop(e->endpoint, &ws);
        }
}

static void ping_progress(Ping *p) {
        bool all_done = true;
        for (size_t i = 0; i < p->n_ep; i++)
                if (!p->ep[i].endpoint || !endpoint_is_done(p->ep[i].endpoint))
                        all_done = false;
        if (all_done && !p->our_stop_sent)
                send_our_stop(p);
        if ((p->our_stop_sent && p->server_stop_received) || p->failed)
                (void) sd_event_exit(p->event, p->failed ? -EIO : 0);
}

static int on_control_io(sd_event_source *src _unused_, int fd _unused_, uint32_t revents _unused_, void *userdata) {
        Ping *p = userdata;

        int r = client_poll_stop(&p->client, &p->server_stop);
        if (r < 0) {
                fprintf(stderr, "owping: %s\n", p->client.error);
                p->failed = true;
                return sd_event_exit(p->event, -EIO);
        }
        if (r == 0)
                return 0;
        p->server_stop_received = true;
        p->server_stop_time = client_now();
        p->ctl_src = sd_event_source_disable_unref(p->ctl_src);
        if (p->server_stop.accept != OW_ACCEPT_OK) {
                fprintf(stderr, "owping: the server reports failed sessions: %s\n",
                        ow_accept_to_string(p->server_stop.accept));
                p->failed = true;
        }
        /* The server is done first: end our endpoints now (RFC 4656 3.8). */
        stop_endpoints(p);
        ping_progress(p);
        return 0;
}

static int on_signal(sd_event_source *src _unused_, const struct signalfd_siginfo *si _unused_, void *userdata) {
        Ping *p = userdata;

        if (ping_interrupted++ > 0)
                exit(2);
        stop_endpoints(p);
        return 0;
}

static int on_guard(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        Ping *p = userdata;

        fprintf(stderr, "owping: the test ran far past its schedule; giving up\n");
        p->failed = true;
        return sd_event_exit(p->event, -ETIMEDOUT);
}

int ping_loop_setup(Ping *p) {
        int r;

        r = sd_event_new(&p->event);
        if (r < 0)
                return ping_fail("Cannot create the event loop: %s", strerror(-r));
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        (void) sd_event_add_signal(p->event, NULL, SIGINT, on_signal, p);
        (void) sd_event_add_signal(p->event, NULL, SIGTERM, on_signal, p);
        (void) sd_event_add_signal(p->event, NULL, SIGHUP, on_signal, p);
        _cleanup_free_ char *worker = NULL;
        r = worker_path_find(&worker);
        if (r == -ENOMEM)
                return ping_fail("Out of memory");
        if (r < 0)
                return ping_fail("The session worker %s cannot be run (%s): " WORKER_PATH_HINT, worker,
                                 strerror(-r));
        r = launcher_fork_new(p->event, worker, &p->launcher);
        if (r < 0)
                return ping_fail("Cannot set up test endpoints: %s", strerror(-r));
        setenv("OWAMP_LOG_STDERR", "1", 1);
        return 0;
}

int ping_request_sessions(Ping *p, const char *server, OwTimestamp start, double timeout) {
        PingOptions *o = p->o;
        int r;

        /* Requests: "to" first, then "from", as the reference does. */
        for (int dir = 0; dir < 2; dir++) {
                bool send = dir == 0;
                if ((send && !o->to) || (!send && !o->from))
                        continue;
                PingEndpoint *e = &p->ep[p->n_ep];
                *e = (PingEndpoint) { .ping = p, .we_send = send, .udp_fd = -1 };
                p->n_ep++;
                SockAddr local = p->client.local;
                r = bind_test_socket(&local, o->port_low, o->port_high, o->conn.client.interface, &e->local);
                if (r < 0)
                        return ping_fail("Unable to bind a test socket in ports %u-%u: %s", o->port_low,
                                         o->port_high, strerror(-r));
                e->udp_fd = r;

                OwSessionRequest *req = &e->req;
                req->conf_sender = !send;
                req->conf_receiver = send;
                req->n_packets = o->count;
                req->padding_length = o->padding;
                req->start_time = start;
                req->timeout = ow_duration_from_nsec((uint64_t) (timeout * NSEC_PER_SEC));
                req->type_p = o->type_p;
                req->n_slots = o->n_slots;
                req->slots = calloc(o->n_slots, sizeof(OwSlot));
                if (!req->slots)
                        return ping_fail("Out of memory");
                memcpy(req->slots, o->slots, o->n_slots * sizeof(OwSlot));
                uint8_t ipvn, our[16], their[16];
                sockaddr_to_owamp(&e->local, &ipvn, our);
                sockaddr_to_owamp(&p->test_peer, &ipvn, their);
                req->ipvn = ipvn;
                if (send) {
                        memcpy(req->sender_addr, our, 16);
                        req->sender_port = sockaddr_port(&e->local);
                        memcpy(req->receiver_addr, their, 16);
                } else {
                        memcpy(req->sender_addr, their, 16);
                        memcpy(req->receiver_addr, our, 16);
                        req->receiver_port = sockaddr_port(&e->local);
                        uint8_t rnd[OW_SID_RANDOM_SIZE];
                        if (random_bytes(rnd, sizeof(rnd)) < 0 ||
                            ow_sid_make_from_sockaddr(&e->local.sa, sockaddr_len(&e->local), client_now(), rnd,
                                                      &req->sid) < 0)
                                return ping_fail("Cannot make a SID");
                }

                OwAccept accept;
                r = client_request_session(&p->client, req, &accept);
                if (r < 0)
                        return ping_fail("%s", p->client.error);
                if (accept != OW_ACCEPT_OK)
                        return ping_fail("Session %s %s refused by the server: %s", send ? "to" : "from", server,
                                         ow_accept_to_string(accept));
                e->peer = p->test_peer;
                sockaddr_set_port(&e->peer, send ? req->receiver_port : req->sender_port);

                /* Receivers listen before Start-Sessions; senders wait for
                 * START after a positive Start-Ack. */
                r = ping_endpoint_launch(p, e);
                if (r < 0)
                        return ping_fail("Cannot start the test endpoint: %s", strerror(-r));
        }
        return 0;
}

int ping_start_sessions(Ping *p, const char *server _unused_) {
        OwAccept accept;
        int r;

        r = client_start_sessions(&p->client, &accept);
        if (r < 0)
                return ping_fail("%s", p->client.error);
        if (accept != OW_ACCEPT_OK)
                return ping_fail("Start-Sessions refused by the server: %s", ow_accept_to_string(accept));
        for (size_t i = 0; i < p->n_ep; i++)
                if (p->ep[i].we_send)
                        (void) endpoint_start(p->ep[i].endpoint);
        return 0;
}

int ping_run(Ping *p, OwTimestamp start, double timeout) {
        PingOptions *o = p->o;
        int r;

        r = sd_event_add_io(p->event, &p->ctl_src, p->client.fd, EPOLLIN, on_control_io, p);
        if (r < 0)
                return ping_fail("Cannot watch the control connection: %s", strerror(-r));
        double est = (double) ow_duration_to_nsec(start - MIN(start, client_now())) / NSEC_PER_SEC;
        double rate = ping_packet_rate(&p->ep[0].req);
        est += (rate > 0 ? o->count / rate * 1.5 : 0) + timeout + GUARD_EXTRA_SEC;
        uint64_t now_usec;
        sd_event_now(p->event, CLOCK_MONOTONIC, &now_usec);
        (void) sd_event_add_time(p->event, NULL, CLOCK_MONOTONIC, now_usec + (uint64_t) (est * USEC_PER_SEC), 0,
                                 on_guard, p);

        r = sd_event_loop(p->event);
        if (r < 0 || p->failed) {
                if (o->save_from)
                        (void) unlink(o->save_from);
                return ping_fail("Test session(s) Failed...");
        }
        return 0;
}
