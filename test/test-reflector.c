/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The worker's TWAMP reflector role (src/worker/role-reflector.c), run for
 * real in a child process on a loopback UDP socket (fd 0) and a channel to
 * us (fd 1), in modes O, A and E: TWAMP-Test packets sent to it come back
 * reflected with their sender fields, the TTL they arrived with, T2 <= T3
 * and the first octets of their padding; packets from another port, short
 * ones and ones that fail their HMAC get no answer; STOP ends it with a
 * DONE that counts all of that.
 */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "ow-error.h"
#include "session.h"
#include "testutil.h"
#include "worker-ipc.h"

#define N_PACKETS 5
#define PADDING 64
#define SENDER_TTL 77         /* set on our socket, so the answer's Sender TTL is not a default */
#define ANSWER_WAIT_MSEC 5000 /* an answer on loopback takes microseconds */
#define SILENCE_WAIT_MSEC 200 /* how long "no answer" is waited for */

static const OwTestSecurity securities[] = { OW_TEST_OPEN, OW_TEST_AUTHENTICATED, OW_TEST_ENCRYPTED };
static const OwMode modes[] = { OW_MODE_OPEN, OW_MODE_AUTHENTICATED, OW_MODE_ENCRYPTED };

static int udp_socket(SockAddr *ret) {
        SockAddr a = { .in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, &a.sa, sizeof(a.in)), 0);
        ck_assert_int_eq(getsockname(fd, &a.sa, &len), 0);
        *ret = a;
        return fd;
}

static void fill_keys(OwTestKeys *k) {
        for (size_t i = 0; i < sizeof(k->aes); i++)
                k->aes[i] = (uint8_t) (0xa0 + i);
        for (size_t i = 0; i < sizeof(k->hmac); i++)
                k->hmac[i] = (uint8_t) (0x10 + 3 * i);
}

/* The child: the role as the worker runs it, on fds 0 and 1. */
static _Noreturn void run_child(int udp, int ctl, OwMode mode, const SockAddr *peer) {
        Session s = {};
        OwTestKeys k;

        if (dup2(udp, UDP_FD) < 0 || dup2(ctl, CTL_FD) < 0)
                _exit(EXIT_FAILURE);
        log_setup("test-reflector", LOG_TARGET_NONE, LOG_DAEMON, true, LOG_WARNING);
        s.setup.role = WORKER_ROLE_REFLECTOR;
        s.setup.mode = mode;
        s.setup.peer = *peer;
        s.setup.padding_length = PADDING;
        fill_keys(&k);
        memcpy(s.setup.test_aes_key, k.aes, sizeof(k.aes));
        memcpy(s.setup.test_hmac_key, k.hmac, sizeof(k.hmac));
        if (session_codecs(&s, &role_reflector) < 0)
                _exit(EXIT_FAILURE);
        int r = role_reflector.run(&s);
        ow_testpkt_codec_free(s.codec);
        ow_testpkt_codec_free(s.reflected_codec);
        worker_buf_done(&s.out);
        worker_buf_done(&s.in);
        _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

static bool readable(int fd, int msec) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, msec);
        ck_assert_int_ge(r, 0);
        return r > 0;
}

START_TEST(test_reflector) {
        OwTestSecurity sec = securities[_i];
        SockAddr sender_addr, other_addr, refl_addr;
        int sender = udp_socket(&sender_addr), other = udp_socket(&other_addr),
            refl = udp_socket(&refl_addr);
        int ctl[2], ttl = SENDER_TTL;
        OwTestKeys keys;
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *enc = NULL;
        _cleanup_(ow_testpkt_codec_freep) OwTestPktCodec *dec = NULL;

        ck_assert_int_eq(setsockopt(sender, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)), 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl), 0);
        fill_keys(&keys);
        ck_assert_int_eq(ow_testpkt_codec_new_format(&(OwTestFormat){ OW_TEST_TWAMP, OW_TEST_SENDER, sec },
                                                     &keys, &enc),
                         0);
        ck_assert_int_eq(ow_testpkt_codec_new_format(
                                 &(OwTestFormat){ OW_TEST_TWAMP, OW_TEST_REFLECTED, sec }, &keys, &dec),
                         0);

        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                run_child(refl, ctl[1], modes[_i], &sender_addr);
        close(refl);
        close(ctl[1]);

        size_t hdr = ow_testpkt_codec_layout(enc)->size, size = hdr + PADDING;
        size_t answer_hdr = ow_testpkt_codec_layout(dec)->size, answer_size = MAX(size, answer_hdr);
        uint8_t pkt[OW_TESTPKT_AUTH_SIZE + PADDING], answer[OW_TESTPKT_MAX_FIXED_SIZE + PADDING + 1];

        for (uint32_t i = 0; i < N_PACKETS; i++) {
                uint8_t padding[PADDING];
                for (size_t k = 0; k < sizeof(padding); k++)
                        padding[k] = (uint8_t) (i * 31 + k);
                OwTestFields f = { .seq = 100 + i,
                                   .timestamp = clock_now(0),
                                   .errest = (OwErrEst) (0x0101 + i) };
                ck_assert_int_eq(
                        ow_testpkt_encode_fields(enc, &f, padding, sizeof(padding), pkt, sizeof(pkt)),
                        (int) size);
                ck_assert_int_eq(sendto(sender, pkt, size, 0, &refl_addr.sa, sizeof(refl_addr.in)),
                                 (ssize_t) size);

                ck_assert(readable(sender, ANSWER_WAIT_MSEC));
                ssize_t n = recv(sender, answer, sizeof(answer), 0);
                ck_assert_int_eq(n, (ssize_t) answer_size);
                OwTimestamp t4 = clock_now(0);

                OwTestFields a;
                ck_assert_int_eq(ow_testpkt_decode_fields(dec, answer, (size_t) n, &a), 0);
                ck_assert_uint_eq(a.seq, i); /* the reflector's own count */
                ck_assert_uint_eq(a.sender_seq, f.seq);
                ck_assert_uint_eq(a.sender_timestamp, f.timestamp);
                ck_assert_uint_eq(a.sender_errest, f.errest);
                ck_assert_uint_eq(a.sender_ttl, SENDER_TTL);
                ck_assert_uint_le(f.timestamp, a.recv_timestamp);
                ck_assert_uint_le(a.recv_timestamp, a.timestamp);
                ck_assert_uint_le(a.timestamp, t4);
                /* The answer's padding: the first octets of ours. */
                ck_assert_bytes_eq(answer + answer_hdr, padding, answer_size - answer_hdr);
        }

        /* From another port: ignored. */
        ck_assert_int_eq(sendto(other, pkt, size, 0, &refl_addr.sa, sizeof(refl_addr.in)), (ssize_t) size);
        /* Shorter than the session's packets: not answered (no amplification). */
        ck_assert_int_eq(sendto(sender, pkt, size - 1, 0, &refl_addr.sa, sizeof(refl_addr.in)),
                         (ssize_t) size - 1);
        /* A and E: a flipped bit of what the HMAC covers. */
        if (sec != OW_TEST_OPEN) {
                pkt[0] ^= 0x01;
                ck_assert_int_eq(sendto(sender, pkt, size, 0, &refl_addr.sa, sizeof(refl_addr.in)),
                                 (ssize_t) size);
        }
        ck_assert(!readable(sender, SILENCE_WAIT_MSEC));
        ck_assert(!readable(other, 0));

        /* STOP, then DONE with the counts. */
        WorkerBuf out = {}, in = {};
        ck_assert_int_ge(worker_stop_append(&out, &(WorkerStop){}), 0);
        ck_assert_int_eq(worker_write_all(ctl[0], &out), 0);
        uint32_t type = 0;
        const uint8_t *payload = NULL;
        size_t len = 0;
        for (int tries = 0; worker_msg_peek(&in, &type, &payload, &len) == 0; tries++) {
                ck_assert_int_lt(tries, 100);
                ck_assert(readable(ctl[0], ANSWER_WAIT_MSEC));
                ck_assert_int_gt(worker_read_some(ctl[0], &in), 0);
        }
        ck_assert_uint_eq(type, WORKER_MSG_DONE);
        WorkerDone d;
        ck_assert_int_eq(worker_done_parse(payload, len, &d), 0);
        ck_assert_uint_eq(d.counters.received, N_PACKETS);
        ck_assert_uint_eq(d.counters.sent, N_PACKETS);
        ck_assert_uint_eq(d.next_seqno, N_PACKETS);
        ck_assert_uint_eq(d.counters.dropped_source, 1);
        ck_assert_uint_eq(d.counters.dropped_short, 1);
        ck_assert_uint_eq(d.counters.dropped_auth, sec == OW_TEST_OPEN ? 0 : 1);
        free(d.skips);

        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), EXIT_SUCCESS);

        worker_buf_done(&out);
        worker_buf_done(&in);
        close(ctl[0]);
        close(sender);
        close(other);
}
END_TEST

int main(void) {
        Suite *s = suite_create("reflector");
        TCase *tc = tcase_create("twamp");
        tcase_set_timeout(tc, 30);
        tcase_add_loop_test(tc, test_reflector, 0, ELEMENTSOF(securities));
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
