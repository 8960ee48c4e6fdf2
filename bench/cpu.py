#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""CPU per packet of both sides of a session, and the precision it buys,
for our build and for another implementation, in one run (issue 13).

    bench/cpu.py --ours BUILD [--other BINDIR] [--quick] [options]

BUILD is a meson build tree of ours (src/owampd/owampd, src/owping/owping,
src/worker/owamp-session, bench/bench-owp); BINDIR a folder holding another
implementation's owampd and owping with perfSONAR's command line (the
reference: perfSONAR owamp 5.2.3's bin folder) or another build tree of ours
(a branch against main; --other-name names it). `bench/run cpu` runs it on
its release tree with BENCH_OTHER (or OWAMP_REFERENCE_BIN) as the other.

For each implementation it starts one owampd on 127.0.0.1 and, for each
rate, runs `owping -t -c RATE*SECONDS -i 1/RATEf -L 1 -T FILE -Q`: owping
and its local sending endpoint are the sender side, owampd and the
receiving endpoint it starts are the receiver side. Everything from
owping's exec to its exit is counted: process starts, dynamic linking, key
derivation, set-up, the session, Stop-Sessions, the fetch of the records
and the writing of both .owp files.

CPU is measured exactly, by process tree, with a cgroup per side and
implementation (cgroup v1 `cpuacct.usage`, in nanoseconds, or cgroup v2
`cpu.stat` `usage_usec`): owping is moved into the sender's cgroup before
it execs and owampd into the receiver's before it execs, so every process
they fork or spawn is charged there, including the reference owampd's
per-connection child and the endpoint it forks, and a process that exited
stays counted. The receiver's figure is the difference over the session
(owampd's start is not in it); it is read once owampd has no descendant
left (they reaped: the session's processes are done). Without a writable
cgroup hierarchy (not root) it falls back to wait4() rusage of owping (its
reaped descendants included) and to the utime+stime+cutime+cstime of
/proc/OWAMPD/stat (clock ticks: 10 ms resolution), and says so.

Precision from the same sessions, by bench-owp on the .owp file owping
wrote (the sender's timestamps and the receiver's, schedule recomputed
from the SID): send lateness median and p99 at 1,000 packets/s, loopback
delay median at 1,000 packets/s, loss at the highest rate. And the total
CPU of a one-packet session (`owping -t -c 1`), set-up to fetch, per side.

Noise: runs are interleaved (each round runs every rate for every
implementation, alternating which goes first), repeated (--runs), and each
figure is the median with its spread; the CPU the rest of the machine used
during the sessions (from /proc/stat, less our cgroups) and the steal time
are printed too.

Lines printed: `cpu_<side>_<rate>pps_<impl> VALUE us/packet MIN..MAX n=N`
and the like, then a table: figure, ours, other, ours/other.
"""

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

RATES = [10, 100, 1000, 10000, 100000]
PRECISION_RATE = 1000
GREETING_SIZE = 64          # RFC 4656 3.1: the Server Greeting
READY_TIMEOUT_SEC = 20
REAP_TIMEOUT_SEC = 20
OWPING_SLACK_SEC = 60       # beyond the session's own length
LOSS_TIMEOUT_SEC = 1        # owping -L: the wait after the last packet
# A key for modes A and E (not used by the default open-mode sessions, but
# both daemons are given one).
KEY_ID, KEY_SECRET = "bench", b"bench-secret"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- CPU accounting --------------------------------------------------------

class Cgroup:
    """One cgroup: charge() is a preexec_fn that moves the child into it;
    usage_ns() its total CPU so far."""

    def __init__(self, path, v2):
        self.path = path
        self.v2 = v2
        os.mkdir(path)

    def charge(self):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write("%d\n" % os.getpid())

    def usage_ns(self):
        if self.v2:
            with open(os.path.join(self.path, "cpu.stat")) as f:
                for line in f:
                    k, v = line.split()
                    if k == "usage_usec":
                        return int(v) * 1000
            raise RuntimeError("no usage_usec in %s/cpu.stat" % self.path)
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read())

    def remove(self):
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)


def cgroup_root():
    """A folder under which we may make cgroups, and whether it is v2."""
    if os.geteuid() != 0:
        return None, False
    v1 = "/sys/fs/cgroup/cpuacct"
    if os.path.exists(os.path.join(v1, "cpuacct.usage")) and os.access(v1, os.W_OK):
        return v1, False
    for v2 in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(v2, "cgroup.controllers")) and os.access(v2, os.W_OK):
            return v2, True
    return None, False


def tree_pids(root):
    """root's descendants (not root)."""
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    kids = [int(x) for x in f.read().split()]
                out += kids
                todo += kids
        except OSError:
            pass
    return out


def proc_ticks_ns(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime..cstime are fields 14..17.
    ticks = sum(int(x) for x in fields[11:15])
    return ticks * 1000000000 // os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine_busy():
    """(busy, steal) jiffies of the whole machine so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return user + nice + system + irq + softirq, steal


# --- the implementations -----------------------------------------------------

def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Impl:
    def __init__(self, name, owampd, owping, env, ours):
        self.name = name
        self.owampd_bin = owampd
        self.owping_bin = owping
        self.env = env
        self.ours = ours
        self.proc = None
        self.cg_send = self.cg_recv = None

    def start(self, top, cgroot):
        self.dir = os.path.join(top, self.name)
        self.conf = os.path.join(self.dir, "conf")
        self.data = os.path.join(self.dir, "data")
        self.var = os.path.join(self.dir, "var")
        for d in (self.conf, self.data, self.var):
            os.makedirs(d)
        pfs = "%s\t%s\n" % (KEY_ID, KEY_SECRET.hex())
        # Ours reads owampd.conf/.pfs, perfSONAR's owamp-server.conf/.pfs;
        # both empty configurations: defaults, open mode allowed.
        for name in ("owampd.pfs", "owamp-server.pfs"):
            with open(os.path.join(self.conf, name), "w") as f:
                f.write(pfs)
            os.chmod(os.path.join(self.conf, name), 0o600)
        for name in ("owampd.conf", "owamp-server.conf"):
            with open(os.path.join(self.conf, name), "w") as f:
                f.write(getattr(self, "conf_text", ""))
        if cgroot:
            v2 = cgroot[1]
            self.cg_send = Cgroup(os.path.join(cgroot[0], "send-" + self.name), v2)
            self.cg_recv = Cgroup(os.path.join(cgroot[0], "recv-" + self.name), v2)
        self.log_path = os.path.join(self.dir, "owampd.log")
        for _ in range(5):
            self.port = free_tcp_port()
            argv = [self.owampd_bin, "-Z", "-c", self.conf, "-d", self.data, "-R", self.var,
                    "-S", "127.0.0.1:%d" % self.port]
            if os.geteuid() == 0:
                argv.append("-f")
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                             env=self.env, cwd=self.dir,
                                             preexec_fn=self.cg_recv.charge if self.cg_recv else None)
            if self.wait_ready():
                return
            self.stop()
        raise RuntimeError("%s owampd did not start:\n%s" % (self.name, self.read_log()[-2000:]))

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_SEC
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(5)
                    got = b""
                    while len(got) < GREETING_SIZE:
                        b = s.recv(GREETING_SIZE - len(got))
                        if not b:
                            break
                        got += b
                if len(got) == GREETING_SIZE:
                    # Closed: its connection's process (if any) goes.
                    return self.wait_reaped()
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def wait_reaped(self):
        """True once owampd has no descendant left (a session's processes
        all exited and were reaped)."""
        deadline = time.monotonic() + REAP_TIMEOUT_SEC
        while time.monotonic() < deadline:
            if not tree_pids(self.proc.pid):
                return True
            time.sleep(0.02)
        return False

    def recv_cpu_ns(self):
        if self.cg_recv:
            return self.cg_recv.usage_ns()
        return proc_ticks_ns(self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            kids = tree_pids(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            for p in kids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        self.proc = None
        for cg in (self.cg_send, self.cg_recv):
            if cg:
                cg.remove()
        self.cg_send = self.cg_recv = None

    def session(self, count, gap, owp, loss_timeout=LOSS_TIMEOUT_SEC):
        """One owping -t session: (sender ns, receiver ns, ok)."""
        argv = [self.owping_bin, "-t", "-c", str(count), "-i", "%.9gf" % gap, "-L", "%g" % loss_timeout,
                "-T", owp, "-Q", "127.0.0.1:%d" % self.port]
        timeout = count * gap + loss_timeout + OWPING_SLACK_SEC
        if not self.wait_reaped():
            raise RuntimeError("%s owampd still has children before a session" % self.name)
        r0 = self.recv_cpu_ns()
        s0 = self.cg_send.usage_ns() if self.cg_send else 0
        with open(os.path.join(self.dir, "owping.log"), "ab") as logf:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=self.env,
                                 cwd=self.dir, preexec_fn=self.cg_send.charge if self.cg_send else None)
            deadline = time.monotonic() + timeout
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    p.kill()
                    pid, status, ru = os.wait4(p.pid, 0)
                    status = -1
                    break
                time.sleep(0.01)
            p.returncode = 0  # reaped by wait4: keep Popen from waiting again
        reaped = self.wait_reaped()
        self.last_rusage_ns = int((ru.ru_utime + ru.ru_stime) * 1e9)
        if self.cg_send:
            send = self.cg_send.usage_ns() - s0
        else:
            send = self.last_rusage_ns
        recv = self.recv_cpu_ns() - r0
        ok = status == 0 and reaped and os.path.exists(owp) and os.path.getsize(owp) > 0
        if not ok:
            log("%s: session of %d packets failed (status %s, reaped %s); owping log:\n%s" % (
                self.name, count, status, reaped, open(os.path.join(self.dir, "owping.log")).read()[-1000:]))
        return send, recv, ok


# --- figures -----------------------------------------------------------------

def bench_owp(tool, owp):
    """bench-owp's figures of one file: {figure: value} with the name part
    dropped (lateness_median, delay_median, loss, sent, ...)."""
    out = subprocess.run([tool, "x", owp], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        log("bench-owp %s: %s" % (owp, out.stderr.strip()))
        return {}
    fig = {}
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) >= 2:
            fig[re.sub(r"_x(_|$)", r"\1", f[0]).rstrip("_")] = float(f[1])
    return fig


def summary(values):
    if not values:
        return None
    return statistics.median(values), min(values), max(values), len(values)


def fmt(v):
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3g" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ours", required=True, help="our meson build tree")
    ap.add_argument("--other", help="another implementation's bin folder (owampd, owping), or another "
                    "build tree of ours")
    ap.add_argument("--other-name", default="reference")
    ap.add_argument("--env", action="append", default=[], metavar="VAR=VALUE",
                    help="in the environment of our programs (repeatable)")
    ap.add_argument("--other-env", action="append", default=[], metavar="VAR=VALUE",
                    help="in the environment of the other's programs")
    ap.add_argument("--both-pacing", action="store_true",
                    help="also run our build with OWAMP_PACING=efficient (sleep-only sender), as "
                    "'ours-efficient'; 'ours' keeps the default, precise")
    ap.add_argument("--rates", default=None, help="packets/s, space or comma separated")
    ap.add_argument("--seconds", type=float, default=None, help="length of each rated session")
    ap.add_argument("--runs", type=int, default=None, help="repetitions (interleaved)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1,000 packets/s for 0.3 s and a one-packet session, one run, "
                    "-L 0.2; implies --check")
    ap.add_argument("--out", help="also write the lines here")
    ap.add_argument("--check", action="store_true",
                    help="fail unless every figure was measured (implied by --quick)")
    a = ap.parse_args()

    loss_timeout = LOSS_TIMEOUT_SEC
    if a.quick:
        rates, secs, runs, loss_timeout = [PRECISION_RATE], 0.3, 1, 0.2
        a.check = True
    else:
        rates, secs, runs = RATES, 5.0, 3
    if a.rates:
        rates = [int(x) for x in re.split(r"[ ,]+", a.rates.strip())]
    if a.seconds:
        secs = a.seconds
    if a.runs:
        runs = a.runs

    build = os.path.abspath(a.ours)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OWAMP_") and k != "LD_PRELOAD"}
    ours_env = dict(env, OWAMP_SESSION_WORKER=os.path.join(build, "src/worker/owamp-session"))
    impls = [Impl("ours", os.path.join(build, "src/owampd/owampd"), os.path.join(build, "src/owping/owping"),
                  ours_env, True)]
    if a.other and os.path.exists(os.path.join(a.other, "src/worker/owamp-session")):
        # Another build tree of ours (a branch against main, say).
        other = os.path.abspath(a.other)
        impls.append(Impl(a.other_name, os.path.join(other, "src/owampd/owampd"),
                          os.path.join(other, "src/owping/owping"),
                          dict(env, OWAMP_SESSION_WORKER=os.path.join(other, "src/worker/owamp-session")), True))
    elif a.other:
        other_env = {k: v for k, v in env.items() if not k.startswith(("ASAN_", "UBSAN_", "LSAN_"))}
        impls.append(Impl(a.other_name, os.path.join(a.other, "owampd"), os.path.join(a.other, "owping"),
                          other_env, False))
    for impl, extra in zip(impls, (a.env, a.other_env)):
        for kv in extra:
            k, _, v = kv.partition("=")
            impl.env[k] = v
    if a.both_pacing:
        impls.append(Impl("ours-efficient", impls[0].owampd_bin, impls[0].owping_bin,
                          dict(impls[0].env, OWAMP_PACING="efficient"), True))
    tool = os.path.join(build, "bench/bench-owp")
    for path in [i.owampd_bin for i in impls] + [i.owping_bin for i in impls] + [tool]:
        if not os.access(path, os.X_OK):
            sys.exit("bench/cpu.py: %s is not there" % path)

    outf = open(a.out, "w") if a.out else None

    def emit(line):
        print(line, flush=True)
        if outf:
            outf.write(line + "\n")

    root, v2 = cgroup_root()
    cg = None
    if root:
        cg = (os.path.join(root, "owamp-bench-%d" % os.getpid()), v2)
        os.mkdir(cg[0])
        how = "cgroup %s %s" % ("v2 cpu.stat" if v2 else "v1 cpuacct.usage", cg[0])
    else:
        how = "wait4() rusage of owping; owampd's /proc stat ticks (10 ms resolution): no writable cgroup"
    emit("# cpu bench: %d run(s), %g s per rate, rates %s; CPU by %s" % (
        runs, secs, " ".join(map(str, rates)), how))
    emit("# load before: %s" % loadavg())

    tmp = tempfile.mkdtemp(prefix="owamp-cpu-bench.")
    res = {}            # (impl, figure) -> [values]
    sent_ok = {}        # (impl, rate) -> runs that sent every packet
    other_busy = []     # CPUs the rest of the machine used during sessions
    steal = []

    def add(impl, figure, value):
        res.setdefault((impl.name, figure), []).append(value)

    hz = os.sysconf("SC_CLK_TCK")
    try:
        for i in impls:
            i.start(tmp, cg)
        for rnd in range(runs):
            order = impls if rnd % 2 == 0 else list(reversed(impls))
            plan = [(r, max(1, int(round(r * secs)))) for r in rates] + [("one", 1)]
            for rate, count in plan:
                for i in order:
                    owp = os.path.join(tmp, "%s-%s-%d.owp" % (i.name, rate, rnd))
                    gap = 0.1 if rate == "one" else 1.0 / rate
                    b0, st0, t0 = *machine_busy(), time.monotonic()
                    send, recv, ok = i.session(count, gap, owp, loss_timeout)
                    b1, st1, t1 = *machine_busy(), time.monotonic()
                    others = (b1 - b0) / hz - (send + recv) / 1e9
                    other_busy.append(max(0.0, others) / (t1 - t0))
                    steal.append((st1 - st0) / hz / (t1 - t0))
                    if not ok:
                        add(i, "failed_sessions", 1)
                        continue
                    fig = bench_owp(tool, owp)
                    sent = fig.get("sent", count) or count
                    if rate != "one" and fig.get("sent") == count:
                        sent_ok[(i.name, rate)] = sent_ok.get((i.name, rate), 0) + 1
                    if rate == "one":
                        add(i, "session_1packet_sender", send / 1e3)
                        add(i, "session_1packet_receiver", recv / 1e3)
                    else:
                        add(i, "cpu_sender_%dpps" % rate, send / 1e3 / sent)
                        add(i, "cpu_receiver_%dpps" % rate, recv / 1e3 / sent)
                        add(i, "loss_%dpps" % rate, fig.get("loss", 100.0))
                        if rate == PRECISION_RATE:
                            for k in ("lateness_median", "lateness_p99", "delay_median"):
                                if k in fig:
                                    add(i, "%s_%dpps" % (k, rate), fig[k])
                    log("%s %s: sender %.3f ms (owping's wait4 rusage %.3f ms), receiver %.3f ms CPU, %d sent" % (
                        i.name, rate, send / 1e6, i.last_rusage_ns / 1e6, recv / 1e6, sent))
                    os.unlink(owp)
                    for top, _, names in os.walk(i.data):
                        for n in names:
                            os.unlink(os.path.join(top, n))
    finally:
        for i in impls:
            i.stop()
        if cg:
            for _ in range(50):
                try:
                    os.rmdir(cg[0])
                    break
                except OSError:
                    time.sleep(0.1)
        subprocess.run(["rm", "-rf", tmp])

    units = {"cpu": "us/packet", "session": "us", "loss": "%", "lateness": "us", "delay": "us",
             "failed": "sessions"}
    figures = []
    for r in rates:
        figures += ["cpu_sender_%dpps" % r, "cpu_receiver_%dpps" % r]
    figures += ["session_1packet_sender", "session_1packet_receiver",
                "lateness_median_%dpps" % PRECISION_RATE, "lateness_p99_%dpps" % PRECISION_RATE,
                "delay_median_%dpps" % PRECISION_RATE]
    figures += ["loss_%dpps" % max(rates)]
    figures += ["failed_sessions"]
    for f in figures:
        for i in impls:
            s = summary(res.get((i.name, f), []))
            if s is None and f == "failed_sessions":
                s = (0, 0, 0, 0)
            if s is None:
                continue
            emit("%s_%s %s %s %s..%s n=%d" % (f, i.name, fmt(s[0]), units[f.split("_")[0]], fmt(s[1]),
                                             fmt(s[2]), s[3]))
    ob = summary(other_busy)
    stl = summary(steal)
    emit("# noise: the rest of the machine used %.2f CPUs during the sessions (median; %.2f..%.2f), "
         "steal %.3f CPUs; load after: %s" % (ob[0], ob[1], ob[2], stl[0],
                                                loadavg()))

    # The table: median, and the ratio ours/other.
    # With --both-pacing, ours-efficient's columns come last, its ratio to the
    # other's (the reference) when there is one.
    head = ["figure", "unit", "ours"]
    base = impls[1].name if len(impls) > 1 and impls[1].name != "ours-efficient" else None
    for i in impls[1:]:
        head += [i.name, ("ours/" if i.name != "ours-efficient" or not base else "ours-efficient/") +
                 (i.name if i.name != "ours-efficient" or not base else base)]
    rows = []
    for f in figures[:-1]:
        ours = summary(res.get(("ours", f), []))
        row = [f, units[f.split("_")[0]], fmt(ours[0]) if ours else "-"]
        for i in impls[1:]:
            me = summary(res.get((i.name, f), []))
            row.append(fmt(me[0]) if me else "-")
            if i.name == "ours-efficient" and base:
                num, den = me, summary(res.get((base, f), []))
            else:
                num, den = ours, me
            row.append("%.3g" % (num[0] / den[0]) if num and den and den[0] else "-")
        rows.append(row)
    widths = [max(len(r[k]) for r in rows + [head]) for k in range(len(head))]
    for n, r in enumerate([head] + rows):
        emit("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if n == 0:
            emit("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    failed = sum(v for (n, f), vs in res.items() if f == "failed_sessions" for v in vs)
    if failed:
        log("bench/cpu.py: %d session(s) failed" % failed)
        return 1
    if a.check:
        # Every figure there for every implementation, from sessions that
        # sent what they were asked to; CPU measured (not 0) on both sides
        # where the counter resolves it.
        bad = []
        for i in impls:
            for f in figures[:-1]:
                if not res.get((i.name, f)):
                    bad.append("%s: no %s" % (i.name, f))
            for r in rates:
                if sent_ok.get((i.name, r)) != runs:
                    bad.append("%s: %d packets/s: %s of %d runs sent every packet" % (
                        i.name, r, sent_ok.get((i.name, r), 0), runs))
            sides = ("sender", "receiver") if cg else ("sender",)
            for f, vs in res.items():
                if f[0] == i.name and f[1].startswith(tuple("cpu_%s_" % x for x in sides)) and min(vs) <= 0:
                    bad.append("%s: %s is %s" % (i.name, f[1], min(vs)))
        for b in bad:
            log("bench/cpu.py --check: " + b)
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
