/* SPDX-License-Identifier: Apache-2.0 */

/*
 * bench-owp: timing figures of one-way sessions from their .owp files.
 *
 *   bench-owp NAME FILE.owp...
 *
 * For each file (one run each) it recomputes the send schedule from the
 * SID, slots and start time stored in the file with the core's
 * ow_schedule, exactly as sender and receiver computed it, and measures
 *   - send lateness: send timestamp - scheduled time, per packet sent;
 *   - one-way delay: receive timestamp - send timestamp, per packet
 *     received (both clocks are the same clock on loopback);
 *   - loss, duplicates, and the rate actually achieved: packets sent over
 *     the span from the first scheduled time to the last send timestamp.
 * Then it prints one line per figure, `figure_NAME_stat value unit`, with
 * the median over the files followed by the spread "min..max" and the
 * number of runs, e.g. for NAME fixed_1000pps:
 *   lateness_fixed_1000pps_p99 2.61 us 2.40..3.02 n=3
 *
 * Percentiles are order statistics (no interpolation): p50 is element
 * ceil(n/2), p99 element ceil(0.99 n) of the sorted values.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ow-owp.h"
#include "ow-schedule.h"

typedef enum Figure {
        LATE_P50,
        LATE_P99,
        LATE_MAX,
        DELAY_P50,
        DELAY_P99,
        DELAY_MAX,
        LOSS,
        DUPS,
        RATE,
        SENT,
        _FIGURE_MAX,
} Figure;

/* Printed as STEM_NAME_STAT (or STEM_NAME without a STAT). */
static const struct {
        const char *stem;
        const char *stat;
        const char *unit;
        double scale; /* from the raw value */
} figures[_FIGURE_MAX] = {
        [LATE_P50] = { "lateness", "median", "us", 1e-3 },
        [LATE_P99] = { "lateness", "p99", "us", 1e-3 },
        [LATE_MAX] = { "lateness", "max", "us", 1e-3 },
        [DELAY_P50] = { "delay", "median", "us", 1e-3 },
        [DELAY_P99] = { "delay", "p99", "us", 1e-3 },
        [DELAY_MAX] = { "delay", "max", "us", 1e-3 },
        [LOSS] = { "loss", NULL, "%", 1 },
        [DUPS] = { "duplicates", NULL, "packets", 1 },
        [RATE] = { "achieved_rate", NULL, "packets/s", 1 },
        [SENT] = { "sent", NULL, "packets", 1 },
};

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

/* Order statistic: element ceil(q n) (1-based) of sorted v. */
static int64_t quantile(const int64_t *v, size_t n, unsigned permille) {
        if (n == 0)
                return 0;
        size_t k = (n * permille + 999) / 1000;
        if (k == 0)
                k = 1;
        return v[k - 1];
}

/* $BENCH_OWP_DUMP: append "seq lateness_ns delay_ns" per packet, to look
 * at where the outliers are. */
static FILE *dump;

static int analyse(const char *path, double out[_FIGURE_MAX]) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "bench-owp: %s: %s\n", path, strerror(errno));
                return -errno;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_size == 0) {
                fprintf(stderr, "bench-owp: %s: empty\n", path);
                close(fd);
                return -EINVAL;
        }
        void *map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (map == MAP_FAILED)
                return -errno;

        OwOwpFile f;
        OwSlot *slots = NULL;
        OwSchedule *sched = NULL;
        int64_t *late = NULL, *delay = NULL;
        uint8_t *seen = NULL;
        int r = ow_owp_parse(map, (size_t) st.st_size, &f);
        if (r < 0 || !f.has_request) {
                fprintf(stderr, "bench-owp: %s: not a session file (%d)\n", path, r);
                r = -EINVAL;
                goto done;
        }
        r = ow_owp_get_slots_alloc(&f, &slots);
        if (r >= 0)
                r = ow_schedule_new(&f.request.sid, slots, f.request.n_slots, f.request.start_time, &sched);
        if (r < 0) {
                fprintf(stderr, "bench-owp: %s: bad schedule (%d)\n", path, r);
                goto done;
        }

        uint32_t n_packets = f.request.n_packets;
        late = calloc(f.n_records + 1, sizeof(int64_t));
        delay = calloc(f.n_records + 1, sizeof(int64_t));
        seen = calloc(n_packets / 8 + 1, 1);
        if (!late || !delay || !seen) {
                r = -ENOMEM;
                goto done;
        }

        size_t n_late = 0, n_delay = 0, n_lost = 0, n_dups = 0;
        OwTimestamp last_send = 0;
        for (uint32_t i = 0; i < f.n_records; i++) {
                OwRecord rec;
                r = ow_owp_get_record(&f, i, &rec);
                if (r < 0 || rec.seq >= n_packets) {
                        fprintf(stderr, "bench-owp: %s: bad record %u\n", path, i);
                        r = -EINVAL;
                        goto done;
                }
                if (ow_record_lost(&rec)) {
                        n_lost++;
                        if (dump)
                                fprintf(dump, "# %s: lost seq %u of %u\n", path, rec.seq, n_packets);
                        continue;
                }
                if (seen[rec.seq / 8] & (1u << (rec.seq % 8))) {
                        n_dups++;
                        continue;
                }
                seen[rec.seq / 8] |= (uint8_t) (1u << (rec.seq % 8));
                OwTimestamp due = ow_schedule_at(sched, rec.seq);
                late[n_late++] = ow_timestamp_diff_nsec(rec.send_time, due);
                delay[n_delay++] = ow_timestamp_diff_nsec(rec.recv_time, rec.send_time);
                if (dump)
                        fprintf(dump, "%u %" PRIi64 " %" PRIi64 "\n", rec.seq, late[n_late - 1],
                                delay[n_delay - 1]);
                if (rec.send_time > last_send)
                        last_send = rec.send_time;
        }
        qsort(late, n_late, sizeof(int64_t), cmp_i64);
        qsort(delay, n_delay, sizeof(int64_t), cmp_i64);

        /* Packets the sender skipped as hopelessly late do not appear as
         * records of either kind; count them as lost too. */
        size_t accounted = n_late + n_lost;
        size_t missing = n_packets > accounted ? n_packets - accounted : 0;
        int64_t span = ow_timestamp_diff_nsec(last_send, f.request.start_time);

        out[LATE_P50] = (double) quantile(late, n_late, 500);
        out[LATE_P99] = (double) quantile(late, n_late, 990);
        out[LATE_MAX] = n_late ? (double) late[n_late - 1] : 0;
        out[DELAY_P50] = (double) quantile(delay, n_delay, 500);
        out[DELAY_P99] = (double) quantile(delay, n_delay, 990);
        out[DELAY_MAX] = n_delay ? (double) delay[n_delay - 1] : 0;
        out[LOSS] = n_packets ? 100.0 * (double) (n_lost + missing) / n_packets : 0;
        out[DUPS] = (double) n_dups;
        out[RATE] = span > 0 ? (double) n_late * 1e9 / (double) span : 0;
        out[SENT] = (double) n_late;
        r = 0;
done:
        free(late);
        free(delay);
        free(seen);
        free(slots);
        ow_schedule_free(sched);
        munmap(map, (size_t) st.st_size);
        return r;
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: bench-owp NAME FILE.owp...\n");
                return 2;
        }
        size_t n = (size_t) argc - 2;
        const char *d = getenv("BENCH_OWP_DUMP");
        if (d && !(dump = fopen(d, "ae"))) {
                fprintf(stderr, "bench-owp: %s: %s\n", d, strerror(errno));
                return 1;
        }
        double(*v)[_FIGURE_MAX] = calloc(n, sizeof(*v));
        if (!v)
                return 1;
        for (size_t i = 0; i < n; i++)
                if (analyse(argv[i + 2], v[i]) < 0)
                        return 1;

        for (unsigned k = 0; k < _FIGURE_MAX; k++) {
                double *col = calloc(n, sizeof(double));
                if (!col)
                        return 1;
                for (size_t i = 0; i < n; i++)
                        col[i] = v[i][k] * figures[k].scale;
                qsort(col, n, sizeof(double), cmp_double);
                /* The median of the runs; for an even count the lower one,
                 * which is a value that was measured. */
                double med = col[(n - 1) / 2];
                printf("%s_%s%s%s %.6g %s %.6g..%.6g n=%zu\n", figures[k].stem, argv[1],
                       figures[k].stat ? "_" : "", figures[k].stat ?: "", med, figures[k].unit, col[0],
                       col[n - 1], n);
                free(col);
        }
        free(v);
        return 0;
}
