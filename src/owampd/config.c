/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owampd's configuration: owampd.conf (or perfSONAR 5.x's
 * owamp-server.conf), the drop-ins in owampd.conf.d/, the command line over
 * both; and the reload that reads them again together with owampd.limits
 * and owampd.pfs, all or nothing.
 */

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "owampd.h"
#include "ow-error.h"
#include "policy.h"
#include "units.h"

/* On error, err gets "file:line: reason". */
static int config_load_file(OwConf *conf, const char *path, bool required, char *err, size_t err_size) {
        _cleanup_free_ char *buf = NULL;
        OwDiag diag = {};
        size_t len;

        int r = read_file_limited(path, 1u << 20, &buf, &len);
        if (r == -ENOENT && !required)
                return 0;
        if (r < 0)
                ow_diag_set(&diag, path, 0, r, "cannot read: %s", strerror(-r));
        else
                r = ow_conf_parse(conf, buf, len, path, &diag);
        if (r < 0)
                ow_diag_format(&diag, err, err_size);
        return r;
}

int config_load(const char *confdir, const OwConf *cli, OwConf **ret, char *err, size_t err_size) {
        _cleanup_free_ char *path = policy_config_path(confdir, "conf");
        _cleanup_free_ char *pattern = NULL;
        OwConf *conf = NULL;
        glob_t g = {};
        int r;

        snprintf(err, err_size, "%s: out of memory", confdir);
        if (!path || asprintf(&pattern, "%s/owampd.conf.d/*.conf", confdir) < 0)
                return -ENOMEM;
        r = ow_conf_new(&conf);
        if (r < 0)
                return r;
        r = config_load_file(conf, path, false, err, err_size);
        /* glob() sorts: the drop-ins apply in lexical order. */
        if (r >= 0 && glob(pattern, 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc && r >= 0; i++)
                        r = config_load_file(conf, g.gl_pathv[i], true, err, err_size);
        globfree(&g);
        if (r >= 0 && cli)
                r = ow_conf_merge(conf, cli);
        if (r < 0) {
                ow_conf_free(conf);
                return r;
        }
        *ret = conf;
        return 0;
}

/* loglevel (the reference's names) and verbose, as a syslog priority. */
static int conf_log_priority(const OwConf *conf) {
        int p;
        switch (conf->loglevel) {
        case OW_LOG_NONE:
                p = -1;
                break;
        case OW_LOG_FATAL:
                p = LOG_ERR;
                break;
        case OW_LOG_WARN:
                p = LOG_WARNING;
                break;
        case OW_LOG_INFO:
                p = LOG_INFO;
                break;
        default:
                p = LOG_DEBUG;
                break;
        }
        return conf->verbose ? LOG_DEBUG : p;
}

void config_apply(Server *s, const OwConf *conf) {
        s->verbose = conf->verbose;
        s->modes = conf->authmode;
        s->port_low = conf->testports.low;
        s->port_high = conf->testports.high;
        s->pbkdf2_count = conf->pbkdf2_count;
        s->control_timeout_usec = (uint64_t) conf->controltimeout_sec * 1000000;
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
        log_set_max_priority(conf_log_priority(conf));
        log_set_facility(conf->facility);
        log_set_location(conf->loglocation);
}

int config_log_priority(const OwConf *conf) {
        return conf_log_priority(conf);
}

static bool str_changed(const char *a, const char *b) {
        return (a == NULL) != (b == NULL) || (a && !streq(a, b));
}

/* Settings that the running process cannot take over: say so, keep them. */
static void warn_restart_only(const OwConf *old, const OwConf *new) {
        static const struct {
                OwConfKey key;
        } keys[] = { { OW_CONF_USER },           { OW_CONF_GROUP },   { OW_CONF_DATADIR },
                     { OW_CONF_VARDIR },         { OW_CONF_SRCNODE }, { OW_CONF_ROOTFOLLY },
                     { OW_CONF_SESSIONLAUNCHER } };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                bool changed;
                switch (keys[i].key) {
                case OW_CONF_USER:
                        changed = str_changed(old->user, new->user);
                        break;
                case OW_CONF_GROUP:
                        changed = str_changed(old->group, new->group);
                        break;
                case OW_CONF_DATADIR:
                        changed = str_changed(old->datadir, new->datadir);
                        break;
                case OW_CONF_VARDIR:
                        changed = str_changed(old->vardir, new->vardir);
                        break;
                case OW_CONF_SRCNODE:
                        changed = !streq(old->srcnode.host, new->srcnode.host) ||
                                  old->srcnode.port != new->srcnode.port;
                        break;
                case OW_CONF_SESSIONLAUNCHER:
                        changed = old->sessionlauncher != new->sessionlauncher;
                        break;
                default:
                        changed = old->rootfolly != new->rootfolly;
                        break;
                }
                if (changed)
                        log_notice("%s changed in the configuration; it takes effect when owampd restarts",
                                   ow_conf_key_to_string(keys[i].key));
        }
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

        warn_restart_only(s->conf, conf);
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

        config_apply(s, conf);
        session_limit_update(s);
        ow_conf_free(s->conf);
        s->conf = conf;
        policy_install(s, TAKE_PTR(p), true);
        /* Usage from what is really in the data directory now. */
        (void) datastore_scan(s);
        return 0;
}
