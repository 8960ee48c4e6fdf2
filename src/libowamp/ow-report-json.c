/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ow-report-json.h"

/* A writer that remembers its first failure, so each part below is a
 * straight sequence of calls. */
typedef struct Json {
        const OwSink *sink;
        int r;
} Json;

static void jraw(Json *j, const char *s) {
        if (j->r >= 0)
                j->r = j->sink->write(j->sink->userdata, s, strlen(s));
}

_printf_(2, 3) static void jfmt(Json *j, const char *fmt, ...) {
        char buf[128];
        va_list ap;
        int n;

        if (j->r < 0)
                return;
        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        /* Only numbers and fixed words go through here. */
        j->r = n < 0 || (size_t) n >= sizeof(buf) ? -EINVAL
                                                  : j->sink->write(j->sink->userdata, buf, (size_t) n);
}

static void jstr(Json *j, const char *s) {
        if (j->r >= 0)
                j->r = ow_json_string(j->sink, s);
}

static void jdouble(Json *j, double v) {
        if (j->r >= 0)
                j->r = ow_json_double(j->sink, v);
}

static void jtime(Json *j, OwTimestamp t) {
        if (j->r >= 0)
                j->r = ow_json_timestamp(j->sink, t);
}

static void jbool(Json *j, bool b) {
        jraw(j, b ? "true" : "false");
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s) {
        unsigned char c = s[0];
        size_t n;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                n = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                cp = c & 0x07;
        } else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF. */
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

int ow_json_string(const OwSink *out, const char *s) {
        Json j = { .sink = out };
        const unsigned char *p = (const unsigned char *) (s ? s : "");

        jraw(&j, "\"");
        while (*p && j.r >= 0) {
                size_t n = utf8_sequence(p);
                if (n == 0) {
                        jraw(&j, "\\ufffd");
                        p++;
                } else if (*p == '"' || *p == '\\') {
                        jraw(&j, *p == '"' ? "\\\"" : "\\\\");
                        p++;
                } else if (*p < 0x20 || *p == 0x7f) {
                        jfmt(&j, "\\u%04x", (unsigned) *p);
                        p++;
                } else {
                        j.r = out->write(out->userdata, (const char *) p, n);
                        p += n;
                }
        }
        jraw(&j, "\"");
        return j.r;
}

int ow_json_double(const OwSink *out, double v) {
        char buf[64];

        if (!isfinite(v))
                return out->write(out->userdata, "null", 4);
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        return out->write(out->userdata, buf, strlen(buf));
}

/* A float (the -a percentiles) by its shortest decimal form. */
static void jfloat(Json *j, float v) {
        char buf[64];

        if (j->r < 0)
                return;
        if (!isfinite(v)) {
                jraw(j, "null");
                return;
        }
        for (int prec = 6; prec <= 9; prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, (double) v);
                if (strtof(buf, NULL) == v)
                        break;
        }
        jraw(j, buf);
}

int ow_json_iso8601(OwTimestamp t, char *buf, size_t size) {
        /* Exact: NTP era 0 seconds to Unix seconds in 64 bits (no wrap), the
         * fraction to nanoseconds (truncated). */
        time_t sec = (time_t) ((int64_t) (t >> 32) - (int64_t) OW_NTP_UNIX_OFFSET_SEC);
        uint32_t nsec = ow_frac_to_nsec((uint32_t) t);
        struct tm tm;
        char date[64];

        if (!gmtime_r(&sec, &tm) || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                return -EINVAL;
        if ((size_t) snprintf(buf, size, "%s.%09" PRIu32 "Z", date, nsec) >= size)
                return -ENOBUFS;
        return 0;
}

int ow_json_timestamp(const OwSink *out, OwTimestamp t) {
        Json j = { .sink = out };
        char iso[96];

        jfmt(&j, "{\"ntp\":\"%" PRIu64 "\",\"unix\":", t);
        /* Seconds since 1970 as the reference's -U computes them: the 32.32
         * value as a double, minus the epoch difference. */
        jfmt(&j, "%.6f", ow_stats_num64_to_double(t) - (double) OW_NTP_UNIX_OFFSET_SEC);
        jraw(&j, ",\"iso8601\":");
        if (ow_json_iso8601(t, iso, sizeof(iso)) < 0)
                jraw(&j, "null");
        else
                jstr(&j, iso);
        jraw(&j, "}");
        return j.r;
}

static void jendpoint(Json *j, const OwSessionRequest *req, const uint8_t addr[OW_ADDR_SIZE], uint16_t port,
                      const char *host) {
        char a[INET6_ADDRSTRLEN];
        int af = req->ipvn == 6 ? AF_INET6 : req->ipvn == 4 ? AF_INET : AF_UNSPEC;
        bool ok = af != AF_UNSPEC && inet_ntop(af, addr, a, sizeof(a));

        jraw(j, "{\"host\":");
        if (host)
                jstr(j, host);
        else if (ok)
                jstr(j, a);
        else
                jraw(j, "null");
        jraw(j, ",\"address\":");
        if (ok)
                jstr(j, a);
        else
                jraw(j, "null");
        jfmt(j, ",\"port\":%u}", (unsigned) port);
}

int ow_report_json_begin(const OwSink *out, const OwReportSession *s) {
        const OwSessionRequest *req = s->request;
        Json j = { .sink = out };
        char sid[OW_SID_SIZE * 2 + 1];

        if (!req)
                return -EINVAL;
        for (size_t i = 0; i < OW_SID_SIZE; i++)
                snprintf(sid + 2 * i, 3, "%02x", req->sid.bytes[i]);

        jfmt(&j, "{\"schema\":\"%s\",\"schema_version\":%d,\"session\":{\"sid\":\"%s\",\"mode\":",
             s->twoway ? OW_REPORT_JSON_TW_SCHEMA : OW_REPORT_JSON_SCHEMA,
             s->twoway ? OW_REPORT_JSON_TW_VERSION : OW_REPORT_JSON_VERSION, sid);
        if (s->mode)
                jstr(&j, s->mode);
        else
                jraw(&j, "null");
        jfmt(&j, ",\"ip_version\":%u,\"sender\":", (unsigned) req->ipvn);
        jendpoint(&j, req, req->sender_addr, req->sender_port, s->from_host);
        jraw(&j, ",\"receiver\":");
        jendpoint(&j, req, req->receiver_addr, req->receiver_port, s->to_host);
        jraw(&j, ",\"start_time\":");
        jtime(&j, req->start_time);
        jfmt(&j, ",\"packets\":%" PRIu32 ",\"padding\":%" PRIu32 ",\"loss_timeout\":", req->n_packets,
             req->padding_length);
        jdouble(&j, ow_stats_num64_to_double(req->timeout));
        jfmt(&j, ",\"type_p\":%" PRIu32 ",\"dscp\":", req->type_p);
        if (ow_typep_is_dscp(req->type_p))
                jfmt(&j, "%u", (unsigned) ow_typep_dscp(req->type_p));
        else
                jraw(&j, "null");
        jraw(&j, ",\"schedule\":[");
        for (uint32_t i = 0; req->slots && i < req->n_slots; i++) {
                jfmt(&j, "%s{\"type\":\"%s\",\"interval\":", i ? "," : "",
                     req->slots[i].type == OW_SLOT_FIXED ? "fixed" : "exponential");
                jdouble(&j, ow_stats_num64_to_double(req->slots[i].param));
                jraw(&j, "}");
        }
        jraw(&j, "],\"skip_ranges\":[");
        for (size_t i = 0; i < s->n_skips; i++)
                jfmt(&j, "%s{\"first_seqno\":%" PRIu32 ",\"last_seqno\":%" PRIu32 "}", i ? "," : "",
                     s->skips[i].first, s->skips[i].last);
        jraw(&j, "],\"finished\":");
        jbool(&j, s->finished);
        jfmt(&j, ",\"records\":%" PRIu32 "},\"summaries\":[",
             s->twoway ? s->tw_records.n_records : s->records.n_records);
        return j.r;
}

int ow_report_json_block_begin(const OwSink *out, bool first_block, bool records) {
        Json j = { .sink = out };

        jraw(&j, first_block ? "{" : ",{");
        if (records)
                jraw(&j, "\"records\":[");
        return j.r;
}

/* A record's opening: false for the records -v prints no line for (then
 * nothing is written). */
static bool jrecord_begin(Json *j, OwStatsRecordKind kind, uint32_t seq, OwTimestamp send_time, bool first) {
        if (kind != OW_STATS_RECORD_LOST && kind != OW_STATS_RECORD_RECEIVED)
                return false;
        jfmt(j, "%s{\"seqno\":%" PRIu32 ",\"lost\":%s,\"send_time\":", first ? "" : ",", seq,
             kind == OW_STATS_RECORD_LOST ? "true" : "false");
        jtime(j, send_time);
        return true;
}

int ow_report_json_record(const OwSink *out, const OwRecord *r, const OwStatsRecordInfo *info, bool *first) {
        Json j = { .sink = out };
        bool lost = info->kind == OW_STATS_RECORD_LOST;

        if (!jrecord_begin(&j, info->kind, r->seq, r->send_time, *first))
                return 0;
        jraw(&j, ",\"recv_time\":");
        if (lost)
                jraw(&j, "null");
        else
                jtime(&j, r->recv_time);
        jraw(&j, ",\"delay\":");
        if (lost)
                jraw(&j, "null");
        else
                jdouble(&j, info->delay);
        jfmt(&j, ",\"send_sync\":%s,\"send_error\":", ow_errest_sync(r->send_err) ? "true" : "false");
        jdouble(&j, ow_stats_errest_seconds(r->send_err));
        jfmt(&j, ",\"recv_sync\":%s,\"recv_error\":", ow_errest_sync(r->recv_err) ? "true" : "false");
        jdouble(&j, ow_stats_errest_seconds(r->recv_err));
        jfmt(&j, ",\"ttl\":%u}", (unsigned) r->ttl);
        if (j.r >= 0)
                *first = false;
        return j.r;
}

/* The number a float prints as (its shortest decimal), as a double: the
 * percentile the user wrote, 99.9 rather than 99.90000152587890625. */
static double float_decimal(float v) {
        char buf[64];

        for (int prec = 6; prec <= 9; prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, (double) v);
                if (strtof(buf, NULL) == v)
                        break;
        }
        return strtod(buf, NULL);
}

/* A delay that may be missing (the text formats' "nan"). */
static void jdelay(Json *j, bool ok, double v) {
        if (ok)
                jdouble(j, v);
        else
                jraw(j, "null");
}

/* What one delay type has (one-way delay, or one of the two-way ones):
 * sync, error, delays, percentiles, histogram, TTLs and hops. */
static void jstats(Json *j, const OwStats *st, const OwReportOptions *o) {
        static const float default_percentiles[] = OW_REPORT_JSON_DEFAULT_PERCENTILES;
        const OwStatsResult *r = ow_stats_result(st);
        double d;
        bool ok;

        jraw(j, ",\"sync\":");
        jbool(j, r->sync);
        jraw(j, ",\"max_error\":");
        jdouble(j, r->max_err);

        /* Exact order statistics from the records (version 2). */
        jraw(j, ",\"delay\":{\"min\":");
        jdelay(j, r->min_delay < r->inf_delay, r->min_delay);
        jraw(j, ",\"median\":");
        ok = ow_stats_exact_median(st, &d);
        jdelay(j, ok, d);
        jraw(j, ",\"max\":");
        jdelay(j, r->max_delay > -r->inf_delay, r->max_delay);
        jraw(j, ",\"jitter\":");
        ok = ow_stats_exact_jitter(st, &d);
        jdelay(j, ok, d);
        jraw(j, "}");

        const float *pct = o->n_percentiles > 0 ? o->percentiles : default_percentiles;
        size_t n_pct = o->n_percentiles > 0 ? o->n_percentiles : ELEMENTSOF(default_percentiles);
        jraw(j, ",\"percentiles\":[");
        for (size_t i = 0; i < n_pct; i++) {
                jraw(j, i ? ",{\"percentile\":" : "{\"percentile\":");
                jfloat(j, pct[i]);
                jraw(j, ",\"delay\":");
                ok = ow_stats_exact_percentile(st, float_decimal(pct[i]), &d);
                jdelay(j, ok, d);
                jraw(j, "}");
        }

        /* The text formats' values, from the histogram: upper bucket edges,
         * so the median may exceed the maximum. The width is the float the
         * reference keeps (-b), printed as that float's shortest decimal. */
        jraw(j, "],\"histogram\":{\"bucket_width\":");
        jfloat(j, (float) r->bucket_width);
        jraw(j, ",\"median\":");
        ok = ow_stats_percentile(st, 0.5, &d);
        jdelay(j, ok, d);
        jraw(j, ",\"jitter\":");
        ok = ow_stats_jitter(st, &d);
        jdelay(j, ok, d);
        jraw(j, ",\"percentiles\":[");
        for (size_t i = 0; i < n_pct; i++) {
                jraw(j, i ? ",{\"percentile\":" : "{\"percentile\":");
                jfloat(j, pct[i]);
                jraw(j, ",\"delay\":");
                ok = ow_stats_percentile(st, pct[i] / 100.0, &d);
                jdelay(j, ok, d);
                jraw(j, "}");
        }
        jraw(j, "],\"buckets\":[");
        for (size_t i = 0; i < r->n_buckets; i++)
                jfmt(j, "%s{\"index\":%" PRId32 ",\"count\":%" PRIu32 "}", i ? "," : "",
                     r->buckets[i].index, r->buckets[i].count);
        jraw(j, "]}");

        int min_ttl = -1, max_ttl = -1;
        unsigned n_ttl = 0;
        jraw(j, ",\"ttl\":{\"counts\":[");
        for (unsigned i = 0; i < 256; i++) {
                if (!r->ttl[i])
                        continue;
                jfmt(j, "%s{\"ttl\":%u,\"count\":%" PRIu64 "}", n_ttl ? "," : "", i, r->ttl[i]);
                if (min_ttl < 0)
                        min_ttl = (int) i;
                max_ttl = (int) i;
                n_ttl++;
        }
        jraw(j, "]");
        if (n_ttl > 0)
                jfmt(j, ",\"min\":%d,\"max\":%d},\"hops\":{\"min\":%d,\"max\":%d,\"distinct\":%u}", min_ttl,
                     max_ttl, 255 - max_ttl, 255 - min_ttl, n_ttl);
        else
                jraw(j, ",\"min\":null,\"max\":null},\"hops\":null");

}

/* The end of a block's records and its range. */
static void jblock_head(Json *j, const OwStatsResult *r, const OwReportOptions *o) {
        if (o->records)
                jraw(j, "],");
        jfmt(j, "\"first_seqno\":%" PRIu32 ",\"end_seqno\":%" PRIu32 ",\"start_time\":", r->first, r->last);
        jtime(j, r->start_time);
        jraw(j, ",\"end_time\":");
        jtime(j, r->end_time);
}

int ow_report_json_block_end(const OwSink *out, const OwStats *st, const OwReportOptions *o) {
        const OwStatsResult *r = ow_stats_result(st);
        Json j = { .sink = out };

        jblock_head(&j, r, o);
        jfmt(&j, ",\"sent\":%" PRIu32 ",\"lost\":%" PRIu32 ",\"duplicates\":%" PRIu32 ",\"loss_percent\":",
             r->sent, r->lost, r->dups);
        jdouble(&j, r->sent > 0 ? 100.0 * r->lost / r->sent : 0.0);
        jstats(&j, st, o);
        jraw(&j, ",\"reordering\":{\"counts\":[");
        for (uint64_t i = 0; i < r->n_reorder; i++) {
                jfmt(&j, "%s{\"n\":%" PRIu64 ",\"count\":%" PRIu32 ",\"percent\":", i ? "," : "", i + 1,
                     r->reorder[i]);
                jdouble(&j, r->reorder_total > 0 ? 100.0 * r->reorder[i] / (double) r->reorder_total : 0.0);
                jraw(&j, "}");
        }
        jfmt(&j, "],\"window\":%" PRIu64 ",\"complete\":%s,\"arrivals\":%" PRIu64 "}}", r->reorder_limit,
             r->n_reorder < r->reorder_limit ? "true" : "false", r->reorder_total);
        return j.r;
}

int ow_report_json_tw_record(const OwSink *out, const OwTwRecord *r, const OwTwStatsRecordInfo *info,
                             bool *first) {
        Json j = { .sink = out };

        if (!jrecord_begin(&j, info->kind, r->sender_seq, r->t1, *first))
                return 0;
        bool lost = info->kind == OW_STATS_RECORD_LOST;
        const struct {
                const char *key;
                OwTimestamp t;
        } times[] = { { "reflector_recv_time", r->t2 }, { "reflector_send_time", r->t3 }, { "recv_time", r->t4 } };
        const struct {
                const char *key;
                double v;
        } delays[] = {
                { "round_trip", info->delay },
                { "send", info->send },
                { "reflect", info->reflect },
                { "processing", info->proc },
        };
        const struct {
                const char *key;
                OwErrEst e;
        } errors[] = { { "send", r->sender_err }, { "reflector", r->reflector_err }, { "recv", r->recv_err } };

        if (lost)
                jraw(&j, ",\"reflector_seqno\":null");
        else
                jfmt(&j, ",\"reflector_seqno\":%" PRIu32, r->reflector_seq);
        /* A lost packet has no times and no delays. */
        for (size_t i = 0; i < ELEMENTSOF(times); i++) {
                jfmt(&j, ",\"%s\":", times[i].key);
                if (lost)
                        jraw(&j, "null");
                else
                        jtime(&j, times[i].t);
        }
        for (size_t i = 0; i < ELEMENTSOF(delays); i++) {
                jfmt(&j, ",\"%s\":", delays[i].key);
                jdelay(&j, !lost, delays[i].v);
        }
        for (size_t i = 0; i < ELEMENTSOF(errors); i++) {
                jfmt(&j, ",\"%s_sync\":%s,\"%s_error\":", errors[i].key,
                     ow_errest_sync(errors[i].e) ? "true" : "false", errors[i].key);
                jdouble(&j, ow_stats_errest_seconds(errors[i].e));
        }
        jfmt(&j, ",\"sender_ttl\":%u,\"ttl\":%u}", (unsigned) r->sender_ttl, (unsigned) r->ttl);
        if (j.r >= 0)
                *first = false;
        return j.r;
}

int ow_report_json_tw_block_end(const OwSink *out, const OwTwStats *st, const OwReportOptions *o) {
        static const char *const names[_OW_TW_DIRECTION_MAX] = {
                [OW_TW_ROUND_TRIP] = "round_trip",
                [OW_TW_SEND] = "send",
                [OW_TW_REFLECT] = "reflect",
        };
        const OwStatsResult *r = ow_stats_result(ow_tw_stats_direction(st, OW_TW_ROUND_TRIP));
        const OwTwStatsResult *tw = ow_tw_stats_result(st);
        Json j = { .sink = out };

        jblock_head(&j, r, o);
        jfmt(&j,
             ",\"sent\":%" PRIu32 ",\"lost\":%" PRIu32 ",\"send_duplicates\":%" PRIu32
             ",\"reflect_duplicates\":%" PRIu32 ",\"loss_percent\":",
             r->sent, r->lost, tw->send_dups, tw->reflect_dups);
        jdouble(&j, r->sent > 0 ? 100.0 * r->lost / r->sent : 0.0);
        jraw(&j, ",\"processing\":{\"min\":");
        jdelay(&j, tw->has_proc, tw->min_proc);
        jraw(&j, ",\"max\":");
        jdelay(&j, tw->has_proc, tw->max_proc);
        jraw(&j, "}");
        for (OwTwDirection i = 0; i < _OW_TW_DIRECTION_MAX; i++) {
                jfmt(&j, ",\"%s\":{\"direction\":\"%s\"", names[i], names[i]);
                jstats(&j, ow_tw_stats_direction(st, i), o);
                jraw(&j, "}");
        }
        jraw(&j, "}");
        return j.r;
}

int ow_report_json_end(const OwSink *out) {
        return out->write(out->userdata, "]}\n", 3);
}
