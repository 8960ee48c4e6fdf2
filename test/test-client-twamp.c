/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The blocking client (src/shared/client.c) over the TWAMP table, live
 * against the reference's twampd (perfSONAR owamp 5.2.3): in modes O, A, E
 * and Mixed it sets up the control connection, requests a session
 * (Request-TW-Session), starts it and sends the client's Stop-Sessions;
 * with a wrong pass-phrase the server refuses it. Skips (exit 77) unless
 * OWAMP_REFERENCE_BIN names the folder of the reference's programs.
 *
 * The twampd runs on a free loopback port in a temporary folder with an
 * empty twamp-server.conf and test/data/twamp/twamp-server.pfs (key id
 * testuser, pass-phrase testsecret), in the foreground (-Z), and is
 * stopped by its PID at the end.
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "ctrl-io.h"
#include "macro.h"
#include "ow-control-engine.h"
#include "ow-error.h"
#include "testutil.h"

#define SECRET "testsecret"
#define START_WAIT_TRIES 100 /* x 50 ms */
#define TIMEOUT_MSEC 5000

static char dir[] = "/tmp/test-client-twamp-XXXXXX";
static pid_t twampd = -1;
static uint16_t port;

static uint16_t free_port(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

static void write_file(const char *path, const void *data, size_t len) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
}

static bool listening(void) {
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok;

        ck_assert_int_ge(fd, 0);
        ok = connect(fd, (struct sockaddr *) &a, sizeof(a)) == 0;
        close(fd);
        return ok;
}

/* The reference's programs are not sanitized: they get none of our
 * sanitizer settings. */
static void clean_environment(void) {
        extern char **environ;

        for (size_t i = 0; environ[i];) {
                char name[128];
                size_t n = strcspn(environ[i], "=");

                if (n < sizeof(name) &&
                    (startswith(environ[i], "ASAN_") || startswith(environ[i], "UBSAN_") ||
                     startswith(environ[i], "LSAN_") || startswith(environ[i], "LD_PRELOAD="))) {
                        memcpy(name, environ[i], n);
                        name[n] = 0;
                        unsetenv(name);
                } else
                        i++;
        }
}

static void start_twampd(const char *bin) {
        char path[512], conf[256], data[256], var[256], listen[64], exe[512];
        uint8_t *pfs;
        size_t pfs_len;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(conf, sizeof(conf), "%s/conf", dir);
        snprintf(data, sizeof(data), "%s/data", dir);
        snprintf(var, sizeof(var), "%s/var", dir);
        ck_assert_int_eq(mkdir(conf, 0700), 0);
        ck_assert_int_eq(mkdir(data, 0700), 0);
        ck_assert_int_eq(mkdir(var, 0700), 0);
        snprintf(path, sizeof(path), "%s/twamp-server.conf", conf);
        write_file(path, "", 0);
        test_read_file(test_data_path("twamp/twamp-server.pfs"), &pfs, &pfs_len);
        snprintf(path, sizeof(path), "%s/twamp-server.pfs", conf);
        write_file(path, pfs, pfs_len);
        free(pfs);

        port = free_port();
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
        snprintf(exe, sizeof(exe), "%s/twampd", bin);
        snprintf(path, sizeof(path), "%s/twampd.log", dir);

        twampd = fork();
        ck_assert_int_ge(twampd, 0);
        if (twampd == 0) {
                int log = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (log < 0 || dup2(log, STDOUT_FILENO) < 0 || dup2(log, STDERR_FILENO) < 0)
                        _exit(127);
                clean_environment();
                execl(exe, "twampd", "-Z", "-f", "-a", "AEMO", "-c", conf, "-d", data, "-R", var, "-S",
                      listen, (char *) NULL);
                _exit(127);
        }
        for (unsigned i = 0; i < START_WAIT_TRIES && !listening(); i++) {
                int status;
                ck_assert_msg(waitpid(twampd, &status, WNOHANG) == 0, "twampd exited, see %s", path);
                usleep(50 * 1000);
        }
        ck_assert_msg(listening(), "twampd does not listen on %s, see %s", listen, path);
}

static const char *reference_bin;

static int remove_one(const char *path, const struct stat *st _unused_, int flag _unused_,
                      struct FTW *f _unused_) {
        return remove(path);
}

static void setup_twampd(void) {
        start_twampd(reference_bin);
}

static void stop_twampd(void) {
        int status;

        if (twampd <= 0)
                return;
        (void) kill(twampd, SIGTERM);
        (void) waitpid(twampd, &status, 0);
        twampd = -1;
}

static ClientOptions options(char *server, size_t size, uint32_t mode, const char *secret) {
        snprintf(server, size, "127.0.0.1:%u", port);
        return (ClientOptions){
                .server = server,
                .family = AF_INET,
                .modes = mode,
                .keyid = mode == OW_MODE_OPEN ? NULL : "testuser",
                .secret = (const uint8_t *) secret,
                .secret_len = strlen(secret),
                .timeout_msec = TIMEOUT_MSEC,
                .protocol = &ow_protocol_twamp,
        };
}

/* Send what the engine queued, then wait for the event `want`. */
static void exchange(Client *c, OwEventType want, OwEvent *ev) {
        int r;

        ck_assert_int_eq(ctrl_io_flush_blocking(&c->io, TIMEOUT_MSEC), 0);
        r = ctrl_io_next_event_blocking(&c->io, ev, TIMEOUT_MSEC);
        ck_assert_msg(r >= 0, "waiting for event %d: %s (%s)", want, ow_strerror(r),
                      ow_engine_error_context(c->io.engine));
        ck_assert_int_eq(ev->type, want);
}

static const uint32_t modes[] = { OW_MODE_OPEN, OW_MODE_AUTHENTICATED, OW_MODE_ENCRYPTED, OW_MODE_MIXED };

START_TEST(test_twamp_session) {
        uint32_t mode = modes[_i];
        char server[64];
        ClientOptions o = options(server, sizeof(server), mode, SECRET);
        OwSessionRequest q = { .ipvn = 4,
                               .sender_port = 9,
                               .receiver_port = 9,
                               .padding_length = 27,
                               .timeout = UINT64_C(2) << 32 };
        static const uint8_t zero_sid[OW_SID_SIZE] = {};
        OwEvent ev;
        Client c;

        client_init(&c);
        ck_assert_msg(client_connect(&c, &o) == 0, "connect: %s", c.error);
        ck_assert_uint_eq(c.mode, mode);
        if (mode != OW_MODE_OPEN)
                ck_assert_uint_eq(c.pbkdf2_count, 2048); /* the reference's Count */
        ck_assert_int_eq(ow_engine_state(c.io.engine), OW_ENGINE_IDLE);

        q.sender_addr[0] = q.receiver_addr[0] = 127;
        q.sender_addr[3] = q.receiver_addr[3] = 1;
        q.start_time = clock_now(0) + (UINT64_C(1) << 32); /* in a second */
        ck_assert_int_eq(ow_engine_send_request_tw_session(c.io.engine, &q), 0);
        exchange(&c, OW_EVENT_ACCEPT_SESSION, &ev);
        ck_assert_int_eq(ev.accept_session.accept, OW_ACCEPT_OK);
        ck_assert_uint_ne(ev.accept_session.port, 0);
        ck_assert(memcmp(ev.accept_session.sid.bytes, zero_sid, OW_SID_SIZE) != 0);
        ck_assert_int_eq(ev.accept_session.sid.bytes[0], 127); /* the reflector's address first */
        ow_event_done(&ev);

        ck_assert_int_eq(ow_engine_send_start_sessions(c.io.engine), 0);
        exchange(&c, OW_EVENT_START_ACK, &ev);
        ck_assert_int_eq(ev.accept, OW_ACCEPT_OK);
        ck_assert_int_eq(ow_engine_state(c.io.engine), OW_ENGINE_TEST);

        ck_assert_int_eq(
                ow_engine_send_tw_stop_sessions(
                        c.io.engine, &(OwTwStopSessions){ .accept = OW_ACCEPT_OK, .n_sessions = 1 }),
                0);
        ck_assert_int_eq(ctrl_io_flush_blocking(&c.io, TIMEOUT_MSEC), 0);
        ck_assert_int_eq(ow_engine_state(c.io.engine), OW_ENGINE_IDLE);
        client_done(&c);
}
END_TEST

/* A wrong pass-phrase: the Server-Start refuses us, in A, E and Mixed. */
START_TEST(test_twamp_wrong_secret) {
        char server[64];
        ClientOptions o = options(server, sizeof(server), modes[1 + _i], "wrongsecret");
        Client c;

        client_init(&c);
        ck_assert_int_lt(client_connect(&c, &o), 0);
        ck_assert_msg(strstr(c.error, "refused") || strstr(c.error, "Server-Start"), "%s", c.error);
        client_done(&c);
}
END_TEST

/* Only Mixed on offer to the client: it picks Mixed, not open. */
START_TEST(test_twamp_pick_mixed) {
        char server[64];
        ClientOptions o = options(server, sizeof(server), OW_MODE_OPEN | OW_MODE_MIXED, SECRET);
        Client c;

        client_init(&c);
        ck_assert_msg(client_connect(&c, &o) == 0, "connect: %s", c.error);
        ck_assert_uint_eq(c.mode, OW_MODE_MIXED);
        client_done(&c);
}
END_TEST

int main(void) {
        const char *bin = getenv("OWAMP_REFERENCE_BIN");
        char exe[512];
        int r;

        if (!bin || !*bin) {
                printf("OWAMP_REFERENCE_BIN is not set: skipped\n");
                return 77;
        }
        snprintf(exe, sizeof(exe), "%s/twampd", bin);
        if (access(exe, X_OK) < 0) {
                printf("%s: not there: skipped\n", exe);
                return 77;
        }
        reference_bin = bin;

        Suite *s = suite_create("client-twamp");
        TCase *tc = tcase_create("live");
        tcase_add_loop_test(tc, test_twamp_session, 0, (int) ELEMENTSOF(modes));
        tcase_add_loop_test(tc, test_twamp_wrong_secret, 0, 3);
        tcase_add_test(tc, test_twamp_pick_mixed);
        tcase_set_timeout(tc, 30);
        tcase_add_unchecked_fixture(tc, setup_twampd, stop_twampd); /* once, around them all */
        suite_add_tcase(s, tc);
        r = test_run_suite(s);
        stop_twampd();
        /* The folder stays for a look when something failed. */
        if (r == 0 && dir[strlen(dir) - 1] != 'X')
                (void) nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        return r;
}
