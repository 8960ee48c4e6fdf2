#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""owstats on sessions that are not in the shared fixtures: lossy, with
duplicates and reordering, long, IPv6, with skip ranges, synchronised
clocks, several TTLs, negative delays, unfinished, late records, DSCP.

Every format must run without crashing (the sanitized build runs this
too) and the numbers must be the reference's: synth.Session.expected()
computes them independently, from the rules in
docs/notes/reference-owstats.md."""

import json
import os
import re
import shutil
import socket
import tempfile
import time

import owtest
from synth import Session

c = owtest.Checker("owstats on synthesised sessions")
tmp = tempfile.mkdtemp(prefix="owstats-synth.")


def name_of(ipvn, addr):
    fam = socket.AF_INET if ipvn == 4 else socket.AF_INET6
    sa = (addr, 0) if ipvn == 4 else (addr, 0, 0, 0)
    try:
        return socket.getnameinfo(sa, 0)[0]
    except OSError:
        return addr
    finally:
        del fam


def g(v):
    return "nan" if v is None else "%g" % v


def g3(v, scale=1e3):
    return "nan" if v is None else "%.3g" % (v * scale)


def owstats(args, path):
    return owtest.run("owstats", args + [path], cwd=tmp)


FORMATS = [[], ["-v"], ["-v7"], ["-M"], ["-M", "-U"], ["-R"], ["-a", "10,50,99.9"], ["-b", "0.001"],
           ["-b", "0.0000001"], ["-n", "n"], ["-n", "u"], ["-n", "s"], ["-N", "7"], ["-M", "-N", "7"],
           ["-Q"], ["-U", "-v"], ["--json"], ["--json", "-v"], ["--json", "-N", "7"]]


def check_session(s, formats=FORMATS, exact=True):
    path = os.path.join(tmp, s.name + ".owp")
    with open(path, "wb") as f:
        f.write(s.data)
    outs = {}
    for args in formats:
        rc, out, err = owstats(args, path)
        what = f"{s.name}: owstats {' '.join(args)}"
        c.eq((rc, err), (0, b""), f"{what}: exit status and stderr")
        outs[" ".join(args)] = out.decode()
    if not exact:
        return outs

    e = s.expected()
    m = dict(l.split("\t", 1) for l in outs["-M"].splitlines() if "\t" in l and not l.startswith("\t"))
    what = f"{s.name} -M"
    c.eq(m.get("SENT"), str(e["sent"]), f"{what}: SENT")
    c.eq(m.get("LOST"), str(e["lost"]), f"{what}: LOST")
    c.eq(m.get("DUPS"), str(e["dups"]), f"{what}: DUPS")
    c.eq(m.get("MIN", "nan"), g(e["min"]), f"{what}: MIN")
    c.eq(m.get("MAX", "nan"), g(e["max"]), f"{what}: MAX")
    c.eq(m.get("MEDIAN", "nan"), g(e["median"]), f"{what}: MEDIAN")
    c.eq(m.get("PDV", "nan"), g(e["jitter"]), f"{what}: PDV")
    c.eq(m.get("SESSION_PACKET_COUNT"), str(s.n_packets), f"{what}: SESSION_PACKET_COUNT")
    c.eq(m.get("SYNC"), "1" if s.err & 0x8000 else "0", f"{what}: SYNC")
    c.eq(m.get("FROM_ADDR"), s.sender[0], f"{what}: FROM_ADDR")
    c.eq(m.get("TO_ADDR"), s.receiver[0], f"{what}: TO_ADDR")
    c.eq(m.get("FROM_HOST"), name_of(s.ipvn, s.sender[0]), f"{what}: FROM_HOST")
    c.eq(m.get("TO_HOST"), name_of(s.ipvn, s.receiver[0]), f"{what}: TO_HOST")
    c.eq(m.get("START_TIME"), "%020d" % s.sched[0], f"{what}: START_TIME (scheduled time of packet 0)")
    c.eq(m.get("END_TIME"), "%020d" % s.sched[-1], f"{what}: END_TIME (scheduled time of the last packet)")
    ttl_lines = re.search(r"<TTLBUCKETS>\n(.*?)</TTLBUCKETS>", outs["-M"], re.S)
    got_ttls = {} if not ttl_lines else {int(a): int(b) for a, b in
                                         (l.split("\t")[1:] for l in ttl_lines.group(1).splitlines())}
    c.eq(got_ttls, e["ttls"], f"{what}: TTLBUCKETS")
    nre = re.search(r"<NREORDERING>\n(.*?)</NREORDERING>", outs["-M"], re.S).group(1)
    want_nre, j = "", 0
    while j < e["L"] and e["reorder"][j]:
        want_nre += "\t%d\t%d\n" % (j + 1, e["reorder"][j])
        j += 1
    if j == 0 or j >= e["L"]:
        want_nre += "\t%d\t0\n" % (j + 1)
    c.eq(nre, want_nre, f"{what}: NREORDERING")

    # The default summary, line by line.
    d = outs[""].splitlines()
    what = f"{s.name} default"
    host = lambda ipvn, a: name_of(ipvn, a)
    c.eq(d[1], "--- owping statistics from [%s]:%d to [%s]:%d ---" % (
        host(s.ipvn, s.sender[0]), s.sender[1], host(s.ipvn, s.receiver[0]), s.receiver[1]), f"{what}: header")
    loss = 100.0 * e["lost"] / e["sent"] if e["sent"] else 0.0
    c.eq(d[5], "%d sent, %d lost (%.3f%%), %d duplicates" % (e["sent"], e["lost"], loss, e["dups"]),
         f"{what}: counts")
    err = "(err=%.3g ms)" % (2 * 17 * 2.0**-12 * 1e3) if s.err & 0x8000 else "(unsync)"
    c.eq(d[6], "one-way delay min/median/max = %s/%s/%s ms, %s" % (g3(e["min"]), g3(e["median"]), g3(e["max"]), err),
         f"{what}: delays")
    c.eq(d[7], "one-way jitter = %s ms (P95-P50)" % g3(e["jitter"]), f"{what}: jitter")
    hops = sorted(255 - t for t in e["ttls"])
    if len(hops) == 1:
        want_hops = "hops = %d (consistently)" % hops[0]
    elif hops:
        want_hops = "hops takes %d values; min hops = %d, max hops = %d" % (len(hops), hops[0], hops[-1])
    else:
        want_hops = "TTL not reported"
    c.eq(d[8], want_hops, f"{what}: hops")
    want_re, j = [], 0
    while j < e["L"] and e["reorder"][j]:
        want_re.append("%d-reordering = %f%%" % (j + 1, 100.0 * e["reorder"][j] / e["reorder_total"]))
        j += 1
    want_re.append("no reordering" if j == 0 else "no %d-reordering" % (j + 1) if j < e["L"]
                   else "%d-reordering not handled" % (e["L"] + 1))
    c.eq(d[9:9 + len(want_re)], want_re, f"{what}: reordering")

    # -a: the percentiles from the same histogram.
    a = outs["-a 10,50,99.9"]
    for p, label in [(10.0, "10.0"), (50.0, "50.0"), (99.9, "99.9")]:
        alpha = float(__import__("struct").unpack("f", __import__("struct").pack("f", p))[0]) / 100.0
        c.check("\t%s: %s ms\n" % (label, g3(e["pct"](alpha))) in a, f"{s.name} -a: percentile {label}")

    # -R: every record, in file order.
    raw = outs["-R"].splitlines()
    c.eq(len(raw), len(s.recs), f"{s.name} -R: one line per record")
    c.eq([int(l.split()[0]) for l in raw], [r[1] for r in s.recs], f"{s.name} -R: file order")

    # -v: one line per record in no skip range, then the summary.
    v = outs["-v"]
    n_lines = len(re.findall(r"^seq_no=", v, re.M))
    in_range = [r for r in s.recs if not any(a <= r[1] <= b for a, b in s.skips)]
    c.eq(n_lines, len(in_range), f"{s.name} -v: one line per record outside the skip ranges")
    c.eq(len(re.findall(r"\*LOST\*", v)), sum(1 for r in in_range if r[0] == "lost"), f"{s.name} -v: *LOST* lines")
    c.check(v.endswith(outs[""]), f"{s.name} -v: ends with the default summary")
    if s.err & 0x8000:
        uv = outs["-U -v"]
        c.check(re.search(r"^seq_no=\d+ delay=\S+e[-+]\d+ ms \(sync, err=\S+ ms\) sent=\d+\.\d{6} recv=\d+\.\d{6}$",
                          uv, re.M) is not None, f"{s.name} -U -v: synchronised lines carry sent=/recv=")
        c.check(re.search(r"^seq_no=\d+ +delay=\S+ ms\t\(sync, err=\S+ ms\)$", v, re.M) is not None,
                f"{s.name} -v: synchronised lines")

    # --json agrees with -M.
    doc = json.loads(outs["--json"])
    sm = doc["summaries"][0]
    c.eq((sm["sent"], sm["lost"], sm["duplicates"]), (e["sent"], e["lost"], e["dups"]), f"{s.name} --json: counts")
    for key, mkey in [("min", "MIN"), ("max", "MAX")]:
        c.eq(g(sm["delay"][key]), m.get(mkey, "nan"), f"{s.name} --json: delay.{key} = -M {mkey}")
    for key, mkey in [("median", "MEDIAN"), ("jitter", "PDV")]:
        c.eq(g(sm["histogram"][key]), m.get(mkey, "nan"), f"{s.name} --json: histogram.{key} = -M {mkey}")
    # Exact order statistics against a sort of the session's own delays.
    median, percentile, jitter = owtest.order_statistics(e["first_delays"], e["sent"])
    c.eq(sm["delay"]["median"], median, f"{s.name} --json: delay.median, exact")
    c.eq(sm["delay"]["jitter"], jitter, f"{s.name} --json: delay.jitter, exact")
    c.eq([p["delay"] for p in sm["percentiles"]], [percentile(p) for p in (25, 50, 75, 90, 95, 99)],
         f"{s.name} --json: percentiles, exact")
    c.eq(doc["session"]["sender"]["address"], s.sender[0], f"{s.name} --json: sender address")
    c.eq(doc["session"]["ip_version"], s.ipvn, f"{s.name} --json: ip_version")
    c.eq([[r["first_seqno"], r["last_seqno"]] for r in doc["session"]["skip_ranges"]], [list(x) for x in s.skips],
         f"{s.name} --json: skip ranges")
    jv = json.loads(outs["--json -v"])
    c.eq(len(jv["summaries"][0]["records"]), len(in_range), f"{s.name} --json -v: records")

    # -N 7: the blocks cover the session.
    nb = json.loads(outs["--json -N 7"])["summaries"]
    c.eq(len(nb), -(-s.n_packets // 7) if s.n_packets > 7 else 1, f"{s.name} --json -N 7: blocks")
    c.eq(outs["-N 7"].count("--- owping statistics"), len(nb), f"{s.name} -N 7: blocks")
    return outs


try:
    # Lossy, duplicated, reordered, IPv4.
    check_session(Session("lossy", n_packets=500, gaps=[0.01], loss=0.2, dup=0.05, reorder=0.15, seed=3))
    # Heavy loss: high percentiles are nan.
    check_session(Session("heavy-loss", n_packets=200, gaps=[0.005], loss=0.6, seed=4))
    # Everything lost: nan everywhere, no buckets.
    s = Session("all-lost", n_packets=50, gaps=[0.02], loss=1.0)
    outs = check_session(s)
    c.check("<BUCKETS>" not in outs["-M"] and "\nMIN\t" not in outs["-M"], "all-lost -M: no buckets, no MIN")
    c.check("min/median/max = nan/nan/nan ms" in outs[""], "all-lost: nan delays")
    # IPv6 both ends.
    check_session(Session("ipv6", n_packets=120, gaps=[0.01], ipvn=6, sender=("::1", 8841),
                          receiver=("::1", 40815), loss=0.05, dup=0.02, reorder=0.1, seed=5))
    # IPv6 documentation addresses: numeric unless the resolver knows them.
    check_session(Session("ipv6-doc", n_packets=40, gaps=[0.01], ipvn=6, sender=("2001:db8::1", 861),
                          receiver=("2001:db8:ffff::abcd", 9999), seed=6))
    # Skip ranges, with lost records for some skipped packets.
    for fetched in (False, True):
        check_session(Session("skips" + ("-fetched" if fetched else ""), n_packets=300, gaps=[0.01],
                              skips=[(10, 19), (100, 149), (299, 299)], loss=0.1, reorder=0.05, seed=7,
                              fetched=fetched))
    # Synchronised clocks with an error estimate, several TTLs, two slots.
    check_session(Session("sync-ttl", n_packets=150, gaps=[0.01, 0.003], sync=True, ttls=(250, 252, 255),
                          reorder=0.1, seed=8))
    # Negative delays (clocks apart): negative buckets, still sorted.
    check_session(Session("negative", n_packets=100, gaps=[0.01], delay=(-0.004, 0.002), seed=9))
    # Unfinished (a receiver that died): count from the size.
    check_session(Session("unfinished", n_packets=80, gaps=[0.01], finished=2, store_count=False, loss=0.1,
                          seed=10))
    # A DSCP and padding in the request.
    s = Session("dscp", n_packets=30, gaps=[0.01], type_p=46 << 24, padding=1000)
    outs = check_session(s)
    c.check("DSCP\t0x2e\n" in outs["-M"] and "PACKET_PADDING\t1000\n" in outs["-M"], "dscp -M: DSCP and padding")
    s = Session("not-dscp", n_packets=30, gaps=[0.01], type_p=0x40000001)
    outs = check_session(s)
    c.check("DSCP" not in outs["-M"], "not-dscp -M: no DSCP line for a non-DSCP Type-P")

    # Long: 200000 packets, every format within a few seconds each.
    s = Session("long", n_packets=200000, gaps=[0.001], loss=0.01, dup=0.001, reorder=0.01, seed=11)
    t0 = time.time()
    check_session(s, formats=[[], ["-M"], ["-N", "10000"], ["--json"], ["-R"], ["-v"]], exact=False)
    c.check(time.time() - t0 < 120, f"long: six passes over 200000 records took {time.time() - t0:.1f} s")
    e = s.expected()
    rc, out, err = owstats(["-M"], os.path.join(tmp, "long.owp"))
    c.check(f"SENT\t{e['sent']}\n".encode() in out and f"LOST\t{e['lost']}\n".encode() in out
            and f"DUPS\t{e['dups']}\n".encode() in out, "long -M: counts")

    # A record more than the timeout after the end of the schedule: the
    # reference's pass fails (exit 1); -R still lists it.
    s = Session("late", n_packets=20, gaps=[0.01], late=True)
    path = os.path.join(tmp, "late.owp")
    with open(path, "wb") as f:
        f.write(s.data)
    for args in [[], ["-M"], ["-v"], ["--json"]]:
        rc, out, err = owstats(args, path)
        c.eq(rc, 1, f"late {args}: exit 1")
        c.check(err.endswith(b"owstats: do_stats() failed.\n"), f"late {args}: {err!r}")
    c.eq(owstats(["-R"], path)[0], 0, "late -R: exit 0")
    rc, out, err = owstats(["--json"], path)
    c.check(out.endswith(b"\n") and out.count(b"\n") == 1, "late --json: the broken document's line is ended")

    # Sequence numbers past the packet count are ignored.
    s = Session("extra", n_packets=20, gaps=[0.01],
                extra_records=owtest.record(1000, owtest.ntp(1795842781.5), owtest.ntp(1795842781.501)))
    path = os.path.join(tmp, "extra.owp")
    with open(path, "wb") as f:
        f.write(s.data)
    rc, out, err = owstats(["-M"], path)
    c.check(rc == 0 and b"SENT\t20\n" in out, f"extra: a record past the count is ignored ({rc}, {err!r})")
finally:
    shutil.rmtree(tmp)

c.done()
