/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "ow-time.h"
#include "pow-output.h"
#include "pow-prom.h"


int pow_prom_file_name(const char *stream, char **ret) {
        size_t n = strlen(stream);
        char *s = malloc(strlen("powstream-") + n + strlen(".prom") + 1);

        if (!s)
                return -ENOMEM;
        char *q = stpcpy(s, "powstream-");
        for (size_t i = 0; i < n; i++) {
                char c = stream[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                          c == '_' || c == '-';
                *q++ = ok ? c : '_';
        }
        strcpy(q, ".prom");
        *ret = s;
        return 0;
}

/* The whole text into a temporary file in dir (a name node_exporter skips:
 * it reads *.prom only), then rename() over the old file: a scrape sees the
 * old or the new text, never a part. */
static int write_atomic(const char *dir, const char *name, const OwBuf *b) {
        _cleanup_free_ char *tmp = NULL, *path = NULL;
        int fd, r = 0;

        if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, name) < 0 || asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < b->len;) {
                ssize_t k = write(fd, b->data + off, b->len - off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                off += (size_t) k;
        }
        /* node_exporter runs as another user: world-readable, as its
         * collector's documentation asks for. */
        if (r == 0 && fchmod(fd, 0644) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

static int write_file(PowProm *p) {
        const char *dir = p->dir;
        _cleanup_free_ char *name = NULL;
        OwBuf b = {};
        OwSink sink = ow_buf_sink(&b);
        int r;

        r = pow_prom_file_name(p->s.stream, &name);
        if (r >= 0)
                r = ow_prom_format(&sink, &p->s);
        if (r >= 0)
                r = write_atomic(dir, name, &b);
        ow_buf_done(&b);
        if (r < 0 && !p->warned) {
                p->warned = true;
                log_warning_errno(r, "stream %s: cannot write the Prometheus file %s/%s: %s", p->s.stream, dir,
                                  name ? name : "", strerror(-r));
        } else if (r >= 0 && p->warned) {
                p->warned = false;
                log_info("stream %s: the Prometheus file %s/%s is written again", p->s.stream, dir, name);
        }
        return r;
}

static double exact_or_histogram(const OwStats *st, double percent) {
        double v;

        if (ow_stats_exact_percentile(st, percent, &v) || ow_stats_percentile(st, percent / 100.0, &v))
                return v;
        return NAN;
}

int pow_prom_init(PowProm *p, const char *dir, const char *stream, const char *peer, const char *direction) {
        *p = (PowProm){ .dir = dir };
        ow_prom_stream_init(&p->s);
        p->s.stream = stream;
        p->s.peer = peer;
        p->s.direction = direction;
        return dir ? write_file(p) : 0;
}

int pow_prom_publish(PowProm *p, const PowResult *res) {
        const OwStatsResult *st = ow_stats_result(res->stats);
        double v;

        if (!p->dir)
                return 0;
        if (!res->sub) {
                p->s.sessions++;
                p->s.sent += st->sent;
                p->s.lost += st->lost;
                p->s.duplicates += st->dups;
                p->s.reordered += st->n_reorder > 0 ? st->reorder[0] : 0;
        }
        /* The gauges: the last sub-session, or the last session when the
         * stream has none (-N 0). */
        if (res->sub || res->n_sub == 0) {
                p->s.delay_min = st->min_delay < st->inf_delay ? st->min_delay : NAN;
                p->s.delay_max = st->max_delay > -st->inf_delay ? st->max_delay : NAN;
                p->s.delay_median = ow_stats_exact_median(res->stats, &v) || ow_stats_percentile(res->stats, 0.5, &v)
                                            ? v
                                            : NAN;
                p->s.delay_p99 = exact_or_histogram(res->stats, 99.0);
                p->s.jitter = ow_stats_exact_jitter(res->stats, &v) || ow_stats_jitter(res->stats, &v) ? v : NAN;
                p->s.last_end_unix = (double) ow_timestamp_unix_sec(res->span.end);
        }
        return write_file(p);
}

int pow_prom_failed(PowProm *p, uint64_t failed) {
        if (!p->dir)
                return 0;
        p->s.failed = failed;
        return write_file(p);
}
