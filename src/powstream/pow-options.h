/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * powstream's command line: perfSONAR powstream 5.2.3's options with its
 * meanings and defaults (powstream(1)), plus our long options.
 */

#include <stdbool.h>
#include <stdint.h>

#include "client-args.h"

/* The reference's defaults. */
#define POW_DEFAULT_COUNT 300
#define POW_DEFAULT_INTERVAL_SEC 0.1
#define POW_DEFAULT_LOSS_SEC 10.0
#define POW_DEFAULT_RETRY_SEC 60
#define POW_DEFAULT_BUCKET_SEC 0.0001
#define POW_DEFAULT_PORT_LOW 8760
#define POW_DEFAULT_PORT_HIGH 9960
#define POW_MAX_PADDING 0xFFFF

typedef struct PowOptions {
        ClientArgs conn;         /* -4 -6 -A -k -S -B -u */
        bool sender;             /* -t: we send, the server receives */
        uint32_t count;          /* -c */
        double enddelay;         /* -E, seconds */
        bool have_enddelay;
        double interval;         /* -i, mean seconds between packets */
        double loss;             /* -L, seconds */
        uint16_t port_low, port_high; /* -P; 0-0 = ephemeral */
        uint32_t padding;        /* -s */
        uint32_t delay_start;    /* -z, seconds */
        uint32_t retry;          /* -I, seconds */
        double bucket_width;     /* -b, seconds */
        const char *dir;         /* -d, NULL = the current directory */
        int facility;            /* -e */
        int log_level;           /* -g: most verbose syslog priority logged, -1 = none */
        uint32_t sub_packets;    /* -N, 0 = no sub-sessions */
        bool print_files;        /* -p */
        bool quiet_stderr;       /* -R */
        unsigned verbose;        /* -v */
        bool unix_time;          /* -U */
        bool json;               /* --json */
        const char *name;        /* --name, default testaddr */
        const char *prometheus_dir; /* --prometheus-dir, NULL = none */
        const char *testaddr, *servaddr;
} PowOptions;

/* 0: parsed, run; 1: done (usage or version printed), exit 0; < 0:
 * refused (message printed), exit 1. */
int pow_options_parse(int argc, char **argv, PowOptions *o);
void pow_options_done(PowOptions *o);
