/* SPDX-License-Identifier: Apache-2.0 */

/*
 * bench-instr: CPU instructions the session worker spends per test packet,
 * counted by valgrind's callgrind, so the figure is repeatable and can be
 * compared across commits on any machine.
 *
 *   bench-instr NAME WORKER RUNS [N_SMALL N_LARGE]
 *
 * For each role (send, receive) and mode (O, A, E) it plays the worker's
 * controller itself (src/shared/worker-ipc.h) and runs the worker under
 * `valgrind --tool=callgrind` twice, for a session of N_SMALL and of
 * N_LARGE packets; the difference of the two instruction totals divided by
 * the difference of the packet counts is the cost of one packet, without
 * start-up and exit.
 *
 *  - send: the schedule starts 10 s in the past with a gap of 2^-32 s and a
 *    Timeout of 100 s, so every packet is due and none is late enough to
 *    be skipped: the worker sends back to back and never sleeps or spins
 *    (waiting is not work). The harness drains the packets and sends STOP
 *    once it has all of them.
 *  - receive: the harness queues all the packets (timestamped, SO_TIMESTAMPNS
 *    already on) in the worker's socket before starting it, so it takes
 *    them in full recvmmsg() batches; once it has written a record for
 *    every packet to its controller, the harness sends STOP.
 *
 * Instructions in the kernel (system calls) are not counted: this is the
 * worker's own code, the figure to watch. Prints
 * `NAME_send_O 812 instructions/packet min..max n=RUNS` and so on.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "ow-testpkt.h"
#include "ow-time.h"
#include "worker-ipc.h"

static const char *worker_path;

static OwTimestamp now_owts(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return ow_timestamp_from_timespec(&ts);
}

static int udp_socket(SockAddr *ret) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        SockAddr a = { .in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
        socklen_t l = sizeof(a);
        int big = 256 << 20;
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
        if (bind(fd, &a.sa, sizeof(a.in)) < 0 || getsockname(fd, &a.sa, &l) < 0) {
                close(fd);
                return -errno;
        }
        *ret = a;
        return fd;
}

static pid_t spawn(int udp_fd, int ctl_fd, const char *out) {
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char arg[4096];
                snprintf(arg, sizeof(arg), "--callgrind-out-file=%s", out);
                if (dup2(udp_fd, 0) < 0 || dup2(ctl_fd, 1) < 0)
                        _exit(127);
                setenv("OWAMP_LOG_STDERR", "1", 1);
                setenv("OWAMP_LOG_PRIORITY", "4", 1); /* warnings and worse */
                execlp("valgrind", "valgrind", "-q", "--tool=callgrind", arg, worker_path, (char *) NULL);
                _exit(127);
        }
        return pid;
}

/* Read from the worker until a message of type `want` (or DONE/ERROR). */
static int read_until(int fd, WorkerBuf *in, uint32_t want, size_t *records) {
        for (;;) {
                uint32_t type;
                const uint8_t *p;
                size_t len;
                int r = worker_msg_peek(in, &type, &p, &len);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (type == WORKER_MSG_RECORDS && records)
                                *records += (size_t) worker_records_count(p, len);
                        worker_buf_consume(in, 8 + len);
                        if (type == WORKER_MSG_ERROR)
                                return -EIO;
                        if (type == want)
                                return 0;
                        continue;
                }
                r = worker_read_some(fd, in);
                if (r <= 0)
                        return r < 0 ? r : -EPIPE;
        }
}

static uint64_t callgrind_total(const char *path) {
        FILE *f = fopen(path, "re");
        char line[512];
        uint64_t v = 0;
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "summary: %" SCNu64, &v) == 1 || sscanf(line, "totals: %" SCNu64, &v) == 1)
                        break;
        fclose(f);
        return v;
}

/* One session of n packets under callgrind; returns its instruction total. */
static int64_t run_once(WorkerRole role, OwMode mode, uint32_t n, const char *out) {
        OwSlot slot = { .type = OW_SLOT_FIXED, .param = 1 };
        WorkerSetup setup = {
                .role = role,
                .mode = mode,
                .n_packets = n,
                .start_time = now_owts() - OW_TIMESTAMP_FROM_SEC(10),
                .timeout = OW_TIMESTAMP_FROM_SEC(100),
                .n_slots = 1,
                .slots = &slot,
        };
        for (size_t i = 0; i < sizeof(setup.test_aes_key); i++)
                setup.test_aes_key[i] = (uint8_t) (0x31 + i);
        for (size_t i = 0; i < sizeof(setup.test_hmac_key); i++)
                setup.test_hmac_key[i] = (uint8_t) (0x77 ^ i);
        for (size_t i = 0; i < sizeof(setup.sid.bytes); i++)
                setup.sid.bytes[i] = (uint8_t) i;

        SockAddr wa, ha;
        int wfd = udp_socket(&wa), hfd = udp_socket(&ha), sv[2];
        if (wfd < 0 || hfd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                perror("bench-instr: sockets");
                return -1;
        }
        setup.peer = ha;

        if (role == WORKER_ROLE_RECEIVER) {
                /* Queue every packet before the worker starts. */
                int on = 1;
                OwTestKeys keys;
                OwTestPktCodec *codec;
                uint8_t pkt[OW_TESTPKT_MAX_HEADER_SIZE];
                memcpy(keys.aes, setup.test_aes_key, sizeof(keys.aes));
                memcpy(keys.hmac, setup.test_hmac_key, sizeof(keys.hmac));
                (void) setsockopt(wfd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
                (void) setsockopt(wfd, IPPROTO_IP, IP_RECVTTL, &on, sizeof(on));
                if (ow_testpkt_codec_new_from_keys(mode, &keys, &codec) < 0 ||
                    connect(hfd, &wa.sa, sizeof(wa.in)) < 0)
                        return -1;
                for (uint32_t seq = 0; seq < n; seq++) {
                        int size = ow_testpkt_prepare(codec, seq, NULL, 0, pkt, sizeof(pkt));
                        if (size < 0 || ow_testpkt_finish(codec, pkt, seq, now_owts(), 0x8101) < 0 ||
                            send(hfd, pkt, (size_t) size, 0) != size) {
                                perror("bench-instr: send");
                                return -1;
                        }
                }
                ow_testpkt_codec_free(codec);
        }

        pid_t pid = spawn(wfd, sv[1], out);
        close(sv[1]);
        close(wfd);
        int ctl = sv[0];
        WorkerBuf o = {}, in = {};
        size_t records = 0;
        int r = worker_setup_append(&o, &setup);
        if (r >= 0)
                r = worker_write_all(ctl, &o);
        if (r >= 0)
                r = read_until(ctl, &in, WORKER_MSG_READY, NULL);
        if (r < 0)
                goto fail;

        if (role == WORKER_ROLE_SENDER) {
                (void) worker_msg_append(&o, WORKER_MSG_START, NULL, 0);
                r = worker_write_all(ctl, &o);
                if (r < 0)
                        goto fail;
                uint8_t buf[2048];
                for (uint32_t got = 0; got < n;) {
                        struct pollfd p = { .fd = hfd, .events = POLLIN };
                        if (poll(&p, 1, 60000) <= 0) {
                                fprintf(stderr, "bench-instr: sender stalled at %u of %u packets\n", got, n);
                                r = -ETIMEDOUT;
                                goto fail;
                        }
                        while (recv(hfd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                                got++;
                }
                WorkerStop st = { .stop_time = now_owts() };
                (void) worker_stop_append(&o, &st);
                r = worker_write_all(ctl, &o);
                if (r < 0)
                        goto fail;
        }
        if (role == WORKER_ROLE_RECEIVER) {
                /* The receiver keeps every packet's loss deadline open until
                 * Timeout passes; STOP settles the session once it has
                 * recorded all of them. */
                while (records < n) {
                        r = read_until(ctl, &in, WORKER_MSG_RECORDS, &records);
                        if (r < 0)
                                goto fail;
                }
                WorkerStop st = { .stop_time = now_owts(), .has_next_seqno = true, .next_seqno = n };
                (void) worker_stop_append(&o, &st);
                r = worker_write_all(ctl, &o);
                if (r < 0)
                        goto fail;
        }
        r = read_until(ctl, &in, WORKER_MSG_DONE, &records);
        if (r < 0)
                goto fail;
        if (role == WORKER_ROLE_RECEIVER && records != n) {
                fprintf(stderr, "bench-instr: %zu records for %u packets\n", records, n);
                r = -EIO;
                goto fail;
        }
        close(ctl);
        close(hfd);
        int status;
        (void) waitpid(pid, &status, 0);
        worker_buf_done(&o);
        worker_buf_done(&in);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench-instr: worker failed (status %d)\n", status);
                return -1;
        }
        uint64_t total = callgrind_total(out);
        /* $BENCH_INSTR_KEEP: keep the profile, for callgrind_annotate. */
        const char *keep = getenv("BENCH_INSTR_KEEP");
        if (keep) {
                char kept[4096];
                snprintf(kept, sizeof(kept), "%s/callgrind.%s.%s.%u", keep,
                         role == WORKER_ROLE_SENDER ? "send" : "receive", ow_mode_to_string(mode), n);
                (void) rename(out, kept);
        }
        unlink(out);
        return total > 0 ? (int64_t) total : -1;
fail:
        fprintf(stderr, "bench-instr: session failed: %s\n", strerror(-r));
        kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        return -1;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        if (argc != 4 && argc != 6) {
                fprintf(stderr, "usage: bench-instr NAME WORKER RUNS [N_SMALL N_LARGE]\n");
                return 2;
        }
        const char *name = argv[1];
        worker_path = argv[2];
        int runs = atoi(argv[3]);
        uint32_t n1 = argc == 6 ? (uint32_t) atoi(argv[4]) : 1000;
        uint32_t n2 = argc == 6 ? (uint32_t) atoi(argv[5]) : 11000;
        if (runs < 1 || runs > 100 || n1 >= n2)
                return 2;
        char out[64];
        snprintf(out, sizeof(out), "/tmp/bench-instr.%d.out", (int) getpid());
        signal(SIGPIPE, SIG_IGN);

        static const struct {
                WorkerRole role;
                const char *name;
        } roles[] = { { WORKER_ROLE_SENDER, "send" }, { WORKER_ROLE_RECEIVER, "receive" } };
        static const struct {
                OwMode mode;
                const char *name;
        } modes[] = { { OW_MODE_OPEN, "O" }, { OW_MODE_AUTHENTICATED, "A" }, { OW_MODE_ENCRYPTED, "E" } };

        for (size_t i = 0; i < ELEMENTSOF(roles); i++)
                for (size_t k = 0; k < ELEMENTSOF(modes); k++) {
                        double v[100];
                        for (int j = 0; j < runs; j++) {
                                int64_t a = run_once(roles[i].role, modes[k].mode, n1, out);
                                int64_t b = run_once(roles[i].role, modes[k].mode, n2, out);
                                if (a < 0 || b < 0)
                                        return 1;
                                v[j] = (double) (b - a) / (double) (n2 - n1);
                        }
                        qsort(v, (size_t) runs, sizeof(double), cmp_double);
                        printf("%s_%s_%s %.0f instructions/packet %.0f..%.0f n=%d\n", name, roles[i].name,
                               modes[k].name, v[(runs - 1) / 2], v[0], v[runs - 1], runs);
                        fflush(stdout);
                }
        return 0;
}
