/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * owampd.conf: the daemon's settings, in the reference's syntax
 * (perfSONAR owamp 5.x owampd.conf / owamp-server.conf), parsed from a
 * memory buffer.
 *
 * Syntax (as the reference's I2ReadConfVar reads it): one keyword per
 * logical line, optionally followed by one whitespace-free value; keywords
 * are case-insensitive; lines whose first non-blank character is '#' and
 * blank lines are ignored; a token starting with '#' begins a trailing
 * comment; a backslash immediately before a newline continues the line and
 * is an error anywhere else. docs/notes/reference-config.md lists every
 * keyword, its default, and where we are stricter than the reference.
 *
 * Layering: ow_conf_new() gives the defaults; ow_conf_parse() applies a file
 * on top (the main file, then each owampd.conf.d/ drop-in in order; within
 * and across files the last setting of a keyword wins); the caller applies
 * command-line options last with ow_conf_set(), which validates exactly as
 * the file parser does. OwConf.set records which keywords were given.
 */

#include <stdbool.h>
#include <stdint.h>

#include "ow-crypto.h"
#include "ow-diag.h"
#include "ow-time.h"

typedef enum OwConfKey {
        OW_CONF_USER,
        OW_CONF_GROUP,
        OW_CONF_VERBOSE,
        OW_CONF_FACILITY,
        OW_CONF_LOGLEVEL,
        OW_CONF_LOGLOCATION,
        OW_CONF_ROOTFOLLY,
        OW_CONF_DATADIR,
        OW_CONF_VARDIR,
        OW_CONF_AUTHMODE,
        OW_CONF_SRCNODE,
        OW_CONF_TESTPORTS,
        OW_CONF_DISKFUDGE,
        OW_CONF_DIEBY,
        OW_CONF_CONTROLTIMEOUT,
        OW_CONF_PBKDF2_COUNT,
        OW_CONF_ENDDELAY,
        OW_CONF_MAXCONTROLSESSIONS,
        OW_CONF_SESSIONLAUNCHER,
        /* Hardening (issue 11): our own keywords. */
        OW_CONF_ALLOWINSECUREPFS,
        /* Resource limits of our own (issue 11); not the reference's. */
        OW_CONF_MAXTESTSESSIONS,
        /* Limits against hostile clients (issue 11), our own keywords. */
        OW_CONF_SETUPTIMEOUT,
        OW_CONF_MAXCONTROLSESSIONSPERADDR,
        OW_CONF_MAXAUTHFAILURES,
        OW_CONF_AUTHFAILWINDOW,
        OW_CONF_AUTHBACKOFF,
        _OW_CONF_KEY_MAX,
} OwConfKey;

/* loglevel: minimum severity sent to the log (reference names). */
typedef enum OwLogLevel {
        OW_LOG_NONE,
        OW_LOG_FATAL,
        OW_LOG_WARN,
        OW_LOG_INFO,
        OW_LOG_DEBUG,
        OW_LOG_ALL,
} OwLogLevel;

/* sessionlauncher: how owampd runs each test endpoint (our own keyword,
 * not the reference's): as a transient systemd unit when systemd manages
 * the host (auto), always as a child process (fork), or always as a unit
 * (systemd; owampd fails to start when it cannot). */
typedef enum OwSessionLauncher {
        OW_SESSION_LAUNCHER_AUTO,
        OW_SESSION_LAUNCHER_FORK,
        OW_SESSION_LAUNCHER_SYSTEMD,
        _OW_SESSION_LAUNCHER_MAX,
} OwSessionLauncher;

/* testports: low == high == 0 lets the kernel pick (ephemeral). */
typedef struct OwPortRange {
        uint16_t low;
        uint16_t high;
} OwPortRange;

#define OW_CONF_MAX_HOST 255

/* srcnode "node[:port]", "[v6]:port", ":port": parsed, never resolved. */
typedef struct OwConfNode {
        char host[OW_CONF_MAX_HOST + 1]; /* "" = wildcard address */
        int family;                      /* AF_INET/AF_INET6 for a literal, AF_UNSPEC for a name */
        uint16_t port;                   /* 0 = the default control port */
} OwConfNode;

/* Bounds. Values a reference owampd would accept but that make no sense
 * (or overflow something) are refused; see docs/notes/reference-config.md. */
#define OW_CONF_MAX_VALUE 4095 /* longest keyword or value: the reference's MAXPATHLEN-1 */
/* pbkdf2_count bounds: OW_PBKDF2_COUNT_MIN/MAX/DEFAULT from ow-crypto.h. */
#define OW_CONF_CONTROLTIMEOUT_MAX_SEC UINT32_C(604800)
#define OW_CONF_DIEBY_MAX_SEC UINT32_C(86400)
#define OW_CONF_ENDDELAY_MAX_SEC UINT32_C(86400)
#define OW_CONF_MAXCONTROLSESSIONS_MAX UINT32_C(1048576)
/* Limits against hostile clients: 0 switches each off. */
#define OW_CONF_SETUPTIMEOUT_MAX_SEC UINT32_C(3600)
#define OW_CONF_MAXAUTHFAILURES_MAX UINT32_C(1000000)
#define OW_CONF_AUTHFAILWINDOW_MAX_SEC UINT32_C(86400)
#define OW_CONF_AUTHBACKOFF_MAX_SEC UINT32_C(86400)
/* maxtestsessions: test sessions held at once by the whole server; each
 * holds a few descriptors and a process, so more than this is no sane
 * setting on any host. */
#define OW_CONF_MAXTESTSESSIONS_MAX UINT32_C(65536)

typedef struct OwConf {
        uint32_t set;                    /* bit (1u << key) for every keyword given */
        unsigned line[_OW_CONF_KEY_MAX]; /* line it was last set on; 0 if not from a file */

        char *user;  /* name or "-uid"; NULL: not set */
        char *group; /* name or "-gid"; NULL: not set */
        bool verbose;
        int facility;        /* syslog LOG_* facility; LOG_DAEMON */
        OwLogLevel loglevel; /* OW_LOG_INFO */
        bool loglocation;
        bool rootfolly;
        char *datadir;               /* NULL: not set */
        char *vardir;                /* NULL: not set */
        uint32_t authmode;           /* OW_MODE_* mask; all three */
        OwConfNode srcnode;          /* wildcard, default port */
        OwPortRange testports;       /* 0-0: ephemeral */
        double diskfudge;            /* 1.0 .. 10.0; 1.0 */
        uint32_t dieby_sec;          /* 5 */
        uint32_t controltimeout_sec; /* 1800; 0 = no timeout */
        uint32_t pbkdf2_count;       /* 2048 */
        OwTimestamp enddelay;        /* 1.0 s */
        uint32_t maxcontrolsessions; /* 0 = unlimited */
        OwSessionLauncher sessionlauncher; /* auto */

        /* Hardening (issue 11). */
        bool allowinsecurepfs; /* load an owampd.pfs others may read or write (refused by default) */
        /* Our own resource limits. */
        uint32_t maxtestsessions; /* test sessions held by the whole server; 0 = auto (owampd decides) */
        /* Limits against hostile clients (owampd.conf(5), "LIMITS AGAINST
         * HOSTILE CLIENTS"). */
        uint32_t setuptimeout_sec;          /* 30: greeting to the first command; 0 = none */
        uint32_t maxcontrolsessionsperaddr; /* 64: per IPv4 address or IPv6 /64; 0 = unlimited */
        uint32_t maxauthfailures;           /* 5: per source in authfailwindow; 0 = no back-off */
        uint32_t authfailwindow_sec;        /* 60 */
        uint32_t authbackoff_sec;           /* 60: the first back-off, doubling */
} OwConf;

/* A configuration holding the reference's defaults, with nothing "set". */
int ow_conf_new(OwConf **ret);
OwConf *ow_conf_free(OwConf *c);

/* Parse one file (buf need not be NUL-terminated) and apply every keyword
 * it sets on top of c. All or nothing: on error c is left unchanged and
 * diag says where and why. file is only used for diag. */
int ow_conf_parse(OwConf *c, const void *buf, size_t len, const char *file, OwDiag *diag);

/* Set one keyword from its textual value, validated as in a file (for
 * command-line options). value is NULL or "" for the flag keywords
 * (verbose, loglocation, rootfolly, allowinsecurepfs), required for all others. */
int ow_conf_set(OwConf *c, OwConfKey key, const char *value, OwDiag *diag);

/* Copy every keyword set in src onto dst. */
int ow_conf_merge(OwConf *dst, const OwConf *src);

static inline bool ow_conf_is_set(const OwConf *c, OwConfKey key) {
        return key < _OW_CONF_KEY_MAX && (c->set & (UINT32_C(1) << key));
}

/* Keyword names as written in the file; from_string is case-insensitive and
 * returns the key or -OW_ERR_KEYWORD. */
const char *ow_conf_key_to_string(OwConfKey key);
int ow_conf_key_from_string(const char *s);

/* Syslog facility names ("daemon", "local5", ...; case-insensitive). */
int ow_conf_facility_from_string(const char *s, int *ret);
const char *ow_conf_facility_to_string(int facility);

const char *ow_log_level_to_string(OwLogLevel l);
const char *ow_session_launcher_to_string(OwSessionLauncher l);
