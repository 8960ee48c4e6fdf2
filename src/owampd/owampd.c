/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owampd: the OWAMP server (RFC 4656). Accepts OWAMP-Control connections,
 * decides from policy which test sessions to allow, runs each session
 * endpoint in its own worker and keeps the data it receives until a client
 * fetches it.
 *
 * Under systemd it takes its listening sockets from owampd.socket and runs
 * each session as a transient unit; anywhere else (-Z in a shell, a
 * container) it binds the port itself and runs sessions as child processes.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "clock.h"
#include "config.h"
#include "conn.h"
#include "datastore.h"
#include "fetch-wait.h"
#include "guard.h"
#include "launch-proto.h"
#include "owampd-config.h"
#include "ow-conf.h"
#include "ow-error.h"
#include "policy.h"
#include "server.h"
#include "session.h"
#include "units.h"
#include "usage.h"
#include "worker-path.h"

#define PID_FILE "owamp-server.pid"
/* Where the packages install owampd.conf, owampd.limits and owampd.pfs
 * (meson's sysconfdir, /etc on Debian). */
#define DEFAULT_CONFDIR SYSCONFDIR "/owamp"
#define INFO_FILE "owamp-server.info"

typedef struct Options {
        const char *confdir;
        bool foreground;
        bool allow_root;
        bool have_cli[_OW_CONF_KEY_MAX];
} Options;

static void help(const char *prog) {
        fprintf(stderr,
                "Usage: %s [options]\n"
                "\n"
                "The OWAMP server (RFC 4656). Options override the configuration file.\n"
                "\n"
                "   -a authmode       modes offered: any of [E]ncrypted, [A]uthenticated, [O]pen\n"
                "   -c confdir        configuration directory (owampd.conf, .limits, .pfs; "
                "default " DEFAULT_CONFDIR ")\n"
                "   -d datadir        data directory for received sessions\n"
                "   -e facility       syslog facility for log messages\n"
                "   -f                allow running as root\n"
                "   -G group          run as group (name, or -gid)\n"
                "   -h                print this message and exit\n"
                "   -P portrange      test ports: low-high, or 0 for ephemeral\n"
                "   -R vardir         directory for the " PID_FILE " file\n"
                "   -S nodename:port  address to listen on (when not socket-activated)\n"
                "   -U user           run as user (name, or -uid)\n"
                "   -v                verbose logging\n"
                "   -Z                stay in the foreground, log to stderr too\n"
                "   -x, -Y, -W        accepted and ignored (the reference's NAT options)\n"
                "   --version         print the version and exit\n"
                "\n"
                "   Long forms: --help (-h), --version\n"
                "\n"
                "Version: %s\n",
                prog, PACKAGE_VERSION);
}

static int parse_user(const char *spec, uid_t *ret_uid, gid_t *ret_gid) {
        struct passwd *pw;
        if (spec[0] == '-') {
                char *end;
                errno = 0;
                unsigned long v = strtoul(spec + 1, &end, 10);
                if (errno || *end || !(pw = getpwuid((uid_t) v)))
                        return -ESRCH;
        } else if (!(pw = getpwnam(spec)))
                return -ESRCH;
        *ret_uid = pw->pw_uid;
        *ret_gid = pw->pw_gid;
        return 0;
}

static int parse_group(const char *spec, gid_t *ret) {
        struct group *gr;
        if (spec[0] == '-') {
                char *end;
                errno = 0;
                unsigned long v = strtoul(spec + 1, &end, 10);
                if (errno || *end || !(gr = getgrgid((gid_t) v)))
                        return -ESRCH;
        } else if (!(gr = getgrnam(spec)))
                return -ESRCH;
        *ret = gr->gr_gid;
        return 0;
}

/* Shutting down: how often the workers' count is looked at. */
#define DIEBY_POLL_USEC (100 * USEC_PER_MSEC)

static int on_dieby(sd_event_source *src, uint64_t usec, void *userdata) {
        Server *s = userdata;
        unsigned n = s->launcher->ops->count(s->launcher);

        if (n == 0 || usec >= s->dieby_deadline) {
                if (n > 0)
                        log_warning("%u session worker%s still running after dieby (%u s); exiting anyway",
                                    n, n == 1 ? "" : "s", s->dieby_sec);
                return sd_event_exit(s->event, 0);
        }
        (void) sd_event_source_set_time(src, usec + DIEBY_POLL_USEC);
        return sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
}

static int on_signal(sd_event_source *src _unused_, const struct signalfd_siginfo *si, void *userdata) {
        Server *s = userdata;

        if (si->ssi_signo == SIGHUP) {
                (void) sd_notify(false, "RELOADING=1");
                (void) server_reload(s);
                (void) sd_notify(false, "READY=1");
                server_update_status(s);
                return 0;
        }
        if (s->shutting_down)
                return 0;
        log_full(LOG_INFO, 0, &(LogFields) { .message_id = MSGID_DAEMON_STOPPED }, "owampd stopping (signal %u)",
                 si->ssi_signo);
        (void) sd_notify(false, "STOPPING=1");
        s->shutting_down = true;
        server_close_conns(s);
        guard_free(s);
        /* dieby: how long the workers get to be gone before we exit
         * without them. */
        if (s->launcher && s->launcher->ops->count(s->launcher) > 0 && s->dieby_sec > 0) {
                uint64_t now;
                (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
                if (sd_event_add_time(s->event, &s->dieby_timer, CLOCK_MONOTONIC, now + DIEBY_POLL_USEC,
                                      USEC_PER_MSEC, on_dieby, s) >= 0) {
                        (void) sd_event_source_set_description(s->dieby_timer, "dieby");
                        s->dieby_deadline = now + (uint64_t) s->dieby_sec * USEC_PER_SEC;
                        return 0;
                }
        }
        return sd_event_exit(s->event, 0);
}

static int write_pid_files(Server *s) {
        _cleanup_free_ char *pidp = NULL, *infop = NULL;
        if (asprintf(&pidp, "%s/%s", s->vardir, PID_FILE) < 0 || asprintf(&infop, "%s/%s", s->vardir, INFO_FILE) < 0)
                return -ENOMEM;
        s->pid_fd = -1;
        int fd = open(pidp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", pidp);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                safe_close(fd);
                return log_error_errno(r, "Cannot lock %s (is another owampd running?): %m", pidp);
        }
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "%lld\n", (long long) getpid());
        if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t) n) != n) {
                int r = -errno;
                safe_close(fd);
                return log_error_errno(r, "Cannot write %s: %m", pidp);
        }
        /* fd stays open (and locked) for the life of the process. */
        s->pid_fd = fd;
        s->pid_path = TAKE_PTR(pidp);
        FILE *f = fopen(infop, "we");
        if (!f)
                return log_error_errno(errno, "Cannot write %s: %m", infop);
        s->info_path = TAKE_PTR(infop);
        fprintf(f, "START=%020llu\nPID=%lld\n", (unsigned long long) s->uptime, (long long) getpid());
        fclose(f);
        return 0;
}

/* Nothing of the reference reads these once owampd is gone (its init
 * script and perfSONAR's service checks read the pid while it runs), so a
 * stop leaves no stale pid behind. The pid file goes while we still hold
 * its lock: no other owampd can have written it. Without write access to
 * vardir any more (root left for -U), say so and leave them. */
static void remove_pid_files(Server *s) {
        const char *paths[] = { s->info_path, s->pid_path };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (paths[i] && unlink(paths[i]) < 0 && errno != ENOENT)
                        log_notice("Cannot remove %s: %m", paths[i]);
        s->pid_fd = safe_close(s->pid_fd);
        s->info_path = mfree(s->info_path);
        s->pid_path = mfree(s->pid_path);
}

static int take_listeners(Server *s, bool *ret_activated) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);
        *ret_activated = false;
        if (n < 0)
                return log_error_errno(n, "Cannot take sockets from systemd: %m");
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "?";
                if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0) {
                        log_warning("Ignoring passed fd %d (%s): not a listening TCP socket", fd, name);
                        safe_close(fd);
                        continue;
                }
                int r = server_add_listener(s, fd);
                if (r < 0)
                        return log_error_errno(r, "Cannot use passed socket %s: %m", name);
                log_debug("Using socket-activated listener %s (fd %d)", name, fd);
                *ret_activated = true;
        }
        if (names) {
                for (int i = 0; i < n; i++)
                        free(names[i]);
                free(names);
        }
        return 0;
}

/* Every control connection holds a socket and every session two or three
 * more (its worker's channel, the data file, the test socket until the
 * worker takes it): a thousand sessions need a few thousand descriptors,
 * more than the usual soft limit of 1024. Take what the hard limit allows
 * (524288 under systemd). The workers inherit it, which is harmless: they
 * have three descriptors and use poll(), never select(). */
static void raise_nofile_limit(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_debug_errno(errno, "Cannot raise the file descriptor limit: %m");
}

/* The session launcher (owampd(8), "SYSTEMD AND PRIVILEGES"): transient
 * units through owampd-launcher when systemd manages the host, child
 * processes otherwise or when asked. */
static int setup_launcher(Server *s, OwSessionLauncher mode) {
        const char *socket_path = getenv("OWAMP_LAUNCHER_SOCKET");
        const char *why = NULL;
        int r;

        if (isempty(socket_path))
                socket_path = LAUNCHER_SOCKET_PATH;
        if (mode == OW_SESSION_LAUNCHER_AUTO) {
                if (sd_booted() <= 0)
                        why = "systemd does not manage this host";
                else if (access("/run/dbus/system_bus_socket", F_OK) < 0)
                        why = "the system bus is not reachable";
        }
        if (mode != OW_SESSION_LAUNCHER_FORK && !why) {
                r = launcher_systemd_new(s->event, socket_path, 5 * USEC_PER_SEC, &s->launcher);
                if (r >= 0)
                        return 0;
                if (mode == OW_SESSION_LAUNCHER_SYSTEMD)
                        return log_error_errno(r, "sessionlauncher systemd: cannot use owampd-launcher at %s: %m",
                                               socket_path);
                /* Not there at all is normal for owampd run by hand; there
                 * but refusing or broken is worth a warning. */
                log_full(r == -ENOENT ? LOG_INFO : LOG_WARNING, r, NULL,
                         "owampd-launcher at %s is not available (%m); running sessions as child processes",
                         socket_path);
        } else if (why)
                log_debug("Running sessions as child processes: %s", why);
        _cleanup_free_ char *worker = NULL;
        r = worker_path_find(&worker);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return log_error_errno(r, "The session worker %s cannot be run (%m): " WORKER_PATH_HINT, worker);
        return launcher_fork_new(s->event, worker, &s->launcher);
}

/* The first directory of $STATE_DIRECTORY (StateDirectory= in the unit). */
static char *state_directory(void) {
        const char *e = getenv("STATE_DIRECTORY");
        if (isempty(e))
                return NULL;
        return strndup(e, strcspn(e, ":"));
}

static int drop_privileges(uid_t uid, gid_t gid, bool have_user, bool have_group) {
        if (!have_user && !have_group)
                return 0;
        if (setgroups(0, NULL) < 0 && errno != EPERM)
                return log_error_errno(errno, "setgroups(): %m");
        if (have_group && setresgid(gid, gid, gid) < 0)
                return log_error_errno(errno, "Cannot change group to %u: %m", (unsigned) gid);
        if (have_user && setresuid(uid, uid, uid) < 0)
                return log_error_errno(errno, "Cannot change user to %u: %m", (unsigned) uid);
        return 0;
}

int main(int argc, char **argv) {
        Server srv = { .port_low = 0, .pid_fd = -1 }, *s = &srv;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        OwConf *conf = NULL, *cli = NULL;
        Options o = {};
        OwDiag diag = {};
        char msg[512];
        int c, r, ret = EXIT_FAILURE;
        const char *prog = "owampd";
        static const char optstring[] = "+a:c:d:e:fG:hP:R:S:U:vZxYW";
        static const struct option longopts[] = {
                { "help", no_argument, NULL, 'h' },
                USAGE_VERSION_OPTION,
                {},
        };

        /* The command line, kept apart: it is applied over the files now
         * and again over every reload. */
        if (ow_conf_new(&cli) < 0)
                return EXIT_FAILURE;
        while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
                OwConfKey key;
                switch (c) {
                case 'a':
                        key = OW_CONF_AUTHMODE;
                        break;
                case 'd':
                        key = OW_CONF_DATADIR;
                        break;
                case 'e':
                        key = OW_CONF_FACILITY;
                        break;
                case 'G':
                        key = OW_CONF_GROUP;
                        break;
                case 'P':
                        key = OW_CONF_TESTPORTS;
                        break;
                case 'R':
                        key = OW_CONF_VARDIR;
                        break;
                case 'S':
                        key = OW_CONF_SRCNODE;
                        break;
                case 'U':
                        key = OW_CONF_USER;
                        break;
                case 'v':
                        key = OW_CONF_VERBOSE;
                        break;
                case 'f':
                        o.allow_root = true;
                        continue;
                case 'Z':
                        o.foreground = true;
                        continue;
                case 'c':
                        o.confdir = optarg;
                        continue;
                case 'x':
                case 'Y':
                case 'W':
                        fprintf(stderr, "owampd: -%c (NAT traversal) is not supported; ignoring it\n", c);
                        continue;
                case 'h':
                        help(prog);
                        ow_conf_free(cli);
                        return EXIT_SUCCESS;
                case USAGE_ARG_VERSION:
                        usage_version(prog);
                        ow_conf_free(cli);
                        return EXIT_SUCCESS;
                default:
                        help(prog);
                        ow_conf_free(cli);
                        return EXIT_FAILURE;
                }
                r = ow_conf_set(cli, key, key == OW_CONF_VERBOSE ? NULL : optarg, &diag);
                if (r < 0) {
                        fprintf(stderr, "owampd: -%c %s: %s\n", c, optarg ? optarg : "",
                                ow_diag_format(&diag, msg, sizeof(msg)));
                        ow_conf_free(cli);
                        return EXIT_FAILURE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "owampd: unexpected argument '%s'\n", argv[optind]);
                help(prog);
                ow_conf_free(cli);
                return EXIT_FAILURE;
        }

        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        if (!cwd) {
                perror("owampd: getcwd");
                return EXIT_FAILURE;
        }
        s->confdir = strdup(o.confdir ? o.confdir : DEFAULT_CONFDIR);
        if (!s->confdir)
                return EXIT_FAILURE;
        r = config_load(s->confdir, cli, &conf, msg, sizeof(msg));
        if (r < 0) {
                fprintf(stderr, "owampd: %s\n", msg);
                ow_conf_free(cli);
                free(s->confdir);
                return EXIT_FAILURE;
        }
        s->cli = cli;
        s->conf = conf;

        /* Under systemd, never fork; elsewhere the reference daemonizes
         * unless -Z. */
        bool under_systemd = getenv("NOTIFY_SOCKET") || getenv("INVOCATION_ID");
        s->foreground = o.foreground || under_systemd;
        log_setup("owampd", LOG_TARGET_AUTO, conf->facility, o.foreground, config_log_priority(conf));
        server_apply_config(s, conf);

        if (clock_offset_from_env(&s->clock_offset_nsec) < 0) {
                log_error("Invalid OWAMP_DEBUG_TIMEOFFSET '%s': seconds expected", getenv("OWAMP_DEBUG_TIMEOFFSET"));
                goto finish;
        }
        if (fetch_wait_interval_from_env(&s->fetch_wait_usec) < 0) {
                log_error("Invalid OWAMP_DEBUG_FETCH_WAIT '%s': seconds (0.001 to 60) expected",
                          getenv("OWAMP_DEBUG_FETCH_WAIT"));
                goto finish;
        }
        if (start_timeout_from_env(&s->start_timeout_usec) < 0) {
                log_error("Invalid OWAMP_DEBUG_START_TIMEOUT '%s': seconds (0.1 to 600) expected",
                          getenv("OWAMP_DEBUG_START_TIMEOUT"));
                goto finish;
        }

        /* Not a cleanup variable: the error paths jump past it. */
        char *state_dir = state_directory();
        s->datadir = strdup(conf->datadir ? conf->datadir : state_dir ? state_dir : cwd);
        free(state_dir);
        s->vardir = strdup(conf->vardir ? conf->vardir : cwd);
        if (!s->datadir || !s->vardir)
                goto finish;

        /* The parser already holds it to 1024.., as RFC 4656 asks. */
        if (ow_pbkdf2_count_check_server(s->pbkdf2_count) < 0) {
                log_error("pbkdf2_count %u is out of range (%u..%u)", s->pbkdf2_count, OW_PBKDF2_COUNT_MIN,
                          OW_PBKDF2_COUNT_MAX);
                goto finish;
        }

        uid_t uid = 0;
        gid_t gid = 0;
        bool have_user = false, have_group = false;
        if (geteuid() == 0) {
                if (conf->user) {
                        if (parse_user(conf->user, &uid, &gid) < 0) {
                                log_error("Invalid user/-U option: %s", conf->user);
                                goto finish;
                        }
                        have_user = true;
                        have_group = true;
                }
                if (conf->group) {
                        if (parse_group(conf->group, &gid) < 0) {
                                log_error("Invalid group/-G option: %s", conf->group);
                                goto finish;
                        }
                        have_group = true;
                }
                if (!have_user && !o.allow_root && !conf->rootfolly) {
                        log_error("Running owampd as root is folly!");
                        log_error("Use the -U option! (or allow root with the -f option)");
                        goto finish;
                }
        }

        struct stat st;
        if (stat(s->datadir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                log_error("Data directory %s does not exist or is not a directory", s->datadir);
                goto finish;
        }

        raise_nofile_limit();
        session_limit_update(s); /* from the limit raised */

        r = sd_event_default(&event);
        if (r < 0) {
                log_error_errno(r, "sd_event_default(): %m");
                goto finish;
        }
        r = server_init(s, event);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the server: %m");
                goto finish;
        }
        s->uptime = server_now(s);
        r = guard_new(s);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the connection limits: %m");
                goto finish;
        }

        Policy *policy = NULL;
        r = policy_load(s->confdir, s->conf->allowinsecurepfs, &policy, msg, sizeof(msg));
        if (r < 0) {
                log_full(LOG_ERR, r, &(LogFields){ .message_id = MSGID_CONFIG_ERROR }, "%s", msg);
                goto finish;
        }
        server_install_policy(s, policy, false);
        /* Disk usage from what is stored, so it never drifts across restarts. */
        r = datastore_scan(s);
        if (r < 0)
                goto finish;
        (void) datastore_recover(s);
        uint64_t stored = 0;
        for (size_t i = 0; i < s->n_files; i++)
                stored += s->files[i].size;
        log_info("Data directory %s: %zu session file%s, %" PRIu64 " octets", s->datadir, s->n_files,
                 s->n_files == 1 ? "" : "s", stored);

        bool activated;
        r = take_listeners(s, &activated);
        if (r < 0)
                goto finish;
        if (activated && ow_conf_is_set(conf, OW_CONF_SRCNODE))
                log_notice("Socket-activated: ignoring srcnode/-S %s (the socket unit decides where to listen)",
                           conf->srcnode.host[0] ? conf->srcnode.host : "(wildcard)");
        if (!activated) {
                char node[OW_CONF_MAX_HOST + 16] = "";
                if (ow_conf_is_set(conf, OW_CONF_SRCNODE)) {
                        const OwConfNode *n = &conf->srcnode;
                        if (strchr(n->host, ':'))
                                snprintf(node, sizeof(node), "[%s]:%u", n->host,
                                         n->port ? n->port : OWAMP_CONTROL_PORT);
                        else
                                snprintf(node, sizeof(node), "%s:%u", n->host, n->port ? n->port : OWAMP_CONTROL_PORT);
                }
                r = server_bind_listener(s, node[0] ? node : NULL);
                if (r < 0)
                        goto finish;
        }

        if (!s->foreground) {
                pid_t pid = fork();
                if (pid < 0) {
                        log_error_errno(errno, "fork(): %m");
                        goto finish;
                }
                if (pid > 0)
                        _exit(EXIT_SUCCESS);
                (void) setsid();
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        dup2(null, 0);
                        dup2(null, 1);
                        dup2(null, 2);
                        safe_close(null);
                }
                int chdir_errno = chdir("/") < 0 ? errno : 0;
                /* A daemon has no stderr; everything goes to the journal/syslog. */
                log_setup("owampd", LOG_TARGET_AUTO, conf->facility, false, config_log_priority(conf));
                if (chdir_errno != 0)
                        log_warning_errno(chdir_errno, "Cannot change to /, staying where started: %m");
        }

        if (ow_conf_is_set(conf, OW_CONF_VARDIR) || !under_systemd) {
                r = write_pid_files(s);
                if (r < 0)
                        goto finish;
        }

        if (drop_privileges(uid, gid, have_user, have_group) < 0)
                goto finish;

        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        (void) sd_event_add_signal(event, NULL, SIGTERM, on_signal, s);
        (void) sd_event_add_signal(event, NULL, SIGINT, on_signal, s);
        (void) sd_event_add_signal(event, NULL, SIGHUP, on_signal, s);
        (void) sd_event_set_watchdog(event, true);

        r = setup_launcher(s, conf->sessionlauncher);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the session launcher: %m");
                goto finish;
        }

        char ports[32] = "ephemeral (the kernel's choice)";
        if (s->port_low != 0)
                snprintf(ports, sizeof(ports), "%u-%u", s->port_low, s->port_high);
        log_full(LOG_INFO, 0, &(LogFields) { .message_id = MSGID_DAEMON_STARTED },
                 "owampd %s ready: modes %s%s%s, test ports %s, data in %s, sessions via %s, at most %u at once",
                 PACKAGE_VERSION, s->modes & OW_MODE_OPEN ? "O" : "", s->modes & OW_MODE_AUTHENTICATED ? "A" : "",
                 s->modes & OW_MODE_ENCRYPTED ? "E" : "", ports, s->datadir, s->launcher->ops->name,
                 s->max_test_sessions);
        (void) sd_notify(false, "READY=1");
        server_update_status(s);

        r = sd_event_loop(event);
        ret = r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

finish:
        server_close_conns(s);
        guard_free(s);
        session_queue_done(s);
        remove_pid_files(s);
        server_done(s);
        return ret;
}
