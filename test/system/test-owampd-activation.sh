#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# owampd.socket and owampd.service as installed by `meson install`:
#  - nothing runs until the first connection; then owampd (Type=notify,
#    unprivileged, watchdog) serves it, its sessions as transient units;
#  - a restart while idle keeps the listening socket, and the next owping
#    works; stopping both leaves nothing running, listening or behind;
#  - the state directory, its age-based clean-up (tmpfiles.d), the system
#    user (sysusers.d), the journal catalog and the man page are installed.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$OWAMP_IT_LIB"
# shellcheck source=owampd-lib.sh
. ./owampd-lib.sh

# listener_inode: the inode of the socket listening on TCP 861 (empty if none).
listener_inode() {
        ss -Hltne 'sport = :861' | sed -n 's/.* ino:\([0-9]*\).*/\1/p' | head -n1
}

nothing_of_owamp_runs() {
        [ "$(procs owampd)" = 0 ] && [ "$(procs owampd-launcher)" = 0 ] && [ "$(procs owamp-session)" = 0 ] &&
                [ -z "$(systemctl list-units --state=active,activating,deactivating --plain --no-legend --no-pager -- 'owampd*' 'owamp-session-*')" ]
}

it_step "installed: user, units, state clean-up, catalog"
assert_success getent passwd owamp
assert_eq owamp "$(id -gn owamp)" "primary group of owamp"
for u in owampd.socket owampd.service owampd-launcher.socket owampd-launcher@x.service; do
        assert_eq loaded "$(unit_prop "$u" LoadState)" "$u"
done
assert_eq notify "$(unit_prop owampd.service Type)" "owampd.service Type="
assert_eq owamp "$(unit_prop owampd.service User)" "owampd.service User="
assert_eq owamp-control "$(unit_prop owampd.socket FileDescriptorName)" "FileDescriptorName="
assert_eq both "$(unit_prop owampd.socket BindIPv6Only)" "BindIPv6Only= (dual-stack)"
assert_success test -f /usr/lib/tmpfiles.d/owamp.conf
assert_success test -f /usr/lib/sysusers.d/owamp.conf

it_step "socket activation: nothing runs before the first connection"
systemctl start owampd.socket
assert_unit_state owampd.socket active
assert_unit_state owampd.service inactive
assert_unit_state owampd-launcher.socket inactive
assert_eq 0 "$(procs owampd)" "owampd processes before the first connection"
# One dual-stack socket, owned by systemd, not by owampd.
assert_match '^LISTEN .*(\*|\[::\]):861 ' "$(ss -Hltn 'sport = :861')" "listener on [::]:861"
assert_match 'users:\(\("systemd",pid=1,' "$(ss -Hltnp 'sport = :861')" "the listener belongs to PID 1"
inode=$(listener_inode)
assert_match '^[0-9]+$' "$inode" "inode of the listener"

it_step "the first connection starts owampd, which serves it"
owping -L 0.5 -c 10 -i 0.01 127.0.0.1 >"$OWAMP_IT_OUT/owping-1.txt"
assert_eq 2 "$(owping_sids "$OWAMP_IT_OUT/owping-1.txt" | wc -l)" "sessions in owping's report"
assert_eq 2 "$(grep -c '^10 sent, 0 lost' "$OWAMP_IT_OUT/owping-1.txt")" "complete sessions"
assert_unit_state owampd.service active
assert_unit_state owampd-launcher.socket active
pid1=$(unit_prop owampd.service MainPID)
assert_ne 0 "$pid1" "MainPID of owampd.service"
assert_eq owamp "$(ps -o user= -p "$pid1")" "owampd's user"
assert_eq 30s "$(unit_prop owampd.service WatchdogUSec)" "owampd.service watchdog"
assert_ne 0 "$(unit_prop owampd.service WatchdogTimestampMonotonic)" "owampd pets the watchdog"
assert_eq "0000000000000000" "$(sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$pid1/status")" "owampd's capabilities"
assert_eq 1 "$(journal_count _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_DAEMON_STARTED")" "ready messages"
assert_match 'sessions via systemd' "$(journal_messages _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_DAEMON_STARTED")" \
        "owampd uses the systemd launcher"
assert_eq "0 control connections, 0 sessions running" "$(unit_prop owampd.service StatusText)" "STATUS="
for sid in $(owping_sids "$OWAMP_IT_OUT/owping-1.txt"); do
        check_session_ran_as_unit "$sid"
done
assert_eq "$inode" "$(listener_inode)" "listener inode while owampd serves"

it_step "restart while idle keeps the socket; the next owping works"
socket_since=$(unit_prop owampd.socket ActiveEnterTimestampMonotonic)
systemctl restart owampd.service
assert_unit_state owampd.service active
pid2=$(unit_prop owampd.service MainPID)
assert_ne "$pid1" "$pid2" "MainPID after the restart"
assert_eq "$socket_since" "$(unit_prop owampd.socket ActiveEnterTimestampMonotonic)" "owampd.socket not restarted"
assert_eq "$inode" "$(listener_inode)" "the same listening socket after the restart"
assert_eq 0 "$(pgrep -c -P "$pid1" || true)" "children of the old owampd"
owping -L 0.5 -c 10 -i 0.01 127.0.0.1 >"$OWAMP_IT_OUT/owping-2.txt"
assert_eq 2 "$(grep -c '^10 sent, 0 lost' "$OWAMP_IT_OUT/owping-2.txt")" "complete sessions after the restart"
for sid in $(owping_sids "$OWAMP_IT_OUT/owping-2.txt"); do
        check_session_ran_as_unit "$sid"
done
assert_eq "$pid2" "$(unit_prop owampd.service MainPID)" "the owping was served by the new owampd"
assert_eq 0 "$(unit_prop owampd.service NRestarts)" "automatic restarts"

it_step "stopping both leaves nothing running, listening or behind"
systemctl stop owampd.socket owampd.service
wait_for 10 nothing_of_owamp_runs
assert_unit_state owampd.socket inactive
assert_unit_state owampd.service inactive
assert_unit_state owampd-launcher.socket inactive
assert_eq "" "$(ss -Hltn 'sport = :861')" "listeners on 861"
assert_failure test -e /run/owamp/launcher.socket
assert_eq "" "$(session_units)" "session units left"
assert_eq "" "$(units_matching 'owampd-launcher@*')" "launcher instances left"
assert_eq "" "$(systemctl list-units --failed --plain --no-legend --no-pager -- 'owampd*' 'owamp-session-*')" "failed units"

it_step "state directory and its clean-up by age"
assert_eq "owamp owamp 750" "$(stat -c '%U %G %a' /var/lib/owamp)" "/var/lib/owamp"
# Two owpings: one session each that owampd received and kept, in the
# directory of its class (hierarchy/<class path>/, owampd(8)).
mapfile -t files < <(find /var/lib/owamp/hierarchy -name '*.owp' | sort)
assert_eq 2 "${#files[@]}" "stored sessions"
assert_eq "owamp 640" "$(stat -c '%U %a' "${files[0]}")" "a session file"
touch -m -d '2 days ago' "${files[0]}"
systemd-tmpfiles --clean /usr/lib/tmpfiles.d/owamp.conf
assert_failure test -e "${files[0]}"
assert_success test -e "${files[1]}"

it_step "journal catalog and man page"
journalctl --update-catalog
n=$(grep -c '^-- [0-9a-f]\{32\}$' /usr/lib/systemd/catalog/owamp.catalog)
assert_eq "$n" "$(journalctl --list-catalog | grep -c ' owamp: ')" "catalog entries known to journalctl"
assert_match 'OWAMP test session requested' \
        "$(journalctl --no-pager -x -n 1 MESSAGE_ID="$MSGID_SESSION_REQUESTED")" "journalctl -x explains"
assert_match 'SYSTEMD AND PRIVILEGES' "$(cat /usr/share/man/man8/owampd.8)" "owampd(8)"
