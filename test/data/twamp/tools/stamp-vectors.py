#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Print the hand-built STAMP (RFC 8762) and RFC 8972 TLV vectors of
docs/notes/TWAMP-PROTOCOL.md 10.6 and 11.4."""
import hmac, hashlib, struct
ts1 = struct.pack(">II", 0xeeba7e9b, 0xd35b8130)   # T1 from mode-O frame 14
ts2 = struct.pack(">II", 0xeeba7e9b, 0xd3649d38)
ts3 = struct.pack(">II", 0xeeba7e9b, 0xd365cb35)
err = bytes.fromhex("8001")   # S=1 scale 0 mult 1? no: use 0x0001 unsync
err = bytes.fromhex("0001")
# STAMP unauth sender (RFC 8762 4.2.1 / RFC 8972 SSID)
s = struct.pack(">I", 1) + ts1 + err + b"\0"*30
assert len(s) == 44
print("unauth sender 44:", s.hex())
s_ssid = struct.pack(">I", 1) + ts1 + err + struct.pack(">H", 0x1234) + b"\0"*28
print("unauth sender+SSID 0x1234:", s_ssid.hex())
# stateless reflector reply (seq copied)
r = struct.pack(">I", 1) + ts3 + err + b"\0\0" + ts2 + struct.pack(">I", 1) + ts1 + err + b"\0\0" + bytes([255]) + b"\0"*3
assert len(r) == 44
print("unauth reflector 44:", r.hex())
key = bytes(range(32))
a = struct.pack(">I", 1) + b"\0"*12 + ts1 + err + b"\0"*70
assert len(a) == 96
h = hmac.new(key, a, hashlib.sha256).digest()[:16]
print("auth sender 112:", (a + h).hex())
print("  HMAC-SHA-256(key 00..1f, octets 0-95)[:16] =", h.hex())
ar = struct.pack(">I", 1) + b"\0"*12 + ts3 + err + b"\0"*6 + ts2 + b"\0"*8 + struct.pack(">I", 1) + b"\0"*12 + ts1 + err + b"\0"*6 + bytes([255]) + b"\0"*15
assert len(ar) == 96
hr = hmac.new(key, ar, hashlib.sha256).digest()[:16]
print("auth reflector 112:", (ar + hr).hex())
print("  HMAC =", hr.hex())
# TLVs (RFC 8972): flags|type|length(2)|value
def tlv(flags, t, v): return bytes([flags, t]) + struct.pack(">H", len(v)) + v
pad = tlv(0x80, 1, b"\0"*8)
cos = tlv(0x80, 4, bytes([(46 << 2) | 0, 0, 0, 0]))
tsi = tlv(0x80, 3, bytes([1, 2, 0, 0]))
print("Extra Padding TLV, 8 octets, U set by sender:", pad.hex())
print("Class of Service TLV DSCP1=EF:", cos.hex())
print("Timestamp Information TLV in=NTP/SW-local:", tsi.hex())
# reflector's answer: U cleared, CoS DSCP2=EF ECN2=0, TSI out filled
cos_r = tlv(0x00, 4, bytes([(46 << 2), (46 << 2), 0, 0]))
tsi_r = tlv(0x00, 3, bytes([1, 2, 1, 2]))
unk = tlv(0x80, 200, b"\xde\xad\xbe\xef")
print("reflector's CoS answer:", cos_r.hex(), "TSI answer:", tsi_r.hex(), "unknown type 200 echoed:", unk.hex())
# HMAC TLV over seq + preceding TLVs (authenticated sender with one padding TLV)
body = a[:4]
tl = tlv(0x80, 1, b"\0"*4)
hm = hmac.new(key, body + tl, hashlib.sha256).digest()[:16]
print("auth sender + Extra Padding(4) + HMAC TLV:", (a + h + tl + tlv(0x80, 8, hm)).hex())
print("  HMAC TLV value = HMAC-SHA-256(key, seq || padding TLV)[:16] =", hm.hex())
