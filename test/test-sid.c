/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "ow-error.h"
#include "ow-sid.h"
#include "testutil.h"

START_TEST(test_sid_ipv4) {
        /* The "to" SID of mode-O.pcap: receiver 127.0.0.1, created at
         * eeb4dc4e.cc65e892, random 8b26d267. */
        const uint8_t addr[4] = { 127, 0, 0, 1 }, rnd[4] = { 0x8b, 0x26, 0xd2, 0x67 };
        OwSid sid, want;
        char hex[OW_SID_HEX_SIZE];

        test_unhex("7f000001eeb4dc4ecc65e8928b26d267", want.bytes, sizeof(want.bytes));
        ck_assert_int_eq(ow_sid_make(AF_INET, addr, 0xeeb4dc4ecc65e892ULL, rnd, &sid), 0);
        ck_assert_bytes_eq(sid.bytes, want.bytes, OW_SID_SIZE);
        ck_assert(ow_sid_equal(&sid, &want));
        ck_assert_uint_eq(ow_sid_timestamp(&sid), 0xeeb4dc4ecc65e892ULL);
        ck_assert_str_eq(ow_sid_to_hex(&sid, hex), "7f000001eeb4dc4ecc65e8928b26d267");
        ck_assert(!ow_sid_is_null(&sid));

        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(8929) };
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        OwSid sid2;
        ck_assert_int_eq(ow_sid_make_from_sockaddr((struct sockaddr *) &sin, sizeof(sin),
                                                   0xeeb4dc4ecc65e892ULL, rnd, &sid2),
                         0);
        ck_assert(ow_sid_equal(&sid2, &want));
}
END_TEST

START_TEST(test_sid_ipv6) {
        /* The last 4 octets of the address (PROTOCOL.md 2.3). */
        const uint8_t rnd[4] = { 1, 2, 3, 4 };
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
        OwSid sid;
        char hex[OW_SID_HEX_SIZE];

        ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::c0a8:102", &sin6.sin6_addr), 1);
        ck_assert_int_eq(ow_sid_make(AF_INET6, &sin6.sin6_addr, 0x0123456789abcdefULL, rnd, &sid), 0);
        ck_assert_str_eq(ow_sid_to_hex(&sid, hex), "c0a801020123456789abcdef01020304");

        struct sockaddr_storage ss = {};
        memcpy(&ss, &sin6, sizeof(sin6));
        OwSid sid2;
        ck_assert_int_eq(ow_sid_make_from_sockaddr((struct sockaddr *) &ss, sizeof(ss),
                                                   0x0123456789abcdefULL, rnd, &sid2),
                         0);
        ck_assert(ow_sid_equal(&sid, &sid2));

        /* A v4-mapped receiver gives the same SID as its IPv4 address. */
        ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:192.168.1.2", &sin6.sin6_addr), 1);
        ck_assert_int_eq(ow_sid_make(AF_INET6, &sin6.sin6_addr, 0x0123456789abcdefULL, rnd, &sid), 0);
        const uint8_t v4[4] = { 192, 168, 1, 2 };
        ck_assert_int_eq(ow_sid_make(AF_INET, v4, 0x0123456789abcdefULL, rnd, &sid2), 0);
        ck_assert(ow_sid_equal(&sid, &sid2));
}
END_TEST

START_TEST(test_sid_errors) {
        const uint8_t addr[16] = {}, rnd[4] = {};
        OwSid sid = {}, zero = {};

        ck_assert(ow_sid_is_null(&zero));
        ck_assert_int_eq(ow_sid_make(AF_UNIX, addr, 1, rnd, &sid), -EAFNOSUPPORT);
        ck_assert(ow_sid_is_null(&sid)); /* untouched */

        struct sockaddr_in sin = { .sin_family = AF_INET };
        ck_assert_int_eq(ow_sid_make_from_sockaddr((struct sockaddr *) &sin, sizeof(sin) - 1, 1, rnd, &sid),
                         -EINVAL);
        ck_assert_int_eq(ow_sid_make_from_sockaddr((struct sockaddr *) &sin, 1, 1, rnd, &sid), -EINVAL);
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
        ck_assert_int_eq(
                ow_sid_make_from_sockaddr((struct sockaddr *) &sin6, sizeof(sin6) - 1, 1, rnd, &sid),
                -EINVAL);
        struct sockaddr sa = { .sa_family = AF_UNIX };
        ck_assert_int_eq(ow_sid_make_from_sockaddr(&sa, sizeof(sa), 1, rnd, &sid), -EAFNOSUPPORT);
        ck_assert(ow_sid_is_null(&sid));
}
END_TEST

START_TEST(test_sid_hex) {
        OwSid sid, back;
        char hex[OW_SID_HEX_SIZE];

        for (size_t i = 0; i < sizeof(sid.bytes); i++)
                sid.bytes[i] = (uint8_t) (i * 17 + 3);
        ow_sid_to_hex(&sid, hex);
        ck_assert_int_eq(ow_sid_from_hex(hex, strlen(hex), &back), 0);
        ck_assert(ow_sid_equal(&sid, &back));
        ck_assert_int_eq(ow_sid_from_hex("7F000001EEB4DC4ECC65E8928B26D267", 32, &back), 0);
        ck_assert_str_eq(ow_sid_to_hex(&back, hex), "7f000001eeb4dc4ecc65e8928b26d267");
        ck_assert_int_eq(ow_sid_from_hex("7f000001eeb4dc4ecc65e8928b26d26", 31, &back), -OW_ERR_HEX);
        ck_assert_int_eq(ow_sid_from_hex("7f000001eeb4dc4ecc65e8928b26d2670", 33, &back), -OW_ERR_HEX);
        ck_assert_int_eq(ow_sid_from_hex("7f000001eeb4dc4ecc65e8928b26d26g", 32, &back), -OW_ERR_HEX);
        ck_assert_int_eq(ow_sid_from_hex(NULL, 32, &back), -OW_ERR_HEX);
}
END_TEST

int main(void) {
        Suite *s = suite_create("sid");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_sid_ipv4);
        tcase_add_test(tc, test_sid_ipv6);
        tcase_add_test(tc, test_sid_errors);
        tcase_add_test(tc, test_sid_hex);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
