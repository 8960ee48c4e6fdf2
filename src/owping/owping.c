/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owping: the OWAMP client (RFC 4656). Requests a session to and/or from a
 * server, runs the local endpoints in session workers, exchanges
 * Stop-Sessions, fetches what the server received and prints the results
 * in the reference's formats.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "client-args.h"
#include "client.h"
#include "clock.h"
#include "config.h"
#include "launcher.h"
#include "log.h"
#include "macro.h"
#include "net.h"
#include "ow-error.h"
#include "ow-owp.h"
#include "ow-pfs.h"
#include "ow-receiver.h"
#include "ow-report.h"
#include "ow-schedule.h"
#include "ow-sid.h"
#include "ow-stats.h"
#include "ow-testpkt.h"
#include "random-util.h"
#include "report-io.h"
#include "usage.h"
#include "worker-path.h"
#include "worker-ipc.h"

#define DEFAULT_PORT_LOW 8760
#define DEFAULT_PORT_HIGH 9960
#define MAX_PADDING 65000

static volatile sig_atomic_t interrupted;

typedef struct PingOptions {
        ClientArgs conn; /* -4 -6 -A -k -S -u -B -m */
        bool to, from;
        const char *save_to, *save_from;
        uint32_t count;
        OwSlot *slots;
        uint32_t n_slots;
        double loss_timeout; /* -L, seconds; <= 0: RTT + 2 s */
        uint32_t padding;
        uint32_t type_p;
        uint16_t port_low, port_high;
        double delay_start; /* -z */
        double enddelay;    /* -E */
        bool have_enddelay;
        OwReportOptions report;
        float *percentiles;
} PingOptions;

/* One local test endpoint (a worker) and what it produced. */
typedef struct Ping Ping;

typedef struct Endpoint {
        Ping *ping;
        bool we_send;
        OwSessionRequest req; /* owns slots */
        SockAddr local, peer;
        int udp_fd;
        int ctl_fd;
        Worker *worker;
        sd_event_source *src;
        WorkerBuf in, out;
        bool ready, done, failed;
        WorkerDone result;
        OwRecord *records;
        size_t n_records, cap_records;
} Endpoint;

struct Ping {
        PingOptions *o;
        Client client;
        sd_event *event;
        Launcher *launcher;
        Endpoint ep[2];
        size_t n_ep;
        sd_event_source *ctl_src;
        bool our_stop_sent;
        bool server_stop_received;
        OwStopSessions server_stop;
        OwTimestamp server_stop_time;
        bool stopping;
        bool failed;
        const char *testaddr;
        SockAddr test_peer;
};

static const struct option longopts[] = {
        { "ipv4", no_argument, NULL, '4' },
        { "ipv6", no_argument, NULL, '6' },
        { "auth-mode", required_argument, NULL, 'A' },
        { "pass-phrase-file", required_argument, NULL, 'k' },
        { "source", required_argument, NULL, 'S' },
        { "user", required_argument, NULL, 'u' },
        { "interface", required_argument, NULL, 'B' },
        { "control-dscp", required_argument, NULL, 'm' },
        { "count", required_argument, NULL, 'c' },
        { "dscp", required_argument, NULL, 'D' },
        { "end-delay", required_argument, NULL, 'E' },
        { "save-from", required_argument, NULL, 'F' },
        { "from", no_argument, NULL, 'f' },
        { "interval", required_argument, NULL, 'i' },
        { "loss-timeout", required_argument, NULL, 'L' },
        { "port-range", required_argument, NULL, 'P' },
        { "padding", required_argument, NULL, 's' },
        { "delay-start", required_argument, NULL, 'z' },
        { "save-to", required_argument, NULL, 'T' },
        { "to", no_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        REPORT_LONG_OPTIONS,
        USAGE_VERSION_OPTION,
        {},
};

/* On stderr, as the reference: msg ("" for -h) on its own line first. */
static void usage(const char *msg) {
        FILE *f = stderr;
        if (msg)
                fprintf(f, "owping: %s\n", msg);
        fprintf(f,
                "usage: owping [arguments] testaddr [servaddr]\n"
                "[arguments] are as follows: \n"
                "\n"
                "   -h             print this message and exit\n"
                "\n"
                "              [Test Args]\n"
                "\n"
                "   -c count       number of test packets\n"
                "   -D DSCP        RFC 2474 style DSCP value for TOS byte\n"
                "   -f | -F file   perform one-way test from testhost [and save results to file]\n"
                "   -i wait        mean average time between packets (seconds)\n"
                "   -L timeout     maximum time to wait for a packet before declaring it lost (seconds)\n"
                "   -P portrange   port range to use during the test\n"
                "   -s padding     size of the padding added to each packet (bytes)\n"
                "   -t | -T file   perform one-way test to testhost [and save results to file]\n"
                "   -z delayStart  time to wait before executing test (seconds)\n"
                "\n"
                "              [Connection Args]\n"
                "\n"
                "   -A authmode    requested modes: [A]uthenticated, [E]ncrypted, [O]pen\n"
                "   -k passphrasefile     passphrasefile to use with Authenticated/Encrypted modes\n"
                "   -S srcaddr     specify the local address or interface for control connection and tests\n"
                "   -B interface   specify the interface to use for control connection and tests\n"
                "   -u username    username to use with Authenticated/Encrypted modes\n"
                "   -4             connect using IPv4 addresses only\n"
                "   -6             connect using IPv6 addresses only\n"
                "\n"
                "              [Output Args]\n"
                "\n"
                "   -a alpha       report an additional percentile level for the delays\n"
                "   -b bucketwidth bin size for histogram calculations\n"
                "   -M             print machine (perl) readable summary\n"
                "   -n units       'n','u','m', or 's'\n"
                "   -N count       number of test packets (to summarize per sub-session)\n"
                "   -Q             run the test and exit without reporting statistics\n"
                "   -R             print RAW data: \"SEQNO STIME SS SERR RTIME RS RERR TTL\\n\"\n"
                "   -v[N]          print out individual delays. You can supply an optional N here to limit the print to the first N packets\n"
                "   -U             Adds UNIX timestamps when printing individual delays\n"
                "\n"
                "Version: %s\n\n",
                PACKAGE_VERSION);
        usage_more(f, "   -E enddelay    time to wait after the last packet before stopping the sessions "
                      "(seconds)\n"
                      "   -X, -Y, -y     accepted and ignored (NAT options of the reference's later "
                      "versions)\n" CLIENT_USAGE_MORE REPORT_USAGE_MORE
                      "   --version      print the version and exit\n");
        usage_long_options(f, longopts);
}

static int fail(const char *fmt, ...) _printf_(1, 2);
static int fail(const char *fmt, ...) {
        va_list ap;
        fputs("owping: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return EXIT_FAILURE;
}

/* -i: "0.1", "0.1e", "0.02f", comma lists for several slots. */
static int parse_slots(const char *spec, OwSlot **ret, uint32_t *ret_n) {
        _cleanup_free_ char *copy = strdup(spec);
        _cleanup_free_ OwSlot *slots = NULL;
        uint32_t n = 1, i = 0;

        if (!copy)
                return -ENOMEM;
        for (const char *p = spec; *p; p++)
                if (*p == ',')
                        n++;
        if (n > OW_MAX_SLOTS)
                return -E2BIG;
        slots = calloc(n, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *end;
                errno = 0;
                double v = strtod(tok, &end);
                if (errno || end == tok || !(v > 0) || v > 3600 * 24)
                        return -EINVAL;
                if (*end == 0 || ((*end == 'e' || *end == 'E') && end[1] == 0))
                        slots[i].type = OW_SLOT_EXPONENTIAL;
                else if ((*end == 'f' || *end == 'F') && end[1] == 0)
                        slots[i].type = OW_SLOT_FIXED;
                else
                        return -EINVAL;
                slots[i].param = (OwTimestamp) (v * 4294967296.0); /* as the reference: v * 2^32, truncated */
                if (slots[i].param == 0)
                        return -EINVAL;
                i++;
        }
        if (i != n)
                return -EINVAL;
        *ret = TAKE_PTR(slots);
        *ret_n = n;
        return 0;
}

static int parse_double(const char *s, double min, double max, double *ret) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || *end || !(v >= min) || !(v <= max))
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_u32(const char *s, uint32_t *ret) {
        char *end;
        if (!*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

/* --- Endpoints ------------------------------------------------------------ */

static void endpoint_done(Ping *p, Endpoint *e) {
        if (e->worker) {
                /* One that reported DONE is on its way out; any other
                 * (we are giving up) must not be waited for. */
                if (!e->done)
                        p->launcher->ops->kill(e->worker);
                p->launcher->ops->release(e->worker);
        }
        sd_event_source_disable_unref(e->src);
        safe_close(e->ctl_fd);
        safe_close(e->udp_fd);
        worker_buf_done(&e->in);
        worker_buf_done(&e->out);
        free(e->result.skips);
        free(e->records);
        ow_session_request_done(&e->req);
}

static void flush_endpoint(Endpoint *e) {
        if (e->out.len == 0 || e->ctl_fd < 0)
                return;
        ssize_t n = send(e->ctl_fd, e->out.data, e->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
                worker_buf_consume(&e->out, (size_t) n);
        if (e->src)
                (void) sd_event_source_set_io_events(e->src, EPOLLIN | (e->out.len ? EPOLLOUT : 0));
}

static void ping_progress(Ping *p);

static int add_records(Endpoint *e, const uint8_t *data, size_t n) {
        if (n > SIZE_MAX / sizeof(OwRecord) - e->n_records)
                return -ENOMEM;
        if (e->n_records + n > e->cap_records) {
                size_t cap = MAX(e->cap_records * 2, e->n_records + n);
                cap = MAX(cap, (size_t) 256);
                OwRecord *r = realloc(e->records, cap * sizeof(OwRecord));
                if (!r)
                        return -ENOMEM;
                e->records = r;
                e->cap_records = cap;
        }
        for (size_t i = 0; i < n; i++)
                if (ow_record_decode(data + i * OW_RECORD_SIZE, &e->records[e->n_records]) >= 0)
                        e->n_records++;
        return 0;
}

static void endpoint_message(Endpoint *e, uint32_t type, const uint8_t *m, size_t len) {
        int r;

        switch (type) {
        case WORKER_MSG_READY:
                e->ready = true;
                return;
        case WORKER_MSG_RECORDS:
                r = worker_records_count(m, len);
                if (r < 0 || e->we_send || add_records(e, m, (size_t) r) < 0)
                        e->failed = true;
                return;
        case WORKER_MSG_DONE:
                if (worker_done_parse(m, len, &e->result) < 0)
                        e->failed = true;
                e->done = true;
                return;
        case WORKER_MSG_ERROR: {
                char text[256];
                int err;
                if (worker_error_parse(m, len, &err, text, sizeof(text)) >= 0)
                        fprintf(stderr, "owping: test endpoint failed: %s: %s\n", text, ow_strerror(err));
                e->failed = true;
                return;
        }
        }
        e->failed = true;
}

static int on_endpoint_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Endpoint *e = userdata;

        (void) src;
        (void) fd;
        if (revents & EPOLLOUT)
                flush_endpoint(e);
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                int r = worker_read_some(e->ctl_fd, &e->in);
                if (r == -EAGAIN)
                        return 0;
                bool eof = r <= 0;
                for (;;) {
                        uint32_t type;
                        const uint8_t *m;
                        size_t len;
                        r = worker_msg_peek(&e->in, &type, &m, &len);
                        if (r <= 0) {
                                if (r < 0)
                                        eof = e->failed = true;
                                break;
                        }
                        endpoint_message(e, type, m, len);
                        worker_buf_consume(&e->in, 8 + len);
                }
                if (eof) {
                        e->src = sd_event_source_disable_unref(e->src);
                        e->ctl_fd = safe_close(e->ctl_fd);
                        if (!e->done)
                                e->failed = e->done = true;
                }
        }
        ping_progress(e->ping);
        return 0;
}

static void on_endpoint_exit(Worker *w, int status, void *userdata) {
        Endpoint *e = userdata;
        (void) w;
        if (status != 0 && !e->done)
                fprintf(stderr, "owping: test endpoint ended with status %d\n", status);
        e->ping->launcher->ops->release(e->worker);
        e->worker = NULL;
        if (e->ctl_fd < 0 && !e->done)
                e->failed = e->done = true;
        ping_progress(e->ping);
}

static int endpoint_launch(Ping *p, Endpoint *e) {
        Client *c = &p->client;
        int sv[2], r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        e->ctl_fd = sv[0];
        WorkerSetup setup;
        OwTestKeys keys = {};
        if (c->mode != OW_MODE_OPEN)
                ow_testpkt_derive_keys(&e->req.sid, c->keys.aes, c->keys.hmac, &keys);
        worker_setup_init(&setup, e->we_send ? WORKER_ROLE_SENDER : WORKER_ROLE_RECEIVER, c->mode, &e->req,
                          &e->peer, &keys);
        ow_wipe(&keys, sizeof(keys));
        setup.clock_offset_nsec = client_clock_offset_nsec();
        setup.enddelay_nsec = p->o->have_enddelay ? (uint64_t) (p->o->enddelay * 1e9) : 1000000000;
        r = worker_setup_append(&e->out, &setup);
        ow_wipe(&setup, sizeof(setup));
        if (r < 0) {
                safe_close(sv[1]);
                return r;
        }
        char hex[OW_SID_HEX_SIZE];
        WorkerSpec spec = {
                .sid_hex = ow_sid_to_hex(&e->req.sid, hex),
                .description = e->we_send ? "owping sender" : "owping receiver",
                .log_max_priority = LOG_WARNING,
        };
        r = launcher_start(p->launcher, &spec, e->udp_fd, sv[1], on_endpoint_exit, e, &e->worker);
        safe_close(sv[1]);
        if (r < 0)
                return r;
        e->udp_fd = safe_close(e->udp_fd);
        r = sd_event_add_io(p->event, &e->src, e->ctl_fd, EPOLLIN | EPOLLOUT, on_endpoint_io, e);
        if (r < 0)
                return r;
        flush_endpoint(e);
        return 0;
}

/* Wait (in the event loop) until every endpoint reported READY. */
static int wait_ready(Ping *p) {
        for (unsigned spins = 0; spins < 3000; spins++) {
                bool all = true;
                for (size_t i = 0; i < p->n_ep; i++) {
                        if (p->ep[i].failed)
                                return -EIO;
                        if (!p->ep[i].ready)
                                all = false;
                }
                if (all)
                        return 0;
                int r = sd_event_run(p->event, 10 * 1000);
                if (r < 0)
                        return r;
        }
        return -ETIMEDOUT;
}

/* --- The test ------------------------------------------------------------- */

static void send_our_stop(Ping *p) {
        OwStopSessions st = { .accept = OW_ACCEPT_OK };
        OwStopSession list[2];
        uint32_t n = 0;

        for (size_t i = 0; i < p->n_ep; i++) {
                Endpoint *e = &p->ep[i];
                if (e->failed)
                        st.accept = OW_ACCEPT_FAILURE;
                if (!e->we_send)
                        continue;
                list[n++] = (OwStopSession) {
                        .sid = e->req.sid,
                        .next_seqno = e->result.next_seqno,
                        .n_skip_ranges = e->result.n_skips,
                        .skip_ranges = e->result.skips,
                };
        }
        st.n_sessions = n;
        st.sessions = list;
        if (client_send_stop(&p->client, &st) < 0) {
                fprintf(stderr, "owping: %s\n", p->client.error);
                p->failed = true;
        }
        p->our_stop_sent = true;
}

static void stop_endpoints(Ping *p) {
        if (p->stopping)
                return;
        p->stopping = true;
        OwTimestamp now = client_now();
        for (size_t i = 0; i < p->n_ep; i++) {
                Endpoint *e = &p->ep[i];
                if (e->done || e->ctl_fd < 0)
                        continue;
                WorkerStop ws = { .stop_time = p->server_stop_received ? p->server_stop_time : now };
                for (uint32_t k = 0; p->server_stop_received && k < p->server_stop.n_sessions; k++)
                        if (ow_sid_equal(&p->server_stop.sessions[k].sid, &e->req.sid)) {
                                ws.has_next_seqno = true;
                                ws.next_seqno = p->server_stop.sessions[k].next_seqno;
                        }
                (void) worker_stop_append(&e->out, &ws);
                flush_endpoint(e);
        }
}

static void ping_progress(Ping *p) {
        bool all_done = true;
        for (size_t i = 0; i < p->n_ep; i++)
                if (!p->ep[i].done)
                        all_done = false;
        if (all_done && !p->our_stop_sent)
                send_our_stop(p);
        if ((p->our_stop_sent && p->server_stop_received) || p->failed)
                (void) sd_event_exit(p->event, p->failed ? -EIO : 0);
}

static int on_control_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Ping *p = userdata;
        (void) src;
        (void) fd;
        (void) revents;

        int r = client_poll_stop(&p->client, &p->server_stop);
        if (r < 0) {
                fprintf(stderr, "owping: %s\n", p->client.error);
                p->failed = true;
                return sd_event_exit(p->event, -EIO);
        }
        if (r == 0)
                return 0;
        p->server_stop_received = true;
        p->server_stop_time = client_now();
        p->ctl_src = sd_event_source_disable_unref(p->ctl_src);
        if (p->server_stop.accept != OW_ACCEPT_OK) {
                fprintf(stderr, "owping: the server reports failed sessions: %s\n",
                        ow_accept_to_string(p->server_stop.accept));
                p->failed = true;
        }
        /* The server is done first: end our endpoints now (RFC 4656 3.8). */
        stop_endpoints(p);
        ping_progress(p);
        return 0;
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        Ping *p = userdata;
        (void) src;
        (void) si;
        if (interrupted++ > 0)
                exit(2);
        stop_endpoints(p);
        return 0;
}

static int on_guard(sd_event_source *src, uint64_t usec, void *userdata) {
        Ping *p = userdata;
        (void) src;
        (void) usec;
        fprintf(stderr, "owping: the test ran far past its schedule; giving up\n");
        p->failed = true;
        return sd_event_exit(p->event, -ETIMEDOUT);
}

/* --- Results -------------------------------------------------------------- */

static void clean_from_records(Ping *p, Endpoint *e, bool *ret_invalid) {
        uint32_t next_seqno = e->req.n_packets;
        for (uint32_t k = 0; p->server_stop_received && k < p->server_stop.n_sessions; k++)
                if (ow_sid_equal(&p->server_stop.sessions[k].sid, &e->req.sid)) {
                        next_seqno = p->server_stop.sessions[k].next_seqno;
                        free(e->result.skips);
                        e->result.n_skips = p->server_stop.sessions[k].n_skip_ranges;
                        e->result.skips = NULL;
                        if (e->result.n_skips) {
                                e->result.skips = calloc(e->result.n_skips, sizeof(OwSkipRange));
                                if (e->result.skips)
                                        memcpy(e->result.skips, p->server_stop.sessions[k].skip_ranges,
                                               e->result.n_skips * sizeof(OwSkipRange));
                                else
                                        e->result.n_skips = 0;
                        }
                }
        e->result.next_seqno = next_seqno;
        size_t kept = 0;
        *ret_invalid = false;
        for (size_t i = 0; i < e->n_records; i++) {
                OwCleanVerdict v = ow_record_clean_verdict(&e->records[i], next_seqno, p->server_stop_time,
                                                           e->req.timeout);
                if (v == OW_CLEAN_INVALID)
                        *ret_invalid = true;
                if (v == OW_CLEAN_KEEP)
                        e->records[kept++] = e->records[i];
        }
        e->n_records = kept;
}

static int write_file(const char *path, const uint8_t *hdr, size_t hdr_len, const OwSkipRange *skips,
                      uint32_t n_skips, const OwRecord *recs, uint32_t n_recs, bool skips_first) {
        FILE *f = fopen(path, "we");
        if (!f)
                return -errno;
        uint8_t b[OW_RECORD_SIZE];
        fwrite(hdr, 1, hdr_len, f);
        for (int pass = 0; pass < 2; pass++) {
                if ((pass == 0) == skips_first)
                        for (uint32_t i = 0; i < n_skips; i++) {
                                ow_skip_range_encode(&skips[i], b);
                                fwrite(b, 1, OW_SKIP_RANGE_SIZE, f);
                        }
                else
                        for (uint32_t i = 0; i < n_recs; i++) {
                                ow_record_encode(&recs[i], b);
                                fwrite(b, 1, OW_RECORD_SIZE, f);
                        }
        }
        if (ferror(f) | (fclose(f) != 0))
                return -EIO;
        return 0;
}

/* -F: what a receiver writes, octet for octet (PROTOCOL.md 11). */
static int save_received(const char *path, const Endpoint *e) {
        size_t size = ow_owp_header_size(e->req.n_slots);
        _cleanup_free_ uint8_t *hdr = malloc(size);
        OwOwpHeader h;
        OwOwpPatch p1, p2[2], p3;
        if (!hdr)
                return -ENOMEM;
        ow_owp_header_init_receiver(e->req.n_slots, &h);
        int r = ow_owp_header_encode(&h, &e->req, hdr, size);
        if (r >= 0)
                r = ow_owp_header_set_n_records(&h, (uint32_t) e->n_records, &p1);
        if (r >= 0)
                r = ow_owp_header_set_n_skips(&h, e->result.n_skips, p2);
        if (r >= 0)
                r = ow_owp_header_set_finished(&h, OW_OWP_FINISHED_NORMAL, e->result.next_seqno, &p3);
        if (r >= 0)
                r = ow_owp_patch_apply(&p1, hdr, size);
        if (r >= 0)
                r = ow_owp_patch_apply(&p2[0], hdr, size);
        if (r >= 0)
                r = ow_owp_patch_apply(&p2[1], hdr, size);
        if (r >= 0)
                r = ow_owp_patch_apply(&p3, hdr, size);
        if (r < 0)
                return r;
        return write_file(path, hdr, size, e->result.skips, e->result.n_skips, e->records, (uint32_t) e->n_records,
                          false);
}

/* -T: what a fetch client writes (skip ranges first). */
static int save_fetched(const char *path, const ClientFetch *f) {
        size_t size = ow_owp_header_size(f->req.n_slots);
        _cleanup_free_ uint8_t *hdr = malloc(size);
        OwOwpHeader h;
        if (!hdr)
                return -ENOMEM;
        ow_owp_header_init_fetched(f->req.n_slots, f->ack.finished, f->ack.next_seqno, f->ack.n_skip_ranges,
                                   f->ack.n_records, &h);
        int r = ow_owp_header_encode(&h, &f->req, hdr, size);
        if (r < 0)
                return r;
        return write_file(path, hdr, size, f->skips, f->ack.n_skip_ranges, f->records, f->ack.n_records, true);
}

typedef struct ArraySource {
        const OwRecord *records;
} ArraySource;

static int array_get(void *userdata, uint32_t i, OwRecord *ret) {
        *ret = ((ArraySource *) userdata)->records[i];
        return 0;
}

static int report(const PingOptions *o, const OwSessionRequest *req, const OwSkipRange *skips, size_t n_skips,
                  const OwRecord *records, uint32_t n_records, const char *from, const char *to, OwMode mode) {
        ArraySource src = { .records = records };
        int r;
        OwReportSession s = {
                .request = req,
                .skips = skips,
                .n_skips = n_skips,
                .finished = true,
                .from_host = from,
                .to_host = to,
                .mode = ow_mode_to_string(mode),
                .records = { .n_records = n_records, .get = array_get, .userdata = &src },
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

/* --- main ------------------------------------------------------------------ */

static int bind_test_socket(const SockAddr *local, uint16_t low, uint16_t high, const char *interface,
                            SockAddr *ret) {
        SockAddr a = *local;
        uint16_t port;
        sockaddr_set_port(&a, 0);
        int fd = udp_bind_in_range(&a, low, high, &port);
        if (fd < 0)
                return fd;
        if (interface && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, interface, (socklen_t) strlen(interface)) < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        sockaddr_set_port(&a, port);
        *ret = a;
        return fd;
}

static double packet_rate(const OwSessionRequest *req) {
        double sum = 0;
        for (uint32_t i = 0; i < req->n_slots; i++)
                sum += (double) req->slots[i].param / 4294967296.0;
        return sum > 0 ? req->n_slots / sum : 0;
}

static int parse_args(int argc, char **argv, PingOptions *o, int *ret_optind) {
        /* No '+': options may follow the addresses, as GNU getopt lets them
         * with the reference. */
        static const char optstring[] = "64A:k:S:u:B:XYym:c:D:E:F:i:L:P:s:z:" REPORT_SHORT_OPTIONS "hftT:";
        const char *msg = NULL;
        int c, r;
        uint8_t dscp;

        ow_report_options_init(&o->report);
        o->count = 100;
        o->port_low = DEFAULT_PORT_LOW;
        o->port_high = DEFAULT_PORT_HIGH;
        client_args_init(&o->conn);

        while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
                /* The output options, shared with owstats and owfetch. */
                r = report_args_parse(&o->report, &o->percentiles, c, optarg, &msg);
                if (r < 0) {
                        usage(msg);
                        return EXIT_FAILURE;
                }
                if (r > 0)
                        continue;
                r = client_args_parse(&o->conn, "owping", c, optarg);
                if (r < 0)
                        return EXIT_FAILURE;
                if (r > 0)
                        continue;
                switch (c) {
                case 'X':
                case 'Y':
                case 'y':
                        fprintf(stderr, "owping: -%c (NAT traversal) is not supported; ignoring it\n", c);
                        break;
                case 'c':
                        if (parse_u32(optarg, &o->count) < 0 || o->count == 0)
                                return fail("Invalid -c value '%s': positive integer expected", optarg);
                        break;
                case 'D':
                        if (ow_dscp_from_string(optarg, &dscp) < 0)
                                return fail("Invalid DSCP value (-D): \"%s\"", optarg);
                        o->type_p = ow_typep_from_dscp(dscp);
                        break;
                case 'E':
                        if (parse_double(optarg, 0, 86400, &o->enddelay) < 0)
                                return fail("Invalid '-E' value '%s': positive float expected", optarg);
                        o->have_enddelay = true;
                        break;
                case 'F':
                        o->save_from = optarg;
                        _fallthrough_;
                case 'f':
                        o->from = true;
                        break;
                case 'T':
                        o->save_to = optarg;
                        _fallthrough_;
                case 't':
                        o->to = true;
                        break;
                case 'i':
                        free(o->slots);
                        o->slots = NULL;
                        if (parse_slots(optarg, &o->slots, &o->n_slots) < 0)
                                return fail("Invalid schedule (-i) '%s'", optarg);
                        break;
                case 'L':
                        if (parse_double(optarg, 0, 86400, &o->loss_timeout) < 0)
                                return fail("Invalid '-L' value '%s': positive float expected", optarg);
                        break;
                case 'P':
                        if (net_parse_port_range(optarg, &o->port_low, &o->port_high) < 0)
                                return fail("Invalid test port range (-P) '%s'", optarg);
                        break;
                case 's':
                        if (parse_u32(optarg, &o->padding) < 0)
                                return fail("Invalid -s value '%s': positive integer expected", optarg);
                        if (o->padding > MAX_PADDING)
                                o->padding = MAX_PADDING;
                        break;
                case 'z':
                        if (parse_double(optarg, 0, 86400 * 365, &o->delay_start) < 0)
                                return fail("Invalid '-z' value '%s': positive float expected", optarg);
                        break;
                case USAGE_ARG_VERSION:
                        usage_version("owping");
                        exit(EXIT_SUCCESS);
                default: /* -h, or an option getopt did not know: the reference exits 0 */
                        usage("");
                        exit(EXIT_SUCCESS);
                }
        }
        if (!o->to && !o->from)
                o->to = o->from = true;
        if (!o->slots) {
                o->slots = calloc(1, sizeof(OwSlot));
                if (!o->slots)
                        return fail("Out of memory");
                o->slots[0] = (OwSlot) { .type = OW_SLOT_EXPONENTIAL, .param = ow_duration_from_nsec(100000000) };
                o->n_slots = 1;
        }
        *ret_optind = optind;
        return 0;
}

/* Everything main() may have set up, on every way out of it, so that
 * LeakSanitizer sees a refused or failed run end as cleanly as a good one. */
static void ping_done(Ping *p) {
        for (size_t i = 0; i < p->n_ep; i++)
                endpoint_done(p, &p->ep[i]);
        ow_stop_sessions_done(&p->server_stop);
        sd_event_source_disable_unref(p->ctl_src);
        launcher_free(p->launcher);
        sd_event_unref(p->event);
        client_done(&p->client);
        free(p->o->slots);
        free(p->o->percentiles);
}

int main(int argc, char **argv) {
        PingOptions o = {};
        _cleanup_(ping_done) Ping ping = { .o = &o, .client = { .fd = -1, .io = { .fd = -1 } } };
        Ping *p = &ping;
        const char *warnings[OW_REPORT_MAX_WARNINGS];
        int first = 0, r;

        r = parse_args(argc, argv, &o, &first);
        if (r != 0)
                return r;
        if (argc - first < 1 || argc - first > 2) {
                usage(NULL);
                return EXIT_FAILURE;
        }
        const char *server = argc - first == 2 ? argv[first + 1] : argv[first];
        /* Reports name the server end as typed, without the port. */
        _cleanup_free_ char *test_node = NULL;
        uint16_t test_port;
        if (net_split_node(argv[first], OWAMP_CONTROL_PORT, &test_node, &test_port) < 0 || !test_node)
                return fail("Invalid address '%s'", argv[first]);
        p->testaddr = test_node;

        size_t nw = ow_report_options_reconcile(&o.report, warnings);
        for (size_t i = 0; i < nw; i++)
                fprintf(stderr, "owping: %s\n", warnings[i]);
        /* first:/last: in local time, as the reference prints them. */
        tzset();
        o.report.localtime = localtime_r;

        log_setup("owping", LOG_TARGET_NONE, LOG_USER, true, LOG_WARNING);
        int64_t offset;
        if (clock_offset_from_env(&offset) < 0)
                return fail("Invalid OWAMP_DEBUG_TIMEOFFSET '%s': seconds expected", getenv("OWAMP_DEBUG_TIMEOFFSET"));

        /* A missing pass-phrase is a failure of its own here, with its one
         * line, where the reference would go on without the identity. */
        bool want_usage;
        r = client_args_setup(&o.conn, "owping", true, &want_usage);
        if (r < 0) {
                if (want_usage)
                        usage(NULL);
                return EXIT_FAILURE;
        }
        r = client_args_connect(&o.conn, "owping", server, true, &p->client);
        client_args_done(&o.conn);
        if (r < 0)
                return EXIT_FAILURE;

        /* The test peer: the server itself, unless testaddr names another host. */
        p->test_peer = p->client.peer;
        if (argc - first == 2) {
                _cleanup_free_ char *node = NULL;
                _cleanup_free_ SockAddr *addrs = NULL;
                size_t n;
                uint16_t port;
                if (net_split_node(argv[first], 0, &node, &port) < 0 || !node ||
                    net_resolve(node, 0, p->client.peer.sa.sa_family, false, &addrs, &n) < 0)
                        return fail("Unable to resolve test address %s", p->testaddr);
                p->test_peer = addrs[0];
        }

        double rtt = (double) p->client.rtt_usec / 1e6;
        double timeout = o.loss_timeout > 0 ? o.loss_timeout : rtt + 2.0;
        if (timeout < o.report.bucket_width)
                return fail("Invalid test specification: LossThreshold(%f) '-L' < BucketWidth (%f) '-b'", timeout,
                            o.report.bucket_width);
        unsigned n_rtt = 1 + (o.to ? 1 : 0) + (o.from ? 1 : 0);
        double delay = n_rtt * rtt + 1.0;
        if (o.delay_start > delay)
                delay = o.delay_start;
        OwTimestamp start = client_now() + ow_duration_from_nsec((uint64_t) (delay * 1e9));

        r = sd_event_new(&p->event);
        if (r < 0)
                return fail("Cannot create the event loop: %s", strerror(-r));
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        (void) sd_event_add_signal(p->event, NULL, SIGINT, on_signal, p);
        (void) sd_event_add_signal(p->event, NULL, SIGTERM, on_signal, p);
        (void) sd_event_add_signal(p->event, NULL, SIGHUP, on_signal, p);
        _cleanup_free_ char *worker = NULL;
        r = worker_path_find(&worker);
        if (r == -ENOMEM)
                return fail("Out of memory");
        if (r < 0)
                return fail("The session worker %s cannot be run (%s): " WORKER_PATH_HINT, worker,
                            strerror(-r));
        r = launcher_fork_new(p->event, worker, &p->launcher);
        if (r < 0)
                return fail("Cannot set up test endpoints: %s", strerror(-r));
        setenv("OWAMP_LOG_STDERR", "1", 1);

        /* Requests: "to" first, then "from", as the reference does. */
        for (int dir = 0; dir < 2; dir++) {
                bool send = dir == 0;
                if ((send && !o.to) || (!send && !o.from))
                        continue;
                Endpoint *e = &p->ep[p->n_ep];
                *e = (Endpoint) { .ping = p, .we_send = send, .udp_fd = -1, .ctl_fd = -1 };
                p->n_ep++;
                SockAddr local = p->client.local;
                r = bind_test_socket(&local, o.port_low, o.port_high, o.conn.client.interface, &e->local);
                if (r < 0)
                        return fail("Unable to bind a test socket in ports %u-%u: %s", o.port_low, o.port_high,
                                    strerror(-r));
                e->udp_fd = r;

                OwSessionRequest *req = &e->req;
                req->conf_sender = !send;
                req->conf_receiver = send;
                req->n_packets = o.count;
                req->padding_length = o.padding;
                req->start_time = start;
                req->timeout = ow_duration_from_nsec((uint64_t) (timeout * 1e9));
                req->type_p = o.type_p;
                req->n_slots = o.n_slots;
                req->slots = calloc(o.n_slots, sizeof(OwSlot));
                if (!req->slots)
                        return fail("Out of memory");
                memcpy(req->slots, o.slots, o.n_slots * sizeof(OwSlot));
                uint8_t ipvn, our[16], their[16];
                sockaddr_to_owamp(&e->local, &ipvn, our);
                sockaddr_to_owamp(&p->test_peer, &ipvn, their);
                req->ipvn = ipvn;
                if (send) {
                        memcpy(req->sender_addr, our, 16);
                        req->sender_port = sockaddr_port(&e->local);
                        memcpy(req->receiver_addr, their, 16);
                } else {
                        memcpy(req->sender_addr, their, 16);
                        memcpy(req->receiver_addr, our, 16);
                        req->receiver_port = sockaddr_port(&e->local);
                        uint8_t rnd[OW_SID_RANDOM_SIZE];
                        if (random_bytes(rnd, sizeof(rnd)) < 0 ||
                            ow_sid_make_from_sockaddr(&e->local.sa, sockaddr_len(&e->local), client_now(), rnd,
                                                      &req->sid) < 0)
                                return fail("Cannot make a SID");
                }

                OwAccept accept;
                r = client_request_session(&p->client, req, &accept);
                if (r < 0)
                        return fail("%s", p->client.error);
                if (accept != OW_ACCEPT_OK)
                        return fail("Session %s %s refused by the server: %s", send ? "to" : "from", server,
                                    ow_accept_to_string(accept));
                e->peer = p->test_peer;
                sockaddr_set_port(&e->peer, send ? req->receiver_port : req->sender_port);

                /* Receivers listen before Start-Sessions; senders wait for
                 * START after a positive Start-Ack. */
                r = endpoint_launch(p, e);
                if (r < 0)
                        return fail("Cannot start the test endpoint: %s", strerror(-r));
        }
        r = wait_ready(p);
        if (r < 0)
                return fail("Test endpoints failed to start: %s", strerror(-r));

        OwAccept accept;
        r = client_start_sessions(&p->client, &accept);
        if (r < 0)
                return fail("%s", p->client.error);
        if (accept != OW_ACCEPT_OK)
                return fail("Start-Sessions refused by the server: %s", ow_accept_to_string(accept));
        for (size_t i = 0; i < p->n_ep; i++)
                if (p->ep[i].we_send) {
                        (void) worker_msg_append(&p->ep[i].out, WORKER_MSG_START, NULL, 0);
                        flush_endpoint(&p->ep[i]);
                }

        if (!o.report.quiet) {
                double duration = 0, rate = packet_rate(&p->ep[0].req);
                if (rate > 0)
                        duration = o.count / rate;
                duration += timeout + rtt;
                double end = (double) ow_duration_to_nsec(start - MIN(start, client_now())) / 1e9 + duration;
                /* --json keeps stdout for the documents. */
                FILE *f = o.report.json ? stderr : stdout;
                fprintf(f, "Approximately %.1f seconds until results available\n", end);
                fflush(f);
        }

        r = sd_event_add_io(p->event, &p->ctl_src, p->client.fd, EPOLLIN, on_control_io, p);
        if (r < 0)
                return fail("Cannot watch the control connection: %s", strerror(-r));
        double est = (double) ow_duration_to_nsec(start - MIN(start, client_now())) / 1e9;
        double rate = packet_rate(&p->ep[0].req);
        est += (rate > 0 ? o.count / rate * 1.5 : 0) + timeout + 120;
        uint64_t now_usec;
        sd_event_now(p->event, CLOCK_MONOTONIC, &now_usec);
        (void) sd_event_add_time(p->event, NULL, CLOCK_MONOTONIC, now_usec + (uint64_t) (est * 1e6), 0, on_guard,
                                 p);

        r = sd_event_loop(p->event);
        if (r < 0 || p->failed) {
                if (o.save_from)
                        (void) unlink(o.save_from);
                return fail("Test session(s) Failed...");
        }

        char local[NI_MAXHOST];
        local_name(&p->client.local, local, sizeof(local));
        int status = EXIT_SUCCESS;
        bool want_output = !o.report.quiet || o.report.raw;

        for (size_t i = 0; i < p->n_ep; i++) {
                Endpoint *e = &p->ep[i];
                if (!e->we_send)
                        continue;
                char hex[OW_SID_HEX_SIZE];
                ow_sid_to_hex(&e->req.sid, hex);
                if (!o.save_to && !want_output)
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
                if (o.save_to && (r = save_fetched(o.save_to, &f)) < 0) {
                        fprintf(stderr, "owping: cannot write %s: %s\n", o.save_to, ow_strerror(r));
                        status = EXIT_FAILURE;
                }
                if (want_output &&
                    report(&o, &f.req, f.skips, f.ack.n_skip_ranges, f.records, f.ack.n_records, local, p->testaddr,
                           p->client.mode) < 0) {
                        fprintf(stderr, "owping: do_stats(\"to\" session)\n");
                        status = EXIT_FAILURE;
                }
                client_fetch_done(&f);
        }
        for (size_t i = 0; i < p->n_ep; i++) {
                Endpoint *e = &p->ep[i];
                if (e->we_send)
                        continue;
                bool invalid;
                clean_from_records(p, e, &invalid);
                if (invalid) {
                        fprintf(stderr, "owping: the \"from\" session is invalid (packets past the server's Next Seqno) - "
                                        "is your clock synchronized via NTP properly?\n");
                        status = EXIT_FAILURE;
                        continue;
                }
                if (o.save_from && (r = save_received(o.save_from, e)) < 0) {
                        fprintf(stderr, "owping: cannot write %s: %s\n", o.save_from, ow_strerror(r));
                        status = EXIT_FAILURE;
                }
                if (want_output && report(&o, &e->req, e->result.skips, e->result.n_skips, e->records,
                                          (uint32_t) e->n_records, p->testaddr, local, p->client.mode) < 0) {
                        fprintf(stderr, "owping: do_stats(\"from\" session)\n");
                        status = EXIT_FAILURE;
                }
        }

        return interrupted ? 2 : status;
}
