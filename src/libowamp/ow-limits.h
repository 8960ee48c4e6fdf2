/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * owampd.limits: the policy file, in the reference's syntax (perfSONAR
 * owamp 5.x owampd.limits / owamp-server.limits), parsed from memory.
 *
 *   limit NAME with KEY=VALUE[,KEY=VALUE]...
 *   assign default NAME
 *   assign net ADDRESS[/PREFIXLEN] NAME
 *   assign user KEYID NAME
 *
 * Comment and blank lines and backslash-newline continuation as in
 * owampd.conf. Classes form a tree: the first limit line is the root and
 * has no parent; every later one names an already defined parent. A class
 * inherits every limit it does not set from its parent (the reference
 * copies the parent's values when it reads the line); a limit set nowhere
 * on the path has its default. Integer values take a decimal suffix
 * k/m/g/t/p/e (x1000 each, as the reference's I2StrToNum: disk=10G is
 * 10,000,000,000 bytes). docs/notes/reference-config.md has the details and
 * every place where we are stricter than the reference.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ow-diag.h"
#include "ow-types.h"

typedef struct OwPfs OwPfs;

typedef enum OwLimitKey {
        OW_LIMIT_BANDWIDTH,       /* bit/s for all one-way tests of the class; 0 = no limit */
        OW_LIMIT_DISK,            /* bytes of session data kept; 0 = no limit */
        OW_LIMIT_DELETE_ON_FETCH, /* 0/1: delete a session file once it was fetched; default 0 */
        OW_LIMIT_ALLOW_OPEN_MODE, /* 0/1: open (unauthenticated) mode allowed; default 1 */
        OW_LIMIT_TEST_SESSIONS,   /* test sessions per control connection; 0 = no limit */
        /* Not the reference's (issue 11): 0/1, a session's far endpoint
         * (the client's Sender or Receiver address) may be another host
         * than the control connection's peer, in modes A and E (never for
         * packets owampd sends in open mode); default 0. */
        OW_LIMIT_ALLOW_FOREIGN_ENDPOINT,
        _OW_LIMIT_KEY_MAX,
} OwLimitKey;

#define OW_LIMITS_MAX_CLASS_NAME 80 /* the reference's OWPDMAXCLASSLEN */
#define OW_LIMITS_MAX_CLASSES 4096
#define OW_LIMITS_MAX_ASSIGNS 16384

typedef struct OwLimits OwLimits;

/* Parse a whole limits file. An input without any limit line (empty file,
 * or only comments) gives the reference's fallback: one class "default"
 * with default limits. */
int ow_limits_parse(const void *buf, size_t len, const char *file, OwLimits **ret, OwDiag *diag);
OwLimits *ow_limits_free(OwLimits *l);

size_t ow_limits_n_classes(const OwLimits *l);
const char *ow_limits_class_name(const OwLimits *l, size_t class);
/* Index of the class called name (exact, case-sensitive), or -OW_ERR_UNKNOWN. */
int ow_limits_class_find(const OwLimits *l, const char *name);
/* Parent of class; -ENOENT for the root. */
int ow_limits_class_parent(const OwLimits *l, size_t class, size_t *ret);
/* Line of the class's limit line (0 for the implicit "default" class). */
unsigned ow_limits_class_line(const OwLimits *l, size_t class);
/* Whether the class's own limit line sets key (else it is inherited). */
bool ow_limits_class_sets(const OwLimits *l, size_t class, OwLimitKey key);

/* Effective value of a limit for a class: its own, else the nearest
 * ancestor's, else the default. Resource limits are enforced against the
 * class and every ancestor (each with its own effective value). */
uint64_t ow_limits_get(const OwLimits *l, size_t class, OwLimitKey key);

/* "root/regular": the class path from the root, the directory hierarchy
 * under which the reference keeps a class's session files. -ENOBUFS if it
 * does not fit. */
int ow_limits_class_path(const OwLimits *l, size_t class, char *buf, size_t size);

/*
 * The class of a connection. family is AF_INET (addr: 4 octets) or AF_INET6
 * (16; a v4-mapped address is matched as IPv4). keyid is the authenticated
 * identity (A or E mode), NULL in open mode. Precedence:
 *   1. "assign user KEYID" (exact match),
 *   2. a class named exactly like the KEYID (the reference does this too),
 *   3. the longest matching "assign net" prefix,
 *   4. "assign default",
 *   5. the root class.
 * Returns 0 and *ret, or -EAFNOSUPPORT.
 */
int ow_limits_resolve(const OwLimits *l, int family, const void *addr, const char *keyid, size_t *ret);

/* The reference refuses "assign user" for an identity missing from the
 * pass-phrase file; this is that check, once both files are loaded.
 * -OW_ERR_UNKNOWN with diag pointing at the assign line. */
int ow_limits_check_users(const OwLimits *l, const OwPfs *pfs, const char *file, OwDiag *diag);

const char *ow_limit_key_to_string(OwLimitKey key);

/*
 * Enforcement. owampd keeps the usage itself (running sessions, stored
 * files); these decide from it, the same way for every resource limit:
 * a request of `amount` is allowed when, at the class and at every
 * ancestor whose effective limit L is not 0, used + amount <= L x fudge.
 * used[c] is what class c and all its descendants hold now; the fudge is
 * 1000 permille except for the disk hard limit (diskfudge, the
 * reference's soft/hard disk limits).
 */

/* The class whose path (ow_limits_class_path) is the longest prefix of
 * path by whole components: the class a stored file in
 * <datadir>/hierarchy/<path>/ is charged to, even after a reload removed or
 * renamed the class it was written for (then its nearest remaining
 * ancestor pays). -ENOENT if not even the root's name matches. */
int ow_limits_class_from_path(const OwLimits *l, const char *path, size_t *ret);

/* Add amount to used[] of class and of each of its ancestors. */
void ow_limits_charge(const OwLimits *l, size_t class, uint64_t *used, uint64_t amount);

typedef struct OwLimitRefusal {
        size_t class;   /* whose limit refused: the class itself or an ancestor */
        uint64_t limit; /* that class's effective limit, fudge applied */
        uint64_t used;  /* what that class held before the request */
        bool permanent; /* the amount alone exceeds the limit: waiting cannot help */
} OwLimitRefusal;

/* 0 if the request fits everywhere, -EDQUOT (and *ret for the nearest class
 * that refuses) if not, -EINVAL for bad arguments. */
int ow_limits_demand(const OwLimits *l, size_t class, OwLimitKey key, const uint64_t *used, uint64_t amount,
                     uint32_t fudge_permille, OwLimitRefusal *ret);

/*
 * What one test session costs.
 *
 * Bandwidth, in bit/s, rounded up: the size of one test packet on the wire
 * (IPv4 20 or IPv6 40 octets of header without options, as the session's
 * IPVN says, UDP 8, the OWAMP-Test payload of the mode - 14 open, 48
 * authenticated or encrypted - and the padding; no link-layer framing)
 * times the mean rate of the schedule (number of slots over the sum of
 * their parameters, as the reference computes it). A schedule whose gaps
 * sum to zero has no finite rate: UINT64_MAX, so any bandwidth limit
 * refuses it (the reference computed 0 and let it through).
 */
#define OW_IPV4_HEADER_SIZE 20 /* RFC 791, no options */
#define OW_IPV6_HEADER_SIZE 40 /* RFC 8200, no extension headers */
#define OW_UDP_HEADER_SIZE 8   /* RFC 768 */
uint64_t ow_session_packet_size(uint8_t ipvn, OwMode mode, uint32_t padding);
uint64_t ow_session_bandwidth(const OwSessionRequest *req, OwMode mode);

/* Disk: the size of the receiver's .owp file when every packet arrives
 * once: the header with its slots and one 25-octet record per packet.
 * Duplicates and skip ranges can add to it; the hard limit (x diskfudge)
 * is there for that. */
uint64_t ow_session_disk(const OwSessionRequest *req);
