/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The server process: its set-up and tear-down, listeners, accepting
 * connections (and freeing those that closed), the configuration applied
 * and reloaded, status for systemd, and the small context helpers every
 * part of owampd uses (server.h).
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "clock.h"
#include "config.h"
#include "conn.h"
#include "datastore.h"
#include "guard.h"
#include "launch-proto.h"
#include "owampd-config.h"
#include "ow-error.h"
#include "policy.h"
#include "session.h"
#include "units.h"
#include "worker-path.h"

#define ACCEPT_BATCH 1024u

OwTimestamp server_now(const Server *s) {
        return clock_now(s->clock_offset_nsec);
}

uint64_t server_monotonic_usec(const Server *s) {
        uint64_t now = 0;
        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        return now;
}

int server_env_seconds_usec(const char *name, double min, double max, uint64_t dflt_usec, uint64_t *ret_usec) {
        int64_t nsec;
        int r = env_seconds_nsec(name, min, max, (int64_t) (dflt_usec * NSEC_PER_USEC), &nsec);
        if (r < 0)
                return r;
        *ret_usec = (uint64_t) nsec / NSEC_PER_USEC;
        return 0;
}

TestSession *server_find_session(Server *s, const OwSid *sid) {
        TestSession *t;
        LIST_FOREACH(all, t, s->all_sessions)
                if (ow_sid_equal(&t->sid, sid))
                        return t;
        return NULL;
}

void server_update_status(Server *s) {
        (void) sd_notifyf(false, "STATUS=%u control connection%s, %u session%s running", s->n_conns,
                          s->n_conns == 1 ? "" : "s", s->n_sessions_running,
                          s->n_sessions_running == 1 ? "" : "s");
}

/* Out of descriptors: the listeners wait this long before they accept
 * again (level-triggered, they would spin meanwhile). */
#define ACCEPT_PAUSE_USEC (100 * USEC_PER_MSEC)

static void listeners_enable(Server *s, int enabled) {
        for (size_t i = 0; i < s->n_listeners; i++)
                (void) sd_event_source_set_enabled(s->listeners[i], enabled);
}

static int on_accept_pause_over(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        Server *s = userdata;
        if (!s->shutting_down)
                listeners_enable(s, SD_EVENT_ON);
        return 0;
}

static void accept_pause(Server *s, int error) {
        uint64_t now = server_monotonic_usec(s);
        int r;

        if (s->accept_pause_logged_usec == 0 || now >= s->accept_pause_logged_usec + 10 * USEC_PER_SEC) {
                log_warning_errno(error, "Cannot accept connections: %m (%u open); pausing for %u ms", s->n_conns,
                                  (unsigned) (ACCEPT_PAUSE_USEC / USEC_PER_MSEC));
                s->accept_pause_logged_usec = now;
        }
        if (!s->accept_pause) {
                r = sd_event_add_time(s->event, &s->accept_pause, CLOCK_MONOTONIC, UINT64_MAX, 0,
                                      on_accept_pause_over, s);
                if (r < 0)
                        return; /* keep accepting: a busy loop is better than none */
                (void) sd_event_source_set_description(s->accept_pause, "accept-pause");
        }
        (void) sd_event_source_set_time(s->accept_pause, now + ACCEPT_PAUSE_USEC);
        (void) sd_event_source_set_enabled(s->accept_pause, SD_EVENT_ONESHOT);
        listeners_enable(s, SD_EVENT_OFF);
}

static int on_listener(sd_event_source *src _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        Server *s = userdata;

        /* Drain the queue, up to a bound so one busy listener cannot starve
         * the rest of the loop. A small bound let a storm of reconnecting
         * clients overflow the kernel's queue, and a new client's SYNs were
         * dropped (seconds of retransmits) while owampd had time to spare:
         * a refusal over maxcontrolsessionsperaddr costs less than a
         * retransmit. */
        for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
                SockAddr peer;
                socklen_t len = sizeof(peer);
                int cfd = accept4(fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                                return 0;
                        if (errno == EMFILE || errno == ENFILE) {
                                accept_pause(s, errno);
                                return 0;
                        }
                        return log_error_errno(errno, "accept() failed: %m"), 0;
                }
                if (s->shutting_down) {
                        safe_close(cfd);
                        continue;
                }
                (void) conn_new(s, cfd, &peer);
        }
        return 0;
}

int server_add_listener(Server *s, int fd) {
        sd_event_source **n = realloc(s->listeners, (s->n_listeners + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        s->listeners = n;
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        int r = sd_event_add_io(s->event, &s->listeners[s->n_listeners], fd, EPOLLIN, on_listener, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_io_fd_own(s->listeners[s->n_listeners], true);
        (void) sd_event_source_set_description(s->listeners[s->n_listeners], "listener");
        s->n_listeners++;
        return 0;
}

/* Bind the control port ourselves (not socket-activated): "node:port",
 * "[v6]:port", ":port" (wildcard) or "node" (port 861). The wildcard is one
 * dual-stack IPv6 socket, falling back to IPv4 where IPv6 is off. */
int server_bind_listener(Server *s, const char *spec) {
        _cleanup_free_ char *node = NULL;
        _cleanup_free_ SockAddr *addrs = NULL;
        uint16_t port;
        size_t n = 0;
        int r;

        r = net_split_node(spec ? spec : "", OWAMP_CONTROL_PORT, &node, &port);
        if (r == -EINVAL && isempty(spec)) {
                node = NULL;
                port = OWAMP_CONTROL_PORT;
                r = 0;
        }
        if (r < 0)
                return log_error_errno(r, "Invalid listen address '%s'", spec);

        if (!node) {
                SockAddr any6 = { .in6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) } };
                SockAddr any4 = { .in = { .sin_family = AF_INET, .sin_port = htons(port) } };
                addrs = calloc(2, sizeof(SockAddr));
                if (!addrs)
                        return -ENOMEM;
                addrs[0] = any6;
                addrs[1] = any4;
                n = 2;
        } else {
                r = net_resolve(node, port, AF_UNSPEC, true, &addrs, &n);
                if (r < 0)
                        return log_error_errno(r, "Cannot resolve listen address '%s': %s", node,
                                               r == -EADDRNOTAVAIL ? "no such host" : strerror(-r));
        }

        for (size_t i = 0; i < n; i++) {
                char buf[SOCKADDR_STR_MAX];
                int fd = socket(addrs[i].sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                int one = 1, zero = 0;
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (addrs[i].sa.sa_family == AF_INET6 && !node)
                        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                if (bind(fd, &addrs[i].sa, sockaddr_len(&addrs[i])) < 0 || listen(fd, SOMAXCONN) < 0) {
                        r = -errno;
                        log_debug_errno(r, "Cannot listen on %s: %m", sockaddr_str(&addrs[i], buf, sizeof(buf)));
                        safe_close(fd);
                        continue;
                }
                r = server_add_listener(s, fd);
                if (r < 0) {
                        safe_close(fd);
                        return r;
                }
                log_debug("Listening on %s", sockaddr_str(&addrs[i], buf, sizeof(buf)));
                /* One wildcard socket (dual-stack) is enough. */
                if (!node || s->n_listeners > 0)
                        return 0;
        }
        return log_error_errno(r ? r : -EADDRNOTAVAIL, "Cannot listen on %s: %m", spec ? spec : ":861");
}

/* --- Connections that closed -------------------------------------------- */

/* A connection closes inside its own callbacks (conn.c) and is freed here,
 * from an event of the server's, once they have returned: at a higher
 * priority than the listeners and the connections, so its descriptor and
 * its place in the counts are given back before anything else runs. */
static int on_closing(sd_event_source *src _unused_, void *userdata) {
        Server *s = userdata;

        while (s->closing)
                conn_free(s->closing);
        return 0;
}

void server_close_conns(Server *s) {
        while (s->conns)
                conn_free(s->conns);
        while (s->closing)
                conn_free(s->closing);
}

/* --- Set-up and tear-down ------------------------------------------------ */

int server_init(Server *s, sd_event *event) {
        int r;

        s->event = event;
        r = sd_event_add_defer(event, &s->closing_source, on_closing, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_priority(s->closing_source, SD_EVENT_PRIORITY_IMPORTANT);
        (void) sd_event_source_set_description(s->closing_source, "connections-closing");
        (void) sd_event_source_set_enabled(s->closing_source, SD_EVENT_OFF);
        return 0;
}

void server_done(Server *s) {
        server_close_conns(s);
        guard_free(s);
        session_queue_done(s);
        s->closing_source = sd_event_source_disable_unref(s->closing_source);
        s->dieby_timer = sd_event_source_disable_unref(s->dieby_timer);
        launcher_free(s->launcher);
        s->launcher = NULL;
        datastore_done(s);
        s->policy = policy_unref(s->policy);
        s->accept_pause = sd_event_source_disable_unref(s->accept_pause);
        for (size_t i = 0; i < s->n_listeners; i++)
                sd_event_source_disable_unref(s->listeners[i]);
        s->listeners = mfree(s->listeners);
        s->n_listeners = 0;
        s->confdir = mfree(s->confdir);
        s->datadir = mfree(s->datadir);
        s->vardir = mfree(s->vardir);
        s->conf = ow_conf_free(s->conf);
        s->cli = ow_conf_free(s->cli);
}

/* --- The process: signals, pid files, sockets from systemd, the launcher --- */

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

int server_write_pid_files(Server *s) {
        _cleanup_free_ char *pidp = NULL, *infop = NULL;
        if (asprintf(&pidp, "%s/%s", s->vardir, SERVER_PID_FILE) < 0 || asprintf(&infop, "%s/%s", s->vardir, SERVER_INFO_FILE) < 0)
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
void server_remove_pid_files(Server *s) {
        const char *paths[] = { s->info_path, s->pid_path };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (paths[i] && unlink(paths[i]) < 0 && errno != ENOENT)
                        log_notice("Cannot remove %s: %m", paths[i]);
        s->pid_fd = safe_close(s->pid_fd);
        s->info_path = mfree(s->info_path);
        s->pid_path = mfree(s->pid_path);
}

int server_take_listeners(Server *s, bool *ret_activated) {
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
void server_raise_nofile_limit(void) {
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
int server_setup_launcher(Server *s, OwSessionLauncher mode) {
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

void server_watch_signals(Server *s) {
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        (void) sd_event_add_signal(s->event, NULL, SIGTERM, on_signal, s);
        (void) sd_event_add_signal(s->event, NULL, SIGINT, on_signal, s);
        (void) sd_event_add_signal(s->event, NULL, SIGHUP, on_signal, s);
        (void) sd_event_set_watchdog(s->event, true);
}

/* --- Configuration and policy -------------------------------------------- */

void server_apply_config(Server *s, const OwConf *conf) {
        s->verbose = conf->verbose;
        s->modes = conf->authmode;
        s->port_low = conf->testports.low;
        s->port_high = conf->testports.high;
        s->pbkdf2_count = conf->pbkdf2_count;
        s->control_timeout_usec = (uint64_t) conf->controltimeout_sec * USEC_PER_SEC;
        s->enddelay_nsec = ow_duration_to_nsec(conf->enddelay);
        s->max_control_sessions = conf->maxcontrolsessions;
        s->max_test_sessions_conf = conf->maxtestsessions;
        s->diskfudge = conf->diskfudge;
        /* The parser bounds it to 1.0 .. 10.0. */
        s->diskfudge_permille = (uint32_t) (conf->diskfudge * 1000.0 + 0.5);
        s->dieby_sec = conf->dieby_sec;
        s->setup_timeout_usec = (uint64_t) conf->setuptimeout_sec * USEC_PER_SEC;
        s->max_conns_per_addr = conf->maxcontrolsessionsperaddr;
        s->max_auth_failures = conf->maxauthfailures;
        s->auth_fail_window_usec = (uint64_t) conf->authfailwindow_sec * USEC_PER_SEC;
        s->auth_backoff_usec = (uint64_t) conf->authbackoff_sec * USEC_PER_SEC;
        log_set_max_priority(config_log_priority(conf));
        log_set_facility(conf->facility);
        log_set_location(conf->loglocation);
}

void server_install_policy(Server *s, Policy *p, bool reload) {
        if (s->policy)
                p->generation = s->policy->generation + 1;
        policy_unref(s->policy);
        s->policy = p;
        /* Name a file only as the source of what it held. */
        log_full(LOG_INFO, 0, &(LogFields){ .message_id = reload ? MSGID_CONFIG_RELOADED : NULL },
                 "%s policy: %zu key%s %s %s%s, %zu class%s %s %s%s", reload ? "Reloaded" : "Loaded",
                 ow_pfs_count(p->pfs), ow_pfs_count(p->pfs) == 1 ? "" : "s",
                 p->pfs_missing ? "(there is no" : "from", p->pfs_path, p->pfs_missing ? ")" : "",
                 ow_limits_n_classes(p->limits), ow_limits_n_classes(p->limits) == 1 ? "" : "es",
                 p->limits_missing ? "(the default, open to all: there is no" : "from", p->limits_path,
                 p->limits_missing ? ")" : "");
        /* The pass-phrases are the keys of modes A and E. */
        if (policy_pfs_insecure(p))
                log_warning("%s is %s by others (mode %04o): anyone on this host can %s the pass-phrases "
                            "(allowinsecurepfs is set); make it root:owamp and mode 0640 (chmod 0640)",
                            p->pfs_path, p->pfs_mode & S_IWOTH ? "writable" : "readable",
                            (unsigned) (p->pfs_mode & 07777), p->pfs_mode & S_IWOTH ? "change" : "read");
}

int server_reload(Server *s) {
        _cleanup_(policy_unrefp) Policy *p = NULL;
        OwConf *conf = NULL;
        char err[512];
        int r;

        r = config_load(s->confdir, s->cli, &conf, err, sizeof(err));
        if (r >= 0)
                r = policy_load(s->confdir, conf->allowinsecurepfs, &p, err, sizeof(err));
        if (r < 0) {
                ow_conf_free(conf);
                log_full(LOG_ERR, r, &(LogFields){ .message_id = MSGID_CONFIG_ERROR },
                         "Reload failed: %s (keeping the previous configuration and policy)", err);
                return r;
        }

        config_warn_restart_only(s->conf, conf);
        /* The restart-only settings stay as they were, so a later reload
         * compares against what really runs. */
        OwConf *keep = s->conf;
        free(conf->user);
        free(conf->group);
        free(conf->datadir);
        free(conf->vardir);
        conf->user = keep->user ? strdup(keep->user) : NULL;
        conf->group = keep->group ? strdup(keep->group) : NULL;
        conf->datadir = keep->datadir ? strdup(keep->datadir) : NULL;
        conf->vardir = keep->vardir ? strdup(keep->vardir) : NULL;
        conf->srcnode = keep->srcnode;
        conf->rootfolly = keep->rootfolly;
        conf->sessionlauncher = keep->sessionlauncher;

        server_apply_config(s, conf);
        session_limit_update(s);
        ow_conf_free(s->conf);
        s->conf = conf;
        server_install_policy(s, TAKE_PTR(p), true);
        /* Usage from what is really in the data directory now. */
        (void) datastore_scan(s);
        return 0;
}
