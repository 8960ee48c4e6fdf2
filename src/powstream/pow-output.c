/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "journal-send.h"
#include "log.h"
#include "ow-report-json.h"
#include "ow-sid.h"
#include "pow-output.h"
#include "report-io.h"

#define JOURNAL_FIELD_MAX 384

void pow_output_init(PowOutput *out, const PowOutputOptions *o) {
        *out = (PowOutput){ .o = *o };
}

static void report_options(const PowOutput *out, bool json, OwReportOptions *ret) {
        ow_report_options_init(ret);
        ret->machine = !json;
        ret->json = json;
        ret->unix_time = out->o.unix_time;
        ret->bucket_width = out->o.bucket_width;
}

int pow_output_write_file(const char *dir, const char *path, const void *data, size_t len) {
        ReportFiles rf = { .prog = "powstream", .dir = dir && dir[0] ? dir : NULL };
        OwReportFiles hooks = report_files_hooks(&rf);
        OwSink sink;
        int r;

        r = hooks.open(hooks.userdata, &sink);
        if (r < 0)
                return r;
        r = sink.write(sink.userdata, data, len);
        if (r < 0) {
                (void) hooks.close(hooks.userdata, NULL);
                return r;
        }
        return hooks.close(hooks.userdata, path);
}

static void print_path(const PowOutput *out, const char *path) {
        if (!out->o.print_files || !path)
                return;
        fprintf(stdout, "%s\n", path);
        fflush(stdout);
}

static int write_sum(PowOutput *out, const PowResult *res, char **ret_path) {
        _cleanup_free_ char *path = NULL;
        OwReportOptions ro;
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        int r;

        r = ow_substream_file_name(out->o.dir, res->span.start, res->span.end, ".sum", &path);
        if (r < 0)
                return r;
        report_options(out, false, &ro);
        r = ow_report_machine(&sink, res->session, res->stats, &ro);
        if (r >= 0)
                r = pow_output_write_file(out->o.dir, path, b.data, b.len);
        ow_buf_done(&b);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int json_field_path(const OwSink *s, const char *key, const char *path) {
        int r = ow_sink_printf(s, ",\"%s\":", key);
        if (r < 0)
                return r;
        return path ? ow_json_string(s, path) : ow_sink_printf(s, "null");
}

static int print_json(PowOutput *out, const PowResult *res, const char *sum_path) {
        OwReportOptions ro;
        OwBuf doc = {}, line = {};
        OwSink d = ow_buf_sink(&doc), l = ow_buf_sink(&line);
        int r;

        report_options(out, true, &ro);
        r = ow_report_json_begin(&d, res->session);
        if (r >= 0)
                r = ow_report_json_block_begin(&d, true, false);
        if (r >= 0)
                r = ow_report_json_block_end(&d, res->stats, &ro);
        if (r >= 0)
                r = ow_report_json_end(&d);
        if (r >= 0 && doc.len > 0 && doc.data[doc.len - 1] == '\n')
                doc.data[--doc.len] = '\0';

        if (r >= 0)
                r = ow_sink_printf(&l, "{\"schema\":\"%s\",\"version\":%d,\"stream\":", POW_JSON_SCHEMA,
                                   POW_JSON_VERSION);
        if (r >= 0)
                r = ow_json_string(&l, res->stream);
        if (r >= 0)
                r = ow_sink_printf(&l, ",\"direction\":\"%s\",\"kind\":\"%s\"", res->direction,
                                   res->sub ? "sub-session" : "session");
        if (r >= 0)
                r = res->sub ? ow_sink_printf(&l, ",\"subsession\":%" PRIu32 ",\"subsessions\":%" PRIu32,
                                              res->index, res->n_sub)
                             : ow_sink_printf(&l, ",\"subsession\":null,\"subsessions\":%" PRIu32, res->n_sub);
        if (r >= 0)
                r = ow_sink_printf(&l, ",\"start\":");
        if (r >= 0)
                r = ow_json_timestamp(&l, res->span.start);
        if (r >= 0)
                r = ow_sink_printf(&l, ",\"end\":");
        if (r >= 0)
                r = ow_json_timestamp(&l, res->span.end);
        if (r >= 0)
                r = json_field_path(&l, "owp_file", res->owp_path);
        if (r >= 0)
                r = json_field_path(&l, "sum_file", sum_path);
        if (r >= 0)
                r = ow_sink_printf(&l, ",\"report\":%s}\n", doc.data ? doc.data : "null");
        if (r >= 0) {
                fwrite(line.data, 1, line.len, stdout);
                fflush(stdout);
        }
        ow_buf_done(&doc);
        ow_buf_done(&line);
        return r;
}

static void add_field(struct iovec *iov, size_t *n, char (*buf)[JOURNAL_FIELD_MAX], const char *fmt, ...)
        _printf_(4, 5);
static void add_field(struct iovec *iov, size_t *n, char (*buf)[JOURNAL_FIELD_MAX], const char *fmt, ...) {
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(buf[*n], JOURNAL_FIELD_MAX, fmt, ap);
        va_end(ap);
        if (k < 0)
                return;
        if (k >= JOURNAL_FIELD_MAX)
                k = JOURNAL_FIELD_MAX - 1;
        iov[*n] = (struct iovec){ .iov_base = buf[*n], .iov_len = (size_t) k };
        (*n)++;
}

#define MAX_FIELDS 32

static void send_journal(PowOutput *out, struct iovec *iov, size_t n) {
        static bool reported;
        int r = out->o.journal_socket ? journal_sendv_to(out->o.journal_socket, iov, n) : journal_sendv(iov, n);

        /* No journal on this host is normal; anything else is said once. */
        if (r < 0 && r != -ENOENT && r != -ECONNREFUSED && !reported) {
                reported = true;
                log_warning_errno(r, "Cannot send the results to the journal: %s", strerror(-r));
        }
}

static void journal_result(PowOutput *out, const PowResult *res, const char *sum_path) {
        const OwStatsResult *st = ow_stats_result(res->stats);
        char buf[MAX_FIELDS][JOURNAL_FIELD_MAX];
        struct iovec iov[MAX_FIELDS];
        char sid[OW_SID_HEX_SIZE];
        size_t n = 0;
        double v;

        ow_sid_to_hex(&res->session->request->sid, sid);
        uint64_t reordered = st->n_reorder > 0 ? st->reorder[0] : 0;
        add_field(iov, &n, buf, "MESSAGE=stream %s: %s %s [%020" PRIu64 ", %020" PRIu64 "]: %u sent, %u lost, %u duplicates, %" PRIu64 " reordered",
                  res->stream, res->sub ? "sub-session" : "session", sid, res->span.start, res->span.end, st->sent,
                  st->lost, st->dups, reordered);
        add_field(iov, &n, buf, "MESSAGE_ID=%s", MSGID_STREAM_RESULT);
        add_field(iov, &n, buf, "PRIORITY=%d", LOG_INFO);
        add_field(iov, &n, buf, "SYSLOG_IDENTIFIER=powstream");
        add_field(iov, &n, buf, "OWAMP_STREAM=%s", res->stream);
        add_field(iov, &n, buf, "OWAMP_SID=%s", sid);
        add_field(iov, &n, buf, "OWAMP_DIRECTION=%s", res->direction);
        if (res->session->mode)
                add_field(iov, &n, buf, "OWAMP_MODE=%s", res->session->mode);
        add_field(iov, &n, buf, "OWAMP_KIND=%s", res->sub ? "sub-session" : "session");
        if (res->sub)
                add_field(iov, &n, buf, "OWAMP_SUBSESSION=%" PRIu32, res->index);
        add_field(iov, &n, buf, "OWAMP_START_TIME=%020" PRIu64, res->span.start);
        add_field(iov, &n, buf, "OWAMP_END_TIME=%020" PRIu64, res->span.end);
        add_field(iov, &n, buf, "OWAMP_UNIX_START_TIME=%" PRIi64, ow_timestamp_unix_sec(res->span.start));
        add_field(iov, &n, buf, "OWAMP_SENT=%u", st->sent);
        add_field(iov, &n, buf, "OWAMP_LOST=%u", st->lost);
        add_field(iov, &n, buf, "OWAMP_DUPLICATES=%u", st->dups);
        add_field(iov, &n, buf, "OWAMP_REORDERED=%" PRIu64, reordered);
        add_field(iov, &n, buf, "OWAMP_SYNC=%d", st->sync ? 1 : 0);
        add_field(iov, &n, buf, "OWAMP_MAXERR_SEC=%g", st->max_err);
        if (st->min_delay < st->inf_delay)
                add_field(iov, &n, buf, "OWAMP_DELAY_MIN_SEC=%g", st->min_delay);
        if (ow_stats_percentile(res->stats, 0.5, &v))
                add_field(iov, &n, buf, "OWAMP_DELAY_MEDIAN_SEC=%g", v);
        if (st->max_delay > -st->inf_delay)
                add_field(iov, &n, buf, "OWAMP_DELAY_MAX_SEC=%g", st->max_delay);
        if (ow_stats_jitter(res->stats, &v))
                add_field(iov, &n, buf, "OWAMP_JITTER_SEC=%g", v);
        if (sum_path)
                add_field(iov, &n, buf, "OWAMP_SUM_FILE=%s", sum_path);
        if (res->owp_path)
                add_field(iov, &n, buf, "OWAMP_OWP_FILE=%s", res->owp_path);
        send_journal(out, iov, n);
}

int pow_output_publish(PowOutput *out, const PowResult *res) {
        _cleanup_free_ char *sum_path = NULL;
        const OwStatsResult *st = ow_stats_result(res->stats);
        int r;

        if (res->sub)
                out->counters.subsessions++;
        else {
                out->counters.sessions++;
                out->counters.sent += st->sent;
                out->counters.lost += st->lost;
                out->counters.dups += st->dups;
        }

        print_path(out, res->owp_path);
        r = write_sum(out, res, &sum_path);
        if (r >= 0)
                print_path(out, sum_path);
        if (out->o.json && print_json(out, res, sum_path) < 0)
                log_warning("stream %s: cannot print the JSON document", res->stream);
        if (out->o.journal)
                journal_result(out, res, sum_path);
        (void) pow_prom_publish(&out->prom, res);
        return r;
}

void pow_output_failed(PowOutput *out, const char *stream, const char *sid_hex, const char *reason) {
        char buf[8][JOURNAL_FIELD_MAX];
        struct iovec iov[8];
        size_t n = 0;

        out->counters.failed++;
        (void) pow_prom_failed(&out->prom, out->counters.failed);
        if (!out->o.journal)
                return;
        add_field(iov, &n, buf, "MESSAGE=stream %s: session %s failed: %s", stream, sid_hex ? sid_hex : "-",
                  reason);
        add_field(iov, &n, buf, "MESSAGE_ID=%s", MSGID_STREAM_FAILED);
        add_field(iov, &n, buf, "PRIORITY=%d", LOG_WARNING);
        add_field(iov, &n, buf, "SYSLOG_IDENTIFIER=powstream");
        add_field(iov, &n, buf, "OWAMP_STREAM=%s", stream);
        if (sid_hex)
                add_field(iov, &n, buf, "OWAMP_SID=%s", sid_hex);
        add_field(iov, &n, buf, "OWAMP_FAILED_TOTAL=%" PRIu64, out->counters.failed);
        send_journal(out, iov, n);
}
