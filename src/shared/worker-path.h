/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Where the owamp-session worker is, for the fork launcher (owping, owampd
 * with sessionlauncher fork): the one place that decides it.
 *
 *  1. $OWAMP_SESSION_WORKER, when set and not empty;
 *  2. for a program run from its meson build tree (/proc/self/exe is
 *     BUILD/src/DIR/PROG and BUILD/build.ninja exists):
 *     BUILD/src/worker/owamp-session, the worker built with it;
 *  3. the installed LIBEXECDIR/owamp/owamp-session.
 *
 * *ret is always set (allocated) on anything but -ENOMEM; the return value
 * is 0, or -errno of access(X_OK) on it, so that the caller can name the
 * path that is missing together with WORKER_PATH_HINT.
 */

#define WORKER_PATH_HINT                                                                           \
        "install the project (meson install), run the programs from their build tree "             \
        "(build/src/owping/owping, or any program in the shell of meson devenv -C build), or set " \
        "OWAMP_SESSION_WORKER to the path of owamp-session"

int worker_path_find(char **ret);
