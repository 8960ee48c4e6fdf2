#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""owstats' command line, as the reference behaves (MANIFEST.md section 4
and docs/notes/reference-owstats.md section 4): usage, exit statuses,
missing and bad files, -p files, option values, long options."""

import os
import re
import shutil
import struct
import tempfile

import owtest
from owtest import fixture, localize, run

c = owtest.Checker("owstats command line")
owtest.announce_resolver()
FX = owtest.FIXTURES
owstats = owtest.prog("owstats")


def owstats_in(args, cwd=FX):
    return run("owstats", args, cwd=cwd)


# --- Usage: -h, --help, unknown options ---------------------------------------

rc, out, err = owstats_in(["-h"])
c.eq(rc, 0, "-h: exit status")
c.eq(out, b"", "-h: nothing on stdout")
m = re.search(rb"\nVersion: (\S+)\n\n", err)
c.check(m is not None, f"-h: the reference's usage ends with a Version line: {err[-40:]!r}")
want_usage = fixture("owstats-h.txt")
if m:
    # The reference's text first, byte for byte but for the version (ours),
    # then what we take besides.
    ref_part, ours = err[:m.end()], err[m.end():]
    c.eq(ref_part.replace(b"Version: " + m.group(1), b"Version: 5.2.3-1"), want_usage, "-h: the reference's usage text")
    c.check(ours.startswith(b"              [More Args]\n\n") and ours.endswith(b"\n\n"),
            f"-h: our options after it: {ours[:60]!r}")
usage_body = want_usage.split(b"\n", 1)[1].split(b"\nVersion:")[0]

rc, out2, err2 = owstats_in(["--help"])
c.eq((rc, out2, err2), (0, b"", err), "--help: same as -h")

rc, out, err = owstats_in(["-x", "exp100-from.owp"])
c.eq(rc, 0, "-x: exit status 0, as the reference")
c.eq(out, b"", "-x: nothing on stdout, the file is not read")
c.check(err.startswith(owstats.encode() + b": invalid option -- 'x'\nowstats: \nusage: owstats "),
        f"-x: getopt's complaint, then the usage: {err[:120]!r}")
c.check(usage_body in err, "-x: the whole usage text")

rc, out, err = owstats_in(["--no-such-option"])
c.eq(rc, 0, "--no-such-option: exit status")
c.check(b"unrecognized option '--no-such-option'" in err and usage_body in err, "--no-such-option: message and usage")

# --- Files: none, missing, several --------------------------------------------

c.eq(owstats_in([]), (0, b"", fixture("owstats-no-args.txt")), "no file: prints nothing, exit 0")
c.eq(owstats_in(["missing.owp"]), (1, b"", fixture("owstats-missing-file.txt")), "missing.owp")

# The reference names the FIRST file argument in its fopen message.
rc, out, err = owstats_in(["exp100-from.owp", "missing.owp", "exp100-to.owp"])
c.eq(rc, 1, "good, missing, good: exit status")
c.eq(out, localize(fixture("exp100-from.default.txt")), "good, missing, good: the first file's report only")
c.eq(err, b"owstats: fopen(exp100-from.owp): No such file or directory\n", "good, missing: message names the first file")

rc, out, err = owstats_in(["-M", "exp100-from.owp", "fixed50-to.owp"])
c.eq((rc, out), (0, localize(fixture("exp100-from.M.txt") + fixture("fixed50-to.M.txt"))), "two files, -M")

# GNU getopt permutes: options after the file work, as with the reference.
c.eq(owstats_in(["exp100-from.owp", "-M"])[1], localize(fixture("exp100-from.M.txt")), "option after the file")

# The reference's getopt string for owstats also takes -f, -t and -T file.
c.eq(owstats_in(["-f", "-t", "-T", "x", "exp100-from.owp"]), (0, localize(fixture("exp100-from.default.txt")), b""),
     "-f -t -T x: accepted and ignored")

# --- Option values --------------------------------------------------------------

bad = [
    (["-b", "0"], "Invalid '-b' value. Positive float expected"),
    (["-b", "x"], "Invalid '-b' value. Positive float expected"),
    (["-b", "-1"], "Invalid '-b' value. Positive float expected"),
    (["-n", "x"], "Invalid '-n' value."),
    (["-N", "x"], 'Invalid "-N" value. Positive integer expected'),
    (["-vx"], 'Invalid "-v" value. Positive integer expected'),
    (["-a", "50,,90"], "Invalid '-a' alpha list ."),
    (["-a", "101"], "Invalid '-a' alpha list ."),
    (["-a", "x"], "Invalid '-a' alpha list ."),
]
for args, msg in bad:
    rc, out, err = owstats_in(args + ["exp100-from.owp"])
    what = f"owstats {' '.join(args)}"
    c.eq(rc, 1, f"{what}: exit status")
    c.eq(out, b"", f"{what}: no report")
    c.check(err.startswith(f"owstats: {msg}\nusage: owstats ".encode()) and usage_body in err,
            f"{what}: message then usage: {err[:100]!r}")

# Only -n's first letter counts; case does not matter.
c.eq(owstats_in(["-n", "milli", "exp100-from.owp"])[1], localize(fixture("exp100-from.nm.txt")), "-n milli = -n m")
c.eq(owstats_in(["-n", "U", "exp100-from.owp"])[1], localize(fixture("exp100-from.nu.txt")), "-n U = -n u")
# -N 0 and -N >= packets: one summary.
for n in ["0", "100", "4294967295"]:
    c.eq(owstats_in(["-N", n, "exp100-from.owp"])[1], localize(fixture("exp100-from.default.txt")), f"-N {n}")

# --- Long options -----------------------------------------------------------------

longs = [
    (["--machine"], "M"),
    (["--raw"], "R"),
    (["--verbose"], "v"),
    (["--verbose=10"], "v10"),
    (["--units=u"], "nu"),
    (["--units", "n"], "nn"),
    (["--bucket-width=0.00001"], "b0.00001"),
    (["--percentiles=50,90,95,99"], "a50-90-95-99"),
    (["--sub-session=25"], "N25"),
    (["--machine", "--unix-time"], "MU"),
    (["--quiet"], "Q"),
]
for args, fmt in longs:
    c.eq(owstats_in(args + ["exp100-from.owp"])[1], localize(fixture(f"exp100-from.{fmt}.txt")),
         f"{' '.join(args)} = {fmt}")

# --- Option interplay warnings ------------------------------------------------------

interplay = [
    (["-R", "-v"], "R", b"owstats: Ignoring '-v', '-Q' set\n"),
    (["-R", "-M"], "R", b"owstats: Ignoring '-M', '-Q' set\n"),
    (["-Q", "-v", "-M"], "default", b"owstats: Ignoring '-v', '-Q' set\nowstats: Ignoring '-M', '-Q' set\n"),
    (["-M", "-a", "50"], "M", b""),
    (["-Q", "--json"], "default", b"owstats: Ignoring '--json', '-Q' set\n"),
    (["-R", "--json"], "R", b"owstats: Ignoring '--json', '-Q' set\n"),
]
for args, fmt, warn in interplay:
    rc, out, err = owstats_in(args + ["exp100-from.owp"])
    c.eq((rc, out, err), (0, localize(fixture(f"exp100-from.{fmt}.txt")), warn), f"{' '.join(args)}")
rc, out, err = owstats_in(["-M", "--json", "exp100-from.owp"])
c.eq((rc, err), (0, b"owstats: Ignoring '-M', '--json' set\n"), "-M --json: warning")
c.check(out.startswith(b'{"schema":"owamp-report"'), "-M --json: JSON wins")

# --- -p and -d ------------------------------------------------------------------------

umask = os.umask(0)
os.umask(umask)
tmp = tempfile.mkdtemp(prefix="owstats-cli.")
try:
    shutil.copy(os.path.join(FX, "exp100-from.owp"), tmp)
    pdir = os.path.join(FX, "exp100-from.p-output")
    cases = [([], "exp100-from.p.txt"), (["-M"], "exp100-from.pM.txt"), (["-N", "50"], "exp100-from.pN50.txt")]
    for args, listing in cases:
        out_dir = os.path.join(tmp, "out")
        os.mkdir(out_dir)
        rc, out, err = run("owstats", ["-p"] + args + ["-d", ".", "../exp100-from.owp"], cwd=out_dir)
        what = f"owstats -p {' '.join(args)} -d ."
        c.eq((rc, err), (0, b""), f"{what}: status and stderr")
        c.eq(out, fixture(listing), f"{what}: listing vs {listing}")
        names = sorted(l[2:] for l in out.decode().splitlines())
        c.eq(sorted(os.listdir(out_dir)), names, f"{what}: exactly the listed files, no temporary left")
        for n in names:
            with open(os.path.join(out_dir, n), "rb") as f:
                c.eq(f.read(), localize(fixture(f"exp100-from.p-output/{n}")), f"{what}: {n}")
            c.eq(os.stat(os.path.join(out_dir, n)).st_mode & 0o777, 0o666 & ~umask,
                 f"{what}: {n} has fopen()'s permissions")
        if not args:
            # The reference links the file into place: an existing one fails.
            rc, out, err = run("owstats", ["-p", "-d", ".", "../exp100-from.owp"], cwd=out_dir)
            c.eq(rc, 1, "-p again: the file exists, exit 1")
            c.eq(out, b"", "-p again: no name printed")
            c.check(b"File exists" in err and err.endswith(b"owstats: do_stats() failed.\n"),
                    f"-p again: says why: {err!r}")
            c.eq(sorted(os.listdir(out_dir)), names, "-p again: no temporary left")
        shutil.rmtree(out_dir)

    # Without -d: bare names in the current directory.
    rc, out, err = run("owstats", ["-p", "exp100-from.owp"], cwd=tmp)
    c.eq((rc, out), (0, fixture("exp100-from.p.txt")[2:]), "-p without -d: bare name")
    # -p with -v: the records go into the file too.
    os.mkdir(os.path.join(tmp, "v"))
    rc, out, err = run("owstats", ["-p", "-v", "-d", "v", "exp100-from.owp"], cwd=tmp)
    name = out.decode().strip()
    with open(os.path.join(tmp, name), "rb") as f:
        c.eq(f.read(), localize(fixture("exp100-from.v.txt")), "-p -v: records in the file")
    # -R ignores -p.
    rc, out, err = run("owstats", ["-p", "-R", "-d", "nowhere", "exp100-from.owp"], cwd=tmp)
    c.eq((rc, out), (0, fixture("exp100-from.R.txt")), "-p -R: raw records on stdout")
    # An unwritable directory: exit 1.
    rc, out, err = run("owstats", ["-p", "-d", "no/such/dir", "exp100-from.owp"], cwd=tmp)
    c.eq((rc, out), (1, b""), "-p into a missing directory: exit 1")
    c.check(err.endswith(b"owstats: do_stats() failed.\n"), f"-p into a missing directory: {err!r}")
finally:
    shutil.rmtree(tmp)

# --- Old and bad files ------------------------------------------------------------------

tmp = tempfile.mkdtemp(prefix="owstats-cli.")
try:
    def put(name, data):
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)

    src = fixture("exp100-from.owp")
    rec_off = struct.unpack(">Q", src[32:40])[0]
    n_rec = struct.unpack(">I", src[20:24])[0]
    recs = [src[rec_off + 25 * i: rec_off + 25 * (i + 1)] for i in range(n_rec)]

    def old_record(r):
        seq, serr, rerr, st, rt, ttl = struct.unpack(">IHHQQB", r)
        return struct.pack(">IQHQH", seq, st, serr, rt, rerr)

    # Version 2: the same session without TTLs (taken as 255): the same report.
    # magic, version, header length, finished, request, slots, zero block.
    v2_hdr_len = 20 + (rec_off - 40)
    v2 = struct.pack(">4sIQI", b"OwA\0", 2, v2_hdr_len, 1) + src[40:rec_off] + b"".join(map(old_record, recs))
    put("v2.owp", v2)
    for fmt, args in [("default", []), ("M", ["-M"]), ("R", ["-R"]), ("v", ["-v"])]:
        rc, out, err = run("owstats", args + ["v2.owp"], cwd=tmp)
        c.eq((rc, out, err), (0, localize(fixture(f"exp100-from.{fmt}.txt")), b""), f"version 2 file, {fmt}")

    # Version 0: records only; -R reads it, statistics cannot.
    v0 = struct.pack(">4sIQ", b"OwA\0", 0, 16) + b"".join(map(old_record, recs))
    put("v0.owp", v0)
    rc, out, err = run("owstats", ["-R", "v0.owp"], cwd=tmp)
    c.eq((rc, out, err), (0, fixture("exp100-from.R.txt"), b""), "version 0 file, -R")
    for args in [[], ["-M"], ["-v"], ["--json"]]:
        rc, out, err = run("owstats", args + ["v0.owp"], cwd=tmp)
        c.eq((rc, out), (1, b""), f"version 0 file, {args}: exit 1, nothing printed")
        c.check(err.endswith(b"owstats: do_stats() failed.\n"), f"version 0 file, {args}: {err!r}")

    broken = {
        "empty.owp": b"",
        "garbage.owp": b"hello, world\n" * 20,
        "magic-only.owp": b"OwA\0",
        "twamp.owp": src[:4] + struct.pack(">I", 0x83) + src[8:],
        "short-header.owp": src[:100],
        "no-slots.owp": src[:40 + 4] + struct.pack(">I", 0) + src[48:],
        "bad-finished.owp": src[:8] + struct.pack(">I", 7) + src[12:],
        "count-too-big.owp": src[:20] + struct.pack(">I", n_rec + 1) + src[24:],
    }
    for name, data in broken.items():
        put(name, data)
        for args in [[], ["-R"], ["-M"]]:
            rc, out, err = run("owstats", args + [name], cwd=tmp)
            c.eq(rc, 1, f"{name} {args}: exit 1 (not a crash)")
            c.check(err.endswith(b"owstats: do_stats() failed.\n"), f"{name} {args}: {err!r}")

    # A file whose writer died (finished 0, count 0): the records that are
    # there, a torn last one ignored, as the reference counts them.
    torn = (src[:8] + struct.pack(">I", 0) + src[12:20] + struct.pack(">IQ", 0, 0) + src[32:rec_off + 25 * 40 + 11])
    put("torn.owp", torn)
    rc, out, err = run("owstats", ["-R", "torn.owp"], cwd=tmp)
    c.eq((rc, out), (0, b"".join(fixture("exp100-from.R.txt").splitlines(keepends=True)[:40])), "torn file, -R")
    rc, out, err = run("owstats", ["-M", "torn.owp"], cwd=tmp)
    c.eq(rc, 0, "torn file, -M: exit 0")
    c.check(b"SESSION_FINISHED\t0\n" in out and b"SENT\t40\n" in out, "torn file, -M: 40 sent, not finished")

    # A directory and an unreadable path.
    rc, out, err = run("owstats", ["."], cwd=tmp)
    c.eq(rc, 1, "a directory: exit 1")
finally:
    shutil.rmtree(tmp)

c.done()
