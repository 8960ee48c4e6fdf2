#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
powstream against our owampd on loopback.

  powstream-from     the default direction (the server sends), -N sub-sessions,
                     --json and the journal entries: sessions back to back,
                     every file complete when printed, .sum = owstats -M,
                     names chained as the reference's, the lock, SIGTERM
  powstream-to       -t (we send, the server receives, we fetch)
  pscheduler         pScheduler's command lines (with and without -t -L):
                     the first .owp printed well within a minute, SIGTERM
                     then SIGKILL 0.5 s later as its plugin does
  powstream-modes    modes A and E with a pass-phrase file, both directions
  powstream-ipv6     over [::1], both directions
  powstream-retry    no server: one attempt per -I seconds, no busy loop
  powstream-restart  SIGHUP (start over), then the server stopped and started
                     again on its port: reconnection, sessions again
  powstream-clock-step  the wall clock stepped forward and back while
                     sessions run and the next ones are set up
                     (OWAMP_DEBUG_CLOCK_STEPS for powstream's, OWAMP_DEBUG_CLOCK_STEP
                     for the workers'): it keeps running, every printed file
                     complete, a clean exit on SIGTERM
  powstream-options  refusals of bad options, -h, --version, a missing -d
"""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import (Failure, Skip, check, check_clean_session, check_eq, check_sanitizers, free_tcp_port,  # noqa: E402
                    ipv6_loopback_available, log, main, read_owp, wait_for)

POWSTREAM = os.environ.get("POWSTREAM", "")
OWSTATS = os.environ.get("OWSTATS", "")
MSGID_RESULT = "2e62024dca5a4332b61100f59aef4078"
NAME_RE = re.compile(r"^(\d{20})_(\d{20})\.(owp|sum)$")


def need_programs():
    for var, what in ((POWSTREAM, "POWSTREAM"), (OWSTATS, "OWSTATS")):
        check(var and os.access(var, os.X_OK), "%s is not set to an executable (run through meson test)", what)


class Journal:
    """A stand-in for journald's socket: the native protocol's datagrams."""

    def __init__(self, t):
        self.path = t.path("journal.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.entries = []

    def read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return self.entries
            fields = {}
            for line in data.decode("utf-8", "replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            self.entries.append(fields)


class Powstream:
    def __init__(self, t, args, name, env=None):
        self.t = t
        self.name = name
        self.argv = [POWSTREAM] + list(args)
        log("$ %s &", " ".join(self.argv))
        self.out_path = t.path(name + ".out")
        self.err_path = t.path(name + ".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=t.env(env), cwd=t.tmp)
        self.t0 = time.monotonic()
        t.popens.append(self.proc)

    def out(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def err(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def lines(self):
        return [l for l in self.out().split("\n") if l]

    def paths(self, ext):
        return [l for l in self.lines() if not l.startswith("{") and l.endswith(ext)]

    def wait_files(self, ext, n, timeout):
        def enough():
            check(self.proc.poll() is None, "%s exited with %s:\n%s", self.name, self.proc.returncode, self.err())
            return len(self.paths(ext)) >= n
        wait_for(enough, timeout, "%s to print %d %s files; stderr:\n%s" % (self.name, n, ext, self.err()),
                 interval=0.1)
        return time.monotonic() - self.t0

    def stop(self, sig=signal.SIGTERM, timeout=10):
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise Failure("%s did not exit within %d s of signal %d" % (self.name, timeout, sig))
        check_sanitizers(self.name, self.err())
        return self.proc.returncode


def run(t, args, timeout=20, env=None):
    argv = [POWSTREAM] + list(args)
    log("$ %s", " ".join(argv))
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=t.env(env),
                       cwd=t.tmp)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    check_sanitizers("powstream", p.err)
    return p


def owstats_m(t, path):
    p = subprocess.run([OWSTATS, "-M", path], capture_output=True, timeout=30, env=t.env(), cwd=t.tmp)
    check_eq(p.returncode, 0, "owstats -M %s: exit status (%r)" % (path, p.stderr))
    return p.stdout.decode("utf-8", "replace")


def span(path):
    m = NAME_RE.match(os.path.basename(path))
    check(m, "%s is not named START_END.ext", path)
    return int(m.group(1)), int(m.group(2))


def check_session_file(t, path, count, sid_prefix, what):
    """A complete session: finished, count clean records, named after its
    Start Time, and its .sum what owstats -M says of it."""
    check(os.path.exists(path), "%s: %s printed but not there", what, path)
    f = read_owp(path)
    check_eq((f.finished, f.next_seqno, f.request.n_packets), (1, count, count), "%s: finished, Next Seqno, packets"
             % what)
    check_clean_session(f.records, count, what)
    check(f.request.sid.hex().startswith(sid_prefix), "%s: SID %s does not start with the receiver's address %s",
          what, f.request.sid.hex(), sid_prefix)
    start, end = span(path)
    check_eq(start, f.request.start_time, "%s: the name's start vs the file's Start Time" % what)
    # The end is the last packet's due time: it was sent then (on loopback
    # within 20 ms), and no packet before it was sent later.
    last_send = max(r.send_time for r in f.records)
    check(0 <= last_send - end < (1 << 32) // 50, "%s: end %d vs last send time %d", what, end, last_send)
    sum_path = path[:-len(".owp")] + ".sum"
    with open(sum_path) as s:
        check_eq(s.read(), owstats_m(t, path), "%s: .sum vs owstats -M" % what)
    return f


def settle(d):
    """Our owampd's workers of the sessions a stopped powstream had set up
    ahead (started, waiting for their start time) end when their
    connections close: none may be left (a worker of an abandoned session
    kept as a zombie was a bug of owampd's launcher), then the common end
    checks."""
    d.quiesce()
    d.stop(check=True, settle=False)


def check_no_temporary(d, what):
    left = [n for n in os.listdir(d) if n.startswith(".") and n != ".powlock"]
    check_eq(left, [], "%s: temporary files left in %s" % (what, d))


def check_lock(t, d, ps):
    with open(os.path.join(d, ".powlock"), "rb") as f:
        pid = struct.unpack("=i", f.read())[0]
    check_eq(pid, ps.proc.pid, ".powlock's pid")
    p = run(t, ["-d", d, "-c", "10", "127.0.0.1:9"])
    check_eq(p.returncode, 1, "a second powstream in the same directory: exit status")
    check("Unable to lock file %s/.powlock" % d in p.err and "Possibly locked by pid(%d)" % ps.proc.pid in p.err,
          "a second powstream: %r", p.err)


# --- Cases ----------------------------------------------------------------------

def case_from(t):
    """Default direction, -N, --json and the journal, for several sessions."""
    need_programs()
    d = t.daemon()
    out = t.path("out")
    os.makedirs(out)
    j = Journal(t)
    ps = Powstream(t, ["-p", "-d", out, "-c", "20", "-N", "10", "-i", "0.1", "-L", "1", "--json", "--name", "mesh-a",
                       d.addr], "powstream", env={"OWAMP_JOURNAL_SOCKET": j.path})
    took = ps.wait_files(".owp", 3, 60)
    log("three sessions after %.1f s", took)
    check_lock(t, out, ps)
    mark = d.mark()
    check_eq(ps.stop(), 0, "powstream's exit status after SIGTERM")
    check("SIGTERM/SIGINT Caught: Exiting." in ps.err(), "powstream's last words: %r", ps.err())
    check(not re.search(r"[Ff]ail|denied|Unable|error", ps.err()), "powstream complained: %r", ps.err())
    check_no_temporary(out, "powstream-from")
    settle(d)

    lines = ps.lines()
    paths = [l for l in lines if not l.startswith("{")]
    docs = [json.loads(l) for l in lines if l.startswith("{")]
    owps = [p for p in paths if p.endswith(".owp")]
    complete = owps[:3]
    # -p: per session its two sub-session summaries, the .owp, its .sum.
    for owp in complete:
        i = paths.index(owp)
        check(i >= 2, "%s printed without its sub-sessions before it", owp)
        s0, s1, osum = paths[i - 2], paths[i - 1], paths[i + 1]
        check_eq(osum, owp[:-4] + ".sum", "the line after %s" % owp)
        start, end = span(owp)
        check_eq((span(s0)[0], span(s0)[1], span(s1)[0], span(s1)[1] == end),
                 (start, span(s1)[0], span(s0)[1], True), "sub-session spans of %s" % owp)
        check(s0.endswith(".sum") and s1.endswith(".sum"), "sub-session files of %s: %s %s", owp, s0, s1)
    sessions = [check_session_file(t, p, 20, "7f000001", os.path.basename(p)) for p in complete]
    # Back to back: each session starts where the one before ends.
    for a, b in zip(complete, complete[1:]):
        check_eq(span(b)[0], span(a)[1], "%s follows %s" % (os.path.basename(b), os.path.basename(a)))
    # Our owampd sent every one of them.
    text = d.log_bytes()[:mark].decode("utf-8", "replace")
    for f in sessions:
        check(re.search(r"Session %s finished: 20 sent" % f.request.sid.hex(), text),
              "our owampd did not log session %s as finished", f.request.sid.hex())

    # --json: one document per (sub-)session, in the order of the files.
    sums = [p for p in paths if p.endswith(".sum")]
    check_eq(len(docs), len(sums), "JSON documents vs .sum files")
    for doc, s in zip(docs, sums):
        check_eq((doc["schema"], doc["version"], doc["stream"], doc["direction"]),
                 ("owamp-powstream", 1, "mesh-a", "from"), "JSON wrapper")
        check_eq(doc["sum_file"], s, "JSON sum_file")
        rep = doc["report"]
        check_eq(rep["schema"], "owamp-report", "the inner report's schema")
        check_eq(len(rep["summaries"]), 1, "summaries of one document")
        summ = rep["summaries"][0]
        start, end = span(s)
        check_eq((doc["start"]["ntp"], doc["end"]["ntp"]), (str(start), str(end)), "JSON span of %s" % s)
        if doc["kind"] == "sub-session":
            check(doc["subsession"] in (0, 1) and doc["subsessions"] == 2 and doc["owp_file"] is None,
                  "sub-session document: %r", {k: doc[k] for k in ("subsession", "subsessions", "owp_file")})
            check_eq(summ["sent"], 10, "sent of a sub-session")
        else:
            check_eq((doc["subsession"], doc["owp_file"]), (None, s[:-4] + ".owp"), "session document")
            if doc["owp_file"] in complete:
                check_eq((summ["sent"], summ["lost"]), (20, 0), "sent, lost of %s" % s)
                check_eq(rep["session"]["sid"], read_owp(doc["owp_file"]).request.sid.hex(), "JSON SID")

    # The journal: one entry per (sub-)session, its figures as fields.
    entries = [e for e in j.read() if e.get("MESSAGE_ID") == MSGID_RESULT]
    check_eq(len(entries), len(sums), "journal entries vs .sum files")
    for e, s in zip(entries, sums):
        check_eq((e["OWAMP_STREAM"], e["OWAMP_DIRECTION"], e["OWAMP_SUM_FILE"]), ("mesh-a", "from", s),
                 "journal entry of %s" % s)
        check_eq(e["OWAMP_START_TIME"], str(span(s)[0]), "journal start of %s" % s)
        for k in ("OWAMP_SENT", "OWAMP_LOST", "OWAMP_DUPLICATES", "OWAMP_REORDERED", "OWAMP_DELAY_MIN_SEC",
                  "OWAMP_DELAY_MAX_SEC", "OWAMP_SID"):
            check(k in e, "journal entry of %s lacks %s: %r", s, k, e)
        if s[:-4] + ".owp" in complete:
            check_eq((e["OWAMP_KIND"], e["OWAMP_SENT"], e["OWAMP_LOST"], e["OWAMP_DUPLICATES"]),
                     ("session", "20", "0", "0"), "journal figures of %s" % s)
            check(0 <= float(e["OWAMP_DELAY_MIN_SEC"]) <= float(e["OWAMP_DELAY_MAX_SEC"]) < 0.5,
                  "journal delays of %s: %r", s, e)
        elif e["OWAMP_KIND"] == "sub-session":
            check_eq(e["OWAMP_SENT"], "10", "journal sent of sub-session %s" % s)


def case_to(t):
    """-t: we send; each session fetched from the server."""
    need_programs()
    d = t.daemon()
    out = t.path("out")
    os.makedirs(out)
    ps = Powstream(t, ["-t", "-p", "-d", out, "-c", "20", "-N", "10", "-i", "0.1", "-L", "1", d.addr], "powstream")
    ps.wait_files(".owp", 2, 60)
    check_eq(ps.stop(), 0, "powstream's exit status after SIGTERM")
    check(not re.search(r"[Ff]ail|denied|Unable", ps.err()), "powstream complained: %r", ps.err())
    check_no_temporary(out, "powstream-to")
    settle(d)
    owps = ps.paths(".owp")[:2]
    for p in owps:
        check_session_file(t, p, 20, "7f000001", os.path.basename(p))
    check_eq(span(owps[1])[0], span(owps[0])[1], "the second session follows the first")
    # Sub-sessions of -t: from the fetched data, each before its session.
    paths = [l for l in ps.lines()]
    i = paths.index(owps[0])
    check(paths[i - 2].endswith(".sum") and paths[i - 1].endswith(".sum"), "sub-sessions of %s: %r", owps[0],
          paths[:i])
    check_eq(span(paths[i - 1])[1], span(owps[0])[1], "the last sub-session ends with the session")
    text = d.log()
    for p in owps:
        sid = read_owp(p).request.sid.hex()
        check(re.search(r"Session %s fetched by \S+: records 0\.\.4294967295" % sid, text),
              "our owampd did not log the fetch of %s", sid)


def pscheduler_run(t, d, args, first_within):
    """As pScheduler's powstream plugin: read the printed .owp paths, and end
    with SIGTERM, then SIGKILL 0.5 s later."""
    out = t.path("out-%d" % len(t.popens))
    os.makedirs(out)
    ps = Powstream(t, ["-p", "-d", out] + args + ["-S", "127.0.0.1", "[127.0.0.1]:%d" % d.port], "powstream-%d" %
                   len(t.popens))
    took = ps.wait_files(".owp", 1, first_within)
    log("first .owp after %.1f s: %s", took, ps.paths(".owp")[0])
    check(took < first_within, "the first result after %.1f s", took)
    owp = ps.paths(".owp")[0]
    check_session_file(t, owp, 50, "7f000001", os.path.basename(owp))
    ps.proc.send_signal(signal.SIGTERM)
    try:
        ps.proc.wait(0.5)
    except subprocess.TimeoutExpired:
        ps.proc.kill()
        ps.proc.wait(5)
        raise Failure("powstream was still running 0.5 s after SIGTERM (pScheduler kills it then)")
    check_eq(ps.proc.returncode, 0, "exit status after SIGTERM")
    check_sanitizers(ps.name, ps.err())
    check_no_temporary(out, ps.name)
    # Every file it printed is whole.
    for p in ps.paths(".owp"):
        read_owp(p)


def case_pscheduler(t):
    need_programs()
    d = t.daemon()
    pscheduler_run(t, d, ["-c", "50", "-i", "0.1", "-L", "2", "-t"], 30)
    pscheduler_run(t, d, ["-c", "50", "-i", "0.1"], 45)
    # The session the SIGKILL cut runs on at the server until its loss
    # timeout (10 s) has passed.
    d.quiesce(timeout=40)
    d.stop(check=True, settle=False)


def two_ways(t, d, extra, count=10, sid_prefix="7f000001"):
    runs = []
    for to in (False, True):
        out = t.path("out-%s%s" % ("to" if to else "from", len(t.popens)))
        os.makedirs(out)
        args = (["-t"] if to else []) + extra + ["-p", "-d", out, "-c", str(count), "-i", "0.1", "-L", "1",
                                                 d.addr]
        runs.append(Powstream(t, args, "powstream-%d" % len(t.popens)))
    for ps in runs:
        ps.wait_files(".owp", 2, 60)
    for ps in runs:
        check_eq(ps.stop(), 0, "%s: exit status" % ps.name)
    for ps in runs:
        check(not re.search(r"[Ff]ail|denied|Unable", ps.err()), "%s complained: %r", ps.name, ps.err())
        for p in ps.paths(".owp")[:2]:
            check_session_file(t, p, count, sid_prefix, "%s: %s" % (ps.name, os.path.basename(p)))


def case_modes(t):
    need_programs()
    d = t.daemon()
    pfs = d.client_pfs()
    for mode in "AE":
        two_ways(t, d, ["-A", mode, "-u", "demo", "-k", pfs])
    text = d.log()
    check(re.search(r"mode authenticated", text) or "authenticated" in text, "our owampd saw no mode A")
    settle(d)


def case_ipv6(t):
    need_programs()
    if not ipv6_loopback_available():
        raise Skip("::1 cannot be bound")
    d = t.daemon(family=socket.AF_INET6)
    two_ways(t, d, [], sid_prefix="00000001")
    settle(d)


def case_retry(t):
    """No server: one connection attempt per -I seconds."""
    need_programs()
    port = free_tcp_port(socket.AF_INET)
    out = t.path("out")
    os.makedirs(out)
    ps = Powstream(t, ["-d", out, "-I", "1", "-c", "20", "127.0.0.1:%d" % port], "powstream")
    time.sleep(3.5)
    n = len(re.findall(r"Couldn't open 'control' connection", ps.err()))
    check(2 <= n <= 5, "%d failed attempts in 3.5 s with -I 1:\n%s", n, ps.err())
    # Not busy while it waits.
    with open("/proc/%d/stat" % ps.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    check(ticks < os.sysconf("SC_CLK_TCK"), "powstream used %d ticks of CPU in 3.5 s of retries", ticks)
    check_eq(ps.stop(), 0, "exit status after SIGTERM")
    check_eq(sorted(os.listdir(out)), [".powlock"], "files of a stream that never ran")


def case_restart(t):
    """SIGHUP, then the peer down and back: powstream carries on."""
    need_programs()
    import owtest
    d1 = t.daemon()
    port = d1.port
    out = t.path("out")
    os.makedirs(out)
    ps = Powstream(t, ["-p", "-d", out, "-c", "20", "-i", "0.1", "-L", "1", "-I", "1", d1.addr], "powstream")
    ps.wait_files(".owp", 1, 60)
    ps.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP: Re-opening connections." in ps.err(), 10, "powstream's SIGHUP line")
    n = len(ps.paths(".owp"))
    ps.wait_files(".owp", n + 1, 60)
    check(ps.proc.poll() is None, "powstream exited after SIGHUP")

    d1.stop(check=False)
    down = len(re.findall(r"Couldn't open 'control' connection", ps.err()))
    wait_for(lambda: len(re.findall(r"Couldn't open 'control' connection", ps.err())) > down, 30,
             "powstream to notice the server is gone:\n" + ps.err())
    time.sleep(2)
    free = owtest.free_tcp_port
    owtest.free_tcp_port = lambda family: port
    try:
        d2 = t.daemon()
    finally:
        owtest.free_tcp_port = free
    check_eq(d2.port, port, "the new owampd's port")
    n = len(ps.paths(".owp"))
    ps.wait_files(".owp", n + 1, 60)
    after = ps.paths(".owp")[n]
    attempts = len(re.findall(r"Couldn't open 'control' connection", ps.err()))
    check_eq(ps.stop(), 0, "exit status after SIGTERM")
    # One attempt per second while it was down (a few seconds), not more.
    check(attempts - down <= 12, "%d connection attempts while the server was down", attempts - down)
    # Those cut short (SIGHUP, the server gone, SIGTERM) are unfinished
    # files with what came; the first after the restart is whole.
    for p in ps.paths(".owp"):
        f = read_owp(p)
        check(f.finished in (1, 2) and len(f.records) > 0, "%s: finished %d, %d records", p, f.finished,
              len(f.records))
    check_session_file(t, after, 20, "7f000001", os.path.basename(after))
    check_no_temporary(out, "powstream-restart")
    settle(d2)


def case_clock_step(t):
    """Steps of +1.843 s, -2.5 s and +6.518 s of powstream's clock, one
    during the first sessions and the set-up of the next ones (our
    owampd's workers' own steps are clock-step's, test-faults.py).
    A session the step cut may fail and the chain may restart (as the
    reference's), but nothing crashes, leaks or spins, and every file
    printed is complete."""
    need_programs()
    d = t.daemon()
    for to in (False, True):
        out = t.path("out-%s" % ("to" if to else "from"))
        os.makedirs(out)
        cpu = sum(os.times()[2:4])
        args = (["-t"] if to else []) + ["-p", "-d", out, "-c", "20", "-N", "10", "-i", "0.1", "-L", "1", d.addr]
        ps = Powstream(t, args, "powstream-step-%s" % ("to" if to else "from"),
                       env={"OWAMP_DEBUG_CLOCK_STEPS": "11:1.843,14.5:-2.5,18:6.518"})
        took = ps.wait_files(".owp", 8, 120)
        log("%s: eight sessions after %.1f s", ps.name, took)
        check_eq(ps.stop(), 0, "%s: exit status after SIGTERM" % ps.name)
        check("SIGTERM/SIGINT Caught: Exiting." in ps.err(), "%s's last words: %r", ps.name, ps.err())
        check_no_temporary(out, ps.name)
        # The eight waited for (a session SIGTERM cut is left short).
        owps = ps.paths(".owp")[:8]
        check(len(owps) == 8, "%s printed %d .owp files", ps.name, len(owps))
        full = 0
        for p in owps:
            what = "%s: %s" % (ps.name, os.path.basename(p))
            check(os.path.exists(p), "%s: printed but not there", what)
            f = read_owp(p)
            check_eq((f.finished, f.request.n_packets), (1, 20), "%s: finished, packets" % what)
            # Only powstream's clock steps, not its running worker's nor
            # our owampd's (as if the hosts' clocks disagreed by the step):
            # a session asked for a start the server sees passed, or given
            # a stop time off by the step, is cut short (its Next Seqno
            # says so). Never a packet twice.
            seqs = sorted(r.seq for r in f.records)
            check(len(set(seqs)) == len(seqs) and all(q < 20 for q in seqs), "%s: sequence numbers %r", what, seqs)
            full += seqs == list(range(20))
            check(os.path.exists(p[:-4] + ".sum"), "%s: no .sum", what)
        # How many came through whole depends on where each step fell on
        # this machine's timing: reported, not asserted (every file is
        # still checked above: finished, no packet twice, its .sum).
        log("%s: %d of %d sessions with all their packets", ps.name, full, len(owps))
        # No busy loop: the CPU time of powstream (and its workers), now
        # reaped, is a small part of the time it ran.
        cpu = sum(os.times()[2:4]) - cpu
        log("%s: CPU %.2f s over %.1f s", ps.name, cpu, took)
        check(cpu < took / 2, "%s: %.2f s of CPU in %.1f s (a busy loop?)", ps.name, cpu, took)
    settle(d)


def case_options(t):
    need_programs()
    p = run(t, ["-h"])
    check(p.returncode == 0 and "usage: powstream [arguments] testaddr [servaddr]" in p.err and "--json" in p.err,
          "-h: %d %r", p.returncode, p.err[:200])
    for opt in ("-t", "-c count", "-E endDelay", "-i wait", "-L timeout", "-P portrange", "-s padding",
                "-z delayStart", "-4", "-6", "-A authmode", "-k pffile", "-S srcaddr", "-B interface",
                "-u username", "-I retryDelay", "-b bucketWidth", "-d dir", "-e facility", "-g loglevel",
                "-N count", "-p", "-R", "-v", "-U"):
        check(re.search(r"^   %s\b" % re.escape(opt), p.err, re.M), "-h lacks %s", opt)
    p = run(t, ["--version"])
    check(p.returncode == 0 and re.match(r"^powstream \S+\n$", p.out), "--version: %d %r", p.returncode, p.out)
    bad = [
        (["-c", "60", "-N", "7", "x"], "Number of summary packets (-N 7) must be a divisor of the number of session "
                                       "packets (-c 60)."),
        (["-L", "0", "x"], "Invalid (-L) value. Positive float expected"),
        (["-L", "abc", "x"], "Invalid (-L) value. Positive float expected"),
        (["-i", "-1", "x"], "Invalid value. Positive float expected"),
        (["-E", "0", "x"], "Invalid (-E) value. Positive float expected"),
        (["-b", "0", "x"], "Invalid (-b) value. Positive float expected"),
        (["-c", "abc", "x"], "Invalid value. Positive integer expected"),
        (["-c", "0", "x"], "Invalid value. Positive integer expected"),
        (["-P", "9000-8000", "x"], "Invalid test port range specified."),
        (["-P", "9000", "x"], "must contain at least 2 ports"),
        (["-e", "nosuch", "x"], 'Invalid -e: Syslog facility "nosuch" unknown'),
        (["-g", "LOUD", "x"], 'Log level "LOUD" invalid'),
        (["-A", "X", "x"], "Invalid"),
        (["-4", "-6", "-d", t.tmp, "127.0.0.1:9"], "-4 and -6 flags cannot be set together"),
        (["--bogus", "x"], "unknown option"),
        ([], "usage: powstream"),
        (["a", "b", "c"], "usage: powstream"),
        (["-d", t.path("missing"), "x"], "-d %s" % t.path("missing")),
    ]
    for args, msg in bad:
        p = run(t, args)
        check_eq(p.returncode, 1, "powstream %s: exit status (%r)" % (" ".join(args), p.err))
        check(msg in p.err, "powstream %s: %r lacks %r", " ".join(args), p.err, msg)
        check_eq(p.out, "", "powstream %s: stdout" % " ".join(args))


CASES = {
    "powstream-from": case_from,
    "powstream-to": case_to,
    "pscheduler": case_pscheduler,
    "powstream-modes": case_modes,
    "powstream-ipv6": case_ipv6,
    "powstream-retry": case_retry,
    "powstream-restart": case_restart,
    "powstream-clock-step": case_clock_step,
    "powstream-options": case_options,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
