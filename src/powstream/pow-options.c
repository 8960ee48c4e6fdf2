/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "log.h"
#include "net.h"
#include "pow-options.h"
#include "usage.h"

enum {
        ARG_JSON = 0x100,
        ARG_NAME,
        ARG_PROMETHEUS_DIR,
        ARG_CONFIG,
};

/* The reference's short options, in its order (POSIX: the first operand
 * ends them, as the reference sets POSIXLY_CORRECT). */
#define POW_SHORT_OPTIONS "+46A:k:S:B:u:I:c:E:i:L:s:tz:P:b:d:e:g:N:pRvUh"

static const struct option longopts[] = {
        { "ipv4", no_argument, NULL, '4' },
        { "ipv6", no_argument, NULL, '6' },
        { "auth-mode", required_argument, NULL, 'A' },
        { "pass-phrase-file", required_argument, NULL, 'k' },
        { "source", required_argument, NULL, 'S' },
        { "interface", required_argument, NULL, 'B' },
        { "user", required_argument, NULL, 'u' },
        { "retry-delay", required_argument, NULL, 'I' },
        { "count", required_argument, NULL, 'c' },
        { "end-delay", required_argument, NULL, 'E' },
        { "interval", required_argument, NULL, 'i' },
        { "loss-timeout", required_argument, NULL, 'L' },
        { "padding", required_argument, NULL, 's' },
        { "to", no_argument, NULL, 't' },
        { "delay-start", required_argument, NULL, 'z' },
        { "port-range", required_argument, NULL, 'P' },
        { "bucket-width", required_argument, NULL, 'b' },
        { "directory", required_argument, NULL, 'd' },
        { "facility", required_argument, NULL, 'e' },
        { "log-level", required_argument, NULL, 'g' },
        { "sub-session", required_argument, NULL, 'N' },
        { "print-files", no_argument, NULL, 'p' },
        { "no-stderr", no_argument, NULL, 'R' },
        { "verbose", no_argument, NULL, 'v' },
        { "unix-time", no_argument, NULL, 'U' },
        { "json", no_argument, NULL, ARG_JSON },
        { "name", required_argument, NULL, ARG_NAME },
        { "prometheus-dir", required_argument, NULL, ARG_PROMETHEUS_DIR },
        { "config", required_argument, NULL, ARG_CONFIG },
        { "help", no_argument, NULL, 'h' },
        USAGE_VERSION_OPTION,
        {},
};

static void usage(const char *msg) {
        FILE *f = stderr;

        if (msg)
                fprintf(f, "powstream: %s\n", msg);
        fputs("usage: powstream [arguments] testaddr [servaddr]\n"
              "[arguments] are as follows: \n"
              "\n"
              "   -h             print this message and exit\n"
              "\n"
              "\n"
              "              [Test Args]\n"
              "\n"
              "   -t             sets the tests direction from client to server\n"
              "   -c count       number of test packets (per complete session)\n"
              "   -E endDelay    time to wait before sending stop-session message\n"
              "   -i wait        mean average time between packets (seconds)\n"
              "   -L timeout     maximum time to wait for a packet (seconds)\n"
              "   -P portrange   test port range to use (must contain at least 2 ports)\n"
              "   -s padding     size of the padding added to each packet (bytes)\n"
              "   -z delayStart  time to wait before starting first test (seconds)\n"
              "\n"
              "              [Connection Args]\n"
              "\n"
              "   -4             use IPv4 only\n"
              "   -6             use IPv6 only\n"
              "   -A authmode    requested modes: [A]uthenticated, [E]ncrypted, [O]pen\n"
              "   -k pffile      pass-phrase file to use with Authenticated/Encrypted modes\n"
              "   -S srcaddr     specify the local address or interface for control connection and tests\n"
              "   -B interface   specify the interface to use for control connection and tests\n"
              "   -u username    username to use with Authenticated/Encrypted modes\n"
              "   -I retryDelay  time to wait between failed connections (default: 60 seconds)\n"
              "\n"
              "              [Output Args]\n"
              "\n"
              "   -b bucketWidth create summary files with buckets(seconds)\n"
              "   -d dir         directory to save session file in\n"
              "   -e facility    syslog facility to log to\n"
              "   -g loglevel    severity log messages to report to syslog Valid values: NONE, FATAL, WARN, INFO, "
              "DEBUG, ALL\n"
              "   -N count       number of test packets (per sub-session)\n"
              "   -p             print filenames to stdout\n"
              "   -R             Only send messages to syslog (not STDERR)\n"
              "   -v             include more verbose output\n"
              "   -U             Adds UNIX timestamps to summary results\n",
              f);
        usage_more(f,
                   "   --json         one JSON document per completed (sub-)session on stdout (powstream(1))\n"
                   "   --name name    the stream's name in the JSON and the journal (default: testaddr)\n"
                   "   --prometheus-dir dir  node_exporter textfile collector file of the stream in dir\n"
                   "   --config file  the stream's options from file (owamp-streams.conf(5))\n");
        usage_long_options(f, longopts);
        client_usage_version(f);
}

static int parse_ulong(const char *s, uint32_t *ret) {
        char *end;
        unsigned long v;

        /* strtoul() as the reference, without its wrap of "-1". */
        if (!s[0] || s[0] == '-')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (*end || errno != 0 || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

static int parse_positive(const char *s, double max, double *ret) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (!s[0] || *end || errno != 0 || !isfinite(v) || v <= 0.0 || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* -g: the reference's report levels, as the most verbose priority kept. */
static int log_level_from_name(const char *s, int *ret) {
        static const struct {
                const char *name;
                int priority;
        } levels[] = {
                { "NONE", -1 },        { "FATAL", LOG_CRIT }, { "WARN", LOG_WARNING },
                { "INFO", LOG_INFO },  { "DEBUG", LOG_DEBUG }, { "ALL", LOG_DEBUG },
        };
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (strcasecmp(s, levels[i].name) == 0) {
                        *ret = levels[i].priority;
                        return 0;
                }
        return -EINVAL;
}

void pow_options_done(PowOptions *o) {
        client_args_done(&o->conn);
}

int pow_options_parse(int argc, char **argv, PowOptions *o) {
        int c, r;

        *o = (PowOptions){
                .count = POW_DEFAULT_COUNT,
                .interval = POW_DEFAULT_INTERVAL_SEC,
                .loss = POW_DEFAULT_LOSS_SEC,
                .port_low = POW_DEFAULT_PORT_LOW,
                .port_high = POW_DEFAULT_PORT_HIGH,
                .retry = POW_DEFAULT_RETRY_SEC,
                .bucket_width = POW_DEFAULT_BUCKET_SEC,
                .facility = LOG_USER,
                .log_level = LOG_INFO,
        };
        client_args_init(&o->conn);

        opterr = 0;
        while ((c = getopt_long(argc, argv, POW_SHORT_OPTIONS, longopts, NULL)) != -1) {
                r = client_args_parse(&o->conn, "powstream", c, optarg);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                switch (c) {
                case 't':
                        o->sender = true;
                        break;
                case 'c':
                        if (parse_ulong(optarg, &o->count) < 0 || o->count == 0) {
                                usage("Invalid value. Positive integer expected");
                                return -EINVAL;
                        }
                        break;
                case 'E':
                        if (parse_positive(optarg, 3600, &o->enddelay) < 0) {
                                usage("Invalid (-E) value. Positive float expected");
                                return -EINVAL;
                        }
                        o->have_enddelay = true;
                        break;
                case 'I':
                        if (parse_ulong(optarg, &o->retry) < 0) {
                                usage("Invalid (-I) value. Positive integer expected");
                                return -EINVAL;
                        }
                        break;
                case 'i':
                        if (parse_positive(optarg, 3600, &o->interval) < 0) {
                                usage("Invalid value. Positive float expected");
                                return -EINVAL;
                        }
                        break;
                case 'L':
                        if (parse_positive(optarg, 3600, &o->loss) < 0) {
                                usage("Invalid (-L) value. Positive float expected");
                                return -EINVAL;
                        }
                        break;
                case 's':
                        if (parse_ulong(optarg, &o->padding) < 0) {
                                usage("Invalid value. Positive integer expected");
                                return -EINVAL;
                        }
                        /* As the reference: larger requests are cut. */
                        o->padding = MIN(o->padding, (uint32_t) POW_MAX_PADDING);
                        break;
                case 'z':
                        if (parse_ulong(optarg, &o->delay_start) < 0) {
                                usage("Invalid (-z) value. Positive integer expected");
                                return -EINVAL;
                        }
                        break;
                case 'P':
                        r = net_parse_port_range(optarg, &o->port_low, &o->port_high);
                        if (r < 0) {
                                fprintf(stderr, "powstream: Invalid test port range specified.\n");
                                return -EINVAL;
                        }
                        if (o->port_low != 0 && o->port_high - o->port_low + 1 < 2) {
                                fprintf(stderr, "powstream: Invalid test port range specified: must contain at "
                                                "least 2 ports.\n");
                                return -EINVAL;
                        }
                        break;
                case 'b':
                        if (parse_positive(optarg, 3600, &o->bucket_width) < 0) {
                                usage("Invalid (-b) value. Positive float expected");
                                return -EINVAL;
                        }
                        break;
                case 'd':
                        o->dir = optarg;
                        break;
                case 'e':
                        o->facility = log_facility_from_name(optarg);
                        if (o->facility < 0) {
                                fprintf(stderr, "Invalid -e: Syslog facility \"%s\" unknown\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'g':
                        if (log_level_from_name(optarg, &o->log_level) < 0) {
                                fprintf(stderr, "Log level \"%s\" invalid\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'N':
                        if (parse_ulong(optarg, &o->sub_packets) < 0) {
                                usage("Invalid (-N) value. Positive integer expected");
                                return -EINVAL;
                        }
                        break;
                case 'p':
                        o->print_files = true;
                        break;
                case 'R':
                        o->quiet_stderr = true;
                        break;
                case 'v':
                        o->verbose++;
                        break;
                case 'U':
                        o->unix_time = true;
                        break;
                case ARG_JSON:
                        o->json = true;
                        break;
                case ARG_NAME:
                        if (!optarg[0] || strlen(optarg) > 255) {
                                fprintf(stderr, "powstream: Invalid --name: 1 to 255 characters expected\n");
                                return -EINVAL;
                        }
                        o->name = optarg;
                        break;
                case ARG_PROMETHEUS_DIR:
                        if (!optarg[0]) {
                                fprintf(stderr, "powstream: Invalid --prometheus-dir: a directory expected\n");
                                return -EINVAL;
                        }
                        o->prometheus_dir = optarg;
                        break;
                case ARG_CONFIG:
                        /* pow_config_apply() took every --config among the
                         * options: this one came after an operand. */
                        fprintf(stderr, "powstream: --config: give it among the options, before any operand\n");
                        return -EINVAL;
                case USAGE_ARG_VERSION:
                        usage_version("powstream");
                        return 1;
                case 'h':
                        usage(NULL);
                        return 1;
                default:
                        if (optopt && optopt < 0x100)
                                fprintf(stderr, "powstream: unknown option -%c\n", optopt);
                        else
                                fprintf(stderr, "powstream: unknown option %s\n", argv[optind - 1]);
                        usage(NULL);
                        return -EINVAL;
                }
        }

        if (argc - optind < 1 || argc - optind > 2) {
                usage(NULL);
                return -EINVAL;
        }
        o->testaddr = argv[optind];
        o->servaddr = argc - optind == 2 ? argv[optind + 1] : argv[optind];
        if (!o->name)
                o->name = o->testaddr;

        if (o->sub_packets > 0 && (o->count < o->sub_packets || o->count % o->sub_packets != 0)) {
                fprintf(stderr,
                        "powstream: Number of summary packets (-N %u) must be a divisor of the number of session "
                        "packets (-c %u).\n",
                        o->sub_packets, o->count);
                return -EINVAL;
        }
        return 0;
}
