/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owping's results: the "to" session fetched from the server, the "from"
 * session's records cleaned as its Stop-Sessions says, each saved (-T, -F:
 * src/shared/owp-writer.h) and reported in the reference's formats.
 */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "owping.h"
#include "ow-error.h"
#include "ow-owp.h"
#include "ow-sid.h"
#include "owp-writer.h"
#include "report-io.h"

/* Both files as the reference's fopen(path, "w") makes them. */
#define SAVE_OPEN_FLAGS (O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)
#define SAVE_MODE 0666

void ping_clean_from(Ping *p, PingEndpoint *e, bool *ret_invalid) {
        const WorkerDone *d = e->endpoint ? endpoint_result(e->endpoint) : NULL;
        uint32_t next_seqno = e->req.n_packets;

        e->skips = d ? d->skips : NULL;
        e->n_skips = d ? d->n_skips : 0;
        for (uint32_t k = 0; p->server_stop_received && k < p->server_stop.n_sessions; k++)
                if (ow_sid_equal(&p->server_stop.sessions[k].sid, &e->req.sid)) {
                        next_seqno = p->server_stop.sessions[k].next_seqno;
                        e->skips = p->server_stop.sessions[k].skip_ranges;
                        e->n_skips = p->server_stop.sessions[k].n_skip_ranges;
                }
        e->next_seqno = next_seqno;

        uint32_t kept = 0;
        int r = ow_owp_records_clean(e->records, (uint32_t) MIN(e->n_records, (size_t) UINT32_MAX), next_seqno,
                                     p->server_stop_time, e->req.timeout, &kept);
        *ret_invalid = r > 0;
        if (r == 0)
                e->n_records = kept;
}

/* -F: what a receiver writes, octet for octet (PROTOCOL.md 11), from
 * the records cleaned already. */
int ping_save_received(const char *path, const PingEndpoint *e) {
        OwpWriter w = OWP_WRITER_NULL;
        bool invalid;
        int fd, r;

        fd = open(path, SAVE_OPEN_FLAGS, SAVE_MODE);
        if (fd < 0)
                return -errno;
        r = owp_writer_start_receiver(&w, fd, &e->req);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        r = owp_writer_append(&w, e->records, e->n_records);
        if (r >= 0) {
                OwpFinish f = { .next_seqno = e->next_seqno, .skips = e->skips, .n_skips = e->n_skips };
                r = owp_writer_finalize(&w, &f, &invalid);
        }
        int k = owp_writer_close(&w);
        return r < 0 ? r : k;
}

/* -T: what a fetch client writes (skip ranges first). */
int ping_save_fetched(const char *path, const ClientFetch *f) {
        int fd = open(path, SAVE_OPEN_FLAGS, SAVE_MODE);
        if (fd < 0)
                return -errno;
        int r = owp_write_fetched(fd, &f->req, &f->ack, f->skips, f->records);
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        return r;
}

/* Records for the report: decoded ones (a fetch), or encoded ones (what
 * our receiver kept). */
typedef struct RecordSource {
        const OwRecord *records;
        const uint8_t *encoded;
} RecordSource;

static int source_get(void *userdata, uint32_t i, OwRecord *ret) {
        const RecordSource *src = userdata;

        if (src->records) {
                *ret = src->records[i];
                return 0;
        }
        return ow_record_decode(src->encoded + (size_t) i * OW_RECORD_SIZE, ret);
}

static int report(const PingOptions *o, const OwSessionRequest *req, const OwSkipRange *skips, size_t n_skips,
                  const RecordSource *src, uint32_t n_records, const char *from, const char *to, OwMode mode) {
        int r;
        OwReportSession s = {
                .request = req,
                .skips = skips,
                .n_skips = n_skips,
                .finished = true,
                .from_host = from,
                .to_host = to,
                .mode = ow_mode_to_string(mode),
                .records = { .n_records = n_records, .get = source_get, .userdata = (void *) src },
        };
        OwSink out = report_stdout_sink();
        ReportFiles hooks = { .prog = "owping", .dir = o->report.save_dir };
        OwReportFiles files = report_files_hooks(&hooks);
        r = ow_report_session(&s, &o->report, &out, &files);
        fflush(stdout);
        return r;
}

/* The name the reference prints for our end: the reverse lookup of the
 * control connection's local address. */
static void local_name(const SockAddr *a, char *buf, size_t size) {
        if (getnameinfo(&a->sa, sockaddr_len(a), buf, (socklen_t) size, NULL, 0, 0) != 0)
                sockaddr_addr_str(a, buf, size);
}

int ping_results(Ping *p) {
        const PingOptions *o = p->o;
        char local[NI_MAXHOST];
        int status = EXIT_SUCCESS, r;

        local_name(&p->client.local, local, sizeof(local));
        bool want_output = !o->report.quiet || o->report.raw;

        for (size_t i = 0; i < p->n_ep; i++) {
                PingEndpoint *e = &p->ep[i];
                if (!e->we_send)
                        continue;
                char hex[OW_SID_HEX_SIZE];
                ow_sid_to_hex(&e->req.sid, hex);
                if (!o->save_to && !want_output)
                        continue;
                ClientFetch f;
                r = client_fetch(&p->client, 0, UINT32_MAX, &e->req.sid, &f);
                if (r < 0 || f.ack.accept != OW_ACCEPT_OK || f.ack.n_records == 0) {
                        if (r < 0)
                                fprintf(stderr, "owping: %s\n", p->client.error);
                        else
                                fprintf(stderr, "owping: Server denied request for to session data - is your clock "
                                                "synchronized via NTP properly?\n");
                        fprintf(stderr, "owping: Unable to fetch data for sid(%s)\n", hex);
                        client_fetch_done(&f);
                        status = EXIT_FAILURE;
                        continue;
                }
                if (o->save_to && (r = ping_save_fetched(o->save_to, &f)) < 0) {
                        fprintf(stderr, "owping: cannot write %s: %s\n", o->save_to, ow_strerror(r));
                        status = EXIT_FAILURE;
                }
                RecordSource src = { .records = f.records };
                if (want_output && report(o, &f.req, f.skips, f.ack.n_skip_ranges, &src, f.ack.n_records, local,
                                          p->testaddr, p->client.mode) < 0) {
                        fprintf(stderr, "owping: do_stats(\"to\" session)\n");
                        status = EXIT_FAILURE;
                }
                client_fetch_done(&f);
        }
        for (size_t i = 0; i < p->n_ep; i++) {
                PingEndpoint *e = &p->ep[i];
                if (e->we_send)
                        continue;
                bool invalid;
                ping_clean_from(p, e, &invalid);
                if (invalid) {
                        fprintf(stderr, "owping: the \"from\" session is invalid (packets past the server's Next Seqno) - "
                                        "is your clock synchronized via NTP properly?\n");
                        status = EXIT_FAILURE;
                        continue;
                }
                if (o->save_from && (r = ping_save_received(o->save_from, e)) < 0) {
                        fprintf(stderr, "owping: cannot write %s: %s\n", o->save_from, ow_strerror(r));
                        status = EXIT_FAILURE;
                }
                RecordSource src = { .encoded = e->records };
                if (want_output && report(o, &e->req, e->skips, e->n_skips, &src, (uint32_t) e->n_records,
                                          p->testaddr, local, p->client.mode) < 0) {
                        fprintf(stderr, "owping: do_stats(\"from\" session)\n");
                        status = EXIT_FAILURE;
                }
        }
        return status;
}
