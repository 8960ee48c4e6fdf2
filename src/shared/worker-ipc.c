/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ow-wire.h"
#include "worker-ipc.h"

#define HDR 8

void worker_setup_init(WorkerSetup *ret, WorkerRole role, OwMode mode, const OwSessionRequest *req,
                       const SockAddr *peer, const OwTestKeys *keys) {
        *ret = (WorkerSetup) {
                .role = role,
                .mode = mode,
                .peer = *peer,
                .sid = req->sid,
                .n_packets = req->n_packets,
                .padding_length = req->padding_length,
                .start_time = req->start_time,
                .timeout = req->timeout,
                .type_p = req->type_p,
                .n_slots = req->n_slots,
                .slots = req->slots,
        };
        if (mode != OW_MODE_OPEN && keys) {
                memcpy(ret->test_aes_key, keys->aes, sizeof(ret->test_aes_key));
                memcpy(ret->test_hmac_key, keys->hmac, sizeof(ret->test_hmac_key));
        }
}

void worker_buf_done(WorkerBuf *b) {
        free(b->data);
        *b = (WorkerBuf) {};
}

int worker_buf_reserve(WorkerBuf *b, size_t more) {
        if (more > SIZE_MAX / 2 - b->len)
                return -ENOMEM;
        if (b->len + more <= b->size)
                return 0;
        size_t n = MAX(b->size * 2, b->len + more);
        n = MAX(n, (size_t) 4096);
        uint8_t *d = realloc(b->data, n);
        if (!d)
                return -ENOMEM;
        b->data = d;
        b->size = n;
        return 0;
}

void worker_buf_consume(WorkerBuf *in, size_t n) {
        if (n >= in->len) {
                in->len = 0;
                return;
        }
        memmove(in->data, in->data + n, in->len - n);
        in->len -= n;
}

static int msg_begin(WorkerBuf *out, WorkerMsgType type, size_t len, uint8_t **ret) {
        if (len > WORKER_MSG_MAX - 4)
                return -EMSGSIZE;
        int r = worker_buf_reserve(out, HDR + len);
        if (r < 0)
                return r;
        uint8_t *p = out->data + out->len;
        ow_put_be32(p, (uint32_t) (len + 4));
        ow_put_be32(p + 4, type);
        out->len += HDR + len;
        *ret = p + HDR;
        return 0;
}

int worker_msg_append(WorkerBuf *out, WorkerMsgType type, const void *payload, size_t len) {
        uint8_t *p;
        int r = msg_begin(out, type, len, &p);
        if (r < 0)
                return r;
        if (len)
                memcpy(p, payload, len);
        return 0;
}

int worker_msg_peek(const WorkerBuf *in, uint32_t *ret_type, const uint8_t **ret_payload, size_t *ret_len) {
        if (in->len < HDR)
                return 0;
        uint32_t len = ow_get_be32(in->data);
        if (len < 4 || len > WORKER_MSG_MAX)
                return -EBADMSG;
        if (in->len < 4 + (size_t) len)
                return 0;
        *ret_type = ow_get_be32(in->data + 4);
        *ret_payload = in->data + HDR;
        *ret_len = len - 4;
        return 1;
}

/* SETUP payload:
 *   u32 version, u32 role, u32 mode, u32 flags, i64 clock offset, u64 enddelay,
 *   u16 family, u16 port, 16 address, 16 aes key, 32 hmac key, 16 sid,
 *   u32 n_packets, u32 padding, u64 start, u64 timeout, u32 type-p,
 *   u32 n_slots, n_slots x (u32 type, u64 param) */
#define SETUP_FIXED (4 * 4 + 8 + 8 + 4 + 16 + 16 + 32 + 16 + 4 + 4 + 8 + 8 + 4 + 4)
#define SLOT_SIZE 12

int worker_setup_append(WorkerBuf *out, const WorkerSetup *s) {
        uint8_t *p, addr[16];
        uint8_t ipvn;
        int r;

        if (s->n_slots == 0 || s->n_slots > OW_MAX_SLOTS || !s->slots)
                return -EINVAL;
        r = sockaddr_to_owamp(&s->peer, &ipvn, addr);
        if (r < 0)
                return r;
        r = msg_begin(out, WORKER_MSG_SETUP, SETUP_FIXED + (size_t) s->n_slots * SLOT_SIZE, &p);
        if (r < 0)
                return r;
        ow_put_be32(p, WORKER_IPC_VERSION);
        ow_put_be32(p + 4, s->role);
        ow_put_be32(p + 8, s->mode);
        ow_put_be32(p + 12, s->flags);
        ow_put_be64(p + 16, (uint64_t) s->clock_offset_nsec);
        ow_put_be64(p + 24, s->enddelay_nsec);
        ow_put_be16(p + 32, ipvn);
        ow_put_be16(p + 34, sockaddr_port(&s->peer));
        memcpy(p + 36, addr, 16);
        memcpy(p + 52, s->test_aes_key, 16);
        memcpy(p + 68, s->test_hmac_key, 32);
        memcpy(p + 100, s->sid.bytes, 16);
        ow_put_be32(p + 116, s->n_packets);
        ow_put_be32(p + 120, s->padding_length);
        ow_put_be64(p + 124, s->start_time);
        ow_put_be64(p + 132, s->timeout);
        ow_put_be32(p + 140, s->type_p);
        ow_put_be32(p + 144, s->n_slots);
        p += SETUP_FIXED;
        for (uint32_t i = 0; i < s->n_slots; i++, p += SLOT_SIZE) {
                ow_put_be32(p, s->slots[i].type);
                ow_put_be64(p + 4, s->slots[i].param);
        }
        return 0;
}

int worker_setup_parse(const uint8_t *p, size_t len, WorkerSetup *ret) {
        WorkerSetup s = {};
        int r;

        if (len < SETUP_FIXED)
                return -EBADMSG;
        if (ow_get_be32(p) != WORKER_IPC_VERSION)
                return -EPROTO;
        s.role = ow_get_be32(p + 4);
        if (s.role != WORKER_ROLE_SENDER && s.role != WORKER_ROLE_RECEIVER)
                return -EBADMSG;
        s.mode = ow_get_be32(p + 8);
        if (s.mode != OW_MODE_OPEN && s.mode != OW_MODE_AUTHENTICATED && s.mode != OW_MODE_ENCRYPTED)
                return -EBADMSG;
        s.flags = ow_get_be32(p + 12);
        s.clock_offset_nsec = (int64_t) ow_get_be64(p + 16);
        s.enddelay_nsec = ow_get_be64(p + 24);
        r = sockaddr_from_owamp((uint8_t) ow_get_be16(p + 32), p + 36, ow_get_be16(p + 34), &s.peer);
        if (r < 0)
                return -EBADMSG;
        memcpy(s.test_aes_key, p + 52, 16);
        memcpy(s.test_hmac_key, p + 68, 32);
        memcpy(s.sid.bytes, p + 100, 16);
        s.n_packets = ow_get_be32(p + 116);
        s.padding_length = ow_get_be32(p + 120);
        s.start_time = ow_get_be64(p + 124);
        s.timeout = ow_get_be64(p + 132);
        s.type_p = ow_get_be32(p + 140);
        s.n_slots = ow_get_be32(p + 144);
        if (s.n_slots == 0 || s.n_slots > OW_MAX_SLOTS || s.padding_length > OW_MAX_PADDING)
                return -EBADMSG;
        if (len != SETUP_FIXED + (size_t) s.n_slots * SLOT_SIZE)
                return -EBADMSG;
        s.slots = calloc(s.n_slots, sizeof(OwSlot));
        if (!s.slots)
                return -ENOMEM;
        p += SETUP_FIXED;
        for (uint32_t i = 0; i < s.n_slots; i++, p += SLOT_SIZE) {
                uint32_t t = ow_get_be32(p);
                if (t != OW_SLOT_EXPONENTIAL && t != OW_SLOT_FIXED) {
                        free(s.slots);
                        return -EBADMSG;
                }
                s.slots[i].type = t;
                s.slots[i].param = ow_get_be64(p + 4);
        }
        *ret = s;
        return 0;
}

int worker_stop_append(WorkerBuf *out, const WorkerStop *s) {
        uint8_t p[16];
        ow_put_be64(p, s->stop_time);
        ow_put_be32(p + 8, s->has_next_seqno);
        ow_put_be32(p + 12, s->next_seqno);
        return worker_msg_append(out, WORKER_MSG_STOP, p, sizeof(p));
}

int worker_stop_parse(const uint8_t *p, size_t len, WorkerStop *ret) {
        if (len != 16)
                return -EBADMSG;
        *ret = (WorkerStop) {
                .stop_time = ow_get_be64(p),
                .has_next_seqno = ow_get_be32(p + 8) != 0,
                .next_seqno = ow_get_be32(p + 12),
        };
        return 0;
}

#define N_COUNTERS (sizeof(WorkerCounters) / sizeof(uint64_t))
#define DONE_FIXED (8 + N_COUNTERS * 8)

int worker_done_append(WorkerBuf *out, const WorkerDone *d) {
        uint8_t *p;
        uint64_t c[N_COUNTERS];

        if (d->n_skips > OW_MAX_SKIP_RANGES)
                return -EINVAL;
        int r = msg_begin(out, WORKER_MSG_DONE, DONE_FIXED + (size_t) d->n_skips * 8, &p);
        if (r < 0)
                return r;
        ow_put_be32(p, d->next_seqno);
        ow_put_be32(p + 4, d->n_skips);
        memcpy(c, &d->counters, sizeof(c));
        for (size_t i = 0; i < N_COUNTERS; i++)
                ow_put_be64(p + 8 + 8 * i, c[i]);
        p += DONE_FIXED;
        for (uint32_t i = 0; i < d->n_skips; i++, p += 8)
                ow_skip_range_encode(&d->skips[i], p);
        return 0;
}

int worker_done_parse(const uint8_t *p, size_t len, WorkerDone *ret) {
        WorkerDone d = {};
        uint64_t c[N_COUNTERS];

        if (len < DONE_FIXED)
                return -EBADMSG;
        d.next_seqno = ow_get_be32(p);
        d.n_skips = ow_get_be32(p + 4);
        if (d.n_skips > OW_MAX_SKIP_RANGES || len != DONE_FIXED + (size_t) d.n_skips * 8)
                return -EBADMSG;
        for (size_t i = 0; i < N_COUNTERS; i++)
                c[i] = ow_get_be64(p + 8 + 8 * i);
        memcpy(&d.counters, c, sizeof(c));
        p += DONE_FIXED;
        if (d.n_skips > 0) {
                d.skips = calloc(d.n_skips, sizeof(OwSkipRange));
                if (!d.skips)
                        return -ENOMEM;
                for (uint32_t i = 0; i < d.n_skips; i++, p += 8)
                        if (ow_skip_range_decode(p, &d.skips[i]) < 0) {
                                free(d.skips);
                                return -EBADMSG;
                        }
        }
        *ret = d;
        return 0;
}

int worker_records_append(WorkerBuf *out, const OwRecord *r, size_t n) {
        uint8_t *p;
        int k = msg_begin(out, WORKER_MSG_RECORDS, n * OW_RECORD_SIZE, &p);
        if (k < 0)
                return k;
        for (size_t i = 0; i < n; i++)
                ow_record_encode(&r[i], p + i * OW_RECORD_SIZE);
        return 0;
}

int worker_records_count(const uint8_t *p, size_t len) {
        (void) p;
        if (len % OW_RECORD_SIZE != 0)
                return -EBADMSG;
        return (int) (len / OW_RECORD_SIZE);
}

int worker_error_append(WorkerBuf *out, int error, const char *text) {
        size_t tl = text ? strnlen(text, 1024) : 0;
        uint8_t *p;
        int r = msg_begin(out, WORKER_MSG_ERROR, 4 + tl, &p);
        if (r < 0)
                return r;
        ow_put_be32(p, (uint32_t) (error < 0 ? -error : error));
        if (tl)
                memcpy(p + 4, text, tl);
        return 0;
}

int worker_error_parse(const uint8_t *p, size_t len, int *ret_error, char *text, size_t text_size) {
        if (len < 4 || text_size == 0)
                return -EBADMSG;
        *ret_error = -(int) (ow_get_be32(p) & 0x7fffffff);
        size_t tl = MIN(len - 4, text_size - 1);
        for (size_t i = 0; i < tl; i++)
                text[i] = (p[4 + i] >= 0x20 && p[4 + i] < 0x7f) ? (char) p[4 + i] : '?';
        text[tl] = 0;
        return 0;
}

int worker_write_all(int fd, WorkerBuf *out) {
        size_t off = 0;
        while (off < out->len) {
                ssize_t n = write(fd, out->data + off, out->len - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (size_t) n;
        }
        out->len = 0;
        return 0;
}

int worker_read_some(int fd, WorkerBuf *in) {
        int r = worker_buf_reserve(in, 65536);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = read(fd, in->data + in->len, in->size - in->len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                in->len += (size_t) n;
                return (int) n;
        }
}
