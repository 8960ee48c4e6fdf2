/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owampd-pfstore: add, replace, delete and list the identities of a
 * pass-phrase file (owampd.pfs, owamp-server.pfs, owping -k files), with
 * the options of perfSONAR's pfstore:
 *
 *   owampd-pfstore [-n] [-d] -f pfsfile identity
 *   owampd-pfstore -l -f pfsfile
 *
 * The file is rewritten atomically (a new file in the same directory,
 * synced, renamed over the old one) with mode 0600 - 0640 if the file it
 * replaces let its group read it (the packages share it with owampd's
 * group that way) - and the old file's owner and group; comments, blank
 * lines and the order of the entries stay as they were.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "ow-crypto.h"
#include "ow-diag.h"
#include "ow-error.h"
#include "ow-pfs.h"
#include "usage.h"

#define PFS_MAX_FILE_SIZE (16u << 20)

DEFINE_TRIVIAL_CLEANUP_FUNC(OwPfs *, ow_pfs_free);

static const char *prog = "owampd-pfstore";

static void help(void) {
        printf("Usage: %1$s [-n] [-d] -f pfsfile identity\n"
               "       %1$s -l -f pfsfile\n"
               "\n"
               "Manage the identities and pass-phrases of an OWAMP pass-phrase file\n"
               "(owampd.pfs, or a client's pass-phrase file).\n"
               "\n"
               "  -f pfsfile  the pass-phrase file\n"
               "  -n          create the file (it must not exist yet)\n"
               "  -d          delete the identity instead of setting its pass-phrase\n"
               "  -l          list the identities, one per line\n"
               "  -h          print this message and exit\n"
               "  --version   print the version and exit\n"
               "\n"
               "  Long forms: --help (-h), --version\n"
               "\n"
               "Without -d the pass-phrase is asked for twice on the terminal, or read\n"
               "as one line from standard input when that is not a terminal.\n"
               "\n"
               "Version: %2$s\n",
               prog, PACKAGE_VERSION);
}

static void wipe_free(char *s, size_t n) {
        if (!s)
                return;
        ow_wipe(s, n);
        free(s);
}

static int read_all(int fd, char **ret, size_t *ret_len) {
        size_t len = 0, cap = 4096;
        char *buf = malloc(cap);

        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap >= PFS_MAX_FILE_SIZE) {
                                wipe_free(buf, len);
                                return -EFBIG;
                        }
                        char *n = malloc(cap * 2);
                        if (!n) {
                                wipe_free(buf, len);
                                return -ENOMEM;
                        }
                        memcpy(n, buf, len);
                        wipe_free(buf, len);
                        buf = n;
                        cap *= 2;
                }
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        wipe_free(buf, len);
                        return r;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* One line from fd, without its line ending. Octet by octet: nothing past
 * the line is consumed. */
static int read_line(int fd, char *buf, size_t size, size_t *ret_len) {
        size_t len = 0;
        for (;;) {
                char ch;
                ssize_t k = read(fd, &ch, 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0 || ch == '\n')
                        break;
                if (len + 1 >= size)
                        return -E2BIG;
                buf[len++] = ch;
        }
        if (len > 0 && buf[len - 1] == '\r')
                len--;
        buf[len] = 0;
        *ret_len = len;
        return 0;
}

static int prompt(int tty, const char *text, char *buf, size_t size, size_t *ret_len) {
        struct termios old, quiet;
        int r;

        if (tcgetattr(tty, &old) < 0)
                return -errno;
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t) (ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        (void) !write(tty, text, strlen(text));
        if (tcsetattr(tty, TCSAFLUSH, &quiet) < 0)
                return -errno;
        r = read_line(tty, buf, size, ret_len);
        (void) tcsetattr(tty, TCSAFLUSH, &old);
        (void) !write(tty, "\n", 1);
        return r;
}

/* The pass-phrase: twice on the terminal, or one line from stdin. */
static int get_passphrase(const char *id, char *buf, size_t size, size_t *ret_len) {
        if (!isatty(STDIN_FILENO)) {
                int r = read_line(STDIN_FILENO, buf, size, ret_len);
                if (r == -E2BIG)
                        fprintf(stderr, "%s: the pass-phrase is longer than %u octets\n", prog,
                                OW_PFS_MAX_SECRET);
                return r;
        }
        char text[160], again[OW_PFS_MAX_SECRET + 2];
        size_t again_len = 0;
        snprintf(text, sizeof(text), "Enter a pass-phrase for identity '%s': ", id);
        int r = prompt(STDIN_FILENO, text, buf, size, ret_len);
        if (r >= 0)
                r = prompt(STDIN_FILENO, "Enter it again: ", again, sizeof(again), &again_len);
        if (r >= 0 && (again_len != *ret_len || memcmp(again, buf, again_len) != 0)) {
                fprintf(stderr, "%s: the pass-phrases differ\n", prog);
                r = -EINVAL;
        }
        ow_wipe(again, sizeof(again));
        if (r == -E2BIG)
                fprintf(stderr, "%s: the pass-phrase is longer than %u octets\n", prog, OW_PFS_MAX_SECRET);
        return r;
}

/* Write the store to a new file next to path and rename it over path (or,
 * with create, into place only if nothing is there yet). Mode 0600, plus
 * the group's read bit of the file it replaces; its owner and group are
 * kept when we can. Never readable by others, never writable but by the
 * owner. */
static int write_atomically(const char *path, const OwPfs *pfs, bool create, const struct stat *old) {
        _cleanup_free_ char *copy = strdup(path), *tmp = NULL;
        char *text = NULL;
        size_t len = 0;
        int fd, r;

        if (!copy)
                return -ENOMEM;
        const char *dir = dirname(copy);
        if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, "owampd-pfstore") < 0)
                return -ENOMEM;
        r = ow_pfs_encode(pfs, &text, &len);
        if (r < 0)
                return r;
        mode_t um = umask(0077);
        fd = mkostemp(tmp, O_CLOEXEC);
        umask(um);
        if (fd < 0) {
                r = -errno;
                ow_pfs_encoded_free(text, len);
                return r;
        }
        if (fchmod(fd, 0600 | (old ? old->st_mode & S_IRGRP : 0)) < 0)
                r = -errno;
        if (r >= 0 && old && (old->st_uid != geteuid() || old->st_gid != getegid()) &&
            fchown(fd, old->st_uid, old->st_gid) < 0 && errno != EPERM)
                r = -errno;
        for (size_t off = 0; r >= 0 && off < len;) {
                ssize_t k = write(fd, text + off, len - off);
                if (k < 0) {
                        if (errno != EINTR)
                                r = -errno;
                        continue;
                }
                off += (size_t) k;
        }
        ow_pfs_encoded_free(text, len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0) {
                if (create)
                        r = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0 ? -errno : 0;
                else
                        r = rename(tmp, path) < 0 ? -errno : 0;
        }
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
                (void) fsync(dfd);
                close(dfd);
        }
        return 0;
}

int main(int argc, char **argv) {
        const char *file = NULL, *id = NULL;
        bool create = false, delete = false, list = false;
        _cleanup_(ow_pfs_freep) OwPfs *pfs = NULL;
        struct stat st;
        int c, r;

        static const struct option longopts[] = {
                { "help", no_argument, NULL, 'h' },
                USAGE_VERSION_OPTION,
                {},
        };

        while ((c = getopt_long(argc, argv, "f:ndlh", longopts, NULL)) != -1)
                switch (c) {
                case 'f':
                        file = optarg;
                        break;
                case 'n':
                        create = true;
                        break;
                case 'd':
                        delete = true;
                        break;
                case 'l':
                        list = true;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case USAGE_ARG_VERSION:
                        usage_version(prog);
                        return EXIT_SUCCESS;
                default:
                        fprintf(stderr, "Try '%s -h'.\n", prog);
                        return 2;
                }
        if (!file) {
                fprintf(stderr, "%s: -f pfsfile is required\n", prog);
                return 2;
        }
        if (list ? optind != argc || create || delete : optind + 1 != argc || (create && delete)) {
                fprintf(stderr, "%s: usage: %s [-n] [-d] -f pfsfile identity | -l -f pfsfile\n", prog, prog);
                return 2;
        }
        if (!list) {
                id = argv[optind];
                if (!ow_pfs_id_valid(id)) {
                        fprintf(stderr,
                                "%s: invalid identity '%s': 1 to %u octets, no blanks or control "
                                "characters, "
                                "not starting with '#'\n",
                                prog, id, OW_KEYID_SIZE);
                        return EXIT_FAILURE;
                }
        }

        if (create) {
                if (lstat(file, &st) == 0) {
                        fprintf(stderr, "%s: %s: already exists\n", prog, file);
                        return EXIT_FAILURE;
                }
                if (errno != ENOENT) {
                        fprintf(stderr, "%s: %s: %s\n", prog, file, strerror(errno));
                        return EXIT_FAILURE;
                }
                r = ow_pfs_new(&pfs);
                if (r < 0)
                        return EXIT_FAILURE;
        } else {
                _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
                char *buf = NULL;
                size_t len = 0;
                OwDiag diag = {};
                char msg[512];

                if (fd < 0 || fstat(fd, &st) < 0) {
                        fprintf(stderr, "%s: %s: %s%s\n", prog, file, strerror(errno),
                                errno == ENOENT ? " (use -n to create it)" : "");
                        return EXIT_FAILURE;
                }
                if (!S_ISREG(st.st_mode)) {
                        fprintf(stderr, "%s: %s: not a regular file\n", prog, file);
                        return EXIT_FAILURE;
                }
                r = read_all(fd, &buf, &len);
                if (r < 0) {
                        fprintf(stderr, "%s: %s: %s\n", prog, file, strerror(-r));
                        return EXIT_FAILURE;
                }
                r = ow_pfs_parse(buf, len, file, &pfs, &diag);
                wipe_free(buf, len);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", prog, ow_diag_format(&diag, msg, sizeof(msg)));
                        return EXIT_FAILURE;
                }
        }

        if (list) {
                for (size_t i = 0; i < ow_pfs_count(pfs); i++)
                        printf("%s\n", ow_pfs_id(pfs, i));
                return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
        }

        if (delete) {
                if (ow_pfs_remove(pfs, id) < 0) {
                        fprintf(stderr, "%s: %s: no identity '%s'\n", prog, file, id);
                        return EXIT_FAILURE;
                }
        } else {
                char pass[OW_PFS_MAX_SECRET + 2];
                size_t len = 0;
                r = get_passphrase(id, pass, sizeof(pass), &len);
                if (r >= 0 && len == 0) {
                        fprintf(stderr, "%s: the pass-phrase is empty\n", prog);
                        r = -EINVAL;
                }
                if (r >= 0) {
                        r = ow_pfs_set(pfs, id, (const uint8_t *) pass, len);
                        if (r < 0)
                                fprintf(stderr, "%s: cannot store the pass-phrase: %s\n", prog,
                                        ow_strerror(r));
                }
                ow_wipe(pass, sizeof(pass));
                if (r < 0)
                        return EXIT_FAILURE;
        }

        r = write_atomically(file, pfs, create, create ? NULL : &st);
        if (r < 0) {
                fprintf(stderr, "%s: cannot write %s: %s\n", prog, file,
                        r == -EEXIST ? "it was created meanwhile" : strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
