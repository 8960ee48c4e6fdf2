#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Sessions that do not end normally, and a live session unit:
#  - while a session runs, its unit is DynamicUser, sandboxed as owampd(8)
#    says, bounded by RuntimeMaxSec=, and `systemd-analyze security` of it
#    meets the goal (<= 1.5); owampd's STATUS= counts it;
#  - owping killed mid-session (SIGKILL): its session units are gone within
#    its Timeout plus a few seconds, nothing is left, owampd serves on;
#  - owampd stopped mid-session: the same, and owping is told;
#  - owampd-launcher's instance ends with the owampd it served.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$OWAMP_IT_LIB"
# shellcheck source=owampd-lib.sh
. ./owampd-lib.sh

# A session long enough to look at: 400 packets, 50 ms apart (20 s).
TIMEOUT_SEC=2
long_owping() {
        owping -c 400 -i 0.05 -L "$TIMEOUT_SEC" 127.0.0.1 >"$OWAMP_IT_OUT/$1.txt" 2>&1 &
        owping_pid=$!
}
owping_pid=""
kill_owping() {
        if [ -n "$owping_pid" ]; then
                kill -KILL "$owping_pid" 2>/dev/null || true
                wait "$owping_pid" 2>/dev/null || true
                owping_pid=""
        fi
}
it_on_exit kill_owping

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

systemctl start owampd.socket

it_step "a live session unit"
long_owping owping-killed
wait_for 15 n_active_session_units 2
mapfile -t units < <(active_session_units)
assert_match "^2 control connections?, 2 sessions running\$|^1 control connection, 2 sessions running\$" \
        "$(unit_prop owampd.service StatusText)" "STATUS= while testing"
for u in "${units[@]}"; do
        sid=${u#owamp-session-}
        sid=${sid%.service}
        assert_match '^[0-9a-f]{32}$' "$sid" "SID in the unit name $u"
        assert_eq yes "$(unit_prop "$u" DynamicUser)" "$u DynamicUser="
        assert_eq yes "$(unit_prop "$u" PrivateNetwork)" "$u PrivateNetwork="
        assert_eq "" "$(unit_prop "$u" CapabilityBoundingSet)" "$u CapabilityBoundingSet="
        assert_eq /usr/libexec/owamp/owamp-session "$(unit_prop "$u" ExecStart | sed -n 's/^{ path=\([^ ;]*\) .*/\1/p')" \
                "$u program"
        assert_eq "OWAMP_SID=$sid" "$(unit_prop "$u" LogExtraFields)" "$u LogExtraFields="
        assert_eq inactive-or-failed "$(unit_prop "$u" CollectMode)" "$u CollectMode="
        assert_match '(^| )adjtimex( |$)' "$(unit_prop "$u" SystemCallFilter)" \
                "$u may read the clock's error estimate"
        runtime=$(systemctl show -P RuntimeMaxUSec --timestamp=unix -- "$u")
        it_log "$u RuntimeMaxSec=$runtime"
        # 20 s of packets + Timeout + enddelay + owampd's 120 s margin.
        assert_match '^2min [0-9]+(\.[0-9]+)?s$' "$runtime" "$u RuntimeMaxSec= from the session's length"
        pid=$(unit_prop "$u" MainPID)
        uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
        assert_dynamic_uid "$uid" "$u's UID"
        assert_eq "0000000000000000" "$(sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$pid/status")" "$u capabilities"
        assert_eq 2 "$(sed -n 's/^Seccomp:[[:space:]]*//p' "/proc/$pid/status")" "$u seccomp filter"
        # Its fd 0 is the test socket, made in owampd's (the host's) network
        # namespace; the unit itself has none but loopback.
        assert_match '^socket:' "$(readlink "/proc/$pid/fd/0")" "$u fd 0 (StandardInputFileDescriptor=)"
        assert_match '^socket:' "$(readlink "/proc/$pid/fd/1")" "$u fd 1 (StandardOutputFileDescriptor=)"
        # Beyond those: stderr (the journal stream) and the socket of
        # sd_journal_send(); nothing else.
        assert_num "$(find "/proc/$pid/fd" -mindepth 1 | wc -l)" '<=' 4 "$u open fds"
        for fd in "/proc/$pid/fd/"*; do
                assert_match '^socket:' "$(readlink "$fd")" "$u ${fd##*/}"
        done
        assert_ne "$(readlink /proc/1/ns/net)" "$(readlink "/proc/$pid/ns/net")" "$u network namespace"
done
systemd-analyze security --no-pager "${units[0]}" >"$OWAMP_IT_OUT/security-owamp-session.txt" 2>&1 || true
exposure=$(unit_exposure "${units[0]}")
it_log "${units[0]} exposure: $exposure"
echo "owamp-session-SID.service $exposure" >>"$OWAMP_IT_OUT/exposure.txt"
assert_num "$exposure" '<=' 1.5 "exposure of a live session unit"

it_step "owping killed mid-session"
t0=$(now)
kill_owping
wait_for $((TIMEOUT_SEC + 5)) no_session_units
gone=$(since "$t0")
it_log "session units gone ${gone}s after owping was killed"
echo "abort-owping ${gone}s" >>"$OWAMP_IT_OUT/timings.txt"
for u in "${units[@]}"; do
        sid=${u#owamp-session-}
        sid=${sid%.service}
        wait_for 5 journal_has 1 OWAMP_SID="$sid" MESSAGE_ID="$MSGID_UNIT_FINISHED"
        assert_match 'stopped on owampd.s request|finished' \
                "$(journal_messages OWAMP_SID="$sid" MESSAGE_ID="$MSGID_UNIT_FINISHED")" "the launcher saw $u end"
        assert_match 'abandoned' "$(journal_messages OWAMP_SID="$sid" _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_SESSION_FINISHED")" \
                "owampd abandoned session $sid"
done
assert_unit_state owampd.service active
assert_eq "0 control connections, 0 sessions running" "$(unit_prop owampd.service StatusText)" "STATUS= after"
assert_eq 0 "$(procs owamp-session)" "owamp-session processes"
assert_eq "" "$(ss -Hunp | grep '"owampd"' || true)" "UDP sockets of owampd"
owping -c 20 -i 0.01 127.0.0.1 >"$OWAMP_IT_OUT/owping-after.txt"
assert_eq 2 "$(grep -c '^20 sent, 0 lost' "$OWAMP_IT_OUT/owping-after.txt")" "owampd serves on"
wait_for 10 no_session_units

it_step "a session that never runs leaves no data file"
# A client that asks for a session and goes away before Start-Sessions
# (RFC 4656 3 in open mode; the messages are the fuzz corpus's
# setup-O and request-to-O: 10 packets from 127.0.0.1:8920 to us).
vanishing_client() {
        local setup request
        setup='\x00\x00\x00\x01'$(printf '\\x00%.0s' $(seq 160))
        request='\x01\x04\x00\x01\x00\x00\x00\x01\x00\x00\x00\x0a\x22\xd8\x00\x00\x7f\x00\x00\x01'
        request+=$(printf '\\x00%.0s' $(seq 12))'\x7f\x00\x00\x01'$(printf '\\x00%.0s' $(seq 32))
        request+='\xee\xb4\xdc\x4f\xc1\x11\xbe\x6e\x00\x00\x00\x02\x00\x04\x20\xf7'
        request+=$(printf '\\x00%.0s' $(seq 40))'\x0c\xcc\xcc\xcc'$(printf '\\x00%.0s' $(seq 16))
        exec 3<>/dev/tcp/127.0.0.1/861
        head -c 64 <&3 >"$OWAMP_IT_OUT/vanish-greeting.bin"
        printf '%b' "$setup" >&3
        head -c 48 <&3 >"$OWAMP_IT_OUT/vanish-server-start.bin"
        printf '%b' "$request" >&3
        head -c 48 <&3 >"$OWAMP_IT_OUT/vanish-accept.bin"
        exec 3>&-
}
files_before=$(find /var/lib/owamp -name '*.owp' | wc -l)
deleted_before=$(journal_count MESSAGE_ID="$MSGID_DATA_DELETED")
accepted_before=$(journal_count MESSAGE_ID="$MSGID_SESSION_ACCEPTED")
timeout 10 bash -c "$(declare -f vanishing_client); OWAMP_IT_OUT=$OWAMP_IT_OUT vanishing_client"
assert_eq 48 "$(stat -c %s "$OWAMP_IT_OUT/vanish-accept.bin")" "size of the Accept-Session"
assert_eq 0 "$(od -An -tu1 -N1 "$OWAMP_IT_OUT/vanish-accept.bin" | tr -d ' ')" "Accept of the session"
wait_for 5 journal_has $((accepted_before + 1)) MESSAGE_ID="$MSGID_SESSION_ACCEPTED"
wait_for 5 journal_has $((deleted_before + 1)) MESSAGE_ID="$MSGID_DATA_DELETED"
sid=$(journal_field OWAMP_SID MESSAGE_ID="$MSGID_DATA_DELETED" | tail -n1)
assert_match 'abandoned before it ran' "$(journal_messages OWAMP_SID="$sid" MESSAGE_ID="$MSGID_DATA_DELETED")" \
        "why session $sid's data went"
assert_eq "$files_before" "$(find /var/lib/owamp -name '*.owp' | wc -l)" "data files after the client vanished"
assert_eq "" "$(find /var/lib/owamp -name "$sid.owp")" "data file of session $sid"
assert_eq "" "$(session_units)" "units of a session that never started"

it_step "owampd stopped mid-session"
launcher=$(units_matching 'owampd-launcher@*.service')
assert_match '^owampd-launcher@[^ ]+\.service$' "$launcher" "one launcher instance"
long_owping owping-stopped
wait_for 15 n_active_session_units 2
t0=$(now)
systemctl stop owampd.service
wait_for $((TIMEOUT_SEC + 5)) no_session_units
gone=$(since "$t0")
it_log "session units gone ${gone}s after systemctl stop owampd.service"
echo "stop-owampd ${gone}s" >>"$OWAMP_IT_OUT/timings.txt"
wait_for 10 unit_gone "$launcher"
assert_eq 0 "$(procs owampd-launcher)" "launcher processes"
assert_eq 0 "$(procs owampd)" "owampd processes"
# owping learns: its control connection closes, its report says so.
rc=0
timeout 30 tail --pid="$owping_pid" -f /dev/null || rc=$?
assert_eq 0 "$rc" "owping ended after owampd stopped"
rc=0
wait "$owping_pid" || rc=$?
owping_pid=""
assert_ne 0 "$rc" "owping's status after owampd stopped mid-session"
assert_unit_state owampd.socket active
systemctl stop owampd.socket
assert_eq "" "$(systemctl list-units --failed --plain --no-legend --no-pager -- 'owampd*' 'owamp-session-*')" "failed units"
