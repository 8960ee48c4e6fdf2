/* SPDX-License-Identifier: Apache-2.0 */

/*
 * A stream (stream.h). Sessions are chained: each one starts where the one
 * before is due to end (its last packet's due time), and is requested as
 * soon as the one before has started, on a control connection of its own
 * (a "slot"): OWAMP-Control allows one test per connection at a time, and a
 * session's Stop-Sessions (and, with -t, its fetch) come after the next
 * session began. Slots are made as needed, at most STREAM_MAX_SLOTS, and
 * kept connected between sessions.
 *
 * One session on its slot:
 *
 *   IDLE -Request-Session-> REQUESTING -Accept, endpoint launched->
 *   PREPARING -endpoint READY, Start-Sessions-> STARTING -Start-Ack->
 *   RUNNING (sub-session timers; records appended to a temporary file)
 *   -both Stop-Sessions-> (-t: FETCHING ->) files written, IDLE again
 *
 * Any failure of the connection ends the slot's session (what it received
 * is written as a short file when it ran) and the slot reconnects once -I
 * seconds have passed since its previous attempt.
 *
 * Callbacks of the client and the endpoints never free them: what a
 * callback is done with goes to the stream's graveyard, emptied from a
 * deferred event.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client-async.h"
#include "clock.h"
#include "endpoint.h"
#include "log.h"
#include "macro.h"
#include "net.h"
#include "ow-error.h"
#include "ow-report.h"
#include "ow-schedule.h"
#include "ow-sid.h"
#include "ow-substream.h"
#include "ow-testpkt.h"
#include "owp-writer.h"
#include "random-util.h"
#include "report-io.h"
#include "stream.h"
#include "units.h"

/* Beyond a session's last due time, its loss timeout and the end delay:
 * how long its Stop-Sessions may take before the session is given up. */
#define SESSION_GUARD_USEC (60 * USEC_PER_SEC)
/* A -I of 0 still waits this long between attempts (no busy loop). */
#define RETRY_MIN_USEC (1 * USEC_PER_SEC)
/* -t: a refused fetch of a finished session is asked again this many
 * times, 0.5, 1, 2, 4 and 8 s later. */
#define FETCH_RETRIES 5u
#define FETCH_RETRY_FIRST_USEC (500 * USEC_PER_MSEC)
/* Default end delay of a sender (-E), as the reference's. */
#define ENDDELAY_DEFAULT_NSEC NSEC_PER_SEC

typedef enum SlotState {
        SLOT_DOWN,       /* no connection (a retry may be armed) */
        SLOT_CONNECTING,
        SLOT_IDLE,       /* connected, no session */
        SLOT_REQUESTING, /* Request-Session sent */
        SLOT_PREPARING,  /* accepted; the local endpoint is starting */
        SLOT_STARTING,   /* Start-Sessions sent */
        SLOT_RUNNING,    /* the test is on */
        SLOT_FETCHING,   /* -t: Stop-Sessions crossed, fetching what the peer received */
} SlotState;

typedef struct Slot Slot;

typedef struct Session {
        OwSessionRequest req; /* slots owned */
        char sid_hex[OW_SID_HEX_SIZE];
        OwSpan span;
        OwSpan *subs;
        size_t n_subs, next_sub;
        bool ran; /* Start-Ack accepted */

        int udp_fd;
        SockAddr local, peer;
        Endpoint *ep;
        bool ep_done;
        uint32_t ep_next_seqno;
        OwSkipRange *ep_skips;
        uint32_t ep_n_skips;

        /* What was received so far (receiver), in arrival order; the same
         * goes into the temporary .owp. */
        OwRecord *records;
        size_t n_records, cap_records;
        uint32_t max_seq;
        OwpWriter writer;
        int file_fd;
        char *file_tmp; /* its name, when O_TMPFILE was not available */

        /* Sub-sessions: one statistics object across them, as the
         * reference's (the reordering denominator keeps counting). */
        OwStats *sub_stats;
        uint32_t sub_index;
        sd_event_source *sub_timer;
        sd_event_source *guard_timer;
        sd_event_source *begin_timer;
        sd_event_source *fetch_timer;
        unsigned fetch_attempts;

        bool our_stop_sent, server_stop_received;
        OwStopSessions server_stop;
        OwTimestamp server_stop_time;

        /* -t: the fetched session. */
        OwFetchAck ack;
        OwSessionRequest fetched_req;
        bool have_fetched_req;
        OwSkipRange *fskips;
        uint32_t n_fskips;
        OwRecord *frecords;
        size_t n_frecords, cap_frecords;

        char from[1025], to[1025];
        const char *from_host, *to_host;
} Session;

struct Slot {
        Stream *stream;
        unsigned id;
        ClientAsync *client;
        SlotState state;
        sd_event_source *retry_timer;
        uint64_t last_attempt_usec; /* CLOCK_MONOTONIC */
        bool has_session;
        Session session;
};

struct Stream {
        sd_event *event;
        Launcher *launcher;
        StreamConfig c;
        StreamCallbacks cb;
        void *userdata;
        char *direction;

        Slot slots[STREAM_MAX_SLOTS];
        unsigned n_slots;

        OwSlot schedule_slot;
        bool first_scheduled;
        OwTimestamp chain_end;
        bool want_setup;
        bool stopping, restart;
        bool peer_resolved;
        SockAddr test_peer;

        sd_event_source *kick;
        Endpoint **graveyard;
        size_t n_graveyard;

        uint64_t completed, failed;
        bool warned_busy;

        ClockDebugSteps debug_steps; /* OWAMP_DEBUG_CLOCK_STEPS (tests) */
};

static void slot_fail(Slot *sl, const char *fmt, ...) _printf_(2, 3);
static void session_finish(Slot *sl);
static void stream_schedule(Stream *s);

/* --- Helpers --------------------------------------------------------------- */

static uint64_t now_usec(Stream *s) {
        uint64_t t;
        if (sd_event_now(s->event, CLOCK_MONOTONIC, &t) < 0)
                return 0;
        return t;
}

/* The stream's clock: client_now()'s, stepped by OWAMP_DEBUG_CLOCK_STEPS. */
static int64_t clock_offset_nsec(const Stream *s) {
        return client_clock_offset_nsec() + clock_debug_steps_offset(&s->debug_steps);
}

static OwTimestamp stream_now(const Stream *s) {
        return clock_now(clock_offset_nsec(s));
}

/* CLOCK_MONOTONIC time at which the NTP time `when` (on stream_now()'s
 * clock) comes. */
static uint64_t usec_at(Stream *s, OwTimestamp when) {
        OwTimestamp now = stream_now(s);
        uint64_t base = now_usec(s);
        if (when <= now)
                return base;
        return base + ow_duration_to_usec(when - now);
}

static OwTimestamp seconds(double sec) {
        return ow_duration_from_nsec((uint64_t) (sec * (double) NSEC_PER_SEC));
}

static void bury(Stream *s, Endpoint *e) {
        if (!e)
                return;
        Endpoint **g = realloc(s->graveyard, (s->n_graveyard + 1) * sizeof(Endpoint *));
        if (!g) {
                /* Nowhere to put it: kill it; it is freed with the stream. */
                endpoint_kill(e);
                return;
        }
        s->graveyard = g;
        s->graveyard[s->n_graveyard++] = e;
        (void) sd_event_source_set_enabled(s->kick, SD_EVENT_ONESHOT);
}

/* A file in dir that no one sees until it gets its name: O_TMPFILE where
 * the file system has it, else a hidden name that is removed after. */
static int tmpfile_open(const char *dir, char **ret_tmp) {
        const char *d = dir && dir[0] ? dir : ".";
        int fd = open(d, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
        if (fd >= 0) {
                *ret_tmp = NULL;
                return fd;
        }
        char *tmp;
        if (asprintf(&tmp, "%s/.powstream.XXXXXX", d) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                free(tmp);
                return r;
        }
        (void) fchmod(fd, 0644);
        *ret_tmp = tmp;
        return fd;
}

/* Give the temporary file its name; an existing file of that name is
 * an error (-EEXIST), as the reference's link() makes it. */
static int tmpfile_link(int fd, const char *tmp, const char *path) {
        int r = 0;
        if (tmp) {
                if (link(tmp, path) < 0)
                        r = -errno;
                (void) unlink(tmp);
                return r;
        }
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0)
                return -errno;
        return 0;
}

/* --- Sessions -------------------------------------------------------------- */

static void session_reset(Slot *sl) {
        Stream *s = sl->stream;
        Session *se = &sl->session;

        if (!sl->has_session)
                return;
        if (se->ep) {
                if (!se->ep_done)
                        endpoint_kill(se->ep);
                bury(s, se->ep);
        }
        safe_close(se->udp_fd);
        if (se->writer.fd >= 0)
                (void) owp_writer_close(&se->writer);
        else
                safe_close(se->file_fd);
        if (se->file_tmp)
                (void) unlink(se->file_tmp);
        free(se->file_tmp);
        sd_event_source_disable_unref(se->sub_timer);
        sd_event_source_disable_unref(se->guard_timer);
        sd_event_source_disable_unref(se->fetch_timer);
        if (se->begin_timer) {
                /* Its session is gone before it began: the next one is
                 * wanted all the same. */
                uint64_t at = 0;
                if (sd_event_source_get_time(se->begin_timer, &at) >= 0 &&
                    sd_event_source_get_enabled(se->begin_timer, NULL) > 0)
                        s->want_setup = true;
                sd_event_source_disable_unref(se->begin_timer);
        }
        ow_stats_free(se->sub_stats);
        free(se->subs);
        free(se->records);
        free(se->ep_skips);
        for (uint32_t i = 0; i < se->server_stop.n_sessions; i++)
                free(se->server_stop.sessions[i].skip_ranges);
        free(se->server_stop.sessions);
        ow_session_request_done(&se->req);
        if (se->have_fetched_req)
                ow_session_request_done(&se->fetched_req);
        free(se->fskips);
        free(se->frecords);
        *se = (Session){ .udp_fd = -1, .file_fd = -1, .writer = OWP_WRITER_NULL };
        sl->has_session = false;
}

static void session_failed(Slot *sl, const char *reason) {
        Stream *s = sl->stream;
        const char *sid = sl->has_session && sl->session.sid_hex[0] ? sl->session.sid_hex : NULL;

        s->failed++;
        if (s->cb.failed)
                s->cb.failed(s, sid, reason, s->userdata);
}

/* The (sub-)session result, through the one callback. */
static int publish(Slot *sl, const OwReportSession *rs, const OwStats *st, const OwSpan *span, bool sub,
                   uint32_t index, const char *owp_path) {
        Stream *s = sl->stream;
        PowResult res = {
                .stream = s->c.name,
                .direction = s->direction,
                .sub = sub,
                .index = index,
                .n_sub = (uint32_t) sl->session.n_subs,
                .span = *span,
                .session = rs,
                .stats = st,
                .owp_path = owp_path,
        };
        int r = s->cb.result ? s->cb.result(s, &res, s->userdata) : 0;
        if (r < 0)
                log_error_errno(r, "stream %s: cannot write the summary of %s: %s", s->c.name, sl->session.sid_hex,
                                ow_strerror(r));
        return r;
}

typedef struct ArraySource {
        const OwRecord *records;
} ArraySource;

static int array_get(void *userdata, uint32_t i, OwRecord *ret) {
        *ret = ((ArraySource *) userdata)->records[i];
        return 0;
}

static void session_names(Session *se, const OwSessionRequest *req) {
        report_resolve_names(req, se->from, se->to, sizeof(se->from), &se->from_host, &se->to_host);
}

/* Sub-session k of what is there: the reference's preliminary summary. */
static void publish_sub(Slot *sl, const OwSessionRequest *req, size_t k, const OwRecord *records, size_t n,
                        bool fresh_stats) {
        Stream *s = sl->stream;
        Session *se = &sl->session;
        ArraySource src = { .records = records };
        const OwSpan *sp = &se->subs[k];
        OwReportSession rs = {
                .request = req,
                .finished = false,
                .from_host = se->from_host,
                .to_host = se->to_host,
                .mode = ow_mode_to_string(client_async_info(sl->client) ? client_async_info(sl->client)->mode
                                                                        : OW_MODE_OPEN),
                .records = { .n_records = (uint32_t) n, .get = array_get, .userdata = &src },
        };
        int r;

        if (fresh_stats || !se->sub_stats) {
                se->sub_stats = ow_stats_free(se->sub_stats);
                se->sub_index = 0;
                r = ow_stats_new(req, NULL, 0, s->c.bucket_width, &se->sub_stats);
                if (r < 0) {
                        log_error_errno(r, "stream %s: statistics of %s: %s", s->c.name, se->sid_hex, ow_strerror(r));
                        return;
                }
                ow_stats_keep_delays(se->sub_stats, s->c.keep_delays);
        }
        r = ow_report_parse_block(se->sub_stats, &rs.records, req->n_packets, sp->first, sp->last, 0,
                                  &se->sub_index, NULL, NULL);
        if (r < 0) {
                log_error_errno(r, "stream %s: sub-session %zu of %s: %s", s->c.name, k, se->sid_hex,
                                ow_strerror(r));
                return;
        }
        /* Nothing at all yet and no more coming: the reference writes none. */
        if (ow_stats_result(se->sub_stats)->sent == 0 && se->server_stop_received)
                return;
        (void) publish(sl, &rs, se->sub_stats, sp, true, (uint32_t) k, NULL);
}

static void arm_sub_timer(Slot *sl);

static int on_sub_timer(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        Slot *sl = userdata;
        Session *se = &sl->session;

        if (se->next_sub < se->n_subs) {
                publish_sub(sl, &se->req, se->next_sub, se->records, se->n_records, false);
                se->next_sub++;
        }
        arm_sub_timer(sl);
        return 0;
}

static void arm_sub_timer(Slot *sl) {
        Stream *s = sl->stream;
        Session *se = &sl->session;

        /* -t sub-sessions come from the fetched data, at the end. */
        if (s->c.sender || se->next_sub >= se->n_subs)
                return;
        /* As the reference: the sub-session is over a loss timeout after
         * its last packet was due, plus time for the receiver's I/O. */
        double iotime = MAX(s->c.interval, 1.0) + 2.0;
        OwTimestamp when = se->subs[se->next_sub].last_due + se->req.timeout + seconds(iotime);
        uint64_t at = usec_at(s, when);
        if (se->sub_timer) {
                (void) sd_event_source_set_time(se->sub_timer, at);
                (void) sd_event_source_set_enabled(se->sub_timer, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_add_time(s->event, &se->sub_timer, CLOCK_MONOTONIC, at, 0, on_sub_timer, sl);
}

/* Write the receiver's file: finished (after both Stop-Sessions), or
 * incomplete (the session was cut short); then its summary. */
static void write_received(Slot *sl, bool complete) {
        Stream *s = sl->stream;
        Session *se = &sl->session;
        _cleanup_free_ char *path = NULL;
        OwTimestamp end = se->span.end;
        int r;

        if (se->writer.fd < 0)
                return;
        if (complete) {
                OwpFinish f = {
                        .next_seqno = se->req.n_packets,
                        .clean = true,
                        .stop_time = se->server_stop_time,
                        .timeout = se->req.timeout,
                };
                for (uint32_t i = 0; i < se->server_stop.n_sessions; i++)
                        if (ow_sid_equal(&se->server_stop.sessions[i].sid, &se->req.sid)) {
                                f.next_seqno = MIN(se->server_stop.sessions[i].next_seqno, se->req.n_packets);
                                f.skips = se->server_stop.sessions[i].skip_ranges;
                                f.n_skips = se->server_stop.sessions[i].n_skip_ranges;
                        }
                bool invalid = false;
                r = owp_writer_finalize(&se->writer, &f, &invalid);
                if (r >= 0 && invalid)
                        log_warning("stream %s: session %s: packets past the sender's Next Seqno (clocks?)", s->c.name,
                                    se->sid_hex);
        } else {
                if (se->n_records == 0) {
                        if (s->c.verbose > 1)
                                log_info("stream %s: no data, no file for %s", s->c.name, se->sid_hex);
                        return;
                }
                /* As the reference: a short session ends with its last
                 * packet received. */
                _cleanup_(ow_schedule_freep) OwSchedule *sched = NULL;
                if (ow_schedule_new(&se->req.sid, se->req.slots, se->req.n_slots, se->req.start_time, &sched) >= 0)
                        end = ow_schedule_at(sched, se->max_seq);
                r = owp_writer_mark_incomplete(&se->writer);
        }
        if (r < 0) {
                log_error_errno(r, "stream %s: cannot finish the data file of %s: %s", s->c.name, se->sid_hex,
                                ow_strerror(r));
                return;
        }
        int fd = se->writer.fd;
        r = ow_substream_file_name(s->c.dir, se->span.start, end, ".owp", &path);
        if (r >= 0)
                r = fsync(fd) < 0 ? -errno : 0;
        if (r >= 0)
                r = tmpfile_link(fd, se->file_tmp, path);
        free(se->file_tmp);
        se->file_tmp = NULL;
        (void) owp_writer_close(&se->writer);
        if (r < 0) {
                log_error_errno(r, "stream %s: cannot write %s: %s", s->c.name, path ? path : "its data file",
                                strerror(-r));
                return;
        }

        ReportOwp ro = {};
        r = report_owp_load(&ro, path);
        if (r >= 0)
                r = report_owp_parse(&ro, true);
        if (r >= 0) {
                OwReportSession *rs = &ro.rf.session;
                _cleanup_(ow_stats_freep) OwStats *st = NULL;
                uint32_t index = 0;
                rs->mode = ow_mode_to_string(client_async_info(sl->client) ? client_async_info(sl->client)->mode
                                                                           : OW_MODE_OPEN);
                r = ow_stats_new(rs->request, rs->skips, rs->n_skips, s->c.bucket_width, &st);
                if (r >= 0) {
                        ow_stats_keep_delays(st, s->c.keep_delays);
                        r = ow_report_parse_block(st, &rs->records, rs->request->n_packets, 0, UINT32_MAX, 0, &index,
                                                  NULL, NULL);
                }
                if (r >= 0) {
                        OwSpan span = se->span;
                        span.end = end;
                        (void) publish(sl, rs, st, &span, false, 0, path);
                        s->completed++;
                }
        }
        if (r < 0)
                log_error_errno(r, "stream %s: cannot summarise %s: %s", s->c.name, path, ow_strerror(r));
        report_owp_close(&ro);
}

/* -t: the fetched session into its file, its sub-sessions, its summary. */
static void write_fetched(Slot *sl) {
        Stream *s = sl->stream;
        Session *se = &sl->session;
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ char *tmp = NULL;
        int r;

        if (!se->have_fetched_req)
                return;
        /* The peer's view of the schedule is the one in the file. */
        session_names(se, &se->fetched_req);
        for (size_t k = 0; k < se->n_subs; k++)
                publish_sub(sl, &se->fetched_req, k, se->frecords, se->n_frecords, true);

        OwFetchAck ack = se->ack;
        ack.n_records = (uint32_t) se->n_frecords;
        ack.n_skip_ranges = se->n_fskips;
        r = ow_substream_file_name(s->c.dir, se->span.start, se->span.end, ".owp", &path);
        int fd = r < 0 ? r : tmpfile_open(s->c.dir, &tmp);
        if (fd < 0) {
                log_error_errno(fd, "stream %s: cannot create the data file of %s: %s", s->c.name, se->sid_hex,
                                strerror(-fd));
                return;
        }
        r = owp_write_fetched(fd, &se->fetched_req, &ack, se->fskips, se->frecords);
        if (r >= 0)
                r = fsync(fd) < 0 ? -errno : 0;
        if (r >= 0)
                r = tmpfile_link(fd, tmp, path);
        else if (tmp)
                (void) unlink(tmp);
        safe_close(fd);
        if (r < 0) {
                log_error_errno(r, "stream %s: cannot write %s: %s", s->c.name, path, ow_strerror(r));
                return;
        }

        ArraySource src = { .records = se->frecords };
        OwReportSession rs = {
                .request = &se->fetched_req,
                .skips = se->fskips,
                .n_skips = se->n_fskips,
                .finished = ack.finished == 1,
                .from_host = se->from_host,
                .to_host = se->to_host,
                .mode = ow_mode_to_string(client_async_info(sl->client) ? client_async_info(sl->client)->mode
                                                                        : OW_MODE_OPEN),
                .records = { .n_records = (uint32_t) se->n_frecords, .get = array_get, .userdata = &src },
        };
        _cleanup_(ow_stats_freep) OwStats *st = NULL;
        uint32_t index = 0;
        r = ow_stats_new(rs.request, rs.skips, rs.n_skips, s->c.bucket_width, &st);
        if (r >= 0) {
                ow_stats_keep_delays(st, s->c.keep_delays);
                r = ow_report_parse_block(st, &rs.records, rs.request->n_packets, 0, UINT32_MAX, 0, &index, NULL,
                                          NULL);
        }
        if (r < 0) {
                log_error_errno(r, "stream %s: cannot summarise %s: %s", s->c.name, path, ow_strerror(r));
                return;
        }
        (void) publish(sl, &rs, st, &se->span, false, 0, path);
        s->completed++;
}

static int append_records(OwRecord **a, size_t *n, size_t *cap, const OwRecord *add, size_t k) {
        if (k > SIZE_MAX / sizeof(OwRecord) - *n)
                return -ENOMEM;
        if (*n + k > *cap) {
                size_t c = MAX(MAX(*cap * 2, *n + k), (size_t) 64);
                OwRecord *x = realloc(*a, c * sizeof(OwRecord));
                if (!x)
                        return -ENOMEM;
                *a = x;
                *cap = c;
        }
        memcpy(*a + *n, add, k * sizeof(OwRecord));
        *n += k;
        return 0;
}

static int on_fetch_retry(sd_event_source *src, uint64_t usec, void *userdata);
static void fetch_now(Slot *sl);

static void on_fetch(ClientAsync *c _unused_, int error, OwEvent *ev, void *userdata) {
        Slot *sl = userdata;
        Stream *s = sl->stream;
        Session *se = &sl->session;

        if (sl->state != SLOT_FETCHING)
                return;
        if (error < 0) {
                slot_fail(sl, "fetching %s: %s", se->sid_hex, ow_strerror(error));
                return;
        }
        switch (ev->type) {
        case OW_EVENT_FETCH_ACK:
                if (ev->fetch_ack.accept != OW_ACCEPT_OK && se->fetch_attempts < FETCH_RETRIES) {
                        /* The reference's owampd files a received session
                         * in its catalog a moment after Stop-Sessions, and
                         * refuses a fetch before: ask again, a little later
                         * each time. */
                        uint64_t at = now_usec(s) + (FETCH_RETRY_FIRST_USEC << se->fetch_attempts);
                        se->fetch_attempts++;
                        if (s->c.verbose > 0)
                                log_info("stream %s: fetch of %s refused (%s), asking again", s->c.name, se->sid_hex,
                                         ow_accept_to_string(ev->fetch_ack.accept));
                        (void) sd_event_add_time(s->event, &se->fetch_timer, CLOCK_MONOTONIC, at, 0, on_fetch_retry,
                                                 sl);
                        return;
                }
                if (ev->fetch_ack.accept != OW_ACCEPT_OK) {
                        log_error("stream %s: write_session(): OWPFetchSession(): Server denied request for full "
                                  "session data (%s)",
                                  s->c.name, ow_accept_to_string(ev->fetch_ack.accept));
                        session_failed(sl, "the server denied the fetch of the session's data");
                        session_finish(sl);
                        return;
                }
                se->ack = ev->fetch_ack;
                return;
        case OW_EVENT_FETCH_REQUEST:
                if (se->have_fetched_req)
                        ow_session_request_done(&se->fetched_req);
                se->fetched_req = ev->request;
                ev->request.slots = NULL;
                se->have_fetched_req = true;
                return;
        case OW_EVENT_FETCH_SKIPS:
                free(se->fskips);
                se->fskips = ev->skips.ranges;
                se->n_fskips = ev->skips.n;
                ev->skips.ranges = NULL;
                return;
        case OW_EVENT_FETCH_RECORDS:
                if (append_records(&se->frecords, &se->n_frecords, &se->cap_frecords, ev->records.records,
                                   ev->records.n) < 0)
                        slot_fail(sl, "fetching %s: out of memory", se->sid_hex);
                return;
        case OW_EVENT_FETCH_DONE:
                write_fetched(sl);
                session_finish(sl);
                return;
        default:
                return;
        }
}

static int on_fetch_retry(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        Slot *sl = userdata;
        Session *se = &sl->session;

        se->fetch_timer = sd_event_source_disable_unref(se->fetch_timer);
        if (sl->state != SLOT_FETCHING)
                return 0;
        fetch_now(sl);
        return 0;
}

/* Both Stop-Sessions have crossed: the session is over. */
static void session_complete(Slot *sl) {
        Stream *s = sl->stream;
        Session *se = &sl->session;

        sd_event_source_disable_unref(se->guard_timer);
        se->guard_timer = NULL;
        if (se->server_stop.accept != OW_ACCEPT_OK) {
                log_error("stream %s: the server reports session %s failed (%s)", s->c.name, se->sid_hex,
                          ow_accept_to_string(se->server_stop.accept));
                session_failed(sl, "the server reports the session failed");
                session_finish(sl);
                return;
        }
        if (!s->c.sender) {
                /* Sub-sessions still due come first, as the reference's. */
                for (; se->next_sub < se->n_subs; se->next_sub++)
                        publish_sub(sl, &se->req, se->next_sub, se->records, se->n_records, false);
                write_received(sl, true);
                session_finish(sl);
                return;
        }
        /* The reference's owampd files a session for fetching once its
         * control connection is gone (and refuses a fetch before): as
         * the reference's powstream, fetch on a new connection. */
        sl->state = SLOT_FETCHING;
        client_async_disconnect(sl->client);
        int r = client_async_connect(sl->client);
        if (r < 0)
                slot_fail(sl, "cannot reconnect to fetch %s: %s", se->sid_hex, ow_strerror(r));
}

static void fetch_now(Slot *sl) {
        Session *se = &sl->session;
        OwFetchSession f = { .begin = 0, .end = UINT32_MAX, .sid = se->req.sid };
        int r = client_async_fetch(sl->client, &f, on_fetch, sl);
        if (r < 0)
                slot_fail(sl, "cannot fetch %s: %s", se->sid_hex, ow_strerror(r));
}

static void send_our_stop(Slot *sl) {
        Session *se = &sl->session;
        OwStopSessions st = { .accept = OW_ACCEPT_OK };
        OwStopSession one;

        if (se->our_stop_sent)
                return;
        if (sl->stream->c.sender) {
                one = (OwStopSession){
                        .sid = se->req.sid,
                        .next_seqno = se->ep_done ? se->ep_next_seqno : 0,
                        .n_skip_ranges = se->ep_n_skips,
                        .skip_ranges = se->ep_skips,
                };
                st.n_sessions = 1;
                st.sessions = &one;
                if (!se->ep_done)
                        st.accept = OW_ACCEPT_FAILURE;
        }
        se->our_stop_sent = true;
        int r = client_async_stop_sessions(sl->client, &st);
        if (r < 0)
                slot_fail(sl, "cannot send Stop-Sessions: %s", ow_strerror(r));
}

static void session_progress(Slot *sl) {
        Session *se = &sl->session;

        if (sl->state != SLOT_RUNNING)
                return;
        if (se->ep_done && !se->our_stop_sent) {
                send_our_stop(sl);
                if (sl->state != SLOT_RUNNING)
                        return;
        }
        if (se->our_stop_sent && se->server_stop_received)
                session_complete(sl);
}

/* Slot free again: keep the connection for the next session. */
static void session_finish(Slot *sl) {
        session_reset(sl);
        if (sl->state != SLOT_DOWN && sl->state != SLOT_CONNECTING)
                sl->state = client_async_state(sl->client) == CLIENT_ASYNC_READY ? SLOT_IDLE : SLOT_DOWN;
        stream_schedule(sl->stream);
}

/* --- Local endpoint ------------------------------------------------------------ */

static void on_ep_ready(Endpoint *e _unused_, void *userdata);

/* A buried endpoint (its session reset) still calls back with the slot,
 * which may hold the next session by then: not its business. */
static bool ep_current(const Slot *sl, const Endpoint *e) {
        return sl->has_session && sl->session.ep == e;
}

static void on_ep_records(Endpoint *e, const uint8_t *data, size_t n, void *userdata) {
        Slot *sl = userdata;
        Session *se = &sl->session;
        int r = 0;

        if (!ep_current(sl, e))
                return;

        if (se->writer.fd >= 0)
                r = owp_writer_append(&se->writer, data, n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                OwRecord rec;
                if (ow_record_decode(data + i * OW_RECORD_SIZE, &rec) < 0)
                        continue;
                if (rec.seq >= se->req.n_packets)
                        continue;
                r = append_records(&se->records, &se->n_records, &se->cap_records, &rec, 1);
                if (se->n_records == 1 || rec.seq > se->max_seq)
                        se->max_seq = rec.seq;
        }
        if (r < 0)
                slot_fail(sl, "cannot keep the records of %s: %s", se->sid_hex, ow_strerror(r));
}

static void on_ep_done(Endpoint *e, const WorkerDone *result, void *userdata) {
        Slot *sl = userdata;
        Session *se = &sl->session;

        if (!ep_current(sl, e) || se->ep_done)
                return;
        se->ep_done = true;
        if (result) {
                se->ep_next_seqno = result->next_seqno;
                if (result->n_skips > 0 && !se->ep_skips) {
                        se->ep_skips = calloc(result->n_skips, sizeof(OwSkipRange));
                        if (se->ep_skips) {
                                memcpy(se->ep_skips, result->skips, result->n_skips * sizeof(OwSkipRange));
                                se->ep_n_skips = result->n_skips;
                        }
                }
        }
        if (sl->state == SLOT_PREPARING || sl->state == SLOT_STARTING) {
                slot_fail(sl, "the test endpoint of %s ended before the session began", se->sid_hex);
                return;
        }
        session_progress(sl);
}

static void on_ep_failure(Endpoint *e, EndpointFailure kind _unused_, int error _unused_, const char *reason,
                          void *userdata) {
        Slot *sl = userdata;
        if (!ep_current(sl, e))
                return;
        log_error("stream %s: test endpoint of %s failed: %s", sl->stream->c.name, sl->session.sid_hex, reason);
}

static const EndpointCallbacks endpoint_callbacks = {
        .ready = on_ep_ready,
        .records = on_ep_records,
        .done = on_ep_done,
        .failure = on_ep_failure,
};

static int endpoint_begin(Slot *sl) {
        Stream *s = sl->stream;
        Session *se = &sl->session;
        const ClientAsyncInfo *info = client_async_info(sl->client);
        OwTestKeys keys = {};
        int r;

        r = endpoint_new(s->event, s->launcher, &endpoint_callbacks, sl, &se->ep);
        if (r < 0)
                return r;
        if (info->mode != OW_MODE_OPEN)
                ow_testpkt_derive_keys(&se->req.sid, info->keys.aes, info->keys.hmac, &keys);
        uint64_t duration_usec = ow_duration_to_usec(se->span.end - MIN(se->span.end, stream_now(s)));
        EndpointParams p = {
                .sender = s->c.sender,
                .mode = info->mode,
                .req = &se->req,
                .peer = &se->peer,
                .keys = info->mode != OW_MODE_OPEN ? &keys : NULL,
                .clock_offset_nsec = clock_offset_nsec(s),
                .enddelay_nsec = s->c.have_enddelay ? (uint64_t) (s->c.enddelay * (double) NSEC_PER_SEC)
                                                    : ENDDELAY_DEFAULT_NSEC,
                .spec = {
                        .sid_hex = se->sid_hex,
                        .description = s->c.sender ? "powstream sender" : "powstream receiver",
                        .runtime_max_usec = duration_usec + ow_duration_to_usec(se->req.timeout) +
                                            2 * SESSION_GUARD_USEC,
                        .log_max_priority = s->c.verbose > 1 ? LOG_DEBUG : LOG_WARNING,
                        .sender = s->c.sender,
                },
        };
        r = endpoint_launch(se->ep, &p, se->udp_fd);
        ow_wipe(&keys, sizeof(keys));
        if (r < 0)
                return r;
        se->udp_fd = safe_close(se->udp_fd);
        return 0;
}

static void on_start_ack(ClientAsync *c _unused_, int error, OwEvent *ev, void *userdata);

static void on_ep_ready(Endpoint *e, void *userdata) {
        Slot *sl = userdata;

        if (!ep_current(sl, e) || sl->state != SLOT_PREPARING)
                return;
        sl->state = SLOT_STARTING;
        int r = client_async_start_sessions(sl->client, on_start_ack, sl);
        if (r < 0)
                slot_fail(sl, "cannot send Start-Sessions: %s", ow_strerror(r));
}

static int on_guard(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        Slot *sl = userdata;
        slot_fail(sl, "session %s ran far past its schedule", sl->session.sid_hex);
        return 0;
}

static int on_begin(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        Slot *sl = userdata;
        Stream *s = sl->stream;

        if (!s->stopping) {
                s->want_setup = true;
                stream_schedule(s);
        }
        return 0;
}

static void on_start_ack(ClientAsync *c _unused_, int error, OwEvent *ev, void *userdata) {
        Slot *sl = userdata;
        Stream *s = sl->stream;
        Session *se = &sl->session;

        if (sl->state != SLOT_STARTING)
                return;
        if (error < 0)
                return; /* disconnected() follows */
        if (ev->accept != OW_ACCEPT_OK) {
                slot_fail(sl, "OWPStartSessions: Failed (%s)", ow_accept_to_string(ev->accept));
                return;
        }
        sl->state = SLOT_RUNNING;
        se->ran = true;
        if (s->c.sender) {
                int r = endpoint_start(se->ep);
                if (r < 0) {
                        slot_fail(sl, "cannot start the test endpoint: %s", strerror(-r));
                        return;
                }
        }
        if (s->c.verbose > 1)
                log_info("stream %s: starting session %s [%020" PRIu64 " - %020" PRIu64 "]", s->c.name, se->sid_hex,
                         se->span.start, se->span.end);
        arm_sub_timer(sl);
        uint64_t at = usec_at(s, se->span.end + se->req.timeout) + SESSION_GUARD_USEC +
                      (s->c.have_enddelay ? (uint64_t) (s->c.enddelay * (double) USEC_PER_SEC) : USEC_PER_SEC);
        (void) sd_event_add_time(s->event, &se->guard_timer, CLOCK_MONOTONIC, at, 0, on_guard, sl);

        /* The next session is requested shortly before this one begins,
         * so that it has at least this one's length plus
         * STREAM_MIN_LEAD_SEC to be set up in: a session waits while one
         * runs (and the one before may still be finishing). */
        OwTimestamp lead = seconds(STREAM_MIN_LEAD_SEC);
        OwTimestamp when = se->span.start > lead ? se->span.start - lead : 0;
        (void) sd_event_add_time(s->event, &se->begin_timer, CLOCK_MONOTONIC, usec_at(s, when), 0, on_begin, sl);
}

static int bind_test_socket(Stream *s, const SockAddr *control_local, SockAddr *ret) {
        SockAddr a = *control_local;
        uint16_t port;

        sockaddr_set_port(&a, 0);
        int fd = udp_bind_in_range(&a, s->c.port_low, s->c.port_high, &port);
        if (fd < 0)
                return fd;
        const char *ifname = s->c.client->interface;
        if (ifname && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t) strlen(ifname)) < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        sockaddr_set_port(&a, port);
        *ret = a;
        return fd;
}

static void on_accept(ClientAsync *c _unused_, int error, OwEvent *ev, void *userdata) {
        Slot *sl = userdata;
        Stream *s = sl->stream;
        Session *se = &sl->session;
        int r;

        if (sl->state != SLOT_REQUESTING)
                return;
        if (error < 0)
                return;
        if (ev->accept_session.accept != OW_ACCEPT_OK) {
                slot_fail(sl, "OWPSessionRequest: Failed (%s)", ow_accept_to_string(ev->accept_session.accept));
                return;
        }
        se->peer = s->test_peer;
        sockaddr_set_port(&se->peer, ev->accept_session.port);
        if (s->c.sender) {
                se->req.receiver_port = ev->accept_session.port;
                se->req.sid = ev->accept_session.sid;
                ow_sid_to_hex(&se->req.sid, se->sid_hex);
                /* The schedule is the SID's: its spans only now. */
                bool last = s->chain_end == se->span.end;
                free(se->subs);
                se->subs = NULL;
                r = ow_substream_spans(&se->req, s->c.sub_packets, &se->span, &se->subs, &se->n_subs);
                if (r < 0) {
                        slot_fail(sl, "cannot compute the schedule: %s", ow_strerror(r));
                        return;
                }
                if (last)
                        s->chain_end = se->span.end;
        } else
                se->req.sender_port = ev->accept_session.port;
        session_names(se, &se->req);

        if (!s->c.sender) {
                /* The data file, in -d from the start (no half file is ever
                 * visible: it has no name until it is complete). */
                se->file_fd = tmpfile_open(s->c.dir, &se->file_tmp);
                if (se->file_fd < 0) {
                        r = se->file_fd;
                        log_error_errno(r, "stream %s: cannot create a data file in %s: %s", s->c.name,
                                        s->c.dir ? s->c.dir : ".", strerror(-r));
                        slot_fail(sl, "no data file");
                        return;
                }
                r = owp_writer_start_receiver(&se->writer, se->file_fd, &se->req);
                if (r < 0) {
                        slot_fail(sl, "cannot write the data file: %s", ow_strerror(r));
                        return;
                }
                se->file_fd = -1;
        }
        sl->state = SLOT_PREPARING;
        r = endpoint_begin(sl);
        if (r < 0)
                slot_fail(sl, "cannot start the test endpoint: %s", strerror(-r));
}

static int resolve_test_peer(Stream *s, const ClientAsyncInfo *info) {
        _cleanup_free_ char *node = NULL;
        _cleanup_free_ SockAddr *addrs = NULL;
        uint16_t port;
        size_t n;

        if (s->peer_resolved)
                return 0;
        if (streq(s->c.testaddr, s->c.client->server)) {
                s->test_peer = info->peer;
                s->peer_resolved = true;
                return 0;
        }
        if (net_split_node(s->c.testaddr, 0, &node, &port) < 0 || !node ||
            net_resolve(node, 0, info->peer.sa.sa_family, false, &addrs, &n) < 0 || n == 0)
                return -EADDRNOTAVAIL;
        s->test_peer = addrs[0];
        s->peer_resolved = true;
        return 0;
}

static void slot_setup(Slot *sl) {
        Stream *s = sl->stream;
        Session *se = &sl->session;
        const ClientAsyncInfo *info = client_async_info(sl->client);
        uint8_t ipvn, ours[16], theirs[16];
        int r;

        assert(info);
        assert(!sl->has_session);
        s->want_setup = false;
        sl->has_session = true;
        *se = (Session){ .udp_fd = -1, .file_fd = -1, .writer = OWP_WRITER_NULL };

        r = resolve_test_peer(s, info);
        if (r < 0) {
                slot_fail(sl, "Unable to resolve test address %s", s->c.testaddr);
                return;
        }
        r = bind_test_socket(s, &info->local, &se->local);
        if (r < 0) {
                slot_fail(sl, "Unable to bind a test socket in ports %u-%u: %s", s->c.port_low, s->c.port_high,
                          strerror(-r));
                return;
        }
        se->udp_fd = r;

        /* Start where the chain ends, unless that is too soon. */
        OwTimestamp now = stream_now(s);
        OwTimestamp lead = s->first_scheduled ? seconds(STREAM_MIN_LEAD_SEC)
                                              : seconds(STREAM_SETUP_ESTIMATE_SEC + (double) s->c.delay_start);
        OwTimestamp start = now + lead;
        if (s->first_scheduled && s->chain_end > start)
                start = s->chain_end;

        OwSessionRequest *req = &se->req;
        req->conf_sender = !s->c.sender;
        req->conf_receiver = s->c.sender;
        req->n_packets = s->c.count;
        req->padding_length = s->c.padding;
        req->start_time = start;
        req->timeout = seconds(s->c.loss);
        req->type_p = 0;
        req->n_slots = 1;
        req->slots = calloc(1, sizeof(OwSlot));
        if (!req->slots) {
                slot_fail(sl, "out of memory");
                return;
        }
        req->slots[0] = s->schedule_slot;
        sockaddr_to_owamp(&se->local, &ipvn, ours);
        sockaddr_to_owamp(&s->test_peer, &ipvn, theirs);
        req->ipvn = ipvn;
        if (s->c.sender) {
                memcpy(req->sender_addr, ours, 16);
                req->sender_port = sockaddr_port(&se->local);
                memcpy(req->receiver_addr, theirs, 16);
        } else {
                uint8_t rnd[OW_SID_RANDOM_SIZE];
                memcpy(req->sender_addr, theirs, 16);
                memcpy(req->receiver_addr, ours, 16);
                req->receiver_port = sockaddr_port(&se->local);
                if (random_bytes(rnd, sizeof(rnd)) < 0 ||
                    ow_sid_make_from_sockaddr(&se->local.sa, sockaddr_len(&se->local), now, rnd, &req->sid) < 0) {
                        slot_fail(sl, "cannot make a SID");
                        return;
                }
                ow_sid_to_hex(&req->sid, se->sid_hex);
        }

        /* The spans need the SID, which the server gives with -t: they are
         * computed from a placeholder then, and again once it is known. */
        r = ow_substream_spans(req, s->c.sub_packets, &se->span, &se->subs, &se->n_subs);
        if (r < 0) {
                slot_fail(sl, "cannot compute the schedule: %s", ow_strerror(r));
                return;
        }
        s->first_scheduled = true;
        s->chain_end = se->span.end;

        sl->state = SLOT_REQUESTING;
        r = client_async_request_session(sl->client, req, on_accept, sl);
        if (r < 0)
                slot_fail(sl, "cannot send Request-Session: %s", ow_strerror(r));
}

/* --- Slots ----------------------------------------------------------------- */

static int on_retry(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata);

static void slot_connect(Slot *sl) {
        Stream *s = sl->stream;
        uint64_t now = now_usec(s);
        uint64_t retry = MAX((uint64_t) s->c.retry * USEC_PER_SEC, RETRY_MIN_USEC);

        /* -I: at most one attempt per retry delay. */
        if (sl->last_attempt_usec > 0 && now < sl->last_attempt_usec + retry) {
                uint64_t at = sl->last_attempt_usec + retry;
                if (!sl->retry_timer) {
                        log_info("stream %s: OWPControlOpen(%s): Waiting %.1f seconds before retrying", s->c.name,
                                 s->c.client->server, (double) (at - now) / USEC_PER_SEC);
                        (void) sd_event_add_time(s->event, &sl->retry_timer, CLOCK_MONOTONIC, at, 0, on_retry, sl);
                }
                return;
        }
        sl->last_attempt_usec = now;
        sl->state = SLOT_CONNECTING;
        int r = client_async_connect(sl->client);
        if (r < 0 && sl->state == SLOT_CONNECTING) {
                sl->state = SLOT_DOWN;
                log_error("stream %s: OWPControlOpen(%s): Couldn't open 'control' connection to server: %s",
                          s->c.name, s->c.client->server, ow_strerror(r));
                session_failed(sl, "cannot connect");
                slot_connect(sl); /* arms the retry */
        }
}

static int on_retry(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        Slot *sl = userdata;

        sl->retry_timer = sd_event_source_disable_unref(sl->retry_timer);
        if (sl->stream->stopping || sl->state != SLOT_DOWN)
                return 0;
        slot_connect(sl);
        return 0;
}

/* What a failed session leaves: the short file of one that ran. */
static void session_abort(Slot *sl) {
        Stream *s = sl->stream;
        Session *se = &sl->session;

        if (!sl->has_session)
                return;
        /* The chain continues from this session's start when it never
         * ran and nothing was scheduled after it. */
        if (!se->ran && s->chain_end == se->span.end)
                s->chain_end = se->span.start;
        if (se->ran && !s->c.sender)
                write_received(sl, false);
        session_reset(sl);
}

static void slot_fail(Slot *sl, const char *fmt, ...) {
        Stream *s = sl->stream;
        char reason[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);

        log_error("stream %s: %s", s->c.name, reason);
        if (sl->has_session)
                session_failed(sl, reason);
        session_abort(sl);
        if (sl->state != SLOT_DOWN) {
                /* Down first: the disconnection cancels the waiting
                 * replies, whose callbacks must see the slot down. */
                sl->state = SLOT_DOWN;
                client_async_disconnect(sl->client);
        }
        if (!s->stopping) {
                s->want_setup = true;
                stream_schedule(s);
        }
}

static void on_client_ready(ClientAsync *c _unused_, void *userdata) {
        Slot *sl = userdata;
        if (sl->state == SLOT_FETCHING) {
                fetch_now(sl);
                return;
        }
        sl->state = SLOT_IDLE;
        stream_schedule(sl->stream);
}

static void on_client_stop(ClientAsync *c _unused_, OwStopSessions *st, void *userdata) {
        Slot *sl = userdata;
        Session *se = &sl->session;

        if (!sl->has_session || se->server_stop_received) {
                for (uint32_t i = 0; i < st->n_sessions; i++)
                        free(st->sessions[i].skip_ranges);
                free(st->sessions);
                return;
        }
        se->server_stop = *st;
        se->server_stop_received = true;
        se->server_stop_time = stream_now(sl->stream);
        /* The server is done: our endpoint ends now (RFC 4656 3.8). */
        if (se->ep && !se->ep_done) {
                WorkerStop ws = { .stop_time = se->server_stop_time };
                for (uint32_t i = 0; i < st->n_sessions; i++)
                        if (ow_sid_equal(&st->sessions[i].sid, &se->req.sid)) {
                                ws.has_next_seqno = true;
                                ws.next_seqno = st->sessions[i].next_seqno;
                        }
                if (endpoint_stop(se->ep, &ws) < 0)
                        se->ep_done = true;
        } else if (!se->ep)
                se->ep_done = true;
        if (sl->state != SLOT_RUNNING) {
                slot_fail(sl, "the server stopped session %s before it began", se->sid_hex);
                return;
        }
        session_progress(sl);
}

static void on_client_disconnected(ClientAsync *c _unused_, int error, const char *reason, void *userdata) {
        Slot *sl = userdata;
        Stream *s = sl->stream;

        if (sl->state == SLOT_CONNECTING)
                log_error("stream %s: OWPControlOpen(%s): Couldn't open 'control' connection to server: %s",
                          s->c.name, s->c.client->server, reason ? reason : ow_strerror(error));
        else if (sl->has_session)
                log_error("stream %s: control connection lost during session %s: %s", s->c.name,
                          sl->session.sid_hex, reason ? reason : ow_strerror(error));
        if (sl->has_session)
                session_failed(sl, reason ? reason : "control connection lost");
        else if (sl->state == SLOT_CONNECTING)
                session_failed(sl, reason ? reason : "cannot connect");
        session_abort(sl);
        sl->state = SLOT_DOWN;
        if (!s->stopping) {
                s->want_setup = s->want_setup || true;
                stream_schedule(s);
        }
}

static const ClientAsyncCallbacks client_callbacks = {
        .ready = on_client_ready,
        .stop_sessions = on_client_stop,
        .disconnected = on_client_disconnected,
};

/* --- The stream -------------------------------------------------------------- */

static bool stream_idle(const Stream *s) {
        for (unsigned i = 0; i < s->n_slots; i++)
                if (s->slots[i].has_session || s->slots[i].state == SLOT_CONNECTING)
                        return false;
        return true;
}

static int on_kick(sd_event_source *src _unused_, void *userdata) {
        Stream *s = userdata;

        for (size_t i = 0; i < s->n_graveyard; i++)
                endpoint_free(s->graveyard[i]);
        free(s->graveyard);
        s->graveyard = NULL;
        s->n_graveyard = 0;

        if (s->stopping) {
                if (!stream_idle(s))
                        return 0;
                s->stopping = false;
                if (s->restart) {
                        s->restart = false;
                        s->first_scheduled = false;
                        s->want_setup = true;
                } else {
                        if (s->cb.stopped)
                                s->cb.stopped(s, s->userdata);
                        return 0;
                }
        }
        if (!s->want_setup)
                return 0;

        /* A connected slot without a session takes it. */
        for (unsigned i = 0; i < s->n_slots; i++)
                if (s->slots[i].state == SLOT_IDLE && !s->slots[i].has_session) {
                        slot_setup(&s->slots[i]);
                        return 0;
                }
        /* One on its way, or waiting to retry: it will. */
        for (unsigned i = 0; i < s->n_slots; i++)
                if (s->slots[i].state == SLOT_CONNECTING ||
                    (s->slots[i].state == SLOT_DOWN && s->slots[i].retry_timer))
                        return 0;
        for (unsigned i = 0; i < s->n_slots; i++)
                if (s->slots[i].state == SLOT_DOWN) {
                        slot_connect(&s->slots[i]);
                        return 0;
                }
        if (s->n_slots < STREAM_MAX_SLOTS) {
                Slot *sl = &s->slots[s->n_slots];
                int r = client_async_new(s->event, s->c.client, &client_callbacks, sl, &sl->client);
                if (r < 0) {
                        log_error_errno(r, "stream %s: %s", s->c.name, strerror(-r));
                        return 0;
                }
                s->n_slots++;
                slot_connect(sl);
                return 0;
        }
        if (!s->warned_busy)
                log_warning("stream %s: every control connection is busy; the next session waits", s->c.name);
        s->warned_busy = true;
        return 0;
}

static void stream_schedule(Stream *s) {
        (void) sd_event_source_set_enabled(s->kick, SD_EVENT_ONESHOT);
}

int stream_new(sd_event *event, Launcher *launcher, const StreamConfig *config, const StreamCallbacks *cb,
               void *userdata, Stream **ret) {
        _cleanup_(stream_freep) Stream *s = NULL;
        int r;

        assert(event && launcher && config && cb && ret);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->launcher = launcher;
        s->c = *config;
        s->cb = *cb;
        s->userdata = userdata;
        s->direction = strdup(config->sender ? "to" : "from");
        if (!s->direction)
                return -ENOMEM;
        r = clock_debug_steps_from_env(&s->debug_steps);
        if (r < 0)
                return log_error_errno(r, "Invalid OWAMP_DEBUG_CLOCK_STEPS (AFTER:STEP[,AFTER:STEP...] in seconds "
                                          "expected)");
        s->schedule_slot = (OwSlot){ .type = OW_SLOT_EXPONENTIAL, .param = seconds(config->interval) };
        for (unsigned i = 0; i < STREAM_MAX_SLOTS; i++) {
                s->slots[i] = (Slot){ .stream = s, .id = i, .state = SLOT_DOWN };
                s->slots[i].session = (Session){ .udp_fd = -1, .file_fd = -1, .writer = OWP_WRITER_NULL };
        }
        r = sd_event_add_defer(event, &s->kick, on_kick, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(s->kick, SD_EVENT_OFF);
        *ret = TAKE_PTR(s);
        return 0;
}

Stream *stream_free(Stream *s) {
        if (!s)
                return NULL;
        for (unsigned i = 0; i < s->n_slots; i++) {
                session_reset(&s->slots[i]);
                sd_event_source_disable_unref(s->slots[i].retry_timer);
                client_async_free(s->slots[i].client);
        }
        for (size_t i = 0; i < s->n_graveyard; i++)
                endpoint_free(s->graveyard[i]);
        free(s->graveyard);
        sd_event_source_disable_unref(s->kick);
        sd_event_unref(s->event);
        free(s->direction);
        free(s);
        return NULL;
}

int stream_start(Stream *s) {
        s->want_setup = true;
        stream_schedule(s);
        return 0;
}

void stream_stop(Stream *s, bool restart) {
        s->stopping = true;
        s->restart = restart;
        s->want_setup = false;
        for (unsigned i = 0; i < s->n_slots; i++) {
                Slot *sl = &s->slots[i];
                sl->retry_timer = sd_event_source_disable_unref(sl->retry_timer);
                if (sl->has_session && sl->state == SLOT_RUNNING && client_async_state(sl->client) == CLIENT_ASYNC_READY) {
                        /* Tell the server (the reference sends its
                         * Stop-Sessions too), then keep what came. */
                        /* A receiver's Stop-Sessions lists nothing; a
                         * sender's would need its endpoint's Next Seqno,
                         * which a stop does not wait for: -t closes
                         * without one (the server abandons the session). */
                        Session *se = &sl->session;
                        if (!s->c.sender && !se->our_stop_sent) {
                                OwStopSessions st = { .accept = OW_ACCEPT_OK };
                                se->our_stop_sent = true;
                                (void) client_async_stop_sessions(sl->client, &st);
                        }
                }
                session_abort(sl);
                client_async_disconnect(sl->client);
                sl->state = SLOT_DOWN;
                sl->last_attempt_usec = 0;
        }
        stream_schedule(s);
}

uint64_t stream_sessions_completed(const Stream *s) {
        return s->completed;
}

uint64_t stream_sessions_failed(const Stream *s) {
        return s->failed;
}
