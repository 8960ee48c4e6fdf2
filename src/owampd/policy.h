/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Policy: owampd.limits and owampd.pfs, and the decisions made from them.
 *
 * Pure admission: every decision takes the Policy it is made under and what
 * the caller says is in use (a PolicyUsageFn), and returns a PolicyVerdict:
 * an Accept code and, for a refusal, its reason as text and as fields. The
 * policy never logs, never sees the server, a connection or the store; the
 * caller logs the verdict and applies it.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "macro.h"
#include "net.h"
#include "ow-limits.h"
#include "ow-pfs.h"
#include "ow-types.h"

/* owampd.limits and owampd.pfs as loaded together. Reference-counted: the
 * server holds the current one, every test session the one it was
 * admitted under, so a reload never changes the rules of a running
 * session. */
typedef struct Policy {
        unsigned n_ref;
        OwLimits *limits;
        OwPfs *pfs;
        char *limits_path;
        char *pfs_path;
        bool limits_missing, pfs_missing; /* the file did not exist: empty */
        mode_t pfs_mode;                  /* as stat() saw it, when present */
        uint64_t generation;
} Policy;

/* On error, err gets "file:line: reason". allow_insecure_pfs (owampd.conf
 * allowinsecurepfs): load an owampd.pfs that others may read or write
 * instead of refusing it (the caller warns, policy_pfs_insecure()). */
int policy_load(const char *confdir, bool allow_insecure_pfs, Policy **ret, char *err, size_t err_size);
Policy *policy_ref(Policy *p);
Policy *policy_unref(Policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_unref);

/* owampd.pfs is readable or writable by others (loaded with allowinsecurepfs). */
bool policy_pfs_insecure(const Policy *p);

/* The modes of `modes` that peer's class allows (no open mode without
 * allow_open_mode). p may be NULL: all of them. */
uint32_t policy_modes_for_peer(const Policy *p, uint32_t modes, const SockAddr *peer);
/* A copy of keyid's secret, for the caller to wipe and free. */
int policy_lookup_key(const Policy *p, const char *keyid, uint8_t **ret_secret, size_t *ret_len);
/* The class of peer (and keyid, NULL for none), or NULL; points into p. */
const char *policy_class_for(const Policy *p, const SockAddr *peer, const char *keyid);
/* delete_on_fetch of the class a stored file was written for. */
bool policy_delete_on_fetch(const Policy *p, const char *class_path);

/* What is in use, by the class path it is charged to: the caller's
 * PolicyUsageFn calls policy_tally_add() for each running session
 * (OW_LIMIT_BANDWIDTH, its bit/s) or stored file (OW_LIMIT_DISK, its
 * octets). */
typedef struct PolicyTally PolicyTally;
void policy_tally_add(PolicyTally *t, const char *class_path, uint64_t amount);
typedef void (*PolicyUsageFn)(void *userdata, OwLimitKey key, PolicyTally *tally);

typedef struct PolicyVerdict {
        OwAccept accept;
        /* A refusal that has something to say (else the text is empty). */
        char text[256];
        const char *class_name;  /* the requester's class (points into the Policy), or NULL */
        bool no_class;           /* no class resolves for the requester */
        bool has_limit;          /* refused by a limit: the fields below */
        OwLimitKey key;
        const char *limit_name;  /* OWAMP_LIMIT= of the refusal, or NULL */
        const char *limit_class; /* the class whose limit refused */
        uint64_t limit, used, requested;
        bool may_recount; /* disk: a fresh count of the data directory could change the answer */
        /* Admitted (accept OK, by policy_admit_session()): what it holds. */
        size_t cls;
        char class_path[4096];
        uint64_t bandwidth_bps;
        uint64_t disk;
} PolicyVerdict;

/* A Request-Session as the policy sees it. */
typedef struct PolicyRequest {
        const SockAddr *peer;  /* the control connection's peer (unmapped) */
        const char *keyid;     /* NULL in open mode */
        OwMode mode;
        const OwSessionRequest *req;
        bool we_send;
        const SockAddr *far;   /* the session's far endpoint */
        unsigned n_accepted;   /* sessions accepted on the connection so far */
        PolicyUsageFn usage;
        void *userdata;
} PolicyRequest;

/* The session's far endpoint is the control connection's peer, or the
 * class may name another host (allow_foreign_endpoint). */
void policy_check_endpoint(const Policy *p, const PolicyRequest *r, PolicyVerdict *ret);
/* test_sessions, bandwidth and, when we receive, disk. */
void policy_admit_session(const Policy *p, const PolicyRequest *r, PolicyVerdict *ret);
/* A session's file ended up size octets, reserved of them at admission:
 * OK if the extra fits its class's hard disk limit (disk x diskfudge,
 * fudge_permille), else a refusal (Accept 1) saying so. */
void policy_settle_disk(const Policy *p, size_t cls, uint64_t reserved, uint64_t size, uint32_t fudge_permille,
                        PolicyUsageFn usage, void *userdata, PolicyVerdict *ret);
