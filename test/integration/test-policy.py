#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""owampd.conf, owampd.limits and owampd.pfs enforced (docs/notes/policy.md):
each limit just met and just exceeded, with its Accept code and its log
line naming the class and the limit; open mode per network; delete_on_fetch;
disk usage across a restart; reloads; and perfSONAR's own files."""

import grp
import os
import pwd
import re
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import (OWAMPD, SOURCE_ROOT, RawClient, check, check_eq, main, make_request,  # noqa: E402
                    recv_exact)

QUICK = ["-c", "5", "-i", "0.01", "-L", "1"]

ACCEPT_OK, ACCEPT_FAILURE, ACCEPT_PERM, ACCEPT_TEMP = 0, 1, 4, 5

# A fixed gap of 1/16 s is exact in 32.32: 16 packets/s. In open mode over
# IPv4 a packet is 20 (IP) + 8 (UDP) + 14 (OWAMP-Test) + padding octets on
# the wire.
GAP = 0.0625


def bps(padding=0, mode_payload=14):
    return (20 + 8 + mode_payload + padding) * 8 * 16


def disk(n_packets, n_slots=1):
    """The receiver's .owp file for n packets: 152 + 16 (slots + 1) + 25 n."""
    return 152 + 16 * (n_slots + 1) + 25 * n_packets


def recv_request(c, n_packets=10, padding=0):
    """A Request-Session in which owampd receives (Conf-Receiver), from the
    raw client's address and a made-up port."""
    return make_request(0, 1, (c.local[0], 40000), ("127.0.0.1", 0), n_packets=n_packets,
                        slots=((1, GAP),), padding=padding)


def send_request(c, n_packets=10, padding=0):
    """One in which owampd sends (Conf-Sender): our SID, our port."""
    return make_request(1, 0, ("127.0.0.1", 0), (c.local[0], 40001), n_packets=n_packets,
                        slots=((1, GAP),), padding=padding, sid=secrets.token_bytes(16))


def request(c, req, want, what):
    accept, port, sid = c.request(req)
    check_eq(accept, want, what)
    return sid


def refusal(d, mark, cls, limit, limit_class, value):
    """The log line of a refused session: its class, the limit, the class
    whose limit refused and that limit's value."""
    return d.wait_new(mark, r"Refusing session [0-9a-f]{32} from \S+ \(class %s\): %s limit of class %s is %d " % (
        re.escape(cls), limit, re.escape(limit_class), value))


def reload(d, limits=None, conf=None):
    """Rewrite the files, SIGHUP, wait for the outcome; returns the log mark
    from before the reload."""
    if limits is not None:
        with open(os.path.join(d.confdir, "owampd.limits"), "w") as f:
            f.write(limits)
    if conf is not None:
        with open(os.path.join(d.confdir, "owampd.conf"), "w") as f:
            f.write(conf)
    mark = d.mark()
    d.proc.send_signal(signal.SIGHUP)
    d.wait_new(mark, r"Reloaded policy|Reload failed")
    return mark


def greeting_from(d, source):
    """(Modes, Count) of the Server Greeting to a client at source."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.bind((source, 0))
        s.connect((d.host, d.port))
        g = recv_exact(s, 64, 5)
    check_eq(len(g), 64, "greeting length")
    return struct.unpack(">I", g[12:16])[0], struct.unpack(">I", g[48:52])[0]


# --- bandwidth ------------------------------------------------------------------

def case_bandwidth_session(t):
    """One session alone: accepted at exactly the limit, refused (4,
    permanent) one bit/s below it; padding counts; A/E payloads are 48."""
    d = t.daemon(limits="limit root with bandwidth=%d\n" % bps(100))
    with RawClient(d) as c:
        c.open()
        request(c, recv_request(c, padding=100), ACCEPT_OK, "session at the limit")
    d2 = t.daemon(limits="limit root with bandwidth=%d\n" % (bps(100) - 1))
    with RawClient(d2) as c:
        c.open()
        mark = d2.mark()
        request(c, recv_request(c, padding=100), ACCEPT_PERM, "session one bit/s over the limit")
        refusal(d2, mark, "root", "bandwidth", "root", bps(100) - 1)
        d2.wait_new(mark, r"%d in use, %d requested" % (0, bps(100)))
        # Without the padding it fits.
        request(c, recv_request(c, padding=0), ACCEPT_OK, "session without padding")

    # owping: its refusal says why; an authenticated session of the same
    # schedule costs 34 octets per packet more.
    limit = 16 * (20 + 8 + 48) * 8
    d3 = t.daemon(limits="limit root with bandwidth=%d\n" % (limit - 1))
    pfs = d3.client_pfs()
    p = t.owping(["-A", "A", "-u", "demo", "-k", pfs, "-t", "-c", "4", "-i", str(GAP), "-L", "1", d3.addr],
                 expect_rc=None)
    check(p.returncode != 0, "owping succeeded over the bandwidth limit")
    check(re.search(r"refused.*permanent resource", p.err), "owping's reason: %r", p.err)
    d3.wait_log(r"bandwidth limit of class root is %d bit/s, 0 in use, %d requested" % (limit - 1, limit))


def case_bandwidth_class(t):
    """The running sessions of a class add up, across connections and
    directions; at the limit of an ancestor too; freed when they end."""
    d = t.daemon(limits="limit root with bandwidth=%d\n"
                        "limit child with parent=root, bandwidth=0\n"
                        "limit capped with parent=root, bandwidth=%d\n"
                        "assign default child\n"
                        "assign net 127.0.0.2/32 capped\n" % (3 * bps(), bps()))
    c1 = RawClient(d).open()
    request(c1, recv_request(c1), ACCEPT_OK, "first session")
    request(c1, send_request(c1), ACCEPT_OK, "second session, the other direction")
    c2 = RawClient(d).open()
    request(c2, recv_request(c2), ACCEPT_OK, "third session, another connection: 3 x the rate fits")
    mark = d.mark()
    # child has no limit of its own (0); root's counts all three.
    request(c2, recv_request(c2), ACCEPT_TEMP, "fourth session over root's limit")
    refusal(d, mark, "child", "bandwidth", "root", 3 * bps())
    d.wait_new(mark, r"%d in use, %d requested" % (3 * bps(), bps()))

    # A session ends (its connection closes): room again.
    c1.close()
    d.wait_log(r"Connection from 127\.0\.0\.1:%d closed" % c1.local[1])
    request(c2, recv_request(c2), ACCEPT_OK, "session after two others ended")
    c2.close()

    # capped's own limit, below root's: one session, not two.
    c3 = RawClient(d, source="127.0.0.2")
    c3.open()
    request(c3, recv_request(c3), ACCEPT_OK, "capped: one session")
    mark = d.mark()
    request(c3, recv_request(c3), ACCEPT_TEMP, "capped: a second one")
    refusal(d, mark, "capped", "bandwidth", "capped", bps())
    c3.close()


# --- disk -------------------------------------------------------------------------

def case_disk(t):
    """A receive session's estimated file against the soft limit: at the
    limit accepted, one octet over refused (4); the stored and reserved data
    of the class add up (5); send sessions cost no disk."""
    d = t.daemon(limits="limit root with disk=%d\n" % disk(10))
    with RawClient(d) as c:
        c.open()
        request(c, recv_request(c, n_packets=10), ACCEPT_OK, "a file of exactly the limit")
        mark = d.mark()
        request(c, recv_request(c, n_packets=1), ACCEPT_TEMP, "a second file next to it")
        refusal(d, mark, "root", "disk", "root", disk(10))
        d.wait_new(mark, r"%d in use, %d requested" % (disk(10), disk(1)))
        request(c, send_request(c, n_packets=1000), ACCEPT_OK, "a send session")

    d2 = t.daemon(limits="limit root with disk=%d\n" % (disk(10) - 1))
    with RawClient(d2) as c:
        c.open()
        mark = d2.mark()
        request(c, recv_request(c, n_packets=10), ACCEPT_PERM, "a file one octet over the limit")
        refusal(d2, mark, "root", "disk", "root", disk(10) - 1)
        request(c, recv_request(c, n_packets=9), ACCEPT_OK, "a smaller one")


def case_disk_restart(t):
    """Stored files count against the disk limit, also after a restart:
    owampd counts what is in its data directory when it starts; and files
    removed behind its back stop counting."""
    limits = "limit root with disk=%d\n" % (2 * disk(10) - 1)
    d = t.daemon(limits=limits)
    t.owping(["-A", "O", "-t", "-c", "10", "-i", "0.01", "-L", "1", d.addr])
    sid = d.received_sids()[0]
    path = d.data_path(sid)
    check_eq(os.path.getsize(path), disk(10), "size of the stored session")
    check_eq(os.path.relpath(path, d.datadir), "hierarchy/root/%s.owp" % sid, "where the session is stored")
    with RawClient(d) as c:
        c.open()
        request(c, recv_request(c, n_packets=10), ACCEPT_TEMP, "a second session next to the stored one")
        request(c, recv_request(c, n_packets=9), ACCEPT_OK, "a smaller one")
    d.stop()

    # The same data directory, a new owampd.
    d2 = t.daemon(limits=limits, args=["-d", d.datadir])
    d2.wait_log(r"Data directory \S+: 1 session file, %d octets" % disk(10))
    with RawClient(d2) as c:
        c.open()
        mark = d2.mark()
        request(c, recv_request(c, n_packets=10), ACCEPT_TEMP, "after the restart")
        refusal(d2, mark, "root", "disk", "root", 2 * disk(10) - 1)
        d2.wait_new(mark, r"%d in use" % disk(10))
    # The file goes (by age, by hand): it stops counting. (owampd counts
    # again before a disk refusal, at most once a second.)
    os.unlink(path)
    time.sleep(1.1)
    with RawClient(d2) as c:
        c.open()
        request(c, recv_request(c, n_packets=10), ACCEPT_OK, "after the stored file was removed")
    # The old session cannot be fetched any more.
    with RawClient(d2) as c:
        c.open()
        ack = c.fetch(bytes.fromhex(sid))[0]
        check_eq(ack["accept"], ACCEPT_FAILURE, "fetch of the removed session")
    d2.stop(check=False)


# --- test_sessions ------------------------------------------------------------

def case_test_sessions(t):
    """Sessions per control connection: the limit's number accepted, the
    next refused (4), a new connection starts again; an ancestor's lower
    limit wins."""
    d = t.daemon(limits="limit root with test_sessions=3\n"
                        "limit small with parent=root, test_sessions=2\n"
                        "limit big with parent=root, test_sessions=10\n"
                        "assign default small\n"
                        "assign net 127.0.0.2/32 big\n")
    for _ in range(2):
        with RawClient(d) as c:
            c.open()
            request(c, recv_request(c), ACCEPT_OK, "first session")
            request(c, send_request(c), ACCEPT_OK, "second session")
            mark = d.mark()
            request(c, recv_request(c), ACCEPT_PERM, "third session")
            refusal(d, mark, "small", "test_sessions", "small", 2)
            d.wait_new(mark, r"on this connection")
    # big allows 10, but root only 3.
    c = RawClient(d, source="127.0.0.2")
    c.open()
    for i in range(3):
        request(c, recv_request(c), ACCEPT_OK, "session %d of big" % (i + 1))
    mark = d.mark()
    request(c, recv_request(c), ACCEPT_PERM, "fourth session of big")
    refusal(d, mark, "big", "test_sessions", "root", 3)
    c.close()

    # owping asks for two sessions (both directions): with a limit of 1
    # the second is refused.
    d2 = t.daemon(limits="limit root with test_sessions=1\n")
    p = t.owping(["-A", "O"] + QUICK + [d2.addr], expect_rc=None)
    check(p.returncode != 0, "owping with two sessions succeeded under test_sessions=1")
    t.owping(["-A", "O", "-t"] + QUICK + [d2.addr])


# --- allow_open_mode ---------------------------------------------------------------

def case_open_mode(t):
    """allow_open_mode=off for one network: its greeting offers A and E
    only, an open Set-Up-Response is refused, owping must authenticate;
    another network keeps open mode."""
    limits = ("limit root with allow_open_mode=on\n"
              "limit closed with parent=root, allow_open_mode=off\n"
              "assign net 127.0.0.2/32 closed\n")
    d = t.daemon(limits=limits)
    check_eq(greeting_from(d, "127.0.0.1")[0], 7, "Modes offered to 127.0.0.1")
    check_eq(greeting_from(d, "127.0.0.2")[0], 6, "Modes offered to 127.0.0.2")
    d.wait_log(r"Not offering open mode to 127\.0\.0\.2:\d+: class closed has allow_open_mode off")

    c = RawClient(d, source="127.0.0.2")
    check_eq(c.setup(mode=1), ACCEPT_FAILURE, "Server-Start to an open Set-Up-Response from 127.0.0.2")
    d.wait_log(r"Refusing 127\.0\.0\.2:\d+: open mode is not allowed for class closed \(allow_open_mode off\)")
    c.close()

    p = t.owping(["-A", "O", "-S", "127.0.0.2"] + QUICK + [d.addr], expect_rc=None)
    check(p.returncode != 0, "owping in open mode from 127.0.0.2 succeeded")
    pfs = d.client_pfs()
    p = t.owping(["-A", "AO", "-u", "demo", "-k", pfs, "-S", "127.0.0.2"] + QUICK + [d.addr])
    check_eq(len(re.findall(r"^5 sent, 0 lost", p.out, re.M)), 2, "authenticated owping from 127.0.0.2")
    p = t.owping(["-A", "O"] + QUICK + [d.addr])
    check_eq(len(re.findall(r"^5 sent, 0 lost", p.out, re.M)), 2, "open owping from 127.0.0.1")

    # Only open mode configured: nothing left for that network, Modes 0.
    d2 = t.daemon(modes="O", limits=limits)
    check_eq(greeting_from(d2, "127.0.0.2")[0], 0, "Modes offered to 127.0.0.2 with authmode O")
    d2.wait_log(r"Refusing connection from 127\.0\.0\.2:\d+: no mode is allowed .*class closed has "
                r"allow_open_mode off")
    check_eq(greeting_from(d2, "127.0.0.1")[0], 1, "Modes offered to 127.0.0.1 with authmode O")


# --- delete_on_fetch ---------------------------------------------------------------

def case_delete_on_fetch(t):
    """A whole-session fetch deletes the file when the class it is stored
    for has delete_on_fetch; a partial fetch does not; without it nothing
    is deleted. Decided by the policy at fetch time."""
    d = t.daemon(limits="limit root with delete_on_fetch=on\n")
    t.owping(["-A", "O", "-t"] + QUICK + [d.addr])  # owping fetches the whole session
    sid = d.received_sids()[0]
    d.wait_log(r"Deleted session %s after its fetch \(delete_on_fetch, class path root\)" % sid)
    check_eq(d.stored(), {}, "data directory after the fetch")
    with RawClient(d) as c:
        c.open()
        check_eq(c.fetch(bytes.fromhex(sid))[0]["accept"], ACCEPT_FAILURE, "fetching it again")

    d2 = t.daemon(limits="limit root with delete_on_fetch=off\n")
    t.owping(["-A", "O", "-t"] + QUICK + [d2.addr])
    sid = d2.received_sids()[0]
    check(sid in d2.stored(), "the session was deleted without delete_on_fetch")
    reload(d2, limits="limit root with delete_on_fetch=on\n")
    with RawClient(d2) as c:
        c.open()
        ack, req, slots, skips, records = c.fetch(bytes.fromhex(sid), 0, 2)
        check_eq((ack["accept"], len(records)), (0, 3), "partial fetch")
        check(sid in d2.stored(), "a partial fetch deleted the session")
        ack, req, slots, skips, records = c.fetch(bytes.fromhex(sid))
        check_eq((ack["accept"], len(records)), (0, 5), "whole fetch")
    d2.wait_log(r"Deleted session %s after its fetch" % sid)
    check_eq(d2.stored(), {}, "data directory after the whole fetch")


# --- reload ----------------------------------------------------------------------

def case_reload(t):
    """A reload that tightens the bandwidth limit refuses the next request
    and leaves the running session alone; a broken file keeps the old
    policy and says where; owampd.conf is re-read too."""
    d = t.daemon(limits="limit root with bandwidth=1M\n")
    # About 8 s of packets, 20 per second.
    p = t.spawn_owping(["-A", "O", "-t", "-c", "160", "-i", "0.05", "-L", "1", d.addr])
    d.wait_log(r"Session [0-9a-f]{32} started \(receiving\)", 15)
    running = 20 * (20 + 8 + 14) * 8  # 6720 bit/s, rounded up by at most 1

    # Broken: the old policy stays, the error names file and line.
    mark = reload(d, limits="limit root with bandwidth=1M\nlimit x with parent=nowhere\n")
    d.wait_new(mark, r"Reload failed: \S+/owampd\.limits:2: .*nowhere.*\(keeping the previous configuration "
                     r"and policy\)")
    with RawClient(d) as c:
        c.open()
        request(c, recv_request(c), ACCEPT_OK, "a request under the old policy")

    # Tightened below what runs plus one more session: refused, temporary.
    reload(d, limits="limit root with bandwidth=%d\n" % (running + bps() - 100))
    with RawClient(d) as c:
        c.open()
        mark = d.mark()
        request(c, recv_request(c), ACCEPT_TEMP, "a request after the reload")
        refusal(d, mark, "root", "bandwidth", "root", running + bps() - 100)

    # The running session was left alone.
    rc = p.wait(30)
    check_eq(rc, 0, "owping of the running session")
    out = open(p.out_path).read()
    check(re.search(r"^160 sent, 0 lost", out, re.M), "the running session's report:\n%s", out)
    check(not re.search(r"Refusing session", d.log()[:d.log().find("Reloaded policy")]), "early refusal")

    # owampd.conf: pbkdf2_count and maxcontrolsessions apply at once; a
    # count below 1024 is refused and the old one stays.
    reload(d, conf="pbkdf2_count 4096\n")
    check_eq(greeting_from(d, "127.0.0.1")[1], 4096, "Count after reloading owampd.conf")
    mark = reload(d, conf="pbkdf2_count 512\n")
    d.wait_new(mark, r"Reload failed: \S+/owampd\.conf:1: ")
    check_eq(greeting_from(d, "127.0.0.1")[1], 4096, "Count after a refused reload")
    # Restart-only settings are said to be so.
    mark = reload(d, conf="pbkdf2_count 4096\nrootfolly\n")
    d.wait_new(mark, r"rootfolly changed in the configuration; it takes effect when owampd restarts")


# --- owampd.conf: maxcontrolsessions, controltimeout, pbkdf2_count ------------------

def case_maxcontrolsessions(t):
    """maxcontrolsessions 2: a third connection gets a greeting with Modes
    0 and is closed; once one closes, the next is served."""
    d = t.daemon(conf="maxcontrolsessions 2\n")
    c1 = RawClient(d)
    c2 = RawClient(d)
    check_eq((c1.modes, c2.modes), (7, 7), "Modes of the first two connections")
    c3 = RawClient(d)
    check_eq(c3.modes, 0, "Modes of the third connection")
    c3.expect_closed()
    d.wait_log(r"Refusing connection from 127\.0\.0\.1:%d: maxcontrolsessions \(2\) reached" % c3.local[1])
    c3.close()
    c1.close()
    d.wait_log(r"Connection from 127\.0\.0\.1:%d closed" % c1.local[1])
    c4 = RawClient(d).open()
    request(c4, recv_request(c4), ACCEPT_OK, "session on the connection after")
    c4.close()
    c2.close()
    p = t.owping(["-A", "O", "-t"] + QUICK + [d.addr])
    check(re.search(r"^5 sent, 0 lost", p.out, re.M), "owping after the refusal")


def case_controltimeout(t):
    """controltimeout 1: a silent connection is closed after about a
    second, before and after Set-Up-Response; one that talks is not."""
    d = t.daemon(conf="controltimeout 1\n")
    t0 = time.monotonic()
    c1 = RawClient(d)  # greeting only
    c2 = RawClient(d).open()
    c1.expect_closed(5)
    c2.expect_closed(5)
    took = time.monotonic() - t0
    check(0.8 <= took < 4, "closed after %.1f s", took)
    for c in (c1, c2):
        d.wait_log(r"Control connection from 127\.0\.0\.1:%d timed out: no message for controltimeout "
                   r"\(1 s\)" % c.local[1])
        c.close()
    # A session of 2 s: the timeout is suspended while it runs.
    p = t.owping(["-A", "O", "-t", "-c", "40", "-i", "0.05", "-L", "1", d.addr])
    check(re.search(r"^40 sent, 0 lost", p.out, re.M), "owping over a 1 s controltimeout:\n%s", p.out)


def run_owampd_expect_failure(t, confdir, want):
    """owampd exits non-zero at start with a message matching want."""
    data = t.path("data-fail")
    os.makedirs(data, exist_ok=True)
    argv = [OWAMPD, "-Z", "-c", confdir, "-d", data, "-R", data, "-S", "127.0.0.1:1"]
    if os.geteuid() == 0:
        argv.append("-f")
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, env=t.env())
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode != 0, "owampd started with %s", confdir)
    check(re.search(want, err), "owampd's message %r does not match /%s/", err, want)


def case_pbkdf2_count(t):
    """pbkdf2_count below 1024 is refused at start-up, naming file and
    line; 1024 is announced as it is."""
    conf = t.path("conf-512")
    os.makedirs(conf)
    with open(os.path.join(conf, "owampd.conf"), "w") as f:
        f.write("# RFC 4656 asks for at least 1024\n\npbkdf2_count 512\n")
    run_owampd_expect_failure(t, conf, r"owampd\.conf:3: .*pbkdf2_count")
    d = t.daemon(conf="pbkdf2_count 1024\n")
    with RawClient(d) as c:
        check_eq(c.count, 1024, "Count in the greeting")


def case_conf_files(t):
    """perfSONAR 5.x's owamp-server.* names when owampd.* are absent; the
    drop-ins in order; the command line over all; an unknown keyword names
    its file and line."""
    d = t.daemon(conf=None, keys={}, files={
        "owamp-server.conf": "pbkdf2_count 4096\nauthmode O\n",
        "owamp-server.limits": "limit root with allow_open_mode=off\n",
        "owamp-server.pfs": "demo\t%s\n" % b"demo-secret".hex(),
        "owampd.conf.d/20-b.conf": "pbkdf2_count 16384\n",
        "owampd.conf.d/10-a.conf": "pbkdf2_count 8192\n",
        "owampd.conf.d/30-c.conf.disabled": "pbkdf2_count 1\n",
    }, modes="AE")
    with RawClient(d) as c:
        check_eq(c.count, 16384, "Count: the last drop-in wins")
        check_eq(c.modes, 6, "Modes: -a AE over authmode O; open mode withdrawn by owamp-server.limits")
    d.wait_log(r"Loaded policy: 1 key from \S+/owamp-server\.pfs, 1 class from \S+/owamp-server\.limits")
    p = t.owping(["-A", "A", "-u", "demo", "-k", d.client_pfs({"demo": b"demo-secret"}), "-t"] + QUICK +
                 [d.addr])
    check(re.search(r"^5 sent, 0 lost", p.out, re.M), "authenticated with owamp-server.pfs")

    conf = t.path("conf-bad")
    os.makedirs(os.path.join(conf, "owampd.conf.d"))
    with open(os.path.join(conf, "owampd.conf"), "w") as f:
        f.write("verbose\n")
    with open(os.path.join(conf, "owampd.conf.d", "50-x.conf"), "w") as f:
        f.write("# a drop-in\ndieby 3\nbogus 1\n")
    run_owampd_expect_failure(t, conf, r"owampd\.conf\.d/50-x\.conf:3: .*bogus")


# --- perfSONAR's files ---------------------------------------------------------------

def case_reference_conf(t):
    """owampd on the owampd.conf and owampd.limits perfSONAR ships (user
    and group owamp, facility local5, verbose, loglocation, testports
    8760-9960, diskfudge 3.0; classes root and regular, 10G and 20M,
    delete_on_fetch): owping works both ways, the data goes to
    hierarchy/root/regular and is deleted once fetched, and more than 20M
    is refused."""
    ref = os.path.join(SOURCE_ROOT, "test", "data", "reference-conf")
    conf = open(os.path.join(ref, "owampd.conf")).read()
    limits = open(os.path.join(ref, "owampd.limits")).read()
    args = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("owamp")
        except KeyError:
            # No owamp account here: name one that exists. The command
            # line wins over the file, as for the reference.
            args = ["-U", "nobody", "-G", "nogroup" if _group_exists("nogroup") else "nobody"]
    d = t.daemon(conf=conf, limits=limits, args=args)
    if args:
        # The unprivileged account writes the data, and must reach it.
        os.chmod(t.tmp, 0o755)
        os.chown(d.datadir, pwd.getpwnam("nobody").pw_uid, -1)
    check(re.search(r"ready: modes OAE, test ports 8760-9960", d.log()), "ready line:\n%s", d.log())
    check(re.search(r"^owampd: src/owampd/\S+\.c:\d+: ", d.log(), re.M), "loglocation has no effect")
    with RawClient(d) as c:
        check_eq((c.modes, c.count), (7, 2048), "greeting")

    p = t.owping(["-A", "O"] + QUICK + [d.addr])
    check_eq(len(re.findall(r"^5 sent, 0 lost", p.out, re.M)), 2, "owping both ways")
    sid = d.received_sids()[0]
    d.wait_log(r"Accepted session %s .* class regular" % sid)
    d.wait_log(r"Deleted session %s after its fetch \(delete_on_fetch, class path root/regular\)" % sid)
    check(os.path.isdir(os.path.join(d.datadir, "hierarchy", "root", "regular")), "no hierarchy/root/regular")
    check_eq(d.stored(), {}, "data directory after owping fetched")
    ports = [int(x) for x in re.findall(r"Accepted session [0-9a-f]{32} .* port (\d+),", d.log())]
    check(ports and all(8760 <= x <= 9960 for x in ports), "test ports %s", ports)

    # 20M for the class: 10,000 packets/s of 250 octets is 20,000,000.
    with RawClient(d) as c:
        c.open()
        fast = lambda pad: make_request(0, 1, (c.local[0], 40000), ("127.0.0.1", 0), n_packets=10,  # noqa: E731
                                        slots=((1, 0.0001),), padding=pad)
        mark = d.mark()
        # (20 + 8 + 14 + 208) x 8 x 10000 = 20,000,000 bit/s, if 0.0001 s
        # were exact; in 32.32 it is a little shorter, so a little more.
        request(c, fast(208), ACCEPT_PERM, "20 Mbit/s and a little")
        refusal(d, mark, "regular", "bandwidth", "regular", 20000000)
        request(c, fast(200), ACCEPT_OK, "a little under 20 Mbit/s")


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


CASES = {
    "bandwidth-session": case_bandwidth_session,
    "bandwidth-class": case_bandwidth_class,
    "disk": case_disk,
    "disk-restart": case_disk_restart,
    "test-sessions": case_test_sessions,
    "open-mode": case_open_mode,
    "delete-on-fetch": case_delete_on_fetch,
    "reload": case_reload,
    "maxcontrolsessions": case_maxcontrolsessions,
    "controltimeout": case_controltimeout,
    "pbkdf2-count": case_pbkdf2_count,
    "conf-files": case_conf_files,
    "reference-conf": case_reference_conf,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
