/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-cfgtext.h"
#include "ow-error.h"

int ow_cfg_hexval(int c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

bool ow_cfg_word_eq(const char *s, size_t n, const char *word) {
        size_t i;

        for (i = 0; i < n; i++)
                if (word[i] == '\0' ||
                    ow_cfg_tolower((unsigned char) s[i]) != ow_cfg_tolower((unsigned char) word[i]))
                        return false;
        return word[i] == '\0';
}

void ow_cfg_reader_init(OwCfgReader *r, const void *buf, size_t len, const char *file) {
        *r = (OwCfgReader){
                .buf = buf,
                .len = len,
                .file = file,
                .line = 1,
        };
}

void ow_cfg_reader_done(OwCfgReader *r) {
        free(r->text);
        free(r->brk);
        r->text = NULL;
        r->brk = NULL;
        r->text_len = r->text_cap = r->n_brk = r->brk_cap = 0;
}

static int reader_append(OwCfgReader *r, char c) {
        if (r->text_len + 2 > r->text_cap) {
                size_t cap = r->text_cap ? r->text_cap * 2 : 128;
                char *t = realloc(r->text, cap);
                if (!t)
                        return -ENOMEM;
                r->text = t;
                r->text_cap = cap;
        }
        r->text[r->text_len++] = c;
        return 0;
}

static int reader_break(OwCfgReader *r) {
        if (r->n_brk == r->brk_cap) {
                size_t cap = r->brk_cap ? r->brk_cap * 2 : 8;
                OwCfgBreak *b = realloc(r->brk, cap * sizeof(*b));
                if (!b)
                        return -ENOMEM;
                r->brk = b;
                r->brk_cap = cap;
        }
        r->brk[r->n_brk++] = (OwCfgBreak){ .off = r->text_len, .line = r->line };
        return 0;
}

int ow_cfg_reader_next(OwCfgReader *r, OwDiag *diag) {
        int k;

        r->text_len = 0;
        r->n_brk = 0;

        while (r->pos < r->len) {
                char c = r->buf[r->pos];

                if (c == '\0')
                        return ow_diag_set(diag, r->file, r->line, -OW_ERR_SYNTAX, "NUL byte in the file");
                if (c == '\n') {
                        r->pos++;
                        r->line++;
                        if (r->text_len > 0)
                                break;
                        continue;
                }
                if (r->text_len == 0 && c == '#') {
                        /* A comment line, up to (not including) its newline. */
                        while (r->pos < r->len && r->buf[r->pos] != '\n') {
                                if (r->buf[r->pos] == '\0')
                                        return ow_diag_set(diag, r->file, r->line, -OW_ERR_SYNTAX,
                                                           "NUL byte in the file");
                                r->pos++;
                        }
                        continue;
                }
                if (r->text_len == 0 && ow_cfg_isspace(c)) {
                        r->pos++;
                        continue;
                }
                if (c == '\\') {
                        if (r->pos + 1 < r->len && r->buf[r->pos + 1] == '\n') {
                                r->pos += 2;
                                r->line++;
                                if (r->text_len > 0) {
                                        k = reader_break(r);
                                        if (k < 0)
                                                return k;
                                }
                                continue;
                        }
                        return ow_diag_set(diag, r->file, r->line, -OW_ERR_SYNTAX,
                                           "'\\' is only allowed right before the end of a line");
                }
                if (r->text_len == 0) {
                        k = reader_break(r);
                        if (k < 0)
                                return k;
                }
                k = reader_append(r, c);
                if (k < 0)
                        return k;
                r->pos++;
        }

        if (r->text_len == 0)
                return 0;
        r->text[r->text_len] = '\0';
        return 1;
}

unsigned ow_cfg_reader_line_at(const OwCfgReader *r, size_t off) {
        unsigned line = r->n_brk > 0 ? r->brk[0].line : r->line;

        for (size_t i = 0; i < r->n_brk && r->brk[i].off <= off; i++)
                line = r->brk[i].line;
        return line;
}

size_t ow_cfg_strip_comment(const char *text, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (text[i] == '#' && (i == 0 || ow_cfg_isspace((unsigned char) text[i - 1]))) {
                        len = i;
                        break;
                }
        while (len > 0 && ow_cfg_isspace((unsigned char) text[len - 1]))
                len--;
        return len;
}

bool ow_cfg_next_token(const char *text, size_t len, size_t *pos, size_t *start, size_t *n) {
        size_t p = *pos;

        while (p < len && ow_cfg_isspace((unsigned char) text[p]))
                p++;
        if (p >= len) {
                *pos = p;
                return false;
        }
        *start = p;
        while (p < len && !ow_cfg_isspace((unsigned char) text[p]))
                p++;
        *n = p - *start;
        *pos = p;
        return true;
}

int ow_cfg_grow(void **p, size_t *cap, size_t need, size_t elem) {
        size_t n;
        void *q;

        if (need <= *cap)
                return 0;
        n = MAX(need, *cap * 2);
        n = MAX(n, (size_t) 8);
        if (n > SIZE_MAX / elem)
                return -ENOMEM;
        q = realloc(*p, n * elem);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = n;
        return 0;
}

char *ow_cfg_strdup_n(const char *s, size_t n) {
        char *c = malloc(n + 1);

        if (!c)
                return NULL;
        memcpy(c, s, n);
        c[n] = '\0';
        return c;
}

int ow_cfg_check_size(size_t len, const char *file, OwDiag *diag) {
        if (len > OW_CFG_MAX_FILE_SIZE)
                return ow_diag_set(diag, file, 0, -OW_ERR_TOO_LONG, "file is larger than %u bytes",
                                   OW_CFG_MAX_FILE_SIZE);
        return 0;
}

int ow_cfg_parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || !ow_cfg_isdigit((unsigned char) *s))
                return -EINVAL;
        for (; *s; s++) {
                if (!ow_cfg_isdigit((unsigned char) *s))
                        return -EINVAL;
                unsigned d = (unsigned) (*s - '0');
                if (d > max || v > (max - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

int ow_cfg_parse_decimal(const char *s, uint64_t max_int, uint64_t *ret_int, uint32_t *ret_nsec) {
        uint64_t v = 0;
        uint32_t ns = 0, scale = 100000000;
        bool digits = false;

        if (!s)
                return -EINVAL;
        for (; ow_cfg_isdigit((unsigned char) *s); s++) {
                unsigned d = (unsigned) (*s - '0');
                if (d > max_int || v > (max_int - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
                digits = true;
        }
        if (*s == '.') {
                for (s++; ow_cfg_isdigit((unsigned char) *s); s++) {
                        ns += (uint32_t) (*s - '0') * scale;
                        scale /= 10;
                        digits = true;
                }
        }
        if (*s != '\0' || !digits)
                return -EINVAL;
        *ret_int = v;
        *ret_nsec = ns;
        return 0;
}

const char *ow_cfg_quote(const char *s, size_t n, char buf[OW_CFG_QUOTE_MAX]) {
        size_t o = 0;
        const size_t room = OW_CFG_QUOTE_MAX - 4; /* "..." and NUL */

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (o >= room) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                        break;
                }
                buf[o++] = c >= 0x20 && c < 0x7f ? (char) c : '?';
        }
        buf[o] = '\0';
        return buf;
}
