/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>

#include "macro.h"
#include "ow-cfgtext.h"
#include "ow-conf.h"
#include "ow-error.h"
#include "ow-types.h"

typedef struct KeyDesc {
        const char *name;
        bool flag; /* takes no value */
} KeyDesc;

static const KeyDesc keys[_OW_CONF_KEY_MAX] = {
        [OW_CONF_USER] = { "user", false },
        [OW_CONF_GROUP] = { "group", false },
        [OW_CONF_VERBOSE] = { "verbose", true },
        [OW_CONF_FACILITY] = { "facility", false },
        [OW_CONF_LOGLEVEL] = { "loglevel", false },
        [OW_CONF_LOGLOCATION] = { "loglocation", true },
        [OW_CONF_ROOTFOLLY] = { "rootfolly", true },
        [OW_CONF_DATADIR] = { "datadir", false },
        [OW_CONF_VARDIR] = { "vardir", false },
        [OW_CONF_AUTHMODE] = { "authmode", false },
        [OW_CONF_SRCNODE] = { "srcnode", false },
        [OW_CONF_TESTPORTS] = { "testports", false },
        [OW_CONF_DISKFUDGE] = { "diskfudge", false },
        [OW_CONF_DIEBY] = { "dieby", false },
        [OW_CONF_CONTROLTIMEOUT] = { "controltimeout", false },
        [OW_CONF_PBKDF2_COUNT] = { "pbkdf2_count", false },
        [OW_CONF_ENDDELAY] = { "enddelay", false },
        [OW_CONF_MAXCONTROLSESSIONS] = { "maxcontrolsessions", false },
        [OW_CONF_SESSIONLAUNCHER] = { "sessionlauncher", false },
        /* Hardening (issue 11). */
        [OW_CONF_ALLOWINSECUREPFS] = { "allowinsecurepfs", true },
        [OW_CONF_MAXTESTSESSIONS] = { "maxtestsessions", false },
        [OW_CONF_SETUPTIMEOUT] = { "setuptimeout", false },
        [OW_CONF_MAXCONTROLSESSIONSPERADDR] = { "maxcontrolsessionsperaddr", false },
        [OW_CONF_MAXAUTHFAILURES] = { "maxauthfailures", false },
        [OW_CONF_AUTHFAILWINDOW] = { "authfailwindow", false },
        [OW_CONF_AUTHBACKOFF] = { "authbackoff", false },
};

/* The limits against hostile clients: whole numbers in a range, each with
 * what it counts for the error message. */
static const struct {
        OwConfKey key;
        uint32_t max;
        const char *what;
        size_t offset;
} limit_keys[] = {
        { OW_CONF_SETUPTIMEOUT, OW_CONF_SETUPTIMEOUT_MAX_SEC, "whole seconds from 0 (none)",
          offsetof(OwConf, setuptimeout_sec) },
        { OW_CONF_MAXCONTROLSESSIONSPERADDR, OW_CONF_MAXCONTROLSESSIONS_MAX, "a count from 0 (unlimited)",
          offsetof(OwConf, maxcontrolsessionsperaddr) },
        { OW_CONF_MAXAUTHFAILURES, OW_CONF_MAXAUTHFAILURES_MAX, "a count from 0 (no back-off)",
          offsetof(OwConf, maxauthfailures) },
        { OW_CONF_AUTHFAILWINDOW, OW_CONF_AUTHFAILWINDOW_MAX_SEC, "whole seconds from 1",
          offsetof(OwConf, authfailwindow_sec) },
        { OW_CONF_AUTHBACKOFF, OW_CONF_AUTHBACKOFF_MAX_SEC, "whole seconds from 1",
          offsetof(OwConf, authbackoff_sec) },
};

static uint32_t *limit_field(OwConf *c, size_t i) {
        return (uint32_t *) ((uint8_t *) c + limit_keys[i].offset);
}

static uint32_t limit_get(const OwConf *c, size_t i) {
        return *(const uint32_t *) ((const uint8_t *) c + limit_keys[i].offset);
}

/* glibc's facilitynames, which the reference uses, minus the internal
 * "mark"; "security" is glibc's deprecated alias of "auth". */
static const struct {
        const char *name;
        int value;
} facilities[] = {
        { "auth", LOG_AUTH },     { "authpriv", LOG_AUTHPRIV }, { "cron", LOG_CRON },
        { "daemon", LOG_DAEMON }, { "ftp", LOG_FTP },           { "kern", LOG_KERN },
        { "lpr", LOG_LPR },       { "mail", LOG_MAIL },         { "news", LOG_NEWS },
        { "security", LOG_AUTH }, { "syslog", LOG_SYSLOG },     { "user", LOG_USER },
        { "uucp", LOG_UUCP },     { "local0", LOG_LOCAL0 },     { "local1", LOG_LOCAL1 },
        { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },     { "local4", LOG_LOCAL4 },
        { "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },     { "local7", LOG_LOCAL7 },
};

static const char *const log_levels[] = {
        [OW_LOG_NONE] = "NONE", [OW_LOG_FATAL] = "FATAL", [OW_LOG_WARN] = "WARN",
        [OW_LOG_INFO] = "INFO", [OW_LOG_DEBUG] = "DEBUG", [OW_LOG_ALL] = "ALL",
};

static const char *const session_launchers[] = {
        [OW_SESSION_LAUNCHER_AUTO] = "auto",
        [OW_SESSION_LAUNCHER_FORK] = "fork",
        [OW_SESSION_LAUNCHER_SYSTEMD] = "systemd",
};

const char *ow_conf_key_to_string(OwConfKey key) {
        return key < _OW_CONF_KEY_MAX ? keys[key].name : NULL;
}

static int key_lookup(const char *s, size_t n) {
        for (int k = 0; k < _OW_CONF_KEY_MAX; k++)
                if (ow_cfg_word_eq(s, n, keys[k].name))
                        return k;
        return -OW_ERR_KEYWORD;
}

int ow_conf_key_from_string(const char *s) {
        return s ? key_lookup(s, strlen(s)) : -OW_ERR_KEYWORD;
}

int ow_conf_facility_from_string(const char *s, int *ret) {
        if (!s)
                return -OW_ERR_VALUE;
        for (size_t i = 0; i < ELEMENTSOF(facilities); i++)
                if (ow_cfg_word_eq(s, strlen(s), facilities[i].name)) {
                        *ret = facilities[i].value;
                        return 0;
                }
        return -OW_ERR_VALUE;
}

const char *ow_conf_facility_to_string(int facility) {
        for (size_t i = 0; i < ELEMENTSOF(facilities); i++)
                if (facilities[i].value == facility)
                        return facilities[i].name;
        return NULL;
}

const char *ow_log_level_to_string(OwLogLevel l) {
        return (unsigned) l < ELEMENTSOF(log_levels) ? log_levels[l] : NULL;
}

const char *ow_session_launcher_to_string(OwSessionLauncher l) {
        return (unsigned) l < ELEMENTSOF(session_launchers) ? session_launchers[l] : NULL;
}

static void conf_defaults(OwConf *c) {
        *c = (OwConf){
                .facility = LOG_DAEMON,
                .loglevel = OW_LOG_INFO,
                .authmode = OW_MODES_ALL,
                .srcnode = { .family = AF_UNSPEC },
                .diskfudge = 1.0,
                .dieby_sec = 5,
                .controltimeout_sec = 1800,
                .pbkdf2_count = OW_PBKDF2_COUNT_DEFAULT,
                .enddelay = OW_TIMESTAMP_FROM_SEC(1),
                .setuptimeout_sec = 30,
                .maxcontrolsessionsperaddr = 64,
                .maxauthfailures = 5,
                .authfailwindow_sec = 60,
                .authbackoff_sec = 60,
        };
}

static void conf_clear(OwConf *c) {
        free(c->user);
        free(c->group);
        free(c->datadir);
        free(c->vardir);
        conf_defaults(c);
}

int ow_conf_new(OwConf **ret) {
        OwConf *c = malloc(sizeof(*c));

        if (!c)
                return -ENOMEM;
        conf_defaults(c);
        *ret = c;
        return 0;
}

OwConf *ow_conf_free(OwConf *c) {
        if (!c)
                return NULL;
        conf_clear(c);
        free(c);
        return NULL;
}

static int set_string(char **field, const char *value) {
        char *s = strdup(value);

        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

/* "node", "node:port", ":port", "[v6]", "[v6]:port", or a bare IPv6
 * literal (two or more colons, no port) - the forms the reference's
 * I2AddrByNode splits. */
static int parse_node(const char *v, OwConfNode *ret, const char **why) {
        OwConfNode n = { .family = AF_UNSPEC };
        const char *host = v, *port = NULL, *colon;
        size_t host_len;
        bool bracket = false;

        if (v[0] == '[') {
                const char *close = strchr(v, ']');
                if (!close) {
                        *why = "'[' without ']'";
                        return -OW_ERR_ADDRESS;
                }
                host = v + 1;
                host_len = (size_t) (close - host);
                bracket = true;
                if (close[1] == ':')
                        port = close + 2;
                else if (close[1] != '\0') {
                        *why = "only ':port' may follow ']'";
                        return -OW_ERR_ADDRESS;
                }
        } else if ((colon = strchr(v, ':')) && !strchr(colon + 1, ':')) {
                host_len = (size_t) (colon - v);
                port = colon + 1;
        } else
                host_len = strlen(v);

        if (host_len > OW_CONF_MAX_HOST) {
                *why = "host name too long";
                return -OW_ERR_ADDRESS;
        }
        memcpy(n.host, host, host_len);
        n.host[host_len] = '\0';

        if (port) {
                uint64_t p;
                if (ow_cfg_parse_uint(port, 65535, &p) < 0 || p == 0) {
                        *why = "port must be 1..65535";
                        return -OW_ERR_PORT;
                }
                n.port = (uint16_t) p;
        }

        if (n.host[0] != '\0') {
                uint8_t buf[16];
                if (inet_pton(AF_INET6, n.host, buf) == 1)
                        n.family = AF_INET6;
                else if (bracket || strchr(n.host, ':')) {
                        *why = "not an IPv6 address";
                        return -OW_ERR_ADDRESS;
                } else if (inet_pton(AF_INET, n.host, buf) == 1)
                        n.family = AF_INET;
                else {
                        /* A DNS name: letters, digits, '-', '_' and dots. */
                        for (const char *p = n.host; *p; p++)
                                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                                      ow_cfg_isdigit((unsigned char) *p) || *p == '-' || *p == '_' ||
                                      *p == '.')) {
                                        *why = "not an address or host name";
                                        return -OW_ERR_ADDRESS;
                                }
                }
        } else if (bracket) {
                *why = "empty '[]'";
                return -OW_ERR_ADDRESS;
        } else if (!port) {
                *why = "empty";
                return -OW_ERR_ADDRESS;
        }

        *ret = n;
        return 0;
}

/* "0", "N" (the one port N, as the reference reads it) or "LOW-HIGH". */
static int parse_ports(const char *v, OwPortRange *ret) {
        char buf[16];
        const char *dash = strchr(v, '-');
        uint64_t lo, hi;

        if (!dash) {
                if (ow_cfg_parse_uint(v, 65535, &lo) < 0)
                        return -OW_ERR_PORT;
                hi = lo;
        } else {
                size_t n = (size_t) (dash - v);
                if (n == 0 || n >= sizeof(buf))
                        return -OW_ERR_PORT;
                memcpy(buf, v, n);
                buf[n] = '\0';
                if (ow_cfg_parse_uint(buf, 65535, &lo) < 0 || ow_cfg_parse_uint(dash + 1, 65535, &hi) < 0)
                        return -OW_ERR_PORT;
        }
        if (lo == 0 && hi == 0) {
                *ret = (OwPortRange){ 0, 0 };
                return 0;
        }
        if (lo == 0 || hi < lo)
                return -OW_ERR_PORT;
        *ret = (OwPortRange){ (uint16_t) lo, (uint16_t) hi };
        return 0;
}

static int parse_seconds(const char *v, uint32_t max, uint32_t *ret) {
        uint64_t u;
        int r = ow_cfg_parse_uint(v, max, &u);

        if (r < 0)
                return r;
        *ret = (uint32_t) u;
        return 0;
}

/* Validate value for key and store it in c. Never leaves c half-updated. */
static int conf_apply(OwConf *c, OwConfKey key, const char *value, const char *file, unsigned line,
                      OwDiag *diag) {
        const char *name = keys[key].name;
        char q[OW_CFG_QUOTE_MAX];
        const char *why = NULL;
        uint64_t u;
        uint32_t ns;
        int r = 0;

        if (keys[key].flag) {
                /* The reference ignores anything after a flag keyword, so
                 * "verbose off" turned verbose *on*; refuse rather than guess. */
                if (!isempty(value))
                        return ow_diag_set(diag, file, line, -OW_ERR_VALUE, "'%s' takes no value (got '%s')",
                                           name, ow_cfg_quote(value, strlen(value), q));
                if (key == OW_CONF_VERBOSE)
                        c->verbose = true;
                else if (key == OW_CONF_LOGLOCATION)
                        c->loglocation = true;
                else if (key == OW_CONF_ALLOWINSECUREPFS)
                        c->allowinsecurepfs = true;
                else
                        c->rootfolly = true;
                goto done;
        }

        if (isempty(value))
                return ow_diag_set(diag, file, line, -OW_ERR_VALUE, "'%s' needs a value", name);
        if (strlen(value) > OW_CONF_MAX_VALUE)
                return ow_diag_set(diag, file, line, -OW_ERR_TOO_LONG,
                                   "value of '%s' is longer than %u bytes", name, OW_CONF_MAX_VALUE);
        (void) ow_cfg_quote(value, strlen(value), q);

        switch (key) {
        case OW_CONF_USER:
        case OW_CONF_GROUP:
                /* A name, or "-" and a numeric id. */
                if (value[0] == '-' && ow_cfg_parse_uint(value + 1, UINT32_MAX - 1, &u) < 0)
                        return ow_diag_set(diag, file, line, -OW_ERR_VALUE,
                                           "'%s' must be a name or '-' and a numeric id, got '%s'", name, q);
                r = set_string(key == OW_CONF_USER ? &c->user : &c->group, value);
                break;
        case OW_CONF_DATADIR:
        case OW_CONF_VARDIR:
                r = set_string(key == OW_CONF_DATADIR ? &c->datadir : &c->vardir, value);
                break;
        case OW_CONF_FACILITY:
                if (ow_conf_facility_from_string(value, &c->facility) < 0)
                        return ow_diag_set(diag, file, line, -OW_ERR_VALUE, "unknown syslog facility '%s'",
                                           q);
                break;
        case OW_CONF_LOGLEVEL:
                for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
                        if (ow_cfg_word_eq(value, strlen(value), log_levels[i])) {
                                c->loglevel = (OwLogLevel) i;
                                goto done;
                        }
                return ow_diag_set(diag, file, line, -OW_ERR_VALUE,
                                   "'loglevel' must be one of NONE, FATAL, WARN, INFO, DEBUG, ALL, got '%s'",
                                   q);
        case OW_CONF_AUTHMODE: {
                uint32_t m;
                if (ow_modes_from_string(value, &m) < 0)
                        return ow_diag_set(diag, file, line, -OW_ERR_MODE,
                                           "'authmode' must be letters out of A, E and O, got '%s'", q);
                c->authmode = m;
                break;
        }
        case OW_CONF_SRCNODE:
                r = parse_node(value, &c->srcnode, &why);
                if (r < 0)
                        return ow_diag_set(diag, file, line, r, "invalid 'srcnode' '%s': %s", q, why);
                break;
        case OW_CONF_TESTPORTS:
                if (parse_ports(value, &c->testports) < 0)
                        return ow_diag_set(
                                diag, file, line, -OW_ERR_PORT,
                                "'testports' must be 0 or LOW-HIGH with 1 <= LOW <= HIGH <= 65535, "
                                "got '%s'",
                                q);
                break;
        case OW_CONF_DISKFUDGE:
                r = ow_cfg_parse_decimal(value, 10, &u, &ns);
                if (r < 0 || u < 1 || (u == 10 && ns > 0))
                        return ow_diag_set(diag, file, line, -OW_ERR_VALUE,
                                           "'diskfudge' must be a decimal number from 1.0 to 10.0, got '%s'",
                                           q);
                c->diskfudge = (double) u + (double) ns / 1e9;
                r = 0;
                break;
        case OW_CONF_DIEBY:
                if (parse_seconds(value, OW_CONF_DIEBY_MAX_SEC, &c->dieby_sec) < 0)
                        return ow_diag_set(diag, file, line, -OW_ERR_VALUE,
                                           "'dieby' must be whole seconds from 0 to %u, got '%s'",
                                           OW_CONF_DIEBY_MAX_SEC, q);
                break;
        case OW_CONF_CONTROLTIMEOUT:
                if (parse_seconds(value, OW_CONF_CONTROLTIMEOUT_MAX_SEC, &c->controltimeout_sec) < 0)
                        return ow_diag_set(diag, file, line, -OW_ERR_VALUE,
                                           "'controltimeout' must be whole seconds from 0 to %u, got '%s'",
                                           OW_CONF_CONTROLTIMEOUT_MAX_SEC, q);
                break;
        case OW_CONF_PBKDF2_COUNT:
                r = ow_cfg_parse_uint(value, UINT64_MAX, &u);
                if (r == -EINVAL)
                        return ow_diag_set(diag, file, line, -OW_ERR_VALUE,
                                           "'pbkdf2_count' must be a whole number, got '%s'", q);
                if (r < 0 || u < OW_PBKDF2_COUNT_MIN || u > OW_PBKDF2_COUNT_MAX)
                        return ow_diag_set(diag, file, line, -OW_ERR_PBKDF2_COUNT,
                                           "'pbkdf2_count' must be from %u (RFC 4656) to %u, got '%s'",
                                           OW_PBKDF2_COUNT_MIN, OW_PBKDF2_COUNT_MAX, q);
                c->pbkdf2_count = (uint32_t) u;
                r = 0;
                break;
        case OW_CONF_ENDDELAY:
                if (ow_cfg_parse_decimal(value, OW_CONF_ENDDELAY_MAX_SEC, &u, &ns) < 0 ||
                    (u == OW_CONF_ENDDELAY_MAX_SEC && ns > 0))
                        return ow_diag_set(diag, file, line, -OW_ERR_VALUE,
                                           "'enddelay' must be seconds (decimal) from 0 to %u, got '%s'",
                                           OW_CONF_ENDDELAY_MAX_SEC, q);
                c->enddelay = OW_TIMESTAMP_FROM_SEC(u) | ow_frac_from_nsec(ns);
                break;
        case OW_CONF_MAXCONTROLSESSIONS:
                if (parse_seconds(value, OW_CONF_MAXCONTROLSESSIONS_MAX, &c->maxcontrolsessions) < 0)
                        return ow_diag_set(
                                diag, file, line, -OW_ERR_VALUE,
                                "'maxcontrolsessions' must be a count from 0 (unlimited) to %u, got "
                                "'%s'",
                                OW_CONF_MAXCONTROLSESSIONS_MAX, q);
                break;
        case OW_CONF_SESSIONLAUNCHER:
                for (size_t i = 0; i < ELEMENTSOF(session_launchers); i++)
                        if (ow_cfg_word_eq(value, strlen(value), session_launchers[i])) {
                                c->sessionlauncher = (OwSessionLauncher) i;
                                goto done;
                        }
                return ow_diag_set(diag, file, line, -OW_ERR_VALUE,
                                   "'sessionlauncher' must be one of auto, fork, systemd, got '%s'", q);
        case OW_CONF_MAXTESTSESSIONS:
                /* "auto": owampd derives it from its descriptor limit. 0
                 * is refused rather than read as "unlimited" (as
                 * maxcontrolsessions reads it): this limit is what keeps
                 * one client from exhausting the server. */
                if (ow_cfg_word_eq(value, strlen(value), "auto")) {
                        c->maxtestsessions = 0;
                        break;
                }
                if (ow_cfg_parse_uint(value, OW_CONF_MAXTESTSESSIONS_MAX, &u) < 0 || u == 0)
                        return ow_diag_set(diag, file, line, -OW_ERR_VALUE,
                                           "'maxtestsessions' must be auto or a count from 1 to %u, got '%s'",
                                           OW_CONF_MAXTESTSESSIONS_MAX, q);
                c->maxtestsessions = (uint32_t) u;
                break;
        case OW_CONF_SETUPTIMEOUT:
        case OW_CONF_MAXCONTROLSESSIONSPERADDR:
        case OW_CONF_MAXAUTHFAILURES:
        case OW_CONF_AUTHFAILWINDOW:
        case OW_CONF_AUTHBACKOFF:
                for (size_t i = 0; i < ELEMENTSOF(limit_keys); i++) {
                        if (limit_keys[i].key != key)
                                continue;
                        /* A window or a back-off of 0 would mean nothing. */
                        uint32_t min = key == OW_CONF_AUTHFAILWINDOW || key == OW_CONF_AUTHBACKOFF ? 1 : 0;
                        uint32_t v;
                        if (parse_seconds(value, limit_keys[i].max, &v) < 0 || v < min)
                                return ow_diag_set(diag, file, line, -OW_ERR_VALUE,
                                                   "'%s' must be %s to %u, got '%s'", name, limit_keys[i].what,
                                                   limit_keys[i].max, q);
                        *limit_field(c, i) = v;
                        goto done;
                }
                assert_not_reached();
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
done:
        c->set |= UINT32_C(1) << key;
        c->line[key] = line;
        return 0;
}

int ow_conf_set(OwConf *c, OwConfKey key, const char *value, OwDiag *diag) {
        ow_diag_clear(diag);
        if (!c || key >= _OW_CONF_KEY_MAX)
                return -EINVAL;
        return conf_apply(c, key, value, NULL, 0, diag);
}

int ow_conf_merge(OwConf *dst, const OwConf *src) {
        _cleanup_free_ char *user = NULL, *group = NULL, *datadir = NULL, *vardir = NULL;

        /* Allocate first so that a failure leaves dst as it was. */
        if ((src->user && !(user = strdup(src->user))) || (src->group && !(group = strdup(src->group))) ||
            (src->datadir && !(datadir = strdup(src->datadir))) ||
            (src->vardir && !(vardir = strdup(src->vardir))))
                return -ENOMEM;

        for (int k = 0; k < _OW_CONF_KEY_MAX; k++) {
                if (!ow_conf_is_set(src, (OwConfKey) k))
                        continue;
                switch ((OwConfKey) k) {
                case OW_CONF_USER:
                        free(dst->user);
                        dst->user = TAKE_PTR(user);
                        break;
                case OW_CONF_GROUP:
                        free(dst->group);
                        dst->group = TAKE_PTR(group);
                        break;
                case OW_CONF_DATADIR:
                        free(dst->datadir);
                        dst->datadir = TAKE_PTR(datadir);
                        break;
                case OW_CONF_VARDIR:
                        free(dst->vardir);
                        dst->vardir = TAKE_PTR(vardir);
                        break;
                case OW_CONF_VERBOSE:
                        dst->verbose = src->verbose;
                        break;
                case OW_CONF_FACILITY:
                        dst->facility = src->facility;
                        break;
                case OW_CONF_LOGLEVEL:
                        dst->loglevel = src->loglevel;
                        break;
                case OW_CONF_LOGLOCATION:
                        dst->loglocation = src->loglocation;
                        break;
                case OW_CONF_ROOTFOLLY:
                        dst->rootfolly = src->rootfolly;
                        break;
                case OW_CONF_AUTHMODE:
                        dst->authmode = src->authmode;
                        break;
                case OW_CONF_SRCNODE:
                        dst->srcnode = src->srcnode;
                        break;
                case OW_CONF_TESTPORTS:
                        dst->testports = src->testports;
                        break;
                case OW_CONF_DISKFUDGE:
                        dst->diskfudge = src->diskfudge;
                        break;
                case OW_CONF_DIEBY:
                        dst->dieby_sec = src->dieby_sec;
                        break;
                case OW_CONF_CONTROLTIMEOUT:
                        dst->controltimeout_sec = src->controltimeout_sec;
                        break;
                case OW_CONF_PBKDF2_COUNT:
                        dst->pbkdf2_count = src->pbkdf2_count;
                        break;
                case OW_CONF_ENDDELAY:
                        dst->enddelay = src->enddelay;
                        break;
                case OW_CONF_MAXCONTROLSESSIONS:
                        dst->maxcontrolsessions = src->maxcontrolsessions;
                        break;
                case OW_CONF_SESSIONLAUNCHER:
                        dst->sessionlauncher = src->sessionlauncher;
                        break;
                case OW_CONF_ALLOWINSECUREPFS:
                        dst->allowinsecurepfs = src->allowinsecurepfs;
                        break;
                case OW_CONF_MAXTESTSESSIONS:
                        dst->maxtestsessions = src->maxtestsessions;
                        break;
                case OW_CONF_SETUPTIMEOUT:
                case OW_CONF_MAXCONTROLSESSIONSPERADDR:
                case OW_CONF_MAXAUTHFAILURES:
                case OW_CONF_AUTHFAILWINDOW:
                case OW_CONF_AUTHBACKOFF:
                        for (size_t i = 0; i < ELEMENTSOF(limit_keys); i++)
                                if (limit_keys[i].key == (OwConfKey) k)
                                        *limit_field(dst, i) = limit_get(src, i);
                        break;
                case _OW_CONF_KEY_MAX:
                        break;
                }
                dst->set |= UINT32_C(1) << k;
                dst->line[k] = src->line[k];
        }
        return 0;
}

static int conf_parse_into(OwConf *c, OwCfgReader *rd, OwDiag *diag) {
        char q[OW_CFG_QUOTE_MAX], q2[OW_CFG_QUOTE_MAX];
        int r;

        while ((r = ow_cfg_reader_next(rd, diag)) > 0) {
                size_t len = ow_cfg_strip_comment(rd->text, rd->text_len);
                size_t pos = 0, ks, kn, vs = 0, vn = 0, xs, xn;
                unsigned kline, vline;
                _cleanup_free_ char *value = NULL;

                if (!ow_cfg_next_token(rd->text, len, &pos, &ks, &kn))
                        continue; /* cannot happen: the reader skips comment lines */
                kline = ow_cfg_reader_line_at(rd, ks);
                if (ow_cfg_next_token(rd->text, len, &pos, &vs, &vn) &&
                    ow_cfg_next_token(rd->text, len, &pos, &xs, &xn))
                        return ow_diag_set(diag, rd->file, ow_cfg_reader_line_at(rd, xs), -OW_ERR_SYNTAX,
                                           "unexpected '%s' after the value of '%s'",
                                           ow_cfg_quote(rd->text + xs, xn, q),
                                           ow_cfg_quote(rd->text + ks, kn, q2));
                vline = vn > 0 ? ow_cfg_reader_line_at(rd, vs) : kline;

                r = kn > OW_CONF_MAX_VALUE ? -OW_ERR_KEYWORD : key_lookup(rd->text + ks, kn);
                if (r < 0)
                        return ow_diag_set(diag, rd->file, kline, -OW_ERR_KEYWORD, "unknown keyword '%s'",
                                           ow_cfg_quote(rd->text + ks, kn, q));
                if (vn > 0) {
                        value = ow_cfg_strdup_n(rd->text + vs, vn);
                        if (!value)
                                return -ENOMEM;
                }
                r = conf_apply(c, (OwConfKey) r, value, rd->file, vline, diag);
                if (r < 0)
                        return r;
        }
        return r;
}

int ow_conf_parse(OwConf *c, const void *buf, size_t len, const char *file, OwDiag *diag) {
        OwConf tmp;
        OwCfgReader rd;
        int r;

        ow_diag_clear(diag);
        if (!c || (!buf && len > 0))
                return -EINVAL;
        r = ow_cfg_check_size(len, file, diag);
        if (r < 0)
                return r;

        conf_defaults(&tmp);
        ow_cfg_reader_init(&rd, buf, len, file);
        r = conf_parse_into(&tmp, &rd, diag);
        ow_cfg_reader_done(&rd);
        if (r >= 0)
                r = ow_conf_merge(c, &tmp);
        conf_clear(&tmp);
        return r < 0 ? r : 0;
}
