#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
Live interoperability with perfSONAR owamp 5.2.3: its programs, from the
folder OWAMP_REFERENCE_BIN names (owampd, owping, owstats, powstream), run
against ours on loopback, and ours against its owampd.

  ours-O/A/E[-v6]  our owping against the reference's owampd
  ref-O/A/E[-v6]   the reference's owping against our owampd
      each: three owpings at once (both directions -T/-F, -t -T, -f -F):
      N sent / 0 lost / 0 duplicates, hops 0, SIDs of the receiver's
      address, delays that parse; every saved file finished with N clean
      records and the SID of its report; owstats -R, -M and the default
      report of both implementations identical on every file, -R equal to
      the records; the server's stored "to" session equal to the fetched one
  auth             a wrong pass-phrase and an unknown key id, both ways:
                   refused, logged by the server; then a good client served
  powstream        the reference's powstream against our owampd and, as a
                   control, its own owampd; modes O and A, with and without
                   -t, all eight at once until each has two complete
                   sessions: every session's .owp parses and reads with our
                   owstats, -M equals its .sum, no fetch refused, and every
                   session our owampd finished has its file

Skips (exit 77) when OWAMP_REFERENCE_BIN is unset or lacks a program, and
the -v6 cases where ::1 cannot be bound. The reference's programs are not
sanitized: the sanitizers' variables are taken out of their environment.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))

from owtest import (Failure, Skip, check, check_clean_session, check_eq, check_raw_matches,  # noqa: E402
                    check_sanitizers, free_tcp_port, ipv6_loopback_available, log, main, parse_owp,
                    parse_raw, parse_summaries, proc_children, read_owp, recv_exact, wait_for)

REF = os.environ.get("OWAMP_REFERENCE_BIN", "")
OWSTATS = os.environ.get("OWSTATS", "")
REF_PROGRAMS = ("owampd", "owping", "owstats", "powstream")
N = 10
QUICK = ["-c", str(N), "-i", "0.01", "-L", "2"]
KEYS = {"demo": b"demo-secret"}
DELAY_RE = re.compile(r"^one-way delay min/median/max = (\S+)/(\S+)/(\S+) ms, \((?:unsync|sync)\)$", re.M)
# powstream: sessions of 20 packets 0.1 s apart, 1 s loss timeout.
PS_COUNT = 20
PS_ARGS = ["-c", str(PS_COUNT), "-i", "0.1", "-L", "1", "-p"]
PS_SESSIONS = 2


def ref(name):
    return os.path.join(REF, name)


def need_reference():
    if not REF:
        raise Skip("OWAMP_REFERENCE_BIN is not set")
    missing = [p for p in REF_PROGRAMS if not os.access(ref(p), os.X_OK)]
    if missing:
        raise Skip("OWAMP_REFERENCE_BIN=%s lacks %s" % (REF, ", ".join(missing)))
    check(OWSTATS and os.access(OWSTATS, os.X_OK), "OWSTATS is not set to our owstats (run through meson test)")


def ref_env(t):
    """The environment of a reference program: the tests' own, less what
    is ours (sanitizer options, preloads, our worker, clock shifts)."""
    env = t.env()
    for k in list(env):
        if k.startswith(("ASAN_", "UBSAN_", "LSAN_", "MSAN_", "TSAN_", "OWAMP_")) or k == "LD_PRELOAD":
            del env[k]
    return env


def write_pfs(path, keys):
    with open(path, "w") as f:
        for k, v in keys.items():
            f.write("%s\t%s\n" % (k, v.hex()))
    os.chmod(path, 0o600)


def host_port(family, port):
    return ("[::1]:%d" if family == socket.AF_INET6 else "127.0.0.1:%d") % port


class RefDaemon:
    """perfSONAR's owampd -Z with its own directories on a free port. Like
    owtest.Daemon, it is stopped (and checked) by Test.end()."""

    def __init__(self, test, family=socket.AF_INET, keys=KEYS):
        self.test = test
        self.family = family
        self.keys = keys
        n = len(test.daemons)
        self.dir = test.path("ref-owampd-%d" % n)
        self.confdir = os.path.join(self.dir, "conf")
        self.datadir = os.path.join(self.dir, "data")
        self.vardir = os.path.join(self.dir, "var")
        self.log_path = os.path.join(self.dir, "owampd.log")
        self.proc = None
        self.port = None
        self.stopped = False
        self.n_pfs = 0
        test.daemons.append(self)

    @property
    def host(self):
        return "::1" if self.family == socket.AF_INET6 else "127.0.0.1"

    @property
    def addr(self):
        return host_port(self.family, self.port)

    def client_pfs(self, keys=None):
        self.n_pfs += 1
        path = os.path.join(self.dir, "client-%d.pfs" % self.n_pfs)
        write_pfs(path, self.keys if keys is None else keys)
        return path

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=10):
        rx = re.compile(pattern, re.M)
        return wait_for(lambda: rx.search(self.log()), timeout,
                        lambda: "the reference owampd's log line /%s/; log:\n%s" % (pattern, self.log()[-3000:]))

    def start(self):
        for d in (self.confdir, self.datadir, self.vardir):
            os.makedirs(d, exist_ok=True)
        open(os.path.join(self.confdir, "owamp-server.conf"), "w").close()
        write_pfs(os.path.join(self.confdir, "owamp-server.pfs"), self.keys)
        for attempt in range(5):
            self.port = free_tcp_port(self.family)
            argv = [ref("owampd"), "-Z", "-a", "AEO", "-c", self.confdir, "-d", self.datadir, "-R", self.vardir,
                    "-S", self.addr]
            if os.geteuid() == 0:
                argv.append("-f")
            log("$ %s", " ".join(argv))
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                             env=ref_env(self.test), cwd=self.dir)

            def ready():
                if self.proc.poll() is not None:
                    return True
                try:
                    with socket.create_connection((self.host, self.port), timeout=2) as s:
                        return len(recv_exact(s, 64, 5)) == 64
                except OSError:
                    return False
            wait_for(ready, 20, "the reference owampd to accept connections", interval=0.05)
            if self.proc.poll() is None:
                log("reference owampd is pid %d on port %d", self.proc.pid, self.port)
                return self
            log("the reference owampd exited (%d):\n%s", self.proc.returncode, self.log()[-1000:])
        raise Failure("the reference owampd did not start:\n" + self.log()[-3000:])

    def stored(self, sid):
        """Its data file of a session it received."""
        for top, _, names in os.walk(self.datadir):
            if sid + ".owp" in names:
                return os.path.join(top, sid + ".owp")
        raise Failure("the reference owampd stored no file for %s" % sid)

    def stop(self, check=True, settle=True):
        if self.stopped or not self.proc:
            return
        self.stopped = True
        if self.proc.poll() is not None:
            raise Failure("the reference owampd died during the test (status %d):\n%s" % (
                self.proc.returncode, self.log()[-3000:]))
        children = proc_children(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise Failure("the reference owampd did not exit within 15 s of SIGTERM")
        # Its per-connection children go with it; do not leave any behind
        # (they are not ours to judge).
        for pid in children:
            for _ in range(100):
                if not os.path.exists("/proc/%d" % pid):
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def ref_run(t, prog, args, timeout=60):
    """Run a reference program to completion."""
    argv = [ref(prog)] + list(args)
    log("$ %s", " ".join(argv))
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=ref_env(t),
                           cwd=t.tmp)
    except subprocess.TimeoutExpired:
        raise Failure("the reference %s did not finish within %d s" % (prog, timeout))
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    return p


def ref_spawn(t, prog, args, name):
    argv = [ref(prog)] + list(args)
    log("$ %s &", " ".join(argv))
    out = open(t.path(name + ".out"), "wb")
    err = open(t.path(name + ".err"), "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=ref_env(t), cwd=t.tmp)
    out.close()
    err.close()
    p.out_path, p.err_path = out.name, err.name
    t.popens.append(p)
    return p


def our_run(t, argv, timeout=60):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=t.env(), cwd=t.tmp)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    check_sanitizers(os.path.basename(argv[0]), p.err)
    return p


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


# --- What every saved session must show ---------------------------------------

def cross_owstats(t, path, records, what):
    """Both owstats read the file the same way: -R, -M and the default report
    identical; -R says exactly what the records hold. Returns our -M."""
    outs = {}
    for opts in (["-R"], ["-M"], []):
        ours = our_run(t, [OWSTATS] + opts + [path])
        theirs = ref_run(t, "owstats", opts + [path])
        check_eq(ours.returncode, 0, "our owstats %s %s: exit status (stderr %r)" % (" ".join(opts), what, ours.err))
        check_eq(theirs.returncode, 0, "the reference owstats %s %s: exit status (stderr %r)" % (
            " ".join(opts), what, theirs.err))
        check(ours.out == theirs.out, "owstats %s of %s: ours and the reference's differ:\n--- ours\n%s\n--- "
              "reference\n%s", " ".join(opts), what, ours.out, theirs.out)
        outs[" ".join(opts)] = ours.out
    check_raw_matches(parse_raw(outs["-R"]), records, "owstats -R of %s" % what)
    return outs["-M"]


def check_report(block, family, what):
    """One session's block of an owping report: N sent, none lost or
    duplicated, the receiver's address in the SID, delays that parse."""
    check_eq((block["sent"], block["lost"], block["dups"]), (N, 0, 0), "%s: sent, lost, duplicates" % what)
    prefix = "00000001" if family == socket.AF_INET6 else "7f000001"
    check(block["sid"].startswith(prefix), "%s: SID %s does not start with the receiver's address %s", what,
          block["sid"], prefix)
    m = DELAY_RE.search(block["block"])
    check(m is not None, "%s: no delay line in\n%s", what, block["block"])
    mn, med, mx = (float(v) for v in m.groups())
    check(0 <= mn <= mx < 100 and 0 <= med < 100, "%s: delays min/median/max %s ms", what, m.groups())
    check("\nhops = 0 (consistently)" in block["block"], "%s: hops line in\n%s", what, block["block"])


def check_saved(t, path, sid, what):
    f = read_owp(path)
    check_eq((f.finished, f.next_seqno), (1, N), "%s: finished, Next Seqno" % what)
    check_eq(f.request.sid.hex(), sid, "%s: SID in the file" % what)
    check_eq(f.request.n_packets, N, "%s: Number of Packets" % what)
    check_clean_session(f.records, N, what)
    cross_owstats(t, path, f.records, what)
    return f


# --- owping both ways -------------------------------------------------------------

RUNS = (  # name, owping options, which sessions it reports, in order
    ("both", lambda p: ["-T", p("to.owp"), "-F", p("from.owp")], ("to", "from")),
    ("to", lambda p: ["-t", "-T", p("to.owp")], ("to",)),
    ("from", lambda p: ["-f", "-F", p("from.owp")], ("from",)),
)


def owping_both_ways(client, mode, family):
    """client "ours": our owping against the reference owampd; "ref": the
    reference owping against our owampd."""
    def case(t):
        need_reference()
        if family == socket.AF_INET6 and not ipv6_loopback_available():
            raise Skip("::1 cannot be bound here")
        server = RefDaemon(t, family).start() if client == "ours" else t.daemon(family=family)
        auth = [] if mode == "O" else ["-u", "demo", "-k", server.client_pfs()]
        procs = []
        for name, files, _ in RUNS:
            os.makedirs(t.path(name))
            args = ["-A", mode] + auth + QUICK + files(lambda f, n=name: t.path(n, f)) + [server.addr]
            if client == "ours":
                procs.append(t.spawn_owping(args))
            else:
                procs.append(ref_spawn(t, "owping", args, "ref-owping-" + name))
        deadline = time.monotonic() + 60
        for p in procs:
            try:
                p.wait(max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise Failure("owping %s did not finish within 60 s" % p.args)

        for p, (name, _, sessions) in zip(procs, RUNS):
            out, err = read_text(p.out_path), read_text(p.err_path)
            if client == "ours":
                check_sanitizers("owping", err)
            what = "%s owping -A %s (%s)" % ("our" if client == "ours" else "the reference", mode, name)
            check(p.returncode == 0, "%s exited with %d\nstdout:\n%s\nstderr:\n%s", what, p.returncode, out, err)
            blocks = parse_summaries(out)
            check_eq(len(blocks), len(sessions), "%s: sessions reported" % what)
            for block, dirn in zip(blocks, sessions):
                check_report(block, family, "%s, %s session" % (what, dirn))
                path = t.path(name, dirn + ".owp")
                f = check_saved(t, path, block["sid"], "%s, %s session's file" % (what, dirn))
                if dirn == "to":
                    # What the server stored is what the client fetched.
                    stored = server.stored(block["sid"]) if client == "ours" else server.data_path(block["sid"])
                    check_eq([r.key() for r in read_owp(stored).records], [r.key() for r in f.records],
                             "%s: the server's stored records vs the fetched ones" % what)
            log("%s: %d session(s) of %d packets, clean, files read alike by both owstats", what, len(blocks), N)
        if client == "ref":
            check("Refusing" not in server.log(), "our owampd refused something:\n%s" % server.log()[-3000:])
    return case


# --- Refusals -----------------------------------------------------------------------

def case_auth(t):
    need_reference()
    ours = t.daemon()
    theirs = RefDaemon(t).start()
    wrong = {"demo": b"not-the-secret"}
    stranger = {"stranger": b"demo-secret"}

    # The reference owping against our owampd.
    p = ref_run(t, "owping", ["-A", "A", "-u", "demo", "-k", ours.client_pfs(wrong)] + QUICK + [ours.addr])
    check(p.returncode != 0 and not parse_summaries(p.out), "the reference owping with a wrong pass-phrase: %d\n%s",
          p.returncode, p.out)
    check(re.search(r"Server denied access", p.err), "the reference owping's reason: %r", p.err)
    ours.wait_log(r"Refusing 127\.0\.0\.1:\d+: authentication failed for key id 'demo' \(wrong passphrase\)")
    # Only a source's first failure of each authfailwindow is logged as
    # itself (owampd.conf(5)): the unknown key id on a server of its own.
    ours2 = t.daemon()
    p = ref_run(t, "owping", ["-A", "E", "-u", "stranger", "-k", ours2.client_pfs(stranger)] + QUICK + [ours2.addr])
    check(p.returncode != 0 and not parse_summaries(p.out), "the reference owping with an unknown key id: %d\n%s",
          p.returncode, p.out)
    check(re.search(r"Server denied access", p.err), "the reference owping's reason: %r", p.err)
    ours2.wait_log(r"Refusing 127\.0\.0\.1:\d+: authentication failed for key id 'stranger' \(unknown key id\)")

    # Our owping against the reference owampd.
    p = t.owping(["-A", "A", "-u", "demo", "-k", theirs.client_pfs(wrong)] + QUICK + [theirs.addr], expect_rc=1)
    check_eq(p.out, "", "our owping's output when refused")
    check(re.search(r"^owping: .*refused.*wrong key id or passphrase", p.err, re.M), "our owping's reason: %r", p.err)
    theirs.wait_log(r"denied from \(\[127\.0\.0\.1\]:\d+\):Invalid challenge encryption")
    p = t.owping(["-A", "E", "-u", "stranger", "-k", theirs.client_pfs(stranger)] + QUICK + [theirs.addr],
                 expect_rc=1)
    check_eq(p.out, "", "our owping's output when refused")
    check(re.search(r"^owping: .*refused.*wrong key id or passphrase", p.err, re.M), "our owping's reason: %r", p.err)
    theirs.wait_log(r"Unknown userid \(stranger\)")

    # The right key is served both ways.
    p = ref_run(t, "owping", ["-A", "A", "-u", "demo", "-k", ours.client_pfs()] + QUICK + [ours.addr])
    check_eq([(b["sent"], b["lost"]) for b in parse_summaries(p.out)], [(N, 0), (N, 0)],
             "the reference owping with the right key: reports")
    p = t.owping(["-A", "A", "-u", "demo", "-k", theirs.client_pfs()] + QUICK + [theirs.addr])
    check_eq([(b["sent"], b["lost"]) for b in parse_summaries(p.out)], [(N, 0), (N, 0)],
             "our owping with the right key: reports")


# --- powstream ------------------------------------------------------------------------

def sid_of_owp(path):
    with open(path, "rb") as f:
        return parse_owp(f.read()).request.sid.hex()


def case_powstream(t):
    """The reference's powstream, the commonest client of an OWAMP server:
    sessions chained on two control connections, each fetched (-t) on a
    third while the receiver may still be settling it."""
    need_reference()
    ours = t.daemon()
    theirs = RefDaemon(t).start()
    runs = []
    for server, sname in ((ours, "ours"), (theirs, "ref")):
        for mode in "OA":
            for to in (True, False):
                name = "powstream-%s-%s%s" % (sname, mode, "-t" if to else "")
                d = t.path(name)
                os.makedirs(d)
                auth = [] if mode == "O" else ["-u", "demo", "-k", server.client_pfs()]
                args = (["-t"] if to else []) + ["-A", mode] + auth + PS_ARGS + ["-d", d, server.addr]
                runs.append({"name": name, "server": sname, "to": to, "dir": d,
                             "proc": ref_spawn(t, "powstream", args, name)})

    def complete(r):
        """.sum files powstream reported as complete (-p)."""
        return [os.path.basename(l) for l in read_text(r["proc"].out_path).split() if l.endswith(".sum")]

    # Until each has PS_SESSIONS complete sessions (the first starts after
    # about 10 s), remembering where our owampd's log was along the way.
    marks = []
    t0 = time.monotonic()
    for _ in range(1000):
        marks.append((time.monotonic(), ours.mark()))
        if all(len(complete(r)) >= PS_SESSIONS for r in runs):
            break
        for r in runs:
            check(r["proc"].poll() is None, "%s exited with %s:\n%s", r["name"], r["proc"].returncode,
                  read_text(r["proc"].err_path))
        check(time.monotonic() - t0 < 70, "after 70 s: complete sessions %s", {
            r["name"]: len(complete(r)) for r in runs})
        time.sleep(0.2)
    t_stop = time.monotonic()
    log("every powstream has %d complete sessions after %.1f s", PS_SESSIONS, t_stop - t0)
    done = {r["name"]: complete(r) for r in runs}
    # What each said before it was stopped (at the stop it may complain of
    # the connections it loses).
    said = {r["name"]: read_text(r["proc"].err_path) for r in runs}
    for r in runs:
        r["proc"].send_signal(signal.SIGTERM)
    for r in runs:
        try:
            r["proc"].wait(15)
        except subprocess.TimeoutExpired:
            raise Failure("%s did not exit within 15 s of SIGTERM" % r["name"])

    ours_sids = set()
    for r in runs:
        err = said[r["name"]]
        check(not re.search(r"denied|Unable|[Ff]ailed", err), "%s said before the stop: %s", r["name"], err)
        names = sorted(os.listdir(r["dir"]))
        owps = [n for n in names if n.endswith(".owp")]
        n_records = 0
        for n in owps:
            path = os.path.join(r["dir"], n)
            f = read_owp(path)
            p = our_run(t, [OWSTATS, "-R", path])
            check_eq(p.returncode, 0, "our owstats -R %s: exit status (%r)" % (n, p.err))
            check_raw_matches(parse_raw(p.out), f.records, "%s: our owstats -R of %s" % (r["name"], n))
            n_records += len(f.records)
            if r["server"] == "ours":
                ours_sids.add(f.request.sid.hex())
        for s in done[r["name"]]:
            owp = s[:-len(".sum")] + ".owp"
            check(owp in owps, "%s: %s without its .owp", r["name"], s)
            path = os.path.join(r["dir"], owp)
            f = read_owp(path)
            check_eq((f.finished, len(f.records)), (1, PS_COUNT), "%s: %s finished, records" % (r["name"], owp))
            check_clean_session(f.records, PS_COUNT, "%s: %s" % (r["name"], owp))
            m = cross_owstats(t, path, f.records, "%s: %s" % (r["name"], owp))
            check_eq(m, read_text(os.path.join(r["dir"], s)), "%s: owstats -M vs powstream's %s" % (r["name"], s))
        log("%s: %d sessions complete before the stop, %d .owp files in all (%d records), %d .sum", r["name"],
            len(done[r["name"]]), len(owps), n_records, len([n for n in names if n.endswith(".sum")]))

    # Our owampd: no fetch refused, and every session it had finished 3 s
    # before the stop (fetched whole, or sent) was written by powstream.
    text = ours.log()
    check("Refusing" not in text, "our owampd refused something:\n%s" % text[-3000:])
    early = max([m for tm, m in marks if tm <= t_stop - 3] or [0])
    before = ours.log_bytes()[:early].decode("utf-8", "replace")
    finished = set(re.findall(r"Session ([0-9a-f]{32}) fetched by \S+: records 0\.\.4294967295", before))
    finished |= set(re.findall(r"Session ([0-9a-f]{32}) finished: %d sent" % PS_COUNT, before))
    check(finished, "our owampd finished no session 3 s before the stop")
    check_eq(sorted(finished - ours_sids), [], "sessions our owampd finished that powstream did not write")


CASES = {}
for _mode in "OAE":
    CASES["ours-" + _mode] = owping_both_ways("ours", _mode, socket.AF_INET)
    CASES["ref-" + _mode] = owping_both_ways("ref", _mode, socket.AF_INET)
    CASES["ours-%s-v6" % _mode] = owping_both_ways("ours", _mode, socket.AF_INET6)
    CASES["ref-%s-v6" % _mode] = owping_both_ways("ref", _mode, socket.AF_INET6)
CASES["auth"] = case_auth
CASES["powstream"] = case_powstream

if __name__ == "__main__":
    sys.exit(main(CASES))
