#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Decode and check a perfSONAR twping<->twampd capture: every control message
(decrypted in A/E/M), every HMAC, every test packet (decrypted in A/E)."""
import sys, subprocess, hashlib, hmac, struct
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

def _c(k, m): return Cipher(algorithms.AES(k), m)
def ecb_enc(k, b): e = _c(k, modes.ECB()).encryptor(); return e.update(b) + e.finalize()
def ecb_dec(k, b): d = _c(k, modes.ECB()).decryptor(); return d.update(b) + d.finalize()
def cbc_enc(k, iv, b): e = _c(k, modes.CBC(iv)).encryptor(); return e.update(b) + e.finalize()
def cbc_dec(k, iv, b): d = _c(k, modes.CBC(iv)).decryptor(); return d.update(b) + d.finalize()
def hm(k, b): return hmac.new(k, b, hashlib.sha1).digest()[:16]
def u32(b, o): return struct.unpack(">I", b[o:o+4])[0]
def ts(b):
    s, f = struct.unpack(">II", b)
    return "%d.%09d" % (s, (f * 10**9) >> 32)
def tsf(b):
    s, f = struct.unpack(">II", b); return s + f / 2**32

def load(pcap, port):
    out = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch",
                          "-e", "tcp.srcport", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "tcp.payload",
                          "-e", "udp.payload", "-e", "ip.ttl", "-e", "ipv6.hlim"], capture_output=True, text=True).stdout
    c2s, s2c, udp = [], [], []
    for line in out.splitlines():
        f = line.split("\t")
        if f[5]:
            (s2c if f[2] == str(port) else c2s).append(bytes.fromhex(f[5]))
        elif f[6]:
            udp.append((int(f[0]), float(f[1]), int(f[3]), int(f[4]), bytes.fromhex(f[6]), f[7] or f[8]))
    return b"".join(c2s), b"".join(s2c), udp, len(c2s), len(s2c)

def main():
    pcap, port = sys.argv[1], int(sys.argv[2])
    secret = sys.argv[3].encode() if len(sys.argv) > 3 else None
    cs, sc, udp, ncs, nsc = load(pcap, port)
    print("control: client->server %d octets (%d segments), server->client %d octets (%d segments)" % (len(cs), ncs, len(sc), nsc))
    g = sc[:64]
    chal, salt, count = g[16:32], g[32:48], u32(g, 48)
    print("Server-Greeting: unused=%s modes=0x%x challenge=%s salt=%s count=%d mbz=%s" % (g[:12].hex(), u32(g, 12), chal.hex(), salt.hex(), count, g[52:].hex()))
    su = cs[:164]
    mode = u32(su, 0)
    print("Set-Up-Response: mode=%d keyid=%r token=%s client-iv=%s" % (mode, su[4:84].rstrip(b"\0").decode(), su[84:148].hex(), su[148:164].hex()))
    ss = sc[64:112]
    print("Server-Start: mbz=%s accept=%d server-iv=%s" % (ss[:15].hex(), ss[15], ss[16:32].hex()))
    crypt = mode in (2, 4, 8)
    if crypt:
        dk = hashlib.pbkdf2_hmac("sha1", secret, salt, count, 16)
        tok = cbc_dec(dk, b"\0" * 16, su[84:148])
        assert tok[:16] == chal, "token does not hold the challenge"
        akey, hkey = tok[16:32], tok[32:64]
        print("  pbkdf2 key=%s  (token holds the challenge)\n  control AES key=%s\n  control HMAC key=%s" % (dk.hex(), akey.hex(), hkey.hex()))
        cp = cbc_dec(akey, su[148:164], cs[164:])
        sp = cbc_dec(akey, ss[16:32], sc[96:])
    else:
        akey = hkey = None
        cp, sp = cs[164:], sc[96:]
    print("  Server-Start start-time=%s mbz=%s" % (ts(sp[:8]), sp[8:16].hex()))
    def check(acc, field, label):
        if crypt:
            ok = hm(hkey, acc) == field
            print("    HMAC(%s, %d octets) %s" % (label, len(acc), "verified" if ok else "WRONG want " + hm(hkey, acc).hex()))
            assert ok
        else:
            print("    HMAC field %s" % field.hex())
    # client -> server
    off, nreq, reqs = 0, 0, []
    while off < len(cp):
        c = cp[off]
        if c == 5:
            m = cp[off:off+112]
            print("C->S Request-TW-Session: %s" % m.hex())
            print("    ipvn=%d conf-sender=%d conf-receiver=%d slots=%d packets=%d sender-port=%d receiver-port=%d" % (
                m[1] & 15, m[2], m[3], u32(m, 4), u32(m, 8), *struct.unpack(">HH", m[12:16])))
            print("    sender-addr=%s receiver-addr=%s sid=%s padding=%d start=%s timeout=%s(%s) type-p=0x%08x mbz=%s" % (
                m[16:32].hex(), m[32:48].hex(), m[48:64].hex(), u32(m, 64), ts(m[68:76]), ts(m[76:84]), m[76:84].hex(), u32(m, 84), m[88:96].hex()))
            check(m[:96], m[96:112], "octets 0-95")
            reqs.append(m); off += 112
        elif c == 2:
            m = cp[off:off+32]; print("C->S Start-Sessions: %s" % m.hex()); check(m[:16], m[16:], "block 1"); off += 32
        elif c == 3:
            m = cp[off:off+32]; print("C->S Stop-Sessions: %s  accept=%d sessions=%d" % (m.hex(), m[1], u32(m, 4))); check(m[:16], m[16:], "block 1"); off += 32
        else:
            print("C->S ??? %s" % cp[off:].hex()); break
    # server -> client after Server-Start's encrypted block
    acc = sp[:16]; off = 16; sids = []
    for r in reqs:
        m = sp[off:off+48]
        print("S->C Accept-Session: %s  accept=%d port=%d sid=%s" % (m.hex(), m[0], struct.unpack(">H", m[2:4])[0], m[4:20].hex()))
        check(acc + m[:32], m[32:48], "Server-Start block + octets 0-31" if acc else "octets 0-31"); acc = b""
        sids.append((m[4:20], struct.unpack(">H", m[2:4])[0])); off += 48
    if off < len(sp):
        m = sp[off:off+32]; print("S->C Start-Ack: %s  accept=%d" % (m.hex(), m[0])); check(m[:16], m[16:], "block 1"); off += 32
    if off < len(sp):
        print("S->C more: %s" % sp[off:].hex())
    # test packets
    for sid, sport in sids:
        tkey = thkey = None
        if mode in (2, 4):
            tkey = ecb_enc(sid, akey)
            thkey = cbc_enc(sid, b"\0" * 16, hkey)
            print("test keys for SID %s: AES %s HMAC %s" % (sid.hex(), tkey.hex(), thkey.hex()))
        last = {}
        for fno, t, s, d, p, ttl in udp:
            to_ref = d == sport
            if not to_ref and s != sport: continue
            if mode in (2, 4):
                nb = (1 if mode == 2 else 2) if to_ref else (1 if mode == 2 else 6)
                clear = cbc_dec(tkey, b"\0" * 16, p[:16 * nb])
                full = clear + p[16 * nb:]
                hoff = 32 if to_ref else 96
                ok = hm(thkey, clear) == p[hoff:hoff+16]
                assert ok, "test HMAC"
            else:
                full = p
                ok = None
            if to_ref:
                if mode in (2, 4):
                    print("#%d S %3d octets ttl=%s seq=%d mbz=%s ts=%s err=%s mbz=%s hmac=%s pad=%s" % (
                        fno, len(p), ttl, u32(full, 0), full[4:16].hex(), ts(full[16:24]), full[24:26].hex(), full[26:32].hex(), "ok" if ok else "-", full[48:].hex()))
                else:
                    print("#%d S %3d octets ttl=%s seq=%d ts=%s err=%s pad=%s" % (fno, len(p), ttl, u32(full, 0), ts(full[4:12]), full[12:14].hex(), full[14:].hex()))
            else:
                if mode in (2, 4):
                    f = dict(seq=u32(full, 0), mbz1=full[4:16], t3=full[16:24], err=full[24:26], mbz2=full[26:32], t2=full[32:40], mbz3=full[40:48],
                             sseq=u32(full, 48), mbz4=full[52:64], t1=full[64:72], serr=full[72:74], mbz5=full[74:80], sttl=full[80], mbz6=full[81:96], pad=full[112:])
                else:
                    f = dict(seq=u32(full, 0), t3=full[4:12], err=full[12:14], mbz2=full[14:16], t2=full[16:24], sseq=u32(full, 24), t1=full[28:36],
                             serr=full[36:38], mbz5=full[38:40], sttl=full[40], pad=full[41:])
                mbz = b"".join(v for k, v in f.items() if k.startswith("mbz"))
                print("#%d R %3d octets ttl=%s seq=%d T3=%s err=%s T2=%s sender-seq=%d T1=%s sender-err=%s sender-ttl=%d proc=%.3f us mbz-all-zero=%s hmac=%s pad=%s" % (
                    fno, len(p), ttl, f["seq"], ts(f["t3"]), f["err"].hex(), ts(f["t2"]), f["sseq"], ts(f["t1"]), f["serr"].hex(), f["sttl"],
                    (tsf(f["t3"]) - tsf(f["t2"])) * 1e6, not any(mbz), "ok" if ok else "-", f["pad"].hex()))

if __name__ == "__main__":
    main()
