/* SPDX-License-Identifier: Apache-2.0 */

/*
 * powstream: a continuous stream of OWAMP test sessions from (or, with -t,
 * to) one peer, a drop-in for perfSONAR's powstream (powstream(1)): the
 * same options, the same files in -d (START_END.owp, START_END.sum, the
 * .powlock), the same -p lines; and, beyond it, --json documents and one
 * journal entry per completed (sub-)session.
 *
 * This file is the process around one Stream (stream.h): the options, the
 * directory lock, the signals, the event loop and the results' writer
 * (pow-output.h).
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "clock.h"
#include "launcher.h"
#include "log.h"
#include "macro.h"
#include "pow-config.h"
#include "pow-options.h"
#include "pow-output.h"
#include "stream.h"
#include "worker-path.h"

#define POWLOCK ".powlock"

typedef struct Main {
        PowOptions o;
        PowOutput out;
        sd_event *event;
        Launcher *launcher;
        Stream *stream;
        unsigned signals;
        int lock_fd;
} Main;

static int on_result(Stream *s _unused_, const PowResult *res, void *userdata) {
        Main *m = userdata;
        return pow_output_publish(&m->out, res);
}

static void on_failed(Stream *s _unused_, const char *sid_hex, const char *reason, void *userdata) {
        Main *m = userdata;
        pow_output_failed(&m->out, m->o.name, sid_hex, reason);
}

static void on_stopped(Stream *s _unused_, void *userdata) {
        Main *m = userdata;
        log_info("SIGTERM/SIGINT Caught: Exiting.");
        (void) sd_event_exit(m->event, 0);
}

static int on_signal(sd_event_source *src _unused_, const struct signalfd_siginfo *si, void *userdata) {
        Main *m = userdata;

        if (si->ssi_signo == SIGHUP) {
                log_info("SIGHUP: Re-opening connections.");
                stream_stop(m->stream, true);
                return 0;
        }
        /* A second SIGTERM or SIGINT does not wait for the files. */
        if (m->signals++ > 0)
                return sd_event_exit(m->event, 0);
        stream_stop(m->stream, false);
        return 0;
}

/* The directory's lock, as the reference's: an fcntl() write lock on
 * DIR/.powlock holding our pid (a native int), so that two powstreams
 * never write into one directory. */
static int lock_directory(const char *dir) {
        _cleanup_free_ char *path = NULL;
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        int fd, pid;

        if (asprintf(&path, "%s%s%s", dir ? dir : "", dir ? "/" : "", POWLOCK) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return log_error_errno(-errno, "open(%s): %s", path, strerror(errno));
        if (fcntl(fd, F_SETLK, &fl) < 0) {
                int r = -errno;
                log_error("Unable to lock file %s: %s", path, strerror(-r));
                if (pread(fd, &pid, sizeof(pid), 0) == (ssize_t) sizeof(pid))
                        log_error("Possibly locked by pid(%d)", pid);
                safe_close(fd);
                return r;
        }
        pid = (int) getpid();
        if (ftruncate(fd, 0) < 0 || pwrite(fd, &pid, sizeof(pid), 0) != (ssize_t) sizeof(pid)) {
                int r = -errno;
                log_error("Unable to write to lockfile: %s", strerror(errno));
                safe_close(fd);
                return r;
        }
        return fd;
}

static void main_done(Main *m) {
        stream_free(m->stream);
        launcher_free(m->launcher);
        sd_event_unref(m->event);
        safe_close(m->lock_fd);
        pow_options_done(&m->o);
}

int main(int argc, char **argv) {
        _cleanup_(main_done) Main m = { .lock_fd = -1 };
        PowOptions *o = &m.o;
        bool want_usage;
        int r;

        _cleanup_(pow_config_argv_done) PowConfigArgv cfg = {};
        r = pow_config_apply(argc, argv, &cfg);
        if (r < 0)
                return POW_EXIT_CONFIG;
        if (r > 0) {
                argc = cfg.argc;
                argv = cfg.argv;
        }
        r = pow_options_parse(argc, argv, o);
        if (r != 0)
                return r > 0 ? EXIT_SUCCESS : EXIT_FAILURE;

        log_setup("powstream", LOG_TARGET_AUTO, o->facility, !o->quiet_stderr,
                  o->log_level < 0 ? LOG_EMERG : o->log_level);
        int64_t offset;
        if (clock_offset_from_env(&offset) < 0) {
                log_error("Invalid OWAMP_DEBUG_TIMEOFFSET '%s': seconds expected", getenv("OWAMP_DEBUG_TIMEOFFSET"));
                return EXIT_FAILURE;
        }

        if (o->dir) {
                struct stat st;
                if (stat(o->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        log_error("-d %s: %s", o->dir, errno ? strerror(errno) : "not a directory");
                        return EXIT_FAILURE;
                }
                if (strlen(o->dir) + 1 + OW_SPAN_NAME_MAX + 1 > PATH_MAX) {
                        fprintf(stderr, "powstream: -d: pathname too long.\n");
                        return EXIT_FAILURE;
                }
        }
        m.lock_fd = lock_directory(o->dir);
        if (m.lock_fd < 0)
                return EXIT_FAILURE;

        /* The reference's warning about sessions too short for their
         * set-up, and its cap of -I at a session's length. */
        uint32_t session_sec = (uint32_t) ((double) o->count * o->interval);
        if ((double) session_sec < STREAM_SETUP_ESTIMATE_SEC + o->loss)
                log_warning("Warning: Holes in data are likely because lossThreshold(%g) is too large a fraction of "
                            "approx summary session duration(%u)",
                            o->loss, session_sec);
        if (session_sec < o->retry)
                o->retry = session_sec;

        r = client_args_setup(&o->conn, "powstream", false, &want_usage);
        if (r < 0)
                return EXIT_FAILURE;
        o->conn.client.server = o->servaddr;

        r = sd_event_new(&m.event);
        if (r < 0) {
                log_error_errno(r, "Cannot create the event loop: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGUSR1, SIG_IGN);
        signal(SIGUSR2, SIG_IGN);
        (void) sd_event_add_signal(m.event, NULL, SIGINT, on_signal, &m);
        (void) sd_event_add_signal(m.event, NULL, SIGTERM, on_signal, &m);
        (void) sd_event_add_signal(m.event, NULL, SIGHUP, on_signal, &m);

        _cleanup_free_ char *worker = NULL;
        r = worker_path_find(&worker);
        if (r < 0) {
                log_error("The session worker %s cannot be run (%s): " WORKER_PATH_HINT, worker ? worker : "",
                          strerror(-r));
                return EXIT_FAILURE;
        }
        r = launcher_fork_new(m.event, worker, &m.launcher);
        if (r < 0) {
                log_error_errno(r, "Cannot set up test endpoints: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        setenv("OWAMP_LOG_STDERR", "1", 1);

        const char *j = getenv("OWAMP_POWSTREAM_JOURNAL");
        PowOutputOptions po = {
                .dir = o->dir,
                .print_files = o->print_files,
                .json = o->json,
                .unix_time = o->unix_time,
                .bucket_width = (float) o->bucket_width,
                .journal = !j || !streq(j, "0"),
                .journal_socket = getenv("OWAMP_JOURNAL_SOCKET"),
        };
        pow_output_init(&m.out, &po);
        if (pow_prom_init(&m.out.prom, o->prometheus_dir, o->name, o->testaddr, o->sender ? "to" : "from") < 0)
                return EXIT_FAILURE;

        StreamConfig sc = {
                .name = o->name,
                .testaddr = o->testaddr,
                .client = &o->conn.client,
                .sender = o->sender,
                .count = o->count,
                .sub_packets = o->sub_packets,
                .interval = o->interval,
                .loss = o->loss,
                .enddelay = o->enddelay,
                .have_enddelay = o->have_enddelay,
                .padding = o->padding,
                .delay_start = o->delay_start,
                .retry = o->retry,
                .port_low = o->port_low,
                .port_high = o->port_high,
                .dir = o->dir,
                .bucket_width = (float) o->bucket_width,
                .keep_delays = o->json || o->prometheus_dir,
                .verbose = o->verbose,
        };
        StreamCallbacks cb = { .result = on_result, .failed = on_failed, .stopped = on_stopped };
        r = stream_new(m.event, m.launcher, &sc, &cb, &m, &m.stream);
        if (r >= 0)
                r = stream_start(m.stream);
        if (r < 0) {
                log_error_errno(r, "Cannot start the stream: %s", strerror(-r));
                return EXIT_FAILURE;
        }

        r = sd_event_loop(m.event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
