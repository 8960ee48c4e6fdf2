/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Internal helpers shared by the owampd.conf, owampd.limits and pass-phrase
 * file parsers (not part of the public API): a reader that yields logical
 * lines the way the reference's I2util reader does (comment lines, blank
 * lines, backslash-newline continuation), remembering which physical line
 * every part came from; ASCII-only character classes (no locale); bounded
 * number parsers; and quoting of user input for diagnostics.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-diag.h"

/* No configuration or key file is allowed to be larger than this. */
#define OW_CFG_MAX_FILE_SIZE (1024u * 1024u)

static inline bool ow_cfg_isspace(int c) {
        /* The same set as isspace() in the C locale and the reference's
         * I2WSPACESET. */
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static inline bool ow_cfg_isdigit(int c) {
        return c >= '0' && c <= '9';
}

static inline int ow_cfg_tolower(int c) {
        return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Value of a hex digit (either case), -1 if c is none. */
int ow_cfg_hexval(int c);

/* Case-insensitive (ASCII) equality of the n bytes at s and the string word. */
bool ow_cfg_word_eq(const char *s, size_t n, const char *word);

typedef struct OwCfgBreak {
        size_t off;    /* offset in the logical line */
        unsigned line; /* physical line the text from off on came from */
} OwCfgBreak;

typedef struct OwCfgReader {
        const char *buf;
        size_t len;
        size_t pos;
        const char *file;
        unsigned line; /* physical line of buf[pos], 1-based */
        char *text;    /* the current logical line, NUL-terminated */
        size_t text_len;
        size_t text_cap;
        OwCfgBreak *brk;
        size_t n_brk;
        size_t brk_cap;
} OwCfgReader;

void ow_cfg_reader_init(OwCfgReader *r, const void *buf, size_t len, const char *file);
void ow_cfg_reader_done(OwCfgReader *r);

/* Next logical line: skips blank lines and lines whose first non-blank
 * character is '#', joins backslash-newline continuations, strips leading
 * whitespace. Returns 1 with r->text set, 0 at the end of the input, or a
 * negative error (stray backslash, NUL byte: -OW_ERR_SYNTAX; -ENOMEM). */
int ow_cfg_reader_next(OwCfgReader *r, OwDiag *diag);

/* Physical line that the logical line's byte at off came from. */
unsigned ow_cfg_reader_line_at(const OwCfgReader *r, size_t off);

/* Length of text once a trailing comment is cut off: a '#' at the start of
 * the text or right after whitespace starts a comment, as the reference's
 * readers treat a token beginning with '#'. Trailing whitespace goes too. */
size_t ow_cfg_strip_comment(const char *text, size_t len);

/* Whitespace-separated tokens of text[0..len), starting at *pos. Returns false
 * at the end; otherwise sets *start and *n, and advances *pos. */
bool ow_cfg_next_token(const char *text, size_t len, size_t *pos, size_t *start, size_t *n);

/* Make room for need elements of size elem in *p (capacity *cap),
 * growing geometrically. 0 or -ENOMEM (then *p is unchanged). */
int ow_cfg_grow(void **p, size_t *cap, size_t need, size_t elem);

/* NUL-terminated copy of n bytes that need not be NUL-terminated
 * themselves (unlike strndup(), which may look further). NULL on ENOMEM. */
char *ow_cfg_strdup_n(const char *s, size_t n);

/* Checks the size bound of a whole input file. */
int ow_cfg_check_size(size_t len, const char *file, OwDiag *diag);

/* Unsigned decimal digits only (no sign, no blanks); 0 or -EINVAL
 * (malformed) or -ERANGE (above max). */
int ow_cfg_parse_uint(const char *s, uint64_t max, uint64_t *ret);

/* Non-negative decimal "D[.D]" or ".D" without exponent; the fraction is
 * kept to the nanosecond (further digits are truncated). 0, -EINVAL or
 * -ERANGE (integer part above max_int). */
int ow_cfg_parse_decimal(const char *s, uint64_t max_int, uint64_t *ret_int, uint32_t *ret_nsec);

/* Copy of n bytes of user input that is safe to put into a message:
 * non-printable bytes become '?', long input is cut with "...". */
#define OW_CFG_QUOTE_MAX 72
const char *ow_cfg_quote(const char *s, size_t n, char buf[OW_CFG_QUOTE_MAX]);
