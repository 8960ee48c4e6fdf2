#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
Interoperability with perfSONAR's owampd, from its own bytes.

The other half of replay-reference-owping.py: test/data/captures/mode-O.pcap
holds a complete exchange between the reference owping and the reference
owampd; here a stand-in server plays the REFERENCE SERVER's side of it to
OUR owping: its greeting, Server-Start, Accept-Sessions (its ports and its
SID for the "to" session), Start-Ack, its "from" session's test packets
(from its port, at their relative times, with their original timestamps),
its Stop-Sessions and its Fetch-Session answer. owping runs with
OWAMP_DEBUG_TIMEOFFSET so its clock reads the capture's time.

Only what the client chose is substituted (open mode: nothing is encrypted
or authenticated): owping's SID for the "from" session in the server's
Stop-Sessions. Checks that owping's messages have the reference client's
sizes and fixed fields, that its test packets reach the server's port, and
that it reports the reference server's data: 10 sent, 0 lost both ways,
with the captured "to" SID.

Usage: replay-reference-owampd.py OWPING WORKER CAPTURE
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from importlib import import_module  # noqa: E402

ref = import_module('replay-reference-owping')
SKIP = 77
SRV_TO_PORT, SRV_FROM_PORT = 8906, 8909


def check(cond, msg):
    if os.environ.get("REPLAY_DEBUG"):
        print("check:", msg.split("\n")[0], file=sys.stderr)
    if not cond:
        raise AssertionError(msg)


def main():
    owping, worker, capture = sys.argv[1:4]
    streams, udp, t0 = ref.load_pcap(capture)
    c2s = ref.stream_bytes(streams[True])
    s2c = ref.stream_bytes(streams[False])
    greeting, server_start = s2c[0:64], s2c[64:112]
    acc_to, acc_from, start_ack = s2c[112:160], s2c[160:208], s2c[208:240]
    srv_stop, fetch_answer = s2c[240:304], s2c[304:768]
    from_packets = [(t - t0, p) for t, sp, dp, p in udp if sp == SRV_FROM_PORT]
    check(len(from_packets) == 10, 'capture should have 10 "from" packets')
    ref_to_sid = acc_to[4:20]

    socks = ref.bind_udp_ports(SRV_TO_PORT, SRV_FROM_PORT)
    if not socks:
        print('SKIP: the server\'s test ports %d and %d stayed busy' % (SRV_TO_PORT, SRV_FROM_PORT))
        return SKIP
    to_sock, from_sock = socks
    from_sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
    lsock = socket.socket()
    lsock.bind(('127.0.0.1', 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]

    tmp = tempfile.TemporaryDirectory()
    to_file = os.path.join(tmp.name, 'to.owp')
    from_file = os.path.join(tmp.name, 'from.owp')
    epoch = time.time()
    env = dict(os.environ, OWAMP_SESSION_WORKER=worker, OWAMP_DEBUG_TIMEOFFSET='%.6f' % (t0 - epoch),
               TZ='UTC', LC_ALL='C')
    out = open(os.path.join(tmp.name, 'owping.out'), 'w+')
    client = subprocess.Popen([owping, '-A', 'O', '-c', '10', '-i', '0.05', '-P', '8920-8929', '-T', to_file,
                               '-F', from_file,
                               '127.0.0.1:%d' % port], stdout=out, stderr=subprocess.STDOUT, env=env)
    got_to = []

    def receive_to():
        to_sock.settimeout(0.2)
        end = time.time() + 15
        while time.time() < end and len(got_to) < 10:
            try:
                got_to.append(to_sock.recvfrom(2048))
            except socket.timeout:
                continue

    def at(rel):
        delay = epoch + rel - time.time()
        if delay > 0:
            time.sleep(delay)

    try:
        lsock.settimeout(10)
        sock, _ = lsock.accept()
        sock.settimeout(20)
        sock.sendall(greeting)
        sur = ref.recv_exact(sock, 164, 'Set-Up-Response')
        check(struct.unpack('>I', sur[:4])[0] == 1 and sur[4:] == b'\0' * 160,
              'open mode chosen; KeyID, Token and Client-IV zero, as the reference client')
        sock.sendall(server_start)

        req_to = ref.recv_exact(sock, 144, 'Request-Session (to)')
        check(req_to[0] == 1 and req_to[1] == 4 and (req_to[2], req_to[3]) == (0, 1), 'first the to session')
        check(struct.unpack('>II', req_to[4:12]) == (1, 10), 'one slot, 10 packets')
        check(req_to[112] == 0 and struct.unpack('>Q', req_to[120:128])[0] == 0x0ccccccc,
              'exponential slot with mean 0.05 s: 0x0ccccccc, as the reference client')
        check(req_to[48:64] == b'\0' * 16, 'no SID when the server receives')
        check(req_to[88:112] == b'\0' * 24 and req_to[128:144] == b'\0' * 16, 'MBZ and open-mode HMACs zero')
        client_to_port = struct.unpack('>H', req_to[12:14])[0]
        check(8920 <= client_to_port <= 8929, 'sender port from -P')
        sock.sendall(acc_to)

        req_from = ref.recv_exact(sock, 144, 'Request-Session (from)')
        check((req_from[2], req_from[3]) == (1, 0), 'then the from session')
        from_sid = req_from[48:64]
        check(from_sid[:4] == socket.inet_aton('127.0.0.1'), 'the client makes the SID from its address')
        client_from_port = struct.unpack('>H', req_from[14:16])[0]
        check(req_to[68:76] == req_from[68:76], 'both sessions start together')
        # Echo the client's SID, as the reference server does.
        sock.sendall(acc_from[:4] + from_sid + acc_from[20:])

        start = ref.recv_exact(sock, 32, 'Start-Sessions')
        check(start[0] == 2 and start[1:] == b'\0' * 31, 'Start-Sessions')
        receiver = threading.Thread(target=receive_to)
        receiver.start()
        sock.sendall(start_ack)

        for rel, payload in from_packets:
            at(rel)
            from_sock.sendto(payload, ('127.0.0.1', client_from_port))

        # The client stops first in the capture; whichever comes, answer.
        cstop = ref.recv_exact(sock, 64, 'Stop-Sessions from the client')
        check(cstop[0] == 3 and struct.unpack('>I', cstop[4:8])[0] == 1, 'one session described')
        check(cstop[16:32] == ref_to_sid, 'the to session, by the server\'s SID')
        check(struct.unpack('>II', cstop[32:40]) == (10, 0), 'next seqno 10, no skip ranges')
        sock.sendall(srv_stop[:16] + from_sid + srv_stop[32:])

        fetch = ref.recv_exact(sock, 48, 'Fetch-Session')
        check(fetch[0] == 4 and struct.unpack('>II', fetch[8:16]) == (0, 0xffffffff) and fetch[16:32] == ref_to_sid,
              'Fetch-Session of the whole to session')
        sock.sendall(fetch_answer)
        sock.close()

        receiver.join()
        check(client.wait(timeout=30) == 0, 'owping exits 0')
        check(len(got_to) == 10, 'the to session\'s 10 packets arrived (got %d)' % len(got_to))
        check(sorted(struct.unpack('>I', p[:4])[0] for p, _ in got_to) == list(range(10)), 'seq 0..9')
        check(all(src == ('127.0.0.1', client_to_port) for _, src in got_to), 'from the announced port')

        out.seek(0)
        text = out.read()
        blocks = text.split('--- owping statistics from ')
        check(len(blocks) == 3, 'two report blocks:\n' + text)
        check('SID:\t%s' % ref_to_sid.hex() in blocks[1], 'the to block names the reference server\'s SID')
        check('SID:\t%s' % from_sid.hex() in blocks[2], 'the from block names our SID')
        for b in blocks[1:]:
            check('10 sent, 0 lost (0.000%), 0 duplicates' in b, 'no loss:\n' + b)
        saved = open(to_file, 'rb').read()
        check(saved[:4] == b'OwA\0' and struct.unpack('>I', saved[4:8])[0] == 3, '-T saved an .owp file')
        check(saved[40 + 48:40 + 64] == ref_to_sid, 'of the reference server\'s session')
        check(struct.unpack('>I', saved[20:24])[0] == 10, 'with its 10 records')
        check(saved[-250:] == fetch_answer[32 + 144 + 16:32 + 144 + 16 + 250], 'exactly the records it served')
        saved = open(from_file, 'rb').read()
        check(saved[40 + 48:40 + 64] == from_sid and struct.unpack('>I', saved[20:24])[0] == 10,
              '-F saved the from session with its 10 records')
        sent = sorted(p[4:12] for _, p in from_packets)
        recs = saved[struct.unpack('>Q', saved[32:40])[0]:][:250]
        check(sorted(recs[25 * i + 8:25 * i + 16] for i in range(10)) == sent,
              'whose send timestamps are those the reference server sent')
        print('PASS: the reference owampd\'s exchange (mode O) against our owping')
        return 0
    except (AssertionError, OSError, subprocess.TimeoutExpired) as e:
        out.seek(0)
        print('FAIL: %s\n--- owping output ---\n%s' % (e, out.read()))
        return 1
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


if __name__ == '__main__':
    sys.exit(main())
