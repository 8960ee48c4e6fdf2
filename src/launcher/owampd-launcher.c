/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owampd-launcher: the privileged half of owampd under systemd.
 *
 * systemd lets only UID 0 (or CAP_SYS_ADMIN, or a polkit grant, which for
 * StartTransientUnit cannot be scoped to a unit name) start transient units.
 * owampd itself parses untrusted network input and so runs as an
 * unprivileged user in a tight sandbox; this broker holds the privilege
 * instead and offers exactly one operation: run the fixed owamp-session
 * program as owamp-session-<sid>.service, under a dynamic UID in a fixed
 * sandbox, with the two sockets owampd hands over, for a bounded time; and
 * stop such a unit again. Nothing in a request chooses a program, path,
 * user, property or unit name beyond the SID (launch-proto.h).
 *
 * It is socket-activated with Accept=yes on an AF_UNIX socket that only
 * root and the owamp group can open, and checks that its peer runs in
 * owampd.service. One instance serves one owampd process and follows that
 * process's units on the system bus (JobRemoved for the start job,
 * PropertiesChanged for the end), reporting each end to owampd. When owampd
 * goes away, for whatever reason, it stops every unit still running and
 * exits once they are gone.
 *
 * It runs as root without any capability, in a sandbox of its own
 * (units/owampd-launcher@.service).
 */

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "launch-proto.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "ow-error.h"
#include "usage.h"

#define WORKER_PATH LIBEXECDIR "/owamp/owamp-session"

/* At most this many units per owampd; beyond, START is refused. owampd's
 * own bound (maxtestsessions, 1024 by default) keeps it below that; this
 * one is the broker's, since it must assume owampd may be compromised.
 * OWAMP_LAUNCHER_MAX_UNITS= in its unit changes it (1 to MAX_UNITS_MAX). */
#define MAX_UNITS_DEFAULT 1024
#define MAX_UNITS_MAX 65536
/* Calls to systemd awaiting an answer, at most (StartTransientUnit,
 * StopUnit, GetAll). The system bus lets a connection wait for 128 replies
 * (dbus-daemon's max_replies_per_connection); beyond, it refuses the call
 * and systemd never sees it: 520 sessions started at once lost units that
 * way, and their stops failed likewise. While this many are out, the
 * broker reads no more requests (owampd finds the socket full and tries
 * again later, launcher-systemd.c; the descriptors of the waiting requests
 * stay in the socket, not here), and stops and result queries wait their
 * turn. */
#define BUS_CALLS_MAX 64
/* How long systemd may take to run a unit's program (Type=exec: until
 * execve()); owampd gives a whole batch 30 s to become ready. */
#define UNIT_START_TIMEOUT_USEC (20 * UINT64_C(1000000))
/* The answer to StartTransientUnit; after this the unit is stopped in case
 * systemd made it all the same. */
#define START_CALL_TIMEOUT_USEC (25 * UINT64_C(1000000))
/* Each unit's own limits: the worker holds its test socket, its channel and
 * its log streams (a handful of descriptors), one thread, and buffers of a
 * few hundred KiB. */
#define UNIT_NOFILE_MAX UINT64_C(64)
#define UNIT_TASKS_MAX UINT64_C(4)
#define UNIT_MEMORY_MAX (UINT64_C(64) * 1024 * 1024)
/* A session unit gets this long to end on SIGTERM before SIGKILL. */
#define UNIT_STOP_TIMEOUT_USEC (5 * UINT64_C(1000000))
/* After owampd left: how long to wait for the units to go before exiting. */
#define EXIT_GRACE_USEC (20 * UINT64_C(1000000))
#define SEND_TIMEOUT_SEC 2

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"

typedef struct Broker Broker;
typedef struct Unit Unit;

struct Unit {
        Broker *broker;
        LIST_FIELDS(Unit, units);
        char sid[LAUNCH_SID_LEN + 1];
        char name[LAUNCH_UNIT_NAME_MAX];
        char *path;
        sd_bus_slot *call_slot; /* its StartTransientUnit or GetAll, while unanswered (counted in n_calls) */
        bool stop_wanted;       /* its StopUnit waits for room among the calls */
        bool finish_wanted;     /* its GetAll waits likewise */
        bool start_job_done; /* the first JobRemoved for it: its start job */
        bool finishing;      /* inactive: collecting its result */
        bool stop_sent;
};

struct Broker {
        sd_event *event;
        sd_bus *bus;
        int fd;
        pid_t peer_pid;
        sd_event_source *io;
        sd_event_source *exit_timer;
        LIST_HEAD(Unit, units);
        unsigned n_units;
        unsigned max_units;
        unsigned n_calls; /* calls to systemd awaiting an answer */
        bool closing;
        bool exiting;
};

static void unit_log(Unit *u, int priority, const char *message_id, int error, const char *fmt, ...)
        _printf_(5, 6);

static void unit_log(Unit *u, int priority, const char *message_id, int error, const char *fmt, ...) {
        char unit_field[sizeof("OWAMP_UNIT=") + LAUNCH_UNIT_NAME_MAX];
        const char *extra[] = { unit_field, NULL };
        snprintf(unit_field, sizeof(unit_field), "OWAMP_UNIT=%s", u->name);
        LogFields f = { .message_id = message_id, .sid = u->sid, .extra = extra };
        va_list ap;
        va_start(ap, fmt);
        log_fullv(priority, error, &f, fmt, ap);
        va_end(ap);
}

static void send_event(Broker *b, LaunchMsgType type, const char *sid, int status) {
        if (b->fd < 0)
                return;
        LaunchMsg m = { .type = type, .status = status };
        memcpy(m.sid, sid, LAUNCH_SID_LEN);
        int r = launch_send(b->fd, &m, NULL, 0);
        if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                log_warning_errno(r, "Cannot report to owampd: %m");
}

/* --- calls to systemd, bounded ------------------------------------------- */

static void calls_pump(Broker *b);

static void call_begin(Broker *b) {
        b->n_calls++;
        if (b->n_calls >= BUS_CALLS_MAX && b->io)
                (void) sd_event_source_set_enabled(b->io, SD_EVENT_OFF);
}

/* A call was answered (or cancelled): what waits goes first, then owampd's
 * requests again. */
static void call_end(Broker *b) {
        assert(b->n_calls > 0);
        b->n_calls--;
        calls_pump(b);
        if (b->n_calls < BUS_CALLS_MAX && b->io)
                (void) sd_event_source_set_enabled(b->io, SD_EVENT_ON);
}

/* Forget the unit's call in flight: its callback will not run. */
static void unit_cancel_call(Unit *u) {
        if (!u->call_slot)
                return;
        u->call_slot = sd_bus_slot_unref(u->call_slot);
        call_end(u->broker);
}

static Unit *unit_free(Unit *u) {
        if (!u)
                return NULL;
        Broker *b = u->broker;
        LIST_REMOVE(units, b->units, u);
        b->n_units--;
        if (u->call_slot) {
                u->call_slot = sd_bus_slot_unref(u->call_slot);
                b->n_calls--; /* no pump: u is half gone */
                if (b->n_calls < BUS_CALLS_MAX && b->io)
                        (void) sd_event_source_set_enabled(b->io, SD_EVENT_ON);
        }
        free(u->path);
        free(u);
        if (b->closing && b->n_units == 0)
                (void) sd_event_exit(b->event, 0);
        return NULL;
}

static Unit *find_unit(Broker *b, const char *sid) {
        Unit *u;
        LIST_FOREACH(units, u, b->units)
                if (streq(u->sid, sid))
                        return u;
        return NULL;
}

static Unit *find_unit_by_name(Broker *b, const char *name) {
        Unit *u;
        LIST_FOREACH(units, u, b->units)
                if (streq(u->name, name))
                        return u;
        return NULL;
}

/* The unit is gone (or never ran): tell owampd, drop our reference so
 * systemd collects it, forget it. */
static void unit_report(Unit *u, int status, const char *result) {
        Broker *b = u->broker;

        if (status == 0)
                unit_log(u, LOG_INFO, MSGID_UNIT_FINISHED, 0, "Unit %s finished (%s)", u->name, result);
        else
                unit_log(u, u->stop_sent ? LOG_INFO : LOG_WARNING, MSGID_UNIT_FINISHED, 0,
                         "Unit %s finished: %s, status %d%s", u->name, result, status,
                         u->stop_sent ? " (stopped on owampd's request)" : "");
        send_event(b, LAUNCH_MSG_EXITED, u->sid, status);
        /* AddRef=yes kept it loaded until we read the result; a floating
         * call, since we forget the unit now. */
        (void) sd_bus_call_method_async(b->bus, NULL, SD_DEST, u->path, "org.freedesktop.systemd1.Unit", "Unref",
                                        NULL, NULL, NULL);
        unit_free(u);
}

static int on_service_props(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Unit *u = userdata;
        const char *result = "unknown";
        int32_t code = 0, status = 0;
        int r;

        (void) ret_error;
        unit_cancel_call(u);
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);
                unit_log(u, LOG_WARNING, MSGID_UNIT_FINISHED, 0, "Cannot read the result of %s: %s", u->name,
                         e && e->message ? e->message : "?");
                unit_report(u, LAUNCH_STATUS_NOT_STARTED, "unknown");
                return 0;
        }
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r > 0) {
                const char *name;
                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        break;
                if (streq(name, "Result"))
                        r = sd_bus_message_read(m, "v", "s", &result);
                else if (streq(name, "ExecMainCode"))
                        r = sd_bus_message_read(m, "v", "i", &code);
                else if (streq(name, "ExecMainStatus"))
                        r = sd_bus_message_read(m, "v", "i", &status);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        break;
                r = sd_bus_message_exit_container(m);
        }
        if (r < 0)
                log_warning_errno(r, "Cannot parse the properties of %s: %m", u->name);

        int s;
        if (code == CLD_EXITED)
                s = status;
        else if (code == CLD_KILLED || code == CLD_DUMPED)
                s = -status;
        else
                s = LAUNCH_STATUS_NOT_STARTED; /* its program never ran */
        unit_report(u, s, result);
        return 0;
}

static void unit_finish_send(Unit *u) {
        Broker *b = u->broker;

        u->finish_wanted = false;
        int r = sd_bus_call_method_async(b->bus, &u->call_slot, SD_DEST, u->path,
                                         "org.freedesktop.DBus.Properties", "GetAll", on_service_props, u, "s",
                                         "org.freedesktop.systemd1.Service");
        if (r < 0) {
                log_warning_errno(r, "Cannot ask for the result of %s: %m", u->name);
                unit_report(u, LAUNCH_STATUS_NOT_STARTED, "unknown"); /* frees u */
                return;
        }
        call_begin(b);
}

/* The unit went inactive or failed: read how its program ended. */
static void unit_finish(Unit *u) {
        if (u->finishing)
                return;
        u->finishing = true;
        u->stop_wanted = false;
        unit_cancel_call(u); /* its start's answer no longer matters */
        if (u->broker->n_calls >= BUS_CALLS_MAX) {
                u->finish_wanted = true;
                return;
        }
        unit_finish_send(u);
}

static Unit *find_unit_by_path(Broker *b, const char *path) {
        Unit *u;
        if (!path)
                return NULL;
        LIST_FOREACH(units, u, b->units)
                if (streq(u->path, path))
                        return u;
        return NULL;
}

/* One match for every unit's PropertiesChanged, not one per unit: the
 * system bus allows a connection 512 match rules
 * (max_match_rules_per_connection), fewer than the units a broker may
 * follow, and each AddMatch would be one more pending reply. */
static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Unit *u = find_unit_by_path(userdata, sd_bus_message_get_path(m));
        const char *iface;
        int r;

        (void) ret_error;
        if (!u)
                return 0;
        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0 || !streq(iface, "org.freedesktop.systemd1.Unit"))
                return 0;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r > 0) {
                const char *name, *state;
                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        break;
                if (!streq(name, "ActiveState")) {
                        r = sd_bus_message_skip(m, "v");
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                        continue;
                }
                r = sd_bus_message_read(m, "v", "s", &state);
                if (r < 0)
                        break;
                /* A new unit reports "inactive" before it starts; only
                 * after its start job it means the end. A start job that
                 * fails is handled in on_job_removed(). */
                if (u->start_job_done && (streq(state, "inactive") || streq(state, "failed")))
                        unit_finish(u); /* may report and free u: stop here */
                return 0;
        }
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Broker *b = userdata;
        const char *job, *unit, *result;
        uint32_t id;

        (void) ret_error;
        if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) < 0)
                return 0;
        Unit *u = find_unit_by_name(b, unit);
        if (!u || u->start_job_done)
                return 0;
        /* The first job of one of our units is its start job (a stop we
         * send later can only replace it, and then comes after it).
         * systemd sends JobRemoved as the job ends, before the unit's own
         * PropertiesChanged, so the unit's end always comes after this. */
        u->start_job_done = true;
        if (streq(result, "done")) {
                unit_log(u, LOG_INFO, MSGID_UNIT_STARTED, 0, "Started %s for owampd (pid %d)", u->name,
                         (int) b->peer_pid);
                send_event(b, LAUNCH_MSG_STARTED, u->sid, 0);
                return 0;
        }
        if (!u->stop_sent)
                unit_log(u, LOG_WARNING, MSGID_UNIT_FINISHED, 0, "Start of %s ended with '%s'", u->name, result);
        unit_finish(u);
        return 0;
}

static int on_start_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Unit *u = userdata;

        (void) ret_error;
        unit_cancel_call(u);
        if (!sd_bus_message_is_method_error(m, NULL))
                return 0;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        unit_log(u, LOG_ERR, MSGID_LAUNCH_REFUSED, 0, "systemd refused to start %s: %s", u->name,
                 e && e->message ? e->message : "?");
        /* No answer in time (sd-bus's own timeout, or the bus dropped
         * the call): systemd may still make the unit. Stop it blindly
         * (a floating call): nobody would follow it otherwise. */
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_TIMEOUT, SD_BUS_ERROR_NO_REPLY))
                (void) sd_bus_call_method_async(u->broker->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "StopUnit",
                                                NULL, NULL, "ss", u->name, "replace");
        send_event(u->broker, LAUNCH_MSG_EXITED, u->sid, LAUNCH_STATUS_NOT_STARTED);
        unit_free(u);
        return 0;
}

static int on_stop_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Broker *b = userdata;

        (void) ret_error;
        call_end(b);
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);
                /* Already gone is fine: we follow its end anyway. */
                if (!sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit"))
                        log_warning("Stopping a session unit failed: %s", e && e->message ? e->message : "?");
        }
        return 0;
}

static void unit_stop_send(Unit *u) {
        Broker *b = u->broker;

        u->stop_wanted = false;
        unit_log(u, LOG_DEBUG, NULL, 0, "Stopping %s", u->name);
        /* A floating call (the unit may be gone before the answer). */
        int r = sd_bus_call_method_async(b->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "StopUnit", on_stop_reply,
                                         b, "ss", u->name, "replace");
        if (r < 0) {
                unit_log(u, LOG_ERR, NULL, r, "Cannot stop %s: %m", u->name);
                return;
        }
        call_begin(b);
}

static void unit_stop(Unit *u) {
        if (u->finishing || u->stop_sent)
                return;
        u->stop_sent = true;
        if (u->broker->n_calls >= BUS_CALLS_MAX) {
                u->stop_wanted = true;
                return;
        }
        unit_stop_send(u);
}

/* Send what waits for room among the calls: results first (they free a
 * unit), then stops. Each send may free a unit: look again from the start
 * every time. */
static void calls_pump(Broker *b) {
        while (!b->exiting && b->n_calls < BUS_CALLS_MAX) {
                Unit *u, *next = NULL;
                LIST_FOREACH(units, u, b->units)
                        if (u->finish_wanted) {
                                next = u;
                                break;
                        }
                if (next) {
                        unit_finish_send(next);
                        continue;
                }
                LIST_FOREACH(units, u, b->units)
                        if (u->stop_wanted) {
                                next = u;
                                break;
                        }
                if (!next)
                        return;
                unit_stop_send(next);
        }
}

/* --- the unit's fixed properties --------------------------------------- */

static int append_bool(sd_bus_message *m, const char *name, bool v) {
        return sd_bus_message_append(m, "(sv)", name, "b", (int) v);
}

static int append_string(sd_bus_message *m, const char *name, const char *v) {
        return sd_bus_message_append(m, "(sv)", name, "s", v);
}

static int append_filter(sd_bus_message *m, const char *name, bool allow, const char *const *list, size_t n) {
        int r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "(bas)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "bas");
        if (r >= 0)
                r = sd_bus_message_append(m, "b", (int) allow);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(m, "s", list[i]);
        for (int k = 0; r >= 0 && k < 4; k++)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_ip_deny_any(sd_bus_message *m) {
        static const uint8_t zero[16] = {};
        int r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "IPAddressDeny");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(iayu)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(iayu)");
        for (int i = 0; r >= 0 && i < 2; i++) {
                r = sd_bus_message_open_container(m, 'r', "iayu");
                if (r >= 0)
                        r = sd_bus_message_append(m, "i", i == 0 ? AF_INET : AF_INET6);
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', zero, i == 0 ? 4 : 16);
                if (r >= 0)
                        r = sd_bus_message_append(m, "u", 0u);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        for (int k = 0; r >= 0 && k < 3; k++)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_log_extra_fields(sd_bus_message *m, const char *field) {
        int r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "LogExtraFields");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "aay");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "ay");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', field, strlen(field));
        for (int k = 0; r >= 0 && k < 3; k++)
                r = sd_bus_message_close_container(m);
        return r;
}

/*
 * Everything here is fixed but the SID, the role (in the description), the
 * log level and the run time. Keep units/owamp-session.service.in (the
 * offline copy that documents and measures this set) in step.
 */
static int append_properties(sd_bus_message *m, const LaunchMsg *req, int udp_fd, int ctl_fd) {
        char desc[128], env_sid[64], env_prio[32], field[64];
        static const char *const sc_allow[] = { "@system-service" };
        static const char *const sc_deny[] = { "@privileged", "@resources" };
        /* Read-only: the error estimate in each test packet (RFC 4656 4.1.2)
         * comes from adjtimex(2); setting the clock needs CAP_SYS_TIME,
         * which the empty bounding set rules out. */
        static const char *const sc_clock_read[] = { "adjtimex" };
        static const char *const families[] = { "AF_UNIX" };
        int r;

        snprintf(desc, sizeof(desc), "OWAMP test session %s (%s)", req->sid,
                 req->role == LAUNCH_ROLE_SENDER ? "sender" : "receiver");
        snprintf(env_sid, sizeof(env_sid), "OWAMP_SID=%s", req->sid);
        snprintf(env_prio, sizeof(env_prio), "OWAMP_LOG_PRIORITY=%d", (int) req->log_priority);
        snprintf(field, sizeof(field), "OWAMP_SID=%s", req->sid);

        r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r < 0)
                return r;
        if ((r = append_string(m, "Description", desc)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "Documentation", "as", 1, "man:owampd(8)")) < 0 ||
            (r = append_string(m, "Type", "exec")) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "ExecStart", "a(sasb)", 1, WORKER_PATH, 1, "owamp-session",
                                       0)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "Environment", "as", 2, env_sid, env_prio)) < 0 ||
            (r = append_log_extra_fields(m, field)) < 0 ||
            (r = append_string(m, "SyslogIdentifier", "owamp-session")) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "StandardInputFileDescriptor", "h", udp_fd)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "StandardOutputFileDescriptor", "h", ctl_fd)) < 0 ||
            (r = append_string(m, "StandardError", "journal")) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "RuntimeMaxUSec", "t", req->runtime_max_usec)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "TimeoutStartUSec", "t", UNIT_START_TIMEOUT_USEC)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "TimeoutStopUSec", "t", UNIT_STOP_TIMEOUT_USEC)) < 0 ||
            (r = append_string(m, "CollectMode", "inactive-or-failed")) < 0 ||
            (r = append_bool(m, "AddRef", true)) < 0 ||
            /* Resources: whatever a compromised worker tries, it stays
             * one small process. */
            (r = sd_bus_message_append(m, "(sv)", "TasksMax", "t", UNIT_TASKS_MAX)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "LimitNOFILE", "t", UNIT_NOFILE_MAX)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "LimitNOFILESoft", "t", UNIT_NOFILE_MAX)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "LimitCORE", "t", UINT64_C(0))) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "LimitCORESoft", "t", UINT64_C(0))) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "MemoryMax", "t", UNIT_MEMORY_MAX)) < 0 ||
            /* Identity and privileges */
            (r = append_bool(m, "DynamicUser", true)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "CapabilityBoundingSet", "t", UINT64_C(0))) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "AmbientCapabilities", "t", UINT64_C(0))) < 0 ||
            (r = append_bool(m, "NoNewPrivileges", true)) < 0 ||
            (r = append_bool(m, "RestrictSUIDSGID", true)) < 0 ||
            (r = append_bool(m, "RemoveIPC", true)) < 0 ||
            (r = append_string(m, "KeyringMode", "private")) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "UMask", "u", 0077u)) < 0 ||
            /* Namespaces */
            (r = append_bool(m, "PrivateTmp", true)) < 0 || (r = append_bool(m, "PrivateDevices", true)) < 0 ||
            (r = append_string(m, "DevicePolicy", "closed")) < 0 ||
            (r = append_bool(m, "PrivateUsers", true)) < 0 ||
            /* The test socket was made in owampd's network namespace and
             * stays there; the worker itself needs no network at all. */
            (r = append_bool(m, "PrivateNetwork", true)) < 0 || (r = append_ip_deny_any(m)) < 0 ||
            (r = append_bool(m, "PrivateIPC", true)) < 0 || (r = append_bool(m, "PrivateMounts", true)) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "RestrictNamespaces", "t", UINT64_C(0))) < 0 ||
            /* File system and kernel */
            (r = append_string(m, "ProtectSystem", "strict")) < 0 ||
            (r = append_string(m, "ProtectHome", "yes")) < 0 ||
            (r = append_string(m, "ProtectProc", "invisible")) < 0 ||
            (r = append_string(m, "ProcSubset", "pid")) < 0 ||
            (r = append_bool(m, "ProtectControlGroups", true)) < 0 ||
            (r = append_bool(m, "ProtectHostname", true)) < 0 ||
            (r = append_bool(m, "ProtectKernelLogs", true)) < 0 ||
            (r = append_bool(m, "ProtectKernelModules", true)) < 0 ||
            (r = append_bool(m, "ProtectKernelTunables", true)) < 0 ||
            (r = append_bool(m, "LockPersonality", true)) < 0 ||
            (r = append_bool(m, "MemoryDenyWriteExecute", true)) < 0 ||
            (r = append_bool(m, "RestrictRealtime", true)) < 0 ||
            /* System calls; AF_UNIX only for the journal */
            (r = append_filter(m, "RestrictAddressFamilies", true, families, ELEMENTSOF(families))) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "SystemCallArchitectures", "as", 1, "native")) < 0 ||
            (r = append_filter(m, "SystemCallFilter", true, sc_allow, ELEMENTSOF(sc_allow))) < 0 ||
            (r = append_filter(m, "SystemCallFilter", false, sc_deny, ELEMENTSOF(sc_deny))) < 0 ||
            (r = append_filter(m, "SystemCallFilter", true, sc_clock_read, ELEMENTSOF(sc_clock_read))) < 0 ||
            (r = sd_bus_message_append(m, "(sv)", "SystemCallErrorNumber", "i", (int32_t) EPERM)) < 0)
                return r;
        return sd_bus_message_close_container(m);
}

/* --- requests ------------------------------------------------------------ */

static void refuse(Broker *b, const LaunchMsg *req, const char *why) {
        log_full(LOG_WARNING, 0, &(LogFields) { .message_id = MSGID_LAUNCH_REFUSED, .sid = req->sid },
                 "Refusing to start a unit for session %s: %s", req->sid, why);
        send_event(b, LAUNCH_MSG_EXITED, req->sid, LAUNCH_STATUS_NOT_STARTED);
}

static bool udp_bound(int fd) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return false;
        if (ss.ss_family == AF_INET)
                return ((struct sockaddr_in *) &ss)->sin_port != 0;
        if (ss.ss_family == AF_INET6)
                return ((struct sockaddr_in6 *) &ss)->sin6_port != 0;
        return false;
}

static void handle_start(Broker *b, const LaunchMsg *req, int udp_fd, int ctl_fd) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        /* The fds must be what the worker expects, and the test socket
         * bound: anything else is not a session. */
        if (sd_is_socket_inet(udp_fd, AF_UNSPEC, SOCK_DGRAM, -1, 0) <= 0)
                return refuse(b, req, "the first descriptor is not a UDP socket");
        if (!udp_bound(udp_fd))
                return refuse(b, req, "the UDP socket is not bound");
        if (sd_is_socket(ctl_fd, AF_UNIX, SOCK_STREAM, -1) <= 0)
                return refuse(b, req, "the second descriptor is not a stream socket");
        if (b->closing)
                return refuse(b, req, "shutting down");
        if (find_unit(b, req->sid))
                return refuse(b, req, "a unit for this session exists already");
        if (b->n_units >= b->max_units)
                return refuse(b, req, "too many units");

        Unit *u = calloc(1, sizeof(*u));
        if (!u)
                return refuse(b, req, "out of memory");
        u->broker = b;
        memcpy(u->sid, req->sid, sizeof(u->sid));
        (void) launch_unit_name(u->sid, u->name);
        LIST_PREPEND(units, b->units, u);
        b->n_units++;

        /* Its PropertiesChanged come through the broker's one match,
         * installed before any unit was started. */
        r = sd_bus_path_encode(SD_PATH "/unit", u->name, &u->path);
        if (r < 0)
                goto fail;
        r = sd_bus_message_new_method_call(b->bus, &m, SD_DEST, SD_PATH, SD_MANAGER, "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", u->name, "fail");
        if (r >= 0)
                r = append_properties(m, req, udp_fd, ctl_fd);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r >= 0)
                r = sd_bus_call_async(b->bus, &u->call_slot, m, on_start_reply, u, START_CALL_TIMEOUT_USEC);
        if (r < 0)
                goto fail;
        call_begin(b);
        unit_log(u, LOG_DEBUG, NULL, 0, "Starting %s (run time at most %" PRIu64 " s)", u->name,
                 req->runtime_max_usec / 1000000);
        return;
fail:
        unit_log(u, LOG_ERR, MSGID_LAUNCH_REFUSED, r, "Cannot ask systemd to start %s: %m", u->name);
        send_event(b, LAUNCH_MSG_EXITED, u->sid, LAUNCH_STATUS_NOT_STARTED);
        unit_free(u);
}

static int on_exit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        (void) s;
        (void) usec;
        log_warning("%u session unit%s still there after %u s; exiting anyway", b->n_units,
                    b->n_units == 1 ? "" : "s", (unsigned) (EXIT_GRACE_USEC / 1000000));
        return sd_event_exit(b->event, 1);
}

/* owampd is gone (or we are told to go): stop everything we started, exit
 * once it is gone. */
static void begin_close(Broker *b) {
        Unit *u;

        if (b->closing)
                return;
        b->closing = true;
        b->io = sd_event_source_disable_unref(b->io);
        b->fd = safe_close(b->fd);
        if (b->n_units == 0) {
                (void) sd_event_exit(b->event, 0);
                return;
        }
        log_info("owampd (pid %d) left with %u session unit%s running; stopping them", (int) b->peer_pid,
                 b->n_units, b->n_units == 1 ? "" : "s");
        LIST_FOREACH(units, u, b->units)
                unit_stop(u);
        (void) sd_event_add_time_relative(b->event, &b->exit_timer, CLOCK_MONOTONIC, EXIT_GRACE_USEC, 0,
                                          on_exit_timer, b);
}

static int on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Broker *b = userdata;

        (void) s;
        (void) revents;
        for (unsigned i = 0; i < 64 && !b->closing && b->n_calls < BUS_CALLS_MAX; i++) {
                LaunchMsg req;
                int fds[LAUNCH_MAX_FDS];
                int r = launch_recv(fd, &req, fds);
                if (r == -EAGAIN)
                        return 0;
                if (r == 0) {
                        log_debug("owampd (pid %d) closed the connection", (int) b->peer_pid);
                        begin_close(b);
                        return 0;
                }
                if (r < 0) {
                        log_full(LOG_WARNING, r, &(LogFields) { .message_id = MSGID_LAUNCH_REFUSED },
                                 "Bad request from owampd (pid %d): %s; closing the connection", (int) b->peer_pid,
                                 ow_strerror(r));
                        begin_close(b);
                        return 0;
                }
                switch (req.type) {
                case LAUNCH_MSG_START:
                        handle_start(b, &req, fds[0], fds[1]);
                        safe_close(fds[0]);
                        safe_close(fds[1]);
                        break;
                case LAUNCH_MSG_STOP: {
                        Unit *u = find_unit(b, req.sid);
                        if (u)
                                unit_stop(u);
                        break;
                }
                default:
                        log_full(LOG_WARNING, 0, &(LogFields) { .message_id = MSGID_LAUNCH_REFUSED },
                                 "Unexpected message %d from owampd (pid %d); closing the connection",
                                 (int) req.type, (int) b->peer_pid);
                        begin_close(b);
                        return 0;
                }
        }
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) s;
        (void) si;
        begin_close(userdata);
        return 0;
}

/* Only owampd.service (or an instance owampd@NAME.service), or root, may
 * ask. The socket's mode already limits connections to root and the owamp
 * group; this makes sure the peer is the daemon, not any member of it.
 * SO_PEERCRED's UID is of no use here: in our user namespace
 * (PrivateUsers=yes) every UID but root's reads as "nobody". */
static int check_peer(Broker *b, const struct ucred *cred) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *id = NULL;
        const char *path;
        int r;

        if (cred->uid == 0)
                return 0;
        r = sd_bus_call_method(b->bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnitByPID", &error, &reply, "u",
                               (uint32_t) cred->pid);
        if (r < 0)
                return log_full(LOG_WARNING, r, &(LogFields) { .message_id = MSGID_LAUNCH_REFUSED },
                                "Refusing pid %d: cannot find its unit: %s", (int) cred->pid,
                                error.message ? error.message : strerror(-r));
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        r = sd_bus_get_property_string(b->bus, SD_DEST, path, "org.freedesktop.systemd1.Unit", "Id", &error, &id);
        if (r < 0)
                return r;
        if (!streq(id, "owampd.service") && fnmatch("owampd@*.service", id, 0) != 0)
                return log_full(LOG_WARNING, -EPERM, &(LogFields) { .message_id = MSGID_LAUNCH_REFUSED },
                                "Refusing pid %d of %s: only owampd.service may start session units",
                                (int) cred->pid, id);
        return 0;
}

/* OWAMP_LAUNCHER_MAX_UNITS: unset or empty for the default. */
static int parse_max_units(const char *s, unsigned *ret) {
        char *end;

        if (!s || !*s) {
                *ret = MAX_UNITS_DEFAULT;
                return 0;
        }
        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno != 0 || *end != 0 || v < 1 || v > MAX_UNITS_MAX)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Broker b = { .fd = -1 };
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int r;

        log_setup("owampd-launcher", LOG_TARGET_AUTO, LOG_DAEMON, false,
                  getenv("OWAMP_LAUNCHER_DEBUG") ? LOG_DEBUG : LOG_INFO);
        if (argc == 2 && streq(argv[1], "--version")) {
                usage_version("owampd-launcher");
                return EXIT_SUCCESS;
        }
        if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                printf("owampd-launcher: owampd's broker that starts session units; started by\n"
                       "owampd-launcher.socket, not by hand (owampd(8), \"SYSTEMD AND PRIVILEGES\").\n"
                       "   Long forms: --help (-h), --version\n");
                return EXIT_SUCCESS;
        }
        if (argc > 1) {
                log_error("This program is started by owampd-launcher.socket, not by hand.");
                return EXIT_FAILURE;
        }

        r = parse_max_units(getenv("OWAMP_LAUNCHER_MAX_UNITS"), &b.max_units);
        if (r < 0) {
                log_error("OWAMP_LAUNCHER_MAX_UNITS= must be a count from 1 to %u, got '%s'", MAX_UNITS_MAX,
                          getenv("OWAMP_LAUNCHER_MAX_UNITS"));
                return EXIT_FAILURE;
        }

        r = sd_listen_fds(true);
        if (r != 1) {
                log_error("Expected exactly one connection from owampd-launcher.socket (Accept=yes), got %d", r);
                return EXIT_FAILURE;
        }
        b.fd = SD_LISTEN_FDS_START;
        if (sd_is_socket_unix(b.fd, SOCK_SEQPACKET, 0, NULL, 0) <= 0) {
                log_error("The passed descriptor is not a connected AF_UNIX SOCK_SEQPACKET socket");
                return EXIT_FAILURE;
        }
        if (getsockopt(b.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return log_error_errno(errno, "SO_PEERCRED: %m"), EXIT_FAILURE;
        b.peer_pid = cred.pid;
        struct timeval tv = { .tv_sec = SEND_TIMEOUT_SEC };
        (void) setsockopt(b.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "sd_event_default(): %m"), EXIT_FAILURE;
        b.event = event;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        (void) sd_event_add_signal(event, NULL, SIGTERM, on_signal, &b);
        (void) sd_event_add_signal(event, NULL, SIGINT, on_signal, &b);

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to the system bus: %m"), EXIT_FAILURE;
        b.bus = bus;
        r = sd_bus_attach_event(bus, event, 0);
        if (r < 0)
                return log_error_errno(r, "sd_bus_attach_event(): %m"), EXIT_FAILURE;

        if (check_peer(&b, &cred) < 0)
                return EXIT_FAILURE;

        /* systemd sends unit and job signals only while someone subscribes. */
        r = sd_bus_match_signal(bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved", on_job_removed, &b);
        if (r < 0)
                return log_error_errno(r, "Cannot watch systemd's jobs: %m"), EXIT_FAILURE;
        r = sd_bus_add_match(bus, NULL,
                             "type='signal',sender='" SD_DEST "',interface='org.freedesktop.DBus.Properties',"
                             "member='PropertiesChanged',path_namespace='" SD_PATH "/unit',"
                             "arg0='org.freedesktop.systemd1.Unit'",
                             on_properties_changed, &b);
        if (r < 0)
                return log_error_errno(r, "Cannot watch systemd's units: %m"), EXIT_FAILURE;
        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", &error, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Cannot subscribe to systemd: %s", error.message ? error.message : "?"),
                       EXIT_FAILURE;

        r = sd_event_add_io(event, &b.io, b.fd, EPOLLIN, on_client, &b);
        if (r < 0)
                return log_error_errno(r, "sd_event_add_io(): %m"), EXIT_FAILURE;
        (void) sd_event_source_set_description(b.io, "owampd-connection");

        LaunchMsg hello = { .type = LAUNCH_MSG_HELLO };
        r = launch_send(b.fd, &hello, NULL, 0);
        if (r < 0)
                return log_error_errno(r, "Cannot greet owampd: %m"), EXIT_FAILURE;
        log_debug("Serving owampd (pid %d)", (int) b.peer_pid);

        r = sd_event_loop(event);

        b.exiting = true;
        while (b.units)
                unit_free(b.units);
        sd_event_source_disable_unref(b.io);
        sd_event_source_disable_unref(b.exit_timer);
        safe_close(b.fd);
        return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
