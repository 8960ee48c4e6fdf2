/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Each fuzz-<thing>.c defines this; libFuzzer calls it, or fuzz-main.c
 * replays a corpus through it when not built for fuzzing. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
