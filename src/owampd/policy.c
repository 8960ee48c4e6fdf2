/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Policy: who may connect in which mode, whose pass-phrase is what, and
 * which test sessions are allowed (owampd.limits, owampd.pfs).
 */

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file-util.h"
#include "owampd-config.h"
#include "ow-error.h"
#include "ow-limits.h"
#include "ow-pfs.h"
#include "policy.h"

Policy *policy_ref(Policy *p) {
        if (p)
                p->n_ref++;
        return p;
}

Policy *policy_unref(Policy *p) {
        if (!p || --p->n_ref > 0)
                return NULL;
        ow_limits_free(p->limits);
        ow_pfs_free(p->pfs);
        free(p->limits_path);
        free(p->pfs_path);
        free(p);
        return NULL;
}

/* Both files, all or nothing. A missing file is an empty one: no keys,
 * and the reference's single open class "default". */
int policy_load(const char *confdir, bool allow_insecure_pfs, Policy **ret, char *err, size_t err_size) {
        _cleanup_(policy_unrefp) Policy *p = NULL;
        OwDiag d = {}, *diag = &d;
        int r;

        snprintf(err, err_size, "%s: out of memory", confdir);
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->n_ref = 1;
        p->pfs_path = config_file_path(confdir, "pfs");
        p->limits_path = config_file_path(confdir, "limits");
        if (!p->pfs_path || !p->limits_path)
                return -ENOMEM;

        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        r = read_file_limited(p->pfs_path, 16u << 20, &buf, &len);
        p->pfs_missing = r == -ENOENT;
        struct stat st;
        if (r >= 0 && stat(p->pfs_path, &st) == 0)
                p->pfs_mode = st.st_mode;
        if (r == -ENOENT)
                r = ow_pfs_new(&p->pfs);
        else if (r < 0)
                ow_diag_set(diag, p->pfs_path, 0, r, "cannot read: %s", strerror(-r));
        else if ((p->pfs_mode & (S_IROTH | S_IWOTH)) && !allow_insecure_pfs)
                /* The pass-phrases are the keys of modes A and E: whoever
                 * reads them is any of their users, whoever writes them adds
                 * one. Refused, as sshd refuses a private key others can
                 * read, unless the configuration says otherwise (then
                 * the server warns, policy_pfs_insecure()). */
                r = ow_diag_set(diag, p->pfs_path, 0, -EPERM,
                                "is %s by others (mode %04o): refusing to use its pass-phrases; make it "
                                "private (chown root:owamp; chmod 0640) or set allowinsecurepfs in owampd.conf",
                                p->pfs_mode & S_IWOTH ? (p->pfs_mode & S_IROTH ? "readable and writable" : "writable")
                                                      : "readable",
                                (unsigned) (p->pfs_mode & 07777));
        else
                r = ow_pfs_parse(buf, len, p->pfs_path, &p->pfs, diag);
        if (buf) {
                ow_wipe(buf, len);
                free(buf);
                buf = NULL;
        }
        if (r < 0)
                goto fail;

        r = read_file_limited(p->limits_path, 16u << 20, &buf, &len);
        p->limits_missing = r == -ENOENT;
        if (r == -ENOENT)
                r = ow_limits_parse("", 0, p->limits_path, &p->limits, diag);
        else if (r >= 0)
                r = ow_limits_parse(buf, len, p->limits_path, &p->limits, diag);
        else
                ow_diag_set(diag, p->limits_path, 0, r, "cannot read: %s", strerror(-r));
        if (r < 0)
                goto fail;
        r = ow_limits_check_users(p->limits, p->pfs, p->limits_path, diag);
        if (r < 0)
                goto fail;

        *ret = TAKE_PTR(p);
        return 0;
fail:
        /* Format while the file names in d are still alive. */
        ow_diag_format(diag, err, err_size);
        return r;
}

bool policy_pfs_insecure(const Policy *p) {
        return !p->pfs_missing && (p->pfs_mode & (S_IROTH | S_IWOTH));
}

static int resolve_peer(const OwLimits *l, const SockAddr *peer, const char *keyid, size_t *ret) {
        const void *addr = peer->sa.sa_family == AF_INET6 ? (const void *) &peer->in6.sin6_addr
                                                          : (const void *) &peer->in.sin_addr;
        return ow_limits_resolve(l, peer->sa.sa_family, addr, keyid, ret);
}

uint32_t policy_modes_for_peer(const Policy *p, uint32_t modes, const SockAddr *peer) {
        size_t cls;

        if (!p)
                return modes;
        if (resolve_peer(p->limits, peer, NULL, &cls) >= 0 &&
            !ow_limits_get(p->limits, cls, OW_LIMIT_ALLOW_OPEN_MODE))
                modes &= ~(uint32_t) OW_MODE_OPEN;
        return modes;
}

int policy_lookup_key(const Policy *p, const char *keyid, uint8_t **ret_secret, size_t *ret_len) {
        const uint8_t *secret;
        size_t len;

        if (!p || !keyid)
                return -ENOENT;
        int r = ow_pfs_lookup(p->pfs, keyid, &secret, &len);
        if (r < 0)
                return r;
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, secret, len);
        *ret_secret = copy;
        *ret_len = len;
        return 0;
}

const char *policy_class_for(const Policy *p, const SockAddr *peer, const char *keyid) {
        size_t cls;

        if (!p || resolve_peer(p->limits, peer, keyid, &cls) < 0)
                return NULL;
        return ow_limits_class_name(p->limits, cls);
}

bool policy_delete_on_fetch(const Policy *p, const char *class_path) {
        size_t c;

        if (!p || !class_path || ow_limits_class_from_path(p->limits, class_path, &c) < 0)
                return false;
        return ow_limits_get(p->limits, c, OW_LIMIT_DELETE_ON_FETCH) != 0;
}

/* --- Usage -------------------------------------------------------------- */

struct PolicyTally {
        const OwLimits *limits;
        uint64_t *used;
};

void policy_tally_add(PolicyTally *t, const char *class_path, uint64_t amount) {
        size_t c;

        if (class_path && ow_limits_class_from_path(t->limits, class_path, &c) >= 0)
                ow_limits_charge(t->limits, c, t->used, amount);
}

/* Usage per class of l, from what the caller says every running session
 * and every stored file holds, by the class path it was charged to (so a
 * reload that reshapes the classes still counts everything somewhere
 * sensible). */
static uint64_t *usage_new(const OwLimits *l, OwLimitKey key, PolicyUsageFn usage, void *userdata) {
        size_t n = ow_limits_n_classes(l);
        PolicyTally t = { .limits = l, .used = calloc(MAX(n, (size_t) 1), sizeof(uint64_t)) };

        if (t.used && usage)
                usage(userdata, key, &t);
        return t.used;
}

static const char *limit_unit(OwLimitKey key) {
        switch (key) {
        case OW_LIMIT_BANDWIDTH:
                return "bit/s";
        case OW_LIMIT_DISK:
                return "octets";
        default:
                return "sessions";
        }
}

static void verdict_init(PolicyVerdict *v, OwAccept accept) {
        *v = (PolicyVerdict){ .accept = accept };
}

static void verdict_limit(PolicyVerdict *v, OwAccept accept, const OwLimits *l, size_t cls, OwLimitKey key,
                          const OwLimitRefusal *why, uint64_t amount, const char *extra_text) {
        v->accept = accept;
        v->class_name = ow_limits_class_name(l, cls);
        v->has_limit = true;
        v->key = key;
        v->limit_name = ow_limit_key_to_string(key);
        v->limit_class = ow_limits_class_name(l, why->class);
        v->limit = why->limit;
        v->used = why->used;
        v->requested = amount;
        (void) snprintf(v->text, sizeof(v->text),
                        "%s limit of class %s is %" PRIu64 " %s, %" PRIu64 " in use, %" PRIu64 " requested%s",
                        ow_limit_key_to_string(key), v->limit_class, why->limit, limit_unit(key), why->used,
                        amount, extra_text ? extra_text : "");
}

/* --- Decisions ---------------------------------------------------------- */

/* The far endpoint of a session (the client's Sender or Receiver address
 * in Request-Session) must be the host that asked, in every mode: else an
 * authenticated client could aim our test packets at a third party, or
 * have us take packets from one. allow_foreign_endpoint lets a class ask
 * for another host (third-party tests), except for packets we send in open
 * mode (PROTOCOL.md 5.1). RFC 4656 leaves this to policy; the refusal is
 * Accept 1 (failure), as for any policy refusal. */
void policy_check_endpoint(const Policy *p, const PolicyRequest *r, PolicyVerdict *ret) {
        SockAddr far = *r->far, near = *r->peer;
        char peer[SOCKADDR_STR_MAX];
        size_t cls;

        verdict_init(ret, OW_ACCEPT_OK);
        sockaddr_unmap_v4(&far);
        sockaddr_unmap_v4(&near);
        if (sockaddr_equal_addr(&far, &near))
                return;
        sockaddr_str(r->far, peer, sizeof(peer));
        if (r->we_send && r->mode == OW_MODE_OPEN) {
                ret->accept = OW_ACCEPT_FAILURE;
                (void) snprintf(ret->text, sizeof(ret->text),
                                "open mode, and the receiver %s is not the requesting host", peer);
                return;
        }
        ret->accept = OW_ACCEPT_INTERNAL;
        if (!p || resolve_peer(p->limits, r->peer, r->keyid, &cls) < 0)
                return;
        ret->accept = OW_ACCEPT_OK;
        if (ow_limits_get(p->limits, cls, OW_LIMIT_ALLOW_FOREIGN_ENDPOINT))
                return;
        ret->accept = OW_ACCEPT_FAILURE;
        ret->class_name = ow_limits_class_name(p->limits, cls);
        ret->key = OW_LIMIT_ALLOW_FOREIGN_ENDPOINT;
        ret->limit_name = ow_limit_key_to_string(OW_LIMIT_ALLOW_FOREIGN_ENDPOINT);
        (void) snprintf(ret->text, sizeof(ret->text),
                        "the %s %s is not the requesting host (allow_foreign_endpoint is off)",
                        r->we_send ? "receiver" : "sender", peer);
}

void policy_admit_session(const Policy *p, const PolicyRequest *r, PolicyVerdict *ret) {
        const OwLimits *l;
        OwLimitRefusal why;
        size_t cls;
        int k;

        verdict_init(ret, OW_ACCEPT_INTERNAL);
        if (!p)
                return;
        l = p->limits;

        /* The class under the policy in force now: a reload applies to the
         * next request on a connection that is already open, too. */
        k = resolve_peer(l, r->peer, r->keyid, &cls);
        if (k < 0 || ow_limits_class_path(l, cls, ret->class_path, sizeof(ret->class_path)) < 0) {
                ret->no_class = true;
                (void) snprintf(ret->text, sizeof(ret->text), "no policy class: %s",
                                strerror(k < 0 ? -k : ENAMETOOLONG));
                return;
        }
        ret->class_name = ow_limits_class_name(l, cls);
        ret->cls = cls;

        /* test_sessions: sessions accepted on this connection, checked at
         * the class and every ancestor as the reference does; they are not
         * given back when a session ends. */
        _cleanup_free_ uint64_t *count = calloc(ow_limits_n_classes(l), sizeof(uint64_t));
        if (!count) {
                ret->accept = OW_ACCEPT_TEMP_RESOURCE;
                return;
        }
        ow_limits_charge(l, cls, count, r->n_accepted);
        if (ow_limits_demand(l, cls, OW_LIMIT_TEST_SESSIONS, count, 1, 1000, &why) == -EDQUOT) {
                verdict_limit(ret, OW_ACCEPT_PERM_RESOURCE, l, cls, OW_LIMIT_TEST_SESSIONS, &why, 1,
                              " on this connection");
                return;
        }

        /* bandwidth: this session's packets on the wire, plus every
         * running session charged to the class and its descendants. */
        uint64_t bps = ow_session_bandwidth(r->req, r->mode);
        _cleanup_free_ uint64_t *bw = usage_new(l, OW_LIMIT_BANDWIDTH, r->usage, r->userdata);
        if (!bw) {
                ret->accept = OW_ACCEPT_TEMP_RESOURCE;
                return;
        }
        if (ow_limits_demand(l, cls, OW_LIMIT_BANDWIDTH, bw, bps, 1000, &why) == -EDQUOT) {
                verdict_limit(ret, why.permanent ? OW_ACCEPT_PERM_RESOURCE : OW_ACCEPT_TEMP_RESOURCE, l, cls,
                              OW_LIMIT_BANDWIDTH, &why, bps, NULL);
                return;
        }

        /* disk, when we receive: the file's estimate against the soft
         * limit, plus everything stored for the class. Files may have gone
         * behind the caller's back (tmpfiles.d, an operator): a refusal
         * that is not permanent says a fresh count may help. */
        uint64_t disk = 0;
        if (!r->we_send) {
                disk = ow_session_disk(r->req);
                _cleanup_free_ uint64_t *used = usage_new(l, OW_LIMIT_DISK, r->usage, r->userdata);
                if (!used) {
                        ret->accept = OW_ACCEPT_TEMP_RESOURCE;
                        return;
                }
                if (ow_limits_demand(l, cls, OW_LIMIT_DISK, used, disk, 1000, &why) == -EDQUOT) {
                        verdict_limit(ret, why.permanent ? OW_ACCEPT_PERM_RESOURCE : OW_ACCEPT_TEMP_RESOURCE, l,
                                      cls, OW_LIMIT_DISK, &why, disk, NULL);
                        ret->may_recount = !why.permanent;
                        return;
                }
        }

        ret->accept = OW_ACCEPT_OK;
        ret->bandwidth_bps = bps;
        ret->disk = disk;
}

void policy_settle_disk(const Policy *p, size_t cls, uint64_t reserved, uint64_t size, uint32_t fudge_permille,
                        PolicyUsageFn usage, void *userdata, PolicyVerdict *ret) {
        OwLimitRefusal why;

        verdict_init(ret, OW_ACCEPT_OK);
        if (!p || size <= reserved)
                return;
        /* Grown past its estimate (duplicates, skip ranges): the extra must
         * fit the hard limit, disk x diskfudge, of the policy the session
         * was admitted under. The file's own reservation is in the usage. */
        const OwLimits *l = p->limits;
        _cleanup_free_ uint64_t *used = usage_new(l, OW_LIMIT_DISK, usage, userdata);
        if (!used)
                return;
        uint64_t extra = size - reserved;
        if (ow_limits_demand(l, cls, OW_LIMIT_DISK, used, extra, fudge_permille, &why) != -EDQUOT)
                return;
        ret->accept = OW_ACCEPT_FAILURE;
        ret->class_name = ow_limits_class_name(l, cls);
        ret->has_limit = true;
        ret->key = OW_LIMIT_DISK;
        ret->limit_name = ow_limit_key_to_string(OW_LIMIT_DISK);
        ret->limit_class = ow_limits_class_name(l, why.class);
        ret->limit = why.limit;
        ret->used = why.used;
        ret->requested = extra;
        (void) snprintf(ret->text, sizeof(ret->text),
                        "%" PRIu64 " octets, %" PRIu64 " more than estimated, exceed the disk hard limit of class %s (%" PRIu64
                        " octets = disk x diskfudge, %" PRIu64 " in use)",
                        size, extra, ret->limit_class, why.limit, why.used);
}
