/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A small open-addressing hash map from uint32 keys, linear probing with
 * backward-shift deletion (no tombstones, so a long session that inserts and
 * deletes millions of packets never degrades).
 */
typedef struct OwMapSlot {
        uint32_t key;
        uint32_t val;
        uint8_t used;
        uint8_t flag;
} OwMapSlot;

typedef struct OwMap {
        OwMapSlot *slots;
        size_t mask; /* capacity - 1; capacity is a power of two */
        size_t n;
} OwMap;

/* An empty map (-ENOMEM). */
int ow_map_init(OwMap *m);
void ow_map_done(OwMap *m);
void ow_map_clear(OwMap *m);
/* The slot of key, or NULL. */
OwMapSlot *ow_map_find(const OwMap *m, uint32_t key);
/* The slot for key, created zeroed if absent. The pointer is valid until
 * the next insertion or deletion. -ENOMEM. */
int ow_map_get(OwMap *m, uint32_t key, OwMapSlot **ret);
void ow_map_delete(OwMap *m, OwMapSlot *s);
