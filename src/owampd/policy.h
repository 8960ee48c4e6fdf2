/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "macro.h"
#include "ow-limits.h"
#include "ow-pfs.h"

/* owampd.limits and owampd.pfs as loaded together. Reference-counted: the
 * server holds the current one, every test session the one it was
 * admitted under, so a reload never changes the rules of a running
 * session. */
struct Policy {
        unsigned n_ref;
        OwLimits *limits;
        OwPfs *pfs;
        char *limits_path;
        char *pfs_path;
        bool limits_missing, pfs_missing; /* the file did not exist: empty */
        mode_t pfs_mode;                  /* as stat() saw it, when present */
        uint64_t generation;
};

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_unref);

int read_file_limited(const char *path, size_t max, char **ret, size_t *ret_len);
char *policy_config_path(const char *confdir, const char *ext);
