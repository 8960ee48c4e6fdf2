#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Faults around a running owampd (issue 11, "Faults"): its data directory
full and then freed, its configuration broken under live sessions, the
clock stepped during a session. Each must be survived cleanly, said in the
log, and leave nothing behind (the harness checks processes, descriptors
and the data directory at the end)."""

import ctypes
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import (RawClient, Skip, check, check_eq, errest_seconds, log, main, make_request,  # noqa: E402
                    ntp_to_seconds, parse_summaries, read_owp)

ACCEPT_OK, ACCEPT_FAILURE, ACCEPT_INTERNAL, ACCEPT_PERM, ACCEPT_TEMP = 0, 1, 2, 4, 5
CLONE_NEWNS = 0x00020000
QUICK = ["-c", "5", "-i", "0.01", "-L", "1"]


def recv_request(c, n_packets=10):
    """A Request-Session in which owampd receives, from the raw client."""
    return make_request(0, 1, (c.local[0], 40000), ("127.0.0.1", 0), n_packets=n_packets, slots=((1, 0.0625),))


# --- The data directory full ---------------------------------------------------

def private_tmpfs(path, size):
    """A tmpfs of `size` on path, in a mount namespace of this test's own
    (so nothing is left mounted on the machine, whatever happens): owampd,
    started after this, inherits it."""
    if os.geteuid() != 0:
        raise Skip("mounting a tmpfs needs root")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise Skip("unshare(CLONE_NEWNS): %s" % os.strerror(ctypes.get_errno()))
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % size, "owamp-it-full", path], check=True)


def fill(path):
    """Fill the file system of path's directory: returns the filler's path."""
    filler = path
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            check(e.errno == 28, "filling the tmpfs: %s" % e)  # ENOSPC
    return filler


def case_disk_full(t):
    """The data directory's file system full: new receive sessions are
    refused with Accept 5 (temporary) and a warning with the free space;
    a session already running when it fills up fails at once (Accept 2 in
    Stop-Sessions) and keeps what it stored; once space is freed, owampd
    serves again."""
    datadir = t.path("owampd-0", "data")
    private_tmpfs(datadir, 256 * 1024)
    d = t.daemon()
    check_eq(d.datadir, datadir, "the daemon's data directory")
    filler = os.path.join(datadir, "filler")

    # Full before a session: refused, temporary; a clear line.
    fill(filler)
    with RawClient(d) as c:
        c.open()
        mark = d.mark()
        accept, _, _ = c.request(recv_request(c))
        check_eq(accept, ACCEPT_TEMP, "Accept of a receive session on a full disk")
        d.wait_new(mark, r"Refusing session [0-9a-f]{32} from 127\.0\.0\.1:\d+: the data directory %s has \d+ "
                         r"octets free, \d+ needed$" % re.escape(datadir))
    p = t.owping(["-A", "O", "-t"] + QUICK + [d.addr], expect_rc=1)
    check(re.search(r"refused by the server: .*temporar", p.err, re.I), "owping's reason: %r" % p.err)
    # Sending needs no disk: still served.
    p = t.owping(["-A", "O", "-f"] + QUICK + [d.addr])
    check_eq([s["sent"] for s in parse_summaries(p.out)], [5], "a session owampd sends, on a full disk")

    # Freed: served again.
    os.unlink(filler)
    p = t.owping(["-A", "O", "-t"] + QUICK + [d.addr])
    check_eq([(s["sent"], s["lost"]) for s in parse_summaries(p.out)], [(5, 0)], "after the space was freed")

    # Full while a session runs: it fails at once, its records are kept.
    p = t.spawn_owping(["-A", "O", "-t", "-c", "2000", "-i", "0.01", "-L", "1", d.addr])
    d.wait_log(r"Session ([0-9a-f]{32}) started \(receiving\)", 15, count=2)
    sid = d.received_sids()[-1]
    time.sleep(1.5)  # records arrive in batches, once a second
    mark = d.mark()
    fill(filler)
    d.wait_new(mark, r"Cannot store data of session %s: No space left on device" % sid, 10)
    rc = p.wait(10)
    check_eq(rc, 1, "owping's status when the server's disk filled up")
    err = open(p.err_path).read()
    check(re.search(r"the server reports failed sessions: internal error", err), "owping's stderr: %r" % err)
    d.quiesce()
    f = read_owp(d.data_path(sid))
    check_eq(f.finished, 2, "finished word of the session that ran out of disk")
    check(len(f.records) > 0, "no records kept")
    check_eq([r.seq for r in f.records], list(range(len(f.records))), "the records kept")
    os.unlink(filler)
    with RawClient(d) as c:
        c.open()
        ack = c.fetch(bytes.fromhex(sid))[0]
        check_eq((ack["accept"], ack["finished"]), (0, 2), "fetch of the session that ran out of disk")
    p = t.owping(["-A", "O", "-t"] + QUICK + [d.addr])
    check_eq([(s["sent"], s["lost"]) for s in parse_summaries(p.out)], [(5, 0)], "after the space was freed again")
    # The usual checks, then the mount goes, so the test's directory can.
    d.stop()
    subprocess.run(["umount", datadir], check=True)


# --- A reload with broken files under live sessions ---------------------------------

def case_reload_broken(t):
    """SIGHUP with a broken owampd.conf, then a broken owampd.limits, then
    a pass-phrase file others can read, while sessions run both ways in
    modes O and A: each reload is refused with a line naming the file, the
    old policy stays (its limits still refuse what they refused), and the
    sessions go on to the end with every packet."""
    limits = "limit root with test_sessions=2\n"
    d = t.daemon(limits=limits)
    procs = [t.spawn_owping(["-A", mode, "-c", "100", "-i", "0.05", "-L", "1"] +
                            ([] if mode == "O" else ["-u", "demo", "-k", d.client_pfs()]) + [d.addr])
             for mode in ("O", "A")]
    d.wait_log(r"Session [0-9a-f]{32} started \(receiving\)", 15, count=2)
    pfs = os.path.join(d.confdir, "owampd.pfs")
    good_pfs = open(pfs).read()
    breakages = [
        ("owampd.conf", "pbkdf2_count 12\n", None, r"\S+/owampd\.conf:1: "),
        ("owampd.limits", "limit root with test_sessions=2\nlimit x with parent=nowhere\n", None,
         r"\S+/owampd\.limits:2: .*nowhere"),
        ("owampd.limits", "limit root with test_sessions=\\\n", None, r"\S+/owampd\.limits:1: "),
        ("owampd.pfs", "demo\tnot-hex\n", None, r"\S+/owampd\.pfs:1: "),
        ("owampd.pfs", good_pfs, 0o644, r"\S+/owampd\.pfs: is readable by others \(mode 0644\)"),
    ]
    for name, text, mode, why in breakages:
        path = os.path.join(d.confdir, name)
        with open(path, "w") as f:
            f.write(text)
        if mode is not None:
            os.chmod(path, mode)
        mark = d.mark()
        d.proc.send_signal(signal.SIGHUP)
        d.wait_new(mark, r"Reload failed: %s.*\(keeping the previous configuration and policy\)$" % why)
        # Put it back, for the next one to be the only broken file.
        if name == "owampd.conf":
            os.unlink(path)
        elif name == "owampd.limits":
            with open(path, "w") as f:
                f.write(limits)
        else:
            with open(path, "w") as f:
                f.write(good_pfs)
            os.chmod(path, 0o600)
    check(not re.search(r"Reloaded policy", d.log()), "a broken reload was applied")
    # The old policy: test_sessions=2 still refuses a third request.
    with RawClient(d) as c:
        c.open()
        for want in (ACCEPT_OK, ACCEPT_OK, ACCEPT_PERM):
            accept, _, _ = c.request(recv_request(c))
            check_eq(accept, want, "requests under the old policy")
    # Greeting count still the old one (2048, not 12).
    with RawClient(d) as c:
        check_eq(c.count, 2048, "PBKDF2 count after the refused reloads")
    for p in procs:
        rc = p.wait(30)
        out, err = open(p.out_path).read(), open(p.err_path).read()
        check_eq(rc, 0, "owping status; stderr:\n%s" % err)
        check_eq([(s["sent"], s["lost"], s["dups"]) for s in parse_summaries(out)], [(100, 0, 0)] * 2,
                 "reports of the sessions that ran through the reloads")
    # And a good reload applies.
    mark = d.mark()
    d.proc.send_signal(signal.SIGHUP)
    d.wait_new(mark, r"Reloaded policy: 1 key from")


# --- The clock stepped during a session ------------------------------------------

def check_step(records, step, side, what):
    """Records of one direction, where `side` ("recv" or "send") is the
    stepped clock's: the delay moves by `step` seconds from some record on,
    and from there every estimate of that side is unsynchronised (S bit 0)
    with an error of at least the step; before it, neither."""
    check(len(records) == 100, "%s: %d records" % (what, len(records)))
    sign = 1 if side == "recv" else -1
    err = [r.recv_err if side == "recv" else r.send_err for r in records]
    delay = [ntp_to_seconds(r.recv_time - r.send_time) if r.recv_time >= r.send_time
             else -ntp_to_seconds(r.send_time - r.recv_time) for r in records]
    stepped = [i for i, e in enumerate(err) if errest_seconds(e) >= abs(step) * 0.99]
    check(stepped, "%s: no estimate reflects the step: %s" % (what, [hex(e) for e in err]))
    i0 = stepped[0]
    check(10 <= i0 <= 90, "%s: the step shows at record %d" % (what, i0))
    check_eq(stepped, list(range(i0, 100)), "%s: records whose estimate includes the step" % what)
    check(all(not (e & 0x8000) for e in err[i0:]), "%s: S bit set after the step" % what)
    check(all(abs(x) < 0.2 for x in delay[:i0]), "%s: delays before the step %s" % (what, delay[:i0]))
    check(all(abs(x - sign * step) < 0.2 for x in delay[i0 + 1:]),
          "%s: delays after the step %s" % (what, delay[i0 + 1:]))
    log("%s: stepped from record %d, delay %.3f s -> %.3f s, error %.3f s", what, i0, delay[0], delay[-1],
        errest_seconds(err[-1]))


def case_clock_step(t):
    """The clock of owampd's workers stepped by +1 s, then (another owampd)
    by -1 s, in the middle of a session both ways (OWAMP_DEBUG_CLOCK_STEP,
    a debug hook: the machine's clock is not touched). The sessions end
    cleanly with every packet; each worker logs the step, and from the step
    on its timestamps are marked unsynchronised with an error of at least
    1 s, which is what the delays moved by."""
    for step in (1, -1):
        d = t.daemon(env={"OWAMP_DEBUG_CLOCK_STEP": "2.5:%d" % step, "OWAMP_LOG_STDERR": "1"})
        to_file, from_file = t.path("to%+d.owp" % step), t.path("from%+d.owp" % step)
        p = t.owping(["-A", "O", "-c", "100", "-i", "0.05", "-L", "3", "-T", to_file, "-F", from_file, d.addr])
        check_eq([(s["sent"], s["lost"], s["dups"]) for s in parse_summaries(p.out)], [(100, 0, 0)] * 2,
                 "reports of the sessions across a %+d s step" % step)
        found = re.findall(r"The clock was stepped by ([+-]\d+) ms during the session: timestamps from now on "
                           r"are marked unsynchronised, with an error of at least (\d+) ms", d.log())
        check_eq(len(found), 2, "step lines (one per worker) in owampd's log:\n%s" % d.log()[-3000:])
        for jump, total in found:
            check(abs(int(jump) - 1000 * step) <= 5 and abs(int(total) - 1000) <= 5, "step of %s ms, %s ms" % (
                jump, total))
        check_step(read_owp(to_file).records, step, "recv", "owampd receiving, %+d s" % step)
        check_step(read_owp(from_file).records, step, "send", "owampd sending, %+d s" % step)
        d.stop()


CASES = {
    "disk-full": case_disk_full,
    "reload-broken": case_reload_broken,
    "clock-step": case_clock_step,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
