/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ow-diag.h"

void ow_diag_clear(OwDiag *d) {
        if (!d)
                return;
        d->file = NULL;
        d->line = 0;
        d->message[0] = '\0';
}

int ow_diag_set(OwDiag *d, const char *file, unsigned line, int r, const char *fmt, ...) {
        va_list ap;

        if (!d)
                return r;
        d->file = file;
        d->line = line;
        va_start(ap, fmt);
        (void) vsnprintf(d->message, sizeof(d->message), fmt, ap);
        va_end(ap);
        return r;
}

char *ow_diag_format(const OwDiag *d, char *buf, size_t size) {
        if (!buf || size == 0)
                return buf;
        if (!d) {
                buf[0] = '\0';
                return buf;
        }
        if (d->file && d->line > 0)
                (void) snprintf(buf, size, "%s:%u: %s", d->file, d->line, d->message);
        else if (d->file)
                (void) snprintf(buf, size, "%s: %s", d->file, d->message);
        else if (d->line > 0)
                (void) snprintf(buf, size, "line %u: %s", d->line, d->message);
        else
                (void) snprintf(buf, size, "%s", d->message);
        return buf;
}
