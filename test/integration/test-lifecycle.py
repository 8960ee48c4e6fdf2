#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Ends that are not the normal one: a client killed in the middle of a
long session, owampd stopped in the middle of one, several clients at
once. Nothing may be left running, no fd may leak, the data received so
far is kept."""

import os
import re
import signal
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import (Failure, RawClient, check, check_eq, log, main, make_request, ntp_from_seconds,  # noqa: E402
                    ntp_now, parse_owp, parse_summaries, proc_children, proc_cmdline, read_owp, wait_for)
import socket  # noqa: E402

LOSS_TIMEOUT = 1.0
LONG = ["-c", "2000", "-i", "0.01", "-L", str(LOSS_TIMEOUT)]  # about 20 s of packets


def start_long_session(t, d):
    """owping both ways in the background; returns it once owampd has
    stored some packets, with the SID of the session owampd receives."""
    p = t.spawn_owping(["-A", "O"] + LONG + [d.addr])
    d.wait_log(r"Session [0-9a-f]{32} started \(receiving\)", 15)
    sid = d.received_sids()[0]

    def stored():
        try:
            with open(d.data_path(sid), "rb") as f:
                return len(parse_owp(f.read()).records) >= 20
        except (OSError, Failure):
            return False
    wait_for(stored, 15, "owampd to store 20 records")
    check(p.poll() is None, "owping ended early:\n%s", open(p.err_path).read())
    return p, sid


def check_incomplete(d, sid):
    """The datadir file: kept, parses, marked incomplete, clean records."""
    f = read_owp(d.data_path(sid))
    check_eq(f.finished, 2, "finished word of the abandoned session's file")
    check(len(f.records) >= 20, "only %d records kept", len(f.records))
    check_eq([r.seq for r in f.records], list(range(len(f.records))), "sequence numbers kept")
    check(all(not r.lost for r in f.records), "lost records on loopback")
    check_eq(f.request.sid.hex(), sid, "SID in the stored request")
    check_eq(f.request.n_packets, 2000, "Number of Packets in the stored request")
    return f


def case_client_killed(t):
    d = t.daemon()
    p, sid = start_long_session(t, d)
    check_eq(len(d.children()), 2, "owampd's workers during the test")
    owping_workers = proc_children(p.pid)
    check_eq(len(owping_workers), 2, "owping's workers during the test")

    p.send_signal(signal.SIGKILL)
    p.wait(5)
    killed = time.monotonic()
    # owampd's workers end within Timeout plus a second.
    wait_for(lambda: not d.children(), LOSS_TIMEOUT + 1, "owampd's workers to end after the client was killed")
    log("owampd's workers ended %.2f s after the kill", time.monotonic() - killed)
    d.wait_log(r"Peer 127\.0\.0\.1:\d+ closed the connection in the middle of a test")
    d.wait_log(r"Session %s abandoned; \d+ records kept as incomplete" % sid)
    d.wait_log(r"Session [0-9a-f]{32} abandoned$")
    # owping's workers noticed their controller is gone (they are ours now,
    # as the test is a subreaper, and reaped here).
    left = t.reap_orphans(LOSS_TIMEOUT + 1)
    check_eq(left, [], "owping's workers still running after its death (%s)" % [
        proc_cmdline(pid) for pid in left])
    check_eq([pid for pid in owping_workers if os.path.exists("/proc/%d" % pid)], [],
             "owping's workers still there")
    d.quiesce()  # fds back to the baseline

    f = check_incomplete(d, sid)
    kept = int(re.search(r"Session %s abandoned; (\d+) records kept" % sid, d.log()).group(1))
    check_eq(len(f.records), kept, "records in the file vs owampd's log")
    # A second connection can still fetch what was kept.
    with RawClient(d) as c:
        c.open()
        ack, req, _, _, records = c.fetch(bytes.fromhex(sid))
        check_eq((ack["accept"], ack["finished"], ack["n_records"]), (0, 2, kept),
                 "Fetch-Ack of the abandoned session")
        check_eq([r.key() for r in records], [r.key() for r in f.records], "fetched records vs file")
    # And the next client is served.
    q = t.owping(["-A", "O", "-c", "5", "-i", "0.01", "-L", "1", d.addr])
    check_eq([(s["sent"], s["lost"]) for s in parse_summaries(q.out)], [(5, 0), (5, 0)], "next client's reports")


def case_daemon_stopped(t):
    d = t.daemon()
    p, sid = start_long_session(t, d)
    t0 = time.monotonic()
    d.stop(settle=False)  # SIGTERM: exit status 0, no sanitizer report
    log("owampd stopped %.2f s after SIGTERM", time.monotonic() - t0)
    # Its workers went with it: none was orphaned to us.
    left = t.reap_orphans(0.5)
    check_eq(left, [], "processes owampd left behind (%s)" % [proc_cmdline(pid) for pid in left])
    d.wait_log(r"Session %s abandoned; \d+ records kept as incomplete" % sid)
    check_incomplete(d, sid)
    # owping sees the server go and says so.
    rc = p.wait(LOSS_TIMEOUT + 10)
    err = open(p.err_path).read()
    check_eq(rc, 1, "owping's status without its server")
    check_eq(err.splitlines(), ["owping: the server closed the connection during the test",
                                "owping: Test session(s) Failed..."], "owping's stderr")


def case_daemon_killed(t):
    """owampd SIGKILLed in the middle of a session (issue 11 item 3): its
    workers notice and end; the data file, left with its opening header
    (finished 0, no count), is repaired by the next owampd at start-up:
    records kept, a torn last record cut, marked incomplete, fetchable."""
    d = t.daemon()
    p, sid = start_long_session(t, d)
    workers = d.children()
    check_eq(len(workers), 2, "owampd's workers during the test")
    d.kill()
    killed = time.monotonic()
    # Its workers are ours now (the test is a subreaper): they see their
    # controller's channel close and end.
    left = t.reap_orphans(3)
    check_eq(left, [], "owampd's workers still running after its death (%s)" % [proc_cmdline(x) for x in left])
    log("owampd's workers ended %.2f s after the kill", time.monotonic() - killed)
    rc = p.wait(LOSS_TIMEOUT + 10)
    check_eq(rc, 1, "owping's status without its server")

    path = d.data_path(sid)
    with open(path, "rb") as f:
        data = f.read()
    finished, next_seqno, n_skips, n_records, skips_off = struct.unpack(">IIIIQ", data[8:32])
    check_eq((finished, next_seqno, n_skips, n_records, skips_off), (0, 0, 0, 0, 0),
             "header left by the killed owampd")
    on_disk = parse_owp(data).records
    check(len(on_disk) >= 20, "only %d records on disk", len(on_disk))
    check_eq((len(data) - 184) % 25, 0, "whole records on disk")
    # A write torn by the crash: part of one more record.
    with open(path, "ab") as f:
        f.write(data[184:184 + 11])

    # The same data and var directories, as a restarted service has (the
    # killed one left its pid file behind, unlocked).
    check(os.path.exists(os.path.join(d.vardir, "owamp-server.pid")), "the killed owampd left no pid file")
    d2 = t.daemon(args=["-d", d.datadir, "-R", d.vardir])
    d2.wait_log(r"Session %s was left unfinished \(owampd ended without closing it\): %d records kept, "
                r"a partial last record cut, marked incomplete" % (sid, len(on_disk)))
    d2.wait_log(r"Data directory \S+: 1 unfinished session file repaired, %d records kept" % len(on_disk))
    with open(path, "rb") as f:
        fixed = f.read()
    check_eq(len(fixed), len(data), "size after the repair (the torn record cut)")
    f = parse_owp(fixed)
    check_eq((f.finished, f.next_seqno, f.stored_n_records), (2, 0, len(on_disk)), "header after the repair")
    check_eq([r.key() for r in f.records], [r.key() for r in on_disk], "records after the repair")
    with RawClient(d2) as c:
        c.open()
        ack, req, _, _, records = c.fetch(bytes.fromhex(sid))
        check_eq((ack["accept"], ack["finished"], ack["n_records"]), (0, 2, len(on_disk)),
                 "Fetch-Ack of the repaired session")
        check_eq(req.sid.hex(), sid, "SID of the fetched request")
        check_eq([r.key() for r in records], [r.key() for r in on_disk], "fetched records vs the file")
    # A second start finds nothing more to repair.
    d2.stop(check=False)
    d3 = t.daemon(args=["-d", d.datadir])
    check(not re.search(r"left unfinished|repaired", d3.log()), "a repaired file repaired again:\n%s" % d3.log())
    d3.stop(check=False)


def proc_environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    except OSError:
        return {}


def case_worker_killed(t):
    """owampd's receiving worker SIGKILLed mid-session: the session ends
    (owampd's Stop-Sessions says it failed), owping reports the failure,
    the records stored so far are kept as incomplete and fetchable, and
    nothing is left running or open."""
    d = t.daemon()
    p, sid = start_long_session(t, d)
    workers = d.children()
    check_eq(len(workers), 2, "owampd's workers during the test")
    receiver = [w for w in workers if proc_environ(w).get(b"OWAMP_SID") == sid.encode()]
    check_eq(len(receiver), 1, "owampd's receiving worker (OWAMP_SID=%s) among %s" % (sid, workers))
    os.kill(receiver[0], signal.SIGKILL)
    killed = time.monotonic()
    d.wait_log(r"Worker of session %s ended with status" % sid)
    d.wait_log(r"Session %s failed during the test; stopping the other sessions of 127\.0\.0\.1:\d+$" % sid)
    # The batch fails at once, not when the 20 s schedule ends.
    rc = p.wait(5)
    took = time.monotonic() - killed
    log("owping ended %.2f s after the worker was killed, status %d", took, rc)
    check(took < 5, "owping took %.1f s to end", took)
    check_eq(rc, 1, "owping's status after the server's worker died")
    check_eq(open(p.err_path).read().splitlines(), ["owping: the server reports failed sessions: internal error",
                                                  "owping: Test session(s) Failed..."],
             "owping's stderr")
    d.quiesce()
    f = check_incomplete(d, sid)
    with RawClient(d) as c:
        c.open()
        ack, req, _, _, records = c.fetch(bytes.fromhex(sid))
        check_eq((ack["accept"], ack["finished"], ack["n_records"]), (0, 2, len(f.records)),
                 "Fetch-Ack of the session whose worker was killed")
        check_eq([r.key() for r in records], [r.key() for r in f.records], "fetched records vs file")
    q = t.owping(["-A", "O", "-c", "5", "-i", "0.01", "-L", "1", d.addr])
    check_eq([(s["sent"], s["lost"]) for s in parse_summaries(q.out)], [(5, 0), (5, 0)], "next client's reports")


def case_concurrent(t):
    d = t.daemon()
    procs = [t.spawn_owping(["-A", mode, "-c", "50", "-i", "0.01", "-L", "1"] +
                            ([] if mode == "O" else ["-u", "demo", "-k", d.client_pfs()]) + [d.addr])
             for mode in ("O", "A", "E")]
    for p in procs:
        rc = p.wait(30)
        out, err = open(p.out_path).read(), open(p.err_path).read()
        check_eq(rc, 0, "owping status; stderr:\n%s" % err)
        sums = parse_summaries(out)
        check_eq([(s["sent"], s["lost"], s["dups"]) for s in sums], [(50, 0, 0)] * 2, "reports")
    check_eq(len(set(d.received_sids())), 3, "sessions owampd received")
    for sid in set(d.received_sids()):
        f = read_owp(d.data_path(sid))
        check_eq((f.finished, len(f.records)), (1, 50), "stored session %s" % sid)


# --- A raw client that goes away in the middle of its sessions -------------------

# 300 packets 0.1 s apart: a 30 s session, far longer than any wait below.
ABANDON_SLOTS = ((1, 0.1),)
ABANDON_PACKETS = 300


def abandon_case(t, n_send, n_recv, close_after, start_in=1.0):
    """A raw client requests n_send sessions owampd sends and n_recv it
    receives (about 30 s each), sends Start-Sessions and closes its
    connection abruptly: close_after "start" right after Start-Sessions
    (before the Start-Ack) with a FIN, a number: that many seconds after the
    Start-Ack with a reset.
    owampd logs each session abandoned and none of its workers outlives
    the close by more than 3 s."""
    d = t.daemon()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # where owampd's packets go
    sink.bind(("127.0.0.1", 0))
    c = RawClient(d)
    try:
        c.open()
        sids = []
        for i in range(n_send + n_recv):
            start = None
            if i < n_send:
                req = make_request(1, 0, ("127.0.0.1", 0), ("127.0.0.1", sink.getsockname()[1]),
                                   n_packets=ABANDON_PACKETS, slots=ABANDON_SLOTS, sid=os.urandom(16),
                                   start=ntp_now() + ntp_from_seconds(start_in))
            else:
                req = make_request(0, 1, (c.local[0], 40000 + i), ("127.0.0.1", 0),
                                   n_packets=ABANDON_PACKETS, slots=ABANDON_SLOTS,
                                   start=ntp_now() + ntp_from_seconds(start_in))
            accept, _, sid = c.request(req)
            check_eq(accept, 0, "Accept-Session of session %d" % i)
            sids.append(sid.hex())
        if close_after == "start":
            c.send(bytes([2]) + b"\0" * 31)
        else:
            check_eq(c.start(), 0, "Start-Ack")
            d.wait_log(r"Session [0-9a-f]{32} started", 15, count=n_send + n_recv)
            check_eq(len(d.children()), n_send + n_recv, "owampd's workers during the test")
            time.sleep(close_after)
    finally:
        if close_after != "start":
            # Abrupt: a reset, as a killed client's kernel may send (before
            # the Start-Ack, a reset could overtake the Start-Sessions).
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    closed = time.monotonic()
    try:
        wait_for(lambda: not d.children(), 3, "owampd's workers to end after the client closed")
    except Failure:
        raise Failure("owampd's workers still running 3 s after the close: %s; log:\n%s" % (
            [(w, proc_cmdline(w)) for w in d.children()], d.log()[-3000:]))
    log("owampd's workers ended %.2f s after the close", time.monotonic() - closed)
    # Before the Start-Ack, a session owampd sends may never have started
    # (nothing to log); one it receives has a data file to remove.
    for sid in sids[n_send:] if close_after == "start" else sids:
        d.wait_log(r"Session %s abandoned" % sid, 5)
    sink.close()
    # And the next client is served, with nothing left of the first.
    q = t.owping(["-A", "O", "-c", "5", "-i", "0.01", "-L", "1", d.addr])
    check_eq([(s["sent"], s["lost"]) for s in parse_summaries(q.out)], [(5, 0), (5, 0)], "next client's reports")
    d.quiesce(timeout=3)


def case_abandon_running(t):
    abandon_case(t, 0, 1, 1.0)


def case_abandon_sending(t):
    abandon_case(t, 1, 0, 1.0)


def case_abandon_before_ack(t):
    abandon_case(t, 1, 1, "start")


def case_abandon_several(t):
    abandon_case(t, 3, 2, 0.5)


def case_abandon_waiting(t):
    """Closed while the sessions wait for their start time, as powstream's
    sessions set up ahead do."""
    abandon_case(t, 3, 1, 0.5, start_in=8.0)


CASES = {
    "client-killed": case_client_killed,
    "daemon-stopped": case_daemon_stopped,
    "daemon-killed": case_daemon_killed,
    "worker-killed": case_worker_killed,
    "concurrent": case_concurrent,
    "abandon-running": case_abandon_running,
    "abandon-sending": case_abandon_sending,
    "abandon-before-ack": case_abandon_before_ack,
    "abandon-several": case_abandon_several,
    "abandon-waiting": case_abandon_waiting,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
