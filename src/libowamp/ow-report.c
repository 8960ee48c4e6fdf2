/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ow-error.h"
#include "ow-report-json.h"
#include "ow-report.h"
#include "ow-twreport.h"

/* 1900 -> 1970 in seconds, as a double: what the reference subtracts for
 * -U ("epochdiff"). */
#define UNIX_EPOCH_DIFF ((double) OW_NTP_UNIX_OFFSET_SEC)

int ow_buf_write(void *userdata, const char *data, size_t len) {
        OwBuf *b = userdata;

        if (len > SIZE_MAX - b->len - 1)
                return -ENOMEM;
        if (b->len + len + 1 > b->allocated) {
                size_t n = MAX(b->allocated * 2, (size_t) 256);
                n = MAX(n, b->len + len + 1);
                char *p = realloc(b->data, n);
                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->allocated = n;
        }
        memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = '\0';
        return 0;
}

void ow_buf_done(OwBuf *b) {
        free(b->data);
        *b = (OwBuf){};
}

_printf_(2, 0) static int sink_vprintf(const OwSink *sink, const char *fmt, va_list ap) {
        char stack[512];
        va_list aq;
        int n, r;

        va_copy(aq, ap);
        n = vsnprintf(stack, sizeof(stack), fmt, aq);
        va_end(aq);
        if (n < 0)
                return -EINVAL;
        if ((size_t) n < sizeof(stack))
                return sink->write(sink->userdata, stack, (size_t) n);

        char *heap = malloc((size_t) n + 1);
        if (!heap)
                return -ENOMEM;
        (void) vsnprintf(heap, (size_t) n + 1, fmt, ap);
        r = sink->write(sink->userdata, heap, (size_t) n);
        free(heap);
        return r;
}

int ow_sink_printf(const OwSink *sink, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = sink_vprintf(sink, fmt, ap);
        va_end(ap);
        return r;
}

/* A printer that remembers its first failure, so a report is a straight
 * sequence of pr() calls. */
typedef struct Printer {
        const OwSink *sink;
        int r;
} Printer;

_printf_(2, 3) static void pr(Printer *p, const char *fmt, ...) {
        va_list ap;

        if (p->r < 0)
                return;
        va_start(ap, fmt);
        p->r = sink_vprintf(p->sink, fmt, ap);
        va_end(ap);
}

void ow_report_options_init(OwReportOptions *o) {
        *o = (OwReportOptions){
                .units = 'm',
                .bucket_width = 0.0001f,
        };
}

size_t ow_report_options_reconcile(OwReportOptions *o, const char *warnings[OW_REPORT_MAX_WARNINGS]) {
        size_t n = 0;

        if (o->raw)
                o->quiet = true;
        if (o->records && o->quiet) {
                warnings[n++] = "Ignoring '-v', '-Q' set";
                o->records = false;
        }
        if (o->machine && o->quiet) {
                warnings[n++] = "Ignoring '-M', '-Q' set";
                o->machine = false;
        }
        /* --json is ours; it takes the place of -M in the same pattern,
         * before -M gets the chance to drop -v. */
        if (o->json && o->quiet) {
                warnings[n++] = "Ignoring '--json', '-Q' set";
                o->json = false;
        }
        if (o->json && o->machine) {
                warnings[n++] = "Ignoring '-M', '--json' set";
                o->machine = false;
        }
        if (o->json && o->print_files) {
                warnings[n++] = "Ignoring '-p', '--json' set";
                o->print_files = false;
        }
        if (o->records && o->machine) {
                warnings[n++] = "Ignoring '-v', '-M' set";
                o->records = false;
        }
        return n;
}

int ow_report_units(char unit, double *ret_factor, const char **ret_label) {
        double f;
        const char *l;

        switch (tolower((unsigned char) unit)) {
        case 'n':
                f = 1e9;
                l = "ns";
                break;
        case 'u':
                f = 1e6;
                l = "us";
                break;
        case 'm':
                f = 1e3;
                l = "ms";
                break;
        case 's':
                f = 1.0;
                l = "";
                break;
        default:
                return -EINVAL;
        }
        if (ret_factor)
                *ret_factor = f;
        if (ret_label)
                *ret_label = l;
        return 0;
}

int ow_report_parse_percentiles(const char *s, float **ret, size_t *ret_n) {
        size_t n = 1, i = 0;
        const char *p, *end;

        if (!s || !ret || !ret_n)
                return -EINVAL;
        for (p = s; (p = strchr(p, ',')); p++)
                n++;

        _cleanup_free_ float *a = calloc(n, sizeof(float));
        if (!a)
                return -ENOMEM;

        /* Items are split like strtok() does, so an empty item leaves one
         * value short and fails; trailing junk after a number is accepted,
         * as strtod() leaves it. */
        for (p = s; *p; p = end) {
                char *num_end;
                double v;

                while (*p == ',')
                        p++;
                if (!*p)
                        break;
                end = strchrnul(p, ',');
                if (i >= n)
                        return -EINVAL;

                _cleanup_free_ char *item = strndup(p, (size_t) (end - p));
                if (!item)
                        return -ENOMEM;
                v = strtod(item, &num_end);
                if (num_end == item || v < 0.0 || v > 100.0)
                        return -EINVAL;
                a[i++] = (float) v;
        }
        if (i != n)
                return -EINVAL;

        *ret = TAKE_PTR(a);
        *ret_n = n;
        return 0;
}

static const char *address_string(const OwSessionRequest *req, const uint8_t addr[OW_ADDR_SIZE], char *buf,
                                  size_t size) {
        int af = req->ipvn == 6 ? AF_INET6 : req->ipvn == 4 ? AF_INET : AF_UNSPEC;

        if (af == AF_UNSPEC || !inet_ntop(af, addr, buf, (socklen_t) size))
                return "***"; /* what the reference prints when it cannot convert */
        return buf;
}

typedef struct Names {
        char from_addr[INET6_ADDRSTRLEN], to_addr[INET6_ADDRSTRLEN];
        const char *from_numeric, *to_numeric;
        const char *from_host, *to_host;
} Names;

static void names_get(const OwReportSession *s, Names *n) {
        n->from_numeric =
                address_string(s->request, s->request->sender_addr, n->from_addr, sizeof(n->from_addr));
        n->to_numeric =
                address_string(s->request, s->request->receiver_addr, n->to_addr, sizeof(n->to_addr));
        n->from_host = s->from_host ? s->from_host : n->from_numeric;
        n->to_host = s->to_host ? s->to_host : n->to_numeric;
}

static void sid_hex(const OwSid *sid, char out[OW_SID_SIZE * 2 + 1]) {
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < OW_SID_SIZE; i++) {
                out[2 * i] = hex[sid->bytes[i] >> 4];
                out[2 * i + 1] = hex[sid->bytes[i] & 0xf];
        }
        out[OW_SID_SIZE * 2] = '\0';
}

int ow_report_raw_record(const OwSink *out, const OwRecord *r) {
        return ow_sink_printf(out, "%lu %020" PRIu64 " %u %g %020" PRIu64 " %u %g %u\n",
                              (unsigned long) r->seq, r->send_time, ow_errest_sync(r->send_err) ? 1u : 0u,
                              ow_stats_errest_seconds(r->send_err), r->recv_time,
                              ow_errest_sync(r->recv_err) ? 1u : 0u, ow_stats_errest_seconds(r->recv_err),
                              (unsigned) r->ttl);
}

/* -R of either kind of session. */
static int report_raw(const OwSink *out, const OwReportSession *s) {
        uint32_t n = s->twoway ? s->tw_records.n_records : s->records.n_records;
        union {
                OwRecord one;
                OwTwRecord two;
        } rec;
        int r = 0;

        for (uint32_t i = 0; r >= 0 && i < n; i++) {
                r = s->twoway ? s->tw_records.get(s->tw_records.userdata, i, &rec.two)
                              : s->records.get(s->records.userdata, i, &rec.one);
                if (r >= 0)
                        r = s->twoway ? ow_twreport_raw_record(out, &rec.two) : ow_report_raw_record(out, &rec.one);
        }
        return r < 0 ? r : 0;
}

int ow_report_raw(const OwSink *out, const OwRecordSource *records) {
        return report_raw(out, &(OwReportSession){ .records = *records });
}

int ow_report_header(const OwSink *out, const OwReportSession *s) {
        char sid[OW_SID_SIZE * 2 + 1];
        Printer p = { .sink = out };
        Names n;

        names_get(s, &n);
        sid_hex(&s->request->sid, sid);
        pr(&p, "\n--- %s statistics from [%s]:%u to [%s]:%u ---\n", s->twoway ? "twping" : "owping", n.from_host,
           (unsigned) s->request->sender_port, n.to_host, (unsigned) s->request->receiver_port);
        pr(&p, "SID:\t%s\n", sid);
        return p.r;
}

int ow_report_record(const OwSink *out, const OwReportOptions *o, const OwRecord *r,
                     const OwStatsRecordInfo *info) {
        double f;
        const char *u;

        if (ow_report_units(o->units, &f, &u) < 0)
                return -EINVAL;

        switch (info->kind) {
        case OW_STATS_RECORD_LOST:
                return ow_sink_printf(out, "seq_no=%-10u *LOST*\n", r->seq);
        case OW_STATS_RECORD_RECEIVED:
                if (!info->sync)
                        return ow_sink_printf(out, "seq_no=%-10u delay=%.3g %s\t(unsync)\n", r->seq,
                                              info->delay * f, u);
                if (o->unix_time)
                        return ow_sink_printf(out,
                                              "seq_no=%d delay=%e %s (sync, err=%.3g %s) sent=%f recv=%f\n",
                                              (int) r->seq, info->delay * f, u, info->error * f, u,
                                              ow_stats_num64_to_double(r->send_time) - UNIX_EPOCH_DIFF,
                                              ow_stats_num64_to_double(r->recv_time) - UNIX_EPOCH_DIFF);
                return ow_sink_printf(out, "seq_no=%-10u delay=%.3g %s\t(sync, err=%.3g %s)\n", r->seq,
                                      info->delay * f, u, info->error * f, u);
        default:
                return 0;
        }
}

/* "%.3g" of v * factor, or "nan" when the value is missing. */
static void value_string(char *buf, size_t size, bool valid, double v, double factor) {
        if (!valid)
                snprintf(buf, size, "nan");
        else
                snprintf(buf, size, "%.3g", v * factor);
}

/* first:/last: as "%FT%T" in local time and milliseconds, computed as the
 * reference does: the nanoseconds as a float divided by a million, printed
 * with "%03.0f" (so .9995 s and up shows as "1000"). */
static void time_strings(const OwReportOptions *o, OwTimestamp t, char *buf, size_t size, double *ret_ms) {
        /* Epoch conversion in unsigned 32.32 arithmetic first, as the
         * reference (times before 1970 wrap). */
        uint64_t u = t - (OW_NTP_UNIX_OFFSET_SEC << 32);
        time_t sec = (time_t) (u >> 32);
        long nsec = (long) ow_frac_to_nsec((uint32_t) u);
        struct tm tm = {}, *tmp;

        tmp = o->localtime ? o->localtime(&sec, &tm) : gmtime_r(&sec, &tm);
        if (!tmp || strftime(buf, size, "%FT%T", tmp) == 0)
                snprintf(buf, size, "XXX");
        *ret_ms = (double) ((float) nsec / 1000000);
}

static uint8_t ttl_stats(const OwStatsResult *r, uint8_t *ret_min, uint8_t *ret_max) {
        /* The reference counts distinct TTLs in 8 bits: 256 of them wrap
         * to 0 ("TTL not reported"). Keep that. */
        uint8_t n = 0, min = 255, max = 0;

        for (unsigned i = 0; i < 256; i++) {
                if (!r->ttl[i])
                        continue;
                n++;
                if (i < min)
                        min = (uint8_t) i;
                if (i > max)
                        max = (uint8_t) i;
        }
        *ret_min = min;
        *ret_max = max;
        return n;
}

int ow_report_times(const OwSink *out, const OwReportOptions *o, const OwStatsResult *r) {
        char first[64], last[64];
        double first_ms, last_ms;

        time_strings(o, r->start_time, first, sizeof(first), &first_ms);
        time_strings(o, r->end_time, last, sizeof(last), &last_ms);
        return ow_sink_printf(out, "first:\t%s.%03.0f\nlast:\t%s.%03.0f\n", first, first_ms, last, last_ms);
}

int ow_report_delay_line(const OwSink *out, const char *name, const OwStats *st, bool sync, double max_err,
                         double f, const char *u) {
        const OwStatsResult *r = ow_stats_result(st);
        char minv[80], medv[80], maxv[80];
        double median;
        bool ok;

        value_string(minv, sizeof(minv), r->min_delay < r->inf_delay, r->min_delay, f);
        value_string(maxv, sizeof(maxv), r->max_delay > -r->inf_delay, r->max_delay, f);
        ok = ow_stats_percentile(st, 0.5, &median);
        value_string(medv, sizeof(medv), ok, median, f);
        if (sync)
                return ow_sink_printf(out, "%s min/median/max = %s/%s/%s %s, (err=%.3g %s)\n", name, minv, medv,
                                      maxv, u, max_err * f, u);
        return ow_sink_printf(out, "%s min/median/max = %s/%s/%s %s, (unsync)\n", name, minv, medv, maxv, u);
}

int ow_report_jitter_line(const OwSink *out, const char *name, const OwStats *st, double f, const char *u) {
        char jitv[80];
        double jitter;
        bool ok;

        ok = ow_stats_jitter(st, &jitter);
        value_string(jitv, sizeof(jitv), ok, jitter, f);
        return ow_sink_printf(out, "%s jitter = %s %s (P95-P50)\n", name, jitv, u);
}

int ow_report_percentiles(const OwSink *out, const OwReportOptions *o, const OwStats *st, double f,
                          const char *u) {
        Printer p = { .sink = out };
        double d;
        bool ok;

        if (o->n_percentiles == 0)
                return 0;
        pr(&p, "Percentiles:\n");
        for (size_t i = 0; i < o->n_percentiles; i++) {
                char v[80];
                ok = ow_stats_percentile(st, o->percentiles[i] / 100.0, &d);
                value_string(v, sizeof(v), ok, d, f);
                pr(&p, "\t%.1f: %s %s\n", (double) o->percentiles[i], v, u);
        }
        return p.r;
}

int ow_report_hops(const OwSink *out, const char *prefix, const OwStatsResult *r) {
        uint8_t min_ttl, max_ttl, n_ttl = ttl_stats(r, &min_ttl, &max_ttl);

        if (n_ttl < 1)
                return ow_sink_printf(out, "%sTTL not reported\n", prefix);
        if (n_ttl == 1)
                return ow_sink_printf(out, "%shops = %d (consistently)\n", prefix, 255 - min_ttl);
        return ow_sink_printf(out, "%shops takes %d values; min hops = %d, max hops = %d\n", prefix, n_ttl,
                              255 - max_ttl, 255 - min_ttl);
}

int ow_report_summary(const OwSink *out, const OwReportSession *s, const OwStats *st,
                      const OwReportOptions *o) {
        const OwStatsResult *r = ow_stats_result(st);
        Printer p = { .sink = out };
        double f, d;
        const char *u;

        if (ow_report_units(o->units, &f, &u) < 0)
                return -EINVAL;

        p.r = ow_report_header(out, s);
        if (p.r >= 0)
                p.r = ow_report_times(out, o, r);

        d = r->sent > 0 ? (double) r->lost / r->sent : 0.0;
        pr(&p, "%u sent, %u lost (%.3f%%), ", r->sent, r->lost, 100.0 * d);
        pr(&p, "%u duplicates\n", r->dups);

        if (p.r >= 0)
                p.r = ow_report_delay_line(out, "one-way delay", st, r->sync, r->max_err, f, u);
        if (p.r >= 0)
                p.r = ow_report_jitter_line(out, "one-way", st, f, u);
        if (p.r >= 0)
                p.r = ow_report_percentiles(out, o, st, f, u);
        if (p.r >= 0)
                p.r = ow_report_hops(out, "", r);

        uint64_t i;
        for (i = 0; i < r->n_reorder; i++)
                pr(&p, "%" PRIu64 "-reordering = %f%%\n", i + 1,
                   100.0 * r->reorder[i] / (double) r->reorder_total);
        if (i == 0)
                pr(&p, "no reordering\n");
        else if (i < r->reorder_limit)
                pr(&p, "no %" PRIu64 "-reordering\n", i + 1);
        else
                pr(&p, "%" PRIu64 "-reordering not handled\n", r->reorder_limit + 1);

        pr(&p, "\n");
        return p.r;
}

int ow_report_machine_head(const OwSink *out, const OwReportSession *s, const OwStatsResult *r,
                           const OwReportOptions *o) {
        const OwSessionRequest *req = s->request;
        Printer p = { .sink = out };
        char sid[OW_SID_SIZE * 2 + 1];
        float version = 3.0f;
        Names n;

        names_get(s, &n);
        sid_hex(&req->sid, sid);

        pr(&p, "SUMMARY\t%.2f\n", (double) version);
        pr(&p, "SID\t%s\n", sid);
        pr(&p, "FROM_HOST\t%s\n", n.from_host);
        pr(&p, "FROM_ADDR\t%s\n", n.from_numeric);
        pr(&p, "FROM_PORT\t%u\n", (unsigned) req->sender_port);
        pr(&p, "TO_HOST\t%s\n", n.to_host);
        pr(&p, "TO_ADDR\t%s\n", n.to_numeric);
        pr(&p, "TO_PORT\t%u\n", (unsigned) req->receiver_port);
        pr(&p, "START_TIME\t%020" PRIu64 "\n", r->start_time);
        pr(&p, "END_TIME\t%020" PRIu64 "\n", r->end_time);
        if (o->unix_time) {
                pr(&p, "UNIX_START_TIME\t%f\n", ow_stats_num64_to_double(r->start_time) - UNIX_EPOCH_DIFF);
                pr(&p, "UNIX_END_TIME\t%f\n", ow_stats_num64_to_double(r->end_time) - UNIX_EPOCH_DIFF);
        }
        if (ow_typep_is_dscp(req->type_p))
                pr(&p, "DSCP\t0x%2.2x\n", (unsigned) (req->type_p >> 24));
        pr(&p, "LOSS_TIMEOUT\t%" PRIu64 "\n", req->timeout);
        pr(&p, "PACKET_PADDING\t%u\n", req->padding_length);
        pr(&p, "SESSION_PACKET_COUNT\t%u\n", req->n_packets);
        pr(&p, "SAMPLE_PACKET_COUNT\t%u\n", r->last - r->first);
        pr(&p, "BUCKET_WIDTH\t%g\n", r->bucket_width);
        pr(&p, "SESSION_FINISHED\t%d\n", s->finished ? 1 : 0);
        pr(&p, "SENT\t%u\n", r->sent);
        pr(&p, "SYNC\t%u\n", r->sync ? 1u : 0u);
        return p.r;
}

int ow_report_machine_ttl(const OwSink *out, const char *suffix, const OwStatsResult *r) {
        uint8_t min_ttl, max_ttl;

        (void) ttl_stats(r, &min_ttl, &max_ttl);
        return ow_sink_printf(out, "MINTTL%s\t%u\nMAXTTL%s\t%u\n", suffix, (unsigned) min_ttl, suffix,
                              (unsigned) max_ttl);
}

int ow_report_machine(const OwSink *out, const OwReportSession *s, const OwStats *st,
                      const OwReportOptions *o) {
        const OwStatsResult *r = ow_stats_result(st);
        Printer p = { .sink = out };
        uint8_t min_ttl, max_ttl;
        double d;

        p.r = ow_report_machine_head(out, s, r, o);
        pr(&p, "MAXERR\t%g\n", r->max_err);
        pr(&p, "DUPS\t%u\n", r->dups);
        pr(&p, "LOST\t%u\n", r->lost);
        if (r->min_delay < r->inf_delay)
                pr(&p, "MIN\t%g\n", r->min_delay);
        if (ow_stats_percentile(st, 0.5, &d))
                pr(&p, "MEDIAN\t%g\n", d);
        if (r->max_delay > -r->inf_delay)
                pr(&p, "MAX\t%g\n", r->max_delay);
        if (ow_stats_jitter(st, &d))
                pr(&p, "PDV\t%g\n", d);

        if (r->sent > r->lost) {
                pr(&p, "<BUCKETS>\n");
                for (size_t i = 0; i < r->n_buckets; i++)
                        pr(&p, "\t%d\t%u\n", r->buckets_print_order[i].index,
                           r->buckets_print_order[i].count);
                pr(&p, "</BUCKETS>\n");
        }

        if (p.r >= 0)
                p.r = ow_report_machine_ttl(out, "", r);
        if (ttl_stats(r, &min_ttl, &max_ttl) > 0) {
                pr(&p, "<TTLBUCKETS>\n");
                for (unsigned i = 0; i < 256; i++)
                        if (r->ttl[i])
                                pr(&p, "\t%u\t%" PRIu64 "\n", i, r->ttl[i]);
                pr(&p, "</TTLBUCKETS>\n");
        }

        pr(&p, "\n");

        pr(&p, "<NREORDERING>\n");
        uint64_t j;
        for (j = 0; j < r->n_reorder; j++)
                pr(&p, "\t%u\t%u\n", (uint32_t) j + 1, r->reorder[j]);
        if (j == 0 || j >= r->reorder_limit)
                pr(&p, "\t%u\t%u\n", (uint32_t) j + 1, 0u);
        pr(&p, "</NREORDERING>\n");

        return p.r;
}

int ow_report_file_name(const char *dir, OwTimestamp start, OwTimestamp end, bool machine, char **ret) {
        char *name;

        if (asprintf(&name, "%s%s%020" PRIu64 "_%020" PRIu64 "%s", dir ? dir : "", dir ? "/" : "", start,
                     end, machine ? ".sum" : ".txt") < 0)
                return -ENOMEM;
        *ret = name;
        return 0;
}

/* For powstream (ow-report.h): one-way only, with a callback per record
 * instead of printing. */
int ow_report_parse_block(OwStats *st, const OwRecordSource *records, uint32_t n_packets, uint32_t first,
                          uint32_t last, uint32_t records_limit, uint32_t *index, OwReportRecordFn fn,
                          void *userdata) {
        uint32_t begin = *index, n, next = 0;
        bool next_found = false;
        int r;

        r = ow_stats_begin(st, first, last);
        if (r < 0)
                return r;
        if (last == UINT32_MAX)
                last = n_packets;

        if (begin > records->n_records)
                begin = 0;
        n = records->n_records - begin;
        if (records_limit > 0 && records_limit < n)
                n = records_limit;

        for (uint32_t i = 0; i < n; i++) {
                OwStatsRecordInfo info;
                OwRecord rec;

                r = records->get(records->userdata, begin + i, &rec);
                if (r < 0)
                        return r;
                if (!next_found && rec.seq >= last) {
                        next = begin + i;
                        next_found = true;
                }
                r = ow_stats_add(st, &rec, &info);
                if (r < 0)
                        return r;
                if (fn) {
                        r = fn(userdata, &rec, &info);
                        if (r < 0)
                                return r;
                }
        }
        *index = next_found ? next : 0;

        return ow_stats_end(st);
}

/* The statistics of one pass over a session: one-way or two-way. */
typedef struct Pass {
        const OwReportSession *s;
        const OwReportOptions *o;
        OwStats *st;
        OwTwStats *tw;
} Pass;

static const OwStatsResult *pass_result(const Pass *pa) {
        return ow_stats_result(pa->tw ? ow_tw_stats_direction(pa->tw, OW_TW_ROUND_TRIP) : pa->st);
}

/* Record i into the statistics and, with -v, its line; *ret_seq its
 * (sender) sequence number. */
static int pass_record(Pass *pa, const OwSink *out, uint32_t i, uint32_t *ret_seq, bool *first_record) {
        const OwReportSession *s = pa->s;
        const OwReportOptions *o = pa->o;
        union {
                OwRecord one;
                OwTwRecord two;
        } rec;
        union {
                OwStatsRecordInfo one;
                OwTwStatsRecordInfo two;
        } info;
        int r;

        r = pa->tw ? s->tw_records.get(s->tw_records.userdata, i, &rec.two)
                   : s->records.get(s->records.userdata, i, &rec.one);
        if (r < 0)
                return r;
        *ret_seq = pa->tw ? rec.two.sender_seq : rec.one.seq;
        r = pa->tw ? ow_tw_stats_add(pa->tw, &rec.two, &info.two) : ow_stats_add(pa->st, &rec.one, &info.one);
        if (r < 0 || !o->records)
                return r;
        if (pa->tw)
                return o->json ? ow_report_json_tw_record(out, &rec.two, &info.two, first_record)
                               : ow_twreport_record(out, o, &rec.two, &info.two);
        return o->json ? ow_report_json_record(out, &rec.one, &info.one, first_record)
                       : ow_report_record(out, o, &rec.one, &info.one);
}

/* One (sub-)session: the reference's OWPStatsParse() plus the summary. The
 * records looked at start at *index (the first record seen by the previous
 * sub-session with a sequence number at or above its end), at most
 * records_limit of them; *index is updated for the next one. */
static int report_block(Pass *pa, const OwSink *out, uint32_t first, uint32_t last, uint32_t *index,
                        bool first_block) {
        const OwReportSession *s = pa->s;
        const OwReportOptions *o = pa->o;
        uint32_t begin = *index, n, n_records, next = 0;
        bool next_found = false, first_record = true;
        int r;

        r = pa->tw ? ow_tw_stats_begin(pa->tw, first, last) : ow_stats_begin(pa->st, first, last);
        if (r < 0)
                return r;
        if (last == UINT32_MAX)
                last = s->request->n_packets;

        if (o->json) {
                r = ow_report_json_block_begin(out, first_block, o->records);
                if (r < 0)
                        return r;
        } else if (o->records) {
                r = ow_report_header(out, s);
                if (r < 0)
                        return r;
        }

        n_records = pa->tw ? s->tw_records.n_records : s->records.n_records;
        if (begin > n_records)
                begin = 0;
        n = n_records - begin;
        if (o->records_limit > 0 && o->records_limit < n)
                n = o->records_limit;

        for (uint32_t i = 0; i < n; i++) {
                uint32_t seq;

                r = pass_record(pa, out, begin + i, &seq, &first_record);
                if (r < 0)
                        return r;
                if (!next_found && seq >= last) {
                        next = begin + i;
                        next_found = true;
                }
        }
        *index = next_found ? next : 0;

        if (pa->tw) {
                r = ow_tw_stats_end(pa->tw);
                if (r < 0)
                        return r;
                if (o->json)
                        return ow_report_json_tw_block_end(out, pa->tw, o);
                return ow_twreport_block(out, s, pa->tw, o);
        }

        r = ow_stats_end(pa->st);
        if (r < 0)
                return r;
        if (o->json)
                return ow_report_json_block_end(out, pa->st, o);
        return o->machine ? ow_report_machine(out, s, pa->st, o) : ow_report_summary(out, s, pa->st, o);
}

static int report_block_to_file(Pass *pa, const OwSink *out, const OwReportFiles *files, uint32_t first,
                                uint32_t last, uint32_t *index) {
        _cleanup_free_ char *name = NULL;
        OwSink file;
        int r;

        r = files->open(files->userdata, &file);
        if (r < 0)
                return r;
        r = report_block(pa, &file, first, last, index, false);
        if (r < 0) {
                (void) files->close(files->userdata, NULL);
                return r;
        }

        const OwStatsResult *res = pass_result(pa);
        r = ow_report_file_name(pa->o->save_dir, res->start_time, res->end_time, pa->o->machine, &name);
        if (r < 0) {
                (void) files->close(files->userdata, NULL);
                return r;
        }
        r = files->close(files->userdata, name);
        if (r < 0)
                return r;
        return ow_sink_printf(out, "%s\n", name);
}

int ow_report_session(const OwReportSession *s, const OwReportOptions *o, const OwSink *out,
                      const OwReportFiles *files) {
        _cleanup_(ow_stats_freep) OwStats *st = NULL;
        _cleanup_(ow_tw_stats_freep) OwTwStats *tw = NULL;
        uint32_t n_packets, n_sub, index = 0;
        int r;

        if (!s || !o || !out || (s->twoway ? !s->tw_records.get : !s->records.get))
                return -EINVAL;
        if (o->raw)
                return report_raw(out, s);
        if (!s->request)
                return -OW_ERR_VERSION; /* the reference: "owp files must be version 2 or greater" */
        if (o->print_files && !o->json && (!files || !files->open || !files->close))
                return -EINVAL;
        if (ow_report_units(o->units, NULL, NULL) < 0)
                return -EINVAL;

        if (s->twoway) {
                r = ow_tw_stats_new(s->request, s->skips, s->n_skips, o->bucket_width, &tw);
                if (r < 0)
                        return r;
                ow_tw_stats_keep_delays(tw, o->json);
        } else {
                r = ow_stats_new(s->request, s->skips, s->n_skips, o->bucket_width, &st);
                if (r < 0)
                        return r;
                /* --json gives exact order statistics besides the histogram's. */
                ow_stats_keep_delays(st, o->json);
        }
        Pass pa = { .s = s, .o = o, .st = st, .tw = tw };

        n_packets = s->request->n_packets;
        if (o->sub_packets == 0 || o->sub_packets >= n_packets)
                n_sub = 0;
        else
                n_sub = n_packets / o->sub_packets + (n_packets % o->sub_packets ? 1 : 0);

        if (o->json) {
                /* One document around every (sub-)session. */
                r = ow_report_json_begin(out, s);
                if (r < 0)
                        return r;
                for (uint32_t i = 0; i < MAX(n_sub, 1u); i++) {
                        uint32_t first = o->sub_packets * i;
                        uint32_t last = n_sub == 0 || o->sub_packets * (i + 1) > n_packets
                                                ? UINT32_MAX
                                                : o->sub_packets * (i + 1);
                        if (n_sub == 0)
                                first = 0;
                        r = report_block(&pa, out, first, last, &index, i == 0);
                        if (r < 0) {
                                /* End the broken line, so that a reader
                                 * of JSON lines loses this one only. */
                                (void) out->write(out->userdata, "\n", 1);
                                return r;
                        }
                }
                return ow_report_json_end(out);
        }

        if (n_sub == 0) {
                if (o->print_files)
                        return report_block_to_file(&pa, out, files, 0, UINT32_MAX, &index);
                return report_block(&pa, out, 0, UINT32_MAX, &index, false);
        }

        for (uint32_t i = 0; i < n_sub; i++) {
                /* 32-bit arithmetic, as the reference: a product that wraps
                 * gives an inverted range, which ow_stats_begin() refuses. */
                uint32_t first = o->sub_packets * i;
                uint32_t last = o->sub_packets * (i + 1);
                if (last > n_packets)
                        last = UINT32_MAX;

                if (o->print_files)
                        r = report_block_to_file(&pa, out, files, first, last, &index);
                else
                        r = report_block(&pa, out, first, last, &index, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int owp_get(void *userdata, uint32_t i, OwRecord *ret) {
        return ow_owp_get_record(userdata, i, ret);
}

static int twp_get(void *userdata, uint32_t i, OwTwRecord *ret) {
        return ow_twp_get_record(userdata, i, ret);
}

static int report_file_init(OwReportFile *rf, const void *data, size_t size, bool twoway) {
        int r;

        if (!rf)
                return -EINVAL;
        *rf = (OwReportFile){};

        r = twoway ? ow_twp_parse(data, size, &rf->file) : ow_owp_parse(data, size, &rf->file);
        if (r < 0)
                return r;

        if (rf->file.has_request) {
                r = ow_owp_get_slots_alloc(&rf->file, &rf->slots);
                if (r < 0)
                        goto fail;
                rf->file.request.slots = rf->slots;
        }

        uint32_t n_skips = rf->file.header.n_skips;
        if (n_skips > 0) {
                rf->skips = calloc(n_skips, sizeof(OwSkipRange));
                if (!rf->skips) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (uint32_t i = 0; i < n_skips; i++) {
                        r = ow_owp_get_skip_range(&rf->file, i, &rf->skips[i]);
                        if (r < 0)
                                goto fail;
                }
        }

        rf->session = (OwReportSession){
                .request = rf->file.has_request ? &rf->file.request : NULL,
                .skips = rf->skips,
                .n_skips = n_skips,
                .finished = rf->file.header.finished == OW_OWP_FINISHED_NORMAL,
                .twoway = twoway,
        };
        if (twoway)
                rf->session.tw_records = (OwTwRecordSource){ .n_records = rf->file.n_records,
                                                             .get = twp_get,
                                                             .userdata = &rf->file };
        else
                rf->session.records = (OwRecordSource){ .n_records = rf->file.n_records,
                                                        .get = owp_get,
                                                        .userdata = &rf->file };
        return 0;

fail:
        ow_report_file_done(rf);
        return r;
}

int ow_report_file_init(OwReportFile *rf, const void *data, size_t size) {
        /* A twping -F file has the .owp layout and version 0x83. */
        return report_file_init(rf, data, size, ow_owp_is_twp(data, size));
}

int ow_twreport_file_init(OwReportFile *rf, const void *data, size_t size) {
        return report_file_init(rf, data, size, true);
}

void ow_report_file_done(OwReportFile *rf) {
        if (!rf)
                return;
        free(rf->slots);
        free(rf->skips);
        *rf = (OwReportFile){};
}
