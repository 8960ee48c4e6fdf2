#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""-h and --version of every program, against the man pages and getopt.

For owping, owstats, owfetch, owup, owampd and owampd-pfstore (and, at the
end, --version and -h of owamp-session and owampd-launcher):

- the options the man page documents (each entry's first line: "*-c*,
  *--count*=_count_" followed by an indented description), the options
  -h mentions and the short options the program takes (asked of getopt:
  every letter and digit, alone, and whether getopt calls it invalid or
  wants an argument for it) are the same sets; every long option of the
  man page and of -h is taken; an option the man page gives an argument
  is one getopt wants an argument for, and the other way round;
- the reference's own usage text (test/data/usage/*-h.reference.txt, what
  perfSONAR owamp 5.2.3 prints; test/data/reference-outputs/owstats-h.txt)
  starts our -h unchanged but for the version number;
- --version prints "<program> <meson.build's version>" on stdout, exit 0.

No option runs anything: clients get no server or file, owampd an extra
argument after "--" that it refuses before it reads any configuration.
"""

import os
import re
import string
import subprocess

import owtest

c = owtest.Checker("usage")
VERSION = os.environ.get("OWAMP_VERSION")
MAN = os.environ.get("MAN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "man"))
USAGE = os.path.join(owtest.DATA, "usage")
SENTINEL = "owamp-test-sentinel"

PROGRAMS = {
    # name: (environment variable, man page, the reference's -h text or None)
    "owping": ("OWPING", "owping.1.scd", os.path.join(USAGE, "owping-h.reference.txt")),
    "owstats": ("OWSTATS", "owstats.1.scd", os.path.join(owtest.FIXTURES, "owstats-h.txt")),
    "owfetch": ("OWFETCH", "owfetch.1.scd", os.path.join(USAGE, "owfetch-h.reference.txt")),
    "owup": ("OWUP", "owup.1.scd", os.path.join(USAGE, "owup-h.reference.txt")),
    "owampd": ("OWAMPD", "owampd.8.scd", None),
    "owampd-pfstore": ("OWAMPD_PFSTORE", "owampd-pfstore.1.scd", None),
}


def run(name, args):
    path = os.environ[PROGRAMS[name][0]]
    p = subprocess.run([path] + args, env=owtest.base_env(OWAMP_SESSION_WORKER="/nonexistent"),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


TOKEN = re.compile(r"\*(--?[A-Za-z0-9][A-Za-z0-9-]*)\*")


def man_options(page):
    """{option: takes a (required) argument} of every entry of the man page."""
    with open(os.path.join(MAN, page)) as f:
        lines = f.read().splitlines()
    opts = {}
    for i, line in enumerate(lines):
        if not line.startswith("*-") or i + 1 >= len(lines) or not lines[i + 1].startswith("\t"):
            continue
        toks = list(TOKEN.finditer(line))
        for j, m in enumerate(toks):
            after = line[m.end():]
            arg = after.startswith(" _") or after.startswith("=_")
            # "*-d*, *--directory*=_dir_": the short form takes what its
            # long form takes.
            if not arg and m.group(1)[1] != "-" and j + 1 < len(toks) and toks[j + 1].group(1).startswith("--"):
                if after.startswith(", *" + toks[j + 1].group(1) + "*"):
                    arg = line[toks[j + 1].end():].startswith("=_")
            opts[m.group(1)] = arg
    return opts


def help_options(text):
    """Every option -h mentions: "-c", "--count", "-v[N]" -> "-v"."""
    found = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[A-Za-z0-9])(?![\w-])", text))
    # "-v[N]", "-f | -F file" and the like are matched too; "low-high",
    # "-gid" and "[A]uthenticated" are not.
    return found


def getopt_says(name, opt):
    """"none" (getopt does not know it), "arg" (it wants an argument) or
    "flag" (taken as it is)."""
    if name == "owampd":
        # owampd stops at its first non-option: "--" is either -x's
        # argument or the end of the options; either way SENTINEL is an
        # argument it refuses, before anything else.
        rc, out, err = run(name, [opt, SENTINEL, "--", "extra"])
        if "invalid option" in err or "unrecognized option" in err:
            return "none"
        if rc == 0:  # -h, --version: done before the rest
            return "flag"
        return "flag" if f"unexpected argument '{SENTINEL}'" in err else "arg"
    rc, out, err = run(name, [opt])
    if "invalid option" in err or "unrecognized option" in err:
        return "none"
    if "requires an argument" in err:
        return "arg"
    return "flag"


for name, (env, page, reference) in PROGRAMS.items():
    if not os.environ.get(env):
        c.fail(f"{env} is not set")
        continue
    man = man_options(page)
    rc, out, err = run(name, ["-h"])
    c.eq(rc, 0, f"{name} -h: exit status")
    text = err if name != "owampd-pfstore" else out
    shown = help_options(text)
    c.check(len(man) >= 5, f"{name}: {len(man)} options found in man/{page}")

    # Short options: man page, -h and getopt agree.
    short_taken = {}
    for ch in string.ascii_letters + string.digits:
        says = getopt_says(name, "-" + ch)
        if says != "none":
            short_taken["-" + ch] = says
    man_short = {o for o in man if not o.startswith("--")}
    shown_short = {o for o in shown if not o.startswith("--")}
    c.eq(sorted(man_short), sorted(short_taken), f"{name}: the short options of man/{page} = those getopt takes")
    c.eq(sorted(shown_short), sorted(short_taken), f"{name}: the short options -h shows = those getopt takes")
    for o, says in sorted(short_taken.items()):
        if o in man:
            c.eq(man[o], says == "arg", f"{name} {o}: an argument in man/{page} as for getopt ({says})")

    # Long options: man page and -h agree (-h prints the getopt table's),
    # and getopt takes each.
    man_long = {o for o in man if o.startswith("--")}
    shown_long = {o for o in shown if o.startswith("--")}
    c.eq(sorted(man_long), sorted(shown_long), f"{name}: the long options of man/{page} = those -h shows")
    for o in sorted(man_long | shown_long):
        says = getopt_says(name, o)
        c.check(says != "none", f"{name} {o}: getopt takes it")
        if o in man:
            c.eq(man[o], says == "arg", f"{name} {o}: an argument in man/{page} as for getopt ({says})")
    c.check("--help" in man_long and "--version" in man_long, f"{name}: --help and --version documented")

    # The reference's text first, unchanged but for the version.
    if reference:
        with open(reference) as f:
            want = f.read()
        m = re.search(r"\nVersion: (\S+)\n\n", text)
        c.check(m is not None, f"{name} -h: a Version line")
        if m:
            got = text[:m.end()].replace("Version: " + m.group(1), "Version: 5.2.3-1")
            c.eq(got, want, f"{name} -h: the reference's usage text first")
            c.check(text[m.end():].startswith("              [More Args]\n\n"), f"{name} -h: then ours")
        c.eq(run(name, ["--help"]), (rc, out, err), f"{name} --help = -h")

    # --version.
    rc, out, err = run(name, ["--version"])
    c.eq((rc, out, err), (0, f"{name} {VERSION}\n", ""), f"{name} --version")

# The programs owampd, owping and the socket units start (no options of
# their own): --version as the others, -h says who starts them, and any
# other argument is refused with exit status 1.
for name, var in (("owamp-session", "OWAMP_SESSION_WORKER"), ("owampd-launcher", "OWAMPD_LAUNCHER")):
    def run_internal(args):
        p = subprocess.run([os.environ[var]] + args, env=owtest.base_env(OWAMP_LOG_STDERR="1"),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    c.eq(run_internal(["--version"]), (0, f"{name} {VERSION}\n", ""), f"{name} --version")
    rc, out, err = run_internal(["-h"])
    c.check(rc == 0 and out.startswith(f"{name}: ") and "not by hand" in out, f"{name} -h: who starts it ({rc}, {out!r})")
    c.eq(run_internal(["--help"]), (rc, out, err), f"{name} --help = -h")
    rc, out, err = run_internal(["--bogus"])
    c.check(rc == 1 and out == "", f"{name} --bogus: refused with exit status 1 ({rc}, {out!r})")

c.done()
