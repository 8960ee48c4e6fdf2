/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "ow-error.h"
#include "ow-limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OwLimits *l = NULL;
        OwDiag d;
        char path[OW_LIMITS_MAX_CLASSES * 8];

        int r = ow_limits_parse(data, size, "fuzz.limits", &l, &d);
        if (r < 0) {
                if ((ow_is_owerror(r) ? d.message[0] == '\0' : r != -ENOMEM) || l)
                        abort();
                return 0;
        }

        size_t n = ow_limits_n_classes(l);
        if (n == 0 || n > OW_LIMITS_MAX_CLASSES)
                abort();
        for (size_t c = 0; c < n; c++) {
                size_t p;
                /* Parents come first: the tree has no cycles. */
                if (ow_limits_class_parent(l, c, &p) == 0 && p >= c)
                        abort();
                if ((ow_limits_class_parent(l, c, &p) < 0) != (c == 0))
                        abort();
                for (int k = 0; k < _OW_LIMIT_KEY_MAX; k++)
                        (void) ow_limits_get(l, c, (OwLimitKey) k);
                if (ow_limits_class_find(l, ow_limits_class_name(l, c)) != (int) c)
                        abort();
                (void) ow_limits_class_path(l, c, path, sizeof(path));
        }

        /* Resolve addresses and identities taken from the input itself. */
        uint8_t a[16] = { 0 };
        memcpy(a, data, size < sizeof(a) ? size : sizeof(a));
        const char *ids[] = { NULL, "", "root", "test", ow_limits_class_name(l, n - 1) };
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
                size_t c;
                if (ow_limits_resolve(l, AF_INET, a, ids[i], &c) < 0 || c >= n)
                        abort();
                if (ow_limits_resolve(l, AF_INET6, a, ids[i], &c) < 0 || c >= n)
                        abort();
        }
        (void) ow_limits_check_users(l, NULL, "fuzz.limits", &d);
        ow_limits_free(l);
        return 0;
}
