/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * --prometheus-dir: the stream's figures as a node_exporter textfile
 * collector file, DIR/powstream-NAME.prom, rewritten (temporary name, then
 * rename()) after every completed (sub-)session and every failed session.
 * The text is the core's (ow-prom.h); this file only keeps the totals and
 * writes.
 */

#include <stdbool.h>
#include <stdint.h>

#include "ow-prom.h"

struct PowResult;

typedef struct PowProm {
        const char *dir; /* NULL: no file */
        OwPromStream s;
        bool warned; /* a write failed and was logged; logged again once it works */
} PowProm;

/* dir NULL: nothing is ever written. The strings must outlive p. Writes
 * the first file (counters at 0) at once: -errno if it cannot, logged. */
int pow_prom_init(PowProm *p, const char *dir, const char *stream, const char *peer, const char *direction);

/* Account for res and rewrite the file: 0 or -errno (logged here, once
 * until a write succeeds again). */
int pow_prom_publish(PowProm *p, const struct PowResult *res);

/* A failed session: failed is the stream's count of them; the file is
 * rewritten. */
int pow_prom_failed(PowProm *p, uint64_t failed);

/* The file's name for a stream: "powstream-" NAME ".prom", every byte of
 * NAME outside [A-Za-z0-9._-] as '_' (node_exporter reads *.prom). */
int pow_prom_file_name(const char *stream, char **ret);
