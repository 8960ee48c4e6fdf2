# SPDX-License-Identifier: Apache-2.0
"""Synthesised sessions and what the reference's owstats makes of them,
computed here independently of the C engine (docs/notes/reference-owstats.md
section 1), for sessions that stay within its clean cases: every copy
arrives within the loss timeout, lost packets never arrive.
"""

import math
import random
import struct

import owtest

GAP_UNIT = 2**32


def f32(v):
    """v as a C float (the reference keeps -b and -a in floats)."""
    return struct.unpack("f", struct.pack("f", v))[0]


class Session:
    def __init__(self, name, *, n_packets, gaps, timeout=2.0, ipvn=4, sender=("127.0.0.1", 9000),
                 receiver=("127.0.0.1", 9001), loss=0.0, dup=0.0, reorder=0.0, delay=(0.001, 0.005),
                 skips=(), sync=False, ttls=(255,), seed=1, padding=0, type_p=0, late=False,
                 finished=1, store_count=True, fetched=False, extra_records=b"", delay_raw=None):
        self.name = name
        self.n_packets = n_packets
        self.gaps = gaps            # fixed slot gaps in seconds, cyclic
        self.timeout = timeout
        self.ipvn = ipvn
        self.sender, self.receiver = sender, receiver
        self.skips = list(skips)
        self.finished = finished
        rnd = random.Random(seed)
        self.start = owtest.ntp(1795842781.25)
        timeout_raw = int(timeout * 2**32)
        self.timeout_raw = timeout_raw

        gap_raw = [int(g * 2**32) for g in gaps]
        sched, t = [], self.start
        for k in range(n_packets):
            t += gap_raw[k % len(gap_raw)]
            sched.append(t)
        self.sched = sched

        def skipped(s):
            return any(a <= s <= b for a, b in self.skips)

        err = owtest.SYNC_4MS if sync else owtest.UNSYNC
        arrivals = []  # (recv, seq, send, ttl, is_first)
        lost = []
        for k in range(n_packets):
            if skipped(k) and rnd.random() < 0.5:
                lost.append(k)  # a receiver declares skipped packets lost too
                continue
            if rnd.random() < loss:
                lost.append(k)
                continue
            d = rnd.uniform(*delay)
            if rnd.random() < reorder:
                d += rnd.uniform(0.0, 3 * max(gaps))
            ttl = rnd.choice(ttls)
            send = sched[k]
            # delay_raw(rnd, k, send): the delay in 2^-32 s, chosen by the caller.
            recv = send + (delay_raw(rnd, k, send) if delay_raw else int(d * 2**32))
            arrivals.append((recv, k, send, ttl, True))
            if rnd.random() < dup:
                arrivals.append((recv + int(rnd.uniform(0.0001, 0.01) * 2**32), k, send, ttl, False))
        if late and arrivals:
            recv, k, send, ttl, first = arrivals[-1]
            arrivals[-1] = (sched[-1] + timeout_raw + 2**32, k, send, ttl, first)
        arrivals.sort()

        # File order: lost records go in just before the first arrival more
        # than the timeout after their scheduled time (the receiver
        # declares them then), the rest at the end, in sequence order.
        recs = []
        lost_left = sorted(lost)
        for recv, k, send, ttl, first in arrivals:
            while lost_left and sched[lost_left[0]] + timeout_raw < recv:
                j = lost_left.pop(0)
                recs.append(("lost", j, sched[j], 0, 255))
            recs.append(("rx", k, send, recv, ttl))
        for j in lost_left:
            recs.append(("lost", j, sched[j], 0, 255))
        self.recs = recs
        self.data = owtest.owp_file(
            ipvn=ipvn, sender=sender, receiver=receiver, n_packets=n_packets, start=self.start,
            timeout=timeout, slots=[(1, g) for g in gaps], skips=self.skips, padding=padding, type_p=type_p,
            finished=finished, store_count=store_count, fetched=fetched,
            records=b"".join(owtest.record(k, s, r, err, err if kind == "rx" else err, ttl)
                             for kind, k, s, r, ttl in recs) + extra_records)
        self.err = err

    # --- What the reference computes ---------------------------------------

    def expected(self, width=0.0001, first=0, last=None, limit=None):
        """Statistics of [first, last) the reference's way; None values
        where it prints nan. Only for sessions built without `late`.
        width as given to -b: the reference keeps it in a float."""
        last = self.n_packets if last is None else last
        width = f32(width)

        def skipped(s):
            return any(a <= s <= b for a, b in self.skips)

        sent = lost = dups = 0
        seen = set()
        hist = {}
        dmin = dmax = None
        ttls = {}
        arrivals = []
        firsts = []  # delays of first copies, file order
        recs = self.recs if limit is None else self.recs[:limit]
        for kind, k, s, r, ttl in recs:
            if not (first <= k < last) or skipped(k):
                continue
            if kind == "lost":
                sent += 1
                lost += 1
                continue
            d = float(r) / 2**32 - float(s) / 2**32
            dmin = d if dmin is None else min(dmin, d)
            dmax = d if dmax is None else max(dmax, d)
            arrivals.append(k)
            if k in seen:
                dups += 1
                continue
            seen.add(k)
            sent += 1
            firsts.append(d)
            q = d / width
            b = math.ceil(q) if d > 0 else math.floor(q)
            hist[b] = hist.get(b, 0) + 1
            ttls[ttl] = ttls.get(ttl, 0) + 1

        def pct(alpha):
            acc = 0.0
            for b in sorted(hist):
                acc += hist[b]
                if acc >= alpha * sent:
                    return b * width
            return None

        rate = len(self.gaps) / sum(float(int(g * 2**32)) / 2**32 for g in self.gaps)
        L = max(10, int(rate * (float(self.timeout_raw) / 2**32) * 3.5))
        rn = [0] * L
        for i, s in enumerate(arrivals):
            j = 0
            while j < min(i, L) and s < arrivals[i - 1 - j]:
                rn[j] += 1
                j += 1
        p50, p95 = pct(0.5), pct(0.95)
        return {
            "sent": sent, "lost": lost, "dups": dups, "min": dmin, "max": dmax,
            "median": p50, "jitter": None if p50 is None or p95 is None else p95 - p50,
            "pct": pct, "first_delays": firsts, "ttls": ttls, "reorder": rn, "reorder_total": len(arrivals), "L": L,
        }
