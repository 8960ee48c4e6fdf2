#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
The session storm of issue 11, items 1 and 2, against a running owampd:
open-mode connections each ask for many receive sessions (Request-Session
pipelined in batches), then every connection sends Start-Sessions at once,
while another client connects again and again and times its greeting.

Prints one line per figure (bench/README.md's format, one run):

    storm_accepted N sessions            Accept 0 answers, all connections
    storm_refused_<code> N sessions      answers by Accept code (5: resource)
    storm_peak_fds N                     owampd's descriptors, highest seen
    storm_peak_workers N                 owampd's child processes, highest seen
    storm_peak_files N                   .owp files in the data directory, highest seen
    storm_start_ack_max S s              Start-Sessions to Start-Ack, slowest connection
    storm_greeting_max S s               connect to greeting of the other client, slowest
    storm_greeting_median S s
    storm_greeting_failed N              other-client connections that got no greeting
    storm_files_left N                   .owp files once the storm's connections closed

Usage: session-storm.py --pid PID --port PORT --datadir DIR [--conns 3]
       [--sessions 4096] [--start-delay 60]
bench/run storm starts owampd for it (twice: with the default cap and with
none); it can also be pointed at any owampd on loopback.
"""

import argparse
import os
import socket
import statistics
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "integration"))

from owtest import make_request, ntp_from_seconds, ntp_now, recv_exact  # noqa: E402

BATCH = 128  # Request-Sessions written before their answers are read


def count_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def count_children(pid):
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    n += 1
        except (OSError, ValueError, IndexError):
            pass
    return n


def count_files(datadir):
    n = 0
    for _top, _dirs, names in os.walk(datadir):
        n += sum(1 for x in names if x.endswith(".owp"))
    return n


class Sampler(threading.Thread):
    """owampd's descriptors, children and data files, every 50 ms."""

    def __init__(self, pid, datadir):
        super().__init__(daemon=True)
        self.pid, self.datadir = pid, datadir
        self.fds = self.workers = self.files = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.fds = max(self.fds, count_fds(self.pid))
            self.workers = max(self.workers, count_children(self.pid))
            self.files = max(self.files, count_files(self.datadir))
            self.stop.wait(0.05)


class Prober(threading.Thread):
    """Another client: connects, times the greeting, closes; again."""

    def __init__(self, host, port, timeout=30):
        super().__init__(daemon=True)
        self.host, self.port, self.timeout = host, port, timeout
        self.latencies = []
        self.failed = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                with socket.create_connection((self.host, self.port), timeout=self.timeout) as s:
                    g = recv_exact(s, 64, self.timeout)
                ok = len(g) == 64
            except Exception:
                ok = False
            if ok:
                self.latencies.append(time.monotonic() - t0)
            else:
                self.failed += 1
            self.stop.wait(0.1)


def open_conn(host, port):
    s = socket.create_connection((host, port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    g = recv_exact(s, 64, 60)
    if len(g) != 64 or not struct.unpack(">I", g[12:16])[0] & 1:
        raise SystemExit("no open-mode greeting")
    s.sendall(struct.pack(">I", 1) + b"\0" * (80 + 64 + 16))
    ss = recv_exact(s, 48, 60)
    if len(ss) != 48 or ss[15] != 0:
        raise SystemExit("Server-Start refused")
    return s


def request_many(s, n, start_delay, answers):
    local = s.getsockname()[0]
    start = ntp_now() + ntp_from_seconds(start_delay)
    req = make_request(0, 1, (local, 40000), ("127.0.0.1", 0), n_packets=10, slots=((1, 0.1),),
                       start=start, timeout=1.0)
    left = n
    while left > 0:
        k = min(BATCH, left)
        s.sendall(req * k)
        for _ in range(k):
            a = recv_exact(s, 48, 120)
            if len(a) != 48:
                raise SystemExit("connection closed during the requests")
            answers[a[0]] = answers.get(a[0], 0) + 1
        left -= k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--datadir", required=True)
    ap.add_argument("--conns", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=4096)
    ap.add_argument("--start-delay", type=float, default=60.0)
    ap.add_argument("--prefix", default="storm")
    a = ap.parse_args()

    sampler = Sampler(a.pid, a.datadir)
    sampler.start()
    conns, answers = [], {}
    for _ in range(a.conns):
        s = open_conn(a.host, a.port)
        conns.append(s)
        request_many(s, a.sessions, a.start_delay, answers)

    prober = Prober(a.host, a.port)
    prober.start()
    time.sleep(0.3)  # a few greetings before
    acks = [None] * len(conns)
    t0 = time.monotonic()
    for s in conns:
        s.sendall(struct.pack(">B15x", 2) + b"\0" * 16)
    for i, s in enumerate(conns):
        r = recv_exact(s, 32, 120)
        acks[i] = (time.monotonic() - t0, r[0] if len(r) == 32 else None)
    time.sleep(0.3)
    prober.stop.set()
    prober.join(35)

    for s in conns:
        s.close()
    # The abandoned sessions settle: workers killed, files removed or kept.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and count_children(a.pid) > 0:
        time.sleep(0.1)
    time.sleep(0.5)
    sampler.stop.set()
    sampler.join(5)

    p = a.prefix
    print("%s_accepted %d sessions" % (p, answers.get(0, 0)))
    for code in sorted(answers):
        if code != 0:
            print("%s_refused_%d %d sessions" % (p, code, answers[code]))
    print("%s_start_ack_accept %s" % (p, ",".join(str(x[1]) for x in acks)))
    print("%s_peak_fds %d" % (p, sampler.fds))
    print("%s_peak_workers %d" % (p, sampler.workers))
    print("%s_peak_files %d" % (p, sampler.files))
    print("%s_start_ack_max %.3f s" % (p, max(x[0] for x in acks)))
    lat = prober.latencies or [float("nan")]
    print("%s_greeting_max %.3f s" % (p, max(lat)))
    print("%s_greeting_median %.3f s" % (p, statistics.median(lat)))
    print("%s_greeting_failed %d" % (p, prober.failed))
    print("%s_files_left %d" % (p, count_files(a.datadir)))
    print("%s_fds_after %d" % (p, count_fds(a.pid)))


if __name__ == "__main__":
    main()
