/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* owampd.conf (or owamp-server.conf) and owampd.conf.d/: reading them,
 * with the command line over them. Knows nothing of the server: the
 * server applies what it gets (server.c). */

#include <stddef.h>

#include "ow-conf.h"

/* owampd.<ext> in confdir, or perfSONAR 5.x's owamp-server.<ext> when only
 * that exists; NULL when out of memory. */
char *config_file_path(const char *confdir, const char *ext);
/* Read owampd.conf (or owamp-server.conf) and owampd.conf.d/ * .conf in
 * confdir, then apply cli over them. On error, err gets "file:line: reason". */
int config_load(const char *confdir, const OwConf *cli, OwConf **ret, char *err, size_t err_size);
/* loglevel (the reference's names) and verbose, as a syslog priority. */
int config_log_priority(const OwConf *conf);
/* Settings that the running process cannot take over: say so (logged). */
void config_warn_restart_only(const OwConf *old, const OwConf *new);
