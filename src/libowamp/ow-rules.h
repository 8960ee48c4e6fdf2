/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Table-driven validation, internal to the core (ow-control.c, ow-stamp.c):
 * each message has a list of rules, each a predicate over the decoded
 * message and the error it yields, checked in order; the first that fails
 * gives its negated error.
 */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

#define DEFINE_RULE_TYPE(name, type)       \
        typedef struct name {              \
                bool (*ok)(const type *m); \
                int error;                 \
        } name

#define CHECK_RULES(table, m)                                     \
        ({                                                        \
                int _r = 0;                                       \
                for (size_t _i = 0; _i < ELEMENTSOF(table); _i++) \
                        if (!(table)[_i].ok(m)) {                 \
                                _r = -(table)[_i].error;          \
                                break;                            \
                        }                                         \
                _r;                                               \
        })
