/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Table-driven rejection cases of the configuration parsers: what a bad
 * input must give back - the error, and a diagnostic naming the file, the
 * line and the reason. */

#include <string.h>

#include "ow-diag.h"
#include "ow-error.h"
#include "testutil.h"

typedef struct BadCase {
        const char *text;
        size_t len; /* 0: strlen(text) */
        int r;
        unsigned line;
        const char *msg; /* substring of the diagnostic */
} BadCase;

static inline size_t bad_case_len(const BadCase *b) {
        return b->len ? b->len : strlen(b->text);
}

/* The parser returned r and filled d for input b, reading file. */
static inline void check_bad_case(const BadCase *b, int r, const OwDiag *d, const char *file) {
        ck_assert_msg(r == b->r, "\"%s\": got %d (%s), expected %d (%s); diag: %s", b->text, r, ow_strerror(r),
                      b->r, ow_strerror(b->r), d->message);
        ck_assert_msg(d->line == b->line, "\"%s\": line %u, expected %u (%s)", b->text, d->line, b->line,
                      d->message);
        ck_assert_msg(strstr(d->message, b->msg), "\"%s\": message \"%s\" lacks \"%s\"", b->text, d->message,
                      b->msg);
        ck_assert_str_eq(d->file, file);
}
