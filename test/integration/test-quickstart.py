#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tools/quickstart, the README's first command, on this build tree: it
runs, prints three reports in modes O, A and E, and stops the daemon
cleanly."""

import os
import re
import socket
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from owtest import BUILD_ROOT, SOURCE_ROOT, Failure, Skip, check, check_eq, check_sanitizers, main  # noqa: E402


def case_quickstart(t):
    script = os.path.join(SOURCE_ROOT, "tools", "quickstart")
    check(os.access(script, os.X_OK), "%s is not executable", script)
    if not BUILD_ROOT:
        raise Skip("OWAMP_BUILD_ROOT is not set")
    if subprocess.run(["sh", "-c", "command -v dpkg-query"], capture_output=True).returncode != 0:
        raise Skip("tools/quickstart needs dpkg-query (Debian) to check its build dependencies")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = t.env({"OWAMP_QUICKSTART_BUILD": BUILD_ROOT, "OWAMP_QUICKSTART_PORT": str(port)})
    argv = [script, "-c", "10", "-i", "0.01", "-L", "1"]
    print("# $ %s" % " ".join(argv), flush=True)
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        raise Failure("tools/quickstart did not finish within 120 s")
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    check_sanitizers("tools/quickstart", out + err)
    check_eq(p.returncode, 0, "tools/quickstart's status; stdout:\n%s\nstderr:\n%s" % (out, err))

    sections = re.split(r"^== ", out, flags=re.M)
    runs = [s for s in sections if s.startswith("owping -A ")]
    check_eq([r.split()[2] for r in runs], ["O", "A", "E"], "owping runs")
    for r in runs:
        reports = re.findall(r"^--- owping statistics from .*\nSID:\t[0-9a-f]{32}\n(?:.*\n){2}"
                             r"10 sent, 0 lost \(0\.000%\), 0 duplicates$", r, re.M)
        check_eq(len(reports), 2, "clean reports in mode %s:\n%s" % (r.split()[2], r))
    check(any(s.startswith("stopping owampd") for s in sections), "quickstart did not stop owampd")
    log = [s for s in sections if s.startswith("owampd log")]
    check_eq(len(log), 1, "owampd log sections")
    for mode in ("open", "authenticated, key id demo", "encrypted, key id demo"):
        check(re.search(r"Accepted connection from 127\.0\.0\.1:\d+, mode %s" % mode, log[0]),
              "owampd did not log a connection in mode %s", mode)
    check(re.search(r"^owampd: owampd stopping \(signal 15\)$", log[0], re.M), "owampd did not log its stop")
    check_eq(len(re.findall(r"data stored: 10 records, next seqno 10, 0 skip ranges", log[0])), 3,
             "sessions owampd stored")


CASES = {
    "quickstart": case_quickstart,
}

if __name__ == "__main__":
    sys.exit(main(CASES))
