#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A whole-session Fetch-Session of a session still running on another
connection waits for it to end, as perfSONAR's owampd does (PROTOCOL.md
5.7: it looks again 1, 2, 4, 8 and 16 s apart, then refuses with Accept 1),
without holding up anything else; a partial fetch is answered at once. The
running session is driven by hand (RawClient, the test sends its packets),
so the test decides when it ends."""

import os
import re
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import (RawClient, check, check_eq, log, main, make_request,  # noqa: E402
                    make_stop_sessions, ntp_from_seconds, ntp_now, ntp_to_seconds, parse_summaries)

LO = "127.0.0.1"
WHOLE = (0, 0xFFFFFFFF)
# The reference's looks after the request (1, 2, 4, 8, 16 s apart).
LOOKS = (1, 3, 7, 15, 31)


def wait_until_ntp(t):
    for _ in range(100000):
        left = ntp_to_seconds(t - ntp_now()) if t > ntp_now() else 0
        if left <= 0:
            return
        time.sleep(min(left, 0.01))


def receive_session(c, n, gap=0.02, timeout=1.0, send=True):
    """On RawClient c: a session owampd receives (n packets, fixed gap),
    started; the test sends every packet when send. Returns (sid, {seq:
    send time})."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind((LO, 0))
        start = ntp_now() + ntp_from_seconds(0.3)
        req = make_request(0, 1, (LO, u.getsockname()[1]), (LO, 0), n_packets=n, slots=((1, gap),),
                           start=start, timeout=timeout)
        accept, port, sid = c.request(req)
        check_eq(accept, 0, "Accept-Session")
        check_eq(c.start(), 0, "Start-Ack")
        sent = {}
        if send:
            u.connect((LO, port))
            for seq in range(n):
                wait_until_ntp(start + ntp_from_seconds(gap * (seq + 1)))
                ts = ntp_now()
                u.send(struct.pack(">IQH", seq, ts, 0x0001))
                sent[seq] = ts
        return sid, sent
    finally:
        u.close()


def stop_session(c, sid, next_seqno):
    c.send(make_stop_sessions([(sid, next_seqno, [])]))
    accept, sessions = c.read_stop(10)
    check_eq((accept, sessions), (0, []), "owampd's Stop-Sessions")


def waiting_re(sid, total="31.0"):
    return (r"Whole-session fetch of %s by 127\.0\.0\.1:\d+: the session is still running; waiting up to "
            r"%s s for it to end" % (sid.hex(), total.replace(".", r"\.")))


def timed_read(c, timeout):
    ans = c.read_fetch(timeout)
    return ans, time.monotonic()


def case_fetch_wait(t):
    """Two whole-session fetches wait for a running session (one issued 1 s
    before it ends, one long before, with a whole owping served meanwhile);
    both get the complete data as soon as it ends. A partial fetch of the
    running session is answered at once."""
    d = t.daemon()
    n = 10
    c1 = RawClient(d).open()
    sid, sent = receive_session(c1, n)

    # B: issued long before the end.
    mark = d.mark()
    cb = RawClient(d).open()
    t_b = time.monotonic()
    cb.send_fetch(sid)
    d.wait_new(mark, waiting_re(sid))

    # A partial fetch of the running session: today's answer, at once.
    with RawClient(d) as cp:
        cp.open()
        t0 = time.monotonic()
        ack, _, _, _, recs = cp.fetch(sid, 0, n - 1, timeout=5)
        took = time.monotonic() - t0
        check(took < 1.0, "a partial fetch of a running session took %.2f s", took)
        check_eq((ack["accept"], ack["finished"]), (0, 2), "Fetch-Ack of a partial fetch while running")
        check(all(r.seq in sent and r.send_time == sent[r.seq] for r in recs),
              "records of the partial fetch are not what was sent")

    # The event loop serves a whole owping (both directions) meanwhile.
    p = t.owping(["-A", "O", "-c", "5", "-i", "0.01", "-L", "1", d.addr])
    check_eq([(s["sent"], s["lost"]) for s in parse_summaries(p.out)], [(5, 0), (5, 0)],
             "owping's reports while a fetch waits")
    check_eq(cb.pending(), 0, "octets sent to the waiting fetch before its session ended")

    # A: issued 1 s before the end.
    mark = d.mark()
    ca = RawClient(d).open()
    t_a = time.monotonic()
    ca.send_fetch(sid)
    d.wait_new(mark, waiting_re(sid))
    time.sleep(max(0.0, t_a + 1.0 - time.monotonic()))
    check_eq(ca.pending() + cb.pending(), 0, "octets sent to the waiting fetches before the session ended")
    t_stop = time.monotonic()
    stop_session(c1, sid, n)
    d.wait_log(r"Session %s data stored: %d records, next seqno %d, 0 skip ranges" % (sid.hex(), n, n))

    for c, what, t_issued in ((ca, "A", t_a), (cb, "B", t_b)):
        (ack, req, _, skips, records), t_ans = timed_read(c, 40)
        log("fetch %s answered %.3f s after the end, %.3f s after it was issued", what, t_ans - t_stop,
            t_ans - t_issued)
        check_eq(ack, {"accept": 0, "finished": 1, "next_seqno": n, "n_skips": 0, "n_records": n},
                 "Fetch-Ack of fetch %s" % what)
        check_eq(req.sid, sid, "fetched SID")
        check_eq(skips, [], "fetched skip ranges")
        check_eq([(r.seq, r.send_time) for r in records], sorted(sent.items()), "records of fetch %s" % what)
        check(not any(r.lost for r in records), "fetch %s: records lost on loopback", what)
        check(t_ans - t_stop < 2.0, "fetch %s answered %.2f s after the session ended", what, t_ans - t_stop)
        # Answered because the session ended, not at its next scheduled look.
        nxt = min((t_issued + k for k in LOOKS if t_issued + k > t_stop), default=None)
        if nxt is not None and nxt - t_stop > 0.5:
            check(t_ans < nxt - 0.2, "fetch %s answered at its scheduled look (%.2f s after the end), not when "
                  "the session ended", what, t_ans - t_stop)
        c.close()
    c1.close()
    check_eq(len(re.findall(r"Session %s fetched by 127\.0\.0\.1:\d+: records 0\.\.4294967295, %d records$"
                            % (sid.hex(), n), d.log(), re.M)), 2, "whole-session fetches logged (A, B)")
    check("Refusing" not in d.log(), "owampd refused something:\n%s" % d.log()[-2000:])


def case_fetch_wait_refused(t):
    """The session does not end within the wait: Accept 1 at the last look
    (31 s, here scaled down with OWAMP_DEBUG_FETCH_WAIT=0.1 to 3.1 s); the
    1 s controltimeout does not cut the wait, and runs again after it."""
    first = 0.1
    total = first * 31
    d = t.daemon(conf="controltimeout 1\n", env={"OWAMP_DEBUG_FETCH_WAIT": str(first)})
    c1 = RawClient(d).open()
    sid, _ = receive_session(c1, 350, send=False)  # 7 s of schedule
    mark = d.mark()
    c2 = RawClient(d).open()
    t0 = time.monotonic()
    c2.send_fetch(sid)
    d.wait_new(mark, waiting_re(sid, "%.1f" % total))
    (ack, *_), t_ans = timed_read(c2, 10)
    took = t_ans - t0
    log("refused after %.2f s", took)
    check_eq(ack, {"accept": 1, "finished": 0, "next_seqno": 0, "n_skips": 0, "n_records": 0},
             "Fetch-Ack after the wait")
    check(total - 0.05 <= took < total + 1.0, "refused after %.2f s, want %.1f s", took, total)
    d.wait_new(mark, r"Refusing whole-session fetch of %s by 127\.0\.0\.1:%d: the session is still running "
               r"after 3\.\d s" % (sid.hex(), c2.local[1]))
    # The connection goes on: a partial fetch at once, then the control
    # timeout closes it when it is silent.
    ack, *_ = c2.fetch(sid, 0, 9, timeout=5)
    check_eq((ack["accept"], ack["finished"]), (0, 2), "Fetch-Ack of a partial fetch after the refusal")
    t1 = time.monotonic()
    c2.expect_closed(5)
    check(0.8 <= time.monotonic() - t1 < 3, "closed %.1f s after the last message", time.monotonic() - t1)
    d.wait_log(r"Control connection from 127\.0\.0\.1:%d timed out" % c2.local[1])
    c2.close()
    stop_session(c1, sid, 0)
    c1.close()


def case_fetch_wait_closed(t):
    """Clients that close while their fetch waits are cleaned up (no fd
    left, no use of what was freed when the session ends afterwards under
    ASan); owampd stopped while a fetch waits exits cleanly."""
    d = t.daemon()
    c1 = RawClient(d).open()
    sid, _ = receive_session(c1, 250, send=False)  # 5 s of schedule

    mark = d.mark()
    c2 = RawClient(d).open()
    c2.send_fetch(sid)
    d.wait_new(mark, waiting_re(sid))
    port2 = c2.local[1]
    c2.close()
    d.wait_new(mark, r"Peer 127\.0\.0\.1:%d closed the connection while its fetch waited$" % port2, 3)
    d.wait_new(mark, r"Connection from 127\.0\.0\.1:%d closed" % port2, 3)

    # Another waits, and is answered when the session ends (every waiting
    # fetch is looked at then: the closed one must be gone from the list).
    mark = d.mark()
    c3 = RawClient(d).open()
    c3.send_fetch(sid)
    d.wait_new(mark, waiting_re(sid))
    t_stop = time.monotonic()
    stop_session(c1, sid, 0)
    (ack, *_), t_ans = timed_read(c3, 40)
    check_eq(ack, {"accept": 0, "finished": 1, "next_seqno": 0, "n_skips": 0, "n_records": 0},
             "Fetch-Ack once the session ended")
    check(t_ans - t_stop < 2.0, "answered %.2f s after the session ended", t_ans - t_stop)
    c3.close()
    c1.close()
    d.quiesce()  # every fd back to the baseline

    # owampd stopped (SIGTERM) while a fetch waits: exit 0, nothing leaked.
    c1 = RawClient(d).open()
    sid2, _ = receive_session(c1, 500, send=False)
    mark = d.mark()
    c4 = RawClient(d).open()
    c4.send_fetch(sid2)
    d.wait_new(mark, waiting_re(sid2))
    d.stop(settle=False)
    check_eq(c4.expect_closed(5), b"", "what owampd sent the waiting fetch before it stopped")
    c4.close()
    c1.close()


CASES = {
    "fetch-wait": case_fetch_wait,
    "fetch-wait-refused": case_fetch_wait_refused,
    "fetch-wait-closed": case_fetch_wait_closed,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
