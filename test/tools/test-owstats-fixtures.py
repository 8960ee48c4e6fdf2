#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every owstats run of MANIFEST.md section 5, by OUR owstats program.

For each row: the same options and the same .owp file(s) (bare names, run
in the fixture folder, TZ=UTC LC_ALL=C); stdout must be byte-identical to
the fixture, stderr to its *.stderr.txt (or empty), and the exit status
the one listed. 127.0.0.1 must read as "localhost" (see owtest.localize()).
"""

import owtest

c = owtest.Checker("owstats fixtures")
owtest.announce_resolver()

rows = owtest.manifest_owstats_rows()
c.check(len(rows) == 263, f"MANIFEST.md section 5 has {len(rows)} owstats rows, expected 263")

for out, sources, options, status, err in rows:
    rc, stdout, stderr = owtest.run("owstats", options + sources, cwd=owtest.FIXTURES)
    what = f"owstats {' '.join(options + sources)}"
    c.eq(rc, status, f"{what}: exit status")
    c.eq(stdout, owtest.localize(owtest.fixture(out)), f"{what}: stdout vs {out}")
    want_err = owtest.fixture(err) if err else b""
    c.eq(stderr, want_err, f"{what}: stderr" + (f" vs {err}" if err else ""))

c.done()
