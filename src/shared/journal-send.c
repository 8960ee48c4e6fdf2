/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "journal-send.h"
#include "macro.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

int journal_sendv_to(const char *path, const struct iovec *iov, size_t n) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        /* Opened on first use and kept, as sd_journal_sendv() does; close-on-exec. */
        static int fd = -1;
        size_t size = 0;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -EINVAL;
        strcpy(sa.sun_path, path);

        for (size_t i = 0; i < n; i++)
                size += iov[i].iov_len + 1 + 8 + 1;
        _cleanup_free_ uint8_t *buf = malloc(size ? size : 1);
        if (!buf)
                return -ENOMEM;

        uint8_t *p = buf;
        for (size_t i = 0; i < n; i++) {
                const char *field = iov[i].iov_base;
                size_t len = iov[i].iov_len;
                const char *eq = memchr(field, '=', len);
                if (!eq || eq == field)
                        return -EINVAL;
                size_t klen = (size_t) (eq - field), vlen = len - klen - 1;
                if (!memchr(eq + 1, '\n', vlen)) {
                        /* FIELD=value\n */
                        memcpy(p, field, len);
                        p += len;
                } else {
                        /* FIELD\n, the value's length as 64-bit little-endian, the value, \n */
                        memcpy(p, field, klen);
                        p += klen;
                        *p++ = '\n';
                        for (unsigned b = 0; b < 8; b++)
                                *p++ = (uint8_t) ((uint64_t) vlen >> (8 * b));
                        memcpy(p, eq + 1, vlen);
                        p += vlen;
                }
                *p++ = '\n';
        }

        if (fd < 0) {
                fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
        }
        if (sendto(fd, buf, (size_t) (p - buf), MSG_NOSIGNAL, (const struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        return 0;
}

int journal_sendv(const struct iovec *iov, size_t n) {
        return journal_sendv_to(JOURNAL_SOCKET, iov, n);
}
