/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ow-map.h"

#define OW_MAP_MIN_CAPACITY 64

static size_t ow_map_hash(const OwMap *m, uint32_t key) {
        /* Fibonacci hashing: consecutive sequence numbers spread evenly. */
        return (size_t) ((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & m->mask;
}

int ow_map_init(OwMap *m) {
        m->slots = calloc(OW_MAP_MIN_CAPACITY, sizeof(OwMapSlot));
        if (!m->slots)
                return -ENOMEM;
        m->mask = OW_MAP_MIN_CAPACITY - 1;
        m->n = 0;
        return 0;
}

void ow_map_done(OwMap *m) {
        free(m->slots);
        m->slots = NULL;
        m->mask = 0;
        m->n = 0;
}

void ow_map_clear(OwMap *m) {
        if (m->n > 0)
                memset(m->slots, 0, (m->mask + 1) * sizeof(OwMapSlot));
        m->n = 0;
}

OwMapSlot *ow_map_find(const OwMap *m, uint32_t key) {
        for (size_t i = ow_map_hash(m, key);; i = (i + 1) & m->mask) {
                OwMapSlot *s = &m->slots[i];
                if (!s->used)
                        return NULL;
                if (s->key == key)
                        return s;
        }
}

static int ow_map_grow(OwMap *m) {
        size_t cap = (m->mask + 1) * 2;
        OwMapSlot *old = m->slots;
        size_t old_cap = m->mask + 1;

        if (cap > SIZE_MAX / sizeof(OwMapSlot))
                return -ENOMEM;
        m->slots = calloc(cap, sizeof(OwMapSlot));
        if (!m->slots) {
                m->slots = old;
                return -ENOMEM;
        }
        m->mask = cap - 1;
        for (size_t j = 0; j < old_cap; j++) {
                if (!old[j].used)
                        continue;
                size_t i = ow_map_hash(m, old[j].key);
                while (m->slots[i].used)
                        i = (i + 1) & m->mask;
                m->slots[i] = old[j];
        }
        free(old);
        return 0;
}

/* The slot for key, created zeroed if absent. The pointer is valid until
 * the next insertion or deletion. */
int ow_map_get(OwMap *m, uint32_t key, OwMapSlot **ret) {
        OwMapSlot *s = ow_map_find(m, key);
        if (s) {
                *ret = s;
                return 0;
        }
        /* Keep the load at or below one half. */
        if ((m->n + 1) * 2 > m->mask + 1) {
                int r = ow_map_grow(m);
                if (r < 0)
                        return r;
        }
        size_t i = ow_map_hash(m, key);
        while (m->slots[i].used)
                i = (i + 1) & m->mask;
        m->slots[i] = (OwMapSlot){ .key = key, .used = 1 };
        m->n++;
        *ret = &m->slots[i];
        return 0;
}

void ow_map_delete(OwMap *m, OwMapSlot *s) {
        size_t i = (size_t) (s - m->slots);

        /* Backward-shift: pull later members of the probe chain into the
         * hole as long as that does not move them before their home. */
        for (size_t j = (i + 1) & m->mask; m->slots[j].used; j = (j + 1) & m->mask) {
                size_t home = ow_map_hash(m, m->slots[j].key);
                /* Move j to i unless home lies cyclically in (i, j]. */
                bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
                if (between)
                        continue;
                m->slots[i] = m->slots[j];
                i = j;
        }
        m->slots[i] = (OwMapSlot){};
        m->n--;
}
