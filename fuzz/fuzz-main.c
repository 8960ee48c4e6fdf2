/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Corpus replay driver: when the harnesses are not built with libFuzzer,
 * this main() feeds every file named on the command line (directories are
 * walked one level deep) through LLVMFuzzerTestOneInput, so the seed corpus
 * and every crash reproducer we keep run as ordinary tests - under ASan and
 * UBSan in the sanitized build.
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        uint8_t *buf = NULL;
        size_t len = 0;
        for (;;) {
                uint8_t chunk[65536];
                size_t n = fread(chunk, 1, sizeof(chunk), f);
                if (n == 0)
                        break;
                uint8_t *nb = realloc(buf, len + n);
                if (!nb) {
                        free(buf);
                        fclose(f);
                        return -1;
                }
                buf = nb;
                memcpy(buf + len, chunk, n);
                len += n;
        }
        fclose(f);
        /* An exact-size heap copy, so ASan sees any read past the end. */
        uint8_t *exact = malloc(len ? len : 1);
        if (!exact) {
                free(buf);
                return -1;
        }
        if (len)
                memcpy(exact, buf, len);
        free(buf);
        (void) LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        return 0;
}

static int cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int main(int argc, char **argv) {
        unsigned n = 0;
        int failed = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        return EXIT_FAILURE;
                }
                if (!S_ISDIR(st.st_mode)) {
                        failed |= run_file(argv[i]) < 0;
                        n++;
                        continue;
                }
                DIR *d = opendir(argv[i]);
                if (!d)
                        return EXIT_FAILURE;
                char **names = NULL;
                size_t nn = 0;
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        names = realloc(names, (nn + 1) * sizeof(*names));
                        if (!names)
                                return EXIT_FAILURE;
                        size_t l = strlen(argv[i]) + strlen(de->d_name) + 2;
                        names[nn] = malloc(l);
                        if (!names[nn])
                                return EXIT_FAILURE;
                        snprintf(names[nn], l, "%s/%s", argv[i], de->d_name);
                        nn++;
                }
                closedir(d);
                qsort(names, nn, sizeof(*names), cmp);
                for (size_t k = 0; k < nn; k++) {
                        failed |= run_file(names[k]) < 0;
                        n++;
                        free(names[k]);
                }
                free(names);
        }
        printf("replayed %u input(s)\n", n);
        if (n == 0) {
                fprintf(stderr, "no corpus inputs found\n");
                return EXIT_FAILURE;
        }
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
