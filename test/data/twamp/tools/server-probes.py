#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Open-mode probes of a TWAMP server on 127.0.0.1:PORT: send one malformed or
unsupported command after Server-Start and print every octet that comes back
within 3 s (and whether the server closed)."""
import socket, struct, sys, time
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8862
def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: break
        b += c
    return b
def conn():
    s = socket.create_connection(("127.0.0.1", PORT)); s.settimeout(3)
    recvn(s, 64)
    s.sendall(struct.pack(">I", 1) + b"\0" * 160)
    recvn(s, 48)
    return s
def readall(s):
    b = b""
    while True:
        try: c = s.recv(4096)
        except socket.timeout: return b, "no more within 3 s, connection open"
        if not c: return b, "server closed"
        b += c
def req(cmd=5, ipvn=4, cs=0, cr=0, slots=0, npk=0, typep=0, extra=b""):
    now = int(time.time()) + 2208988800 + 2
    m = bytes([cmd, ipvn, cs, cr]) + struct.pack(">IIHH", slots, npk, 8925, 8925)
    m += bytes([127, 0, 0, 1]) + b"\0" * 12 + bytes([127, 0, 0, 1]) + b"\0" * 12 + b"\0" * 16
    m += struct.pack(">IIIIII", 27, now, 0, 2, 0, typep) + b"\0" * 24
    return m + extra
cases = [
    ("Request-TW-Session, Conf-Sender 1", req(cs=1)),
    ("Request-TW-Session, 1 slot + 32 octets", req(slots=1, extra=b"\0" * 32)),
    ("Request-TW-Session, Number of Packets 10", req(npk=10)),
    ("Request-TW-Session, IPVN 5", req(ipvn=5)),
    ("Request-TW-Session, Type-P 0x40000001 (PHB form)", req(typep=0x40000001)),
    ("OWAMP Request-Session (1), 1 slot, 144 octets", req(cmd=1, cr=1, slots=1, npk=10, extra=b"\0" * 32)),
    ("command 9, 32 octets", bytes([9]) + b"\0" * 31),
    ("command 9, 16 octets", bytes([9]) + b"\0" * 15),
    ("Fetch-Session (4), 48 octets", bytes([4]) + b"\0" * 47),
    ("Stop-Sessions (3) before Start-Sessions, 32 octets", bytes([3]) + b"\0" * 31),
    ("valid Request-TW-Session", req()),
]
for name, m in cases:
    s = conn(); s.sendall(m); r, how = readall(s)
    print("%s: sent %d octets; got %d octets (%s)" % (name, len(m), len(r), how))
    for i in range(0, len(r), 48):
        print("    " + r[i:i+48].hex())
    s.close()
