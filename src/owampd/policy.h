/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "macro.h"
#include "ow-limits.h"
#include "ow-pfs.h"

typedef struct PolicyUsage PolicyUsage;

struct Policy {
        OwLimits *limits;
        OwPfs *pfs;
        char *limits_path;
        char *pfs_path;
        uint64_t generation;
        PolicyUsage *usage; /* resources in use, carried across reloads */
};

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

int read_file_limited(const char *path, size_t max, char **ret, size_t *ret_len);
char *policy_config_path(const char *confdir, const char *ext);
