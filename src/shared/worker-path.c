/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "worker-path.h"

/* BUILD/src/worker/owamp-session when we are BUILD/src/DIR/PROG in a meson
 * build tree; NULL otherwise. */
static char *build_tree_worker(void) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
                return NULL;
        exe[n] = 0;

        /* Strip PROG and DIR, then "src". */
        for (int i = 0; i < 2; i++) {
                char *slash = strrchr(exe, '/');
                if (!slash || slash == exe)
                        return NULL;
                *slash = 0;
        }
        char *slash = strrchr(exe, '/');
        if (!slash || strcmp(slash + 1, "src") != 0)
                return NULL;
        *slash = 0;

        char *ninja = NULL, *worker = NULL;
        if (asprintf(&ninja, "%s/build.ninja", exe) < 0)
                return NULL;
        bool tree = access(ninja, F_OK) == 0;
        free(ninja);
        if (!tree || asprintf(&worker, "%s/src/worker/owamp-session", exe) < 0)
                return NULL;
        return worker;
}

int worker_path_find(char **ret) {
        const char *env = getenv("OWAMP_SESSION_WORKER");
        char *p;

        if (!isempty(env))
                p = strdup(env);
        else {
                p = build_tree_worker();
                if (!p)
                        p = strdup(LIBEXECDIR "/owamp/owamp-session");
        }
        if (!p)
                return -ENOMEM;
        *ret = p;
        return access(p, X_OK) < 0 ? -errno : 0;
}
