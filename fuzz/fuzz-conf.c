/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ow-conf.h"
#include "ow-error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OwConf *c = NULL, *copy = NULL;
        OwDiag d;
        char msg[512];

        if (ow_conf_new(&c) < 0 || ow_conf_new(&copy) < 0)
                abort();
        int r = ow_conf_parse(c, data, size, "fuzz.conf", &d);
        if (r < 0) {
                /* A failure always explains itself and leaves nothing set. */
                if (ow_is_owerror(r) ? d.message[0] == '\0' : r != -ENOMEM)
                        abort();
                if (c->set != 0)
                        abort();
                (void) ow_diag_format(&d, msg, sizeof(msg));
        } else {
                /* Layering the result onto another configuration gives the
                 * same values. */
                if (ow_conf_merge(copy, c) < 0)
                        abort();
                if (copy->set != c->set || copy->testports.low != c->testports.low ||
                    copy->testports.high != c->testports.high || copy->pbkdf2_count != c->pbkdf2_count ||
                    copy->enddelay != c->enddelay || copy->authmode != c->authmode ||
                    strcmp(copy->srcnode.host, c->srcnode.host) != 0)
                        abort();
                if (c->testports.low > c->testports.high ||
                    (c->testports.low == 0 && c->testports.high != 0))
                        abort();
                if (c->pbkdf2_count < OW_PBKDF2_COUNT_MIN || c->diskfudge < 1.0 || c->diskfudge > 10.0)
                        abort();
                /* A second, identical layer changes nothing. */
                if (ow_conf_parse(copy, data, size, "fuzz.conf", &d) < 0)
                        abort();
        }
        ow_conf_free(copy);
        ow_conf_free(c);
        return 0;
}
