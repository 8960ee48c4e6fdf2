/* SPDX-License-Identifier: Apache-2.0 */

/*
 * How fast and how big is owstats' work on a long session? Synthesises a
 * 1,000,000-packet session in memory, as the 25-octet records of an .owp
 * file (owping's default exponential schedule, 1 ms mean, so the engine
 * regenerates the SID-keyed schedule; 2 s loss timeout; about 1% loss
 * declared just before the timeout; 0.5% duplicates; some 1- and
 * 2-reordering), then times the default summary, -M, -v (into a discarding
 * sink) and -N 10000, decoding every record from its octets as owstats
 * would.
 *
 * Prints "owstats_1M_records_seconds X s" for the default summary, the
 * other timings, and the peak resident memory before and after (the
 * difference is what the statistics needed on top of the file image).
 *
 * bench-stats --write FILE.owp writes the same session as an .owp file
 * instead, for timing the owstats program (bench/run does both).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ow-owp.h"
#include "ow-report.h"
#include "ow-schedule.h"

#define N_PACKETS 1000000u
#define START (UINT64_C(3973000000) << 32)
#define MEAN_NSEC 1000000u
#define TIMEOUT (UINT64_C(2) << 32)
/* The receiver declares a loss a little before its 2 s timeout expires,
 * i.e. before a later arrival would settle the packet. */
#define LOSS_DECLARED (TIMEOUT - (TIMEOUT >> 4))

typedef struct Image {
        uint8_t *data;
        uint32_t n_records;
} Image;

static int image_get(void *userdata, uint32_t i, OwRecord *ret) {
        const Image *im = userdata;
        return ow_record_decode(im->data + (size_t) i * OW_RECORD_SIZE, ret);
}

static int discard(void *userdata, const char *data, size_t len) {
        size_t *total = userdata;
        (void) data;
        *total += len;
        return 0;
}

static uint32_t rng_state = 12345;
static uint32_t rng(void) {
        rng_state = rng_state * 1664525u + 1013904223u;
        return rng_state >> 8;
}

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static long peak_rss_kib(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_maxrss;
}

static void put(Image *im, size_t cap, const OwRecord *r) {
        if (im->n_records >= cap) {
                fprintf(stderr, "record image too small\n");
                exit(1);
        }
        ow_record_encode(r, im->data + (size_t) im->n_records * OW_RECORD_SIZE);
        im->n_records++;
}

static void synthesise(Image *im, OwSchedule *sched) {
        size_t cap = N_PACKETS + N_PACKETS / 50;
        uint32_t *pending = calloc(N_PACKETS / 50 + 16, sizeof(uint32_t));
        OwTimestamp *pending_send = calloc(N_PACKETS / 50 + 16, sizeof(OwTimestamp));
        size_t n_pending = 0, head = 0;
        uint32_t held = UINT32_MAX;
        OwTimestamp held_send = 0;

        im->data = malloc(cap * OW_RECORD_SIZE);
        im->n_records = 0;
        if (!im->data || !pending || !pending_send)
                exit(1);

        for (uint32_t k = 0; k < N_PACKETS; k++) {
                /* Losses become records once their timeout has passed. */
                OwTimestamp send = ow_schedule_next(sched, NULL);
                while (head < n_pending && pending_send[head] + LOSS_DECLARED <= send) {
                        OwRecord r = {
                                .seq = pending[head],
                                .send_err = OW_ERREST_UNSYNC,
                                .recv_err = OW_ERREST_UNSYNC,
                                .send_time = pending_send[head],
                                .ttl = 255,
                        };
                        head++;
                        put(im, cap, &r);
                }

                uint32_t x = rng() % 1000;
                if (x < 10) {
                        pending_send[n_pending] = send;
                        pending[n_pending++] = k;
                        continue;
                }
                OwRecord r = {
                        .seq = k,
                        .send_err = OW_ERREST_UNSYNC,
                        .recv_err = OW_ERREST_UNSYNC,
                        .send_time = send,
                        .recv_time = send + ow_duration_from_usec(100 + rng() % 1900),
                        .ttl = (uint8_t) (250 + rng() % 3),
                };
                if (x < 30 && held == UINT32_MAX) {
                        /* Held back behind the next one or two packets. */
                        held = k;
                        held_send = send;
                        continue;
                }
                put(im, cap, &r);
                if (rng() % 1000 < 5)
                        put(im, cap, &r); /* a duplicate */
                if (held != UINT32_MAX && (x % 2 == 0 || k > held + 1)) {
                        OwRecord h = r;
                        h.seq = held;
                        h.send_time = held_send;
                        put(im, cap, &h);
                        held = UINT32_MAX;
                }
        }
        while (head < n_pending) {
                OwRecord r = {
                        .seq = pending[head],
                        .send_err = OW_ERREST_UNSYNC,
                        .recv_err = OW_ERREST_UNSYNC,
                        .send_time = pending_send[head],
                        .ttl = 255,
                };
                head++;
                put(im, cap, &r);
        }
        free(pending);
        free(pending_send);
}

static double run(const OwReportSession *s, const OwReportOptions *o, const OwSink *sink, const char *what) {
        double t0 = now();
        int r = ow_report_session(s, o, sink, NULL);
        double t = now() - t0;
        if (r < 0) {
                fprintf(stderr, "%s failed: %d\n", what, r);
                exit(1);
        }
        return t;
}

/* The synthesised session as a finished version 3 .owp file, as owping -T
 * would save it, for timing the owstats program itself. */
static int write_owp(const char *path, const OwSessionRequest *req, const Image *im) {
        OwOwpHeader h;
        uint8_t hdr[4096];

        ow_owp_header_init_fetched(req->n_slots, OW_OWP_FINISHED_NORMAL, req->n_packets, 0, im->n_records,
                                   &h);
        int n = ow_owp_header_encode(&h, req, hdr, sizeof(hdr));
        if (n < 0)
                return n;
        FILE *f = fopen(path, "we");
        if (!f)
                return -1;
        bool ok = fwrite(hdr, 1, (size_t) n, f) == (size_t) n &&
                  fwrite(im->data, OW_RECORD_SIZE, im->n_records, f) == im->n_records;
        if (fclose(f) != 0 || !ok)
                return -1;
        return 0;
}

int main(int argc, char **argv) {
        OwSlot slot = { .type = OW_SLOT_EXPONENTIAL, .param = ow_duration_from_nsec(MEAN_NSEC) };
        OwSessionRequest req = {
                .ipvn = 4,
                .conf_receiver = true,
                .n_slots = 1,
                .n_packets = N_PACKETS,
                .sender_port = 8760,
                .receiver_port = 9000,
                .sender_addr = { 192, 0, 2, 1 },
                .receiver_addr = { 198, 51, 100, 7 },
                .start_time = START,
                .timeout = TIMEOUT,
                .slots = &slot,
        };
        OwSchedule *sched;
        Image im;

        for (size_t i = 0; i < OW_SID_SIZE; i++)
                req.sid.bytes[i] = (uint8_t) (0x10 + i);
        if (ow_schedule_new(&req.sid, &slot, 1, START, &sched) < 0)
                return 1;
        synthesise(&im, sched);
        ow_schedule_free(sched);
        if (argc == 3 && strcmp(argv[1], "--write") == 0) {
                if (write_owp(argv[2], &req, &im) < 0) {
                        fprintf(stderr, "bench-stats: cannot write %s\n", argv[2]);
                        return 1;
                }
                free(im.data);
                return 0;
        }
        if (argc != 1) {
                fprintf(stderr, "usage: bench-stats [--write FILE.owp]\n");
                return 2;
        }
        long rss_image = peak_rss_kib();

        OwReportSession s = {
                .request = &req,
                .finished = true,
                .records = { .n_records = im.n_records, .get = image_get, .userdata = &im },
        };
        OwReportOptions o;
        OwBuf summary = {};
        OwSink summary_sink = ow_buf_sink(&summary);
        size_t discarded = 0;
        OwSink null_sink = { discard, &discarded };

        ow_report_options_init(&o);
        double t_default = run(&s, &o, &summary_sink, "default");
        long rss_stats = peak_rss_kib();

        o.machine = true;
        double t_machine = run(&s, &o, &null_sink, "-M");
        o.machine = false;
        o.records = true;
        double t_records = run(&s, &o, &null_sink, "-v");
        o.records = false;
        o.sub_packets = 10000;
        double t_sub = run(&s, &o, &null_sink, "-N 10000");

        fputs(summary.data, stdout);
        printf("records %u (%zu octets of .owp records)\n", im.n_records,
               (size_t) im.n_records * OW_RECORD_SIZE);
        printf("owstats_1M_records_seconds %.3f s\n", t_default);
        printf("owstats_1M_records_machine_seconds %.3f s\n", t_machine);
        printf("owstats_1M_records_v_seconds %.3f s (%zu octets of -v output)\n", t_records, discarded);
        printf("owstats_1M_records_N10000_seconds %.3f s\n", t_sub);
        printf("peak_rss_kib %ld (record image alone: %ld; statistics added: %ld)\n", peak_rss_kib(),
               rss_image, rss_stats - rss_image);

        ow_buf_done(&summary);
        free(im.data);
        return 0;
}
