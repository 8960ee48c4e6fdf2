/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Send one structured entry to systemd-journald over its native protocol
 * (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/): a datagram of fields on
 * /run/systemd/journal/socket. What sd_journal_sendv() does for entries of
 * the size we log, without linking libsystemd: the session worker links
 * nothing but libc and nettle, which keeps each of the thousand workers of
 * a busy server small (see bench/README.md).
 *
 * Each iov entry is one "FIELD=value"; values may hold any octets,
 * newlines included. Returns 0 or -errno; -EMSGSIZE for an entry larger
 * than a datagram (never the case for log lines, which are bounded).
 */

#include <stddef.h>
#include <sys/uio.h>

int journal_sendv(const struct iovec *iov, size_t n);

/* The same to another socket (tests). */
int journal_sendv_to(const char *path, const struct iovec *iov, size_t n);
