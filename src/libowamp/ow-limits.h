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

typedef struct OwPfs OwPfs;

typedef enum OwLimitKey {
        OW_LIMIT_BANDWIDTH,       /* bit/s for all one-way tests of the class; 0 = no limit */
        OW_LIMIT_DISK,            /* bytes of session data kept; 0 = no limit */
        OW_LIMIT_DELETE_ON_FETCH, /* 0/1: delete a session file once it was fetched; default 0 */
        OW_LIMIT_ALLOW_OPEN_MODE, /* 0/1: open (unauthenticated) mode allowed; default 1 */
        OW_LIMIT_TEST_SESSIONS,   /* test sessions per control connection; 0 = no limit */
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
