/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Small, self-contained helpers in the spirit of systemd's macro.h: cleanup
 * attributes, array sizes, min/max. Header-only, no I/O, usable from the
 * core library as well as from the programs.
 */

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _const_ __attribute__((const))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _fallthrough_ __attribute__((fallthrough))

/* For what cannot happen: aborts in a build with assertions. */
#define assert_not_reached()                                                             \
        do {                                                                             \
                assert(!"unreachable code reached");                                     \
                __builtin_unreachable();                                                 \
        } while (0)

#define ELEMENTSOF(x)                                                                    \
        (__builtin_choose_expr(                                                          \
                !__builtin_types_compatible_p(typeof(x), typeof(&*(x))),                 \
                sizeof(x) / sizeof((x)[0]), (void) 0))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(x, y) (((x) + (y) - 1) / (y))
#define ALIGN_TO(x, a) (DIV_ROUND_UP((x), (a)) * (a))

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Steal a pointer out of a cleanup variable. */
#define TAKE_PTR(p)                                                                      \
        ({                                                                               \
                typeof(p) _ptr_ = (p);                                                   \
                (p) = NULL;                                                              \
                _ptr_;                                                                   \
        })

/* Steal a struct: the variable is left zeroed. */
#define TAKE_STRUCT(s)                                                                   \
        ({                                                                               \
                typeof(s) _s_ = (s);                                                     \
                (s) = (typeof(s)) {};                                                    \
                _s_;                                                                     \
        })

#define TAKE_FD(fd)                                                                      \
        ({                                                                               \
                int _fd_ = (fd);                                                         \
                (fd) = -1;                                                               \
                _fd_;                                                                    \
        })

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                          \
        static inline void func##p(type *p) {                                            \
                if (*p)                                                                  \
                        *p = func(*p);                                                   \
        }

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}
