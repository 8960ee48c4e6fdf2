#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""OWAMP-Control spoken by hand (open mode) against owampd: garbage and
truncated messages in every state, refused requests, and whole test
sessions whose packets the test itself sends or receives, so what goes on
the wire (sizes, DSCP, TTL, schedule) is checked octet by octet."""

import os
import re
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import (RawClient, check, check_eq, main, make_request, make_stop_sessions,  # noqa: E402
                    ntp_from_seconds, ntp_now, ntp_to_seconds, read_owp)

LO = "127.0.0.1"
# Linux values; Python's socket module lacks some of them.
IP_TOS = getattr(socket, "IP_TOS", 1)
IP_TTL = getattr(socket, "IP_TTL", 2)
IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)


def request(**kw):
    """A Request-Session between loopback addresses; owampd receives unless
    conf_sender=1. port: the test's own end (9, discard, by default)."""
    conf_sender = kw.pop("conf_sender", 0)
    conf_receiver = kw.pop("conf_receiver", 0 if conf_sender else 1)
    port = kw.pop("port", 9)
    receiver = kw.pop("receiver", LO)
    if conf_sender:
        return make_request(conf_sender, conf_receiver, (LO, 0), (receiver, port), **kw)
    return make_request(conf_sender, conf_receiver, (LO, port), (receiver, 0), **kw)


def closes(d, data, why, pattern, setup=True):
    """On a new connection (after Server-Start when setup): send data;
    owampd closes without a word and logs pattern."""
    mark = d.mark()
    with RawClient(d) as c:
        if setup:
            c.open()
        c.send(data)
        check_eq(c.expect_closed(), b"", "what owampd sent before closing (%s)" % why)
    d.wait_new(mark, r"Closing connection from 127\.0\.0\.1:\d+: " + pattern)


def leaves(d, data, why, setup=True):
    """Send part of a message and leave: owampd notices."""
    mark = d.mark()
    with RawClient(d) as c:
        if setup:
            c.open()
        if data:
            c.send(data)
    d.wait_new(mark, r"Peer 127\.0\.0\.1:\d+ closed the connection " +
               ("in the middle of a message" if data else "without answering the greeting"))
    d.wait_new(mark, r"Connection from 127\.0\.0\.1:\d+ closed")


def case_garbage(t):
    d = t.daemon()
    blank = request()

    # --- after the greeting -------------------------------------------------
    with RawClient(d) as c:
        check_eq(c.modes, 7, "modes offered")
        check_eq(c.count, 2048, "PBKDF2 count offered")
        check_eq(c.greeting[:12] + c.greeting[52:], b"\0" * 24, "greeting MBZ fields")
    leaves(d, b"", "nothing", setup=False)
    leaves(d, b"\0\0\0\1" + b"\0" * 60, "a short Set-Up-Response", setup=False)
    for mode in (0, 3, 8, 0xFFFFFFFF):
        closes(d, struct.pack(">I", mode) + b"\0" * 160, "mode %#x" % mode,
               r"bad Set-Up-Response: invalid or unoffered mode", setup=False)

    # --- after Server-Start -------------------------------------------------------
    for cmd in (0, 5, 6, 254, 255):
        closes(d, bytes([cmd]) + b"\0" * 31, "command %d" % cmd, r"unknown command")
    leaves(d, blank[:16], "exactly the first block of a Request-Session")
    leaves(d, blank[:50], "a truncated Request-Session")
    leaves(d, blank[:112 + 8], "a Request-Session cut in its slots")
    leaves(d, b"\x04" + b"\0" * 20, "a truncated Fetch-Session")
    leaves(d, b"\x02" + b"\0" * 20, "a truncated Start-Sessions")
    closes(d, request(n_slots=0)[:112], "0 slots", r"Request-Session: count out of bounds")
    # 2^32-1 slots: refused on the preamble, without waiting for 64 GiB.
    closes(d, request(n_slots=0xFFFFFFFF)[:112], "2^32-1 slots", r"Request-Session: count out of bounds")
    closes(d, make_stop_sessions(), "Stop-Sessions outside a test", r"Stop-Sessions outside a test")
    closes(d, make_stop_sessions([(b"\1" * 16, 10, [])]), "Stop-Sessions with a session, outside a test",
           r"Stop-Sessions outside a test")

    # --- refused requests: Accept-Session, and the connection goes on ---------------
    with RawClient(d) as c:
        c.open()
        for kw, want, why, reason in (
                ({"ipvn": 5}, 3, "IPVN 5", r"address family is neither IPv4 nor IPv6"),
                ({"ipvn": 0}, 3, "IPVN 0", r"address family is neither IPv4 nor IPv6"),
                ({"conf_sender": 1, "conf_receiver": 1}, 3, "both Conf flags",
                 r"exactly one of Conf-Sender/Conf-Receiver must be set"),
                ({"conf_sender": 0, "conf_receiver": 0}, 3, "neither Conf flag",
                 r"exactly one of Conf-Sender/Conf-Receiver must be set"),
                ({"type_p": 0x40000000}, 3, "Type-P outside the DSCP bits", r"Type-P descriptor not in DSCP form"),
                ({"type_p": 0x00000001}, 3, "Type-P in the PHB-ID form", r"Type-P descriptor not in DSCP form"),
                ({"slots": ((2, 0.01),)}, 3, "slot type 2", r"unknown schedule slot type"),
                ({"n_packets": 0}, 3, "zero packets", r"count out of bounds"),
                ({"port": 0}, 3, "no port for the client's end",
                 r"no address or port for the client's endpoint \(127\.0\.0\.1:0\)"),
                ({"conf_sender": 1, "receiver": "127.0.0.2"}, 1, "sending to a third party in open mode",
                 r"open mode, and the receiver 127\.0\.0\.2:9 is not the requesting host"),
        ):
            mark = d.mark()
            accept, port, sid = c.request(request(**kw))
            check_eq((accept, port, sid), (want, 0, b"\0" * 16), "Accept-Session for %s" % why)
            d.wait_new(mark, r"Refusing session (?:[0-9a-f]{32} )?from 127\.0\.0\.1:\d+: " + reason)
        mark = d.mark()
        check_eq(c.start(), 1, "Start-Ack without sessions")
        d.wait_new(mark, r"Start-Sessions from \S+ without any session")
        # Still in step: a fetch of nothing is refused, not dropped.
        ack, *_ = c.fetch(b"\x7f\0\0\1" + b"\2" * 12)
        check_eq(ack["accept"], 1, "Fetch-Ack for an unknown SID")
        c.expect_open()

    # --- in a test: only Stop-Sessions ----------------------------------------
    for data, why, reason in (
            (lambda sid: struct.pack(">B7xII16s", 4, 0, 0xFFFFFFFF, sid) + b"\0" * 16, "Fetch-Session in a test",
             r"only Stop-Sessions is allowed during a test"),
            (lambda sid: request(), "Request-Session in a test", r"only Stop-Sessions is allowed during a test"),
            (lambda sid: make_stop_sessions([(b"\5" * 16, 10, [])]), "Stop-Sessions for another SID",
             r"Stop-Sessions does not match the sessions"),
            (lambda sid: make_stop_sessions([(sid, 2000, [])]), "Stop-Sessions with Next Seqno past the end",
             r"Stop-Sessions does not match the sessions"),
    ):
        mark = d.mark()
        with RawClient(d) as c:
            c.open()
            accept, _, sid = c.request(request(n_packets=1000, start=ntp_now() + ntp_from_seconds(2)))
            check_eq(accept, 0, "Accept-Session")
            check_eq(c.start(), 0, "Start-Ack")
            c.send(data(sid))
            check_eq(c.expect_closed(), b"", "what owampd sent before closing (%s)" % why)
        d.wait_new(mark, r"Closing connection from \S+: " + reason)
        d.wait_new(mark, r"Session %s abandoned; 0 records kept as incomplete" % sid.hex())
        d.quiesce()
        f = read_owp(d.data_path(sid.hex()))
        check_eq((f.finished, len(f.records)), (2, 0), "abandoned session's file (finished, records)")

    # Through all that, the server kept serving.
    p = t.owping(["-A", "O", "-c", "5", "-i", "0.01", "-L", "1", d.addr])
    check_eq(len(re.findall(r"^5 sent, 0 lost", p.out, re.M)), 2, "clean reports after the garbage")


def wait_until_ntp(t):
    left = ntp_to_seconds(t - ntp_now()) if t > ntp_now() else 0
    if left > 0:
        time.sleep(left)


def case_send_to_server(t):
    """The test sends to owampd by hand: the stored records are exactly what
    went out, losses and duplicates included."""
    d = t.daemon()
    n, gap, timeout = 10, 0.02, 1.0
    with RawClient(d) as c:
        c.open()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((LO, 0))
        u.setsockopt(socket.IPPROTO_IP, IP_TTL, 200)
        start = ntp_now() + ntp_from_seconds(0.5)
        req = request(port=u.getsockname()[1], n_packets=n, slots=((1, gap),), padding=100, start=start,
                      timeout=timeout)
        accept, port, sid = c.request(req)
        check_eq(accept, 0, "Accept-Session")
        check(port > 0, "no receiver port")
        check_eq(sid[:4], socket.inet_aton(LO), "SID address part (PROTOCOL.md 2.3)")
        check_eq(c.start(), 0, "Start-Ack")
        u.connect((LO, port))
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind((LO, 0))

        sent = {}
        for seq in range(n):
            due = start + ntp_from_seconds(gap * (seq + 1))
            wait_until_ntp(due)
            if seq == 7:
                continue  # never sent: a skip range in Stop-Sessions
            ts = ntp_now()
            pkt = struct.pack(">IQH", seq, ts, 0x0001) + os.urandom(100)
            u.send(pkt)
            sent[seq] = ts
            if seq == 3:
                u.send(pkt)  # a copy
                u.send(pkt[:50])  # too short for 100 octets of padding
                other.sendto(pkt, (LO, port))  # from the wrong port
                u.send(struct.pack(">IQH", n + 5, ts, 1) + b"\0" * 100)  # seq out of range
        other.close()
        # Stop once every packet is decided (the reference waits Timeout
        # after the last one).
        time.sleep(timeout + 0.3)
        c.send(make_stop_sessions([(sid, n, [(7, 7)])]))
        accept, sessions = c.read_stop(10)
        check_eq((accept, sessions), (0, []), "owampd's Stop-Sessions (it sent nothing)")

        ack, freq, slots, skips, records = c.fetch(sid)
        check_eq(ack, {"accept": 0, "finished": 1, "next_seqno": n, "n_skips": 1, "n_records": n + 1},
                 "Fetch-Ack")
        check_eq((freq.conf_sender, freq.conf_receiver, freq.sender_port, freq.receiver_port, freq.sid,
                  freq.padding, freq.start_time, freq.timeout, freq.n_packets),
                 (0, 1, u.getsockname()[1], port, sid, 100, start, ntp_from_seconds(timeout), n),
                 "fetched request")
        check_eq(slots, [(1, ntp_from_seconds(gap))], "fetched slots")
        check_eq(skips, [(7, 7)], "fetched skip ranges")
        got = [(r.seq, r.send_time) for r in records if not r.lost]
        want = sorted([(s, ts) for s, ts in sent.items()] + [(3, sent[3])])
        check_eq(sorted(got), want, "received records (seq, send time)")
        for r in records:
            if r.lost:
                continue
            check_eq(r.ttl, 200, "TTL of seq %d" % r.seq)
            check_eq(r.send_err, 1, "send error estimate of seq %d" % r.seq)
            check(0 <= r.recv_time - r.send_time < ntp_from_seconds(0.5), "one-way delay of seq %d", r.seq)
        lost = [r for r in records if r.lost]
        check_eq(len(lost), 1, "lost records")
        # A lost record carries the scheduled send time (PROTOCOL.md 7.5).
        check_eq((lost[0].seq, lost[0].send_time, lost[0].send_err, lost[0].ttl),
                 (7, start + ntp_from_seconds(gap) * 8, 1, 255), "lost record of seq 7")
        stored = read_owp(d.data_path(sid.hex()))
        check_eq([r.key() for r in stored.records], [r.key() for r in records], "datadir file vs fetch")
        check_eq(stored.skips, [(7, 7)], "datadir skip ranges")
        u.close()
    d.wait_log(r"Session %s finished: 10 received, 1 lost, 1 duplicates; dropped 1 from wrong source, "
               r"0 failing authentication, 1 short, 1 out of range, 0 out of time" % sid.hex())
    d.wait_log(r"Session %s data stored: 11 records, next seqno 10, 1 skip ranges" % sid.hex())


def case_receive_from_server(t):
    """owampd sends to the test: datagram size, DSCP, TTL and schedule on
    the wire."""
    d = t.daemon()
    n, timeout = 12, 1.0
    slots = ((1, 0.01), (1, 0.03))
    with RawClient(d) as c:
        c.open()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((LO, 0))
        u.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
        u.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        my_sid = socket.inet_aton(LO) + os.urandom(12)
        start = ntp_now() + ntp_from_seconds(0.5)
        accept, port, sid = c.request(request(conf_sender=1, port=u.getsockname()[1], n_packets=n, slots=slots,
                                              sid=my_sid, padding=100, start=start, timeout=timeout,
                                              type_p=46 << 24))
        check_eq((accept, sid), (0, my_sid), "Accept-Session (our SID echoed)")
        check_eq(c.start(), 0, "Start-Ack")

        got = []
        deadline = time.monotonic() + 10
        u.settimeout(0.2)
        while len(got) < n and time.monotonic() < deadline:
            try:
                data, anc, _, src = u.recvmsg(2048, socket.CMSG_SPACE(4) * 2)
            except socket.timeout:
                continue
            tos = ttl = None
            for level, typ, val in anc:
                if level == socket.IPPROTO_IP and typ == IP_TOS:
                    tos = val[0]
                if level == socket.IPPROTO_IP and typ == IP_TTL:
                    ttl = struct.unpack("=i", val[:4])[0]
            got.append((data, tos, ttl, src, ntp_now()))
        check_eq(len(got), n, "datagrams received")
        due = start
        for i, (data, tos, ttl, src, recv) in enumerate(got):
            check_eq(src, (LO, port), "source of datagram %d" % i)
            check_eq(len(data), 14 + 100, "size of datagram %d (14 + padding)" % i)
            check_eq(tos, 46 << 2, "TOS of datagram %d (DSCP EF)" % i)
            check_eq(ttl, 255, "TTL of datagram %d" % i)
            seq, ts, err = struct.unpack(">IQH", data[:14])
            check_eq(seq, i, "sequence number of datagram %d" % i)
            check(err & 0xFF, "datagram %d has multiplier 0 in its error estimate", i)
            due += ntp_from_seconds(slots[i % 2][1])
            # Never early; late only by scheduling noise.
            check(ts + ntp_from_seconds(1e-6) >= due, "datagram %d sent %.6f s early", i, ntp_to_seconds(due - ts))
            check(ts - due < ntp_from_seconds(0.25), "datagram %d sent %.6f s late", i, ntp_to_seconds(ts - due))
            check(ts <= recv, "datagram %d stamped after it arrived", i)
        pads = {g[0][14:] for g in got}
        check_eq(len(pads), n, "distinct paddings (fresh random octets per packet)")

        accept, sessions = c.read_stop(timeout + 10)
        check_eq((accept, sessions), (0, [(my_sid, n, [])]), "owampd's Stop-Sessions")
        c.send(make_stop_sessions())
        # Back in step after the test: it answers a fetch (of nothing it
        # stored, as it only sent).
        ack, *_ = c.fetch(my_sid)
        check_eq(ack["accept"], 1, "Fetch-Ack for a session owampd sent")
        u.close()
    d.wait_log(r"Session %s finished: %d sent, 0 skipped as late, next seqno %d" % (my_sid.hex(), n, n))
    d.wait_log(r"Accepted session %s from \S+: sending %d packets, .* padding 100, DSCP 46," % (my_sid.hex(), n))


CASES = {
    "garbage": case_garbage,
    "send-to-server": case_send_to_server,
    "receive-from-server": case_receive_from_server,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
