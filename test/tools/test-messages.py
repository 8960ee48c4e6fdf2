#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What owampd and owping say where a new user used to be misled (issue 12):

- owampd's policy line names a file only when it was read: "0 keys (there
  is no DIR/owampd.pfs)", not "from DIR/owampd.pfs";
- a pass-phrase file others may read (or write) is refused (issue 11
  item 6): owampd does not start, naming the file and its mode, and a
  reload keeps the previous policy; with allowinsecurepfs in owampd.conf
  it is used with a warning naming it and its mode, at start and on a
  reload; 0640 and 0600 get neither;
- the ready line says "test ports ephemeral", not "0-0";
- owamp-server.pid and owamp-server.info are in -R while owampd runs
  (the pid its own, the START= line the NTP time owup reports) and gone
  after a clean stop;
- owping -u without -k and without a terminal says that -k or a terminal
  is needed, and does not connect.
"""

import os
import re
import signal
import socket
import subprocess
import shutil
import tempfile
import time

import owtest

c = owtest.Checker("messages")
tmp = tempfile.mkdtemp(prefix="owtools-messages.")


class Daemon:
    def __init__(self, name, conf_files=None, args=()):
        self.dir = os.path.join(tmp, name)
        self.conf = os.path.join(self.dir, "conf")
        self.var = os.path.join(self.dir, "var")
        for d in (self.conf, self.var):
            os.makedirs(d)
        for fname, (text, mode) in (conf_files or {}).items():
            path = os.path.join(self.conf, fname)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, mode)
        self.port = owtest.free_port()
        self.log = os.path.join(self.dir, "owampd.log")
        argv = [owtest.prog("owampd"), "-Z", "-c", self.conf, "-d", self.var, "-R", self.var,
                "-S", f"127.0.0.1:{self.port}"] + list(args)
        if os.geteuid() == 0:
            argv.append("-f")  # stay root: the files in -R can be removed
        with open(self.log, "w") as logf:
            self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=owtest.base_env())
        self.wait_log(r"ready:")

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, count=1, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(re.findall(pattern, self.text(), re.M)) >= count:
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        c.fail(f"owampd log never had {pattern!r} {count} time(s):\n{self.text()}")
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


PFS = "testuser\t" + b"testsecret".hex() + "\n"
try:
    # No files at all: nothing read is named as a source.
    d = Daemon("empty", args=["-P", "0"])
    conf = re.escape(d.conf)
    c.check(re.search(rf"Loaded policy: 0 keys \(there is no {conf}/owampd\.pfs\), 1 class \(the default, "
                      rf"open to all: there is no {conf}/owampd\.limits\)$", d.text(), re.M),
            f"no files: the policy line says they are not there:\n{d.text()}")
    c.check(" from " + d.conf not in d.text(), "no files: no 'from <file>'")
    c.check(re.search(r"ready: modes OAE, test ports ephemeral \(the kernel's choice\), ", d.text()),
            f"-P 0: 'test ports ephemeral':\n{d.text()}")
    c.check("0-0" not in d.text(), "-P 0: no '0-0'")

    # The reference's pid and info files, while it runs and after.
    pid_path, info_path = os.path.join(d.var, "owamp-server.pid"), os.path.join(d.var, "owamp-server.info")
    # Written just after the ready line.
    for _ in range(200):
        if os.path.exists(info_path) and os.path.getsize(info_path) > 0:
            break
        time.sleep(0.05)
    with open(pid_path) as f:
        c.eq(f.read(), f"{d.proc.pid}\n", "owamp-server.pid: owampd's pid")
    with open(info_path) as f:
        info = f.read()
    c.check(re.fullmatch(rf"START=\d{{20}}\nPID={d.proc.pid}\n", info), f"owamp-server.info: {info!r}")
    c.eq(d.stop(), 0, "SIGTERM: a clean stop")
    c.eq(sorted(os.listdir(d.var)), [], "after a clean stop: no owamp-server.pid or .info left in -R")

    # Files present: named as sources; a range of ports as a range.
    d = Daemon("present", {"owampd.pfs": (PFS, 0o640),
                           "owampd.limits": ("limit root with allow_open_mode=on\nassign default root\n", 0o644)},
               args=["-P", "18760-18770"])
    c.check(re.search(rf"Loaded policy: 1 key from {re.escape(d.conf)}/owampd\.pfs, 1 class from "
                      rf"{re.escape(d.conf)}/owampd\.limits$", d.text(), re.M), f"files: named:\n{d.text()}")
    c.check("test ports 18760-18770," in d.text(), "-P range: as given")
    c.check("readable by others" not in d.text() and "writable by others" not in d.text(),
            "pfs 0640: no warning")

    # Made readable by others, then writable: each reload refused, the
    # previous policy kept (still one key: an empty file would have none).
    pfs = os.path.join(d.conf, "owampd.pfs")
    for mode, word in [(0o644, "readable"), (0o602, "writable"), (0o606, "readable and writable")]:
        os.chmod(pfs, mode)
        with open(pfs, "w") as f:
            f.write("")  # would be 0 keys if it were loaded
        before = len(re.findall(r"Reload failed", d.text()))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"Reload failed", before + 1)
        tail = d.text().split("Reload failed")[-1]
        c.check(re.search(rf"^: {re.escape(pfs)}: is {word} by others \(mode {mode:04o}\): refusing to use its "
                          r"pass-phrases; make it private \(chown root:owamp; chmod 0640\) or set allowinsecurepfs "
                          r"in owampd\.conf \(keeping the previous configuration and policy\)$", tail, re.M),
                f"pfs {mode:04o}: the refusal names the file and its mode:\n{tail}")
        c.check(d.proc.poll() is None, f"pfs {mode:04o}: owampd still runs")
        with open(pfs, "w") as f:
            f.write(PFS)
    os.chmod(pfs, 0o600)
    before = len(re.findall(r"Reloaded policy", d.text()))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"Reloaded policy: 1 key from", before + 1)
    c.check("by others" not in d.text().split("Reloaded policy")[-1], "pfs 0600: no warning")
    c.eq(d.stop(), 0, "present: clean stop")

    # With allowinsecurepfs: loaded, and a warning on every reload.
    d = Daemon("allowed", {"owampd.pfs": (PFS, 0o640), "owampd.conf": ("allowinsecurepfs\n", 0o644)})
    pfs = os.path.join(d.conf, "owampd.pfs")
    for mode, word, n in [(0o644, "readable", 1), (0o606, "writable", 1), (0o600, None, 0)]:
        os.chmod(pfs, mode)
        before = len(re.findall(r"Reloaded policy", d.text()))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"Reloaded policy: 1 key", before + 1)
        tail = d.text().split("Reloaded policy")[-1]
        if word:
            c.check(re.search(rf"{re.escape(pfs)} is {word} by others \(mode {mode:04o}\): anyone on this host can "
                              r"\w+ the pass-phrases \(allowinsecurepfs is set\); make it root:owamp and mode 0640",
                              tail),
                    f"pfs {mode:04o}: the warning names the file and its mode:\n{tail}")
        else:
            c.check("by others" not in tail, f"pfs {mode:04o}: no warning:\n{tail}")
    c.eq(d.stop(), 0, "allowed: clean stop")

    # At start: refused, with the file and its mode, and exit status 1.
    conf = os.path.join(tmp, "loose", "conf")
    var = os.path.join(tmp, "loose", "var")
    os.makedirs(conf)
    os.makedirs(var)
    with open(os.path.join(conf, "owampd.pfs"), "w") as f:
        f.write(PFS)
    os.chmod(os.path.join(conf, "owampd.pfs"), 0o644)
    argv = [owtest.prog("owampd"), "-Z", "-c", conf, "-d", var, "-R", var, "-S", f"127.0.0.1:{owtest.free_port()}"]
    if os.geteuid() == 0:
        argv.append("-f")
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=owtest.base_env(), timeout=30)
    err = p.stderr.decode(errors="replace")
    c.eq(p.returncode, 1, f"pfs 0644 at start: exit status; stderr:\n{err}")
    c.check(re.search(rf"{re.escape(conf)}/owampd\.pfs: is readable by others \(mode 0644\): refusing", err),
            f"pfs 0644 at start: the refusal names the file and its mode:\n{err}")
    c.check("ready:" not in err, f"pfs 0644 at start: never ready:\n{err}")

    # At start with allowinsecurepfs: a warning, and it runs.
    d = Daemon("loose-allowed", {"owampd.pfs": (PFS, 0o644), "owampd.conf": ("allowinsecurepfs\n", 0o644)})
    c.check(re.search(rf"{re.escape(d.conf)}/owampd\.pfs is readable by others \(mode 0644\)", d.text()),
            f"pfs 0644 at start with allowinsecurepfs: a warning:\n{d.text()}")
    c.check(re.search(r"Loaded policy: 1 key from", d.text()), f"pfs 0644 with allowinsecurepfs: loaded:\n{d.text()}")
    d.stop()

    # owping -u without -k, without a terminal (a session of its own, stdin
    # empty): it says what to do and does not connect.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    p = subprocess.run([owtest.prog("owping"), "-A", "A", "-u", "alice", f"127.0.0.1:{port}"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       start_new_session=True, env=owtest.base_env(), timeout=60)
    err = p.stderr.decode()
    c.eq(p.returncode, 1, "owping -u, no -k, no terminal: exit 1")
    c.check(re.fullmatch(r'owping: Unable to read the pass-phrase for id="alice": there is no terminal to ask on '
                         r"and nothing came on standard input; give a pass-phrase file with -k FILE \(owampd\.pfs\(5\) "
                         r"format\), run owping on a terminal, or pipe the pass-phrase in\n", err),
            f"owping -u, no -k, no terminal: says what is needed: {err!r}")
    try:
        conn, _ = listener.accept()
        conn.close()
        c.fail("owping -u without a pass-phrase connected anyway")
    except socket.timeout:
        pass
    listener.close()

    # A pass-phrase on standard input is taken (the connection is then
    # tried: nobody listens on port 1).
    p = subprocess.run([owtest.prog("owping"), "-A", "A", "-u", "alice", "127.0.0.1:1"], input=b"secret\n",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                       env=owtest.base_env(), timeout=60)
    c.check(b"pass-phrase" not in p.stderr and b"Unable to open control connection" in p.stderr,
            f"owping -u, pass-phrase on stdin: taken ({p.stderr!r})")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

c.done()
