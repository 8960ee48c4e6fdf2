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

#include "owampd.h"
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

int read_file_limited(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        char *buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t len = 0;
        while (len < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + len, (size_t) st.st_size - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        free(buf);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = 0;
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* owampd.<ext> in confdir, or perfSONAR 5.x's owamp-server.<ext>. */
char *policy_config_path(const char *confdir, const char *ext) {
        char *p = NULL;
        if (asprintf(&p, "%s/owampd.%s", confdir, ext) < 0)
                return NULL;
        if (access(p, F_OK) == 0)
                return p;
        free(p);
        if (asprintf(&p, "%s/owamp-server.%s", confdir, ext) < 0)
                return NULL;
        if (access(p, F_OK) == 0)
                return p;
        free(p);
        if (asprintf(&p, "%s/owampd.%s", confdir, ext) < 0)
                return NULL;
        return p;
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
        p->pfs_path = policy_config_path(confdir, "pfs");
        p->limits_path = policy_config_path(confdir, "limits");
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
                 * policy_install() warns). */
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
                buf = mfree(buf);
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

/* Make p the policy for everything from now on; sessions keep theirs. */
void policy_install(Server *s, Policy *p, bool reload) {
        if (s->policy)
                p->generation = s->policy->generation + 1;
        policy_unref(s->policy);
        s->policy = p;
        /* Name a file only as the source of what it held. */
        log_full(LOG_INFO, 0, &(LogFields){ .message_id = reload ? MSGID_CONFIG_RELOADED : NULL },
                 "%s policy: %zu key%s %s %s%s, %zu class%s %s %s%s", reload ? "Reloaded" : "Loaded",
                 ow_pfs_count(p->pfs), ow_pfs_count(p->pfs) == 1 ? "" : "s",
                 p->pfs_missing ? "(there is no" : "from", p->pfs_path, p->pfs_missing ? ")" : "",
                 ow_limits_n_classes(p->limits), ow_limits_n_classes(p->limits) == 1 ? "" : "es",
                 p->limits_missing ? "(the default, open to all: there is no" : "from", p->limits_path,
                 p->limits_missing ? ")" : "");
        /* The pass-phrases are the keys of modes A and E. */
        if (!p->pfs_missing && (p->pfs_mode & (S_IROTH | S_IWOTH)))
                log_warning("%s is %s by others (mode %04o): anyone on this host can %s the pass-phrases "
                            "(allowinsecurepfs is set); make it root:owamp and mode 0640 (chmod 0640)",
                            p->pfs_path, p->pfs_mode & S_IWOTH ? "writable" : "readable",
                            (unsigned) (p->pfs_mode & 07777), p->pfs_mode & S_IWOTH ? "change" : "read");
}

uint32_t policy_modes_for_peer(Server *s, const SockAddr *peer) {
        uint32_t modes = s->modes;
        size_t cls;

        if (!s->policy)
                return modes;
        const void *addr = peer->sa.sa_family == AF_INET6 ? (const void *) &peer->in6.sin6_addr
                                                          : (const void *) &peer->in.sin_addr;
        if (ow_limits_resolve(s->policy->limits, peer->sa.sa_family, addr, NULL, &cls) >= 0 &&
            !ow_limits_get(s->policy->limits, cls, OW_LIMIT_ALLOW_OPEN_MODE))
                modes &= ~(uint32_t) OW_MODE_OPEN;
        return modes;
}

int policy_lookup_key(Server *s, const char *keyid, uint8_t **ret_secret, size_t *ret_len) {
        const uint8_t *secret;
        size_t len;

        if (!s->policy || !keyid)
                return -ENOENT;
        int r = ow_pfs_lookup(s->policy->pfs, keyid, &secret, &len);
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

const char *policy_class_for(Server *s, const SockAddr *peer, const char *keyid) {
        size_t cls;
        if (!s->policy)
                return NULL;
        const void *addr = peer->sa.sa_family == AF_INET6 ? (const void *) &peer->in6.sin6_addr
                                                          : (const void *) &peer->in.sin_addr;
        if (ow_limits_resolve(s->policy->limits, peer->sa.sa_family, addr, keyid, &cls) < 0)
                return NULL;
        return ow_limits_class_name(s->policy->limits, cls);
}

/* --- Enforcement ------------------------------------------------------ */

static int resolve_peer(const OwLimits *l, const SockAddr *peer, const char *keyid, size_t *ret) {
        const void *addr = peer->sa.sa_family == AF_INET6 ? (const void *) &peer->in6.sin6_addr
                                                          : (const void *) &peer->in.sin_addr;
        return ow_limits_resolve(l, peer->sa.sa_family, addr, keyid, ret);
}

/* Usage per class of l, from what every running session and every stored
 * file holds, by the class path it was charged to (so a reload that
 * reshapes the classes still counts everything somewhere sensible). */
static uint64_t *usage_new(Server *s, const OwLimits *l, OwLimitKey key) {
        size_t n = ow_limits_n_classes(l), c;
        uint64_t *used = calloc(MAX(n, (size_t) 1), sizeof(uint64_t));

        if (!used)
                return NULL;
        if (key == OW_LIMIT_BANDWIDTH) {
                TestSession *t;
                LIST_FOREACH(all, t, s->all_sessions)
                if (t->class_path && t->bandwidth_bps > 0 &&
                    ow_limits_class_from_path(l, t->class_path, &c) >= 0)
                        ow_limits_charge(l, c, used, t->bandwidth_bps);
        } else if (key == OW_LIMIT_DISK) {
                for (size_t i = 0; i < s->n_files; i++)
                        if (ow_limits_class_from_path(l, s->files[i].class_path, &c) >= 0)
                                ow_limits_charge(l, c, used, s->files[i].size);
        }
        return used;
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

static void log_refusal(Conn *c, TestSession *t, const OwLimits *l, size_t cls, OwLimitKey key,
                        const OwLimitRefusal *why, uint64_t amount, const char *extra_text) {
        const char *name = ow_limits_class_name(l, cls), *lname = ow_limits_class_name(l, why->class);
        char f_class[128], f_limit[64], f_lclass[128], f_value[64], f_used[64], f_req[64];
        const char *extra[] = { f_class, f_limit, f_lclass, f_value, f_used, f_req, NULL };

        snprintf(f_class, sizeof(f_class), "OWAMP_CLASS=%s", name);
        snprintf(f_limit, sizeof(f_limit), "OWAMP_LIMIT=%s", ow_limit_key_to_string(key));
        snprintf(f_lclass, sizeof(f_lclass), "OWAMP_LIMIT_CLASS=%s", lname);
        snprintf(f_value, sizeof(f_value), "OWAMP_LIMIT_VALUE=%" PRIu64, why->limit);
        snprintf(f_used, sizeof(f_used), "OWAMP_LIMIT_USED=%" PRIu64, why->used);
        snprintf(f_req, sizeof(f_req), "OWAMP_LIMIT_REQUESTED=%" PRIu64, amount);
        LogFields f = {
                .message_id = MSGID_SESSION_REFUSED,
                .sid = t->sid_hex[0] ? t->sid_hex : NULL,
                .peer = c->peer_addr_str,
                .mode = c->mode ? ow_mode_to_string(c->mode) : NULL,
                .keyid = c->keyid[0] ? c->keyid : NULL,
                .extra = extra,
        };
        log_full(LOG_NOTICE, 0, &f,
                 "Refusing session %s from %s (class %s): %s limit of class %s is %" PRIu64 " %s, %" PRIu64
                 " in use, %" PRIu64 " requested%s",
                 t->sid_hex, c->peer_str, name, ow_limit_key_to_string(key), lname, why->limit,
                 limit_unit(key), why->used, amount, extra_text ? extra_text : "");
}

/* The far endpoint of a session (the client's Sender or Receiver address
 * in Request-Session) must be the host that asked, in every mode: else an
 * authenticated client could aim our test packets at a third party, or
 * have us take packets from one. allow_foreign_endpoint lets a class ask
 * for another host (third-party tests), except for packets we send in open
 * mode (PROTOCOL.md 5.1). RFC 4656 leaves this to policy; the refusal is
 * Accept 1 (failure), as for any policy refusal. */
OwAccept policy_check_endpoint(Server *s, Conn *c, TestSession *t) {
        SockAddr far = t->peer, near = c->peer;
        char peer[SOCKADDR_STR_MAX];
        const char *role = t->we_send ? "receiver" : "sender";
        size_t cls;

        sockaddr_unmap_v4(&far);
        sockaddr_unmap_v4(&near);
        if (sockaddr_equal_addr(&far, &near))
                return OW_ACCEPT_OK;
        sockaddr_str(&t->peer, peer, sizeof(peer));

        LogFields f = {
                .message_id = MSGID_SESSION_REFUSED,
                .sid = t->sid_hex[0] ? t->sid_hex : NULL,
                .peer = c->peer_addr_str,
                .mode = c->mode ? ow_mode_to_string(c->mode) : NULL,
                .keyid = c->keyid[0] ? c->keyid : NULL,
        };
        if (t->we_send && c->mode == OW_MODE_OPEN) {
                log_full(LOG_NOTICE, 0, &f,
                         "Refusing session %s from %s: open mode, and the receiver %s is not the requesting host",
                         t->sid_hex, c->peer_str, peer);
                return OW_ACCEPT_FAILURE;
        }
        if (!s->policy)
                return OW_ACCEPT_INTERNAL;
        const OwLimits *l = s->policy->limits;
        if (resolve_peer(l, &c->peer, c->keyid[0] ? c->keyid : NULL, &cls) < 0)
                return OW_ACCEPT_INTERNAL;
        if (ow_limits_get(l, cls, OW_LIMIT_ALLOW_FOREIGN_ENDPOINT))
                return OW_ACCEPT_OK;
        char f_class[128];
        const char *extra[] = { f_class, "OWAMP_LIMIT=allow_foreign_endpoint", NULL };
        snprintf(f_class, sizeof(f_class), "OWAMP_CLASS=%s", ow_limits_class_name(l, cls));
        f.extra = extra;
        log_full(LOG_NOTICE, 0, &f,
                 "Refusing session %s from %s (class %s): the %s %s is not the requesting host "
                 "(allow_foreign_endpoint is off)",
                 t->sid_hex, c->peer_str, ow_limits_class_name(l, cls), role, peer);
        return OW_ACCEPT_FAILURE;
}

/* Before a disk limit says no, the data directory is counted again; at
 * most once a second, so refused requests cannot keep owampd scanning. */
#define RESCAN_INTERVAL_USEC (1000 * UINT64_C(1000))
static bool rescan_allowed(Server *s) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        return now - s->files_scanned_usec >= RESCAN_INTERVAL_USEC;
}

OwAccept policy_admit_session(Server *s, Conn *c, TestSession *t) {
        const OwLimits *l;
        OwLimitRefusal why;
        size_t cls;
        char path[4096];
        int r;

        if (!s->policy)
                return OW_ACCEPT_INTERNAL;
        l = s->policy->limits;

        /* The class under the policy in force now: a reload applies to the
         * next request on a connection that is already open, too. */
        r = resolve_peer(l, &c->peer, c->keyid[0] ? c->keyid : NULL, &cls);
        if (r < 0 || ow_limits_class_path(l, cls, path, sizeof(path)) < 0) {
                conn_log(c, LOG_ERR, MSGID_SESSION_REFUSED, "Refusing session from %s: no policy class: %s",
                         c->peer_str, strerror(r < 0 ? -r : ENAMETOOLONG));
                return OW_ACCEPT_INTERNAL;
        }
        const char *name = ow_limits_class_name(l, cls);
        if (!c->class_name || !streq(c->class_name, name)) {
                free(c->class_name);
                c->class_name = strdup(name);
        }

        /* test_sessions: sessions accepted on this connection, checked at
         * the class and every ancestor as the reference does; they are not
         * given back when a session ends. */
        _cleanup_free_ uint64_t *count = calloc(ow_limits_n_classes(l), sizeof(uint64_t));
        if (!count)
                return OW_ACCEPT_TEMP_RESOURCE;
        ow_limits_charge(l, cls, count, c->n_accepted);
        if (ow_limits_demand(l, cls, OW_LIMIT_TEST_SESSIONS, count, 1, 1000, &why) == -EDQUOT) {
                log_refusal(c, t, l, cls, OW_LIMIT_TEST_SESSIONS, &why, 1, " on this connection");
                return OW_ACCEPT_PERM_RESOURCE;
        }

        /* bandwidth: this session's packets on the wire, plus every
         * running session charged to the class and its descendants. */
        uint64_t bps = ow_session_bandwidth(&t->req, c->mode);
        _cleanup_free_ uint64_t *bw = usage_new(s, l, OW_LIMIT_BANDWIDTH);
        if (!bw)
                return OW_ACCEPT_TEMP_RESOURCE;
        if (ow_limits_demand(l, cls, OW_LIMIT_BANDWIDTH, bw, bps, 1000, &why) == -EDQUOT) {
                log_refusal(c, t, l, cls, OW_LIMIT_BANDWIDTH, &why, bps, NULL);
                return why.permanent ? OW_ACCEPT_PERM_RESOURCE : OW_ACCEPT_TEMP_RESOURCE;
        }

        /* disk, when we receive: the file's estimate against the soft
         * limit, plus everything stored for the class. Files may have gone
         * behind our back (tmpfiles.d, an operator): look again before
         * saying no. */
        uint64_t disk = 0;
        if (!t->we_send) {
                disk = ow_session_disk(&t->req);
                for (int pass = 0;; pass++) {
                        _cleanup_free_ uint64_t *used = usage_new(s, l, OW_LIMIT_DISK);
                        if (!used)
                                return OW_ACCEPT_TEMP_RESOURCE;
                        r = ow_limits_demand(l, cls, OW_LIMIT_DISK, used, disk, 1000, &why);
                        if (r != -EDQUOT)
                                break;
                        if (pass > 0 || why.permanent || !rescan_allowed(s) || datastore_scan(s) < 0) {
                                log_refusal(c, t, l, cls, OW_LIMIT_DISK, &why, disk, NULL);
                                return why.permanent ? OW_ACCEPT_PERM_RESOURCE : OW_ACCEPT_TEMP_RESOURCE;
                        }
                }
        }

        t->class_path = strdup(path);
        if (!t->class_path)
                return OW_ACCEPT_TEMP_RESOURCE;
        t->policy = policy_ref(s->policy);
        t->class = cls;
        t->bandwidth_bps = bps;
        t->disk_reserved = disk;
        log_full(LOG_DEBUG, 0, &(LogFields){ .peer = c->peer_addr_str },
                 "Admitting session from %s in class %s: %" PRIu64 " bit/s, %" PRIu64 " octets of disk",
                 c->peer_str, name, bps, disk);
        return OW_ACCEPT_OK;
}

void policy_release_session(Server *s, TestSession *t) {
        (void) s;
        t->policy = policy_unref(t->policy);
        t->class_path = mfree(t->class_path);
        t->bandwidth_bps = 0;
        t->disk_reserved = 0;
}

int policy_settle_disk(Server *s, TestSession *t, uint64_t size) {
        OwLimitRefusal why;

        if (!t->policy || size <= t->disk_reserved)
                return 0;
        /* Grown past its estimate (duplicates, skip ranges): the extra must
         * fit the hard limit, disk x diskfudge, of the policy the session
         * was admitted under. The file's own reservation is in the usage. */
        const OwLimits *l = t->policy->limits;
        _cleanup_free_ uint64_t *used = usage_new(s, l, OW_LIMIT_DISK);
        if (!used)
                return 0;
        uint64_t extra = size - t->disk_reserved;
        if (ow_limits_demand(l, t->class, OW_LIMIT_DISK, used, extra, s->diskfudge_permille, &why) !=
            -EDQUOT)
                return 0;

        const char *name = ow_limits_class_name(l, t->class), *lname = ow_limits_class_name(l, why.class);
        char f_class[128], f_limit[64] = "OWAMP_LIMIT=disk", f_lclass[128];
        const char *extra_f[] = { f_class, f_limit, f_lclass, NULL };
        snprintf(f_class, sizeof(f_class), "OWAMP_CLASS=%s", name);
        snprintf(f_lclass, sizeof(f_lclass), "OWAMP_LIMIT_CLASS=%s", lname);
        log_full(LOG_WARNING, 0,
                 &(LogFields){ .message_id = MSGID_DATA_DELETED, .sid = t->sid_hex, .extra = extra_f },
                 "Deleting the data of session %s (class %s): %" PRIu64 " octets, %" PRIu64
                 " more than estimated, exceed the disk hard limit of class %s (%" PRIu64
                 " octets = disk x diskfudge, %" PRIu64 " in use)",
                 t->sid_hex, name, size, extra, lname, why.limit, why.used);
        return -EDQUOT;
}

bool policy_delete_on_fetch(Server *s, const StoredFile *f) {
        size_t c;
        if (!s->policy || ow_limits_class_from_path(s->policy->limits, f->class_path, &c) < 0)
                return false;
        return ow_limits_get(s->policy->limits, c, OW_LIMIT_DELETE_ON_FETCH) != 0;
}
