#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""owping <-> owampd on loopback: modes, directions, address families,
schedules, padding, DSCP; what owping prints and saves against what owampd
stored."""

import os
import re
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import (RawClient, Skip, check, check_clean_session, check_eq, check_raw_matches,  # noqa: E402
                    ipv6_loopback_available, main, ntp_from_seconds, ntp_to_seconds, parse_raw,
                    parse_summaries, read_owp)

COUNT = 20
# -L 1: a one-second loss threshold keeps each run near 3.5 s.
BASE = ["-c", str(COUNT), "-i", "0.01", "-L", "1"]


def auth_args(d, mode):
    return [] if mode == "O" else ["-u", "demo", "-k", d.client_pfs()]


def check_server_sessions(d, to_sids, from_sids, n=COUNT):
    """owampd's log: the sessions it accepted, ran and settled."""
    text = d.log()
    for sid in to_sids:
        check(re.search(r"Accepted session %s from \S+: receiving %d packets" % (sid, n), text),
              "owampd did not log receiving session %s", sid)
        check(re.search(r"Session %s finished: %d received, 0 lost, 0 duplicates; dropped 0 from wrong source, "
                        r"0 failing authentication, 0 short, 0 out of range, 0 out of time" % (sid, n), text),
              "owampd did not log a clean receive for %s:\n%s", sid, text)
        check(re.search(r"Session %s data stored: %d records, next seqno %d, 0 skip ranges" % (sid, n, n), text),
              "owampd did not store %s", sid)
    for sid in from_sids:
        check(re.search(r"Accepted session %s from \S+: sending %d packets" % (sid, n), text),
              "owampd did not log sending session %s", sid)
        check(re.search(r"Session %s finished: %d sent, 0 skipped as late, next seqno %d" % (sid, n, n), text),
              "owampd did not log a clean send for %s", sid)
    check_eq(sorted(set(d.received_sids())), sorted(to_sids), "sessions owampd received")


def check_files_agree(d, to_file, n=COUNT):
    """owping -T's file is what owampd stored: same request, same records."""
    to = read_owp(to_file)
    sid = to.request.sid.hex()
    check_eq(to.finished, 1, "-T file finished")
    check_eq(to.next_seqno, n, "-T file Next Seqno")
    check_clean_session(to.records, n, "-T file")
    stored = read_owp(d.data_path(sid))
    check_eq(stored.finished, 1, "owampd's data file finished")
    check_eq(stored.next_seqno, n, "owampd's data file Next Seqno")
    check_eq([r.key() for r in stored.records], [r.key() for r in to.records], "owampd's records vs -T records")
    check_eq(stored.request.__dict__, to.request.__dict__, "owampd's stored request vs -T request")
    check_eq(stored.slots, to.slots, "owampd's stored slots vs -T slots")
    return to, stored


def run_both(t, d, mode, extra=()):
    """A bidirectional owping; checks the reports, files and logs."""
    to_path, from_path = t.path("to-%s.owp" % mode), t.path("from-%s.owp" % mode)
    p = t.owping(["-A", mode] + auth_args(d, mode) + BASE + list(extra) + ["-T", to_path, "-F", from_path, d.addr])
    sums = parse_summaries(p.out)
    check_eq(len(sums), 2, "session reports printed")
    for s in sums:
        check_eq((s["sent"], s["lost"], s["dups"]), (COUNT, 0, 0), "sent/lost/duplicates in report %s" % s["sid"])
        check("hops = 0 (consistently)" in s["block"], "report does not say 'hops = 0': %s", s["block"])
        check("no reordering" in s["block"], "report shows reordering: %s", s["block"])
    to, stored = check_files_agree(d, to_path)
    frm = read_owp(from_path)
    check_eq(frm.finished, 1, "-F file finished")
    check_eq(frm.next_seqno, COUNT, "-F file Next Seqno")
    check_clean_session(frm.records, COUNT, "-F file")
    # The "to" report comes first, as the reference prints it.
    check_eq(sums[0]["sid"], to.request.sid.hex(), "SID of the first report")
    check_eq(sums[1]["sid"], frm.request.sid.hex(), "SID of the second report")
    check_eq((to.request.conf_sender, to.request.conf_receiver), (0, 1), "-T request Conf flags")
    check_eq((frm.request.conf_sender, frm.request.conf_receiver), (1, 0), "-F request Conf flags")
    check_eq(to.request.start_time, frm.request.start_time, "both sessions' Start Time")
    check_server_sessions(d, [to.request.sid.hex()], [frm.request.sid.hex()])
    d.quiesce()
    return p, to, frm


def case_mode(mode, text):
    def run(t):
        d = t.daemon()
        run_both(t, d, mode)
        check(re.search(r"Accepted connection from 127\.0\.0\.1:\d+, mode %s%s" % (
            text, "" if mode == "O" else ", key id demo"), d.log()), "owampd did not log mode %s", text)
    return run


def case_to_only(t):
    d = t.daemon()
    path = t.path("to.owp")
    p = t.owping(["-A", "O"] + BASE + ["-t", "-R", "-T", path, d.addr])
    raw = parse_raw(p.out)
    to, _ = check_files_agree(d, path)
    check_raw_matches(raw, to.records, "-R output vs -T file")
    check_server_sessions(d, [to.request.sid.hex()], [])
    check("sending" not in d.log(), "owampd ran a sending session for owping -t")


def case_from_only(t):
    d = t.daemon()
    path = t.path("from.owp")
    p = t.owping(["-A", "O"] + BASE + ["-f", "-R", "-F", path, d.addr])
    raw = parse_raw(p.out)
    frm = read_owp(path)
    check_eq((frm.finished, frm.next_seqno), (1, COUNT), "-F file finished/Next Seqno")
    check_clean_session(frm.records, COUNT, "-F file")
    check_raw_matches(raw, frm.records, "-R output vs -F file")
    check_server_sessions(d, [], [frm.request.sid.hex()])
    check("Fetch" not in d.log() and "fetched" not in d.log(), "owping -f fetched something")


def case_ipv6(t):
    if not ipv6_loopback_available():
        raise Skip("::1 is not available")
    d = t.daemon(family=socket.AF_INET6)
    p, to, frm = run_both(t, d, "O")
    for f, what in ((to, "-T"), (frm, "-F")):
        check_eq(f.request.ipvn, 6, "%s request IPVN" % what)
        check_eq((f.request.addr_str(f.request.sender_addr), f.request.addr_str(f.request.receiver_addr)),
                 ("::1", "::1"), "%s request addresses" % what)
        # The receiver's SID starts with the last 4 octets of its IPv6
        # address (PROTOCOL.md 2.3).
        check_eq(f.request.sid[:4], b"\0\0\0\1", "%s SID address part" % what)
    check(re.search(r"Accepted connection from ::1:\d+|Accepted connection from \[::1\]:\d+", d.log()),
          "owampd did not log an IPv6 peer")


def case_slots(t):
    d = t.daemon()
    _, to, frm = run_both(t, d, "O", ["-i", "0.01,0.02f"])
    want = [(0, ntp_from_seconds(0.01)), (1, ntp_from_seconds(0.02))]
    for f, what in ((to, "-T"), (frm, "-F"), (read_owp(d.data_path(to.request.sid.hex())), "owampd's")):
        check_eq(f.request.n_slots, 2, "%s request slot count" % what)
        check_eq(f.slots, want, "%s slots" % what)
    # Gap k uses slot k mod 2 (PROTOCOL.md 8.1): every odd gap is the fixed
    # 20 ms, whatever the exponential draws.
    for f, what in ((to, "to"), (frm, "from")):
        odd = [ntp_to_seconds(f.records[i].send_time - f.records[i - 1].send_time)
               for i in range(1, COUNT) if i % 2 == 1]
        off = sorted(abs(g - 0.02) for g in odd)
        check(off[len(off) // 2] < 0.001, "%s session: odd gaps are not 20 ms: %s", what,
              ["%.4f" % g for g in odd])


def case_padding(t):
    d = t.daemon()
    _, to, frm = run_both(t, d, "O", ["-s", "100"])
    stored = read_owp(d.data_path(to.request.sid.hex()))
    for f, what in ((to, "-T"), (frm, "-F"), (stored, "owampd's")):
        check_eq(f.request.padding, 100, "%s request Padding Length" % what)
    check(re.search(r"Accepted session %s .* padding 100," % to.request.sid.hex(), d.log()),
          "owampd did not log padding 100 for the receive session")
    check(re.search(r"Accepted session %s .* padding 100," % frm.request.sid.hex(), d.log()),
          "owampd did not log padding 100 for the send session")


def case_dscp(t):
    d = t.daemon()
    _, to, frm = run_both(t, d, "O", ["-D", "ef"])
    stored = read_owp(d.data_path(to.request.sid.hex()))
    for f, what in ((to, "-T"), (frm, "-F"), (stored, "owampd's")):
        check_eq(f.request.type_p, 46 << 24, "%s request Type-P (DSCP EF)" % what)
    check_eq(len(re.findall(r"Accepted session [0-9a-f]{32} .* DSCP 46,", d.log())), 2,
             "owampd's log of DSCP 46 sessions")


def case_fetch(t):
    """A second connection fetches what owping saw: the same records."""
    d = t.daemon()
    path = t.path("to.owp")
    p = t.owping(["-A", "O"] + BASE + ["-t", "-R", "-T", path, d.addr])
    raw = parse_raw(p.out)
    to, stored = check_files_agree(d, path)
    sid = to.request.sid
    with RawClient(d) as c:
        c.open()
        ack, req, slots, skips, records = c.fetch(sid)
        check_eq(ack, {"accept": 0, "finished": 1, "next_seqno": COUNT, "n_skips": 0, "n_records": COUNT},
                 "Fetch-Ack")
        got = dict(req.__dict__)
        want = dict(to.request.__dict__)
        check_eq(got.pop("command"), 1, "fetched request command")
        want.pop("command")
        check_eq(got, want, "fetched request vs -T file")
        check_eq(slots, to.slots, "fetched slots")
        check_eq(skips, [], "fetched skip ranges")
        check_eq([r.key() for r in records], [r.key() for r in to.records], "fetched records vs -T file")
        check_raw_matches(raw, records, "owping -R vs fetched records")

        # A range, then the whole session again: repeatable.
        ack, _, _, _, part = c.fetch(sid, 5, 9)
        check_eq((ack["accept"], ack["n_records"]), (0, 5), "Fetch-Ack of records 5..9")
        check_eq([r.key() for r in part], [r.key() for r in to.records[5:10]], "records 5..9")
        ack, _, _, _, again = c.fetch(sid)
        check_eq([r.key() for r in again], [r.key() for r in records], "second whole fetch")

        # An unknown SID is refused, and the connection stays usable.
        ack, *_ = c.fetch(b"\x7f\0\0\1" + os.urandom(12))
        check_eq(ack["accept"], 1, "Fetch-Ack Accept for an unknown SID")
        ack, *_ = c.fetch(sid, 0, 0)
        check_eq((ack["accept"], ack["n_records"]), (0, 1), "Fetch-Ack of record 0 after a refusal")
    d.wait_log(r"Refusing fetch of session [0-9a-f]{32} by \S+: no such session")
    d.wait_log(r"Session %s fetched by \S+: records 5\.\.9, 5 records" % sid.hex())


def case_pacing(t):
    """OWAMP_PACING=efficient (sleep-only senders) on both sides: sessions as
    clean; an unknown value is refused with a warning and the session runs."""
    os.environ["OWAMP_PACING"] = "efficient"
    d = t.daemon(env={"OWAMP_PACING": "efficient"})
    run_both(t, d, "O")
    os.environ["OWAMP_PACING"] = "fast"
    p = t.owping(["-A", "O"] + BASE + ["-t", d.addr])
    check("OWAMP_PACING=fast is neither precise nor efficient: pacing precisely" in p.err,
          "no warning for OWAMP_PACING=fast:\n%s", p.err)
    check_eq([(s["sent"], s["lost"]) for s in parse_summaries(p.out)], [(COUNT, 0)], "report with OWAMP_PACING=fast")


CASES = {
    "mode-O": case_mode("O", "open"),
    "mode-A": case_mode("A", "authenticated"),
    "mode-E": case_mode("E", "encrypted"),
    "to-only": case_to_only,
    "from-only": case_from_only,
    "ipv6": case_ipv6,
    "slots": case_slots,
    "padding": case_padding,
    "dscp": case_dscp,
    "fetch": case_fetch,
    "pacing": case_pacing,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
