/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The controller of one local test endpoint (endpoint.h): the worker's
 * channel read and written on the event loop, its messages checked
 * against the state they may come in, what they say handed to the owner.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint.h"
#include "macro.h"
#include "ow-crypto.h"
#include "ow-error.h"

/* Each message on the channel: u32 length, u32 type (worker-ipc.h). */
#define CHANNEL_MSG_HEADER_SIZE 8
#define REASON_SIZE 320

typedef enum EndpointState {
        ENDPOINT_NEW,
        ENDPOINT_STARTING, /* launched, no READY yet */
        ENDPOINT_RUNNING,  /* READY came */
        ENDPOINT_DONE,     /* done() came */
} EndpointState;

struct Endpoint {
        sd_event *event;
        Launcher *launcher;
        EndpointCallbacks cb;
        void *userdata;

        EndpointState state;
        bool ready;
        bool sender;
        bool start_on_ready;
        uint32_t n_packets;

        Worker *worker;
        int ctl_fd;
        sd_event_source *src;
        WorkerBuf in, out;
        bool have_result;
        WorkerDone result;
};

int endpoint_new(sd_event *event, Launcher *launcher, const EndpointCallbacks *cb, void *userdata,
                 Endpoint **ret) {
        assert(event);
        assert(launcher);
        assert(ret);

        Endpoint *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->event = event;
        e->launcher = launcher;
        if (cb)
                e->cb = *cb;
        e->userdata = userdata;
        e->ctl_fd = -1;
        *ret = e;
        return 0;
}

static void out_wipe(WorkerBuf *b) {
        /* The SETUP carries the session's test keys. */
        if (b->data)
                ow_wipe(b->data, b->size);
        worker_buf_done(b);
}

Endpoint *endpoint_free(Endpoint *e) {
        if (!e)
                return NULL;
        if (e->worker)
                e->launcher->ops->release(e->worker);
        sd_event_source_disable_unref(e->src);
        safe_close(e->ctl_fd);
        worker_buf_done(&e->in);
        out_wipe(&e->out);
        free(e->result.skips);
        free(e);
        return NULL;
}

static void endpoint_flush(Endpoint *e) {
        if (e->out.len == 0 || e->ctl_fd < 0)
                return;
        ssize_t n = send(e->ctl_fd, e->out.data, e->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
                worker_buf_consume(&e->out, (size_t) n);
        if (e->src)
                (void) sd_event_source_set_io_events(e->src, EPOLLIN | (e->out.len ? EPOLLOUT : 0));
}

static void endpoint_finish(Endpoint *e, bool with_result) {
        if (e->state == ENDPOINT_DONE)
                return;
        e->state = ENDPOINT_DONE;
        e->have_result = with_result;
        if (e->cb.done)
                e->cb.done(e, with_result ? &e->result : NULL, e->userdata);
}

static void endpoint_failure(Endpoint *e, EndpointFailure kind, int error, const char *reason) {
        if (e->cb.failure)
                e->cb.failure(e, kind, error, reason, e->userdata);
}

static void endpoint_close_channel(Endpoint *e) {
        e->src = sd_event_source_disable_unref(e->src);
        e->ctl_fd = safe_close(e->ctl_fd);
}

/* A message the worker may not send now, or that does not decode: it is
 * broken or hostile, and is stopped. */
static void endpoint_bad_message(Endpoint *e, uint32_t type) {
        char reason[REASON_SIZE];

        snprintf(reason, sizeof(reason), "unexpected message %u from its worker; stopping it", type);
        endpoint_failure(e, ENDPOINT_FAILURE_PROTOCOL, -EBADMSG, reason);
        endpoint_kill(e);
}

static void endpoint_message(Endpoint *e, uint32_t type, const uint8_t *p, size_t len) {
        int r;

        switch (type) {
        case WORKER_MSG_READY:
                if (e->state != ENDPOINT_STARTING)
                        break;
                e->state = ENDPOINT_RUNNING;
                e->ready = true;
                if (e->sender && e->start_on_ready)
                        (void) endpoint_start(e);
                if (e->cb.ready)
                        e->cb.ready(e, e->userdata);
                return;

        case WORKER_MSG_RECORDS:
                if (e->sender || e->state != ENDPOINT_RUNNING)
                        break;
                r = worker_records_count(p, len);
                if (r < 0)
                        break;
                if (e->cb.records)
                        e->cb.records(e, p, (size_t) r, e->userdata);
                return;

        case WORKER_MSG_DONE: {
                WorkerDone d;
                if (e->state != ENDPOINT_RUNNING || worker_done_parse(p, len, &d) < 0)
                        break;
                if (d.next_seqno > e->n_packets) {
                        free(d.skips);
                        break;
                }
                free(e->result.skips);
                e->result = d;
                endpoint_finish(e, true);
                return;
        }

        case WORKER_MSG_ERROR: {
                char text[256], reason[REASON_SIZE];
                int err;
                if (worker_error_parse(p, len, &err, text, sizeof(text)) < 0)
                        break;
                snprintf(reason, sizeof(reason), "%s: %s", text, ow_strerror(err));
                endpoint_failure(e, ENDPOINT_FAILURE_WORKER, err, reason);
                return;
        }
        }
        endpoint_bad_message(e, type);
}

static int on_endpoint_io(sd_event_source *src _unused_, int fd _unused_, uint32_t revents, void *userdata) {
        Endpoint *e = userdata;

        if (revents & EPOLLOUT)
                endpoint_flush(e);
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;

        int r = worker_read_some(e->ctl_fd, &e->in);
        if (r == -EAGAIN)
                return 0;
        bool eof = r <= 0;
        for (;;) {
                uint32_t type;
                const uint8_t *p;
                size_t len;
                r = worker_msg_peek(&e->in, &type, &p, &len);
                if (r < 0) {
                        endpoint_failure(e, ENDPOINT_FAILURE_GARBAGE, r, "garbage from its worker");
                        eof = true;
                        break;
                }
                if (r == 0)
                        break;
                endpoint_message(e, type, p, len);
                worker_buf_consume(&e->in, CHANNEL_MSG_HEADER_SIZE + len);
                if (e->state == ENDPOINT_DONE)
                        break;
        }
        if (eof) {
                endpoint_close_channel(e);
                endpoint_finish(e, false);
        }
        return 0;
}

static void on_worker_exit(Worker *w _unused_, int status, void *userdata) {
        Endpoint *e = userdata;

        e->launcher->ops->release(e->worker);
        e->worker = NULL;
        if (e->cb.exited)
                e->cb.exited(e, status, e->userdata);
        /* Messages it wrote before exiting are still in the socket; the
         * EOF there ends the endpoint. Without a channel, it ends here. */
        if (e->ctl_fd < 0)
                endpoint_finish(e, false);
}

int endpoint_launch(Endpoint *e, const EndpointParams *p, int udp_fd) {
        WorkerSetup setup;
        int sv[2], r;

        assert(e);
        assert(p);
        assert(p->req);
        assert(p->peer);
        if (e->state != ENDPOINT_NEW)
                return -EALREADY;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        worker_setup_init(&setup, p->sender ? WORKER_ROLE_SENDER : WORKER_ROLE_RECEIVER, p->mode, p->req, p->peer,
                          p->keys);
        setup.clock_offset_nsec = p->clock_offset_nsec;
        setup.enddelay_nsec = p->enddelay_nsec;
        r = worker_setup_append(&e->out, &setup);
        ow_wipe(&setup, sizeof(setup));
        if (r < 0)
                goto fail;

        r = sd_event_add_io(e->event, &e->src, sv[0], EPOLLIN | EPOLLOUT, on_endpoint_io, e);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(e->src, "session-worker-channel");

        r = launcher_start(e->launcher, &p->spec, udp_fd, sv[1], on_worker_exit, e, &e->worker);
        if (r < 0) {
                e->src = sd_event_source_disable_unref(e->src);
                goto fail;
        }
        safe_close(sv[1]);
        e->ctl_fd = sv[0];
        e->sender = p->sender;
        e->start_on_ready = p->start_on_ready;
        e->n_packets = p->req->n_packets;
        e->state = ENDPOINT_STARTING;
        endpoint_flush(e);
        return 0;

fail:
        /* As it was, so that it can be tried again (-EBUSY). */
        safe_close(sv[0]);
        safe_close(sv[1]);
        out_wipe(&e->out);
        return r;
}

int endpoint_start(Endpoint *e) {
        if (e->ctl_fd < 0)
                return -ENOTCONN;
        int r = worker_msg_append(&e->out, WORKER_MSG_START, NULL, 0);
        if (r < 0)
                return r;
        endpoint_flush(e);
        return 0;
}

int endpoint_stop(Endpoint *e, const WorkerStop *st) {
        if (e->ctl_fd < 0)
                return -ENOTCONN;
        int r = worker_stop_append(&e->out, st);
        if (r < 0)
                return r;
        endpoint_flush(e);
        return 0;
}

void endpoint_kill(Endpoint *e) {
        if (e && e->worker)
                e->launcher->ops->kill(e->worker);
}

bool endpoint_is_ready(const Endpoint *e) {
        return e->ready;
}

bool endpoint_is_done(const Endpoint *e) {
        return e->state == ENDPOINT_DONE;
}

bool endpoint_has_worker(const Endpoint *e) {
        return e->worker;
}

bool endpoint_has_channel(const Endpoint *e) {
        return e->ctl_fd >= 0;
}

const WorkerDone *endpoint_result(const Endpoint *e) {
        return e->have_result ? &e->result : NULL;
}
