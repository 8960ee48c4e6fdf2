/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"
#include "pcap.h"

#define LINKTYPE_ETHERNET 1
#define LINKTYPE_LINUX_SLL 113

typedef struct Stream {
        uint8_t *buf;
        size_t len;
        uint32_t next_seq;
        bool started;
} Stream;

static uint32_t rd32(const uint8_t *p, bool swap) {
        uint32_t v;
        memcpy(&v, p, 4);
        return swap ? __builtin_bswap32(v) : v;
}

static int stream_add(Stream *s, uint32_t seq, bool syn, const uint8_t *data, size_t len) {
        if (syn) {
                s->next_seq = seq + 1;
                s->started = true;
                return 0;
        }
        if (!s->started || len == 0)
                return 0;
        /* Captures on loopback have no loss; skip retransmitted bytes. */
        int32_t off = (int32_t) (s->next_seq - seq);
        if (off < 0)
                return -EBADMSG; /* a gap: not expected in our captures */
        if ((size_t) off >= len)
                return 0;
        data += off;
        len -= (size_t) off;
        uint8_t *n = realloc(s->buf, s->len + len);
        if (!n)
                return -ENOMEM;
        memcpy(n + s->len, data, len);
        s->buf = n;
        s->len += len;
        s->next_seq += (uint32_t) len;
        return 0;
}

static int handle_l4(PcapTrace *t, Stream *c2s, Stream *s2c, uint64_t tus, int family,
                     const uint8_t *src, const uint8_t *dst, int proto, const uint8_t *p, size_t len) {
        if (proto == 6) { /* TCP */
                if (len < 20)
                        return -EBADMSG;
                uint16_t sport = (uint16_t) (p[0] << 8 | p[1]);
                uint16_t dport = (uint16_t) (p[2] << 8 | p[3]);
                uint32_t seq = (uint32_t) p[4] << 24 | (uint32_t) p[5] << 16 | (uint32_t) p[6] << 8 | p[7];
                size_t hl = (size_t) (p[12] >> 4) * 4;
                bool syn = p[13] & 0x02;
                if (hl < 20 || hl > len)
                        return -EBADMSG;
                if (dport == t->control_port)
                        return stream_add(c2s, seq, syn, p + hl, len - hl);
                if (sport == t->control_port)
                        return stream_add(s2c, seq, syn, p + hl, len - hl);
                return 0;
        }
        if (proto == 17) { /* UDP */
                if (len < 8)
                        return -EBADMSG;
                size_t ulen = (size_t) (p[4] << 8 | p[5]);
                if (ulen < 8 || ulen > len)
                        return -EBADMSG;
                PcapDatagram *n = realloc(t->udp, (t->n_udp + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                t->udp = n;
                PcapDatagram *d = &t->udp[t->n_udp];
                *d = (PcapDatagram) {
                        .time_usec = tus,
                        .family = family,
                        .sport = (uint16_t) (p[0] << 8 | p[1]),
                        .dport = (uint16_t) (p[2] << 8 | p[3]),
                        .len = ulen - 8,
                };
                size_t alen = family == AF_INET ? 4 : 16;
                memcpy(d->src, src, alen);
                memcpy(d->dst, dst, alen);
                d->data = malloc(d->len ? d->len : 1);
                if (!d->data)
                        return -ENOMEM;
                memcpy(d->data, p + 8, d->len);
                t->n_udp++;
        }
        return 0;
}

int pcap_load(const char *path, uint16_t control_port, PcapTrace *ret) {
        _cleanup_free_ uint8_t *file = NULL;
        size_t size = 0;
        Stream c2s = {}, s2c = {};
        PcapTrace t = { .control_port = control_port };
        int r = 0;

        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        for (;;) {
                uint8_t chunk[65536];
                size_t n = fread(chunk, 1, sizeof(chunk), f);
                if (n == 0)
                        break;
                uint8_t *nf = realloc(file, size + n);
                if (!nf) {
                        fclose(f);
                        return -ENOMEM;
                }
                file = nf;
                memcpy(file + size, chunk, n);
                size += n;
        }
        fclose(f);

        if (size < 24)
                return -EBADMSG;
        bool swap;
        bool nsec = false;
        uint32_t magic;
        memcpy(&magic, file, 4);
        if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d)
                swap = false;
        else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1)
                swap = true;
        else
                return -EBADMSG;
        nsec = magic == 0xa1b23c4d || magic == 0x4d3cb2a1;
        uint32_t linktype = rd32(file + 20, swap);
        if (linktype != LINKTYPE_ETHERNET && linktype != LINKTYPE_LINUX_SLL)
                return -EBADMSG;

        for (size_t off = 24; off + 16 <= size;) {
                uint32_t sec = rd32(file + off, swap);
                uint32_t sub = rd32(file + off + 4, swap);
                uint32_t caplen = rd32(file + off + 8, swap);
                off += 16;
                if (caplen > size - off) {
                        r = -EBADMSG;
                        goto fail;
                }
                const uint8_t *p = file + off;
                size_t len = caplen;
                off += caplen;

                uint64_t tus = (uint64_t) sec * 1000000 + (nsec ? sub / 1000 : sub);
                size_t l2 = linktype == LINKTYPE_ETHERNET ? 14 : 16;
                if (len < l2)
                        continue;
                uint16_t ethertype = (uint16_t) (p[l2 - 2] << 8 | p[l2 - 1]);
                p += l2;
                len -= l2;
                if (ethertype == 0x0800 && len >= 20) {
                        size_t ihl = (size_t) (p[0] & 0x0f) * 4;
                        size_t tot = (size_t) (p[2] << 8 | p[3]);
                        if (ihl < 20 || tot < ihl || tot > len) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        r = handle_l4(&t, &c2s, &s2c, tus, AF_INET, p + 12, p + 16, p[9], p + ihl, tot - ihl);
                } else if (ethertype == 0x86dd && len >= 40) {
                        size_t plen = (size_t) (p[4] << 8 | p[5]);
                        if (plen > len - 40) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        r = handle_l4(&t, &c2s, &s2c, tus, AF_INET6, p + 8, p + 24, p[6], p + 40, plen);
                }
                if (r < 0)
                        goto fail;
        }

        t.c2s = c2s.buf;
        t.c2s_len = c2s.len;
        t.s2c = s2c.buf;
        t.s2c_len = s2c.len;
        *ret = t;
        return 0;
fail:
        free(c2s.buf);
        free(s2c.buf);
        pcap_trace_done(&t);
        return r;
}

void pcap_trace_done(PcapTrace *t) {
        for (size_t i = 0; i < t->n_udp; i++)
                free(t->udp[i].data);
        free(t->udp);
        free(t->c2s);
        free(t->s2c);
        *t = (PcapTrace) {};
}
