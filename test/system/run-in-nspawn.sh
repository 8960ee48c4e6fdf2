#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Runs one system test in a freshly booted systemd container.
#
# Usage: test/system/run-in-nspawn.sh BUILD_DIR TEST_SCRIPT [OUT_DIR]
#
#   BUILD_DIR    a meson build directory configured with --prefix=/usr
#                --sysconfdir=/etc --localstatedir=/var; it is installed with
#                `meson install --destdir` into a staging folder, and the
#                executables built in BUILD_DIR/test/system are offered to the
#                test in /opt/owamp-it/bin
#   TEST_SCRIPT  an executable script; it runs inside the container as root
#                from a copy of its own folder, and should start with
#                `. "$OWAMP_IT_LIB"` (see lib.sh)
#   OUT_DIR      where the results go (default: a temporary folder, removed
#                when the test passes): test.log (the test's output),
#                journal.export and journal.txt (the container's journal at the
#                end of the test), journal/ (the journal files, complete even
#                when the test hangs), console.log (boot and shutdown, colours
#                stripped), failed-units.txt, rc, timings. Must be empty or
#                a previous OUT_DIR of this script; its contents are replaced.
#
# Exit status: the test's (0 pass, 77 skip, anything else fail); 124 when the
# container had to be killed after OWAMP_IT_TIMEOUT_SEC.
#
# A test with the line "# owamp-it: needs the packages" gets the folder
# tools/build-packages made (OWAMP_IT_PACKAGES, default BUILD_DIR/packages)
# in /opt/owamp-it/packages instead of the staged build: nothing of the
# project is installed in its container, the test installs the packages.
#
# Environment: OWAMP_IT_TIMEOUT_SEC (hard limit for the whole container,
# default 300), OWAMP_IT_ROOT_MODE (overlay: boot the cached image with
# --volatile=overlay, the default; copy: extract a private copy per run),
# OWAMP_IT_KEEP_WORK=1 (keep the staging folder), OWAMP_IT_CACHE (see
# rootfs.sh).
#
# Needs root and systemd-nspawn (systemd-container); rootfs.sh needs
# debootstrap and zstd the first time.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
timeout_sec=${OWAMP_IT_TIMEOUT_SEC:-300}
root_mode=${OWAMP_IT_ROOT_MODE:-overlay}
keep_work=${OWAMP_IT_KEEP_WORK:-0}
# Time the container gets to power off after SIGTERM before SIGKILL.
term_grace_sec=15

say() { echo "system-test: $*" >&2; }
die() {
        say "error: $*"
        exit 2
}

now() { date +%s.%N | cut -c1-14; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
        die "usage: $0 BUILD_DIR TEST_SCRIPT [OUT_DIR]"
fi
[ "$(id -u)" = 0 ] || die "must run as root (systemd-nspawn)"
command -v systemd-nspawn >/dev/null || die "systemd-nspawn not found (apt-get install systemd-container)"
case $timeout_sec in
'' | *[!0-9]*) die "OWAMP_IT_TIMEOUT_SEC must be a number of seconds" ;;
esac
[ "$timeout_sec" -ge 30 ] || die "OWAMP_IT_TIMEOUT_SEC must be at least 30"
case $root_mode in
overlay | copy) ;;
*) die "OWAMP_IT_ROOT_MODE must be overlay or copy" ;;
esac

[ -f "$1/build.ninja" ] || die "$1 is not a meson build directory"
build=$(cd "$1" && pwd)
if [ ! -f "$2" ] || [ ! -x "$2" ]; then
        die "$2 is not an executable file"
fi
script_dir=$(cd "$(dirname "$2")" && pwd)
script_name=$(basename "$2")
test_name=${script_name%.sh}
out=${3:-}

# The image installs into /, so the build must agree with it.
prefixes=$(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["sysconfdir"], o["localstatedir"])')
[ "$prefixes" = "/usr /etc /var" ] ||
        die "$build has prefix/sysconfdir/localstatedir '$prefixes'; configure it with" \
                "--prefix=/usr --sysconfdir=/etc --localstatedir=/var"

# A machine name unique on this host, valid as a hostname.
machine=$(printf '%s' "$test_name" | tr -c 'A-Za-z0-9-' '-' | cut -c1-40)
machine="oit-$machine-$$"

work=""
lock_dir=""
out_is_temp=0
nspawn_pid=""
nspawn_killed=0
cgroups=""
use_scope=0
rc=""

# Kill (by PID) whatever is left in our cgroups, then remove them, deepest
# first. Bounded: 50 rounds of 0.1 s.
# shellcheck disable=SC2317 # called from the EXIT trap
cgroup_cleanup() {
        [ -n "$cgroups" ] || return 0
        killed=""
        for _ in $(seq 50); do
                left=0
                for cg in $cgroups; do
                        [ -d "$cg" ] || continue
                        pids=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
                        for p in $pids; do
                                kill -KILL "$p" 2>/dev/null || true
                                killed="$killed $p"
                                left=1
                        done
                done
                [ "$left" = 0 ] && break
                sleep 0.1
        done
        # A killed process leaves cgroup.procs before it is gone (a dying
        # PID 1 of the container first reaps its namespace): wait for them.
        for p in $killed; do
                wait_gone "$p" 5 || say "warning: PID $p still there"
        done
        for cg in $cgroups; do
                [ -d "$cg" ] || continue
                find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
                [ -d "$cg" ] && say "warning: could not remove cgroup $cg"
        done
        cgroups=""
}

stop_nspawn() {
        [ -n "$nspawn_pid" ] || return 0
        if alive "$nspawn_pid"; then
                kill -TERM "$nspawn_pid" 2>/dev/null || true
                wait_gone "$nspawn_pid" "$term_grace_sec" || {
                        say "container did not power off within ${term_grace_sec}s; killing nspawn (PID $nspawn_pid)"
                        kill -KILL "$nspawn_pid" 2>/dev/null || true
                        nspawn_killed=1
                        wait_gone "$nspawn_pid" 5 || true
                }
        fi
        wait "$nspawn_pid" 2>/dev/null || true
        nspawn_pid=""
}

# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
        stop_nspawn
        if [ "$use_scope" = 1 ]; then
                systemctl stop "$machine.scope" 2>/dev/null || true
        fi
        cgroup_cleanup
        # nspawn leaves this behind when /run is not a tmpfs (it refuses to
        # remove directories from disk file systems).
        rm -rf "/run/systemd/nspawn/propagate/$machine"
        # A SIGKILLed nspawn cannot remove its (shared) image lock files. Other
        # runs only ever take shared locks on the image, so removing them is
        # safe.
        if [ "$nspawn_killed" = 1 ] && [ -n "$lock_dir" ]; then
                rm -f "$(dirname "$lock_dir")/.#$(basename "$lock_dir").lck" \
                        "/run/systemd/nspawn/locks/inode-$(stat -c %d:%i "$lock_dir")"
        fi
        if [ -n "$work" ]; then
                if [ "$keep_work" = 1 ]; then
                        say "kept $work"
                else
                        rm -rf "$work"
                fi
        fi
        if [ "$out_is_temp" = 1 ] && [ "$rc" = 0 ]; then
                rm -rf "$out"
        fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM HUP

# Is PID running (and not a zombie waiting for us)?
alive() {
        [ -r "/proc/$1/stat" ] || return 1
        state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
        [ -n "$state" ] && [ "$state" != Z ]
}

# wait_gone PID SECONDS: poll every 0.1 s, at most SECONDS*10 times.
wait_gone() {
        for _ in $(seq $(($2 * 10))); do
                alive "$1" || return 0
                sleep 0.1
        done
        ! alive "$1"
}

t_start=$(now)

# --- results folder --------------------------------------------------------
if [ -z "$out" ]; then
        out=$(mktemp -d /var/tmp/owamp-it-out.XXXXXX)
        out_is_temp=1
else
        mkdir -p "$out"
        out=$(cd "$out" && pwd)
        if [ -n "$(ls -A "$out")" ] && [ ! -e "$out/.owamp-it-out" ]; then
                die "$out is not empty and not a previous OUT_DIR; refusing to clear it"
        fi
        find "$out" -mindepth 1 -delete
fi
touch "$out/.owamp-it-out"
mkdir "$out/journal"

# --- image -----------------------------------------------------------------
t0=$(now)
# A test that builds the project needs the image with the build tools.
needs_source=0
needs_packages=0
image=base
if grep -qx '# owamp-it: needs the source' "$script_dir/$script_name"; then
        needs_source=1
        image=build
fi
# A test of the packages gets them instead of the staged build, and the
# image with rpm.
if grep -qx '# owamp-it: needs the packages' "$script_dir/$script_name"; then
        needs_packages=1
        image=packages
        packages_dir=${OWAMP_IT_PACKAGES:-$build/packages}
        if [ ! -d "$packages_dir/deb" ] || [ ! -d "$packages_dir/deb-rebuild" ] || [ ! -d "$packages_dir/rpm" ]; then
                die "$test_name needs the packages: no $packages_dir/deb, deb-rebuild and rpm; make them with" \
                        "tools/build-packages --no-check --rebuild 1 $packages_dir (tools/run-tests does)"
        fi
fi
base=$(OWAMP_IT_IMAGE=$image "$here/rootfs.sh" ensure) || die "could not prepare the container image"
t_rootfs=$(elapsed "$t0")

work=$(mktemp -d /var/tmp/owamp-it.XXXXXX)
if [ "$root_mode" = copy ]; then
        t0=$(now)
        OWAMP_IT_IMAGE=$image "$here/rootfs.sh" extract "$work/root"
        root_args="-D $work/root"
        lock_dir=$work/root
        t_rootfs="$t_rootfs + $(elapsed "$t0") extract"
else
        root_args="-D $base --volatile=overlay"
        lock_dir=$base
fi

# --- what goes into /opt/owamp-it ------------------------------------------
t0=$(now)
opt=$work/opt
mkdir -p "$opt/stage" "$opt/bin" "$opt/tests"
if ! meson install -C "$build" --destdir "$opt/stage" --quiet >"$work/install.log" 2>&1; then
        cat "$work/install.log" >&2
        die "meson install failed"
fi
cp -p "$here/lib.sh" "$here/container-run.sh" "$opt/"
cp -pR "$script_dir/." "$opt/tests/"
if [ -d "$build/test/system" ]; then
        find "$build/test/system" -maxdepth 1 -type f -perm -u+x -exec cp -p {} "$opt/bin/" \;
fi
# A test with the line "# owamp-it: needs the source" gets the project's
# source tree as it is in the working tree (what git tracks or would add;
# everything but build folders without git) in /opt/owamp-it/source.
if [ "$needs_source" = 1 ]; then
        src=$(cd "$here/../.." && pwd)
        mkdir -p "$opt/source"
        if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
                (cd "$src" && git ls-files -z --cached --others --exclude-standard |
                        tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$opt/source" -xf -
        else
                tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$opt/source" -xf -
        fi
fi
if [ "$needs_packages" = 1 ]; then
        cp -pR "$packages_dir" "$opt/packages"
fi
cat >"$opt/run.env" <<EOF
OWAMP_IT_INSTALL_STAGE=$((1 - needs_packages))
OWAMP_IT_TEST=$test_name
OWAMP_IT_SCRIPT=/opt/owamp-it/tests/$script_name
OWAMP_IT_TEST_TIMEOUT_SEC=$((timeout_sec - 20))
EOF
t_stage=$(elapsed "$t0")

# --- cgroups ---------------------------------------------------------------
# nspawn --keep-unit runs the container in the caller's cgroup and creates
# payload/ and supervisor/ below it. Give it a cgroup of its own in every
# hierarchy (on these hosts: the hybrid name=systemd v1 + unified v2), so
# nothing lands in the host's root cgroup and everything can be killed and
# removed afterwards. With systemd as PID 1, a transient scope does the same.
procs_files=""
if [ -d /run/systemd/system ]; then
        use_scope=1
else
        case $(stat -fc %T /sys/fs/cgroup) in
        cgroup2fs) hierarchies="/sys/fs/cgroup" ;;
        tmpfs)
                hierarchies=""
                for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
                        [ -f "$h/cgroup.procs" ] && hierarchies="$hierarchies $h"
                done
                ;;
        *) die "unknown cgroup setup at /sys/fs/cgroup" ;;
        esac
        for h in $hierarchies; do
                if [ "$h" = /sys/fs/cgroup/systemd ]; then
                        own=$(sed -n 's/^[0-9]*:name=systemd://p' /proc/self/cgroup)
                else
                        own=$(sed -n 's/^0:://p' /proc/self/cgroup)
                fi
                cg="$h${own%/}/$machine"
                mkdir "$cg"
                cgroups="$cgroups $cg"
                procs_files="$procs_files $cg/cgroup.procs"
        done
fi

# --- boot, test, power off -------------------------------------------------
# shellcheck disable=SC2086 # root_args and procs_files are word lists
set -- $root_args \
        -q --register=no --keep-unit -M "$machine" \
        --private-network --system-call-filter=bpf \
        --link-journal=no --resolv-conf=off --timezone=off \
        --bind-ro="$opt:/opt/owamp-it" \
        --bind="$out:/opt/owamp-it-out" \
        --bind="$out/journal:/var/log/journal" \
        --bind-ro="$here/owamp-it.service:/etc/systemd/system/owamp-it.service" \
        -b -- systemd.wants=owamp-it.service systemd.mask=console-getty.service systemd.firstboot=off

t0=$(now)
if [ "$use_scope" = 1 ]; then
        systemd-run --quiet --scope --collect --unit="$machine" -- systemd-nspawn "$@" \
                </dev/null >"$work/console.raw" 2>&1 &
else
        # The launcher moves itself into the new cgroups, then becomes nspawn.
        # shellcheck disable=SC2016,SC2086
        sh -c 'while [ "$1" != -- ]; do echo $$ >"$1" || exit 125; shift; done; shift; exec "$@"' \
                owamp-it-launch $procs_files -- systemd-nspawn "$@" </dev/null >"$work/console.raw" 2>&1 &
fi
nspawn_pid=$!

timed_out=0
if ! wait_gone "$nspawn_pid" "$timeout_sec"; then
        timed_out=1
        say "$test_name: timed out after ${timeout_sec}s; stopping the container (nspawn PID $nspawn_pid)"
        stop_nspawn
fi
nspawn_rc=0
if [ -n "$nspawn_pid" ]; then
        wait "$nspawn_pid" || nspawn_rc=$?
        nspawn_pid=""
fi
t_boot=$(elapsed "$t0")

# --- results ---------------------------------------------------------------
esc=$(printf '\033')
cr=$(printf '\r')
# CSI sequences (colours, cursor moves), two-byte ones (ESC M from the
# status spinner), stray ESCs (systemd ellipsizes through sequences), and
# carriage returns.
sed -e "s/$esc\[[0-9;?]*[A-Za-z]//g" -e "s/${esc}[@-Z_]//g" -e "s/$esc//g" -e "s/$cr//g" \
        "$work/console.raw" >"$out/console.log"

if [ "$timed_out" = 1 ]; then
        rc=124
        if [ -s "$out/rc" ]; then
                say "the test itself ended with status $(cat "$out/rc"), but the container did not power off"
        fi
elif [ -s "$out/rc" ]; then
        rc=$(cat "$out/rc")
        [ "$rc" = "$nspawn_rc" ] || say "note: the test said $rc, nspawn exited with $nspawn_rc"
else
        say "$test_name: the test never reported a status (nspawn exited with $nspawn_rc)"
        rc=125
fi

cat >"$out/timings" <<EOF
rootfs $t_rootfs s
stage $t_stage s
container $t_boot s
total $(elapsed "$t_start") s
EOF

[ -f "$out/test.log" ] && cat "$out/test.log"
case $rc in
0) say "PASS $test_name (container $t_boot s, total $(elapsed "$t_start") s)" ;;
77) say "SKIP $test_name" ;;
*)
        if [ ! -s "$out/test.log" ]; then
                say "last lines of the console:"
                tail -n 40 "$out/console.log" >&2
        fi
        say "FAIL $test_name (status $rc); results in $out:" \
                "test.log, journal.txt (journalctl -D $out/journal), console.log"
        ;;
esac
exit "$rc"
