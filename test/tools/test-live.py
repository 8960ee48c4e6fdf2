#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""owping, owfetch and owup against our own owampd on loopback.

owping's output has the reference's structure (owping-*.txt fixtures:
labels, order, blank lines; the values differ per run) and says exactly
what owstats says of the files owping saved (-F/-T), but for the server
end, which owping names as typed. owfetch saves a file octet for octet
like owping -T's and prints owstats' report of it; owup prints when the
server started."""

import json
import os
import re
import shutil
import socket
import struct
import tempfile
import time

import owtest
from jsonschema_owamp import validate
from owtest import fixture, localize

c = owtest.Checker("owping, owfetch, owup live")
owtest.announce_resolver()
tmp = tempfile.mkdtemp(prefix="owtools-live.")
os.chmod(tmp, 0o755)
LB = owtest.loopback_name()


def run(name, args, **kw):
    return owtest.run(name, args, cwd=tmp, **kw)


def skeleton(text):
    """The structure of a report: numbers, SIDs and host names masked."""
    if isinstance(text, bytes):
        text = text.decode()
    text = re.sub(r"^\w+: NTP: .*\n", "", text, flags=re.M)  # the reference's clock warnings
    text = re.sub(r"\b[0-9a-f]{32}\b", "<SID>", text)
    text = re.sub(r"\[[^\]]*\]", "[<HOST>]", text)
    text = re.sub(r"^((?:FROM|TO)_(?:HOST|ADDR))\t.*$", r"\1\t<HOST>", text, flags=re.M)
    text = re.sub(r"-?\d+(\.\d+)?(e[-+]\d+)?|\bnan\b", "<N>", text)
    # Loopback under load may reorder a packet: which reordering lines
    # a run has is not structure.
    text = re.sub(r"^(<N>-reordering = <N>%\n)*(no <N>-reordering|no reordering|<N>-reordering not handled)$",
                  "<REORDERING>", text, flags=re.M)
    # How many histogram buckets or reordering lines a run has varies.
    lines = text.split("\n")
    return "\n".join(l for i, l in enumerate(lines) if i == 0 or l != lines[i - 1] or l == "")


def sid_of(path):
    with open(path, "rb") as f:
        return f.read()[40 + 48:40 + 64].hex()


def owstats(args, path):
    rc, out, err = run("owstats", args + [path])
    c.eq((rc, err), (0, b""), f"owstats {' '.join(args)} {os.path.basename(path)}")
    return out


def as_typed(report, key, server):
    """owstats' -M summary with the server end (key: TO_HOST or FROM_HOST)
    named as owping shows it, as typed."""
    return re.sub(rb"^" + key + rb"\t.*$", key + b"\t" + server.encode(), report, count=1, flags=re.M)


def blocks(out):
    """owping's default output -> its report blocks (each "\\n--- ...\\n\\n")."""
    return [b"\n--- owping" + b for b in out.split(b"\n--- owping")[1:]]


try:
    with owtest.Owampd() as d:
        server = "127.0.0.1"
        addr = d.addr
        t_started = time.time()

        # --- owping, default output ---------------------------------------------
        f_from, f_to = os.path.join(tmp, "from.owp"), os.path.join(tmp, "to.owp")
        rc, out, err = run("owping", ["-c", "20", "-i", "0.02", "-F", f_from, "-T", f_to, addr])
        c.eq(rc, 0, f"owping -F -T: exit status ({err!r})")
        c.eq(skeleton(out), skeleton(fixture("owping-O.txt")), "owping: structure of owping-O.txt")
        c.check(out.startswith(b"Approximately ") and b" seconds until results available\n\n--- owping" in out,
                "owping: the estimate, then a blank line, then the first block")
        bl = blocks(out)
        c.eq(len(bl), 2, "owping: two blocks, to then from")
        if len(bl) == 2:
            # The "to" block: the session the server received, as fetched.
            to_report = owstats([], f_to).replace(f"to [{LB}]:".encode(), f"to [{server}]:".encode(), 1)
            c.eq(bl[0], to_report, "owping's 'to' block = owstats of the -T file (server as typed)")
            from_report = owstats([], f_from).replace(f"from [{LB}]:".encode(), f"from [{server}]:".encode(), 1)
            c.eq(bl[1], from_report, "owping's 'from' block = owstats of the -F file (server as typed)")
        c.eq(sid_of(f_to)[:8], "7f000001", "-T file: the server's SID (IPv4 receiver address first)")

        # Same for the reference's -T / -F fixtures: who wrote which layout.
        with open(f_to, "rb") as f:
            t = f.read()
        with open(f_from, "rb") as f:
            fr = f.read()
        c.eq(struct.unpack(">Q", t[24:32])[0], struct.unpack(">Q", t[32:40])[0], "-T file: skip ranges first")
        c.eq(struct.unpack(">Q", fr[24:32])[0], len(fr), "-F file: skip ranges after the records")

        # --- owping -M, --json, -Q, -R, -v, -p ---------------------------------
        rc, out, err = run("owping", ["-c", "20", "-i", "0.02", "-M", addr])
        c.eq(rc, 0, "owping -M: exit status")
        c.eq(skeleton(out), skeleton(fixture("owping-O-M.txt")), "owping -M: structure of owping-O-M.txt")

        rc, out, err = run("owping", ["-c", "10", "-i", "0.01", "-L", "1", "-M", "-T", f_to, "-F", f_from, addr])
        parts = out.split(b"SUMMARY\t")
        c.eq(len(parts), 3, "owping -M: two summaries")
        if len(parts) == 3:
            c.eq(b"SUMMARY\t" + parts[1], as_typed(owstats(["-M"], f_to), b"TO_HOST", server), "owping -M 'to' = owstats -M")
            c.eq(b"SUMMARY\t" + parts[2], as_typed(owstats(["-M"], f_from), b"FROM_HOST", server),
                 "owping -M 'from' = owstats -M")

        rc, out, err = run("owping", ["-c", "10", "-i", "0.01", "-L", "1", "--json", addr])
        c.eq(rc, 0, "owping --json: exit status")
        c.check(b"Approximately " in err and b"Approximately " not in out, "owping --json: the estimate on stderr")
        lines = out.decode().splitlines()
        c.eq(len(lines), 2, "owping --json: two documents, one line each")
        docs = []
        for l in lines:
            try:
                docs.append(json.loads(l))
            except ValueError as e:
                c.check(False, f"owping --json: not JSON: {e}")
        for doc in docs:
            for e in validate(doc):
                c.check(False, f"owping --json: {e}")
            c.eq(doc["session"]["mode"], "open", "owping --json: mode")
            c.eq(doc["summaries"][0]["sent"], 10, "owping --json: sent")
        if len(docs) == 2:
            c.eq(docs[0]["session"]["receiver"]["host"], server, "owping --json: 'to' receiver as typed")
            c.eq(docs[1]["session"]["sender"]["host"], server, "owping --json: 'from' sender as typed")
            c.eq(docs[0]["session"]["sender"]["host"], LB, "owping --json: our end resolved")

        rc, out, err = run("owping", ["-c", "5", "-i", "0.01", "-L", "1", "-Q", addr])
        c.eq((rc, out), (0, b""), "owping -Q: nothing on stdout")

        rc, out, err = run("owping", ["-c", "5", "-i", "0.01", "-L", "1", "-R", "-v", addr])
        c.eq(rc, 0, "owping -R: exit status")
        c.check(b"owping: Ignoring '-v', '-Q' set\n" in err, "owping -R -v: the reference's warning")
        raw = out.decode().splitlines()
        c.eq(len(raw), 10, "owping -R: 5 records each way, no estimate line")
        c.check(all(re.fullmatch(r"\d+ \d{20} [01] \S+ \d{20} [01] \S+ \d+", l) for l in raw), "owping -R: raw format")

        rc, out, err = run("owping", ["-c", "6", "-i", "0.01", "-L", "1", "-v", "-U", "-a", "50,99", "-n", "u", addr])
        c.eq(rc, 0, "owping -v -U -a -n u: exit status")
        c.eq(len(re.findall(rb"^seq_no=\d+ +delay=\S+ us\t\(unsync\)$", out, re.M)), 12, "owping -v: 12 record lines")
        c.eq(out.count(b"Percentiles:\n\t50.0: "), 2, "owping -a: percentiles in both blocks")

        pdir = os.path.join(tmp, "p")
        os.mkdir(pdir)
        rc, out, err = run("owping", ["-c", "10", "-i", "0.01", "-L", "1", "-p", "-N", "5", "-d", pdir, addr])
        c.eq(rc, 0, f"owping -p -N 5: exit status ({err!r})")
        names = out.decode().splitlines()[1:]
        c.eq(len(names), 4, f"owping -p -N 5: four files: {names}")
        c.eq(sorted(os.path.join(pdir, n) for n in os.listdir(pdir)), sorted(names), "owping -p: the files listed")
        c.check(all(re.fullmatch(re.escape(pdir) + r"/\d{20}_\d{20}\.txt", n) for n in names), "owping -p: names")

        rc, out, err = run("owping", ["-h"])
        c.eq((rc, out), (0, b""), "owping -h: exit 0, nothing on stdout")
        c.check(err.startswith(b"owping: \nusage: owping [arguments] testaddr [servaddr]\n"), "owping -h: usage on stderr")
        rc, out, err = run("owping", ["-c", "x", addr])
        c.eq(rc, 1, "owping -c x: exit 1")
        rc, out, err = run("owping", ["-b", "0", addr])
        c.check(rc == 1 and err.startswith(b"owping: Invalid '-b' value. Positive float expected\nusage: owping "),
                f"owping -b 0: the reference's message and usage ({err[:80]!r})")

        # --- owfetch ---------------------------------------------------------------
        rc, out, err = run("owping", ["-c", "30", "-i", "0.01", "-L", "1", "-T", f_to, "-t", addr])
        sid = sid_of(f_to)
        fetched = os.path.join(tmp, "fetched.owp")
        for args, fmt_args in [([], []), (["-M"], ["-M"]), (["-R"], ["-R"]), (["-v", "-U"], ["-v", "-U"]),
                               (["--json"], ["--json"]), (["-a", "50,90", "-n", "n"], ["-a", "50,90", "-n", "n"])]:
            rc, out, err = run("owfetch", args + ["-A", "O", addr, sid, fetched])
            what = f"owfetch {' '.join(args)}"
            if not c.eq((rc, err), (0, b""), f"{what}: exit status and stderr"):
                continue
            with open(fetched, "rb") as f1, open(f_to, "rb") as f2:
                c.eq(f1.read(), f2.read(), f"{what}: the file is owping -T's, octet for octet")
            c.eq(out, owstats(fmt_args, fetched), f"{what}: prints owstats' report of it")

        rc, out, err = run("owfetch", [addr, sid, fetched])
        c.eq(skeleton(out), skeleton(fixture("keep30-to.owfetch.txt")), "owfetch: structure of keep30-to.owfetch.txt")
        rc, out, err = run("owfetch", ["-Q", addr, sid, fetched])
        c.eq((rc, out, err), (0, b"", b""), "owfetch -Q: saves quietly")
        c.check(os.path.exists(fetched), "owfetch -Q: the file is there")

        # Two pairs, one of them unknown: the reference goes on and exits 0.
        other = os.path.join(tmp, "other.owp")
        unknown = "00112233445566778899aabbccddeeff"
        rc, out, err = run("owfetch", [addr, unknown, other, sid, fetched])
        c.eq(rc, 0, "owfetch unknown + known: exit 0")
        c.check(f"owfetch: Unable to fetch sid({unknown})\n".encode() in err, f"owfetch unknown: says so ({err!r})")
        c.check(not os.path.exists(other), "owfetch unknown: no file left")
        c.eq(out, owstats([], fetched), "owfetch unknown + known: the known one's report")
        # The reference's words for scripts, then ours with the server's
        # answer, then the reference's last line.
        c.check((b"owfetch: owp_fetch_sid:Server denied request for to session data - is your clock "
                 b"synchronized via NTP properly?\n"
                 b"owfetch: the server refused session " + unknown.encode() + b" (Accept 1: failure, reason "
                 b"unspecified): it has no such session, it is still running, or its data is gone; the "
                 b"server's log says which\n"
                 b"owfetch: Unable to fetch sid(" + unknown.encode() + b")\n") in err,
                f"owfetch unknown: the reference's line, then the server's answer ({err!r})")
        c.check(re.search(r"Refusing fetch of session " + unknown + r" by \S+: no such session", d.log_text()),
                "owfetch unknown: the server's log names the reason")

        # Not a SID: a bad argument, exit 1 as owfetch(1) says, before any
        # connection or file.
        for bad in ["not-a-sid", "1234", "00112233445566778899aabbccddeefg"]:
            rc, out, err = run("owfetch", [addr, bad, other, sid, fetched])
            c.eq((rc, out, err), (1, b"", f'owfetch: Invalid SID "{bad}": 32 hexadecimal digits expected\n'.encode()),
                 f"owfetch bad SID {bad}: exit 1")
            c.check(not os.path.exists(other), f"owfetch bad SID {bad}: no file made")
        rc, out, err = run("owfetch", ["127.0.0.1:1", "1234", other])
        c.eq((rc, err), (1, b'owfetch: Invalid SID "1234": 32 hexadecimal digits expected\n'),
             "owfetch bad SID: no connection tried")
        rc, out, err = run("owfetch", [addr, sid, "/nonexistent/dir/x.owp"])
        c.eq((rc, out), (0, b""), "owfetch unwritable file: exit 0")
        c.check(b"owp_fetch_sid:fopen(/nonexistent/dir/x.owp): No such file or directory" in err,
                f"owfetch unwritable file: {err!r}")

        for args in [[addr], [addr, sid], [addr, sid, fetched, sid]]:
            rc, out, err = run("owfetch", args)
            c.eq(rc, 1, f"owfetch {len(args)} arguments: usage, exit 1")
            c.check(err.startswith(b"usage: owfetch [arguments] servaddr [SID savefile]+\n"), "owfetch usage")
        rc, out, err = run("owfetch", ["-h"])
        c.check(rc == 0 and err.startswith(b"owfetch: \nusage: owfetch "), "owfetch -h: exit 0")
        rc, out, err = run("owfetch", ["-A", "X", addr, sid, fetched])
        c.check(rc == 1 and err.startswith(b"owfetch: Invalid -authmode X\nusage: owfetch"), f"owfetch -A X: {err[:60]!r}")
        dead = f"127.0.0.1:{owtest.free_port()}"
        rc, out, err = run("owfetch", [dead, sid, fetched])
        c.eq(rc, 1, "owfetch to nothing: exit 1")
        c.check(err.endswith(f"owfetch: Unable to open control connection to {dead}.\n".encode()), f"{err!r}")

        # --- Modes A and E ---------------------------------------------------------------
        auth = ["-u", "testuser", "-k", d.pfs]
        for mode in "AE":
            rc, out, err = run("owping", ["-A", mode] + auth + ["-c", "20", "-i", "0.02", addr])
            c.eq(rc, 0, f"owping -A {mode}: exit status ({err!r})")
            c.eq(skeleton(out), skeleton(fixture(f"owping-{mode}.txt")), f"owping -A {mode}: structure")
            rc, out, err = run("owping", ["-A", mode] + auth + ["-c", "20", "-i", "0.02", "-M", addr])
            c.eq(skeleton(out), skeleton(fixture(f"owping-{mode}-M.txt")), f"owping -A {mode} -M: structure")
            rc, out, err = run("owfetch", ["-A", mode] + auth + ["-M", addr, sid, fetched])
            c.eq((rc, err), (0, b""), f"owfetch -A {mode}: exit status and stderr")
            c.eq(out, owstats(["-M"], f_to), f"owfetch -A {mode}: the session")
            rc, out, err = run("owup", ["-A", mode] + auth + [addr])
            c.check(rc == 0 and err.startswith(b"Server Up Since: "), f"owup -A {mode}: {err!r}")
        # A wrong pass-phrase: the server refuses; owfetch cannot connect.
        bad_pfs = os.path.join(tmp, "bad.pfs")
        with open(bad_pfs, "w") as f:
            f.write("testuser\t" + b"wrong".hex() + "\n")
        rc, out, err = run("owfetch", ["-A", "A", "-u", "testuser", "-k", bad_pfs, addr, sid, other])
        c.check(rc == 1 and err.endswith(f"owfetch: Unable to open control connection to {addr}.\n".encode()),
                f"owfetch with a wrong pass-phrase: {err!r}")
        # An identity the file does not hold: dropped, as the reference, and
        # then open mode is what is left.
        rc, out, err = run("owfetch", ["-u", "nobody-here", "-k", d.pfs, "-M", addr, sid, fetched])
        c.eq(rc, 0, "owfetch -u unknown: goes on without the identity")
        c.check(err.startswith(f'owfetch: Unable to find pass-phrase for id="nobody-here" from pffile="{d.pfs}"\n'.encode()),
                f"owfetch -u unknown: says so: {err!r}")
        c.eq(out, owstats(["-M"], f_to), "owfetch -u unknown: fetched in open mode")

        # --- owup ---------------------------------------------------------------------
        rc, out, err = run("owup", [addr])
        c.eq((rc, out), (0, b""), "owup: exit 0, nothing on stdout")
        m = re.fullmatch(rb"Server Up Since: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})UTC\n", err)
        if c.check(m is not None, f"owup: the reference's line on stderr: {err!r}"):
            up = time.mktime(time.strptime(m.group(1).decode() + " UTC", "%Y-%m-%dT%H:%M:%S %Z"))
            up = up - time.timezone  # mktime took it as local time
            c.check(t_started - 30 <= up <= time.time() + 1, f"owup: {m.group(1)} is when owampd started")
        rc, out, err = run("owup", [addr], env=owtest.base_env(TZ="America/New_York"))
        c.check(re.fullmatch(rb"Server Up Since: \S+\.\d{3}E[SD]T\n", err) is not None, f"owup: local zone: {err!r}")
        rc, out, err = run("owup", [])
        c.check(rc == 1 and err.startswith(b"usage: owup [arguments] servaddr\n"), "owup without a server: usage")
        rc, out, err = run("owup", ["-h"])
        c.check(rc == 0 and err.startswith(b"owup: \nusage: owup "), "owup -h")
        rc, out, err = run("owup", [dead])
        c.check(rc == 1 and err.endswith(f"owup: Unable to open control connection to {dead}.\n".encode()),
                f"owup to nothing: {err!r}")

    # --- IPv6 ---------------------------------------------------------------------
    if owtest.ipv6_loopback_usable():
        with owtest.Owampd(host="::1", family=socket.AF_INET6) as d:
            f6 = os.path.join(tmp, "v6-from.owp")
            t6 = os.path.join(tmp, "v6-to.owp")
            rc, out, err = run("owping", ["-c", "10", "-i", "0.01", "-L", "1", "-F", f6, "-T", t6, d.addr])
            c.eq(rc, 0, f"owping over IPv6: exit status ({err!r})")
            v6name = socket.getnameinfo(("::1", 0, 0, 0), 0)[0]
            bl = blocks(out)
            if c.eq(len(bl), 2, "owping over IPv6: two blocks"):
                c.eq(bl[1], owstats([], f6).replace(f"from [{v6name}]:".encode(), b"from [::1]:", 1),
                     "owping IPv6 'from' block = owstats of the -F file")
            m = owstats(["-M"], t6)
            c.check(b"FROM_ADDR\t::1\n" in m and b"TO_ADDR\t::1\n" in m, "IPv6 -T file: ::1 both ends")
            fetched6 = os.path.join(tmp, "v6-fetched.owp")
            rc, out, err = run("owfetch", [d.addr, sid_of(t6), fetched6])
            c.eq((rc, err), (0, b""), "owfetch over IPv6")
            with open(fetched6, "rb") as f1, open(t6, "rb") as f2:
                c.eq(f1.read(), f2.read(), "owfetch over IPv6: owping -T's file")
            rc, out, err = run("owup", ["-6", d.addr])
            c.check(rc == 0 and err.startswith(b"Server Up Since: "), "owup over IPv6")
    else:
        print("note: no IPv6 loopback here; IPv6 runs skipped")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

c.done()
