/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <string.h>

#include "config.h"
#include "usage.h"

void usage_version(const char *prog) {
        printf("%s %s\n", prog, PACKAGE_VERSION);
}

void usage_more(FILE *f, const char *text) {
        fprintf(f, "              [More Args]\n\n%s\n", text);
}

void usage_long_options(FILE *f, const struct option *longopts) {
        static const char head[] = "   Long forms:";
        size_t col = strlen(head);

        fputs(head, f);
        for (const struct option *o = longopts; o->name; o++) {
                char item[96];
                bool last = !o[1].name;

                if (o->val > ' ' && o->val < 0x7f)
                        snprintf(item, sizeof(item), " --%s (-%c)%s", o->name, o->val, last ? "" : ",");
                else
                        snprintf(item, sizeof(item), " --%s%s", o->name, last ? "" : ",");
                if (col + strlen(item) > 100) {
                        fputs("\n              ", f);
                        col = 14;
                }
                fputs(item, f);
                col += strlen(item);
        }
        fputs("\n\n", f);
}
