#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The programs run from their build tree without OWAMP_SESSION_WORKER
(src/shared/worker-path.h), and say what to do when the worker is missing:

- build-tree owping against build-tree owampd (fork launcher), the
  variable unset: both find BUILD/src/worker/owamp-session, the sessions
  run;
- the same through `meson devenv -C BUILD` (owampd is put on its PATH);
- owping and owampd copied out of the tree, the variable unset and no
  installed worker: the message names the path tried and the three ways
  out.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import owtest

c = owtest.Checker("build tree")
BUILD = os.environ.get("BUILD_ROOT")
tmp = tempfile.mkdtemp(prefix="owtools-buildtree.")
HINT = ("install the project (meson install), run the programs from their build tree (build/src/owping/owping, "
        "or any program in the shell of meson devenv -C build), or set OWAMP_SESSION_WORKER to the path of "
        "owamp-session")


def env_without_worker():
    env = owtest.base_env()
    env.pop("OWAMP_SESSION_WORKER", None)
    return env


class Server:
    """owampd -Z on loopback, started as argv (a build-tree path, or meson
    devenv around it), in a process group of its own."""

    def __init__(self, name, prefix, owampd):
        self.dir = os.path.join(tmp, name)
        os.makedirs(os.path.join(self.dir, "conf"))
        os.makedirs(os.path.join(self.dir, "data"))
        self.port = owtest.free_port()
        self.log = os.path.join(self.dir, "owampd.log")
        argv = prefix + [owampd, "-Z", "-c", os.path.join(self.dir, "conf"), "-d", os.path.join(self.dir, "data"),
                         "-R", self.dir, "-S", f"127.0.0.1:{self.port}"]
        if os.geteuid() == 0:
            argv.append("-f")
        with open(self.log, "w") as logf:
            self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=env_without_worker(),
                                         start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline and self.proc.poll() is None and "ready:" not in self.text():
            time.sleep(0.05)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def owping(prefix, path, port, what):
    p = subprocess.run(prefix + [path, "-c", "5", "-i", "0.01", "-L", "1", f"127.0.0.1:{port}"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env_without_worker(), timeout=120)
    out, err = p.stdout.decode(), p.stderr.decode()
    c.eq(p.returncode, 0, f"{what}: exit status ({err!r})")
    c.eq(len(re.findall(r"^5 sent, 0 lost", out, re.M)), 2, f"{what}: both sessions ran:\n{out}\n{err}")
    return out, err


try:
    c.check(BUILD and os.path.exists(os.path.join(BUILD, "build.ninja")), f"BUILD_ROOT {BUILD!r} is a build tree")
    owampd, ping = owtest.prog("owampd"), owtest.prog("owping")
    c.check(os.path.realpath(owampd).startswith(os.path.realpath(BUILD) + "/"), "owampd is the build tree's")

    # 1. Straight from the build tree.
    s = Server("direct", [], owampd)
    c.check("ready:" in s.text() and "sessions via fork" in s.text(), f"build-tree owampd ready:\n{s.text()}")
    if "ready:" in s.text():
        owping([], ping, s.port, "build-tree owping -> build-tree owampd")
    s.stop()
    c.check("cannot be run" not in s.text(), "build-tree owampd: no complaint about the worker")

    # 2. meson devenv: every program by its name.
    meson = shutil.which("meson")
    if meson:
        dev = [meson, "devenv", "-C", BUILD]
        s = Server("devenv", dev, "owampd")
        c.check("ready:" in s.text(), f"owampd in meson devenv ready:\n{s.text()}")
        if "ready:" in s.text():
            owping(dev, "owping", s.port, "owping in meson devenv -> owampd in meson devenv")
        s.stop()
        p = subprocess.run(dev + ["sh", "-c", "for p in owping owstats owfetch owup owampd owampd-pfstore; do command -v $p; done"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_without_worker(), timeout=60)
        found = p.stdout.decode().split()
        c.eq(len(found), 6, f"meson devenv: every program on PATH ({found})")
        c.check(all(os.path.realpath(f).startswith(os.path.realpath(BUILD) + "/") for f in found),
                "meson devenv: each from the build tree")
    else:
        print("note: meson not on PATH here; meson devenv not tried")

    # 3. Out of the tree, no worker: the message says what to do.
    installed = "/usr/local/libexec/owamp/owamp-session"
    out_dir = os.path.join(tmp, "bin")
    os.makedirs(out_dir)
    for prog in ("owping", "owampd"):
        shutil.copy2(owtest.prog(prog), out_dir)
    s = Server("for-copy", [], owampd)
    p = subprocess.run([os.path.join(out_dir, "owping"), "-c", "2", f"127.0.0.1:{s.port}"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env_without_worker(), timeout=120)
    err = p.stderr.decode()
    s.stop()
    m = re.search(r"^owping: The session worker (\S+) cannot be run \(([^)]*)\): (.*)$", err, re.M)
    if m and os.access(m.group(1), os.X_OK):
        print(f"note: a worker is installed at {m.group(1)}; the missing-worker message is not tried")
    else:
        c.eq(p.returncode, 1, f"owping out of the tree, no worker: exit 1 ({err!r})")
        c.check(m is not None and m.group(3) == HINT, f"owping: names the path and what to do: {err!r}")
        c.check(m is not None and m.group(1).endswith("/owamp/owamp-session") and "/src/worker/" not in m.group(1),
                f"owping out of the tree: the installed path was tried: {err!r}")
        d = Server("copied", [], os.path.join(out_dir, "owampd"))
        d.proc.wait(timeout=30)
        c.eq(d.proc.returncode, 1, "owampd out of the tree, no worker: exit 1")
        c.check(re.search(r"The session worker \S+/owamp/owamp-session cannot be run \(No such file or directory\): "
                          + re.escape(HINT), d.text()), f"owampd: says what to do:\n{d.text()}")

    # OWAMP_SESSION_WORKER still wins.
    s = Server("env-wins", [], owampd)
    env = env_without_worker()
    env["OWAMP_SESSION_WORKER"] = "/nonexistent/owamp-session"
    p = subprocess.run([ping, "-c", "2", f"127.0.0.1:{s.port}"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=120)
    s.stop()
    c.check(b"The session worker /nonexistent/owamp-session cannot be run (No such file or directory)" in p.stderr,
            f"OWAMP_SESSION_WORKER wins over the build tree: {p.stderr!r}")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

c.done()
