/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owampd's configuration: owampd.conf (or perfSONAR 5.x's
 * owamp-server.conf), the drop-ins in owampd.conf.d/, the command line over
 * both. The server applies them and reloads them (server.c).
 */

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "file-util.h"
#include "log.h"
#include "macro.h"
#include "owampd-config.h"
#include "ow-error.h"

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

char *config_file_path(const char *confdir, const char *ext) {
        char *p = NULL;
        if (asprintf(&p, "%s/owampd.%s", confdir, ext) < 0)
                return NULL;
        if (access(p, F_OK) == 0)
                return p;
        free(p);
        if (asprintf(&p, "%s/owamp-server.%s", confdir, ext) < 0)
                return NULL;
        if (access(p, F_OK) == 0)
                return p;
        free(p);
        if (asprintf(&p, "%s/owampd.%s", confdir, ext) < 0)
                return NULL;
        return p;
}

int config_load(const char *confdir, const OwConf *cli, OwConf **ret, char *err, size_t err_size) {
        _cleanup_free_ char *path = config_file_path(confdir, "conf");
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

int config_log_priority(const OwConf *conf) {
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

static bool str_changed(const char *a, const char *b) {
        return (a == NULL) != (b == NULL) || (a && !streq(a, b));
}

/* Settings that the running process cannot take over: say so, keep them. */
void config_warn_restart_only(const OwConf *old, const OwConf *new) {
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
