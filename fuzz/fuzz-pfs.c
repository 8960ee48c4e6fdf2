/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ow-error.h"
#include "ow-pfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OwPfs *p = NULL, *p2 = NULL;
        OwDiag d;
        char *out = NULL, *out2 = NULL;
        size_t n = 0, n2 = 0;

        int r = ow_pfs_parse(data, size, "fuzz.pfs", &p, &d);
        if (r < 0) {
                if ((ow_is_owerror(r) ? d.message[0] == '\0' : r != -ENOMEM) || p)
                        abort();
                return 0;
        }

        /* Every identity is found, exactly. */
        for (size_t i = 0; i < ow_pfs_count(p); i++) {
                const uint8_t *s;
                size_t len;
                if (ow_pfs_lookup(p, ow_pfs_id(p, i), &s, &len) < 0 || len == 0 || len > OW_PFS_MAX_SECRET)
                        abort();
        }

        /* encode(parse(x)) parses back to the same store and is a fixed
         * point of parse -> encode. */
        if (ow_pfs_encode(p, &out, &n) < 0)
                abort();
        if (ow_pfs_parse(out, n, "encoded", &p2, &d) < 0)
                abort();
        if (ow_pfs_count(p2) != ow_pfs_count(p))
                abort();
        for (size_t i = 0; i < ow_pfs_count(p); i++) {
                const uint8_t *s1, *s2;
                size_t l1, l2;
                if (strcmp(ow_pfs_id(p, i), ow_pfs_id(p2, i)) != 0 ||
                    ow_pfs_lookup(p, ow_pfs_id(p, i), &s1, &l1) < 0 ||
                    ow_pfs_lookup(p2, ow_pfs_id(p, i), &s2, &l2) < 0 || l1 != l2 || memcmp(s1, s2, l1) != 0)
                        abort();
        }
        if (ow_pfs_encode(p2, &out2, &n2) < 0 || n2 != n || memcmp(out, out2, n) != 0)
                abort();

        /* Edits keep the store consistent. */
        if (ow_pfs_count(p) > 0) {
                if (ow_pfs_set(p, ow_pfs_id(p, 0), data, size ? (size > 64 ? 64 : size) : 0) < 0 && size > 0)
                        abort();
                char *id = strdup(ow_pfs_id(p, 0));
                if (!id || ow_pfs_remove(p, id) < 0 || ow_pfs_lookup(p, id, NULL, NULL) != -ENOENT)
                        abort();
                free(id);
        }

        ow_pfs_encoded_free(out, n);
        ow_pfs_encoded_free(out2, n2);
        ow_pfs_free(p2);
        ow_pfs_free(p);
        return 0;
}
