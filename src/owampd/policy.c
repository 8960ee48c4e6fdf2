/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Policy: who may connect in which mode, whose pass-phrase is what, and
 * which test sessions are allowed (owampd.limits, owampd.pfs).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "owampd.h"
#include "ow-error.h"
#include "ow-limits.h"
#include "ow-pfs.h"
#include "policy.h"

Policy *policy_free(Policy *p) {
        if (!p)
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

int policy_load(Server *s, bool reload) {
        _cleanup_(policy_freep) Policy *p = NULL;
        OwDiag diag = {};
        char where[512];
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->pfs_path = policy_config_path(s->confdir, "pfs");
        p->limits_path = policy_config_path(s->confdir, "limits");
        if (!p->pfs_path || !p->limits_path)
                return -ENOMEM;

        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        r = read_file_limited(p->pfs_path, 16u << 20, &buf, &len);
        if (r == -ENOENT)
                r = ow_pfs_new(&p->pfs);
        else if (r >= 0)
                r = ow_pfs_parse(buf, len, p->pfs_path, &p->pfs, &diag);
        else
                ow_diag_set(&diag, p->pfs_path, 0, r, "cannot read: %s", strerror(-r));
        if (buf) {
                ow_wipe(buf, len);
                buf = mfree(buf);
        }
        if (r < 0)
                goto fail;

        r = read_file_limited(p->limits_path, 16u << 20, &buf, &len);
        if (r == -ENOENT)
                r = ow_limits_parse("", 0, p->limits_path, &p->limits, &diag);
        else if (r >= 0)
                r = ow_limits_parse(buf, len, p->limits_path, &p->limits, &diag);
        else
                ow_diag_set(&diag, p->limits_path, 0, r, "cannot read: %s", strerror(-r));
        if (r < 0)
                goto fail;
        r = ow_limits_check_users(p->limits, p->pfs, p->limits_path, &diag);
        if (r < 0)
                goto fail;

        if (s->policy) {
                p->generation = s->policy->generation + 1;
                /* Running sessions keep the usage they were admitted with. */
                p->usage = s->policy->usage;
                s->policy->usage = NULL;
        }
        policy_free(s->policy);
        s->policy = TAKE_PTR(p);
        log_full(LOG_INFO, 0, &(LogFields) { .message_id = reload ? MSGID_CONFIG_RELOADED : NULL },
                 "%s policy: %zu key%s from %s, %zu class%s from %s", reload ? "Reloaded" : "Loaded",
                 ow_pfs_count(s->policy->pfs), ow_pfs_count(s->policy->pfs) == 1 ? "" : "s",
                 s->policy->pfs_path, ow_limits_n_classes(s->policy->limits),
                 ow_limits_n_classes(s->policy->limits) == 1 ? "" : "es", s->policy->limits_path);
        return 0;

fail:
        log_full(LOG_ERR, r, &(LogFields) { .message_id = MSGID_CONFIG_ERROR }, "%s%s",
                 ow_diag_format(&diag, where, sizeof(where)),
                 reload ? " (keeping the previous policy)" : "");
        return r;
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

OwAccept policy_admit_session(Server *s, Conn *c, TestSession *t, char *reason, size_t reason_size) {
        (void) s;
        (void) c;
        (void) t;
        (void) reason;
        (void) reason_size;
        return OW_ACCEPT_OK;
}

void policy_release_session(Server *s, TestSession *t) {
        (void) s;
        (void) t;
}
