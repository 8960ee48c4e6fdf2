/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Parse arbitrary bytes as an .owp session file, then touch everything a
 * reader would: slots (both ways), every record, every skip range, and for
 * version 3 the header encoder, which must accept whatever the parser
 * accepted.
 */

#include <stdlib.h>

#include "fuzz.h"
#include "ow-owp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OwOwpFile f;
        OwSlot *slots = NULL;
        int r;

        if (ow_owp_parse(data, size, &f) < 0)
                return 0;

        r = ow_owp_get_slots_alloc(&f, &slots);
        if (f.has_request != (r >= 0))
                abort();

        for (uint32_t i = 0; i < f.n_records; i++) {
                OwRecord rec;

                (void) ow_owp_get_record(&f, i, &rec);
        }
        for (uint32_t i = 0; i < f.header.n_skips; i++) {
                OwSkipRange s;

                (void) ow_owp_get_skip_range(&f, i, &s);
        }

        if (f.version == OW_OWP_VERSION) {
                uint64_t n = ow_owp_header_size(f.request.n_slots);
                uint8_t *buf = malloc(n);

                if (!buf)
                        abort();
                f.request.slots = slots;
                if (n != f.header_size || ow_owp_header_encode(&f.header, &f.request, buf, n) != (int) n)
                        abort();
                free(buf);
        }

        free(slots);
        return 0;
}
