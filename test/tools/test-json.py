#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""owstats --json, parsed: for every fixture session, the document must
follow the schema (jsonschema_owamp) and say what the text formats say:
every -M value, the -v records, the -a percentiles, -N sub-sessions."""

import glob
import json
import os
import re

import owtest
from jsonschema_owamp import validate

c = owtest.Checker("owstats --json")
owtest.announce_resolver()
FX = owtest.FIXTURES


def run(args, files):
    rc, out, err = owtest.run("owstats", args + files, cwd=FX)
    c.eq((rc, err), (0, b""), f"owstats {' '.join(args + files)}: status and stderr")
    return out.decode()


def parse_lines(text, what):
    docs = []
    c.check(text.endswith("\n"), f"{what}: ends with a newline")
    for i, line in enumerate(text.splitlines()):
        try:
            docs.append(json.loads(line))
        except ValueError as e:
            c.check(False, f"{what}: line {i + 1} is not JSON: {e}")
    return docs


def machine_blocks(text):
    """-M output -> list of (dict of key/value, buckets, ttl buckets, nreordering)."""
    blocks = []
    for part in text.split("SUMMARY\t")[1:]:
        kv, lists, cur = {}, {}, None
        for line in ("SUMMARY\t" + part).splitlines():
            m = re.fullmatch(r"<(/?)([A-Z]+)>", line)
            if m:
                cur = None if m.group(1) else lists.setdefault(m.group(2), [])
            elif cur is not None:
                cur.append(tuple(int(x) for x in line.split("\t")[1:]))
            elif "\t" in line:
                k, v = line.split("\t", 1)
                kv[k] = v
        blocks.append((kv, lists))
    return blocks


def g(v):
    return "%g" % v


def compare(s, doc_session, kv, lists, what):
    """One summary against one -M block."""
    ss = doc_session
    c.eq(ss["sid"], kv["SID"], f"{what}: sid")
    c.eq(ss["sender"]["host"], kv["FROM_HOST"], f"{what}: sender.host")
    c.eq(ss["sender"]["address"], kv["FROM_ADDR"], f"{what}: sender.address")
    c.eq(str(ss["sender"]["port"]), kv["FROM_PORT"], f"{what}: sender.port")
    c.eq(ss["receiver"]["host"], kv["TO_HOST"], f"{what}: receiver.host")
    c.eq(ss["receiver"]["address"], kv["TO_ADDR"], f"{what}: receiver.address")
    c.eq(str(ss["receiver"]["port"]), kv["TO_PORT"], f"{what}: receiver.port")
    c.eq(int(s["start_time"]["ntp"]), int(kv["START_TIME"]), f"{what}: start_time")
    c.eq(int(s["end_time"]["ntp"]), int(kv["END_TIME"]), f"{what}: end_time")
    c.check(abs(ss["loss_timeout"] - int(kv["LOSS_TIMEOUT"]) / 2**32) < 1e-9, f"{what}: loss_timeout")
    c.eq(str(ss["padding"]), kv["PACKET_PADDING"], f"{what}: padding")
    c.eq(str(ss["packets"]), kv["SESSION_PACKET_COUNT"], f"{what}: packets")
    c.eq(str(s["end_seqno"] - s["first_seqno"]), kv["SAMPLE_PACKET_COUNT"], f"{what}: sample size")
    c.eq(g(s["histogram"]["bucket_width"]), kv["BUCKET_WIDTH"], f"{what}: bucket_width")
    c.eq("1" if ss["finished"] else "0", kv["SESSION_FINISHED"], f"{what}: finished")
    if "DSCP" in kv:
        c.eq("0x%02x" % ss["dscp"], kv["DSCP"], f"{what}: dscp")
    for key, mkey in [("sent", "SENT"), ("lost", "LOST"), ("duplicates", "DUPS")]:
        c.eq(str(s[key]), kv[mkey], f"{what}: {key}")
    c.eq("1" if s["sync"] else "0", kv["SYNC"], f"{what}: sync")
    c.eq(g(s["max_error"]), kv["MAXERR"], f"{what}: max_error")
    for key, mkey in [("min", "MIN"), ("max", "MAX")]:
        v = s["delay"][key]
        c.eq(None if v is None else g(v), kv.get(mkey), f"{what}: delay.{key}")
    # The text formats' median and jitter are the histogram's.
    for key, mkey in [("median", "MEDIAN"), ("jitter", "PDV")]:
        v = s["histogram"][key]
        c.eq(None if v is None else g(v), kv.get(mkey), f"{what}: histogram.{key}")
    c.eq(sorted((b["index"], b["count"]) for b in s["histogram"]["buckets"]), sorted(lists.get("BUCKETS", [])),
         f"{what}: histogram")
    c.eq([b["index"] for b in s["histogram"]["buckets"]], sorted(b["index"] for b in s["histogram"]["buckets"]),
         f"{what}: buckets ascending")
    c.eq([(t["ttl"], t["count"]) for t in s["ttl"]["counts"]], lists.get("TTLBUCKETS", []), f"{what}: ttl counts")
    if s["ttl"]["counts"]:
        c.eq((str(s["ttl"]["min"]), str(s["ttl"]["max"])), (kv["MINTTL"], kv["MAXTTL"]), f"{what}: ttl min/max")
        c.eq(s["hops"], {"min": 255 - s["ttl"]["max"], "max": 255 - s["ttl"]["min"],
                         "distinct": len(s["ttl"]["counts"])}, f"{what}: hops")
    nre = [(r["n"], r["count"]) for r in s["reordering"]["counts"]]
    want = [x for x in lists["NREORDERING"] if x[1] != 0]
    c.eq(nre, want, f"{what}: reordering counts")
    for r in s["reordering"]["counts"]:
        c.check(abs(r["percent"] - 100.0 * r["count"] / s["reordering"]["arrivals"]) < 1e-9,
                f"{what}: reordering percent")
    loss = 100.0 * s["lost"] / s["sent"] if s["sent"] else 0.0
    c.check(abs(s["loss_percent"] - loss) < 1e-9, f"{what}: loss_percent")


sources = sorted(os.path.basename(p) for p in glob.glob(os.path.join(FX, "*.owp")))
c.check(len(sources) >= 12, f"{len(sources)} fixture sessions")
for src in sources:
    text = run(["--json"], [src])
    docs = parse_lines(text, f"{src} --json")
    c.eq(len(docs), 1, f"{src} --json: one document, one line")
    doc = docs[0]
    for e in validate(doc):
        c.check(False, f"{src} --json: {e}")
    kv, lists = machine_blocks(run(["-M"], [src]))[0]
    c.eq(len(doc["summaries"]), 1, f"{src} --json: one summary")
    compare(doc["summaries"][0], doc["session"], kv, lists, f"{src} --json vs -M")
    c.eq(doc["session"]["mode"], None, f"{src}: owstats does not know the mode")
    c.eq(doc["session"]["records"], len(run(["-R"], [src]).splitlines()), f"{src}: records in the file")
    # The default percentiles, and -a's as the text prints them.
    c.eq([p["percentile"] for p in doc["summaries"][0]["percentiles"]], [25, 50, 75, 90, 95, 99],
         f"{src}: default percentiles")
    da = json.loads(run(["--json", "-a", "50,90,95,99,12.5,99.9,0,100"], [src]))
    ta = run(["-a", "50,90,95,99,12.5,99.9,0,100"], [src])
    for p in da["summaries"][0]["histogram"]["percentiles"]:
        v = "nan" if p["delay"] is None else "%.3g" % (p["delay"] * 1e3)
        c.check(f"\t{p['percentile']:.1f}: {v} ms\n" in ta, f"{src} -a: histogram percentile {p['percentile']} = {v}")

    # Exact order statistics, against a sort of the raw records (-R).
    sm = da["summaries"][0]
    skips = [(r["first_seqno"], r["last_seqno"]) for r in da["session"]["skip_ranges"]]
    delays, sent = owtest.raw_first_delays(run(["-R"], [src]), skips=skips)
    c.eq(sent, sm["sent"], f"{src}: sent, from the raw records")
    median, percentile, jitter = owtest.order_statistics(delays, sent)
    c.eq(sm["delay"]["median"], median, f"{src} --json: delay.median, exact")
    c.eq(sm["delay"]["jitter"], jitter, f"{src} --json: delay.jitter, exact P95-P50")
    c.eq([(p["percentile"], p["delay"]) for p in sm["percentiles"]],
         [(p, percentile(p)) for p in (50, 90, 95, 99, 12.5, 99.9, 0, 100)], f"{src} --json: percentiles, exact")
    if delays:
        c.check(sm["delay"]["min"] <= sm["delay"]["median"] or median is None, f"{src}: min <= median")
        c.check(median is None or median <= sm["delay"]["max"], f"{src}: exact median <= max")

    # -N 25: one summary per block, each matching its -M block.
    dn = json.loads(run(["--json", "-N", "25"], [src]))
    mn = machine_blocks(run(["-M", "-N", "25"], [src]))
    c.eq(len(dn["summaries"]), len(mn), f"{src} -N 25: as many summaries as -M blocks")
    for i, (s, (kv, lists)) in enumerate(zip(dn["summaries"], mn)):
        compare(s, dn["session"], kv, lists, f"{src} --json -N 25 block {i}")
    # Each block's exact median from a sort of the records it read.
    dnv = json.loads(run(["--json", "-N", "25", "-v"], [src]))
    for i, s in enumerate(dnv["summaries"]):
        seen, delays = set(), []
        for r in s["records"]:
            if not r["lost"] and r["seqno"] not in seen:
                seen.add(r["seqno"])
                delays.append(r["delay"])
        median, percentile, jitter = owtest.order_statistics(delays, s["sent"])
        c.eq((s["delay"]["median"], s["delay"]["jitter"], [p["delay"] for p in s["percentiles"]]),
             (median, jitter, [percentile(p) for p in (25, 50, 75, 90, 95, 99)]),
             f"{src} --json -N 25 -v block {i}: exact order statistics")

    # -v: the records -v prints, in its order, with its delays.
    dv = json.loads(run(["--json", "-v"], [src]))
    for e in validate(dv, with_records=True):
        c.check(False, f"{src} --json -v: {e}")
    lines = [l for l in run(["-v"], [src]).splitlines() if l.startswith("seq_no=")]
    recs = dv["summaries"][0]["records"]
    c.eq(len(recs), len(lines), f"{src} --json -v: one record per -v line")
    for r, l in zip(recs, lines):
        if r["lost"]:
            want = "seq_no=%-10u *LOST*" % r["seqno"]
        else:
            want = "seq_no=%-10u delay=%.3g ms\t(unsync)" % (r["seqno"], r["delay"] * 1e3)
        if not c.eq(l, want, f"{src} --json -v: record {r['seqno']}"):
            break
    dv10 = json.loads(run(["--json", "-v10"], [src]))
    c.eq(len(dv10["summaries"][0]["records"]), 10, f"{src} --json -v10: ten records")
    sent10 = int(re.search(r"^(\d+) sent, ", run(["-v10"], [src]), re.M).group(1))
    c.eq(dv10["summaries"][0]["sent"], sent10, f"{src} --json -v10: -vN limits what is read, as with the text")

# Several files: one line each, in order.
docs = parse_lines(run(["--json"], ["exp100-from.owp", "exp100-to.owp", "impaired-from.owp"]), "three files")
c.eq([d["session"]["sid"] for d in docs],
     [json.loads(run(["--json"], [f]))["session"]["sid"] for f in ["exp100-from.owp", "exp100-to.owp",
                                                                   "impaired-from.owp"]], "three files: in order")
# Units do not apply: seconds always.
c.eq(run(["--json", "-n", "n"], ["fixed50-to.owp"]), run(["--json"], ["fixed50-to.owp"]), "-n does not change --json")
# -U adds nothing: the times carry both forms anyway.
c.eq(run(["--json", "-U"], ["fixed50-to.owp"]), run(["--json"], ["fixed50-to.owp"]), "-U does not change --json")

c.done()
