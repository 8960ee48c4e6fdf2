# SPDX-License-Identifier: Apache-2.0
"""Helpers for the tests of owstats, owfetch, owup and owping's output.

The programs come from the environment (set by test/tools/meson.build):
OWSTATS, OWFETCH, OWUP, OWPING, OWAMPD, OWAMP_SESSION_WORKER, and the
fixtures from TEST_DATA_DIR. Every run gets TZ=UTC LC_ALL=C, as the
fixtures were made.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

DATA = os.environ.get("TEST_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "data"))
FIXTURES = os.path.join(DATA, "reference-outputs")
SKIP = 77


def prog(name):
    path = os.environ.get(name.upper())
    if not path:
        sys.exit(f"{name.upper()} is not set (run through meson test)")
    return path


def base_env(**extra):
    env = dict(os.environ)
    env.update({"TZ": "UTC", "LC_ALL": "C"})
    env.update(extra)
    return env


def run(name, args, cwd=None, env=None, timeout=120, stdin=subprocess.DEVNULL):
    """Run program `name` ("owstats", ...): (status, stdout bytes, stderr bytes)."""
    p = subprocess.run(
        [prog(name)] + list(args),
        cwd=cwd,
        env=env or base_env(),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    return p.returncode, p.stdout, p.stderr


class Checker:
    """Collects failures so one run reports all of them."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.checks = 0

    def fail(self, what):
        self.failures.append(what)
        print(f"FAIL: {what}\n", flush=True)

    def check(self, cond, what):
        self.checks += 1
        if not cond:
            self.fail(what)
        return cond

    def eq(self, got, want, what):
        self.checks += 1
        if got != want:
            self.fail(f"{what}:\n{first_difference(got, want)}")
            return False
        return True

    def done(self):
        print(f"{self.name}: {self.checks} checks, {len(self.failures)} failed")
        sys.exit(1 if self.failures else 0)


def first_difference(got, want):
    if isinstance(got, bytes):
        got = got.decode("utf-8", "replace")
    if isinstance(want, bytes):
        want = want.decode("utf-8", "replace")
    if not isinstance(got, str) or not isinstance(want, str):
        return f"  got:  {got!r}\n  want: {want!r}"
    g, w = got.splitlines(keepends=True), want.splitlines(keepends=True)
    for i in range(max(len(g), len(w))):
        gl = g[i] if i < len(g) else "<end>"
        wl = w[i] if i < len(w) else "<end>"
        if gl != wl:
            return f"  line {i + 1}\n  got:  {gl!r}\n  want: {wl!r}"
    return "  (same lines, different bytes)"


# --- Names ------------------------------------------------------------------

def loopback_name():
    """What getnameinfo() (flags 0) makes of 127.0.0.1 here."""
    try:
        return socket.getnameinfo(("127.0.0.1", 0), 0)[0]
    except OSError:
        return "127.0.0.1"


def localize(expected):
    """The fixtures were made where 127.0.0.1 is "localhost". Where the
    resolver says otherwise, expect its name in the same places (the
    bracketed names and FROM_HOST/TO_HOST) and nowhere else."""
    name = loopback_name()
    if name == "localhost":
        return expected
    n = name.encode()
    expected = expected.replace(b"[localhost]", b"[" + n + b"]")
    expected = re.sub(rb"^(FROM_HOST|TO_HOST)\tlocalhost$", rb"\1\t" + n.replace(b"\\", b"\\\\"), expected,
                      flags=re.M)
    return expected


def announce_resolver():
    name = loopback_name()
    if name != "localhost":
        print(f"note: 127.0.0.1 resolves to {name!r} here, not 'localhost'; expecting that name instead")


# --- Fixtures ---------------------------------------------------------------

def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def manifest_owstats_rows():
    """Section 5 of MANIFEST.md: (output, [sources], [options], exit, stderr file or None)."""
    rows = []
    text = fixture("MANIFEST.md").decode()
    section = text.split("## 5.", 1)[1]
    for line in section.splitlines():
        m = re.match(r"^\| `([^`]+)` \| `([^`]+)` \| (\(none\)|`[^`]*`) \| (\d+) \| (-|`[^`]+`) \|", line)
        if not m:
            continue
        out, src, opts, status, err = m.groups()
        opts = [] if opts == "(none)" else opts.strip("`").split()
        err = None if err == "-" else err.strip("`")
        rows.append((out, src.split(), opts, int(status), err))
    return rows


# --- Exact order statistics (--json, schema version 2) ----------------------

def order_statistics(delays, sent):
    """What --json's delay.median, delay.jitter and percentiles[] must be,
    from the delays of the first copies and the number of packets sent
    (lost ones count as infinitely late): nearest rank for a percentile,
    the middle value or the mean of the two middle ones for the median.
    Returns (median, percentile(p) -> value, jitter); None for no value."""
    from fractions import Fraction
    import math

    d = sorted(delays)

    def rank(k):
        return d[k - 1] if 1 <= k <= len(d) else None

    def percentile(p):
        if sent == 0:
            return None
        return rank(max(1, math.ceil(Fraction(str(p)) * sent / 100)))

    if sent == 0:
        median = None
    elif sent % 2:
        median = rank(sent // 2 + 1)
    else:
        a, b = rank(sent // 2), rank(sent // 2 + 1)
        median = None if a is None or b is None else a / 2 + b / 2
    p95, p50 = percentile(95), percentile(50)
    return median, percentile, None if p95 is None or p50 is None else p95 - p50


def raw_first_delays(raw_text, first=0, end=None, skips=()):
    """From owstats -R output: (delays of first copies, packets sent) of
    sequence numbers [first, end) outside the skip ranges, the way the
    reference counts sent (one per lost record, one per packet seen)."""
    seen, delays, sent = set(), [], 0
    for line in raw_text.splitlines():
        f = line.split()
        seq, stime, rtime = int(f[0]), int(f[1]), int(f[4])
        if seq < first or (end is not None and seq >= end) or any(a <= seq <= b for a, b in skips):
            continue
        if rtime == 0:
            sent += 1
            continue
        if seq in seen:
            continue
        seen.add(seq)
        sent += 1
        delays.append(float(rtime) / 2**32 - float(stime) / 2**32)
    return delays, sent


# --- Synthesised .owp files -------------------------------------------------

NTP_UNIX = 2208988800
UNSYNC = 0x0001          # S=0, scale 0, multiplier 1: what the fixtures carry
SYNC_4MS = 0x8000 | (20 << 8) | 0x11  # S=1, 17 * 2^(20-32) s, about 4.15 ms


def ntp(unix_seconds):
    return int(round((unix_seconds + NTP_UNIX) * 2**32))


def addr16(ipvn, text):
    if ipvn == 4:
        return socket.inet_pton(socket.AF_INET, text) + bytes(12)
    return socket.inet_pton(socket.AF_INET6, text)


def record(seq, send, recv, send_err=UNSYNC, recv_err=UNSYNC, ttl=255):
    """recv 0 = lost."""
    return struct.pack(">IHHQQB", seq, send_err, recv_err, send, recv, ttl)


def owp_file(*, ipvn=4, sender=("127.0.0.1", 9000), receiver=("127.0.0.1", 9001), sid=None,
             n_packets, start, timeout, slots, records, skips=(), padding=0, type_p=0, finished=1,
             next_seqno=None, fetched=False, store_count=True, version=3):
    """A version 3 .owp file (PROTOCOL.md 11). slots: [(type, seconds)],
    records: bytes of record()s in file order, skips: [(first, last)]."""
    if sid is None:
        sid = bytes.fromhex("7f000001eeb4e15cc7a57eaa6bd60790")
    req = bytearray(112)
    req[0] = 1
    req[1] = ipvn
    req[2], req[3] = 0, 1
    struct.pack_into(">II", req, 4, len(slots), n_packets)
    struct.pack_into(">HH", req, 12, sender[1], receiver[1])
    req[16:32] = addr16(ipvn, sender[0])
    req[32:48] = addr16(ipvn, receiver[0])
    req[48:64] = sid
    struct.pack_into(">IQQI", req, 64, padding, start, int(timeout * 2**32), type_p)
    slot_bytes = b"".join(struct.pack(">B7xQ", t, int(s * 2**32)) for t, s in slots)
    header_len = 40 + 112 + len(slot_bytes) + 16
    n_records = len(records) // 25
    skip_bytes = b"".join(struct.pack(">II", a, b) for a, b in skips)
    if fetched:
        skips_off, rec_off = header_len, header_len + len(skip_bytes)
        body = skip_bytes + records
    else:
        rec_off, skips_off = header_len, header_len + len(records)
        body = records + skip_bytes
    if not skips and fetched:
        skips_off = header_len
    hdr = struct.pack(">4sIIIIIQQ", b"OwA\0", version, finished,
                      n_packets if next_seqno is None else next_seqno, len(skips),
                      n_records if store_count else 0, skips_off, rec_off)
    return hdr + bytes(req) + slot_bytes + bytes(16) + body


# --- A live owampd ----------------------------------------------------------

def free_port(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ipv6_loopback_usable():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class Owampd:
    """owampd in the foreground on loopback, sessions kept after a fetch
    (delete_on_fetch=off) so that owfetch can fetch them again."""

    def __init__(self, host="127.0.0.1", family=socket.AF_INET):
        self.host = host
        self.family = family
        self.tmp = tempfile.mkdtemp(prefix="owtools-owampd.")
        self.proc = None

    @property
    def addr(self):
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __enter__(self):
        conf = os.path.join(self.tmp, "conf")
        data = os.path.join(self.tmp, "data")
        os.makedirs(conf)
        os.makedirs(data)
        with open(os.path.join(conf, "owampd.limits"), "w") as f:
            f.write("limit root with disk=0, bandwidth=0, delete_on_fetch=off, allow_open_mode=on\n"
                    "assign default root\n")
        # The fixtures' identity: testuser, pass-phrase "testsecret".
        self.pfs = os.path.join(self.tmp, "client.pfs")
        for path in (os.path.join(conf, "owampd.pfs"), self.pfs):
            with open(path, "w") as f:
                f.write("testuser\t" + b"testsecret".hex() + "\n")
            os.chmod(path, 0o644 if path == self.pfs else 0o600)
        args = ["-Z", "-c", conf, "-d", data, "-R", self.tmp]
        if os.geteuid() == 0:
            # owampd leaves root once its port is bound.
            nobody = pwd.getpwnam("nobody")
            for d in (self.tmp, data):
                os.chown(d, nobody.pw_uid, nobody.pw_gid)
            os.chmod(self.tmp, 0o755)
            args += ["-U", "nobody"]
        self.log = os.path.join(self.tmp, "owampd.log")
        for _ in range(5):
            self.port = free_port(self.family, self.host)
            with open(self.log, "w") as logf:
                self.proc = subprocess.Popen([prog("owampd")] + args + ["-S", self.addr], stdout=logf,
                                             stderr=subprocess.STDOUT, env=base_env())
            deadline = time.time() + 20
            while time.time() < deadline and self.proc.poll() is None:
                if "ready:" in open(self.log).read():
                    return self
                time.sleep(0.05)
            self.stop()
        raise RuntimeError("owampd did not start:\n" + open(self.log).read())

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is not None:
            with open(self.log) as f:
                log = f.read()
            print(f"owampd died early (status {self.proc.returncode}); its log ({len(log)} octets):")
            print(log[-5000:], flush=True)
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
