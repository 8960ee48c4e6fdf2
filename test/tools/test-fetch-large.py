#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A session too large for one buffer, fetched whole.

700,000 records are 17.5 MB on the wire, more than the control connection
buffers at once (16 MiB): the client must read the records part in pieces,
with the running HMAC checked at its end. owampd serves a session file put
into its data directory (found after a reload); owfetch must save exactly
those records."""

import os
import pwd
import signal
import struct
import tempfile
import time

import owtest

N = 700_000
c = owtest.Checker("fetch of a 700,000-record session")
tmp = tempfile.mkdtemp(prefix="owtools-large.")
os.chmod(tmp, 0o755)

start = owtest.ntp(1795842781.25)
gap = int(0.001 * 2**32)
sid = bytes.fromhex("7f000001eeb4e15cc7a57eaa6bd6fe77")
records = b"".join(struct.pack(">IHHQQB", k, 1, 1, start + (k + 1) * gap, start + (k + 1) * gap + 4294967, 64)
                   for k in range(N))
data = owtest.owp_file(sid=sid, n_packets=N, start=start, timeout=2.0, slots=[(1, 0.001)], records=records)

with owtest.Owampd() as d:
    where = os.path.join(d.tmp, "data", "hierarchy", "root")
    os.makedirs(where, exist_ok=True)
    path = os.path.join(where, sid.hex() + ".owp")
    with open(path, "wb") as f:
        f.write(data)
    for p in (os.path.join(d.tmp, "data", "hierarchy"), where, path):
        os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
    # owampd indexes its data directory at start-up and on reload, which
    # reads the configuration again as owampd's own user.
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for p in (path, os.path.join(d.tmp, "conf", "owampd.pfs")):
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
    d.proc.send_signal(signal.SIGHUP)
    owtest_wait = time.time() + 20
    while time.time() < owtest_wait and "Reloaded policy" not in open(d.log).read():
        time.sleep(0.05)
    c.check("Reloaded policy" in open(d.log).read(), "owampd reloaded:\n" + open(d.log).read()[-2000:])

    saved = os.path.join(tmp, "large.owp")
    t0 = time.time()
    rc, out, err = owtest.run("owfetch", ["-Q", d.addr, sid.hex(), saved], cwd=tmp, timeout=300)
    took = time.time() - t0
    c.eq((rc, err), (0, b""), "owfetch of %d records succeeds" % N)
    with open(saved, "rb") as f:
        got = f.read()
    hdr = struct.unpack(">4sIIIIIQQ", got[:40])
    c.eq(hdr[:6], (b"OwA\0", 3, 1, N, 0, N), "saved: version 3, finished, next seqno, no skips, every record")
    c.eq(got[hdr[7]:hdr[7] + 25 * N] == records, True, "saved: the records, octet for octet, in order")
    c.eq(got[40 + 48:40 + 64], sid, "saved: the session's SID")
    print("fetched %d records (%.1f MB) in %.2f s" % (N, len(records) / 1e6, took))

c.done()
