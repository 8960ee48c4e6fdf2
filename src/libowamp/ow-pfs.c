/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ow-crypto.h"
#include "ow-cfgtext.h"
#include "ow-error.h"
#include "ow-pfs.h"
#include "ow-types.h"

typedef struct PfsItem {
        char *text;      /* comment and blank lines, verbatim, '\n'-separated; NULL for an entry */
        char *id;        /* entry */
        uint8_t *secret; /* entry, len octets */
        size_t len;
        unsigned line; /* where it was read; 0 if added */
} PfsItem;

struct OwPfs {
        PfsItem *items;
        size_t n_items, cap_items;
        size_t n_entries;
        /* Open-addressing index of the entries by identity: item index + 1,
         * 0 for a free slot; n_slots is a power of two, at most half full.
         * Keeps a file of OW_PFS_MAX_ENTRIES identities linear to load. */
        size_t *slots;
        size_t n_slots;
};

static void secret_free(uint8_t *s, size_t len) {
        if (!s)
                return;
        ow_wipe(s, len);
        free(s);
}

static void item_done(PfsItem *it) {
        free(it->text);
        free(it->id);
        secret_free(it->secret, it->len);
        *it = (PfsItem){};
}

OwPfs *ow_pfs_free(OwPfs *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_items; i++)
                item_done(&p->items[i]);
        free(p->items);
        free(p->slots);
        free(p);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(OwPfs *, ow_pfs_free);

int ow_pfs_new(OwPfs **ret) {
        OwPfs *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

static bool id_valid_n(const char *id, size_t n) {
        if (n == 0 || n > OW_KEYID_SIZE || id[0] == '#')
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) id[i];
                /* Octets above 0x7f are allowed: UTF-8 identities. */
                if (c <= 0x20 || c == 0x7f)
                        return false;
        }
        return true;
}

bool ow_pfs_id_valid(const char *id) {
        return id && id_valid_n(id, strlen(id));
}

static size_t id_hash(const char *id, size_t n) {
        /* FNV-1a; identities come from the administrator's own file. */
        uint64_t h = UINT64_C(14695981039346656037);

        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char) id[i];
                h *= UINT64_C(1099511628211);
        }
        return (size_t) h;
}

static void index_put(OwPfs *p, size_t item) {
        const char *id = p->items[item].id;
        size_t mask = p->n_slots - 1, i = id_hash(id, strlen(id)) & mask;

        while (p->slots[i] != 0)
                i = (i + 1) & mask;
        p->slots[i] = item + 1;
}

/* Rebuild the index with room for at least need entries. */
static int index_rebuild(OwPfs *p, size_t need) {
        size_t n = 16;

        while (n < 2 * need)
                n *= 2;
        size_t *s = calloc(n, sizeof(*s));
        if (!s)
                return -ENOMEM;
        free(p->slots);
        p->slots = s;
        p->n_slots = n;
        for (size_t i = 0; i < p->n_items; i++)
                if (p->items[i].id)
                        index_put(p, i);
        return 0;
}

static PfsItem *find(const OwPfs *p, const char *id, size_t n) {
        if (p->n_slots == 0)
                return NULL;
        size_t mask = p->n_slots - 1;
        for (size_t i = id_hash(id, n) & mask; p->slots[i] != 0; i = (i + 1) & mask) {
                PfsItem *it = &p->items[p->slots[i] - 1];
                if (strlen(it->id) == n && memcmp(it->id, id, n) == 0)
                        return it;
        }
        return NULL;
}

size_t ow_pfs_count(const OwPfs *p) {
        return p ? p->n_entries : 0;
}

const char *ow_pfs_id(const OwPfs *p, size_t i) {
        if (!p)
                return NULL;
        for (size_t k = 0; k < p->n_items; k++)
                if (p->items[k].id && i-- == 0)
                        return p->items[k].id;
        return NULL;
}

int ow_pfs_lookup(const OwPfs *p, const char *id, const uint8_t **ret_secret, size_t *ret_len) {
        const PfsItem *it;

        if (!p || !id)
                return -ENOENT;
        it = find(p, id, strlen(id));
        if (!it)
                return -ENOENT;
        if (ret_secret)
                *ret_secret = it->secret;
        if (ret_len)
                *ret_len = it->len;
        return 0;
}

static int append(OwPfs *p, PfsItem *it) {
        if (ow_cfg_grow((void **) &p->items, &p->cap_items, p->n_items + 1, sizeof(*it)) < 0)
                return -ENOMEM;
        if (it->id && 2 * (p->n_entries + 1) > p->n_slots && index_rebuild(p, p->n_entries + 1) < 0)
                return -ENOMEM;
        p->items[p->n_items++] = *it;
        if (it->id) {
                p->n_entries++;
                index_put(p, p->n_items - 1);
        }
        *it = (PfsItem){};
        return 0;
}

int ow_pfs_set(OwPfs *p, const char *id, const uint8_t *secret, size_t len) {
        PfsItem *old, it = {};
        uint8_t *s;

        if (!p || (!secret && len > 0))
                return -EINVAL;
        if (!ow_pfs_id_valid(id))
                return -OW_ERR_KEYID;
        if (len == 0)
                return -OW_ERR_VALUE;
        if (len > OW_PFS_MAX_SECRET)
                return -OW_ERR_TOO_LONG;
        old = find(p, id, strlen(id));
        if (!old && p->n_entries >= OW_PFS_MAX_ENTRIES)
                return -OW_ERR_COUNT;

        s = malloc(len);
        if (!s)
                return -ENOMEM;
        memcpy(s, secret, len);
        if (old) {
                secret_free(old->secret, old->len);
                old->secret = s;
                old->len = len;
                return 0;
        }
        it.id = strdup(id);
        if (!it.id) {
                secret_free(s, len);
                return -ENOMEM;
        }
        it.secret = s;
        it.len = len;
        int r = append(p, &it);
        item_done(&it);
        return r;
}

int ow_pfs_remove(OwPfs *p, const char *id) {
        PfsItem *it;

        if (!p || !id)
                return -ENOENT;
        it = find(p, id, strlen(id));
        if (!it)
                return -ENOENT;
        item_done(it);
        memmove(it, it + 1, (size_t) (p->items + p->n_items - (it + 1)) * sizeof(*it));
        p->n_items--;
        p->n_entries--;
        /* Items after it moved: index them again (at the same size, so
         * this cannot need more memory than the index already has). */
        memset(p->slots, 0, p->n_slots * sizeof(*p->slots));
        for (size_t i = 0; i < p->n_items; i++)
                if (p->items[i].id)
                        index_put(p, i);
        return 0;
}

static bool line_is_verbatim(const char *s, size_t n) {
        size_t i = 0;

        while (i < n && ow_cfg_isspace((unsigned char) s[i]))
                i++;
        return i == n || s[i] == '#';
}

static int append_text(OwPfs *p, const char *s, size_t n) {
        PfsItem it = {};

        it.text = ow_cfg_strdup_n(s, n);
        if (!it.text)
                return -ENOMEM;
        int r = append(p, &it);
        item_done(&it);
        return r;
}

static int parse_entry(OwPfs *p, const char *s, size_t n, const char *file, unsigned line, OwDiag *diag) {
        char q[OW_CFG_QUOTE_MAX];
        PfsItem it = { .line = line };
        size_t i = 0, id_n, hs, hn;
        int r;

        while (i < n && ow_cfg_isspace((unsigned char) s[i]))
                i++;
        if (i > 0)
                return ow_diag_set(diag, file, line, -OW_ERR_SYNTAX,
                                   "an entry must start at the beginning of the line");

        while (i < n && !ow_cfg_isspace((unsigned char) s[i]))
                i++;
        id_n = i;
        if (!id_valid_n(s, id_n))
                return ow_diag_set(diag, file, line, -OW_ERR_KEYID,
                                   "invalid identity '%s': 1..%u octets without control characters",
                                   ow_cfg_quote(s, id_n, q), OW_KEYID_SIZE);
        if (find(p, s, id_n)) {
                const PfsItem *o = find(p, s, id_n);
                return ow_diag_set(diag, file, line, -OW_ERR_DUPLICATE,
                                   "identity '%s' is already defined on line %u", ow_cfg_quote(s, id_n, q),
                                   o->line);
        }
        if (p->n_entries >= OW_PFS_MAX_ENTRIES)
                return ow_diag_set(diag, file, line, -OW_ERR_COUNT, "more than %u identities",
                                   OW_PFS_MAX_ENTRIES);

        while (i < n && ow_cfg_isspace((unsigned char) s[i]))
                i++;
        hs = i;
        while (i < n && !ow_cfg_isspace((unsigned char) s[i]))
                i++;
        hn = i - hs;
        while (i < n && ow_cfg_isspace((unsigned char) s[i]))
                i++;
        if (i < n)
                return ow_diag_set(
                        diag, file, line, -OW_ERR_SYNTAX,
                        "unexpected '%s' after the pass-phrase (comments must be on their own line)",
                        ow_cfg_quote(s + i, n - i, q));
        if (hn == 0)
                return ow_diag_set(diag, file, line, -OW_ERR_HEX, "identity '%s' has no pass-phrase",
                                   ow_cfg_quote(s, id_n, q));
        if (hn > 2 * OW_PFS_MAX_SECRET)
                return ow_diag_set(diag, file, line, -OW_ERR_TOO_LONG, "pass-phrase longer than %u octets",
                                   OW_PFS_MAX_SECRET);
        if (hn % 2 != 0)
                return ow_diag_set(diag, file, line, -OW_ERR_HEX,
                                   "pass-phrase has an odd number of hex digits");

        it.len = hn / 2;
        it.secret = malloc(it.len);
        it.id = ow_cfg_strdup_n(s, id_n);
        if (!it.secret || !it.id) {
                item_done(&it);
                return -ENOMEM;
        }
        for (size_t k = 0; k < it.len; k++) {
                int hi = ow_cfg_hexval((unsigned char) s[hs + 2 * k]);
                int lo = ow_cfg_hexval((unsigned char) s[hs + 2 * k + 1]);
                if (hi < 0 || lo < 0) {
                        item_done(&it);
                        return ow_diag_set(diag, file, line, -OW_ERR_HEX, "pass-phrase is not hex-encoded");
                }
                it.secret[k] = (uint8_t) (hi << 4 | lo);
        }
        r = append(p, &it);
        item_done(&it);
        return r;
}

int ow_pfs_parse(const void *buf, size_t len, const char *file, OwPfs **ret, OwDiag *diag) {
        _cleanup_(ow_pfs_freep) OwPfs *p = NULL;
        const char *s = buf;
        unsigned line = 1;
        size_t pos = 0, run = 0, run_end = 0;
        bool in_run = false;
        int r;

        ow_diag_clear(diag);
        if (!ret || (!buf && len > 0))
                return -EINVAL;
        r = ow_cfg_check_size(len, file, diag);
        if (r < 0)
                return r;
        r = ow_pfs_new(&p);
        if (r < 0)
                return r;

        while (pos < len) {
                const char *nl = memchr(s + pos, '\n', len - pos);
                size_t n = nl ? (size_t) (nl - (s + pos)) : len - pos;

                if (memchr(s + pos, '\0', n))
                        return ow_diag_set(diag, file, line, -OW_ERR_SYNTAX, "NUL byte in the file");
                if (line_is_verbatim(s + pos, n)) {
                        /* Runs of blank and comment lines are kept as one
                         * block, written back verbatim by the encoder. */
                        if (!in_run)
                                run = pos;
                        in_run = true;
                        run_end = pos + n;
                } else {
                        if (in_run) {
                                r = append_text(p, s + run, run_end - run);
                                if (r < 0)
                                        return r;
                                in_run = false;
                        }
                        r = parse_entry(p, s + pos, n, file, line, diag);
                        if (r < 0)
                                return r;
                }
                pos += n + (nl ? 1 : 0);
                line++;
        }
        if (in_run) {
                r = append_text(p, s + run, run_end - run);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(p);
        return 0;
}

int ow_pfs_encode(const OwPfs *p, char **ret, size_t *ret_len) {
        static const char hex[] = "0123456789abcdef";
        size_t size = 0, o = 0;
        char *b;

        if (!p || !ret)
                return -EINVAL;
        for (size_t i = 0; i < p->n_items; i++) {
                const PfsItem *it = &p->items[i];
                size += it->text ? strlen(it->text) + 1 : strlen(it->id) + 2 + 2 * it->len;
        }
        b = malloc(size + 1);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_items; i++) {
                const PfsItem *it = &p->items[i];
                if (it->text) {
                        size_t n = strlen(it->text);
                        memcpy(b + o, it->text, n);
                        o += n;
                } else {
                        size_t n = strlen(it->id);
                        memcpy(b + o, it->id, n);
                        o += n;
                        b[o++] = '\t';
                        for (size_t k = 0; k < it->len; k++) {
                                b[o++] = hex[it->secret[k] >> 4];
                                b[o++] = hex[it->secret[k] & 0x0f];
                        }
                }
                b[o++] = '\n';
        }
        b[o] = '\0';
        *ret = b;
        if (ret_len)
                *ret_len = o;
        return 0;
}

void ow_pfs_encoded_free(char *buf, size_t len) {
        if (!buf)
                return;
        ow_wipe(buf, len);
        free(buf);
}
