/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"
#include "ow-cfgtext.h"
#include "ow-error.h"
#include "ow-limits.h"
#include "ow-owp.h"
#include "ow-pfs.h"
#include "ow-testpkt.h"
#include "ow-types.h"

typedef struct LimitClass {
        char name[OW_LIMITS_MAX_CLASS_NAME + 1];
        bool root;
        size_t parent;
        unsigned line;
        uint32_t set; /* bit (1u << OwLimitKey) for every limit on its own line */
        uint64_t value[_OW_LIMIT_KEY_MAX];
} LimitClass;

typedef struct LimitNet {
        int family;
        unsigned prefixlen;
        uint8_t addr[16];
        size_t class;
        unsigned line;
} LimitNet;

typedef struct LimitUser {
        char id[OW_KEYID_SIZE + 1];
        size_t class;
        unsigned line;
} LimitUser;

struct OwLimits {
        LimitClass *classes;
        size_t n_classes, cap_classes;
        LimitNet *nets;
        size_t n_nets, cap_nets;
        LimitUser *users;
        size_t n_users, cap_users;
        bool has_default;
        size_t default_class;
        unsigned default_line;
};

typedef enum LimitType {
        LIMIT_INT,
        LIMIT_BOOL,
} LimitType;

static const struct {
        const char *name;
        LimitType type;
        uint64_t def;
} limit_desc[_OW_LIMIT_KEY_MAX] = {
        [OW_LIMIT_BANDWIDTH] = { "bandwidth", LIMIT_INT, 0 },
        [OW_LIMIT_DISK] = { "disk", LIMIT_INT, 0 },
        [OW_LIMIT_DELETE_ON_FETCH] = { "delete_on_fetch", LIMIT_BOOL, 0 },
        [OW_LIMIT_ALLOW_OPEN_MODE] = { "allow_open_mode", LIMIT_BOOL, 1 },
        [OW_LIMIT_TEST_SESSIONS] = { "test_sessions", LIMIT_INT, 0 },
        [OW_LIMIT_ALLOW_FOREIGN_ENDPOINT] = { "allow_foreign_endpoint", LIMIT_BOOL, 0 },
};

const char *ow_limit_key_to_string(OwLimitKey key) {
        return key < _OW_LIMIT_KEY_MAX ? limit_desc[key].name : NULL;
}

OwLimits *ow_limits_free(OwLimits *l) {
        if (!l)
                return NULL;
        free(l->classes);
        free(l->nets);
        free(l->users);
        free(l);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(OwLimits *, ow_limits_free);

size_t ow_limits_n_classes(const OwLimits *l) {
        return l ? l->n_classes : 0;
}

const char *ow_limits_class_name(const OwLimits *l, size_t class) {
        return l && class < l->n_classes ? l->classes[class].name : NULL;
}

static int class_find_n(const OwLimits *l, const char *name, size_t n) {
        for (size_t i = 0; i < l->n_classes; i++)
                if (strlen(l->classes[i].name) == n && memcmp(l->classes[i].name, name, n) == 0)
                        return (int) i;
        return -OW_ERR_UNKNOWN;
}

int ow_limits_class_find(const OwLimits *l, const char *name) {
        if (!l || !name)
                return -OW_ERR_UNKNOWN;
        return class_find_n(l, name, strlen(name));
}

int ow_limits_class_parent(const OwLimits *l, size_t class, size_t *ret) {
        if (!l || class >= l->n_classes)
                return -EINVAL;
        if (l->classes[class].root)
                return -ENOENT;
        *ret = l->classes[class].parent;
        return 0;
}

unsigned ow_limits_class_line(const OwLimits *l, size_t class) {
        return l && class < l->n_classes ? l->classes[class].line : 0;
}

bool ow_limits_class_sets(const OwLimits *l, size_t class, OwLimitKey key) {
        return l && class < l->n_classes && key < _OW_LIMIT_KEY_MAX &&
               (l->classes[class].set & (UINT32_C(1) << key));
}

uint64_t ow_limits_get(const OwLimits *l, size_t class, OwLimitKey key) {
        if (key >= _OW_LIMIT_KEY_MAX)
                return 0;
        /* Parents always come before their children, so this terminates. */
        while (l && class < l->n_classes) {
                const LimitClass *c = &l->classes[class];
                if (c->set & (UINT32_C(1) << key))
                        return c->value[key];
                if (c->root)
                        break;
                class = c->parent;
        }
        return limit_desc[key].def;
}

int ow_limits_class_path(const OwLimits *l, size_t class, char *buf, size_t size) {
        size_t need = 0, c;

        if (!l || class >= l->n_classes || !buf)
                return -EINVAL;
        for (c = class;; c = l->classes[c].parent) {
                need += strlen(l->classes[c].name) + 1; /* name and '/' or NUL */
                if (l->classes[c].root)
                        break;
        }
        if (need > size)
                return -ENOBUFS;
        buf[need - 1] = '\0';
        for (c = class;; c = l->classes[c].parent) {
                size_t n = strlen(l->classes[c].name);
                need -= n + 1;
                memcpy(buf + need, l->classes[c].name, n);
                if (need > 0)
                        buf[need - 1] = '/';
                if (l->classes[c].root)
                        break;
        }
        return 0;
}

/* Digits and at most one trailing decimal multiplier, as I2StrToNum. */
static int parse_scaled(const char *s, size_t n, uint64_t *ret) {
        static const char suffixes[] = "kmgtpez";
        uint64_t v = 0, mult = 1;
        size_t d = 0;

        while (d < n && ow_cfg_isdigit((unsigned char) s[d]))
                d++;
        if (d == 0 || d + 1 < n)
                return -EINVAL;
        if (d + 1 == n) {
                const char *p = memchr(suffixes, ow_cfg_tolower((unsigned char) s[d]), sizeof(suffixes) - 1);
                if (!p)
                        return -EINVAL;
                for (const char *q = suffixes; q <= p; q++) {
                        if (mult > UINT64_MAX / 1000) {
                                mult = 0; /* 'z' (1e21) does not fit 64 bits */
                                break;
                        }
                        mult *= 1000;
                }
        }
        for (size_t i = 0; i < d; i++) {
                unsigned k = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - k) / 10)
                        return -ERANGE;
                v = v * 10 + k;
        }
        if (v == 0) {
                *ret = 0;
                return 0;
        }
        if (mult == 0 || v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}

static bool class_name_valid(const char *s, size_t n) {
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c < 0x20 || c == 0x7f || c == '/')
                        return false;
        }
        return true;
}

typedef struct Parser {
        OwLimits *l;
        OwCfgReader rd;
        size_t len; /* of the logical line, comment stripped */
        OwDiag *diag;
} Parser;

#define P_FAIL(p, off, r, ...) \
        ow_diag_set((p)->diag, (p)->rd.file, ow_cfg_reader_line_at(&(p)->rd, (off)), (r), __VA_ARGS__)

static void trim(const char *t, size_t *s, size_t *e) {
        while (*s < *e && ow_cfg_isspace((unsigned char) t[*s]))
                (*s)++;
        while (*e > *s && ow_cfg_isspace((unsigned char) t[*e - 1]))
                (*e)--;
}

static int parse_limit(Parser *p, size_t pos) {
        const char *t = p->rd.text;
        char q[OW_CFG_QUOTE_MAX];
        size_t ns, nn, ws, wn;
        LimitClass c = { 0 };
        bool has_parent = false;
        int r;

        if (!ow_cfg_next_token(t, p->len, &pos, &ns, &nn))
                return P_FAIL(p, 0, -OW_ERR_SYNTAX, "'limit' needs a class name and 'with'");
        if (nn > OW_LIMITS_MAX_CLASS_NAME)
                return P_FAIL(p, ns, -OW_ERR_TOO_LONG, "class name '%s' is longer than %u bytes",
                              ow_cfg_quote(t + ns, nn, q), OW_LIMITS_MAX_CLASS_NAME);
        if (!class_name_valid(t + ns, nn))
                return P_FAIL(
                        p, ns, -OW_ERR_VALUE,
                        "class name '%s' cannot be a directory name ('/', '.', '..' or control characters)",
                        ow_cfg_quote(t + ns, nn, q));
        r = class_find_n(p->l, t + ns, nn);
        if (r >= 0)
                return P_FAIL(p, ns, -OW_ERR_DUPLICATE, "class '%s' is already defined on line %u",
                              ow_cfg_quote(t + ns, nn, q), p->l->classes[r].line);
        if (p->l->n_classes >= OW_LIMITS_MAX_CLASSES)
                return P_FAIL(p, ns, -OW_ERR_COUNT, "more than %u classes", OW_LIMITS_MAX_CLASSES);
        memcpy(c.name, t + ns, nn);
        c.line = ow_cfg_reader_line_at(&p->rd, ns);

        if (!ow_cfg_next_token(t, p->len, &pos, &ws, &wn) || !ow_cfg_word_eq(t + ws, wn, "with"))
                return P_FAIL(p, ns, -OW_ERR_SYNTAX, "expected 'with' after 'limit %s'", c.name);

        /* KEY=VALUE items, separated by commas; empty items are skipped. */
        while (pos < p->len) {
                size_t s = pos, e, eq, ks, ke, vs, ve;
                int k = -1;

                while (pos < p->len && t[pos] != ',')
                        pos++;
                e = pos;
                if (pos < p->len)
                        pos++; /* the comma */
                trim(t, &s, &e);
                if (s == e)
                        continue;

                for (eq = s; eq < e && t[eq] != '='; eq++)
                        ;
                if (eq == e)
                        return P_FAIL(p, s, -OW_ERR_SYNTAX, "expected KEY=VALUE, got '%s'",
                                      ow_cfg_quote(t + s, e - s, q));
                ks = s, ke = eq, vs = eq + 1, ve = e;
                trim(t, &ks, &ke);
                trim(t, &vs, &ve);

                if (ow_cfg_word_eq(t + ks, ke - ks, "parent"))
                        k = _OW_LIMIT_KEY_MAX;
                for (int i = 0; k < 0 && i < _OW_LIMIT_KEY_MAX; i++)
                        if (ow_cfg_word_eq(t + ks, ke - ks, limit_desc[i].name))
                                k = i;
                if (k < 0)
                        return P_FAIL(
                                p, ks, -OW_ERR_KEYWORD,
                                "unknown limit '%s' (expected parent, bandwidth, disk, delete_on_fetch, "
                                "allow_open_mode, test_sessions or allow_foreign_endpoint)",
                                ow_cfg_quote(t + ks, ke - ks, q));
                if (vs == ve)
                        return P_FAIL(p, eq, -OW_ERR_VALUE, "'%s' needs a value",
                                      k == _OW_LIMIT_KEY_MAX ? "parent" : limit_desc[k].name);
                for (size_t i = vs; i < ve; i++)
                        if (ow_cfg_isspace((unsigned char) t[i]))
                                return P_FAIL(p, i, -OW_ERR_SYNTAX,
                                              "unexpected '%s' after the value of '%s'",
                                              ow_cfg_quote(t + i + 1, ve - i - 1, q),
                                              k == _OW_LIMIT_KEY_MAX ? "parent" : limit_desc[k].name);

                if (k == _OW_LIMIT_KEY_MAX) {
                        if (p->l->n_classes == 0)
                                return P_FAIL(p, ks, -OW_ERR_PARENT,
                                              "the first class ('%s') is the root and cannot have a parent",
                                              c.name);
                        if (has_parent)
                                return P_FAIL(p, ks, -OW_ERR_DUPLICATE, "'parent' given twice");
                        r = class_find_n(p->l, t + vs, ve - vs);
                        if (r < 0)
                                return P_FAIL(p, vs, -OW_ERR_UNKNOWN,
                                              "parent class '%s' is not defined (before this line)",
                                              ow_cfg_quote(t + vs, ve - vs, q));
                        c.parent = (size_t) r;
                        has_parent = true;
                        continue;
                }

                if (c.set & (UINT32_C(1) << k))
                        return P_FAIL(p, ks, -OW_ERR_DUPLICATE, "'%s' given twice", limit_desc[k].name);
                if (limit_desc[k].type == LIMIT_BOOL) {
                        if (ow_cfg_word_eq(t + vs, ve - vs, "on"))
                                c.value[k] = 1;
                        else if (ow_cfg_word_eq(t + vs, ve - vs, "off"))
                                c.value[k] = 0;
                        else
                                return P_FAIL(p, vs, -OW_ERR_VALUE, "'%s' must be 'on' or 'off', got '%s'",
                                              limit_desc[k].name, ow_cfg_quote(t + vs, ve - vs, q));
                } else {
                        r = parse_scaled(t + vs, ve - vs, &c.value[k]);
                        if (r < 0)
                                return P_FAIL(p, vs, -OW_ERR_VALUE,
                                              "'%s' must be a whole number with an optional k/m/g/t/p/e "
                                              "(x1000) suffix that fits 64 bits, got '%s'",
                                              limit_desc[k].name, ow_cfg_quote(t + vs, ve - vs, q));
                }
                c.set |= UINT32_C(1) << k;
        }

        if (p->l->n_classes == 0)
                c.root = true;
        else if (!has_parent)
                return P_FAIL(p, ns, -OW_ERR_PARENT,
                              "class '%s' needs a parent: only the first limit line defines the root",
                              c.name);

        if (ow_cfg_grow((void **) &p->l->classes, &p->l->cap_classes, p->l->n_classes + 1, sizeof(c)) < 0)
                return -ENOMEM;
        p->l->classes[p->l->n_classes++] = c;
        return 0;
}

static int parse_net(const char *s, size_t n, LimitNet *net, size_t *bad_off) {
        char buf[INET6_ADDRSTRLEN + 8];
        const char *slash = memchr(s, '/', n);
        size_t an = slash ? (size_t) (slash - s) : n;
        unsigned bits;

        *bad_off = 0;
        if (an >= INET6_ADDRSTRLEN)
                return -OW_ERR_ADDRESS;
        memcpy(buf, s, an);
        buf[an] = '\0';
        if (inet_pton(AF_INET, buf, net->addr) == 1)
                net->family = AF_INET, bits = 32;
        else if (inet_pton(AF_INET6, buf, net->addr) == 1)
                net->family = AF_INET6, bits = 128;
        else
                return -OW_ERR_ADDRESS;

        net->prefixlen = bits;
        if (slash) {
                size_t pn = n - an - 1;
                uint64_t v;
                *bad_off = an + 1;
                if (pn == 0 || pn >= sizeof(buf))
                        return -OW_ERR_NETMASK;
                memcpy(buf, slash + 1, pn);
                buf[pn] = '\0';
                /* As the reference: 1..32 or 1..128; /0 is refused. */
                if (ow_cfg_parse_uint(buf, bits, &v) < 0 || v == 0)
                        return -OW_ERR_NETMASK;
                net->prefixlen = (unsigned) v;
        }
        /* No address bit may be set beyond the prefix. */
        for (unsigned b = net->prefixlen; b < bits; b++)
                if (net->addr[b / 8] & (0x80 >> (b % 8)))
                        return -OW_ERR_NETMASK;
        return 0;
}

static int parse_assign(Parser *p, size_t pos) {
        const char *t = p->rd.text;
        char q[OW_CFG_QUOTE_MAX];
        size_t tok[4][2], n = 0, xs, xn;
        int type, cls;

        while (n < 4 && ow_cfg_next_token(t, p->len, &pos, &tok[n][0], &tok[n][1]))
                n++;
        if (n == 0)
                return P_FAIL(p, 0, -OW_ERR_SYNTAX, "'assign' needs a type (default, net or user)");
        if (ow_cfg_word_eq(t + tok[0][0], tok[0][1], "default"))
                type = 0;
        else if (ow_cfg_word_eq(t + tok[0][0], tok[0][1], "net"))
                type = 1;
        else if (ow_cfg_word_eq(t + tok[0][0], tok[0][1], "user"))
                type = 2;
        else
                return P_FAIL(p, tok[0][0], -OW_ERR_KEYWORD,
                              "unknown assign type '%s' (expected default, net or user)",
                              ow_cfg_quote(t + tok[0][0], tok[0][1], q));

        size_t want = type == 0 ? 2 : 3;
        if (n < want)
                return P_FAIL(p, tok[n - 1][0], -OW_ERR_SYNTAX, "%s",
                              type == 0   ? "'assign default' needs a class name"
                              : type == 1 ? "'assign net' needs ADDRESS[/PREFIXLEN] and a class name"
                                          : "'assign user' needs an identity and a class name");
        if (n > want || ow_cfg_next_token(t, p->len, &pos, &xs, &xn)) {
                size_t o = n > want ? tok[want][0] : xs, on = n > want ? tok[want][1] : xn;
                return P_FAIL(p, o, -OW_ERR_SYNTAX, "unexpected '%s' after the class name",
                              ow_cfg_quote(t + o, on, q));
        }

        size_t cs = tok[want - 1][0], cn = tok[want - 1][1];
        cls = class_find_n(p->l, t + cs, cn);
        if (cls < 0)
                return P_FAIL(p, cs, -OW_ERR_UNKNOWN, "class '%s' is not defined (before this line)",
                              ow_cfg_quote(t + cs, cn, q));
        unsigned line = ow_cfg_reader_line_at(&p->rd, tok[0][0]);

        if (p->l->n_nets + p->l->n_users >= OW_LIMITS_MAX_ASSIGNS)
                return P_FAIL(p, tok[0][0], -OW_ERR_COUNT, "more than %u assign lines",
                              OW_LIMITS_MAX_ASSIGNS);

        if (type == 0) {
                if (p->l->has_default)
                        return P_FAIL(p, tok[0][0], -OW_ERR_DUPLICATE,
                                      "'assign default' already given on line %u", p->l->default_line);
                p->l->has_default = true;
                p->l->default_class = (size_t) cls;
                p->l->default_line = line;
                return 0;
        }

        if (type == 1) {
                LimitNet net = { .class = (size_t) cls, .line = line };
                size_t bad;
                int r = parse_net(t + tok[1][0], tok[1][1], &net, &bad);
                if (r == -OW_ERR_ADDRESS)
                        return P_FAIL(p, tok[1][0], r, "'%s' is not an IPv4 or IPv6 address",
                                      ow_cfg_quote(t + tok[1][0], tok[1][1], q));
                if (r < 0)
                        return P_FAIL(
                                p, tok[1][0] + bad, r,
                                "invalid network '%s': the prefix length must be 1..32 (IPv4) or 1..128 "
                                "(IPv6) and no address bit may be set beyond it",
                                ow_cfg_quote(t + tok[1][0], tok[1][1], q));
                for (size_t i = 0; i < p->l->n_nets; i++) {
                        LimitNet *o = &p->l->nets[i];
                        if (o->family != net.family || o->prefixlen != net.prefixlen ||
                            memcmp(o->addr, net.addr, sizeof(net.addr)) != 0)
                                continue;
                        if (o->class == net.class)
                                return 0; /* repeated verbatim: harmless */
                        return P_FAIL(p, tok[1][0], -OW_ERR_DUPLICATE,
                                      "network '%s' is already assigned to class '%s' on line %u",
                                      ow_cfg_quote(t + tok[1][0], tok[1][1], q),
                                      p->l->classes[o->class].name, o->line);
                }
                if (ow_cfg_grow((void **) &p->l->nets, &p->l->cap_nets, p->l->n_nets + 1, sizeof(net)) < 0)
                        return -ENOMEM;
                p->l->nets[p->l->n_nets++] = net;
                return 0;
        }

        LimitUser u = { .class = (size_t) cls, .line = line };
        if (tok[1][1] > OW_KEYID_SIZE)
                return P_FAIL(p, tok[1][0], -OW_ERR_KEYID, "identity '%s' is longer than %u bytes",
                              ow_cfg_quote(t + tok[1][0], tok[1][1], q), OW_KEYID_SIZE);
        memcpy(u.id, t + tok[1][0], tok[1][1]);
        for (size_t i = 0; i < p->l->n_users; i++) {
                LimitUser *o = &p->l->users[i];
                if (!streq(o->id, u.id))
                        continue;
                if (o->class == u.class)
                        return 0;
                return P_FAIL(p, tok[1][0], -OW_ERR_DUPLICATE,
                              "identity '%s' is already assigned to class '%s' on line %u",
                              ow_cfg_quote(u.id, strlen(u.id), q), p->l->classes[o->class].name, o->line);
        }
        if (ow_cfg_grow((void **) &p->l->users, &p->l->cap_users, p->l->n_users + 1, sizeof(u)) < 0)
                return -ENOMEM;
        p->l->users[p->l->n_users++] = u;
        return 0;
}

static int parse_lines(Parser *p) {
        char q[OW_CFG_QUOTE_MAX];
        int r;

        while ((r = ow_cfg_reader_next(&p->rd, p->diag)) > 0) {
                size_t pos = 0, s, n;

                p->len = ow_cfg_strip_comment(p->rd.text, p->rd.text_len);
                if (!ow_cfg_next_token(p->rd.text, p->len, &pos, &s, &n))
                        continue;
                if (ow_cfg_word_eq(p->rd.text + s, n, "limit"))
                        r = parse_limit(p, pos);
                else if (ow_cfg_word_eq(p->rd.text + s, n, "assign"))
                        r = parse_assign(p, pos);
                else
                        r = P_FAIL(p, s, -OW_ERR_KEYWORD, "expected 'limit' or 'assign', got '%s'",
                                   ow_cfg_quote(p->rd.text + s, n, q));
                if (r < 0)
                        return r;
        }
        return r;
}

int ow_limits_parse(const void *buf, size_t len, const char *file, OwLimits **ret, OwDiag *diag) {
        _cleanup_(ow_limits_freep) OwLimits *l = NULL;
        Parser p = { .diag = diag };
        int r;

        ow_diag_clear(diag);
        if (!ret || (!buf && len > 0))
                return -EINVAL;
        r = ow_cfg_check_size(len, file, diag);
        if (r < 0)
                return r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        p.l = l;
        ow_cfg_reader_init(&p.rd, buf, len, file);
        r = parse_lines(&p);
        ow_cfg_reader_done(&p.rd);
        if (r < 0)
                return r;

        if (l->n_classes == 0) {
                /* What the reference installs when no class is defined. */
                if (ow_cfg_grow((void **) &l->classes, &l->cap_classes, 1, sizeof(LimitClass)) < 0)
                        return -ENOMEM;
                l->classes[0] = (LimitClass){};
                strcpy(l->classes[0].name, "default");
                l->classes[0].root = true;
                l->n_classes = 1;
        }

        *ret = TAKE_PTR(l);
        return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned bits) {
        unsigned full = bits / 8, rest = bits % 8;

        if (memcmp(a, net, full) != 0)
                return false;
        if (rest == 0)
                return true;
        uint8_t mask = (uint8_t) (0xff << (8 - rest));
        return (a[full] & mask) == (net[full] & mask);
}

int ow_limits_resolve(const OwLimits *l, int family, const void *addr, const char *keyid, size_t *ret) {
        static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        uint8_t a[16] = { 0 };
        const LimitNet *best = NULL;

        if (!l || !addr || !ret)
                return -EINVAL;
        if (family == AF_INET)
                memcpy(a, addr, 4);
        else if (family == AF_INET6) {
                if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
                        family = AF_INET;
                        memcpy(a, (const uint8_t *) addr + 12, 4);
                } else
                        memcpy(a, addr, 16);
        } else
                return -EAFNOSUPPORT;

        if (!isempty(keyid)) {
                for (size_t i = 0; i < l->n_users; i++)
                        if (streq(l->users[i].id, keyid)) {
                                *ret = l->users[i].class;
                                return 0;
                        }
                int c = ow_limits_class_find(l, keyid);
                if (c >= 0) {
                        *ret = (size_t) c;
                        return 0;
                }
        }

        for (size_t i = 0; i < l->n_nets; i++) {
                const LimitNet *n = &l->nets[i];
                if (n->family == family && (!best || n->prefixlen > best->prefixlen) &&
                    prefix_match(a, n->addr, n->prefixlen))
                        best = n;
        }
        if (best)
                *ret = best->class;
        else if (l->has_default)
                *ret = l->default_class;
        else
                *ret = 0; /* the root */
        return 0;
}

int ow_limits_check_users(const OwLimits *l, const OwPfs *pfs, const char *file, OwDiag *diag) {
        char q[OW_CFG_QUOTE_MAX];

        ow_diag_clear(diag);
        if (!l)
                return -EINVAL;
        for (size_t i = 0; i < l->n_users; i++)
                if (!pfs || ow_pfs_lookup(pfs, l->users[i].id, NULL, NULL) < 0)
                        return ow_diag_set(diag, file, l->users[i].line, -OW_ERR_UNKNOWN,
                                           "identity '%s' is not in the pass-phrase file",
                                           ow_cfg_quote(l->users[i].id, strlen(l->users[i].id), q));
        return 0;
}

int ow_limits_class_from_path(const OwLimits *l, const char *path, size_t *ret) {
        size_t cur = 0;
        bool found = false;

        if (!l || !path || !ret || l->n_classes == 0)
                return -EINVAL;
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, "/");
                bool matched = false;
                if (n > 0) {
                        /* The root is class 0; every other class follows its parent. */
                        for (size_t c = found ? cur + 1 : 0; c < l->n_classes; c++) {
                                const LimitClass *k = &l->classes[c];
                                if ((found ? (!k->root && k->parent == cur) : k->root) &&
                                    strlen(k->name) == n && memcmp(k->name, p, n) == 0) {
                                        cur = c;
                                        matched = true;
                                        break;
                                }
                        }
                        if (!matched)
                                break;
                        found = true;
                }
                p += n;
                if (*p == '/')
                        p++;
        }
        if (!found)
                return -ENOENT;
        *ret = cur;
        return 0;
}

void ow_limits_charge(const OwLimits *l, size_t class, uint64_t *used, uint64_t amount) {
        if (!l || !used || class >= l->n_classes)
                return;
        for (;;) {
                used[class] = used[class] > UINT64_MAX - amount ? UINT64_MAX : used[class] + amount;
                if (l->classes[class].root)
                        break;
                class = l->classes[class].parent;
        }
}

int ow_limits_demand(const OwLimits *l, size_t class, OwLimitKey key, const uint64_t *used, uint64_t amount,
                     uint32_t fudge_permille, OwLimitRefusal *ret) {
        if (!l || !used || class >= l->n_classes || key >= _OW_LIMIT_KEY_MAX ||
            limit_desc[key].type != LIMIT_INT || fudge_permille == 0)
                return -EINVAL;
        for (;;) {
                uint64_t limit = ow_limits_get(l, class, key);
                if (limit > 0) {
                        unsigned __int128 hard = (unsigned __int128) limit * fudge_permille / 1000;
                        uint64_t h = hard > UINT64_MAX ? UINT64_MAX : (uint64_t) hard;
                        if (amount > h || used[class] > h - amount) {
                                if (ret)
                                        *ret = (OwLimitRefusal){
                                                .class = class,
                                                .limit = h,
                                                .used = used[class],
                                                .permanent = amount > h,
                                        };
                                return -EDQUOT;
                        }
                }
                if (l->classes[class].root)
                        return 0;
                class = l->classes[class].parent;
        }
}

uint64_t ow_session_packet_size(uint8_t ipvn, OwMode mode, uint32_t padding) {
        uint64_t ip = ipvn == 6 ? OW_IPV6_HEADER_SIZE : OW_IPV4_HEADER_SIZE;
        uint64_t payload = mode == OW_MODE_OPEN ? OW_TESTPKT_OPEN_SIZE : OW_TESTPKT_AUTH_SIZE;
        return ip + OW_UDP_HEADER_SIZE + payload + padding;
}

uint64_t ow_session_bandwidth(const OwSessionRequest *req, OwMode mode) {
        unsigned __int128 gaps = 0;

        if (!req || !req->slots || req->n_slots == 0)
                return UINT64_MAX;
        for (uint32_t i = 0; i < req->n_slots; i++)
                gaps += req->slots[i].param;
        if (gaps == 0)
                return UINT64_MAX;
        /* bits per packet x packets per second: n_slots x 2^32 / gaps (32.32). */
        unsigned __int128 num =
                (unsigned __int128) ow_session_packet_size(req->ipvn, mode, req->padding_length) * 8 *
                req->n_slots;
        if (num > ((unsigned __int128) 1 << 95))
                return UINT64_MAX;
        num <<= 32;
        unsigned __int128 bps = (num + gaps - 1) / gaps;
        return bps > UINT64_MAX ? UINT64_MAX : (uint64_t) bps;
}

uint64_t ow_session_disk(const OwSessionRequest *req) {
        if (!req)
                return 0;
        return ow_owp_header_size(req->n_slots) + (uint64_t) req->n_packets * OW_RECORD_SIZE;
}
