# SPDX-License-Identifier: Apache-2.0
"""
The integration tests' harness: runs the real owampd, owping and
owamp-session on loopback and checks what they leave behind.

Python 3 standard library only. Every wait is bounded in time and every
loop in count; traffic stays on 127.0.0.1 / ::1.

  Test        one test case: a temporary directory, the processes it
              started, the checks run when it ends
  Daemon      one owampd -Z with its own conf/data/var directories and a
              free control port
  RawClient   a minimal OWAMP-Control client in open mode (PROTOCOL.md), for
              what owping cannot send: garbage, truncated messages, fetches
              from a second connection, test sessions whose packets the test
              itself sends or receives
  parse_owp / parse_raw / parse_summaries   what the programs write

Each test script calls main(CASES): `test-x.py NAME` runs one case (what
meson does), `test-x.py` runs them all. Exit 0 = pass, 77 = skip, 1 = fail.
"""

import ctypes
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True

EXIT_SKIP = 77

OWAMPD = os.environ.get("OWAMPD", "")
OWPING = os.environ.get("OWPING", "")
WORKER = os.environ.get("OWAMP_SESSION_WORKER", "")
SOURCE_ROOT = os.environ.get("OWAMP_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BUILD_ROOT = os.environ.get("OWAMP_BUILD_ROOT", "")

# What any sanitizer prints; on the stderr of any process it fails the test.
SANITIZER_RE = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: \w*Sanitizer|runtime error:|"
    r"UndefinedBehaviorSanitizer|LeakSanitizer has encountered")

NTP_UNIX_OFFSET = 2208988800  # 1900-01-01 to 1970-01-01, PROTOCOL.md 2.1

PR_SET_CHILD_SUBREAPER = 36


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg, *args):
    if not cond:
        raise Failure(msg % args if args else msg)


def check_eq(got, want, what):
    if got != want:
        raise Failure("%s: got %r, want %r" % (what, got, want))


def log(msg, *args):
    print(("# " + msg) % args if args else "# " + msg, flush=True)


def wait_for(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns a true value, at most timeout seconds.
    what: for the failure message; a callable is asked then."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        v = pred()
        if v:
            return v
        n += 1
        if time.monotonic() >= deadline or n > timeout / interval + 100:
            raise Failure("timed out after %.1f s waiting for %s" % (timeout, what() if callable(what) else what))
        time.sleep(interval)


def check_sanitizers(who, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    m = SANITIZER_RE.search(text)
    if m:
        start = max(0, m.start() - 200)
        raise Failure("sanitizer report in %s's stderr:\n%s" % (who, text[start:start + 4000]))


# --- Time -------------------------------------------------------------------

def ntp_now():
    ns = time.time_ns() + NTP_UNIX_OFFSET * 10**9
    return ((ns // 10**9) << 32) | (((ns % 10**9) << 32) // 10**9)


def ntp_from_seconds(s):
    return int(s * (1 << 32))


def ntp_to_seconds(t):
    return t / float(1 << 32)


def errest_seconds(e):
    """Error estimate (PROTOCOL.md 2.2) in seconds."""
    scale = (e >> 8) & 0x3F
    mult = e & 0xFF
    return mult * 2.0 ** (scale - 32)


# --- Processes --------------------------------------------------------------

def proc_children(pid):
    """PIDs whose parent is pid, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return sorted(out)


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "?"


def proc_fds(pid):
    """{fd: target} of a process."""
    out = {}
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            out[int(name)] = os.readlink(os.path.join(d, name))
        except OSError:
            pass
    return out


def become_subreaper():
    """Orphaned grandchildren (workers of a killed owping) come back to us,
    so we can see whether they end and reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_tcp_port(family):
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --- Test -------------------------------------------------------------------

class Test:
    """One case: a temporary directory and everything started in it. end()
    runs the checks every test shares: each daemon stops cleanly, nothing
    is left running."""

    def __init__(self, name):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="owamp-it-%s." % name)
        self.daemons = []
        self.popens = []
        self.keep = os.environ.get("OWAMP_IT_KEEP") == "1"  # keep the files of passing cases too

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def daemon(self, **kw):
        d = Daemon(self, **kw)
        self.daemons.append(d)
        d.start()
        return d

    def env(self, extra=None):
        env = dict(os.environ)
        env["OWAMP_SESSION_WORKER"] = WORKER
        env["LC_ALL"] = "C"
        env["TZ"] = "UTC"
        env.pop("NOTIFY_SOCKET", None)
        env.pop("INVOCATION_ID", None)
        env.pop("LISTEN_FDS", None)
        env.pop("LISTEN_PID", None)
        if extra:
            env.update(extra)
        return env

    def owping(self, args, timeout=60, expect_rc=0):
        """Run owping to completion; its stdout/stderr in the result."""
        argv = [OWPING] + list(args)
        log("$ %s", " ".join(argv))
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                               env=self.env(), cwd=self.tmp)
        except subprocess.TimeoutExpired as e:
            raise Failure("owping did not finish within %d s; stderr:\n%s" % (
                timeout, (e.stderr or b"").decode("utf-8", "replace")))
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        check_sanitizers("owping", err)
        if expect_rc is not None and (p.returncode != 0) != (expect_rc != 0):
            raise Failure("owping exited with %d (want %s)\nstdout:\n%s\nstderr:\n%s" % (
                p.returncode, "0" if expect_rc == 0 else "non-zero", out, err))
        p.out, p.err = out, err
        return p

    def spawn_owping(self, args):
        """Start owping in the background (stdout and stderr to files)."""
        argv = [OWPING] + list(args)
        log("$ %s &", " ".join(argv))
        n = len(self.popens)
        out = open(self.path("owping-%d.out" % n), "wb")
        err = open(self.path("owping-%d.err" % n), "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=self.env(),
                             cwd=self.tmp)
        out.close()
        err.close()
        p.out_path = out.name
        p.err_path = err.name
        self.popens.append(p)
        return p

    def leftover_processes(self):
        """Our children that no Popen of ours owns: orphans reparented to us."""
        mine = {p.pid for p in self.popens if p.returncode is None}
        mine |= {d.proc.pid for d in self.daemons if d.proc and d.proc.returncode is None}
        return [pid for pid in proc_children(os.getpid()) if pid not in mine]

    def reap_orphans(self, timeout):
        """Wait (bounded) for orphans to exit; reap them. Returns those still
        running."""
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.02) + 10):
            alive = []
            for pid in self.leftover_processes():
                if proc_state(pid) == "Z":
                    try:
                        os.waitpid(pid, 0)
                    except ChildProcessError:
                        pass
                else:
                    alive.append(pid)
            if not alive or time.monotonic() >= deadline:
                return alive
            time.sleep(0.02)
        return self.leftover_processes()

    def end(self, ok):
        errors = []
        for p in self.popens:
            if p.poll() is None:
                errors.append("owping %d still running" % p.pid)
                p.kill()
                p.wait(5)
        for d in self.daemons:
            try:
                d.stop(check=ok)
            except Failure as e:
                errors.append(str(e))
        left = self.reap_orphans(5)
        if left:
            errors.append("processes left behind: " + ", ".join(
                "%d (%s)" % (pid, proc_cmdline(pid)) for pid in left))
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.reap_orphans(2)
        if ok and not errors and not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log("files kept in %s", self.tmp)
        if errors:
            raise Failure("; ".join(errors))


# --- owampd -------------------------------------------------------------------

class Daemon:
    """owampd -Z on loopback with its own directories and a free port."""

    def __init__(self, test, modes="OAE", keys=None, family=socket.AF_INET, conf="", limits=None,
                 args=(), files=None, env=None, wrapper=()):
        self.test = test
        self.modes = modes
        self.keys = {"demo": b"demo-secret"} if keys is None else keys
        self.family = family
        self.conf_text = conf
        self.limits = limits
        self.extra_args = list(args)
        # More files for the configuration directory, by name (owampd.conf.d/x.conf,
        # owamp-server.limits, ...); conf=None writes no owampd.conf.
        self.files = dict(files or {})
        self.env = dict(env or {})  # more environment for owampd (OWAMP_DEBUG_*)
        # A command that execs owampd in the same process (prlimit --nofile=N:N --).
        self.wrapper = list(wrapper)
        n = len(test.daemons)
        self.dir = test.path("owampd-%d" % n)
        self.confdir = os.path.join(self.dir, "conf")
        self.datadir = os.path.join(self.dir, "data")
        self.vardir = os.path.join(self.dir, "var")
        self.log_path = os.path.join(self.dir, "owampd.log")
        self.proc = None
        self.port = None
        self.baseline_fds = None
        self.stopped = False
        self.n_pfs = 0

    @property
    def host(self):
        return "::1" if self.family == socket.AF_INET6 else "127.0.0.1"

    @property
    def addr(self):
        """The server as owping takes it."""
        if self.family == socket.AF_INET6:
            return "[::1]:%d" % self.port
        return "127.0.0.1:%d" % self.port

    def write_pfs(self, path, keys):
        with open(path, "w") as f:
            for k, v in keys.items():
                f.write("%s\t%s\n" % (k, v.hex()))
        os.chmod(path, 0o600)

    def client_pfs(self, keys=None):
        """A pass-phrase file for owping -k."""
        self.n_pfs += 1
        path = os.path.join(self.dir, "client-%d.pfs" % self.n_pfs)
        self.write_pfs(path, self.keys if keys is None else keys)
        return path

    def start(self):
        for d in (self.confdir, self.datadir, self.vardir):
            os.makedirs(d, exist_ok=True)
        if self.keys:
            self.write_pfs(os.path.join(self.confdir, "owampd.pfs"), self.keys)
        if self.conf_text is not None:
            with open(os.path.join(self.confdir, "owampd.conf"), "w") as f:
                f.write(self.conf_text)
        if self.limits is not None:
            with open(os.path.join(self.confdir, "owampd.limits"), "w") as f:
                f.write(self.limits)
        for name, text in self.files.items():
            os.makedirs(os.path.dirname(os.path.join(self.confdir, name)), exist_ok=True)
            with open(os.path.join(self.confdir, name), "w") as f:
                f.write(text)
            if name.endswith(".pfs"):
                os.chmod(os.path.join(self.confdir, name), 0o600)  # owampd refuses one others can read

        # The port is free when we look; another test may take it before
        # owampd binds, so try a few.
        for attempt in range(5):
            self.port = free_tcp_port(self.family)
            argv = self.wrapper + [OWAMPD, "-Z", "-c", self.confdir, "-d", self.datadir, "-R", self.vardir,
                    "-S", ("[::1]:%d" if self.family == socket.AF_INET6 else "127.0.0.1:%d") % self.port,
                    "-a", self.modes] + self.extra_args
            if os.geteuid() == 0:
                argv.append("-f")
            log("$ %s", " ".join(argv))
            with open(self.log_path, "ab") as logf, open(os.path.join(self.dir, "owampd.out"), "ab") as outf:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=outf, stderr=logf,
                                             env=self.test.env(self.env), cwd=self.dir)
            try:
                wait_for(lambda: self.proc.poll() is not None or
                         re.search(r"^owampd: (\S+:\d+: )?owampd \S+ ready:", self.log(), re.M),
                         20, "owampd to be ready")
            except Failure:
                self.proc.kill()
                self.proc.wait(5)
                raise Failure("owampd did not get ready:\n" + self.log())
            if self.proc.poll() is None:
                log("owampd is pid %d (test pid %d)", self.proc.pid, os.getpid())
                break
            if "Cannot listen" in self.log() and attempt < 4:
                log("port %d was taken; trying another", self.port)
                continue
            raise Failure("owampd exited with %d at start:\n%s" % (self.proc.returncode, self.log()))
        check_sanitizers("owampd", self.log())

        # sd-event creates some fds lazily (the CLOCK_MONOTONIC timerfd on the
        # first connection's timer): take the baseline after one connection.
        with socket.create_connection((self.host, self.port), timeout=5) as s:
            s.settimeout(5)
            check_eq(len(recv_exact(s, 64, 5)), 64, "greeting length")
        self.wait_log(r"Connection from \S+ closed", 5)
        # The line is written just before the connection's socket is
        # closed: the same table twice in a row, 50 ms apart.
        prev = None
        for _ in range(40):
            now = proc_fds(self.proc.pid)
            if now == prev:
                break
            prev = now
            time.sleep(0.05)
        self.baseline_fds = now

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=10, count=1):
        """Wait until pattern (a regex) matches count times in the log."""
        rx = re.compile(pattern, re.M)
        return wait_for(lambda: len(rx.findall(self.log())) >= count, timeout,
                        lambda: "owampd log line /%s/ x%d; log:\n%s" % (pattern, count, self.log()[-3000:]))

    def mark(self):
        """Where the log ends now, for wait_new()."""
        return len(self.log_bytes())

    def log_bytes(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def wait_new(self, mark, pattern, timeout=10):
        """Wait until pattern matches in what was logged after mark."""
        rx = re.compile(pattern, re.M)
        new = lambda: self.log_bytes()[mark:].decode("utf-8", "replace")  # noqa: E731
        return wait_for(lambda: rx.search(new()), timeout,
                        lambda: "owampd log line /%s/; new lines:\n%s" % (pattern, new()[-3000:]))

    def children(self):
        return proc_children(self.proc.pid)

    def received_sids(self):
        """SIDs of every session this server accepted as receiver."""
        return re.findall(r"Accepted session ([0-9a-f]{32}) from \S+: receiving", self.log())

    def stored(self):
        """{SID: path} of every session file in the data directory
        (<datadir>/hierarchy/<class path>/<SID>.owp, docs/notes/policy.md)."""
        found = {}
        for top, dirs, names in os.walk(os.path.join(self.datadir, "hierarchy")):
            for name in names:
                if re.fullmatch(r"[0-9a-f]{32}\.owp", name):
                    found[name[:32]] = os.path.join(top, name)
        return found

    def data_path(self, sid):
        """Where owampd keeps the session it received: the file in its
        class's directory (the first class, "default", when not stored)."""
        return self.stored().get(sid, os.path.join(self.datadir, "hierarchy", "default", sid + ".owp"))

    def quiesce(self, timeout=10):
        """Wait until every worker has ended and the fds are back to the
        baseline; fail with the details otherwise."""
        def settled():
            return not self.children() and len(proc_fds(self.proc.pid)) == len(self.baseline_fds)
        try:
            wait_for(settled, timeout, "owampd to settle")
        except Failure:
            now = proc_fds(self.proc.pid)
            extra = {k: v for k, v in now.items() if self.baseline_fds.get(k) != v}
            raise Failure("owampd did not settle within %.0f s: children %s, fds %d (baseline %d), "
                          "new fds %s" % (timeout, [(c, proc_cmdline(c)) for c in self.children()],
                                          len(now), len(self.baseline_fds), extra))

    def kill(self):
        """SIGKILL, as a crash: no clean-up of any kind. Its workers (now
        the test's, as a subreaper) are left to notice on their own."""
        check(self.proc and self.proc.poll() is None, "owampd is not running")
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)
        self.stopped = True
        check_sanitizers("owampd (or one of its workers)", self.log())

    def stop(self, check=True, settle=True):
        """SIGTERM, bounded wait; the checks every test shares. settle:
        first wait until no session runs (false: stop in the middle)."""
        if self.stopped or not self.proc:
            return
        self.stopped = True
        if self.proc.poll() is not None:
            why = ""
            if re.search(r"^owampd: owampd stopping \(signal", self.log(), re.M):
                why = " - it was signalled, and not by this test: another process on this machine?"
            raise Failure("owampd died during the test (status %d)%s:\n%s" % (
                self.proc.returncode, why, self.log()[-3000:]))
        problems = []
        if check and settle:
            try:
                self.quiesce()
            except Failure as e:
                problems.append(str(e))
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise Failure("owampd did not exit within 15 s of SIGTERM")
        text = self.log()
        check_sanitizers("owampd (or one of its workers)", text)
        if rc != 0:
            problems.append("owampd exited with status %d after SIGTERM:\n%s" % (rc, text[-3000:]))
        if not re.search(r"^owampd: (\S+:\d+: )?owampd stopping \(signal 15\)", text, re.M):
            problems.append("owampd did not log its stop")
        with open(os.path.join(self.dir, "owampd.out"), "rb") as f:
            out = f.read()
        if out:
            problems.append("owampd wrote to stdout: %r" % out[:200])
        if check:
            # Only the data files of sessions it received and started, less
            # those deleted by policy (delete_on_fetch, the disk hard
            # limit), nothing else.
            started = set(re.findall(r"Session ([0-9a-f]{32}) started \(receiving\)", text))
            deleted = set(re.findall(r"Delet(?:ed|ing the data of) session ([0-9a-f]{32})", text))
            want = sorted(started - deleted)
            stored = self.stored()
            got = sorted(stored)
            if got != want:
                problems.append("data directory holds %s, want %s" % (got, want))
            others = sorted(set(os.listdir(self.datadir)) - {"hierarchy"})
            if others:
                problems.append("data directory holds %s besides hierarchy/" % others)
            for sid in got:
                try:
                    parse_owp(open(stored[sid], "rb").read())
                except Failure as e:
                    problems.append("%s does not parse: %s" % (stored[sid], e))
        if problems:
            raise Failure("; ".join(problems))


# --- .owp files, owping output ---------------------------------------------------

REQUEST_FMT = ">BBBBIIHH16s16s16sIQQI8s16s"  # PROTOCOL.md 5.1, 112 octets
RECORD_FMT = ">IHHQQB"  # PROTOCOL.md 5.7, 25 octets


class Request:
    def __init__(self, data):
        check(len(data) >= 112, "Request-Session shorter than 112 octets")
        (self.command, ipvn, self.conf_sender, self.conf_receiver, self.n_slots, self.n_packets,
         self.sender_port, self.receiver_port, saddr, raddr, self.sid, self.padding, self.start_time,
         self.timeout, self.type_p, self.mbz, self.hmac) = struct.unpack(REQUEST_FMT, data[:112])
        self.ipvn = ipvn & 0x0F
        alen = 4 if self.ipvn == 4 else 16
        self.sender_addr = saddr[:alen]
        self.receiver_addr = raddr[:alen]

    def addr_str(self, a):
        return socket.inet_ntop(socket.AF_INET if len(a) == 4 else socket.AF_INET6, a)

    @property
    def dscp(self):
        return (self.type_p >> 24) & 0x3F


class Record:
    __slots__ = ("seq", "send_err", "recv_err", "send_time", "recv_time", "ttl")

    def __init__(self, data):
        (self.seq, self.send_err, self.recv_err, self.send_time, self.recv_time,
         self.ttl) = struct.unpack(RECORD_FMT, data)

    def key(self):
        return (self.seq, self.send_err, self.recv_err, self.send_time, self.recv_time, self.ttl)

    @property
    def lost(self):
        return self.recv_time == 0

    def __repr__(self):
        return "Record%r" % (self.key(),)


def parse_slots(data, n):
    out = []
    for i in range(n):
        t, param = struct.unpack(">B7xQ", data[16 * i:16 * i + 16])
        out.append((t, param))
    return out


class OwpFile:
    pass


def parse_owp(data):
    """A version 3 .owp file (PROTOCOL.md 11)."""
    check(len(data) >= 40, "shorter than its header")
    (magic, version, finished, next_seqno, n_skips, n_records, skips_off,
     recs_off) = struct.unpack(">4sIIIIIQQ", data[:40])
    check_eq(magic, b"OwA\0", "magic")
    check_eq(version, 3, "version")
    check(finished in (0, 1, 2), "finished %d", finished)
    f = OwpFile()
    f.finished, f.next_seqno, f.stored_n_records = finished, next_seqno, n_records
    f.request = Request(data[40:152])
    check(f.request.hmac == b"\0" * 16, "the stored request's HMAC field is not zero")
    n = f.request.n_slots
    check(1 <= n <= 16384, "slot count %d", n)
    hdr_end = 152 + 16 * n + 16
    check(len(data) >= hdr_end, "truncated in the slots")
    f.slots = parse_slots(data[152:], n)
    check(data[152 + 16 * n:hdr_end] == b"\0" * 16, "the block after the slots is not zero")
    check(recs_off >= hdr_end and recs_off <= len(data), "records offset %d", recs_off)
    if finished == 1:
        count = n_records
    elif skips_off > recs_off:
        count = (skips_off - recs_off) // 25
    else:
        count = (len(data) - recs_off) // 25
    check(recs_off + 25 * count <= len(data), "%d records do not fit", count)
    f.records = [Record(data[recs_off + 25 * i:recs_off + 25 * i + 25]) for i in range(count)]
    f.skips = []
    if n_skips:
        check(skips_off >= hdr_end and skips_off + 8 * n_skips <= len(data), "skip ranges offset")
        f.skips = [struct.unpack(">II", data[skips_off + 8 * i:skips_off + 8 * i + 8]) for i in range(n_skips)]
    if finished == 1:
        areas = sorted([(recs_off, recs_off + 25 * count), (skips_off, skips_off + 8 * n_skips)])
        if n_skips == 0:
            areas = [(recs_off, recs_off + 25 * count)]
        for (a, b), (c, _) in zip(areas, areas[1:]):
            check(b <= c, "records and skip ranges overlap")
        check(areas[-1][1] == len(data), "%d trailing octets after the data", len(data) - areas[-1][1])
    return f


def read_owp(path):
    with open(path, "rb") as f:
        return parse_owp(f.read())


RAW_RE = re.compile(r"^(\d+) (\d{20}) ([01]) (\S+) (\d{20}) ([01]) (\S+) (\d+)$")


def parse_raw(text):
    """owping -R: "SEQNO STIME SS SERR RTIME RS RERR TTL" per line."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        check(len(line.split()) == 8, "raw line without 8 fields: %r", line)
        m = RAW_RE.match(line)
        check(m is not None, "malformed raw line: %r", line)
        g = m.groups()
        out.append({"seq": int(g[0]), "send_time": int(g[1]), "send_sync": int(g[2]),
                    "send_err": float(g[3]), "recv_time": int(g[4]), "recv_sync": int(g[5]),
                    "recv_err": float(g[6]), "ttl": int(g[7])})
    return out


def check_raw_matches(raw, records, what):
    """The -R lines say exactly what the records hold."""
    check_eq(len(raw), len(records), "%s: raw lines vs records" % what)
    for line, rec in zip(raw, records):
        check_eq((line["seq"], line["send_time"], line["recv_time"], line["ttl"]),
                 (rec.seq, rec.send_time, rec.recv_time, rec.ttl), "%s: raw line for seq %d" % (what, rec.seq))
        check_eq(line["send_sync"], rec.send_err >> 15, "%s: SS of seq %d" % (what, rec.seq))
        check_eq(line["recv_sync"], rec.recv_err >> 15, "%s: RS of seq %d" % (what, rec.seq))
        for field, e in (("send_err", rec.send_err), ("recv_err", rec.recv_err)):
            want = errest_seconds(e)
            check(abs(line[field] - want) <= want * 1e-5, "%s: %s of seq %d is %g, want %g",
                  what, field, rec.seq, line[field], want)


SUMMARY_RE = re.compile(
    r"^--- owping statistics from \[([^\]]+)\]:(\d+) to \[([^\]]+)\]:(\d+) ---\n"
    r"SID:\t([0-9a-f]{32})\n"
    r"(?:first:\t\S+\nlast:\t\S+\n)?"
    r"(\d+) sent, (\d+) lost \(([\d.]+)%\), (\d+) duplicates\n", re.M)


def parse_summaries(text):
    """owping's default report: one dict per session block."""
    out = []
    for m in SUMMARY_RE.finditer(text):
        g = m.groups()
        out.append({"from": g[0], "from_port": int(g[1]), "to": g[2], "to_port": int(g[3]), "sid": g[4],
                    "sent": int(g[5]), "lost": int(g[6]), "loss_pct": float(g[7]), "dups": int(g[8]),
                    "block": text[m.start():text.find("\n\n", m.start())]})
    return out


def check_clean_session(records, n, what, ttl=255):
    """N records, seq 0..N-1 in order, nothing lost, sane delays."""
    check_eq(len(records), n, "%s: number of records" % what)
    check_eq([r.seq for r in records], list(range(n)), "%s: sequence numbers" % what)
    for r in records:
        check(not r.lost, "%s: seq %d lost on loopback", what, r.seq)
        check(r.send_err & 0xFF and r.recv_err & 0xFF, "%s: seq %d has an invalid error estimate", what, r.seq)
        delay = ntp_to_seconds(r.recv_time - r.send_time) if r.recv_time >= r.send_time else \
            -ntp_to_seconds(r.send_time - r.recv_time)
        check(0 <= delay < 0.5, "%s: seq %d one-way delay %.6f s on loopback", what, r.seq, delay)
        check_eq(r.ttl, ttl, "%s: TTL of seq %d" % (what, r.seq))
    times = [r.send_time for r in records]
    check(times == sorted(times), "%s: send times not increasing", what)


# --- A raw OWAMP-Control client (open mode) ---------------------------------

def recv_exact(sock, n, timeout):
    """n octets, or fewer if the peer closed first; bounded in time."""
    deadline = time.monotonic() + timeout
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure("timed out reading %d octets (got %d)" % (n, len(buf)))
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def ipv4_bytes(a):
    return socket.inet_pton(socket.AF_INET, a)


def make_request(conf_sender, conf_receiver, sender, receiver, n_packets=10, slots=((1, 0.01),),
                 sid=b"\0" * 16, padding=0, start=None, timeout=1.0, type_p=0, ipvn=None, n_slots=None):
    """Request-Session (PROTOCOL.md 5.1) with zero HMACs, as open mode sends
    it. sender/receiver: (address, port); slots: (type, seconds)."""
    fam = socket.AF_INET6 if ":" in sender[0] else socket.AF_INET
    if ipvn is None:
        ipvn = 6 if fam == socket.AF_INET6 else 4
    saddr = socket.inet_pton(fam, sender[0]).ljust(16, b"\0")
    raddr = socket.inet_pton(fam, receiver[0]).ljust(16, b"\0")
    if start is None:
        start = ntp_now() + ntp_from_seconds(1.0)
    pre = struct.pack(REQUEST_FMT, 1, ipvn, conf_sender, conf_receiver,
                      len(slots) if n_slots is None else n_slots, n_packets, sender[1], receiver[1],
                      saddr, raddr, sid, padding, start, ntp_from_seconds(timeout), type_p, b"\0" * 8,
                      b"\0" * 16)
    body = b"".join(struct.pack(">B7xQ", t, ntp_from_seconds(v)) for t, v in slots)
    return pre + body + b"\0" * 16


def make_stop_sessions(sessions=(), accept=0):
    """Stop-Sessions (PROTOCOL.md 5.4): sessions = [(sid, next_seqno, [(first, last), ...])]."""
    out = struct.pack(">BBHI8x", 3, accept, 0, len(sessions))
    for sid, next_seqno, skips in sessions:
        rec = struct.pack(">II", next_seqno, len(skips)) + b"".join(struct.pack(">II", a, b) for a, b in skips)
        rec += b"\0" * (-len(rec) % 16)
        out += sid + rec
    return out + b"\0" * 16


def parse_stop_sessions(data):
    cmd, accept, n = struct.unpack(">BBxxI", data[:8])
    return cmd, accept, n


class RawClient:
    """OWAMP-Control in open mode, spoken by hand (no crypto needed: open
    mode sends HMAC fields as zeros and encrypts nothing, PROTOCOL.md 4.1)."""

    def __init__(self, daemon, timeout=10, source=None):
        """source: connect from this local address (another loopback
        address, for policies by network)."""
        self.daemon = daemon
        self.timeout = timeout
        self.sock = socket.create_connection((daemon.host, daemon.port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.local = self.sock.getsockname()
        self.greeting = self.recv(64)
        check_eq(len(self.greeting), 64, "Server Greeting length")
        self.modes, = struct.unpack(">I", self.greeting[12:16])
        self.count, = struct.unpack(">I", self.greeting[48:52])

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, n, timeout=None):
        return recv_exact(self.sock, n, timeout or self.timeout)

    def setup(self, mode=1, keyid=b"", token=b"\0" * 64, iv=b"\0" * 16):
        """Set-Up-Response; returns Server-Start's Accept."""
        self.send(struct.pack(">I", mode) + keyid.ljust(80, b"\0") + token + iv)
        ss = self.recv(48)
        check_eq(len(ss), 48, "Server-Start length")
        return ss[15]

    def open(self):
        check_eq(self.setup(), 0, "Server-Start Accept")
        return self

    def request(self, req):
        """Request-Session; returns (accept, port, sid)."""
        self.send(req)
        a = self.recv(48)
        check_eq(len(a), 48, "Accept-Session length")
        accept, port, sid = struct.unpack(">BxH16s", a[:20])
        return accept, port, sid

    def start(self):
        self.send(struct.pack(">B15x", 2) + b"\0" * 16)
        a = self.recv(32)
        check_eq(len(a), 32, "Start-Ack length")
        return a[0]

    def read_stop(self, timeout):
        """The server's Stop-Sessions: (accept, [(sid, next_seqno, skips)])."""
        hdr = self.recv(16, timeout)
        check_eq(len(hdr), 16, "Stop-Sessions header length")
        cmd, accept, n = parse_stop_sessions(hdr)
        check_eq(cmd, 3, "command of the server's message during the test")
        sessions = []
        for _ in range(n):
            head = self.recv(32)
            check_eq(len(head), 32, "Stop-Sessions session record length")
            sid, body = head[:16], head[16:]
            next_seqno, k = struct.unpack(">II", body[:8])
            size = (8 + 8 * k + 15) // 16 * 16
            check(k < 100000, "absurd skip range count %d", k)
            if size > 16:
                body += self.recv(size - 16)
            check_eq(len(body), size, "Stop-Sessions session record length")
            skips = [struct.unpack(">II", body[8 + 8 * i:16 + 8 * i]) for i in range(k)]
            check(body[8 + 8 * k:] == b"\0" * (size - 8 - 8 * k), "Stop-Sessions padding not zero")
            sessions.append((sid, next_seqno, skips))
        check_eq(len(self.recv(16)), 16, "Stop-Sessions HMAC block")
        return accept, sessions

    def fetch(self, sid, begin=0, end=0xFFFFFFFF, timeout=None):
        """Fetch-Session; returns (ack dict, Request, slots, skips, records)."""
        self.send_fetch(sid, begin, end)
        return self.read_fetch(timeout)

    def send_fetch(self, sid, begin=0, end=0xFFFFFFFF):
        self.send(struct.pack(">B7xII16s", 4, begin, end, sid) + b"\0" * 16)

    def read_fetch(self, timeout=None):
        """The answer to send_fetch(): (ack dict, Request, slots, skips, records)."""
        a = self.recv(32, timeout or 45)
        check_eq(len(a), 32, "Fetch-Ack length")
        accept, finished, next_seqno, n_skips, n_records = struct.unpack(">BBxxIII", a[:16])
        ack = {"accept": accept, "finished": finished, "next_seqno": next_seqno, "n_skips": n_skips,
               "n_records": n_records}
        if accept != 0:
            return ack, None, None, None, None
        pre = self.recv(112)
        check_eq(len(pre), 112, "fetched request length")
        req = Request(pre)
        rest = self.recv(16 * req.n_slots + 16)
        slots = parse_slots(rest, req.n_slots)
        skip_len = 8 * n_skips + (-(8 * n_skips) % 16) + 16
        sk = self.recv(skip_len)
        check_eq(len(sk), skip_len, "fetched skip ranges length")
        skips = [struct.unpack(">II", sk[8 * i:8 * i + 8]) for i in range(n_skips)]
        check(sk[8 * n_skips:-16] == b"\0" * (len(sk) - 16 - 8 * n_skips), "skip ranges padding not zero")
        rec_len = 25 * n_records + (-(25 * n_records) % 16) + 16
        rd = self.recv(rec_len, 60)
        check_eq(len(rd), rec_len, "fetched records length")
        records = [Record(rd[25 * i:25 * i + 25]) for i in range(n_records)]
        check(rd[25 * n_records:-16] == b"\0" * (len(rd) - 16 - 25 * n_records), "records padding not zero")
        return ack, req, slots, skips, records

    def expect_closed(self, timeout=5):
        """The server closes: EOF (or a reset) within timeout. Returns
        whatever it still sent."""
        deadline = time.monotonic() + timeout
        got = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("the server did not close the connection within %.0f s" % timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return got
            if not chunk:
                return got
            got += chunk

    def pending(self):
        """Octets the server sent that are waiting to be read (not consumed)."""
        self.sock.setblocking(False)
        try:
            return len(self.sock.recv(65536, socket.MSG_PEEK))
        except BlockingIOError:
            return 0
        finally:
            self.sock.setblocking(True)

    def expect_open(self, wait=0.3):
        """Nothing arrives and the connection stays up for `wait` seconds."""
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(4096)
        except socket.timeout:
            return
        raise Failure("expected silence on an open connection, got %r" % (chunk[:64],))


# --- main ---------------------------------------------------------------------

def main(cases):
    """Run one case (argv[1]) or all of them."""
    become_subreaper()
    for var, what in ((OWAMPD, "OWAMPD"), (OWPING, "OWPING"), (WORKER, "OWAMP_SESSION_WORKER")):
        if not var or not os.access(var, os.X_OK):
            print("%s is not set to an executable (run through meson test)" % what, file=sys.stderr)
            return 1
    names = sys.argv[1:] or list(cases)
    status = 0
    for name in names:
        if name not in cases:
            print("unknown case %r; cases: %s" % (name, ", ".join(cases)), file=sys.stderr)
            return 1
        t = Test(name)
        t0 = time.monotonic()
        ok = False
        try:
            cases[name](t)
            ok = True
        except Skip as e:
            print("SKIP %s: %s" % (name, e))
            try:
                t.end(True)
            except Failure as e2:
                print("FAIL %s: %s" % (name, e2))
                status = 1
                continue
            if len(names) == 1:
                return EXIT_SKIP
            continue
        except Failure as e:
            print("FAIL %s: %s" % (name, e))
            traceback.print_tb(e.__traceback__, limit=-3)
        except Exception:
            print("FAIL %s: unexpected exception" % name)
            traceback.print_exc()
        try:
            t.end(ok)
        except Failure as e:
            print("FAIL %s (at the end): %s" % (name, e))
            ok = False
        print("%s %s (%.1f s)" % ("ok" if ok else "FAIL", name, time.monotonic() - t0), flush=True)
        if not ok:
            status = 1
    return status
