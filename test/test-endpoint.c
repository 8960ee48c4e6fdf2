/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The endpoint controller (src/shared/endpoint.h) with the fork launcher
 * and the real worker of the build tree (WORKER_PATH): a sender and a
 * receiver on loopback exchange a session, whose records and results must
 * come through the callbacks; and workers that fail, send garbage or
 * break the protocol (small shell scripts) must end their endpoint with
 * the failure reported, never hang.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "clock.h"
#include "endpoint.h"
#include "launcher.h"
#include "macro.h"
#include "net.h"
#include "ow-types.h"
#include "testutil.h"
#include "units.h"

/* Every test is over well within this; the loop exits with -ETIMEDOUT. */
#define TEST_DEADLINE_USEC (20 * USEC_PER_SEC)
#define N_PACKETS 10u

typedef struct Side {
        Endpoint *e;
        unsigned n_ready, n_done, n_exited, n_failures;
        bool have_result;
        WorkerDone result;
        int exit_status;
        EndpointFailure failure_kind;
        char reason[320];
        uint8_t seen[N_PACKETS];
        unsigned n_records, n_lost;
} Side;

typedef struct Test {
        sd_event *event;
        Side send, recv;
        OwTimestamp stop_time;
} Test;

static Test *test_of(Side *s);

static void on_ready(Endpoint *e, void *userdata) {
        Side *s = userdata;
        Test *t = test_of(s);

        ck_assert_ptr_eq(e, s->e);
        s->n_ready++;
        /* Both ready: the sender may begin (owping's order). */
        if (t->send.n_ready && t->recv.n_ready && t->send.e)
                ck_assert_int_eq(endpoint_start(t->send.e), 0);
}

static void on_records(Endpoint *e _unused_, const uint8_t *records, size_t n, void *userdata) {
        Side *s = userdata;

        for (size_t i = 0; i < n; i++) {
                OwRecord r;
                ck_assert_int_eq(ow_record_decode(records + i * OW_RECORD_SIZE, &r), 0);
                ck_assert_uint_lt(r.seq, N_PACKETS);
                s->seen[r.seq]++;
                s->n_records++;
                if (ow_record_lost(&r))
                        s->n_lost++;
        }
}

static void maybe_exit(Test *t) {
        bool send_over = !t->send.e || (t->send.n_done && t->send.n_exited);
        bool recv_over = !t->recv.e || (t->recv.n_done && t->recv.n_exited);
        if (send_over && recv_over)
                (void) sd_event_exit(t->event, 0);
}

static void on_done(Endpoint *e, const WorkerDone *d, void *userdata) {
        Side *s = userdata;
        Test *t = test_of(s);

        s->n_done++;
        ck_assert(endpoint_is_done(e));
        if (d) {
                s->have_result = true;
                s->result = *d;
                ck_assert_ptr_eq(endpoint_result(e), d);
        } else
                ck_assert_ptr_null(endpoint_result(e));
        /* The sender finished: stop the receiver with its Next Seqno, as
         * a Stop-Sessions would. */
        /* Under load the receiver may have ended on its own (its timeout)
         * before the sender's DONE is read: then there is nothing to stop. */
        if (s == &t->send && d && t->recv.e && endpoint_has_channel(t->recv.e)) {
                WorkerStop st = { .stop_time = 0, .has_next_seqno = true, .next_seqno = d->next_seqno };
                ck_assert_int_eq(endpoint_stop(t->recv.e, &st), 0);
        }
        maybe_exit(t);
}

static void on_failure(Endpoint *e _unused_, EndpointFailure kind, int error _unused_, const char *reason,
                       void *userdata) {
        Side *s = userdata;

        s->n_failures++;
        s->failure_kind = kind;
        snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

static void on_exited(Endpoint *e, int status, void *userdata) {
        Side *s = userdata;

        s->n_exited++;
        s->exit_status = status;
        ck_assert(!endpoint_has_worker(e));
        maybe_exit(test_of(s));
}

static const EndpointCallbacks callbacks = {
        .ready = on_ready,
        .records = on_records,
        .done = on_done,
        .failure = on_failure,
        .exited = on_exited,
};

static Test the_test;

static Test *test_of(Side *s) {
        (void) s;
        return &the_test;
}

static int on_deadline(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        Test *t = userdata;
        return sd_event_exit(t->event, -ETIMEDOUT);
}

static void test_setup(Test *t) {
        sigset_t ss;

        *t = (Test) {};
        sigemptyset(&ss);
        sigaddset(&ss, SIGCHLD);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &ss, NULL), 0);
        ck_assert_int_ge(sd_event_new(&t->event), 0);
        uint64_t now;
        ck_assert_int_ge(sd_event_now(t->event, CLOCK_MONOTONIC, &now), 0);
        ck_assert_int_ge(sd_event_add_time(t->event, NULL, CLOCK_MONOTONIC, now + TEST_DEADLINE_USEC, 0, on_deadline,
                                           t),
                         0);
}

static int bind_loopback(SockAddr *ret) {
        static const uint8_t lo[16] = { 127, 0, 0, 1 };
        SockAddr a;
        uint16_t port;

        ck_assert_int_eq(sockaddr_from_owamp(4, lo, 0, &a), 0);
        int fd = udp_bind_in_range(&a, 0, 0, &port);
        ck_assert_int_ge(fd, 0);
        sockaddr_set_port(&a, port);
        *ret = a;
        return fd;
}

static OwSlot slot = { .type = OW_SLOT_FIXED, .param = OW_TIMESTAMP_FROM_SEC(1) / 100 };

static OwSessionRequest request(const SockAddr *sender, const SockAddr *receiver) {
        OwSessionRequest req = {
                .ipvn = 4,
                .n_slots = 1,
                .slots = &slot,
                .n_packets = N_PACKETS,
                .timeout = OW_TIMESTAMP_FROM_SEC(1),
                /* Soon, but after both workers are up. */
                .start_time = clock_now(0) + OW_TIMESTAMP_FROM_SEC(1) / 2,
                .sid = { .bytes = { 0x7f, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8 } },
        };
        memcpy(req.sender_addr, (const uint8_t[]) { 127, 0, 0, 1 }, 4);
        memcpy(req.receiver_addr, (const uint8_t[]) { 127, 0, 0, 1 }, 4);
        req.sender_port = sockaddr_port(sender);
        req.receiver_port = sockaddr_port(receiver);
        return req;
}

static EndpointParams params(bool sender, const OwSessionRequest *req, const SockAddr *peer) {
        return (EndpointParams) {
                .sender = sender,
                .mode = OW_MODE_OPEN,
                .req = req,
                .peer = peer,
                .enddelay_nsec = 100 * NSEC_PER_MSEC,
                .spec = {
                        .sid_hex = "7f000001deadbeef0102030405060708",
                        .description = sender ? "test sender" : "test receiver",
                        .log_max_priority = 4,
                        .sender = sender,
                },
        };
}

START_TEST(test_session) {
        Test *t = &the_test;
        Launcher *l = NULL;
        SockAddr sa, ra;

        test_setup(t);
        ck_assert_int_eq(launcher_fork_new(t->event, WORKER_PATH, &l), 0);
        int sfd = bind_loopback(&sa), rfd = bind_loopback(&ra);
        OwSessionRequest req = request(&sa, &ra);

        ck_assert_int_eq(endpoint_new(t->event, l, &callbacks, &t->recv, &t->recv.e), 0);
        ck_assert_int_eq(endpoint_new(t->event, l, &callbacks, &t->send, &t->send.e), 0);
        /* Nothing to start or stop before the launch. */
        ck_assert_int_eq(endpoint_start(t->send.e), -ENOTCONN);
        ck_assert_int_eq(endpoint_stop(t->send.e, &(WorkerStop) {}), -ENOTCONN);
        ck_assert(!endpoint_has_worker(t->send.e));

        EndpointParams rp = params(false, &req, &sa), sp = params(true, &req, &ra);
        ck_assert_int_eq(endpoint_launch(t->recv.e, &rp, rfd), 0);
        ck_assert_int_eq(endpoint_launch(t->send.e, &sp, sfd), 0);
        ck_assert_int_eq(endpoint_launch(t->send.e, &sp, sfd), -EALREADY);
        close(sfd);
        close(rfd);
        ck_assert(endpoint_has_worker(t->send.e));
        ck_assert(endpoint_has_channel(t->send.e));

        ck_assert_int_eq(sd_event_loop(t->event), 0);

        /* The sender: every packet sent, its DONE with Next Seqno. */
        ck_assert_uint_eq(t->send.n_ready, 1);
        ck_assert_uint_eq(t->send.n_done, 1);
        ck_assert(t->send.have_result);
        ck_assert_uint_eq(t->send.result.next_seqno, N_PACKETS);
        ck_assert_uint_eq(t->send.result.counters.sent, N_PACKETS);
        ck_assert_uint_eq(t->send.n_records, 0);
        /* The receiver: a record for each packet, none lost on loopback. */
        ck_assert_uint_eq(t->recv.n_ready, 1);
        ck_assert_uint_eq(t->recv.n_done, 1);
        ck_assert(t->recv.have_result);
        ck_assert_uint_eq(t->recv.n_records, N_PACKETS);
        ck_assert_uint_eq(t->recv.n_lost, 0);
        for (unsigned i = 0; i < N_PACKETS; i++)
                ck_assert_uint_eq(t->recv.seen[i], 1);
        ck_assert_uint_eq(t->recv.result.counters.received, N_PACKETS);
        /* Both exited cleanly, with nothing reported failing. */
        ck_assert_uint_eq(t->send.n_exited, 1);
        ck_assert_uint_eq(t->recv.n_exited, 1);
        ck_assert_int_eq(t->send.exit_status, 0);
        ck_assert_int_eq(t->recv.exit_status, 0);
        ck_assert_uint_eq(t->send.n_failures + t->recv.n_failures, 0);
        /* The worker's exit and the end of its channel are two events: the
         * loop may end between them. Once the channel is gone, a stop has
         * nowhere to go. */
        if (!endpoint_has_channel(t->recv.e))
                ck_assert_int_eq(endpoint_stop(t->recv.e, &(WorkerStop) {}), -ENOTCONN);

        endpoint_free(t->send.e);
        endpoint_free(t->recv.e);
        launcher_free(l);
        sd_event_unref(t->event);
}
END_TEST

/* A worker of our own: a shell script that says `output` on the channel
 * (printf's octal escapes) and ends with `status`. */
static char *script(const char *output, int status) {
        char *path = strdup("/tmp/test-endpoint-XXXXXX");
        ck_assert_ptr_nonnull(path);
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        FILE *f = fdopen(fd, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "#!/bin/sh\nprintf '%s'\nexit %d\n", output, status);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(chmod(path, 0700), 0);
        return path;
}

/* One receiver endpoint on the worker at path, run to its end. */
static void run_one(const char *path) {
        Test *t = &the_test;
        Launcher *l = NULL;
        SockAddr sa, ra;

        test_setup(t);
        ck_assert_int_eq(launcher_fork_new(t->event, path, &l), 0);
        int sfd = bind_loopback(&sa), rfd = bind_loopback(&ra);
        OwSessionRequest req = request(&sa, &ra);
        EndpointParams rp = params(false, &req, &sa);
        ck_assert_int_eq(endpoint_new(t->event, l, &callbacks, &t->recv, &t->recv.e), 0);
        ck_assert_int_eq(endpoint_launch(t->recv.e, &rp, rfd), 0);
        close(sfd);
        close(rfd);
        ck_assert_int_eq(sd_event_loop(t->event), 0);
        t->recv.e = endpoint_free(t->recv.e);
        launcher_free(l);
        sd_event_unref(t->event);
}

START_TEST(test_exits_silently) {
        Test *t = &the_test;
        _cleanup_free_ char *path = script("", 3);

        run_one(path);
        unlink(path);
        ck_assert_uint_eq(t->recv.n_ready, 0);
        ck_assert_uint_eq(t->recv.n_done, 1);
        ck_assert(!t->recv.have_result);
        ck_assert_uint_eq(t->recv.n_exited, 1);
        ck_assert_int_eq(t->recv.exit_status, 3);
        ck_assert_uint_eq(t->recv.n_failures, 0);
}
END_TEST

START_TEST(test_garbage) {
        Test *t = &the_test;
        /* A length far past WORKER_MSG_MAX. */
        _cleanup_free_ char *path = script("garbage, not a message", 0);

        run_one(path);
        unlink(path);
        ck_assert_uint_eq(t->recv.n_failures, 1);
        ck_assert_int_eq(t->recv.failure_kind, ENDPOINT_FAILURE_GARBAGE);
        ck_assert_str_eq(t->recv.reason, "garbage from its worker");
        ck_assert_uint_eq(t->recv.n_done, 1);
        ck_assert(!t->recv.have_result);
        ck_assert_uint_eq(t->recv.n_exited, 1);
}
END_TEST

START_TEST(test_out_of_place) {
        Test *t = &the_test;
        /* RECORDS (type 4, no records) before READY. */
        _cleanup_free_ char *path = script("\\000\\000\\000\\004\\000\\000\\000\\004", 0);

        run_one(path);
        unlink(path);
        ck_assert_uint_eq(t->recv.n_failures, 1);
        ck_assert_int_eq(t->recv.failure_kind, ENDPOINT_FAILURE_PROTOCOL);
        ck_assert_str_eq(t->recv.reason, "unexpected message 4 from its worker; stopping it");
        ck_assert_uint_eq(t->recv.n_ready, 0);
        ck_assert_uint_eq(t->recv.n_records, 0);
        ck_assert_uint_eq(t->recv.n_done, 1);
        ck_assert(!t->recv.have_result);
}
END_TEST

START_TEST(test_worker_error) {
        Test *t = &the_test;
        /* READY, then ERROR: length 4 + 4 + 4 + 4, type 7, error EIO (5),
         * text "bad". */
        _cleanup_free_ char *path = script("\\000\\000\\000\\004\\000\\000\\000\\002"
                                           "\\000\\000\\000\\013\\000\\000\\000\\007\\000\\000\\000\\005bad",
                                           1);

        run_one(path);
        unlink(path);
        ck_assert_uint_eq(t->recv.n_ready, 1);
        ck_assert_uint_eq(t->recv.n_failures, 1);
        ck_assert_int_eq(t->recv.failure_kind, ENDPOINT_FAILURE_WORKER);
        ck_assert_ptr_nonnull(strstr(t->recv.reason, "bad: "));
        ck_assert_uint_eq(t->recv.n_done, 1);
        ck_assert(!t->recv.have_result);
        ck_assert_int_eq(t->recv.exit_status, 1);
}
END_TEST

/* A worker killed while another process traces it (as LeakSanitizer does
 * while a sanitizer build's worker checks for leaks on its way out): its
 * exit reaches the owner, and the launcher counts it gone, soon after the
 * tracer lets go (sd-event's child source alone never reported it). */
START_TEST(test_killed_while_traced) {
        Test *t = &the_test;
        Launcher *l = NULL;
        SockAddr sa, ra;
        char pidfile[] = "/tmp/test-endpoint-pid-XXXXXX";
        char path[] = "/tmp/test-endpoint-XXXXXX";

        int pfd = mkstemp(pidfile);
        ck_assert_int_ge(pfd, 0);
        close(pfd);
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        FILE *f = fdopen(fd, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "#!/bin/sh\necho $$ > %s.tmp && mv %s.tmp %s\nexec sleep 60\n", pidfile, pidfile, pidfile);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(chmod(path, 0700), 0);
        ck_assert_int_eq(unlink(pidfile), 0);

        test_setup(t);
        ck_assert_int_eq(launcher_fork_new(t->event, path, &l), 0);
        int sfd = bind_loopback(&sa), rfd = bind_loopback(&ra);
        OwSessionRequest req = request(&sa, &ra);
        EndpointParams rp = params(false, &req, &sa);
        ck_assert_int_eq(endpoint_new(t->event, l, &callbacks, &t->recv, &t->recv.e), 0);
        ck_assert_int_eq(endpoint_launch(t->recv.e, &rp, rfd), 0);
        close(sfd);
        close(rfd);

        /* The worker's pid, once its script wrote it (5 s at most). */
        pid_t pid = 0;
        for (int i = 0; i < 500 && pid <= 0; i++) {
                FILE *p = fopen(pidfile, "r");
                if (p) {
                        if (fscanf(p, "%d", &pid) != 1)
                                pid = 0;
                        fclose(p);
                }
                if (pid <= 0)
                        usleep(10000);
        }
        unlink(pidfile);
        unlink(path);
        ck_assert_int_gt(pid, 0);

        /* The tracer: attaches, holds the worker stopped, lets go after 1 s. */
        int pipefd[2];
        ck_assert_int_eq(pipe(pipefd), 0);
        pid_t tracer = fork();
        ck_assert_int_ge(tracer, 0);
        if (tracer == 0) {
                int st;
                char ok = ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0 && waitpid(pid, &st, __WALL) == pid;
                (void) !write(pipefd[1], &ok, 1);
                sleep(1);
                _exit(0);
        }
        close(pipefd[1]);
        char ok = 0;
        ck_assert_int_eq(read(pipefd[0], &ok, 1), 1);
        close(pipefd[0]);
        if (!ok) /* No ptrace here (a seccomp filter, Yama): an untraced kill only. */
                fprintf(stderr, "test-endpoint: cannot trace the worker; killing it untraced\n");
        endpoint_kill(t->recv.e);

        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        ck_assert_int_eq(sd_event_loop(t->event), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double took = (double) (b.tv_sec - a.tv_sec) + (double) (b.tv_nsec - a.tv_nsec) / 1e9;
        ck_assert_uint_eq(t->recv.n_exited, 1);
        ck_assert_int_eq(t->recv.exit_status, -SIGKILL);
        ck_assert_uint_eq(t->recv.n_done, 1);
        ck_assert_uint_eq(l->ops->count(l), 0);
        ck_assert_msg(took < 5.0, "the killed worker's exit took %.1f s to be seen", took);
        int st;
        ck_assert_int_eq(waitpid(tracer, &st, 0), tracer);
        t->recv.e = endpoint_free(t->recv.e);
        launcher_free(l);
        sd_event_unref(t->event);
}
END_TEST

int main(void) {
        Suite *s = suite_create("endpoint");
        TCase *tc;

        tc = tcase_create("worker");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_session);
        suite_add_tcase(s, tc);

        tc = tcase_create("broken-workers");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_exits_silently);
        tcase_add_test(tc, test_garbage);
        tcase_add_test(tc, test_out_of_place);
        tcase_add_test(tc, test_worker_error);
        tcase_add_test(tc, test_killed_while_traced);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
