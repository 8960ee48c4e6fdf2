#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What owping and owampd do when a client may not test: wrong
pass-phrase, unknown key id, no common mode. Each refusal ends owping with
a non-zero status and one line on stderr, owampd logs why, and the next
client is served."""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import RawClient, check, check_eq, main  # noqa: E402

QUICK = ["-c", "5", "-i", "0.01", "-L", "1"]


def check_refused(p, pattern):
    """owping failed, with exactly one line of stderr matching pattern."""
    check(p.returncode != 0, "owping succeeded")
    lines = p.err.strip("\n").split("\n")
    check_eq(len(lines), 1, "lines on owping's stderr (%r)" % p.err)
    check(re.search(pattern, lines[0]), "owping's reason %r does not match /%s/", lines[0], pattern)
    check_eq(p.out, "", "owping's stdout")


def check_serves(t, d, mode="O"):
    """A normal, short owping still works."""
    auth = [] if mode == "O" else ["-u", "demo", "-k", d.client_pfs()]
    p = t.owping(["-A", mode] + auth + QUICK + [d.addr])
    check_eq(len(re.findall(r"^5 sent, 0 lost", p.out, re.M)), 2, "clean reports after the refusals")


def case_auth(t):
    d = t.daemon()
    wrong = d.client_pfs({"demo": b"not-the-secret"})
    p = t.owping(["-A", "A", "-u", "demo", "-k", wrong] + QUICK + [d.addr], expect_rc=None)
    check_refused(p, r"^owping: .*refused.*wrong key id or passphrase")
    d.wait_log(r"Refusing 127\.0\.0\.1:\d+: authentication failed for key id 'demo' \(wrong passphrase\)")

    # Only a source's first failure of each authfailwindow is logged as
    # itself (the others are counted: test-hostile.py, auth-backoff), so
    # the unknown key id goes to a server of its own.
    d2 = t.daemon()
    stranger = d2.client_pfs({"stranger": b"demo-secret"})
    p = t.owping(["-A", "E", "-u", "stranger", "-k", stranger] + QUICK + [d2.addr], expect_rc=None)
    check_refused(p, r"^owping: .*refused.*wrong key id or passphrase")
    d2.wait_log(r"Refusing 127\.0\.0\.1:\d+: authentication failed for key id 'stranger' \(unknown key id\)")

    # A key id that is not in the client's own file never reaches the server.
    p = t.owping(["-A", "A", "-u", "nobody-here", "-k", wrong] + QUICK + [d.addr], expect_rc=None)
    check_refused(p, r"^owping: Unable to find pass-phrase for id=\"nobody-here\"")

    # The refused connections are gone and the next client is served.
    check_eq(len(re.findall(r"Connection from \S+ closed", d.log())), 2, "connections closed (probe + 1 refused)")
    check_eq(len(re.findall(r"Connection from \S+ closed", d2.log())), 2, "connections closed (probe + 1 refused)")
    check_serves(t, d, "A")
    check_eq(len(d.received_sids()), 1, "sessions received")


def case_modes(t):
    open_only = t.daemon(modes="O")
    auth_only = t.daemon(modes="AE")
    pfs = open_only.client_pfs()

    # Server O, client AE: the client finds no common mode and leaves after
    # the greeting; owampd sees a peer that never answered.
    p = t.owping(["-A", "AE", "-u", "demo", "-k", pfs] + QUICK + [open_only.addr], expect_rc=None)
    check_refused(p, r"^owping: .*no common mode: server offers O, we allow AE")
    open_only.wait_log(r"Peer 127\.0\.0\.1:\d+ closed the connection without answering the greeting", count=2)

    # Server AE, client O.
    p = t.owping(["-A", "O"] + QUICK + [auth_only.addr], expect_rc=None)
    check_refused(p, r"^owping: .*no common mode: server offers AE, we allow O")
    auth_only.wait_log(r"Peer 127\.0\.0\.1:\d+ closed the connection without answering the greeting", count=2)

    # A client that picks a mode it was not offered gets Accept 1
    # (the reference lets it through, PROTOCOL.md 3.2).
    with RawClient(open_only) as c:
        check_eq(c.modes, 1, "modes offered by owampd -a O")
        check_eq(c.setup(mode=2, keyid=b"demo"), 1, "Server-Start Accept for a mode not offered")
        c.expect_closed()
    open_only.wait_log(r"Refusing 127\.0\.0\.1:\d+: mode A was not offered \(offered 0x1\)")
    with RawClient(auth_only) as c:
        check_eq(c.modes, 6, "modes offered by owampd -a AE")
        check_eq(c.setup(mode=1), 1, "Server-Start Accept for open mode from an AE server")
        c.expect_closed()
    auth_only.wait_log(r"Refusing 127\.0\.0\.1:\d+: mode O was not offered \(offered 0x6\)")

    check_serves(t, open_only, "O")
    check_serves(t, auth_only, "E")


CASES = {
    "auth": case_auth,
    "modes": case_modes,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
