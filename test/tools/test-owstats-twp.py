#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""owstats reading twping's saved .twp files (test/data/twamp/saved).

The summary, -M and -v of mode-O.twp must be byte-identical to what the
reference's owstats printed for it (saved/owstats-mode-O*.stdout, the
NTP lines of its stderr left aside); -R prints twping's 16-field lines
(the reference's owstats fails there: a deliberate difference, owstats(1));
--json is a "twamp-report" document whose numbers are those of -M; broken
.twp files fail cleanly."""

import json
import os

import owtest

SAVED = os.path.join(owtest.DATA, "twamp", "saved")
c = owtest.Checker("owstats .twp")
owtest.announce_resolver()


def saved(name):
    with open(os.path.join(SAVED, name), "rb") as f:
        return f.read()


for opt, suffix in [([], ""), (["-M"], "-M"), (["-v"], "-v")]:
    rc, out, err = owtest.run("owstats", opt + ["mode-O.twp"], cwd=SAVED)
    c.eq((rc, err), (0, b""), f"owstats {opt} mode-O.twp: exit 0, quiet")
    c.eq(out, owtest.localize(saved(f"owstats-mode-O{suffix}.stdout")), f"owstats {opt} mode-O.twp vs the reference")

machine = {}
rc, out, _ = owtest.run("owstats", ["-M", "mode-O.twp"], cwd=SAVED)
for line in out.decode().splitlines():
    k, _, v = line.partition("\t")
    machine[k] = v

for mode in "OAEM":
    name = f"mode-{mode}.twp"
    data = saved(name)
    rc, out, err = owtest.run("owstats", ["-R", name], cwd=SAVED)
    lines = out.decode().splitlines()
    c.eq((rc, len(lines)), (0, 10), f"owstats -R {name}: 10 records")
    for i, line in enumerate(lines):
        f = line.split(" ")
        c.check(len(f) == 16 and all(len(f[k]) == 20 for k in (1, 4, 9, 12)), f"{name} -R line {i}: {line!r}")
        off = 184 + 50 * i  # TWAMP-PROTOCOL.md 7: the records of these files
        t1 = int.from_bytes(data[off + 8:off + 16], "big")
        t4 = int.from_bytes(data[off + 25 + 16:off + 25 + 24], "big")
        c.eq((int(f[0]), int(f[1]), int(f[12])), (i, t1, t4), f"{name} -R line {i}: seq, T1, T4 from the file")

    rc, out, err = owtest.run("owstats", ["--json", "-v", name], cwd=SAVED)
    c.eq((rc, err), (0, b""), f"owstats --json {name}")
    try:
        doc = json.loads(out)
    except ValueError as e:
        c.fail(f"--json {name}: not JSON: {e}")
        continue
    c.eq((doc["schema"], doc["schema_version"]), ("twamp-report", 1), f"--json {name}: schema")
    s = doc["summaries"][0]
    c.eq((s["sent"], s["lost"], s["send_duplicates"], s["reflect_duplicates"]), (10, 0, 0, 0), f"--json {name}: counts")
    c.eq(len(s["records"]), 10, f"--json {name}: records")
    for r in s["records"]:
        c.check(abs(r["round_trip"] - (r["send"] + r["reflect"])) < 1e-6, f"--json {name}: rtt = send + reflect")
    if mode == "O":
        for key, d in [("", "round_trip"), ("_FWD", "send"), ("_BCK", "reflect")]:
            c.eq("%g" % s[d]["delay"]["min"], machine["MIN" + key], f"--json: {d} min is -M's MIN{key}")
            c.eq("%g" % s[d]["delay"]["max"], machine["MAX" + key], f"--json: {d} max is -M's MAX{key}")
            c.eq("%g" % s[d]["histogram"]["median"], machine["MEDIAN" + key], f"--json: {d} histogram median")
        c.eq("%g" % s["processing"]["max"], machine["MAX_PROC"], "--json: processing max is MAX_PROC")

# Broken .twp files: exit 1, the usual last line.
src = saved("mode-O.twp")
broken = {
    "short.twp": src[:100],
    "count.twp": src[:20] + (11).to_bytes(4, "big") + src[24:],
    "erres.twp": src[:184 + 4] + b"\x00\x00" + src[184 + 6:],
}
tmp = os.environ.get("TMPDIR", "/tmp")
d = os.path.join(tmp, f"owstats-twp-{os.getpid()}")
os.makedirs(d, exist_ok=True)
try:
    for name, data in broken.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        for args in [[], ["-M"], ["-R"]]:
            rc, out, err = owtest.run("owstats", args + [name], cwd=d)
            c.eq(rc, 1, f"{name} {args}: exit 1")
            c.check(err.endswith(b"owstats: do_stats() failed.\n"), f"{name} {args}: {err!r}")
finally:
    for name in broken:
        try:
            os.unlink(os.path.join(d, name))
        except FileNotFoundError:
            pass
    os.rmdir(d)

c.done()
