/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Helpers shared by the Check test programs. */

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Path of a file under test/data (TEST_DATA_DIR comes from meson). Returns
 * a static buffer: use it before the next call. */
const char *test_data_path(const char *name);

/* Read a whole file; aborts the test on failure. Caller frees *ret. */
void test_read_file(const char *path, uint8_t **ret, size_t *ret_len);

/* Decode a hex string (whitespace ignored) into exactly len bytes; aborts
 * the test if the string does not hold exactly len bytes. */
void test_unhex(const char *hex, uint8_t *out, size_t len);

/* ck_assert that n bytes at a equal n bytes at b, printing both in hex. */
#define ck_assert_bytes_eq(a, b, n) test_assert_bytes_eq(__FILE__, __LINE__, (a), (b), (n))
void test_assert_bytes_eq(const char *file, int line, const void *a, const void *b, size_t n);

/* Run one suite with the usual runner settings; returns the exit code. */
int test_run_suite(Suite *s);
