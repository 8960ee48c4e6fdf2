/* SPDX-License-Identifier: Apache-2.0 */

/*
 * A whole-session Fetch-Session (Begin 0, End 0xFFFFFFFF) of a session that
 * is still running on another connection waits for it to finish, as
 * perfSONAR's owampd does: it looks again 1, 2, 4, 8 and 16 s apart and,
 * when the session is still running at the last look (about 31 s after the
 * request), refuses with Accept 1 (PROTOCOL.md 5.7; docs/notes/
 * reference-fetch.md). powstream depends on it: it fetches every session on
 * a new connection while the receiving end is still settling it.
 *
 * The wait is a timer of its own, never a sleep: the event loop serves
 * everything else meanwhile. The connection owns its FetchWait and frees
 * it (told through a callback when the wait is over); while one exists it reads no further command (the reference
 * blocks in the fetch) and its control timeout is off. A session that ends
 * makes every waiting fetch look again at once, not at its next scheduled
 * look, so the answer follows the session's end by one loop iteration.
 */

#include <errno.h>
#include <stdlib.h>

#include "clock.h"
#include "datastore.h"
#include "fetch-wait.h"
#include "session.h"
#include "units.h"

/* The reference's schedule: looks after 1, 2, 4, 8 and 16 s. */
#define FETCH_WAIT_LOOKS 5
#define FETCH_WAIT_FIRST_USEC USEC_PER_SEC
#define FETCH_WAIT_ACCURACY_USEC (10 * USEC_PER_MSEC) /* sd-event would coalesce by 250 ms */

struct FetchWait {
        Server *server;
        FetchWaitOverFn over;
        void *userdata;
        OwFetchSession req;
        sd_event_source *timer;
        unsigned looks;      /* scheduled looks done */
        uint64_t first_usec; /* the first interval; each next one doubles */
        uint64_t start_usec; /* CLOCK_MONOTONIC of the request */
        uint64_t next_usec;  /* CLOCK_MONOTONIC of the next scheduled look */
};

int fetch_wait_interval_from_env(uint64_t *ret_usec) {
        return server_env_seconds_usec("OWAMP_DEBUG_FETCH_WAIT", 0.001, 60, FETCH_WAIT_FIRST_USEC, ret_usec);
}

uint64_t fetch_wait_total_usec(uint64_t first_usec) {
        return first_usec * ((UINT64_C(1) << FETCH_WAIT_LOOKS) - 1);
}

/* The session is still being received: its data may still change. */
bool fetch_must_wait(Server *s, const OwFetchSession *f) {
        if (f->begin != 0 || f->end != UINT32_MAX || !datastore_find(s, &f->sid))
                return false;
        TestSession *live = server_find_session(s, &f->sid);
        return live && live->state != SESSION_FINISHED;
}

static int fetch_wait_arm(FetchWait *w, uint64_t usec) {
        int r = sd_event_source_set_time(w->timer, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

static int on_fetch_wait_timer(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        FetchWait *w = userdata;
        uint64_t now = server_monotonic_usec(w->server);
        int r;

        if (now >= w->next_usec) {
                w->looks++;
                w->next_usec += w->first_usec << w->looks;
        }
        if (w->looks >= FETCH_WAIT_LOOKS || !fetch_must_wait(w->server, &w->req)) {
                w->over(w->userdata); /* frees w */
                return 0;
        }
        r = fetch_wait_arm(w, w->next_usec);
        if (r < 0)
                w->over(w->userdata); /* answer now rather than never */
        return 0;
}

int fetch_wait_new(Server *s, const OwFetchSession *req, FetchWaitOverFn over, void *userdata, FetchWait **ret) {
        int r;

        FetchWait *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (FetchWait){
                .server = s,
                .over = over,
                .userdata = userdata,
                .req = *req,
                .first_usec = s->fetch_wait_usec ? s->fetch_wait_usec : FETCH_WAIT_FIRST_USEC,
                .start_usec = server_monotonic_usec(s),
        };
        w->next_usec = w->start_usec + w->first_usec;
        r = sd_event_add_time(s->event, &w->timer, CLOCK_MONOTONIC, w->next_usec, FETCH_WAIT_ACCURACY_USEC,
                              on_fetch_wait_timer, w);
        if (r < 0) {
                free(w);
                return r;
        }
        (void) sd_event_source_set_description(w->timer, "fetch-wait");
        *ret = w;
        return 0;
}

FetchWait *fetch_wait_free(FetchWait *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->timer);
        free(w);
        return NULL;
}

const OwFetchSession *fetch_wait_request(const FetchWait *w) {
        return &w->req;
}

uint64_t fetch_wait_elapsed_usec(const FetchWait *w) {
        uint64_t now = server_monotonic_usec(w->server);
        return now > w->start_usec ? now - w->start_usec : 0;
}

void fetch_wait_kick(FetchWait *w) {
        (void) fetch_wait_arm(w, server_monotonic_usec(w->server));
}
