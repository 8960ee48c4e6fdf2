/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Structured logging for the programs (never for the core library).
 *
 * Every message carries a priority, optionally a MESSAGE_ID naming the kind
 * of event (explained in the installed catalog, units/owamp.catalog) and the
 * OWAMP_* fields that let `journalctl OWAMP_SID=...` follow one session.
 * Messages go to the journal when it is there, to syslog otherwise, and to
 * stderr as well when asked (owampd -Z, the clients).
 */

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

/* MESSAGE_ID= of each kind of event; keep units/owamp.catalog in step. */
#define MSGID_CONNECTION_ACCEPTED "23a7a42698f34fc89f52017dc9c0ee49"
#define MSGID_CONNECTION_REFUSED "1f700b983d444f6a8b3f154f05acc41a"
#define MSGID_SESSION_REQUESTED "15210ff1b2c04901b0a7ce41f6aa9d8f"
#define MSGID_SESSION_ACCEPTED "a29d00c3609b403b88657bdebf95bc77"
#define MSGID_SESSION_REFUSED "91b1d528303c4fb5bf6c3f6229183065"
#define MSGID_SESSION_STARTED "932b30905f0f4e10a9c8a1a8d591fe88"
#define MSGID_SESSION_FINISHED "8edf81de480a4474b615211505e28c7c"
#define MSGID_DATA_FETCHED "f6fb84468ed94ef1bd2499a805b52b18"
#define MSGID_DATA_DELETED "13995ab3e9134b9390209d2df5f278e8"
#define MSGID_PROTOCOL_ERROR "9d9a18c5c7514258a08dc9df5688bf5a"
#define MSGID_DAEMON_STARTED "d0398883738b4ffba5cacf636250be1d"
#define MSGID_DAEMON_STOPPED "d1e68b3802414edfac674ad227b1e463"
#define MSGID_CONFIG_ERROR "806effb00bfa4aed882c22b5fbf92f32"
#define MSGID_CONNECTION_CLOSED "ed47564083044fc3ac9b8e9e09bd433b"
#define MSGID_WORKER_FAILED "e1737b7619b64780beb06510c9636257"
#define MSGID_CONFIG_RELOADED "a5323b7485054b40a05fdac9c6121208"
#define MSGID_AUTH_FAILURES "2cc7d795680f433996dfb921ceadea99"
/* The session worker (owamp-session) and the unit broker (owampd-launcher). */
#define MSGID_ENDPOINT_READY "897f11886bab42268a6f9f5fa8dc5fb4"
#define MSGID_ENDPOINT_DONE "950605539adf4459a9e9ae024cc8118c"
#define MSGID_UNIT_STARTED "7b04dcaafd3c4429b6040d08216732d3"
#define MSGID_UNIT_FINISHED "96d3805fab5e479286c2d3682d0875a5"
#define MSGID_LAUNCH_REFUSED "6adabdd798b14974af90d920c82ab6a4"
/* powstream: one entry per completed (sub-)session, one per failed session. */
#define MSGID_STREAM_RESULT "2e62024dca5a4332b61100f59aef4078"
#define MSGID_STREAM_FAILED "7c0446e0b8c341bd9e82df976ed57094"

/* Context of one event: any field may be NULL. */
typedef struct LogFields {
        const char *message_id;
        const char *sid;   /* OWAMP_SID=, 32 hex digits */
        const char *peer;  /* OWAMP_PEER=, address of the control peer */
        const char *mode;  /* OWAMP_MODE=, "open", "authenticated", "encrypted" */
        const char *keyid; /* OWAMP_KEYID= */
        const char *const *extra; /* NULL-terminated "KEY=value" fields */
} LogFields;

typedef enum LogTarget {
        LOG_TARGET_AUTO,    /* journal if its socket exists, else syslog */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_SYSLOG,
        LOG_TARGET_NONE,    /* stderr only (when log_setup's to_stderr) */
} LogTarget;

/* ident: program name; facility: LOG_DAEMON, LOG_LOCAL5, ... (syslog and the
 * journal's SYSLOG_FACILITY=); max_priority: messages less urgent than this
 * are dropped (LOG_INFO by default, LOG_DEBUG with -v). */
void log_setup(const char *ident, LogTarget target, int facility, bool to_stderr, int max_priority);
void log_set_max_priority(int max_priority);
void log_set_facility(int facility);
int log_get_max_priority(void);

/* loglocation: put the source file and line in front of every message (the
 * journal always gets them as CODE_FILE= and CODE_LINE=). */
void log_set_location(bool b);

/* Log one message. Returns -errno_value (if errno_value != 0) so callers can
 * write `return log_error_errno(r, ...)`. errno_value may be negative. */
int log_internalv(const char *file, int line, int priority, int errno_value, const LogFields *f,
                  const char *fmt, va_list ap) _printf_(6, 0);
int log_internal(const char *file, int line, int priority, int errno_value, const LogFields *f,
                 const char *fmt, ...) _printf_(6, 7);
/* The compound literal of a LogFields argument may hold commas: keep every
 * argument after the priority in __VA_ARGS__. */
#define log_fullv(priority, ...) log_internalv(__FILE__, __LINE__, (priority), __VA_ARGS__)
#define log_full(priority, ...) log_internal(__FILE__, __LINE__, (priority), __VA_ARGS__)

#define log_error(...) log_full(LOG_ERR, 0, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, 0, NULL, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, 0, NULL, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, 0, NULL, __VA_ARGS__)
#define log_error_errno(e, ...) log_full(LOG_ERR, (e), NULL, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full(LOG_WARNING, (e), NULL, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full(LOG_DEBUG, (e), NULL, __VA_ARGS__)

/* Facility by name ("daemon", "local5", ...); -1 if unknown. */
int log_facility_from_name(const char *name);
