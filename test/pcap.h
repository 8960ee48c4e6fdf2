/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Minimal pcap reader for the test suite: loads a capture of one OWAMP
 * exchange (Ethernet or Linux cooked link type, IPv4 or IPv6), reassembles
 * the control TCP connection into one byte stream per direction and lists
 * the UDP datagrams. Test-only code: it trusts the capture files we ship.
 */

#include <stddef.h>
#include <stdint.h>

typedef struct PcapDatagram {
        uint64_t time_usec; /* capture time, Unix microseconds */
        int family;         /* AF_INET or AF_INET6 */
        uint8_t src[16], dst[16];
        uint16_t sport, dport;
        uint8_t *data;
        size_t len;
} PcapDatagram;

typedef struct PcapTrace {
        uint16_t control_port;
        uint8_t *c2s; /* client -> server control bytes, in order */
        size_t c2s_len;
        uint8_t *s2c; /* server -> client control bytes, in order */
        size_t s2c_len;
        PcapDatagram *udp;
        size_t n_udp;
} PcapTrace;

/* Returns 0, or a negative errno (-EBADMSG for a malformed capture). */
int pcap_load(const char *path, uint16_t control_port, PcapTrace *ret);
void pcap_trace_done(PcapTrace *t);
