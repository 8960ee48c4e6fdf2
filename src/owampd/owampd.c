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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "owampd-config.h"
#include "ow-conf.h"
#include "ow-error.h"
#include "policy.h"
#include "server.h"
#include "session.h"
#include "usage.h"

/* Where the packages install owampd.conf, owampd.limits and owampd.pfs
 * (meson's sysconfdir, /etc on Debian). */
#define DEFAULT_CONFDIR SYSCONFDIR "/owamp"

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
                "   -R vardir         directory for the " SERVER_PID_FILE " file\n"
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

static int run(const Options *opts, OwConf *cli);

int main(int argc, char **argv) {
        OwConf *cli = NULL;
        Options o = {};
        OwDiag diag = {};
        char msg[512];
        int c, r;
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
        return run(&o, cli);
}

/* The server from its configuration to its end: cli is the command line's
 * settings (taken). */
static int run(const Options *opts, OwConf *cli) {
        Server srv = { .port_low = 0, .pid_fd = -1 }, *s = &srv;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        const Options o = *opts;
        OwConf *conf = NULL;
        char msg[512];
        int r, ret = EXIT_FAILURE;

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

        server_raise_nofile_limit();
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
        r = server_take_listeners(s, &activated);
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
                r = server_write_pid_files(s);
                if (r < 0)
                        goto finish;
        }

        if (drop_privileges(uid, gid, have_user, have_group) < 0)
                goto finish;

        server_watch_signals(s);

        r = server_setup_launcher(s, conf->sessionlauncher);
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
        server_remove_pid_files(s);
        server_done(s);
        return ret;
}
