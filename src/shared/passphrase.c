/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "macro.h"
#include "ow-crypto.h"
#include "ow-diag.h"
#include "ow-pfs.h"
#include "passphrase.h"

/* Read a pass-phrase from the terminal without echo, as the reference's
 * prompt does. */
static int read_passphrase(const char *keyid, uint8_t **ret, size_t *ret_len) {
        int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        bool tty = fd >= 0;
        if (!tty)
                fd = STDIN_FILENO;
        struct termios old, noecho;
        bool restore = tty && tcgetattr(fd, &old) == 0;
        if (tty) {
                dprintf(fd, "Enter passphrase for identity '%s': ", keyid);
                if (restore) {
                        noecho = old;
                        noecho.c_lflag &= ~(tcflag_t) ECHO;
                        (void) tcsetattr(fd, TCSAFLUSH, &noecho);
                }
        }
        uint8_t *buf = malloc(OW_PFS_MAX_SECRET + 1);
        size_t len = 0;
        int r = 0;
        if (!buf)
                r = -ENOMEM;
        while (r == 0 && len <= OW_PFS_MAX_SECRET) {
                char ch;
                ssize_t n = read(fd, &ch, 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0 || ch == '\n' || ch == '\r')
                        break;
                buf[len++] = (uint8_t) ch;
        }
        if (restore) {
                (void) tcsetattr(fd, TCSAFLUSH, &old);
                dprintf(fd, "\n");
        }
        if (tty)
                close(fd);
        /* Nothing typed on a terminal is an empty pass-phrase; nothing on
         * a standard input that is not one means there was no one to ask. */
        if (r == 0 && len == 0)
                r = tty ? -EINVAL : -ENOTTY;
        else if (r == 0 && len > OW_PFS_MAX_SECRET)
                r = -E2BIG;
        if (r < 0) {
                if (buf)
                        ow_wipe(buf, OW_PFS_MAX_SECRET + 1);
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

int passphrase_load(const char *prog, const char *keyfile, const char *keyid, uint8_t **ret,
                    size_t *ret_len) {
        if (!keyfile)
                return read_passphrase(keyid, ret, ret_len);

        int fd = open(keyfile, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_size > (16 << 20)) {
                close(fd);
                return -EFBIG;
        }
        _cleanup_free_ char *buf = malloc((size_t) st.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        ssize_t n = read(fd, buf, (size_t) st.st_size);
        close(fd);
        if (n < 0)
                return -errno;
        OwPfs *pfs = NULL;
        OwDiag diag = {};
        int r = ow_pfs_parse(buf, (size_t) n, keyfile, &pfs, &diag);
        ow_wipe(buf, (size_t) n);
        if (r < 0) {
                char m[512];
                fprintf(stderr, "%s: %s\n", prog, ow_diag_format(&diag, m, sizeof(m)));
                return r;
        }
        const uint8_t *secret;
        size_t len;
        r = ow_pfs_lookup(pfs, keyid, &secret, &len);
        if (r >= 0) {
                *ret = malloc(len ? len : 1);
                if (*ret) {
                        memcpy(*ret, secret, len);
                        *ret_len = len;
                } else
                        r = -ENOMEM;
        }
        ow_pfs_free(pfs);
        return r;
}
