#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""owstats on sessions whose median and percentiles land on printing ties.

The reference keeps -b in a float, so a bucket's upper edge is
index x (float) width: for -b 0.000001, bucket 5215 is 5214.99998 us and
prints "5.21e+03" with %.3g, where index x (double) 0.000001 is 5215.000...
and prints "5.22e+03" (issue 12, item 8). The sessions here are made so that
their 25th, 50th and 75th percentiles fall into buckets whose upper edges
have four significant digits ending in 5, for several bucket widths, and
each is printed in every unit (-n).

Default run: our owstats against outputs the reference's owstats printed
for the same files (test/data/owstats-ties/). With OWAMP_REFERENCE_BIN set:
the reference's owstats itself, on those files and on freshly synthesised
lossy sessions, as the oracle.

    test-owstats-ties.py --regenerate    # rewrite the files with the reference

The generator below must keep making the stored .owp files byte for byte;
the test says so when it does not.
"""

import math
import os
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal

import owtest
from synth import Session, f32

DIR = os.path.join(owtest.DATA, "owstats-ties")
UNITS = {"n": 1e9, "u": 1e6, "m": 1e3, "s": 1.0}
SUBM = 2048  # a delay is a difference of two 32.32 times as doubles: a multiple of 2^-21 s


def delay_of(m):
    return m * SUBM / 2**32


def bucket(m, wf):
    q = delay_of(m) / wf
    return math.ceil(q) if q > 0 else math.floor(q)


def m_in_bucket(k, wf):
    """A multiple of 2^-21 s whose bucket is k under width wf, or None."""
    centre = int((k - 0.5) * wf * 2**32 / SUBM)
    for j in sorted(range(-4, 5), key=abs):
        if bucket(centre + j, wf) == k:
            return centre + j
    return None


def half_way(k, wstr):
    """k x width has four significant digits, the last a 5: %.3g has to
    break a tie there."""
    digits = (Decimal(wstr) * k).normalize().as_tuple().digits
    return len(digits) == 4 and digits[-1] == 5


def differs(k, w, wf):
    """The units in which bucket k's edge prints differently with the
    float width (the reference) and the double one."""
    return [u for u, f in UNITS.items() if "%.3g" % (k * wf * f) != "%.3g" % (k * w * f)]


def tie_buckets(wstr, centre_k):
    """Three buckets around centre_k, about 100 apart, that print
    differently and that delays can hit."""
    w = float(wstr)
    wf = f32(w)
    found = []
    for want in (centre_k - 100, centre_k, centre_k + 100):
        for k in sorted(range(want - 60, want + 60), key=lambda x: abs(x - want)):
            if half_way(k, wstr) and differs(k, w, wf) and m_in_bucket(k, wf) is not None:
                found.append(k)
                break
        else:
            raise RuntimeError(f"no tie bucket near {want} for width {wstr}")
    return found


def tie_session(name, wstr, centre_k, seed):
    """300 packets, 10 % lost, the rest in seven groups by delay: below,
    at the first tie bucket, between, at the second, between, at the
    third, above; sized so that with the losses the 25th, 50th and 75th
    percentiles of sent fall into the tie buckets."""
    w = float(wstr)
    wf = f32(w)
    t1, t2, t3 = tie_buckets(wstr, centre_k)
    # Of 90 % received: ranks 1-45 below, 46-105 at t1, 106-120 between,
    # 121-180 at t2, ...: 30 ranks of margin on either side of 75, 150, 225.
    groups = [("range", t1 - 150, t1 - 1, 50), ("at", t1, t1, 67), ("range", t1 + 1, t2 - 1, 17),
              ("at", t2, t2, 67), ("range", t2 + 1, t3 - 1, 17), ("at", t3, t3, 67),
              ("range", t3 + 1, t3 + 150, 15)]
    import random
    rnd = random.Random(seed * 7919)
    roles = [g for g in groups for _ in range(g[3])]
    rnd.shuffle(roles)

    def delay_raw(r, seq, send):
        kind, lo, hi, _ = roles[seq]
        if kind == "at":
            m = m_in_bucket(lo, wf)
        else:
            m = r.randint(int((lo - 1) * wf * 2**32 / SUBM) + 2, int(hi * wf * 2**32 / SUBM) - 1)
        # fl(send + off) - fl(send) = m x 2048 exactly
        return int(float(send)) + m * SUBM - send

    s = Session(name, n_packets=len(roles), gaps=[0.01], loss=0.1, seed=seed, delay_raw=delay_raw)
    s.ties = (t1, t2, t3)
    s.width = wstr
    return s


def sessions():
    """The stored sessions: one per bucket width made of ties, and three
    ordinary lossy 5 ms sessions of the kind issue 12 found the digit in."""
    out = [
        tie_session("ties-w0.0001", "0.0001", 5200, 1),
        tie_session("ties-w0.00001", "0.00001", 5200, 2),
        tie_session("ties-w0.000001", "0.000001", 5200, 3),
        tie_session("ties-w0.0000001", "0.0000001", 5200, 4),
        tie_session("ties-w0.00025", "0.00025", 2100, 5),
    ]
    for seed in (37, 40, 49):
        s = Session(f"lossy-5ms-{seed}", n_packets=300, gaps=[0.01], loss=0.1, delay=(0.0049, 0.0055), seed=seed)
        s.ties = None
        s.width = "0.000001"
        out.append(s)
    return out


def arg_sets(s):
    widths = [[], ["-b", "0.0001"]] if s.width == "0.0001" else [["-b", s.width]]
    sets = []
    for b in widths:
        for u in UNITS:
            sets.append(["-n", u, "-a", "25,75"] + b)
        sets.append(["-M"] + b)
    return sets


def run(prog, args, path, cwd):
    p = subprocess.run([prog] + args + [os.path.basename(path)], cwd=cwd, env=owtest.base_env(),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    # The reference's library complains on stderr about an unsynchronised
    # host clock; that says nothing about the file.
    err = b"".join(l for l in p.stderr.splitlines(keepends=True) if not l.startswith(b"owstats: NTP: "))
    return p.returncode, p.stdout, err


def expected_text(path):
    """{args: stdout} from a .expected file."""
    out, key, buf = {}, None, []
    with open(path, "rb") as f:
        for line in f.read().splitlines(keepends=True):
            if line.startswith(b"### owstats "):
                if key is not None:
                    out[key] = b"".join(buf)
                key, buf = line[len(b"### owstats "):].decode().strip(), []
            else:
                buf.append(line)
    if key is not None:
        out[key] = b"".join(buf)
    return out


def reference_owstats():
    d = os.environ.get("OWAMP_REFERENCE_BIN")
    p = os.path.join(d, "owstats") if d else None
    return p if p and os.access(p, os.X_OK) else None


def regenerate():
    ref = reference_owstats()
    if not ref:
        sys.exit("--regenerate needs OWAMP_REFERENCE_BIN with the reference's owstats")
    os.makedirs(DIR, exist_ok=True)
    for s in sessions():
        path = os.path.join(DIR, s.name + ".owp")
        with open(path, "wb") as f:
            f.write(s.data)
        with open(os.path.join(DIR, s.name + ".expected"), "wb") as f:
            for args in arg_sets(s):
                rc, out, err = run(ref, args, path, DIR)
                if rc != 0 or err:
                    sys.exit(f"reference owstats {args} {path}: {rc} {err!r}")
                f.write(("### owstats " + " ".join(args) + "\n").encode() + out)
        print("wrote", path)


def main():
    if "--regenerate" in sys.argv[1:]:
        regenerate()
        return

    c = owtest.Checker("owstats ties")
    owtest.announce_resolver()
    ours = owtest.prog("owstats")
    ref = reference_owstats()
    tmp = tempfile.mkdtemp(prefix="owstats-ties.")
    try:
        for s in sessions():
            path = os.path.join(DIR, s.name + ".owp")
            with open(path, "rb") as f:
                stored = f.read()
            c.eq(stored == s.data, True, f"{s.name}: the generator still makes the stored file "
                 "(else rerun with --regenerate and OWAMP_REFERENCE_BIN)")

            if s.ties:
                # The session is what it claims: each percentile's bucket is
                # a tie bucket, where float and double widths print apart.
                w = float(s.width)
                e = s.expected(width=w)
                for alpha, k in zip((0.25, 0.5, 0.75), s.ties):
                    got = e["pct"](alpha)
                    c.eq(None if got is None else round(got / f32(w)), k,
                         f"{s.name}: the {alpha:g} quantile is in tie bucket {k}")
                    c.check(differs(k, w, f32(w)), f"{s.name}: bucket {k} prints differently with a double width")

            want = expected_text(os.path.join(DIR, s.name + ".expected"))
            sets = arg_sets(s)
            c.eq(sorted(want), sorted(" ".join(a) for a in sets), f"{s.name}: the stored runs")
            for args in sets:
                key = " ".join(args)
                rc, out, err = run(ours, args, path, DIR)
                c.eq((rc, err), (0, b""), f"{s.name}: owstats {key}: exit status and stderr")
                c.eq(out, owtest.localize(want.get(key, b"")), f"{s.name}: owstats {key} vs the reference's output")
                if ref:
                    c.eq(out, run(ref, args, path, DIR)[1], f"{s.name}: owstats {key} vs the reference's owstats")

        if ref:
            # Fresh lossy sessions, every unit, widths from 0.1 us to 1 ms.
            widths = ["0.0000001", "0.0000003", "0.000001", "0.00001", "0.00025", "0.0001", "0.001"]
            for seed in range(100, 108):
                s = Session(f"fresh-{seed}", n_packets=300, gaps=[0.01], loss=0.1,
                            delay=(0.0049, 0.0055) if seed % 2 else (0.00002, 0.0004), seed=seed)
                path = os.path.join(tmp, s.name + ".owp")
                with open(path, "wb") as f:
                    f.write(s.data)
                for b in widths:
                    for args in [["-n", u, "-a", "25,75,99.5", "-b", b] for u in UNITS] + [["-M", "-b", b]]:
                        got = run(ours, args, path, tmp)
                        c.eq(got, run(ref, args, path, tmp), f"{s.name}: owstats {' '.join(args)} vs the reference's")
        else:
            print("note: OWAMP_REFERENCE_BIN not set: compared with the stored outputs only")
    finally:
        shutil.rmtree(tmp)
    c.done()


main()
