/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "macro.h"
#include "ow-error.h"
#include "ow-schedule.h"
#include "ow-substream.h"

int ow_substream_spans(const OwSessionRequest *req, uint32_t sub_packets, OwSpan *ret_session, OwSpan **ret,
                       size_t *ret_n) {
        _cleanup_(ow_schedule_freep) OwSchedule *sched = NULL;
        _cleanup_free_ OwSpan *spans = NULL;
        size_t n = 0;
        int r;

        if (!req || !ret_session || req->n_packets == 0)
                return -EINVAL;
        if (sub_packets > 0 && (sub_packets > req->n_packets || req->n_packets % sub_packets != 0))
                return -OW_ERR_COUNT;
        r = ow_schedule_new(&req->sid, req->slots, req->n_slots, req->start_time, &sched);
        if (r < 0)
                return r;

        if (sub_packets > 0) {
                n = req->n_packets / sub_packets;
                spans = calloc(n, sizeof(OwSpan));
                if (!spans)
                        return -ENOMEM;
        }

        /* One walk through the schedule: every sub-session's last packet,
         * in order, and the session's last packet at the end. */
        OwTimestamp prev_end = req->start_time, due = req->start_time;
        for (size_t k = 0; k < n; k++) {
                uint32_t last = (uint32_t) (k + 1) * sub_packets;
                due = ow_schedule_at(sched, last - 1);
                spans[k] = (OwSpan){
                        .start = prev_end,
                        .end = due,
                        .last_due = due,
                        .first = (uint32_t) k * sub_packets,
                        .last = last,
                };
                prev_end = due;
        }
        if (n == 0)
                due = ow_schedule_at(sched, req->n_packets - 1);

        *ret_session = (OwSpan){
                .start = req->start_time,
                .end = due,
                .last_due = due,
                .first = 0,
                .last = req->n_packets,
        };
        if (ret)
                *ret = TAKE_PTR(spans);
        if (ret_n)
                *ret_n = n;
        return 0;
}

int ow_substream_file_name(const char *dir, OwTimestamp start, OwTimestamp end, const char *ext, char **ret) {
        bool has_dir = dir && dir[0];
        char *s;

        if (asprintf(&s, "%s%s%020" PRIu64 "_%020" PRIu64 "%s", has_dir ? dir : "", has_dir ? "/" : "", start, end,
                     ext ? ext : "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}
