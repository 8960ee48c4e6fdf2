#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""N powstream streams against one local owampd: the cost per stream,
ours against another implementation (issue 14, item 5).

    bench/streams.py --ours BUILD [--other BINDIR] -n 10 -n 100 [--seconds 120]
    bench/streams.py --ours BUILD --only ours -n 500
    bench/streams.py --ours BUILD --quick          # N=2 for 20 s, smoke check

For each N and each implementation (interleaved: ours N, other N, ours
next N, ...; --rounds repeats the whole plan, alternating which goes
first), one owampd is started on 127.0.0.1 on a free port in its own
temporary folders (`-Z`, foreground, empty configuration: open mode), then
N powstreams, each with its own -d folder, as pScheduler runs them:

    powstream -p -d DIR -c COUNT -i 0.1 [-t] -S 127.0.0.1 127.0.0.1:PORT

(10 packets/s, COUNT = 10 x --session-seconds, default 300: 30 s
sessions; --loss-timeout adds -L, --direction to adds -t). After --seconds every powstream gets SIGTERM by PID (SIGKILL
5 s later), then owampd (ours with `maxcontrolsessionsperaddr 0`: every
stream comes from 127.0.0.1, beyond its default of 64 per source); anything left in either cgroup is killed by PID.

Figures per run, per stream where it says so:

- client CPU: cgroup v1 `cpuacct.usage` (or v2 `cpu.stat`) of a cgroup
  the powstreams are moved into before they exec, so every process they
  fork or spawn (our session workers, the reference's forked children) is
  charged, exited ones included; from the first exec to the SIGTERM, in %
  of one core, divided by N; and the share of it the powstream
  processes used themselves (their utime + stime at the stop, clock
  ticks), the rest being their session endpoints.
- client memory: the sum of `Pss:` of /proc/PID/smaps_rollup of every
  process in that cgroup, sampled every --sample seconds once the first
  sessions run, the median of the samples, divided by N; with the median
  number of processes.
- server CPU and memory: the same for owampd's cgroup (owampd and all its
  children), per stream.
- sessions: completed = `.owp` files named START_END.owp whose scheduled
  end is at least --grace seconds before the SIGTERM; missed = the
  sessions an unbroken chain would have had in their place: a first start
  later than --startup-allowance after the launch (both powstreams wait
  ~10 s), holes between a file's end and the next one's start, and a
  chain that stopped more than 1.2 sessions before the cut-off; expected =
  completed + missed, summed over streams.
- packets: sent and lost from `owstats -M` (ours) on each completed file.
- noise: the CPU the rest of the machine used during the run (/proc/stat
  less our two cgroups) and the steal time.

Lines printed: `streams_N_FIGURE_IMPL VALUE UNIT`, then a table per N.
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402  (bench/cpu.py: cgroups, owampd start/stop, noise)

NTP_UNIX_OFFSET = 2208988800
STOP_WAIT_SEC = 5
OWP_NAME = re.compile(r"^(\d+)_(\d+)\.owp$")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ntp_to_unix(v):
    return v / 2.0 ** 32 - NTP_UNIX_OFFSET


def cg_pids(cg):
    try:
        with open(os.path.join(cg.path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def pss_kib(pids):
    total = 0
    n = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        n += 1
                        break
        except OSError:
            pass
    return total, n


def kill_pids(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except OSError:
            pass


def owstats_counts(owstats, path):
    """(sent, lost) of one session file, from owstats -M."""
    out = subprocess.run([owstats, "-M", path], capture_output=True, text=True, timeout=60)
    fig = {}
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) >= 2:
            fig[f[0]] = f[1]
    try:
        return int(fig["SENT"]), int(fig["LOST"])
    except (KeyError, ValueError):
        log("owstats -M %s: no SENT/LOST (%s)" % (path, out.stderr.strip()[:200]))
        return None


def common_lines(paths, top=6):
    """The most frequent lines of some logs, numbers and paths masked:
    what went wrong, in a few lines."""
    count = {}
    for p in paths:
        try:
            with open(p, "rb") as f:
                for line in f.read().decode("utf-8", "replace").splitlines():
                    k = re.sub(r"\d+", "#", re.sub(r"/\S+", "PATH", line.strip()))[:160]
                    if k:
                        count[k] = count.get(k, 0) + 1
        except OSError:
            pass
    return sorted(count.items(), key=lambda kv: -kv[1])[:top]


def missed_sessions(done, launch, cutoff, a):
    """Sessions of one stream that should have ended by the cut-off and
    left no file: a late first start, holes in the chain (a session starts
    where the one before ended), and a chain that stopped early. Session
    lengths vary (-i is the mean of exponential gaps: sd ~ sqrt(COUNT) x
    0.1 s), hence the 1.2 slack at the tail."""
    S = a.session_seconds
    first = done[0][0] if done else launch + a.startup_allowance
    missed = int(max(0.0, first - launch - a.startup_allowance) // S)
    for prev, cur in zip(done, done[1:]):
        gap = cur[0] - prev[1]
        if gap > 1.0:
            missed += max(1, int(round(gap / S)))
    last = done[-1][1] if done else first
    missed += int(max(0.0, cutoff - last) // (1.2 * S))
    return missed


class Run:
    """One implementation, N streams, one owampd."""

    def __init__(self, impl, powstream, n, a, top, cgroot, owstats):
        self.impl, self.powstream, self.n, self.a = impl, powstream, n, a
        self.top, self.cgroot, self.owstats = top, cgroot, owstats
        self.procs = []

    def argv(self, d):
        count = int(round(self.a.session_seconds * 10))
        v = [self.powstream, "-p", "-d", d, "-c", str(count), "-i", "0.1"]
        if self.a.loss_timeout is not None:
            v += ["-L", "%g" % self.a.loss_timeout]
        if self.a.direction == "to":
            v.append("-t")
        return v + ["-S", "127.0.0.1", "127.0.0.1:%d" % self.impl.port]

    def stop_clients(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_SEC
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        cg = self.impl.cg_send
        if cg:
            # What the streams forked and left behind, by PID.
            for _ in range(20):
                left = cg_pids(cg)
                if not left:
                    break
                kill_pids(left, signal.SIGKILL)
                time.sleep(0.1)

    def stop_server(self):
        cg = self.impl.cg_recv
        pid = self.impl.proc.pid if self.impl.proc else None
        if pid:
            kids = cpu.tree_pids(pid)
            self.impl.proc.send_signal(signal.SIGTERM)
            try:
                self.impl.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.impl.proc.kill()
                self.impl.proc.wait(5)
            kill_pids(kids, signal.SIGKILL)
        if cg:
            for _ in range(20):
                left = cg_pids(cg)
                if not left:
                    break
                kill_pids(left, signal.SIGKILL)
                time.sleep(0.1)
        self.impl.proc = None
        for c in (self.impl.cg_send, self.impl.cg_recv):
            if c:
                c.remove()
        self.impl.cg_send = self.impl.cg_recv = None

    def go(self):
        a = self.a
        self.impl.start(self.top, self.cgroot)
        cs, cr = self.impl.cg_send, self.impl.cg_recv
        dirs = []
        hz = os.sysconf("SC_CLK_TCK")
        samples, ssamples = [], []
        try:
            b0, st0 = cpu.machine_busy()
            c0 = cs.usage_ns() if cs else 0
            r0 = cr.usage_ns() if cr else 0
            t0 = time.monotonic()
            launch = time.time()
            for k in range(self.n):
                d = os.path.join(self.impl.dir, "s%d" % k)
                os.makedirs(d)
                dirs.append(d)
                with open(os.path.join(d, "stdout"), "wb") as out, open(os.path.join(d, "stderr"), "wb") as err:
                    self.procs.append(subprocess.Popen(
                        self.argv(d), stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=d,
                        env=self.impl.env, preexec_fn=cs.charge if cs else None))
            # Memory samples once the first sessions run (a few seconds in).
            next_sample = t0 + min(a.sample, a.seconds / 4)
            end = t0 + a.seconds
            while True:
                now = time.monotonic()
                if now >= end:
                    break
                if now >= next_sample:
                    if cs:
                        samples.append(pss_kib(cg_pids(cs)))
                        ssamples.append(pss_kib(cg_pids(cr)))
                    next_sample += a.sample
                dead = [p for p in self.procs if p.poll() is not None]
                if dead and not getattr(self, "warned", False):
                    log("%s N=%d: %d powstream(s) exited early (status %s)" % (
                        self.impl.name, self.n, len(dead), dead[0].returncode))
                    self.warned = True
                time.sleep(min(0.5, max(0.01, min(end, next_sample) - time.monotonic())))
            stop_at = time.time()
            own = 0
            for p in self.procs:
                try:
                    with open("/proc/%d/stat" % p.pid) as f:
                        own += sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
                except OSError:
                    pass
            c1 = cs.usage_ns() if cs else 0
            r1 = cr.usage_ns() if cr else 0
            t1 = time.monotonic()
            b1, st1 = cpu.machine_busy()
        finally:
            self.stop_clients()
            self.stop_server()
        el = t1 - t0
        fig = {}
        fig["client_cpu"] = 100.0 * (c1 - c0) / 1e9 / el / self.n
        # The powstream processes' own share (utime + stime, clock ticks),
        # the rest is what they forked or spawned (session endpoints).
        fig["client_cpu_powstream_share"] = (100.0 * own / hz * 1e9 / (c1 - c0)) if c1 > c0 else 0.0
        fig["server_cpu"] = 100.0 * (r1 - r0) / 1e9 / el / self.n
        if samples:
            fig["client_pss"] = statistics.median(s[0] for s in samples) / self.n
            fig["client_processes"] = statistics.median(s[1] for s in samples)
            fig["server_pss"] = statistics.median(s[0] for s in ssamples) / self.n
            fig["server_processes"] = statistics.median(s[1] for s in ssamples)
            fig["pss_samples"] = len(samples)
        others = (b1 - b0) / hz - ((c1 - c0) + (r1 - r0)) / 1e9
        fig["noise_other_cpus"] = max(0.0, others) / el
        fig["noise_steal_cpus"] = (st1 - st0) / hz / el
        # Sessions and packets.
        cutoff = stop_at - a.grace
        expected = completed = sent = lost = printed = unread = 0
        for d in dirs:
            files = []
            for name in os.listdir(d):
                m = OWP_NAME.match(name)
                if m:
                    files.append((ntp_to_unix(int(m.group(1))), ntp_to_unix(int(m.group(2))), name))
            files.sort()
            done = [f for f in files if f[1] <= cutoff]
            exp = len(done) + missed_sessions(done, launch, cutoff, a)
            expected += exp
            completed += len(done)
            for f in done:
                c = owstats_counts(self.owstats, os.path.join(d, f[2]))
                if c is None:
                    unread += 1
                else:
                    sent += c[0]
                    lost += c[1]
            with open(os.path.join(d, "stdout"), "rb") as f:
                printed += sum(1 for line in f if line.strip().endswith(b".owp"))
        self.diag = common_lines([os.path.join(d, "stderr") for d in dirs]), \
            common_lines([self.impl.log_path])
        fig["sessions_expected"] = expected
        fig["sessions_completed"] = completed
        fig["sessions_missed"] = expected - completed
        fig["paths_printed"] = printed
        fig["packets_sent"] = sent
        fig["packets_lost"] = lost
        fig["files_unreadable"] = unread
        fig["seconds"] = el
        return fig


UNITS = {"client_cpu": "%_of_a_core/stream", "client_cpu_powstream_share": "%_of_client_cpu", "server_cpu": "%_of_a_core/stream",
         "client_pss": "KiB/stream", "server_pss": "KiB/stream", "client_processes": "processes",
         "server_processes": "processes", "pss_samples": "samples", "noise_other_cpus": "CPUs",
         "noise_steal_cpus": "CPUs", "sessions_expected": "sessions", "sessions_completed": "sessions",
         "sessions_missed": "sessions", "paths_printed": "paths", "packets_sent": "packets",
         "packets_lost": "packets", "files_unreadable": "files", "seconds": "s"}
TABLE = ["client_cpu", "client_cpu_powstream_share", "client_pss", "client_processes", "server_cpu", "server_pss", "server_processes",
         "sessions_expected", "sessions_missed", "packets_sent", "packets_lost"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ours", required=True, help="our meson build tree")
    ap.add_argument("--other", default=os.environ.get("OWAMP_REFERENCE_BIN"),
                    help="another implementation's bin folder (owampd, powstream); default "
                    "$OWAMP_REFERENCE_BIN")
    ap.add_argument("--other-name", default="reference")
    ap.add_argument("--ours-conf", help="our owampd.conf (\\n between lines; default: "
                    "maxcontrolsessionsperaddr 0, maxtestsessions max(1024, 4 N))")
    ap.add_argument("--only", choices=("ours", "other"), help="run one implementation only")
    ap.add_argument("-n", "--streams", type=int, action="append", help="N (repeatable; default 10)")
    ap.add_argument("--seconds", type=float, default=120.0, help="length of each run (default 120)")
    ap.add_argument("--session-seconds", type=float, default=30.0,
                    help="length of each session: -c 10 x this (default 30)")
    ap.add_argument("--direction", choices=("from", "to"), default="from",
                    help="from: powstream's default (the server sends); to: -t")
    ap.add_argument("--loss-timeout", type=float, help="-L (default: powstream's own, 10 s)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between PSS samples")
    ap.add_argument("--grace", type=float, default=15.0,
                    help="a session counts when it was due to end this long before the stop")
    ap.add_argument("--startup-allowance", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="N=2 for 20 s, 5 s sessions, -L 1; fails unless "
                    "every expected session completed")
    ap.add_argument("--out", help="also write the lines here")
    a = ap.parse_args()
    if a.quick:
        a.streams, a.seconds, a.session_seconds, a.sample, a.grace, a.startup_allowance = \
            [2], 20.0, 5.0, 4.0, 3.0, 12.0
        a.loss_timeout = 1.0 if a.loss_timeout is None else a.loss_timeout
    if not a.streams:
        a.streams = [10]
    if not (0 < a.seconds <= 3600 and 1 <= a.session_seconds <= 3600):
        sys.exit("bench/streams.py: --seconds up to 3600, --session-seconds 1..3600")
    if any(n < 1 or n > 2000 for n in a.streams):
        sys.exit("bench/streams.py: N from 1 to 2000")

    build = os.path.abspath(a.ours)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OWAMP_") and k != "LD_PRELOAD"}
    owstats = os.path.join(build, "src/owtools/owstats")
    impls = []
    if a.only != "other":
        impls.append((cpu.Impl("ours", os.path.join(build, "src/owampd/owampd"), None,
                               dict(env, OWAMP_SESSION_WORKER=os.path.join(build, "src/worker/owamp-session")),
                               True), os.path.join(build, "src/powstream/powstream")))
    if a.other and a.only != "ours":
        oenv = {k: v for k, v in env.items() if not k.startswith(("ASAN_", "UBSAN_", "LSAN_"))}
        impls.append((cpu.Impl(a.other_name, os.path.join(a.other, "owampd"), None, oenv, False),
                      os.path.join(a.other, "powstream")))
    if a.only != "other":
        # Every stream comes from 127.0.0.1: our owampd's per-source bound
        # (64 control connections, owampd.conf(5); the reference has none)
        # off, and room for two sessions per stream.
        impls[0][0].conf_text = "maxcontrolsessionsperaddr 0\nmaxtestsessions %d\n" % max(
            1024, 4 * max(a.streams)) if a.ours_conf is None else a.ours_conf.replace("\\n", "\n")
    for path in [i.owampd_bin for i, _ in impls] + [p for _, p in impls] + [owstats]:
        if not os.access(path, os.X_OK):
            sys.exit("bench/streams.py: %s is not there" % path)

    outf = open(a.out, "a") if a.out else None

    def emit(line):
        print(line, flush=True)
        if outf:
            outf.write(line + "\n")
            outf.flush()

    root, v2 = cpu.cgroup_root()
    if not root:
        sys.exit("bench/streams.py: needs a writable cgroup hierarchy (root): CPU and PSS are per cgroup")
    cg = (os.path.join(root, "owamp-streams-%d" % os.getpid()), v2)
    os.mkdir(cg[0])
    emit("# streams bench: N %s, %g s per run, %g s sessions (-c %d -i 0.1), direction %s, %d round(s); "
         "CPU by %s %s" % (" ".join(map(str, a.streams)), a.seconds, a.session_seconds,
                           int(round(a.session_seconds * 10)), a.direction, a.rounds,
                           "cgroup v2 cpu.stat" if v2 else "cgroup v1 cpuacct.usage", cg[0]))
    emit("# load before: %s; %d CPUs" % (cpu.loadavg(), os.cpu_count()))
    if a.only != "other":
        emit("# our owampd.conf: %s" % impls[0][0].conf_text.strip().replace("\n", "; "))

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    tmp = tempfile.mkdtemp(prefix="owamp-streams-bench.")
    res = {}
    bad = 0
    try:
        for rnd in range(a.rounds):
            for n in a.streams:
                order = impls if rnd % 2 == 0 else list(reversed(impls))
                for impl, pow_bin in order:
                    top = os.path.join(tmp, "r%d-n%d" % (rnd, n))
                    os.makedirs(top, exist_ok=True)
                    log("%s N=%d round %d: %g s, load %s" % (impl.name, n, rnd, a.seconds, cpu.loadavg()))
                    run = Run(impl, pow_bin, n, a, top, cg, owstats)
                    fig = run.go()
                    for k, v in fig.items():
                        res.setdefault((n, impl.name, k), []).append(v)
                        emit("streams_%d_%s_%s %s %s round=%d" % (n, k, impl.name, cpu.fmt(v), UNITS[k], rnd))
                    for what, lines in zip(("powstream stderr", "owampd log"), run.diag):
                        for line, c in lines:
                            emit("# %s N=%d %s: %dx %s" % (impl.name, n, what, c, line))
                    if fig["sessions_missed"] or fig["packets_lost"] or fig["files_unreadable"] \
                            or not fig["sessions_expected"]:
                        bad += 1
                    subprocess.run(["rm", "-rf", top])
    except KeyboardInterrupt:
        log("bench/streams.py: interrupted; every process stopped")
        return 130
    finally:
        for _ in range(50):
            try:
                os.rmdir(cg[0])
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run(["rm", "-rf", tmp])

    emit("# load after: %s" % cpu.loadavg())
    names = [i.name for i, _ in impls]
    for n in a.streams:
        noise = [v for (nn, _, k), vs in res.items() if nn == n and k == "noise_other_cpus" for v in vs]
        steal = [v for (nn, _, k), vs in res.items() if nn == n and k == "noise_steal_cpus" for v in vs]
        emit("# noise N=%d: the rest of the machine used %s CPUs (%s..%s over the runs), steal %s CPUs" % (
            n, cpu.fmt(statistics.median(noise)), cpu.fmt(min(noise)), cpu.fmt(max(noise)),
            cpu.fmt(statistics.median(steal))))
        head = ["N=%d" % n, "unit"] + names + (["ours/" + names[1]] if len(names) > 1 else [])
        rows = []
        for k in TABLE:
            row = [k, UNITS[k]]
            vals = []
            for nm in names:
                vs = res.get((n, nm, k))
                v = statistics.median(vs) if vs else None
                vals.append(v)
                row.append(cpu.fmt(v))
            if len(names) > 1:
                row.append("%.3g" % (vals[0] / vals[1]) if vals[0] is not None and vals[1] else "-")
            rows.append(row)
        widths = [max(len(r[c]) for r in rows + [head]) for c in range(len(head))]
        for i, r in enumerate([head] + rows):
            emit("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
            if i == 0:
                emit("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    if a.quick and bad:
        log("bench/streams.py --quick: a run missed sessions, lost packets or completed none")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
