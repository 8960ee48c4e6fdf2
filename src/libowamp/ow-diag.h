/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Where a configuration parser failed, for the operator: the file name the
 * caller passed in, the 1-based line and a precise reason. The parsers fill
 * it in next to the negative return value; the caller decides how to log it
 * ("owampd.conf:12: unknown keyword 'foo'").
 */

#include <stddef.h>

#define OW_DIAG_MESSAGE_MAX 256

typedef struct OwDiag {
        const char *file; /* borrowed from the caller of the parser; may be NULL */
        unsigned line;    /* 1-based; 0 when the problem is not tied to one line */
        char message[OW_DIAG_MESSAGE_MAX];
} OwDiag;

/* Reset to "no problem". d may be NULL. */
void ow_diag_clear(OwDiag *d);

/* Record a problem (d may be NULL) and return r unchanged, so parsers can
 * write `return ow_diag_set(diag, file, line, -OW_ERR_VALUE, "...")`. */
int ow_diag_set(OwDiag *d, const char *file, unsigned line, int r, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* "file:line: message" (or "file: message" without a line, or just the
 * message without a file) into buf; returns buf. */
char *ow_diag_format(const OwDiag *d, char *buf, size_t size);
