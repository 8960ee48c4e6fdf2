#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The Debian packages as an administrator meets them, in a booted Debian 12
# with nothing of the project installed (tools/build-packages made them on
# the host; run-in-nspawn.sh gives them in /opt/owamp-it/packages):
#  - `apt-get install ./owamp-*.deb`: owampd.socket enabled and listening on
#    TCP 861 (owampd.service neither running nor enabled), the user, the
#    data directory, the conffiles, the journal catalog;
#  - the package's own autopkgtest (debian/tests/owping-localhost), then
#    owping -c 10 in mode O, and in mode A with a key made by the packaged
#    owampd-pfstore and an owampd.limits class for it; the session's journal
#    lines under OWAMP_SID=, its data in the class directory;
#  - upgrade to a rebuild with a higher version while a session runs: the
#    session is not cut off, owampd restarts after it, the socket is never
#    restarted, the edited conffile and the stored data stay;
#  - apt-get remove: socket gone, nothing listening, no process left,
#    conffiles and data kept; apt-get purge: nothing of the packages left
#    but the system user;
#  - over a stand-in for perfSONAR's owamp-client/owamp-server 5.2.3-1: an
#    ordinary upgrade (the epoch), its service stopped and disabled, its
#    SysV script gone, its configuration kept, ours listening;
#  - the rpms: their file lists, scriptlets, dependencies and conffiles
#    (rpm -qp), and installed without scriptlets into a scratch root with
#    rpm --root: the layout Fedora gets.
# owamp-it: needs the packages
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$OWAMP_IT_LIB"
# shellcheck source=owampd-lib.sh
. ./owampd-lib.sh

pk=/opt/owamp-it/packages
[ -d "$pk/deb" ] || it_fail "no packages in $pk (run-in-nspawn.sh gives them on '# owamp-it: needs the packages')"
export DEBIAN_FRONTEND=noninteractive
conf=/etc/owamp
data=/var/lib/owamp

# apt reads local packages as its sandbox user: give it copies it can read.
debs=/var/tmp/owamp-debs
mkdir -p "$debs/new" "$debs/rebuild"
cp "$pk"/deb/owamp-client_*.deb "$pk"/deb/owamp-server_*.deb "$debs/new/"
cp "$pk"/deb-rebuild/owamp-client_*.deb "$pk"/deb-rebuild/owamp-server_*.deb "$debs/rebuild/"
chmod -R a+rX "$debs"

# listening_861: the listeners on TCP 861, one per line.
listening_861() { ss -Hltnp 'sport = :861'; }
# deb_version PACKAGE: its installed version, or nothing.
deb_version() { { dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null || true; } | sed -n 's/^installed //p'; }
no_procs() { [ "$(procs owampd)" = 0 ] && [ "$(procs owamp-session)" = 0 ] && [ "$(procs owampd-launcher)" = 0 ]; }
# journal_has MATCH...: the journal has an entry for MATCH (for wait_for,
# which runs its command again each time).
journal_has() { [ "$(journal_count "$@")" -ge 1 ]; }
session_running() { [ "$(active_session_units | wc -l)" -ge 1 ]; }
# clean_reports FILE: how many "10 sent, 0 lost" reports FILE has.
clean_reports() { grep -c '^10 sent, 0 lost (0\.000%), 0 duplicates$' "$1" || true; }

# The image comes from debootstrap, which writes no /etc/hosts; every
# installed Debian has one naming localhost, and the autopkgtest uses it.
if ! getent hosts localhost >/dev/null; then
        printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >>/etc/hosts
fi

it_step "before: nothing of owamp"
assert_eq "" "$(deb_version owamp-server)" "owamp-server installed before the test"
assert_failure test -e /usr/sbin/owampd
assert_eq "" "$(listening_861)" "listeners on 861 before the install"

it_step "apt-get install ./owamp-client_*.deb ./owamp-server_*.deb"
if ! apt-get install -y "$debs"/new/owamp-client_*.deb "$debs"/new/owamp-server_*.deb \
        >"$OWAMP_IT_OUT/apt-install.log" 2>&1; then
        tail -n 30 "$OWAMP_IT_OUT/apt-install.log"
        it_fail "apt-get install of the packages failed"
fi
version=$(deb_version owamp-server)
assert_match '^1:[0-9]+\.[0-9]+\.[0-9]+$' "$version" "owamp-server's version"
assert_eq "$version" "$(deb_version owamp-client)" "owamp-client's version"
assert_match "owping .*${version#1:}" "$(owping --version 2>&1)" "owping --version"
assert_match "owampd .*${version#1:}" "$(/usr/sbin/owampd --version 2>&1)" "owampd --version"

it_step "installed: the socket listens on 861, the service waits for it"
assert_eq enabled "$(systemctl is-enabled owampd.socket)" "owampd.socket enabled"
assert_unit_state owampd.socket active
assert_match 'users:\(.*\("systemd",pid=1,' "$(listening_861)" "TCP 861 held by systemd (socket activation)"
assert_unit_state owampd.service inactive
assert_ne enabled "$(systemctl is-enabled owampd.service 2>&1 || true)" "owampd.service enabled by itself"
assert_eq "" "$(systemctl list-units --all --plain --no-legend --no-pager 'owamp-session-*')" "session units before any client"
assert_eq "owamp" "$(id -gn owamp)" "the owamp user's group"
assert_eq "owamp owamp 750" "$(stat -c '%U %G %a' "$data")" "$data"
assert_eq "/etc/owamp/owampd.conf /etc/owamp/owampd.limits" \
        "$(dpkg-query -W -f='${Conffiles}\n' owamp-server | awk 'NF { print $1 }' | sort | tr '\n' ' ' | sed 's/ $//')" \
        "owamp-server's conffiles"
assert_success test -d "$conf/owampd.conf.d"
assert_success test -x /usr/libexec/owamp/owamp-session
assert_success test -x /usr/libexec/owamp/owampd-launcher
assert_success test -f /lib/systemd/system/owampd-launcher@.service
# The journal catalog (journalctl --update-catalog through systemd's dpkg
# trigger): owampd's message ids are explained.
assert_match "$MSGID_SESSION_ACCEPTED" "$(journalctl --list-catalog 2>/dev/null)" "owampd's catalog entries"

it_step "the package's autopkgtest: owping -c 10 localhost in modes O and A"
if ! sh "$pk/autopkgtest/owping-localhost" >"$OWAMP_IT_OUT/autopkgtest.log" 2>&1; then
        tail -n 30 "$OWAMP_IT_OUT/autopkgtest.log"
        it_fail "debian/tests/owping-localhost failed"
fi
assert_match '^PASS$' "$(tail -n 1 "$OWAMP_IT_OUT/autopkgtest.log")" "the autopkgtest's verdict"
assert_failure test -e "$conf/owampd.pfs"

it_step "mode O: owping -c 10 localhost, the session under OWAMP_SID="
owping -c 10 -i 0.01 -L 2 localhost >"$OWAMP_IT_OUT/owping-open.txt" 2>&1 ||
        it_fail "owping (mode O): $(tail -n 5 "$OWAMP_IT_OUT/owping-open.txt")"
assert_eq 2 "$(clean_reports "$OWAMP_IT_OUT/owping-open.txt")" "clean reports in mode O"
sid=$(owping_sids "$OWAMP_IT_OUT/owping-open.txt" | head -n 1)
assert_match '^[0-9a-f]{32}$' "$sid" "the SID owping printed"
wait_for 10 journal_has OWAMP_SID="$sid" MESSAGE_ID="$MSGID_SESSION_ACCEPTED"
wait_for 10 journal_has OWAMP_SID="$sid" MESSAGE_ID="$MSGID_DATA_FETCHED"
units=$(journal_field _SYSTEMD_UNIT OWAMP_SID="$sid" | sort -u | tr '\n' ' ')
it_log "units that logged for $sid: $units"
assert_match 'owampd\.service' "$units" "owampd logged the session"
assert_match "owamp-session-[^ ]*\.service" "$units" "the session's own unit logged under its SID"

it_step "mode A: a key from the packaged owampd-pfstore, a limits class for it"
pass=packages-test-pass-phrase
printf '%s\n' "$pass" | owampd-pfstore -n -f "$conf/owampd.pfs" pkgtest
chown root:owamp "$conf/owampd.pfs"
chmod 0640 "$conf/owampd.pfs"
printf '%s\n' "$pass" | owampd-pfstore -n -f /root/client.pfs pkgtest
# The conffile edit that the upgrade must keep.
cat >>"$conf/owampd.limits" <<'EOF'
# test-packages.sh: a class for the key pkgtest
limit root with allow_open_mode=on
limit pkgtest with parent=root, test_sessions=8
assign default root
assign user pkgtest pkgtest
EOF
cp -p "$conf/owampd.limits" "$OWAMP_IT_OUT/owampd.limits.edited"
systemctl reload owampd.service
owping -A A -u pkgtest -k /root/client.pfs -c 10 -i 0.01 -L 2 localhost >"$OWAMP_IT_OUT/owping-auth.txt" 2>&1 ||
        it_fail "owping (mode A): $(tail -n 5 "$OWAMP_IT_OUT/owping-auth.txt")"
assert_eq 2 "$(clean_reports "$OWAMP_IT_OUT/owping-auth.txt")" "clean reports in mode A"
sid_a=$(owping_sids "$OWAMP_IT_OUT/owping-auth.txt" | head -n 1)
wait_for 10 journal_has OWAMP_SID="$sid_a" MESSAGE_ID="$MSGID_SESSION_ACCEPTED"
assert_match 'pkgtest' "$(journal_messages _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_ACCEPTED" | tail -n 1)" \
        "owampd's line for the authenticated connection"
stored=$(find "$data/hierarchy" -name "*.owp" -path '*/pkgtest/*' | head -n 1)
[ -n "$stored" ] || it_fail "no session data under $data/hierarchy/.../pkgtest/: $(find "$data" | head -n 20)"
stored_sum=$(sha256sum "$stored" | cut -d' ' -f1)
it_log "stored session: $stored"

it_step "upgrade to the rebuild while a session runs"
pid_before=$(unit_prop owampd.service MainPID)
socket_since=$(unit_prop owampd.socket ActiveEnterTimestampMonotonic)
# 250 packets 20 ms apart: about 5 s of session, then the fetch.
owping -c 250 -i 0.02 -L 2 localhost >"$OWAMP_IT_OUT/owping-upgrade.txt" 2>&1 &
owping_pid=$!
it_on_exit "kill $owping_pid 2>/dev/null || true"
wait_for 10 session_running
t0=$(date +%s.%N)
if ! apt-get install -y "$debs"/rebuild/owamp-client_*.deb "$debs"/rebuild/owamp-server_*.deb \
        >"$OWAMP_IT_OUT/apt-upgrade.log" 2>&1; then
        tail -n 30 "$OWAMP_IT_OUT/apt-upgrade.log"
        it_fail "apt-get install of the rebuilt packages failed"
fi
it_log "upgrade took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
rc=0
wait "$owping_pid" || rc=$?
assert_eq 0 "$rc" "the status of the owping that ran across the upgrade"
assert_eq 2 "$(grep -c '^250 sent, 0 lost (0\.000%), 0 duplicates$' "$OWAMP_IT_OUT/owping-upgrade.txt" || true)" \
        "clean reports of the session that ran across the upgrade"
assert_match 'waiting up to [0-9]+s before restarting' "$(cat "$OWAMP_IT_OUT/apt-upgrade.log")" \
        "the postinst waited for the running session"
new_version=$(deb_version owamp-server)
assert_match "^${version}\+rebuild[0-9]+$" "$new_version" "owamp-server's version after the upgrade"
assert_eq "$new_version" "$(deb_version owamp-client)" "owamp-client's version after the upgrade"
assert_unit_state owampd.service active
assert_ne "$pid_before" "$(unit_prop owampd.service MainPID)" "owampd's PID (restarted into the new version)"
assert_eq "$socket_since" "$(unit_prop owampd.socket ActiveEnterTimestampMonotonic)" "owampd.socket's start (never restarted)"
assert_match 'users:\(.*\("systemd",pid=1,' "$(listening_861)" "TCP 861 after the upgrade"
assert_eq enabled "$(systemctl is-enabled owampd.socket)" "owampd.socket enabled after the upgrade"
assert_success cmp "$OWAMP_IT_OUT/owampd.limits.edited" "$conf/owampd.limits"
assert_eq "" "$(find /etc/owamp -name '*.dpkg-*')" "dpkg's leftovers in /etc/owamp"
assert_eq "$stored_sum" "$(sha256sum "$stored" | cut -d' ' -f1)" "the stored session's data after the upgrade"
owping -A A -u pkgtest -k /root/client.pfs -c 10 -i 0.01 -L 2 localhost >"$OWAMP_IT_OUT/owping-auth-2.txt" 2>&1 ||
        it_fail "owping (mode A) after the upgrade: $(tail -n 5 "$OWAMP_IT_OUT/owping-auth-2.txt")"
assert_eq 2 "$(clean_reports "$OWAMP_IT_OUT/owping-auth-2.txt")" "clean reports in mode A after the upgrade"

it_step "apt-get remove: stopped, nothing listens, conffiles and data kept"
files=$(dpkg-query -L owamp-server owamp-client | sort -u)
if ! apt-get remove -y owamp-server owamp-client >"$OWAMP_IT_OUT/apt-remove.log" 2>&1; then
        tail -n 30 "$OWAMP_IT_OUT/apt-remove.log"
        it_fail "apt-get remove failed"
fi
assert_eq "" "$(listening_861)" "listeners on 861 after the removal"
assert_unit_state owampd.socket inactive
assert_unit_state owampd.service inactive
wait_for 10 no_procs
# (owampd.socket stays known as "not-found" until the purge: Debian keeps a
# removed package's enablement links until then.)
assert_eq "" "$(systemctl list-units --all --plain --no-legend --no-pager 'owampd*' 'owamp-session-*' |
        awk '$2 != "not-found" || $3 != "inactive"')" "units loaded or running after the removal"
assert_failure test -e /usr/sbin/owampd
assert_success test -f "$conf/owampd.limits"
assert_success test -f "$stored"
assert_eq "config-files" "$(dpkg-query -W -f='${db:Status-Status}' owamp-server)" "owamp-server's state"
# owamp-client has no conffiles: removed is gone.
assert_eq "" "$(dpkg-query -W -f='${db:Status-Status}' owamp-client 2>/dev/null | grep -v '^not-installed$' || true)" \
        "owamp-client's state"

it_step "apt-get purge owamp-server: nothing of ours left but the user"
if ! apt-get purge -y owamp-server >"$OWAMP_IT_OUT/apt-purge.log" 2>&1; then
        tail -n 30 "$OWAMP_IT_OUT/apt-purge.log"
        it_fail "apt-get purge failed"
fi
assert_eq "" "$(dpkg-query -W -f='${db:Status-Status}\n' owamp-server owamp-client 2>/dev/null | grep -v '^not-installed$' || true)" \
        "packages known to dpkg"
assert_failure test -e "$conf"
assert_failure test -e "$data"
left=""
while read -r f; do
        [ -n "$f" ] || continue
        # Directories shared with the system (/usr/bin, ...) stay.
        if [ -e "$f" ] && ! [ -d "$f" ]; then left="$left $f"; fi
done <<<"$files"
assert_eq "" "$left" "files of the packages left after the purge"
# (owamp-it.service is the harness's own unit, not a package's.)
assert_eq "" "$(find /etc/systemd /var/lib/systemd -name '*owamp*' ! -name 'owamp-it*' 2>/dev/null)" \
        "systemd state left after the purge"
assert_eq "" "$(systemctl list-units --all --plain --no-legend --no-pager 'owampd*' 'owamp-session-*')" \
        "units systemd knows after the purge"
assert_eq "" "$(find /etc /usr /var -path /var/log -prune -o -name '*owamp*' ! -name 'owamp-it*' -print 2>/dev/null |
        grep -v '^/var/tmp/owamp-debs' || true)" \
        "anything named owamp left after the purge"
assert_success getent passwd owamp

it_step "from perfSONAR's packages: a stand-in owamp-server 5.2.3-1 upgraded to ours"
# perfSONAR's owamp-server as far as the upgrade cares (its debian/ on
# GitHub): the same package names without an epoch, /usr/sbin/owampd, an
# enabled owamp-server.service, a SysV script and conffiles in
# /etc/owamp-server. Its service here holds no port (a sleep).
fake=/var/tmp/perfsonar-owamp
arch=$(dpkg --print-architecture)
for p in owamp-client owamp-server; do
        mkdir -p "$fake/$p/DEBIAN"
        printf 'Package: %s\nVersion: 5.2.3-1\nArchitecture: %s\nMaintainer: stand-in <x@example.org>\nDescription: stand-in for perfSONAR %s 5.2.3\n' \
                "$p" "$arch" "$p" >"$fake/$p/DEBIAN/control"
done
mkdir -p "$fake/owamp-client/usr/bin" "$fake/owamp-server/usr/sbin" "$fake/owamp-server/lib/systemd/system" \
        "$fake/owamp-server/etc/init.d" "$fake/owamp-server/etc/owamp-server"
printf '#!/bin/sh\necho perfSONAR owping\n' >"$fake/owamp-client/usr/bin/owping"
printf '#!/bin/sh\nexec sleep infinity\n' >"$fake/owamp-server/usr/sbin/owampd"
printf '#!/bin/sh\nexit 0\n' >"$fake/owamp-server/etc/init.d/owamp-server"
chmod 0755 "$fake/owamp-client/usr/bin/owping" "$fake/owamp-server/usr/sbin/owampd" "$fake/owamp-server/etc/init.d/owamp-server"
printf '[Service]\nExecStart=/usr/sbin/owampd\n[Install]\nWantedBy=multi-user.target\n' \
        >"$fake/owamp-server/lib/systemd/system/owamp-server.service"
echo "# perfSONAR's configuration, edited" >"$fake/owamp-server/etc/owamp-server/owamp-server.conf"
printf '/etc/init.d/owamp-server\n/etc/owamp-server/owamp-server.conf\n' >"$fake/owamp-server/DEBIAN/conffiles"
# shellcheck disable=SC2016 # the postinst's own $1
printf '#!/bin/sh\nset -e\n[ "$1" = configure ] || exit 0\ndeb-systemd-helper enable owamp-server.service\nsystemctl daemon-reload\ndeb-systemd-invoke start owamp-server.service\n' \
        >"$fake/owamp-server/DEBIAN/postinst"
chmod 0755 "$fake/owamp-server/DEBIAN/postinst"
for p in owamp-client owamp-server; do
        dpkg-deb -Zgzip --root-owner-group -b "$fake/$p" "$fake/${p}_5.2.3-1_$arch.deb" >/dev/null
done
dpkg -i "$fake/owamp-client_5.2.3-1_$arch.deb" "$fake/owamp-server_5.2.3-1_$arch.deb" >"$OWAMP_IT_OUT/perfsonar-install.log" 2>&1 ||
        it_fail "the stand-in perfSONAR packages: $(tail -n 5 "$OWAMP_IT_OUT/perfsonar-install.log")"
assert_unit_state owamp-server.service active
assert_eq enabled "$(systemctl is-enabled owamp-server.service)" "perfSONAR's owamp-server.service enabled"
if ! apt-get install -y "$debs"/new/owamp-client_*.deb "$debs"/new/owamp-server_*.deb \
        >"$OWAMP_IT_OUT/apt-from-perfsonar.log" 2>&1; then
        tail -n 30 "$OWAMP_IT_OUT/apt-from-perfsonar.log"
        it_fail "apt-get install over perfSONAR's packages failed"
fi
assert_eq "$version" "$(deb_version owamp-server)" "owamp-server's version over perfSONAR's"
assert_eq "$version" "$(deb_version owamp-client)" "owamp-client's version over perfSONAR's"
assert_match "owping .*${version#1:}" "$(owping --version 2>&1)" "owping over perfSONAR's"
assert_unit_state owamp-server.service inactive
assert_failure test -e /etc/systemd/system/multi-user.target.wants/owamp-server.service
assert_failure test -e /etc/init.d/owamp-server
assert_success test -f /etc/owamp-server/owamp-server.conf
assert_unit_state owampd.socket active
assert_eq enabled "$(systemctl is-enabled owampd.socket)" "owampd.socket enabled after perfSONAR's packages"
owping -c 10 -i 0.01 -L 2 localhost >"$OWAMP_IT_OUT/owping-after-perfsonar.txt" 2>&1 ||
        it_fail "owping after perfSONAR's packages: $(tail -n 5 "$OWAMP_IT_OUT/owping-after-perfsonar.txt")"
assert_eq 2 "$(clean_reports "$OWAMP_IT_OUT/owping-after-perfsonar.txt")" "clean reports after perfSONAR's packages"
apt-get purge -y owamp-server owamp-client >"$OWAMP_IT_OUT/apt-purge-2.log" 2>&1 ||
        it_fail "apt-get purge after perfSONAR's packages: $(tail -n 5 "$OWAMP_IT_OUT/apt-purge-2.log")"
wait_for 10 no_procs

it_step "the rpms: file lists, scriptlets, dependencies (rpm -qp)"
rpms=$pk/rpm
client_rpm=$(ls "$rpms"/owamp-client-[0-9]*.x86_64.rpm)
server_rpm=$(ls "$rpms"/owamp-server-[0-9]*.x86_64.rpm)
assert_eq "1:${version#1:}" "$(rpm -qp --qf '%{EPOCH}:%{VERSION}' "$server_rpm")" "the server rpm's epoch and version"
rpm -qp --list "$server_rpm" >"$OWAMP_IT_OUT/owamp-server.list"
rpm -qp --list "$client_rpm" >"$OWAMP_IT_OUT/owamp-client.list"
for f in /usr/sbin/owampd /usr/bin/owampd-pfstore /usr/libexec/owamp/owamp-session /usr/libexec/owamp/owampd-launcher \
        /usr/libexec/owamp/owampd-restart-when-idle /usr/lib/systemd/system/owampd.socket \
        /usr/lib/systemd/system/owampd.service /usr/lib/systemd/system/owampd-launcher.socket \
        /usr/lib/systemd/system/owampd-launcher@.service /usr/lib/sysusers.d/owamp.conf /usr/lib/tmpfiles.d/owamp.conf \
        /usr/lib/systemd/catalog/owamp.catalog /etc/owamp/owampd.conf /etc/owamp/owampd.limits /etc/owamp/owampd.conf.d \
        /var/lib/owamp /usr/share/man/man8/owampd.8.gz /usr/share/man/man1/owampd-pfstore.1.gz \
        /usr/share/man/man5/owampd.conf.5.gz /usr/share/man/man5/owampd.limits.5.gz /usr/share/man/man5/owampd.pfs.5.gz \
        /usr/share/doc/owamp-server/examples/owampd.pfs /usr/share/licenses/owamp-server/LICENSE \
        /usr/bin/powstream /usr/lib/systemd/system/owamp-stream@.service /usr/lib/tmpfiles.d/owamp-streams.conf \
        /etc/owamp/streams /usr/share/doc/owamp-server/examples/streams/example.conf \
        /usr/share/man/man1/powstream.1.gz /usr/share/man/man5/owamp-streams.conf.5.gz \
        /usr/share/man/man8/owamp-stream.service.8.gz /usr/share/man/man8/owamp-stream@.service.8.gz; do
        assert_success grep -qxF "$f" "$OWAMP_IT_OUT/owamp-server.list"
done
for f in /usr/bin/owping /usr/bin/owstats /usr/bin/owfetch /usr/bin/owup /usr/share/man/man1/owping.1.gz \
        /usr/share/man/man1/owstats.1.gz /usr/share/man/man1/owfetch.1.gz /usr/share/man/man1/owup.1.gz \
        /usr/share/licenses/owamp-client/LICENSE; do
        assert_success grep -qxF "$f" "$OWAMP_IT_OUT/owamp-client.list"
done
# Each program in its package, and nowhere else: the server rpm's programs
# are owampd's, the client rpm has none of them.
assert_eq "/usr/bin/owampd-pfstore /usr/bin/powstream /usr/sbin/owampd" \
        "$(grep -E '^/usr/s?bin/' "$OWAMP_IT_OUT/owamp-server.list" | sort | tr '\n' ' ' | sed 's/ $//')" \
        "the server rpm's programs"
assert_eq "/usr/bin/owfetch /usr/bin/owping /usr/bin/owstats /usr/bin/owup" \
        "$(grep -E '^/usr/s?bin/' "$OWAMP_IT_OUT/owamp-client.list" | sort | tr '\n' ' ' | sed 's/ $//')" \
        "the client rpm's programs"
assert_eq "" "$(grep -E 'owampd|libexec|systemd|/etc/' "$OWAMP_IT_OUT/owamp-client.list" || true)" \
        "server files in the client rpm"
assert_eq "/etc/owamp/owampd.conf /etc/owamp/owampd.limits" \
        "$(rpm -qp --configfiles "$server_rpm" | sort | tr '\n' ' ' | sed 's/ $//')" "owamp-server's config files"
# fflags "cn": %config(noreplace), kept as edited on upgrade.
assert_eq "/etc/owamp/owampd.conf cn /etc/owamp/owampd.limits cn" \
        "$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$server_rpm" | grep -E '^/etc/owamp/owampd\.(conf|limits) ' | sort |
                tr '\n' ' ' | sed 's/ $//')" "owamp-server's %config(noreplace) files"
scripts=$(rpm -qp --scripts "$server_rpm")
printf '%s\n' "$scripts" >"$OWAMP_IT_OUT/owamp-server.scripts"
assert_match 'systemd-sysusers --replace=/usr/lib/sysusers.d/owamp.conf' "$scripts" "%pre makes the user"
assert_match 'install-system-units owampd.socket owampd.service owampd-launcher.socket' "$scripts" "%post presets the units"
assert_match 'systemd-tmpfiles --create owamp.conf' "$scripts" "%post applies tmpfiles"
assert_match 'remove-system-units owampd.socket owampd.service owampd-launcher.socket' "$scripts" "%preun stops the units"
assert_match 'owampd-restart-when-idle --wait-only' "$scripts" "%postun waits for the clients"
assert_match 'mark-restart-system-units owampd.service' "$scripts" "%postun restarts owampd.service"
assert_eq "" "$(grep -v '^[[:space:]]*#' "$OWAMP_IT_OUT/owamp-server.scripts" | grep -E 'restart.*owampd\.socket' || true)" \
        "a restart of owampd.socket in the scriptlets"
rpm -qp --requires "$server_rpm" >"$OWAMP_IT_OUT/owamp-server.requires"
for r in 'libnettle\.so\.8\(' 'libsystemd\.so\.0\(' '/usr/bin/systemd-sysusers' 'dbus'; do
        assert_success grep -qE "^$r" "$OWAMP_IT_OUT/owamp-server.requires"
done
assert_match 'libnettle\.so\.8' "$(rpm -qp --requires "$client_rpm")" "owamp-client's dependencies"
assert_success ls "$rpms"/owamp-client-debuginfo-[0-9]*.rpm "$rpms"/owamp-server-debuginfo-[0-9]*.rpm \
        "$rpms"/owamp-debugsource-[0-9]*.rpm

it_step "the rpms installed into a scratch root (rpm --root, no scriptlets)"
root=/var/tmp/rpmroot
rm -rf "$root"
mkdir -p "$root"
rpm --root "$root" --initdb
if ! rpm --root "$root" -i --nodeps --noscripts "$client_rpm" "$server_rpm" >"$OWAMP_IT_OUT/rpm-install.log" 2>&1; then
        cat "$OWAMP_IT_OUT/rpm-install.log"
        it_fail "rpm --root -i failed"
fi
assert_eq "owamp-client-1:${version#1:} owamp-server-1:${version#1:}" \
        "$(rpm --root "$root" -qa --qf '%{NAME}-%{EPOCH}:%{VERSION}\n' | sort | tr '\n' ' ' | sed 's/ $//')" \
        "the rpms in the scratch root's database"
assert_eq "ExecStart=/usr/sbin/owampd -c /etc/owamp" "$(grep '^ExecStart=' "$root/usr/lib/systemd/system/owampd.service")" \
        "owampd.service as the rpm installs it"
assert_eq "ExecStart=/usr/libexec/owamp/owampd-launcher" \
        "$(grep '^ExecStart=' "$root/usr/lib/systemd/system/owampd-launcher@.service")" "the launcher unit"
assert_eq "750" "$(stat -c %a "$root/var/lib/owamp")" "the data directory's mode"
assert_success test -x "$root/usr/sbin/owampd"
assert_match "owampd .*${version#1:}" "$("$root/usr/sbin/owampd" --version 2>&1)" "the rpm's owampd --version"
# rpm -V: every file as the package says (--nodeps: the scratch root has
# no libraries to satisfy them).
verify=$(rpm --root "$root" -V --nodeps owamp-client owamp-server 2>&1 || true)
printf '%s\n' "$verify" >"$OWAMP_IT_OUT/rpm-verify.txt"
assert_eq "" "$verify" "rpm -V in the scratch root"
