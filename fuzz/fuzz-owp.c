/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Parse arbitrary bytes as an .owp session file, then touch everything a
 * reader would: slots (both ways), every record, every skip range, and for
 * version 3 the header encoder, which must accept whatever the parser
 * accepted. Start-up recovery too: a file it repairs must parse after the
 * repair, incomplete, with the records it kept, and need no second one.
 * The same bytes as a .twp file (twping -F, version 0x83): exactly one of
 * the two parsers may accept them, and a .twp file's two-way records,
 * slots and skip ranges are read the same way.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ow-error.h"
#include "ow-owp.h"

static void twp_input(const uint8_t *data, size_t size) {
        OwOwpFile f, g;
        OwSlot *slots = NULL;

        if (ow_twp_parse(data, size, &f) < 0)
                return;
        if (ow_owp_parse(data, size, &g) >= 0 || !ow_owp_is_twp(data, size) || f.version != OW_TWP_VERSION ||
            f.record_size != OW_TW_RECORD_SIZE)
                abort();
        if (ow_owp_get_slots_alloc(&f, &slots) < 0 && !f.has_request)
                abort();
        for (uint32_t i = 0; i < f.n_records; i++) {
                OwTwRecord rec;
                OwRecord one;
                (void) ow_twp_get_record(&f, i, &rec);
                if (ow_owp_get_record(&f, i, &one) != -OW_ERR_VERSION)
                        abort();
        }
        for (uint32_t i = 0; i < f.header.n_skips; i++) {
                OwSkipRange s;
                (void) ow_owp_get_skip_range(&f, i, &s);
        }
        free(slots);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OwOwpFile f;
        OwSlot *slots = NULL;
        int r;

        twp_input(data, size);
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

        OwOwpRecovery rec;
        r = ow_owp_recover(data, size, &rec);
        if (r < 0)
                abort(); /* it parsed above */
        if (r > 0) {
                OwOwpFile g;
                uint8_t *fixed = malloc(rec.size ? rec.size : 1);

                if (!fixed || rec.size + rec.cut != size || rec.size > size)
                        abort();
                memcpy(fixed, data, rec.size);
                for (size_t i = 0; i < OW_OWP_RECOVERY_PATCHES; i++)
                        if (ow_owp_patch_apply(&rec.patches[i], fixed, rec.size) < 0)
                                abort();
                if (ow_owp_parse(fixed, rec.size, &g) < 0 || g.header.finished != OW_OWP_FINISHED_INCOMPLETE ||
                    g.n_records != rec.n_records || g.header.n_records != rec.n_records ||
                    ow_owp_recover(fixed, rec.size, &rec) != 0)
                        abort();
                free(fixed);
        }

        free(slots);
        return 0;
}
