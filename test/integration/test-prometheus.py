#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
A stream's configuration file and its Prometheus figures, against our owampd
on loopback.

  stream-config      powstream --config (owamp-streams.conf(5)): every kind of
                     bad file refused with its file and line and exit status
                     6; a file with every key runs the stream it describes
  prometheus-file    --prometheus-dir: the textfile collector's file after
                     each result, its figures those of the --json documents
                     (the last sub-session's delays, the sessions' totals),
                     `promtool check metrics` clean, no temporary file left;
                     an unwritable directory refused at start
  prometheus-live    Debian's prometheus-node-exporter (textfile collector on
                     the stream's directory) and prometheus (scraping it),
                     each on a free loopback port with its own temporary
                     config and storage; /api/v1/query returns the figures
                     the live stream produced, as its --json says

The last two need Debian's `prometheus` and `prometheus-node-exporter`
(tools/run-tests installs them: tools/deps.sh deps_prometheus); without them
they skip (a package build's test run, for one).
"""

import importlib.util
import json
import math
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from owtest import Failure, Skip, check, check_eq, free_tcp_port, log, main, read_owp, wait_for  # noqa: E402

# The powstream helpers (Powstream, run) of test-powstream.py.
_spec = importlib.util.spec_from_file_location("test_powstream", os.path.join(HERE, "test-powstream.py"))
tp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tp)

EXIT_CONFIG = 6
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
GAUGES = ("delay_min_seconds", "delay_median_seconds", "delay_p99_seconds", "delay_max_seconds", "jitter_seconds")
COUNTERS = ("packets_sent_total", "packets_lost_total", "packets_duplicated_total", "packets_reordered_total",
            "sessions_completed_total", "sessions_failed_total")
NO_JOURNAL = {"OWAMP_POWSTREAM_JOURNAL": "0"}


def need(*progs):
    missing = [n for n, p in progs if not p]
    if missing:
        raise Skip("not installed: %s (Debian: prometheus, prometheus-node-exporter; tools/run-tests installs "
                   "them)" % ", ".join(missing))


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# --- the text format ------------------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-z0-9_]+)\{stream="((?:[^"\\]|\\.)*)",peer="((?:[^"\\]|\\.)*)",'
                       r'direction="(from|to)"\} (\S+)$')


def parse_prom(text):
    """{metric: value} of one stream's file; HELP and TYPE checked."""
    values, types = {}, {}
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            continue
        m = re.match(r"^# TYPE (\S+) (gauge|counter)$", line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE_RE.match(line)
        check(m, "not a sample line: %r", line)
        check(m.group(1) in types, "%s without its TYPE line", m.group(1))
        values[m.group(1)] = float(m.group(5))
    check(text.endswith("\n"), "the file does not end in a line feed")
    for name, ty in types.items():
        check_eq(ty, "counter" if name.endswith("_total") else "gauge", "type of %s" % name)
    return values


def promtool_check(path):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=open(path, "rb").read(), capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    log("promtool check metrics < %s: status %d, %r", os.path.basename(path), p.returncode, out)
    check_eq((p.returncode, out), (0, ""), "promtool check metrics: status and output")


def expected(docs):
    """The figures the stream's --json documents give: totals of the
    sessions, delays of the last sub-session."""
    sessions = [d for d in docs if d["kind"] == "session"]
    subs = [d for d in docs if d["kind"] == "sub-session"]
    check(sessions and subs, "no sessions (%d) or sub-sessions (%d) in the JSON", len(sessions), len(subs))
    want = {"packets_sent_total": 0, "packets_lost_total": 0, "packets_duplicated_total": 0,
            "packets_reordered_total": 0, "sessions_completed_total": len(sessions), "sessions_failed_total": 0}
    for d in sessions:
        s = d["report"]["summaries"][0]
        want["packets_sent_total"] += s["sent"]
        want["packets_lost_total"] += s["lost"]
        want["packets_duplicated_total"] += s["duplicates"]
        # reorder[0]: the packets that came after a later one (n = 1).
        counts = [c["count"] for c in s["reordering"]["counts"] if c["n"] == 1]
        want["packets_reordered_total"] += counts[0] if counts else 0
    last = subs[-1]["report"]["summaries"][0]
    p99 = [p["delay"] for p in last["percentiles"] if p["percentile"] == 99]
    want.update({
        "delay_min_seconds": last["delay"]["min"],
        "delay_median_seconds": last["delay"]["median"],
        "delay_p99_seconds": p99[0],
        "delay_max_seconds": last["delay"]["max"],
        "jitter_seconds": last["delay"]["jitter"],
    })
    return want


def check_figures(got, want, what):
    for k, v in want.items():
        name = "owamp_stream_" + k
        check(name in got, "%s: no %s", what, name)
        check(math.isclose(got[name], v, rel_tol=1e-9, abs_tol=0), "%s: %s = %r, the JSON says %r", what, name,
              got[name], v)


def settle(d):
    """The session SIGTERM cut runs on at owampd until its loss timeout
    (and slower under the sanitizers): wait for its worker to end."""
    d.quiesce(timeout=40)


def run_stream(t, d, prom, name="mesh-a", extra=(), sessions=3):
    """A stream of 20-packet sessions in sub-sessions of 10, --json, until
    `sessions` sessions are done; stopped; its JSON documents."""
    out = t.path("out-" + name)
    os.makedirs(out)
    ps = tp.Powstream(t, ["-p", "-d", out, "-c", "20", "-N", "10", "-i", "0.05", "-L", "1", "--json",
                          "--name", name, "--prometheus-dir", prom] + list(extra) + [d.addr], name, env=NO_JOURNAL)
    ps.wait_files(".owp", sessions, 60)
    check_eq(ps.stop(), 0, "%s: exit status after SIGTERM" % name)
    docs = [json.loads(l) for l in ps.lines() if l.startswith("{")]
    return ps, docs


# --- cases ------------------------------------------------------------------------

def case_config(t):
    tp.need_programs()
    bad = [
        ("peer = 192.0.2.1\ncolour = blue\n", 2, "unknown key 'colour'"),
        ("# a stream\n\npeer = 192.0.2.1\ninterval = fast\n", 4,
         "interval = 'fast': a positive decimal number of seconds in range expected"),
        ("peer = 192.0.2.1\ninterval = 0\n", 2, "interval = '0': a positive decimal"),
        ("peer = 192.0.2.1\ncount = -5\n", 2, "count = '-5': an unsigned integer in range expected"),
        ("peer = 192.0.2.1\ncount = 99999999999\n", 2, "count = '99999999999'"),
        ("peer = 192.0.2.1\ndirection = sideways\n", 2, "direction = 'sideways': 'from' or 'to' expected"),
        ("peer = 192.0.2.1\nmode = X\n", 2, "mode = 'X': letters of A, E and O expected"),
        ("peer = 192.0.2.1\nport-range = 9000-9000\n", 2, "port-range = '9000-9000'"),
        ("peer = 192.0.2.1\nunix-time = maybe\n", 2, "unix-time = 'maybe': 'yes' or 'no' expected"),
        ("peer = 192.0.2.1\npeer = 192.0.2.2\n", 2, "'peer' given twice (first on line 1)"),
        ("peer = -t\n", 1, "peer = '-t': a non-empty value not starting with '-' expected"),
        ("peer = 192.0.2.1\njust words\n", 2, "'just words': 'key = value' expected"),
        ("peer = 192.0.2.1\nkey-id = \n", 2, "key-id = '': a non-empty value"),
        ("peer = 192.0.2.1\npadding = 70000\n", 2, "padding = '70000'"),
        ("peer = 192.0.2.1\ncount = 1\\\n0\nbogus = 1\n", 4, "unknown key 'bogus'"),
    ]
    for i, (text, line, msg) in enumerate(bad):
        path = write(t.path("bad-%d.conf" % i), text)
        p = tp.run(t, ["--config", path])
        check_eq(p.returncode, EXIT_CONFIG, "exit status for %r" % text)
        lines = p.err.strip().split("\n")
        check_eq(len(lines), 1, "one line for %r: %r" % (text, p.err))
        check(lines[0].startswith("powstream: %s:%d: " % (path, line)) and msg in lines[0],
              "%r: %r, expected %s:%d: ...%s", text, lines[0], path, line, msg)
    for text, msg in (("count = 10\n", "no 'peer' given"),
                      ("peer = 192.0.2.1\npass-phrase-file = x.pfs\n", "'pass-phrase-file' without 'key-id'")):
        path = write(t.path("bad-x.conf"), text)
        p = tp.run(t, ["--config", path])
        check_eq((p.returncode, p.err), (EXIT_CONFIG, "powstream: %s: %s\n" % (path, msg)), "refusal of %r" % text)
    p = tp.run(t, ["--config", t.path("missing.conf")])
    check_eq((p.returncode, p.err), (EXIT_CONFIG, "powstream: --config %s: No such file or directory\n"
                                     % t.path("missing.conf")), "a missing file")
    p = tp.run(t, ["--config", t.tmp])
    check_eq(p.returncode, EXIT_CONFIG, "a directory as the file")
    path = write(t.path("ok.conf"), "peer = 192.0.2.1\n")
    p = tp.run(t, ["--config", path, "192.0.2.2"])
    check_eq((p.returncode, p.err), (EXIT_CONFIG, "powstream: --config %s: the peer comes from the file, not the "
                                     "command line\n" % path), "an operand with --config")
    # A value the file's reader lets through but powstream refuses: its own
    # message, exit status 1 (an option error, as on the command line).
    path = write(t.path("div.conf"), "peer = 192.0.2.1\ncount = 10\nsummary-packets = 3\n")
    p = tp.run(t, ["--config", path])
    check_eq(p.returncode, 1, "-N not a divisor of -c, from the file")
    check("must be a divisor" in p.err, "the divisor refusal: %r", p.err)

    # Every key, a stream that runs: mode A with the key and pass-phrase
    # file next to the config, -t, the port range, the Prometheus file.
    d = t.daemon()
    pfs = d.client_pfs()
    shutil.copy(pfs, t.path("demo.pfs"))
    out, prom = t.path("out"), t.path("prom")
    os.makedirs(out)
    os.makedirs(prom)
    lo = 20000 + os.getpid() % 20000
    conf = write(t.path("mesh-b.conf"), """\
# A stream to our owampd.
peer = {addr}
server = {addr}
direction = to
interval = 0.05
count = 20
summary-packets = 10
padding = 32
loss-timeout = 1
end-delay = 0.5
delay-start = 0
retry-delay = 1
port-range = {lo}-{hi}
bucket-width = 0.0001
mode = A
key-id = demo
pass-phrase-file = demo.pfs
source = 127.0.0.1
family = ipv4
directory = {out}
prometheus-dir = {prom}
unix-time = yes
log-level = INFO
""".format(addr=d.addr, lo=lo, hi=lo + 20, out=out, prom=prom))
    ps = tp.Powstream(t, ["--config", conf, "--name", "mesh-b", "-p", "--json"], "mesh-b", env=NO_JOURNAL)
    ps.wait_files(".owp", 2, 60)
    check_eq(ps.stop(), 0, "the configured stream's exit status")
    docs = [json.loads(l) for l in ps.lines() if l.startswith("{")]
    s = docs[0]["report"]["session"]
    check_eq((docs[0]["stream"], docs[0]["direction"], s["mode"], s["packets"], s["padding"]),
             ("mesh-b", "to", "authenticated", 20, 32), "stream, direction, mode, packets, padding from the file")
    check(lo <= s["receiver"]["port"] <= lo + 20 or lo <= s["sender"]["port"] <= lo + 20,
          "no test port in %d-%d: %r", lo, lo + 20, s)
    check(all(p.startswith(out + "/") for p in ps.paths(".owp")), "files outside the directory of the file")
    sums = ps.paths(".sum")
    check(sums and "UNIX_START_TIME" in open(sums[0]).read(), "unix-time = yes: no UNIX_START_TIME in the .sum")
    check(os.path.exists(os.path.join(prom, "powstream-mesh-b.prom")), "no Prometheus file from prometheus-dir")
    # The command line after the file wins.
    out2 = t.path("out2")
    os.makedirs(out2)
    ps = tp.Powstream(t, ["--config", conf, "--name", "mesh-c", "-p", "-d", out2, "-c", "10", "-N", "0"], "mesh-c",
                      env=NO_JOURNAL)
    ps.wait_files(".owp", 1, 60)
    check_eq(ps.stop(), 0, "mesh-c's exit status")
    check(all(p.startswith(out2 + "/") for p in ps.paths(".owp")), "-d on the command line did not win")
    check_eq(read_owp(ps.paths(".owp")[0]).request.n_packets, 10, "-c 10 on the command line")
    settle(d)


def case_file(t):
    tp.need_programs()
    need(("promtool", PROMTOOL))
    d = t.daemon()
    prom = t.path("prom")
    os.makedirs(prom)
    ps, docs = run_stream(t, d, prom, name='mesh "a"\\b')
    path = os.path.join(prom, "powstream-mesh__a__b.prom")
    text = open(path).read()
    log("%s:\n%s", path, text)
    promtool_check(path)
    got = parse_prom(text)
    check_figures(got, expected(docs), "the file")
    check_eq(sorted(got), sorted("owamp_stream_" + n for n in GAUGES + COUNTERS
                                 + ("last_result_timestamp_seconds",)), "the metrics")
    first = text.split("\n")[2]
    check_eq(first.split("{", 1)[1].split("}")[0], 'stream="mesh \\"a\\"\\\\b",peer="%s",direction="from"' % d.addr,
             "labels, escaped")
    check_eq(stat.S_IMODE(os.stat(path).st_mode), 0o644, "the file's mode (node_exporter reads it)")
    check_eq([n for n in os.listdir(prom) if n != os.path.basename(path)], [], "other files in the directory")
    last_end = [x for x in docs if x["kind"] == "sub-session"][-1]["end"]["unix"]
    check(abs(got["owamp_stream_last_result_timestamp_seconds"] - int(last_end)) <= 1,
          "last_result_timestamp %r vs %r", got["owamp_stream_last_result_timestamp_seconds"], last_end)

    # No session yet: counters at 0 and no gauge, at once.
    empty = t.path("empty")
    os.makedirs(empty)
    port = free_tcp_port(socket.AF_INET)
    ps = tp.Powstream(t, ["-I", "1", "-c", "10", "--name", "idle", "--prometheus-dir", empty, "127.0.0.1:%d" % port],
                      "idle", env=NO_JOURNAL)
    epath = os.path.join(empty, "powstream-idle.prom")
    wait_for(lambda: os.path.exists(epath), 10, "the first file of a stream without results")
    time.sleep(2.5)
    check_eq(ps.stop(), 0, "idle's exit status")
    got = parse_prom(open(epath).read())
    promtool_check(epath)
    check_eq(sorted(got), sorted("owamp_stream_" + n for n in COUNTERS), "metrics before the first result")
    check_eq(got["owamp_stream_sessions_completed_total"], 0, "sessions before the first")

    # An unwritable directory: refused at the start, one message.
    p = tp.run(t, ["-c", "10", "--prometheus-dir", t.path("nowhere"), "127.0.0.1:%d" % port])
    check_eq(p.returncode, 1, "--prometheus-dir that does not exist: exit status")
    check("cannot write the Prometheus file %s/powstream-127.0.0.1_%d.prom: No such file or directory"
          % (t.path("nowhere"), port) in p.err, "the refusal: %r", p.err)
    settle(d)


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")


def query(port, expr):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": expr}))
    doc = json.loads(http_get(url))
    check_eq(doc.get("status"), "success", "query %s" % expr)
    return doc["data"]["result"]


class Server:
    """A program on a loopback port, stopped by its PID."""

    def __init__(self, t, name, argv):
        self.name = name
        self.err_path = t.path(name + ".log")
        log("$ %s &", " ".join(argv))
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=t.tmp)
        t.popens.append(self.proc)

    def alive(self):
        if self.proc.poll() is not None:
            raise Failure("%s exited with %s:\n%s" % (self.name, self.proc.returncode, open(self.err_path).read()))
        return True

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise Failure("%s did not stop within 15 s of SIGTERM" % self.name)


def case_live(t):
    tp.need_programs()
    need(("prometheus", PROMETHEUS), ("prometheus-node-exporter", NODE_EXPORTER), ("promtool", PROMTOOL))
    d = t.daemon()
    prom = t.path("textfile")
    os.makedirs(prom)
    servers = []
    try:
        ne_port = free_tcp_port(socket.AF_INET)
        servers.append(Server(t, "node-exporter", [
            NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % ne_port, "--collector.disable-defaults",
            "--collector.textfile", "--collector.textfile.directory=" + prom]))
        pr_port = free_tcp_port(socket.AF_INET)
        conf = write(t.path("prometheus.yml"), """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: owamp
    static_configs:
      - targets: ['127.0.0.1:{port}']
""".format(port=ne_port))
        p = subprocess.run([PROMTOOL, "check", "config", conf], capture_output=True, timeout=30)
        check_eq(p.returncode, 0, "promtool check config: %r" % p.stdout)
        os.makedirs(t.path("tsdb"))
        servers.append(Server(t, "prometheus", [
            PROMETHEUS, "--config.file=" + conf, "--storage.tsdb.path=" + t.path("tsdb"),
            "--web.listen-address=127.0.0.1:%d" % pr_port]))

        ps, docs = run_stream(t, d, prom, name="mesh-live", sessions=3)
        want = expected(docs)
        promtool_check(os.path.join(prom, "powstream-mesh-live.prom"))

        # node_exporter serves the file's figures.
        def exporter_has():
            servers[0].alive()
            try:
                return "owamp_stream_sessions_completed_total" in http_get("http://127.0.0.1:%d/metrics" % ne_port)
            except OSError:
                return False
        wait_for(exporter_has, 20, "node_exporter to serve the stream's figures", interval=0.2)

        # Prometheus has scraped them: the sessions counter at its value.
        sel = '{stream="mesh-live",direction="from",peer="%s",job="owamp"}' % d.addr

        def scraped():
            servers[1].alive()
            try:
                r = query(pr_port, "owamp_stream_sessions_completed_total" + sel)
            except OSError:
                return False
            return bool(r) and float(r[0]["value"][1]) == want["sessions_completed_total"]
        wait_for(scraped, 40, "prometheus to scrape the stream's figures", interval=0.5)
        got = {}
        for k in want:
            r = query(pr_port, "owamp_stream_%s%s" % (k, sel))
            check_eq(len(r), 1, "series of owamp_stream_%s" % k)
            got["owamp_stream_" + k] = float(r[0]["value"][1])
        log("prometheus /api/v1/query: %s", json.dumps(got, sort_keys=True))
        log("the stream's --json:      %s", json.dumps(want, sort_keys=True))
        check_figures(got, want, "prometheus")
        settle(d)
    finally:
        for s in reversed(servers):
            s.stop()


CASES = {
    "stream-config": case_config,
    "prometheus-file": case_file,
    "prometheus-live": case_live,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
