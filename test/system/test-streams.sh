#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# owamp-stream@.service: two streams against the local owampd.socket:
#  - s1 (mode O, the peer sends, sub-sessions, prometheus-dir in Debian's
#    textfile directory) and s2 (mode A with its pass phrase as a credential,
#    we send) run as dynamic users; their .owp/.sum files appear in
#    /var/lib/owamp-streams/NAME, `journalctl OWAMP_STREAM=NAME` is a time
#    series of their results, and the .prom file counts their sessions;
#  - the exposure of the unit (<= 1.5);
#  - owampd stopped: the streams count failed sessions and stay up; started
#    again: results resume, with no restart of the units;
#  - a crash (SIGSEGV) is restarted by systemd (RestartSec= from a drop-in);
#  - a bad configuration file: one line with the file and line, exit status
#    6, not restarted;
#  - tmpfiles' age clean-up removes old session files, keeps new ones and the
#    .powlock.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$OWAMP_IT_LIB"
# shellcheck source=owampd-lib.sh
. ./owampd-lib.sh

MSGID_STREAM_RESULT=2e62024dca5a4332b61100f59aef4078
MSGID_STREAM_FAILED=7c0446e0b8c341bd9e82df976ed57094
PROMDIR=/var/lib/prometheus/node-exporter

owampd_setup_keys
systemctl start owampd.socket

it_step "two stream configurations, a pass phrase for s2, Debian's textfile directory"
# Debian's prometheus-node-exporter makes it root's, 0755; our tmpfiles.d
# gives the owamp-metrics group its ACL.
mkdir -p "$PROMDIR"
chmod 0755 "$PROMDIR"
systemd-tmpfiles --create owamp-streams.conf
mkdir -p /etc/owamp/streams
# 20 packets in about 1 s: a session a second once the stream runs.
cat >/etc/owamp/streams/s1.conf <<EOF
# stream s1: owampd sends
peer = 127.0.0.1
count = 20
summary-packets = 10
interval = 0.05
loss-timeout = 1
retry-delay = 1
mode = O
prometheus-dir = $PROMDIR
EOF
cat >/etc/owamp/streams/s2.conf <<EOF
peer = 127.0.0.1
direction = to
count = 20
interval = 0.05
loss-timeout = 1
retry-delay = 1
mode = A
key-id = demo
EOF
install -m 0600 /root/client.pfs /etc/owamp/streams/s2.pfs

t0=$(date +%s)
systemctl start owamp-stream@s1.service owamp-stream@s2.service
assert_unit_state owamp-stream@s1.service active
assert_unit_state owamp-stream@s2.service active

# n_files NAME EXT: files of a stream's directory.
n_files() {
        find "/var/lib/owamp-streams/$1/" -maxdepth 1 -name "*.$2" | wc -l
}
have_files() {
        [ "$(n_files "$1" "$2")" -ge "$3" ]
}
results() {
        journal_count OWAMP_STREAM="$1" MESSAGE_ID="$MSGID_STREAM_RESULT" "${@:2}"
}
have_results() {
        [ "$(results "$1" "${@:3}")" -ge "$2" ]
}

it_step "files, journal entries and the Prometheus file of both streams"
wait_for 60 have_files s1 owp 3
wait_for 30 have_files s2 owp 3
assert_num "$(n_files s1 sum)" '>=' 6 "s1's .sum files (2 sub-sessions and the session each)"
it_log "first files after $(($(date +%s) - t0)) s"
for s in s1 s2; do
        f=$(find "/var/lib/owamp-streams/$s/" -maxdepth 1 -name '*.owp' | sort | head -n1)
        assert_match '/[0-9]{20}_[0-9]{20}\.owp$' "$f" "$s's file name"
        assert_eq "" "$(find "/var/lib/owamp-streams/$s/" -maxdepth 1 -name '.powstream.*')" "$s's temporary files"
        assert_success test -e "/var/lib/owamp-streams/$s/.powlock"
done
assert_match '^/var/lib/private/owamp-streams/s1$' "$(readlink -f /var/lib/owamp-streams/s1)" "s1's private directory"
wait_for 20 have_results s1 3 OWAMP_KIND=session
wait_for 20 have_results s2 3 OWAMP_KIND=session
assert_eq "owamp-stream@s1.service" "$(journal_field _SYSTEMD_UNIT OWAMP_STREAM=s1 MESSAGE_ID="$MSGID_STREAM_RESULT" |
        sort -u)" "the unit of s1's results"
uid1=$(journal_field _UID OWAMP_STREAM=s1 MESSAGE_ID="$MSGID_STREAM_RESULT" | sort -u)
uid2=$(journal_field _UID OWAMP_STREAM=s2 MESSAGE_ID="$MSGID_STREAM_RESULT" | sort -u)
assert_dynamic_uid "$uid1" "s1's user"
assert_dynamic_uid "$uid2" "s2's user"
assert_ne "$uid1" "$uid2" "the streams' users"
assert_eq "20" "$(journal_field OWAMP_SENT OWAMP_STREAM=s1 OWAMP_KIND=session | sort -u)" "s1's packets per session"
assert_eq "0" "$(journal_field OWAMP_LOST OWAMP_STREAM=s1 OWAMP_KIND=session | sort -u)" "s1's losses"
assert_eq "from" "$(journal_field OWAMP_DIRECTION OWAMP_STREAM=s1 | sort -u)" "s1's direction"
assert_eq "to" "$(journal_field OWAMP_DIRECTION OWAMP_STREAM=s2 | sort -u)" "s2's direction"
assert_eq "open" "$(journal_field OWAMP_MODE OWAMP_STREAM=s1 | sort -u)" "s1's mode"
assert_eq "authenticated" "$(journal_field OWAMP_MODE OWAMP_STREAM=s2 | sort -u)" "s2's mode (the credential)"
assert_num "$(results s1 OWAMP_KIND=sub-session)" '>=' 6 "s1's sub-session entries"
# A time series: one OWAMP_START_TIME per entry, increasing.
starts=$(journal_field OWAMP_START_TIME OWAMP_STREAM=s1 OWAMP_KIND=session)
assert_eq "$(printf '%s\n' "$starts" | sort -u)" "$starts" "s1's sessions in time order, none twice"
assert_match '^[0-9]+(\.[0-9]+)?e?-?[0-9]*$' "$(journal_field OWAMP_DELAY_MIN_SEC OWAMP_STREAM=s1 | tail -n1)" \
        "s1's minimum delay field"
prom=$PROMDIR/powstream-s1.prom
assert_success test -f "$prom"
assert_match 'owamp_stream_sessions_completed_total\{stream="s1",peer="127.0.0.1",direction="from"\} [1-9]' \
        "$(cat "$prom")" "s1's sessions in its Prometheus file"
assert_match '^owamp_stream_delay_median_seconds\{' "$(grep '^owamp_stream_delay_median' "$prom")" "s1's median"
assert_eq "-rw-r--r--" "$(stat -c %A "$prom")" "the Prometheus file's mode"

it_step "exposure of owamp-stream@s1.service"
exposure=$(unit_exposure owamp-stream@s1.service)
it_log "owamp-stream@s1.service exposure: $exposure"
echo "owamp-stream@s1.service $exposure" >>"$OWAMP_IT_OUT/exposure.txt"
systemd-analyze security --no-pager owamp-stream@s1.service >"$OWAMP_IT_OUT/exposure-stream.txt" 2>&1 || true
assert_num "$exposure" '<=' 1.5 "exposure of owamp-stream@s1.service"

it_step "the peer down: failures counted, the streams stay up; back: results resume"
pid1=$(unit_prop owamp-stream@s1.service MainPID)
systemctl stop owampd.socket owampd.service
t_down=$(date +%s)
failed_before=$(journal_count OWAMP_STREAM=s1 MESSAGE_ID="$MSGID_STREAM_FAILED")
have_failed() {
        [ "$(journal_count OWAMP_STREAM="$1" MESSAGE_ID="$MSGID_STREAM_FAILED")" -gt "$2" ]
}
wait_for 30 have_failed s1 "$failed_before"
sleep 3
assert_unit_state owamp-stream@s1.service active
assert_unit_state owamp-stream@s2.service active
assert_eq "$pid1" "$(unit_prop owamp-stream@s1.service MainPID)" "s1's process while the peer is down"
n_before=$(results s1 OWAMP_KIND=session)
systemctl start owampd.socket
it_log "owampd down for $(($(date +%s) - t_down)) s"
wait_for 60 have_results s1 $((n_before + 2)) OWAMP_KIND=session
n2=$(results s2 OWAMP_KIND=session)
wait_for 60 have_results s2 $((n2 + 1)) OWAMP_KIND=session
assert_eq 0 "$(unit_prop owamp-stream@s1.service NRestarts)" "s1's restarts by systemd"
assert_match 'owamp_stream_sessions_failed_total\{[^}]*\} [1-9]' "$(cat "$prom")" "failed sessions in the .prom file"

it_step "a crash is restarted by systemd"
mkdir -p /run/systemd/system/owamp-stream@s2.service.d
printf '[Service]\nRestartSec=1s\n' >/run/systemd/system/owamp-stream@s2.service.d/fast.conf
systemctl daemon-reload
pid2=$(unit_prop owamp-stream@s2.service MainPID)
kill -SEGV "$pid2"
restarted() {
        [ "$(unit_prop owamp-stream@s2.service NRestarts)" = 1 ] &&
                [ "$(unit_prop owamp-stream@s2.service ActiveState)" = active ]
}
wait_for 20 restarted
assert_ne "$pid2" "$(unit_prop owamp-stream@s2.service MainPID)" "s2's process after the restart"
n2=$(results s2 OWAMP_KIND=session)
wait_for 60 have_results s2 $((n2 + 1)) OWAMP_KIND=session

it_step "a bad configuration file: one line with file and line, exit status 6, no restart"
printf 'peer = 127.0.0.1\ninterval = fast\n' >/etc/owamp/streams/bad.conf
systemctl start owamp-stream@bad.service || true
stopped() {
        [ "$(unit_prop owamp-stream@bad.service ActiveState)" = failed ]
}
wait_for 10 stopped
assert_eq 6 "$(unit_prop owamp-stream@bad.service ExecMainStatus)" "bad's exit status"
sleep 1.5
assert_eq 0 "$(unit_prop owamp-stream@bad.service NRestarts)" "bad's restarts"
assert_match "/etc/owamp/streams/bad.conf:2: interval = 'fast'" \
        "$(journal_messages _SYSTEMD_UNIT=owamp-stream@bad.service)" "bad's message"

it_step "tmpfiles: old files go, new ones and the lock stay"
d=/var/lib/owamp-streams/s1
old=$(find "$d/" -maxdepth 1 -name '*.owp' | sort | head -n1)
touch -d '3 days ago' "$old" "$d/.powlock"
n=$(n_files s1 owp)
systemd-tmpfiles --clean owamp-streams.conf
assert_failure test -e "$old"
assert_success test -e "$d/.powlock"
assert_num "$(n_files s1 owp)" '>=' $((n - 1)) "s1's other files"

it_step "stop: the streams end cleanly"
systemctl stop owamp-stream@s1.service owamp-stream@s2.service
assert_unit_state owamp-stream@s1.service inactive
assert_unit_state owamp-stream@s2.service inactive
assert_eq "" "$(find /var/lib/owamp-streams/s1/ /var/lib/owamp-streams/s2/ -maxdepth 1 -name '.powstream.*')" \
        "temporary files after the stop"
it_log "test-streams: $(($(date +%s) - t0)) s"
