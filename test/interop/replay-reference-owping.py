#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
Interoperability with perfSONAR's owping, from its own bytes.

test/data/captures/mode-O.pcap holds a complete exchange between the
reference owping and the reference owampd. This test plays the reference
client's side of it against OUR owampd: the same Set-Up-Response,
Request-Sessions, Start-Sessions, test packets (from the same source ports,
at the same relative times, with their original timestamps), Stop-Sessions
and Fetch-Session. Our owampd runs with OWAMP_DEBUG_TIMEOFFSET set so that
its clock reads the capture's time, so the captured start time and
timestamps are current for it.

Only what the server chooses is substituted (in open mode nothing is
encrypted or authenticated): our server's receive port and SID for the "to"
session, which the reference client would have taken from our Accept-Session.

It checks every message our server sends against the reference server's
(same sizes and fields where the protocol fixes them), that our server
sends the "from" session's 10 packets to the client's port with the right
sequence numbers, and that the data it serves for the "to" session is
exactly the 10 packets the reference client sent.

Usage: replay-reference-owping.py OWAMPD WORKER CAPTURE
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
CONTROL_PORT = 8871
TO_SRC, FROM_DST = 8920, 8929


def load_pcap(path):
    data = open(path, 'rb').read()
    magic = struct.unpack('<I', data[:4])[0]
    assert magic == 0xa1b2c3d4, 'little-endian usec pcap expected'
    off = 24
    streams = {True: {}, False: {}}
    udp = []
    while off + 16 <= len(data):
        sec, usec, caplen, _ = struct.unpack('<IIII', data[off:off + 16])
        off += 16
        pkt = data[off:off + caplen]
        off += caplen
        t = sec + usec / 1e6
        if struct.unpack('>H', pkt[12:14])[0] != 0x0800:
            continue
        ip = pkt[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack('>H', ip[2:4])[0]
        proto = ip[9]
        l4 = ip[ihl:total]
        sport, dport = struct.unpack('>HH', l4[:4])
        if proto == 6:
            seq = struct.unpack('>I', l4[4:8])[0]
            hl = (l4[12] >> 4) * 4
            payload = l4[hl:]
            if payload:
                streams[dport == CONTROL_PORT][seq] = (t, payload)
        elif proto == 17:
            udp.append((t, sport, dport, l4[8:]))
    first = min(t for s in streams.values() for t, _ in s.values())
    return streams, udp, first


def stream_bytes(segs):
    out = b''
    for seq in sorted(segs):
        out += segs[seq][1]
    return out


def recv_exact(sock, n, what):
    buf = b''
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise AssertionError('server closed the connection waiting for %s (%d of %d octets)' % (what, len(buf), n))
        buf += chunk
    return buf


def bind_udp_ports(*ports, wait=60):
    """UDP sockets bound to 127.0.0.1 on these fixed ports (the capture's),
    waiting up to `wait` seconds for another test run to free them."""
    end = time.time() + wait
    while True:
        socks = []
        try:
            for port in ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(('127.0.0.1', port))
            return socks
        except OSError:
            for s in socks:
                s.close()
            if time.time() > end:
                return None
            time.sleep(0.5)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def main():
    owampd, worker, capture = sys.argv[1:4]
    streams, udp, t0 = load_pcap(capture)
    c2s = stream_bytes(streams[True])
    s2c = stream_bytes(streams[False])
    check(len(c2s) == 596 and len(s2c) == 768, 'unexpected capture')

    # The reference client's messages, in order.
    sur, req_to, req_from = c2s[0:164], c2s[164:308], c2s[308:452]
    start_sessions, stop, fetch = c2s[452:484], c2s[484:548], c2s[548:596]
    ref_to_sid = s2c[64 + 48 + 4:64 + 48 + 20]
    ref_from_sid = req_from[48:64]
    to_packets = [(t - t0, p) for t, sp, dp, p in udp if sp == TO_SRC]
    check(len(to_packets) == 10, 'capture should have 10 "to" packets')
    stop_at = min(t for seq, (t, p) in streams[True].items() if p[:1] == b'\x03') - t0

    # The client's test ports must be free: they are in the requests.
    socks = bind_udp_ports(TO_SRC, FROM_DST)
    if not socks:
        print('SKIP: client test ports %d and %d stayed busy' % (TO_SRC, FROM_DST))
        return SKIP
    usock, rsock = socks
    # The reference sender's TTL (PROTOCOL.md 7.4); the server records it.
    usock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)

    tmp = tempfile.TemporaryDirectory()
    data = os.path.join(tmp.name, 'data')
    os.mkdir(data)
    # A control port of our own (the request does not name it).
    probe = socket.socket()
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()

    # The daemon's clock reads t0 at `epoch`; the replay keeps the capture's
    # relative times from that same instant.
    epoch = time.time()
    env = dict(os.environ, OWAMP_SESSION_WORKER=worker, OWAMP_DEBUG_TIMEOFFSET='%.6f' % (t0 - epoch))
    log = open(os.path.join(tmp.name, 'owampd.log'), 'w+')
    args = [owampd, '-Z', '-c', tmp.name, '-d', data, '-R', tmp.name, '-S', '127.0.0.1:%d' % port,
            '-P', '8900-8909']
    if os.geteuid() == 0:
        args.append('-f')
    daemon = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    got_from = []

    def receive_from():
        rsock.settimeout(0.2)
        end = time.time() + 15
        while time.time() < end and len(got_from) < 10:
            try:
                pkt, src = rsock.recvfrom(2048)
            except socket.timeout:
                continue
            got_from.append((pkt, src))

    try:
        sock = None
        for _ in range(100):
            try:
                sock = socket.create_connection(('127.0.0.1', port), timeout=10)
                break
            except OSError:
                time.sleep(0.05)
        check(sock is not None, 'owampd did not start')
        start = epoch

        def at(rel):
            delay = start + rel - time.time()
            if delay > 0:
                time.sleep(delay)

        greeting = recv_exact(sock, 64, 'Server Greeting')
        check(greeting[:12] == b'\0' * 12 and greeting[52:64] == b'\0' * 12, 'greeting MBZ')
        check(struct.unpack('>I', greeting[12:16])[0] == 7, 'modes offered: AEO')
        check(struct.unpack('>I', greeting[48:52])[0] == 2048, 'PBKDF2 count 2048, as the reference')

        sock.sendall(sur)
        ss = recv_exact(sock, 48, 'Server-Start')
        check(ss[:15] == b'\0' * 15 and ss[15] == 0, 'Server-Start Accept 0')
        check(ss[16:32] == b'\0' * 16, 'open mode: zero Server-IV, as the reference')
        check(ss[40:48] == b'\0' * 8, 'Server-Start MBZ')

        sock.sendall(req_to)
        acc_to = recv_exact(sock, 48, 'Accept-Session (to)')
        check(acc_to[0] == 0, 'to session accepted (Accept %d)' % acc_to[0])
        to_port = struct.unpack('>H', acc_to[2:4])[0]
        to_sid = acc_to[4:20]
        check(8900 <= to_port <= 8909, 'receiver port from -P 8900-8909')
        check(to_sid[:4] == socket.inet_aton('127.0.0.1'), 'SID starts with the receiver address')
        sid_time = struct.unpack('>Q', to_sid[4:12])[0] / 2**32 - 2208988800
        check(abs(sid_time - (t0 + (time.time() - start))) < 5, 'SID timestamp is the (offset) current time')
        check(acc_to[20:48] == b'\0' * 28, 'Accept-Session MBZ and open-mode HMAC zero')

        sock.sendall(req_from)
        acc_from = recv_exact(sock, 48, 'Accept-Session (from)')
        check(acc_from[0] == 0, 'from session accepted (Accept %d)' % acc_from[0])
        from_port = struct.unpack('>H', acc_from[2:4])[0]
        check(acc_from[4:20] == ref_from_sid, 'from session: the client\'s SID echoed')

        at(streams[True][min(s for s, (t, p) in streams[True].items() if p[:1] == b'\x02')][0] - t0)
        receiver = threading.Thread(target=receive_from)
        receiver.start()
        sock.sendall(start_sessions)
        ack = recv_exact(sock, 32, 'Start-Ack')
        check(ack[0] == 0 and ack[1:] == b'\0' * 31, 'Start-Ack Accept 0')

        # The reference client's test packets, as sent, at their times.
        for rel, payload in to_packets:
            at(rel)
            usock.sendto(payload, ('127.0.0.1', to_port))

        # The reference client sent Stop-Sessions first in this capture;
        # do the same, naming our SID for the session.
        at(stop_at)
        check(stop[16:32] == ref_to_sid, 'capture: the client stops the to session')
        sock.sendall(stop[:16] + to_sid + stop[32:])
        srv_stop = recv_exact(sock, 64, 'Stop-Sessions from the server')
        check(srv_stop[0] == 3 and srv_stop[1] == 0, 'server Stop-Sessions, Accept 0')
        check(struct.unpack('>I', srv_stop[4:8])[0] == 1, 'one session described')
        check(srv_stop[16:32] == ref_from_sid, 'it is the from session')
        nseq, nskip = struct.unpack('>II', srv_stop[32:40])
        check((nseq, nskip) == (10, 0), 'next seqno 10, no skip ranges (got %d, %d)' % (nseq, nskip))
        check(srv_stop[40:64] == b'\0' * 24, 'padding and open-mode HMAC zero')
        check(len(srv_stop) == len(s2c[64 + 48 + 48 + 48 + 32:][:64]), 'same size as the reference')

        sock.sendall(fetch[:16] + to_sid + fetch[32:])
        fack = recv_exact(sock, 32, 'Fetch-Ack')
        accept, finished, nseq, nskip, nrec = fack[0], fack[1], *struct.unpack('>III', fack[4:16])
        check((accept, finished, nseq, nskip, nrec) == (0, 1, 10, 0, 10),
              'Fetch-Ack: accept 0, finished, 10 packets, 0 skips, 10 records (got %r)'
              % ((accept, finished, nseq, nskip, nrec),))
        ref_ack = s2c[304:336]
        check(fack[:16] == ref_ack[:16], 'Fetch-Ack identical to the reference server\'s')
        body = recv_exact(sock, 432, 'fetched session')
        ref_body = s2c[336:768]
        req = body[:112]
        ref_req = ref_body[:112]
        # The stored request: the reference server's, but with our port and SID.
        check(req[:14] == ref_req[:14] and req[16:48] == ref_req[16:48] and req[64:112] == ref_req[64:112],
              'stored request equals the reference server\'s apart from its own port and SID')
        check(struct.unpack('>H', req[14:16])[0] == to_port and req[48:64] == to_sid, 'with our port and SID')
        check(body[112:144] == ref_body[112:144], 'slot and HMAC blocks as the reference')
        check(body[144:160] == ref_body[144:160], 'empty skip-range part (its HMAC block) as the reference')
        recs = body[160:160 + 250]
        ref_recs = ref_body[160:160 + 250]
        for i in range(10):
            r, rr = recs[25 * i:25 * i + 25], ref_recs[25 * i:25 * i + 25]
            seq = struct.unpack('>I', r[:4])[0]
            sent = [p for _, p in to_packets if struct.unpack('>I', p[:4])[0] == seq][0]
            check(r[8:16] == sent[4:12], 'record %d: the send timestamp the client sent' % i)
            check(r[4:6] == sent[12:14], 'record %d: the send error estimate the client sent' % i)
            check(r[24] == 255, 'record %d: the TTL the packet arrived with (255)' % i)
            check(r[:4] == rr[:4], 'records in the same order as the reference server stored them')
            # This script paces the packets with time.sleep(), which a busy
            # machine makes late by tens of milliseconds; a wrong clock
            # offset or timestamp field would be off by seconds.
            check(abs(struct.unpack('>Q', r[16:24])[0] - struct.unpack('>Q', r[8:16])[0]) < 2**32 // 4,
                  'record %d: delay below 250 ms' % i)
        check(body[160 + 250:] == b'\0' * 6 + b'\0' * 16, 'record padding and open-mode HMAC zero')
        sock.close()

        receiver.join()
        check(len(got_from) == 10, 'the from session\'s 10 packets arrived (got %d)' % len(got_from))
        seqs = [struct.unpack('>I', p[:4])[0] for p, _ in got_from]
        check(sorted(seqs) == list(range(10)), 'with sequence numbers 0..9')
        check(all(src == ('127.0.0.1', from_port) for _, src in got_from), 'from the announced port')
        check(all(len(p) == 14 for p, _ in got_from), 'open-mode packets of 14 octets')
        print('PASS: the reference owping\'s exchange (mode O) against our owampd')
        return 0
    except AssertionError as e:
        log.seek(0)
        print('FAIL: %s\n--- owampd log ---\n%s' % (e, log.read()))
        return 1
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        if daemon.returncode not in (0, -15):
            log.seek(0)
            print('owampd exited with %d\n%s' % (daemon.returncode, log.read()))


if __name__ == '__main__':
    sys.exit(main())
