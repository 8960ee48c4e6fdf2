# SPDX-License-Identifier: Apache-2.0
"""
A hostile client load against one owampd on loopback: many concurrent
OWAMP-Control connections that never become sessions, from many loopback
addresses (127.0.0.2, 127.0.0.3, ...), of four kinds:

  idle       connects, reads the greeting, then says nothing
  slowloris  sends its Set-Up-Response one octet at a time, every
             `slow_interval` seconds
  garbage    answers the greeting with 164 random octets (a Set-Up-Response
             with no valid mode: the server closes) and connects again
  half       sends the first 100 octets of a Set-Up-Response, then nothing

A connection the server closes (set-up deadline, per-address cap, protocol
error) is opened again after `reconnect_delay`, so the load keeps up for
the whole run. Used by test-hostile.py (the `storm` case, 2,000
connections) and bench/storm (10,000). Standard library only; one thread,
epoll through selectors; every loop bounded in time.
"""

import errno
import heapq
import itertools
import os
import random
import resource
import selectors
import socket
import time

KINDS = ("idle", "slowloris", "garbage", "half")

GREETING_SIZE = 64       # PROTOCOL.md 3.1
SETUP_RESPONSE_SIZE = 164  # PROTOCOL.md 3.2
HALF_SETUP_SIZE = 100


def raise_nofile(want):
    """Soft RLIMIT_NOFILE up to want (at most the hard limit); returns the
    new soft limit. Children (owampd) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(max(soft, want), hard) if hard != resource.RLIM_INFINITY else max(soft, want)
    if new != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def loopback_sources(n, first=2):
    """n addresses 127.0.0.FIRST.. (wrapping into 127.0.1.x past .254)."""
    out = []
    i = first
    while len(out) < n:
        a, b = divmod(i, 254)
        out.append("127.0.%d.%d" % (a, b + 1))
        i += 1
    return out


class _Conn:
    __slots__ = ("sock", "kind", "source", "state", "greeted", "sent", "next_at", "opened_at", "payload")


class Storm:
    """plan: [(source address, kind, count)]. Call run_for() repeatedly (or
    once); close() ends every connection."""

    def __init__(self, host, port, plan, slow_interval=0.5, reconnect_delay=0.2, seed=1):
        self.host, self.port = host, port
        self.plan = plan
        self.slow_interval = slow_interval
        self.reconnect_delay = reconnect_delay
        self.rng = random.Random(seed)
        self.sel = selectors.DefaultSelector()
        self.conns = set()
        self.pending = []  # heap of (time, seq, source, kind): to (re)open
        self.slow = []     # heap of (time, seq, conn): slowloris octets due
        self.seq = itertools.count()
        self.stats = {"opened": 0, "greeted": 0, "closed_by_server": 0, "refused_at_once": 0,
                      "connect_errors": 0, "peak_open": 0, "peak_greeted": 0}
        now = time.monotonic()
        for source, kind, count in plan:
            assert kind in KINDS, kind
            for _ in range(count):
                self._reopen(now, source, kind)

    def _reopen(self, when, source, kind):
        heapq.heappush(self.pending, (when, next(self.seq), source, kind))

    def _open(self, source, kind, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        # Closing with RST keeps the client side free of TIME_WAIT (and
        # its ports): thousands of reconnects from a few addresses.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        try:
            s.bind((source, 0))
            r = s.connect_ex((self.host, self.port))
        except OSError:
            s.close()
            self.stats["connect_errors"] += 1
            self._reopen(now + self.reconnect_delay, source, kind)
            return
        if r not in (0, errno.EINPROGRESS):
            s.close()
            self.stats["connect_errors"] += 1
            self._reopen(now + self.reconnect_delay, source, kind)
            return
        c = _Conn()
        c.sock, c.kind, c.source = s, kind, source
        c.greeted, c.sent, c.next_at, c.opened_at = 0, 0, None, now
        c.payload = b""
        if kind == "garbage":
            c.payload = bytes(self.rng.getrandbits(8) for _ in range(SETUP_RESPONSE_SIZE))
            # Mode 0x08..: never one the server offers.
            c.payload = b"\0\0\0\x08" + c.payload[4:]
        elif kind in ("slowloris", "half"):
            # Mode 1 (open) and a zero key id, token and IV: what open
            # mode sends, so the octets are valid, only late.
            c.payload = b"\0\0\0\1" + b"\0" * (SETUP_RESPONSE_SIZE - 4)
            if kind == "half":
                c.payload = c.payload[:HALF_SETUP_SIZE]
        self.sel.register(s, selectors.EVENT_READ, c)
        self.conns.add(c)
        self.stats["opened"] += 1

    def _drop(self, c, now, by_server):
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        self.conns.discard(c)
        if by_server:
            self.stats["closed_by_server"] += 1
            if c.greeted == 0:
                self.stats["refused_at_once"] += 1
        self._reopen(now + self.reconnect_delay, c.source, c.kind)

    def _readable(self, c, now):
        try:
            data = c.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c, now, True)
            return
        was = c.greeted
        c.greeted += len(data)
        if was < GREETING_SIZE <= c.greeted:
            self.stats["greeted"] += 1
            if c.kind in ("garbage", "half"):
                self._send(c, c.payload, now)
            elif c.kind == "slowloris":
                c.next_at = now
                heapq.heappush(self.slow, (now, next(self.seq), c))

    def _send(self, c, data, now):
        try:
            c.sock.send(data)
            c.sent += len(data)
        except OSError:
            self._drop(c, now, True)

    def open_count(self):
        return len(self.conns)

    def greeted_count(self):
        return sum(1 for c in self.conns if c.greeted >= GREETING_SIZE)

    def run_for(self, seconds, max_opens_per_step=256):
        """Drive the load for `seconds`."""
        end = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            if now >= end:
                break
            # (Re)open what is due, a bounded number per step.
            n = 0
            while self.pending and self.pending[0][0] <= now and n < max_opens_per_step:
                _, _, source, kind = heapq.heappop(self.pending)
                self._open(source, kind, now)
                n += 1
            # Slowloris octets that are due.
            while self.slow and self.slow[0][0] <= now:
                _, _, c = heapq.heappop(self.slow)
                if c not in self.conns or c.sent >= len(c.payload):
                    continue
                self._send(c, c.payload[c.sent:c.sent + 1], now)
                if c in self.conns:
                    c.next_at = now + self.slow_interval
                    heapq.heappush(self.slow, (c.next_at, next(self.seq), c))
            self.stats["peak_open"] = max(self.stats["peak_open"], len(self.conns))
            timeout = min(0.05, max(0.0, end - now))
            for key, _ in self.sel.select(timeout):
                self._readable(key.data, time.monotonic())
        g = self.greeted_count()
        self.stats["peak_greeted"] = max(self.stats["peak_greeted"], g)

    def close(self):
        for c in list(self.conns):
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()
        self.conns.clear()
        self.pending.clear()
        self.slow.clear()
        self.sel.close()


# --- owampd's side: what it holds ---------------------------------------------

def memory_kib(pid):
    """(Rss, Pss) of a process in KiB, from /proc/PID/smaps_rollup."""
    rss = pss = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def tcp_established_to(port):
    """Established TCP connections whose local port is `port` (the server's
    side), from /proc/net/tcp: what owampd holds open."""
    n = 0
    want = ":%04X" % port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1].endswith(want) and fields[3] == "01":
                n += 1
    return n


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))
