/* SPDX-License-Identifier: Apache-2.0 */

/*
 * owping's command line: the reference's options, their checks and its
 * usage text.
 */

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "owping.h"
#include "ow-sid.h"
#include "ow-time.h"
#include "report-io.h"
#include "units.h"
#include "usage.h"

/* The longest -i, -E, -L: a day, in seconds. */
#define SEC_PER_DAY 86400

volatile sig_atomic_t ping_interrupted;

static const struct option longopts[] = {
        { "ipv4", no_argument, NULL, '4' },
        { "ipv6", no_argument, NULL, '6' },
        { "auth-mode", required_argument, NULL, 'A' },
        { "pass-phrase-file", required_argument, NULL, 'k' },
        { "source", required_argument, NULL, 'S' },
        { "user", required_argument, NULL, 'u' },
        { "interface", required_argument, NULL, 'B' },
        { "control-dscp", required_argument, NULL, 'm' },
        { "count", required_argument, NULL, 'c' },
        { "dscp", required_argument, NULL, 'D' },
        { "end-delay", required_argument, NULL, 'E' },
        { "save-from", required_argument, NULL, 'F' },
        { "from", no_argument, NULL, 'f' },
        { "interval", required_argument, NULL, 'i' },
        { "loss-timeout", required_argument, NULL, 'L' },
        { "port-range", required_argument, NULL, 'P' },
        { "padding", required_argument, NULL, 's' },
        { "delay-start", required_argument, NULL, 'z' },
        { "save-to", required_argument, NULL, 'T' },
        { "to", no_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        REPORT_LONG_OPTIONS,
        USAGE_VERSION_OPTION,
        {},
};

/* On stderr, as the reference: msg ("" for -h) on its own line first. */
void ping_usage(const char *msg) {
        FILE *f = stderr;
        client_usage_head(f, "owping", msg, "[arguments] testaddr [servaddr]");
        fputs("\n"
              "              [Test Args]\n"
              "\n"
              "   -c count       number of test packets\n"
              "   -D DSCP        RFC 2474 style DSCP value for TOS byte\n"
              "   -f | -F file   perform one-way test from testhost [and save results to file]\n"
              "   -i wait        mean average time between packets (seconds)\n"
              "   -L timeout     maximum time to wait for a packet before declaring it lost (seconds)\n"
              "   -P portrange   port range to use during the test\n"
              "   -s padding     size of the padding added to each packet (bytes)\n"
              "   -t | -T file   perform one-way test to testhost [and save results to file]\n"
              "   -z delayStart  time to wait before executing test (seconds)\n"
              "\n",
              f);
        client_args_usage(f);
        fputc('\n', f);
        report_usage_output_args(f);
        client_usage_version(f);
        usage_more(f, "   -E enddelay    time to wait after the last packet before stopping the sessions "
                      "(seconds)\n"
                      "   -X, -Y, -y     accepted and ignored (NAT options of the reference's later "
                      "versions)\n" CLIENT_USAGE_MORE REPORT_USAGE_MORE
                      "   --version      print the version and exit\n");
        usage_long_options(f, longopts);
}

int ping_fail(const char *fmt, ...) {
        va_list ap;
        fputs("owping: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return EXIT_FAILURE;
}

/* -i: "0.1", "0.1e", "0.02f", comma lists for several slots. */
static int parse_slots(const char *spec, OwSlot **ret, uint32_t *ret_n) {
        _cleanup_free_ char *copy = strdup(spec);
        _cleanup_free_ OwSlot *slots = NULL;
        uint32_t n = 1, i = 0;

        if (!copy)
                return -ENOMEM;
        for (const char *p = spec; *p; p++)
                if (*p == ',')
                        n++;
        if (n > OW_MAX_SLOTS)
                return -E2BIG;
        slots = calloc(n, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *end;
                errno = 0;
                double v = strtod(tok, &end);
                if (errno || end == tok || !(v > 0) || v > SEC_PER_DAY)
                        return -EINVAL;
                if (*end == 0 || ((*end == 'e' || *end == 'E') && end[1] == 0))
                        slots[i].type = OW_SLOT_EXPONENTIAL;
                else if ((*end == 'f' || *end == 'F') && end[1] == 0)
                        slots[i].type = OW_SLOT_FIXED;
                else
                        return -EINVAL;
                slots[i].param = (OwTimestamp) (v * (double) OW_TIMESTAMP_FROM_SEC(1)); /* as the reference: v * 2^32, truncated */
                if (slots[i].param == 0)
                        return -EINVAL;
                i++;
        }
        if (i != n)
                return -EINVAL;
        *ret = TAKE_PTR(slots);
        *ret_n = n;
        return 0;
}

static int parse_double(const char *s, double min, double max, double *ret) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || *end || !(v >= min) || !(v <= max))
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_u32(const char *s, uint32_t *ret) {
        char *end;
        if (!*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}


int ping_parse_args(int argc, char **argv, PingOptions *o, int *ret_optind) {
        /* No '+': options may follow the addresses, as GNU getopt lets them
         * with the reference. */
        static const char optstring[] = "64A:k:S:u:B:XYym:c:D:E:F:i:L:P:s:z:" REPORT_SHORT_OPTIONS "hftT:";
        const char *msg = NULL;
        int c, r;
        uint8_t dscp;

        ow_report_options_init(&o->report);
        o->count = 100;
        o->port_low = DEFAULT_PORT_LOW;
        o->port_high = DEFAULT_PORT_HIGH;
        client_args_init(&o->conn);

        while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
                /* The output options, shared with owstats and owfetch. */
                r = report_args_parse(&o->report, &o->percentiles, c, optarg, &msg);
                if (r < 0) {
                        ping_usage(msg);
                        return EXIT_FAILURE;
                }
                if (r > 0)
                        continue;
                r = client_args_parse(&o->conn, "owping", c, optarg);
                if (r < 0)
                        return EXIT_FAILURE;
                if (r > 0)
                        continue;
                switch (c) {
                case 'X':
                case 'Y':
                case 'y':
                        fprintf(stderr, "owping: -%c (NAT traversal) is not supported; ignoring it\n", c);
                        break;
                case 'c':
                        if (parse_u32(optarg, &o->count) < 0 || o->count == 0)
                                return ping_fail("Invalid -c value '%s': positive integer expected", optarg);
                        break;
                case 'D':
                        if (ow_dscp_from_string(optarg, &dscp) < 0)
                                return ping_fail("Invalid DSCP value (-D): \"%s\"", optarg);
                        o->type_p = ow_typep_from_dscp(dscp);
                        break;
                case 'E':
                        if (parse_double(optarg, 0, SEC_PER_DAY, &o->enddelay) < 0)
                                return ping_fail("Invalid '-E' value '%s': positive float expected", optarg);
                        o->have_enddelay = true;
                        break;
                case 'F':
                        o->save_from = optarg;
                        _fallthrough_;
                case 'f':
                        o->from = true;
                        break;
                case 'T':
                        o->save_to = optarg;
                        _fallthrough_;
                case 't':
                        o->to = true;
                        break;
                case 'i':
                        free(o->slots);
                        o->slots = NULL;
                        if (parse_slots(optarg, &o->slots, &o->n_slots) < 0)
                                return ping_fail("Invalid schedule (-i) '%s'", optarg);
                        break;
                case 'L':
                        if (parse_double(optarg, 0, SEC_PER_DAY, &o->loss_timeout) < 0)
                                return ping_fail("Invalid '-L' value '%s': positive float expected", optarg);
                        break;
                case 'P':
                        if (net_parse_port_range(optarg, &o->port_low, &o->port_high) < 0)
                                return ping_fail("Invalid test port range (-P) '%s'", optarg);
                        break;
                case 's':
                        if (parse_u32(optarg, &o->padding) < 0)
                                return ping_fail("Invalid -s value '%s': positive integer expected", optarg);
                        if (o->padding > MAX_PADDING)
                                o->padding = MAX_PADDING;
                        break;
                case 'z':
                        if (parse_double(optarg, 0, SEC_PER_DAY * 365, &o->delay_start) < 0)
                                return ping_fail("Invalid '-z' value '%s': positive float expected", optarg);
                        break;
                case USAGE_ARG_VERSION:
                        usage_version("owping");
                        exit(EXIT_SUCCESS);
                default: /* -h, or an option getopt did not know: the reference exits 0 */
                        ping_usage("");
                        exit(EXIT_SUCCESS);
                }
        }
        if (!o->to && !o->from)
                o->to = o->from = true;
        if (!o->slots) {
                o->slots = calloc(1, sizeof(OwSlot));
                if (!o->slots)
                        return ping_fail("Out of memory");
                o->slots[0] = (OwSlot) { .type = OW_SLOT_EXPONENTIAL, .param = ow_duration_from_nsec(100 * NSEC_PER_MSEC) };
                o->n_slots = 1;
        }
        *ret_optind = optind;
        return 0;
}
