/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>

#include "ow-conf.h"
#include "ow-error.h"
#include "ow-types.h"
#include "test-diag.h"
#include "testutil.h"

static OwConf *parse_ok(const char *text) {
        OwConf *c = NULL;
        OwDiag d;
        ck_assert_int_eq(ow_conf_new(&c), 0);
        int r = ow_conf_parse(c, text, strlen(text), "t.conf", &d);
        ck_assert_msg(r == 0, "parsing \"%s\" failed: %s (line %u: %s)", text, ow_strerror(r), d.line,
                      d.message);
        return c;
}

START_TEST(test_defaults) {
        OwConf *c = NULL;
        ck_assert_int_eq(ow_conf_new(&c), 0);
        ck_assert_uint_eq(c->set, 0);
        ck_assert_ptr_null(c->user);
        ck_assert_ptr_null(c->group);
        ck_assert_ptr_null(c->datadir);
        ck_assert_ptr_null(c->vardir);
        ck_assert(!c->verbose && !c->loglocation && !c->rootfolly);
        ck_assert(!c->allowinsecurepfs); /* a pfs others can read is refused by default */
        ck_assert_int_eq(c->facility, LOG_DAEMON);
        ck_assert_int_eq(c->loglevel, OW_LOG_INFO);
        ck_assert_uint_eq(c->authmode, OW_MODES_ALL);
        ck_assert_str_eq(c->srcnode.host, "");
        ck_assert_uint_eq(c->srcnode.port, 0);
        ck_assert_uint_eq(c->testports.low, 0);
        ck_assert_uint_eq(c->testports.high, 0);
        ck_assert(c->diskfudge == 1.0);
        ck_assert_uint_eq(c->dieby_sec, 5);
        ck_assert_uint_eq(c->controltimeout_sec, 1800);
        ck_assert_uint_eq(c->pbkdf2_count, 2048);
        ck_assert_uint_eq(c->enddelay, OW_TIMESTAMP_FROM_SEC(1));
        ck_assert_uint_eq(c->maxcontrolsessions, 0);

        /* An empty file or one of only comments changes nothing. */
        ck_assert_int_eq(ow_conf_parse(c, "", 0, "t", NULL), 0);
        ck_assert_int_eq(ow_conf_parse(c, NULL, 0, "t", NULL), 0);
        static const char comments[] = "\n  \n# x\n\t# y \\\n";
        ck_assert_int_eq(ow_conf_parse(c, comments, strlen(comments), "t", NULL), 0);
        ck_assert_uint_eq(c->set, 0);
        ow_conf_free(c);
}
END_TEST

static void check_reference_common(const OwConf *c) {
        ck_assert_str_eq(c->user, "owamp");
        ck_assert_str_eq(c->group, "owamp");
        ck_assert(c->verbose);
        ck_assert_int_eq(c->facility, LOG_LOCAL5);
        ck_assert(c->loglocation);
        ck_assert_uint_eq(c->testports.low, 8760);
        ck_assert_uint_eq(c->testports.high, 9960);
        ck_assert(c->diskfudge == 3.0);
        /* Everything else commented out: defaults, not "set". */
        ck_assert(!ow_conf_is_set(c, OW_CONF_LOGLEVEL));
        ck_assert(!ow_conf_is_set(c, OW_CONF_AUTHMODE));
        ck_assert(!ow_conf_is_set(c, OW_CONF_SRCNODE));
        ck_assert(!ow_conf_is_set(c, OW_CONF_DIEBY));
        ck_assert(!ow_conf_is_set(c, OW_CONF_CONTROLTIMEOUT));
        ck_assert(!ow_conf_is_set(c, OW_CONF_PBKDF2_COUNT));
        ck_assert(!ow_conf_is_set(c, OW_CONF_ENDDELAY));
        ck_assert(!ow_conf_is_set(c, OW_CONF_MAXCONTROLSESSIONS));
        ck_assert(!ow_conf_is_set(c, OW_CONF_ROOTFOLLY));
        ck_assert_uint_eq(c->authmode, OW_MODES_ALL);
        ck_assert_uint_eq(c->controltimeout_sec, 1800);
}

START_TEST(test_reference_conf) {
        uint8_t *buf;
        size_t len;
        OwConf *c = NULL;
        OwDiag d;

        test_read_file(test_data_path("reference-conf/owampd.conf"), &buf, &len);
        ck_assert_int_eq(ow_conf_new(&c), 0);
        ck_assert_int_eq(ow_conf_parse(c, buf, len, "owampd.conf", &d), 0);
        check_reference_common(c);
        ck_assert(!ow_conf_is_set(c, OW_CONF_VARDIR));
        ck_assert(!ow_conf_is_set(c, OW_CONF_DATADIR));
        ck_assert_uint_eq(c->line[OW_CONF_USER], 24);
        ck_assert_uint_eq(c->line[OW_CONF_TESTPORTS], 73);
        ck_assert_uint_eq(c->set, (1u << OW_CONF_USER) | (1u << OW_CONF_GROUP) | (1u << OW_CONF_VERBOSE) |
                                          (1u << OW_CONF_FACILITY) | (1u << OW_CONF_LOGLOCATION) |
                                          (1u << OW_CONF_TESTPORTS) | (1u << OW_CONF_DISKFUDGE));
        ow_conf_free(c);
        free(buf);

        test_read_file(test_data_path("reference-conf/owampd.rpm.conf"), &buf, &len);
        ck_assert_int_eq(ow_conf_new(&c), 0);
        ck_assert_int_eq(ow_conf_parse(c, buf, len, "owampd.rpm.conf", &d), 0);
        check_reference_common(c);
        ck_assert_str_eq(c->vardir, "/var/run");
        ck_assert_str_eq(c->datadir, "/var/lib/owamp");
        ow_conf_free(c);
        free(buf);
}
END_TEST

START_TEST(test_good_values) {
        OwConf *c;

        c = parse_ok("user -1000\ngroup -1000\n");
        ck_assert_str_eq(c->user, "-1000");
        ck_assert_str_eq(c->group, "-1000");
        ow_conf_free(c);

        c = parse_ok("rootfolly\nverbose\nloglocation   # trailing comment\n");
        ck_assert(c->rootfolly && c->verbose && c->loglocation);
        ck_assert(!c->allowinsecurepfs);
        ow_conf_free(c);

        c = parse_ok("AllowInsecurePfs\n");
        ck_assert(c->allowinsecurepfs);
        ck_assert(ow_conf_is_set(c, OW_CONF_ALLOWINSECUREPFS));
        ck_assert_str_eq(ow_conf_key_to_string(OW_CONF_ALLOWINSECUREPFS), "allowinsecurepfs");
        ow_conf_free(c);

        static const struct {
                const char *name;
                int value;
        } fac[] = { { "daemon", LOG_DAEMON }, { "LOCAL0", LOG_LOCAL0 },     { "local7", LOG_LOCAL7 },
                    { "auth", LOG_AUTH },     { "authpriv", LOG_AUTHPRIV }, { "user", LOG_USER },
                    { "Syslog", LOG_SYSLOG }, { "security", LOG_AUTH } };
        for (size_t i = 0; i < sizeof(fac) / sizeof(fac[0]); i++) {
                char t[64];
                snprintf(t, sizeof(t), "facility %s\n", fac[i].name);
                c = parse_ok(t);
                ck_assert_int_eq(c->facility, fac[i].value);
                ow_conf_free(c);
        }
        ck_assert_str_eq(ow_conf_facility_to_string(LOG_LOCAL5), "local5");

        static const struct {
                const char *name;
                OwLogLevel l;
        } lv[] = { { "NONE", OW_LOG_NONE }, { "fatal", OW_LOG_FATAL }, { "Warn", OW_LOG_WARN },
                   { "INFO", OW_LOG_INFO }, { "DEBUG", OW_LOG_DEBUG }, { "all", OW_LOG_ALL } };
        for (size_t i = 0; i < sizeof(lv) / sizeof(lv[0]); i++) {
                char t[64];
                snprintf(t, sizeof(t), "loglevel %s", lv[i].name);
                c = parse_ok(t);
                ck_assert_int_eq(c->loglevel, lv[i].l);
                ck_assert(strcasecmp(ow_log_level_to_string(c->loglevel), lv[i].name) == 0);
                ow_conf_free(c);
        }
}
END_TEST

START_TEST(test_good_values2) {
        OwConf *c;

        c = parse_ok("datadir /big/enough\nvardir\t/run/owamp\n");
        ck_assert_str_eq(c->datadir, "/big/enough");
        ck_assert_str_eq(c->vardir, "/run/owamp");
        ow_conf_free(c);

        static const struct {
                const char *v;
                uint32_t m;
        } am[] = { { "O", OW_MODE_OPEN },
                   { "ae", OW_MODE_AUTHENTICATED | OW_MODE_ENCRYPTED },
                   { "EAO", OW_MODES_ALL },
                   { "OOO", OW_MODE_OPEN } };
        for (size_t i = 0; i < sizeof(am) / sizeof(am[0]); i++) {
                char t[64];
                snprintf(t, sizeof(t), "authmode %s\n", am[i].v);
                c = parse_ok(t);
                ck_assert_uint_eq(c->authmode, am[i].m);
                ow_conf_free(c);
        }

        static const struct {
                const char *v;
                const char *host;
                int family;
                uint16_t port;
        } nodes[] = {
                { "localhost:861", "localhost", AF_UNSPEC, 861 },
                { "localhost", "localhost", AF_UNSPEC, 0 },
                { ":8765", "", AF_UNSPEC, 8765 },
                { "192.0.2.1", "192.0.2.1", AF_INET, 0 },
                { "192.0.2.1:8765", "192.0.2.1", AF_INET, 8765 },
                { "[2001:db8::1]:861", "2001:db8::1", AF_INET6, 861 },
                { "[fe80::fe9f:62d8]", "fe80::fe9f:62d8", AF_INET6, 0 },
                { "::1", "::1", AF_INET6, 0 },
                { "owamp.example.net:65535", "owamp.example.net", AF_UNSPEC, 65535 },
        };
        for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
                char t[128];
                snprintf(t, sizeof(t), "srcnode %s\n", nodes[i].v);
                c = parse_ok(t);
                ck_assert_str_eq(c->srcnode.host, nodes[i].host);
                ck_assert_int_eq(c->srcnode.family, nodes[i].family);
                ck_assert_uint_eq(c->srcnode.port, nodes[i].port);
                ow_conf_free(c);
        }

        static const struct {
                const char *v;
                uint16_t lo, hi;
        } ports[] = { { "0", 0, 0 },       { "0-0", 0, 0 },         { "8760-9960", 8760, 9960 },
                      { "861", 861, 861 }, { "1-65535", 1, 65535 }, { "5000-5000", 5000, 5000 } };
        for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
                char t[64];
                snprintf(t, sizeof(t), "testports %s\n", ports[i].v);
                c = parse_ok(t);
                ck_assert_uint_eq(c->testports.low, ports[i].lo);
                ck_assert_uint_eq(c->testports.high, ports[i].hi);
                ow_conf_free(c);
        }
}
END_TEST

START_TEST(test_good_numbers) {
        OwConf *c;

        c = parse_ok("diskfudge 1\n");
        ck_assert(c->diskfudge == 1.0);
        ow_conf_free(c);
        c = parse_ok("diskfudge 10.0\n");
        ck_assert(c->diskfudge == 10.0);
        ow_conf_free(c);
        c = parse_ok("diskfudge 2.5\n");
        ck_assert(c->diskfudge == 2.5);
        ow_conf_free(c);

        c = parse_ok("dieby 0\ncontroltimeout 0\nmaxcontrolsessions 0\n");
        ck_assert_uint_eq(c->dieby_sec, 0);
        ck_assert_uint_eq(c->controltimeout_sec, 0);
        ck_assert_uint_eq(c->maxcontrolsessions, 0);
        ow_conf_free(c);
        c = parse_ok("dieby 30\ncontroltimeout 604800\nmaxcontrolsessions 1048576\n");
        ck_assert_uint_eq(c->dieby_sec, 30);
        ck_assert_uint_eq(c->controltimeout_sec, 604800);
        ck_assert_uint_eq(c->maxcontrolsessions, 1048576);
        ow_conf_free(c);

        c = parse_ok("pbkdf2_count 1024\n");
        ck_assert_uint_eq(c->pbkdf2_count, 1024);
        ow_conf_free(c);
        c = parse_ok("pbkdf2_count 1048576\n");
        ck_assert_uint_eq(c->pbkdf2_count, 1048576);
        ow_conf_free(c);
        c = parse_ok("pbkdf2_count 3000\n"); /* not a power of two: allowed, the daemon may warn */
        ck_assert_uint_eq(c->pbkdf2_count, 3000);
        ow_conf_free(c);

        c = parse_ok("enddelay 1.0\n");
        ck_assert_uint_eq(c->enddelay, OW_TIMESTAMP_FROM_SEC(1));
        ow_conf_free(c);
        c = parse_ok("enddelay 0.5\n");
        ck_assert_uint_eq(c->enddelay, UINT64_C(0x80000000));
        ow_conf_free(c);
        c = parse_ok("enddelay 0\n");
        ck_assert_uint_eq(c->enddelay, 0);
        ow_conf_free(c);
        c = parse_ok("enddelay 2.\n");
        ck_assert_uint_eq(c->enddelay, OW_TIMESTAMP_FROM_SEC(2));
        ow_conf_free(c);
        c = parse_ok("enddelay .25\n");
        ck_assert_uint_eq(c->enddelay, UINT64_C(0x40000000));
        ow_conf_free(c);
        /* Digits beyond the nanosecond are truncated. */
        c = parse_ok("enddelay 0.0000000019\n");
        ck_assert_uint_eq(c->enddelay, ow_frac_from_nsec(1));
        ow_conf_free(c);
}
END_TEST

static const BadCase bad[] = {
        /* Keywords. */
        { "foo bar\n", 0, -OW_ERR_KEYWORD, 1, "unknown keyword 'foo'" },
        { "# c\n\nverbose\npriority err\n", 0, -OW_ERR_KEYWORD, 4, "unknown keyword 'priority'" },
        { "testtimeout 5\n", 0, -OW_ERR_KEYWORD, 1, "unknown keyword 'testtimeout'" },
        { "maxcontrolsessionsX 5\n", 0, -OW_ERR_KEYWORD, 1, "'maxcontrolsessionsX'" },
        { "facilit local5\n", 0, -OW_ERR_KEYWORD, 1, "'facilit'" },
        /* Syntax. */
        { "user owamp owamp\n", 0, -OW_ERR_SYNTAX, 1, "unexpected 'owamp' after the value of 'user'" },
        { "verbose\nuser a\\b\n", 0, -OW_ERR_SYNTAX, 2, "'\\'" },
        { "user owamp \\", 0, -OW_ERR_SYNTAX, 1, "'\\'" },
        { "user ow\0amp\n", 12, -OW_ERR_SYNTAX, 1, "NUL" },
        /* Flags take no value. */
        { "verbose off\n", 0, -OW_ERR_VALUE, 1, "'verbose' takes no value" },
        { "loglocation yes\n", 0, -OW_ERR_VALUE, 1, "'loglocation'" },
        { "rootfolly 1\n", 0, -OW_ERR_VALUE, 1, "'rootfolly'" },
        { "allowinsecurepfs off\n", 0, -OW_ERR_VALUE, 1, "'allowinsecurepfs' takes no value" },
        /* Values required. */
        { "user\n", 0, -OW_ERR_VALUE, 1, "'user' needs a value" },
        { "group # nothing\n", 0, -OW_ERR_VALUE, 1, "'group' needs a value" },
        { "datadir\n", 0, -OW_ERR_VALUE, 1, "'datadir' needs a value" },
        { "vardir\n", 0, -OW_ERR_VALUE, 1, "'vardir'" },
        { "user -abc\n", 0, -OW_ERR_VALUE, 1, "numeric id" },
        { "group -\n", 0, -OW_ERR_VALUE, 1, "numeric id" },
        { "facility\n", 0, -OW_ERR_VALUE, 1, "'facility' needs a value" },
        { "facility local8\n", 0, -OW_ERR_VALUE, 1, "unknown syslog facility 'local8'" },
        { "facility local5x\n", 0, -OW_ERR_VALUE, 1, "'local5x'" },
        { "facility mark\n", 0, -OW_ERR_VALUE, 1, "'mark'" },
        { "loglevel WARNING\n", 0, -OW_ERR_VALUE, 1, "'loglevel' must be one of" },
        { "loglevel 3\n", 0, -OW_ERR_VALUE, 1, "got '3'" },
        { "authmode X\n", 0, -OW_ERR_MODE, 1, "'authmode'" },
        { "authmode AEOZ\n", 0, -OW_ERR_MODE, 1, "'AEOZ'" },
        { "authmode\n", 0, -OW_ERR_VALUE, 1, "needs a value" },
        /* srcnode */
        { "srcnode [::1\n", 0, -OW_ERR_ADDRESS, 1, "'[' without ']'" },
        { "srcnode []:861\n", 0, -OW_ERR_ADDRESS, 1, "empty '[]'" },
        { "srcnode [::1]x\n", 0, -OW_ERR_ADDRESS, 1, "only ':port'" },
        { "srcnode [example.com]:861\n", 0, -OW_ERR_ADDRESS, 1, "not an IPv6 address" },
        { "srcnode 2001:db8::zz\n", 0, -OW_ERR_ADDRESS, 1, "not an IPv6 address" },
        { "srcnode host:0\n", 0, -OW_ERR_PORT, 1, "port must be 1..65535" },
        { "srcnode host:65536\n", 0, -OW_ERR_PORT, 1, "port" },
        { "srcnode host:\n", 0, -OW_ERR_PORT, 1, "port" },
        { "srcnode [::1]:http\n", 0, -OW_ERR_PORT, 1, "port" },
        { "srcnode ho$t\n", 0, -OW_ERR_ADDRESS, 1, "not an address or host name" },
        { "srcnode "
          "a123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456"
          "789"
          "a123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456"
          "789"
          "a12345678901234567890123456789012345678901234567890123456\n",
          0, -OW_ERR_ADDRESS, 1, "host name too long" },
        /* testports */
        { "testports 9960-8760\n", 0, -OW_ERR_PORT, 1, "'testports' must be 0 or LOW-HIGH" },
        { "testports 0-100\n", 0, -OW_ERR_PORT, 1, "'0-100'" },
        { "testports 8760-\n", 0, -OW_ERR_PORT, 1, "" },
        { "testports -9960\n", 0, -OW_ERR_PORT, 1, "" },
        { "testports 8760-65536\n", 0, -OW_ERR_PORT, 1, "" },
        { "testports 8760-9960x\n", 0, -OW_ERR_PORT, 1, "" },
        { "testports 8760:9960\n", 0, -OW_ERR_PORT, 1, "" },
        { "testports +8760\n", 0, -OW_ERR_PORT, 1, "" },
        { "testports\n", 0, -OW_ERR_VALUE, 1, "needs a value" },
        /* diskfudge */
        { "diskfudge 0.99\n", 0, -OW_ERR_VALUE, 1, "from 1.0 to 10.0, got '0.99'" },
        { "diskfudge 10.01\n", 0, -OW_ERR_VALUE, 1, "'diskfudge'" },
        { "diskfudge 11\n", 0, -OW_ERR_VALUE, 1, "'diskfudge'" },
        { "diskfudge 1e0\n", 0, -OW_ERR_VALUE, 1, "'diskfudge'" },
        { "diskfudge -2\n", 0, -OW_ERR_VALUE, 1, "'diskfudge'" },
        { "diskfudge .\n", 0, -OW_ERR_VALUE, 1, "'diskfudge'" },
        { "diskfudge nan\n", 0, -OW_ERR_VALUE, 1, "'diskfudge'" },
        /* seconds and counts */
        { "dieby -1\n", 0, -OW_ERR_VALUE, 1, "'dieby' must be whole seconds" },
        { "dieby 86401\n", 0, -OW_ERR_VALUE, 1, "'dieby'" },
        { "dieby 5s\n", 0, -OW_ERR_VALUE, 1, "'dieby'" },
        { "controltimeout 604801\n", 0, -OW_ERR_VALUE, 1, "'controltimeout'" },
        { "controltimeout 1.5\n", 0, -OW_ERR_VALUE, 1, "'controltimeout'" },
        { "controltimeout 99999999999999999999999\n", 0, -OW_ERR_VALUE, 1, "'controltimeout'" },
        { "maxcontrolsessions 1048577\n", 0, -OW_ERR_VALUE, 1, "'maxcontrolsessions'" },
        { "maxcontrolsessions many\n", 0, -OW_ERR_VALUE, 1, "'maxcontrolsessions'" },
        { "pbkdf2_count 1023\n", 0, -OW_ERR_PBKDF2_COUNT, 1, "'pbkdf2_count' must be from 1024" },
        { "pbkdf2_count 0\n", 0, -OW_ERR_PBKDF2_COUNT, 1, "got '0'" },
        { "pbkdf2_count 1048577\n", 0, -OW_ERR_PBKDF2_COUNT, 1, "" },
        { "pbkdf2_count 99999999999999999999999\n", 0, -OW_ERR_PBKDF2_COUNT, 1, "" },
        { "pbkdf2_count 2k\n", 0, -OW_ERR_VALUE, 1, "whole number" },
        { "enddelay -1\n", 0, -OW_ERR_VALUE, 1, "'enddelay'" },
        { "enddelay 86400.5\n", 0, -OW_ERR_VALUE, 1, "'enddelay'" },
        { "enddelay 1e3\n", 0, -OW_ERR_VALUE, 1, "'enddelay'" },
        { "enddelay inf\n", 0, -OW_ERR_VALUE, 1, "'enddelay'" },
        /* The line of the offending token, across continuations. */
        { "verbose\n\n  testports \\\n  \\\n 9960-8760\n", 0, -OW_ERR_PORT, 5, "" },
        { "user \\\nowamp \\\n  extra\n", 0, -OW_ERR_SYNTAX, 3, "'extra'" },
        { "facility \\\nbogus\n", 0, -OW_ERR_VALUE, 2, "'bogus'" },
};

START_TEST(test_bad) {
        const BadCase *b = &bad[_i];
        OwConf *c = NULL;
        OwDiag d;
        ck_assert_int_eq(ow_conf_new(&c), 0);
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_USER, "before", NULL), 0);
        int r = ow_conf_parse(c, b->text, bad_case_len(b), "t.conf", &d);
        check_bad_case(b, r, &d, "t.conf");
        /* All or nothing: the configuration is untouched. */
        ck_assert_str_eq(c->user, "before");
        ck_assert_uint_eq(c->set, 1u << OW_CONF_USER);
        ow_conf_free(c);
}
END_TEST

START_TEST(test_syntax) {
        OwConf *c;

        /* Keywords are case-insensitive, whitespace is free, CRLF works. */
        c = parse_ok("  FACILITY\tlocal3  \r\nTestPorts   1000-2000\r\n");
        ck_assert_int_eq(c->facility, LOG_LOCAL3);
        ck_assert_uint_eq(c->testports.low, 1000);
        ow_conf_free(c);

        /* Continuation joins without adding blanks; a comment line
         * continued by a backslash is still just a comment. */
        c = parse_ok("# comment \\\ndatadir /var/\\\nlib/owamp\nuser \\\n owamp\n");
        ck_assert_str_eq(c->datadir, "/var/lib/owamp");
        ck_assert_str_eq(c->user, "owamp");
        ck_assert_uint_eq(c->line[OW_CONF_DATADIR], 2);
        ck_assert_uint_eq(c->line[OW_CONF_USER], 5);
        ow_conf_free(c);

        /* A value token starting with '#' is a comment; '#' inside a value
         * is part of it; no final newline needed. */
        OwConf *c2 = NULL;
        OwDiag d;
        ck_assert_int_eq(ow_conf_new(&c2), 0);
        ck_assert_int_eq(ow_conf_parse(c2, "datadir #/x\n", 12, "t", &d), -OW_ERR_VALUE);
        ck_assert_int_eq(ow_conf_parse(c2, "vardir /a#b", 11, "t", &d), 0);
        ck_assert_str_eq(c2->vardir, "/a#b");
        ow_conf_free(c2);

        /* Within a file, the last setting wins. */
        c = parse_ok("testports 1-2\ntestports 3-4\nverbose\nverbose\n");
        ck_assert_uint_eq(c->testports.low, 3);
        ck_assert_uint_eq(c->line[OW_CONF_TESTPORTS], 2);
        ow_conf_free(c);

        /* Values up to the reference's MAXPATHLEN-1, not beyond. */
        size_t n = 8 + OW_CONF_MAX_VALUE + 2;
        char *t = malloc(n + 1);
        ck_assert_ptr_nonnull(t);
        memcpy(t, "datadir ", 8);
        memset(t + 8, 'a', OW_CONF_MAX_VALUE);
        strcpy(t + 8 + OW_CONF_MAX_VALUE, "\n");
        c = parse_ok(t);
        ck_assert_uint_eq(strlen(c->datadir), OW_CONF_MAX_VALUE);
        ow_conf_free(c);
        t[8 + OW_CONF_MAX_VALUE] = 'a';
        t[8 + OW_CONF_MAX_VALUE + 1] = '\0';
        ck_assert_int_eq(ow_conf_new(&c), 0);
        ck_assert_int_eq(ow_conf_parse(c, t, strlen(t), "t", &d), -OW_ERR_TOO_LONG);
        ow_conf_free(c);
        free(t);

        /* Files larger than 1 MiB are refused without a line. */
        ck_assert_int_eq(ow_conf_new(&c), 0);
        t = calloc(1, 1024 * 1024 + 1);
        ck_assert_ptr_nonnull(t);
        memset(t, '\n', 1024 * 1024 + 1);
        ck_assert_int_eq(ow_conf_parse(c, t, 1024 * 1024 + 1, "big", &d), -OW_ERR_TOO_LONG);
        ck_assert_uint_eq(d.line, 0);
        ck_assert_int_eq(ow_conf_parse(c, t, 1024 * 1024, "big", &d), 0);
        free(t);
        ow_conf_free(c);
}
END_TEST

START_TEST(test_layers) {
        static const char main_conf[] = "user owamp\ntestports 8760-9960\ndiskfudge 3.0\nfacility local5\n";
        static const char dropin1[] = "# 10-ports.conf\ntestports 861-861\nverbose\n";
        static const char dropin2[] = "datadir /var/lib/owamp\nfacility daemon\n";
        static const char broken[] = "datadir /elsewhere\nbogus\n";
        OwConf *c = NULL;
        OwDiag d;

        ck_assert_int_eq(ow_conf_new(&c), 0);
        ck_assert_int_eq(ow_conf_parse(c, main_conf, strlen(main_conf), "owampd.conf", &d), 0);
        ck_assert_int_eq(ow_conf_parse(c, dropin1, strlen(dropin1), "10-ports.conf", &d), 0);
        ck_assert_int_eq(ow_conf_parse(c, dropin2, strlen(dropin2), "20-data.conf", &d), 0);
        /* A broken drop-in changes nothing and says where. */
        ck_assert_int_eq(ow_conf_parse(c, broken, strlen(broken), "30-broken.conf", &d), -OW_ERR_KEYWORD);
        char msg[512];
        ck_assert_str_eq(ow_diag_format(&d, msg, sizeof(msg)), "30-broken.conf:2: unknown keyword 'bogus'");

        ck_assert_str_eq(c->user, "owamp");
        ck_assert_uint_eq(c->testports.low, 861);
        ck_assert_uint_eq(c->testports.high, 861);
        ck_assert_uint_eq(c->line[OW_CONF_TESTPORTS], 2);
        ck_assert(c->diskfudge == 3.0);
        ck_assert(c->verbose);
        ck_assert_str_eq(c->datadir, "/var/lib/owamp");
        ck_assert_int_eq(c->facility, LOG_DAEMON);
        ck_assert(ow_conf_is_set(c, OW_CONF_FACILITY));
        ck_assert(!ow_conf_is_set(c, OW_CONF_GROUP));

        /* The command line comes last. */
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_TESTPORTS, "9000-9100", &d), 0);
        ck_assert_uint_eq(c->testports.low, 9000);
        ck_assert_uint_eq(c->line[OW_CONF_TESTPORTS], 0);
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_VERBOSE, NULL, &d), 0);
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_ROOTFOLLY, "", &d), 0);
        ck_assert(c->rootfolly);
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_AUTHMODE, "AE", &d), 0);
        ck_assert_uint_eq(c->authmode, OW_MODE_AUTHENTICATED | OW_MODE_ENCRYPTED);
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_TESTPORTS, "9100-9000", &d), -OW_ERR_PORT);
        ck_assert_uint_eq(d.line, 0);
        ck_assert_ptr_null(d.file);
        ck_assert_str_eq(
                ow_diag_format(&d, msg, sizeof(msg)),
                "'testports' must be 0 or LOW-HIGH with 1 <= LOW <= HIGH <= 65535, got '9100-9000'");
        ck_assert_uint_eq(c->testports.low, 9000); /* unchanged */
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_DATADIR, NULL, &d), -OW_ERR_VALUE);
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_VERBOSE, "x", &d), -OW_ERR_VALUE);
        ck_assert_int_eq(ow_conf_set(c, _OW_CONF_KEY_MAX, "x", &d), -EINVAL);

        /* Merge copies only what is set. */
        OwConf *over = NULL;
        ck_assert_int_eq(ow_conf_new(&over), 0);
        ck_assert_int_eq(ow_conf_set(over, OW_CONF_GROUP, "staff", &d), 0);
        ck_assert_int_eq(ow_conf_set(over, OW_CONF_ENDDELAY, "2.5", &d), 0);
        ck_assert_int_eq(ow_conf_merge(c, over), 0);
        ck_assert_str_eq(c->group, "staff");
        ck_assert_str_eq(c->user, "owamp");
        ck_assert_uint_eq(c->enddelay, OW_TIMESTAMP_FROM_SEC(2) | 0x80000000u);
        ck_assert_uint_eq(c->testports.low, 9000);
        ow_conf_free(over);
        ow_conf_free(c);
}
END_TEST

/* sessionlauncher: our keyword for how owampd runs session endpoints. */
START_TEST(test_session_launcher) {
        static const struct {
                const char *text;
                OwSessionLauncher l;
        } good[] = { { "sessionlauncher auto\n", OW_SESSION_LAUNCHER_AUTO },
                     { "sessionlauncher fork\n", OW_SESSION_LAUNCHER_FORK },
                     { "SessionLauncher SYSTEMD  # as a unit\n", OW_SESSION_LAUNCHER_SYSTEMD } };
        OwConf *c;
        OwDiag d;
        char msg[512];

        c = parse_ok("");
        ck_assert_int_eq(c->sessionlauncher, OW_SESSION_LAUNCHER_AUTO);
        ck_assert(!ow_conf_is_set(c, OW_CONF_SESSIONLAUNCHER));
        ow_conf_free(c);

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                c = parse_ok(good[i].text);
                ck_assert_int_eq(c->sessionlauncher, good[i].l);
                ck_assert(ow_conf_is_set(c, OW_CONF_SESSIONLAUNCHER));
                ck_assert_uint_eq(c->line[OW_CONF_SESSIONLAUNCHER], 1);
                ow_conf_free(c);
        }
        ck_assert_str_eq(ow_session_launcher_to_string(OW_SESSION_LAUNCHER_SYSTEMD), "systemd");
        ck_assert_ptr_null(ow_session_launcher_to_string(_OW_SESSION_LAUNCHER_MAX));

        /* Refused values leave the setting as it was, and say why. */
        c = parse_ok("sessionlauncher fork\n");
        static const char *const bad_values[] = { "sessionlauncher dbus\n", "sessionlauncher\n",
                                                  "sessionlauncher fork systemd\n", "sessionlauncher 1\n" };
        for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
                int r = ow_conf_parse(c, bad_values[i], strlen(bad_values[i]), "t.conf", &d);
                ck_assert_msg(r < 0, "\"%s\" was accepted", bad_values[i]);
                ck_assert_int_eq(c->sessionlauncher, OW_SESSION_LAUNCHER_FORK);
        }
        ck_assert_int_eq(ow_conf_parse(c, bad_values[0], strlen(bad_values[0]), "t.conf", &d), -OW_ERR_VALUE);
        ck_assert_str_eq(ow_diag_format(&d, msg, sizeof(msg)),
                         "t.conf:1: 'sessionlauncher' must be one of auto, fork, systemd, got 'dbus'");

        /* A drop-in or the command line overrides it; merge copies it. */
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_SESSIONLAUNCHER, "systemd", &d), 0);
        ck_assert_int_eq(c->sessionlauncher, OW_SESSION_LAUNCHER_SYSTEMD);
        OwConf *dst = NULL;
        ck_assert_int_eq(ow_conf_new(&dst), 0);
        ck_assert_int_eq(ow_conf_merge(dst, c), 0);
        ck_assert_int_eq(dst->sessionlauncher, OW_SESSION_LAUNCHER_SYSTEMD);
        ck_assert(ow_conf_is_set(dst, OW_CONF_SESSIONLAUNCHER));
        ow_conf_free(dst);
        ow_conf_free(c);
}
END_TEST

/* maxtestsessions: our global bound on test sessions (issue 11). */
START_TEST(test_max_test_sessions) {
        OwConf *c;
        OwDiag d;
        char msg[512];

        c = parse_ok("");
        ck_assert_uint_eq(c->maxtestsessions, 0); /* auto */
        ck_assert(!ow_conf_is_set(c, OW_CONF_MAXTESTSESSIONS));
        ow_conf_free(c);

        c = parse_ok("maxtestsessions 1\n");
        ck_assert_uint_eq(c->maxtestsessions, 1);
        ck_assert(ow_conf_is_set(c, OW_CONF_MAXTESTSESSIONS));
        ow_conf_free(c);
        c = parse_ok("MaxTestSessions 65536 # the most\n");
        ck_assert_uint_eq(c->maxtestsessions, OW_CONF_MAXTESTSESSIONS_MAX);
        ow_conf_free(c);

        /* auto after a number goes back to auto, and counts as set. */
        c = parse_ok("maxtestsessions 12\nmaxtestsessions AUTO\n");
        ck_assert_uint_eq(c->maxtestsessions, 0);
        ck_assert(ow_conf_is_set(c, OW_CONF_MAXTESTSESSIONS));
        ck_assert_uint_eq(c->line[OW_CONF_MAXTESTSESSIONS], 2);
        ow_conf_free(c);

        /* 0 is not "unlimited" here; refused values leave it as it was. */
        c = parse_ok("maxtestsessions 40\n");
        static const char *const bad_values[] = { "maxtestsessions 0\n",      "maxtestsessions 65537\n",
                                                  "maxtestsessions -1\n",     "maxtestsessions many\n",
                                                  "maxtestsessions\n",        "maxtestsessions 1 2\n",
                                                  "maxtestsessions 4294967297\n" };
        for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
                int r = ow_conf_parse(c, bad_values[i], strlen(bad_values[i]), "t.conf", &d);
                ck_assert_msg(r < 0, "\"%s\" was accepted", bad_values[i]);
                ck_assert_uint_eq(c->maxtestsessions, 40);
        }
        ck_assert_int_eq(ow_conf_parse(c, bad_values[0], strlen(bad_values[0]), "t.conf", &d), -OW_ERR_VALUE);
        ck_assert_str_eq(ow_diag_format(&d, msg, sizeof(msg)),
                         "t.conf:1: 'maxtestsessions' must be auto or a count from 1 to 65536, got '0'");

        /* The command line (or a drop-in) over it; merge copies it. */
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_MAXTESTSESSIONS, "7", &d), 0);
        OwConf *dst = NULL;
        ck_assert_int_eq(ow_conf_new(&dst), 0);
        ck_assert_int_eq(ow_conf_merge(dst, c), 0);
        ck_assert_uint_eq(dst->maxtestsessions, 7);
        ck_assert(ow_conf_is_set(dst, OW_CONF_MAXTESTSESSIONS));
        ow_conf_free(dst);
        ow_conf_free(c);
}
END_TEST

/* The limits against hostile clients: defaults, bounds, merge. */
START_TEST(test_hostile_limits) {
        OwConf *c;
        OwDiag d;
        char msg[512];

        c = parse_ok("");
        ck_assert_uint_eq(c->setuptimeout_sec, 30);
        ck_assert_uint_eq(c->maxcontrolsessionsperaddr, 64);
        ck_assert_uint_eq(c->maxauthfailures, 5);
        ck_assert_uint_eq(c->authfailwindow_sec, 60);
        ck_assert_uint_eq(c->authbackoff_sec, 60);
        ow_conf_free(c);

        c = parse_ok("setuptimeout 0\nMaxControlSessionsPerAddr 0\nmaxauthfailures 0\nauthfailwindow 1\n"
                     "authbackoff 1\n");
        ck_assert_uint_eq(c->setuptimeout_sec, 0);
        ck_assert_uint_eq(c->maxcontrolsessionsperaddr, 0);
        ck_assert_uint_eq(c->maxauthfailures, 0);
        ck_assert_uint_eq(c->authfailwindow_sec, 1);
        ck_assert_uint_eq(c->authbackoff_sec, 1);
        ck_assert(ow_conf_is_set(c, OW_CONF_AUTHBACKOFF));
        ck_assert_uint_eq(c->line[OW_CONF_AUTHBACKOFF], 5);
        ow_conf_free(c);

        c = parse_ok("setuptimeout 3600\nmaxcontrolsessionsperaddr 1048576\nmaxauthfailures 1000000\n"
                     "authfailwindow 86400\nauthbackoff 86400\n");
        ck_assert_uint_eq(c->setuptimeout_sec, 3600);
        ck_assert_uint_eq(c->maxcontrolsessionsperaddr, 1048576);
        ck_assert_uint_eq(c->maxauthfailures, 1000000);
        ck_assert_uint_eq(c->authfailwindow_sec, 86400);
        ck_assert_uint_eq(c->authbackoff_sec, 86400);

        static const char *const bad_values[] = {
                "setuptimeout 3601\n", "setuptimeout -1\n", "setuptimeout 1.5\n",
                "maxcontrolsessionsperaddr 1048577\n", "maxauthfailures 1000001\n", "authfailwindow 0\n",
                "authbackoff 0\n", "authbackoff 86401\n", "authbackoff\n", "authbackoff 1 2\n",
        };
        for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
                int r = ow_conf_parse(c, bad_values[i], strlen(bad_values[i]), "t.conf", &d);
                ck_assert_msg(r < 0, "\"%s\" was accepted", bad_values[i]);
        }
        /* Refused values leave the settings as they were. */
        ck_assert_uint_eq(c->setuptimeout_sec, 3600);
        ck_assert_uint_eq(c->authbackoff_sec, 86400);
        ck_assert_int_eq(ow_conf_parse(c, "authfailwindow 0\n", 17, "t.conf", &d), -OW_ERR_VALUE);
        ck_assert_str_eq(ow_diag_format(&d, msg, sizeof(msg)),
                         "t.conf:1: 'authfailwindow' must be whole seconds from 1 to 86400, got '0'");

        /* The command line's copy wins; merge copies every one. */
        OwConf *dst = NULL;
        ck_assert_int_eq(ow_conf_new(&dst), 0);
        ck_assert_int_eq(ow_conf_set(c, OW_CONF_SETUPTIMEOUT, "7", &d), 0);
        ck_assert_int_eq(ow_conf_merge(dst, c), 0);
        ck_assert_uint_eq(dst->setuptimeout_sec, 7);
        ck_assert_uint_eq(dst->maxcontrolsessionsperaddr, 1048576);
        ck_assert_uint_eq(dst->maxauthfailures, 1000000);
        ck_assert_uint_eq(dst->authfailwindow_sec, 86400);
        ck_assert_uint_eq(dst->authbackoff_sec, 86400);
        ow_conf_free(dst);
        ow_conf_free(c);
}
END_TEST

START_TEST(test_keys) {
        for (int k = 0; k < _OW_CONF_KEY_MAX; k++) {
                const char *n = ow_conf_key_to_string((OwConfKey) k);
                ck_assert_ptr_nonnull(n);
                ck_assert_int_eq(ow_conf_key_from_string(n), k);
        }
        ck_assert_int_eq(ow_conf_key_from_string("PBKDF2_Count"), OW_CONF_PBKDF2_COUNT);
        ck_assert_int_eq(ow_conf_key_from_string("pbkdf2"), -OW_ERR_KEYWORD);
        ck_assert_int_eq(ow_conf_key_from_string(NULL), -OW_ERR_KEYWORD);
        ck_assert_ptr_null(ow_conf_key_to_string(_OW_CONF_KEY_MAX));
        int f;
        ck_assert_int_eq(ow_conf_facility_from_string("LOCAL1", &f), 0);
        ck_assert_int_eq(f, LOG_LOCAL1);
        ck_assert_int_eq(ow_conf_facility_from_string("", &f), -OW_ERR_VALUE);
        ck_assert_ptr_null(ow_conf_facility_to_string(12345));
        ck_assert_ptr_null(ow_log_level_to_string((OwLogLevel) 99));

        OwDiag d;
        char buf[64];
        ow_diag_set(&d, "f", 3, 0, "m");
        ck_assert_str_eq(ow_diag_format(&d, buf, sizeof(buf)), "f:3: m");
        ow_diag_set(&d, "f", 0, 0, "m");
        ck_assert_str_eq(ow_diag_format(&d, buf, sizeof(buf)), "f: m");
        ow_diag_set(&d, NULL, 7, 0, "m");
        ck_assert_str_eq(ow_diag_format(&d, buf, sizeof(buf)), "line 7: m");
        ck_assert_str_eq(ow_diag_format(NULL, buf, sizeof(buf)), "");
        ck_assert_int_eq(ow_diag_set(NULL, "f", 1, -5, "x"), -5);
}
END_TEST

/* conf/owampd.conf, as installed: every keyword there, commented out, and
 * each showing its default (or an example where there is none). */
START_TEST(test_shipped_conf) {
        uint8_t *buf;
        size_t len;
        OwConf *c = NULL, *def = NULL;
        OwDiag d;
        bool seen[_OW_CONF_KEY_MAX] = {};

        test_read_file(CONF_EXAMPLES_DIR "/owampd.conf", &buf, &len);
        ck_assert_int_eq(ow_conf_new(&c), 0);
        ck_assert_int_eq(ow_conf_parse(c, buf, len, "owampd.conf", &d), 0);
        ck_assert_uint_eq(c->set, 0);
        ow_conf_free(c);
        ck_assert_int_eq(ow_conf_new(&def), 0);

        /* "#keyword value" lines, uncommented one at a time. */
        char *text = malloc(len + 1);
        ck_assert_ptr_nonnull(text);
        memcpy(text, buf, len);
        text[len] = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                if (line[0] != '#' || line[1] < 'a' || line[1] > 'z')
                        continue;
                char word[64];
                size_t n = strcspn(line + 1, " \t");
                ck_assert_uint_lt(n, sizeof(word));
                memcpy(word, line + 1, n);
                word[n] = 0;
                int k = ow_conf_key_from_string(word);
                if (k < 0)
                        continue; /* a comment that starts with a word */
                seen[k] = true;
                c = parse_ok(line + 1);
                ck_assert(ow_conf_is_set(c, (OwConfKey) k));
                switch (k) {
                case OW_CONF_FACILITY:
                        ck_assert_int_eq(c->facility, def->facility);
                        break;
                case OW_CONF_LOGLEVEL:
                        ck_assert_int_eq(c->loglevel, def->loglevel);
                        break;
                case OW_CONF_AUTHMODE:
                        ck_assert_uint_eq(c->authmode, def->authmode);
                        break;
                case OW_CONF_SRCNODE:
                        ck_assert_str_eq(c->srcnode.host, def->srcnode.host);
                        ck_assert_uint_eq(c->srcnode.port, 861); /* what port 0 means */
                        break;
                case OW_CONF_TESTPORTS:
                        ck_assert_uint_eq(c->testports.low, def->testports.low);
                        ck_assert_uint_eq(c->testports.high, def->testports.high);
                        break;
                case OW_CONF_DISKFUDGE:
                        ck_assert(c->diskfudge == def->diskfudge);
                        break;
                case OW_CONF_DIEBY:
                        ck_assert_uint_eq(c->dieby_sec, def->dieby_sec);
                        break;
                case OW_CONF_CONTROLTIMEOUT:
                        ck_assert_uint_eq(c->controltimeout_sec, def->controltimeout_sec);
                        break;
                case OW_CONF_PBKDF2_COUNT:
                        ck_assert_uint_eq(c->pbkdf2_count, def->pbkdf2_count);
                        break;
                case OW_CONF_ENDDELAY:
                        ck_assert_uint_eq(c->enddelay, def->enddelay);
                        break;
                case OW_CONF_MAXCONTROLSESSIONS:
                        ck_assert_uint_eq(c->maxcontrolsessions, def->maxcontrolsessions);
                        break;
                case OW_CONF_SESSIONLAUNCHER:
                        ck_assert_int_eq(c->sessionlauncher, def->sessionlauncher);
                        break;
                case OW_CONF_SETUPTIMEOUT:
                        ck_assert_uint_eq(c->setuptimeout_sec, def->setuptimeout_sec);
                        break;
                case OW_CONF_MAXCONTROLSESSIONSPERADDR:
                        ck_assert_uint_eq(c->maxcontrolsessionsperaddr, def->maxcontrolsessionsperaddr);
                        break;
                case OW_CONF_MAXAUTHFAILURES:
                        ck_assert_uint_eq(c->maxauthfailures, def->maxauthfailures);
                        break;
                case OW_CONF_AUTHFAILWINDOW:
                        ck_assert_uint_eq(c->authfailwindow_sec, def->authfailwindow_sec);
                        break;
                case OW_CONF_AUTHBACKOFF:
                        ck_assert_uint_eq(c->authbackoff_sec, def->authbackoff_sec);
                        break;
                case OW_CONF_MAXTESTSESSIONS:
                        ck_assert_uint_eq(c->maxtestsessions, def->maxtestsessions);
                        break;
                default:
                        /* user, group, datadir, vardir: no default, an
                         * example; the flags: off unless given. */
                        break;
                }
                ow_conf_free(c);
        }
        for (int k = 0; k < _OW_CONF_KEY_MAX; k++)
                ck_assert_msg(seen[k], "conf/owampd.conf does not mention %s",
                              ow_conf_key_to_string((OwConfKey) k));
        free(text);
        free(buf);
        ow_conf_free(def);
}
END_TEST

int main(void) {
        Suite *s = suite_create("conf");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_reference_conf);
        tcase_add_test(tc, test_good_values);
        tcase_add_test(tc, test_good_values2);
        tcase_add_test(tc, test_good_numbers);
        tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
        tcase_add_test(tc, test_syntax);
        tcase_add_test(tc, test_layers);
        tcase_add_test(tc, test_session_launcher);
        tcase_add_test(tc, test_hostile_limits);
        tcase_add_test(tc, test_max_test_sessions);
        tcase_add_test(tc, test_keys);
        tcase_add_test(tc, test_shipped_conf);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
