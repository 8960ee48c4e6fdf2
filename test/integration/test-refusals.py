#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What owping and owampd do when a client may not test: wrong
pass-phrase, unknown key id, no common mode, a test endpoint that is not
the requesting host. Each refusal ends owping with a non-zero status and
one line on stderr (or gives the raw client its Accept code), owampd logs
why, and the next client is served."""

import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import RawClient, Failure, Skip, check, check_eq, log, main  # noqa: E402

IT_REQUEST = os.environ.get("OWAMP_IT_REQUEST", "")
ACCEPT_OK, ACCEPT_FAILURE = 0, 1  # PROTOCOL.md 5.2

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


def it_request(t, d, mode, source, endpoint, direction):
    """One Request-Session from source whose client endpoint is endpoint
    (owamp-it-request); returns the Accept code."""
    argv = [IT_REQUEST, "--server", d.addr, "--source", source, "--mode", mode, "--endpoint", endpoint,
            "--direction", direction]
    if mode != "O":
        argv += ["--keyid", "demo", "--secret", "demo-secret"]
    log("$ %s", " ".join(argv))
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, env=t.env())
    out, err = p.stdout.decode(), p.stderr.decode()
    if p.returncode != 0:
        raise Failure("owamp-it-request failed (%d): %s" % (p.returncode, err))
    m = re.fullmatch(r"accept (\d+)\n", out)
    check(m, "owamp-it-request's output %r", out)
    return int(m.group(1))


def need_loopback_aliases():
    """127.0.0.2 and .3 are loopback on Linux (127.0.0.0/8) without set-up."""
    import socket
    for a in ("127.0.0.2", "127.0.0.3"):
        try:
            with socket.socket() as s:
                s.bind((a, 0))
        except OSError as e:
            raise Skip("cannot bind %s: %s" % (a, e))
    if not IT_REQUEST or not os.access(IT_REQUEST, os.X_OK):
        raise Failure("OWAMP_IT_REQUEST is not set to an executable (run through meson test)")


def case_foreign_endpoint(t):
    """Issue 11 item 7: in every mode the session's far endpoint must be the
    control connection's peer. A client on 127.0.0.2 asking owampd to send
    to, or receive from, 127.0.0.3 is refused with Accept 1 and a journal
    line; its own address is accepted. allow_foreign_endpoint=on lets a
    class do it, except that open mode never sends to another host."""
    need_loopback_aliases()
    d = t.daemon()
    for mode in ("O", "A", "E"):
        for direction, role in (("from", "receiver"), ("to", "sender")):
            mark = d.mark()
            got = it_request(t, d, mode, "127.0.0.2", "127.0.0.3", direction)
            check_eq(got, ACCEPT_FAILURE, "mode %s, owampd %s 127.0.0.3: Accept" % (
                mode, "sending to" if direction == "from" else "receiving from"))
            if mode == "O" and direction == "from":
                d.wait_new(mark, r"Refusing session [0-9a-f]{32} from 127\.0\.0\.2:\d+: open mode, and the "
                                 r"receiver 127\.0\.0\.3:9 is not the requesting host$")
            else:
                d.wait_new(mark, r"Refusing session [0-9a-f]{32} from 127\.0\.0\.2:\d+ \(class default\): the "
                                 r"%s 127\.0\.0\.3:9 is not the requesting host \(allow_foreign_endpoint is off\)$"
                           % role)
            # Its own address is fine.
            check_eq(it_request(t, d, mode, "127.0.0.2", "127.0.0.2", direction), ACCEPT_OK,
                     "mode %s, %s, the client's own address: Accept" % (mode, direction))
    accepted = [line for line in d.log().splitlines() if "Accepted session" in line]
    check_eq(len(accepted), 6, "sessions accepted (the client's own address, 3 modes x 2 directions)")
    check_eq([line for line in accepted if "127.0.0.3" in line], [], "sessions with 127.0.0.3 accepted")
    check_serves(t, d, "E")

    # A class that may: its clients in modes A and E both ways, in open
    # mode only to receive; other classes still may not.
    d2 = t.daemon(limits="limit root with allow_foreign_endpoint=off\n"
                         "limit third with parent=root, allow_foreign_endpoint=on\n"
                         "assign default root\n"
                         "assign net 127.0.0.2/32 third\n")
    for mode in ("O", "A", "E"):
        for direction in ("from", "to"):
            want = ACCEPT_FAILURE if (mode, direction) == ("O", "from") else ACCEPT_OK
            check_eq(it_request(t, d2, mode, "127.0.0.2", "127.0.0.3", direction), want,
                     "class third, mode %s, %s 127.0.0.3: Accept" % (mode, direction))
            check_eq(it_request(t, d2, mode, "127.0.0.1", "127.0.0.3", direction), ACCEPT_FAILURE,
                     "class root, mode %s, %s 127.0.0.3: Accept" % (mode, direction))
    d2.wait_log(r"from 127\.0\.0\.1:\d+ \(class root\): the sender 127\.0\.0\.3:9 is not the requesting host")


CASES = {
    "auth": case_auth,
    "modes": case_modes,
    "foreign-endpoint": case_foreign_endpoint,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
