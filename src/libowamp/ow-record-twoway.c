/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The two-way record of TWAMP as the reference's .twp file stores it
 * (TWAMP-PROTOCOL.md 7): a "sent" and a "reflected" OWAMP record, 25
 * octets each (RFC 4656 3.8), so the one record codec does both halves.
 */

#include "ow-error.h"
#include "ow-testpkt.h"
#include "ow-types.h"

void ow_tw_record_encode(const OwTwRecord *r, uint8_t out[OW_TW_RECORD_SIZE]) {
        /* In OwRecord's order: seq, send_err, recv_err, send_time, recv_time, ttl. */
        OwRecord sent = { r->sender_seq, r->sender_err, r->reflector_err, r->t1, r->t2, r->sender_ttl };
        OwRecord reflected = { r->reflector_seq, r->reflector_err, r->recv_err, r->t3, r->t4, r->ttl };

        ow_record_encode(&sent, out);
        ow_record_encode(&reflected, out + OW_RECORD_SIZE);
}

int ow_tw_record_decode(const uint8_t in[OW_TW_RECORD_SIZE], OwTwRecord *ret) {
        OwRecord sent, reflected;
        int r;

        r = ow_record_decode(in, &sent);
        if (r < 0)
                return r;
        r = ow_record_decode(in + OW_RECORD_SIZE, &reflected);
        if (r < 0)
                return r;

        *ret = (OwTwRecord){
                .sender_seq = sent.seq,
                .reflector_seq = reflected.seq,
                .t1 = sent.send_time,
                .t2 = sent.recv_time,
                .t3 = reflected.send_time,
                .t4 = reflected.recv_time,
                .sender_err = sent.send_err,
                .reflector_err = reflected.send_err,
                .recv_err = reflected.recv_err,
                .sender_ttl = sent.ttl,
                .ttl = reflected.ttl,
        };
        return 0;
}

void ow_testpkt_tw_record(const OwTestFields *reflected, OwTimestamp t4, OwErrEst recv_err, uint8_t ttl,
                          OwTwRecord *ret) {
        *ret = (OwTwRecord){
                .sender_seq = reflected->sender_seq,
                .reflector_seq = reflected->seq,
                .t1 = reflected->sender_timestamp,
                .t2 = reflected->recv_timestamp,
                .t3 = reflected->timestamp,
                .t4 = t4,
                .sender_err = reflected->sender_errest,
                .reflector_err = reflected->errest,
                .recv_err = recv_err,
                .sender_ttl = reflected->sender_ttl,
                .ttl = ttl,
        };
}
