/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * cpu_relax(): the body of a busy-wait loop. It tells the CPU that this
 * thread is spinning (so a sibling hyper-thread gets the core, and the
 * loop does not flood the memory pipeline) without giving the CPU away
 * as sched_yield() would. On an architecture we do not know it is a
 * compiler barrier only, which keeps the loop correct, just less polite.
 */

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#elif defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#elif defined(__powerpc__) || defined(__powerpc64__)
/* "or 1,1,1": lower the thread priority while spinning, then back. */
#define cpu_relax() __asm__ __volatile__("or 1,1,1\n\tor 2,2,2" ::: "memory")
#elif defined(__riscv) && defined(__riscv_zihintpause)
#define cpu_relax() __asm__ __volatile__("pause" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif
