#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The sd-event client (src/shared/client-async.c) against the real owampd,
in each mode: test-client-async --server sets up, requests two sessions at
once, drops the connection, reconnects, runs a whole batch (Request-Session,
Start-Sessions, its own Stop-Sessions, the server's) and fetches the
session owampd received. owampd logs the abandoned pair and the batch."""

import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import Failure, check, check_sanitizers, log, main  # noqa: E402

PROGRAM = os.environ.get("OWAMP_TEST_CLIENT_ASYNC", "")


def run_mode(t, mode):
    d = t.daemon()
    argv = [PROGRAM, "--server", d.addr, "--mode", mode]
    if mode != "O":
        argv += ["--keyid", "demo", "--secret", "demo-secret"]
    mark = d.mark()
    log("$ %s", " ".join(argv))
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, env=t.env(), cwd=t.tmp)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    check_sanitizers("test-client-async", err)
    if p.returncode != 0:
        raise Failure("test-client-async exited with %d\nstdout:\n%s\nstderr:\n%s" % (p.returncode, out, err))
    check("a batch and its fetch" in out, "test-client-async's report: %r", out)
    # The first connection left two sessions behind; the second ran one.
    d.wait_new(mark, r"Accepted connection from 127\.0\.0\.1:\d+, mode %s" % {
        "O": "open", "A": "authenticated", "E": "encrypted"}[mode])
    d.wait_new(mark, r"Session [0-9a-f]{32} abandoned before it ran")
    # Our Stop-Sessions said nothing was sent: no records, one skip range.
    d.wait_new(mark, r"Session [0-9a-f]{32} data stored: 0 records, next seqno 5, 1 skip ranges")
    d.wait_new(mark, r"Session [0-9a-f]{32} fetched by 127\.0\.0\.1:\d+: records 0\.\.4294967295, 0 records")


def case(mode):
    return lambda t: run_mode(t, mode)


CASES = {
    "client-async-O": case("O"),
    "client-async-A": case("A"),
    "client-async-E": case("E"),
}

if __name__ == "__main__":
    if not PROGRAM:
        print("OWAMP_TEST_CLIENT_ASYNC is not set (run through meson test)", file=sys.stderr)
        sys.exit(1)
    sys.exit(main(CASES))
