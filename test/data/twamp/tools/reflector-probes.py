#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Open-mode TWAMP session by hand against a server on 127.0.0.1:PORT, then
feed its reflector odd test packets and print what comes back."""
import socket, struct, sys, time
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8862
def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: break
        b += c
    return b
def ntp_now():
    t = time.time() + 2208988800
    return struct.pack(">II", int(t), int((t % 1) * 2**32))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); u.settimeout(0.5)
uport = u.getsockname()[1]
other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); other.bind(("127.0.0.1", 0)); other.settimeout(0.5)
s = socket.create_connection(("127.0.0.1", PORT)); s.settimeout(5)
recvn(s, 64); s.sendall(struct.pack(">I", 1) + b"\0" * 160); recvn(s, 48)
start = int(time.time()) + 2208988800 + 1
m = bytes([5, 4, 0, 0]) + struct.pack(">IIHH", 0, 0, uport, uport)
m += bytes([127, 0, 0, 1]) + b"\0" * 12 + bytes([127, 0, 0, 1]) + b"\0" * 12 + b"\0" * 16
m += struct.pack(">IIIIII", 27, start, 0, 2, 0, 0) + b"\0" * 24
s.sendall(m); acc = recvn(s, 48)
rport = struct.unpack(">H", acc[2:4])[0]
print("Accept-Session accept=%d port=%d sid=%s" % (acc[0], rport, acc[4:20].hex()))
s.sendall(bytes([2]) + b"\0" * 31); print("Start-Ack accept=%d" % recvn(s, 32)[0])
time.sleep(1.2)
def pkt(seq, size):
    b = struct.pack(">I", seq) + ntp_now() + b"\x00\x01"
    return b + bytes((i * 7 + seq) & 0xff for i in range(size - len(b)))
def send(label, sock, data):
    sock.sendto(data, ("127.0.0.1", rport))
    try:
        r, a = u.recvfrom(2000)
        print("%-40s sent %3d -> answer %3d octets: seq=%d sender-seq=%d padding=%s" % (
            label, len(data), len(r), struct.unpack(">I", r[:4])[0], struct.unpack(">I", r[24:28])[0], r[41:].hex()))
    except socket.timeout:
        print("%-40s sent %3d -> no answer in 0.5 s" % (label, len(data)))
send("seq 0, 41 octets", u, pkt(0, 41))
send("seq 1, 41 octets from another port", other, pkt(1, 41))
send("seq 2, 60 octets", u, pkt(2, 60))
send("seq 3, 41 octets, second copy of seq 2's seq", u, pkt(2, 41))
send("seq 7, 41 octets (gap)", u, pkt(7, 41))
send("seq 8, 20 octets (short)", u, pkt(8, 20))
send("seq 9, 41 octets after the short one", u, pkt(9, 41))
s.sendall(bytes([3, 0, 0, 0]) + struct.pack(">I", 1) + b"\0" * 24)
time.sleep(0.5)
send("seq 10 after Stop-Sessions", u, pkt(10, 41))
s.close()
